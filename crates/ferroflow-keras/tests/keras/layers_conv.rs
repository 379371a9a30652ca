//! Convolution, padding, cropping and up-sampling layers: forward values against naive f64
//! reference loops written here, Keras's output sizes and parameter counts, gradients, errors.

use ferroflow_core::{DType, GradientTape, Tensor};
use ferroflow_keras::backend::Shape;
use ferroflow_keras::layers::{Conv2D, Input, Layer, LayerHandle};
use ferroflow_keras::models::Sequential;

// ---------------------------------------------------------------------------------------------
// helpers

/// Deterministic pseudo-random values in [-1, 1).
fn vals(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn t32(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<f32>>(), shape).unwrap()
}

fn to_f64(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "length: got {got:?}, want {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w}\n got {got:?}\nwant {want:?}"
        );
    }
}

/// Keras's "same" padding before an axis: total = max((out-1)s + d(k-1) + 1 - in, 0), half before.
fn same_pad_before(n: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let out = n.div_ceil(s);
    let total = ((out - 1) * s + d * (k - 1) + 1).saturating_sub(n);
    (out, total / 2)
}

/// Naive NHWC 2-D convolution in f64, kernel [kh, kw, cin, cout], with explicit top/left pads
/// and output size (zero outside the input).
#[allow(clippy::too_many_arguments)]
fn ref_conv2d(
    x: &[f64],
    [n, h, w, c]: [usize; 4],
    k: &[f64],
    [kh, kw, cout]: [usize; 3],
    [sh, sw]: [usize; 2],
    [dh, dw]: [usize; 2],
    [oh, ow]: [usize; 2],
    [pt, pl]: [usize; 2],
) -> Vec<f64> {
    let mut y = vec![0.0; n * oh * ow * cout];
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for o in 0..cout {
                    let mut acc = 0.0;
                    for a in 0..kh {
                        for e in 0..kw {
                            let r = (i * sh + a * dh) as isize - pt as isize;
                            let q = (j * sw + e * dw) as isize - pl as isize;
                            if r < 0 || q < 0 || r >= h as isize || q >= w as isize {
                                continue;
                            }
                            for ci in 0..c {
                                acc += x[((b * h + r as usize) * w + q as usize) * c + ci]
                                    * k[((a * kw + e) * c + ci) * cout + o];
                            }
                        }
                    }
                    y[((b * oh + i) * ow + j) * cout + o] = acc;
                }
            }
        }
    }
    y
}

fn shape_of(h: &LayerHandle, input: Shape) -> Shape {
    h.compute_output_shape(&[input]).unwrap().remove(0)
}

/// A gradient of sum(layer(x)) reaches every weight and is finite.
fn assert_gradients_flow(layer: &LayerHandle, x: &Tensor) {
    layer.call(x, false).unwrap(); // build
    let weights = layer.lock().weights();
    assert!(!weights.is_empty());
    let tape = GradientTape::new();
    let y = layer.call(x, true).unwrap();
    let loss = ferroflow_core::ops::reduce_sum(&y, ferroflow_core::ops::Axes::All, false).unwrap();
    let sources: Vec<&dyn ferroflow_core::Watchable> = weights
        .iter()
        .map(|w| w as &dyn ferroflow_core::Watchable)
        .collect();
    let grads = tape.gradient(&loss, &sources).unwrap();
    for (g, w) in grads.iter().zip(&weights) {
        let g = g
            .as_ref()
            .unwrap_or_else(|| panic!("no gradient for {}", w.name()));
        assert_eq!(g.shape(), w.shape().as_slice());
        assert!(to_f64(g).iter().all(|v| v.is_finite()));
    }
}

// ---------------------------------------------------------------------------------------------
// Conv2D

