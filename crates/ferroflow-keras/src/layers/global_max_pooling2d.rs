//! `keras.layers.GlobalMaxPooling2D`.

use ferroflow_core::{Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, InputSpec, Layer, LayerBase};
use super::pool_utils::{global_pool, global_pooled_shape};
use crate::backend::Shape;

/// `keras.layers.GlobalMaxPooling2D(data_format=None, keepdims=False)` on channels-last input
/// `(batch, height, width, channels)`: the maximum over the height and width axes, giving `(batch, channels)`, or
/// `(batch, 1, 1, channels)` with `keepdims(true)` — as Keras.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, GlobalMaxPooling2D};
/// use ferroflow_core::Tensor;
/// let x = Tensor::from_vec(vec![1.0f32, 6.0, 4.0, 2.0], &[1, 2, 2, 1])?;
/// let y = LayerHandle::new(GlobalMaxPooling2D::new().keepdims(true)).call(&x, false)?;
/// assert_eq!(y.shape(), &[1, 1, 1, 1]);
/// assert_eq!(y.to_vec::<f32>()?, vec![6.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct GlobalMaxPooling2D {
    base: LayerBase,
    /// Whether to keep the pooled axes as size 1.
    pub keepdims: bool,
}

impl GlobalMaxPooling2D {
    /// `GlobalMaxPooling2D()`.
    pub fn new() -> GlobalMaxPooling2D {
        GlobalMaxPooling2D {
            base: LayerBase::new("GlobalMaxPooling2D"),
            keepdims: false,
        }
    }

    /// Keeps the pooled axes as size 1 (Keras's `keepdims=True`).
    pub fn keepdims(mut self, keepdims: bool) -> Self {
        self.keepdims = keepdims;
        self
    }
}

impl Default for GlobalMaxPooling2D {
    fn default() -> Self {
        GlobalMaxPooling2D::new()
    }
}

impl Layer for GlobalMaxPooling2D {
    fn class_name(&self) -> &str {
        "GlobalMaxPooling2D"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        Some(InputSpec::ndim(4))
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        global_pooled_shape(
            &self.base.name,
            "GlobalMaxPooling2D",
            input_shapes,
            4,
            self.keepdims,
        )?;
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        Ok(vec![global_pool(
            &self.base.name,
            "GlobalMaxPooling2D",
            x,
            4,
            true,
            self.keepdims,
        )?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![global_pooled_shape(
            &self.base.name,
            "GlobalMaxPooling2D",
            input_shapes,
            4,
            self.keepdims,
        )?])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "data_format": "channels_last",
            "keepdims": self.keepdims,
        })
    }
}
