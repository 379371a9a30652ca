//! Direct 2-D convolution for small reductions (`K = kh*kw*c <= DIRECT_MAX_K`, e.g. the first
//! layer of an image model: 3x3 taps over 1 or 3 input channels), NHWC input, HWIO filter.
//!
//! With so few taps the im2col + GEMM path is bound by memory traffic: the column matrix is as
//! large as the FLOP count. Here each output row `(image, oy)` is gathered into a tiny column
//! buffer (`ow x K`, in L1), and a register-blocked micro-kernel multiplies it with the filter:
//! blocks of [`PIX`] output pixels x [`NB`] output channels stay in vector registers over the `K`
//! taps, then the row is written once (with the optional bias and ReLU of `_FusedConv2D` applied in
//! the same pass).
//!
//! The backward-filter pass sums `cols^T · dy` over fixed chunks of [`ROWS_PER_CHUNK`] output rows
//! (chunk boundaries depend only on the problem size), then adds the per-chunk partials in chunk
//! order, so results never depend on the number of threads.
//!
//! SIMD: the same generic body is compiled three times, for AVX-512F, for AVX2 and portable, and
//! chosen at run time (`is_x86_feature_detected!`). Every element is computed with the same
//! sequence of separate multiplies and adds (no FMA contraction) in the same order in all three,
//! so they agree bit for bit (tested).

use crate::kernels::conv::{im2col_row, Conv2dGeom};
use crate::kernels::Float;
use rayon::prelude::*;

/// Largest reduction length `kh*kw*c` the direct kernels take.
pub(crate) const DIRECT_MAX_K: usize = 32;
/// Output channels per register block (one 512-bit vector of f32).
const NB: usize = 16;
/// Output pixels per register block.
const PIX: usize = 4;
/// Taps per register block in the backward-filter pass.
const KB: usize = 4;
/// Output rows per chunk of the backward-filter reduction (fixed: never depends on threads).
const ROWS_PER_CHUNK: usize = 16;
/// Output rows per parallel task of the forward pass.
const ROWS_PER_TASK: usize = 4;
/// Below this many multiply-adds a pass stays on the calling thread.
const PAR_MIN_WORK: usize = 1 << 17;

/// Instruction set a kernel body is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// Plain Rust (whatever the compile target enables).
    Portable,
    /// AVX2 (256-bit).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512F (512-bit).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The best instruction set this CPU supports.
pub(crate) fn detect_isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// Whether the direct kernels handle this geometry.
pub(crate) fn applies(g: &Conv2dGeom) -> bool {
    let k = g.kh * g.kw * g.c;
    k > 0 && k <= DIRECT_MAX_K && g.oc > 0 && g.oh > 0 && g.ow > 0 && g.n > 0
}

/// Bias and activation applied to each output in the write pass (`_FusedConv2D`): `v + bias[o]`,
/// then `relu` as `if v > 0 { v } else { 0 }` — the unfused BiasAdd and Relu expressions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Epilogue<'a, T> {
    /// Per-output-channel bias (`oc` long), if any.
    pub bias: Option<&'a [T]>,
    /// Apply ReLU after the bias.
    pub relu: bool,
}

#[inline(always)]
fn round_up(v: usize, m: usize) -> usize {
    v.div_ceil(m) * m
}

/// The filter `[K, oc]` with its columns padded with zeros to `ocp` (a multiple of [`NB`]).
fn padded_filter<T: Float>(w: &[T], k: usize, oc: usize, ocp: usize) -> Vec<T> {
    let mut wp = vec![T::zero(); k * ocp];
    for (dst, src) in wp.chunks_exact_mut(ocp).zip(w.chunks_exact(oc)) {
        dst[..oc].copy_from_slice(src);
    }
    wp
}

