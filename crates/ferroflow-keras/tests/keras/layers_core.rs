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
#[allow(clippy::too_many_arguments)]
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
