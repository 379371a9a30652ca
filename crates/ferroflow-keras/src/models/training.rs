//! `compile`, `fit`, `evaluate`, `predict` and the `*_on_batch` methods.
//!
//! The life of a `fit` call: split off validation data, then per epoch shuffle the sample order
//! (seeded), and per batch run the forward pass in training mode under a `GradientTape` that
//! watches the trainable weights, add the regularization penalties to the loss, take the
//! gradients, let the optimizer apply them, and update the running loss and metrics that the
//! progress bar and callbacks see. At the epoch's end, the validation data is evaluated and the
//! callbacks (History first) get the epoch's logs.

use std::collections::HashMap;

use ferroflow_core::{ops, DType, Error, GradientTape, Result, Tensor, Variable, Watchable};

use super::data::IntoTensors;
use super::Model;
use crate::backend::{mix, next_seed, Arg};
use crate::callbacks::{Callback, History, Logs};
use crate::losses::Loss;
use crate::metrics::{Mean, Metric};
use crate::optimizers::Optimizer;
use crate::utils::Progbar;

/// What `compile` set up: the optimizer, a loss per output (with weights), and metrics per
/// output.
pub struct Compiled {
    /// The optimizer.
    pub optimizer: Box<dyn Optimizer>,
    /// One loss per model output.
    pub losses: Vec<Box<dyn Loss>>,
    /// The weight of each output's loss in the total (Keras's `loss_weights`).
    pub loss_weights: Vec<f64>,
    /// The metrics of each output.
    pub metrics: Vec<Vec<Box<dyn Metric>>>,
    /// Output names, for per-output log keys of multi-output models.
    pub output_names: Vec<String>,
}

/// One loss, or one per output.
pub trait IntoLosses {
    /// The losses (one, or one per output).
    fn into_losses(self) -> Vec<Arg<Box<dyn Loss>>>;
}

impl IntoLosses for &str {
    fn into_losses(self) -> Vec<Arg<Box<dyn Loss>>> {
        vec![self.into()]
    }
}

impl<L: Loss + 'static> IntoLosses for L {
    fn into_losses(self) -> Vec<Arg<Box<dyn Loss>>> {
        vec![self.into()]
    }
}

impl IntoLosses for Box<dyn Loss> {
    fn into_losses(self) -> Vec<Arg<Box<dyn Loss>>> {
        vec![self.into()]
    }
}

