//! The AVX2 f32 micro-kernels of the direct input gradient (intrinsics), for CPUs without
//! AVX-512: the same arithmetic as [`super::Generic`], element for element.
//!
//! A 16-lane vector of the generic bodies is two `ymm` halves here (lanes `0..8` and `8..16`),
//! so every lane's chain of `acc = fma(d, w, acc)` (`vfmadd`, the portable `mul_add`) is unchanged, and
//! the pixel tree sum of [`Kind::Outputs`](super::Kind::Outputs) adds the very pairs of
//! [`super::tree16`]: `s8` is one add of the two halves, then 128-bit halves, then pairs.
//! With 16 `ymm` registers the blocks are smaller than on AVX-512 ([`Avx2::pmax`]); blocking
//! never changes an element's operations, so the bits equal the portable body's.

use super::x86::{check, ctx_f32};
use super::{BlockCtx, Generic, Kind, Micro, Plan, LANES};
use crate::kernels::conv::Conv2dGeom;
use crate::kernels::float::{as_f32, as_f32_mut};
use crate::kernels::Float;
use std::arch::x86_64::*;

/// AVX2 f32 bodies. Only built after the CPU was found to support AVX2 and FMA (`simd::Level::Avx2`).
pub(super) struct Avx2;

/// Lanes of one `ymm` register.
const H: usize = 8;

/// The lane mask of the first `n` (`0..=8`) lanes, for `maskload` / `maskstore`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn first_lanes(n: usize) -> __m256i {
    let n = n.min(H) as i32;
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// The lane mask of bits `8h..8h + 8` of a 16-lane `u16` mask.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn half_mask(mask: u16, h: usize) -> __m256i {
    let bits = _mm256_set1_epi32(i32::from((mask >> (H * h)) as u8));
    let sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    _mm256_cmpeq_epi32(_mm256_and_si256(bits, sel), sel)
}

/// `acc[p][v] += dz(p, o) * w[tap][o][ci0 + 16v..]` over the class's taps and all `o`, each
/// 16-lane vector in two halves.
///
/// # Safety
/// The CPU must support AVX2 and FMA; the block must have passed [`check`].
#[target_feature(enable = "avx2,fma")]
unsafe fn chan_avx2<const P: usize, const V: usize>(
    cx: &BlockCtx<'_, f32>,
    ci0: usize,
    nvalid: usize,
    bases: &[usize; P],
    douts: &[usize; P],
    dx: &mut [f32],
) {
    let (oc, wp) = (cx.oc, cx.wp);
    let mut acc = [[[_mm256_setzero_ps(); 2]; V]; P];
    let dz = cx.dz.as_ptr();
    for (&toff, &tap) in cx.toffs.iter().zip(cx.taps) {
        // SAFETY: `check` asserted `toff <= bases[p]` and `bases[p] + oc <= dz.len()`, and
        // `(tap + 1) * oc * wp <= wr.len()`; `o < oc` and `ci0 + 16*V <= wp` below.
        unsafe {
            let wt = cx.wr.as_ptr().add(tap * oc * wp + ci0);
            let ptrs: [*const f32; P] = std::array::from_fn(|p| dz.add(bases[p] - toff));
            for o in 0..oc {
                let mut wv = [[_mm256_setzero_ps(); 2]; V];
                for (v, wvv) in wv.iter_mut().enumerate() {
                    for (h, x) in wvv.iter_mut().enumerate() {
                        *x = _mm256_loadu_ps(wt.add(o * wp + v * LANES + h * H));
                    }
                }
                for p in 0..P {
                    let d = _mm256_broadcast_ss(&*ptrs[p].add(o));
                    for v in 0..V {
                        for h in 0..2 {
                            acc[p][v][h] = _mm256_fmadd_ps(d, wv[v][h], acc[p][v][h]);
                        }
                    }
                }
            }
        }
    }
    for (accp, &at) in acc.iter().zip(douts) {
        for (i, &a) in accp.iter().flatten().enumerate() {
            let lo = i * H;
            if lo >= nvalid {
                break;
            }
            let n = (nvalid - lo).min(H);
            // SAFETY: `douts[p] + ci0 + nvalid <= dx.len()` (`check`); a full store writes
            // lanes `lo..lo + 8 <= nvalid`, the masked one only the `n` lanes below it.
            unsafe {
                let at = dx.as_mut_ptr().add(at + ci0 + lo);
                if n == H {
                    _mm256_storeu_ps(at, a);
                } else {
                    _mm256_maskstore_ps(at, first_lanes(n), a);
                }
            }
        }
    }
}

