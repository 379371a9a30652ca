//! `keras.layers.Attention` (Luong-style dot-product attention) and the score/mask machinery it
//! shares with `AdditiveAttention`.

use ferroflow_core::{ops, DType, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::layer::{Layer, LayerBase};
use crate::backend::Shape;
use crate::initializers::Initializer;

/// How [`Attention`] scores a query against a key (Keras's `score_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreMode {
    /// `"dot"`: `q · kᵀ` (times `scale` with `use_scale`).
    Dot,
    /// `"concat"`: `concat_score_weight · Σ tanh(scale · (q + k))`.
    Concat,
}

/// `keras.layers.Attention(use_scale=False, score_mode="dot", dropout=0.0)`: dot-product
/// attention. Inputs `[query, value]` or `[query, value, key]` (`key` defaults to `value`):
/// `query` `[batch, Tq, dim]`, `value` `[batch, Tv, dim]`; output `[batch, Tq, dim]`.
///
/// As Keras 3.15: scores `q·kᵀ` (`"dot"`, times the scalar weight `scale` with `use_scale`) or
/// `concat_score_weight · Σ tanh(scale·(q + k))` (`"concat"`; weights initialised to ones);
/// where the value's mask is false (or above the diagonal with
/// [`use_causal_mask`](Attention::use_causal_mask)) `1e9` is subtracted from the score; softmax
/// over the value axis; dropout (training); `softmax · value`; positions where the query's mask
/// is false are set to 0. The output carries the query's mask. With
/// [`return_attention_scores`](Attention::return_attention_scores) a second output holds the
/// attention distribution `[batch, Tq, Tv]`.
///
/// ```
/// use ferroflow_keras::layers::{Attention, LayerHandle};
/// use ferroflow_core::{ops, DType};
/// let att = LayerHandle::new(Attention::new());
/// let q = ops::ones(&[2, 3, 4], DType::F32);
/// let v = ops::ones(&[2, 5, 4], DType::F32);
/// assert_eq!(att.call_many(&[q, v], false)?[0].shape(), &[2, 3, 4]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Attention {
    base: LayerBase,
    /// Keras's `use_scale`: learn a scalar scale of the scores.
    pub use_scale: bool,
    /// Keras's `score_mode`.
    pub score_mode: ScoreMode,
    /// Dropout rate on the attention distribution (training only).
    pub dropout: f64,
    pub(crate) flags: CallFlags,
    scale: Option<Variable>,
    concat_score_weight: Option<Variable>,
}

/// Keras's call-time arguments of the attention layers, kept as layer settings.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CallFlags {
    pub causal: bool,
    pub return_scores: bool,
}

impl Default for Attention {
    fn default() -> Self {
        Attention::new()
    }
}

impl Attention {
    /// `Attention()` with Keras's defaults.
    pub fn new() -> Attention {
        Attention {
            base: LayerBase::new("Attention"),
            use_scale: false,
            score_mode: ScoreMode::Dot,
            dropout: 0.0,
            flags: CallFlags::default(),
            scale: None,
            concat_score_weight: None,
        }
    }

    /// Keras's `use_scale`.
    pub fn use_scale(mut self, yes: bool) -> Self {
        self.use_scale = yes;
        self
    }

    /// Keras's `score_mode` (`"dot"` or `"concat"`).
    pub fn score_mode(mut self, mode: ScoreMode) -> Self {
        self.score_mode = mode;
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
}

/// Checks `[query, value(, key)]` and returns `(q, v, k)`.
pub(crate) fn split_qvk<'a>(
    name: &str,
    inputs: &'a [Tensor],
) -> Result<(&'a Tensor, &'a Tensor, &'a Tensor)> {
    let (q, v, k) = match inputs {
        [q, v] => (q, v, v),
        [q, v, k] => (q, v, k),
        _ => {
            return Err(Error::invalid(
                name,
                format!(
                    "layer {name:?} expects [query, value] or [query, value, key], got {} inputs",
                    inputs.len()
                ),
            ))
        }
    };
    let ok = q.rank() == 3
        && v.rank() == 3
        && k.rank() == 3
        && q.shape()[0] == v.shape()[0]
        && k.shape()[0] == v.shape()[0]
        && k.shape()[1] == v.shape()[1]
        && q.shape()[2] == k.shape()[2];
    if !ok {
        return Err(Error::shape(
            name,
            format!(
                "layer {name:?}: query [batch, Tq, dim], value [batch, Tv, dim_v] and key [batch, Tv, dim] must agree"
            ),
            &[q.shape(), v.shape(), k.shape()],
        ));
    }
    Ok((q, v, k))
}

