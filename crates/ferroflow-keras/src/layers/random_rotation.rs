//! `keras.layers.RandomRotation`.

use ferroflow_core::{Result, Tensor};
use serde_json::Value;

use super::image_preprocessing::{
    config_head, hw_axes, image_dims, to_float, transform, uniform, AffineArgs, Factor,
};
use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// `keras.layers.RandomRotation(factor, fill_mode="reflect", interpolation="bilinear",
/// seed=None, fill_value=0.0)`: rotates each image by a random angle, active only in training
/// (at inference the layer is the identity, after a cast of non-float images to float32).
///
/// As Keras 3: `factor` is a fraction of a full turn — `0.2` draws the angle uniformly in
/// `[-0.2·360°, 0.2·360°)` per image, a pair `(lo, hi)` in `[lo·360°, hi·360°)` (the
/// bounds are `[-1, 1]`); the rotation is about the image center `((w−1)/2, (h−1)/2)` with
/// Keras's `_compute_affine_matrix`, applied by `ImageProjectiveTransformV3` with
/// `fill_mode` `reflect` | `wrap` | `constant` | `nearest` and `interpolation` `bilinear` |
/// `nearest`. Positive angles turn the image counter-clockwise. Each training call draws from
/// [`LayerBase::next_call_seed`], so a seeded layer reproduces its sequence of rotations.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, RandomRotation};
/// use ferroflow_core::{DType, ops};
/// let rot = LayerHandle::new(RandomRotation::new(0.1).seed(3));
/// let x = ops::ones(&[2, 8, 8, 3], DType::F32);
/// assert_eq!(rot.call(&x, true)?.shape(), &[2, 8, 8, 3]);
/// // inference: identity
/// assert_eq!(rot.call(&x, false)?.to_vec::<f32>()?, x.to_vec::<f32>()?);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct RandomRotation {
    base: LayerBase,
    /// The rotation range, as a fraction of 2π.
    pub factor: Factor,
    args: AffineArgs,
}

impl RandomRotation {
    /// `RandomRotation(factor)` with Keras's defaults. An invalid factor is reported when the
    /// layer is first used.
    pub fn new(factor: impl Into<Factor>) -> RandomRotation {
        RandomRotation {
            base: LayerBase::new("RandomRotation"),
            factor: factor.into(),
            args: AffineArgs::default(),
        }
    }

    super::image_preprocessing::affine_builders!();

    fn range(&self) -> Result<(f64, f64)> {
        self.factor
            .base_range(&self.base.name, "factor", (-1.0, 1.0))
    }
}

/// Keras's `_compute_affine_matrix` for a pure rotation by `angle` degrees about the center of
/// an `h × w` image.
pub(crate) fn rotation_matrix(angle_deg: f64, h: usize, w: usize) -> [f64; 8] {
    let a = angle_deg.to_radians();
    let (cx, cy) = (0.5 * (w as f64 - 1.0), 0.5 * (h as f64 - 1.0));
    let (c, s) = (a.cos(), a.sin());
    let (a0, a1) = (c, -s);
    let (b0, b1) = (s, c);
    [
        a0,
        a1,
        cx - cx * a0 - cy * a1,
        b0,
        b1,
        cy - cx * b0 - cy * b1,
        0.0,
        0.0,
    ]
}

impl Layer for RandomRotation {
    fn class_name(&self) -> &str {
        "RandomRotation"
    }
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }
    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let s = first_shape(&self.base.name, input_shapes)?;
        hw_axes(&self.base.name, "RandomRotation", s)?;
        self.range()?;
        self.args.parse(&self.base.name)?;
        Ok(())
    }
    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = to_float(single_input(&name, inputs)?)?;
        let (n, h, w) = image_dims(&name, "RandomRotation", &x)?;
        let (lo, hi) = self.range()?;
        let (interp, fill) = self.args.parse(&name)?;
        if !training {
            return Ok(vec![x]);
        }
        let seed = self.base.next_call_seed();
        let angles = uniform(n, lo * 360.0, hi * 360.0, seed)?;
        let rows: Vec<[f64; 8]> = angles.iter().map(|&a| rotation_matrix(a, h, w)).collect();
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
        m.insert("factor".into(), self.factor.to_json());
        self.args.config(&mut m);
        Value::Object(m)
    }
}
