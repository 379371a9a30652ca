//! `keras.losses`: every loss against its formula computed here with plain f64 loops, the
//! reductions, the clipping and logits paths of the cross-entropies, gradients against finite
//! differences, and the errors.

use ferroflow_core::testing::check_gradients;
use ferroflow_core::{DType, Tensor};
use ferroflow_keras::activations::Activation;
use ferroflow_keras::losses::{
    self, BinaryCrossentropy, CategoricalCrossentropy, CategoricalHinge, CosineSimilarity, Hinge,
    Huber, KLDivergence, LogCosh, Loss, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredError, MeanSquaredLogarithmicError, Poisson, Reduction,
    SparseCategoricalCrossentropy, SquaredHinge,
};

const EPS: f64 = 1e-7;

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w} (all: {got:?} vs {want:?})"
        );
    }
}

/// Rows of a row-major (rows, cols) matrix.
fn rows(v: &[f64], cols: usize) -> Vec<&[f64]> {
    v.chunks(cols).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Checks `call` against `per_row(y_row, p_row)` and `compute` (default reduction) against the
/// mean of those.
fn check_rowwise(
    loss: &dyn Loss,
    y: &[f64],
    p: &[f64],
    shape: [usize; 2],
    per_row: impl Fn(&[f64], &[f64]) -> f64,
) {
    let want: Vec<f64> = rows(y, shape[1])
        .into_iter()
        .zip(rows(p, shape[1]))
        .map(|(a, b)| per_row(a, b))
        .collect();
    let yt = t(y, &shape);
    let pt = t(p, &shape);
    let got = loss.call(&yt, &pt).unwrap();
    assert_eq!(got.shape(), &[shape[0]], "{}", loss.name());
    assert_close(&got.to_vec::<f64>().unwrap(), &want, 1e-12);
    let red = loss.compute(&yt, &pt, None).unwrap();
    assert_eq!(red.shape(), &[] as &[usize]);
    assert_close(&[red.item::<f64>().unwrap()], &[mean(&want)], 1e-12);
}

// A fixed, non-trivial regression example (3 samples × 4 values).
const RY: [f64; 12] = [
    0.5, -1.2, 2.0, 0.0, 3.1, 0.7, -0.4, 1.5, -2.2, 0.05, 1.0, 4.0,
];
const RP: [f64; 12] = [0.8, -0.2, 1.1, 0.3, 2.0, 0.9, 0.6, 1.4, -0.1, 0.3, 2.5, 3.2];

#[test]
fn mean_squared_error_matches_formula() {
    check_rowwise(&MeanSquaredError::new(), &RY, &RP, [3, 4], |y, p| {
        mean(
            &y.iter()
                .zip(p)
                .map(|(a, b)| (a - b) * (a - b))
                .collect::<Vec<_>>(),
        )
    });
}

#[test]
fn mean_absolute_error_matches_formula() {
    check_rowwise(&MeanAbsoluteError::new(), &RY, &RP, [3, 4], |y, p| {
        mean(
            &y.iter()
                .zip(p)
                .map(|(a, b)| (a - b).abs())
                .collect::<Vec<_>>(),
        )
    });
}

#[test]
fn mean_absolute_percentage_error_matches_formula() {
    // RY holds a 0 label: its denominator is ε.
    check_rowwise(
        &MeanAbsolutePercentageError::new(),
        &RY,
        &RP,
        [3, 4],
        |y, p| {
            100.0
                * mean(
                    &y.iter()
                        .zip(p)
                        .map(|(a, b)| ((a - b) / a.abs().max(EPS)).abs())
                        .collect::<Vec<_>>(),
                )
        },
    );
}

#[test]
fn mean_squared_logarithmic_error_matches_formula() {
    // Negative values are floored at ε before the log.
    check_rowwise(
        &MeanSquaredLogarithmicError::new(),
        &RY,
        &RP,
        [3, 4],
        |y, p| {
            mean(
                &y.iter()
                    .zip(p)
                    .map(|(a, b)| {
                        let d = (b.max(EPS) + 1.0).ln() - (a.max(EPS) + 1.0).ln();
                        d * d
                    })
                    .collect::<Vec<_>>(),
            )
        },
    );
}

fn huber_ref(y: &[f64], p: &[f64], d: f64) -> f64 {
    mean(
        &y.iter()
            .zip(p)
            .map(|(a, b)| {
                let x = (b - a).abs();
                if x <= d {
                    0.5 * x * x
                } else {
                    d * x - 0.5 * d * d
                }
            })
            .collect::<Vec<_>>(),
    )
}

#[test]
fn huber_matches_formula() {
    assert_eq!(Huber::new().delta, 1.0);
    check_rowwise(&Huber::new(), &RY, &RP, [3, 4], |y, p| huber_ref(y, p, 1.0));
    check_rowwise(&Huber::new().delta(0.25), &RY, &RP, [3, 4], |y, p| {
        huber_ref(y, p, 0.25)
    });
}

#[test]
fn log_cosh_matches_formula() {
    check_rowwise(&LogCosh::new(), &RY, &RP, [3, 4], |y, p| {
        mean(
            &y.iter()
                .zip(p)
                .map(|(a, b)| (b - a).cosh().ln())
                .collect::<Vec<_>>(),
        )
    });
    // No overflow far out: log cosh(x) ≈ |x| - ln 2.
    let l = LogCosh::new()
        .call(&t(&[0.0], &[1, 1]), &t(&[1000.0], &[1, 1]))
        .unwrap();
    assert_close(&l.to_vec::<f64>().unwrap(), &[1000.0 - 2f64.ln()], 1e-12);
}

fn cosine_ref(a: &[f64], b: &[f64]) -> f64 {
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt().max(EPS);
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt().max(EPS);
    -a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (na * nb)
}

#[test]
fn cosine_similarity_matches_formula() {
    check_rowwise(&CosineSimilarity::new(), &RY, &RP, [3, 4], cosine_ref);
    // axis = 0: one value per column.
    let got = CosineSimilarity::new()
        .axis(0)
        .call(&t(&RY, &[3, 4]), &t(&RP, &[3, 4]))
        .unwrap();
    let want: Vec<f64> = (0..4)
        .map(|c| {
            let a: Vec<f64> = (0..3).map(|r| RY[r * 4 + c]).collect();
            let b: Vec<f64> = (0..3).map(|r| RP[r * 4 + c]).collect();
            cosine_ref(&a, &b)
        })
        .collect();
    assert_close(&got.to_vec::<f64>().unwrap(), &want, 1e-12);
    // Same direction → -1, opposite → 1, a zero vector → 0.
    let got = CosineSimilarity::new()
        .call(
            &t(&[1.0, 2.0, 1.0, 2.0, 0.0, 0.0], &[3, 2]),
            &t(&[2.0, 4.0, -1.0, -2.0, 1.0, 1.0], &[3, 2]),
        )
        .unwrap();
    assert_close(&got.to_vec::<f64>().unwrap(), &[-1.0, 1.0, 0.0], 1e-12);
}

// Probability-like examples (3 samples × 3 classes), rows not exactly normalised.
const PY: [f64; 9] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.2, 0.3, 0.5];
const PP: [f64; 9] = [0.7, 0.2, 0.1, 0.3, 0.3, 0.4, 0.25, 0.35, 0.45];

