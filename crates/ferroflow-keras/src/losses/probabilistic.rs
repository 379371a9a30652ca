//! `KLDivergence` and `Poisson`.

use ferroflow_core::{ops, Result, Tensor};

use super::regression::simple_loss;
use super::shapes::align;
use super::{Loss, Reduction};
use crate::backend::EPSILON;

simple_loss!(
    /// `keras.losses.KLDivergence`: `Σ y·log(y / p)` over the last axis, with both `y_true`
    /// and `y_pred` first clipped to `[ε, 1]` (`ε = 1e-7`), as Keras's `kl_divergence`.
    ///
    /// ```
    /// use ferroflow_keras::losses::{KLDivergence, Loss};
    /// use ferroflow_core::Tensor;
    /// let y = Tensor::from_vec(vec![0.5f64, 0.5], &[1, 2])?;
    /// let kld = KLDivergence::new().call(&y, &y)?;
    /// assert!(kld.to_vec::<f64>()?[0].abs() < 1e-12);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    KLDivergence,
    "kl_divergence"
);

impl Loss for KLDivergence {
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
        let y = ops::clip_by_value_scalar(&y, EPSILON, 1.0)?;
        let p = ops::clip_by_value_scalar(&p, EPSILON, 1.0)?;
        let v = ops::mul(&y, &ops::log(&ops::div(&y, &p)?)?)?;
        ops::reduce_sum(&v, -1, false)
    }
}

simple_loss!(
    /// `keras.losses.Poisson`: `mean(y_pred - y_true·log(y_pred + ε), axis=-1)`, `ε = 1e-7`.
    Poisson,
    "poisson"
);

impl Loss for Poisson {
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
        let v = ops::sub(
            &p,
            &ops::mul(&y, &ops::log(&ops::add_scalar(&p, EPSILON)?)?)?,
        )?;
        ops::reduce_mean(&v, -1, false)
    }
}
