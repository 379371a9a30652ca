//! tf.nn ops: softmax family, cross-entropies, l2_loss, bias_add, batch_normalization, dropout.

use ferroflow_core::ops::{self, Axes};
use ferroflow_core::testing::{assert_close, check_gradients, test_tensor, test_values};
use ferroflow_core::{DType, Error, GradientTape, Tensor};

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

fn vals(x: &Tensor) -> Vec<f64> {
    x.to_f64_vec()
}

/// `Σ w·y` for fixed weights, so every output element gets a distinct upstream gradient.
fn weighted_sum(y: &Tensor) -> Tensor {
    let w = Tensor::from_vec(test_values(y.num_elements(), 5, 0.5, 1.5), y.shape()).unwrap();
    ops::reduce_sum(&ops::mul(y, &w).unwrap(), Axes::All, false).unwrap()
}

/// Tape gradients of `Σ w·f(xs)` with respect to `xs[i]` for `i` in `wrt`.
fn grads_of(f: &dyn Fn(&[Tensor]) -> Tensor, xs: &[Tensor], wrt: &[usize]) -> Vec<Vec<f64>> {
    let tape = GradientTape::new();
    for &i in wrt {
        tape.watch(&xs[i]);
    }
    let l = weighted_sum(&f(xs));
    let srcs: Vec<&dyn ferroflow_core::Watchable> = wrt
        .iter()
        .map(|&i| &xs[i] as &dyn ferroflow_core::Watchable)
        .collect();
    tape.gradient(&l, &srcs)
        .unwrap()
        .into_iter()
        .map(|g| vals(&g.unwrap()))
        .collect()
}

/// Reference softmax along `axis` of a contiguous `[outer, r, inner]` array (plain loops).
fn ref_softmax(x: &[f64], outer: usize, r: usize, inner: usize, log: bool) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for o in 0..outer {
        for j in 0..inner {
            let idx = |k: usize| o * r * inner + k * inner + j;
            let m = (0..r).map(|k| x[idx(k)]).fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = (0..r).map(|k| (x[idx(k)] - m).exp()).sum();
            for k in 0..r {
                out[idx(k)] = if log {
                    x[idx(k)] - m - s.ln()
                } else {
                    (x[idx(k)] - m).exp() / s
                };
            }
        }
    }
    out
}

#[test]
fn softmax_hand_values() {
    let x = t(&[1.0, 2.0, 3.0], &[3]);
    let expect = [0.09003057, 0.24472847, 0.66524096];
    assert_close(&vals(&ops::softmax(&x, -1).unwrap()), &expect, 1e-8, 0.0);
    let logs: Vec<f64> = expect.iter().map(|v: &f64| v.ln()).collect();
    assert_close(&vals(&ops::log_softmax(&x, 0).unwrap()), &logs, 1e-7, 0.0);
    // f32, f16 and bf16 (computed in f32)
    for dt in [DType::F32, DType::F16, DType::BF16] {
        let y = ops::softmax(&ops::cast(&x, dt).unwrap(), -1).unwrap();
        assert_eq!(y.dtype(), dt);
        let tol = if dt == DType::F32 { 1e-6 } else { 1e-2 };
        assert_close(&vals(&y), &expect, tol, 0.0);
    }
}

#[test]
fn softmax_any_axis_matches_reference() {
    let shape = [2, 3, 4];
    let x = test_tensor(&shape, 1, -3.0, 3.0);
    let xv = vals(&x);
    for (axis, (o, r, i)) in [(0isize, (1, 2, 12)), (1, (2, 3, 4)), (-1, (6, 4, 1))] {
        for log in [false, true] {
            let y = if log {
                ops::log_softmax(&x, axis).unwrap()
            } else {
                ops::softmax(&x, axis).unwrap()
            };
            assert_eq!(y.shape(), &shape);
            assert_close(&vals(&y), &ref_softmax(&xv, o, r, i, log), 1e-12, 1e-12);
        }
    }
    // A non-contiguous (transposed) input.
    let xt = ops::transpose(&x, &[2, 0, 1]).unwrap();
    let xtv = vals(&xt.contiguous());
    let y = ops::softmax(&xt, -1).unwrap();
    assert_close(
        &vals(&y),
        &ref_softmax(&xtv, 4 * 2, 3, 1, false),
        1e-12,
        0.0,
    );
    // Large parallel input (rows split over threads) still matches.
    let big = test_tensor(&[300, 257], 2, -20.0, 20.0);
    let y = ops::log_softmax(&big, 1).unwrap();
    assert_close(
        &vals(&y),
        &ref_softmax(&vals(&big), 300, 257, 1, true),
        1e-12,
        1e-12,
    );
    let y = ops::softmax(&big, 0).unwrap();
    assert_close(
        &vals(&y),
        &ref_softmax(&vals(&big), 1, 300, 257, false),
        1e-12,
        1e-12,
    );
}

