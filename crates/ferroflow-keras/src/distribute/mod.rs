//! Data-parallel training: a distribution [`Strategy`] (Keras's `tf.distribute` /
//! `MultiWorkerMirroredStrategy`, Horovod's allreduce) and the few hooks `fit` calls.
//!
//! Each process ("rank") holds a full replica of the model. `fit` with a strategy
//! (`model.fit(x, y).strategy(&s)`, or inside [`scope`], Keras's `with strategy.scope():`):
//!
//! 1. broadcasts the weights of rank 0 to every rank before the first step (Horovod's
//!    `BroadcastGlobalVariablesCallback(0)`; optimizer slots start equal anyway: zeros, or the
//!    same checkpoint on every rank);
//! 2. keeps `batch_size` the **global** batch (as `MultiWorkerMirroredStrategy`): every rank
//!    draws the same shuffled order (same session seed on all ranks) and rank `r` of `W` takes the
//!    contiguous share `[r·B/W, (r+1)·B/W)` of each global batch of `B` samples;
//! 3. between `tape.gradient` and `apply_gradients`, packs all gradients into one contiguous
//!    buffer in the weights' order, scales each rank's part by `b_r / B` (its share of the global
//!    batch) and sums it over the ranks: the result is the 1-rank gradient of the global batch up
//!    to summation order (Keras losses average over the batch, so `Σ_r (b_r/B)·mean_r = mean`);
//! 4. reduces the logs (loss and metrics) over ranks, weighted by the samples each rank saw this
//!    epoch, so every rank sees the same logs and callbacks (`EarlyStopping`, `TerminateOnNaN`)
//!    decide the same way; only the chief (rank 0) prints the progress bar ([`ChiefOnly`] wraps
//!    callbacks that write files, e.g. `ModelCheckpoint`, `CSVLogger`, `TensorBoard`);
//! 5. mixes the rank into the seeds of random layers' training calls (dropout masks differ per
//!    rank, as Horovod's examples seed each rank differently), while the session's seed stream —
//!    initializers and the shuffle — stays the same on every rank.
//!
//! Validation data and `evaluate` are not sharded: every rank evaluates all of it (the same
//! replica gives the same figures). A rank whose share of a (last, short) global batch is empty
//! runs its step on one sample with weight 0, so collectives stay matched.
//!
//! This module has no MPI dependency: `ferroflow-mpi` implements [`Strategy`] on MPI.
//!
//! ```
//! use std::rc::Rc;
//! use ferroflow_core::{Result, Tensor};
//! use ferroflow_keras::distribute::{scope, SingleProcess, Strategy};
//! use ferroflow_keras::layers::Dense;
//! use ferroflow_keras::prelude::*;
//! let s: Rc<dyn Strategy> = Rc::new(SingleProcess);
//! let _scope = scope(s); // like Keras's `with strategy.scope():`
//! let mut model = Sequential::new();
//! model.add(Dense::new(1).input_shape(&[2]))?;
//! model.compile("sgd", "mse", ())?;
//! let x = Tensor::from_vec(vec![0.5f32; 8], &[4, 2])?;
//! let y = Tensor::from_vec(vec![1.0f32; 4], &[4, 1])?;
//! model.fit(&x, &y).batch_size(2).verbose(0).run()?;
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use ferroflow_core::{ops, DType, Error, Result, Tensor};

use crate::callbacks::{Callback, Logs};
use crate::models::Model;

/// A set of processes that train one model together (Keras's `tf.distribute.Strategy`).
///
/// Implementations supply the collectives; every rank must call them in the same order with
/// buffers of the same length. Errors are `ferroflow_core::Error`s naming the collective.
pub trait Strategy {
    /// This process's index, `0..world_size()`.
    fn rank(&self) -> usize;
    /// How many processes train together.
    fn world_size(&self) -> usize;
    /// Whether this is the chief (rank 0): the one that prints and writes files.
    fn is_chief(&self) -> bool {
        self.rank() == 0
    }
    /// Sums `buf` element-wise over all ranks, in place (MPI's `Allreduce(SUM)`).
    fn all_reduce_sum_f32(&self, buf: &mut [f32]) -> Result<()>;
    /// Sums `buf` element-wise over all ranks, in place.
    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<()>;
    /// Overwrites `buf` on every rank with rank 0's (MPI's `Bcast` from root 0).
    fn broadcast_f64(&self, buf: &mut [f64]) -> Result<()>;
    /// Waits until every rank has called it.
    fn barrier(&self) -> Result<()>;
}

