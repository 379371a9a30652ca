//! `keras.layers.AveragePooling1D`.

use ferroflow_core::{ops, Result, Tensor};
use serde_json::Value;

use super::layer::{single_input, InputSpec, Layer, LayerBase};
use super::pool_utils::PoolWindow;
use crate::backend::Shape;

/// `keras.layers.AveragePooling1D(pool_size, strides=None, padding="valid")` on channels-last input
/// `(batch, steps, features)`: the mean of each window. `strides` defaults to `pool_size`;
/// `"valid"` keeps only windows that fit (`out = floor((in - k) / s) + 1`), `"same"` gives
/// `out = ceil(in / s)` with the extra padding at the end (the mean counts only real elements) — Keras's arithmetic.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, AveragePooling1D};
/// use ferroflow_core::Tensor;
/// // Keras: AveragePooling1D(2, padding="same") on [1..5] -> [1.5, 3.5, 5.0].
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0], &[1, 5, 1])?;
/// let y = LayerHandle::new(AveragePooling1D::new(2).padding("same")).call(&x, false)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![1.5, 3.5, 5.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct AveragePooling1D {
    base: LayerBase,
    window: PoolWindow<1>,
}

impl AveragePooling1D {
    /// `AveragePooling1D(pool_size)` (required: Keras gives it no default).
    pub fn new(pool_size: usize) -> AveragePooling1D {
        AveragePooling1D {
            base: LayerBase::new("AveragePooling1D"),
            window: PoolWindow::new([pool_size]),
        }
    }

    /// The window steps (default: the pool size).
    pub fn strides(mut self, strides: usize) -> Self {
        self.window.strides = Some([strides]);
        self
    }

    /// `"valid"` (the default) or `"same"`.
    pub fn padding(mut self, padding: &str) -> Self {
        self.window.padding = padding.to_string();
        self
    }
}

impl Layer for AveragePooling1D {
    fn class_name(&self) -> &str {
        "AveragePooling1D"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        Some(InputSpec::ndim(3))
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        self.compute_output_shape(input_shapes).map(|_| ())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let y = self
            .window
            .apply(&self.base.name, "AveragePooling1D", x, |x, k, s, p| {
                ops::avg_pool1d(x, k[0], s[0], p)
            })?;
        Ok(vec![y])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = self
            .window
            .output_shape(&self.base.name, "AveragePooling1D", input_shapes)?;
        Ok(vec![s])
    }

    fn get_config(&self) -> Value {
        self.window.config(&self.base)
    }
}
