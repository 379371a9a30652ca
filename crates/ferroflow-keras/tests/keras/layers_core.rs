//! Core, reshaping, regularization and pooling layers: values against naive f64 loops written
//! here, shapes (unknown batch included), and errors.

use ferroflow_core::{ops, DType, Error, Tensor};
use ferroflow_keras::layers::*;
use ferroflow_keras::utils::set_random_seed;

fn t(v: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<f32>>(), shape).unwrap()
}

fn vals(x: &Tensor) -> Vec<f64> {
    x.to_f64_vec()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}

/// Pseudo-random but fixed test data.
fn data(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 37 + 11) % 23) as f64 / 4.0 - 2.5)
        .collect()
}

/// Naive NHWC pooling in f64: Keras's valid/same geometry; `max` pads with -inf, average
/// counts only real elements.
fn naive_pool2d(
    x: &[f64],
    [n, h, w, c]: [usize; 4],
    k: [usize; 2],
    s: [usize; 2],
    same: bool,
    max: bool,
) -> (Vec<f64>, [usize; 4]) {
    let out_len = |len: usize, k: usize, s: usize| {
        if same {
            len.div_ceil(s)
        } else {
            (len - k) / s + 1
        }
    };
    let (oh, ow) = (out_len(h, k[0], s[0]), out_len(w, k[1], s[1]));
    let pad = |len: usize, out: usize, k: usize, s: usize| {
        if same {
            (((out - 1) * s + k).saturating_sub(len)) / 2
        } else {
            0
        }
    };
    let (ph, pw) = (pad(h, oh, k[0], s[0]), pad(w, ow, k[1], s[1]));
    let mut y = Vec::new();
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for ch in 0..c {
                    let mut acc = if max { f64::NEG_INFINITY } else { 0.0 };
                    let mut count = 0;
                    for di in 0..k[0] {
                        for dj in 0..k[1] {
                            let r = (i * s[0] + di) as isize - ph as isize;
                            let q = (j * s[1] + dj) as isize - pw as isize;
                            if r < 0 || q < 0 || r >= h as isize || q >= w as isize {
                                continue;
                            }
                            let v = x[((b * h + r as usize) * w + q as usize) * c + ch];
                            count += 1;
                            acc = if max { acc.max(v) } else { acc + v };
                        }
                    }
                    y.push(if max { acc } else { acc / count as f64 });
                }
            }
        }
    }
    (y, [n, oh, ow, c])
}

#[test]
fn flatten_values_and_shapes() {
    let x = t(data(2 * 3 * 2 * 2), &[2, 3, 2, 2]);
    let y = LayerHandle::new(Flatten::new()).call(&x, false).unwrap();
    assert_eq!(y.shape(), &[2, 12]);
    // Row-major (channels-last) order: the data is unchanged.
    close(&vals(&y), &data(24));
    let f = LayerHandle::new(Flatten::new());
    let s = f
        .compute_output_shape(&[vec![None, Some(5), Some(5), Some(64)]])
        .unwrap();
    assert_eq!(s, vec![vec![None, Some(1600)]]);
    let s = f
        .compute_output_shape(&[vec![None, None, Some(4)]])
        .unwrap();
    assert_eq!(s, vec![vec![None, None]]);
    let y = LayerHandle::new(Flatten::new())
        .call(&t(vec![1.0, 2.0, 3.0], &[3]), false)
        .unwrap();
    assert_eq!(y.shape(), &[3, 1]);
}

#[test]
fn max_pooling2d_matches_naive() {
    for &(h, w, k, s, same) in &[
        (5usize, 5usize, [2usize, 2usize], [2usize, 2usize], false),
        (5, 5, [2, 2], [2, 2], true),
        (7, 6, [3, 2], [2, 1], true),
        (7, 6, [3, 2], [2, 1], false),
        (4, 5, [2, 3], [1, 2], true),
    ] {
        let shape = [2, h, w, 3];
        let xs = data(shape.iter().product());
        let x = t(xs.clone(), &shape);
        let pool = MaxPooling2D::new((k[0], k[1]))
            .strides((s[0], s[1]))
            .padding(if same { "same" } else { "valid" });
        let y = LayerHandle::new(pool).call(&x, false).unwrap();
        let (want, want_shape) = naive_pool2d(&xs, shape, k, s, same, true);
        assert_eq!(y.shape(), &want_shape);
        close(&vals(&y), &want);
    }
}

