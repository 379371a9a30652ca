//! Image ops (`tf.image`), NHWC: [`resize`] (TF2's `tf.image.resize` with `antialias=False`:
//! bilinear, nearest and bicubic with half-pixel centers) and its gradient ops,
//! `ImageProjectiveTransformV3` ([`image_projective_transform_v3`], Keras's
//! [`affine_transform`]) with the exact adjoint in the image as its gradient, and the cropping
//! and flipping helpers built on slicing ([`crop_to_bounding_box`], [`central_crop`],
//! [`flip_left_right`], [`flip_up_down`]).
//!
//! Like TensorFlow, the ops take a batch `[n, h, w, c]` or (for [`resize`], [`affine_transform`]
//! and the helpers) a single image `[h, w, c]`. Sampling positions and interpolation weights are
//! computed in `f32` exactly as TensorFlow's kernels do. One difference: TensorFlow's bilinear
//! and bicubic `resize` return float32 whatever the input; here the output keeps the input's
//! float dtype (f16/bf16/f32/f64; integer images must be cast first).

use crate::error::{Error, Result};
use crate::kernels::image::{
    bicubic_taps, bilinear_taps, nearest_taps, projective_backward, projective_forward,
    resize_backward, resize_forward, AxisTaps, ProjectiveGeom,
};
pub use crate::kernels::image::{FillMode, Interpolation};
use crate::kernels::Float;
use crate::op::{execute1, Dim, GradCtx, Op, TensorSpec};
use crate::ops::conv::{check_float, compute_float, FloatKernel};
use crate::ops::{expand_dims, reverse, slice, squeeze};
use crate::tensor::Tensor;

/// The `method` of [`resize`] (`tf.image.ResizeMethod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResizeMethod {
    /// `"bilinear"` (TF's default): `ResizeBilinear` with half-pixel centers.
    Bilinear,
    /// `"nearest"`: `ResizeNearestNeighbor` with half-pixel centers.
    Nearest,
    /// `"bicubic"`: `ResizeBicubic` with half-pixel centers (Keys kernel, `a = −0.5`).
    Bicubic,
}

impl ResizeMethod {
    /// Parses Keras/TF's names: `"bilinear"`, `"nearest"`, `"bicubic"`.
    pub fn parse(s: &str) -> Result<ResizeMethod> {
        match s {
            "bilinear" => Ok(ResizeMethod::Bilinear),
            "nearest" => Ok(ResizeMethod::Nearest),
            "bicubic" => Ok(ResizeMethod::Bicubic),
            _ => Err(Error::invalid(
                "resize",
                format!(
                    "unknown interpolation {s:?}, expected one of \"bilinear\", \"nearest\", \"bicubic\""
                ),
            )),
        }
    }

    fn taps(self, in_len: usize, out_len: usize) -> AxisTaps {
        match self {
            ResizeMethod::Bilinear => bilinear_taps(in_len, out_len),
            ResizeMethod::Nearest => nearest_taps(in_len, out_len),
            ResizeMethod::Bicubic => bicubic_taps(in_len, out_len),
        }
    }
}

impl Interpolation {
    /// Parses `"nearest"` / `"bilinear"` (Keras's `interpolation`, any case).
    pub fn parse(s: &str) -> Result<Interpolation> {
        match s.to_ascii_lowercase().as_str() {
            "nearest" => Ok(Interpolation::Nearest),
            "bilinear" => Ok(Interpolation::Bilinear),
            _ => Err(Error::invalid(
                "ImageProjectiveTransformV3",
                format!("unknown interpolation {s:?}, expected \"nearest\" or \"bilinear\""),
            )),
        }
    }
}

impl FillMode {
    /// Parses `"reflect"`, `"wrap"`, `"constant"`, `"nearest"` (Keras's `fill_mode`, any case).
    pub fn parse(s: &str) -> Result<FillMode> {
        match s.to_ascii_lowercase().as_str() {
            "reflect" => Ok(FillMode::Reflect),
            "wrap" => Ok(FillMode::Wrap),
            "constant" => Ok(FillMode::Constant),
            "nearest" => Ok(FillMode::Nearest),
            _ => Err(Error::invalid(
                "ImageProjectiveTransformV3",
                format!(
                    "unknown fill_mode {s:?}, expected one of \"reflect\", \"wrap\", \"constant\", \"nearest\""
                ),
            )),
        }
    }
}

