//! `keras.layers.RandomZoom`.

use ferroflow_core::{Result, Tensor};
use serde_json::Value;

use super::image_preprocessing::{
    config_head, hw_axes, image_dims, sub_seed, to_float, transform, uniform, AffineArgs, Factor,
};
use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::first_shape;
use crate::backend::Shape;

/// `keras.layers.RandomZoom(height_factor, width_factor=None, fill_mode="reflect",
/// interpolation="bilinear", seed=None, fill_value=0.0)`: zooms each image in or out by a
/// random factor, active only in training (identity at inference, after a cast of non-float
/// images to float32).
///
/// As Keras 3: a factor `f` (each value in `(-1, 1]`) draws the zoom `z` uniformly in
/// `[1 − |f|, 1 + |f|)` (a pair `(lo, hi)`: `[1 + lo, 1 + hi)`); **positive values zoom out**,
/// negative zoom in. Output pixel `(x, y)` samples the input at
/// `(z_w·x + (w−1)/2·(1 − z_w), z_h·y + (h−1)/2·(1 − z_h))` (Keras's `_get_zoom_matrix`).
/// Without `width_factor` the width uses the height's zoom (the aspect ratio is kept).
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, RandomZoom};
/// use ferroflow_core::{DType, ops};
/// let zoom = LayerHandle::new(RandomZoom::new((-0.3, -0.1)).seed(1)); // zoom in
/// let x = ops::ones(&[2, 6, 6, 1], DType::F32);
/// assert_eq!(zoom.call(&x, true)?.shape(), &[2, 6, 6, 1]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct RandomZoom {
    base: LayerBase,
    /// The vertical zoom range.
    pub height_factor: Factor,
    /// The horizontal zoom range (`None`: the height's zoom, keeping the aspect ratio).
    pub width_factor: Option<Factor>,
    args: AffineArgs,
}

impl RandomZoom {
    /// `RandomZoom(height_factor)` with Keras's defaults. Invalid factors are reported when the
    /// layer is first used.
    pub fn new(height_factor: impl Into<Factor>) -> RandomZoom {
        RandomZoom {
            base: LayerBase::new("RandomZoom"),
            height_factor: height_factor.into(),
            width_factor: None,
            args: AffineArgs::default(),
        }
    }

    /// `width_factor`: an independent horizontal zoom range.
    pub fn width_factor(mut self, factor: impl Into<Factor>) -> Self {
        self.width_factor = Some(factor.into());
        self
    }

    super::image_preprocessing::affine_builders!();

    #[allow(clippy::type_complexity)]
    fn ranges(&self) -> Result<((f64, f64), Option<(f64, f64)>)> {
        let name = &self.base.name;
        let h = self.height_factor.unit_range(name, "height_factor", true)?;
        let w = match self.width_factor {
            Some(f) => Some(f.unit_range(name, "width_factor", true)?),
            None => None,
        };
        Ok((h, w))
    }
}

/// Keras's `_get_zoom_matrix` for zooms `(zw, zh)` of an `h × w` image.
pub(crate) fn zoom_matrix(zw: f64, zh: f64, h: usize, w: usize) -> [f64; 8] {
    let x_off = (w as f64 - 1.0) / 2.0 * (1.0 - zw);
    let y_off = (h as f64 - 1.0) / 2.0 * (1.0 - zh);
    [zw, 0.0, x_off, 0.0, zh, y_off, 0.0, 0.0]
}

impl Layer for RandomZoom {
    fn class_name(&self) -> &str {
        "RandomZoom"
    }
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }
    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let s = first_shape(&self.base.name, input_shapes)?;
        hw_axes(&self.base.name, "RandomZoom", s)?;
        self.ranges()?;
        self.args.parse(&self.base.name)?;
        Ok(())
    }
    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = to_float(single_input(&name, inputs)?)?;
        let (n, h, w) = image_dims(&name, "RandomZoom", &x)?;
        let ((hl, hu), wr) = self.ranges()?;
        let (interp, fill) = self.args.parse(&name)?;
        if !training {
            return Ok(vec![x]);
        }
        let seed = self.base.next_call_seed();
        let zh = uniform(n, 1.0 + hl, 1.0 + hu, seed)?;
        let zw = match wr {
            Some((wl, wu)) => uniform(n, 1.0 + wl, 1.0 + wu, sub_seed(seed, 1))?,
            None => zh.clone(),
        };
        let rows: Vec<[f64; 8]> = (0..n).map(|i| zoom_matrix(zw[i], zh[i], h, w)).collect();
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
        m.insert(
            "width_factor".into(),
            self.width_factor.map_or(Value::Null, |f| f.to_json()),
        );
        self.args.config(&mut m);
        Value::Object(m)
    }
}
