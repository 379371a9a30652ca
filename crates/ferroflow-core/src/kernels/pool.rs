//! 2-D max and average pooling (NHWC), forward and backward. 1-D pooling is the `h = kh = 1`
//! case.
//!
//! * Max pooling ignores padded positions; its gradient goes to the FIRST maximum of each window
//!   in row-major scan order (later equal values do not take it).
//! * Average pooling divides by the number of real (non-padded) elements in each window.
//!
//! Forward passes are parallel over output rows, backward passes over images; results never
//! depend on the number of threads.

use crate::kernels::padding::{window_2d, Padding, Pads2d};
use crate::kernels::parallel;
use crate::kernels::Float;
use rayon::prelude::*;

/// Geometry of a 2-D pooling: input `[n, h, w, c]`, window `[kh, kw]`, output `[n, oh, ow, c]`.
///
/// Window `(oy, ox)` covers input rows `oy*sh - pad_top ..` (`kh` of them) and columns
/// `ox*sw - pad_left ..` (`kw` of them), clipped to the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dGeom {
    /// Batch size.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Stride along H (>= 1).
    pub sh: usize,
    /// Stride along W (>= 1).
    pub sw: usize,
    /// Padded rows above the input.
    pub pad_top: usize,
    /// Padded columns left of the input.
    pub pad_left: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Pool2dGeom {
    /// Geometry for input `[n, h, w, c]`, `window = [kh, kw]`, `strides = [sh, sw]` and
    /// `valid`/`same` padding. `oh`/`ow` are 0 when a `valid` window does not fit.
    pub fn new(
        input: [usize; 4],
        window: [usize; 2],
        strides: [usize; 2],
        padding: Padding,
    ) -> Self {
        Self::build(input, window, strides, Pads2d::Mode(padding))
    }

    /// Like [`Pool2dGeom::new`] with explicit `pads = [top, bottom, left, right]`.
    pub fn with_explicit_pads(
        input: [usize; 4],
        window: [usize; 2],
        strides: [usize; 2],
        pads: [usize; 4],
    ) -> Self {
        Self::build(input, window, strides, Pads2d::Explicit(pads))
    }

    fn build(input: [usize; 4], window: [usize; 2], strides: [usize; 2], pads: Pads2d) -> Self {
        let [n, h, w, c] = input;
        let (oh, ow, pad_top, pad_left) = window_2d(h, w, window, strides, [1, 1], pads);
        Pool2dGeom {
            n,
            h,
            w,
            c,
            kh: window[0],
            kw: window[1],
            sh: strides[0].max(1),
            sw: strides[1].max(1),
            pad_top,
            pad_left,
            oh,
            ow,
        }
    }

    /// Number of input elements, `n*h*w*c`.
    pub fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }

    /// Number of output elements, `n*oh*ow*c`.
    pub fn output_len(&self) -> usize {
        self.n * self.oh * self.ow * self.c
    }

    /// Real input range `[start, end)` covered by a window starting at `o*s - pad` of length `k`.
    #[inline]
    fn span(o: usize, s: usize, pad: usize, k: usize, size: usize) -> (usize, usize) {
        let start = (o * s) as isize - pad as isize;
        let lo = start.max(0) as usize;
        let hi = (start + k as isize).clamp(0, size as isize) as usize;
        (lo.min(hi), hi)
    }

    /// Real rows `[y0, y1)` of output row `oy`.
    #[inline]
    fn rows(&self, oy: usize) -> (usize, usize) {
        Self::span(oy, self.sh, self.pad_top, self.kh, self.h)
    }

    /// Real columns `[x0, x1)` of output column `ox`.
    #[inline]
    fn cols(&self, ox: usize) -> (usize, usize) {
        Self::span(ox, self.sw, self.pad_left, self.kw, self.w)
    }

    fn check_debug(&self) {
        debug_assert!(self.sh >= 1 && self.sw >= 1);
    }
}