#[test]
fn max_pooling2d_defaults_and_shapes() {
    // strides default to pool_size; the seed CNN's 26 -> 13 and 11 -> 5 (floor).
    let p = LayerHandle::new(MaxPooling2D::new(2));
    let s = p
        .compute_output_shape(&[vec![None, Some(11), Some(11), Some(64)]])
        .unwrap();
    assert_eq!(s, vec![vec![None, Some(5), Some(5), Some(64)]]);
    let p = LayerHandle::new(MaxPooling2D::new((2, 2)).padding("same"));
    let s = p
        .compute_output_shape(&[vec![None, Some(5), None, Some(2)]])
        .unwrap();
    assert_eq!(s, vec![vec![None, Some(3), None, Some(2)]]);
    let y = LayerHandle::new(MaxPooling2D::new((2, 2)))
        .call(&ops::ones(&[3, 26, 26, 32], DType::F32), false)
        .unwrap();
    assert_eq!(y.shape(), &[3, 13, 13, 32]);
}

#[test]
fn max_pooling2d_errors() {
    let e = LayerHandle::new(MaxPooling2D::new(2))
        .call(&ops::ones(&[2, 4, 4], DType::F32), false)
        .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    assert!(e.to_string().contains("rank 4"), "{e}");
    assert!(e.to_string().contains("(None, 4, 4)"), "{e}");
    let e = LayerHandle::new(MaxPooling2D::new(2).padding("full"))
        .call(&ops::ones(&[1, 4, 4, 1], DType::F32), false)
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("\"full\"") && msg.contains("valid") && msg.contains("same"),
        "{msg}"
    );
    assert!(LayerHandle::new(MaxPooling2D::new(0))
        .call(&ops::ones(&[1, 4, 4, 1], DType::F32), false)
        .is_err());
}

#[test]
fn dropout_identity_at_inference() {
    let xs = data(64);
    let x = t(xs.clone(), &[8, 8]);
    let y = LayerHandle::new(Dropout::new(0.5)).call(&x, false).unwrap();
    close(&vals(&y), &xs);
}

#[test]
fn dropout_training_values() {
    for &rate in &[0.5, 0.2] {
        let x = ops::ones(&[100, 40], DType::F32);
        let y = vals(&LayerHandle::new(Dropout::new(rate)).call(&x, true).unwrap());
        let scale = 1.0 / (1.0 - rate);
        let mut kept = 0usize;
        for &v in &y {
            if v != 0.0 {
                assert!((v - scale).abs() < 1e-5, "{v} vs {scale}");
                kept += 1;
            }
        }
        let frac = kept as f64 / y.len() as f64;
        assert!((frac - (1.0 - rate)).abs() < 0.05, "kept {frac}");
    }
}

fn dropout_run(seed: u64) -> Vec<Vec<f64>> {
    set_random_seed(seed);
    let layer = LayerHandle::new(Dropout::new(0.5));
    let x = ops::ones(&[16, 16], DType::F32);
    (0..3)
        .map(|_| vals(&layer.call(&x, true).unwrap()))
        .collect()
}

#[test]
fn dropout_is_deterministic_and_changes_per_step() {
    let a = dropout_run(42);
    let b = dropout_run(42);
    assert_eq!(a, b);
    assert_ne!(a[0], a[1]);
    assert_ne!(a[1], a[2]);
    assert_ne!(dropout_run(43), a);
    // A fixed seed gives the same masks whatever the global seed, still different per step.
    let fixed = |g: u64| {
        set_random_seed(g);
        let layer = LayerHandle::new(Dropout::new(0.5).seed(7));
        let x = ops::ones(&[16, 16], DType::F32);
        (0..2)
            .map(|_| vals(&layer.call(&x, true).unwrap()))
            .collect::<Vec<_>>()
    };
    let f1 = fixed(1);
    assert_eq!(f1, fixed(2));
    assert_ne!(f1[0], f1[1]);
}

