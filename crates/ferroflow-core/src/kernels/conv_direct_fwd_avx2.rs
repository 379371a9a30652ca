//! AVX2 kernels of [`FastFwd`] for the 3x3, one-input-channel geometry
//! ([`FastFwd::wreg_geom`]: column stride and dilation 1; conv1 of the seed CNN, 28x28x1 -> 32)
//! on CPUs without AVX-512: plain output rows (with `_FusedConv2D`'s bias and ReLU) and the fused
//! 2x2/stride-2 max-pool (pooled values, and the `u8` argmax unless nobody reads it).
//!
//! 16 `ymm` registers of 8 lanes: the filter of a channel group is loaded per tap (one 32-byte
//! load per vector, reused by every pixel of the block) rather than held in registers, so the
//! accumulators get the registers: blocks of 2 pixels x [`VEC`] vectors (32 channels) for
//! the plain rows, one pooled pixel (2x2 convolution elements) x [`PVEC`] vectors for the pool.
//! A channel group that is left over (`ocp` is a multiple of 16) takes 2 vectors. The input value
//! of a tap is broadcast from the row (`vbroadcastss`) and multiplied into the accumulators by
//! FMA (`vfmadd`: half the instructions of a separate multiply and add, which on Zen 3 held the
//! plain rows at ~63% of one core's peak against ~87% with FMA; fourteenth session).
//!
//! Bits: the same sums in the same order as the portable kernel (from `+0`, tap by tap in
//! `(ky, kx)` order, `acc = fma(x, w, acc)`: one rounding, the portable body's `mul_add`), then `+ bias`, ReLU as
//! `max(v, 0)`, the pool's first maximum (a `>` ordered compare; the maximum itself as
//! `max(r, best)`, which selects the same; the argmax as the largest replacing index; the ReLU on
//! each window's first element only, since a later one replaces a maximum `>= +0` only when
//! positive), the same bits as `conv_direct_fwd`'s AVX-512 kernels. `FF_CONV_FWD_AVX2=off` sends
//! these geometries back to the generic bodies of `conv_direct` compiled for AVX2.

use super::{blocks, FastFwd};
use std::arch::x86_64::*;

/// `f32` lanes of a `ymm` vector.
const LV: usize = 8;
/// Vectors per channel group of the plain rows (32 channels).
const VEC: usize = 4;
/// Vectors per channel group of the pooled rows (16 channels; 2x2 elements x 2 = 8 accumulators).
const PVEC: usize = 2;

/// A channel group: the padded filter at its first channel (9 rows of `ocp`), its bias (null:
/// none), the epilogue and how many lanes of each vector are stored.
#[derive(Clone, Copy)]
struct Grp<const V: usize> {
    w: *const f32,
    ocp: usize,
    bias: *const f32,
    relu: bool,
    oc: usize,
    /// Lanes of vector `v` inside `oc` (8, fewer for the vector `oc` ends in, 0 past it).
    lanes: [usize; V],
}

impl<const V: usize> Grp<V> {
    /// The group of `V` vectors at channel `ob` of the plan (`ob + 8V <= ocp`).
    fn new(plan: &FastFwd<'_>, ob: usize) -> Self {
        let oc = plan.g.oc;
        Grp {
            w: plan.w[ob..].as_ptr(),
            ocp: plan.ocp,
            bias: if plan.bias.is_empty() {
                std::ptr::null()
            } else {
                plan.bias[ob..].as_ptr()
            },
            relu: plan.relu,
            oc,
            lanes: std::array::from_fn(|v| oc.saturating_sub(ob + v * LV).min(LV)),
        }
    }
}

/// The bias vectors of a group (zeros without bias).
///
/// # Safety
/// AVX2 and FMA; `g.bias` null or valid for `8V` reads.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn bias_vecs<const V: usize>(g: &Grp<V>) -> [__m256; V] {
    std::array::from_fn(|v| {
        if g.bias.is_null() {
            _mm256_setzero_ps()
        } else {
            // SAFETY: inside the padded bias (caller).
            unsafe { _mm256_loadu_ps(g.bias.add(v * LV)) }
        }
    })
}

