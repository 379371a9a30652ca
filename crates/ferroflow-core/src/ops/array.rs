//! View-like shape ops: identity, stop_gradient, reshape, transpose, expand_dims, squeeze,
//! broadcast_to, and the broadcast-gradient helper `reduce_to_shape`.

use crate::error::{fmt_shape, Error, Result};
use crate::layout::{broadcast_shapes, normalize_axis, Layout};
use crate::op::{execute1, GradCtx, Op, TensorSpec};
use crate::ops::reduce::reduce_sum;
use crate::tensor::Tensor;

/// Returns its input unchanged (a new handle); the tape uses it for variable reads.
#[derive(Debug, Clone)]
pub struct Identity;

impl Op for Identity {
    fn name(&self) -> &'static str {
        "Identity"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        Ok(vec![inputs[0].clone()])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![inputs[0].with_new_id()])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(ctx.g(0).clone())])
    }
}

/// `tf.identity`: the same values, as a new tensor.
pub fn identity(x: &Tensor) -> Result<Tensor> {
    execute1(Identity, &[x.clone()])
}

/// Passes values through and blocks gradients.
#[derive(Debug, Clone)]
pub struct StopGradient;

impl Op for StopGradient {
    fn name(&self) -> &'static str {
        "StopGradient"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        Ok(vec![inputs[0].clone()])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![inputs[0].with_new_id()])
    }
    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![None])
    }
}

/// `tf.stop_gradient`: the same values; no gradient flows back through it.
pub fn stop_gradient(x: &Tensor) -> Result<Tensor> {
    execute1(StopGradient, &[x.clone()])
}

/// Resolves a target shape with at most one `-1` against `n` elements.
fn resolve_shape(op: &str, from: &[usize], shape: &[isize]) -> Result<Vec<usize>> {
    let n: usize = from.iter().product();
    let mut unknown = None;
    let mut known = 1usize;
    for (i, &d) in shape.iter().enumerate() {
        if d == -1 {
            if unknown.is_some() {
                return Err(Error::invalid(op, "only one dimension may be -1"));
            }
            unknown = Some(i);
        } else if d < 0 {
            return Err(Error::invalid(
                op,
                format!("invalid dimension {d} in {shape:?}"),
            ));
        } else {
            known *= d as usize;
        }
    }
    let mut out: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = unknown {
        if known == 0 || !n.is_multiple_of(known) {
            return Err(Error::shape(
                op,
                format!("cannot reshape {n} elements into {shape:?}"),
                &[from],
            ));
        }
        out[i] = n / known;
    } else if known != n {
        return Err(Error::shape(
            op,
            format!("cannot reshape {n} elements into {}", fmt_shape(&out)),
            &[from, &out],
        ));
    }
    Ok(out)
}

/// `tf.reshape` (`-1` infers one dimension).
#[derive(Debug, Clone)]
pub struct Reshape {
    /// Target shape, possibly with one `-1`.
    pub shape: Vec<isize>,
}

impl Op for Reshape {
    fn name(&self) -> &'static str {
        "Reshape"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        let shape = match x.known_shape() {
            Some(s) => resolve_shape("Reshape", &s, &self.shape)?
                .into_iter()
                .map(Some)
                .collect(),
            None => self
                .shape
                .iter()
                .map(|&d| (d >= 0).then_some(d as usize))
                .collect(),
        };
        Ok(vec![TensorSpec {
            dtype: x.dtype,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let shape = resolve_shape("Reshape", x.shape(), &self.shape)?;
        let x = if x.is_contiguous() {
            x.clone()
        } else {
            x.contiguous()
        };
        let layout = Layout::contiguous(&shape);
        let layout = Layout::new(
            layout.shape().to_vec(),
            layout.strides().to_vec(),
            x.layout().offset(),
        );
        Ok(vec![x.view(layout)])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(reshape(ctx.g(0), &to_isize(ctx.x(0).shape()))?)])
    }
}

pub(crate) fn to_isize(s: &[usize]) -> Vec<isize> {
    s.iter().map(|&d| d as isize).collect()
}

/// `tf.reshape(x, shape)`; one dimension may be `-1`.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let x = Tensor::from_vec((0..6).map(|v| v as f32).collect(), &[2, 3])?;
/// assert_eq!(ops::reshape(&x, &[-1, 2])?.shape(), &[3, 2]);
/// assert!(ops::reshape(&x, &[4, 2]).is_err());
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn reshape(x: &Tensor, shape: &[isize]) -> Result<Tensor> {
    execute1(
        Reshape {
            shape: shape.to_vec(),
        },
        &[x.clone()],
    )
}

/// `tf.transpose` with an explicit permutation (a view).
#[derive(Debug, Clone)]
pub struct Transpose {
    /// `perm[i]` is the input axis that becomes output axis `i`.
    pub perm: Vec<usize>,
}

