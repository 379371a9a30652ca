//! The cross-entropy losses.

use ferroflow_core::{ops, DType, Error, Result, Tensor};

use super::{Loss, Reduction};
use crate::activations::{keras_logits, LogitsKind};
use crate::backend::EPSILON;

/// `keras.losses.SparseCategoricalCrossentropy(from_logits=False)`: integer class labels of shape
/// `(batch,)` or `(batch, 1)` against class scores `(batch, classes)`.
///
/// From probabilities it computes, as Keras's TensorFlow backend, `log(clip(p, ε, 1-ε))` and the
/// softmax cross-entropy of that (which also normalises rows that do not sum to 1). When `y_pred`
/// came from a `softmax` activation, the loss uses its logits instead — exact, without clipping
/// (Keras's `_keras_logits`).
#[derive(Clone, Debug, Default)]
pub struct SparseCategoricalCrossentropy {
    /// Whether `y_pred` holds logits.
    pub from_logits: bool,
    /// The reduction.
    pub reduction: Reduction,
}

impl SparseCategoricalCrossentropy {
    /// With Keras's defaults (`from_logits=False`).
    pub fn new() -> Self {
        Self::default()
    }

    /// `from_logits=True` or not.
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }
}

/// Integer labels of shape `y_pred.shape[:-1]` from `(batch,)`/`(batch, 1)`, int or float.
pub(crate) fn sparse_labels(name: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let want = &y_pred.shape()[..y_pred.rank().saturating_sub(1)];
    let mut labels = y_true.clone();
    if labels.rank() == want.len() + 1 && labels.shape().last() == Some(&1) {
        labels = ops::squeeze(&labels, &[-1])?;
    }
    if labels.shape() != want {
        return Err(Error::shape(
            name,
            "labels must have the shape of the predictions without their last axis \
             (integer class ids)",
            &[y_true.shape(), y_pred.shape()],
        ));
    }
    match labels.dtype() {
        DType::I32 | DType::I64 => Ok(labels),
        _ => ops::cast(&labels, DType::I64),
    }
}

impl Loss for SparseCategoricalCrossentropy {
    fn name(&self) -> &str {
        "sparse_categorical_crossentropy"
    }

    fn reduction(&self) -> Reduction {
        self.reduction
    }

    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let labels = sparse_labels(self.name(), y_true, y_pred)?;
        let logits = if self.from_logits {
            y_pred.clone()
        } else if let Some((logits, LogitsKind::Softmax)) = keras_logits(y_pred) {
            logits
        } else {
            let p = ops::clip_by_value_scalar(y_pred, EPSILON, 1.0 - EPSILON)?;
            ops::log(&p)?
        };
        ops::sparse_softmax_cross_entropy_with_logits(&labels, &logits)
    }
}
