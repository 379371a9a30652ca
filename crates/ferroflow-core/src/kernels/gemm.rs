//! Safe wrappers around the `gemm` crate's matrix multiplication.
//!
//! Operands are given as slices plus row/column strides (in elements), so transposed views need
//! no copy. The `gemm` crate splits work over output tiles only, never over the reduction, so the
//! result is bit-identical for any number of threads (tested below).

#[cfg(target_arch = "x86_64")]
use crate::kernels::float::{as_f32, as_f32_mut};
use crate::kernels::parallel;
use crate::kernels::Float;
#[cfg(target_arch = "x86_64")]
use crate::kernels::{env_switch, gemm_avx2, simd};
use gemm::Parallelism;
use rayon::prelude::*;
#[cfg(target_arch = "x86_64")]
use std::sync::OnceLock;

/// Index of the last element touched by an `rows x cols` view with strides `rs`, `cs`
/// (the view must be non-empty).
#[inline]
pub(crate) fn last_index(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    (rows - 1) * rs + (cols - 1) * cs
}

/// Whether an `rows x cols` view with strides `rs`, `cs` maps distinct `(i, j)` to distinct
/// offsets (a sufficient check: one stride must step over a whole line of the other).
pub(crate) fn is_injective(rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    match (rows <= 1, cols <= 1) {
        (true, true) => true,
        (true, false) => cs >= 1,
        (false, true) => rs >= 1,
        (false, false) => (cs >= 1 && rs >= cols * cs) || (rs >= 1 && cs >= rows * rs),
    }
}

/// Whether an f32 product of this shape runs on [`gemm_avx2`] rather than the `gemm` crate: the
/// CPU's best level is AVX2 (not AVX-512, where the `gemm` crate is fast), the switch
/// `FF_GEMM_AVX2` is on (the default) and the shape is one where ours measured faster on Zen 3
/// (`examples/kernel_gflops.rs`, alternated A/B):
/// - `threaded` products of at least 2^24 multiply-adds with at least 512 rows (the row blocks
///   are what the threads share): matmul 1024² 19.3 -> 17.0 ms, the Dense weight gradient
///   `[1600x128]x[128x128]` 0.91 -> 0.54 ms; smaller ones (the Dense layers' other products)
///   ran up to 2x slower than the `gemm` crate's, which also splits columns;
/// - one-thread products with at least 192 rows and a reduction and width of at least 32 (the
///   convolutions' filter-gradient tiles, `[288x55]x[55x64]`: conv2 backward-filter 1.52 ->
///   1.28 ms at batch 32). The forward and input-gradient tiles (55 or 121 rows) come through
///   [`matmul_shared`] instead, their weights packed once per call ([`SharedRhs`]).
///
/// `threaded` is whether the caller lets the product share threads (`Parallelism::Rayon`, given
/// by the shape alone: see `parallelism_for`), not whether the pool has several. So the choice is
/// a pure function of the shape, the caller, the CPU and the switch (the caller checks the type),
/// and results do not depend on the thread count.
#[cfg(target_arch = "x86_64")]
pub(crate) fn use_avx2(m: usize, k: usize, n: usize, threaded: bool) -> bool {
    let shape = if threaded {
        m >= 512 && m.saturating_mul(k).saturating_mul(n) >= 1 << 24
    } else {
        m >= 192 && k >= 32 && n >= 32
    };
    shape && avx2_kernel_on()
}

/// Whether [`gemm_avx2`] may run at all: the CPU's best level is AVX2 and the switch
/// `FF_GEMM_AVX2` is on (read once). Both routing rules ([`use_avx2`], [`use_avx2_shared`]) ask.
#[cfg(target_arch = "x86_64")]
fn avx2_kernel_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    simd::detected() == simd::Level::Avx2 && env_switch::on(&ON, "FF_GEMM_AVX2")
}

