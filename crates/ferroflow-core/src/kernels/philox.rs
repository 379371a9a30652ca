//! Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random
//! numbers: as easy as 1, 2, 3", SC 2011), the generator TensorFlow's stateless and stateful
//! random ops are built on.
//!
//! # Streams, counters and words
//!
//! A 64-bit `seed` becomes the 2×32-bit Philox key (`[seed as u32, (seed >> 32) as u32]`). One
//! Philox call maps a 128-bit counter to four 32-bit *words*. A *stream* starting at counter
//! `offset` is the sequence of words
//!
//! ```text
//! word j = philox(counter = offset + j / 4, key)[j % 4]
//! ```
//!
//! and every filler below reads element `i` from fixed word positions of that stream, so a value
//! depends only on `(seed, offset, i)` — never on the thread count or on how the output is cut
//! into chunks. The word use per element (and so the number of counters a call consumes, see
//! [`Dist::counters`]) is:
//!
//! | filler                                   | words used by element `i`            | elements per counter |
//! |------------------------------------------|--------------------------------------|----------------------|
//! | [`fill_uniform`] `f32`                   | `i`                                  | 4                    |
//! | [`fill_uniform`] `f64`                   | `2i, 2i+1`                           | 2                    |
//! | [`fill_normal`] `f32`                    | pair `p = i/2`: `2p, 2p+1`           | 4                    |
//! | [`fill_normal`] `f64`                    | pair `p = i/2`: `4p .. 4p+3`         | 2                    |
//! | [`fill_uniform_int`]                     | `2i, 2i+1`                           | 2                    |
//! | [`fill_bernoulli_keep`] / [`fill_dropout_mask`] | `i`                           | 4                    |
//! | [`fill_truncated_normal`]                | its own sub-stream (see the function) | 1 counter row each  |
//!
//! Consequently, filling `[0, n)` in one call equals filling `[0, k)` at `offset` and `[k, n)`
//! at `offset + k / (elements per counter)` whenever `k` is a multiple of the elements per
//! counter (any `k` for the truncated normal).
//!
//! A stateful generator (a `tf.random.Generator`-like object) hands out disjoint offsets to
//! successive ops with [`PhiloxStream::reserve`].
//!
//! The block function is bit-exact Philox4x32-10 (checked against Random123's known-answer
//! vectors), but the seed-to-key mapping, counter layout and bits-to-float conversions are our
//! own: values are *not* bit-identical to TensorFlow's for the same seed, only equally
//! distributed.

use crate::kernels::parallel;
use crate::kernels::Float;

/// First Philox4x32 round multiplier.
const M0: u32 = 0xD251_1F53;
/// Second Philox4x32 round multiplier.
const M1: u32 = 0xCD9E_8D57;
/// Key schedule increment for the first key word (golden ratio).
const W0: u32 = 0x9E37_79B9;
/// Key schedule increment for the second key word (sqrt(3) - 1).
const W1: u32 = 0xBB67_AE85;

