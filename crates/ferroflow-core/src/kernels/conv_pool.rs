//! Fused 2-D convolution + bias + optional ReLU + max pooling (`_FusedConv2DMaxPool`), and the
//! matching gradient expansion `_MaxPoolReluGrad`.
//!
//! The pooling has disjoint windows (`strides == window`, `valid` padding: Keras's
//! `MaxPooling2D` default). The convolution's full output is never written to memory: each
//! parallel task computes the convolution rows of whole pooled rows into a small buffer that stays
//! in cache, applies bias and ReLU, and pools them right away:
//!
//! * small reductions (the direct kernel of [`conv_direct`]): row by row, with the very row
//!   kernel of the unfused pass;
//! * larger reductions (im2col + GEMM, as `conv2d_forward_fused`'s tiled path): the columns of a
//!   few pooled rows' worth of convolution rows, one GEMM, the epilogue, then the pooling.
//!
//! Each convolution element is computed with exactly the arithmetic of
//! [`conv2d_forward_fused`] (same kernel, same reduction order; the `gemm` crate's arithmetic for
//! one element does not depend on the number of rows of the call when the filter has at least 2
//! output channels and `k <= 512` or more than 64 output channels — other shapes take the
//! unfused path, full output then pooling), so the pooled values are bit-identical to
//! Conv2D → BiasAdd → Relu → MaxPool.
//!
//! The second output, `argmax` (`u8`, the pooled shape), is the index `i*pw + j` inside its
//! window of the element the max-pool backward ([`max_pool2d_backward`](super::pool)) routes the
//! gradient to: the FIRST maximum in row-major order (only a strictly greater value replaces
//! it). Rows and columns outside every window (when `pw`/`ph` does not divide the convolution's
//! output) are never computed.
//!
//! Parallel over pooled rows (fixed boundaries), so results never depend on the thread count.

use crate::kernels::conv::{
    conv2d_forward_fused, epilogue_rows, im2col_row, tile_rows, Conv2dGeom, Im2colOffsets,
};
use crate::kernels::conv_direct::{self, Epilogue, FwdPlan, Isa};
use crate::kernels::conv_direct_fwd;
use crate::kernels::gemm::{matmul_gathered, matmul_shared, GatheredRhs, SharedRhs};
use crate::kernels::parallel;
use crate::kernels::Float;
use rayon::prelude::*;

/// Largest pooling window (`ph * pw`): the argmax is a `u8`.
pub const MAX_WINDOW: usize = 256;

/// Below this many multiply-adds the fused pass stays on the calling thread.
const PAR_MIN_WORK: usize = 1 << 17;

/// Largest reduction length for which the tiled path's GEMM is known to compute each element the
/// same way whatever the number of rows (one `kc` block), unless `oc > 64`.
const GEMM_ONE_BLOCK_K: usize = 512;

/// One task of the fused pass: `(scratch, first pooled row, pooled rows, argmax rows)`.
type PoolTask<'a, T> = dyn Fn(&mut Scratch<T>, usize, &mut [T], &mut [u8]) + Sync + 'a;

/// A pooling task's scratch, kept across its worker's tasks: values (gathered columns,
/// convolution rows) and offsets (the gathered product's pixel table).
type Scratch<T> = (Vec<T>, Vec<usize>);

/// A max-pool window with `strides == window` and `valid` padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolWindow {
    /// Window height (= stride along H).
    pub ph: usize,
    /// Window width (= stride along W).
    pub pw: usize,
}

impl PoolWindow {
    /// Pooled `(height, width)` of a convolution output of `oh x ow` (floor division).
    pub fn pooled(&self, oh: usize, ow: usize) -> (usize, usize) {
        (oh / self.ph.max(1), ow / self.pw.max(1))
    }

    /// Whether the window is supported (`1 <= ph*pw <= MAX_WINDOW`).
    pub fn is_valid(&self) -> bool {
        self.ph >= 1 && self.pw >= 1 && self.ph.saturating_mul(self.pw) <= MAX_WINDOW
    }
}

