//! `keras.Input`, `InputLayer` and the symbolic `KerasTensor` of the functional API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ferroflow_core::{DType, Error, Result, Tensor};

use super::layer::{Layer, LayerBase, LayerHandle};
use crate::backend::{fmt_shape, with_batch, Shape};

/// One call of a layer on symbolic tensors: the layer, its inputs, and how many outputs it made.
pub struct Node {
    pub(crate) id: usize,
    pub(crate) layer: LayerHandle,
    pub(crate) inputs: Vec<KerasTensor>,
    /// For an `Input` node: nothing; otherwise the index of this call among the layer's calls
    /// (Keras's node index, shown as `layer[node][tensor]` in summaries).
    pub(crate) node_index: usize,
    /// The shapes of the call's outputs.
    pub(crate) output_shapes: Vec<Shape>,
}

static NEXT_NODE: AtomicUsize = AtomicUsize::new(0);

impl Node {
    pub(crate) fn new(
        layer: LayerHandle,
        inputs: Vec<KerasTensor>,
        node_index: usize,
        output_shapes: Vec<Shape>,
    ) -> Arc<Node> {
        Arc::new(Node {
            id: NEXT_NODE.fetch_add(1, Ordering::Relaxed),
            layer,
            inputs,
            node_index,
            output_shapes,
        })
    }

    /// Whether this node is a model input.
    pub fn is_input(&self) -> bool {
        self.inputs.is_empty()
    }
}

/// A symbolic tensor: the shape (batch dimension `None`) and dtype of a value a model will
/// compute, and the layer call that produces it. Calling a layer on it (`layer.apply(&x)`)
/// builds the functional model's graph.
#[derive(Clone)]
pub struct KerasTensor {
    pub(crate) shape: Shape,
    pub(crate) dtype: DType,
    pub(crate) node: Arc<Node>,
    pub(crate) index: usize,
}

impl KerasTensor {
    /// The shape, `None` for unknown dimensions.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The name of the layer that produces it.
    pub fn layer_name(&self) -> String {
        self.node.layer.name()
    }
}

impl std::fmt::Debug for KerasTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<KerasTensor shape={}, dtype={}, name={}>",
            fmt_shape(&self.shape),
            self.dtype.name(),
            self.layer_name()
        )
    }
}

/// `keras.layers.InputLayer`: the model input a `KerasTensor` starts from. It has no weights and
/// passes its input through.
pub struct InputLayer {
    base: LayerBase,
    /// The input's shape, batch dimension first (`None` = unknown).
    pub batch_shape: Shape,
    /// The input's dtype.
    pub dtype: DType,
}

impl InputLayer {
    /// An input layer for `shape` (without the batch dimension).
    pub fn new(shape: &[usize]) -> InputLayer {
        InputLayer::with_batch_shape(with_batch(shape))
    }

    /// An input layer for a full batch shape (`None` for unknown dimensions).
    pub fn with_batch_shape(batch_shape: Shape) -> InputLayer {
        InputLayer {
            base: LayerBase::new("InputLayer"),
            batch_shape,
            dtype: DType::F32,
        }
    }
}

impl Layer for InputLayer {
    fn class_name(&self) -> &str {
        "InputLayer"
    }
    fn base(&self) -> &LayerBase {
        &self.base
    }
    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }
    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        Ok(inputs.to_vec())
    }
    fn compute_output_shape(&mut self, _input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![self.batch_shape.clone()])
    }
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({
            "batch_shape": self.batch_shape,
            "dtype": self.dtype.name(),
            "sparse": false,
            "ragged": false,
            "name": self.base.name,
            "optional": false,
        })
    }
}

/// `keras.Input(shape)`: a symbolic model input.
///
/// ```
/// use ferroflow_keras::layers::{Dense, Input, Layer};
/// use ferroflow_keras::models::Model;
/// let inputs = Input::new(&[784]);
/// let x = Dense::new(64).activation("relu").apply(&inputs)?;
/// let outputs = Dense::new(10).apply(&x)?;
/// let model = Model::new(&inputs, &outputs)?;
/// assert_eq!(model.count_params(), 784 * 64 + 64 + 64 * 10 + 10);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Input;