/// Max pooling forward: `y[n, oy, ox, c]` = max over the real elements of the window.
///
/// `x`: `[n, h, w, c]`, `y`: `[n, oh, ow, c]` (overwritten). A window with no real element
/// (possible only with explicit padding at least as large as the window) yields `-inf`.
pub fn max_pool2d_forward<T: Float>(g: &Pool2dGeom, x: &[T], y: &mut [T]) {
    g.check_debug();
    debug_assert_eq!(x.len(), g.input_len());
    debug_assert_eq!(y.len(), g.output_len());
    if y.is_empty() {
        return;
    }
    let c = g.c;
    let img_in = g.h * g.w * c;
    let work = (g.kh * g.kw).max(1);
    parallel::for_each_row_mut(y, g.ow * c, work, |r, yrow| {
        let (img, oy) = (r / g.oh, r % g.oh);
        let x_img = &x[img * img_in..(img + 1) * img_in];
        let (y0, y1) = g.rows(oy);
        for (ox, out) in yrow.chunks_exact_mut(c).enumerate() {
            let (x0, x1) = g.cols(ox);
            if y0 == y1 || x0 == x1 {
                out.fill(T::neg_infinity());
                continue;
            }
            let first = (y0 * g.w + x0) * c;
            out.copy_from_slice(&x_img[first..first + c]);
            for iy in y0..y1 {
                for ix in x0..x1 {
                    let p = (iy * g.w + ix) * c;
                    for (o, &v) in out.iter_mut().zip(&x_img[p..p + c]) {
                        // Same rule as the backward pass: only a strictly greater value wins.
                        // (A select rather than a conditional store, so it vectorises.)
                        *o = if v > *o { v } else { *o };
                    }
                }
            }
        }
    });
}

/// Max pooling backward: `dx` (overwritten) receives each `dy[n, oy, ox, c]` at the FIRST
/// maximal element (row-major scan) of its window, recomputed from `x`.
///
/// `x`: `[n, h, w, c]`, `dy`: `[n, oh, ow, c]`, `dx`: `[n, h, w, c]`. Parallel over images.
pub fn max_pool2d_backward<T: Float>(g: &Pool2dGeom, x: &[T], dy: &[T], dx: &mut [T]) {
    g.check_debug();
    debug_assert_eq!(x.len(), g.input_len());
    debug_assert_eq!(dy.len(), g.output_len());
    debug_assert_eq!(dx.len(), g.input_len());
    if dx.is_empty() {
        return;
    }
    if g.kh <= g.sh && g.kw <= g.sw && g.oh > 0 && g.ow > 0 && g.c > 0 {
        max_pool2d_backward_disjoint(g, x, dy, dx);
        return;
    }
    max_pool2d_backward_general(g, x, dy, dx);
}

