//! Direct register-tiled filter gradient of a 2-D convolution whose output channels are whole
//! vectors (`oc % 16 == 0`) and whose reduction is too large for
//! [`conv_direct`](super::conv_direct) (`kh*kw*c > 32`), with no padding read (every tap of every
//! output pixel inside the image: VALID windows, any strides and dilations) — the seed CNN's
//! second layer (13x13x32 -> 64, 3x3, valid) is the case it was written for.
//!
//! `dw[k, o] = sum over output pixels of x[pixel, k] * dz[pixel, o]` with `k = (ky, kx, ci)`.
//! The batch's output rows (`n*oh`, row `r` = image `r / oh`, output row `r % oh`) are cut into
//! at most [`MAX_PARTS`] fixed parts, their number a function of the problem size only. Each
//! part's partial is `+0`, then `acc = acc + x*dz` (a separate multiply and add, no FMA) over its
//! pixels in ascending order (rows, then `ox`); `dw = ((part0 + part1) + part2) + ...` in part
//! order. So the bits depend on the shapes only — not on the thread count, the chunking inside a
//! part, or the instruction set.
//!
//! The AVX-512 body keeps a tile of `Q` filter rows `k` (each input value broadcast) x `V`
//! vectors of 16 output channels (`dz` loaded once per pixel) in registers — 6 x 4 = 24
//! accumulators for 64 channels — while it runs over a chunk of output rows small enough that
//! the chunk's `dz` and input rows stay in L1/L2 while every tile of the filter is accumulated;
//! tiles are loaded from / stored to the part's partial between chunks (exact: the partial is
//! the running sum). The portable body (also compiled for AVX2 through
//! [`simd::run`](super::simd::run)) does the same operations per element in the same order.
//!
//! The output gradient is read through [`DyRows`]: a slice, or (`_FusedConv2DMaxPoolGrad`) rows
//! expanded from the pooled gradient into a chunk buffer — the same values the unfused ops see,
//! so the plain `Conv2DBackpropFilter` and the pooled fused gradient give the same bits.
//!
//! `FF_CONV_FILTER2=off` (read once) turns the kernel off: the tiled im2col + GEMM path runs
//! instead (for A/B timing in one binary).

use crate::kernels::float::{same_mut, same_ref};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::kernels::conv::{Conv2dGeom, DyRows};
use crate::kernels::simd::{self, Level};
use crate::kernels::Float;

/// Most parts of the batch's output rows (each with its own partial).
const MAX_PARTS: usize = 8;
/// Fewest multiply-adds per part (fewer parts for small problems).
const MIN_PART_MACS: usize = 1 << 22;
/// Below this many multiply-adds the parts run on the calling thread.
const PAR_MIN_MACS: usize = 1 << 18;
/// Target bytes of one chunk's `dz` rows plus input rows.
const CHUNK_BYTES: usize = 32 << 10;
/// f32 lanes per vector.
const L: usize = 16;

/// Whether the kernel is on (`FF_CONV_FILTER2` not `off`/`0`; read once).
fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    crate::kernels::env_switch::on(&ON, "FF_CONV_FILTER2")
}

/// Whether the geometry is one this kernel takes (switch aside): `oc` a positive multiple of 16,
/// `kh*kw*c` above the direct kernel's limit, not pointwise, and every tap of every output pixel
/// inside the image (no padding read).
pub(crate) fn applies(g: &Conv2dGeom) -> bool {
    let k = g.kh * g.kw * g.c;
    k > 0
        && !super::conv_direct::applies(g)
        && !g.is_pointwise()
        && g.n > 0
        && g.oc > 0
        && g.oc.is_multiple_of(L)
        && g.reads_no_padding()
}

