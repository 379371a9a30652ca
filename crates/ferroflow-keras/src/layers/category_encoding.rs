//! `keras.layers.CategoryEncoding`.

use ferroflow_core::{DType, Error, Result, Tensor};
use serde_json::{json, Value};

use super::index_lookup::{encode_categorical, encoded_shape, int_values, OutputMode};
use super::layer::{Layer, LayerBase};
use crate::backend::Shape;

/// `keras.layers.CategoryEncoding(num_tokens, output_mode="multi_hot", sparse=False)`: encodes
/// integer category ids in `[0, num_tokens)` as float32 vectors. Matched Keras 3.15 (TF backend),
/// checked against real Keras:
/// - `"one_hot"`: one vector per element; a trailing axis of size 1 is replaced, so a rank-1
///   input `(batch,)` and `(batch, 1)` both give `(batch, num_tokens)`; `(batch, k)` gives
///   `(batch, k, num_tokens)`. Out-of-range ids give all-zero rows (as `tf.one_hot`).
/// - `"multi_hot"` / `"count"`: the last axis is one sample: `(batch, k)` → `(batch,
///   num_tokens)`, rank-1 `(k,)` → `(num_tokens,)`. `count` may be weighted with
///   [`call_with_count_weights`](CategoryEncoding::call_with_count_weights). As in Keras, a
///   **negative** id is a runtime error (naming the layer and the position) while ids
///   `≥ num_tokens` are silently dropped (TF's `bincount(maxlength=num_tokens)`); rank > 2
///   inputs follow Keras's generic path (`count` sums axis 1 there, a Keras quirk kept as is).
///
/// Inputs are integer tensors (int32, int64, uint8) or floats holding whole numbers (a float32
/// model input); a fractional id is an error. `sparse=True` is not supported
/// (ferroflow has no sparse tensors).
///
/// ```
/// use ferroflow_keras::layers::{CategoryEncoding, LayerHandle};
/// use ferroflow_core::Tensor;
/// let layer = LayerHandle::new(CategoryEncoding::new(4).output_mode("one_hot")?);
/// let y = layer.call(&Tensor::from_vec(vec![3i64, 0], &[2])?, false)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![0., 0., 0., 1., 1., 0., 0., 0.]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct CategoryEncoding {
    base: LayerBase,
    /// The number of categories (the output's last axis).
    pub num_tokens: usize,
    mode: OutputMode,
}

impl CategoryEncoding {
    /// `CategoryEncoding(num_tokens)` in `"multi_hot"` mode. `num_tokens` must be ≥ 1 (checked
    /// when called).
    pub fn new(num_tokens: usize) -> CategoryEncoding {
        CategoryEncoding {
            base: LayerBase::new("CategoryEncoding"),
            num_tokens,
            mode: OutputMode::MultiHot,
        }
    }

    /// `"one_hot"`, `"multi_hot"` (alias `"binary"`) or `"count"`.
    pub fn output_mode(mut self, mode: &str) -> Result<Self> {
        let m = OutputMode::parse(&self.base.name, mode)?;
        if !matches!(
            m,
            OutputMode::OneHot | OutputMode::MultiHot | OutputMode::Count
        ) {
            return Err(Error::invalid(
                &self.base.name,
                format!("unknown output_mode {mode:?} for CategoryEncoding; expected \"one_hot\", \"multi_hot\" or \"count\""),
            ));
        }
        self.mode = m;
        Ok(self)
    }

    /// The output mode's Keras name.
    pub fn mode(&self) -> &'static str {
        self.mode.as_str()
    }

    fn encode(&self, x: &Tensor, weights: Option<&[f64]>) -> Result<Tensor> {
        let name = &self.base.name;
        if self.num_tokens < 1 {
            return Err(Error::invalid(
                name,
                format!(
                    "num_tokens must be >= 1, got num_tokens={}",
                    self.num_tokens
                ),
            ));
        }
        let values = int_values(name, x)?;
        let (out, shape) = encode_categorical(
            name,
            &values,
            x.shape(),
            self.mode,
            self.num_tokens,
            weights,
        )?;
        Tensor::from_f64_slice(DType::F32, &out, &shape)
    }

    /// Keras's `layer(inputs, count_weights=w)`: `"count"` mode only; `w` has the input's shape
    /// and weights each occurrence.
    pub fn call_with_count_weights(&self, x: &Tensor, count_weights: &Tensor) -> Result<Tensor> {
        let name = &self.base.name;
        if self.mode != OutputMode::Count {
            return Err(Error::invalid(
                name,
                format!(
                    "count_weights is not used when output_mode is not \"count\" (it is {:?})",
                    self.mode.as_str()
                ),
            ));
        }
        if count_weights.shape() != x.shape() {
            return Err(Error::shape(
                name,
                "count_weights must have the input's shape",
                &[x.shape(), count_weights.shape()],
            ));
        }
        // Keras casts the weights to the layer's float32 compute dtype.
        let w: Vec<f64> = count_weights
            .to_f64_vec()
            .into_iter()
            .map(|v| v as f32 as f64)
            .collect();
        self.encode(x, Some(&w))
    }
}

impl Layer for CategoryEncoding {
    fn class_name(&self) -> &str {
        "CategoryEncoding"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = super::layer::single_input(&self.base.name, inputs)?;
        Ok(vec![self.encode(x, None)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let shape = super::pool_utils::first_shape(&self.base.name, input_shapes)?;
        Ok(vec![encoded_shape(shape, self.mode, self.num_tokens)])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "num_tokens": self.num_tokens,
            "output_mode": self.mode.as_str(),
            "sparse": false,
        })
    }
}
