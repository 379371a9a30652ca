//! `keras.layers.UpSampling2D`.

use ferroflow_core::{ops, DType, Error, Result, Tensor};
use serde_json::{json, Value};

use super::conv_utils::{check_positive, check_rank, Pair};
use super::layer::{single_input, InputSpec, Layer, LayerBase};
use crate::backend::{batch_shape, unknown_name, Arg, Shape};

/// How [`UpSampling2D`] fills the new pixels (Keras's `interpolation=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// Repeat each row and column (`"nearest"`, Keras's default).
    Nearest,
    /// Bilinear resize with half-pixel centers, as `tf.image.resize(method="bilinear")`.
    Bilinear,
}

impl Interpolation {
    /// The Keras name.
    pub fn name(self) -> &'static str {
        match self {
            Interpolation::Nearest => "nearest",
            Interpolation::Bilinear => "bilinear",
        }
    }

    /// Parses a name. Keras's other methods (`"bicubic"`, `"lanczos3"`, `"lanczos5"`) are
    /// reported as not supported; unknown names list the valid ones.
    pub fn get(name: &str) -> Result<Interpolation> {
        match name.to_ascii_lowercase().as_str() {
            "nearest" => Ok(Interpolation::Nearest),
            "bilinear" => Ok(Interpolation::Bilinear),
            "bicubic" | "lanczos3" | "lanczos5" => Err(Error::invalid(
                "interpolation",
                format!(
                    "interpolation {name:?} is not supported by ferroflow yet; \
                     supported names are: nearest, bilinear"
                ),
            )),
            _ => Err(unknown_name(
                "interpolation",
                name,
                &["nearest", "bilinear"],
            )),
        }
    }
}

impl From<&str> for Arg<Interpolation> {
    fn from(name: &str) -> Self {
        Arg(Interpolation::get(name))
    }
}

impl From<Interpolation> for Arg<Interpolation> {
    fn from(i: Interpolation) -> Self {
        Arg(Ok(i))
    }
}

/// `keras.layers.UpSampling2D(size=(2, 2), interpolation="nearest")`: enlarges channels-last
/// images `[batch, rows, cols, channels]` (rank 4) by `size` along rows and columns.
///
/// `"nearest"` repeats each row `size[0]` times and each column `size[1]` times (Keras's
/// `ops.repeat`); `"bilinear"` matches `tf.image.resize(..., method="bilinear")` (half-pixel
/// centers, edges clamped), which Keras uses for that method.
///
/// ```
/// use ferroflow_keras::layers::{UpSampling2D, LayerHandle};
/// use ferroflow_core::Tensor;
/// let up = LayerHandle::new(UpSampling2D::new((1, 2)));
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 1, 2, 1])?;
/// let y = up.call(&x, false)?;
/// assert_eq!(y.shape(), &[1, 1, 4, 1]);
/// assert_eq!(y.to_vec::<f32>()?, vec![1.0, 1.0, 2.0, 2.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct UpSampling2D {
    base: LayerBase,
    /// Up-sampling factors `[rows, cols]`.
    pub size: [usize; 2],
    interpolation: Arg<Interpolation>,
}

impl UpSampling2D {
    /// `UpSampling2D(size)`: `2` or `(2, 3)`.
    pub fn new(size: impl Into<Pair>) -> UpSampling2D {
        UpSampling2D {
            base: LayerBase::new("UpSampling2D"),
            size: size.into().0,
            interpolation: Arg(Ok(Interpolation::Nearest)),
        }
    }

    /// `"nearest"` (default) or `"bilinear"`.
    pub fn interpolation(mut self, i: impl Into<Arg<Interpolation>>) -> Self {
        self.interpolation = i.into();
        self
    }

    fn check(&self, shape: &Shape) -> Result<Interpolation> {
        check_rank(&self.base.name, "UpSampling2D", shape, 4)?;
        check_positive(&self.base.name, "size", &self.size)?;
        self.interpolation.0.clone()
    }
}

impl Default for UpSampling2D {
    /// Keras's default `size=(2, 2)`.
    fn default() -> Self {
        UpSampling2D::new(2)
    }
}

/// The `[out, in]` matrix of a 1-D bilinear resize by `scale` with TensorFlow's half-pixel
/// centers: output `o` samples the input at `(o + 0.5)/scale - 0.5`, between the two nearest
/// inputs (clamped to the edges).
fn bilinear_matrix(n: usize, scale: usize, dtype: DType) -> Result<Tensor> {
    let out = n * scale;
    let mut m = vec![0.0f64; out * n];
    for o in 0..out {
        let src = (o as f64 + 0.5) / scale as f64 - 0.5;
        let lo_f = src.floor();
        let lower = (lo_f.max(0.0) as usize).min(n - 1);
        let upper = (src.ceil().max(0.0) as usize).min(n - 1);
        let lerp = src - lo_f;
        m[o * n + lower] += 1.0 - lerp;
        m[o * n + upper] += lerp;
    }
    ops::cast(&Tensor::from_vec(m, &[out, n])?, dtype)
}

impl Layer for UpSampling2D {
    fn class_name(&self) -> &str {
        "UpSampling2D"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        Some(InputSpec::ndim(4))
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        if let Some(s) = input_shapes.first() {
            self.check(s)?;
        }
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let interpolation = self.check(&batch_shape(x.shape()))?;
        let (n, h, w, c) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let [sh, sw] = self.size;
        let y = match interpolation {
            Interpolation::Nearest => {
                let x6 = ops::reshape(x, &[n as isize, h as isize, 1, w as isize, 1, c as isize])?;
                let b = ops::broadcast_to(&x6, &[n, h, sh, w, sw, c])?;
                ops::reshape(
                    &b,
                    &[n as isize, (h * sh) as isize, (w * sw) as isize, c as isize],
                )?
            }
            Interpolation::Bilinear => {
                if h == 0 || w == 0 {
                    return Ok(vec![ops::zeros(&[n, h * sh, w * sw, c], x.dtype())]);
                }
                let mh = bilinear_matrix(h, sh, x.dtype())?;
                let mw = bilinear_matrix(w, sw, x.dtype())?;
                let rows = ops::einsum("ph,nhwc->npwc", &[&mh, x])?;
                ops::einsum("qw,npwc->npqc", &[&mw, &rows])?
            }
        };
        Ok(vec![y])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = super::conv_utils::first_shape(&self.base.name, input_shapes)?;
        self.check(s)?;
        let [sh, sw] = self.size;
        Ok(vec![vec![
            s[0],
            s[1].map(|d| d * sh),
            s[2].map(|d| d * sw),
            s[3],
        ]])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "size": self.size,
            "interpolation": self.interpolation.0.as_ref().map(|i| i.name()).unwrap_or("invalid"),
        })
    }
}
