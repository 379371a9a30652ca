//! Pooling ops: hand-computed cases, a naive reference, finite-difference gradients (first and
//! second order), errors and determinism.

use ferroflow_core::op::{Op, TensorSpec};
use ferroflow_core::ops::pool::{
    avg_pool_grad, max_pool_grad, max_pool_grad_grad, MaxPool, PoolAttrs,
};
use ferroflow_core::ops::{self, Axes, Padding};
use ferroflow_core::testing::{assert_close, check_gradients, test_tensor};
use ferroflow_core::{DType, Error, GradientTape, Result, Tensor};

use Padding::{Same, Valid};

fn t(v: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape).unwrap()
}

fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    t((1..=n).map(|v| v as f64).collect(), shape)
}

fn vals(x: &Tensor) -> Vec<f64> {
    x.to_vec::<f64>().unwrap()
}

/// Pairwise distinct values (gaps of 0.01, so finite differences never swap a max):
/// `i·37 mod 1009` is a permutation for `i < 1009`.
fn distinct(shape: &[usize], seed: usize) -> Tensor {
    let n: usize = shape.iter().product();
    assert!(n < 1009);
    t(
        (0..n)
            .map(|i| ((i * 37 + seed) % 1009) as f64 / 100.0 - 5.0)
            .collect(),
        shape,
    )
}

fn attrs(ksize: [usize; 2], strides: [usize; 2], padding: Padding) -> PoolAttrs {
    PoolAttrs {
        ksize,
        strides,
        padding,
    }
}

/// Naive pooling with TF's padding rule; returns (max, avg, shape).
fn ref_pool(
    x: &Tensor,
    k: [usize; 2],
    st: [usize; 2],
    padding: Padding,
) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
    let xv = vals(x);
    let [n, h, w, c] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let axis = |input: usize, k: usize, s: usize| match padding {
        Valid => ((input - k) / s + 1, 0),
        Same => {
            let out = input.div_ceil(s);
            (out, ((out - 1) * s + k).saturating_sub(input) / 2)
        }
    };
    let (oh, pt) = axis(h, k[0], st[0]);
    let (ow, pl) = axis(w, k[1], st[1]);
    let (mut mx, mut av) = (vec![], vec![]);
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ci in 0..c {
                    let mut m = f64::NEG_INFINITY;
                    let (mut s, mut cnt) = (0.0, 0.0);
                    for ky in 0..k[0] {
                        for kx in 0..k[1] {
                            let iy = (oy * st[0] + ky) as isize - pt as isize;
                            let ix = (ox * st[1] + kx) as isize - pl as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let v = xv[((b * h + iy as usize) * w + ix as usize) * c + ci];
                            m = m.max(v);
                            s += v;
                            cnt += 1.0;
                        }
                    }
                    mx.push(m);
                    av.push(s / cnt);
                }
            }
        }
    }
    (mx, av, vec![n, oh, ow, c])
}

