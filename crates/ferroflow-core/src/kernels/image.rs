//! Image kernels (NHWC): separable resizing with precomputed taps (TensorFlow's
//! `ResizeBilinear`/`ResizeNearestNeighbor`/`ResizeBicubic` with `half_pixel_centers=True`), their
//! adjoints (the resize gradients), and `ImageProjectiveTransformV3` with its adjoint.
//!
//! Coordinates and interpolation weights are computed in `f32`, as TensorFlow's kernels do, so
//! sampling positions match TensorFlow's exactly; the weighted sums run in the element type.
//! Forward kernels split work over output rows; the adjoints (scatters) over images of the batch,
//! each image's gradient accumulated by one call in a fixed order — results never depend on the
//! number of threads.

use super::parallel::for_each_row_mut;
use super::Float;

/// Resize interpolation along one axis: for each output position, `k` input indices and weights.
#[derive(Clone, Debug, PartialEq)]
pub struct AxisTaps {
    /// Taps per output position.
    pub k: usize,
    /// Input indices, `out_len * k` (always in range).
    pub idx: Vec<usize>,
    /// Weights, `out_len * k`.
    pub w: Vec<f32>,
}

/// TensorFlow's `CalculateResizeScale` without `align_corners`: `in / out` in `f32`.
fn resize_scale(in_len: usize, out_len: usize) -> f32 {
    in_len as f32 / out_len as f32
}

/// Bilinear taps with half-pixel centers (`ResizeBilinear`, `half_pixel_centers=True`):
/// `in = (o + 0.5)·scale − 0.5`, lower = `max(floor(in), 0)`, upper = `min(ceil(in), len − 1)`,
/// weights `1 − lerp`, `lerp` with `lerp = in − floor(in)`.
pub fn bilinear_taps(in_len: usize, out_len: usize) -> AxisTaps {
    let scale = resize_scale(in_len, out_len);
    let mut idx = Vec::with_capacity(out_len * 2);
    let mut w = Vec::with_capacity(out_len * 2);
    let last = in_len as i64 - 1;
    for o in 0..out_len {
        let x = (o as f32 + 0.5) * scale - 0.5;
        let xf = x.floor();
        let lower = (xf as i64).max(0).min(last);
        let upper = (x.ceil() as i64).min(last).max(0);
        let lerp = x - xf;
        idx.extend([lower as usize, upper as usize]);
        w.extend([1.0 - lerp, lerp]);
    }
    AxisTaps { k: 2, idx, w }
}

/// Nearest-neighbour taps with half-pixel centers (`ResizeNearestNeighbor`,
/// `half_pixel_centers=True`): `in = clamp(floor((o + 0.5)·scale), 0, len − 1)`.
pub fn nearest_taps(in_len: usize, out_len: usize) -> AxisTaps {
    let scale = resize_scale(in_len, out_len);
    let last = in_len as i64 - 1;
    let idx = (0..out_len)
        .map(|o| (((o as f32 + 0.5) * scale).floor() as i64).min(last).max(0) as usize)
        .collect();
    AxisTaps {
        k: 1,
        idx,
        w: vec![1.0; out_len],
    }
}

const CUBIC_TABLE: usize = 1024;

/// TensorFlow's Keys cubic coefficient table (`A = −0.5`, 1024 steps): entry `2i` is the kernel
/// at `i/1024`, entry `2i + 1` at `i/1024 + 1`.
fn cubic_table() -> Vec<f32> {
    let a = -0.5f32;
    let mut t = vec![0.0f32; (CUBIC_TABLE + 1) * 2];
    for i in 0..=CUBIC_TABLE {
        let mut x = (i as f64 / CUBIC_TABLE as f64) as f32;
        t[i * 2] = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
        x += 1.0;
        t[i * 2 + 1] = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    }
    t
}

