//! Fused recurrent-sequence kernels: the whole time loop of an LSTM in one call, forward and
//! backward (backpropagation through time).
//!
//! Layout (row-major, `B` batch, `T` time, `U` units):
//! - `xp [B, T, 4U]`: the input projection of every step, bias included, gate blocks in Keras's
//!   order **i, f, c, o**;
//! - `r [U, 4U]`: the recurrent kernel;
//! - `ws [B, T, 7U]`: the workspace the forward pass saves for the backward pass: per step the
//!   activated gates (`4U`), the state `h` and `c` before the step (`U` each) and `tanh(c')` (`U`).
//!
//! Parallelism and determinism: batch rows are independent through the whole recurrence, so the
//! batch is cut into blocks of [`row_block`] rows (a size that depends only on the batch size)
//! and each block runs its whole time loop on one thread. The recurrent kernel is packed once
//! per call (`R` forward, `Rᵀ` backward) and each step's `[rows, K] @ [K, N]` product runs the
//! register-blocked micro-kernel of [`crate::kernels::rnn_gemm`]. Every element is therefore
//! computed by the same operations whatever the number of threads. The
//! weight gradient `dR = Hprev^T · dZ` is one GEMM over all `B·T` rows after the loop (gemm
//! splits outputs, never the reduction). Nothing is allocated per step.

use crate::kernels::gemm::{matmul_strided, matmul_strided_on};
use crate::kernels::rnn_gemm::{gemm_packed, Isa, PackedB, PackedGemm};
use crate::kernels::Float;
use gemm::Parallelism;
use rayon::prelude::*;

/// Rows of the batch one task carries through the whole time loop: 32, a constant (never the
/// thread count), so results are the same on any number of threads. The environment variable
/// `FF_RNN_BLOCK` overrides it for tuning (results then depend on that value, still not on the
/// thread count). With `R` packed once per call, a block's per-step cost is the micro-kernel
/// over its rows; 32 rows (4 micro-tiles) reuse each L1-resident panel of `R` four times, and
/// batch 64 gives 2 blocks for 2 cores.
pub fn row_block(_batch: usize) -> usize {
    if let Some(b) = std::env::var("FF_RNN_BLOCK")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return b.max(1);
    }
    if crate_gemm_requested() {
        return 64;
    }
    32
}

/// Whether `FF_RNN_GEMM=gemm` asks for the previous per-step product (the `gemm` crate, which
/// repacks `R` on every step; blocks of 64 rows by default), kept for A/B measurements.
fn crate_gemm_requested() -> bool {
    std::env::var("FF_RNN_GEMM").is_ok_and(|v| v == "gemm")
}

/// How a block runs its per-step product with the recurrent kernel.
#[derive(Clone, Copy)]
enum StepGemm<'a, T> {
    /// The packed micro-kernel ([`gemm_packed`]) on `R` (forward) or `Rᵀ` (backward), packed.
    Packed(Isa, &'a PackedB<T>),
    /// The `gemm` crate on the unpacked `R` (`FF_RNN_GEMM=gemm`); `par`: gemm's own threads
    /// (when the whole batch is one block).
    Crate { par: bool, r: &'a [T] },
}

/// `C (+)= A·B` through the `gemm` crate (the `FF_RNN_GEMM=gemm` comparison path), with gemm's
/// threads when `par`. gemm splits outputs, never the reduction, so the result does not depend
/// on the thread count either way.
#[allow(clippy::too_many_arguments)]
fn mm_block<T: Float>(
    par: bool,
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_rs: usize,
    b: &[T],
    b_rs: usize,
    b_cs: usize,
    c: &mut [T],
    c_rs: usize,
    accumulate: bool,
) {
    // `Rayon` even on one thread: `matmul_strided_on` picks its kernel from this, and the pick
    // must not depend on the thread count.
    let p = if par {
        Parallelism::Rayon(rayon::current_num_threads())
    } else {
        Parallelism::None
    };
    matmul_strided_on(
        p, m, k, n, a, a_rs, 1, b, b_rs, b_cs, c, c_rs, 1, accumulate,
    );
}

/// A float type the fused kernels run in, with its activation functions on slices.
pub trait RnnFloat: Float + PackedGemm {
    /// `x ← 1 / (1 + e^-x)` in place.
    fn sigmoid_inplace(x: &mut [Self]);
    /// `x ← tanh(x)` in place.
    fn tanh_inplace(x: &mut [Self]);
}

impl RnnFloat for f64 {
    fn sigmoid_inplace(x: &mut [f64]) {
        for v in x {
            *v = if *v >= 0.0 {
                1.0 / (1.0 + (-*v).exp())
            } else {
                let e = v.exp();
                e / (1.0 + e)
            };
        }
    }
    fn tanh_inplace(x: &mut [f64]) {
        for v in x {
            *v = v.tanh();
        }
    }
}

/// `e^x` for f32 without branches, so loops over it vectorize: Cody–Waite range reduction and
/// Cephes's degree-6 polynomial (relative error about 2e-7 over the clamped range).
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes's constants, as published
fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick.
    const MAGIC: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    let bits = ((n as i32 + 127) << 23) as u32;
    y * f32::from_bits(bits)
}