/// [`max_pool2d_backward`] for windows that do not overlap (`kh <= sh`, `kw <= sw`, e.g. 2x2
/// stride 2): parallel over bands of input rows, one band per output row; each band is written in
/// one pass while in cache (the window's winner gets `dy`, every other element 0), with no
/// separate zero-fill of `dx` and no scatter.
fn max_pool2d_backward_disjoint<T: Float>(g: &Pool2dGeom, x: &[T], dy: &[T], dx: &mut [T]) {
    let c = g.c;
    let (h, w) = (g.h, g.w);
    let row_len = w * c;
    let img_in = h * row_len;
    // Input rows [band_start(oy), band_start(oy + 1)) belong to output row oy's band; the first
    // band starts at 0 and the last ends at h, so the bands tile each image.
    let band_start = |oy: usize| -> usize {
        if oy == 0 {
            0
        } else {
            g.rows(oy).0.min(h)
        }
    };
    // Whether the windows of one band row cover every column (then no zeroing is needed).
    let cols_tiled = g.kw == g.sw && g.pad_left == 0 && g.ow * g.kw == w;
    let one_band = |idx: &mut Vec<u32>, img: usize, oy: usize, band: &mut [T]| {
        let r0 = band_start(oy);
        let x_img = &x[img * img_in..(img + 1) * img_in];
        let dy_row = &dy[((img * g.oh + oy) * g.ow) * c..((img * g.oh + oy + 1) * g.ow) * c];
        let (y0, y1) = g.rows(oy);
        for iy in r0..r0 + band.len() / row_len {
            if iy < y0 || iy >= y1 || !cols_tiled {
                let b = (iy - r0) * row_len;
                band[b..b + row_len].fill(T::zero());
            }
        }
        idx.resize(c, 0);
        let mut best = [T::zero(); 64];
        for ox in 0..g.ow {
            let (x0, x1) = g.cols(ox);
            if y0 == y1 || x0 == x1 {
                continue;
            }
            let gy = &dy_row[ox * c..(ox + 1) * c];
            // Per channel block: the first maximum in row-major order (strictly greater wins).
            for c0 in (0..c).step_by(64) {
                let cn = 64.min(c - c0);
                let best = &mut best[..cn];
                let idx = &mut idx[c0..c0 + cn];
                let first = (y0 * w + x0) * c + c0;
                best.copy_from_slice(&x_img[first..first + cn]);
                idx.fill(0);
                let mut t = 0u32;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let p = (iy * w + ix) * c + c0;
                        for ((b, a), &v) in
                            best.iter_mut().zip(idx.iter_mut()).zip(&x_img[p..p + cn])
                        {
                            let greater = v > *b;
                            *b = if greater { v } else { *b };
                            *a = if greater { t } else { *a };
                        }
                        t += 1;
                    }
                }
                let gy = &gy[c0..c0 + cn];
                let mut t = 0u32;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let p = (iy - r0) * row_len + ix * c + c0;
                        for ((d, &a), &gv) in band[p..p + cn].iter_mut().zip(idx.iter()).zip(gy) {
                            *d = if a == t { gv } else { T::zero() };
                        }
                        t += 1;
                    }
                }
            }
        }
    };
    // Split every image's rows into its bands (fixed boundaries: the result does not depend on
    // the thread count; each element is written by exactly one band).
    let mut bands: Vec<(usize, usize, &mut [T])> = Vec::with_capacity(g.n * g.oh);
    for (img, dx_img) in dx.chunks_exact_mut(img_in).enumerate() {
        let mut rest = dx_img;
        for oy in 0..g.oh {
            let end = if oy + 1 == g.oh {
                h
            } else {
                band_start(oy + 1)
            };
            let (band, tail) = rest.split_at_mut((end - band_start(oy)) * row_len);
            bands.push((img, oy, band));
            rest = tail;
        }
    }
    let work = g.input_len().saturating_mul(2);
    if work < parallel::PAR_THRESHOLD || rayon::current_num_threads() == 1 {
        let mut idx = Vec::new();
        for (img, oy, band) in bands {
            one_band(&mut idx, img, oy, band);
        }
    } else {
        bands
            .into_par_iter()
            .with_min_len(4)
            .for_each_init(Vec::new, |idx, (img, oy, band)| {
                one_band(idx, img, oy, band)
            });
    }
}

/// The general (overlapping windows) max-pool backward: zero `dx`, then scatter each window's
/// gradient to its first maximum. Parallel over images.
fn max_pool2d_backward_general<T: Float>(g: &Pool2dGeom, x: &[T], dy: &[T], dx: &mut [T]) {
    let c = g.c;
    let img_in = g.h * g.w * c;
    let img_out = g.oh * g.ow * c;
    let one = |img: usize, dx_img: &mut [T]| {
        dx_img.fill(T::zero());
        let x_img = &x[img * img_in..(img + 1) * img_in];
        let dy_img = &dy[img * img_out..(img + 1) * img_out];
        let mut best = vec![T::zero(); c];
        let mut arg = vec![0usize; c];
        for oy in 0..g.oh {
            let (y0, y1) = g.rows(oy);
            for ox in 0..g.ow {
                let (x0, x1) = g.cols(ox);
                if y0 == y1 || x0 == x1 {
                    continue;
                }
                let first = (y0 * g.w + x0) * c;
                best.copy_from_slice(&x_img[first..first + c]);
                arg.fill(first);
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let p = (iy * g.w + ix) * c;
                        for ((b, a), &v) in
                            best.iter_mut().zip(arg.iter_mut()).zip(&x_img[p..p + c])
                        {
                            let greater = v > *b;
                            *b = if greater { v } else { *b };
                            *a = if greater { p } else { *a };
                        }
                    }
                }
                let d = (oy * g.ow + ox) * c;
                for (ci, (&a, &gy)) in arg.iter().zip(&dy_img[d..d + c]).enumerate() {
                    dx_img[a + ci] += gy;
                }
            }
        }
    };
    for_each_image(dx, img_in, img_out * g.kh * g.kw, one);
}

