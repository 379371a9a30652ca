//! `FBetaScore` and `F1Score`.

use ferroflow_core::{Error, Result, Tensor};

use super::reduce::sample_weights;
use super::util::result_tensor;
use super::Metric;
use crate::backend::unknown_name;

/// Keras's `backend.epsilon()`.
const EPSILON: f64 = 1e-7;

/// How `FBetaScore` combines the per-class scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FScoreAverage {
    /// No averaging: one score per class (`average=None`, the default).
    None,
    /// Global counts over every class, then one score.
    Micro,
    /// The unweighted mean of the per-class scores.
    Macro,
    /// The per-class scores weighted by each class's (sample-weighted) number of true labels.
    Weighted,
}

/// `keras.metrics.FBetaScore(average=None, beta=1.0, threshold=None)` on `(batch, classes)`
/// labels and predictions. A prediction counts as positive when it is `> threshold`, or with no
/// threshold when it is the row's maximum (and not 0). Per class:
/// `precision = tp / (tp + fp + ε)`, `recall = tp / (tp + fn + ε)`,
/// `f = (1 + β²)·p·r / (β²·p + r + ε)` with `ε = 1e-7`, as Keras computes it. The result is a
/// vector (one score per class) when `average` is `None`, else a scalar.
#[derive(Clone, Debug)]
pub struct FBetaScore {
    name: String,
    average: FScoreAverage,
    beta: f64,
    threshold: Option<f64>,
    tp: Vec<f64>,
    fp: Vec<f64>,
    fn_: Vec<f64>,
    support: Vec<f64>,
    error: Option<Error>,
}

impl FBetaScore {
    /// `average=None`, the given `beta`, no threshold; named `fbeta_score`.
    pub fn new(beta: f64) -> Self {
        let error = (beta <= 0.0).then(|| {
            Error::invalid(
                "fbeta_score",
                format!("beta must be a positive number, got {beta}"),
            )
        });
        FBetaScore {
            name: "fbeta_score".to_string(),
            average: FScoreAverage::None,
            beta,
            threshold: None,
            tp: Vec::new(),
            fp: Vec::new(),
            fn_: Vec::new(),
            support: Vec::new(),
            error,
        }
    }

    /// `average`: `"micro"`, `"macro"`, `"weighted"`, or `"none"` (Keras's `None`).
    pub fn average(mut self, average: &str) -> Self {
        self.average = match average.to_ascii_lowercase().as_str() {
            "none" => FScoreAverage::None,
            "micro" => FScoreAverage::Micro,
            "macro" => FScoreAverage::Macro,
            "weighted" => FScoreAverage::Weighted,
            _ => {
                self.error = Some(unknown_name(
                    "F-score average",
                    average,
                    &["none", "micro", "macro", "weighted"],
                ));
                self.average
            }
        };
        self
    }

    /// Predictions above `t` are positive (instead of each row's maximum).
    pub fn threshold(mut self, t: f64) -> Self {
        self.threshold = Some(t);
        self
    }

    /// Another name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
}

impl Metric for FBetaScore {
    fn name(&self) -> &str {
        &self.name
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if y_pred.rank() != 2 || y_true.shape() != y_pred.shape() {
            return Err(Error::shape(
                &self.name,
                "expects 2D inputs of the same shape (batch_size, output_dim)",
                &[y_true.shape(), y_pred.shape()],
            ));
        }
        let (n, c) = (y_pred.shape()[0], y_pred.shape()[1]);
        if !self.tp.is_empty() && self.tp.len() != c {
            return Err(Error::shape(
                &self.name,
                format!(
                    "the number of classes changed from {} between batches",
                    self.tp.len()
                ),
                &[y_pred.shape()],
            ));
        }
        if self.tp.is_empty() {
            self.tp = vec![0.0; c];
            self.fp = vec![0.0; c];
            self.fn_ = vec![0.0; c];
            self.support = vec![0.0; c];
        }
        let t = y_true.to_f64_vec();
        let p = y_pred.to_f64_vec();
        let w = sample_weights(&self.name, sample_weight, n)?;
        for i in 0..n {
            let row = &p[i * c..(i + 1) * c];
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            for j in 0..c {
                let v = row[j];
                let pred = match self.threshold {
                    Some(th) => v > th,
                    None => v >= max && v.abs() > 1e-9,
                };
                let pred = if pred { 1.0 } else { 0.0 };
                let y = t[i * c + j];
                self.tp[j] += pred * y * w[i];
                self.fp[j] += pred * (1.0 - y) * w[i];
                self.fn_[j] += (1.0 - pred) * y * w[i];
                self.support[j] += y * w[i];
            }
        }
        Ok(())
    }

