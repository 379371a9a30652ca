//! Where `fit`, `evaluate` and `predict` get their batches: in-memory tensors cut into batches
//! (in a fresh, seeded order each epoch when shuffling), or a `ferroflow_data::Dataset` whose
//! elements already are batches; and [`EpochIterator`], Keras's `EpochIterator`, which counts
//! the steps of each epoch over either. The training and test steps never see the difference.

use std::collections::HashMap;

use ferroflow_core::{ops, DType, Error, Result, Tensor};
use ferroflow_data::{Cardinality, Dataset, Element};

use super::training::{batch_indices, check_data, class_sample_weights, num_samples, take_batch};
use super::{Model, Network};
use crate::backend::mix;
use crate::layers::KerasTensor;

/// One batch: the model's inputs and targets in order, and the per-sample weights.
pub(super) struct Batch {
    pub(super) x: Vec<Tensor>,
    pub(super) y: Vec<Tensor>,
    pub(super) sw: Option<Tensor>,
}

/// One pass over the batches.
type BatchIter = Box<dyn Iterator<Item = Result<Batch>>>;

/// In-memory tensors, batched here.
pub(super) struct Arrays {
    pub(super) x: Vec<Tensor>,
    pub(super) y: Vec<Tensor>,
    pub(super) sw: Option<Tensor>,
    pub(super) batch_size: usize,
    /// Shuffle each epoch with this seed (mixed with the epoch number), or keep the order.
    pub(super) shuffle_seed: Option<u64>,
}

/// How a dataset element becomes a [`Batch`] (Keras's `unpack_x_y_sample_weight`, then the
/// tuple or dict of inputs and targets in the model's order).
#[derive(Clone)]
pub(super) struct Unpacker {
    model: String,
    /// `fit`, `evaluate` or `predict`, for messages.
    what: &'static str,
    input_names: Vec<String>,
    output_names: Vec<String>,
    /// Targets are required (`fit`, `evaluate`) or ignored (`predict`).
    needs_y: bool,
    class_weight: Option<HashMap<usize, f64>>,
}

impl Unpacker {
    pub(super) fn new(
        model: &Model,
        what: &'static str,
        needs_y: bool,
        class_weight: Option<HashMap<usize, f64>>,
    ) -> Unpacker {
        let input_names = match &model.net {
            Network::Functional(f) => f.inputs.iter().map(KerasTensor::layer_name).collect(),
            Network::Sequential(_) => Vec::new(),
        };
        Unpacker {
            model: model.name.clone(),
            what,
            input_names,
            output_names: model.output_names(),
            needs_y,
            class_weight,
        }
    }

    fn invalid(&self, msg: impl std::fmt::Display) -> Error {
        Error::invalid(&self.model, format!("{}: {msg}", self.what))
    }

    /// Splits a dataset element into a batch.
    fn unpack(&self, e: &Element) -> Result<Batch> {
        let (x, y, sw) = e.unpack_x_y_sample_weight().map_err(|err| match err {
            Error::InvalidArgument { msg, .. } => self.invalid(msg),
            other => other,
        })?;
        let x = self.tensors(&x, &self.input_names, "inputs")?;
        let (y, sw) = if self.needs_y {
            let Some(y) = y else {
                return Err(self.invalid(
                    "the dataset's elements must be (x, y) or (x, y, sample_weight) tuples; \
                     got x alone (a tensor or a tuple of 1)",
                ));
            };
            let y = self.tensors(&y, &self.output_names, "targets")?;
            let sw = match sw {
                None => None,
                Some(Element::Tensor(t)) => Some(t),
                Some(other) => {
                    return Err(self.invalid(format!(
                        "the sample weights of a dataset element must be one tensor, got a {}",
                        other.kind()
                    )))
                }
            };
            let sw = match (&self.class_weight, sw) {
                (None, sw) => sw,
                (Some(_), Some(_)) => {
                    return Err(self.invalid(
                        "you cannot use class_weight and sample_weight at the same time \
                         (the dataset gives sample weights)",
                    ))
                }
                (Some(cw), None) => {
                    if y.len() != 1 {
                        return Err(self.invalid(
                            "class_weight is only supported for models with a single output",
                        ));
                    }
                    Some(class_sample_weights(&y[0], cw)?)
                }
            };
            (y, sw)
        } else {
            (Vec::new(), None)
        };
        check_data(&self.model, &x, &y, sw.as_ref())?;
        Ok(Batch { x, y, sw })
    }

