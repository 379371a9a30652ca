//! What Keras's image preprocessing layers share (`BaseImagePreprocessingLayer` and its
//! helpers): the factor arguments, channels-last image dimensions, float casting, per-image random
//! draws and the affine transform call.

use ferroflow_core::ops::{self, FillMode, Interpolation};
use ferroflow_core::{DType, Error, Result, Tensor};

use super::pool_utils::shape_error;
use crate::backend::Shape;

/// A random layer's `factor`: one number `f` (the range `[-f, f]`, clipped to the layer's bounds)
/// or an explicit `(lower, upper)` pair — Keras accepts both.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Factor {
    /// `factor=f`.
    Symmetric(f64),
    /// `factor=(lower, upper)`.
    Range(f64, f64),
}

impl From<f64> for Factor {
    fn from(f: f64) -> Factor {
        Factor::Symmetric(f)
    }
}

impl From<(f64, f64)> for Factor {
    fn from((a, b): (f64, f64)) -> Factor {
        Factor::Range(a, b)
    }
}

impl Factor {
    /// The value Keras's `get_config` shows: a number or a pair.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Factor::Symmetric(f) => serde_json::json!(f),
            Factor::Range(a, b) => serde_json::json!([a, b]),
        }
    }

    /// `BaseImagePreprocessingLayer._set_factor` with `_FACTOR_BOUNDS = bounds`: a number is
    /// checked against the bounds and gives `[max(-|f|, lo), |f|]`; a pair is rejected only when
    /// it lies wholly outside the bounds, and is sorted.
    pub(crate) fn base_range(
        self,
        layer: &str,
        name: &str,
        bounds: (f64, f64),
    ) -> Result<(f64, f64)> {
        let err = || {
            Error::invalid(
                layer,
                format!(
                    "layer {layer:?}: the `{name}` argument should be a number (or a list of two numbers) in the range [{}, {}]. Received: {name}={}",
                    bounds.0,
                    bounds.1,
                    self.to_json()
                ),
            )
        };
        match self {
            Factor::Symmetric(f) => {
                if !(bounds.0..=bounds.1).contains(&f) {
                    return Err(err());
                }
                let f = f.abs();
                Ok(((-f).max(bounds.0), f))
            }
            Factor::Range(a, b) => {
                if !(a.is_finite() && b.is_finite()) || a > bounds.1 || b < bounds.0 {
                    return Err(err());
                }
                Ok((a.min(b), a.max(b)))
            }
        }
    }

    /// `RandomZoom`/`RandomTranslation._set_factor`: every number must lie in `(-1, 1]` (zoom,
    /// `open_low`) or `[-1, 1]`; a number gives `[-|f|, |f|]`, a pair is sorted.
    pub(crate) fn unit_range(self, layer: &str, name: &str, open_low: bool) -> Result<(f64, f64)> {
        let ok = |v: f64| v <= 1.0 && if open_low { v > -1.0 } else { v >= -1.0 };
        let (a, b) = match self {
            Factor::Symmetric(f) => (-f.abs(), f.abs()),
            Factor::Range(a, b) => (a.min(b), a.max(b)),
        };
        let vals = match self {
            Factor::Symmetric(f) => vec![f],
            Factor::Range(x, y) => vec![x, y],
        };
        if vals.iter().any(|&v| !ok(v)) {
            let lo = if open_low { "(-1" } else { "[-1" };
            return Err(Error::invalid(
                layer,
                format!(
                    "layer {layer:?}: the `{name}` argument should be a number (or a list of two numbers) in the range {lo}, 1.0]. Received: {name}={}",
                    self.to_json()
                ),
            ));
        }
        Ok((a, b))
    }
}

