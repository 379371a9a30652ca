//! Linear algebra: `matmul` (TensorFlow's `MatMul` / `BatchMatMulV2`), `tensordot`, `einsum`
//! and `norm`.
//!
//! Only `matmul` has its own kernel (`kernels::dense_gemm`: the packed micro-kernel for shapes
//! with a small side, the strided `gemm` wrapper in `kernels::gemm` otherwise); the others are
//! compositions of transpose, reshape, matmul and reductions, so their gradients come from
//! those ops.

use rayon::prelude::*;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{cast as cast_kernel, tensor_from};
use crate::kernels::rnn_gemm::PackedGemm;
use crate::kernels::{dense_gemm, parallel, Float};
use crate::layout::{broadcast_shapes, normalize_axis, Layout};
use crate::op::{execute1, Dim, GradCtx, Op, TensorSpec};
use crate::ops::array::{reduce_to_shape, reshape, to_isize, transpose};
use crate::ops::reduce::{reduce_max, reduce_sum, Axes};
use crate::ops::unary::{abs, sqrt, square};
use crate::storage::StorageElement;
use crate::tensor::Tensor;

/// Broadcasts two batch shapes with unknown dims (`None`): a known 1 takes the other side,
/// an unknown against anything but a known non-1 stays unknown.
fn broadcast_dims(a: &[Dim], b: &[Dim]) -> Option<Vec<Dim>> {
    let r = a.len().max(b.len());
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            Some(1)
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            Some(1)
        };
        out.push(match (da, db) {
            (Some(x), Some(y)) if x == y => Some(x),
            (Some(1), d) | (d, Some(1)) => d,
            (Some(_), Some(_)) => return None,
            (None, Some(y)) => Some(y),
            (Some(x), None) => Some(x),
            (None, None) => None,
        });
    }
    Some(out)
}

/// `tf.linalg.matmul` (`MatMul` for rank 2, `BatchMatMulV2` above): the product of the last two
/// axes, with NumPy broadcasting over the leading (batch) axes.
#[derive(Clone, Debug)]
pub struct MatMul {
    /// Use the transpose of each matrix of `a`.
    pub transpose_a: bool,
    /// Use the transpose of each matrix of `b`.
    pub transpose_b: bool,
}

impl MatMul {
    fn op_name(rank_a: usize, rank_b: usize) -> &'static str {
        if rank_a == 2 && rank_b == 2 {
            "MatMul"
        } else {
            "BatchMatMulV2"
        }
    }
}