/// 2^-24: scales a 24-bit integer into `[0, 1)`.
const INV_2_24: f64 = 1.0 / 16_777_216.0;
/// 2^-32: scales a 32-bit integer into `[0, 1)`.
const INV_2_32: f64 = 1.0 / 4_294_967_296.0;
/// 2^-53: scales a 53-bit integer into `[0, 1)`.
const INV_2_53: f64 = 1.0 / 9_007_199_254_740_992.0;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// The Philox4x32-10 block function: maps a 4×32-bit counter and a 2×32-bit key to four
/// pseudo-random 32-bit words (ten rounds, Random123's `philox4x32_R(10, ctr, key)`).
#[inline]
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Splits a 64-bit seed into the Philox key: `[low 32 bits, high 32 bits]`.
#[inline]
pub fn key_from_seed(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// Splits a 128-bit counter into Philox's four words, least significant word first.
#[inline]
pub fn counter_words(counter: u128) -> [u32; 4] {
    [
        counter as u32,
        (counter >> 32) as u32,
        (counter >> 64) as u32,
        (counter >> 96) as u32,
    ]
}

/// The four words of stream `seed` at 128-bit `counter`.
#[inline]
pub fn block(seed: u64, counter: u128) -> [u32; 4] {
    philox4x32_10(counter_words(counter), key_from_seed(seed))
}

/// Random access to the words of one stream, caching the last Philox block.
struct Words {
    key: [u32; 2],
    offset: u128,
    cached: u64,
    block: [u32; 4],
    valid: bool,
}

impl Words {
    fn new(key: [u32; 2], offset: u64) -> Self {
        Words {
            key,
            offset: u128::from(offset),
            cached: 0,
            block: [0; 4],
            valid: false,
        }
    }

    /// Word `j` of the stream: lane `j % 4` of counter `offset + j / 4`.
    #[inline]
    fn word(&mut self, j: u64) -> u32 {
        let c = j / 4;
        if !self.valid || c != self.cached {
            self.block = philox4x32_10(
                counter_words(self.offset.wrapping_add(u128::from(c))),
                self.key,
            );
            self.cached = c;
            self.valid = true;
        }
        self.block[(j % 4) as usize]
    }
}

/// Runs `f(words, i)` for every element `i` of `out`, in parallel chunks; each chunk reads the
/// stream at its own absolute element indices, so the result is independent of chunking.
fn fill_by_index<T: Send, F>(seed: u64, offset: u64, out: &mut [T], f: F)
where
    F: Fn(&mut Words, u64) -> T + Sync + Send,
{
    let key = key_from_seed(seed);
    parallel::for_each_chunk_mut(out, |start, chunk| {
        let mut words = Words::new(key, offset);
        for (k, o) in chunk.iter_mut().enumerate() {
            *o = f(&mut words, (start + k) as u64);
        }
    });
}

/// Whether `T` is `f64` (the only 8-byte [`Float`]); otherwise it is `f32`.
#[inline(always)]
fn is_f64<T: Float>() -> bool {
    std::mem::size_of::<T>() == 8
}

/// A uniform in `[0, 1)` from one word: its top 24 bits (exact in `f32`).
#[inline(always)]
fn unit24(w: u32) -> f64 {
    f64::from(w >> 8) * INV_2_24
}

/// A uniform in `[0, 1)` from two words (`lo | hi << 32`): its top 53 bits (exact in `f64`).
#[inline(always)]
fn unit53(lo: u32, hi: u32) -> f64 {
    ((u64::from(lo) | (u64::from(hi) << 32)) >> 11) as f64 * INV_2_53
}

/// Element `i`'s uniform in `[0, 1)` (exact in `T`), per the word table in the module docs.
#[inline(always)]
fn unit<T: Float>(w: &mut Words, i: u64) -> T {
    if is_f64::<T>() {
        T::from_f64c(unit53(w.word(2 * i), w.word(2 * i + 1)))
    } else {
        T::from_f64c(unit24(w.word(i)))
    }
}

/// The largest `f64` strictly below finite `x` (`f64::next_down` needs Rust 1.86).
fn next_down_f64(x: f64) -> f64 {
    if x == 0.0 {
        -f64::from_bits(1)
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() - 1)
    } else {
        f64::from_bits(x.to_bits() + 1)
    }
}

/// The largest `f32` strictly below finite `x`.
fn next_down_f32(x: f32) -> f32 {
    if x == 0.0 {
        -f32::from_bits(1)
    } else if x > 0.0 {
        f32::from_bits(x.to_bits() - 1)
    } else {
        f32::from_bits(x.to_bits() + 1)
    }
}

/// The largest `T` strictly below finite `x`.
fn next_down<T: Float>(x: T) -> T {
    if is_f64::<T>() {
        T::from_f64c(next_down_f64(x.to_f64c()))
    } else {
        T::from_f64c(f64::from(next_down_f32(x.to_f64c() as f32)))
    }
}

