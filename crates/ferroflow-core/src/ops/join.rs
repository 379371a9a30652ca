//! Joining and splitting: `concat`, `stack`, `unstack`, `split` and `tile`.

use crate::error::{Error, Result};
use crate::kernels::copy::{concat_blocks, tensor_from_storage};
use crate::layout::{contiguous_strides, Layout};
use crate::op::{execute, execute1, Dim, GradCtx, Op, TensorSpec};
use crate::ops::array::{reshape, to_isize};
use crate::ops::reduce::reduce_sum;
use crate::ops::slice::slice;
use crate::storage::StorageElement;
use crate::tensor::Tensor;
use crate::with_storage;

/// Resolves `axis` against `rank` (`-rank..rank`), for specs whose dims may be unknown.
pub(crate) fn resolve_axis(op: &str, axis: isize, spec: &TensorSpec, rank: usize) -> Result<usize> {
    let a = if axis < 0 { axis + rank as isize } else { axis };
    if a < 0 || a >= rank as isize {
        return Err(Error::axis(op, axis, &spec.shape_for_error()));
    }
    Ok(a as usize)
}

/// Typed slice of `t` with the element type of the witness `_w` (dtypes were checked by the
/// op's shape rule; an empty slice otherwise).
pub(crate) fn typed<'a, T: StorageElement>(_w: &[T], t: &'a Tensor) -> &'a [T] {
    T::slice(t.storage()).unwrap_or(&[])
}

/// Concatenates contiguous copies of `xs` along `axis` into `out_shape` (any dtype).
fn concat_tensors(xs: &[Tensor], axis: usize, out_shape: &[usize]) -> Tensor {
    let cs: Vec<Tensor> = xs.iter().map(|x| x.contiguous()).collect();
    let outer: usize = out_shape[..axis].iter().product();
    let blocks: Vec<usize> = cs
        .iter()
        .map(|c| c.shape()[axis..].iter().product())
        .collect();
    let s = with_storage!(&**cs[0].storage(), first => {
        let srcs: Vec<&[_]> = cs.iter().map(|c| typed(first, c)).collect();
        StorageElement::into_storage(concat_blocks(&srcs, &blocks, outer))
    });
    tensor_from_storage(s, out_shape)
}

/// Checks that `inputs` share a dtype and agree on every dimension but `skip` (an axis of the
/// output, or none for stack); returns the merged dims (unknown where all are unknown).
fn merge_dims(op: &str, inputs: &[TensorSpec], skip: Option<usize>) -> Result<Vec<Dim>> {
    let first = &inputs[0];
    let mut dims = first.shape.clone();
    for x in &inputs[1..] {
        if x.dtype != first.dtype {
            return Err(Error::dtype(
                op,
                "all inputs must have the same dtype",
                &[first.dtype, x.dtype],
            ));
        }
        let mismatch = || {
            let shapes: Vec<Vec<usize>> = inputs.iter().map(|s| s.shape_for_error()).collect();
            let refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
            Error::shape(
                op,
                "all inputs must have the same shape except along the axis",
                &refs,
            )
        };
        if x.rank() != first.rank() {
            return Err(mismatch());
        }
        for (d, (m, &v)) in dims.iter_mut().zip(&x.shape).enumerate() {
            if Some(d) == skip {
                continue;
            }
            match (*m, v) {
                (Some(a), Some(b)) if a != b => return Err(mismatch()),
                (None, v) => *m = v,
                _ => {}
            }
        }
    }
    Ok(dims)
}

/// `tf.concat` (TensorFlow's `ConcatV2`).
#[derive(Debug, Clone)]
pub struct ConcatV2 {
    /// The axis (negative counts from the end).
    pub axis: isize,
}