impl Op for MatMul {
    fn name(&self) -> &'static str {
        "BatchMatMulV2"
    }

    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let name = MatMul::op_name(a.rank(), b.rank());
        let shapes = [a.shape_for_error(), b.shape_for_error()];
        let shapes: [&[usize]; 2] = [&shapes[0], &shapes[1]];
        if a.dtype != b.dtype {
            return Err(Error::dtype(
                name,
                "both operands must have the same dtype",
                &[a.dtype, b.dtype],
            ));
        }
        if !a.dtype.is_float() {
            return Err(Error::dtype(
                name,
                "expects float16, bfloat16, float32 or float64 operands (integer matmul is not \
                 supported; cast first)",
                &[a.dtype],
            ));
        }
        if a.rank() < 2 || b.rank() < 2 {
            return Err(Error::shape(
                name,
                "both operands must have rank >= 2",
                &shapes,
            ));
        }
        let (ra, rb) = (a.rank(), b.rank());
        let (m, ka) = if self.transpose_a {
            (a.shape[ra - 1], a.shape[ra - 2])
        } else {
            (a.shape[ra - 2], a.shape[ra - 1])
        };
        let (kb, n) = if self.transpose_b {
            (b.shape[rb - 1], b.shape[rb - 2])
        } else {
            (b.shape[rb - 2], b.shape[rb - 1])
        };
        if let (Some(x), Some(y)) = (ka, kb) {
            if x != y {
                return Err(Error::shape(
                    name,
                    format!(
                        "inner dimensions differ: {x} vs {y} (transpose_a={}, transpose_b={})",
                        self.transpose_a, self.transpose_b
                    ),
                    &shapes,
                ));
            }
        }
        let mut shape = broadcast_dims(&a.shape[..ra - 2], &b.shape[..rb - 2])
            .ok_or_else(|| Error::shape(name, "batch dimensions cannot be broadcast", &shapes))?;
        shape.push(m);
        shape.push(n);
        Ok(vec![TensorSpec {
            dtype: a.dtype,
            shape,
        }])
    }

    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let out = match a.dtype() {
            DType::F32 => matmul_kernel::<f32>(a, b, self.transpose_a, self.transpose_b)?,
            DType::F64 => matmul_kernel::<f64>(a, b, self.transpose_a, self.transpose_b)?,
            DType::F16 | DType::BF16 => {
                let a32 = cast_kernel(a, DType::F32);
                let b32 = cast_kernel(b, DType::F32);
                let y = matmul_kernel::<f32>(&a32, &b32, self.transpose_a, self.transpose_b)?;
                cast_kernel(&y, a.dtype())
            }
            d => {
                return Err(Error::dtype(
                    MatMul::op_name(a.rank(), b.rank()),
                    "unsupported dtype",
                    &[d],
                ))
            }
        };
        Ok(vec![out])
    }

    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (a, b, g) = (ctx.x(0), ctx.x(1), ctx.g(0));
        // TensorFlow's _BatchMatMulV2 gradient table.
        let (ta, tb) = (self.transpose_a, self.transpose_b);
        // (lhs, rhs, transpose lhs, transpose rhs) of each product.
        let (pa, pb) = match (ta, tb) {
            (false, false) => ((g, b, false, true), (a, g, true, false)),
            (false, true) => ((g, b, false, false), (g, a, true, false)),
            (true, false) => ((b, g, false, true), (a, g, false, false)),
            (true, true) => ((b, g, true, true), (g, a, true, true)),
        };
        // An input the caller takes no gradient of (a model's data) is skipped.
        let grad = |i: usize, (l, r, tl, tr): (&Tensor, &Tensor, bool, bool), x: &Tensor| match ctx
            .needs(i)
        {
            true => reduce_to_shape(&matmul(l, r, tl, tr)?, x.shape()).map(Some),
            false => Ok(None),
        };
        Ok(vec![grad(0, pa, a)?, grad(1, pb, b)?])
    }
}

/// Storage offsets of each matrix of `t` (rank >= 2) when its batch axes are broadcast to
/// `batch`, plus the (row, column) strides of one matrix (swapped when `trans`).
fn matrix_views(
    name: &str,
    t: &Tensor,
    batch: &[usize],
    trans: bool,
) -> Result<(Vec<usize>, usize, usize)> {
    let l = t.layout();
    let r = t.rank();
    let (rs, cs) = (l.strides()[r - 2], l.strides()[r - 1]);
    let (rs, cs) = if trans { (cs, rs) } else { (rs, cs) };
    let offs = if r == 2 {
        vec![l.offset()]
    } else {
        let bl = Layout::new(
            l.shape()[..r - 2].to_vec(),
            l.strides()[..r - 2].to_vec(),
            l.offset(),
        );
        let bl = bl.broadcast_to(batch).ok_or_else(|| {
            Error::shape(name, "batch dimensions cannot be broadcast", &[t.shape()])
        })?;
        bl.offsets().collect()
    };
    // A rank-2 operand against a batch: the same matrix for every batch element.
    let offs = if offs.len() == 1 && batch.iter().product::<usize>() != 1 {
        vec![offs[0]; batch.iter().product()]
    } else {
        offs
    };
    Ok((offs, rs, cs))
}