#[inline(always)]
fn sigmoid_f32(v: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-v))
}

#[inline(always)]
fn tanh_f32(v: f32) -> f32 {
    // tanh(x) = 1 - 2 / (e^{2x} + 1): absolute error ~2e-7, saturates cleanly at ±1.
    1.0 - 2.0 / (exp_f32(2.0 * v) + 1.0)
}

#[inline(always)]
fn sigmoid_slice_f32(x: &mut [f32]) {
    for v in x {
        *v = sigmoid_f32(*v);
    }
}

#[inline(always)]
fn tanh_slice_f32(x: &mut [f32]) {
    for v in x {
        *v = tanh_f32(*v);
    }
}

#[cfg(target_arch = "x86_64")]
mod wide {
    // SAFETY (both): only called after `is_x86_feature_detected!("avx2")` and `("fma")`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sigmoid(x: &mut [f32]) {
        super::sigmoid_slice_f32(x)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tanh(x: &mut [f32]) {
        super::tanh_slice_f32(x)
    }
}

#[inline]
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl RnnFloat for f32 {
    fn sigmoid_inplace(x: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { wide::sigmoid(x) };
            return;
        }
        sigmoid_slice_f32(x)
    }
    fn tanh_inplace(x: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { wide::tanh(x) };
            return;
        }
        tanh_slice_f32(x)
    }
}

/// Sizes of a fused LSTM problem.
#[derive(Clone, Copy, Debug)]
pub struct LstmDims {
    /// Batch size `B`.
    pub batch: usize,
    /// Time steps `T`.
    pub time: usize,
    /// Units `U`.
    pub units: usize,
}

/// Results of [`lstm_forward`].
pub struct LstmForward<T> {
    /// The output sequence `[B, T, U]` (masked steps as the layer defines them).
    pub hs: Vec<T>,
    /// The last `h` state `[B, U]`.
    pub h_last: Vec<T>,
    /// The last `c` state `[B, U]`.
    pub c_last: Vec<T>,
    /// The workspace `[B, T, 7U]` for [`lstm_backward`].
    pub ws: Vec<T>,
}

/// The LSTM forward pass over a whole sequence (see the module docs for layouts). `mask`
/// (`[B, T]`, true = a real step) makes a masked step keep the previous `h`, `c` and output the
/// previous output (zeros before the first real step), or zeros with `zero_output`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward<T: RnnFloat>(
    d: LstmDims,
    xp: &[T],
    h0: &[T],
    c0: &[T],
    r: &[T],
    bias: Option<&[T]>,
    mask: Option<&[bool]>,
    zero_output: bool,
) -> LstmForward<T> {
    lstm_forward_on(Isa::detect(), d, xp, h0, c0, r, bias, mask, zero_output)
}

