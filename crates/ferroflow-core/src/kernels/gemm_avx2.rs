//! Packed AVX2 + FMA f32 matrix product for CPUs with AVX2 but no AVX-512.
//!
//! BLIS-style: for each block of [`NC`] columns and each block of `kc` (at most [`KC`]) steps of
//! the reduction, B's block is packed into panels of [`NR`] columns (`[k][NR]`, zero-padded past
//! `n`); then, for each block of at most [`MC`] rows, A's block is packed into slivers of [`MR`]
//! rows (`[k][MR]`, zero-padded past `m`) and a register-blocked `MR x NR` micro-kernel
//! (12 ymm accumulators, 2 B vectors, 1 broadcast) multiplies every sliver by every panel.
//! Packing reads the strided views, so transposed operands need no other copy. Edge tiles (fewer
//! than `MR` rows or `NR` columns, or a C whose columns are not contiguous) run the same
//! micro-kernel on a local `MR x NR` tile copied from and back to C.
//!
//! # Arithmetic contract
//!
//! Every element `C[i][j]` is one FMA chain over `p = 0, 1, ..., k-1` in increasing order:
//! `acc = fma(A[i][p], B[p][j], acc)`, starting from `+0` (or from C's current value when
//! `accumulate`), whatever the blocking, the tile, the edge handling or the thread count.
//! Blocking over `k` continues the chain by storing the f32 partial sums into C and reloading
//! them, which is exact. Threads split row blocks only, never `k`, so 1, 2 or any number of
//! threads give identical bits (and the split itself depends on the shape only). The result
//! equals the scalar `f32::mul_add` chain in `k` order bit for bit (tested below).

use rayon::prelude::*;

/// Rows of the micro-kernel (A sliver height).
pub(crate) const MR: usize = 6;
/// Columns of the micro-kernel (B panel width: two ymm vectors).
pub(crate) const NR: usize = 16;
/// Largest reduction block (a `KC x NR` B panel is 16 KiB, a `MR x KC` A sliver 6 KiB: L1).
const KC: usize = 256;
/// Largest row block (a packed `MC x KC` A block is 144 KiB: L2).
const MC: usize = 144;
/// Largest column block (a packed `KC x NC` B block is 1 MiB: L3).
const NC: usize = 1024;

/// A strided read-only f32 matrix view: element `(i, j)` is `ptr[i*rs + j*cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    /// The backing slice (every element of the view lies inside it).
    pub data: &'a [f32],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

/// An A read through two offset tables: element `(i, p)` is `data[rows[i] + steps[p]]`. A
/// convolution's im2col matrix read straight from its input, with no column buffer: `rows` the
/// output pixels' first input elements and `steps` the filter taps' offsets from them (the
/// forward product), or the other way round (the filter gradient's `colsᵀ`). Read in place,
/// never packed.
#[derive(Clone, Copy)]
pub(crate) struct Gather<'a> {
    /// The backing slice (every `rows[i] + steps[p]` lies inside it).
    pub data: &'a [f32],
    /// Offset of row `i` (`m` entries).
    pub rows: &'a [usize],
    /// Offset of reduction step `p` (`k` entries).
    pub steps: &'a [usize],
}

