//! `evaluate` and `predict`: batched inference-mode loops.

use ferroflow_core::{ops, Error, Result, Tensor};

use super::data::IntoTensors;
use super::training::{batch_indices, check_data, num_samples};
use super::Model;
use crate::callbacks::{Callback, Logs};
use crate::utils::Progbar;

impl Model {
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