fn conv2d_case(
    (h, w, c): (usize, usize, usize),
    (kh, kw, cout): (usize, usize, usize),
    strides: [usize; 2],
    dil: [usize; 2],
    same: bool,
) {
    let n = 2;
    let x = vals(n * h * w * c, 1);
    let k = vals(kh * kw * c * cout, 2);
    let b = vals(cout, 3);
    let layer = LayerHandle::new(
        Conv2D::new(cout, (kh, kw))
            .strides(strides)
            .dilation_rate(dil)
            .padding(if same { "same" } else { "valid" }),
    );
    layer
        .build(&[vec![None, Some(h), Some(w), Some(c)]])
        .unwrap();
    layer
        .lock()
        .set_weights(&[t32(&k, &[kh, kw, c, cout]), t32(&b, &[cout])])
        .unwrap();
    let y = layer.call(&t32(&x, &[n, h, w, c]), false).unwrap();
    let ((oh, pt), (ow, pl)) = if same {
        (
            same_pad_before(h, kh, strides[0], dil[0]),
            same_pad_before(w, kw, strides[1], dil[1]),
        )
    } else {
        (
            ((h - dil[0] * (kh - 1) - 1) / strides[0] + 1, 0),
            ((w - dil[1] * (kw - 1) - 1) / strides[1] + 1, 0),
        )
    };
    let mut want = ref_conv2d(
        &x,
        [n, h, w, c],
        &k,
        [kh, kw, cout],
        strides,
        dil,
        [oh, ow],
        [pt, pl],
    );
    for (i, v) in want.iter_mut().enumerate() {
        *v += b[i % cout];
    }
    assert_eq!(y.shape(), &[n, oh, ow, cout]);
    assert_close(&to_f64(&y), &want, 1e-5);
}

#[test]
fn conv2d_valid_matches_reference() {
    conv2d_case((6, 5, 3), (3, 2, 4), [1, 1], [1, 1], false);
    conv2d_case((7, 8, 2), (3, 3, 3), [2, 3], [1, 1], false);
    conv2d_case((9, 9, 2), (3, 2, 2), [1, 1], [2, 3], false);
}

#[test]
fn conv2d_same_matches_reference() {
    // stride 2 on odd sizes: the odd padding element goes bottom/right
    conv2d_case((7, 5, 2), (3, 3, 3), [2, 2], [1, 1], true);
    conv2d_case((6, 7, 1), (4, 2, 2), [2, 1], [1, 1], true);
    conv2d_case((5, 6, 2), (3, 3, 2), [1, 1], [2, 2], true);
}

#[test]
fn conv2d_activation_and_no_bias() {
    let layer = LayerHandle::new(Conv2D::new(1, 1).use_bias(false).activation("relu"));
    layer
        .build(&[vec![None, Some(2), Some(2), Some(1)]])
        .unwrap();
    assert_eq!(layer.lock().count_params(), 1);
    layer
        .lock()
        .set_weights(&[t32(&[-2.0], &[1, 1, 1, 1])])
        .unwrap();
    let y = layer
        .call(&t32(&[1.0, -1.0, 2.0, -3.0], &[1, 2, 2, 1]), false)
        .unwrap();
    assert_close(&to_f64(&y), &[0.0, 2.0, 0.0, 6.0], 0.0);
}

