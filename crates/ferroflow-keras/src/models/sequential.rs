//! `keras.Sequential`: a plain stack of layers, each with one input and one output.

use std::ops::{Deref, DerefMut};

use ferroflow_core::{DType, Error, Result, Tensor};

use super::{Model, Network};
use crate::backend::{unique_name, with_batch, Shape};
use crate::layers::{KerasTensor, LayerHandle};

/// The layers of a `Sequential` and, once the input shape is known, each layer's output shape.
pub(crate) struct SequentialNet {
    pub(crate) layers: Vec<LayerHandle>,
    /// The input's batch shape (`None` batch), from an `Input`, a first layer's `input_shape`,
    /// or the first batch seen.
    pub(crate) input_shape: Option<Shape>,
    /// The input's dtype (float32 unless an `Input` said otherwise).
    pub(crate) input_dtype: DType,
    /// Each layer's output shape, filled as layers are built.
    pub(crate) output_shapes: Vec<Shape>,
}

impl SequentialNet {
    /// Builds every unbuilt layer from the known input shape, recording output shapes.
    fn build_from(&mut self, model: &str) -> Result<()> {
        let Some(mut shape) = self.input_shape.clone() else {
            return Ok(());
        };
        self.output_shapes.clear();
        for layer in &self.layers {
            let out = layer.compute_output_shape(std::slice::from_ref(&shape))?;
            if out.len() != 1 {
                return Err(Error::invalid(
                    model,
                    format!(
                        "all layers in a Sequential model should have a single output; layer {:?} has {}",
                        layer.name(),
                        out.len()
                    ),
                ));
            }
            shape = out.into_iter().next().unwrap_or_default();
            self.output_shapes.push(shape.clone());
        }
        Ok(())
    }

    pub(crate) fn call(
        &self,
        model: &str,
        inputs: &[Tensor],
        training: bool,
    ) -> Result<Vec<Tensor>> {
        Ok(self.call_masked(model, inputs, training)?.0)
    }

    /// The forward pass and the output's mask (Keras's mask propagation).
    pub(crate) fn call_masked(
        &self,
        model: &str,
        inputs: &[Tensor],
        training: bool,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        let [x] = inputs else {
            return Err(Error::invalid(
                model,
                format!("a Sequential model takes one input, got {}", inputs.len()),
            ));
        };
        let mut x = x.clone();
        // Keras's mask propagation: each layer gets the previous layer's output mask.
        let mut mask: Option<Tensor> = None;
        for layer in &self.layers {
            let (mut out, m) = layer.call_masked(std::slice::from_ref(&x), &[mask], training)?;
            if out.len() != 1 {
                return Err(Error::invalid(
                    model,
                    format!(
                        "all layers in a Sequential model should have a single output; layer {:?} returned {}",
                        layer.name(),
                        out.len()
                    ),
                ));
            }
            x = out.remove(0);
            mask = m;
        }
        Ok((vec![x], vec![mask]))
    }
}

/// `keras.Sequential`: layers applied one after the other. It is a [`Model`] (through `Deref`),
/// so `compile`, `fit`, `summary` and the rest apply directly.
///
/// ```
/// use ferroflow_keras::prelude::*;
/// use ferroflow_keras::layers::{Dense, Input};
/// let mut model = Sequential::new();
/// model.add(Input::new(&[784]))?;
/// model.add(Dense::new(64).activation("relu"))?;
/// model.add(Dense::new(10).activation("softmax"))?;
/// assert_eq!(model.count_params(), 784 * 64 + 64 + 64 * 10 + 10);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Sequential(Model);

impl Sequential {
    /// An empty model named `sequential` (then `sequential_1`, ...).
    pub fn new() -> Sequential {
        Sequential(Model {
            name: unique_name("sequential"),
            net: Network::Sequential(SequentialNet {
                layers: Vec::new(),
                input_shape: None,
                input_dtype: DType::F32,
                output_shapes: Vec::new(),
            }),
            compiled: None,
            stop_training: false,
        })
    }

    /// `Sequential([layer, ...])` from handles or items (an `Input` first, then layers). The
    /// [`sequential!`](crate::sequential) macro spells it the way Keras does.
    pub fn from_layers(layers: Vec<SequentialItem>) -> Result<Sequential> {
        let mut m = Sequential::new();
        for l in layers {
            m.add(l)?;
        }
        Ok(m)
    }