/// How the fused forward pass computes the convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// The direct kernel, row by row.
    Direct,
    /// im2col + GEMM per tile of pooled rows.
    Tiled,
    /// The full convolution output, then the pooling (shapes the tiles cannot reproduce).
    Unfused,
}

/// The path `conv2d_forward_fused` would agree with bit for bit.
pub(crate) fn path(g: &Conv2dGeom) -> Path {
    if conv_direct::applies(g) && !g.is_pointwise() {
        return Path::Direct;
    }
    let k = g.k_len();
    if g.is_pointwise() || k == 0 || g.oc < 2 || (k > GEMM_ONE_BLOCK_K && g.oc <= 64) {
        return Path::Unfused;
    }
    Path::Tiled
}

/// Channels per block of [`pool_rows`]' index pass.
const POOL_CB: usize = 64;

/// Max-pools `ph` convolution rows `conv` (`ph` rows of `ow*oc`) into one pooled row `prow`
/// (`pw_out*oc`) and its argmax `arow`: the first maximum in row-major window order. An empty
/// `arow` skips the index (inference graphs, where nobody reads the argmax).
///
/// Two vectorisable passes: the maximum `m` with MaxPool's own rule (start from the window's
/// first element, a strictly greater value replaces it: the same bits as `MaxPool`), then (only
/// with an argmax) the index of the first element equal to `m`, found scanning the window
/// backwards. That index is the one the strictly-greater scan of `MaxPoolGrad` picks (every
/// earlier element is smaller than `m`); when `m` is NaN (only when the window's first element
/// is) no element equals it and the index stays 0, as in that scan. (A one-pass select of value
/// and index was tried; its one measurement, on a loaded machine, was slower.)
#[inline]
fn pool_rows<T: Float>(
    conv: &[T],
    ow: usize,
    oc: usize,
    win: PoolWindow,
    prow: &mut [T],
    arow: &mut [u8],
) {
    let pw_out = prow.len() / oc.max(1);
    let taps = win.ph * win.pw;
    // Offset of window element t from the window's first element.
    let mut offs = [0usize; MAX_WINDOW];
    for (t, o) in offs[..taps].iter_mut().enumerate() {
        *o = ((t / win.pw) * ow + t % win.pw) * oc;
    }
    let offs = &offs[..taps];
    let at = |t: usize, px: usize| offs[t] + px * win.pw * oc;
    if arow.is_empty() {
        for px in 0..pw_out {
            let best = &mut prow[px * oc..(px + 1) * oc];
            let first = at(0, px);
            best.copy_from_slice(&conv[first..first + oc]);
            for t in 1..taps {
                let p = at(t, px);
                for (b, &v) in best.iter_mut().zip(&conv[p..p + oc]) {
                    *b = if v > *b { v } else { *b };
                }
            }
        }
        return;
    }
    let mut idx = [0u32; POOL_CB];
    for px in 0..pw_out {
        let best = &mut prow[px * oc..(px + 1) * oc];
        let first = at(0, px);
        best.copy_from_slice(&conv[first..first + oc]);
        for t in 1..taps {
            let p = at(t, px);
            for (b, &v) in best.iter_mut().zip(&conv[p..p + oc]) {
                *b = if v > *b { v } else { *b };
            }
        }
        for c0 in (0..oc).step_by(POOL_CB) {
            let cn = POOL_CB.min(oc - c0);
            let idx = &mut idx[..cn];
            idx.fill(0);
            let best = &best[c0..c0 + cn];
            for t in (0..taps).rev() {
                let p = at(t, px) + c0;
                for ((a, &v), &b) in idx.iter_mut().zip(&conv[p..p + cn]).zip(best) {
                    *a = if v == b { t as u32 } else { *a };
                }
            }
            for (o, &a) in arow[px * oc + c0..px * oc + c0 + cn]
                .iter_mut()
                .zip(idx.iter())
            {
                *o = a as u8;
            }
        }
    }
}