impl<T: Into<Arg<Box<dyn Loss>>>> IntoLosses for Vec<T> {
    fn into_losses(self) -> Vec<Arg<Box<dyn Loss>>> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<T: Into<Arg<Box<dyn Loss>>>, const N: usize> IntoLosses for [T; N] {
    fn into_losses(self) -> Vec<Arg<Box<dyn Loss>>> {
        self.into_iter().map(Into::into).collect()
    }
}

/// Metrics for `compile`: `()` for none, names (`["accuracy"]`) or metric objects.
pub trait IntoMetrics {
    /// The metrics.
    fn into_metrics(self) -> Vec<MetricSpec>;
}

/// A metric by name (re-created per output) or by value.
pub enum MetricSpec {
    /// A name, resolved by `metrics::get` for each output.
    Name(String),
    /// An object (single-output models).
    Object(Box<dyn Metric>),
}

impl IntoMetrics for () {
    fn into_metrics(self) -> Vec<MetricSpec> {
        Vec::new()
    }
}

impl<const N: usize> IntoMetrics for [&str; N] {
    fn into_metrics(self) -> Vec<MetricSpec> {
        self.iter()
            .map(|s| MetricSpec::Name(s.to_string()))
            .collect()
    }
}

impl IntoMetrics for &[&str] {
    fn into_metrics(self) -> Vec<MetricSpec> {
        self.iter()
            .map(|s| MetricSpec::Name(s.to_string()))
            .collect()
    }
}

impl IntoMetrics for Vec<&str> {
    fn into_metrics(self) -> Vec<MetricSpec> {
        self.iter()
            .map(|s| MetricSpec::Name(s.to_string()))
            .collect()
    }
}

impl IntoMetrics for Vec<Box<dyn Metric>> {
    fn into_metrics(self) -> Vec<MetricSpec> {
        self.into_iter().map(MetricSpec::Object).collect()
    }
}

impl Model {
    /// `model.compile(optimizer, loss, metrics)`. Names (`"adam"`,
    /// `"sparse_categorical_crossentropy"`, `["accuracy"]`) or objects; a loss per output for
    /// multi-output models (one loss is used for every output). An unknown name is an error
    /// listing the valid ones.
    pub fn compile(
        &mut self,
        optimizer: impl Into<Arg<Box<dyn Optimizer>>>,
        loss: impl IntoLosses,
        metrics: impl IntoMetrics,
    ) -> Result<()> {
        let optimizer = optimizer.into().resolve()?;
        let n_out = self.num_outputs();
        let mut losses: Vec<Box<dyn Loss>> = loss
            .into_losses()
            .into_iter()
            .map(Arg::resolve)
            .collect::<Result<_>>()?;
        if losses.is_empty() {
            return Err(Error::invalid(&self.name, "compile: a loss is required"));
        }
        if losses.len() == 1 && n_out > 1 {
            // One loss for every output: a copy for each (re-resolved by name if it cannot be
            // copied).
            let first = &losses[0];
            let copies = (0..n_out)
                .map(|_| {
                    first
                        .clone_loss()
                        .map_or_else(|| crate::losses::get(first.name()), Ok)
                })
                .collect::<Result<Vec<_>>>()?;
            losses = copies;
        }
        if losses.len() != n_out {
            return Err(Error::invalid(
                &self.name,
                format!(
                    "compile: the model has {n_out} outputs but {} losses were given",
                    losses.len()
                ),
            ));
        }
        let specs = metrics.into_metrics();
        let mut per_output: Vec<Vec<Box<dyn Metric>>> = (0..n_out).map(|_| Vec::new()).collect();
        for spec in specs {
            match spec {
                MetricSpec::Name(n) => {
                    for out in per_output.iter_mut() {
                        out.push(crate::metrics::get(&n)?);
                    }
                }
                MetricSpec::Object(m) => {
                    if n_out != 1 {
                        return Err(Error::invalid(
                            &self.name,
                            "compile: metric objects are only accepted for single-output models; pass names",
                        ));
                    }
                    per_output[0].push(m);
                }
            }
        }
        self.compiled = Some(Compiled {
            optimizer,
            losses,
            loss_weights: vec![1.0; n_out],
            metrics: per_output,
            output_names: self.output_names(),
        });
        Ok(())
    }

    /// Keras's `compile(loss_weights=...)`: the weight of each output's loss in the total.
    pub fn set_loss_weights(&mut self, weights: &[f64]) -> Result<()> {
        let name = self.name.clone();
        let c = self.compiled_mut()?;
        if weights.len() != c.losses.len() {
            return Err(Error::invalid(
                &name,
                format!(
                    "loss_weights: {} weights for {} outputs",
                    weights.len(),
                    c.losses.len()
                ),
            ));
        }
        c.loss_weights = weights.to_vec();
        Ok(())
    }

    /// The compiled state, or Keras's error for a model that was not compiled.
    pub fn compiled_mut(&mut self) -> Result<&mut Compiled> {
        let name = self.name.clone();
        self.compiled.as_mut().ok_or_else(|| {
            Error::invalid(
                &name,
                format!("you must call compile() on model {name:?} before using it for training or evaluation"),
            )
        })
    }

    /// The optimizer set by `compile`.
    pub fn optimizer(&mut self) -> Result<&mut Box<dyn Optimizer>> {
        Ok(&mut self.compiled_mut()?.optimizer)
    }

    /// `model.fit(x, y)`: a builder with Keras's arguments (`epochs`, `batch_size`, ...); `run`
    /// trains and returns the `History`.
    pub fn fit(&mut self, x: impl IntoTensors, y: impl IntoTensors) -> Fit<'_> {
        Fit {
            model: self,
            x: x.into_tensors(),
            y: y.into_tensors(),
            batch_size: 32,
            epochs: 1,
            verbose: 1,
            callbacks: Vec::new(),
            validation_split: 0.0,
            validation_data: None,
            shuffle: true,
            class_weight: None,
            sample_weight: None,
            initial_epoch: 0,
            steps_per_epoch: None,
        }
    }

