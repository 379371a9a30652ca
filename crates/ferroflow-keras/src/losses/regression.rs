//! The regression losses.

use ferroflow_core::{ops, Error, Result, Tensor};

use super::{Loss, Reduction};

/// Checks that `y_true` and `y_pred` have one shape (after casting), naming the loss.
pub(crate) fn same_shape(name: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let mut y = ops::cast(y_true, y_pred.dtype())?;
    // Keras squeezes or expands a trailing 1 so that (batch,) labels meet (batch, 1) outputs.
    if y.rank() + 1 == y_pred.rank() && y_pred.shape().last() == Some(&1) {
        y = ops::expand_dims(&y, -1)?;
    }
    if y.shape() != y_pred.shape() {
        return Err(Error::shape(
            name,
            "y_true and y_pred must have the same shape",
            &[y_true.shape(), y_pred.shape()],
        ));
    }
    Ok(y)
}

/// `keras.losses.MeanSquaredError`: `mean((y_true - y_pred)², axis=-1)`.
#[derive(Clone, Debug, Default)]
pub struct MeanSquaredError {
    /// The reduction.
    pub reduction: Reduction,
}

impl MeanSquaredError {
    /// With Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Loss for MeanSquaredError {
    fn name(&self) -> &str {
        "mean_squared_error"
    }

    fn reduction(&self) -> Reduction {
        self.reduction
    }

    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let y = same_shape(self.name(), y_true, y_pred)?;
        ops::reduce_mean(&ops::squared_difference(&y, y_pred)?, -1, false)
    }
}
