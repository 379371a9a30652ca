//! A small GEMM with a pre-packed right operand, for the per-step products of the fused recurrent
//! kernels (`h · R` forward, `dz · Rᵀ` backward).
//!
//! The recurrent kernel `R` is the same on every time step, so it is packed **once per op call**
//! into column panels of [`NR`] columns (`[panel][k][NR]`, the last panel zero-padded), and each
//! step's product `C (+)= A · B` runs a register-blocked micro-kernel over `MR × NR` tiles of `C`
//! that streams one panel at a time (it stays in L1 while every row tile of the block uses it).
//!
//! Kernels, chosen at run time ([`Isa::detect`]):
//! - AVX-512F (`f32`): tiles of 8 rows × 32 columns in 16 `zmm` accumulators (inline assembly,
//!   written when the AVX-512 intrinsics were not yet stable (they are since Rust 1.89));
//! - `Portable`: the same tile loop in plain Rust, also compiled with AVX2+FMA enabled when the
//!   CPU has them (the compiler vectorises its 32-wide inner loop), and run as is elsewhere.
//!
//! Every element of `C` is computed the same way by all kernels: starting from zero, one fused
//! multiply-add per `k` in increasing `k` order (`acc = a[i,k]·b[k,j] + acc`, rounded once),
//! then stored into `C` or added to it. Results are therefore **bit-identical** across kernels,
//! tile shapes and thread counts (tested below).

use crate::kernels::Float;

/// Columns of one packed panel (two AVX-512 vectors of f32).
pub const NR: usize = 32;
/// Rows of one micro-tile.
pub const MR: usize = 8;

/// The instruction set a packed GEMM runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust (fused multiply-adds through `mul_add`).
    Portable,
    /// The portable loop compiled with AVX2 and FMA enabled.
    Avx2Fma,
    /// The AVX-512F micro-kernel (f32 only; f64 falls back to [`Isa::Avx2Fma`]/portable).
    Avx512,
}

impl Isa {
    /// The best kernel this CPU supports. `FF_RNN_ISA=portable|avx2|avx512` caps it (for tests
    /// and measurements; an unsupported request falls back to what the CPU has).
    pub fn detect() -> Isa {
        let cap = std::env::var("FF_RNN_ISA").ok();
        let best = Isa::best();
        match cap.as_deref() {
            Some("portable") => Isa::Portable,
            Some("avx2") if best != Isa::Portable => Isa::Avx2Fma,
            _ => best,
        }
    }

    /// The best kernel this CPU supports, ignoring the environment: the level the elementwise
    /// kernels' dispatch detected ([`simd::detected`](super::simd::detected)).
    pub fn best() -> Isa {
        match super::simd::detected() {
            super::simd::Level::Avx512 => Isa::Avx512,
            super::simd::Level::Avx2 => Isa::Avx2Fma,
            super::simd::Level::Portable => Isa::Portable,
        }
    }
}

/// A `k × n` matrix packed into column panels of [`NR`] columns for [`gemm_packed`].
///
/// ```
/// use ferroflow_core::kernels::rnn_gemm::{gemm_packed, Isa, PackedB};
/// let b = [1.0f32, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let pb = PackedB::pack(2, 2, &b, 2, 1);
/// let a = [1.0f32, 1.0]; // one row
/// let mut c = [0.0f32; 2];
/// gemm_packed(Isa::detect(), 1, &a, 2, &pb, &mut c, 2, false, &mut Vec::new());
/// assert_eq!(c, [4.0, 6.0]);
/// ```
#[derive(Clone, Debug)]
pub struct PackedB<T> {
    k: usize,
    n: usize,
    data: Vec<T>,
}

impl<T: Float> PackedB<T> {
    /// Packs `B` (`k × n`, element `(p, j)` at `b[p*b_rs + j*b_cs]`).
    ///
    /// # Panics
    /// If the view reaches outside `b`.
    pub fn pack(k: usize, n: usize, b: &[T], b_rs: usize, b_cs: usize) -> Self {
        let panels = n.div_ceil(NR);
        let mut data = vec![T::zero(); panels * k * NR];
        if k == 0 || n == 0 {
            return PackedB { k, n, data };
        }
        {
            assert!(
                (k - 1) * b_rs + (n - 1) * b_cs < b.len(),
                "pack: B view {k}x{n} (strides {b_rs},{b_cs}) exceeds slice of length {}",
                b.len()
            );
        }
        for (p, panel) in data.chunks_exact_mut(k * NR).enumerate() {
            let j0 = p * NR;
            let nc = NR.min(n - j0);
            for (kk, line) in panel.chunks_exact_mut(NR).enumerate() {
                for (j, v) in line[..nc].iter_mut().enumerate() {
                    *v = b[kk * b_rs + (j0 + j) * b_cs];
                }
            }
        }
        PackedB { k, n, data }
    }