    /// `model.evaluate(x, y)`: a builder; `run` returns `[loss, metrics...]`.
    pub fn evaluate(&mut self, x: impl IntoTensors, y: impl IntoTensors) -> EvaluateArgs<'_> {
        EvaluateArgs {
            model: self,
            x: x.into_tensors(),
            y: y.into_tensors(),
            batch_size: 32,
            verbose: 1,
            sample_weight: None,
            callbacks: Vec::new(),
        }
    }

    /// `model.predict(x)`: a builder; `run` returns the predictions (batched, inference mode).
    pub fn predict(&mut self, x: impl IntoTensors) -> PredictArgs<'_> {
        PredictArgs {
            model: self,
            x: x.into_tensors(),
            batch_size: 32,
            verbose: 1,
            callbacks: Vec::new(),
        }
    }

    /// `model.train_on_batch(x, y)`: one optimizer step on one batch; returns the logs (loss and
    /// metrics of this batch alone).
    pub fn train_on_batch(
        &mut self,
        x: impl IntoTensors,
        y: impl IntoTensors,
        sample_weight: Option<&Tensor>,
    ) -> Result<Logs> {
        let (x, y) = (x.into_tensors(), y.into_tensors());
        check_data(&self.name, &x, &y, sample_weight)?;
        self.ensure_built_for(&x)?;
        self.reset_metrics()?;
        let mut loss_mean = Mean::new("loss");
        let mut out_losses = self.new_output_loss_means();
        self.train_step(&x, &y, sample_weight, &mut loss_mean, &mut out_losses)?;
        self.collect_logs(&loss_mean, &out_losses, "")
    }

    /// `model.test_on_batch(x, y)`: loss and metrics of one batch in inference mode.
    pub fn test_on_batch(
        &mut self,
        x: impl IntoTensors,
        y: impl IntoTensors,
        sample_weight: Option<&Tensor>,
    ) -> Result<Logs> {
        let (x, y) = (x.into_tensors(), y.into_tensors());
        check_data(&self.name, &x, &y, sample_weight)?;
        self.ensure_built_for(&x)?;
        self.reset_metrics()?;
        let mut loss_mean = Mean::new("loss");
        let mut out_losses = self.new_output_loss_means();
        self.test_step(&x, &y, sample_weight, &mut loss_mean, &mut out_losses)?;
        self.collect_logs(&loss_mean, &out_losses, "")
    }

    /// Log keys in Keras's list order: `loss`, per-output losses, then metrics in compile order.
    fn log_order(&mut self) -> Result<Vec<String>> {
        let mut keys = vec!["loss".to_string()];
        keys.extend(
            self.new_output_loss_means()
                .iter()
                .map(|m| m.name().to_string()),
        );
        let c = self.compiled_mut()?;
        let multi = c.metrics.len() > 1;
        for (i, ms) in c.metrics.iter().enumerate() {
            for m in ms {
                keys.push(if multi {
                    format!("{}_{}", c.output_names[i], m.name())
                } else {
                    m.name().to_string()
                });
            }
        }
        Ok(keys)
    }

    fn reset_metrics(&mut self) -> Result<()> {
        for ms in self.compiled_mut()?.metrics.iter_mut() {
            for m in ms.iter_mut() {
                m.reset_state();
            }
        }
        Ok(())
    }

    fn new_output_loss_means(&self) -> Vec<Mean> {
        if self.num_outputs() > 1 {
            self.output_names()
                .iter()
                .map(|n| Mean::new(&format!("{n}_loss")))
                .collect()
        } else {
            Vec::new()
        }
    }

    /// The total loss of a batch: Σ weight·loss per output, plus regularization penalties (in
    /// training). Also returns each output's loss.
    fn compute_loss(
        &self,
        y: &[Tensor],
        outputs: &[Tensor],
        sample_weight: Option<&Tensor>,
        with_regularization: bool,
    ) -> Result<(Tensor, Vec<f64>)> {
        let c = self
            .compiled
            .as_ref()
            .ok_or_else(|| Error::invalid(&self.name, "you must call compile() before training"))?;
        let mut total: Option<Tensor> = None;
        let mut per_output = Vec::new();
        for (i, ((loss, out), target)) in c.losses.iter().zip(outputs).zip(y).enumerate() {
            let l = loss
                .compute(target, out, sample_weight)
                .map_err(|e| label_error(e, &format!("loss {:?} of output {i}", loss.name())))?;
            per_output.push(l.to_f64_vec().first().copied().unwrap_or(0.0));
            let w = c.loss_weights[i];
            let l = if w == 1.0 { l } else { ops::mul_scalar(&l, w)? };
            total = Some(match total {
                None => l,
                Some(t) => ops::add(&t, &l)?,
            });
        }
        let mut total = total.ok_or_else(|| Error::invalid(&self.name, "no loss"))?;
        if with_regularization {
            for p in self.regularization_losses()? {
                total = ops::add(&total, &ops::cast(&p, total.dtype())?)?;
            }
        }
        Ok((total, per_output))
    }

    fn train_step(
        &mut self,
        x: &[Tensor],
        y: &[Tensor],
        sample_weight: Option<&Tensor>,
        loss_mean: &mut Mean,
        out_losses: &mut [Mean],
    ) -> Result<()> {
        let vars = self.trainable_weights();
        let batch = x
            .first()
            .map_or(0, |t| t.shape().first().copied().unwrap_or(0)) as f64;
        let (loss, per_output, outputs, grads) = {
            let tape = GradientTape::with_options(false, false);
            for v in &vars {
                tape.watch(v);
            }
            let outputs = self.call(x, true)?;
            check_targets(&self.name, &outputs, y)?;
            let (loss, per_output) = self.compute_loss(y, &outputs, sample_weight, true)?;
            let sources: Vec<&dyn Watchable> = vars.iter().map(|v| v as &dyn Watchable).collect();
            let grads = tape.gradient(&loss, &sources)?;
            (loss, per_output, outputs, grads)
        };
        let pairs: Vec<(Tensor, Variable)> = grads
            .into_iter()
            .zip(&vars)
            .filter_map(|(g, v)| g.map(|g| (g, v.clone())))
            .collect();
        let c = self.compiled_mut()?;
        c.optimizer.apply_gradients(&pairs)?;
        loss_mean.update_value(loss.to_f64_vec()[0], batch);
        for (m, l) in out_losses.iter_mut().zip(&per_output) {
            m.update_value(*l, batch);
        }
        update_metrics(c, y, &outputs, sample_weight)
    }

    fn test_step(
        &mut self,
        x: &[Tensor],
        y: &[Tensor],
        sample_weight: Option<&Tensor>,
        loss_mean: &mut Mean,
        out_losses: &mut [Mean],
    ) -> Result<()> {
        let batch = x
            .first()
            .map_or(0, |t| t.shape().first().copied().unwrap_or(0)) as f64;
        let outputs = self.call(x, false)?;
        check_targets(&self.name, &outputs, y)?;
        let (loss, per_output) = self.compute_loss(y, &outputs, sample_weight, true)?;
        loss_mean.update_value(loss.to_f64_vec()[0], batch);
        for (m, l) in out_losses.iter_mut().zip(&per_output) {
            m.update_value(*l, batch);
        }
        let c = self.compiled_mut()?;
        update_metrics(c, y, &outputs, sample_weight)
    }

    /// The logs: `loss`, per-output losses, and metrics (prefixed for multi-output models, then
    /// by `prefix`, e.g. `val_`).
    fn collect_logs(&mut self, loss: &Mean, out_losses: &[Mean], prefix: &str) -> Result<Logs> {
        let mut logs = Logs::new();
        logs.insert(format!("{prefix}loss"), loss.value());
        for m in out_losses {
            logs.insert(format!("{prefix}{}", m.name()), m.value());
        }
        let c = self.compiled_mut()?;
        let multi = c.metrics.len() > 1;
        for (i, ms) in c.metrics.iter().enumerate() {
            for m in ms {
                let name = if multi {
                    format!("{}_{}", c.output_names[i], m.name())
                } else {
                    m.name().to_string()
                };
                let r = m.result()?;
                if r.num_elements() == 1 {
                    logs.insert(format!("{prefix}{name}"), r.to_f64_vec()[0]);
                }
            }
        }
        Ok(logs)
    }

    /// Runs the evaluation loop over `x`/`y` in batches (shared by `evaluate` and `fit`'s
    /// validation).
    #[allow(clippy::too_many_arguments)]
    fn run_evaluation(
        &mut self,
        x: &[Tensor],
        y: &[Tensor],
        sample_weight: Option<&Tensor>,
        batch_size: usize,
        mut progbar: Option<&mut Progbar>,
        callbacks: &mut [Box<dyn Callback>],
        prefix: &str,
    ) -> Result<Logs> {
        self.reset_metrics()?;
        let n = num_samples(x);
        let mut loss_mean = Mean::new("loss");
        let mut out_losses = self.new_output_loss_means();
        let steps = n.div_ceil(batch_size.max(1));
        for step in 0..steps {
            let idx = batch_indices(None, step, batch_size, n)?;
            let (bx, by, bw) = take_batch(x, y, sample_weight, &idx)?;
            self.test_step(&bx, &by, bw.as_ref(), &mut loss_mean, &mut out_losses)?;
            let logs = self.collect_logs(&loss_mean, &out_losses, prefix)?;
            for cb in callbacks.iter_mut() {
                cb.on_test_batch_end(self, step, &logs)?;
            }
            if let Some(p) = progbar.as_deref_mut() {
                p.update(step + 1, &log_pairs(&logs), step + 1 == steps);
            }
        }
        self.collect_logs(&loss_mean, &out_losses, prefix)
    }
}

