//! BatchNormalization and LayerNormalization against hand computations in f64.

use ferroflow_core::testing::{check_gradients, test_values};
use ferroflow_core::{ops, DType, GradientTape, Tensor};
use ferroflow_keras::layers::{BatchNormalization, Dense, Layer, LayerHandle, LayerNormalization};
use ferroflow_keras::Sequential;

fn f32s(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape).unwrap()
}

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

/// Per-channel (mean, biased variance) of a row-major `[n, c]` matrix.
fn channel_stats(x: &[f64], n: usize, c: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0; c];
    let mut var = vec![0.0; c];
    for j in 0..c {
        for i in 0..n {
            mean[j] += x[i * c + j];
        }
        mean[j] /= n as f64;
        for i in 0..n {
            var[j] += (x[i * c + j] - mean[j]).powi(2);
        }
        var[j] /= n as f64;
    }
    (mean, var)
}

#[test]
fn batch_norm_weights_match_keras() {
    let bn = LayerHandle::new(BatchNormalization::new());
    bn.build(&[vec![None, Some(64)]]).unwrap();
    let l = bn.lock();
    assert_eq!(l.count_params(), 256);
    let names: Vec<String> = l.weights().iter().map(|v| v.name().to_string()).collect();
    let suffixes: Vec<&str> = names
        .iter()
        .map(|n| n.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        suffixes,
        ["gamma", "beta", "moving_mean", "moving_variance"]
    );
    let count = |vs: Vec<ferroflow_core::Variable>| -> usize {
        vs.iter().map(|v| v.shape().iter().product::<usize>()).sum()
    };
    assert_eq!(count(l.trainable_weights()), 128);
    assert_eq!(count(l.non_trainable_weights()), 128);
    let init: Vec<Vec<f32>> = l
        .get_weights()
        .iter()
        .map(|t| t.to_vec::<f32>().unwrap())
        .collect();
    assert!(init[0].iter().all(|&v| v == 1.0));
    assert!(init[1].iter().all(|&v| v == 0.0));
    assert!(init[2].iter().all(|&v| v == 0.0));
    assert!(init[3].iter().all(|&v| v == 1.0));
}

#[test]
fn batch_norm_without_center_or_scale_has_fewer_weights() {
    let bn = LayerHandle::new(BatchNormalization::new().center(false).scale(false));
    bn.build(&[vec![None, Some(5)]]).unwrap();
    let l = bn.lock();
    assert_eq!(l.weights().len(), 2);
    assert_eq!(l.count_params(), 10);
    assert!(l.trainable_weights().is_empty());
}

#[test]
fn batch_norm_training_output_and_moving_stats() {
    // 4-D channels-last input: statistics over the batch and both spatial axes.
    let (n, h, w, c) = (2, 2, 3, 3);
    let rows = n * h * w;
    let xv = test_values(rows * c, 11, -2.0, 3.0);
    let x = f32s(&xv, &[n, h, w, c]);
    let xv: Vec<f64> = x.to_f64_vec();
    let gamma = [0.5, -1.5, 2.0];
    let beta = [0.1, 0.0, -0.3];
    let mm0 = [0.2, -0.1, 0.4];
    let mv0 = [1.5, 0.5, 2.0];
    let bn = LayerHandle::new(BatchNormalization::new().momentum(0.9).epsilon(1e-3));
    bn.build(&[vec![None, Some(h), Some(w), Some(c)]]).unwrap();
    bn.lock()
        .set_weights(&[
            f32s(&gamma, &[c]),
            f32s(&beta, &[c]),
            f32s(&mm0, &[c]),
            f32s(&mv0, &[c]),
        ])
        .unwrap();
    let y = bn.call(&x, true).unwrap().to_f64_vec();
    let (mean, var) = channel_stats(&xv, rows, c);
    let mut want = vec![0.0; rows * c];
    for i in 0..rows {
        for j in 0..c {
            want[i * c + j] =
                (xv[i * c + j] - mean[j]) / (var[j] + 1e-3).sqrt() * gamma[j] + beta[j];
        }
    }
    close(&y, &want, 1e-5, "training output");
    let weights = bn.lock().get_weights();
    let mm: Vec<f64> = weights[2].to_f64_vec();
    let mv: Vec<f64> = weights[3].to_f64_vec();
    let want_mm: Vec<f64> = (0..c).map(|j| mm0[j] * 0.9 + mean[j] * 0.1).collect();
    let want_mv: Vec<f64> = (0..c).map(|j| mv0[j] * 0.9 + var[j] * 0.1).collect();
    close(&mm, &want_mm, 1e-6, "moving_mean");
    close(&mv, &want_mv, 1e-6, "moving_variance (biased)");
    // gamma and beta are not touched by a forward pass.
    close(&weights[0].to_f64_vec(), &gamma, 0.0, "gamma");
}

