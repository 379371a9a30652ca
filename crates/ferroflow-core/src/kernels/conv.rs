//! 2-D convolution kernels (NHWC activations, HWIO filters), forward and backward.
//!
//! * Regular convolution: im2col + one GEMM per chunk of the batch. The HWIO filter
//!   `[kh, kw, c, oc]` is already the `K x OC` matrix (`K = kh*kw*c`) that multiplies the
//!   `M x K` column matrix (`M = images*oh*ow`), so it needs no packing.
//! * Depthwise convolution (filter `[kh, kw, c, multiplier]`, output channel `ci*multiplier + m`):
//!   direct loops.
//!
//! 1-D convolution is the `h = kh = 1` case; a transposed convolution's forward pass is
//! [`conv2d_backward_input`] with the geometry of the matching forward convolution.
//!
//! Every kernel splits parallel work over outputs (or reduces per-image partial results in image
//! order), so results never depend on the number of threads.

use crate::kernels::conv_direct::{self, Epilogue};
use crate::kernels::gemm::{
    gathered_possible, matmul, matmul_gathered, matmul_shared, matmul_shared_scatter_add,
    matmul_strided_on, GatheredRhs, SharedRhs,
};
use crate::kernels::padding::{window_2d, Padding, Pads2d};
use crate::kernels::parallel;
use crate::kernels::Float;
use gemm::Parallelism;
use rayon::prelude::*;

/// Upper bound on the im2col buffer of one batch chunk, in bytes (at least one image is always
/// processed at a time, whatever its size). Small enough that the columns are still in cache when
/// the GEMM reads them (measured: 4 MiB beats 64 MiB by ~1.5x on 128x13x13x32 -> 64 3x3), large
/// enough to give the GEMM thousands of rows.
const COL_BUDGET_BYTES: usize = 4 << 20;

/// Target size of one task's column tile in the tiled im2col + GEMM path: each task gathers this
/// many bytes of columns (whole output rows, at least one) and multiplies them on one thread while
/// they are in its L2 cache.
const TILE_BYTES: usize = 192 << 10;

/// Most partial filter gradients the tiled backward-filter pass sums (fixed by the problem size,
/// never by the thread count).
const MAX_FILTER_PARTS: usize = 16;

/// Below this many multiply-adds, the tiled passes stay on the calling thread.
const TILED_PAR_MIN_WORK: usize = 1 << 18;

/// Upper bound on the per-image partial filter gradients of the depthwise backward pass.
const PARTIAL_BUDGET_BYTES: usize = 16 << 20;

/// Geometry of a regular 2-D convolution: input `[n, h, w, c]`, filter `[kh, kw, c, oc]`,
/// output `[n, oh, ow, oc]`.
///
/// Input position of output `(oy, ox)` and tap `(ky, kx)`:
/// `iy = oy*sh + ky*dh - pad_top`, `ix = ox*sw + kx*dw - pad_left`; positions outside the input
/// read as zero (so bottom/right padding is implied by `oh`/`ow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dGeom {
    /// Batch size.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c: usize,
    /// Filter height.
    pub kh: usize,
    /// Filter width.
    pub kw: usize,
    /// Output channels.
    pub oc: usize,
    /// Stride along H (>= 1).
    pub sh: usize,
    /// Stride along W (>= 1).
    pub sw: usize,
    /// Dilation along H (>= 1).
    pub dh: usize,
    /// Dilation along W (>= 1).
    pub dw: usize,
    /// Zero rows added above the input.
    pub pad_top: usize,
    /// Zero columns added left of the input.
    pub pad_left: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Conv2dGeom {
    /// Geometry for input `[n, h, w, c]`, `kernel = [kh, kw]`, `oc` output channels, `strides`
    /// and `dilations` as `[along H, along W]`, with TensorFlow `valid`/`same` padding.
    ///
    /// `oh`/`ow` are 0 when a `valid` window does not fit; callers must reject that.
    pub fn new(
        input: [usize; 4],
        kernel: [usize; 2],
        oc: usize,
        strides: [usize; 2],
        dilations: [usize; 2],
        padding: Padding,
    ) -> Self {
        Self::build(input, kernel, oc, strides, dilations, Pads2d::Mode(padding))
    }

    /// Like [`Conv2dGeom::new`] with explicit `pads = [top, bottom, left, right]` (e.g. Keras'
    /// `causal` 1-D padding is `[0, 0, d*(k-1), 0]`).
    pub fn with_explicit_pads(
        input: [usize; 4],
        kernel: [usize; 2],
        oc: usize,
        strides: [usize; 2],
        dilations: [usize; 2],
        pads: [usize; 4],
    ) -> Self {
        Self::build(
            input,
            kernel,
            oc,
            strides,
            dilations,
            Pads2d::Explicit(pads),
        )
    }

    fn build(
        input: [usize; 4],
        kernel: [usize; 2],
        oc: usize,
        strides: [usize; 2],
        dilations: [usize; 2],
        pads: Pads2d,
    ) -> Self {
        let [n, h, w, c] = input;
        let (oh, ow, pad_top, pad_left) = window_2d(h, w, kernel, strides, dilations, pads);
        Conv2dGeom {
            n,
            h,
            w,
            c,
            kh: kernel[0],
            kw: kernel[1],
            oc,
            sh: strides[0].max(1),
            sw: strides[1].max(1),
            dh: dilations[0].max(1),
            dw: dilations[1].max(1),
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

    /// Number of filter elements, `kh*kw*c*oc`.
    pub fn filter_len(&self) -> usize {
        self.kh * self.kw * self.c * self.oc
    }

    /// Number of output elements, `n*oh*ow*oc`.
    pub fn output_len(&self) -> usize {
        self.n * self.oh * self.ow * self.oc
    }

    /// Reduction length of the GEMM, `kh*kw*c`.
    pub(crate) fn k_len(&self) -> usize {
        self.kh * self.kw * self.c
    }

    /// A 1x1, stride-1, unpadded convolution: the input already is the column matrix.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pad_top == 0
            && self.pad_left == 0
            && self.oh == self.h
            && self.ow == self.w
    }

    /// Whether every tap of every output pixel lies inside the image: no padding is read (VALID
    /// windows, any strides and dilations).
    pub(crate) fn reads_no_padding(&self) -> bool {
        self.pad_top == 0
            && self.pad_left == 0
            && self.oh > 0
            && self.ow > 0
            && self.kh > 0
            && self.kw > 0
            && (self.oh - 1) * self.sh + (self.kh - 1) * self.dh < self.h
            && (self.ow - 1) * self.sw + (self.kw - 1) * self.dw < self.w
    }

    /// Images per im2col chunk for a column buffer of at most `budget` bytes (at least 1).
    fn batch_chunk<T>(&self, budget: usize) -> usize {
        let per_image = (self.oh * self.ow * self.k_len() * std::mem::size_of::<T>()).max(1);
        (budget / per_image).clamp(1, self.n.max(1))
    }

    fn check_debug(&self) {
        debug_assert!(self.sh >= 1 && self.sw >= 1 && self.dh >= 1 && self.dw >= 1);
    }
}

/// Where a backward pass reads the output gradient `dy` (`[n*oh, ow, oc]`, row `r` = image
/// `r / oh`, output row `r % oh`) from: a slice ([`DySlice`]), or rows expanded on the fly into a
/// task's small scratch (`_FusedConv2DMaxPoolGrad`, `kernels::conv_pool_grad`), so the same
/// kernels run the same arithmetic without a full-size `dy` in memory.
pub(crate) trait DyRows<T: Float>: Sync {
    /// Whether rows are written into the caller's buffer (rather than borrowed).
    fn expands(&self) -> bool;
    /// Output rows `r0..r0+nr` (`nr*ow*oc` values, pixel stride `oc`), borrowed or written into
    /// `buf` (resized as needed).
    fn rows<'a>(&'a self, g: &Conv2dGeom, r0: usize, nr: usize, buf: &'a mut Vec<T>) -> &'a [T];
    /// Output row `r` with pixel stride `ocp >= oc`: `buf` is `ow*ocp` long (or empty when
    /// `ocp == oc` and [`expands`](Self::expands) is false); lanes `oc..ocp` of each pixel
    /// are zero and stay zero.
    fn row_padded<'a>(&'a self, g: &Conv2dGeom, r: usize, ocp: usize, buf: &'a mut [T]) -> &'a [T];
    /// The whole gradient (expanded in full where not borrowed: the fallback of the rare paths).
    fn whole(&self, g: &Conv2dGeom) -> std::borrow::Cow<'_, [T]>;
    /// The gradient in a form the AVX-512 direct filter-gradient kernel reads straight into
    /// registers ([`crate::kernels::conv_direct_filter`]), if it has one.
    fn filter_dz(&self) -> Option<crate::kernels::conv_direct_filter::Dz<'_, T>> {
        None
    }
}

/// A `dy` held in full.
pub(crate) struct DySlice<'a, T>(pub &'a [T]);

impl<T: Float> DyRows<T> for DySlice<'_, T> {
    #[inline(always)]
    fn expands(&self) -> bool {
        false
    }
    #[inline(always)]
    fn rows<'a>(&'a self, g: &Conv2dGeom, r0: usize, nr: usize, _buf: &'a mut Vec<T>) -> &'a [T] {
        let row = g.ow * g.oc;
        &self.0[r0 * row..(r0 + nr) * row]
    }
    #[inline(always)]
    fn row_padded<'a>(&'a self, g: &Conv2dGeom, r: usize, ocp: usize, buf: &'a mut [T]) -> &'a [T] {
        let (oc, ow) = (g.oc, g.ow);
        let dy_row = &self.0[r * ow * oc..(r + 1) * ow * oc];
        if oc == ocp {
            dy_row
        } else {
            for (d, s) in buf.chunks_exact_mut(ocp).zip(dy_row.chunks_exact(oc)) {
                d[..oc].copy_from_slice(s);
            }
            buf
        }
    }
    fn whole(&self, _g: &Conv2dGeom) -> std::borrow::Cow<'_, [T]> {
        std::borrow::Cow::Borrowed(self.0)
    }
    fn filter_dz(&self) -> Option<crate::kernels::conv_direct_filter::Dz<'_, T>> {
        Some(crate::kernels::conv_direct_filter::Dz::Slice(self.0))
    }
}

/// Valid `k` range `[lo, hi)` of taps `base + k` (unit dilation) that land inside `[0, size)`.
#[inline]
fn tap_range(base: isize, taps: usize, size: usize) -> (usize, usize) {
    let lo = (-base).clamp(0, taps as isize) as usize;
    let hi = (size as isize - base).clamp(lo as isize, taps as isize) as usize;
    (lo, hi)
}

/// Copies `src` into `dst` (equal lengths); short runs use a plain loop instead of `memcpy`.
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    if dst.len() <= 8 {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    } else {
        dst.copy_from_slice(src);
    }
}

