//! `tf.nn` losses: softmax cross-entropy (dense and sparse, fused kernels that also return the
//! backprop, as TensorFlow's ops do), sigmoid cross-entropy and `l2_loss`.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{cast as cast_kernel, tensor_from};
use crate::kernels::nn::l2_loss as l2_kernel;
use crate::kernels::softmax::{softmax_xent_rows, sparse_softmax_xent_rows};
use crate::layout::normalize_axis;
use crate::op::{execute, execute1, Dim, GradCtx, Op, TensorSpec};
use crate::ops::softmax::{float_kernel, require_float};
use crate::ops::{
    add, expand_dims, greater_equal, log1p, log_softmax, mul, neg, reduce_sum, softmax, sub,
    transpose, where_, zeros_like,
};
use crate::tensor::Tensor;

/// Whether two partially known shapes can be equal.
fn compatible(a: &[Dim], b: &[Dim]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.is_none() || y.is_none() || x == y)
}

/// True when some element of `t` is non-zero (used to skip second-order terms whose upstream
/// gradient is all zeros, as TensorFlow's `_IsZero` does).
fn any_nonzero(t: &Tensor) -> bool {
    // A graph tensor's values are unknown while the gradient graph is built: assume nonzero.
    t.is_symbolic() || t.to_f64_vec().iter().any(|&v| v != 0.0)
}

/// `s·sm·(g1 - Σ g1·sm)` and `Σ g1·sm - g1`: the gradient flowing into the logits and the labels
/// from the `backprop` output `sm·s - labels` (s = Σ labels, or 1 for the sparse op).
fn backprop_output_grads(
    logits: &Tensor,
    g1: &Tensor,
    label_sum: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let sm = softmax(logits, -1)?;
    let dot = reduce_sum(&mul(g1, &sm)?, -1, true)?;
    let mut d_logits = mul(&sm, &sub(g1, &dot)?)?;
    if let Some(s) = label_sum {
        d_logits = mul(&d_logits, s)?;
    }
    Ok((d_logits, sub(&dot, g1)?))
}

/// TensorFlow's `SoftmaxCrossEntropyWithLogits` (inputs: logits, then labels, as TensorFlow's
/// `features, labels`) over the last axis: outputs the per-example
/// loss and the backprop (`softmax·Σlabels - labels`, the exact gradient of the loss; equal to
/// TensorFlow's `softmax - labels` when each label row sums to 1).
#[derive(Clone, Debug)]
pub struct SoftmaxCrossEntropyWithLogits;

impl Op for SoftmaxCrossEntropyWithLogits {
    fn name(&self) -> &'static str {
        "SoftmaxCrossEntropyWithLogits"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let (logits, labels) = (&inputs[0], &inputs[1]);
        require_float(self.name(), logits)?;
        if labels.dtype != logits.dtype {
            return Err(Error::dtype(
                self.name(),
                "labels and logits must have the same float dtype",
                &[labels.dtype, logits.dtype],
            ));
        }
        if logits.rank() == 0 || !compatible(&labels.shape, &logits.shape) {
            return Err(Error::shape(
                self.name(),
                "labels and logits must have the same shape, of rank >= 1",
                &[&labels.shape_for_error(), &logits.shape_for_error()],
            ));
        }
        // Dimensions known on either side are known in the outputs.
        let merged = TensorSpec {
            dtype: logits.dtype,
            shape: logits
                .shape
                .iter()
                .zip(&labels.shape)
                .map(|(a, b)| a.or(*b))
                .collect(),
        };
        let mut loss = merged.clone();
        loss.shape.pop();
        Ok(vec![loss, merged])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (logits, labels) = (&inputs[0], &inputs[1]);
        let shape = logits.shape();
        let n = shape.last().copied().unwrap_or(1);
        let loss_shape = &shape[..shape.len() - 1];
        fn run<T>(
            z: &Tensor,
            x: &Tensor,
            n: usize,
            ls: &[usize],
            s: &[usize],
        ) -> Result<Vec<Tensor>>
        where
            T: crate::kernels::Float + crate::storage::StorageElement,
        {
            let (l, b) =
                softmax_xent_rows(&z.data::<T>()?, &x.data::<T>()?, ls.iter().product(), n);
            Ok(vec![tensor_from(l, ls), tensor_from(b, s)])
        }
        match logits.dtype() {
            DType::F32 => run::<f32>(labels, logits, n, loss_shape, shape),
            DType::F64 => run::<f64>(labels, logits, n, loss_shape, shape),
            d => {
                let (z, x) = (
                    cast_kernel(labels, DType::F32),
                    cast_kernel(logits, DType::F32),
                );
                let out = run::<f32>(&z, &x, n, loss_shape, shape)?;
                Ok(out.iter().map(|t| cast_kernel(t, d)).collect())
            }
        }
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (logits, labels) = (ctx.x(0), ctx.x(1));
        let g0 = expand_dims(ctx.g(0), -1)?;
        let mut d_logits = mul(&g0, ctx.y(1))?;
        let mut d_labels = neg(&mul(&g0, &log_softmax(logits, -1)?)?)?;
        if any_nonzero(ctx.g(1)) {
            let s = reduce_sum(labels, -1, true)?;
            let (dl, dz) = backprop_output_grads(logits, ctx.g(1), Some(&s))?;
            d_logits = add(&d_logits, &dl)?;
            d_labels = add(&d_labels, &dz)?;
        }
        Ok(vec![Some(d_logits), Some(d_labels)])
    }
}