impl Input {
    /// An input of `shape` (without the batch dimension), float32, auto-named `input_layer`...
    #[allow(clippy::new_ret_no_self)]
    pub fn new(shape: &[usize]) -> KerasTensor {
        Input::from_layer(InputLayer::new(shape))
    }

    /// A named input.
    pub fn named(shape: &[usize], name: &str) -> KerasTensor {
        let mut layer = InputLayer::new(shape);
        layer.base.name = name.to_string();
        Input::from_layer(layer)
    }

    /// An input with unknown dimensions (`None`), batch dimension excluded, and a dtype.
    pub fn with_shape(shape: &[Option<usize>], dtype: DType, name: Option<&str>) -> KerasTensor {
        let mut layer = InputLayer::with_batch_shape(
            std::iter::once(None).chain(shape.iter().copied()).collect(),
        );
        layer.dtype = dtype;
        if let Some(n) = name {
            layer.base.name = n.to_string();
        }
        Input::from_layer(layer)
    }

    fn from_layer(layer: InputLayer) -> KerasTensor {
        let shape = layer.batch_shape.clone();
        let dtype = layer.dtype;
        let handle = LayerHandle::new(layer);
        KerasTensor {
            shape: shape.clone(),
            dtype,
            node: Node::new(handle, Vec::new(), 0, vec![shape]),
            index: 0,
        }
    }
}

/// What a layer can be applied to symbolically: one `KerasTensor` or several.
pub trait SymbolicInputs {
    /// The tensors.
    fn to_symbolic(&self) -> Vec<KerasTensor>;
}

impl SymbolicInputs for KerasTensor {
    fn to_symbolic(&self) -> Vec<KerasTensor> {
        vec![self.clone()]
    }
}

impl SymbolicInputs for &KerasTensor {
    fn to_symbolic(&self) -> Vec<KerasTensor> {
        vec![(*self).clone()]
    }
}

impl SymbolicInputs for [KerasTensor] {
    fn to_symbolic(&self) -> Vec<KerasTensor> {
        self.to_vec()
    }
}

impl SymbolicInputs for Vec<KerasTensor> {
    fn to_symbolic(&self) -> Vec<KerasTensor> {
        self.clone()
    }
}

impl<const N: usize> SymbolicInputs for [KerasTensor; N] {
    fn to_symbolic(&self) -> Vec<KerasTensor> {
        self.to_vec()
    }
}

impl<const N: usize> SymbolicInputs for [&KerasTensor; N] {
    fn to_symbolic(&self) -> Vec<KerasTensor> {
        self.iter().map(|t| (*t).clone()).collect()
    }
}

impl LayerHandle {
    /// Calls the layer on symbolic tensors (Keras's `layer(x)` in the functional API) and returns
    /// its single output. The layer is built from the inputs' shapes.
    pub fn apply(&self, inputs: impl SymbolicInputs) -> Result<KerasTensor> {
        let mut out = self.apply_multi(inputs)?;
        if out.len() != 1 {
            return Err(Error::invalid(
                &self.name(),
                format!("layer has {} outputs; use apply_multi", out.len()),
            ));
        }
        Ok(out.remove(0))
    }

    /// Like [`apply`](LayerHandle::apply), for layers with several outputs.
    pub fn apply_multi(&self, inputs: impl SymbolicInputs) -> Result<Vec<KerasTensor>> {
        let inputs = inputs.to_symbolic();
        if inputs.is_empty() {
            return Err(Error::invalid(
                &self.name(),
                "a layer needs at least one input",
            ));
        }
        let shapes: Vec<Shape> = inputs.iter().map(|t| t.shape.clone()).collect();
        let out_shapes = self.compute_output_shape(&shapes)?;
        let node_index = self.next_node_index();
        let node = Node::new(self.clone(), inputs, node_index, out_shapes.clone());
        Ok(out_shapes
            .into_iter()
            .enumerate()
            .map(|(index, shape)| KerasTensor {
                shape,
                dtype: DType::F32,
                node: node.clone(),
                index,
            })
            .collect())
    }
}