/// The threads a product of this shape may use: `Rayon` when it is large enough to share
/// ([`parallel::GEMM_PAR_MIN`]), even when the pool has one thread, since which kernel runs
/// ([`use_avx2`]) reads this and must not depend on the thread count.
fn parallelism_for(m: usize, k: usize, n: usize) -> Parallelism {
    if m.saturating_mul(k).saturating_mul(n) >= parallel::GEMM_PAR_MIN {
        Parallelism::Rayon(rayon::current_num_threads())
    } else {
        Parallelism::None
    }
}

/// General strided matrix product: `C = alpha_c·C + A·B` where `alpha_c` is 1 when `accumulate`
/// and C is overwritten otherwise.
///
/// * `A` is `m x k`: element `(i, p)` is `a[i*a_rs + p*a_cs]`.
/// * `B` is `k x n`: element `(p, j)` is `b[p*b_rs + j*b_cs]`.
/// * `C` is `m x n`: element `(i, j)` is `c[i*c_rs + j*c_cs]`; distinct elements must not alias.
///
/// Strides of A and B may be 0 (broadcast). When `k == 0`, C is zeroed (or left alone when
/// accumulating).
///
/// # Panics
/// If a view reaches outside its slice or C's strides make elements alias.
#[allow(clippy::too_many_arguments)]
pub fn matmul_strided<T: Float>(
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
    let par = parallelism_for(m, k, n);
    matmul_strided_on(
        par, m, k, n, a, a_rs, a_cs, b, b_rs, b_cs, c, c_rs, c_cs, accumulate,
    )
}

/// The checks every strided product makes before touching memory (`op` names it in the panic
/// messages): C's view lies inside its slice and maps distinct elements to distinct offsets;
/// when `k == 0` C is zeroed (left alone when `accumulate`) and there is nothing more to do;
/// otherwise A's and B's views lie inside their slices. Returns whether the product has work
/// (`m`, `n` and `k` all non-zero).
///
/// # Panics
/// If a view reaches outside its slice or C's strides make elements alias.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_views<T: Float>(
    op: &str,
    m: usize,
    k: usize,
    n: usize,
    (a, a_rs, a_cs): (&[T], usize, usize),
    (b, b_rs, b_cs): (&[T], usize, usize),
    (c, c_rs, c_cs): (&mut [T], usize, usize),
    accumulate: bool,
) -> bool {
    if m == 0 || n == 0 {
        return false;
    }
    assert!(
        last_index(m, n, c_rs, c_cs) < c.len(),
        "{op}: C view {m}x{n} (strides {c_rs},{c_cs}) exceeds slice of length {}",
        c.len()
    );
    assert!(
        is_injective(m, n, c_rs, c_cs),
        "{op}: C strides ({c_rs},{c_cs}) alias elements of a {m}x{n} view"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c[i * c_rs + j * c_cs] = T::zero();
                }
            }
        }
        return false;
    }
    assert!(
        last_index(m, k, a_rs, a_cs) < a.len(),
        "{op}: A view {m}x{k} (strides {a_rs},{a_cs}) exceeds slice of length {}",
        a.len()
    );
    assert!(
        last_index(k, n, b_rs, b_cs) < b.len(),
        "{op}: B view {k}x{n} (strides {b_rs},{b_cs}) exceeds slice of length {}",
        b.len()
    );
    true
}