/// Adds context to a loss error (the loss's name and which output).
fn label_error(e: Error, what: &str) -> Error {
    match e {
        Error::Shape { op, msg, shapes } => Error::Shape {
            op,
            msg: format!("{msg} [{what}: targets vs predictions]"),
            shapes,
        },
        other => other,
    }
}

fn update_metrics(
    c: &mut Compiled,
    y: &[Tensor],
    outputs: &[Tensor],
    sample_weight: Option<&Tensor>,
) -> Result<()> {
    for ((ms, out), target) in c.metrics.iter_mut().zip(outputs).zip(y) {
        for m in ms.iter_mut() {
            m.update_state(target, out, sample_weight)?;
        }
    }
    Ok(())
}

fn check_targets(model: &str, outputs: &[Tensor], y: &[Tensor]) -> Result<()> {
    if outputs.len() != y.len() {
        return Err(Error::invalid(
            model,
            format!(
                "model {model:?} has {} output(s) but {} target array(s) were given",
                outputs.len(),
                y.len()
            ),
        ));
    }
    Ok(())
}

fn num_samples(x: &[Tensor]) -> usize {
    x.first()
        .and_then(|t| t.shape().first().copied())
        .unwrap_or(0)
}

/// Checks that inputs, targets and weights agree on the number of samples (Keras's "data
/// cardinality" error).
fn check_data(model: &str, x: &[Tensor], y: &[Tensor], sw: Option<&Tensor>) -> Result<()> {
    if x.is_empty() {
        return Err(Error::invalid(model, "no input data was given"));
    }
    let sizes = |ts: &[Tensor]| -> Vec<usize> {
        ts.iter()
            .map(|t| t.shape().first().copied().unwrap_or(0))
            .collect()
    };
    let (xs, ys) = (sizes(x), sizes(y));
    let mut all: Vec<usize> = xs.iter().chain(&ys).copied().collect();
    if let Some(w) = sw {
        all.push(w.shape().first().copied().unwrap_or(0));
    }
    if all.iter().any(|&s| s != all[0]) || x.iter().chain(y).any(|t| t.rank() == 0) {
        let shapes: Vec<String> = x
            .iter()
            .chain(y)
            .map(|t| ferroflow_core::error::fmt_shape(t.shape()))
            .collect();
        return Err(Error::Shape {
            op: model.to_string(),
            msg: format!(
                "data cardinality is ambiguous: x sizes: {xs:?}, y sizes: {ys:?}; make sure all arrays contain the same number of samples"
            ),
            shapes,
        });
    }
    Ok(())
}