/// Computes `dw` (`[kh, kw, c, oc]`, overwritten) with this kernel and returns `true`, or returns
/// `false` (nothing written: the caller runs its generic path) unless `T` is f32, the switch is
/// on, [`applies`] holds and the lengths match `g`.
pub(crate) fn try_backward_filter<T: Float, D: DyRows<T>>(
    g: &Conv2dGeom,
    x: &[T],
    dy: &D,
    dw: &mut [T],
) -> bool {
    // Only on AVX-512 CPUs: with AVX2 + FMA alone (Zen 3) the portable body measured 3-5x
    // slower than the tiled im2col + GEMM path it replaces (seed CNN conv2 b32: 10.7 against
    // 3.0 ms), so that path keeps those CPUs.
    if !enabled() || simd::detected() != Level::Avx512 || !applies(g) {
        return false;
    }
    let (Some(x), Some(dw)) = (same_ref::<T, f32>(x), same_mut::<T, f32>(dw)) else {
        return false;
    };
    if x.len() != g.input_len() || dw.len() != g.filter_len() {
        return false;
    }
    backward_filter_at(simd::detected(), g, x, dy, dw);
    true
}

/// The fixed cut of one problem: parts, chunks and register tiles.
struct Plan {
    g: Conv2dGeom,
    /// Output rows per part (the last may be shorter).
    part_rows: usize,
    /// Number of parts.
    parts: usize,
    /// Output rows per chunk inside a part (does not change the bits).
    chunk_rows: usize,
    /// Offset of filter row `k = (ky, kx, ci)` from an output pixel's first input element:
    /// `ky*dh*w*c + kx*dw*c + ci`.
    off: Vec<usize>,
    /// Register tiles `(first filter row, rows, first vector, vectors)`.
    tiles: Vec<(usize, usize, usize, usize)>,
}

impl Plan {
    fn new(g: &Conv2dGeom) -> Self {
        let k = g.kh * g.kw * g.c;
        let total_rows = g.n * g.oh;
        let macs = total_rows * g.ow * k * g.oc;
        let parts = (macs / MIN_PART_MACS).clamp(1, MAX_PARTS).min(total_rows);
        let part_rows = total_rows.div_ceil(parts);
        let parts = total_rows.div_ceil(part_rows);
        let row_bytes = 4 * (g.ow * g.oc + g.sh * g.w * g.c);
        let chunk_rows = (CHUNK_BYTES / row_bytes.max(1)).max(1);
        let mut off = Vec::with_capacity(k);
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                for ci in 0..g.c {
                    off.push(ky * g.dh * g.w * g.c + kx * g.dw * g.c + ci);
                }
            }
        }
        let nv = g.oc / L;
        let mut tiles = Vec::new();
        let mut vb = 0;
        while vb < nv {
            let v = (nv - vb).min(4);
            let qmax = match v {
                4 => 6,
                3 => 8,
                _ => 12,
            };
            let nb = k.div_ceil(qmax);
            let (base, rem) = (k / nb, k % nb);
            let mut kb = 0;
            for b in 0..nb {
                let q = base + usize::from(b < rem);
                tiles.push((kb, q, vb, v));
                kb += q;
            }
            vb += v;
        }
        Plan {
            g: *g,
            part_rows,
            parts,
            chunk_rows,
            off,
            tiles,
        }
    }

    /// Offset in `x` of the first input element of output row `r`'s pixel 0.
    #[inline(always)]
    fn row_base(&self, r: usize) -> usize {
        let g = &self.g;
        let (img, oy) = (r / g.oh, r % g.oh);
        (img * g.h + oy * g.sh) * g.w * g.c
    }
}

/// The whole filter gradient on instruction set `level` (AVX-512 tiles, or the portable body
/// compiled for the widest level up to `level`): the same bits whatever the level.
fn backward_filter_at<T: Float, D: DyRows<T>>(
    level: Level,
    g: &Conv2dGeom,
    x: &[f32],
    dy: &D,
    dw: &mut [f32],
) {
    let plan = Plan::new(g);
    let part_len = g.filter_len();
    let total_rows = g.n * g.oh;
    let mut partials = vec![0f32; (plan.parts - 1) * part_len];
    dw.fill(0.0);
    let mut outs: Vec<&mut [f32]> = std::iter::once(&mut *dw)
        .chain(partials.chunks_exact_mut(part_len))
        .collect();
    let plan = &plan;
    let task = |buf: &mut Vec<T>, p: usize, part: &mut [f32]| {
        let start = p * plan.part_rows;
        let end = total_rows.min(start + plan.part_rows);
        let mut r0 = start;
        while r0 < end {
            let nr = plan.chunk_rows.min(end - r0);
            let dz: &[f32] = same_ref(dy.rows(g, r0, nr, buf)).expect("T is f32 here");
            chunk(level, plan, x, dz, r0, nr, part);
            r0 += nr;
        }
    };
    let macs = total_rows * g.ow * g.k_len() * g.oc;
    if macs >= PAR_MIN_MACS && plan.parts > 1 && rayon::current_num_threads() > 1 {
        outs.par_iter_mut()
            .enumerate()
            .for_each_init(Vec::new, |buf, (p, part)| task(buf, p, part));
    } else {
        let mut buf = Vec::new();
        for (p, part) in outs.iter_mut().enumerate() {
            task(&mut buf, p, part);
        }
    }
    drop(outs);
    // dw = part0 + part1 + ... in part order (element by element: any vector width).
    let partials = &partials;
    simd::run(|| {
        for part in partials.chunks_exact(part_len) {
            for (d, &s) in dw.iter_mut().zip(part) {
                *d += s;
            }
        }
    });
}