/// The strided batched product of `a` and `b` (any layouts; no copies of the inputs).
fn matmul_kernel<T: Float + StorageElement + PackedGemm>(
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
) -> Result<Tensor> {
    let name = MatMul::op_name(a.rank(), b.rank());
    let (ra, rb) = (a.rank(), b.rank());
    let (sa, sb) = (a.shape(), b.shape());
    let (m, k) = if ta {
        (sa[ra - 1], sa[ra - 2])
    } else {
        (sa[ra - 2], sa[ra - 1])
    };
    let n = if tb { sb[rb - 2] } else { sb[rb - 1] };
    let batch = broadcast_shapes(&sa[..ra - 2], &sb[..rb - 2])
        .ok_or_else(|| Error::shape(name, "batch dimensions cannot be broadcast", &[sa, sb]))?;
    let nb: usize = batch.iter().product();
    let mut out_shape = batch.clone();
    out_shape.push(m);
    out_shape.push(n);
    let mn = m * n;
    let mut c = vec![T::zero(); nb * mn];
    if nb == 0 || mn == 0 {
        return Ok(tensor_from(c, &out_shape));
    }
    let dtype_err = || Error::dtype(name, "operand storage dtype", &[a.dtype(), b.dtype()]);
    let da = T::slice(a.storage()).ok_or_else(dtype_err)?;
    let db = T::slice(b.storage()).ok_or_else(dtype_err)?;
    let (oa, a_rs, a_cs) = matrix_views(name, a, &batch, ta)?;
    let (ob, b_rs, b_cs) = matrix_views(name, b, &batch, tb)?;
    let empty: &[T] = &[];
    let one = |i: usize, ci: &mut [T]| {
        let (av, bv) = if k == 0 {
            (empty, empty)
        } else {
            (&da[oa[i]..], &db[ob[i]..])
        };
        dense_gemm::matmul(m, k, n, av, a_rs, a_cs, bv, b_rs, b_cs, ci, false);
    };
    let per = m.saturating_mul(k).saturating_mul(n);
    let total = per.saturating_mul(nb);
    if nb > 1 && parallel::gemm_threads(per) == 1 && parallel::gemm_threads(total) > 1 {
        // Small matrices: one single-threaded product per task (same arithmetic per matrix, so
        // the result does not depend on the thread count).
        c.par_chunks_mut(mn)
            .enumerate()
            .for_each(|(i, ci)| one(i, ci));
    } else {
        for (i, ci) in c.chunks_mut(mn).enumerate() {
            one(i, ci);
        }
    }
    Ok(tensor_from(c, &out_shape))
}

/// `tf.linalg.matmul(a, b, transpose_a, transpose_b)`: the matrix product of the last two axes
/// of `a` and `b` (rank >= 2 each), with NumPy broadcasting of the leading batch axes.
///
/// float32 and float64 run natively (`kernels::dense_gemm`); float16 and bfloat16 compute in float32. Integer
/// dtypes are rejected with a dtype error (cast to a float first). Transposes and other strided
/// views are read in place, never copied.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = Tensor::from_vec(vec![5.0f32, 6.0, 7.0, 8.0], &[2, 2])?;
/// let c = ops::matmul(&a, &b, false, false)?;
/// assert_eq!(c.to_vec::<f32>()?, vec![19.0, 22.0, 43.0, 50.0]);
/// let ct = ops::matmul(&a, &b, true, false)?; // aᵀ·b
/// assert_eq!(ct.to_vec::<f32>()?, vec![26.0, 30.0, 38.0, 44.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn matmul(a: &Tensor, b: &Tensor, transpose_a: bool, transpose_b: bool) -> Result<Tensor> {
    execute1(
        MatMul {
            transpose_a,
            transpose_b,
        },
        &[a.clone(), b.clone()],
    )
}

/// The axes argument of [`tensordot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TensordotAxes {
    /// Contract the last `N` axes of `a` with the first `N` axes of `b`.
    N(usize),
    /// Contract `a`'s axes `.0[i]` with `b`'s axes `.1[i]` (negative values count from the end).
    Pairs(Vec<isize>, Vec<isize>),
}

impl From<usize> for TensordotAxes {
    fn from(n: usize) -> Self {
        TensordotAxes::N(n)
    }
}

/// Product of the dims of `shape` at `axes`.
fn dims_product(shape: &[usize], axes: &[usize]) -> usize {
    axes.iter().map(|&i| shape[i]).product()
}