/// The sample indices of batch `step` (in `order`, or 0..n).
fn batch_indices(
    order: Option<&[i64]>,
    step: usize,
    batch_size: usize,
    n: usize,
) -> Result<Tensor> {
    let start = step * batch_size;
    let end = (start + batch_size).min(n);
    let idx: Vec<i64> = match order {
        Some(o) => o[start..end].to_vec(),
        None => (start as i64..end as i64).collect(),
    };
    let len = idx.len();
    Tensor::from_vec(idx, &[len])
}

type Batch = (Vec<Tensor>, Vec<Tensor>, Option<Tensor>);

fn take_batch(x: &[Tensor], y: &[Tensor], sw: Option<&Tensor>, idx: &Tensor) -> Result<Batch> {
    let take = |t: &Tensor| ops::gather(t, idx, 0);
    Ok((
        x.iter().map(take).collect::<Result<_>>()?,
        y.iter().map(take).collect::<Result<_>>()?,
        sw.map(take).transpose()?,
    ))
}

fn log_pairs(logs: &Logs) -> Vec<(String, f64)> {
    logs.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

/// Per-sample weights from `class_weight`: `w[class]`, the class being `argmax` of one-hot
/// targets or the rounded value of integer ones.
fn class_sample_weights(y: &Tensor, class_weight: &HashMap<usize, f64>) -> Result<Tensor> {
    let n = y.shape().first().copied().unwrap_or(0);
    let classes: Vec<usize> = if y.rank() >= 2 && y.shape()[y.rank() - 1] > 1 {
        ops::argmax(y, -1)?
            .to_f64_vec()
            .iter()
            .map(|&c| c as usize)
            .collect()
    } else {
        y.to_f64_vec().iter().map(|&c| c.round() as usize).collect()
    };
    let w: Vec<f32> = classes
        .iter()
        .map(|c| class_weight.get(c).copied().unwrap_or(1.0) as f32)
        .collect();
    Tensor::from_vec(w, &[n])
}

/// The arguments of `model.fit`, with Keras's defaults; `run()` trains.
#[must_use = "fit does nothing until .run() is called"]
pub struct Fit<'m> {
    model: &'m mut Model,
    x: Vec<Tensor>,
    y: Vec<Tensor>,
    batch_size: usize,
    epochs: usize,
    verbose: u8,
    callbacks: Vec<Box<dyn Callback>>,
    validation_split: f64,
    validation_data: Option<(Vec<Tensor>, Vec<Tensor>)>,
    shuffle: bool,
    class_weight: Option<HashMap<usize, f64>>,
    sample_weight: Option<Tensor>,
    initial_epoch: usize,
    steps_per_epoch: Option<usize>,
}