/// `(k, pooled row k, argmax row k)` over the rows of a task; the argmax rows are empty when
/// `as_` is (no argmax).
fn rows_of<'a, T>(
    ps: &'a mut [T],
    as_: &'a mut [u8],
    prow_len: usize,
) -> impl Iterator<Item = (usize, (&'a mut [T], &'a mut [u8]))> {
    let with = !as_.is_empty();
    let mut arows = as_.chunks_exact_mut(prow_len.max(1));
    ps.chunks_exact_mut(prow_len.max(1))
        .map(move |p| {
            let a: &'a mut [u8] = if with {
                arows.next().unwrap_or_default()
            } else {
                &mut []
            };
            (p, a)
        })
        .enumerate()
}

/// Fused forward: `pooled = maxpool(relu?(conv2d(x, w) + bias))` and its `argmax`.
///
/// `x`: `[n, h, w, c]`, `w`: `[kh, kw, c, oc]` (HWIO), `bias`: `oc` (when given);
/// `pooled` and `argmax`: `[n, oh/ph, ow/pw, oc]` (overwritten). `argmax: None` skips the index
/// computation (the pooled values are the same bits). `win` must be valid
/// ([`PoolWindow::is_valid`]).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_maxpool_forward<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    relu: bool,
    win: PoolWindow,
    pooled: &mut [T],
    argmax: Option<&mut [u8]>,
) {
    forward_on(
        conv_direct::detect_isa(),
        path(g),
        g,
        x,
        w,
        Epilogue { bias, relu },
        win,
        pooled,
        argmax,
    );
}

/// [`conv2d_maxpool_forward`] into new vectors `(pooled, argmax)`, the argmax empty unless
/// `with_argmax`. The AVX-512 `f32` 2x2 kernel ([`conv_direct_fwd`](super::conv_direct_fwd))
/// writes each element once, never zero-filling the buffers first; other calls allocate zeros
/// and run [`conv2d_maxpool_forward`]. The same bits either way.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_maxpool_forward_vec<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    relu: bool,
    win: PoolWindow,
    with_argmax: bool,
) -> (Vec<T>, Vec<u8>) {
    if win == (PoolWindow { ph: 2, pw: 2 }) && path(g) == Path::Direct {
        let epi = Epilogue { bias, relu };
        if let Some(out) = conv_direct_fwd::maxpool2x2_vec(g, x, w, epi, with_argmax) {
            return out;
        }
    }
    let (poh, pow) = win.pooled(g.oh, g.ow);
    let len = g.n * poh * pow * g.oc;
    let mut pooled = vec![T::zero(); len];
    let mut argmax = vec![0u8; if with_argmax { len } else { 0 }];
    let a = if with_argmax {
        Some(&mut argmax[..])
    } else {
        None
    };
    conv2d_maxpool_forward(g, x, w, bias, relu, win, &mut pooled, a);
    (pooled, argmax)
}

