//! Reductions over any set of axes, with `keepdims`: sum, mean, max, min, prod, any, all,
//! argmax/argmin, and the composites logsumexp, moments, reduce_variance/std; plus cumsum.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{cast as cast_kernel, tensor_from};
use crate::kernels::reduce::{arg_reduce_mid, cumsum_mid, reduce_mid};
use crate::layout::normalize_axis;
use crate::op::{execute1, GradCtx, Op, TensorSpec};
use crate::ops::array::{broadcast_to, reshape, stop_gradient, to_isize, transpose};
use crate::ops::{add, cast, div, equal, exp, log, mul, square, sub};
use crate::storage::StorageElement;
use crate::tensor::Tensor;

/// Which axes a reduction runs over: all of them (TensorFlow's `axis=None`), or a list
/// (negative axes count from the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Axes {
    /// Every axis: the result is a scalar (or all-ones shape with `keepdims`).
    All,
    /// These axes.
    These(Vec<isize>),
}

impl From<isize> for Axes {
    fn from(a: isize) -> Self {
        Axes::These(vec![a])
    }
}
impl From<i32> for Axes {
    fn from(a: i32) -> Self {
        Axes::These(vec![a as isize])
    }
}
impl From<Vec<isize>> for Axes {
    fn from(a: Vec<isize>) -> Self {
        Axes::These(a)
    }
}
impl From<&[isize]> for Axes {
    fn from(a: &[isize]) -> Self {
        Axes::These(a.to_vec())
    }
}
impl<const N: usize> From<[isize; N]> for Axes {
    fn from(a: [isize; N]) -> Self {
        Axes::These(a.to_vec())
    }
}
impl<const N: usize> From<[i32; N]> for Axes {
    fn from(a: [i32; N]) -> Self {
        Axes::These(a.iter().map(|&v| v as isize).collect())
    }
}

impl Axes {
    /// Sorted, de-duplicated, non-negative axes for a tensor of `shape`.
    pub fn resolve(&self, op: &str, shape: &[usize]) -> Result<Vec<usize>> {
        let mut v = match self {
            Axes::All => (0..shape.len()).collect(),
            Axes::These(a) => a
                .iter()
                .map(|&a| normalize_axis(op, a, shape))
                .collect::<Result<Vec<_>>>()?,
        };
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }
}

/// Which reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    /// Σ
    Sum,
    /// mean (integers: truncating, as TensorFlow)
    Mean,
    /// maximum
    Max,
    /// minimum
    Min,
    /// Π
    Prod,
    /// logical or (bool)
    Any,
    /// logical and (bool)
    All,
}

/// A reduction op.
#[derive(Clone, Debug)]
pub struct Reduce {
    /// Which reduction.
    pub kind: ReduceKind,
    /// Over which axes.
    pub axes: Axes,
    /// Keep reduced axes with size 1.
    pub keepdims: bool,
}

fn out_shape(shape: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, &d) in shape.iter().enumerate() {
        if axes.contains(&i) {
            if keepdims {
                out.push(1);
            }
        } else {
            out.push(d);
        }
    }
    out
}

/// Arranges `x` as a contiguous `[outer, r, inner]` buffer with the reduced axes in the middle.
/// Returns the data, (outer, r, inner).
fn as_mid<T: StorageElement>(x: &Tensor, axes: &[usize]) -> Result<(Vec<T>, usize, usize, usize)> {
    let shape = x.shape();
    let rank = shape.len();
    let consecutive = axes.windows(2).all(|w| w[1] == w[0] + 1);
    if axes.is_empty() {
        let n = x.num_elements();
        return Ok((x.to_vec::<T>()?, n, 1, 1));
    }
    if consecutive {
        let (a, b) = (axes[0], axes[axes.len() - 1] + 1);
        let outer: usize = shape[..a].iter().product();
        let r: usize = shape[a..b].iter().product();
        let inner: usize = shape[b..].iter().product();
        return Ok((x.to_vec::<T>()?, outer, r, inner));
    }
    // Move the reduced axes last.
    let mut perm: Vec<usize> = (0..rank).filter(|i| !axes.contains(i)).collect();
    perm.extend_from_slice(axes);
    let t = x.view(x.layout().permute(&perm));
    let outer: usize = perm[..rank - axes.len()]
        .iter()
        .map(|&p| shape[p])
        .product();
    let r: usize = axes.iter().map(|&p| shape[p]).product();
    Ok((t.to_vec::<T>()?, outer, r, 1))
}

