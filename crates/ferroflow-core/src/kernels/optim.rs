//! Vectorised optimizer updates (one pass over a variable, its gradient and its slots).
//!
//! [`adam`] is Keras 3's Adam `update_step` (without `amsgrad`) on a contiguous `float32` or
//! `float64` variable, with exactly Keras's per-element expressions and their order:
//! `m += (g - m)·(1 - β₁)`, `v += (g² - v)·(1 - β₂)`, `w -= m·α / (√v + ε)` where α is the
//! bias-corrected learning rate. The loop is compiled for AVX-512 / AVX2 / the baseline and chosen
//! at run time ([`super::simd`]); no variant fuses or reorders operations, so all give the same
//! bits as the plain scalar loop, and the work is split over fixed chunks (never by the thread
//! count), so results do not depend on the number of threads either.

use crate::kernels::float::{same_mut, same_ref};

use super::simd::{self, Level};

/// Adam's scalars, in `f64` as Keras computes them before casting to the variable's dtype.
#[derive(Clone, Copy, Debug)]
pub struct AdamScalars {
    /// `lr·√(1 - β₂ᵗ) / (1 - β₁ᵗ)`.
    pub alpha: f64,
    /// β₁.
    pub beta_1: f64,
    /// β₂.
    pub beta_2: f64,
    /// ε.
    pub epsilon: f64,
}

/// The arithmetic of one element type.
trait Real: Copy + Send + Sync + 'static {
    fn from_f64(v: f64) -> Self;
    fn step(w: &mut Self, g: Self, m: &mut Self, v: &mut Self, k: &[Self; 4]);
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn step(w: &mut Self, g: Self, m: &mut Self, v: &mut Self, k: &[Self; 4]) {
                let [alpha, eps, c1, c2] = *k;
                let mi = *m + (g - *m) * c1;
                let vi = *v + (g * g - *v) * c2;
                *m = mi;
                *v = vi;
                *w -= mi * alpha / (vi.sqrt() + eps);
            }
        }
    };
}
real!(f32);
real!(f64);

/// Below this many elements the update stays on the calling thread (a rayon wake-up costs more
/// than the work).
const PAR_MIN: usize = 1 << 16;

fn adam_typed<T: Real>(
    level: Level,
    w: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    s: AdamScalars,
) {
    let k = [
        T::from_f64(s.alpha),
        T::from_f64(s.epsilon),
        T::from_f64(1.0 - s.beta_1),
        T::from_f64(1.0 - s.beta_2),
    ];
    let n = w.len();
    if n < PAR_MIN || rayon::current_num_threads() == 1 {
        simd::run_at(level, || {
            for (((wi, &gi), mi), vi) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                T::step(wi, gi, mi, vi, &k);
            }
        });
        return;
    }
    // Parallel over fixed chunks of all four arrays together.
    use rayon::prelude::*;
    const CHUNK: usize = super::parallel::CHUNK;
    w.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((w, g), m), v)| {
            simd::run_at(level, || {
                for (((wi, &gi), mi), vi) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                {
                    T::step(wi, gi, mi, vi, &k);
                }
            })
        });
}

/// Keras's Adam update (no `amsgrad`) of `w` with gradient `g` and slots `m` (momentum) and `v`
/// (velocity), in place, when `T` is `f32` or `f64` and all four have the same length; returns
/// `false` (touching nothing) otherwise, so the caller runs its own loop.
///
/// ```
/// use ferroflow_core::kernels::optim::{adam, AdamScalars};
/// let (mut w, g, mut m, mut v) = (vec![1.0f32], vec![0.5f32], vec![0.0f32], vec![0.0f32]);
/// let s = AdamScalars { alpha: 0.1, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 };
/// assert!(adam(&mut w, &g, &mut m, &mut v, s));
/// assert_eq!(m[0], 0.0 + (0.5 - 0.0) * (1.0f64 - 0.9) as f32);
/// ```
pub fn adam<T: 'static>(w: &mut [T], g: &[T], m: &mut [T], v: &mut [T], s: AdamScalars) -> bool {
    adam_at(simd::detected(), w, g, m, v, s)
}

/// [`adam`] compiled for `level` (tests compare the levels).
pub fn adam_at<T: 'static>(
    level: Level,
    w: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    s: AdamScalars,
) -> bool {
    let n = w.len();
    if g.len() != n || m.len() != n || v.len() != n {
        return false;
    }
    if let (Some(w), Some(g), Some(m), Some(v)) = (
        same_mut::<T, f32>(w),
        same_ref::<T, f32>(g),
        same_mut::<T, f32>(m),
        same_mut::<T, f32>(v),
    ) {
        adam_typed(level, w, g, m, v, s);
        return true;
    }
    if let (Some(w), Some(g), Some(m), Some(v)) = (
        same_mut::<T, f64>(w),
        same_ref::<T, f64>(g),
        same_mut::<T, f64>(m),
        same_mut::<T, f64>(v),
    ) {
        adam_typed(level, w, g, m, v, s);
        return true;
    }
    false
}