/// Bicubic taps as TensorFlow's `ResizeBicubic` with `half_pixel_centers=True`: the Keys kernel
/// (`a = −0.5`) read from a 1024-step table, taps outside the image get weight 0 and the
/// remaining weights are renormalized to sum to 1.
pub fn bicubic_taps(in_len: usize, out_len: usize) -> AxisTaps {
    let scale = resize_scale(in_len, out_len);
    let table = cubic_table();
    let limit = in_len as i64;
    let bound = |v: i64| v.max(0).min(limit - 1);
    let mut idx = Vec::with_capacity(out_len * 4);
    let mut w = Vec::with_capacity(out_len * 4);
    for o in 0..out_len {
        let x = (o as f32 + 0.5) * scale - 0.5;
        let xf = x.floor();
        let delta = x - xf;
        let loc = xf as i64;
        let off = (delta * CUBIC_TABLE as f32).round_ties_even() as usize;
        let raw = [
            table[off * 2 + 1],
            table[off * 2],
            table[(CUBIC_TABLE - off) * 2],
            table[(CUBIC_TABLE - off) * 2 + 1],
        ];
        let mut ws = [0.0f32; 4];
        let mut ids = [0usize; 4];
        for (t, ((id, wt), r)) in ids.iter_mut().zip(&mut ws).zip(raw).enumerate() {
            let want = loc - 1 + t as i64;
            let b = bound(want);
            *id = b as usize;
            *wt = if b == want { r } else { 0.0 };
        }
        let sum = ws[0] + ws[1] + ws[2] + ws[3];
        if sum.abs() >= 1000.0 * f32::MIN_POSITIVE {
            let inv = 1.0 / sum;
            for v in &mut ws {
                *v *= inv;
            }
        }
        idx.extend(ids);
        w.extend(ws);
    }
    AxisTaps { k: 4, idx, w }
}

/// `out[b, oy, ox, c] = Σ_i Σ_j wy_i·wx_j·x[b, iy_i, ix_j, c]`; `dims = [n, h, w, c]` of `x`,
/// `out` is `[n, oh, ow, c]` with `oh`/`ow` the tap counts.
pub fn resize_forward<T: Float>(
    x: &[T],
    dims: [usize; 4],
    ty: &AxisTaps,
    tx: &AxisTaps,
    out: &mut [T],
) {
    let [_, h, w, c] = dims;
    let oh = ty.idx.len() / ty.k.max(1);
    let ow = tx.idx.len() / tx.k.max(1);
    let row_len = ow * c;
    for_each_row_mut(out, row_len, ty.k * tx.k, |row, o| {
        let (b, oy) = (row / oh, row % oh);
        let img = &x[b * h * w * c..(b + 1) * h * w * c];
        o.fill(T::zero());
        for i in 0..ty.k {
            let wy = T::from_f64c(ty.w[oy * ty.k + i] as f64);
            let line = &img[ty.idx[oy * ty.k + i] * w * c..][..w * c];
            for ox in 0..ow {
                let dst = &mut o[ox * c..(ox + 1) * c];
                for j in 0..tx.k {
                    let wgt = wy * T::from_f64c(tx.w[ox * tx.k + j] as f64);
                    let src = &line[tx.idx[ox * tx.k + j] * c..][..c];
                    for (d, &s) in dst.iter_mut().zip(src) {
                        *d += wgt * s;
                    }
                }
            }
        }
    });
}

/// The adjoint of [`resize_forward`]: scatters `g` (`[n, oh, ow, c]`) back onto `out`
/// (`[n, h, w, c]`, `dims` its shape) with the same taps.
pub fn resize_backward<T: Float>(
    g: &[T],
    dims: [usize; 4],
    ty: &AxisTaps,
    tx: &AxisTaps,
    out: &mut [T],
) {
    let [_, h, w, c] = dims;
    let oh = ty.idx.len() / ty.k.max(1);
    let ow = tx.idx.len() / tx.k.max(1);
    let work = oh * ow * ty.k * tx.k / (h * w).max(1) + 1;
    for_each_row_mut(out, h * w * c, work, |b, img| {
        img.fill(T::zero());
        let gb = &g[b * oh * ow * c..(b + 1) * oh * ow * c];
        for oy in 0..oh {
            for i in 0..ty.k {
                let wy = T::from_f64c(ty.w[oy * ty.k + i] as f64);
                let iy = ty.idx[oy * ty.k + i];
                for ox in 0..ow {
                    let src = &gb[(oy * ow + ox) * c..][..c];
                    for j in 0..tx.k {
                        let wgt = wy * T::from_f64c(tx.w[ox * tx.k + j] as f64);
                        let ix = tx.idx[ox * tx.k + j];
                        let dst = &mut img[(iy * w + ix) * c..][..c];
                        for (d, &s) in dst.iter_mut().zip(src) {
                            *d += wgt * s;
                        }
                    }
                }
            }
        }
    });
}