/// [`matmul_strided`] with the caller's choice of gemm threads (`Parallelism::None` where the
/// caller already parallelises over blocks, as the fused recurrent kernels do).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_strided_on<T: Float>(
    par: Parallelism,
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
    if !check_views(
        "matmul",
        m,
        k,
        n,
        (a, a_rs, a_cs),
        (b, b_rs, b_cs),
        (c, c_rs, c_cs),
        accumulate,
    ) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if use_avx2(m, k, n, !matches!(par, Parallelism::None)) {
        if let (Some(a), Some(b), Some(c)) = (as_f32(a), as_f32(b), as_f32_mut(c)) {
            let a = gemm_avx2::Lhs::View(gemm_avx2::View {
                data: a,
                rs: a_rs,
                cs: a_cs,
            });
            let b = gemm_avx2::Rhs::View(gemm_avx2::View {
                data: b,
                rs: b_rs,
                cs: b_cs,
            });
            // SAFETY: `use_avx2` checked that the CPU has AVX2 and FMA; `check_views` that every
            // element of C's view lies inside `c` and that they are pairwise distinct; `c` is
            // borrowed mutably for the whole call.
            unsafe {
                gemm_avx2::matmul(
                    m,
                    k,
                    n,
                    a,
                    b,
                    c.as_mut_ptr(),
                    c_rs,
                    c_cs,
                    accumulate,
                    !matches!(par, Parallelism::None),
                )
            };
            return;
        }
    }
    // Offsets are < slice lengths, which are <= isize::MAX, so these casts are lossless.
    // SAFETY: the asserts above guarantee every element of the A, B and C views lies inside its
    // slice (all strides are non-negative, so the largest offset is `last_index`), and that C's
    // elements are pairwise distinct, so gemm's (possibly multi-threaded) writes never overlap.
    // `c` is borrowed mutably, so nothing else reads or writes it meanwhile; A and B are only
    // read. `T` is f32 or f64 (the only `Float` impls), both supported by `gemm::gemm`.
    // With `read_dst == false`, gemm ignores the previous contents of C (alpha is unused).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs as isize,
            c_rs as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            par,
        );
    }
}

/// Whether one-thread products of at most `m` rows sharing one f32 B (`k x n`) run on
/// [`gemm_avx2`] with B packed once ([`SharedRhs`]): an AVX2-only CPU, `FF_GEMM_AVX2` on, and
/// the shape large enough. A pure function of the shape, the CPU and the switch.
#[cfg(target_arch = "x86_64")]
fn use_avx2_shared(m: usize, k: usize, n: usize) -> bool {
    m >= 24 && k >= 32 && n >= 32 && avx2_kernel_on()
}

/// The right operand B of many one-thread products that share it (a convolution's weights,
/// multiplied by every im2col tile of the call). Where those products run on [`gemm_avx2`]
/// ([`use_avx2_shared`]), B is packed once here instead of once per product.
pub(crate) struct SharedRhs<'a, T> {
    b: &'a [T],
    rs: usize,
    cs: usize,
    k: usize,
    n: usize,
    #[cfg(target_arch = "x86_64")]
    packed: Option<gemm_avx2::PackedB>,
}