#[test]
fn same_stride2_odd_size_by_hand() {
    // 5x5 input 1..25, 3x3 window, stride 2, same: out 3, padding 1 on each side. Window
    // (oy, ox) covers rows 2oy-1..2oy+1, columns 2ox-1..2ox+1, clipped; the average divides by
    // the number of REAL elements (4 in corners, 6 on edges, 9 inside):
    //   sums 16 33 28 / 69 117 87 / 76 123 88 → avg 4 5.5 7 / 11.5 13 14.5 / 19 20.5 22
    //   max = bottom-right real element: 7 9 10 / 17 19 20 / 22 24 25
    let x = iota(&[1, 5, 5, 1]);
    let a = ops::avg_pool2d(&x, [3, 3], [2, 2], Same).unwrap();
    assert_eq!(a.shape(), &[1, 3, 3, 1]);
    assert_eq!(
        vals(&a),
        vec![4.0, 5.5, 7.0, 11.5, 13.0, 14.5, 19.0, 20.5, 22.0]
    );
    let m = ops::max_pool2d(&x, [3, 3], [2, 2], Same).unwrap();
    assert_eq!(
        vals(&m),
        vec![7.0, 9.0, 10.0, 17.0, 19.0, 20.0, 22.0, 24.0, 25.0]
    );
    // 6x6 input x[r][c] = 6r + c + 1, 3x3, stride 2, same: padding 0 before, 1 after, so
    // window (0, 0) is rows/cols 0..2 (sum 72, 9 elements, max x[2][2] = 15), window (0, 2)
    // is rows 0..2 × cols 4..5 (sum 69, 6 elements, max x[2][5] = 18), window (2, 2) is
    // rows/cols 4..5 (sum 130, 4 elements, max 36).
    let x = iota(&[1, 6, 6, 1]);
    let a = vals(&ops::avg_pool2d(&x, [3, 3], [2, 2], Same).unwrap());
    assert_eq!((a[0], a[2], a[8]), (8.0, 11.5, 32.5));
    let m = vals(&ops::max_pool2d(&x, [3, 3], [2, 2], Same).unwrap());
    assert_eq!((m[0], m[2], m[8]), (15.0, 18.0, 36.0));
    // Padding never wins a max, even when every real value is negative.
    let neg = ops::neg(&iota(&[1, 3, 3, 1])).unwrap();
    let m = ops::max_pool2d(&neg, [2, 2], [2, 2], Same).unwrap();
    // windows {1,2,4,5} {3,6} {7,8} {9}, negated
    assert_eq!(vals(&m), vec![-1.0, -3.0, -7.0, -9.0]);
    // valid, multi-channel: channel 1 is 10× channel 0
    let x = t(
        (1..=16).flat_map(|v| [v as f64, 10.0 * v as f64]).collect(),
        &[1, 4, 4, 2],
    );
    let a = ops::avg_pool2d(&x, [2, 2], [2, 2], Valid).unwrap();
    // windows {1,2,5,6} {3,4,7,8} {9,10,13,14} {11,12,15,16}: means 3.5 5.5 11.5 13.5
    assert_eq!(
        vals(&a),
        vec![3.5, 35.0, 5.5, 55.0, 11.5, 115.0, 13.5, 135.0]
    );
}

#[test]
fn pool1d_by_hand() {
    // x = [1 3 2 5 4], window 3, stride 2, same: padding 1 each side, windows
    // {1,3} {3,2,5} {5,4}: max 3 5 5, avg 2 10/3 4.5.
    let x = t(vec![1.0, 3.0, 2.0, 5.0, 4.0], &[1, 5, 1]);
    let m = ops::max_pool1d(&x, 3, 2, Same).unwrap();
    assert_eq!(m.shape(), &[1, 3, 1]);
    assert_eq!(vals(&m), vec![3.0, 5.0, 5.0]);
    let a = ops::avg_pool1d(&x, 3, 2, Same).unwrap();
    assert_close(&vals(&a), &[2.0, 10.0 / 3.0, 4.5], 1e-15, 0.0);
    // valid window 2 stride 1: {1,3} {3,2} {2,5} {5,4}
    assert_eq!(
        vals(&ops::max_pool1d(&x, 2, 1, Valid).unwrap()),
        vec![3.0, 3.0, 5.0, 5.0]
    );
}

#[test]
fn max_pool_gradient_goes_to_the_first_max() {
    // 2x2 window over [1 3; 3 3]: the first 3 in row-major order takes the gradient.
    let x = t(vec![1.0, 3.0, 3.0, 3.0], &[1, 2, 2, 1]);
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = ops::max_pool2d(&x, [2, 2], [2, 2], Valid).unwrap();
    let g = tape.gradient(&y, &[&x]).unwrap()[0].clone().unwrap();
    assert_eq!(vals(&g), vec![0.0, 1.0, 0.0, 0.0]);
    // avg: every real element of a window gets 1/count (same padding, 3x3 input, 2x2 stride 2):
    // windows {0,1,3,4}/4 {2,5}/2 {6,7}/2 {8}/1
    let x = iota(&[1, 3, 3, 1]);
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = ops::avg_pool2d(&x, [2, 2], [2, 2], Same).unwrap();
    let g = tape.gradient(&y, &[&x]).unwrap()[0].clone().unwrap();
    assert_eq!(
        vals(&g),
        vec![0.25, 0.25, 0.5, 0.25, 0.25, 0.5, 0.5, 0.5, 1.0]
    );
}

/// (input shape, window, strides, padding)
type Case = ([usize; 4], [usize; 2], [usize; 2], Padding);