#[test]
fn dropout_noise_shape_shares_mask() {
    let x = ops::ones(&[4, 5, 6], DType::F32);
    let layer = LayerHandle::new(Dropout::new(0.5).noise_shape(&[None, Some(1), None]));
    let y = vals(&layer.call(&x, true).unwrap());
    for b in 0..4 {
        for c in 0..6 {
            let first = y[(b * 5) * 6 + c];
            for s in 1..5 {
                assert_eq!(y[(b * 5 + s) * 6 + c], first);
            }
        }
    }
    let e = LayerHandle::new(Dropout::new(0.5).noise_shape(&[None, Some(3), None]))
        .call(&x, true)
        .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
}

#[test]
fn dropout_bad_rate() {
    let x = ops::ones(&[2, 2], DType::F32);
    let e = LayerHandle::new(Dropout::new(1.5))
        .call(&x, true)
        .unwrap_err();
    assert!(e.to_string().contains("rate"), "{e}");
}

/// Naive 1-D pooling on `(n, len, c)`.
fn naive_pool1d(
    x: &[f64],
    [n, len, c]: [usize; 3],
    k: usize,
    s: usize,
    same: bool,
    max: bool,
) -> (Vec<f64>, [usize; 3]) {
    let (y, [n, _, ow, c]) = naive_pool2d(x, [n, 1, len, c], [1, k], [1, s], same, max);
    (y, [n, ow, c])
}

#[test]
fn average_pooling1d_keras_example() {
    // keras-reference §7: AveragePooling1D(2, padding="same") on [1..5] -> [1.5, 3.5, 5.0].
    let x = t(vec![1.0, 2.0, 3.0, 4.0, 5.0], &[1, 5, 1]);
    let y = LayerHandle::new(AveragePooling1D::new(2).padding("same"))
        .call(&x, false)
        .unwrap();
    assert_eq!(y.shape(), &[1, 3, 1]);
    close(&vals(&y), &[1.5, 3.5, 5.0]);
    let y = LayerHandle::new(AveragePooling1D::new(2))
        .call(&x, false)
        .unwrap();
    close(&vals(&y), &[1.5, 3.5]);
}

#[test]
fn pooling1d_matches_naive() {
    for &(len, k, s, same) in &[
        (5usize, 2usize, 2usize, true),
        (5, 2, 2, false),
        (7, 3, 2, true),
        (7, 3, 2, false),
        (6, 3, 1, true),
        (9, 4, 3, true),
    ] {
        let shape = [2, len, 3];
        let xs = data(shape.iter().product());
        let x = t(xs.clone(), &shape);
        let pad = if same { "same" } else { "valid" };
        for max in [true, false] {
            let y = if max {
                LayerHandle::new(MaxPooling1D::new(k).strides(s).padding(pad)).call(&x, false)
            } else {
                LayerHandle::new(AveragePooling1D::new(k).strides(s).padding(pad)).call(&x, false)
            }
            .unwrap();
            let (want, want_shape) = naive_pool1d(&xs, shape, k, s, same, max);
            assert_eq!(y.shape(), &want_shape, "{len} {k} {s} {same} {max}");
            close(&vals(&y), &want);
        }
    }
}

#[test]
fn average_pooling2d_matches_naive() {
    for &(h, w, k, s, same) in &[
        (5usize, 5usize, [2usize, 2usize], [2usize, 2usize], true),
        (5, 5, [2, 2], [2, 2], false),
        (7, 6, [3, 2], [2, 1], true),
        (4, 7, [2, 3], [1, 2], true),
        (4, 7, [2, 3], [1, 2], false),
    ] {
        let shape = [2, h, w, 2];
        let xs = data(shape.iter().product());
        let x = t(xs.clone(), &shape);
        let pool = AveragePooling2D::new((k[0], k[1]))
            .strides((s[0], s[1]))
            .padding(if same { "same" } else { "valid" });
        let y = LayerHandle::new(pool).call(&x, false).unwrap();
        let (want, want_shape) = naive_pool2d(&xs, shape, k, s, same, false);
        assert_eq!(y.shape(), &want_shape);
        close(&vals(&y), &want);
    }
}

