//! Direct, register-blocked input gradient of a stride-1 convolution (NHWC input, HWIO filter):
//! `dx[n, iy, ix, ci] = sum over taps (ky, kx) and o of dz[n, oy, ox, o] * w[ky, kx, ci, o]`
//! with `oy = iy + pad_top - ky*dh`, `ox = ix + pad_left - kx*dw`, over the taps whose `(oy, ox)`
//! lies inside the output (`Conv2DBackpropInput`).
//!
//! The im2col formulation (`dz · wᵀ` into a column matrix, then col2im) writes and re-reads a
//! column matrix `kh*kw` times the size of `dx`; here each `dx` element is summed in registers.
//!
//! * Pixel classes: along a row the valid `kx` taps of input column `ix` form a range
//!   that only changes near the borders, likewise `ky` for input row `iy`; the input is cut into
//!   rectangles of pixels sharing one tap set (row runs x column runs), so a register block of
//!   pixels never computes a tap outside the output (no padding work, no per-pixel tests).
//! * [`Kind::Channels`] (`c >= 16`, e.g. the seed CNN's conv2, 32 input channels): vectors along
//!   `ci` (up to 2 x 16 lanes), `dz` values broadcast; a block of up to [`PMAX_C`] pixels x 2
//!   vectors of accumulators; the filter is repacked once per call as `[tap][o][ci]`.
//! * [`Kind::Outputs`] (`c < 16`, `oc >= 16`, e.g. conv1 over one channel): vectors along `o`
//!   (`dz` rows are contiguous in `o`), a block of up to [`PMAX_O`] pixels, then each pixel's 16
//!   lane partial sums are added by a fixed halving tree ([`tree16`]). Filter repacked as
//!   `[tap][ci][o]`.
//!
//! Order of the arithmetic (the same in every body): [`Kind::Channels`]: `acc = 0`, then for each
//! valid tap in `(ky, kx)` order, for `o` ascending, `acc = fma(dz, w, acc)` (one rounding:
//! `mul_add`, `vfmadd` in the intrinsics; a separate multiply and add until the fourteenth
//! session). [`Kind::Outputs`]: lane `l` sums the same way over the taps
//! then the 16-wide chunks `o = 16*j + l`, then [`tree16`]. Blocking never changes an element's
//! operations, so the AVX-512 intrinsics body, the portable body compiled for AVX2 and the plain
//! portable body agree bit for bit, and so do 1 and N threads (each element is written by one
//! task). With finite filters the result equals the sum over the valid taps exactly as the
//! im2col path computes it up to rounding order (it is tested against an f64 reference).
//!
//! Work is cut into tasks of whole input rows; each task reads the `dz` rows it needs through
//! [`DyRows::rows`] (borrowed, or expanded by `_FusedConv2DMaxPoolGrad`), so the fused op and
//! `Conv2DBackpropInput` on the expanded `dz` run the same arithmetic.
//!
//! `FF_CONV_BWD_INPUT=off` (or `0`), read once per process, sends every geometry back to the
//! im2col path (for A/B measurements).

use std::any::TypeId;
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::kernels::conv::{Conv2dGeom, DyRows};
use crate::kernels::conv_direct::Isa;
use crate::kernels::simd::{self, Level};
use crate::kernels::{env_switch, Float};

/// Lanes of one vector (512-bit f32).
const LANES: usize = 16;
/// Most pixels per register block of the channel kernel (x 2 vectors of accumulators).
const PMAX_C: usize = 12;
const _: () = assert!(PMAX_C <= PMAX_O);
/// Most pixels per register block of the output-channel kernel (one accumulator each).
const PMAX_O: usize = 12;
/// Below this many multiply-adds the pass stays on the calling thread.
const PAR_MIN_WORK: usize = 1 << 17;
/// Tasks the batch is cut into at least (when it has enough rows).
const MIN_TASKS: usize = 16;

/// Which direct kernel computes a geometry's input gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Vectors along input channels (`c >= 16`).
    Channels,
    /// Vectors along output channels (`c < 16`, `oc >= 16`), then a tree sum per pixel.
    Outputs,
}

/// Whether the direct kernels are switched on (`FF_CONV_BWD_INPUT` unset or anything but
/// `off`/`0`; read once per process).
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    env_switch::on(&ON, "FF_CONV_BWD_INPUT")
}

/// The direct kernel for this geometry, if one applies (a pure function of the geometry, apart
/// from the process-wide `FF_CONV_BWD_INPUT` switch and the CPU): stride 1 (any dilation and
/// padding), non-degenerate sizes, not a 1x1 pointwise convolution (that one is a plain GEMM), and
/// `16 <= c <= 128` ([`Kind::Channels`]) or `c < 16` with `16 <= oc <= 512` ([`Kind::Outputs`]).
///
/// On AVX-512 CPUs for every element type. On AVX2 CPUs only [`Kind::Outputs`] for `f32`, which
/// has the AVX2 intrinsics bodies of [`avx2`] (switch `FF_CONV_BWD_INPUT_AVX2`, off: the tiled
/// path): conv1 of the seed CNN, b32 0.46 -> 0.35 ms, b128 2.3 -> 1.6 ms (Zen 3, A/B by the
/// switch, alternated processes, medians).
/// Their [`Kind::Channels`] body measured no faster than the tiled path (conv2 b32: 3.4 against
/// 4.0 ms, b128: 12.0 against 12.1 ms), and the portable bodies compiled for AVX2, which `f64`
/// would run, 5-10x slower (conv2 b32: 12.7 ms against 1.2-5.5 ms; conv1: 6.3 against 1.2 ms),
/// so the tiled im2col + GEMM path keeps those.
pub(crate) fn kind<T: Float>(g: &Conv2dGeom) -> Option<Kind> {
    if !enabled() {
        return None;
    }
    match simd::detected() {
        Level::Avx512 => kind_of(g),
        Level::Avx2 if TypeId::of::<T>() == TypeId::of::<f32>() && avx2_enabled() => {
            kind_of(g).filter(|&k| k == Kind::Outputs)
        }
        _ => None,
    }
}

/// Whether the AVX2 intrinsics bodies take `f32` [`Kind::Outputs`] geometries on CPUs without
/// AVX-512 (`FF_CONV_BWD_INPUT_AVX2` unset or anything but `off`/`0`; read once per process).
/// Off: those go to the tiled im2col + GEMM path, as before.
pub(crate) fn avx2_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    env_switch::on(&ON, "FF_CONV_BWD_INPUT_AVX2")
}

/// [`kind`] without the environment switch.
pub(crate) fn kind_of(g: &Conv2dGeom) -> Option<Kind> {
    if g.sh != 1
        || g.sw != 1
        || g.n == 0
        || g.h == 0
        || g.w == 0
        || g.c == 0
        || g.oc == 0
        || g.oh == 0
        || g.ow == 0
        || g.kh == 0
        || g.kw == 0
        || g.is_pointwise()
    {
        return None;
    }
    if (16..=128).contains(&g.c) {
        Some(Kind::Channels)
    } else if g.c < 16 && (16..=512).contains(&g.oc) {
        Some(Kind::Outputs)
    } else {
        None
    }
}

#[inline(always)]
fn round_up(v: usize, m: usize) -> usize {
    v.div_ceil(m) * m
}

/// The halving tree that adds a pixel's 16 lane partial sums: `s8[i] = l[i] + l[i+8]`,
/// `s4[i] = s8[i] + s8[i+4]`, `s2[i] = s4[i] + s4[i+2]`, result `s2[0] + s2[1]`.
#[inline(always)]
fn tree16<T: Float>(l: &[T; LANES]) -> T {
    let mut s8 = [T::zero(); 8];
    for i in 0..8 {
        s8[i] = l[i] + l[i + 8];
    }
    let mut s4 = [T::zero(); 4];
    for i in 0..4 {
        s4[i] = s8[i] + s8[i + 4];
    }
    let s2 = [s4[0] + s4[2], s4[1] + s4[3]];
    s2[0] + s2[1]
}

