//! `evaluate` and `predict`: batched inference-mode loops, over in-memory tensors or a
//! `Dataset` (through the same `EpochIterator` as `fit`).

use ferroflow_core::{ops, Error, Result, Tensor};
use ferroflow_data::Dataset;

use super::batches::{Arrays, EpochIterator, Source, Unpacker};
use super::data::IntoTensors;
use super::training::check_data;
use super::Model;
use crate::callbacks::{Callback, Logs};
use crate::utils::Progbar;

/// What `evaluate` or `predict` reads.
enum EvalData {
    Arrays(Vec<Tensor>, Vec<Tensor>),
    Dataset(Dataset),
}

impl Model {
    /// `model.evaluate(x, y)`: a builder; `run` returns `[loss, metrics...]`.
    pub fn evaluate(&mut self, x: impl IntoTensors, y: impl IntoTensors) -> EvaluateArgs<'_> {
        EvaluateArgs::with_data(self, EvalData::Arrays(x.into_tensors(), y.into_tensors()))
    }

    /// `model.evaluate(dataset)`: the same builder over a `Dataset` of `(x, y)` or
    /// `(x, y, sample_weight)` batches (see [`Model::fit_dataset`] for their structure). The
    /// dataset is read to its end, or for `steps` batches; an infinite one needs `steps`.
    pub fn evaluate_dataset(&mut self, dataset: &Dataset) -> EvaluateArgs<'_> {
        EvaluateArgs::with_data(self, EvalData::Dataset(dataset.clone()))
    }

    /// `model.predict(x)`: a builder; `run` returns the predictions (batched, inference mode).
    pub fn predict(&mut self, x: impl IntoTensors) -> PredictArgs<'_> {
        PredictArgs::with_data(self, EvalData::Arrays(x.into_tensors(), Vec::new()))
    }

    /// `model.predict(dataset)`: the same builder over a `Dataset` whose elements are batches
    /// of `x`, or `(x, ...)` tuples whose targets and weights are ignored, as Keras. An infinite
    /// dataset needs `steps`.
    pub fn predict_dataset(&mut self, dataset: &Dataset) -> PredictArgs<'_> {
        PredictArgs::with_data(self, EvalData::Dataset(dataset.clone()))
    }
}

/// The arguments of `model.evaluate`; `run()` returns `[loss, metrics...]` in compile order,
/// `run_dict()` the logs by name.
#[must_use = "evaluate does nothing until .run() is called"]
pub struct EvaluateArgs<'m> {
    model: &'m mut Model,
    data: EvalData,
    batch_size: Option<usize>,
    verbose: u8,
    sample_weight: Option<Tensor>,
    steps: Option<usize>,
    callbacks: Vec<Box<dyn Callback>>,
}

/// Checks the arguments shared by `evaluate` and `predict` and makes the batch source.
fn source(
    model: &mut Model,
    what: &'static str,
    data: EvalData,
    batch_size: Option<usize>,
    sample_weight: Option<Tensor>,
    steps: Option<usize>,
) -> Result<EpochIterator> {
    let name = model.name.clone();
    if batch_size == Some(0) {
        return Err(Error::invalid(
            &name,
            format!("{what}: batch_size must be positive"),
        ));
    }
    let needs_y = what == "evaluate";
    let source = match data {
        EvalData::Arrays(x, y) => {
            check_data(&name, &x, &y, sample_weight.as_ref())?;
            model.ensure_built_for(&x)?;
            model.check_inputs(&x)?;
            Source::Arrays(Arrays {
                x,
                y,
                sw: sample_weight,
                batch_size: batch_size.unwrap_or(32),
                shuffle_seed: None,
            })
        }
        EvalData::Dataset(ds) => {
            if batch_size.is_some() {
                return Err(Error::invalid(
                    &name,
                    format!(
                        "{what}: do not specify batch_size when x is a Dataset: its elements \
                         are already batches"
                    ),
                ));
            }
            if sample_weight.is_some() {
                return Err(Error::invalid(
                    &name,
                    format!(
                        "{what}: the sample_weight argument is not supported when x is a \
                         Dataset (its elements may be (x, y, sample_weight))"
                    ),
                ));
            }
            Source::Dataset(ds, Unpacker::new(model, what, needs_y, None))
        }
    };
    EpochIterator::new(&name, "steps", source, steps)
}

