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
//!
//! **Seeds as inputs.** A traced function made with
//! [`ConcreteFunction::trace_with_seed_inputs`](super::ConcreteFunction::trace_with_seed_inputs)
//! instead turns every random op it traces into a [`SeedInput`] node: the op plus one more
//! input, a scalar `int64` placeholder holding the seed, fed by the caller on each call (TF 2's
//! stateless random ops, whose seed is a tensor). The caller then decides each run's seeds —
//! Keras's traced train step feeds the seeds the eager step would draw from its layers' seed
//! streams, so traced and eager training stay bit-identical and checkpoints hold the state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Graph, NodeKind};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{GradCtx, Op, TensorSpec};
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

/// A random op whose seed is its last input, a scalar `int64` (the seed's 64 bits), instead of
/// an attribute: each run draws with the fed seed (see the module documentation). Stateful, so
/// no optimisation pass folds, merges or moves it; its gradient is the wrapped op's (the seed
/// gets none).
#[derive(Debug)]
pub struct SeedInput {
    /// The random op (its own seed is the one drawn while tracing; runs replace it).
    pub op: Arc<dyn Op>,
}

impl SeedInput {
    fn split<'a>(&self, inputs: &'a [Tensor]) -> Result<(&'a [Tensor], u64)> {
        let (seed, rest) = inputs
            .split_last()
            .ok_or_else(|| Error::invalid(self.op.name(), "internal: no seed input"))?;
        let v = seed.to_vec::<i64>()?;
        let s = v.first().copied().ok_or_else(|| {
            Error::invalid(self.op.name(), "the seed input must be a scalar int64")
        })?;
        Ok((rest, s as u64))
    }
}

impl Op for SeedInput {
    fn name(&self) -> &'static str {
        self.op.name()
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let Some((seed, rest)) = inputs.split_last() else {
            return Err(Error::invalid(self.op.name(), "internal: no seed input"));
        };
        if seed.dtype != DType::I64 || !seed.shape.is_empty() {
            return Err(Error::invalid(
                self.op.name(),
                format!(
                    "the seed input must be a scalar int64, got {} {}",
                    seed.dtype.name(),
                    super::fmt_dims(&seed.shape)
                ),
            ));
        }
        self.op.infer(rest)
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (rest, seed) = self.split(inputs)?;
        match self.op.with_random_seed(seed) {
            Some(op) => crate::op::compute(op.as_ref(), rest),
            None => crate::op::compute(self.op.as_ref(), rest),
        }
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let n = ctx.inputs.len().saturating_sub(1);
        let inner = GradCtx {
            inputs: &ctx.inputs[..n],
            outputs: ctx.outputs,
            grads: ctx.grads,
            needed: ctx.needed_prefix(n),
        };
        let mut g = self.op.grad(&inner)?;
        g.resize(n, None);
        g.push(None);
        Ok(g)
    }
    fn is_stateful(&self) -> bool {
        true
    }
}

/// While tracing with seeds as inputs (the graph's `seed_inputs` is on): adds `op`, a random
/// op, as a [`SeedInput`] node fed by a new `int64` scalar placeholder, and records
/// `(op's seed, placeholder node)`. `None` when `op` is not random or the graph keeps seeds as
/// attributes.
pub(crate) fn add_seed_fed(
    g: &Graph,
    op: &Arc<dyn Op>,
    inputs: &[Tensor],
) -> Option<Result<Vec<Tensor>>> {
    let seed = op.random_seed()?;
    g.lock().seed_inputs.as_ref()?;
    let p = g
        .add_node(
            "random_seed",
            NodeKind::Placeholder,
            vec![],
            vec![TensorSpec::new(DType::I64, &[])],
        )
        .swap_remove(0);
    let node = p.symbol().map(|s| s.node).unwrap_or_default();
    if let Some(list) = g.lock().seed_inputs.as_mut() {
        list.push((seed, node));
    }
    let mut all = inputs.to_vec();
    all.push(p);
    Some(g.add_op_node(Arc::new(SeedInput { op: op.clone() }), &all))
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
