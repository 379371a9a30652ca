//! Output-size and padding arithmetic for windowed ops (convolution, pooling), following
//! TensorFlow's conventions.
//!
//! * `valid`: no padding; `out = floor((in - d*(k-1) - 1) / s) + 1` (0 when the window does not fit).
//! * `same`: `out = ceil(in / s)`; the total padding `max((out-1)*s + d*(k-1) + 1 - in, 0)` is split
//!   with the odd element at the END (bottom/right): `before = total / 2`, `after = total - before`.

/// A padding mode, as accepted by TensorFlow/Keras (`"valid"` or `"same"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// No padding: only windows that fit entirely inside the input.
    Valid,
    /// Zero padding so that `out = ceil(in / stride)`.
    Same,
}

impl Padding {
    /// Parses `"valid"` or `"same"` (case-insensitively); anything else gives `None`.
    pub fn parse(s: &str) -> Option<Padding> {
        if s.eq_ignore_ascii_case("valid") {
            Some(Padding::Valid)
        } else if s.eq_ignore_ascii_case("same") {
            Some(Padding::Same)
        } else {
            None
        }
    }

    /// The lowercase name (`"valid"` or `"same"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
        }
    }
}

/// The effective (dilated) window extent `d*(k-1) + 1` (0 when `k == 0`).
#[inline]
pub fn effective_window(k: usize, dilation: usize) -> usize {
    if k == 0 {
        0
    } else {
        dilation.max(1) * (k - 1) + 1
    }
}

/// Output length and `(pad_before, pad_after)` of a windowed op along one spatial axis.
///
/// Returns `(out, pad_before, pad_after)`. With [`Padding::Valid`] the pads are 0 and `out` is 0
/// when the (dilated) window does not fit in the input — callers report that as an error.
/// `stride` and `dilation` must be at least 1 (a 0 is treated as 1).
pub fn out_size_and_pads(
    in_size: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> (usize, usize, usize) {
    let s = stride.max(1);
    let eff = effective_window(k, dilation);
    match padding {
        Padding::Valid => {
            if eff == 0 || in_size < eff {
                (0, 0, 0)
            } else {
                ((in_size - eff) / s + 1, 0, 0)
            }
        }
        Padding::Same => {
            let out = in_size.div_ceil(s);
            if out == 0 {
                return (0, 0, 0);
            }
            let needed = (out - 1) * s + eff;
            let total = needed.saturating_sub(in_size);
            let before = total / 2;
            (out, before, total - before)
        }
    }
}

/// Output length along one axis for explicit per-side padding:
/// `floor((in + before + after - d*(k-1) - 1) / s) + 1`, or 0 when the window does not fit.
pub fn explicit_out_size(
    in_size: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    pad_before: usize,
    pad_after: usize,
) -> usize {
    let s = stride.max(1);
    let eff = effective_window(k, dilation);
    let padded = in_size + pad_before + pad_after;
    if eff == 0 || padded < eff {
        0
    } else {
        (padded - eff) / s + 1
    }
}

/// How a 2-D windowed op pads its input: TensorFlow's `valid`/`same`, or explicit
/// `[top, bottom, left, right]` pads (e.g. Keras' `causal` 1-D padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pads2d {
    /// `valid` or `same`, with TensorFlow's arithmetic.
    Mode(Padding),
    /// Explicit `[top, bottom, left, right]` pads.
    Explicit([usize; 4]),
}

/// Output size and leading pads of a 2-D window over an `h x w` input:
/// `(oh, ow, pad_top, pad_left)`. Sizes are 0 when the window does not fit.
pub fn window_2d(
    h: usize,
    w: usize,
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    pads: Pads2d,
) -> (usize, usize, usize, usize) {
    match pads {
        Pads2d::Mode(p) => {
            let (oh, top, _) = out_size_and_pads(h, kernel[0], strides[0], dilations[0], p);
            let (ow, left, _) = out_size_and_pads(w, kernel[1], strides[1], dilations[1], p);
            (oh, ow, top, left)
        }
        Pads2d::Explicit([top, bottom, left, right]) => (
            explicit_out_size(h, kernel[0], strides[0], dilations[0], top, bottom),
            explicit_out_size(w, kernel[1], strides[1], dilations[1], left, right),
            top,
            left,
        ),
    }
}

