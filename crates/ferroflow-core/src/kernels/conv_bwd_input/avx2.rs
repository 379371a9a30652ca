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

/// Pixels per block of [`band3x3`]: 8 accumulators (one half of 8 pixels), as many add chains
/// in flight as the FMA latency (4) times the two FMA pipes of Zen 3 needs, and then one
/// [`reduce8_avx2`].
const BP: usize = 8;

/// Filter row `ky` of one half of block `x0..x0 + P` (`P <= 8` pixels of an input row, every
/// tap inside the output): `acc[p] = fma(d, w[kx][j], acc[p])` for the taps `kx` ascending and,
/// in each, the chunks `j` ascending — the order of [`Generic`]'s `outs` — reading `dz` in
/// place. Column `cc` of the block (`dz` column `col0 + cc`) serves pixel `p = cc + kx - 2` for
/// tap `kx`; the columns go from right to left, so each pixel meets its taps in ascending `kx`,
/// and each column is loaded once for its (up to) three pixels. `EDGE`: only the columns whose
/// bit is set in `cols` exist (inside `0..ow`); at a row's ends the others are taps outside the
/// output, which the portable body skips too (without `EDGE`, all `P + 2` exist). `FULL`:
/// `oc == 16J` (every lane read is a channel, the offsets constants); else the lanes of `lanes`
/// below `oc` are read (masked) and an empty half skipped.
///
/// # Safety
/// AVX2 and FMA; `row` is the `dz` row (`ow * oc` floats); every column `col0 + cc` read
/// (all, or those in `cols` with `EDGE`) inside `0..ow`.
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn block_row<const P: usize, const J: usize, const FULL: bool, const EDGE: bool>(
    acc: &mut [__m256; BP],
    row: *const f32,
    wk: &[[__m256; J]; 3],
    col0: isize,
    cols: u32,
    oc: usize,
    h: usize,
    lanes: &[(usize, __m256i); J],
) {
    let oc = if FULL { J * LANES } else { oc };
    // Column `col0` (maybe outside the row, and then not read).
    let base = row.wrapping_offset(col0 * oc as isize + (h * H) as isize);
    for cc in (0..P + 2).rev() {
        // One bit test per column (a mask in one register): the edge form only.
        if EDGE && cols & (1 << cc) == 0 {
            continue;
        }
        for j in 0..J {
            let at = cc * oc + j * LANES;
            // SAFETY: column `0 <= col0 + cc < ow`; the lanes read are its channels (all 8 when
            // `FULL`, else the masked ones below `oc`).
            let d = unsafe {
                if FULL {
                    _mm256_loadu_ps(base.wrapping_add(at))
                } else {
                    let (n, mask) = lanes[j];
                    if n == 0 {
                        continue;
                    }
                    _mm256_maskload_ps(base.wrapping_add(at), mask)
                }
            };
            for kx in 0..3 {
                let p = cc + kx;
                if p >= 2 && p - 2 < P {
                    acc[p - 2] = _mm256_fmadd_ps(d, wk[kx][j], acc[p - 2]);
                }
            }
        }
    }
}

/// One block `x0..x0 + P` of an input row, channel `ci`: both halves over the filter rows that
/// meet the output ([`block_row`]), the halves added and reduced ([`reduce8_avx2`]), the `P`
/// sums stored at `out` (stride `c`).
///
/// # Safety
/// AVX2 and FMA; `rows[ky]` null or a `dz` row (`ow * oc` floats); `wr` the `[tap][ci][16J]`
/// filter; `out` valid for `(P - 1) * c + 1` writes; `FULL` only when `oc == 16J`; without
/// `EDGE`, the block's columns `x0 + pad_left - 2 .. x0 + pad_left + P` inside `0..ow`.
// Not inlined: alone, the 8 accumulators, 6 filter vectors and a column fit the 16 registers.
#[inline(never)]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const P: usize, const J: usize, const FULL: bool, const EDGE: bool>(
    g: &Conv2dGeom,
    wr: &[f32],
    rows: &[*const f32; 3],
    x0: usize,
    ci: usize,
    lanes: &[[(usize, __m256i); J]; 2],
    out: *mut f32,
) {
    let (c, oc, px) = (g.c, g.oc, J * LANES);
    // Columns `col0 + lo .. col0 + hi` of the block's `P + 2` lie inside `0..ow`.
    let col0 = x0 as isize + g.pad_left as isize - 2;
    let lo = (-col0).clamp(0, P as isize + 2) as usize;
    let hi = (g.ow as isize - col0).clamp(lo as isize, P as isize + 2) as usize;
    let cols = ((1u32 << hi) - 1) & !((1u32 << lo) - 1);
    let zero = _mm256_setzero_ps();
    let mut s8 = [zero; BP];
    for h in 0..2 {
        let mut acc = [zero; BP];
        for (ky, &row) in rows.iter().enumerate() {
            if row.is_null() {
                continue;
            }
            let wk: [[__m256; J]; 3] = std::array::from_fn(|kx| {
                std::array::from_fn(|j| {
                    let o = ((ky * 3 + kx) * c + ci) * px + j * LANES + h * H;
                    let ws = &wr[o..o + H];
                    // SAFETY: `ws` holds 8 floats.
                    unsafe { _mm256_loadu_ps(ws.as_ptr()) }
                })
            });
            // SAFETY: the caller's `row`, columns and `FULL`.
            unsafe {
                block_row::<P, J, FULL, EDGE>(&mut acc, row, &wk, col0, cols, oc, h, &lanes[h])
            };
        }
        for p in 0..P {
            s8[p] = if h == 0 {
                acc[p]
            } else {
                _mm256_add_ps(s8[p], acc[p])
            };
        }
    }
    let mut sums = [0f32; BP];
    // SAFETY: `sums` holds 8 floats.
    unsafe { _mm256_storeu_ps(sums.as_mut_ptr(), reduce8_avx2(&s8)) };
    for (p, &v) in sums[..P].iter().enumerate() {
        // SAFETY: `p * c < (P - 1) * c + 1` (the caller's bound).
        unsafe { *out.add(p * c) = v };
    }
}

