//! The conv + max-pool fusion (`_FusedConv2DMaxPool`, `_MaxPoolReluGrad` and the remapper's
//! rewrite): the fused op against the unfused ops bit for bit (values and gradients), finite
//! differences in f64, the errors, and graphs (inference and training) with the rewrite against
//! the same graphs without any remapping.

use ferroflow_core::graph::optimize::conv_pool::{FusedConv2DMaxPool, MaxPoolReluGrad};
use ferroflow_core::graph::optimize::OptimizerOptions;
use ferroflow_core::graph::train::{GradientDescentOptimizer, Optimizer};
use ferroflow_core::op::{execute, execute1};
use ferroflow_core::ops::conv::ConvAttrs;
use ferroflow_core::ops::{self, Padding};
use ferroflow_core::testing::{check_gradients, test_values};
use ferroflow_core::{graph, DType, Error, GradientTape, Graph, Session, Tensor, Variable};

fn t32(v: Vec<f64>, s: &[usize]) -> Tensor {
    Tensor::from_vec(v.into_iter().map(|x| x as f32).collect::<Vec<f32>>(), s).unwrap()
}

fn attrs(stride: usize, padding: Padding) -> ConvAttrs {
    ConvAttrs {
        strides: [stride, stride],
        padding,
        dilations: [1, 1],
    }
}

fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => t
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        _ => t
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect(),
    }
}

/// The unfused chain: Conv2D → BiasAdd → (Relu) → MaxPool.
fn unfused(x: &Tensor, w: &Tensor, b: &Tensor, a: ConvAttrs, relu: bool, p: usize) -> Tensor {
    let z = ops::conv2d(x, w, a.strides, a.padding, a.dilations).unwrap();
    let z = ops::bias_add(&z, b).unwrap();
    let z = if relu { ops::relu(&z).unwrap() } else { z };
    ops::max_pool2d(&z, [p, p], [p, p], Padding::Valid).unwrap()
}

fn fused(x: &Tensor, w: &Tensor, b: &Tensor, a: ConvAttrs, relu: bool, p: usize) -> Vec<Tensor> {
    let op = FusedConv2DMaxPool::new(a, relu, [p, p]).unwrap();
    execute(op, &[x.clone(), w.clone(), b.clone()]).unwrap()
}

/// (n, h, w, cin, cout, k, stride, padding, relu, pool)
type Case = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    Padding,
    bool,
    usize,
);

const CASES: [Case; 7] = [
    (2, 28, 28, 1, 32, 3, 1, Padding::Valid, true, 2),
    (2, 13, 13, 32, 64, 3, 1, Padding::Valid, true, 2),
    (1, 9, 11, 3, 20, 3, 2, Padding::Same, true, 2),
    (3, 10, 7, 32, 17, 3, 1, Padding::Same, false, 3),
    (2, 7, 9, 1, 5, 2, 1, Padding::Valid, true, 3),
    (1, 12, 12, 3, 1, 3, 1, Padding::Valid, true, 2),
    (2, 8, 9, 70, 3, 3, 1, Padding::Valid, false, 2),
];

fn inputs(c: &Case, seed: u64, coarse: bool, f64_: bool) -> [Tensor; 3] {
    let &(n, h, w, ci, co, k, ..) = c;
    let vals = |len: usize, s: u64| {
        let v = test_values(len, seed + s, -1.0, 1.0);
        if coarse {
            // Multiples of 1/4 with many zeros: exact sums, so many ties after ReLU.
            v.into_iter().map(|x| (x * 4.0).round() / 4.0).collect()
        } else {
            v
        }
    };
    let mk = |v: Vec<f64>, s: &[usize]| {
        if f64_ {
            Tensor::from_vec(v, s).unwrap()
        } else {
            t32(v, s)
        }
    };
    [
        mk(vals(n * h * w * ci, 1), &[n, h, w, ci]),
        mk(vals(k * k * ci * co, 2), &[k, k, ci, co]),
        mk(vals(co, 3), &[co]),
    ]
}