/// The AVX2 form of [`super::tree16`] on a pixel's two halves (the same pairs, in the same
/// order): `s8 = lo + hi`, `s4 = s8[..4] + s8[4..]`, `s2 = [s4[0] + s4[2], s4[1] + s4[3]]`,
/// then `s2[0] + s2[1]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn tree16_avx2(a: [__m256; 2]) -> f32 {
    let s8 = _mm256_add_ps(a[0], a[1]);
    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_add_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2));
    _mm_cvtss_f32(s1)
}

/// Lane partial sums over the class's taps and 16-wide `o` chunks (`cx.steps`, each in two
/// halves), then [`tree16_avx2`].
///
/// # Safety
/// The CPU must support AVX2 and FMA; the block must have passed [`check`].
#[target_feature(enable = "avx2,fma")]
unsafe fn outs_avx2<const P: usize>(
    cx: &BlockCtx<'_, f32>,
    bases: &[usize; P],
    douts: &[usize; P],
    dx: &mut [f32],
) {
    let (c, wp) = (cx.c, cx.wp);
    let dz = cx.dz.as_ptr();
    let ptrs: [*const f32; P] = std::array::from_fn(|p| dz.wrapping_add(bases[p]));
    for ci in 0..c {
        let mut acc = [[_mm256_setzero_ps(); 2]; P];
        let w0 = cx.wr.as_ptr().wrapping_add(ci * wp);
        for &(doff, woff, mask) in cx.steps {
            // SAFETY: `check` asserted `toff <= bases[p]` and `bases[p] - toff + oc <=
            // dz.len()` for every tap: a step reads `dz[bases[p] - toff + 16j ..]`, masked to
            // `o < oc` when the chunk is partial; the filter read `(tap*c + ci)*wp + 16j ..
            // + 16` is inside `(tap_max + 1)*c*wp <= wr.len()`.
            unsafe {
                let wv = [
                    _mm256_loadu_ps(w0.add(woff)),
                    _mm256_loadu_ps(w0.add(woff + H)),
                ];
                if mask == u16::MAX {
                    for p in 0..P {
                        let at = ptrs[p].wrapping_offset(doff);
                        for h in 0..2 {
                            let d = _mm256_loadu_ps(at.add(h * H));
                            acc[p][h] = _mm256_fmadd_ps(d, wv[h], acc[p][h]);
                        }
                    }
                } else {
                    let m = [half_mask(mask, 0), half_mask(mask, 1)];
                    for p in 0..P {
                        let at = ptrs[p].wrapping_offset(doff);
                        for h in 0..2 {
                            let d = _mm256_maskload_ps(at.wrapping_add(h * H), m[h]);
                            acc[p][h] = _mm256_fmadd_ps(d, wv[h], acc[p][h]);
                        }
                    }
                }
            }
        }
        for p in 0..P {
            dx[douts[p] + ci] = tree16_avx2(acc[p]);
        }
    }
}

/// The tree sums of 8 pixels' 16 lane partials at once, each pixel given as its `s8` (the
/// first step of [`super::tree16`], `lo + hi`): lane `k` of the result is pixel `k`'s sum, the
/// very pairs of [`super::tree16`] (`s4` by 128-bit halves of two pixels, `s2` and the last pair
/// by in-lane shuffles of four, then one permutation).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn reduce8_avx2(s8: &[__m256; 8]) -> __m256 {
    // s4: [x.s4, y.s4] (s8[i] + s8[i + 4], i < 4).
    let s4 = |x: __m256, y: __m256| {
        _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(x, y),
            _mm256_permute2f128_ps::<0x31>(x, y),
        )
    };
    let (q01, q23, q45, q67) = (
        s4(s8[0], s8[1]),
        s4(s8[2], s8[3]),
        s4(s8[4], s8[5]),
        s4(s8[6], s8[7]),
    );
    // s2: [x.s2, z.s2 | y.s2, u.s2] from [x | y] and [z | u] (s4[i] + s4[i + 2], i < 2).
    let s2 = |a: __m256, b: __m256| {
        _mm256_add_ps(
            _mm256_shuffle_ps::<0b01_00_01_00>(a, b),
            _mm256_shuffle_ps::<0b11_10_11_10>(a, b),
        )
    };
    // r0 = [p0, p2 | p1, p3], r1 = [p4, p6 | p5, p7] (two s2 values each).
    let (r0, r1) = (s2(q01, q23), s2(q45, q67));
    // s2[0] + s2[1]: [p0, p2, p4, p6 | p1, p3, p5, p7].
    let f = _mm256_add_ps(
        _mm256_shuffle_ps::<0b10_00_10_00>(r0, r1),
        _mm256_shuffle_ps::<0b11_01_11_01>(r0, r1),
    );
    _mm256_permutevar8x32_ps(f, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// One filter row `ky` of half `h` (lanes `8h..8h + 8` of each 16-wide `o` chunk) for the `w`
/// pixels of an input row: `acc[x] = acc[x] + d*w` over the taps `kx` ascending, and in each
/// the `J` chunks ascending (the order of [`Generic`]'s `outs`), `acc[x]` starting at `+0` when
/// `first`. `row` is the zero-bordered `dz` row `oy = iy + pad_top - ky`; pixel `x` with tap
/// `kx` reads bordered column `x + 2 - kx`. The row's filter vectors stay in registers; pixels
/// go [`RP`] at a time ([`rowp`]), so that several add chains are in flight.
///
/// # Safety
/// AVX2 and FMA; `row` readable for `(w + 2) * 16 * J` floats, `acc` writable for `8 * w`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn row3<const J: usize>(
    row: *const f32,
    wk: &[[__m256; J]; 3],
    h: usize,
    w: usize,
    acc: *mut f32,
    first: bool,
) {
    // SAFETY: the caller's bounds.
    let x = unsafe { rowp::<RP, J>(row, wk, h, 0, w - w % RP, acc, first) };
    // SAFETY: as above.
    unsafe { rowp::<1, J>(row, wk, h, x, w, acc, first) };
}

