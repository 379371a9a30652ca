//! TF 1 in graph mode: stateful random ops in sessions, `graph::layers`, and eager vs graph
//! training from the same weights.

use ferroflow_core::graph::layers::{self, Initializer};
use ferroflow_core::graph::random::run_seed;
use ferroflow_core::graph::train::{AdamOptimizer, Optimizer};
use ferroflow_core::{graph, ops, DType, GradientTape, Graph, Session, Tensor, Variable};

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().expect("f32 tensor")
}

fn run1(sess: &Session, t: &Tensor) -> Vec<f32> {
    f32s(&sess.run(&[t], &[]).expect("run")[0])
}

// ---------------------------------------------------------------------------------------------
// Stateful random ops

/// One graph with a uniform, a normal, a truncated normal, an int uniform and a shuffle.
fn random_graph() -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let _d = g.as_default();
    let x = Tensor::from_vec((0..16).map(|i| i as f32).collect(), &[16]).unwrap();
    let outs = vec![
        ops::random_uniform(&[6], 0.0, 1.0, DType::F32, 3).unwrap(),
        ops::random_normal(&[6], 0.0, 1.0, DType::F32, 4).unwrap(),
        ops::truncated_normal(&[6], 0.0, 1.0, DType::F32, 5).unwrap(),
        ops::cast(
            &ops::random_uniform_int(&[6], 0, 1000, DType::I32, 6).unwrap(),
            DType::F32,
        )
        .unwrap(),
        ops::random_shuffle(&x, 7).unwrap(),
        ops::dropout(&ops::ones(&[32], DType::F32), 0.5, 8, None).unwrap(),
    ];
    (g, outs)
}

fn draws(g: &Graph, outs: &[Tensor], runs: usize) -> Vec<Vec<Vec<f32>>> {
    let sess = Session::new(g);
    (0..runs)
        .map(|_| {
            let refs: Vec<&Tensor> = outs.iter().collect();
            sess.run(&refs, &[]).unwrap().iter().map(f32s).collect()
        })
        .collect()
}

#[test]
fn graph_random_ops_draw_afresh_on_every_run() {
    let (g, outs) = random_graph();
    let d = draws(&g, &outs, 3);
    assert_eq!(d[0].len(), outs.len());
    for (op, ((r0, r1), r2)) in d[0].iter().zip(&d[1]).zip(&d[2]).enumerate() {
        assert_ne!(r0, r1, "op {op}: runs 0 and 1 gave the same draw");
        assert_ne!(r1, r2, "op {op}: runs 1 and 2 gave the same draw");
    }
}

#[test]
fn graph_random_first_run_is_the_eager_draw_and_run_k_uses_the_mixed_seed() {
    let (g, outs) = random_graph();
    let d = draws(&g, &outs, 3);
    for k in 0..3u64 {
        let want = ops::random_uniform(&[6], 0.0, 1.0, DType::F32, run_seed(3, k)).unwrap();
        assert_eq!(d[k as usize][0], f32s(&want), "uniform run {k}");
        let x = Tensor::from_vec((0..16).map(|i| i as f32).collect(), &[16]).unwrap();
        let want = ops::random_shuffle(&x, run_seed(7, k)).unwrap();
        assert_eq!(d[k as usize][4], f32s(&want), "shuffle run {k}");
    }
    assert_eq!(run_seed(3, 0), 3);
}

#[test]
fn graph_random_sequence_is_the_same_in_two_sessions_and_a_new_graph() {
    let (g, outs) = random_graph();
    let a = draws(&g, &outs, 4);
    let b = draws(&g, &outs, 4);
    assert_eq!(a, b, "two sessions on one graph");
    let (g2, outs2) = random_graph();
    let c = draws(&g2, &outs2, 4);
    assert_eq!(a, c, "a new graph with the same seeds");
}

#[test]
fn graph_random_nodes_count_their_own_runs() {
    let (g, outs) = random_graph();
    let sess = Session::new(&g);
    // Run only the normal three times; the uniform's first draw is still its run 0.
    for _ in 0..3 {
        run1(&sess, &outs[1]);
    }
    let u = run1(&sess, &outs[0]);
    let want = ops::random_uniform(&[6], 0.0, 1.0, DType::F32, 3).unwrap();
    assert_eq!(u, f32s(&want));
}