/// A as a product reads it: a strided view (packed or read in place, as the shape says) or
/// through offset tables ([`Gather`]).
#[derive(Clone, Copy)]
pub(crate) enum Lhs<'a> {
    /// A strided view.
    View(View<'a>),
    /// Offset tables into a slice.
    Gather(Gather<'a>),
}

/// C's destination shared by the row-block tasks (each writes its own rows only).
#[derive(Clone, Copy)]
struct CPtr(CDst);
// SAFETY: tasks write pairwise-disjoint elements of C (distinct row blocks of an injective
// strided view; a scattered C, whose rows may share addresses, is only used on one thread), and
// the borrows of C and of a scatter's tables outlive the parallel loop.
unsafe impl Send for CPtr {}
// SAFETY: as above.
unsafe impl Sync for CPtr {}

impl CPtr {
    /// The destination (a method, so that closures capture the whole `Send` wrapper).
    fn dst(self) -> CDst {
        self.0
    }
}

/// Largest `m·k` of an A read in place (not packed) by a one-thread product.
const DIRECT_A: usize = 1 << 16;

/// Splits `len` into the fewest blocks of at most `max` (rounded up to a multiple of `unit`),
/// of equal sizes: returns the block size. A function of the shape only.
fn block(len: usize, max: usize, unit: usize) -> usize {
    let blocks = len.div_ceil(max).max(1);
    len.div_ceil(blocks).div_ceil(unit) * unit
}

/// Where the micro-kernel reads an operand: element `(r, p)` of an A sliver at
/// `ptr[r*rs + p*cs]`, row `p` of a B panel at `ptr[p*rs..p*rs + NR]`.
#[derive(Clone, Copy)]
struct Src {
    ptr: *const f32,
    rs: usize,
    cs: usize,
}

/// Where the micro-kernel reads an A sliver.
#[derive(Clone, Copy)]
enum ASrc {
    /// Through strides.
    Strided(Src),
    /// Element `(r, p)` at `rows[r][steps[p]]` ([`Gather`]; the rows past an edge sliver's last
    /// repeat it, and their results are dropped).
    Gather {
        rows: [*const f32; MR],
        steps: *const usize,
    },
}

/// B as a product reads it: a strided view, packed block by block as the product goes, or packed
/// once beforehand ([`PackedB`]) for many products that share it.
#[derive(Clone, Copy)]
pub(crate) enum Rhs<'a> {
    /// Packed by [`matmul`] itself.
    View(View<'a>),
    /// Packed once (its `k` and `n` must be the product's).
    Packed(&'a PackedB),
}

/// A `k x n` B packed once, block by block in the order [`matmul`] visits them (column blocks,
/// then reduction blocks; panels of [`NR`] columns, zero-padded): the convolution weights that
/// every im2col tile of a call multiplies.
pub(crate) struct PackedB {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedB {
    /// Packs the `k x n` view `b` (every element of it must lie inside its slice).
    pub(crate) fn new(k: usize, n: usize, b: View<'_>) -> Self {
        let kc_max = block(k, KC, 1);
        let nc_max = block(n, NC, NR);
        let mut data = Vec::with_capacity(k * n.div_ceil(NR) * NR);
        for j0 in (0..n).step_by(nc_max.max(1)) {
            let nc = nc_max.min(n - j0);
            for p0 in (0..k).step_by(kc_max.max(1)) {
                let kc = kc_max.min(k - p0);
                let start = data.len();
                data.resize(start + nc.div_ceil(NR) * kc * NR, 0.0);
                for (q, dst) in data[start..].chunks_mut(kc * NR).enumerate() {
                    pack_b(b, p0, j0 + q * NR, kc, NR.min(nc - q * NR), dst);
                }
            }
        }
        Self { k, n, data }
    }
}

/// `C = A·B` (`accumulate == false`) or `C += A·B` on an AVX2 + FMA CPU, following the contract
/// in the module doc. `m`, `k`, `n` are non-zero and every view lies inside its slice, C's view
/// is injective (the caller, `gemm::matmul_strided_on`, checked it). `threaded` allows rayon.
///
/// Small one-thread products (the convolutions' tiles) read A in place instead of packing it
/// (only an edge sliver is copied): packing would cost a large share of their time. A
/// [`Gather`] is always read in place. B is always
/// packed: read in place, a panel's rows lie a whole row of B apart and share a few L1 sets (the
/// filter gradient's tiles measured 15-25% faster packed). The arithmetic is the same either way.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `c` must be valid for writes at every `i*c_rs + j*c_cs`
/// (`i < m`, `j < n`) and those offsets pairwise distinct, with no other access to them meanwhile.
/// A [`Gather`] has `m` rows and `k` steps, and every `rows[i] + steps[p]` lies inside its slice.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul(
    m: usize,
    k: usize,
    n: usize,
    a: Lhs<'_>,
    b: Rhs<'_>,
    c: *mut f32,
    c_rs: usize,
    c_cs: usize,
    accumulate: bool,
    threaded: bool,
) {
    let c = CDst::Strided {
        ptr: c,
        rs: c_rs,
        cs: c_cs,
    };
    // SAFETY: the caller's contract, as `matmul_to` states it for a strided C.
    unsafe { matmul_to(m, k, n, a, b, c, accumulate, threaded) }
}

/// `C += A·B` on one thread where C's element `(i, j)` is `out[rows[i] + cols[j]]`: the
/// input gradient of a convolution, `dcols = dy·wᵀ` added into `dx` as col2im would add it, with
/// no `dcols` buffer (`rows` the output pixels' first input elements, `cols` the taps' offsets,
/// as [`Gather`] reads the forward's columns). Elements may share an address (overlapping
/// windows): each then receives its terms in the fixed order of the product's loops (column
/// panels, then row slivers; one FMA chain of `k` steps per visit, continued from the value
/// there), a function of the shape alone.
///
/// # Safety
/// As [`matmul`] for the CPU, A and B; `n` is a multiple of [`NR`] and each panel of `NR`
/// columns is contiguous (`cols[j0 + x] == cols[j0] + x` for `j0 % NR == 0`, `x < NR`); the
/// elements of one `MR x NR` tile (`MR` consecutive rows, one panel) have pairwise distinct
/// addresses; every `rows[i] + cols[j]` is valid for reads and writes with no other access
/// meanwhile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul_scatter_add(
    m: usize,
    k: usize,
    n: usize,
    a: Lhs<'_>,
    b: Rhs<'_>,
    out: *mut f32,
    rows: &[usize],
    cols: &[usize],
) {
    debug_assert!(rows.len() == m && cols.len() == n && n.is_multiple_of(NR));
    let c = CDst::Scatter {
        ptr: out,
        rows: rows.as_ptr(),
        cols: cols.as_ptr(),
    };
    // SAFETY: the caller's contract; one thread, so blocks never run concurrently.
    unsafe { matmul_to(m, k, n, a, b, c, true, false) }
}

/// Where a product, or one block of it, writes C.
#[derive(Clone, Copy)]
enum CDst {
    /// Element `(i, j)` at `ptr[i*rs + j*cs]`.
    Strided { ptr: *mut f32, rs: usize, cs: usize },
    /// Element `(i, j)` at `ptr[rows[i] + cols[j]]` ([`matmul_scatter_add`]).
    Scatter {
        ptr: *mut f32,
        rows: *const usize,
        cols: *const usize,
    },
}

impl CDst {
    /// The destination of the block whose element `(0, 0)` is this one's `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` inside the product.
    unsafe fn offset(self, i: usize, j: usize) -> Self {
        // SAFETY: the caller's contract: row `i` and column `j` exist.
        unsafe {
            match self {
                CDst::Strided { ptr, rs, cs } => CDst::Strided {
                    ptr: ptr.add(i * rs + j * cs),
                    rs,
                    cs,
                },
                CDst::Scatter { ptr, rows, cols } => CDst::Scatter {
                    ptr,
                    rows: rows.add(i),
                    cols: cols.add(j),
                },
            }
        }
    }

    /// The address of element `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` inside the block.
    unsafe fn at(self, i: usize, j: usize) -> *mut f32 {
        // SAFETY: the caller's contract (and the tables' lengths for a scatter).
        unsafe {
            match self {
                CDst::Strided { ptr, rs, cs } => ptr.add(i * rs + j * cs),
                CDst::Scatter { ptr, rows, cols } => ptr.add(*rows.add(i) + *cols.add(j)),
            }
        }
    }

    /// Whether a tile's `NR` columns are contiguous in every row.
    fn unit_columns(self) -> bool {
        match self {
            CDst::Strided { cs, .. } => cs == 1,
            CDst::Scatter { .. } => true,
        }
    }
}

/// [`matmul`] and [`matmul_scatter_add`]: the blocked product into any [`CDst`].
///
/// # Safety
/// As those; a scatter runs on one thread (`threaded == false`).
#[allow(clippy::too_many_arguments)]
unsafe fn matmul_to(
    m: usize,
    k: usize,
    n: usize,
    a: Lhs<'_>,
    b: Rhs<'_>,
    c: CDst,
    accumulate: bool,
    threaded: bool,
) {
    if let Rhs::Packed(pb) = b {
        assert!(
            pb.k == k && pb.n == n,
            "gemm_avx2: B packed as {}x{}, used as {k}x{n}",
            pb.k,
            pb.n
        );
    }
    let kc_max = block(k, KC, 1);
    let nc_max = block(n, NC, NR);
    let mc_max = block(m, MC, MR);
    let row_blocks = m.div_ceil(mc_max);
    let threaded = threaded && row_blocks > 1 && rayon::current_num_threads() > 1;
    let direct_a = match a {
        Lhs::View(_) => !threaded && m.saturating_mul(k) <= DIRECT_A,
        Lhs::Gather(g) => {
            debug_assert!(g.rows.len() == m && g.steps.len() == k);
            true
        }
    };
    let mut bpack = match b {
        Rhs::View(_) => vec![0.0; kc_max * nc_max.div_ceil(NR) * NR],
        Rhs::Packed(_) => Vec::new(),
    };
    // Where the next block starts in a `PackedB` (visited in the order it was packed in).
    let mut packed_at = 0;
    let cp = CPtr(c);
    for j0 in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - j0);
        for p0 in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - p0);
            let load = accumulate || p0 > 0;
            let panels = nc.div_ceil(NR);
            let len = panels * kc * NR;
            let bp: &[f32] = match b {
                Rhs::View(b) => {
                    let bp = &mut bpack[..len];
                    if threaded && panels > 1 {
                        bp.par_chunks_mut(kc * NR).enumerate().for_each(|(q, dst)| {
                            pack_b(b, p0, j0 + q * NR, kc, NR.min(nc - q * NR), dst)
                        });
                    } else {
                        for (q, dst) in bp.chunks_mut(kc * NR).enumerate() {
                            pack_b(b, p0, j0 + q * NR, kc, NR.min(nc - q * NR), dst);
                        }
                    }
                    bp
                }
                Rhs::Packed(pb) => &pb.data[packed_at..packed_at + len],
            };
            packed_at += len;
            let run = |apack: &mut Vec<f32>, rb: usize| {
                let i0 = rb * mc_max;
                let mc = mc_max.min(m - i0);
                if let (false, Lhs::View(a)) = (direct_a, a) {
                    apack.resize(mc.div_ceil(MR) * MR * kc, 0.0);
                    pack_a(a, i0, p0, mc, kc, apack);
                }
                let blk = Block {
                    a,
                    i0,
                    p0,
                    mc,
                    nc,
                    kc,
                    ap: (!direct_a).then_some(&apack[..]),
                    bp,
                };
                // SAFETY: the caller's contract (CPU features, C's extent and injectivity); this
                // task writes rows `i0..i0 + mc` only, disjoint from the other tasks' rows.
                unsafe { macro_kernel(&blk, cp.dst().offset(i0, j0), load) };
            };
            if threaded {
                (0..row_blocks)
                    .into_par_iter()
                    .for_each_init(Vec::new, |ap, rb| run(ap, rb));
            } else {
                let mut ap = Vec::new();
                for rb in 0..row_blocks {
                    run(&mut ap, rb);
                }
            }
        }
    }
}