impl Op for ConcatV2 {
    fn name(&self) -> &'static str {
        "ConcatV2"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let first = inputs
            .first()
            .ok_or_else(|| Error::invalid("ConcatV2", "needs at least one input"))?;
        if first.rank() == 0 {
            return Err(Error::shape(
                "ConcatV2",
                "cannot concatenate scalars",
                &[&[]],
            ));
        }
        let axis = resolve_axis("ConcatV2", self.axis, first, first.rank())?;
        let mut shape = merge_dims("ConcatV2", inputs, Some(axis))?;
        shape[axis] = inputs.iter().map(|s| s.shape[axis]).sum::<Option<usize>>();
        Ok(vec![TensorSpec {
            dtype: first.dtype,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let axis = resolve_axis(
            "ConcatV2",
            self.axis,
            &TensorSpec::of(&inputs[0]),
            inputs[0].rank(),
        )?;
        let mut shape = inputs[0].shape().to_vec();
        shape[axis] = inputs.iter().map(|x| x.shape()[axis]).sum();
        Ok(vec![concat_tensors(inputs, axis, &shape)])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let g = ctx.g(0);
        let axis = resolve_axis("ConcatV2", self.axis, &TensorSpec::of(g), g.rank())?;
        let mut begin = vec![0usize; g.rank()];
        let mut out = Vec::with_capacity(ctx.inputs.len());
        for x in ctx.inputs {
            let size = to_isize(x.shape());
            out.push(Some(slice(g, &begin, &size)?));
            begin[axis] += x.shape()[axis];
        }
        Ok(out)
    }
}

/// `tf.concat(values, axis)`: joins tensors along an existing axis. All inputs must have the
/// same dtype and the same shape except along `axis`.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = Tensor::from_vec(vec![5.0f32, 6.0], &[2, 1])?;
/// let c = ops::concat(&[&a, &b], -1)?;
/// assert_eq!(c.to_vec::<f32>()?, vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn concat(values: &[&Tensor], axis: isize) -> Result<Tensor> {
    let xs: Vec<Tensor> = values.iter().map(|&t| t.clone()).collect();
    execute1(ConcatV2 { axis }, &xs)
}

/// `tf.stack` (TensorFlow's `Pack`).
#[derive(Debug, Clone)]
pub struct Pack {
    /// The new axis (`-rank-1..=rank`).
    pub axis: isize,
}

fn pack_axis(op: &str, axis: isize, spec: &TensorSpec) -> Result<usize> {
    resolve_axis(op, axis, spec, spec.rank() + 1)
}

impl Op for Pack {
    fn name(&self) -> &'static str {
        "Pack"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let first = inputs
            .first()
            .ok_or_else(|| Error::invalid("Pack", "needs at least one input"))?;
        let axis = pack_axis("Pack", self.axis, first)?;
        let mut shape = merge_dims("Pack", inputs, None)?;
        shape.insert(axis, Some(inputs.len()));
        Ok(vec![TensorSpec {
            dtype: first.dtype,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let axis = pack_axis("Pack", self.axis, &TensorSpec::of(&inputs[0]))?;
        let xs: Vec<Tensor> = inputs
            .iter()
            .map(|x| x.view(x.layout().expand_dims(axis)))
            .collect();
        let mut shape = inputs[0].shape().to_vec();
        shape.insert(axis, inputs.len());
        Ok(vec![concat_tensors(&xs, axis, &shape)])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(unstack(ctx.g(0), self.axis)?
            .into_iter()
            .map(Some)
            .collect())
    }
}

/// `tf.stack(values, axis)`: joins same-shaped tensors along a new axis
/// (`axis` in `-rank-1..=rank`).
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let a = Tensor::from_vec(vec![1i32, 2], &[2])?;
/// let b = Tensor::from_vec(vec![3i32, 4], &[2])?;
/// let s = ops::stack(&[&a, &b], 1)?;
/// assert_eq!(s.shape(), &[2, 2]);
/// assert_eq!(s.to_vec::<i32>()?, vec![1, 3, 2, 4]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn stack(values: &[&Tensor], axis: isize) -> Result<Tensor> {
    let xs: Vec<Tensor> = values.iter().map(|&t| t.clone()).collect();
    execute1(Pack { axis }, &xs)
}

/// `tf.unstack` (TensorFlow's `Unpack`): one output per index along the axis.
#[derive(Debug, Clone)]
pub struct Unpack {
    /// The axis removed.
    pub axis: isize,
}

/// A view of index `i` along `axis` with that axis removed.
fn select_view(x: &Tensor, axis: usize, i: usize) -> Tensor {
    let l = x.layout();
    let mut shape = l.shape().to_vec();
    let mut strides = l.strides().to_vec();
    let offset = l.offset() + i * strides[axis];
    shape.remove(axis);
    strides.remove(axis);
    x.view(Layout::new(shape, strides, offset))
}

impl Op for Unpack {
    fn name(&self) -> &'static str {
        "Unpack"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        let axis = resolve_axis("Unpack", self.axis, x, x.rank())?;
        let n = x.shape[axis].ok_or_else(|| {
            Error::invalid(
                "Unpack",
                "the number of outputs (the size of the axis) must be known",
            )
        })?;
        let mut shape = x.shape.clone();
        shape.remove(axis);
        Ok(vec![
            TensorSpec {
                dtype: x.dtype,
                shape
            };
            n
        ])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let axis = resolve_axis("Unpack", self.axis, &TensorSpec::of(x), x.rank())?;
        Ok((0..x.shape()[axis])
            .map(|i| select_view(x, axis, i))
            .collect())
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let gs: Vec<&Tensor> = ctx.grads.iter().collect();
        if gs.is_empty() {
            return Ok(vec![Some(crate::ops::zeros_like(ctx.x(0))?)]);
        }
        Ok(vec![Some(stack(&gs, self.axis)?)])
    }
}

/// `tf.unstack(value, axis)`: the slices along `axis`, each with that axis removed.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// let cols = ops::unstack(&x, -1)?;
/// assert_eq!(cols.len(), 3);
/// assert_eq!(cols[1].to_vec::<f64>()?, vec![2.0, 5.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn unstack(value: &Tensor, axis: isize) -> Result<Vec<Tensor>> {
    execute(Unpack { axis }, &[value.clone()])
}

