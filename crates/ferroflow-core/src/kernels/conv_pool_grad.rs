//! Backward pass of `Conv2D + bias [+ ReLU] + MaxPool` (disjoint windows, strides == window)
//! straight from the pooled gradient: filter gradient `dw`, bias gradient `db` and optionally the
//! input gradient `dx`, without the full-size `dz` in memory (`_FusedConv2DMaxPoolGrad`).
//!
//! The unfused chain is `dz = ReluGrad(MaxPoolGrad(c, pooled, dpooled), c)`, then
//! `BiasAddGrad(dz)`, `Conv2DBackpropFilter(x, dz)`, `Conv2DBackpropInput(dz, w)`. Here `dz` is
//! described by `(pooled, argmax, dpooled)`: in the window of pooled element `(n, py, px, o)`,
//! the element `argmax = i*pw + j` (the first maximum in row-major order, the one `MaxPoolGrad`
//! routes to) gets `dpooled` when `pooled > 0` (ReLU) or always (no ReLU); every other element,
//! rows/columns outside every window included, is `+0` — exactly the values the unfused ops write
//! (`MaxPoolGrad`'s disjoint path selects `dy` or 0, `ReluGrad` selects `g` or 0).
//!
//! The convolution kernels read `dz` through [`DyRows`]: the direct filter-gradient kernel
//! expands one output row at a time into its task's row buffer, the tiled filter gradient the few
//! rows of a tile, the tiled input gradient one image — each in cache, each inside the kernel's
//! own tiling, with the kernel's own arithmetic, so `dw` and `dx` are bit-identical to the
//! unfused ops on the expanded `dz` (and deterministic whatever the thread count). `db` follows
//! the `BiasAddGrad` kernel's order ([`crate::kernels::nn::bias_add_grad`]: blocks of 16
//! output rows summed from zero, partials added in block order) but reads only the
//! window elements of each row: the terms it skips are zeros, and adding a zero to a sum that
//! started at `+0` never changes it (such a sum is never `-0` under round-to-nearest).

use std::borrow::Cow;

use rayon::prelude::*;

use crate::kernels::conv::{
    conv2d_backward_filter_rows, conv2d_backward_input_rows, Conv2dGeom, DyRows,
};
use crate::kernels::parallel::PAR_THRESHOLD;
use crate::kernels::Float;

/// The pooled side of a fused `Conv2D + bias [+ ReLU] + MaxPool` forward pass and its gradient.
///
/// `pooled`, `argmax` and `dpooled` are `[n, oh / ph, ow / pw, oc]` (VALID pooling with
/// `strides == window`: the last `oh % ph` rows and `ow % pw` columns of the convolution output
/// belong to no window). `argmax` holds `i*pw + j`, the position inside its window of the element
/// the gradient is routed to (`ph*pw <= 256`).
#[derive(Clone, Copy, Debug)]
pub struct PoolGradSource<'a, T> {
    /// Pooling window `[ph, pw]` (also the strides).
    pub window: [usize; 2],
    /// Whether a ReLU sat between the bias and the pooling (then only `pooled > 0` passes).
    pub relu: bool,
    /// The pooled forward output.
    pub pooled: &'a [T],
    /// Position of each window's routed element.
    pub argmax: &'a [u8],
    /// Gradient of the pooled output.
    pub dpooled: &'a [T],
}

/// `dz` of one geometry, expanded on demand.
pub(crate) struct Expand<'a, T> {
    g: Conv2dGeom,
    ph: usize,
    pw: usize,
    qh: usize,
    qw: usize,
    src: PoolGradSource<'a, T>,
}

impl<'a, T: Float> Expand<'a, T> {
    /// The expansion of `src` for convolution `g`. The caller checks the lengths
    /// (`n*(oh/ph)*(ow/pw)*oc` each) and `1 <= ph*pw <= 256`.
    pub(crate) fn new(g: &Conv2dGeom, src: PoolGradSource<'a, T>) -> Self {
        let [ph, pw] = src.window;
        let (qh, qw) = (g.oh / ph, g.ow / pw);
        let len = g.n * qh * qw * g.oc;
        debug_assert!(ph >= 1 && pw >= 1 && ph * pw <= 256);
        debug_assert_eq!(src.pooled.len(), len);
        debug_assert_eq!(src.argmax.len(), len);
        debug_assert_eq!(src.dpooled.len(), len);
        Expand {
            g: *g,
            ph,
            pw,
            qh,
            qw,
            src,
        }
    }

    /// Writes output row `r` (`image*oh + oy`) of `dz` into `dst`, pixel `ox` at
    /// `dst[ox*stride..ox*stride + oc]` (other lanes untouched).
    #[inline(always)]
    fn write_row(&self, r: usize, dst: &mut [T], stride: usize) {
        let (oc, ow, oh) = (self.g.oc, self.g.ow, self.g.oh);
        let (pw, qw) = (self.pw, self.qw);
        let zero = T::zero();
        let (img, oy) = (r / oh, r % oh);
        let (py, i) = (oy / self.ph, oy % self.ph);
        if py >= self.qh {
            for ox in 0..ow {
                dst[ox * stride..ox * stride + oc].fill(zero);
            }
            return;
        }
        let base = (img * self.qh + py) * qw * oc;
        for px in 0..qw {
            let at = base + px * oc;
            let pv = &self.src.pooled[at..at + oc];
            let av = &self.src.argmax[at..at + oc];
            let dv = &self.src.dpooled[at..at + oc];
            for j in 0..pw {
                let t = (i * pw + j) as u8;
                let o = (px * pw + j) * stride;
                let out = &mut dst[o..o + oc];
                if self.src.relu {
                    for (((d, &a), &p), &g) in out.iter_mut().zip(av).zip(pv).zip(dv) {
                        *d = if (a == t) & (p > zero) { g } else { zero };
                    }
                } else {
                    for ((d, &a), &g) in out.iter_mut().zip(av).zip(dv) {
                        *d = if a == t { g } else { zero };
                    }
                }
            }
        }
        for ox in qw * pw..ow {
            dst[ox * stride..ox * stride + oc].fill(zero);
        }
    }

    /// Adds the `dz` terms of one window's columns in one row to `acc` (`oc` long): `dpooled`
    /// where `lo <= argmax < lo + n` (and `pooled > 0` under ReLU), else `+0` (see
    /// [`for_each_block_window`](Self::for_each_block_window)).
    #[inline(always)]
    fn add_window_terms(&self, at: usize, lo: usize, n: usize, acc: &mut [T]) {
        let oc = self.g.oc;
        let zero = T::zero();
        let (lo, n) = (lo as u8, n as u8);
        let pv = &self.src.pooled[at..at + oc];
        let av = &self.src.argmax[at..at + oc];
        let dv = &self.src.dpooled[at..at + oc];
        if self.src.relu {
            for (((s, &am), &p), &g) in acc.iter_mut().zip(av).zip(pv).zip(dv) {
                let hit = (am.wrapping_sub(lo) < n) & (p > zero);
                *s += if hit { g } else { zero };
            }
        } else {
            for ((s, &am), &g) in acc.iter_mut().zip(av).zip(dv) {
                *s += if am.wrapping_sub(lo) < n { g } else { zero };
            }
        }
    }

