//! The train, test and predict steps as traced graphs (Keras 3's default `run_eagerly=False`:
//! `fit` calls a `tf.function` of `train_step`).
//!
//! Per batch signature (the dtypes and shapes of `x`, `y` and `sample_weight`; the last, smaller
//! batch of an epoch is a second signature, as in Keras) the step is traced once with
//! [`ConcreteFunction::trace`]: placeholders for the batch, the forward pass (`training=true` for
//! the train step), the compiled losses and regularization penalties, and for the train step the
//! gradients from a `GradientTape` recording in the graph. The model's weights are eager
//! variables captured by the graph: each run reads their live values, and assignments made by
//! layers while tracing (`BatchNormalization`'s moving statistics) run every step. Later batches
//! of that signature only run the graph's cached plan.
//!
//! What stays outside the graph, eager:
//! - the optimizer step: ferroflow's Keras optimizers update each variable with one fused
//!   host-side kernel (`optimizers/kernel.rs`), whose step-dependent scalars (the bias
//!   corrections, a schedule's learning rate, `iterations`) are Rust numbers; the traced step
//!   returns the gradients and `apply_gradients` runs on them, exactly as in the eager step, so a
//!   learning-rate callback or schedule needs no retrace;
//! - the metrics (stateful Rust objects), updated with the step's returned outputs;
//! - callbacks and the progress bar, as in Keras.
//!
//! A model whose step cannot be traced (a layer that reads tensor values in `call`) runs eagerly:
//! the first time tracing fails while the same step succeeds eagerly, the reason is printed once
//! to stderr and the model keeps to the eager path until it is compiled again.
//!
//! Random layers draw their seed (`next_call_seed`) at call time, so a traced step holds the
//! seed drawn while tracing in its random op node; the session redraws seeded random nodes per
//! run (issue 4's "stateful random ops in graphs").

use std::collections::HashMap;
use std::sync::Arc;

use ferroflow_core::graph::ConcreteFunction;
use ferroflow_core::op::TensorSpec;
use ferroflow_core::{DType, Error, GradientTape, Result, Tensor, TensorId, Watchable};

use super::training::check_targets;
use super::Model;

/// Which step a trace is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum StepKind {
    Train,
    Test,
    Predict,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct StepKey {
    kind: StepKind,
    /// x, then y, then the sample weight (if any).
    specs: Vec<(DType, Vec<usize>)>,
    n_x: usize,
    n_y: usize,
    /// The trainable weights when traced (freezing a layer changes them: trace again).
    vars: Vec<TensorId>,
}

/// A traced step: the function, and which trainable weights got a gradient.
struct Step {
    function: ConcreteFunction,
    has_grad: Vec<bool>,
}

/// The traced steps of a compiled model (kept in [`Compiled`](super::Compiled)).
#[derive(Default)]
pub struct TracedSteps {
    steps: HashMap<StepKey, Arc<Step>>,
    /// Why the model runs eagerly although `run_eagerly` is false (set once, printed once).
    fallback: Option<String>,
}

impl std::fmt::Debug for TracedSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<TracedSteps {} traced>", self.steps.len())
    }
}

/// Loss, each output's loss, and the outputs of a step.
type StepResult = (f64, Vec<f64>, Vec<Tensor>);

impl Model {
    /// How many step graphs were traced since `compile` (train, test and predict steps, one per
    /// batch signature) — TF's tracing count, for tests and for spotting retracing.
    pub fn traced_step_count(&self) -> usize {
        self.compiled.as_ref().map_or(0, |c| c.traced.steps.len())
    }

    /// Why the model's steps run eagerly although `run_eagerly` is false (`None` when they are
    /// traced).
    pub fn eager_fallback_reason(&self) -> Option<String> {
        self.compiled
            .as_ref()
            .and_then(|c| c.traced.fallback.clone())
    }

    /// Whether steps should be traced now.
    fn tracing_enabled(&self) -> bool {
        self.compiled
            .as_ref()
            .is_some_and(|c| !c.run_eagerly && c.traced.fallback.is_none())
    }