impl<'m> EvaluateArgs<'m> {
    fn with_data(model: &'m mut Model, data: EvalData) -> EvaluateArgs<'m> {
        EvaluateArgs {
            model,
            data,
            batch_size: None,
            verbose: 1,
            sample_weight: None,
            steps: None,
            callbacks: Vec::new(),
        }
    }

    /// Samples per batch (default 32; not for a dataset).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }
    /// 0 silent, 1 progress bar (default), 2 one line.
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// Weights per sample (not for a dataset, whose elements carry them).
    pub fn sample_weight(mut self, w: &Tensor) -> Self {
        self.sample_weight = Some(w.clone());
        self
    }
    /// Evaluate at most this many batches (Keras's `steps`; needed for an infinite dataset).
    pub fn steps(mut self, n: usize) -> Self {
        self.steps = Some(n);
        self
    }
    /// Adds a callback.
    pub fn callback(mut self, cb: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(cb));
        self
    }

    /// Evaluates; the logs by name (`loss`, `accuracy`, ...).
    pub fn run_dict(self) -> Result<Logs> {
        ferroflow_core::kernels::parallel::join_thread_pool();
        let EvaluateArgs {
            model,
            data,
            batch_size,
            verbose,
            sample_weight,
            steps,
            mut callbacks,
        } = self;
        model.compiled_mut()?;
        let mut batches = source(model, "evaluate", data, batch_size, sample_weight, steps)?;
        let mut progbar = Progbar::new(batches.num_steps(), verbose);
        let empty = Logs::new();
        for cb in callbacks.iter_mut() {
            cb.on_test_begin(model, &empty)?;
        }
        let logs = model.run_evaluation(&mut batches, Some(&mut progbar), &mut callbacks, "")?;
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
    data: EvalData,
    batch_size: Option<usize>,
    verbose: u8,
    steps: Option<usize>,
    callbacks: Vec<Box<dyn Callback>>,
}

impl<'m> PredictArgs<'m> {
    fn with_data(model: &'m mut Model, data: EvalData) -> PredictArgs<'m> {
        PredictArgs {
            model,
            data,
            batch_size: None,
            verbose: 1,
            steps: None,
            callbacks: Vec::new(),
        }
    }

    /// Samples per batch (default 32; not for a dataset).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }
    /// 0 silent, 1 progress bar (default).
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// Predict at most this many batches (Keras's `steps`; needed for an infinite dataset).
    pub fn steps(mut self, n: usize) -> Self {
        self.steps = Some(n);
        self
    }
    /// Adds a callback.
    pub fn callback(mut self, cb: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(cb));
        self
    }

    /// Predicts; one tensor per model output.
    pub fn run_all(self) -> Result<Vec<Tensor>> {
        ferroflow_core::kernels::parallel::join_thread_pool();
        let PredictArgs {
            model,
            data,
            batch_size,
            verbose,
            steps,
            mut callbacks,
        } = self;
        let mut batches = source(model, "predict", data, batch_size, None, steps)?;
        let mut progbar = Progbar::new(batches.num_steps(), verbose);
        let empty = Logs::new();
        for cb in callbacks.iter_mut() {
            cb.on_predict_begin(model, &empty)?;
        }
        let mut parts: Vec<Vec<Tensor>> = Vec::new();
        batches.begin_epoch(0)?;
        let mut step = 0;
        while let Some(b) = batches.next_batch()? {
            if batches.is_dataset() {
                model.check_batch(&b.x)?;
            }
            let outs = model.predict_step(&b.x)?;
            if parts.is_empty() {
                parts = vec![Vec::new(); outs.len()];
            }
            for (p, o) in parts.iter_mut().zip(outs) {
                p.push(o);
            }
            for cb in callbacks.iter_mut() {
                cb.on_predict_batch_end(model, step, &empty)?;
            }
            step += 1;
            if progbar.target().is_none_or(|t| step < t) {
                progbar.update(step, &[], false);
            }
        }
        if step == 0 {
            return Err(Error::invalid(
                &model.name,
                "predict: the data gave no batches",
            ));
        }
        let total = progbar.target().unwrap_or(step);
        progbar.set_target(Some(total));
        progbar.update(total, &[], true);
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
