//! Index-driven ops: `gather`, `gather_nd`, `tensor_scatter_nd_add`, `unsorted_segment_sum`
//! and `one_hot`.

use crate::dtype::DType;
use crate::error::{fmt_shape, Error, Result};
use crate::kernels::copy::{gather_rows, scatter_add_rows, tensor_from_storage};
use crate::op::{execute1, Dim, GradCtx, Op, TensorSpec};
use crate::ops::array::transpose;
use crate::ops::binary::mul;
use crate::ops::create::zeros;
use crate::ops::join::{resolve_axis, typed};
use crate::storage::{Storage, StorageElement};
use crate::tensor::Tensor;
use crate::with_storage;

/// Checks that `t` is an int32/int64 index tensor.
fn check_index_dtype(op: &str, t: &TensorSpec) -> Result<()> {
    match t.dtype {
        DType::I32 | DType::I64 => Ok(()),
        d => Err(Error::dtype(op, "indices must be int32 or int64", &[d])),
    }
}

/// The values of an int32/int64 index tensor.
fn index_values(op: &str, t: &Tensor) -> Result<Vec<i64>> {
    match t.dtype() {
        DType::I32 => Ok(t.data::<i32>()?.iter().map(|&v| v as i64).collect()),
        DType::I64 => Ok(t.to_vec::<i64>()?),
        d => Err(Error::dtype(op, "indices must be int32 or int64", &[d])),
    }
}

