//! `keras.layers.StringLookup`.

use ferroflow_core::{DType, Error, Result, Tensor};
use ferroflow_data::Dataset;
use serde_json::Value;

use super::index_lookup::{int_values, IndexLookup, OutputMode};
use super::integer_lookup::{first_tensor, lookup_config};
use super::layer::LayerBase;

/// `keras.layers.StringLookup(max_tokens=None, num_oov_indices=1, mask_token=None,
/// oov_token="[UNK]", vocabulary=None, idf_weights=None, invert=False, output_mode="int",
/// pad_to_max_tokens=False)`: maps strings to contiguous indices (or back, with `invert`).
///
/// **Strings in ferroflow.** Tensors have no string dtype, so the string-taking layers
/// (`StringLookup`, `TextVectorization`) are not model [`Layer`](super::Layer)s: they are
/// preprocessing objects with typed methods, used on a data pipeline or as the step before a
/// model — [`call_strings`](StringLookup::call_strings) takes `&[impl AsRef<str>]` plus the
/// batch's shape, and [`call_line`](StringLookup::call_line) a text-line tensor of
/// `ferroflow-data` (a rank-1 uint8 tensor of UTF-8 bytes, as `TextLineDataset` yields; a rank-2
/// uint8 tensor is a batch of such lines, right-padded with NUL bytes as `padded_batch` pads).
/// Their calls take `&self`, so one adapted layer can be shared (`Arc`) by a `Dataset::map`
/// closure. Their integer outputs feed ordinary layers (`Embedding`, `Dense`).
///
/// Matched Keras 3.15 (checked against real Keras): index 0 is the mask token when one is set
/// (`"int"` mode only), then the OOV slots, then the vocabulary; `adapt` sorts by descending
/// frequency, ties by descending UTF-8 bytes; outputs are int64 (`"int"`, `"one_hot"`,
/// `"multi_hot"`, `"count"`) or float32 (`"tf_idf"`); with `num_oov_indices > 1` an OOV string
/// goes to slot `FarmHash64(string) mod num_oov_indices` as in Keras (TF's
/// `to_hash_bucket_fast`; `salt` is not supported).
///
/// ```
/// use ferroflow_keras::layers::StringLookup;
/// let lookup = StringLookup::new().vocabulary(&["a", "b", "c"])?;
/// let y = lookup.call_strings(&["c", "a", "zzz"], &[3])?;
/// assert_eq!(y.to_vec::<i64>()?, vec![3, 1, 0]);
/// assert_eq!(lookup.get_vocabulary(), ["[UNK]", "a", "b", "c"]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct StringLookup {
    base: LayerBase,
    pub(crate) lookup: IndexLookup<String>,
}

impl Default for StringLookup {
    fn default() -> Self {
        StringLookup::new()
    }
}

impl StringLookup {
    /// `StringLookup()` with Keras's defaults (one OOV slot `"[UNK]"`, no mask, `"int"`).
    pub fn new() -> StringLookup {
        let base = LayerBase::new("StringLookup");
        let lookup = IndexLookup::new(&base.name, None, "[UNK]".to_string());
        StringLookup { base, lookup }
    }

    /// A lookup with a given name (as Keras's `name=`), for errors and configs.
    pub fn named(mut self, name: &str) -> Self {
        self.base.name = name.to_string();
        self.lookup.layer = name.to_string();
        self
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.base.name
    }

    /// The largest vocabulary (special tokens included); must be > 1.
    pub fn max_tokens(mut self, max_tokens: Option<usize>) -> Result<Self> {
        self.lookup.max_tokens = max_tokens;
        self.lookup.validate()?;
        Ok(self)
    }

    /// How many OOV slots (0: OOV strings are errors; > 1: FarmHash64 buckets).
    pub fn num_oov_indices(mut self, num_oov_indices: usize) -> Result<Self> {
        self.lookup.num_oov_indices = num_oov_indices;
        self.lookup.validate()?;
        Ok(self)
    }