/// How a projective transform samples between pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interpolation {
    /// The nearest pixel (`round`, halves away from zero).
    Nearest,
    /// Bilinear between the 4 surrounding pixels.
    Bilinear,
}

/// How a projective transform fills points outside the image (TensorFlow's `fill_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FillMode {
    /// `d c b a | a b c d | d c b a`: reflect about the edge of the last pixel.
    Reflect,
    /// `a b c d | a b c d | a b c d`: wrap to the opposite edge.
    Wrap,
    /// `k k k k | a b c d | k k k k`: the constant `fill_value`.
    Constant,
    /// `a a a a | a b c d | d d d d`: extend the nearest pixel.
    Nearest,
}

/// TensorFlow's `MapCoordinate` for one axis of length `len` (`image_ops.h`), in `f32`.
fn map_coord(mode: FillMode, x: f32, len: usize) -> f32 {
    let lenf = len as f32;
    let clamp = |v: f32| v.max(0.0).min(lenf - 1.0);
    match mode {
        FillMode::Constant => x,
        FillMode::Nearest => clamp(x),
        FillMode::Reflect => {
            let mut v = x;
            if v < 0.0 {
                if len <= 1 {
                    v = 0.0;
                } else {
                    let sz2 = (2 * len) as f32;
                    if v < sz2 {
                        v += sz2 * ((-v / sz2) as i64) as f32;
                    }
                    v = if v < -lenf { v + sz2 } else { -v - 1.0 };
                }
            } else if v > lenf - 1.0 {
                if len <= 1 {
                    v = 0.0;
                } else {
                    let sz2 = (2 * len) as f32;
                    v -= sz2 * ((v / sz2) as i64) as f32;
                    if v >= lenf {
                        v = sz2 - v - 1.0;
                    }
                }
            }
            clamp(v)
        }
        FillMode::Wrap => {
            let mut v = x;
            if v < 0.0 {
                if len <= 1 {
                    v = 0.0;
                } else {
                    let sz = (len - 1) as f32;
                    v += lenf * (((-v / sz) as i64) + 1) as f32;
                }
            } else if v > lenf - 1.0 {
                if len <= 1 {
                    v = 0.0;
                } else {
                    let sz = (len - 1) as f32;
                    v -= lenf * ((v / sz) as i64) as f32;
                }
            }
            clamp(v)
        }
    }
}

/// Geometry and attributes of one projective transform.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectiveGeom {
    /// Batch size.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Transforms, `8` values per image (or one row shared by all images).
    pub transforms: Vec<f32>,
    /// Interpolation.
    pub interpolation: Interpolation,
    /// Fill mode.
    pub fill_mode: FillMode,
}