/// `dst += src` elementwise.
#[inline(always)]
fn add_run<T: Float>(dst: &mut [T], src: &[T]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += *s;
    }
}

/// Fills one im2col row block: the `ow` rows (each `kh*kw*c` long) of output row `oy` of one
/// image.
pub(crate) fn im2col_row<T: Float>(g: &Conv2dGeom, x_img: &[T], oy: usize, out: &mut [T]) {
    let (c, kw) = (g.c, g.kw);
    let k_len = g.k_len();
    let seg_len = kw * c;
    let row_len = g.w * c;
    for (ox, dst) in out.chunks_exact_mut(k_len).enumerate() {
        let ix0 = (ox * g.sw) as isize - g.pad_left as isize;
        for (ky, seg) in dst.chunks_exact_mut(seg_len).enumerate() {
            let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
            if iy < 0 || iy >= g.h as isize {
                seg.fill(T::zero());
                continue;
            }
            let xrow = &x_img[iy as usize * row_len..(iy as usize + 1) * row_len];
            if g.dw == 1 {
                let (lo, hi) = tap_range(ix0, kw, g.w);
                seg[..lo * c].fill(T::zero());
                if hi > lo {
                    let start = (ix0 + lo as isize) as usize * c;
                    copy_run(
                        &mut seg[lo * c..hi * c],
                        &xrow[start..start + (hi - lo) * c],
                    );
                }
                seg[hi * c..].fill(T::zero());
            } else {
                for (kx, tap) in seg.chunks_exact_mut(c).enumerate() {
                    let ix = ix0 + (kx * g.dw) as isize;
                    if ix < 0 || ix >= g.w as isize {
                        tap.fill(T::zero());
                    } else {
                        let s = ix as usize * c;
                        copy_run(tap, &xrow[s..s + c]);
                    }
                }
            }
        }
    }
}

/// A convolution's im2col matrix as offset tables into its input, for [`matmul_gathered`]: the
/// value [`im2col_row`] copies to column `(ky, kx, ci)` of output pixel `(r, ox)` (`r` over the
/// batch: image `r / oh`) is `x[pixel + taps[(ky*kw + kx)*c + ci]]` with `pixel` from
/// [`Im2colOffsets::push_rows`]. Exact (a copy) where no tap reads padding.
pub(crate) struct Im2colOffsets {
    taps: Vec<usize>,
}

#[cfg(test)]
thread_local! {
    /// Tests: turns the gathered products off on this thread (the tiled passes then copy their
    /// columns, as before), to compare both bit for bit.
    static GATHER_OFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Im2colOffsets {
    /// The tables of `g`, or `None` where the gathered product cannot run: some tap reads
    /// padding (im2col writes zeros there), [`gathered_possible`] says no for `T`, or the switch
    /// `FF_CONV_GATHER` is off (read once; the tiles then copy their columns, as before).
    pub(crate) fn new<T: Float>(g: &Conv2dGeom) -> Option<Self> {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if !gathered_possible::<T>()
            || !g.reads_no_padding()
            || g.k_len() == 0
            || !crate::kernels::env_switch::on(&ON, "FF_CONV_GATHER")
        {
            return None;
        }
        #[cfg(test)]
        if GATHER_OFF.with(|off| off.get()) {
            return None;
        }
        let mut taps = Vec::with_capacity(g.k_len());
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let tap = ky * g.dh * g.w * g.c + kx * g.dw * g.c;
                taps.extend(tap..tap + g.c);
            }
        }
        Some(Self { taps })
    }

    /// The offset of each tap from its pixel's first input element, in im2col column order.
    pub(crate) fn taps(&self) -> &[usize] {
        &self.taps
    }

    /// Appends to `out` the first input elements of the pixels of output rows `r0..r0 + nr`
    /// (over the batch), in im2col row order.
    pub(crate) fn push_rows(g: &Conv2dGeom, r0: usize, nr: usize, out: &mut Vec<usize>) {
        for r in r0..r0 + nr {
            let (img, oy) = (r / g.oh, r % g.oh);
            let base = (img * g.h + oy * g.sh) * g.w * g.c;
            out.extend((0..g.ow).map(|ox| base + ox * g.sw * g.c));
        }
    }
}

/// im2col of `nb` images `x` (`[nb, h, w, c]`) into `cols` (`[nb*oh*ow, kh*kw*c]`), in parallel
/// over output rows.
fn im2col<T: Float>(g: &Conv2dGeom, x: &[T], cols: &mut [T]) {
    let img_len = g.h * g.w * g.c;
    let oh = g.oh;
    parallel::for_each_row_mut(cols, g.ow * g.k_len(), 1, |r, row| {
        let (img, oy) = (r / oh, r % oh);
        im2col_row(g, &x[img * img_len..(img + 1) * img_len], oy, row);
    });
}

/// Sums the column-gradient rows of `dcols` (`[nb*oh*ow, kh*kw*c]`) back into input row `iy` of
/// image `img` (`dx_row`, `w*c` long, overwritten). Each input element is summed in the fixed
/// order (ky, ox, kx).
fn col2im_row<T: Float>(g: &Conv2dGeom, dcols: &[T], img: usize, iy: usize, dx_row: &mut [T]) {
    let (c, kw) = (g.c, g.kw);
    let k_len = g.k_len();
    dx_row.fill(T::zero());
    for ky in 0..g.kh {
        let t = (iy + g.pad_top) as isize - (ky * g.dh) as isize;
        if t < 0 || !(t as usize).is_multiple_of(g.sh) {
            continue;
        }
        let oy = t as usize / g.sh;
        if oy >= g.oh {
            continue;
        }
        let base_row = (img * g.oh + oy) * g.ow;
        let drow = &dcols[base_row * k_len..(base_row + g.ow) * k_len];
        for (ox, dsrc) in drow.chunks_exact(k_len).enumerate() {
            let seg = &dsrc[ky * kw * c..(ky + 1) * kw * c];
            let ix0 = (ox * g.sw) as isize - g.pad_left as isize;
            if g.dw == 1 {
                let (lo, hi) = tap_range(ix0, kw, g.w);
                if hi > lo {
                    let start = (ix0 + lo as isize) as usize * c;
                    add_run(
                        &mut dx_row[start..start + (hi - lo) * c],
                        &seg[lo * c..hi * c],
                    );
                }
            } else {
                for (kx, tap) in seg.chunks_exact(c).enumerate() {
                    let ix = ix0 + (kx * g.dw) as isize;
                    if ix >= 0 && ix < g.w as isize {
                        let s = ix as usize * c;
                        add_run(&mut dx_row[s..s + c], tap);
                    }
                }
            }
        }
    }
}

/// col2im of `nb` images: `dx` (`[nb, h, w, c]`) is overwritten with the scatter-sum of `dcols`,
/// in parallel over input rows (each row is owned by one task, so this is deterministic).
fn col2im<T: Float>(g: &Conv2dGeom, dcols: &[T], dx: &mut [T]) {
    let h = g.h;
    let work = (g.kh * g.kw).max(1);
    parallel::for_each_row_mut(dx, g.w * g.c, work, |r, row| {
        col2im_row(g, dcols, r / h, r % h, row);
    });
}

/// Regular 2-D convolution forward: `y = conv2d(x, w)`.
///
/// `x`: `[n, h, w, c]`, `w`: `[kh, kw, c, oc]` (HWIO), `y`: `[n, oh, ow, oc]` (overwritten).
///
/// Small reductions (`kh*kw*c <= 32`, e.g. a first layer over 1-3 channels) take the direct
/// register-blocked kernel ([`crate::kernels::conv_direct`]); the rest im2col + GEMM.
pub fn conv2d_forward<T: Float>(g: &Conv2dGeom, x: &[T], w: &[T], y: &mut [T]) {
    conv2d_forward_fused(g, x, w, None, false, y);
}

/// [`conv2d_forward_fused`] into a new vector: the AVX-512 direct kernel writes each element once
/// ([`conv_direct_fwd::forward_vec`](crate::kernels::conv_direct_fwd::forward_vec), no zero fill)
/// when it takes the call, otherwise a zeroed vector goes through [`conv2d_forward_fused`]. Same
/// bits either way.
pub fn conv2d_forward_fused_vec<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    relu: bool,
) -> Vec<T> {
    let epi = Epilogue { bias, relu };
    if let Some(y) = crate::kernels::conv_direct_fwd::forward_vec(g, x, w, epi) {
        return y;
    }
    let mut y = vec![T::zero(); g.output_len()];
    conv2d_forward_fused(g, x, w, bias, relu, &mut y);
    y
}

/// [`conv2d_forward`] followed by `+ bias[o]` (when given) and ReLU (when `relu`), applied while
/// each block of the output is still in cache (`_FusedConv2D`). The result is bit-identical to
/// [`conv2d_forward`], then the unfused BiasAdd (`v + b`), then Relu (`if v > 0 { v } else { 0 }`).
///
/// `bias`, when given, has `oc` elements.
pub fn conv2d_forward_fused<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    relu: bool,
    y: &mut [T],
) {
    debug_assert!(bias.is_none_or(|b| b.len() == g.oc));
    let epi = Epilogue { bias, relu };
    if conv_direct::applies(g) && !g.is_pointwise() {
        debug_assert_eq!(x.len(), g.input_len());
        debug_assert_eq!(w.len(), g.filter_len());
        conv_direct::forward(conv_direct::detect_isa(), g, x, w, y, epi);
        return;
    }
    if g.is_pointwise() || y.is_empty() || g.k_len() == 0 {
        conv2d_forward_budget(g, x, w, y, COL_BUDGET_BYTES);
        apply_epilogue(g.oc, y, epi);
        return;
    }
    debug_assert_eq!(x.len(), g.input_len());
    debug_assert_eq!(w.len(), g.filter_len());
    debug_assert_eq!(y.len(), g.output_len());
    conv2d_forward_tiled(g, x, w, y, epi);
}

/// Output rows per task of the tiled path (whole rows; at least one).
pub(crate) fn tile_rows<T>(g: &Conv2dGeom) -> usize {
    let row_bytes = (g.ow * g.k_len() * std::mem::size_of::<T>()).max(1);
    (TILE_BYTES / row_bytes).max(1)
}

/// Runs `f(state, task, chunk)` over `out` cut into chunks of `chunk_len` (the last may be
/// shorter), in parallel when `parallel`; `state` comes from `init`, once per worker split.
/// Chunk boundaries never depend on the thread count.
fn for_each_task<T: Send, S, I, F>(out: &mut [T], chunk_len: usize, parallel: bool, init: I, f: F)
where
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, &mut [T]) + Sync + Send,
{
    if chunk_len == 0 {
        return;
    }
    if parallel && rayon::current_num_threads() > 1 && out.len() > chunk_len {
        out.par_chunks_mut(chunk_len)
            .enumerate()
            .for_each_init(init, |s, (t, c)| f(s, t, c));
    } else {
        let mut s = init();
        for (t, c) in out.chunks_mut(chunk_len).enumerate() {
            f(&mut s, t, c);
        }
    }
}

