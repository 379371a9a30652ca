//! `keras.layers.IntegerLookup`.

use ferroflow_core::{Error, Result, Tensor};
use ferroflow_data::{Dataset, Element};
use serde_json::{json, Value};

use super::index_lookup::{encoded_shape, int_values, IndexLookup, LookupKey, OutputMode};
use super::layer::{single_input, Layer, LayerBase};
use crate::backend::Shape;

/// `keras.layers.IntegerLookup(max_tokens=None, num_oov_indices=1, mask_token=None,
/// oov_token=-1, vocabulary=None, idf_weights=None, invert=False, output_mode="int",
/// pad_to_max_tokens=False)`: maps integer tokens to contiguous indices (or, with `invert`,
/// indices back to tokens). It is an ordinary [`Layer`] on integer tensors (int32, int64,
/// uint8, or floats holding whole numbers, as a float32 model input), usable inside a model; its outputs are integers (no gradient flows through a lookup).
///
/// Matched Keras 3.15 (checked against real Keras): index 0 is the mask token when one is set
/// (`"int"` mode only), then `num_oov_indices` OOV slots, then the vocabulary; `adapt` sorts
/// tokens by descending frequency, ties by descending value; with `num_oov_indices > 1` an OOV
/// token goes to slot `token mod num_oov_indices` (Keras's default `oov_method="floormod"`;
/// `"farmhash"` and `salt` are not supported). Outputs: `"int"` → int64 of the input's shape;
/// `"one_hot"`, `"multi_hot"`, `"count"` → int64 (Keras's actual output dtype); `"tf_idf"` →
/// float32. A mask token is dropped from the non-`"int"` encodings. An OOV token with
/// `num_oov_indices=0` is an error naming the layer.
///
/// ```
/// use ferroflow_keras::layers::{IntegerLookup, LayerHandle};
/// use ferroflow_core::Tensor;
/// let mut lookup = IntegerLookup::new();
/// lookup.adapt(&Tensor::from_vec(vec![12i64, 1138, 42, 42, 1000, 42], &[2, 3])?)?;
/// assert_eq!(lookup.get_vocabulary(), vec![-1, 42, 1138, 1000, 12]);
/// let y = LayerHandle::new(lookup).call(&Tensor::from_vec(vec![42i64, 7], &[2])?, false)?;
/// assert_eq!(y.to_vec::<i64>()?, vec![1, 0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct IntegerLookup {
    base: LayerBase,
    lookup: IndexLookup<i64>,
}

impl Default for IntegerLookup {
    fn default() -> Self {
        IntegerLookup::new()
    }
}

impl IntegerLookup {
    /// `IntegerLookup()` with Keras's defaults (one OOV slot with token -1, no mask, `"int"`).
    pub fn new() -> IntegerLookup {
        let base = LayerBase::new("IntegerLookup");
        let lookup = IndexLookup::new(&base.name, None, -1);
        IntegerLookup { base, lookup }
    }

    /// The largest vocabulary (special tokens included); must be > 1. Set before the vocabulary.
    pub fn max_tokens(mut self, max_tokens: Option<usize>) -> Result<Self> {
        self.lookup.max_tokens = max_tokens;
        self.lookup.validate()?;
        Ok(self)
    }

    /// How many OOV slots (0: OOV tokens are errors).
    pub fn num_oov_indices(mut self, num_oov_indices: usize) -> Result<Self> {
        self.lookup.num_oov_indices = num_oov_indices;
        self.lookup.validate()?;
        Ok(self)
    }

    /// The mask token (index 0 in `"int"` mode).
    pub fn mask_token(mut self, token: Option<i64>) -> Result<Self> {
        self.lookup.mask_token = token;
        self.lookup.validate()?;
        Ok(self)
    }

    /// The OOV token returned by `invert` (default -1).
    pub fn oov_token(mut self, token: i64) -> Result<Self> {
        self.lookup.oov_token = token;
        self.lookup.validate()?;
        Ok(self)
    }

    /// `"int"`, `"one_hot"`, `"multi_hot"`, `"count"` or `"tf_idf"`.
    pub fn output_mode(mut self, mode: &str) -> Result<Self> {
        let m = OutputMode::parse(&self.base.name, mode)?;
        self.lookup.output_mode = m;
        self.lookup.validate()?;
        Ok(self)
    }

    /// Pad multi_hot/count/tf_idf outputs to `max_tokens`.
    pub fn pad_to_max_tokens(mut self, pad: bool) -> Result<Self> {
        self.lookup.pad_to_max_tokens = pad;
        self.lookup.validate()?;
        Ok(self)
    }

    /// Map indices to tokens instead (`"int"` mode only).
    pub fn invert(mut self, invert: bool) -> Result<Self> {
        self.lookup.invert = invert;
        self.lookup.validate()?;
        Ok(self)
    }

    /// Keras's `vocabulary=` / `set_vocabulary`: see [`IndexLookup::set_vocabulary`].
    pub fn vocabulary(mut self, vocabulary: &[i64]) -> Result<Self> {
        self.set_vocabulary(vocabulary, None)?;
        Ok(self)
    }

    /// A vocabulary with its idf weights (`"tf_idf"` mode).
    pub fn vocabulary_with_idf(mut self, vocabulary: &[i64], idf_weights: &[f64]) -> Result<Self> {
        self.set_vocabulary(vocabulary, Some(idf_weights))?;
        Ok(self)
    }

