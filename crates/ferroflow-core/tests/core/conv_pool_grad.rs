//! `_FusedConv2DMaxPoolGrad` against the unfused ops bit for bit: `MaxPoolGrad`, `ReluGrad`,
//! `BiasAddGrad`, `Conv2DBackpropFilter`, `Conv2DBackpropInput` on the full-size gradient, with
//! the argmax built here by a reference max-pool over a forward pass computed with the unfused
//! ops; 1 and 2 threads; typed errors; no gradient.

use ferroflow_core::op::{GradCtx, Op};
use ferroflow_core::ops::conv::ConvAttrs;
use ferroflow_core::ops::conv_pool_grad::FusedConv2DMaxPoolGrad;
use ferroflow_core::ops::pool::{max_pool_grad, PoolAttrs};
use ferroflow_core::ops::{self, Padding};
use ferroflow_core::{Error, Tensor};

/// xorshift values: on a grid of quarters in [-1, 1] (many ties and zeros) or uniform with
/// every fifth value zero.
fn values(len: usize, seed: u64, grid: bool) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if grid {
                ((s >> 33) % 9) as f64 / 4.0 - 1.0
            } else if i % 5 == 3 {
                0.0
            } else {
                ((s >> 11) as f64) / ((1u64 << 53) as f64) * 2.0 - 1.0
            }
        })
        .collect()
}

fn tensor(v: &[f64], shape: &[usize], f64_: bool) -> Tensor {
    if f64_ {
        Tensor::from_vec(v.to_vec(), shape).unwrap()
    } else {
        Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<f32>>(), shape).unwrap()
    }
}

