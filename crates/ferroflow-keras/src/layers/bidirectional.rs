//! `keras.layers.Bidirectional`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{ensure_built, InputSpec, Layer, LayerBase};
use super::rnn::RNN;
use crate::backend::Shape;

/// How `Bidirectional` combines the forward and backward outputs (Keras's `merge_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMode {
    /// `"concat"` (the default): along the last axis.
    Concat,
    /// `"sum"`.
    Sum,
    /// `"mul"`.
    Mul,
    /// `"ave"`: the mean of the two.
    Ave,
    /// `None`: both outputs, forward first.
    None,
}

impl MergeMode {
    /// The mode by Keras's name (`"concat"`, `"sum"`, `"mul"`, `"ave"`, `"none"`).
    pub fn get(name: &str) -> Result<MergeMode> {
        match name {
            "concat" => Ok(MergeMode::Concat),
            "sum" => Ok(MergeMode::Sum),
            "mul" => Ok(MergeMode::Mul),
            "ave" => Ok(MergeMode::Ave),
            "none" | "None" => Ok(MergeMode::None),
            _ => Err(Error::invalid(
                "Bidirectional",
                format!(
                    "invalid merge mode. Received: {name:?}. Merge mode should be one of {{\"sum\", \"mul\", \"ave\", \"concat\", None}}"
                ),
            )),
        }
    }

    fn name(self) -> Option<&'static str> {
        match self {
            MergeMode::Concat => Some("concat"),
            MergeMode::Sum => Some("sum"),
            MergeMode::Mul => Some("mul"),
            MergeMode::Ave => Some("ave"),
            MergeMode::None => None,
        }
    }
}

/// `keras.layers.Bidirectional(layer, merge_mode="concat")`: runs a recurrent layer forwards
/// (`forward_{name}`) and a copy of it backwards (`backward_{name}`, `go_backwards` flipped),
/// re-reverses the backward sequence, and merges the two. As Keras: weights are
/// `bidirectional/forward_lstm/lstm_cell/kernel`, ..., forward first; with `return_state` the
/// outputs are `[merged, forward states..., backward states...]` (`merge_mode=None`: both
/// outputs first); initial states are the extra inputs, forward states first; masks go to both
/// directions, and with `return_sequences` masked steps output zeros (Keras forces
/// `zero_output_for_mask`).
///
/// ```
/// use ferroflow_keras::layers::{Bidirectional, LSTM, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let bi = LayerHandle::new(Bidirectional::new(LSTM::new(4).return_sequences(true)));
/// let y = bi.call(&ops::ones(&[2, 5, 3], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 5, 8]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Bidirectional {
    base: LayerBase,
    forward: RNN,
    backward: RNN,
    /// How outputs are combined.
    pub merge_mode: MergeMode,
    merge_error: Option<Error>,
}

impl Bidirectional {
    /// `Bidirectional(layer)` with `merge_mode="concat"`.
    pub fn new(layer: impl Into<RNN>) -> Bidirectional {
        let mut forward: RNN = layer.into();
        let name = forward.base.name.clone();
        forward.base.name = format!("forward_{name}");
        let mut backward = forward.fresh_copy(&format!("backward_{name}"));
        backward.go_backwards = !forward.go_backwards;
        // Keras: zero_output_for_mask = return_sequences on both directions.
        forward.zero_output_for_mask = forward.return_sequences;
        backward.zero_output_for_mask = backward.return_sequences;
        Bidirectional {
            base: LayerBase::new("Bidirectional"),
            forward,
            backward,
            merge_mode: MergeMode::Concat,
            merge_error: None,
        }
    }

    /// The merge mode by name (`"concat"`, `"sum"`, `"mul"`, `"ave"`, `"none"`); a bad name is
    /// the build's error.
    pub fn merge_mode(mut self, mode: &str) -> Self {
        match MergeMode::get(mode) {
            Ok(m) => {
                self.merge_mode = m;
                self.merge_error = None;
            }
            Err(e) => self.merge_error = Some(e),
        }
        self
    }

    /// `merge_mode=None`: return both outputs.
    pub fn no_merge(mut self) -> Self {
        self.merge_mode = MergeMode::None;
        self
    }

    /// The forward layer.
    pub fn forward_layer(&self) -> &RNN {
        &self.forward
    }

    /// The backward layer.
    pub fn backward_layer(&self) -> &RNN {
        &self.backward
    }

