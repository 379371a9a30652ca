//! `keras.layers.RandomContrast`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::Value;

use super::image_preprocessing::{config_head, hw_axes, image_dims, to_float, uniform, Factor};
use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// `keras.layers.RandomContrast(factor, value_range=(0, 255), seed=None)`: scales each image's
/// contrast by a random factor, active only in training (identity at inference, after a cast of
/// non-float images to float32).
///
/// For each image and channel, `y = (x − mean) · c + mean` with `mean` over height and width,
/// then clipped to `value_range`. As Keras 3.15 (whose factor bounds are `[0, 1]`): a number `f`
/// becomes the range `(0, f)` and `c` is drawn uniformly in `[1 − 0, 1 + f)` — so a single
/// number only *raises* the contrast; a pair `(lo, hi)` draws `c` in `[1 − lo, 1 + hi)`.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, RandomContrast};
/// use ferroflow_core::Tensor;
/// let layer = LayerHandle::new(RandomContrast::new((0.5, 0.5)).seed(2));
/// let x = Tensor::from_vec(vec![100.0f32, 200.0], &[1, 2, 1])?;
/// let y = layer.call(&x, true)?.to_vec::<f32>()?;
/// assert!((y[0] + y[1] - 300.0).abs() < 1e-3); // the mean is kept
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct RandomContrast {
    base: LayerBase,
    /// The contrast range (see the type's docs).
    pub factor: Factor,
    /// `(min, max)` of the image values; outputs are clipped to it.
    pub value_range: (f64, f64),
    seed: Option<u64>,
}

impl RandomContrast {
    /// `RandomContrast(factor)` with `value_range=(0, 255)`. An invalid factor is reported when
    /// the layer is first used.
    pub fn new(factor: impl Into<Factor>) -> RandomContrast {
        RandomContrast {
            base: LayerBase::new("RandomContrast"),
            factor: factor.into(),
            value_range: (0.0, 255.0),
            seed: None,
        }
    }

    /// `value_range=(lo, hi)`, e.g. `(0, 1)` for rescaled images.
    pub fn value_range(mut self, lo: f64, hi: f64) -> Self {
        self.value_range = (lo, hi);
        self
    }

    super::image_preprocessing::seed_builder!();

    fn check(&self) -> Result<(f64, f64)> {
        let name = &self.base.name;
        let (lo, hi) = self.value_range;
        if lo.is_nan() || hi.is_nan() || lo >= hi {
            return Err(Error::invalid(
                name,
                format!("layer {name:?}: value_range must be (min, max) with min < max, got ({lo}, {hi})"),
            ));
        }
        self.factor.base_range(name, "factor", (0.0, 1.0))
    }
}

impl Layer for RandomContrast {
    fn class_name(&self) -> &str {
        "RandomContrast"
    }
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }
    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let s = first_shape(&self.base.name, input_shapes)?;
        hw_axes(&self.base.name, "RandomContrast", s)?;
        self.check()?;
        Ok(())
    }
    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = to_float(single_input(&name, inputs)?)?;
        let (n, _, _) = image_dims(&name, "RandomContrast", &x)?;
        let (lo, hi) = self.check()?;
        if !training {
            return Ok(vec![x]);
        }
        let seed = self.base.next_call_seed();
        let c = uniform(n, 1.0 - lo, 1.0 + hi, seed)?;
        let rank = x.rank();
        let c_shape: Vec<usize> = if rank == 4 {
            vec![n, 1, 1, 1]
        } else {
            vec![1, 1, 1]
        };
        let c = Tensor::from_f64_slice(x.dtype(), &c, &c_shape)?;
        let hw: Vec<isize> = if rank == 4 { vec![1, 2] } else { vec![0, 1] };
        let mean = ops::reduce_mean(&x, hw, true)?;
        let y = ops::add(&ops::mul(&ops::sub(&x, &mean)?, &c)?, &mean)?;
        Ok(vec![ops::clip_by_value_scalar(
            &y,
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
