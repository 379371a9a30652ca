//! AVX-512 register-blocked filter gradient of the direct convolution (f32, small reductions
//! `K = kh*kw*c <= 32`), for a plain output gradient and for the pooled one of
//! `_FusedConv2DMaxPoolGrad`.
//!
//! One chunk of [`conv_direct`](super::conv_direct)'s backward-filter reduction (its fixed
//! `ROWS_PER_CHUNK` output rows) is computed with the whole `[taps x channels]` block of the
//! partial in vector registers for the whole chunk: for the seed CNN's first layer (3x3 taps over
//! one channel, 32 filters) that is 9 taps x 2 vectors = 18 accumulators. Per output pixel the
//! gradient's channel vectors are loaded once, each tap's input value is broadcast, multiplied
//! and added. Larger reductions are split into blocks of at most [`QMAX`] taps x 2 vectors, each
//! running over the whole chunk.
//!
//! For `_FusedConv2DMaxPoolGrad` the gradient `dz` is never expanded to memory: each pixel's
//! channel vectors are built in registers from `(pooled, argmax, dpooled)` — lane `o` of pixel
//! `(oy, ox)` is `dpooled` where `argmax == i*pw + j` (and `pooled > 0` under ReLU), else `+0` —
//! the exact values [`conv_pool_grad`](super::conv_pool_grad)'s row expansion writes.
//!
//! Bit-identity: every element of the partial is `+0`, then `acc = fma(x, dz, acc)` (one
//! rounding; a separate multiply and add until the fourteenth session) over the chunk's rows,
//! then pixels in ascending `ox` — the order of
//! `conv_direct`'s portable, AVX2 and AVX-512 bodies — and every product is computed, zeros
//! included; the chunk partials are then added in chunk order by the caller. So dw is the same
//! bits as the portable path, and as the unfused ops on the expanded gradient, whatever the
//! thread count (tested against the portable body on random shapes).
//!
//! `FF_CONV_DIRECT_FILTER=off` (read once) turns the kernel off: the generic direct bodies run
//! instead (for A/B timing in one binary).

use crate::kernels::float::{same_mut, same_ref};
use std::sync::OnceLock;

use crate::kernels::conv::Conv2dGeom;
use crate::kernels::conv_pool_grad::PoolGradSource;
use crate::kernels::simd::Level;
use crate::kernels::Float;

/// f32 lanes per vector.
#[cfg(target_arch = "x86_64")]
const L: usize = 16;
/// Most taps per register block (with 2 vectors: 20 accumulators + 2 gradient vectors).
const QMAX: usize = 10;
/// Most taps per register block of the AVX2 kernel (16 `ymm` registers: with 2 vectors, 10
/// accumulators + 2 gradient vectors + a broadcast + a product).
const QMAX2: usize = 5;

/// The output gradient as the kernel reads it (handed over by
/// [`DyRows::filter_dz`](super::conv::DyRows::filter_dz)).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dz<'a, T> {
    /// `[n, oh, ow, oc]` held in full.
    Slice(&'a [T]),
    /// Described by the pooled side of `_FusedConv2DMaxPoolGrad` (`[n, oh/ph, ow/pw, oc]`).
    Pooled(PoolGradSource<'a, T>),
}

/// Whether the kernel is on (`FF_CONV_DIRECT_FILTER` not `off`/`0`; read once).
fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    crate::kernels::env_switch::on(&ON, "FF_CONV_DIRECT_FILTER")
}

/// Whether the AVX2 kernel is on (`FF_CONV_DIRECT_FILTER_AVX2` not `off`/`0`; read once).
/// Off: CPUs with AVX2 but no AVX-512 run the generic bodies compiled for AVX2 (the same bits).
fn avx2_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    crate::kernels::env_switch::on(&ON, "FF_CONV_DIRECT_FILTER_AVX2")
}

/// Whether the window kernel of pooled gradients is on (`FF_CONV1_POOL_WINDOWS` not
/// `off`/`0`; read once). Off: the pixel kernel (the same bits).
fn windows_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    crate::kernels::env_switch::on(&ON, "FF_CONV1_POOL_WINDOWS")
}

/// Whether every value is finite (no infinity, no NaN): the largest magnitude bit pattern of
/// each block of 4096 (a loop the compiler vectorises) is below the exponent's all-ones.
#[inline(always)]
fn all_finite(x: &[f32]) -> bool {
    x.chunks(4096)
        .all(|c| c.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff)) < 0x7f80_0000)
}

/// [`all_finite`] compiled for AVX-512 (the baseline target has no vector `u32` max).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn all_finite_avx512(x: &[f32]) -> bool {
    all_finite(x)
}

/// The prepared AVX-512 filter-gradient pass of one call: geometry, f32 views of the inputs and
/// the tap tables. Exists only for f32 on a CPU with AVX-512 F/BW/VL (see [`FilterPlan::new`]).
pub(crate) struct FilterPlan<'a> {
    g: Conv2dGeom,
    x: &'a [f32],
    dz: Dz<'a, f32>,
    /// Channels padded to whole vectors (the partial's row length).
    ocp: usize,
    /// Length of one gathered (padded) input row.
    prow: usize,
    /// Offset of tap `(ky, kx, ci)` from the first input row of an output row read in place:
    /// `ky*dh*w*c + kx*dw*c + ci`.
    direct_off: Vec<usize>,
    /// The same in the gathered rows: `ky*prow + kx*dw*c + ci`.
    gather_off: Vec<usize>,
    /// Whether output rows whose input rows are all inside the image can read them in place
    /// (no left padding, last column read inside the row).
    direct_cols: bool,
    /// Pooled source with `pw == 2` and every input value finite: the window kernel
    /// ([`avx512::block_windows`]) runs instead of the pixel kernel.
    windows: bool,
    /// Tap blocks `(first tap, taps)`, each at most [`QMAX`] taps ([`QMAX2`] on AVX2).
    blocks: Vec<(usize, usize)>,
    /// The AVX2 kernel ([`avx2`]) runs instead of the AVX-512 one.
    avx2: bool,
}

impl<'a> FilterPlan<'a> {
    /// The plan for `x` (`[n, h, w, c]`) and `dz` on `level`, or `None` (the caller runs the
    /// generic bodies) unless `T` is f32, `dz` is given, all lengths match `g`, and either
    /// `level` is AVX-512 (the CPU has AVX-512 F/BW/VL, `FF_CONV_DIRECT_FILTER` is not off) or
    /// `level` is AVX2 (the CPU has AVX2 and FMA, `FF_CONV_DIRECT_FILTER_AVX2` is not off, `oc`
    /// is a multiple of 8). `ocp` is the partial's row length (`oc` rounded up to 16).
    pub(crate) fn new<T: Float>(
        level: Level,
        g: &Conv2dGeom,
        x: &'a [T],
        dz: Option<Dz<'a, T>>,
        ocp: usize,
    ) -> Option<Self> {
        let on = match level {
            Level::Avx512 => enabled(),
            Level::Avx2 => avx2_enabled(),
            Level::Portable => false,
        };
        if !on {
            return None;
        }
        Self::build_at(level, g, x, dz?, ocp)
    }

    /// [`new`](Self::new) on the CPU's best level, without the environment switches.
    #[cfg(test)]
    fn build<T: Float>(g: &Conv2dGeom, x: &'a [T], dz: Dz<'a, T>, ocp: usize) -> Option<Self> {
        Self::build_at(super::simd::detected(), g, x, dz, ocp)
    }

