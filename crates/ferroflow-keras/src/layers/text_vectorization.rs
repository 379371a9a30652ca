//! `keras.layers.TextVectorization`.

use std::sync::Arc;

use ferroflow_core::{Error, Result, Tensor};
use ferroflow_data::Dataset;
use serde_json::{json, Value};

use super::index_lookup::{IndexLookup, OutputMode};
use super::integer_lookup::first_tensor;
use super::layer::LayerBase;
use super::string_lookup::texts_from_tensor;

/// A custom standardization (Keras's callable `standardize`).
pub type StandardizeFn = Arc<dyn Fn(&str) -> String + Send + Sync>;
/// A custom split (Keras's callable `split`).
pub type SplitFn = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

/// Keras's `standardize` argument.
#[derive(Clone)]
pub enum Standardize {
    /// `None`: texts are used as they are.
    None,
    /// `"lower"`: ASCII lowercase (TF's `tf.strings.lower` without an encoding, which leaves
    /// non-ASCII letters such as `É` unchanged).
    Lower,
    /// `"strip_punctuation"`: removes the 32 ASCII punctuation characters
    /// (``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``, Keras's regex).
    StripPunctuation,
    /// `"lower_and_strip_punctuation"` (the default): both.
    LowerAndStripPunctuation,
    /// A callable.
    Custom(StandardizeFn),
}

impl Standardize {
    fn apply(&self, text: &str) -> String {
        let lower = matches!(
            self,
            Standardize::Lower | Standardize::LowerAndStripPunctuation
        );
        let strip = matches!(
            self,
            Standardize::StripPunctuation | Standardize::LowerAndStripPunctuation
        );
        match self {
            Standardize::Custom(f) => f(text),
            _ => text
                .chars()
                .filter(|c| !(strip && c.is_ascii_punctuation()))
                .map(|c| if lower { c.to_ascii_lowercase() } else { c })
                .collect(),
        }
    }

    fn config(&self) -> Value {
        match self {
            Standardize::None => Value::Null,
            Standardize::Lower => json!("lower"),
            Standardize::StripPunctuation => json!("strip_punctuation"),
            Standardize::LowerAndStripPunctuation => json!("lower_and_strip_punctuation"),
            Standardize::Custom(_) => json!("custom"),
        }
    }
}

/// Keras's `split` argument.
#[derive(Clone)]
pub enum Split {
    /// `None`: each text is one token.
    None,
    /// `"whitespace"` (the default): splits on runs of ASCII whitespace (space, `\t`, `\n`,
    /// `\v`, `\f`, `\r`, as TF's `tf.strings.split`), dropping leading/trailing whitespace.
    Whitespace,
    /// `"character"`: one token per Unicode character.
    Character,
    /// A callable.
    Custom(SplitFn),
}