    /// The traced train step, or `None` when the model runs eagerly. Applies the optimizer.
    pub(super) fn traced_train_step(
        &mut self,
        x: &[Tensor],
        y: &[Tensor],
        sample_weight: Option<&Tensor>,
    ) -> Result<Option<StepResult>> {
        if !self.tracing_enabled() {
            return Ok(None);
        }
        let vars = self.trainable_weights();
        let key = self.step_key(StepKind::Train, x, y, sample_weight, &vars);
        let args = step_args(x, y, sample_weight);
        let n_out = self.num_outputs();
        let n_per = self.per_output_count();
        let values = match self.run_step(&key, &args, eager_train_probe)? {
            Ran::Graph(v) => v,
            Ran::Eager(r) => return Ok(r),
        };
        let (loss, per_output, outputs, grads) = split_values(values, n_per, n_out);
        let step = self
            .cached(&key)
            .ok_or_else(|| Error::invalid(&self.name, "internal: lost trace"))?;
        let mut grads = grads.into_iter();
        let grads: Vec<Option<Tensor>> = step
            .has_grad
            .iter()
            .map(|&h| if h { grads.next() } else { None })
            .collect();
        // Data parallelism: the gradients averaged over ranks (no-op without a strategy), at the
        // same point as the eager step.
        let grads = crate::distribute::reduce_gradients(grads)?;
        let pairs: Vec<(Tensor, ferroflow_core::Variable)> = grads
            .into_iter()
            .zip(&vars)
            .filter_map(|(g, v)| g.map(|g| (g, v.clone())))
            .collect();
        self.compiled_mut()?.optimizer.apply_gradients(&pairs)?;
        Ok(Some((loss, per_output, outputs)))
    }

    /// The traced test step (inference mode), or `None` when the model runs eagerly.
    pub(super) fn traced_test_step(
        &mut self,
        x: &[Tensor],
        y: &[Tensor],
        sample_weight: Option<&Tensor>,
    ) -> Result<Option<StepResult>> {
        if !self.tracing_enabled() {
            return Ok(None);
        }
        let key = self.step_key(StepKind::Test, x, y, sample_weight, &[]);
        let args = step_args(x, y, sample_weight);
        let (n_out, n_per) = (self.num_outputs(), self.per_output_count());
        let values = match self.run_step(&key, &args, eager_test_probe)? {
            Ran::Graph(v) => v,
            Ran::Eager(r) => return Ok(r),
        };
        let (loss, per_output, outputs, _) = split_values(values, n_per, n_out);
        Ok(Some((loss, per_output, outputs)))
    }

    /// One predict batch: the traced inference-mode forward pass of a compiled model, else
    /// `call(x, training=false)`.
    pub(super) fn predict_step(&mut self, x: &[Tensor]) -> Result<Vec<Tensor>> {
        if self.tracing_enabled() {
            let key = self.step_key(StepKind::Predict, x, &[], None, &[]);
            if let Ran::Graph(v) = self.run_step(&key, x, eager_predict_probe)? {
                return Ok(v);
            }
        }
        self.call(x, false)
    }

    /// `compute_loss` gives one loss per output (the logs show them for multi-output models).
    fn per_output_count(&self) -> usize {
        self.num_outputs()
    }

    fn step_key(
        &self,
        kind: StepKind,
        x: &[Tensor],
        y: &[Tensor],
        sw: Option<&Tensor>,
        vars: &[ferroflow_core::Variable],
    ) -> StepKey {
        StepKey {
            kind,
            specs: x
                .iter()
                .chain(y)
                .chain(sw)
                .map(|t| (t.dtype(), t.shape().to_vec()))
                .collect(),
            n_x: x.len(),
            n_y: y.len(),
            vars: vars.iter().map(|v| v.id()).collect(),
        }
    }

    fn cached(&self, key: &StepKey) -> Option<Arc<Step>> {
        self.compiled
            .as_ref()
            .and_then(|c| c.traced.steps.get(key).cloned())
    }