/// Valid tap range `[lo, hi)` along one axis for input position `i`: taps `k` with
/// `0 <= i + pad - k*d < out`.
#[inline]
fn tap_range(i: usize, pad: usize, d: usize, taps: usize, out: usize) -> (usize, usize) {
    let t = i + pad;
    let lo = if t + 1 > out {
        (t + 1 - out).div_ceil(d)
    } else {
        0
    };
    let hi = (t / d + 1).min(taps);
    (lo.min(hi), hi)
}

/// Runs of consecutive positions `0..size` with the same tap range: `(start, end, lo, hi)`.
fn runs(
    size: usize,
    pad: usize,
    d: usize,
    taps: usize,
    out: usize,
) -> Vec<(usize, usize, usize, usize)> {
    let mut v: Vec<(usize, usize, usize, usize)> = Vec::new();
    for i in 0..size {
        let (lo, hi) = tap_range(i, pad, d, taps, out);
        match v.last_mut() {
            Some(r) if r.2 == lo && r.3 == hi => r.1 = i + 1,
            _ => v.push((i, i + 1, lo, hi)),
        }
    }
    v
}

/// What a block kernel reads: the task's `dz` rows and the repacked filter, with the tap list
/// of the block's class.
pub(crate) struct BlockCtx<'a, T> {
    /// The task's `dz` rows (pixel stride `oc`).
    dz: &'a [T],
    /// Per tap of the class: offset subtracted from a pixel's base to reach its `dz` pixel.
    toffs: &'a [usize],
    /// Per tap of the class: its index `ky*kw + kx` in the repacked filter.
    taps: &'a [usize],
    /// Repacked filter: `[tap][o][cp]` ([`Kind::Channels`]) or `[tap][ci][ocp]` ([`Kind::Outputs`]).
    wr: &'a [T],
    /// Output channels.
    oc: usize,
    /// Input channels.
    c: usize,
    /// Padded width of the repacked filter's rows (`cp` or `ocp`, a multiple of 16).
    wp: usize,
    /// Smallest and largest entry of `toffs`, largest of `taps` (for the bounds checks).
    toff_min: usize,
    /// See `toff_min`.
    toff_max: usize,
    /// See `toff_min`.
    tap_max: usize,
    /// [`Kind::Outputs`]: the `(tap, 16-wide o chunk)` steps in order, flattened: `dz` offset
    /// from a pixel's base (`16*j - toff`), filter offset for `ci = 0` (`tap*c*wp + 16*j`) and
    /// the lane mask of the chunk (`o < oc`).
    steps: &'a [(isize, usize, u16)],
}

/// The register-blocked micro-kernels of one instruction set.
trait Micro<T: Float>: Sync {
    /// Most pixels per register block for `kind` with `c` input channels (at most
    /// [`PMAX_O`]; blocking never changes the arithmetic).
    fn pmax(&self, kind: Kind, _c: usize) -> usize {
        match kind {
            Kind::Channels => PMAX_C,
            Kind::Outputs => PMAX_O,
        }
    }
    /// [`Kind::Channels`]: channels `ci0..ci0+nvalid` (`nvalid <= 16*V`) of `P` pixels with
    /// `dz` bases `bases` written at `dx[douts[p] + ci0..]`.
    fn chan<const P: usize, const V: usize>(
        &self,
        cx: &BlockCtx<'_, T>,
        ci0: usize,
        nvalid: usize,
        bases: &[usize; P],
        douts: &[usize; P],
        dx: &mut [T],
    );
    /// [`Kind::Outputs`]: all `c` channels of `P` pixels.
    fn outs<const P: usize>(
        &self,
        cx: &BlockCtx<'_, T>,
        bases: &[usize; P],
        douts: &[usize; P],
        dx: &mut [T],
    );
    /// [`Kind::Outputs`] with [`Plan::fast3`]: a whole band by the 3x3 row kernel, if this body
    /// has one (returns whether it ran; the portable bodies have none).
    #[allow(clippy::too_many_arguments)]
    fn outs3x3_band(
        &self,
        _plan: &Plan<T>,
        _g: &Conv2dGeom,
        _dz: &[T],
        _oy_lo: usize,
        _iy0: usize,
        _iy1: usize,
        _dxb: &mut [T],
        _ring: &mut Vec<f32>,
    ) -> bool {
        false
    }
}

/// The portable bodies (plain Rust; compiled for AVX2 and AVX-512 too, for f64 and the AVX2
/// path of f32). They define the arithmetic every other body reproduces.
struct Generic;

impl<T: Float> Micro<T> for Generic {
    #[inline(always)]
    fn chan<const P: usize, const V: usize>(
        &self,
        cx: &BlockCtx<'_, T>,
        ci0: usize,
        nvalid: usize,
        bases: &[usize; P],
        douts: &[usize; P],
        dx: &mut [T],
    ) {
        let (oc, wp) = (cx.oc, cx.wp);
        let mut acc = [[[T::zero(); LANES]; V]; P];
        for (&toff, &tap) in cx.toffs.iter().zip(cx.taps) {
            let wt = &cx.wr[tap * oc * wp..(tap + 1) * oc * wp];
            let dzs: [&[T]; P] = std::array::from_fn(|p| &cx.dz[bases[p] - toff..][..oc]);
            for o in 0..oc {
                let wv = &wt[o * wp + ci0..o * wp + ci0 + V * LANES];
                for (accp, dzp) in acc.iter_mut().zip(&dzs) {
                    let d = dzp[o];
                    for (v, accv) in accp.iter_mut().enumerate() {
                        for (a, &wj) in accv.iter_mut().zip(&wv[v * LANES..(v + 1) * LANES]) {
                            *a = d.mul_add(wj, *a);
                        }
                    }
                }
            }
        }
        for (accp, &at) in acc.iter().zip(douts) {
            let out = &mut dx[at + ci0..at + ci0 + nvalid];
            for (j, o) in out.iter_mut().enumerate() {
                *o = accp[j / LANES][j % LANES];
            }
        }
    }

    #[inline(always)]
    fn outs<const P: usize>(
        &self,
        cx: &BlockCtx<'_, T>,
        bases: &[usize; P],
        douts: &[usize; P],
        dx: &mut [T],
    ) {
        let (oc, c, wp) = (cx.oc, cx.c, cx.wp);
        for ci in 0..c {
            let mut acc = [[T::zero(); LANES]; P];
            for (&toff, &tap) in cx.toffs.iter().zip(cx.taps) {
                let wt = &cx.wr[(tap * c + ci) * wp..(tap * c + ci + 1) * wp];
                for (accp, &b) in acc.iter_mut().zip(bases) {
                    let dzp = &cx.dz[b - toff..b - toff + oc];
                    for (dch, wch) in dzp.chunks(LANES).zip(wt.chunks_exact(LANES)) {
                        for ((a, &d), &wj) in accp.iter_mut().zip(dch).zip(wch) {
                            *a = d.mul_add(wj, *a);
                        }
                    }
                }
            }
            for (accp, &at) in acc.iter().zip(douts) {
                dx[at + ci] = tree16(accp);
            }
        }
    }
}