/// Pixels per step of [`row3`]'s main loop (independent add chains in flight).
const RP: usize = 2;

/// [`row3`] for pixels `x0..x1` (`x1 - x0` a multiple of `P`), `P` pixels a step: their
/// chains interleaved, the columns they share loaded once. Returns `x1`.
///
/// # Safety
/// As [`row3`], with `x1 <= w`.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn rowp<const P: usize, const J: usize>(
    row: *const f32,
    wk: &[[__m256; J]; 3],
    h: usize,
    x0: usize,
    x1: usize,
    acc: *mut f32,
    first: bool,
) -> usize {
    let px = J * LANES;
    // SAFETY (whole body): columns `x + p + 2 - kx <= w + 1` of `row`, lanes
    // `16j + 8h + 8 <= 16J`; `acc[8(x + p)..][..8]` with `x + p < w` (the caller's bounds).
    unsafe {
        let mut x = x0;
        while x < x1 {
            let mut a: [__m256; P] = std::array::from_fn(|p| {
                if first {
                    _mm256_setzero_ps()
                } else {
                    _mm256_loadu_ps(acc.add((x + p) * H))
                }
            });
            for kx in 0..3 {
                for j in 0..J {
                    for (p, ap) in a.iter_mut().enumerate() {
                        let d = _mm256_loadu_ps(row.add((x + p + 2 - kx) * px + j * LANES + h * H));
                        *ap = _mm256_fmadd_ps(d, wk[kx][j], *ap);
                    }
                }
            }
            for (p, ap) in a.iter().enumerate() {
                _mm256_storeu_ps(acc.add((x + p) * H), *ap);
            }
            x += P;
        }
        x1
    }
}