#[test]
fn kl_divergence_matches_formula() {
    check_rowwise(&KLDivergence::new(), &PY, &PP, [3, 3], |y, p| {
        y.iter()
            .zip(p)
            .map(|(a, b)| {
                let a = a.clamp(EPS, 1.0);
                let b = b.clamp(EPS, 1.0);
                a * (a / b).ln()
            })
            .sum()
    });
}

#[test]
fn poisson_matches_formula() {
    let y = [2.0, 0.0, 1.0, 3.0, 1.0, 0.0];
    let p = [1.5, 0.3, 0.9, 2.2, 0.01, 0.7];
    check_rowwise(&Poisson::new(), &y, &p, [2, 3], |y, p| {
        mean(
            &y.iter()
                .zip(p)
                .map(|(a, b)| b - a * (b + EPS).ln())
                .collect::<Vec<_>>(),
        )
    });
}

fn hinge_ref(y: &[f64], p: &[f64], squared: bool, convert: bool) -> f64 {
    mean(
        &y.iter()
            .zip(p)
            .map(|(a, b)| {
                let a = if convert { 2.0 * a - 1.0 } else { *a };
                let m = (1.0 - a * b).max(0.0);
                if squared {
                    m * m
                } else {
                    m
                }
            })
            .collect::<Vec<_>>(),
    )
}

#[test]
fn hinge_losses_match_formulas() {
    let y01 = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0];
    let ypm = [-1.0, 1.0, 1.0, -1.0, 1.0, -1.0];
    let p = [0.3, 0.8, -0.4, -1.6, 2.0, 0.2];
    check_rowwise(&Hinge::new(), &y01, &p, [2, 3], |y, p| {
        hinge_ref(y, p, false, true)
    });
    check_rowwise(&Hinge::new(), &ypm, &p, [2, 3], |y, p| {
        hinge_ref(y, p, false, false)
    });
    check_rowwise(&SquaredHinge::new(), &y01, &p, [2, 3], |y, p| {
        hinge_ref(y, p, true, true)
    });
    check_rowwise(&SquaredHinge::new(), &ypm, &p, [2, 3], |y, p| {
        hinge_ref(y, p, true, false)
    });
    // 0/1 and -1/1 labels give the same loss.
    let a = Hinge::new()
        .call(&t(&y01, &[2, 3]), &t(&p, &[2, 3]))
        .unwrap();
    let b = Hinge::new()
        .call(&t(&ypm, &[2, 3]), &t(&p, &[2, 3]))
        .unwrap();
    assert_eq!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
}

#[test]
fn categorical_hinge_matches_formula() {
    let y = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
    let p = [0.2, 0.5, 0.3, 0.1, 0.6, 0.3, 0.05, 0.05, 2.0];
    check_rowwise(&CategoricalHinge::new(), &y, &p, [3, 3], |y, p| {
        let pos: f64 = y.iter().zip(p).map(|(a, b)| a * b).sum();
        let neg = y
            .iter()
            .zip(p)
            .map(|(a, b)| (1.0 - a) * b)
            .fold(f64::NEG_INFINITY, f64::max);
        (neg - pos + 1.0).max(0.0)
    });
}