fn cases() -> Vec<Case> {
    vec![
        ([2, 5, 5, 3], [3, 3], [2, 2], Same),
        ([2, 6, 6, 2], [3, 3], [2, 2], Same),
        ([1, 7, 9, 2], [2, 3], [2, 2], Valid),
        ([3, 4, 5, 1], [2, 2], [1, 1], Same),
        ([2, 8, 7, 2], [4, 3], [3, 2], Same),
        ([1, 5, 5, 2], [5, 5], [1, 1], Same),
        ([1, 1, 9, 3], [1, 4], [1, 3], Valid),
    ]
}

#[test]
fn pools_match_naive_reference() {
    for (i, &(xs, k, st, pad)) in cases().iter().enumerate() {
        let x = test_tensor(&xs, 30 + i as u64, -1.0, 1.0);
        let (mx, av, shape) = ref_pool(&x, k, st, pad);
        let m = ops::max_pool2d(&x, k, st, pad).unwrap();
        let a = ops::avg_pool2d(&x, k, st, pad).unwrap();
        assert_eq!(m.shape(), &shape[..], "case {i}");
        assert_eq!(a.shape(), &shape[..], "case {i}");
        assert_close(&vals(&m), &mx, 0.0, 0.0);
        assert_close(&vals(&a), &av, 1e-14, 1e-14);
        // f32 and bf16 keep their dtype and agree
        for dt in [DType::F32, DType::BF16] {
            let xd = ops::cast(&x, dt).unwrap();
            let a = ops::avg_pool2d(&xd, k, st, pad).unwrap();
            assert_eq!(a.dtype(), dt);
            assert_close(&a.to_f64_vec(), &av, 2e-2, 1e-2);
        }
    }
}

#[test]
fn pool_gradients() {
    for (i, &(xs, k, st, pad)) in cases().iter().enumerate() {
        let x = distinct(&xs, i);
        check_gradients(|v| ops::max_pool2d(&v[0], k, st, pad), &[x.clone()], &[0])
            .unwrap_or_else(|e| panic!("max case {i}: {e}"));
        check_gradients(|v| ops::avg_pool2d(&v[0], k, st, pad), &[x.clone()], &[0])
            .unwrap_or_else(|e| panic!("avg case {i}: {e}"));
        // The gradient ops themselves, with respect to every float input.
        let a = attrs(k, st, pad);
        let y = ops::max_pool2d(&x, k, st, pad).unwrap();
        let dy = test_tensor(y.shape(), 40 + i as u64, -1.0, 1.0);
        let gx = test_tensor(&xs, 50 + i as u64, -1.0, 1.0);
        check_gradients(
            |v| max_pool_grad(&v[0], &v[1], a),
            &[x.clone(), dy.clone()],
            &[0, 1],
        )
        .unwrap_or_else(|e| panic!("MaxPoolGrad case {i}: {e}"));
        check_gradients(|v| max_pool_grad_grad(&v[0], &v[1], a), &[x, gx], &[0, 1])
            .unwrap_or_else(|e| panic!("MaxPoolGradGrad case {i}: {e}"));
        check_gradients(|v| avg_pool_grad(&xs, &v[0], a), &[dy], &[0])
            .unwrap_or_else(|e| panic!("AvgPoolGrad case {i}: {e}"));
    }
    let x1 = distinct(&[2, 9, 2], 3);
    for (k, s, pad) in [(3, 2, Same), (2, 2, Valid), (4, 1, Same)] {
        check_gradients(|v| ops::max_pool1d(&v[0], k, s, pad), &[x1.clone()], &[0]).unwrap();
        check_gradients(|v| ops::avg_pool1d(&v[0], k, s, pad), &[x1.clone()], &[0]).unwrap();
    }
}

fn sum_sq(x: &Tensor) -> Result<Tensor> {
    ops::reduce_sum(&ops::square(x)?, Axes::All, false)
}

#[test]
fn second_derivatives_through_pools() {
    // S(x) = Σ (dL/dx)² with L = Σ pool(x)², the first derivative from an inner tape; the
    // outer gradient is checked against finite differences of S.
    for max in [false, true] {
        let s = move |v: &[Tensor]| -> Result<Tensor> {
            let inner = GradientTape::new();
            inner.watch(&v[0]);
            let y = if max {
                ops::max_pool2d(&v[0], [3, 3], [2, 2], Same)?
            } else {
                ops::avg_pool2d(&v[0], [3, 3], [2, 2], Same)?
            };
            let dx = inner.gradient(&sum_sq(&y)?, &[&v[0]])?[0]
                .clone()
                .ok_or_else(|| Error::invalid("test", "no gradient"))?;
            sum_sq(&dx)
        };
        check_gradients(s, &[distinct(&[1, 5, 6, 2], 11)], &[0])
            .unwrap_or_else(|e| panic!("max {max}: {e}"));
    }
}

