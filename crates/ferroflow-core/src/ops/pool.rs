//! Max and average pooling (NHWC, TensorFlow `valid`/`same` padding), 2-D and 1-D, with the
//! gradient ops `MaxPoolGrad`, `MaxPoolGradGrad` and `AvgPoolGrad`.
//!
//! As in TensorFlow: padded positions never win a max, average pooling divides by the number
//! of real (non-padded) elements in each window, and the max-pool gradient goes to the first
//! maximum of each window (row-major scan order) when there are ties.

use crate::error::{Error, Result};
use crate::kernels::padding::Padding;
use crate::kernels::pool::{
    avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
    max_pool2d_grad_grad, Pool2dGeom,
};
use crate::kernels::Float;
use crate::op::{execute1, Dim, GradCtx, Op, TensorSpec};
use crate::ops::conv::{check_float, check_positive, compute_float, window_out_dim, FloatKernel};
use crate::ops::{expand_dims, squeeze, zeros_like};
use crate::tensor::Tensor;

/// Window size, strides and padding of a 2-D pooling (`[along H, along W]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolAttrs {
    /// Window `[kh, kw]` (>= 1).
    pub ksize: [usize; 2],
    /// Strides `[sh, sw]` (>= 1).
    pub strides: [usize; 2],
    /// `valid` or `same`.
    pub padding: Padding,
}

impl PoolAttrs {
    /// Validates the attributes against an NHWC input shape and returns the output shape.
    fn output_shape(&self, op: &str, x: &[Dim], shapes: &[&[usize]]) -> Result<Vec<Dim>> {
        check_positive(op, "ksize", self.ksize)?;
        check_positive(op, "strides", self.strides)?;
        let oh = window_out_dim(
            op,
            "height",
            x[1],
            Some(self.ksize[0]),
            (self.strides[0], 1),
            self.padding,
            shapes,
        )?;
        let ow = window_out_dim(
            op,
            "width",
            x[2],
            Some(self.ksize[1]),
            (self.strides[1], 1),
            self.padding,
            shapes,
        )?;
        Ok(vec![x[0], oh, ow, x[3]])
    }

    fn geom(&self, x: &[usize]) -> Pool2dGeom {
        Pool2dGeom::new(
            [x[0], x[1], x[2], x[3]],
            self.ksize,
            self.strides,
            self.padding,
        )
    }
}

fn check_rank4(op: &str, what: &str, s: &TensorSpec, shapes: &[&[usize]]) -> Result<()> {
    if s.rank() != 4 {
        return Err(Error::shape(
            op,
            format!("the {what} must be rank 4 (NHWC), got rank {}", s.rank()),
            shapes,
        ));
    }
    Ok(())
}

