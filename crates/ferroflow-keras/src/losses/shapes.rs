//! Shared checks and conversions for the losses: Keras's `squeeze_or_expand_to_same_rank`, axis
//! normalisation and the `_keras_logits` lookup.

use ferroflow_core::{ops, Error, Result, Tensor};

use crate::activations::{keras_logits, LogitsKind};

/// Casts `y_true` to `y_pred`'s dtype and aligns the two as Keras's
/// `squeeze_or_expand_to_same_rank` does (one trailing axis of size 1 is squeezed, or a rank-1
/// tensor is expanded), then requires one shape.
///
/// Keras itself would broadcast mismatched shapes in the element-wise arithmetic (`(N, 1)`
/// labels against `(N, 3)` predictions silently give an `(N, 3)` difference); ferroflow makes
/// that an error naming the loss and both shapes.
pub(crate) fn align(name: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<(Tensor, Tensor)> {
    if !y_pred.dtype().is_float() {
        return Err(Error::dtype(
            name,
            "y_pred must be a float tensor",
            &[y_pred.dtype()],
        ));
    }
    let mut y = ops::cast(y_true, y_pred.dtype())?;
    let mut p = y_pred.clone();
    let (ry, rp) = (y.rank(), p.rank());
    if ry == rp + 1 && y.shape().last() == Some(&1) {
        if rp == 1 {
            p = ops::expand_dims(&p, -1)?;
        } else {
            y = ops::squeeze(&y, &[-1])?;
        }
    } else if rp == ry + 1 && p.shape().last() == Some(&1) {
        if ry == 1 {
            y = ops::expand_dims(&y, -1)?;
        } else {
            p = ops::squeeze(&p, &[-1])?;
        }
    }
    if y.shape() != p.shape() {
        return Err(Error::shape(
            name,
            "y_true and y_pred must have the same shape",
            &[y_true.shape(), y_pred.shape()],
        ));
    }
    if p.rank() == 0 {
        return Err(Error::shape(
            name,
            "y_true and y_pred must have at least one axis",
            &[y_true.shape(), y_pred.shape()],
        ));
    }
    Ok((y, p))
}

/// `axis` (negative counts from the end) as an index into a rank-`rank` tensor.
pub(crate) fn norm_axis(name: &str, axis: isize, rank: usize) -> Result<usize> {
    let a = if axis < 0 { axis + rank as isize } else { axis };
    if a < 0 || a >= rank as isize {
        return Err(Error::invalid(
            name,
            format!("axis {axis} is out of range for inputs of rank {rank}"),
        ));
    }
    Ok(a as usize)
}

/// Keras's TensorFlow-backend `_get_logits`: when `y_pred` was produced by a `kind` activation
/// (`softmax`, `sigmoid`), its logits are used and the loss is computed from logits (even when
/// `from_logits=True` was given, as Keras does with a warning). Otherwise `y_pred` itself.
///
/// Unlike Keras, which uses whatever `_keras_logits` a tensor carries, only logits of the matching
/// activation are used (a `sigmoid` output fed to `categorical_crossentropy` keeps the
/// probability path).
pub(crate) fn logits_of(y_pred: &Tensor, from_logits: bool, kind: LogitsKind) -> (Tensor, bool) {
    match keras_logits(y_pred) {
        Some((logits, k)) if k == kind && logits.shape() == y_pred.shape() => (logits, true),
        _ => (y_pred.clone(), from_logits),
    }
}

/// `1 - t`.
pub(crate) fn one_minus(t: &Tensor) -> Result<Tensor> {
    ops::add_scalar(&ops::neg(t)?, 1.0)
}

/// A scalar of `like`'s dtype.
pub(crate) fn scalar(like: &Tensor, v: f64) -> Tensor {
    Tensor::scalar_of(like.dtype(), v)
}
