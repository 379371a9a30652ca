//! `keras.layers.RandomFlip`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::Value;

use super::image_preprocessing::{config_head, hw_axes, image_dims, to_float, uniform};
use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// `keras.layers.RandomFlip(mode="horizontal_and_vertical", seed=None)`: flips images at
/// random, active only in training (identity at inference, after a cast of non-float images to
/// float32).
///
/// As Keras 3: one uniform draw `u` per image decides (`u <= 0.5`); `"horizontal"` reverses the
/// width axis, `"vertical"` the height axis, and `"horizontal_and_vertical"` uses the *same*
/// decision for both axes, so an image is either left alone or turned by 180°.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, RandomFlip};
/// use ferroflow_core::Tensor;
/// let flip = LayerHandle::new(RandomFlip::new("horizontal").seed(5));
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[1, 3, 1])?;
/// let y = flip.call(&x, true)?.to_vec::<f32>()?;
/// assert!(y == vec![1.0, 2.0, 3.0] || y == vec![3.0, 2.0, 1.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct RandomFlip {
    base: LayerBase,
    /// `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"`.
    pub mode: String,
    seed: Option<u64>,
}

impl Default for RandomFlip {
    fn default() -> Self {
        RandomFlip::new("horizontal_and_vertical")
    }
}

impl RandomFlip {
    /// `RandomFlip(mode)`; an unknown mode is reported when the layer is first used.
    pub fn new(mode: &str) -> RandomFlip {
        RandomFlip {
            base: LayerBase::new("RandomFlip"),
            mode: mode.to_string(),
            seed: None,
        }
    }

    super::image_preprocessing::seed_builder!();

    /// `(horizontal, vertical)`.
    fn axes(&self) -> Result<(bool, bool)> {
        match self.mode.as_str() {
            "horizontal" => Ok((true, false)),
            "vertical" => Ok((false, true)),
            "horizontal_and_vertical" => Ok((true, true)),
            m => Err(Error::invalid(
                &self.base.name,
                format!(
                    "layer {:?}: RandomFlip layer {m:?} is not a supported mode, expected \"horizontal\", \"vertical\" or \"horizontal_and_vertical\"",
                    self.base.name
                ),
            )),
        }
    }
}

impl Layer for RandomFlip {
    fn class_name(&self) -> &str {
        "RandomFlip"
    }
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }
    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let s = first_shape(&self.base.name, input_shapes)?;
        hw_axes(&self.base.name, "RandomFlip", s)?;
        self.axes()?;
        Ok(())
    }
    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = to_float(single_input(&name, inputs)?)?;
        let (n, _, _) = image_dims(&name, "RandomFlip", &x)?;
        let (horizontal, vertical) = self.axes()?;
        if !training {
            return Ok(vec![x]);
        }
        let seed = self.base.next_call_seed();
        let flips: Vec<bool> = uniform(n, 0.0, 1.0, seed)?
            .into_iter()
            .map(|u| u <= 0.5)
            .collect();
        let rank = x.rank();
        let (ha, wa): (isize, isize) = if rank == 4 { (1, 2) } else { (0, 1) };
        let mut axes = Vec::new();
        if horizontal {
            axes.push(wa);
        }
        if vertical {
            axes.push(ha);
        }
        let flipped = ops::reverse(&x, &axes)?;
        let cond_shape: Vec<usize> = if rank == 4 {
            vec![n, 1, 1, 1]
        } else {
            vec![1, 1, 1]
        };
        let cond = Tensor::from_vec(flips, &cond_shape)?;
        Ok(vec![ops::where_(&cond, &flipped, &x)?])
    }
    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![first_shape(&self.base.name, input_shapes)?.clone()])
    }
    fn get_config(&self) -> Value {
        let mut m = config_head(&self.base);
        m.insert("mode".into(), self.mode.clone().into());
        m.insert("seed".into(), serde_json::json!(self.seed));
        m.insert("data_format".into(), "channels_last".into());
        Value::Object(m)
    }
}