/// `tf.tensordot(a, b, axes)`: sums products over the paired axes; the result has `a`'s free
/// axes followed by `b`'s. Implemented as transpose + reshape + [`matmul`], so its gradient
/// comes from those ops. Errors ("Tensordot") when axes are out of range, repeated, or pair
/// dimensions of different sizes.
///
/// ```
/// use ferroflow_core::ops::{self, TensordotAxes};
/// use ferroflow_core::Tensor;
/// let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?;
/// let b = Tensor::from_vec(vec![4.0f64, 5.0, 6.0], &[3])?;
/// let dot = ops::tensordot(&a, &b, TensordotAxes::N(1))?;
/// assert_eq!(dot.item::<f64>()?, 32.0);
/// assert_eq!(ops::tensordot(&a, &b, TensordotAxes::N(0))?.shape(), &[3, 3]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn tensordot(a: &Tensor, b: &Tensor, axes: TensordotAxes) -> Result<Tensor> {
    const NAME: &str = "Tensordot";
    let (sa, sb) = (a.shape(), b.shape());
    let (ax_a, ax_b): (Vec<usize>, Vec<usize>) = match axes {
        TensordotAxes::N(n) => {
            if n > sa.len() || n > sb.len() {
                return Err(Error::shape(
                    NAME,
                    format!("cannot contract {n} axes of tensors of these ranks"),
                    &[sa, sb],
                ));
            }
            ((sa.len() - n..sa.len()).collect(), (0..n).collect())
        }
        TensordotAxes::Pairs(pa, pb) => {
            if pa.len() != pb.len() {
                return Err(Error::invalid(
                    NAME,
                    format!("axes lists have different lengths: {pa:?} vs {pb:?}"),
                ));
            }
            let na = pa
                .iter()
                .map(|&x| normalize_axis(NAME, x, sa))
                .collect::<Result<Vec<_>>>()?;
            let nb = pb
                .iter()
                .map(|&x| normalize_axis(NAME, x, sb))
                .collect::<Result<Vec<_>>>()?;
            (na, nb)
        }
    };
    for (axes, name) in [(&ax_a, "a"), (&ax_b, "b")] {
        for (i, x) in axes.iter().enumerate() {
            if axes[..i].contains(x) {
                return Err(Error::invalid(
                    NAME,
                    format!("axis {x} of `{name}` is listed twice"),
                ));
            }
        }
    }
    for (&i, &j) in ax_a.iter().zip(&ax_b) {
        if sa[i] != sb[j] {
            return Err(Error::shape(
                NAME,
                format!(
                    "axis {i} of a (size {}) and axis {j} of b (size {}) differ",
                    sa[i], sb[j]
                ),
                &[sa, sb],
            ));
        }
    }
    let free_a: Vec<usize> = (0..sa.len()).filter(|i| !ax_a.contains(i)).collect();
    let free_b: Vec<usize> = (0..sb.len()).filter(|i| !ax_b.contains(i)).collect();
    let k = dims_product(sa, &ax_a);
    let (m, n) = (dims_product(sa, &free_a), dims_product(sb, &free_b));
    let perm_a: Vec<usize> = free_a.iter().chain(&ax_a).copied().collect();
    let perm_b: Vec<usize> = ax_b.iter().chain(&free_b).copied().collect();
    let a2 = reshape(&transpose_if_needed(a, &perm_a)?, &[m as isize, k as isize])?;
    let b2 = reshape(&transpose_if_needed(b, &perm_b)?, &[k as isize, n as isize])?;
    let c = matmul(&a2, &b2, false, false)?;
    let out: Vec<isize> = free_a
        .iter()
        .map(|&i| sa[i] as isize)
        .chain(free_b.iter().map(|&i| sb[i] as isize))
        .collect();
    reshape(&c, &out)
}

/// `transpose(x, perm)`, skipped when `perm` is the identity.
fn transpose_if_needed(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        Ok(x.clone())
    } else {
        transpose(x, perm)
    }
}

/// Parses one operand's labels: letters only, no repeats (traces are not supported).
fn parse_labels(eq: &str, s: &str) -> Result<Vec<char>> {
    let labels: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    for (i, &c) in labels.iter().enumerate() {
        if c == '.' {
            return Err(Error::invalid(
                "Einsum",
                format!("ellipsis (`...`) is not supported in {eq:?}"),
            ));
        }
        if !c.is_ascii_alphabetic() {
            return Err(Error::invalid(
                "Einsum",
                format!("invalid label {c:?} in {eq:?}"),
            ));
        }
        if labels[..i].contains(&c) {
            return Err(Error::invalid(
                "Einsum",
                format!(
                    "label {c:?} is repeated within one term of {eq:?} (traces and diagonals \
                     are not supported)"
                ),
            ));
        }
    }
    Ok(labels)
}

