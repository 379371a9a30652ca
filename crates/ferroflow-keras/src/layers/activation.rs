//! `keras.layers.Activation`.

use ferroflow_core::{Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::activations;
use crate::backend::{Arg, Shape};

/// `keras.layers.Activation(activation)`: applies an activation function (by name, `"relu"`,
/// or by value, [`activations::Activation`]) element-wise; shapes are unchanged. An unknown
/// name is reported when the layer is first used, listing the valid names.
///
/// ```
/// use ferroflow_keras::layers::{Activation, LayerHandle};
/// use ferroflow_core::Tensor;
/// let x = Tensor::from_vec(vec![-1.0f32, 0.5, 2.0], &[1, 3])?;
/// let y = LayerHandle::new(Activation::new("relu")).call(&x, false)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![0.0, 0.5, 2.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Activation {
    base: LayerBase,
    activation: Arg<activations::Activation>,
}

impl Activation {
    /// `Activation(activation)`.
    pub fn new(activation: impl Into<Arg<activations::Activation>>) -> Activation {
        Activation {
            base: LayerBase::new("Activation"),
            activation: activation.into(),
        }
    }

    fn resolved(&self) -> Result<activations::Activation> {
        self.activation.0.clone().map_err(|e| match e {
            ferroflow_core::Error::InvalidArgument { msg, .. } => {
                let name = &self.base.name;
                ferroflow_core::Error::invalid(name, format!("layer {name:?}: {msg}"))
            }
            other => other,
        })
    }
}

impl Layer for Activation {
    fn class_name(&self) -> &str {
        "Activation"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    /// Keras sets `supports_masking = True` on `Activation`: the input mask passes through.
    fn supports_masking(&self) -> bool {
        true
    }

    fn build(&mut self, _input_shapes: &[Shape]) -> Result<()> {
        self.resolved().map(|_| ())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        Ok(vec![self.resolved()?.apply(x)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![first_shape(&self.base.name, input_shapes)?.clone()])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "activation": self.activation.0.as_ref().map(|a| a.name().to_string()).unwrap_or_default(),
        })
    }
}