#[test]
fn graph_random_feed_shapes_share_a_node_run_count() {
    // Dropout on a placeholder: two feed shapes are two specializations of one node, whose runs
    // are counted together (run 0 with batch 2, run 1 with batch 3).
    let g = Graph::new();
    let (x, y) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[None, Some(4)], "x").unwrap();
        (x.clone(), ops::dropout(&x, 0.5, 11, None).unwrap())
    };
    let sess = Session::new(&g);
    let ones = |n| ops::ones(&[n, 4], DType::F32);
    let r0 = f32s(&sess.run(&[&y], &[(&x, ones(2))]).unwrap()[0]);
    let r1 = f32s(&sess.run(&[&y], &[(&x, ones(3))]).unwrap()[0]);
    assert_eq!(r0, f32s(&ops::dropout(&ones(2), 0.5, 11, None).unwrap()));
    assert_eq!(
        r1,
        f32s(&ops::dropout(&ones(3), 0.5, run_seed(11, 1), None).unwrap())
    );
}

#[test]
fn graph_random_variable_initializer_runs_once() {
    let g = Graph::new();
    let (v, step, init) = {
        let _d = g.as_default();
        let v = Variable::new(
            ops::random_normal(&[5], 0.0, 1.0, DType::F32, 21).unwrap(),
            "w",
        );
        let step = graph::assign_add(&v, &ops::ones(&[5], DType::F32)).unwrap();
        (
            v.clone(),
            step,
            graph::global_variables_initializer().unwrap(),
        )
    };
    let read = {
        let _d = g.as_default();
        v.value()
    };
    let sess = Session::new(&g);
    sess.run(&[&init], &[]).unwrap();
    let eager = f32s(&ops::random_normal(&[5], 0.0, 1.0, DType::F32, 21).unwrap());
    assert_eq!(run1(&sess, &read), eager);
    assert_eq!(run1(&sess, &read), eager, "reading does not redraw");
    sess.run(&[&step], &[]).unwrap();
    sess.run(&[&step], &[]).unwrap();
    let want: Vec<f32> = eager.iter().map(|w| w + 1.0 + 1.0).collect();
    assert_eq!(run1(&sess, &read), want, "updates do not redraw");
}

#[test]
fn eager_random_ops_stay_stateless() {
    let a = ops::random_uniform(&[4], 0.0, 1.0, DType::F32, 3).unwrap();
    let b = ops::random_uniform(&[4], 0.0, 1.0, DType::F32, 3).unwrap();
    assert_eq!(f32s(&a), f32s(&b));
    let x = ops::ones(&[64], DType::F32);
    assert_eq!(
        f32s(&ops::dropout(&x, 0.3, 2, None).unwrap()),
        f32s(&ops::dropout(&x, 0.3, 2, None).unwrap())
    );
}

#[test]
fn graph_random_errors_are_typed() {
    let g = Graph::new();
    let _d = g.as_default();
    assert!(ops::random_uniform(&[2], 0.0, 1.0, DType::Bool, 1).is_err());
    assert!(ops::random_uniform_int(&[2], 5, 5, DType::I32, 1).is_err());
    assert!(ops::random_uniform_int(&[2], 0, 5, DType::F32, 1).is_err());
}

// ---------------------------------------------------------------------------------------------
// Layers

fn names(g: &Graph) -> Vec<String> {
    g.global_variables()
        .iter()
        .map(|v| v.name().to_string())
        .collect()
}