/// An operand (or intermediate) with one label per axis.
struct Term {
    t: Tensor,
    labels: Vec<char>,
}

impl Term {
    fn dim(&self, c: char) -> usize {
        let i = self.labels.iter().position(|&l| l == c).unwrap_or(0);
        self.t.shape()[i]
    }

    /// Sums over the labels not in `keep`.
    fn sum_out(self, keep: &[char]) -> Result<Term> {
        let axes: Vec<isize> = (0..self.labels.len())
            .filter(|&i| !keep.contains(&self.labels[i]))
            .map(|i| i as isize)
            .collect();
        if axes.is_empty() {
            return Ok(self);
        }
        let labels = self
            .labels
            .iter()
            .copied()
            .filter(|c| keep.contains(c))
            .collect();
        Ok(Term {
            t: reduce_sum(&self.t, Axes::These(axes), false)?,
            labels,
        })
    }

    /// Transposes to the label order `order` (a permutation of `self.labels`).
    fn permuted(&self, order: &[char]) -> Result<Tensor> {
        let perm: Vec<usize> = order
            .iter()
            .map(|c| self.labels.iter().position(|l| l == c).unwrap_or(0))
            .collect();
        transpose_if_needed(&self.t, &perm)
    }
}

/// Contracts two terms, keeping the labels in `keep`: labels in both and kept are batch axes,
/// labels in both and not kept are summed by the matmul, labels in one only and not kept are
/// summed first.
fn contract(x: Term, y: Term, keep: &[char]) -> Result<Term> {
    let x_keep: Vec<char> = x
        .labels
        .iter()
        .copied()
        .filter(|c| keep.contains(c) || y.labels.contains(c))
        .collect();
    let y_keep: Vec<char> = y
        .labels
        .iter()
        .copied()
        .filter(|c| keep.contains(c) || x.labels.contains(c))
        .collect();
    let x = x.sum_out(&x_keep)?;
    let y = y.sum_out(&y_keep)?;
    let batch: Vec<char> = x
        .labels
        .iter()
        .copied()
        .filter(|c| y.labels.contains(c) && keep.contains(c))
        .collect();
    let sum: Vec<char> = x
        .labels
        .iter()
        .copied()
        .filter(|c| y.labels.contains(c) && !keep.contains(c))
        .collect();
    let free_x: Vec<char> = x
        .labels
        .iter()
        .copied()
        .filter(|c| !y.labels.contains(c))
        .collect();
    let free_y: Vec<char> = y
        .labels
        .iter()
        .copied()
        .filter(|c| !x.labels.contains(c))
        .collect();
    let size = |t: &Term, ls: &[char]| ls.iter().map(|&c| t.dim(c)).product::<usize>() as isize;
    let (nb, m, k, n) = (
        size(&x, &batch),
        size(&x, &free_x),
        size(&x, &sum),
        size(&y, &free_y),
    );
    let xo: Vec<char> = batch.iter().chain(&free_x).chain(&sum).copied().collect();
    let yo: Vec<char> = batch.iter().chain(&sum).chain(&free_y).copied().collect();
    let x3 = reshape(&x.permuted(&xo)?, &[nb, m, k])?;
    let y3 = reshape(&y.permuted(&yo)?, &[nb, k, n])?;
    let z = matmul(&x3, &y3, false, false)?;
    let labels: Vec<char> = batch
        .iter()
        .chain(&free_x)
        .chain(&free_y)
        .copied()
        .collect();
    let shape: Vec<isize> = batch
        .iter()
        .chain(&free_x)
        .map(|&c| x.dim(c) as isize)
        .chain(free_y.iter().map(|&c| y.dim(c) as isize))
        .collect();
    Ok(Term {
        t: reshape(&z, &shape)?,
        labels,
    })
}

