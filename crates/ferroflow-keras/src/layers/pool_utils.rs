//! Helpers shared by the pooling layers (and the other core layers): Keras's `pool_size` /
//! `strides` tuples, the `padding` names, window arithmetic on symbolic shapes, and shape errors
//! that print `None` for unknown dimensions.

use ferroflow_core::ops::Padding;
use ferroflow_core::{Error, Result, Tensor};
use serde_json::{json, Value};

use super::layer::LayerBase;
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

/// The output shape of an `N`-D pooling layer on channels-last input `(batch, d1..dN, channels)`.
/// With `"valid"` padding a window larger than a known input dimension is an error (the op
/// would reject it; Keras would compute an empty output).
pub(crate) fn pooled_shape(
    layer: &str,
    s: &Shape,
    k: &[usize],
    st: &[usize],
    p: Padding,
) -> Result<Shape> {
    let mut out = s.clone();
    for (i, (&k, &st)) in k.iter().zip(st).enumerate() {
        if let (Padding::Valid, Some(n)) = (p, s[i + 1]) {
            if n < k {
                return Err(shape_error(
                    layer,
                    format!(
                        "layer {layer:?}: with padding \"valid\" the window (pool_size {k:?}) does not fit in input dimension {} of size {n}, input shape {}",
                        i + 1,
                        fmt_shape(s)
                    ),
                    &[s],
                ));
            }
        }
        out[i + 1] = pooled_len(s[i + 1], k, st, p);
    }
    Ok(out)
}

/// Global pooling over the spatial axes `1..rank-1` of channels-last input: the maximum or the
/// mean, keeping the reduced axes as size 1 when `keepdims` (Keras's `GlobalPooling` layers).
pub(crate) fn global_pool(
    layer: &str,
    class: &str,
    x: &ferroflow_core::Tensor,
    rank: usize,
    max: bool,
    keepdims: bool,
) -> Result<ferroflow_core::Tensor> {
    check_rank(layer, class, rank, &known(x.shape()))?;
    let axes: Vec<isize> = (1..rank as isize - 1).collect();
    if max {
        ferroflow_core::ops::reduce_max(x, axes, keepdims)
    } else {
        ferroflow_core::ops::reduce_mean(x, axes, keepdims)
    }
}

/// The output shape of a global pooling layer.
pub(crate) fn global_pooled_shape(
    layer: &str,
    class: &str,
    shapes: &[Shape],
    rank: usize,
    keepdims: bool,
) -> Result<Shape> {
    let s = first_shape(layer, shapes)?;
    check_rank(layer, class, rank, s)?;
    Ok(if keepdims {
        let mut out = s.clone();
        for d in out.iter_mut().take(rank - 1).skip(1) {
            *d = Some(1);
        }
        out
    } else {
        vec![s[0], s[rank - 1]]
    })
}

/// What Keras's `BasePooling` holds for the windowed pooling layers (`MaxPooling1D/2D`,
/// `AveragePooling1D/2D`): the window, its steps (`None`: the window, Keras's `strides=None`) and
/// the padding name, with the checks and shape arithmetic they share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PoolWindow<const N: usize> {
    pub pool_size: [usize; N],
    pub strides: Option<[usize; N]>,
    pub padding: String,
}

impl<const N: usize> PoolWindow<N> {
    /// A window of `pool_size`, strides equal to it, `"valid"` padding (Keras's defaults).
    pub(crate) fn new(pool_size: [usize; N]) -> Self {
        PoolWindow {
            pool_size,
            strides: None,
            padding: "valid".to_string(),
        }
    }

    /// The checked window, steps and padding.
    fn geometry(&self, layer: &str) -> Result<([usize; N], [usize; N], Padding)> {
        let strides = self.strides.unwrap_or(self.pool_size);
        check_positive(layer, "pool_size", &self.pool_size)?;
        check_positive(layer, "strides", &strides)?;
        Ok((
            self.pool_size,
            strides,
            parse_padding(layer, &self.padding)?,
        ))
    }

    /// The output shape for a channels-last input of rank `N + 2` (`class` names the layer kind
    /// in errors).
    pub(crate) fn output_shape(&self, layer: &str, class: &str, shapes: &[Shape]) -> Result<Shape> {
        let s = first_shape(layer, shapes)?;
        check_rank(layer, class, N + 2, s)?;
        let (k, st, p) = self.geometry(layer)?;
        pooled_shape(layer, s, &k, &st, p)
    }

    /// Checks `x` and runs `pool(x, window, strides, padding)` on it.
    pub(crate) fn apply(
        &self,
        layer: &str,
        class: &str,
        x: &Tensor,
        pool: impl FnOnce(&Tensor, [usize; N], [usize; N], Padding) -> Result<Tensor>,
    ) -> Result<Tensor> {
        check_rank(layer, class, N + 2, &known(x.shape()))?;
        let (k, s, p) = self.geometry(layer)?;
        pooled_shape(layer, &known(x.shape()), &k, &s, p)?;
        pool(x, k, s, p)
    }

    /// Keras's `get_config` of a pooling layer.
    pub(crate) fn config(&self, base: &LayerBase) -> Value {
        json!({
            "name": base.name,
            "trainable": base.trainable,
            "pool_size": self.pool_size.to_vec(),
            "padding": self.padding.to_lowercase(),
            "strides": self.strides.unwrap_or(self.pool_size).to_vec(),
            "data_format": "channels_last",
        })
    }
}
