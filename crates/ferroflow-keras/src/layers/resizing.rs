//! `keras.layers.Resizing`.

use ferroflow_core::ops::{self, PadMode, ResizeMethod};
use ferroflow_core::{DType, Error, Result, Tensor};
use serde_json::Value;

use super::image_preprocessing::{
    aspect_crop_box, config_head, hw_axes, image_dims, resized_shape,
};
use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// `keras.layers.Resizing(height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
/// pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0)`: resizes images
/// (`[batch, h, w, c]` or `[h, w, c]`) to `height × width` with `tf.image.resize` (TF2's
/// half-pixel arithmetic, no antialiasing), in training and inference alike.
///
/// As Keras 3 on TensorFlow: `interpolation` is `"bilinear"`, `"nearest"` or `"bicubic"` (the
/// Lanczos and area kernels are not implemented); `crop_to_aspect_ratio` first takes the largest
/// centered window with the target aspect ratio, `pad_to_aspect_ratio` instead pads the image
/// evenly with `fill_value` to that ratio. Integer images (uint8, int32, int64) are resized in
/// float32, rounded and cast back (uint8 saturating), like Keras; float images keep their dtype.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, Resizing};
/// use ferroflow_core::{DType, ops};
/// let layer = LayerHandle::new(Resizing::new(4, 6));
/// let y = layer.call(&ops::ones(&[2, 8, 8, 3], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 4, 6, 3]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Resizing {
    base: LayerBase,
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    /// `"bilinear"` (default), `"nearest"` or `"bicubic"`.
    pub interpolation: String,
    /// Crop to the target aspect ratio before resizing.
    pub crop_to_aspect_ratio: bool,
    /// Pad to the target aspect ratio before resizing.
    pub pad_to_aspect_ratio: bool,
    /// The padding value of `pad_to_aspect_ratio`.
    pub fill_value: f64,
}

impl Resizing {
    /// `Resizing(height, width)` with Keras's defaults.
    pub fn new(height: usize, width: usize) -> Resizing {
        Resizing {
            base: LayerBase::new("Resizing"),
            height,
            width,
            interpolation: "bilinear".into(),
            crop_to_aspect_ratio: false,
            pad_to_aspect_ratio: false,
            fill_value: 0.0,
        }
    }

    /// `interpolation`: `"bilinear"` (default), `"nearest"` or `"bicubic"`.
    pub fn interpolation(mut self, interpolation: &str) -> Self {
        self.interpolation = interpolation.to_string();
        self
    }

    /// `crop_to_aspect_ratio=True`: crop the centered window with the target's aspect ratio.
    pub fn crop_to_aspect_ratio(mut self, on: bool) -> Self {
        self.crop_to_aspect_ratio = on;
        self
    }

    /// `pad_to_aspect_ratio=True`: pad evenly (with `fill_value`) to the target's aspect ratio.
    pub fn pad_to_aspect_ratio(mut self, on: bool) -> Self {
        self.pad_to_aspect_ratio = on;
        self
    }

    /// `fill_value` of the padding (default 0).
    pub fn fill_value(mut self, value: f64) -> Self {
        self.fill_value = value;
        self
    }

    fn check(&self) -> Result<ResizeMethod> {
        let name = &self.base.name;
        if self.height == 0 || self.width == 0 {
            return Err(Error::invalid(
                name,
                format!(
                    "layer {name:?}: height and width must be positive, got ({}, {})",
                    self.height, self.width
                ),
            ));
        }
        if self.crop_to_aspect_ratio && self.pad_to_aspect_ratio {
            return Err(Error::invalid(
                name,
                format!("layer {name:?}: only one of `pad_to_aspect_ratio` or `crop_to_aspect_ratio` can be True"),
            ));
        }
        ResizeMethod::parse(&self.interpolation).map_err(|_| {
            Error::invalid(
                name,
                format!(
                    "layer {name:?}: invalid `interpolation` {:?}, supported: \"bilinear\", \"nearest\", \"bicubic\"",
                    self.interpolation
                ),
            )
        })
    }
}

/// Keras's `resize` (TensorFlow backend) on a float image batch or image.
pub(crate) fn keras_resize(
    x: &Tensor,
    size: (usize, usize),
    method: ResizeMethod,
    crop: bool,
    pad: bool,
    fill_value: f64,
) -> Result<Tensor> {
    let (th, tw) = size;
    let rank = x.rank();
    let (ha, wa) = if rank == 4 { (1, 2) } else { (0, 1) };
    let (h, w) = (x.shape()[ha], x.shape()[wa]);
    let x = if crop {
        let (top, left, ch, cw) = aspect_crop_box(h, w, th, tw, true);
        ops::crop_to_bounding_box(x, top, left, ch, cw)?
    } else if pad {
        let ph = ((w * th) as f32 / tw as f32) as usize;
        let pw = ((h * tw) as f32 / th as f32) as usize;
        let hs = (ph.max(h) - h) as f32 / 2.0;
        let ws = (pw.max(w) - w) as f32 / 2.0;
        let (hs, ws) = (hs as usize, ws as usize);
        let mut p = vec![[0usize; 2]; rank];
        p[ha] = [hs, hs];
        p[wa] = [ws, ws];
        ops::pad(x, &p, PadMode::Constant, fill_value)?
    } else {
        x.clone()
    };
    ops::resize(&x, [th, tw], method)
}

impl Layer for Resizing {
    fn class_name(&self) -> &str {
        "Resizing"
    }
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }
    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let s = first_shape(&self.base.name, input_shapes)?;
        hw_axes(&self.base.name, "Resizing", s)?;
        self.check()?;
        Ok(())
    }
    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = single_input(&name, inputs)?;
        image_dims(&name, "Resizing", x)?;
        let method = self.check()?;
        let dtype = x.dtype();
        let xf = if dtype.is_float() {
            x.clone()
        } else {
            ops::cast(x, DType::F32)?
        };
        let y = keras_resize(
            &xf,
            (self.height, self.width),
            method,
            self.crop_to_aspect_ratio,
            self.pad_to_aspect_ratio,
            self.fill_value,
        )?;
        if dtype.is_float() {
            return Ok(vec![y]);
        }
        // Keras: round, then a saturating cast back to the integer dtype.
        let y = ops::round(&y)?;
        let y = if dtype == DType::U8 {
            ops::clip_by_value_scalar(&y, 0.0, 255.0)?
        } else {
            y
        };
        Ok(vec![ops::cast(&y, dtype)?])
    }
    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = first_shape(&self.base.name, input_shapes)?;
        Ok(vec![resized_shape(
            &self.base.name,
            "Resizing",
            s,
            self.height,
            self.width,
        )?])
    }
    fn get_config(&self) -> Value {
        let mut m = config_head(&self.base);
        m.insert("height".into(), self.height.into());
        m.insert("width".into(), self.width.into());
        m.insert("interpolation".into(), self.interpolation.clone().into());
        m.insert(
            "crop_to_aspect_ratio".into(),
            self.crop_to_aspect_ratio.into(),
        );
        m.insert(
            "pad_to_aspect_ratio".into(),
            self.pad_to_aspect_ratio.into(),
        );
        m.insert("fill_mode".into(), "constant".into());
        m.insert("fill_value".into(), self.fill_value.into());
        m.insert("antialias".into(), false.into());
        m.insert("data_format".into(), "channels_last".into());
        Value::Object(m)
    }
}
