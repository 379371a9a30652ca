//! What Keras's merge layers share (`keras.layers.Merge`): checking that the inputs can be
//! combined elementwise, the output shape, and the elementwise fold over the inputs.
//!
//! Keras's rule (`Merge._compute_elemwise_op_output_shape`): the batch dimensions must agree
//! where known; the other dimensions are compared right-aligned, and each pair must be equal or
//! one of them 1 (unknown dimensions stay unknown). Inputs of lower rank get size-1 axes inserted
//! after the batch axis, as Keras's `expand_dims(x, 1)`.

use ferroflow_core::{ops, Error, Result, Tensor};

use crate::backend::{fmt_shape, Shape};

/// A shape error naming the layer and every input shape (Keras-formatted).
pub(crate) fn merge_error(layer: &str, msg: String, shapes: &[Shape]) -> Error {
    Error::Shape {
        op: layer.to_string(),
        msg,
        shapes: shapes.iter().map(|s| fmt_shape(s)).collect(),
    }
}

/// The symbolic shapes of concrete tensors (all dimensions known).
pub(crate) fn known_shapes(inputs: &[Tensor]) -> Vec<Shape> {
    inputs
        .iter()
        .map(|t| t.shape().iter().map(|&d| Some(d)).collect())
        .collect()
}

/// Checks that there are between `min` and `max` inputs (Keras: at least one; `Subtract`
/// exactly two), each with a batch axis.
pub(crate) fn check_count(
    layer: &str,
    class: &str,
    shapes: &[Shape],
    min: usize,
    max: Option<usize>,
) -> Result<()> {
    let n = shapes.len();
    if n < min || max.is_some_and(|m| n > m) {
        let want = match max {
            Some(m) if m == min => format!("exactly {min} inputs"),
            _ => format!("a list of at least {min} input(s)"),
        };
        return Err(merge_error(
            layer,
            format!("layer {layer:?}: a `{class}` layer should be called on {want}, got {n}"),
            shapes,
        ));
    }
    if let Some(s) = shapes.iter().find(|s| s.is_empty()) {
        return Err(merge_error(
            layer,
            format!(
                "layer {layer:?}: `{class}` inputs need a batch axis, got a scalar of shape {}",
                fmt_shape(s)
            ),
            shapes,
        ));
    }
    Ok(())
}

/// Keras's elementwise output shape of several inputs, or an error naming the layer and the
/// shapes.
pub(crate) fn elementwise_output_shape(
    layer: &str,
    class: &str,
    shapes: &[Shape],
) -> Result<Shape> {
    check_count(layer, class, shapes, 1, None)?;
    let mut batch: Option<usize> = None;
    for s in shapes {
        if let Some(b) = s[0] {
            if batch.is_some_and(|p| p != b) {
                return Err(merge_error(
                    layer,
                    format!(
                        "layer {layer:?}: cannot merge tensors with different batch sizes in a `{class}` layer"
                    ),
                    shapes,
                ));
            }
            batch = Some(b);
        }
    }
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(1);
    // Right-aligned non-batch dimensions.
    let mut out: Vec<Option<usize>> = vec![Some(1); rank - 1];
    for s in shapes {
        let tail = &s[1..];
        let off = (rank - 1) - tail.len();
        for (j, &d) in tail.iter().enumerate() {
            let o = &mut out[off + j];
            *o = match (*o, d) {
                (Some(1), d) => d,
                (a, Some(1)) => a,
                (Some(a), Some(b)) if a == b => Some(a),
                (Some(_), Some(_)) => {
                    return Err(merge_error(
                        layer,
                        format!(
                            "layer {layer:?}: inputs of a `{class}` layer have incompatible shapes"
                        ),
                        shapes,
                    ))
                }
                _ => None,
            };
        }
    }
    Ok(std::iter::once(batch).chain(out).collect())
}

/// Folds `f` over the inputs after checking their shapes and inserting size-1 axes after the
/// batch axis of lower-rank inputs.
pub(crate) fn fold_elementwise(
    layer: &str,
    class: &str,
    inputs: &[Tensor],
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    elementwise_output_shape(layer, class, &known_shapes(inputs))?;
    let rank = inputs.iter().map(|t| t.rank()).max().unwrap_or(1);
    let expand = |t: &Tensor| -> Result<Tensor> {
        if t.rank() == rank {
            return Ok(t.clone());
        }
        let mut s: Vec<isize> = vec![t.shape()[0] as isize];
        s.extend(std::iter::repeat_n(1isize, rank - t.rank()));
        s.extend(t.shape()[1..].iter().map(|&d| d as isize));
        ops::reshape(t, &s)
    };
    let mut acc = expand(&inputs[0])?;
    for x in &inputs[1..] {
        acc = f(&acc, &expand(x)?)?;
    }
    Ok(acc)
}

/// Defines a merge layer struct whose forward pass is an elementwise fold: the struct, `new`,
/// `Default`, and its `Layer` impl with analytic shapes.
macro_rules! elementwise_merge_layer {
    ($ty:ident, $class:literal, $min:expr, $max:expr, $call:expr) => {
        impl $ty {
            /// The layer with Keras's defaults.
            pub fn new() -> $ty {
                $ty {
                    base: $crate::layers::LayerBase::new($class),
                }
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                $ty::new()
            }
        }

        impl $crate::layers::Layer for $ty {
            fn class_name(&self) -> &str {
                $class
            }

            fn base(&self) -> &$crate::layers::LayerBase {
                &self.base
            }

            fn base_mut(&mut self) -> &mut $crate::layers::LayerBase {
                &mut self.base
            }

            fn build(
                &mut self,
                input_shapes: &[$crate::backend::Shape],
            ) -> ferroflow_core::Result<()> {
                $crate::layers::merge::check_count(
                    &self.base.name,
                    $class,
                    input_shapes,
                    $min,
                    $max,
                )?;
                $crate::layers::merge::elementwise_output_shape(
                    &self.base.name,
                    $class,
                    input_shapes,
                )?;
                Ok(())
            }

            fn call(
                &mut self,
                inputs: &[ferroflow_core::Tensor],
                _training: bool,
            ) -> ferroflow_core::Result<Vec<ferroflow_core::Tensor>> {
                let shapes = $crate::layers::merge::known_shapes(inputs);
                $crate::layers::merge::check_count(&self.base.name, $class, &shapes, $min, $max)?;
                let f: fn(
                    &str,
                    &[ferroflow_core::Tensor],
                ) -> ferroflow_core::Result<ferroflow_core::Tensor> = $call;
                Ok(vec![f(&self.base.name, inputs)?])
            }

            fn compute_output_shape(
                &mut self,
                input_shapes: &[$crate::backend::Shape],
            ) -> ferroflow_core::Result<Vec<$crate::backend::Shape>> {
                $crate::layers::merge::check_count(
                    &self.base.name,
                    $class,
                    input_shapes,
                    $min,
                    $max,
                )?;
                Ok(vec![$crate::layers::merge::elementwise_output_shape(
                    &self.base.name,
                    $class,
                    input_shapes,
                )?])
            }
        }
    };
}

pub(crate) use elementwise_merge_layer;