/// The trivial strategy: one process (Keras's default strategy). Collectives are no-ops.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Strategy for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_sum_f32(&self, _buf: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn all_reduce_sum_f64(&self, _buf: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn broadcast_f64(&self, _buf: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
}

/// The all-reduced mean of `tensors` over the ranks (Horovod's `allreduce(average=True)`), all
/// packed into one f32 buffer in the given order (one collective, whatever the count). Any float
/// dtype is accepted and returned in its own dtype.
pub fn all_reduce_mean(s: &dyn Strategy, tensors: &[Tensor]) -> Result<Vec<Tensor>> {
    all_reduce_scaled(s, tensors, 1.0 / s.world_size() as f32)
}

/// Σ over ranks of `scale · t`, packed into one buffer (the gradient bucket).
fn all_reduce_scaled(s: &dyn Strategy, tensors: &[Tensor], scale: f32) -> Result<Vec<Tensor>> {
    let total: usize = tensors.iter().map(Tensor::num_elements).sum();
    let mut buf: Vec<f32> = Vec::with_capacity(total);
    for t in tensors {
        let t32 = if t.dtype() == DType::F32 {
            t.clone()
        } else {
            ops::cast(t, DType::F32)?
        };
        buf.extend_from_slice(&t32.to_vec::<f32>()?);
    }
    if scale != 1.0 {
        buf.iter_mut().for_each(|v| *v *= scale);
    }
    s.all_reduce_sum_f32(&mut buf)?;
    let mut out = Vec::with_capacity(tensors.len());
    let mut off = 0;
    for t in tensors {
        let n = t.num_elements();
        let r = Tensor::from_vec(buf[off..off + n].to_vec(), t.shape())?;
        off += n;
        out.push(if t.dtype() == DType::F32 {
            r
        } else {
            ops::cast(&r, t.dtype())?
        });
    }
    Ok(out)
}

/// Sets every weight of `model` (trainable or not) to rank 0's values (Horovod's
/// `broadcast_variables(model.variables, root_rank=0)`). Weights travel as f64, exact for f32,
/// f16, bf16 and integers below 2^53.
pub fn broadcast_weights(s: &dyn Strategy, model: &Model) -> Result<()> {
    if s.world_size() <= 1 {
        return Ok(());
    }
    let vars = model.weights();
    let values: Vec<Tensor> = vars.iter().map(|v| v.value()).collect();
    let mut buf: Vec<f64> = Vec::new();
    for v in &values {
        buf.extend(v.to_f64_vec());
    }
    s.broadcast_f64(&mut buf)?;
    let mut off = 0;
    for (var, v) in vars.iter().zip(&values) {
        let n = v.num_elements();
        let t = Tensor::from_vec(buf[off..off + n].to_vec(), v.shape())?;
        off += n;
        var.assign(&ops::cast(&t, v.dtype())?)?;
    }
    Ok(())
}

/// Logs averaged over ranks, each rank's figures weighted by `weight` (the samples it saw):
/// `Σ_r w_r·v_r / Σ_r w_r`. Every rank must pass the same keys (they do: same model).
pub fn reduce_logs(s: &dyn Strategy, logs: &Logs, weight: f64) -> Result<Logs> {
    if s.world_size() <= 1 {
        return Ok(logs.clone());
    }
    let mut buf: Vec<f64> = Vec::with_capacity(logs.len() + 1);
    buf.push(weight);
    buf.extend(logs.values().map(|v| v * weight));
    s.all_reduce_sum_f64(&mut buf)?;
    let total = buf[0];
    Ok(logs
        .keys()
        .zip(&buf[1..])
        .map(|(k, v)| (k.clone(), if total > 0.0 { v / total } else { 0.0 }))
        .collect())
}

