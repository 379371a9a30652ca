//! `keras.layers.RandomTranslation`.

use ferroflow_core::{Result, Tensor};
use serde_json::Value;

use super::image_preprocessing::{
    config_head, hw_axes, image_dims, sub_seed, to_float, transform, uniform, AffineArgs, Factor,
};
use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// `keras.layers.RandomTranslation(height_factor, width_factor, fill_mode="reflect",
/// interpolation="bilinear", seed=None, fill_value=0.0)`: shifts each image by a random
/// fraction of its size, active only in training (identity at inference, after a cast of
/// non-float images to float32).
///
/// As Keras 3: each factor (values in `[-1, 1]`) `f` draws a fraction uniformly in
/// `[-|f|, |f|)` (a pair `(lo, hi)`: `[lo, hi)`), multiplied by the height (resp. width) to give
/// a shift in pixels `(dy, dx)`; positive values move the content down (resp. right). Output
/// pixel `(x, y)` samples the input at `(x − dx, y − dy)` (Keras's `_get_translation_matrix`),
/// with `fill_mode` for the uncovered part.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, RandomTranslation};
/// use ferroflow_core::{DType, ops};
/// let shift = LayerHandle::new(RandomTranslation::new(0.2, 0.2).fill_mode("constant").seed(4));
/// let x = ops::ones(&[1, 10, 10, 1], DType::F32);
/// let y = shift.call(&x, true)?.to_vec::<f32>()?;
/// assert!(y.iter().all(|&v| (0.0..=1.0).contains(&v)));
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct RandomTranslation {
    base: LayerBase,
    /// The vertical shift range, as a fraction of the height.
    pub height_factor: Factor,
    /// The horizontal shift range, as a fraction of the width.
    pub width_factor: Factor,
    args: AffineArgs,
}

impl RandomTranslation {
    /// `RandomTranslation(height_factor, width_factor)` with Keras's defaults. Invalid factors
    /// are reported when the layer is first used.
    pub fn new(height_factor: impl Into<Factor>, width_factor: impl Into<Factor>) -> Self {
        RandomTranslation {
            base: LayerBase::new("RandomTranslation"),
            height_factor: height_factor.into(),
            width_factor: width_factor.into(),
            args: AffineArgs::default(),
        }
    }

    super::image_preprocessing::affine_builders!();

    fn ranges(&self) -> Result<((f64, f64), (f64, f64))> {
        let name = &self.base.name;
        Ok((
            self.height_factor
                .unit_range(name, "height_factor", false)?,
            self.width_factor.unit_range(name, "width_factor", false)?,
        ))
    }
}

/// Keras's `_get_translation_matrix` for a shift of `(dx, dy)` pixels.
pub(crate) fn translation_matrix(dx: f64, dy: f64) -> [f64; 8] {
    [1.0, 0.0, -dx, 0.0, 1.0, -dy, 0.0, 0.0]
}

impl Layer for RandomTranslation {
    fn class_name(&self) -> &str {
        "RandomTranslation"
    }
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }
    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let s = first_shape(&self.base.name, input_shapes)?;
        hw_axes(&self.base.name, "RandomTranslation", s)?;
        self.ranges()?;
        self.args.parse(&self.base.name)?;
        Ok(())
    }
    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = to_float(single_input(&name, inputs)?)?;
        let (n, h, w) = image_dims(&name, "RandomTranslation", &x)?;
        let ((hl, hu), (wl, wu)) = self.ranges()?;
        let (interp, fill) = self.args.parse(&name)?;
        if !training {
            return Ok(vec![x]);
        }
        let seed = self.base.next_call_seed();
        let dy = uniform(n, hl, hu, seed)?;
        let dx = uniform(n, wl, wu, sub_seed(seed, 1))?;
        let rows: Vec<[f64; 8]> = (0..n)
            .map(|i| {
                // Keras multiplies in float32 before building the matrix.
                let ty = (dy[i] as f32 * h as f32) as f64;
                let tx = (dx[i] as f32 * w as f32) as f64;
                translation_matrix(tx, ty)
            })
            .collect();
        Ok(vec![transform(
            &x,
            &rows,
            interp,
            fill,
            self.args.fill_value,
        )?])
    }
    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![first_shape(&self.base.name, input_shapes)?.clone()])
    }
    fn get_config(&self) -> Value {
        let mut m = config_head(&self.base);
        m.insert("height_factor".into(), self.height_factor.to_json());
        m.insert("width_factor".into(), self.width_factor.to_json());
        self.args.config(&mut m);
        Value::Object(m)
    }
}