/// How [`split`] cuts an axis, as `num_or_size_splits` in `tf.split`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// `n` equal parts (the axis size must be divisible by `n`).
    Num(usize),
    /// Explicit part sizes; at most one may be `-1` (the rest of the axis).
    Sizes(Vec<isize>),
}

/// `tf.split` (TensorFlow's `SplitV`).
#[derive(Debug, Clone)]
pub struct SplitV {
    /// How to cut.
    pub split: Split,
    /// The axis.
    pub axis: isize,
}

impl SplitV {
    /// The part sizes for an axis of size `dim` (`None` where unknown).
    fn sizes(&self, dim: Dim, spec: &TensorSpec) -> Result<Vec<Dim>> {
        let err = |msg: String| Error::shape("SplitV", msg, &[&spec.shape_for_error()]);
        match &self.split {
            Split::Num(0) => Err(Error::invalid(
                "SplitV",
                "the number of splits must be positive",
            )),
            Split::Num(n) => match dim {
                Some(d) if d % n != 0 => Err(err(format!(
                    "axis of size {d} cannot be split into {n} equal parts"
                ))),
                Some(d) => Ok(vec![Some(d / n); *n]),
                None => Ok(vec![None; *n]),
            },
            Split::Sizes(sizes) => {
                let mut unknown = None;
                let mut known = 0usize;
                for (i, &s) in sizes.iter().enumerate() {
                    if s == -1 && unknown.is_none() {
                        unknown = Some(i);
                    } else if s < 0 {
                        return Err(Error::invalid(
                            "SplitV",
                            format!("invalid split sizes {sizes:?}: sizes must be >= 0 with at most one -1"),
                        ));
                    } else {
                        known += s as usize;
                    }
                }
                let mut out: Vec<Dim> = sizes
                    .iter()
                    .map(|&s| (s >= 0).then_some(s as usize))
                    .collect();
                if let Some(d) = dim {
                    match unknown {
                        Some(i) if known <= d => out[i] = Some(d - known),
                        None if known == d => {}
                        _ => {
                            return Err(err(format!(
                                "split sizes {sizes:?} do not add up to the axis size {d}"
                            )))
                        }
                    }
                }
                Ok(out)
            }
        }
    }
}

impl Op for SplitV {
    fn name(&self) -> &'static str {
        "SplitV"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        let axis = resolve_axis("SplitV", self.axis, x, x.rank())?;
        let sizes = self.sizes(x.shape[axis], x)?;
        Ok(sizes
            .into_iter()
            .map(|s| {
                let mut shape = x.shape.clone();
                shape[axis] = s;
                TensorSpec {
                    dtype: x.dtype,
                    shape,
                }
            })
            .collect())
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let spec = TensorSpec::of(x);
        let axis = resolve_axis("SplitV", self.axis, &spec, x.rank())?;
        let sizes = self.sizes(spec.shape[axis], &spec)?;
        let mut starts = vec![0usize; x.rank()];
        let steps = vec![1usize; x.rank()];
        let mut out = Vec::with_capacity(sizes.len());
        for s in sizes {
            let mut shape = x.shape().to_vec();
            shape[axis] = s.unwrap_or(0);
            out.push(x.view(x.layout().slice(&starts, &shape, &steps)));
            starts[axis] += shape[axis];
        }
        Ok(out)
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let gs: Vec<&Tensor> = ctx.grads.iter().collect();
        Ok(vec![Some(concat(&gs, self.axis)?)])
    }
}

