//! Helpers shared by the convolution, padding and resizing layers: Keras's "int or tuple"
//! arguments ([`Pair`], [`Pads2`]), the `padding=` argument ([`ConvPadding`]), output-size
//! arithmetic (Keras's `compute_conv_output_shape` / `deconv_output_length`) and input checks.

use ferroflow_core::kernels::padding::effective_window;
use ferroflow_core::ops::Padding;
use ferroflow_core::{Error, Result};

use crate::backend::{fmt_shape, unknown_name, Shape};

/// An "int or pair" argument (`kernel_size=3` or `kernel_size=(3, 5)`, `strides`,
/// `dilation_rate`, `size`): a single integer is used for both spatial axes, as in Keras.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair(pub [usize; 2]);

impl From<usize> for Pair {
    fn from(v: usize) -> Pair {
        Pair([v, v])
    }
}

impl From<(usize, usize)> for Pair {
    fn from((a, b): (usize, usize)) -> Pair {
        Pair([a, b])
    }
}

impl From<[usize; 2]> for Pair {
    fn from(v: [usize; 2]) -> Pair {
        Pair(v)
    }
}

/// Per-side padding or cropping of the two spatial axes, `[[top, bottom], [left, right]]`, from
/// Keras's three forms: `1` (all sides), `(h, w)` (symmetric per axis) or
/// `((top, bottom), (left, right))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pads2(pub [[usize; 2]; 2]);

impl From<usize> for Pads2 {
    fn from(v: usize) -> Pads2 {
        Pads2([[v, v], [v, v]])
    }
}

impl From<(usize, usize)> for Pads2 {
    fn from((h, w): (usize, usize)) -> Pads2 {
        Pads2([[h, h], [w, w]])
    }
}

impl From<((usize, usize), (usize, usize))> for Pads2 {
    fn from(((t, b), (l, r)): ((usize, usize), (usize, usize))) -> Pads2 {
        Pads2([[t, b], [l, r]])
    }
}

impl From<[[usize; 2]; 2]> for Pads2 {
    fn from(v: [[usize; 2]; 2]) -> Pads2 {
        Pads2(v)
    }
}

/// Keras's `padding=` argument of convolution layers: `"valid"`, `"same"`, or (Conv1D only)
/// `"causal"`. Names are case-insensitive, as Keras lower-cases them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvPadding {
    /// No padding.
    Valid,
    /// Zero padding so that `out = ceil(in / stride)`; the odd element at the bottom/right.
    Same,
    /// Left-padding by `dilation·(kernel-1)` (1-D only): output `t` sees inputs `<= t`.
    Causal,
}

impl ConvPadding {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            ConvPadding::Valid => "valid",
            ConvPadding::Same => "same",
            ConvPadding::Causal => "causal",
        }
    }

    /// Parses a name (case-insensitively); an error lists the valid names.
    pub fn get(name: &str) -> Result<ConvPadding> {
        match name.to_ascii_lowercase().as_str() {
            "valid" => Ok(ConvPadding::Valid),
            "same" => Ok(ConvPadding::Same),
            "causal" => Ok(ConvPadding::Causal),
            _ => Err(unknown_name("padding", name, &["valid", "same", "causal"])),
        }
    }

    /// The core op's padding (`causal` is done by explicit padding, then `valid`).
    pub fn op_padding(self) -> Padding {
        match self {
            ConvPadding::Same => Padding::Same,
            ConvPadding::Valid | ConvPadding::Causal => Padding::Valid,
        }
    }
}

/// A `padding=` argument as given: a parsed mode, or the unknown name (reported when the layer
/// is built, listing the names that layer accepts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaddingArg(pub(crate) std::result::Result<ConvPadding, String>);

impl From<&str> for PaddingArg {
    fn from(name: &str) -> Self {
        PaddingArg(ConvPadding::get(name).map_err(|_| name.to_string()))
    }
}

impl From<ConvPadding> for PaddingArg {
    fn from(p: ConvPadding) -> Self {
        PaddingArg(Ok(p))
    }
}

impl From<Padding> for PaddingArg {
    fn from(p: Padding) -> Self {
        PaddingArg(Ok(match p {
            Padding::Valid => ConvPadding::Valid,
            Padding::Same => ConvPadding::Same,
        }))
    }
}

/// Resolves a layer's `padding` argument; `causal` is refused unless `allow_causal` (Keras only
/// accepts it for 1-D convolutions). Errors list the names the layer accepts.
pub fn resolve_padding(p: &PaddingArg, allow_causal: bool) -> Result<ConvPadding> {
    let valid: &[&str] = if allow_causal {
        &["valid", "same", "causal"]
    } else {
        &["valid", "same"]
    };
    match &p.0 {
        Ok(ConvPadding::Causal) if !allow_causal => Err(unknown_name("padding", "causal", valid)),
        Ok(v) => Ok(*v),
        Err(name) => Err(unknown_name("padding", name, valid)),
    }
}