impl<'a, T: Float> SharedRhs<'a, T> {
    /// B (`k x n`, element `(p, j)` at `b[p*rs + j*cs]`) for products of at most `m` rows.
    ///
    /// # Panics
    /// If the view reaches outside `b`.
    pub(crate) fn new(m: usize, k: usize, n: usize, b: &'a [T], rs: usize, cs: usize) -> Self {
        if k > 0 && n > 0 {
            assert!(
                last_index(k, n, rs, cs) < b.len(),
                "matmul: B view {k}x{n} (strides {rs},{cs}) exceeds slice of length {}",
                b.len()
            );
        }
        #[cfg(target_arch = "x86_64")]
        let packed = match as_f32(b) {
            Some(data) if use_avx2_shared(m, k, n) => Some(gemm_avx2::PackedB::new(
                k,
                n,
                gemm_avx2::View { data, rs, cs },
            )),
            _ => None,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = m;
        Self {
            b,
            rs,
            cs,
            k,
            n,
            #[cfg(target_arch = "x86_64")]
            packed,
        }
    }
}

/// A one-thread product `C (+)= A·B` with a shared B ([`SharedRhs`]; `k`, `n` are its shape),
/// strides as in [`matmul_strided`]. The same kernel, so the same bits, for every product of
/// one `SharedRhs`.
///
/// # Panics
/// If a view reaches outside its slice or C's strides make elements alias.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_shared<T: Float>(
    m: usize,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    rhs: &SharedRhs<'_, T>,
    c: &mut [T],
    c_rs: usize,
    c_cs: usize,
    accumulate: bool,
) {
    let (k, n) = (rhs.k, rhs.n);
    #[cfg(target_arch = "x86_64")]
    if let Some(pb) = &rhs.packed {
        if !check_views(
            "matmul",
            m,
            k,
            n,
            (a, a_rs, a_cs),
            (rhs.b, rhs.rs, rhs.cs),
            (c, c_rs, c_cs),
            accumulate,
        ) {
            return;
        }
        if let (Some(a), Some(c)) = (as_f32(a), as_f32_mut(c)) {
            let a = gemm_avx2::Lhs::View(gemm_avx2::View {
                data: a,
                rs: a_rs,
                cs: a_cs,
            });
            // SAFETY: `packed` exists only where `use_avx2_shared` found AVX2 and FMA;
            // `check_views` that every element of C's view lies inside `c` and that they are
            // pairwise distinct; `c` is borrowed mutably for the whole call.
            unsafe {
                gemm_avx2::matmul(
                    m,
                    k,
                    n,
                    a,
                    gemm_avx2::Rhs::Packed(pb),
                    c.as_mut_ptr(),
                    c_rs,
                    c_cs,
                    accumulate,
                    false,
                )
            };
            return;
        }
    }
    matmul_strided_on(
        Parallelism::None,
        m,
        k,
        n,
        a,
        a_rs,
        a_cs,
        rhs.b,
        rhs.rs,
        rhs.cs,
        c,
        c_rs,
        c_cs,
        accumulate,
    );
}

/// Panics unless every `rows[i] + cols[j]` is below `len` (`what` names the matrix); the tables
/// are non-empty.
#[cfg(target_arch = "x86_64")]
fn assert_tables_inside(what: &str, rows: &[usize], cols: &[usize], len: usize) {
    let reach = rows.iter().max().zip(cols.iter().max());
    assert!(
        reach
            .and_then(|(r, c)| r.checked_add(*c))
            .is_some_and(|x| x < len),
        "matmul: {what} {}x{} reaches outside its slice of length {len}",
        rows.len(),
        cols.len()
    );
}

/// Panics unless the non-empty `rows x cols` view with strides `rs`, `cs` lies inside a slice
/// of `len` elements (`what` names the matrix).
#[cfg(target_arch = "x86_64")]
fn assert_view_inside(what: &str, rows: usize, cols: usize, rs: usize, cs: usize, len: usize) {
    assert!(
        last_index(rows, cols, rs, cs) < len,
        "matmul: {what} view {rows}x{cols} (strides {rs},{cs}) exceeds slice of length {len}"
    );
}

/// The right operand of a [`matmul_gathered`] product.
pub(crate) enum GatheredRhs<'r, 'a, T> {
    /// Shared by many products (`k x n` as packed).
    Shared(&'r SharedRhs<'a, T>),
    /// A `k x n` strided view: element `(p, j)` at `b[p*rs + j*cs]`.
    View {
        /// The backing slice.
        b: &'a [T],
        /// Row stride.
        rs: usize,
        /// Column stride.
        cs: usize,
        /// Columns.
        n: usize,
    },
}