/// Adds output rows `r0..r0+nr` (their gradient `dz`, `nr*ow*oc` long) into `part` (`[K, oc]`).
fn chunk(level: Level, p: &Plan, x: &[f32], dz: &[f32], r0: usize, nr: usize, part: &mut [f32]) {
    let g = &p.g;
    assert!(dz.len() >= nr * g.ow * g.oc && part.len() == p.off.len() * g.oc);
    assert!(r0 + nr <= g.n * g.oh && x.len() == g.input_len());
    #[cfg(target_arch = "x86_64")]
    if level == Level::Avx512 && simd::detected() == Level::Avx512 {
        let bases: Vec<usize> = (r0..r0 + nr).map(|r| p.row_base(r)).collect();
        for &(kb, q, vb, v) in &p.tiles {
            let f = avx512::pick(q, v);
            // SAFETY: the CPU has AVX-512 F/BW/DQ/VL (checked above); the lengths of `x`, `dz`
            // and `part` were checked against the geometry, every tap of every pixel is inside
            // the image (`applies`), and `kb + q <= K`, `(vb + v) * 16 <= oc` (the plan's tiles).
            unsafe { f(p, x, dz, &bases, kb, vb, part) };
        }
        return;
    }
    simd::run_at(level, || chunk_portable(p, x, dz, r0, nr, part));
}