#[test]
fn layers_names_and_shapes_follow_tf1() {
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(28), Some(28), Some(1)], "x").unwrap();
    let c1 = layers::conv2d(&x, 4, [5, 5])
        .padding("same")
        .activation(ops::relu)
        .apply()
        .unwrap();
    assert_eq!(c1.dims(), vec![None, Some(28), Some(28), Some(4)]);
    let p1 = layers::max_pooling2d(&c1, [2, 2], [2, 2], "valid").unwrap();
    assert_eq!(p1.dims(), vec![None, Some(14), Some(14), Some(4)]);
    let c2 = layers::conv2d(&p1, 6, [5, 5]).apply().unwrap();
    assert_eq!(c2.dims(), vec![None, Some(10), Some(10), Some(6)]);
    let f = layers::flatten(&c2).unwrap();
    assert_eq!(f.dims(), vec![None, Some(600)]);
    let d = layers::dense(&f, 7).activation(ops::relu).apply().unwrap();
    let d2 = layers::dense(&d, 3).use_bias(false).apply().unwrap();
    assert_eq!(d2.dims(), vec![None, Some(3)]);
    assert_eq!(
        names(&g),
        [
            "conv2d/kernel",
            "conv2d/bias",
            "conv2d_1/kernel",
            "conv2d_1/bias",
            "dense/kernel",
            "dense/bias",
            "dense_1/kernel"
        ]
    );
    let shapes: Vec<_> = g
        .global_variables()
        .iter()
        .map(|v| v.spec().shape)
        .collect();
    let s = |v: &[usize]| v.iter().map(|&d| Some(d)).collect::<Vec<_>>();
    assert_eq!(shapes[0], s(&[5, 5, 1, 4]));
    assert_eq!(shapes[2], s(&[5, 5, 4, 6]));
    assert_eq!(shapes[4], s(&[600, 7]));
    assert_eq!(shapes[5], s(&[7]));
    // Ops are in the layers' name scopes.
    let node_names: Vec<String> = g.nodes().into_iter().map(|n| n.name).collect();
    for want in [
        "conv2d/Conv2D",
        "conv2d/Relu",
        "max_pooling2d/MaxPool",
        "flatten/Reshape",
        "dense/Relu",
        "dense_1/BatchMatMulV2",
        "dense_1/kernel/Initializer/RandomUniform",
    ] {
        assert!(
            node_names.iter().any(|n| n == want),
            "no node {want} in {node_names:?}"
        );
    }
    // An explicit name is used as given, and reusing it is an error.
    layers::dense(&d, 2).name("logits").apply().unwrap();
    assert!(names(&g).contains(&"logits/kernel".to_string()));
    let err = layers::dense(&d, 2).name("logits").apply().unwrap_err();
    assert!(
        err.to_string().contains("logits/kernel already exists"),
        "{err}"
    );
}

#[test]
fn layers_glorot_uniform_bounds() {
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(300)], "x").unwrap();
    let (_, vars) = layers::dense(&x, 100).apply_with_variables().unwrap();
    let xc = graph::placeholder(DType::F32, &[None, Some(8), Some(8), Some(3)], "xc").unwrap();
    let (_, cvars) = layers::conv2d(&xc, 16, [5, 5])
        .apply_with_variables()
        .unwrap();
    let init = graph::global_variables_initializer().unwrap();
    let sess = Session::new(&g);
    sess.run(&[&init], &[]).unwrap();
    for (var, fan_in, fan_out) in [(&vars[0], 300.0, 100.0), (&cvars[0], 75.0, 400.0)] {
        let limit = (6.0f64 / (fan_in + fan_out)).sqrt();
        let w = run1(&sess, &var.value());
        let max = w.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
        let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / w.len() as f64;
        let var_ = w.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / w.len() as f64;
        assert!(max <= limit, "{}: max |w| {max} > {limit}", var.name());
        assert!(
            max > 0.98 * limit,
            "{}: max |w| {max} ≪ {limit}",
            var.name()
        );
        assert!(mean.abs() < 0.05 * limit, "{}: mean {mean}", var.name());
        // U(-l, l) has variance l²/3.
        let want = limit * limit / 3.0;
        assert!(
            (var_ - want).abs() < 0.1 * want,
            "{}: var {var_}",
            var.name()
        );
    }
    // Biases start at zero.
    assert!(run1(&sess, &vars[1].value()).iter().all(|&b| b == 0.0));
}

#[test]
fn layers_dense_equals_x_w_plus_b_by_hand() {
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(3)], "x").unwrap();
    let (y, vars) = layers::dense(&x, 4)
        .activation(ops::relu)
        .bias_initializer(Initializer::Constant(0.25))
        .apply_with_variables()
        .unwrap();
    let init = graph::global_variables_initializer().unwrap();
    let sess = Session::new(&g);
    sess.run(&[&init], &[]).unwrap();
    let xs: Vec<f32> = vec![0.5, -1.0, 2.0, 1.5, 0.25, -0.75];
    let out = sess
        .run(
            &[&y, &vars[0].value(), &vars[1].value()],
            &[(&x, Tensor::from_vec(xs.clone(), &[2, 3]).unwrap())],
        )
        .unwrap();
    let (yv, w, b) = (f32s(&out[0]), f32s(&out[1]), f32s(&out[2]));
    assert_eq!(b, vec![0.25; 4]);
    for i in 0..2 {
        for j in 0..4 {
            let mut s = f64::from(b[j]);
            for k in 0..3 {
                s += f64::from(xs[i * 3 + k]) * f64::from(w[k * 4 + j]);
            }
            let want = s.max(0.0);
            assert!(
                (f64::from(yv[i * 4 + j]) - want).abs() < 1e-6,
                "y[{i},{j}] = {} want {want}",
                yv[i * 4 + j]
            );
        }
    }
}