/// Whether [`matmul_gathered`] can ever take a product of `T` here (f32 on an AVX2-only CPU with
/// `FF_GEMM_AVX2` on), so that callers build its offset tables only then.
pub(crate) fn gathered_possible<T: Float>() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && avx2_kernel_on()
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// A one-thread product `C (+)= A·B` whose A is given by offset tables:
/// `A[i][p] = a[rows[i] + steps[p]]`, `m = rows.len()`, `k = steps.len()` — a convolution
/// tile's im2col matrix (or its transpose) read straight from the input, with no column buffer.
///
/// It runs only where the same product with A materialised would run on [`gemm_avx2`]
/// ([`matmul_shared`] with a packed [`SharedRhs`], or [`matmul_strided_on`] with
/// `Parallelism::None` and [`use_avx2`]): then its result has the same bits as that product's and
/// it returns `true`. Otherwise (and for empty shapes) it writes nothing and returns `false`; the
/// caller materialises A and calls those instead.
///
/// # Panics
/// If `rows[i] + steps[p]` or a view reaches outside its slice, C's strides alias elements, or a
/// shared B's `k` is not `steps.len()`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_gathered<T: Float>(
    a: &[T],
    rows: &[usize],
    steps: &[usize],
    rhs: GatheredRhs<'_, '_, T>,
    c: &mut [T],
    c_rs: usize,
    c_cs: usize,
    accumulate: bool,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let (m, k) = (rows.len(), steps.len());
        let (b, b_rs, b_cs, n, packed) = match rhs {
            GatheredRhs::Shared(r) => {
                assert_eq!(r.k, k, "matmul: shared B has {} rows, A {k} steps", r.k);
                match &r.packed {
                    Some(pb) => (r.b, r.rs, r.cs, r.n, Some(pb)),
                    None => return false,
                }
            }
            GatheredRhs::View { b, rs, cs, n } => {
                if !use_avx2(m, k, n, false) {
                    return false;
                }
                (b, rs, cs, n, None)
            }
        };
        if m == 0 || k == 0 || n == 0 {
            return false;
        }
        let (Some(a), Some(b), Some(c)) = (as_f32(a), as_f32(b), as_f32_mut(c)) else {
            return false;
        };
        assert_tables_inside("gathered A", rows, steps, a.len());
        assert_view_inside("B", k, n, b_rs, b_cs, b.len());
        assert_view_inside("C", m, n, c_rs, c_cs, c.len());
        assert!(
            is_injective(m, n, c_rs, c_cs),
            "matmul: C strides ({c_rs},{c_cs}) alias elements of a {m}x{n} view"
        );
        let lhs = gemm_avx2::Lhs::Gather(gemm_avx2::Gather {
            data: a,
            rows,
            steps,
        });
        let rhs = match packed {
            Some(pb) => gemm_avx2::Rhs::Packed(pb),
            None => gemm_avx2::Rhs::View(gemm_avx2::View {
                data: b,
                rs: b_rs,
                cs: b_cs,
            }),
        };
        // SAFETY: a packed B exists only where `use_avx2_shared` found AVX2 and FMA, and
        // `use_avx2` checked them for a view; the asserts above that every gathered element and
        // every element of B's and C's views lie inside their slices and that C's are pairwise
        // distinct; `c` is borrowed mutably for the whole call.
        unsafe {
            gemm_avx2::matmul(
                m,
                k,
                n,
                lhs,
                rhs,
                c.as_mut_ptr(),
                c_rs,
                c_cs,
                accumulate,
                false,
            )
        };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, rows, steps, rhs, c, c_rs, c_cs, accumulate);
        false
    }
}

