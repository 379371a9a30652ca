//! Graph mode against eager mode: one training step of the seed CNN and MLP (the models of
//! `../shared/bench/tf_anchor.py`, dropout-free) written with raw ops — forward, sparse softmax
//! cross entropy, gradients, an SGD update — run eagerly (a `GradientTape`, then `assign_sub`)
//! or as a TF 1 graph (placeholders, `GradientDescentOptimizer::minimize`, `Session::run`, every
//! optimisation pass on). Same initial weights, same batches: 8,000 MNIST-shaped images with
//! values uniform in [0, 1) and labels 0..9 from fixed seeds, made up front (a step's cost does not depend on
//! the pixel values; this keeps the example inside the core crate, whose release build is a
//! fraction of the workspace's).
//!
//! `cargo run --release -p ferroflow-core --example graph_bench -- --mode graph cnn32 mlp128`
//! prints one JSON line
//! per case with the training samples/s (median of `REPEATS` timed blocks of steps, after
//! warm-up steps). Run each mode in its own process under `/usr/bin/time -v` to compare peak
//! memory (maximum resident set size). `--mode` is `eager` or `graph` (default `graph`); cases
//! are `cnn32`, `cnn128`, `mlp32`, `mlp128` (default all four).

use std::time::Instant;

use ferroflow_core::graph::train::{GradientDescentOptimizer, Optimizer};
use ferroflow_core::ops::{self, Padding};
use ferroflow_core::{graph, DType, GradientTape, Graph, Result, Session, Tensor, Variable};

const LEARNING_RATE: f64 = 0.01;

/// The trainable variables of a model, in a fixed order.
struct Params {
    vars: Vec<Variable>,
}

/// Glorot-uniform weights and zero biases, from fixed seeds.
fn glorot(
    shape: &[usize],
    fan_in: usize,
    fan_out: usize,
    seed: u64,
    name: &str,
) -> Result<Variable> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    let init = ops::random_uniform(shape, -limit, limit, DType::F32, seed)?;
    Ok(Variable::new(init, name))
}

fn zeros(n: usize, name: &str) -> Variable {
    Variable::new(ops::zeros(&[n], DType::F32), name)
}

fn params(cnn: bool) -> Result<Params> {
    let vars = if cnn {
        vec![
            glorot(&[3, 3, 1, 32], 9, 9 * 32, 1, "conv1/kernel")?,
            zeros(32, "conv1/bias"),
            glorot(&[3, 3, 32, 64], 9 * 32, 9 * 64, 2, "conv2/kernel")?,
            zeros(64, "conv2/bias"),
            glorot(&[1600, 128], 1600, 128, 3, "dense1/kernel")?,
            zeros(128, "dense1/bias"),
            glorot(&[128, 10], 128, 10, 4, "dense2/kernel")?,
            zeros(10, "dense2/bias"),
        ]
    } else {
        vec![
            glorot(&[784, 64], 784, 64, 1, "dense1/kernel")?,
            zeros(64, "dense1/bias"),
            glorot(&[64, 64], 64, 64, 2, "dense2/kernel")?,
            zeros(64, "dense2/bias"),
            glorot(&[64, 10], 64, 10, 3, "dense3/kernel")?,
            zeros(10, "dense3/bias"),
        ]
    };
    Ok(Params { vars })
}

fn dense(x: &Tensor, w: &Variable, b: &Variable, relu: bool) -> Result<Tensor> {
    let z = ops::bias_add(&ops::matmul(x, &w.value(), false, false)?, &b.value())?;
    if relu {
        ops::relu(&z)
    } else {
        Ok(z)
    }
}

fn conv_block(x: &Tensor, k: &Variable, b: &Variable) -> Result<Tensor> {
    let c = ops::conv2d(x, &k.value(), [1, 1], Padding::Valid, [1, 1])?;
    let r = ops::relu(&ops::bias_add(&c, &b.value())?)?;
    ops::max_pool2d(&r, [2, 2], [2, 2], Padding::Valid)
}

/// The mean sparse softmax cross entropy of the model on `(x, y)`.
fn loss(p: &Params, x: &Tensor, y: &Tensor, cnn: bool) -> Result<Tensor> {
    let v = &p.vars;
    let logits = if cnn {
        let h = conv_block(x, &v[0], &v[1])?;
        let h = conv_block(&h, &v[2], &v[3])?;
        let h = ops::reshape(&h, &[-1, 1600])?;
        let h = dense(&h, &v[4], &v[5], true)?;
        dense(&h, &v[6], &v[7], false)?
    } else {
        let h = dense(x, &v[0], &v[1], true)?;
        let h = dense(&h, &v[2], &v[3], true)?;
        dense(&h, &v[4], &v[5], false)?
    };
    ops::reduce_mean(
        &ops::sparse_softmax_cross_entropy_with_logits(y, &logits)?,
        Vec::<isize>::new(),
        false,
    )
}