/// Fills `out` with uniforms in `[low, high)`: `low + (high - low) * u` with `u` in `[0, 1)`
/// built from 24 random bits for `f32` (one word per element) or 53 bits for `f64` (two words
/// per element). A result that rounds up to `high` is replaced by the largest value below
/// `high`. Consumes [`Dist::uniform`]`::<T>().counters(out.len())` counters from `offset`.
pub fn fill_uniform<T: Float>(seed: u64, offset: u64, out: &mut [T], low: T, high: T) {
    let span = high - low;
    let top = if high > low && high.is_finite() {
        next_down(high)
    } else {
        low
    };
    fill_by_index(seed, offset, out, |w, i| {
        let v = low + span * unit::<T>(w, i);
        if v >= high && high > low {
            top
        } else {
            v
        }
    });
}

/// A Box–Muller pair of standard normals from two uniforms: `u1` in `(0, 1]` (so `ln` is
/// finite) and `u2` in `[0, 1)`.
#[inline(always)]
fn box_muller<T: Float>(u1: T, u2: T) -> (T, T) {
    let two = T::from_f64c(2.0);
    let r = (-two * u1.ln()).sqrt();
    let theta = T::from_f64c(std::f64::consts::TAU) * u2;
    (r * theta.cos(), r * theta.sin())
}

/// Box–Muller pair `p` of the stream `w` (words `2p, 2p+1` for `f32`, `4p..4p+3` for `f64`).
#[inline(always)]
fn normal_pair<T: Float>(w: &mut Words, p: u64) -> (T, T) {
    let one = T::one();
    if is_f64::<T>() {
        let u1 = unit53(w.word(4 * p), w.word(4 * p + 1));
        let u2 = unit53(w.word(4 * p + 2), w.word(4 * p + 3));
        box_muller(one - T::from_f64c(u1), T::from_f64c(u2))
    } else {
        let u1 = unit24(w.word(2 * p));
        let u2 = unit24(w.word(2 * p + 1));
        box_muller(one - T::from_f64c(u1), T::from_f64c(u2))
    }
}

/// Fills `out` with normals `mean + stddev * z`, `z` standard normal by Box–Muller: elements
/// `2p` and `2p+1` are the cosine and sine halves of pair `p`, whose two uniforms come from words
/// `2p, 2p+1` (`f32`, 24 bits each) or `4p..4p+3` (`f64`, 53 bits each). Computed in `T`.
/// Consumes [`Dist::normal`]`::<T>().counters(out.len())` counters from `offset`.
pub fn fill_normal<T: Float>(seed: u64, offset: u64, out: &mut [T], mean: T, stddev: T) {
    let key = key_from_seed(seed);
    parallel::for_each_chunk_mut(out, |start, chunk| {
        let mut words = Words::new(key, offset);
        let mut cached: Option<(u64, (T, T))> = None;
        for (k, o) in chunk.iter_mut().enumerate() {
            let i = (start + k) as u64;
            let p = i / 2;
            let pair = match cached {
                Some((cp, z)) if cp == p => z,
                _ => {
                    let z = normal_pair::<T>(&mut words, p);
                    cached = Some((p, z));
                    z
                }
            };
            let z = if i.is_multiple_of(2) { pair.0 } else { pair.1 };
            *o = mean + stddev * z;
        }
    });
}

/// The key of the truncated-normal sub-streams of `seed`: the first two words of Philox at
/// counter `u128::MAX` under the seed's key, so these draws never reuse the plain stream's
/// (key, counter) pairs.
fn truncated_key(seed: u64) -> [u32; 2] {
    let b = philox4x32_10([u32::MAX; 4], key_from_seed(seed));
    [b[0], b[1]]
}

