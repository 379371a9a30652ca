//! The train, test and predict steps as traced graphs (Keras 3's default `run_eagerly=False`:
//! `fit` calls a `tf.function` of `train_step`).
//!
//! Per batch signature (the dtypes and shapes of `x`, `y` and `sample_weight`; the last, smaller
//! batch of an epoch is a second signature, as in Keras) the step is traced once with
//! [`ConcreteFunction::trace_with_seed_inputs`]: placeholders for the batch, the forward pass (`training=true` for
//! the train step), the compiled losses and regularization penalties, and for the train step the
//! gradients from a `GradientTape` recording in the graph. The model's weights are eager
//! variables captured by the graph: each run reads their live values, and assignments made by
//! layers while tracing (`BatchNormalization`'s moving statistics) run every step. Later batches
//! of that signature only run the graph's cached plan.
//!
//! **The optimizer update is in the graph** (`traced_update.rs`): an [`ApplyOptimizer`] node
//! after the gradients runs the allreduce of a distribution strategy and the model's optimizer
//! (`apply_gradients`, with its fused host kernels) on the captured variables and slots; the
//! step-dependent scalars (a schedule's learning rate, bias corrections, `iterations`) are read
//! at run time, so schedules and learning-rate callbacks need no retrace. The gradients are not
//! outputs of the step.
//!
//! **Random seeds are inputs of the graph.** The step is traced with
//! [`ConcreteFunction::trace_with_seed_inputs`]: every random op (a dropout mask, a noise fill)
//! becomes a node whose seed is a scalar `int64` placeholder. After tracing, each traced seed is
//! matched to where it came from: call `j` of layer `i`'s seed stream
//! ([`LayerBase::next_call_seed`](crate::layers::LayerBase::next_call_seed)), possibly through
//! one of the layers' fixed derivations (`mix(seed ^ g)` for an RNN's per-gate masks,
//! `sub_seed(seed, k)`). Tracing leaves every layer's call count as it was; each run then
//! advances the layers' seed streams exactly as one eager step would and feeds the seeds drawn.
//! So traced and eager training give bit-identical weights, and a checkpoint (which saves the
//! layers' call counts) resumes a traced run bit-exactly.
//!
//! What stays outside the graph, eager:
//! - the metrics (stateful Rust objects), updated with the step's returned outputs and, where
//!   outputs carry masks (`Embedding(mask_zero)`, `Masking`), their masks, which the step
//!   returns after the outputs for the mask-weighted metrics;
//! - callbacks and the progress bar, as in Keras.
//!
//! A model whose step cannot be traced runs eagerly: the first time tracing fails while the
//! same step succeeds eagerly, the reason is printed once to stderr and the model keeps to the
//! eager path until it is compiled again. That is the case for a layer that reads tensor values
//! in `call`, for a layer that draws random numbers on the host (the image augmentation layers
//! `RandomFlip`, `RandomRotation`, ...: their draws would be constants of the trace), and for a
//! random op whose seed comes from no top-level layer's seed stream (a random layer nested in a
//! sub-model, a user op with its own seed logic): feeding it could not match the eager draws.

use std::collections::HashMap;
use std::sync::Arc;

use ferroflow_core::graph::ConcreteFunction;
use ferroflow_core::op::TensorSpec;
use ferroflow_core::{DType, Error, GradientTape, Result, Tensor, TensorId, Watchable};

use super::traced_update::{lock, ApplyOptimizer, Lender};
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

/// How a seed fed to a traced step is derived from a layer's `next_call_seed()` value `s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Derive {
    /// `s` itself (`Dropout`, attention dropout).
    Same,
    /// `mix(s ^ g)` (an RNN's mask of gate `g`).
    Mix(u64),
    /// `sub_seed(s, k)` (a layer's `k`-th extra draw).
    Sub(u64),
}

/// How many derived seeds of each kind are searched when matching a traced seed.
const DERIVED: u64 = 16;

impl Derive {
    fn apply(self, s: u64) -> u64 {
        match self {
            Derive::Same => s,
            Derive::Mix(g) => crate::backend::mix(s ^ g),
            // `layers::image_preprocessing::sub_seed`.
            Derive::Sub(k) => {
                crate::backend::mix(s ^ crate::backend::mix(0x9e37_79b9_7f4a_7c15 ^ k))
            }
        }
    }
}

