//! `keras.layers.MaxPooling2D`.

use ferroflow_core::ops::Padding;
use ferroflow_core::{ops, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, InputSpec, Layer, LayerBase};
use super::pool_utils::{
    check_positive, check_rank, first_shape, known, parse_padding, pooled_shape, PoolSize2D,
};
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
    /// The window size, `[height, width]`.
    pub pool_size: [usize; 2],
    /// The window steps, `[height, width]` (`None`: the pool size).
    pub strides: Option<[usize; 2]>,
    padding: String,
}

impl MaxPooling2D {
    /// `MaxPooling2D(pool_size)`; `pool_size` is one integer or a `(height, width)` pair.
    pub fn new(pool_size: impl Into<PoolSize2D>) -> MaxPooling2D {
        MaxPooling2D {
            base: LayerBase::new("MaxPooling2D"),
            pool_size: pool_size.into().0,
            strides: None,
            padding: "valid".to_string(),
        }
    }

    /// The window steps (default: the pool size).
    pub fn strides(mut self, strides: impl Into<PoolSize2D>) -> Self {
        self.strides = Some(strides.into().0);
        self
    }

    /// `"valid"` (the default) or `"same"`.
    pub fn padding(mut self, padding: &str) -> Self {
        self.padding = padding.to_string();
        self
    }

    fn geometry(&self) -> Result<([usize; 2], [usize; 2], Padding)> {
        let name = &self.base.name;
        let strides = self.strides.unwrap_or(self.pool_size);
        check_positive(name, "pool_size", &self.pool_size)?;
        check_positive(name, "strides", &strides)?;
        Ok((self.pool_size, strides, parse_padding(name, &self.padding)?))
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
        check_rank(&self.base.name, "MaxPooling2D", 4, &known(x.shape()))?;
        let (k, s, p) = self.geometry()?;
        pooled_shape(&self.base.name, &known(x.shape()), &k, &s, p)?;
        Ok(vec![ops::max_pool2d(x, k, s, p)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = first_shape(&self.base.name, input_shapes)?;
        check_rank(&self.base.name, "MaxPooling2D", 4, s)?;
        let (k, st, p) = self.geometry()?;
        Ok(vec![pooled_shape(&self.base.name, s, &k, &st, p)?])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "pool_size": self.pool_size,
            "padding": self.padding.to_lowercase(),
            "strides": self.strides.unwrap_or(self.pool_size),
            "data_format": "channels_last",
        })
    }
}