#[test]
fn pooling_output_shapes_with_unknown_batch() {
    let p = LayerHandle::new(MaxPooling1D::new(2).padding("same"));
    assert_eq!(
        p.compute_output_shape(&[vec![None, Some(5), Some(4)]])
            .unwrap(),
        vec![vec![None, Some(3), Some(4)]]
    );
    let p = LayerHandle::new(AveragePooling2D::new(3).strides(2));
    assert_eq!(
        p.compute_output_shape(&[vec![None, Some(28), Some(7), Some(4)]])
            .unwrap(),
        vec![vec![None, Some(13), Some(3), Some(4)]]
    );
}

#[test]
fn pooling_errors() {
    let e = LayerHandle::new(AveragePooling1D::new(2))
        .call(&ops::ones(&[2, 4, 4, 1], DType::F32), false)
        .unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }) && e.to_string().contains("rank 3"),
        "{e}"
    );
    let e = LayerHandle::new(AveragePooling2D::new(2))
        .call(&ops::ones(&[2, 4], DType::F32), false)
        .unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }) && e.to_string().contains("rank 4"),
        "{e}"
    );
    let e = LayerHandle::new(MaxPooling1D::new(2).padding("causal"))
        .call(&ops::ones(&[2, 4, 1], DType::F32), false)
        .unwrap_err();
    assert!(e.to_string().contains("\"causal\""), "{e}");
    let e = LayerHandle::new(GlobalAveragePooling2D::new())
        .call(&ops::ones(&[2, 4, 1], DType::F32), false)
        .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = LayerHandle::new(GlobalMaxPooling1D::new())
        .compute_output_shape(&[vec![None, Some(3)]])
        .unwrap_err();
    assert!(e.to_string().contains("(None, 3)"), "{e}");
}

#[test]
fn global_pooling_values_and_shapes() {
    let shape = [2usize, 3usize, 4usize, 5usize];
    let xs = data(shape.iter().product());
    let x = t(xs.clone(), &shape);
    let (mut mx, mut av) = (vec![], vec![]);
    for b in 0..2 {
        for c in 0..5 {
            let mut m = f64::NEG_INFINITY;
            let mut s = 0.0;
            for i in 0..3 {
                for j in 0..4 {
                    let v = xs[((b * 3 + i) * 4 + j) * 5 + c];
                    m = m.max(v);
                    s += v;
                }
            }
            mx.push(m);
            av.push(s / 12.0);
        }
    }
    let y = LayerHandle::new(GlobalMaxPooling2D::new())
        .call(&x, false)
        .unwrap();
    assert_eq!(y.shape(), &[2, 5]);
    close(&vals(&y), &mx);
    let y = LayerHandle::new(GlobalAveragePooling2D::new().keepdims(true))
        .call(&x, false)
        .unwrap();
    assert_eq!(y.shape(), &[2, 1, 1, 5]);
    close(&vals(&y), &av);

    // 1-D: over the steps axis of (2, 6, 5), reading the same data.
    let x1 = t(xs[..60].to_vec(), &[2, 6, 5]);
    let (mut mx1, mut av1) = (vec![], vec![]);
    for b in 0..2 {
        for c in 0..5 {
            let col: Vec<f64> = (0..6).map(|s| xs[(b * 6 + s) * 5 + c]).collect();
            mx1.push(col.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
            av1.push(col.iter().sum::<f64>() / 6.0);
        }
    }
    let y = LayerHandle::new(GlobalMaxPooling1D::new().keepdims(true))
        .call(&x1, false)
        .unwrap();
    assert_eq!(y.shape(), &[2, 1, 5]);
    close(&vals(&y), &mx1);
    let y = LayerHandle::new(GlobalAveragePooling1D::new())
        .call(&x1, false)
        .unwrap();
    assert_eq!(y.shape(), &[2, 5]);
    close(&vals(&y), &av1);

    let g = LayerHandle::new(GlobalAveragePooling2D::new());
    assert_eq!(
        g.compute_output_shape(&[vec![None, None, None, Some(8)]])
            .unwrap(),
        vec![vec![None, Some(8)]]
    );
    let g = LayerHandle::new(GlobalMaxPooling1D::new().keepdims(true));
    assert_eq!(
        g.compute_output_shape(&[vec![None, None, Some(8)]])
            .unwrap(),
        vec![vec![None, Some(1), Some(8)]]
    );
}

#[test]
fn activation_layer() {
    let xs = data(12);
    let x = t(xs.clone(), &[3, 4]);
    let y = LayerHandle::new(Activation::new("relu"))
        .call(&x, false)
        .unwrap();
    close(
        &vals(&y),
        &xs.iter().map(|v| v.max(0.0)).collect::<Vec<_>>(),
    );
    let y = LayerHandle::new(Activation::new("tanh"))
        .call(&x, false)
        .unwrap();
    close(&vals(&y), &xs.iter().map(|v| v.tanh()).collect::<Vec<_>>());
    // By value (the function enum lives in `activations`).
    let y = LayerHandle::new(Activation::new(
        ferroflow_keras::activations::Activation::Sigmoid,
    ))
    .call(&x, false)
    .unwrap();
    close(
        &vals(&y),
        &xs.iter()
            .map(|v| 1.0 / (1.0 + (-v).exp()))
            .collect::<Vec<_>>(),
    );
    let e = LayerHandle::new(Activation::new("rleu"))
        .call(&x, false)
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("rleu") && msg.contains("relu"), "{msg}");
}