    /// Runs the traced step for `key` (tracing it first if new) on `args`. A step that fails to
    /// trace, or whose first run fails, is run eagerly instead (`probe`): if that works, the
    /// model falls back to eager for good (reason printed once) and the eager result is
    /// returned; if it fails too, that is the user's error, returned as the eager step reports
    /// it.
    fn run_step(&mut self, key: &StepKey, args: &[Tensor], probe: Probe) -> Result<Ran> {
        if let Some(step) = self.cached(key) {
            return step.function.call(args).map(Ran::Graph);
        }
        // Tracing runs the layers once symbolically; it must not consume seeds (the layers'
        // call counts, the session's seed stream), or the eager steps and checkpoints that
        // follow would draw other numbers than an untraced run.
        let calls: Vec<u64> = self
            .layers()
            .iter()
            .map(|l| l.lock().base().calls)
            .collect();
        let seeds = crate::backend::seed_state();
        let step = self.trace_step(key);
        for (l, c) in self.layers().iter().zip(calls) {
            l.lock().base_mut().calls = c;
        }
        crate::backend::set_seed_state(seeds.0, seeds.1);
        if let Ok(step) = &step {
            if key.kind == StepKind::Train && draws_random_numbers(&step.function) {
                // A training step that draws random numbers (Dropout, noise, augmentation)
                // runs eagerly: there each call takes its seed from the layer's seed stream,
                // which checkpoints save and restore, so a resumed run is bit-identical to an
                // uninterrupted one and the traced and eager paths cannot disagree. (A traced
                // step would draw from per-session run counts that no checkpoint holds.)
                // Silent, as it is a choice of ours rather than a limitation of the model.
                let eager = probe(self, key, args)?;
                self.compiled_mut()?.traced.fallback = Some(format!(
                    "the train step of model {:?} draws random numbers; it runs eagerly so that \
                     its seeds follow the checkpointed seed stream",
                    self.name
                ));
                return Ok(Ran::Eager(eager));
            }
        }
        let traced = step.and_then(|step| step.function.call(args).map(|v| (step, v)));
        match traced {
            Ok((step, values)) => {
                self.compiled_mut()?
                    .traced
                    .steps
                    .insert(key.clone(), Arc::new(step));
                Ok(Ran::Graph(values))
            }
            Err(e) => {
                // Is it the step or the data? The eager step decides (its error is the user's).
                let eager = probe(self, key, args)?;
                let reason = format!(
                    "the {} step of model {:?} could not run as a traced graph ({e}); it runs eagerly",
                    match key.kind {
                        StepKind::Train => "train",
                        StepKind::Test => "test",
                        StepKind::Predict => "predict",
                    },
                    self.name
                );
                eprintln!("ferroflow: {reason}");
                self.compiled_mut()?.traced.fallback = Some(reason);
                Ok(Ran::Eager(eager))
            }
        }
    }

    fn trace_step(&self, key: &StepKey) -> Result<Step> {
        let specs: Vec<TensorSpec> = key
            .specs
            .iter()
            .map(|(d, s)| TensorSpec::new(*d, s))
            .collect();
        let (n_x, n_y) = (key.n_x, key.n_y);
        let mut has_grad = Vec::new();
        let function = ConcreteFunction::trace(&specs, |args| {
            let (x, rest) = args.split_at(n_x);
            let (y, sw) = rest.split_at(n_y);
            let sw = sw.first();
            match key.kind {
                StepKind::Predict => self.call(x, false),
                StepKind::Test => {
                    let (outputs, masks) = self.call_with_masks(x, false)?;
                    check_targets(&self.name, &outputs, y)?;
                    let (loss, per_output) =
                        self.compute_loss_tensors(y, &outputs, &masks, sw, true)?;
                    let mut out = vec![loss];
                    out.extend(per_output);
                    out.extend(outputs);
                    Ok(out)
                }
                StepKind::Train => {
                    let vars = self.trainable_weights();
                    let tape = GradientTape::with_options(false, false);
                    for v in &vars {
                        tape.watch(v);
                    }
                    let (outputs, masks) = self.call_with_masks(x, true)?;
                    check_targets(&self.name, &outputs, y)?;
                    let (loss, per_output) =
                        self.compute_loss_tensors(y, &outputs, &masks, sw, true)?;
                    let sources: Vec<&dyn Watchable> =
                        vars.iter().map(|v| v as &dyn Watchable).collect();
                    let grads = tape.gradient(&loss, &sources)?;
                    let mut out = vec![loss];
                    out.extend(per_output);
                    out.extend(outputs);
                    has_grad = grads.iter().map(Option::is_some).collect();
                    out.extend(grads.into_iter().flatten());
                    Ok(out)
                }
            }
        })?;
        Ok(Step { function, has_grad })
    }
}