/// A one-thread `C += A·B` with a shared B whose C is scattered: element `(i, j)` is added at
/// `out[rows[i] + cols[j]]` (`m = rows.len()`, `n = cols.len()`, A `m x k` strided as in
/// [`matmul_strided`]) — a convolution's input gradient `dy·wᵀ` added into `dx` as col2im
/// would add it, with no column buffer. Elements sharing an address (overlapping windows) get
/// their terms in a fixed order, a function of the shape alone (`gemm_avx2::matmul_scatter_add`).
///
/// It runs only on our AVX2 kernel (where `rhs` was packed for it) and where every panel of 16
/// columns is contiguous in `out` and the 6 rows of a micro-tile lie at least 16 elements apart
/// (so no tile writes one address twice), returning `true`; otherwise it writes nothing and
/// returns `false`, and the caller computes the columns and adds them itself.
///
/// # Panics
/// If a view or `rows[i] + cols[j]` reaches outside its slice, or `rhs`'s shape is not
/// `k x cols.len()`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_shared_scatter_add<T: Float>(
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    rhs: &SharedRhs<'_, T>,
    out: &mut [T],
    rows: &[usize],
    cols: &[usize],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use gemm_avx2::{MR, NR};
        let (m, k, n) = (rows.len(), rhs.k, rhs.n);
        assert_eq!(
            n,
            cols.len(),
            "matmul: shared B has {n} columns, C {}",
            cols.len()
        );
        let Some(pb) = &rhs.packed else {
            return false;
        };
        if m == 0 || k == 0 || n == 0 || !n.is_multiple_of(NR) {
            return false;
        }
        let (Some(a), Some(out)) = (as_f32(a), as_f32_mut(out)) else {
            return false;
        };
        let panels_contiguous = cols
            .chunks_exact(NR)
            .all(|p| p.iter().enumerate().all(|(x, &c)| c == p[0] + x));
        let tiles_distinct =
            (0..m).all(|i| (i + 1..m.min(i + MR)).all(|i2| rows[i].abs_diff(rows[i2]) >= NR));
        if !panels_contiguous || !tiles_distinct {
            return false;
        }
        assert_tables_inside("scattered C", rows, cols, out.len());
        assert_view_inside("A", m, k, a_rs, a_cs, a.len());
        let lhs = gemm_avx2::Lhs::View(gemm_avx2::View {
            data: a,
            rs: a_rs,
            cs: a_cs,
        });
        // SAFETY: `packed` exists only where `use_avx2_shared` found AVX2 and FMA; A's view and
        // every scattered address lie inside their slices (asserted above); `n` is a multiple
        // of NR with contiguous panels and a tile's rows at least NR apart, so a tile's
        // addresses are pairwise distinct; `out` is borrowed mutably for the whole call.
        unsafe {
            gemm_avx2::matmul_scatter_add(
                m,
                k,
                n,
                lhs,
                gemm_avx2::Rhs::Packed(pb),
                out.as_mut_ptr(),
                rows,
                cols,
            )
        };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, a_rs, a_cs, rhs, out, rows, cols);
        false
    }
}

/// Matrix product into a row-major contiguous `C` (`m x n`, row stride `n`):
/// `C = A·B`, or `C += A·B` when `accumulate`.
///
/// `A` (`m x k`) and `B` (`k x n`) are read through arbitrary strides, e.g. `a_rs = 1, a_cs = m`
/// reads a row-major `k x m` buffer as its transpose. `c` must hold at least `m*n` elements;
/// only the first `m*n` are touched. Uses rayon (through `gemm`) for large problems; results do
/// not depend on the thread count.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Float>(
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
    matmul_strided(m, k, n, a, a_rs, a_cs, b, b_rs, b_cs, c, n, 1, accumulate);
}

/// Strided layout of one operand of a batched product: batch stride, row stride, column stride
/// (all in elements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLayout {
    /// Offset between consecutive matrices of the batch (0 broadcasts one matrix).
    pub bs: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl BatchLayout {
    /// Layout of a contiguous batch of row-major `rows x cols` matrices.
    pub fn row_major(rows: usize, cols: usize) -> Self {
        BatchLayout {
            bs: rows * cols,
            rs: cols,
            cs: 1,
        }
    }

    /// Layout of a contiguous batch of row-major `cols x rows` matrices read transposed
    /// (as `rows x cols`).
    pub fn transposed(rows: usize, cols: usize) -> Self {
        BatchLayout {
            bs: rows * cols,
            rs: 1,
            cs: rows,
        }
    }
}