/// The AVX2 form of the AVX-512 `band3x3` (see there): input rows `iy0..iy1` of one image (all
/// `c` channels) for a [`super::fast3_geom`] geometry with `J = ceil(oc / 16)`, from the same
/// zero-bordered ring of `dz` rows (here 64-byte aligned, and without the zero row). Per
/// input row, channel and half of the lanes, each filter row that meets the output runs
/// [`row3`] over the whole row (a filter row reading the zero row would add `0 * w`, which
/// changes no bit: a lane starts at `+0`, so it is never `-0`, and the filter is finite); then
/// each 8 pixels' halves are added and reduced ([`reduce8_avx2`]): the bits of the portable
/// block kernel.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
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
    // Three ring rows, then the two halves' accumulators of one input row (`8 * w` each,
    // rounded up to whole groups of 8 pixels).
    let wg = w.div_ceil(8) * 8;
    let len = 3 * row_len + 2 * H * wg;
    ring.clear();
    ring.resize(len + LANES, 0.0);
    let skip = ring.as_ptr().align_offset(64).min(LANES);
    let (rows_buf, accs) = ring[skip..skip + len].split_at_mut(3 * row_len);
    assert!(oc <= px && dxb.len() == (iy1 - iy0) * w * c);
    assert!(wr.len() >= 9 * c * px);
    let mut slot_oy = [usize::MAX; 3];
    // Bordered column of `dz` column `ox`.
    let shift = 2 - g.pad_left;
    // The lane masks of each 8-lane part of a chunk (`o < oc`).
    let masks: [[__m256i; 2]; J] = std::array::from_fn(|j| {
        let n = oc - (j * LANES).min(oc);
        [first_lanes(n), first_lanes(n.saturating_sub(H))]
    });
    let full = oc == px;
    for iy in iy0..iy1 {
        // The ring row of each filter row that meets the output.
        let mut rows: [Option<usize>; 3] = [None; 3];
        for (ky, row) in rows.iter_mut().enumerate() {
            let oy = (iy + g.pad_top).wrapping_sub(ky);
            if oy >= g.oh {
                continue;
            }
            let sl = oy % 3;
            if slot_oy[sl] != oy {
                let src = &dz[(oy - oy_lo) * ow * oc..(oy - oy_lo + 1) * ow * oc];
                let dst = &mut rows_buf[sl * row_len..(sl + 1) * row_len];
                assert!((ow + shift) * px <= dst.len());
                if full {
                    dst[shift * px..(ow + shift) * px].copy_from_slice(src);
                } else {
                    for ox in 0..ow {
                        for (j, m) in masks.iter().enumerate() {
                            for (hh, &mh) in m.iter().enumerate() {
                                let lane = j * LANES + hh * H;
                                // SAFETY: the mask keeps lanes `< oc - lane`, inside
                                // `src[ox*oc..(ox + 1)*oc]`; the store writes 8 lanes of `dst`
                                // at `(ox + shift)*px + lane + 8 <= (ow + shift)*px`.
                                unsafe {
                                    let v = _mm256_maskload_ps(
                                        src.as_ptr().wrapping_add(ox * oc + lane),
                                        mh,
                                    );
                                    _mm256_storeu_ps(
                                        dst.as_mut_ptr().add((ox + shift) * px + lane),
                                        v,
                                    );
                                }
                            }
                        }
                    }
                }
                slot_oy[sl] = oy;
            }
            *row = Some(sl * row_len);
        }
        let drow = &mut dxb[(iy - iy0) * w * c..(iy - iy0 + 1) * w * c];
        for ci in 0..c {
            for h in 0..2 {
                let acc = &mut accs[h * H * wg..(h + 1) * H * wg];
                let mut first = true;
                for (ky, row) in rows.iter().enumerate() {
                    let Some(at) = *row else { continue };
                    let wk: [[__m256; J]; 3] = std::array::from_fn(|kx| {
                        std::array::from_fn(|j| {
                            let o = ((ky * 3 + kx) * c + ci) * px + j * LANES + h * H;
                            let ws = &wr[o..o + H];
                            // SAFETY: `ws` holds 8 floats.
                            unsafe { _mm256_loadu_ps(ws.as_ptr()) }
                        })
                    });
                    // SAFETY: AVX2 (this function's feature); the ring row holds
                    // `(w + 2) * px` floats and `acc` `8 * wg >= 8 * w`.
                    unsafe {
                        row3::<J>(
                            rows_buf[at..at + row_len].as_ptr(),
                            &wk,
                            h,
                            w,
                            acc.as_mut_ptr(),
                            first,
                        )
                    };
                    first = false;
                }
                if first {
                    // No filter row meets the output: every lane is `+0`.
                    acc.fill(0.0);
                }
            }
            let (lo, hi) = accs.split_at(H * wg);
            for x0 in (0..w).step_by(H) {
                let n = (w - x0).min(H);
                // SAFETY: pixels `x0..x0 + 8 <= wg` of both halves, 8 floats each.
                let sums = unsafe {
                    let s8: [__m256; 8] = std::array::from_fn(|k| {
                        _mm256_add_ps(
                            _mm256_loadu_ps(lo.as_ptr().add((x0 + k) * H)),
                            _mm256_loadu_ps(hi.as_ptr().add((x0 + k) * H)),
                        )
                    });
                    reduce8_avx2(&s8)
                };
                let mut out = [0f32; 8];
                // SAFETY: `out` holds 8 floats.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sums) };
                for (k, &v) in out[..n].iter().enumerate() {
                    drow[(x0 + k) * c + ci] = v;
                }
            }
        }
    }
}