fn check_same_shape(
    op: &str,
    what: &str,
    want: &[Dim],
    s: &TensorSpec,
    shapes: &[&[usize]],
) -> Result<()> {
    let ok = want.len() == s.rank()
        && want.iter().zip(&s.shape).all(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        });
    if !ok {
        let want: Vec<String> = want
            .iter()
            .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
            .collect();
        return Err(Error::shape(
            op,
            format!("the {what} must have shape ({})", want.join(", ")),
            shapes,
        ));
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Pass {
    Max,
    MaxGrad,
    MaxGradGrad,
    Avg,
    AvgGrad,
}

struct PoolKernel(Pool2dGeom, Pass);

impl FloatKernel for PoolKernel {
    fn run<T: Float>(&self, i: &[&[T]], out: &mut [T]) {
        let g = &self.0;
        match self.1 {
            Pass::Max => max_pool2d_forward(g, i[0], out),
            Pass::MaxGrad => max_pool2d_backward(g, i[0], i[1], out),
            Pass::MaxGradGrad => max_pool2d_grad_grad(g, i[0], i[1], out),
            Pass::Avg => avg_pool2d_forward(g, i[0], out),
            Pass::AvgGrad => avg_pool2d_backward(g, i[0], out),
        }
    }
}

fn pooled_shape(g: &Pool2dGeom) -> [usize; 4] {
    [g.n, g.oh, g.ow, g.c]
}

/// The shape rule shared by `MaxPool` and `AvgPool`: a rank-4 float input, pooled.
fn infer_forward(op: &str, attrs: &PoolAttrs, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
    let x = &inputs[0];
    let xs = x.shape_for_error();
    let dtype = check_float(op, &[x])?;
    check_rank4(op, "input", x, &[&xs])?;
    let shape = attrs.output_shape(op, &x.shape, &[&xs])?;
    Ok(vec![TensorSpec { dtype, shape }])
}

/// The forward pass shared by `MaxPool` and `AvgPool`.
fn compute_forward(
    op: &str,
    attrs: &PoolAttrs,
    pass: Pass,
    inputs: &[Tensor],
) -> Result<Vec<Tensor>> {
    let g = attrs.geom(inputs[0].shape());
    Ok(vec![compute_float(
        op,
        &PoolKernel(g, pass),
        &[&inputs[0]],
        &pooled_shape(&g),
    )?])
}

/// `MaxPool`: input `[input]`.
#[derive(Clone, Debug)]
pub struct MaxPool {
    /// Window, strides, padding.
    pub attrs: PoolAttrs,
}

impl Op for MaxPool {
    fn name(&self) -> &'static str {
        "MaxPool"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        infer_forward(self.name(), &self.attrs, inputs)
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        compute_forward(self.name(), &self.attrs, Pass::Max, inputs)
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(max_pool_grad(ctx.x(0), ctx.g(0), self.attrs)?)])
    }
}

/// `MaxPoolGrad`: inputs `[orig_input, grad]`; routes each `grad` element to the first maximum
/// of its window. (TensorFlow also passes `orig_output`; it is not needed here.)
#[derive(Clone, Debug)]
pub struct MaxPoolGrad {
    /// Window, strides, padding of the forward pooling.
    pub attrs: PoolAttrs,
}

impl Op for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "MaxPoolGrad"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        let (x, g) = (&inputs[0], &inputs[1]);
        let (xs, gs) = (x.shape_for_error(), g.shape_for_error());
        let shapes = [&xs[..], &gs[..]];
        let dtype = check_float(op, &[x, g])?;
        check_rank4(op, "orig_input", x, &shapes)?;
        let want = self.attrs.output_shape(op, &x.shape, &shapes)?;
        check_same_shape(op, "grad", &want, g, &shapes)?;
        Ok(vec![TensorSpec {
            dtype,
            shape: x.shape.clone(),
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let g = self.attrs.geom(x.shape());
        let k = PoolKernel(g, Pass::MaxGrad);
        Ok(vec![compute_float(
            self.name(),
            &k,
            &[x, &inputs[1]],
            x.shape(),
        )?])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        // Piecewise constant in orig_input (zero almost everywhere, as TF); linear in grad with
        // adjoint "gather at the argmax" (MaxPoolGradGrad).
        Ok(vec![
            Some(zeros_like(ctx.x(0))?),
            Some(max_pool_grad_grad(ctx.x(0), ctx.g(0), self.attrs)?),
        ])
    }
}

/// `MaxPoolGradGrad`: inputs `[orig_input, grad]` (`grad` shaped like the input); picks `grad`
/// at the first maximum of each window.
#[derive(Clone, Debug)]
pub struct MaxPoolGradGrad {
    /// Window, strides, padding of the forward pooling.
    pub attrs: PoolAttrs,
}

impl Op for MaxPoolGradGrad {
    fn name(&self) -> &'static str {
        "MaxPoolGradGrad"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        let (x, g) = (&inputs[0], &inputs[1]);
        let (xs, gs) = (x.shape_for_error(), g.shape_for_error());
        let shapes = [&xs[..], &gs[..]];
        let dtype = check_float(op, &[x, g])?;
        check_rank4(op, "orig_input", x, &shapes)?;
        check_same_shape(op, "grad", &x.shape, g, &shapes)?;
        let shape = self.attrs.output_shape(op, &x.shape, &shapes)?;
        Ok(vec![TensorSpec { dtype, shape }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let g = self.attrs.geom(x.shape());
        let k = PoolKernel(g, Pass::MaxGradGrad);
        Ok(vec![compute_float(
            self.name(),
            &k,
            &[x, &inputs[1]],
            &pooled_shape(&g),
        )?])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        // The adjoint of the gather is the scatter, MaxPoolGrad.
        Ok(vec![
            Some(zeros_like(ctx.x(0))?),
            Some(max_pool_grad(ctx.x(0), ctx.g(0), self.attrs)?),
        ])
    }
}

/// `AvgPool`: input `[input]`.
#[derive(Clone, Debug)]
pub struct AvgPool {
    /// Window, strides, padding.
    pub attrs: PoolAttrs,
}

impl Op for AvgPool {
    fn name(&self) -> &'static str {
        "AvgPool"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        infer_forward(self.name(), &self.attrs, inputs)
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        compute_forward(self.name(), &self.attrs, Pass::Avg, inputs)
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(avg_pool_grad(
            ctx.x(0).shape(),
            ctx.g(0),
            self.attrs,
        )?)])
    }
}

