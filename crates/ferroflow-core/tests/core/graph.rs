//! Graph mode: placeholders, shape inference with unknown dimensions, Session, variables,
//! symbolic gradients, TF 1 optimizers, feeding errors, dumps.
//!
//! Symbolic gradients of every differentiable op are also checked against the tape by
//! `testing::check_gradients`, which every op family's gradient test calls.

use ferroflow_core::graph::train::{
    AdagradOptimizer, AdamOptimizer, GradientDescentOptimizer, MomentumOptimizer, Optimizer,
    RMSPropOptimizer,
};
use ferroflow_core::{graph, ops, DType, Error, GradientTape, Graph, Session, Tensor, Variable};

fn t32(v: Vec<f32>, s: &[usize]) -> Tensor {
    Tensor::from_vec(v, s).unwrap()
}

#[test]
fn shape_inference_keeps_unknown_dimensions() {
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(2)], "x").unwrap();
    let w = Variable::new(t32(vec![1.0, 2.0], &[2, 1]), "weights");
    let y = ops::matmul(&x, &w.value(), false, false).unwrap();
    assert_eq!(y.dims(), vec![None, Some(1)]);
    let s = ops::reduce_sum(&y, 0, false).unwrap();
    assert_eq!(s.dims(), vec![Some(1)]);
    assert_eq!(
        y.to_string(),
        "Tensor(\"BatchMatMulV2:0\", shape=(None, 1), dtype=float32)"
    );
    // Known dimensions are still checked when the graph is built.
    let bad = graph::placeholder(DType::F32, &[None, Some(3)], "bad").unwrap();
    let err = ops::matmul(&bad, &w.value(), false, false).unwrap_err();
    assert!(err.to_string().contains("MatMul"), "{err}");
}

#[test]
fn session_runs_only_what_the_fetches_need_and_any_batch_size() {
    let g = Graph::new();
    let (x, y, z) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[None, Some(2)], "x").unwrap();
        let p = graph::placeholder(DType::F32, &[None], "unused").unwrap();
        let y = ops::mul_scalar(&ops::add_scalar(&x, 1.0).unwrap(), 2.0).unwrap();
        let z = ops::add(&p, &p).unwrap();
        (x, y, z)
    };
    let sess = Session::new(&g);
    // `unused` is not fed: fetching y does not need it.
    let out = sess
        .run(&[&y], &[(&x, t32(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]))])
        .unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![4.0, 6.0, 8.0, 10.0]);
    assert_eq!(out[0].shape(), &[2, 2]);
    // Another batch size specializes again.
    let out = sess
        .run(&[&y], &[(&x, t32(vec![0.0; 6], &[3, 2]))])
        .unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![2.0; 6]);
    // Fetching z needs the unfed placeholder: TF's message, naming it.
    let err = sess.run(&[&z], &[]).unwrap_err().to_string();
    assert!(
        err.contains("You must feed a value for placeholder tensor 'unused' with dtype float32 and shape (None,)"),
        "{err}"
    );
}

#[test]
fn feeding_errors_name_the_placeholder() {
    let g = Graph::new();
    let (x, y) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[None, Some(2)], "x").unwrap();
        (x.clone(), ops::square(&x).unwrap())
    };
    let sess = Session::new(&g);
    let err = sess
        .run(&[&y], &[(&x, t32(vec![0.0; 3], &[1, 3]))])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "cannot feed a value of shape (1, 3) for tensor 'x:0', which has shape (None, 2)"
        ),
        "{err}"
    );
    let err = sess
        .run(
            &[&y],
            &[(&x, Tensor::from_vec(vec![0.0f64; 2], &[1, 2]).unwrap())],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot feed a float64 value to tensor 'x:0'"),
        "{err}"
    );
    // A tensor of another graph.
    let other = Graph::new();
    let o = {
        let _d = other.as_default();
        graph::placeholder(DType::F32, &[Some(1)], "o").unwrap()
    };
    let err = sess.run(&[&o], &[]).unwrap_err().to_string();
    assert!(err.contains("must be from the same graph"), "{err}");
    // A symbolic tensor used outside any graph scope.
    let err = ops::square(&x).unwrap_err().to_string();
    assert!(err.contains("no graph is the default"), "{err}");
    // Reading a graph tensor's values.
    assert!(x.to_vec::<f32>().is_err());
}