/// One `mc x nc x kc` block of the product at rows `i0`, reduction steps `p0`: B packed (`bp`),
/// A packed (`ap`) or, when `None`, read in place from its view.
struct Block<'a> {
    a: Lhs<'a>,
    i0: usize,
    p0: usize,
    mc: usize,
    nc: usize,
    kc: usize,
    ap: Option<&'a [f32]>,
    bp: &'a [f32],
}

/// Packs `B[p0..p0+kc][j0..j0+nr]` (`nr <= NR`) into `dst` as `[kc][NR]`, zeros past `nr`.
fn pack_b(b: View<'_>, p0: usize, j0: usize, kc: usize, nr: usize, dst: &mut [f32]) {
    let dst = &mut dst[..kc * NR];
    if b.cs == 1 {
        for (p, row) in dst.chunks_exact_mut(NR).enumerate() {
            let base = (p0 + p) * b.rs + j0;
            if nr == NR {
                // A fixed-size copy: inlined, where a slice copy calls `memmove` per 64 bytes.
                let src: &[f32; NR] = b.data[base..base + NR].try_into().expect("NR elements");
                row.copy_from_slice(src);
            } else {
                row[..nr].copy_from_slice(&b.data[base..base + nr]);
                row[nr..].fill(0.0);
            }
        }
    } else {
        // Column by column: each reads along B's rows (`b.rs` is often 1 here).
        for j in 0..NR {
            if j < nr {
                let base = p0 * b.rs + (j0 + j) * b.cs;
                for p in 0..kc {
                    dst[p * NR + j] = b.data[base + p * b.rs];
                }
            } else {
                for p in 0..kc {
                    dst[p * NR + j] = 0.0;
                }
            }
        }
    }
}

