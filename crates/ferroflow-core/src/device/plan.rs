//! Host-side launch arithmetic for the GPU kernels: the parameter blocks the kernels read
//! (strides with broadcasting, reduction index maps), launch sizes, and the row-major to
//! column-major mapping handed to cuBLAS.
//!
//! Everything here is plain Rust with no CUDA, compiled in every build, and each block has a
//! host *emulation* of what the kernel (or cuBLAS) does with it, written from the CUDA source's
//! loops. The unit tests check the emulations against the CPU ops' broadcasting, reductions and
//! matmul, which verifies the index math; they cannot verify the CUDA code itself (docs/cuda.md).

use crate::error::{Error, Result};
use crate::layout::Layout;

/// Highest rank the GPU kernels handle (the parameter blocks hold fixed arrays).
pub const MAX_RANK: usize = 8;

/// Threads per block of the elementwise and reduction kernels.
pub const BLOCK: u32 = 256;

/// Most blocks launched; the kernels loop (grid-stride) over the rest.
pub const MAX_GRID: u32 = 65_535;

/// `(grid, block)` for `n` work items, or `None` when there is nothing to do (a grid of 0
/// blocks is an invalid launch).
pub fn launch_dims(n: usize) -> Option<(u32, u32)> {
    if n == 0 {
        return None;
    }
    let blocks = n.div_ceil(BLOCK as usize).min(MAX_GRID as usize) as u32;
    Some((blocks, BLOCK))
}

fn rank_error(op: &str, shape: &[usize]) -> Error {
    Error::shape(
        op,
        format!("GPU kernels handle rank <= {MAX_RANK}"),
        &[shape],
    )
}

/// The parameter block of the elementwise kernels (`struct Strided` in the CUDA source, same
/// field order and C layout): output shape and, per input, strides (0 along broadcast axes) and
/// the storage offset. The kernel maps the row-major output index `i` to each input's element.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StridedArgs {
    /// Number of output elements.
    pub n: i64,
    /// Output rank.
    pub rank: i32,
    /// Padding (keeps the C layout explicit).
    pub pad: i32,
    /// Output shape (first `rank` entries).
    pub shape: [i64; MAX_RANK],
    /// Input 0's strides for the output's axes.
    pub sa: [i64; MAX_RANK],
    /// Input 1's strides (unused by unary kernels).
    pub sb: [i64; MAX_RANK],
    /// Input 0's storage offset.
    pub oa: i64,
    /// Input 1's storage offset.
    pub ob: i64,
}

impl StridedArgs {
    /// The block for an output of `shape` reading `a` (and `b`), each broadcast to `shape`
    /// (NumPy rules, as `Layout::broadcast_to`). Errors when an input does not broadcast or the
    /// rank exceeds [`MAX_RANK`].
    pub fn new(op: &str, shape: &[usize], a: &Layout, b: Option<&Layout>) -> Result<StridedArgs> {
        if shape.len() > MAX_RANK {
            return Err(rank_error(op, shape));
        }
        let bcast = |l: &Layout| {
            l.broadcast_to(shape).ok_or_else(|| {
                Error::shape(
                    op,
                    "incompatible shapes for broadcasting",
                    &[l.shape(), shape],
                )
            })
        };
        let la = bcast(a)?;
        let lb = match b {
            Some(b) => Some(bcast(b)?),
            None => None,
        };
        let mut args = StridedArgs {
            n: shape.iter().product::<usize>() as i64,
            rank: shape.len() as i32,
            pad: 0,
            shape: [1; MAX_RANK],
            sa: [0; MAX_RANK],
            sb: [0; MAX_RANK],
            oa: la.offset() as i64,
            ob: lb.as_ref().map_or(0, |l| l.offset() as i64),
        };
        for (d, &s) in shape.iter().enumerate() {
            args.shape[d] = s as i64;
            args.sa[d] = la.strides()[d] as i64;
            if let Some(lb) = &lb {
                args.sb[d] = lb.strides()[d] as i64;
            }
        }
        Ok(args)
    }

    /// What the kernel computes for output element `i`: the element offsets it reads in `a`
    /// and `b` (the CUDA loop, line for line).
    pub fn offsets(&self, i: i64) -> (i64, i64) {
        let (mut rem, mut ia, mut ib) = (i, self.oa, self.ob);
        for d in (0..self.rank as usize).rev() {
            let c = rem % self.shape[d];
            rem /= self.shape[d];
            ia += c * self.sa[d];
            ib += c * self.sb[d];
        }
        (ia, ib)
    }
}

/// The parameter block of the reduction kernel (`struct Reduce` in the CUDA source): one
/// thread per output element walks the reduced axes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReduceArgs {
    /// Number of output elements.
    pub n: i64,
    /// Number of elements reduced into each output.
    pub count: i64,
    /// Number of kept axes.
    pub keep_rank: i32,
    /// Number of reduced axes.
    pub red_rank: i32,
    /// Kept axes' sizes.
    pub keep_shape: [i64; MAX_RANK],
    /// Kept axes' input strides.
    pub keep_strides: [i64; MAX_RANK],
    /// Reduced axes' sizes.
    pub red_shape: [i64; MAX_RANK],
    /// Reduced axes' input strides.
    pub red_strides: [i64; MAX_RANK],
    /// The input's storage offset.
    pub offset: i64,
}