/// `(height axis, width axis)` of a channels-last image tensor of rank 3 or 4, or an error
/// naming the layer.
pub(crate) fn hw_axes(layer: &str, class: &str, shape: &[Option<usize>]) -> Result<(usize, usize)> {
    match shape.len() {
        3 => Ok((0, 1)),
        4 => Ok((1, 2)),
        r => Err(shape_error(
            layer,
            format!(
                "layer {layer:?} ({class}) expects images of rank 3 (height, width, channels) or rank 4 (batch, height, width, channels), got rank {r}"
            ),
            &[shape],
        )),
    }
}

/// Checks a concrete image tensor and returns `(batch, height, width)` (`batch` 1 when
/// unbatched).
pub(crate) fn image_dims(layer: &str, class: &str, x: &Tensor) -> Result<(usize, usize, usize)> {
    let shape: Shape = x.shape().iter().map(|&d| Some(d)).collect();
    let (ha, wa) = hw_axes(layer, class, &shape)?;
    let s = x.shape();
    let n = if s.len() == 4 { s[0] } else { 1 };
    Ok((n, s[ha], s[wa]))
}

/// Keras casts images to the layer's compute dtype (float32) before transforming them; float
/// inputs keep their dtype here.
pub(crate) fn to_float(x: &Tensor) -> Result<Tensor> {
    if x.dtype().is_float() {
        Ok(x.clone())
    } else {
        ops::cast(x, DType::F32)
    }
}

/// `n` float32 draws uniform in `[lo, hi)` from Philox stream `seed` (as `f64`s).
pub(crate) fn uniform(n: usize, lo: f64, hi: f64, seed: u64) -> Result<Vec<f64>> {
    if hi <= lo {
        return Ok(vec![lo; n]);
    }
    // Read on the host: drawn eagerly even while a graph is being built.
    let _eager = ferroflow_core::graph::init_scope();
    Ok(ops::random_uniform(&[n], lo, hi, DType::F32, seed)?.to_f64_vec())
}

/// A second, independent seed derived from `seed` (for a layer's second draw in one call).
pub(crate) fn sub_seed(seed: u64, k: u64) -> u64 {
    crate::backend::mix(seed ^ crate::backend::mix(0x9e37_79b9_7f4a_7c15 ^ k))
}

/// Runs Keras's `affine_transform` with one 8-value row per image (a single row for an
/// unbatched image).
pub(crate) fn transform(
    x: &Tensor,
    rows: &[[f64; 8]],
    interpolation: Interpolation,
    fill_mode: FillMode,
    fill_value: f64,
) -> Result<Tensor> {
    let v: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    let t = Tensor::from_vec(v, &[rows.len(), 8])?;
    ops::affine_transform(x, &t, interpolation, fill_mode, fill_value)
}

/// The arguments Keras's affine random layers (`RandomRotation`, `RandomZoom`,
/// `RandomTranslation`) share, with their defaults.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AffineArgs {
    pub fill_mode: String,
    pub interpolation: String,
    pub fill_value: f64,
    pub seed: Option<u64>,
}

impl Default for AffineArgs {
    fn default() -> Self {
        AffineArgs {
            fill_mode: "reflect".into(),
            interpolation: "bilinear".into(),
            fill_value: 0.0,
            seed: None,
        }
    }
}

impl AffineArgs {
    /// Parses `fill_mode` and `interpolation`, with Keras's messages.
    pub(crate) fn parse(&self, layer: &str) -> Result<(Interpolation, FillMode)> {
        let fill = match self.fill_mode.as_str() {
            "reflect" | "wrap" | "constant" | "nearest" => FillMode::parse(&self.fill_mode)?,
            m => {
                return Err(Error::invalid(
                    layer,
                    format!(
                        "layer {layer:?}: unknown `fill_mode` {m:?}, expected one of \"reflect\", \"wrap\", \"constant\", \"nearest\""
                    ),
                ))
            }
        };
        let interp = match self.interpolation.as_str() {
            "nearest" | "bilinear" => Interpolation::parse(&self.interpolation)?,
            m => {
                return Err(Error::invalid(
                    layer,
                    format!(
                        "layer {layer:?}: unknown `interpolation` {m:?}, expected \"nearest\" or \"bilinear\""
                    ),
                ))
            }
        };
        Ok((interp, fill))
    }