/// Output length of a transposed convolution (Keras' `deconv_output_length`).
///
/// With `output_padding == None`: `valid` gives `in*s + max(k_eff - s, 0)` and `same` gives
/// `in*s`. With `Some(p)`: `(in-1)*s + k_eff - 2*pad + p` where `pad` is `k_eff/2` for `same` and 0
/// for `valid` (saturating at 0). The forward convolution of the result (with the same kernel,
/// stride, dilation and padding) has length `in`; callers should check that.
pub fn conv_transpose_out_size(
    in_size: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    output_padding: Option<usize>,
) -> usize {
    let s = stride.max(1);
    let eff = effective_window(k, dilation);
    match output_padding {
        None => match padding {
            Padding::Valid => in_size * s + eff.saturating_sub(s),
            Padding::Same => in_size * s,
        },
        Some(p) => {
            if in_size == 0 {
                return 0;
            }
            let pad = match padding {
                Padding::Same => eff / 2,
                Padding::Valid => 0,
            };
            ((in_size - 1) * s + eff + p).saturating_sub(2 * pad)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_insensitive() {
        assert_eq!(Padding::parse("valid"), Some(Padding::Valid));
        assert_eq!(Padding::parse("SAME"), Some(Padding::Same));
        assert_eq!(Padding::parse("Same"), Some(Padding::Same));
        assert_eq!(Padding::parse("full"), None);
        assert_eq!(Padding::parse(""), None);
        assert_eq!(Padding::Same.as_str(), "same");
    }

    #[test]
    fn tf_examples() {
        assert_eq!(out_size_and_pads(28, 3, 2, 1, Padding::Same), (14, 0, 1));
        assert_eq!(out_size_and_pads(28, 3, 2, 1, Padding::Valid), (13, 0, 0));
        assert_eq!(out_size_and_pads(5, 2, 2, 1, Padding::Same), (3, 0, 1));
        assert_eq!(out_size_and_pads(6, 3, 2, 1, Padding::Same), (3, 0, 1));
        assert_eq!(out_size_and_pads(5, 4, 1, 1, Padding::Same), (5, 1, 2));
        assert_eq!(out_size_and_pads(28, 3, 1, 1, Padding::Same), (28, 1, 1));
        assert_eq!(out_size_and_pads(28, 3, 1, 1, Padding::Valid), (26, 0, 0));
        // dilation 2: effective window 5
        assert_eq!(out_size_and_pads(10, 3, 1, 2, Padding::Valid), (6, 0, 0));
        assert_eq!(out_size_and_pads(10, 3, 1, 2, Padding::Same), (10, 2, 2));
        // window larger than input
        assert_eq!(out_size_and_pads(2, 3, 1, 1, Padding::Valid), (0, 0, 0));
        assert_eq!(out_size_and_pads(2, 3, 1, 1, Padding::Same), (2, 1, 1));
        // stride larger than window: no padding needed
        assert_eq!(out_size_and_pads(7, 1, 3, 1, Padding::Same), (3, 0, 0));
        assert_eq!(out_size_and_pads(0, 3, 1, 1, Padding::Same), (0, 0, 0));
    }

    #[test]
    fn explicit_matches_same_and_valid() {
        for in_size in 1..20 {
            for k in 1..6 {
                for s in 1..4 {
                    for d in 1..3 {
                        for p in [Padding::Valid, Padding::Same] {
                            let (o, b, a) = out_size_and_pads(in_size, k, s, d, p);
                            assert_eq!(explicit_out_size(in_size, k, s, d, b, a), o);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transpose_inverts_forward() {
        for in_size in 1..12 {
            for k in 1..5 {
                for s in 1..4 {
                    for p in [Padding::Valid, Padding::Same] {
                        let t = conv_transpose_out_size(in_size, k, s, 1, p, None);
                        let (o, _, _) = out_size_and_pads(t, k, s, 1, p);
                        assert_eq!(o, in_size, "in {in_size} k {k} s {s} {p:?}");
                    }
                }
            }
        }
        assert_eq!(conv_transpose_out_size(5, 3, 2, 1, Padding::Same, None), 10);
        assert_eq!(
            conv_transpose_out_size(5, 3, 2, 1, Padding::Valid, None),
            11
        );
        assert_eq!(
            conv_transpose_out_size(5, 3, 2, 1, Padding::Same, Some(1)),
            10
        );
    }
}