/// The contiguous share `[start, end)` of a global batch of `n` samples that rank `rank` of
/// `world` takes: `[rank·n/world, (rank+1)·n/world)` (sizes differ by at most one).
pub fn shard_range(n: usize, rank: usize, world: usize) -> (usize, usize) {
    let world = world.max(1);
    (rank * n / world, (rank + 1) * n / world)
}

/// The strategy in force on this thread and the per-fit bookkeeping.
struct Active {
    strategy: Rc<dyn Strategy>,
    /// This rank's samples and the global batch's, of the current step.
    share: Cell<(usize, usize)>,
    /// Samples this rank trained on this epoch (the weight of its logs).
    seen: Cell<f64>,
    /// Whether this fit has broadcast rank 0's weights yet.
    broadcast_done: Cell<bool>,
}

thread_local! {
    static ACTIVE: RefCell<Option<Rc<Active>>> = const { RefCell::new(None) };
}

fn active() -> Option<Rc<Active>> {
    ACTIVE.with(|a| a.borrow().clone())
}

/// The strategy in force on this thread (set by [`scope`] or `fit(...).strategy(..)`).
pub fn current() -> Option<Rc<dyn Strategy>> {
    active().map(|a| a.strategy.clone())
}

/// Puts back the strategy that was in force before [`scope`] when dropped.
#[must_use = "the strategy is in force until this guard is dropped"]
pub struct ScopeGuard {
    previous: Option<Rc<Active>>,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let prev = self.previous.take();
        ACTIVE.with(|a| *a.borrow_mut() = prev);
    }
}

/// Makes `strategy` the one `fit`/`train_on_batch` use on this thread until the guard drops
/// (Keras's `with strategy.scope():`). Build and compile the model the same way on every rank.
pub fn scope(strategy: Rc<dyn Strategy>) -> ScopeGuard {
    let new = Rc::new(Active {
        strategy,
        share: Cell::new((1, 1)),
        seen: Cell::new(0.0),
        broadcast_done: Cell::new(false),
    });
    let previous = ACTIVE.with(|a| a.borrow_mut().replace(new));
    ScopeGuard { previous }
}

/// `fit`'s hook at its start: enters `strategy` (when given) for the call and marks the
/// weights as not yet broadcast.
pub(crate) fn begin_fit(strategy: Option<Rc<dyn Strategy>>) -> Option<ScopeGuard> {
    let guard = strategy.map(scope);
    if let Some(a) = active() {
        a.broadcast_done.set(false);
    }
    guard
}

/// `fit`'s verbosity: the caller's on the chief, 0 elsewhere.
pub(crate) fn chief_verbose(verbose: u8) -> u8 {
    match active() {
        Some(a) if !a.strategy.is_chief() => 0,
        _ => verbose,
    }
}

/// `fit`'s hook at each epoch's start.
pub(crate) fn begin_epoch() {
    if let Some(a) = active() {
        a.seen.set(0.0);
    }
}

type BatchParts = (Vec<Tensor>, Vec<Tensor>, Option<Tensor>);

/// `fit`'s hook before each step: on the first, broadcasts rank 0's weights; then returns this
/// rank's contiguous share of the global batch (unchanged without a strategy).
pub(crate) fn shard_batch(
    model: &Model,
    x: Vec<Tensor>,
    y: Vec<Tensor>,
    sw: Option<Tensor>,
) -> Result<BatchParts> {
    let Some(a) = active() else {
        return Ok((x, y, sw));
    };
    let s = &a.strategy;
    if !a.broadcast_done.get() {
        broadcast_weights(s.as_ref(), model)?;
        a.broadcast_done.set(true);
    }
    let n = x
        .first()
        .and_then(|t| t.shape().first().copied())
        .unwrap_or(0);
    let world = s.world_size();
    if world <= 1 {
        a.share.set((n, n));
        a.seen.set(a.seen.get() + n as f64);
        return Ok((x, y, sw));
    }
    let (start, end) = shard_range(n, s.rank(), world);
    a.share.set((end - start, n));
    a.seen.set(a.seen.get() + (end - start) as f64);
    // An empty share still runs a step (on one sample, weight 0) so the collectives match.
    let (start, end) = if end > start {
        (start, end)
    } else {
        (0, n.min(1))
    };
    let idx = Tensor::from_vec(
        (start as i64..end as i64).collect::<Vec<_>>(),
        &[end - start],
    )?;
    let take = |t: &Tensor| ops::gather(t, &idx, 0);
    Ok((
        x.iter().map(take).collect::<Result<_>>()?,
        y.iter().map(take).collect::<Result<_>>()?,
        sw.as_ref().map(take).transpose()?,
    ))
}

