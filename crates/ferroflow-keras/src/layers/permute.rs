//! `keras.layers.Permute`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::{first_shape, known, shape_error};
use crate::backend::{fmt_shape, Shape};

/// `keras.layers.Permute(dims)`: permutes the non-batch axes; `dims` is 1-based as in Keras
/// (`Permute((2, 1))` swaps the two axes of each sample, `(batch, 10, 64)` → `(batch, 64, 10)`).
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, Permute};
/// use ferroflow_core::{DType, ops};
/// let y = LayerHandle::new(Permute::new(&[2, 1])).call(&ops::ones(&[3, 10, 64], DType::F32), false)?;
/// assert_eq!(y.shape(), &[3, 64, 10]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Permute {
    base: LayerBase,
    /// The permutation of the non-batch axes, 1-based.
    pub dims: Vec<usize>,
}

impl Permute {
    /// `Permute(dims)`, `dims` 1-based.
    pub fn new(dims: &[usize]) -> Permute {
        Permute {
            base: LayerBase::new("Permute"),
            dims: dims.to_vec(),
        }
    }

    fn check(&self, input: &[Option<usize>]) -> Result<()> {
        let name = &self.base.name;
        let n = self.dims.len();
        let mut sorted = self.dims.clone();
        sorted.sort_unstable();
        if sorted != (1..=n).collect::<Vec<_>>() {
            return Err(Error::invalid(
                name,
                format!(
                    "layer {name:?}: invalid permutation argument `dims`: {:?}; it must be a permutation of 1..={n} (1-based axes)",
                    self.dims
                ),
            ));
        }
        if input.len() != n + 1 {
            return Err(shape_error(
                name,
                format!(
                    "layer {name:?}: dims {:?} permute {n} axes but the input {} has {} non-batch axes",
                    self.dims,
                    fmt_shape(input),
                    input.len().saturating_sub(1)
                ),
                &[input],
            ));
        }
        Ok(())
    }
}

impl Layer for Permute {
    fn class_name(&self) -> &str {
        "Permute"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        self.check(first_shape(&self.base.name, input_shapes)?)
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        self.check(&known(x.shape()))?;
        let perm: Vec<usize> = std::iter::once(0)
            .chain(self.dims.iter().copied())
            .collect();
        Ok(vec![ops::transpose(x, &perm)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = first_shape(&self.base.name, input_shapes)?;
        self.check(s)?;
        let out = std::iter::once(s[0])
            .chain(self.dims.iter().map(|&d| s[d]))
            .collect();
        Ok(vec![out])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "dims": self.dims,
        })
    }
}