    /// The windows that pixels `p0..p1` (a `BiasAddGrad` block) meet, in pixel order: for each
    /// row piece of the block and each window `px` it meets, `f(at, lo, n)` with `at` the
    /// window's first element in the pooled arrays and its hits in this row's columns being
    /// `lo <= argmax < lo + n` (the columns `ja..ja + n` of the window inside the block, at
    /// index `lo = i*pw + ja` for window row `i`). Rows and columns in no window are skipped.
    #[inline(always)]
    fn for_each_block_window(&self, p0: usize, p1: usize, mut f: impl FnMut(usize, usize, usize)) {
        let (oc, ow, oh) = (self.g.oc, self.g.ow, self.g.oh);
        let (ph, pw, qh, qw) = (self.ph, self.pw, self.qh, self.qw);
        let mut p = p0;
        while p < p1 {
            let (r, a) = (p / ow, p % ow);
            let b = ow.min(a + (p1 - p));
            p += b - a;
            let (img, oy) = (r / oh, r % oh);
            let (py, i) = (oy / ph, oy % ph);
            if py >= qh || a >= qw * pw {
                continue;
            }
            let base = (img * qh + py) * qw * oc;
            let px_end = ((b - 1) / pw + 1).min(qw);
            for px in a / pw..px_end {
                let ja = a.max(px * pw) - px * pw;
                let jb = b.min(px * pw + pw) - px * pw;
                f(base + px * oc, i * pw + ja, jb - ja);
            }
        }
    }

    /// Pixels per block of the bias gradient (`BiasAddGrad`'s rows per block on `dz`'s
    /// `[n, oh, ow, oc]`: 16 output rows, the filter gradient's chunks).
    fn bias_per_block(&self) -> usize {
        let g = &self.g;
        crate::kernels::nn::bias_grad_rows_per_block(&[g.n, g.oh, g.ow, g.oc])
    }

    /// Block `bi` of the bias gradient (pixels `bi*per_block..`, see [`bias_grad`](Self::bias_grad))
    /// added to `acc` (`oc` long, `+0` on entry) in pixel order, on the best instruction set.
    fn bias_block(&self, bi: usize, acc: &mut [T]) {
        let per_block = self.bias_per_block();
        let pixels = self.g.n * self.g.oh * self.g.ow;
        let (p0, p1) = (bi * per_block, ((bi + 1) * per_block).min(pixels));
        match crate::kernels::simd::detected() {
            // SAFETY: `detected()` reports AVX-512 F/BW/DQ/VL only when the CPU has them.
            #[cfg(target_arch = "x86_64")]
            crate::kernels::simd::Level::Avx512 => unsafe {
                if !bias512::run(self, p0, p1, acc) {
                    bias_block_avx512(self, p0, p1, acc)
                }
            },
            // SAFETY: `detected()` reports AVX2 only when the CPU has AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            crate::kernels::simd::Level::Avx2 => unsafe { bias_block_avx2(self, p0, p1, acc) },
            _ => bias_block_body(self, p0, p1, acc),
        }
    }

    /// The bias gradient, in the order of [`crate::kernels::nn::bias_add_grad`] over `dz`.
    pub(crate) fn bias_grad(&self, db: &mut [T]) {
        let c = self.g.oc;
        let ow = self.g.ow;
        let pixels = self.g.n * self.g.oh * ow;
        db.fill(T::zero());
        if c == 0 || pixels == 0 {
            return;
        }
        let per_block = self.bias_per_block();
        let blocks = pixels.div_ceil(per_block);
        let block = |bi: usize| {
            let mut acc = vec![T::zero(); c];
            self.bias_block(bi, &mut acc);
            acc
        };
        let partial: Vec<Vec<T>> =
            if pixels * c < PAR_THRESHOLD || rayon::current_num_threads() == 1 {
                (0..blocks).map(block).collect()
            } else {
                (0..blocks).into_par_iter().map(block).collect()
            };
        for p in partial {
            for (o, v) in db.iter_mut().zip(p) {
                *o += v;
            }
        }
    }
}

/// Pixels `p0..p1` of one `BiasAddGrad` block, added to `acc` in pixel order.
#[inline(always)]
fn bias_block_body<T: Float>(e: &Expand<'_, T>, p0: usize, p1: usize, acc: &mut [T]) {
    e.for_each_block_window(p0, p1, |at, lo, n| e.add_window_terms(at, lo, n, acc));
}

/// [`bias_block_body`] compiled for AVX-512 (same operations, wider vectors).
///
/// # Safety
/// The CPU must support AVX-512 F and BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn bias_block_avx512<T: Float>(e: &Expand<'_, T>, p0: usize, p1: usize, acc: &mut [T]) {
    bias_block_body(e, p0, p1, acc)
}

/// Whether the intrinsics bias blocks ([`bias512`], [`bias2`]) are on (`FF_POOL_GRAD_BIAS` not
/// `off`/`0`; read once). Off: the portable body compiled for AVX-512 / AVX2 runs (the same
/// bits).
fn bias512_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    crate::kernels::env_switch::on(&ON, "FF_POOL_GRAD_BIAS")
}

/// [`bias_block_body`] for f32 with AVX-512 intrinsics: per row of a block, per window, the
/// window's argmax bytes, `dpooled` and (under ReLU) `pooled > 0` of up to 64 channels give a
/// lane mask of the hits in this row's columns, and `acc = acc + dpooled` on those lanes only.
/// The other lanes are left as they are, which is what adding the `+0` the body adds does (a
/// sum that started at `+0` is never `-0`), so the bits are the body's: every lane adds the
/// same non-zero terms in the same pixel order.
#[cfg(target_arch = "x86_64")]
mod bias512 {
    use std::arch::x86_64::*;

    use super::Expand;
    use crate::kernels::float::{same_mut, same_ref};
    use crate::kernels::Float;