fn err_text(r: Result<Tensor>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(t) => panic!("expected an error, got shape {:?}", t.shape()),
    }
}

#[test]
fn pool_errors() {
    let x = test_tensor(&[1, 4, 4, 2], 1, -1.0, 1.0);
    let e = err_text(ops::max_pool2d(&x, [5, 2], [1, 1], Valid));
    assert!(
        e.contains("MaxPool") && e.contains("does not fit") && e.contains("(1, 4, 4, 2)"),
        "{e}"
    );
    let e = err_text(ops::avg_pool2d(&x, [2, 2], [0, 1], Same));
    assert!(e.contains("AvgPool") && e.contains("strides"), "{e}");
    let e = err_text(ops::avg_pool2d(&x, [0, 2], [1, 1], Same));
    assert!(e.contains("AvgPool") && e.contains("ksize"), "{e}");
    let x3 = test_tensor(&[4, 4, 2], 1, -1.0, 1.0);
    let e = err_text(ops::max_pool2d(&x3, [2, 2], [1, 1], Same));
    assert!(
        e.contains("MaxPool") && e.contains("rank 4") && e.contains("(4, 4, 2)"),
        "{e}"
    );
    let e = err_text(ops::max_pool1d(&x, 2, 1, Same));
    assert!(e.contains("MaxPool1D") && e.contains("(1, 4, 4, 2)"), "{e}");
    let xi = Tensor::from_vec(vec![1i64; 32], &[1, 4, 4, 2]).unwrap();
    assert!(matches!(
        ops::avg_pool2d(&xi, [2, 2], [1, 1], Same),
        Err(Error::DType { .. })
    ));
    let dy = test_tensor(&[1, 3, 3, 2], 2, -1.0, 1.0);
    let e = err_text(max_pool_grad(&x, &dy, attrs([2, 2], [2, 2], Same)));
    assert!(
        e.contains("MaxPoolGrad") && e.contains("(1, 3, 3, 2)") && e.contains("(1, 4, 4, 2)"),
        "{e}"
    );
    let e = err_text(avg_pool_grad(
        &[1, 4, 4, 2],
        &dy,
        attrs([2, 2], [2, 2], Same),
    ));
    assert!(
        e.contains("AvgPoolGrad") && e.contains("(1, 3, 3, 2)"),
        "{e}"
    );
}

#[test]
fn pools_bit_identical_across_thread_counts() {
    let x = ops::cast(&test_tensor(&[8, 26, 26, 32], 1, -1.0, 1.0), DType::F32).unwrap();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let tape = GradientTape::persistent();
                tape.watch(&x);
                let m = ops::max_pool2d(&x, [3, 3], [2, 2], Same).unwrap();
                let a = ops::avg_pool2d(&x, [3, 3], [2, 2], Same).unwrap();
                let l = ops::add(&sum_sq(&m).unwrap(), &sum_sq(&a).unwrap()).unwrap();
                let g = tape.gradient(&l, &[&x]).unwrap()[0].clone().unwrap();
                [m, a, g].map(|t| {
                    t.to_vec::<f32>()
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<u32>>()
                })
            })
    };
    assert!(run(1) == run(2));
}

#[test]
fn pool_shape_inference_keeps_unknown_dims() {
    let op = MaxPool {
        attrs: attrs([3, 3], [2, 2], Valid),
    };
    let x = TensorSpec {
        dtype: DType::F32,
        shape: vec![None, Some(7), None, Some(4)],
    };
    // (7 - 3) / 2 + 1 = 3 rows; the unknown width stays unknown
    assert_eq!(
        op.infer(&[x]).unwrap()[0].shape,
        vec![None, Some(3), None, Some(4)]
    );
    let small = TensorSpec {
        dtype: DType::F32,
        shape: vec![None, Some(2), None, Some(4)],
    };
    assert!(op.infer(&[small]).is_err());
}
