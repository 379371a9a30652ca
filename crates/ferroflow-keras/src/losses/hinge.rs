//! The hinge losses: `Hinge`, `SquaredHinge` and `CategoricalHinge`.

use ferroflow_core::{ops, Result, Tensor};

use super::regression::simple_loss;
use super::shapes::{align, one_minus, scalar};
use super::{Loss, Reduction};

/// Keras's `convert_binary_labels_to_hinge`: labels that are all 0 or 1 become -1/1
/// (`2y - 1`); other labels (already -1/1) are kept.
fn hinge_labels(y: &Tensor) -> Result<Tensor> {
    if y.is_symbolic() {
        // The same choice as ops, for a traced step.
        let zero = ops::equal(y, &Tensor::scalar_of(y.dtype(), 0.0))?;
        let one = ops::equal(y, &Tensor::scalar_of(y.dtype(), 1.0))?;
        let binary = ops::reduce_all(&ops::logical_or(&zero, &one)?, ops::Axes::All, false)?;
        let converted = ops::add_scalar(&ops::mul_scalar(y, 2.0)?, -1.0)?;
        return ops::where_(&binary, &converted, y);
    }
    let binary = y.to_f64_vec().iter().all(|&v| v == 0.0 || v == 1.0);
    if binary {
        ops::add_scalar(&ops::mul_scalar(y, 2.0)?, -1.0)
    } else {
        Ok(y.clone())
    }
}

/// `max(1 - y·p, 0)` with hinge labels.
fn margins(name: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let (y, p) = align(name, y_true, y_pred)?;
    let y = hinge_labels(&y)?;
    ops::relu(&one_minus(&ops::mul(&y, &p)?)?)
}

simple_loss!(
    /// `keras.losses.Hinge`: `mean(max(1 - y_true·y_pred, 0), axis=-1)`; labels given as 0/1
    /// are converted to -1/1 first (Keras's `convert_binary_labels_to_hinge`).
    ///
    /// ```
    /// use ferroflow_keras::losses::{Hinge, Loss};
    /// use ferroflow_core::Tensor;
    /// let y = Tensor::from_vec(vec![0.0f32, 1.0], &[1, 2])?; // → -1, 1
    /// let p = Tensor::from_vec(vec![0.5f32, 0.5], &[1, 2])?;
    /// assert_eq!(Hinge::new().call(&y, &p)?.to_vec::<f32>()?, vec![1.0]); // (1.5 + 0.5) / 2
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    Hinge,
    "hinge"
);

impl Loss for Hinge {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn reduction(&self) -> Reduction {
        self.reduction
    }
    fn clone_loss(&self) -> Option<Box<dyn Loss>> {
        Some(Box::new(self.clone()))
    }
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        ops::reduce_mean(&margins(Self::NAME, y_true, y_pred)?, -1, false)
    }
}

simple_loss!(
    /// `keras.losses.SquaredHinge`: `mean(max(1 - y_true·y_pred, 0)², axis=-1)`, with 0/1 labels
    /// converted to -1/1.
    SquaredHinge,
    "squared_hinge"
);

impl Loss for SquaredHinge {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn reduction(&self) -> Reduction {
        self.reduction
    }
    fn clone_loss(&self) -> Option<Box<dyn Loss>> {
        Some(Box::new(self.clone()))
    }
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let m = margins(Self::NAME, y_true, y_pred)?;
        ops::reduce_mean(&ops::square(&m)?, -1, false)
    }
}

simple_loss!(
    /// `keras.losses.CategoricalHinge`: with one-hot `y_true`, `pos = Σ y·p`,
    /// `neg = max((1 - y)·p)` over the last axis, and the loss `max(neg - pos + 1, 0)`.
    CategoricalHinge,
    "categorical_hinge"
);

impl Loss for CategoricalHinge {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn reduction(&self) -> Reduction {
        self.reduction
    }
    fn clone_loss(&self) -> Option<Box<dyn Loss>> {
        Some(Box::new(self.clone()))
    }
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let (y, p) = align(Self::NAME, y_true, y_pred)?;
        let pos = ops::reduce_sum(&ops::mul(&y, &p)?, -1, false)?;
        let neg = ops::reduce_max(&ops::mul(&one_minus(&y)?, &p)?, -1, false)?;
        let v = ops::add_scalar(&ops::sub(&neg, &pos)?, 1.0)?;
        ops::maximum(&v, &scalar(&v, 0.0))
    }
}