    /// The tensors of `x` or `y` in the model's order: one tensor, a flat tuple in order, or a
    /// dict keyed by the model's input (output) names, as Keras.
    fn tensors(&self, e: &Element, names: &[String], what: &str) -> Result<Vec<Tensor>> {
        match e {
            Element::Tensor(t) => Ok(vec![t.clone()]),
            Element::Tuple(parts) => parts
                .iter()
                .enumerate()
                .map(|(i, p)| match p {
                    Element::Tensor(t) => Ok(t.clone()),
                    other => Err(self.invalid(format!(
                        "the {what} of a dataset element are a tuple whose part {i} is a {}; \
                         nested structures are not supported",
                        other.kind()
                    ))),
                })
                .collect(),
            Element::Dict(d) => {
                if names.is_empty() && d.len() == 1 {
                    // A Sequential model's single input, whatever its key.
                    if let Some(Element::Tensor(t)) = d.values().next() {
                        return Ok(vec![t.clone()]);
                    }
                }
                let keys = || d.keys().cloned().collect::<Vec<_>>().join(", ");
                if d.len() != names.len() || names.iter().any(|n| !d.contains_key(n)) {
                    return Err(self.invalid(format!(
                        "the {what} of a dataset element are a dict with keys [{}], but model \
                         {:?} expects the keys [{}]",
                        keys(),
                        self.model,
                        names.join(", ")
                    )));
                }
                names
                    .iter()
                    .map(|n| match d.get(n) {
                        Some(Element::Tensor(t)) => Ok(t.clone()),
                        _ => Err(self.invalid(format!(
                            "the {what} entry {n:?} of a dataset element must be a tensor"
                        ))),
                    })
                    .collect()
            }
        }
    }
}

/// What an [`EpochIterator`] reads.
pub(super) enum Source {
    Arrays(Arrays),
    Dataset(Dataset, Unpacker),
}

impl Source {
    /// The number of batches of one pass, if known.
    fn num_batches(&self) -> Option<usize> {
        match self {
            Source::Arrays(a) => Some(num_samples(&a.x).div_ceil(a.batch_size.max(1))),
            Source::Dataset(ds, _) => ds.cardinality(),
        }
    }

    /// A new pass; `epoch` keys the shuffled order of in-memory tensors.
    fn pass(&self, epoch: usize) -> Result<BatchIter> {
        match self {
            Source::Arrays(a) => {
                let n = num_samples(&a.x);
                let order: Option<Vec<i64>> = match a.shuffle_seed {
                    Some(seed) => {
                        let ids = ops::arange(n, DType::I64);
                        Some(
                            ops::random_shuffle(&ids, mix(seed ^ mix(epoch as u64)))?
                                .to_vec::<i64>()?,
                        )
                    }
                    None => None,
                };
                let (x, y, sw, bs) = (a.x.clone(), a.y.clone(), a.sw.clone(), a.batch_size);
                let steps = n.div_ceil(bs.max(1));
                Ok(Box::new((0..steps).map(move |step| {
                    let idx = batch_indices(order.as_deref(), step, bs, n)?;
                    let (x, y, sw) = take_batch(&x, &y, sw.as_ref(), &idx)?;
                    Ok(Batch { x, y, sw })
                })))
            }
            Source::Dataset(ds, unpacker) => {
                let unpacker = unpacker.clone();
                Ok(Box::new(
                    ds.iter().map(move |e| e.and_then(|e| unpacker.unpack(&e))),
                ))
            }
        }
    }
}

/// Keras's text when the data ends before `steps_per_epoch` steps.
pub(super) const RAN_OUT_WARNING: &str = "UserWarning: Your input ran out of data; interrupting \
    training. Make sure that your dataset or generator can generate at least `steps_per_epoch * \
    epochs` batches. You may need to use the `.repeat()` function when building your dataset.";