#[test]
fn reshape_with_inferred_dim() {
    let xs = data(2 * 12);
    let x = t(xs.clone(), &[2, 12]);
    let y = LayerHandle::new(Reshape::new(&[3, -1]))
        .call(&x, false)
        .unwrap();
    assert_eq!(y.shape(), &[2, 3, 4]);
    close(&vals(&y), &xs);
    let y = LayerHandle::new(Reshape::new(&[2, 3, 2]))
        .call(&x, false)
        .unwrap();
    assert_eq!(y.shape(), &[2, 2, 3, 2]);
    let r = LayerHandle::new(Reshape::new(&[-1, 4]));
    assert_eq!(
        r.compute_output_shape(&[vec![None, Some(6), Some(2)]])
            .unwrap(),
        vec![vec![None, Some(3), Some(4)]]
    );
    let r = LayerHandle::new(Reshape::new(&[-1, 4]));
    assert_eq!(
        r.compute_output_shape(&[vec![None, None, Some(2)]])
            .unwrap(),
        vec![vec![None, None, Some(4)]]
    );
}

#[test]
fn reshape_errors_name_both_shapes() {
    let x = ops::ones(&[2, 2, 3], DType::F32);
    let e = LayerHandle::new(Reshape::new(&[4, -1]))
        .call(&x, false)
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Shape { .. }), "{msg}");
    assert!(
        msg.contains("(None, 2, 3)") && msg.contains("(4, -1)"),
        "{msg}"
    );
    let e = LayerHandle::new(Reshape::new(&[5]))
        .call(&x, false)
        .unwrap_err();
    assert!(e.to_string().contains("(5,)"), "{e}");
    assert!(LayerHandle::new(Reshape::new(&[-1, -1]))
        .call(&x, false)
        .is_err());
}

#[test]
fn permute_is_one_based() {
    let shape = [2usize, 3usize, 4usize, 5usize];
    let xs = data(shape.iter().product());
    let x = t(xs.clone(), &shape);
    // Permute((3, 1, 2)): out[b, k, i, j] = x[b, i, j, k].
    let y = LayerHandle::new(Permute::new(&[3, 1, 2]))
        .call(&x, false)
        .unwrap();
    assert_eq!(y.shape(), &[2, 5, 3, 4]);
    let mut want = vec![];
    for b in 0..2 {
        for k in 0..5 {
            for i in 0..3 {
                for j in 0..4 {
                    want.push(xs[((b * 3 + i) * 4 + j) * 5 + k]);
                }
            }
        }
    }
    close(&vals(&y), &want);
    let p = LayerHandle::new(Permute::new(&[2, 1]));
    assert_eq!(
        p.compute_output_shape(&[vec![None, Some(10), Some(64)]])
            .unwrap(),
        vec![vec![None, Some(64), Some(10)]]
    );
    assert!(LayerHandle::new(Permute::new(&[0, 1]))
        .call(&ops::ones(&[1, 2, 2], DType::F32), false)
        .is_err());
    let e = LayerHandle::new(Permute::new(&[2, 1]))
        .call(&ops::ones(&[1, 2, 2, 2], DType::F32), false)
        .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
}

