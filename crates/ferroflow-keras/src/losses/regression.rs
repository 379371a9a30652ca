//! The regression losses: `MeanSquaredError`, `MeanAbsoluteError`,
//! `MeanAbsolutePercentageError`, `MeanSquaredLogarithmicError`, `Huber`, `LogCosh` and
//! `CosineSimilarity`. Each averages over the last axis (`CosineSimilarity` sums over `axis`),
//! giving one value per sample, as Keras's loss functions do.

use ferroflow_core::{ops, Result, Tensor};

use super::shapes::{align, norm_axis, scalar};
use super::{Loss, Reduction};
use crate::backend::EPSILON;

/// Defines a loss struct with only a `reduction` (Keras's simple `LossFunctionWrapper`s).
macro_rules! simple_loss {
    ($(#[$doc:meta])* $t:ident, $keras:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default)]
        pub struct $t {
            /// The reduction (Keras's `reduction="sum_over_batch_size"`).
            pub reduction: Reduction,
        }

        impl $t {
            #[doc = concat!("`keras.losses.", stringify!($t), "()` with Keras's defaults.")]
            pub fn new() -> Self {
                Self::default()
            }

            /// Sets the reduction (Keras's `reduction=`).
            pub fn reduction(mut self, reduction: Reduction) -> Self {
                self.reduction = reduction;
                self
            }
        }

        impl $t {
            /// The Keras name.
            const NAME: &'static str = $keras;
        }
    };
}
pub(crate) use simple_loss;

simple_loss!(
    /// `keras.losses.MeanSquaredError`: `mean((y_true - y_pred)², axis=-1)`.
    ///
    /// ```
    /// use ferroflow_keras::losses::{Loss, MeanSquaredError, Reduction};
    /// use ferroflow_core::Tensor;
    /// let y = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[2, 2])?;
    /// let p = Tensor::from_vec(vec![1.0f32, 1.0, 2.0, 1.0], &[2, 2])?;
    /// let mse = MeanSquaredError::new();
    /// assert_eq!(mse.call(&y, &p)?.to_vec::<f32>()?, vec![0.5, 2.0]);
    /// assert_eq!(mse.compute(&y, &p, None)?.item::<f32>()?, 1.25);
    /// let sum = MeanSquaredError::new().reduction(Reduction::Sum);
    /// assert_eq!(sum.compute(&y, &p, None)?.item::<f32>()?, 2.5);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    MeanSquaredError,
    "mean_squared_error"
);

impl Loss for MeanSquaredError {
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
        ops::reduce_mean(&ops::squared_difference(&y, &p)?, -1, false)
    }
}

simple_loss!(
    /// `keras.losses.MeanAbsoluteError`: `mean(|y_true - y_pred|, axis=-1)`.
    MeanAbsoluteError,
    "mean_absolute_error"
);

impl Loss for MeanAbsoluteError {
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
        ops::reduce_mean(&ops::abs(&ops::sub(&y, &p)?)?, -1, false)
    }
}

simple_loss!(
    /// `keras.losses.MeanAbsolutePercentageError`:
    /// `100 · mean(|(y_true - y_pred) / max(|y_true|, ε)|, axis=-1)` with Keras's `ε = 1e-7`.
    MeanAbsolutePercentageError,
    "mean_absolute_percentage_error"
);

impl Loss for MeanAbsolutePercentageError {
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
        let denom = ops::maximum(&ops::abs(&y)?, &scalar(&p, EPSILON))?;
        let diff = ops::abs(&ops::div(&ops::sub(&y, &p)?, &denom)?)?;
        ops::mul_scalar(&ops::reduce_mean(&diff, -1, false)?, 100.0)
    }
}

simple_loss!(
    /// `keras.losses.MeanSquaredLogarithmicError`:
    /// `mean((log(max(y_pred, ε) + 1) - log(max(y_true, ε) + 1))², axis=-1)`, `ε = 1e-7`.
    MeanSquaredLogarithmicError,
    "mean_squared_logarithmic_error"
);

impl Loss for MeanSquaredLogarithmicError {
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
        let eps = scalar(&p, EPSILON);
        let lp = ops::log(&ops::add_scalar(&ops::maximum(&p, &eps)?, 1.0)?)?;
        let ly = ops::log(&ops::add_scalar(&ops::maximum(&y, &eps)?, 1.0)?)?;
        ops::reduce_mean(&ops::squared_difference(&lp, &ly)?, -1, false)
    }
}

