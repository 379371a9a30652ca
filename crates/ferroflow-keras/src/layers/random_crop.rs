//! `keras.layers.RandomCrop`.

use ferroflow_core::ops::{self, ResizeMethod};
use ferroflow_core::{Error, Result, Tensor};
use serde_json::Value;

use super::image_preprocessing::{
    aspect_crop_box, config_head, hw_axes, image_dims, resized_shape, to_float, uniform,
};
use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// `keras.layers.RandomCrop(height, width, seed=None)`: crops a random `height × width` window
/// in training; images are cast to float32 unless already float.
///
/// As Keras 3: in training, when the input is larger than the target in *both* dimensions, one
/// random offset `(⌊u·(h − height + 1)⌋, ⌊v·(w − width + 1)⌋)` is drawn per call and used for
/// every image of the batch. Otherwise — and at inference, as Keras documents and as its
/// `compute_output_shape` assumes — the largest centered window with the target's aspect ratio
/// is cropped and bilinearly resized to `height × width`. (Keras 3.15's TensorFlow backend
/// actually returns the input unchanged at inference, contradicting its own output shape; the
/// documented behaviour is implemented here.)
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, RandomCrop};
/// use ferroflow_core::{DType, ops};
/// let crop = LayerHandle::new(RandomCrop::new(4, 4).seed(1));
/// let x = ops::ones(&[2, 8, 6, 3], DType::F32);
/// assert_eq!(crop.call(&x, true)?.shape(), &[2, 4, 4, 3]);
/// assert_eq!(crop.call(&x, false)?.shape(), &[2, 4, 4, 3]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct RandomCrop {
    base: LayerBase,
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    seed: Option<u64>,
}

impl RandomCrop {
    /// `RandomCrop(height, width)`.
    pub fn new(height: usize, width: usize) -> RandomCrop {
        RandomCrop {
            base: LayerBase::new("RandomCrop"),
            height,
            width,
            seed: None,
        }
    }

    super::image_preprocessing::seed_builder!();

    fn check(&self) -> Result<()> {
        if self.height == 0 || self.width == 0 {
            let name = &self.base.name;
            return Err(Error::invalid(
                name,
                format!(
                    "layer {name:?}: height and width must be positive, got ({}, {})",
                    self.height, self.width
                ),
            ));
        }
        Ok(())
    }
}

impl Layer for RandomCrop {
    fn class_name(&self) -> &str {
        "RandomCrop"
    }
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }
    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let s = first_shape(&self.base.name, input_shapes)?;
        hw_axes(&self.base.name, "RandomCrop", s)?;
        self.check()
    }
    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = to_float(single_input(&name, inputs)?)?;
        let (_, h, w) = image_dims(&name, "RandomCrop", &x)?;
        self.check()?;
        let (th, tw) = (self.height, self.width);
        if training && h > th && w > tw {
            let seed = self.base.next_call_seed();
            let u = uniform(2, 0.0, 1.0, seed)?;
            let top = ((u[0] * (h - th + 1) as f64) as usize).min(h - th);
            let left = ((u[1] * (w - tw + 1) as f64) as usize).min(w - tw);
            return Ok(vec![ops::crop_to_bounding_box(&x, top, left, th, tw)?]);
        }
        let (top, left, ch, cw) = aspect_crop_box(h, w, th, tw, false);
        let c = ops::crop_to_bounding_box(&x, top, left, ch, cw)?;
        if (ch, cw) == (th, tw) {
            return Ok(vec![c]);
        }
        Ok(vec![ops::resize(&c, [th, tw], ResizeMethod::Bilinear)?])
    }
    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = first_shape(&self.base.name, input_shapes)?;
        Ok(vec![resized_shape(
            &self.base.name,
            "RandomCrop",
            s,
            self.height,
            self.width,
        )?])
    }
    fn get_config(&self) -> Value {
        let mut m = config_head(&self.base);
        m.insert("height".into(), self.height.into());
        m.insert("width".into(), self.width.into());
        m.insert("seed".into(), serde_json::json!(self.seed));
        m.insert("data_format".into(), "channels_last".into());
        Value::Object(m)
    }
}