/// `tf.einsum(equation, inputs)` for equations whose terms are plain letters: matrix products
/// (`"ij,jk->ik"`), batched products (`"bij,bjk->bik"`, `"bhqd,bhkd->bhqk"`), transposes
/// (`"ij->ji"`), outer (`"i,j->ij"`) and inner (`"i,i->"`) products, sums (`"ij->i"`) and
/// bilinear forms (`"bi,ij->bj"`). Without `->` the output is every label that appears once,
/// in alphabetical order (NumPy's and TensorFlow's implicit mode). More than two operands are
/// contracted left to right.
///
/// Built from transpose, reshape, [`matmul`] and `reduce_sum`, so gradients come from those ops.
/// Not supported (an `Error::InvalidArgument` naming "Einsum"): ellipsis, a label repeated
/// within one term (traces, diagonals), and broadcasting of size-1 dimensions between operands.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = Tensor::from_vec(vec![5.0f32, 6.0, 7.0, 8.0], &[2, 2])?;
/// let c = ops::einsum("ij,jk->ik", &[&a, &b])?;
/// assert_eq!(c.to_vec::<f32>()?, vec![19.0, 22.0, 43.0, 50.0]);
/// assert_eq!(ops::einsum("ij->ji", &[&a])?.to_vec::<f32>()?, vec![1.0, 3.0, 2.0, 4.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn einsum(equation: &str, inputs: &[&Tensor]) -> Result<Tensor> {
    const NAME: &str = "Einsum";
    let (lhs, rhs) = match equation.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (equation, None),
    };
    let terms: Vec<Vec<char>> = lhs
        .split(',')
        .map(|s| parse_labels(equation, s))
        .collect::<Result<_>>()?;
    if terms.len() != inputs.len() {
        return Err(Error::invalid(
            NAME,
            format!(
                "{equation:?} has {} input terms but {} tensors were given",
                terms.len(),
                inputs.len()
            ),
        ));
    }
    if inputs.is_empty() {
        return Err(Error::invalid(NAME, "needs at least one input"));
    }
    // Label sizes must agree everywhere.
    let mut sizes: Vec<(char, usize)> = Vec::new();
    for (labels, t) in terms.iter().zip(inputs) {
        if labels.len() != t.rank() {
            return Err(Error::shape(
                NAME,
                format!(
                    "term {:?} of {equation:?} has {} labels for a rank-{} tensor",
                    labels.iter().collect::<String>(),
                    labels.len(),
                    t.rank()
                ),
                &[t.shape()],
            ));
        }
        for (&c, &d) in labels.iter().zip(t.shape()) {
            match sizes.iter().find(|(l, _)| *l == c) {
                Some(&(_, d0)) if d0 != d => {
                    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
                    return Err(Error::shape(
                        NAME,
                        format!("label {c:?} of {equation:?} has sizes {d0} and {d}"),
                        &shapes,
                    ));
                }
                Some(_) => {}
                None => sizes.push((c, d)),
            }
        }
    }
    let out: Vec<char> = match rhs {
        Some(r) => parse_labels(equation, r)?,
        None => {
            let mut once: Vec<char> = sizes
                .iter()
                .map(|&(c, _)| c)
                .filter(|c| terms.iter().flatten().filter(|l| *l == c).count() == 1)
                .collect();
            once.sort_unstable();
            once
        }
    };
    for c in &out {
        if !sizes.iter().any(|(l, _)| l == c) {
            return Err(Error::invalid(
                NAME,
                format!("output label {c:?} of {equation:?} appears in no input"),
            ));
        }
    }
    let mut acc = Term {
        t: inputs[0].clone(),
        labels: terms[0].clone(),
    };
    for i in 1..inputs.len() {
        // Keep the output's labels and those still needed by later operands.
        let keep: Vec<char> = out
            .iter()
            .chain(terms[i + 1..].iter().flatten())
            .copied()
            .collect();
        let y = Term {
            t: inputs[i].clone(),
            labels: terms[i].clone(),
        };
        acc = contract(acc, y, &keep)?;
    }
    let acc = acc.sum_out(&out)?;
    acc.permuted(&out)
}

/// The `ord` argument of [`norm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NormOrd {
    /// `'euclidean'` (TensorFlow's default): the 2-norm of a vector, the Frobenius norm of a
    /// matrix.
    #[default]
    Euclidean,
    /// `'fro'`: the Frobenius norm; only valid for matrix norms (two axes), as in TensorFlow.
    Fro,
    /// `ord=1`: `Σ|x|` for vectors, the maximum absolute column sum for matrices.
    One,
    /// `ord=np.inf`: `max|x|` for vectors, the maximum absolute row sum for matrices.
    Inf,
}