/// `keras.losses.Huber(delta=1.0)`: with `x = y_pred - y_true`, `0.5·x²` where `|x| ≤ δ`, else
/// `δ·|x| - 0.5·δ²`, averaged over the last axis.
///
/// ```
/// use ferroflow_keras::losses::{Huber, Loss};
/// use ferroflow_core::Tensor;
/// let y = Tensor::from_vec(vec![0.0f64, 0.0], &[1, 2])?;
/// let p = Tensor::from_vec(vec![0.5f64, 3.0], &[1, 2])?;
/// // (0.5·0.25 + (3 - 0.5)) / 2
/// assert_eq!(Huber::new().call(&y, &p)?.to_vec::<f64>()?, vec![1.3125]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Huber {
    /// Where the loss changes from quadratic to linear (Keras's `delta=1.0`).
    pub delta: f64,
    /// The reduction.
    pub reduction: Reduction,
}

impl Default for Huber {
    fn default() -> Self {
        Huber {
            delta: 1.0,
            reduction: Reduction::default(),
        }
    }
}

impl Huber {
    /// `keras.losses.Huber()` with Keras's defaults (`delta=1.0`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `delta`.
    pub fn delta(mut self, delta: f64) -> Self {
        self.delta = delta;
        self
    }

    /// Sets the reduction (Keras's `reduction=`).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

impl Loss for Huber {
    /// `"huber"`, the function's name (the Keras class's default instance name is
    /// `"huber_loss"`, which `compile` does not accept as a string).
    fn name(&self) -> &str {
        "huber"
    }
    fn reduction(&self) -> Reduction {
        self.reduction
    }
    fn clone_loss(&self) -> Option<Box<dyn Loss>> {
        Some(Box::new(self.clone()))
    }
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let (y, p) = align(self.name(), y_true, y_pred)?;
        let err = ops::sub(&p, &y)?;
        let abs = ops::abs(&err)?;
        let quad = ops::mul_scalar(&ops::square(&err)?, 0.5)?;
        let lin = ops::add_scalar(
            &ops::mul_scalar(&abs, self.delta)?,
            -0.5 * self.delta * self.delta,
        )?;
        let small = ops::less_equal(&abs, &scalar(&p, self.delta))?;
        ops::reduce_mean(&ops::where_(&small, &quad, &lin)?, -1, false)
    }
}

simple_loss!(
    /// `keras.losses.LogCosh`: `mean(log(cosh(y_pred - y_true)), axis=-1)`, computed as Keras
    /// does, `x + softplus(-2x) - log 2`, which does not overflow for large `|x|`.
    LogCosh,
    "log_cosh"
);

impl Loss for LogCosh {
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
        let x = ops::sub(&p, &y)?;
        let sp = ops::softplus(&ops::mul_scalar(&x, -2.0)?)?;
        let v = ops::add_scalar(&ops::add(&x, &sp)?, -std::f64::consts::LN_2)?;
        ops::reduce_mean(&v, -1, false)
    }
}

/// `keras.losses.CosineSimilarity(axis=-1)`: `-Σ l2_normalize(y_true)·l2_normalize(y_pred)`
/// along `axis`, between -1 (same direction) and 1. As Keras's `normalize`, a vector is divided
/// by `max(‖v‖, ε)`, so a zero vector gives 0.
#[derive(Clone, Debug)]
pub struct CosineSimilarity {
    /// The axis of the vectors (Keras's `axis=-1`).
    pub axis: isize,
    /// The reduction.
    pub reduction: Reduction,
}

impl Default for CosineSimilarity {
    fn default() -> Self {
        CosineSimilarity {
            axis: -1,
            reduction: Reduction::default(),
        }
    }
}

impl CosineSimilarity {
    /// `keras.losses.CosineSimilarity()` with Keras's defaults (`axis=-1`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the axis of the vectors.
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// Sets the reduction (Keras's `reduction=`).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// `x · min(1/‖x‖, 1/ε)` along `axis` (Keras's `ops.normalize`), written with
/// `1/sqrt(max(Σx², ε²))` so that the gradient stays finite at a zero vector.
fn l2_normalize(x: &Tensor, axis: isize) -> Result<Tensor> {
    let ss = ops::reduce_sum(&ops::square(x)?, axis, true)?;
    let ss = ops::maximum(&ss, &scalar(x, EPSILON * EPSILON))?;
    ops::mul(x, &ops::rsqrt(&ss)?)
}

impl Loss for CosineSimilarity {
    fn name(&self) -> &str {
        "cosine_similarity"
    }
    fn reduction(&self) -> Reduction {
        self.reduction
    }
    fn clone_loss(&self) -> Option<Box<dyn Loss>> {
        Some(Box::new(self.clone()))
    }
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let (y, p) = align(self.name(), y_true, y_pred)?;
        let axis = norm_axis(self.name(), self.axis, p.rank())? as isize;
        let prod = ops::mul(&l2_normalize(&y, axis)?, &l2_normalize(&p, axis)?)?;
        ops::neg(&ops::reduce_sum(&prod, axis, false)?)
    }
}