#[test]
fn softmax_fused_matches_composite_value_and_gradient() {
    let x = test_tensor(&[3, 4, 5], 3, -4.0, 4.0);
    for axis in [0isize, 1, -1] {
        for log in [false, true] {
            let fused = move |xs: &[Tensor]| {
                if log {
                    ops::log_softmax(&xs[0], axis).unwrap()
                } else {
                    ops::softmax(&xs[0], axis).unwrap()
                }
            };
            let composite = move |xs: &[Tensor]| {
                let lse = ops::reduce_logsumexp(&xs[0], axis, true).unwrap();
                let ls = ops::sub(&xs[0], &lse).unwrap();
                if log {
                    ls
                } else {
                    ops::exp(&ls).unwrap()
                }
            };
            let xs = [x.clone()];
            assert_close(&vals(&fused(&xs)), &vals(&composite(&xs)), 1e-12, 1e-12);
            assert_close(
                &grads_of(&fused, &xs, &[0])[0],
                &grads_of(&composite, &xs, &[0])[0],
                1e-12,
                1e-10,
            );
        }
    }
}

#[test]
fn softmax_gradients_finite_differences() {
    let x = test_tensor(&[2, 3, 4], 4, -2.0, 2.0);
    for axis in [0isize, 1, 2, -1] {
        check_gradients(|xs| ops::softmax(&xs[0], axis), &[x.clone()], &[0]).unwrap();
        check_gradients(|xs| ops::log_softmax(&xs[0], axis), &[x.clone()], &[0]).unwrap();
    }
}

#[test]
fn softmax_errors_name_the_op() {
    let x = t(&[1.0, 2.0], &[2]);
    let e = ops::softmax(&x, 1).unwrap_err();
    assert!(matches!(e, Error::Axis { .. }));
    assert!(e.to_string().contains("Softmax") && e.to_string().contains("(2,)"));
    let e = ops::log_softmax(&Tensor::from_vec(vec![1i32, 2], &[2]).unwrap(), -1).unwrap_err();
    assert!(matches!(e, Error::DType { .. }) && e.to_string().contains("LogSoftmax"));
    assert!(ops::softmax(&Tensor::scalar(1.0f64), -1).is_err());
}

#[test]
fn softmax_cross_entropy_hand_values() {
    // logits [1, 2, 3]: lse = 3 + ln(1 + e^-1 + e^-2) = 3.40760596, so -log_softmax =
    // [2.40760596, 1.40760596, 0.40760596].
    // row 0, labels [0, 1, 0]: loss = 1.40760596
    // row 1, labels [0.5, 0.5, 0]: loss = 0.5·2.40760596 + 0.5·1.40760596 = 1.90760596
    let labels = t(&[0.0, 1.0, 0.0, 0.5, 0.5, 0.0], &[2, 3]);
    let logits = t(&[1.0, 2.0, 3.0, 1.0, 2.0, 3.0], &[2, 3]);
    let loss = ops::softmax_cross_entropy_with_logits(&labels, &logits, -1).unwrap();
    assert_eq!(loss.shape(), &[2]);
    assert_close(&vals(&loss), &[1.40760596, 1.90760596], 1e-8, 0.0);
    // Gradient wrt logits for label rows summing to 1: softmax - labels.
    let tape = GradientTape::new();
    tape.watch(&logits);
    tape.watch(&labels);
    let l = ops::reduce_sum(
        &ops::softmax_cross_entropy_with_logits(&labels, &logits, -1).unwrap(),
        Axes::All,
        false,
    )
    .unwrap();
    let g = tape.gradient(&l, &[&labels, &logits]).unwrap();
    let sm = [0.09003057, 0.24472847, 0.66524096];
    assert_close(
        &vals(g[1].as_ref().unwrap()),
        &[sm[0], sm[1] - 1.0, sm[2], sm[0] - 0.5, sm[1] - 0.5, sm[2]],
        1e-8,
        0.0,
    );
    // Gradient wrt labels: -log_softmax(logits).
    let nls = [2.40760596, 1.40760596, 0.40760596];
    assert_close(
        &vals(g[0].as_ref().unwrap()),
        &[nls, nls].concat(),
        1e-8,
        0.0,
    );
    // axis 0 of the transposed problem gives the same losses.
    let loss0 = ops::softmax_cross_entropy_with_logits(
        &ops::transpose(&labels, &[1, 0]).unwrap(),
        &ops::transpose(&logits, &[1, 0]).unwrap(),
        0,
    )
    .unwrap();
    assert_close(&vals(&loss0), &[1.40760596, 1.90760596], 1e-8, 0.0);
}

