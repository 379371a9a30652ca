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
//! sequence of operations in the same order in all three, so they agree bit for bit (tested):
//! one fused multiply-add per product (`mul_add`: `vfmadd` on AVX2/AVX-512, the correctly
//! rounded `fma` of the target elsewhere), in the forward pass and in the backward-filter pass
//! (since the fourteenth session; separate multiplies and adds before).

#[cfg(test)]
use crate::kernels::conv::DySlice;
use crate::kernels::conv::{Conv2dGeom, DyRows};
use crate::kernels::conv_direct_fwd::FastFwd;
use crate::kernels::Float;
use rayon::prelude::*;

/// Largest reduction length `kh*kw*c` the direct kernels take.
pub(crate) const DIRECT_MAX_K: usize = 32;
/// Output channels per register block (one 512-bit vector of f32).
const NB: usize = 16;
/// Output channels per register block of the AVX-512 backward-filter pass.
const NB2: usize = 2 * NB;
/// Output pixels per register block.
const PIX: usize = 4;
/// Taps per register block in the backward-filter pass.
const KB: usize = 4;
/// Output rows per chunk of the backward-filter reduction (fixed: never depends on threads).
pub(crate) const ROWS_PER_CHUNK: usize = 16;
/// Output rows per parallel task of the forward pass.
const ROWS_PER_TASK: usize = 4;
/// Below this many multiply-adds a pass stays on the calling thread.
const PAR_MIN_WORK: usize = 1 << 17;

/// Instruction set a kernel body is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// Plain Rust (whatever the compile target enables).
    Portable,
    /// AVX2 + FMA (256-bit; `simd::Level::Avx2` requires both).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512F (512-bit).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The best instruction set this CPU supports, as the elementwise kernels' dispatch detected it
/// ([`simd::detected`](super::simd::detected)).
pub(crate) fn detect_isa() -> Isa {
    match super::simd::detected() {
        #[cfg(target_arch = "x86_64")]
        super::simd::Level::Avx512 => Isa::Avx512,
        #[cfg(target_arch = "x86_64")]
        super::simd::Level::Avx2 => Isa::Avx2,
        _ => Isa::Portable,
    }
}

/// Every instruction set the direct kernels can run on this CPU, portable first (for the tests
/// that compare them bit for bit; [`simd::available`](super::simd::available) mapped).
#[cfg(test)]
pub(crate) fn available_isas() -> Vec<Isa> {
    super::simd::available()
        .into_iter()
        .map(|l| match l {
            #[cfg(target_arch = "x86_64")]
            super::simd::Level::Avx512 => Isa::Avx512,
            #[cfg(target_arch = "x86_64")]
            super::simd::Level::Avx2 => Isa::Avx2,
            _ => Isa::Portable,
        })
        .collect()
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

/// Per-call tables of the direct kernels: the padded-row layout and each tap's offset in it.
pub(crate) struct Taps {
    /// Length of one padded input row (`wpad * c`), covering input columns `-pad_left..`.
    prow: usize,
    /// Offset of tap `kk = (ky*kw + kx)*c + ci` in the `kh` padded rows: `ky*prow + kx*dw*c + ci`.
    off: Vec<usize>,
}

impl Taps {
    fn new(g: &Conv2dGeom) -> Taps {
        let wpad = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
        let prow = wpad * g.c;
        let mut off = Vec::with_capacity(g.kh * g.kw * g.c);
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                for ci in 0..g.c {
                    off.push(ky * prow + kx * g.dw * g.c + ci);
                }
            }
        }
        Taps { prow, off }
    }
}

/// Copies the `kh` input rows that output row `oy` of image `x_img` reads into `rows` (`kh`
/// padded rows of `taps.prow`), with zeros for padding: input column `ix` lands at
/// `(ix + pad_left) * c`.
#[inline(always)]
fn gather_rows<T: Float>(g: &Conv2dGeom, taps: &Taps, x_img: &[T], oy: usize, rows: &mut [T]) {
    let c = g.c;
    let row_len = g.w * c;
    for (ky, dst) in rows.chunks_exact_mut(taps.prow).enumerate() {
        let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
        if iy < 0 || iy >= g.h as isize {
            dst.fill(T::zero());
            continue;
        }
        let src = &x_img[iy as usize * row_len..(iy as usize + 1) * row_len];
        // Padded column j is input column j - pad_left.
        let lead = g.pad_left.min(dst.len() / c);
        let avail = g.w.min(dst.len() / c - lead);
        dst[..lead * c].fill(T::zero());
        dst[lead * c..(lead + avail) * c].copy_from_slice(&src[..avail * c]);
        dst[(lead + avail) * c..].fill(T::zero());
    }
}

