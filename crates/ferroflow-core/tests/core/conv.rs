//! Convolution ops: hand-computed cases, an independent naive reference, finite-difference
//! gradients (first and second order), errors, unknown dims and thread-count determinism.

use ferroflow_core::op::{Op, TensorSpec};
use ferroflow_core::ops::conv::{Conv2D, ConvAttrs, ConvKind};
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

// ---------------------------------------------------------------------------------------------
// Independent reference: plain nested loops, padding computed from TF's documented formula.

/// (output size, padding before) along one axis.
fn axis(input: usize, k: usize, s: usize, d: usize, padding: Padding) -> (usize, usize) {
    let eff = d * (k - 1) + 1;
    match padding {
        Valid => ((input - eff) / s + 1, 0),
        Same => {
            let out = input.div_ceil(s);
            let total = ((out - 1) * s + eff).saturating_sub(input);
            (out, total / 2)
        }
    }
}

/// Naive regular (`mult == None`) or depthwise (`mult == Some(m)`) convolution.
fn ref_conv(
    x: &Tensor,
    w: &Tensor,
    st: [usize; 2],
    padding: Padding,
    dil: [usize; 2],
    depthwise: bool,
) -> (Vec<f64>, Vec<usize>) {
    let (xv, wv) = (vals(x), vals(w));
    let [n, h, wd, c] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let [kh, kw, _, wo] = [w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]];
    let oc = if depthwise { c * wo } else { wo };
    let (oh, pt) = axis(h, kh, st[0], dil[0], padding);
    let (ow, pl) = axis(wd, kw, st[1], dil[1], padding);
    let mut y = vec![0.0; n * oh * ow * oc];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let iy = (oy * st[0] + ky * dil[0]) as isize - pt as isize;
                        let ix = (ox * st[1] + kx * dil[1]) as isize - pl as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                            continue;
                        }
                        let (iy, ix) = (iy as usize, ix as usize);
                        for ci in 0..c {
                            let xval = xv[((b * h + iy) * wd + ix) * c + ci];
                            for o in 0..wo {
                                let wval = wv[((ky * kw + kx) * c + ci) * wo + o];
                                let co = if depthwise { ci * wo + o } else { o };
                                y[((b * oh + oy) * ow + ox) * oc + co] += xval * wval;
                            }
                        }
                    }
                }
            }
        }
    }
    (y, vec![n, oh, ow, oc])
}

