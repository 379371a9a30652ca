//! Graph optimisation passes (`graph::optimize`): for each pass, the graph before and after on a
//! small graph, results identical with the pass on and off, the toggle really disabling it,
//! stateful ops untouched, fetched and fed nodes surviving; the fused kernels against the unfused
//! ops (bit for bit, and their gradients, with finite differences); the memory plan's in-place
//! reuse never touching a buffer someone else holds.
//!
//! Values are checked against hand computations or the unfused ops' results.

use ferroflow_core::graph::optimize::fused::{Arg, ElemFn, FusedBiasActivation, FusedElementwise};
use ferroflow_core::graph::optimize::{
    get_experimental_options, optimize_graph, set_experimental_options, OptimizerOptions,
};
use ferroflow_core::graph::train::{GradientDescentOptimizer, Optimizer};
use ferroflow_core::op::execute1;
use ferroflow_core::ops::binary::BinaryOp;
use ferroflow_core::ops::linalg::MatMul;
use ferroflow_core::ops::unary::UnaryOp;
use ferroflow_core::ops::{self, Padding};
use ferroflow_core::testing::{check_gradients, test_values};
use ferroflow_core::{graph, DType, GradientTape, Graph, Session, Tensor, Variable};

fn t32(v: Vec<f32>, s: &[usize]) -> Tensor {
    Tensor::from_vec(v, s).unwrap()
}

fn vals32(n: usize, seed: u64) -> Vec<f32> {
    test_values(n, seed, -2.0, 2.0)
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

fn small(n: usize, seed: u64) -> Vec<f32> {
    test_values(n, seed, -0.3, 0.3)
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

/// The initializer of `g`'s variables.
fn init(g: &Graph) -> Tensor {
    let _d = g.as_default();
    graph::global_variables_initializer().unwrap()
}

/// Only `pass` on (memory optimisation off unless asked).
fn only(pass: &str) -> OptimizerOptions {
    let mut o = OptimizerOptions::none();
    match pass {
        "pruning" => o.pruning = true,
        "constant_folding" => o.constant_folding = true,
        "cse" => o.common_subexpression_elimination = true,
        "arithmetic" => o.arithmetic = true,
        "remapping" => o.remapping = true,
        "memory" => o.memory_optimization = true,
        _ => panic!("unknown pass {pass}"),
    }
    o
}

fn count(dump: &str, op: &str) -> usize {
    dump.lines()
        .filter(|l| l.contains(&format!("= {op}(")))
        .count()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// Runs `fetch` with `feeds` under `opts` and returns the values.
fn run_with(
    g: &Graph,
    opts: OptimizerOptions,
    fetch: &[&Tensor],
    feeds: &[(&Tensor, Tensor)],
) -> Vec<Tensor> {
    Session::with_options(g, opts).run(fetch, feeds).unwrap()
}

#[test]
fn pruning_forwards_identities_and_drops_dead_nodes() {
    let g = Graph::new();
    let (x, y) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[Some(2), Some(2)], "x").unwrap();
        let a = ops::identity(&x).unwrap();
        let s = ops::stop_gradient(&a).unwrap();
        let _unused = ops::exp(&x).unwrap();
        let y = ops::mul(&s, &s).unwrap();
        (x, y)
    };
    let before = g.dump();
    assert_eq!(count(&before, "Identity"), 1, "{before}");
    assert_eq!(count(&before, "Exp"), 1, "{before}");
    let (after, _) = optimize_graph(&g, &[&y], &only("pruning")).unwrap();
    let after = after.dump();
    assert_eq!(
        after,
        "x = Placeholder() -> float32 (2, 2)\nMul = Mul(x:0, x:0) -> float32 (2, 2)\n"
    );
    // Off: nothing removed.
    let (off, _) = optimize_graph(&g, &[&y], &OptimizerOptions::none()).unwrap();
    assert_eq!(off.dump(), before);
    let feed = t32(vec![1.0, -2.0, 3.0, 0.5], &[2, 2]);
    for o in [only("pruning"), OptimizerOptions::none()] {
        let v = run_with(&g, o, &[&y], &[(&x, feed.clone())]);
        assert_eq!(v[0].to_vec::<f32>().unwrap(), vec![1.0, 4.0, 9.0, 0.25]);
    }
}

#[test]
fn constant_folding_evaluates_constant_subgraphs_once() {
    let g = Graph::new();
    let (x, y) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[Some(3)], "x").unwrap();
        let c1 = t32(vec![1.0, 2.0, 3.0], &[3]);
        let c2 = t32(vec![0.5, 0.5, 0.5], &[3]);
        let s = ops::add(&c1, &c2).unwrap(); // AddV2 of two constants
        let e = ops::square(&s).unwrap(); // Square of a folded constant
        let y = ops::mul(&x, &e).unwrap();
        (x, y)
    };
    let before = g.dump();
    assert_eq!(count(&before, "AddV2"), 1);
    assert_eq!(count(&before, "Square"), 1);
    let (after, _) = optimize_graph(&g, &[&y], &only("constant_folding")).unwrap();
    let d = after.dump();
    // The chain folded into constants that keep their names.
    assert_eq!(count(&d, "AddV2"), 0, "{d}");
    assert_eq!(count(&d, "Square"), 0, "{d}");
    assert!(d.contains("Square = Const() -> float32 (3,)"), "{d}");
    assert!(d.contains("Mul = Mul(x:0, Square:0)"), "{d}");
    let (off, _) = optimize_graph(&g, &[&y], &only("pruning")).unwrap();
    assert_eq!(count(&off.dump(), "Square"), 1);
    let feed = t32(vec![1.0, 2.0, -1.0], &[3]);
    // (1.5², 2.5², 3.5²) · x
    let want = vec![2.25f32, 12.5, -12.25];
    for o in [only("constant_folding"), OptimizerOptions::none()] {
        assert_eq!(
            run_with(&g, o, &[&y], &[(&x, feed.clone())])[0]
                .to_vec::<f32>()
                .unwrap(),
            want
        );
    }
}