/// Keras's `_calculate_score_mask` + `_apply_scores` + the query mask: the output and the
/// attention distribution.
pub(crate) fn apply_scores(
    base: &mut LayerBase,
    scores: Tensor,
    value: &Tensor,
    masks: &[Option<Tensor>],
    flags: CallFlags,
    dropout: f64,
    training: bool,
) -> Result<Vec<Tensor>> {
    let name = base.name.clone();
    let (b, tq, tv) = (scores.shape()[0], scores.shape()[1], scores.shape()[2]);
    let q_mask = masks.first().cloned().flatten();
    let v_mask = masks.get(1).cloned().flatten();
    for (m, len, what) in [(&q_mask, tq, "query"), (&v_mask, tv, "value")] {
        if let Some(m) = m {
            if m.shape() != [b, len] || m.dtype() != DType::Bool {
                return Err(Error::shape(
                    &name,
                    format!("layer {name:?}: the {what} mask must be boolean [{b}, {len}]"),
                    &[m.shape()],
                ));
            }
        }
    }
    let mut mask = match &v_mask {
        Some(m) => Some(ops::expand_dims(m, -2)?),
        None => None,
    };
    if flags.causal {
        let tri: Vec<bool> = (0..tq).flat_map(|i| (0..tv).map(move |j| i >= j)).collect();
        let tri = Tensor::from_vec(tri, &[1, tq, tv])?;
        mask = Some(match mask {
            Some(m) => ops::logical_and(&m, &tri)?,
            None => tri,
        });
    }
    let dtype = scores.dtype();
    let scores = match &mask {
        Some(m) => ops::where_(m, &scores, &ops::add_scalar(&scores, -1e9)?)?,
        None => scores,
    };
    let weights = ops::softmax(&scores, -1)?;
    let used = if training && dropout > 0.0 {
        ops::dropout(&weights, dropout, base.next_call_seed(), None)?
    } else {
        weights.clone()
    };
    let mut out = ops::matmul(&used, value, false, false)?;
    if let Some(qm) = &q_mask {
        out = ops::where_(
            &ops::expand_dims(qm, -1)?,
            &out,
            &Tensor::scalar_of(dtype, 0.0),
        )?;
    }
    let mut outs = vec![out];
    if flags.return_scores {
        outs.push(weights);
    }
    Ok(outs)
}

impl Attention {
    fn run(
        &mut self,
        inputs: &[Tensor],
        masks: &[Option<Tensor>],
        training: bool,
    ) -> Result<Vec<Tensor>> {
        let (q, v, k) = split_qvk(&self.base.name, inputs)?;
        let dtype = q.dtype();
        let scale = match &self.scale {
            Some(s) => Some(ops::cast(&s.value(), dtype)?),
            None => None,
        };
        let scores = match self.score_mode {
            ScoreMode::Dot => {
                let s = ops::matmul(q, k, false, true)?;
                match &scale {
                    Some(c) => ops::mul(&s, c)?,
                    None => s,
                }
            }
            ScoreMode::Concat => {
                let sum = ops::add(&ops::expand_dims(q, -2)?, &ops::expand_dims(k, -3)?)?;
                let sum = match &scale {
                    Some(c) => ops::mul(&sum, c)?,
                    None => sum,
                };
                let s = ops::reduce_sum(&ops::tanh(&sum)?, -1isize, false)?;
                match &self.concat_score_weight {
                    Some(w) => ops::mul(&s, &ops::cast(&w.value(), dtype)?)?,
                    None => s,
                }
            }
        };
        let (flags, dropout) = (self.flags, self.dropout);
        apply_scores(&mut self.base, scores, v, masks, flags, dropout, training)
    }
}

impl Layer for Attention {
    fn class_name(&self) -> &str {
        "Attention"
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

    fn build(&mut self, _input_shapes: &[Shape]) -> Result<()> {
        if !(0.0..1.0).contains(&self.dropout) {
            let name = self.base.name.clone();
            return Err(Error::invalid(
                &name,
                format!(
                    "layer {name:?}: dropout must be in [0, 1), got {}",
                    self.dropout
                ),
            ));
        }
        if self.use_scale {
            self.scale =
                Some(
                    self.base
                        .add_weight("scale", &[], &Initializer::Ones, None, true)?,
                );
        }
        if self.score_mode == ScoreMode::Concat {
            self.concat_score_weight = Some(self.base.add_weight(
                "concat_score_weight",
                &[],
                &Initializer::Ones,
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
            "score_mode": match self.score_mode { ScoreMode::Dot => "dot", ScoreMode::Concat => "concat" },
            "dropout": self.dropout,
        })
    }
}