/// Formats the multi-index of flat position `flat` in `shape`, like TensorFlow: `1,0`.
fn fmt_pos(flat: usize, shape: &[usize]) -> String {
    let mut rem = flat;
    let mut parts = vec![0; shape.len()];
    for (p, &d) in parts.iter_mut().zip(shape).rev() {
        if d > 0 {
            *p = rem % d;
            rem /= d;
        }
    }
    parts
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Gathers rows of `src` (any dtype) into a new contiguous tensor of `shape`.
fn gather_rows_tensor(
    src: &Tensor,
    row_len: usize,
    rows: &[Option<usize>],
    shape: &[usize],
) -> Tensor {
    let src = src.contiguous();
    let s = with_storage!(&**src.storage(), v => StorageElement::into_storage(gather_rows(v, row_len, rows)));
    tensor_from_storage(s, shape)
}

/// Adds `src` row by row into a copy of `base` (same dtype), or into zeros of `shape` when
/// `base` is `None`.
fn scatter_rows_tensor(
    base: Option<&Tensor>,
    shape: &[usize],
    dtype: DType,
    row_len: usize,
    rows: &[Option<usize>],
    src: &Tensor,
) -> Tensor {
    let src = src.contiguous();
    let mut dst = match base {
        Some(b) => (**b.contiguous().storage()).clone(),
        None => Storage::zeros(dtype, shape.iter().product()),
    };
    with_storage!(&mut dst, d => {
        let s = typed(d.as_slice(), &src);
        scatter_add_rows(d, row_len, rows, s);
    });
    tensor_from_storage(dst, shape)
}

/// `tf.gather` (TensorFlow's `GatherV2`, `batch_dims = 0`).
#[derive(Debug, Clone)]
pub struct GatherV2 {
    /// The axis of `params` to gather along.
    pub axis: isize,
}

impl Op for GatherV2 {
    fn name(&self) -> &'static str {
        "GatherV2"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let (p, i) = (&inputs[0], &inputs[1]);
        check_index_dtype("GatherV2", i)?;
        let axis = resolve_axis("GatherV2", self.axis, p, p.rank())?;
        let mut shape: Vec<Dim> = p.shape[..axis].to_vec();
        shape.extend_from_slice(&i.shape);
        shape.extend_from_slice(&p.shape[axis + 1..]);
        Ok(vec![TensorSpec {
            dtype: p.dtype,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (p, i) = (&inputs[0], &inputs[1]);
        let axis = resolve_axis("GatherV2", self.axis, &TensorSpec::of(p), p.rank())?;
        let ps = p.shape();
        let (outer, n, inner) = (
            ps[..axis].iter().product::<usize>(),
            ps[axis],
            ps[axis + 1..].iter().product::<usize>(),
        );
        let idx = index_values("GatherV2", i)?;
        for (k, &v) in idx.iter().enumerate() {
            if v < 0 || v as usize >= n {
                return Err(Error::invalid(
                    "GatherV2",
                    format!(
                        "indices[{}] = {v} is not in [0, {n}) (params shape {})",
                        fmt_pos(k, i.shape()),
                        fmt_shape(ps)
                    ),
                ));
            }
        }
        let rows: Vec<Option<usize>> = (0..outer)
            .flat_map(|o| idx.iter().map(move |&v| Some(o * n + v as usize)))
            .collect();
        let mut shape = ps[..axis].to_vec();
        shape.extend_from_slice(i.shape());
        shape.extend_from_slice(&ps[axis + 1..]);
        Ok(vec![gather_rows_tensor(p, inner, &rows, &shape)])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (p, i, g) = (ctx.x(0), ctx.x(1), ctx.g(0));
        let axis = resolve_axis("GatherV2", self.axis, &TensorSpec::of(p), p.rank())?;
        let (q, r) = (i.rank(), p.rank());
        // Move the index dims of g to the front, segment-sum them, and move the axis back.
        let perm: Vec<usize> = (axis..axis + q)
            .chain(0..axis)
            .chain(axis + q..g.rank())
            .collect();
        let s = unsorted_segment_sum(&transpose(g, &perm)?, i, p.shape()[axis])?;
        let back: Vec<usize> = (1..=axis).chain([0]).chain(axis + 1..r).collect();
        Ok(vec![Some(transpose(&s, &back)?), None])
    }
}

/// `tf.gather(params, indices, axis)`: picks slices of `params` along `axis`. The result has
/// shape `params.shape[:axis] + indices.shape + params.shape[axis+1:]`. Indices are int32 or
/// int64 of any rank; an out-of-range index is an error naming it and the valid range (as
/// TensorFlow on CPU).
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let p = Tensor::from_vec(vec![10.0f32, 11.0, 20.0, 21.0, 30.0, 31.0], &[3, 2])?;
/// let i = Tensor::from_vec(vec![2i32, 0, 2], &[3])?;
/// let g = ops::gather(&p, &i, 0)?;
/// assert_eq!(g.to_vec::<f32>()?, vec![30.0, 31.0, 10.0, 11.0, 30.0, 31.0]);
/// assert!(ops::gather(&p, &Tensor::from_vec(vec![3i32], &[1])?, 0).is_err());
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn gather(params: &Tensor, indices: &Tensor, axis: isize) -> Result<Tensor> {
    execute1(GatherV2 { axis }, &[params.clone(), indices.clone()])
}

/// Validates `indices` (`[..., K]`) against `shape` for the `*Nd` ops and returns the flat row
/// (over `shape[..K]`) of every index tuple, plus `K`.
fn nd_rows(op: &str, shape: &[usize], indices: &Tensor) -> Result<(Vec<Option<usize>>, usize)> {
    let ishape = indices.shape();
    let k = *ishape
        .last()
        .ok_or_else(|| Error::shape(op, "indices must have rank >= 1", &[ishape]))?;
    if k > shape.len() {
        return Err(Error::shape(
            op,
            format!("index depth {k} exceeds the rank {}", shape.len()),
            &[shape, ishape],
        ));
    }
    let idx = index_values(op, indices)?;
    let mut rows = Vec::with_capacity(idx.len() / k.max(1));
    let n_tuples: usize = ishape[..ishape.len() - 1].iter().product();
    for t in 0..n_tuples {
        let tuple = &idx[t * k..(t + 1) * k];
        let mut row = 0usize;
        for (&v, &d) in tuple.iter().zip(shape) {
            if v < 0 || v as usize >= d {
                return Err(Error::invalid(
                    op,
                    format!(
                        "indices[{}] = {tuple:?} does not index into shape {}",
                        fmt_pos(t, &ishape[..ishape.len() - 1]),
                        fmt_shape(shape)
                    ),
                ));
            }
            row = row * d + v as usize;
        }
        rows.push(Some(row));
    }
    Ok((rows, k))
}

/// Output dims of `gather_nd(params, indices)`: `indices.shape[:-1] + params.shape[K:]`.
fn nd_shape(op: &str, p: &TensorSpec, i: &TensorSpec) -> Result<Vec<Dim>> {
    check_index_dtype(op, i)?;
    let Some(&k) = i.shape.last() else {
        return Err(Error::shape(
            op,
            "indices must have rank >= 1",
            &[&p.shape_for_error(), &i.shape_for_error()],
        ));
    };
    let mut shape = i.shape[..i.rank() - 1].to_vec();
    match k {
        Some(k) if k <= p.rank() => shape.extend_from_slice(&p.shape[k..]),
        Some(k) => {
            return Err(Error::shape(
                op,
                format!("index depth {k} exceeds the rank {}", p.rank()),
                &[&p.shape_for_error(), &i.shape_for_error()],
            ))
        }
        None => {
            return Err(Error::invalid(
                op,
                "the index depth (last dimension of indices) must be known",
            ))
        }
    }
    Ok(shape)
}

/// `tf.gather_nd` (TensorFlow's `GatherNd`, `batch_dims = 0`).
#[derive(Debug, Clone)]
pub struct GatherNd;

impl Op for GatherNd {
    fn name(&self) -> &'static str {
        "GatherNd"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let shape = nd_shape("GatherNd", &inputs[0], &inputs[1])?;
        Ok(vec![TensorSpec {
            dtype: inputs[0].dtype,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (p, i) = (&inputs[0], &inputs[1]);
        let (rows, k) = nd_rows("GatherNd", p.shape(), i)?;
        let inner: usize = p.shape()[k..].iter().product();
        let mut shape = i.shape()[..i.rank() - 1].to_vec();
        shape.extend_from_slice(&p.shape()[k..]);
        Ok(vec![gather_rows_tensor(p, inner, &rows, &shape)])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (p, g) = (ctx.x(0), ctx.g(0));
        let z = zeros(p.shape(), g.dtype());
        Ok(vec![Some(tensor_scatter_nd_add(&z, ctx.x(1), g)?), None])
    }
}

/// `tf.gather_nd(params, indices)`: each `[..., K]` row of `indices` picks the slice
/// `params[i0, ..., iK-1]`; the result has shape `indices.shape[:-1] + params.shape[K:]`.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let p = Tensor::from_vec((0..6).collect::<Vec<i32>>(), &[2, 3])?;
/// let i = Tensor::from_vec(vec![1i64, 2, 0, 0], &[2, 2])?;
/// assert_eq!(ops::gather_nd(&p, &i)?.to_vec::<i32>()?, vec![5, 0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn gather_nd(params: &Tensor, indices: &Tensor) -> Result<Tensor> {
    execute1(GatherNd, &[params.clone(), indices.clone()])
}

/// `tf.tensor_scatter_nd_add` (TensorFlow's `TensorScatterAdd`).
#[derive(Debug, Clone)]
pub struct TensorScatterAdd;

impl Op for TensorScatterAdd {
    fn name(&self) -> &'static str {
        "TensorScatterAdd"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let (t, i, u) = (&inputs[0], &inputs[1], &inputs[2]);
        if u.dtype != t.dtype {
            return Err(Error::dtype(
                "TensorScatterAdd",
                "updates must have the tensor's dtype",
                &[t.dtype, u.dtype],
            ));
        }
        let want = nd_shape("TensorScatterAdd", t, i)?;
        let ok = want.len() == u.rank()
            && want
                .iter()
                .zip(&u.shape)
                .all(|(a, b)| a.is_none() || b.is_none() || a == b);
        if !ok {
            return Err(Error::shape(
                "TensorScatterAdd",
                "updates must have shape indices.shape[:-1] + tensor.shape[K:]",
                &[
                    &t.shape_for_error(),
                    &i.shape_for_error(),
                    &u.shape_for_error(),
                ],
            ));
        }
        Ok(vec![t.clone()])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (t, i, u) = (&inputs[0], &inputs[1], &inputs[2]);
        let (rows, k) = nd_rows("TensorScatterAdd", t.shape(), i)?;
        let inner: usize = t.shape()[k..].iter().product();
        Ok(vec![scatter_rows_tensor(
            Some(t),
            t.shape(),
            t.dtype(),
            inner,
            &rows,
            u,
        )])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let g = ctx.g(0);
        Ok(vec![Some(g.clone()), None, Some(gather_nd(g, ctx.x(1))?)])
    }
}

/// `tf.tensor_scatter_nd_add(tensor, indices, updates)`: a copy of `tensor` with each update
/// slice added at the position named by the matching `[..., K]` row of `indices` (K <= rank);
/// duplicate indices accumulate. `updates` has shape `indices.shape[:-1] + tensor.shape[K:]`.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let t = Tensor::from_vec(vec![1.0f32; 4], &[4])?;
/// let i = Tensor::from_vec(vec![3i32, 1, 3], &[3, 1])?;
/// let u = Tensor::from_vec(vec![10.0f32, 20.0, 30.0], &[3])?;
/// let s = ops::tensor_scatter_nd_add(&t, &i, &u)?;
/// assert_eq!(s.to_vec::<f32>()?, vec![1.0, 21.0, 1.0, 41.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn tensor_scatter_nd_add(
    tensor: &Tensor,
    indices: &Tensor,
    updates: &Tensor,
) -> Result<Tensor> {
    execute1(
        TensorScatterAdd,
        &[tensor.clone(), indices.clone(), updates.clone()],
    )
}

/// Alias of [`tensor_scatter_nd_add`] (general `[..., K]` indices; `[N, 1]` indices scatter
/// along the first axis).
pub fn scatter_add(tensor: &Tensor, indices: &Tensor, updates: &Tensor) -> Result<Tensor> {
    tensor_scatter_nd_add(tensor, indices, updates)
}

/// `tf.math.unsorted_segment_sum` (TensorFlow's `UnsortedSegmentSum`).
#[derive(Debug, Clone)]
pub struct UnsortedSegmentSum {
    /// The number of segments (first output dimension).
    pub num_segments: usize,
}

impl Op for UnsortedSegmentSum {
    fn name(&self) -> &'static str {
        "UnsortedSegmentSum"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let (d, s) = (&inputs[0], &inputs[1]);
        check_index_dtype("UnsortedSegmentSum", s)?;
        let prefix = s.rank() <= d.rank()
            && s.shape
                .iter()
                .zip(&d.shape)
                .all(|(a, b)| a.is_none() || b.is_none() || a == b);
        if !prefix {
            return Err(Error::shape(
                "UnsortedSegmentSum",
                "segment_ids.shape must be a prefix of data.shape",
                &[&d.shape_for_error(), &s.shape_for_error()],
            ));
        }
        let mut shape = vec![Some(self.num_segments)];
        shape.extend_from_slice(&d.shape[s.rank()..]);
        Ok(vec![TensorSpec {
            dtype: d.dtype,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (d, s) = (&inputs[0], &inputs[1]);
        let ids = index_values("UnsortedSegmentSum", s)?;
        let n = self.num_segments;
        let mut rows = Vec::with_capacity(ids.len());
        for (k, &v) in ids.iter().enumerate() {
            if v >= n as i64 {
                return Err(Error::invalid(
                    "UnsortedSegmentSum",
                    format!(
                        "segment_ids[{}] = {v} is out of range [0, {n})",
                        fmt_pos(k, s.shape())
                    ),
                ));
            }
            rows.push((v >= 0).then_some(v as usize));
        }
        let inner: usize = d.shape()[s.rank()..].iter().product();
        let mut shape = vec![n];
        shape.extend_from_slice(&d.shape()[s.rank()..]);
        Ok(vec![scatter_rows_tensor(
            None,
            &shape,
            d.dtype(),
            inner,
            &rows,
            d,
        )])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (d, s, g) = (ctx.x(0), ctx.x(1), ctx.g(0));
        if s.is_symbolic() {
            // In a graph the ids are known only when a session runs (a fed placeholder): the
            // general form below, written with ops, gives the same values as the eager one
            // (a mask of exact ones where every id is kept).
            let zero = Tensor::scalar_of(s.dtype(), 0.0);
            let clamped = crate::ops::maximum(s, &zero)?;
            let mut m = crate::ops::cast(&crate::ops::greater_equal(s, &zero)?, g.dtype())?;
            for _ in s.rank()..d.rank() {
                m = crate::ops::expand_dims(&m, -1)?;
            }
            return Ok(vec![Some(mul(&gather(g, &clamped, 0)?, &m)?), None]);
        }
        let ids = index_values("UnsortedSegmentSum", s)?;
        if ids.iter().all(|&v| v >= 0) {
            return Ok(vec![Some(gather(g, s, 0)?), None]);
        }
        // Dropped (negative) ids get a zero gradient: gather at 0, then mask.
        let clamped: Vec<i64> = ids.iter().map(|&v| v.max(0)).collect();
        let ci = Tensor::from_vec(clamped, s.shape())?;
        let mask: Vec<f64> = ids
            .iter()
            .map(|&v| if v >= 0 { 1.0 } else { 0.0 })
            .collect();
        let mut mshape = s.shape().to_vec();
        mshape.resize(d.rank(), 1);
        let m = Tensor::from_f64_slice(g.dtype(), &mask, &mshape)?;
        Ok(vec![Some(mul(&gather(g, &ci, 0)?, &m)?), None])
    }
}

/// `tf.math.unsorted_segment_sum(data, segment_ids, num_segments)`: sums the slices of `data`
/// that share a segment id. `segment_ids.shape` is a prefix of `data.shape`; the result has
/// shape `[num_segments] + data.shape[segment_ids.rank:]`. As TensorFlow on CPU, negative ids
/// are dropped and ids `>= num_segments` are an error.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let d = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[4])?;
/// let s = Tensor::from_vec(vec![0i32, 2, 0, 1], &[4])?;
/// assert_eq!(ops::unsorted_segment_sum(&d, &s, 3)?.to_vec::<f64>()?, vec![4.0, 4.0, 2.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn unsorted_segment_sum(
    data: &Tensor,
    segment_ids: &Tensor,
    num_segments: usize,
) -> Result<Tensor> {
    execute1(
        UnsortedSegmentSum { num_segments },
        &[data.clone(), segment_ids.clone()],
    )
}

/// `tf.one_hot` (TensorFlow's `OneHot`).
#[derive(Debug, Clone)]
pub struct OneHot {
    /// Size of the one-hot dimension.
    pub depth: usize,
    /// Value at the index.
    pub on_value: f64,
    /// Value elsewhere.
    pub off_value: f64,
    /// Where the new dimension goes (`-1` = last).
    pub axis: isize,
    /// Output dtype.
    pub dtype: DType,
}

impl OneHot {
    fn axis(&self, i: &TensorSpec) -> Result<usize> {
        match self.axis {
            -1 => Ok(i.rank()),
            a if a >= 0 && a as usize <= i.rank() => Ok(a as usize),
            a => Err(Error::axis("OneHot", a, &i.shape_for_error())),
        }
    }
}

impl Op for OneHot {
    fn name(&self) -> &'static str {
        "OneHot"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let i = &inputs[0];
        if !matches!(i.dtype, DType::I32 | DType::I64 | DType::U8) {
            return Err(Error::dtype(
                "OneHot",
                "indices must be uint8, int32 or int64",
                &[i.dtype],
            ));
        }
        let axis = self.axis(i)?;
        let mut shape = i.shape.clone();
        shape.insert(axis, Some(self.depth));
        Ok(vec![TensorSpec {
            dtype: self.dtype,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let i = &inputs[0];
        let axis = self.axis(&TensorSpec::of(i))?;
        let idx: Vec<i64> = match i.dtype() {
            DType::U8 => i.data::<u8>()?.iter().map(|&v| v as i64).collect(),
            _ => index_values("OneHot", i)?,
        };
        let inner: usize = i.shape()[axis..].iter().product();
        let outer: usize = i.shape()[..axis].iter().product();
        let mut out = Vec::with_capacity(outer * self.depth * inner);
        for o in 0..outer {
            for d in 0..self.depth as i64 {
                out.extend(idx[o * inner..(o + 1) * inner].iter().map(|&v| {
                    if v == d {
                        self.on_value
                    } else {
                        self.off_value
                    }
                }));
            }
        }
        let mut shape = i.shape().to_vec();
        shape.insert(axis, self.depth);
        Ok(vec![Tensor::from_f64_slice(self.dtype, &out, &shape)?])
    }
    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![None])
    }
}

/// `tf.one_hot(indices, depth, on_value, off_value, axis, dtype)`: a new dimension of size
/// `depth` at `axis` (`-1` = last) holding `on_value` where it equals the index and
/// `off_value` elsewhere. Out-of-range (including negative) indices give an all-off row, as
/// TensorFlow. Indices get no gradient.
///
/// ```
/// use ferroflow_core::{ops, DType, Tensor};
/// let i = Tensor::from_vec(vec![0i32, 2, 5], &[3])?;
/// let h = ops::one_hot(&i, 3, 1.0, 0.0, -1, DType::F32)?;
/// assert_eq!(h.to_vec::<f32>()?, vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn one_hot(
    indices: &Tensor,
    depth: usize,
    on_value: f64,
    off_value: f64,
    axis: isize,
    dtype: DType,
) -> Result<Tensor> {
    execute1(
        OneHot {
            depth,
            on_value,
            off_value,
            axis,
            dtype,
        },
        &[indices.clone()],
    )
}
