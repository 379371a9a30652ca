//! `keras.layers.Flatten`.

use ferroflow_core::{ops, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, InputSpec, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// `keras.layers.Flatten(data_format=None)`: flattens every axis but the batch axis, so
/// `(batch, d1, d2, ...)` becomes `(batch, d1·d2·...)` in row-major (channels-last) order, as
/// Keras's `channels_last` Flatten does. A rank-1 input `(batch,)` becomes `(batch, 1)`.
///
/// ```
/// use ferroflow_keras::layers::{Flatten, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let flatten = LayerHandle::new(Flatten::new());
/// let y = flatten.call(&ops::ones(&[2, 5, 5, 64], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 1600]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Flatten {
    base: LayerBase,
}

impl Flatten {
    /// `Flatten()`.
    pub fn new() -> Flatten {
        Flatten {
            base: LayerBase::new("Flatten"),
        }
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten::new()
    }
}

impl Layer for Flatten {
    fn class_name(&self) -> &str {
        "Flatten"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        Some(InputSpec::min_ndim(1))
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let shape = x.shape();
        let batch = shape.first().copied().unwrap_or(1);
        let rest: usize = shape.iter().skip(1).product();
        Ok(vec![ops::reshape(x, &[batch as isize, rest as isize])?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = first_shape(&self.base.name, input_shapes)?;
        let batch = s.first().copied().flatten();
        let rest = s
            .iter()
            .skip(1)
            .try_fold(1usize, |acc, d| d.map(|d| acc * d));
        Ok(vec![vec![batch, rest]])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "data_format": "channels_last",
        })
    }
}