    /// Runs the block `p0..p1` into `acc` (`oc` long) when `T` is f32 and the switch is on;
    /// returns whether it ran.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F/BW/VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn run<T: Float>(
        e: &Expand<'_, T>,
        p0: usize,
        p1: usize,
        acc: &mut [T],
    ) -> bool {
        if !super::bias512_enabled() {
            return false;
        }
        let (Some(pooled), Some(dpooled), Some(acc)) = (
            same_ref::<T, f32>(e.src.pooled),
            same_ref::<T, f32>(e.src.dpooled),
            same_mut::<T, f32>(acc),
        ) else {
            return false;
        };
        let oc = e.g.oc;
        let len = e.g.n * e.qh * e.qw * oc;
        assert!(
            pooled.len() == len
                && dpooled.len() == len
                && e.src.argmax.len() == len
                && acc.len() == oc
                && p1 <= e.g.n * e.g.oh * e.g.ow
        );
        let mut g0 = 0;
        while g0 < oc {
            let nv = (oc - g0).div_ceil(16).min(4);
            let src = (pooled, e.src.argmax, dpooled);
            // SAFETY: AVX-512 F/BW/VL (this function's features); lengths checked above,
            // `g0 < oc`.
            unsafe {
                match nv {
                    1 => group::<1, T>(e, src, g0, p0, p1, acc),
                    2 => group::<2, T>(e, src, g0, p0, p1, acc),
                    3 => group::<3, T>(e, src, g0, p0, p1, acc),
                    _ => group::<4, T>(e, src, g0, p0, p1, acc),
                }
            }
            g0 += 16 * nv;
        }
        true
    }

    /// Channels `g0..min(g0 + 16*NV, oc)` of the block.
    ///
    /// # Safety
    /// AVX-512 F/BW/VL; the three slices are `n*qh*qw*oc` long, `acc` is `oc` long, `g0 < oc`,
    /// `g0 + 16*(NV-1) < oc`, `p1 <= n*oh*ow`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn group<const NV: usize, T: Float>(
        e: &Expand<'_, T>,
        (pooled, argmax, dpooled): (&[f32], &[u8], &[f32]),
        g0: usize,
        p0: usize,
        p1: usize,
        acc: &mut [f32],
    ) {
        let g = &e.g;
        let oc = g.oc;
        let relu = e.src.relu;
        let masks: [u16; NV] = std::array::from_fn(|v| {
            let n = (oc - g0 - 16 * v).min(16);
            if n == 16 {
                u16::MAX
            } else {
                (1u16 << n) - 1
            }
        });
        let zero = _mm512_setzero_ps();
        // SAFETY: lanes below `oc - g0 - 16v` of `acc[g0 + 16v..]` are inside `acc`.
        let mut s: [__m512; NV] = std::array::from_fn(|v| unsafe {
            _mm512_maskz_loadu_ps(masks[v], acc.as_ptr().add(g0 + 16 * v))
        });
        e.for_each_block_window(p0, p1, |at, lo, n| {
            let at = at + g0;
            let lo = _mm_set1_epi8(lo as u8 as i8);
            let n = _mm_set1_epi8(n as u8 as i8);
            for v in 0..NV {
                let m = masks[v];
                // SAFETY: element `at + 16v` is inside the pooled arrays (`at` is a window's
                // first element plus `g0`, `g0 + 16v < oc`); only lanes below `oc` are read.
                unsafe {
                    let o = at + 16 * v;
                    // Full vectors with plain loads (masked loads are slower).
                    let full = m == u16::MAX;
                    let ap = argmax.as_ptr().add(o);
                    let am = if full {
                        _mm_loadu_si128(ap.cast::<__m128i>())
                    } else {
                        _mm_maskz_loadu_epi8(m, ap.cast::<i8>())
                    };
                    let mut hit = _mm_mask_cmplt_epu8_mask(m, _mm_sub_epi8(am, lo), n);
                    if relu {
                        let pp = pooled.as_ptr().add(o);
                        let pv = if full {
                            _mm512_loadu_ps(pp)
                        } else {
                            _mm512_maskz_loadu_ps(m, pp)
                        };
                        hit = _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(hit, pv, zero);
                    }
                    let dp = dpooled.as_ptr().add(o);
                    let d = if full {
                        _mm512_loadu_ps(dp)
                    } else {
                        _mm512_maskz_loadu_ps(m, dp)
                    };
                    s[v] = _mm512_mask_add_ps(s[v], hit, s[v], d);
                }
            }
        });
        for v in 0..NV {
            // SAFETY: as the loads above.
            unsafe { _mm512_mask_storeu_ps(acc.as_mut_ptr().add(g0 + 16 * v), masks[v], s[v]) };
        }
    }
}

/// [`bias_block_body`] on AVX2: the intrinsics of [`bias2`] for f32 with `oc % 8 == 0`, else
/// the body compiled for AVX2 (the same bits).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn bias_block_avx2<T: Float>(e: &Expand<'_, T>, p0: usize, p1: usize, acc: &mut [T]) {
    // SAFETY: AVX2 (this function's feature).
    if !unsafe { bias2::run(e, p0, p1, acc) } {
        bias_block_body(e, p0, p1, acc)
    }
}

/// [`bias_block_body`] for f32 with AVX2 intrinsics (`oc % 8 == 0`): per row of a block, per
/// window, 8 channels' argmax bytes (widened to `i32`), `dpooled` and (under ReLU)
/// `pooled > 0` give a lane mask of the hits in this row's columns, and `acc = acc + (hit ?
/// dpooled : +0)`: the body's operations lane for lane (the same `+0` terms too), so the same
/// bits. The switch `FF_POOL_GRAD_BIAS` turns it off as it does the AVX-512 blocks.
#[cfg(target_arch = "x86_64")]
mod bias2 {
    use std::arch::x86_64::*;

    use super::Expand;
    use crate::kernels::float::{same_mut, same_ref};
    use crate::kernels::Float;