/// One register block: `PP` pixels (rows of `cols`, each `k` long) times output channels
/// `ob..ob+NB` of the padded filter, written to `out` (`PP` pixels of `oc` channels).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fwd_block<T: Float, const PP: usize>(
    cols: &[T],
    k: usize,
    wp: &[T],
    ocp: usize,
    oc: usize,
    ob: usize,
    out: &mut [T],
    epi: Epilogue<'_, T>,
) {
    let mut acc = [[T::zero(); NB]; PP];
    for kk in 0..k {
        let wrow: &[T; NB] = wp[kk * ocp + ob..kk * ocp + ob + NB]
            .try_into()
            .expect("NB-wide filter row");
        for (p, accp) in acc.iter_mut().enumerate() {
            let a = cols[p * k + kk];
            for j in 0..NB {
                accp[j] += a * wrow[j];
            }
        }
    }
    let nv = NB.min(oc - ob);
    for (p, accp) in acc.iter().enumerate() {
        let dst = &mut out[p * oc + ob..p * oc + ob + nv];
        match epi.bias {
            Some(b) => {
                for ((d, &v), &bb) in dst.iter_mut().zip(accp).zip(&b[ob..ob + nv]) {
                    let v = v + bb;
                    *d = if !epi.relu || v > T::zero() {
                        v
                    } else {
                        T::zero()
                    };
                }
            }
            None => {
                for (d, &v) in dst.iter_mut().zip(accp) {
                    *d = if !epi.relu || v > T::zero() {
                        v
                    } else {
                        T::zero()
                    };
                }
            }
        }
    }
}

/// Output row `r` (`image*oh + oy`) of the forward pass into `yrow` (`ow*oc`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fwd_row_body<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    wp: &[T],
    ocp: usize,
    r: usize,
    cols: &mut [T],
    yrow: &mut [T],
    epi: Epilogue<'_, T>,
) {
    let k = g.kh * g.kw * g.c;
    let oc = g.oc;
    let img_in = g.h * g.w * g.c;
    let (img, oy) = (r / g.oh, r % g.oh);
    im2col_row(g, &x[img * img_in..(img + 1) * img_in], oy, cols);
    for ob in (0..ocp).step_by(NB) {
        let mut ox = 0;
        while ox + PIX <= g.ow {
            fwd_block::<T, PIX>(
                &cols[ox * k..],
                k,
                wp,
                ocp,
                oc,
                ob,
                &mut yrow[ox * oc..],
                epi,
            );
            ox += PIX;
        }
        while ox < g.ow {
            fwd_block::<T, 1>(
                &cols[ox * k..],
                k,
                wp,
                ocp,
                oc,
                ob,
                &mut yrow[ox * oc..],
                epi,
            );
            ox += 1;
        }
    }
}

/// One chunk of the backward-filter reduction: output rows `r0..r0+rows`, summed into `part`
/// (`[K, ocp]`, overwritten).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bwd_filter_chunk_body<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    dy: &[T],
    ocp: usize,
    r0: usize,
    rows: usize,
    cols: &mut [T],
    dyp: &mut [T],
    part: &mut [T],
) {
    let k = g.kh * g.kw * g.c;
    let (oc, ow) = (g.oc, g.ow);
    let img_in = g.h * g.w * g.c;
    part.fill(T::zero());
    for r in r0..r0 + rows {
        let (img, oy) = (r / g.oh, r % g.oh);
        im2col_row(g, &x[img * img_in..(img + 1) * img_in], oy, cols);
        let dy_row = &dy[r * ow * oc..(r + 1) * ow * oc];
        let dyr: &[T] = if oc == ocp {
            dy_row
        } else {
            for (d, s) in dyp.chunks_exact_mut(ocp).zip(dy_row.chunks_exact(oc)) {
                d[..oc].copy_from_slice(s);
            }
            dyp
        };
        let mut kb = 0;
        while kb + KB <= k {
            bwd_filter_block::<T, KB>(cols, k, kb, dyr, ocp, ow, part);
            kb += KB;
        }
        while kb < k {
            bwd_filter_block::<T, 1>(cols, k, kb, dyr, ocp, ow, part);
            kb += 1;
        }
    }
}

