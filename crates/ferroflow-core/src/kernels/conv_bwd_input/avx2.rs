//! The AVX2 f32 micro-kernels of the direct input gradient (intrinsics), for CPUs without
//! AVX-512: the same arithmetic as [`super::Generic`], element for element.
//!
//! A 16-lane vector of the generic bodies is two `ymm` halves here (lanes `0..8` and `8..16`),
//! so every lane's chain of `acc = acc + d*w` (a separate multiply and add) is unchanged, and
//! the pixel tree sum of [`Kind::Outputs`](super::Kind::Outputs) adds the very pairs of
//! [`super::tree16`]: `s8` is one add of the two halves, then 128-bit halves, then pairs.
//! With 16 `ymm` registers the blocks are smaller than on AVX-512 ([`Avx2::pmax`]); blocking
//! never changes an element's operations, so the bits equal the portable body's.

use super::x86::{check, ctx_f32};
use super::{BlockCtx, Generic, Kind, Micro, LANES};
use crate::kernels::float::as_f32_mut;
use crate::kernels::Float;
use std::arch::x86_64::*;

/// AVX2 f32 bodies. Only built after the CPU was found to support AVX2.
pub(super) struct Avx2;

/// Lanes of one `ymm` register.
const H: usize = 8;

/// The lane mask of the first `n` (`0..=8`) lanes, for `maskload` / `maskstore`.
#[inline]
#[target_feature(enable = "avx2")]
fn first_lanes(n: usize) -> __m256i {
    let n = n.min(H) as i32;
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// The lane mask of bits `8h..8h + 8` of a 16-lane `u16` mask.
#[inline]
#[target_feature(enable = "avx2")]
fn half_mask(mask: u16, h: usize) -> __m256i {
    let bits = _mm256_set1_epi32(i32::from((mask >> (H * h)) as u8));
    let sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    _mm256_cmpeq_epi32(_mm256_and_si256(bits, sel), sel)
}

/// `acc[p][v] += dz(p, o) * w[tap][o][ci0 + 16v..]` over the class's taps and all `o`, each
/// 16-lane vector in two halves.
///
/// # Safety
/// The CPU must support AVX2; the block must have passed [`check`].
#[target_feature(enable = "avx2")]
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
                            acc[p][v][h] = _mm256_add_ps(acc[p][v][h], _mm256_mul_ps(d, wv[v][h]));
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
#[target_feature(enable = "avx2")]
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
/// The CPU must support AVX2; the block must have passed [`check`].
#[target_feature(enable = "avx2")]
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
                            acc[p][h] = _mm256_add_ps(acc[p][h], _mm256_mul_ps(d, wv[h]));
                        }
                    }
                } else {
                    let m = [half_mask(mask, 0), half_mask(mask, 1)];
                    for p in 0..P {
                        let at = ptrs[p].wrapping_offset(doff);
                        for h in 0..2 {
                            let d = _mm256_maskload_ps(at.wrapping_add(h * H), m[h]);
                            acc[p][h] = _mm256_add_ps(acc[p][h], _mm256_mul_ps(d, wv[h]));
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
        // SAFETY: an `Avx2` is only used after detecting AVX2; bounds checked above.
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
        // SAFETY: an `Avx2` is only used after detecting AVX2; bounds checked above.
        unsafe { outs_avx2::<P>(&cx32, bases, douts, dx) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree16_avx2_is_tree16() {
        if !std::is_x86_feature_detected!("avx2") {
            eprintln!("skipped: no AVX2");
            return;
        }
        let mut s = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let l: [f32; LANES] = std::array::from_fn(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 10f32.powi((s % 9) as i32 - 4)
            });
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
