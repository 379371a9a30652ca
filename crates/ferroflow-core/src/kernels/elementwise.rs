//! Elementwise kernels: maps over one, two or three (broadcast) inputs, and dtype casts.
//!
//! The inner loops run through [`super::simd::run`]: compiled for AVX-512, AVX2 and the baseline,
//! chosen at run time, bit-identical (the same closure in each; no fast-math). Work is split over
//! threads only above [`super::parallel::PAR_THRESHOLD`] elements, in fixed chunks.

use std::sync::Arc;

use super::parallel::for_each_chunk_mut;
use crate::dtype::{DType, Element};
use crate::layout::Layout;
use crate::storage::{Storage, StorageElement};
use crate::tensor::Tensor;

/// `f` applied to every element of `x` (any layout), as a contiguous vector.
///
/// Panics if `T` is not `x`'s dtype (ops check dtypes first).
pub fn map<T, U, F>(x: &Tensor, f: F) -> Vec<U>
where
    T: StorageElement,
    U: Element,
    F: Fn(T) -> U + Sync + Send,
{
    let data = x.data::<T>().expect("map: dtype checked by the op");
    let mut out = vec![U::default(); data.len()];
    for_each_chunk_mut(&mut out, |start, chunk| {
        let src = &data[start..start + chunk.len()];
        super::simd::run(|| {
            for (o, &v) in chunk.iter_mut().zip(src) {
                *o = f(v);
            }
        })
    });
    out
}

/// Storage offsets for `layout` broadcast to `shape`, one per output element, computed lazily
/// row by row: returns, for each innermost output row, the offset of its first element and the
/// stride along the row.
fn row_starts(layout: &Layout, shape: &[usize]) -> (Vec<usize>, usize) {
    let b = layout
        .broadcast_to(shape)
        .expect("broadcast checked by the op");
    let mut starts = Vec::new();
    let mut inner_stride = 0;
    b.for_each_row(|off, stride, _| {
        starts.push(off);
        inner_stride = stride;
    });
    (starts, inner_stride)
}

/// `f(a, b)` with NumPy broadcasting to `shape`, as a contiguous vector.
pub fn zip_map<A, B, U, F>(a: &Tensor, b: &Tensor, shape: &[usize], f: F) -> Vec<U>
where
    A: StorageElement,
    B: StorageElement,
    U: Element,
    F: Fn(A, B) -> U + Sync + Send,
{
    let n: usize = shape.iter().product();
    let mut out = vec![U::default(); n];
    if n == 0 {
        return out;
    }
    // Fast path: same shape, both contiguous.
    if a.shape() == shape && b.shape() == shape && a.is_contiguous() && b.is_contiguous() {
        let (da, db) = (a.data::<A>().expect("dtype"), b.data::<B>().expect("dtype"));
        for_each_chunk_mut(&mut out, |s, c| {
            super::simd::run(|| {
                for ((o, &x), &y) in c.iter_mut().zip(&da[s..]).zip(&db[s..]) {
                    *o = f(x, y);
                }
            })
        });
        return out;
    }
    // Scalar on one side.
    if b.num_elements() == 1 && a.shape() == shape {
        let y = b.data::<B>().expect("dtype")[0];
        let da = a.data::<A>().expect("dtype");
        for_each_chunk_mut(&mut out, |s, c| {
            super::simd::run(|| {
                for (o, &x) in c.iter_mut().zip(&da[s..]) {
                    *o = f(x, y);
                }
            })
        });
        return out;
    }
    if a.num_elements() == 1 && b.shape() == shape {
        let x = a.data::<A>().expect("dtype")[0];
        let db = b.data::<B>().expect("dtype");
        for_each_chunk_mut(&mut out, |s, c| {
            super::simd::run(|| {
                for (o, &y) in c.iter_mut().zip(&db[s..]) {
                    *o = f(x, y);
                }
            })
        });
        return out;
    }
    // General broadcast: walk output rows; each input contributes a (start, stride) per row.
    let sa = A::slice(a.storage()).expect("dtype");
    let sb = B::slice(b.storage()).expect("dtype");
    let (ra, ia) = row_starts(a.layout(), shape);
    let (rb, ib) = row_starts(b.layout(), shape);
    let inner = *shape.last().unwrap_or(&1);
    let row_len = inner.max(1);
    super::parallel::for_each_row_mut(&mut out, row_len, 1, |r, row| {
        let (oa, ob) = (ra[r], rb[r]);
        super::simd::run(|| match (ia, ib) {
            (1, 1) => {
                for (j, o) in row.iter_mut().enumerate() {
                    *o = f(sa[oa + j], sb[ob + j]);
                }
            }
            (1, 0) => {
                let y = sb[ob];
                for (j, o) in row.iter_mut().enumerate() {
                    *o = f(sa[oa + j], y);
                }
            }
            (0, 1) => {
                let x = sa[oa];
                for (j, o) in row.iter_mut().enumerate() {
                    *o = f(x, sb[ob + j]);
                }
            }
            _ => {
                for (j, o) in row.iter_mut().enumerate() {
                    *o = f(sa[oa + j * ia], sb[ob + j * ib]);
                }
            }
        })
    });
    out
}