    /// Rows `k` of the packed matrix.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns `n` of the packed matrix.
    pub fn n(&self) -> usize {
        self.n
    }
}

/// Element types [`gemm_packed`] (and the Dense-layer GEMM,
/// [`dense_gemm`](super::dense_gemm)) run on, with their SIMD dispatch.
pub trait PackedGemm: Float {
    /// Whether the Dense-layer GEMM ([`dense_gemm`](super::dense_gemm)) routes this type to the
    /// packed micro-kernel at all (f32: yes; f64 stays on the `gemm` crate).
    const DENSE_PACKED: bool;

    /// `out = A·B` for one `MR × NR` tile, read through strides: `A`'s element `(r, p)` is
    /// `a[r*a_rs + p*a_ks]`, `B`'s row `p` is the `NR` contiguous values at `b[p*b_ks..]`, and
    /// row `r` of the result goes to `out[r*out_rs..r*out_rs + NR]`. A packed A tile
    /// (`[k][MR]`) is `a_rs = 1, a_ks = MR`; a packed B panel is `b_ks = NR`. `isa` must be
    /// supported by the CPU (callers check).
    ///
    /// # Panics
    /// If a view reaches outside its slice, or `out_rs < NR` with `MR > 1`.
    #[allow(clippy::too_many_arguments)]
    fn tile(
        isa: Isa,
        k: usize,
        a: &[Self],
        a_rs: usize,
        a_ks: usize,
        b: &[Self],
        b_ks: usize,
        out: &mut [Self],
        out_rs: usize,
    );

    /// [`PackedGemm::tile`] storing through a raw pointer: row `r` of the result goes to the
    /// `NR` elements at `out.add(r * out_rs)` (for callers whose threads write disjoint tiles of
    /// one matrix, where no `&mut` slice may span another thread's tile).
    ///
    /// # Safety
    /// Those `MR` rows of `NR` elements must be valid for writes and not accessed through any
    /// other pointer or reference meanwhile; `isa` must be supported by the CPU.
    ///
    /// # Panics
    /// If an input view reaches outside its slice.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_raw(
        isa: Isa,
        k: usize,
        a: &[Self],
        a_rs: usize,
        a_ks: usize,
        b: &[Self],
        b_ks: usize,
        out: *mut Self,
        out_rs: usize,
    ) {
        // Accumulators from zero, one FMA per `k` in order, then stored: `tile_cont` without
        // `load` computes exactly that.
        // SAFETY: the caller's contract (rows valid for writes and exclusively ours) covers
        // `tile_cont`'s, which also reads nothing from `out` without `load`.
        unsafe { Self::tile_cont(isa, k, a, a_rs, a_ks, b, b_ks, out, out_rs, false) }
    }

    /// One block of `k` steps of a tile whose reduction is split into blocks: with `load`, the
    /// accumulators start from the `MR × NR` values at `out` (rows `out_rs` apart: the exact
    /// partial sums an earlier block stored there), otherwise from zero; then one fused
    /// multiply-add per `k` in increasing order as in [`PackedGemm::tile`], and the
    /// accumulators are stored back to `out`. Splitting `k` this way gives the same bits as one
    /// call over the whole reduction (an `f32` partial sum is stored and reloaded exactly).
    ///
    /// # Safety
    /// Those `MR` rows of `NR` elements must be valid for reads and writes and not accessed
    /// through any other pointer or reference meanwhile; `isa` must be supported by the CPU.
    ///
    /// # Panics
    /// If an input view reaches outside its slice.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_cont(
        isa: Isa,
        k: usize,
        a: &[Self],
        a_rs: usize,
        a_ks: usize,
        b: &[Self],
        b_ks: usize,
        out: *mut Self,
        out_rs: usize,
        load: bool,
    ) {
        check_inputs(k, a, a_rs, a_ks, b, b_ks);
        // SAFETY: the caller's contract, passed on; the views were checked just above.
        unsafe { tile_cont_staged(isa, k, a, a_rs, a_ks, b, b_ks, out, out_rs, load) };
    }
}

