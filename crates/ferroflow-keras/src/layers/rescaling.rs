//! `keras.layers.Rescaling`.

use ferroflow_core::{ops, DType, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// `keras.layers.Rescaling(scale, offset=0.0)`: `x · scale + offset`, e.g. `Rescaling(1/255)`
/// maps pixels to `[0, 1]`. Non-float inputs are cast to float32 first (Keras computes in the
/// layer's float dtype); shapes are unchanged.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, Rescaling};
/// use ferroflow_core::Tensor;
/// let x = Tensor::from_vec(vec![0u8, 255], &[1, 2])?;
/// let y = LayerHandle::new(Rescaling::new(1.0 / 127.5).offset(-1.0)).call(&x, false)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![-1.0, 1.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Rescaling {
    base: LayerBase,
    /// The factor.
    pub scale: f64,
    /// Added after scaling.
    pub offset: f64,
}

impl Rescaling {
    /// `Rescaling(scale)` with offset 0.
    pub fn new(scale: f64) -> Rescaling {
        Rescaling {
            base: LayerBase::new("Rescaling"),
            scale,
            offset: 0.0,
        }
    }

    /// The offset added after scaling.
    pub fn offset(mut self, offset: f64) -> Self {
        self.offset = offset;
        self
    }
}

impl Layer for Rescaling {
    fn class_name(&self) -> &str {
        "Rescaling"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    /// Keras sets `supports_masking = True` on `Rescaling`: the input mask passes through.
    fn supports_masking(&self) -> bool {
        true
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let x = if x.dtype().is_float() {
            x.clone()
        } else {
            ops::cast(x, DType::F32)?
        };
        let y = ops::mul_scalar(&x, self.scale)?;
        let y = if self.offset != 0.0 {
            ops::add_scalar(&y, self.offset)?
        } else {
            y
        };
        Ok(vec![y])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![first_shape(&self.base.name, input_shapes)?.clone()])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "scale": self.scale,
            "offset": self.offset,
        })
    }
}