    /// Runs the block `p0..p1` into `acc` (`oc` long) when `T` is f32, `oc % 8 == 0` and the
    /// switch is on; returns whether it ran.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn run<T: Float>(
        e: &Expand<'_, T>,
        p0: usize,
        p1: usize,
        acc: &mut [T],
    ) -> bool {
        let oc = e.g.oc;
        if !super::bias512_enabled() || !oc.is_multiple_of(8) {
            return false;
        }
        let (Some(pooled), Some(dpooled), Some(acc)) = (
            same_ref::<T, f32>(e.src.pooled),
            same_ref::<T, f32>(e.src.dpooled),
            same_mut::<T, f32>(acc),
        ) else {
            return false;
        };
        let len = e.g.n * e.qh * e.qw * oc;
        assert!(
            pooled.len() == len
                && dpooled.len() == len
                && e.src.argmax.len() == len
                && acc.len() == oc
                && p1 <= e.g.n * e.g.oh * e.g.ow
        );
        let mut g0 = 0;
        while g0 < oc {
            let nv = ((oc - g0) / 8).min(4);
            let src = (pooled, e.src.argmax, dpooled);
            // SAFETY: AVX2 (this function's feature); lengths checked above, `g0 + 8*nv <= oc`.
            unsafe {
                match nv {
                    1 => group::<1, T>(e, src, g0, p0, p1, acc),
                    2 => group::<2, T>(e, src, g0, p0, p1, acc),
                    3 => group::<3, T>(e, src, g0, p0, p1, acc),
                    _ => group::<4, T>(e, src, g0, p0, p1, acc),
                }
            }
            g0 += 8 * nv;
        }
        true
    }

    /// Channels `g0..g0 + 8*NV` of the block.
    ///
    /// # Safety
    /// AVX2; the three slices are `n*qh*qw*oc` long, `acc` is `oc` long, `g0 + 8*NV <= oc`,
    /// `p1 <= n*oh*ow`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn group<const NV: usize, T: Float>(
        e: &Expand<'_, T>,
        (pooled, argmax, dpooled): (&[f32], &[u8], &[f32]),
        g0: usize,
        p0: usize,
        p1: usize,
        acc: &mut [f32],
    ) {
        let relu = e.src.relu;
        let zero = _mm256_setzero_ps();
        // SAFETY: `acc[g0 + 8v..][..8]` is inside `acc` (`g0 + 8*NV <= oc`).
        let mut s: [__m256; NV] =
            std::array::from_fn(|v| unsafe { _mm256_loadu_ps(acc.as_ptr().add(g0 + 8 * v)) });
        e.for_each_block_window(p0, p1, |at, lo, n| {
            // Hits: `lo <= argmax < lo + n` (the body's `argmax - lo < n` on bytes).
            let (at, lo, hi) = (at + g0, lo as i32, (lo + n) as i32);
            let (lo, hi) = (_mm256_set1_epi32(lo - 1), _mm256_set1_epi32(hi));
            for (v, sv) in s.iter_mut().enumerate() {
                // SAFETY: elements `at + 8v..at + 8v + 8` are inside the pooled arrays (`at` is
                // a window's first element plus `g0`, `g0 + 8v + 8 <= oc`).
                unsafe {
                    let o = at + 8 * v;
                    let am = _mm256_cvtepu8_epi32(_mm_loadl_epi64(
                        argmax.as_ptr().add(o).cast::<__m128i>(),
                    ));
                    let mut hit = _mm256_castsi256_ps(_mm256_and_si256(
                        _mm256_cmpgt_epi32(am, lo),
                        _mm256_cmpgt_epi32(hi, am),
                    ));
                    if relu {
                        let pv = _mm256_loadu_ps(pooled.as_ptr().add(o));
                        hit = _mm256_and_ps(hit, _mm256_cmp_ps::<_CMP_GT_OQ>(pv, zero));
                    }
                    let d = _mm256_loadu_ps(dpooled.as_ptr().add(o));
                    *sv = _mm256_add_ps(*sv, _mm256_and_ps(hit, d));
                }
            }
        });
        for (v, sv) in s.iter().enumerate() {
            // SAFETY: as the loads above.
            unsafe { _mm256_storeu_ps(acc.as_mut_ptr().add(g0 + 8 * v), *sv) };
        }
    }
}

impl<T: Float> DyRows<T> for Expand<'_, T> {
    #[inline(always)]
    fn expands(&self) -> bool {
        true
    }
    #[inline(always)]
    fn rows<'a>(&'a self, g: &Conv2dGeom, r0: usize, nr: usize, buf: &'a mut Vec<T>) -> &'a [T] {
        let row = g.ow * g.oc;
        if buf.len() < nr * row {
            buf.resize(nr * row, T::zero());
        }
        for (j, dst) in buf.chunks_exact_mut(row).take(nr).enumerate() {
            self.write_row(r0 + j, dst, g.oc);
        }
        &buf[..nr * row]
    }
    #[inline(always)]
    fn row_padded<'a>(
        &'a self,
        _g: &Conv2dGeom,
        r: usize,
        ocp: usize,
        buf: &'a mut [T],
    ) -> &'a [T] {
        self.write_row(r, buf, ocp);
        buf
    }
    fn whole(&self, g: &Conv2dGeom) -> Cow<'_, [T]> {
        let mut out = vec![T::zero(); g.output_len()];
        let row = g.ow * g.oc;
        if row > 0 {
            for (r, dst) in out.chunks_exact_mut(row).enumerate() {
                self.write_row(r, dst, g.oc);
            }
        }
        Cow::Owned(out)
    }
    fn filter_dz(&self) -> Option<crate::kernels::conv_direct_filter::Dz<'_, T>> {
        Some(crate::kernels::conv_direct_filter::Dz::Pooled(self.src))
    }
}

/// Filter, bias and (when `dx` is given) input gradients of `maxpool(relu?(conv2d(x, w) + b))`
/// from the pooled gradient, bit-identical to `BiasAddGrad(dz)`, `Conv2DBackpropFilter(x, dz)`
/// and `Conv2DBackpropInput(dz, w)` on `dz = ReluGrad(MaxPoolGrad(..))` (see the module docs),
/// with `dz` expanded tile by tile inside each kernel instead of in full.
///
/// `x`: `[n, h, w, c]`, `w`: `[kh, kw, c, oc]`, `dw`: `[kh, kw, c, oc]`, `db`: `[oc]`,
/// `dx`: `[n, h, w, c]` (all overwritten). The caller checks the shapes (see
/// [`PoolGradSource`]).
pub fn conv2d_max_pool_backward<T: Float>(
    g: &Conv2dGeom,
    src: PoolGradSource<'_, T>,
    x: &[T],
    w: &[T],
    dw: &mut [T],
    db: &mut [T],
    dx: Option<&mut [T]>,
) {
    debug_assert_eq!(x.len(), g.input_len());
    debug_assert_eq!(w.len(), g.filter_len());
    debug_assert_eq!(dw.len(), g.filter_len());
    debug_assert_eq!(db.len(), g.oc);
    let e = Expand::new(g, src);
    if !filter_bias_one_pass(g, &e, x, dw, db) {
        conv2d_backward_filter_rows(g, x, &e, dw);
        e.bias_grad(db);
    }
    if let Some(dx) = dx {
        debug_assert_eq!(dx.len(), g.input_len());
        conv2d_backward_input_rows(g, &e, w, dx);
    }
}

/// Whether the one-pass filter + bias driver is on (`FF_POOL_GRAD_ONE_PASS` not `off`/`0`; read
/// once). Off: the filter gradient then the bias gradient, each over the whole pooled source
/// (the same bits).
fn one_pass_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    crate::kernels::env_switch::on(&ON, "FF_POOL_GRAD_ONE_PASS")
}

/// Below this many multiply-adds the one-pass driver stays on the calling thread.
const ONE_PASS_PAR_MIN_WORK: usize = 1 << 17;