#[test]
fn cse_merges_identical_nodes() {
    let g = Graph::new();
    let (x, y) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[Some(2)], "x").unwrap();
        let a = ops::mul(&x, &x).unwrap();
        let b = ops::mul(&x, &x).unwrap();
        let ea = ops::exp(&a).unwrap();
        let eb = ops::exp(&b).unwrap();
        let y = ops::add(&ea, &eb).unwrap();
        (x, y)
    };
    assert_eq!(count(&g.dump(), "Mul"), 2);
    assert_eq!(count(&g.dump(), "Exp"), 2);
    let mut o = only("cse");
    o.pruning = true;
    let (after, _) = optimize_graph(&g, &[&y], &o).unwrap();
    assert_eq!(
        after.dump(),
        "x = Placeholder() -> float32 (2,)\nMul = Mul(x:0, x:0) -> float32 (2,)\n\
         Exp = Exp(Mul:0) -> float32 (2,)\nAddV2 = AddV2(Exp:0, Exp:0) -> float32 (2,)\n"
    );
    let (off, _) = optimize_graph(&g, &[&y], &only("pruning")).unwrap();
    assert_eq!(count(&off.dump(), "Mul"), 2);
    let feed = t32(vec![0.0, 1.0], &[2]);
    for o in [o, OptimizerOptions::none()] {
        let v = run_with(&g, o, &[&y], &[(&x, feed.clone())])[0]
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(v, vec![2.0, 2.0 * 1.0f32.exp()]);
    }
}

#[test]
fn arithmetic_simplifies_identities_transposes_and_reshapes() {
    let g = Graph::new();
    let (x, y) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[Some(2), Some(3)], "x").unwrap();
        let one = Tensor::scalar(1.0f32);
        let zero = Tensor::scalar(0.0f32);
        let a = ops::mul(&x, &one).unwrap();
        let b = ops::add(&zero, &a).unwrap();
        let t = ops::transpose(&ops::transpose(&b, &[1, 0]).unwrap(), &[1, 0]).unwrap();
        let r = ops::reshape(&ops::reshape(&t, &[6]).unwrap(), &[3, 2]).unwrap();
        let same = ops::reshape(&r, &[3, 2]).unwrap();
        let y = ops::exp(&same).unwrap();
        (x, y)
    };
    let before = g.dump();
    assert_eq!(count(&before, "Transpose"), 2);
    assert_eq!(count(&before, "Reshape"), 3);
    let mut o = only("arithmetic");
    o.pruning = true;
    let (after, _) = optimize_graph(&g, &[&y], &o).unwrap();
    let d = after.dump();
    assert_eq!(
        d,
        "x = Placeholder() -> float32 (2, 3)\nReshape_1 = Reshape(x:0) -> float32 (3, 2)\n\
         Exp = Exp(Reshape_1:0) -> float32 (3, 2)\n",
    );
    // Off: all still there.
    let (off, _) = optimize_graph(&g, &[&y], &only("pruning")).unwrap();
    assert_eq!(count(&off.dump(), "Transpose"), 2);
    let feed = t32(vals32(6, 1), &[2, 3]);
    let want: Vec<f32> = feed
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.exp())
        .collect();
    for o in [o, OptimizerOptions::none()] {
        let v = run_with(&g, o, &[&y], &[(&x, feed.clone())]);
        assert_eq!(v[0].shape(), &[3, 2]);
        assert_eq!(v[0].to_vec::<f32>().unwrap(), want);
    }
}