impl ReduceArgs {
    /// The block reducing `x` (any layout) over the sorted, distinct `axes`.
    pub fn new(op: &str, x: &Layout, axes: &[usize]) -> Result<ReduceArgs> {
        let shape = x.shape();
        if shape.len() > MAX_RANK {
            return Err(rank_error(op, shape));
        }
        let mut a = ReduceArgs {
            n: 1,
            count: 1,
            keep_rank: 0,
            red_rank: 0,
            keep_shape: [1; MAX_RANK],
            keep_strides: [0; MAX_RANK],
            red_shape: [1; MAX_RANK],
            red_strides: [0; MAX_RANK],
            offset: x.offset() as i64,
        };
        for (d, &s) in shape.iter().enumerate() {
            let st = x.strides()[d] as i64;
            if axes.contains(&d) {
                a.red_shape[a.red_rank as usize] = s as i64;
                a.red_strides[a.red_rank as usize] = st;
                a.red_rank += 1;
                a.count *= s as i64;
            } else {
                a.keep_shape[a.keep_rank as usize] = s as i64;
                a.keep_strides[a.keep_rank as usize] = st;
                a.keep_rank += 1;
                a.n *= s as i64;
            }
        }
        Ok(a)
    }

    /// What the kernel reads for output element `i`: the input offsets, in its order.
    pub fn offsets(&self, i: i64) -> Vec<i64> {
        let (mut rem, mut base) = (i, self.offset);
        for d in (0..self.keep_rank as usize).rev() {
            base += (rem % self.keep_shape[d]) * self.keep_strides[d];
            rem /= self.keep_shape[d];
        }
        (0..self.count)
            .map(|j| {
                let (mut r, mut off) = (j, base);
                for d in (0..self.red_rank as usize).rev() {
                    off += (r % self.red_shape[d]) * self.red_strides[d];
                    r /= self.red_shape[d];
                }
                off
            })
            .collect()
    }
}

/// One cuBLAS `gemm` (column-major) call computing a row-major
/// `C[m, n] = op(A)[m, k] · op(B)[k, n]` from contiguous row-major buffers: cuBLAS is asked for
/// `Cᵀ = op(B)ᵀ · op(A)ᵀ`, each row-major buffer read as its column-major transpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmCall {
    /// cuBLAS `transa` (applies to the first operand, our `B`).
    pub trans_first: bool,
    /// cuBLAS `transb` (applies to the second operand, our `A`).
    pub trans_second: bool,
    /// cuBLAS `m` (= our `n`).
    pub m: i32,
    /// cuBLAS `n` (= our `m`).
    pub n: i32,
    /// cuBLAS `k`.
    pub k: i32,
    /// Leading dimension of the first operand (our `B`'s row length).
    pub ld_first: i32,
    /// Leading dimension of the second operand (our `A`'s row length).
    pub ld_second: i32,
    /// Leading dimension of C (our `n`).
    pub ldc: i32,
}

impl GemmCall {
    /// The call for row-major `op(A)[m,k]·op(B)[k,n]`; `ta`/`tb`: the stored matrices are `[k,m]`
    /// / `[n,k]` (TF's `transpose_a` / `transpose_b`).
    pub fn row_major(m: usize, n: usize, k: usize, ta: bool, tb: bool) -> Result<GemmCall> {
        let c = |v: usize| {
            i32::try_from(v).map_err(|_| {
                Error::invalid(
                    "MatMul",
                    format!("dimension {v} exceeds cuBLAS's 32-bit sizes"),
                )
            })
        };
        Ok(GemmCall {
            trans_first: tb,
            trans_second: ta,
            m: c(n)?,
            n: c(m)?,
            k: c(k)?,
            ld_first: c(if tb { k } else { n })?.max(1),
            ld_second: c(if ta { m } else { k })?.max(1),
            ldc: c(n)?.max(1),
        })
    }

    /// What cuBLAS computes with these arguments (column-major BLAS semantics, β = 0), on host
    /// buffers: `first` and `second` are the buffers passed as cuBLAS's A and B.
    pub fn emulate(&self, first: &[f64], second: &[f64]) -> Vec<f64> {
        let (m, n, k) = (self.m as usize, self.n as usize, self.k as usize);
        let (lda, ldb, ldc) = (
            self.ld_first as usize,
            self.ld_second as usize,
            self.ldc as usize,
        );
        let opa = |i: usize, l: usize| {
            if self.trans_first {
                first[l + i * lda]
            } else {
                first[i + l * lda]
            }
        };
        let opb = |l: usize, j: usize| {
            if self.trans_second {
                second[j + l * ldb]
            } else {
                second[l + j * ldb]
            }
        };
        let mut c = vec![0.0; ldc * n];
        for j in 0..n {
            for i in 0..m {
                c[i + j * ldc] = (0..k).map(|l| opa(i, l) * opb(l, j)).sum();
            }
        }
        c
    }
}