/// `tf.split(value, num_or_size_splits, axis)`: cuts `value` along `axis` into parts.
///
/// ```
/// use ferroflow_core::{ops, ops::Split, Tensor};
/// let x = Tensor::from_vec((0..6).collect::<Vec<i64>>(), &[6])?;
/// let parts = ops::split(&x, Split::Sizes(vec![1, -1, 2]), 0)?;
/// assert_eq!(parts[1].to_vec::<i64>()?, vec![1, 2, 3]);
/// assert_eq!(ops::split(&x, Split::Num(3), 0)?[2].to_vec::<i64>()?, vec![4, 5]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn split(value: &Tensor, num_or_size_splits: Split, axis: isize) -> Result<Vec<Tensor>> {
    execute(
        SplitV {
            split: num_or_size_splits,
            axis,
        },
        &[value.clone()],
    )
}

/// `tf.tile` (TensorFlow's `Tile`).
#[derive(Debug, Clone)]
pub struct Tile {
    /// Repetitions per dimension.
    pub multiples: Vec<usize>,
}

impl Op for Tile {
    fn name(&self) -> &'static str {
        "Tile"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        if self.multiples.len() != x.rank() {
            return Err(Error::shape(
                "Tile",
                format!(
                    "multiples {:?} must have one entry per dimension",
                    self.multiples
                ),
                &[&x.shape_for_error()],
            ));
        }
        let mut shape = Vec::with_capacity(x.rank());
        for (d, &m) in x.shape.iter().zip(&self.multiples) {
            shape.push(match d {
                Some(d) => Some(d.checked_mul(m).ok_or_else(|| {
                    Error::invalid("Tile", format!("dimension {d} times {m} overflows"))
                })?),
                None => None,
            });
        }
        Ok(vec![TensorSpec {
            dtype: x.dtype,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        // View x as [1, d0, 1, d1, ...] broadcast to [m0, d0, m1, d1, ...], then copy.
        let x = inputs[0].contiguous();
        let xs = contiguous_strides(x.shape());
        let mut shape = Vec::with_capacity(2 * x.rank());
        let mut strides = Vec::with_capacity(2 * x.rank());
        for ((&d, &s), &m) in x.shape().iter().zip(&xs).zip(&self.multiples) {
            shape.extend([m, d]);
            strides.extend([0, s]);
        }
        let out_shape: Vec<usize> = x
            .shape()
            .iter()
            .zip(&self.multiples)
            .map(|(d, m)| d * m)
            .collect();
        let t = x.view(Layout::new(shape, strides, 0)).contiguous();
        Ok(vec![t.view(Layout::contiguous(&out_shape))])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.x(0);
        let mut shape = Vec::with_capacity(2 * x.rank());
        for (&d, &m) in x.shape().iter().zip(&self.multiples) {
            shape.extend([m as isize, d as isize]);
        }
        let g = reshape(ctx.g(0), &shape)?;
        let axes: Vec<isize> = (0..x.rank()).map(|i| 2 * i as isize).collect();
        let s = reduce_sum(&g, axes, false)?;
        Ok(vec![Some(reshape(&s, &to_isize(x.shape()))?)])
    }
}

/// `tf.tile(input, multiples)`: repeats the tensor `multiples[i]` times along dimension `i`.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let x = Tensor::from_vec(vec![1u8, 2], &[1, 2])?;
/// let t = ops::tile(&x, &[2, 2])?;
/// assert_eq!(t.to_vec::<u8>()?, vec![1, 2, 1, 2, 1, 2, 1, 2]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn tile(input: &Tensor, multiples: &[usize]) -> Result<Tensor> {
    execute1(
        Tile {
            multiples: multiples.to_vec(),
        },
        &[input.clone()],
    )
}
