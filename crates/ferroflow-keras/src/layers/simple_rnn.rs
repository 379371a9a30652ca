//! `keras.layers.SimpleRNN` and `keras.layers.SimpleRNNCell`.

use ferroflow_core::{ops, Result, Tensor};
use serde_json::Value;

use super::layer::LayerBase;
use super::rnn::{
    add_cell_weight, cell_builders, cell_common, expect_weights, fixed_base, recurrent_layer,
    recurrent_matmul, CellArgs, RnnCell, RNN,
};

/// `keras.layers.SimpleRNNCell(units, activation="tanh", use_bias=True,
/// kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
/// bias_initializer="zeros", dropout=0, recurrent_dropout=0)`: `h' = tanh(x·W + b + h·U)`;
/// weights `kernel [in, u]`, `recurrent_kernel [u, u]`, `bias [u]`.
pub struct SimpleRNNCell {
    base: LayerBase,
    args: CellArgs,
}

impl SimpleRNNCell {
    /// `SimpleRNNCell(units)` with Keras's defaults.
    pub fn new(units: usize) -> SimpleRNNCell {
        SimpleRNNCell {
            base: LayerBase::new("SimpleRNNCell"),
            args: CellArgs::new(units),
        }
    }

    cell_builders!();
}

impl RnnCell for SimpleRNNCell {
    fn class_name(&self) -> &str {
        "SimpleRNNCell"
    }

    cell_common!();

    fn state_size(&self) -> Vec<usize> {
        vec![self.args.units]
    }

    fn gates(&self) -> usize {
        1
    }

    fn build_cell(&mut self, input_dim: usize, parent: &str) -> Result<()> {
        let u = self.args.units;
        let a = self.args.clone();
        add_cell_weight(
            &mut self.base,
            parent,
            "kernel",
            &[input_dim, u],
            &a.kernel_initializer,
            &a.kernel_regularizer,
        )?;
        add_cell_weight(
            &mut self.base,
            parent,
            "recurrent_kernel",
            &[u, u],
            &a.recurrent_initializer,
            &a.recurrent_regularizer,
        )?;
        if a.use_bias {
            add_cell_weight(
                &mut self.base,
                parent,
                "bias",
                &[u],
                &a.bias_initializer,
                &a.bias_regularizer,
            )?;
        }
        Ok(())
    }

    fn input_bias(&self, weights: &[Tensor]) -> Result<Option<Tensor>> {
        expect_weights("SimpleRNNCell", weights, self.args.use_bias)?;
        Ok(weights.get(2).cloned())
    }

    fn prepare(&self, weights: &[Tensor]) -> Result<Vec<Tensor>> {
        expect_weights("SimpleRNNCell", weights, self.args.use_bias)?;
        Ok(vec![weights[1].clone()])
    }

    fn step(
        &self,
        prep: &[Tensor],
        xp: &Tensor,
        states: &[Tensor],
        rec_masks: Option<&[Tensor]>,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let (act, _) = self.args.activations()?;
        let z = ops::add(
            xp,
            &recurrent_matmul(&states[0], &prep[0], self.args.units, rec_masks)?,
        )?;
        let h = act.apply(&z)?;
        Ok((h.clone(), vec![h]))
    }

    fn get_config(&self) -> Value {
        let mut c = self.args.config();
        c["name"] = Value::from(self.base.name.clone());
        if let Some(o) = c.as_object_mut() {
            o.remove("recurrent_activation");
        }
        c
    }
}

/// `keras.layers.SimpleRNN(units, activation="tanh", use_bias=True,
/// kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
/// bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, return_sequences=False,
/// return_state=False, go_backwards=False, stateful=False)`: an [`RNN`] over a
/// [`SimpleRNNCell`] named `simple_rnn_cell` (weights `simple_rnn/simple_rnn_cell/kernel`, ...).
///
/// ```
/// use ferroflow_keras::layers::{SimpleRNN, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let rnn = LayerHandle::new(SimpleRNN::new(4).return_sequences(true));
/// let y = rnn.call(&ops::ones(&[2, 3, 5], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 3, 4]);
/// assert_eq!(rnn.lock().count_params(), 5 * 4 + 4 * 4 + 4);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct SimpleRNN(RNN);

impl SimpleRNN {
    /// `SimpleRNN(units)` with Keras's defaults.
    pub fn new(units: usize) -> SimpleRNN {
        let cell = SimpleRNNCell {
            base: fixed_base("simple_rnn_cell"),
            args: CellArgs::new(units),
        };
        SimpleRNN(RNN::with_class("SimpleRNN", Box::new(cell)))
    }
}

recurrent_layer!(SimpleRNN, SimpleRNNCell);