/// Packs `A[i0..i0+mc][p0..p0+kc]` into `dst` as slivers `[kc][MR]`, zeros past `mc`.
fn pack_a(a: View<'_>, i0: usize, p0: usize, mc: usize, kc: usize, dst: &mut [f32]) {
    for (s, sliver) in dst.chunks_exact_mut(MR * kc).enumerate() {
        let r0 = i0 + s * MR;
        let mr = MR.min(i0 + mc - r0);
        if a.rs == 1 {
            for (p, d) in sliver.chunks_exact_mut(MR).enumerate() {
                let base = r0 + (p0 + p) * a.cs;
                d[..mr].copy_from_slice(&a.data[base..base + mr]);
                d[mr..].fill(0.0);
            }
        } else if mr == MR && a.cs == 1 {
            // Row-major A: six contiguous rows read side by side, the sliver written in order.
            let rows: [&[f32]; MR] = std::array::from_fn(|r| {
                let base = (r0 + r) * a.rs + p0;
                &a.data[base..base + kc]
            });
            for (p, d) in sliver.chunks_exact_mut(MR).enumerate() {
                for (x, row) in d.iter_mut().zip(&rows) {
                    *x = row[p];
                }
            }
        } else {
            for r in 0..MR {
                if r < mr {
                    let base = (r0 + r) * a.rs + p0 * a.cs;
                    for p in 0..kc {
                        sliver[p * MR + r] = a.data[base + p * a.cs];
                    }
                } else {
                    for p in 0..kc {
                        sliver[p * MR + r] = 0.0;
                    }
                }
            }
        }
    }
}

/// Multiplies every sliver of the block's A (`mc` rows) by every panel of its B (`nc` columns)
/// into the `mc x nc` block of C at `c`, continuing C's chains when `load`.
///
/// # Safety
/// AVX2 + FMA CPU; `c` valid for the block's `mc x nc` elements (a scatter's tiles with
/// pairwise distinct addresses).
#[target_feature(enable = "avx2,fma")]
unsafe fn macro_kernel(blk: &Block<'_>, c: CDst, load: bool) {
    let (mc, nc, kc) = (blk.mc, blk.nc, blk.kc);
    let mut tile = [0f32; MR * NR];
    // The edge sliver of an A read in place: copied, zero-padded, here.
    let mut edge_a = Vec::new();
    let slivers = mc.div_ceil(MR);
    let a_src = |s: usize, edge_a: &mut Vec<f32>| -> ASrc {
        let view = match (blk.ap, blk.a) {
            (Some(ap), _) => {
                return ASrc::Strided(Src {
                    ptr: ap[s * kc * MR..].as_ptr(),
                    rs: 1,
                    cs: MR,
                })
            }
            (None, Lhs::Gather(g)) => {
                let first = blk.i0 + s * MR;
                let last = blk.i0 + mc - 1;
                return ASrc::Gather {
                    rows: std::array::from_fn(|r| g.data[g.rows[(first + r).min(last)]..].as_ptr()),
                    steps: g.steps[blk.p0..].as_ptr(),
                };
            }
            (None, Lhs::View(view)) => view,
        };
        if (s + 1) * MR <= mc {
            ASrc::Strided(Src {
                ptr: view.data[(blk.i0 + s * MR) * view.rs + blk.p0 * view.cs..].as_ptr(),
                rs: view.rs,
                cs: view.cs,
            })
        } else {
            if edge_a.is_empty() {
                edge_a.resize(kc * MR, 0.0);
                pack_a(view, blk.i0 + s * MR, blk.p0, mc - s * MR, kc, edge_a);
            }
            ASrc::Strided(Src {
                ptr: edge_a.as_ptr(),
                rs: 1,
                cs: MR,
            })
        }
    };
    for q in 0..nc.div_ceil(NR) {
        let j = q * NR;
        let nr = NR.min(nc - j);
        let b_src = Src {
            ptr: blk.bp[q * kc * NR..].as_ptr(),
            rs: NR,
            cs: 1,
        };
        for s in 0..slivers {
            let i = s * MR;
            let mr = MR.min(mc - i);
            let a_src = a_src(s, &mut edge_a);
            // SAFETY: (all pointer arithmetic below) element (i + r, j + x) of the block with
            // r < mr, x < nr lies in C's view; an A sliver source covers MR rows of kc steps
            // inside its slice (a strided view in place only when complete, a padded copy
            // otherwise; a gather's rows and steps are inside its slice by the caller's
            // contract) and a packed B panel kc rows of NR columns.
            if mr == MR && nr == NR && c.unit_columns() {
                let rows = std::array::from_fn(|r| c.at(i + r, j));
                kernel_6x16(kc, a_src, b_src, rows, load);
            } else {
                if load {
                    for r in 0..mr {
                        for x in 0..nr {
                            tile[r * NR + x] = *c.at(i + r, j + x);
                        }
                    }
                }
                let rows = std::array::from_fn(|r| tile.as_mut_ptr().add(r * NR));
                kernel_6x16(kc, a_src, b_src, rows, load);
                for r in 0..mr {
                    for x in 0..nr {
                        *c.at(i + r, j + x) = tile[r * NR + x];
                    }
                }
            }
        }
    }
}