/// Gradient of [`max_pool2d_backward`] with respect to `dy` (TensorFlow's `MaxPoolGradGrad`):
/// `y[n, oy, ox, c]` (overwritten) is `gx` at the FIRST maximal element of the window (the
/// element [`max_pool2d_backward`] routes to), 0 for a window with no real element.
///
/// `x`, `gx`: `[n, h, w, c]`, `y`: `[n, oh, ow, c]`. Parallel over output rows.
pub fn max_pool2d_grad_grad<T: Float>(g: &Pool2dGeom, x: &[T], gx: &[T], y: &mut [T]) {
    g.check_debug();
    debug_assert_eq!(x.len(), g.input_len());
    debug_assert_eq!(gx.len(), g.input_len());
    debug_assert_eq!(y.len(), g.output_len());
    if y.is_empty() {
        return;
    }
    let c = g.c;
    let img_in = g.h * g.w * c;
    let work = (g.kh * g.kw).max(1);
    parallel::for_each_row_mut(y, g.ow * c, work, |r, yrow| {
        let (img, oy) = (r / g.oh, r % g.oh);
        let x_img = &x[img * img_in..(img + 1) * img_in];
        let g_img = &gx[img * img_in..(img + 1) * img_in];
        let (y0, y1) = g.rows(oy);
        let mut best = vec![T::zero(); c];
        for (ox, out) in yrow.chunks_exact_mut(c).enumerate() {
            let (x0, x1) = g.cols(ox);
            if y0 == y1 || x0 == x1 {
                out.fill(T::zero());
                continue;
            }
            let first = (y0 * g.w + x0) * c;
            best.copy_from_slice(&x_img[first..first + c]);
            out.copy_from_slice(&g_img[first..first + c]);
            for iy in y0..y1 {
                for ix in x0..x1 {
                    let p = (iy * g.w + ix) * c;
                    for (ci, (b, o)) in best.iter_mut().zip(out.iter_mut()).enumerate() {
                        let v = x_img[p + ci];
                        if v > *b {
                            *b = v;
                            *o = g_img[p + ci];
                        }
                    }
                }
            }
        }
    });
}

/// Runs `f(image, slice)` over `data` split into images of `img_len`, in parallel when there is
/// more than one image and enough work.
fn for_each_image<T: Send, F>(data: &mut [T], img_len: usize, work_per_image: usize, f: F)
where
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    if img_len == 0 {
        return;
    }
    let n = data.len() / img_len;
    if n > 1
        && rayon::current_num_threads() > 1
        && n.saturating_mul(work_per_image.max(img_len)) >= parallel::PAR_THRESHOLD
    {
        data.par_chunks_mut(img_len)
            .enumerate()
            .for_each(|(i, d)| f(i, d));
    } else {
        for (i, d) in data.chunks_mut(img_len).enumerate() {
            f(i, d);
        }
    }
}