/// Fills `out` with `mean + stddev * z`, `z` a standard normal truncated to `[-2, 2]` (candidates
/// with `|z| > 2` are re-drawn, as in `tf.random.truncated_normal`).
///
/// Element `i` draws from its own sub-stream so a rejection never shifts another element: with a
/// key derived from the seed, attempt `a` (0, 1, ...) of element `i` uses the counter whose low
/// 64 bits are `a` and whose high 64 bits are `offset + i`; each attempt yields two Box–Muller
/// pairs for `f32` (four candidates) or one pair for `f64` (two candidates), tried in order.
/// Consumes `out.len()` counters from `offset` (one high-word row per element; see
/// [`Dist::TruncatedNormal`]).
pub fn fill_truncated_normal<T: Float>(seed: u64, offset: u64, out: &mut [T], mean: T, stddev: T) {
    let key = truncated_key(seed);
    let two = T::from_f64c(2.0);
    let one = T::one();
    parallel::for_each_chunk_mut(out, |start, chunk| {
        for (k, o) in chunk.iter_mut().enumerate() {
            let row = offset.wrapping_add((start + k) as u64);
            let mut attempt: u64 = 0;
            let z = loop {
                let b = philox4x32_10(
                    [
                        attempt as u32,
                        (attempt >> 32) as u32,
                        row as u32,
                        (row >> 32) as u32,
                    ],
                    key,
                );
                let cands: [T; 4] = if is_f64::<T>() {
                    let (a, c) = box_muller(
                        one - T::from_f64c(unit53(b[0], b[1])),
                        T::from_f64c(unit53(b[2], b[3])),
                    );
                    [a, c, T::nan(), T::nan()]
                } else {
                    let (a, c) =
                        box_muller(one - T::from_f64c(unit24(b[0])), T::from_f64c(unit24(b[1])));
                    let (d, e) =
                        box_muller(one - T::from_f64c(unit24(b[2])), T::from_f64c(unit24(b[3])));
                    [a, c, d, e]
                };
                // NaN placeholders fail the test, so f64 tries only its two real candidates.
                if let Some(z) = cands.into_iter().find(|z| z.abs() <= two) {
                    break z;
                }
                attempt = attempt.wrapping_add(1);
            };
            *o = mean + stddev * z;
        }
    });
}

/// Fills `out` with integers in `[low, high)`: element `i` takes the 64-bit value
/// `x = word(2i) | word(2i+1) << 32` and returns `low + x % (high - low)`. The modulo bias is at
/// most `(high - low) / 2^64` (below 1e-9 for ranges under 2^34), which we accept.
/// Consumes [`Dist::UniformInt`]`.counters(out.len())` counters from `offset`.
///
/// # Panics
/// If `low >= high`.
pub fn fill_uniform_int(seed: u64, offset: u64, out: &mut [i64], low: i64, high: i64) {
    assert!(
        low < high,
        "fill_uniform_int: need low < high, got [{low}, {high})"
    );
    let range = high.wrapping_sub(low) as u64;
    fill_by_index(seed, offset, out, |w, i| {
        let x = u64::from(w.word(2 * i)) | (u64::from(w.word(2 * i + 1)) << 32);
        low.wrapping_add((x % range) as i64)
    });
}

/// Element `i`'s keep decision: the uniform `word(i) / 2^32` is below `keep_prob`.
#[inline(always)]
fn keep(w: &mut Words, i: u64, keep_prob: f64) -> bool {
    f64::from(w.word(i)) * INV_2_32 < keep_prob
}

/// Fills `out` with Bernoulli(`keep_prob`) draws for dropout: element `i` is `true` (kept) iff
/// `word(i) / 2^32 < keep_prob` (32 bits of resolution; `keep_prob >= 1` keeps everything,
/// `<= 0` nothing). Consumes [`Dist::Bernoulli`]`.counters(out.len())` counters from `offset`.
pub fn fill_bernoulli_keep(seed: u64, offset: u64, out: &mut [bool], keep_prob: f64) {
    fill_by_index(seed, offset, out, |w, i| keep(w, i, keep_prob));
}

/// The same draws as [`fill_bernoulli_keep`], written as a dropout mask of `T`: `scale` where
/// kept and `0` where dropped (pass `scale = 1 / keep_prob` for inverted dropout, as
/// `tf.nn.dropout` does).
pub fn fill_dropout_mask<T: Float>(
    seed: u64,
    offset: u64,
    out: &mut [T],
    keep_prob: f64,
    scale: T,
) {
    fill_by_index(seed, offset, out, |w, i| {
        if keep(w, i, keep_prob) {
            scale
        } else {
            T::zero()
        }
    });
}