/// Batched product: for each `i < batch`, `C[i] = A[i]·B[i]` (or `+=` when `accumulate`), where
/// `A[i]` starts at `i*a.bs` in `a` and `B[i]` at `i*b.bs` in `b`; `C` is a contiguous batch of
/// row-major `m x n` matrices (`c.len() >= batch*m*n`).
///
/// Small matrices are spread over threads one matrix per task; large ones use gemm's own
/// threading. Either way each matrix is computed by the same operations, so results do not depend
/// on the thread count.
#[allow(clippy::too_many_arguments)]
pub fn matmul_batched<T: Float>(
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_layout: BatchLayout,
    b: &[T],
    b_layout: BatchLayout,
    c: &mut [T],
    accumulate: bool,
) {
    let mn = m * n;
    if batch == 0 || mn == 0 {
        return;
    }
    assert!(c.len() >= batch * mn, "matmul_batched: C too short");
    let a_at = |i: usize| {
        if k == 0 {
            &a[..0]
        } else {
            &a[i * a_layout.bs..]
        }
    };
    let b_at = |i: usize| {
        if k == 0 {
            &b[..0]
        } else {
            &b[i * b_layout.bs..]
        }
    };
    let one = |i: usize, ci: &mut [T]| {
        matmul(
            m,
            k,
            n,
            a_at(i),
            a_layout.rs,
            a_layout.cs,
            b_at(i),
            b_layout.rs,
            b_layout.cs,
            ci,
            accumulate,
        );
    };
    let per = m.saturating_mul(k).saturating_mul(n);
    let total = per.saturating_mul(batch);
    let c = &mut c[..batch * mn];
    if parallel::gemm_threads(per) == 1 && parallel::gemm_threads(total) > 1 {
        // Each task runs a single-threaded gemm (the per-matrix problem is too small to split).
        c.par_chunks_mut(mn)
            .enumerate()
            .for_each(|(i, ci)| one(i, ci));
    } else {
        for (i, ci) in c.chunks_mut(mn).enumerate() {
            one(i, ci);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{pool, rand_vec};

    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        k: usize,
        n: usize,
        a: &[f64],
        a_rs: usize,
        a_cs: usize,
        b: &[f64],
        b_rs: usize,
        b_cs: usize,
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    s += a[i * a_rs + p * a_cs] * b[p * b_rs + j * b_cs];
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    #[test]
    fn matches_naive_all_transpositions() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 9, 33),
            (64, 31, 2),
            (1, 40, 13),
            (13, 40, 1),
            (70, 129, 65),
        ] {
            let a = rand_vec::<f64>(m * k, 1);
            let b = rand_vec::<f64>(k * n, 2);
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a_rs, a_cs) = if ta { (1, m) } else { (k, 1) };
                let (b_rs, b_cs) = if tb { (1, k) } else { (n, 1) };
                let want = naive(m, k, n, &a, a_rs, a_cs, &b, b_rs, b_cs);
                let mut c = vec![f64::NAN; m * n];
                matmul(m, k, n, &a, a_rs, a_cs, &b, b_rs, b_cs, &mut c, false);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-12 * (k as f64), "{m}x{k}x{n} {x} vs {y}");
                }
                // accumulate adds onto the previous contents
                matmul(m, k, n, &a, a_rs, a_cs, &b, b_rs, b_cs, &mut c, true);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 2.0 * y).abs() < 1e-12 * (k as f64));
                }
                // f32 too
                let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
                let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                let mut c32 = vec![0f32; m * n];
                matmul(m, k, n, &a32, a_rs, a_cs, &b32, b_rs, b_cs, &mut c32, false);
                for (x, y) in c32.iter().zip(&want) {
                    assert!((*x as f64 - y).abs() < 1e-5 * (k as f64));
                }
            }
        }
    }

    #[test]
    fn strided_output_and_k_zero() {
        let (m, k, n) = (4, 3, 5);
        let a = rand_vec::<f64>(m * k, 3);
        let b = rand_vec::<f64>(k * n, 4);
        let want = naive(m, k, n, &a, k, 1, &b, n, 1);
        // C written transposed (column-major).
        let mut ct = vec![0.0; m * n];
        matmul_strided(m, k, n, &a, k, 1, &b, n, 1, &mut ct, 1, m, false);
        for i in 0..m {
            for j in 0..n {
                assert!((ct[j * m + i] - want[i * n + j]).abs() < 1e-12);
            }
        }
        let mut c = vec![7.0; m * n];
        matmul(m, 0, n, &a, k, 1, &b, n, 1, &mut c, true);
        assert!(c.iter().all(|&v| v == 7.0));
        matmul::<f64>(m, 0, n, &[], 0, 0, &[], 0, 0, &mut c, false);
        assert!(c.iter().all(|&v| v == 0.0));
    }

    #[test]
    #[should_panic]
    fn out_of_bounds_panics() {
        let a = [0f32; 5];
        let b = [0f32; 6];
        let mut c = [0f32; 4];
        matmul(2, 3, 2, &a, 3, 1, &b, 2, 1, &mut c, false);
    }

    #[test]
    fn batched_matches_single() {
        let (batch, m, k, n) = (5, 6, 7, 8);
        let a = rand_vec::<f32>(batch * m * k, 5);
        let b = rand_vec::<f32>(k * n, 6);
        let mut c = vec![0f32; batch * m * n];
        // B broadcast over the batch (bs = 0), A read transposed.
        matmul_batched(
            batch,
            m,
            k,
            n,
            &a,
            BatchLayout::transposed(m, k),
            &b,
            BatchLayout {
                bs: 0,
                rs: n,
                cs: 1,
            },
            &mut c,
            false,
        );
        for i in 0..batch {
            let mut ci = vec![0f32; m * n];
            matmul(m, k, n, &a[i * m * k..], 1, m, &b, n, 1, &mut ci, false);
            assert_eq!(&c[i * m * n..(i + 1) * m * n], &ci[..]);
        }
    }

    #[test]
    fn thread_count_does_not_change_bits() {
        for &(m, k, n) in &[
            (3872, 288, 64),
            (256, 256, 256),
            (1024, 1024, 1024),
            (1000, 17, 33),
            (64, 5000, 48),
            (288, 3872, 64),
        ] {
            let a = rand_vec::<f32>(m * k, 7);
            let b = rand_vec::<f32>(k * n, 8);
            let run = |threads: usize, ta: bool| {
                let (a_rs, a_cs) = if ta { (1, m) } else { (k, 1) };
                let mut c = vec![0f32; m * n];
                pool(threads).install(|| {
                    matmul(m, k, n, &a, a_rs, a_cs, &b, n, 1, &mut c, false);
                });
                c
            };
            for ta in [false, true] {
                let c1 = run(1, ta);
                let c2 = run(2, ta);
                let c3 = run(3, ta);
                assert!(
                    c1.iter().zip(&c2).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}x{k}x{n} ta={ta}: 1 vs 2 threads differ"
                );
                assert!(
                    c1.iter().zip(&c3).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}x{k}x{n} ta={ta}: 1 vs 3 threads differ"
                );
            }
            let a64: Vec<f64> = a.iter().map(|&v| v as f64).collect();
            let b64: Vec<f64> = b.iter().map(|&v| v as f64).collect();
            let run64 = |threads: usize| {
                let mut c = vec![0f64; m * n];
                pool(threads).install(|| {
                    matmul(m, k, n, &a64, k, 1, &b64, n, 1, &mut c, false);
                });
                c
            };
            assert_eq!(run64(1), run64(2));
        }
    }

    #[test]
    fn batched_thread_count_does_not_change_bits() {
        let (batch, m, k, n) = (64, 24, 16, 24);
        let a = rand_vec::<f32>(batch * m * k, 9);
        let b = rand_vec::<f32>(batch * k * n, 10);
        let run = |threads: usize| {
            let mut c = vec![0f32; batch * m * n];
            pool(threads).install(|| {
                matmul_batched(
                    batch,
                    m,
                    k,
                    n,
                    &a,
                    BatchLayout::row_major(m, k),
                    &b,
                    BatchLayout::row_major(k, n),
                    &mut c,
                    false,
                )
            });
            c
        };
        assert_eq!(run(1), run(2));
    }
}