    /// The mask token (index 0 in `"int"` mode), e.g. `Some("")`.
    pub fn mask_token(mut self, token: Option<&str>) -> Result<Self> {
        self.lookup.mask_token = token.map(str::to_string);
        self.lookup.validate()?;
        Ok(self)
    }

    /// The OOV token (default `"[UNK]"`).
    pub fn oov_token(mut self, token: &str) -> Result<Self> {
        self.lookup.oov_token = token.to_string();
        self.lookup.validate()?;
        Ok(self)
    }

    /// `"int"`, `"one_hot"`, `"multi_hot"`, `"count"` or `"tf_idf"`.
    pub fn output_mode(mut self, mode: &str) -> Result<Self> {
        self.lookup.output_mode = OutputMode::parse(&self.base.name, mode)?;
        self.lookup.validate()?;
        Ok(self)
    }

    /// Pad multi_hot/count/tf_idf outputs to `max_tokens`.
    pub fn pad_to_max_tokens(mut self, pad: bool) -> Result<Self> {
        self.lookup.pad_to_max_tokens = pad;
        self.lookup.validate()?;
        Ok(self)
    }

    /// Map indices to strings instead ([`call_indices`](StringLookup::call_indices)).
    pub fn invert(mut self, invert: bool) -> Result<Self> {
        self.lookup.invert = invert;
        self.lookup.validate()?;
        Ok(self)
    }

    /// Keras's `vocabulary=`: set the builders above first.
    pub fn vocabulary<S: AsRef<str>>(mut self, vocabulary: &[S]) -> Result<Self> {
        self.set_vocabulary(vocabulary, None)?;
        Ok(self)
    }

    /// A vocabulary with its idf weights (`"tf_idf"` mode).
    pub fn vocabulary_with_idf<S: AsRef<str>>(
        mut self,
        vocabulary: &[S],
        idf_weights: &[f64],
    ) -> Result<Self> {
        self.set_vocabulary(vocabulary, Some(idf_weights))?;
        Ok(self)
    }

    /// Keras's `set_vocabulary(vocabulary, idf_weights=None)`.
    pub fn set_vocabulary<S: AsRef<str>>(
        &mut self,
        vocabulary: &[S],
        idf_weights: Option<&[f64]>,
    ) -> Result<()> {
        let v = vocabulary.iter().map(|s| s.as_ref().to_string()).collect();
        self.lookup
            .set_vocabulary(v, idf_weights.map(|w| w.to_vec()))
    }

    /// Keras's `get_vocabulary()`: the string of each index, special tokens included.
    pub fn get_vocabulary(&self) -> Vec<String> {
        self.lookup.get_vocabulary(true)
    }