/// The `MR x NR` micro-kernel: `acc[r][x] = fma(A[r][p], B[p][x], acc[r][x])` for `p < kc` in
/// order, `acc` starting from `c` (when `load`) or `+0`, then stored to `c` (row `r` at `c[r]`,
/// `NR` contiguous columns). Packed operands (the common case) run a copy of the loop with constant
/// strides: the runtime-strided loop spends an address add per row and step.
///
/// # Safety
/// AVX2 + FMA CPU; `a` and `b` cover `MR x kc` and `kc x NR` elements; `c` valid for `MR` rows
/// of `NR`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn kernel_6x16(kc: usize, a: ASrc, b: Src, c: [*mut f32; MR], load: bool) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    if load {
        for (row, c) in acc.iter_mut().zip(c) {
            row[0] = _mm256_loadu_ps(c);
            row[1] = _mm256_loadu_ps(c.add(8));
        }
    }
    match a {
        ASrc::Gather { rows, steps } if b.rs == NR && b.cs == 1 => {
            fma_steps_rows::<true>(kc, rows, steps, b, &mut acc)
        }
        ASrc::Gather { .. } => unreachable!("B panels are always packed"),
        ASrc::Strided(a) if a.rs == 1 && a.cs == MR && b.rs == NR && b.cs == 1 => {
            fma_steps::<PACKED>(kc, a, b, &mut acc)
        }
        ASrc::Strided(a) if a.cs == 1 && b.rs == NR && b.cs == 1 => {
            let rows = std::array::from_fn(|r| a.ptr.wrapping_add(r * a.rs));
            fma_steps_rows::<false>(kc, rows, std::ptr::null(), b, &mut acc)
        }
        ASrc::Strided(a) if a.rs == 1 && b.rs == NR && b.cs == 1 => {
            fma_steps::<COLUMNS>(kc, a, b, &mut acc)
        }
        ASrc::Strided(a) => fma_steps::<STRIDED>(kc, a, b, &mut acc),
    }
    for (row, c) in acc.iter().zip(c) {
        _mm256_storeu_ps(c, row[0]);
        _mm256_storeu_ps(c.add(8), row[1]);
    }
}

/// The `kc` steps of [`kernel_6x16`] with one pointer per A row and a packed B, four per loop
/// turn. Step `p` reads row `r` at `rows[r][p]` (an A read in place by rows, `a.cs == 1`: a
/// broadcast needs no address arithmetic of its own), or with `GATHER` at `rows[r][steps[p]]`
/// (a [`Gather`]ed A: one offset load per step, shared by the six broadcasts).
///
/// # Safety
/// As [`kernel_6x16`]: every element read (`rows[r] + p`, or `rows[r] + steps[p]` with `steps`
/// holding `kc` entries, for `p < kc`) lies inside A's slice.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn fma_steps_rows<const GATHER: bool>(
    kc: usize,
    rows: [*const f32; MR],
    steps: *const usize,
    b: Src,
    acc: &mut [[std::arch::x86_64::__m256; 2]; MR],
) {
    use std::arch::x86_64::*;
    let step = |acc: &mut [[__m256; 2]; MR], p: usize, bp: *const f32| {
        // SAFETY: the caller's contract: `p < kc`, the offset of step `p` keeps every row's
        // element inside A's slice, and `bp` addresses step `p` of the packed panel.
        unsafe {
            let o = if GATHER { *steps.add(p) } else { p };
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for (row, ptr) in acc.iter_mut().zip(rows) {
                let ar = _mm256_broadcast_ss(&*ptr.add(o));
                row[0] = _mm256_fmadd_ps(ar, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ar, b1, row[1]);
            }
        }
    };
    let mut bp = b.ptr;
    let mut p = 0;
    while p + 4 <= kc {
        step(acc, p, bp);
        step(acc, p + 1, bp.add(NR));
        step(acc, p + 2, bp.add(2 * NR));
        step(acc, p + 3, bp.add(3 * NR));
        p += 4;
        bp = bp.add(4 * NR);
    }
    while p < kc {
        step(acc, p, bp);
        p += 1;
        bp = bp.add(NR);
    }
}

/// [`fma_steps`] mode: packed sliver and panel (`a.rs == 1`, `a.cs == MR`, `b.rs == NR`).
const PACKED: u8 = 0;
/// [`fma_steps`] mode: A read in place by columns (`a.rs == 1`: a transposed A such as the
/// filter gradient's `colsᵀ`, its six rows side by side at each step), B packed (`b.rs == NR`).
const COLUMNS: u8 = 1;
/// [`fma_steps`] mode: any strides.
const STRIDED: u8 = 2;