/// `part[kb..kb+QQ, :] += cols[:, kb..kb+QQ]^T · dyr` over the `ow` pixels of one row, in
/// register blocks of `QQ` taps x [`NB`] channels.
#[inline(always)]
fn bwd_filter_block<T: Float, const QQ: usize>(
    cols: &[T],
    k: usize,
    kb: usize,
    dyr: &[T],
    ocp: usize,
    ow: usize,
    part: &mut [T],
) {
    for ob in (0..ocp).step_by(NB) {
        let mut acc = [[T::zero(); NB]; QQ];
        for (q, accq) in acc.iter_mut().enumerate() {
            accq.copy_from_slice(&part[(kb + q) * ocp + ob..(kb + q) * ocp + ob + NB]);
        }
        for ox in 0..ow {
            let d: &[T; NB] = dyr[ox * ocp + ob..ox * ocp + ob + NB]
                .try_into()
                .expect("NB-wide gradient row");
            for (q, accq) in acc.iter_mut().enumerate() {
                let a = cols[ox * k + kb + q];
                for j in 0..NB {
                    accq[j] += a * d[j];
                }
            }
        }
        for (q, accq) in acc.iter().enumerate() {
            part[(kb + q) * ocp + ob..(kb + q) * ocp + ob + NB].copy_from_slice(accq);
        }
    }
}

macro_rules! isa_variants {
    ($body:ident, $portable:ident, $avx2:ident, $avx512:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $portable<T: Float>($($arg: $ty),*) {
            $body($($arg),*)
        }
        /// # Safety
        /// The CPU must support AVX2.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn $avx2<T: Float>($($arg: $ty),*) {
            $body($($arg),*)
        }
        /// # Safety
        /// The CPU must support AVX-512F.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $avx512<T: Float>($($arg: $ty),*) {
            $body($($arg),*)
        }
    };
}

