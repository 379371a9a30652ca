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

/// Checks that each given mask matches its input's leading dimensions (a mask `[batch, time]`
/// for an input `[batch, time, ...]`), naming the layer and both shapes otherwise.
pub(crate) fn check_masks(layer: &str, inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<()> {
    for (i, (x, m)) in inputs.iter().zip(masks).enumerate() {
        let Some(m) = m else { continue };
        if m.rank() > x.rank() || x.shape()[..m.rank()] != *m.shape() {
            return Err(Error::shape(
                layer,
                format!(
                    "layer {layer:?}: the mask of input {i} does not match the input's leading \
                     dimensions (mask shape {:?}, input shape {:?})",
                    m.shape(),
                    x.shape()
                ),
                &[m.shape(), x.shape()],
            ));
        }
    }
    Ok(())
}

/// Keras's `Merge.compute_mask` (Add, Subtract, Multiply, Average, Maximum, Minimum): `None`
/// unless every input carries a mask, else the logical OR of the masks (a step is kept if any
/// input keeps it). Masks of different shapes are an error naming the layer.
pub(crate) fn or_masks(
    layer: &str,
    inputs: &[Tensor],
    masks: &[Option<Tensor>],
) -> Result<Option<Tensor>> {
    if masks.is_empty() || masks.iter().any(Option::is_none) {
        return Ok(None);
    }
    check_masks(layer, inputs, masks)?;
    let all: Vec<&Tensor> = masks.iter().flatten().collect();
    let mut out = all[0].clone();
    for m in &all[1..] {
        if m.shape() != out.shape() {
            return Err(Error::shape(
                layer,
                format!(
                    "layer {layer:?}: the inputs' masks have different shapes ({:?} and {:?})",
                    out.shape(),
                    m.shape()
                ),
                &[out.shape(), m.shape()],
            ));
        }
        out = ops::logical_or(&out, m)?;
    }
    Ok(Some(out))
}

/// A bool mask `[batch, time]` broadcast to its input's full shape `[batch, time, ...]`
/// (Keras's `broadcast_to(expand_dims(mask, -1), shape(x))`).
fn full_mask(mask: &Tensor, x: &Tensor) -> Result<Tensor> {
    let mut s: Vec<isize> = mask.shape().iter().map(|&d| d as isize).collect();
    s.extend(std::iter::repeat_n(1isize, x.rank() - mask.rank()));
    ops::broadcast_to(&ops::reshape(mask, &s)?, x.shape())
}

/// The forward pass of an elementwise merge with its inputs' masks (Keras 3.15's
/// `_merge_function` bodies). `Add`, `Subtract` and `Average` ignore the masks in their values.
/// `Maximum`/`Minimum` (Keras's `_apply_merge_op_and_or_mask`): a masked entry of an input
/// takes the running result's value, so it does not take part. `Multiply`: masked entries
/// count as 1, and when every input is masked the entries masked in all inputs are 0.
pub(crate) fn masked_merge(
    layer: &str,
    class: &str,
    inputs: &[Tensor],
    masks: &[Option<Tensor>],
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    check_masks(layer, inputs, masks)?;
    let same_rank = inputs.iter().all(|t| t.rank() == inputs[0].rank());
    if !matches!(class, "Maximum" | "Minimum" | "Multiply") || !same_rank {
        return fold_elementwise(layer, class, inputs, f);
    }
    elementwise_output_shape(layer, class, &known_shapes(inputs))?;
    let full: Vec<Option<Tensor>> = inputs
        .iter()
        .zip(masks.iter().chain(std::iter::repeat(&None)))
        .map(|(x, m)| m.as_ref().map(|m| full_mask(m, x)).transpose())
        .collect::<Result<_>>()?;
    if class == "Multiply" {
        let all_masked = full.iter().all(Option::is_some);
        let mut out: Option<Tensor> = None;
        let mut out_mask: Option<Tensor> = None;
        for (x, m) in inputs.iter().zip(&full) {
            let x = match m {
                Some(m) => {
                    let one = ops::ones_like(x)?;
                    let x = ops::where_(m, x, &ops::broadcast_to(&one, x.shape())?)?;
                    if all_masked {
                        out_mask = Some(match out_mask {
                            None => m.clone(),
                            Some(o) => ops::logical_or(&o, m)?,
                        });
                    }
                    x
                }
                None => x.clone(),
            };
            out = Some(match out {
                None => x,
                Some(o) => f(&o, &x)?,
            });
        }
        let out = out.ok_or_else(|| Error::invalid(layer, "no inputs"))?;
        return match out_mask {
            Some(m) => {
                let m = ops::broadcast_to(&m, out.shape())?;
                ops::where_(&m, &out, &ops::zeros_like(&out)?)
            }
            None => Ok(out),
        };
    }
    // Maximum / Minimum.
    let mut out = inputs[0].clone();
    let mut out_mask = full[0].clone();
    for (x, m) in inputs[1..].iter().zip(&full[1..]) {
        let mut x = x.clone();
        if let Some(m) = m {
            x = ops::where_(m, &x, &out)?;
        }
        if let Some(om) = &out_mask {
            out = ops::where_(om, &out, &x)?;
        }
        out_mask = match (&out_mask, m) {
            (Some(a), Some(b)) => Some(ops::logical_or(a, b)?),
            _ => None,
        };
        out = f(&out, &x)?;
    }
    Ok(out)
}

/// Defines a merge layer struct whose forward pass is an elementwise fold: the struct, `new`,
/// `Default`, and its `Layer` impl with analytic shapes.
macro_rules! elementwise_merge_layer {
    ($ty:ident, $class:literal, $min:expr, $max:expr, $call:expr, $masked:expr) => {
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

            /// Keras's merge layers support masking (`supports_masking = True`).
            fn supports_masking(&self) -> bool {
                true
            }

            /// Keras's `Merge.compute_mask`: the OR of the inputs' masks, `None` unless every
            /// input carries one.
            fn compute_mask(
                &self,
                inputs: &[ferroflow_core::Tensor],
                masks: &[Option<ferroflow_core::Tensor>],
            ) -> ferroflow_core::Result<Option<ferroflow_core::Tensor>> {
                $crate::layers::merge::or_masks(&self.base.name, inputs, masks)
            }

            fn call_with_mask(
                &mut self,
                inputs: &[ferroflow_core::Tensor],
                masks: &[Option<ferroflow_core::Tensor>],
                _training: bool,
            ) -> ferroflow_core::Result<Vec<ferroflow_core::Tensor>> {
                let shapes = $crate::layers::merge::known_shapes(inputs);
                $crate::layers::merge::check_count(&self.base.name, $class, &shapes, $min, $max)?;
                let f: fn(
                    &str,
                    &[ferroflow_core::Tensor],
                    &[Option<ferroflow_core::Tensor>],
                ) -> ferroflow_core::Result<ferroflow_core::Tensor> = $masked;
                Ok(vec![f(&self.base.name, inputs, masks)?])
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
