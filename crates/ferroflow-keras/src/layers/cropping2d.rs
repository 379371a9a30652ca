//! `keras.layers.Cropping2D`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::{json, Value};

use super::conv_utils::{check_rank, Pads2};
use super::layer::{single_input, InputSpec, Layer, LayerBase};
use crate::backend::{batch_shape, fmt_shape, Shape};

/// `keras.layers.Cropping2D(cropping=((0, 0), (0, 0)))`: removes rows and columns at the edges
/// of channels-last images `[batch, rows, cols, channels]` (rank 4).
///
/// `cropping` takes Keras's three forms: `2` (every side), `(h, w)` (`h` rows from top and
/// bottom, `w` columns from left and right) or `((top, bottom), (left, right))`. As Keras,
/// cropping everything along an axis (`top + bottom >= rows`) is an error.
///
/// ```
/// use ferroflow_keras::layers::{Cropping2D, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let crop = LayerHandle::new(Cropping2D::new(((2, 2), (4, 4))));
/// let y = crop.call(&ops::ones(&[2, 28, 28, 3], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 24, 20, 3]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Cropping2D {
    base: LayerBase,
    /// `[[top, bottom], [left, right]]`.
    pub cropping: [[usize; 2]; 2],
}

impl Cropping2D {
    /// `Cropping2D(cropping)`: `1`, `(h, w)` or `((top, bottom), (left, right))`.
    pub fn new(cropping: impl Into<Pads2>) -> Cropping2D {
        Cropping2D {
            base: LayerBase::new("Cropping2D"),
            cropping: cropping.into().0,
        }
    }

    /// The cropped size of one axis (`None` stays `None`), or an error when nothing is left.
    fn cropped(&self, shape: &Shape, axis: usize) -> Result<Option<usize>> {
        let [a, b] = self.cropping[axis];
        match shape[axis + 1] {
            None => Ok(None),
            Some(d) if a + b < d => Ok(Some(d - a - b)),
            Some(d) => {
                let name = &self.base.name;
                let what = if axis == 0 { "rows" } else { "columns" };
                Err(Error::invalid(
                    name,
                    format!(
                        "layer {name:?}: cropping {:?} removes all {d} {what} of the input {}",
                        self.cropping,
                        fmt_shape(shape)
                    ),
                ))
            }
        }
    }
}

impl Default for Cropping2D {
    /// Keras's default `cropping=((0, 0), (0, 0))`.
    fn default() -> Self {
        Cropping2D::new(0)
    }
}

impl Layer for Cropping2D {
    fn class_name(&self) -> &str {
        "Cropping2D"
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
        if let Some(s) = input_shapes.first() {
            check_rank(&self.base.name, "Cropping2D", s, 4)?;
        }
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let shape = batch_shape(x.shape());
        check_rank(&self.base.name, "Cropping2D", &shape, 4)?;
        let h = self.cropped(&shape, 0)?.unwrap_or(0);
        let w = self.cropped(&shape, 1)?.unwrap_or(0);
        let [[t, _], [l, _]] = self.cropping;
        let y = ops::slice(x, &[0, t, l, 0], &[-1, h as isize, w as isize, -1])?;
        Ok(vec![y])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = super::conv_utils::first_shape(&self.base.name, input_shapes)?;
        check_rank(&self.base.name, "Cropping2D", s, 4)?;
        Ok(vec![vec![
            s[0],
            self.cropped(s, 0)?,
            self.cropped(s, 1)?,
            s[3],
        ]])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "cropping": self.cropping,
        })
    }
}
