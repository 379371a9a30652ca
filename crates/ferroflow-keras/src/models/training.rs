//! The training and test steps shared by `fit`, `evaluate` and the `*_on_batch` methods: the
//! forward pass under a `GradientTape`, the compiled losses and regularization penalties, the
//! optimizer step, and the running loss and metrics.

use std::collections::HashMap;

use ferroflow_core::{ops, Error, GradientTape, Result, Tensor, Variable, Watchable};

use super::batches::EpochIterator;
use super::compile::Compiled;
use super::data::IntoTensors;
use super::Model;
use crate::callbacks::{Callback, Logs};
use crate::metrics::{Mean, Metric};
use crate::utils::Progbar;

impl Model {
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
    pub(super) fn log_order(&mut self) -> Result<Vec<String>> {
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

    pub(super) fn reset_metrics(&mut self) -> Result<()> {
        for ms in self.compiled_mut()?.metrics.iter_mut() {
            for m in ms.iter_mut() {
                m.reset_state();
            }
        }
        Ok(())
    }

    pub(super) fn new_output_loss_means(&self) -> Vec<Mean> {
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
    pub(super) fn compute_loss(
        &self,
        y: &[Tensor],
        outputs: &[Tensor],
        masks: &[Option<Tensor>],
        sample_weight: Option<&Tensor>,
        with_regularization: bool,
    ) -> Result<(Tensor, Vec<f64>)> {
        let (total, per_output) =
            self.compute_loss_tensors(y, outputs, masks, sample_weight, with_regularization)?;
        let per_output = per_output
            .iter()
            .map(|l| l.to_f64_vec().first().copied().unwrap_or(0.0))
            .collect();
        Ok((total, per_output))
    }

    /// [`compute_loss`](Model::compute_loss) with each output's loss as a tensor (scalar), so a
    /// traced step can return them from its graph.
    pub(super) fn compute_loss_tensors(
        &self,
        y: &[Tensor],
        outputs: &[Tensor],
        masks: &[Option<Tensor>],
        sample_weight: Option<&Tensor>,
        with_regularization: bool,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let c = self
            .compiled
            .as_ref()
            .ok_or_else(|| Error::invalid(&self.name, "you must call compile() before training"))?;
        let mut total: Option<Tensor> = None;
        let mut per_output = Vec::new();
        for (i, ((loss, out), target)) in c.losses.iter().zip(outputs).zip(y).enumerate() {
            let scale = loss.reduction() == crate::losses::Reduction::SumOverBatchSize;
            let mw = output_mask_weight(loss.name(), masks.get(i), sample_weight, scale)?;
            let l = loss
                .compute(target, out, mw.as_ref().or(sample_weight))
                .map_err(|e| label_error(e, &format!("loss {:?} of output {i}", loss.name())))?;
            // A loss compiled with reduction "none" is averaged, as Keras's loss tracker does.
            let l = if l.rank() > 0 {
                ops::reduce_mean(&l, ops::Axes::All, false)?
            } else {
                l
            };
            // Keras records each output's loss after its `loss_weights` factor, so the parts
            // add up to the total.
            let w = c.loss_weights[i];
            let l = if w == 1.0 { l } else { ops::mul_scalar(&l, w)? };
            per_output.push(l.clone());
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

    pub(super) fn train_step(
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
        // The default path: the step as a traced graph (`traced.rs`); `None` when the model
        // runs eagerly (`run_eagerly`, or a model whose step cannot be traced).
        // Both steps record the outputs' masks for the mask-weighted metrics (`metrics/masked.rs`).
        let traced = self.traced_train_step(x, y, sample_weight)?;
        let (loss, per_output, outputs) = match traced {
            Some(r) => r,
            None => self.eager_train_step(x, y, sample_weight)?,
        };
        loss_mean.update_value(loss, batch);
        for (m, l) in out_losses.iter_mut().zip(&per_output) {
            m.update_value(*l, batch);
        }
        update_metrics(self.compiled_mut()?, y, &outputs)
    }

    /// The eager train step: forward pass under a tape, losses, gradients, optimizer step.
    /// Returns the loss, each output's loss and the outputs.
    pub(super) fn eager_train_step(
        &mut self,
        x: &[Tensor],
        y: &[Tensor],
        sample_weight: Option<&Tensor>,
    ) -> Result<(f64, Vec<f64>, Vec<Tensor>)> {
        let vars = self.trainable_weights();
        let (loss, per_output, outputs, grads) = {
            let tape = GradientTape::with_options(false, false);
            for v in &vars {
                tape.watch(v);
            }
            let (outputs, masks) = self.call_with_masks(x, true)?;
            check_targets(&self.name, &outputs, y)?;
            let (loss, per_output) = self.compute_loss(y, &outputs, &masks, sample_weight, true)?;
            let sources: Vec<&dyn Watchable> = vars.iter().map(|v| v as &dyn Watchable).collect();
            let grads = tape.gradient(&loss, &sources)?;
            self.compiled_mut()?.output_masks.record(&masks);
            (loss, per_output, outputs, grads)
        };
        // Data parallelism: the gradients averaged over ranks (no-op without a strategy).
        let grads = crate::distribute::reduce_gradients(grads)?;
        let pairs: Vec<(Tensor, Variable)> = grads
            .into_iter()
            .zip(&vars)
            .filter_map(|(g, v)| g.map(|g| (g, v.clone())))
            .collect();
        let c = self.compiled_mut()?;
        c.optimizer.apply_gradients(&pairs)?;
        let loss = loss.to_f64_vec().first().copied().unwrap_or(0.0);
        Ok((loss, per_output, outputs))
    }

    pub(super) fn test_step(
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
        let traced = self.traced_test_step(x, y, sample_weight)?;
        let (loss, per_output, outputs) = match traced {
            Some(r) => r,
            None => {
                let (outputs, masks) = self.call_with_masks(x, false)?;
                check_targets(&self.name, &outputs, y)?;
                let (loss, per_output) =
                    self.compute_loss(y, &outputs, &masks, sample_weight, true)?;
                self.compiled_mut()?.output_masks.record(&masks);
                let loss = loss.to_f64_vec().first().copied().unwrap_or(0.0);
                (loss, per_output, outputs)
            }
        };
        loss_mean.update_value(loss, batch);
        for (m, l) in out_losses.iter_mut().zip(&per_output) {
            m.update_value(*l, batch);
        }
        let c = self.compiled_mut()?;
        update_metrics(c, y, &outputs)
    }

    /// The logs: `loss`, per-output losses, and metrics (prefixed for multi-output models, then
    /// by `prefix`, e.g. `val_`).
    pub(super) fn collect_logs(
        &mut self,
        loss: &Mean,
        out_losses: &[Mean],
        prefix: &str,
    ) -> Result<Logs> {
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

    /// Runs the evaluation loop over one epoch of `batches` (shared by `evaluate` and `fit`'s
    /// validation, over in-memory tensors or a dataset alike).
    pub(super) fn run_evaluation(
        &mut self,
        batches: &mut EpochIterator,
        mut progbar: Option<&mut Progbar>,
        callbacks: &mut [Box<dyn Callback>],
        prefix: &str,
    ) -> Result<Logs> {
        self.reset_metrics()?;
        let mut loss_mean = Mean::new("loss");
        let mut out_losses = self.new_output_loss_means();
        batches.begin_epoch(0)?;
        let mut step = 0;
        let mut logs = Logs::new();
        while let Some(b) = batches.next_batch()? {
            if batches.is_dataset() {
                self.check_batch(&b.x)?;
            }
            self.test_step(&b.x, &b.y, b.sw.as_ref(), &mut loss_mean, &mut out_losses)?;
            logs = self.collect_logs(&loss_mean, &out_losses, prefix)?;
            for cb in callbacks.iter_mut() {
                cb.on_test_batch_end(self, step, &logs)?;
            }
            step += 1;
            if let Some(p) = progbar.as_deref_mut() {
                if p.target().is_none_or(|t| step < t) {
                    p.update(step, &log_pairs(&logs), false);
                }
            }
        }
        if step == 0 {
            return Err(Error::invalid(
                &self.name,
                format!(
                    "{}: the data gave no batches",
                    if prefix.is_empty() {
                        "evaluate"
                    } else {
                        "fit (validation data)"
                    }
                ),
            ));
        }
        if let Some(p) = progbar {
            // As Keras's `_finalize_progbar`: data of unknown size now has a known total.
            let total = p.target().unwrap_or(step);
            p.set_target(Some(total));
            p.update(total, &log_pairs(&logs), true);
        }
        self.collect_logs(&loss_mean, &out_losses, prefix)
    }

    /// Before a dataset's batch: builds a model without an input shape from it, and checks its
    /// inputs against the model's, naming the model (in-memory tensors are checked once, whole).
    pub(super) fn check_batch(&mut self, x: &[Tensor]) -> Result<()> {
        self.ensure_built_for(x)?;
        self.check_inputs(x)
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

/// Updates the compiled metrics. As Keras's `CompileMetrics`, the `metrics=` of `compile` are
/// not weighted by `sample_weight`/`class_weight` (Keras weights only `weighted_metrics=`).
fn update_metrics(c: &mut Compiled, y: &[Tensor], outputs: &[Tensor]) -> Result<()> {
    // The masks of the outputs (recorded by an eager step; none after a traced one): Keras's
    // mean metrics count the kept steps only (`metrics/masked.rs`).
    let masks = c.output_masks.take();
    crate::metrics::update_output_metrics(&mut c.metrics, y, outputs, &masks)
}

pub(super) fn check_targets(model: &str, outputs: &[Tensor], y: &[Tensor]) -> Result<()> {
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

pub(super) fn num_samples(x: &[Tensor]) -> usize {
    x.first()
        .and_then(|t| t.shape().first().copied())
        .unwrap_or(0)
}

/// Checks that inputs, targets and weights agree on the number of samples (Keras's "data
/// cardinality" error).
pub(super) fn check_data(
    model: &str,
    x: &[Tensor],
    y: &[Tensor],
    sw: Option<&Tensor>,
) -> Result<()> {
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
    if all[0] == 0 {
        return Err(Error::invalid(
            model,
            "the data has no samples (the first dimension of the inputs is 0)",
        ));
    }
    Ok(())
}

/// The sample indices of batch `step` (in `order`, or 0..n).
pub(super) fn batch_indices(
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

pub(super) fn take_batch(
    x: &[Tensor],
    y: &[Tensor],
    sw: Option<&Tensor>,
    idx: &Tensor,
) -> Result<Batch> {
    let take = |t: &Tensor| ops::gather(t, idx, 0);
    Ok((
        x.iter().map(take).collect::<Result<_>>()?,
        y.iter().map(take).collect::<Result<_>>()?,
        sw.map(take).transpose()?,
    ))
}

pub(super) fn log_pairs(logs: &Logs) -> Vec<(String, f64)> {
    logs.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

/// Per-sample weights from `class_weight`: `w[class]`, the class being `argmax` of one-hot
/// targets or the rounded value of integer ones.
pub(super) fn class_sample_weights(
    y: &Tensor,
    class_weight: &HashMap<usize, f64>,
) -> Result<Tensor> {
    let n = y.shape().first().copied().unwrap_or(0);
    let raw: Vec<f64> = if y.rank() >= 2 && y.shape()[y.rank() - 1] > 1 {
        ops::argmax(y, -1)?.to_f64_vec()
    } else {
        y.to_f64_vec().iter().map(|c| c.round()).collect()
    };
    if raw.len() != n {
        return Err(Error::shape(
            "class_weight",
            "class_weight needs one class per sample (integer labels or one-hot rows)",
            &[y.shape()],
        ));
    }
    let mut w = Vec::with_capacity(n);
    for c in raw {
        if !c.is_finite() || c < 0.0 {
            return Err(Error::invalid(
                "class_weight",
                format!("class_weight needs non-negative integer class labels, got {c}"),
            ));
        }
        w.push(class_weight.get(&(c as usize)).copied().unwrap_or(1.0) as f32);
    }
    Tensor::from_vec(w, &[n])
}

/// Keras's `apply_mask` (losses of an output that carries a mask, e.g. after
/// `Embedding(mask_zero=True)` → `LSTM(return_sequences=True)`): the mask becomes sample weights
/// `mask · size / (Σ mask + 1e-7)` under `sum_over_batch_size` (`scale`), else the mask itself
/// (times `sample_weight`), so the default reduction averages the loss over the real steps only.
/// `None` when the output has no mask.
fn output_mask_weight(
    name: &str,
    mask: Option<&Option<Tensor>>,
    sample_weight: Option<&Tensor>,
    scale: bool,
) -> Result<Option<Tensor>> {
    let Some(Some(mask)) = mask else {
        return Ok(None);
    };
    let m = ops::cast(mask, ferroflow_core::DType::F32)?;
    let m = if scale {
        let valid = ops::reduce_sum(&m, ops::Axes::All, false)?;
        let factor = ops::div(
            &Tensor::scalar_of(ferroflow_core::DType::F32, m.num_elements() as f64),
            &ops::add_scalar(&valid, 1e-7)?,
        )?;
        ops::mul(&m, &factor)?
    } else {
        m
    };
    Ok(Some(match sample_weight {
        None => m,
        Some(w) => {
            let w = ops::cast(w, ferroflow_core::DType::F32)?;
            ops::mul(&crate::losses::align_weight(name, &w, &m)?, &m)?
        }
    }))
}
