//! `tf.nn.softmax` and `tf.nn.log_softmax`: fused, numerically stable kernels over any axis.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{cast as cast_kernel, tensor_from};
use crate::kernels::softmax::softmax_mid;
use crate::layout::normalize_axis;
use crate::op::{execute1, GradCtx, Op, TensorSpec};
use crate::ops::{exp, mul, reduce_sum, sub};
use crate::tensor::Tensor;

/// Runs a float kernel on `x`'s contiguous data: f32 and f64 natively, f16/bf16 through f32.
/// The kernel returns the output elements; `shape` is the output shape.
pub(crate) fn float_kernel(
    op: &str,
    x: &Tensor,
    shape: &[usize],
    k32: impl Fn(&[f32]) -> Vec<f32>,
    k64: impl Fn(&[f64]) -> Vec<f64>,
) -> Result<Tensor> {
    Ok(match x.dtype() {
        DType::F32 => tensor_from(k32(&x.data::<f32>()?), shape),
        DType::F64 => tensor_from(k64(&x.data::<f64>()?), shape),
        DType::F16 | DType::BF16 => {
            let x32 = cast_kernel(x, DType::F32);
            cast_kernel(&tensor_from(k32(&x32.data::<f32>()?), shape), x.dtype())
        }
        d => return Err(Error::dtype(op, "expects a float tensor", &[d])),
    })
}

/// Checks that `spec` is a float tensor for `op`.
pub(crate) fn require_float(op: &str, spec: &TensorSpec) -> Result<()> {
    if spec.dtype.is_float() {
        Ok(())
    } else {
        Err(Error::dtype(op, "expects a float tensor", &[spec.dtype]))
    }
}

/// `(outer, r, inner)` of `shape` around `axis`.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let r = shape[axis];
    let inner = shape[axis + 1..].iter().product();
    (outer, r, inner)
}

/// The `Softmax` / `LogSoftmax` op along one axis.
#[derive(Clone, Debug)]
pub struct Softmax {
    /// The axis (negative counts from the end).
    pub axis: isize,
    /// `LogSoftmax` instead of `Softmax`.
    pub log: bool,
}

impl Op for Softmax {
    fn name(&self) -> &'static str {
        if self.log {
            "LogSoftmax"
        } else {
            "Softmax"
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        require_float(self.name(), x)?;
        normalize_axis(self.name(), self.axis, &x.shape_for_error())?;
        Ok(vec![x.clone()])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let axis = normalize_axis(self.name(), self.axis, x.shape())?;
        let (outer, r, inner) = split_at_axis(x.shape(), axis);
        let log = self.log;
        let y = float_kernel(
            self.name(),
            x,
            x.shape(),
            |d| softmax_mid(d, outer, r, inner, log),
            |d| softmax_mid(d, outer, r, inner, log),
        )?;
        Ok(vec![y])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (y, g) = (ctx.y(0), ctx.g(0));
        let d = if self.log {
            // d/dx log_softmax: g - exp(y)·Σ g
            sub(g, &mul(&exp(y)?, &reduce_sum(g, self.axis, true)?)?)?
        } else {
            // d/dx softmax: y·(g - Σ g·y)
            mul(y, &sub(g, &reduce_sum(&mul(g, y)?, self.axis, true)?)?)?
        };
        Ok(vec![Some(d)])
    }
}

/// `tf.nn.softmax(logits, axis)`: `exp(x) / Σ exp(x)` along `axis`, computed with the maximum
/// subtracted first so large logits do not overflow.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap();
/// let y = ops::softmax(&x, -1).unwrap().to_vec::<f64>().unwrap();
/// assert!((y[2] - 0.66524096).abs() < 1e-7);
/// ```
pub fn softmax(logits: &Tensor, axis: isize) -> Result<Tensor> {
    execute1(Softmax { axis, log: false }, &[logits.clone()])
}

/// `tf.nn.log_softmax(logits, axis)`: `x - log Σ exp(x)` along `axis`, computed stably.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let x = Tensor::from_vec(vec![0.0f64, 0.0], &[2]).unwrap();
/// let y = ops::log_softmax(&x, 0).unwrap().to_vec::<f64>().unwrap();
/// assert!((y[0] + std::f64::consts::LN_2).abs() < 1e-12);
/// ```
pub fn log_softmax(logits: &Tensor, axis: isize) -> Result<Tensor> {
    execute1(Softmax { axis, log: true }, &[logits.clone()])
}
