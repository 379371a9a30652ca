//! `keras.layers.LSTM` and `keras.layers.LSTMCell`.

use ferroflow_core::{ops, DType, Result, Tensor};
use serde_json::Value;

use super::layer::LayerBase;
use super::rnn::{
    add_cell_weight, cell_builders, cell_common, expect_weights, fixed_base, recurrent_layer,
    recurrent_matmul, CellArgs, RnnCell, RNN,
};
use crate::activations::Activation;
use crate::backend::Arg;
use crate::initializers::Initializer;

/// `keras.layers.LSTMCell(units, activation="tanh", recurrent_activation="sigmoid",
/// use_bias=True, kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
/// bias_initializer="zeros", unit_forget_bias=True, dropout=0, recurrent_dropout=0)`.
///
/// Weights as Keras: `kernel [in, 4u]`, `recurrent_kernel [u, 4u]`, `bias [4u]`, the gate blocks
/// in the order **i, f, c, o** along the columns; `unit_forget_bias` initializes the bias to
/// `[0]*u ++ [1]*u ++ [0]*2u`. One step: `z = x·W + h·U + b`, `i = σ(z_i)`, `f = σ(z_f)`,
/// `c' = f·c + i·tanh(z_c)`, `o = σ(z_o)`, `h' = o·tanh(c')`; states `[h, c]`.
pub struct LSTMCell {
    base: LayerBase,
    args: CellArgs,
}

impl LSTMCell {
    /// `LSTMCell(units)` with Keras's defaults.
    pub fn new(units: usize) -> LSTMCell {
        LSTMCell {
            base: LayerBase::new("LSTMCell"),
            args: CellArgs::new(units),
        }
    }

    cell_builders!();

    /// The recurrent activation (default `sigmoid`).
    pub fn recurrent_activation(mut self, a: impl Into<Arg<Activation>>) -> Self {
        self.args.recurrent_activation = a.into();
        self
    }

    /// Initialize the forget gate's bias to 1 (default true).
    pub fn unit_forget_bias(mut self, b: bool) -> Self {
        self.args.unit_forget_bias = b;
        self
    }
}

impl RnnCell for LSTMCell {
    fn class_name(&self) -> &str {
        "LSTMCell"
    }

    cell_common!();

    fn state_size(&self) -> Vec<usize> {
        vec![self.args.units, self.args.units]
    }

    fn gates(&self) -> usize {
        4
    }

    fn dropout_mask_count(&self) -> usize {
        // Keras switches to implementation=1 (a mask per gate) when recurrent_dropout > 0.
        if self.args.recurrent_dropout > 0.0 {
            4
        } else {
            1
        }
    }

    fn build_cell(&mut self, input_dim: usize, parent: &str) -> Result<()> {
        let u = self.args.units;
        let a = self.args.clone();
        add_cell_weight(
            &mut self.base,
            parent,
            "kernel",
            &[input_dim, 4 * u],
            &a.kernel_initializer,
            &a.kernel_regularizer,
        )?;
        add_cell_weight(
            &mut self.base,
            parent,
            "recurrent_kernel",
            &[u, 4 * u],
            &a.recurrent_initializer,
            &a.recurrent_regularizer,
        )?;
        if a.use_bias {
            let init = if a.unit_forget_bias {
                // Keras: concat(bias_initializer(u), ones(u), bias_initializer(2u)).
                let bi = a.bias_initializer.0.clone()?;
                Arg(Ok(Initializer::custom(
                    "unit_forget_bias",
                    move |shape: &[usize], dtype, _seed| {
                        let u = shape[0] / 4;
                        let p = bi.init(&[u], dtype)?;
                        let q = bi.init(&[2 * u], dtype)?;
                        ops::concat(&[&p, &ops::ones(&[u], dtype), &q], 0)
                    },
                )))
            } else {
                a.bias_initializer.clone()
            };
            add_cell_weight(
                &mut self.base,
                parent,
                "bias",
                &[4 * u],
                &init,
                &a.bias_regularizer,
            )?;
        }
        Ok(())
    }

    fn input_bias(&self, weights: &[Tensor]) -> Result<Option<Tensor>> {
        expect_weights("LSTMCell", weights, self.args.use_bias)?;
        Ok(weights.get(2).cloned())
    }