/// [`PackedGemm::tile_cont`] through a local `MR × NR` tile (what the AVX2 and portable tiles
/// write): `out`'s values loaded into it first when `load`, the tile run (AVX2+FMA for every
/// non-portable `isa`), then stored back to `out`.
///
/// # Safety
/// As [`PackedGemm::tile_cont`]; the input views were checked ([`check_inputs`]).
#[allow(clippy::too_many_arguments)]
unsafe fn tile_cont_staged<T: Float>(
    isa: Isa,
    k: usize,
    a: &[T],
    a_rs: usize,
    a_ks: usize,
    b: &[T],
    b_ks: usize,
    out: *mut T,
    out_rs: usize,
    load: bool,
) {
    let mut buf = [T::zero(); MR * NR];
    if load {
        for (r, line) in buf.chunks_exact_mut(NR).enumerate() {
            // SAFETY: row `r` is valid for reads and exclusively ours (caller's contract).
            unsafe { std::ptr::copy_nonoverlapping(out.add(r * out_rs), line.as_mut_ptr(), NR) };
        }
    }
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable {
        // SAFETY: callers checked that the CPU supports `isa`, and AVX2+FMA come with both
        // non-portable kinds; the views were checked by the caller.
        unsafe { x86::tile_avx2(k, a, a_rs, a_ks, b, b_ks, &mut buf, NR, load) };
    } else {
        tile_portable(k, a, a_rs, a_ks, b, b_ks, &mut buf, NR, load);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        tile_portable(k, a, a_rs, a_ks, b, b_ks, &mut buf, NR, load);
    }
    for (r, line) in buf.chunks_exact(NR).enumerate() {
        // SAFETY: row `r` is valid for writes and exclusively ours; `buf` is local.
        unsafe { std::ptr::copy_nonoverlapping(line.as_ptr(), out.add(r * out_rs), NR) };
    }
}

/// Checks the input views of [`PackedGemm::tile_cont`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn check_inputs<T>(k: usize, a: &[T], a_rs: usize, a_ks: usize, b: &[T], b_ks: usize) {
    assert!(
        k == 0 || ((MR - 1) * a_rs + (k - 1) * a_ks < a.len() && (k - 1) * b_ks + NR <= b.len()),
        "tile_cont: operand views exceed their slices"
    );
}

/// Checks the views of [`PackedGemm::tile`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn check_tile<T>(
    k: usize,
    a: &[T],
    a_rs: usize,
    a_ks: usize,
    b: &[T],
    b_ks: usize,
    out: &[T],
    out_rs: usize,
) {
    assert!(
        (k == 0 || ((MR - 1) * a_rs + (k - 1) * a_ks < a.len() && (k - 1) * b_ks + NR <= b.len()))
            && (MR - 1) * out_rs + NR <= out.len()
            && out_rs >= NR,
        "tile: operand views exceed their slices"
    );
}