/// Moves `axis` of `t` to the end (a no-op when it is already last).
fn axis_to_last(t: &Tensor, axis: usize) -> Result<Tensor> {
    let rank = t.rank();
    if axis + 1 == rank {
        return Ok(t.clone());
    }
    let perm: Vec<usize> = (0..rank).filter(|&i| i != axis).chain([axis]).collect();
    transpose(t, &perm)
}

/// `tf.nn.softmax_cross_entropy_with_logits` (v2): the per-example loss
/// `-Σ labels·log_softmax(logits)` along `axis` (the result drops that axis). `labels` and
/// `logits` must have the same shape and float dtype (no broadcasting). Both inputs receive a
/// gradient, as in v2: `-log_softmax(logits)` for the labels.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let labels = Tensor::from_vec(vec![0.0f64, 1.0], &[1, 2]).unwrap();
/// let logits = Tensor::from_vec(vec![0.0f64, 0.0], &[1, 2]).unwrap();
/// let loss = ops::softmax_cross_entropy_with_logits(&labels, &logits, -1).unwrap();
/// assert!((loss.to_vec::<f64>().unwrap()[0] - std::f64::consts::LN_2).abs() < 1e-12);
/// ```
pub fn softmax_cross_entropy_with_logits(
    labels: &Tensor,
    logits: &Tensor,
    axis: isize,
) -> Result<Tensor> {
    let op = "SoftmaxCrossEntropyWithLogits";
    if labels.shape() != logits.shape() {
        return Err(Error::shape(
            op,
            "labels and logits must have the same shape",
            &[labels.shape(), logits.shape()],
        ));
    }
    let a = normalize_axis(op, axis, logits.shape())?;
    let (z, x) = (axis_to_last(labels, a)?, axis_to_last(logits, a)?);
    let mut out = execute(SoftmaxCrossEntropyWithLogits, &[x, z])?;
    Ok(out.swap_remove(0))
}

/// TensorFlow's `SparseSoftmaxCrossEntropyWithLogits` (inputs: logits, then int32/int64
/// labels): outputs the per-example loss and the backprop `softmax - one_hot(labels)`. A label
/// outside `[0, classes)` is an error, as on TensorFlow's CPU kernel.
#[derive(Clone, Debug)]
pub struct SparseSoftmaxCrossEntropyWithLogits;

impl Op for SparseSoftmaxCrossEntropyWithLogits {
    fn name(&self) -> &'static str {
        "SparseSoftmaxCrossEntropyWithLogits"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let (logits, labels) = (&inputs[0], &inputs[1]);
        require_float(self.name(), logits)?;
        if !matches!(labels.dtype, DType::I32 | DType::I64) {
            return Err(Error::dtype(
                self.name(),
                "labels must be int32 or int64",
                &[labels.dtype],
            ));
        }
        let batch = &logits.shape[..logits.rank().saturating_sub(1)];
        if logits.rank() == 0 || !compatible(&labels.shape, batch) {
            return Err(Error::shape(
                self.name(),
                "labels must have the shape of logits without its last axis",
                &[&labels.shape_for_error(), &logits.shape_for_error()],
            ));
        }
        // Batch dimensions known on either side are known in the outputs.
        let loss = TensorSpec {
            dtype: logits.dtype,
            shape: batch
                .iter()
                .zip(&labels.shape)
                .map(|(a, b)| a.or(*b))
                .collect(),
        };
        let mut bp = loss.clone();
        bp.shape.push(logits.shape[logits.rank() - 1]);
        Ok(vec![loss, bp])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (logits, labels) = (&inputs[0], &inputs[1]);
        let shape = logits.shape();
        let n = shape.last().copied().unwrap_or(1);
        let loss_shape = &shape[..shape.len() - 1];
        let idx: Vec<usize> = labels
            .to_f64_vec()
            .into_iter()
            .map(|v| {
                if v >= 0.0 && v < n as f64 {
                    Ok(v as usize)
                } else {
                    Err(Error::invalid(
                        self.name(),
                        format!("received a label value of {v} which is outside the valid range of [0, {n})"),
                    ))
                }
            })
            .collect::<Result<_>>()?;
        fn run<T>(
            idx: &[usize],
            x: &Tensor,
            n: usize,
            ls: &[usize],
            s: &[usize],
        ) -> Result<Vec<Tensor>>
        where
            T: crate::kernels::Float + crate::storage::StorageElement,
        {
            let (l, b) = sparse_softmax_xent_rows(idx, &x.data::<T>()?, n);
            Ok(vec![tensor_from(l, ls), tensor_from(b, s)])
        }
        match logits.dtype() {
            DType::F32 => run::<f32>(&idx, logits, n, loss_shape, shape),
            DType::F64 => run::<f64>(&idx, logits, n, loss_shape, shape),
            d => {
                let x = cast_kernel(logits, DType::F32);
                let out = run::<f32>(&idx, &x, n, loss_shape, shape)?;
                Ok(out.iter().map(|t| cast_kernel(t, d)).collect())
            }
        }
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let g0 = expand_dims(ctx.g(0), -1)?;
        let mut d_logits = mul(&g0, ctx.y(1))?;
        if any_nonzero(ctx.g(1)) {
            let (dl, _) = backprop_output_grads(ctx.x(0), ctx.g(1), None)?;
            d_logits = add(&d_logits, &dl)?;
        }
        Ok(vec![Some(d_logits), None])
    }
}