/// The train step's hook between `tape.gradient` and `apply_gradients`: the gradients of the
/// global batch — each rank's scaled by its share `b_r / B` and summed over ranks in one bucket.
/// Without a strategy (or on one rank) the gradients are returned as they are.
pub(crate) fn reduce_gradients(grads: Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>> {
    let Some(a) = active() else {
        return Ok(grads);
    };
    let s = a.strategy.as_ref();
    if s.world_size() <= 1 {
        return Ok(grads);
    }
    let (local, global) = a.share.get();
    let scale = if global == 0 {
        1.0 / s.world_size() as f32
    } else {
        (local as f64 / global as f64) as f32
    };
    let present: Vec<Tensor> = grads.iter().flatten().cloned().collect();
    let mut reduced = all_reduce_scaled(s, &present, scale)?.into_iter();
    Ok(grads
        .into_iter()
        .map(|g| g.and_then(|_| reduced.next()))
        .collect())
}

/// `fit`'s hook after each step: the logs averaged over ranks (weighted by samples seen).
pub(crate) fn reduce_step_logs(logs: Logs) -> Result<Logs> {
    match active() {
        Some(a) if a.strategy.world_size() > 1 => {
            reduce_logs(a.strategy.as_ref(), &logs, a.seen.get())
                .map_err(|e| Error::invalid("distribute", format!("reducing the logs: {e}")))
        }
        _ => Ok(logs),
    }
}

/// Mixes the rank into a random layer's call seed (rank 0 keeps it: one rank trains exactly as
/// without a strategy), so replicas draw different dropout masks for their different samples.
pub(crate) fn mix_rank(seed: u64) -> u64 {
    match active() {
        Some(a) if a.strategy.rank() > 0 => {
            crate::backend::mix(seed ^ crate::backend::mix(a.strategy.rank() as u64))
        }
        _ => seed,
    }
}

/// A callback that runs on the chief only (Horovod's "checkpoint on rank 0 only"): wrap those
/// that write files or print (`ModelCheckpoint`, `CSVLogger`, `TensorBoard`). Callbacks that
/// steer training (`EarlyStopping`, learning-rate schedules) must run on every rank: they see the
/// same reduced logs, so they decide alike. Without a strategy it always runs.
pub struct ChiefOnly<C: Callback> {
    inner: C,
}

impl<C: Callback> ChiefOnly<C> {
    /// Wraps `inner`.
    pub fn new(inner: C) -> Self {
        ChiefOnly { inner }
    }
    /// The wrapped callback.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

fn on_chief() -> bool {
    active().is_none_or(|a| a.strategy.is_chief())
}

macro_rules! chief_hooks {
    ($($name:ident($($arg:ident: $t:ty),*);)*) => {
        $(fn $name(&mut self, model: &mut Model, $($arg: $t),*) -> Result<()> {
            if on_chief() {
                self.inner.$name(model, $($arg),*)
            } else {
                Ok(())
            }
        })*
    };
}

impl<C: Callback> Callback for ChiefOnly<C> {
    chief_hooks! {
        on_train_begin(logs: &Logs);
        on_train_end(logs: &Logs);
        on_epoch_begin(epoch: usize, logs: &Logs);
        on_epoch_end(epoch: usize, logs: &mut Logs);
        on_train_batch_begin(batch: usize, logs: &Logs);
        on_train_batch_end(batch: usize, logs: &Logs);
        on_test_begin(logs: &Logs);
        on_test_end(logs: &Logs);
        on_test_batch_end(batch: usize, logs: &Logs);
        on_predict_begin(logs: &Logs);
        on_predict_end(logs: &Logs);
        on_predict_batch_end(batch: usize, logs: &Logs);
    }
}