/// Runs `$body` with the const `$G` set to the runtime value `$n` (`1..=8`).
macro_rules! with_g {
    ($n:expr, $G:ident => $body:expr) => {
        match $n {
            1 => {
                const $G: usize = 1;
                $body
            }
            2 => {
                const $G: usize = 2;
                $body
            }
            3 => {
                const $G: usize = 3;
                $body
            }
            4 => {
                const $G: usize = 4;
                $body
            }
            5 => {
                const $G: usize = 5;
                $body
            }
            6 => {
                const $G: usize = 6;
                $body
            }
            7 => {
                const $G: usize = 7;
                $body
            }
            8 => {
                const $G: usize = 8;
                $body
            }
            _ => unreachable!("blocks of 1..=8 pixels"),
        }
    };
}
#[allow(unused_imports)]
use with_g;

#[cfg(target_arch = "x86_64")]
mod avx2;

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The AVX-512F f32 micro-kernels (intrinsics), same arithmetic as [`super::Generic`].

    use super::{BlockCtx, Generic, Micro, Plan, LANES};
    use crate::kernels::conv::Conv2dGeom;
    use crate::kernels::float::{as_f32, as_f32_mut};
    use crate::kernels::Float;
    use std::arch::x86_64::*;

    /// AVX-512F f32 bodies. Only built after the CPU was found to support AVX-512F.
    pub(super) struct Avx512;

    /// Checks that every read and write of a block stays inside its slices (once per block).
    #[inline(always)]
    pub(super) fn check<const P: usize>(
        cx: &BlockCtx<'_, f32>,
        bases: &[usize; P],
        douts: &[usize; P],
        dx_len: usize,
        out_w: usize,
        w_len: usize,
    ) {
        // Every tap reads dz[base - toff .. base - toff + oc].
        for p in 0..P {
            assert!(bases[p] >= cx.toff_max && bases[p] - cx.toff_min + cx.oc <= cx.dz.len());
            assert!(douts[p] + out_w <= dx_len);
        }
        assert!((cx.tap_max + 1) * w_len <= cx.wr.len());
    }

    /// `acc[p][v] += dz(p, o) * w[tap][o][ci0 + 16v..]` over the class's taps and all `o`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; the block must have passed [`check`].
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn chan_avx512<const P: usize, const V: usize>(
        cx: &BlockCtx<'_, f32>,
        ci0: usize,
        nvalid: usize,
        bases: &[usize; P],
        douts: &[usize; P],
        dx: &mut [f32],
    ) {
        let (oc, wp) = (cx.oc, cx.wp);
        let mut acc = [[_mm512_setzero_ps(); V]; P];
        let dz = cx.dz.as_ptr();
        for (&toff, &tap) in cx.toffs.iter().zip(cx.taps) {
            // SAFETY: `check` asserted `toff <= bases[p]` and `bases[p] + oc <= dz.len()`, and
            // `(tap + 1) * oc * wp <= wr.len()`; `o < oc` and `ci0 + 16*V <= wp` below.
            unsafe {
                let wt = cx.wr.as_ptr().add(tap * oc * wp + ci0);
                let ptrs: [*const f32; P] = std::array::from_fn(|p| dz.add(bases[p] - toff));
                for o in 0..oc {
                    let mut wv = [_mm512_setzero_ps(); V];
                    for (v, wvv) in wv.iter_mut().enumerate() {
                        *wvv = _mm512_loadu_ps(wt.add(o * wp + v * LANES));
                    }
                    for p in 0..P {
                        let d = _mm512_set1_ps(*ptrs[p].add(o));
                        for v in 0..V {
                            acc[p][v] = _mm512_fmadd_ps(d, wv[v], acc[p][v]);
                        }
                    }
                }
            }
        }
        for p in 0..P {
            for (v, &a) in acc[p].iter().enumerate() {
                let lo = v * LANES;
                if lo >= nvalid {
                    break;
                }
                let n = (nvalid - lo).min(LANES);
                let mask: __mmask16 = if n == LANES { 0xffff } else { (1u16 << n) - 1 };
                // SAFETY: `douts[p] + ci0 + nvalid <= dx.len()` (`check`); the mask writes only
                // the `n` lanes below that bound.
                unsafe { _mm512_mask_storeu_ps(dx.as_mut_ptr().add(douts[p] + ci0 + lo), mask, a) };
            }
        }
    }

    /// The AVX-512 form of [`super::tree16`] (the same pairs, in the same order).
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    fn tree16_avx512(a: __m512) -> f32 {
        let s = _mm512_add_ps(a, _mm512_shuffle_f32x4::<0b11_10_11_10>(a, a));
        let s = _mm512_add_ps(s, _mm512_shuffle_f32x4::<0b01_01_01_01>(s, s));
        let s = _mm512_add_ps(s, _mm512_permute_ps::<0b11_10_11_10>(s));
        let s = _mm512_add_ps(s, _mm512_permute_ps::<0b01_01_01_01>(s));
        _mm512_cvtss_f32(s)
    }

    /// Lane partial sums over the class's taps and 16-wide `o` chunks (`cx.steps`), then
    /// [`tree16_avx512`].
    ///
    /// # Safety
    /// The CPU must support AVX-512F; the block must have passed [`check`].
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn outs_avx512<const P: usize>(
        cx: &BlockCtx<'_, f32>,
        bases: &[usize; P],
        douts: &[usize; P],
        dx: &mut [f32],
    ) {
        let (c, wp) = (cx.c, cx.wp);
        let dz = cx.dz.as_ptr();
        let ptrs: [*const f32; P] = std::array::from_fn(|p| dz.wrapping_add(bases[p]));
        for ci in 0..c {
            let mut acc = [_mm512_setzero_ps(); P];
            let w0 = cx.wr.as_ptr().wrapping_add(ci * wp);
            for &(doff, woff, mask) in cx.steps {
                // SAFETY: `check` asserted `toff <= bases[p]` and `bases[p] - toff + oc <=
                // dz.len()` for every tap: a step reads `dz[bases[p] - toff + 16j ..]`, masked
                // to `o < oc`; the filter read `(tap*c + ci)*wp + 16j .. + 16` is inside
                // `(tap_max + 1)*c*wp <= wr.len()`.
                unsafe {
                    let wv = _mm512_loadu_ps(w0.add(woff));
                    for p in 0..P {
                        let d = _mm512_maskz_loadu_ps(mask, ptrs[p].wrapping_offset(doff));
                        acc[p] = _mm512_fmadd_ps(d, wv, acc[p]);
                    }
                }
            }
            for p in 0..P {
                dx[douts[p] + ci] = tree16_avx512(acc[p]);
            }
        }
    }

    /// The tree sums of 8 pixels' lane partials at once, lane `k` = [`super::tree16`] of
    /// `a[k]` (the same pairs added in the same operand order; lanes 8..16 are not used):
    /// `s8` halves two pixels per vector, `s4` four, then `s2` and the last pair within 128-bit
    /// lanes, then one permutation puts pixel `k` in lane `k`.
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    fn reduce8(a: &[__m512; 8]) -> __m512 {
        // s8: [x.l0..8 + x.l8..16, y.l0..8 + y.l8..16].
        let s8 = |x: __m512, y: __m512| {
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b01_00_01_00>(x, y),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(x, y),
            )
        };
        let (t01, t23, t45, t67) = (
            s8(a[0], a[1]),
            s8(a[2], a[3]),
            s8(a[4], a[5]),
            s8(a[6], a[7]),
        );
        // s4: 128-bit block k = s4 of pixel k (of four).
        let s4 = |x: __m512, y: __m512| {
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b10_00_10_00>(x, y),
                _mm512_shuffle_f32x4::<0b11_01_11_01>(x, y),
            )
        };
        let (q0, q1) = (s4(t01, t23), s4(t45, t67));
        // s2: block k = [s2[0], s2[1] of pixel k, s2[0], s2[1] of pixel k + 4].
        let r = _mm512_add_ps(
            _mm512_shuffle_ps::<0b01_00_01_00>(q0, q1),
            _mm512_shuffle_ps::<0b11_10_11_10>(q0, q1),
        );
        // s2[0] + s2[1]: block k = [pixel k, pixel k + 4, ..].
        let f = _mm512_add_ps(
            _mm512_shuffle_ps::<0b10_00_10_00>(r, r),
            _mm512_shuffle_ps::<0b11_01_11_01>(r, r),
        );
        let idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
        _mm512_permutexvar_ps(idx, f)
    }

    /// [`reduce8`] on 8 arrays (tests; the CPU must support AVX-512F).
    #[cfg(test)]
    pub(super) fn reduce8_test(ls: &[[f32; LANES]; 8]) -> [f32; 16] {
        assert!(crate::kernels::simd::detected() == crate::kernels::simd::Level::Avx512);
        let mut out = [0f32; 16];
        // SAFETY: AVX-512F was detected above; every pointer addresses 16 floats.
        unsafe {
            let a: [__m512; 8] = std::array::from_fn(|p| _mm512_loadu_ps(ls[p].as_ptr()));
            _mm512_storeu_ps(out.as_mut_ptr(), reduce8(&a));
        }
        out
    }

    /// `G` consecutive pixels of one input row and channel: lane partials over the 9 taps
    /// (`(ky, kx)` ascending) and the `J` 16-wide `o` chunks, the order of [`Generic::outs`],
    /// then [`reduce8`]. `rows[ky]` points at the zero-bordered `dz` row `oy = iy + pad_top - ky`
    /// (or a zero row), at the block's first pixel; pixel `g` with tap `kx` reads bordered
    /// column `g + 2 - kx` of `16*J` floats.
    ///
    /// # Safety
    /// AVX-512F; `rows[ky]` readable for `(G + 2) * 16 * J` floats.
    #[inline]
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn group3x3<const G: usize, const J: usize>(
        rows: &[*const f32; 3],
        wv: &[[[__m512; J]; 3]; 3],
    ) -> __m512 {
        let mut acc = [_mm512_setzero_ps(); 8];
        for ky in 0..3 {
            for kx in 0..3 {
                for j in 0..J {
                    let w = wv[ky][kx][j];
                    for (g, a) in acc.iter_mut().enumerate().take(G) {
                        // SAFETY: column `g + 2 - kx <= G + 1`, lanes `16j..16j+16 <= 16J`.
                        let d = unsafe {
                            _mm512_loadu_ps(rows[ky].add(((g + 2 - kx) * J + j) * LANES))
                        };
                        *a = _mm512_fmadd_ps(d, w, *a);
                    }
                }
            }
        }
        reduce8(&acc)
    }

    /// Input rows `iy0..iy1` of one image (all `c` channels) for a [`super::fast3_geom`]
    /// geometry with `J = ceil(oc / 16)`. `dz` holds output rows `oy_lo..` (pixel stride `oc`);
    /// `wr` is the `[tap][ci][16J]` filter. Each needed `dz` row is copied once into a ring of 3
    /// rows with a zero border of 2 pixels each side and zero lanes from `oc` to `16J`, plus
    /// one zero row for the rows outside the output; each input row is cut into balanced
    /// blocks of at most 8 pixels ([`group3x3`]).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,fma")]
    fn band3x3<const J: usize>(
        g: &Conv2dGeom,
        wr: &[f32],
        dz: &[f32],
        oy_lo: usize,
        iy0: usize,
        iy1: usize,
        dxb: &mut [f32],
        ring: &mut Vec<f32>,
    ) {
        let (w, c, oc, ow) = (g.w, g.c, g.oc, g.ow);
        let px = J * LANES;
        let row_len = (w + 2) * px;
        ring.clear();
        ring.resize(4 * row_len, 0.0);
        assert!(oc <= px && dxb.len() == (iy1 - iy0) * w * c);
        assert!(wr.len() >= 9 * c * px);
        let mut slot_oy = [usize::MAX; 3];
        // Bordered column of `dz` column `ox`.
        let shift = 2 - g.pad_left;
        let ng = w.div_ceil(8);
        for iy in iy0..iy1 {
            let mut rows = [std::ptr::null::<f32>(); 3];
            for (ky, row) in rows.iter_mut().enumerate() {
                let oy = (iy + g.pad_top).wrapping_sub(ky);
                let slot = if oy < g.oh {
                    let sl = oy % 3;
                    if slot_oy[sl] != oy {
                        let src = &dz[(oy - oy_lo) * ow * oc..(oy - oy_lo + 1) * ow * oc];
                        let dst = &mut ring[sl * row_len..(sl + 1) * row_len];
                        assert!((ow + shift) * px <= dst.len());
                        for ox in 0..ow {
                            for j in 0..J {
                                let n = (oc - (j * LANES).min(oc)).min(LANES);
                                let mask: __mmask16 =
                                    if n == LANES { 0xffff } else { (1u16 << n) - 1 };
                                // SAFETY: lanes below `n` of `src[ox*oc + 16j..]` lie inside
                                // `src` (`16j + n <= oc`); the store writes 16 lanes of `dst`
                                // at `(ox + shift)*px + 16j + 16 <= (ow + shift)*px`.
                                unsafe {
                                    let v = if n == LANES {
                                        _mm512_loadu_ps(src.as_ptr().add(ox * oc + j * LANES))
                                    } else {
                                        _mm512_maskz_loadu_ps(
                                            mask,
                                            src.as_ptr().wrapping_add(ox * oc + j * LANES),
                                        )
                                    };
                                    _mm512_storeu_ps(
                                        dst.as_mut_ptr().add((ox + shift) * px + j * LANES),
                                        v,
                                    );
                                }
                            }
                        }
                        slot_oy[sl] = oy;
                    }
                    sl
                } else {
                    3
                };
                *row = ring[slot * row_len..].as_ptr();
            }
            let drow = &mut dxb[(iy - iy0) * w * c..(iy - iy0 + 1) * w * c];
            for ci in 0..c {
                let mut wv = [[[_mm512_setzero_ps(); J]; 3]; 3];
                for (t, wt) in wv.iter_mut().flatten().enumerate() {
                    let at = (t * c + ci) * px;
                    for (j, v) in wt.iter_mut().enumerate() {
                        let ws = &wr[at + j * LANES..at + (j + 1) * LANES];
                        // SAFETY: `ws` holds 16 floats.
                        *v = unsafe { _mm512_loadu_ps(ws.as_ptr()) };
                    }
                }
                let mut x0 = 0;
                for gi in 0..ng {
                    let n = w / ng + usize::from(gi < w % ng);
                    // Pixel `x0 + n - 1` reads bordered columns up to `x0 + n + 1 <= w + 1`.
                    let rb = rows.map(|r| r.wrapping_add(x0 * px));
                    let sums = super::with_g!(n, G => {
                        // SAFETY: AVX-512F (this function's feature); each row pointer has
                        // `(w + 2 - x0) * px >= (G + 2) * px` floats of its ring row left.
                        unsafe { group3x3::<G, J>(&rb, &wv) }
                    });
                    let mut out = [0f32; 16];
                    // SAFETY: `out` holds 16 floats.
                    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), sums) };
                    for (k, &v) in out[..n].iter().enumerate() {
                        drow[(x0 + k) * c + ci] = v;
                    }
                    x0 += n;
                }
            }
        }
    }

    /// `cx` with f32 slices (when `T` is `f32`).
    #[inline(always)]
    pub(super) fn ctx_f32<'a, T: Float>(cx: &BlockCtx<'a, T>) -> Option<BlockCtx<'a, f32>> {
        Some(BlockCtx {
            dz: as_f32(cx.dz)?,
            toffs: cx.toffs,
            taps: cx.taps,
            wr: as_f32(cx.wr)?,
            oc: cx.oc,
            c: cx.c,
            wp: cx.wp,
            toff_min: cx.toff_min,
            toff_max: cx.toff_max,
            tap_max: cx.tap_max,
            steps: cx.steps,
        })
    }

    impl<T: Float> Micro<T> for Avx512 {
        #[inline(always)]
        fn chan<const P: usize, const V: usize>(
            &self,
            cx: &BlockCtx<'_, T>,
            ci0: usize,
            nvalid: usize,
            bases: &[usize; P],
            douts: &[usize; P],
            dx: &mut [T],
        ) {
            let Some(cx32) = ctx_f32(cx) else {
                return Generic.chan::<P, V>(cx, ci0, nvalid, bases, douts, dx);
            };
            let dx = as_f32_mut(dx).expect("T is f32");
            assert!(nvalid <= V * LANES && ci0 + V * LANES <= cx.wp);
            check(&cx32, bases, douts, dx.len(), ci0 + nvalid, cx.oc * cx.wp);
            // SAFETY: an `Avx512` is only used after detecting AVX-512F; bounds checked above.
            unsafe { chan_avx512::<P, V>(&cx32, ci0, nvalid, bases, douts, dx) }
        }

        #[inline(always)]
        fn outs<const P: usize>(
            &self,
            cx: &BlockCtx<'_, T>,
            bases: &[usize; P],
            douts: &[usize; P],
            dx: &mut [T],
        ) {
            let Some(cx32) = ctx_f32(cx) else {
                return Generic.outs::<P>(cx, bases, douts, dx);
            };
            let dx = as_f32_mut(dx).expect("T is f32");
            assert!(cx.wp >= cx.oc.div_ceil(LANES) * LANES);
            check(&cx32, bases, douts, dx.len(), cx.c, cx.c * cx.wp);
            // SAFETY: an `Avx512` is only used after detecting AVX-512F; bounds checked above.
            unsafe { outs_avx512::<P>(&cx32, bases, douts, dx) }
        }

        fn outs3x3_band(
            &self,
            plan: &Plan<T>,
            g: &Conv2dGeom,
            dz: &[T],
            oy_lo: usize,
            iy0: usize,
            iy1: usize,
            dxb: &mut [T],
            ring: &mut Vec<f32>,
        ) -> bool {
            let (Some(dz), Some(wr)) = (as_f32(dz), as_f32(&plan.wr)) else {
                return false;
            };
            let Some(dxb) = as_f32_mut(dxb) else {
                return false;
            };
            let oy_hi = (iy1 + g.pad_top).min(g.oh);
            assert!(
                dz.len() >= (oy_hi - oy_lo) * g.ow * g.oc
                    && plan.wp == g.oc.div_ceil(LANES) * LANES
            );
            // SAFETY (both): an `Avx512` is only used after detecting AVX-512F.
            if plan.wp == LANES {
                unsafe { band3x3::<1>(g, wr, dz, oy_lo, iy0, iy1, dxb, ring) };
            } else {
                unsafe { band3x3::<2>(g, wr, dz, oy_lo, iy0, iy1, dxb, ring) };
            }
            true
        }
    }
}