/// Bias and ReLU on one accumulator, as the portable kernel: `acc + b`, then `max(v, 0)` (the
/// second operand unless `v > 0`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn epilogue(v: __m256, b: __m256, bias: bool, relu: bool) -> __m256 {
    let v = if bias { _mm256_add_ps(v, b) } else { v };
    if relu {
        _mm256_max_ps(v, _mm256_setzero_ps())
    } else {
        v
    }
}

/// A mask of the first `n < 8` lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn lane_mask(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// Stores the first `n` lanes of `v` at `dst`.
///
/// # Safety
/// AVX2 and FMA; `dst` valid for `n` writes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store(dst: *mut f32, v: __m256, n: usize) {
    // SAFETY: `n` lanes at `dst` (caller).
    unsafe {
        if n >= LV {
            _mm256_storeu_ps(dst, v);
        } else if n > 0 {
            _mm256_maskstore_ps(dst, lane_mask(n), v);
        }
    }
}

/// `acc[i][v] = fma(x(i), w[tap][v], acc[i][v])` for the `N` elements of a block, tap by tap in
/// `(ky, kx)` order, from `+0`: element `i` reads tap `(ky, kx)` at `r[ky] + at[i] + kx`.
///
/// # Safety
/// AVX2 and FMA; every read `r[ky] + at[i] + kx` (`kx < 3`) inside the rows, the filter rows `9 x 8V`
/// at `g.w` (stride `g.ocp`) inside the padded filter.
#[inline(always)]
unsafe fn taps<const N: usize, const V: usize>(
    r: [*const f32; 3],
    at: [usize; N],
    g: &Grp<V>,
) -> [[__m256; V]; N] {
    // SAFETY: the caller's target features (every caller is an AVX2 function).
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); V]; N];
        for (ky, &rk) in r.iter().enumerate() {
            for kx in 0..3 {
                let wk = g.w.add((3 * ky + kx) * g.ocp);
                let wv: [__m256; V] = std::array::from_fn(|v| _mm256_loadu_ps(wk.add(v * LV)));
                for (i, acci) in acc.iter_mut().enumerate() {
                    let a = _mm256_broadcast_ss(&*rk.add(at[i] + kx));
                    for (av, &wv) in acci.iter_mut().zip(&wv) {
                        *av = _mm256_fmadd_ps(a, wv, *av);
                    }
                }
            }
        }
        acc
    }
}

/// One block of `P` output pixels x `V` vectors of a plain row: tap `(ky, kx)` of pixel `p`
/// reads `r[ky] + p + kx`; then the epilogue and the store (pixel `p`, vector `v` at
/// `out + p*oc + 8v`, its stored lanes).
///
/// # Safety
/// AVX2 and FMA; the reads as [`taps`], the stored lanes inside the output.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn plain_block<const P: usize, const V: usize>(
    r: [*const f32; 3],
    g: &Grp<V>,
    bv: &[__m256; V],
    out: *mut f32,
) {
    // SAFETY: the caller's.
    let acc = unsafe { taps::<P, V>(r, std::array::from_fn(|p| p), g) };
    let has_bias = !g.bias.is_null();
    for (p, accp) in acc.iter().enumerate() {
        for (v, &a) in accp.iter().enumerate() {
            // SAFETY: pixel `p`, vector `v`: its stored lanes are inside the output (caller).
            unsafe {
                store(
                    out.add(p * g.oc + v * LV),
                    epilogue(a, bv[v], has_bias, g.relu),
                    g.lanes[v],
                )
            };
        }
    }
}

/// One pooled pixel x `V` vectors: element `e = 2i + j` (row `i`, column `j` of the window)
/// reads tap `(ky, kx)` at `r[ky] + i*rstep + j + kx`; then [`pool_store`].
///
/// # Safety
/// AVX2 and FMA; the reads as [`taps`], the stored lanes as [`pool_store`].
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn pool_block<const V: usize>(
    r: [*const f32; 3],
    rstep: usize,
    g: &Grp<V>,
    bv: &[__m256; V],
    out: *mut f32,
    arg: *mut u8,
) {
    // SAFETY: the caller's.
    unsafe {
        let acc = taps::<4, V>(r, [0, 1, rstep, rstep + 1], g);
        pool_store(&acc, bv, g, out, arg);
    }
}