/// `dw` and `db` in one pass over the pooled source where the direct filter kernel
/// ([`FilterPlan`](crate::kernels::conv_direct_filter::FilterPlan), AVX-512 or AVX2) takes the
/// geometry: each task computes one chunk of `conv_direct`'s filter reduction (its fixed
/// `ROWS_PER_CHUNK` output rows, with the same kernel) and the bias gradient's block of the same
/// rows (`BiasAddGrad`'s blocks on `dz` are those chunks): the AVX2 kernel sums it while it
/// expands the chunk's gradient, the AVX-512 one leaves it to [`Expand::bias_block`] while the
/// chunk's pooled rows are still in cache. The partials are then added in chunk order, exactly as
/// `conv_direct::backward_filter_rows` and [`Expand::bias_grad`] add them, so `dw` and `db` are
/// the bits of the two-pass path whatever the thread count. Returns `false` (nothing written)
/// where the kernel does not apply or with `FF_POOL_GRAD_ONE_PASS=off`.
fn filter_bias_one_pass<T: Float>(
    g: &Conv2dGeom,
    e: &Expand<'_, T>,
    x: &[T],
    dw: &mut [T],
    db: &mut [T],
) -> bool {
    use crate::kernels::conv_direct::{self, Isa, ROWS_PER_CHUNK};
    use crate::kernels::conv_direct_filter::FilterPlan;
    use crate::kernels::simd::Level;
    let level = match conv_direct::detect_isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Level::Avx512,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Level::Avx2,
        _ => return false,
    };
    if !one_pass_enabled() || !conv_direct::applies(g) || g.is_pointwise() {
        return false;
    }
    let oc = g.oc;
    let ocp = oc.div_ceil(16) * 16;
    let Some(plan) = FilterPlan::new(level, g, x, e.filter_dz(), ocp) else {
        return false;
    };
    let k = g.kh * g.kw * g.c;
    let rows = g.n * g.oh;
    if rows == 0 || dw.len() != k * oc || db.len() != oc {
        return false;
    }
    let chunks = rows.div_ceil(ROWS_PER_CHUNK);
    // `BiasAddGrad`'s blocks on `dz` are the filter reduction's chunks (16 output rows).
    if e.bias_per_block() != ROWS_PER_CHUNK * g.ow {
        return false;
    }
    let part_len = k * ocp;
    let mut parts = vec![T::zero(); chunks * part_len];
    let mut bparts = vec![T::zero(); chunks * oc];
    let items: Vec<_> = parts
        .chunks_exact_mut(part_len)
        .zip(bparts.chunks_exact_mut(oc))
        .enumerate()
        .map(|(ci, (part, bslot))| (ci, part, bslot))
        .collect();
    let plan = &plan;
    let run = |buf: &mut Vec<T>, (ci, part, bslot): (usize, &mut [T], &mut [T])| {
        let r0 = ci * ROWS_PER_CHUNK;
        // The AVX2 kernel sums the block while it expands the chunk's gradient.
        if !plan.chunk_with_bias(
            r0,
            ROWS_PER_CHUNK.min(rows - r0),
            buf,
            part,
            Some(&mut *bslot),
        ) {
            e.bias_block(ci, bslot);
        }
    };
    let new_buf = || vec![T::zero(); plan.rows_len()];
    let work = g.output_len().saturating_mul(k);
    if work < ONE_PASS_PAR_MIN_WORK || rayon::current_num_threads() == 1 || chunks == 1 {
        let mut buf = new_buf();
        for item in items {
            run(&mut buf, item);
        }
    } else {
        items.into_par_iter().for_each_init(new_buf, run);
    }
    // The filter partials in chunk order (as `conv_direct::backward_filter_rows`).
    let (head, tail) = parts.split_at_mut(part_len);
    for p in tail.chunks_exact(part_len) {
        for (a, &b) in head.iter_mut().zip(p) {
            *a += b;
        }
    }
    for (dst, src) in dw.chunks_exact_mut(oc).zip(head.chunks_exact(ocp)) {
        dst.copy_from_slice(&src[..oc]);
    }
    // The bias partials in block order (as [`Expand::bias_grad`]).
    db.fill(T::zero());
    for p in bparts.chunks_exact(oc) {
        for (o, &v) in db.iter_mut().zip(p) {
            *o += v;
        }
    }
    true
}

/// The full-size `dz` the fused backward never materialises (for references and benchmarks).
#[doc(hidden)]
pub fn expand_pool_grad<T: Float>(g: &Conv2dGeom, src: PoolGradSource<'_, T>) -> Vec<T> {
    Expand::new(g, src).whole(g).into_owned()
}

/// Diagnostics for `examples/conv1_filter_limits.rs` (not API): pieces of conv1's filter
/// gradient run on the calling thread alone, to separate the kernels' arithmetic from the
/// driver's overheads.
#[doc(hidden)]
pub mod probe {
    use super::{Expand, PoolGradSource};
    use crate::kernels::conv::Conv2dGeom;
    use crate::kernels::conv_direct::ROWS_PER_CHUNK;
    use crate::kernels::conv_direct_filter::{Dz, FilterPlan};

    fn chunks(g: &Conv2dGeom, x: &[f32], dz: Dz<'_, f32>, parts: &mut Vec<f32>) -> bool {
        let ocp = g.oc.div_ceil(16) * 16;
        let level = crate::kernels::simd::detected();
        let Some(plan) = FilterPlan::new(level, g, x, Some(dz), ocp) else {
            return false;
        };
        let k = g.kh * g.kw * g.c;
        let rows = g.n * g.oh;
        let chunks = rows.div_ceil(ROWS_PER_CHUNK);
        parts.resize(chunks * k * ocp, 0.0);
        let mut buf = vec![0f32; plan.rows_len()];
        for (ci, part) in parts.chunks_exact_mut(k * ocp).enumerate() {
            let r0 = ci * ROWS_PER_CHUNK;
            plan.chunk(r0, ROWS_PER_CHUNK.min(rows - r0), &mut buf, part);
        }
        true
    }

    /// Every chunk of the AVX-512 plain filter gradient on the calling thread, into `parts`
    /// (reused; no sum). `false` when the kernel does not take the call.
    pub fn chunks_plain(g: &Conv2dGeom, x: &[f32], dy: &[f32], parts: &mut Vec<f32>) -> bool {
        chunks(g, x, Dz::Slice(dy), parts)
    }

    /// The same for the pooled source of `_FusedConv2DMaxPoolGrad`.
    pub fn chunks_pooled(
        g: &Conv2dGeom,
        x: &[f32],
        src: PoolGradSource<'_, f32>,
        parts: &mut Vec<f32>,
    ) -> bool {
        chunks(g, x, Dz::Pooled(src), parts)
    }