#[test]
fn variables_keep_values_across_runs_and_sessions_are_independent() {
    let g = Graph::new();
    let (v, inc, init) = {
        let _d = g.as_default();
        let v = Variable::new(t32(vec![1.0], &[1]), "counter");
        let inc = graph::assign_add(&v, &t32(vec![1.0], &[1])).unwrap();
        let init = graph::global_variables_initializer().unwrap();
        (v, inc, init)
    };
    let read = {
        let _d = g.as_default();
        v.value()
    };
    let a = Session::new(&g);
    let b = Session::new(&g);
    let err = a.run(&[&read], &[]).unwrap_err().to_string();
    assert!(
        err.contains("Attempting to use uninitialized value counter"),
        "{err}"
    );
    a.run(&[&init], &[]).unwrap();
    b.run(&[&init], &[]).unwrap();
    for _ in 0..3 {
        a.run(&[&inc], &[]).unwrap();
    }
    b.run(&[&inc], &[]).unwrap();
    assert_eq!(
        a.run(&[&read], &[]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![4.0]
    );
    assert_eq!(
        b.run(&[&read], &[]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![2.0]
    );
    // Eager assignment of a graph variable is refused.
    assert!(v.assign(&t32(vec![0.0], &[1])).is_err());
}

#[test]
fn gradients_match_the_tape_with_unknown_batch() {
    // loss = mean((x W + b - y)²) with an unknown batch size: the mean's count and the bias's
    // broadcast reduction come from the fed shapes.
    let xs = t32(vec![1.0, 2.0, -1.0, 0.5, 3.0, -2.0], &[3, 2]);
    let ys = t32(vec![1.0, -1.0, 2.0], &[3, 1]);
    let w0 = t32(vec![0.3, -0.7], &[2, 1]);
    let b0 = t32(vec![0.1], &[1]);
    let loss_of = |x: &Tensor, y: &Tensor, w: &Tensor, b: &Tensor| -> Result<Tensor, Error> {
        let p = ops::add(&ops::matmul(x, w, false, false)?, b)?;
        ops::reduce_mean(&ops::square(&ops::sub(&p, y)?)?, ops::Axes::All, false)
    };
    let tape = GradientTape::new();
    tape.watch(&w0);
    tape.watch(&b0);
    let l = loss_of(&xs, &ys, &w0, &b0).unwrap();
    let expected = tape.gradient(&l, &[&w0, &b0]).unwrap();

    let g = Graph::new();
    let (x, y, gw, gb, gx) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[None, Some(2)], "x").unwrap();
        let y = graph::placeholder(DType::F32, &[None, Some(1)], "y").unwrap();
        let w = Variable::new(w0.clone(), "w");
        let b = Variable::new(b0.clone(), "b");
        let l = loss_of(&x, &y, &w.value(), &b.value()).unwrap();
        let unrelated = Variable::new(t32(vec![0.0], &[1]), "unrelated");
        let gr =
            graph::gradients(&[l], &[w.value(), b.value(), unrelated.value(), x.clone()]).unwrap();
        assert!(gr[2].is_none(), "an unconnected source gets None");
        assert_eq!(gr[0].as_ref().unwrap().dims(), vec![Some(2), Some(1)]);
        let init = graph::global_variables_initializer().unwrap();
        let sess = Session::new(&g);
        sess.run(&[&init], &[]).unwrap();
        (
            x,
            y,
            gr[0].clone().unwrap(),
            gr[1].clone().unwrap(),
            (gr[3].clone().unwrap(), sess),
        )
    };
    let (gx, sess) = gx;
    let out = sess
        .run(&[&gw, &gb, &gx], &[(&x, xs.clone()), (&y, ys.clone())])
        .unwrap();
    for (a, e) in out.iter().zip(&expected) {
        assert_eq!(
            a.to_vec::<f32>().unwrap(),
            e.as_ref().unwrap().to_vec::<f32>().unwrap()
        );
    }
    // d loss / d x = 2 (p - y) Wᵀ / n, by hand for the first row.
    let p0 = 1.0 * 0.3 + 2.0 * -0.7 + 0.1 - 1.0f32;
    let gx0 = out[2].to_vec::<f32>().unwrap();
    assert!((gx0[0] - 2.0 * p0 * 0.3 / 3.0).abs() < 1e-6);
    assert!((gx0[1] - 2.0 * p0 * -0.7 / 3.0).abs() < 1e-6);
    // A batch of one: a new specialization, the count is 1 now.
    let out = sess
        .run(
            &[&gb],
            &[
                (&x, t32(vec![1.0, 2.0], &[1, 2])),
                (&y, t32(vec![1.0], &[1, 1])),
            ],
        )
        .unwrap();
    assert!((out[0].to_vec::<f32>().unwrap()[0] - 2.0 * p0).abs() < 1e-6);
}

