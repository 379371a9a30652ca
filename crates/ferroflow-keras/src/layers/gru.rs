//! `keras.layers.GRU` and `keras.layers.GRUCell`.

use ferroflow_core::{ops, Result, Tensor};
use serde_json::Value;

use super::layer::LayerBase;
use super::rnn::{
    add_cell_weight, cell_builders, cell_common, expect_weights, fixed_base, recurrent_layer,
    recurrent_matmul, CellArgs, RnnCell, RNN,
};
use crate::activations::Activation;
use crate::backend::Arg;

/// `keras.layers.GRUCell(units, activation="tanh", recurrent_activation="sigmoid",
/// use_bias=True, kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
/// bias_initializer="zeros", dropout=0, recurrent_dropout=0, reset_after=True)`.
///
/// Weights as Keras: `kernel [in, 3u]`, `recurrent_kernel [u, 3u]`, gate blocks **z, r, h**;
/// `bias [2, 3u]` with `reset_after=True` (row 0 input bias, row 1 recurrent bias) or `[3u]`
/// with `reset_after=False`. One step: `z = σ(x·W_z + b_z + h·U_z (+ b'_z))`, `r` likewise,
/// `hh = tanh(x·W_h + b_h + r·(h·U_h + b'_h))` (reset after) or
/// `tanh(x·W_h + b_h + (r·h)·U_h)` (reset before), `h' = z·h + (1 - z)·hh`.
pub struct GRUCell {
    base: LayerBase,
    args: CellArgs,
}

impl GRUCell {
    /// `GRUCell(units)` with Keras's defaults.
    pub fn new(units: usize) -> GRUCell {
        GRUCell {
            base: LayerBase::new("GRUCell"),
            args: CellArgs::new(units),
        }
    }

    cell_builders!();

    /// The recurrent activation (default `sigmoid`).
    pub fn recurrent_activation(mut self, a: impl Into<Arg<Activation>>) -> Self {
        self.args.recurrent_activation = a.into();
        self
    }

    /// Apply the reset gate after the recurrent matmul (default true, Keras 3's and cuDNN's form).
    pub fn reset_after(mut self, b: bool) -> Self {
        self.args.reset_after = b;
        self
    }
}

impl RnnCell for GRUCell {
    fn class_name(&self) -> &str {
        "GRUCell"
    }

    cell_common!();

    fn state_size(&self) -> Vec<usize> {
        vec![self.args.units]
    }

    fn gates(&self) -> usize {
        3
    }

    fn dropout_mask_count(&self) -> usize {
        if self.args.recurrent_dropout > 0.0 {
            3
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
            &[input_dim, 3 * u],
            &a.kernel_initializer,
            &a.kernel_regularizer,
        )?;
        add_cell_weight(
            &mut self.base,
            parent,
            "recurrent_kernel",
            &[u, 3 * u],
            &a.recurrent_initializer,
            &a.recurrent_regularizer,
        )?;
        if a.use_bias {
            let shape: Vec<usize> = if a.reset_after {
                vec![2, 3 * u]
            } else {
                vec![3 * u]
            };
            add_cell_weight(
                &mut self.base,
                parent,
                "bias",
                &shape,
                &a.bias_initializer,
                &a.bias_regularizer,
            )?;
        }
        Ok(())
    }

    fn input_bias(&self, weights: &[Tensor]) -> Result<Option<Tensor>> {
        expect_weights("GRUCell", weights, self.args.use_bias)?;
        let Some(b) = weights.get(2) else {
            return Ok(None);
        };
        if self.args.reset_after {
            let u3 = 3 * self.args.units as isize;
            Ok(Some(ops::reshape(
                &ops::slice(b, &[0, 0], &[1, u3])?,
                &[u3],
            )?))
        } else {
            Ok(Some(b.clone()))
        }
    }