/// A uniformly random permutation of `0..n`: Fisher–Yates (`for i in (1..n).rev()`, swap `i`
/// with `j = next_u64() % (i + 1)`) driven sequentially by a [`PhiloxStream`] starting at
/// counter `offset`. Consumes [`Dist::Shuffle`]`.counters(n)` counters.
pub fn shuffle_indices(seed: u64, offset: u64, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut s = PhiloxStream::new(seed, offset);
    for i in (1..n).rev() {
        let j = (s.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// Which filler a counter count is asked for (see [`Dist::counters`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dist {
    /// [`fill_uniform`] into `f32` (4 elements per counter).
    UniformF32,
    /// [`fill_uniform`] into `f64` (2 elements per counter).
    UniformF64,
    /// [`fill_normal`] into `f32` (4 elements per counter).
    NormalF32,
    /// [`fill_normal`] into `f64` (2 elements per counter).
    NormalF64,
    /// [`fill_truncated_normal`] (1 counter row per element, any `T`).
    TruncatedNormal,
    /// [`fill_uniform_int`] (2 elements per counter).
    UniformInt,
    /// [`fill_bernoulli_keep`] / [`fill_dropout_mask`] (4 elements per counter).
    Bernoulli,
    /// [`shuffle_indices`] (two words per swap, `n - 1` swaps).
    Shuffle,
}

impl Dist {
    /// [`Dist::UniformF32`] or [`Dist::UniformF64`] for element type `T`.
    pub fn uniform<T: Float>() -> Self {
        if is_f64::<T>() {
            Dist::UniformF64
        } else {
            Dist::UniformF32
        }
    }

    /// [`Dist::NormalF32`] or [`Dist::NormalF64`] for element type `T`.
    pub fn normal<T: Float>() -> Self {
        if is_f64::<T>() {
            Dist::NormalF64
        } else {
            Dist::NormalF32
        }
    }

    /// How many counters a fill of `n` elements consumes from its `offset`: the next op can
    /// start at `offset + counters(n)` without overlapping.
    pub fn counters(self, n: usize) -> u64 {
        let n = n as u64;
        match self {
            Dist::UniformF32 | Dist::NormalF32 | Dist::Bernoulli => n.div_ceil(4),
            Dist::UniformF64 | Dist::NormalF64 | Dist::UniformInt => n.div_ceil(2),
            Dist::TruncatedNormal => n,
            Dist::Shuffle => (2 * n.saturating_sub(1)).div_ceil(4),
        }
    }
}

/// A sequential Philox stream: a seed plus the next counter to use, for sequential consumers
/// (shuffles, sampling loops) and for handing out disjoint counter ranges to successive ops.
#[derive(Clone, Debug)]
pub struct PhiloxStream {
    seed: u64,
    counter: u128,
    buf: [u32; 4],
    pos: usize,
}

impl PhiloxStream {
    /// A stream of `seed` whose next word is the first word of counter `offset`.
    pub fn new(seed: u64, offset: u64) -> Self {
        PhiloxStream {
            seed,
            counter: u128::from(offset),
            buf: [0; 4],
            pos: 4,
        }
    }

    /// The stream's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next counter a fresh block will be generated from (words still buffered from the
    /// previous counter are not counted).
    pub fn counter(&self) -> u128 {
        self.counter
    }

    /// The next 32-bit word: the words of counter `c` in order, then those of `c + 1`, ...
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= 4 {
            self.buf = block(self.seed, self.counter);
            self.counter = self.counter.wrapping_add(1);
            self.pos = 0;
        }
        let w = self.buf[self.pos];
        self.pos += 1;
        w
    }

    /// The next 64 bits: two words, the first one low (`lo | hi << 32`).
    pub fn next_u64(&mut self) -> u64 {
        let lo = self.next_u32();
        let hi = self.next_u32();
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// A uniform in `[0, 1)` from the top 53 bits of [`PhiloxStream::next_u64`].
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * INV_2_53
    }

    /// A uniform in `[0, 1)` from the top 24 bits of [`PhiloxStream::next_u32`].
    pub fn next_f32(&mut self) -> f32 {
        unit24(self.next_u32()) as f32
    }

    /// Advances the counter by `n_counters`, dropping any words left from the current block.
    pub fn skip(&mut self, n_counters: u64) {
        self.pos = 4;
        self.counter = self.counter.wrapping_add(u128::from(n_counters));
    }

    /// Reserves `n_counters` counters for one fill call and returns the `offset` to pass to it
    /// (e.g. `s.reserve(Dist::normal::<f32>().counters(n))`); words left from the current block
    /// are dropped. Offsets are `u64`: the counter must stay below 2^64.
    pub fn reserve(&mut self, n_counters: u64) -> u64 {
        self.pos = 4;
        let start = self.counter;
        self.counter = self.counter.wrapping_add(u128::from(n_counters));
        start as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_threads<R: Send>(k: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(k)
            .build()
            .unwrap()
            .install(f)
    }

    #[test]
    fn known_answer_vectors() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
        // The same through the seed/counter helpers.
        let seed = 0x299f31d0_a4093822u64;
        let ctr = 0x03707344_13198a2e_85a308d3_243f6a88u128;
        assert_eq!(
            block(seed, ctr),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    const N: usize = 1_000_003;

    /// Uniform f32, normal f64 and f32, truncated normal f64 and f32, ints, keep mask.
    type Fills = (
        Vec<f32>,
        Vec<f64>,
        Vec<f32>,
        Vec<f64>,
        Vec<f32>,
        Vec<i64>,
        Vec<bool>,
    );

    fn all_fills(threads: usize) -> Fills {
        with_threads(threads, || {
            let mut uf = vec![0f32; N];
            fill_uniform(7, 3, &mut uf, -1.0, 2.0);
            let mut nd = vec![0f64; N];
            fill_normal(7, 3, &mut nd, 0.5, 2.0);
            let mut nf = vec![0f32; N];
            fill_normal(7, 3, &mut nf, 0.5, 2.0);
            let mut td = vec![0f64; N];
            fill_truncated_normal(7, 3, &mut td, 0.0, 1.0);
            let mut tf = vec![0f32; N];
            fill_truncated_normal(7, 3, &mut tf, 0.0, 1.0);
            let mut ints = vec![0i64; N];
            fill_uniform_int(7, 3, &mut ints, -5, 1000);
            let mut keep = vec![false; N];
            fill_bernoulli_keep(7, 3, &mut keep, 0.3);
            (uf, nd, nf, td, tf, ints, keep)
        })
    }

    #[test]
    fn thread_count_does_not_change_results() {
        let a = all_fills(1);
        let b = all_fills(2);
        let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits32(&a.0), bits32(&b.0));
        assert_eq!(bits64(&a.1), bits64(&b.1));
        assert_eq!(bits32(&a.2), bits32(&b.2));
        assert_eq!(bits64(&a.3), bits64(&b.3));
        assert_eq!(bits32(&a.4), bits32(&b.4));
        assert_eq!(a.5, b.5);
        assert_eq!(a.6, b.6);
    }

    /// Fills `[0, n)` once and as `[0, k)` + `[k, n)` with the offset advanced by
    /// `dist.counters(k)`; both must agree bit for bit.
    fn split_equal<T: Copy + PartialEq + std::fmt::Debug + Default>(
        n: usize,
        k: usize,
        dist: Dist,
        fill: impl Fn(u64, &mut [T]),
    ) {
        let mut whole = vec![T::default(); n];
        fill(11, &mut whole);
        let mut parts = vec![T::default(); n];
        let (a, b) = parts.split_at_mut(k);
        fill(11, a);
        fill(11 + dist.counters(k), b);
        assert_eq!(whole, parts, "{dist:?} split at {k}");
    }

    #[test]
    fn chunk_independence() {
        let n = 70_001; // several parallel chunks
        for k in [0usize, 4, 400, 16_384, 40_000] {
            split_equal(n, k, Dist::UniformF32, |o, out: &mut [f32]| {
                fill_uniform(5, o, out, 0.0, 1.0)
            });
            split_equal(n, k, Dist::UniformF64, |o, out: &mut [f64]| {
                fill_uniform(5, o, out, 0.0, 1.0)
            });
            split_equal(n, k, Dist::NormalF32, |o, out: &mut [f32]| {
                fill_normal(5, o, out, 0.0, 1.0)
            });
            split_equal(n, k, Dist::NormalF64, |o, out: &mut [f64]| {
                fill_normal(5, o, out, 0.0, 1.0)
            });
            split_equal(n, k, Dist::UniformInt, |o, out: &mut [i64]| {
                fill_uniform_int(5, o, out, 0, 10)
            });
            split_equal(n, k, Dist::Bernoulli, |o, out: &mut [bool]| {
                fill_bernoulli_keep(5, o, out, 0.5)
            });
        }
        // Truncated normals split anywhere.
        for k in [1usize, 3, 999, 33_333] {
            split_equal(n, k, Dist::TruncatedNormal, |o, out: &mut [f32]| {
                fill_truncated_normal(5, o, out, 0.0, 1.0)
            });
            split_equal(n, k, Dist::TruncatedNormal, |o, out: &mut [f64]| {
                fill_truncated_normal(5, o, out, 0.0, 1.0)
            });
        }
    }

    #[test]
    fn stream_words_match_uniform_fill() {
        // fill_uniform::<f32> element i is the top 24 bits of stream word i.
        let mut out = vec![0f32; 10];
        fill_uniform(42, 9, &mut out, 0.0, 1.0);
        let mut s = PhiloxStream::new(42, 9);
        for x in out {
            assert_eq!(x, s.next_f32());
        }
        // skip/reserve move whole counters.
        let mut s = PhiloxStream::new(42, 0);
        s.next_u32();
        s.skip(2);
        assert_eq!(s.counter(), 3);
        assert_eq!(s.next_u32(), block(42, 3)[0]);
        assert_eq!(s.reserve(5), 4);
        assert_eq!(s.counter(), 9);
    }

    fn mean_var(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
        let n = v.clone().count() as f64;
        let m = v.clone().sum::<f64>() / n;
        let var = v.map(|x| (x - m) * (x - m)).sum::<f64>() / n;
        (m, var)
    }

    #[test]
    fn normal_statistics() {
        let n = 1_000_000;
        let mut f = vec![0f32; n];
        fill_normal(1, 0, &mut f, 0.0, 1.0);
        let (m, v) = mean_var(f.iter().map(|&x| f64::from(x)));
        assert!(m.abs() < 0.005, "mean {m}");
        assert!((v - 1.0).abs() < 0.01, "var {v}");
        let mut d = vec![0f64; n];
        fill_normal(2, 0, &mut d, 3.0, 2.0);
        let (m, v) = mean_var(d.iter().copied());
        assert!((m - 3.0).abs() < 0.01, "mean {m}");
        assert!((v - 4.0).abs() < 0.04, "var {v}");
        assert!(d.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn truncated_normal_statistics() {
        let n = 1_000_000;
        let expected_var = 0.773_741_1;
        let mut f = vec![0f32; n];
        fill_truncated_normal(3, 0, &mut f, 1.0, 3.0);
        assert!(f.iter().all(|&x| (x - 1.0).abs() <= 6.0 + 1e-5));
        let (m, v) = mean_var(f.iter().map(|&x| f64::from(x)));
        assert!((m - 1.0).abs() < 0.01, "mean {m}");
        assert!((v / 9.0 - expected_var).abs() < 0.006, "var {v}");
        let mut d = vec![0f64; n];
        fill_truncated_normal(4, 0, &mut d, 0.0, 1.0);
        assert!(d.iter().all(|x| x.abs() <= 2.0));
        let (m, v) = mean_var(d.iter().copied());
        assert!(m.abs() < 0.005, "mean {m}");
        assert!((v - expected_var).abs() < 0.006, "var {v}");
    }

    #[test]
    fn uniform_statistics() {
        let n = 1_000_000;
        let mut f = vec![0f32; n];
        fill_uniform(5, 0, &mut f, -2.0, 3.0);
        assert!(f.iter().all(|&x| (-2.0..3.0).contains(&x)));
        let (m, v) = mean_var(f.iter().map(|&x| f64::from(x)));
        assert!((m - 0.5).abs() < 0.01, "mean {m}");
        assert!((v - 25.0 / 12.0).abs() < 0.02, "var {v}");
        let mut d = vec![0f64; n];
        fill_uniform(6, 0, &mut d, 10.0, 11.0);
        assert!(d.iter().all(|&x| (10.0..11.0).contains(&x)));
        let (m, _) = mean_var(d.iter().copied());
        assert!((m - 10.5).abs() < 0.002, "mean {m}");
        // A range narrower than the rounding never returns `high`.
        let mut t = vec![0f32; 1000];
        fill_uniform(1, 0, &mut t, 1.0, 1.0 + f32::EPSILON);
        assert!(t.iter().all(|&x| x == 1.0));
    }

    #[test]
    fn uniform_int_and_bernoulli() {
        let n = 1_000_000;
        let mut v = vec![0i64; n];
        fill_uniform_int(8, 0, &mut v, -3, 7);
        let mut counts = [0usize; 10];
        for &x in &v {
            assert!((-3..7).contains(&x));
            counts[(x + 3) as usize] += 1;
        }
        for c in counts {
            assert!((c as f64 / n as f64 - 0.1).abs() < 0.003, "{counts:?}");
        }
        let mut full = vec![0i64; 1000];
        fill_uniform_int(8, 0, &mut full, i64::MIN, i64::MAX);
        assert!(full.iter().any(|&x| x < 0) && full.iter().any(|&x| x > 0));

        let mut keep = vec![false; n];
        fill_bernoulli_keep(9, 0, &mut keep, 0.3);
        let frac = keep.iter().filter(|&&k| k).count() as f64 / n as f64;
        assert!((frac - 0.3).abs() < 0.003, "{frac}");
        let mut mask = vec![0f32; n];
        fill_dropout_mask(9, 0, &mut mask, 0.3, 2.5);
        for (k, m) in keep.iter().zip(&mask) {
            assert_eq!(*m, if *k { 2.5 } else { 0.0 });
        }
        fill_bernoulli_keep(9, 0, &mut keep[..100], 1.0);
        assert!(keep[..100].iter().all(|&k| k));
        fill_bernoulli_keep(9, 0, &mut keep[..100], 0.0);
        assert!(keep[..100].iter().all(|&k| !k));
    }

    #[test]
    fn shuffle_is_permutation() {
        let n = 1000;
        let a = shuffle_indices(1, 0, n);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        assert_ne!(a, (0..n).collect::<Vec<_>>());
        assert_eq!(a, shuffle_indices(1, 0, n));
        assert_ne!(a, shuffle_indices(2, 0, n));
        assert_ne!(a, shuffle_indices(1, Dist::Shuffle.counters(n), n));
        assert!(shuffle_indices(1, 0, 0).is_empty());
        assert_eq!(shuffle_indices(1, 0, 1), vec![0]);
        // Every position is roughly uniform: element 0 lands in each half about equally.
        let low = (0..2000u64)
            .filter(|&s| {
                shuffle_indices(s, 0, 10)
                    .iter()
                    .position(|&x| x == 0)
                    .unwrap()
                    < 5
            })
            .count();
        assert!((800..1200).contains(&low), "{low}");
    }

    #[test]
    fn next_down_steps_one_ulp() {
        assert_eq!(next_down(1.0f32), 1.0 - f32::EPSILON / 2.0);
        assert_eq!(next_down(1.0f64), 1.0 - f64::EPSILON / 2.0);
        assert_eq!(next_down(0.0f32), -f32::from_bits(1));
        assert_eq!(next_down(-1.0f64), -1.0 - f64::EPSILON);
    }

    #[test]
    fn different_offsets_and_seeds_differ() {
        let mut a = vec![0f32; 64];
        let mut b = vec![0f32; 64];
        fill_uniform(1, 0, &mut a, 0.0, 1.0);
        fill_uniform(1, Dist::UniformF32.counters(64), &mut b, 0.0, 1.0);
        assert_ne!(a, b);
        fill_uniform(2, 0, &mut b, 0.0, 1.0);
        assert_ne!(a, b);
        assert_eq!(Dist::normal::<f64>(), Dist::NormalF64);
        assert_eq!(Dist::uniform::<f32>(), Dist::UniformF32);
        assert_eq!(Dist::NormalF64.counters(5), 3);
        assert_eq!(Dist::NormalF32.counters(5), 2);
        assert_eq!(Dist::Shuffle.counters(3), 1);
    }
}