/// Runs `$body` with the const `$P` set to the runtime value `$p` (`1..=12`).
macro_rules! with_p {
    ($p:expr, $P:ident => $body:expr) => {
        match $p {
            1 => {
                const $P: usize = 1;
                $body
            }
            2 => {
                const $P: usize = 2;
                $body
            }
            3 => {
                const $P: usize = 3;
                $body
            }
            4 => {
                const $P: usize = 4;
                $body
            }
            5 => {
                const $P: usize = 5;
                $body
            }
            6 => {
                const $P: usize = 6;
                $body
            }
            7 => {
                const $P: usize = 7;
                $body
            }
            8 => {
                const $P: usize = 8;
                $body
            }
            9 => {
                const $P: usize = 9;
                $body
            }
            10 => {
                const $P: usize = 10;
                $body
            }
            11 => {
                const $P: usize = 11;
                $body
            }
            12 => {
                const $P: usize = 12;
                $body
            }
            _ => unreachable!("block of at most 12 pixels"),
        }
    };
}

/// Per-call tables: the repacked filter and the column runs.
struct Plan<T> {
    kind: Kind,
    wr: Vec<T>,
    wp: usize,
    cols: Vec<(usize, usize, usize, usize)>,
    /// [`Kind::Outputs`] geometries the 3x3 row kernels (AVX-512, AVX2) take ([`fast3_geom`]) with every
    /// filter value finite (then its zero padding adds only `±0`, which changes no bit).
    fast3: bool,
}

