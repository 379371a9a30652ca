//! `keras.layers.RepeatVector`.

use ferroflow_core::{ops, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, InputSpec, Layer, LayerBase};
use super::pool_utils::{check_rank, first_shape, known};
use crate::backend::Shape;

/// `keras.layers.RepeatVector(n)`: repeats a `(batch, features)` input `n` times along a new
/// axis 1, giving `(batch, n, features)`, as Keras.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, RepeatVector};
/// use ferroflow_core::Tensor;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2])?;
/// let y = LayerHandle::new(RepeatVector::new(3)).call(&x, false)?;
/// assert_eq!(y.shape(), &[1, 3, 2]);
/// assert_eq!(y.to_vec::<f32>()?, vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct RepeatVector {
    base: LayerBase,
    /// How many times to repeat.
    pub n: usize,
}

impl RepeatVector {
    /// `RepeatVector(n)`.
    pub fn new(n: usize) -> RepeatVector {
        RepeatVector {
            base: LayerBase::new("RepeatVector"),
            n,
        }
    }
}

impl Layer for RepeatVector {
    fn class_name(&self) -> &str {
        "RepeatVector"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        Some(InputSpec::ndim(2))
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        check_rank(
            &self.base.name,
            "RepeatVector",
            2,
            first_shape(&self.base.name, input_shapes)?,
        )
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        check_rank(&self.base.name, "RepeatVector", 2, &known(x.shape()))?;
        let x = ops::expand_dims(x, 1)?;
        Ok(vec![ops::tile(&x, &[1, self.n, 1])?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = first_shape(&self.base.name, input_shapes)?;
        check_rank(&self.base.name, "RepeatVector", 2, s)?;
        Ok(vec![vec![s[0], Some(self.n), s[1]]])
    }

    fn get_config(&self) -> Value {
        json!({ "name": self.base.name, "trainable": self.base.trainable, "n": self.n })
    }
}