/// Where one seed argument of a traced step comes from: call `call` (0-based, within the step)
/// of top-level layer `layer`, derived by `derive`.
#[derive(Clone, Copy, Debug)]
struct SeedSource {
    layer: usize,
    call: usize,
    derive: Derive,
}

/// A traced step: the function and its seeds.
struct Step {
    function: ConcreteFunction,
    /// A train step (its update node borrows the optimizer while it runs).
    train: bool,
    /// Per seed argument (after the batch arguments), where it comes from.
    seeds: Vec<SeedSource>,
    /// Per top-level layer: how many seeds one step draws from its seed stream.
    draws: Vec<usize>,
    /// Per model output: whether the step returns its mask (after the outputs), for the
    /// mask-weighted metrics (`metrics/masked.rs`).
    masks: Vec<bool>,
}

/// The traced steps of a compiled model (kept in [`Compiled`](super::Compiled)).
#[derive(Default)]
pub struct TracedSteps {
    steps: HashMap<StepKey, Arc<Step>>,
    /// Why the model runs eagerly although `run_eagerly` is false (set once, printed once).
    fallback: Option<String>,
    /// The optimizer, lent to the traced train step's update node while it runs.
    lender: Lender,
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

    /// The traced train steps, one text per batch signature (in no particular order): the
    /// concrete function (`<ConcreteFunction (args) with N nodes, M outputs, ...>`) then its
    /// graph's [`dump`](ferroflow_core::Graph::dump) — to see what runs in the graph (the
    /// seed placeholders, the `ApplyOptimizer` update node).
    pub fn traced_train_step_graphs(&self) -> Vec<String> {
        self.compiled.as_ref().map_or_else(Vec::new, |c| {
            c.traced
                .steps
                .iter()
                .filter(|(k, _)| k.kind == StepKind::Train)
                .map(|(_, s)| format!("{:?}\n{}", s.function, s.function.graph().dump()))
                .collect()
        })
    }

    /// Every traced step's optimised graph (what its session runs, after the graph passes'
    /// fusions), as `"<kind>\n<dump>"` with kind `Train`, `Test` or `Predict` (in no
    /// particular order).
    pub fn traced_optimized_step_graphs(&self) -> Result<Vec<String>> {
        let Some(c) = self.compiled.as_ref() else {
            return Ok(Vec::new());
        };
        c.traced
            .steps
            .iter()
            .map(|(k, s)| {
                Ok(format!(
                    "{:?}\n{}",
                    k.kind,
                    s.function.optimized_graph()?.dump()
                ))
            })
            .collect()
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
        drop(vars);
        let args = step_args(x, y, sample_weight);
        let n_out = self.num_outputs();
        let n_per = self.per_output_count();
        let (values, step) = match self.run_step(&key, &args, eager_train_probe)? {
            Ran::Graph(v, step) => (v, step),
            Ran::Eager(r) => return Ok(r),
        };
        // The optimizer update ran inside the graph (its node's output is last, ignored here).
        let (loss, per_output, outputs, rest) = split_values(values, n_per, n_out);
        self.record_masks(&step, rest)?;
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
        let (values, step) = match self.run_step(&key, &args, eager_test_probe)? {
            Ran::Graph(v, step) => (v, step),
            Ran::Eager(r) => return Ok(r),
        };
        let (loss, per_output, outputs, rest) = split_values(values, n_per, n_out);
        self.record_masks(&step, rest)?;
        Ok(Some((loss, per_output, outputs)))
    }

    /// Hands the output masks a traced step returned (the values after its outputs) to the
    /// metrics, as the eager step does.
    fn record_masks(&mut self, step: &Step, rest: Vec<Tensor>) -> Result<()> {
        let mut rest = rest.into_iter();
        let masks: Vec<Option<Tensor>> = step
            .masks
            .iter()
            .map(|&p| if p { rest.next() } else { None })
            .collect();
        self.compiled_mut()?.output_masks.record(&masks);
        Ok(())
    }