    /// The same model, renamed.
    pub fn named(mut self, name: &str) -> Self {
        self.0.name = name.to_string();
        self
    }

    fn net(&mut self) -> &mut SequentialNet {
        match &mut self.0.net {
            Network::Sequential(s) => s,
            Network::Functional(_) => unreachable!("a Sequential always holds a SequentialNet"),
        }
    }

    /// `model.add(layer)`: appends a layer, or sets the input with an `Input`. When the input
    /// shape is known (an `Input` or a first layer's `input_shape`), the layer is built at once,
    /// as Keras does, so `summary()` works before training.
    pub fn add(&mut self, layer: impl Into<SequentialItem>) -> Result<()> {
        let name = self.0.name.clone();
        let net = self.net();
        match layer.into() {
            SequentialItem::Input(shape, dtype) => {
                net.input_dtype = dtype;
                if !net.layers.is_empty() {
                    return Err(Error::invalid(
                        &name,
                        "an Input can only be the first entry of a Sequential model",
                    ));
                }
                net.input_shape = Some(shape);
            }
            SequentialItem::Layer(layer) => {
                if net.layers.is_empty() && net.input_shape.is_none() {
                    if let Some(s) = layer.lock().base().input_shape.clone() {
                        net.input_shape = Some(with_batch(&s));
                    }
                }
                if net.layers.iter().any(|l| l.name() == layer.name()) {
                    return Err(Error::invalid(
                        &name,
                        format!(
                            "all layers added to a Sequential model should have unique names; {:?} is already there",
                            layer.name()
                        ),
                    ));
                }
                net.layers.push(layer);
            }
        }
        net.build_from(&name)
    }

    /// `model.pop()`: removes the last layer.
    pub fn pop(&mut self) -> Option<LayerHandle> {
        let name = self.0.name.clone();
        let net = self.net();
        let l = net.layers.pop();
        net.output_shapes.clear();
        let _ = net.build_from(&name);
        l
    }

    /// Builds the model for an input shape without the batch dimension (Keras's
    /// `model.build((None, ...))`).
    pub fn build(&mut self, input_shape: &[usize]) -> Result<()> {
        let name = self.0.name.clone();
        let net = self.net();
        net.input_shape = Some(with_batch(input_shape));
        net.build_from(&name)
    }

    /// The model itself (also reachable through `Deref`).
    pub fn into_model(self) -> Model {
        self.0
    }
}

impl Model {
    /// For a `Sequential` without a declared input: builds it from the first batch's shape.
    pub(crate) fn ensure_built_for(&mut self, inputs: &[Tensor]) -> Result<()> {
        let name = self.name.clone();
        if let Network::Sequential(net) = &mut self.net {
            if net.input_shape.is_none() || net.output_shapes.len() != net.layers.len() {
                if let [x] = inputs {
                    if net.input_shape.is_none() {
                        net.input_shape = Some(crate::backend::batch_shape(x.shape()));
                    }
                    net.build_from(&name)?;
                }
            }
        }
        Ok(())
    }
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential::new()
    }
}

impl Deref for Sequential {
    type Target = Model;
    fn deref(&self) -> &Model {
        &self.0
    }
}

impl DerefMut for Sequential {
    fn deref_mut(&mut self) -> &mut Model {
        &mut self.0
    }
}

impl From<Sequential> for Model {
    fn from(s: Sequential) -> Model {
        s.0
    }
}

/// What `Sequential::add` accepts: a layer, or an `Input` fixing the input shape.
pub enum SequentialItem {
    /// A layer.
    Layer(LayerHandle),
    /// The input's batch shape and dtype.
    Input(Shape, DType),
}

impl<L: crate::layers::Layer> From<L> for SequentialItem {
    fn from(l: L) -> Self {
        SequentialItem::Layer(LayerHandle::new(l))
    }
}

impl From<LayerHandle> for SequentialItem {
    fn from(l: LayerHandle) -> Self {
        SequentialItem::Layer(l)
    }
}

impl From<KerasTensor> for SequentialItem {
    fn from(t: KerasTensor) -> Self {
        SequentialItem::Input(t.shape().clone(), t.dtype())
    }
}