fn bce_ref(y: &[f64], p: &[f64]) -> f64 {
    mean(
        &y.iter()
            .zip(p)
            .map(|(a, b)| {
                let b = b.clamp(EPS, 1.0 - EPS);
                -(a * b.ln() + (1.0 - a) * (1.0 - b).ln())
            })
            .collect::<Vec<_>>(),
    )
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn binary_crossentropy_matches_formula() {
    let y = [1.0, 0.0, 1.0, 0.0, 0.3, 1.0];
    let p = [0.9, 0.2, 0.4, 0.65, 0.5, 0.999];
    check_rowwise(&BinaryCrossentropy::new(), &y, &p, [2, 3], bce_ref);
    // Label smoothing: y·(1-s) + s/2.
    let s = 0.2;
    check_rowwise(
        &BinaryCrossentropy::new().label_smoothing(s),
        &y,
        &p,
        [2, 3],
        |y, p| {
            let ys: Vec<f64> = y.iter().map(|a| a * (1.0 - s) + 0.5 * s).collect();
            bce_ref(&ys, p)
        },
    );
    // axis = 0: the mean over the batch axis, one value per column.
    let got = BinaryCrossentropy::new()
        .axis(0)
        .call(&t(&y, &[2, 3]), &t(&p, &[2, 3]))
        .unwrap();
    let want: Vec<f64> = (0..3)
        .map(|c| bce_ref(&[y[c], y[3 + c]], &[p[c], p[3 + c]]))
        .collect();
    assert_close(&got.to_vec::<f64>().unwrap(), &want, 1e-12);
}

#[test]
fn binary_crossentropy_clips_probabilities() {
    // A 0 probability for a positive label, and 1 for a negative one: -ln(1e-7) each.
    let y = t(&[1.0, 0.0], &[1, 2]);
    let p = t(&[0.0, 1.0], &[1, 2]);
    let l = BinaryCrossentropy::new().call(&y, &p).unwrap();
    assert_close(&l.to_vec::<f64>().unwrap(), &[-(1e-7f64).ln()], 1e-6);
    assert!((l.to_vec::<f64>().unwrap()[0] - 16.118).abs() < 1e-3);
    // Perfect predictions are clipped too: the loss is -ln(1 - 1e-7) ≈ 1e-7, not 0.
    let l = BinaryCrossentropy::new()
        .call(&t(&[1.0], &[1, 1]), &t(&[1.0], &[1, 1]))
        .unwrap();
    assert_close(&l.to_vec::<f64>().unwrap(), &[-(1.0 - 1e-7f64).ln()], 1e-9);
}

#[test]
fn binary_crossentropy_from_logits_equals_probabilities() {
    let y = [1.0, 0.0, 1.0, 0.0, 0.3, 1.0];
    let z = [2.0, -1.5, -0.3, 0.7, 0.0, 4.0];
    let p: Vec<f64> = z.iter().map(|&x| sigmoid(x)).collect();
    let a = BinaryCrossentropy::new()
        .from_logits(true)
        .call(&t(&y, &[2, 3]), &t(&z, &[2, 3]))
        .unwrap();
    let b = BinaryCrossentropy::new()
        .call(&t(&y, &[2, 3]), &t(&p, &[2, 3]))
        .unwrap();
    assert_close(
        &a.to_vec::<f64>().unwrap(),
        &b.to_vec::<f64>().unwrap(),
        1e-12,
    );
    // And the logits formula itself: max(z,0) - z·y + ln(1 + e^-|z|).
    let want: Vec<f64> = rows(&y, 3)
        .into_iter()
        .zip(rows(&z, 3))
        .map(|(y, z)| {
            mean(
                &y.iter()
                    .zip(z)
                    .map(|(a, x)| x.max(0.0) - x * a + (-x.abs()).exp().ln_1p())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_close(&a.to_vec::<f64>().unwrap(), &want, 1e-12);
}

#[test]
fn binary_crossentropy_uses_sigmoid_logits() {
    // Keras (TF backend) computes the loss of a sigmoid output from its logits: a saturated wrong
    // prediction costs its full logit, not the clipped 16.118.
    let logits = t(&[200.0, -3.0], &[2, 1]);
    let y = t(&[0.0, 1.0], &[2, 1]);
    let p = Activation::Sigmoid.apply(&logits).unwrap();
    let l = BinaryCrossentropy::new().call(&y, &p).unwrap();
    let want = [200.0, 3.0 + (-3f64).exp().ln_1p()];
    assert_close(&l.to_vec::<f64>().unwrap(), &want, 1e-12);
    // The same values as a plain tensor take the clipped path.
    let plain = t(&p.to_vec::<f64>().unwrap(), &[2, 1]);
    let l = BinaryCrossentropy::new()
        .call(&y, &plain)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!((l[0] - 16.118).abs() < 1e-3, "{l:?}");
    // A softmax output is not a sigmoid's: BCE keeps the probability path.
    let sm = Activation::Softmax
        .apply(&t(&[200.0, 0.0], &[1, 2]))
        .unwrap();
    let l = BinaryCrossentropy::new()
        .call(&t(&[0.0, 1.0], &[1, 2]), &sm)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert_close(&l, &[-(1e-7f64).ln()], 1e-6);
}

fn cce_ref(y: &[f64], p: &[f64]) -> f64 {
    let s: f64 = p.iter().sum();
    -y.iter()
        .zip(p)
        .map(|(a, b)| a * (b / s).clamp(EPS, 1.0 - EPS).ln())
        .sum::<f64>()
}

fn log_softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
    z.iter().map(|x| x - lse).collect()
}

#[test]
fn categorical_crossentropy_matches_formula() {
    // The third prediction row sums to 1.05: it is normalised first.
    check_rowwise(&CategoricalCrossentropy::new(), &PY, &PP, [3, 3], cce_ref);
    let s = 0.1;
    check_rowwise(
        &CategoricalCrossentropy::new().label_smoothing(s),
        &PY,
        &PP,
        [3, 3],
        |y, p| {
            let ys: Vec<f64> = y.iter().map(|a| a * (1.0 - s) + s / 3.0).collect();
            cce_ref(&ys, p)
        },
    );
    // axis = 0: classes along the first axis.
    let got = CategoricalCrossentropy::new()
        .axis(0)
        .call(&t(&PY, &[3, 3]), &t(&PP, &[3, 3]))
        .unwrap();
    let want: Vec<f64> = (0..3)
        .map(|c| {
            let y: Vec<f64> = (0..3).map(|r| PY[r * 3 + c]).collect();
            let p: Vec<f64> = (0..3).map(|r| PP[r * 3 + c]).collect();
            cce_ref(&y, &p)
        })
        .collect();
    assert_close(&got.to_vec::<f64>().unwrap(), &want, 1e-12);
}

#[test]
fn categorical_crossentropy_clips_probabilities() {
    let y = t(&[0.0, 1.0, 0.0], &[1, 3]);
    let p = t(&[0.6, 0.0, 0.4], &[1, 3]);
    let l = CategoricalCrossentropy::new().call(&y, &p).unwrap();
    assert_close(&l.to_vec::<f64>().unwrap(), &[-(1e-7f64).ln()], 1e-9);
    // In float32 too.
    let y32 = Tensor::from_vec(vec![0.0f32, 1.0, 0.0], &[1, 3]).unwrap();
    let p32 = Tensor::from_vec(vec![0.6f32, 0.0, 0.4], &[1, 3]).unwrap();
    let l = CategoricalCrossentropy::new().call(&y32, &p32).unwrap();
    assert_eq!(l.dtype(), DType::F32);
    assert!((l.to_vec::<f32>().unwrap()[0] - 16.118).abs() < 1e-3);
}

#[test]
fn categorical_crossentropy_from_logits_equals_probabilities() {
    let z = [1.0, -0.5, 0.3, 2.0, 2.5, -1.0, 0.0, 0.1, -0.2];
    let p: Vec<f64> = rows(&z, 3)
        .into_iter()
        .flat_map(|r| log_softmax(r).into_iter().map(f64::exp))
        .collect();
    let a = CategoricalCrossentropy::new()
        .from_logits(true)
        .call(&t(&PY, &[3, 3]), &t(&z, &[3, 3]))
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let b = CategoricalCrossentropy::new()
        .call(&t(&PY, &[3, 3]), &t(&p, &[3, 3]))
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert_close(&a, &b, 1e-12);
    let want: Vec<f64> = rows(&PY, 3)
        .into_iter()
        .zip(rows(&z, 3))
        .map(|(y, z)| {
            -y.iter()
                .zip(log_softmax(z))
                .map(|(a, l)| a * l)
                .sum::<f64>()
        })
        .collect();
    assert_close(&a, &want, 1e-12);
    // Label smoothing on the logits path.
    let s = 0.3;
    let a = CategoricalCrossentropy::new()
        .from_logits(true)
        .label_smoothing(s)
        .call(&t(&PY, &[3, 3]), &t(&z, &[3, 3]))
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let want: Vec<f64> = rows(&PY, 3)
        .into_iter()
        .zip(rows(&z, 3))
        .map(|(y, z)| {
            -y.iter()
                .zip(log_softmax(z))
                .map(|(a, l)| (a * (1.0 - s) + s / 3.0) * l)
                .sum::<f64>()
        })
        .collect();
    assert_close(&a, &want, 1e-12);
}

#[test]
fn categorical_crossentropy_uses_softmax_logits() {
    // Keras verified: a saturated wrong softmax prediction gives 200.0, from the logits.
    let logits = t(&[0.0, 200.0, 1.0, 2.0, 3.0, 0.5], &[2, 3]);
    let y = t(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0], &[2, 3]);
    let p = Activation::Softmax.apply(&logits).unwrap();
    let l = CategoricalCrossentropy::new()
        .call(&y, &p)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let want = [
        -log_softmax(&[0.0, 200.0, 1.0])[0],
        -log_softmax(&[2.0, 3.0, 0.5])[2],
    ];
    assert!((want[0] - 200.0).abs() < 1e-9);
    assert_close(&l, &want, 1e-12);
    // from_logits=True on a softmax output still uses the logits (as Keras, which warns).
    let l2 = CategoricalCrossentropy::new()
        .from_logits(true)
        .call(&y, &p)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert_close(&l2, &want, 1e-12);
    // The same probabilities as a plain tensor are clipped.
    let plain = t(&p.to_vec::<f64>().unwrap(), &[2, 3]);
    let l = CategoricalCrossentropy::new()
        .call(&y, &plain)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!((l[0] - 16.118).abs() < 1e-3, "{l:?}");
    // Sparse labels too.
    let labels = Tensor::from_vec(vec![0i64, 2], &[2]).unwrap();
    let l = SparseCategoricalCrossentropy::new()
        .call(&labels, &p)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert_close(&l, &want, 1e-12);
}

#[test]
fn sparse_categorical_crossentropy_matches_formula() {
    let labels = [0.0, 1.0, 2.0];
    let want: Vec<f64> = rows(&PP, 3)
        .into_iter()
        .zip(labels)
        .map(|(p, l)| {
            // Keras: softmax cross-entropy of log(clip(p)), i.e. -log(p_l / Σp) after clipping.
            let c: Vec<f64> = p.iter().map(|x| x.clamp(EPS, 1.0 - EPS)).collect();
            -(c[l as usize] / c.iter().sum::<f64>()).ln()
        })
        .collect();
    for y in [
        t(&labels, &[3]),
        t(&labels, &[3, 1]),
        Tensor::from_vec(vec![0i32, 1, 2], &[3]).unwrap(),
    ] {
        let l = SparseCategoricalCrossentropy::new()
            .call(&y, &t(&PP, &[3, 3]))
            .unwrap();
        assert_close(&l.to_vec::<f64>().unwrap(), &want, 1e-12);
    }
    let l = SparseCategoricalCrossentropy::new()
        .compute(&t(&labels, &[3]), &t(&PP, &[3, 3]), None)
        .unwrap();
    assert_close(&[l.item::<f64>().unwrap()], &[mean(&want)], 1e-12);
    // Out-of-range labels are an error.
    let e = SparseCategoricalCrossentropy::new()
        .call(&t(&[0.0, 3.0, 1.0], &[3]), &t(&PP, &[3, 3]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sparse_categorical_crossentropy"), "{e}");
}

#[test]
fn sparse_categorical_crossentropy_ignore_class() {
    let z = [
        1.0, -0.5, 0.3, 2.0, 2.5, -1.0, 0.0, 0.1, -0.2, 0.4, 0.4, 0.9,
    ];
    let labels = Tensor::from_vec(vec![2i64, -1, 0, 1], &[4]).unwrap();
    let loss = SparseCategoricalCrossentropy::new()
        .from_logits(true)
        .ignore_class(-1);
    let per: Vec<f64> = rows(&z, 3)
        .into_iter()
        .zip([2i64, -1, 0, 1])
        .map(|(z, l)| {
            if l < 0 {
                0.0
            } else {
                -log_softmax(z)[l as usize]
            }
        })
        .collect();
    let l = loss.call(&labels, &t(&z, &[4, 3])).unwrap();
    assert_close(&l.to_vec::<f64>().unwrap(), &per, 1e-12);
    // sum_over_batch_size divides by the 3 valid samples (+ ε), as Keras's mask.
    let r = loss.compute(&labels, &t(&z, &[4, 3]), None).unwrap();
    let total: f64 = per.iter().sum();
    assert_close(
        &[r.item::<f64>().unwrap()],
        &[total * 4.0 / (3.0 + EPS) / 4.0],
        1e-12,
    );
    // sum ignores them.
    let r = loss
        .clone()
        .reduction(Reduction::Sum)
        .compute(&labels, &t(&z, &[4, 3]), None)
        .unwrap();
    assert_close(&[r.item::<f64>().unwrap()], &[total], 1e-12);
}

#[test]
fn reductions() {
    // Per-sample MSE: [2, 3, 1, 0.5].
    let y = t(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], &[4, 2]);
    let p = t(
        &[2.0, 0.0, 2.0, 2.0 * 0.5f64.sqrt() * 1.0, 1.0, 1.0, 1.0, 0.0],
        &[4, 2],
    );
    let per: Vec<f64> = rows(&p.to_vec::<f64>().unwrap(), 2)
        .into_iter()
        .map(|r| (r[0] * r[0] + r[1] * r[1]) / 2.0)
        .collect();
    let w = [1.0, 1.0, 0.0, 0.0];
    let wt = t(&w, &[4]);
    let weighted: Vec<f64> = per.iter().zip(w).map(|(l, w)| l * w).collect();
    let sum: f64 = weighted.iter().sum();
    let run = |r: Reduction, sw: Option<&Tensor>| {
        MeanSquaredError::new()
            .reduction(r)
            .compute(&y, &p, sw)
            .unwrap()
    };
    // sum_over_batch_size: Σ(l·w) / number of elements, not / Σw.
    let v = run(Reduction::SumOverBatchSize, Some(&wt))
        .item::<f64>()
        .unwrap();
    assert_close(&[v], &[sum / 4.0], 1e-12);
    let v = run(Reduction::Sum, Some(&wt)).item::<f64>().unwrap();
    assert_close(&[v], &[sum], 1e-12);
    let v = run(Reduction::MeanWithSampleWeight, Some(&wt))
        .item::<f64>()
        .unwrap();
    assert_close(&[v], &[sum / 2.0], 1e-12);
    let v = run(Reduction::None, Some(&wt));
    assert_eq!(v.shape(), &[4]);
    assert_close(&v.to_vec::<f64>().unwrap(), &weighted, 1e-12);
    // Without weights.
    let v = run(Reduction::None, None).to_vec::<f64>().unwrap();
    assert_close(&v, &per, 1e-12);
    let v = run(Reduction::MeanWithSampleWeight, None)
        .item::<f64>()
        .unwrap();
    assert_close(&[v], &[mean(&per)], 1e-12);
    let v = run(Reduction::Sum, None).item::<f64>().unwrap();
    assert_close(&[v], &[per.iter().sum()], 1e-12);
    // (batch, 1) weights and float32 weights apply per sample too.
    let w2 = Tensor::from_vec(vec![1.0f32, 1.0, 0.0, 0.0], &[4, 1]).unwrap();
    let v = run(Reduction::SumOverBatchSize, Some(&w2))
        .item::<f64>()
        .unwrap();
    assert_close(&[v], &[sum / 4.0], 1e-12);
    // All-zero weights: mean_with_sample_weight is 0 (divide_no_nan).
    let v = run(Reduction::MeanWithSampleWeight, Some(&t(&[0.0; 4], &[4])))
        .item::<f64>()
        .unwrap();
    assert_eq!(v, 0.0);
    // Bad weights.
    let e = MeanSquaredError::new()
        .compute(&y, &p, Some(&t(&[1.0, 2.0, 3.0], &[3])))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mean_squared_error") && e.contains("(3,)") && e.contains("(4,)"),
        "{e}"
    );
    // Keras's verified example: MSE with w = [1, 1, 0, 0] → 1.25 (Σ(l·w) = 5 over 4 samples).
    let y = t(&[0.0, 0.0, 0.0, 0.0], &[4, 1]);
    let p = t(&[2.0, 1.0, 7.0, 9.0], &[4, 1]);
    let v = MeanSquaredError::new().compute(&y, &p, Some(&wt)).unwrap();
    assert_close(&[v.item::<f64>().unwrap()], &[1.25], 1e-12);
}

#[test]
fn reduction_names() {
    assert_eq!(Reduction::default(), Reduction::SumOverBatchSize);
    assert_eq!(Reduction::get("mean").unwrap(), Reduction::SumOverBatchSize);
    for r in [
        Reduction::SumOverBatchSize,
        Reduction::Sum,
        Reduction::MeanWithSampleWeight,
        Reduction::None,
    ] {
        assert_eq!(Reduction::get(r.name()).unwrap(), r);
    }
    let e = Reduction::get("avg").unwrap_err().to_string();
    assert!(e.contains("sum_over_batch_size"), "{e}");
}

/// Every loss with a y_true and an in-range y_pred (away from kinks and clip bounds) for the
/// gradient checks.
/// A loss with its `y_true` and `y_pred` values (shape (4, 3)).
type Case = (Box<dyn Loss>, Vec<f64>, Vec<f64>);

fn all_losses() -> Vec<Case> {
    let reg_y = RY.to_vec();
    let reg_p = RP.to_vec();
    let pos_p = vec![0.8, 0.2, 1.1, 0.3, 2.0, 0.9, 0.6, 1.4, 0.1, 0.3, 2.5, 3.2];
    let prob_y = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.2, 0.3, 0.5, 0.0, 0.0, 1.0];
    let prob_p = vec![
        0.7, 0.2, 0.1, 0.3, 0.3, 0.4, 0.25, 0.35, 0.45, 0.1, 0.6, 0.3,
    ];
    let bin_y = vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0];
    // No hinge margin exactly 0 and no tie in the categorical hinge's max (kinks).
    let logits = vec![
        1.2, -0.5, 0.3, 2.0, 2.5, -1.0, 0.0, 0.1, -0.2, 0.4, 0.45, 0.9,
    ];
    vec![
        (
            Box::new(MeanSquaredError::new()) as Box<dyn Loss>,
            reg_y.clone(),
            reg_p.clone(),
        ),
        (
            Box::new(MeanAbsoluteError::new()),
            reg_y.clone(),
            reg_p.clone(),
        ),
        // No 0 label here: its ε denominator makes the loss ~1e8 and finite differences imprecise.
        (
            Box::new(MeanAbsolutePercentageError::new()),
            pos_p.clone(),
            reg_p.clone(),
        ),
        (
            Box::new(MeanSquaredLogarithmicError::new()),
            reg_y.clone(),
            pos_p.clone(),
        ),
        (Box::new(Huber::new()), reg_y.clone(), reg_p.clone()),
        (Box::new(LogCosh::new()), reg_y.clone(), reg_p.clone()),
        (
            Box::new(CosineSimilarity::new()),
            reg_y.clone(),
            reg_p.clone(),
        ),
        (
            Box::new(KLDivergence::new()),
            prob_y.clone(),
            prob_p.clone(),
        ),
        (
            Box::new(Poisson::new()),
            pos_p.clone(),
            reg_p.iter().map(|x| x.abs() + 0.1).collect(),
        ),
        (Box::new(Hinge::new()), bin_y.clone(), logits.clone()),
        (Box::new(SquaredHinge::new()), bin_y.clone(), logits.clone()),
        (
            Box::new(CategoricalHinge::new()),
            prob_y.clone(),
            logits.clone(),
        ),
        (
            Box::new(BinaryCrossentropy::new()),
            bin_y.clone(),
            prob_p.clone(),
        ),
        (
            Box::new(BinaryCrossentropy::new().label_smoothing(0.1)),
            bin_y.clone(),
            prob_p.clone(),
        ),
        (
            Box::new(BinaryCrossentropy::new().from_logits(true)),
            bin_y.clone(),
            logits.clone(),
        ),
        (
            Box::new(CategoricalCrossentropy::new()),
            prob_y.clone(),
            prob_p.clone(),
        ),
        (
            Box::new(CategoricalCrossentropy::new().from_logits(true)),
            prob_y.clone(),
            logits.clone(),
        ),
    ]
}

