//! `fit`: the training loop over epochs and batches, with validation and callbacks.
//!
//! The life of a `fit` call: split off validation data, then per epoch shuffle the sample order
//! (seeded), and per batch run the training step (`training.rs`), updating the running loss and
//! metrics that the progress bar and callbacks see. At the epoch's end, the validation data is
//! evaluated and the callbacks get the epoch's logs.

use std::collections::HashMap;

use ferroflow_core::{ops, DType, Error, Result, Tensor};

use super::data::IntoTensors;
use super::training::{
    batch_indices, check_data, class_sample_weights, log_pairs, num_samples, take_batch,
};
use super::Model;
use crate::backend::{mix, next_seed};
use crate::callbacks::{Callback, History, Logs};
use crate::metrics::Mean;
use crate::utils::Progbar;

impl Model {
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
            validation_sample_weight: None,
            shuffle: true,
            class_weight: None,
            sample_weight: None,
            initial_epoch: 0,
            steps_per_epoch: None,
        }
    }
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
    validation_sample_weight: Option<Tensor>,
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
    /// Weights of the validation samples given by `validation_data` (Keras's
    /// `validation_data=(x, y, sample_weight)`).
    pub fn validation_sample_weight(mut self, w: &Tensor) -> Self {
        self.validation_sample_weight = Some(w.clone());
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
            validation_sample_weight,
            shuffle,
            class_weight,
            sample_weight,
            initial_epoch,
            steps_per_epoch,
        } = self;
        model.compiled_mut()?;
        let name = model.name.clone();
        if batch_size == 0 {
            return Err(Error::invalid(&name, "fit: batch_size must be positive"));
        }
        if !(0.0..1.0).contains(&validation_split) {
            return Err(Error::invalid(
                &name,
                format!("fit: validation_split must be in [0, 1), got {validation_split}"),
            ));
        }
        if class_weight.is_some() && sample_weight.is_some() {
            return Err(Error::invalid(
                &name,
                "fit: you cannot use class_weight and sample_weight at the same time",
            ));
        }
        if class_weight.is_some() && y.len() != 1 {
            return Err(Error::invalid(
                &name,
                "fit: class_weight is only supported for models with a single output",
            ));
        }
        check_data(&name, &x, &y, sample_weight.as_ref())?;
        model.ensure_built_for(&x)?;
        model.check_inputs(&x)?;
        // Keras takes the validation split from the end, before shuffling, together with the
        // sample weights.
        let n_all = num_samples(&x);
        if n_all == 0 {
            return Err(Error::invalid(
                &name,
                "fit: the training data has no samples",
            ));
        }
        let (x, y, sample_weight, val) = if let Some((vx, vy)) = validation_data {
            check_data(&name, &vx, &vy, validation_sample_weight.as_ref())?;
            (
                x,
                y,
                sample_weight,
                Some((vx, vy, validation_sample_weight)),
            )
        } else if validation_split > 0.0 {
            let n_train = ((n_all as f64) * (1.0 - validation_split)).floor() as usize;
            if n_train == 0 || n_train == n_all {
                return Err(Error::invalid(
                    &name,
                    format!(
                        "fit: training data contains {n_all} samples, which is not sufficient to \
                         split it into a validation and training set as specified by \
                         validation_split={validation_split}"
                    ),
                ));
            }
            let split = |ts: &[Tensor], a: usize, b: usize| -> Result<Vec<Tensor>> {
                let idx = Tensor::from_vec((a as i64..b as i64).collect::<Vec<_>>(), &[b - a])?;
                ts.iter().map(|t| ops::gather(t, &idx, 0)).collect()
            };
            let sw: Vec<Tensor> = sample_weight.into_iter().collect();
            let val = (
                split(&x, n_train, n_all)?,
                split(&y, n_train, n_all)?,
                split(&sw, n_train, n_all)?.pop(),
            );
            (
                split(&x, 0, n_train)?,
                split(&y, 0, n_train)?,
                split(&sw, 0, n_train)?.pop(),
                Some(val),
            )
        } else {
            (x, y, sample_weight, None)
        };
        // class_weight weights the training samples only.
        let sample_weight = match &class_weight {
            Some(cw) => Some(class_sample_weights(&y[0], cw)?),
            None => sample_weight,
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
        for cb in callbacks.iter_mut() {
            cb.on_train_begin(model, &empty)?;
        }
        history.on_train_begin(model, &empty)?;
        let mut last_logs = Logs::new();
        for epoch in initial_epoch..epochs {
            model.reset_metrics()?;
            for cb in callbacks.iter_mut() {
                cb.on_epoch_begin(model, epoch, &empty)?;
            }
            if verbose != 0 && epochs > 1 {
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
            if let Some((vx, vy, vw)) = &val {
                // As Keras's fit calls evaluate(callbacks=...): the test hooks run too.
                for cb in callbacks.iter_mut() {
                    cb.on_test_begin(model, &empty)?;
                }
                let val_logs = model.run_evaluation(
                    vx,
                    vy,
                    vw.as_ref(),
                    batch_size,
                    None,
                    &mut callbacks,
                    "val_",
                )?;
                for cb in callbacks.iter_mut() {
                    cb.on_test_end(model, &val_logs)?;
                }
                logs.extend(val_logs);
            }
            // Keras's order: the user's callbacks, then History, then the progress bar.
            for cb in callbacks.iter_mut() {
                cb.on_epoch_end(model, epoch, &mut logs)?;
            }
            history.on_epoch_end(model, epoch, &mut logs)?;
            progbar.update(steps, &log_pairs(&logs), true);
            last_logs = logs;
            if model.stop_training {
                break;
            }
        }
        for cb in callbacks.iter_mut() {
            cb.on_train_end(model, &last_logs)?;
        }
        // FERROFLOW_PROFILE=1: the op profile so far (Rust prints nothing at process exit).
        if ferroflow_core::profiler::env_enabled() {
            ferroflow_core::profiler::print_report();
        }
        Ok(history)
    }
}