#[test]
fn fused_conv_max_pool_is_bit_identical_to_the_unfused_ops() {
    for (i, c) in CASES.iter().enumerate() {
        let a = attrs(c.6, c.7);
        for (coarse, f64_) in [(false, false), (true, false), (false, true)] {
            let [x, w, b] = inputs(c, 10 * i as u64, coarse, f64_);
            let want = unfused(&x, &w, &b, a, c.8, c.9);
            let got = fused(&x, &w, &b, a, c.8, c.9);
            assert_eq!(got[0].shape(), want.shape(), "case {i}");
            assert_eq!(
                bits(&got[0]),
                bits(&want),
                "case {i} coarse {coarse} f64 {f64_}"
            );
            assert_eq!(got[1].dtype(), DType::U8);
            assert_eq!(got[1].shape(), want.shape());
            let pool = (c.9 * c.9) as u8;
            assert!(got[1].to_vec::<u8>().unwrap().iter().all(|&v| v < pool));
        }
    }
}

#[test]
fn argmax_is_the_first_maximum_of_each_window() {
    // One channel, 1x1 identity filter, bias 0, relu: z = relu(x). Window 2x2 over 2x4 (+ a
    // dropped 3rd row and 5th column).
    let x = Tensor::from_vec(
        vec![
            -1.0f32, -2.0, 1.0, 3.0, 9.0, //
            -3.0, -1.0, 3.0, 2.0, 9.0, //
            9.0, 9.0, 9.0, 9.0, 9.0,
        ],
        &[1, 3, 5, 1],
    )
    .unwrap();
    let w = Tensor::from_vec(vec![1.0f32], &[1, 1, 1, 1]).unwrap();
    let b = Tensor::from_vec(vec![0.0f32], &[1]).unwrap();
    let out = fused(&x, &w, &b, attrs(1, Padding::Valid), true, 2);
    assert_eq!(out[0].shape(), &[1, 1, 2, 1]);
    // Window 0 is all zeros after ReLU: the first (index 0) wins; window 1: 3 at (0,1) and at
    // (1,0): the first in row-major order, index 1.
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![0.0, 3.0]);
    assert_eq!(out[1].to_vec::<u8>().unwrap(), vec![0, 1]);
}

#[test]
fn without_argmax_has_one_output_with_the_same_bits() {
    for (i, c) in CASES.iter().enumerate() {
        let a = attrs(c.6, c.7);
        for (coarse, f64_) in [(false, false), (true, false), (false, true)] {
            let [x, w, b] = inputs(c, 50 + 10 * i as u64, coarse, f64_);
            let want = unfused(&x, &w, &b, a, c.8, c.9);
            let op = FusedConv2DMaxPool::new(a, c.8, [c.9, c.9])
                .unwrap()
                .without_argmax();
            assert!(!op.argmax);
            let got = execute(op, &[x, w, b]).unwrap();
            assert_eq!(got.len(), 1, "case {i}");
            assert_eq!(got[0].shape(), want.shape(), "case {i}");
            assert_eq!(
                bits(&got[0]),
                bits(&want),
                "case {i} coarse {coarse} f64 {f64_}"
            );
        }
    }
}

#[test]
fn max_pool_relu_grad_is_relu_grad_of_max_pool_grad() {
    for (i, c) in CASES.iter().enumerate() {
        let a = attrs(c.6, c.7);
        let [x, w, b] = inputs(c, 100 + 10 * i as u64, true, false);
        let z = ops::bias_add(
            &ops::conv2d(&x, &w, a.strides, a.padding, a.dilations).unwrap(),
            &b,
        )
        .unwrap();
        let z = if c.8 { ops::relu(&z).unwrap() } else { z };
        let p = c.9;
        let pool_attrs = ops::pool::PoolAttrs {
            ksize: [p, p],
            strides: [p, p],
            padding: Padding::Valid,
        };
        let out = fused(&x, &w, &b, a, c.8, p);
        // A gradient with negative values, so a wrong sign of zero would show.
        let dp = t32(
            test_values(out[0].num_elements(), 7 + i as u64, -1.0, 1.0),
            out[0].shape(),
        );
        let g1 = ops::pool::max_pool_grad(&z, &dp, pool_attrs).unwrap();
        let want = if c.8 {
            ops::relu_grad(&g1, &z).unwrap()
        } else {
            g1
        };
        let op = MaxPoolReluGrad {
            conv_hw: [z.shape()[1], z.shape()[2]],
            window: [p, p],
            relu: c.8,
        };
        let got = execute1(op, &[out[0].clone(), out[1].clone(), dp]).unwrap();
        assert_eq!(got.shape(), z.shape());
        assert_eq!(bits(&got), bits(&want), "case {i}");
    }
}