#[test]
fn conv2d_params_and_shapes() {
    let layer = LayerHandle::new(Conv2D::new(32, (3, 3)));
    assert_eq!(
        shape_of(&layer, vec![None, Some(28), Some(28), Some(1)]),
        vec![None, Some(26), Some(26), Some(32)]
    );
    assert_eq!(layer.lock().count_params(), 320);
    let w = layer.lock().weights();
    assert_eq!(w[0].shape(), vec![3, 3, 1, 32]);
    assert_eq!(w[0].name(), format!("{}/kernel", layer.name()));
    assert_eq!(w[1].shape(), vec![32]);
    // unknown spatial dims stay unknown
    let same = LayerHandle::new(Conv2D::new(8, 3).strides(2).padding("same"));
    assert_eq!(
        shape_of(&same, vec![None, None, Some(7), Some(3)]),
        vec![None, None, Some(4), Some(8)]
    );
    // Keras: 28,k3,s2 -> valid 13, same 14
    let v2 = LayerHandle::new(Conv2D::new(4, 3).strides(2));
    assert_eq!(
        shape_of(&v2, vec![None, Some(28), Some(28), Some(1)]),
        vec![None, Some(13), Some(13), Some(4)]
    );
    let s2 = LayerHandle::new(Conv2D::new(4, 3).strides(2).padding("same"));
    assert_eq!(
        shape_of(&s2, vec![None, Some(28), Some(28), Some(1)]),
        vec![None, Some(14), Some(14), Some(4)]
    );
    // bias default zeros, kernel glorot-uniform bounded by sqrt(6 / (fan_in + fan_out))
    let w = layer.lock().get_weights();
    assert!(to_f64(&w[1]).iter().all(|&v| v == 0.0));
    let limit = (6.0f64 / (9.0 + 9.0 * 32.0)).sqrt();
    assert!(to_f64(&w[0]).iter().all(|v| v.abs() <= limit));
}

#[test]
fn conv2d_in_sequential_seed_cnn() {
    let mut model = Sequential::new();
    model.add(Input::new(&[28, 28, 1])).unwrap();
    model
        .add(Conv2D::new(32, (3, 3)).activation("relu"))
        .unwrap();
    model
        .add(Conv2D::new(64, 3).strides(2).padding("same"))
        .unwrap();
    assert_eq!(model.count_params(), 320 + 3 * 3 * 32 * 64 + 64);
    let summary = model.summary_string(Some(100));
    assert!(summary.contains("(None, 26, 26, 32)"), "{summary}");
    assert!(summary.contains("(None, 13, 13, 64)"), "{summary}");
    let y = model
        .predict_on_batch(ferroflow_core::ops::ones(&[2, 28, 28, 1], DType::F32))
        .unwrap();
    assert_eq!(y[0].shape(), &[2, 13, 13, 64]);
}

#[test]
fn conv2d_gradients_flow() {
    let layer = LayerHandle::new(Conv2D::new(3, 3).padding("same").activation("tanh"));
    assert_gradients_flow(&layer, &t32(&vals(2 * 5 * 5 * 2, 4), &[2, 5, 5, 2]));
}

#[test]
fn conv2d_errors() {
    // wrong input rank
    let layer = LayerHandle::new(Conv2D::new(2, 3).named("c2"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[2, 5, 5], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("c2") && err.contains("rank 4"), "{err}");
    assert!(err.contains("(None, 5, 5)"), "{err}");
    // bad padding name lists the valid ones
    let layer = LayerHandle::new(Conv2D::new(2, 3).padding("full"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[1, 5, 5, 1], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("full") && err.contains("valid, same"), "{err}");
    assert!(!err.contains("causal"), "{err}");
    // causal is 1-D only
    let layer = LayerHandle::new(Conv2D::new(2, 3).padding("causal"));
    assert!(layer
        .call(&ferroflow_core::ops::ones(&[1, 5, 5, 1], DType::F32), false)
        .is_err());
    // valid window larger than the input
    let layer = LayerHandle::new(Conv2D::new(2, 5));
    assert!(layer
        .compute_output_shape(&[vec![None, Some(3), Some(3), Some(1)]])
        .is_err());
    // strides > 1 with dilation > 1 (Keras refuses it)
    let layer = LayerHandle::new(Conv2D::new(2, 3).strides(2).dilation_rate(2));
    assert!(layer
        .call(&ferroflow_core::ops::ones(&[1, 9, 9, 1], DType::F32), false)
        .is_err());
    // a built layer refuses another channel count
    let layer = LayerHandle::new(Conv2D::new(2, 3));
    layer
        .call(&ferroflow_core::ops::ones(&[1, 5, 5, 1], DType::F32), false)
        .unwrap();
    assert!(layer
        .call(&ferroflow_core::ops::ones(&[1, 5, 5, 2], DType::F32), false)
        .is_err());
}
