//! `keras.layers.Hashing`.

use ferroflow_core::{DType, Error, Result, Tensor};
use serde_json::{json, Value};

use super::farmhash::hash_bucket_fast;
use super::index_lookup::{encode_categorical, encoded_shape, OutputMode};
use super::layer::{single_input, Layer, LayerBase};
use super::string_lookup::texts_from_tensor;
use crate::backend::Shape;

/// `keras.layers.Hashing(num_bins, mask_value=None, output_mode="int")`: hashes values into
/// `num_bins` bins with TensorFlow's FarmHash64 (`tf.strings.to_hash_bucket_fast`), reproduced
/// bit for bit (checked against real Keras). As in Keras, integers are hashed as their decimal
/// string (`tf.as_string`), floats are first truncated to int64; with a `mask_value`, that value
/// goes to bin 0 and the others to `1 + hash mod (num_bins - 1)`. `"int"` outputs int64,
/// `"one_hot"` / `"multi_hot"` / `"count"` float32 (`CategoryEncoding`'s rank rules; for
/// `"one_hot"` a trailing axis of size 1 is squeezed first).
///
/// Numeric tensors go through the [`Layer`] interface; strings through
/// [`call_strings`](Hashing::call_strings) and text-line tensors through
/// [`call_line`](Hashing::call_line) (see [`StringLookup`](super::StringLookup) on strings in
/// ferroflow). Keras's `salt` (SipHash) and `sparse` are not supported.
///
/// ```
/// use ferroflow_keras::layers::Hashing;
/// let h = Hashing::new(5);
/// let y = h.call_strings(&["a", "b", "hello", "a"], &[2, 2])?;
/// assert_eq!(y.to_vec::<i64>()?, vec![4, 2, 1, 4]); // as real Keras
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Hashing {
    base: LayerBase,
    /// The number of bins (≥ 1).
    pub num_bins: usize,
    mask_value: Option<String>,
    mode: OutputMode,
}

impl Hashing {
    /// `Hashing(num_bins)` (checked when called: `num_bins` must be ≥ 1).
    pub fn new(num_bins: usize) -> Hashing {
        Hashing {
            base: LayerBase::new("Hashing"),
            num_bins,
            mask_value: None,
            mode: OutputMode::Int,
        }
    }

    /// A string mask value (bin 0).
    pub fn mask_value(mut self, mask: &str) -> Self {
        self.mask_value = Some(mask.to_string());
        self
    }

    /// An integer mask value (bin 0).
    pub fn mask_value_int(mut self, mask: i64) -> Self {
        self.mask_value = Some(mask.to_string());
        self
    }

    /// `"int"`, `"one_hot"`, `"multi_hot"` or `"count"`.
    pub fn output_mode(mut self, mode: &str) -> Result<Self> {
        let m = OutputMode::parse(&self.base.name, mode)?;
        if m == OutputMode::TfIdf {
            return Err(Error::invalid(
                &self.base.name,
                "Hashing's output_mode must be one of \"int\", \"one_hot\", \"multi_hot\", \"count\"",
            ));
        }
        self.mode = m;
        Ok(self)
    }

    /// The bin of one value's string form (Keras's `_hash_values_to_bins`).
    pub fn bin(&self, value: &str) -> i64 {
        let mut bins = self.num_bins as u64;
        if let (Some(mask), true) = (&self.mask_value, bins > 1) {
            if mask == value {
                return 0;
            }
            bins -= 1;
            return 1 + hash_bucket_fast(value.as_bytes(), bins) as i64;
        }
        hash_bucket_fast(value.as_bytes(), bins) as i64
    }

    fn encode(&self, bins: Vec<i64>, shape: &[usize]) -> Result<Tensor> {
        if self.num_bins == 0 {
            return Err(Error::invalid(&self.base.name, "num_bins must be ≥ 1"));
        }
        if self.mode == OutputMode::Int {
            return Tensor::from_vec(bins, shape);
        }
        let mut shape = shape.to_vec();
        if self.mode == OutputMode::OneHot && shape.last() == Some(&1) {
            shape.pop();
        }
        let (out, s) = encode_categorical(
            &self.base.name,
            &bins,
            &shape,
            self.mode,
            self.num_bins,
            None,
        )?;
        Tensor::from_f64_slice(DType::F32, &out, &s)
    }

    /// Hashes `strings` laid out as `shape` (`&[]` for one scalar string).
    pub fn call_strings<S: AsRef<str>>(&self, strings: &[S], shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != strings.len() {
            return Err(Error::invalid(
                &self.base.name,
                format!("{} strings do not fill the shape {shape:?}", strings.len()),
            ));
        }
        if self.num_bins == 0 {
            return Err(Error::invalid(&self.base.name, "num_bins must be ≥ 1"));
        }
        let bins = strings.iter().map(|s| self.bin(s.as_ref())).collect();
        self.encode(bins, shape)
    }

    /// Hashes a text-line tensor (rank-1 uint8: one string; rank-2: a NUL-padded batch).
    pub fn call_line(&self, line: &Tensor) -> Result<Tensor> {
        let (texts, shape) = texts_from_tensor(&self.base.name, line)?;
        self.call_strings(&texts, &shape)
    }
}

impl Layer for Hashing {
    fn class_name(&self) -> &str {
        "Hashing"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        if self.num_bins == 0 {
            return Err(Error::invalid(&self.base.name, "num_bins must be ≥ 1"));
        }
        let strings: Vec<String> = match x.dtype() {
            DType::I64 => x.to_vec::<i64>()?.iter().map(i64::to_string).collect(),
            DType::I32 => x.to_vec::<i32>()?.iter().map(i32::to_string).collect(),
            DType::U8 => x.to_vec::<u8>()?.iter().map(u8::to_string).collect(),
            d if d.is_float() => x
                .to_f64_vec()
                .iter()
                .map(|&v| (v.trunc() as i64).to_string())
                .collect(),
            d => {
                return Err(Error::dtype(
                    &self.base.name,
                    "expected a numeric tensor (strings go through call_strings)",
                    &[d],
                ))
            }
        };
        let bins = strings.iter().map(|s| self.bin(s)).collect();
        Ok(vec![self.encode(bins, x.shape())?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let mut shape = super::pool_utils::first_shape(&self.base.name, input_shapes)?.clone();
        if self.mode == OutputMode::OneHot && shape.last() == Some(&Some(1)) {
            shape.pop();
        }
        Ok(vec![encoded_shape(&shape, self.mode, self.num_bins)])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "num_bins": self.num_bins,
            "mask_value": self.mask_value,
            "salt": Value::Null,
            "output_mode": self.mode.as_str(),
            "sparse": false,
        })
    }
}
