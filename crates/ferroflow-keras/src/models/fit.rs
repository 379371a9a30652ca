//! `fit`: the training loop over epochs and batches, with validation and callbacks.
//!
//! The life of a `fit` call: split off validation data, then per epoch take the batches from an
//! `EpochIterator` (`batches.rs`) — in-memory tensors in a seeded, shuffled order, or the
//! elements of a `Dataset` — and per batch run the training step (`training.rs`), updating the
//! running loss and metrics that the progress bar and callbacks see. At the epoch's end, the
//! validation data is evaluated and the callbacks get the epoch's logs.

use std::collections::HashMap;

use ferroflow_core::{ops, Error, Result, Tensor};
use ferroflow_data::Dataset;

use super::batches::{Arrays, EpochIterator, Source, Unpacker};
use super::data::IntoTensors;
use super::training::{check_data, class_sample_weights, log_pairs, num_samples};
use super::Model;
use crate::backend::next_seed;
use crate::callbacks::{Callback, History, Logs};
use crate::metrics::Mean;
use crate::utils::Progbar;

impl Model {
    /// `model.fit(x, y)`: a builder with Keras's arguments (`epochs`, `batch_size`, ...); `run`
    /// trains and returns the `History`.
    pub fn fit(&mut self, x: impl IntoTensors, y: impl IntoTensors) -> Fit<'_> {
        Fit::with_data(self, TrainData::Arrays(x.into_tensors(), y.into_tensors()))
    }

    /// `model.fit(dataset)`: the same builder, training on a `ferroflow_data::Dataset` whose
    /// elements are batches `(x, y)` or `(x, y, sample_weight)` (Keras's `fit(x=tf.data.Dataset)`).
    /// `x` is a tensor, a tuple of tensors (one per model input, in order) or a dict keyed by the
    /// model's `Input` names; `y` likewise per output. Each epoch iterates the dataset afresh
    /// (unless `steps_per_epoch` is given: then the pass carries on, as Keras). As Keras,
    /// `validation_split` and `sample_weight` are errors with a dataset (it gives the batches and
    /// weights), `shuffle` is ignored (shuffle the dataset), `class_weight` works; `batch_size` is
    /// an error too (Keras 3 ignores it). An infinite dataset (`repeat()`) needs `steps_per_epoch`.
    ///
    /// ```
    /// use ferroflow_core::Tensor;
    /// use ferroflow_data::Dataset;
    /// use ferroflow_keras::layers::{Dense, Input};
    /// use ferroflow_keras::prelude::*;
    /// let x = Tensor::from_vec((0..16).map(|i| i as f32 / 16.0).collect::<Vec<_>>(), &[8, 2])?;
    /// let y = Tensor::from_vec(vec![1.0f32; 8], &[8, 1])?;
    /// let ds = Dataset::from_tensor_slices((x, y))?.shuffle(8, Some(1), true).batch(4, false);
    /// let mut model = Sequential::new();
    /// model.add(Input::new(&[2]))?;
    /// model.add(Dense::new(1))?;
    /// model.compile("sgd", "mse", ())?;
    /// let history = model.fit_dataset(&ds).epochs(2).verbose(0).run()?;
    /// assert_eq!(history.params["steps"], 2);
    /// let loss = model.evaluate_dataset(&ds).verbose(0).run()?;
    /// assert!(loss[0].is_finite());
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn fit_dataset(&mut self, dataset: &Dataset) -> Fit<'_> {
        Fit::with_data(self, TrainData::Dataset(dataset.clone()))
    }
}

/// What `fit` trains on (or validates with).
enum TrainData {
    Arrays(Vec<Tensor>, Vec<Tensor>),
    Dataset(Dataset),
}

impl<'m> Fit<'m> {
    fn with_data(model: &'m mut Model, data: TrainData) -> Fit<'m> {
        Fit {
            model,
            data,
            batch_size: None,
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
            validation_steps: None,
            strategy: None,
        }
    }
}

/// The arguments of `model.fit`, with Keras's defaults; `run()` trains.
#[must_use = "fit does nothing until .run() is called"]
pub struct Fit<'m> {
    model: &'m mut Model,
    data: TrainData,
    batch_size: Option<usize>,
    epochs: usize,
    verbose: u8,
    callbacks: Vec<Box<dyn Callback>>,
    validation_split: f64,
    validation_data: Option<TrainData>,
    validation_sample_weight: Option<Tensor>,
    shuffle: bool,
    class_weight: Option<HashMap<usize, f64>>,
    sample_weight: Option<Tensor>,
    initial_epoch: usize,
    steps_per_epoch: Option<usize>,
    validation_steps: Option<usize>,
    strategy: Option<std::rc::Rc<dyn crate::distribute::Strategy>>,
}