#[test]
fn gradients_match_finite_differences() {
    for (loss, y, p) in all_losses() {
        let yt = t(&y, &[4, 3]);
        let pt = t(&p, &[4, 3]);
        check_gradients(|x: &[Tensor]| loss.call(&yt, &x[0]), &[pt.clone()], &[0])
            .unwrap_or_else(|e| panic!("{} (call): {e}", loss.name()));
        check_gradients(|x: &[Tensor]| loss.compute(&yt, &x[0], None), &[pt], &[0])
            .unwrap_or_else(|e| panic!("{} (compute): {e}", loss.name()));
    }
    // Sparse categorical cross-entropy, from probabilities and from logits.
    let labels = Tensor::from_vec(vec![0i64, 2, 1, 1], &[4]).unwrap();
    let pp = t(
        &[
            0.7, 0.2, 0.1, 0.3, 0.3, 0.4, 0.25, 0.35, 0.45, 0.1, 0.6, 0.3,
        ],
        &[4, 3],
    );
    for l in [
        SparseCategoricalCrossentropy::new(),
        SparseCategoricalCrossentropy::new().from_logits(true),
    ] {
        check_gradients(
            |x: &[Tensor]| l.compute(&labels, &x[0], None),
            &[pp.clone()],
            &[0],
        )
        .unwrap();
    }
}