/// One register block: `PP` output pixels starting at padded offset `pix0` (pixel `p` reads
/// `rows[pix0 + p*sw*c + off[kk]]`) times output channels `ob..ob+NB` of the padded filter,
/// written to `out` (`PP` pixels of `oc` channels) with the epilogue.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fwd_block<T: Float, const PP: usize>(
    rows: &[T],
    off: &[usize],
    pix0: usize,
    pstep: usize,
    wp: &[T],
    ocp: usize,
    oc: usize,
    ob: usize,
    bias: Option<&[T; NB]>,
    relu: bool,
    out: &mut [T],
) {
    let mut acc = [[T::zero(); NB]; PP];
    for (kk, &o) in off.iter().enumerate() {
        let wrow: &[T; NB] = wp[kk * ocp + ob..kk * ocp + ob + NB]
            .try_into()
            .expect("NB-wide filter row");
        for (p, accp) in acc.iter_mut().enumerate() {
            let a = rows[pix0 + p * pstep + o];
            for j in 0..NB {
                // One rounding per tap (`fma`), as the AVX2/AVX-512 kernels' `vfmadd`.
                accp[j] = a.mul_add(wrow[j], accp[j]);
            }
        }
    }
    let nv = NB.min(oc - ob);
    let zero = T::zero();
    for (p, accp) in acc.iter_mut().enumerate() {
        if let Some(b) = bias {
            for j in 0..NB {
                accp[j] += b[j];
            }
        }
        if relu {
            for v in accp.iter_mut() {
                *v = if *v > zero { *v } else { zero };
            }
        }
        let at = p * oc + ob;
        if nv == NB {
            out[at..at + NB].copy_from_slice(accp);
        } else {
            out[at..at + nv].copy_from_slice(&accp[..nv]);
        }
    }
}

/// Output row `r` (`image*oh + oy`) of the forward pass into `yrow` (`ow*oc`). `bias` is padded
/// to `ocp` (or empty for none).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fwd_row_body<T: Float>(
    g: &Conv2dGeom,
    taps: &Taps,
    x: &[T],
    wp: &[T],
    ocp: usize,
    r: usize,
    rows: &mut [T],
    yrow: &mut [T],
    bias: &[T],
    relu: bool,
) {
    let oc = g.oc;
    let img_in = g.h * g.w * g.c;
    let (img, oy) = (r / g.oh, r % g.oh);
    gather_rows(g, taps, &x[img * img_in..(img + 1) * img_in], oy, rows);
    let pstep = g.sw * g.c;
    for ob in (0..ocp).step_by(NB) {
        let b: Option<&[T; NB]> = if bias.is_empty() {
            None
        } else {
            Some(bias[ob..ob + NB].try_into().expect("NB-wide bias"))
        };
        let mut ox = 0;
        while ox + PIX <= g.ow {
            fwd_block::<T, PIX>(
                rows,
                &taps.off,
                ox * pstep,
                pstep,
                wp,
                ocp,
                oc,
                ob,
                b,
                relu,
                &mut yrow[ox * oc..],
            );
            ox += PIX;
        }
        while ox < g.ow {
            fwd_block::<T, 1>(
                rows,
                &taps.off,
                ox * pstep,
                pstep,
                wp,
                ocp,
                oc,
                ob,
                b,
                relu,
                &mut yrow[ox * oc..],
            );
            ox += 1;
        }
    }
}

/// One chunk of the backward-filter reduction: output rows `r0..r0+nrows`, summed into `part`
/// (`[K, ocp]`, overwritten).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bwd_filter_chunk_body<T: Float, D: DyRows<T>>(
    g: &Conv2dGeom,
    taps: &Taps,
    x: &[T],
    dy: &D,
    ocp: usize,
    r0: usize,
    nrows: usize,
    rows: &mut [T],
    dyp: &mut [T],
    part: &mut [T],
    wide: bool,
) {
    let k = taps.off.len();
    let ow = g.ow;
    let img_in = g.h * g.w * g.c;
    let pstep = g.sw * g.c;
    part.fill(T::zero());
    for r in r0..r0 + nrows {
        let (img, oy) = (r / g.oh, r % g.oh);
        gather_rows(g, taps, &x[img * img_in..(img + 1) * img_in], oy, rows);
        let dyr: &[T] = dy.row_padded(g, r, ocp, dyp);
        let mut kb = 0;
        // 3x3 taps over one channel (k = 9): three blocks of 3 taps rather than 4 + 4 + 1 (a
        // lone tap leaves too few independent accumulators to hide the add latency).
        if !k.is_multiple_of(KB) && k.is_multiple_of(3) {
            while kb + 3 <= k {
                bwd_filter_taps::<T, 3>(
                    wide,
                    rows,
                    &taps.off[kb..kb + 3],
                    pstep,
                    kb,
                    dyr,
                    ocp,
                    ow,
                    part,
                );
                kb += 3;
            }
        }
        while kb + KB <= k {
            bwd_filter_taps::<T, KB>(
                wide,
                rows,
                &taps.off[kb..kb + KB],
                pstep,
                kb,
                dyr,
                ocp,
                ow,
                part,
            );
            kb += KB;
        }
        while kb < k {
            bwd_filter_taps::<T, 1>(
                wide,
                rows,
                &taps.off[kb..kb + 1],
                pstep,
                kb,
                dyr,
                ocp,
                ow,
                part,
            );
            kb += 1;
        }
    }
}

