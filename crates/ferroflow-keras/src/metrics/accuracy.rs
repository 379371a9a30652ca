//! The accuracy metrics.

use ferroflow_core::{ops, DType, Error, Result, Tensor};

use super::reduce::MeanMetricWrapper;
use super::Metric;

/// Implements `Metric` for a newtype over `MeanMetricWrapper`.
macro_rules! mean_wrapper_metric {
    ($t:ty) => {
        impl Metric for $t {
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
            fn supports_output_mask(&self) -> bool {
                true
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use mean_wrapper_metric;

/// 1.0 where equal, else 0.0, as f32.
fn eq_f32(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    ops::cast(&ops::equal(a, b)?, DType::F32)
}

/// `keras.metrics.Accuracy`: how often `y_pred` equals `y_true` exactly.
pub struct Accuracy(MeanMetricWrapper);

impl Accuracy {
    /// Named `accuracy`.
    pub fn new() -> Self {
        Accuracy(MeanMetricWrapper::new("accuracy", |y, p| {
            let y = ops::cast(y, p.dtype())?;
            let e = eq_f32(&y, p)?;
            if e.rank() > 1 {
                ops::reduce_mean(&e, -1, false)
            } else {
                Ok(e)
            }
        }))
    }
}

impl Default for Accuracy {
    fn default() -> Self {
        Self::new()
    }
}
mean_wrapper_metric!(Accuracy);

/// `keras.metrics.BinaryAccuracy(threshold=0.5)`: `y_pred > threshold` against `y_true`,
/// averaged over the last axis then over samples.
pub struct BinaryAccuracy(MeanMetricWrapper);

impl BinaryAccuracy {
    /// Threshold 0.5, named `binary_accuracy`.
    pub fn new() -> Self {
        Self::with_threshold(0.5)
    }

    /// A custom threshold.
    pub fn with_threshold(threshold: f64) -> Self {
        BinaryAccuracy(MeanMetricWrapper::new("binary_accuracy", move |y, p| {
            let pred = ops::cast(
                &ops::greater(p, &Tensor::scalar_of(p.dtype(), threshold))?,
                DType::F32,
            )?;
            let mut y = ops::cast(y, DType::F32)?;
            if y.rank() + 1 == pred.rank() {
                y = ops::expand_dims(&y, -1)?;
            }
            if y.shape() != pred.shape() {
                return Err(Error::shape(
                    "binary_accuracy",
                    "y_true and y_pred must have the same shape",
                    &[y.shape(), pred.shape()],
                ));
            }
            ops::reduce_mean(&eq_f32(&y, &pred)?, -1, false)
        }))
    }
}

impl Default for BinaryAccuracy {
    fn default() -> Self {
        Self::new()
    }
}
mean_wrapper_metric!(BinaryAccuracy);

/// `keras.metrics.CategoricalAccuracy`: `argmax(y_true) == argmax(y_pred)` (one-hot labels).
pub struct CategoricalAccuracy(MeanMetricWrapper);

impl CategoricalAccuracy {
    /// Named `categorical_accuracy`.
    pub fn new() -> Self {
        CategoricalAccuracy(MeanMetricWrapper::new("categorical_accuracy", |y, p| {
            if y.shape() != p.shape() {
                return Err(Error::shape(
                    "categorical_accuracy",
                    "one-hot labels must have the predictions' shape",
                    &[y.shape(), p.shape()],
                ));
            }
            eq_f32(&ops::argmax(y, -1)?, &ops::argmax(p, -1)?)
        }))
    }
}

impl Default for CategoricalAccuracy {
    fn default() -> Self {
        Self::new()
    }
}
mean_wrapper_metric!(CategoricalAccuracy);

/// `keras.metrics.SparseCategoricalAccuracy`: integer labels against `argmax(y_pred)`.
pub struct SparseCategoricalAccuracy(MeanMetricWrapper);

impl SparseCategoricalAccuracy {
    /// Named `sparse_categorical_accuracy`.
    pub fn new() -> Self {
        SparseCategoricalAccuracy(MeanMetricWrapper::new(
            "sparse_categorical_accuracy",
            |y, p| {
                let labels = crate::losses::sparse_labels("sparse_categorical_accuracy", y, p)?;
                let labels = ops::cast(&labels, DType::I64)?;
                eq_f32(&labels, &ops::argmax(p, -1)?)
            },
        ))
    }
}

impl Default for SparseCategoricalAccuracy {
    fn default() -> Self {
        Self::new()
    }
}
mean_wrapper_metric!(SparseCategoricalAccuracy);
