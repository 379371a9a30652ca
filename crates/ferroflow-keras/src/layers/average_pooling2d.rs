//! `keras.layers.AveragePooling2D`.

use ferroflow_core::{ops, Result, Tensor};
use serde_json::Value;

use super::layer::{single_input, InputSpec, Layer, LayerBase};
use super::pool_utils::{PoolSize2D, PoolWindow};
use crate::backend::Shape;

/// `keras.layers.AveragePooling2D(pool_size, strides=None, padding="valid")` on channels-last input
/// `(batch, height, width, channels)`: the mean of each window. `strides` defaults to `pool_size`;
/// `"valid"` keeps only windows that fit (`out = floor((in - k) / s) + 1`), `"same"` gives
/// `out = ceil(in / s)` with the extra padding at the end (bottom/right; the mean counts only real elements) — Keras's arithmetic.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, AveragePooling2D};
/// use ferroflow_core::Tensor;
/// let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 3, 3, 1])?;
/// let y = LayerHandle::new(AveragePooling2D::new(2).padding("same")).call(&x, false)?;
/// // windows {1,2,4,5}, {3,6}, {7,8}, {9}
/// assert_eq!(y.to_vec::<f32>()?, vec![3.0, 4.5, 7.5, 9.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct AveragePooling2D {
    base: LayerBase,
    window: PoolWindow<2>,
}

impl AveragePooling2D {
    /// `AveragePooling2D(pool_size)`; one integer or a `(height, width)` pair (required: Keras gives it no default).
    pub fn new(pool_size: impl Into<PoolSize2D>) -> AveragePooling2D {
        AveragePooling2D {
            base: LayerBase::new("AveragePooling2D"),
            window: PoolWindow::new(pool_size.into().0),
        }
    }

    /// The window steps (default: the pool size).
    pub fn strides(mut self, strides: impl Into<PoolSize2D>) -> Self {
        self.window.strides = Some(strides.into().0);
        self
    }

    /// `"valid"` (the default) or `"same"`.
    pub fn padding(mut self, padding: &str) -> Self {
        self.window.padding = padding.to_string();
        self
    }
}

impl Layer for AveragePooling2D {
    fn class_name(&self) -> &str {
        "AveragePooling2D"
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
        self.compute_output_shape(input_shapes).map(|_| ())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let y = self
            .window
            .apply(&self.base.name, "AveragePooling2D", x, ops::avg_pool2d)?;
        Ok(vec![y])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = self
            .window
            .output_shape(&self.base.name, "AveragePooling2D", input_shapes)?;
        Ok(vec![s])
    }

    fn get_config(&self) -> Value {
        self.window.config(&self.base)
    }
}
