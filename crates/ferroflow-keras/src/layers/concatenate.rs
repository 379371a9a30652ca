//! `keras.layers.Concatenate`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{Layer, LayerBase};
use super::merge::{check_count, known_shapes, merge_error};
use crate::backend::Shape;

/// `keras.layers.Concatenate(axis=-1)`: joins its inputs (at least one) along `axis`. All inputs
/// have the same rank, and every dimension but `axis` agrees (unknown dimensions are compatible
/// with anything), as Keras's `Concatenate.build` requires; the output's `axis` dimension is the
/// sum of the inputs' (unknown if any is unknown).
///
/// ```
/// use ferroflow_keras::layers::{Concatenate, LayerHandle};
/// use ferroflow_core::Tensor;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2])?;
/// let b = Tensor::from_vec(vec![3.0f32], &[1, 1])?;
/// let y = LayerHandle::new(Concatenate::new()).call_many(&[a, b], false)?;
/// assert_eq!(y[0].shape(), &[1, 3]);
/// assert_eq!(y[0].to_vec::<f32>()?, vec![1.0, 2.0, 3.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Concatenate {
    base: LayerBase,
    /// The axis to join along (negative counts from the end; the batch axis is 0).
    pub axis: isize,
}

impl Concatenate {
    /// `Concatenate()` joining along the last axis.
    pub fn new() -> Concatenate {
        Concatenate {
            base: LayerBase::new("Concatenate"),
            axis: -1,
        }
    }

    /// The axis to join along.
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// Checks the shapes and returns the output shape.
    fn output_shape(&self, shapes: &[Shape]) -> Result<Shape> {
        let name = &self.base.name;
        check_count(name, "Concatenate", shapes, 1, None)?;
        let rank = shapes[0].len();
        if shapes.iter().any(|s| s.len() != rank) {
            return Err(merge_error(
                name,
                format!("layer {name:?}: a `Concatenate` layer requires inputs of the same rank"),
                shapes,
            ));
        }
        let axis = if self.axis < 0 {
            self.axis + rank as isize
        } else {
            self.axis
        };
        if axis < 0 || axis >= rank as isize {
            return Err(Error::invalid(
                name,
                format!(
                    "layer {name:?}: axis {} is out of range for inputs of rank {rank}",
                    self.axis
                ),
            ));
        }
        let axis = axis as usize;
        let mut out = shapes[0].clone();
        for s in &shapes[1..] {
            for (j, (o, &d)) in out.iter_mut().zip(s.iter()).enumerate() {
                if j == axis {
                    *o = match (*o, d) {
                        (Some(a), Some(b)) => Some(a + b),
                        _ => None,
                    };
                } else {
                    *o = match (*o, d) {
                        (Some(a), Some(b)) if a != b => {
                            return Err(merge_error(
                                name,
                                format!(
                                    "layer {name:?}: a `Concatenate` layer requires inputs with \
                                     matching shapes except for the concatenation axis {}",
                                    self.axis
                                ),
                                shapes,
                            ))
                        }
                        (Some(a), _) | (_, Some(a)) => Some(a),
                        _ => None,
                    };
                }
            }
        }
        Ok(out)
    }
}

impl Default for Concatenate {
    fn default() -> Self {
        Concatenate::new()
    }
}

impl Layer for Concatenate {
    fn class_name(&self) -> &str {
        "Concatenate"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        self.output_shape(input_shapes).map(|_| ())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        self.output_shape(&known_shapes(inputs))?;
        let refs: Vec<&Tensor> = inputs.iter().collect();
        Ok(vec![ops::concat(&refs, self.axis)?])
    }

    /// Keras sets `supports_masking = True` on `Concatenate`.
    fn supports_masking(&self) -> bool {
        true
    }

    /// Keras 3.15's `Concatenate.compute_mask`: `None` when no input carries a mask; else each
    /// input's mask widened to the input's full shape (all-true for an unmasked input, a
    /// `[batch, time]` mask repeated over the features), the masks joined along `axis`, and
    /// `any` over the last axis. So with `axis=-1` a step is kept if any input keeps it (all
    /// steps when one input is unmasked); with `axis=1` the time masks are joined.
    fn compute_mask(&self, inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        if masks.iter().all(Option::is_none) {
            return Ok(None);
        }
        super::merge::check_masks(&self.base.name, inputs, masks)?;
        let full: Vec<Tensor> = inputs
            .iter()
            .zip(masks.iter().chain(std::iter::repeat(&None)))
            .map(|(x, m)| match m {
                None => ops::cast(&ops::ones_like(x)?, ferroflow_core::DType::Bool),
                Some(m) => {
                    let mut s: Vec<isize> = m.shape().iter().map(|&d| d as isize).collect();
                    s.extend(std::iter::repeat_n(1isize, x.rank() - m.rank()));
                    ops::broadcast_to(&ops::reshape(m, &s)?, x.shape())
                }
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = full.iter().collect();
        let joined = ops::concat(&refs, self.axis)?;
        Ok(Some(ops::reduce_any(&joined, -1, false)?))
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![self.output_shape(input_shapes)?])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "axis": self.axis,
        })
    }
}