/// [`lstm_forward`] on a chosen micro-kernel (`isa` must be supported by the CPU; results are
/// bit-identical for every `isa`).
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward_on<T: RnnFloat>(
    isa: Isa,
    d: LstmDims,
    xp: &[T],
    h0: &[T],
    c0: &[T],
    r: &[T],
    bias: Option<&[T]>,
    mask: Option<&[bool]>,
    zero_output: bool,
) -> LstmForward<T> {
    let (b, t, u) = (d.batch, d.time, d.units);
    let mut out = LstmForward {
        hs: vec![T::zero(); b * t * u],
        h_last: h0[..b * u].to_vec(),
        c_last: c0[..b * u].to_vec(),
        ws: vec![T::zero(); b * t * 7 * u],
    };
    if b == 0 || t == 0 || u == 0 {
        return out;
    }
    let rb = row_block(b);
    let crate_gemm = crate_gemm_requested();
    let pr = PackedB::pack(if crate_gemm { 0 } else { u }, 4 * u, r, 4 * u, 1);
    let sg = if crate_gemm {
        StepGemm::Crate { par: b <= rb, r }
    } else {
        StepGemm::Packed(isa, &pr)
    };
    let run = |blk: usize, hs: &mut [T], ws: &mut [T], h: &mut [T], c: &mut [T]| {
        let rows = h.len() / u;
        let r0 = blk * rb;
        let xp = &xp[r0 * t * 4 * u..(r0 + rows) * t * 4 * u];
        let mask = mask.map(|m| &m[r0 * t..(r0 + rows) * t]);
        lstm_forward_block(sg, rows, t, u, xp, bias, mask, zero_output, hs, ws, h, c);
    };
    out.hs
        .par_chunks_mut(rb * t * u)
        .zip(out.ws.par_chunks_mut(rb * t * 7 * u))
        .zip(out.h_last.par_chunks_mut(rb * u))
        .zip(out.c_last.par_chunks_mut(rb * u))
        .enumerate()
        .for_each(|(blk, (((hs, ws), h), c))| run(blk, hs, ws, h, c));
    out
}

/// One block of rows through every step; `h`, `c` hold the initial states and end as the last.
#[allow(clippy::too_many_arguments)]
fn lstm_forward_block<T: RnnFloat>(
    sg: StepGemm<'_, T>,
    rows: usize,
    t: usize,
    u: usize,
    xp: &[T],
    bias: Option<&[T]>,
    mask: Option<&[bool]>,
    zero_output: bool,
    hs: &mut [T],
    ws: &mut [T],
    h: &mut [T],
    c: &mut [T],
) {
    let (g4, w7) = (4 * u, 7 * u);
    let mut scratch = Vec::new();
    for s in 0..t {
        for row in 0..rows {
            let i = row * t + s;
            let z = &mut ws[i * w7..i * w7 + g4];
            let x = &xp[i * g4..(i + 1) * g4];
            match bias {
                Some(bias) => {
                    for ((z, x), b) in z.iter_mut().zip(x).zip(bias) {
                        *z = *x + *b;
                    }
                }
                None => z.copy_from_slice(x),
            }
        }
        // z_s = xp_s + h·R for all rows of the block at once.
        let z = &mut ws[s * w7..];
        match sg {
            StepGemm::Packed(isa, pr) => {
                gemm_packed(isa, rows, h, u, pr, z, t * w7, true, &mut scratch)
            }
            StepGemm::Crate { par, r } => {
                mm_block(par, rows, u, g4, h, u, r, g4, 1, z, t * w7, true)
            }
        }
        for row in 0..rows {
            let i = row * t + s;
            let w = &mut ws[i * w7..(i + 1) * w7];
            let (gates, rest) = w.split_at_mut(g4);
            let (hprev, rest) = rest.split_at_mut(u);
            let (cprev, tc) = rest.split_at_mut(u);
            let hr = &mut h[row * u..(row + 1) * u];
            let cr = &mut c[row * u..(row + 1) * u];
            hprev.copy_from_slice(hr);
            cprev.copy_from_slice(cr);
            T::sigmoid_inplace(&mut gates[..2 * u]);
            T::tanh_inplace(&mut gates[2 * u..3 * u]);
            T::sigmoid_inplace(&mut gates[3 * u..]);
            let (ig, rest) = gates.split_at(u);
            let (fg, rest) = rest.split_at(u);
            let (gg, og) = rest.split_at(u);
            for j in 0..u {
                tc[j] = fg[j] * cprev[j] + ig[j] * gg[j];
            }
            let keep = mask.is_none_or(|m| m[i]);
            if keep {
                cr.copy_from_slice(tc);
            }
            T::tanh_inplace(tc);
            let (before, cur) = hs.split_at_mut(i * u);
            let out = &mut cur[..u];
            if keep {
                for j in 0..u {
                    let hn = og[j] * tc[j];
                    hr[j] = hn;
                    out[j] = hn;
                }
            } else if zero_output || s == 0 {
                out.fill(T::zero());
            } else {
                out.copy_from_slice(&before[(i - 1) * u..i * u]);
            }
        }
    }
}