/// [`chunk`] element by element: for each filter row `k` and channel `o`, `acc = acc + x*dz`
/// over the rows, then the pixels in ascending order (the tiles' order).
#[inline(always)]
fn chunk_portable(p: &Plan, x: &[f32], dz: &[f32], r0: usize, nr: usize, part: &mut [f32]) {
    let g = &p.g;
    let (oc, ow) = (g.oc, g.ow);
    let pstep = g.sw * g.c;
    for (k, acc) in part.chunks_exact_mut(oc).enumerate() {
        let off = p.off[k];
        for j in 0..nr {
            let xrow = p.row_base(r0 + j) + off;
            let drow = &dz[j * ow * oc..(j + 1) * ow * oc];
            for (ox, d) in drow.chunks_exact(oc).enumerate() {
                let a = x[xrow + ox * pstep];
                for (s, &dv) in acc.iter_mut().zip(d) {
                    *s += a * dv;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Plan, L};

    /// A tile kernel's signature (for the table of instantiations).
    pub(super) type TileFn =
        unsafe fn(&Plan, &[f32], &[f32], &[usize], usize, usize, &mut [f32]) -> ();

    macro_rules! table {
        ($q:ident, $v:ident; $($Q:literal)*) => {
            match ($q, $v) {
                $(
                    ($Q, 1) => tile::<$Q, 1> as TileFn,
                    ($Q, 2) => tile::<$Q, 2> as TileFn,
                    ($Q, 3) => tile::<$Q, 3> as TileFn,
                    ($Q, 4) => tile::<$Q, 4> as TileFn,
                )*
                _ => unreachable!("tiles hold 1..=12 filter rows and 1..=4 vectors"),
            }
        };
    }

    /// The instantiation for `q` filter rows x `v` vectors.
    pub(super) fn pick(q: usize, v: usize) -> TileFn {
        table!(q, v; 1 2 3 4 5 6 7 8 9 10 11 12)
    }

    /// Runs `$body` with `$i` bound to each literal below `$n` (a const generic): fully unrolled,
    /// so the accumulator arrays are indexed by constants and live in registers.
    macro_rules! unroll {
        ($i:ident < $n:expr; $body:block) => {
            unroll!(@ $i < $n; [0 1 2 3 4 5 6 7 8 9 10 11] $body)
        };
        (@ $i:ident < $n:expr; [$($k:literal)*] $body:block) => {
            $(
                if $k < $n {
                    let $i: usize = $k;
                    $body
                }
            )*
        };
    }

    /// Filter rows `kb..kb+Q` x channel vectors `vb..vb+V`: loaded from `part`, accumulated in
    /// registers over the chunk's rows and pixels `ox` ascending, stored back.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `part` is `K*oc` long, `dz` at least `nr*ow*oc` with
    /// `nr = bases.len()`, `x` is the whole input, `bases` the input offsets of output rows of
    /// the batch ([`Plan::row_base`]), every tap of every pixel is inside the image,
    /// `kb + Q <= K` and `(vb + V) * 16 <= oc`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const Q: usize, const V: usize>(
        p: &Plan,
        x: &[f32],
        dz: &[f32],
        bases: &[usize],
        kb: usize,
        vb: usize,
        part: &mut [f32],
    ) {
        let g = &p.g;
        let (oc, ow) = (g.oc, g.ow);
        let pstep = g.sw * g.c;
        let off: [usize; Q] = p.off[kb..kb + Q].try_into().expect("Q filter rows");
        let zero = _mm512_setzero_ps();
        let mut acc = [[zero; V]; Q];
        let pp = part.as_mut_ptr();
        unroll!(q < Q; {
            unroll!(v < V; {
                // SAFETY: `(kb+q)*oc + (vb+v)*16 + 16 <= K*oc` (the caller's bounds).
                acc[q][v] = unsafe { _mm512_loadu_ps(pp.add((kb + q) * oc + (vb + v) * L)) };
            });
        });
        let xp0 = x.as_ptr();
        let dp0 = dz.as_ptr();
        for (j, &base) in bases.iter().enumerate() {
            // SAFETY: `base` is the input offset of a row of the batch: its input pixels and
            // taps are inside `x` (the caller's bounds), its gradient row inside `dz`.
            let xrow = unsafe { xp0.add(base) };
            // SAFETY: as above.
            let drow = unsafe { dp0.add(j * ow * oc + vb * L) };
            for ox in 0..ow {
                let mut d = [zero; V];
                unroll!(v < V; {
                    // SAFETY: `j*ow*oc + ox*oc + (vb+v)*16 + 16 <= nr*ow*oc`.
                    d[v] = unsafe { _mm512_loadu_ps(drow.add(ox * oc + v * L)) };
                });
                let xp = xrow.wrapping_add(ox * pstep);
                unroll!(q < Q; {
                    // SAFETY: pixel `ox` of the row, tap `off[q]`: inside `x`.
                    let a = _mm512_set1_ps(unsafe { *xp.add(off[q]) });
                    unroll!(v < V; {
                        acc[q][v] = _mm512_add_ps(acc[q][v], _mm512_mul_ps(a, d[v]));
                    });
                });
            }
        }
        unroll!(q < Q; {
            unroll!(v < V; {
                // SAFETY: as for the loads above.
                unsafe { _mm512_storeu_ps(pp.add((kb + q) * oc + (vb + v) * L), acc[q][v]) };
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::DySlice;
    use crate::kernels::conv_pool_grad::{expand_pool_grad, Expand, PoolGradSource};
    use crate::kernels::padding::Padding;
    use crate::kernels::test_util::unit_stream;

    /// Uniform values in [-1, 1) with every seventh one zero.
    fn vals(len: usize, seed: u64) -> Vec<f32> {
        unit_stream(seed)
            .take(len)
            .enumerate()
            .map(|(i, u)| {
                if i % 7 == 3 {
                    0.0
                } else {
                    (u * 2.0 - 1.0) as f32
                }
            })
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// (input, kernel, oc, strides, dilations).
    type Case = ([usize; 4], [usize; 2], usize, [usize; 2], [usize; 2]);

    fn cases() -> Vec<Case> {
        vec![
            // The seed CNN's second layer (a small batch).
            ([3, 13, 13, 32], [3, 3], 64, [1, 1], [1, 1]),
            ([2, 9, 11, 5], [3, 3], 16, [1, 1], [1, 1]),
            ([3, 10, 7, 7], [2, 3], 48, [2, 1], [1, 1]),
            ([2, 12, 13, 5], [3, 3], 80, [1, 2], [2, 1]),
            ([1, 8, 9, 17], [1, 2], 32, [1, 1], [1, 1]),
            ([5, 7, 6, 9], [3, 2], 112, [2, 2], [1, 2]),
            ([40, 13, 13, 32], [3, 3], 64, [1, 1], [1, 1]),
        ]
    }

    fn geom(case: &Case) -> Conv2dGeom {
        let (input, k, oc, st, dil) = *case;
        let g = Conv2dGeom::new(input, k, oc, st, dil, Padding::Valid);
        assert!(applies(&g), "{g:?}");
        g
    }

    /// The kernel's order written independently: part by part (the plan's fixed cut), each
    /// `+0` then `acc + x*dz` over pixels ascending; parts added in order.
    fn ref_same_order(g: &Conv2dGeom, x: &[f32], dz: &[f32]) -> Vec<f32> {
        let plan = Plan::new(g);
        let total = g.n * g.oh;
        let mut dw = vec![0f32; g.filter_len()];
        for p in 0..plan.parts {
            let (a, b) = (p * plan.part_rows, total.min((p + 1) * plan.part_rows));
            let mut i = 0;
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    for ci in 0..g.c {
                        for o in 0..g.oc {
                            let mut acc = 0f32;
                            for r in a..b {
                                let (img, oy) = (r / g.oh, r % g.oh);
                                for ox in 0..g.ow {
                                    let (iy, ix) = (oy * g.sh + ky * g.dh, ox * g.sw + kx * g.dw);
                                    let xv = x[((img * g.h + iy) * g.w + ix) * g.c + ci];
                                    acc += xv * dz[(r * g.ow + ox) * g.oc + o];
                                }
                            }
                            if p == 0 {
                                dw[i] = acc;
                            } else {
                                dw[i] += acc;
                            }
                            i += 1;
                        }
                    }
                }
            }
        }
        dw
    }

    /// `dw` in f64 by the definition.
    fn ref_f64(g: &Conv2dGeom, x: &[f32], dz: &[f32]) -> Vec<f64> {
        let mut dw = vec![0f64; g.filter_len()];
        for img in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let (iy, ix) = (oy * g.sh + ky * g.dh, ox * g.sw + kx * g.dw);
                            for ci in 0..g.c {
                                let xv = x[((img * g.h + iy) * g.w + ix) * g.c + ci] as f64;
                                for o in 0..g.oc {
                                    let d = dz[((img * g.oh + oy) * g.ow + ox) * g.oc + o] as f64;
                                    dw[((ky * g.kw + kx) * g.c + ci) * g.oc + o] += xv * d;
                                }
                            }
                        }
                    }
                }
            }
        }
        dw
    }

    fn run_at(
        level: Level,
        threads: usize,
        g: &Conv2dGeom,
        x: &[f32],
        dy: &impl DyRows<f32>,
    ) -> Vec<f32> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        pool.install(|| {
            let mut dw = vec![f32::NAN; g.filter_len()];
            backward_filter_at(level, g, x, dy, &mut dw);
            dw
        })
    }

    /// Every instruction set this CPU has, on 1 and 2 threads, gives the bits of the same-order
    /// loop, which is within rounding of the f64 definition.
    #[test]
    fn matches_same_order_loop_and_f64_on_every_level_and_thread_count() {
        for (i, case) in cases().iter().enumerate() {
            let g = geom(case);
            let x = vals(g.input_len(), 100 + i as u64);
            let dz = vals(g.output_len(), 200 + i as u64);
            let want = ref_same_order(&g, &x, &dz);
            let exact = ref_f64(&g, &x, &dz);
            let scale = (g.n * g.oh * g.ow) as f64;
            for (w, e) in want.iter().zip(&exact) {
                assert!(((*w as f64) - e).abs() <= 1e-5 * scale, "{g:?}: {w} vs {e}");
            }
            for level in simd::available() {
                for threads in [1, 2] {
                    let got = run_at(level, threads, &g, &x, &DySlice(&dz[..]));
                    assert_eq!(bits(&got), bits(&want), "{g:?} {level:?} threads={threads}");
                }
            }
        }
    }

    /// The pooled gradient read through [`Expand`] gives the bits of the expanded `dz` read as
    /// a slice (so `_FusedConv2DMaxPoolGrad` and the unfused ops agree), ReLU on and off.
    #[test]
    fn pooled_source_matches_expanded_slice() {
        for (i, case) in cases().iter().enumerate().take(4) {
            let g = geom(case);
            let win = [2, 2];
            let plen = g.n * (g.oh / 2) * (g.ow / 2) * g.oc;
            let x = vals(g.input_len(), 300 + i as u64);
            let pooled = vals(plen, 400 + i as u64);
            let dpooled = vals(plen, 500 + i as u64);
            let argmax: Vec<u8> = vals(plen, 600 + i as u64)
                .iter()
                .map(|v| (v.to_bits() % 5) as u8)
                .collect();
            for relu in [true, false] {
                let src = PoolGradSource {
                    window: win,
                    relu,
                    pooled: &pooled,
                    argmax: &argmax,
                    dpooled: &dpooled,
                };
                let full = expand_pool_grad(&g, src);
                let want = ref_same_order(&g, &x, &full);
                for level in simd::available() {
                    for threads in [1, 2] {
                        let got = run_at(level, threads, &g, &x, &Expand::new(&g, src));
                        assert_eq!(bits(&got), bits(&want), "{g:?} relu={relu} {level:?}");
                    }
                }
            }
        }
    }

    /// Geometries it does not take: padding read, `oc` not a multiple of 16, small reductions
    /// (the direct kernel's), pointwise; and f64 is left to the generic path.
    #[test]
    fn declines_other_geometries_and_f64() {
        let same = Conv2dGeom::new([1, 9, 9, 8], [3, 3], 16, [1, 1], [1, 1], Padding::Same);
        assert!(!applies(&same));
        let odd_oc = Conv2dGeom::new([1, 9, 9, 8], [3, 3], 24, [1, 1], [1, 1], Padding::Valid);
        assert!(!applies(&odd_oc));
        let small_k = Conv2dGeom::new([1, 9, 9, 3], [3, 3], 16, [1, 1], [1, 1], Padding::Valid);
        assert!(!applies(&small_k));
        let point = Conv2dGeom::new([1, 9, 9, 64], [1, 1], 16, [1, 1], [1, 1], Padding::Valid);
        assert!(!applies(&point));
        let g = Conv2dGeom::new([1, 9, 9, 8], [3, 3], 16, [1, 1], [1, 1], Padding::Valid);
        assert!(applies(&g));
        let x = vec![0f64; g.input_len()];
        let dz = vec![0f64; g.output_len()];
        let mut dw = vec![f64::NAN; g.filter_len()];
        assert!(!try_backward_filter(&g, &x, &DySlice(&dz[..]), &mut dw));
        assert!(dw.iter().all(|v| v.is_nan()), "nothing written");
        let x = vec![0f32; g.input_len() - 1];
        let dz = vec![0f32; g.output_len()];
        let mut dw = vec![f32::NAN; g.filter_len()];
        assert!(!try_backward_filter(&g, &x, &DySlice(&dz[..]), &mut dw));
    }

    /// Parts depend on the problem size only, and cover the rows.
    #[test]
    fn parts_cover_the_rows() {
        for case in cases() {
            let g = geom(&case);
            let p = Plan::new(&g);
            let total = g.n * g.oh;
            assert!(p.parts >= 1 && p.parts <= MAX_PARTS);
            assert!((p.parts - 1) * p.part_rows < total && p.parts * p.part_rows >= total);
            let k = g.kh * g.kw * g.c;
            let covered: usize = p.tiles.iter().map(|t| t.1 * t.3).sum();
            assert_eq!(covered * L, k * g.oc, "{g:?}");
        }
    }
}
