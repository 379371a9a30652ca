//! The vocabulary machinery shared by `IntegerLookup`, `StringLookup` and `TextVectorization`
//! (Keras's `IndexLookup` base class), and the categorical encoding shared with
//! `CategoryEncoding` (Keras's `numerical_utils.encode_categorical_inputs`).
//!
//! Matched Keras 3.15 behaviour (TensorFlow backend), checked against real Keras in
//! `tests/keras/fixtures/preprocessing_lookup.py`:
//! - indices: `[mask (output_mode "int" only)] [num_oov_indices OOV slots] [tokens...]`;
//! - `adapt` orders tokens by **descending count, ties by descending token** (Keras's
//!   `np.lexsort((tokens, counts))[::-1]`: for strings, descending UTF-8 bytes; for integers,
//!   descending values), drops the mask and OOV tokens, and keeps `max_tokens - token_start`;
//! - `tf_idf`: `idf = ln(1 + num_documents / (1 + document_count))`, the OOV slots get the mean
//!   of the token weights, `pad_to_max_tokens` pads with zeros;
//! - outputs: `"int"` → int64 indices of the input's shape; `"one_hot"`/`"multi_hot"`/`"count"`
//!   → int64 encodings; `"tf_idf"` → float32 (counts × idf).

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;

use ferroflow_core::{Error, Result, Tensor};
use serde_json::Value;

/// Keras's `output_mode` of the lookup layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    /// `"int"`: the index of each input token.
    Int,
    /// `"one_hot"`: one vector per input element (a trailing axis of size 1 is replaced).
    OneHot,
    /// `"multi_hot"`: one vector per sample (the last axis), 1 where a token occurs.
    MultiHot,
    /// `"count"`: as multi_hot, with the number of occurrences.
    Count,
    /// `"tf_idf"`: counts times the inverse document frequency of each token.
    TfIdf,
}

impl OutputMode {
    /// Parses Keras's spelling (`"int"`, `"one_hot"`, `"multi_hot"` or its alias `"binary"`,
    /// `"count"`, `"tf_idf"` or `"tf-idf"`).
    pub fn parse(layer: &str, s: &str) -> Result<OutputMode> {
        Ok(match s {
            "int" => OutputMode::Int,
            "one_hot" => OutputMode::OneHot,
            "multi_hot" | "binary" => OutputMode::MultiHot,
            "count" => OutputMode::Count,
            "tf_idf" | "tf-idf" => OutputMode::TfIdf,
            _ => {
                return Err(Error::invalid(
                    layer,
                    format!(
                        "unknown output_mode {s:?}; expected one of \"int\", \"one_hot\", \"multi_hot\", \"count\", \"tf_idf\""
                    ),
                ))
            }
        })
    }

    /// Keras's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputMode::Int => "int",
            OutputMode::OneHot => "one_hot",
            OutputMode::MultiHot => "multi_hot",
            OutputMode::Count => "count",
            OutputMode::TfIdf => "tf_idf",
        }
    }
}

/// A vocabulary key: `i64` for `IntegerLookup`, `String` for `StringLookup`.
pub trait LookupKey: Clone + Eq + Hash + Ord + Debug + Send + Sync + 'static {
    /// The OOV slot (`0..num_oov`) of an out-of-vocabulary key when `num_oov > 1`.
    fn oov_bucket(&self, num_oov: usize, layer: &str) -> Result<usize>;
    /// The key as JSON (for `get_config`).
    fn to_json(&self) -> Value;
}

impl LookupKey for i64 {
    /// Keras's default `oov_method="floormod"`: `key mod num_oov` (always non-negative).
    fn oov_bucket(&self, num_oov: usize, _layer: &str) -> Result<usize> {
        Ok(self.rem_euclid(num_oov as i64) as usize)
    }
    fn to_json(&self) -> Value {
        Value::from(*self)
    }
}

impl LookupKey for String {
    /// Keras hashes string OOV keys with TensorFlow's FarmHash64
    /// (`tf.strings.to_hash_bucket_fast`), reproduced by [`super::farmhash`].
    fn oov_bucket(&self, num_oov: usize, _layer: &str) -> Result<usize> {
        Ok(super::farmhash::hash_bucket_fast(self.as_bytes(), num_oov as u64) as usize)
    }
    fn to_json(&self) -> Value {
        Value::from(self.as_str())
    }
}

/// Where a token went: an index, or dropped (a mask token outside `"int"` mode).
const DROPPED: i64 = i64::MAX;