/// Whether the 3x3 row kernels (AVX-512, AVX2) handle this [`Kind::Outputs`] geometry: a 3x3 filter,
/// no dilation, `oc <= 32`, and the output inside the 2-pixel zero border of its row buffers
/// (`pad_top, pad_left <= 2`, `oh <= h + pad_top`, `ow <= w + pad_left`: any `same`/`valid`).
fn fast3_geom(g: &Conv2dGeom) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.dh == 1
        && g.dw == 1
        && g.oc <= 2 * LANES
        && g.pad_top <= 2
        && g.pad_left <= 2
        && g.oh <= g.h + g.pad_top
        && g.ow <= g.w + g.pad_left
}

impl<T: Float> Plan<T> {
    fn new(kind: Kind, g: &Conv2dGeom, w: &[T]) -> Self {
        let (c, oc) = (g.c, g.oc);
        let taps = g.kh * g.kw;
        let (wr, wp) = match kind {
            Kind::Channels => {
                // [tap][o][cp] from HWIO [tap][ci][o].
                let cp = round_up(c, LANES);
                let mut wr = vec![T::zero(); taps * oc * cp];
                for t in 0..taps {
                    for ci in 0..c {
                        for o in 0..oc {
                            wr[(t * oc + o) * cp + ci] = w[(t * c + ci) * oc + o];
                        }
                    }
                }
                (wr, cp)
            }
            Kind::Outputs => {
                // [tap][ci][ocp] (HWIO with rows padded).
                let ocp = round_up(oc, LANES);
                let mut wr = vec![T::zero(); taps * c * ocp];
                for (dst, src) in wr.chunks_exact_mut(ocp).zip(w.chunks_exact(oc)) {
                    dst[..oc].copy_from_slice(src);
                }
                (wr, ocp)
            }
        };
        let fast3 = kind == Kind::Outputs
            && fast3_switch()
            && fast3_geom(g)
            && w.iter().all(|v| v.is_finite());
        Plan {
            kind,
            wr,
            wp,
            cols: runs(g.w, g.pad_left, g.dw, g.kw, g.ow),
            fast3,
        }
    }
}

/// Whether the 3x3 row kernel of [`Kind::Outputs`] is on (`FF_CONV_BWD_INPUT3` unset or
/// anything but `off`/`0`; read once per process; for A/B measurements: off gives the block
/// kernel, the same bits).
fn fast3_switch() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    env_switch::on(&ON, "FF_CONV_BWD_INPUT3")
}

/// Task scratch: `dz` rows (when expanded) and the class's tap tables.
#[derive(Default)]
struct Scratch<T> {
    /// The 3x3 row kernel's ring of zero-bordered `dz` rows.
    ring: Vec<f32>,
    dz: Vec<T>,
    toffs: Vec<usize>,
    taps: Vec<usize>,
    steps: Vec<(isize, usize, u16)>,
    /// [`Kind::Outputs`]: the task's `dz` rows copied to a 64-byte boundary (whole-vector loads
    /// then never straddle two cache lines when `oc` is a multiple of 16).
    aligned: Vec<T>,
}