    /// `get_vocabulary(include_special_tokens=False)`.
    pub fn get_vocabulary_tokens(&self) -> Vec<String> {
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

    /// Keras's `adapt` on a list of documents, each a list of strings (Keras's rank-2 string
    /// data: one row per document).
    pub fn adapt_documents<D, S>(&mut self, documents: &[D]) -> Result<()>
    where
        D: AsRef<[S]>,
        S: AsRef<str>,
    {
        self.lookup.adapt(documents.iter().map(|d| {
            d.as_ref()
                .iter()
                .map(|s| s.as_ref().to_string())
                .collect::<Vec<_>>()
        }))
    }

    /// Keras's `adapt` on a rank-1 list of strings: each string is a one-token document.
    pub fn adapt_strings<S: AsRef<str>>(&mut self, data: &[S]) -> Result<()> {
        self.lookup
            .adapt(data.iter().map(|s| vec![s.as_ref().to_string()]))
    }

    /// Keras's `adapt(dataset)` on a dataset of text lines (each element, or the first tensor
    /// of a tuple, a uint8 line tensor — one one-token document — or a rank-2 uint8 batch of
    /// lines — one document).
    pub fn adapt_dataset(&mut self, dataset: &Dataset) -> Result<()> {
        let mut docs: Vec<Vec<String>> = Vec::new();
        for element in dataset.iter() {
            let x = first_tensor(&self.base.name, &element?)?;
            let (texts, _) = texts_from_tensor(&self.base.name, &x)?;
            docs.push(texts);
        }
        self.lookup.adapt(docs)
    }

    /// Looks up `strings` laid out as `shape` (its product must be `strings.len()`; `&[]` for
    /// one scalar string) and encodes them per `output_mode` (Keras's rank rules).
    pub fn call_strings<S: AsRef<str>>(&self, strings: &[S], shape: &[usize]) -> Result<Tensor> {
        self.check_not_inverted()?;
        let n: usize = shape.iter().product();
        if n != strings.len() {
            return Err(Error::invalid(
                &self.base.name,
                format!("{} strings do not fill the shape {shape:?}", strings.len()),
            ));
        }
        let keys: Vec<String> = strings.iter().map(|s| s.as_ref().to_string()).collect();
        self.lookup.lookup(&keys, shape)
    }

    /// Looks up a text-line tensor: a rank-1 uint8 line is one (scalar) string; a rank-2 uint8
    /// batch of NUL-padded lines is a rank-1 batch of strings.
    pub fn call_line(&self, line: &Tensor) -> Result<Tensor> {
        let (texts, shape) = texts_from_tensor(&self.base.name, line)?;
        self.call_strings(&texts, &shape)
    }

    /// `invert=True`: the strings of integer indices (index 0 → the mask token if set; unknown
    /// indices → the OOV token), in the input's row-major order.
    pub fn call_indices(&self, indices: &Tensor) -> Result<Vec<String>> {
        if !self.lookup.invert {
            return Err(Error::invalid(
                &self.base.name,
                "call_indices maps indices to strings and needs invert=true",
            ));
        }
        let values = int_values(&self.base.name, indices)?;
        Ok(values.iter().map(|&i| self.lookup.token_of(i)).collect())
    }

    fn check_not_inverted(&self) -> Result<()> {
        if self.lookup.invert {
            return Err(Error::invalid(
                &self.base.name,
                "this layer has invert=true: use call_indices",
            ));
        }
        Ok(())
    }

    /// Keras's `get_config()`.
    pub fn get_config(&self) -> Value {
        let mut c = lookup_config(&self.base, &self.lookup, "string");
        c["encoding"] = Value::from("utf-8");
        c
    }
}

/// The strings held by a text tensor and their batch shape: a rank-1 uint8 tensor is one
/// UTF-8 string (shape `[]`); a rank-2 uint8 tensor is a batch of strings, each row
/// right-padded with NUL bytes (shape `[rows]`). Invalid UTF-8 is an error naming `layer`.
pub fn texts_from_tensor(layer: &str, t: &Tensor) -> Result<(Vec<String>, Vec<usize>)> {
    if t.dtype() != DType::U8 || !(t.rank() == 1 || t.rank() == 2) {
        return Err(Error::dtype(
            layer,
            format!(
                "expected a text tensor: rank-1 uint8 UTF-8 bytes (one line) or rank-2 uint8 (a batch of NUL-padded lines), got rank {}",
                t.rank()
            ),
            &[t.dtype()],
        ));
    }
    let bytes = t.to_vec::<u8>()?;
    let decode = |row: usize, b: &[u8]| -> Result<String> {
        String::from_utf8(b.to_vec())
            .map_err(|e| Error::invalid(layer, format!("text {row} is not valid UTF-8: {e}")))
    };
    if t.rank() == 1 {
        return Ok((vec![decode(0, &bytes)?], Vec::new()));
    }
    let (rows, len) = (t.shape()[0], t.shape()[1]);
    let mut out = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &bytes[r * len..(r + 1) * len];
        let end = row.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        out.push(decode(r, &row[..end])?);
    }
    Ok((out, vec![rows]))
}
