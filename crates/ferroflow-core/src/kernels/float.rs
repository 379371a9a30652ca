//! The element trait shared by floating-point kernels (f32 and f64).

use std::fmt::Debug;

/// A floating-point element type our kernels compute in: `f32` or `f64`.
///
/// `num_traits::Float` supplies the math (`exp`, `ln`, `sqrt`, ...); the extra bounds let kernels
/// hand slices to `gemm` and across `rayon` threads.
pub trait Float:
    num_traits::Float
    + num_traits::FromPrimitive
    + num_traits::NumAssign
    + Default
    + Debug
    + Send
    + Sync
    + std::iter::Sum
    + 'static
{
    /// Converts an `f64` constant into this type.
    fn from_f64c(v: f64) -> Self;
    /// Widens to `f64` (for formatting and tests).
    fn to_f64c(self) -> f64;
}

impl Float for f32 {
    #[inline(always)]
    fn from_f64c(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64c(self) -> f64 {
        self as f64
    }
}

impl Float for f64 {
    #[inline(always)]
    fn from_f64c(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64c(self) -> f64 {
        self
    }
}

/// Reinterprets `&[T]` as `&[U]` when `T` and `U` are the same type (a kernel generic over
/// [`Float`] handing its slices to an `f32`-only SIMD path).
pub(crate) fn same_ref<T: 'static, U: 'static>(x: &[T]) -> Option<&[U]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<U>() {
        // SAFETY: `T` and `U` are the same type (equal `TypeId`s), so the pointer, length and
        // lifetime describe a valid `[U]`.
        Some(unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<U>(), x.len()) })
    } else {
        None
    }
}

/// Reinterprets `&mut [T]` as `&mut [U]` when `T` and `U` are the same type.
pub(crate) fn same_mut<T: 'static, U: 'static>(x: &mut [T]) -> Option<&mut [U]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<U>() {
        // SAFETY: as in `same_ref`; the borrow of `x` moves into the result.
        Some(unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<U>(), x.len()) })
    } else {
        None
    }
}

/// `s` as `&[f32]` when `T` is `f32`.
#[inline(always)]
pub(crate) fn as_f32<T: 'static>(s: &[T]) -> Option<&[f32]> {
    same_ref(s)
}

/// `s` as `&mut [f32]` when `T` is `f32`.
#[inline(always)]
pub(crate) fn as_f32_mut<T: 'static>(s: &mut [T]) -> Option<&mut [f32]> {
    same_mut(s)
}
