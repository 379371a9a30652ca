//! The matrix products of Dense layers at small batch (`MatMul` / `BatchMatMulV2` with a small
//! `m`, `k` or `n`): the packed micro-kernel of [`rnn_gemm`](super::rnn_gemm) (8 × 32 tiles,
//! AVX-512 / AVX2 / portable) driven over strided operands, where the `gemm` crate is weak.
//!
//! Issue 7 measured the `gemm` crate (0.19, x86-v4) at ~100 GFLOP/s on the seed CNN's Dense
//! products (`[32×1600]·[1600×128]` and its gradients) while the 2-core FP32 peak is ~565. This
//! driver reads the operands in place wherever it can:
//! - the micro-kernel broadcasts `A`'s elements through any (row, k) strides, so `A`, `Aᵀ` and
//!   views are read without a copy (only a last partial 8-row tile is packed);
//! - it streams `B` by rows of 32 contiguous values, so a `B` with unit column stride is read in
//!   place (only a last partial 32-column panel is packed); other `B`s are packed into panels;
//! - it may compute `Cᵀ = Bᵀ·Aᵀ` instead (orientation chosen by a cost model), so `A·Bᵀ` with
//!   `Aᵀ`'s columns contiguous needs no packing either. The product `a·b` is the same IEEE
//!   number as `b·a`, so the orientation never changes a bit.
//!
//! - the driver gives each thread one contiguous share of the side of
//!   the larger operand, and can cut the reduction into blocks (`FF_DENSE_KC=128`: a `128 × 32`
//!   block of `B` stays in L1 while every row tile of a task runs over it; each tile's partial
//!   sums are stored and reloaded between blocks, which continues the same FMA chain). Blocking
//!   is off by default (measured slower on these shapes); `FF_DENSE_KBLOCK=off` runs the
//!   previous driver, for A/B;
//! - products under ~1 M multiply-adds run on the calling thread: handing them to the pool costs
//!   more than the second core saves (`FF_DENSE_PAR_MIN` overrides the threshold, for A/B).
//!
//! Every element of `C` is summed from zero by one fused multiply-add per `k` in increasing
//! order, then stored — whatever the ISA, orientation, tile, packing or thread. Threads split
//! the output tiles, never the reduction, so 1 and N threads give the same bits. The result may
//! differ in the last bits from the `gemm` crate's (which splits `k` into blocks), so *which*
//! kernel runs is a pure function of the element type and the shape ([`use_packed`]) plus a
//! process-wide switch read once: `FF_DENSE_GEMM=off` (or `0`) sends everything back to the
//! `gemm` crate, for A/B measurements. Eager and traced runs call the same op kernel, so they
//! agree bit for bit either way.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use rayon::prelude::*;

use super::gemm;
use super::rnn_gemm::{Isa, PackedGemm, MR, NR};

/// 0: not detected yet; otherwise 1 + index of the ISA.
static ISA: AtomicU8 = AtomicU8::new(0);

/// Whether the packed path is switched on (`FF_DENSE_GEMM` unset or anything but `off`/`0`;
/// read once per process).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    super::env_switch::on(&ON, "FF_DENSE_GEMM")
}

/// The micro-kernel's instruction set: [`Isa::detect`] (so `FF_RNN_ISA` caps it too), read once.
pub fn isa() -> Isa {
    match ISA.load(Ordering::Relaxed) {
        1 => Isa::Portable,
        2 => Isa::Avx2Fma,
        3 => Isa::Avx512,
        _ => {
            let i = Isa::detect();
            let code = match i {
                Isa::Portable => 1,
                Isa::Avx2Fma => 2,
                Isa::Avx512 => 3,
            };
            ISA.store(code, Ordering::Relaxed);
            i
        }
    }
}

/// The shape rule: products with a small side, where the `gemm` crate is measured weak
/// (`examples/kernel_gflops.rs`, rows `dense_*`). A pure function of the shape.
pub fn packed_shape(m: usize, k: usize, n: usize) -> bool {
    // Below 16 columns or a reduction of 16 the padding to 32-wide panels / the per-tile
    // overhead lose to `gemm`; past k = 4096 the unblocked reduction streams B from memory.
    n >= 16 && k >= 16 && m >= 8 && k <= 4096 && m.min(n) <= 2048 && m.min(n).min(k) <= 256
}

/// Whether [`matmul`] sends an `m×k · k×n` product of `T` to the packed kernel: `T` opts in
/// ([`PackedGemm::DENSE_PACKED`], f32 only), the switch is on ([`enabled`]), the shape
/// qualifies ([`packed_shape`]) and the CPU is not an AVX2-only one: there the 8 × 32 tile (the
/// portable body compiled for AVX2, whose 16 accumulators spill) measured 1.2-3.3× slower than
/// the `gemm` crate on every Dense product of the seed models (Zen 3, `examples/kernel_gflops.rs`
/// rows `dense_packed_*` vs `dense_gemm_*`; MLP training ~1.4× faster without it).
pub fn use_packed<T: PackedGemm>(m: usize, k: usize, n: usize) -> bool {
    T::DENSE_PACKED && packed_shape(m, k, n) && isa() != Isa::Avx2Fma && enabled()
}

/// `C = A·B` (or `C += A·B` when `accumulate`) into a row-major `C` (`m×n`, row stride `n`),
/// with `A` and `B` read through strides as in [`gemm::matmul`]: the packed kernel when
/// [`use_packed`] says so, the `gemm` crate otherwise.
///
/// # Panics
/// If a view reaches outside its slice.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: PackedGemm>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    b: &[T],
    b_rs: usize,
    b_cs: usize,
    c: &mut [T],
    accumulate: bool,
) {
    if use_packed::<T>(m, k, n) {
        matmul_packed(
            isa(),
            m,
            k,
            n,
            a,
            a_rs,
            a_cs,
            b,
            b_rs,
            b_cs,
            c,
            n,
            1,
            accumulate,
        );
    } else {
        gemm::matmul(m, k, n, a, a_rs, a_cs, b, b_rs, b_cs, c, accumulate);
    }
}

