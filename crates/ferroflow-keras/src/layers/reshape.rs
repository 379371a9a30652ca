//! `keras.layers.Reshape`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::{first_shape, known};
use crate::backend::{fmt_shape, Shape};

/// `keras.layers.Reshape(target_shape)`: reshapes each sample (the batch dimension is kept) to
/// `target_shape`, which may hold one `-1` to be inferred, as in Keras. A target whose size
/// does not match the input's is an error naming both shapes.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, Reshape};
/// use ferroflow_core::{DType, ops};
/// let reshape = LayerHandle::new(Reshape::new(&[3, -1]));
/// let y = reshape.call(&ops::ones(&[2, 12], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 3, 4]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Reshape {
    base: LayerBase,
    /// The target shape without the batch dimension (`-1`: inferred).
    pub target_shape: Vec<isize>,
}

impl Reshape {
    /// `Reshape(target_shape)`.
    pub fn new(target_shape: &[isize]) -> Reshape {
        Reshape {
            base: LayerBase::new("Reshape"),
            target_shape: target_shape.to_vec(),
        }
    }

    fn fmt_target(&self) -> String {
        let parts: Vec<String> = self.target_shape.iter().map(|d| d.to_string()).collect();
        if parts.len() == 1 {
            format!("({},)", parts[0])
        } else {
            format!("({})", parts.join(", "))
        }
    }

    fn size_error(&self, input: &[Option<usize>]) -> Error {
        let name = &self.base.name;
        let input = fmt_shape(input);
        let target = self.fmt_target();
        Error::Shape {
            op: name.clone(),
            msg: format!(
                "layer {name:?}: the total size of the tensor must be unchanged; received input_shape={input}, target_shape={target}"
            ),
            shapes: vec![input, target],
        }
    }

    /// Checks the target (at most one `-1`, no other negative value).
    fn check_target(&self) -> Result<()> {
        let name = &self.base.name;
        let unknown = self.target_shape.iter().filter(|&&d| d == -1).count();
        if unknown > 1 || self.target_shape.iter().any(|&d| d < -1) {
            return Err(Error::invalid(
                name,
                format!(
                    "layer {name:?}: target_shape may hold at most one -1 and no other negative dimension, got {}",
                    self.fmt_target()
                ),
            ));
        }
        Ok(())
    }

    /// The output shape for an input shape (batch included): `-1` is resolved when every
    /// non-batch input dimension is known.
    fn output_shape(&self, input: &[Option<usize>]) -> Result<Shape> {
        self.check_target()?;
        let size = input
            .iter()
            .skip(1)
            .try_fold(1usize, |acc, d| d.map(|d| acc * d));
        let known_prod: usize = self
            .target_shape
            .iter()
            .filter(|&&d| d >= 0)
            .map(|&d| d as usize)
            .product();
        let has_unknown = self.target_shape.contains(&-1);
        let inferred = match size {
            Some(size) => {
                if has_unknown {
                    if known_prod == 0 || size % known_prod != 0 {
                        return Err(self.size_error(input));
                    }
                    Some(size / known_prod)
                } else {
                    if size != known_prod {
                        return Err(self.size_error(input));
                    }
                    None
                }
            }
            None => None,
        };
        let mut out: Shape = vec![input.first().copied().flatten()];
        out.extend(self.target_shape.iter().map(
            |&d| {
                if d == -1 {
                    inferred
                } else {
                    Some(d as usize)
                }
            },
        ));
        Ok(out)
    }
}

impl Layer for Reshape {
    fn class_name(&self) -> &str {
        "Reshape"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let s = first_shape(&self.base.name, input_shapes)?;
        self.output_shape(s).map(|_| ())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let out = self.output_shape(&known(x.shape()))?;
        let dims: Vec<isize> = out.iter().map(|d| d.unwrap_or(0) as isize).collect();
        Ok(vec![ops::reshape(x, &dims)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = first_shape(&self.base.name, input_shapes)?;
        Ok(vec![self.output_shape(s)?])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "target_shape": self.target_shape,
        })
    }
}