/// The portable tile (see [`PackedGemm::tile`]): one `mul_add` per `k` in increasing order,
/// starting from zero (or, with `load`, from the tile's current values in `out`), in a local
/// accumulator copied to `out` at the end.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile_portable<T: Float>(
    k: usize,
    a: &[T],
    a_rs: usize,
    a_ks: usize,
    b: &[T],
    b_ks: usize,
    out: &mut [T],
    out_rs: usize,
    load: bool,
) {
    let mut acc = [T::zero(); MR * NR];
    if load {
        for (r, line) in acc.chunks_exact_mut(NR).enumerate() {
            line.copy_from_slice(&out[r * out_rs..r * out_rs + NR]);
        }
    }
    for p in 0..k {
        let bl = &b[p * b_ks..p * b_ks + NR];
        for (r, line) in acc.chunks_exact_mut(NR).enumerate() {
            let ar = a[r * a_rs + p * a_ks];
            for (v, &bv) in line.iter_mut().zip(bl) {
                *v = ar.mul_add(bv, *v);
            }
        }
    }
    for (r, line) in acc.chunks_exact(NR).enumerate() {
        out[r * out_rs..r * out_rs + NR].copy_from_slice(line);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{tile_portable, Float, MR, NR};
    use std::arch::asm;

    /// [`tile_portable`] compiled with AVX2 and FMA (`mul_add` becomes `vfmadd`).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile_avx2<T: Float>(
        k: usize,
        a: &[T],
        a_rs: usize,
        a_ks: usize,
        b: &[T],
        b_ks: usize,
        out: &mut [T],
        out_rs: usize,
        load: bool,
    ) {
        tile_portable(k, a, a_rs, a_ks, b, b_ks, out, out_rs, load)
    }

    /// The 8 × 32 f32 tile in 16 zmm accumulators (AVX-512F, written in inline assembly so
    /// that it builds on Rust versions whose AVX-512 intrinsics are not stable yet). Strides are
    /// in bytes: row `r` of A at `a + r*a_rs`, step `p` at `+ p*a_ks`; B's row `p` (32 floats)
    /// at `b + p*b_ks`; result row `r` at `out + r*out_rs`.
    ///
    /// With `load`, the 16 accumulators start from the tile's current values in `out` (the
    /// partial sums of earlier `k` steps, stored exactly), so that a reduction split into
    /// blocks of `k` performs the very same FMAs as one pass; otherwise from zero.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; every address above (for `r < 8`, `p < k`) must be valid
    /// for the 4 (A), 128 (B, C) bytes read or written there, and the output rows must not
    /// overlap the inputs.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile_avx512(
        k: usize,
        a: *const f32,
        a_rs: usize,
        a_ks: usize,
        b: *const f32,
        b_ks: usize,
        out: *mut f32,
        out_rs: usize,
        load: bool,
    ) {
        const { assert!(MR == 8 && NR == 32) };
        let a4 = a.wrapping_add(4 * a_rs);
        let rs3 = 3 * a_rs;
        // SAFETY: with `load`, the loop first reads the 32 floats at out + r*out_rs (r < 8) and
        // steps `out` back to row 0; it then reads, for p < k, the 8 floats at a + r*a_rs +
        // p*a_ks (r < 8, through a for rows 0-3 and a4 = a + 4*a_rs for rows 4-7) and the 32
        // floats at b + p*b_ks, then writes 32 floats at out + r*out_rs for r < 8 — all valid
        // by the caller's contract. It touches no stack and every register it changes is
        // declared.
        unsafe {
            asm!(
            "test {ld:e}, {ld:e}",
            "jz 5f",
            "vmovups zmm0, zmmword ptr [{out}]",
            "vmovups zmm1, zmmword ptr [{out} + 64]",
            "add {out}, {ors}",
            "vmovups zmm2, zmmword ptr [{out}]",
            "vmovups zmm3, zmmword ptr [{out} + 64]",
            "add {out}, {ors}",
            "vmovups zmm4, zmmword ptr [{out}]",
            "vmovups zmm5, zmmword ptr [{out} + 64]",
            "add {out}, {ors}",
            "vmovups zmm6, zmmword ptr [{out}]",
            "vmovups zmm7, zmmword ptr [{out} + 64]",
            "add {out}, {ors}",
            "vmovups zmm8, zmmword ptr [{out}]",
            "vmovups zmm9, zmmword ptr [{out} + 64]",
            "add {out}, {ors}",
            "vmovups zmm10, zmmword ptr [{out}]",
            "vmovups zmm11, zmmword ptr [{out} + 64]",
            "add {out}, {ors}",
            "vmovups zmm12, zmmword ptr [{out}]",
            "vmovups zmm13, zmmword ptr [{out} + 64]",
            "add {out}, {ors}",
            "vmovups zmm14, zmmword ptr [{out}]",
            "vmovups zmm15, zmmword ptr [{out} + 64]",
            "sub {out}, {ors7}",
            "jmp 6f",
            "5:",
            "vpxord zmm0, zmm0, zmm0",
            "vpxord zmm1, zmm1, zmm1",
            "vpxord zmm2, zmm2, zmm2",
            "vpxord zmm3, zmm3, zmm3",
            "vpxord zmm4, zmm4, zmm4",
            "vpxord zmm5, zmm5, zmm5",
            "vpxord zmm6, zmm6, zmm6",
            "vpxord zmm7, zmm7, zmm7",
            "vpxord zmm8, zmm8, zmm8",
            "vpxord zmm9, zmm9, zmm9",
            "vpxord zmm10, zmm10, zmm10",
            "vpxord zmm11, zmm11, zmm11",
            "vpxord zmm12, zmm12, zmm12",
            "vpxord zmm13, zmm13, zmm13",
            "vpxord zmm14, zmm14, zmm14",
            "vpxord zmm15, zmm15, zmm15",
            "6:",
            "test {k}, {k}",
            "jz 3f",
            "2:",
            "vmovups zmm16, zmmword ptr [{b}]",
            "vmovups zmm17, zmmword ptr [{b} + 64]",
            "vbroadcastss zmm18, dword ptr [{a}]",
            "vfmadd231ps zmm0, zmm18, zmm16",
            "vfmadd231ps zmm1, zmm18, zmm17",
            "vbroadcastss zmm19, dword ptr [{a} + {rs}]",
            "vfmadd231ps zmm2, zmm19, zmm16",
            "vfmadd231ps zmm3, zmm19, zmm17",
            "vbroadcastss zmm20, dword ptr [{a} + {rs} * 2]",
            "vfmadd231ps zmm4, zmm20, zmm16",
            "vfmadd231ps zmm5, zmm20, zmm17",
            "vbroadcastss zmm21, dword ptr [{a} + {rs3}]",
            "vfmadd231ps zmm6, zmm21, zmm16",
            "vfmadd231ps zmm7, zmm21, zmm17",
            "vbroadcastss zmm22, dword ptr [{a4}]",
            "vfmadd231ps zmm8, zmm22, zmm16",
            "vfmadd231ps zmm9, zmm22, zmm17",
            "vbroadcastss zmm23, dword ptr [{a4} + {rs}]",
            "vfmadd231ps zmm10, zmm23, zmm16",
            "vfmadd231ps zmm11, zmm23, zmm17",
            "vbroadcastss zmm24, dword ptr [{a4} + {rs} * 2]",
            "vfmadd231ps zmm12, zmm24, zmm16",
            "vfmadd231ps zmm13, zmm24, zmm17",
            "vbroadcastss zmm25, dword ptr [{a4} + {rs3}]",
            "vfmadd231ps zmm14, zmm25, zmm16",
            "vfmadd231ps zmm15, zmm25, zmm17",
            "add {a}, {aks}",
            "add {a4}, {aks}",
            "add {b}, {bks}",
            "dec {k}",
            "jnz 2b",
            "3:",
            "vmovups zmmword ptr [{out}], zmm0",
            "vmovups zmmword ptr [{out} + 64], zmm1",
            "add {out}, {ors}",
            "vmovups zmmword ptr [{out}], zmm2",
            "vmovups zmmword ptr [{out} + 64], zmm3",
            "add {out}, {ors}",
            "vmovups zmmword ptr [{out}], zmm4",
            "vmovups zmmword ptr [{out} + 64], zmm5",
            "add {out}, {ors}",
            "vmovups zmmword ptr [{out}], zmm6",
            "vmovups zmmword ptr [{out} + 64], zmm7",
            "add {out}, {ors}",
            "vmovups zmmword ptr [{out}], zmm8",
            "vmovups zmmword ptr [{out} + 64], zmm9",
            "add {out}, {ors}",
            "vmovups zmmword ptr [{out}], zmm10",
            "vmovups zmmword ptr [{out} + 64], zmm11",
            "add {out}, {ors}",
            "vmovups zmmword ptr [{out}], zmm12",
            "vmovups zmmword ptr [{out} + 64], zmm13",
            "add {out}, {ors}",
            "vmovups zmmword ptr [{out}], zmm14",
            "vmovups zmmword ptr [{out} + 64], zmm15",
            "vzeroupper",
            k = inout(reg) k => _,
            a = inout(reg) a => _,
            a4 = inout(reg) a4 => _,
            b = inout(reg) b => _,
            out = inout(reg) out => _,
            rs = in(reg) 4 * a_rs,
            rs3 = in(reg) 4 * rs3,
            aks = in(reg) 4 * a_ks,
            bks = in(reg) 4 * b_ks,
            ors = in(reg) 4 * out_rs,
            ors7 = in(reg) 28 * out_rs,
            ld = in(reg) load as u32,
            out("zmm0") _,
            out("zmm1") _,
            out("zmm2") _,
            out("zmm3") _,
            out("zmm4") _,
            out("zmm5") _,
            out("zmm6") _,
            out("zmm7") _,
            out("zmm8") _,
            out("zmm9") _,
            out("zmm10") _,
            out("zmm11") _,
            out("zmm12") _,
            out("zmm13") _,
            out("zmm14") _,
            out("zmm15") _,
            out("zmm16") _,
            out("zmm17") _,
            out("zmm18") _,
            out("zmm19") _,
            out("zmm20") _,
            out("zmm21") _,
            out("zmm22") _,
            out("zmm23") _,
            out("zmm24") _,
            out("zmm25") _,
            options(nostack),
            );
        }
    }
}

