//! `keras.losses`: loss objects with Keras's reductions, by name (`"mse"`) or by value.
//!
//! A loss's [`Loss::call`] gives the unreduced per-sample values (Keras's `Loss.call`);
//! [`Loss::compute`] applies sample weights and the reduction (Keras's `loss(y_true, y_pred,
//! sample_weight)`). The default reduction, `sum_over_batch_size`, divides the weighted sum by the
//! number of loss elements — not by the sum of the weights — as Keras does.
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
mod regression;

pub(crate) use crossentropy::sparse_labels;
pub use crossentropy::SparseCategoricalCrossentropy;
pub use regression::MeanSquaredError;

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
    /// `"mean_with_sample_weight"`: Σ(loss·w) / Σw.
    MeanWithSampleWeight,
    /// `"none"`: the weighted per-sample values.
    None,
}

/// A Keras loss.
pub trait Loss: Send {
    /// The Keras name used in logs and configs (`"sparse_categorical_crossentropy"`).
    fn name(&self) -> &str;

    /// The per-sample losses, unreduced (one value per sample: the last axis is already reduced
    /// for losses that average over it).
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor>;

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

/// Applies `sample_weight` (broadcast from the batch axis) and `reduction` to per-sample losses.
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
                    let w = ops::broadcast_to(&w, values.shape())?;
                    ops::div(&total, &ops::reduce_sum(&w, ops::Axes::All, false)?)
                }
            }
        }
    }
}

/// Reshapes sample weights so they broadcast against `values` from the batch axis.
fn align_weight(name: &str, w: &Tensor, values: &Tensor) -> Result<Tensor> {
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

/// The names [`get`] accepts (Keras's `compile(loss=...)` strings).
pub const NAMES: &[&str] = &[
    "mse",
    "mean_squared_error",
    "sparse_categorical_crossentropy",
];

/// `keras.losses.get(name)`: a loss by its Keras name; an unknown name is an error listing the
/// valid ones.
pub fn get(name: &str) -> Result<Box<dyn Loss>> {
    Ok(match name {
        "mse" | "mean_squared_error" | "MeanSquaredError" => Box::new(MeanSquaredError::new()),
        "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
            Box::new(SparseCategoricalCrossentropy::new())
        }
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