#[test]
fn batch_norm_default_momentum_is_0_99() {
    let x = f32s(&[1.0, 2.0, 3.0, 6.0], &[4, 1]);
    let bn = LayerHandle::new(BatchNormalization::new());
    bn.call(&x, true).unwrap();
    let w = bn.lock().get_weights();
    // mean 3, biased variance (4 + 1 + 0 + 9)/4 = 3.5
    close(&w[2].to_f64_vec(), &[0.01 * 3.0], 1e-6, "moving_mean");
    close(
        &w[3].to_f64_vec(),
        &[0.99 + 0.01 * 3.5],
        1e-6,
        "moving_variance",
    );
}

#[test]
fn batch_norm_inference_uses_moving_stats() {
    let (b, c) = (3, 2);
    let xv = [1.0, -2.0, 0.5, 4.0, -1.0, 2.5];
    let gamma = [2.0, 0.5];
    let beta = [-1.0, 1.0];
    let mm = [0.5, 1.0];
    let mv = [4.0, 0.25];
    let bn = LayerHandle::new(BatchNormalization::new().epsilon(0.01));
    bn.build(&[vec![None, Some(c)]]).unwrap();
    bn.lock()
        .set_weights(&[
            f32s(&gamma, &[c]),
            f32s(&beta, &[c]),
            f32s(&mm, &[c]),
            f32s(&mv, &[c]),
        ])
        .unwrap();
    let y = bn.call(&f32s(&xv, &[b, c]), false).unwrap().to_f64_vec();
    let want: Vec<f64> = (0..b * c)
        .map(|k| {
            let j = k % c;
            (xv[k] - mm[j]) / (mv[j] + 0.01).sqrt() * gamma[j] + beta[j]
        })
        .collect();
    close(&y, &want, 1e-6, "inference output");
    // Inference leaves the moving statistics alone.
    close(
        &bn.lock().get_weights()[2].to_f64_vec(),
        &mm,
        0.0,
        "moving_mean",
    );
}

#[test]
fn frozen_batch_norm_runs_in_inference_mode() {
    let bn = LayerHandle::new(BatchNormalization::new().trainable(false));
    let x = f32s(&[1.0, 3.0], &[2, 1]);
    let y = bn.call(&x, true).unwrap().to_f64_vec();
    // moving stats 0 and 1: y = x / √(1 + 0.001)
    close(
        &y,
        &[1.0 / 1.001f64.sqrt(), 3.0 / 1.001f64.sqrt()],
        1e-6,
        "frozen",
    );
    close(
        &bn.lock().get_weights()[2].to_f64_vec(),
        &[0.0],
        0.0,
        "moving_mean",
    );
}

#[test]
fn batch_norm_on_another_axis() {
    // axis=1 of [2, 3, 2]: statistics over axes 0 and 2.
    let xv = test_values(12, 5, -1.0, 1.0);
    let x = Tensor::from_vec(xv.clone(), &[2, 3, 2]).unwrap();
    let bn = LayerHandle::new(BatchNormalization::new().axis(1));
    bn.build(&[vec![None, Some(3), Some(2)]]).unwrap();
    let y = bn.call(&x, true).unwrap().to_f64_vec();
    for ch in 0..3 {
        let idx: Vec<usize> = (0..2)
            .flat_map(|b| (0..2).map(move |k| b * 6 + ch * 2 + k))
            .collect();
        let m = idx.iter().map(|&i| xv[i]).sum::<f64>() / 4.0;
        let v = idx.iter().map(|&i| (xv[i] - m).powi(2)).sum::<f64>() / 4.0;
        for &i in &idx {
            let want = (xv[i] - m) / (v + 1e-3).sqrt();
            assert!((y[i] - want).abs() < 1e-5, "channel {ch} element {i}");
        }
    }
    assert_eq!(bn.lock().get_weights()[0].shape(), &[3]);
}

#[test]
fn batch_norm_gradient_matches_finite_differences() {
    let bn = LayerHandle::new(BatchNormalization::new());
    bn.build(&[vec![None, Some(3)]]).unwrap();
    bn.lock()
        .set_weights(&[
            f32s(&[1.5, -0.5, 2.0], &[3]),
            f32s(&[0.1, 0.2, 0.3], &[3]),
            f32s(&[0.0; 3], &[3]),
            f32s(&[1.0; 3], &[3]),
        ])
        .unwrap();
    // float64 input: the layer computes in float64, so the check runs in float64.
    let x = Tensor::from_vec(test_values(15, 3, -2.0, 2.0), &[5, 3]).unwrap();
    let layer = bn.clone();
    check_gradients(move |xs| layer.call(&xs[0], true), &[x], &[0]).unwrap();
}