/// Keras's `EpochIterator`: the batches of each epoch, at most `steps_per_epoch` of them.
///
/// Matched behaviour (checked on Keras 3.15): without `steps_per_epoch` each epoch is one full
/// pass, started afresh (a dataset is iterated again, so `shuffle(.., reshuffle_each_iteration
/// = true)` reshuffles); a dataset of unknown size is counted during the first pass and known
/// afterwards (the progress bar shows `1/Unknown`, then `n/n`). With `steps_per_epoch`, a
/// dataset's pass carries on across epochs (so `repeat()` streams on) and restarts once it has
/// ended; an epoch cut short by the end of the data prints Keras's "ran out of data" warning
/// and the next epoch starts a new pass. In-memory tensors start a new (reshuffled) pass every
/// epoch and `steps_per_epoch` takes their first batches. An infinite dataset without
/// `steps_per_epoch` is an error (Keras would loop forever).
pub(super) struct EpochIterator {
    source: Source,
    steps_per_epoch: Option<usize>,
    num_batches: Option<usize>,
    current: Option<BatchIter>,
    steps_seen: usize,
    epoch_step: usize,
}

impl EpochIterator {
    /// `steps` is `steps_per_epoch` (`validation_steps`, `steps`); `what` names the argument
    /// and the call in errors.
    pub(super) fn new(
        model: &str,
        what: &str,
        source: Source,
        steps: Option<usize>,
    ) -> Result<EpochIterator> {
        if steps == Some(0) {
            return Err(Error::invalid(
                model,
                format!("{what} must be positive, got 0"),
            ));
        }
        if let Source::Dataset(ds, u) = &source {
            if ds.cardinality_kind() == Cardinality::Infinite && steps.is_none() {
                return Err(Error::invalid(
                    model,
                    format!(
                        "{}: the dataset is infinite (repeat() without a count); pass {what} so \
                         that an epoch can end",
                        u.what
                    ),
                ));
            }
        }
        let num_batches = source.num_batches();
        // In-memory tensors: at most one pass per epoch (ferroflow's behaviour before datasets).
        let steps = match (&source, steps, num_batches) {
            (Source::Arrays(_), Some(s), Some(n)) => Some(s.min(n)),
            _ => steps,
        };
        Ok(EpochIterator {
            source,
            steps_per_epoch: steps,
            num_batches,
            current: None,
            steps_seen: 0,
            epoch_step: 0,
        })
    }

    /// Whether the batches come from a dataset (checked one by one against the model).
    pub(super) fn is_dataset(&self) -> bool {
        matches!(self.source, Source::Dataset(..))
    }

    /// The steps of an epoch, if known (Keras's `num_batches`: `steps_per_epoch`, else the
    /// batches of a pass).
    pub(super) fn num_steps(&self) -> Option<usize> {
        self.steps_per_epoch.or(self.num_batches)
    }

    /// Starts epoch `epoch`.
    pub(super) fn begin_epoch(&mut self, epoch: usize) -> Result<()> {
        let carry_on = self.steps_per_epoch.is_some()
            && self.is_dataset()
            && self.num_batches.is_none_or(|n| self.steps_seen < n);
        if self.current.is_none() || !carry_on {
            self.current = Some(self.source.pass(epoch)?);
            self.steps_seen = 0;
        }
        self.epoch_step = 0;
        Ok(())
    }

    /// The next batch of the epoch, or `None` when the epoch is over.
    pub(super) fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.num_steps().is_some_and(|s| self.epoch_step >= s) {
            return Ok(None);
        }
        if self.num_batches.is_some_and(|n| self.steps_seen >= n) {
            // steps_per_epoch asks for more batches than a pass has.
            self.ran_out();
            return Ok(None);
        }
        let Some(it) = self.current.as_mut() else {
            return Ok(None);
        };
        match it.next() {
            Some(Ok(b)) => {
                self.steps_seen += 1;
                self.epoch_step += 1;
                Ok(Some(b))
            }
            Some(Err(e)) => Err(e),
            None => {
                if self.num_batches.is_none() {
                    self.num_batches = Some(self.steps_seen);
                }
                self.ran_out();
                Ok(None)
            }
        }
    }

    /// The data ended inside an epoch: warn when `steps_per_epoch` asked for more (Keras's
    /// warning), and start a new pass next epoch.
    fn ran_out(&mut self) {
        if self.steps_per_epoch.is_some() {
            eprintln!("{RAN_OUT_WARNING}");
        }
        self.current = None;
    }
}