    /// One predict batch: the traced inference-mode forward pass of a compiled model, else
    /// `call(x, training=false)`.
    pub(super) fn predict_step(&mut self, x: &[Tensor]) -> Result<Vec<Tensor>> {
        if self.tracing_enabled() {
            let key = self.step_key(StepKind::Predict, x, &[], None, &[]);
            if let Ran::Graph(v, _) = self.run_step(&key, x, eager_predict_probe)? {
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
            return self.call_step(&step, args).map(|v| Ran::Graph(v, step));
        }
        // Tracing runs the layers once symbolically; it must not consume seeds (the layers'
        // call counts, the session's seed stream): each run draws the step's seeds itself.
        let layers = self.layers();
        let calls: Vec<u64> = layers.iter().map(|l| l.lock().base().calls).collect();
        let seeds = crate::backend::seed_state();
        let traced = self.trace_step(key);
        let after: Vec<u64> = layers.iter().map(|l| l.lock().base().calls).collect();
        for (l, c) in layers.iter().zip(&calls) {
            l.lock().base_mut().calls = *c;
        }
        crate::backend::set_seed_state(seeds.0, seeds.1);
        let traced = traced.and_then(|mut step| {
            let draws: Vec<usize> = after
                .iter()
                .zip(&calls)
                .map(|(a, b)| a.saturating_sub(*b) as usize)
                .collect();
            step.seeds = self.seed_sources(step.function.random_seeds(), &draws)?;
            step.draws = draws;
            Ok(step)
        });
        let ran = traced.and_then(|step| self.call_step(&step, args).map(|v| (step, v)));
        match ran {
            Ok((step, values)) => {
                let step = Arc::new(step);
                self.compiled_mut()?
                    .traced
                    .steps
                    .insert(key.clone(), step.clone());
                Ok(Ran::Graph(values, step))
            }
            Err(e) => {
                // A failed run must not have consumed seeds: the eager step draws them.
                for (l, c) in layers.iter().zip(&calls) {
                    l.lock().base_mut().calls = *c;
                }
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

    /// Matches each traced seed to the layer call it came from. `draws[i]` is how many seeds
    /// layer `i` drew while tracing (its call count is back where it was). Errors (the step then
    /// runs eagerly) for a seed of no layer's stream, and for a layer whose seeds no random op
    /// of the graph uses (it drew its random numbers on the host while tracing).
    fn seed_sources(&self, traced: &[u64], draws: &[usize]) -> Result<Vec<SeedSource>> {
        let layers = self.layers();
        // The seeds each layer drew while tracing, re-drawn from its restored stream.
        let mut drawn: Vec<Vec<u64>> = Vec::with_capacity(layers.len());
        for (l, &n) in layers.iter().zip(draws) {
            let mut l = l.lock();
            let c = l.base().calls;
            drawn.push((0..n).map(|_| l.base_mut().next_call_seed()).collect());
            l.base_mut().calls = c;
        }
        let derivations: Vec<Derive> = std::iter::once(Derive::Same)
            .chain((0..DERIVED).map(Derive::Mix))
            .chain((0..DERIVED).map(Derive::Sub))
            .collect();
        let mut used: Vec<Vec<bool>> = drawn.iter().map(|d| vec![false; d.len()]).collect();
        let mut sources = Vec::with_capacity(traced.len());
        for &t in traced {
            let found = derivations.iter().find_map(|&d| {
                drawn.iter().enumerate().find_map(|(i, seeds)| {
                    seeds
                        .iter()
                        .position(|&s| d.apply(s) == t)
                        .map(|j| SeedSource {
                            layer: i,
                            call: j,
                            derive: d,
                        })
                })
            });
            let Some(src) = found else {
                return Err(Error::invalid(
                    &self.name,
                    "a random op of the step draws from a seed that is not a top-level layer's seed stream, so the traced step could not reproduce the eager draws",
                ));
            };
            used[src.layer][src.call] = true;
            sources.push(src);
        }
        for (l, u) in layers.iter().zip(&used) {
            if u.iter().any(|u| !u) {
                return Err(Error::invalid(
                    &self.name,
                    format!(
                        "layer {:?} draws random numbers on the host, which a traced step would replay as constants",
                        l.name()
                    ),
                ));
            }
        }
        Ok(sources)
    }

    /// Runs a traced step on the batch `args`: draws the step's seeds from the layers' seed
    /// streams (advancing them as the eager step would) and feeds them, with the optimizer lent
    /// to the graph's update node.
    fn call_step(&mut self, step: &Step, args: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut all = args.to_vec();
        if !step.seeds.is_empty() {
            let layers = self.layers();
            let mut drawn: Vec<Vec<u64>> = Vec::with_capacity(layers.len());
            for (l, &n) in layers.iter().zip(&step.draws) {
                let mut l = l.lock();
                drawn.push((0..n).map(|_| l.base_mut().next_call_seed()).collect());
            }
            for s in &step.seeds {
                let base = drawn
                    .get(s.layer)
                    .and_then(|d| d.get(s.call))
                    .copied()
                    .ok_or_else(|| {
                        Error::invalid(&self.name, "internal: a seed's layer is gone")
                    })?;
                // The seed's 64 bits, as int64.
                all.push(Tensor::scalar(s.derive.apply(base) as i64));
            }
        }
        if !step.train {
            return step.function.call(&all);
        }
        let lender = self.compiled_mut()?.traced.lender.clone();
        let placeholder: Box<dyn crate::optimizers::Optimizer> =
            Box::new(crate::optimizers::SGD::new());
        let opt = std::mem::replace(&mut self.compiled_mut()?.optimizer, placeholder);
        *lock(&lender) = Some(opt);
        let result = step.function.call(&all);
        if let Some(opt) = lock(&lender).take() {
            self.compiled_mut()?.optimizer = opt;
        }
        result
    }

    fn trace_step(&self, key: &StepKey) -> Result<Step> {
        let specs: Vec<TensorSpec> = key
            .specs
            .iter()
            .map(|(d, s)| TensorSpec::new(*d, s))
            .collect();
        let (n_x, n_y) = (key.n_x, key.n_y);
        let lender = self
            .compiled
            .as_ref()
            .map(|c| c.traced.lender.clone())
            .unwrap_or_default();
        // Which outputs carry a mask, as the trace finds out (returned after the outputs).
        let mask_flags = std::cell::RefCell::new(Vec::new());
        let push_masks = |out: &mut Vec<Tensor>, masks: Vec<Option<Tensor>>| {
            *mask_flags.borrow_mut() = masks.iter().map(Option::is_some).collect();
            out.extend(masks.into_iter().flatten());
        };
        let function = ConcreteFunction::trace_with_seed_inputs(&specs, |args| {
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
                    push_masks(&mut out, masks);
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
                    drop(tape);
                    let mut out = vec![loss];
                    out.extend(per_output);
                    out.extend(outputs);
                    push_masks(&mut out, masks);
                    let has_grad: Vec<bool> = grads.iter().map(Option::is_some).collect();
                    // The update runs after every result of the step, on the gradients.
                    let n_deps = out.len();
                    let mut inputs = out.clone();
                    inputs.extend(grads.into_iter().flatten());
                    let update = ApplyOptimizer {
                        lender,
                        vars,
                        has_grad,
                        n_deps,
                    };
                    out.push(ferroflow_core::op::execute1(update, &inputs)?);
                    Ok(out)
                }
            }
        })?;
        Ok(Step {
            function,
            train: key.kind == StepKind::Train,
            seeds: Vec::new(),
            draws: Vec::new(),
            masks: mask_flags.into_inner(),
        })
    }
}

/// Runs a step eagerly when it could not be traced (to tell a step that cannot be traced from
/// bad data); returns the step's result (`None` for predict, which the caller recomputes).
type Probe = fn(&mut Model, &StepKey, &[Tensor]) -> Result<Option<StepResult>>;

/// How a step ran.
enum Ran {
    /// The traced graph's values, and the step that gave them.
    Graph(Vec<Tensor>, Arc<Step>),
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
    m.compiled_mut()?.output_masks.record(&masks);
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

/// Splits `[loss, per-output losses.., outputs.., rest..]` (the rest: the outputs' masks, then the
/// update node's output).
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