/// The end of one pooled pixel: the epilogue of its four elements (`acc[e][v]`), the max and
/// (when `arg` is not null) the argmax, stored.
///
/// # Safety
/// AVX2 and FMA; the stored lanes of each vector at `out + 8v` (and `arg + 8v`) inside their rows.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn pool_store<const V: usize>(
    acc: &[[__m256; V]; 4],
    bv: &[__m256; V],
    g: &Grp<V>,
    out: *mut f32,
    arg: *mut u8,
) {
    let has_bias = !g.bias.is_null();
    for v in 0..V {
        let n = g.lanes[v];
        let mut best = epilogue(acc[0][v], bv[v], has_bias, g.relu);
        // The later elements skip the ReLU: `best >= +0` (and not NaN) after it, so
        // `max(r, 0) > best` exactly when `r > best`, and then `max(r, 0) = r`.
        let rest = |e: usize| epilogue(acc[e][v], bv[v], has_bias, false);
        if arg.is_null() {
            for e in 1..4 {
                // `r > best ? r : best`: MaxPool's rule.
                best = _mm256_max_ps(rest(e), best);
            }
            // SAFETY: `n` lanes at vector `v` (caller).
            unsafe { store(out.add(v * LV), best, n) };
            continue;
        }
        // The argmax is the last `e` that replaced the maximum. Its lane masks go to integer
        // registers (`movmskps`), where its two bits are a few scalar operations and the 8
        // lanes' bytes two lookups: the integer pipes are idle here, while the vector form
        // (an integer max of `e & m_e`, then packs to bytes) took six vector operations per
        // vector from the four pipes the multiplies, compares and maxima share.
        let mut m = [0u32; 4];
        for (e, me) in m.iter_mut().enumerate().skip(1) {
            let r = rest(e);
            // Only a strictly greater (ordered) value replaces: the first maximum. `max(r, best)`
            // is `r > best ? r : best`, the same selection.
            *me = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(r, best)) as u32;
            best = _mm256_max_ps(r, best);
        }
        // Index `3` where lane 3 replaced, else `2` where 2 did, else `1` where 1 did, else `0`.
        let bit1 = (m[3] | m[2]) as usize;
        let bit0 = (m[3] | (m[1] & !m[2])) as usize;
        let bytes = SPREAD[bit0] | (SPREAD[bit1] << 1);
        // SAFETY: `n` lanes at vector `v` of the pooled and argmax rows (caller).
        unsafe {
            store(out.add(v * LV), best, n);
            if n >= LV {
                std::ptr::write_unaligned(arg.add(v * LV).cast::<u64>(), bytes.to_le());
            } else if n > 0 {
                let b = bytes.to_le_bytes();
                std::ptr::copy_nonoverlapping(b.as_ptr(), arg.add(v * LV), n);
            }
        }
    }
}

/// `SPREAD[m]`: bit `i` of the 8-bit mask `m` as byte `i` (0 or 1) of a little-endian `u64`.
const SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut m = 0;
    while m < 256 {
        let mut i = 0;
        while i < 8 {
            t[m] |= ((m as u64 >> i) & 1) << (8 * i);
            i += 1;
        }
        m += 1;
    }
    t
};