    /// Keras's `reset_states()` on both directions.
    pub fn reset_states(&mut self) {
        self.forward.reset_states();
        self.backward.reset_states();
    }

    fn run(
        &mut self,
        inputs: &[Tensor],
        mask: Option<&Tensor>,
        training: bool,
    ) -> Result<Vec<Tensor>> {
        if let Some(e) = &self.merge_error {
            return Err(e.clone());
        }
        let name = self.base.name.clone();
        let Some((x, init)) = inputs.split_first() else {
            return Err(Error::invalid(&name, "Bidirectional needs an input"));
        };
        let n_states = self.forward.cell().state_size().len();
        let (fi, bi): (Vec<Tensor>, Vec<Tensor>) = if init.is_empty() {
            (vec![x.clone()], vec![x.clone()])
        } else if init.len() == 2 * n_states {
            let mut f = vec![x.clone()];
            f.extend_from_slice(&init[..n_states]);
            let mut b = vec![x.clone()];
            b.extend_from_slice(&init[n_states..]);
            (f, b)
        } else {
            return Err(Error::invalid(
                &name,
                format!(
                    "layer {name:?} expects {} initial states (forward then backward), got {}",
                    2 * n_states,
                    init.len()
                ),
            ));
        };
        let masks = [mask.cloned()];
        let mut f = self.forward.call_with_mask(&fi, &masks, training)?;
        let mut b = self.backward.call_with_mask(&bi, &masks, training)?;
        let yf = f.remove(0);
        let mut yb = b.remove(0);
        if self.forward.return_sequences {
            yb = ops::reverse(&yb, &[1])?;
        }
        let mut out = match self.merge_mode {
            MergeMode::Concat => vec![ops::concat(&[&yf, &yb], -1)?],
            MergeMode::Sum => vec![ops::add(&yf, &yb)?],
            MergeMode::Mul => vec![ops::mul(&yf, &yb)?],
            MergeMode::Ave => vec![ops::mul_scalar(&ops::add(&yf, &yb)?, 0.5)?],
            MergeMode::None => vec![yf, yb],
        };
        if self.forward.return_state {
            out.extend(f);
            out.extend(b);
        }
        Ok(out)
    }
}

impl Layer for Bidirectional {
    fn class_name(&self) -> &str {
        "Bidirectional"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        self.forward.input_spec()
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        if let Some(e) = &self.merge_error {
            return Err(e.clone());
        }
        let first = input_shapes
            .first()
            .ok_or_else(|| Error::invalid(&self.base.name, "Bidirectional needs an input"))?;
        self.forward.parent = self.base.name.clone();
        self.backward.parent = self.base.name.clone();
        ensure_built(&mut self.forward, std::slice::from_ref(first))?;
        ensure_built(&mut self.backward, std::slice::from_ref(first))?;
        self.base.weights = self.forward.base.weights.clone();
        self.base
            .weights
            .extend(self.backward.base.weights.iter().cloned());
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        self.run(inputs, None, training)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_mask(&self, _inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        Ok(if self.forward.return_sequences {
            masks.first().cloned().flatten()
        } else {
            None
        })
    }

    fn call_with_mask(
        &mut self,
        inputs: &[Tensor],
        masks: &[Option<Tensor>],
        training: bool,
    ) -> Result<Vec<Tensor>> {
        let mask = masks.first().cloned().flatten();
        self.run(inputs, mask.as_ref(), training)
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let first = super::pool_utils::first_shape(&self.base.name, input_shapes)?;
        let f = self.forward.output_shapes(first);
        let b = self.backward.output_shapes(first);
        let mut y = f[0].clone();
        let mut out = match self.merge_mode {
            MergeMode::Concat => {
                if let (Some(Some(a)), Some(Some(c))) = (f[0].last(), b[0].last()) {
                    let n = a + c;
                    if let Some(l) = y.last_mut() {
                        *l = Some(n);
                    }
                }
                vec![y]
            }
            MergeMode::None => vec![y, b[0].clone()],
            _ => {
                y = f[0].clone();
                vec![y]
            }
        };
        out.extend(f[1..].iter().cloned());
        out.extend(b[1..].iter().cloned());
        Ok(out)
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "merge_mode": self.merge_mode.name(),
            "layer": {"class_name": self.forward.class_name(), "config": self.forward.get_config()},
        })
    }
}
