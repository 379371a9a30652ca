//! `keras.layers.Embedding`.

use ferroflow_core::{ops, DType, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::kernel_args::resolve_opt;
use super::layer::{single_input, Layer, LayerBase};
use crate::backend::{Arg, Shape};
use crate::initializers::Initializer;
use crate::regularizers::Regularizer;

/// `keras.layers.Embedding(input_dim, output_dim, embeddings_initializer="uniform",
/// embeddings_regularizer=None, mask_zero=False)`: integer ids `[..]` → rows of the
/// `embeddings` matrix `[input_dim, output_dim]`, output `[.., output_dim]` (a `gather`, whose
/// gradient reaches the rows used). Float ids are cast to int32 first, as Keras does. Keras 3
/// has no `input_length` argument (give the sequence length to `Input` instead).
///
/// With `mask_zero=True` the layer produces a mask `ids != 0` (`[batch, time]`) that the layers
/// after it receive (an `LSTM` then skips the padding), as Keras.
///
/// ```
/// use ferroflow_keras::layers::{Embedding, LayerHandle};
/// use ferroflow_core::Tensor;
/// let emb = LayerHandle::new(Embedding::new(10, 4).mask_zero(true));
/// let ids = Tensor::from_vec(vec![1i32, 2, 0, 0], &[1, 4])?;
/// let (y, mask) = emb.call_masked(&[ids], &[], false)?;
/// assert_eq!(y[0].shape(), &[1, 4, 4]);
/// assert_eq!(mask.unwrap().to_vec::<bool>()?, vec![true, true, false, false]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Embedding {
    base: LayerBase,
    /// Vocabulary size (ids are in `0..input_dim`).
    pub input_dim: usize,
    /// Size of each embedding vector.
    pub output_dim: usize,
    /// Whether id 0 is padding to be masked.
    pub mask_zero: bool,
    embeddings_initializer: Arg<Initializer>,
    embeddings_regularizer: Option<Arg<Regularizer>>,
    embeddings: Option<Variable>,
}

impl Embedding {
    /// `Embedding(input_dim, output_dim)` with Keras's defaults (`RandomUniform(-0.05, 0.05)`).
    pub fn new(input_dim: usize, output_dim: usize) -> Embedding {
        Embedding {
            base: LayerBase::new("Embedding"),
            input_dim,
            output_dim,
            mask_zero: false,
            embeddings_initializer: Arg(Ok(Initializer::random_uniform(-0.05, 0.05))),
            embeddings_regularizer: None,
            embeddings: None,
        }
    }

    /// Make id 0 a padding value that is masked downstream.
    pub fn mask_zero(mut self, b: bool) -> Self {
        self.mask_zero = b;
        self
    }

    /// The embeddings' initializer.
    pub fn embeddings_initializer(mut self, i: impl Into<Arg<Initializer>>) -> Self {
        self.embeddings_initializer = i.into();
        self
    }

    /// A penalty on the embeddings.
    pub fn embeddings_regularizer(mut self, r: impl Into<Arg<Regularizer>>) -> Self {
        self.embeddings_regularizer = Some(r.into());
        self
    }
}

impl Layer for Embedding {
    fn class_name(&self) -> &str {
        "Embedding"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn build(&mut self, _input_shapes: &[Shape]) -> Result<()> {
        let name = self.base.name.clone();
        if self.input_dim == 0 || self.output_dim == 0 {
            return Err(Error::invalid(
                &name,
                format!(
                    "layer {name:?}: `input_dim` and `output_dim` must be positive, got {} and {}",
                    self.input_dim, self.output_dim
                ),
            ));
        }
        let init = self.embeddings_initializer.0.clone()?;
        let reg = resolve_opt(&self.embeddings_regularizer)?;
        self.embeddings = Some(self.base.add_weight(
            "embeddings",
            &[self.input_dim, self.output_dim],
            &init,
            reg,
            true,
        )?);
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let name = &self.base.name;
        let emb = self
            .embeddings
            .as_ref()
            .ok_or_else(|| Error::invalid(name, "layer is not built"))?
            .value();
        let ids = match x.dtype() {
            DType::I32 | DType::I64 => x.clone(),
            _ => ops::cast(x, DType::I32)?,
        };
        // The range check needs values: a traced step (symbolic ids) leaves it to the gather.
        let ids_f = if ids.is_symbolic() {
            Vec::new()
        } else {
            ids.to_f64_vec()
        };
        if let Some(bad) = ids_f
            .iter()
            .find(|&&v| v < 0.0 || v >= self.input_dim as f64)
        {
            return Err(Error::invalid(
                name,
                format!(
                    "layer {name:?}: id {bad} is out of range for input_dim={}",
                    self.input_dim
                ),
            ));
        }
        Ok(vec![ops::gather(&emb, &ids, 0)?])
    }

    fn supports_masking(&self) -> bool {
        self.mask_zero
    }

    fn compute_mask(&self, inputs: &[Tensor], _masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        if !self.mask_zero {
            return Ok(None);
        }
        let x = single_input(&self.base.name, inputs)?;
        Ok(Some(ops::not_equal(x, &Tensor::scalar_of(x.dtype(), 0.0))?))
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let mut s = super::pool_utils::first_shape(&self.base.name, input_shapes)?.clone();
        s.push(Some(self.output_dim));
        Ok(vec![s])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "mask_zero": self.mask_zero,
        })
    }
}