/// Input rows `iy0..iy1` of image `img` into `dxb` (`(iy1-iy0)*w*c`, overwritten).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn band<T: Float, D: DyRows<T>, M: Micro<T>>(
    m: &M,
    plan: &Plan<T>,
    g: &Conv2dGeom,
    dy: &D,
    img: usize,
    iy0: usize,
    iy1: usize,
    dxb: &mut [T],
    s: &mut Scratch<T>,
) {
    let (c, oc, wdt) = (g.c, g.oc, g.w);
    // dz rows read by this band: oy in oy_lo..oy_hi.
    let oy_hi = (iy1 + g.pad_top).min(g.oh);
    let oy_lo = (iy0 + g.pad_top)
        .saturating_sub((g.kh - 1) * g.dh)
        .min(oy_hi);
    if oy_lo == oy_hi {
        dxb.fill(T::zero());
        return;
    }
    let dz = dy.rows(g, img * g.oh + oy_lo, oy_hi - oy_lo, &mut s.dz);
    if plan.fast3 && m.outs3x3_band(plan, g, dz, oy_lo, iy0, iy1, dxb, &mut s.ring) {
        return;
    }
    let dz: &[T] = if plan.kind == Kind::Outputs {
        let lanes = 64 / std::mem::size_of::<T>();
        s.aligned.resize(dz.len() + lanes, T::zero());
        let skip = s.aligned.as_ptr().align_offset(64).min(lanes);
        s.aligned[skip..skip + dz.len()].copy_from_slice(dz);
        &s.aligned[skip..skip + dz.len()]
    } else {
        dz
    };
    let row_runs = {
        let mut v: Vec<(usize, usize, usize, usize)> = Vec::new();
        for iy in iy0..iy1 {
            let (lo, hi) = tap_range(iy, g.pad_top, g.dh, g.kh, g.oh);
            match v.last_mut() {
                Some(r) if r.2 == lo && r.3 == hi => r.1 = iy + 1,
                _ => v.push((iy, iy + 1, lo, hi)),
            }
        }
        v
    };
    for &(r0, r1, ky0, ky1) in &row_runs {
        for &(c0, c1, kx0, kx1) in &plan.cols {
            s.toffs.clear();
            s.taps.clear();
            for ky in ky0..ky1 {
                for kx in kx0..kx1 {
                    s.toffs.push((ky * g.dh * g.ow + kx * g.dw) * oc);
                    s.taps.push(ky * g.kw + kx);
                }
            }
            let cw = c1 - c0;
            let npx = (r1 - r0) * cw;
            if s.taps.is_empty() {
                for q in 0..npx {
                    let (iy, ix) = (r0 + q / cw, c0 + q % cw);
                    let at = ((iy - iy0) * wdt + ix) * c;
                    dxb[at..at + c].fill(T::zero());
                }
                continue;
            }
            s.steps.clear();
            if plan.kind == Kind::Outputs {
                for (&toff, &tap) in s.toffs.iter().zip(&s.taps) {
                    for j in 0..oc.div_ceil(LANES) {
                        let n = (oc - j * LANES).min(LANES);
                        let mask = if n == LANES { 0xffff } else { (1u16 << n) - 1 };
                        let doff = (j * LANES) as isize - toff as isize;
                        s.steps.push((doff, tap * c * plan.wp + j * LANES, mask));
                    }
                }
            }
            let cx = BlockCtx {
                dz,
                toffs: &s.toffs,
                taps: &s.taps,
                wr: &plan.wr,
                oc,
                c,
                wp: plan.wp,
                toff_min: s.toffs.iter().copied().min().unwrap_or(0),
                toff_max: s.toffs.iter().copied().max().unwrap_or(0),
                tap_max: s.taps.iter().copied().max().unwrap_or(0),
                steps: &s.steps,
            };
            let pmax = m.pmax(plan.kind, c).clamp(1, PMAX_O);
            // Balanced blocks: nb blocks of `npx / nb` or one more pixels.
            let nb = npx.div_ceil(pmax);
            // Position of the block's first pixel, advanced without divisions.
            let (mut by, mut bx) = (r0, c0);
            for bi in 0..nb {
                let p = npx / nb + usize::from(bi < npx % nb);
                let mut pos = [(0usize, 0usize); PMAX_O];
                for slot in pos.iter_mut().take(p) {
                    *slot = (
                        ((by + g.pad_top - oy_lo) * g.ow + bx + g.pad_left) * oc,
                        ((by - iy0) * wdt + bx) * c,
                    );
                    bx += 1;
                    if bx == c1 {
                        bx = c0;
                        by += 1;
                    }
                }
                let pix = |k: usize| pos[k];
                with_p!(p, P => {
                    let bases: [usize; P] = std::array::from_fn(|k| pix(k).0);
                    let douts: [usize; P] = std::array::from_fn(|k| pix(k).1);
                    match plan.kind {
                        Kind::Channels => {
                            let mut ci0 = 0;
                            while ci0 < c {
                                let nvalid = (c - ci0).min(2 * LANES);
                                if nvalid > LANES {
                                    m.chan::<P, 2>(&cx, ci0, nvalid, &bases, &douts, dxb);
                                } else {
                                    m.chan::<P, 1>(&cx, ci0, nvalid, &bases, &douts, dxb);
                                }
                                ci0 += nvalid;
                            }
                        }
                        Kind::Outputs => m.outs::<P>(&cx, &bases, &douts, dxb),
                    }
                });
            }
        }
    }
}

/// Global input rows `row0..row0 + rows` (over the whole batch: row `r` is image `r / h`, input
/// row `r % h`) into `dxs`, image by image.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn task_body<T: Float, D: DyRows<T>, M: Micro<T>>(
    m: &M,
    plan: &Plan<T>,
    g: &Conv2dGeom,
    dy: &D,
    row0: usize,
    dxs: &mut [T],
    s: &mut Scratch<T>,
) {
    let row_len = g.w * g.c;
    let rows = dxs.len() / row_len;
    let mut r = row0;
    let mut done = 0;
    while done < rows {
        let (img, iy0) = (r / g.h, r % g.h);
        let iy1 = g.h.min(iy0 + rows - done);
        let n = iy1 - iy0;
        band(
            m,
            plan,
            g,
            dy,
            img,
            iy0,
            iy1,
            &mut dxs[done * row_len..(done + n) * row_len],
            s,
        );
        done += n;
        r += n;
    }
}

/// [`task_body`] with the portable micro-kernels, compiled for the baseline target.
fn task_portable<T: Float, D: DyRows<T>>(
    plan: &Plan<T>,
    g: &Conv2dGeom,
    dy: &D,
    row0: usize,
    dxs: &mut [T],
    s: &mut Scratch<T>,
) {
    task_body(&Generic, plan, g, dy, row0, dxs, s)
}

/// [`task_body`] with the AVX2 micro-kernels (intrinsics for f32, the portable body compiled
/// for AVX2 for f64).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn task_avx2<T: Float, D: DyRows<T>>(
    plan: &Plan<T>,
    g: &Conv2dGeom,
    dy: &D,
    row0: usize,
    dxs: &mut [T],
    s: &mut Scratch<T>,
) {
    task_body(&avx2::Avx2, plan, g, dy, row0, dxs, s)
}

