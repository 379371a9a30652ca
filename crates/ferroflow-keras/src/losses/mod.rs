//! `keras.losses`: loss objects with Keras's reductions, by name (`"mse"`) or by value.
//!
//! A loss's [`Loss::call`] gives the unreduced per-sample values (Keras's `Loss.call`);
//! [`Loss::compute`] applies sample weights and the reduction (Keras's `loss(y_true, y_pred,
//! sample_weight)`). The default reduction, `sum_over_batch_size`, divides the weighted sum by the
//! number of loss elements — not by the sum of the weights — as Keras does.
//!
//! The losses, with Keras 3's formulas and defaults (`ε = 1e-7`):
//! - regression: [`MeanSquaredError`], [`MeanAbsoluteError`], [`MeanAbsolutePercentageError`],
//!   [`MeanSquaredLogarithmicError`], [`Huber`], [`LogCosh`], [`CosineSimilarity`];
//! - probabilistic: [`BinaryCrossentropy`], [`CategoricalCrossentropy`],
//!   [`SparseCategoricalCrossentropy`], [`KLDivergence`], [`Poisson`];
//! - hinge: [`Hinge`], [`SquaredHinge`], [`CategoricalHinge`].
//!
//! `y_true` is cast to `y_pred`'s dtype (float32 or float64); one trailing axis of size 1 is
//! squeezed or added as Keras's `squeeze_or_expand_to_same_rank` does, and other shape
//! mismatches are errors naming the loss and both shapes.
//!
//! ```
//! use ferroflow_keras::losses::{self, Loss};
//! use ferroflow_core::Tensor;
//! let y_true = Tensor::from_vec(vec![0.0f32, 1.0], &[2, 1])?;
//! let y_pred = Tensor::from_vec(vec![1.0f32, 1.0], &[2, 1])?;
//! let mse = losses::get("mse")?;
//! assert_eq!(mse.compute(&y_true, &y_pred, None)?.item::<f32>()?, 0.5);
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

mod crossentropy;
mod hinge;
mod probabilistic;
mod regression;
mod shapes;

pub(crate) use crossentropy::sparse_labels;
pub use crossentropy::{
    BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
};
pub use hinge::{CategoricalHinge, Hinge, SquaredHinge};
pub use probabilistic::{KLDivergence, Poisson};
pub use regression::{
    CosineSimilarity, Huber, LogCosh, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredError, MeanSquaredLogarithmicError,
};

use ferroflow_core::{ops, Error, Result, Tensor};

use crate::backend::{unknown_name, Arg};

/// How a loss reduces its per-sample values (Keras's `reduction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reduction {
    /// `"sum_over_batch_size"` (the default): Σ(loss·w) / number of loss elements.
    #[default]
    SumOverBatchSize,
    /// `"sum"`: Σ(loss·w).
    Sum,
    /// `"mean_with_sample_weight"`: Σ(loss·w) / Σw (0 when Σw = 0, Keras's `divide_no_nan`).
    MeanWithSampleWeight,
    /// `"none"`: the weighted per-sample values.
    None,
}

/// The names [`Reduction::get`] accepts.
pub const REDUCTION_NAMES: &[&str] = &[
    "sum_over_batch_size",
    "mean",
    "sum",
    "mean_with_sample_weight",
    "none",
];

impl Reduction {
    /// A reduction by Keras's name: `"sum_over_batch_size"` (or its alias `"mean"`), `"sum"`,
    /// `"mean_with_sample_weight"`, `"none"` (Keras's `None`).
    pub fn get(name: &str) -> Result<Reduction> {
        Ok(match name {
            "sum_over_batch_size" | "mean" => Reduction::SumOverBatchSize,
            "sum" => Reduction::Sum,
            "mean_with_sample_weight" => Reduction::MeanWithSampleWeight,
            "none" | "None" => Reduction::None,
            _ => return Err(unknown_name("reduction", name, REDUCTION_NAMES)),
        })
    }

