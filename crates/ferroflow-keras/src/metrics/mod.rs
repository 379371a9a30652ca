//! `keras.metrics`: stateful metrics (`update_state`, `result`, `reset_state`), by name
//! (`"accuracy"`) or by value.
//!
//! Metrics accumulate over batches: `result()` after several `update_state` calls is the metric
//! of all the data seen since the last `reset_state` (a weighted mean for the mean-style metrics).
//!
//! ```
//! use ferroflow_keras::metrics::{Metric, SparseCategoricalAccuracy};
//! use ferroflow_core::Tensor;
//! let mut acc = SparseCategoricalAccuracy::new();
//! let y = Tensor::from_vec(vec![1i64, 0], &[2])?;
//! let p = Tensor::from_vec(vec![0.2f32, 0.8, 0.6, 0.4], &[2, 2])?;
//! acc.update_state(&y, &p, None)?;
//! assert_eq!(acc.result()?.item::<f32>()?, 1.0);
//! let p2 = Tensor::from_vec(vec![0.9f32, 0.1, 0.9, 0.1], &[2, 2])?;
//! acc.update_state(&y, &p2, None)?; // streaming: 3 right out of 4
//! assert_eq!(acc.result()?.item::<f32>()?, 0.75);
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

mod accuracy;
mod confusion;
mod confusion_matrix;
mod f_score;
mod masked;
mod reduce;
mod regression;
mod top_k;
mod util;

pub use accuracy::{Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy};
pub use confusion::{AucCurve, AucSummation, Precision, Recall, AUC};
pub use confusion_matrix::ConfusionMatrix;
pub use f_score::{F1Score, FBetaScore, FScoreAverage};
pub use masked::update_with_mask;
pub(crate) use masked::{update_output_metrics, OutputMaskState};
pub use reduce::{Mean, MeanMetricWrapper, Sum};
pub use regression::{
    MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError, RootMeanSquaredError,
};
pub use top_k::{SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy};

use ferroflow_core::{Result, Tensor};

use crate::backend::{unknown_name, Arg};

/// A Keras metric.
pub trait Metric: Send {
    /// The name used in logs (`"accuracy"`, `"val_accuracy"` for validation).
    fn name(&self) -> &str;

    /// Accumulates one batch.
    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()>;

    /// The metric over everything accumulated (a float32 scalar for most metrics).
    fn result(&self) -> Result<Tensor>;

    /// Forgets everything accumulated.
    fn reset_state(&mut self);

    /// Whether `fit`/`evaluate` weight this metric's values by the mask of the model output it
    /// watches (e.g. after `Embedding(mask_zero=True)` → `LSTM(return_sequences=True)`), so it
    /// counts the kept steps only. Keras's `MeanMetricWrapper` (the accuracies, MSE/MAE/MAPE,
    /// top-k) reads `y_pred`'s `_keras_mask` and applies it as a sample weight; its other
    /// metrics (`Mean`, `RootMeanSquaredError`, AUC, precision, recall, F-scores) ignore the
    /// mask. False by default.
    fn supports_output_mask(&self) -> bool {
        false
    }
}

/// `"accuracy"` / `"acc"` as Keras resolves it in `compile`, from the shapes of the first batch:
/// predictions with last dimension 1 → `BinaryAccuracy`; labels of lower rank than the
/// predictions, or labels with last dimension 1 against wider predictions →
/// `SparseCategoricalAccuracy`; otherwise `CategoricalAccuracy`. Logged under the name given.
pub struct AutoAccuracy {
    name: String,
    inner: Option<Box<dyn Metric>>,
}

impl AutoAccuracy {
    /// Resolves on the first `update_state`; logs as `name`.
    pub fn new(name: &str) -> AutoAccuracy {
        AutoAccuracy {
            name: name.to_string(),
            inner: None,
        }
    }

    /// The class chosen by Keras's rule for these shapes.
    pub fn resolve(y_true: &[usize], y_pred: &[usize]) -> Box<dyn Metric> {
        let pred_last = y_pred.last().copied().unwrap_or(1);
        let true_last = y_true.last().copied().unwrap_or(1);
        if pred_last == 1 {
            Box::new(BinaryAccuracy::new())
        } else if y_true.len() < y_pred.len() || (true_last == 1 && pred_last > 1) {
            Box::new(SparseCategoricalAccuracy::new())
        } else {
            Box::new(CategoricalAccuracy::new())
        }
    }
}

impl Metric for AutoAccuracy {
    fn name(&self) -> &str {
        &self.name
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        let inner = self
            .inner
            .get_or_insert_with(|| AutoAccuracy::resolve(y_true.shape(), y_pred.shape()));
        inner.update_state(y_true, y_pred, sample_weight)
    }

    fn result(&self) -> Result<Tensor> {
        match &self.inner {
            Some(m) => m.result(),
            None => Ok(Tensor::scalar(0.0f32)),
        }
    }

    fn reset_state(&mut self) {
        if let Some(m) = &mut self.inner {
            m.reset_state();
        }
    }

    /// Every accuracy `"accuracy"` resolves to is a Keras `MeanMetricWrapper`.
    fn supports_output_mask(&self) -> bool {
        true
    }
}

/// The names [`get`] accepts.
pub const NAMES: &[&str] = &[
    "accuracy",
    "acc",
    "mse",
    "mae",
    "mape",
    "AUC",
    "auc",
    "precision",
    "recall",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "root_mean_squared_error",
];

/// `keras.metrics.get(name)`: a metric by its Keras name (with Keras's defaults), logged under
/// the name given (`"mse"` logs as `mse`, `"AUC"` as `AUC`); an unknown name is an error listing
/// the valid ones.
pub fn get(name: &str) -> Result<Box<dyn Metric>> {
    Ok(match name {
        "accuracy" | "acc" => Box::new(AutoAccuracy::new(name)),
        "binary_accuracy" => Box::new(BinaryAccuracy::new()),
        "categorical_accuracy" => Box::new(CategoricalAccuracy::new()),
        "sparse_categorical_accuracy" => Box::new(SparseCategoricalAccuracy::new()),
        "top_k_categorical_accuracy" => Box::new(TopKCategoricalAccuracy::new()),
        "sparse_top_k_categorical_accuracy" => Box::new(SparseTopKCategoricalAccuracy::new()),
        "mse" | "mean_squared_error" => Box::new(MeanSquaredError::new().named(name)),
        "mae" | "mean_absolute_error" => Box::new(MeanAbsoluteError::new().named(name)),
        "mape" | "mean_absolute_percentage_error" => {
            Box::new(MeanAbsolutePercentageError::new().named(name))
        }
        "root_mean_squared_error" => Box::new(RootMeanSquaredError::new()),
        "AUC" | "auc" => Box::new(AUC::new().named(name)),
        "precision" => Box::new(Precision::new()),
        "recall" => Box::new(Recall::new()),
        _ => return Err(unknown_name("metric", name, NAMES)),
    })
}

impl From<&str> for Arg<Box<dyn Metric>> {
    fn from(name: &str) -> Self {
        Arg(get(name))
    }
}

impl<M: Metric + 'static> From<M> for Arg<Box<dyn Metric>> {
    fn from(m: M) -> Self {
        Arg(Ok(Box::new(m)))
    }
}

impl From<Box<dyn Metric>> for Arg<Box<dyn Metric>> {
    fn from(m: Box<dyn Metric>) -> Self {
        Arg(Ok(m))
    }
}