/// [`task_body`] with the AVX-512 micro-kernels (intrinsics for f32, the portable body
/// compiled for AVX-512F for f64).
///
/// # Safety
/// The CPU must support AVX-512F (and FMA, which every AVX-512F CPU has).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn task_avx512<T: Float, D: DyRows<T>>(
    plan: &Plan<T>,
    g: &Conv2dGeom,
    dy: &D,
    row0: usize,
    dxs: &mut [T],
    s: &mut Scratch<T>,
) {
    task_body(&x86::Avx512, plan, g, dy, row0, dxs, s)
}

/// One task on `isa` (which the CPU supports).
fn run_task<T: Float, D: DyRows<T>>(
    isa: Isa,
    plan: &Plan<T>,
    g: &Conv2dGeom,
    dy: &D,
    row0: usize,
    dxs: &mut [T],
    s: &mut Scratch<T>,
) {
    match isa {
        Isa::Portable => task_portable(plan, g, dy, row0, dxs, s),
        // SAFETY: `isa` is Avx2 only when the CPU supports AVX2 (`detect_isa`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { task_avx2(plan, g, dy, row0, dxs, s) },
        // SAFETY: `isa` is Avx512 only when the CPU supports AVX-512F (`detect_isa`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { task_avx512(plan, g, dy, row0, dxs, s) },
    }
}