/// [`conv2d_maxpool_forward`] on a given instruction set and path (tests).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_on<T: Float>(
    isa: Isa,
    path: Path,
    g: &Conv2dGeom,
    x: &[T],
    w: &[T],
    epi: Epilogue<'_, T>,
    win: PoolWindow,
    pooled: &mut [T],
    argmax: Option<&mut [u8]>,
) {
    debug_assert!(win.is_valid());
    debug_assert_eq!(x.len(), g.input_len());
    debug_assert_eq!(w.len(), g.filter_len());
    let (poh, pow) = win.pooled(g.oh, g.ow);
    let prow_len = pow * g.oc;
    debug_assert_eq!(pooled.len(), g.n * poh * prow_len);
    if let Some(a) = &argmax {
        debug_assert_eq!(a.len(), pooled.len());
    }
    if pooled.is_empty() {
        return;
    }
    let conv_row = g.ow * g.oc;
    let work = (g.n * poh * win.ph * conv_row).saturating_mul(g.k_len().max(1));
    let par = work >= PAR_MIN_WORK && rayon::current_num_threads() > 1;
    // Runs `task(state, first pooled row, pooled rows, argmax rows)` over chunks of `per_task`
    // pooled rows (boundaries fixed by the problem size).
    // Without an argmax, tasks get empty argmax slices.
    let mut argmax = argmax;
    let mut run = |per_task: usize, task: &PoolTask<'_, T>| {
        let chunk = per_task * prow_len;
        match (par, argmax.as_deref_mut()) {
            (true, Some(argmax)) => pooled
                .par_chunks_mut(chunk)
                .zip(argmax.par_chunks_mut(chunk))
                .enumerate()
                .for_each_init(Scratch::default, |s, (t, (p, a))| {
                    task(s, t * per_task, p, a)
                }),
            (true, None) => pooled
                .par_chunks_mut(chunk)
                .enumerate()
                .for_each_init(Scratch::default, |s, (t, p)| {
                    task(s, t * per_task, p, &mut [])
                }),
            (false, Some(argmax)) => {
                let mut s = Scratch::default();
                for (t, (p, a)) in pooled
                    .chunks_mut(chunk)
                    .zip(argmax.chunks_mut(chunk))
                    .enumerate()
                {
                    task(&mut s, t * per_task, p, a);
                }
            }
            (false, None) => {
                let mut s = Scratch::default();
                for (t, p) in pooled.chunks_mut(chunk).enumerate() {
                    task(&mut s, t * per_task, p, &mut []);
                }
            }
        }
    };
    match path {
        Path::Direct => {
            let plan = FwdPlan::new(isa, g, x, w, epi);
            if let Some(fast) = plan.fast().filter(|_| win == PoolWindow { ph: 2, pw: 2 }) {
                // AVX-512 f32, 2x2: both convolution rows, the max and the argmax in registers.
                run(2, &|(buf, _): &mut Scratch<T>, pr0, ps, as_| {
                    fast.pool2x2_rows(buf, pr0, ps, as_)
                });
                return;
            }
            let scratch_len = plan.scratch().len();
            let plan = &plan;
            run(2, &|(buf, _): &mut Scratch<T>, pr0, ps, as_| {
                // buf = [gather scratch | ph convolution rows]
                buf.resize(scratch_len + win.ph * conv_row, T::zero());
                let (scratch, conv) = buf.split_at_mut(scratch_len);
                for (k, (prow, arow)) in rows_of(ps, as_, prow_len) {
                    let pr = pr0 + k;
                    let (img, py) = (pr / poh, pr % poh);
                    for (i, yrow) in conv.chunks_exact_mut(conv_row).enumerate() {
                        plan.row(scratch, img * g.oh + py * win.ph + i, yrow);
                    }
                    pool_rows(conv, g.ow, g.oc, win, prow, arow);
                }
            });
        }
        Path::Tiled => {
            let k_len = g.k_len();
            let per_task = (tile_rows::<T>(g) / win.ph).max(1);
            let img_in = g.h * g.w * g.c;
            let rhs = SharedRhs::new(per_task * win.ph * g.ow, k_len, g.oc, w, g.oc, 1);
            let offsets = Im2colOffsets::new::<T>(g);
            run(per_task, &|(buf, pixels): &mut Scratch<T>, pr0, ps, as_| {
                let np = ps.len() / prow_len;
                let nr = np * win.ph;
                // The convolution rows of the task's pooling windows: their columns read
                // straight from `x` where the product runs on our AVX2 kernel (same bits),
                // else gathered into a column buffer first.
                let gathered = match &offsets {
                    Some(o) => {
                        buf.resize(nr * conv_row, T::zero());
                        pixels.clear();
                        for pr in pr0..pr0 + np {
                            let (img, py) = (pr / poh, pr % poh);
                            Im2colOffsets::push_rows(g, img * g.oh + py * win.ph, win.ph, pixels);
                        }
                        let rhs = GatheredRhs::Shared(&rhs);
                        matmul_gathered(x, pixels, o.taps(), rhs, buf, g.oc, 1, false)
                    }
                    None => false,
                };
                let conv = if gathered {
                    &mut buf[..nr * conv_row]
                } else {
                    let cols_len = nr * g.ow * k_len;
                    buf.resize(cols_len + nr * conv_row, T::zero());
                    let (cols, conv) = buf.split_at_mut(cols_len);
                    for k in 0..np {
                        let pr = pr0 + k;
                        let (img, py) = (pr / poh, pr % poh);
                        let x_img = &x[img * img_in..(img + 1) * img_in];
                        for i in 0..win.ph {
                            let row = k * win.ph + i;
                            let dst = &mut cols[row * g.ow * k_len..(row + 1) * g.ow * k_len];
                            im2col_row(g, x_img, py * win.ph + i, dst);
                        }
                    }
                    matmul_shared(nr * g.ow, cols, k_len, 1, &rhs, conv, g.oc, 1, false);
                    conv
                };
                epilogue_rows(g.oc, conv, epi);
                for (k, (prow, arow)) in rows_of(ps, as_, prow_len) {
                    let band = &conv[k * win.ph * conv_row..(k + 1) * win.ph * conv_row];
                    pool_rows(band, g.ow, g.oc, win, prow, arow);
                }
            });
        }
        Path::Unfused => {
            let mut y = vec![T::zero(); g.output_len()];
            conv2d_forward_fused(g, x, w, epi.bias, epi.relu, &mut y);
            let y = &y;
            run(8, &|_: &mut Scratch<T>, pr0, ps, as_| {
                for (k, (prow, arow)) in rows_of(ps, as_, prow_len) {
                    let pr = pr0 + k;
                    let (img, py) = (pr / poh, pr % poh);
                    let r0 = img * g.oh + py * win.ph;
                    let band = &y[r0 * conv_row..(r0 + win.ph) * conv_row];
                    pool_rows(band, g.ow, g.oc, win, prow, arow);
                }
            });
        }
    }
}