#[test]
fn arithmetic_composes_transposes_and_keeps_broadcasting_ops() {
    let g = Graph::new();
    let (x, y, z) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[Some(2), Some(3), Some(4)], "x").unwrap();
        let t = ops::transpose(&ops::transpose(&x, &[1, 2, 0]).unwrap(), &[1, 0, 2]).unwrap();
        // x * ones of a larger shape broadcasts: not an identity.
        let ones = Tensor::from_vec(vec![1.0f32; 2 * 2 * 3 * 4], &[2, 2, 3, 4]).unwrap();
        let z = ops::mul(&x, &ones).unwrap();
        (x, t, z)
    };
    let mut o = only("arithmetic");
    o.pruning = true;
    let (after, _) = optimize_graph(&g, &[&y, &z], &o).unwrap();
    let d = after.dump();
    assert_eq!(count(&d, "Transpose"), 1, "{d}");
    assert_eq!(count(&d, "Mul"), 1, "{d}");
    let feed = t32(vals32(24, 2), &[2, 3, 4]);
    let on = run_with(&g, o, &[&y, &z], &[(&x, feed.clone())]);
    let off = run_with(
        &g,
        OptimizerOptions::none(),
        &[&y, &z],
        &[(&x, feed.clone())],
    );
    // transpose(x, [1,2,0]) then [1,0,2] is transpose(x, [2,1,0]).
    let want = ops::transpose(&feed, &[2, 1, 0]).unwrap();
    assert_eq!(on[0].shape(), &[4, 3, 2]);
    assert_eq!(
        on[0].to_vec::<f32>().unwrap(),
        want.to_vec::<f32>().unwrap()
    );
    assert_eq!(
        off[0].to_vec::<f32>().unwrap(),
        want.to_vec::<f32>().unwrap()
    );
    assert_eq!(on[1].shape(), &[2, 2, 3, 4]);
    assert_eq!(bits(&on[1]), bits(&off[1]));
}

/// A dense layer with ReLU then a tanh/scale/shift chain.
fn dense_graph() -> (Graph, Tensor, Tensor, Tensor) {
    let g = Graph::new();
    let (x, h, y) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[Some(4), Some(3)], "x").unwrap();
        let w = Variable::new(t32(vals32(15, 3), &[3, 5]), "w");
        let b = Variable::new(t32(vals32(5, 4), &[5]), "b");
        let m = ops::matmul(&x, &w.value(), false, false).unwrap();
        let h = ops::relu(&ops::bias_add(&m, &b.value()).unwrap()).unwrap();
        let t = ops::tanh(&h).unwrap();
        let s = ops::mul(&t, &Tensor::scalar(2.0f32)).unwrap();
        let y = ops::sub(&s, &t32(vec![0.5, 1.0, 1.5, 2.0, 2.5], &[5])).unwrap();
        (x, h, ops::sigmoid(&y).unwrap())
    };
    (g, x, h, y)
}