#[test]
fn layers_conv_and_pool_match_the_eager_ops() {
    let xv = ops::random_normal(&[2, 9, 9, 2], 0.0, 1.0, DType::F32, 5).unwrap();
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(9), Some(9), Some(2)], "x").unwrap();
    let (c, vars) = layers::conv2d(&x, 3, [3, 3])
        .strides([2, 2])
        .padding("SAME")
        .activation(ops::relu)
        .bias_initializer(Initializer::Constant(0.1))
        .apply_with_variables()
        .unwrap();
    let p = layers::max_pooling2d(&c, [2, 2], [1, 1], "same").unwrap();
    let init = graph::global_variables_initializer().unwrap();
    let sess = Session::new(&g);
    sess.run(&[&init], &[]).unwrap();
    let out = sess
        .run(
            &[&c, &p, &vars[0].value(), &vars[1].value()],
            &[(&x, xv.clone())],
        )
        .unwrap();
    drop(_d); // the reference below is computed eagerly
    let (k, b) = (&out[2], &out[3]);
    let want_c = ops::relu(
        &ops::bias_add(
            &ops::conv2d(&xv, k, [2, 2], ops::Padding::Same, [1, 1]).unwrap(),
            b,
        )
        .unwrap(),
    )
    .unwrap();
    let want_p = ops::max_pool2d(&want_c, [2, 2], [1, 1], ops::Padding::Same).unwrap();
    assert_eq!(out[0].shape(), &[2, 5, 5, 3]);
    assert_eq!(f32s(&out[0]), f32s(&want_c));
    assert_eq!(f32s(&out[1]), f32s(&want_p));
}

#[test]
fn layers_flatten_is_a_row_major_reshape() {
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(2), Some(3)], "x").unwrap();
    let f = layers::flatten(&x).unwrap();
    let sess = Session::new(&g);
    let xs: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let out = sess
        .run(
            &[&f],
            &[(&x, Tensor::from_vec(xs.clone(), &[2, 2, 3]).unwrap())],
        )
        .unwrap();
    assert_eq!(out[0].shape(), &[2, 6]);
    assert_eq!(f32s(&out[0]), xs);
}

#[test]
fn layers_dropout_training_placeholder_and_fresh_masks() {
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(50)], "x").unwrap();
    let training = graph::placeholder(DType::Bool, &[], "training").unwrap();
    let y = layers::dropout(&x, 0.4)
        .training(&training)
        .apply()
        .unwrap();
    let sess = Session::new(&g);
    let xv: Vec<f32> = (0..200).map(|i| 1.0 + i as f32 / 100.0).collect();
    let xt = Tensor::from_vec(xv.clone(), &[4, 50]).unwrap();
    let feed = |t: bool| {
        vec![
            (&x, xt.clone()),
            (&training, Tensor::from_vec(vec![t], &[]).unwrap()),
        ]
    };
    // Inference: the identity.
    let inf = f32s(&sess.run(&[&y], &feed(false)).unwrap()[0]);
    assert_eq!(inf, xv);
    // Training: 0 or x / (1 - rate), about `rate` of them dropped.
    let mut masks = Vec::new();
    for _ in 0..3 {
        let tr = f32s(&sess.run(&[&y], &feed(true)).unwrap()[0]);
        let mut dropped = 0;
        for (o, i) in tr.iter().zip(&xv) {
            if *o == 0.0 {
                dropped += 1;
            } else {
                assert!((f64::from(*o) - f64::from(*i) / 0.6).abs() < 1e-5);
            }
        }
        assert!((40..=120).contains(&dropped), "dropped {dropped} of 200");
        masks.push(tr.iter().map(|&v| v == 0.0).collect::<Vec<bool>>());
    }
    assert_ne!(masks[0], masks[1], "the mask must change between runs");
    assert_ne!(masks[1], masks[2], "the mask must change between runs");
    // Fixed training flags.
    let y_off = layers::dropout(&x, 0.4).apply().unwrap();
    let y_on = layers::dropout(&x, 0.4).training(true).apply().unwrap();
    let out = sess.run(&[&y_off, &y_on], &feed(false)).unwrap();
    assert_eq!(f32s(&out[0]), xv);
    assert!(f32s(&out[1]).contains(&0.0));
}