/// Keras's `compute_conv_output_shape` along one axis: `valid` → `floor((in - d(k-1) - 1)/s) + 1`,
/// `same`/`causal` → `ceil(in/s)`; `None` stays `None`. An error when a `valid` window does not
/// fit a known input (Keras: "computed output size would be negative").
pub fn conv_output_length(
    layer: &str,
    input: Option<usize>,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: ConvPadding,
) -> Result<Option<usize>> {
    let Some(n) = input else { return Ok(None) };
    let s = stride.max(1);
    match padding {
        ConvPadding::Same | ConvPadding::Causal => Ok(Some(n.div_ceil(s))),
        ConvPadding::Valid => {
            let eff = effective_window(kernel, dilation);
            if n < eff {
                Err(Error::invalid(
                    layer,
                    format!(
                        "layer {layer:?}: computed output size would be negative: input size {n} \
                         is smaller than the (dilated) kernel size {eff}"
                    ),
                ))
            } else {
                Ok(Some((n - eff) / s + 1))
            }
        }
    }
}

/// Keras's `deconv_output_length` along one axis, with `k_eff = d(k-1) + 1`. Without
/// `output_padding`: `valid` → `in·s + max(k_eff - s, 0)`, `same` → `in·s`. With it:
/// `(in - 1)·s + k_eff - 2·pad + output_padding`, `pad = k_eff / 2` for `same`, 0 for `valid`.
pub fn deconv_output_length(
    input: Option<usize>,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: ConvPadding,
    output_padding: Option<usize>,
) -> Option<usize> {
    let n = input?;
    let s = stride.max(1);
    let eff = effective_window(kernel, dilation);
    Some(match (output_padding, padding) {
        (None, ConvPadding::Same) => n * s,
        (None, _) => n * s + eff.saturating_sub(s),
        (Some(op), padding) => {
            let pad = if padding == ConvPadding::Same {
                eff / 2
            } else {
                0
            };
            (n.saturating_sub(1) * s + eff + op).saturating_sub(2 * pad)
        }
    })
}

/// Checks the rank of a (symbolic) input shape: `rank` dims, batch included, as Keras's
/// `InputSpec(ndim=rank)`; the error names the layer and the shape.
pub fn check_rank(layer: &str, class: &str, shape: &Shape, rank: usize) -> Result<()> {
    if shape.len() != rank {
        let expected: Shape = vec![None; rank];
        return Err(Error::Shape {
            op: layer.to_string(),
            msg: format!(
                "input of layer {layer:?} ({class}) must have rank {rank} (expected shape like {}), \
                 found shape={}",
                fmt_shape(&expected),
                fmt_shape(shape)
            ),
            shapes: vec![fmt_shape(&expected), fmt_shape(shape)],
        });
    }
    Ok(())
}

/// The known channel (last) dimension of an input shape, or an error naming the layer.
pub fn known_channels(layer: &str, shape: &Shape) -> Result<usize> {
    match shape.last().copied().flatten() {
        Some(c) => Ok(c),
        None => Err(Error::invalid(
            layer,
            format!(
                "layer {layer:?}: the channel (last) dimension of the input must be known, got {}",
                fmt_shape(shape)
            ),
        )),
    }
}

/// Checks that every entry of an int-or-pair argument is positive.
pub fn check_positive(layer: &str, what: &str, v: &[usize]) -> Result<()> {
    if v.contains(&0) {
        return Err(Error::invalid(
            layer,
            format!("layer {layer:?}: {what} must be positive, got {v:?}"),
        ));
    }
    Ok(())
}

/// Keras refuses `strides > 1` together with `dilation_rate > 1`.
pub fn check_strides_dilation(layer: &str, strides: &[usize], dilation: &[usize]) -> Result<()> {
    if strides.iter().any(|&s| s > 1) && dilation.iter().any(|&d| d > 1) {
        return Err(Error::invalid(
            layer,
            format!(
                "layer {layer:?}: strides > 1 is not supported in conjunction with \
                 dilation_rate > 1 (got strides={strides:?}, dilation_rate={dilation:?})"
            ),
        ));
    }
    Ok(())
}

/// The checks every convolution runs on its window arguments: positive `kernel_size`, `strides`
/// and `dilation_rate`, and Keras's refusal of `strides > 1` with `dilation_rate > 1`.
pub fn check_window(
    layer: &str,
    kernel_size: &[usize],
    strides: &[usize],
    dilation: &[usize],
) -> Result<()> {
    check_positive(layer, "kernel_size", kernel_size)?;
    check_positive(layer, "strides", strides)?;
    check_positive(layer, "dilation_rate", dilation)?;
    check_strides_dilation(layer, strides, dilation)
}

/// The `strides`, `padding` and `dilation_rate` builder methods of a 2-D convolution layer
/// holding fields of those names (`[usize; 2]`, [`PaddingArg`], `[usize; 2]`).
macro_rules! window_builders {
    () => {
        /// The strides, `2` or `(2, 1)`.
        pub fn strides(mut self, s: impl Into<$crate::layers::conv_utils::Pair>) -> Self {
            self.strides = s.into().0;
            self
        }

        /// `"valid"` (default) or `"same"`.
        pub fn padding(mut self, p: impl Into<$crate::layers::conv_utils::PaddingArg>) -> Self {
            self.padding = p.into();
            self
        }

        /// The dilation rates, `2` or `(2, 2)`.
        pub fn dilation_rate(mut self, d: impl Into<$crate::layers::conv_utils::Pair>) -> Self {
            self.dilation_rate = d.into().0;
            self
        }
    };
}
pub(crate) use window_builders;

/// The first input shape, or an error naming the layer when there is none.
pub fn first_shape<'a>(layer: &str, input_shapes: &'a [Shape]) -> Result<&'a Shape> {
    input_shapes.first().ok_or_else(|| {
        Error::invalid(
            layer,
            format!("layer {layer:?} expects one input shape, got none"),
        )
    })
}
