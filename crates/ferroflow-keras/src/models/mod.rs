//! `keras.models`: `Sequential` and the functional `Model`, with Keras's `compile` / `fit` /
//! `evaluate` / `predict`.
//!
//! ```
//! use ferroflow_keras::prelude::*;
//! use ferroflow_keras::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
//!
//! let mut model = Sequential::new();
//! model.add(Conv2D::new(32, (3, 3)).activation("relu").input_shape(&[28, 28, 1]))?;
//! model.add(MaxPooling2D::new((2, 2)))?;
//! model.add(Conv2D::new(64, (3, 3)).activation("relu"))?;
//! model.add(MaxPooling2D::new((2, 2)))?;
//! model.add(Flatten::new())?;
//! model.add(Dense::new(128).activation("relu"))?;
//! model.add(Dense::new(10).activation("softmax"))?;
//! model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])?;
//! assert_eq!(model.count_params(), 225_034);
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

mod batches;
mod compile;
mod data;
mod evaluate;
mod fit;
mod functional;
mod saving;
mod sequential;
mod structure;
mod summary;
mod traced;
mod traced_update;
mod training;

pub use compile::{CompileOptions, Compiled, IntoLosses, IntoMetrics, MetricSpec};
pub use data::IntoTensors;
pub use evaluate::{EvaluateArgs, PredictArgs};
pub use fit::Fit;
pub use functional::FunctionalNet;
pub(crate) use saving::check_weights_path;
pub use saving::WEIGHTS_EXTENSIONS;
pub use sequential::{Sequential, SequentialItem};
pub use structure::{ModelStructure, NodeInfo, TensorRef};

use std::collections::HashSet;

use ferroflow_core::{ops, DType, Error, Result, Tensor, TensorId, Variable};

use crate::backend::{fmt_shape, unique_name, Shape};
use crate::layers::{KerasTensor, LayerHandle, SymbolicInputs};

/// How a model computes: a stack of layers, or a graph of layer calls.
pub(crate) enum Network {
    Sequential(sequential::SequentialNet),
    Functional(FunctionalNet),
}

/// A Keras model: layers, a forward pass, and (once compiled) training.
///
/// Build one with [`Sequential`] or from symbolic tensors with [`Model::new`] (the functional
/// API); `compile` it, then `fit`, `evaluate` and `predict`.
pub struct Model {
    pub(crate) name: String,
    pub(crate) net: Network,
    pub(crate) compiled: Option<Compiled>,
    /// Set (by a callback such as `EarlyStopping`) to end `fit` after the current epoch.
    pub stop_training: bool,
}

