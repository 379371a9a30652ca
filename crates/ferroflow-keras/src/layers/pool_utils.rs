//! Helpers shared by the pooling layers (and the other core layers): Keras's `pool_size` /
//! `strides` tuples, the `padding` names, window arithmetic on symbolic shapes, and shape errors
//! that print `None` for unknown dimensions.

use ferroflow_core::ops::Padding;
use ferroflow_core::{Error, Result};

use crate::backend::{fmt_shape, Shape};

/// A 2-D pool size or stride as Keras takes it: one integer for both axes (`2`) or a pair
/// (`(2, 3)`, along height then width).
///
/// ```
/// use ferroflow_keras::layers::PoolSize2D;
/// assert_eq!(PoolSize2D::from(2).0, [2, 2]);
/// assert_eq!(PoolSize2D::from((2, 3)).0, [2, 3]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSize2D(pub [usize; 2]);

impl From<usize> for PoolSize2D {
    fn from(v: usize) -> Self {
        PoolSize2D([v, v])
    }
}

impl From<(usize, usize)> for PoolSize2D {
    fn from((h, w): (usize, usize)) -> Self {
        PoolSize2D([h, w])
    }
}

impl From<[usize; 2]> for PoolSize2D {
    fn from(v: [usize; 2]) -> Self {
        PoolSize2D(v)
    }
}

/// The padding names pooling layers accept.
pub(crate) const PADDING_NAMES: &[&str] = &["valid", "same"];

/// Parses a Keras `padding` name (`"valid"` or `"same"`, case-insensitively as Keras's
/// `standardize_padding`); anything else is an error listing the valid names.
pub(crate) fn parse_padding(layer: &str, name: &str) -> Result<Padding> {
    Padding::parse(name).ok_or_else(|| {
        Error::invalid(
            layer,
            format!(
                "layer {layer:?}: unknown padding name {name:?}; valid names are: {}",
                PADDING_NAMES.join(", ")
            ),
        )
    })
}

/// Checks that every size (pool size, stride) is at least 1.
pub(crate) fn check_positive(layer: &str, what: &str, values: &[usize]) -> Result<()> {
    if values.contains(&0) {
        return Err(Error::invalid(
            layer,
            format!("layer {layer:?}: {what} must be positive integers, got {values:?}"),
        ));
    }
    Ok(())
}

/// The output length of one pooled axis (Keras/TensorFlow window arithmetic): `valid`:
/// `floor((in - k) / s) + 1` (0 when the window does not fit); `same`: `ceil(in / s)`.
pub(crate) fn pooled_len(
    len: Option<usize>,
    k: usize,
    s: usize,
    padding: Padding,
) -> Option<usize> {
    let n = len?;
    Some(match padding {
        Padding::Valid => {
            if n < k {
                0
            } else {
                (n - k) / s + 1
            }
        }
        Padding::Same => n.div_ceil(s),
    })
}

/// An `Error::Shape` naming `layer` whose shapes may hold unknown dimensions (printed `None`).
pub(crate) fn shape_error(
    layer: &str,
    msg: impl Into<String>,
    shapes: &[&[Option<usize>]],
) -> Error {
    Error::Shape {
        op: layer.to_string(),
        msg: msg.into(),
        shapes: shapes.iter().map(|s| fmt_shape(s)).collect(),
    }
}

/// A concrete shape as a Keras shape (every dimension known).
pub(crate) fn known(shape: &[usize]) -> Shape {
    shape.iter().map(|&d| Some(d)).collect()
}

/// Checks the rank of a pooling layer's input (`expected` counts the batch dimension).
pub(crate) fn check_rank(
    layer: &str,
    class: &str,
    expected: usize,
    shape: &[Option<usize>],
) -> Result<()> {
    if shape.len() != expected {
        return Err(shape_error(
            layer,
            format!(
                "layer {layer:?} ({class}) expects input of rank {expected}, got rank {} with shape {}",
                shape.len(),
                fmt_shape(shape)
            ),
            &[shape],
        ));
    }
    Ok(())
}

/// The first input shape of a layer, or an error naming it.
pub(crate) fn first_shape<'a>(layer: &str, shapes: &'a [Shape]) -> Result<&'a Shape> {
    match shapes {
        [s] => Ok(s),
        _ => Err(Error::invalid(
            layer,
            format!(
                "layer {layer:?} expects exactly one input, got {}",
                shapes.len()
            ),
        )),
    }
}
