//! `shuffle`: TensorFlow's buffered shuffle, driven by a counter-based (Philox) generator.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferroflow_core::kernels::philox::PhiloxStream;
use ferroflow_core::Result;

use super::{Dataset, ElementIter};
use crate::element::Element;

/// Counters reserved per pass: pass `k` of a seeded shuffle reads the Philox stream of its seed
/// from counter `k << PASS_SHIFT`, so passes never share random numbers.
const PASS_SHIFT: u32 = 40;

impl Dataset {
    /// `Dataset.shuffle(buffer_size, seed, reshuffle_each_iteration)`, with TensorFlow's
    /// algorithm: fill a buffer with the first `buffer_size` elements; then repeatedly pick a
    /// uniformly random slot, yield its element and put the next input element in its place;
    /// when the input ends, keep picking among the remaining ones. `buffer_size >=` the number
    /// of elements gives a uniform permutation; `buffer_size = 1` keeps the order.
    ///
    /// The random numbers come from Philox with key `seed`, so a seed gives the same order on
    /// every run whatever the thread count. With `reshuffle_each_iteration` (TF's default)
    /// each pass (each [`Dataset::iter`] call, counted by this node) uses a different part of
    /// the stream, so epochs differ but the sequence of epochs is reproducible; without it
    /// every pass repeats the first pass's order. `seed = None` takes the next op seed of the
    /// global seed when one is set (`ferroflow_core::ops::random::set_global_seed`, which
    /// Keras's `set_random_seed` calls: TF's `tf.random.set_seed` rule, so the pipeline is
    /// reproducible), else draws a seed from the operating system once, when the dataset is
    /// built (TF without an op or global seed). A
    /// `buffer_size` of 0 is treated as 1. Cardinality is kept.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(5).shuffle(5, Some(7), true);
    /// let pass = |ds: &Dataset| -> ferroflow_core::Result<Vec<i64>> {
    ///     ds.iter().map(|e| e?.tensor()?.item::<i64>()).collect()
    /// };
    /// let (a, b) = (pass(&ds)?, pass(&ds)?);
    /// let mut sorted = a.clone();
    /// sorted.sort();
    /// assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
    /// // The same seed replays the same epochs.
    /// let again = Dataset::range(5).shuffle(5, Some(7), true);
    /// assert_eq!((pass(&again)?, pass(&again)?), (a, b));
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn shuffle(
        &self,
        buffer_size: usize,
        seed: Option<u64>,
        reshuffle_each_iteration: bool,
    ) -> Dataset {
        let input = self.clone();
        let seed = seed
            .or_else(ferroflow_core::ops::random::next_op_seed)
            .unwrap_or_else(os_seed);
        let buffer_size = buffer_size.max(1);
        let passes = Arc::new(AtomicU64::new(0));
        Dataset::from_source(
            move || {
                let pass = if reshuffle_each_iteration {
                    passes.fetch_add(1, Ordering::Relaxed)
                } else {
                    0
                };
                Box::new(Shuffle {
                    input: input.iter(),
                    input_done: false,
                    buffer: Vec::with_capacity(buffer_size.min(1 << 16)),
                    buffer_size,
                    rng: PhiloxStream::new(seed, pass << PASS_SHIFT),
                })
            },
            self.cardinality,
        )
    }
}

/// One pass of a shuffle.
struct Shuffle {
    input: ElementIter,
    input_done: bool,
    buffer: Vec<Element>,
    buffer_size: usize,
    rng: PhiloxStream,
}

impl Shuffle {
    /// The next input element, `None` once the input has ended; errors pass through.
    fn pull(&mut self) -> Option<Result<Element>> {
        if self.input_done {
            return None;
        }
        match self.input.next() {
            None => {
                self.input_done = true;
                None
            }
            other => other,
        }
    }
}

impl Iterator for Shuffle {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        // Fill the buffer (only short before the first output and after the input ends).
        while !self.input_done && self.buffer.len() < self.buffer_size {
            match self.pull() {
                Some(Ok(e)) => self.buffer.push(e),
                Some(Err(err)) => return Some(Err(err)),
                None => break,
            }
        }
        if self.buffer.is_empty() {
            return None;
        }
        let n = self.buffer.len() as u64;
        let i = (self.rng.next_u64() % n) as usize;
        let out = match self.pull() {
            Some(Ok(e)) => std::mem::replace(&mut self.buffer[i], e),
            Some(Err(err)) => return Some(Err(err)),
            None => self.buffer.swap_remove(i),
        };
        Some(Ok(out))
    }
}

/// A seed from the operating system's randomness (std's `RandomState` keys) and the clock.
fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}