#[test]
fn batch_norm_gradients_match_the_hand_formula() {
    // d(Σ BN(x)·r)/dx = γ/√(σ²+ε)·(r - mean(r) - x̂·mean(r·x̂)), d/dγ = Σ r·x̂, d/dβ = Σ r.
    let (n, c) = (6, 2);
    let eps = 1e-3;
    let xv: Vec<f64> = f32s(&test_values(n * c, 21, -3.0, 3.0), &[n, c]).to_f64_vec();
    let rv: Vec<f64> = f32s(&test_values(n * c, 22, -1.0, 1.0), &[n, c]).to_f64_vec();
    let gamma = [0.7, -1.3];
    let bn = LayerHandle::new(BatchNormalization::new());
    bn.build(&[vec![None, Some(c)]]).unwrap();
    bn.lock()
        .set_weights(&[
            f32s(&gamma, &[c]),
            f32s(&[0.5, -0.5], &[c]),
            f32s(&[0.0; 2], &[c]),
            f32s(&[1.0; 2], &[c]),
        ])
        .unwrap();
    let vars = bn.lock().trainable_weights();
    let x = f32s(&xv, &[n, c]);
    let r = f32s(&rv, &[n, c]);
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = bn.call(&x, true).unwrap();
    let l = ops::reduce_sum(&ops::mul(&y, &r).unwrap(), ops::Axes::All, false).unwrap();
    let g = tape.gradient(&l, &[&x, &vars[0], &vars[1]]).unwrap();
    let (mean, var) = channel_stats(&xv, n, c);
    let mut dx = vec![0.0; n * c];
    let mut dgamma = vec![0.0; c];
    let mut dbeta = vec![0.0; c];
    for j in 0..c {
        let s = (var[j] + eps).sqrt();
        let xhat: Vec<f64> = (0..n).map(|i| (xv[i * c + j] - mean[j]) / s).collect();
        let mr = (0..n).map(|i| rv[i * c + j]).sum::<f64>() / n as f64;
        let mrx = (0..n).map(|i| rv[i * c + j] * xhat[i]).sum::<f64>() / n as f64;
        for i in 0..n {
            dx[i * c + j] = gamma[j] / s * (rv[i * c + j] - mr - xhat[i] * mrx);
        }
        dgamma[j] = mrx * n as f64;
        dbeta[j] = mr * n as f64;
    }
    close(&g[0].as_ref().unwrap().to_f64_vec(), &dx, 1e-4, "dx");
    close(
        &g[1].as_ref().unwrap().to_f64_vec(),
        &dgamma,
        1e-4,
        "dgamma",
    );
    close(&g[2].as_ref().unwrap().to_f64_vec(), &dbeta, 1e-4, "dbeta");
}

#[test]
fn batch_norm_trains_inside_a_model() {
    let mut model = Sequential::new();
    model.add(Dense::new(4).input_shape(&[3])).unwrap();
    model.add(BatchNormalization::new()).unwrap();
    model.add(Dense::new(1)).unwrap();
    model.compile("sgd", "mse", ()).unwrap();
    assert_eq!(model.count_params(), 3 * 4 + 4 + 16 + 4 + 1);
    assert_eq!(model.trainable_weights().len(), 6);
    assert_eq!(model.non_trainable_weights().len(), 2);
    let x = f32s(&test_values(24, 1, -1.0, 1.0), &[8, 3]);
    let y = ops::ones(&[8, 1], DType::F32);
    let before = model.get_weights();
    let logs = model.train_on_batch(&x, &y, None).unwrap();
    assert!(logs.get("loss").is_some_and(|l| l.is_finite()));
    let after = model.get_weights();
    // weights order: dense kernel, bias, gamma, beta, moving_mean, moving_variance, ...
    assert_ne!(
        before[2].to_f64_vec(),
        after[2].to_f64_vec(),
        "gamma trained"
    );
    assert_ne!(
        before[4].to_f64_vec(),
        after[4].to_f64_vec(),
        "moving_mean updated"
    );
}