#[test]
fn layers_work_eagerly() {
    let x = Tensor::from_vec(vec![1.0f32, 2.0, -1.0, 0.5], &[2, 2]).unwrap();
    let (y, vars) = layers::dense(&x, 3)
        .name("eager_dense_test")
        .apply_with_variables()
        .unwrap();
    assert_eq!(vars[0].name(), "eager_dense_test/kernel");
    let w = f32s(&vars[0].value());
    let yv = f32s(&y);
    for i in 0..2 {
        for j in 0..3 {
            let want: f64 = (0..2)
                .map(|k| f64::from(f32s(&x)[i * 2 + k]) * f64::from(w[k * 3 + j]))
                .sum();
            assert!((f64::from(yv[i * 3 + j]) - want).abs() < 1e-6);
        }
    }
    let img = ops::ones(&[1, 4, 4, 1], DType::F32);
    let c = layers::conv2d(&img, 2, [3, 3]).apply().unwrap();
    assert_eq!(c.shape(), &[1, 2, 2, 2]);
    let p = layers::max_pooling2d(&c, [2, 2], [2, 2], "valid").unwrap();
    assert_eq!(layers::flatten(&p).unwrap().shape(), &[1, 2]);
    let d = layers::dropout(&img, 0.5).training(true).apply().unwrap();
    assert!(f32s(&d).iter().all(|&v| v == 0.0 || v == 2.0));
}

