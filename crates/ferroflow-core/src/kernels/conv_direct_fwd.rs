//! AVX-512F `f32` micro-kernels of the direct forward convolution (small `K = kh*kw*c`, see
//! [`conv_direct`](super::conv_direct)): plain output rows (with `_FusedConv2D`'s bias and ReLU),
//! and the fused 2x2 max-pool of `_FusedConv2DMaxPool` with its max and argmax taken in
//! registers.
//!
//! The generic kernel of `conv_direct` keeps blocks of 4 pixels x 16 channels (4 accumulators:
//! bound by the add latency). Here, for each tap, the filter's channel vectors are loaded once and
//! reused over a block of many output pixels: 12 pixels x 2 vectors (32 channels) or 16 pixels x
//! 1 vector = 16 to 24 independent accumulators in `zmm` registers, the input value broadcast from
//! the gathered padded rows; tap loop outside, pixel loop inside; then the epilogue (bias, ReLU)
//! and the store (masked for the last vector when `oc` is not a multiple of 16).
//!
//! The pooled kernel computes the two convolution rows of a pooled row together (2 rows x 2Q
//! columns x V vectors of accumulators, `4QV <= 24`), applies bias and ReLU, takes the max and the
//! argmax of each 2x2 window in registers and writes only the pooled row (and its `u8` argmax, or
//! nothing more when nobody reads it). Other windows take `conv_direct`'s row kernel (which runs
//! this file's row kernel) and `conv_pool`'s pooling pass.
//!
//! A 3x3 filter over one input channel with column stride and dilation 1 (conv1 of the seed CNN,
//! 28x28x1 -> 32) takes its own row kernels ([`FastFwd`]'s `wreg`): the whole filter of a group of
//! 32 channels (9 taps x 2 vectors = 18 `zmm` registers) is loaded once per row and stays in
//! registers, the taps are unrolled with constant offsets from three input-row pointers (no tap
//! offset table, no filter loads in the tap loop), and blocks of at most 6 pixels x 2 vectors (12
//! accumulators) or, for the pool, one pooled pixel (2x2 elements x 2 vectors) fit in the 32
//! registers; a last group of 16 channels takes 1 vector (9 filter registers, 16 accumulators).
//! Same sums in the same order as the generic blocks. `FF_CONV_FWD_WREG=off` sends those
//! geometries back to the generic blocks (A/B timing).
//!
//! Bit-identical to the portable kernel: every convolution element starts at `+0`, then for each
//! tap in order `acc = fma(x, w, acc)` (one rounding: `_mm512_fmadd_ps`, the portable body's
//! `mul_add`; since the fourteenth session, before it a separate multiply and add), then `+ bias`, then
//! ReLU as `if v > 0 { v } else { 0 }` (`max(v, 0)` with x86's operand rule: the second operand
//! unless the first is greater). The pooled value is MaxPool's (the window's first element, a
//! strictly greater value replaces it: `max(v, best)` again, or a `>` compare and a blend), the
//! argmax `i*pw + j` of the first maximum in row-major order, as `conv_pool`'s `pool_rows`
//! documents (NaN rule included: an unordered compare never replaces).
//!
//! Chosen at run time: [`FastFwd::new`] returns a plan only for `f32` on [`Isa::Avx512`] (which the
//! caller took from `conv_direct::detect_isa`), or on [`Isa::Avx2`] for the 3x3 one-channel
//! geometry alone (the AVX2 kernels of `conv_direct_fwd_avx2.rs`, same bits; `FF_CONV_FWD_AVX2=off`
//! sends it back to the generic bodies compiled for AVX2), unless the process was started with
//! `FF_CONV_DIRECT_FWD=off` (or `0`), which sends everything back to the generic kernel (A/B
//! timing in one binary).

use crate::kernels::conv::Conv2dGeom;
use crate::kernels::conv_direct::{self, Epilogue, Isa};
use crate::kernels::float::{as_f32, as_f32_mut};
use crate::kernels::{env_switch, Float};
use std::any::TypeId;
use std::sync::OnceLock;

/// Vector width in `f32` lanes.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const L: usize = 16;
/// Most output pixels per block of the plain kernel with 2 vectors (24 accumulators).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const PIX2: usize = 12;
/// Most output pixels per block of the plain kernel with 1 vector (16 accumulators).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const PIX1: usize = 16;
/// Most pooled columns per block of the pooled kernel with 2 vectors (2x2x3x2 = 24 accumulators).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const PQ2: usize = 3;
/// Most pooled columns per block of the pooled kernel with 1 vector (2x2x4 = 16 accumulators).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const PQ1: usize = 4;

/// Whether these kernels are switched on (`FF_CONV_DIRECT_FWD` unset or anything but `off`/`0`;
/// read once per process).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    env_switch::on(&ON, "FF_CONV_DIRECT_FWD")
}

/// Whether the 3x3 single-channel kernels with the filter held in registers are switched on
/// (`FF_CONV_FWD_WREG` unset or anything but `off`/`0`; read once per process). Off: those
/// convolutions take the generic blocks of this file.
pub fn wreg_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    env_switch::on(&ON, "FF_CONV_FWD_WREG")
}

/// Whether the AVX2 kernels of the 3x3 one-channel geometry run on CPUs without AVX-512
/// (`FF_CONV_FWD_AVX2` unset or anything but `off`/`0`; read once per process). Off: those
/// convolutions take the generic bodies of `conv_direct` compiled for AVX2.
pub fn avx2_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    env_switch::on(&ON, "FF_CONV_FWD_AVX2")
}

/// The prepared AVX-512 (or, for the 3x3 one-channel geometry, AVX2) forward pass of one call:
/// the filter and bias padded to `ocp` (a multiple of 16) channels, the padded-row layout and
/// each tap's offset in the gathered rows.
pub(crate) struct FastFwd<'a> {
    g: &'a Conv2dGeom,
    x: &'a [f32],
    /// `[K, ocp]`, zero columns past `oc`.
    w: Vec<f32>,
    /// `ocp` long, or empty for no bias.
    bias: Vec<f32>,
    relu: bool,
    ocp: usize,
    /// Row stride of the rows the kernels read: one padded input row (`wpad * c`, covering input
    /// columns `-pad_left..`) in the gather scratch, or `w * c` when they read `x` in place.
    prow: usize,
    /// Elements of a row the kernels read (`wpad * c`).
    wpadc: usize,
    /// No padding is ever read (no top/left padding, every row and column read inside the
    /// input): the kernels read the input rows in place, with no gather.
    direct: bool,
    /// Offset of tap `kk = (ky*kw + kx)*c + ci` in the rows read: `ky*dh*prow + kx*dw*c + ci`.
    off: Vec<usize>,
    /// The geometry is a 3x3 filter over one input channel with column stride and dilation 1
    /// (tap `(ky, kx)` at `off[3*ky] + kx`) and [`wreg_enabled`]: the rows take the kernels with
    /// the whole filter of a channel group in registers.
    wreg: bool,
    /// The plan runs the AVX2 kernels (`conv_direct_fwd_avx2`; [`Isa::Avx2`], a
    /// [`wreg_geom`](Self::wreg_geom) geometry and [`avx2_enabled`]) instead of the AVX-512 ones.
    avx2: bool,
}

