//! Helpers shared by the kernels' unit tests: deterministic pseudo-random inputs and thread pools
//! of a given size (for the "same bits on 1 and 2 threads" checks).

use crate::kernels::Float;

/// A deterministic stream of pseudo-random 64-bit states (xorshift64) from `seed`.
pub(crate) fn bits_stream(seed: u64) -> impl Iterator<Item = u64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    std::iter::from_fn(move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        Some(s)
    })
}

/// A deterministic stream of values in `[0, 1)` (53-bit mantissas of [`bits_stream`]).
pub(crate) fn unit_stream(seed: u64) -> impl Iterator<Item = f64> {
    bits_stream(seed).map(|s| ((s >> 11) as f64) / ((1u64 << 53) as f64))
}

/// A deterministic stream of values on a grid of quarters in `[-1, 1]` (many zeros and ties).
pub(crate) fn grid_stream(seed: u64) -> impl Iterator<Item = f64> {
    bits_stream(seed).map(|s| ((s >> 33) % 9) as f64 / 4.0 - 1.0)
}

/// `len` deterministic pseudo-random values in `[-1, 1)` from `seed`, as `T`.
pub(crate) fn rand_vec<T: Float>(len: usize, seed: u64) -> Vec<T> {
    unit_stream(seed)
        .take(len)
        .map(|u| T::from_f64c(u * 2.0 - 1.0))
        .collect()
}

/// A rayon pool of exactly `threads` threads.
pub(crate) fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon thread pool")
}