    /// [`new`](Self::new) without the environment switches.
    fn build_at<T: Float>(
        level: Level,
        g: &Conv2dGeom,
        x: &'a [T],
        dz: Dz<'a, T>,
        ocp: usize,
    ) -> Option<Self> {
        let have = super::simd::detected();
        let avx2 = match level {
            Level::Avx512 if have == Level::Avx512 => false,
            Level::Avx2 if have != Level::Portable => true,
            _ => return None,
        };
        if !cfg!(target_arch = "x86_64") {
            return None;
        }
        let k = g.kh * g.kw * g.c;
        let ok_geom = k > 0
            && k <= super::conv_direct::DIRECT_MAX_K
            && g.oc > 0
            && g.ow > 0
            && g.oh > 0
            && ocp == g.oc.div_ceil(16) * 16
            && (!avx2 || g.oc.is_multiple_of(8));
        if !ok_geom {
            return None;
        }
        let x: &[f32] = same_ref(x)?;
        if x.len() != g.input_len() {
            return None;
        }
        let dz = match dz {
            Dz::Slice(s) => {
                let s: &[f32] = same_ref(s)?;
                if s.len() != g.output_len() {
                    return None;
                }
                Dz::Slice(s)
            }
            Dz::Pooled(p) => {
                let [ph, pw] = p.window;
                if ph == 0 || pw == 0 || ph * pw > 256 {
                    return None;
                }
                let len = g.n * (g.oh / ph) * (g.ow / pw) * g.oc;
                if p.pooled.len() != len || p.argmax.len() != len || p.dpooled.len() != len {
                    return None;
                }
                Dz::Pooled(PoolGradSource {
                    window: p.window,
                    relu: p.relu,
                    pooled: same_ref(p.pooled)?,
                    argmax: p.argmax,
                    dpooled: same_ref(p.dpooled)?,
                })
            }
        };
        let wpad = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
        let prow = wpad * g.c;
        let mut direct_off = Vec::with_capacity(k);
        let mut gather_off = Vec::with_capacity(k);
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                for ci in 0..g.c {
                    direct_off.push(ky * g.dh * g.w * g.c + kx * g.dw * g.c + ci);
                    gather_off.push(ky * prow + kx * g.dw * g.c + ci);
                }
            }
        }
        let nb = k.div_ceil(if avx2 { QMAX2 } else { QMAX });
        let (base, rem) = (k / nb, k % nb);
        let mut blocks = Vec::with_capacity(nb);
        let mut kb = 0;
        for b in 0..nb {
            let q = base + usize::from(b < rem);
            blocks.push((kb, q));
            kb += q;
        }
        Some(FilterPlan {
            g: *g,
            x,
            dz,
            ocp,
            prow,
            direct_off,
            gather_off,
            direct_cols: g.pad_left == 0 && wpad <= g.w,
            windows: !avx2
                && matches!(dz, Dz::Pooled(p) if p.window[1] == 2)
                && windows_enabled()
                // SAFETY: without `avx2`, `simd::detected()` is AVX-512 (checked above).
                && unsafe { all_finite_avx512(x) },
            blocks,
            avx2,
        })
    }

    /// Length of the row buffer [`chunk`](Self::chunk) needs (`kh` gathered input rows).
    pub(crate) fn rows_len(&self) -> usize {
        self.g.kh * self.prow
    }

    /// Output rows `r0..r0+nr` summed into `part` (`[K, ocp]`, overwritten), exactly as one chunk
    /// of `conv_direct::backward_filter_rows` sums them. `rows` is scratch of at least
    /// [`rows_len`](Self::rows_len) (the AVX2 kernel grows it to hold a pooled chunk's expanded
    /// gradient). `T` is f32 (the plan exists for nothing else).
    // A `Vec`, not a slice: the AVX2 kernel grows it (a pooled chunk's expanded gradient).
    #[allow(clippy::ptr_arg)]
    pub(crate) fn chunk<T: Float>(&self, r0: usize, nr: usize, rows: &mut Vec<T>, part: &mut [T]) {
        self.chunk_with_bias(r0, nr, rows, part, None);
    }

    /// [`chunk`](Self::chunk), and where the kernel expands a pooled gradient (AVX2) also the
    /// bias gradient's block of the same rows into `bias` (`oc` long: the sum over the rows'
    /// pixels in order from `+0`, `BiasAddGrad`'s block of them). Returns whether it wrote
    /// `bias` (else the caller sums the block itself).
    #[allow(clippy::ptr_arg)]
    pub(crate) fn chunk_with_bias<T: Float>(
        &self,
        r0: usize,
        nr: usize,
        rows: &mut Vec<T>,
        part: &mut [T],
        bias: Option<&mut [T]>,
    ) -> bool {
        let part: &mut [f32] = same_mut(part).expect("a FilterPlan exists only for f32");
        let bias: Option<&mut [f32]> =
            bias.map(|b| same_mut(b).expect("a FilterPlan exists only for f32"));
        if let Some(b) = &bias {
            assert_eq!(b.len(), self.g.oc);
        }
        let k = self.direct_off.len();
        assert!(part.len() == k * self.ocp && rows.len() >= self.rows_len());
        assert!(r0 + nr <= self.g.n * self.g.oh);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a plan is only built when `simd::detected()` is AVX-512 (F/BW/DQ/VL), or with
        // `avx2` when it is at least AVX2 + FMA; the lengths of `x`, `dz`, `rows` and `part`
        // were checked against the geometry.
        unsafe {
            if self.avx2 {
                let rows = (rows as &mut dyn std::any::Any)
                    .downcast_mut::<Vec<f32>>()
                    .expect("a FilterPlan exists only for f32");
                avx2::chunk(self, r0, nr, rows, part, bias)
            } else {
                let rows: &mut [f32] = same_mut(rows).expect("a FilterPlan exists only for f32");
                avx512::chunk(self, r0, nr, rows, part);
                false
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (r0, nr, rows, part, bias);
            false
        }
    }
}