/// Fills `cols` (`nr*ow` rows of `k_len`) with the im2col rows of output rows `r0..r0+nr` (over
/// the whole batch: row `r` is image `r / oh`, output row `r % oh`).
fn im2col_rows<T: Float>(g: &Conv2dGeom, x: &[T], r0: usize, nr: usize, cols: &mut [T]) {
    let img_in = g.h * g.w * g.c;
    let row_cols = g.ow * g.k_len();
    for (j, dst) in cols.chunks_exact_mut(row_cols).take(nr).enumerate() {
        let r = r0 + j;
        let img = r / g.oh;
        im2col_row(g, &x[img * img_in..(img + 1) * img_in], r % g.oh, dst);
    }
}

/// Tiled forward pass: each task gathers the columns of a few output rows into its own buffer
/// (in L2) and multiplies them on one thread, then applies the epilogue to the rows it just
/// wrote. No batch-sized column matrix, no thread hand-off between im2col and GEMM.
fn conv2d_forward_tiled<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    w: &[T],
    y: &mut [T],
    epi: Epilogue<'_, T>,
) {
    let k_len = g.k_len();
    let rows = tile_rows::<T>(g);
    let row_out = g.ow * g.oc;
    let par = g.output_len().saturating_mul(k_len) >= TILED_PAR_MIN_WORK;
    let rhs = SharedRhs::new(rows * g.ow, k_len, g.oc, w, g.oc, 1);
    let offsets = Im2colOffsets::new::<T>(g);
    for_each_task(
        y,
        rows * row_out,
        par,
        || (Vec::new(), Vec::new()),
        |(cols, pixels): &mut (Vec<T>, Vec<usize>), t, ys| {
            let nr = ys.len() / row_out;
            // The columns read straight from `x` where the product runs on our AVX2 kernel
            // (same bits), else gathered into `cols` first.
            let gathered = offsets.as_ref().is_some_and(|o| {
                pixels.clear();
                Im2colOffsets::push_rows(g, t * rows, nr, pixels);
                let rhs = GatheredRhs::Shared(&rhs);
                matmul_gathered(x, pixels, o.taps(), rhs, ys, g.oc, 1, false)
            });
            if !gathered {
                cols.resize(nr * g.ow * k_len, T::zero());
                im2col_rows(g, x, t * rows, nr, cols);
                matmul_shared(nr * g.ow, cols, k_len, 1, &rhs, ys, g.oc, 1, false);
            }
            epilogue_rows(g.oc, ys, epi);
        },
    );
}

/// Tiled input gradient: one image per task; `dcols = dy_img · wᵀ` into the task's buffer, then
/// col2im into the image's rows of `dx` (each element written once, by its image's task).
fn conv2d_backward_input_tiled<T: Float, D: DyRows<T>>(
    g: &Conv2dGeom,
    dy: &D,
    w: &[T],
    dx: &mut [T],
) {
    let k_len = g.k_len();
    let img_in = g.h * g.w * g.c;
    let px = g.oh * g.ow;
    let par = g.output_len().saturating_mul(k_len) >= TILED_PAR_MIN_WORK;
    // wᵀ (`oc x k_len`), shared by every image's product.
    let rhs = SharedRhs::new(px, g.oc, k_len, w, 1, g.oc);
    // The image's pixels (as image 0's) for the scattered product.
    let offsets = Im2colOffsets::new::<T>(g).map(|o| {
        let mut pixels = Vec::with_capacity(px);
        Im2colOffsets::push_rows(g, 0, g.oh, &mut pixels);
        (o, pixels)
    });
    for_each_task(
        dx,
        img_in,
        par,
        || (Vec::new(), Vec::new()),
        |(dcols, dyb): &mut (Vec<T>, Vec<T>), img, dx_img| {
            let dy_img = dy.rows(g, img * g.oh, g.oh, dyb);
            // `dy_img · wᵀ` added straight into `dx` where our AVX2 kernel runs (its own fixed
            // order of the overlapping windows' terms), else into `dcols`, then col2im.
            if let Some((o, pixels)) = &offsets {
                dx_img.fill(T::zero());
                if matmul_shared_scatter_add(dy_img, g.oc, 1, &rhs, dx_img, pixels, o.taps()) {
                    return;
                }
            }
            dcols.resize(px * k_len, T::zero());
            matmul_shared(px, dy_img, g.oc, 1, &rhs, dcols, k_len, 1, false);
            for (iy, dx_row) in dx_img.chunks_exact_mut(g.w * g.c).enumerate() {
                col2im_row(g, dcols, 0, iy, dx_row);
            }
        },
    );
}

/// Tiled filter gradient: the batch's output rows are cut into at most [`MAX_FILTER_PARTS`]
/// fixed parts; each part sums `colsᵀ · dy` over its tiles into its own partial (one thread, tile
/// by tile), then the partials are added in part order, in parallel over filter elements.
fn conv2d_backward_filter_tiled<T: Float, D: DyRows<T>>(
    g: &Conv2dGeom,
    x: &[T],
    dy: &D,
    dw: &mut [T],
) {
    let k_len = g.k_len();
    let rows = tile_rows::<T>(g);
    let total_rows = g.n * g.oh;
    let tiles = total_rows.div_ceil(rows);
    let parts = tiles.min(MAX_FILTER_PARTS);
    let tiles_per_part = tiles.div_ceil(parts);
    let parts = tiles.div_ceil(tiles_per_part);
    let part_len = g.filter_len();
    let mut partials = vec![T::zero(); parts * part_len];
    let par = g.output_len().saturating_mul(k_len) >= TILED_PAR_MIN_WORK;
    let offsets = Im2colOffsets::new::<T>(g);
    for_each_task(
        &mut partials,
        part_len,
        par,
        || (Vec::new(), Vec::new(), Vec::new()),
        |(cols, dyb, pixels): &mut (Vec<T>, Vec<T>, Vec<usize>), p, part| {
            for ti in 0..tiles_per_part {
                let r0 = (p * tiles_per_part + ti) * rows;
                if r0 >= total_rows {
                    break;
                }
                let nr = rows.min(total_rows - r0);
                let dy_rows = dy.rows(g, r0, nr, dyb);
                // colsᵀ read straight from `x` where the product runs on our AVX2 kernel (same
                // bits), else gathered into `cols` first.
                let gathered = offsets.as_ref().is_some_and(|o| {
                    pixels.clear();
                    Im2colOffsets::push_rows(g, r0, nr, pixels);
                    let rhs = GatheredRhs::View {
                        b: dy_rows,
                        rs: g.oc,
                        cs: 1,
                        n: g.oc,
                    };
                    matmul_gathered(x, o.taps(), pixels, rhs, part, g.oc, 1, ti > 0)
                });
                if gathered {
                    continue;
                }
                cols.resize(nr * g.ow * k_len, T::zero());
                im2col_rows(g, x, r0, nr, cols);
                // part (K x OC) (+)= colsᵀ (K x M) · dy_rows (M x OC).
                matmul_strided_on(
                    Parallelism::None,
                    k_len,
                    nr * g.ow,
                    g.oc,
                    cols,
                    1,
                    k_len,
                    dy_rows,
                    g.oc,
                    1,
                    part,
                    g.oc,
                    1,
                    ti > 0,
                );
            }
        },
    );
    // dw = partials[0] + partials[1] + ... in part order, in parallel over filter elements.
    let partials = &partials;
    parallel::for_each_chunk_mut(dw, |start, chunk| {
        chunk.copy_from_slice(&partials[start..start + chunk.len()]);
        for p in 1..parts {
            let src = &partials[p * part_len + start..p * part_len + start + chunk.len()];
            for (d, &s) in chunk.iter_mut().zip(src) {
                *d += s;
            }
        }
    });
}

/// `y = relu(y + bias)` per the epilogue, row by row (rows of `oc`), in parallel chunks.
fn apply_epilogue<T: Float>(oc: usize, y: &mut [T], epi: Epilogue<'_, T>) {
    if (epi.bias.is_none() && !epi.relu) || oc == 0 {
        return;
    }
    let rows_per_chunk = (parallel::CHUNK / oc).max(1);
    parallel::for_each_row_mut(y, rows_per_chunk * oc, 1, |_, rows| {
        epilogue_rows(oc, rows, epi)
    });
}

/// The epilogue over whole rows of `oc` outputs.
#[inline]
pub(crate) fn epilogue_rows<T: Float>(oc: usize, rows: &mut [T], epi: Epilogue<'_, T>) {
    if epi.bias.is_none() && !epi.relu {
        return;
    }
    let zero = T::zero();
    for row in rows.chunks_exact_mut(oc) {
        if let Some(b) = epi.bias {
            for (v, &bb) in row.iter_mut().zip(b) {
                *v += bb;
            }
        }
        if epi.relu {
            for v in row.iter_mut() {
                *v = if *v > zero { *v } else { zero };
            }
        }
    }
}

/// The batch-chunked im2col + GEMM forward pass whatever the geometry (the reference for the direct kernel's
/// tests).
#[doc(hidden)]
pub fn conv2d_forward_im2col<T: Float>(g: &Conv2dGeom, x: &[T], w: &[T], y: &mut [T]) {
    conv2d_forward_budget(g, x, w, y, COL_BUDGET_BYTES);
}

fn conv2d_forward_budget<T: Float>(g: &Conv2dGeom, x: &[T], w: &[T], y: &mut [T], budget: usize) {
    g.check_debug();
    debug_assert_eq!(x.len(), g.input_len());
    debug_assert_eq!(w.len(), g.filter_len());
    debug_assert_eq!(y.len(), g.output_len());
    if y.is_empty() {
        return;
    }
    let k_len = g.k_len();
    if k_len == 0 {
        y.fill(T::zero());
        return;
    }
    if g.is_pointwise() {
        let m = g.n * g.h * g.w;
        matmul(m, g.c, g.oc, x, g.c, 1, w, g.oc, 1, y, false);
        return;
    }
    let img_in = g.h * g.w * g.c;
    let rows_per_img = g.oh * g.ow;
    let chunk = g.batch_chunk::<T>(budget);
    let mut cols = vec![T::zero(); chunk * rows_per_img * k_len];
    for (ci, y_chunk) in y.chunks_mut(chunk * rows_per_img * g.oc).enumerate() {
        let n0 = ci * chunk;
        let nb = y_chunk.len() / (rows_per_img * g.oc);
        let cols = &mut cols[..nb * rows_per_img * k_len];
        im2col(g, &x[n0 * img_in..(n0 + nb) * img_in], cols);
        matmul(
            nb * rows_per_img,
            k_len,
            g.oc,
            cols,
            k_len,
            1,
            w,
            g.oc,
            1,
            y_chunk,
            false,
        );
    }
}