/// `AvgPoolGrad`: input `[grad]`, output of shape `orig_input_shape`.
#[derive(Clone, Debug)]
pub struct AvgPoolGrad {
    /// Window, strides, padding of the forward pooling.
    pub attrs: PoolAttrs,
    /// Shape of the forward pooling's input.
    pub orig_input_shape: [usize; 4],
}

impl Op for AvgPoolGrad {
    fn name(&self) -> &'static str {
        "AvgPoolGrad"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        let g = &inputs[0];
        let gs = g.shape_for_error();
        let shapes = [&self.orig_input_shape[..], &gs[..]];
        let dtype = check_float(op, &[g])?;
        let xin: Vec<Dim> = self.orig_input_shape.iter().map(|&d| Some(d)).collect();
        let want = self.attrs.output_shape(op, &xin, &shapes)?;
        check_same_shape(op, "grad", &want, g, &shapes)?;
        Ok(vec![TensorSpec::new(dtype, &self.orig_input_shape)])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let g = self.attrs.geom(&self.orig_input_shape);
        let k = PoolKernel(g, Pass::AvgGrad);
        Ok(vec![compute_float(
            self.name(),
            &k,
            &[&inputs[0]],
            &self.orig_input_shape,
        )?])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        // AvgPoolGrad is the adjoint of AvgPool, so its own adjoint is AvgPool.
        let a = self.attrs;
        Ok(vec![Some(avg_pool2d(
            ctx.g(0),
            a.ksize,
            a.strides,
            a.padding,
        )?)])
    }
}

fn pool_attrs(ksize: [usize; 2], strides: [usize; 2], padding: Padding) -> PoolAttrs {
    PoolAttrs {
        ksize,
        strides,
        padding,
    }
}

/// `tf.nn.max_pool2d(input, ksize, strides, padding)` on NHWC input `[n, h, w, c]` (op
/// `MaxPool`). `ksize` and `strides` are `[along H, along W]`; padded positions never win.
/// Float dtypes only.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::Padding;
/// let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 3, 3, 1])?;
/// let y = ops::max_pool2d(&x, [2, 2], [2, 2], Padding::Same)?;
/// // windows {1,2,4,5}, {3,6}, {7,8}, {9}
/// assert_eq!(y.to_vec::<f32>()?, vec![5.0, 6.0, 8.0, 9.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn max_pool2d(
    input: &Tensor,
    ksize: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
) -> Result<Tensor> {
    execute1(
        MaxPool {
            attrs: pool_attrs(ksize, strides, padding),
        },
        &[input.clone()],
    )
}

/// `tf.nn.avg_pool2d(input, ksize, strides, padding)` on NHWC input (op `AvgPool`): the mean
/// of the real (non-padded) elements of each window, as TensorFlow. Float dtypes only.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::Padding;
/// let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 3, 3, 1])?;
/// let y = ops::avg_pool2d(&x, [2, 2], [2, 2], Padding::Same)?;
/// // windows {1,2,4,5}, {3,6}, {7,8}, {9}
/// assert_eq!(y.to_vec::<f32>()?, vec![3.0, 4.5, 7.5, 9.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn avg_pool2d(
    input: &Tensor,
    ksize: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
) -> Result<Tensor> {
    execute1(
        AvgPool {
            attrs: pool_attrs(ksize, strides, padding),
        },
        &[input.clone()],
    )
}