    /// Every `BiasAddGrad` block of the pooled source on the calling thread into `parts`
    /// (reused; no sum).
    pub fn bias_blocks(g: &Conv2dGeom, src: PoolGradSource<'_, f32>, parts: &mut Vec<f32>) {
        let e = Expand::new(g, src);
        let pixels = g.n * g.oh * g.ow;
        let blocks = pixels.div_ceil(e.bias_per_block());
        parts.clear();
        parts.resize(blocks * g.oc, 0.0);
        for (bi, acc) in parts.chunks_exact_mut(g.oc).enumerate() {
            e.bias_block(bi, acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::{
        conv2d_backward_filter, conv2d_backward_input, conv2d_forward_fused,
    };
    use crate::kernels::conv_direct::{self as cd, Isa};
    use crate::kernels::nn::{bias_add_grad, bias_grad_rows_per_block};
    use crate::kernels::padding::Padding;
    use crate::kernels::pool::{max_pool2d_backward, Pool2dGeom};
    use crate::kernels::test_util::{grid_stream, unit_stream};

    /// Values on a coarse grid (multiples of 1/4 in [-1, 1]): many exact ties and zeros.
    fn grid_vec<T: Float>(len: usize, seed: u64) -> Vec<T> {
        grid_stream(seed).take(len).map(T::from_f64c).collect()
    }

    /// Uniform values in [-1, 1) with every fifth one zero.
    fn rand_vec<T: Float>(len: usize, seed: u64) -> Vec<T> {
        unit_stream(seed)
            .take(len)
            .enumerate()
            .map(|(i, u)| T::from_f64c(if i % 5 == 3 { 0.0 } else { u * 2.0 - 1.0 }))
            .collect()
    }

    fn bits<T: Float>(v: &[T]) -> Vec<u64> {
        v.iter().map(|x| x.to_f64c().to_bits()).collect()
    }

    /// Reference max-pool forward written here: VALID, strides == window, the FIRST maximum in
    /// row-major order wins (a later element only if strictly greater).
    fn ref_pool<T: Float>(g: &Conv2dGeom, c: &[T], ph: usize, pw: usize) -> (Vec<T>, Vec<u8>) {
        let (qh, qw, oc) = (g.oh / ph, g.ow / pw, g.oc);
        let mut pooled = Vec::new();
        let mut arg = Vec::new();
        for n in 0..g.n {
            for py in 0..qh {
                for px in 0..qw {
                    for o in 0..oc {
                        let at = |i: usize, j: usize| {
                            c[((n * g.oh + py * ph + i) * g.ow + px * pw + j) * oc + o]
                        };
                        let (mut best, mut bi) = (at(0, 0), 0usize);
                        for i in 0..ph {
                            for j in 0..pw {
                                if at(i, j) > best {
                                    best = at(i, j);
                                    bi = i * pw + j;
                                }
                            }
                        }
                        pooled.push(best);
                        arg.push(bi as u8);
                    }
                }
            }
        }
        (pooled, arg)
    }

    struct Case {
        input: [usize; 4],
        k: [usize; 2],
        oc: usize,
        st: [usize; 2],
        pad: Padding,
        win: [usize; 2],
    }

    fn cases() -> Vec<Case> {
        let c = |input, k, oc, st, pad, win| Case {
            input,
            k,
            oc,
            st,
            pad,
            win,
        };
        vec![
            // The seed CNN's conv1 and conv2 (direct and tiled paths).
            c([4, 28, 28, 1], [3, 3], 32, [1, 1], Padding::Valid, [2, 2]),
            c([3, 13, 13, 32], [3, 3], 64, [1, 1], Padding::Valid, [2, 2]),
            // Odd sizes (remainder rows/columns), SAME, stride 2, 3x3 pools, oc not a multiple of 16.
            c([2, 9, 11, 3], [3, 3], 10, [1, 1], Padding::Same, [2, 2]),
            c([2, 15, 14, 3], [3, 3], 10, [2, 2], Padding::Same, [3, 3]),
            c([3, 17, 13, 1], [3, 3], 64, [2, 1], Padding::Valid, [3, 2]),
            c([2, 12, 10, 32], [3, 3], 10, [2, 2], Padding::Same, [2, 3]),
            c([2, 11, 9, 32], [2, 2], 32, [1, 1], Padding::Valid, [3, 3]),
            c([2, 8, 8, 3], [1, 1], 10, [1, 1], Padding::Valid, [2, 2]),
        ]
    }

    /// The unfused chain on the kernels the ops call: MaxPoolGrad, ReluGrad's select,
    /// BiasAddGrad, the filter and input gradients.
    #[allow(clippy::type_complexity)]
    fn unfused<T: Float>(
        g: &Conv2dGeom,
        win: [usize; 2],
        relu: bool,
        x: &[T],
        w: &[T],
        c: &[T],
        dp: &[T],
    ) -> (Vec<T>, Vec<T>, Vec<T>) {
        let pg = Pool2dGeom::new([g.n, g.oh, g.ow, g.oc], win, win, Padding::Valid);
        let mut dz = vec![T::zero(); g.output_len()];
        if pg.oh > 0 && pg.ow > 0 {
            max_pool2d_backward(&pg, c, dp, &mut dz);
        }
        if relu {
            for (d, &cv) in dz.iter_mut().zip(c) {
                *d = if cv > T::zero() { *d } else { T::zero() };
            }
        }
        let db = bias_add_grad(
            &dz,
            g.oc,
            bias_grad_rows_per_block(&[g.n, g.oh, g.ow, g.oc]),
        );
        let mut dw = vec![T::zero(); g.filter_len()];
        conv2d_backward_filter(g, x, &dz, &mut dw);
        let mut dx = vec![T::zero(); g.input_len()];
        conv2d_backward_input(g, &dz, w, &mut dx);
        (dw, db, dx)
    }

    fn run_case<T: Float>(case: &Case, relu: bool, seed: u64, grid: bool) {
        let g = Conv2dGeom::new(case.input, case.k, case.oc, case.st, [1, 1], case.pad);
        let gen = |len, s| {
            if grid {
                grid_vec::<T>(len, s)
            } else {
                rand_vec::<T>(len, s)
            }
        };
        let x = gen(g.input_len(), seed);
        let w = gen(g.filter_len(), seed + 1);
        let b = gen(g.oc, seed + 2);
        let mut c = vec![T::zero(); g.output_len()];
        conv2d_forward_fused(&g, &x, &w, Some(&b), relu, &mut c);
        let (pooled, argmax) = ref_pool(&g, &c, case.win[0], case.win[1]);
        let dp = gen(pooled.len(), seed + 3);
        let (dw0, db0, dx0) = unfused(&g, case.win, relu, &x, &w, &c, &dp);
        let src = PoolGradSource {
            window: case.win,
            relu,
            pooled: &pooled,
            argmax: &argmax,
            dpooled: &dp,
        };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let mut dw = vec![T::nan(); g.filter_len()];
                    let mut db = vec![T::nan(); g.oc];
                    let mut dx = vec![T::nan(); g.input_len()];
                    conv2d_max_pool_backward(&g, src, &x, &w, &mut dw, &mut db, Some(&mut dx));
                    (dw, db, dx)
                })
        };
        for threads in [1, 2] {
            let (dw, db, dx) = run(threads);
            let what = format!("{:?} relu={relu} threads={threads}", g);
            assert_eq!(bits(&dw), bits(&dw0), "dw {what}");
            assert_eq!(bits(&db), bits(&db0), "db {what}");
            assert_eq!(bits(&dx), bits(&dx0), "dx {what}");
        }
    }