impl<'a> FastFwd<'a> {
    /// The plan, when these kernels take the call: `T` is `f32`, `isa` is [`Isa::Avx512`] (which
    /// the CPU must support: take it from `conv_direct::detect_isa`) and they are [`enabled`].
    /// The caller checks `conv_direct::applies`.
    pub(crate) fn new<T: Float>(
        isa: Isa,
        g: &'a Conv2dGeom,
        x: &'a [T],
        w: &[T],
        epi: Epilogue<'_, T>,
    ) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        let (ok, avx2) = match isa {
            Isa::Avx512 => (true, false),
            Isa::Avx2 => {
                let on = avx2_enabled() && Self::wreg_geom(g);
                (on, on)
            }
            Isa::Portable => (false, false),
        };
        #[cfg(not(target_arch = "x86_64"))]
        let (ok, avx2) = {
            let _ = isa;
            (false, false)
        };
        if !ok || !enabled() {
            return None;
        }
        let x = as_f32(x)?;
        let w = as_f32(w)?;
        let k = g.kh * g.kw * g.c;
        let ocp = g.oc.div_ceil(L) * L;
        let mut wp = vec![0f32; k * ocp];
        for (dst, src) in wp.chunks_exact_mut(ocp).zip(w.chunks_exact(g.oc)) {
            dst[..g.oc].copy_from_slice(src);
        }
        let bias = match epi.bias {
            Some(b) => {
                let b = as_f32(b)?;
                let mut v = vec![0f32; ocp];
                v[..g.oc].copy_from_slice(b);
                v
            }
            None => Vec::new(),
        };
        let wpad = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
        let direct = g.pad_top == 0
            && g.pad_left == 0
            && (g.oh - 1) * g.sh + (g.kh - 1) * g.dh < g.h
            && wpad <= g.w;
        let prow = if direct { g.w * g.c } else { wpad * g.c };
        let mut off = Vec::with_capacity(k);
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                for ci in 0..g.c {
                    off.push(ky * g.dh * prow + kx * g.dw * g.c + ci);
                }
            }
        }
        Some(FastFwd {
            g,
            x,
            w: wp,
            bias,
            relu: epi.relu,
            ocp,
            prow,
            wpadc: wpad * g.c,
            direct,
            off,
            wreg: !avx2 && wreg_enabled() && Self::wreg_geom(g),
            avx2,
        })
    }

    /// Whether `g` is a geometry of the register-filter kernels: one input channel, a 3x3 filter,
    /// column stride and dilation 1 (any row stride, row dilation, padding and `oc`).
    fn wreg_geom(g: &Conv2dGeom) -> bool {
        g.c == 1 && g.kh == 3 && g.kw == 3 && g.sw == 1 && g.dw == 1
    }

    /// Input rows that `nrows` consecutive output rows read.
    fn span(&self, nrows: usize) -> usize {
        let g = self.g;
        (nrows - 1) * g.sh + (g.kh - 1) * g.dh + 1
    }

    /// Length of the gather scratch of [`row`](Self::row) (none when reading in place).
    pub(crate) fn row_scratch_len(&self) -> usize {
        if self.direct {
            0
        } else {
            self.span(1) * self.prow
        }
    }

    /// Length of the gather scratch of the pooled kernel (two convolution rows).
    fn pool_scratch_len(&self) -> usize {
        if self.direct {
            0
        } else {
            self.span(2) * self.prow
        }
    }

    /// The rows that output rows `oy0..oy0+nrows` of image `img` read, `(span-1)*prow + wpad*c`
    /// long (the kernels' last read is its last element): `x` itself when `direct`, else
    /// gathered into `scratch` (at least `span*prow` long).
    fn src<'s>(
        &'s self,
        img: usize,
        oy0: usize,
        nrows: usize,
        scratch: &'s mut [f32],
    ) -> &'s [f32] {
        let need = (self.span(nrows) - 1) * self.prow + self.wpadc;
        if self.direct {
            let g = self.g;
            let at = (img * g.h + oy0 * g.sh) * g.w * g.c;
            return &self.x[at..at + need];
        }
        self.gather(img, oy0, nrows, scratch);
        &scratch[..need]
    }

    /// Copies the input rows that output rows `oy0..oy0+nrows` of image `img` read into `rows`
    /// (`span(nrows)` padded rows of `prow`), zeros for padding: input row `oy0*sh - pad_top + t`
    /// lands at row `t`, input column `ix` at `(ix + pad_left) * c`.
    fn gather(&self, img: usize, oy0: usize, nrows: usize, rows: &mut [f32]) {
        let g = self.g;
        let c = g.c;
        let row_len = g.w * c;
        let x_img = &self.x[img * g.h * row_len..(img + 1) * g.h * row_len];
        let span = self.span(nrows);
        let lead = g.pad_left.min(self.prow / c);
        let avail = g.w.min(self.prow / c - lead);
        for (t, dst) in rows[..span * self.prow]
            .chunks_exact_mut(self.prow)
            .enumerate()
        {
            let iy = (oy0 * g.sh + t) as isize - g.pad_top as isize;
            if iy < 0 || iy >= g.h as isize {
                dst.fill(0.0);
                continue;
            }
            let src = &x_img[iy as usize * row_len..(iy as usize + 1) * row_len];
            dst[..lead * c].fill(0.0);
            dst[lead * c..(lead + avail) * c].copy_from_slice(&src[..avail * c]);
            dst[(lead + avail) * c..].fill(0.0);
        }
    }

    /// Output row `r` (`image*oh + oy`) into `yrow` (`ow*oc`), with the epilogue; `rows` is a
    /// scratch of at least [`row_scratch_len`](Self::row_scratch_len). `T` is `f32` (the plan
    /// exists only then).
    pub(crate) fn row<T: Float>(&self, rows: &mut [T], r: usize, yrow: &mut [T]) {
        let (Some(rows), Some(yrow)) = (as_f32_mut(rows), as_f32_mut(yrow)) else {
            return;
        };
        assert!(yrow.len() >= self.g.ow * self.g.oc);
        // SAFETY: `yrow` holds `ow*oc` elements (checked just above).
        unsafe { self.row_to(rows, r, yrow.as_mut_ptr()) };
    }

    /// [`row`](Self::row) writing through a raw pointer.
    ///
    /// # Safety
    /// `out` is valid for `ow*oc` writes.
    unsafe fn row_to(&self, rows: &mut [f32], r: usize, out: *mut f32) {
        let g = self.g;
        let rows = self.src(r / g.oh, r % g.oh, 1, rows);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the plan exists only for `Isa::Avx512` (or `Isa::Avx2` when `avx2`), which
        // callers take from `detect_isa` (the CPU has AVX-512F, or AVX2 and FMA); `rows` is `src`'s (its
        // length is what `plain_row` reads), `out` by contract.
        unsafe {
            if self.avx2 {
                avx2::wreg_rows(self, rows, 1, out)
            } else if self.wreg {
                avx512::wreg_rows(self, rows, 1, out)
            } else {
                avx512::plain_row(self, rows, out)
            }
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (out, rows);
    }

    /// Output rows per parallel task of the plain pass: `ROWS_PER_TASK`, or for the
    /// register-filter kernels reading in place (which take the rows of an image in one call,
    /// loading the filter once) up to a whole image while there are at least 16 tasks (conv1 at
    /// batch 32: tasks of 26 rows). Any split gives the same bits.
    fn rows_per_task(&self) -> usize {
        let g = self.g;
        if self.whole_rows() {
            (g.n * g.oh / 16).clamp(ROWS_PER_TASK, g.oh.max(ROWS_PER_TASK))
        } else {
            ROWS_PER_TASK
        }
    }

    /// Whether the rows of an image are computed in one call (the register-filter and AVX2
    /// kernels reading the input in place).
    fn whole_rows(&self) -> bool {
        (self.wreg || self.avx2) && self.direct
    }

    /// Output rows `r0..r0+nrows` (`image*oh + oy`) into `out`, as [`row_to`](Self::row_to) on
    /// each; the register-filter kernels reading in place take the rows of one image in one
    /// call (the filter loaded once for them).
    ///
    /// # Safety
    /// `out` is valid for `nrows*ow*oc` writes.
    unsafe fn rows_to(&self, rows: &mut [f32], r0: usize, nrows: usize, out: *mut f32) {
        let g = self.g;
        let row_len = g.ow * g.oc;
        if !self.whole_rows() {
            for j in 0..nrows {
                // SAFETY: row `j` of the `nrows` that `out` is valid for.
                unsafe { self.row_to(rows, r0 + j, out.add(j * row_len)) };
            }
            return;
        }
        let mut r = r0;
        while r < r0 + nrows {
            let (img, oy) = (r / g.oh, r % g.oh);
            let n = (g.oh - oy).min(r0 + nrows - r);
            let src = self.src(img, oy, n, rows);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as `row_to`; `src` holds the input rows of output rows `oy..oy+n` of
            // image `img` (`wreg_rows` asserts its reads), the writes are rows `r - r0..` of
            // the `nrows` that `out` is valid for.
            unsafe {
                let o = out.add((r - r0) * row_len);
                if self.avx2 {
                    avx2::wreg_rows(self, src, n, o)
                } else {
                    avx512::wreg_rows(self, src, n, o)
                }
            };
            #[cfg(not(target_arch = "x86_64"))]
            let _ = src;
            r += n;
        }
    }

    /// Pooled rows `pr0..pr0+nrows` (`pr = image*poh + py`) of the 2x2 max-pool (stride 2, valid)
    /// of the convolution with its epilogue, through raw pointers: the pooled rows at `out`, their
    /// argmax at `arg` (null: none); `rows` is a scratch of [`pool_scratch_len`](Self::pool_scratch_len).
    ///
    /// # Safety
    /// `out` (and `arg` unless null) valid for `nrows * (ow/2) * oc` writes.
    unsafe fn pool_rows_to(
        &self,
        rows: &mut [f32],
        pr0: usize,
        nrows: usize,
        out: *mut f32,
        arg: *mut u8,
    ) {
        let g = self.g;
        let poh = g.oh / 2;
        let prow_len = (g.ow / 2) * g.oc;
        if prow_len == 0 {
            return;
        }
        for k in 0..nrows {
            let pr = pr0 + k;
            let src = self.src(pr / poh, 2 * (pr % poh), 2, rows);
            // SAFETY: row `k` of the `nrows` the caller's pointers are valid for.
            let (o, a) = unsafe {
                let a = if arg.is_null() {
                    arg
                } else {
                    arg.add(k * prow_len)
                };
                (out.add(k * prow_len), a)
            };
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the plan exists only for `Isa::Avx512` (see `row_to`; `simd::detected`
            // reports that level only with AVX-512 F, BW, DQ and VL), or `Isa::Avx2` when
            // `avx2`; `src` is `src`'s rows of two convolution rows, `o` and `a` one pooled row
            // each.
            unsafe {
                if self.avx2 {
                    avx2::wpool_row(self, src, o, a)
                } else if self.wreg {
                    avx512::wpool_row(self, src, o, a)
                } else {
                    avx512::pool_row(self, src, o, a)
                }
            };
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (o, a, src);
        }
    }

    /// Pooled rows `pr0..` (`pr = image*poh + py`) of the 2x2 max-pool (stride 2, valid) of the
    /// convolution with its epilogue into `ps` (whole rows of `(ow/2)*oc`), and their argmax into
    /// `as_` (the same length, or empty for none). `buf` is a scratch (resized here). `T` is
    /// `f32` (the plan exists only then).
    pub(crate) fn pool2x2_rows<T: Float>(
        &self,
        buf: &mut Vec<T>,
        pr0: usize,
        ps: &mut [T],
        as_: &mut [u8],
    ) {
        let prow_len = (self.g.ow / 2) * self.g.oc;
        buf.resize(self.pool_scratch_len(), T::zero());
        let (Some(rows), Some(ps)) = (as_f32_mut(buf), as_f32_mut(ps)) else {
            return;
        };
        if prow_len == 0 {
            return;
        }
        assert!(as_.is_empty() || as_.len() == ps.len());
        let arg = if as_.is_empty() {
            std::ptr::null_mut()
        } else {
            as_.as_mut_ptr()
        };
        // SAFETY: `ps` (and `as_` when not empty) hold `ps.len() / prow_len` whole rows.
        unsafe { self.pool_rows_to(rows, pr0, ps.len() / prow_len, ps.as_mut_ptr(), arg) };
    }

    /// The whole output `[n, oh, ow, oc]` in a new vector, each element written once (never
    /// zero-filled first); rows in parallel in tasks of [`rows_per_task`](Self::rows_per_task).
    fn forward_new(&self) -> Vec<f32> {
        let g = self.g;
        let row_len = g.ow * g.oc;
        let len = g.n * g.oh * row_len;
        let work = len.saturating_mul(self.off.len());
        let mut y: Vec<f32> = Vec::with_capacity(len);
        par_rows(
            &mut y.spare_capacity_mut()[..len],
            row_len,
            &mut [] as &mut [u8],
            0,
            self.rows_per_task(),
            work,
            |rows, r0, ys, _| {
                rows.resize(self.row_scratch_len(), 0.0);
                // SAFETY: `ys` holds `ys.len() / row_len` whole rows.
                unsafe { self.rows_to(rows, r0, ys.len() / row_len, ys.as_mut_ptr() as *mut f32) };
            },
        );
        // SAFETY: `par_rows` ran the closure over every whole row of the `len` elements, and
        // `plain_row` writes every element of a row (all pixels, every channel `< oc`).
        unsafe { y.set_len(len) };
        y
    }

    /// The pooled output `[n, oh/2, ow/2, oc]` and (when `with_arg`) its argmax in new vectors,
    /// each element written once (never zero-filled first); pooled rows in parallel.
    fn pool2x2_new(&self, with_arg: bool) -> (Vec<f32>, Vec<u8>) {
        let g = self.g;
        let prow_len = (g.ow / 2) * g.oc;
        let len = g.n * (g.oh / 2) * prow_len;
        let alen = if with_arg { len } else { 0 };
        let work = (2 * len * 2).saturating_mul(self.off.len());
        let mut p: Vec<f32> = Vec::with_capacity(len);
        let mut a: Vec<u8> = Vec::with_capacity(alen);
        if len > 0 {
            par_rows(
                &mut p.spare_capacity_mut()[..len],
                prow_len,
                &mut a.spare_capacity_mut()[..alen],
                if with_arg { prow_len } else { 0 },
                POOL_ROWS_PER_TASK,
                work,
                |rows, pr0, ps, as_| {
                    rows.resize(self.pool_scratch_len(), 0.0);
                    let arg = if as_.is_empty() {
                        std::ptr::null_mut()
                    } else {
                        as_.as_mut_ptr() as *mut u8
                    };
                    // SAFETY: `ps` (and `as_` when not empty) hold whole pooled rows.
                    unsafe {
                        self.pool_rows_to(
                            rows,
                            pr0,
                            ps.len() / prow_len,
                            ps.as_mut_ptr() as *mut f32,
                            arg,
                        )
                    };
                },
            );
        }
        // SAFETY: `par_rows` ran the closure over every whole pooled row, and `pool_row` writes
        // every element of a pooled row (and of its argmax row when asked).
        unsafe {
            p.set_len(len);
            a.set_len(alen);
        }
        (p, a)
    }
}

/// Output rows per parallel task of [`FastFwd::forward_new`] (as `conv_direct`'s forward).
const ROWS_PER_TASK: usize = 4;
/// Pooled rows per parallel task of the pooled kernel (as `conv_pool`'s direct path).
const POOL_ROWS_PER_TASK: usize = 2;
/// Below this many multiply-adds a pass stays on the calling thread (as `conv_direct`).
const PAR_MIN_WORK: usize = 1 << 17;

/// Runs `f(scratch, first row, rows of a, rows of b)` over chunks of `per_task` rows of `a`
/// (rows of `a_row` elements) and of `b` (rows of `b_row`; `b` may be empty), in parallel when
/// the work (`work` multiply-adds) is large enough and there are several threads. Every element
/// of a row depends only on the row, so the split never changes a result.
#[allow(clippy::too_many_arguments)]
fn par_rows<A: Send, B: Send>(
    a: &mut [A],
    a_row: usize,
    b: &mut [B],
    b_row: usize,
    per_task: usize,
    work: usize,
    f: impl Fn(&mut Vec<f32>, usize, &mut [A], &mut [B]) + Sync,
) {
    use rayon::prelude::*;
    if a.is_empty() {
        return;
    }
    let par = work >= PAR_MIN_WORK && rayon::current_num_threads() > 1;
    let ca = a_row * per_task;
    let cb = (b_row * per_task).max(1);
    match (par, b.is_empty()) {
        (true, true) => a
            .par_chunks_mut(ca)
            .enumerate()
            .for_each_init(Vec::new, |s, (t, a)| f(s, t * per_task, a, &mut [])),
        (true, false) => a
            .par_chunks_mut(ca)
            .zip(b.par_chunks_mut(cb))
            .enumerate()
            .for_each_init(Vec::new, |s, (t, (a, b))| f(s, t * per_task, a, b)),
        (false, true) => {
            let mut s = Vec::new();
            for (t, a) in a.chunks_mut(ca).enumerate() {
                f(&mut s, t * per_task, a, &mut []);
            }
        }
        (false, false) => {
            let mut s = Vec::new();
            for (t, (a, b)) in a.chunks_mut(ca).zip(b.chunks_mut(cb)).enumerate() {
                f(&mut s, t * per_task, a, b);
            }
        }
    }
}

/// `v` as a `Vec<T>` when `T` is `f32`.
fn vec_from_f32<T: 'static>(v: Vec<f32>) -> Option<Vec<T>> {
    if TypeId::of::<T>() != TypeId::of::<f32>() {
        return None;
    }
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: `T` is `f32` (equal `TypeId`s): same layout and allocation; `v` is not dropped.
    Some(unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut T, v.len(), v.capacity()) })
}

