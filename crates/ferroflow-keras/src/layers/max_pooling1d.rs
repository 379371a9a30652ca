//! `keras.layers.MaxPooling1D`.

use ferroflow_core::ops::Padding;
use ferroflow_core::{ops, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, InputSpec, Layer, LayerBase};
use super::pool_utils::{
    check_positive, check_rank, first_shape, known, parse_padding, pooled_shape,
};
use crate::backend::Shape;

/// `keras.layers.MaxPooling1D(pool_size=2, strides=None, padding="valid")` on channels-last input
/// `(batch, steps, features)`: the maximum of each window. `strides` defaults to `pool_size`;
/// `"valid"` keeps only windows that fit (`out = floor((in - k) / s) + 1`), `"same"` gives
/// `out = ceil(in / s)` with the extra padding at the end (padded with −∞, so padding never wins) — Keras's arithmetic.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, MaxPooling1D};
/// use ferroflow_core::Tensor;
/// // Keras: MaxPooling1D(2, padding="same") on [1, 3, 2, 5, 4] -> [3, 5, 4].
/// let x = Tensor::from_vec(vec![1.0f32, 3.0, 2.0, 5.0, 4.0], &[1, 5, 1])?;
/// let y = LayerHandle::new(MaxPooling1D::new(2).padding("same")).call(&x, false)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![3.0, 5.0, 4.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct MaxPooling1D {
    base: LayerBase,
    /// The window size.
    pub pool_size: usize,
    /// The window steps (`None`: the pool size).
    pub strides: Option<usize>,
    padding: String,
}

impl MaxPooling1D {
    /// `MaxPooling1D(pool_size)` (Keras's default pool size is 2).
    pub fn new(pool_size: usize) -> MaxPooling1D {
        MaxPooling1D {
            base: LayerBase::new("MaxPooling1D"),
            pool_size,
            strides: None,
            padding: "valid".to_string(),
        }
    }

    /// The window steps (default: the pool size).
    pub fn strides(mut self, strides: usize) -> Self {
        self.strides = Some(strides);
        self
    }

    /// `"valid"` (the default) or `"same"`.
    pub fn padding(mut self, padding: &str) -> Self {
        self.padding = padding.to_string();
        self
    }

    fn geometry(&self) -> Result<(usize, usize, Padding)> {
        let name = &self.base.name;
        let strides = self.strides.unwrap_or(self.pool_size);
        check_positive(name, "pool_size", &[self.pool_size])?;
        check_positive(name, "strides", &[strides])?;
        Ok((self.pool_size, strides, parse_padding(name, &self.padding)?))
    }
}

impl Default for MaxPooling1D {
    /// `MaxPooling1D()` with Keras's default `pool_size=2`.
    fn default() -> Self {
        MaxPooling1D::new(2)
    }
}

impl Layer for MaxPooling1D {
    fn class_name(&self) -> &str {
        "MaxPooling1D"
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
        check_rank(&self.base.name, "MaxPooling1D", 3, &known(x.shape()))?;
        let (k, s, p) = self.geometry()?;
        pooled_shape(&self.base.name, &known(x.shape()), &[k], &[s], p)?;
        Ok(vec![ops::max_pool1d(x, k, s, p)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = first_shape(&self.base.name, input_shapes)?;
        check_rank(&self.base.name, "MaxPooling1D", 3, s)?;
        let (k, st, p) = self.geometry()?;
        Ok(vec![pooled_shape(&self.base.name, s, &[k], &[st], p)?])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "pool_size": [self.pool_size],
            "padding": self.padding.to_lowercase(),
            "strides": [self.strides.unwrap_or(self.pool_size)],
            "data_format": "channels_last",
        })
    }
}