/// One TF 1 optimizer step on `loss = Σ (w·c)` (gradient `c`) from `w = 1`, with each
/// optimizer's update written out by hand.
fn one_step(opt: &mut dyn Optimizer, steps: usize) -> Vec<f32> {
    let g = Graph::new();
    let _d = g.as_default();
    let w = Variable::new(t32(vec![1.0, -2.0], &[2]), "w");
    let c = t32(vec![0.5, -3.0], &[2]);
    let loss = ops::reduce_sum(&ops::mul(&w.value(), &c).unwrap(), ops::Axes::All, false).unwrap();
    let train = opt.minimize(&loss).unwrap();
    let init = graph::global_variables_initializer().unwrap();
    let sess = Session::new(&g);
    sess.run(&[&init], &[]).unwrap();
    for _ in 0..steps {
        sess.run(&[&train], &[]).unwrap();
    }
    sess.run(&[&w.value()], &[]).unwrap()[0]
        .to_vec::<f32>()
        .unwrap()
}

#[test]
fn tf1_optimizers_follow_their_update_rules() {
    let w0 = [1.0f64, -2.0];
    let gr = [0.5f64, -3.0];
    let close = |a: &[f32], b: &[f64]| {
        for (x, y) in a.iter().zip(b) {
            assert!(
                (*x as f64 - y).abs() < 1e-5 * (1.0 + y.abs()),
                "{a:?} vs {b:?}"
            );
        }
    };
    // Gradient descent, 2 steps.
    let e: Vec<f64> = (0..2).map(|i| w0[i] - 2.0 * 0.1 * gr[i]).collect();
    close(&one_step(&mut GradientDescentOptimizer::new(0.1), 2), &e);
    // Momentum 0.9, 2 steps: accum = g, then 1.9 g.
    let e: Vec<f64> = (0..2)
        .map(|i| w0[i] - 0.1 * gr[i] - 0.1 * 1.9 * gr[i])
        .collect();
    close(&one_step(&mut MomentumOptimizer::new(0.1, 0.9), 2), &e);
    // Nesterov: var -= lr (g + m accum_t).
    let e: Vec<f64> = (0..2)
        .map(|i| w0[i] - 0.1 * (gr[i] + 0.9 * gr[i]) - 0.1 * (gr[i] + 0.9 * 1.9 * gr[i]))
        .collect();
    close(
        &one_step(&mut MomentumOptimizer::new(0.1, 0.9).use_nesterov(true), 2),
        &e,
    );
    // Adam, 3 steps, TF 1's epsilon-hat form.
    let mut e = w0.to_vec();
    let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
    for t in 1..=3 {
        let lr_t = 0.01 * (1.0 - 0.999f64.powi(t)).sqrt() / (1.0 - 0.9f64.powi(t));
        for i in 0..2 {
            m[i] = 0.9 * m[i] + 0.1 * gr[i];
            v[i] = 0.999 * v[i] + 0.001 * gr[i] * gr[i];
            e[i] -= lr_t * m[i] / (v[i].sqrt() + 1e-8);
        }
    }
    close(&one_step(&mut AdamOptimizer::new(0.01), 3), &e);
    // RMSProp (ms starts at 1), 2 steps, momentum 0.5.
    let mut e = w0.to_vec();
    let (mut ms, mut mom) = ([1.0f64; 2], [0.0f64; 2]);
    for _ in 0..2 {
        for i in 0..2 {
            ms[i] = 0.9 * ms[i] + 0.1 * gr[i] * gr[i];
            mom[i] = 0.5 * mom[i] + 0.01 * gr[i] / (ms[i] + 1e-10).sqrt();
            e[i] -= mom[i];
        }
    }
    close(
        &one_step(&mut RMSPropOptimizer::new(0.01).momentum(0.5), 2),
        &e,
    );
    // Adagrad (accumulator starts at 0.1), 2 steps.
    let mut e = w0.to_vec();
    let mut acc = [0.1f64; 2];
    for _ in 0..2 {
        for i in 0..2 {
            acc[i] += gr[i] * gr[i];
            e[i] -= 0.1 * gr[i] / acc[i].sqrt();
        }
    }
    close(&one_step(&mut AdagradOptimizer::new(0.1), 2), &e);
}