/// `tf.norm(x, ord, axis, keepdims)`.
///
/// `axes` is [`Axes::All`] (TensorFlow's `axis=None`: the vector norm of the flattened tensor),
/// one axis (a vector norm) or two axes (a matrix norm over those two axes; `axes[0]` indexes
/// rows, `axes[1]` columns). Spectral (`ord=2` on matrices) and general `p` norms are not
/// provided. With `keepdims` the reduced axes stay with size 1.
///
/// Gradient: as in TensorFlow, the Euclidean norm is `sqrt(reduce_sum(x²))` and differentiates
/// as `x / norm`, which is NaN where the norm is 0 (TensorFlow does not special-case it either).
///
/// ```
/// use ferroflow_core::ops::{self, Axes, NormOrd};
/// use ferroflow_core::Tensor;
/// let x = Tensor::from_vec(vec![3.0f32, -4.0], &[2])?;
/// assert_eq!(ops::norm(&x, NormOrd::Euclidean, Axes::All, false)?.item::<f32>()?, 5.0);
/// assert_eq!(ops::norm(&x, NormOrd::One, Axes::All, false)?.item::<f32>()?, 7.0);
/// assert_eq!(ops::norm(&x, NormOrd::Inf, Axes::All, false)?.item::<f32>()?, 4.0);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn norm(x: &Tensor, ord: NormOrd, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
    const NAME: &str = "norm";
    if !x.dtype().is_float() {
        return Err(Error::dtype(NAME, "expects a float tensor", &[x.dtype()]));
    }
    let shape = x.shape();
    let axes: Vec<usize> = match axes.into() {
        Axes::All => (0..shape.len()).collect(),
        Axes::These(v) => {
            let a = v
                .iter()
                .map(|&i| normalize_axis(NAME, i, shape))
                .collect::<Result<Vec<_>>>()?;
            if a.is_empty() || a.len() > 2 || (a.len() == 2 && a[0] == a[1]) {
                return Err(Error::invalid(
                    NAME,
                    format!("axis must be None, one axis or two distinct axes, got {v:?}"),
                ));
            }
            if a.len() == 2 {
                return matrix_norm(x, ord, a[0], a[1], keepdims);
            }
            a
        }
    };
    let ax: Vec<isize> = axes.iter().map(|&i| i as isize).collect();
    let r = match ord {
        NormOrd::Euclidean => sqrt(&reduce_sum(&square(x)?, Axes::These(ax), true)?)?,
        NormOrd::One => reduce_sum(&abs(x)?, Axes::These(ax), true)?,
        NormOrd::Inf => reduce_max(&abs(x)?, Axes::These(ax), true)?,
        NormOrd::Fro => {
            return Err(Error::invalid(
                NAME,
                "'fro' is only valid for matrix norms (give two axes)",
            ))
        }
    };
    finish_norm(&r, shape, &axes, keepdims)
}

/// Reshapes a keepdims-reduced norm to TensorFlow's output shape.
fn finish_norm(r: &Tensor, shape: &[usize], axes: &[usize], keepdims: bool) -> Result<Tensor> {
    let out: Vec<usize> = shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    reshape(r, &to_isize(&out))
}

fn matrix_norm(x: &Tensor, ord: NormOrd, row: usize, col: usize, keepdims: bool) -> Result<Tensor> {
    let (ri, ci) = (row as isize, col as isize);
    let r = match ord {
        NormOrd::Euclidean | NormOrd::Fro => {
            sqrt(&reduce_sum(&square(x)?, Axes::These(vec![ri, ci]), true)?)?
        }
        // Maximum over columns of the column sums.
        NormOrd::One => reduce_max(&reduce_sum(&abs(x)?, ri, true)?, ci, true)?,
        // Maximum over rows of the row sums.
        NormOrd::Inf => reduce_max(&reduce_sum(&abs(x)?, ci, true)?, ri, true)?,
    };
    finish_norm(&r, x.shape(), &[row, col], keepdims)
}
