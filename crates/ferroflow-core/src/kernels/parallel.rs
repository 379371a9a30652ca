//! Thread splitting that never changes results.
//!
//! Work is cut into chunks whose boundaries depend only on the problem size (never on the number
//! of threads), so a 1-thread and an N-thread run compute exactly the same floating-point
//! operations in the same order.

use rayon::prelude::*;

/// Below this many elements, elementwise work stays on the calling thread.
pub const PAR_THRESHOLD: usize = 1 << 15;
/// Chunk length for parallel elementwise work (a multiple of every SIMD width).
pub const CHUNK: usize = 1 << 14;

/// Runs `f(chunk_start, chunk)` over `out` in fixed-size chunks, in parallel when `out` is large.
pub fn for_each_chunk_mut<T: Send, F>(out: &mut [T], f: F)
where
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    if out.len() < PAR_THRESHOLD || rayon::current_num_threads() == 1 {
        for (i, c) in out.chunks_mut(CHUNK).enumerate() {
            f(i * CHUNK, c);
        }
    } else {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, c)| f(i * CHUNK, c));
    }
}

/// Runs `f(row_index, row)` for each `row_len`-long row of `out`, in parallel when the total work
/// (`out.len() * work_per_elem`) is large. Each row is computed by exactly one call, so results do
/// not depend on the thread count.
pub fn for_each_row_mut<T: Send, F>(out: &mut [T], row_len: usize, work_per_elem: usize, f: F)
where
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    if row_len == 0 {
        return;
    }
    let work = out.len().saturating_mul(work_per_elem.max(1));
    if work < PAR_THRESHOLD || rayon::current_num_threads() == 1 {
        for (i, r) in out.chunks_mut(row_len).enumerate() {
            f(i, r);
        }
    } else {
        out.par_chunks_mut(row_len)
            .enumerate()
            .for_each(|(i, r)| f(i, r));
    }
}

/// Number of threads gemm-like kernels may use for a problem of `flops` multiply-adds.
pub fn gemm_threads(flops: usize) -> usize {
    if flops < 1 << 18 {
        1
    } else {
        rayon::current_num_threads()
    }
}