    /// The Keras name (`"sum_over_batch_size"`).
    pub fn name(self) -> &'static str {
        match self {
            Reduction::SumOverBatchSize => "sum_over_batch_size",
            Reduction::Sum => "sum",
            Reduction::MeanWithSampleWeight => "mean_with_sample_weight",
            Reduction::None => "none",
        }
    }
}

/// A Keras loss.
pub trait Loss: Send {
    /// The Keras name used in logs and configs (`"sparse_categorical_crossentropy"`).
    fn name(&self) -> &str;

    /// The per-sample losses, unreduced (one value per sample: the last axis is already reduced
    /// for losses that average over it).
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor>;

    /// Keras's `get_config()` keys that differ from the defaults of the loss's name
    /// (`{"from_logits": true}`), for saving `compile_config`. Empty by default.
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    /// A boxed copy with the same settings (`from_logits`, `reduction`, ...), so that one loss
    /// object can serve several model outputs. `None` (the default) for losses that cannot be
    /// copied; `compile` then re-resolves them by [`name`](Loss::name).
    fn clone_loss(&self) -> Option<Box<dyn Loss>> {
        None
    }

    /// The reduction applied by [`compute`](Loss::compute).
    fn reduction(&self) -> Reduction {
        Reduction::SumOverBatchSize
    }