/// Average pooling forward: mean of the real (non-padded) elements of each window (0 for a window
/// with none).
///
/// `x`: `[n, h, w, c]`, `y`: `[n, oh, ow, c]` (overwritten).
pub fn avg_pool2d_forward<T: Float>(g: &Pool2dGeom, x: &[T], y: &mut [T]) {
    g.check_debug();
    debug_assert_eq!(x.len(), g.input_len());
    debug_assert_eq!(y.len(), g.output_len());
    if y.is_empty() {
        return;
    }
    let c = g.c;
    let img_in = g.h * g.w * c;
    let work = (g.kh * g.kw).max(1);
    parallel::for_each_row_mut(y, g.ow * c, work, |r, yrow| {
        let (img, oy) = (r / g.oh, r % g.oh);
        let x_img = &x[img * img_in..(img + 1) * img_in];
        let (y0, y1) = g.rows(oy);
        for (ox, out) in yrow.chunks_exact_mut(c).enumerate() {
            let (x0, x1) = g.cols(ox);
            out.fill(T::zero());
            let count = (y1 - y0) * (x1 - x0);
            if count == 0 {
                continue;
            }
            for iy in y0..y1 {
                for ix in x0..x1 {
                    let p = (iy * g.w + ix) * c;
                    for (o, &v) in out.iter_mut().zip(&x_img[p..p + c]) {
                        *o += v;
                    }
                }
            }
            let cnt = T::from_usize(count).unwrap_or_else(T::one);
            for o in out.iter_mut() {
                *o /= cnt;
            }
        }
    });
}