impl Fit<'_> {
    /// Samples per gradient step (default 32); the last batch may be smaller.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// The epoch to stop at (default 1).
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }
    /// 0 silent, 1 progress bar (default), 2 one line per epoch.
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// Adds a callback.
    pub fn callback(mut self, cb: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(cb));
        self
    }
    /// Adds callbacks.
    pub fn callbacks(mut self, cbs: Vec<Box<dyn Callback>>) -> Self {
        self.callbacks.extend(cbs);
        self
    }
    /// Holds out the last fraction of the samples (taken before shuffling) for validation.
    pub fn validation_split(mut self, f: f64) -> Self {
        self.validation_split = f;
        self
    }
    /// Validation inputs and targets (overrides `validation_split`).
    pub fn validation_data(mut self, x: impl IntoTensors, y: impl IntoTensors) -> Self {
        self.validation_data = Some((x.into_tensors(), y.into_tensors()));
        self
    }
    /// Reshuffle the samples each epoch (default true; seeded by the session's seed).
    pub fn shuffle(mut self, s: bool) -> Self {
        self.shuffle = s;
        self
    }
    /// Weights per class, turned into per-sample weights.
    pub fn class_weight(mut self, w: HashMap<usize, f64>) -> Self {
        self.class_weight = Some(w);
        self
    }
    /// Weights per sample, shape `(n,)`.
    pub fn sample_weight(mut self, w: &Tensor) -> Self {
        self.sample_weight = Some(w.clone());
        self
    }
    /// The epoch to start at (epochs run from `initial_epoch` to `epochs - 1`).
    pub fn initial_epoch(mut self, e: usize) -> Self {
        self.initial_epoch = e;
        self
    }
    /// Batches per epoch (at most the number the data gives).
    pub fn steps_per_epoch(mut self, n: usize) -> Self {
        self.steps_per_epoch = Some(n);
        self
    }

    /// Trains; returns the `History`.
    pub fn run(self) -> Result<History> {
        let Fit {
            model,
            x,
            y,
            batch_size,
            epochs,
            verbose,
            mut callbacks,
            validation_split,
            validation_data,
            shuffle,
            class_weight,
            sample_weight,
            initial_epoch,
            steps_per_epoch,
        } = self;
        model.compiled_mut()?;
        if batch_size == 0 {
            return Err(Error::invalid(
                &model.name,
                "fit: batch_size must be positive",
            ));
        }
        if !(0.0..1.0).contains(&validation_split) {
            return Err(Error::invalid(
                &model.name,
                format!("fit: validation_split must be in [0, 1), got {validation_split}"),
            ));
        }
        check_data(&model.name, &x, &y, sample_weight.as_ref())?;
        model.ensure_built_for(&x)?;
        model.check_inputs(&x)?;
        let mut sample_weight = sample_weight;
        if let Some(cw) = &class_weight {
            let w = class_sample_weights(&y[0], cw)?;
            sample_weight = Some(match sample_weight {
                Some(sw) => ops::mul(&ops::cast(&sw, DType::F32)?, &w)?,
                None => w,
            });
        }
        // Keras takes the validation split from the end, before shuffling.
        let n_all = num_samples(&x);
        let (x, y, sample_weight, val) = if let Some((vx, vy)) = validation_data {
            check_data(&model.name, &vx, &vy, None)?;
            (x, y, sample_weight, Some((vx, vy)))
        } else if validation_split > 0.0 {
            let n_train = ((n_all as f64) * (1.0 - validation_split)).floor() as usize;
            let split = |ts: &[Tensor], a: usize, b: usize| -> Result<Vec<Tensor>> {
                let idx = Tensor::from_vec((a as i64..b as i64).collect::<Vec<_>>(), &[b - a])?;
                ts.iter().map(|t| ops::gather(t, &idx, 0)).collect()
            };
            let sw_train = match &sample_weight {
                Some(w) => Some(split(std::slice::from_ref(w), 0, n_train)?.remove(0)),
                None => None,
            };
            let val = (split(&x, n_train, n_all)?, split(&y, n_train, n_all)?);
            (
                split(&x, 0, n_train)?,
                split(&y, 0, n_train)?,
                sw_train,
                Some(val),
            )
        } else {
            (x, y, sample_weight, None)
        };
        let n = num_samples(&x);
        let mut steps = n.div_ceil(batch_size);
        if let Some(s) = steps_per_epoch {
            steps = steps.min(s);
        }
        let shuffle_seed = next_seed();
        let mut history = History::new();
        history.params.insert("epochs".into(), epochs);
        history.params.insert("steps".into(), steps);
        history.params.insert("verbose".into(), verbose as usize);
        model.stop_training = false;
        let empty = Logs::new();
        history.on_train_begin(model, &empty)?;
        for cb in callbacks.iter_mut() {
            cb.on_train_begin(model, &empty)?;
        }
        let mut last_logs = Logs::new();
        for epoch in initial_epoch..epochs {
            model.reset_metrics()?;
            for cb in callbacks.iter_mut() {
                cb.on_epoch_begin(model, epoch, &empty)?;
            }
            if verbose == 1 && epochs > 1 {
                println!("Epoch {}/{}", epoch + 1, epochs);
            }
            let order: Option<Vec<i64>> = if shuffle {
                let ids = ops::arange(n, DType::I64);
                Some(
                    ops::random_shuffle(&ids, mix(shuffle_seed ^ mix(epoch as u64)))?
                        .to_vec::<i64>()?,
                )
            } else {
                None
            };
            let mut progbar = Progbar::new(Some(steps), verbose);
            let mut loss_mean = Mean::new("loss");
            let mut out_losses = model.new_output_loss_means();
            let mut logs = Logs::new();
            for step in 0..steps {
                for cb in callbacks.iter_mut() {
                    cb.on_train_batch_begin(model, step, &logs)?;
                }
                let idx = batch_indices(order.as_deref(), step, batch_size, n)?;
                let (bx, by, bw) = take_batch(&x, &y, sample_weight.as_ref(), &idx)?;
                model.train_step(&bx, &by, bw.as_ref(), &mut loss_mean, &mut out_losses)?;
                logs = model.collect_logs(&loss_mean, &out_losses, "")?;
                for cb in callbacks.iter_mut() {
                    cb.on_train_batch_end(model, step, &logs)?;
                }
                if step + 1 < steps {
                    progbar.update(step + 1, &log_pairs(&logs), false);
                }
                if model.stop_training {
                    break;
                }
            }
            if let Some((vx, vy)) = &val {
                let val_logs =
                    model.run_evaluation(vx, vy, None, batch_size, None, &mut [], "val_")?;
                logs.extend(val_logs);
            }
            progbar.update(steps, &log_pairs(&logs), true);
            history.on_epoch_end(model, epoch, &logs)?;
            for cb in callbacks.iter_mut() {
                cb.on_epoch_end(model, epoch, &logs)?;
            }
            last_logs = logs;
            if model.stop_training {
                break;
            }
        }
        for cb in callbacks.iter_mut() {
            cb.on_train_end(model, &last_logs)?;
        }
        Ok(history)
    }
}