/// Gradient of [`conv2d_forward`] with respect to its input, which is also the forward pass of a
/// transposed convolution: `dx = conv2d_transpose(dy, w)`.
///
/// `dy`: `[n, oh, ow, oc]`, `w`: `[kh, kw, c, oc]`, `dx`: `[n, h, w, c]` (overwritten).
pub fn conv2d_backward_input<T: Float>(g: &Conv2dGeom, dy: &[T], w: &[T], dx: &mut [T]) {
    debug_assert_eq!(dy.len(), g.output_len());
    conv2d_backward_input_rows(g, &DySlice(dy), w, dx);
}

/// [`conv2d_backward_input`] reading `dy` through a [`DyRows`] (same paths, same arithmetic).
pub(crate) fn conv2d_backward_input_rows<T: Float, D: DyRows<T>>(
    g: &Conv2dGeom,
    dy: &D,
    w: &[T],
    dx: &mut [T],
) {
    // Stride-1 geometries: the direct register-blocked kernels (`kernels::conv_bwd_input`).
    if let Some(kind) = crate::kernels::conv_bwd_input::kind::<T>(g) {
        let isa = conv_direct::detect_isa();
        crate::kernels::conv_bwd_input::backward_input_rows(isa, kind, g, dy, w, dx);
        return;
    }
    let per_image = g.oh * g.ow * g.k_len() * std::mem::size_of::<T>();
    if g.is_pointwise()
        || dx.is_empty()
        || g.oh == 0
        || g.ow == 0
        || g.oc == 0
        || g.k_len() == 0
        || per_image > COL_BUDGET_BYTES
    {
        conv2d_backward_input_budget(g, &dy.whole(g), w, dx, COL_BUDGET_BYTES);
        return;
    }
    debug_assert_eq!(w.len(), g.filter_len());
    debug_assert_eq!(dx.len(), g.input_len());
    conv2d_backward_input_tiled(g, dy, w, dx);
}

/// The batch-chunked im2col + GEMM input gradient (the reference for the tiled path's tests).
#[doc(hidden)]
pub fn conv2d_backward_input_im2col<T: Float>(g: &Conv2dGeom, dy: &[T], w: &[T], dx: &mut [T]) {
    conv2d_backward_input_budget(g, dy, w, dx, COL_BUDGET_BYTES);
}

fn conv2d_backward_input_budget<T: Float>(
    g: &Conv2dGeom,
    dy: &[T],
    w: &[T],
    dx: &mut [T],
    budget: usize,
) {
    g.check_debug();
    debug_assert_eq!(dy.len(), g.output_len());
    debug_assert_eq!(w.len(), g.filter_len());
    debug_assert_eq!(dx.len(), g.input_len());
    if dx.is_empty() {
        return;
    }
    let k_len = g.k_len();
    if g.oh == 0 || g.ow == 0 || g.oc == 0 || k_len == 0 {
        dx.fill(T::zero());
        return;
    }
    if g.is_pointwise() {
        // dx (M x C) = dy (M x OC) · wᵀ, with w read as its transpose.
        let m = g.n * g.h * g.w;
        matmul(m, g.oc, g.c, dy, g.oc, 1, w, 1, g.oc, dx, false);
        return;
    }
    let img_in = g.h * g.w * g.c;
    let rows_per_img = g.oh * g.ow;
    let img_out = rows_per_img * g.oc;
    let chunk = g.batch_chunk::<T>(budget);
    let mut dcols = vec![T::zero(); chunk * rows_per_img * k_len];
    for (ci, dx_chunk) in dx.chunks_mut(chunk * img_in).enumerate() {
        let n0 = ci * chunk;
        let nb = dx_chunk.len() / img_in;
        let dcols = &mut dcols[..nb * rows_per_img * k_len];
        // dcols (Mb x K) = dy_chunk (Mb x OC) · wᵀ (OC x K).
        matmul(
            nb * rows_per_img,
            g.oc,
            k_len,
            &dy[n0 * img_out..(n0 + nb) * img_out],
            g.oc,
            1,
            w,
            1,
            g.oc,
            dcols,
            false,
        );
        col2im(g, dcols, dx_chunk);
    }
}

/// Gradient of [`conv2d_forward`] with respect to its filter: `dw = colsᵀ · dy`, summed over the
/// batch in a fixed chunk order.
///
/// `x`: `[n, h, w, c]`, `dy`: `[n, oh, ow, oc]`, `dw`: `[kh, kw, c, oc]` (overwritten).
///
/// Small reductions (`kh*kw*c <= 32`) take the direct kernel ([`crate::kernels::conv_direct`]).
pub fn conv2d_backward_filter<T: Float>(g: &Conv2dGeom, x: &[T], dy: &[T], dw: &mut [T]) {
    debug_assert_eq!(dy.len(), g.output_len());
    conv2d_backward_filter_rows(g, x, &DySlice(dy), dw);
}

/// [`conv2d_backward_filter`] reading `dy` through a [`DyRows`] (same paths, same arithmetic).
pub(crate) fn conv2d_backward_filter_rows<T: Float, D: DyRows<T>>(
    g: &Conv2dGeom,
    x: &[T],
    dy: &D,
    dw: &mut [T],
) {
    if conv_direct::applies(g) && !g.is_pointwise() {
        debug_assert_eq!(x.len(), g.input_len());
        debug_assert_eq!(dw.len(), g.filter_len());
        conv_direct::backward_filter_rows(conv_direct::detect_isa(), g, x, dy, dw);
        return;
    }
    // f32, oc % 16 == 0, no padding read: the direct register-tiled kernel (`conv2_filter`).
    if crate::kernels::conv2_filter::try_backward_filter(g, x, dy, dw) {
        return;
    }
    if g.is_pointwise() || dw.is_empty() || g.output_len() == 0 || g.k_len() == 0 {
        conv2d_backward_filter_budget(g, x, &dy.whole(g), dw, COL_BUDGET_BYTES);
        return;
    }
    debug_assert_eq!(x.len(), g.input_len());
    conv2d_backward_filter_tiled(g, x, dy, dw);
}

/// The batch-chunked im2col + GEMM filter gradient whatever the geometry (the reference for the direct
/// kernel's tests).
#[doc(hidden)]
pub fn conv2d_backward_filter_im2col<T: Float>(g: &Conv2dGeom, x: &[T], dy: &[T], dw: &mut [T]) {
    conv2d_backward_filter_budget(g, x, dy, dw, COL_BUDGET_BYTES);
}

fn conv2d_backward_filter_budget<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    budget: usize,
) {
    g.check_debug();
    debug_assert_eq!(x.len(), g.input_len());
    debug_assert_eq!(dy.len(), g.output_len());
    debug_assert_eq!(dw.len(), g.filter_len());
    if dw.is_empty() {
        return;
    }
    if dy.is_empty() {
        dw.fill(T::zero());
        return;
    }
    let k_len = g.k_len();
    if g.is_pointwise() {
        // dw (C x OC) = xᵀ (C x M) · dy (M x OC).
        let m = g.n * g.h * g.w;
        matmul(g.c, m, g.oc, x, 1, g.c, dy, g.oc, 1, dw, false);
        return;
    }
    let img_in = g.h * g.w * g.c;
    let rows_per_img = g.oh * g.ow;
    let img_out = rows_per_img * g.oc;
    let chunk = g.batch_chunk::<T>(budget);
    let mut cols = vec![T::zero(); chunk * rows_per_img * k_len];
    for (ci, dy_chunk) in dy.chunks(chunk * img_out).enumerate() {
        let n0 = ci * chunk;
        let nb = dy_chunk.len() / img_out;
        let cols = &mut cols[..nb * rows_per_img * k_len];
        im2col(g, &x[n0 * img_in..(n0 + nb) * img_in], cols);
        // dw (K x OC) (+)= colsᵀ (K x Mb) · dy_chunk (Mb x OC).
        matmul(
            k_len,
            nb * rows_per_img,
            g.oc,
            cols,
            1,
            k_len,
            dy_chunk,
            g.oc,
            1,
            dw,
            ci > 0,
        );
    }
}