#[test]
fn losses_work_in_float32() {
    for (loss, y, p) in all_losses() {
        let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        let p32: Vec<f32> = p.iter().map(|&v| v as f32).collect();
        let l32 = loss
            .call(
                &Tensor::from_vec(y32, &[4, 3]).unwrap(),
                &Tensor::from_vec(p32.clone(), &[4, 3]).unwrap(),
            )
            .unwrap();
        assert_eq!(l32.dtype(), DType::F32, "{}", loss.name());
        // Compare with float64 on the same (rounded) inputs.
        let p64: Vec<f64> = p32.iter().map(|&v| v as f64).collect();
        let y64: Vec<f64> = y.iter().map(|&v| v as f32 as f64).collect();
        let l64 = loss.call(&t(&y64, &[4, 3]), &t(&p64, &[4, 3])).unwrap();
        let a: Vec<f64> = l32
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect();
        assert_close(&a, &l64.to_vec::<f64>().unwrap(), 1e-4);
    }
}

#[test]
fn shape_mismatch_errors_name_the_loss_and_shapes() {
    let y = t(&[0.0; 6], &[2, 3]);
    let p = t(&[0.5; 8], &[2, 4]);
    for (loss, _, _) in all_losses() {
        let e = loss.call(&y, &p).unwrap_err().to_string();
        assert!(
            e.contains(loss.name()) && e.contains("(2, 3)") && e.contains("(2, 4)"),
            "{}: {e}",
            loss.name()
        );
    }
    let e = SparseCategoricalCrossentropy::new()
        .call(&t(&[0.0; 3], &[3]), &p)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sparse_categorical_crossentropy") && e.contains("(3,)"),
        "{e}"
    );
    // (batch,) labels against (batch, 1) outputs are aligned, as Keras does.
    let l = MeanSquaredError::new()
        .call(&t(&[1.0, 2.0], &[2]), &t(&[0.0, 0.0], &[2, 1]))
        .unwrap();
    assert_eq!(l.to_vec::<f64>().unwrap(), vec![1.0, 4.0]);
    let l = MeanSquaredError::new()
        .call(&t(&[1.0, 2.0], &[2, 1]), &t(&[0.0, 0.0], &[2]))
        .unwrap();
    assert_eq!(l.to_vec::<f64>().unwrap(), vec![1.0, 4.0]);
    // Bad arguments.
    let e = BinaryCrossentropy::new()
        .axis(2)
        .call(&y, &y)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("binary_crossentropy") && e.contains("axis"),
        "{e}"
    );
    let e = CategoricalCrossentropy::new()
        .label_smoothing(1.5)
        .call(&y, &y)
        .unwrap_err()
        .to_string();
    assert!(e.contains("label_smoothing"), "{e}");
}