/// `tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)`: the per-example loss
/// `-log_softmax(logits)[label]` over the last axis, with int32/int64 class indices whose shape
/// is `logits`' without the last axis. Out-of-range labels are an error (TensorFlow's CPU
/// behaviour). Only the logits receive a gradient (`softmax - one_hot`).
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let labels = Tensor::from_vec(vec![1i64], &[1]).unwrap();
/// let logits = Tensor::from_vec(vec![0.0f64, 0.0], &[1, 2]).unwrap();
/// let loss = ops::sparse_softmax_cross_entropy_with_logits(&labels, &logits).unwrap();
/// assert!((loss.to_vec::<f64>().unwrap()[0] - std::f64::consts::LN_2).abs() < 1e-12);
/// ```
pub fn sparse_softmax_cross_entropy_with_logits(
    labels: &Tensor,
    logits: &Tensor,
) -> Result<Tensor> {
    let mut out = execute(
        SparseSoftmaxCrossEntropyWithLogits,
        &[logits.clone(), labels.clone()],
    )?;
    Ok(out.swap_remove(0))
}

/// `tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)`: elementwise
/// `max(x, 0) - x·z + log(1 + exp(-|x|))`, TensorFlow's overflow-free formula, written with ops
/// exactly as TensorFlow does (so both inputs get gradients, and `x = 0` gets the derivative
/// `0.5 - z`). `labels` and `logits` must have the same shape and float dtype.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let z = Tensor::from_vec(vec![1.0f64], &[1]).unwrap();
/// let x = Tensor::from_vec(vec![0.0f64], &[1]).unwrap();
/// let l = ops::sigmoid_cross_entropy_with_logits(&z, &x).unwrap();
/// assert!((l.to_vec::<f64>().unwrap()[0] - std::f64::consts::LN_2).abs() < 1e-12);
/// ```
pub fn sigmoid_cross_entropy_with_logits(labels: &Tensor, logits: &Tensor) -> Result<Tensor> {
    let op = "SigmoidCrossEntropyWithLogits";
    if !logits.dtype().is_float() || labels.dtype() != logits.dtype() {
        return Err(Error::dtype(
            op,
            "labels and logits must have the same float dtype",
            &[labels.dtype(), logits.dtype()],
        ));
    }
    if labels.shape() != logits.shape() {
        return Err(Error::shape(
            op,
            "labels and logits must have the same shape",
            &[labels.shape(), logits.shape()],
        ));
    }
    let zeros = zeros_like(logits)?;
    let cond = greater_equal(logits, &zeros)?;
    let relu_logits = where_(&cond, logits, &zeros)?;
    let neg_abs_logits = where_(&cond, &neg(logits)?, logits)?;
    add(
        &sub(&relu_logits, &mul(logits, labels)?)?,
        &log1p(&crate::ops::exp(&neg_abs_logits)?)?,
    )
}

/// The `L2Loss` op: `Σ x² / 2` as a scalar.
#[derive(Clone, Debug)]
pub struct L2Loss;

impl Op for L2Loss {
    fn name(&self) -> &'static str {
        "L2Loss"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        require_float(self.name(), &inputs[0])?;
        Ok(vec![TensorSpec::new(inputs[0].dtype, &[])])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let y = float_kernel(
            self.name(),
            &inputs[0],
            &[],
            |d| vec![l2_kernel(d)],
            |d| vec![l2_kernel(d)],
        )?;
        Ok(vec![y])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(mul(ctx.x(0), ctx.g(0))?)])
    }
}

/// `tf.nn.l2_loss(t)`: `sum(t²) / 2`, a scalar (fixed-order blocked sum, so thread-count
/// independent).
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
/// assert_eq!(ops::l2_loss(&t).unwrap().item::<f32>().unwrap(), 7.0);
/// ```
pub fn l2_loss(t: &Tensor) -> Result<Tensor> {
    execute1(L2Loss, &[t.clone()])
}