/// 8,000 MNIST-shaped examples in batches, each drawn from its own seed (no whole dataset is
/// held, so peak memory is the model's).
fn batches(cnn: bool, batch: usize) -> Result<Vec<(Tensor, Tensor)>> {
    (0..8000 / batch)
        .map(|i| {
            let s = 1000 + 2 * i as u64;
            let shape: Vec<usize> = if cnn {
                vec![batch, 28, 28, 1]
            } else {
                vec![batch, 784]
            };
            Ok((
                ops::random_uniform(&shape, 0.0, 1.0, DType::F32, s)?,
                ops::random_uniform_int(&[batch], 0, 10, DType::I64, s + 1)?,
            ))
        })
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A training step that returns the loss.
trait Stepper {
    fn step(&mut self, x: &Tensor, y: &Tensor) -> Result<f32>;
}

struct Eager {
    p: Params,
    cnn: bool,
}

impl Stepper for Eager {
    fn step(&mut self, x: &Tensor, y: &Tensor) -> Result<f32> {
        let tape = GradientTape::new();
        let l = loss(&self.p, x, y, self.cnn)?;
        let sources: Vec<&dyn ferroflow_core::Watchable> = self
            .p
            .vars
            .iter()
            .map(|v| v as &dyn ferroflow_core::Watchable)
            .collect();
        let grads = tape.gradient(&l, &sources)?;
        drop(tape);
        for (v, g) in self.p.vars.iter().zip(grads) {
            if let Some(g) = g {
                v.assign_sub(&ops::mul_scalar(&g, LEARNING_RATE)?)?;
            }
        }
        Ok(l.to_vec::<f32>()?[0])
    }
}

struct GraphStep {
    sess: Session,
    x: Tensor,
    y: Tensor,
    loss: Tensor,
    train: Tensor,
}

impl GraphStep {
    fn new(cnn: bool) -> Result<GraphStep> {
        let g = Graph::new();
        let _d = g.as_default();
        let x = if cnn {
            graph::placeholder(DType::F32, &[None, Some(28), Some(28), Some(1)], "x")?
        } else {
            graph::placeholder(DType::F32, &[None, Some(784)], "x")?
        };
        let y = graph::placeholder(DType::I64, &[None], "y")?;
        let p = params(cnn)?;
        let l = loss(&p, &x, &y, cnn)?;
        let train = GradientDescentOptimizer::new(LEARNING_RATE).minimize(&l)?;
        let init = graph::global_variables_initializer()?;
        drop(_d);
        let sess = Session::new(&g);
        sess.run(&[&init], &[])?;
        Ok(GraphStep {
            sess,
            x,
            y,
            loss: l,
            train,
        })
    }
}

impl Stepper for GraphStep {
    fn step(&mut self, x: &Tensor, y: &Tensor) -> Result<f32> {
        let out = self.sess.run(
            &[&self.loss, &self.train],
            &[(&self.x, x.clone()), (&self.y, y.clone())],
        )?;
        Ok(out[0].to_vec::<f32>()?[0])
    }
}

fn run(mode: &str, case: &str, repeats: usize) -> Result<()> {
    let (kind, batch) = case.split_at(3);
    let batch: usize = batch.parse().unwrap_or(32);
    let cnn = kind == "cnn";
    let data = batches(cnn, batch)?;
    let mut stepper: Box<dyn Stepper> = if mode == "eager" {
        Box::new(Eager {
            p: params(cnn)?,
            cnn,
        })
    } else {
        Box::new(GraphStep::new(cnn)?)
    };
    // About the same work per timed block whatever the batch size.
    let per_block = ((if cnn { 1024 } else { 8192 }) / batch).max(2);
    let mut it = data.iter().cycle();
    let mut first_loss = 0.0;
    for i in 0..3 {
        let (x, y) = it.next().unwrap_or(&data[0]);
        let l = stepper.step(x, y)?;
        if i == 0 {
            first_loss = l;
        }
    }
    let mut rates = Vec::with_capacity(repeats);
    let mut last_loss = 0.0;
    for _ in 0..repeats {
        let t0 = Instant::now();
        for _ in 0..per_block {
            let (x, y) = it.next().unwrap_or(&data[0]);
            last_loss = stepper.step(x, y)?;
        }
        rates.push((per_block * batch) as f64 / t0.elapsed().as_secs_f64());
    }
    println!(
        "{{\"mode\": \"{mode}\", \"case\": \"{case}\", \"batch\": {batch}, \"steps_per_block\": {per_block}, \"blocks\": {repeats}, \"train_samples_per_s\": {:.1}, \"first_loss\": {first_loss:.5}, \"last_loss\": {last_loss:.5}, \"threads\": {}}}",
        median(&rates),
        rayon::current_num_threads()
    );
    Ok(())
}

fn main() -> Result<()> {
    let repeats = std::env::var("REPEATS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(5);
    let mut mode = "graph".to_string();
    let mut cases = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mode" => mode = args.next().unwrap_or_default(),
            "--bench" => {}
            _ => cases.push(a),
        }
    }
    if mode != "eager" && mode != "graph" {
        return Err(ferroflow_core::Error::invalid(
            "graph_bench",
            format!("--mode must be eager or graph, got '{mode}'"),
        ));
    }
    if cases.is_empty() {
        cases = ["cnn32", "cnn128", "mlp32", "mlp128"]
            .map(String::from)
            .to_vec();
    }
    for c in &cases {
        run(&mode, c, repeats)?;
    }
    if ferroflow_core::profiler::enabled() {
        ferroflow_core::profiler::print_report();
    }
    Ok(())
}