#[test]
fn softmax_cross_entropy_fused_matches_composite() {
    let labels = test_tensor(&[3, 4, 5], 6, 0.0, 1.0);
    let logits = test_tensor(&[3, 4, 5], 7, -3.0, 3.0);
    for axis in [-1isize, 0, 1] {
        let fused = move |xs: &[Tensor]| {
            ops::softmax_cross_entropy_with_logits(&xs[0], &xs[1], axis).unwrap()
        };
        let composite = move |xs: &[Tensor]| {
            let ls = ops::log_softmax(&xs[1], axis).unwrap();
            ops::neg(&ops::reduce_sum(&ops::mul(&xs[0], &ls).unwrap(), axis, false).unwrap())
                .unwrap()
        };
        let xs = [labels.clone(), logits.clone()];
        let (a, b) = (fused(&xs), composite(&xs));
        assert_eq!(a.shape(), b.shape());
        assert_close(&vals(&a), &vals(&b), 1e-12, 1e-12);
        let (ga, gb) = (
            grads_of(&fused, &xs, &[0, 1]),
            grads_of(&composite, &xs, &[0, 1]),
        );
        assert_close(&ga[0], &gb[0], 1e-12, 1e-10);
        assert_close(&ga[1], &gb[1], 1e-12, 1e-10);
    }
}

#[test]
fn softmax_cross_entropy_gradients_finite_differences() {
    // Label rows that do not sum to 1 exercise the exact gradient.
    let labels = test_tensor(&[2, 3, 4], 8, 0.0, 1.0);
    let logits = test_tensor(&[2, 3, 4], 9, -2.0, 2.0);
    for axis in [-1isize, 0, 1] {
        check_gradients(
            |xs| ops::softmax_cross_entropy_with_logits(&xs[0], &xs[1], axis),
            &[labels.clone(), logits.clone()],
            &[0, 1],
        )
        .unwrap();
    }
}

#[test]
fn softmax_cross_entropy_second_order() {
    // d/dlogits of the first gradient goes through the op's `backprop` output.
    let labels = test_tensor(&[2, 4], 10, 0.0, 1.0);
    let logits = test_tensor(&[2, 4], 11, -2.0, 2.0);
    let first_grad = |xs: &[Tensor]| {
        let tape = GradientTape::new();
        tape.watch(&xs[0]);
        tape.watch(&xs[1]);
        let l = weighted_sum(&ops::softmax_cross_entropy_with_logits(&xs[0], &xs[1], -1)?);
        let g = tape.gradient(&l, &[&xs[1]])?;
        Ok(g[0].clone().unwrap())
    };
    check_gradients(first_grad, &[labels.clone(), logits.clone()], &[0, 1]).unwrap();
    let labels_i = Tensor::from_vec(vec![3i64, 0], &[2]).unwrap();
    let sparse_first_grad = |xs: &[Tensor]| {
        let tape = GradientTape::new();
        tape.watch(&xs[1]);
        let l = weighted_sum(&ops::sparse_softmax_cross_entropy_with_logits(
            &xs[0], &xs[1],
        )?);
        let g = tape.gradient(&l, &[&xs[1]])?;
        Ok(g[0].clone().unwrap())
    };
    check_gradients(sparse_first_grad, &[labels_i, logits], &[1]).unwrap();
}

#[test]
fn softmax_cross_entropy_errors() {
    let a = t(&[0.0; 6], &[2, 3]);
    let b = t(&[0.0; 6], &[3, 2]);
    let e = ops::softmax_cross_entropy_with_logits(&a, &b, -1).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("SoftmaxCrossEntropyWithLogits") && s.contains("(2, 3)") && s.contains("(3, 2)"),
        "{s}"
    );
    let e = ops::softmax_cross_entropy_with_logits(&ops::cast(&a, DType::F32).unwrap(), &a, -1)
        .unwrap_err();
    assert!(matches!(e, Error::DType { .. }));
    assert!(ops::softmax_cross_entropy_with_logits(&a, &a, 2).is_err());
}

fn one_hot(labels: &[i64], n: usize) -> Vec<f64> {
    let mut v = vec![0.0; labels.len() * n];
    for (i, &l) in labels.iter().enumerate() {
        v[i * n + l as usize] = 1.0;
    }
    v
}

#[test]
fn sparse_softmax_cross_entropy_hand_values_and_composite() {
    // logits [1, 2, 3] (-log_softmax = [2.40760596, 1.40760596, 0.40760596]); labels 2 and 0.
    let logits = t(&[1.0, 2.0, 3.0, 1.0, 2.0, 3.0], &[2, 3]);
    for labels in [
        Tensor::from_vec(vec![2i64, 0], &[2]).unwrap(),
        Tensor::from_vec(vec![2i32, 0], &[2]).unwrap(),
    ] {
        let loss = ops::sparse_softmax_cross_entropy_with_logits(&labels, &logits).unwrap();
        assert_close(&vals(&loss), &[0.40760596, 2.40760596], 1e-8, 0.0);
    }
    // Fused op vs log_softmax + one-hot composite, value and gradient, rank 3.
    let lv: Vec<i64> = vec![0, 4, 2, 1, 3, 4];
    let labels = Tensor::from_vec(lv.clone(), &[2, 3]).unwrap();
    let oh = t(&one_hot(&lv, 5), &[2, 3, 5]);
    let logits = test_tensor(&[2, 3, 5], 12, -3.0, 3.0);
    let fused =
        |xs: &[Tensor]| ops::sparse_softmax_cross_entropy_with_logits(&xs[0], &xs[1]).unwrap();
    let composite = move |xs: &[Tensor]| {
        let ls = ops::log_softmax(&xs[1], -1).unwrap();
        ops::neg(&ops::reduce_sum(&ops::mul(&oh, &ls).unwrap(), -1, false).unwrap()).unwrap()
    };
    let xs = [labels.clone(), logits.clone()];
    assert_eq!(fused(&xs).shape(), &[2, 3]);
    assert_close(&vals(&fused(&xs)), &vals(&composite(&xs)), 1e-12, 1e-12);
    assert_close(
        &grads_of(&fused, &xs, &[1])[0],
        &grads_of(&composite, &xs, &[1])[0],
        1e-12,
        1e-10,
    );
    check_gradients(
        |xs| ops::sparse_softmax_cross_entropy_with_logits(&xs[0], &xs[1]),
        &xs,
        &[1],
    )
    .unwrap();
    // Labels get no gradient.
    let tape = GradientTape::new();
    tape.watch(&labels);
    tape.watch(&logits);
    let l = ops::reduce_sum(&fused(&xs), Axes::All, false).unwrap();
    let g = tape.gradient(&l, &[&labels, &logits]).unwrap();
    assert!(g[0].is_none() && g[1].is_some());
}