/// Keras's `IndexLookup`: a vocabulary with mask/OOV slots, adapt statistics and the encoding.
#[derive(Clone, Debug)]
pub struct IndexLookup<K: LookupKey> {
    /// The layer name used in errors.
    pub layer: String,
    /// The largest vocabulary size (special tokens included), if limited.
    pub max_tokens: Option<usize>,
    /// How many OOV slots.
    pub num_oov_indices: usize,
    /// The mask token, if any.
    pub mask_token: Option<K>,
    /// The OOV token (returned by `invert` for unknown indices).
    pub oov_token: K,
    /// The output mode.
    pub output_mode: OutputMode,
    /// Pad multi_hot/count/tf_idf outputs to `max_tokens`.
    pub pad_to_max_tokens: bool,
    /// Map indices back to tokens.
    pub invert: bool,
    /// Set when the vocabulary was given (Keras then refuses `adapt`).
    pub has_input_vocabulary: bool,
    tokens: Vec<K>,
    /// Each token's position in `tokens` (its index minus `token_start_index()`).
    index: HashMap<K, usize>,
    idf: Option<Vec<f32>>,
}

impl<K: LookupKey> IndexLookup<K> {
    /// A lookup with Keras's defaults for everything but the mask and OOV tokens: no
    /// `max_tokens`, one OOV slot, `"int"` mode.
    pub fn new(layer: &str, mask_token: Option<K>, oov_token: K) -> IndexLookup<K> {
        IndexLookup {
            layer: layer.to_string(),
            max_tokens: None,
            num_oov_indices: 1,
            mask_token,
            oov_token,
            output_mode: OutputMode::Int,
            pad_to_max_tokens: false,
            invert: false,
            has_input_vocabulary: false,
            tokens: Vec::new(),
            index: HashMap::new(),
            idf: None,
        }
    }

