//! `keras.layers.Masking`.

use ferroflow_core::{ops, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, Layer, LayerBase};
use crate::backend::Shape;

/// `keras.layers.Masking(mask_value=0.0)`: marks as padding every time step whose features all
/// equal `mask_value`. The output is the input with those steps zeroed and carries the mask
/// `any(x != mask_value, axis=-1)` (`[batch, time]`) to the layers after it — Keras's behaviour.
///
/// ```
/// use ferroflow_keras::layers::{Masking, LayerHandle};
/// use ferroflow_core::Tensor;
/// let m = LayerHandle::new(Masking::new(0.0));
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 0.0, 0.0], &[1, 2, 2])?;
/// let (_, mask) = m.call_masked(&[x], &[], false)?;
/// assert_eq!(mask.unwrap().to_vec::<bool>()?, vec![true, false]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Masking {
    base: LayerBase,
    /// The padding value.
    pub mask_value: f64,
}

impl Masking {
    /// `Masking(mask_value)`.
    pub fn new(mask_value: f64) -> Masking {
        Masking {
            base: LayerBase::new("Masking"),
            mask_value,
        }
    }

    fn keep(&self, x: &Tensor) -> Result<Tensor> {
        ops::reduce_any(
            &ops::not_equal(x, &Tensor::scalar_of(x.dtype(), self.mask_value))?,
            -1,
            true,
        )
    }
}

impl Default for Masking {
    fn default() -> Self {
        Masking::new(0.0)
    }
}

impl Layer for Masking {
    fn class_name(&self) -> &str {
        "Masking"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let keep = ops::cast(&self.keep(x)?, x.dtype())?;
        Ok(vec![ops::mul(x, &keep)?])
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_mask(&self, inputs: &[Tensor], _masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        Ok(Some(ops::squeeze(&self.keep(x)?, &[-1])?))
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![super::pool_utils::first_shape(
            &self.base.name,
            input_shapes,
        )?
        .clone()])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "mask_value": self.mask_value,
        })
    }
}
