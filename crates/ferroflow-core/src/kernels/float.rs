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