impl Model {
    /// The functional API's `keras.Model(inputs, outputs)`: a model of every layer call between
    /// `inputs` and `outputs`. Inputs that the outputs need but that are not listed are an error
    /// ("graph disconnected").
    ///
    /// ```
    /// use ferroflow_keras::prelude::*;
    /// use ferroflow_keras::layers::{Concatenate, Dense, Input};
    /// let a = Input::named(&[16], "a_in");
    /// let b = Input::named(&[16], "b_in");
    /// let shared = LayerHandle::new(Dense::new(32).activation("relu"));
    /// let (xa, xb) = (shared.apply(&a)?, shared.apply(&b)?);
    /// let merged = Concatenate::new().apply([&xa, &xb])?;
    /// let out1 = Dense::new(1).named("score").apply(&merged)?;
    /// let out2 = Dense::new(3).activation("softmax").named("class").apply(&merged)?;
    /// let model = Model::new([&a, &b], [&out1, &out2])?;
    /// assert_eq!(model.count_params(), 16 * 32 + 32 + 64 + 1 + 64 * 3 + 3);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn new(inputs: impl SymbolicInputs, outputs: impl SymbolicInputs) -> Result<Model> {
        let net = FunctionalNet::new(inputs.to_symbolic(), outputs.to_symbolic())?;
        Ok(Model {
            name: unique_name("functional"),
            net: Network::Functional(net),
            compiled: None,
            stop_training: false,
        })
    }

    /// The model's name (`sequential`, `functional_1`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the model.
    pub fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }

    /// The same model, renamed (Keras's `name=` argument).
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The layers, in order (a functional model lists its `InputLayer`s first).
    pub fn layers(&self) -> Vec<LayerHandle> {
        match &self.net {
            Network::Sequential(s) => s.layers.clone(),
            Network::Functional(f) => f.layers(),
        }
    }

    /// `model.get_layer(name)`.
    pub fn get_layer(&self, name: &str) -> Result<LayerHandle> {
        self.layers()
            .into_iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| {
                Error::invalid(
                    &self.name,
                    format!(
                        "no such layer: {name:?}; the model has {}",
                        self.layers()
                            .iter()
                            .map(|l| l.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }

    /// Whether every layer has its weights.
    pub fn built(&self) -> bool {
        self.layers().iter().all(|l| l.lock().base().built)
    }

    /// All weights, layer by layer (a shared layer's once), in Keras's `model.weights` order.
    pub fn weights(&self) -> Vec<Variable> {
        self.collect_weights(|l| l.weights())
    }

    /// The weights that training updates.
    pub fn trainable_weights(&self) -> Vec<Variable> {
        self.collect_weights(|l| l.trainable_weights())
    }

    /// The weights that training does not update.
    pub fn non_trainable_weights(&self) -> Vec<Variable> {
        self.collect_weights(|l| l.non_trainable_weights())
    }

    fn collect_weights(
        &self,
        f: impl Fn(&dyn crate::layers::Layer) -> Vec<Variable>,
    ) -> Vec<Variable> {
        let mut seen: HashSet<TensorId> = HashSet::new();
        let mut out = Vec::new();
        for l in self.layers() {
            for v in f(l.lock().as_ref()) {
                if seen.insert(v.id()) {
                    out.push(v);
                }
            }
        }
        out
    }

    /// The values of all weights, in `weights()` order.
    pub fn get_weights(&self) -> Vec<Tensor> {
        self.weights().iter().map(|v| v.value()).collect()
    }

    /// Sets every weight, in `weights()` order; count and shapes must match.
    pub fn set_weights(&self, values: &[Tensor]) -> Result<()> {
        let weights = self.weights();
        if weights.len() != values.len() {
            return Err(Error::invalid(
                &self.name,
                format!(
                    "set_weights: the model has {} weights, got {} values",
                    weights.len(),
                    values.len()
                ),
            ));
        }
        for (w, v) in weights.iter().zip(values) {
            if w.shape() != v.shape() {
                return Err(Error::shape(
                    &self.name,
                    format!("set_weights: weight {:?} has another shape", w.name()),
                    &[&w.shape(), v.shape()],
                ));
            }
            w.assign(&ops::cast(v, w.dtype())?)?;
        }
        Ok(())
    }

    /// The number of scalars in all weights.
    pub fn count_params(&self) -> usize {
        self.weights()
            .iter()
            .map(|v| v.shape().iter().product::<usize>())
            .sum()
    }

    /// The penalties of every weight regularizer (Keras's `model.losses`).
    pub fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        // `layers()` lists each layer once, shared layers included.
        let mut out = Vec::new();
        for l in self.layers() {
            out.extend(l.lock().regularization_losses()?);
        }
        Ok(out)
    }

    /// The model's input shapes (batch dimension `None`), if known.
    pub fn input_shapes(&self) -> Option<Vec<Shape>> {
        match &self.net {
            Network::Sequential(s) => s.input_shape.clone().map(|s| vec![s]),
            Network::Functional(f) => Some(f.inputs.iter().map(|t| t.shape().clone()).collect()),
        }
    }

    /// How many outputs the model has.
    pub fn num_outputs(&self) -> usize {
        match &self.net {
            Network::Sequential(_) => 1,
            Network::Functional(f) => f.outputs.len(),
        }
    }

    /// The names of the layers producing the outputs (used to name per-output losses and metrics).
    pub fn output_names(&self) -> Vec<String> {
        match &self.net {
            Network::Sequential(s) => s.layers.last().map(|l| vec![l.name()]).unwrap_or_default(),
            Network::Functional(f) => f.outputs.iter().map(KerasTensor::layer_name).collect(),
        }
    }

    /// The forward pass (Keras's `model(x, training=...)`): one tensor per model input, one per
    /// output. Input shapes are checked against the model's, naming both.
    /// Inputs whose dtype differs from a float input's dtype are cast to it first (Keras converts
    /// float64 or uint8 arrays to the model's float32).
    pub fn call(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let inputs = self.cast_inputs(inputs)?;
        match &self.net {
            Network::Sequential(s) => s.call(&self.name, &inputs, training),
            Network::Functional(f) => f.call(&self.name, &inputs, training),
        }
    }

    /// The forward pass and each output's mask (Keras's `_keras_mask` on the outputs, e.g. from
    /// an `Embedding(mask_zero=True)` followed by `LSTM(return_sequences=True)`); `None` where an
    /// output carries no mask. `fit`/`evaluate` weight the losses and the mean metrics by it, as
    /// Keras does (`models/training.rs`, `metrics/masked.rs`).
    pub fn call_with_masks(
        &self,
        inputs: &[Tensor],
        training: bool,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        let inputs = self.cast_inputs(inputs)?;
        match &self.net {
            Network::Sequential(s) => s.call_masked(&self.name, &inputs, training),
            Network::Functional(f) => f.call_masked(&self.name, &inputs, training),
        }
    }

    /// The dtype each input is expected in (float32 unless an `Input` says otherwise).
    pub fn input_dtypes(&self) -> Vec<DType> {
        match &self.net {
            Network::Sequential(s) => vec![s.input_dtype],
            Network::Functional(f) => f.inputs.iter().map(KerasTensor::dtype).collect(),
        }
    }

    /// Casts inputs to float input dtypes (integer inputs, e.g. for an `Embedding`, are left).
    fn cast_inputs(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let dtypes = self.input_dtypes();
        inputs
            .iter()
            .enumerate()
            .map(|(i, x)| match dtypes.get(i) {
                Some(&d) if d.is_float() && x.dtype() != d => ops::cast(x, d),
                _ => Ok(x.clone()),
            })
            .collect()
    }

    /// `model.predict_on_batch(x)`: the inference-mode forward pass of one batch.
    pub fn predict_on_batch(&self, x: impl IntoTensors) -> Result<Vec<Tensor>> {
        self.call(&x.into_tensors(), false)
    }

    pub(crate) fn check_inputs(&self, inputs: &[Tensor]) -> Result<()> {
        let Some(expected) = self.input_shapes() else {
            return Ok(());
        };
        if expected.len() != inputs.len() {
            return Err(Error::invalid(
                &self.name,
                format!(
                    "model {:?} expects {} input(s), but it received {}",
                    self.name,
                    expected.len(),
                    inputs.len()
                ),
            ));
        }
        for (i, (spec, x)) in expected.iter().zip(inputs).enumerate() {
            let ok = spec.len() == x.rank()
                && spec
                    .iter()
                    .zip(x.shape())
                    .all(|(e, &d)| e.is_none_or(|e| e == d));
            if !ok {
                return Err(Error::Shape {
                    op: self.name.clone(),
                    msg: format!(
                        "input {i} of model {:?} is incompatible with the model: expected shape={}, found shape={}",
                        self.name,
                        fmt_shape(spec),
                        ferroflow_core::error::fmt_shape(x.shape())
                    ),
                    shapes: vec![fmt_shape(spec), ferroflow_core::error::fmt_shape(x.shape())],
                });
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<Model name={} layers={}>",
            self.name,
            self.layers().len()
        )
    }
}