/// Cost estimate of one orientation: padded multiply-adds plus 16 per packed element (packing
/// is memory-bound, the micro-kernel does 32 multiply-adds a cycle).
fn cost(m: usize, k: usize, n: usize, b_unit: bool) -> usize {
    let fmas = m.div_ceil(MR) * MR * n.div_ceil(NR) * NR * k;
    let b_pack = if b_unit {
        if !n.is_multiple_of(NR) {
            k * NR
        } else {
            0
        }
    } else {
        k * n.div_ceil(NR) * NR
    };
    let a_pack = if !m.is_multiple_of(MR) { k * MR } else { 0 };
    fmas + 16 * (b_pack + a_pack)
}

/// Row tiles per task (one panel each).
const ROW_TILES_PER_TASK: usize = 8;
/// Smallest product (multiply-adds) split over threads: 1 M (~4 µs on one core). The hand-off
/// is cheap since the thread that runs ops joined the pool and the pool's threads stay awake while
/// it works (`parallel::join_thread_pool`): with that, 1 M beat the 8 M of the seventh session
/// (when a hand-off from a sleeping caller cost 40-60 µs) on the MLP's 784→64 products (batch
/// 128: 50 → 26 µs) and its training (batch 128: ~530k → ~640k samples/s), A/B in one sitting.
const PAR_MIN_FMAS: usize = 1 << 20;

/// The smallest product split over threads: [`PAR_MIN_FMAS`], or `FF_DENSE_PAR_MIN`
/// (multiply-adds; read once per process) for A/B measurements — `8388608` was the previous
/// threshold. Threads never split the reduction, so the bits do not depend on it.
fn par_min_fmas() -> usize {
    static V: OnceLock<usize> = OnceLock::new();
    *V.get_or_init(|| {
        std::env::var("FF_DENSE_PAR_MIN")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(PAR_MIN_FMAS)
    })
}

/// A raw pointer to `C` shared by the tasks, each writing its own tiles only.
#[derive(Clone, Copy)]
struct CPtr<T>(*mut T);
// SAFETY: the tasks write pairwise disjoint elements of `C` through it (see `run_task`), and
// `C` is exclusively borrowed for the whole parallel call.
unsafe impl<T: Send> Send for CPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for CPtr<T> {}

/// The packed product on an explicit ISA with a strided `C` (element `(i, j)` at
/// `c[i*c_rs + j*c_cs]`), for tests and measurements; see the module docs for the arithmetic.
/// `k == 0` zeroes `C` (or leaves it when accumulating).
///
/// # Panics
/// If a view reaches outside its slice, `C`'s strides alias elements, or `isa` is not
/// supported by this CPU.
#[allow(clippy::too_many_arguments)]
pub fn matmul_packed<T: PackedGemm>(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    b: &[T],
    b_rs: usize,
    b_cs: usize,
    c: &mut [T],
    c_rs: usize,
    c_cs: usize,
    accumulate: bool,
) {
    matmul_packed_driver(
        isa,
        m,
        k,
        n,
        (a, a_rs, a_cs),
        (b, b_rs, b_cs),
        (c, c_rs, c_cs),
        accumulate,
        blocked().then(kc_max),
    );
}

/// [`matmul_packed`] on an explicit driver: `Some(kc_max)` runs [`Problem::run_blocked`] with
/// reduction blocks of at most `kc_max` steps (0: one block), `None` the previous
/// [`Problem::run`].
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn matmul_packed_driver<T: PackedGemm>(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    (a, a_rs, a_cs): (&[T], usize, usize),
    (b, b_rs, b_cs): (&[T], usize, usize),
    (c, c_rs, c_cs): (&mut [T], usize, usize),
    accumulate: bool,
    blocked: Option<usize>,
) {
    let views = ((a, a_rs, a_cs), (b, b_rs, b_cs));
    if !gemm::check_views(
        "matmul_packed",
        m,
        k,
        n,
        views.0,
        views.1,
        (&mut *c, c_rs, c_cs),
        accumulate,
    ) {
        return;
    }
    assert!(
        isa == Isa::Portable
            || match Isa::best() {
                Isa::Avx512 => true,
                Isa::Avx2Fma => isa == Isa::Avx2Fma,
                Isa::Portable => false,
            },
        "matmul_packed: {isa:?} not supported by this CPU"
    );
    let normal = cost(m, k, n, b_cs == 1 || n == 1);
    let transposed = cost(n, k, m, a_rs == 1 || m == 1);
    let p = if transposed < normal {
        // Cᵀ = Bᵀ·Aᵀ: A' = Bᵀ, B' = Aᵀ, C' = Cᵀ.
        Problem {
            m: n,
            k,
            n: m,
            a: b,
            a_rs: b_cs,
            a_cs: b_rs,
            b: a,
            b_rs: a_cs,
            b_cs: a_rs,
            c_rs: c_cs,
            c_cs: c_rs,
        }
    } else {
        Problem {
            m,
            k,
            n,
            a,
            a_rs,
            a_cs,
            b,
            b_rs,
            b_cs,
            c_rs,
            c_cs,
        }
    };
    if let Some(kc_max) = blocked {
        p.run_blocked(isa, c, accumulate, kc_max);
    } else {
        p.run(isa, c, accumulate);
    }
}

/// Whether the current (k-blockable) driver runs (`FF_DENSE_KBLOCK` unset or
/// anything but `off`/`0`; read once per process). Off: the previous driver (whole reduction
/// per tile, all of `B` packed up front where needed), kept for A/B measurements. Both give
/// the same bits.
pub fn blocked() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    super::env_switch::on(&ON, "FF_DENSE_KBLOCK")
}