fn check_rank4(op: &str, what: &str, s: &TensorSpec, shapes: &[&[usize]]) -> Result<()> {
    if s.rank() != 4 {
        return Err(Error::shape(
            op,
            format!(
                "the {what} must be rank 4 [batch, height, width, channels], got rank {}",
                s.rank()
            ),
            shapes,
        ));
    }
    Ok(())
}

fn check_size(op: &str, what: &str, size: [usize; 2], shapes: &[&[usize]]) -> Result<()> {
    if size[0] == 0 || size[1] == 0 {
        return Err(Error::shape(
            op,
            format!("{what} must be positive, got [{}, {}]", size[0], size[1]),
            shapes,
        ));
    }
    Ok(())
}

fn check_nonempty_image(op: &str, s: &[Dim], shapes: &[&[usize]]) -> Result<()> {
    if s[1] == Some(0) || s[2] == Some(0) {
        return Err(Error::shape(
            op,
            "the input height and width must be positive",
            shapes,
        ));
    }
    Ok(())
}

fn dims4(s: &[usize]) -> [usize; 4] {
    [s[0], s[1], s[2], s[3]]
}

struct ResizeKernel {
    dims: [usize; 4],
    ty: AxisTaps,
    tx: AxisTaps,
    backward: bool,
}

impl FloatKernel for ResizeKernel {
    fn run<T: Float>(&self, i: &[&[T]], out: &mut [T]) {
        if self.backward {
            resize_backward(i[0], self.dims, &self.ty, &self.tx, out);
        } else {
            resize_forward(i[0], self.dims, &self.ty, &self.tx, out);
        }
    }
}

/// `ResizeBilinear` / `ResizeNearestNeighbor` / `ResizeBicubic` (`half_pixel_centers=True`):
/// input `[images]` of rank 4.
#[derive(Clone, Debug)]
pub struct ResizeImages {
    /// Output `[height, width]`.
    pub size: [usize; 2],
    /// Interpolation.
    pub method: ResizeMethod,
}

