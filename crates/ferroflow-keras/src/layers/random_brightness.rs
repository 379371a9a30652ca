//! `keras.layers.RandomBrightness`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::Value;

use super::image_preprocessing::{config_head, hw_axes, image_dims, to_float, uniform, Factor};
use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// `keras.layers.RandomBrightness(factor, value_range=(0, 255), seed=None)`: adds a random
/// offset to each image, active only in training (identity at inference, after a cast of
/// non-float images to float32).
///
/// As Keras 3: `factor` `f` (bounds `[-1, 1]`) draws `δ` uniformly in `[-|f|, |f|)` (a pair
/// `(lo, hi)`: `[lo, hi)`) per image; the image becomes `x + δ·(max − min)` clipped to
/// `value_range`.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, RandomBrightness};
/// use ferroflow_core::{DType, ops};
/// let layer = LayerHandle::new(RandomBrightness::new(0.2).value_range(0.0, 1.0).seed(3));
/// let y = layer.call(&ops::fill(&[2, 4, 4, 3], DType::F32, 0.5), true)?;
/// assert!(y.to_vec::<f32>()?.iter().all(|&v| (0.3..=0.7).contains(&v)));
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct RandomBrightness {
    base: LayerBase,
    /// The offset range, as a fraction of the value range.
    pub factor: Factor,
    /// `(min, max)` of the image values; outputs are clipped to it.
    pub value_range: (f64, f64),
    seed: Option<u64>,
}

impl RandomBrightness {
    /// `RandomBrightness(factor)` with `value_range=(0, 255)`. An invalid factor is reported
    /// when the layer is first used.
    pub fn new(factor: impl Into<Factor>) -> RandomBrightness {
        RandomBrightness {
            base: LayerBase::new("RandomBrightness"),
            factor: factor.into(),
            value_range: (0.0, 255.0),
            seed: None,
        }
    }

    /// `value_range=(a, b)` (sorted, as Keras).
    pub fn value_range(mut self, a: f64, b: f64) -> Self {
        self.value_range = (a.min(b), a.max(b));
        self
    }

    super::image_preprocessing::seed_builder!();

    fn check(&self) -> Result<(f64, f64)> {
        let name = &self.base.name;
        let (lo, hi) = self.value_range;
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(Error::invalid(
                name,
                format!("layer {name:?}: value_range must be two finite numbers, got ({lo}, {hi})"),
            ));
        }
        self.factor.base_range(name, "factor", (-1.0, 1.0))
    }
}

impl Layer for RandomBrightness {
    fn class_name(&self) -> &str {
        "RandomBrightness"
    }
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }
    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let s = first_shape(&self.base.name, input_shapes)?;
        hw_axes(&self.base.name, "RandomBrightness", s)?;
        self.check()?;
        Ok(())
    }
    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = to_float(single_input(&name, inputs)?)?;
        let (n, _, _) = image_dims(&name, "RandomBrightness", &x)?;
        let (lo, hi) = self.check()?;
        if !training {
            return Ok(vec![x]);
        }
        let seed = self.base.next_call_seed();
        let span = self.value_range.1 - self.value_range.0;
        let d: Vec<f64> = uniform(n, lo, hi, seed)?.iter().map(|v| v * span).collect();
        let shape: Vec<usize> = if x.rank() == 4 {
            vec![n, 1, 1, 1]
        } else {
            vec![1, 1, 1]
        };
        let d = Tensor::from_f64_slice(x.dtype(), &d, &shape)?;
        Ok(vec![ops::clip_by_value_scalar(
            &ops::add(&x, &d)?,
            self.value_range.0,
            self.value_range.1,
        )?])
    }
    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![first_shape(&self.base.name, input_shapes)?.clone()])
    }
    fn get_config(&self) -> Value {
        let mut m = config_head(&self.base);
        m.insert("factor".into(), self.factor.to_json());
        m.insert(
            "value_range".into(),
            serde_json::json!([self.value_range.0, self.value_range.1]),
        );
        m.insert("seed".into(), serde_json::json!(self.seed));
        Value::Object(m)
    }
}