    fn prepare(&self, weights: &[Tensor]) -> Result<Vec<Tensor>> {
        expect_weights("LSTMCell", weights, self.args.use_bias)?;
        Ok(vec![weights[1].clone()])
    }

    fn step(
        &self,
        prep: &[Tensor],
        xp: &Tensor,
        states: &[Tensor],
        rec_masks: Option<&[Tensor]>,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let (act, rec_act) = self.args.activations()?;
        let u = self.args.units;
        let (h, c) = (&states[0], &states[1]);
        let z = ops::add(xp, &recurrent_matmul(h, &prep[0], u, rec_masks)?)?;
        let g = ops::split(&z, ops::Split::Num(4), -1)?;
        let i = rec_act.apply(&g[0])?;
        let f = rec_act.apply(&g[1])?;
        let cc = act.apply(&g[2])?;
        let o = rec_act.apply(&g[3])?;
        let c = ops::add(&ops::mul(&f, c)?, &ops::mul(&i, &cc)?)?;
        let h = ops::mul(&o, &act.apply(&c)?)?;
        Ok((h.clone(), vec![h, c]))
    }

    /// The fused `ops::lstm_sequence` with Keras's default activations (`tanh`, `sigmoid`) in
    /// float32/float64; other activations use the step loop.
    fn fused_sequence(
        &self,
        weights: &[Tensor],
        xp: &Tensor,
        bias: Option<&Tensor>,
        states: &[Tensor],
        mask: Option<&Tensor>,
        zero_output_for_mask: bool,
    ) -> Result<Option<(Tensor, Vec<Tensor>)>> {
        let (act, rec_act) = self.args.activations()?;
        if !matches!(act, Activation::Tanh)
            || !matches!(rec_act, Activation::Sigmoid)
            || !matches!(xp.dtype(), DType::F32 | DType::F64)
            || states.len() != 2
        {
            return Ok(None);
        }
        expect_weights("LSTMCell", weights, self.args.use_bias)?;
        let (hs, h, c) = ops::lstm_sequence(
            xp,
            &states[0],
            &states[1],
            &weights[1],
            bias,
            mask,
            zero_output_for_mask,
        )?;
        Ok(Some((hs, vec![h, c])))
    }

    fn get_config(&self) -> Value {
        let mut c = self.args.config();
        c["name"] = Value::from(self.base.name.clone());
        c["unit_forget_bias"] = Value::from(self.args.unit_forget_bias);
        c
    }
}

/// `keras.layers.LSTM(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
/// kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
/// bias_initializer="zeros", unit_forget_bias=True, dropout=0.0, recurrent_dropout=0.0,
/// return_sequences=False, return_state=False, go_backwards=False, stateful=False)`: an
/// [`RNN`] over an [`LSTMCell`] named `lstm_cell`, so its weights are
/// `lstm/lstm_cell/{kernel,recurrent_kernel,bias}` as in Keras 3 and Keras weights load unchanged.
///
/// ```
/// use ferroflow_keras::layers::{LSTM, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let lstm = LayerHandle::new(LSTM::new(32));
/// let y = lstm.call(&ops::ones(&[2, 7, 16], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 32]);
/// assert_eq!(lstm.lock().count_params(), 6272); // 4·(32·16 + 32² + 32), as Keras
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct LSTM(RNN);

impl LSTM {
    /// `LSTM(units)` with Keras's defaults.
    pub fn new(units: usize) -> LSTM {
        let cell = LSTMCell {
            base: fixed_base("lstm_cell"),
            args: CellArgs::new(units),
        };
        LSTM(RNN::with_class("LSTM", Box::new(cell)))
    }

    /// The recurrent activation (default `sigmoid`).
    pub fn recurrent_activation(mut self, a: impl Into<Arg<Activation>>) -> Self {
        self.cell_mut().recurrent_activation = a.into();
        self
    }

    /// Initialize the forget gate's bias to 1 (default true).
    pub fn unit_forget_bias(mut self, b: bool) -> Self {
        self.cell_mut().unit_forget_bias = b;
        self
    }
}

recurrent_layer!(LSTM, LSTMCell);
