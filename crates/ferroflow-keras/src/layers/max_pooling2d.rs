//! `keras.layers.MaxPooling2D`.

use ferroflow_core::{ops, Result, Tensor};
use serde_json::Value;

use super::layer::{single_input, InputSpec, Layer, LayerBase};
use super::pool_utils::{PoolSize2D, PoolWindow};
use crate::backend::Shape;

/// `keras.layers.MaxPooling2D(pool_size=(2, 2), strides=None, padding="valid")` on
/// channels-last input `(batch, height, width, channels)`: the maximum of each window.
/// `strides` defaults to `pool_size`; `"valid"` keeps only windows that fit
/// (`out = floor((in - k) / s) + 1`), `"same"` gives `out = ceil(in / s)` and pads with −∞
/// (padding never wins), extra padding on the bottom/right — Keras's arithmetic.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, MaxPooling2D};
/// use ferroflow_core::{DType, ops};
/// let pool = LayerHandle::new(MaxPooling2D::new((2, 2)));
/// let y = pool.call(&ops::ones(&[1, 26, 26, 32], DType::F32), false)?;
/// assert_eq!(y.shape(), &[1, 13, 13, 32]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct MaxPooling2D {
    base: LayerBase,
    window: PoolWindow<2>,
}

impl MaxPooling2D {
    /// `MaxPooling2D(pool_size)`; `pool_size` is one integer or a `(height, width)` pair.
    pub fn new(pool_size: impl Into<PoolSize2D>) -> MaxPooling2D {
        MaxPooling2D {
            base: LayerBase::new("MaxPooling2D"),
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

impl Default for MaxPooling2D {
    /// `MaxPooling2D()` with Keras's default `pool_size=(2, 2)`.
    fn default() -> Self {
        MaxPooling2D::new((2, 2))
    }
}

impl Layer for MaxPooling2D {
    fn class_name(&self) -> &str {
        "MaxPooling2D"
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
            .apply(&self.base.name, "MaxPooling2D", x, ops::max_pool2d)?;
        Ok(vec![y])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = self
            .window
            .output_shape(&self.base.name, "MaxPooling2D", input_shapes)?;
        Ok(vec![s])
    }

    fn get_config(&self) -> Value {
        self.window.config(&self.base)
    }
}