/// `conv_direct::forward` (`y = epilogue(conv2d(x, w))`) into a new vector that is never
/// zero-filled, when these kernels take the call (`f32`, AVX-512F, a direct geometry,
/// [`enabled`]); `None` otherwise (the caller allocates and runs the generic path).
pub(crate) fn forward_vec<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    w: &[T],
    epi: Epilogue<'_, T>,
) -> Option<Vec<T>> {
    if !conv_direct::applies(g) || g.is_pointwise() {
        return None;
    }
    let plan = FastFwd::new(conv_direct::detect_isa(), g, x, w, epi)?;
    vec_from_f32(plan.forward_new())
}

/// The 2x2 (stride 2, valid) max-pool of `epilogue(conv2d(x, w))` and (when `with_arg`) its
/// argmax, in new vectors that are never zero-filled, when these kernels take the call (as
/// [`forward_vec`]); `None` otherwise. Same bits as `conv_pool::conv2d_maxpool_forward`.
pub(crate) fn maxpool2x2_vec<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    w: &[T],
    epi: Epilogue<'_, T>,
    with_arg: bool,
) -> Option<(Vec<T>, Vec<u8>)> {
    if !conv_direct::applies(g) || g.is_pointwise() {
        return None;
    }
    let plan = FastFwd::new(conv_direct::detect_isa(), g, x, w, epi)?;
    let (p, a) = plan.pool2x2_new(with_arg);
    Some((vec_from_f32(p)?, a))
}

/// Diagnostics of what bounds the plain forward pass (`examples/conv1_fwd_limits.rs`): the same
/// kernel and parallel split as [`forward_vec`] with the output's memory traffic taken out or
/// isolated. Not part of the framework's API.
#[doc(hidden)]
pub mod probe {
    use super::{par_rows, FastFwd, ROWS_PER_TASK};
    use crate::kernels::conv::Conv2dGeom;
    use crate::kernels::conv_direct::{self, Epilogue};

    fn plan<'a>(g: &'a Conv2dGeom, x: &'a [f32], w: &[f32]) -> Option<FastFwd<'a>> {
        if !conv_direct::applies(g) || g.is_pointwise() {
            return None;
        }
        let epi = Epilogue {
            bias: None,
            relu: false,
        };
        FastFwd::new(conv_direct::detect_isa(), g, x, w, epi)
    }

    /// The plain forward (no bias, no ReLU) into `y` (`output_len` long, reused by the caller:
    /// no page faults, no allocation). `false` when the AVX-512 kernels do not take the call.
    pub fn forward_into(g: &Conv2dGeom, x: &[f32], w: &[f32], y: &mut [f32]) -> bool {
        let Some(plan) = plan(g, x, w) else {
            return false;
        };
        let row_len = g.ow * g.oc;
        assert_eq!(y.len(), g.n * g.oh * row_len);
        let work = y.len().saturating_mul(plan.off.len());
        par_rows(
            y,
            row_len,
            &mut [] as &mut [u8],
            0,
            plan.rows_per_task(),
            work,
            |rows, r0, ys, _| {
                rows.resize(plan.row_scratch_len(), 0.0);
                // SAFETY: `ys` holds `ys.len() / row_len` whole rows.
                unsafe { plan.rows_to(rows, r0, ys.len() / row_len, ys.as_mut_ptr()) };
            },
        );
        true
    }

    /// The same rows with the same split, each task writing its rows into a scratch of its own
    /// (`rows_per_task` rows: 13 KB in L1, or 86 KB in L2 for conv1's tasks of 26 rows): the
    /// kernel's time without the output's traffic to memory. `y` is only used for the split
    /// (never written).
    pub fn forward_to_scratch(g: &Conv2dGeom, x: &[f32], w: &[f32], y: &mut [f32]) -> bool {
        let Some(plan) = plan(g, x, w) else {
            return false;
        };
        let row_len = g.ow * g.oc;
        let work = y.len().saturating_mul(plan.off.len());
        par_rows(
            y,
            row_len,
            &mut [] as &mut [u8],
            0,
            plan.rows_per_task(),
            work,
            |rows, r0, ys, _| {
                let sl = plan.row_scratch_len();
                rows.resize(sl + plan.rows_per_task() * row_len, 0.0);
                let (rows, out) = rows.split_at_mut(sl);
                // SAFETY: `out` holds `rows_per_task() >= ys.len() / row_len` rows.
                unsafe { plan.rows_to(rows, r0, ys.len() / row_len, out.as_mut_ptr()) };
                std::hint::black_box(&out[0]);
            },
        );
        true
    }