/// Taps `kb..kb+QQ` of one row over all channel blocks: blocks of `2*NB` channels when `wide`
/// (AVX-512: twice the independent accumulators, one tap broadcast serving both), then of
/// [`NB`]. Every element sums the same products in the same order whatever the blocking.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bwd_filter_taps<T: Float, const QQ: usize>(
    wide: bool,
    rows: &[T],
    off: &[usize],
    pstep: usize,
    kb: usize,
    dyr: &[T],
    ocp: usize,
    ow: usize,
    part: &mut [T],
) {
    let mut ob = 0;
    if wide {
        while ob + NB2 <= ocp {
            bwd_filter_block::<T, QQ, NB2>(rows, off, pstep, kb, dyr, ocp, ob, ow, part);
            ob += NB2;
        }
    }
    while ob < ocp {
        bwd_filter_block::<T, QQ, NB>(rows, off, pstep, kb, dyr, ocp, ob, ow, part);
        ob += NB;
    }
}

/// `part[kb..kb+QQ, ob..ob+W] += A[:, kb..kb+QQ]^T · dyr[:, ob..ob+W]` over the `ow` pixels of
/// one row (pixel `ox`, tap `kb + q` reads `rows[ox*pstep + off[q]]`), in one register block of
/// `QQ` taps x `W` channels.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bwd_filter_block<T: Float, const QQ: usize, const W: usize>(
    rows: &[T],
    off: &[usize],
    pstep: usize,
    kb: usize,
    dyr: &[T],
    ocp: usize,
    ob: usize,
    ow: usize,
    part: &mut [T],
) {
    let off: &[usize; QQ] = off.try_into().expect("QQ tap offsets");
    let mut acc = [[T::zero(); W]; QQ];
    for (q, accq) in acc.iter_mut().enumerate() {
        accq.copy_from_slice(&part[(kb + q) * ocp + ob..(kb + q) * ocp + ob + W]);
    }
    if ow == 0 {
        return;
    }
    // Every read of the loop below is in bounds: the last pixel's reads are checked here, once.
    let max_off = off.iter().copied().max().unwrap_or(0);
    assert!((ow - 1) * pstep + max_off < rows.len() && (ow - 1) * ocp + ob + W <= dyr.len());
    for ox in 0..ow {
        // SAFETY: `ox*ocp + ob + W <= (ow-1)*ocp + ob + W <= dyr.len()` (asserted above).
        let d: &[T; W] = unsafe { &*(dyr.as_ptr().add(ox * ocp + ob) as *const [T; W]) };
        for (q, accq) in acc.iter_mut().enumerate() {
            // SAFETY: `ox*pstep + off[q] <= (ow-1)*pstep + max_off < rows.len()` (asserted above).
            let a = unsafe { *rows.get_unchecked(ox * pstep + off[q]) };
            for j in 0..W {
                accq[j] = a.mul_add(d[j], accq[j]);
            }
        }
    }
    for (q, accq) in acc.iter().enumerate() {
        part[(kb + q) * ocp + ob..(kb + q) * ocp + ob + W].copy_from_slice(accq);
    }
}

macro_rules! isa_variants {
    ($body:ident, $portable:ident, $avx2:ident, $avx512:ident, [$($gen:tt)*], ($($arg:ident: $ty:ty),*)) => {
        #[allow(clippy::too_many_arguments)]
        fn $portable<$($gen)*>($($arg: $ty),*) {
            $body($($arg),*)
        }
        /// # Safety
        /// The CPU must support AVX2 and FMA (`mul_add` is then one `vfmadd`).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx2<$($gen)*>($($arg: $ty),*) {
            $body($($arg),*)
        }
        /// # Safety
        /// The CPU must support AVX-512F (and FMA, which every AVX-512F CPU has).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx512<$($gen)*>($($arg: $ty),*) {
            $body($($arg),*)
        }
    };
}