/// Runs `$body` with `$i` bound to each literal below `$n` (a const generic): fully unrolled,
/// so the accumulator arrays are indexed by constants and live in registers.
macro_rules! unroll {
    ($i:ident < $n:expr; $body:block) => {
        unroll!(@ $i < $n; [0 1 2 3 4 5 6 7 8 9] $body)
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

/// Copies the `kh` input rows that output row `oy` reads into `rows` (`kh` rows of `prow`),
/// zeros for padding: input column `ix` lands at `(ix + pad_left) * c` (as
/// `conv_direct`'s gather).
fn gather(g: &Conv2dGeom, prow: usize, x_img: &[f32], oy: usize, rows: &mut [f32]) {
    let c = g.c;
    let row_len = g.w * c;
    for (ky, dst) in rows.chunks_exact_mut(prow).take(g.kh).enumerate() {
        let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
        if iy < 0 || iy >= g.h as isize {
            dst.fill(0.0);
            continue;
        }
        let src = &x_img[iy as usize * row_len..(iy as usize + 1) * row_len];
        let lead = g.pad_left.min(dst.len() / c);
        let avail = g.w.min(dst.len() / c - lead);
        dst[..lead * c].fill(0.0);
        dst[lead * c..(lead + avail) * c].copy_from_slice(&src[..avail * c]);
        dst[(lead + avail) * c..].fill(0.0);
    }
}

/// The input that output row `r` reads: a pointer to its first input row in place (when the
/// `kh` rows are inside the image and no column is padded: the last read,
/// `(iy0 + (kh-1)*dh)*w*c + ((ow-1)*sw + (kw-1)*dw)*c + c-1`, is below `h*w*c`) with the
/// in-place tap offsets, or to the rows gathered into `rows` (last read
/// `(kh-1)*prow + wpad*c - 1 < kh*prow <= rows.len()`) with the gathered offsets.
#[inline(always)]
fn input_row<'b, const Q: usize>(
    p: &FilterPlan<'_>,
    r: usize,
    rows: &mut [f32],
    doff: &'b [usize; Q],
    goff: &'b [usize; Q],
) -> (*const f32, &'b [usize; Q]) {
    let g = &p.g;
    let img_in = g.h * g.w * g.c;
    let (img, oy) = (r / g.oh, r % g.oh);
    let x_img = &p.x[img * img_in..(img + 1) * img_in];
    let iy0 = (oy * g.sh) as isize - g.pad_top as isize;
    if p.direct_cols && iy0 >= 0 && iy0 as usize + (g.kh - 1) * g.dh < g.h {
        (x_img[iy0 as usize * g.w * g.c..].as_ptr(), doff)
    } else {
        gather(g, p.prow, x_img, oy, rows);
        (rows.as_ptr(), goff)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{input_row, Dz, FilterPlan, L};

    /// The block kernel's signature (for the table of instantiations).
    type BlockFn =
        unsafe fn(&FilterPlan<'_>, usize, usize, usize, usize, &mut [f32], &mut [f32]) -> ();

    /// One chunk: every tap block x every pair (or last single) of channel vectors.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F/BW/VL; `part` is `K*ocp` long, `rows` at least
    /// `kh*prow`, `r0 + nr <= n*oh`, and the plan's slices match its geometry.
    pub(super) unsafe fn chunk(
        p: &FilterPlan<'_>,
        r0: usize,
        nr: usize,
        rows: &mut [f32],
        part: &mut [f32],
    ) {
        let nv = p.ocp / L;
        for &(kb, q) in &p.blocks {
            let mut vb = 0;
            while vb < nv {
                let v = if nv - vb >= 2 { 2 } else { 1 };
                let full = (vb + v) * L <= p.g.oc;
                let f: BlockFn = pick(q, v, full);
                // SAFETY: forwarded from the caller; `kb + q <= K` and `vb + v <= ocp / 16`.
                unsafe { f(p, r0, nr, kb, vb, rows, part) };
                vb += v;
            }
        }
    }

    macro_rules! table {
        ($q:ident, $v:ident, $full:ident; $($Q:literal)*) => {
            match ($q, $v, $full) {
                $(
                    ($Q, 1, true) => block::<$Q, 1, true> as BlockFn,
                    ($Q, 2, true) => block::<$Q, 2, true> as BlockFn,
                    ($Q, 1, false) => block::<$Q, 1, false> as BlockFn,
                    ($Q, 2, false) => block::<$Q, 2, false> as BlockFn,
                )*
                _ => unreachable!("tap blocks hold 1..=QMAX taps, vector blocks 1 or 2"),
            }
        };
    }

    /// The instantiation for `q` taps x `v` vectors, `full` when all their lanes are inside `oc`.
    fn pick(q: usize, v: usize, full: bool) -> BlockFn {
        table!(q, v, full; 1 2 3 4 5 6 7 8 9 10)
    }

    /// `acc[q][v] = fma(broadcast(x at xp + off[q]), d[v], acc[q][v])` for one output pixel.
    macro_rules! pixel {
        ($acc:ident, $xp:expr, $off:ident, $d:ident, $Q:ident, $V:ident) => {{
            let xp: *const f32 = $xp;
            unroll!(q < $Q; {
                // SAFETY: the caller's row pointer and the tap offsets stay inside the input
                // (or the gathered rows) for every pixel `ox < ow` (see `block`).
                let a = _mm512_set1_ps(unsafe { *xp.add($off[q]) });
                unroll!(v < $V; {
                    $acc[q][v] = _mm512_fmadd_ps(a, $d[v], $acc[q][v]);
                });
            });
        }};
    }

    /// One vector at `p`: all 16 lanes when `FULL`, else the lanes of `mask` (the others `+0`
    /// and not read). Masked loads are slow on some CPUs: the full vectors use plain ones.
    ///
    /// # Safety
    /// The lanes read must be inside one allocation.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load<const FULL: bool>(mask: u16, p: *const f32) -> __m512 {
        // SAFETY: forwarded from the caller.
        unsafe {
            if FULL {
                _mm512_loadu_ps(p)
            } else {
                _mm512_maskz_loadu_ps(mask, p)
            }
        }
    }

    /// Taps `kb..kb+Q` x channel vectors `vb..vb+V` of one chunk, accumulated in registers over
    /// rows `r0..r0+nr` and pixels `ox` ascending, then stored into `part`.
    ///
    /// # Safety
    /// As [`chunk`], with `kb + Q <= K`, `vb + V <= ocp / 16`, and `FULL` only when
    /// `(vb + V) * 16 <= oc`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn block<const Q: usize, const V: usize, const FULL: bool>(
        p: &FilterPlan<'_>,
        r0: usize,
        nr: usize,
        kb: usize,
        vb: usize,
        rows: &mut [f32],
        part: &mut [f32],
    ) {
        let acc = match p.dz {
            // SAFETY: forwarded from the caller.
            Dz::Slice(dy) => unsafe { block_plain::<Q, V, FULL>(p, dy, r0, nr, kb, vb, rows) },
            // SAFETY: forwarded from the caller.
            Dz::Pooled(_) if p.windows => unsafe {
                block_windows::<Q, V, FULL>(p, r0, nr, kb, vb, rows)
            },
            // SAFETY: forwarded from the caller.
            Dz::Pooled(_) => unsafe { block_pooled::<Q, V, FULL>(p, r0, nr, kb, vb, rows) },
        };
        for (q, accq) in acc.iter().enumerate() {
            let at = (kb + q) * p.ocp + vb * L;
            let dst = &mut part[at..at + V * L];
            for (v, &a) in accq.iter().enumerate() {
                // SAFETY: `dst` holds `V` vectors of 16 lanes.
                unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add(v * L), a) };
            }
        }
    }

    /// Lanes of each vector `vb + v` inside `oc` (every such vector starts below `oc`).
    #[inline(always)]
    fn lane_masks<const V: usize>(oc: usize, vb: usize) -> [u16; V] {
        let mut masks = [0u16; V];
        for (v, m) in masks.iter_mut().enumerate() {
            let n = (oc - (vb + v) * L).min(L);
            *m = if n == L { u16::MAX } else { (1u16 << n) - 1 };
        }
        masks
    }

    /// [`block`]'s sums over a gradient held in full.
    ///
    /// # Safety
    /// As [`block`]; `dy` is `n*oh*ow*oc` long.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn block_plain<const Q: usize, const V: usize, const FULL: bool>(
        p: &FilterPlan<'_>,
        dy: &[f32],
        r0: usize,
        nr: usize,
        kb: usize,
        vb: usize,
        rows: &mut [f32],
    ) -> [[__m512; V]; Q] {
        let g = &p.g;
        let (oc, ow) = (g.oc, g.ow);
        let masks = lane_masks::<V>(oc, vb);
        let doff: [usize; Q] = p.direct_off[kb..kb + Q].try_into().expect("Q taps");
        let goff: [usize; Q] = p.gather_off[kb..kb + Q].try_into().expect("Q taps");
        let zero = _mm512_setzero_ps();
        let mut acc = [[zero; V]; Q];
        let pstep = g.sw * g.c;
        for r in r0..r0 + nr {
            let (xrow, off) = input_row(p, r, rows, &doff, &goff);
            let drow = &dy[r * ow * oc..(r + 1) * ow * oc];
            for ox in 0..ow {
                let mut d = [zero; V];
                unroll!(v < V; {
                    // SAFETY: lane 0 (`ox*oc + (vb+v)*16 < (ox+1)*oc`) is inside `drow`; only
                    // lanes below `oc` are read.
                    d[v] = unsafe {
                        load::<FULL>(masks[v], drow.as_ptr().add(ox * oc + (vb + v) * L))
                    };
                });
                pixel!(acc, xrow.wrapping_add(ox * pstep), off, d, Q, V);
            }
        }
        acc
    }

    /// [`block_pooled`]'s sums window by window (pooling windows 2 wide, every input value
    /// finite). In a row, lane `o` of window `px` has at most one non-zero gradient value: at
    /// column `j` when `argmax == i*2 + j` (and it passes); so per window and tap the two
    /// columns' input values are broadcast, lane `o` takes column `j`'s (a masked blend), and
    /// `fma(x_j, d, acc)` is taken with `d` the window's value on the lanes hit in this row, `+0`
    /// elsewhere. The pixel kernel takes, per lane, the same non-zero products in the same
    /// (pixel) order plus products `x * +0 = ±0` (finite `x`, exact inside the `fma`) — and
    /// adding `±0` to a sum that started at `+0` never changes it (such a sum is never `-0`) —
    /// so the bits are the pixel kernel's. Rows in no window and columns from `qw*2` hold only zeros and are skipped.
    ///
    /// # Safety
    /// As [`block`]; the plan's source is [`Dz::Pooled`] with `pw == 2`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn block_windows<const Q: usize, const V: usize, const FULL: bool>(
        p: &FilterPlan<'_>,
        r0: usize,
        nr: usize,
        kb: usize,
        vb: usize,
        rows: &mut [f32],
    ) -> [[__m512; V]; Q] {
        let Dz::Pooled(s) = p.dz else {
            unreachable!("block_windows runs on a pooled source only")
        };
        let g = &p.g;
        let oc = g.oc;
        let [ph, pw] = s.window;
        assert_eq!(pw, 2);
        let (qh, qw) = (g.oh / ph, g.ow / pw);
        let masks = lane_masks::<V>(oc, vb);
        let doff: [usize; Q] = p.direct_off[kb..kb + Q].try_into().expect("Q taps");
        let goff: [usize; Q] = p.gather_off[kb..kb + Q].try_into().expect("Q taps");
        let zero = _mm512_setzero_ps();
        let mut acc = [[zero; V]; Q];
        let pstep = g.sw * g.c;
        for r in r0..r0 + nr {
            let (img, oy) = (r / g.oh, r % g.oh);
            let (py, i) = (oy / ph, oy % ph);
            if py >= qh {
                continue;
            }
            let (xrow, off) = input_row(p, r, rows, &doff, &goff);
            let base = (img * qh + py) * qw * oc + vb * L;
            let t0 = _mm_set1_epi8((i * 2) as u8 as i8);
            let two = _mm_set1_epi8(2);
            for px in 0..qw {
                let at = base + px * oc;
                let mut d = [zero; V];
                let mut j1 = [0u16; V];
                unroll!(v < V; {
                    // SAFETY: lane 0 (`at + v*16`) is an element of the pooled arrays
                    // (`n*qh*qw*oc` long); only lanes below `oc` are read.
                    unsafe {
                        let a = s.argmax.as_ptr().add(at + v * L);
                        let arg = if FULL {
                            _mm_loadu_si128(a.cast::<__m128i>())
                        } else {
                            _mm_maskz_loadu_epi8(masks[v], a.cast::<i8>())
                        };
                        let dpv = load::<FULL>(masks[v], s.dpooled.as_ptr().add(at + v * L));
                        let pass = if s.relu {
                            let pv = load::<FULL>(masks[v], s.pooled.as_ptr().add(at + v * L));
                            _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(masks[v], pv, zero)
                        } else {
                            masks[v]
                        };
                        let rel = _mm_sub_epi8(arg, t0);
                        let hit = _mm_mask_cmplt_epu8_mask(pass, rel, two);
                        j1[v] = _mm_mask_cmpeq_epi8_mask(hit, rel, _mm_set1_epi8(1));
                        d[v] = _mm512_maskz_mov_ps(hit, dpv);
                    }
                });
                let x0 = xrow.wrapping_add(2 * px * pstep);
                let x1 = xrow.wrapping_add((2 * px + 1) * pstep);
                unroll!(q < Q; {
                    // SAFETY: the row pointer and the tap offsets stay inside the input (or the
                    // gathered rows) for the pixels `2px, 2px + 1 < ow` (see `block`).
                    let (a0, a1) = unsafe {
                        (_mm512_set1_ps(*x0.add(off[q])), _mm512_set1_ps(*x1.add(off[q])))
                    };
                    unroll!(v < V; {
                        let xs = _mm512_mask_blend_ps(j1[v], a0, a1);
                        acc[q][v] = _mm512_fmadd_ps(xs, d[v], acc[q][v]);
                    });
                });
            }
        }
        acc
    }

    /// [`block`]'s sums over the gradient described by `(pooled, argmax, dpooled)`: per window,
    /// the argmax bytes, `dpooled` and the lanes that pass (inside `oc`, `pooled > 0` under
    /// ReLU) are loaded once; pixel `(i, j)` of the window takes `dpooled` where
    /// `argmax == i*pw + j` and passes, else `+0`. Pixels in no window (the last `oh % ph` rows
    /// and `ow % pw` columns) take `+0` — their products are still computed, as the generic
    /// bodies compute them.
    ///
    /// # Safety
    /// As [`block`]; the plan's source is [`Dz::Pooled`] with lengths checked.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn block_pooled<const Q: usize, const V: usize, const FULL: bool>(
        p: &FilterPlan<'_>,
        r0: usize,
        nr: usize,
        kb: usize,
        vb: usize,
        rows: &mut [f32],
    ) -> [[__m512; V]; Q] {
        let Dz::Pooled(s) = p.dz else {
            unreachable!("block_pooled runs on a pooled source only")
        };
        let g = &p.g;
        let (oc, ow) = (g.oc, g.ow);
        let [ph, pw] = s.window;
        let (qh, qw) = (g.oh / ph, g.ow / pw);
        let masks = lane_masks::<V>(oc, vb);
        let doff: [usize; Q] = p.direct_off[kb..kb + Q].try_into().expect("Q taps");
        let goff: [usize; Q] = p.gather_off[kb..kb + Q].try_into().expect("Q taps");
        let zero = _mm512_setzero_ps();
        let mut acc = [[zero; V]; Q];
        let pstep = g.sw * g.c;
        for r in r0..r0 + nr {
            let (xrow, off) = input_row(p, r, rows, &doff, &goff);
            let (img, oy) = (r / g.oh, r % g.oh);
            let (py, i) = (oy / ph, oy % ph);
            let base = (img * qh + py.min(qh.saturating_sub(1))) * qw * oc + vb * L;
            // One flat pixel loop (the window's vectors reloaded every `pw` pixels): pixels in
            // no window (a row `py >= qh`, columns from `qw*pw`) have nothing passing.
            let mut arg = [_mm_setzero_si128(); V];
            let mut dpv = [zero; V];
            let mut pass = [0u16; V];
            let (mut px, mut j) = (0, pw);
            for ox in 0..ow {
                if j == pw {
                    j = 0;
                    pass = [0u16; V];
                    if py < qh && px < qw {
                        let at = base + px * oc;
                        unroll!(v < V; {
                            // SAFETY: lane 0 (`at + v*16`) is an element of the pooled arrays
                            // (`n*qh*qw*oc` long); only lanes below `oc` are read.
                            unsafe {
                                let a = s.argmax.as_ptr().add(at + v * L);
                                arg[v] = if FULL {
                                    _mm_loadu_si128(a.cast::<__m128i>())
                                } else {
                                    _mm_maskz_loadu_epi8(masks[v], a.cast::<i8>())
                                };
                                dpv[v] = load::<FULL>(masks[v], s.dpooled.as_ptr().add(at + v * L));
                                pass[v] = if s.relu {
                                    let pv =
                                        load::<FULL>(masks[v], s.pooled.as_ptr().add(at + v * L));
                                    _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(masks[v], pv, zero)
                                } else {
                                    masks[v]
                                };
                            }
                        });
                    }
                    px += 1;
                }
                let t = _mm_set1_epi8((i * pw + j) as u8 as i8);
                let mut d = [zero; V];
                unroll!(v < V; {
                    let hit = _mm_mask_cmpeq_epi8_mask(pass[v], arg[v], t);
                    d[v] = _mm512_maskz_mov_ps(hit, dpv[v]);
                });
                pixel!(acc, xrow.wrapping_add(ox * pstep), off, d, Q, V);
                j += 1;
            }
        }
        acc
    }
}