/// Results of [`lstm_backward`].
pub struct LstmBackward<T> {
    /// Gradient of the input projection `[B, T, 4U]` (the pre-activation gate gradients).
    pub dxp: Vec<T>,
    /// Gradient of the initial `h` `[B, U]`.
    pub dh0: Vec<T>,
    /// Gradient of the initial `c` `[B, U]`.
    pub dc0: Vec<T>,
    /// Gradient of the recurrent kernel `[U, 4U]`.
    pub dr: Vec<T>,
    /// Gradient of the bias `[4U]` (the column sums of `dxp`).
    pub dbias: Vec<T>,
}

/// Backpropagation through time for [`lstm_forward`]: `dhs` `[B, T, U]`, `dh_last`, `dc_last`
/// `[B, U]` are the gradients of its three results, `ws` its workspace.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward<T: RnnFloat>(
    d: LstmDims,
    r: &[T],
    ws: &[T],
    mask: Option<&[bool]>,
    zero_output: bool,
    dhs: &[T],
    dh_last: &[T],
    dc_last: &[T],
) -> LstmBackward<T> {
    lstm_backward_on(
        Isa::detect(),
        d,
        r,
        ws,
        mask,
        zero_output,
        dhs,
        dh_last,
        dc_last,
    )
}

/// [`lstm_backward`] on a chosen micro-kernel (`isa` must be supported by the CPU; results are
/// bit-identical for every `isa`).
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward_on<T: RnnFloat>(
    isa: Isa,
    d: LstmDims,
    r: &[T],
    ws: &[T],
    mask: Option<&[bool]>,
    zero_output: bool,
    dhs: &[T],
    dh_last: &[T],
    dc_last: &[T],
) -> LstmBackward<T> {
    let (b, t, u) = (d.batch, d.time, d.units);
    let mut out = LstmBackward {
        dxp: vec![T::zero(); b * t * 4 * u],
        dh0: dh_last[..b * u].to_vec(),
        dc0: dc_last[..b * u].to_vec(),
        dr: vec![T::zero(); u * 4 * u],
        dbias: vec![T::zero(); 4 * u],
    };
    if b == 0 || t == 0 || u == 0 {
        return out;
    }
    let rb = row_block(b);
    // Rᵀ [4U, U] packed: element (p, j) is r[j·4U + p].
    let crate_gemm = crate_gemm_requested();
    let prt = PackedB::pack(if crate_gemm { 0 } else { 4 * u }, u, r, 1, 4 * u);
    let sg = if crate_gemm {
        StepGemm::Crate { par: b <= rb, r }
    } else {
        StepGemm::Packed(isa, &prt)
    };
    out.dxp
        .par_chunks_mut(rb * t * 4 * u)
        .zip(out.dh0.par_chunks_mut(rb * u))
        .zip(out.dc0.par_chunks_mut(rb * u))
        .enumerate()
        .for_each(|(blk, ((dz, dh), dc))| {
            let rows = dh.len() / u;
            let r0 = blk * rb;
            lstm_backward_block(
                sg,
                rows,
                t,
                u,
                &ws[r0 * t * 7 * u..(r0 + rows) * t * 7 * u],
                mask.map(|m| &m[r0 * t..(r0 + rows) * t]),
                zero_output,
                &dhs[r0 * t * u..(r0 + rows) * t * u],
                dz,
                dh,
                dc,
            );
        });
    // dR = Σ_rows hprev^T · dz: one GEMM with K = B·T (hprev read in place from the workspace).
    matmul_strided(
        u,
        b * t,
        4 * u,
        &ws[4 * u..],
        1,
        7 * u,
        &out.dxp,
        4 * u,
        1,
        &mut out.dr,
        4 * u,
        1,
        false,
    );
    // dbias: column sums of dZ, rows in a fixed order.
    for row in out.dxp.chunks_exact(4 * u) {
        for (d, z) in out.dbias.iter_mut().zip(row) {
            *d += *z;
        }
    }
    out
}