#[test]
fn get_resolves_keras_names() {
    let cases = [
        ("mse", "mean_squared_error"),
        ("MSE", "mean_squared_error"),
        ("mean_squared_error", "mean_squared_error"),
        ("MeanSquaredError", "mean_squared_error"),
        ("mae", "mean_absolute_error"),
        ("mean_absolute_error", "mean_absolute_error"),
        ("MeanAbsoluteError", "mean_absolute_error"),
        ("mape", "mean_absolute_percentage_error"),
        (
            "mean_absolute_percentage_error",
            "mean_absolute_percentage_error",
        ),
        ("msle", "mean_squared_logarithmic_error"),
        (
            "mean_squared_logarithmic_error",
            "mean_squared_logarithmic_error",
        ),
        ("kld", "kl_divergence"),
        ("kl_divergence", "kl_divergence"),
        ("KLDivergence", "kl_divergence"),
        ("log_cosh", "log_cosh"),
        ("LogCosh", "log_cosh"),
        ("huber", "huber"),
        ("Huber", "huber"),
        ("bce", "binary_crossentropy"),
        ("binary_crossentropy", "binary_crossentropy"),
        ("BinaryCrossentropy", "binary_crossentropy"),
        ("categorical_crossentropy", "categorical_crossentropy"),
        ("CategoricalCrossentropy", "categorical_crossentropy"),
        (
            "sparse_categorical_crossentropy",
            "sparse_categorical_crossentropy",
        ),
        (
            "SparseCategoricalCrossentropy",
            "sparse_categorical_crossentropy",
        ),
        ("hinge", "hinge"),
        ("squared_hinge", "squared_hinge"),
        ("categorical_hinge", "categorical_hinge"),
        ("poisson", "poisson"),
        ("cosine_similarity", "cosine_similarity"),
        ("CosineSimilarity", "cosine_similarity"),
    ];
    for (name, keras) in cases {
        let l = losses::get(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(l.name(), keras, "{name}");
        assert_eq!(l.reduction(), Reduction::SumOverBatchSize);
        // A loss's name resolves back to the same loss.
        assert_eq!(losses::get(l.name()).unwrap().name(), keras);
    }
    for name in losses::NAMES {
        assert!(losses::get(name).is_ok(), "{name}");
    }
    // Keras rejects these.
    for bad in [
        "logcosh",
        "huber_loss",
        "kullback_leibler_divergence",
        "msee",
    ] {
        let e = losses::get(bad)
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"))
            .to_string();
        assert!(
            e.contains(bad) && e.contains("mse") && e.contains("log_cosh"),
            "{e}"
        );
    }
}

#[test]
fn clone_loss_keeps_settings() {
    // `compile` copies one loss for every output of a multi-output model.
    let z = t(&[2.0, -1.0, 0.5], &[1, 3]);
    let labels = Tensor::from_vec(vec![1i64], &[1]).unwrap();
    let original = SparseCategoricalCrossentropy::new()
        .from_logits(true)
        .reduction(Reduction::Sum);
    let copy = original.clone_loss().unwrap();
    assert_eq!(copy.reduction(), Reduction::Sum);
    let v = copy
        .compute(&labels, &z, None)
        .unwrap()
        .item::<f64>()
        .unwrap();
    assert_close(&[v], &[-log_softmax(&[2.0, -1.0, 0.5])[1]], 1e-12);
    for (loss, _, _) in all_losses() {
        let copy = loss.clone_loss().unwrap();
        assert_eq!(copy.name(), loss.name());
    }
}

#[test]
fn activation_logits_paths_have_exact_gradients() {
    // Through a softmax/sigmoid activation the gradient wrt the logits is the logits formula's
    // (softmax - y, sigmoid - y), even when saturated — clipping would give 0 there.
    let y = t(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0], &[2, 3]);
    let z = t(&[0.0, 200.0, 1.0, 2.0, 3.0, 0.5], &[2, 3]);
    let cce = CategoricalCrossentropy::new();
    let f = |x: &[Tensor]| cce.compute(&y, &Activation::Softmax.apply(&x[0])?, None);
    check_gradients(f, &[z.clone()], &[0]).unwrap();
    let tape = ferroflow_core::GradientTape::new();
    tape.watch(&z);
    let loss = cce
        .compute(&y, &Activation::Softmax.apply(&z).unwrap(), None)
        .unwrap();
    let g = tape.gradient(&loss, &[&z]).unwrap()[0].clone().unwrap();
    let g = g.to_vec::<f64>().unwrap();
    let sm: Vec<f64> = log_softmax(&[0.0, 200.0, 1.0])
        .iter()
        .map(|l| l.exp())
        .collect();
    // d(mean over 2 samples)/dz = (softmax - y) / 2.
    assert_close(
        &g[..3],
        &[(sm[0] - 1.0) / 2.0, sm[1] / 2.0, sm[2] / 2.0],
        1e-12,
    );

    let yb = t(&[0.0, 1.0, 1.0, 0.0], &[2, 2]);
    let zb = t(&[200.0, -1.0, 0.3, 2.0], &[2, 2]);
    let bce = BinaryCrossentropy::new();
    let f = |x: &[Tensor]| bce.compute(&yb, &Activation::Sigmoid.apply(&x[0])?, None);
    check_gradients(f, &[zb.clone()], &[0]).unwrap();
    let sparse = SparseCategoricalCrossentropy::new();
    let labels = Tensor::from_vec(vec![0i64, 2], &[2]).unwrap();
    let f = |x: &[Tensor]| sparse.compute(&labels, &Activation::Softmax.apply(&x[0])?, None);
    check_gradients(f, &[z], &[0]).unwrap();
}