#[test]
fn repeat_vector() {
    let xs = data(6);
    let x = t(xs.clone(), &[2, 3]);
    let y = LayerHandle::new(RepeatVector::new(4))
        .call(&x, false)
        .unwrap();
    assert_eq!(y.shape(), &[2, 4, 3]);
    let mut want = vec![];
    for b in 0..2 {
        for _ in 0..4 {
            want.extend_from_slice(&xs[b * 3..b * 3 + 3]);
        }
    }
    close(&vals(&y), &want);
    assert_eq!(
        LayerHandle::new(RepeatVector::new(4))
            .compute_output_shape(&[vec![None, Some(3)]])
            .unwrap(),
        vec![vec![None, Some(4), Some(3)]]
    );
    assert!(LayerHandle::new(RepeatVector::new(2))
        .call(&ops::ones(&[1, 2, 2], DType::F32), false)
        .is_err());
}

#[test]
fn rescaling() {
    let xs = data(8);
    let x = t(xs.clone(), &[2, 4]);
    let y = LayerHandle::new(Rescaling::new(0.5).offset(-1.0))
        .call(&x, false)
        .unwrap();
    close(
        &vals(&y),
        &xs.iter().map(|v| v * 0.5 - 1.0).collect::<Vec<_>>(),
    );
    let pixels = Tensor::from_vec(vec![0u8, 51, 255], &[1, 3]).unwrap();
    let y = LayerHandle::new(Rescaling::new(1.0 / 255.0))
        .call(&pixels, false)
        .unwrap();
    assert_eq!(y.dtype(), DType::F32);
    close(&vals(&y), &[0.0, 0.2, 1.0]);
}

#[test]
fn lambda_layer() {
    let xs = data(6);
    let x = t(xs.clone(), &[2, 3]);
    let l = LayerHandle::new(Lambda::new(|x: &Tensor| {
        ops::add_scalar(&ops::mul(x, x)?, 1.0)
    }));
    let y = l.call(&x, false).unwrap();
    close(
        &vals(&y),
        &xs.iter().map(|v| v * v + 1.0).collect::<Vec<_>>(),
    );
    // Default output shape: by probing (unknown batch stays unknown).
    let sum = LayerHandle::new(Lambda::new(|x: &Tensor| ops::reduce_sum(x, -1, true)));
    assert_eq!(
        sum.compute_output_shape(&[vec![None, Some(3)]]).unwrap(),
        vec![vec![None, Some(1)]]
    );
    let y = sum.call(&x, false).unwrap();
    close(&vals(&y), &[xs[0] + xs[1] + xs[2], xs[3] + xs[4] + xs[5]]);
    // Declared shapes.
    let l = LayerHandle::new(Lambda::new(|x: &Tensor| Ok(x.clone())).output_shape(&[Some(7)]));
    assert_eq!(
        l.compute_output_shape(&[vec![None, Some(3)]]).unwrap(),
        vec![vec![None, Some(7)]]
    );
    let l = LayerHandle::new(
        Lambda::new(|x: &Tensor| Ok(x.clone())).output_shape_fn(|s| Ok(vec![s[0], None])),
    );
    assert_eq!(
        l.compute_output_shape(&[vec![None, Some(3)]]).unwrap(),
        vec![vec![None, None]]
    );
    // Errors from the function propagate.
    let bad = LayerHandle::new(Lambda::new(|x: &Tensor| ops::reshape(x, &[5])));
    assert!(bad.call(&x, false).is_err());
}

#[test]
fn layers_work_in_a_sequential_model() {
    use ferroflow_keras::Sequential;
    let mut model = Sequential::new();
    model
        .add(Rescaling::new(1.0 / 255.0).input_shape(&[6, 6, 1]))
        .unwrap();
    model.add(MaxPooling2D::new(2)).unwrap();
    model.add(Dropout::new(0.5)).unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(RepeatVector::new(2)).unwrap();
    model.add(Permute::new(&[2, 1])).unwrap();
    model.add(Reshape::new(&[-1])).unwrap();
    model.add(Activation::new("relu")).unwrap();
    let y = model
        .predict(ops::ones(&[3, 6, 6, 1], DType::F32))
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(y.shape(), &[3, 18]);
}