fn bits(t: &Tensor) -> Vec<u64> {
    ops::cast(t, ferroflow_core::DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// Reference VALID max pool with strides == window: the first maximum in row-major order (a
/// later element wins only if strictly greater). Returns (pooled, argmax = i*pw + j).
fn ref_pool(c: &[f64], shape: [usize; 4], win: [usize; 2]) -> (Vec<f64>, Vec<u8>, [usize; 4]) {
    let [n, h, w, ch] = shape;
    let (qh, qw) = (h / win[0], w / win[1]);
    let (mut pooled, mut arg) = (Vec::new(), Vec::new());
    for b in 0..n {
        for py in 0..qh {
            for px in 0..qw {
                for o in 0..ch {
                    let at = |i: usize, j: usize| {
                        c[((b * h + py * win[0] + i) * w + px * win[1] + j) * ch + o]
                    };
                    let (mut best, mut bi) = (at(0, 0), 0);
                    for i in 0..win[0] {
                        for j in 0..win[1] {
                            if at(i, j) > best {
                                best = at(i, j);
                                bi = i * win[1] + j;
                            }
                        }
                    }
                    pooled.push(best);
                    arg.push(bi as u8);
                }
            }
        }
    }
    (pooled, arg, [n, qh, qw, ch])
}

struct Case {
    x: [usize; 4],
    w: [usize; 4],
    strides: [usize; 2],
    padding: Padding,
    win: [usize; 2],
}

fn cases() -> Vec<Case> {
    let c = |x, w, strides, padding, win| Case {
        x,
        w,
        strides,
        padding,
        win,
    };
    vec![
        c(
            [3, 28, 28, 1],
            [3, 3, 1, 32],
            [1, 1],
            Padding::Valid,
            [2, 2],
        ),
        c(
            [2, 13, 13, 32],
            [3, 3, 32, 64],
            [1, 1],
            Padding::Valid,
            [2, 2],
        ),
        c([2, 9, 11, 3], [3, 3, 3, 10], [1, 1], Padding::Same, [2, 2]),
        c([2, 15, 14, 3], [3, 3, 3, 10], [2, 2], Padding::Same, [3, 3]),
        c(
            [2, 17, 13, 1],
            [3, 3, 1, 64],
            [2, 1],
            Padding::Valid,
            [3, 2],
        ),
        c(
            [2, 12, 11, 32],
            [3, 3, 32, 10],
            [2, 2],
            Padding::Same,
            [2, 3],
        ),
        c(
            [1, 10, 9, 32],
            [3, 3, 32, 32],
            [1, 1],
            Padding::Valid,
            [3, 3],
        ),
    ]
}

/// One case: the unfused chain through the public ops vs the fused op (1 and 2 threads).
fn check_case(case: &Case, relu: bool, f64_: bool, seed: u64, grid: bool) {
    let conv = ConvAttrs {
        strides: case.strides,
        padding: case.padding,
        dilations: [1, 1],
    };
    let x = tensor(&values(case.x.iter().product(), seed, grid), &case.x, f64_);
    let w = tensor(
        &values(case.w.iter().product(), seed + 1, grid),
        &case.w,
        f64_,
    );
    let b = tensor(&values(case.w[3], seed + 2, grid), &[case.w[3]], f64_);
    // Forward with the unfused ops.
    let z = ops::bias_add(
        &ops::conv2d(&x, &w, case.strides, case.padding, [1, 1]).unwrap(),
        &b,
    )
    .unwrap();
    let c = if relu { ops::relu(&z).unwrap() } else { z };
    let cshape: [usize; 4] = c.shape().try_into().unwrap();
    let cv = ops::cast(&c, ferroflow_core::DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let (pooled_v, arg, pshape) = ref_pool(&cv, cshape, case.win);
    let pooled = tensor(&pooled_v, &pshape, f64_);
    // The reference pool agrees with MaxPool.
    let mp = ops::max_pool2d(&c, case.win, case.win, Padding::Valid).unwrap();
    assert_eq!(bits(&mp), bits(&pooled));
    let argmax = Tensor::from_vec(arg, &pshape).unwrap();
    let dp = tensor(
        &values(pshape.iter().product(), seed + 3, grid),
        &pshape,
        f64_,
    );
    // Unfused backward.
    let attrs = PoolAttrs {
        ksize: case.win,
        strides: case.win,
        padding: Padding::Valid,
    };
    let mut dz = max_pool_grad(&c, &dp, attrs).unwrap();
    if relu {
        dz = ops::relu_grad(&dz, &c).unwrap();
    }
    let db0 = ops::bias_add_grad(&dz).unwrap();
    let dw0 =
        ops::conv2d_backprop_filter(&x, &case.w, &dz, case.strides, case.padding, [1, 1]).unwrap();
    let dx0 =
        ops::conv2d_backprop_input(&case.x, &w, &dz, case.strides, case.padding, [1, 1]).unwrap();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (with_dx, without) = pool.install(|| {
            (
                FusedConv2DMaxPoolGrad::new(conv, case.win, relu, true)
                    .call(&x, &w, &pooled, &argmax, &dp)
                    .unwrap(),
                FusedConv2DMaxPoolGrad::new(conv, case.win, relu, false)
                    .call(&x, &w, &pooled, &argmax, &dp)
                    .unwrap(),
            )
        });
        let what = format!(
            "{:?} {:?} relu={relu} f64={f64_} threads={threads}",
            case.x, case.w
        );
        assert_eq!(with_dx.len(), 3, "{what}");
        assert_eq!(without.len(), 2, "{what}");
        assert_eq!(with_dx[0].shape(), &case.w[..]);
        assert_eq!(with_dx[1].shape(), &[case.w[3]]);
        assert_eq!(with_dx[2].shape(), &case.x[..]);
        assert_eq!(bits(&with_dx[0]), bits(&dw0), "dw {what}");
        assert_eq!(bits(&with_dx[1]), bits(&db0), "db {what}");
        assert_eq!(bits(&with_dx[2]), bits(&dx0), "dx {what}");
        assert_eq!(bits(&without[0]), bits(&dw0), "dw (no dx) {what}");
        assert_eq!(bits(&without[1]), bits(&db0), "db (no dx) {what}");
    }
}

#[test]
fn fused_conv_max_pool_grad_matches_unfused_ops_bitwise() {
    for (i, case) in cases().iter().enumerate() {
        for relu in [true, false] {
            let seed = 1000 + 17 * i as u64;
            check_case(case, relu, false, seed, false);
            check_case(case, relu, false, seed + 4, true);
            check_case(case, relu, true, seed + 8, false);
        }
    }
}

fn small() -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
    let x = Tensor::from_vec(vec![1.0f32; 2 * 6 * 6 * 3], &[2, 6, 6, 3]).unwrap();
    let w = Tensor::from_vec(vec![0.5f32; 3 * 3 * 3 * 4], &[3, 3, 3, 4]).unwrap();
    // conv output 4x4 -> pooled 2x2
    let p = Tensor::from_vec(vec![1.0f32; 2 * 2 * 2 * 4], &[2, 2, 2, 4]).unwrap();
    let a = Tensor::from_vec(vec![0u8; 2 * 2 * 2 * 4], &[2, 2, 2, 4]).unwrap();
    (x, w, p.clone(), a, p)
}

fn op() -> FusedConv2DMaxPoolGrad {
    let conv = ConvAttrs {
        strides: [1, 1],
        padding: Padding::Valid,
        dilations: [1, 1],
    };
    FusedConv2DMaxPoolGrad::new(conv, [2, 2], true, true)
}

#[test]
fn fused_conv_max_pool_grad_shape_errors_name_op_and_shapes() {
    let (x, w, p, a, dp) = small();
    assert!(op().call(&x, &w, &p, &a, &dp).is_ok());
    // pooled of the wrong spatial size
    let bad = Tensor::from_vec(vec![1.0f32; 2 * 3 * 2 * 4], &[2, 3, 2, 4]).unwrap();
    let err = op().call(&x, &w, &bad, &a, &dp).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Shape { .. }), "{msg}");
    assert!(msg.contains("_FusedConv2DMaxPoolGrad"), "{msg}");
    assert!(
        msg.contains("(2, 3, 2, 4)") && msg.contains("(2, 2, 2, 4)"),
        "{msg}"
    );
    // dpooled with the wrong channel count
    let bad = Tensor::from_vec(vec![1.0f32; 2 * 2 * 2 * 5], &[2, 2, 2, 5]).unwrap();
    let err = op().call(&x, &w, &p, &a, &bad).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    // filter channels disagree with the input
    let bad_w = Tensor::from_vec(vec![0.5f32; 3 * 3 * 2 * 4], &[3, 3, 2, 4]).unwrap();
    let err = op().call(&x, &bad_w, &p, &a, &dp).unwrap_err();
    assert!(err.to_string().contains("_FusedConv2DMaxPoolGrad"), "{err}");
    // argmax must be uint8, the rest one float dtype
    let err = op().call(&x, &w, &p, &dp, &dp).unwrap_err();
    assert!(matches!(err, Error::DType { .. }), "{err}");
    let p64 = ops::cast(&p, ferroflow_core::DType::F64).unwrap();
    let err = op().call(&x, &w, &p64, &a, &dp).unwrap_err();
    assert!(matches!(err, Error::DType { .. }), "{err}");
    // rank
    let flat = Tensor::from_vec(vec![1.0f32; 32], &[32]).unwrap();
    let err = op().call(&x, &w, &p, &a, &flat).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    // window too large for a u8 argmax, or zero
    let conv = op().conv;
    for win in [[17, 16], [0, 2]] {
        let err = FusedConv2DMaxPoolGrad::new(conv, win, true, true)
            .call(&x, &w, &p, &a, &dp)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    }
}