/// The arguments of `model.evaluate`; `run()` returns `[loss, metrics...]` in compile order,
/// `run_dict()` the logs by name.
#[must_use = "evaluate does nothing until .run() is called"]
pub struct EvaluateArgs<'m> {
    model: &'m mut Model,
    x: Vec<Tensor>,
    y: Vec<Tensor>,
    batch_size: usize,
    verbose: u8,
    sample_weight: Option<Tensor>,
    callbacks: Vec<Box<dyn Callback>>,
}

impl EvaluateArgs<'_> {
    /// Samples per batch (default 32).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// 0 silent, 1 progress bar (default), 2 one line.
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// Weights per sample.
    pub fn sample_weight(mut self, w: &Tensor) -> Self {
        self.sample_weight = Some(w.clone());
        self
    }
    /// Adds a callback.
    pub fn callback(mut self, cb: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(cb));
        self
    }

    /// Evaluates; the logs by name (`loss`, `accuracy`, ...).
    pub fn run_dict(self) -> Result<Logs> {
        let EvaluateArgs {
            model,
            x,
            y,
            batch_size,
            verbose,
            sample_weight,
            mut callbacks,
        } = self;
        model.compiled_mut()?;
        if batch_size == 0 {
            return Err(Error::invalid(
                &model.name,
                "evaluate: batch_size must be positive",
            ));
        }
        check_data(&model.name, &x, &y, sample_weight.as_ref())?;
        model.ensure_built_for(&x)?;
        model.check_inputs(&x)?;
        let steps = num_samples(&x).div_ceil(batch_size);
        let mut progbar = Progbar::new(Some(steps), verbose);
        let empty = Logs::new();
        for cb in callbacks.iter_mut() {
            cb.on_test_begin(model, &empty)?;
        }
        let logs = model.run_evaluation(
            &x,
            &y,
            sample_weight.as_ref(),
            batch_size,
            Some(&mut progbar),
            &mut callbacks,
            "",
        )?;
        for cb in callbacks.iter_mut() {
            cb.on_test_end(model, &logs)?;
        }
        Ok(logs)
    }

    /// Evaluates; `[loss, per-output losses..., metrics...]` in compile order (Keras's list).
    pub fn run(self) -> Result<Vec<f64>> {
        let order = self.model.log_order()?;
        let logs = self.run_dict()?;
        Ok(order.iter().filter_map(|k| logs.get(k).copied()).collect())
    }
}