#[test]
fn sparse_softmax_cross_entropy_errors() {
    let logits = t(&[0.0; 6], &[2, 3]);
    for bad in [vec![0i64, 3], vec![-1, 0]] {
        let e = ops::sparse_softmax_cross_entropy_with_logits(
            &Tensor::from_vec(bad, &[2]).unwrap(),
            &logits,
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("SparseSoftmaxCrossEntropyWithLogits") && s.contains("[0, 3)"),
            "{s}"
        );
    }
    let e =
        ops::sparse_softmax_cross_entropy_with_logits(&t(&[0.0, 1.0], &[2]), &logits).unwrap_err();
    assert!(matches!(e, Error::DType { .. }));
    let e = ops::sparse_softmax_cross_entropy_with_logits(
        &Tensor::from_vec(vec![0i64, 1, 2], &[3]).unwrap(),
        &logits,
    )
    .unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("SparseSoftmaxCrossEntropyWithLogits")
            && s.contains("(3,)")
            && s.contains("(2, 3)"),
        "{s}"
    );
}

#[test]
fn sigmoid_cross_entropy_matches_naive_formula() {
    let z = test_tensor(&[3, 4], 13, 0.0, 1.0);
    let x = test_tensor(&[3, 4], 14, -5.0, 5.0);
    let loss = ops::sigmoid_cross_entropy_with_logits(&z, &x).unwrap();
    let naive: Vec<f64> = vals(&z)
        .iter()
        .zip(vals(&x))
        .map(|(&z, x)| {
            let s = 1.0 / (1.0 + (-x).exp());
            -z * s.ln() - (1.0 - z) * (1.0 - s).ln()
        })
        .collect();
    assert_close(&vals(&loss), &naive, 1e-12, 1e-12);
    check_gradients(
        |xs| ops::sigmoid_cross_entropy_with_logits(&xs[0], &xs[1]),
        &[z.clone(), x.clone()],
        &[0, 1],
    )
    .unwrap();
    // At x = 0 the derivative is sigmoid(0) - z = 0.5 - z.
    let z0 = t(&[0.25], &[1]);
    let x0 = t(&[0.0], &[1]);
    let tape = GradientTape::new();
    tape.watch(&x0);
    let l = ops::sigmoid_cross_entropy_with_logits(&z0, &x0).unwrap();
    let g = tape.gradient(&l, &[&x0]).unwrap();
    assert_close(&vals(g[0].as_ref().unwrap()), &[0.25], 1e-12, 0.0);
    let e = ops::sigmoid_cross_entropy_with_logits(&t(&[0.0; 2], &[2]), &x0).unwrap_err();
    assert!(e.to_string().contains("SigmoidCrossEntropyWithLogits"));
}