#[test]
fn remapping_fuses_bias_activation_and_elementwise_chains() {
    let (g, x, _, y) = dense_graph();
    let mut o = only("remapping");
    o.pruning = true;
    let sess = Session::with_options(&g, o);
    sess.run(&[&init(&g)], &[]).unwrap();
    let feed = t32(vals32(12, 5), &[4, 3]);
    let (after, _) = sess.optimized_graph(&[&y], &[(&x, feed.clone())]).unwrap();
    let d = after.dump();
    assert_eq!(count(&d, "_FusedMatMul"), 1, "{d}");
    assert_eq!(count(&d, "FusedElementwise"), 1, "{d}");
    for op in [
        "BatchMatMulV2",
        "BiasAdd",
        "Relu",
        "Tanh",
        "Mul",
        "Sub",
        "Sigmoid",
    ] {
        assert_eq!(count(&d, op), 0, "{op} left in\n{d}");
    }
    assert!(
        d.contains("Relu = _FusedMatMul(x:0, w/read:0, b/read:0) -> float32 (4, 5)"),
        "{d}"
    );
    assert!(d.contains("Sigmoid = FusedElementwise(Relu:0, "), "{d}");
    let on = sess.run(&[&y], &[(&x, feed.clone())]).unwrap();
    let off_sess = Session::with_options(&g, OptimizerOptions::none());
    off_sess.run(&[&init(&g)], &[]).unwrap();
    let (off_graph, _) = off_sess
        .optimized_graph(&[&y], &[(&x, feed.clone())])
        .unwrap();
    assert_eq!(count(&off_graph.dump(), "BiasAdd"), 1);
    let off = off_sess.run(&[&y], &[(&x, feed)]).unwrap();
    // The fused kernels keep each element's arithmetic: bit-identical.
    assert_eq!(bits(&on[0]), bits(&off[0]));
}

#[test]
fn remapping_fuses_conv2d_bias_relu_bit_identically() {
    let g = Graph::new();
    let (x, y) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[Some(2), Some(5), Some(5), Some(2)], "x").unwrap();
        let f = t32(vals32(3 * 3 * 2 * 4, 6), &[3, 3, 2, 4]);
        let b = t32(vals32(4, 7), &[4]);
        let c = ops::conv2d(&x, &f, [1, 1], Padding::Valid, [1, 1]).unwrap();
        (x, ops::relu(&ops::bias_add(&c, &b).unwrap()).unwrap())
    };
    let (after, _) = optimize_graph(&g, &[&y], &OptimizerOptions::default()).unwrap();
    let d = after.dump();
    assert_eq!(count(&d, "_FusedConv2D"), 1, "{d}");
    assert_eq!(count(&d, "Conv2D"), 0, "{d}");
    let feed = t32(vals32(100, 8), &[2, 5, 5, 2]);
    let on = run_with(
        &g,
        OptimizerOptions::default(),
        &[&y],
        &[(&x, feed.clone())],
    );
    let off = run_with(&g, OptimizerOptions::none(), &[&y], &[(&x, feed)]);
    assert_eq!(on[0].shape(), &[2, 3, 3, 4]);
    assert_eq!(bits(&on[0]), bits(&off[0]));
    assert!(on[0].to_vec::<f32>().unwrap().iter().all(|&v| v >= 0.0));
}

#[test]
fn fetched_intermediates_survive_and_block_fusion() {
    let (g, x, h, y) = dense_graph();
    let sess = Session::with_options(&g, OptimizerOptions::default());
    sess.run(&[&init(&g)], &[]).unwrap();
    let feed = t32(vals32(12, 9), &[4, 3]);
    let (after, _) = sess
        .optimized_graph(&[&h, &y], &[(&x, feed.clone())])
        .unwrap();
    let d = after.dump();
    // `h` (the ReLU) is fetched: it survives as a node of its own (here the fused dense layer).
    assert!(d.contains("Relu = _FusedMatMul("), "{d}");
    let both = sess.run(&[&h, &y], &[(&x, feed.clone())]).unwrap();
    let off = Session::with_options(&g, OptimizerOptions::none());
    off.run(&[&init(&g)], &[]).unwrap();
    let want = off.run(&[&h, &y], &[(&x, feed.clone())]).unwrap();
    assert_eq!(bits(&both[0]), bits(&want[0]));
    assert_eq!(bits(&both[1]), bits(&want[1]));
    // Feeding the fetched intermediate instead of computing it.
    let hv = t32(vec![0.25; 20], &[4, 5]);
    let fed = sess.run(&[&y], &[(&h, hv.clone())]).unwrap();
    let fed_off = off.run(&[&y], &[(&h, hv)]).unwrap();
    assert_eq!(bits(&fed[0]), bits(&fed_off[0]));
}