/// The `kc` steps of [`kernel_6x16`], four per loop turn. `MODE` fixes the strides it can at
/// compile time ([`PACKED`], [`COLUMNS`], [`STRIDED`]): with a runtime row stride every
/// broadcast needs an address add of its own, chained from row to row.
///
/// # Safety
/// As [`kernel_6x16`].
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn fma_steps<const MODE: u8>(
    kc: usize,
    a: Src,
    b: Src,
    acc: &mut [[std::arch::x86_64::__m256; 2]; MR],
) {
    use std::arch::x86_64::*;
    let (a_rs, a_cs, b_rs) = match MODE {
        PACKED => (1, MR, NR),
        COLUMNS => (1, a.cs, NR),
        _ => (a.rs, a.cs, b.rs),
    };
    let step = |acc: &mut [[__m256; 2]; MR], ap: *const f32, bp: *const f32| {
        // SAFETY: the caller's contract: `ap` and `bp` address step `p < kc` of the sliver and
        // panel.
        unsafe {
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for (r, row) in acc.iter_mut().enumerate() {
                let ar = _mm256_broadcast_ss(&*ap.add(r * a_rs));
                row[0] = _mm256_fmadd_ps(ar, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ar, b1, row[1]);
            }
        }
    };
    let (mut ap, mut bp) = (a.ptr, b.ptr);
    for _ in 0..kc / 4 {
        step(acc, ap, bp);
        step(acc, ap.add(a_cs), bp.add(b_rs));
        step(acc, ap.add(2 * a_cs), bp.add(2 * b_rs));
        step(acc, ap.add(3 * a_cs), bp.add(3 * b_rs));
        ap = ap.add(4 * a_cs);
        bp = bp.add(4 * b_rs);
    }
    for _ in 0..kc % 4 {
        step(acc, ap, bp);
        ap = ap.add(a_cs);
        bp = bp.add(b_rs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::{detected, Level};
    use crate::kernels::test_util::{pool, rand_vec};

    fn have_avx2() -> bool {
        let ok = detected() != Level::Portable;
        if !ok {
            println!("skipped: no AVX2");
        }
        ok
    }

    /// One product: shape, transposes of A and B, padding of the leading dimensions, C
    /// transposed or not, accumulate.
    #[derive(Debug, Clone, Copy)]
    struct Case {
        m: usize,
        k: usize,
        n: usize,
        ta: bool,
        tb: bool,
        tc: bool,
        pad: usize,
        acc: bool,
    }

    struct Data {
        a: Vec<f32>,
        a_rs: usize,
        a_cs: usize,
        b: Vec<f32>,
        b_rs: usize,
        b_cs: usize,
        c0: Vec<f32>,
        c_rs: usize,
        c_cs: usize,
    }

    fn data(cs: Case, seed: u64) -> Data {
        let Case { m, k, n, pad, .. } = cs;
        let (a_rs, a_cs, a_len) = if cs.ta {
            (1, m + pad, k * (m + pad))
        } else {
            (k + pad, 1, m * (k + pad))
        };
        let (b_rs, b_cs, b_len) = if cs.tb {
            (1, k + pad, n * (k + pad))
        } else {
            (n + pad, 1, k * (n + pad))
        };
        let (c_rs, c_cs, c_len) = if cs.tc {
            (1, m + pad, n * (m + pad))
        } else {
            (n + pad, 1, m * (n + pad))
        };
        Data {
            a: rand_vec::<f32>(a_len, seed),
            a_rs,
            a_cs,
            b: rand_vec::<f32>(b_len, seed + 1),
            b_rs,
            b_cs,
            c0: rand_vec::<f32>(c_len, seed + 2),
            c_rs,
            c_cs,
        }
    }

    /// The kernel's result, run on `threads` threads (threaded when > 1), B packed as it goes.
    fn run(cs: Case, d: &Data, threads: usize) -> Vec<f32> {
        run_with(cs, d, threads, false)
    }

    /// [`run`], B packed beforehand into a [`PackedB`] when `prepacked`.
    fn run_with(cs: Case, d: &Data, threads: usize, prepacked: bool) -> Vec<f32> {
        let mut c = d.c0.clone();
        let a = Lhs::View(View {
            data: &d.a,
            rs: d.a_rs,
            cs: d.a_cs,
        });
        let b = View {
            data: &d.b,
            rs: d.b_rs,
            cs: d.b_cs,
        };
        let packed = prepacked.then(|| PackedB::new(cs.k, cs.n, b));
        let b = match &packed {
            Some(pb) => Rhs::Packed(pb),
            None => Rhs::View(b),
        };
        pool(threads).install(|| {
            // SAFETY: AVX2 checked by the caller; the views fit their slices by construction
            // and C's view (row or column major, padded) is injective.
            unsafe {
                matmul(
                    cs.m,
                    cs.k,
                    cs.n,
                    a,
                    b,
                    c.as_mut_ptr(),
                    d.c_rs,
                    d.c_cs,
                    cs.acc,
                    threads > 1,
                )
            }
        });
        c
    }

    /// The contract: one `mul_add` chain per element in k order, from +0 or C.
    fn chain(cs: Case, d: &Data) -> Vec<f32> {
        let mut c = d.c0.clone();
        for i in 0..cs.m {
            for j in 0..cs.n {
                let ci = i * d.c_rs + j * d.c_cs;
                let mut s = if cs.acc { c[ci] } else { 0.0 };
                for p in 0..cs.k {
                    s = d.a[i * d.a_rs + p * d.a_cs].mul_add(d.b[p * d.b_rs + j * d.b_cs], s);
                }
                c[ci] = s;
            }
        }
        c
    }

    fn cases() -> Vec<Case> {
        let dims = [1usize, 5, 17, 63, 300];
        let mut v = Vec::new();
        let mut t = 0usize;
        for &m in &dims {
            for &k in &dims {
                for &n in &dims {
                    t += 1;
                    v.push(Case {
                        m,
                        k,
                        n,
                        ta: t % 2 == 1,
                        tb: (t / 2) % 2 == 1,
                        tc: (t / 4) % 3 == 1,
                        pad: t % 3,
                        acc: (t / 3) % 2 == 1,
                    });
                }
            }
        }
        // Every transpose combination on one odd shape crossing the k, m and n blocks.
        for t in 0..16 {
            v.push(Case {
                m: 151,
                k: 517,
                n: 1043,
                ta: t & 1 != 0,
                tb: t & 2 != 0,
                tc: t & 4 != 0,
                pad: 1,
                acc: t & 8 != 0,
            });
        }
        v
    }

    #[test]
    fn matches_the_mul_add_chain_bit_for_bit() {
        if !have_avx2() {
            return;
        }
        for (s, cs) in cases().into_iter().enumerate() {
            let d = data(cs, 11 + s as u64);
            let want = chain(cs, &d);
            for prepacked in [false, true] {
                let got = run_with(cs, &d, 1, prepacked);
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{cs:?} prepacked {prepacked}"
                );
            }
        }
    }

    #[test]
    fn matches_an_f64_reference() {
        if !have_avx2() {
            return;
        }
        for (s, cs) in cases().into_iter().enumerate() {
            let d = data(cs, 101 + s as u64);
            let got = run(cs, &d, 1);
            for i in 0..cs.m {
                for j in 0..cs.n {
                    let ci = i * d.c_rs + j * d.c_cs;
                    let mut s = if cs.acc { d.c0[ci] as f64 } else { 0.0 };
                    for p in 0..cs.k {
                        s += d.a[i * d.a_rs + p * d.a_cs] as f64
                            * d.b[p * d.b_rs + j * d.b_cs] as f64;
                    }
                    let tol = 1e-6 * (cs.k as f64 + 1.0);
                    assert!((got[ci] as f64 - s).abs() <= tol, "{cs:?} ({i},{j})");
                }
            }
            // Elements outside C's view are untouched.
            let mut inside = vec![false; d.c0.len()];
            for i in 0..cs.m {
                for j in 0..cs.n {
                    inside[i * d.c_rs + j * d.c_cs] = true;
                }
            }
            for (x, (g, c0)) in got.iter().zip(&d.c0).enumerate() {
                assert!(inside[x] || g.to_bits() == c0.to_bits(), "{cs:?} wrote {x}");
            }
        }
    }

    #[test]
    fn one_and_two_threads_give_the_same_bits() {
        if !have_avx2() {
            return;
        }
        for (s, cs) in cases().into_iter().enumerate() {
            if cs.m * cs.n * cs.k < 1000 {
                continue;
            }
            let d = data(cs, 1001 + s as u64);
            let c1 = run(cs, &d, 1);
            let c2 = run(cs, &d, 2);
            let c3 = run(cs, &d, 3);
            assert!(
                c1.iter().zip(&c2).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{cs:?}"
            );
            assert!(
                c1.iter().zip(&c3).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{cs:?}"
            );
        }
    }

    #[test]
    fn a_gather_matches_the_chain_of_its_materialised_a() {
        if !have_avx2() {
            return;
        }
        // Offsets with runs and jumps (as a convolution's taps and pixels have), edge slivers,
        // several k blocks, C row or column major, accumulating or not, 1 or 2 threads.
        for (t, &(m, k, n)) in [
            (1, 1, 1),
            (7, 5, 17),
            (55, 288, 64),
            (288, 165, 64),
            (13, 600, 33),
        ]
        .iter()
        .enumerate()
        {
            let offsets = |len: usize, stride: usize, run: usize| -> Vec<usize> {
                (0..len).map(|i| (i / run) * stride + i % run).collect()
            };
            let rows = offsets(m, 97, 6 + t);
            let steps = offsets(k, 41, 5);
            let span = rows.iter().max().unwrap() + steps.iter().max().unwrap() + 1;
            let src = rand_vec::<f32>(span + 3, 70 + t as u64);
            let cs = Case {
                m,
                k,
                n,
                ta: false,
                tb: t % 2 == 1,
                tc: t % 3 == 1,
                pad: t % 2,
                acc: t % 2 == 0,
            };
            let mut d = data(cs, 90 + t as u64);
            // A materialised, row-major.
            d.a = (0..m * k)
                .map(|x| src[rows[x / k] + steps[x % k]])
                .collect();
            (d.a_rs, d.a_cs) = (k, 1);
            let want = chain(cs, &d);
            for threads in [1, 2] {
                let mut c = d.c0.clone();
                let a = Lhs::Gather(Gather {
                    data: &src,
                    rows: &rows,
                    steps: &steps,
                });
                let b = Rhs::View(View {
                    data: &d.b,
                    rs: d.b_rs,
                    cs: d.b_cs,
                });
                pool(threads).install(|| {
                    // SAFETY: AVX2 checked above; every `rows[i] + steps[p]` is below `span`;
                    // C's view is injective by construction.
                    unsafe {
                        matmul(
                            m,
                            k,
                            n,
                            a,
                            b,
                            c.as_mut_ptr(),
                            d.c_rs,
                            d.c_cs,
                            cs.acc,
                            threads > 1,
                        )
                    }
                });
                assert!(
                    c.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{cs:?} threads {threads}"
                );
            }
        }
    }

    #[test]
    fn a_scatter_adds_each_tile_in_the_documented_order() {
        if !have_avx2() {
            return;
        }
        // Rows as a convolution's pixels (32 apart, jumps between output rows) and columns as
        // its taps (panels of 16 contiguous), so tiles overlap one another's addresses; several
        // k, m and n blocks; edge slivers.
        for (t, &(m, k, n, c)) in [(11, 64, 288, 32), (121, 40, 96, 16), (150, 300, 1056, 32)]
            .iter()
            .enumerate()
        {
            let rows: Vec<usize> = (0..m).map(|i| (i / 7) * 9 * c + (i % 7) * c).collect();
            let cols: Vec<usize> = (0..n)
                .map(|j| (j / c) / 3 * 9 * c + (j / c) % 3 * c + j % c)
                .collect();
            let len = rows.iter().max().unwrap() + cols.iter().max().unwrap() + 1;
            let a = rand_vec::<f32>(m * k, 200 + t as u64);
            let b = rand_vec::<f32>(k * n, 300 + t as u64);
            let out0 = rand_vec::<f32>(len, 400 + t as u64);
            // The documented order: column blocks, reduction blocks, row blocks, panels,
            // slivers; one chain of the block's steps per element, from the value there.
            let mut want = out0.clone();
            let (kc_max, nc_max, mc_max) = (block(k, KC, 1), block(n, NC, NR), block(m, MC, MR));
            for j0 in (0..n).step_by(nc_max) {
                for p0 in (0..k).step_by(kc_max) {
                    for i0 in (0..m).step_by(mc_max) {
                        for j1 in (j0..n.min(j0 + nc_max)).step_by(NR) {
                            for i1 in (i0..m.min(i0 + mc_max)).step_by(MR) {
                                for i in i1..m.min(i1 + MR).min(i0 + mc_max) {
                                    for j in j1..j1 + NR {
                                        let at = rows[i] + cols[j];
                                        let mut v = want[at];
                                        for p in p0..k.min(p0 + kc_max) {
                                            v = a[i * k + p].mul_add(b[p * n + j], v);
                                        }
                                        want[at] = v;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let mut got = out0.clone();
            let packed = PackedB::new(
                k,
                n,
                View {
                    data: &b,
                    rs: n,
                    cs: 1,
                },
            );
            // SAFETY: AVX2 checked above; n is a multiple of NR with contiguous panels, a
            // tile's rows are at least c >= NR apart, every address is below `len`.
            unsafe {
                matmul_scatter_add(
                    m,
                    k,
                    n,
                    Lhs::View(View {
                        data: &a,
                        rs: k,
                        cs: 1,
                    }),
                    Rhs::Packed(&packed),
                    got.as_mut_ptr(),
                    &rows,
                    &cols,
                )
            };
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "case {t}"
            );
        }
    }

    #[test]
    fn routed_through_the_wrapper_with_k_zero_and_empty_shapes() {
        use crate::kernels::gemm::{matmul as wrap, matmul_strided};
        if !have_avx2() {
            return;
        }
        // k = 0 zeroes C, or leaves it when accumulating; empty shapes touch nothing.
        let mut c = vec![7f32; 12];
        wrap::<f32>(3, 0, 4, &[], 0, 0, &[], 0, 0, &mut c, true);
        assert!(c.iter().all(|&v| v == 7.0));
        wrap::<f32>(3, 0, 4, &[], 0, 0, &[], 0, 0, &mut c, false);
        assert!(c.iter().all(|&v| v.to_bits() == 0));
        let mut c = vec![7f32; 4];
        wrap::<f32>(0, 5, 4, &[], 5, 1, &[0.0; 20], 4, 1, &mut c, false);
        wrap::<f32>(4, 5, 0, &[0.0; 20], 5, 1, &[], 0, 1, &mut c, false);
        assert!(c.iter().all(|&v| v == 7.0));
        // A product large enough to take the packed path follows the chain through the wrapper
        // (C column-major).
        let cs = Case {
            m: 200,
            k: 33,
            n: 35,
            ta: true,
            tb: false,
            tc: true,
            pad: 0,
            acc: true,
        };
        let d = data(cs, 5);
        let mut c = d.c0.clone();
        matmul_strided(
            cs.m, cs.k, cs.n, &d.a, d.a_rs, d.a_cs, &d.b, d.b_rs, d.b_cs, &mut c, d.c_rs, d.c_cs,
            true,
        );
        let threaded = cs.m * cs.k * cs.n >= crate::kernels::parallel::GEMM_PAR_MIN;
        if crate::kernels::gemm::use_avx2(cs.m, cs.k, cs.n, threaded) {
            let want = chain(cs, &d);
            assert!(c.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
}