#[test]
fn extreme_logits_give_finite_losses_and_gradients() {
    let logits = t(&[1000.0, -1000.0, 0.0, -1000.0, 1000.0, 1000.0], &[2, 3]);
    let labels = t(&[0.0, 1.0, 0.0, 1.0, 0.0, 0.0], &[2, 3]);
    let sparse = Tensor::from_vec(vec![1i64, 0], &[2]).unwrap();
    let tape = GradientTape::persistent();
    tape.watch(&logits);
    tape.watch(&labels);
    let dense = ops::softmax_cross_entropy_with_logits(&labels, &logits, -1).unwrap();
    // row 0: lse = 1000, loss = 1000 - (-1000) = 2000
    // row 1: lse = 1000 + ln 2, loss = 1000 + ln 2 + 1000
    let expect = [2000.0, 2000.0 + std::f64::consts::LN_2];
    assert_close(&vals(&dense), &expect, 1e-9, 0.0);
    let sp = ops::sparse_softmax_cross_entropy_with_logits(&sparse, &logits).unwrap();
    assert_close(&vals(&sp), &expect, 1e-9, 0.0);
    let sig = ops::sigmoid_cross_entropy_with_logits(&labels, &logits).unwrap();
    // z=0, x=1000: 1000; z=1, x=-1000: 1000; z=0, x=0: ln 2; z=1, x=-1000: 1000; z=0, x=1000: 1000
    assert_close(
        &vals(&sig),
        &[
            1000.0,
            1000.0,
            std::f64::consts::LN_2,
            1000.0,
            1000.0,
            1000.0,
        ],
        1e-9,
        0.0,
    );
    let ls = ops::log_softmax(&logits, -1).unwrap();
    let sm = ops::softmax(&logits, -1).unwrap();
    for y in [&dense, &sp, &sig, &ls, &sm] {
        assert!(vals(y).iter().all(|v| v.is_finite()));
        let l = weighted_sum(y);
        for g in tape
            .gradient(&l, &[&logits, &labels])
            .unwrap()
            .into_iter()
            .flatten()
        {
            assert!(vals(&g).iter().all(|v| v.is_finite()), "{g:?}");
        }
    }
    // dense: d/dlogits = softmax - labels = [1, -1, 0], [-1, 0.5, 0.5]
    let g = tape
        .gradient(
            &ops::reduce_sum(&dense, Axes::All, false).unwrap(),
            &[&logits],
        )
        .unwrap();
    assert_close(
        &vals(g[0].as_ref().unwrap()),
        &[1.0, -1.0, 0.0, -1.0, 0.5, 0.5],
        1e-12,
        0.0,
    );
    // f32 too
    let l32 = ops::cast(&logits, DType::F32).unwrap();
    let d32 =
        ops::softmax_cross_entropy_with_logits(&ops::cast(&labels, DType::F32).unwrap(), &l32, -1)
            .unwrap();
    assert!(vals(&d32).iter().all(|v| v.is_finite()));
}

#[test]
fn l2_loss_values_composite_and_gradient() {
    let x = t(&[1.0, -2.0, 3.0, 0.5], &[2, 2]);
    // (1 + 4 + 9 + 0.25) / 2 = 7.125
    assert_eq!(ops::l2_loss(&x).unwrap().item::<f64>().unwrap(), 7.125);
    assert_eq!(ops::l2_loss(&x).unwrap().shape(), &[] as &[usize]);
    let big = test_tensor(&[70_000], 15, -1.0, 1.0);
    let reference: f64 = vals(&big).iter().map(|v| v * v).sum::<f64>() / 2.0;
    assert_close(
        &vals(&ops::l2_loss(&big).unwrap()),
        &[reference],
        1e-9,
        1e-12,
    );
    let composite = |xs: &[Tensor]| {
        ops::mul_scalar(
            &ops::reduce_sum(&ops::square(&xs[0]).unwrap(), Axes::All, false).unwrap(),
            0.5,
        )
        .unwrap()
    };
    let fused = |xs: &[Tensor]| ops::l2_loss(&xs[0]).unwrap();
    let xs = [test_tensor(&[3, 4], 16, -2.0, 2.0)];
    assert_close(&vals(&fused(&xs)), &vals(&composite(&xs)), 1e-12, 1e-12);
    assert_close(
        &grads_of(&fused, &xs, &[0])[0],
        &grads_of(&composite, &xs, &[0])[0],
        1e-12,
        0.0,
    );
    check_gradients(|xs| ops::l2_loss(&xs[0]), &xs, &[0]).unwrap();
    let f32v = ops::l2_loss(&ops::cast(&x, DType::F32).unwrap()).unwrap();
    assert_eq!(f32v.item::<f32>().unwrap(), 7.125);
    assert!(ops::l2_loss(&Tensor::from_vec(vec![1i32], &[1]).unwrap()).is_err());
}