/// Defines `$name`: the channel group at `ob` (`$v` vectors) of `nrows` plain rows, blocks of at
/// most `$max` pixels (one `plain_block` instance per size `$n`, `$max` last).
macro_rules! plain_group {
    ($name:ident, $v:literal, $max:literal, $($n:literal)*) => {
        /// A channel group of [`wreg_rows`] (see `plain_group!`).
        ///
        /// # Safety
        /// As [`wreg_rows`]; `ob + 8*$v <= ocp`.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $name(plan: &FastFwd<'_>, rows: &[f32], nrows: usize, ob: usize, yrows: *mut f32) {
            const V: usize = $v;
            let g = plan.g;
            let grp = Grp::<V>::new(plan, ob);
            // SAFETY: `ob + 8V <= ocp` (caller).
            let bv = unsafe { bias_vecs(&grp) };
            let (rstep, ostep) = (g.sh * plan.prow, g.ow * g.oc);
            for j in 0..nrows {
                let r = [0, 3, 6].map(|kk| rows.as_ptr().wrapping_add(j * rstep + plan.off[kk]));
                let out = yrows.wrapping_add(j * ostep + ob);
                blocks(g.ow, $max, |p0, n| {
                    // SAFETY: row `j < nrows`, pixels `p0..p0+n <= ow`: reads end at
                    // `j*sh*prow + off[6] + ow - 1 + 2 < rows.len()` (`wreg_rows` asserts it for
                    // the last row), writes inside row `j`'s `ow*oc`.
                    unsafe {
                        let rp = r.map(|q| q.add(p0));
                        let o = out.add(p0 * g.oc);
                        match n {
                            $($n => plain_block::<$n, V>(rp, &grp, &bv, o),)*
                            _ => plain_block::<$max, V>(rp, &grp, &bv, o),
                        }
                    }
                });
            }
        }
    };
}
// 2 pixels x 4 vectors = 8 accumulators, 4 filter vectors, a broadcast.
plain_group!(plain_group_main, 4, 2, 1);
// The leftover 16 channels: 4 pixels x 2 vectors.
plain_group!(plain_group2, 2, 4, 1 2 3);

/// `nrows` consecutive output rows (`rows` holds their input rows, output row `j` reading from
/// `j*sh*prow`) into `yrows` (`nrows` rows of `ow*oc`): the same bits as the portable kernel on
/// each row.
///
/// # Safety
/// AVX2 and FMA; `yrows` valid for `nrows*ow*oc` writes (the reads and the geometry are asserted).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn wreg_rows(plan: &FastFwd<'_>, rows: &[f32], nrows: usize, yrows: *mut f32) {
    let g = plan.g;
    if nrows == 0 {
        return;
    }
    assert!(FastFwd::wreg_geom(g) && plan.off.len() == 9 && plan.ocp.is_multiple_of(2 * LV));
    assert!((nrows - 1) * g.sh * plan.prow + plan.off[6] + 2 + g.ow - 1 < rows.len());
    let mut ob = 0;
    while ob < plan.ocp {
        // SAFETY: `ob + 8*V <= ocp`; the reads asserted above, `yrows` by contract.
        unsafe {
            if plan.ocp - ob >= VEC * LV {
                plain_group_main(plan, rows, nrows, ob, yrows);
                ob += VEC * LV;
            } else {
                plain_group2(plan, rows, nrows, ob, yrows);
                ob += 2 * LV;
            }
        }
    }
}

