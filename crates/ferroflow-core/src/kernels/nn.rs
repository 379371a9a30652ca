//! Small neural-network kernels: `L2Loss`, `BiasAdd` and `BiasAddGrad`.
//!
//! Reductions use fixed-size blocks combined in index order, so results never depend on the
//! thread count.

use rayon::prelude::*;

use super::parallel::{for_each_chunk_mut, CHUNK, PAR_THRESHOLD};
use super::Float;

/// `Σ x² / 2`, summed in fixed blocks of [`CHUNK`] elements combined in order.
pub fn l2_loss<T: Float>(x: &[T]) -> T {
    let block = |c: &[T]| c.iter().fold(T::zero(), |a, &v| a + v * v);
    let partial: Vec<T> = if x.len() < PAR_THRESHOLD || rayon::current_num_threads() == 1 {
        x.chunks(CHUNK).map(block).collect()
    } else {
        x.par_chunks(CHUNK).map(block).collect()
    };
    partial.into_iter().fold(T::zero(), |a, b| a + b) / T::from_f64c(2.0)
}

/// `x + bias` with `bias` (length `c`) added along the last axis of the contiguous `x`.
pub fn bias_add<T: Float>(x: &[T], bias: &[T]) -> Vec<T> {
    let c = bias.len();
    let mut out = vec![T::zero(); x.len()];
    if c == 0 {
        return out;
    }
    for_each_chunk_mut(&mut out, |start, chunk| {
        let mut j = start % c;
        for (o, &v) in chunk.iter_mut().zip(&x[start..]) {
            *o = v + bias[j];
            j += 1;
            if j == c {
                j = 0;
            }
        }
    });
    out
}

/// Rows of `[rows, c]` per block of [`bias_add_grad`] for a tensor of `shape` (last axis `c`).
///
/// An NHWC image batch (rank 4) is summed in blocks of 16 image rows (`16 * w` pixels,
/// `conv_direct::ROWS_PER_CHUNK`): the blocks in which the direct convolution sums its filter
/// gradient, so that `_FusedConv2DMaxPoolGrad` produces the bias gradient in the same pass over
/// each block, with the same bits as `BiasAddGrad` (fifteenth session; `CHUNK / c` pixels
/// before). Any other rank uses blocks of `CHUNK / c` rows. Either way the blocks depend on the
/// shape alone, never on the thread count.
pub fn bias_grad_rows_per_block(shape: &[usize]) -> usize {
    let c = shape.last().copied().unwrap_or(1).max(1);
    match shape {
        [_, _, w, _] if *w > 0 => crate::kernels::conv_direct::ROWS_PER_CHUNK * w,
        _ => (CHUNK / c).max(1),
    }
}

/// Column sums of the contiguous `[rows, c]` array `g` (the bias gradient): rows are summed in
/// fixed blocks of `rows_per_block` (from [`bias_grad_rows_per_block`]; computed in parallel
/// when large) whose partial sums are combined in order.
pub fn bias_add_grad<T: Float>(g: &[T], c: usize, rows_per_block: usize) -> Vec<T> {
    let mut out = vec![T::zero(); c];
    if c == 0 || g.is_empty() {
        return out;
    }
    let rows_per_block = rows_per_block.max(1);
    // Each column is summed row by row in order whatever the vector width, so the widest
    // instruction set gives the same bits as the portable loop.
    let block = |b: &[T]| {
        let mut acc = vec![T::zero(); c];
        super::simd::run(|| {
            for row in b.chunks_exact(c) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
        });
        acc
    };
    let partial: Vec<Vec<T>> = if g.len() < PAR_THRESHOLD || rayon::current_num_threads() == 1 {
        g.chunks(rows_per_block * c).map(block).collect()
    } else {
        g.par_chunks(rows_per_block * c).map(block).collect()
    };
    for p in partial {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
    out
}