#[test]
fn bias_add_values_gradients_and_errors() {
    let x = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = t(&[10.0, 20.0, 30.0], &[3]);
    assert_eq!(
        vals(&ops::bias_add(&x, &b).unwrap()),
        vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]
    );
    // rank 4 (NHWC), against a loop
    let x4 = test_tensor(&[2, 3, 2, 4], 17, -1.0, 1.0);
    let b4 = test_tensor(&[4], 18, -1.0, 1.0);
    let (xv, bv) = (vals(&x4), vals(&b4));
    let expect: Vec<f64> = xv.iter().enumerate().map(|(i, v)| v + bv[i % 4]).collect();
    assert_eq!(vals(&ops::bias_add(&x4, &b4).unwrap()), expect);
    for (x, b) in [(x.clone(), b.clone()), (x4.clone(), b4.clone())] {
        check_gradients(|xs| ops::bias_add(&xs[0], &xs[1]), &[x, b], &[0, 1]).unwrap();
    }
    // Fused BiasAdd / BiasAddGrad vs the broadcasting add / reduce_sum composite.
    let fused = |xs: &[Tensor]| ops::bias_add(&xs[0], &xs[1]).unwrap();
    let composite = |xs: &[Tensor]| ops::add(&xs[0], &xs[1]).unwrap();
    let xs = [x4.clone(), b4.clone()];
    assert_eq!(vals(&fused(&xs)), vals(&composite(&xs)));
    let (ga, gb) = (
        grads_of(&fused, &xs, &[0, 1]),
        grads_of(&composite, &xs, &[0, 1]),
    );
    assert_close(&ga[0], &gb[0], 0.0, 0.0);
    assert_close(&ga[1], &gb[1], 1e-12, 1e-12);
    // BiasAddGrad alone: a large input (parallel blocks) against a loop, and its gradient.
    let g = test_tensor(&[5000, 7], 19, -1.0, 1.0);
    let gv = vals(&g);
    let mut cols = vec![0.0; 7];
    for (i, v) in gv.iter().enumerate() {
        cols[i % 7] += v;
    }
    assert_close(&vals(&ops::bias_add_grad(&g).unwrap()), &cols, 1e-10, 1e-12);
    check_gradients(
        |xs| ops::bias_add_grad(&xs[0]),
        &[test_tensor(&[2, 2, 3], 20, -1.0, 1.0)],
        &[0],
    )
    .unwrap();
    // Errors name the op and the shapes.
    for (bad, shape) in [
        (t(&[1.0, 2.0], &[2]), "(2,)"),
        (t(&[0.0; 3], &[1, 3]), "(1, 3)"),
    ] {
        let e = ops::bias_add(&x, &bad).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("BiasAdd") && s.contains("(2, 3)") && s.contains(shape),
            "{s}"
        );
    }
    let e = ops::bias_add(&b, &b).unwrap_err();
    assert!(e.to_string().contains("BiasAdd"));
    let e = ops::bias_add(&x, &ops::cast(&b, DType::F32).unwrap()).unwrap_err();
    assert!(matches!(e, Error::DType { .. }));
}

#[test]
fn batch_normalization_matches_formula_and_gradients() {
    let x = test_tensor(&[4, 3], 21, -2.0, 2.0);
    let mean = test_tensor(&[3], 22, -1.0, 1.0);
    let var = test_tensor(&[3], 23, 0.5, 2.0);
    let offset = test_tensor(&[3], 24, -1.0, 1.0);
    let scale = test_tensor(&[3], 25, 0.5, 1.5);
    let eps = 1e-3;
    let (xv, mv, vv, ov, sv) = (
        vals(&x),
        vals(&mean),
        vals(&var),
        vals(&offset),
        vals(&scale),
    );
    for (use_offset, use_scale) in [(true, true), (false, false), (true, false), (false, true)] {
        let y = ops::batch_normalization(
            &x,
            &mean,
            &var,
            use_offset.then_some(&offset),
            use_scale.then_some(&scale),
            eps,
        )
        .unwrap();
        let expect: Vec<f64> = xv
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = i % 3;
                let s = if use_scale { sv[c] } else { 1.0 };
                let o = if use_offset { ov[c] } else { 0.0 };
                (v - mv[c]) * s / (vv[c] + eps).sqrt() + o
            })
            .collect();
        assert_close(&vals(&y), &expect, 1e-12, 1e-12);
    }
    check_gradients(
        |xs| ops::batch_normalization(&xs[0], &xs[1], &xs[2], Some(&xs[3]), Some(&xs[4]), eps),
        &[x, mean, var, offset, scale],
        &[0, 1, 2, 3, 4],
    )
    .unwrap();
}

#[test]
fn dropout_statistics_scaling_and_determinism() {
    let n = 100_000;
    let x = ops::ones(&[n], DType::F32);
    let rate = 0.3;
    let y = ops::dropout(&x, rate, 42, None).unwrap();
    let yv = y.to_vec::<f32>().unwrap();
    let zeros = yv.iter().filter(|&&v| v == 0.0).count();
    let ratio = zeros as f64 / n as f64;
    // Binomial std of the ratio: sqrt(0.3·0.7/1e5) ≈ 0.00145; allow ~5 sigma.
    assert!((ratio - rate).abs() < 0.008, "zero ratio {ratio}");
    let kept = (1.0 / (1.0 - rate)) as f32;
    assert!(yv.iter().all(|&v| v == 0.0 || v == kept));
    // Same seed, same mask; another seed, another mask.
    assert_eq!(
        ops::dropout(&x, rate, 42, None)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        yv
    );
    assert_ne!(
        ops::dropout(&x, rate, 43, None)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        yv
    );
    // Thread-count independence.
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                ops::dropout(&x, rate, 42, None)
                    .unwrap()
                    .to_vec::<f32>()
                    .unwrap()
            })
    };
    assert_eq!(run(1), yv);
    assert_eq!(run(2), yv);
    // Values are scaled inputs; f64 works too.
    let xd = test_tensor(&[1000], 26, -2.0, 2.0);
    let yd = ops::dropout(&xd, 0.5, 1, None).unwrap();
    for (a, b) in vals(&yd).iter().zip(vals(&xd)) {
        assert!(*a == 0.0 || (a - 2.0 * b).abs() < 1e-12);
    }
}

