//! Convolution, padding, cropping and up-sampling layers: forward values against naive f64
//! reference loops written here, Keras's output sizes and parameter counts, gradients, errors.

use ferroflow_core::{DType, GradientTape, Tensor};
use ferroflow_keras::backend::Shape;
use ferroflow_keras::layers::{
    Conv1D, Conv2D, Conv2DTranspose, Cropping2D, DepthwiseConv2D, Input, Layer, LayerHandle,
    SeparableConv2D, UpSampling2D, ZeroPadding2D,
};
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

// ---------------------------------------------------------------------------------------------
// Conv1D

/// Naive 1-D convolution, kernel [k, cin, cout], `pl` zeros before the input, `out` outputs.
#[allow(clippy::too_many_arguments)]
fn ref_conv1d(
    x: &[f64],
    [n, l, c]: [usize; 3],
    k: &[f64],
    [kk, cout]: [usize; 2],
    s: usize,
    d: usize,
    out: usize,
    pl: usize,
) -> Vec<f64> {
    let mut y = vec![0.0; n * out * cout];
    for b in 0..n {
        for t in 0..out {
            for o in 0..cout {
                let mut acc = 0.0;
                for a in 0..kk {
                    let p = (t * s + a * d) as isize - pl as isize;
                    if p < 0 || p >= l as isize {
                        continue;
                    }
                    for ci in 0..c {
                        acc += x[(b * l + p as usize) * c + ci] * k[(a * c + ci) * cout + o];
                    }
                }
                y[(b * out + t) * cout + o] = acc;
            }
        }
    }
    y
}

fn conv1d_layer(filters: usize, k: usize, s: usize, d: usize, pad: &str) -> LayerHandle {
    LayerHandle::new(
        Conv1D::new(filters, k)
            .strides(s)
            .dilation_rate(d)
            .padding(pad),
    )
}

fn conv1d_case(l: usize, c: usize, (kk, cout): (usize, usize), s: usize, d: usize, pad: &str) {
    let n = 2;
    let x = vals(n * l * c, 11);
    let k = vals(kk * c * cout, 12);
    let b = vals(cout, 13);
    let layer = conv1d_layer(cout, kk, s, d, pad);
    layer.build(&[vec![None, Some(l), Some(c)]]).unwrap();
    layer
        .lock()
        .set_weights(&[t32(&k, &[kk, c, cout]), t32(&b, &[cout])])
        .unwrap();
    let y = layer.call(&t32(&x, &[n, l, c]), false).unwrap();
    let (out, pl) = match pad {
        "valid" => ((l - d * (kk - 1) - 1) / s + 1, 0),
        "same" => same_pad_before(l, kk, s, d),
        _ => (l.div_ceil(s), d * (kk - 1)), // causal
    };
    let mut want = ref_conv1d(&x, [n, l, c], &k, [kk, cout], s, d, out, pl);
    for (i, v) in want.iter_mut().enumerate() {
        *v += b[i % cout];
    }
    assert_eq!(y.shape(), &[n, out, cout]);
    assert_close(&to_f64(&y), &want, 1e-5);
    assert_eq!(
        shape_of(&layer, vec![None, Some(l), Some(c)]),
        vec![None, Some(out), Some(cout)]
    );
}

#[test]
fn conv1d_matches_reference() {
    conv1d_case(9, 2, (3, 4), 1, 1, "valid");
    conv1d_case(10, 3, (4, 2), 3, 1, "valid");
    conv1d_case(7, 2, (3, 3), 2, 1, "same");
    conv1d_case(9, 1, (3, 2), 1, 2, "same");
    conv1d_case(8, 2, (3, 3), 1, 1, "causal");
    conv1d_case(9, 2, (2, 2), 1, 3, "causal");
    conv1d_case(7, 2, (3, 2), 2, 1, "causal");
}

/// A 1-channel, 1-filter Conv1D with a ones kernel and no bias, on `[1, 2, ..., n]`.
fn conv1d_ones(n: usize, k: usize, s: usize, d: usize, pad: &str) -> Vec<f64> {
    let layer = LayerHandle::new(
        Conv1D::new(1, k)
            .strides(s)
            .dilation_rate(d)
            .padding(pad)
            .use_bias(false)
            .kernel_initializer("ones"),
    );
    let x: Vec<f64> = (1..=n).map(|v| v as f64).collect();
    to_f64(&layer.call(&t32(&x, &[1, n, 1]), false).unwrap())
}