#[test]
fn stateful_ops_are_never_folded_or_merged() {
    let g = Graph::new();
    let (a, b) = {
        let _d = g.as_default();
        let c = t32((0..8).map(|v| v as f32).collect(), &[8]);
        (
            ops::random_shuffle(&c, 3).unwrap(),
            ops::random_shuffle(&c, 3).unwrap(),
        )
    };
    let (after, _) = optimize_graph(&g, &[&a, &b], &OptimizerOptions::default()).unwrap();
    let d = after.dump();
    assert_eq!(count(&d, "RandomShuffle"), 2, "{d}");
    // Variables: reads are never folded even when nothing else feeds the graph.
    let g2 = Graph::new();
    let y = {
        let _d = g2.as_default();
        let v = Variable::new(t32(vec![1.0, 2.0], &[2]), "v");
        ops::add(&v.value(), &v.value()).unwrap()
    };
    let (after, _) = optimize_graph(&g2, &[&y], &OptimizerOptions::default()).unwrap();
    assert!(after.dump().contains("ReadVariable[v]"), "{}", after.dump());
    assert_eq!(count(&after.dump(), "AddV2"), 1);
}

#[test]
fn memory_plan_reuses_only_dead_exclusive_buffers() {
    let g = Graph::new();
    let (x, v, y, z) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[Some(3)], "x").unwrap();
        let v = Variable::new(t32(vec![1.0, 2.0, 3.0], &[3]), "v");
        // exp(x) is dead after the Neg: its buffer is reused. x (fed) and v (a variable) are
        // held elsewhere and must never be overwritten.
        let e = ops::exp(&x).unwrap();
        let y = ops::neg(&e).unwrap();
        let z = ops::square(&v.value()).unwrap();
        (x, v, y, z)
    };
    let sess = Session::with_options(&g, only("memory"));
    sess.run(&[&init(&g)], &[]).unwrap();
    let feed = t32(vec![0.0, 1.0, 2.0], &[3]);
    let out = sess.run(&[&y, &z], &[(&x, feed.clone())]).unwrap();
    let want: Vec<f32> = [0.0f32, 1.0, 2.0].iter().map(|v| -v.exp()).collect();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), want);
    assert_eq!(out[1].to_vec::<f32>().unwrap(), vec![1.0, 4.0, 9.0]);
    assert_eq!(feed.to_vec::<f32>().unwrap(), vec![0.0, 1.0, 2.0]);
    // The variable keeps its value across runs.
    let again = sess.run(&[&z], &[]).unwrap();
    assert_eq!(again[0].to_vec::<f32>().unwrap(), vec![1.0, 4.0, 9.0]);
    let _ = v;
}

#[test]
fn training_is_bit_identical_with_all_passes_on_and_off() {
    let g = Graph::new();
    let (x, labels, loss, train) = {
        let _d = g.as_default();
        let x = graph::placeholder(DType::F32, &[None, Some(6)], "x").unwrap();
        let labels = graph::placeholder(DType::I64, &[None], "labels").unwrap();
        let w1 = Variable::new(t32(small(48, 11), &[6, 8]), "w1");
        let b1 = Variable::new(t32(small(8, 12), &[8]), "b1");
        let w2 = Variable::new(t32(small(24, 13), &[8, 3]), "w2");
        let b2 = Variable::new(t32(vec![0.0; 3], &[3]), "b2");
        let h = ops::relu(
            &ops::bias_add(
                &ops::matmul(&x, &w1.value(), false, false).unwrap(),
                &b1.value(),
            )
            .unwrap(),
        )
        .unwrap();
        let logits = ops::bias_add(
            &ops::matmul(&h, &w2.value(), false, false).unwrap(),
            &b2.value(),
        )
        .unwrap();
        let loss = ops::reduce_mean(
            &ops::sparse_softmax_cross_entropy_with_logits(&labels, &logits).unwrap(),
            Vec::<isize>::new(),
            false,
        )
        .unwrap();
        let train = GradientDescentOptimizer::new(0.1).minimize(&loss).unwrap();
        (x, labels, loss, train)
    };
    let xs = t32(vals32(60, 14), &[10, 6]);
    let ys = Tensor::from_vec((0..10).map(|i| (i % 3) as i64).collect::<Vec<_>>(), &[10]).unwrap();
    let mut runs = Vec::new();
    for o in [OptimizerOptions::default(), OptimizerOptions::none()] {
        let sess = Session::with_options(&g, o);
        sess.run(&[&init(&g)], &[]).unwrap();
        let mut losses = Vec::new();
        for _ in 0..4 {
            let out = sess
                .run(&[&loss, &train], &[(&x, xs.clone()), (&labels, ys.clone())])
                .unwrap();
            losses.push(out[0].to_vec::<f32>().unwrap()[0].to_bits());
        }
        runs.push(losses);
    }
    assert_eq!(runs[0], runs[1]);
    // The loss went down.
    let losses: Vec<f32> = runs[0].iter().map(|&b| f32::from_bits(b)).collect();
    assert!(losses[3] < losses[0], "{losses:?}");
    // The optimised training step has the fused dense layer (the ReLU's gradient mask reads
    // the ReLU's output, so BiasAdd + Relu fuse in training too).
    let sess = Session::with_options(&g, OptimizerOptions::default());
    let (opt, _) = sess
        .optimized_graph(&[&loss, &train], &[(&x, xs), (&labels, ys)])
        .unwrap();
    let d = opt.dump();
    assert!(count(&d, "_FusedMatMul") >= 2, "{d}");
}