/// Geometry of a depthwise 2-D convolution: input `[n, h, w, c]`, filter
/// `[kh, kw, c, multiplier]`, output `[n, oh, ow, c*multiplier]` where output channel
/// `ci*multiplier + m` convolves input channel `ci` with filter slice `[.., .., ci, m]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DepthwiseGeom {
    /// Batch size.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c: usize,
    /// Filter height.
    pub kh: usize,
    /// Filter width.
    pub kw: usize,
    /// Channel multiplier (output channels per input channel).
    pub mult: usize,
    /// Stride along H (>= 1).
    pub sh: usize,
    /// Stride along W (>= 1).
    pub sw: usize,
    /// Dilation along H (>= 1).
    pub dh: usize,
    /// Dilation along W (>= 1).
    pub dw: usize,
    /// Zero rows added above the input.
    pub pad_top: usize,
    /// Zero columns added left of the input.
    pub pad_left: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl DepthwiseGeom {
    /// Geometry for input `[n, h, w, c]`, `kernel = [kh, kw]`, channel multiplier `mult`,
    /// `strides`/`dilations` as `[along H, along W]`, with `valid`/`same` padding.
    pub fn new(
        input: [usize; 4],
        kernel: [usize; 2],
        mult: usize,
        strides: [usize; 2],
        dilations: [usize; 2],
        padding: Padding,
    ) -> Self {
        Self::build(
            input,
            kernel,
            mult,
            strides,
            dilations,
            Pads2d::Mode(padding),
        )
    }

    /// Like [`DepthwiseGeom::new`] with explicit `pads = [top, bottom, left, right]`.
    pub fn with_explicit_pads(
        input: [usize; 4],
        kernel: [usize; 2],
        mult: usize,
        strides: [usize; 2],
        dilations: [usize; 2],
        pads: [usize; 4],
    ) -> Self {
        Self::build(
            input,
            kernel,
            mult,
            strides,
            dilations,
            Pads2d::Explicit(pads),
        )
    }

    fn build(
        input: [usize; 4],
        kernel: [usize; 2],
        mult: usize,
        strides: [usize; 2],
        dilations: [usize; 2],
        pads: Pads2d,
    ) -> Self {
        let [n, h, w, c] = input;
        let (oh, ow, pad_top, pad_left) = window_2d(h, w, kernel, strides, dilations, pads);
        DepthwiseGeom {
            n,
            h,
            w,
            c,
            kh: kernel[0],
            kw: kernel[1],
            mult,
            sh: strides[0].max(1),
            sw: strides[1].max(1),
            dh: dilations[0].max(1),
            dw: dilations[1].max(1),
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

    /// Number of filter elements, `kh*kw*c*mult`.
    pub fn filter_len(&self) -> usize {
        self.kh * self.kw * self.c * self.mult
    }

    /// Number of output elements, `n*oh*ow*c*mult`.
    pub fn output_len(&self) -> usize {
        self.n * self.oh * self.ow * self.c * self.mult
    }

    /// Output channels, `c*mult`.
    pub fn out_channels(&self) -> usize {
        self.c * self.mult
    }

    /// Input row of output row `oy` and tap `ky`, if inside the input.
    #[inline]
    fn in_row(&self, oy: usize, ky: usize) -> Option<usize> {
        let iy = (oy * self.sh + ky * self.dh) as isize - self.pad_top as isize;
        (iy >= 0 && iy < self.h as isize).then_some(iy as usize)
    }

    /// Input column of output column `ox` and tap `kx`, if inside the input.
    #[inline]
    fn in_col(&self, ox: usize, kx: usize) -> Option<usize> {
        let ix = (ox * self.sw + kx * self.dw) as isize - self.pad_left as isize;
        (ix >= 0 && ix < self.w as isize).then_some(ix as usize)
    }

    fn check_debug(&self) {
        debug_assert!(self.sh >= 1 && self.sw >= 1 && self.dh >= 1 && self.dw >= 1);
    }
}

/// `out[ci*mult + m] += xs[ci] * ws[ci*mult + m]`.
#[inline(always)]
fn dw_madd<T: Float>(out: &mut [T], xs: &[T], ws: &[T], mult: usize) {
    if mult == 1 {
        for ((o, &a), &b) in out.iter_mut().zip(xs).zip(ws) {
            *o += a * b;
        }
    } else {
        for ((o, &a), wv) in out
            .chunks_exact_mut(mult)
            .zip(xs)
            .zip(ws.chunks_exact(mult))
        {
            for (o, &b) in o.iter_mut().zip(wv) {
                *o += a * b;
            }
        }
    }
}

/// Depthwise 2-D convolution forward.
///
/// `x`: `[n, h, w, c]`, `w`: `[kh, kw, c, mult]`, `y`: `[n, oh, ow, c*mult]` (overwritten).
/// Parallel over output rows.
pub fn depthwise_conv2d_forward<T: Float>(g: &DepthwiseGeom, x: &[T], w: &[T], y: &mut [T]) {
    g.check_debug();
    debug_assert_eq!(x.len(), g.input_len());
    debug_assert_eq!(w.len(), g.filter_len());
    debug_assert_eq!(y.len(), g.output_len());
    let (c, cm, mult) = (g.c, g.out_channels(), g.mult);
    if y.is_empty() {
        return;
    }
    let img_in = g.h * g.w * c;
    let work = (g.kh * g.kw).max(1);
    parallel::for_each_row_mut(y, g.ow * cm, work, |r, yrow| {
        let (img, oy) = (r / g.oh, r % g.oh);
        let x_img = &x[img * img_in..(img + 1) * img_in];
        yrow.fill(T::zero());
        for (ox, out) in yrow.chunks_exact_mut(cm).enumerate() {
            for ky in 0..g.kh {
                let Some(iy) = g.in_row(oy, ky) else { continue };
                for kx in 0..g.kw {
                    let Some(ix) = g.in_col(ox, kx) else { continue };
                    let p = (iy * g.w + ix) * c;
                    let t = (ky * g.kw + kx) * cm;
                    dw_madd(out, &x_img[p..p + c], &w[t..t + cm], mult);
                }
            }
        }
    });
}

/// Gradient of [`depthwise_conv2d_forward`] with respect to its input.
///
/// `dy`: `[n, oh, ow, c*mult]`, `w`: `[kh, kw, c, mult]`, `dx`: `[n, h, w, c]` (overwritten).
/// Parallel over input rows; each element is summed in the fixed order (ky, ox, kx).
pub fn depthwise_conv2d_backward_input<T: Float>(
    g: &DepthwiseGeom,
    dy: &[T],
    w: &[T],
    dx: &mut [T],
) {
    g.check_debug();
    debug_assert_eq!(dy.len(), g.output_len());
    debug_assert_eq!(w.len(), g.filter_len());
    debug_assert_eq!(dx.len(), g.input_len());
    if dx.is_empty() {
        return;
    }
    let (c, cm, mult) = (g.c, g.out_channels(), g.mult);
    if dy.is_empty() {
        dx.fill(T::zero());
        return;
    }
    let img_out = g.oh * g.ow * cm;
    let work = (g.kh * g.kw).max(1);
    parallel::for_each_row_mut(dx, g.w * c, work, |r, dxrow| {
        let (img, iy) = (r / g.h, r % g.h);
        dxrow.fill(T::zero());
        let dy_img = &dy[img * img_out..(img + 1) * img_out];
        for ky in 0..g.kh {
            let t = (iy + g.pad_top) as isize - (ky * g.dh) as isize;
            if t < 0 || !(t as usize).is_multiple_of(g.sh) || t as usize / g.sh >= g.oh {
                continue;
            }
            let oy = t as usize / g.sh;
            for ox in 0..g.ow {
                let d = (oy * g.ow + ox) * cm;
                let dys = &dy_img[d..d + cm];
                for kx in 0..g.kw {
                    let Some(ix) = g.in_col(ox, kx) else { continue };
                    let t = (ky * g.kw + kx) * cm;
                    let ws = &w[t..t + cm];
                    let out = &mut dxrow[ix * c..(ix + 1) * c];
                    if mult == 1 {
                        for ((o, &a), &b) in out.iter_mut().zip(dys).zip(ws) {
                            *o += a * b;
                        }
                    } else {
                        for ((o, dv), wv) in out
                            .iter_mut()
                            .zip(dys.chunks_exact(mult))
                            .zip(ws.chunks_exact(mult))
                        {
                            let mut s = T::zero();
                            for (&a, &b) in dv.iter().zip(wv) {
                                s += a * b;
                            }
                            *o += s;
                        }
                    }
                }
            }
        }
    });
}

/// Filter gradient of one image, accumulated into `part` (`[kh, kw, c, mult]`, zeroed by caller).
fn depthwise_filter_grad_image<T: Float>(
    g: &DepthwiseGeom,
    x_img: &[T],
    dy_img: &[T],
    part: &mut [T],
) {
    let (c, cm, mult) = (g.c, g.out_channels(), g.mult);
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let d = (oy * g.ow + ox) * cm;
            let dys = &dy_img[d..d + cm];
            for ky in 0..g.kh {
                let Some(iy) = g.in_row(oy, ky) else { continue };
                for kx in 0..g.kw {
                    let Some(ix) = g.in_col(ox, kx) else { continue };
                    let p = (iy * g.w + ix) * c;
                    let t = (ky * g.kw + kx) * cm;
                    // part[ci*mult + m] += x[ci] * dy[ci*mult + m]
                    dw_madd(&mut part[t..t + cm], &x_img[p..p + c], dys, mult);
                }
            }
        }
    }
}