impl Op for ResizeImages {
    fn name(&self) -> &'static str {
        match self.method {
            ResizeMethod::Bilinear => "ResizeBilinear",
            ResizeMethod::Nearest => "ResizeNearestNeighbor",
            ResizeMethod::Bicubic => "ResizeBicubic",
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        let x = &inputs[0];
        let xs = x.shape_for_error();
        let dtype = check_float(op, &[x])?;
        check_rank4(op, "images", x, &[&xs])?;
        check_size(op, "the output size", self.size, &[&xs])?;
        check_nonempty_image(op, &x.shape, &[&xs])?;
        Ok(vec![TensorSpec {
            dtype,
            shape: vec![
                x.shape[0],
                Some(self.size[0]),
                Some(self.size[1]),
                x.shape[3],
            ],
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let d = dims4(x.shape());
        let k = ResizeKernel {
            dims: d,
            ty: self.method.taps(d[1], self.size[0]),
            tx: self.method.taps(d[2], self.size[1]),
            backward: false,
        };
        let out = [d[0], self.size[0], self.size[1], d[3]];
        Ok(vec![compute_float(self.name(), &k, &[x], &out)?])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let s = ctx.x(0).shape();
        Ok(vec![Some(resize_grad(
            ctx.g(0),
            [s[1], s[2]],
            self.method,
        )?)])
    }
}

/// `ResizeBilinearGrad` / `ResizeNearestNeighborGrad` / `ResizeBicubicGrad`: input `[grads]`
/// (`[n, oh, ow, c]`); output the gradient of the original `[n, h, w, c]` images — the exact
/// adjoint of the resize (which is linear in the image).
#[derive(Clone, Debug)]
pub struct ResizeGrad {
    /// The original images' `[height, width]`.
    pub original_size: [usize; 2],
    /// Interpolation of the forward resize.
    pub method: ResizeMethod,
}

impl Op for ResizeGrad {
    fn name(&self) -> &'static str {
        match self.method {
            ResizeMethod::Bilinear => "ResizeBilinearGrad",
            ResizeMethod::Nearest => "ResizeNearestNeighborGrad",
            ResizeMethod::Bicubic => "ResizeBicubicGrad",
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        let g = &inputs[0];
        let gs = g.shape_for_error();
        let dtype = check_float(op, &[g])?;
        check_rank4(op, "grads", g, &[&gs])?;
        check_size(op, "the original size", self.original_size, &[&gs])?;
        check_nonempty_image(op, &g.shape, &[&gs])?;
        Ok(vec![TensorSpec {
            dtype,
            shape: vec![
                g.shape[0],
                Some(self.original_size[0]),
                Some(self.original_size[1]),
                g.shape[3],
            ],
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let g = &inputs[0];
        let gs = g.shape();
        let [h, w] = self.original_size;
        let k = ResizeKernel {
            dims: [gs[0], h, w, gs[3]],
            ty: self.method.taps(h, gs[1]),
            tx: self.method.taps(w, gs[2]),
            backward: true,
        };
        let out = [gs[0], h, w, gs[3]];
        Ok(vec![compute_float(self.name(), &k, &[g], &out)?])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        // Linear in `grads`: its adjoint is the forward resize.
        let s = ctx.x(0).shape();
        Ok(vec![Some(resize(ctx.g(0), [s[1], s[2]], self.method)?)])
    }
}

/// Runs `f` on `images` as a batch: a rank-3 image gets a batch axis of 1 which is removed
/// afterwards; rank 4 passes through; any other rank is an error naming `op`.
fn batched(op: &str, images: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    match images.rank() {
        4 => f(images),
        3 => squeeze(&f(&expand_dims(images, 0)?)?, &[0]),
        r => Err(Error::shape(
            op,
            format!(
                "images must be rank 3 [height, width, channels] or rank 4 [batch, height, width, channels], got rank {r}"
            ),
            &[images.shape()],
        )),
    }
}

/// `tf.image.resize(images, size, method)` with TF2's arithmetic (`antialias=False`,
/// half-pixel centers): `images` is `[n, h, w, c]` or `[h, w, c]`, the result has height and
/// width `size`. Differentiable in the images (gradient: [`resize_grad`]).
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::ResizeMethod;
/// let x = Tensor::from_vec(vec![0.0f32, 4.0], &[1, 2, 1])?; // a 1x2 image
/// let y = ops::resize(&x, [1, 4], ResizeMethod::Bilinear)?;
/// // sampling at -0.25, 0.25, 0.75, 1.25 (clamped at the edges)
/// assert_eq!(y.to_vec::<f32>()?, vec![0.0, 1.0, 3.0, 4.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn resize(images: &Tensor, size: [usize; 2], method: ResizeMethod) -> Result<Tensor> {
    batched("resize", images, |x| {
        execute1(ResizeImages { size, method }, &[x.clone()])
    })
}

/// The gradient of [`resize`] for rank-4 `grads` (`[n, oh, ow, c]`): the gradient of the
/// `[n, original_size, c]` images (TensorFlow's `ResizeBilinearGrad` and siblings).
pub fn resize_grad(
    grads: &Tensor,
    original_size: [usize; 2],
    method: ResizeMethod,
) -> Result<Tensor> {
    execute1(
        ResizeGrad {
            original_size,
            method,
        },
        &[grads.clone()],
    )
}

struct ProjectiveKernel {
    geom: ProjectiveGeom,
    fill_value: f64,
    backward: bool,
}

impl FloatKernel for ProjectiveKernel {
    fn run<T: Float>(&self, i: &[&[T]], out: &mut [T]) {
        if self.backward {
            projective_backward(&self.geom, i[0], out);
        } else {
            projective_forward(&self.geom, i[0], T::from_f64c(self.fill_value), out);
        }
    }
}

/// Checks `transforms` (`[1 or n, 8]`, float) against the batch size `n`.
fn check_transforms(op: &str, t: &TensorSpec, n: Dim, shapes: &[&[usize]]) -> Result<()> {
    if !t.dtype.is_float() {
        return Err(Error::dtype(
            op,
            "transforms must be a float tensor",
            &[t.dtype],
        ));
    }
    let ok = t.rank() == 2
        && t.shape[1].is_none_or(|d| d == 8)
        && match (t.shape[0], n) {
            (Some(a), Some(b)) => a == 1 || a == b,
            _ => true,
        };
    if !ok {
        return Err(Error::shape(
            op,
            "transforms must have shape [1, 8] or [batch, 8]",
            shapes,
        ));
    }
    Ok(())
}

fn transform_values(t: &Tensor) -> Vec<f32> {
    // TensorFlow reads the transforms as float32.
    t.to_f64_vec().into_iter().map(|v| v as f32).collect()
}

/// `ImageProjectiveTransformV3`: inputs `[images, transforms]`. Each row
/// `[a0, a1, a2, b0, b1, b2, c0, c1]` of `transforms` maps an output point `(x, y)` to the input
/// point `((a0·x + a1·y + a2)/k, (b0·x + b1·y + b2)/k)`, `k = c0·x + c1·y + 1`.
#[derive(Clone, Debug)]
pub struct ImageProjectiveTransformV3 {
    /// Output `[height, width]`.
    pub output_shape: [usize; 2],
    /// The value of points outside the image (`fill_mode` constant, and `k = 0`).
    pub fill_value: f64,
    /// Nearest or bilinear.
    pub interpolation: Interpolation,
    /// How points outside the image are mapped.
    pub fill_mode: FillMode,
}

impl Op for ImageProjectiveTransformV3 {
    fn name(&self) -> &'static str {
        "ImageProjectiveTransformV3"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        let (x, t) = (&inputs[0], &inputs[1]);
        let (xs, ts) = (x.shape_for_error(), t.shape_for_error());
        let shapes = [&xs[..], &ts[..]];
        let dtype = check_float(op, &[x])?;
        check_rank4(op, "images", x, &shapes)?;
        check_transforms(op, t, x.shape[0], &shapes)?;
        check_size(op, "output_shape", self.output_shape, &shapes)?;
        Ok(vec![TensorSpec {
            dtype,
            shape: vec![
                x.shape[0],
                Some(self.output_shape[0]),
                Some(self.output_shape[1]),
                x.shape[3],
            ],
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let d = dims4(x.shape());
        let [oh, ow] = self.output_shape;
        let k = ProjectiveKernel {
            geom: ProjectiveGeom {
                n: d[0],
                h: d[1],
                w: d[2],
                c: d[3],
                oh,
                ow,
                transforms: transform_values(&inputs[1]),
                interpolation: self.interpolation,
                fill_mode: self.fill_mode,
            },
            fill_value: self.fill_value,
            backward: false,
        };
        Ok(vec![compute_float(
            self.name(),
            &k,
            &[x],
            &[d[0], oh, ow, d[3]],
        )?])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        // Linear in the image (plus the fill term); the transforms get no gradient, as in TF.
        let s = ctx.x(0).shape();
        Ok(vec![
            Some(image_projective_transform_grad(
                ctx.g(0),
                ctx.x(1),
                [s[1], s[2]],
                self.interpolation,
                self.fill_mode,
            )?),
            None,
        ])
    }
}

/// `ImageProjectiveTransformV3Grad` (ferroflow's own op): inputs `[grads, transforms]`; the exact
/// adjoint of [`ImageProjectiveTransformV3`] in the image, each output gradient scattered onto
/// the pixels it was interpolated from.
#[derive(Clone, Debug)]
pub struct ImageProjectiveTransformV3Grad {
    /// The forward input's `[height, width]`.
    pub input_size: [usize; 2],
    /// Interpolation of the forward op.
    pub interpolation: Interpolation,
    /// Fill mode of the forward op.
    pub fill_mode: FillMode,
}

impl Op for ImageProjectiveTransformV3Grad {
    fn name(&self) -> &'static str {
        "ImageProjectiveTransformV3Grad"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        let (g, t) = (&inputs[0], &inputs[1]);
        let (gs, ts) = (g.shape_for_error(), t.shape_for_error());
        let shapes = [&gs[..], &ts[..]];
        let dtype = check_float(op, &[g])?;
        check_rank4(op, "grads", g, &shapes)?;
        check_transforms(op, t, g.shape[0], &shapes)?;
        check_size(op, "input_size", self.input_size, &shapes)?;
        Ok(vec![TensorSpec {
            dtype,
            shape: vec![
                g.shape[0],
                Some(self.input_size[0]),
                Some(self.input_size[1]),
                g.shape[3],
            ],
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let g = &inputs[0];
        let d = dims4(g.shape());
        let [h, w] = self.input_size;
        let k = ProjectiveKernel {
            geom: ProjectiveGeom {
                n: d[0],
                h,
                w,
                c: d[3],
                oh: d[1],
                ow: d[2],
                transforms: transform_values(&inputs[1]),
                interpolation: self.interpolation,
                fill_mode: self.fill_mode,
            },
            fill_value: 0.0,
            backward: true,
        };
        Ok(vec![compute_float(
            self.name(),
            &k,
            &[g],
            &[d[0], h, w, d[3]],
        )?])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let s = ctx.x(0).shape();
        Ok(vec![
            Some(image_projective_transform_v3(
                ctx.g(0),
                ctx.x(1),
                [s[1], s[2]],
                0.0,
                self.interpolation,
                self.fill_mode,
            )?),
            None,
        ])
    }
}

/// `tf.raw_ops.ImageProjectiveTransformV3(images, transforms, output_shape, fill_value,
/// interpolation, fill_mode)`: `images` `[n, h, w, c]`, `transforms` `[n, 8]` or `[1, 8]`
/// (read as float32), result `[n, output_shape, c]`. Each transform maps *output* points to
/// *input* points (see [`ImageProjectiveTransformV3`]). Differentiable in `images` (the exact
/// adjoint); `transforms` get no gradient, as in TensorFlow.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::{FillMode, Interpolation};
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[1, 1, 3, 1])?;
/// // output x reads input x - 1: a shift right by one pixel, filled with 9
/// let t = Tensor::from_vec(vec![1.0f32, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0], &[1, 8])?;
/// let y = ops::image_projective_transform_v3(
///     &x, &t, [1, 3], 9.0, Interpolation::Bilinear, FillMode::Constant)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![9.0, 1.0, 2.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn image_projective_transform_v3(
    images: &Tensor,
    transforms: &Tensor,
    output_shape: [usize; 2],
    fill_value: f64,
    interpolation: Interpolation,
    fill_mode: FillMode,
) -> Result<Tensor> {
    execute1(
        ImageProjectiveTransformV3 {
            output_shape,
            fill_value,
            interpolation,
            fill_mode,
        },
        &[images.clone(), transforms.clone()],
    )
}

/// The gradient of [`image_projective_transform_v3`] with respect to its images, for output
/// gradients `grads` (`[n, oh, ow, c]`) and an input of `[height, width]` `input_size`.
pub fn image_projective_transform_grad(
    grads: &Tensor,
    transforms: &Tensor,
    input_size: [usize; 2],
    interpolation: Interpolation,
    fill_mode: FillMode,
) -> Result<Tensor> {
    execute1(
        ImageProjectiveTransformV3Grad {
            input_size,
            interpolation,
            fill_mode,
        },
        &[grads.clone(), transforms.clone()],
    )
}

/// `keras.ops.image.affine_transform(images, transform, interpolation, fill_mode, fill_value)`
/// (channels-last): `images` `[n, h, w, c]` or `[h, w, c]`, `transform` `[n, 8]`, `[1, 8]` or
/// `[8]`; runs [`image_projective_transform_v3`] with the output size of the input, as Keras's
/// TensorFlow backend does.
pub fn affine_transform(
    images: &Tensor,
    transform: &Tensor,
    interpolation: Interpolation,
    fill_mode: FillMode,
    fill_value: f64,
) -> Result<Tensor> {
    let t = match transform.rank() {
        1 => expand_dims(transform, 0)?,
        2 => transform.clone(),
        r => {
            return Err(Error::shape(
                "affine_transform",
                format!("transform must be rank 1 (single transform) or rank 2 (batch of transforms), got rank {r}"),
                &[images.shape(), transform.shape()],
            ))
        }
    };
    batched("affine_transform", images, |x| {
        let s = x.shape();
        image_projective_transform_v3(x, &t, [s[1], s[2]], fill_value, interpolation, fill_mode)
    })
}

fn hw_axes(op: &str, images: &Tensor) -> Result<(usize, usize)> {
    match images.rank() {
        3 => Ok((0, 1)),
        4 => Ok((1, 2)),
        r => Err(Error::shape(
            op,
            format!("images must be rank 3 or 4 (channels-last), got rank {r}"),
            &[images.shape()],
        )),
    }
}

/// `tf.image.crop_to_bounding_box(images, offset_height, offset_width, target_height,
/// target_width)`: the window of `target` size whose top-left corner is at the offsets (an
/// error when it does not fit in the image). Rank 3 or 4; differentiable (a slice).
pub fn crop_to_bounding_box(
    images: &Tensor,
    offset_height: usize,
    offset_width: usize,
    target_height: usize,
    target_width: usize,
) -> Result<Tensor> {
    const OP: &str = "crop_to_bounding_box";
    let (ha, wa) = hw_axes(OP, images)?;
    let s = images.shape();
    if target_height == 0 || target_width == 0 {
        return Err(Error::invalid(
            OP,
            "target_height and target_width must be > 0",
        ));
    }
    if offset_height + target_height > s[ha] || offset_width + target_width > s[wa] {
        return Err(Error::shape(
            OP,
            format!(
                "the box at ({offset_height}, {offset_width}) of size ({target_height}, {target_width}) does not fit in the image"
            ),
            &[s],
        ));
    }
    let mut begin = vec![0usize; s.len()];
    let mut size: Vec<isize> = vec![-1; s.len()];
    begin[ha] = offset_height;
    begin[wa] = offset_width;
    size[ha] = target_height as isize;
    size[wa] = target_width as isize;
    slice(images, &begin, &size)
}

/// `tf.image.central_crop(image, central_fraction)`: keeps the central `central_fraction`
/// (in `(0, 1]`) of the height and width, with TF's arithmetic
/// (`start = int((size − size·fraction) / 2)`, `length = size − 2·start`).
pub fn central_crop(images: &Tensor, central_fraction: f64) -> Result<Tensor> {
    const OP: &str = "central_crop";
    if central_fraction.is_nan() || central_fraction <= 0.0 || central_fraction > 1.0 {
        return Err(Error::invalid(
            OP,
            format!("central_fraction must be within (0, 1], got {central_fraction}"),
        ));
    }
    let (ha, wa) = hw_axes(OP, images)?;
    let s = images.shape();
    let (h, w) = (s[ha], s[wa]);
    let start = |n: usize| ((n as f64 - n as f64 * central_fraction) / 2.0) as usize;
    let (sh, sw) = (start(h), start(w));
    crop_to_bounding_box(images, sh, sw, h - 2 * sh, w - 2 * sw)
}

/// `tf.image.flip_left_right`: reverses the width axis (rank 3 or 4).
pub fn flip_left_right(images: &Tensor) -> Result<Tensor> {
    let (_, wa) = hw_axes("flip_left_right", images)?;
    reverse(images, &[wa as isize])
}

/// `tf.image.flip_up_down`: reverses the height axis (rank 3 or 4).
pub fn flip_up_down(images: &Tensor) -> Result<Tensor> {
    let (ha, _) = hw_axes("flip_up_down", images)?;
    reverse(images, &[ha as isize])
}