    /// Keras's `loss(y_true, y_pred, sample_weight)`: `call`, times the sample weights, reduced.
    fn compute(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<Tensor> {
        let values = self.call(y_true, y_pred)?;
        reduce_weighted(self.name(), &values, sample_weight, self.reduction())
    }
}

/// Applies `sample_weight` (broadcast from the batch axis) and `reduction` to per-sample losses,
/// as Keras's `reduce_weighted_values`.
///
/// Weights of shape `(batch,)` or `(batch, 1)` weigh whole samples. Under
/// `mean_with_sample_weight` the divisor is the sum of the weights as given (not broadcast over
/// the values' other axes), as Keras's.
pub fn reduce_weighted(
    name: &str,
    values: &Tensor,
    sample_weight: Option<&Tensor>,
    reduction: Reduction,
) -> Result<Tensor> {
    let weighted = match sample_weight {
        None => values.clone(),
        Some(w) => {
            let w = ops::cast(w, values.dtype())?;
            // Weights of shape (batch,) or (batch, 1) apply per sample.
            let w = align_weight(name, &w, values)?;
            ops::mul(values, &w)?
        }
    };
    match reduction {
        Reduction::None => Ok(weighted),
        Reduction::Sum => ops::reduce_sum(&weighted, ops::Axes::All, false),
        Reduction::SumOverBatchSize => {
            let n = weighted.num_elements().max(1) as f64;
            ops::mul_scalar(&ops::reduce_sum(&weighted, ops::Axes::All, false)?, 1.0 / n)
        }
        Reduction::MeanWithSampleWeight => {
            let total = ops::reduce_sum(&weighted, ops::Axes::All, false)?;
            match sample_weight {
                None => ops::mul_scalar(&total, 1.0 / weighted.num_elements().max(1) as f64),
                Some(w) => {
                    let w = align_weight(name, &ops::cast(w, values.dtype())?, values)?;
                    let sw = ops::reduce_sum(&w, ops::Axes::All, false)?;
                    // divide_no_nan: 0 where the weights sum to 0.
                    let zero = ops::equal(&sw, &Tensor::scalar_of(sw.dtype(), 0.0))?;
                    let safe = ops::where_(&zero, &ops::ones_like(&sw)?, &sw)?;
                    ops::where_(&zero, &ops::zeros_like(&sw)?, &ops::div(&total, &safe)?)
                }
            }
        }
    }
}

/// Reshapes sample weights so they broadcast against `values` from the batch axis.
pub(crate) fn align_weight(name: &str, w: &Tensor, values: &Tensor) -> Result<Tensor> {
    let mut w = w.clone();
    while w.rank() > values.rank() && w.shape().last() == Some(&1) {
        w = ops::squeeze(&w, &[-1])?;
    }
    if w.rank() > values.rank() || (w.rank() > 0 && w.shape()[0] != values.shape()[0]) {
        return Err(Error::shape(
            name,
            "sample_weight does not match the per-sample losses",
            &[w.shape(), values.shape()],
        ));
    }
    while w.rank() < values.rank() {
        w = ops::expand_dims(&w, -1)?;
    }
    Ok(w)
}

/// The names [`get`] accepts (Keras's `compile(loss=...)` strings). Keras's class names
/// (`"MeanSquaredError"`, `"BinaryCrossentropy"`, ...) and the upper-case aliases (`"MSE"`,
/// `"BCE"`, ...) are accepted too. As Keras, `"logcosh"`, `"huber_loss"` and
/// `"kullback_leibler_divergence"` are not.
pub const NAMES: &[&str] = &[
    "mse",
    "mae",
    "mape",
    "msle",
    "kld",
    "bce",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "kl_divergence",
    "log_cosh",
    "huber",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "poisson",
    "cosine_similarity",
];

/// `keras.losses.get(name)`: a loss by its Keras name, with Keras's defaults; an unknown name is
/// an error listing the valid ones.
///
/// ```
/// use ferroflow_keras::losses;
/// assert_eq!(losses::get("bce")?.name(), "binary_crossentropy");
/// assert_eq!(losses::get("Huber")?.name(), "huber");
/// assert!(losses::get("huber_loss").is_err()); // as Keras
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn get(name: &str) -> Result<Box<dyn Loss>> {
    Ok(match name {
        "mse" | "MSE" | "mean_squared_error" | "MeanSquaredError" => {
            Box::new(MeanSquaredError::new())
        }
        "mae" | "MAE" | "mean_absolute_error" | "MeanAbsoluteError" => {
            Box::new(MeanAbsoluteError::new())
        }
        "mape" | "MAPE" | "mean_absolute_percentage_error" | "MeanAbsolutePercentageError" => {
            Box::new(MeanAbsolutePercentageError::new())
        }
        "msle" | "MSLE" | "mean_squared_logarithmic_error" | "MeanSquaredLogarithmicError" => {
            Box::new(MeanSquaredLogarithmicError::new())
        }
        "kld" | "KLD" | "kl_divergence" | "KLDivergence" => Box::new(KLDivergence::new()),
        "log_cosh" | "LogCosh" => Box::new(LogCosh::new()),
        "huber" | "Huber" => Box::new(Huber::new()),
        "bce" | "BCE" | "binary_crossentropy" | "BinaryCrossentropy" => {
            Box::new(BinaryCrossentropy::new())
        }
        "categorical_crossentropy" | "CategoricalCrossentropy" => {
            Box::new(CategoricalCrossentropy::new())
        }
        "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
            Box::new(SparseCategoricalCrossentropy::new())
        }
        "hinge" | "Hinge" => Box::new(Hinge::new()),
        "squared_hinge" | "SquaredHinge" => Box::new(SquaredHinge::new()),
        "categorical_hinge" | "CategoricalHinge" => Box::new(CategoricalHinge::new()),
        "poisson" | "Poisson" => Box::new(Poisson::new()),
        "cosine_similarity" | "CosineSimilarity" => Box::new(CosineSimilarity::new()),
        _ => return Err(unknown_name("loss", name, NAMES)),
    })
}

impl From<&str> for Arg<Box<dyn Loss>> {
    fn from(name: &str) -> Self {
        Arg(get(name))
    }
}

impl<L: Loss + 'static> From<L> for Arg<Box<dyn Loss>> {
    fn from(l: L) -> Self {
        Arg(Ok(Box::new(l)))
    }
}

impl From<Box<dyn Loss>> for Arg<Box<dyn Loss>> {
    fn from(l: Box<dyn Loss>) -> Self {
        Arg(Ok(l))
    }
}