impl PackedGemm for f64 {
    const DENSE_PACKED: bool = false;

    fn tile(
        isa: Isa,
        k: usize,
        a: &[f64],
        a_rs: usize,
        a_ks: usize,
        b: &[f64],
        b_ks: usize,
        out: &mut [f64],
        out_rs: usize,
    ) {
        check_tile(k, a, a_rs, a_ks, b, b_ks, out, out_rs);
        #[cfg(target_arch = "x86_64")]
        if isa != Isa::Portable {
            // SAFETY: callers checked that the CPU supports `isa`, and AVX2+FMA come with both
            // non-portable kinds.
            unsafe { x86::tile_avx2(k, a, a_rs, a_ks, b, b_ks, out, out_rs, false) };
            return;
        }
        let _ = isa;
        tile_portable(k, a, a_rs, a_ks, b, b_ks, out, out_rs, false)
    }
}

impl PackedGemm for f32 {
    const DENSE_PACKED: bool = true;

    unsafe fn tile_cont(
        isa: Isa,
        k: usize,
        a: &[f32],
        a_rs: usize,
        a_ks: usize,
        b: &[f32],
        b_ks: usize,
        out: *mut f32,
        out_rs: usize,
        load: bool,
    ) {
        check_inputs(k, a, a_rs, a_ks, b, b_ks);
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512 {
            // SAFETY: the inputs are inside their slices (checked just above); the output rows
            // are valid for reads and writes and exclusively ours (the caller's contract), so
            // they overlap no input; the caller checked that the CPU supports AVX-512F.
            unsafe {
                x86::tile_avx512(
                    k,
                    a.as_ptr(),
                    a_rs,
                    a_ks,
                    b.as_ptr(),
                    b_ks,
                    out,
                    out_rs,
                    load,
                )
            };
            return;
        }
        // SAFETY: the caller's contract, passed on; the views were checked above (AVX2+FMA or
        // portable here: AVX-512 returned above).
        unsafe { tile_cont_staged(isa, k, a, a_rs, a_ks, b, b_ks, out, out_rs, load) };
    }

