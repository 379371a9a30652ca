//! Index-mapped copies shared by every shape/indexing op (slice, strided slice, reverse, tile,
//! pad, concat, gather, scatter, segment sums).
//!
//! The central idea: an output element at multi-index `[i0, i1, ...]` reads the source element
//! `[map0[i0], map1[i1], ...]`, where each `map_d` is a per-dimension list of source indices
//! (`None` = a fill value). Slicing, negative strides, tiling and mirror padding are all such
//! maps. The scatter variants walk the same maps in the other direction, accumulating.

use std::sync::Arc;

use crate::layout::{contiguous_strides, Layout};
use crate::storage::{Storage, StorageElement};
use crate::tensor::Tensor;

/// Source indices along one dimension, one per output index (`None` = fill / dropped).
pub type IndexMap = Vec<Option<usize>>;

/// Element types that can be summed (for scatter-add and segment sums): wrapping addition for
/// integers, logical OR for bool, f16/bf16 through f32.
pub trait Accumulate: StorageElement {
    /// `self + other`.
    fn acc(self, other: Self) -> Self;
}

macro_rules! acc_float {
    ($($t:ty),*) => {$(impl Accumulate for $t {
        #[inline(always)]
        fn acc(self, o: Self) -> Self { self + o }
    })*};
}
acc_float!(f32, f64);
macro_rules! acc_int {
    ($($t:ty),*) => {$(impl Accumulate for $t {
        #[inline(always)]
        fn acc(self, o: Self) -> Self { self.wrapping_add(o) }
    })*};
}
acc_int!(i32, i64, u8);
impl Accumulate for bool {
    fn acc(self, o: Self) -> Self {
        self || o
    }
}
impl Accumulate for half::f16 {
    fn acc(self, o: Self) -> Self {
        half::f16::from_f32(self.to_f32() + o.to_f32())
    }
}
impl Accumulate for half::bf16 {
    fn acc(self, o: Self) -> Self {
        half::bf16::from_f32(self.to_f32() + o.to_f32())
    }
}