/// Up to 4 in-image taps `(flat pixel index, weight)` of output pixel `(oy, ox)` of image `b`,
/// and the total weight given to the fill value (points outside the image).
fn projective_taps(
    g: &ProjectiveGeom,
    b: usize,
    oy: usize,
    ox: usize,
) -> ([(usize, f32); 4], usize, f32) {
    let t = if g.transforms.len() == 8 {
        &g.transforms[..]
    } else {
        &g.transforms[b * 8..b * 8 + 8]
    };
    let mut taps = [(0usize, 0.0f32); 4];
    let (xo, yo) = (ox as f32, oy as f32);
    let proj = t[6] * xo + t[7] * yo + 1.0;
    if proj == 0.0 {
        return (taps, 0, 1.0);
    }
    let ix = (t[0] * xo + t[1] * yo + t[2]) / proj;
    let iy = (t[3] * xo + t[4] * yo + t[5]) / proj;
    let x = map_coord(g.fill_mode, ix, g.w);
    let y = map_coord(g.fill_mode, iy, g.h);
    let inside = |yy: f32, xx: f32| -> Option<usize> {
        // TF casts to an integer index (truncation) and then checks bounds.
        let (yi, xi) = (yy as i64, xx as i64);
        if yy.is_finite()
            && xx.is_finite()
            && (0..g.h as i64).contains(&yi)
            && (0..g.w as i64).contains(&xi)
        {
            Some(yi as usize * g.w + xi as usize)
        } else {
            None
        }
    };
    let mut n = 0;
    let mut fill = 0.0f32;
    match g.interpolation {
        Interpolation::Nearest => match inside(y.round(), x.round()) {
            Some(p) => {
                taps[0] = (p, 1.0);
                n = 1;
            }
            None => fill = 1.0,
        },
        Interpolation::Bilinear => {
            let (yf, xf) = (y.floor(), x.floor());
            let (yc, xc) = (yf + 1.0, xf + 1.0);
            let cand = [
                (yf, xf, (yc - y) * (xc - x)),
                (yf, xc, (yc - y) * (x - xf)),
                (yc, xf, (y - yf) * (xc - x)),
                (yc, xc, (y - yf) * (x - xf)),
            ];
            for (yy, xx, wgt) in cand {
                match inside(yy, xx) {
                    Some(p) => {
                        taps[n] = (p, wgt);
                        n += 1;
                    }
                    None => fill += wgt,
                }
            }
        }
    }
    (taps, n, fill)
}

/// `ImageProjectiveTransformV3` forward: `out` is `[n, oh, ow, c]`.
pub fn projective_forward<T: Float>(g: &ProjectiveGeom, x: &[T], fill_value: T, out: &mut [T]) {
    let (h, w, c) = (g.h, g.w, g.c);
    for_each_row_mut(out, g.ow * c, 8, |row, o| {
        let (b, oy) = (row / g.oh, row % g.oh);
        let img = &x[b * h * w * c..(b + 1) * h * w * c];
        for ox in 0..g.ow {
            let (taps, n, fill) = projective_taps(g, b, oy, ox);
            let dst = &mut o[ox * c..(ox + 1) * c];
            let fw = T::from_f64c(fill as f64) * fill_value;
            dst.fill(fw);
            for &(p, wgt) in &taps[..n] {
                let wgt = T::from_f64c(wgt as f64);
                for (d, &s) in dst.iter_mut().zip(&img[p * c..(p + 1) * c]) {
                    *d += wgt * s;
                }
            }
        }
    });
}

/// The adjoint of [`projective_forward`] in the image (fill value 0): scatters `grad`
/// (`[n, oh, ow, c]`) onto `out` (`[n, h, w, c]`).
pub fn projective_backward<T: Float>(g: &ProjectiveGeom, grad: &[T], out: &mut [T]) {
    let (oh, ow, c) = (g.oh, g.ow, g.c);
    let work = (oh * ow * 4) / (g.h * g.w).max(1) + 1;
    for_each_row_mut(out, g.h * g.w * c, work, |b, img| {
        img.fill(T::zero());
        let gb = &grad[b * oh * ow * c..(b + 1) * oh * ow * c];
        for oy in 0..oh {
            for ox in 0..ow {
                let (taps, n, _) = projective_taps(g, b, oy, ox);
                let src = &gb[(oy * ow + ox) * c..][..c];
                for &(p, wgt) in &taps[..n] {
                    let wgt = T::from_f64c(wgt as f64);
                    for (d, &s) in img[p * c..(p + 1) * c].iter_mut().zip(src) {
                        *d += wgt * s;
                    }
                }
            }
        }
    });
}