#[test]
fn global_options_apply_to_new_sessions_and_per_session_options_win() {
    let saved = get_experimental_options();
    assert_eq!(OptimizerOptions::default(), {
        let mut o = OptimizerOptions::none();
        o.constant_folding = true;
        o.common_subexpression_elimination = true;
        o.pruning = true;
        o.arithmetic = true;
        o.remapping = true;
        o.memory_optimization = true;
        o
    });
    let g = Graph::new();
    let y = {
        let _d = g.as_default();
        ops::add(&t32(vec![1.0], &[1]), &t32(vec![2.0], &[1])).unwrap()
    };
    set_experimental_options(OptimizerOptions::none());
    let s = Session::new(&g);
    assert_eq!(s.options(), OptimizerOptions::none());
    let (off, _) = s.optimized_graph(&[&y], &[]).unwrap();
    assert_eq!(count(&off.dump(), "AddV2"), 1);
    set_experimental_options(saved);
    let s2 = Session::with_options(&g, only("constant_folding"));
    let (on, _) = s2.optimized_graph(&[&y], &[]).unwrap();
    assert_eq!(count(&on.dump(), "AddV2"), 0);
    assert_eq!(
        s2.run(&[&y], &[]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![3.0]
    );
}

#[test]
fn fused_elementwise_is_bit_identical_to_the_unfused_ops() {
    // sigmoid((x * y - 0.5) / z) + relu(x), with a scalar and a bias-like row input.
    let f = FusedElementwise::new(
        4,
        vec![
            (
                ElemFn::Binary(BinaryOp::Mul),
                vec![Arg::Input(0), Arg::Input(1)],
            ),
            (
                ElemFn::Binary(BinaryOp::Sub),
                vec![Arg::Step(0), Arg::Input(2)],
            ),
            (
                ElemFn::Binary(BinaryOp::Div),
                vec![Arg::Step(1), Arg::Input(3)],
            ),
            (ElemFn::Unary(UnaryOp::Sigmoid), vec![Arg::Step(2)]),
            (ElemFn::Unary(UnaryOp::Relu), vec![Arg::Input(0)]),
            (
                ElemFn::Binary(BinaryOp::Add),
                vec![Arg::Step(3), Arg::Step(4)],
            ),
        ],
    )
    .unwrap();
    // Large enough for several parallel chunks and a ragged last block.
    let n = 70_001;
    let x = t32(vals32(n, 21), &[n]);
    let y = t32(vals32(n, 22), &[n]);
    let half = Tensor::scalar(0.5f32);
    let z = t32(vec![1.5], &[1]);
    let fused = execute1(f.clone(), &[x.clone(), y.clone(), half.clone(), z.clone()]).unwrap();
    let unfused = ops::add(
        &ops::sigmoid(
            &ops::div(&ops::sub(&ops::mul(&x, &y).unwrap(), &half).unwrap(), &z).unwrap(),
        )
        .unwrap(),
        &ops::relu(&x).unwrap(),
    )
    .unwrap();
    assert_eq!(bits(&fused), bits(&unfused));
    // Row broadcast (a bias along the last axis).
    let g = FusedElementwise::new(
        2,
        vec![
            (
                ElemFn::Binary(BinaryOp::Add),
                vec![Arg::Input(0), Arg::Input(1)],
            ),
            (ElemFn::Unary(UnaryOp::Tanh), vec![Arg::Step(0)]),
        ],
    )
    .unwrap();
    let m = t32(vals32(35, 23), &[7, 5]);
    let b = t32(vals32(5, 24), &[5]);
    let fused = execute1(g, &[m.clone(), b.clone()]).unwrap();
    let unfused = ops::tanh(&ops::add(&m, &b).unwrap()).unwrap();
    assert_eq!(fused.shape(), &[7, 5]);
    assert_eq!(bits(&fused), bits(&unfused));
    // Bad programs are errors.
    assert!(FusedElementwise::new(1, vec![]).is_err());
    assert!(
        FusedElementwise::new(1, vec![(ElemFn::Unary(UnaryOp::Exp), vec![Arg::Step(0)])]).is_err()
    );
    assert!(FusedElementwise::new(
        1,
        vec![(ElemFn::Unary(UnaryOp::Round), vec![Arg::Input(0)])]
    )
    .is_err());
}

#[test]
fn fused_ops_gradients_match_the_unfused_ops_and_finite_differences() {
    // FusedElementwise: exp(a * b) - a, gradients checked numerically (f64).
    let f = FusedElementwise::new(
        2,
        vec![
            (
                ElemFn::Binary(BinaryOp::Mul),
                vec![Arg::Input(0), Arg::Input(1)],
            ),
            (ElemFn::Unary(UnaryOp::Exp), vec![Arg::Step(0)]),
            (
                ElemFn::Binary(BinaryOp::Sub),
                vec![Arg::Step(1), Arg::Input(0)],
            ),
        ],
    )
    .unwrap();
    let a = Tensor::from_vec(test_values(6, 31, -1.0, 1.0), &[2, 3]).unwrap();
    let b = Tensor::from_vec(test_values(3, 32, -1.0, 1.0), &[3]).unwrap();
    let ff = f.clone();
    check_gradients(
        move |xs| execute1(ff.clone(), &[xs[0].clone(), xs[1].clone()]),
        &[a.clone(), b.clone()],
        &[0, 1],
    )
    .unwrap();
    // Against the unfused ops' tape gradients.
    let grads = |fused: bool| {
        let tape = GradientTape::new();
        tape.watch(&a);
        tape.watch(&b);
        let y = if fused {
            execute1(f.clone(), &[a.clone(), b.clone()]).unwrap()
        } else {
            ops::sub(&ops::exp(&ops::mul(&a, &b).unwrap()).unwrap(), &a).unwrap()
        };
        let g = tape.gradient(&y, &[&a, &b]).unwrap();
        g.into_iter()
            .map(|t| t.unwrap().to_vec::<f64>().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(grads(true), grads(false));

    // _FusedMatMul with ReLU.
    let fm = FusedBiasActivation::new(
        std::sync::Arc::new(MatMul {
            transpose_a: false,
            transpose_b: false,
        }),
        Some(UnaryOp::Relu),
    )
    .unwrap();
    let x = Tensor::from_vec(test_values(6, 33, -1.0, 1.0), &[2, 3]).unwrap();
    let w = Tensor::from_vec(test_values(12, 34, -1.0, 1.0), &[3, 4]).unwrap();
    let bias = Tensor::from_vec(test_values(4, 35, -0.5, 0.5), &[4]).unwrap();
    let fm2 = fm.clone();
    check_gradients(
        move |xs| execute1(fm2.clone(), &[xs[0].clone(), xs[1].clone(), xs[2].clone()]),
        &[x.clone(), w.clone(), bias.clone()],
        &[0, 1, 2],
    )
    .unwrap();
    let fused = execute1(fm, &[x.clone(), w.clone(), bias.clone()]).unwrap();
    let unfused =
        ops::relu(&ops::bias_add(&ops::matmul(&x, &w, false, false).unwrap(), &bias).unwrap())
            .unwrap();
    assert_eq!(
        fused.to_vec::<f64>().unwrap(),
        unfused.to_vec::<f64>().unwrap()
    );
    // _FusedConv2D needs a Conv2D base; anything else is an error.
    let bad = FusedBiasActivation::new(std::sync::Arc::new(ops::unary::Unary(UnaryOp::Exp)), None);
    assert!(bad.is_err());
}
