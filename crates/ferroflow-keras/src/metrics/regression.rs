//! Regression metrics: `MeanSquaredError`, `MeanAbsoluteError`, `MeanAbsolutePercentageError`
//! and `RootMeanSquaredError`.

use ferroflow_core::{Result, Tensor};

use super::reduce::{sample_weights, Mean};
use super::util::{element_weights, num_samples, same_values};
use super::Metric;

/// The per-sample rows of `y_true` and `y_pred` (the last axis; a rank-1 input is one value per
/// sample), checked to have the same shape.
fn rows(name: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<(Vec<f64>, Vec<f64>, usize)> {
    same_values(name, y_true, y_pred)?;
    let n = if y_pred.rank() <= 1 {
        y_pred.num_elements()
    } else {
        num_samples(y_pred)
    };
    Ok((y_true.to_f64_vec(), y_pred.to_f64_vec(), n))
}

/// A weighted mean over samples of `f(y_true_row, y_pred_row)`.
#[derive(Clone, Debug)]
struct RowMean {
    mean: Mean,
    f: fn(&[f64], &[f64]) -> f64,
}

impl RowMean {
    fn update(&mut self, y_true: &Tensor, y_pred: &Tensor, w: Option<&Tensor>) -> Result<()> {
        let name = self.mean.name().to_string();
        let (t, p, mut n) = rows(&name, y_true, y_pred)?;
        // Weights over the leading axes (e.g. a `[batch, time]` mask of a `[batch, time, 1]`
        // output): one row per weight, as Keras reduces the values to the weights' rank.
        if let Some(w) = w {
            let m = w.num_elements();
            if w.rank() >= 2
                && m > 0
                && w.rank() < y_pred.rank()
                && y_pred.shape()[..w.rank()] == *w.shape()
            {
                n = m;
            }
        }
        let w = sample_weights(&name, w, n)?;
        if n == 0 {
            return Ok(());
        }
        let d = p.len() / n;
        for (i, w) in w.iter().enumerate() {
            let r = i * d..(i + 1) * d;
            self.mean.update_value((self.f)(&t[r.clone()], &p[r]), *w);
        }
        Ok(())
    }
}

macro_rules! row_metric {
    ($(#[$doc:meta])* $t:ident, $default:literal, $f:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $t(RowMean);

        impl $t {
            #[doc = concat!("Named `", $default, "`.")]
            pub fn new() -> Self {
                $t(RowMean { mean: Mean::new($default), f: $f })
            }

            /// The same metric under another name (Keras's `name=`).
            pub fn named(self, name: &str) -> Self {
                $t(RowMean { mean: Mean::new(name), f: self.0.f })
            }
        }

        impl Default for $t {
            fn default() -> Self {
                Self::new()
            }
        }

        impl Metric for $t {
            fn name(&self) -> &str {
                self.0.mean.name()
            }
            fn update_state(
                &mut self,
                y_true: &Tensor,
                y_pred: &Tensor,
                sample_weight: Option<&Tensor>,
            ) -> Result<()> {
                self.0.update(y_true, y_pred, sample_weight)
            }
            fn result(&self) -> Result<Tensor> {
                self.0.mean.result()
            }
            fn reset_state(&mut self) {
                self.0.mean.reset_state()
            }
            /// A Keras `MeanMetricWrapper`: weighted by the output's mask.
            fn supports_output_mask(&self) -> bool {
                true
            }
        }
    };
}

fn mse(t: &[f64], p: &[f64]) -> f64 {
    t.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / t.len().max(1) as f64
}

fn mae(t: &[f64], p: &[f64]) -> f64 {
    t.iter().zip(p).map(|(a, b)| (a - b).abs()).sum::<f64>() / t.len().max(1) as f64
}

/// Keras's `epsilon()`.
const EPSILON: f64 = 1e-7;

fn mape(t: &[f64], p: &[f64]) -> f64 {
    100.0
        * t.iter()
            .zip(p)
            .map(|(a, b)| ((a - b) / a.abs().max(EPSILON)).abs())
            .sum::<f64>()
        / t.len().max(1) as f64
}

row_metric!(
    /// `keras.metrics.MeanSquaredError`: the mean over the last axis of `(y_true - y_pred)²`,
    /// then the (sample-weighted) mean over samples, accumulated over batches.
    ///
    /// ```
    /// use ferroflow_keras::metrics::{MeanSquaredError, Metric};
    /// use ferroflow_core::Tensor;
    /// let mut m = MeanSquaredError::new();
    /// let y = Tensor::from_vec(vec![0.0f32, 1.0, 0.0, 0.0], &[2, 2])?;
    /// let p = Tensor::from_vec(vec![1.0f32, 1.0, 1.0, 0.0], &[2, 2])?;
    /// m.update_state(&y, &p, None)?;
    /// assert_eq!(m.result()?.item::<f32>()?, 0.5);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    MeanSquaredError,
    "mean_squared_error",
    mse
);
row_metric!(
    /// `keras.metrics.MeanAbsoluteError`: the mean over the last axis of `|y_true - y_pred|`,
    /// then the (sample-weighted) mean over samples.
    MeanAbsoluteError,
    "mean_absolute_error",
    mae
);
row_metric!(
    /// `keras.metrics.MeanAbsolutePercentageError`:
    /// `100 · mean(|y_true - y_pred| / max(|y_true|, 1e-7))` over the last axis, then the
    /// (sample-weighted) mean over samples.
    MeanAbsolutePercentageError,
    "mean_absolute_percentage_error",
    mape
);

/// `keras.metrics.RootMeanSquaredError`: `sqrt` of the weighted mean of every squared error seen
/// (the sample weight applies to each of a sample's values, as Keras broadcasts it).
///
/// ```
/// use ferroflow_keras::metrics::{Metric, RootMeanSquaredError};
/// use ferroflow_core::Tensor;
/// let mut m = RootMeanSquaredError::new();
/// let y = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 1.0], &[2, 2])?;
/// let p = Tensor::from_vec(vec![1.0f32, 1.0, 0.0, 0.0], &[2, 2])?;
/// m.update_state(&y, &p, None)?;
/// assert!((m.result()?.item::<f32>()? - 0.75f32.sqrt()).abs() < 1e-6);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RootMeanSquaredError {
    mean: Mean,
}

impl RootMeanSquaredError {
    /// Named `root_mean_squared_error`.
    pub fn new() -> Self {
        RootMeanSquaredError {
            mean: Mean::new("root_mean_squared_error"),
        }
    }

    /// The same metric under another name.
    pub fn named(self, name: &str) -> Self {
        RootMeanSquaredError {
            mean: Mean::new(name),
        }
    }
}

impl Default for RootMeanSquaredError {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for RootMeanSquaredError {
    fn name(&self) -> &str {
        self.mean.name()
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        let name = self.mean.name().to_string();
        let (t, p, n) = rows(&name, y_true, y_pred)?;
        let w = element_weights(&name, sample_weight, n, p.len())?;
        for ((a, b), w) in t.iter().zip(&p).zip(&w) {
            self.mean.update_value((a - b) * (a - b), *w);
        }
        Ok(())
    }

    fn result(&self) -> Result<Tensor> {
        Ok(Tensor::scalar(self.mean.value().sqrt() as f32))
    }

    fn reset_state(&mut self) {
        self.mean.reset_state();
    }
}
