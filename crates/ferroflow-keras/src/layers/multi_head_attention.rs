//! `keras.layers.MultiHeadAttention`.

use ferroflow_core::{ops, DType, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::layer::{Layer, LayerBase};
use crate::backend::{fmt_shape, Shape};
use crate::initializers::Initializer;

/// `keras.layers.MultiHeadAttention(num_heads, key_dim, value_dim=None, dropout=0.0,
/// use_bias=True, output_shape=None, attention_axes=None, kernel_initializer="glorot_uniform",
/// bias_initializer="zeros")`: scaled dot-product attention with `num_heads` heads (Vaswani et
/// al.), as Keras 3.15 computes it.
///
/// **Inputs** (a list, as the functional API's `mha(query, value, key, attention_mask)`):
/// `[query, value]`, `[query, value, key]` or `[query, value, key, attention_mask]`, with
/// `query` `[batch, T, query_dim]`, `value` `[batch, S, value_dim_in]`, `key` `[batch, S,
/// key_dim_in]` (default: `value`) and `attention_mask` `[batch, T, S]` (boolean, or numbers where
/// non-zero means "attend"; pass `key = value` to give a mask without a key). The output is
/// `[batch, T, output_shape or query_dim]`; with [`return_attention_scores`] a second output holds
/// the attention probabilities `[batch, num_heads, T, S]`. Keras's call-time arguments
/// `return_attention_scores` and `use_causal_mask` are builder settings here
/// ([`use_causal_mask`]), or arguments of [`MultiHeadAttention::call_with`].
///
/// **Weights**, in Keras's order and EinsumDense layouts (so Keras weights load unchanged):
/// `query/kernel` `(query_dim, heads, key_dim)`, `query/bias` `(heads, key_dim)`, `key/kernel`
/// `(key_dim_in, heads, key_dim)`, `key/bias`, `value/kernel` `(value_dim_in, heads, value_dim)`,
/// `value/bias` `(heads, value_dim)`, `attention_output/kernel` `(heads, value_dim, out)`,
/// `attention_output/bias` `(out,)`.
///
/// **Masks** (as Keras's `_compute_attention_mask`): the query's mask `[B, T]` becomes
/// `[B, T, 1]`, the value's and key's `[B, 1, S]`, the causal mask is the lower triangle
/// `[1, T, S]`, and all are AND-ed with `attention_mask`. Masked scores are replaced by `-1e9`
/// before the softmax. The output carries the query's mask. Like Keras's fused
/// `dot_product_attention` path (used when `dropout == 0` and no scores are returned), a query
/// row with every position masked averages all values; with `dropout > 0` or
/// `return_attention_scores` Keras zeroes masked probabilities after the softmax (its `Softmax`
/// layer path), and so does this layer. Only attention over the time axis (`attention_axes=None`
/// or `(1,)` on rank-3 inputs) is supported; Keras 3.15's newer `use_gate`, `sliding_window` and
/// flash-attention options are not.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, MultiHeadAttention};
/// use ferroflow_core::{ops, DType};
/// let mha = LayerHandle::new(MultiHeadAttention::new(2, 4));
/// let q = ops::ones(&[3, 5, 8], DType::F32);
/// let v = ops::ones(&[3, 7, 6], DType::F32);
/// let y = mha.call_many(&[q, v], false)?;
/// assert_eq!(y[0].shape(), &[3, 5, 8]);
/// assert_eq!(mha.lock().weights()[0].shape(), vec![8, 2, 4]); // query/kernel
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
///
/// [`return_attention_scores`]: MultiHeadAttention::return_attention_scores
/// [`use_causal_mask`]: MultiHeadAttention::use_causal_mask
pub struct MultiHeadAttention {
    base: LayerBase,
    /// Number of attention heads.
    pub num_heads: usize,
    /// Size of each head's query and key projection.
    pub key_dim: usize,
    /// Size of each head's value projection (`None`: `key_dim`).
    pub value_dim: Option<usize>,
    /// Dropout rate on the attention probabilities (training only).
    pub dropout: f64,
    /// Whether the projections have biases.
    pub use_bias: bool,
    /// Size of the output's last axis (`None`: the query's last axis).
    pub output_shape: Option<usize>,
    causal: bool,
    return_scores: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    attention_axes_error: Option<String>,
    vars: Vec<Variable>,
}

impl MultiHeadAttention {
    /// `MultiHeadAttention(num_heads, key_dim)` with Keras's defaults.
    pub fn new(num_heads: usize, key_dim: usize) -> MultiHeadAttention {
        MultiHeadAttention {
            base: LayerBase::new("MultiHeadAttention"),
            num_heads,
            key_dim,
            value_dim: None,
            dropout: 0.0,
            use_bias: true,
            output_shape: None,
            causal: false,
            return_scores: false,
            kernel_initializer: Initializer::glorot_uniform(),
            bias_initializer: Initializer::Zeros,
            attention_axes_error: None,
            vars: Vec::new(),
        }
    }

    /// Keras's `value_dim`.
    pub fn value_dim(mut self, value_dim: usize) -> Self {
        self.value_dim = Some(value_dim);
        self
    }

    /// Keras's `dropout` (on the attention probabilities, in training).
    pub fn dropout(mut self, rate: f64) -> Self {
        self.dropout = rate;
        self
    }

    /// Keras's `use_bias`.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Keras's `output_shape` (the size of the output's last axis).
    pub fn output_shape(mut self, size: usize) -> Self {
        self.output_shape = Some(size);
        self
    }

    /// Keras's `attention_axes`: only `[1]` (the time axis of rank-3 inputs, the default) is
    /// supported; other axes make the first call fail with an error saying so.
    pub fn attention_axes(mut self, axes: &[isize]) -> Self {
        self.attention_axes_error = if axes == [1] || axes == [-2] {
            None
        } else {
            Some(format!(
                "attention_axes={axes:?} is not supported (only the time axis of rank-3 inputs)"
            ))
        };
        self
    }

    /// Keras's `kernel_initializer` (default `glorot_uniform`).
    pub fn kernel_initializer(mut self, init: Initializer) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// Keras's `bias_initializer` (default `zeros`).
    pub fn bias_initializer(mut self, init: Initializer) -> Self {
        self.bias_initializer = init;
        self
    }

    /// Keras's call argument `use_causal_mask=True` on every call: position `t` of the query
    /// attends only to positions `<= t` of the value (a decoder's self-attention).
    pub fn use_causal_mask(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// Keras's call argument `return_attention_scores=True` on every call: the layer returns a
    /// second output, the attention probabilities `[batch, heads, T, S]`.
    pub fn return_attention_scores(mut self, yes: bool) -> Self {
        self.return_scores = yes;
        self
    }

    fn vd(&self) -> usize {
        self.value_dim.unwrap_or(self.key_dim)
    }

    /// Keras's `mha(query, value, key=None, attention_mask=None, return_attention_scores,
    /// use_causal_mask)` as one call (building the layer on the first): returns the output and,
    /// when `return_attention_scores`, the attention probabilities. Input masks (`query_mask`,
    /// `value_mask`, `key_mask` `[batch, time]`) go in `masks`.
    #[allow(clippy::too_many_arguments)]
    pub fn call_with(
        &mut self,
        query: &Tensor,
        value: &Tensor,
        key: Option<&Tensor>,
        attention_mask: Option<&Tensor>,
        masks: [Option<&Tensor>; 3],
        return_attention_scores: bool,
        use_causal_mask: bool,
        training: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let mut inputs = vec![query.clone(), value.clone()];
        if let Some(k) = key {
            inputs.push(k.clone());
        }
        self.ensure_built_on(&inputs)?;
        let weights: Vec<Tensor> = self.vars.iter().map(|v| v.value()).collect();
        let key = key.unwrap_or(value);
        let mask = self.attention_mask(
            query,
            value,
            attention_mask,
            masks,
            use_causal_mask || self.causal,
        )?;
        self.forward(
            &weights,
            query,
            value,
            key,
            mask.as_ref(),
            return_attention_scores,
            training,
        )
    }

    /// The forward pass with explicit weight values (in [`weights`](Layer::weights) order and the
    /// inputs' float dtype) instead of the variables — e.g. float64 copies for a gradient check.
    /// `attention_mask` is the full boolean mask `[batch or 1, T, S]` (already combined).
    pub fn call_with_weights(
        &mut self,
        weights: &[Tensor],
        query: &Tensor,
        value: &Tensor,
        attention_mask: Option<&Tensor>,
        training: bool,
    ) -> Result<Tensor> {
        self.ensure_built_on(&[query.clone(), value.clone()])?;
        let mask = match attention_mask {
            Some(m) => self.attention_mask(query, value, Some(m), [None, None, None], false)?,
            None => None,
        };
        Ok(self
            .forward(weights, query, value, value, mask.as_ref(), false, training)?
            .0)
    }

    fn ensure_built_on(&mut self, inputs: &[Tensor]) -> Result<()> {
        if !self.base.built {
            let shapes: Vec<Shape> = inputs
                .iter()
                .map(|t| crate::backend::batch_shape(t.shape()))
                .collect();
            super::layer::ensure_built(self, &shapes)?;
        }
        Ok(())
    }

    /// Keras's `_compute_attention_mask`: the boolean `[B or 1, T, S]` mask, or `None`.
    fn attention_mask(
        &self,
        query: &Tensor,
        value: &Tensor,
        attention_mask: Option<&Tensor>,
        masks: [Option<&Tensor>; 3],
        causal: bool,
    ) -> Result<Option<Tensor>> {
        let name = &self.base.name;
        let (b, t, s) = (query.shape()[0], query.shape()[1], value.shape()[1]);
        let as_bool = |m: &Tensor| -> Result<Tensor> {
            if m.dtype() == DType::Bool {
                Ok(m.clone())
            } else {
                ops::not_equal(m, &Tensor::scalar_of(m.dtype(), 0.0))
            }
        };
        let check2 = |m: &Tensor, len: usize, what: &str| -> Result<()> {
            if m.shape() != [b, len] {
                return Err(Error::shape(
                    name,
                    format!("layer {name:?}: the {what} mask must be [batch, time] = [{b}, {len}]"),
                    &[m.shape()],
                ));
            }
            Ok(())
        };
        let mut auto: Option<Tensor> = None;
        let and = |acc: Option<Tensor>, m: Tensor| -> Result<Option<Tensor>> {
            Ok(Some(match acc {
                None => m,
                Some(a) => ops::logical_and(&a, &m)?,
            }))
        };
        if let Some(qm) = masks[0] {
            check2(qm, t, "query")?;
            auto = and(auto, ops::expand_dims(&as_bool(qm)?, -1)?)?;
        }
        for (m, what) in [(masks[1], "value"), (masks[2], "key")] {
            if let Some(m) = m {
                check2(m, s, what)?;
                auto = and(auto, ops::expand_dims(&as_bool(m)?, -2)?)?;
            }
        }
        if causal {
            let tri: Vec<bool> = (0..t).flat_map(|i| (0..s).map(move |j| i >= j)).collect();
            auto = and(auto, Tensor::from_vec(tri, &[1, t, s])?)?;
        }
        let mut full = auto;
        if let Some(m) = attention_mask {
            let ok = m.rank() == 3
                && (m.shape()[0] == b || m.shape()[0] == 1)
                && m.shape()[1] == t
                && m.shape()[2] == s;
            if !ok {
                return Err(Error::shape(
                    name,
                    format!(
                        "layer {name:?}: attention_mask must have shape [batch, T, S] = [{b}, {t}, {s}]"
                    ),
                    &[m.shape()],
                ));
            }
            full = and(full, as_bool(m)?)?;
        }
        Ok(full)
    }

    /// Projects `x` `[B, L, in]` with an `(in, heads, dim)` kernel and `(heads, dim)` bias to
    /// `[B, heads, L, dim]` (Keras's EinsumDense `abc,cde->abde`).
    fn project(&self, x: &Tensor, kernel: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (b, l, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let (h, e) = (kernel.shape()[1], kernel.shape()[2]);
        let x2 = ops::reshape(x, &[(b * l) as isize, d as isize])?;
        let k2 = ops::reshape(kernel, &[d as isize, (h * e) as isize])?;
        let mut y = ops::matmul(&x2, &k2, false, false)?;
        if let Some(bias) = bias {
            y = ops::add(&y, &ops::reshape(bias, &[(h * e) as isize])?)?;
        }
        let y = ops::reshape(&y, &[b as isize, l as isize, h as isize, e as isize])?;
        ops::transpose(&y, &[0, 2, 1, 3])
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        w: &[Tensor],
        query: &Tensor,
        value: &Tensor,
        key: &Tensor,
        mask: Option<&Tensor>,
        want_scores: bool,
        training: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let name = self.base.name.clone();
        if let Some(msg) = &self.attention_axes_error {
            return Err(Error::invalid(&name, format!("layer {name:?}: {msg}")));
        }
        for (t, what) in [(query, "query"), (value, "value"), (key, "key")] {
            if t.rank() != 3 {
                return Err(Error::shape(
                    &name,
                    format!("layer {name:?}: the {what} must be [batch, time, features]"),
                    &[t.shape()],
                ));
            }
        }
        if value.shape()[0] != query.shape()[0]
            || key.shape()[0] != query.shape()[0]
            || key.shape()[1] != value.shape()[1]
        {
            return Err(Error::shape(
                &name,
                format!(
                    "layer {name:?}: query, value and key must share the batch size, and key and value the length"
                ),
                &[query.shape(), value.shape(), key.shape()],
            ));
        }
        let expected = if self.use_bias { 8 } else { 4 };
        if w.len() != expected {
            return Err(Error::invalid(
                &name,
                format!("layer {name:?} expects {expected} weights, got {}", w.len()),
            ));
        }
        let (kq, bq, kk, bk, kv, bv, ko, bo) = if self.use_bias {
            (
                &w[0],
                Some(&w[1]),
                &w[2],
                Some(&w[3]),
                &w[4],
                Some(&w[5]),
                &w[6],
                Some(&w[7]),
            )
        } else {
            (&w[0], None, &w[1], None, &w[2], None, &w[3], None)
        };
        for (x, k, what) in [(query, kq, "query"), (value, kv, "value"), (key, kk, "key")] {
            if x.shape()[2] != k.shape()[0] {
                return Err(Error::shape(
                    &name,
                    format!(
                        "layer {name:?}: the {what}'s last axis does not match the layer's {what} kernel (built on {})",
                        fmt_shape(&[Some(k.shape()[0])])
                    ),
                    &[x.shape(), k.shape()],
                ));
            }
        }
        let dtype = query.dtype();
        let q = self.project(query, kq, bq)?;
        let k = self.project(key, kk, bk)?;
        let v = self.project(value, kv, bv)?;
        let scale = 1.0 / (self.key_dim as f64).sqrt();
        let q = ops::mul_scalar(&q, scale)?;
        let mut scores = ops::matmul(&q, &k, false, true)?; // [B, H, T, S]
        let mask4 = match mask {
            Some(m) => Some(ops::expand_dims(m, 1)?),
            None => None,
        };
        if let Some(m) = &mask4 {
            scores = ops::where_(m, &scores, &Tensor::scalar_of(dtype, -1e9))?;
        }
        let mut probs = ops::softmax(&scores, -1)?;
        if let Some(m) = &mask4 {
            if want_scores || self.dropout > 0.0 {
                probs = ops::where_(m, &probs, &Tensor::scalar_of(dtype, 0.0))?;
            }
        }
        let used = if training && self.dropout > 0.0 {
            let seed = self.base.next_call_seed();
            ops::dropout(&probs, self.dropout, seed, None)?
        } else {
            probs.clone()
        };
        let o = ops::matmul(&used, &v, false, false)?; // [B, H, T, vd]
        let (b, h, t, vd) = (o.shape()[0], o.shape()[1], o.shape()[2], o.shape()[3]);
        let o = ops::transpose(&o, &[0, 2, 1, 3])?;
        let o = ops::reshape(&o, &[(b * t) as isize, (h * vd) as isize])?;
        let out_dim = ko.shape()[2];
        let ko2 = ops::reshape(ko, &[(h * vd) as isize, out_dim as isize])?;
        let mut y = ops::matmul(&o, &ko2, false, false)?;
        if let Some(bo) = bo {
            y = ops::add(&y, bo)?;
        }
        let y = ops::reshape(&y, &[b as isize, t as isize, out_dim as isize])?;
        Ok((y, want_scores.then_some(probs)))
    }

    fn run(
        &mut self,
        inputs: &[Tensor],
        masks: &[Option<Tensor>],
        training: bool,
    ) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        if !(2..=4).contains(&inputs.len()) {
            return Err(Error::invalid(
                &name,
                format!(
                    "layer {name:?} expects [query, value], [query, value, key] or [query, value, key, attention_mask], got {} inputs",
                    inputs.len()
                ),
            ));
        }
        let m = |i: usize| masks.get(i).and_then(|m| m.as_ref());
        let (y, scores) = self.call_with(
            &inputs[0],
            &inputs[1],
            inputs.get(2),
            inputs.get(3),
            [m(0), m(1), m(2)],
            self.return_scores,
            self.causal,
            training,
        )?;
        let mut out = vec![y];
        out.extend(scores);
        Ok(out)
    }
}

impl Layer for MultiHeadAttention {
    fn class_name(&self) -> &str {
        "MultiHeadAttention"
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
        if self.num_heads == 0 || self.key_dim == 0 || self.vd() == 0 {
            return Err(Error::invalid(
                &name,
                format!(
                    "layer {name:?}: num_heads, key_dim and value_dim must be positive, got {}, {}, {}",
                    self.num_heads,
                    self.key_dim,
                    self.vd()
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::invalid(
                &name,
                format!(
                    "layer {name:?}: dropout must be in [0, 1), got {}",
                    self.dropout
                ),
            ));
        }
        if input_shapes.len() < 2 {
            return Err(Error::invalid(
                &name,
                format!("layer {name:?} needs at least a query and a value"),
            ));
        }
        let last = |i: usize, what: &str| -> Result<usize> {
            let s = &input_shapes[i];
            match s.last().copied().flatten() {
                Some(d) if s.len() == 3 => Ok(d),
                _ => Err(Error::invalid(
                    &name,
                    format!(
                        "layer {name:?}: the {what} must be [batch, time, features] with known features, got {}",
                        fmt_shape(s)
                    ),
                )),
            }
        };
        let qd = last(0, "query")?;
        let vdim_in = last(1, "value")?;
        let kdim_in = if input_shapes.len() > 2 {
            last(2, "key")?
        } else {
            vdim_in
        };
        let (h, kd, vd) = (self.num_heads, self.key_dim, self.vd());
        let out = self.output_shape.unwrap_or(qd);
        let (ki, bi) = (
            self.kernel_initializer.clone(),
            self.bias_initializer.clone(),
        );
        let mut vars = Vec::new();
        for (part, din, dd) in [
            ("query", qd, kd),
            ("key", kdim_in, kd),
            ("value", vdim_in, vd),
        ] {
            vars.push(self.base.add_weight(
                &format!("{part}/kernel"),
                &[din, h, dd],
                &ki,
                None,
                true,
            )?);
            if self.use_bias {
                vars.push(self.base.add_weight(
                    &format!("{part}/bias"),
                    &[h, dd],
                    &bi,
                    None,
                    true,
                )?);
            }
        }
        vars.push(self.base.add_weight(
            "attention_output/kernel",
            &[h, vd, out],
            &ki,
            None,
            true,
        )?);
        if self.use_bias {
            vars.push(
                self.base
                    .add_weight("attention_output/bias", &[out], &bi, None, true)?,
            );
        }
        self.vars = vars;
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

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.base.name.clone();
        if input_shapes.len() < 2 || input_shapes[0].len() != 3 || input_shapes[1].len() != 3 {
            return Err(Error::invalid(
                &name,
                format!("layer {name:?} needs rank-3 query and value shapes"),
            ));
        }
        let q = &input_shapes[0];
        let out = self.output_shape.or(q[2]);
        let mut shapes = vec![vec![q[0], q[1], out]];
        if self.return_scores {
            shapes.push(vec![q[0], Some(self.num_heads), q[1], input_shapes[1][1]]);
        }
        Ok(shapes)
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.vd(),
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": self.output_shape,
            "attention_axes": [1],
        })
    }
}
