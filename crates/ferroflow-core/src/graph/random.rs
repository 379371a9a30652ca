//! Stateful random ops in sessions: every execution of a random node draws afresh.
//!
//! TensorFlow 1's random ops (`tf.random_uniform`, `tf.nn.dropout`'s mask, `tf.random_shuffle`)
//! are stateful kernels: each `sess.run` of the node gives new values, and with a seed the
//! *sequence* of draws is reproducible (same seed → same sequence in another session or program).
//! Here an op value holds its seed ([`Op::random_seed`]); a [`Session`](super::Session) keeps a
//! run count per random node (per node of the graph the session runs, so every specialization of
//! the node shares it) and executes run `k` of the node with the seed [`run_seed`]`(seed, k)`.
//! Run 0 uses the op's own seed, so the first draw equals the eager (stateless) draw with that
//! seed; an initializer run once therefore gives the same value as the eager op.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::op::Op;
use crate::tensor::Tensor;

/// SplitMix64's finalizer: a fixed bijective mixing of 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of run `run` (0-based) of a random node whose op seed is `seed`: `seed` itself for
/// run 0, then `mix64(seed ^ mix64(run))`. A fixed function, so sequences are reproducible across
/// sessions, graphs and programs.
pub fn run_seed(seed: u64, run: u64) -> u64 {
    if run == 0 {
        seed
    } else {
        mix64(seed ^ mix64(run))
    }
}

/// Per-session run counts of the random nodes, keyed by the node's index in the session's graph.
#[derive(Default)]
pub(crate) struct RunCounts(Mutex<HashMap<usize, u64>>);

impl RunCounts {
    /// Takes the next run number of `node`.
    fn next(&self, node: usize) -> u64 {
        let mut m = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let c = m.entry(node).or_insert(0);
        let run = *c;
        *c += 1;
        run
    }
}

/// Runs a random op as the next execution of graph node `node`: with the seed of that run.
pub(crate) fn compute(
    op: &dyn Op,
    inputs: &[Tensor],
    counts: &RunCounts,
    node: usize,
) -> Result<Vec<Tensor>> {
    let seed = op
        .random_seed()
        .ok_or_else(|| Error::invalid(op.name(), "internal: not a random op but run as one"))?;
    let run = counts.next(node);
    match op.with_random_seed(run_seed(seed, run)) {
        Some(reseeded) => crate::op::compute(reseeded.as_ref(), inputs),
        None => crate::op::compute(op, inputs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_zero_is_the_op_seed_and_later_runs_differ() {
        assert_eq!(run_seed(7, 0), 7);
        let seeds: Vec<u64> = (0..100).map(|k| run_seed(7, k)).collect();
        let mut sorted = seeds.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 100);
        assert_ne!(run_seed(7, 1), run_seed(8, 1));
    }
}