fn reduce_float<T>(kind: ReduceKind, x: &Tensor, axes: &[usize]) -> Result<Vec<T>>
where
    T: StorageElement + crate::kernels::Float,
{
    let (d, outer, r, inner) = as_mid::<T>(x, axes)?;
    Ok(match kind {
        ReduceKind::Sum => reduce_mid(&d, outer, r, inner, T::zero(), |a, b| a + b),
        ReduceKind::Mean => {
            let s = reduce_mid(&d, outer, r, inner, T::zero(), |a, b| a + b);
            let n = T::from_usize(r).unwrap_or_else(T::one);
            s.into_iter().map(|v| v / n).collect()
        }
        ReduceKind::Max => reduce_mid(&d, outer, r, inner, T::neg_infinity(), |a, b| {
            if a >= b || a.is_nan() {
                a
            } else {
                b
            }
        }),
        ReduceKind::Min => reduce_mid(&d, outer, r, inner, T::infinity(), |a, b| {
            if a <= b || a.is_nan() {
                a
            } else {
                b
            }
        }),
        ReduceKind::Prod => reduce_mid(&d, outer, r, inner, T::one(), |a, b| a * b),
        ReduceKind::Any | ReduceKind::All => unreachable!("bool reductions"),
    })
}

fn reduce_int<T>(kind: ReduceKind, x: &Tensor, axes: &[usize]) -> Result<Vec<T>>
where
    T: StorageElement
        + num_traits::PrimInt
        + num_traits::WrappingAdd
        + num_traits::WrappingMul
        + Default,
{
    let (d, outer, r, inner) = as_mid::<T>(x, axes)?;
    Ok(match kind {
        ReduceKind::Sum => reduce_mid(&d, outer, r, inner, T::zero(), |a, b| a.wrapping_add(&b)),
        ReduceKind::Mean => {
            let s = reduce_mid(&d, outer, r, inner, T::zero(), |a, b| a.wrapping_add(&b));
            let n = T::from(r).unwrap_or_else(T::one);
            s.into_iter()
                .map(|v| if n.is_zero() { v } else { v / n })
                .collect()
        }
        ReduceKind::Max => reduce_mid(&d, outer, r, inner, T::min_value(), |a, b| a.max(b)),
        ReduceKind::Min => reduce_mid(&d, outer, r, inner, T::max_value(), |a, b| a.min(b)),
        ReduceKind::Prod => reduce_mid(&d, outer, r, inner, T::one(), |a, b| a.wrapping_mul(&b)),
        ReduceKind::Any | ReduceKind::All => unreachable!("bool reductions"),
    })
}

