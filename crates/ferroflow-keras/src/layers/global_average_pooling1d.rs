//! `keras.layers.GlobalAveragePooling1D`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, InputSpec, Layer, LayerBase};
use super::pool_utils::{global_pool, global_pooled_shape};
use crate::backend::Shape;

/// `keras.layers.GlobalAveragePooling1D(data_format=None, keepdims=False)` on channels-last input
/// `(batch, steps, features)`: the mean over the steps axes, giving `(batch, channels)`, or
/// `(batch, 1, channels)` with `keepdims(true)` — as Keras.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, GlobalAveragePooling1D};
/// use ferroflow_core::Tensor;
/// let x = Tensor::from_vec(vec![1.0f32, 6.0, 4.0, 2.0, 4.0, 4.0], &[1, 3, 2])?;
/// let y = LayerHandle::new(GlobalAveragePooling1D::new()).call(&x, false)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![3.0, 4.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct GlobalAveragePooling1D {
    base: LayerBase,
    /// Whether to keep the pooled axes as size 1.
    pub keepdims: bool,
}

impl GlobalAveragePooling1D {
    /// `GlobalAveragePooling1D()`.
    pub fn new() -> GlobalAveragePooling1D {
        GlobalAveragePooling1D {
            base: LayerBase::new("GlobalAveragePooling1D"),
            keepdims: false,
        }
    }

    /// Keeps the pooled axes as size 1 (Keras's `keepdims=True`).
    pub fn keepdims(mut self, keepdims: bool) -> Self {
        self.keepdims = keepdims;
        self
    }
}

impl Default for GlobalAveragePooling1D {
    fn default() -> Self {
        GlobalAveragePooling1D::new()
    }
}

impl Layer for GlobalAveragePooling1D {
    fn class_name(&self) -> &str {
        "GlobalAveragePooling1D"
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
        global_pooled_shape(
            &self.base.name,
            "GlobalAveragePooling1D",
            input_shapes,
            3,
            self.keepdims,
        )?;
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        Ok(vec![global_pool(
            &self.base.name,
            "GlobalAveragePooling1D",
            x,
            3,
            false,
            self.keepdims,
        )?])
    }

    /// Keras sets `supports_masking = True` on `GlobalAveragePooling1D`: it consumes the mask.
    fn supports_masking(&self) -> bool {
        true
    }

    /// Keras's `compute_mask` returns `None`: the pooled output carries no mask.
    fn compute_mask(
        &self,
        _inputs: &[Tensor],
        _masks: &[Option<Tensor>],
    ) -> Result<Option<Tensor>> {
        Ok(None)
    }

    /// Keras's `call(inputs, mask)`: with a mask `[batch, steps]`, the average over the kept
    /// steps only, `Σ_t mask·x / Σ_t mask` (a sample with every step masked gives NaN = 0/0,
    /// as in Keras).
    fn call_with_mask(
        &mut self,
        inputs: &[Tensor],
        masks: &[Option<Tensor>],
        training: bool,
    ) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let Some(Some(mask)) = masks.first() else {
            return self.call(inputs, training);
        };
        let name = &self.base.name;
        if x.rank() != 3 || mask.shape() != &x.shape()[..2] {
            return Err(Error::shape(
                name,
                format!(
                    "layer {name:?}: the mask must have shape [batch, steps] = {:?} for an input of shape {:?}, got {:?}",
                    &x.shape()[..x.rank().min(2)],
                    x.shape(),
                    mask.shape()
                ),
                &[mask.shape(), x.shape()],
            ));
        }
        let (b, t) = (x.shape()[0] as isize, x.shape()[1] as isize);
        let m = ops::reshape(&ops::cast(mask, x.dtype())?, &[b, t, 1])?;
        let total = ops::reduce_sum(&ops::mul(x, &m)?, 1, self.keepdims)?;
        let count = ops::reduce_sum(&m, 1, self.keepdims)?;
        Ok(vec![ops::div(&total, &count)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![global_pooled_shape(
            &self.base.name,
            "GlobalAveragePooling1D",
            input_shapes,
            3,
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
