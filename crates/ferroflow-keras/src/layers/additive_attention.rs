//! `keras.layers.AdditiveAttention` (Bahdanau-style attention).

use ferroflow_core::{ops, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::attention::{apply_scores, split_qvk, CallFlags};
use super::layer::{Layer, LayerBase};
use crate::backend::{fmt_shape, Shape};
use crate::initializers::Initializer;

/// `keras.layers.AdditiveAttention(use_scale=True, dropout=0.0)`: Bahdanau-style attention.
/// Inputs `[query, value]` or `[query, value, key]`, shapes as [`Attention`](super::Attention).
///
/// As Keras 3.15: scores `Σ_d scale_d · tanh(q_d + k_d)` with the weight `scale` `[dim]`
/// (glorot-uniform; `1` without `use_scale`); then the same masking (value mask, causal mask:
/// `-1e9`), softmax, dropout, `· value` and query-mask zeroing as `Attention`. The output
/// carries the query's mask.
///
/// ```
/// use ferroflow_keras::layers::{AdditiveAttention, LayerHandle};
/// use ferroflow_core::{ops, DType};
/// let att = LayerHandle::new(AdditiveAttention::new());
/// let q = ops::ones(&[2, 3, 4], DType::F32);
/// let v = ops::ones(&[2, 5, 4], DType::F32);
/// assert_eq!(att.call_many(&[q, v], false)?[0].shape(), &[2, 3, 4]);
/// assert_eq!(att.lock().weights()[0].shape(), vec![4]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct AdditiveAttention {
    base: LayerBase,
    /// Keras's `use_scale`: learn a per-feature scale of the scores.
    pub use_scale: bool,
    /// Dropout rate on the attention distribution (training only).
    pub dropout: f64,
    flags: CallFlags,
    scale: Option<Variable>,
}

impl Default for AdditiveAttention {
    fn default() -> Self {
        AdditiveAttention::new()
    }
}

impl AdditiveAttention {
    /// `AdditiveAttention()` with Keras's defaults.
    pub fn new() -> AdditiveAttention {
        AdditiveAttention {
            base: LayerBase::new("AdditiveAttention"),
            use_scale: true,
            dropout: 0.0,
            flags: CallFlags::default(),
            scale: None,
        }
    }

    /// Keras's `use_scale`.
    pub fn use_scale(mut self, yes: bool) -> Self {
        self.use_scale = yes;
        self
    }

    /// Keras's `dropout`.
    pub fn dropout(mut self, rate: f64) -> Self {
        self.dropout = rate;
        self
    }

    /// Keras's call argument `use_causal_mask=True` on every call.
    pub fn use_causal_mask(mut self, yes: bool) -> Self {
        self.flags.causal = yes;
        self
    }

    /// Keras's call argument `return_attention_scores=True` on every call (second output).
    pub fn return_attention_scores(mut self, yes: bool) -> Self {
        self.flags.return_scores = yes;
        self
    }

    fn run(
        &mut self,
        inputs: &[Tensor],
        masks: &[Option<Tensor>],
        training: bool,
    ) -> Result<Vec<Tensor>> {
        let (q, v, k) = split_qvk(&self.base.name, inputs)?;
        let t = ops::tanh(&ops::add(
            &ops::expand_dims(q, -2)?,
            &ops::expand_dims(k, -3)?,
        )?)?;
        let t = match &self.scale {
            Some(s) => ops::mul(&t, &ops::cast(&s.value(), q.dtype())?)?,
            None => t,
        };
        let scores = ops::reduce_sum(&t, -1isize, false)?;
        let (flags, dropout) = (self.flags, self.dropout);
        apply_scores(&mut self.base, scores, v, masks, flags, dropout, training)
    }
}

impl Layer for AdditiveAttention {
    fn class_name(&self) -> &str {
        "AdditiveAttention"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let name = self.base.name.clone();
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::invalid(
                &name,
                format!(
                    "layer {name:?}: dropout must be in [0, 1), got {}",
                    self.dropout
                ),
            ));
        }
        if self.use_scale {
            let dim = input_shapes
                .first()
                .and_then(|s| s.last().copied().flatten())
                .ok_or_else(|| {
                    Error::invalid(
                        &name,
                        format!(
                            "layer {name:?}: the query's last axis must be known, got {}",
                            input_shapes
                                .first()
                                .map(|s| fmt_shape(s))
                                .unwrap_or_default()
                        ),
                    )
                })?;
            self.scale = Some(self.base.add_weight(
                "scale",
                &[dim],
                &Initializer::glorot_uniform(),
                None,
                true,
            )?);
        }
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        self.run(inputs, &[], training)
    }

    fn call_with_mask(
        &mut self,
        inputs: &[Tensor],
        masks: &[Option<Tensor>],
        training: bool,
    ) -> Result<Vec<Tensor>> {
        self.run(inputs, masks, training)
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "use_scale": self.use_scale,
            "dropout": self.dropout,
        })
    }
}