/// One pooled row (`rows` gathered for its two convolution rows) into `prow` and `arow` (null:
/// no argmax): the same bits as the portable kernel's fused pool.
///
/// # Safety
/// AVX2 and FMA; `prow` valid for `(ow/2)*oc` writes and `arow` null or valid for as many (the reads and
/// the geometry are asserted).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn wpool_row(plan: &FastFwd<'_>, rows: &[f32], prow: *mut f32, arow: *mut u8) {
    let g = plan.g;
    let pow = g.ow / 2;
    assert!(FastFwd::wreg_geom(g) && plan.off.len() == 9 && plan.ocp.is_multiple_of(PVEC * LV));
    assert!(pow == 0 || g.sh * plan.prow + plan.off[6] + 2 + 2 * pow - 1 < rows.len());
    let rstep = g.sh * plan.prow;
    let mut ob = 0;
    while ob < plan.ocp {
        let grp = Grp::<PVEC>::new(plan, ob);
        // SAFETY: `ob + 8*PVEC <= ocp` (`ocp` is a multiple of it).
        let bv = unsafe { bias_vecs(&grp) };
        let r = [0, 3, 6].map(|kk| rows.as_ptr().wrapping_add(plan.off[kk]));
        for q in 0..pow {
            // SAFETY: pooled pixel `q < ow/2`: convolution columns `2q, 2q+1 < ow` of rows 0 and
            // 1, reads inside `rows` (asserted above), writes inside the pooled (and argmax) row.
            unsafe {
                let rp = r.map(|p| p.add(2 * q));
                let at = q * g.oc + ob;
                let a = if arow.is_null() { arow } else { arow.add(at) };
                pool_block::<PVEC>(rp, rstep, &grp, &bv, prow.add(at), a);
            }
        }
        ob += PVEC * LV;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bits, epilogues, pool, portable_pool, wreg_geoms, Rng};
    use super::super::{avx2_enabled, enabled, forward_vec, maxpool2x2_vec, FastFwd};
    use crate::kernels::conv::Conv2dGeom;
    use crate::kernels::conv_direct::{self as cd, available_isas, Epilogue, Isa};
    use crate::kernels::conv_pool::{forward_on, Path, PoolWindow};
    use crate::kernels::padding::Padding;

    /// Whether this CPU runs the kernels (else the tests have nothing to compare).
    fn have() -> bool {
        let ok = available_isas().contains(&Isa::Avx2) && enabled() && avx2_enabled();
        if !ok {
            eprintln!("skipped: no AVX2 on this CPU, or FF_CONV_DIRECT_FWD / FF_CONV_FWD_AVX2 off");
        }
        ok
    }

    /// `wreg_geoms` plus `oc` around the 8-lane vectors (8, 9, 15, 24, 31), odd pooled edges.
    fn geoms() -> Vec<Conv2dGeom> {
        let v = Padding::Valid;
        let mut out = wreg_geoms();
        for (i, oc) in [8, 9, 15, 24, 31, 3].into_iter().enumerate() {
            let (h, w) = (7 + 2 * i, 6 + 3 * i);
            let pad = if i % 2 == 0 { v } else { Padding::Same };
            out.push(Conv2dGeom::new(
                [1 + i % 3, h, w, 1],
                [3, 3],
                oc,
                [1, 1],
                [1, 1],
                pad,
            ));
        }
        out
    }

    /// Plain rows, the fused 2x2 pool with and without argmax and the new-vector entries give the
    /// portable kernel's bits on 1 and 2 threads; the plan takes exactly the 3x3 one-channel
    /// geometries.
    #[test]
    fn avx2_kernels_match_the_portable_kernel_bit_for_bit() {
        if !have() {
            return;
        }
        let win = PoolWindow { ph: 2, pw: 2 };
        let mut r = Rng(0xA5A2_0001);
        let gs = geoms();
        assert!(gs.len() > 25);
        for g in gs {
            for coarse in [false, true] {
                let x = r.vec(g.input_len(), coarse);
                let w = r.vec(g.filter_len(), coarse);
                let b = r.vec(g.oc, coarse);
                let plan = FastFwd::new(Isa::Avx2, &g, &x, &w, epilogues(&b)[0]);
                assert!(plan.is_some_and(|p| p.avx2 && !p.wreg), "{g:?}");
                let (poh, pow) = win.pooled(g.oh, g.ow);
                let len = g.n * poh * pow * g.oc;
                for epi in epilogues(&b) {
                    let mut want = vec![0f32; g.output_len()];
                    cd::forward(Isa::Portable, &g, &x, &w, &mut want, epi);
                    let (want_p, want_a) = portable_pool(&g, &x, &w, epi, win);
                    let p = Path::Direct;
                    for threads in [1, 2] {
                        let what = format!(
                            "{g:?} coarse {coarse} bias {} relu {} threads {threads}",
                            epi.bias.is_some(),
                            epi.relu
                        );
                        let mut got = vec![f32::NAN; g.output_len()];
                        let (mut got_p, mut got_a) = (vec![f32::NAN; len], vec![9u8; len]);
                        let mut only = vec![f32::NAN; len];
                        let (y, (p1, a1), (p0, a0)) = pool(threads).install(|| {
                            cd::forward(Isa::Avx2, &g, &x, &w, &mut got, epi);
                            forward_on(
                                Isa::Avx2,
                                p,
                                &g,
                                &x,
                                &w,
                                epi,
                                win,
                                &mut got_p,
                                Some(&mut got_a),
                            );
                            forward_on(Isa::Avx2, p, &g, &x, &w, epi, win, &mut only, None);
                            (
                                forward_vec(&g, &x, &w, epi).expect("taken"),
                                maxpool2x2_vec(&g, &x, &w, epi, true).expect("taken"),
                                maxpool2x2_vec(&g, &x, &w, epi, false).expect("taken"),
                            )
                        });
                        assert_eq!(bits(&got), bits(&want), "{what}");
                        assert_eq!(bits(&y), bits(&want), "{what}: new vector");
                        assert!(a0.is_empty());
                        if len > 0 {
                            assert_eq!(bits(&got_p), bits(&want_p), "{what}: pooled");
                            assert_eq!(got_a, want_a, "{what}: argmax");
                            assert_eq!(bits(&only), bits(&want_p), "{what}: no argmax");
                            assert_eq!(bits(&p1), bits(&want_p), "{what}: pooled vector");
                            assert_eq!(a1, want_a, "{what}: argmax vector");
                            assert_eq!(bits(&p0), bits(&want_p), "{what}: pooled, no argmax");
                        }
                    }
                }
            }
        }
        // Not taken: several channels, a 2x2 or 3x2 filter, column stride or dilation 2.
        for (c, k, st, dil) in [
            (3, [3, 3], 1, 1),
            (1, [2, 2], 1, 1),
            (1, [3, 2], 1, 1),
            (1, [3, 3], 2, 1),
            (1, [3, 3], 1, 2),
        ] {
            let g = Conv2dGeom::new([1, 11, 13, c], k, 32, [1, st], [1, dil], Padding::Valid);
            let (x, w) = (r.vec(g.input_len(), false), r.vec(g.filter_len(), false));
            let epi = epilogues(&[])[0];
            assert!(FastFwd::new(Isa::Avx2, &g, &x, &w, epi).is_none(), "{g:?}");
        }
    }

    /// NaN inputs: ReLU maps NaN to 0; without ReLU the pool keeps MaxPool's rule (a NaN first
    /// element stays, a later NaN never replaces) and the argmax the strictly-greater scan's;
    /// ties (coarse data) keep the first maximum.
    #[test]
    fn nan_and_ties_follow_the_portable_rules() {
        if !have() {
            return;
        }
        let win = PoolWindow { ph: 2, pw: 2 };
        let same = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .all(|(u, v)| u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan()))
        };
        let mut r = Rng(5);
        for (oc, pad) in [
            (20, Padding::Same),
            (32, Padding::Valid),
            (13, Padding::Valid),
        ] {
            let g = Conv2dGeom::new([2, 12, 11, 1], [3, 3], oc, [1, 1], [1, 1], pad);
            for coarse in [false, true] {
                let mut x = r.vec(g.input_len(), coarse);
                for i in (0..x.len()).step_by(17) {
                    x[i] = f32::NAN;
                }
                let w = r.vec(g.filter_len(), coarse);
                let b = r.vec(g.oc, coarse);
                let (poh, pow) = win.pooled(g.oh, g.ow);
                let len = g.n * poh * pow * g.oc;
                for epi in epilogues(&b) {
                    let epi: Epilogue<'_, f32> = epi;
                    let mut want_y = vec![0f32; g.output_len()];
                    let mut got_y = vec![0f32; g.output_len()];
                    cd::forward(Isa::Portable, &g, &x, &w, &mut want_y, epi);
                    cd::forward(Isa::Avx2, &g, &x, &w, &mut got_y, epi);
                    assert!(same(&got_y, &want_y), "rows relu {}", epi.relu);
                    assert_eq!(epi.relu, !got_y.iter().any(|v| v.is_nan()));
                    let (want, want_a) = portable_pool(&g, &x, &w, epi, win);
                    let (mut got, mut got_a) = (vec![0f32; len], vec![0u8; len]);
                    let mut only = vec![0f32; len];
                    let p = Path::Direct;
                    forward_on(
                        Isa::Avx2,
                        p,
                        &g,
                        &x,
                        &w,
                        epi,
                        win,
                        &mut got,
                        Some(&mut got_a),
                    );
                    forward_on(Isa::Avx2, p, &g, &x, &w, epi, win, &mut only, None);
                    assert!(same(&got, &want), "pooled relu {}", epi.relu);
                    assert!(same(&only, &want), "pooled, no argmax, relu {}", epi.relu);
                    assert_eq!(got_a, want_a, "argmax relu {}", epi.relu);
                }
            }
        }
    }
}