    /// Keras's constructor checks, run by the builders after each change.
    pub fn validate(&self) -> Result<()> {
        let layer = &self.layer;
        if let Some(m) = self.max_tokens {
            if m <= 1 {
                return Err(Error::invalid(
                    layer,
                    format!("if set, max_tokens must be greater than 1, got max_tokens={m}"),
                ));
            }
        }
        if self.pad_to_max_tokens && self.max_tokens.is_none() {
            return Err(Error::invalid(
                layer,
                "if pad_to_max_tokens is true, max_tokens must be set",
            ));
        }
        if self.invert && self.output_mode != OutputMode::Int {
            return Err(Error::invalid(
                layer,
                format!(
                    "output_mode must be \"int\" when invert is true, got {:?}",
                    self.output_mode.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// The index of the first OOV slot: 1 when a mask token takes index 0 (`"int"` mode).
    pub fn oov_start_index(&self) -> usize {
        usize::from(self.mask_token.is_some() && self.output_mode == OutputMode::Int)
    }

    /// The index of the first real token.
    pub fn token_start_index(&self) -> usize {
        self.oov_start_index() + self.num_oov_indices
    }

    /// The vocabulary size, special slots included (Keras's `vocabulary_size()`).
    pub fn vocabulary_size(&self) -> usize {
        self.token_start_index() + self.tokens.len()
    }

    /// The learned or given tokens, without special tokens.
    pub fn tokens(&self) -> &[K] {
        &self.tokens
    }

    /// The idf weights (special slots and padding included), for `"tf_idf"`.
    pub fn idf_weights(&self) -> Option<&[f32]> {
        self.idf.as_deref()
    }

    /// Keras's `get_vocabulary(include_special_tokens)`: position = index.
    pub fn get_vocabulary(&self, include_special_tokens: bool) -> Vec<K> {
        let mut v = Vec::with_capacity(self.vocabulary_size());
        if include_special_tokens {
            if let (Some(m), true) = (&self.mask_token, self.oov_start_index() == 1) {
                v.push(m.clone());
            }
            for _ in 0..self.num_oov_indices {
                v.push(self.oov_token.clone());
            }
        }
        v.extend(self.tokens.iter().cloned());
        v
    }

    fn set_tokens(&mut self, tokens: Vec<K>) {
        self.index = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        self.tokens = tokens;
    }

    /// Keras's `set_vocabulary(vocabulary, idf_weights)`: a vocabulary may start with exactly
    /// the special tokens (`[mask] + [oov] * num_oov_indices`), which are then skipped; repeated
    /// tokens, a misplaced mask (or OOV token when inverting), a size above `max_tokens`, and
    /// idf weights of another length are errors. `"tf_idf"` needs idf weights.
    pub fn set_vocabulary(
        &mut self,
        vocabulary: Vec<K>,
        idf_weights: Option<Vec<f64>>,
    ) -> Result<()> {
        let layer = self.layer.clone();
        if vocabulary.is_empty() {
            return Err(Error::invalid(&layer, "cannot set an empty vocabulary"));
        }
        if idf_weights.is_some() && self.output_mode != OutputMode::TfIdf {
            return Err(Error::invalid(
                &layer,
                "idf_weights should only be set if output_mode is \"tf_idf\"",
            ));
        }
        if self.output_mode == OutputMode::TfIdf && idf_weights.is_none() {
            return Err(Error::invalid(
                &layer,
                "when setting a vocabulary in \"tf_idf\" output mode, idf_weights must also be provided",
            ));
        }
        let oov_start = self.oov_start_index();
        let token_start = self.token_start_index();
        let mut special: Vec<K> = Vec::new();
        if oov_start == 1 {
            if let Some(m) = &self.mask_token {
                special.push(m.clone());
            }
        }
        special.extend(std::iter::repeat_n(
            self.oov_token.clone(),
            self.num_oov_indices,
        ));
        let found_special =
            vocabulary.len() >= token_start && vocabulary[..token_start] == special[..];
        let tokens: Vec<K> = if found_special {
            vocabulary[token_start..].to_vec()
        } else {
            vocabulary.clone()
        };
        let mut seen: HashMap<&K, usize> = HashMap::new();
        for t in &tokens {
            *seen.entry(t).or_default() += 1;
        }
        let mut repeated: Vec<&K> = seen
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(t, _)| *t)
            .collect();
        if !repeated.is_empty() {
            repeated.sort();
            return Err(Error::invalid(
                &layer,
                format!("the passed vocabulary has at least one repeated term; the repeated terms are {repeated:?}"),
            ));
        }
        if let Some(m) = &self.mask_token {
            if let Some(i) = vocabulary.iter().rposition(|t| t == m) {
                if tokens.contains(m) {
                    return Err(Error::invalid(
                        &layer,
                        format!("found reserved mask token {m:?} at unexpected location in vocabulary (index {i}); include special tokens only at the start, in this order: {special:?}"),
                    ));
                }
            }
        }
        if self.invert && tokens.contains(&self.oov_token) {
            return Err(Error::invalid(
                &layer,
                format!(
                    "found reserved OOV token {:?} at unexpected location in vocabulary; include special tokens only at the start, in this order: {special:?}",
                    self.oov_token
                ),
            ));
        }
        let new_size = token_start + tokens.len();
        if let Some(m) = self.max_tokens {
            if new_size > m {
                return Err(Error::invalid(
                    &layer,
                    format!("attempted to set a vocabulary larger than the maximum vocab size: vocabulary size is {new_size}; max_tokens is {m}"),
                ));
            }
        }
        if let Some(w) = idf_weights {
            if w.len() != vocabulary.len() {
                return Err(Error::invalid(
                    &layer,
                    format!(
                        "idf_weights must be the same length as vocabulary: len(idf_weights) is {}; len(vocabulary) is {}",
                        w.len(),
                        vocabulary.len()
                    ),
                ));
            }
            let mut full: Vec<f64> = Vec::new();
            if !found_special {
                let avg = w.iter().sum::<f64>() / w.len() as f64;
                full.extend(std::iter::repeat_n(avg, token_start));
            }
            full.extend(w);
            self.idf = Some(self.pad_idf(full));
        }
        self.set_tokens(tokens);
        self.has_input_vocabulary = true;
        Ok(())
    }

    fn pad_idf(&self, mut w: Vec<f64>) -> Vec<f32> {
        if let (true, Some(m)) = (self.pad_to_max_tokens, self.max_tokens) {
            if w.len() < m {
                w.resize(m, 0.0);
            }
        }
        w.into_iter().map(|v| v as f32).collect()
    }

    /// Keras's `adapt`: counts tokens over `documents` (and, for `"tf_idf"`, in how many
    /// documents each occurs), then replaces the vocabulary. Errors if a vocabulary was given.
    pub fn adapt<I, D>(&mut self, documents: I) -> Result<()>
    where
        I: IntoIterator<Item = D>,
        D: IntoIterator<Item = K>,
    {
        if self.has_input_vocabulary {
            return Err(Error::invalid(
                &self.layer,
                format!(
                    "cannot adapt layer {:?} after setting a static vocabulary via the vocabulary argument or set_vocabulary()",
                    self.layer
                ),
            ));
        }
        let mut counts: HashMap<K, u64> = HashMap::new();
        let mut doc_counts: HashMap<K, u64> = HashMap::new();
        let mut num_documents: u64 = 0;
        for doc in documents {
            num_documents += 1;
            let mut in_doc: Vec<K> = Vec::new();
            for t in doc {
                *counts.entry(t.clone()).or_default() += 1;
                in_doc.push(t);
            }
            if self.output_mode == OutputMode::TfIdf {
                in_doc.sort();
                in_doc.dedup();
                for t in in_doc {
                    *doc_counts.entry(t).or_default() += 1;
                }
            }
        }
        if counts.is_empty() {
            return Ok(());
        }
        if let Some(m) = &self.mask_token {
            counts.remove(m);
        }
        counts.remove(&self.oov_token);
        let mut sorted: Vec<(K, u64)> = counts.into_iter().collect();
        // np.lexsort((tokens, counts))[::-1]: descending count, ties by descending token.
        sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        let token_start = self.token_start_index();
        if let Some(m) = self.max_tokens {
            sorted.truncate(m.saturating_sub(token_start));
        }
        let tokens: Vec<K> = sorted.into_iter().map(|(t, _)| t).collect();
        if self.output_mode == OutputMode::TfIdf {
            let n = num_documents as f64;
            let idf: Vec<f64> = tokens
                .iter()
                .map(|t| {
                    let df = doc_counts.get(t).copied().unwrap_or(0) as f64;
                    // float32 as Keras casts before taking the mean
                    ((1.0 + n / (1.0 + df)).ln() as f32) as f64
                })
                .collect();
            let mean = if idf.is_empty() {
                0.0
            } else {
                idf.iter().sum::<f64>() / idf.len() as f64
            };
            let mut full = vec![mean; token_start];
            full.extend(idf);
            self.idf = Some(self.pad_idf(full));
        }
        self.set_tokens(tokens);
        Ok(())
    }

    /// The index of one key (mask → 0 in `"int"` mode, dropped otherwise; OOV → an OOV slot,
    /// or an error when `num_oov_indices` is 0).
    pub fn index_of(&self, key: &K) -> Result<i64> {
        if let Some(m) = &self.mask_token {
            if m == key {
                return Ok(if self.output_mode == OutputMode::Int {
                    0
                } else {
                    DROPPED
                });
            }
        }
        if let Some(&i) = self.index.get(key) {
            return Ok((self.token_start_index() + i) as i64);
        }
        match self.num_oov_indices {
            0 => Err(Error::invalid(
                &self.layer,
                format!("when num_oov_indices=0 all inputs should be in vocabulary, found OOV value {key:?}; consider setting num_oov_indices=1"),
            )),
            1 => Ok(self.oov_start_index() as i64),
            n => Ok((self.oov_start_index() + key.oov_bucket(n, &self.layer)?) as i64),
        }
    }

    /// Keras's `invert=True` lookup: index → token (index 0 → the mask token when one is set,
    /// unknown indices → the OOV token).
    pub fn token_of(&self, index: i64) -> K {
        if index == 0 {
            if let Some(m) = &self.mask_token {
                return m.clone();
            }
        }
        let start = self.token_start_index() as i64;
        if index >= start && ((index - start) as usize) < self.tokens.len() {
            return self.tokens[(index - start) as usize].clone();
        }
        self.oov_token.clone()
    }

    /// The encoding width: `max_tokens` when padding, else the vocabulary size.
    pub fn depth(&self) -> Result<usize> {
        if self.pad_to_max_tokens {
            if let Some(m) = self.max_tokens {
                return Ok(m);
            }
        }
        if self.tokens.is_empty() && self.output_mode != OutputMode::Int {
            return Err(Error::invalid(
                &self.layer,
                format!(
                    "when using output_mode={:?} and pad_to_max_tokens=false, you must set the layer's vocabulary before calling it: pass a vocabulary argument to the layer, or call adapt with some sample data",
                    self.output_mode.as_str()
                ),
            ));
        }
        Ok(self.vocabulary_size())
    }

    /// Looks up `keys` laid out with `shape` and encodes them as `output_mode` asks.
    pub fn lookup(&self, keys: &[K], shape: &[usize]) -> Result<Tensor> {
        let idx: Vec<i64> = keys
            .iter()
            .map(|k| self.index_of(k))
            .collect::<Result<_>>()?;
        self.encode(&idx, shape)
    }

    /// Encodes already looked-up indices (`shape` is the input's) for the output mode.
    pub fn encode(&self, idx: &[i64], shape: &[usize]) -> Result<Tensor> {
        if self.output_mode == OutputMode::Int {
            return Tensor::from_vec(idx.to_vec(), shape);
        }
        let depth = self.depth()?;
        let mode = match self.output_mode {
            OutputMode::TfIdf => OutputMode::Count,
            m => m,
        };
        let (vals, out_shape) = encode_categorical(&self.layer, idx, shape, mode, depth, None)?;
        if self.output_mode == OutputMode::TfIdf {
            let idf = self.idf.as_deref().ok_or_else(|| {
                Error::invalid(&self.layer, "when output_mode is \"tf_idf\", idf_weights must be provided (set a vocabulary with idf_weights, or adapt)")
            })?;
            let data: Vec<f32> = vals
                .iter()
                .enumerate()
                .map(|(i, &c)| c as f32 * idf.get(i % depth).copied().unwrap_or(0.0))
                .collect();
            return Tensor::from_vec(data, &out_shape);
        }
        Tensor::from_vec(vals.into_iter().map(|v| v as i64).collect(), &out_shape)
    }

    /// Encodes per-document index lists (ragged rows, as TextVectorization produces) for the
    /// non-`"int"` modes: one output row per document.
    pub fn encode_ragged(&self, rows: &[Vec<i64>]) -> Result<Tensor> {
        let depth = self.depth()?;
        let mut out = Vec::with_capacity(rows.len() * depth);
        for row in rows {
            let t = self.encode(row, &[row.len()])?;
            // one_hot of a rank-1 row is (len, depth); Keras's TextVectorization only ever
            // encodes split documents with multi_hot/count/tf_idf, so rows are (depth,).
            out.push(t);
        }
        if self.output_mode == OutputMode::TfIdf {
            let mut data = Vec::with_capacity(rows.len() * depth);
            for t in &out {
                data.extend(t.to_vec::<f32>()?);
            }
            Tensor::from_vec(data, &[rows.len(), depth])
        } else {
            let mut data = Vec::with_capacity(rows.len() * depth);
            for t in &out {
                data.extend(t.to_vec::<i64>()?);
            }
            Tensor::from_vec(data, &[rows.len(), depth])
        }
    }
}

/// Keras's `encode_categorical_inputs` for `"one_hot"`, `"multi_hot"` and `"count"` (TF backend),
/// returning the values (as f64) and the output shape:
/// - a scalar input is one sample of one value;
/// - `one_hot`: a trailing axis of size 1 (rank > 1) is replaced by `depth`, otherwise `depth` is
///   appended; values outside `[0, depth)` give all-zero rows (as `tf.one_hot`);
/// - `multi_hot`/`count` of rank ≤ 2 (TF's bincount path): the last axis is the sample, values
///   `≥ depth` are dropped (as `tf.math.bincount(maxlength=depth)`), **negative values are an
///   error** (TF's "Input 'in' must be non-negative"), `count_weights` weight each count;
/// - rank > 2: `multi_hot` reduces the last axis, `count` reduces **axis 1** (Keras's
///   `reduction_axis = 1` quirk, reproduced), out-of-range values are ignored.
///
/// `DROPPED` indices (a lookup layer's mask token) are ignored in every mode.
pub fn encode_categorical(
    layer: &str,
    values: &[i64],
    shape: &[usize],
    mode: OutputMode,
    depth: usize,
    count_weights: Option<&[f64]>,
) -> Result<(Vec<f64>, Vec<usize>)> {
    let shape: Vec<usize> = if shape.is_empty() {
        vec![1]
    } else {
        shape.to_vec()
    };
    let in_range = |v: i64| v >= 0 && (v as u64) < depth as u64;
    match mode {
        OutputMode::OneHot => {
            let mut out_shape = shape.clone();
            if out_shape.len() > 1 && out_shape[out_shape.len() - 1] == 1 {
                out_shape.pop();
            }
            out_shape.push(depth);
            let mut out = vec![0.0; values.len() * depth];
            for (i, &v) in values.iter().enumerate() {
                if in_range(v) {
                    out[i * depth + v as usize] = 1.0;
                }
            }
            Ok((out, out_shape))
        }
        OutputMode::MultiHot | OutputMode::Count | OutputMode::TfIdf => {
            let binary = mode == OutputMode::MultiHot;
            let rank = shape.len();
            if rank <= 2 {
                let len = shape[rank - 1];
                let rows = if rank == 1 { 1 } else { shape[0] };
                let mut out = vec![0.0; rows * depth];
                for (i, &v) in values.iter().enumerate() {
                    if v == DROPPED {
                        continue;
                    }
                    if v < 0 {
                        return Err(Error::invalid(
                            layer,
                            format!(
                                "input values must be non-negative for output_mode={:?}, found {v} at flat position {i}",
                                mode.as_str()
                            ),
                        ));
                    }
                    if !in_range(v) {
                        continue;
                    }
                    let r = i.checked_div(len).unwrap_or(0);
                    let slot = &mut out[r * depth + v as usize];
                    let w = count_weights.map(|w| w[i]).unwrap_or(1.0);
                    if binary {
                        *slot = 1.0;
                    } else {
                        *slot += w;
                    }
                }
                let out_shape = if rank == 1 {
                    vec![depth]
                } else {
                    vec![shape[0], depth]
                };
                return Ok((out, out_shape));
            }
            // rank > 2: reduce the last axis (multi_hot) or axis 1 (count).
            let axis = if binary { rank - 1 } else { 1 };
            let outer: usize = shape[..axis].iter().product();
            let n = shape[axis];
            let inner: usize = shape[axis + 1..].iter().product();
            let mut out = vec![0.0; outer * inner * depth];
            for o in 0..outer {
                for k in 0..n {
                    for j in 0..inner {
                        let i = (o * n + k) * inner + j;
                        let v = values[i];
                        if v == DROPPED || !in_range(v) {
                            continue;
                        }
                        let slot = &mut out[(o * inner + j) * depth + v as usize];
                        let w = count_weights.map(|w| w[i]).unwrap_or(1.0);
                        if binary {
                            *slot = 1.0;
                        } else {
                            *slot += w;
                        }
                    }
                }
            }
            let mut out_shape: Vec<usize> = shape[..axis].to_vec();
            out_shape.extend_from_slice(&shape[axis + 1..]);
            out_shape.push(depth);
            Ok((out, out_shape))
        }
        OutputMode::Int => Ok((values.iter().map(|&v| v as f64).collect(), shape)),
    }
}

/// The integer values of an id tensor, as `i64`s: int32, int64 or uint8, or a float tensor
/// whose values are all whole numbers (ferroflow models feed float32 inputs by default; a
/// fractional or non-finite value is an error naming the layer and the position).
pub fn int_values(layer: &str, x: &Tensor) -> Result<Vec<i64>> {
    use ferroflow_core::DType;
    match x.dtype() {
        DType::I64 => x.to_vec::<i64>(),
        DType::I32 => Ok(x.to_vec::<i32>()?.into_iter().map(i64::from).collect()),
        DType::U8 => Ok(x.to_vec::<u8>()?.into_iter().map(i64::from).collect()),
        d if d.is_float() => x
            .to_f64_vec()
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Ok(v as i64)
                } else {
                    Err(Error::invalid(
                        layer,
                        format!("expected integer ids, found {v} at flat position {i}"),
                    ))
                }
            })
            .collect(),
        d => Err(Error::dtype(
            layer,
            "expected an integer tensor (int32, int64, uint8) or whole-number floats",
            &[d],
        )),
    }
}

/// The output shape of an encoding (Keras's `compute_output_shape` of the lookup layers and
/// `CategoryEncoding`, following [`encode_categorical`]'s rules; unknown sizes stay unknown).
pub fn encoded_shape(
    shape: &[Option<usize>],
    mode: OutputMode,
    depth: usize,
) -> Vec<Option<usize>> {
    let shape: Vec<Option<usize>> = if shape.is_empty() {
        vec![Some(1)]
    } else {
        shape.to_vec()
    };
    let rank = shape.len();
    let mut out = match mode {
        OutputMode::Int => return shape,
        OutputMode::OneHot => {
            let mut s = shape.clone();
            if rank > 1 && s[rank - 1] == Some(1) {
                s.pop();
            }
            s
        }
        OutputMode::Count | OutputMode::TfIdf if rank > 2 => {
            let mut s = shape.clone();
            s.remove(1);
            s
        }
        _ => {
            if rank == 1 {
                Vec::new()
            } else {
                shape[..rank - 1].to_vec()
            }
        }
    };
    out.push(Some(depth));
    out
}
