//! `keras_hub.layers.PositionEmbedding`: learned position embeddings.

use ferroflow_core::{ops, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::layer::{single_input, Layer, LayerBase};
use crate::backend::{fmt_shape, Shape};
use crate::initializers::Initializer;

/// `keras_hub.layers.PositionEmbedding(sequence_length, initializer="glorot_uniform")`: a
/// learned embedding per position (the GPT/BERT kind, not the sinusoidal one). The weight
/// `embeddings` is `[sequence_length, features]`; called on `x` `[batch, T, features]` (T ≤
/// `sequence_length`) it returns rows `start_index .. start_index + T` broadcast to `x`'s shape —
/// the position embeddings only, to be added to the token embeddings (`x + pos(x)`) as in
/// keras_hub. Like keras_hub it passes no mask on.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, PositionEmbedding};
/// use ferroflow_core::{ops, DType};
/// let pos = LayerHandle::new(PositionEmbedding::new(10));
/// let x = ops::zeros(&[2, 6, 4], DType::F32);
/// assert_eq!(pos.call(&x, false)?.shape(), &[2, 6, 4]);
/// assert_eq!(pos.lock().weights()[0].shape(), vec![10, 4]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct PositionEmbedding {
    base: LayerBase,
    /// The longest sequence the layer embeds.
    pub sequence_length: usize,
    /// keras_hub's call argument `start_index` (e.g. for incremental decoding), as a setting.
    pub start_index: usize,
    initializer: Initializer,
    embeddings: Option<Variable>,
}

impl PositionEmbedding {
    /// `PositionEmbedding(sequence_length)` with keras_hub's defaults.
    pub fn new(sequence_length: usize) -> PositionEmbedding {
        PositionEmbedding {
            base: LayerBase::new("PositionEmbedding"),
            sequence_length,
            start_index: 0,
            initializer: Initializer::glorot_uniform(),
            embeddings: None,
        }
    }

    /// keras_hub's `initializer` (default `glorot_uniform`).
    pub fn initializer(mut self, init: Initializer) -> Self {
        self.initializer = init;
        self
    }

    /// keras_hub's call argument `start_index`, applied on every call.
    pub fn start_index(mut self, start: usize) -> Self {
        self.start_index = start;
        self
    }
}

impl Layer for PositionEmbedding {
    fn class_name(&self) -> &str {
        "PositionEmbedding"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let name = self.base.name.clone();
        let shape = input_shapes.first().cloned().unwrap_or_default();
        let features = match shape.last().copied().flatten() {
            Some(f) if shape.len() >= 2 && self.sequence_length > 0 => f,
            _ => {
                return Err(Error::invalid(
                    &name,
                    format!(
                        "layer {name:?}: needs a positive sequence_length ({}) and an input [.., time, features] with known features, got {}",
                        self.sequence_length,
                        fmt_shape(&shape)
                    ),
                ))
            }
        };
        let init = self.initializer.clone();
        self.embeddings = Some(self.base.add_weight(
            "embeddings",
            &[self.sequence_length, features],
            &init,
            None,
            true,
        )?);
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = single_input(&name, inputs)?;
        let emb = self
            .embeddings
            .as_ref()
            .ok_or_else(|| Error::invalid(&name, "layer is not built"))?
            .value();
        let r = x.rank();
        if r < 2 {
            return Err(Error::shape(
                &name,
                format!("layer {name:?}: the input must be [.., time, features]"),
                &[x.shape()],
            ));
        }
        let (t, f) = (x.shape()[r - 2], x.shape()[r - 1]);
        if self.start_index + t > self.sequence_length || f != emb.shape()[1] {
            return Err(Error::shape(
                &name,
                format!(
                    "layer {name:?}: positions {}..{} with {f} features do not fit the embeddings [{}, {}]",
                    self.start_index,
                    self.start_index + t,
                    self.sequence_length,
                    emb.shape()[1]
                ),
                &[x.shape(), emb.shape()],
            ));
        }
        let rows = ops::slice(&emb, &[self.start_index, 0], &[t as isize, f as isize])?;
        let rows = ops::cast(&rows, x.dtype())?;
        Ok(vec![ops::broadcast_to(&rows, x.shape())?])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "sequence_length": self.sequence_length,
        })
    }
}