/// Gradient of [`depthwise_conv2d_forward`] with respect to its filter.
///
/// `x`: `[n, h, w, c]`, `dy`: `[n, oh, ow, c*mult]`, `dw`: `[kh, kw, c, mult]` (overwritten).
/// Per-image partial gradients are computed in parallel and summed in image order.
pub fn depthwise_conv2d_backward_filter<T: Float>(
    g: &DepthwiseGeom,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
) {
    g.check_debug();
    debug_assert_eq!(x.len(), g.input_len());
    debug_assert_eq!(dy.len(), g.output_len());
    debug_assert_eq!(dw.len(), g.filter_len());
    dw.fill(T::zero());
    if dw.is_empty() || dy.is_empty() {
        return;
    }
    let flen = dw.len();
    let img_in = g.h * g.w * g.c;
    let img_out = g.oh * g.ow * g.out_channels();
    let group = (PARTIAL_BUDGET_BYTES / std::mem::size_of_val(dw).max(1)).clamp(1, g.n);
    let per_image_work = img_out * g.kh * g.kw;
    let mut parts = vec![T::zero(); group * flen];
    let mut n0 = 0;
    while n0 < g.n {
        let nb = group.min(g.n - n0);
        let parts = &mut parts[..nb * flen];
        parts.fill(T::zero());
        let one = |i: usize, part: &mut [T]| {
            let img = n0 + i;
            depthwise_filter_grad_image(
                g,
                &x[img * img_in..(img + 1) * img_in],
                &dy[img * img_out..(img + 1) * img_out],
                part,
            );
        };
        if nb > 1
            && rayon::current_num_threads() > 1
            && nb * per_image_work >= parallel::PAR_THRESHOLD
        {
            parts
                .par_chunks_mut(flen)
                .enumerate()
                .for_each(|(i, p)| one(i, p));
        } else {
            for (i, p) in parts.chunks_mut(flen).enumerate() {
                one(i, p);
            }
        }
        // Sum the partials in image order (each element independently, so any split is exact).
        let parts = &*parts;
        parallel::for_each_chunk_mut(dw, |start, out| {
            for p in parts.chunks_exact(flen) {
                add_run(out, &p[start..start + out.len()]);
            }
        });
        n0 += nb;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{pool, rand_vec};

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= tol * (1.0 + b.abs()),
                "{what}: element {i}: got {a}, want {b}"
            );
        }
    }

    fn f64s(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&x| f64::from(x)).collect()
    }

    fn bits_eq(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    /// The tiled passes reading their columns straight from the input ([`Im2colOffsets`],
    /// where our AVX2 GEMM runs) give the bits of the same passes with copied columns: forward
    /// (plain and fused with a 2x2 max-pool) and filter gradient, on 1 and 2 threads, over
    /// strides, dilations, odd sizes and channel counts; a padded convolution keeps the copies.
    /// The input gradient added straight into `dx` matches col2im's to rounding.
    #[test]
    fn gathered_columns_give_the_bits_of_copied_columns() {
        use crate::kernels::conv_pool::{conv2d_maxpool_forward, PoolWindow};
        if !gathered_possible::<f32>() {
            println!("skipped: the gathered product does not run on this CPU");
            return;
        }
        let cases = [
            ([3, 13, 13, 32], [3, 3], 64, [1, 1], [1, 1], Padding::Valid),
            ([2, 17, 11, 24], [3, 3], 40, [2, 1], [1, 1], Padding::Valid),
            ([2, 15, 16, 7], [5, 6], 33, [1, 2], [2, 1], Padding::Valid),
            ([1, 9, 30, 23], [3, 3], 48, [1, 1], [1, 1], Padding::Valid),
            ([2, 12, 12, 32], [3, 3], 64, [1, 1], [1, 1], Padding::Same),
        ];
        let mut gathered_somewhere = false;
        for (ci, &(input, kernel, oc, strides, dil, pad)) in cases.iter().enumerate() {
            let g = Conv2dGeom::new(input, kernel, oc, strides, dil, pad);
            gathered_somewhere |= Im2colOffsets::new::<f32>(&g).is_some();
            let seed = 40 + 10 * ci as u64;
            let x: Vec<f32> = rand_vec(g.input_len(), seed);
            let w: Vec<f32> = rand_vec(g.filter_len(), seed + 1);
            let b: Vec<f32> = rand_vec(g.oc, seed + 2);
            let dy: Vec<f32> = rand_vec(g.output_len(), seed + 3);
            let win = PoolWindow { ph: 2, pw: 2 };
            let (poh, pow) = win.pooled(g.oh, g.ow);
            let run = |off: bool, threads: usize| {
                let mut y = vec![0f32; g.output_len()];
                let mut dw = vec![0f32; g.filter_len()];
                let mut dx = vec![0f32; g.input_len()];
                let mut pooled = vec![0f32; g.n * poh * pow * g.oc];
                let mut argmax = vec![0u8; pooled.len()];
                pool(threads).install(|| {
                    // Set on the thread that runs the passes (where they read it).
                    GATHER_OFF.with(|c| c.set(off));
                    conv2d_forward_fused(&g, &x, &w, Some(&b), true, &mut y);
                    conv2d_backward_filter(&g, &x, &dy, &mut dw);
                    conv2d_backward_input(&g, &dy, &w, &mut dx);
                    conv2d_maxpool_forward(
                        &g,
                        &x,
                        &w,
                        Some(&b),
                        true,
                        win,
                        &mut pooled,
                        Some(&mut argmax),
                    );
                    GATHER_OFF.with(|c| c.set(false));
                });
                (y, dw, pooled, argmax, dx)
            };
            let want = run(true, 1);
            for threads in [1, 2] {
                let got = run(false, threads);
                let what = format!("case {ci} threads {threads}");
                assert!(bits_eq(&got.0, &want.0), "{what}: forward");
                assert!(bits_eq(&got.1, &want.1), "{what}: filter gradient");
                assert!(bits_eq(&got.2, &want.2), "{what}: pooled forward");
                assert_eq!(got.3, want.3, "{what}: argmax");
                // The input gradient scattered straight into dx adds the overlapping windows'
                // terms in its own fixed order: close to col2im's sums, the same bits on 1 and
                // 2 threads.
                let (a, b) = (f64s(&got.4), f64s(&want.4));
                assert_close(&a, &b, 1e-5, &format!("{what}: input gradient"));
                if threads == 2 {
                    assert!(bits_eq(&got.4, &run(false, 1).4), "{what}: input gradient");
                }
            }
        }
        assert!(gathered_somewhere, "no case took the gathered path");
    }

    /// Calls `f(oy, ox, ky, kx, iy, ix)` for every tap that lands inside the input.
    fn for_taps(
        g: (usize, usize, usize, usize, usize, usize), // h, w, kh, kw, oh, ow
        s: (usize, usize, usize, usize, usize, usize), // sh, sw, dh, dw, pt, pl
        mut f: impl FnMut(usize, usize, usize, usize, usize, usize),
    ) {
        let (h, w, kh, kw, oh, ow) = g;
        let (sh, sw, dh, dw, pt, pl) = s;
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let iy = (oy * sh + ky * dh) as isize - pt as isize;
                        let ix = (ox * sw + kx * dw) as isize - pl as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            f(oy, ox, ky, kx, iy as usize, ix as usize);
                        }
                    }
                }
            }
        }
    }

    fn taps_of(g: &Conv2dGeom) -> [(usize, usize, usize, usize, usize, usize); 2] {
        [
            (g.h, g.w, g.kh, g.kw, g.oh, g.ow),
            (g.sh, g.sw, g.dh, g.dw, g.pad_top, g.pad_left),
        ]
    }

    fn naive_conv(g: &Conv2dGeom, x: &[f64], w: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; g.output_len()];
        let [a, b] = taps_of(g);
        for img in 0..g.n {
            for_taps(a, b, |oy, ox, ky, kx, iy, ix| {
                for o in 0..g.oc {
                    let mut s = 0.0;
                    for ci in 0..g.c {
                        s += x[((img * g.h + iy) * g.w + ix) * g.c + ci]
                            * w[((ky * g.kw + kx) * g.c + ci) * g.oc + o];
                    }
                    y[((img * g.oh + oy) * g.ow + ox) * g.oc + o] += s;
                }
            });
        }
        y
    }

    fn naive_conv_dx(g: &Conv2dGeom, dy: &[f64], w: &[f64]) -> Vec<f64> {
        let mut dx = vec![0.0; g.input_len()];
        let [a, b] = taps_of(g);
        for img in 0..g.n {
            for_taps(a, b, |oy, ox, ky, kx, iy, ix| {
                for ci in 0..g.c {
                    for o in 0..g.oc {
                        dx[((img * g.h + iy) * g.w + ix) * g.c + ci] += dy
                            [((img * g.oh + oy) * g.ow + ox) * g.oc + o]
                            * w[((ky * g.kw + kx) * g.c + ci) * g.oc + o];
                    }
                }
            });
        }
        dx
    }

    fn naive_conv_dw(g: &Conv2dGeom, x: &[f64], dy: &[f64]) -> Vec<f64> {
        let mut dw = vec![0.0; g.filter_len()];
        let [a, b] = taps_of(g);
        for img in 0..g.n {
            for_taps(a, b, |oy, ox, ky, kx, iy, ix| {
                for ci in 0..g.c {
                    for o in 0..g.oc {
                        dw[((ky * g.kw + kx) * g.c + ci) * g.oc + o] += x
                            [((img * g.h + iy) * g.w + ix) * g.c + ci]
                            * dy[((img * g.oh + oy) * g.ow + ox) * g.oc + o];
                    }
                }
            });
        }
        dw
    }

    /// (input [n,h,w,c], kernel, oc, strides, dilations, padding)
    type Case = (
        [usize; 4],
        [usize; 2],
        usize,
        [usize; 2],
        [usize; 2],
        Padding,
    );

    fn cases() -> Vec<Case> {
        use Padding::{Same, Valid};
        vec![
            ([2, 7, 9, 3], [3, 3], 4, [1, 1], [1, 1], Same),
            ([2, 7, 9, 3], [3, 2], 5, [2, 2], [1, 1], Valid),
            ([2, 7, 9, 3], [3, 2], 5, [2, 2], [1, 1], Same),
            ([1, 8, 7, 2], [3, 3], 3, [2, 1], [2, 2], Same),
            ([1, 8, 7, 2], [3, 3], 3, [1, 1], [2, 2], Valid),
            ([3, 5, 6, 1], [2, 4], 2, [1, 2], [1, 1], Same),
            ([2, 6, 6, 5], [1, 1], 3, [1, 1], [1, 1], Valid),
            ([2, 6, 5, 5], [1, 1], 3, [2, 2], [1, 1], Same),
            ([1, 4, 4, 2], [5, 5], 2, [1, 1], [1, 1], Same),
            ([2, 9, 9, 4], [3, 3], 6, [3, 2], [1, 2], Valid),
            ([2, 11, 10, 7], [4, 3], 9, [2, 3], [1, 1], Same),
            // 1-D convolutions (h = kh = 1)
            ([2, 1, 10, 3], [1, 4], 2, [1, 2], [1, 1], Same),
            ([2, 1, 11, 2], [1, 3], 3, [1, 1], [1, 3], Valid),
        ]
    }

    #[test]
    fn conv2d_matches_naive() {
        for (i, &(input, kernel, oc, strides, dil, pad)) in cases().iter().enumerate() {
            let g = Conv2dGeom::new(input, kernel, oc, strides, dil, pad);
            assert!(g.oh > 0 && g.ow > 0, "case {i}");
            let x = rand_vec::<f64>(g.input_len(), 1 + i as u64);
            let w = rand_vec::<f64>(g.filter_len(), 100 + i as u64);
            let dy = rand_vec::<f64>(g.output_len(), 200 + i as u64);
            let what = format!("case {i} {g:?}");

            let mut y = vec![f64::NAN; g.output_len()];
            conv2d_forward(&g, &x, &w, &mut y);
            assert_close(&y, &naive_conv(&g, &x, &w), 1e-12, &format!("fwd {what}"));

            let mut dx = vec![f64::NAN; g.input_len()];
            conv2d_backward_input(&g, &dy, &w, &mut dx);
            assert_close(
                &dx,
                &naive_conv_dx(&g, &dy, &w),
                1e-12,
                &format!("dx {what}"),
            );
            // adjoint identity <conv(x, w), dy> = <x, dx>
            let (l, r) = (dot(&y, &dy), dot(&x, &dx));
            assert!((l - r).abs() < 1e-10 * (1.0 + l.abs()), "adjoint {what}");

            let mut dw = vec![f64::NAN; g.filter_len()];
            conv2d_backward_filter(&g, &x, &dy, &mut dw);
            assert_close(
                &dw,
                &naive_conv_dw(&g, &x, &dy),
                1e-12,
                &format!("dw {what}"),
            );
            let r = dot(&w, &dw);
            assert!(
                (l - r).abs() < 1e-10 * (1.0 + l.abs()),
                "filter adjoint {what}"
            );

            // Small column budget: one image per chunk, same results up to rounding.
            let mut y2 = vec![0.0; g.output_len()];
            conv2d_forward_budget(&g, &x, &w, &mut y2, 1);
            assert_close(&y2, &y, 1e-12, &format!("chunked fwd {what}"));
            let mut dx2 = vec![0.0; g.input_len()];
            conv2d_backward_input_budget(&g, &dy, &w, &mut dx2, 1);
            assert_close(&dx2, &dx, 1e-12, &format!("chunked dx {what}"));
            let mut dw2 = vec![0.0; g.filter_len()];
            conv2d_backward_filter_budget(&g, &x, &dy, &mut dw2, 1);
            assert_close(&dw2, &dw, 1e-12, &format!("chunked dw {what}"));

            // f32 agrees with f64.
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            let mut y32 = vec![0f32; g.output_len()];
            conv2d_forward(&g, &x32, &w32, &mut y32);
            let y32: Vec<f64> = y32.iter().map(|&v| v as f64).collect();
            assert_close(&y32, &y, 1e-5, &format!("f32 fwd {what}"));
        }
    }

    /// A random convolution geometry (odd sizes, strides, dilations, both paddings, channel
    /// counts that are not multiples of 16) from a xorshift stream.
    fn random_geom(s: &mut u64, small_k: bool) -> Conv2dGeom {
        let mut next = |m: usize| {
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            (*s % m as u64) as usize
        };
        loop {
            let n = 1 + next(5);
            let (h, w) = (1 + next(19), 1 + next(19));
            let c = if small_k {
                [1, 1, 2, 3][next(4)]
            } else {
                [1, 3, 5, 17, 32, 33][next(6)]
            };
            let oc = [1, 5, 16, 17, 32, 33, 40][next(7)];
            let kernel = [1 + next(4), 1 + next(4)];
            let strides = [1 + next(3), 1 + next(3)];
            let dil = [1 + next(2), 1 + next(2)];
            let pad = if next(2) == 0 {
                Padding::Same
            } else {
                Padding::Valid
            };
            let g = Conv2dGeom::new([n, h, w, c], kernel, oc, strides, dil, pad);
            if g.oh > 0 && g.ow > 0 {
                return g;
            }
        }
    }

    fn to_f64(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&a| a as f64).collect()
    }

    fn to_f32(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&a| a as f32).collect()
    }

    /// The direct small-K kernels and the tiled im2col paths (what `conv2d_forward`,
    /// `conv2d_backward_input` and `conv2d_backward_filter` run) against plain f64 loops, in f32
    /// (1e-5 relative) and f64 (1e-12), on random shapes.
    #[test]
    fn fast_paths_match_naive_on_random_shapes() {
        let mut s = 0x5EED_u64;
        for i in 0..120 {
            let g = random_geom(&mut s, i % 2 == 0);
            let what = format!("shape {i} {g:?}");
            let x = rand_vec::<f64>(g.input_len(), 7 + i);
            let w = rand_vec::<f64>(g.filter_len(), 8 + i);
            let dy = rand_vec::<f64>(g.output_len(), 9 + i);
            let (ny, ndx, ndw) = (
                naive_conv(&g, &x, &w),
                naive_conv_dx(&g, &dy, &w),
                naive_conv_dw(&g, &x, &dy),
            );
            let mut y = vec![f64::NAN; g.output_len()];
            conv2d_forward(&g, &x, &w, &mut y);
            assert_close(&y, &ny, 1e-12, &format!("f64 fwd {what}"));
            let mut dx = vec![f64::NAN; g.input_len()];
            conv2d_backward_input(&g, &dy, &w, &mut dx);
            assert_close(&dx, &ndx, 1e-12, &format!("f64 dx {what}"));
            let mut dw = vec![f64::NAN; g.filter_len()];
            conv2d_backward_filter(&g, &x, &dy, &mut dw);
            assert_close(&dw, &ndw, 1e-12, &format!("f64 dw {what}"));

            let (x32, w32, dy32) = (to_f32(&x), to_f32(&w), to_f32(&dy));
            let mut y = vec![f32::NAN; g.output_len()];
            conv2d_forward(&g, &x32, &w32, &mut y);
            assert_close(&to_f64(&y), &ny, 1e-5, &format!("f32 fwd {what}"));
            let mut dx = vec![f32::NAN; g.input_len()];
            conv2d_backward_input(&g, &dy32, &w32, &mut dx);
            assert_close(&to_f64(&dx), &ndx, 1e-5, &format!("f32 dx {what}"));
            let mut dw = vec![f32::NAN; g.filter_len()];
            conv2d_backward_filter(&g, &x32, &dy32, &mut dw);
            assert_close(&to_f64(&dw), &ndw, 1e-5, &format!("f32 dw {what}"));

            // The reference (batch-chunked im2col + GEMM) paths agree too.
            let mut yr = vec![0f32; g.output_len()];
            conv2d_forward_im2col(&g, &x32, &w32, &mut yr);
            assert_close(&to_f64(&yr), &to_f64(&y), 1e-5, &format!("ref fwd {what}"));
            let mut dwr = vec![0f32; g.filter_len()];
            conv2d_backward_filter_im2col(&g, &x32, &dy32, &mut dwr);
            assert_close(&to_f64(&dwr), &to_f64(&dw), 1e-5, &format!("ref dw {what}"));
            let mut dxr = vec![0f32; g.input_len()];
            conv2d_backward_input_im2col(&g, &dy32, &w32, &mut dxr);
            assert_close(&to_f64(&dxr), &to_f64(&dx), 1e-5, &format!("ref dx {what}"));
        }
    }

    /// The direct kernels compiled for each instruction set this CPU has (and the portable body)
    /// give the same bits: every element is the same sequence of multiplies and adds.
    #[test]
    fn direct_kernel_isas_agree_bitwise() {
        use crate::kernels::conv_direct::{self as cd, Isa};
        let isas = cd::available_isas();
        let mut s = 0xD1CE_u64;
        let mut tested = 0;
        for i in 0..40 {
            let g = random_geom(&mut s, true);
            if !cd::applies(&g) {
                continue;
            }
            tested += 1;
            let x = rand_vec::<f32>(g.input_len(), 30 + i);
            let w = rand_vec::<f32>(g.filter_len(), 31 + i);
            let b = rand_vec::<f32>(g.oc, 32 + i);
            let dy = rand_vec::<f32>(g.output_len(), 33 + i);
            let run = |isa: Isa| {
                let mut y = vec![0f32; g.output_len()];
                let epi = Epilogue {
                    bias: Some(&b),
                    relu: true,
                };
                cd::forward(isa, &g, &x, &w, &mut y, epi);
                let mut dw = vec![0f32; g.filter_len()];
                cd::backward_filter(isa, &g, &x, &dy, &mut dw);
                (y, dw)
            };
            let (y0, dw0) = run(Isa::Portable);
            for &isa in &isas[1..] {
                let (y1, dw1) = run(isa);
                assert!(bits_eq(&y0, &y1), "forward {isa:?} {g:?}");
                assert!(bits_eq(&dw0, &dw1), "filter {isa:?} {g:?}");
            }
        }
        assert!(tested > 10);
    }

    /// The direct forward's contract, pinned apart from any kernel: each element starts at
    /// `+0`, takes one fused multiply-add `fma(x, w, acc)` per tap in `(ky, kx, ci)` order, then
    /// `+ bias`, then ReLU; on every instruction set this CPU has. On random data a separate
    /// multiply and add gives other bits (checked, so the test tells the two orders apart).
    #[test]
    fn direct_forward_is_one_fma_per_tap_in_tap_order() {
        use crate::kernels::conv_direct as cd;
        let mut s = 0xF3A5_u64;
        // The 3x3 one-channel geometries with their own row kernels (conv1 of the seed CNN,
        // padded, row-strided, odd channel counts), then random ones.
        let mut geoms = vec![
            Conv2dGeom::new([2, 28, 28, 1], [3, 3], 32, [1, 1], [1, 1], Padding::Valid),
            Conv2dGeom::new([1, 9, 11, 1], [3, 3], 33, [1, 1], [1, 1], Padding::Same),
            Conv2dGeom::new([2, 12, 7, 1], [3, 3], 17, [2, 1], [2, 1], Padding::Valid),
        ];
        geoms.extend((0..40).map(|_| random_geom(&mut s, true)));
        let (mut tested, mut fma_matters) = (0, false);
        for (i, g) in (0u64..).zip(geoms) {
            if !cd::applies(&g) {
                continue;
            }
            tested += 1;
            let x = rand_vec::<f32>(g.input_len(), 40 + i);
            let w = rand_vec::<f32>(g.filter_len(), 41 + i);
            let b = rand_vec::<f32>(g.oc, 42 + i);
            let reference = |fused: bool| {
                let mut y = vec![0f32; g.output_len()];
                let [ta, tb] = taps_of(&g);
                for img in 0..g.n {
                    for_taps(ta, tb, |oy, ox, ky, kx, iy, ix| {
                        for o in 0..g.oc {
                            let at = ((img * g.oh + oy) * g.ow + ox) * g.oc + o;
                            for ci in 0..g.c {
                                let xv = x[((img * g.h + iy) * g.w + ix) * g.c + ci];
                                let wv = w[((ky * g.kw + kx) * g.c + ci) * g.oc + o];
                                y[at] = if fused {
                                    xv.mul_add(wv, y[at])
                                } else {
                                    y[at] + xv * wv
                                };
                            }
                        }
                    });
                }
                for (k, v) in y.iter_mut().enumerate() {
                    let t = *v + b[k % g.oc];
                    *v = if t > 0.0 { t } else { 0.0 };
                }
                y
            };
            let want = reference(true);
            fma_matters |= !bits_eq(&want, &reference(false));
            // Portable first, then each wider instruction set.
            for isa in cd::available_isas() {
                let mut y = vec![0f32; g.output_len()];
                let epi = Epilogue {
                    bias: Some(&b),
                    relu: true,
                };
                cd::forward(isa, &g, &x, &w, &mut y, epi);
                assert!(bits_eq(&y, &want), "{isa:?} {g:?}");
            }
        }
        assert!(tested > 10 && fma_matters);
    }

    /// `conv2d_forward_fused` equals the unfused chain bit for bit, on the direct and the tiled
    /// path.
    #[test]
    fn fused_bias_relu_matches_unfused() {
        for (input, oc, pad) in [
            ([3, 28, 28, 1], 32, Padding::Valid),
            ([2, 9, 7, 2], 17, Padding::Same),
            ([3, 13, 13, 32], 64, Padding::Valid),
            ([2, 6, 5, 33], 5, Padding::Same),
        ] {
            let g = Conv2dGeom::new(input, [3, 3], oc, [1, 1], [1, 1], pad);
            let x = rand_vec::<f32>(g.input_len(), 41);
            let w = rand_vec::<f32>(g.filter_len(), 42);
            let b = rand_vec::<f32>(oc, 43);
            let mut want = vec![0f32; g.output_len()];
            conv2d_forward(&g, &x, &w, &mut want);
            for (v, o) in want.iter_mut().zip((0..oc).cycle()) {
                let z = *v + b[o];
                *v = if z > 0.0 { z } else { 0.0 };
            }
            let mut got = vec![f32::NAN; g.output_len()];
            conv2d_forward_fused(&g, &x, &w, Some(&b), true, &mut got);
            assert!(bits_eq(&got, &want), "{input:?}");
            assert!(got.iter().all(|&v| v >= 0.0));
        }
    }

    /// Fast paths on shapes big enough to run in parallel: 1 and 2 threads give the same bits.
    #[test]
    fn fast_paths_deterministic_across_threads() {
        for (input, k, oc, st, pad) in [
            ([5, 27, 23, 3], [3, 3], 17, [1, 1], Padding::Same),
            ([4, 30, 30, 1], [5, 5], 33, [2, 1], Padding::Valid),
            ([5, 15, 14, 33], [3, 3], 40, [2, 2], Padding::Same),
            ([7, 13, 13, 32], [3, 3], 64, [1, 1], Padding::Valid),
        ] {
            let g = Conv2dGeom::new(input, k, oc, st, [1, 1], pad);
            let x = rand_vec::<f32>(g.input_len(), 51);
            let w = rand_vec::<f32>(g.filter_len(), 52);
            let b = rand_vec::<f32>(oc, 53);
            let dy = rand_vec::<f32>(g.output_len(), 54);
            let run = |threads: usize| {
                pool(threads).install(|| {
                    let mut y = vec![0f32; g.output_len()];
                    conv2d_forward_fused(&g, &x, &w, Some(&b), true, &mut y);
                    let mut dx = vec![0f32; g.input_len()];
                    conv2d_backward_input(&g, &dy, &w, &mut dx);
                    let mut dw = vec![0f32; g.filter_len()];
                    conv2d_backward_filter(&g, &x, &dy, &mut dw);
                    (y, dx, dw)
                })
            };
            let (y1, dx1, dw1) = run(1);
            let (y2, dx2, dw2) = run(2);
            assert!(bits_eq(&y1, &y2), "forward {input:?}");
            assert!(bits_eq(&dx1, &dx2), "backward input {input:?}");
            assert!(bits_eq(&dw1, &dw2), "backward filter {input:?}");
        }
    }

    #[test]
    fn explicit_causal_padding() {
        // Keras causal conv1d: pad d*(k-1) on the left only.
        let (k, d) = (3, 2);
        let g = Conv2dGeom::with_explicit_pads(
            [1, 1, 6, 1],
            [1, k],
            1,
            [1, 1],
            [1, d],
            [0, 0, d * (k - 1), 0],
        );
        assert_eq!((g.oh, g.ow), (1, 6));
        let x: Vec<f64> = (1..=6).map(|v| v as f64).collect();
        let mut y = vec![0.0; 6];
        conv2d_forward(&g, &x, &[1.0, 1.0, 1.0], &mut y);
        // y[t] = x[t-4] + x[t-2] + x[t]
        assert_eq!(y, vec![1.0, 2.0, 4.0, 6.0, 9.0, 12.0]);
    }

    #[test]
    fn conv1d_hand_examples() {
        let g = Conv2dGeom::new([1, 1, 6, 1], [1, 3], 1, [1, 2], [1, 1], Padding::Same);
        let x: Vec<f32> = (1..=6).map(|v| v as f32).collect();
        let mut y = vec![0f32; g.output_len()];
        conv2d_forward(&g, &x, &[1.0; 3], &mut y);
        assert_eq!(y, vec![6.0, 12.0, 11.0]);

        let g = Conv2dGeom::new([1, 1, 5, 1], [1, 4], 1, [1, 1], [1, 1], Padding::Same);
        let x: Vec<f32> = (1..=5).map(|v| v as f32).collect();
        let mut y = vec![0f32; g.output_len()];
        conv2d_forward(&g, &x, &[1.0; 4], &mut y);
        assert_eq!(y, vec![6.0, 10.0, 14.0, 12.0, 9.0]);

        let g = Conv2dGeom::new([1, 28, 28, 1], [3, 3], 1, [2, 2], [1, 1], Padding::Same);
        assert_eq!((g.oh, g.ow, g.pad_top, g.pad_left), (14, 14, 0, 0));
        let g = Conv2dGeom::new([1, 28, 28, 1], [3, 3], 1, [2, 2], [1, 1], Padding::Valid);
        assert_eq!((g.oh, g.ow), (13, 13));
    }

    #[test]
    fn transpose_conv_is_backward_input() {
        // conv2d_transpose of a 2x2 single-channel input, 3x3 ones kernel, stride 2, same
        // padding: forward geometry is 4x4 -> 2x2 with pads (0 top, 1 bottom).
        let g = Conv2dGeom::new([1, 4, 4, 1], [3, 3], 1, [2, 2], [1, 1], Padding::Same);
        assert_eq!((g.oh, g.ow, g.pad_top), (2, 2, 0));
        let dy = [1.0f64, 2.0, 3.0, 4.0];
        let mut out = vec![0.0; 16];
        conv2d_backward_input(&g, &dy, &[1.0; 9], &mut out);
        #[rustfmt::skip]
        let want = [
            1.0, 1.0, 3.0, 2.0,
            1.0, 1.0, 3.0, 2.0,
            4.0, 4.0, 10.0, 6.0,
            3.0, 3.0, 7.0, 4.0,
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn degenerate_sizes() {
        // zero input channels: output is zero
        let g = Conv2dGeom::new([2, 3, 3, 0], [2, 2], 2, [1, 1], [1, 1], Padding::Same);
        let mut y = vec![f32::NAN; g.output_len()];
        conv2d_forward(&g, &[], &[], &mut y);
        assert!(y.iter().all(|&v| v == 0.0));
        let mut dw: Vec<f32> = vec![];
        conv2d_backward_filter(&g, &[], &y, &mut dw);
        // zero output channels: dx is zero
        let g = Conv2dGeom::new([2, 3, 3, 2], [2, 2], 0, [1, 1], [1, 1], Padding::Same);
        let mut dx = vec![f32::NAN; g.input_len()];
        conv2d_backward_input(&g, &[], &[], &mut dx);
        assert!(dx.iter().all(|&v| v == 0.0));
        // empty batch
        let g = Conv2dGeom::new([0, 3, 3, 2], [2, 2], 4, [1, 1], [1, 1], Padding::Valid);
        let w = rand_vec::<f32>(g.filter_len(), 3);
        let mut dw = vec![f32::NAN; g.filter_len()];
        conv2d_backward_filter(&g, &[], &[], &mut dw);
        assert!(dw.iter().all(|&v| v == 0.0));
        conv2d_forward(&g, &[], &w, &mut []);
        conv2d_backward_input(&g, &[], &w, &mut []);
        // depthwise with multiplier 0: empty output, zero input gradient
        let g = DepthwiseGeom::new([2, 3, 3, 2], [2, 2], 0, [1, 1], [1, 1], Padding::Same);
        let mut dx = vec![f32::NAN; g.input_len()];
        depthwise_conv2d_backward_input(&g, &[], &[], &mut dx);
        assert!(dx.iter().all(|&v| v == 0.0));
        depthwise_conv2d_forward(&g, &dx, &[], &mut []);
        depthwise_conv2d_backward_filter(&g, &dx, &[], &mut []);
    }

    #[test]
    fn conv2d_deterministic_across_threads() {
        for (input, oc) in [([3, 28, 28, 1], 32), ([3, 13, 13, 32], 64)] {
            let g = Conv2dGeom::new(input, [3, 3], oc, [1, 1], [1, 1], Padding::Valid);
            let x = rand_vec::<f32>(g.input_len(), 11);
            let w = rand_vec::<f32>(g.filter_len(), 12);
            let dy = rand_vec::<f32>(g.output_len(), 13);
            let run = |threads: usize| {
                pool(threads).install(|| {
                    let mut y = vec![0f32; g.output_len()];
                    conv2d_forward(&g, &x, &w, &mut y);
                    let mut dx = vec![0f32; g.input_len()];
                    conv2d_backward_input(&g, &dy, &w, &mut dx);
                    let mut dw = vec![0f32; g.filter_len()];
                    conv2d_backward_filter(&g, &x, &dy, &mut dw);
                    (y, dx, dw)
                })
            };
            let (y1, dx1, dw1) = run(1);
            let (y2, dx2, dw2) = run(2);
            assert!(bits_eq(&y1, &y2), "forward {input:?}");
            assert!(bits_eq(&dx1, &dx2), "backward input {input:?}");
            assert!(bits_eq(&dw1, &dw2), "backward filter {input:?}");
        }
    }

    fn dw_taps(g: &DepthwiseGeom) -> [(usize, usize, usize, usize, usize, usize); 2] {
        [
            (g.h, g.w, g.kh, g.kw, g.oh, g.ow),
            (g.sh, g.sw, g.dh, g.dw, g.pad_top, g.pad_left),
        ]
    }

    /// Naive depthwise forward, dx and dw together.
    #[allow(clippy::type_complexity)]
    fn naive_depthwise(
        g: &DepthwiseGeom,
        x: &[f64],
        w: &[f64],
        dy: &[f64],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut y = vec![0.0; g.output_len()];
        let mut dx = vec![0.0; g.input_len()];
        let mut dw = vec![0.0; g.filter_len()];
        let cm = g.out_channels();
        let [a, b] = dw_taps(g);
        for img in 0..g.n {
            for_taps(a, b, |oy, ox, ky, kx, iy, ix| {
                for ci in 0..g.c {
                    for m in 0..g.mult {
                        let xi = ((img * g.h + iy) * g.w + ix) * g.c + ci;
                        let wi = ((ky * g.kw + kx) * g.c + ci) * g.mult + m;
                        let yi = ((img * g.oh + oy) * g.ow + ox) * cm + ci * g.mult + m;
                        y[yi] += x[xi] * w[wi];
                        dx[xi] += dy[yi] * w[wi];
                        dw[wi] += x[xi] * dy[yi];
                    }
                }
            });
        }
        (y, dx, dw)
    }

    #[test]
    fn depthwise_matches_naive() {
        for (i, &(input, kernel, mult, strides, dil, pad)) in cases().iter().enumerate() {
            for mult in [1, mult.min(3)] {
                let g = DepthwiseGeom::new(input, kernel, mult, strides, dil, pad);
                let x = rand_vec::<f64>(g.input_len(), 300 + i as u64);
                let w = rand_vec::<f64>(g.filter_len(), 400 + i as u64);
                let dy = rand_vec::<f64>(g.output_len(), 500 + i as u64);
                let (ny, ndx, ndw) = naive_depthwise(&g, &x, &w, &dy);
                let what = format!("case {i} {g:?}");
                let mut y = vec![f64::NAN; g.output_len()];
                depthwise_conv2d_forward(&g, &x, &w, &mut y);
                assert_close(&y, &ny, 1e-12, &format!("dw fwd {what}"));
                let mut dx = vec![f64::NAN; g.input_len()];
                depthwise_conv2d_backward_input(&g, &dy, &w, &mut dx);
                assert_close(&dx, &ndx, 1e-12, &format!("dw dx {what}"));
                let mut dw = vec![f64::NAN; g.filter_len()];
                depthwise_conv2d_backward_filter(&g, &x, &dy, &mut dw);
                assert_close(&dw, &ndw, 1e-12, &format!("dw dw {what}"));
                let l = dot(&y, &dy);
                assert!((l - dot(&x, &dx)).abs() < 1e-10 * (1.0 + l.abs()));
                assert!((l - dot(&w, &dw)).abs() < 1e-10 * (1.0 + l.abs()));
            }
        }
    }

    #[test]
    fn depthwise_deterministic_across_threads() {
        for mult in [1, 2] {
            let g =
                DepthwiseGeom::new([5, 13, 13, 32], [3, 3], mult, [1, 1], [1, 1], Padding::Same);
            let x = rand_vec::<f32>(g.input_len(), 21);
            let w = rand_vec::<f32>(g.filter_len(), 22);
            let dy = rand_vec::<f32>(g.output_len(), 23);
            let run = |threads: usize| {
                pool(threads).install(|| {
                    let mut y = vec![0f32; g.output_len()];
                    depthwise_conv2d_forward(&g, &x, &w, &mut y);
                    let mut dx = vec![0f32; g.input_len()];
                    depthwise_conv2d_backward_input(&g, &dy, &w, &mut dx);
                    let mut dw = vec![0f32; g.filter_len()];
                    depthwise_conv2d_backward_filter(&g, &x, &dy, &mut dw);
                    (y, dx, dw)
                })
            };
            let (y1, dx1, dw1) = run(1);
            let (y2, dx2, dw2) = run(2);
            assert!(bits_eq(&y1, &y2));
            assert!(bits_eq(&dx1, &dx2));
            assert!(bits_eq(&dw1, &dw2));
        }
    }
}