#[test]
fn functional_api_shapes_with_unknown_dims() {
    use ferroflow_keras::{Input, Model};
    let inputs = Input::with_shape(&[None, Some(4)], DType::F32, None);
    let x = MaxPooling1D::new(2).padding("same").apply(&inputs).unwrap();
    assert_eq!(x.shape(), &vec![None, None, Some(4)]);
    let x = GlobalAveragePooling1D::new().apply(&x).unwrap();
    assert_eq!(x.shape(), &vec![None, Some(4)]);
    let x = RepeatVector::new(3).apply(&x).unwrap();
    let x = Reshape::new(&[-1]).apply(&x).unwrap();
    assert_eq!(x.shape(), &vec![None, Some(12)]);
    let model = Model::new(&inputs, &x).unwrap();
    let y = model
        .predict_on_batch(ops::ones(&[2, 5, 4], DType::F32))
        .unwrap();
    assert_eq!(y[0].shape(), &[2, 12]);
}

fn train_with_dropout(seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
    use ferroflow_keras::Sequential;
    set_random_seed(seed);
    let n = 32;
    let xs: Vec<f64> = (0..n * 16).map(|i| ((i * 7) % 13) as f64 / 13.0).collect();
    let ys: Vec<f64> = (0..n)
        .map(|b| xs[b * 16..b * 16 + 16].iter().sum::<f64>() / 16.0)
        .collect();
    let x = t(xs, &[n, 4, 4, 1]);
    let y = t(ys, &[n, 1]);
    let mut model = Sequential::new();
    model
        .add(MaxPooling2D::new(2).padding("same").input_shape(&[4, 4, 1]))
        .unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dropout::new(0.25)).unwrap();
    model.add(Dense::new(1)).unwrap();
    model
        .compile(ferroflow_keras::optimizers::SGD::new(), "mse", ())
        .unwrap();
    let history = model
        .fit(&x, &y)
        .epochs(5)
        .batch_size(8)
        .shuffle(false)
        .verbose(0)
        .run()
        .unwrap();
    let losses = history.history["loss"].clone();
    (model.get_weights().iter().map(vals).collect(), losses)
}

#[test]
fn dropout_and_pooling_train_reproducibly() {
    let (w1, l1) = train_with_dropout(5);
    let (w2, l2) = train_with_dropout(5);
    assert_eq!(w1, w2);
    assert_eq!(l1, l2);
    assert!(l1.iter().all(|l| l.is_finite()));
    assert!(l1.last().unwrap() < l1.first().unwrap(), "{l1:?}");
}

#[test]
fn gradients_flow_through_layers() {
    use ferroflow_core::GradientTape;
    // d sum(MaxPooling2D(x)) / dx: 1 at each window's maximum, 0 elsewhere.
    let shape = [1usize, 3usize, 3usize, 1usize];
    let xs = vec![1.0, 5.0, 2.0, 4.0, 3.0, 9.0, 0.0, 8.0, 6.0];
    let x = t(xs, &shape);
    let tape = GradientTape::new();
    tape.watch(&x);
    let pool = LayerHandle::new(MaxPooling2D::new(2).padding("same"));
    let y = pool.call(&x, false).unwrap();
    let g = tape.gradient(&y, &[&x]).unwrap()[0].clone().unwrap();
    // windows {1,5,4,3} -> 5, {2,9} -> 9, {0,8} -> 8, {6} -> 6
    close(&vals(&g), &[0., 1., 0., 0., 0., 1., 0., 1., 1.]);

    // d sum(Dropout(x)) / dx in training is the mask itself (0 or 1/(1-rate)).
    let x = ops::ones(&[4, 8], DType::F32);
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = LayerHandle::new(Dropout::new(0.5)).call(&x, true).unwrap();
    let g = tape.gradient(&y, &[&x]).unwrap()[0].clone().unwrap();
    assert_eq!(vals(&g), vals(&y));

    // Flatten / Reshape / Permute / RepeatVector are linear maps that move values: their
    // gradient of sum(y * w) is w moved back.
    let x = t(data(6), &[1, 2, 3]);
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = LayerHandle::new(Permute::new(&[2, 1]))
        .call(&x, false)
        .unwrap();
    let y = LayerHandle::new(Flatten::new()).call(&y, false).unwrap();
    let w = t(vec![1., 2., 3., 4., 5., 6.], &[1, 6]);
    let g = tape.gradient(&ops::mul(&y, &w).unwrap(), &[&x]).unwrap()[0]
        .clone()
        .unwrap();
    // y = [x00, x10, x01, x11, x02, x12] so dx[i][j] = w[2j + i].
    close(&vals(&g), &[1., 3., 5., 2., 4., 6.]);
}