/// Whether a traced step holds a random op (one with a seed: dropout masks, random fills).
fn draws_random_numbers(f: &ConcreteFunction) -> bool {
    f.graph().nodes().iter().any(|n| match &n.kind {
        ferroflow_core::graph::NodeKind::Op(op) => op.random_seed().is_some(),
        _ => false,
    })
}

/// Runs a step eagerly when it could not be traced (to tell a step that cannot be traced from
/// bad data); returns the step's result (`None` for predict, which the caller recomputes).
type Probe = fn(&mut Model, &StepKey, &[Tensor]) -> Result<Option<StepResult>>;

/// How a step ran.
enum Ran {
    /// The traced graph's values.
    Graph(Vec<Tensor>),
    /// Eagerly, after tracing failed.
    Eager(Option<StepResult>),
}

fn unpack<'a>(
    key: &StepKey,
    args: &'a [Tensor],
) -> (&'a [Tensor], &'a [Tensor], Option<&'a Tensor>) {
    let (x, rest) = args.split_at(key.n_x.min(args.len()));
    let (y, sw) = rest.split_at(key.n_y.min(rest.len()));
    (x, y, sw.first())
}

fn eager_train_probe(m: &mut Model, key: &StepKey, args: &[Tensor]) -> Result<Option<StepResult>> {
    // The probe *is* this batch's step (it trains), so the batch is applied once.
    let (x, y, sw) = unpack(key, args);
    m.eager_train_step(x, y, sw).map(Some)
}

fn eager_test_probe(m: &mut Model, key: &StepKey, args: &[Tensor]) -> Result<Option<StepResult>> {
    let (x, y, sw) = unpack(key, args);
    let (outputs, masks) = m.call_with_masks(x, false)?;
    check_targets(&m.name, &outputs, y)?;
    let (loss, per_output) = m.compute_loss(y, &outputs, &masks, sw, true)?;
    let loss = loss.to_f64_vec().first().copied().unwrap_or(0.0);
    Ok(Some((loss, per_output, outputs)))
}

fn eager_predict_probe(
    m: &mut Model,
    _key: &StepKey,
    args: &[Tensor],
) -> Result<Option<StepResult>> {
    m.call(args, false).map(|_| None)
}

fn step_args(x: &[Tensor], y: &[Tensor], sw: Option<&Tensor>) -> Vec<Tensor> {
    x.iter().chain(y).chain(sw).cloned().collect()
}

/// Splits `[loss, per-output losses.., outputs.., gradients..]`.
fn split_values(
    values: Vec<Tensor>,
    n_per: usize,
    n_out: usize,
) -> (f64, Vec<f64>, Vec<Tensor>, Vec<Tensor>) {
    let mut it = values.into_iter();
    let scalar = |t: Option<Tensor>| {
        t.and_then(|t| t.to_f64_vec().first().copied())
            .unwrap_or(0.0)
    };
    let loss = scalar(it.next());
    let per_output = (0..n_per).map(|_| scalar(it.next())).collect();
    let outputs = it.by_ref().take(n_out).collect();
    (loss, per_output, outputs, it.collect())
}