#[test]
fn dropout_rate_zero_noise_shape_gradient_and_errors() {
    let x = test_tensor(&[4, 6], 27, 0.5, 2.0);
    assert_eq!(vals(&ops::dropout(&x, 0.0, 1, None).unwrap()), vals(&x));
    for bad in [1.0, -0.1, 1.5, f64::NAN] {
        let e = ops::dropout(&x, bad, 1, None).unwrap_err();
        assert!(e.to_string().contains("Dropout"));
    }
    assert!(matches!(
        ops::dropout(&Tensor::from_vec(vec![1i32], &[1]).unwrap(), 0.5, 1, None),
        Err(Error::DType { .. })
    ));
    // noise_shape [1, 6]: every row gets the same mask.
    let y = ops::dropout(&x, 0.5, 3, Some(&[1, 6])).unwrap();
    let (xv, yv) = (vals(&x), vals(&y));
    let mask: Vec<bool> = (0..24).map(|i| yv[i] != 0.0).collect();
    for i in 0..24 {
        assert_eq!(mask[i], mask[i % 6]);
        if mask[i] {
            assert!((yv[i] - 2.0 * xv[i]).abs() < 1e-12);
        }
    }
    let e = ops::dropout(&x, 0.5, 3, Some(&[2, 6])).unwrap_err();
    assert!(e.to_string().contains("Dropout") && e.to_string().contains("(4, 6)"));
    // Gradient: g · mask / (1 - rate), i.e. y / x elementwise here.
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = ops::dropout(&x, 0.25, 9, None).unwrap();
    let l = ops::reduce_sum(&y, Axes::All, false).unwrap();
    let g = vals(tape.gradient(&l, &[&x]).unwrap()[0].as_ref().unwrap());
    for ((gv, yv), xv) in g.iter().zip(vals(&y)).zip(vals(&x)) {
        let expect = if yv == 0.0 { 0.0 } else { 1.0 / 0.75 };
        assert!((gv - expect).abs() < 1e-12 && (yv - expect * xv).abs() < 1e-12);
    }
    check_gradients(|xs| ops::dropout(&xs[0], 0.4, 5, Some(&[4, 1])), &[x], &[0]).unwrap();
}

#[test]
fn shape_rules_keep_unknown_dims() {
    use ferroflow_core::op::{Op, TensorSpec};
    use ferroflow_core::ops::losses::{
        SoftmaxCrossEntropyWithLogits, SparseSoftmaxCrossEntropyWithLogits,
    };
    use ferroflow_core::ops::nn::{BiasAdd, BiasAddGrad};
    use ferroflow_core::ops::softmax::Softmax;
    let spec = |dt: DType, s: &[Option<usize>]| TensorSpec {
        dtype: dt,
        shape: s.to_vec(),
    };
    let x = spec(DType::F32, &[None, Some(5)]);
    let out = Softmax {
        axis: -1,
        log: false,
    }
    .infer(std::slice::from_ref(&x))
    .unwrap();
    assert_eq!(out[0], x);
    assert!(Softmax { axis: 2, log: true }
        .infer(std::slice::from_ref(&x))
        .is_err());
    let out = SoftmaxCrossEntropyWithLogits
        .infer(&[x.clone(), spec(DType::F32, &[Some(3), None])])
        .unwrap();
    assert_eq!(out[0].shape, vec![Some(3)]);
    assert_eq!(out[1].shape, vec![Some(3), Some(5)]);
    assert!(SoftmaxCrossEntropyWithLogits
        .infer(&[x.clone(), spec(DType::F32, &[None, Some(4)])])
        .is_err());
    let out = SparseSoftmaxCrossEntropyWithLogits
        .infer(&[x.clone(), spec(DType::I64, &[Some(7)])])
        .unwrap();
    assert_eq!(out[0].shape, vec![Some(7)]);
    assert_eq!(out[1].shape, vec![Some(7), Some(5)]);
    assert!(SparseSoftmaxCrossEntropyWithLogits
        .infer(&[x.clone(), spec(DType::I64, &[None, None])])
        .is_err());
    let out = BiasAdd
        .infer(&[x.clone(), spec(DType::F32, &[None])])
        .unwrap();
    assert_eq!(out[0], x);
    assert!(BiasAdd
        .infer(&[x.clone(), spec(DType::F32, &[Some(4)])])
        .is_err());
    let out = BiasAddGrad
        .infer(&[spec(DType::F32, &[None, None, None])])
        .unwrap();
    assert_eq!(out[0].shape, vec![None]);
}

#[test]
fn fused_kernels_do_not_depend_on_thread_count() {
    let x = test_tensor(&[400, 130], 30, -5.0, 5.0);
    let z = test_tensor(&[400, 130], 31, 0.0, 1.0);
    let labels =
        Tensor::from_vec((0..400).map(|i| (i * 7 % 130) as i64).collect(), &[400]).unwrap();
    let g = test_tensor(&[40_000, 3], 32, -1.0, 1.0);
    let b = test_tensor(&[3], 33, -1.0, 1.0);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                vec![
                    vals(&ops::softmax(&x, -1).unwrap()),
                    vals(&ops::log_softmax(&x, 0).unwrap()),
                    vals(&ops::softmax_cross_entropy_with_logits(&z, &x, -1).unwrap()),
                    vals(&ops::sparse_softmax_cross_entropy_with_logits(&labels, &x).unwrap()),
                    vals(&ops::l2_loss(&g).unwrap()),
                    vals(&ops::bias_add_grad(&g).unwrap()),
                    vals(&ops::bias_add(&g, &b).unwrap()),
                ]
            })
    };
    assert_eq!(run(1), run(2));
    assert_eq!(run(1), run(3));
}

