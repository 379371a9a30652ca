//! `keras.layers.Lambda`.

use std::sync::Arc;

use ferroflow_core::{Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// The function a [`Lambda`] layer applies.
pub type LambdaFn = Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

/// A function from an input shape (batch included, `None` = unknown) to the output shape.
pub type LambdaShapeFn = Arc<dyn Fn(&Shape) -> Result<Shape> + Send + Sync>;

/// A `Lambda` layer's mask function (Keras's callable `mask(inputs, mask)`): the output mask
/// from the input and its mask.
pub type LambdaMaskFn =
    Arc<dyn Fn(&Tensor, Option<&Tensor>) -> Result<Option<Tensor>> + Send + Sync>;

/// `keras.layers.Lambda(function, output_shape=None)`: wraps a Rust closure as a layer without
/// weights. The output shape is, as in Keras: a function of the input shape
/// ([`output_shape_fn`](Lambda::output_shape_fn)); a shape without the batch dimension, which
/// keeps the input's batch dimension ([`output_shape`](Lambda::output_shape)); or, by default,
/// inferred by running the function on zeros.
///
/// ```
/// use ferroflow_keras::layers::{Lambda, LayerHandle};
/// use ferroflow_core::{ops, Tensor};
/// let square = LayerHandle::new(Lambda::new(|x: &Tensor| ops::square(x)));
/// let y = square.call(&Tensor::from_vec(vec![1.0f32, -2.0, 3.0], &[1, 3])?, false)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![1.0, 4.0, 9.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Lambda {
    base: LayerBase,
    function: LambdaFn,
    output_shape: Option<LambdaShapeFn>,
    mask: Option<LambdaMaskFn>,
}

impl Lambda {
    /// `Lambda(function)`.
    pub fn new(function: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static) -> Lambda {
        Lambda {
            base: LayerBase::new("Lambda"),
            function: Arc::new(function),
            output_shape: None,
            mask: None,
        }
    }

    /// The output shape without the batch dimension (Keras's tuple `output_shape`); the batch
    /// dimension is the input's.
    pub fn output_shape(mut self, shape: &[Option<usize>]) -> Self {
        let shape = shape.to_vec();
        self.output_shape = Some(Arc::new(move |input: &Shape| {
            let mut out = vec![input.first().copied().flatten()];
            out.extend(shape.iter().copied());
            Ok(out)
        }));
        self
    }

    /// The output shape as a function of the input shape (both with the batch dimension).
    pub fn output_shape_fn(
        mut self,
        f: impl Fn(&Shape) -> Result<Shape> + Send + Sync + 'static,
    ) -> Self {
        self.output_shape = Some(Arc::new(f));
        self
    }
}

impl Lambda {
    /// Keras's `Lambda(mask=...)` as a callable: `f(input, input_mask)` gives the output's
    /// mask; with it the layer supports masking (Keras's `supports_masking` is true exactly
    /// when `mask` is given). `|_, m| Ok(m.cloned())` passes the mask through.
    pub fn mask(
        mut self,
        f: impl Fn(&Tensor, Option<&Tensor>) -> Result<Option<Tensor>> + Send + Sync + 'static,
    ) -> Self {
        self.mask = Some(Arc::new(f));
        self
    }
}

impl Layer for Lambda {
    fn class_name(&self) -> &str {
        "Lambda"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        Ok(vec![(self.function)(x)?])
    }

    fn supports_masking(&self) -> bool {
        self.mask.is_some()
    }

    /// Keras's `Lambda.compute_mask`: the `mask` function's result, `None` without one.
    fn compute_mask(&self, inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        match &self.mask {
            None => Ok(None),
            Some(f) => {
                let x = single_input(&self.base.name, inputs)?;
                f(x, masks.first().and_then(Option::as_ref))
            }
        }
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        match self.output_shape.clone() {
            Some(f) => Ok(vec![f(first_shape(&self.base.name, input_shapes)?)?]),
            None => super::layer::probe_output_shapes(self, input_shapes),
        }
    }

    fn get_config(&self) -> Value {
        // Keras stores the function's bytecode; a Rust closure cannot be serialized.
        json!({ "name": self.base.name, "trainable": self.base.trainable })
    }
}