#[test]
fn layers_bad_input_is_a_typed_error() {
    let g = Graph::new();
    let _d = g.as_default();
    let x3 = graph::placeholder(DType::F32, &[None, Some(2), Some(3)], "x3").unwrap();
    let e = layers::dense(&x3, 2).apply().unwrap_err().to_string();
    assert!(e.contains("dense") && e.contains("rank 2"), "{e}");
    let xu = graph::placeholder(DType::F32, &[None, None], "xu").unwrap();
    let e = layers::dense(&xu, 2).apply().unwrap_err().to_string();
    assert!(e.contains("last dimension"), "{e}");
    let xi = graph::placeholder(DType::I32, &[None, Some(2)], "xi").unwrap();
    assert!(layers::dense(&xi, 2).apply().is_err());
    let img = graph::placeholder(DType::F32, &[None, Some(8), Some(8), Some(1)], "img").unwrap();
    let e = layers::conv2d(&img, 2, [3, 3])
        .padding("full")
        .apply()
        .unwrap_err()
        .to_string();
    assert!(e.contains("padding"), "{e}");
    assert!(layers::conv2d(&img, 0, [3, 3]).apply().is_err());
    assert!(layers::max_pooling2d(&img, [2, 2], [2, 2], "causal").is_err());
    assert!(layers::flatten(&xu).is_err());
    assert!(layers::dropout(&img, 1.0).apply().is_err());
    let bad_training = graph::placeholder(DType::F32, &[], "t").unwrap();
    let e = layers::dropout(&img, 0.5)
        .training(&bad_training)
        .apply()
        .unwrap_err()
        .to_string();
    assert!(e.contains("training"), "{e}");
    let wrong = Initializer::Value(ops::zeros(&[3, 3], DType::F32));
    let x2 = graph::placeholder(DType::F32, &[None, Some(2)], "x2").unwrap();
    let e = layers::dense(&x2, 2)
        .kernel_initializer(wrong)
        .apply()
        .unwrap_err()
        .to_string();
    assert!(e.contains("initializer"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Eager vs graph: the same training, bit for bit

/// TF 1's `ApplyAdam` (tf.compat.v1.train.AdamOptimizer docs), written out for the eager side:
/// `lr_t = lr·sqrt(1 - β2^t)/(1 - β1^t)`, `m ← β1 m + (1-β1) g`, `v ← β2 v + (1-β2) g²`,
/// `w ← w - lr_t·m/(sqrt(v) + ε)`, the powers advancing after the step.
struct EagerAdam {
    lr: f64,
    slots: Vec<(Tensor, Tensor)>,
    b1p: Tensor,
    b2p: Tensor,
}

impl EagerAdam {
    fn new(lr: f64, vars: &[Variable]) -> EagerAdam {
        EagerAdam {
            lr,
            slots: vars
                .iter()
                .map(|v| {
                    let z = ops::zeros_like(&v.value()).unwrap();
                    (z.clone(), z)
                })
                .collect(),
            b1p: Tensor::scalar(0.9f32),
            b2p: Tensor::scalar(0.999f32),
        }
    }

    fn step(&mut self, vars: &[Variable], grads: &[Tensor]) {
        let one_minus = |p: &Tensor| ops::add_scalar(&ops::mul_scalar(p, -1.0)?, 1.0);
        let lr_t = ops::mul_scalar(
            &ops::div(
                &ops::sqrt(&one_minus(&self.b2p).unwrap()).unwrap(),
                &one_minus(&self.b1p).unwrap(),
            )
            .unwrap(),
            self.lr,
        )
        .unwrap();
        for ((v, g), (m, s)) in vars.iter().zip(grads).zip(&mut self.slots) {
            *m = ops::add(
                &ops::mul_scalar(m, 0.9).unwrap(),
                &ops::mul_scalar(g, 1.0 - 0.9).unwrap(),
            )
            .unwrap();
            *s = ops::add(
                &ops::mul_scalar(s, 0.999).unwrap(),
                &ops::mul_scalar(&ops::square(g).unwrap(), 1.0 - 0.999).unwrap(),
            )
            .unwrap();
            let denom = ops::add_scalar(&ops::sqrt(s).unwrap(), 1e-8).unwrap();
            let delta = ops::div(&ops::mul(m, &lr_t).unwrap(), &denom).unwrap();
            v.assign_sub(&delta).unwrap();
        }
        self.b1p = ops::mul_scalar(&self.b1p, 0.9).unwrap();
        self.b2p = ops::mul_scalar(&self.b2p, 0.999).unwrap();
    }
}

fn loss_of(logits: &Tensor, labels: &Tensor) -> Tensor {
    ops::reduce_mean(
        &ops::softmax_cross_entropy_with_logits(labels, logits, -1).unwrap(),
        ops::Axes::All,
        false,
    )
    .unwrap()
}

/// Builds a model in the default graph from initial values: its output and variables.
type GraphForward = dyn Fn(&Tensor, &[Tensor]) -> (Tensor, Vec<Variable>);

/// Trains `forward` (built from `graph::layers` with the given initial values) for `steps` of
/// Adam, in a session and eagerly, and returns both final weights.
fn train_both(
    init: &[Tensor],
    x: &Tensor,
    labels: &Tensor,
    forward: &GraphForward,
    eager_forward: &dyn Fn(&Tensor, &[Variable]) -> Tensor,
    steps: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    // Graph.
    let g = Graph::new();
    let graph_w = {
        let _d = g.as_default();
        let xp = graph::placeholder(DType::F32, &x.dims(), "x").unwrap();
        let yp = graph::placeholder(DType::F32, &labels.dims(), "y").unwrap();
        let (logits, vars) = forward(&xp, init);
        let loss = loss_of(&logits, &yp);
        let train = AdamOptimizer::new(0.01).minimize(&loss).unwrap();
        let initop = graph::global_variables_initializer().unwrap();
        let sess = Session::new(&g);
        sess.run(&[&initop], &[]).unwrap();
        for _ in 0..steps {
            sess.run(&[&train], &[(&xp, x.clone()), (&yp, labels.clone())])
                .unwrap();
        }
        let reads: Vec<Tensor> = vars.iter().map(Variable::value).collect();
        let refs: Vec<&Tensor> = reads.iter().collect();
        sess.run(&refs, &[]).unwrap().iter().map(f32s).collect()
    };
    // Eager: the layers' op sequence written with raw ops, a GradientTape, the same update rule.
    let vars: Vec<Variable> = init.iter().map(|t| Variable::new(t.clone(), "w")).collect();
    let mut adam = EagerAdam::new(0.01, &vars);
    for _ in 0..steps {
        let tape = GradientTape::new();
        let logits = eager_forward(x, &vars);
        let loss = loss_of(&logits, labels);
        let srcs: Vec<&dyn ferroflow_core::autodiff::Watchable> =
            vars.iter().map(|v| v as _).collect();
        let grads: Vec<Tensor> = tape
            .gradient(&loss, &srcs)
            .unwrap()
            .into_iter()
            .map(|g| g.expect("connected"))
            .collect();
        drop(tape);
        adam.step(&vars, &grads);
    }
    let eager_w = vars.iter().map(|v| f32s(&v.value())).collect();
    (graph_w, eager_w)
}

/// Why bit-identical: both sides run the same op functions in the same order with the same
/// kernels (the graph's `Session` calls the eager kernels), the graph's gradients are expanded
/// from the same `Op::grad` rules the tape replays (each variable read has one consumer, so no
/// gradient sum is reordered), the update is the same sequence of ops in f32, and every kernel
/// is deterministic (fixed reduction order whatever the thread count).
#[test]
fn eager_and_graph_training_give_bit_identical_weights_mlp() {
    let x = ops::random_normal(&[8, 4], 0.0, 1.0, DType::F32, 31).unwrap();
    let idx = Tensor::from_vec(vec![0i32, 1, 2, 0, 1, 2, 2, 1], &[8]).unwrap();
    let labels = ops::one_hot(&idx, 3, 1.0, 0.0, -1, DType::F32).unwrap();
    let init = vec![
        ops::random_uniform(&[4, 5], -0.7, 0.7, DType::F32, 32).unwrap(),
        ops::random_uniform(&[5], -0.1, 0.1, DType::F32, 33).unwrap(),
        ops::random_uniform(&[5, 3], -0.7, 0.7, DType::F32, 34).unwrap(),
        ops::random_uniform(&[3], -0.1, 0.1, DType::F32, 35).unwrap(),
    ];
    let forward = |x: &Tensor, init: &[Tensor]| {
        let (h, mut v1) = layers::dense(x, 5)
            .activation(ops::relu)
            .kernel_initializer(Initializer::Value(init[0].clone()))
            .bias_initializer(Initializer::Value(init[1].clone()))
            .apply_with_variables()
            .unwrap();
        let (y, v2) = layers::dense(&h, 3)
            .kernel_initializer(Initializer::Value(init[2].clone()))
            .bias_initializer(Initializer::Value(init[3].clone()))
            .apply_with_variables()
            .unwrap();
        v1.extend(v2);
        (y, v1)
    };
    let eager = |x: &Tensor, v: &[Variable]| {
        let h = ops::relu(
            &ops::bias_add(
                &ops::matmul(x, &v[0].value(), false, false).unwrap(),
                &v[1].value(),
            )
            .unwrap(),
        )
        .unwrap();
        ops::bias_add(
            &ops::matmul(&h, &v[2].value(), false, false).unwrap(),
            &v[3].value(),
        )
        .unwrap()
    };
    let (gw, ew) = train_both(&init, &x, &labels, &forward, &eager, 12);
    for (i, (a, b)) in gw.iter().zip(&ew).enumerate() {
        let (ab, bb): (Vec<u32>, Vec<u32>) = (
            a.iter().map(|v| v.to_bits()).collect(),
            b.iter().map(|v| v.to_bits()).collect(),
        );
        assert_eq!(ab, bb, "weight {i} differs between graph and eager");
    }
    // And training moved them.
    assert_ne!(gw[0], f32s(&init[0]));
}

#[test]
fn eager_and_graph_training_give_bit_identical_weights_conv() {
    let x = ops::random_normal(&[4, 6, 6, 1], 0.0, 1.0, DType::F32, 41).unwrap();
    let idx = Tensor::from_vec(vec![0i32, 1, 2, 1], &[4]).unwrap();
    let labels = ops::one_hot(&idx, 3, 1.0, 0.0, -1, DType::F32).unwrap();
    let init = vec![
        ops::random_uniform(&[3, 3, 1, 2], -0.5, 0.5, DType::F32, 42).unwrap(),
        ops::random_uniform(&[2], -0.1, 0.1, DType::F32, 43).unwrap(),
        ops::random_uniform(&[18, 3], -0.5, 0.5, DType::F32, 44).unwrap(),
        ops::random_uniform(&[3], -0.1, 0.1, DType::F32, 45).unwrap(),
    ];
    let forward = |x: &Tensor, init: &[Tensor]| {
        let (c, mut v1) = layers::conv2d(x, 2, [3, 3])
            .padding("same")
            .activation(ops::relu)
            .kernel_initializer(Initializer::Value(init[0].clone()))
            .bias_initializer(Initializer::Value(init[1].clone()))
            .apply_with_variables()
            .unwrap();
        let p = layers::max_pooling2d(&c, [2, 2], [2, 2], "valid").unwrap();
        let f = layers::flatten(&p).unwrap();
        let (y, v2) = layers::dense(&f, 3)
            .kernel_initializer(Initializer::Value(init[2].clone()))
            .bias_initializer(Initializer::Value(init[3].clone()))
            .apply_with_variables()
            .unwrap();
        v1.extend(v2);
        (y, v1)
    };
    let eager = |x: &Tensor, v: &[Variable]| {
        let c = ops::relu(
            &ops::bias_add(
                &ops::conv2d(x, &v[0].value(), [1, 1], ops::Padding::Same, [1, 1]).unwrap(),
                &v[1].value(),
            )
            .unwrap(),
        )
        .unwrap();
        let p = ops::max_pool2d(&c, [2, 2], [2, 2], ops::Padding::Valid).unwrap();
        let f = ops::reshape(&p, &[-1, 18]).unwrap();
        ops::bias_add(
            &ops::matmul(&f, &v[2].value(), false, false).unwrap(),
            &v[3].value(),
        )
        .unwrap()
    };
    let (gw, ew) = train_both(&init, &x, &labels, &forward, &eager, 8);
    for (i, (a, b)) in gw.iter().zip(&ew).enumerate() {
        let (ab, bb): (Vec<u32>, Vec<u32>) = (
            a.iter().map(|v| v.to_bits()).collect(),
            b.iter().map(|v| v.to_bits()).collect(),
        );
        assert_eq!(ab, bb, "weight {i} differs between graph and eager");
    }
    assert_ne!(gw[0], f32s(&init[0]));
}

// ---------------------------------------------------------------------------------------------
// Index ops with fed indices

#[test]
fn graph_gather_and_segment_sum_with_fed_indices_and_their_gradients() {
    let g = Graph::new();
    let _d = g.as_default();
    let p = graph::placeholder(DType::F64, &[Some(4), Some(2)], "p").unwrap();
    let idx = graph::placeholder(DType::I32, &[None], "idx").unwrap();
    let seg = graph::placeholder(DType::I64, &[None], "seg").unwrap();
    let gathered = ops::gather(&p, &idx, 0).unwrap();
    // loss1 = Σ gather(p, idx)²: d/dp[r] = 2·p[r]·(times r is picked).
    let loss1 = ops::reduce_sum(&ops::square(&gathered).unwrap(), ops::Axes::All, false).unwrap();
    // loss2 = Σ_s c[s]·segment_sum(p, seg)[s] with c = [1, 10, 100]: d/dp[r] = c[seg[r]], 0
    // for a dropped (negative) id.
    let c = Tensor::from_vec(vec![1.0f64, 10.0, 100.0], &[3, 1]).unwrap();
    let sums = ops::unsorted_segment_sum(&p, &seg, 3).unwrap();
    let loss2 = ops::reduce_sum(&ops::mul(&sums, &c).unwrap(), ops::Axes::All, false).unwrap();
    let g1 = graph::gradients(&[loss1], std::slice::from_ref(&p)).unwrap()[0]
        .clone()
        .unwrap();
    let g2 = graph::gradients(&[loss2], std::slice::from_ref(&p)).unwrap()[0]
        .clone()
        .unwrap();
    let sess = Session::new(&g);
    let pv: Vec<f64> = (0..8).map(|i| i as f64 + 1.0).collect();
    let feeds = [
        (&p, Tensor::from_vec(pv.clone(), &[4, 2]).unwrap()),
        (&idx, Tensor::from_vec(vec![3i32, 0, 3], &[3]).unwrap()),
        (&seg, Tensor::from_vec(vec![2i64, -1, 0, 2], &[4]).unwrap()),
    ];
    let out = sess.run(&[&gathered, &g1, &sums, &g2], &feeds).unwrap();
    assert_eq!(
        out[0].to_vec::<f64>().unwrap(),
        vec![7.0, 8.0, 1.0, 2.0, 7.0, 8.0]
    );
    let picks = [1.0, 0.0, 0.0, 2.0];
    let want1: Vec<f64> = (0..8).map(|k| 2.0 * pv[k] * picks[k / 2]).collect();
    assert_eq!(out[1].to_vec::<f64>().unwrap(), want1);
    // Segment 0 = row 2, segment 2 = rows 0 + 3, row 1 dropped.
    assert_eq!(
        out[2].to_vec::<f64>().unwrap(),
        vec![5.0, 6.0, 0.0, 0.0, 1.0 + 7.0, 2.0 + 8.0]
    );
    let cs = [100.0, 0.0, 1.0, 100.0];
    let want2: Vec<f64> = (0..8).map(|k| cs[k / 2]).collect();
    assert_eq!(out[3].to_vec::<f64>().unwrap(), want2);
    // Other indices, same graph: fed per run.
    let feeds = [
        (&p, Tensor::from_vec(pv.clone(), &[4, 2]).unwrap()),
        (&idx, Tensor::from_vec(vec![1i32], &[1]).unwrap()),
        (&seg, Tensor::from_vec(vec![0i64, 0, 0, 0], &[4]).unwrap()),
    ];
    let out = sess.run(&[&g1, &g2], &feeds).unwrap();
    assert_eq!(
        out[0].to_vec::<f64>().unwrap(),
        vec![0.0, 0.0, 6.0, 8.0, 0.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(out[1].to_vec::<f64>().unwrap(), vec![1.0; 8]);
    // An out-of-range fed index is an error naming the op.
    let feeds = [
        (&p, Tensor::from_vec(pv, &[4, 2]).unwrap()),
        (&idx, Tensor::from_vec(vec![4i32], &[1]).unwrap()),
    ];
    let e = sess.run(&[&gathered], &feeds).unwrap_err().to_string();
    assert!(e.contains("GatherV2"), "{e}");
}