/// `f(c, a, b)` with broadcasting of three inputs to `shape` (used by `where`).
pub fn zip3_map<C, A, U, F>(c: &Tensor, a: &Tensor, b: &Tensor, shape: &[usize], f: F) -> Vec<U>
where
    C: StorageElement,
    A: StorageElement,
    U: Element,
    F: Fn(C, A, A) -> U + Sync + Send,
{
    let n: usize = shape.iter().product();
    let mut out = vec![U::default(); n];
    if n == 0 {
        return out;
    }
    let sc = C::slice(c.storage()).expect("dtype");
    let sa = A::slice(a.storage()).expect("dtype");
    let sb = A::slice(b.storage()).expect("dtype");
    let (rc, ic) = row_starts(c.layout(), shape);
    let (ra, ia) = row_starts(a.layout(), shape);
    let (rb, ib) = row_starts(b.layout(), shape);
    let row_len = shape.last().copied().unwrap_or(1).max(1);
    super::parallel::for_each_row_mut(&mut out, row_len, 1, |r, row| {
        for (j, o) in row.iter_mut().enumerate() {
            *o = f(sc[rc[r] + j * ic], sa[ra[r] + j * ia], sb[rb[r] + j * ib]);
        }
    });
    out
}

/// A contiguous tensor from a typed vector.
pub fn tensor_from<T: StorageElement>(v: Vec<T>, shape: &[usize]) -> Tensor {
    Tensor::from_parts(Arc::new(T::into_storage(v)), Layout::contiguous(shape))
}

fn cast_to<T: StorageElement, U: StorageElement>(x: &Tensor, conv: fn(T) -> U) -> Storage {
    U::into_storage(map::<T, U, _>(x, conv))
}

/// Converts `x` to `dtype` (float → int truncates toward zero, anything → bool is `!= 0`).
pub fn cast(x: &Tensor, dtype: DType) -> Tensor {
    if x.dtype() == dtype {
        return x.clone();
    }
    use half::{bf16, f16};
    let s = match (x.dtype(), dtype) {
        (DType::F32, DType::F64) => cast_to::<f32, f64>(x, |v| v as f64),
        (DType::F64, DType::F32) => cast_to::<f64, f32>(x, |v| v as f32),
        (DType::F32, DType::F16) => cast_to::<f32, f16>(x, f16::from_f32),
        (DType::F16, DType::F32) => cast_to::<f16, f32>(x, f16::to_f32),
        (DType::F32, DType::BF16) => cast_to::<f32, bf16>(x, bf16::from_f32),
        (DType::BF16, DType::F32) => cast_to::<bf16, f32>(x, bf16::to_f32),
        (DType::U8, DType::F32) => cast_to::<u8, f32>(x, |v| v as f32),
        (DType::I32, DType::F32) => cast_to::<i32, f32>(x, |v| v as f32),
        (DType::I64, DType::F32) => cast_to::<i64, f32>(x, |v| v as f32),
        (DType::Bool, DType::F32) => cast_to::<bool, f32>(x, |v| v as u8 as f32),
        (DType::F32, DType::I32) => cast_to::<f32, i32>(x, |v| v as i32),
        (DType::F32, DType::I64) => cast_to::<f32, i64>(x, |v| v as i64),
        _ => {
            // Generic route through f64 (exact for every dtype but very large i64).
            let v = x.to_f64_vec();
            crate::tensor::storage_from_f64(dtype, &v)
        }
    };
    Tensor::from_parts(Arc::new(s), Layout::contiguous(x.shape()))
}