#[test]
fn minimize_without_trainable_dependency_is_an_error() {
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[Some(2)], "x").unwrap();
    let loss = ops::reduce_sum(&x, ops::Axes::All, false).unwrap();
    let err = GradientDescentOptimizer::new(0.1)
        .minimize(&loss)
        .unwrap_err();
    assert!(err.to_string().contains("No gradients provided"), "{err}");
}

#[test]
fn name_scopes_dump_and_dot() {
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(3)], "x").unwrap();
    let y = {
        let _s = g.name_scope("layer1");
        let a = ops::relu(&x).unwrap();
        ops::relu(&a).unwrap()
    };
    assert_eq!(y.symbol().unwrap().name.as_ref(), "layer1/Relu_1:0");
    let dump = g.dump();
    assert_eq!(
        dump,
        "x = Placeholder() -> float32 (None, 3)\n\
         layer1/Relu = Relu(x:0) -> float32 (None, 3)\n\
         layer1/Relu_1 = Relu(layer1/Relu:0) -> float32 (None, 3)\n"
    );
    let dot = g.to_dot();
    assert!(dot.starts_with("digraph G {"), "{dot}");
    assert!(dot.contains("n0 -> n1"), "{dot}");
    assert!(dot.contains("n1 -> n2"), "{dot}");
}

#[test]
fn a_session_inside_as_default_still_computes() {
    let g = Graph::new();
    let _d = g.as_default();
    let v = Variable::new(t32(vec![2.0], &[1]), "v");
    let dbl = graph::assign_add(&v, &v.value()).unwrap();
    let init = graph::global_variables_initializer().unwrap();
    let sess = Session::new(&g);
    sess.run(&[&init], &[]).unwrap();
    let n = g.len();
    sess.run(&[&dbl], &[]).unwrap();
    assert_eq!(
        g.len(),
        n,
        "running a session adds no nodes to the default graph"
    );
    assert_eq!(
        sess.run(&[&v.value()], &[]).unwrap()[0]
            .to_vec::<f32>()
            .unwrap(),
        vec![4.0]
    );
}

#[test]
fn assignments_while_building_become_update_ops() {
    // What a BatchNormalization layer's moving averages do when traced into a graph.
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(1)], "x").unwrap();
    let moving = Variable::new(t32(vec![0.0], &[1]), "moving_mean");
    let mean = ops::reduce_mean(&x, 0, false).unwrap();
    moving.assign(&mean).unwrap();
    let updates = g.update_ops();
    assert_eq!(updates.len(), 1);
    let init = graph::global_variables_initializer().unwrap();
    let train = graph::group(&updates, "train").unwrap();
    let sess = Session::new(&g);
    sess.run(&[&init], &[]).unwrap();
    sess.run(&[&train], &[(&x, t32(vec![1.0, 2.0, 6.0], &[3, 1]))])
        .unwrap();
    let v = sess.run(&[&moving.value()], &[]).unwrap();
    assert_eq!(v[0].to_vec::<f32>().unwrap(), vec![3.0]);
}

#[test]
fn a_tape_in_graph_mode_needs_known_shapes() {
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(2)], "x").unwrap();
    let w = Variable::new(t32(vec![1.0, 2.0], &[2, 1]), "w");
    let tape = GradientTape::new();
    let y = ops::reduce_sum(
        &ops::matmul(&x, &w.value(), false, false).unwrap(),
        ops::Axes::All,
        false,
    )
    .unwrap();
    let err = tape.gradient(&y, &[&w]).unwrap_err().to_string();
    assert!(err.contains("use graph::gradients"), "{err}");
}