fn pool1d(
    op: &str,
    input: &Tensor,
    ksize: usize,
    stride: usize,
    padding: Padding,
    max: bool,
) -> Result<Tensor> {
    if input.rank() != 3 {
        return Err(Error::shape(
            op,
            format!(
                "expects input [n, w, c] (rank 3), got rank {}",
                input.rank()
            ),
            &[input.shape()],
        ));
    }
    let x = expand_dims(input, 1)?;
    let y = if max {
        max_pool2d(&x, [1, ksize], [1, stride], padding)?
    } else {
        avg_pool2d(&x, [1, ksize], [1, stride], padding)?
    };
    squeeze(&y, &[1])
}

/// `tf.nn.max_pool1d(input, ksize, strides, padding)` on input `[n, w, c]` (runs [`max_pool2d`]
/// on `[n, 1, w, c]`).
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::Padding;
/// let x = Tensor::from_vec(vec![1.0f32, 3.0, 2.0, 5.0, 4.0], &[1, 5, 1])?;
/// let y = ops::max_pool1d(&x, 2, 2, Padding::Same)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![3.0, 5.0, 4.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn max_pool1d(input: &Tensor, ksize: usize, stride: usize, padding: Padding) -> Result<Tensor> {
    pool1d("MaxPool1D", input, ksize, stride, padding, true)
}

/// `tf.nn.avg_pool1d(input, ksize, strides, padding)` on input `[n, w, c]` (runs [`avg_pool2d`]
/// on `[n, 1, w, c]`; padded elements are not counted).
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::Padding;
/// let x = Tensor::from_vec(vec![1.0f32, 3.0, 2.0, 5.0, 4.0], &[1, 5, 1])?;
/// let y = ops::avg_pool1d(&x, 2, 2, Padding::Same)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![2.0, 3.5, 4.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn avg_pool1d(input: &Tensor, ksize: usize, stride: usize, padding: Padding) -> Result<Tensor> {
    pool1d("AvgPool1D", input, ksize, stride, padding, false)
}

/// TensorFlow's raw `MaxPoolGrad`: the gradient of [`max_pool2d`] for `orig_input` and output
/// gradient `grad`, routed to the first maximum of each window.
pub fn max_pool_grad(orig_input: &Tensor, grad: &Tensor, attrs: PoolAttrs) -> Result<Tensor> {
    execute1(MaxPoolGrad { attrs }, &[orig_input.clone(), grad.clone()])
}

/// TensorFlow's raw `MaxPoolGradGrad`: `grad` (shaped like `orig_input`) picked at the first
/// maximum of each pooling window; the gradient of [`max_pool_grad`] with respect to its
/// `grad`.
pub fn max_pool_grad_grad(orig_input: &Tensor, grad: &Tensor, attrs: PoolAttrs) -> Result<Tensor> {
    execute1(
        MaxPoolGradGrad { attrs },
        &[orig_input.clone(), grad.clone()],
    )
}

/// TensorFlow's raw `AvgPoolGrad`: the gradient of [`avg_pool2d`] for an input of shape
/// `orig_input_shape` and output gradient `grad`.
pub fn avg_pool_grad(
    orig_input_shape: &[usize],
    grad: &Tensor,
    attrs: PoolAttrs,
) -> Result<Tensor> {
    if orig_input_shape.len() != 4 {
        return Err(Error::shape(
            "AvgPoolGrad",
            "orig_input_shape must have 4 entries",
            &[orig_input_shape, grad.shape()],
        ));
    }
    let s = orig_input_shape;
    execute1(
        AvgPoolGrad {
            attrs,
            orig_input_shape: [s[0], s[1], s[2], s[3]],
        },
        &[grad.clone()],
    )
}