    /// `[U]` (+ the recurrent bias with `reset_after`), or `[U_zr, U_h]` without.
    fn prepare(&self, weights: &[Tensor]) -> Result<Vec<Tensor>> {
        expect_weights("GRUCell", weights, self.args.use_bias)?;
        let u = self.args.units;
        let rk = &weights[1];
        if self.args.reset_after {
            let mut p = vec![rk.clone()];
            if let Some(b) = weights.get(2) {
                let u3 = 3 * u as isize;
                p.push(ops::reshape(&ops::slice(b, &[1, 0], &[1, u3])?, &[u3])?);
            }
            Ok(p)
        } else {
            Ok(vec![
                ops::slice(rk, &[0, 0], &[-1, 2 * u as isize])?,
                ops::slice(rk, &[0, 2 * u], &[-1, u as isize])?,
            ])
        }
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
        let h = &states[0];
        let x = ops::split(xp, ops::Split::Num(3), -1)?;
        let hh = if self.args.reset_after {
            let mut inner = recurrent_matmul(h, &prep[0], u, rec_masks)?;
            if let Some(b) = prep.get(1) {
                inner = ops::add(&inner, b)?;
            }
            let r_ = ops::split(&inner, ops::Split::Num(3), -1)?;
            let z = rec_act.apply(&ops::add(&x[0], &r_[0])?)?;
            let r = rec_act.apply(&ops::add(&x[1], &r_[1])?)?;
            let hh = act.apply(&ops::add(&x[2], &ops::mul(&r, &r_[2])?)?)?;
            (z, hh)
        } else {
            let zr_masks = rec_masks.map(|m| &m[..2.min(m.len())]);
            let zr_masks = match zr_masks {
                Some([m]) => Some(std::slice::from_ref(m)),
                other => other,
            };
            let inner = recurrent_matmul(h, &prep[0], u, zr_masks)?;
            let r_ = ops::split(&inner, ops::Split::Num(2), -1)?;
            let z = rec_act.apply(&ops::add(&x[0], &r_[0])?)?;
            let r = rec_act.apply(&ops::add(&x[1], &r_[1])?)?;
            let h_h = match rec_masks {
                Some(ms) if ms.len() == 3 => ops::mul(h, &ms[2])?,
                Some([m]) => ops::mul(h, m)?,
                _ => h.clone(),
            };
            let rh = ops::matmul(&ops::mul(&r, &h_h)?, &prep[1], false, false)?;
            let hh = act.apply(&ops::add(&x[2], &rh)?)?;
            (z, hh)
        };
        let (z, hh) = hh;
        // h' = z·h + (1 - z)·hh, as Keras writes it.
        let one_minus_z = ops::add_scalar(&ops::neg(&z)?, 1.0)?;
        let h_new = ops::add(&ops::mul(&z, h)?, &ops::mul(&one_minus_z, &hh)?)?;
        Ok((h_new.clone(), vec![h_new]))
    }

    fn get_config(&self) -> Value {
        let mut c = self.args.config();
        c["name"] = Value::from(self.base.name.clone());
        c["reset_after"] = Value::from(self.args.reset_after);
        c
    }
}

/// `keras.layers.GRU(units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
/// kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
/// bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, return_sequences=False,
/// return_state=False, go_backwards=False, stateful=False, reset_after=True)`: an [`RNN`] over a
/// [`GRUCell`] named `gru_cell` (weights `gru/gru_cell/{kernel,recurrent_kernel,bias}`).
///
/// ```
/// use ferroflow_keras::layers::{GRU, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let gru = LayerHandle::new(GRU::new(8));
/// let y = gru.call(&ops::ones(&[2, 5, 32], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 8]);
/// assert_eq!(gru.lock().count_params(), 1008); // 3·(8·32 + 8² + 2·8), as Keras
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct GRU(RNN);

impl GRU {
    /// `GRU(units)` with Keras's defaults.
    pub fn new(units: usize) -> GRU {
        let cell = GRUCell {
            base: fixed_base("gru_cell"),
            args: CellArgs::new(units),
        };
        GRU(RNN::with_class("GRU", Box::new(cell)))
    }

    /// The recurrent activation (default `sigmoid`).
    pub fn recurrent_activation(mut self, a: impl Into<Arg<Activation>>) -> Self {
        self.cell_mut().recurrent_activation = a.into();
        self
    }

    /// Apply the reset gate after the recurrent matmul (default true).
    pub fn reset_after(mut self, b: bool) -> Self {
        self.cell_mut().reset_after = b;
        self
    }
}

recurrent_layer!(GRU, GRUCell);