#[test]
fn gradients_equal_the_unfused_ops_bit_for_bit() {
    for (i, c) in CASES.iter().enumerate() {
        let a = attrs(c.6, c.7);
        let [x, w, b] = inputs(c, 200 + 10 * i as u64, i % 2 == 0, false);
        let grads = |f: &dyn Fn(&Tensor, &Tensor, &Tensor) -> Tensor| {
            let tape = GradientTape::new();
            tape.watch(&x);
            tape.watch(&w);
            tape.watch(&b);
            let y = f(&x, &w, &b);
            let wts = t32(test_values(y.num_elements(), 5, -1.0, 1.0), y.shape());
            let loss =
                ops::reduce_sum(&ops::mul(&y, &wts).unwrap(), ops::Axes::All, false).unwrap();
            tape.gradient(&loss, &[&x, &w, &b]).unwrap()
        };
        let want = grads(&|x, w, b| unfused(x, w, b, a, c.8, c.9));
        let got = grads(&|x, w, b| fused(x, w, b, a, c.8, c.9).swap_remove(0));
        // The inference form's gradient recomputes the argmax: the same bits.
        let got_inf = grads(&|x, w, b| {
            let op = FusedConv2DMaxPool::new(a, c.8, [c.9, c.9])
                .unwrap()
                .without_argmax();
            execute1(op, &[x.clone(), w.clone(), b.clone()]).unwrap()
        });
        for (k, ((g, gi), e)) in got.iter().zip(&got_inf).zip(&want).enumerate() {
            let (g, gi, e) = (
                g.as_ref().unwrap(),
                gi.as_ref().unwrap(),
                e.as_ref().unwrap(),
            );
            assert_eq!(bits(g), bits(e), "case {i} input {k}");
            assert_eq!(bits(gi), bits(e), "case {i} input {k}: without argmax");
        }
    }
}