isa_variants!(
    fwd_row_body,
    fwd_row_portable,
    fwd_row_avx2,
    fwd_row_avx512,
    [T: Float],
    (g: &Conv2dGeom, taps: &Taps, x: &[T], wp: &[T], ocp: usize, r: usize, rows: &mut [T], yrow: &mut [T], bias: &[T], relu: bool)
);

isa_variants!(
    bwd_filter_chunk_body,
    bwd_filter_chunk_portable,
    bwd_filter_chunk_avx2,
    bwd_filter_chunk_avx512,
    [T: Float, D: DyRows<T>],
    (g: &Conv2dGeom, taps: &Taps, x: &[T], dy: &D, ocp: usize, r0: usize, nrows: usize, rows: &mut [T], dyp: &mut [T], part: &mut [T], wide: bool)
);

/// The prepared forward pass of the direct kernel (padded filter and bias, tap table): computes
/// one output row at a time, so callers can consume rows while they are in cache (the fused
/// conv + max-pool kernel of `kernels::conv_pool`). Every element is computed exactly as
/// [`forward`] computes it.
pub(crate) struct FwdPlan<'a, T> {
    isa: Isa,
    g: &'a Conv2dGeom,
    x: &'a [T],
    /// The filter, when its columns need no padding.
    w: &'a [T],
    /// The filter padded to `ocp` columns (empty when `w` is used as is).
    padded: Vec<T>,
    ocp: usize,
    taps: Taps,
    bias: Vec<T>,
    relu: bool,
    /// The AVX-512 `f32` kernels of [`conv_direct_fwd`](super::conv_direct_fwd), when they take
    /// the call.
    fast: Option<FastFwd<'a>>,
}

impl<'a, T: Float> FwdPlan<'a, T> {
    /// Prepares the pass for `x` (`[n, h, w, c]`) and `w` (`[kh, kw, c, oc]`) on `isa` (which the
    /// CPU must support: take it from [`detect_isa`]). The caller checks [`applies`].
    pub(crate) fn new(
        isa: Isa,
        g: &'a Conv2dGeom,
        x: &'a [T],
        w: &'a [T],
        epi: Epilogue<'_, T>,
    ) -> Self {
        debug_assert!(applies(g));
        let k = g.kh * g.kw * g.c;
        let ocp = round_up(g.oc, NB);
        let padded = if ocp == g.oc {
            Vec::new()
        } else {
            padded_filter(w, k, g.oc, ocp)
        };
        let bias: Vec<T> = match epi.bias {
            Some(b) => {
                let mut v = vec![T::zero(); ocp];
                v[..g.oc].copy_from_slice(b);
                v
            }
            None => Vec::new(),
        };
        FwdPlan {
            isa,
            g,
            x,
            w,
            padded,
            ocp,
            taps: Taps::new(g),
            bias,
            relu: epi.relu,
            fast: FastFwd::new(isa, g, x, w, epi),
        }
    }

    /// The AVX-512 `f32` plan, when it takes this call (the fused 2x2 max-pool uses it whole).
    pub(crate) fn fast(&self) -> Option<&FastFwd<'a>> {
        self.fast.as_ref()
    }

    /// A scratch buffer for [`row`](Self::row) (one per thread).
    pub(crate) fn scratch(&self) -> Vec<T> {
        let len = match &self.fast {
            Some(f) => f.row_scratch_len(),
            None => self.g.kh * self.taps.prow,
        };
        vec![T::zero(); len]
    }

    /// Output row `r` (`image*oh + oy`) into `yrow` (`ow*oc`), with the epilogue.
    #[inline]
    pub(crate) fn row(&self, rows: &mut [T], r: usize, yrow: &mut [T]) {
        if let Some(f) = &self.fast {
            f.row(rows, r, yrow);
            return;
        }
        let wp = if self.padded.is_empty() {
            self.w
        } else {
            &self.padded[..]
        };
        let (g, taps, x, ocp) = (self.g, &self.taps, self.x, self.ocp);
        let (bias, relu) = (&self.bias[..], self.relu);
        match self.isa {
            Isa::Portable => fwd_row_portable(g, taps, x, wp, ocp, r, rows, yrow, bias, relu),
            // SAFETY: `isa` is only Avx2/Avx512 when `detect_isa` found the feature on this CPU.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { fwd_row_avx2(g, taps, x, wp, ocp, r, rows, yrow, bias, relu) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe {
                fwd_row_avx512(g, taps, x, wp, ocp, r, rows, yrow, bias, relu)
            },
        }
    }
}

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
    let plan = FwdPlan::new(isa, g, x, w, epi);
    let plan = &plan;
    let row_len = g.ow * g.oc;
    let work = g.output_len().saturating_mul(k);
    if work < PAR_MIN_WORK || rayon::current_num_threads() == 1 {
        let mut rows = plan.scratch();
        for (r, yrow) in y.chunks_exact_mut(row_len).enumerate() {
            plan.row(&mut rows, r, yrow);
        }
    } else {
        y.par_chunks_mut(row_len * ROWS_PER_TASK)
            .enumerate()
            .for_each_init(
                || plan.scratch(),
                |rows, (t, ys)| {
                    for (j, yrow) in ys.chunks_exact_mut(row_len).enumerate() {
                        plan.row(rows, t * ROWS_PER_TASK + j, yrow);
                    }
                },
            );
    }
}