/// The gate gradients of one row at one step: `w` the step's workspace row (`7U`), `go` the
/// gradient of the step's output, `dh` of its `h` state, `carry` what reached the output through
/// masked steps (reset to 0), `dc` of its `c` state (updated to the previous step's), and the four
/// pre-activation gate gradients out. A function of its own so that the `&mut` slices are known
/// not to alias and the loop vectorizes.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn gate_grads<T: Float>(
    w: &[T],
    go: &[T],
    dh: &[T],
    carry: &mut [T],
    dc: &mut [T],
    dzi: &mut [T],
    dzf: &mut [T],
    dzg: &mut [T],
    dzo: &mut [T],
) {
    let u = go.len();
    let one = T::one();
    let (ig, fg, gg, og) = (&w[..u], &w[u..2 * u], &w[2 * u..3 * u], &w[3 * u..4 * u]);
    let (cprev, tc) = (&w[5 * u..6 * u], &w[6 * u..7 * u]);
    let (dh, carry, dc) = (&dh[..u], &mut carry[..u], &mut dc[..u]);
    let (dzi, dzf, dzg, dzo) = (&mut dzi[..u], &mut dzf[..u], &mut dzg[..u], &mut dzo[..u]);
    for j in 0..u {
        let dhn = dh[j] + go[j] + carry[j];
        let (i_, f_, g_, o_, tc_) = (ig[j], fg[j], gg[j], og[j], tc[j]);
        let dcn = dc[j] + dhn * o_ * (one - tc_ * tc_);
        dzi[j] = dcn * g_ * i_ * (one - i_);
        dzf[j] = dcn * cprev[j] * f_ * (one - f_);
        dzg[j] = dcn * i_ * (one - g_ * g_);
        dzo[j] = dhn * tc_ * o_ * (one - o_);
        dc[j] = dcn * f_;
        carry[j] = T::zero();
    }
}