#[test]
fn half_precision_losses_compute_in_f32() {
    let z = test_tensor(&[2, 4], 34, 0.0, 1.0);
    let x = test_tensor(&[2, 4], 35, -2.0, 2.0);
    let exact = vals(&ops::softmax_cross_entropy_with_logits(&z, &x, -1).unwrap());
    for dt in [DType::F16, DType::BF16] {
        let (zh, xh) = (ops::cast(&z, dt).unwrap(), ops::cast(&x, dt).unwrap());
        let l = ops::softmax_cross_entropy_with_logits(&zh, &xh, -1).unwrap();
        assert_eq!(l.dtype(), dt);
        assert_close(&vals(&l), &exact, 0.05, 0.02);
        let b = ops::bias_add(
            &xh,
            &ops::cast(&t(&[1.0, 2.0, 3.0, 4.0], &[4]), dt).unwrap(),
        )
        .unwrap();
        assert_eq!(b.dtype(), dt);
        assert_eq!(ops::l2_loss(&xh).unwrap().dtype(), dt);
    }
}

/// `ReluGrad` (the fused gradient of `Relu`) against the unfused `g · cast(x > 0)` on a large
/// input (parallel chunks), a hand-checked case with TensorFlow's select semantics at
/// non-positive features, its own gradient by finite differences (f64), the second derivative of
/// `relu` through nested tapes, and shape/dtype errors naming the op.
#[test]
fn relu_grad_matches_the_unfused_ops_and_its_gradient() {
    let x = test_tensor(&[301, 17], 31, -1.0, 1.0);
    let g = test_tensor(&[301, 17], 32, -2.0, 2.0);
    let unfused = ops::mul(
        &g,
        &ops::cast(
            &ops::greater(&x, &Tensor::scalar(0.0f64)).unwrap(),
            DType::F64,
        )
        .unwrap(),
    )
    .unwrap();
    assert_close(
        &vals(&ops::relu_grad(&g, &x).unwrap()),
        &vals(&unfused),
        0.0,
        0.0,
    );
    // f32, and the tape gradient of relu, against a loop.
    let (x32, g32) = (
        ops::cast(&x, DType::F32).unwrap(),
        ops::cast(&g, DType::F32).unwrap(),
    );
    let want: Vec<f64> = vals(&x32)
        .iter()
        .zip(vals(&g32))
        .map(|(&x, g)| if x > 0.0 { g } else { 0.0 })
        .collect();
    assert_close(&vals(&ops::relu_grad(&g32, &x32).unwrap()), &want, 0.0, 0.0);
    // TensorFlow selects: an infinite gradient at a negative feature gives 0, not NaN.
    let r = ops::relu_grad(&t(&[f64::INFINITY, 1.0], &[2]), &t(&[-1.0, 0.0], &[2])).unwrap();
    assert_eq!(vals(&r), vec![0.0, 0.0]);
    // d/dg by finite differences (features away from the kink).
    let xs = [
        test_tensor(&[3, 4], 33, -1.0, 1.0),
        t(
            &[
                0.5, -0.7, 0.9, -0.2, 0.3, -0.4, 0.8, -0.9, 0.25, -0.6, 0.7, -0.35,
            ],
            &[3, 4],
        ),
    ];
    check_gradients(|xs| ops::relu_grad(&xs[0], &xs[1]), &xs, &[0]).unwrap();
    // The gradient of relu's gradient: d/dx [relu'(x)·w] = 0 almost everywhere.
    let xv = xs[1].clone();
    let outer = GradientTape::new();
    outer.watch(&xv);
    let inner = GradientTape::new();
    inner.watch(&xv);
    let l = weighted_sum(&ops::relu(&xv).unwrap());
    let dx = inner.gradient(&l, &[&xv]).unwrap()[0].clone().unwrap();
    let s = ops::reduce_sum(&dx, Axes::All, false).unwrap();
    let ddx = outer.gradient(&s, &[&xv]).unwrap()[0].clone();
    if let Some(d) = ddx {
        assert!(vals(&d).iter().all(|&v| v == 0.0));
    }
    // Errors.
    let e = ops::relu_grad(&t(&[1.0, 2.0], &[2]), &t(&[1.0; 3], &[3])).unwrap_err();
    assert!(
        e.to_string().contains("ReluGrad") && e.to_string().contains("(3,)"),
        "{e}"
    );
    let e = ops::relu_grad(&x32, &x).unwrap_err();
    assert!(e.to_string().contains("ReluGrad"), "{e}");
}