/// Calls `f(dst_flat_index, src_offset)` for every element of the index space given by `maps`
/// (row-major), where `src_offset` is `Σ map_d[i_d] * strides[d]` or `None` when some map entry
/// is `None`.
fn walk_maps(maps: &[IndexMap], strides: &[usize], mut f: impl FnMut(usize, Option<usize>)) {
    let n: usize = maps.iter().map(|m| m.len()).product();
    if n == 0 {
        return;
    }
    let rank = maps.len();
    if rank == 0 {
        f(0, Some(0));
        return;
    }
    // Per-dimension offsets, precomputed.
    let offs: Vec<IndexMap> = maps
        .iter()
        .zip(strides)
        .map(|(m, &s)| m.iter().map(|v| v.map(|i| i * s)).collect())
        .collect();
    let inner = &offs[rank - 1];
    let mut idx = vec![0usize; rank - 1];
    let mut flat = 0usize;
    loop {
        let base: Option<usize> = idx
            .iter()
            .zip(&offs)
            .try_fold(0usize, |acc, (&i, o)| o[i].map(|v| acc + v));
        for o in inner {
            f(flat, base.and_then(|b| o.map(|v| b + v)));
            flat += 1;
        }
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < maps[d].len() {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Gathers `src` (row-major, shape `src_shape`) through per-dimension index maps; entries that
/// are `None` in any map read `fill`. The result has shape `[maps[0].len(), ...]`.
pub fn gather_maps<T: Copy>(src: &[T], src_shape: &[usize], maps: &[IndexMap], fill: T) -> Vec<T> {
    let strides = contiguous_strides(src_shape);
    let n: usize = maps.iter().map(|m| m.len()).product();
    let mut out = vec![fill; n];
    walk_maps(maps, &strides, |i, o| {
        if let Some(o) = o {
            out[i] = src[o];
        }
    });
    out
}

/// The reverse of [`gather_maps`]: adds every element of `src` (shape `[maps[0].len(), ...]`)
/// into `dst` (row-major, shape `dst_shape`) at the mapped position; `None` entries are dropped.
pub fn scatter_add_maps<T: Accumulate>(
    dst: &mut [T],
    dst_shape: &[usize],
    maps: &[IndexMap],
    src: &[T],
) {
    let strides = contiguous_strides(dst_shape);
    walk_maps(maps, &strides, |i, o| {
        if let Some(o) = o {
            dst[o] = dst[o].acc(src[i]);
        }
    });
}

/// Copies whole rows: `out[r] = src[rows[r]]` for rows of `row_len` elements; `None` rows are
/// left at `T::default()`. Used by gather-like ops.
pub fn gather_rows<T: Copy + Default>(src: &[T], row_len: usize, rows: &[Option<usize>]) -> Vec<T> {
    let mut out = vec![T::default(); rows.len() * row_len];
    if row_len == 0 {
        return out;
    }
    for (o, r) in out.chunks_mut(row_len).zip(rows) {
        if let Some(r) = r {
            o.copy_from_slice(&src[r * row_len..(r + 1) * row_len]);
        }
    }
    out
}

/// Adds whole rows: `dst[rows[r]] += src[r]` for rows of `row_len` elements, in order (so the
/// result is deterministic); `None` rows are dropped. Used by scatter-like ops.
pub fn scatter_add_rows<T: Accumulate>(
    dst: &mut [T],
    row_len: usize,
    rows: &[Option<usize>],
    src: &[T],
) {
    if row_len == 0 {
        return;
    }
    for (s, r) in src.chunks(row_len).zip(rows) {
        if let Some(r) = r {
            for (d, &v) in dst[r * row_len..(r + 1) * row_len].iter_mut().zip(s) {
                *d = d.acc(v);
            }
        }
    }
}

/// Concatenates contiguous blocks: input `k` contributes `outer` blocks of `block_len[k]`
/// elements each, interleaved (the kernel of concat and stack).
pub fn concat_blocks<T: Copy>(srcs: &[&[T]], block_len: &[usize], outer: usize) -> Vec<T> {
    let total: usize = block_len.iter().sum::<usize>() * outer;
    let mut out = Vec::with_capacity(total);
    for o in 0..outer {
        for (s, &b) in srcs.iter().zip(block_len) {
            out.extend_from_slice(&s[o * b..(o + 1) * b]);
        }
    }
    out
}

/// A contiguous tensor from a storage and shape.
pub fn tensor_from_storage(s: Storage, shape: &[usize]) -> Tensor {
    Tensor::from_parts(Arc::new(s), Layout::contiguous(shape))
}

/// Runs [`gather_maps`] on a tensor of any dtype (`fill` converted to the dtype).
pub fn gather_maps_tensor(x: &Tensor, maps: &[IndexMap], fill: f64) -> Tensor {
    let shape: Vec<usize> = maps.iter().map(|m| m.len()).collect();
    let x = x.contiguous();
    let s = crate::with_storage!(&**x.storage(), v => {
        let f = crate::dtype::Element::from_f64(fill);
        StorageElement::into_storage(gather_maps(v, x.shape(), maps, f))
    });
    tensor_from_storage(s, &shape)
}

/// Runs [`scatter_add_maps`] of `src` into zeros of `dst_shape`, for any dtype.
pub fn scatter_add_maps_tensor(src: &Tensor, dst_shape: &[usize], maps: &[IndexMap]) -> Tensor {
    let src = src.contiguous();
    let n: usize = dst_shape.iter().product();
    let mut dst = Storage::zeros(src.dtype(), n);
    crate::with_storage!(&mut dst, d => {
        match StorageElement::slice(src.storage()) {
            Some(s) => scatter_add_maps(d, dst_shape, maps, s),
            None => unreachable!("same dtype"),
        }
    });
    tensor_from_storage(dst, dst_shape)
}

/// Affine map `start, start + step, ...` (`count` entries, all in range by construction).
pub fn affine_map(start: isize, step: isize, count: usize) -> IndexMap {
    (0..count as isize)
        .map(|k| Some((start + k * step) as usize))
        .collect()
}

/// The identity map `0..n`.
pub fn full_map(n: usize) -> IndexMap {
    (0..n).map(Some).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_gather_and_scatter() {
        let src: Vec<i32> = (0..6).collect();
        let maps = vec![vec![Some(1), None], vec![Some(2), Some(0)]];
        assert_eq!(gather_maps(&src, &[2, 3], &maps, -1), vec![5, 3, -1, -1]);
        let mut dst = vec![0i32; 6];
        scatter_add_maps(
            &mut dst,
            &[2, 3],
            &[vec![Some(1), Some(1)], vec![Some(0)]],
            &[2, 3],
        );
        assert_eq!(dst, vec![0, 0, 0, 5, 0, 0]);
    }
}