    #[test]
    fn fused_backward_matches_unfused_chain_bitwise() {
        for (i, case) in cases().iter().enumerate() {
            for relu in [true, false] {
                let seed = 100 + 10 * i as u64;
                run_case::<f32>(case, relu, seed, false);
                run_case::<f32>(case, relu, seed + 5, true);
                run_case::<f64>(case, relu, seed + 7, false);
            }
        }
    }

    /// The expansion writes exactly the unfused `dz`, zero rows/columns outside the windows.
    #[test]
    fn expansion_equals_max_pool_grad_then_relu_grad() {
        let g = Conv2dGeom::new([2, 11, 9, 3], [3, 3], 10, [1, 1], [1, 1], Padding::Same);
        let x = grid_vec::<f32>(g.input_len(), 1);
        let w = grid_vec::<f32>(g.filter_len(), 2);
        let mut c = vec![0f32; g.output_len()];
        conv2d_forward_fused(&g, &x, &w, None, true, &mut c);
        let (pooled, argmax) = ref_pool(&g, &c, 2, 2);
        let dp = grid_vec::<f32>(pooled.len(), 3);
        let pg = Pool2dGeom::new([g.n, g.oh, g.ow, g.oc], [2, 2], [2, 2], Padding::Valid);
        let mut want = vec![0f32; g.output_len()];
        max_pool2d_backward(&pg, &c, &dp, &mut want);
        for (d, &cv) in want.iter_mut().zip(&c) {
            *d = if cv > 0.0 { *d } else { 0.0 };
        }
        let src = PoolGradSource {
            window: [2, 2],
            relu: true,
            pooled: &pooled,
            argmax: &argmax,
            dpooled: &dp,
        };
        let got = expand_pool_grad(&g, src);
        assert_eq!(bits(&got), bits(&want));
        // The last row (oy = 10) and column (ox = 8) of every image belong to no window.
        for (i, &v) in got.iter().enumerate() {
            let (oy, ox) = ((i / g.oc / g.ow) % g.oh, (i / g.oc) % g.ow);
            if oy == 10 || ox == 8 {
                assert_eq!(v.to_bits(), 0, "element {i}");
            }
        }
    }

    /// The direct filter-gradient kernel reading expanded rows gives the same bits on every
    /// instruction set.
    #[test]
    fn direct_path_isas_agree_bitwise() {
        let isas = crate::kernels::conv_direct::available_isas();
        for (input, oc) in [([3, 28, 28, 1], 32), ([2, 15, 13, 3], 10)] {
            let g = Conv2dGeom::new(input, [3, 3], oc, [1, 1], [1, 1], Padding::Valid);
            assert!(cd::applies(&g));
            let x = rand_vec::<f32>(g.input_len(), 7);
            let w = rand_vec::<f32>(g.filter_len(), 8);
            let mut c = vec![0f32; g.output_len()];
            conv2d_forward_fused(&g, &x, &w, None, true, &mut c);
            let (pooled, argmax) = ref_pool(&g, &c, 2, 2);
            let dp = rand_vec::<f32>(pooled.len(), 9);
            let src = PoolGradSource {
                window: [2, 2],
                relu: true,
                pooled: &pooled,
                argmax: &argmax,
                dpooled: &dp,
            };
            let e = Expand::new(&g, src);
            let run = |isa| {
                let mut dw = vec![0f32; g.filter_len()];
                cd::backward_filter_rows(isa, &g, &x, &e, &mut dw);
                dw
            };
            let want = run(Isa::Portable);
            for &isa in &isas[1..] {
                assert_eq!(bits(&run(isa)), bits(&want), "{isa:?} {input:?}");
            }
        }
    }

    /// The bias-gradient blocks compiled for AVX-512 / AVX2 give the portable body's bits.
    #[test]
    fn bias_blocks_isas_agree_bitwise() {
        for relu in [true, false] {
            let g = Conv2dGeom::new([3, 17, 15, 1], [3, 3], 40, [1, 1], [1, 1], Padding::Same);
            let x = rand_vec::<f32>(g.input_len(), 17);
            let w = rand_vec::<f32>(g.filter_len(), 18);
            let mut c = vec![0f32; g.output_len()];
            conv2d_forward_fused(&g, &x, &w, None, relu, &mut c);
            let (pooled, argmax) = ref_pool(&g, &c, 3, 2);
            let dp = rand_vec::<f32>(pooled.len(), 19);
            let src = PoolGradSource {
                window: [3, 2],
                relu,
                pooled: &pooled,
                argmax: &argmax,
                dpooled: &dp,
            };
            let e = Expand::new(&g, src);
            let pixels = g.n * g.oh * g.ow;
            // Uneven ranges: blocks that start and end inside rows.
            for (p0, p1) in [(0, pixels), (7, 200), (33, 34), (100, pixels - 5)] {
                let mut want = vec![0f32; g.oc];
                bias_block_body(&e, p0, p1, &mut want);
                #[cfg(target_arch = "x86_64")]
                {
                    if std::is_x86_feature_detected!("avx2") {
                        let mut got = vec![0f32; g.oc];
                        // SAFETY: AVX2 detected just above.
                        unsafe { bias_block_avx2(&e, p0, p1, &mut got) };
                        assert_eq!(bits(&got), bits(&want));
                    }
                    if std::is_x86_feature_detected!("avx512f")
                        && std::is_x86_feature_detected!("avx512bw")
                    {
                        let mut got = vec![0f32; g.oc];
                        // SAFETY: AVX-512 F/BW detected just above.
                        unsafe { bias_block_avx512(&e, p0, p1, &mut got) };
                        assert_eq!(bits(&got), bits(&want));
                    }
                }
                // And the body equals a plain in-order sum over the expanded gradient.
                let dz = expand_pool_grad(&g, src);
                let mut plain = vec![0f32; g.oc];
                for px in p0..p1 {
                    for (s, &v) in plain.iter_mut().zip(&dz[px * g.oc..(px + 1) * g.oc]) {
                        *s += v;
                    }
                }
                assert_eq!(bits(&plain), bits(&want), "{p0}..{p1}");
            }
        }
    }