impl Fit<'_> {
    /// Samples per gradient step (default 32); the last batch may be smaller. Not for a
    /// dataset, whose elements are the batches.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
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
        self.validation_data = Some(TrainData::Arrays(x.into_tensors(), y.into_tensors()));
        self
    }
    /// A validation `Dataset` of `(x, y)` or `(x, y, sample_weight)` batches (Keras's
    /// `validation_data=dataset`; overrides `validation_split`).
    pub fn validation_dataset(mut self, dataset: &Dataset) -> Self {
        self.validation_data = Some(TrainData::Dataset(dataset.clone()));
        self
    }
    /// Batches of validation data per epoch (Keras's `validation_steps`; needed for an
    /// infinite validation dataset, whose pass then carries on from epoch to epoch).
    pub fn validation_steps(mut self, n: usize) -> Self {
        self.validation_steps = Some(n);
        self
    }
    /// Weights of the validation samples given by `validation_data` (Keras's
    /// `validation_data=(x, y, sample_weight)`).
    pub fn validation_sample_weight(mut self, w: &Tensor) -> Self {
        self.validation_sample_weight = Some(w.clone());
        self
    }
    /// Reshuffle the samples each epoch (default true; seeded by the session's seed). Ignored for
    /// a dataset (shuffle the dataset instead), as in Keras.
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
    /// Batches per epoch (Keras's `steps_per_epoch`): at most the number in-memory tensors give;
    /// with a dataset, the pass carries on across epochs (needed for an infinite one).
    pub fn steps_per_epoch(mut self, n: usize) -> Self {
        self.steps_per_epoch = Some(n);
        self
    }

    /// Trains data-parallel with `strategy` (see `crate::distribute`): `batch_size` is the
    /// global batch, each rank trains on its share and the gradients are averaged over ranks.
    /// The same as calling `fit` inside `distribute::scope(strategy)`.
    pub fn strategy<S: crate::distribute::Strategy + Clone + 'static>(mut self, s: &S) -> Self {
        self.strategy = Some(std::rc::Rc::new(s.clone()));
        self
    }

    /// Trains; returns the `History`.
    pub fn run(self) -> Result<History> {
        // The training thread runs a share of every parallel pass (see the function's doc).
        ferroflow_core::kernels::parallel::join_thread_pool();
        let Fit {
            model,
            data,
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
            validation_steps,
            strategy,
        } = self;
        // Data parallelism (distribute/mod.rs): enter the strategy; only the chief prints.
        let _strategy_scope = crate::distribute::begin_fit(strategy);
        let verbose = crate::distribute::chief_verbose(verbose);
        model.compiled_mut()?;
        let name = model.name.clone();
        if batch_size == Some(0) {
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
        let batch_size_or_default = batch_size.unwrap_or(32);
        let (train, val) = match data {
            TrainData::Arrays(x, y) => {
                let (arrays, val) = split_arrays(
                    model,
                    x,
                    y,
                    sample_weight,
                    class_weight,
                    // `validation_data` overrides `validation_split`.
                    if validation_data.is_some() {
                        0.0
                    } else {
                        validation_split
                    },
                    batch_size_or_default,
                    shuffle,
                )?;
                (Source::Arrays(arrays), val)
            }
            TrainData::Dataset(ds) => {
                if validation_split > 0.0 {
                    return Err(Error::invalid(
                        &name,
                        "fit: argument `validation_split` is only supported for tensors; \
                         found a Dataset (pass validation data with validation_dataset)",
                    ));
                }
                if batch_size.is_some() {
                    return Err(Error::invalid(
                        &name,
                        "fit: do not specify batch_size when x is a Dataset: its elements are \
                         already batches",
                    ));
                }
                if sample_weight.is_some() {
                    return Err(Error::invalid(
                        &name,
                        "fit: the sample_weight argument is not supported when x is a Dataset \
                         (its elements may be (x, y, sample_weight))",
                    ));
                }
                let unpacker = Unpacker::new(model, "fit", true, class_weight);
                (Source::Dataset(ds, unpacker), None)
            }
        };
        let mut batches = EpochIterator::new(&name, "steps_per_epoch", train, steps_per_epoch)?;
        // `validation_data` overrides `validation_split`.
        let val = match validation_data {
            Some(TrainData::Arrays(vx, vy)) => {
                check_data(&name, &vx, &vy, validation_sample_weight.as_ref())?;
                Some(Source::Arrays(Arrays {
                    x: vx,
                    y: vy,
                    sw: validation_sample_weight,
                    batch_size: batch_size_or_default,
                    shuffle_seed: None,
                }))
            }
            Some(TrainData::Dataset(vds)) => {
                if validation_sample_weight.is_some() {
                    return Err(Error::invalid(
                        &name,
                        "fit: validation_sample_weight is not supported with a validation \
                         Dataset (its elements may be (x, y, sample_weight))",
                    ));
                }
                Some(Source::Dataset(
                    vds,
                    Unpacker::new(model, "fit (validation data)", true, None),
                ))
            }
            None => val.map(Source::Arrays),
        };
        let mut val = val
            .map(|v| EpochIterator::new(&name, "validation_steps", v, validation_steps))
            .transpose()?;
        let mut history = History::new();
        history.params.insert("epochs".into(), epochs);
        if let Some(steps) = batches.num_steps() {
            history.params.insert("steps".into(), steps);
        }
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
            batches.begin_epoch(epoch)?;
            crate::distribute::begin_epoch();
            let mut progbar = Progbar::new(batches.num_steps(), verbose);
            let mut loss_mean = Mean::new("loss");
            let mut out_losses = model.new_output_loss_means();
            let mut logs = Logs::new();
            let mut step = 0;
            // As Keras: the batch is fetched before `on_train_batch_begin`.
            while let Some(batch) = batches.next_batch()? {
                if batches.is_dataset() {
                    model.check_batch(&batch.x)?;
                }
                for cb in callbacks.iter_mut() {
                    cb.on_train_batch_begin(model, step, &logs)?;
                }
                // This rank's share of the global batch (the batch itself without a strategy).
                let (bx, by, bsw) =
                    crate::distribute::shard_batch(model, batch.x, batch.y, batch.sw)?;
                model.train_step(&bx, &by, bsw.as_ref(), &mut loss_mean, &mut out_losses)?;
                logs = model.collect_logs(&loss_mean, &out_losses, "")?;
                logs = crate::distribute::reduce_step_logs(logs)?;
                for cb in callbacks.iter_mut() {
                    cb.on_train_batch_end(model, step, &logs)?;
                }
                step += 1;
                if progbar.target().is_none_or(|t| step < t) {
                    progbar.update(step, &log_pairs(&logs), false);
                }
                if model.stop_training {
                    break;
                }
            }
            if step == 0 {
                return Err(Error::invalid(
                    &name,
                    format!(
                        "fit: the training data gave no batches in epoch {}",
                        epoch + 1
                    ),
                ));
            }
            if let Some(v) = val.as_mut() {
                // As Keras's fit calls evaluate(callbacks=...): the test hooks run too.
                for cb in callbacks.iter_mut() {
                    cb.on_test_begin(model, &empty)?;
                }
                let val_logs = model.run_evaluation(v, None, &mut callbacks, "val_")?;
                for cb in callbacks.iter_mut() {
                    cb.on_test_end(model, &val_logs)?;
                }
                logs.extend(val_logs);
            }
            // Keras's order: the user's callbacks, then History, then the progress bar (which
            // learns the total of data of unknown size, as Keras's `_finalize_progbar`).
            for cb in callbacks.iter_mut() {
                cb.on_epoch_end(model, epoch, &mut logs)?;
            }
            history.on_epoch_end(model, epoch, &mut logs)?;
            let total = progbar.target().unwrap_or(step);
            progbar.set_target(Some(total));
            progbar.update(total, &log_pairs(&logs), true);
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

/// In-memory training data: checked, split into training and validation parts as Keras (the
/// validation split is the last samples, taken before shuffling, with their sample weights),
/// with `class_weight` turned into sample weights.
#[allow(clippy::too_many_arguments)]
fn split_arrays(
    model: &mut Model,
    x: Vec<Tensor>,
    y: Vec<Tensor>,
    sample_weight: Option<Tensor>,
    class_weight: Option<HashMap<usize, f64>>,
    validation_split: f64,
    batch_size: usize,
    shuffle: bool,
) -> Result<(Arrays, Option<Arrays>)> {
    let name = model.name.clone();
    if class_weight.is_some() && y.len() != 1 {
        return Err(Error::invalid(
            &name,
            "fit: class_weight is only supported for models with a single output",
        ));
    }
    check_data(&name, &x, &y, sample_weight.as_ref())?;
    model.ensure_built_for(&x)?;
    model.check_inputs(&x)?;
    let n_all = num_samples(&x);
    if n_all == 0 {
        return Err(Error::invalid(
            &name,
            "fit: the training data has no samples",
        ));
    }
    let (x, y, sample_weight, val) = if validation_split > 0.0 {
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
        let val = Arrays {
            x: split(&x, n_train, n_all)?,
            y: split(&y, n_train, n_all)?,
            sw: split(&sw, n_train, n_all)?.pop(),
            batch_size,
            shuffle_seed: None,
        };
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
    let sw = match &class_weight {
        Some(cw) => Some(class_sample_weights(&y[0], cw)?),
        None => sample_weight,
    };
    // The seed is drawn whether or not shuffling, so the session's seed stream is the same.
    let seed = next_seed();
    Ok((
        Arrays {
            x,
            y,
            sw,
            batch_size,
            shuffle_seed: shuffle.then_some(seed),
        },
        val,
    ))
}