/// The AVX2 kernels (CPUs without AVX-512, or `FilterPlan::new(Level::Avx2, ..)`): the
/// blocks of [`avx512`] with 8-lane `ymm` vectors, at most [`QMAX2`] taps x 2 vectors per
/// register block (conv1: taps 5 + 4 x channels 16 + 16, four passes over each chunk), `oc` a
/// multiple of 8 (every vector full). Per output pixel the gradient's channel vectors are
/// loaded, each tap's input broadcast, multiplied and added; every product is computed, in the
/// generic bodies' order, so the bits are theirs. A pooled gradient is first expanded for the
/// whole chunk into the task's scratch ([`expand`]: the values `conv_pool_grad`'s row expansion
/// writes, and in the same pass the chunk's bias gradient), because building it in registers
/// in every pass leaves too few of the 16 `ymm` registers for the accumulators (they spill).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{input_row, Dz, FilterPlan};
    use crate::kernels::conv_pool_grad::PoolGradSource;

    /// f32 lanes per vector.
    const L8: usize = 8;

    /// The block kernel's signature (for the table of instantiations).
    type BlockFn = unsafe fn(&FilterPlan<'_>, Rows<'_>, usize, usize, &mut [f32], &mut [f32]);

    /// The rows `r0..r0+nr` of a chunk and where their gradient is: row `r` at
    /// `dy[(r - dr0)*ow*oc..]`.
    #[derive(Clone, Copy)]
    struct Rows<'b> {
        r0: usize,
        nr: usize,
        dy: &'b [f32],
        dr0: usize,
    }

    /// One chunk: every tap block x every pair (or last single) of channel vectors; the
    /// partial's lanes from `oc` to `ocp` are `+0` (as the AVX-512 kernel's masked lanes).
    /// `rows` is the task's scratch: the gathered input rows, then (pooled source) the chunk's
    /// expanded gradient (grown as needed). With a pooled source and `bias`, the expansion also
    /// sums the rows' bias gradient into `bias`; returns whether it did.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `part` is `K*ocp` long, `rows` at least `kh*prow`,
    /// `r0 + nr <= n*oh`, `oc % 8 == 0`, `bias` (when given) `oc` long, and the plan's slices
    /// match its geometry.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn chunk(
        p: &FilterPlan<'_>,
        r0: usize,
        nr: usize,
        rows: &mut Vec<f32>,
        part: &mut [f32],
        bias: Option<&mut [f32]>,
    ) -> bool {
        let g = &p.g;
        let rl = p.rows_len();
        let mut wrote_bias = false;
        let (gath, dy, dr0) = match p.dz {
            Dz::Slice(dy) => (&mut rows[..rl], dy, 0),
            Dz::Pooled(s) => {
                let len = nr * g.ow * g.oc;
                if rows.len() < rl + len {
                    rows.resize(rl + len, 0.0);
                }
                let (gath, buf) = rows.split_at_mut(rl);
                wrote_bias = bias.is_some();
                // SAFETY: AVX2 (this function's feature); `buf` holds `nr` rows of `ow*oc`,
                // `bias` (when given) `oc` floats (asserted by the caller).
                unsafe { expand(p, s, r0, nr, &mut buf[..len], bias) };
                (gath, &buf[..len], r0)
            }
        };
        let rs = Rows { r0, nr, dy, dr0 };
        let nv = g.oc / L8;
        for &(kb, q) in &p.blocks {
            let mut vb = 0;
            while vb < nv {
                let v = if nv - vb >= 2 { 2 } else { 1 };
                // SAFETY: forwarded from the caller; `kb + q <= K` and `vb + v <= oc / 8`.
                unsafe { pick(q, v)(p, rs, kb, vb, gath, part) };
                vb += v;
            }
        }
        if g.oc < p.ocp {
            for row in part.chunks_exact_mut(p.ocp) {
                row[g.oc..].fill(0.0);
            }
        }
        wrote_bias
    }

    /// Rows `r0..r0+nr` of the gradient described by the pooled source into `out` (`nr` rows
    /// of `ow*oc`): lane `o` of pixel `(oy, ox)` in window `(py, px)` at `(i, j)` is `dpooled`
    /// where `argmax == i*pw + j` (and `pooled > 0` under ReLU), else `+0`; rows and columns in
    /// no window are `+0` — the values of `conv_pool_grad::Expand`'s rows. With `bias`, also
    /// the sum of those values over the rows' pixels in order from `+0` into `bias` (`oc`
    /// long): per window and row, the one value of its `pw` that can be non-zero (the others
    /// are `+0`, and adding `+0` to a sum that started at `+0` changes no bit: such a sum is
    /// never `-0`), so the bits of `BiasAddGrad`'s block over the expanded rows.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; the source's slices are `n*(oh/ph)*(ow/pw)*oc` long,
    /// `oc % 8 == 0`, `r0 + nr <= n*oh`, `out` is `nr*ow*oc` long, `bias` `oc` long.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn expand(
        p: &FilterPlan<'_>,
        s: PoolGradSource<'_, f32>,
        r0: usize,
        nr: usize,
        out: &mut [f32],
        mut bias: Option<&mut [f32]>,
    ) {
        let g = &p.g;
        let (oc, ow) = (g.oc, g.ow);
        let [ph, pw] = s.window;
        let (qh, qw) = (g.oh / ph, g.ow / pw);
        let len = g.n * qh * qw * oc;
        assert!(out.len() == nr * ow * oc && s.argmax.len() == len);
        assert!(s.pooled.len() == len && s.dpooled.len() == len);
        assert!(oc.is_multiple_of(L8) && bias.as_ref().is_none_or(|b| b.len() == oc));
        // Rows in no window, and the columns from `qw*pw`, are zeros.
        for (j0, orow) in out.chunks_exact_mut(ow * oc).enumerate() {
            if (r0 + j0) % g.oh / ph >= qh {
                orow.fill(0.0);
            } else {
                orow[qw * pw * oc..].fill(0.0);
            }
        }
        let mut g0 = 0;
        while g0 < oc {
            let nv = ((oc - g0) / L8).min(4);
            let b = bias.as_deref_mut().map(|b| &mut b[g0..g0 + nv * L8]);
            // SAFETY: forwarded; `g0 + 8*nv <= oc`.
            unsafe {
                match (nv, s.relu, pw == 2) {
                    // The seed CNN's conv1 (32 channels, ReLU, 2x2 pool) and its like.
                    (4, true, true) => expand_group::<4, true, true>(p, s, r0, out, g0, b),
                    (4, false, true) => expand_group::<4, false, true>(p, s, r0, out, g0, b),
                    (1, false, _) => expand_group::<1, false, false>(p, s, r0, out, g0, b),
                    (2, false, _) => expand_group::<2, false, false>(p, s, r0, out, g0, b),
                    (3, false, _) => expand_group::<3, false, false>(p, s, r0, out, g0, b),
                    (_, false, _) => expand_group::<4, false, false>(p, s, r0, out, g0, b),
                    (1, true, _) => expand_group::<1, true, false>(p, s, r0, out, g0, b),
                    (2, true, _) => expand_group::<2, true, false>(p, s, r0, out, g0, b),
                    (3, true, _) => expand_group::<3, true, false>(p, s, r0, out, g0, b),
                    (_, true, _) => expand_group::<4, true, false>(p, s, r0, out, g0, b),
                }
            }
            g0 += nv * L8;
        }
    }

    /// Channels `g0..g0 + 8*NV` of [`expand`] over the windows' pixels (`RELU`: `s.relu`;
    /// `PW2`: `pw == 2`, the window's column indices then constants of the row), the bias sums
    /// in registers.
    ///
    /// # Safety
    /// As [`expand`], with `g0 + 8*NV <= oc`, `bias` (when given) `8*NV` long, and `pw == 2`
    /// when `PW2`.
    #[inline]
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn expand_group<const NV: usize, const RELU: bool, const PW2: bool>(
        p: &FilterPlan<'_>,
        s: PoolGradSource<'_, f32>,
        r0: usize,
        out: &mut [f32],
        g0: usize,
        bias: Option<&mut [f32]>,
    ) {
        let g = &p.g;
        let (oc, ow) = (g.oc, g.ow);
        let [ph, pw] = s.window;
        let (qh, qw) = (g.oh / ph, g.ow / pw);
        let zero = _mm256_setzero_ps();
        let mut bacc = [zero; NV];
        for (j0, orow) in out.chunks_exact_mut(ow * oc).enumerate() {
            let r = r0 + j0;
            let (img, oy) = (r / g.oh, r % g.oh);
            let (py, i) = (oy / ph, oy % ph);
            if py >= qh {
                continue;
            }
            let base = (img * qh + py) * qw * oc + g0;
            let t0 = (i * pw) as i32;
            // With `PW2` the window's two column indices, set once per row.
            let t2 = [_mm256_set1_epi32(t0), _mm256_set1_epi32(t0 + 1)];
            let pw = if PW2 { 2 } else { pw };
            for px in 0..qw {
                for (v, bv) in bacc.iter_mut().enumerate() {
                    let at = base + px * oc + v * L8;
                    // SAFETY: `at + 8 <= len` (`px < qw`, `py < qh`, `g0 + 8v + 8 <= oc`),
                    // checked by `expand`; the stores below are inside `orow`
                    // (`(px*pw + j)*oc + g0 + 8v + 8 <= ow*oc`).
                    unsafe {
                        let a = s.argmax.as_ptr().add(at);
                        let arg = _mm256_cvtepu8_epi32(_mm_loadl_epi64(a.cast::<__m128i>()));
                        let dpv = _mm256_loadu_ps(s.dpooled.as_ptr().add(at));
                        let pd = if RELU {
                            let pv = _mm256_loadu_ps(s.pooled.as_ptr().add(at));
                            _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(pv, zero), dpv)
                        } else {
                            dpv
                        };
                        let mut row_hit = zero;
                        for j in 0..pw {
                            let t = if PW2 {
                                t2[j]
                            } else {
                                _mm256_set1_epi32(t0 + j as i32)
                            };
                            let hit = _mm256_castsi256_ps(_mm256_cmpeq_epi32(arg, t));
                            row_hit = _mm256_or_ps(row_hit, hit);
                            let o = (px * pw + j) * oc + g0 + v * L8;
                            _mm256_storeu_ps(orow.as_mut_ptr().add(o), _mm256_and_ps(hit, pd));
                        }
                        *bv = _mm256_add_ps(*bv, _mm256_and_ps(row_hit, pd));
                    }
                }
            }
        }
        if let Some(b) = bias {
            for (v, bv) in bacc.iter().enumerate() {
                // SAFETY: `b` holds `8*NV` floats.
                unsafe { _mm256_storeu_ps(b.as_mut_ptr().add(v * L8), *bv) };
            }
        }
    }

    macro_rules! table {
        ($q:ident, $v:ident; $($Q:literal)*) => {
            match ($q, $v) {
                $(
                    ($Q, 1) => block::<$Q, 1> as BlockFn,
                    ($Q, 2) => block::<$Q, 2> as BlockFn,
                )*
                _ => unreachable!("tap blocks hold 1..=QMAX2 taps, vector blocks 1 or 2"),
            }
        };
    }

    /// The instantiation for `q` taps x `v` vectors.
    fn pick(q: usize, v: usize) -> BlockFn {
        table!(q, v; 1 2 3 4 5)
    }

    /// Taps `kb..kb+Q` x channel vectors `vb..vb+V` of one chunk, accumulated in registers over
    /// the rows and pixels `ox` ascending (`+0`, then `fma(x, dz, acc)`),
    /// then stored into `part`.
    ///
    /// # Safety
    /// As [`chunk`], with `kb + Q <= K`, `vb + V <= oc / 8`, and `rs.dy` holding rows
    /// `rs.dr0..` up to at least `rs.r0 + rs.nr` (each `ow*oc`).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const Q: usize, const V: usize>(
        p: &FilterPlan<'_>,
        rs: Rows<'_>,
        kb: usize,
        vb: usize,
        rows: &mut [f32],
        part: &mut [f32],
    ) {
        let g = &p.g;
        let (oc, ow) = (g.oc, g.ow);
        let doff: [usize; Q] = p.direct_off[kb..kb + Q].try_into().expect("Q taps");
        let goff: [usize; Q] = p.gather_off[kb..kb + Q].try_into().expect("Q taps");
        let zero = _mm256_setzero_ps();
        let mut acc = [[zero; V]; Q];
        let pstep = g.sw * g.c;
        for r in rs.r0..rs.r0 + rs.nr {
            let (xrow, off) = input_row(p, r, rows, &doff, &goff);
            let drow = &rs.dy[(r - rs.dr0) * ow * oc..(r - rs.dr0 + 1) * ow * oc];
            for ox in 0..ow {
                let mut d = [zero; V];
                unroll!(v < V; {
                    // SAFETY: `ox*oc + (vb+v)*8 + 8 <= (ox+1)*oc` (`oc % 8 == 0`,
                    // `vb + v < oc / 8`): inside `drow`.
                    d[v] = unsafe { _mm256_loadu_ps(drow.as_ptr().add(ox * oc + (vb + v) * L8)) };
                });
                let xp = xrow.wrapping_add(ox * pstep);
                unroll!(q < Q; {
                    // SAFETY: the row pointer and the tap offsets stay inside the input (or the
                    // gathered rows) for every pixel `ox < ow` (see `super::input_row`).
                    let a = _mm256_set1_ps(unsafe { *xp.add(off[q]) });
                    unroll!(v < V; {
                        acc[q][v] = _mm256_fmadd_ps(a, d[v], acc[q][v]);
                    });
                });
            }
        }
        for (q, accq) in acc.iter().enumerate() {
            let at = (kb + q) * p.ocp + vb * L8;
            let dst = &mut part[at..at + V * L8];
            for (v, &a) in accq.iter().enumerate() {
                // SAFETY: `dst` holds `V` vectors of 8 lanes.
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr().add(v * L8), a) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::{DyRows, DySlice};
    use crate::kernels::conv_direct::{self as cd, Isa};
    use crate::kernels::conv_pool_grad::{expand_pool_grad, Expand};
    use crate::kernels::padding::Padding;
    use crate::kernels::test_util::{grid_stream, unit_stream};

    /// Values on a grid of quarters in [-1, 1] (many zeros and ties) or uniform in [-1, 1) with
    /// every fifth one zero.
    fn vals(len: usize, seed: u64, grid: bool) -> Vec<f32> {
        if grid {
            return grid_stream(seed).take(len).map(|v| v as f32).collect();
        }
        unit_stream(seed)
            .take(len)
            .enumerate()
            .map(|(i, u)| {
                if i % 5 == 3 {
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

    /// (input, kernel, oc, strides, dilations, padding, pooling window).
    type Case = (
        [usize; 4],
        [usize; 2],
        usize,
        [usize; 2],
        [usize; 2],
        Padding,
        [usize; 2],
    );

    fn cases() -> Vec<Case> {
        use Padding::{Same, Valid};
        vec![
            // The seed CNN's first layer.
            ([4, 28, 28, 1], [3, 3], 32, [1, 1], [1, 1], Valid, [2, 2]),
            ([2, 13, 11, 3], [3, 3], 20, [2, 2], [1, 1], Same, [2, 2]),
            ([3, 9, 7, 1], [3, 3], 1, [1, 1], [1, 1], Same, [3, 2]),
            ([2, 10, 9, 3], [3, 3], 7, [1, 2], [1, 1], Valid, [2, 3]),
            ([2, 12, 15, 1], [5, 5], 40, [1, 1], [1, 1], Same, [2, 2]),
            ([3, 11, 13, 3], [2, 2], 16, [2, 1], [1, 1], Same, [2, 2]),
            ([2, 14, 12, 1], [3, 3], 32, [1, 1], [2, 2], Valid, [1, 1]),
            ([2, 9, 9, 2], [4, 4], 33, [1, 1], [1, 1], Same, [2, 2]),
            ([1, 7, 5, 3], [3, 1], 20, [2, 2], [1, 1], Valid, [3, 3]),
            // Multiples of 8 channels that are not of 16 (the AVX2 kernel's zero lanes).
            ([2, 10, 11, 2], [3, 3], 24, [1, 1], [1, 1], Same, [2, 2]),
            ([3, 12, 9, 1], [3, 3], 8, [2, 1], [1, 1], Valid, [2, 2]),
        ]
    }

    struct Data {
        g: Conv2dGeom,
        x: Vec<f32>,
        dy: Vec<f32>,
        pooled: Vec<f32>,
        argmax: Vec<u8>,
        dpooled: Vec<f32>,
        win: [usize; 2],
    }

    fn data(case: &Case, seed: u64, grid: bool) -> Data {
        let (input, k, oc, st, dil, pad, win) = *case;
        let g = Conv2dGeom::new(input, k, oc, st, dil, pad);
        assert!(cd::applies(&g), "{g:?}");
        let plen = g.n * (g.oh / win[0]) * (g.ow / win[1]) * oc;
        let taps = (win[0] * win[1]) as u64;
        // argmax values 0..=ph*pw: the last one is in no window position (never routed).
        let argmax = vals(plen, seed + 3, false)
            .iter()
            .map(|v| (v.to_bits() as u64 % (taps + 1)) as u8)
            .collect();
        Data {
            x: vals(g.input_len(), seed, grid),
            dy: vals(g.output_len(), seed + 1, grid),
            pooled: vals(plen, seed + 2, true),
            argmax,
            dpooled: vals(plen, seed + 4, grid),
            win,
            g,
        }
    }

    impl Data {
        fn src(&self, relu: bool) -> PoolGradSource<'_, f32> {
            PoolGradSource {
                window: self.win,
                relu,
                pooled: &self.pooled,
                argmax: &self.argmax,
                dpooled: &self.dpooled,
            }
        }
    }

    /// The chunk partial written independently: for each tap `(ky, kx, ci)` and channel, `+0`
    /// then `fma(x, dz, acc)` over rows `r0..r0+nr`, pixels ascending (`x` zero outside the image).
    fn ref_chunk(g: &Conv2dGeom, x: &[f32], dz: &[f32], r0: usize, nr: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                for ci in 0..g.c {
                    for o in 0..g.oc {
                        let mut acc = 0f32;
                        for r in r0..r0 + nr {
                            let (img, oy) = (r / g.oh, r % g.oh);
                            for ox in 0..g.ow {
                                let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
                                let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
                                let inside = iy >= 0
                                    && ix >= 0
                                    && (iy as usize) < g.h
                                    && (ix as usize) < g.w;
                                let xv = if inside {
                                    x[((img * g.h + iy as usize) * g.w + ix as usize) * g.c + ci]
                                } else {
                                    0.0
                                };
                                acc = xv.mul_add(dz[(r * g.ow + ox) * g.oc + o], acc);
                            }
                        }
                        out.push(acc);
                    }
                }
            }
        }
        out
    }

    fn have_avx512() -> bool {
        crate::kernels::simd::detected() == crate::kernels::simd::Level::Avx512
    }

    /// The kernels' levels this CPU runs (AVX2, and AVX-512 when present).
    fn levels() -> Vec<Level> {
        crate::kernels::simd::available()
            .into_iter()
            .filter(|&l| l != Level::Portable)
            .collect()
    }

    /// Every chunk partial equals the plain loop bit for bit, for a full gradient and for the
    /// pooled source (ReLU on and off), on rows ranges that start and end anywhere, with the
    /// AVX-512 and the AVX2 kernel (those the CPU runs).
    #[test]
    fn chunk_matches_plain_loop_bitwise() {
        if levels().is_empty() {
            eprintln!("skipped: no AVX2 on this CPU (the kernels never run here)");
            return;
        }
        let mut seen = 0;
        for level in levels() {
            for (ci, case) in cases().iter().enumerate() {
                seen += chunk_case(level, ci, case);
            }
        }
        assert!(seen > 0);
    }

    /// [`chunk_matches_plain_loop_bitwise`] on one case and level; the number of checks.
    fn chunk_case(level: Level, ci: usize, case: &Case) -> usize {
        let mut seen = 0;
        for grid in [false, true] {
            {
                let d = data(case, 10 + 10 * ci as u64 + u64::from(grid), grid);
                let g = &d.g;
                let k = g.kh * g.kw * g.c;
                let ocp = g.oc.div_ceil(16) * 16;
                let rows = g.n * g.oh;
                let ranges = [(0, rows), (0, 16.min(rows)), (1, rows - 1), (rows - 1, 1)];
                let mut sources = vec![(Dz::Slice(&d.dy[..]), d.dy.clone(), "slice")];
                for relu in [true, false] {
                    let dz = expand_pool_grad(g, d.src(relu));
                    sources.push((Dz::Pooled(d.src(relu)), dz, "pooled"));
                }
                for (dz, full, what) in sources {
                    let Some(plan) = FilterPlan::build_at(level, g, &d.x, dz, ocp) else {
                        assert!(
                            level == Level::Avx2 && !g.oc.is_multiple_of(8),
                            "{level:?} {g:?}"
                        );
                        continue;
                    };
                    seen += 1;
                    let mut scratch = vec![f32::NAN; plan.rows_len()];
                    for (r0, nr) in ranges {
                        let mut part = vec![f32::NAN; k * ocp];
                        plan.chunk(r0, nr, &mut scratch, &mut part);
                        let got: Vec<f32> = part
                            .chunks_exact(ocp)
                            .flat_map(|row| row[..g.oc].to_vec())
                            .collect();
                        let want = ref_chunk(g, &d.x, &full, r0, nr);
                        assert_eq!(
                            bits(&got),
                            bits(&want),
                            "{level:?} {what} {g:?} rows {r0}+{nr}"
                        );
                        if level == Level::Avx2 {
                            assert!(part
                                .chunks_exact(ocp)
                                .all(|r| r[g.oc..].iter().all(|v| v.to_bits() == 0)));
                        }
                    }
                }
            }
        }
        seen
    }

    /// The whole filter gradient through `conv_direct` on AVX-512 and AVX2 (these kernels, when
    /// their switches are on) equals the portable body bit for bit — for a full gradient, and
    /// for the pooled source against the portable body on the expanded rows and on the
    /// materialised `dz` — on 1 and 2 threads.
    #[test]
    fn dw_matches_portable_body_bitwise_on_1_and_2_threads() {
        let isas: Vec<Isa> = cd::available_isas()
            .into_iter()
            .filter(|&i| i != Isa::Portable)
            .collect();
        if isas.is_empty() {
            eprintln!("skipped: no AVX2 on this CPU");
            return;
        }
        for (ci, case) in cases().iter().enumerate() {
            let d = data(case, 200 + 10 * ci as u64, ci % 2 == 0);
            let g = &d.g;
            let ocp = g.oc.div_ceil(16) * 16;
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("thread pool");
                pool.install(|| {
                    let run = |isa: Isa, dy: &dyn DyRowsF32| {
                        let mut dw = vec![f32::NAN; g.filter_len()];
                        dy.run(isa, g, &d.x, &mut dw);
                        dw
                    };
                    let slice = DySlice(&d.dy[..]);
                    if have_avx512() && enabled() {
                        let plan = FilterPlan::new(Level::Avx512, g, &d.x, slice.filter_dz(), ocp);
                        assert!(plan.is_some());
                    }
                    if avx2_enabled() && g.oc.is_multiple_of(8) {
                        let plan = FilterPlan::new(Level::Avx2, g, &d.x, slice.filter_dz(), ocp);
                        assert!(plan.is_some());
                    }
                    let want = run(Isa::Portable, &slice);
                    for &isa in &isas {
                        let got = run(isa, &slice);
                        assert_eq!(
                            bits(&got),
                            bits(&want),
                            "{isa:?} slice {g:?} threads={threads}"
                        );
                    }
                    for relu in [true, false] {
                        let e = Expand::new(g, d.src(relu));
                        let full = expand_pool_grad(g, d.src(relu));
                        let want = run(Isa::Portable, &e);
                        assert_eq!(
                            bits(&run(Isa::Portable, &DySlice(&full[..]))),
                            bits(&want),
                            "expanded {g:?}"
                        );
                        for &isa in &isas {
                            let got = run(isa, &e);
                            assert_eq!(
                                bits(&got),
                                bits(&want),
                                "{isa:?} pooled relu={relu} {g:?} threads={threads}"
                            );
                        }
                    }
                });
            }
        }
    }

    /// `conv_direct::backward_filter_rows` over any gradient source (object-safe helper).
    trait DyRowsF32 {
        fn run(&self, isa: Isa, g: &Conv2dGeom, x: &[f32], dw: &mut [f32]);
    }

    impl<D: DyRows<f32>> DyRowsF32 for D {
        fn run(&self, isa: Isa, g: &Conv2dGeom, x: &[f32], dw: &mut [f32]) {
            cd::backward_filter_rows(isa, g, x, self, dw);
        }
    }

    /// The window kernel (pooling windows 2 wide, finite input) and the pixel kernel give the
    /// same chunk partials bit for bit, ReLU on and off; an input with an infinity or a NaN
    /// gets the pixel kernel (its `x * 0` products are NaN, which the window kernel skips).
    #[test]
    fn window_kernel_matches_pixel_kernel_bitwise() {
        if !have_avx512() || !windows_enabled() {
            eprintln!("skipped: no AVX-512, or FF_CONV1_POOL_WINDOWS=off");
            return;
        }
        let mut seen = 0;
        for (ci, case) in cases().iter().enumerate() {
            if case.6[1] != 2 {
                continue;
            }
            for grid in [false, true] {
                let mut d = data(case, 300 + 10 * ci as u64 + u64::from(grid), grid);
                let g = d.g;
                let k = g.kh * g.kw * g.c;
                let ocp = g.oc.div_ceil(16) * 16;
                let rows = g.n * g.oh;
                for relu in [true, false] {
                    let mut plan =
                        FilterPlan::build(&g, &d.x, Dz::Pooled(d.src(relu)), ocp).expect("plan");
                    assert!(plan.windows, "{g:?}");
                    let mut scratch = vec![f32::NAN; plan.rows_len()];
                    for (r0, nr) in [(0, rows), (1, rows - 1), (rows - 1, 1), (0, 3.min(rows))] {
                        let mut run = |windows: bool| {
                            plan.windows = windows;
                            let mut part = vec![f32::NAN; k * ocp];
                            plan.chunk(r0, nr, &mut scratch, &mut part);
                            bits(&part)
                        };
                        let (a, b) = (run(true), run(false));
                        assert_eq!(a, b, "{g:?} relu={relu} rows {r0}+{nr}");
                        seen += 1;
                    }
                }
                d.x[g.input_len() / 2] = f32::INFINITY;
                let plan = FilterPlan::build(&g, &d.x, Dz::Pooled(d.src(true)), ocp).expect("plan");
                assert!(!plan.windows);
            }
        }
        assert!(seen > 0);
    }

    /// f64 and mismatched lengths get no plan (the generic bodies run).
    #[test]
    fn no_plan_for_f64_or_bad_lengths() {
        let g = Conv2dGeom::new([1, 6, 6, 1], [3, 3], 4, [1, 1], [1, 1], Padding::Valid);
        let x64 = vec![0f64; g.input_len()];
        let dy64 = vec![0f64; g.output_len()];
        assert!(FilterPlan::build(&g, &x64, Dz::Slice(&dy64[..]), 16).is_none());
        let x = vec![0f32; g.input_len()];
        let short = vec![0f32; g.output_len() - 1];
        assert!(FilterPlan::build(&g, &x, Dz::Slice(&short[..]), 16).is_none());
        let dy = vec![0f32; g.output_len()];
        assert!(FilterPlan::build(&g, &x, Dz::Slice(&dy[..]), 32).is_none());
    }
}