    /// The intrinsics bias blocks (AVX-512, or AVX2 where `oc % 8 == 0`) give the portable
    /// body's bits on channel counts of 1..=4 vectors, partial vectors and more than 64
    /// channels, windows 2x2 and 3x2, ReLU on and off, blocks that start and end inside rows and
    /// windows.
    #[test]
    fn intrinsics_bias_blocks_match_portable_body_bitwise() {
        use crate::kernels::simd::{detected, Level};
        let level = detected();
        if !matches!(level, Level::Avx512 | Level::Avx2) || !bias512_enabled() {
            eprintln!("skipped: no AVX2, or FF_POOL_GRAD_BIAS=off");
            return;
        }
        let mut ran = 0;
        let cases = [
            ([2, 28, 28, 1], 32, [2, 2], Padding::Valid),
            ([3, 17, 15, 1], 40, [3, 2], Padding::Same),
            ([2, 9, 11, 2], 7, [2, 2], Padding::Same),
            ([2, 8, 9, 1], 16, [2, 3], Padding::Valid),
            ([1, 10, 7, 3], 70, [2, 2], Padding::Same),
            ([2, 6, 6, 1], 64, [1, 1], Padding::Valid),
        ];
        for (ci, (input, oc, win, pad)) in cases.into_iter().enumerate() {
            for relu in [true, false] {
                let g = Conv2dGeom::new(input, [3, 3], oc, [1, 1], [1, 1], pad);
                let seed = 40 + 4 * ci as u64;
                let x = rand_vec::<f32>(g.input_len(), seed);
                let w = grid_vec::<f32>(g.filter_len(), seed + 1);
                let mut c = vec![0f32; g.output_len()];
                conv2d_forward_fused(&g, &x, &w, None, relu, &mut c);
                let (pooled, argmax) = ref_pool(&g, &c, win[0], win[1]);
                let dp = grid_vec::<f32>(pooled.len(), seed + 2);
                let src = PoolGradSource {
                    window: win,
                    relu,
                    pooled: &pooled,
                    argmax: &argmax,
                    dpooled: &dp,
                };
                let e = Expand::new(&g, src);
                let pixels = g.n * g.oh * g.ow;
                let ranges = [
                    (0, pixels),
                    (1, pixels - 1),
                    (g.ow + 1, 3 * g.ow - 1),
                    (5, 6),
                    (pixels / 2, pixels),
                ];
                for (p0, p1) in ranges {
                    let mut want = vec![0f32; g.oc];
                    bias_block_body(&e, p0, p1, &mut want);
                    let mut got = vec![0f32; g.oc];
                    let done = if level == Level::Avx512 {
                        // SAFETY: AVX-512 F/BW/VL detected above.
                        unsafe { bias512::run(&e, p0, p1, &mut got) }
                    } else {
                        // SAFETY: AVX2 detected above.
                        unsafe { bias2::run(&e, p0, p1, &mut got) }
                    };
                    assert_eq!(
                        done,
                        level == Level::Avx512 || g.oc.is_multiple_of(8),
                        "{g:?}"
                    );
                    if done {
                        ran += 1;
                        assert_eq!(bits(&got), bits(&want), "{g:?} relu={relu} {p0}..{p1}");
                    }
                }
            }
        }
        assert!(ran > 0);
    }

    /// The one-pass driver (filter chunk + the bias blocks ending in it, per task) gives the
    /// bits of the filter pass then the bias pass, on 1 and 2 threads — including bias blocks
    /// shorter than a chunk (several ending in one chunk) and chunks with none ending in them.
    #[test]
    fn one_pass_matches_two_passes_bitwise_on_1_and_2_threads() {
        let isa = cd::detect_isa();
        if isa == Isa::Portable || !one_pass_enabled() {
            eprintln!("skipped: no AVX2 or AVX-512, or FF_POOL_GRAD_ONE_PASS=off");
            return;
        }
        let cases = [
            ([4, 28, 28, 1], 32, [2, 2], Padding::Valid),
            ([3, 30, 32, 1], 40, [2, 2], Padding::Same),
            ([2, 9, 11, 3], 7, [3, 2], Padding::Same),
            ([2, 9, 11, 3], 24, [3, 3], Padding::Same),
            ([3, 19, 13, 1], 8, [2, 3], Padding::Valid),
            ([2, 40, 40, 1], 16, [2, 2], Padding::Valid),
            ([5, 13, 17, 2], 33, [2, 2], Padding::Valid),
        ];
        for (ci, (input, oc, win, pad)) in cases.into_iter().enumerate() {
            for relu in [true, false] {
                let g = Conv2dGeom::new(input, [3, 3], oc, [1, 1], [1, 1], pad);
                let seed = 70 + 4 * ci as u64;
                let x = rand_vec::<f32>(g.input_len(), seed);
                let w = rand_vec::<f32>(g.filter_len(), seed + 1);
                let mut c = vec![0f32; g.output_len()];
                conv2d_forward_fused(&g, &x, &w, None, relu, &mut c);
                let (pooled, argmax) = ref_pool(&g, &c, win[0], win[1]);
                let dp = if ci % 2 == 0 {
                    rand_vec::<f32>(pooled.len(), seed + 2)
                } else {
                    grid_vec::<f32>(pooled.len(), seed + 2)
                };
                let src = PoolGradSource {
                    window: win,
                    relu,
                    pooled: &pooled,
                    argmax: &argmax,
                    dpooled: &dp,
                };
                let e = Expand::new(&g, src);
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .expect("thread pool");
                    pool.install(|| {
                        let (mut dw2, mut db2) =
                            (vec![f32::NAN; g.filter_len()], vec![f32::NAN; oc]);
                        conv2d_backward_filter_rows(&g, &x, &e, &mut dw2);
                        e.bias_grad(&mut db2);
                        let (mut dw1, mut db1) =
                            (vec![f32::NAN; g.filter_len()], vec![f32::NAN; oc]);
                        // The AVX2 kernel takes `oc` multiples of 8 only.
                        let applies = isa == Isa::Avx512 || oc % 8 == 0;
                        let ran = filter_bias_one_pass(&g, &e, &x, &mut dw1, &mut db1);
                        assert_eq!(ran, applies, "{g:?}");
                        if !ran {
                            return;
                        }
                        let what = format!("{g:?} relu={relu} threads={threads}");
                        assert_eq!(bits(&dw1), bits(&dw2), "dw {what}");
                        assert_eq!(bits(&db1), bits(&db2), "db {what}");
                    });
                }
            }
        }
    }

    /// A pooled output with no windows (conv output smaller than the window) gives zeros.
    #[test]
    fn no_windows_gives_zero_gradients() {
        let g = Conv2dGeom::new([2, 3, 3, 1], [3, 3], 4, [1, 1], [1, 1], Padding::Valid);
        let x = rand_vec::<f64>(g.input_len(), 1);
        let w = rand_vec::<f64>(g.filter_len(), 2);
        let src = PoolGradSource {
            window: [2, 2],
            relu: false,
            pooled: &[],
            argmax: &[],
            dpooled: &[],
        };
        let (mut dw, mut db, mut dx) = (vec![f64::NAN; 36], vec![f64::NAN; 4], vec![f64::NAN; 18]);
        conv2d_max_pool_backward(&g, src, &x, &w, &mut dw, &mut db, Some(&mut dx));
        assert!(dw.iter().chain(&db).chain(&dx).all(|&v| v == 0.0));
    }
}