    /// The shared `get_config` entries.
    pub(crate) fn config(&self, out: &mut serde_json::Map<String, serde_json::Value>) {
        out.insert("fill_mode".into(), self.fill_mode.clone().into());
        out.insert("interpolation".into(), self.interpolation.clone().into());
        out.insert("fill_value".into(), self.fill_value.into());
        out.insert("seed".into(), serde_json::json!(self.seed));
        out.insert("data_format".into(), "channels_last".into());
    }
}

/// The `seed` builder of Keras's random layers: a fixed seed for the layer's draws, replayed from
/// its first call. `seed_builder!()` for a layer with a `seed: Option<u64>` field,
/// `seed_builder!(args)` for one that keeps it in its [`AffineArgs`].
macro_rules! seed_builder {
    ($($field:ident).*) => {
        /// A fixed seed for the layer's draws (instead of one from the global seed).
        pub fn seed(mut self, seed: u64) -> Self {
            self$(.$field)*.seed = Some(seed);
            self.base.seed = seed;
            self.base.calls = 0;
            self
        }
    };
}
pub(crate) use seed_builder;

/// The builders Keras's affine random layers share (`fill_mode`, `interpolation`, `fill_value`,
/// `seed`), for a layer whose [`AffineArgs`] are in its `args` field.
macro_rules! affine_builders {
    () => {
        /// `fill_mode`: `"reflect"` (default), `"wrap"`, `"constant"` or `"nearest"`.
        pub fn fill_mode(mut self, mode: &str) -> Self {
            self.args.fill_mode = mode.to_string();
            self
        }

        /// `interpolation`: `"bilinear"` (default) or `"nearest"`.
        pub fn interpolation(mut self, interpolation: &str) -> Self {
            self.args.interpolation = interpolation.to_string();
            self
        }

        /// `fill_value` for `fill_mode="constant"` (default 0).
        pub fn fill_value(mut self, value: f64) -> Self {
            self.args.fill_value = value;
            self
        }

        $crate::layers::image_preprocessing::seed_builder!(args);
    };
}
pub(crate) use affine_builders;

/// The `get_config` head every layer has.
pub(crate) fn config_head(
    base: &super::layer::LayerBase,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), base.name.clone().into());
    m.insert("trainable".into(), base.trainable.into());
    m
}

/// The centered box with the target's aspect ratio (`crop_to_aspect_ratio` in Keras's
/// `resize` and `smart_resize`): `(top, left, height, width)`. `f32` selects TensorFlow's
/// float32 arithmetic (`resize`), otherwise Python floats (`smart_resize` on static shapes).
pub(crate) fn aspect_crop_box(
    h: usize,
    w: usize,
    th: usize,
    tw: usize,
    f32_math: bool,
) -> (usize, usize, usize, usize) {
    let div = |a: usize, b: usize| -> usize {
        if f32_math {
            (a as f32 / b as f32) as usize
        } else {
            (a as f64 / b as f64) as usize
        }
    };
    let ch = div(w * th, tw).clamp(1, h.max(1));
    let cw = div(h * tw, th).clamp(1, w.max(1));
    let top = div(h - ch, 2);
    let left = div(w - cw, 2);
    (top, left, ch, cw)
}

/// The output shape of a layer that resizes/crops to `(height, width)`.
pub(crate) fn resized_shape(
    layer: &str,
    class: &str,
    shape: &[Option<usize>],
    height: usize,
    width: usize,
) -> Result<Shape> {
    let (ha, wa) = hw_axes(layer, class, shape)?;
    let mut out = shape.to_vec();
    out[ha] = Some(height);
    out[wa] = Some(width);
    Ok(out)
}