#[test]
fn valid_pooling_window_larger_than_input_is_an_error() {
    let e = LayerHandle::new(MaxPooling2D::new(3))
        .compute_output_shape(&[vec![None, Some(2), Some(2), Some(1)]])
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("(None, 2, 2, 1)") && msg.contains("pool_size"),
        "{msg}"
    );
    let e = LayerHandle::new(AveragePooling1D::new(4).named("avg"))
        .call(&ops::ones(&[1, 3, 1], DType::F32), false)
        .unwrap_err();
    assert!(e.to_string().contains("\"avg\""), "{e}");
    // "same" always fits.
    let y = LayerHandle::new(MaxPooling2D::new(3).padding("same"))
        .call(&ops::ones(&[1, 2, 2, 1], DType::F32), false)
        .unwrap();
    assert_eq!(y.shape(), &[1, 1, 1, 1]);
}

#[test]
fn keras_aliases_and_names() {
    ferroflow_keras::utils::clear_session();
    let p = LayerHandle::new(MaxPool2D::new(2));
    assert_eq!(p.class_name(), "MaxPooling2D");
    assert_eq!(p.name(), "max_pooling2d");
    let g = LayerHandle::new(GlobalAvgPool2D::new());
    assert_eq!(g.name(), "global_average_pooling2d");
    assert_eq!(
        LayerHandle::new(RepeatVector::new(2)).name(),
        "repeat_vector"
    );
    let cfg = MaxPooling2D::new(2).get_config();
    assert_eq!(cfg["pool_size"], serde_json::json!([2, 2]));
    assert_eq!(cfg["strides"], serde_json::json!([2, 2]));
    assert_eq!(cfg["padding"], "valid");
}

#[test]
fn layers_without_weights_are_reusable_on_other_shapes_as_in_keras() {
    use ferroflow_keras::layers::{Activation, Conv2D, Dense, Input, MaxPooling2D};
    use ferroflow_keras::models::Model;
    // One Activation and one MaxPooling2D shared after a 4-channel and a 6-channel conv.
    let x = Input::new(&[8, 8, 1]);
    let act = LayerHandle::new(Activation::new("relu"));
    let pool = LayerHandle::new(MaxPooling2D::new((2, 2)));
    let a = act
        .apply(Conv2D::new(4, (3, 3)).padding("same").apply(&x).unwrap())
        .unwrap();
    let a = pool.apply(&a).unwrap();
    let b = act
        .apply(Conv2D::new(6, (3, 3)).padding("same").apply(&a).unwrap())
        .unwrap();
    let b = pool.apply(&b).unwrap();
    let model = Model::new(&x, &b).unwrap();
    let y = model
        .call(&[ops::ones(&[2, 8, 8, 1], DType::F32)], false)
        .unwrap();
    assert_eq!(y[0].shape(), &[2, 2, 2, 6]);
    // A Dense built on 3 features accepts (batch, t, 3) but not 5 features, also symbolically.
    let d = LayerHandle::new(Dense::new(2));
    d.apply(Input::new(&[3])).unwrap();
    assert_eq!(
        d.call(&ops::ones(&[2, 5, 3], DType::F32), false)
            .unwrap()
            .shape(),
        &[2, 5, 2]
    );
    let e = d.apply(Input::new(&[5])).unwrap_err().to_string();
    assert!(e.contains("value 3") && e.contains("(None, 5)"), "{e}");
}

#[test]
fn max_pooling_defaults_to_keras_pool_size() {
    use ferroflow_keras::layers::{MaxPooling1D, MaxPooling2D};
    let p = LayerHandle::new(MaxPooling2D::default());
    assert_eq!(
        p.call(&ops::ones(&[1, 6, 6, 2], DType::F32), false)
            .unwrap()
            .shape(),
        &[1, 3, 3, 2]
    );
    let p = LayerHandle::new(MaxPooling1D::default());
    assert_eq!(
        p.call(&ops::ones(&[1, 6, 2], DType::F32), false)
            .unwrap()
            .shape(),
        &[1, 3, 2]
    );
}