    fn result(&self) -> Result<Tensor> {
        let b2 = self.beta * self.beta;
        let score = |tp: f64, fp: f64, fn_: f64| {
            let p = tp / (tp + fp + EPSILON);
            let r = tp / (tp + fn_ + EPSILON);
            p * r / (b2 * p + r + EPSILON) * (1.0 + b2)
        };
        if self.average == FScoreAverage::Micro {
            let s = |v: &[f64]| v.iter().sum::<f64>();
            return result_tensor(&[score(s(&self.tp), s(&self.fp), s(&self.fn_))]);
        }
        let f: Vec<f64> = (0..self.tp.len())
            .map(|j| score(self.tp[j], self.fp[j], self.fn_[j]))
            .collect();
        match self.average {
            FScoreAverage::None => {
                let n = f.len();
                let v: Vec<f32> = f.iter().map(|&x| x as f32).collect();
                Tensor::from_vec(v, &[n])
            }
            FScoreAverage::Macro => {
                let m = if f.is_empty() {
                    0.0
                } else {
                    f.iter().sum::<f64>() / f.len() as f64
                };
                Ok(Tensor::scalar(m as f32))
            }
            _ => {
                let total: f64 = self.support.iter().sum::<f64>() + EPSILON;
                let s: f64 = f
                    .iter()
                    .zip(&self.support)
                    .map(|(f, w)| f * w / total)
                    .sum();
                Ok(Tensor::scalar(s as f32))
            }
        }
    }

    fn reset_state(&mut self) {
        for v in [&mut self.tp, &mut self.fp, &mut self.fn_, &mut self.support] {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
    }
}

/// `keras.metrics.F1Score(average=None, threshold=None)`: [`FBetaScore`] with `beta = 1`,
/// named `f1_score`.
///
/// ```
/// use ferroflow_keras::metrics::{F1Score, Metric};
/// use ferroflow_core::Tensor;
/// // Keras's documented example: per-class scores [0.5, 0.8, 0.6667].
/// let mut m = F1Score::new().threshold(0.5);
/// let y = Tensor::from_vec(vec![1.0f32, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0], &[3, 3])?;
/// let p = Tensor::from_vec(vec![0.2f32, 0.6, 0.7, 0.2, 0.6, 0.6, 0.6, 0.8, 0.0], &[3, 3])?;
/// m.update_state(&y, &p, None)?;
/// let r = m.result()?.to_vec::<f32>()?;
/// assert!((r[0] - 0.5).abs() < 1e-5 && (r[1] - 0.8).abs() < 1e-5 && (r[2] - 2.0 / 3.0).abs() < 1e-5);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct F1Score(FBetaScore);

impl F1Score {
    /// `average=None`, no threshold; named `f1_score`.
    pub fn new() -> Self {
        F1Score(FBetaScore::new(1.0).named("f1_score"))
    }

    /// `average`: `"micro"`, `"macro"`, `"weighted"`, or `"none"`.
    pub fn average(self, average: &str) -> Self {
        F1Score(self.0.average(average))
    }

    /// Predictions above `t` are positive (instead of each row's maximum).
    pub fn threshold(self, t: f64) -> Self {
        F1Score(self.0.threshold(t))
    }

    /// Another name.
    pub fn named(self, name: &str) -> Self {
        F1Score(self.0.named(name))
    }
}

impl Default for F1Score {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for F1Score {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        self.0.update_state(y_true, y_pred, sample_weight)
    }
    fn result(&self) -> Result<Tensor> {
        self.0.result()
    }
    fn reset_state(&mut self) {
        self.0.reset_state()
    }
}
