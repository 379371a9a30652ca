//! `compile`: the optimizer, losses (one per output, with weights) and metrics of a model.

use ferroflow_core::{Error, Result};

use super::Model;
use crate::backend::Arg;
use crate::losses::Loss;
use crate::metrics::Metric;
use crate::optimizers::Optimizer;

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
    /// Keras's `run_eagerly` (default false): when false, `fit`/`evaluate`/`predict` run their
    /// step as a traced graph (`traced.rs`); when true, op by op.
    pub run_eagerly: bool,
    /// The traced steps, one per batch signature.
    pub(crate) traced: super::traced::TracedSteps,
    /// Whether the outputs carry masks, and the last eager step's masks, for mask-weighted
    /// metrics (`metrics/masked.rs`).
    pub(crate) output_masks: crate::metrics::OutputMaskState,
}

/// What `compile` returns: sets Keras's other `compile` arguments
/// (`model.compile(...)?.run_eagerly(true)`).
#[derive(Debug)]
pub struct CompileOptions<'m> {
    model: &'m mut Model,
}

impl CompileOptions<'_> {
    /// Keras's `compile(run_eagerly=...)`: `true` runs the train/test/predict steps op by op
    /// (easier to debug); `false`, the default (Keras 3's), runs each as a traced graph.
    pub fn run_eagerly(self, on: bool) -> Self {
        if let Some(c) = self.model.compiled.as_mut() {
            c.run_eagerly = on;
        }
        self
    }
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

/// A metric by name or by value, or several (one output's metrics in a per-output list).
pub enum MetricSpec {
    /// Several metrics for one output.
    List(Vec<MetricSpec>),
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

/// One list of names per output (`[[], ["accuracy"]]`), Keras's list of lists.
impl IntoMetrics for Vec<Vec<&str>> {
    fn into_metrics(self) -> Vec<MetricSpec> {
        self.into_iter()
            .map(|names| {
                MetricSpec::List(
                    names
                        .into_iter()
                        .map(|n| MetricSpec::Name(n.to_string()))
                        .collect(),
                )
            })
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
    ) -> Result<CompileOptions<'_>> {
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
        let per_output: Vec<Vec<Box<dyn Metric>>> = if n_out == 1 {
            vec![resolve_metrics(specs)?]
        } else if specs.is_empty() {
            (0..n_out).map(|_| Vec::new()).collect()
        } else if specs.len() == n_out {
            // Keras pairs a list with the outputs element by element.
            specs
                .into_iter()
                .map(|s| resolve_metrics(vec![s]))
                .collect::<Result<_>>()?
        } else {
            return Err(Error::invalid(
                &self.name,
                format!(
                    "compile: for a model with multiple outputs, when providing the metrics argument \
                     as a list, it should have as many entries as the model has outputs \
                     ({n_out}); got {} (use a list of lists, one per output)",
                    specs.len()
                ),
            ));
        };
        self.compiled = Some(Compiled {
            optimizer,
            losses,
            loss_weights: vec![1.0; n_out],
            metrics: per_output,
            output_names: self.output_names(),
            run_eagerly: false,
            traced: Default::default(),
            output_masks: Default::default(),
        });
        Ok(CompileOptions { model: self })
    }

    /// Keras's `model.run_eagerly` (false unless set; false before `compile`).
    pub fn run_eagerly(&self) -> bool {
        self.compiled.as_ref().is_some_and(|c| c.run_eagerly)
    }

    /// `model.run_eagerly = on` (after `compile`, which resets it, as Keras's `compile`).
    pub fn set_run_eagerly(&mut self, on: bool) -> Result<()> {
        self.compiled_mut()?.run_eagerly = on;
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
        // The weights are constants of the traced steps: trace again.
        c.traced = Default::default();
        Ok(())
    }

    /// The compiled state, if `compile` ran (read-only; savers use it for the optimizer).
    pub fn compiled(&self) -> Option<&Compiled> {
        self.compiled.as_ref()
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
}

/// Resolves metric specs (names through `metrics::get`) into metric objects, in order.
fn resolve_metrics(specs: Vec<MetricSpec>) -> Result<Vec<Box<dyn Metric>>> {
    let mut out = Vec::new();
    for s in specs {
        match s {
            MetricSpec::Name(n) => out.push(crate::metrics::get(&n)?),
            MetricSpec::Object(m) => out.push(m),
            MetricSpec::List(l) => out.extend(resolve_metrics(l)?),
        }
    }
    Ok(out)
}