#[test]
fn batch_norm_rejects_bad_input() {
    let bn = LayerHandle::new(BatchNormalization::new().named("bn"));
    bn.build(&[vec![None, Some(4)]]).unwrap();
    let e = bn
        .call(&ops::ones(&[2, 5], DType::F32), true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"bn\"") && e.contains("value 4") && e.contains("(2, 5)"),
        "{e}"
    );
    let bad_axis = LayerHandle::new(BatchNormalization::new().axis(3).named("bn_axis"));
    let e = bad_axis
        .build(&[vec![None, Some(4)]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("bn_axis") && e.contains("axis 3"), "{e}");
    let unknown = LayerHandle::new(BatchNormalization::new());
    assert!(unknown.build(&[vec![None, None]]).is_err());
}

/// Layer normalization of each row of a row-major `[rows, d]` matrix.
fn layer_norm_rows(x: &[f64], d: usize, eps: f64, gamma: &[f64], beta: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for (row, o) in x.chunks(d).zip(out.chunks_mut(d)) {
        let m = row.iter().sum::<f64>() / d as f64;
        let v = row.iter().map(|a| (a - m).powi(2)).sum::<f64>() / d as f64;
        for k in 0..d {
            o[k] = (row[k] - m) / (v + eps).sqrt() * gamma[k] + beta[k];
        }
    }
    out
}

#[test]
fn layer_norm_over_the_last_axis() {
    let xv = test_values(2 * 3 * 4, 9, -2.0, 2.0);
    let x = Tensor::from_vec(xv.clone(), &[2, 3, 4]).unwrap();
    let gamma = [1.0, 2.0, -0.5, 0.3];
    let beta = [0.0, 0.1, 0.2, -0.3];
    let ln = LayerHandle::new(LayerNormalization::new());
    ln.build(&[vec![None, Some(3), Some(4)]]).unwrap();
    assert_eq!(ln.lock().count_params(), 8);
    ln.lock()
        .set_weights(&[f32s(&gamma, &[4]), f32s(&beta, &[4])])
        .unwrap();
    let want = layer_norm_rows(&xv, 4, 1e-3, &gamma, &beta);
    // Same in training and inference.
    close(
        &ln.call(&x, false).unwrap().to_f64_vec(),
        &want,
        1e-6,
        "inference",
    );
    close(
        &ln.call(&x, true).unwrap().to_f64_vec(),
        &want,
        1e-6,
        "training",
    );
}

#[test]
fn layer_norm_over_several_axes() {
    let xv = test_values(2 * 3 * 4, 4, -2.0, 2.0);
    let x = Tensor::from_vec(xv.clone(), &[2, 3, 4]).unwrap();
    let ln = LayerHandle::new(LayerNormalization::new().axes(&[1, 2]).epsilon(1e-5));
    ln.build(&[vec![None, Some(3), Some(4)]]).unwrap();
    assert_eq!(ln.lock().get_weights()[0].shape(), &[3, 4]);
    let gamma: Vec<f64> = (0..12).map(|i| 0.5 + i as f64 * 0.1).collect();
    let beta: Vec<f64> = (0..12).map(|i| i as f64 * -0.05).collect();
    ln.lock()
        .set_weights(&[f32s(&gamma, &[3, 4]), f32s(&beta, &[3, 4])])
        .unwrap();
    let want = layer_norm_rows(&xv, 12, 1e-5, &gamma, &beta);
    close(
        &ln.call(&x, false).unwrap().to_f64_vec(),
        &want,
        1e-6,
        "axes [1, 2]",
    );
}

#[test]
fn layer_norm_gradient_matches_finite_differences() {
    let ln = LayerHandle::new(LayerNormalization::new());
    ln.build(&[vec![None, Some(4)]]).unwrap();
    ln.lock()
        .set_weights(&[
            f32s(&[1.0, -2.0, 0.5, 1.5], &[4]),
            f32s(&[0.0, 1.0, 0.0, -1.0], &[4]),
        ])
        .unwrap();
    let x = Tensor::from_vec(test_values(12, 8, -2.0, 2.0), &[3, 4]).unwrap();
    let layer = ln.clone();
    check_gradients(move |xs| layer.call(&xs[0], true), &[x], &[0]).unwrap();
}

#[test]
fn layer_norm_errors_name_the_layer() {
    let ln = LayerHandle::new(LayerNormalization::new().axis(2).named("ln"));
    let e = ln.build(&[vec![None, Some(4)]]).unwrap_err().to_string();
    assert!(e.contains("ln") && e.contains("axis 2"), "{e}");
    let ln = LayerHandle::new(LayerNormalization::new().named("ln2"));
    ln.build(&[vec![None, Some(4)]]).unwrap();
    let e = ln
        .call(&ops::ones(&[2, 3], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ln2") && e.contains("(2, 3)"), "{e}");
}