isa_variants!(
    fwd_row_body,
    fwd_row_portable,
    fwd_row_avx2,
    fwd_row_avx512,
    (g: &Conv2dGeom, x: &[T], wp: &[T], ocp: usize, r: usize, cols: &mut [T], yrow: &mut [T], epi: Epilogue<'_, T>)
);

isa_variants!(
    bwd_filter_chunk_body,
    bwd_filter_chunk_portable,
    bwd_filter_chunk_avx2,
    bwd_filter_chunk_avx512,
    (g: &Conv2dGeom, x: &[T], dy: &[T], ocp: usize, r0: usize, rows: usize, cols: &mut [T], dyp: &mut [T], part: &mut [T])
);

/// Direct forward convolution `y = epilogue(conv2d(x, w))` on the instruction set `isa`
/// (which the CPU must support: take it from [`detect_isa`]).
///
/// `x`: `[n, h, w, c]`, `w`: `[kh, kw, c, oc]`, `y`: `[n, oh, ow, oc]` (overwritten). The caller
/// checks [`applies`].
pub(crate) fn forward<T: Float>(
    isa: Isa,
    g: &Conv2dGeom,
    x: &[T],
    w: &[T],
    y: &mut [T],
    epi: Epilogue<'_, T>,
) {
    debug_assert!(applies(g));
    debug_assert_eq!(y.len(), g.output_len());
    let k = g.kh * g.kw * g.c;
    let ocp = round_up(g.oc, NB);
    let padded;
    let wp: &[T] = if ocp == g.oc {
        w
    } else {
        padded = padded_filter(w, k, g.oc, ocp);
        &padded
    };
    let row_len = g.ow * g.oc;
    let run = |cols: &mut Vec<T>, r: usize, yrow: &mut [T]| match isa {
        Isa::Portable => fwd_row_portable(g, x, wp, ocp, r, cols, yrow, epi),
        // SAFETY: `isa` is only Avx2/Avx512 when `detect_isa` found the feature on this CPU.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { fwd_row_avx2(g, x, wp, ocp, r, cols, yrow, epi) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { fwd_row_avx512(g, x, wp, ocp, r, cols, yrow, epi) },
    };
    let new_cols = || vec![T::zero(); g.ow * k];
    let work = g.output_len().saturating_mul(k);
    if work < PAR_MIN_WORK || rayon::current_num_threads() == 1 {
        let mut cols = new_cols();
        for (r, yrow) in y.chunks_exact_mut(row_len).enumerate() {
            run(&mut cols, r, yrow);
        }
    } else {
        y.par_chunks_mut(row_len * ROWS_PER_TASK)
            .enumerate()
            .for_each_init(new_cols, |cols, (t, ys)| {
                for (j, yrow) in ys.chunks_exact_mut(row_len).enumerate() {
                    run(cols, t * ROWS_PER_TASK + j, yrow);
                }
            });
    }
}

/// Direct filter gradient `dw = sum over pixels of cols^T · dy`, summed per fixed chunk of
/// [`ROWS_PER_CHUNK`] output rows, then over chunks in order.
///
/// `x`: `[n, h, w, c]`, `dy`: `[n, oh, ow, oc]`, `dw`: `[kh, kw, c, oc]` (overwritten). The caller
/// checks [`applies`].
pub(crate) fn backward_filter<T: Float>(isa: Isa, g: &Conv2dGeom, x: &[T], dy: &[T], dw: &mut [T]) {
    debug_assert!(applies(g));
    debug_assert_eq!(dw.len(), g.filter_len());
    let k = g.kh * g.kw * g.c;
    let ocp = round_up(g.oc, NB);
    let rows = g.n * g.oh;
    let chunks = rows.div_ceil(ROWS_PER_CHUNK);
    let part_len = k * ocp;
    let mut parts = vec![T::zero(); chunks * part_len];
    let run = |bufs: &mut (Vec<T>, Vec<T>), ci: usize, part: &mut [T]| {
        let r0 = ci * ROWS_PER_CHUNK;
        let nr = ROWS_PER_CHUNK.min(rows - r0);
        let (cols, dyp) = bufs;
        match isa {
            Isa::Portable => bwd_filter_chunk_portable(g, x, dy, ocp, r0, nr, cols, dyp, part),
            // SAFETY: `isa` is only Avx2/Avx512 when `detect_isa` found the feature on this CPU.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { bwd_filter_chunk_avx2(g, x, dy, ocp, r0, nr, cols, dyp, part) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe {
                bwd_filter_chunk_avx512(g, x, dy, ocp, r0, nr, cols, dyp, part)
            },
        }
    };
    let new_bufs = || {
        (
            vec![T::zero(); g.ow * k],
            vec![T::zero(); if ocp == g.oc { 0 } else { g.ow * ocp }],
        )
    };
    let work = g.output_len().saturating_mul(k);
    if work < PAR_MIN_WORK || rayon::current_num_threads() == 1 || chunks == 1 {
        let mut bufs = new_bufs();
        for (ci, part) in parts.chunks_exact_mut(part_len).enumerate() {
            run(&mut bufs, ci, part);
        }
    } else {
        parts
            .par_chunks_exact_mut(part_len)
            .enumerate()
            .for_each_init(new_bufs, |bufs, (ci, part)| run(bufs, ci, part));
    }
    // Sum the partials in chunk order.
    let (first, rest) = parts.split_at_mut(part_len);
    for p in rest.chunks_exact(part_len) {
        for (a, &b) in first.iter_mut().zip(p) {
            *a += b;
        }
    }
    for (dst, src) in dw.chunks_exact_mut(g.oc).zip(first.chunks_exact(ocp)) {
        dst.copy_from_slice(&src[..g.oc]);
    }
}