#[test]
fn fused_conv_max_pool_grad_has_no_gradient() {
    let (x, w, p, a, dp) = small();
    let op = op();
    let outputs = op.call(&x, &w, &p, &a, &dp).unwrap();
    let inputs = [x, w, p, a, dp];
    let grads: Vec<Tensor> = outputs.to_vec();
    let ctx = GradCtx {
        inputs: &inputs,
        outputs: &outputs,
        grads: &grads,
        needed: &[],
    };
    let err = op.grad(&ctx).unwrap_err();
    assert!(matches!(err, Error::NoGradient { .. }), "{err}");
    assert!(err.to_string().contains("_FusedConv2DMaxPoolGrad"));
}

/// Hand example: one 2x2 window over a 1x1 convolution; the gradient reaches only the argmax
/// element, and only when the pooled value is positive (ReLU).
#[test]
fn fused_conv_max_pool_grad_hand_example() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[1, 2, 2, 1]).unwrap();
    let w = Tensor::from_vec(vec![2.0f64], &[1, 1, 1, 1]).unwrap();
    let a = Tensor::from_vec(vec![2u8], &[1, 1, 1, 1]).unwrap(); // row 1, column 0
    let dp = Tensor::from_vec(vec![0.25f64], &[1, 1, 1, 1]).unwrap();
    let conv = ConvAttrs {
        strides: [1, 1],
        padding: Padding::Valid,
        dilations: [1, 1],
    };
    let op = FusedConv2DMaxPoolGrad::new(conv, [2, 2], true, true);
    let pos = Tensor::from_vec(vec![6.0f64], &[1, 1, 1, 1]).unwrap();
    let out = op.call(&x, &w, &pos, &a, &dp).unwrap();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![3.0 * 0.25]);
    assert_eq!(out[1].to_vec::<f64>().unwrap(), vec![0.25]);
    assert_eq!(out[2].to_vec::<f64>().unwrap(), vec![0.0, 0.0, 0.5, 0.0]);
    // pooled <= 0 under ReLU: nothing flows.
    let neg = Tensor::from_vec(vec![0.0f64], &[1, 1, 1, 1]).unwrap();
    let out = op.call(&x, &w, &neg, &a, &dp).unwrap();
    assert!(out
        .iter()
        .all(|t| t.to_vec::<f64>().unwrap().iter().all(|&v| v == 0.0)));
}