/// Average pooling backward: each `dy[n, oy, ox, c] / count` is added to the real elements of its
/// window (`count` = number of real elements).
///
/// `dy`: `[n, oh, ow, c]`, `dx`: `[n, h, w, c]` (overwritten). Parallel over images.
pub fn avg_pool2d_backward<T: Float>(g: &Pool2dGeom, dy: &[T], dx: &mut [T]) {
    g.check_debug();
    debug_assert_eq!(dy.len(), g.output_len());
    debug_assert_eq!(dx.len(), g.input_len());
    if dx.is_empty() {
        return;
    }
    let c = g.c;
    let img_in = g.h * g.w * c;
    let img_out = g.oh * g.ow * c;
    let one = |img: usize, dx_img: &mut [T]| {
        dx_img.fill(T::zero());
        let dy_img = &dy[img * img_out..(img + 1) * img_out];
        let mut share = vec![T::zero(); c];
        for oy in 0..g.oh {
            let (y0, y1) = g.rows(oy);
            for ox in 0..g.ow {
                let (x0, x1) = g.cols(ox);
                let count = (y1 - y0) * (x1 - x0);
                if count == 0 {
                    continue;
                }
                let cnt = T::from_usize(count).unwrap_or_else(T::one);
                let d = (oy * g.ow + ox) * c;
                for (s, &gy) in share.iter_mut().zip(&dy_img[d..d + c]) {
                    *s = gy / cnt;
                }
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let p = (iy * g.w + ix) * c;
                        for (o, &s) in dx_img[p..p + c].iter_mut().zip(&share) {
                            *o += s;
                        }
                    }
                }
            }
        }
    };
    for_each_image(dx, img_in, img_out * g.kh * g.kw, one);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::rand_vec;

    /// Naive pooling: returns (max_y, max_dx, avg_y, avg_dx).
    fn naive(g: &Pool2dGeom, x: &[f64], dy: &[f64]) -> [Vec<f64>; 4] {
        let mut my = vec![0.0; g.output_len()];
        let mut ay = vec![0.0; g.output_len()];
        let mut mdx = vec![0.0; g.input_len()];
        let mut adx = vec![0.0; g.input_len()];
        for img in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for ci in 0..g.c {
                        let mut best: Option<(f64, usize)> = None;
                        let mut sum = 0.0;
                        let mut members = vec![];
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let iy = (oy * g.sh + ky) as isize - g.pad_top as isize;
                                let ix = (ox * g.sw + kx) as isize - g.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let xi = ((img * g.h + iy as usize) * g.w + ix as usize) * g.c + ci;
                                let v = x[xi];
                                if best.is_none_or(|(b, _)| v > b) {
                                    best = Some((v, xi));
                                }
                                sum += v;
                                members.push(xi);
                            }
                        }
                        let yi = ((img * g.oh + oy) * g.ow + ox) * g.c + ci;
                        let (b, bi) = best.unwrap();
                        my[yi] = b;
                        mdx[bi] += dy[yi];
                        let cnt = members.len() as f64;
                        ay[yi] = sum / cnt;
                        for m in members {
                            adx[m] += dy[yi] / cnt;
                        }
                    }
                }
            }
        }
        [my, mdx, ay, adx]
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    /// (input [n,h,w,c], window, strides, padding)
    type Case = ([usize; 4], [usize; 2], [usize; 2], Padding);

    #[test]
    fn pools_match_naive() {
        use Padding::{Same, Valid};
        let cases: &[Case] = &[
            ([2, 7, 9, 3], [2, 2], [2, 2], Same),
            ([2, 7, 9, 3], [2, 2], [2, 2], Valid),
            ([2, 7, 9, 3], [3, 3], [2, 2], Same),
            ([1, 8, 7, 2], [3, 2], [1, 1], Same),
            ([3, 5, 6, 1], [3, 3], [1, 2], Valid),
            ([2, 6, 6, 5], [4, 4], [3, 3], Same),
            ([2, 5, 5, 4], [5, 5], [1, 1], Same),
            ([1, 1, 10, 3], [1, 3], [1, 2], Same),
            ([1, 1, 10, 3], [1, 2], [1, 2], Valid),
            // Disjoint windows (the band fast path of the backward pass): gaps between windows,
            // clipped windows, odd sizes, more than 64 channels.
            ([2, 7, 9, 3], [2, 3], [3, 3], Same),
            ([2, 7, 9, 3], [2, 3], [3, 3], Valid),
            ([2, 5, 7, 2], [1, 1], [2, 2], Valid),
            ([1, 9, 8, 70], [2, 2], [2, 2], Valid),
            ([3, 11, 11, 5], [2, 2], [2, 2], Same),
            ([1, 4, 4, 1], [2, 2], [3, 3], Same),
        ];
        for (i, &(input, window, strides, pad)) in cases.iter().enumerate() {
            let g = Pool2dGeom::new(input, window, strides, pad);
            assert!(g.oh > 0 && g.ow > 0);
            // Quantised values so windows contain ties.
            let x: Vec<f64> = rand_vec::<f64>(g.input_len(), 1 + i as u64)
                .iter()
                .map(|v| (v * 3.0).round())
                .collect();
            let dy = rand_vec::<f64>(g.output_len(), 50 + i as u64);
            let [my, mdx, ay, adx] = naive(&g, &x, &dy);
            let mut y = vec![f64::NAN; g.output_len()];
            max_pool2d_forward(&g, &x, &mut y);
            assert!(close(&y, &my), "max fwd case {i}");
            let mut dx = vec![f64::NAN; g.input_len()];
            max_pool2d_backward(&g, &x, &dy, &mut dx);
            assert!(close(&dx, &mdx), "max bwd case {i}");
            avg_pool2d_forward(&g, &x, &mut y);
            assert!(close(&y, &ay), "avg fwd case {i}");
            avg_pool2d_backward(&g, &dy, &mut dx);
            assert!(close(&dx, &adx), "avg bwd case {i}");
        }
    }

    #[test]
    fn grad_grad_is_adjoint_of_backward() {
        use Padding::{Same, Valid};
        let cases: &[Case] = &[
            ([2, 7, 9, 3], [3, 3], [2, 2], Same),
            ([1, 8, 7, 2], [3, 2], [1, 1], Valid),
            ([1, 1, 10, 3], [1, 3], [1, 2], Same),
        ];
        for (i, &(input, window, strides, pad)) in cases.iter().enumerate() {
            let g = Pool2dGeom::new(input, window, strides, pad);
            // Quantised values so windows contain ties.
            let x: Vec<f64> = rand_vec::<f64>(g.input_len(), 5 + i as u64)
                .iter()
                .map(|v| (v * 3.0).round())
                .collect();
            let dy = rand_vec::<f64>(g.output_len(), 60 + i as u64);
            let gx = rand_vec::<f64>(g.input_len(), 70 + i as u64);
            let mut dx = vec![0.0; g.input_len()];
            max_pool2d_backward(&g, &x, &dy, &mut dx);
            let mut gy = vec![f64::NAN; g.output_len()];
            max_pool2d_grad_grad(&g, &x, &gx, &mut gy);
            // <backward(dy), gx> = <dy, grad_grad(gx)>
            let l: f64 = dx.iter().zip(&gx).map(|(a, b)| a * b).sum();
            let r: f64 = dy.iter().zip(&gy).map(|(a, b)| a * b).sum();
            assert!(
                (l - r).abs() < 1e-12 * (1.0 + l.abs()),
                "case {i}: {l} vs {r}"
            );
        }
    }

    #[test]
    fn hand_examples() {
        // 1-D avg pool, pool 2, stride 2, same: the last window only has one real element.
        let g = Pool2dGeom::new([1, 1, 5, 1], [1, 2], [1, 2], Padding::Same);
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let mut y = vec![0f32; g.output_len()];
        avg_pool2d_forward(&g, &x, &mut y);
        assert_eq!(y, vec![1.5, 3.5, 5.0]);
        let mut dx = vec![0f32; 5];
        avg_pool2d_backward(&g, &[2.0, 4.0, 6.0], &mut dx);
        assert_eq!(dx, vec![1.0, 1.0, 2.0, 2.0, 6.0]);
        max_pool2d_forward(&g, &x, &mut y);
        assert_eq!(y, vec![2.0, 4.0, 5.0]);

        // Ties: the first maximum in row-major order gets the gradient.
        let g = Pool2dGeom::new([1, 2, 2, 1], [2, 2], [2, 2], Padding::Valid);
        let x = [1.0f32, 3.0, 3.0, 3.0];
        let mut dx = vec![0f32; 4];
        max_pool2d_backward(&g, &x, &[1.0], &mut dx);
        assert_eq!(dx, vec![0.0, 1.0, 0.0, 0.0]);

        // Padding is ignored by max pooling even when all real values are negative.
        let g = Pool2dGeom::new([1, 3, 3, 1], [2, 2], [2, 2], Padding::Same);
        let x = [-5.0f32, -4.0, -3.0, -2.0, -1.0, -6.0, -7.0, -8.0, -9.0];
        let mut y = vec![0f32; g.output_len()];
        max_pool2d_forward(&g, &x, &mut y);
        assert_eq!(y, vec![-1.0, -3.0, -7.0, -9.0]);
    }

    #[test]
    fn deterministic_across_threads() {
        for g in [
            Pool2dGeom::new([6, 26, 26, 32], [3, 3], [2, 2], Padding::Same),
            Pool2dGeom::new([6, 26, 26, 32], [2, 2], [2, 2], Padding::Valid),
            Pool2dGeom::new([5, 11, 11, 64], [2, 2], [2, 2], Padding::Same),
        ] {
            deterministic_case(g);
        }
    }

    fn deterministic_case(g: Pool2dGeom) {
        let x: Vec<f32> = rand_vec::<f64>(g.input_len(), 7)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let dy: Vec<f32> = rand_vec::<f64>(g.output_len(), 8)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let mut out = vec![];
                    let mut y = vec![0f32; g.output_len()];
                    let mut dx = vec![0f32; g.input_len()];
                    max_pool2d_forward(&g, &x, &mut y);
                    out.extend_from_slice(&y);
                    max_pool2d_backward(&g, &x, &dy, &mut dx);
                    out.extend_from_slice(&dx);
                    avg_pool2d_forward(&g, &x, &mut y);
                    out.extend_from_slice(&y);
                    avg_pool2d_backward(&g, &dy, &mut dx);
                    out.extend_from_slice(&dx);
                    out.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
                })
        };
        assert_eq!(run(1), run(2));
    }
}
