//! The fast convolution paths through the ops: `_FusedConv2D` (bias + ReLU in the convolution's
//! write pass) against the unfused ops, bit for bit, forward and tape gradients; finite-difference
//! gradients of the fused op in f64; the direct small-channel and tiled paths through
//! `ops::conv2d` against plain f64 loops written here.

use std::sync::Arc;

use ferroflow_core::graph::optimize::fused::FusedBiasActivation;
use ferroflow_core::op::execute1;
use ferroflow_core::ops::conv::{Conv2D, ConvAttrs, ConvKind};
use ferroflow_core::ops::unary::UnaryOp;
use ferroflow_core::ops::{self, Axes, Padding};
use ferroflow_core::testing::{check_gradients, test_values};
use ferroflow_core::{GradientTape, Tensor};

fn fused_conv(strides: [usize; 2], padding: Padding, act: Option<UnaryOp>) -> FusedBiasActivation {
    let conv = Conv2D {
        kind: ConvKind::Regular,
        attrs: ConvAttrs {
            strides,
            padding,
            dilations: [1, 1],
        },
    };
    FusedBiasActivation::new(Arc::new(conv), act).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// (input shape, filter shape, strides, padding): a direct small-K case (3x3x1 -> 5), a tiled
/// case (3x3x20 -> 7), both with odd sizes.
/// (input shape, filter shape, strides, padding).
type Case = ([usize; 4], [usize; 4], [usize; 2], Padding);

fn cases() -> Vec<Case> {
    vec![
        ([2, 9, 8, 1], [3, 3, 1, 5], [1, 1], Padding::Valid),
        ([3, 7, 6, 20], [3, 3, 20, 7], [2, 1], Padding::Same),
        ([1, 11, 10, 3], [2, 3, 3, 17], [1, 2], Padding::Same),
    ]
}

#[test]
fn fused_conv2d_bias_relu_is_bitwise_the_unfused_ops_with_the_same_gradients() {
    for (i, (xs, ws, st, pad)) in cases().into_iter().enumerate() {
        let i = i as u64;
        let n = |s: &[usize]| s.iter().product::<usize>();
        let x: Vec<f32> = test_values(n(&xs), 10 + i, -1.0, 1.0)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let w: Vec<f32> = test_values(n(&ws), 20 + i, -1.0, 1.0)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let b: Vec<f32> = test_values(ws[3], 30 + i, -0.5, 0.5)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let x = Tensor::from_vec(x, &xs).unwrap();
        let w = Tensor::from_vec(w, &ws).unwrap();
        let b = Tensor::from_vec(b, &[ws[3]]).unwrap();
        for act in [None, Some(UnaryOp::Relu)] {
            let f = fused_conv(st, pad, act);
            let run = |fused: bool| {
                let tape = GradientTape::new();
                tape.watch(&x);
                tape.watch(&w);
                tape.watch(&b);
                let y = if fused {
                    execute1(f.clone(), &[x.clone(), w.clone(), b.clone()]).unwrap()
                } else {
                    let z =
                        ops::bias_add(&ops::conv2d(&x, &w, st, pad, [1, 1]).unwrap(), &b).unwrap();
                    match act {
                        Some(_) => ops::relu(&z).unwrap(),
                        None => z,
                    }
                };
                // A loss that weights every output differently.
                let wts = Tensor::from_vec(
                    test_values(y.shape().iter().product(), 40 + i, -1.0, 1.0)
                        .iter()
                        .map(|&v| v as f32)
                        .collect::<Vec<f32>>(),
                    y.shape(),
                )
                .unwrap();
                let loss = ops::reduce_sum(&ops::mul(&y, &wts).unwrap(), Axes::All, false).unwrap();
                let g = tape.gradient(&loss, &[&x, &w, &b]).unwrap();
                let mut out = vec![bits(&y)];
                out.extend(g.into_iter().map(|t| bits(&t.unwrap())));
                out
            };
            let (fz, uz) = (run(true), run(false));
            assert_eq!(fz[0], uz[0], "case {i} {act:?}: forward");
            assert_eq!(fz[1], uz[1], "case {i} {act:?}: d/dx");
            assert_eq!(fz[2], uz[2], "case {i} {act:?}: d/dw");
            assert_eq!(fz[3], uz[3], "case {i} {act:?}: d/dbias");
        }
    }
}

#[test]
fn fused_conv2d_relu_finite_difference_gradients_f64() {
    for (i, (xs, ws, st, pad)) in cases().into_iter().enumerate() {
        let i = i as u64;
        let n = |s: &[usize]| s.iter().product::<usize>();
        let x = Tensor::from_vec(test_values(n(&xs), 50 + i, -1.0, 1.0), &xs).unwrap();
        let w = Tensor::from_vec(test_values(n(&ws), 60 + i, -1.0, 1.0), &ws).unwrap();
        let b = Tensor::from_vec(test_values(ws[3], 70 + i, -0.5, 0.5), &[ws[3]]).unwrap();
        let f = fused_conv(st, pad, Some(UnaryOp::Relu));
        check_gradients(
            move |v| execute1(f.clone(), &[v[0].clone(), v[1].clone(), v[2].clone()]),
            &[x, w, b],
            &[0, 1, 2],
        )
        .unwrap();
    }
}

/// `ops::conv2d` (direct path for 3x3x1, tiled path for 3x3x32) against plain loops in f64.
#[test]
fn conv2d_fast_paths_match_plain_loops() {
    for (xs, ws) in [
        ([3, 10, 9, 1], [3, 3, 1, 32]),
        ([2, 8, 7, 32], [3, 3, 32, 40]),
    ] {
        let n = |s: &[usize]| s.iter().product::<usize>();
        let xv = test_values(n(&xs), 81, -1.0, 1.0);
        let wv = test_values(n(&ws), 82, -1.0, 1.0);
        let x = Tensor::from_vec(xv.clone(), &xs).unwrap();
        let w = Tensor::from_vec(wv.clone(), &ws).unwrap();
        let y = ops::conv2d(&x, &w, [1, 1], Padding::Valid, [1, 1]).unwrap();
        let [nb, h, wd, c] = xs;
        let [kh, kw, _, oc] = ws;
        let (oh, ow) = (h - kh + 1, wd - kw + 1);
        assert_eq!(y.shape(), &[nb, oh, ow, oc]);
        let got = y.to_vec::<f64>().unwrap();
        for img in 0..nb {
            for oy in 0..oh {
                for ox in 0..ow {
                    for o in 0..oc {
                        let mut s = 0.0;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                for ci in 0..c {
                                    s += xv[((img * h + oy + ky) * wd + ox + kx) * c + ci]
                                        * wv[((ky * kw + kx) * c + ci) * oc + o];
                                }
                            }
                        }
                        let g = got[((img * oh + oy) * ow + ox) * oc + o];
                        assert!((g - s).abs() <= 1e-12 * (1.0 + s.abs()), "{g} vs {s}");
                    }
                }
            }
        }
    }
}