#[test]
fn conv1d_keras_reference_values() {
    // verified on Keras 3 (keras-reference.md §7)
    assert_close(&conv1d_ones(6, 3, 2, 1, "same"), &[6.0, 12.0, 11.0], 0.0);
    assert_close(
        &conv1d_ones(5, 4, 1, 1, "same"),
        &[6.0, 10.0, 14.0, 12.0, 9.0],
        0.0,
    );
    // causal: output t sums inputs t-2..=t (zeros before the start)
    assert_close(
        &conv1d_ones(5, 3, 1, 1, "causal"),
        &[1.0, 3.0, 6.0, 9.0, 12.0],
        0.0,
    );
    // causal dilated: inputs t, t-2
    assert_close(
        &conv1d_ones(5, 2, 1, 2, "causal"),
        &[1.0, 2.0, 4.0, 6.0, 8.0],
        0.0,
    );
    // causal stride 2: ceil(5/2) = 3 outputs at t = 0, 2, 4
    assert_close(&conv1d_ones(5, 3, 2, 1, "causal"), &[1.0, 6.0, 12.0], 0.0);
}

#[test]
fn conv1d_params_shapes_gradients_errors() {
    let layer = LayerHandle::new(Conv1D::new(16, 5));
    assert_eq!(
        shape_of(&layer, vec![None, None, Some(8)]),
        vec![None, None, Some(16)]
    );
    assert_eq!(layer.lock().count_params(), 5 * 8 * 16 + 16);
    assert_eq!(layer.lock().weights()[0].shape(), vec![5, 8, 16]);
    assert_eq!(
        shape_of(&layer, vec![None, Some(20), Some(8)]),
        vec![None, Some(16), Some(16)]
    );

    let layer = LayerHandle::new(Conv1D::new(2, 3).padding("causal").activation("sigmoid"));
    assert_gradients_flow(&layer, &t32(&vals(2 * 6 * 3, 14), &[2, 6, 3]));

    let layer = LayerHandle::new(Conv1D::new(2, 3).named("c1"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[1, 5, 5, 1], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("c1") && err.contains("rank 3"), "{err}");
    let layer = LayerHandle::new(Conv1D::new(2, 3).padding("full"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[1, 5, 1], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("valid, same, causal"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// DepthwiseConv2D and SeparableConv2D

/// Naive depthwise convolution, kernel [kh, kw, c, m], output channel `ci·m + j`.
#[allow(clippy::too_many_arguments)]
fn ref_depthwise(
    x: &[f64],
    [n, h, w, c]: [usize; 4],
    k: &[f64],
    [kh, kw, m]: [usize; 3],
    [sh, sw]: [usize; 2],
    [dh, dw]: [usize; 2],
    [oh, ow]: [usize; 2],
    [pt, pl]: [usize; 2],
) -> Vec<f64> {
    let cout = c * m;
    let mut y = vec![0.0; n * oh * ow * cout];
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for ci in 0..c {
                    for q in 0..m {
                        let mut acc = 0.0;
                        for a in 0..kh {
                            for e in 0..kw {
                                let r = (i * sh + a * dh) as isize - pt as isize;
                                let s = (j * sw + e * dw) as isize - pl as isize;
                                if r < 0 || s < 0 || r >= h as isize || s >= w as isize {
                                    continue;
                                }
                                acc += x[((b * h + r as usize) * w + s as usize) * c + ci]
                                    * k[((a * kw + e) * c + ci) * m + q];
                            }
                        }
                        y[((b * oh + i) * ow + j) * cout + ci * m + q] = acc;
                    }
                }
            }
        }
    }
    y
}

fn out_and_pad(n: usize, k: usize, s: usize, d: usize, same: bool) -> (usize, usize) {
    if same {
        same_pad_before(n, k, s, d)
    } else {
        ((n - d * (k - 1) - 1) / s + 1, 0)
    }
}

fn depthwise_case(
    (h, w, c): (usize, usize, usize),
    (kh, kw, m): (usize, usize, usize),
    strides: [usize; 2],
    dil: [usize; 2],
    same: bool,
) {
    let n = 2;
    let x = vals(n * h * w * c, 21);
    let k = vals(kh * kw * c * m, 22);
    let b = vals(c * m, 23);
    let layer = LayerHandle::new(
        DepthwiseConv2D::new((kh, kw))
            .depth_multiplier(m)
            .strides(strides)
            .dilation_rate(dil)
            .padding(if same { "same" } else { "valid" }),
    );
    layer
        .build(&[vec![None, Some(h), Some(w), Some(c)]])
        .unwrap();
    layer
        .lock()
        .set_weights(&[t32(&k, &[kh, kw, c, m]), t32(&b, &[c * m])])
        .unwrap();
    let y = layer.call(&t32(&x, &[n, h, w, c]), false).unwrap();
    let (oh, pt) = out_and_pad(h, kh, strides[0], dil[0], same);
    let (ow, pl) = out_and_pad(w, kw, strides[1], dil[1], same);
    let mut want = ref_depthwise(
        &x,
        [n, h, w, c],
        &k,
        [kh, kw, m],
        strides,
        dil,
        [oh, ow],
        [pt, pl],
    );
    for (i, v) in want.iter_mut().enumerate() {
        *v += b[i % (c * m)];
    }
    assert_eq!(y.shape(), &[n, oh, ow, c * m]);
    assert_close(&to_f64(&y), &want, 1e-5);
    assert_eq!(
        shape_of(&layer, vec![None, Some(h), Some(w), Some(c)]),
        vec![None, Some(oh), Some(ow), Some(c * m)]
    );
}

#[test]
fn depthwise_conv2d_matches_reference() {
    depthwise_case((6, 5, 3), (3, 2, 1), [1, 1], [1, 1], false);
    depthwise_case((7, 7, 2), (3, 3, 3), [2, 2], [1, 1], true);
    depthwise_case((8, 6, 2), (2, 3, 2), [1, 1], [2, 1], true);
    depthwise_case((9, 8, 3), (3, 3, 2), [2, 3], [1, 1], false);
}

#[test]
fn depthwise_conv2d_params_gradients_errors() {
    let layer = LayerHandle::new(DepthwiseConv2D::new(3).depth_multiplier(2));
    assert_eq!(
        shape_of(&layer, vec![None, Some(10), None, Some(4)]),
        vec![None, Some(8), None, Some(8)]
    );
    // Keras: 3*3*4*2 + 4*2
    assert_eq!(layer.lock().count_params(), 80);
    let w = layer.lock().weights();
    assert_eq!(w[0].shape(), vec![3, 3, 4, 2]);
    assert_eq!(w[0].name(), format!("{}/kernel", layer.name()));
    assert_eq!(w[1].shape(), vec![8]);

    let layer = LayerHandle::new(
        DepthwiseConv2D::new(2)
            .padding("same")
            .depthwise_initializer("ones"),
    );
    assert_gradients_flow(&layer, &t32(&vals(5 * 5 * 2, 24), &[1, 5, 5, 2]));

    let layer = LayerHandle::new(DepthwiseConv2D::new(3).named("dw"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[5, 5, 1], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dw") && err.contains("rank 4"), "{err}");
    let layer = LayerHandle::new(DepthwiseConv2D::new(3).padding("causal"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[1, 5, 5, 1], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("valid, same"), "{err}");
}

fn separable_case(
    (h, w, c): (usize, usize, usize),
    (kh, kw, m, f): (usize, usize, usize, usize),
    strides: [usize; 2],
    same: bool,
) {
    let n = 2;
    let x = vals(n * h * w * c, 31);
    let dk = vals(kh * kw * c * m, 32);
    let pk = vals(c * m * f, 33);
    let b = vals(f, 34);
    let layer = LayerHandle::new(
        SeparableConv2D::new(f, (kh, kw))
            .depth_multiplier(m)
            .strides(strides)
            .padding(if same { "same" } else { "valid" }),
    );
    layer
        .build(&[vec![None, Some(h), Some(w), Some(c)]])
        .unwrap();
    layer
        .lock()
        .set_weights(&[
            t32(&dk, &[kh, kw, c, m]),
            t32(&pk, &[1, 1, c * m, f]),
            t32(&b, &[f]),
        ])
        .unwrap();
    let y = layer.call(&t32(&x, &[n, h, w, c]), false).unwrap();
    let (oh, pt) = out_and_pad(h, kh, strides[0], 1, same);
    let (ow, pl) = out_and_pad(w, kw, strides[1], 1, same);
    let mid = ref_depthwise(
        &x,
        [n, h, w, c],
        &dk,
        [kh, kw, m],
        strides,
        [1, 1],
        [oh, ow],
        [pt, pl],
    );
    let cm = c * m;
    let mut want = vec![0.0; n * oh * ow * f];
    for p in 0..n * oh * ow {
        for o in 0..f {
            let mut acc = b[o];
            for q in 0..cm {
                acc += mid[p * cm + q] * pk[q * f + o];
            }
            want[p * f + o] = acc;
        }
    }
    assert_eq!(y.shape(), &[n, oh, ow, f]);
    assert_close(&to_f64(&y), &want, 1e-5);
}

#[test]
fn separable_conv2d_matches_reference() {
    separable_case((6, 5, 3), (3, 3, 1, 4), [1, 1], false);
    separable_case((7, 7, 2), (3, 2, 2, 3), [2, 2], true);
}

#[test]
fn separable_conv2d_params_gradients() {
    let layer = LayerHandle::new(SeparableConv2D::new(16, 3).depth_multiplier(2));
    assert_eq!(
        shape_of(&layer, vec![None, Some(9), Some(9), Some(4)]),
        vec![None, Some(7), Some(7), Some(16)]
    );
    // Keras: 3*3*4*2 + 1*1*8*16 + 16
    assert_eq!(layer.lock().count_params(), 72 + 128 + 16);
    let names: Vec<String> = layer
        .lock()
        .weights()
        .iter()
        .map(|w| w.name().to_string())
        .collect();
    let base = layer.name();
    assert_eq!(
        names,
        vec![
            format!("{base}/depthwise_kernel"),
            format!("{base}/pointwise_kernel"),
            format!("{base}/bias")
        ]
    );
    let layer = LayerHandle::new(
        SeparableConv2D::new(3, 2)
            .padding("same")
            .activation("relu"),
    );
    assert_gradients_flow(&layer, &t32(&vals(2 * 4 * 4 * 2, 35), &[2, 4, 4, 2]));
    let layer = LayerHandle::new(SeparableConv2D::new(3, 2));
    assert!(layer
        .call(&ferroflow_core::ops::ones(&[4, 4, 2], DType::F32), false)
        .is_err());
}

// ---------------------------------------------------------------------------------------------
// Conv2DTranspose

/// Naive transposed convolution: each input pixel scatters `x · k[a, e, o, ci]` to output
/// `(i·s + a·d - pad_top, j·s + e·d - pad_left)`; kernel [kh, kw, cout, cin].
#[allow(clippy::too_many_arguments)]
fn ref_conv_transpose(
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
        for i in 0..h {
            for j in 0..w {
                for ci in 0..c {
                    let v = x[((b * h + i) * w + j) * c + ci];
                    for a in 0..kh {
                        for e in 0..kw {
                            let r = (i * sh + a * dh) as isize - pt as isize;
                            let q = (j * sw + e * dw) as isize - pl as isize;
                            if r < 0 || q < 0 || r >= oh as isize || q >= ow as isize {
                                continue;
                            }
                            for o in 0..cout {
                                y[((b * oh + r as usize) * ow + q as usize) * cout + o] +=
                                    v * k[((a * kw + e) * cout + o) * c + ci];
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

fn transpose_case(
    (h, w, c): (usize, usize, usize),
    (kh, kw, f): (usize, usize, usize),
    strides: [usize; 2],
    dil: [usize; 2],
    same: bool,
) {
    transpose_case_op((h, w, c), (kh, kw, f), strides, dil, same, None);
}

fn transpose_case_op(
    (h, w, c): (usize, usize, usize),
    (kh, kw, f): (usize, usize, usize),
    strides: [usize; 2],
    dil: [usize; 2],
    same: bool,
    output_padding: Option<[usize; 2]>,
) {
    let n = 2;
    let x = vals(n * h * w * c, 41);
    let k = vals(kh * kw * f * c, 42);
    let b = vals(f, 43);
    let mut conv = Conv2DTranspose::new(f, (kh, kw))
        .strides(strides)
        .dilation_rate(dil)
        .padding(if same { "same" } else { "valid" });
    if let Some(op) = output_padding {
        conv = conv.output_padding(op);
    }
    let layer = LayerHandle::new(conv);
    layer
        .build(&[vec![None, Some(h), Some(w), Some(c)]])
        .unwrap();
    layer
        .lock()
        .set_weights(&[t32(&k, &[kh, kw, f, c]), t32(&b, &[f])])
        .unwrap();
    let y = layer.call(&t32(&x, &[n, h, w, c]), false).unwrap();
    // Keras's sizes (deconv_output_length); "same" crops the full (in-1)s + k_eff result to
    // that size with the smaller half of the crop on top/left, as TensorFlow
    let size = |len: usize, k: usize, s: usize, d: usize, op: Option<usize>| {
        let eff = d * (k - 1) + 1;
        let out = match (op, same) {
            (None, true) => len * s,
            (None, false) => len * s + eff.saturating_sub(s),
            (Some(op), true) => (len - 1) * s + eff + op - 2 * (eff / 2),
            (Some(op), false) => (len - 1) * s + eff + op,
        };
        let crop = if same {
            ((len - 1) * s + eff).saturating_sub(out) / 2
        } else {
            0
        };
        (out, crop)
    };
    let (oh, pt) = size(h, kh, strides[0], dil[0], output_padding.map(|p| p[0]));
    let (ow, pl) = size(w, kw, strides[1], dil[1], output_padding.map(|p| p[1]));
    let mut want = ref_conv_transpose(
        &x,
        [n, h, w, c],
        &k,
        [kh, kw, f],
        strides,
        dil,
        [oh, ow],
        [pt, pl],
    );
    for (i, v) in want.iter_mut().enumerate() {
        *v += b[i % f];
    }
    assert_eq!(y.shape(), &[n, oh, ow, f]);
    assert_close(&to_f64(&y), &want, 1e-5);
    assert_eq!(
        shape_of(&layer, vec![None, Some(h), Some(w), Some(c)]),
        vec![None, Some(oh), Some(ow), Some(f)]
    );
}

#[test]
fn conv2d_transpose_matches_reference() {
    transpose_case((3, 4, 2), (3, 3, 2), [1, 1], [1, 1], false);
    transpose_case((3, 3, 2), (3, 3, 3), [2, 2], [1, 1], false);
    transpose_case((3, 4, 1), (3, 2, 2), [2, 3], [1, 1], true);
    transpose_case((4, 3, 2), (4, 4, 1), [2, 2], [1, 1], true);
    // kernel smaller than the stride: zero rows/cols between the patches
    transpose_case((3, 3, 1), (2, 2, 2), [3, 3], [1, 1], false);
    transpose_case((3, 3, 2), (2, 3, 2), [1, 1], [2, 2], false);
    // output_padding: extra rows/columns at the bottom/right
    transpose_case_op((3, 4, 2), (3, 3, 2), [2, 2], [1, 1], false, Some([1, 0]));
    transpose_case_op((3, 4, 2), (3, 3, 2), [2, 3], [1, 1], true, Some([1, 2]));
    transpose_case_op((4, 3, 1), (5, 3, 2), [3, 2], [1, 1], true, Some([0, 1]));
}

#[test]
fn conv2d_transpose_output_padding_sizes() {
    // Keras: (in-1)s + k - 2·pad + output_padding; 7, k3, s2: valid op1 -> 16, same op1 -> 14
    let valid = LayerHandle::new(Conv2DTranspose::new(1, 3).strides(2).output_padding(1));
    assert_eq!(
        shape_of(&valid, vec![None, Some(7), Some(7), Some(1)]),
        vec![None, Some(16), Some(16), Some(1)]
    );
    let same = LayerHandle::new(
        Conv2DTranspose::new(1, 3)
            .strides(2)
            .padding("same")
            .output_padding((1, 0)),
    );
    assert_eq!(
        shape_of(&same, vec![None, Some(7), Some(7), Some(1)]),
        vec![None, Some(14), Some(13), Some(1)]
    );
    // output_padding must be smaller than the stride
    let bad = LayerHandle::new(Conv2DTranspose::new(1, 3).strides(2).output_padding(2));
    let err = bad
        .call(&ferroflow_core::ops::ones(&[1, 3, 3, 1], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("output padding"), "{err}");
}

#[test]
fn conv2d_transpose_keras_sizes_params_gradients() {
    // Keras: 7, k3, s2 -> valid 15, same 14
    let valid = LayerHandle::new(Conv2DTranspose::new(4, 3).strides(2));
    assert_eq!(
        shape_of(&valid, vec![None, Some(7), Some(7), Some(2)]),
        vec![None, Some(15), Some(15), Some(4)]
    );
    let same = LayerHandle::new(Conv2DTranspose::new(4, 3).strides(2).padding("same"));
    assert_eq!(
        shape_of(&same, vec![None, Some(7), None, Some(2)]),
        vec![None, Some(14), None, Some(4)]
    );
    let y = same
        .call(&ferroflow_core::ops::ones(&[1, 7, 7, 2], DType::F32), false)
        .unwrap();
    assert_eq!(y.shape(), &[1, 14, 14, 4]);
    // kernel [kh, kw, out, in]
    assert_eq!(valid.lock().weights()[0].shape(), vec![3, 3, 4, 2]);
    assert_eq!(valid.lock().count_params(), 3 * 3 * 4 * 2 + 4);

    let layer = LayerHandle::new(Conv2DTranspose::new(2, 3).strides(2).padding("same"));
    assert_gradients_flow(&layer, &t32(&vals(2 * 3 * 3 * 2, 44), &[2, 3, 3, 2]));

    let layer = LayerHandle::new(Conv2DTranspose::new(2, 3).named("ct"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[3, 3, 2], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ct") && err.contains("rank 4"), "{err}");
    let layer = LayerHandle::new(Conv2DTranspose::new(2, 3).padding("full"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[1, 3, 3, 2], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("full") && err.contains("valid, same"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// ZeroPadding2D, Cropping2D, UpSampling2D

/// Value at (b, i, j, ch) of an NHWC buffer.
fn at(x: &[f64], [_, h, w, c]: [usize; 4], b: usize, i: usize, j: usize, ch: usize) -> f64 {
    x[((b * h + i) * w + j) * c + ch]
}

fn zero_padding_case(pads: ZeroPadding2D, [t, bo, l, r]: [usize; 4]) {
    let (n, h, w, c) = (2, 3, 4, 2);
    let x = vals(n * h * w * c, 51);
    let layer = LayerHandle::new(pads);
    let y = layer.call(&t32(&x, &[n, h, w, c]), false).unwrap();
    let (oh, ow) = (h + t + bo, w + l + r);
    assert_eq!(y.shape(), &[n, oh, ow, c]);
    let mut want = Vec::new();
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for ch in 0..c {
                    let inside = i >= t && i < t + h && j >= l && j < l + w;
                    want.push(if inside {
                        at(&x, [n, h, w, c], b, i - t, j - l, ch)
                    } else {
                        0.0
                    });
                }
            }
        }
    }
    assert_close(&to_f64(&y), &want, 1e-6);
    assert_eq!(
        shape_of(&layer, vec![None, Some(h), None, Some(c)]),
        vec![None, Some(oh), None, Some(c)]
    );
}

#[test]
fn zero_padding2d_forms() {
    zero_padding_case(ZeroPadding2D::default(), [1, 1, 1, 1]);
    zero_padding_case(ZeroPadding2D::new(2), [2, 2, 2, 2]);
    zero_padding_case(ZeroPadding2D::new((1, 3)), [1, 1, 3, 3]);
    zero_padding_case(ZeroPadding2D::new(((0, 2), (3, 1))), [0, 2, 3, 1]);
    assert_eq!(ZeroPadding2D::new(1).count_params(), 0);
    let layer = LayerHandle::new(ZeroPadding2D::new(1).named("zp"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[3, 3], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("zp") && err.contains("rank 4"), "{err}");
}

fn cropping_case(crop: Cropping2D, [t, bo, l, r]: [usize; 4]) {
    let (n, h, w, c) = (2, 6, 7, 2);
    let x = vals(n * h * w * c, 52);
    let layer = LayerHandle::new(crop);
    let y = layer.call(&t32(&x, &[n, h, w, c]), false).unwrap();
    let (oh, ow) = (h - t - bo, w - l - r);
    assert_eq!(y.shape(), &[n, oh, ow, c]);
    let mut want = Vec::new();
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for ch in 0..c {
                    want.push(at(&x, [n, h, w, c], b, i + t, j + l, ch));
                }
            }
        }
    }
    assert_close(&to_f64(&y), &want, 1e-6);
    assert_eq!(
        shape_of(&layer, vec![None, None, Some(w), Some(c)]),
        vec![None, None, Some(ow), Some(c)]
    );
}

#[test]
fn cropping2d_forms_and_errors() {
    cropping_case(Cropping2D::default(), [0, 0, 0, 0]);
    cropping_case(Cropping2D::new(1), [1, 1, 1, 1]);
    cropping_case(Cropping2D::new((2, 1)), [2, 2, 1, 1]);
    cropping_case(Cropping2D::new(((0, 3), (2, 4))), [0, 3, 2, 4]);
    // cropping everything is an error naming the layer
    let layer = LayerHandle::new(Cropping2D::new(((2, 2), (0, 0))).named("crop"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[1, 4, 4, 1], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("crop") && err.contains("(None, 4, 4, 1)"),
        "{err}"
    );
    let layer = LayerHandle::new(Cropping2D::new(1));
    assert!(layer
        .compute_output_shape(&[vec![None, Some(5), Some(2), Some(1)]])
        .is_err());
    assert!(layer
        .call(&ferroflow_core::ops::ones(&[4, 4, 1], DType::F32), false)
        .is_err());
}

#[test]
fn up_sampling2d_nearest() {
    let (n, h, w, c) = (2, 3, 2, 3);
    let x = vals(n * h * w * c, 53);
    for (sh, sw) in [(2, 2), (1, 3), (3, 1)] {
        let layer = LayerHandle::new(UpSampling2D::new((sh, sw)));
        let y = layer.call(&t32(&x, &[n, h, w, c]), false).unwrap();
        assert_eq!(y.shape(), &[n, h * sh, w * sw, c]);
        let mut want = Vec::new();
        for b in 0..n {
            for i in 0..h * sh {
                for j in 0..w * sw {
                    for ch in 0..c {
                        want.push(at(&x, [n, h, w, c], b, i / sh, j / sw, ch));
                    }
                }
            }
        }
        assert_close(&to_f64(&y), &want, 1e-7);
        assert_eq!(
            shape_of(&layer, vec![None, Some(h), None, Some(c)]),
            vec![None, Some(h * sh), None, Some(c)]
        );
    }
    // Keras's docstring example: size (1, 2) on arange(12).reshape(2, 2, 1, 3)
    let x: Vec<f64> = (0..12).map(f64::from).collect();
    let y = LayerHandle::new(UpSampling2D::new((1, 2)))
        .call(&t32(&x, &[2, 2, 1, 3]), false)
        .unwrap();
    assert_eq!(y.shape(), &[2, 2, 2, 3]);
    assert_close(
        &to_f64(&y),
        &[
            0., 1., 2., 0., 1., 2., 3., 4., 5., 3., 4., 5., 6., 7., 8., 6., 7., 8., 9., 10., 11.,
            9., 10., 11.,
        ],
        0.0,
    );
}

/// tf.image.resize bilinear (half-pixel centers) along one axis: sample position of output o.
fn bilinear_taps(o: usize, n: usize, scale: usize) -> (usize, usize, f64) {
    let src = (o as f64 + 0.5) / scale as f64 - 0.5;
    let f = src.floor();
    let lo = if f < 0.0 { 0 } else { f as usize };
    let hi = (src.ceil().max(0.0) as usize).min(n - 1);
    (lo.min(n - 1), hi, src - f)
}

#[test]
fn up_sampling2d_bilinear() {
    // by hand: [1, 2] resized to 4 with half-pixel centers -> [1, 1.25, 1.75, 2]
    let layer = LayerHandle::new(UpSampling2D::new((1, 2)).interpolation("bilinear"));
    let y = layer.call(&t32(&[1.0, 2.0], &[1, 1, 2, 1]), false).unwrap();
    assert_close(&to_f64(&y), &[1.0, 1.25, 1.75, 2.0], 1e-6);

    let (n, h, w, c) = (2, 3, 4, 2);
    let (sh, sw) = (2, 3);
    let x = vals(n * h * w * c, 54);
    let layer = LayerHandle::new(UpSampling2D::new((sh, sw)).interpolation("bilinear"));
    let y = layer.call(&t32(&x, &[n, h, w, c]), false).unwrap();
    assert_eq!(y.shape(), &[n, h * sh, w * sw, c]);
    let mut want = Vec::new();
    for b in 0..n {
        for i in 0..h * sh {
            let (i0, i1, di) = bilinear_taps(i, h, sh);
            for j in 0..w * sw {
                let (j0, j1, dj) = bilinear_taps(j, w, sw);
                for ch in 0..c {
                    let v = |r, q| at(&x, [n, h, w, c], b, r, q, ch);
                    let top = v(i0, j0) * (1.0 - dj) + v(i0, j1) * dj;
                    let bottom = v(i1, j0) * (1.0 - dj) + v(i1, j1) * dj;
                    want.push(top * (1.0 - di) + bottom * di);
                }
            }
        }
    }
    assert_close(&to_f64(&y), &want, 1e-5);
}

#[test]
fn up_sampling2d_gradient_and_errors() {
    use ferroflow_core::{ops, Variable};
    for interp in ["nearest", "bilinear"] {
        let x = Variable::new(t32(&vals(12, 55), &[2, 2, 3, 1]), "x");
        let layer = LayerHandle::new(UpSampling2D::new(2).interpolation(interp));
        let tape = GradientTape::new();
        let y = layer.call(&x.value(), false).unwrap();
        let loss = ops::reduce_sum(&y, ops::Axes::All, false).unwrap();
        let g = tape.gradient(&loss, &[&x]).unwrap().remove(0).unwrap();
        // every input pixel is spread over weights summing to 2·2 output pixels
        assert_close(&to_f64(&g), &[4.0; 12], 1e-5);
    }
    let layer = LayerHandle::new(UpSampling2D::new(2).interpolation("cubic"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[1, 2, 2, 1], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cubic") && err.contains("nearest, bilinear"),
        "{err}"
    );
    let layer = LayerHandle::new(UpSampling2D::new(2).interpolation("bicubic"));
    assert!(layer
        .call(&ferroflow_core::ops::ones(&[1, 2, 2, 1], DType::F32), false)
        .is_err());
    let layer = LayerHandle::new(UpSampling2D::default().named("up"));
    let err = layer
        .call(&ferroflow_core::ops::ones(&[2, 2, 1], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("up") && err.contains("rank 4"), "{err}");
}

#[test]
fn reshaping_layers_in_a_model() {
    let mut model = Sequential::new();
    model.add(Input::new(&[7, 7, 3])).unwrap();
    model.add(ZeroPadding2D::new(((1, 2), (0, 1)))).unwrap();
    model.add(Cropping2D::new((1, 2))).unwrap();
    model.add(UpSampling2D::new(2)).unwrap();
    model
        .add(Conv2DTranspose::new(4, 3).strides(2).padding("same"))
        .unwrap();
    let summary = model.summary_string(Some(100));
    for s in [
        "(None, 10, 8, 3)",
        "(None, 8, 4, 3)",
        "(None, 16, 8, 3)",
        "(None, 32, 16, 4)",
    ] {
        assert!(summary.contains(s), "{s} missing in\n{summary}");
    }
    let y = model
        .predict_on_batch(ferroflow_core::ops::ones(&[2, 7, 7, 3], DType::F32))
        .unwrap();
    assert_eq!(y[0].shape(), &[2, 32, 16, 4]);
}

// ---------------------------------------------------------------------------------------------
// regularizers and training

#[test]
fn conv_regularizers_add_penalties() {
    // Keras's "l2" = L2(0.01): 0.01·Σw²
    let layer = LayerHandle::new(
        Conv2D::new(2, 2)
            .kernel_regularizer("l2")
            .bias_regularizer("l1")
            .bias_initializer("ones"),
    );
    layer
        .build(&[vec![None, Some(3), Some(3), Some(1)]])
        .unwrap();
    let k = to_f64(&layer.lock().get_weights()[0]);
    let losses = layer.lock().regularization_losses().unwrap();
    assert_eq!(losses.len(), 2);
    let want_k: f64 = 0.01 * k.iter().map(|v| v * v).sum::<f64>();
    assert_close(&to_f64(&losses[0]), &[want_k], 1e-5);
    assert_close(&to_f64(&losses[1]), &[0.01 * 2.0], 1e-6);

    let sep = LayerHandle::new(
        SeparableConv2D::new(2, 2)
            .depthwise_regularizer("l2")
            .pointwise_regularizer("l2"),
    );
    sep.build(&[vec![None, Some(3), Some(3), Some(1)]]).unwrap();
    assert_eq!(sep.lock().regularization_losses().unwrap().len(), 2);

    // a bad initializer name surfaces when the layer is built
    let bad = LayerHandle::new(Conv2D::new(2, 2).kernel_initializer("glorot_uniformm"));
    assert!(bad.build(&[vec![None, Some(3), Some(3), Some(1)]]).is_err());
}

#[test]
fn conv_autoencoder_trains() {
    use ferroflow_keras::optimizers::Adam;
    ferroflow_keras::backend::set_random_seed(7);
    let mut model = Sequential::new();
    model.add(Input::new(&[6, 6, 1])).unwrap();
    model
        .add(
            Conv2D::new(4, 3)
                .strides(2)
                .padding("same")
                .activation("relu"),
        )
        .unwrap();
    model
        .add(Conv2DTranspose::new(1, 3).strides(2).padding("same"))
        .unwrap();
    model
        .compile(Adam::new().learning_rate(0.01), "mse", ())
        .unwrap();
    let x = t32(&vals(4 * 36, 61), &[4, 6, 6, 1]);
    let first = model.train_on_batch(&x, &x, None).unwrap()["loss"];
    let mut last = first;
    for _ in 0..30 {
        last = model.train_on_batch(&x, &x, None).unwrap()["loss"];
    }
    assert!(last.is_finite() && last < first * 0.9, "{first} -> {last}");
}