impl<T: Float> Micro<T> for Avx2 {
    /// 16 `ymm` registers: at most 2 pixels of 32 channels (8 accumulators, 4 filter vectors)
    /// or 4 pixels of 16 lanes (8 accumulators, 2 filter vectors).
    fn pmax(&self, kind: Kind, c: usize) -> usize {
        match kind {
            Kind::Channels if c > LANES => 2,
            _ => 4,
        }
    }

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
        // SAFETY: an `Avx2` is only used after detecting AVX2 and FMA; bounds checked above.
        unsafe { chan_avx2::<P, V>(&cx32, ci0, nvalid, bases, douts, dx) }
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
        // SAFETY: an `Avx2` is only used after detecting AVX2 and FMA; bounds checked above.
        unsafe { outs_avx2::<P>(&cx32, bases, douts, dx) }
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
            dz.len() >= (oy_hi - oy_lo) * g.ow * g.oc && plan.wp == g.oc.div_ceil(LANES) * LANES
        );
        // SAFETY (both): an `Avx2` is only used after detecting AVX2.
        if plan.wp == LANES {
            unsafe { band3x3::<1>(g, wr, dz, oy_lo, iy0, iy1, dxb, ring) };
        } else {
            unsafe { band3x3::<2>(g, wr, dz, oy_lo, iy0, iy1, dxb, ring) };
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::bits_stream;

    /// Values in `[-5000, 5000)` of mixed magnitudes (`10^-4..10^4`), so that another addition
    /// order would round differently.
    fn mixed_values(seed: u64) -> impl Iterator<Item = f32> {
        bits_stream(seed).map(|s| {
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 10f32.powi((s % 9) as i32 - 4)
        })
    }

    #[test]
    fn tree16_avx2_is_tree16() {
        if !std::is_x86_feature_detected!("avx2") {
            eprintln!("skipped: no AVX2");
            return;
        }
        let mut vals = mixed_values(0x2545);
        for _ in 0..200 {
            let l: [f32; LANES] = std::array::from_fn(|_| vals.next().expect("endless"));
            // SAFETY: AVX2 was detected above; `l` holds 16 floats.
            let got = unsafe {
                tree16_avx2([
                    _mm256_loadu_ps(l.as_ptr()),
                    _mm256_loadu_ps(l.as_ptr().add(H)),
                ])
            };
            assert_eq!(got.to_bits(), super::super::tree16(&l).to_bits(), "{l:?}");
        }
    }

    /// The 8-pixel reduction adds exactly [`super::super::tree16`]'s pairs (values of mixed
    /// magnitudes, so that another order would round differently).
    #[test]
    fn reduce8_avx2_is_tree16() {
        if !std::is_x86_feature_detected!("avx2") {
            eprintln!("skipped: no AVX2");
            return;
        }
        let mut vals = mixed_values(0x9e37);
        for _ in 0..100 {
            let ls: [[f32; LANES]; 8] =
                std::array::from_fn(|_| std::array::from_fn(|_| vals.next().expect("endless")));
            let mut got = [0f32; 8];
            // SAFETY: AVX2 was detected above; every pointer addresses 8 floats.
            unsafe {
                let s8: [__m256; 8] = std::array::from_fn(|p| {
                    _mm256_add_ps(
                        _mm256_loadu_ps(ls[p].as_ptr()),
                        _mm256_loadu_ps(ls[p].as_ptr().add(H)),
                    )
                });
                _mm256_storeu_ps(got.as_mut_ptr(), reduce8_avx2(&s8));
            }
            for (p, l) in ls.iter().enumerate() {
                assert_eq!(
                    got[p].to_bits(),
                    super::super::tree16(l).to_bits(),
                    "pixel {p}"
                );
            }
        }
    }

    #[test]
    fn lane_masks() {
        if !std::is_x86_feature_detected!("avx2") {
            eprintln!("skipped: no AVX2");
            return;
        }
        let lanes = |m: __m256i| {
            let mut out = [0i32; 8];
            // SAFETY: `out` holds 8 i32.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), m) };
            out.map(|v| v != 0)
        };
        for n in 0..=8 {
            // SAFETY: AVX2 was detected above.
            let got = lanes(unsafe { first_lanes(n) });
            assert_eq!(got, std::array::from_fn(|i| i < n), "first_lanes({n})");
        }
        for mask in [0u16, 0x00ff, 0xff00, 0x0fff, 0x0001, 0x8000, 0xffff] {
            for h in 0..2 {
                // SAFETY: AVX2 was detected above.
                let got = lanes(unsafe { half_mask(mask, h) });
                assert_eq!(got, std::array::from_fn(|i| mask >> (8 * h + i) & 1 == 1));
            }
        }
    }
}