/// The arguments of `model.predict`; `run()` returns the predictions of a single-output model,
/// `run_all()` one tensor per output.
#[must_use = "predict does nothing until .run() is called"]
pub struct PredictArgs<'m> {
    model: &'m mut Model,
    x: Vec<Tensor>,
    batch_size: usize,
    verbose: u8,
    callbacks: Vec<Box<dyn Callback>>,
}

impl PredictArgs<'_> {
    /// Samples per batch (default 32).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// 0 silent, 1 progress bar (default).
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// Adds a callback.
    pub fn callback(mut self, cb: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(cb));
        self
    }

    /// Predicts; one tensor per model output.
    pub fn run_all(self) -> Result<Vec<Tensor>> {
        let PredictArgs {
            model,
            x,
            batch_size,
            verbose,
            mut callbacks,
        } = self;
        if batch_size == 0 {
            return Err(Error::invalid(
                &model.name,
                "predict: batch_size must be positive",
            ));
        }
        check_data(&model.name, &x, &[], None)?;
        model.ensure_built_for(&x)?;
        model.check_inputs(&x)?;
        let n = num_samples(&x);
        let steps = n.div_ceil(batch_size);
        let mut progbar = Progbar::new(Some(steps), verbose);
        let empty = Logs::new();
        for cb in callbacks.iter_mut() {
            cb.on_predict_begin(model, &empty)?;
        }
        let mut parts: Vec<Vec<Tensor>> = Vec::new();
        for step in 0..steps {
            let idx = batch_indices(None, step, batch_size, n)?;
            let bx: Vec<Tensor> = x
                .iter()
                .map(|t| ops::gather(t, &idx, 0))
                .collect::<Result<_>>()?;
            let outs = model.call(&bx, false)?;
            if parts.is_empty() {
                parts = vec![Vec::new(); outs.len()];
            }
            for (p, o) in parts.iter_mut().zip(outs) {
                p.push(o);
            }
            for cb in callbacks.iter_mut() {
                cb.on_predict_batch_end(model, step, &empty)?;
            }
            progbar.update(step + 1, &[], step + 1 == steps);
        }
        for cb in callbacks.iter_mut() {
            cb.on_predict_end(model, &empty)?;
        }
        parts
            .iter()
            .map(|p| {
                let refs: Vec<&Tensor> = p.iter().collect();
                if refs.len() == 1 {
                    Ok(refs[0].clone())
                } else {
                    ops::concat(&refs, 0)
                }
            })
            .collect()
    }

    /// Predicts with a single-output model.
    pub fn run(self) -> Result<Tensor> {
        let name = self.model.name.clone();
        let mut out = self.run_all()?;
        if out.len() != 1 {
            return Err(Error::invalid(
                &name,
                format!("the model has {} outputs; use run_all()", out.len()),
            ));
        }
        Ok(out.remove(0))
    }
}