fn check_perm(perm: &[usize], shape: &[usize]) -> Result<()> {
    let mut seen = vec![false; shape.len()];
    if perm.len() != shape.len() {
        return Err(Error::shape(
            "Transpose",
            format!(
                "perm {perm:?} has {} entries for a rank-{} tensor",
                perm.len(),
                shape.len()
            ),
            &[shape],
        ));
    }
    for &p in perm {
        if p >= shape.len() || seen[p] {
            return Err(Error::invalid(
                "Transpose",
                format!("{perm:?} is not a permutation of 0..{}", shape.len()),
            ));
        }
        seen[p] = true;
    }
    Ok(())
}

impl Op for Transpose {
    fn name(&self) -> &'static str {
        "Transpose"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        check_perm(&self.perm, &x.shape_for_error())?;
        Ok(vec![TensorSpec {
            dtype: x.dtype,
            shape: self.perm.iter().map(|&p| x.shape[p]).collect(),
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        Ok(vec![x.view(x.layout().permute(&self.perm))])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let mut inv = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            inv[p] = i;
        }
        Ok(vec![Some(transpose(ctx.g(0), &inv)?)])
    }
}

/// `tf.transpose(x, perm)`. An empty `perm` reverses the axes (TensorFlow's default).
pub fn transpose(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let perm = if perm.is_empty() {
        (0..x.rank()).rev().collect()
    } else {
        perm.to_vec()
    };
    execute1(Transpose { perm }, &[x.clone()])
}

/// Swaps the last two axes (matrix transpose of a batch).
pub fn matrix_transpose(x: &Tensor) -> Result<Tensor> {
    let r = x.rank();
    if r < 2 {
        return Err(Error::shape(
            "matrix_transpose",
            "needs rank >= 2",
            &[x.shape()],
        ));
    }
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 1, r - 2);
    transpose(x, &perm)
}

/// `tf.expand_dims(x, axis)`: inserts a size-1 axis (`axis` in `-rank-1..=rank`).
pub fn expand_dims(x: &Tensor, axis: isize) -> Result<Tensor> {
    let r = x.rank() as isize;
    let a = if axis < 0 { axis + r + 1 } else { axis };
    if a < 0 || a > r {
        return Err(Error::axis("ExpandDims", axis, x.shape()));
    }
    let mut shape = to_isize(x.shape());
    shape.insert(a as usize, 1);
    reshape(x, &shape)
}

/// `tf.squeeze(x, axis)`: removes size-1 axes (all of them when `axes` is empty).
pub fn squeeze(x: &Tensor, axes: &[isize]) -> Result<Tensor> {
    let mut drop = vec![false; x.rank()];
    if axes.is_empty() {
        for (i, &d) in x.shape().iter().enumerate() {
            drop[i] = d == 1;
        }
    } else {
        for &a in axes {
            let i = normalize_axis("Squeeze", a, x.shape())?;
            if x.shape()[i] != 1 {
                return Err(Error::shape(
                    "Squeeze",
                    format!(
                        "cannot squeeze axis {a}: its size is {}, not 1",
                        x.shape()[i]
                    ),
                    &[x.shape()],
                ));
            }
            drop[i] = true;
        }
    }
    let shape: Vec<isize> = x
        .shape()
        .iter()
        .zip(&drop)
        .filter(|(_, &d)| !d)
        .map(|(&s, _)| s as isize)
        .collect();
    reshape(x, &shape)
}

/// `tf.broadcast_to` (a view with zero strides).
#[derive(Debug, Clone)]
pub struct BroadcastTo {
    /// Target shape.
    pub shape: Vec<usize>,
}

impl Op for BroadcastTo {
    fn name(&self) -> &'static str {
        "BroadcastTo"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        let xs = x.shape_for_error();
        match broadcast_shapes(&xs, &self.shape) {
            Some(s) if s == self.shape => {}
            _ => {
                return Err(Error::shape(
                    "BroadcastTo",
                    "cannot broadcast the input to the target shape",
                    &[&xs, &self.shape],
                ))
            }
        }
        Ok(vec![TensorSpec::new(x.dtype, &self.shape)])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let l = x.layout().broadcast_to(&self.shape).ok_or_else(|| {
            Error::shape(
                "BroadcastTo",
                "incompatible shapes",
                &[x.shape(), &self.shape],
            )
        })?;
        Ok(vec![x.view(l)])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(reduce_to_shape(ctx.g(0), ctx.x(0).shape())?)])
    }
}

/// `tf.broadcast_to(x, shape)`.
pub fn broadcast_to(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if x.shape() == shape {
        return Ok(x.clone());
    }
    execute1(
        BroadcastTo {
            shape: shape.to_vec(),
        },
        &[x.clone()],
    )
}

/// Sums `g` (a gradient of a broadcast result) back down to `shape`, the shape of the input
/// that was broadcast.
pub fn reduce_to_shape(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let gs = g.shape();
    let extra = gs
        .len()
        .checked_sub(shape.len())
        .ok_or_else(|| Error::shape("reduce_to_shape", "target has higher rank", &[gs, shape]))?;
    let axes: Vec<isize> = (0..gs.len())
        .filter(|&i| i < extra || (shape[i - extra] == 1 && gs[i] != 1))
        .map(|i| i as isize)
        .collect();
    let s = reduce_sum(g, axes, false)?;
    reshape(&s, &to_isize(shape))
}