/// The input gradient `dx` (`[n, h, w, c]`, overwritten) of a convolution with filter `w`
/// (`[kh, kw, c, oc]`) from `dy` (read through [`DyRows`]) with the direct kernel `kind` on `isa`
/// (which the CPU must support: take it from `conv_direct::detect_isa`). The caller took `kind`
/// from [`kind`] / [`kind_of`] for this geometry.
pub(crate) fn backward_input_rows<T: Float, D: DyRows<T>>(
    isa: Isa,
    kind: Kind,
    g: &Conv2dGeom,
    dy: &D,
    w: &[T],
    dx: &mut [T],
) {
    debug_assert_eq!(kind_of(g), Some(kind));
    debug_assert_eq!(w.len(), g.filter_len());
    debug_assert_eq!(dx.len(), g.input_len());
    let plan = Plan::new(kind, g, w);
    let total_rows = g.n * g.h;
    let band_rows = if g.n >= MIN_TASKS {
        g.h
    } else {
        total_rows.div_ceil(MIN_TASKS).max(1)
    };
    let row_len = g.w * g.c;
    let chunk = band_rows * row_len;
    let work = g.output_len().saturating_mul(g.kh * g.kw * g.c);
    let plan = &plan;
    if work < PAR_MIN_WORK || rayon::current_num_threads() == 1 {
        let mut s = Scratch::default();
        for (t, dxs) in dx.chunks_mut(chunk).enumerate() {
            run_task(isa, plan, g, dy, t * band_rows, dxs, &mut s);
        }
    } else {
        dx.par_chunks_mut(chunk)
            .enumerate()
            .for_each_init(Scratch::default, |s, (t, dxs)| {
                run_task(isa, plan, g, dy, t * band_rows, dxs, s)
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::{conv2d_backward_input, DySlice};
    use crate::kernels::conv_direct::available_isas;
    use crate::kernels::padding::Padding;
    use crate::kernels::test_util::{pool, rand_vec};

    /// `dx` by plain f64 loops over every output pixel and tap (written independently of the
    /// kernel: scatter form, `iy = oy*sh + ky*dh - pad_top`).
    fn naive_dx(g: &Conv2dGeom, dy: &[f64], w: &[f64]) -> Vec<f64> {
        let mut dx = vec![0.0; g.input_len()];
        for img in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
                            let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
                            if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                continue;
                            }
                            let (iy, ix) = (iy as usize, ix as usize);
                            for ci in 0..g.c {
                                let mut s = 0.0;
                                for o in 0..g.oc {
                                    s += dy[((img * g.oh + oy) * g.ow + ox) * g.oc + o]
                                        * w[((ky * g.kw + kx) * g.c + ci) * g.oc + o];
                                }
                                dx[((img * g.h + iy) * g.w + ix) * g.c + ci] += s;
                            }
                        }
                    }
                }
            }
        }
        dx
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= tol * (1.0 + b.abs()),
                "{what}: element {i}: got {a}, want {b}"
            );
        }
    }

    /// Random geometries: odd sizes, c in {1, 3, 16, 17, 32, 48}, oc in {1, 7, 32, 64}, strides
    /// 1-3, dilations 1-2, same/valid padding.
    fn geoms() -> Vec<Conv2dGeom> {
        let mut s = 0xB1D1_u64;
        let mut next = |m: usize| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % m as u64) as usize
        };
        let mut v = vec![
            // The seed CNN's two convolutions (small batches).
            Conv2dGeom::new([2, 13, 13, 32], [3, 3], 64, [1, 1], [1, 1], Padding::Valid),
            Conv2dGeom::new([3, 28, 28, 1], [3, 3], 32, [1, 1], [1, 1], Padding::Valid),
        ];
        while v.len() < 70 {
            let n = 1 + next(3);
            let (h, w) = (1 + next(15), 1 + next(15));
            let c = [1, 3, 16, 17, 32, 48][next(6)];
            let oc = [1, 7, 32, 64, 17][next(5)];
            let kernel = [1 + next(4), 1 + next(4)];
            let strides = if next(3) == 0 {
                [1 + next(3), 1 + next(3)]
            } else {
                [1, 1]
            };
            let dil = [1 + next(2), 1 + next(2)];
            let pad = if next(2) == 0 {
                Padding::Same
            } else {
                Padding::Valid
            };
            let g = Conv2dGeom::new([n, h, w, c], kernel, oc, strides, dil, pad);
            if g.oh > 0 && g.ow > 0 {
                v.push(g);
            }
        }
        v
    }

    /// `conv2d_backward_input` (direct kernels where they apply, im2col elsewhere) against the
    /// f64 reference, in f64 and f32, on every instruction set this CPU has.
    #[test]
    fn matches_naive_on_random_shapes() {
        let mut direct = 0;
        for (i, g) in geoms().iter().enumerate() {
            let what = format!("shape {i} {g:?}");
            let dy = rand_vec::<f64>(g.output_len(), 3 + i as u64);
            let w = rand_vec::<f64>(g.filter_len(), 4 + i as u64);
            let want = naive_dx(g, &dy, &w);
            let mut dx = vec![f64::NAN; g.input_len()];
            conv2d_backward_input(g, &dy, &w, &mut dx);
            assert_close(&dx, &want, 1e-12, &format!("f64 {what}"));
            let (dy32, w32): (Vec<f32>, Vec<f32>) = (
                dy.iter().map(|&v| v as f32).collect(),
                w.iter().map(|&v| v as f32).collect(),
            );
            let mut dx32 = vec![f32::NAN; g.input_len()];
            conv2d_backward_input(g, &dy32, &w32, &mut dx32);
            let got: Vec<f64> = dx32.iter().map(|&v| v as f64).collect();
            assert_close(&got, &want, 2e-5, &format!("f32 {what}"));
            if let Some(kind) = kind_of(g) {
                direct += 1;
                for isa in available_isas() {
                    let mut d = vec![f64::NAN; g.input_len()];
                    backward_input_rows(isa, kind, g, &DySlice(&dy), &w, &mut d);
                    assert_close(&d, &want, 1e-12, &format!("f64 {isa:?} {what}"));
                    let mut d = vec![f32::NAN; g.input_len()];
                    backward_input_rows(isa, kind, g, &DySlice(&dy32), &w32, &mut d);
                    let got: Vec<f64> = d.iter().map(|&v| v as f64).collect();
                    assert_close(&got, &want, 2e-5, &format!("f32 {isa:?} {what}"));
                }
            }
        }
        assert!(direct >= 30, "only {direct} shapes took the direct kernels");
    }

    /// AVX-512 intrinsics, the portable body compiled for AVX2 and the plain portable body give
    /// the same bits (f32 and f64), on 1 and 2 threads.
    #[test]
    fn isas_and_threads_agree_bitwise() {
        let isas = available_isas();
        for (i, g) in geoms().iter().enumerate() {
            let Some(kind) = kind_of(g) else { continue };
            // A larger batch so that the work is split over threads.
            let g = Conv2dGeom { n: g.n * 9, ..*g };
            let dy = rand_vec::<f64>(g.output_len(), 30 + i as u64);
            let w = rand_vec::<f64>(g.filter_len(), 40 + i as u64);
            let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
            let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            let mut first32: Option<Vec<u32>> = None;
            let mut first64: Option<Vec<u64>> = None;
            for &isa in &isas {
                for threads in [1, 2] {
                    let mut d32 = vec![f32::NAN; g.input_len()];
                    let mut d64 = vec![f64::NAN; g.input_len()];
                    pool(threads).install(|| {
                        backward_input_rows(isa, kind, &g, &DySlice(&dy32), &w32, &mut d32);
                        backward_input_rows(isa, kind, &g, &DySlice(&dy), &w, &mut d64);
                    });
                    let b32: Vec<u32> = d32.iter().map(|v| v.to_bits()).collect();
                    let b64: Vec<u64> = d64.iter().map(|v| v.to_bits()).collect();
                    let what = format!("shape {i} {g:?} {isa:?} {threads} threads");
                    match &first32 {
                        None => first32 = Some(b32),
                        Some(f) => assert!(*f == b32, "f32 bits differ: {what}"),
                    }
                    match &first64 {
                        None => first64 = Some(b64),
                        Some(f) => assert!(*f == b64, "f64 bits differ: {what}"),
                    }
                }
            }
        }
    }

    /// The 3x3 row kernels of [`Kind::Outputs`] (AVX-512 and AVX2): geometries it takes (odd widths below
    /// and above its 8-pixel blocks, `same`/`valid`, 1-3 channels, `oc` 16..=32, small batches
    /// cut into row bands), against the f64 reference and bit for bit against the portable
    /// block kernel, on 1 and 2 threads; with a non-finite filter value it stands aside (the
    /// block kernel's bits, where `0 * inf` is never computed).
    #[test]
    fn outs3x3_matches_reference_and_portable_bits() {
        let mut cases = vec![
            Conv2dGeom::new([3, 28, 28, 1], [3, 3], 32, [1, 1], [1, 1], Padding::Valid),
            Conv2dGeom::new([40, 28, 28, 1], [3, 3], 32, [1, 1], [1, 1], Padding::Valid),
        ];
        let mut k = 0u64;
        for (h, w) in [(1, 1), (2, 3), (5, 7), (9, 8), (3, 17), (11, 13), (4, 33)] {
            for c in [1, 3] {
                for oc in [16, 17, 32] {
                    for pad in [Padding::Same, Padding::Valid] {
                        k += 1;
                        let n = 1 + (k % 3) as usize;
                        let g = Conv2dGeom::new([n, h, w, c], [3, 3], oc, [1, 1], [1, 1], pad);
                        if g.oh > 0 && g.ow > 0 {
                            cases.push(g);
                        }
                    }
                }
            }
        }
        let mut fast = 0;
        for (i, g) in cases.iter().enumerate() {
            assert_eq!(kind_of(g), Some(Kind::Outputs));
            assert!(fast3_geom(g), "{g:?}");
            let dy = rand_vec::<f64>(g.output_len(), 70 + i as u64);
            let mut w = rand_vec::<f64>(g.filter_len(), 80 + i as u64);
            let want = naive_dx(g, &dy, &w);
            let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
            let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            let run = |isa: Isa, threads: usize, w32: &[f32]| {
                let mut d = vec![f32::NAN; g.input_len()];
                pool(threads).install(|| {
                    backward_input_rows(isa, Kind::Outputs, g, &DySlice(&dy32), w32, &mut d)
                });
                d
            };
            let portable = run(Isa::Portable, 1, &w32);
            let got: Vec<f64> = portable.iter().map(|&v| v as f64).collect();
            assert_close(&got, &want, 2e-5, &format!("portable {i} {g:?}"));
            for isa in available_isas() {
                fast += usize::from(isa != Isa::Portable);
                for threads in [1, 2] {
                    let d = run(isa, threads, &w32);
                    let same = d
                        .iter()
                        .zip(&portable)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "bits differ: {isa:?} {threads} threads, case {i} {g:?}"
                    );
                }
            }
            // A non-finite filter value: the fast path stands aside, bits still agree.
            if i % 5 == 0 {
                w[g.filter_len() / 2] = f64::INFINITY;
                let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
                let base = run(Isa::Portable, 1, &w32);
                for isa in available_isas() {
                    let d = run(isa, 2, &w32);
                    let same = d.iter().zip(&base).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "bits differ with inf: {isa:?} case {i} {g:?}");
                }
            }
        }
        if available_isas() == [Isa::Portable] {
            eprintln!("no AVX2 on this CPU: the 3x3 row kernels were not exercised");
        } else {
            assert!(fast > 0);
        }
    }

    /// The AVX-512 8-pixel reduction adds exactly [`tree16`]'s pairs (values chosen so that any
    /// other order rounds differently in f32).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn reduce8_is_tree16() {
        if crate::kernels::simd::detected() != crate::kernels::simd::Level::Avx512 {
            return;
        }
        let mut ls = [[0f32; LANES]; 8];
        for (p, l) in ls.iter_mut().enumerate() {
            let b = 1.0e8 * (p as f32 + 1.0);
            l[p % 16] = b;
            l[(p + 8) % 16] = -b;
            l[(p + 1) % 16] = 1.0 + p as f32;
            l[(p + 9) % 16] = 0.5;
            l[(p + 4) % 16] = 3.0;
            l[(p + 2) % 16] = 0.25 * p as f32;
        }
        let got = x86::reduce8_test(&ls);
        for (p, l) in ls.iter().enumerate() {
            assert_eq!(got[p].to_bits(), tree16(l).to_bits(), "pixel {p}");
        }
    }

    /// The dispatch: stride 1 only, the channel ranges, never the pointwise GEMM case.
    #[test]
    fn kind_of_geometries() {
        let g = |c, oc, s| Conv2dGeom::new([1, 9, 9, c], [3, 3], oc, [s, s], [1, 1], Padding::Same);
        assert_eq!(kind_of(&g(32, 64, 1)), Some(Kind::Channels));
        assert_eq!(kind_of(&g(1, 32, 1)), Some(Kind::Outputs));
        assert_eq!(kind_of(&g(3, 8, 1)), None);
        assert_eq!(kind_of(&g(32, 64, 2)), None);
        assert_eq!(kind_of(&g(256, 64, 1)), None);
        let pw = Conv2dGeom::new([1, 9, 9, 32], [1, 1], 64, [1, 1], [1, 1], Padding::Valid);
        assert_eq!(kind_of(&pw), None);
    }

    /// The halving tree adds exactly the documented pairs.
    #[test]
    fn tree16_pairs() {
        // Values chosen so that any other order of additions rounds differently in f32.
        let mut l = [0f32; LANES];
        l[0] = 1.0e8;
        l[8] = -1.0e8;
        l[1] = 1.0;
        l[9] = 0.5;
        l[4] = 3.0;
        assert_eq!(tree16(&l), ((1.0e8f32 + -1.0e8) + 3.0) + (1.0 + 0.5));
        let l: [f64; LANES] = std::array::from_fn(|i| i as f64);
        assert_eq!(tree16(&l), 120.0);
    }
}