#[test]
fn fused_conv_max_pool_gradients_match_finite_differences() {
    for (relu, stride, padding, p) in [
        (true, 1, Padding::Valid, 2),
        (false, 2, Padding::Same, 2),
        (true, 1, Padding::Same, 3),
    ] {
        let x = ferroflow_core::testing::test_tensor(&[2, 7, 6, 2], 1, -1.0, 1.0);
        let w = ferroflow_core::testing::test_tensor(&[3, 3, 2, 3], 2, -1.0, 1.0);
        let b = ferroflow_core::testing::test_tensor(&[3], 3, -0.2, 0.4);
        let op = FusedConv2DMaxPool::new(attrs(stride, padding), relu, [p, p]).unwrap();
        check_gradients(
            |xs| Ok(execute(op.clone(), xs)?.swap_remove(0)),
            &[x, w, b],
            &[0, 1, 2],
        )
        .unwrap();
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let a = attrs(1, Padding::Valid);
    // A window of more than 256 elements (the argmax is a u8), or an empty one.
    assert!(matches!(
        FusedConv2DMaxPool::new(a, true, [17, 16]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(FusedConv2DMaxPool::new(a, true, [0, 2]).is_err());
    let op = FusedConv2DMaxPool::new(a, true, [2, 2]).unwrap();
    let x = Tensor::from_vec(vec![0i32; 16], &[1, 4, 4, 1]).unwrap();
    let w = Tensor::from_vec(vec![0i32; 9], &[3, 3, 1, 1]).unwrap();
    let b = Tensor::from_vec(vec![0i32; 1], &[1]).unwrap();
    let e = execute(op.clone(), &[x, w, b]).unwrap_err().to_string();
    assert!(
        e.contains("Conv2D") || e.contains("_FusedConv2DMaxPool"),
        "{e}"
    );
    // The convolution output (2x2) is smaller than a 3x3 window.
    let x = Tensor::from_vec(vec![0f32; 16], &[1, 4, 4, 1]).unwrap();
    let w = Tensor::from_vec(vec![0f32; 9], &[3, 3, 1, 1]).unwrap();
    let b = Tensor::from_vec(vec![0f32; 1], &[1]).unwrap();
    let big = FusedConv2DMaxPool::new(a, true, [3, 3]).unwrap();
    let e = execute(big, &[x.clone(), w.clone(), b.clone()]).unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
    // Float16 is not fused.
    let h = |t: &Tensor| ops::cast(t, DType::F16).unwrap();
    let e = execute(op.clone(), &[h(&x), h(&w), h(&b)]).unwrap_err();
    assert!(e.to_string().contains("float32 or float64"), "{e}");
    // Wrong bias length.
    let b2 = Tensor::from_vec(vec![0f32; 2], &[2]).unwrap();
    assert!(execute(op, &[x, w, b2]).is_err());
    // _MaxPoolReluGrad: shapes must match the pooled convolution output, argmax must be u8.
    let g = MaxPoolReluGrad {
        conv_hw: [4, 4],
        window: [2, 2],
        relu: true,
    };
    let p = Tensor::from_vec(vec![1f32; 4], &[1, 2, 2, 1]).unwrap();
    let am = Tensor::from_vec(vec![0u8; 4], &[1, 2, 2, 1]).unwrap();
    let bad = Tensor::from_vec(vec![1f32; 2], &[1, 1, 2, 1]).unwrap();
    let e = execute1(g.clone(), &[p.clone(), am.clone(), bad]).unwrap_err();
    assert!(e.to_string().contains("_MaxPoolReluGrad"), "{e}");
    let e = execute1(g.clone(), &[p.clone(), p.clone(), p.clone()]).unwrap_err();
    assert!(e.to_string().contains("uint8"), "{e}");
    // It has no gradient.
    let tape = GradientTape::new();
    tape.watch(&p);
    let dz = execute1(g, &[p.clone(), am, p.clone()]).unwrap();
    let loss = ops::reduce_sum(&dz, ops::Axes::All, false).unwrap();
    assert!(matches!(
        tape.gradient(&loss, &[&p]),
        Err(Error::NoGradient { .. })
    ));
}

fn count(dump: &str, op: &str) -> usize {
    dump.lines()
        .filter(|l| l.contains(&format!("= {op}(")))
        .count()
}

/// Two conv blocks: conv 3x3 SAME + ReLU + pool 2 (9x9 → 4x4, a row and column dropped), then
/// conv 3x3 VALID, no activation, + pool 2 (K = 72: the GEMM path), then a dense softmax layer.
fn two_block_net() -> (Graph, Tensor, Tensor, Tensor, Tensor, Vec<Tensor>) {
    let g = Graph::new();
    let _d = g.as_default();
    let x = graph::placeholder(DType::F32, &[Some(4), Some(9), Some(9), Some(2)], "x").unwrap();
    let labels = graph::placeholder(DType::I64, &[Some(4)], "labels").unwrap();
    let v = |n: &str, s: &[usize], seed: u64| {
        let len = s.iter().product();
        Variable::new(t32(test_values(len, seed, -0.5, 0.5), s), n)
    };
    let vars = [
        v("w1", &[3, 3, 2, 8], 1),
        v("b1", &[8], 2),
        v("w2", &[3, 3, 8, 6], 3),
        v("b2", &[6], 4),
        v("w3", &[6, 3], 5),
    ];
    let val = |i: usize| vars[i].value();
    let z1 = ops::conv2d(&x, &val(0), [1, 1], Padding::Same, [1, 1]).unwrap();
    let z1 = ops::relu(&ops::bias_add(&z1, &val(1)).unwrap()).unwrap();
    let p1 = ops::max_pool2d(&z1, [2, 2], [2, 2], Padding::Valid).unwrap();
    let z2 = ops::conv2d(&p1, &val(2), [1, 1], Padding::Valid, [1, 1]).unwrap();
    let z2 = ops::bias_add(&z2, &val(3)).unwrap();
    let p2 = ops::max_pool2d(&z2, [2, 2], [2, 2], Padding::Valid).unwrap();
    let flat = ops::reshape(&p2, &[4, 6]).unwrap();
    let logits = ops::matmul(&flat, &val(4), false, false).unwrap();
    let loss = ops::reduce_mean(
        &ops::sparse_softmax_cross_entropy_with_logits(&labels, &logits).unwrap(),
        Vec::<isize>::new(),
        false,
    )
    .unwrap();
    let train = GradientDescentOptimizer::new(0.5).minimize(&loss).unwrap();
    let reads = (0..vars.len()).map(val).collect();
    drop(_d);
    (g, x, labels, logits, train, reads)
}

#[test]
fn the_rewrite_fires_in_inference_and_training_graphs_and_keeps_the_bits() {
    let (g, x, labels, logits, train, vars) = two_block_net();
    let xs = t32(test_values(4 * 81 * 2, 9, -1.0, 1.0), &[4, 9, 9, 2]);
    let ys = Tensor::from_vec(vec![0i64, 1, 2, 1], &[4]).unwrap();
    let feeds = [(&x, xs.clone()), (&labels, ys.clone())];
    let sess = Session::with_options(&g, OptimizerOptions::default());
    // Inference: both blocks fused, no MaxPool left.
    let (inf, _) = sess.optimized_graph(&[&logits], &feeds[..1]).unwrap();
    let d = inf.dump();
    assert_eq!(count(&d, "_FusedConv2DMaxPool"), 2, "{d}");
    assert_eq!(count(&d, "MaxPool"), 0, "{d}");
    assert_eq!(count(&d, "_FusedConv2D"), 0, "{d}");
    // Nobody reads an argmax there: the fused ops compute none.
    assert!(!d.contains("uint8"), "{d}");
    // Training: the gradient chains too.
    let (tr, _) = sess.optimized_graph(&[&logits, &train], &feeds).unwrap();
    let d = tr.dump();
    assert_eq!(count(&d, "_FusedConv2DMaxPool"), 2, "{d}");
    // There the argmax is produced (and read by _FusedConv2DMaxPoolGrad).
    let with_argmax = d
        .lines()
        .filter(|l| l.contains("= _FusedConv2DMaxPool(") && l.contains("uint8"))
        .count();
    assert_eq!(with_argmax, 2, "{d}");
    // ... and the gradients of both convolutions read the pooled gradient directly.
    assert_eq!(count(&d, "_FusedConv2DMaxPoolGrad"), 2, "{d}");
    for gone in [
        "MaxPool",
        "MaxPoolGrad",
        "ReluGrad",
        "_FusedConv2D",
        "_MaxPoolReluGrad",
        "BiasAddGrad",
        "Conv2DBackpropFilter",
        "Conv2DBackpropInput",
    ] {
        assert_eq!(count(&d, gone), 0, "{gone} left: {d}");
    }
    // Three training steps with every pass on, and with remapping off: same bits.
    let mut runs = Vec::new();
    for opts in [
        OptimizerOptions::default(),
        OptimizerOptions {
            remapping: false,
            ..OptimizerOptions::default()
        },
    ] {
        let s = Session::with_options(&g, opts);
        let init = {
            let _d = g.as_default();
            graph::global_variables_initializer().unwrap()
        };
        s.run(&[&init], &[]).unwrap();
        let mut out = Vec::new();
        for _ in 0..3 {
            let r = s.run(&[&logits, &train], &feeds).unwrap();
            out.push(bits(&r[0]));
        }
        let w = s.run(&vars.iter().collect::<Vec<_>>(), &[]).unwrap();
        out.extend(w.iter().map(bits));
        runs.push(out);
    }
    assert_eq!(runs[0], runs[1]);
    assert_ne!(runs[0][0], runs[0][2], "training moved the logits");
}