    /// Keras's `set_vocabulary(vocabulary, idf_weights=None)`.
    pub fn set_vocabulary(
        &mut self,
        vocabulary: &[i64],
        idf_weights: Option<&[f64]>,
    ) -> Result<()> {
        self.lookup
            .set_vocabulary(vocabulary.to_vec(), idf_weights.map(|w| w.to_vec()))
    }

    /// Keras's `get_vocabulary()`: the token of each index, special tokens included.
    pub fn get_vocabulary(&self) -> Vec<i64> {
        self.lookup.get_vocabulary(true)
    }

    /// `get_vocabulary(include_special_tokens=False)`.
    pub fn get_vocabulary_tokens(&self) -> Vec<i64> {
        self.lookup.get_vocabulary(false)
    }

    /// Keras's `vocabulary_size()`, special slots included.
    pub fn vocabulary_size(&self) -> usize {
        self.lookup.vocabulary_size()
    }

    /// The `"tf_idf"` weights, one per output slot.
    pub fn idf_weights(&self) -> Option<Vec<f32>> {
        self.lookup.idf_weights().map(|w| w.to_vec())
    }

    /// Keras's `adapt(data)` on a tensor: a rank-0/1 tensor is a column of one-token documents
    /// (Keras expands it to `(n, 1)`), otherwise each slice along the first axis is a document.
    pub fn adapt(&mut self, data: &Tensor) -> Result<()> {
        let values = int_values(&self.base.name, data)?;
        let per_doc = if data.rank() <= 1 {
            1
        } else {
            data.shape()[1..].iter().product::<usize>()
        };
        if per_doc == 0 {
            let n = data.shape().first().copied().unwrap_or(0);
            return self.lookup.adapt((0..n).map(|_| Vec::new()));
        }
        self.lookup
            .adapt(values.chunks(per_doc).map(|c| c.to_vec()))
    }

    /// Keras's `adapt(dataset)`: each element is a batch (the first tensor of a tuple); a scalar
    /// element is one document, a rank-1 element one document, higher ranks one document per
    /// first-axis slice (Keras's `update_state`).
    pub fn adapt_dataset(&mut self, dataset: &Dataset) -> Result<()> {
        let mut docs: Vec<Vec<i64>> = Vec::new();
        for element in dataset.iter() {
            let x = first_tensor(&self.base.name, &element?)?;
            let values = int_values(&self.base.name, &x)?;
            if x.rank() <= 1 {
                docs.push(values);
            } else {
                let per: usize = x.shape()[1..].iter().product();
                if per == 0 {
                    docs.extend((0..x.shape()[0]).map(|_| Vec::new()));
                } else {
                    docs.extend(values.chunks(per).map(|c| c.to_vec()));
                }
            }
        }
        self.lookup.adapt(docs)
    }
}

/// The tensor of an element, or the first tensor of a tuple element (Keras's `(x, y)`).
pub(crate) fn first_tensor(layer: &str, e: &Element) -> Result<Tensor> {
    match e {
        Element::Tuple(items) => items
            .first()
            .ok_or_else(|| Error::invalid(layer, "adapt() got an empty tuple element"))?
            .tensor()
            .cloned(),
        e => e.tensor().cloned(),
    }
}

impl Layer for IntegerLookup {
    fn class_name(&self) -> &str {
        "IntegerLookup"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        // the layer may have been renamed (`named`) after its lookup was made
        if self.lookup.layer != self.base.name {
            self.lookup.layer = self.base.name.clone();
        }
        let values = int_values(&self.base.name, x)?;
        if self.lookup.invert {
            let out: Vec<i64> = values.iter().map(|&i| self.lookup.token_of(i)).collect();
            return Ok(vec![Tensor::from_vec(out, x.shape())?]);
        }
        Ok(vec![self.lookup.lookup(&values, x.shape())?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let shape = super::pool_utils::first_shape(&self.base.name, input_shapes)?;
        // before a vocabulary is set the encoding width is unknown (Keras: None)
        let depth = match self.lookup.output_mode {
            OutputMode::Int => Some(0),
            _ => self.lookup.depth().ok(),
        };
        let mut out = encoded_shape(shape, self.lookup.output_mode, depth.unwrap_or(0));
        if depth.is_none() {
            if let Some(last) = out.last_mut() {
                *last = None;
            }
        }
        Ok(vec![out])
    }

    fn get_config(&self) -> Value {
        lookup_config(&self.base, &self.lookup, "int64")
    }
}

/// Keras's `IndexLookup.get_config()` keys.
pub(crate) fn lookup_config<K: LookupKey>(
    base: &LayerBase,
    l: &IndexLookup<K>,
    dtype: &str,
) -> Value {
    let vocab: Value = if l.has_input_vocabulary {
        l.tokens().iter().map(|t| t.to_json()).collect()
    } else {
        Value::Null
    };
    json!({
        "name": base.name,
        "trainable": base.trainable,
        "invert": l.invert,
        "max_tokens": l.max_tokens,
        "num_oov_indices": l.num_oov_indices,
        "oov_token": l.oov_token.to_json(),
        "mask_token": l.mask_token.as_ref().map(|m| m.to_json()),
        "output_mode": l.output_mode.as_str(),
        "sparse": false,
        "pad_to_max_tokens": l.pad_to_max_tokens,
        "vocabulary_dtype": dtype,
        "vocabulary": vocab,
    })
}