    fn tile(
        isa: Isa,
        k: usize,
        a: &[f32],
        a_rs: usize,
        a_ks: usize,
        b: &[f32],
        b_ks: usize,
        out: &mut [f32],
        out_rs: usize,
    ) {
        check_tile(k, a, a_rs, a_ks, b, b_ks, out, out_rs);
        #[cfg(target_arch = "x86_64")]
        match isa {
            Isa::Avx512 => {
                // SAFETY: callers checked that the CPU supports AVX-512F; `check_tile` proved
                // every A, B and output address inside its slice, and `out` is borrowed
                // mutably, so it overlaps neither input. k = 0 reads nothing and stores zeros.
                unsafe {
                    x86::tile_avx512(
                        k,
                        a.as_ptr(),
                        a_rs,
                        a_ks,
                        b.as_ptr(),
                        b_ks,
                        out.as_mut_ptr(),
                        out_rs,
                        false,
                    )
                };
                return;
            }
            Isa::Avx2Fma => {
                // SAFETY: callers checked that the CPU supports AVX2 and FMA.
                unsafe { x86::tile_avx2(k, a, a_rs, a_ks, b, b_ks, out, out_rs, false) };
                return;
            }
            Isa::Portable => {}
        }
        let _ = isa;
        tile_portable(k, a, a_rs, a_ks, b, b_ks, out, out_rs, false)
    }
}