/// [`block`] for `n` (`1..=8`) pixels: the interior form (7 or 8 pixels whose columns all lie
/// inside the output, `FULL`) or the edge form.
///
/// # Safety
/// As [`block`] with `P = n`.
#[inline]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_n<const J: usize, const FULL: bool>(
    g: &Conv2dGeom,
    wr: &[f32],
    rows: &[*const f32; 3],
    x0: usize,
    n: usize,
    ci: usize,
    lanes: &[[(usize, __m256i); J]; 2],
    out: *mut f32,
) {
    let col0 = x0 + g.pad_left;
    let inside = FULL && col0 >= 2 && col0 + n <= g.ow;
    let a = (g, wr, rows, x0, ci, lanes, out);
    // SAFETY: the caller's; the interior form only with its columns inside `0..ow`.
    unsafe {
        match (n, inside) {
            (8, true) => block::<8, J, FULL, false>(a.0, a.1, a.2, a.3, a.4, a.5, a.6),
            (7, true) => block::<7, J, FULL, false>(a.0, a.1, a.2, a.3, a.4, a.5, a.6),
            (8, _) => block::<8, J, FULL, true>(a.0, a.1, a.2, a.3, a.4, a.5, a.6),
            (7, _) => block::<7, J, FULL, true>(a.0, a.1, a.2, a.3, a.4, a.5, a.6),
            (6, _) => block::<6, J, FULL, true>(a.0, a.1, a.2, a.3, a.4, a.5, a.6),
            (5, _) => block::<5, J, FULL, true>(a.0, a.1, a.2, a.3, a.4, a.5, a.6),
            (4, _) => block::<4, J, FULL, true>(a.0, a.1, a.2, a.3, a.4, a.5, a.6),
            (3, _) => block::<3, J, FULL, true>(a.0, a.1, a.2, a.3, a.4, a.5, a.6),
            (2, _) => block::<2, J, FULL, true>(a.0, a.1, a.2, a.3, a.4, a.5, a.6),
            _ => block::<1, J, FULL, true>(a.0, a.1, a.2, a.3, a.4, a.5, a.6),
        }
    }
}

/// The AVX2 3x3 row kernel: input rows `iy0..iy1` of one image (all `c` channels) for a
/// [`super::fast3_geom`] geometry with `J = ceil(oc / 16)`, reading the band's `dz` rows in
/// place, in balanced blocks of up to [`BP`] pixels of a row ([`block`]: their lane sums in
/// registers over the filter rows, each `dz` column loaded once per half). Taps outside the
/// output are skipped, as the portable body skips them. Then the halves are added and reduced
/// ([`reduce8_avx2`]): the bits of the portable block kernel.
///
/// (Until the fifteenth session this kernel copied each `dz` row into a zero-bordered ring and
/// ran every tap over whole rows with the lane sums in memory: a fifth of its time was that
/// copy, and 8% more multiply-adds the border's zeros.)
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
) {
    let (w, c, oc, ow) = (g.w, g.c, g.oc, g.ow);
    let px = J * LANES;
    let oy_hi = (iy1 + g.pad_top).min(g.oh);
    assert!(oc <= px && dxb.len() == (iy1 - iy0) * w * c);
    assert!(wr.len() >= 9 * c * px && dz.len() >= (oy_hi - oy_lo) * ow * oc);
    // Lanes of half `h` of chunk `j` below `oc`, and their load mask.
    let lanes: [[(usize, __m256i); J]; 2] = std::array::from_fn(|h| {
        std::array::from_fn(|j| {
            let n = oc.saturating_sub(j * LANES + h * H).min(H);
            (n, first_lanes(n))
        })
    });
    let full = oc == px;
    // Balanced blocks of at most `BP` pixels (a row of 28: four of 7).
    let nb = w.div_ceil(BP);
    for iy in iy0..iy1 {
        // The `dz` row of each filter row that meets the output (null: none).
        let rows: [*const f32; 3] = std::array::from_fn(|ky| {
            let oy = (iy + g.pad_top).wrapping_sub(ky);
            if oy < oy_lo || oy >= oy_hi {
                std::ptr::null()
            } else {
                dz[(oy - oy_lo) * ow * oc..][..ow * oc].as_ptr()
            }
        });
        let drow = &mut dxb[(iy - iy0) * w * c..(iy - iy0 + 1) * w * c];
        for ci in 0..c {
            let mut x0 = 0;
            for b in 0..nb {
                let n = w / nb + usize::from(b < w % nb);
                let out = drow[x0 * c + ci..].as_mut_ptr();
                // SAFETY: AVX2 and FMA (this function's feature); the rows hold `ow * oc`
                // floats; `out` has `(w - x0 - 1) * c + 1 >= (n - 1) * c + 1` floats left;
                // `FULL` only when `oc == 16J`.
                unsafe {
                    if full {
                        block_n::<J, true>(g, wr, &rows, x0, n, ci, &lanes, out)
                    } else {
                        block_n::<J, false>(g, wr, &rows, x0, n, ci, &lanes, out)
                    }
                }
                x0 += n;
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
        // The AVX2 kernel reads `dz` in place: no ring.
        _ring: &mut Vec<f32>,
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
            unsafe { band3x3::<1>(g, wr, dz, oy_lo, iy0, iy1, dxb) };
        } else {
            unsafe { band3x3::<2>(g, wr, dz, oy_lo, iy0, iy1, dxb) };
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