impl Split {
    fn apply(&self, text: String) -> Vec<String> {
        match self {
            Split::None => vec![text],
            Split::Whitespace => text
                .split([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            Split::Character => text.chars().map(|c| c.to_string()).collect(),
            Split::Custom(f) => f(&text),
        }
    }

    fn config(&self) -> Value {
        match self {
            Split::None => Value::Null,
            Split::Whitespace => json!("whitespace"),
            Split::Character => json!("character"),
            Split::Custom(_) => json!("custom"),
        }
    }
}

/// `keras.layers.TextVectorization(max_tokens=None, standardize="lower_and_strip_punctuation",
/// split="whitespace", ngrams=None, output_mode="int", output_sequence_length=None,
/// pad_to_max_tokens=False, vocabulary=None, idf_weights=None)`: texts → token indices or
/// bag-of-words vectors. A string-taking layer: see [`StringLookup`](super::StringLookup) for
/// how ferroflow handles strings (typed methods [`call_texts`](TextVectorization::call_texts),
/// [`call_line`](TextVectorization::call_line), [`adapt_texts`](TextVectorization::adapt_texts),
/// [`adapt_dataset`](TextVectorization::adapt_dataset); calls take `&self` so an adapted layer
/// can be shared by a `Dataset::map` closure).
///
/// Matched Keras 3.15 (checked against real Keras): standardize, then split, then ngrams
/// (for `ngrams=n`, widths `1..=n`; all n-grams of the first width, then of the next, joined by
/// a space; a text shorter than a width gives none of it), then a `StringLookup` with mask `""`
/// and OOV `"[UNK]"`: in `"int"` mode `get_vocabulary()` starts with `""` and `"[UNK]"`, in the
/// other modes with `"[UNK]"`; the vocabulary is sorted by descending frequency, ties by
/// descending UTF-8 bytes. `"int"` output: int64 `(batch, L)`, `L` = `output_sequence_length`
/// (truncating or zero-padding) or the longest text of the batch; `"multi_hot"` / `"count"`:
/// int64 `(batch, vocab)`; `"tf_idf"`: float32, `count × ln(1 + num_documents / (1 + df))`,
/// the OOV slot weighted by the mean idf.
///
/// ```
/// use ferroflow_keras::layers::TextVectorization;
/// let mut tv = TextVectorization::new().output_sequence_length(Some(4))?;
/// tv.adapt_texts(&["The cat sat.", "The dog!"])?;
/// assert_eq!(tv.get_vocabulary(), ["", "[UNK]", "the", "sat", "dog", "cat"]);
/// let y = tv.call_texts(&["the DOG, the bird"])?;
/// assert_eq!(y.to_vec::<i64>()?, vec![2, 4, 2, 1]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone)]
pub struct TextVectorization {
    base: LayerBase,
    lookup: IndexLookup<String>,
    standardize: Standardize,
    split: Split,
    ngrams: Option<Vec<usize>>,
    ngrams_arg: Value,
    output_sequence_length: Option<usize>,
}

impl Default for TextVectorization {
    fn default() -> Self {
        TextVectorization::new()
    }
}

impl TextVectorization {
    /// `TextVectorization()` with Keras's defaults.
    pub fn new() -> TextVectorization {
        let base = LayerBase::new("TextVectorization");
        let lookup = IndexLookup::new(&base.name, Some(String::new()), "[UNK]".to_string());
        TextVectorization {
            base,
            lookup,
            standardize: Standardize::LowerAndStripPunctuation,
            split: Split::Whitespace,
            ngrams: None,
            ngrams_arg: Value::Null,
            output_sequence_length: None,
        }
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.base.name
    }

    /// Names the layer (Keras's `name=`).
    pub fn named(mut self, name: &str) -> Self {
        self.base.name = name.to_string();
        self.lookup.layer = name.to_string();
        self
    }

    /// The largest vocabulary, special tokens included (> 1).
    pub fn max_tokens(mut self, max_tokens: Option<usize>) -> Result<Self> {
        self.lookup.max_tokens = max_tokens;
        self.lookup.validate()?;
        Ok(self)
    }

    /// The standardization.
    pub fn standardize(mut self, standardize: Standardize) -> Self {
        self.standardize = standardize;
        self
    }

    /// Keras's string spelling of `standardize`: `"lower_and_strip_punctuation"`, `"lower"`,
    /// `"strip_punctuation"` (or `None` via [`standardize`](Self::standardize)).
    pub fn standardize_str(self, standardize: &str) -> Result<Self> {
        let s = match standardize {
            "lower_and_strip_punctuation" => Standardize::LowerAndStripPunctuation,
            "lower" => Standardize::Lower,
            "strip_punctuation" => Standardize::StripPunctuation,
            other => {
                return Err(Error::invalid(
                    &self.base.name,
                    format!("unknown standardize {other:?}; expected \"lower_and_strip_punctuation\", \"lower\" or \"strip_punctuation\""),
                ))
            }
        };
        Ok(self.standardize(s))
    }

    /// The split.
    pub fn split(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// Keras's `ngrams=n`: n-grams of widths `1..=n`.
    pub fn ngrams(mut self, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(Error::invalid(&self.base.name, "ngrams must be ≥ 1"));
        }
        self.ngrams = Some((1..=n).collect());
        self.ngrams_arg = json!(n);
        Ok(self)
    }

    /// Keras's `ngrams=(a, b, ...)`: n-grams of exactly these widths, in this order.
    pub fn ngram_widths(mut self, widths: &[usize]) -> Result<Self> {
        if widths.contains(&0) {
            return Err(Error::invalid(&self.base.name, "ngram widths must be ≥ 1"));
        }
        self.ngrams = Some(widths.to_vec());
        self.ngrams_arg = json!(widths);
        Ok(self)
    }

    /// `"int"`, `"multi_hot"`, `"count"` or `"tf_idf"`.
    pub fn output_mode(mut self, mode: &str) -> Result<Self> {
        let m = OutputMode::parse(&self.base.name, mode)?;
        if m == OutputMode::OneHot {
            return Err(Error::invalid(
                &self.base.name,
                "TextVectorization's output_mode must be one of \"int\", \"multi_hot\", \"count\", \"tf_idf\"",
            ));
        }
        if m != OutputMode::Int && self.output_sequence_length.is_some() {
            return Err(Error::invalid(
                &self.base.name,
                "output_sequence_length must not be set if output_mode is not \"int\"",
            ));
        }
        self.lookup.output_mode = m;
        self.lookup.validate()?;
        Ok(self)
    }

    /// `"int"` mode: pad or truncate every output to this length.
    pub fn output_sequence_length(mut self, length: Option<usize>) -> Result<Self> {
        if length.is_some() && self.lookup.output_mode != OutputMode::Int {
            return Err(Error::invalid(
                &self.base.name,
                "output_sequence_length must not be set if output_mode is not \"int\"",
            ));
        }
        self.output_sequence_length = length;
        Ok(self)
    }

    /// Pad multi_hot/count/tf_idf outputs to `max_tokens`.
    pub fn pad_to_max_tokens(mut self, pad: bool) -> Result<Self> {
        self.lookup.pad_to_max_tokens = pad;
        self.lookup.validate()?;
        Ok(self)
    }

    /// Keras's `vocabulary=` (set the other builders first).
    pub fn vocabulary<S: AsRef<str>>(mut self, vocabulary: &[S]) -> Result<Self> {
        self.set_vocabulary(vocabulary, None)?;
        Ok(self)
    }

    /// Keras's `vocabulary=` with `idf_weights=` (`"tf_idf"`).
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

    /// Keras's `get_vocabulary()`.
    pub fn get_vocabulary(&self) -> Vec<String> {
        self.lookup.get_vocabulary(true)
    }

    /// `get_vocabulary(include_special_tokens=False)`.
    pub fn get_vocabulary_tokens(&self) -> Vec<String> {
        self.lookup.get_vocabulary(false)
    }

    /// Keras's `vocabulary_size()`.
    pub fn vocabulary_size(&self) -> usize {
        self.lookup.vocabulary_size()
    }

    /// The `"tf_idf"` weights, one per output slot.
    pub fn idf_weights(&self) -> Option<Vec<f32>> {
        self.lookup.idf_weights().map(|w| w.to_vec())
    }

    /// The tokens of one text: standardize, split, ngrams (Keras's `_preprocess`).
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let text = self.standardize.apply(text);
        let tokens = self.split.apply(text);
        match &self.ngrams {
            None => tokens,
            Some(widths) => {
                let mut out = Vec::new();
                for &w in widths {
                    if tokens.len() >= w {
                        for win in tokens.windows(w) {
                            out.push(win.join(" "));
                        }
                    }
                }
                out
            }
        }
    }

    /// Keras's `adapt(texts)`: one document per text.
    pub fn adapt_texts<S: AsRef<str>>(&mut self, texts: &[S]) -> Result<()> {
        let docs: Vec<Vec<String>> = texts.iter().map(|t| self.tokenize(t.as_ref())).collect();
        self.lookup.adapt(docs)
    }

    /// Keras's `adapt(dataset)` on text lines (`TextLineDataset`): each element (or the first
    /// tensor of a tuple) is a uint8 line tensor, or a rank-2 uint8 batch of NUL-padded lines.
    pub fn adapt_dataset(&mut self, dataset: &Dataset) -> Result<()> {
        let mut docs: Vec<Vec<String>> = Vec::new();
        for element in dataset.iter() {
            let x = first_tensor(&self.base.name, &element?)?;
            let (texts, _) = texts_from_tensor(&self.base.name, &x)?;
            docs.extend(texts.iter().map(|t| self.tokenize(t)));
        }
        self.lookup.adapt(docs)
    }

    /// Vectorizes a batch of texts: `(batch, L)` int64 in `"int"` mode, `(batch, vocab)`
    /// otherwise.
    pub fn call_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Tensor> {
        let mut rows: Vec<Vec<i64>> = Vec::with_capacity(texts.len());
        for t in texts {
            let toks = self.tokenize(t.as_ref());
            rows.push(
                toks.iter()
                    .map(|k| self.lookup.index_of(k))
                    .collect::<Result<_>>()?,
            );
        }
        if self.lookup.output_mode != OutputMode::Int {
            return self.lookup.encode_ragged(&rows);
        }
        let len = self
            .output_sequence_length
            .unwrap_or_else(|| rows.iter().map(Vec::len).max().unwrap_or(0));
        let mut data = vec![0i64; rows.len() * len];
        for (r, row) in rows.iter().enumerate() {
            for (c, &v) in row.iter().take(len).enumerate() {
                data[r * len + c] = v;
            }
        }
        Tensor::from_vec(data, &[rows.len(), len])
    }

    /// Vectorizes a text-line tensor: a rank-1 uint8 line gives a rank-1 result (Keras's scalar
    /// string input: `(L,)` or `(vocab,)`), a rank-2 uint8 batch of NUL-padded lines a rank-2
    /// result. This is the function to `map` over a `TextLineDataset`.
    pub fn call_line(&self, line: &Tensor) -> Result<Tensor> {
        let (texts, shape) = texts_from_tensor(&self.base.name, line)?;
        let y = self.call_texts(&texts)?;
        if shape.is_empty() {
            let s = y.shape()[1..].to_vec();
            return ferroflow_core::ops::reshape(
                &y,
                &s.iter().map(|&d| d as isize).collect::<Vec<_>>(),
            );
        }
        Ok(y)
    }

    /// Keras's `get_config()`.
    pub fn get_config(&self) -> Value {
        let vocab: Value = if self.lookup.has_input_vocabulary {
            self.lookup.tokens().iter().map(|t| json!(t)).collect()
        } else {
            Value::Null
        };
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "max_tokens": self.lookup.max_tokens,
            "standardize": self.standardize.config(),
            "split": self.split.config(),
            "ngrams": self.ngrams_arg,
            "output_mode": self.lookup.output_mode.as_str(),
            "output_sequence_length": self.output_sequence_length,
            "pad_to_max_tokens": self.lookup.pad_to_max_tokens,
            "sparse": false,
            "ragged": false,
            "vocabulary": vocab,
            "idf_weights": Value::Null,
            "encoding": "utf-8",
            "vocabulary_size": self.lookup.vocabulary_size(),
        })
    }
}