/// `C = A·B`, or `C += A·B` when `accumulate`, with `B` packed: `A` is `m × k` row-major with
/// row stride `a_rs`, `C` is `m × n` row-major with row stride `c_rs`. Each element of `A·B` is
/// summed from zero by one fused multiply-add per `k` in increasing order, then stored or added
/// to `C` — the same operations whatever `isa`, tile or thread. `scratch` holds the packed `A`
/// (reused across calls, so nothing is allocated per step). Single-threaded.
///
/// # Panics
/// If the views reach outside `a` or `c`, `C`'s rows overlap (`c_rs < n` with `m > 1`), or
/// `isa` is not supported by this CPU.
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed<T: PackedGemm>(
    isa: Isa,
    m: usize,
    a: &[T],
    a_rs: usize,
    b: &PackedB<T>,
    c: &mut [T],
    c_rs: usize,
    accumulate: bool,
    scratch: &mut Vec<T>,
) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * c_rs + n <= c.len(),
        "gemm_packed: C view {m}x{n} (row stride {c_rs}) exceeds slice of length {}",
        c.len()
    );
    assert!(
        m == 1 || c_rs >= n,
        "gemm_packed: C row stride {c_rs} < {n} makes rows overlap"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[i * c_rs..i * c_rs + n].fill(T::zero());
            }
        }
        return;
    }
    assert!(
        (m - 1) * a_rs + k <= a.len(),
        "gemm_packed: A view {m}x{k} (row stride {a_rs}) exceeds slice of length {}",
        a.len()
    );
    assert!(
        isa == Isa::Portable
            || match Isa::best() {
                Isa::Avx512 => true,
                Isa::Avx2Fma => isa == Isa::Avx2Fma,
                Isa::Portable => false,
            },
        "gemm_packed: {isa:?} not supported by this CPU"
    );
    // Pack A into row tiles `[tile][k][MR]`, zero rows past m.
    let tiles = m.div_ceil(MR);
    scratch.clear();
    scratch.resize(tiles * k * MR, T::zero());
    for (t, at) in scratch.chunks_exact_mut(k * MR).enumerate() {
        for r in 0..MR.min(m - t * MR) {
            let row = &a[(t * MR + r) * a_rs..(t * MR + r) * a_rs + k];
            for (line, &v) in at.chunks_exact_mut(MR).zip(row) {
                line[r] = v;
            }
        }
    }
    let mut out = [T::zero(); MR * NR];
    for (p, panel) in b.data.chunks_exact(k * NR).enumerate() {
        let j0 = p * NR;
        let nc = NR.min(n - j0);
        for (t, at) in scratch.chunks_exact(k * MR).enumerate() {
            T::tile(isa, k, at, 1, MR, panel, NR, &mut out, NR);
            for (r, line) in out.chunks_exact(NR).take(MR.min(m - t * MR)).enumerate() {
                let o = (t * MR + r) * c_rs + j0;
                let dst = &mut c[o..o + nc];
                if accumulate {
                    for (d, v) in dst.iter_mut().zip(line) {
                        *d += *v;
                    }
                } else {
                    dst.copy_from_slice(&line[..nc]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(n: usize, seed: u64) -> Vec<f32> {
        crate::testing::test_values(n, seed, -1.0, 1.0)
            .into_iter()
            .map(|v| v as f32)
            .collect()
    }

    /// f64 reference `C0 + A·B` summed in plain loops.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        a_rs: usize,
        b: &[f32],
        c0: &[f32],
        c_rs: usize,
    ) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = c0[i * c_rs + j] as f64;
                for p in 0..k {
                    s += a[i * a_rs + p] as f64 * b[p * n + j] as f64;
                }
                out[i * n + j] = s;
            }
        }
        out
    }

    #[test]
    fn packed_gemm_matches_f64_loops_and_simd_equals_portable() {
        let isas: Vec<Isa> = [Isa::Portable, Isa::Avx2Fma, Isa::Avx512]
            .into_iter()
            .filter(|&i| {
                i == Isa::Portable
                    || Isa::best() == Isa::Avx512
                    || (Isa::best() == Isa::Avx2Fma && i == Isa::Avx2Fma)
            })
            .collect();
        let ks = [1usize, 2, 7, 16, 31, 64, 128, 130];
        let ns = [1usize, 5, 16, 17, 31, 33, 50, 64, 100];
        for m in 1..=33usize {
            let k = ks[m % ks.len()];
            let n = ns[m % ns.len()];
            let (a_rs, c_rs) = (k + 3, n + 2);
            let a = vals(m * a_rs, m as u64);
            let b = vals(k * n, 100 + m as u64);
            let c0 = vals(m * c_rs, 200 + m as u64);
            let want = reference(m, k, n, &a, a_rs, &b, &c0, c_rs);
            // B read transposed through strides: pack Bᵀ's transpose.
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let pb = PackedB::pack(k, n, &b, n, 1);
            let pbt = PackedB::pack(k, n, &bt, 1, k);
            let mut first: Option<Vec<f32>> = None;
            for &isa in &isas {
                for (pk, acc) in [(&pb, true), (&pbt, true), (&pb, false)] {
                    let mut c = c0.clone();
                    gemm_packed(isa, m, &a, a_rs, pk, &mut c, c_rs, acc, &mut Vec::new());
                    for i in 0..m {
                        for j in 0..n {
                            let w =
                                want[i * n + j] - if acc { 0.0 } else { c0[i * c_rs + j] as f64 };
                            let got = c[i * c_rs + j] as f64;
                            assert!(
                                (got - w).abs() <= 1e-5 * (1.0 + k as f64),
                                "{isa:?} m{m} k{k} n{n} ({i},{j}): {got} vs {w}"
                            );
                        }
                        // Padding columns between rows are untouched.
                        for j in n..c_rs {
                            if i + 1 < m {
                                assert_eq!(c[i * c_rs + j], c0[i * c_rs + j]);
                            }
                        }
                    }
                    if acc {
                        match &first {
                            None => first = Some(c),
                            Some(f) => assert!(
                                f == &c,
                                "{isa:?} m{m} k{k} n{n}: not bit-identical to portable"
                            ),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_k_and_n_on_a_tile_of_rows() {
        // Each of K 1..130 and N 1..70 at least once, SIMD against portable bit for bit.
        let isa = Isa::best();
        let mut sc = Vec::new();
        for k in 1..=130usize {
            let n = 1 + (k * 7) % 70;
            let m = 1 + k % 17;
            let a = vals(m * k, k as u64);
            let b = vals(k * n, 500 + k as u64);
            let c0 = vals(m * n, 900 + k as u64);
            let pb = PackedB::pack(k, n, &b, n, 1);
            let mut want = c0.clone();
            gemm_packed(Isa::Portable, m, &a, k, &pb, &mut want, n, true, &mut sc);
            let mut got = c0.clone();
            gemm_packed(isa, m, &a, k, &pb, &mut got, n, true, &mut sc);
            assert!(want == got, "{isa:?} k{k} n{n} m{m}");
        }
    }

    #[test]
    fn f64_and_empty_shapes() {
        let (m, k, n) = (3, 4, 5);
        let a: Vec<f64> = (0..m * k).map(|i| i as f64 - 2.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| 0.5 * i as f64).collect();
        let pb = PackedB::pack(k, n, &b, n, 1);
        let mut c = vec![1.0f64; m * n];
        gemm_packed(
            Isa::best(),
            m,
            &a,
            k,
            &pb,
            &mut c,
            n,
            false,
            &mut Vec::new(),
        );
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                assert_eq!(c[i * n + j], s);
            }
        }
        // k = 0: C zeroed (or kept when accumulating).
        let pb0 = PackedB::<f64>::pack(0, 2, &[], 1, 1);
        let mut c = vec![3.0; 4];
        gemm_packed(
            Isa::Portable,
            2,
            &[],
            0,
            &pb0,
            &mut c,
            2,
            true,
            &mut Vec::new(),
        );
        assert_eq!(c, [3.0; 4]);
        gemm_packed(
            Isa::Portable,
            2,
            &[],
            0,
            &pb0,
            &mut c,
            2,
            false,
            &mut Vec::new(),
        );
        assert_eq!(c, [0.0; 4]);
    }

    #[test]
    #[should_panic(expected = "exceeds slice")]
    fn out_of_bounds_view_panics() {
        let pb = PackedB::pack(2, 2, &[1.0f32; 4], 2, 1);
        let mut c = vec![0.0f32; 3];
        gemm_packed(
            Isa::Portable,
            2,
            &[1.0; 4],
            2,
            &pb,
            &mut c,
            2,
            false,
            &mut Vec::new(),
        );
    }
}