    /// The parallel split alone (same tasks, nothing done in them): the fixed cost of
    /// dispatching a pass to the pool.
    pub fn split_only(y: &mut [f32], row_len: usize) {
        let work = y.len() * 9;
        par_rows(
            y,
            row_len,
            &mut [] as &mut [u8],
            0,
            ROWS_PER_TASK,
            work,
            |_, r0, _, _| {
                std::hint::black_box(r0);
            },
        );
    }

    /// The stores alone: `value` into every element of `y` (rows of `row_len`) with the same
    /// split as the forward pass, 64-byte stores (`nt`: non-temporal). Returns `false` without
    /// AVX-512F.
    pub fn store_only(y: &mut [f32], row_len: usize, value: f32, nt: bool) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::kernels::simd::detected() != crate::kernels::simd::Level::Avx512 {
                return false;
            }
            let work = y.len() * 9;
            par_rows(
                y,
                row_len,
                &mut [] as &mut [u8],
                0,
                ROWS_PER_TASK,
                work,
                |_, _, ys, _| {
                    // SAFETY: AVX-512F checked above; `fill` writes inside `ys`.
                    unsafe { fill(ys, value, nt) }
                },
            );
            true
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (y, row_len, value, nt);
            false
        }
    }

    /// # Safety
    /// AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn fill(ys: &mut [f32], value: f32, nt: bool) {
        use std::arch::x86_64::*;
        let v = _mm512_set1_ps(value);
        let n16 = ys.len() / 16 * 16;
        let p = ys.as_mut_ptr();
        let mut i = 0;
        while i < n16 {
            // SAFETY: `i + 16 <= ys.len()`.
            unsafe {
                if nt && (p.add(i) as usize).is_multiple_of(64) {
                    _mm512_stream_ps(p.add(i), v);
                } else {
                    _mm512_storeu_ps(p.add(i), v);
                }
            }
            i += 16;
        }
        ys[n16..].fill(value);
        if nt {
            _mm_sfence();
        }
    }
}

/// Splits `n` items into the fewest blocks of at most `max`, as even as possible: calls
/// `f(first, len)` for each.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn blocks(n: usize, max: usize, mut f: impl FnMut(usize, usize)) {
    if n == 0 {
        return;
    }
    let nb = n.div_ceil(max);
    let (base, extra) = (n / nb, n % nb);
    let mut at = 0;
    for i in 0..nb {
        let len = base + usize::from(i < extra);
        f(at, len);
        at += len;
    }
}