/// Naive transposed convolution as a scatter: every input pixel adds `x · w` to the output
/// window it came from. `w` is `[kh, kw, out, in]`.
fn ref_conv_transpose(
    x: &Tensor,
    w: &Tensor,
    out_shape: [usize; 4],
    st: [usize; 2],
    padding: Padding,
    dil: [usize; 2],
) -> Vec<f64> {
    let (xv, wv) = (vals(x), vals(w));
    let [n, h, wd, ci_n] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let [kh, kw, co_n, _] = [w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]];
    let [_, oh, ow, _] = out_shape;
    // Padding of the forward convolution out_shape -> x.
    let (fh, pt) = axis(oh, kh, st[0], dil[0], padding);
    let (fw, pl) = axis(ow, kw, st[1], dil[1], padding);
    assert_eq!((fh, fw), (h, wd));
    let mut y = vec![0.0; n * oh * ow * co_n];
    for b in 0..n {
        for iy in 0..h {
            for ix in 0..wd {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let oy = (iy * st[0] + ky * dil[0]) as isize - pt as isize;
                        let ox = (ix * st[1] + kx * dil[1]) as isize - pl as isize;
                        if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                            continue;
                        }
                        let (oy, ox) = (oy as usize, ox as usize);
                        for co in 0..co_n {
                            for ci in 0..ci_n {
                                y[((b * oh + oy) * ow + ox) * co_n + co] += xv
                                    [((b * h + iy) * wd + ix) * ci_n + ci]
                                    * wv[((ky * kw + kx) * co_n + co) * ci_n + ci];
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

/// (input shape, kernel [kh, kw], out channels / multiplier, strides, padding, dilations)
type Case = (
    [usize; 4],
    [usize; 2],
    usize,
    [usize; 2],
    Padding,
    [usize; 2],
);

fn geometries() -> Vec<Case> {
    vec![
        ([1, 5, 5, 1], [3, 3], 1, [1, 1], Valid, [1, 1]),
        ([2, 5, 5, 3], [3, 3], 4, [2, 2], Same, [1, 1]),
        ([2, 6, 6, 2], [3, 3], 3, [2, 2], Same, [1, 1]),
        ([2, 7, 6, 2], [3, 2], 3, [2, 3], Valid, [1, 1]),
        ([1, 9, 8, 3], [3, 3], 2, [1, 1], Same, [2, 2]),
        ([3, 9, 10, 2], [2, 3], 5, [2, 1], Valid, [3, 2]),
        ([2, 4, 4, 3], [5, 5], 2, [1, 1], Same, [1, 1]),
        ([2, 6, 7, 4], [1, 1], 3, [1, 1], Valid, [1, 1]),
        ([2, 6, 7, 4], [1, 1], 3, [2, 2], Same, [1, 1]),
        ([2, 11, 13, 3], [4, 3], 4, [3, 2], Same, [1, 2]),
    ]
}

// ---------------------------------------------------------------------------------------------
// Hand-computed cases.

#[test]
fn conv2d_valid_stride1_by_hand() {
    // x (3x4) = [[1 2 3 4], [5 6 7 8], [9 10 11 12]], w (2x2) = [[1 2], [3 4]]
    // y[0,0] = 1·1 + 2·2 + 3·5 + 4·6 = 44, and each step right adds 1+2+3+4 = 10,
    // each step down adds 4·10 = 40.
    let x = iota(&[1, 3, 4, 1]);
    let w = t(vec![1.0, 2.0, 3.0, 4.0], &[2, 2, 1, 1]);
    let y = ops::conv2d(&x, &w, [1, 1], Valid, [1, 1]).unwrap();
    assert_eq!(y.shape(), &[1, 2, 3, 1]);
    assert_eq!(vals(&y), vec![44.0, 54.0, 64.0, 84.0, 94.0, 104.0]);
}

#[test]
fn conv2d_same_stride2_odd_size_by_hand() {
    // 5x5 input 1..25, 3x3 kernel of ones, stride 2, same: out = ceil(5/2) = 3, total padding
    // (3-1)·2 + 3 - 5 = 2 → 1 top/left, 1 bottom/right. Output (oy, ox) sums input rows
    // 2oy-1..2oy+1 and columns 2ox-1..2ox+1 clipped to 0..4.
    //   y[0,0] = 1+2+6+7 = 16          y[0,1] = 2+3+4+7+8+9 = 33      y[0,2] = 4+5+9+10 = 28
    //   y[1,0] = 6+7+11+12+16+17 = 69  y[1,1] = 7+8+9+12+13+14+17+18+19 = 117
    //   y[1,2] = 9+10+14+15+19+20 = 87 y[2,0] = 16+17+21+22 = 76
    //   y[2,1] = 17+18+19+22+23+24 = 123                                y[2,2] = 19+20+24+25 = 88
    let x = iota(&[1, 5, 5, 1]);
    let w = t(vec![1.0; 9], &[3, 3, 1, 1]);
    let y = ops::conv2d(&x, &w, [2, 2], Same, [1, 1]).unwrap();
    assert_eq!(y.shape(), &[1, 3, 3, 1]);
    assert_eq!(
        vals(&y),
        vec![16.0, 33.0, 28.0, 69.0, 117.0, 87.0, 76.0, 123.0, 88.0]
    );
}

#[test]
fn conv2d_same_pads_more_at_the_end() {
    // 6x6 input x[r][c] = 6r + c + 1, 3x3 ones, stride 2, same: out 3, total padding
    // (3-1)·2 + 3 - 6 = 1 → 0 before, 1 after. Output (oy, ox) sums rows R = 2oy..2oy+2 and
    // columns C = 2ox..2ox+2 clipped to 0..5:
    //   Σ = |R||C| + 6|C|ΣR + |R|ΣC
    //   y[0,0]: R={0,1,2} C={0,1,2}: 9 + 54 + 9 = 72;   y[0,1]: C={2,3,4}: 9 + 54 + 27 = 90
    //   y[0,2]: C={4,5}: 6 + 36 + 27 = 69
    //   y[1,0]: R={2,3,4}: 9 + 162 + 9 = 180;  y[1,1]: 9 + 162 + 27 = 198;  y[1,2]: 6 + 108 + 27 = 141
    //   y[2,0]: R={4,5}: 6 + 162 + 6 = 174;    y[2,1]: 6 + 162 + 18 = 186;  y[2,2]: 4 + 108 + 18 = 130
    // (Padding 1 BEFORE would give y[0,0] = 1+2+7+8 = 18 instead.)
    let x = iota(&[1, 6, 6, 1]);
    let w = t(vec![1.0; 9], &[3, 3, 1, 1]);
    let y = ops::conv2d(&x, &w, [2, 2], Same, [1, 1]).unwrap();
    assert_eq!(
        vals(&y),
        vec![72.0, 90.0, 69.0, 180.0, 198.0, 141.0, 174.0, 186.0, 130.0]
    );
}

#[test]
fn conv2d_dilation2_by_hand() {
    // 5x5 input x[r][c] = 5r + c + 1, 2x2 kernel [[1, 2], [3, 4]] dilated by 2 (effective 3x3),
    // valid → 3x3. y[i,j] = x[i,j] + 2x[i,j+2] + 3x[i+2,j] + 4x[i+2,j+2]
    //                    = 10(5i + j) + (1 + 2·3 + 3·11 + 4·13) = 10(5i + j) + 92.
    let x = iota(&[1, 5, 5, 1]);
    let w = t(vec![1.0, 2.0, 3.0, 4.0], &[2, 2, 1, 1]);
    let y = ops::conv2d(&x, &w, [1, 1], Valid, [2, 2]).unwrap();
    assert_eq!(y.shape(), &[1, 3, 3, 1]);
    let want: Vec<f64> = (0..9)
        .map(|k| 10.0 * (5 * (k / 3) + k % 3) as f64 + 92.0)
        .collect();
    assert_eq!(vals(&y), want);
}

#[test]
fn conv2d_multichannel_by_hand() {
    // 1x2 image, 2 channels: pixel0 = (1, 2), pixel1 = (3, 4). 1x2 kernel, 3 output channels:
    // tap0 = [[1, 0, 2], [0, 1, -1]] (rows = input channel), tap1 = all ones.
    // y = pixel0·tap0 + pixel1·tap1 = (1, 2, 2-2) + (7, 7, 7) = (8, 9, 7).
    let x = t(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let w = t(
        vec![1.0, 0.0, 2.0, 0.0, 1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        &[1, 2, 2, 3],
    );
    let y = ops::conv2d(&x, &w, [1, 1], Valid, [1, 1]).unwrap();
    assert_eq!(y.shape(), &[1, 1, 1, 3]);
    assert_eq!(vals(&y), vec![8.0, 9.0, 7.0]);
}

#[test]
fn conv1d_by_hand() {
    // x = [1 2 3 4 5], w = [1 0 -1], stride 2, same: out 3, padding 1 each side.
    // y[t] = x[2t-1] - x[2t+1]: y0 = 0 - 2, y1 = 2 - 4, y2 = 4 - 0.
    let x = iota(&[1, 5, 1]);
    let w = t(vec![1.0, 0.0, -1.0], &[3, 1, 1]);
    let y = ops::conv1d(&x, &w, 2, Same, 1).unwrap();
    assert_eq!(y.shape(), &[1, 3, 1]);
    assert_eq!(vals(&y), vec![-2.0, -2.0, 4.0]);
    // dilation 2, valid, 2 channels in, 1 out: w[k][c] = [[1, 0], [0, 1]] (k = 0, 1),
    // x[t] = (t+1, 10(t+1)) for t = 0..4: y[t] = x[t].c0 + x[t+2].c1 = (t+1) + 10(t+3).
    let x = t(
        (0..5)
            .flat_map(|i| [(i + 1) as f64, 10.0 * (i + 1) as f64])
            .collect(),
        &[1, 5, 2],
    );
    let w = t(vec![1.0, 0.0, 0.0, 1.0], &[2, 2, 1]);
    let y = ops::conv1d(&x, &w, 1, Valid, 2).unwrap();
    assert_eq!(vals(&y), vec![31.0, 42.0, 53.0]);
}

#[test]
fn depthwise_multiplier2_by_hand() {
    // 2x2 image with 2 channels: c0 = [1 2 3 4], c1 = [10 20 30 40] (row-major pixels).
    // 2x2 filter, multiplier 2 (taps t = 0..3): w[t,0,0] = 1, w[t,0,1] = t,
    // w[t,1,0] = -1, w[t,1,1] = (t == 0). Output channels ci·2 + m:
    //   ch0 = 1+2+3+4 = 10, ch1 = 0·1 + 1·2 + 2·3 + 3·4 = 20, ch2 = -100, ch3 = 10.
    let x = t(
        vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0],
        &[1, 2, 2, 2],
    );
    let mut w = vec![];
    for tap in 0..4 {
        w.extend([1.0, tap as f64, -1.0, if tap == 0 { 1.0 } else { 0.0 }]);
    }
    let w = t(w, &[2, 2, 2, 2]);
    let y = ops::depthwise_conv2d(&x, &w, [1, 1], Valid, [1, 1]).unwrap();
    assert_eq!(y.shape(), &[1, 1, 1, 4]);
    assert_eq!(vals(&y), vec![10.0, 20.0, -100.0, 10.0]);
}

#[test]
fn conv2d_transpose_by_hand_and_vs_scatter() {
    // 2x2 input [1 2; 3 4], 3x3 ones kernel, stride 2, same, output 4x4: the forward conv
    // 4x4 → 2x2 pads 0 top/left (1 bottom/right), so input (i, j) scatters onto output rows
    // 2i..2i+2 and columns 2j..2j+2 (clipped):
    let x = t(vec![1.0, 2.0, 3.0, 4.0], &[1, 2, 2, 1]);
    let w = t(vec![1.0; 9], &[3, 3, 1, 1]);
    let y = ops::conv2d_transpose(&x, &w, &[1, 4, 4, 1], [2, 2], Same, [1, 1]).unwrap();
    #[rustfmt::skip]
    let want = vec![
        1.0, 1.0, 3.0, 2.0,
        1.0, 1.0, 3.0, 2.0,
        4.0, 4.0, 10.0, 6.0,
        3.0, 3.0, 7.0, 4.0,
    ];
    assert_eq!(vals(&y), want);

    // Random geometries against the scatter loop. (x shape, kernel, out channels, out shape,
    // strides, padding, dilations)
    type TCase = (
        [usize; 4],
        [usize; 2],
        [usize; 4],
        [usize; 2],
        Padding,
        [usize; 2],
    );
    let cases: &[TCase] = &[
        ([2, 3, 3, 2], [3, 3], [2, 6, 6, 3], [2, 2], Same, [1, 1]),
        ([2, 3, 3, 2], [3, 3], [2, 5, 5, 3], [2, 2], Same, [1, 1]),
        ([1, 3, 4, 3], [3, 2], [1, 7, 9, 2], [2, 2], Valid, [1, 1]),
        ([1, 3, 4, 3], [3, 2], [1, 8, 8, 2], [2, 2], Valid, [1, 1]),
        ([2, 4, 3, 1], [2, 2], [2, 6, 6, 2], [1, 1], Valid, [2, 3]),
        ([1, 3, 3, 2], [3, 3], [1, 9, 8, 4], [3, 3], Same, [1, 1]),
    ];
    for (i, &(xs, k, out, st, pad, dil)) in cases.iter().enumerate() {
        let x = test_tensor(&xs, 10 + i as u64, -1.0, 1.0);
        let w = test_tensor(&[k[0], k[1], out[3], xs[3]], 20 + i as u64, -1.0, 1.0);
        let y = ops::conv2d_transpose(&x, &w, &out, st, pad, dil).unwrap();
        assert_eq!(y.shape(), &out, "case {i}");
        assert_close(
            &vals(&y),
            &ref_conv_transpose(&x, &w, out, st, pad, dil),
            1e-12,
            1e-12,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Random inputs against the naive reference.

#[test]
fn conv2d_and_backprops_match_naive_reference() {
    for (i, &(xs, k, oc, st, pad, dil)) in geometries().iter().enumerate() {
        let x = test_tensor(&xs, 100 + i as u64, -1.0, 1.0);
        let w = test_tensor(&[k[0], k[1], xs[3], oc], 200 + i as u64, -1.0, 1.0);
        let y = ops::conv2d(&x, &w, st, pad, dil).unwrap();
        let (want, shape) = ref_conv(&x, &w, st, pad, dil, false);
        assert_eq!(y.shape(), &shape[..], "case {i}");
        assert_close(&vals(&y), &want, 1e-12, 1e-12);

        // Backprops: dx = transposed conv (scatter), dw by the adjoint identity tested
        // elementwise with one-hot filters: dw[j] = <conv(x, e_j), dy>.
        let dy = test_tensor(&shape, 300 + i as u64, -1.0, 1.0);
        let dx = ops::conv2d_backprop_input(&xs, &w, &dy, st, pad, dil).unwrap();
        // The scatter reference takes the filter as [kh, kw, out, in] of the transposed
        // convolution, which is the forward filter [kh, kw, c, oc] as it is.
        assert_close(
            &vals(&dx),
            &ref_conv_transpose(&dy, &w, xs, st, pad, dil),
            1e-12,
            1e-12,
        );
        let dw = ops::conv2d_backprop_filter(&x, w.shape(), &dy, st, pad, dil).unwrap();
        let dyv = vals(&dy);
        let want_dw: Vec<f64> = (0..w.num_elements())
            .map(|j| {
                let mut e = vec![0.0; w.num_elements()];
                e[j] = 1.0;
                let (yj, _) = ref_conv(&x, &t(e, w.shape()), st, pad, dil, false);
                yj.iter().zip(&dyv).map(|(a, b)| a * b).sum()
            })
            .collect();
        assert_close(&vals(&dw), &want_dw, 1e-12, 1e-12);

        // f32 agrees with the f64 reference.
        let y32 = ops::conv2d(
            &ops::cast(&x, DType::F32).unwrap(),
            &ops::cast(&w, DType::F32).unwrap(),
            st,
            pad,
            dil,
        )
        .unwrap();
        assert_eq!(y32.dtype(), DType::F32);
        assert_close(&y32.to_f64_vec(), &want, 1e-5, 1e-5);
    }
}

#[test]
fn depthwise_and_conv1d_match_naive_reference() {
    for (i, &(xs, k, oc, st, pad, dil)) in geometries().iter().enumerate() {
        let mult = 1 + oc % 3;
        let x = test_tensor(&xs, 400 + i as u64, -1.0, 1.0);
        let w = test_tensor(&[k[0], k[1], xs[3], mult], 500 + i as u64, -1.0, 1.0);
        let y = ops::depthwise_conv2d(&x, &w, st, pad, dil).unwrap();
        let (want, shape) = ref_conv(&x, &w, st, pad, dil, true);
        assert_eq!(y.shape(), &shape[..], "case {i}");
        assert_close(&vals(&y), &want, 1e-12, 1e-12);

        // conv1d: the first image row as a 1-D signal, against the 2-D reference with h = 1.
        let x1 = test_tensor(&[xs[0], xs[2], xs[3]], 600 + i as u64, -1.0, 1.0);
        let w1 = test_tensor(&[k[1], xs[3], oc], 700 + i as u64, -1.0, 1.0);
        let y1 = ops::conv1d(&x1, &w1, st[1], pad, dil[1]).unwrap();
        let x2 = ops::reshape(&x1, &[xs[0] as isize, 1, xs[2] as isize, xs[3] as isize]).unwrap();
        let w2 = ops::reshape(&w1, &[1, k[1] as isize, xs[3] as isize, oc as isize]).unwrap();
        let (want1, shape1) = ref_conv(&x2, &w2, [1, st[1]], pad, [1, dil[1]], false);
        assert_eq!(y1.shape(), &[shape1[0], shape1[2], shape1[3]]);
        assert_close(&vals(&y1), &want1, 1e-12, 1e-12);
    }
}

#[test]
fn half_precision_runs_through_f32() {
    let x = test_tensor(&[1, 5, 5, 2], 1, -1.0, 1.0);
    let w = test_tensor(&[3, 3, 2, 3], 2, -1.0, 1.0);
    let (want, _) = ref_conv(&x, &w, [2, 2], Same, [1, 1], false);
    for dt in [DType::F16, DType::BF16] {
        let y = ops::conv2d(
            &ops::cast(&x, dt).unwrap(),
            &ops::cast(&w, dt).unwrap(),
            [2, 2],
            Same,
            [1, 1],
        )
        .unwrap();
        assert_eq!(y.dtype(), dt);
        assert_close(&y.to_f64_vec(), &want, 0.1, 0.02);
    }
}

// ---------------------------------------------------------------------------------------------
// Gradients.

fn small_geometries() -> Vec<Case> {
    vec![
        ([2, 4, 4, 2], [2, 2], 3, [1, 1], Valid, [1, 1]),
        ([1, 5, 5, 2], [3, 3], 2, [2, 2], Same, [1, 1]),
        ([2, 6, 5, 1], [3, 2], 2, [2, 2], Same, [1, 1]),
        ([1, 6, 6, 2], [2, 2], 2, [1, 1], Same, [2, 2]),
        ([1, 7, 6, 2], [2, 2], 3, [2, 1], Valid, [2, 2]),
    ]
}

#[test]
fn conv2d_gradients() {
    for (i, &(xs, k, oc, st, pad, dil)) in small_geometries().iter().enumerate() {
        let x = test_tensor(&xs, 800 + i as u64, -1.0, 1.0);
        let w = test_tensor(&[k[0], k[1], xs[3], oc], 900 + i as u64, -1.0, 1.0);
        check_gradients(
            |v| ops::conv2d(&v[0], &v[1], st, pad, dil),
            &[x, w],
            &[0, 1],
        )
        .unwrap_or_else(|e| panic!("case {i}: {e}"));
    }
}

#[test]
fn conv2d_backprop_gradients() {
    for (i, &(xs, k, oc, st, pad, dil)) in small_geometries().iter().enumerate() {
        let ws = [k[0], k[1], xs[3], oc];
        let x = test_tensor(&xs, 1000 + i as u64, -1.0, 1.0);
        let w = test_tensor(&ws, 1100 + i as u64, -1.0, 1.0);
        let y = ops::conv2d(&x, &w, st, pad, dil).unwrap();
        let dy = test_tensor(y.shape(), 1200 + i as u64, -1.0, 1.0);
        check_gradients(
            |v| ops::conv2d_backprop_input(&xs, &v[0], &v[1], st, pad, dil),
            &[w.clone(), dy.clone()],
            &[0, 1],
        )
        .unwrap_or_else(|e| panic!("backprop_input case {i}: {e}"));
        check_gradients(
            |v| ops::conv2d_backprop_filter(&v[0], &ws, &v[1], st, pad, dil),
            &[x, dy],
            &[0, 1],
        )
        .unwrap_or_else(|e| panic!("backprop_filter case {i}: {e}"));
    }
}

#[test]
fn depthwise_gradients() {
    for (i, &(xs, k, _, st, pad, dil)) in small_geometries().iter().enumerate() {
        let mult = 1 + i % 2;
        let ws = [k[0], k[1], xs[3], mult];
        let x = test_tensor(&xs, 1300 + i as u64, -1.0, 1.0);
        let w = test_tensor(&ws, 1400 + i as u64, -1.0, 1.0);
        check_gradients(
            |v| ops::depthwise_conv2d(&v[0], &v[1], st, pad, dil),
            &[x.clone(), w.clone()],
            &[0, 1],
        )
        .unwrap_or_else(|e| panic!("forward case {i}: {e}"));
        let y = ops::depthwise_conv2d(&x, &w, st, pad, dil).unwrap();
        let dy = test_tensor(y.shape(), 1500 + i as u64, -1.0, 1.0);
        check_gradients(
            |v| ops::depthwise_conv2d_backprop_input(&xs, &v[0], &v[1], st, pad, dil),
            &[w, dy.clone()],
            &[0, 1],
        )
        .unwrap_or_else(|e| panic!("backprop_input case {i}: {e}"));
        check_gradients(
            |v| ops::depthwise_conv2d_backprop_filter(&v[0], &ws, &v[1], st, pad, dil),
            &[x, dy],
            &[0, 1],
        )
        .unwrap_or_else(|e| panic!("backprop_filter case {i}: {e}"));
    }
}

#[test]
fn conv2d_transpose_and_conv1d_gradients() {
    let x = test_tensor(&[2, 3, 3, 2], 1, -1.0, 1.0);
    let w = test_tensor(&[3, 3, 3, 2], 2, -1.0, 1.0);
    for (out, st, pad, dil) in [
        ([2, 6, 6, 3], [2, 2], Same, [1, 1]),
        ([2, 5, 5, 3], [2, 2], Same, [1, 1]),
        ([2, 7, 8, 3], [2, 2], Valid, [1, 1]),
        ([2, 7, 7, 3], [1, 1], Valid, [2, 2]),
    ] {
        check_gradients(
            |v| ops::conv2d_transpose(&v[0], &v[1], &out, st, pad, dil),
            &[x.clone(), w.clone()],
            &[0, 1],
        )
        .unwrap_or_else(|e| panic!("transpose {out:?}: {e}"));
    }
    let x1 = test_tensor(&[2, 7, 2], 3, -1.0, 1.0);
    let w1 = test_tensor(&[3, 2, 3], 4, -1.0, 1.0);
    for (st, pad, dil) in [(2, Same, 1), (1, Valid, 2), (3, Same, 1)] {
        check_gradients(
            |v| ops::conv1d(&v[0], &v[1], st, pad, dil),
            &[x1.clone(), w1.clone()],
            &[0, 1],
        )
        .unwrap_or_else(|e| panic!("conv1d {st} {pad:?} {dil}: {e}"));
    }
}

fn sum_sq(x: &Tensor) -> Result<Tensor> {
    ops::reduce_sum(&ops::square(x)?, Axes::All, false)
}

/// `S(x, w) = Σ (dL/dx)²` with `L = Σ f(x, w)²`, the first derivative taken by an inner tape.
fn grad_norm<F>(f: F) -> impl Fn(&[Tensor]) -> Result<Tensor>
where
    F: Fn(&Tensor, &Tensor) -> Result<Tensor>,
{
    move |v: &[Tensor]| {
        let inner = GradientTape::new();
        inner.watch(&v[0]);
        let l = sum_sq(&f(&v[0], &v[1])?)?;
        let dx = inner.gradient(&l, &[&v[0]])?[0]
            .clone()
            .ok_or_else(|| Error::invalid("test", "no gradient"))?;
        sum_sq(&dx)
    }
}

#[test]
fn second_derivatives_through_conv2d() {
    // Explicit nested tapes: d/dw of S = Σ (dL/dx)², against central differences of S.
    let x = test_tensor(&[1, 5, 5, 2], 7, -1.0, 1.0);
    let w = test_tensor(&[3, 3, 2, 2], 8, -1.0, 1.0);
    let conv = |x: &Tensor, w: &Tensor| ops::conv2d(x, w, [2, 2], Same, [1, 1]);
    let s = grad_norm(conv);
    let outer = GradientTape::new();
    outer.watch(&w);
    let sv = s(&[x.clone(), w.clone()]).unwrap();
    let dsdw = vals(&outer.gradient(&sv, &[&w]).unwrap()[0].clone().unwrap());
    let wv = vals(&w);
    let eps = 1e-5;
    let numeric: Vec<f64> = (0..wv.len())
        .map(|j| {
            let at = |d: f64| {
                let mut v = wv.clone();
                v[j] += d;
                s(&[x.clone(), t(v, w.shape())])
                    .unwrap()
                    .item::<f64>()
                    .unwrap()
            };
            (at(eps) - at(-eps)) / (2.0 * eps)
        })
        .collect();
    assert_close(&dsdw, &numeric, 1e-6, 1e-6);
    // Both inputs, and the other families, with the generic checker.
    check_gradients(grad_norm(conv), &[x.clone(), w.clone()], &[0, 1]).unwrap();
    check_gradients(
        grad_norm(|x, w| ops::conv2d(x, w, [1, 1], Valid, [2, 2])),
        &[x.clone(), w.clone()],
        &[0, 1],
    )
    .unwrap();
    let wd = test_tensor(&[3, 3, 2, 2], 9, -1.0, 1.0);
    check_gradients(
        grad_norm(|x, w| ops::depthwise_conv2d(x, w, [2, 2], Same, [1, 1])),
        &[x, wd],
        &[0, 1],
    )
    .unwrap();
    let xt = test_tensor(&[1, 3, 3, 2], 10, -1.0, 1.0);
    let wt = test_tensor(&[3, 3, 2, 2], 11, -1.0, 1.0);
    check_gradients(
        grad_norm(|x, w| ops::conv2d_transpose(x, w, &[1, 5, 5, 2], [2, 2], Same, [1, 1])),
        &[xt, wt],
        &[0, 1],
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Errors and shape inference.

fn err_text(r: Result<Tensor>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(t) => panic!("expected an error, got shape {:?}", t.shape()),
    }
}

#[test]
fn errors_name_the_op_and_shapes() {
    let x = test_tensor(&[1, 5, 5, 3], 1, -1.0, 1.0);
    let w = test_tensor(&[3, 3, 4, 8], 2, -1.0, 1.0);
    // channel mismatch
    let e = err_text(ops::conv2d(&x, &w, [1, 1], Same, [1, 1]));
    assert!(e.contains("Conv2D") && e.contains("channels"), "{e}");
    assert!(
        e.contains("(1, 5, 5, 3)") && e.contains("(3, 3, 4, 8)"),
        "{e}"
    );
    // wrong rank
    let x3 = test_tensor(&[5, 5, 3], 1, -1.0, 1.0);
    let w3 = test_tensor(&[3, 3, 3, 2], 2, -1.0, 1.0);
    let e = err_text(ops::conv2d(&x3, &w3, [1, 1], Same, [1, 1]));
    assert!(
        e.contains("Conv2D") && e.contains("rank 4") && e.contains("(5, 5, 3)"),
        "{e}"
    );
    let e = err_text(ops::depthwise_conv2d(&x, &x3, [1, 1], Same, [1, 1]));
    assert!(
        e.contains("DepthwiseConv2dNative") && e.contains("(5, 5, 3)"),
        "{e}"
    );
    let e = err_text(ops::conv1d(&x, &w3, 1, Same, 1));
    assert!(e.contains("Conv1D") && e.contains("(1, 5, 5, 3)"), "{e}");
    // valid window that does not fit (dilated 3x3 by 3 = 7 > 5)
    let e = err_text(ops::conv2d(&x, &w3, [1, 1], Valid, [3, 3]));
    assert!(e.contains("Conv2D") && e.contains("does not fit"), "{e}");
    assert!(
        e.contains("(1, 5, 5, 3)") && e.contains("(3, 3, 3, 2)"),
        "{e}"
    );
    // same padding always fits
    assert_eq!(
        ops::conv2d(&x, &w3, [1, 1], Same, [3, 3]).unwrap().shape(),
        &[1, 5, 5, 2]
    );
    // absurd dilation: an error, not an overflow panic
    let e = err_text(ops::conv2d(&x, &w3, [1, 1], Same, [usize::MAX, 1]));
    assert!(e.contains("Conv2D") && e.contains("too large"), "{e}");
    // zero stride / dilation
    let e = err_text(ops::conv2d(&x, &w3, [0, 1], Same, [1, 1]));
    assert!(e.contains("Conv2D") && e.contains("strides"), "{e}");
    let e = err_text(ops::conv2d(&x, &w3, [1, 1], Same, [1, 0]));
    assert!(e.contains("Conv2D") && e.contains("dilations"), "{e}");
    // dtypes
    let xi = Tensor::from_vec(vec![1i32; 75], &[1, 5, 5, 3]).unwrap();
    assert!(matches!(
        ops::conv2d(&xi, &w3, [1, 1], Same, [1, 1]),
        Err(Error::DType { .. })
    ));
    let w32 = ops::cast(&w3, DType::F32).unwrap();
    assert!(matches!(
        ops::conv2d(&x, &w32, [1, 1], Same, [1, 1]),
        Err(Error::DType { .. })
    ));
    // conv2d_transpose with an output_shape whose forward conv is not the input's shape
    let xt = test_tensor(&[1, 3, 3, 2], 3, -1.0, 1.0);
    let wt = test_tensor(&[3, 3, 4, 2], 4, -1.0, 1.0);
    assert!(ops::conv2d_transpose(&xt, &wt, &[1, 6, 6, 4], [2, 2], Same, [1, 1]).is_ok());
    let e = err_text(ops::conv2d_transpose(
        &xt,
        &wt,
        &[1, 8, 8, 4],
        [2, 2],
        Same,
        [1, 1],
    ));
    assert!(e.contains("Conv2DBackpropInput"), "{e}");
    assert!(
        e.contains("(1, 8, 8, 4)") && e.contains("(1, 3, 3, 2)"),
        "{e}"
    );
    // output channels disagree with the filter
    let e = err_text(ops::conv2d_transpose(
        &xt,
        &wt,
        &[1, 6, 6, 5],
        [2, 2],
        Same,
        [1, 1],
    ));
    assert!(
        e.contains("Conv2DBackpropInput") && e.contains("(3, 3, 4, 2)"),
        "{e}"
    );
    // input channels disagree with the filter's last dim
    let wbad = test_tensor(&[3, 3, 4, 3], 5, -1.0, 1.0);
    let e = err_text(ops::conv2d_transpose(
        &xt,
        &wbad,
        &[1, 6, 6, 4],
        [2, 2],
        Same,
        [1, 1],
    ));
    assert!(
        e.contains("Conv2DBackpropInput") && e.contains("(1, 3, 3, 2)"),
        "{e}"
    );
    let e = err_text(ops::conv2d_transpose(
        &xt,
        &wt,
        &[1, 6, 6],
        [2, 2],
        Same,
        [1, 1],
    ));
    assert!(e.contains("input_sizes"), "{e}");
    // backprop_filter with a dy of the wrong shape
    let dy = test_tensor(&[1, 4, 4, 2], 6, -1.0, 1.0);
    let e = err_text(ops::conv2d_backprop_filter(
        &x,
        &[3, 3, 3, 2],
        &dy,
        [1, 1],
        Same,
        [1, 1],
    ));
    assert!(
        e.contains("Conv2DBackpropFilter") && e.contains("(1, 4, 4, 2)"),
        "{e}"
    );
}

#[test]
fn shape_inference_keeps_unknown_dims() {
    let op = Conv2D {
        kind: ConvKind::Regular,
        attrs: ConvAttrs {
            strides: [2, 2],
            padding: Valid,
            dilations: [1, 1],
        },
    };
    let x = TensorSpec {
        dtype: DType::F32,
        shape: vec![None, None, Some(9), None],
    };
    let w = TensorSpec::new(DType::F32, &[3, 3, 4, 8]);
    let out = op.infer(&[x.clone(), w.clone()]).unwrap();
    assert_eq!(out[0].shape, vec![None, None, Some(4), Some(8)]);
    // unknown filter size with same padding: the output size is still known
    let same = Conv2D {
        kind: ConvKind::Depthwise,
        attrs: ConvAttrs {
            strides: [2, 2],
            padding: Same,
            dilations: [1, 1],
        },
    };
    let wu = TensorSpec {
        dtype: DType::F32,
        shape: vec![None, None, Some(4), Some(2)],
    };
    let out = same.infer(&[x.clone(), wu]).unwrap();
    assert_eq!(out[0].shape, vec![None, None, Some(5), Some(8)]);
    // a known mismatch is still an error
    let xbad = TensorSpec {
        dtype: DType::F32,
        shape: vec![None, None, Some(9), Some(3)],
    };
    assert!(op.infer(&[xbad, w]).is_err());
}

// ---------------------------------------------------------------------------------------------
// Determinism.

#[test]
fn conv2d_bit_identical_across_thread_counts() {
    let x = ops::cast(&test_tensor(&[8, 13, 13, 32], 1, -1.0, 1.0), DType::F32).unwrap();
    let w = ops::cast(&test_tensor(&[3, 3, 32, 64], 2, -1.0, 1.0), DType::F32).unwrap();
    let wd = ops::cast(&test_tensor(&[3, 3, 32, 2], 3, -1.0, 1.0), DType::F32).unwrap();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let y = ops::conv2d(&x, &w, [1, 1], Same, [1, 1]).unwrap();
                let dx =
                    ops::conv2d_backprop_input(x.shape(), &w, &y, [1, 1], Same, [1, 1]).unwrap();
                let dw =
                    ops::conv2d_backprop_filter(&x, w.shape(), &y, [1, 1], Same, [1, 1]).unwrap();
                let d = ops::depthwise_conv2d(&x, &wd, [2, 2], Same, [1, 1]).unwrap();
                [y, dx, dw, d].map(|t| {
                    t.to_vec::<f32>()
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<u32>>()
                })
            })
    };
    let (a, b) = (run(1), run(2));
    for (k, name) in ["forward", "backprop input", "backprop filter", "depthwise"]
        .iter()
        .enumerate()
    {
        assert!(a[k] == b[k], "{name} differs between 1 and 2 threads");
    }
}