#[allow(clippy::too_many_arguments)]
fn lstm_backward_block<T: RnnFloat>(
    sg: StepGemm<'_, T>,
    rows: usize,
    t: usize,
    u: usize,
    ws: &[T],
    mask: Option<&[bool]>,
    zero_output: bool,
    dhs: &[T],
    dz: &mut [T],
    dh: &mut [T],
    dc: &mut [T],
) {
    let (g4, w7) = (4 * u, 7 * u);
    // Gradient reaching the previous step's *output* through masked steps (not its state).
    let mut carry = vec![T::zero(); rows * u];
    let mut tmp = vec![T::zero(); rows * u];
    let mut scratch = Vec::new();
    for s in (0..t).rev() {
        for row in 0..rows {
            let i = row * t + s;
            let w = &ws[i * w7..(i + 1) * w7];
            let go = &dhs[i * u..(i + 1) * u];
            let cr = &mut carry[row * u..(row + 1) * u];
            let dhr = &mut dh[row * u..(row + 1) * u];
            let dcr = &mut dc[row * u..(row + 1) * u];
            let z = &mut dz[i * g4..(i + 1) * g4];
            if mask.is_none_or(|m| m[i]) {
                let (dzi, rest) = z.split_at_mut(u);
                let (dzf, rest) = rest.split_at_mut(u);
                let (dzg, dzo) = rest.split_at_mut(u);
                gate_grads(w, go, dhr, cr, dcr, dzi, dzf, dzg, dzo);
            } else {
                z.fill(T::zero());
                for j in 0..u {
                    cr[j] = if zero_output {
                        T::zero()
                    } else {
                        go[j] + cr[j]
                    };
                }
            }
        }
        // dh_prev = dz_s · Rᵀ for all rows of the block (Rᵀ packed once per call); masked
        // rows keep their dh.
        let a = &dz[s * g4..];
        let mut step = |c: &mut [T]| match sg {
            StepGemm::Packed(isa, rt) => {
                gemm_packed(isa, rows, a, t * g4, rt, c, u, false, &mut scratch)
            }
            StepGemm::Crate { par, r } => {
                mm_block(par, rows, g4, u, a, t * g4, r, 1, g4, c, u, false)
            }
        };
        match mask {
            None => step(dh),
            Some(mask) => {
                step(&mut tmp);
                for row in 0..rows {
                    if mask[row * t + s] {
                        dh[row * u..(row + 1) * u].copy_from_slice(&tmp[row * u..(row + 1) * u]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_activations_match_std() {
        let mut worst: f32 = 0.0;
        for k in -4000..4000 {
            let x = k as f32 * 0.01;
            let mut s = [x];
            f32::sigmoid_inplace(&mut s);
            let mut th = [x];
            f32::tanh_inplace(&mut th);
            let es = (s[0] as f64 - 1.0 / (1.0 + (-(x as f64)).exp())).abs();
            let et = (th[0] as f64 - (x as f64).tanh()).abs();
            worst = worst.max(es as f32).max(et as f32);
        }
        assert!(worst < 3e-7, "worst abs error {worst}");
        let mut big = [-1e30f32, 1e30, f32::MIN, 100.0];
        f32::tanh_inplace(&mut big);
        assert_eq!(big, [-1.0, 1.0, -1.0, 1.0]);
    }

    #[test]
    fn same_bits_on_one_and_two_threads() {
        let d = LstmDims {
            batch: 150,
            time: 5,
            units: 37,
        };
        let (b, t, u) = (d.batch, d.time, d.units);
        let vals = |n: usize, seed: u64| -> Vec<f32> {
            crate::testing::test_values(n, seed, -1.0, 1.0)
                .into_iter()
                .map(|v| v as f32)
                .collect()
        };
        let xp = vals(b * t * 4 * u, 1);
        let h0 = vals(b * u, 2);
        let c0 = vals(b * u, 3);
        let r = vals(u * 4 * u, 4);
        let mask: Vec<bool> = (0..b * t).map(|i| i % 3 != 1).collect();
        let dhs = vals(b * t * u, 5);
        let run_on = |isa: Isa, mask: Option<&[bool]>| {
            let f = lstm_forward_on(isa, d, &xp, &h0, &c0, &r, Some(&r[..4 * u]), mask, false);
            let g = lstm_backward_on(isa, d, &r, &f.ws, mask, false, &dhs, &h0, &c0);
            (f.hs, f.h_last, f.c_last, g.dxp, g.dh0, g.dc0, g.dr, g.dbias)
        };
        let run = || run_on(Isa::best(), Some(&mask));
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .expect("pool")
        };
        let one = pool(1).install(run);
        let two = pool(2).install(run);
        assert!(one == two, "results differ between 1 and 2 threads");
        // The SIMD micro-kernel and the portable one give the same bits, masked or not.
        for m in [Some(&mask[..]), None] {
            let simd = pool(2).install(|| run_on(Isa::best(), m));
            let portable = pool(2).install(|| run_on(Isa::Portable, m));
            assert!(simd == portable, "SIMD and portable kernels differ");
        }
    }
}
