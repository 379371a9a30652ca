//! `keras.layers.CenterCrop`.

use ferroflow_core::ops::{self, ResizeMethod};
use ferroflow_core::{Error, Result, Tensor};
use serde_json::Value;

use super::image_preprocessing::{
    aspect_crop_box, config_head, hw_axes, image_dims, resized_shape, to_float,
};
use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// `keras.layers.CenterCrop(height, width)`: the central `height × width` window of each image,
/// in training and inference alike; images are cast to float32 (Keras's compute dtype) unless
/// already float.
///
/// As Keras 3: the window starts at `((h − height) // 2, (w − width) // 2)`. When the input is
/// smaller than the target in either dimension, Keras falls back to `smart_resize`: the largest
/// centered window with the target's aspect ratio is cropped and bilinearly resized to
/// `height × width`.
///
/// ```
/// use ferroflow_keras::layers::{CenterCrop, LayerHandle};
/// use ferroflow_core::Tensor;
/// let x = Tensor::from_vec((0..16).map(|v| v as f32).collect(), &[4, 4, 1])?;
/// let y = LayerHandle::new(CenterCrop::new(2, 2)).call(&x, false)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![5.0, 6.0, 9.0, 10.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct CenterCrop {
    base: LayerBase,
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
}

impl CenterCrop {
    /// `CenterCrop(height, width)`.
    pub fn new(height: usize, width: usize) -> CenterCrop {
        CenterCrop {
            base: LayerBase::new("CenterCrop"),
            height,
            width,
        }
    }

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

impl Layer for CenterCrop {
    fn class_name(&self) -> &str {
        "CenterCrop"
    }
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }
    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let s = first_shape(&self.base.name, input_shapes)?;
        hw_axes(&self.base.name, "CenterCrop", s)?;
        self.check()
    }
    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = to_float(single_input(&name, inputs)?)?;
        let (_, h, w) = image_dims(&name, "CenterCrop", &x)?;
        self.check()?;
        let (th, tw) = (self.height, self.width);
        if h >= th && w >= tw {
            return Ok(vec![ops::crop_to_bounding_box(
                &x,
                (h - th) / 2,
                (w - tw) / 2,
                th,
                tw,
            )?]);
        }
        // smart_resize: crop to the aspect ratio, then bilinear resize.
        let (top, left, ch, cw) = aspect_crop_box(h, w, th, tw, false);
        let c = ops::crop_to_bounding_box(&x, top, left, ch, cw)?;
        Ok(vec![ops::resize(&c, [th, tw], ResizeMethod::Bilinear)?])
    }
    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = first_shape(&self.base.name, input_shapes)?;
        Ok(vec![resized_shape(
            &self.base.name,
            "CenterCrop",
            s,
            self.height,
            self.width,
        )?])
    }
    fn get_config(&self) -> Value {
        let mut m = config_head(&self.base);
        m.insert("height".into(), self.height.into());
        m.insert("width".into(), self.width.into());
        m.insert("data_format".into(), "channels_last".into());
        Value::Object(m)
    }
}