#[cfg(target_arch = "x86_64")]
#[path = "conv_direct_fwd_avx2.rs"]
mod avx2;

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{blocks, FastFwd, L, PIX1, PIX2, PQ1, PQ2};
    use std::arch::x86_64::*;

    /// Where a block reads and writes (raw pointers into slices its caller checked).
    #[derive(Clone, Copy)]
    struct Blk<'p> {
        /// First pixel's base in the gathered rows (tap `kk` of pixel `p` is at
        /// `src + p*pstep + off[kk]`).
        src: *const f32,
        /// Distance between two adjacent output pixels in the gathered rows (`sw*c`).
        pstep: usize,
        /// Distance between the two convolution rows of a pooled row (`sh*prow`).
        rstep: usize,
        /// Tap offsets.
        off: &'p [usize],
        /// The padded filter at the block's first channel (row stride `ocp`).
        w: *const f32,
        ocp: usize,
        /// The padded bias at the block's first channel, or null for none.
        bias: *const f32,
        relu: bool,
        /// Output at the block's first pixel and channel (pixel stride `oc`).
        out: *mut f32,
        /// Argmax at the block's first pooled pixel and channel (pixel stride `oc`), or null.
        arg: *mut u8,
        oc: usize,
        /// Lanes of the block's last vector to store (all 16 unless `oc` ends inside it).
        tail: __mmask16,
    }

    /// Bias and ReLU on one accumulator, as the portable kernel: `acc + b`, then
    /// `if v > 0 { v } else { 0 }` (`max(v, 0)` returns its second operand unless `v > 0`).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn epilogue(v: __m512, b: __m512, bias: bool, relu: bool) -> __m512 {
        let v = if bias { _mm512_add_ps(v, b) } else { v };
        if relu {
            _mm512_max_ps(v, _mm512_setzero_ps())
        } else {
            v
        }
    }

    /// One block of `P` output pixels x `V` vectors of channels of a plain row.
    ///
    /// # Safety
    /// AVX-512F; every read (`src + p*pstep + off[kk]`, `w + kk*ocp + 16v`, `bias + 16v`) and
    /// every write (`out + p*oc + 16v + lane` for the stored lanes) is inside its slice.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn plain_block<const P: usize, const V: usize>(b: Blk<'_>) {
        let zero = _mm512_setzero_ps();
        let mut acc = [[zero; V]; P];
        let mut wk = b.w;
        for &o in b.off {
            let mut wv = [zero; V];
            for (v, wv) in wv.iter_mut().enumerate() {
                // SAFETY: filter row `kk`, vector `v`: inside the padded filter (caller).
                *wv = unsafe { _mm512_loadu_ps(wk.add(v * L)) };
            }
            // SAFETY: the tap's base; every pixel's read below is inside the rows (caller).
            let s = unsafe { b.src.add(o) };
            for (p, accp) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let a = _mm512_set1_ps(unsafe { *s.add(p * b.pstep) });
                for (av, &wv) in accp.iter_mut().zip(&wv) {
                    *av = _mm512_fmadd_ps(a, wv, *av);
                }
            }
            // SAFETY: the next filter row (one past the last after the last tap: never read).
            wk = unsafe { wk.add(b.ocp) };
        }
        let has_bias = !b.bias.is_null();
        let mut bv = [zero; V];
        if has_bias {
            for (v, bv) in bv.iter_mut().enumerate() {
                // SAFETY: inside the padded bias (caller).
                *bv = unsafe { _mm512_loadu_ps(b.bias.add(v * L)) };
            }
        }
        for (p, accp) in acc.iter().enumerate() {
            for (v, &a) in accp.iter().enumerate() {
                let r = epilogue(a, bv[v], has_bias, b.relu);
                // SAFETY: pixel `p`, vector `v` of the output: the stored lanes are inside it.
                unsafe {
                    let dst = b.out.add(p * b.oc + v * L);
                    if v + 1 == V && b.tail != 0xFFFF {
                        _mm512_mask_storeu_ps(dst, b.tail, r);
                    } else {
                        _mm512_storeu_ps(dst, r);
                    }
                }
            }
        }
    }

    /// One block of `Q` pooled pixels x `V` vectors of channels: the 2x2 windows' four
    /// convolution elements each (rows `i`, columns `2q + j`, element `e = 2i + j`), then the
    /// epilogue, the max and (when `arg` is not null) the argmax.
    ///
    /// # Safety
    /// AVX-512F/BW/VL; as [`plain_block`], with the second row's reads at `+ rstep` and the
    /// argmax writes (`arg + q*oc + 16v + lane`) inside their slice.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn pool_block<const Q: usize, const V: usize>(b: Blk<'_>) {
        let zero = _mm512_setzero_ps();
        let mut acc = [[[zero; V]; 4]; Q];
        let mut wk = b.w;
        let two = 2 * b.pstep;
        for &o in b.off {
            let mut wv = [zero; V];
            for (v, wv) in wv.iter_mut().enumerate() {
                // SAFETY: filter row `kk`, vector `v`: inside the padded filter (caller).
                *wv = unsafe { _mm512_loadu_ps(wk.add(v * L)) };
            }
            // SAFETY: the tap's base; every read below is inside the rows (caller).
            let s = unsafe { b.src.add(o) };
            for (q, accq) in acc.iter_mut().enumerate() {
                for (e, acce) in accq.iter_mut().enumerate() {
                    let at = (e >> 1) * b.rstep + q * two + (e & 1) * b.pstep;
                    // SAFETY: as above.
                    let a = _mm512_set1_ps(unsafe { *s.add(at) });
                    for (av, &wv) in acce.iter_mut().zip(&wv) {
                        *av = _mm512_fmadd_ps(a, wv, *av);
                    }
                }
            }
            // SAFETY: the next filter row (one past the last after the last tap: never read).
            wk = unsafe { wk.add(b.ocp) };
        }
        let mut bv = [zero; V];
        if !b.bias.is_null() {
            for (v, bv) in bv.iter_mut().enumerate() {
                // SAFETY: inside the padded bias (caller).
                *bv = unsafe { _mm512_loadu_ps(b.bias.add(v * L)) };
            }
        }
        // SAFETY: the caller's.
        unsafe { pool_store(&acc, &bv, &b) };
    }

    /// The end of a pooled block: the epilogue of the four convolution elements of each window
    /// (`acc[q][e][v]`), the max and (when `arg` is not null) the argmax, stored.
    ///
    /// # Safety
    /// AVX-512F/BW/VL; the stored lanes of pooled pixels `q < Q`, vectors `v < V` at `b.out`
    /// (and `b.arg` unless null) inside their slices.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn pool_store<const Q: usize, const V: usize>(
        acc: &[[[__m512; V]; 4]; Q],
        bv: &[__m512; V],
        b: &Blk<'_>,
    ) {
        let has_bias = !b.bias.is_null();
        let with_arg = !b.arg.is_null();
        for (q, accq) in acc.iter().enumerate() {
            for v in 0..V {
                let last = v + 1 == V && b.tail != 0xFFFF;
                let e0 = epilogue(accq[0][v], bv[v], has_bias, b.relu);
                let at = q * b.oc + v * L;
                if with_arg {
                    let mut best = e0;
                    // The 16 lanes' indices as bytes (AVX-512BW/VL masked byte moves).
                    let mut idx8 = _mm_setzero_si128();
                    for (e, acce) in accq.iter().enumerate().skip(1) {
                        let r = epilogue(acce[v], bv[v], has_bias, b.relu);
                        // Only a strictly greater (ordered) value replaces: the first maximum.
                        let m = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(r, best);
                        best = _mm512_mask_blend_ps(m, best, r);
                        idx8 = _mm_mask_mov_epi8(idx8, m, _mm_set1_epi8(e as i8));
                    }
                    // SAFETY: pooled pixel `q`, vector `v` of the pooled and argmax rows: the
                    // stored lanes are inside them (caller).
                    unsafe {
                        if last {
                            _mm512_mask_storeu_ps(b.out.add(at), b.tail, best);
                            _mm_mask_storeu_epi8(b.arg.add(at) as *mut i8, b.tail, idx8);
                        } else {
                            _mm512_storeu_ps(b.out.add(at), best);
                            _mm_storeu_si128(b.arg.add(at) as *mut __m128i, idx8);
                        }
                    }
                } else {
                    let mut best = e0;
                    for acce in accq.iter().skip(1) {
                        let r = epilogue(acce[v], bv[v], has_bias, b.relu);
                        // `r > best ? r : best`: MaxPool's rule.
                        best = _mm512_max_ps(r, best);
                    }
                    // SAFETY: as above.
                    unsafe {
                        if last {
                            _mm512_mask_storeu_ps(b.out.add(at), b.tail, best);
                        } else {
                            _mm512_storeu_ps(b.out.add(at), best);
                        }
                    }
                }
            }
        }
    }

    /// The block of the channel group at `ob` (`V` vectors) for a row of the plan.
    fn blk<'p>(
        plan: &'p FastFwd<'_>,
        rows: &[f32],
        ob: usize,
        nv: usize,
        out: *mut f32,
        arg: *mut u8,
    ) -> Blk<'p> {
        let g = plan.g;
        let end = ob + nv * L;
        let tail = if end <= g.oc {
            0xFFFF
        } else {
            ((1u32 << (g.oc - (end - L))) - 1) as __mmask16
        };
        Blk {
            src: rows.as_ptr(),
            pstep: g.sw * g.c,
            rstep: g.sh * plan.prow,
            off: &plan.off,
            w: plan.w[ob..].as_ptr(),
            ocp: plan.ocp,
            bias: if plan.bias.is_empty() {
                std::ptr::null()
            } else {
                plan.bias[ob..].as_ptr()
            },
            relu: plan.relu,
            out,
            arg,
            oc: g.oc,
            tail,
        }
    }

    /// One block of `P` output pixels x `V` vectors of channels of a 3x3, one-channel row, the
    /// filter's 9 taps x `V` vectors in registers (`wv`): tap `(ky, kx)` of pixel `p` reads
    /// `r[ky] + p + kx`. The same sums in the same order as [`plain_block`] (from `+0`, tap by
    /// tap in `(ky, kx)` order, a multiply then an add), then the epilogue and the store.
    ///
    /// # Safety
    /// AVX-512F; every read `r[ky] + p + kx` (`p < P`, `kx < 3`) inside the rows, every stored
    /// lane (`out + p*oc + 16v + lane`) inside the output.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn wreg_block<const P: usize, const V: usize>(
        r: [*const f32; 3],
        wv: &[[__m512; V]; 9],
        bv: &[__m512; V],
        b: &Blk<'_>,
    ) {
        let zero = _mm512_setzero_ps();
        let mut acc = [[zero; V]; P];
        for (ky, &rk) in r.iter().enumerate() {
            for kx in 0..3 {
                let w = &wv[3 * ky + kx];
                for (p, accp) in acc.iter_mut().enumerate() {
                    // SAFETY: inside the rows (caller).
                    let a = _mm512_set1_ps(unsafe { *rk.add(p + kx) });
                    for (av, &wv) in accp.iter_mut().zip(w) {
                        *av = _mm512_fmadd_ps(a, wv, *av);
                    }
                }
            }
        }
        let has_bias = !b.bias.is_null();
        for (p, accp) in acc.iter().enumerate() {
            for (v, &a) in accp.iter().enumerate() {
                let r = epilogue(a, bv[v], has_bias, b.relu);
                // SAFETY: pixel `p`, vector `v` of the output: the stored lanes are inside it.
                unsafe {
                    let dst = b.out.add(p * b.oc + v * L);
                    if v + 1 == V && b.tail != 0xFFFF {
                        _mm512_mask_storeu_ps(dst, b.tail, r);
                    } else {
                        _mm512_storeu_ps(dst, r);
                    }
                }
            }
        }
    }

    /// Defines `$name`: the channel group at `ob` (`$v` vectors) of one 3x3, one-channel output
    /// row, the filter and bias vectors loaded once, then blocks of at most `$max` pixels (one
    /// `wreg_block` instance per block size `$n`, `$max` last).
    macro_rules! wreg_group {
        ($name:ident, $v:literal, $max:literal, $($n:literal)*) => {
            /// A channel group of `$v` vectors of [`wreg_rows`] (see `wreg_group!`).
            ///
            /// # Safety
            /// As [`wreg_rows`]; `ob + 16*$v <= ocp`.
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn $name(
                plan: &FastFwd<'_>,
                rows: &[f32],
                nrows: usize,
                ob: usize,
                yrow: *mut f32,
            ) {
                const V: usize = $v;
                let g = plan.g;
                let b = blk(plan, rows, ob, V, yrow, std::ptr::null_mut());
                // SAFETY: the caller's (`ob + 16V <= ocp`).
                let (wv, bv) = unsafe { wreg_load::<V>(&b) };
                let (rstep, ostep) = (g.sh * plan.prow, g.ow * g.oc);
                for j in 0..nrows {
                    let r = [0, 3, 6].map(|kk| b.src.wrapping_add(j * rstep + plan.off[kk]));
                    let out = b.out.wrapping_add(j * ostep + ob);
                    blocks(g.ow, $max, |p0, n| {
                        // SAFETY: row `j < nrows`, pixels `p0..p0+n <= ow`: reads end at
                        // `j*sh*prow + off[6] + ow - 1 + 2 < rows.len()` (`wreg_rows` asserts
                        // it for the last row), writes inside row `j`'s `ow*oc`.
                        unsafe {
                            let rp = r.map(|q| q.add(p0));
                            let bb = Blk {
                                out: out.add(p0 * g.oc),
                                ..b
                            };
                            match n {
                                $($n => wreg_block::<$n, V>(rp, &wv, &bv, &bb),)*
                                _ => wreg_block::<$max, V>(rp, &wv, &bv, &bb),
                            }
                        }
                    });
                }
            }
        };
    }
    wreg_group!(wreg_group2, 2, 6, 1 2 3 4 5);
    wreg_group!(wreg_group1, 1, 16, 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);

    /// One block of `Q` pooled pixels x `V` vectors of a 3x3, one-channel pooled row, the
    /// filter in registers (`wv`): convolution element `e = 2i + j` of pooled pixel `q` (row `i`,
    /// column `2q + j`) reads tap `(ky, kx)` at `r[ky] + i*rstep + 2q + j + kx`; the sums as
    /// [`pool_block`]'s, then [`pool_store`].
    ///
    /// # Safety
    /// AVX-512F/BW/VL; every read inside the rows, every store as [`pool_store`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn wpool_block<const Q: usize, const V: usize>(
        r: [*const f32; 3],
        wv: &[[__m512; V]; 9],
        bv: &[__m512; V],
        b: &Blk<'_>,
    ) {
        let zero = _mm512_setzero_ps();
        let mut acc = [[[zero; V]; 4]; Q];
        for (ky, &rk) in r.iter().enumerate() {
            for kx in 0..3 {
                let w = &wv[3 * ky + kx];
                for (q, accq) in acc.iter_mut().enumerate() {
                    for (e, acce) in accq.iter_mut().enumerate() {
                        let at = (e >> 1) * b.rstep + 2 * q + (e & 1) + kx;
                        // SAFETY: inside the rows (caller).
                        let a = _mm512_set1_ps(unsafe { *rk.add(at) });
                        for (av, &wv) in acce.iter_mut().zip(w) {
                            *av = _mm512_fmadd_ps(a, wv, *av);
                        }
                    }
                }
            }
        }
        // SAFETY: the caller's.
        unsafe { pool_store(&acc, bv, b) };
    }

    /// Defines `$name`: the channel group at `ob` (`$v` vectors) of one 3x3, one-channel
    /// pooled row, the filter and bias loaded once, then blocks of at most `$max` pooled pixels.
    macro_rules! wpool_group {
        ($name:ident, $v:literal, $max:literal, $($n:literal)*) => {
            /// A channel group of `$v` vectors of [`wpool_row`] (see `wpool_group!`).
            ///
            /// # Safety
            /// As [`wpool_row`]; `ob + 16*$v <= ocp`.
            #[inline]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
            unsafe fn $name(
                plan: &FastFwd<'_>,
                rows: &[f32],
                ob: usize,
                prow: *mut f32,
                arow: *mut u8,
            ) {
                const V: usize = $v;
                let g = plan.g;
                let b = blk(plan, rows, ob, V, prow, arow);
                // SAFETY: the caller's (`ob + 16V <= ocp`).
                let (wv, bv) = unsafe { wreg_load::<V>(&b) };
                let r = [0, 3, 6].map(|kk| b.src.wrapping_add(plan.off[kk]));
                blocks(g.ow / 2, $max, |q0, n| {
                    // SAFETY: pooled pixels `q0..q0+n <= ow/2`: convolution columns `< ow` of
                    // rows 0 and 1, reads inside `rows` (`wpool_row` asserts the last), writes
                    // inside the pooled (and argmax) row.
                    unsafe {
                        let rp = r.map(|q| q.add(2 * q0));
                        let at = q0 * g.oc + ob;
                        let bb = Blk {
                            out: b.out.add(at),
                            arg: if b.arg.is_null() { b.arg } else { b.arg.add(at) },
                            ..b
                        };
                        match n {
                            $($n => wpool_block::<$n, V>(rp, &wv, &bv, &bb),)*
                            _ => wpool_block::<$max, V>(rp, &wv, &bv, &bb),
                        }
                    }
                });
            }
        };
    }
    // 18 filter vectors + 2x2x2 accumulators + temporaries.
    wpool_group!(wpool_group2, 2, 1,);
    // 9 filter vectors + 2x2x4 accumulators + temporaries.
    wpool_group!(wpool_group1, 1, 4, 1 2 3);

    /// One 3x3, one-channel pooled row (`FastFwd::wreg`; `rows` gathered for its two
    /// convolution rows) into `prow` and `arow` (null: no argmax): the same bits as
    /// [`pool_row`].
    ///
    /// # Safety
    /// As [`pool_row`], and the plan's geometry is `FastFwd::wreg_geom`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn wpool_row(
        plan: &FastFwd<'_>,
        rows: &[f32],
        prow: *mut f32,
        arow: *mut u8,
    ) {
        let g = plan.g;
        let pow = g.ow / 2;
        assert!(FastFwd::wreg_geom(g) && plan.off.len() == 9);
        assert!(pow == 0 || g.sh * plan.prow + plan.off[6] + 2 + 2 * pow - 1 < rows.len());
        let mut ob = 0;
        while ob < plan.ocp {
            // SAFETY: `ob + 16*nv <= ocp`; the reads asserted above, the writes by contract.
            unsafe {
                if plan.ocp - ob >= 2 * L {
                    wpool_group2(plan, rows, ob, prow, arow);
                    ob += 2 * L;
                } else {
                    wpool_group1(plan, rows, ob, prow, arow);
                    ob += L;
                }
            }
        }
    }

    /// The filter's 9 taps x `V` vectors and the bias's `V` vectors (zeros without bias) at the
    /// block's channels.
    ///
    /// # Safety
    /// AVX-512F; `b.w` has 9 rows of `b.ocp` with `16V` channels from it, `b.bias` (unless
    /// null) `16V`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn wreg_load<const V: usize>(b: &Blk<'_>) -> ([[__m512; V]; 9], [__m512; V]) {
        let zero = _mm512_setzero_ps();
        let mut wv = [[zero; V]; 9];
        for (kk, wk) in wv.iter_mut().enumerate() {
            for (v, w) in wk.iter_mut().enumerate() {
                // SAFETY: filter row `kk < 9`, vector `v < V` (caller).
                *w = unsafe { _mm512_loadu_ps(b.w.add(kk * b.ocp + v * L)) };
            }
        }
        let mut bv = [zero; V];
        if !b.bias.is_null() {
            for (v, bv) in bv.iter_mut().enumerate() {
                // SAFETY: inside the padded bias (caller).
                *bv = unsafe { _mm512_loadu_ps(b.bias.add(v * L)) };
            }
        }
        (wv, bv)
    }

    /// `nrows` consecutive 3x3, one-channel output rows (`FastFwd::wreg`; `rows` holds their
    /// input rows, output row `j` reading from `j*sh*prow`) into `yrows` (`nrows` rows of
    /// `ow*oc`): the same bits as [`plain_row`] on each row. The filter of a channel group is
    /// loaded once for all the rows.
    ///
    /// # Safety
    /// AVX-512F; `yrows` valid for `nrows*ow*oc` writes, and the plan's geometry is
    /// `FastFwd::wreg_geom` (both reads and geometry are asserted).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn wreg_rows(
        plan: &FastFwd<'_>,
        rows: &[f32],
        nrows: usize,
        yrows: *mut f32,
    ) {
        let g = plan.g;
        if nrows == 0 {
            return;
        }
        assert!(FastFwd::wreg_geom(g) && plan.off.len() == 9);
        assert!((nrows - 1) * g.sh * plan.prow + plan.off[6] + 2 + g.ow - 1 < rows.len());
        let mut ob = 0;
        while ob < plan.ocp {
            // SAFETY: `ob + 16*nv <= ocp`; the reads asserted above, `yrows` by contract.
            unsafe {
                if plan.ocp - ob >= 2 * L {
                    wreg_group2(plan, rows, nrows, ob, yrows);
                    ob += 2 * L;
                } else {
                    wreg_group1(plan, rows, nrows, ob, yrows);
                    ob += L;
                }
            }
        }
    }

    /// One output row (`rows` gathered for it) into `yrow`.
    ///
    /// # Safety
    /// AVX-512F; `rows.len() >= (span(1)-1)*prow + wpad*c` (`FastFwd::src`) and `yrow` valid
    /// for `ow*oc` writes.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn plain_row(plan: &FastFwd<'_>, rows: &[f32], yrow: *mut f32) {
        let g = plan.g;
        let pstep = g.sw * g.c;
        let max_off = plan.off.last().copied().unwrap_or(0);
        assert!((g.ow - 1) * pstep + max_off < rows.len());
        let mut ob = 0;
        while ob < plan.ocp {
            let nv = if plan.ocp - ob >= 2 * L { 2 } else { 1 };
            let base = blk(plan, rows, ob, nv, yrow, std::ptr::null_mut());
            let max = if nv == 2 { PIX2 } else { PIX1 };
            blocks(g.ow, max, |p0, n| {
                // SAFETY: pixels `p0..p0+n <= ow` of the row: the last reads end at
                // `(ow-1)*pstep + max(off) < rows.len()` (asserted above), the writes at
                // `(ow-1)*oc + oc` (the row); the channels `ob..ob+16nv <= ocp` are inside the
                // padded filter and bias, the stored lanes `< oc`.
                unsafe {
                    let b = Blk {
                        src: base.src.add(p0 * pstep),
                        out: base.out.add(p0 * g.oc + ob),
                        ..base
                    };
                    if nv == 2 {
                        match n {
                            1 => plain_block::<1, 2>(b),
                            2 => plain_block::<2, 2>(b),
                            3 => plain_block::<3, 2>(b),
                            4 => plain_block::<4, 2>(b),
                            5 => plain_block::<5, 2>(b),
                            6 => plain_block::<6, 2>(b),
                            7 => plain_block::<7, 2>(b),
                            8 => plain_block::<8, 2>(b),
                            9 => plain_block::<9, 2>(b),
                            10 => plain_block::<10, 2>(b),
                            11 => plain_block::<11, 2>(b),
                            _ => plain_block::<12, 2>(b),
                        }
                    } else {
                        match n {
                            1 => plain_block::<1, 1>(b),
                            2 => plain_block::<2, 1>(b),
                            3 => plain_block::<3, 1>(b),
                            4 => plain_block::<4, 1>(b),
                            5 => plain_block::<5, 1>(b),
                            6 => plain_block::<6, 1>(b),
                            7 => plain_block::<7, 1>(b),
                            8 => plain_block::<8, 1>(b),
                            9 => plain_block::<9, 1>(b),
                            10 => plain_block::<10, 1>(b),
                            11 => plain_block::<11, 1>(b),
                            12 => plain_block::<12, 1>(b),
                            13 => plain_block::<13, 1>(b),
                            14 => plain_block::<14, 1>(b),
                            15 => plain_block::<15, 1>(b),
                            _ => plain_block::<16, 1>(b),
                        }
                    }
                }
            });
            ob += nv * L;
        }
    }

    /// One pooled row (`rows` gathered for its two convolution rows) into `prow` and `arow`
    /// (empty: no argmax).
    ///
    /// # Safety
    /// AVX-512F/BW/VL; `rows.len() >= (span(2)-1)*prow + wpad*c`, `prow` valid for `(ow/2)*oc` writes and `arow`
    /// null (no argmax) or valid for as many.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn pool_row(plan: &FastFwd<'_>, rows: &[f32], prow: *mut f32, arow: *mut u8) {
        let g = plan.g;
        let pow = g.ow / 2;
        let qstep = 2 * g.sw * g.c;
        let max_off = plan.off.last().copied().unwrap_or(0);
        assert!(pow == 0 || (2 * pow - 1) * g.sw * g.c + g.sh * plan.prow + max_off < rows.len());
        let arg0 = arow;
        let mut ob = 0;
        while ob < plan.ocp {
            let nv = if plan.ocp - ob >= 2 * L { 2 } else { 1 };
            let base = blk(plan, rows, ob, nv, prow, arg0);
            let max = if nv == 2 { PQ2 } else { PQ1 };
            blocks(pow, max, |q0, n| {
                // SAFETY: pooled pixels `q0..q0+n <= ow/2`: convolution columns `< 2*(ow/2) <=
                // ow` of rows 0 and 1, whose reads end inside `rows` (asserted above; row 1 is
                // `sh*prow` further); the writes end at `(ow/2 - 1)*oc + oc` (the pooled and
                // argmax rows); channels as in `plain_row`.
                unsafe {
                    let b = Blk {
                        src: base.src.add(q0 * qstep),
                        out: base.out.add(q0 * g.oc + ob),
                        arg: if base.arg.is_null() {
                            base.arg
                        } else {
                            base.arg.add(q0 * g.oc + ob)
                        },
                        ..base
                    };
                    if nv == 2 {
                        match n {
                            1 => pool_block::<1, 2>(b),
                            2 => pool_block::<2, 2>(b),
                            _ => pool_block::<3, 2>(b),
                        }
                    } else {
                        match n {
                            1 => pool_block::<1, 1>(b),
                            2 => pool_block::<2, 1>(b),
                            3 => pool_block::<3, 1>(b),
                            _ => pool_block::<4, 1>(b),
                        }
                    }
                }
            });
            ob += nv * L;
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::kernels::conv_direct::{self as cd, available_isas};
    use crate::kernels::conv_pool::{forward_on, Path, PoolWindow};
    use crate::kernels::padding::Padding;
    pub(super) use crate::kernels::test_util::pool;

    /// Whether this CPU runs the kernels (else the tests have nothing to compare).
    fn have() -> bool {
        let ok = available_isas().contains(&Isa::Avx512) && enabled();
        if !ok {
            eprintln!("skipped: no AVX-512F on this CPU or FF_CONV_DIRECT_FWD=off");
        }
        ok
    }

    pub(super) struct Rng(pub(super) u64);

    impl Rng {
        pub(super) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        pub(super) fn below(&mut self, m: usize) -> usize {
            (self.next() % m as u64) as usize
        }
        /// Uniform in [-1, 1), or multiples of 1/4 in [-1, 1) when `coarse` (exact sums, ties).
        pub(super) fn vec(&mut self, len: usize, coarse: bool) -> Vec<f32> {
            (0..len)
                .map(|_| {
                    let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
                    if coarse {
                        (((u * 8.0).floor() - 4.0) / 4.0) as f32
                    } else {
                        (u * 2.0 - 1.0) as f32
                    }
                })
                .collect()
        }
    }

    pub(super) fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Random geometries over the shapes the brief lists: odd widths, `oc` in
    /// {1, 7, 16, 20, 32, 40, 64}, `c` in {1, 3}, strides 1-2, same/valid, batch 1 and 3, plus
    /// 2x2 and 1x3 filters and a dilation.
    fn geoms() -> Vec<Conv2dGeom> {
        let mut r = Rng(0xC0FF_EE12_3457);
        let mut out = vec![Conv2dGeom::new(
            [3, 28, 28, 1],
            [3, 3],
            32,
            [1, 1],
            [1, 1],
            Padding::Valid,
        )];
        for (i, &oc) in [1, 7, 16, 20, 32, 40, 64].iter().enumerate() {
            for c in [1, 3] {
                for t in 0..2 {
                    let (kh, kw) = [(3, 3), (2, 2), (1, 3), (3, 2)][(i + t) % 4];
                    let st = 1 + r.below(2);
                    let dil = if (i + c + t) % 5 == 0 { 2 } else { 1 };
                    let pad = if r.below(2) == 0 {
                        Padding::Same
                    } else {
                        Padding::Valid
                    };
                    let n = [1, 3][r.below(2)];
                    let h = 6 + r.below(12);
                    let w = 2 * r.below(9) + 7; // odd
                    let g = Conv2dGeom::new([n, h, w, c], [kh, kw], oc, [st, st], [dil, dil], pad);
                    if cd::applies(&g) && !g.is_pointwise() {
                        out.push(g);
                    }
                }
            }
        }
        out
    }

    /// The four epilogues of `_FusedConv2D`.
    pub(super) fn epilogues(b: &[f32]) -> [Epilogue<'_, f32>; 4] {
        [
            Epilogue {
                bias: None,
                relu: false,
            },
            Epilogue {
                bias: Some(b),
                relu: false,
            },
            Epilogue {
                bias: None,
                relu: true,
            },
            Epilogue {
                bias: Some(b),
                relu: true,
            },
        ]
    }

    /// The portable kernel's fused max-pool of `win` (pooled values and argmax): the reference of
    /// the pooled kernels.
    pub(super) fn portable_pool(
        g: &Conv2dGeom,
        x: &[f32],
        w: &[f32],
        epi: Epilogue<'_, f32>,
        win: PoolWindow,
    ) -> (Vec<f32>, Vec<u8>) {
        let (poh, pow) = win.pooled(g.oh, g.ow);
        let len = g.n * poh * pow * g.oc;
        let (mut pooled, mut arg) = (vec![0f32; len], vec![0u8; len]);
        let (p, a) = (&mut pooled, Some(&mut arg[..]));
        forward_on(Isa::Portable, Path::Direct, g, x, w, epi, win, p, a);
        (pooled, arg)
    }

    #[test]
    fn plain_rows_match_the_portable_kernel_bit_for_bit() {
        if !have() {
            return;
        }
        let mut r = Rng(77);
        for g in geoms() {
            let x = r.vec(g.input_len(), false);
            let w = r.vec(g.filter_len(), false);
            let b = r.vec(g.oc, false);
            assert!(FastFwd::new(Isa::Avx512, &g, &x, &w, epilogues(&b)[0]).is_some());
            for epi in epilogues(&b) {
                let mut want = vec![0f32; g.output_len()];
                cd::forward(Isa::Portable, &g, &x, &w, &mut want, epi);
                for threads in [1, 2] {
                    let mut got = vec![f32::NAN; g.output_len()];
                    pool(threads).install(|| cd::forward(Isa::Avx512, &g, &x, &w, &mut got, epi));
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "{g:?} bias {} relu {} threads {threads}",
                        epi.bias.is_some(),
                        epi.relu
                    );
                }
            }
        }
    }

    #[test]
    fn fused_2x2_pool_matches_the_portable_kernel_bit_for_bit() {
        if !have() {
            return;
        }
        let win = PoolWindow { ph: 2, pw: 2 };
        let mut r = Rng(99);
        for g in geoms() {
            let (poh, pow) = win.pooled(g.oh, g.ow);
            let len = g.n * poh * pow * g.oc;
            if len == 0 {
                continue;
            }
            for coarse in [false, true] {
                let x = r.vec(g.input_len(), coarse);
                let w = r.vec(g.filter_len(), coarse);
                let b = r.vec(g.oc, coarse);
                for epi in epilogues(&b) {
                    let (want, want_a) = portable_pool(&g, &x, &w, epi, win);
                    let p = Path::Direct;
                    for threads in [1, 2] {
                        let mut got = vec![f32::NAN; len];
                        let mut got_a = vec![9u8; len];
                        let mut only = vec![f32::NAN; len];
                        pool(threads).install(|| {
                            forward_on(
                                Isa::Avx512,
                                p,
                                &g,
                                &x,
                                &w,
                                epi,
                                win,
                                &mut got,
                                Some(&mut got_a),
                            );
                            forward_on(Isa::Avx512, p, &g, &x, &w, epi, win, &mut only, None);
                        });
                        let what = format!(
                            "{g:?} coarse {coarse} bias {} relu {} threads {threads}",
                            epi.bias.is_some(),
                            epi.relu
                        );
                        assert_eq!(bits(&got), bits(&want), "{what}");
                        assert_eq!(got_a, want_a, "{what}: argmax");
                        assert_eq!(bits(&only), bits(&want), "{what}: no argmax");
                    }
                }
            }
        }
    }

    /// Random geometries of the register-filter kernels (`FastFwd::wreg_geom`: one channel, 3x3,
    /// column stride and dilation 1): odd and tiny widths (blocks of every size 1..=16, a
    /// single pixel), `oc` with 2-vector groups, 1-vector groups and masked tails, row strides
    /// and dilations 1-2, same/valid padding, batch 1-3.
    pub(super) fn wreg_geoms() -> Vec<Conv2dGeom> {
        let mut r = Rng(0x3A3_C1F0);
        let v = Padding::Valid;
        let mut out = vec![
            Conv2dGeom::new([2, 28, 28, 1], [3, 3], 32, [1, 1], [1, 1], v),
            // Tasks of 5 rows (`rows_per_task`), crossing images.
            Conv2dGeom::new([8, 12, 9, 1], [3, 3], 32, [1, 1], [1, 1], v),
            Conv2dGeom::new([5, 16, 11, 1], [3, 3], 20, [2, 1], [1, 1], v),
        ];
        for (i, &oc) in [1, 7, 16, 20, 32, 33, 40, 48, 64].iter().enumerate() {
            for t in 0..3 {
                let sh = 1 + r.below(2);
                let dh = if (i + t) % 4 == 0 { 2 } else { 1 };
                let pad = if r.below(2) == 0 {
                    Padding::Same
                } else {
                    Padding::Valid
                };
                let n = 1 + r.below(3);
                let h = 5 + r.below(10);
                let w = [3, 4, 5, 2 * r.below(14) + 7][t % 3 + r.below(2)];
                let g = Conv2dGeom::new([n, h, w, 1], [3, 3], oc, [sh, 1], [dh, 1], pad);
                if cd::applies(&g) && g.oh > 0 && g.ow > 0 {
                    out.push(g);
                }
            }
        }
        out
    }

    /// The register-filter kernels (plain rows, the fused 2x2 pool with and without argmax) give
    /// the portable kernel's bits on 1 and 2 threads, and the plan takes them exactly for their
    /// geometries (`c > 1`, other filters and column strides keep the generic blocks).
    #[test]
    fn wreg_kernels_match_the_portable_kernel_bit_for_bit() {
        if !have() || !wreg_enabled() {
            eprintln!("skipped: FF_CONV_FWD_WREG=off");
            return;
        }
        let win = PoolWindow { ph: 2, pw: 2 };
        let mut r = Rng(2718);
        let gs = wreg_geoms();
        assert!(gs.len() > 20);
        for g in gs {
            for coarse in [false, true] {
                let x = r.vec(g.input_len(), coarse);
                let w = r.vec(g.filter_len(), coarse);
                let b = r.vec(g.oc, coarse);
                let plan = FastFwd::new(Isa::Avx512, &g, &x, &w, epilogues(&b)[0]);
                assert!(plan.is_some_and(|p| p.wreg), "{g:?}");
                let (poh, pow) = win.pooled(g.oh, g.ow);
                let len = g.n * poh * pow * g.oc;
                for epi in epilogues(&b) {
                    let mut want = vec![0f32; g.output_len()];
                    cd::forward(Isa::Portable, &g, &x, &w, &mut want, epi);
                    let (want_p, want_a) = portable_pool(&g, &x, &w, epi, win);
                    let p = Path::Direct;
                    for threads in [1, 2] {
                        let what = format!(
                            "{g:?} coarse {coarse} bias {} relu {} threads {threads}",
                            epi.bias.is_some(),
                            epi.relu
                        );
                        let mut got = vec![f32::NAN; g.output_len()];
                        let (mut got_p, mut got_a) = (vec![f32::NAN; len], vec![9u8; len]);
                        let mut only = vec![f32::NAN; len];
                        let (y, (p1, a1)) = pool(threads).install(|| {
                            cd::forward(Isa::Avx512, &g, &x, &w, &mut got, epi);
                            forward_on(
                                Isa::Avx512,
                                p,
                                &g,
                                &x,
                                &w,
                                epi,
                                win,
                                &mut got_p,
                                Some(&mut got_a),
                            );
                            forward_on(Isa::Avx512, p, &g, &x, &w, epi, win, &mut only, None);
                            (
                                forward_vec(&g, &x, &w, epi).expect("taken"),
                                maxpool2x2_vec(&g, &x, &w, epi, true).expect("taken"),
                            )
                        });
                        assert_eq!(bits(&got), bits(&want), "{what}");
                        assert_eq!(bits(&y), bits(&want), "{what}: new vector");
                        if len > 0 {
                            assert_eq!(bits(&got_p), bits(&want_p), "{what}: pooled");
                            assert_eq!(got_a, want_a, "{what}: argmax");
                            assert_eq!(bits(&only), bits(&want_p), "{what}: no argmax");
                            assert_eq!(bits(&p1), bits(&want_p), "{what}: pooled vector");
                            assert_eq!(a1, want_a, "{what}: argmax vector");
                        }
                    }
                }
            }
        }
        // Not taken: several channels, a 2x2 or 3x2 filter, column stride or dilation 2.
        for (c, k, st, dil) in [
            (3, [3, 3], 1, 1),
            (1, [2, 2], 1, 1),
            (1, [3, 2], 1, 1),
            (1, [3, 3], 2, 1),
            (1, [3, 3], 1, 2),
        ] {
            let g = Conv2dGeom::new([1, 11, 13, c], k, 32, [1, st], [1, dil], Padding::Valid);
            let (x, w) = (r.vec(g.input_len(), false), r.vec(g.filter_len(), false));
            let epi = epilogues(&[])[0];
            let plan = FastFwd::new(Isa::Avx512, &g, &x, &w, epi).expect("AVX-512 plan");
            assert!(!plan.wreg, "{g:?}");
        }
    }

    /// Independent reference: plain loops in f64 over coarse data (every sum exact in f32), bias,
    /// ReLU, then the 2x2 max-pool with the first-maximum rule written out.
    #[test]
    fn fused_2x2_pool_matches_reference_loops_exactly_on_coarse_data() {
        if !have() {
            return;
        }
        let win = PoolWindow { ph: 2, pw: 2 };
        let mut r = Rng(4242);
        for g in geoms() {
            let (poh, pow) = win.pooled(g.oh, g.ow);
            if poh * pow == 0 {
                continue;
            }
            let x = r.vec(g.input_len(), true);
            let w = r.vec(g.filter_len(), true);
            let b = r.vec(g.oc, true);
            let conv = |n: usize, oy: usize, ox: usize, o: usize| {
                let mut acc = 0f64;
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
                        let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
                        if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                            continue;
                        }
                        for ci in 0..g.c {
                            let xv = x[((n * g.h + iy as usize) * g.w + ix as usize) * g.c + ci];
                            let wv = w[((ky * g.kw + kx) * g.c + ci) * g.oc + o];
                            acc += xv as f64 * wv as f64;
                        }
                    }
                }
                (acc + b[o] as f64).max(0.0)
            };
            let len = g.n * poh * pow * g.oc;
            let mut got = vec![0f32; len];
            let mut got_a = vec![0u8; len];
            let epi = Epilogue {
                bias: Some(&b[..]),
                relu: true,
            };
            let p = Path::Direct;
            forward_on(
                Isa::Avx512,
                p,
                &g,
                &x,
                &w,
                epi,
                win,
                &mut got,
                Some(&mut got_a),
            );
            for n in 0..g.n {
                for py in 0..poh {
                    for px in 0..pow {
                        for o in 0..g.oc {
                            let (mut best, mut arg) = (f64::NEG_INFINITY, 0u8);
                            for i in 0..2 {
                                for j in 0..2 {
                                    let v = conv(n, 2 * py + i, 2 * px + j, o);
                                    if v > best {
                                        best = v;
                                        arg = (2 * i + j) as u8;
                                    }
                                }
                            }
                            let at = ((n * poh + py) * pow + px) * g.oc + o;
                            assert_eq!(got[at] as f64, best, "{g:?} at {at}");
                            assert_eq!(got_a[at], arg, "{g:?} argmax at {at}");
                        }
                    }
                }
            }
        }
    }

    /// The entry points that allocate (never zero-filling: the ops' path) give the same bits as
    /// the portable kernels writing into zeroed slices, on 1 and 2 threads.
    #[test]
    fn new_buffers_match_the_portable_slice_paths() {
        if !have() {
            return;
        }
        let win = PoolWindow { ph: 2, pw: 2 };
        let mut r = Rng(31337);
        for g in geoms() {
            let x = r.vec(g.input_len(), false);
            let w = r.vec(g.filter_len(), false);
            let b = r.vec(g.oc, false);
            for epi in epilogues(&b) {
                let mut want = vec![0f32; g.output_len()];
                cd::forward(Isa::Portable, &g, &x, &w, &mut want, epi);
                let (want_p, want_a) = portable_pool(&g, &x, &w, epi, win);
                for threads in [1, 2] {
                    let (y, (p1, a1), (p0, a0)) = pool(threads).install(|| {
                        (
                            forward_vec(&g, &x, &w, epi).expect("AVX-512 f32 takes the call"),
                            maxpool2x2_vec(&g, &x, &w, epi, true).expect("takes the call"),
                            maxpool2x2_vec(&g, &x, &w, epi, false).expect("takes the call"),
                        )
                    });
                    let what = format!("{g:?} relu {} threads {threads}", epi.relu);
                    assert_eq!(bits(&y), bits(&want), "{what}");
                    assert_eq!(bits(&p1), bits(&want_p), "{what}: pooled");
                    assert_eq!(a1, want_a, "{what}: argmax");
                    assert_eq!(bits(&p0), bits(&want_p), "{what}: pooled, no argmax");
                    assert!(a0.is_empty());
                }
            }
        }
        // f64 is not taken.
        let g = Conv2dGeom::new([1, 5, 5, 1], [3, 3], 4, [1, 1], [1, 1], Padding::Valid);
        let (x, w) = (vec![1f64; 25], vec![1f64; 36]);
        let epi = Epilogue {
            bias: None,
            relu: false,
        };
        assert!(forward_vec(&g, &x, &w, epi).is_none());
        assert!(maxpool2x2_vec(&g, &x, &w, epi, true).is_none());
    }

    /// The diagnostics of `examples/conv1_fwd_limits.rs`: the reused-buffer entry gives the
    /// portable kernel's bits; the store probe writes every element (odd lengths too).
    #[test]
    fn probe_entries_match_the_portable_kernel() {
        if !have() {
            return;
        }
        let g = Conv2dGeom::new([3, 28, 28, 1], [3, 3], 32, [1, 1], [1, 1], Padding::Valid);
        let mut r = Rng(7);
        let x = r.vec(g.input_len(), false);
        let w = r.vec(g.filter_len(), false);
        let epi = Epilogue {
            bias: None,
            relu: false,
        };
        let mut want = vec![0f32; g.output_len()];
        cd::forward(Isa::Portable, &g, &x, &w, &mut want, epi);
        for threads in [1, 2] {
            let mut got = vec![f32::NAN; g.output_len()];
            let mut s = vec![0f32; 1000 * 37 + 5];
            pool(threads).install(|| {
                assert!(probe::forward_into(&g, &x, &w, &mut got));
                assert!(probe::forward_to_scratch(&g, &x, &w, &mut got.clone()));
                probe::split_only(&mut got.clone(), g.ow * g.oc);
                assert!(probe::store_only(&mut s[..1000 * 37], 37, 2.5, true));
                assert!(probe::store_only(&mut s[1000 * 37..], 5, 1.5, false));
            });
            assert_eq!(bits(&got), bits(&want), "threads {threads}");
            assert!(s[..1000 * 37].iter().all(|&v| v == 2.5));
            assert!(s[1000 * 37..].iter().all(|&v| v == 1.5));
        }
    }

    /// NaN inputs: ReLU maps NaN to 0; without ReLU the pool keeps MaxPool's rule (a NaN first
    /// element stays, a later NaN never replaces) and the argmax the strictly-greater scan's.
    #[test]
    fn nan_inputs_follow_the_portable_rules() {
        if !have() {
            return;
        }
        let win = PoolWindow { ph: 2, pw: 2 };
        let g = Conv2dGeom::new([2, 12, 11, 1], [3, 3], 20, [1, 1], [1, 1], Padding::Same);
        let mut r = Rng(5);
        let mut x = r.vec(g.input_len(), false);
        for i in (0..x.len()).step_by(17) {
            x[i] = f32::NAN;
        }
        let w = r.vec(g.filter_len(), false);
        let b = r.vec(g.oc, false);
        let (poh, pow) = win.pooled(g.oh, g.ow);
        let len = g.n * poh * pow * g.oc;
        let same = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .all(|(u, v)| u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan()))
        };
        for epi in epilogues(&b) {
            let mut want_y = vec![0f32; g.output_len()];
            let mut got_y = vec![0f32; g.output_len()];
            cd::forward(Isa::Portable, &g, &x, &w, &mut want_y, epi);
            cd::forward(Isa::Avx512, &g, &x, &w, &mut got_y, epi);
            assert!(same(&got_y, &want_y), "rows relu {}", epi.relu);
            assert_eq!(epi.relu, !got_y.iter().any(|v| v.is_nan()));
            let (mut want, mut want_a) = (vec![0f32; len], vec![0u8; len]);
            let (mut got, mut got_a) = (vec![0f32; len], vec![0u8; len]);
            let p = Path::Direct;
            forward_on(
                Isa::Portable,
                p,
                &g,
                &x,
                &w,
                epi,
                win,
                &mut want,
                Some(&mut want_a),
            );
            forward_on(
                Isa::Avx512,
                p,
                &g,
                &x,
                &w,
                epi,
                win,
                &mut got,
                Some(&mut got_a),
            );
            assert!(same(&got, &want), "pooled relu {}", epi.relu);
            assert_eq!(got_a, want_a, "argmax relu {}", epi.relu);
        }
    }
}