/// Direct filter gradient `dw = sum over pixels of cols^T · dy`, summed per fixed chunk of
/// [`ROWS_PER_CHUNK`] output rows, then over chunks in order.
///
/// `x`: `[n, h, w, c]`, `dy`: `[n, oh, ow, oc]`, `dw`: `[kh, kw, c, oc]` (overwritten). The caller
/// checks [`applies`].
#[cfg(test)]
pub(crate) fn backward_filter<T: Float>(isa: Isa, g: &Conv2dGeom, x: &[T], dy: &[T], dw: &mut [T]) {
    debug_assert_eq!(dy.len(), g.output_len());
    backward_filter_rows(isa, g, x, &DySlice(dy), dw);
}

/// [`backward_filter`] reading the output gradient row by row from `dy` (a slice, or rows
/// expanded on the fly by `_FusedConv2DMaxPoolGrad`): the same chunks, the same arithmetic.
pub(crate) fn backward_filter_rows<T: Float, D: DyRows<T>>(
    isa: Isa,
    g: &Conv2dGeom,
    x: &[T],
    dy: &D,
    dw: &mut [T],
) {
    debug_assert!(applies(g));
    debug_assert_eq!(dw.len(), g.filter_len());
    let k = g.kh * g.kw * g.c;
    let ocp = round_up(g.oc, NB);
    let rows = g.n * g.oh;
    let chunks = rows.div_ceil(ROWS_PER_CHUNK);
    let part_len = k * ocp;
    let mut parts = vec![T::zero(); chunks * part_len];
    let taps = Taps::new(g);
    let taps = &taps;
    // AVX-512 or AVX2, f32: the register-blocked chunks of `conv_direct_filter` (the same sums
    // in the same order; `None` elsewhere or with `FF_CONV_DIRECT_FILTER[_AVX2]=off`).
    #[cfg(target_arch = "x86_64")]
    let fast = {
        use super::conv_direct_filter::FilterPlan;
        use super::simd::Level;
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => FilterPlan::new(Level::Avx512, g, x, dy.filter_dz(), ocp),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => FilterPlan::new(Level::Avx2, g, x, dy.filter_dz(), ocp),
            Isa::Portable => None,
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let fast: Option<super::conv_direct_filter::FilterPlan<'_>> = None;
    let fast = &fast;
    let run = |bufs: &mut (Vec<T>, Vec<T>), ci: usize, part: &mut [T]| {
        let r0 = ci * ROWS_PER_CHUNK;
        let nr = ROWS_PER_CHUNK.min(rows - r0);
        let (prows, dyp) = bufs;
        if let Some(plan) = fast {
            plan.chunk(r0, nr, prows, part);
            return;
        }
        match isa {
            Isa::Portable => {
                bwd_filter_chunk_portable(g, taps, x, dy, ocp, r0, nr, prows, dyp, part, false)
            }
            // SAFETY: `isa` is only Avx2/Avx512 when `detect_isa` found the feature on this CPU.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe {
                bwd_filter_chunk_avx2(g, taps, x, dy, ocp, r0, nr, prows, dyp, part, false)
            },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe {
                bwd_filter_chunk_avx512(g, taps, x, dy, ocp, r0, nr, prows, dyp, part, true)
            },
        }
    };
    let new_bufs = || {
        (
            vec![T::zero(); g.kh * taps.prow],
            vec![
                T::zero();
                if ocp == g.oc && !dy.expands() {
                    0
                } else {
                    g.ow * ocp
                }
            ],
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