/// `_MaxPoolReluGrad`: `dz` (`[n, oh, ow, c]`, overwritten) is `ReluGrad(MaxPoolGrad(z, dp), z)`
/// computed from the pooled values, their argmax and `dp` (all `[n, oh/ph, ow/pw, c]`) alone:
/// `dp` at each window's argmax when `pooled > 0` (always when `!relu`), 0 everywhere else,
/// including the rows and columns outside every window. Bit-identical to the two unfused ops
/// (both select, neither computes), each element written once, parallel over rows.
#[allow(clippy::too_many_arguments)]
pub fn max_pool_relu_grad<T: Float>(
    conv_shape: [usize; 4],
    win: PoolWindow,
    relu: bool,
    pooled: &[T],
    argmax: &[u8],
    dp: &[T],
    dz: &mut [T],
) {
    let [_, oh, ow, c] = conv_shape;
    let (poh, pow) = win.pooled(oh, ow);
    debug_assert_eq!(dz.len(), conv_shape.iter().product::<usize>());
    debug_assert_eq!(pooled.len(), conv_shape[0] * poh * pow * c);
    debug_assert_eq!(argmax.len(), pooled.len());
    debug_assert_eq!(dp.len(), pooled.len());
    if dz.is_empty() {
        return;
    }
    let zero = T::zero();
    parallel::for_each_row_mut(dz, ow * c, 1, |r, row| {
        let (img, y) = (r / oh, r % oh);
        let (py, i) = (y / win.ph, y % win.ph);
        if py >= poh {
            row.fill(zero);
            return;
        }
        let base_row = (img * poh + py) * pow * c;
        for px in 0..pow {
            let at = base_row + px * c;
            let (p, a, d) = (&pooled[at..at + c], &argmax[at..at + c], &dp[at..at + c]);
            for j in 0..win.pw {
                let t = (i * win.pw + j) as u8;
                let out = &mut row[(px * win.pw + j) * c..(px * win.pw + j + 1) * c];
                if relu {
                    for (((o, &pv), &av), &dv) in out.iter_mut().zip(p).zip(a).zip(d) {
                        *o = if (av == t) & (pv > zero) { dv } else { zero };
                    }
                } else {
                    for ((o, &av), &dv) in out.iter_mut().zip(a).zip(d) {
                        *o = if av == t { dv } else { zero };
                    }
                }
            }
        }
        row[pow * win.pw * c..].fill(zero);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::padding::Padding;
    use crate::kernels::test_util::{pool, unit_stream};

    fn rand_vec(len: usize, seed: u64, zeros: bool) -> Vec<f64> {
        // Coarse values (multiples of 1/4) make many exact ties.
        unit_stream(seed)
            .take(len)
            .map(|u| {
                if zeros {
                    ((u * 8.0).floor() - 4.0) / 4.0
                } else {
                    u * 2.0 - 1.0
                }
            })
            .collect()
    }

    /// Reference: the unfused conv (plain loops in f64), + bias, relu, then VALID max pool with
    /// the first-maximum rule.
    fn reference(
        g: &Conv2dGeom,
        x: &[f64],
        w: &[f64],
        b: &[f64],
        relu: bool,
        win: PoolWindow,
    ) -> (Vec<f64>, Vec<u8>) {
        let mut y = vec![0.0; g.output_len()];
        for n in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for o in 0..g.oc {
                        let mut acc = 0.0;
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
                                let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                for ci in 0..g.c {
                                    let xv =
                                        x[((n * g.h + iy as usize) * g.w + ix as usize) * g.c + ci];
                                    acc += xv * w[((ky * g.kw + kx) * g.c + ci) * g.oc + o];
                                }
                            }
                        }
                        let v = acc + b[o];
                        y[((n * g.oh + oy) * g.ow + ox) * g.oc + o] =
                            if relu && v <= 0.0 { 0.0 } else { v };
                    }
                }
            }
        }
        let (poh, pow) = win.pooled(g.oh, g.ow);
        let mut p = vec![0.0; g.n * poh * pow * g.oc];
        let mut a = vec![0u8; p.len()];
        for n in 0..g.n {
            for py in 0..poh {
                for px in 0..pow {
                    for o in 0..g.oc {
                        let mut best = f64::NEG_INFINITY;
                        let mut arg = 0;
                        for i in 0..win.ph {
                            for j in 0..win.pw {
                                let v = y[((n * g.oh + py * win.ph + i) * g.ow + px * win.pw + j)
                                    * g.oc
                                    + o];
                                if v > best {
                                    best = v;
                                    arg = i * win.pw + j;
                                }
                            }
                        }
                        let at = ((n * poh + py) * pow + px) * g.oc + o;
                        p[at] = best;
                        a[at] = arg as u8;
                    }
                }
            }
        }
        (p, a)
    }

    fn isas() -> Vec<Isa> {
        let mut v = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            let best = conv_direct::detect_isa();
            if best != Isa::Portable {
                v.push(Isa::Avx2);
            }
            if best == Isa::Avx512 {
                v.push(Isa::Avx512);
            }
        }
        v
    }

    struct Case {
        g: Conv2dGeom,
        win: PoolWindow,
        relu: bool,
    }

    fn cases() -> Vec<Case> {
        let mut out = Vec::new();
        let mut s = 12345u64;
        let mut next = |m: usize| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % m as u64) as usize
        };
        // (h, w, cin, cout, k, stride, same)
        let fixed = [
            (28, 28, 1, 32, 3, 1, false),
            (13, 13, 32, 64, 3, 1, false),
            (9, 11, 3, 20, 3, 2, true),
            (10, 7, 32, 17, 3, 1, true),
            (7, 9, 1, 5, 2, 1, false),
            (12, 12, 3, 1, 3, 1, false),
            (8, 9, 70, 3, 3, 1, false),
            // k = 576 > 512 with more than 64 output channels: the tiled path.
            (10, 9, 64, 80, 3, 1, true),
        ];
        for (t, &(h, w, c, oc, k, st, same)) in fixed.iter().enumerate() {
            let pad = if same { Padding::Same } else { Padding::Valid };
            let n = 1 + next(3);
            let g = Conv2dGeom::new([n, h, w, c], [k, k], oc, [st, st], [1, 1], pad);
            let p = if t % 3 == 2 { 3 } else { 2 };
            out.push(Case {
                g,
                win: PoolWindow { ph: p, pw: p },
                relu: t % 4 != 3,
            });
        }
        for t in 0..10 {
            let c = [1, 3, 32, 5][next(4)];
            let oc = 1 + next(40);
            let k = 1 + next(3);
            let st = 1 + next(2);
            let pad = if next(2) == 0 {
                Padding::Same
            } else {
                Padding::Valid
            };
            let (h, w) = (k + 3 + next(10), k + 3 + next(10));
            let g = Conv2dGeom::new([1 + next(3), h, w, c], [k, k], oc, [st, st], [1, 1], pad);
            let win = PoolWindow {
                ph: 2 + next(2),
                pw: 2 + next(2),
            };
            if g.oh < win.ph || g.ow < win.pw {
                continue;
            }
            out.push(Case {
                g,
                win,
                relu: t % 3 != 0,
            });
        }
        out
    }

    #[test]
    fn fused_matches_reference_loops_f64() {
        for (ci, case) in cases().iter().enumerate() {
            let g = &case.g;
            for zeros in [false, true] {
                let x = rand_vec(g.input_len(), 3 + ci as u64, zeros);
                let w = rand_vec(g.filter_len(), 5 + ci as u64, zeros);
                let b = rand_vec(g.oc, 7 + ci as u64, zeros);
                let (want, want_a) = reference(g, &x, &w, &b, case.relu, case.win);
                let mut p = vec![0.0; want.len()];
                let mut a = vec![0u8; want.len()];
                conv2d_maxpool_forward(
                    g,
                    &x,
                    &w,
                    Some(&b),
                    case.relu,
                    case.win,
                    &mut p,
                    Some(&mut a),
                );
                // Without the argmax: the same pooled values.
                let mut p_only = vec![f64::NAN; want.len()];
                conv2d_maxpool_forward(g, &x, &w, Some(&b), case.relu, case.win, &mut p_only, None);
                assert_eq!(p_only, p, "case {ci}: without argmax");
                for (i, (&u, &v)) in p.iter().zip(&want).enumerate() {
                    assert!((u - v).abs() <= 1e-12, "case {ci} at {i}: {u} vs {v}");
                }
                if zeros {
                    // Coarse data: every sum is exact, so the argmax (ties included) must
                    // match the reference's first-maximum rule exactly.
                    assert_eq!(p, want, "case {ci}");
                    assert_eq!(a, want_a, "case {ci}: argmax");
                }
            }
        }
    }

    /// Unfused kernels: conv2d_forward_fused then the max-pool rule.
    fn unfused<T: Float>(
        g: &Conv2dGeom,
        x: &[T],
        w: &[T],
        b: &[T],
        relu: bool,
        win: PoolWindow,
    ) -> (Vec<T>, Vec<T>) {
        use crate::kernels::pool::{max_pool2d_forward, Pool2dGeom};
        let mut y = vec![T::zero(); g.output_len()];
        conv2d_forward_fused(g, x, w, Some(b), relu, &mut y);
        let pg = Pool2dGeom::new(
            [g.n, g.oh, g.ow, g.oc],
            [win.ph, win.pw],
            [win.ph, win.pw],
            Padding::Valid,
        );
        let mut p = vec![T::zero(); pg.output_len()];
        max_pool2d_forward(&pg, &y, &mut p);
        (y, p)
    }

    fn bits32(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn the_cases_cover_every_path() {
        let paths: Vec<Path> = cases().iter().map(|c| path(&c.g)).collect();
        for p in [Path::Direct, Path::Tiled, Path::Unfused] {
            assert!(paths.contains(&p), "{p:?} not covered");
        }
    }

    #[test]
    fn every_path_isa_and_thread_count_is_bit_identical_to_unfused_f32() {
        for (ci, case) in cases().iter().enumerate() {
            let g = &case.g;
            let f = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
            let x = f(rand_vec(g.input_len(), 11 + ci as u64, false));
            let w = f(rand_vec(g.filter_len(), 13 + ci as u64, false));
            let b = f(rand_vec(g.oc, 17 + ci as u64, false));
            let (_, want) = unfused(g, &x, &w, &b, case.relu, case.win);
            let mut paths = vec![path(g), Path::Unfused];
            paths.dedup();
            let mut first_a: Option<Vec<u8>> = None;
            for p in paths {
                for &isa in &isas() {
                    for threads in [1, 2] {
                        let mut got = vec![0f32; want.len()];
                        let mut a = vec![0u8; want.len()];
                        let epi = Epilogue {
                            bias: Some(&b[..]),
                            relu: case.relu,
                        };
                        let mut got_only = vec![f32::NAN; want.len()];
                        pool(threads).install(|| {
                            forward_on(isa, p, g, &x, &w, epi, case.win, &mut got, Some(&mut a));
                            forward_on(isa, p, g, &x, &w, epi, case.win, &mut got_only, None)
                        });
                        assert_eq!(
                            bits32(&got),
                            bits32(&want),
                            "case {ci} {g:?} path {p:?} isa {isa:?} threads {threads}"
                        );
                        assert_eq!(
                            bits32(&got_only),
                            bits32(&want),
                            "case {ci} {g:?} path {p:?} isa {isa:?} threads {threads}: no argmax"
                        );
                        match &first_a {
                            Some(a0) => assert_eq!(&a, a0, "case {ci}: argmax differs"),
                            None => first_a = Some(a),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn max_pool_relu_grad_equals_relu_grad_of_max_pool_grad() {
        use crate::kernels::pool::{max_pool2d_backward, Pool2dGeom};
        for (ci, case) in cases().iter().enumerate() {
            let g = &case.g;
            for zeros in [false, true] {
                let x = rand_vec(g.input_len(), 21 + ci as u64, zeros);
                let w = rand_vec(g.filter_len(), 23 + ci as u64, zeros);
                let b = rand_vec(g.oc, 29 + ci as u64, zeros);
                let (z, p) = unfused(g, &x, &w, &b, case.relu, case.win);
                let mut p2 = vec![0.0; p.len()];
                let mut a = vec![0u8; p.len()];
                conv2d_maxpool_forward(
                    g,
                    &x,
                    &w,
                    Some(&b),
                    case.relu,
                    case.win,
                    &mut p2,
                    Some(&mut a),
                );
                // Negative gradients too, so a wrong sign of zero would show.
                let dp = rand_vec(p.len(), 31 + ci as u64, false);
                let pg = Pool2dGeom::new(
                    [g.n, g.oh, g.ow, g.oc],
                    [case.win.ph, case.win.pw],
                    [case.win.ph, case.win.pw],
                    Padding::Valid,
                );
                let mut g1 = vec![0.0; z.len()];
                max_pool2d_backward(&pg, &z, &dp, &mut g1);
                let want: Vec<f64> = if case.relu {
                    g1.iter()
                        .zip(&z)
                        .map(|(&gv, &zv)| if zv > 0.0 { gv } else { 0.0 })
                        .collect()
                } else {
                    g1
                };
                for threads in [1, 2] {
                    let mut dz = vec![f64::NAN; z.len()];
                    pool(threads).install(|| {
                        max_pool_relu_grad(
                            [g.n, g.oh, g.ow, g.oc],
                            case.win,
                            case.relu,
                            &p2,
                            &a,
                            &dp,
                            &mut dz,
                        )
                    });
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&dz), bits(&want), "case {ci} zeros {zeros}");
                }
            }
        }
    }
}
