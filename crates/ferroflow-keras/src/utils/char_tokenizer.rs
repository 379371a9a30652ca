//! A character-level tokenizer: a char ↔ id vocabulary built from a text.

use std::collections::HashMap;

use ferroflow_core::{Error, Result, Tensor};

/// Maps characters to integer ids and back, for character-level models (the job Keras users do
/// with `StringLookup(vocabulary=list(chars))` on `tf.strings.unicode_split`, or the old
/// `Tokenizer(char_level=True)`).
///
/// Ids follow `StringLookup`'s layout: `0` is padding (so `Embedding(mask_zero=true)` masks it),
/// `1` is the out-of-vocabulary id, and the characters of the vocabulary take `2..`, most
/// frequent first (ties: by code point) when built with [`fit`](CharTokenizer::fit).
///
/// ```
/// use ferroflow_keras::utils::CharTokenizer;
/// let tok = CharTokenizer::fit("hello world");
/// assert_eq!(tok.vocabulary_size(), 2 + 8); // padding, OOV, 8 distinct chars
/// let ids = tok.encode("hello");
/// assert_eq!(ids[2], 2); // 'l' is the most frequent character
/// assert_eq!(tok.decode(&ids), "hello");
/// assert_eq!(tok.encode("hex")[2], CharTokenizer::OOV); // 'x' is unknown
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharTokenizer {
    chars: Vec<char>,
    ids: HashMap<char, i64>,
}

impl CharTokenizer {
    /// The padding id.
    pub const PAD: i64 = 0;
    /// The out-of-vocabulary id.
    pub const OOV: i64 = 1;
    /// The character [`decode`](CharTokenizer::decode) writes for the out-of-vocabulary id.
    pub const OOV_CHAR: char = '\u{FFFD}';

    /// Builds the vocabulary from every character of `text`, most frequent first.
    pub fn fit(text: &str) -> CharTokenizer {
        let mut counts: HashMap<char, usize> = HashMap::new();
        for c in text.chars() {
            *counts.entry(c).or_default() += 1;
        }
        let mut chars: Vec<(char, usize)> = counts.into_iter().collect();
        chars.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let chars: Vec<char> = chars.into_iter().map(|(c, _)| c).collect();
        CharTokenizer::from_chars(chars)
    }

    /// A tokenizer with this vocabulary, in this order (ids `2, 3, ...`). Repeated characters
    /// are an error.
    pub fn from_vocabulary(chars: &[char]) -> Result<CharTokenizer> {
        let tok = CharTokenizer::from_chars(chars.to_vec());
        if tok.ids.len() != chars.len() {
            return Err(Error::invalid(
                "CharTokenizer",
                "the vocabulary repeats a character",
            ));
        }
        Ok(tok)
    }

    fn from_chars(chars: Vec<char>) -> CharTokenizer {
        let ids = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as i64 + 2))
            .collect();
        CharTokenizer { chars, ids }
    }

    /// The characters, in id order (id `i + 2` is `vocabulary()[i]`).
    pub fn vocabulary(&self) -> &[char] {
        &self.chars
    }

    /// The number of ids, padding and OOV included: the `input_dim` of an `Embedding` and the
    /// `units` of an output `Dense` over characters.
    pub fn vocabulary_size(&self) -> usize {
        self.chars.len() + 2
    }

    /// The id of one character ([`OOV`](CharTokenizer::OOV) if unknown).
    pub fn id(&self, c: char) -> i64 {
        self.ids.get(&c).copied().unwrap_or(Self::OOV)
    }

    /// The character of an id (`None` for padding, OOV and ids out of range).
    pub fn char_of(&self, id: i64) -> Option<char> {
        if id < 2 {
            return None;
        }
        self.chars.get((id - 2) as usize).copied()
    }

    /// The ids of every character of `text`.
    pub fn encode(&self, text: &str) -> Vec<i64> {
        text.chars().map(|c| self.id(c)).collect()
    }

    /// [`encode`](CharTokenizer::encode) as an int64 tensor `[len]`.
    pub fn encode_tensor(&self, text: &str) -> Result<Tensor> {
        let ids = self.encode(text);
        let n = ids.len();
        Tensor::from_vec(ids, &[n])
    }

    /// The text of some ids: padding is skipped, OOV and unknown ids become
    /// [`OOV_CHAR`](CharTokenizer::OOV_CHAR).
    pub fn decode(&self, ids: &[i64]) -> String {
        ids.iter()
            .filter(|&&id| id != Self::PAD)
            .map(|&id| self.char_of(id).unwrap_or(Self::OOV_CHAR))
            .collect()
    }
}