/// A block of the reduction whose `KC × NR` block of `B` (16 KiB) stays in L1 while every row
/// tile of a task runs over it: the block the tests split at, and a value to try with
/// `FF_DENSE_KC`.
#[cfg(test)]
const KC: usize = 128;

/// The largest block of the reduction the driver uses: `FF_DENSE_KC` (read once per process),
/// default 0 = the whole reduction in one block. Measured on the seed CNN's shapes (2 cores,
/// Zen 5): the one-pass tile already runs at 85-93% of one core's peak with `B` streamed from
/// L2, and cutting `k = 1600` into blocks of 128 made `[128×1600]·[1600×128]` ~10% slower (each
/// block restarts the 8 row streams of `A`), so blocking is off unless asked for. Any value
/// gives the same bits.
fn kc_max() -> usize {
    static V: OnceLock<usize> = OnceLock::new();
    *V.get_or_init(|| {
        std::env::var("FF_DENSE_KC")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}
/// Row tiles whose partial sums a task keeps live between `k` blocks (when the reduction is
/// split): `A`'s rows of such a chunk (`RC·MR × KC`) stay in L2 across the panels.
const RC: usize = 16;

/// The block of the reduction for `k`: `k` split into equal blocks of at most `kc_max` steps
/// (`0`: one block).
fn k_block(k: usize, kc_max: usize) -> usize {
    if kc_max == 0 {
        return k.max(1);
    }
    k.div_ceil(k.div_ceil(kc_max).max(1)).max(1)
}

/// Splits `units` into `parts` contiguous ranges as equal as possible.
fn split(units: usize, parts: usize) -> Vec<(usize, usize)> {
    let parts = parts.clamp(1, units.max(1));
    (0..parts)
        .map(|i| (units * i / parts, units * (i + 1) / parts))
        .filter(|(a, b)| b > a)
        .collect()
}

/// One oriented product (`C`'s slice passed separately).
struct Problem<'a, T> {
    m: usize,
    k: usize,
    n: usize,
    a: &'a [T],
    a_rs: usize,
    a_cs: usize,
    b: &'a [T],
    b_rs: usize,
    b_cs: usize,
    c_rs: usize,
    c_cs: usize,
}

/// Where a panel of `B` is read: `data[off + p*ks ..][..NR]` for `p < k`.
#[derive(Clone, Copy)]
struct PanelSrc {
    packed: bool,
    off: usize,
    ks: usize,
}

impl<T: PackedGemm> Problem<'_, T> {
    fn run(&self, isa: Isa, c: &mut [T], accumulate: bool) {
        let (m, k, n) = (self.m, self.k, self.n);
        let panels = n.div_ceil(NR);
        let tiles = m.div_ceil(MR);
        // Panels read in place (unit column stride, 32 columns) or packed `[k][NR]`.
        let unit = self.b_cs == 1 || n == 1;
        let mut packed_b: Vec<T> = Vec::new();
        let mut srcs = Vec::with_capacity(panels);
        for p in 0..panels {
            let j0 = p * NR;
            let nc = NR.min(n - j0);
            if unit && nc == NR {
                srcs.push(PanelSrc {
                    packed: false,
                    off: j0 * self.b_cs,
                    ks: self.b_rs,
                });
            } else {
                let off = packed_b.len();
                packed_b.resize(off + k * NR, T::zero());
                let dst = &mut packed_b[off..off + k * NR];
                if self.b_rs == 1 {
                    // B's columns contiguous (e.g. Wᵀ): read each column in one run.
                    for j in 0..nc {
                        let col = &self.b[(j0 + j) * self.b_cs..][..k];
                        for (line, &v) in dst.chunks_exact_mut(NR).zip(col) {
                            line[j] = v;
                        }
                    }
                } else {
                    for (kk, line) in dst.chunks_exact_mut(NR).enumerate() {
                        let row = kk * self.b_rs + j0 * self.b_cs;
                        for (j, v) in line[..nc].iter_mut().enumerate() {
                            *v = self.b[row + j * self.b_cs];
                        }
                    }
                }
                srcs.push(PanelSrc {
                    packed: true,
                    off,
                    ks: NR,
                });
            }
        }
        // The last partial row tile, packed `[k][MR]` with zero rows.
        let edge_rows = m % MR;
        let mut packed_a: Vec<T> = Vec::new();
        if edge_rows != 0 {
            packed_a.resize(k * MR, T::zero());
            let i0 = m - edge_rows;
            for (kk, line) in packed_a.chunks_exact_mut(MR).enumerate() {
                for (r, v) in line[..edge_rows].iter_mut().enumerate() {
                    *v = self.a[(i0 + r) * self.a_rs + kk * self.a_cs];
                }
            }
        }
        let row_blocks = tiles.div_ceil(ROW_TILES_PER_TASK);
        let tasks = row_blocks * panels;
        let cp = CPtr(c.as_mut_ptr());
        let c_len = c.len();
        let task = |t: usize| {
            let (pb, rb) = (t / row_blocks, t % row_blocks);
            self.run_task(
                isa, &srcs[pb], pb, rb, &packed_a, &packed_b, cp, c_len, accumulate,
            );
        };
        // Waking a second thread costs more than a product below ~1 M multiply-adds saves.
        let fmas = m.saturating_mul(k).saturating_mul(n);
        if tasks > 1 && fmas >= par_min_fmas() && rayon::current_num_threads() > 1 {
            (0..tasks).into_par_iter().with_max_len(1).for_each(task);
        } else {
            (0..tasks).for_each(task);
        }
    }

    /// The k-blocked driver: each task (a range of row tiles × a range of panels; threads
    /// split the output, never the reduction) runs, per chunk of [`RC`] row tiles, per block of
    /// at most [`KC`] steps of the reduction, per panel: takes that `kc × NR` block of `B` (in
    /// place for a full panel of a unit-column-stride `B`, else packed contiguous into a
    /// per-task buffer), then runs every row tile of the chunk over it while it is in L1,
    /// continuing each tile's partial sums ([`PackedGemm::tile_cont`]). The partial sums live in
    /// `C` itself where the tile is a full tile of a row-major `C` being overwritten, else in a
    /// per-task buffer; the last block writes the result. Every element of `C` still gets one
    /// FMA per `k` in increasing order from zero, so the bits equal [`Problem::run`]'s.
    /// Threads (when the product is large enough) each take one contiguous share of the side
    /// of the larger operand, so each reads its share once.
    fn run_blocked(&self, isa: Isa, c: &mut [T], accumulate: bool, kc_max: usize) {
        let (m, k, n) = (self.m, self.k, self.n);
        let panels = n.div_ceil(NR);
        let tiles = m.div_ceil(MR);
        // The last partial row tile, packed `[k][MR]` with zero rows.
        let edge_rows = m % MR;
        let mut packed_a: Vec<T> = Vec::new();
        if edge_rows != 0 {
            packed_a.resize(k * MR, T::zero());
            let i0 = m - edge_rows;
            for (kk, line) in packed_a.chunks_exact_mut(MR).enumerate() {
                for (r, v) in line[..edge_rows].iter_mut().enumerate() {
                    *v = self.a[(i0 + r) * self.a_rs + kk * self.a_cs];
                }
            }
        }
        let fmas = m.saturating_mul(k).saturating_mul(n);
        let threads = rayon::current_num_threads();
        let par = fmas >= par_min_fmas() && threads > 1 && tiles * panels > 1;
        let parts = if par { threads } else { 1 };
        // Split the side of the larger operand (A is m×k, B is k×n), so that each thread reads
        // its share of it only; the other side when that one has too few units.
        let tasks: Vec<((usize, usize), (usize, usize))> =
            if (m >= n && tiles >= parts) || panels < parts {
                split(tiles, parts)
                    .into_iter()
                    .map(|r| (r, (0, panels)))
                    .collect()
            } else {
                split(panels, parts)
                    .into_iter()
                    .map(|p| ((0, tiles), p))
                    .collect()
            };
        let cp = CPtr(c.as_mut_ptr());
        let c_len = c.len();
        let task = |t: &((usize, usize), (usize, usize))| {
            self.blocked_task(isa, t.0, t.1, kc_max, &packed_a, cp, c_len, accumulate);
        };
        if tasks.len() > 1 {
            tasks.par_iter().for_each(task);
        } else {
            tasks.iter().for_each(task);
        }
    }

    /// One task of [`Problem::run_blocked`]: row tiles `rows.0..rows.1` × panels
    /// `pans.0..pans.1`.
    #[allow(clippy::too_many_arguments)]
    fn blocked_task(
        &self,
        isa: Isa,
        rows: (usize, usize),
        pans: (usize, usize),
        kc_max: usize,
        packed_a: &[T],
        c: CPtr<T>,
        c_len: usize,
        accumulate: bool,
    ) {
        let (m, k, n) = (self.m, self.k, self.n);
        let kc = k_block(k, kc_max);
        let nkb = k.div_ceil(kc);
        let npan = pans.1 - pans.0;
        // Row chunks: all the task's tiles when the reduction is one block (nothing to keep
        // live), else RC tiles.
        let chunk = if nkb == 1 { rows.1 - rows.0 } else { RC };
        let mut bbuf: Vec<T> = Vec::new();
        // Full panels of a `B` with unit column stride are read in place (measured: packing
        // them costs a pass over `B` that a few row tiles do not pay back).
        let in_place = self.b_cs == 1;
        // Partial sums of tiles that cannot keep them in C: [tile in chunk][panel][MR×NR].
        let direct = |i0: usize, j0: usize| {
            !accumulate && self.c_cs == 1 && i0 + MR <= m && j0 + NR <= n && self.c_rs >= NR
        };
        let mut part: Vec<T> = Vec::new();
        let mut out = [T::zero(); MR * NR];
        let mut r0 = rows.0;
        while r0 < rows.1 {
            let r1 = (r0 + chunk).min(rows.1);
            for kb in 0..nkb {
                let k0 = kb * kc;
                let kl = kc.min(k - k0);
                let last = kb + 1 == nkb;
                for pb in pans.0..pans.1 {
                    let j0 = pb * NR;
                    let nc = NR.min(n - j0);
                    let (bsl, b_ks): (&[T], usize) = if in_place && nc == NR {
                        (&self.b[k0 * self.b_rs + j0..], self.b_rs)
                    } else {
                        if bbuf.len() < kc * NR {
                            bbuf.resize(kc * NR, T::zero());
                        }
                        self.pack_b(&mut bbuf[..kl * NR], k0, kl, j0, nc);
                        (&bbuf, NR)
                    };
                    for t in r0..r1 {
                        let i0 = t * MR;
                        let rows_here = MR.min(m - i0);
                        let (asl, a_rs, a_ks) = if rows_here == MR {
                            (
                                &self.a[i0 * self.a_rs + k0 * self.a_cs..],
                                self.a_rs,
                                self.a_cs,
                            )
                        } else {
                            (&packed_a[k0 * MR..], 1, MR)
                        };
                        if direct(i0, j0) {
                            let base = i0 * self.c_rs + j0;
                            assert!(base + (MR - 1) * self.c_rs + NR <= c_len);
                            // SAFETY: rows i0..i0+8, columns j0..j0+32 of C lie inside it
                            // (asserted; c_rs >= NR so the rows do not overlap), and this task
                            // is the only one reading or writing them (tiles are disjoint, C's
                            // strides are injective — checked by the caller — and no reference
                            // into C is alive: the caller gave up its `&mut` for the raw
                            // pointer); `isa` was checked.
                            unsafe {
                                T::tile_cont(
                                    isa,
                                    kl,
                                    asl,
                                    a_rs,
                                    a_ks,
                                    bsl,
                                    b_ks,
                                    c.0.add(base),
                                    self.c_rs,
                                    kb > 0,
                                )
                            };
                            continue;
                        }
                        let dst: &mut [T] = if nkb == 1 {
                            &mut out
                        } else {
                            let slots = (r1 - r0) * npan * MR * NR;
                            if part.len() < slots {
                                part.resize(slots, T::zero());
                            }
                            let s = ((t - r0) * npan + (pb - pans.0)) * MR * NR;
                            &mut part[s..s + MR * NR]
                        };
                        // SAFETY: `dst` is a local (or task-owned) buffer of MR×NR elements,
                        // exclusively borrowed here; `isa` was checked.
                        unsafe {
                            T::tile_cont(
                                isa,
                                kl,
                                asl,
                                a_rs,
                                a_ks,
                                bsl,
                                b_ks,
                                dst.as_mut_ptr(),
                                NR,
                                kb > 0,
                            )
                        };
                        if last {
                            self.store_tile(dst, i0, rows_here, j0, nc, c, c_len, accumulate);
                        }
                    }
                }
            }
            r0 = r1;
        }
    }

    /// Packs rows `k0..k0 + kl`, columns `j0..j0 + nc` of `B` into `dst` (`[kl][NR]`, columns
    /// past `nc` zero).
    fn pack_b(&self, dst: &mut [T], k0: usize, kl: usize, j0: usize, nc: usize) {
        if nc < NR {
            dst.fill(T::zero());
        }
        if self.b_cs == 1 && nc == NR {
            for (p, line) in dst.chunks_exact_mut(NR).enumerate() {
                let row = (k0 + p) * self.b_rs + j0;
                let line: &mut [T; NR] = line.try_into().expect("NR-wide line");
                let src: &[T; NR] = self.b[row..row + NR].try_into().expect("NR-wide row");
                *line = *src;
            }
        } else if self.b_cs == 1 {
            for (p, line) in dst.chunks_exact_mut(NR).enumerate() {
                let row = (k0 + p) * self.b_rs + j0;
                line[..nc].copy_from_slice(&self.b[row..row + nc]);
            }
        } else if self.b_rs == 1 {
            // B's columns contiguous (e.g. Wᵀ): read each column in one run.
            for j in 0..nc {
                let col = &self.b[(j0 + j) * self.b_cs + k0..][..kl];
                for (line, &v) in dst.chunks_exact_mut(NR).zip(col) {
                    line[j] = v;
                }
            }
        } else {
            for (p, line) in dst.chunks_exact_mut(NR).enumerate() {
                let row = (k0 + p) * self.b_rs + j0 * self.b_cs;
                for (j, v) in line[..nc].iter_mut().enumerate() {
                    *v = self.b[row + j * self.b_cs];
                }
            }
        }
    }

    /// Writes (or adds, when `accumulate`) rows `..rows` × columns `..nc` of a finished tile
    /// (`MR × NR`, row-major) to `C` at `(i0, j0)`.
    #[allow(clippy::too_many_arguments)]
    fn store_tile(
        &self,
        out: &[T],
        i0: usize,
        rows: usize,
        j0: usize,
        nc: usize,
        c: CPtr<T>,
        c_len: usize,
        accumulate: bool,
    ) {
        if self.c_rs == 1 && self.c_cs != 1 {
            // C's columns contiguous (a transposed orientation): one run of `rows` per column.
            if rows == MR && !accumulate {
                let last = i0 + MR - 1 + (j0 + nc - 1) * self.c_cs;
                assert!(last < c_len);
                for j in 0..nc {
                    let col: [T; MR] = std::array::from_fn(|r| out[r * NR + j]);
                    // SAFETY: the run of MR elements at i0 + (j0 + j)*c_cs ends at or before
                    // `last < c_len` (checked); it belongs to this task's tile only (disjoint
                    // tiles, injective strides), and `col` is a local array.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            col.as_ptr(),
                            c.0.add(i0 + (j0 + j) * self.c_cs),
                            MR,
                        )
                    };
                }
                return;
            }
            for j in 0..nc {
                let base = i0 + (j0 + j) * self.c_cs;
                assert!(base + rows <= c_len);
                // SAFETY: `base + rows <= c_len` (checked); these elements belong to this
                // task's tile only (disjoint tiles, injective strides), so no other reference
                // to them exists while this slice lives.
                let dst = unsafe { std::slice::from_raw_parts_mut(c.0.add(base), rows) };
                for (r, d) in dst.iter_mut().enumerate() {
                    let v = out[r * NR + j];
                    if accumulate {
                        *d += v;
                    } else {
                        *d = v;
                    }
                }
            }
            return;
        }
        for (r, line) in out.chunks_exact(NR).take(rows).enumerate() {
            let base = (i0 + r) * self.c_rs + j0 * self.c_cs;
            if self.c_cs == 1 {
                assert!(base + nc <= c_len);
                // SAFETY: `base + nc <= c_len` (checked), and the `nc` elements of row `i0 + r`
                // from column `j0` belong to this task's tile only (disjoint tiles, injective
                // strides), so no other reference to them exists while this slice lives.
                let dst = unsafe { std::slice::from_raw_parts_mut(c.0.add(base), nc) };
                if accumulate {
                    for (d, v) in dst.iter_mut().zip(line) {
                        *d += *v;
                    }
                } else {
                    dst.copy_from_slice(&line[..nc]);
                }
                continue;
            }
            for (j, v) in line[..nc].iter().enumerate() {
                let o = base + j * self.c_cs;
                assert!(o < c_len);
                // SAFETY: `o < c_len` (checked) and element `o` is written by this task only
                // (disjoint tiles, injective strides).
                unsafe {
                    let d = c.0.add(o);
                    if accumulate {
                        *d += *v;
                    } else {
                        *d = *v;
                    }
                }
            }
        }
    }

    /// Computes the tiles of panel `pb` × row block `rb` and writes them to `C`.
    #[allow(clippy::too_many_arguments)]
    fn run_task(
        &self,
        isa: Isa,
        src: &PanelSrc,
        pb: usize,
        rb: usize,
        packed_a: &[T],
        packed_b: &[T],
        c: CPtr<T>,
        c_len: usize,
        accumulate: bool,
    ) {
        let (m, k, n) = (self.m, self.k, self.n);
        let j0 = pb * NR;
        let nc = NR.min(n - j0);
        let bsl = if src.packed {
            &packed_b[src.off..]
        } else {
            &self.b[src.off..]
        };
        let t0 = rb * ROW_TILES_PER_TASK;
        let t1 = (t0 + ROW_TILES_PER_TASK).min(m.div_ceil(MR));
        let mut out = [T::zero(); MR * NR];
        for t in t0..t1 {
            let i0 = t * MR;
            let rows = MR.min(m - i0);
            let (asl, a_rs, a_ks) = if rows == MR {
                (&self.a[i0 * self.a_rs..], self.a_rs, self.a_cs)
            } else {
                (packed_a, 1, MR)
            };
            if rows == MR && nc == NR && self.c_cs == 1 && !accumulate {
                let base = i0 * self.c_rs + j0;
                assert!(base + (MR - 1) * self.c_rs + NR <= c_len && self.c_rs >= NR);
                // SAFETY: rows i0..i0+8, columns j0..j0+32 of C lie inside it (asserted), and
                // this task is the only one writing them (tiles are disjoint, C's strides are
                // injective — checked by the caller — and no reference into C is alive: the
                // caller gave up its `&mut` for the raw pointer); `isa` was checked.
                unsafe {
                    T::tile_raw(
                        isa,
                        k,
                        asl,
                        a_rs,
                        a_ks,
                        bsl,
                        src.ks,
                        c.0.add(base),
                        self.c_rs,
                    )
                };
                continue;
            }
            T::tile(isa, k, asl, a_rs, a_ks, bsl, src.ks, &mut out, NR);
            self.store_tile(&out, i0, rows, j0, nc, c, c_len, accumulate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::pool;

    fn vals(n: usize, seed: u64) -> Vec<f32> {
        crate::testing::test_values(n, seed, -1.0, 1.0)
            .into_iter()
            .map(|v| v as f32)
            .collect()
    }

    fn isas() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2Fma, Isa::Avx512]
            .into_iter()
            .filter(|&i| {
                i == Isa::Portable
                    || Isa::best() == Isa::Avx512
                    || (Isa::best() == Isa::Avx2Fma && i == Isa::Avx2Fma)
            })
            .collect()
    }

    /// One random case: shape, transposes, padded leading dimensions, strided C.
    #[derive(Debug, Clone, Copy)]
    struct Case {
        m: usize,
        k: usize,
        n: usize,
        ta: bool,
        tb: bool,
        pad: usize,
        c_t: bool,
    }

    impl Case {
        /// (a, a_rs, a_cs, b, b_rs, b_cs, c_rs, c_cs, c_len)
        #[allow(clippy::type_complexity)]
        fn operands(
            &self,
            seed: u64,
        ) -> (
            Vec<f32>,
            usize,
            usize,
            Vec<f32>,
            usize,
            usize,
            usize,
            usize,
            usize,
        ) {
            let Case {
                m,
                k,
                n,
                ta,
                tb,
                pad,
                c_t,
            } = *self;
            // A stored as (m × k) or (k × m) row-major with `pad` extra columns.
            let (a_rs, a_cs, a_len) = if ta {
                (1, m + pad, k * (m + pad))
            } else {
                (k + pad, 1, m * (k + pad))
            };
            let (b_rs, b_cs, b_len) = if tb {
                (1, k + pad, n * (k + pad))
            } else {
                (n + pad, 1, k * (n + pad))
            };
            let (c_rs, c_cs, c_len) = if c_t {
                (1, m + pad, n * (m + pad))
            } else {
                (n + pad, 1, m * (n + pad))
            };
            (
                vals(a_len, seed),
                a_rs,
                a_cs,
                vals(b_len, seed + 1),
                b_rs,
                b_cs,
                c_rs,
                c_cs,
                c_len,
            )
        }
    }

    /// f64 reference `C0 + A·B` in plain loops.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        a_rs: usize,
        a_cs: usize,
        b: &[f32],
        b_rs: usize,
        b_cs: usize,
    ) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    s += a[i * a_rs + p * a_cs] as f64 * b[p * b_rs + j * b_cs] as f64;
                }
                out[i * n + j] = s;
            }
        }
        out
    }

    fn cases() -> Vec<Case> {
        let mut v = Vec::new();
        let shapes = [
            (1, 1, 1),
            (1, 7, 33),
            (3, 5, 7),
            (8, 32, 32),
            (9, 31, 65),
            (17, 9, 33),
            (32, 1600, 128),
            (1600, 32, 128),
            (32, 128, 1600),
            (32, 128, 10),
            (128, 32, 10),
            (32, 10, 128),
            (33, 64, 64),
            (64, 784, 31),
            (7, 130, 100),
            (100, 3, 7),
        ];
        for (s, &(m, k, n)) in shapes.iter().enumerate() {
            for ta in [false, true] {
                for tb in [false, true] {
                    v.push(Case {
                        m,
                        k,
                        n,
                        ta,
                        tb,
                        pad: (s + ta as usize + 2 * tb as usize) % 3,
                        c_t: (s + ta as usize) % 4 == 3,
                    });
                }
            }
        }
        v
    }

    #[test]
    fn packed_matmul_matches_f64_loops_on_all_transposes_and_strides() {
        for (ci, case) in cases().into_iter().enumerate() {
            let (m, k, n) = (case.m, case.k, case.n);
            let (a, a_rs, a_cs, b, b_rs, b_cs, c_rs, c_cs, c_len) = case.operands(ci as u64);
            let want = reference(m, k, n, &a, a_rs, a_cs, &b, b_rs, b_cs);
            let c0 = vals(c_len, 1000 + ci as u64);
            let mut first: Option<Vec<f32>> = None;
            for isa in isas() {
                for accumulate in [false, true] {
                    let mut c = c0.clone();
                    matmul_packed(
                        isa, m, k, n, &a, a_rs, a_cs, &b, b_rs, b_cs, &mut c, c_rs, c_cs,
                        accumulate,
                    );
                    let mut touched = vec![false; c_len];
                    for i in 0..m {
                        for j in 0..n {
                            let o = i * c_rs + j * c_cs;
                            touched[o] = true;
                            let w = want[i * n + j] + if accumulate { c0[o] as f64 } else { 0.0 };
                            let got = c[o] as f64;
                            assert!(
                                (got - w).abs() <= 2e-6 * (1.0 + k as f64),
                                "{isa:?} {case:?} ({i},{j}): {got} vs {w}"
                            );
                        }
                    }
                    // Elements outside the C view are untouched.
                    for (o, t) in touched.iter().enumerate() {
                        if !t {
                            assert_eq!(c[o].to_bits(), c0[o].to_bits(), "{case:?} pad {o}");
                        }
                    }
                    if !accumulate {
                        match &first {
                            None => first = Some(c),
                            Some(f) => assert!(
                                f.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()),
                                "{isa:?} {case:?}: not bit-identical to portable"
                            ),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn packed_matmul_sums_each_element_by_fma_in_k_order() {
        // The documented arithmetic, written independently: acc = fma(a, b, acc) from zero.
        let (m, k, n) = (13, 77, 45);
        let a = vals(m * k, 1);
        let b = vals(k * n, 2);
        for isa in isas() {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a2, a_rs, a_cs) = if ta {
                    let t: Vec<f32> = (0..k * m).map(|x| a[(x % m) * k + x / m]).collect();
                    (t, 1, m)
                } else {
                    (a.clone(), k, 1)
                };
                let (b2, b_rs, b_cs) = if tb {
                    let t: Vec<f32> = (0..n * k).map(|x| b[(x % k) * n + x / k]).collect();
                    (t, 1, k)
                } else {
                    (b.clone(), n, 1)
                };
                let mut c = vec![0.0f32; m * n];
                matmul_packed(
                    isa, m, k, n, &a2, a_rs, a_cs, &b2, b_rs, b_cs, &mut c, n, 1, false,
                );
                for i in 0..m {
                    for j in 0..n {
                        let mut acc = 0.0f32;
                        for p in 0..k {
                            acc = a[i * k + p].mul_add(b[p * n + j], acc);
                        }
                        assert_eq!(c[i * n + j].to_bits(), acc.to_bits(), "{isa:?} ({i},{j})");
                    }
                }
            }
        }
    }

    #[test]
    fn k_blocked_driver_equals_unblocked_on_odd_sizes_and_strides() {
        // Reductions longer than one block (KC) and not a multiple of it, partial row tiles
        // and panels, transposed and padded operands, strided C, overwrite and accumulate:
        // the k-blocked driver gives the very bits of the one-pass driver, on every ISA.
        let shapes = [
            (9, KC + 1, 33),
            (17, 2 * KC + 45, 70),
            (8, 3 * KC, 32),
            (33, 1600, 65),
            (24, 1000, 64),
            (40, 700, 100),
            (1600, KC + 7, 40),
            (5, 300, 20),
        ];
        for (s, &(m, k, n)) in shapes.iter().enumerate() {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let case = Case {
                    m,
                    k,
                    n,
                    ta,
                    tb,
                    pad: (s + ta as usize) % 3,
                    c_t: (s + tb as usize) % 3 == 2,
                };
                let (a, a_rs, a_cs, b, b_rs, b_cs, c_rs, c_cs, c_len) = case.operands(s as u64);
                let c0 = vals(c_len, 77 + s as u64);
                for accumulate in [false, true] {
                    let mut want = c0.clone();
                    matmul_packed_driver(
                        Isa::Portable,
                        m,
                        k,
                        n,
                        (&a, a_rs, a_cs),
                        (&b, b_rs, b_cs),
                        (&mut want, c_rs, c_cs),
                        accumulate,
                        None,
                    );
                    for (isa, kc_max) in isas().into_iter().flat_map(|i| [(i, KC), (i, 0), (i, 37)])
                    {
                        let mut got = c0.clone();
                        matmul_packed_driver(
                            isa,
                            m,
                            k,
                            n,
                            (&a, a_rs, a_cs),
                            (&b, b_rs, b_cs),
                            (&mut got, c_rs, c_cs),
                            accumulate,
                            Some(kc_max),
                        );
                        assert!(
                            want.iter()
                                .zip(&got)
                                .all(|(x, y)| x.to_bits() == y.to_bits()),
                            "{isa:?} kc {kc_max} {case:?} acc={accumulate}: differs from one pass"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn k_blocked_driver_sums_each_element_by_fma_in_k_order() {
        // Several k blocks (k = 2·KC + 37) on partial tiles, A transposed, B strided, C
        // transposed: each element is still acc = fma(a, b, acc) from zero in k order.
        let (m, k, n) = (21, 2 * KC + 37, 50);
        let a = vals(m * k, 11);
        let b = vals(k * n, 12);
        let at: Vec<f32> = (0..k * m).map(|x| a[(x % m) * k + x / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|x| b[(x % k) * n + x / k]).collect();
        for isa in isas() {
            for threads in [1, 2] {
                let mut c = vec![0.0f32; m * n];
                pool(threads).install(|| {
                    matmul_packed_driver(
                        isa,
                        m,
                        k,
                        n,
                        (&at, 1, m),
                        (&bt, 1, k),
                        (&mut c, 1, m),
                        false,
                        Some(KC),
                    )
                });
                for i in 0..m {
                    for j in 0..n {
                        let mut acc = 0.0f32;
                        for p in 0..k {
                            acc = a[i * k + p].mul_add(b[p * n + j], acc);
                        }
                        assert_eq!(
                            c[j * m + i].to_bits(),
                            acc.to_bits(),
                            "{isa:?} {threads} threads ({i},{j})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn driver_on_two_threads_equals_previous_driver_on_one() {
        // Products above the thread threshold, split by rows (m >= n) and by panels (m < n),
        // with and without reduction blocks: the bits of the previous driver on one thread.
        for &(m, k, n) in &[(128, 1600, 128), (64, 1100, 200), (1600, 128, 128)] {
            assert!(m * k * n >= PAR_MIN_FMAS);
            let a = vals(m * k, 21);
            let b = vals(k * n, 22);
            for (ta, tb) in [(false, false), (true, false), (false, true)] {
                let (a_rs, a_cs) = if ta { (1, m) } else { (k, 1) };
                let (b_rs, b_cs) = if tb { (1, k) } else { (n, 1) };
                let run = |threads: usize, driver: Option<usize>| {
                    let mut c = vec![0f32; m * n];
                    pool(threads).install(|| {
                        matmul_packed_driver(
                            isa(),
                            m,
                            k,
                            n,
                            (&a, a_rs, a_cs),
                            (&b, b_rs, b_cs),
                            (&mut c, n, 1),
                            false,
                            driver,
                        )
                    });
                    c
                };
                let want = run(1, None);
                for driver in [Some(0), Some(KC)] {
                    let got = run(2, driver);
                    assert!(
                        want.iter()
                            .zip(&got)
                            .all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{m}x{k}x{n} ta={ta} tb={tb} {driver:?}: differs on 2 threads"
                    );
                }
            }
        }
    }

    #[test]
    fn k_block_and_split_cover_everything() {
        for k in 1..=3 * KC + 5 {
            for kc_max in [KC, 37, 1] {
                let kc = k_block(k, kc_max);
                assert!((1..=kc_max).contains(&kc), "k {k}: block {kc}");
                assert_eq!(k.div_ceil(kc), k.div_ceil(kc_max), "k {k}: too many blocks");
            }
            assert_eq!(k_block(k, 0), k);
        }
        for units in 1..20 {
            for parts in 1..5 {
                let r = split(units, parts);
                assert_eq!(r.first().unwrap().0, 0);
                assert_eq!(r.last().unwrap().1, units);
                assert!(r.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 < w[0].1));
            }
        }
    }

    #[test]
    fn packed_matmul_one_and_two_threads_identical() {
        for &(m, k, n) in &[
            (32, 1600, 128),
            (1600, 32, 128),
            (128, 1600, 128),
            (256, 784, 64),
            (784, 128, 64),
            (45, 300, 70),
        ] {
            let a = vals(m * k, 7);
            let b = vals(k * n, 8);
            for (ta, tb) in [(false, false), (true, false), (false, true)] {
                let (a_rs, a_cs) = if ta { (1, m) } else { (k, 1) };
                let (b_rs, b_cs) = if tb { (1, k) } else { (n, 1) };
                let run = |threads: usize| {
                    let mut c = vec![0f32; m * n];
                    pool(threads).install(|| {
                        matmul_packed(
                            isa(),
                            m,
                            k,
                            n,
                            &a,
                            a_rs,
                            a_cs,
                            &b,
                            b_rs,
                            b_cs,
                            &mut c,
                            n,
                            1,
                            false,
                        )
                    });
                    c
                };
                let (c1, c2) = (run(1), run(2));
                assert!(
                    c1.iter().zip(&c2).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}x{k}x{n} ta={ta} tb={tb}: 1 vs 2 threads differ"
                );
            }
        }
    }

    #[test]
    fn dispatch_is_a_function_of_type_and_shape() {
        assert!(packed_shape(32, 1600, 128));
        assert!(packed_shape(1600, 32, 128));
        assert!(!packed_shape(1024, 1024, 1024));
        assert!(!packed_shape(0, 3, 3));
        assert!(!use_packed::<f64>(32, 1600, 128));
        // `matmul` agrees with the kernel it picks.
        let (m, k, n) = (32, 100, 40);
        let a = vals(m * k, 3);
        let b = vals(k * n, 4);
        let mut c = vec![0f32; m * n];
        matmul(m, k, n, &a, k, 1, &b, n, 1, &mut c, false);
        let mut want = vec![0f32; m * n];
        if use_packed::<f32>(m, k, n) {
            matmul_packed(isa(), m, k, n, &a, k, 1, &b, n, 1, &mut want, n, 1, false);
        } else {
            gemm::matmul(m, k, n, &a, k, 1, &b, n, 1, &mut want, false);
        }
        assert_eq!(c, want);
    }

    #[test]
    fn k_zero_and_bad_views() {
        let mut c = vec![5.0f32; 6];
        matmul_packed::<f32>(
            Isa::Portable,
            2,
            0,
            3,
            &[],
            0,
            0,
            &[],
            0,
            0,
            &mut c,
            3,
            1,
            true,
        );
        assert_eq!(c, [5.0; 6]);
        matmul_packed::<f32>(
            Isa::Portable,
            2,
            0,
            3,
            &[],
            0,
            0,
            &[],
            0,
            0,
            &mut c,
            3,
            1,
            false,
        );
        assert_eq!(c, [0.0; 6]);
        let r = std::panic::catch_unwind(|| {
            let mut c = vec![0f32; 4];
            matmul_packed(
                Isa::Portable,
                2,
                3,
                2,
                &[0f32; 5],
                3,
                1,
                &[0f32; 6],
                2,
                1,
                &mut c,
                2,
                1,
                false,
            );
        });
        assert!(r.is_err(), "A view outside its slice must panic");
    }
}