impl Op for Reduce {
    fn name(&self) -> &'static str {
        match self.kind {
            ReduceKind::Sum => "Sum",
            ReduceKind::Mean => "Mean",
            ReduceKind::Max => "Max",
            ReduceKind::Min => "Min",
            ReduceKind::Prod => "Prod",
            ReduceKind::Any => "Any",
            ReduceKind::All => "All",
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        let is_bool = matches!(self.kind, ReduceKind::Any | ReduceKind::All);
        if is_bool != (x.dtype == DType::Bool) {
            return Err(Error::dtype(
                self.name(),
                if is_bool {
                    "expects a bool tensor"
                } else {
                    "expects a numeric tensor"
                },
                &[x.dtype],
            ));
        }
        let axes = self.axes.resolve(self.name(), &x.shape_for_error())?;
        let mut shape = Vec::new();
        for (i, &d) in x.shape.iter().enumerate() {
            if axes.contains(&i) {
                if self.keepdims {
                    shape.push(Some(1));
                }
            } else {
                shape.push(d);
            }
        }
        Ok(vec![TensorSpec {
            dtype: x.dtype,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let axes = self.axes.resolve(self.name(), x.shape())?;
        let s = out_shape(x.shape(), &axes, self.keepdims);
        let out = match x.dtype() {
            DType::F32 => tensor_from(reduce_float::<f32>(self.kind, x, &axes)?, &s),
            DType::F64 => tensor_from(reduce_float::<f64>(self.kind, x, &axes)?, &s),
            DType::F16 | DType::BF16 => {
                let x32 = cast_kernel(x, DType::F32);
                cast_kernel(
                    &tensor_from(reduce_float::<f32>(self.kind, &x32, &axes)?, &s),
                    x.dtype(),
                )
            }
            DType::I32 => tensor_from(reduce_int::<i32>(self.kind, x, &axes)?, &s),
            DType::I64 => tensor_from(reduce_int::<i64>(self.kind, x, &axes)?, &s),
            DType::U8 => tensor_from(reduce_int::<u8>(self.kind, x, &axes)?, &s),
            DType::Bool => {
                let (d, outer, r, inner) = as_mid::<bool>(x, &axes)?;
                let v = if self.kind == ReduceKind::Any {
                    reduce_mid(&d, outer, r, inner, false, |a, b| a || b)
                } else {
                    reduce_mid(&d, outer, r, inner, true, |a, b| a && b)
                };
                tensor_from(v, &s)
            }
        };
        Ok(vec![out])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (x, y, g) = (ctx.x(0), ctx.y(0), ctx.g(0));
        let axes = self.axes.resolve(self.name(), x.shape())?;
        let kept = to_isize(&out_shape(x.shape(), &axes, true));
        let gb = broadcast_to(&reshape(g, &kept)?, x.shape())?;
        let count: usize = axes.iter().map(|&a| x.shape()[a]).product();
        let d = match self.kind {
            ReduceKind::Sum => gb,
            ReduceKind::Mean => div(&gb, &Tensor::scalar_of(x.dtype(), count.max(1) as f64))?,
            ReduceKind::Max | ReduceKind::Min => {
                // Split evenly among tied extremes, as TensorFlow.
                let yb = broadcast_to(&reshape(y, &kept)?, x.shape())?;
                let m = cast(&equal(x, &yb)?, x.dtype())?;
                let n = reduce_sum(&m, Axes::These(to_isize(&axes)), true)?;
                div(&mul(&gb, &m)?, &n)?
            }
            ReduceKind::Prod => {
                // ∂/∂x_i Π x = Π_{j≠i} x_j, computed without dividing by x (exact at zeros).
                let others = prod_of_others(x, &axes)?;
                mul(&gb, &others)?
            }
            ReduceKind::Any | ReduceKind::All => return Ok(vec![None]),
        };
        Ok(vec![Some(d)])
    }
}

/// For each element, the product of the other elements of its reduction group.
fn prod_of_others(x: &Tensor, axes: &[usize]) -> Result<Tensor> {
    // Move reduced axes last and flatten them: [outer..., r]; then exclusive cumprods from both
    // ends multiply to the product of the others.
    let rank = x.rank();
    let mut perm: Vec<usize> = (0..rank).filter(|i| !axes.contains(i)).collect();
    perm.extend_from_slice(axes);
    let xt = transpose(x, &perm)?;
    let kept: Vec<isize> = perm[..rank - axes.len()]
        .iter()
        .map(|&p| x.shape()[p] as isize)
        .collect();
    let mut flat = kept.clone();
    flat.push(-1);
    let xf = reshape(&xt, &flat)?;
    let last = (flat.len() - 1) as isize;
    let left = cumprod(&xf, last, true, false)?;
    let right = cumprod(&xf, last, true, true)?;
    let p = mul(&left, &right)?;
    let permuted: Vec<isize> = perm.iter().map(|&i| x.shape()[i] as isize).collect();
    let p = reshape(&p, &permuted)?;
    let mut inv = vec![0; rank];
    for (i, &q) in perm.iter().enumerate() {
        inv[q] = i;
    }
    transpose(&p, &inv)
}

fn reduce(kind: ReduceKind, x: &Tensor, axes: Axes, keepdims: bool) -> Result<Tensor> {
    execute1(
        Reduce {
            kind,
            axes,
            keepdims,
        },
        &[x.clone()],
    )
}

/// `tf.reduce_sum(x, axis, keepdims)`.
///
/// ```
/// use ferroflow_core::{ops, ops::Axes, Tensor};
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// assert_eq!(ops::reduce_sum(&x, 1, false)?.to_vec::<f32>()?, vec![6.0, 15.0]);
/// assert_eq!(ops::reduce_sum(&x, Axes::All, false)?.item::<f32>()?, 21.0);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn reduce_sum(x: &Tensor, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
    reduce(ReduceKind::Sum, x, axes.into(), keepdims)
}
/// `tf.reduce_mean` (integer inputs: truncating mean, as TensorFlow).
pub fn reduce_mean(x: &Tensor, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
    reduce(ReduceKind::Mean, x, axes.into(), keepdims)
}
/// `tf.reduce_max` (gradient split among ties).
pub fn reduce_max(x: &Tensor, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
    reduce(ReduceKind::Max, x, axes.into(), keepdims)
}
/// `tf.reduce_min`.
pub fn reduce_min(x: &Tensor, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
    reduce(ReduceKind::Min, x, axes.into(), keepdims)
}
/// `tf.reduce_prod`.
pub fn reduce_prod(x: &Tensor, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
    reduce(ReduceKind::Prod, x, axes.into(), keepdims)
}
/// `tf.reduce_any` on bool tensors.
pub fn reduce_any(x: &Tensor, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
    reduce(ReduceKind::Any, x, axes.into(), keepdims)
}
/// `tf.reduce_all` on bool tensors.
pub fn reduce_all(x: &Tensor, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
    reduce(ReduceKind::All, x, axes.into(), keepdims)
}

/// `tf.reduce_logsumexp`: `log Σ exp(x)`, computed stably (max subtracted first).
pub fn reduce_logsumexp(x: &Tensor, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
    let axes = axes.into();
    let m = stop_gradient(&reduce_max(x, axes.clone(), true)?)?;
    // Guard infinite maxima (all -inf rows) as TensorFlow does.
    let finite = crate::ops::where_(
        &crate::ops::is_finite(&m)?,
        &m,
        &crate::ops::zeros_like(&m)?,
    )?;
    let s = reduce_sum(&exp(&sub(x, &finite)?)?, axes.clone(), true)?;
    let r = add(&log(&s)?, &finite)?;
    if keepdims {
        Ok(r)
    } else {
        let resolved = axes.resolve("ReduceLogSumExp", x.shape())?;
        let shape = to_isize(&out_shape(x.shape(), &resolved, false));
        reshape(&r, &shape)
    }
}

/// `tf.nn.moments(x, axes, keepdims)`: (mean, biased variance).
pub fn moments(x: &Tensor, axes: impl Into<Axes>, keepdims: bool) -> Result<(Tensor, Tensor)> {
    let axes = axes.into();
    let mean = reduce_mean(x, axes.clone(), true)?;
    let var = reduce_mean(
        &square(&sub(x, &stop_gradient(&mean)?)?)?,
        axes.clone(),
        keepdims,
    )?;
    // TensorFlow stops the gradient of the mean inside the variance (they cancel exactly).
    let mean = if keepdims {
        mean
    } else {
        let resolved = axes.resolve("Moments", x.shape())?;
        reshape(&mean, &to_isize(&out_shape(x.shape(), &resolved, false)))?
    };
    Ok((mean, var))
}

/// `tf.math.reduce_variance` (biased).
pub fn reduce_variance(x: &Tensor, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
    let axes = axes.into();
    let mean = reduce_mean(x, axes.clone(), true)?;
    reduce_mean(&square(&sub(x, &mean)?)?, axes, keepdims)
}

/// `tf.math.reduce_std` (biased).
pub fn reduce_std(x: &Tensor, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
    crate::ops::sqrt(&reduce_variance(x, axes, keepdims)?)
}

/// `tf.argmax` / `tf.argmin`: int64 index of the first extreme along an axis.
#[derive(Clone, Debug)]
pub struct ArgReduce {
    /// The axis.
    pub axis: isize,
    /// `true` for argmax.
    pub max: bool,
}

fn arg_for<T: StorageElement>(max: bool, x: &Tensor, axis: usize) -> Result<Vec<i64>> {
    let (d, outer, r, inner) = as_mid::<T>(x, &[axis])?;
    Ok(if max {
        arg_reduce_mid(&d, outer, r, inner, |a: T, b: T| a > b)
    } else {
        arg_reduce_mid(&d, outer, r, inner, |a: T, b: T| a < b)
    })
}

impl Op for ArgReduce {
    fn name(&self) -> &'static str {
        if self.max {
            "ArgMax"
        } else {
            "ArgMin"
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        if x.dtype == DType::Bool {
            return Err(Error::dtype(
                self.name(),
                "expects a numeric tensor",
                &[x.dtype],
            ));
        }
        let a = normalize_axis(self.name(), self.axis, &x.shape_for_error())?;
        let mut shape = x.shape.clone();
        shape.remove(a);
        Ok(vec![TensorSpec {
            dtype: DType::I64,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let a = normalize_axis(self.name(), self.axis, x.shape())?;
        if x.shape()[a] == 0 {
            return Err(Error::shape(
                self.name(),
                "cannot reduce an empty axis",
                &[x.shape()],
            ));
        }
        let v = match x.dtype() {
            DType::F32 => arg_for::<f32>(self.max, x, a)?,
            DType::F64 => arg_for::<f64>(self.max, x, a)?,
            DType::I32 => arg_for::<i32>(self.max, x, a)?,
            DType::I64 => arg_for::<i64>(self.max, x, a)?,
            DType::U8 => arg_for::<u8>(self.max, x, a)?,
            DType::F16 | DType::BF16 => arg_for::<f32>(self.max, &cast_kernel(x, DType::F32), a)?,
            DType::Bool => unreachable!("rejected by infer"),
        };
        let mut shape = x.shape().to_vec();
        shape.remove(a);
        Ok(vec![tensor_from(v, &shape)])
    }
    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![None])
    }
}

/// `tf.argmax(x, axis)` → int64.
pub fn argmax(x: &Tensor, axis: isize) -> Result<Tensor> {
    execute1(ArgReduce { axis, max: true }, &[x.clone()])
}

/// `tf.argmin(x, axis)` → int64.
pub fn argmin(x: &Tensor, axis: isize) -> Result<Tensor> {
    execute1(ArgReduce { axis, max: false }, &[x.clone()])
}

/// `tf.math.cumsum` / `tf.math.cumprod` along an axis (`exclusive`, `reverse` as TensorFlow).
#[derive(Clone, Debug)]
pub struct Cumulative {
    /// The axis.
    pub axis: isize,
    /// Exclude the current element.
    pub exclusive: bool,
    /// Accumulate from the end.
    pub reverse: bool,
    /// Product instead of sum.
    pub product: bool,
}

fn cum_for<T>(c: &Cumulative, x: &Tensor, axis: usize) -> Result<Vec<T>>
where
    T: StorageElement + crate::kernels::Float,
{
    let (d, outer, r, inner) = as_mid::<T>(x, &[axis])?;
    if !c.product {
        return Ok(cumsum_mid(&d, outer, r, inner, c.exclusive, c.reverse));
    }
    let mut out = vec![T::one(); d.len()];
    for o in 0..outer {
        for j in 0..inner {
            let mut acc = T::one();
            for step in 0..r {
                let i = if c.reverse { r - 1 - step } else { step };
                let k = o * r * inner + i * inner + j;
                if c.exclusive {
                    out[k] = acc;
                    acc *= d[k];
                } else {
                    acc *= d[k];
                    out[k] = acc;
                }
            }
        }
    }
    Ok(out)
}

impl Op for Cumulative {
    fn name(&self) -> &'static str {
        if self.product {
            "Cumprod"
        } else {
            "Cumsum"
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        if !x.dtype.is_float() {
            return Err(Error::dtype(
                self.name(),
                "expects a float tensor",
                &[x.dtype],
            ));
        }
        normalize_axis(self.name(), self.axis, &x.shape_for_error())?;
        Ok(vec![x.clone()])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let a = normalize_axis(self.name(), self.axis, x.shape())?;
        let out = match x.dtype() {
            DType::F64 => tensor_from(cum_for::<f64>(self, x, a)?, x.shape()),
            DType::F32 => tensor_from(cum_for::<f32>(self, x, a)?, x.shape()),
            d => {
                let x32 = cast_kernel(x, DType::F32);
                cast_kernel(&tensor_from(cum_for::<f32>(self, &x32, a)?, x.shape()), d)
            }
        };
        Ok(vec![out])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (x, g) = (ctx.x(0), ctx.g(0));
        if self.product {
            // Not needed by any other op's gradient yet; TensorFlow's rule divides by x.
            let y = ctx.y(0);
            let s = cumsum(&mul(g, y)?, self.axis, self.exclusive, !self.reverse)?;
            return Ok(vec![Some(div(&s, x)?)]);
        }
        Ok(vec![Some(cumsum(
            g,
            self.axis,
            self.exclusive,
            !self.reverse,
        )?)])
    }
}

/// `tf.math.cumsum(x, axis, exclusive, reverse)`.
pub fn cumsum(x: &Tensor, axis: isize, exclusive: bool, reverse: bool) -> Result<Tensor> {
    execute1(
        Cumulative {
            axis,
            exclusive,
            reverse,
            product: false,
        },
        &[x.clone()],
    )
}

/// `tf.math.cumprod(x, axis, exclusive, reverse)`.
pub fn cumprod(x: &Tensor, axis: isize, exclusive: bool, reverse: bool) -> Result<Tensor> {
    execute1(
        Cumulative {
            axis,
            exclusive,
            reverse,
            product: true,
        },
        &[x.clone()],
    )
}
