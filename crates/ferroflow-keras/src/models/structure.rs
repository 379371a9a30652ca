//! A read-only view of a model's structure, for serializers (the `.keras` format's
//! `config.json` in `ferroflow-io`): a `Sequential`'s input and layers, or a functional model's
//! layer calls with Keras's `keras_history` triples.

use ferroflow_core::DType;

use super::{Model, Network};
use crate::backend::Shape;
use crate::layers::{KerasTensor, LayerHandle};

/// A tensor of a functional model, as Keras's `keras_history` names it:
/// `[layer_name, node_index, tensor_index]`, with its shape and dtype.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    /// The layer that produced it.
    pub layer: String,
    /// Which call of that layer (0 for inputs).
    pub node_index: usize,
    /// Which output of that call.
    pub tensor_index: usize,
    /// Its shape (batch dimension `None`).
    pub shape: Shape,
    /// Its dtype.
    pub dtype: DType,
}

impl TensorRef {
    fn of(t: &KerasTensor) -> TensorRef {
        TensorRef {
            layer: t.node.layer.name(),
            node_index: if t.node.is_input() {
                0
            } else {
                t.node.node_index
            },
            tensor_index: t.index,
            shape: t.shape.clone(),
            dtype: t.dtype,
        }
    }
}

/// One call of a layer in a functional model (Keras's inbound node).
#[derive(Clone)]
pub struct NodeInfo {
    /// The layer called.
    pub layer: LayerHandle,
    /// Which call of the layer this is.
    pub node_index: usize,
    /// Its inputs.
    pub inputs: Vec<TensorRef>,
}

/// A model's structure.
#[derive(Clone)]
pub enum ModelStructure {
    /// A `Sequential`: its input (batch shape, dtype) if known, and its layers.
    Sequential {
        /// The input's batch shape, if known.
        input_shape: Option<Shape>,
        /// The input's dtype.
        input_dtype: DType,
        /// The layers in order.
        layers: Vec<LayerHandle>,
    },
    /// A functional model.
    Functional {
        /// Its input tensors (each from an `InputLayer`).
        inputs: Vec<TensorRef>,
        /// Its output tensors.
        outputs: Vec<TensorRef>,
        /// Every layer call in topological order (inputs excluded).
        nodes: Vec<NodeInfo>,
    },
}

impl Model {
    /// The model's structure (for serializers).
    pub fn structure(&self) -> ModelStructure {
        match &self.net {
            Network::Sequential(s) => ModelStructure::Sequential {
                input_shape: s.input_shape.clone(),
                input_dtype: s.input_dtype,
                layers: s.layers.clone(),
            },
            Network::Functional(f) => ModelStructure::Functional {
                inputs: f.inputs.iter().map(TensorRef::of).collect(),
                outputs: f.outputs.iter().map(TensorRef::of).collect(),
                nodes: f
                    .nodes
                    .iter()
                    .map(|n| NodeInfo {
                        layer: n.layer.clone(),
                        node_index: n.node_index,
                        inputs: n.inputs.iter().map(TensorRef::of).collect(),
                    })
                    .collect(),
            },
        }
    }
}
