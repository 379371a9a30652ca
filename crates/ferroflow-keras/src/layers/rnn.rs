//! `keras.layers.RNN`: the recurrent loop shared by `SimpleRNN`, `LSTM` and `GRU`, and the
//! [`RnnCell`] trait their cells implement.
//!
//! Speed: the input projection of **all** time steps is one matmul up front
//! (`[batch·time, in] @ kernel`, input bias included); each step then does one fused matmul for
//! all gates (`h @ recurrent_kernel`) plus the element-wise gate math. Gradients come from the
//! tape through ordinary ops.

use std::any::Any;

use ferroflow_core::{ops, DType, Error, Result, Tensor};
use serde_json::{json, Value};

use super::kernel_args::resolve_opt;
use super::layer::{InputSpec, Layer, LayerBase, Weight};
use crate::activations::Activation;
use crate::backend::{fmt_shape, Arg, Shape};
use crate::initializers::Initializer;
use crate::regularizers::Regularizer;

/// The arguments every Keras recurrent cell shares, with Keras's defaults: `activation="tanh"`,
/// `recurrent_activation="sigmoid"`, `use_bias=True`, `kernel_initializer="glorot_uniform"`,
/// `recurrent_initializer="orthogonal"`, `bias_initializer="zeros"`, `dropout=0`,
/// `recurrent_dropout=0` (plus `unit_forget_bias=True` for LSTM, `reset_after=True` for GRU).
#[derive(Clone)]
pub struct CellArgs {
    /// Number of units (the state and output size).
    pub units: usize,
    pub(crate) activation: Arg<Activation>,
    pub(crate) recurrent_activation: Arg<Activation>,
    /// Whether the cell has a bias.
    pub use_bias: bool,
    pub(crate) kernel_initializer: Arg<Initializer>,
    pub(crate) recurrent_initializer: Arg<Initializer>,
    pub(crate) bias_initializer: Arg<Initializer>,
    pub(crate) kernel_regularizer: Option<Arg<Regularizer>>,
    pub(crate) recurrent_regularizer: Option<Arg<Regularizer>>,
    pub(crate) bias_regularizer: Option<Arg<Regularizer>>,
    /// Dropout rate on the inputs (one mask per sequence, the same at every step).
    pub dropout: f64,
    /// Dropout rate on the recurrent state (one mask per sequence, the same at every step).
    pub recurrent_dropout: f64,
    /// LSTM: add 1 to the forget gate's bias at initialization.
    pub unit_forget_bias: bool,
    /// GRU: apply the reset gate after the recurrent matmul (Keras 3/TF2 default, cuDNN's form).
    pub reset_after: bool,
}

impl CellArgs {
    /// Keras's defaults for `units`.
    pub fn new(units: usize) -> CellArgs {
        CellArgs {
            units,
            activation: Arg(Ok(Activation::Tanh)),
            recurrent_activation: Arg(Ok(Activation::Sigmoid)),
            use_bias: true,
            kernel_initializer: Arg(Ok(Initializer::glorot_uniform())),
            recurrent_initializer: Arg(Ok(
                Initializer::get("orthogonal").unwrap_or_else(|_| Initializer::glorot_uniform())
            )),
            bias_initializer: Arg(Ok(Initializer::Zeros)),
            kernel_regularizer: None,
            recurrent_regularizer: None,
            bias_regularizer: None,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            unit_forget_bias: true,
            reset_after: true,
        }
    }

    fn activation_name(a: &Arg<Activation>) -> String {
        a.0.as_ref()
            .map(|a| a.name().to_string())
            .unwrap_or_default()
    }

    /// The shared part of a cell's `get_config`.
    pub(crate) fn config(&self) -> Value {
        json!({
            "units": self.units,
            "activation": Self::activation_name(&self.activation),
            "recurrent_activation": Self::activation_name(&self.recurrent_activation),
            "use_bias": self.use_bias,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
        })
    }

    /// Checks the rates (Keras clips them to `[0, 1]`; here a rate outside `[0, 1)` is an error).
    pub(crate) fn check(&self, layer: &str) -> Result<()> {
        for (what, r) in [
            ("dropout", self.dropout),
            ("recurrent_dropout", self.recurrent_dropout),
        ] {
            if !(0.0..1.0).contains(&r) {
                return Err(Error::invalid(
                    layer,
                    format!("layer {layer:?}: `{what}` must be in [0, 1), got {r}"),
                ));
            }
        }
        if self.units == 0 {
            return Err(Error::invalid(
                layer,
                format!("layer {layer:?}: `units` must be positive, got 0"),
            ));
        }
        Ok(())
    }

    /// The activation and recurrent activation, resolved.
    pub(crate) fn activations(&self) -> Result<(Activation, Activation)> {
        Ok((
            self.activation.0.clone()?,
            self.recurrent_activation.0.clone()?,
        ))
    }
}

/// Adds a weight to a cell under the Keras 3 variable path `{parent}/{cell}/{name}`
/// (`lstm/lstm_cell/kernel`).
pub(crate) fn add_cell_weight(
    base: &mut LayerBase,
    parent: &str,
    name: &str,
    shape: &[usize],
    init: &Arg<Initializer>,
    reg: &Option<Arg<Regularizer>>,
) -> Result<()> {
    let init = init.0.clone()?;
    let value = init.init(shape, DType::F32)?;
    let path = if parent.is_empty() {
        format!("{}/{}", base.name, name)
    } else {
        format!("{parent}/{}/{}", base.name, name)
    };
    let variable = ferroflow_core::Variable::with_trainable(value, &path, true);
    base.weights.push(Weight {
        variable,
        trainable: true,
        regularizer: resolve_opt(reg)?,
    });
    Ok(())
}

/// A `LayerBase` with a fixed name (Keras names the cell of an `LSTM` `lstm_cell`, without a
/// counter).
pub(crate) fn fixed_base(name: &str) -> LayerBase {
    LayerBase {
        name: name.to_string(),
        trainable: true,
        built: false,
        input_shape: None,
        build_shapes: None,
        weights: Vec::new(),
        seed: crate::backend::next_seed(),
        calls: 0,
        nodes: 0,
    }
}

/// A recurrent cell (Keras's `SimpleRNNCell`, `LSTMCell`, `GRUCell`): the per-step math of an
/// [`RNN`], split so the loop can project every time step's input at once.
///
/// The weights are passed in as values (`[kernel, recurrent_kernel, bias?]`), so the same cell
/// runs on its float32 variables or on float64 copies (gradient checks).
pub trait RnnCell: Send + 'static {
    /// The Keras class name (`"LSTMCell"`).
    fn class_name(&self) -> &str;
    /// The cell's state (its name and weights).
    fn base(&self) -> &LayerBase;
    /// The cell's state, mutably.
    fn base_mut(&mut self) -> &mut LayerBase;
    /// The cell's arguments.
    fn args(&self) -> &CellArgs;
    /// The cell's arguments, mutably (builders).
    fn args_mut(&mut self) -> &mut CellArgs;
    /// The size of each state (`[units]`, LSTM `[units, units]` for `h`, `c`).
    fn state_size(&self) -> Vec<usize>;
    /// How many `units`-wide blocks the kernel's columns hold (1, LSTM 4, GRU 3).
    fn gates(&self) -> usize;
    /// How many dropout masks Keras draws per sequence: 1, or one per gate when Keras switches
    /// to `implementation=1` (LSTM and GRU with `recurrent_dropout > 0`).
    fn dropout_mask_count(&self) -> usize {
        1
    }
    /// Creates the weights for `input_dim` features, under the parent layer's path.
    fn build_cell(&mut self, input_dim: usize, parent: &str) -> Result<()>;
    /// The input bias to add to the projection of every step (`[gates·units]`), if any.
    fn input_bias(&self, weights: &[Tensor]) -> Result<Option<Tensor>>;
    /// Per-call values the step needs, derived once from the weights (slices of the recurrent
    /// kernel, the recurrent bias).
    fn prepare(&self, weights: &[Tensor]) -> Result<Vec<Tensor>>;
    /// One step: `xp` is this step's projected input `[batch, gates·units]` (input bias
    /// included), `states` the previous states, `rec_masks` the recurrent dropout masks (training
    /// only). Returns the output and the new states.
    fn step(
        &self,
        prep: &[Tensor],
        xp: &Tensor,
        states: &[Tensor],
        rec_masks: Option<&[Tensor]>,
    ) -> Result<(Tensor, Vec<Tensor>)>;
    /// Runs the whole sequence as one fused core op when the cell's configuration allows it
    /// (Keras's default activations), else `Ok(None)` and the layer runs its step loop. `xp` is
    /// the projected input `[batch, time, gates·units]` **without** the input bias `bias` (the
    /// fused op adds it, saving a pass over `xp`), `states` the
    /// initial states, `mask` `[batch, time]` bool. Returns the output sequence and the last
    /// states. Recurrent dropout never reaches here (it needs the step loop).
    fn fused_sequence(
        &self,
        _weights: &[Tensor],
        _xp: &Tensor,
        _bias: Option<&Tensor>,
        _states: &[Tensor],
        _mask: Option<&Tensor>,
        _zero_output_for_mask: bool,
    ) -> Result<Option<(Tensor, Vec<Tensor>)>> {
        Ok(None)
    }
    /// Keras's `get_config()` of the cell.
    fn get_config(&self) -> Value;
    /// An unbuilt copy with the same arguments (for `Bidirectional`'s backward layer).
    fn fresh(&self) -> Box<dyn RnnCell>;
    /// For downcasting to the concrete cell.
    fn as_any_mut(&mut self) -> &mut dyn Any;

    /// Keras's `cell(inputs, states)`: one step on `x` `[batch, features]` from `states`,
    /// building the cell's weights (named `{cell}/kernel`, ...) on the first call. Returns the
    /// output and the new states (no dropout: Keras's inference step).
    ///
    /// ```
    /// use ferroflow_keras::layers::{LSTMCell, RnnCell};
    /// use ferroflow_core::{DType, ops};
    /// let mut cell = LSTMCell::new(3);
    /// let h = ops::zeros(&[2, 3], DType::F32);
    /// let (y, states) = cell.call_cell(&ops::ones(&[2, 4], DType::F32), &[h.clone(), h])?;
    /// assert_eq!((y.shape(), states.len()), (&[2usize, 3][..], 2));
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    fn call_cell(&mut self, x: &Tensor, states: &[Tensor]) -> Result<(Tensor, Vec<Tensor>)> {
        let name = self.base().name.clone();
        if x.rank() != 2 {
            return Err(Error::shape(
                &name,
                format!("cell {name:?} expects inputs of shape [batch, features]"),
                &[x.shape()],
            ));
        }
        let sizes = self.state_size();
        let batch = x.shape()[0];
        if states.len() != sizes.len()
            || states
                .iter()
                .zip(&sizes)
                .any(|(s, &n)| s.shape() != [batch, n])
        {
            let shapes: Vec<&[usize]> = states.iter().map(|s| s.shape()).collect();
            return Err(Error::shape(
                &name,
                format!(
                    "cell {name:?} expects {} state(s) of shapes [batch, {sizes:?}]",
                    sizes.len()
                ),
                &shapes,
            ));
        }
        self.args().check(&name)?;
        if self.base().weights.is_empty() {
            self.build_cell(x.shape()[1], "")?;
            self.base_mut().built = true;
        }
        let weights: Vec<Tensor> = self
            .base()
            .weights
            .iter()
            .map(|w| w.variable.value())
            .collect();
        let x3 = ops::expand_dims(&ops::cast(x, weights[0].dtype())?, 1)?;
        let bias = self.input_bias(&weights)?;
        let units = self.args().units;
        let xp = project_inputs(&x3, &weights[0], bias.as_ref(), units, None)?;
        let xp = ops::squeeze(&xp, &[1])?;
        let prep = self.prepare(&weights)?;
        self.step(&prep, &xp, states, None)
    }
}

/// `h @ U`, or with per-gate recurrent dropout masks `concat_g((h·m_g) @ U_g)` (Keras's
/// `implementation=1`). `u_blocks` are the column blocks of `U` when masks are per gate.
pub(crate) fn recurrent_matmul(
    h: &Tensor,
    u: &Tensor,
    units: usize,
    rec_masks: Option<&[Tensor]>,
) -> Result<Tensor> {
    match rec_masks {
        None => ops::matmul(h, u, false, false),
        Some([m]) => ops::matmul(&ops::mul(h, m)?, u, false, false),
        Some(ms) => {
            let mut parts = Vec::with_capacity(ms.len());
            for (g, m) in ms.iter().enumerate() {
                let ug = ops::slice(u, &[0, g * units], &[-1, units as isize])?;
                parts.push(ops::matmul(&ops::mul(h, m)?, &ug, false, false)?);
            }
            let refs: Vec<&Tensor> = parts.iter().collect();
            ops::concat(&refs, -1)
        }
    }
}

/// Projects `x` `[batch, time, in]` through `kernel` `[in, k]` for every step in one matmul
/// (with per-gate input dropout masks: one matmul per gate block), adding `bias`.
fn project_inputs(
    x: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
    units: usize,
    masks: Option<&[Tensor]>,
) -> Result<Tensor> {
    let (b, t, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let k = kernel.shape()[1];
    let flat = |x: &Tensor| ops::reshape(x, &[(b * t) as isize, d as isize]);
    let y = match masks {
        None => ops::matmul(&flat(x)?, kernel, false, false)?,
        Some([m]) => {
            let xm = ops::mul(x, &ops::expand_dims(m, 1)?)?;
            ops::matmul(&flat(&xm)?, kernel, false, false)?
        }
        Some(ms) => {
            let mut parts = Vec::with_capacity(ms.len());
            for (g, m) in ms.iter().enumerate() {
                let xm = ops::mul(x, &ops::expand_dims(m, 1)?)?;
                let kg = ops::slice(kernel, &[0, g * units], &[-1, units as isize])?;
                parts.push(ops::matmul(&flat(&xm)?, &kg, false, false)?);
            }
            let refs: Vec<&Tensor> = parts.iter().collect();
            ops::concat(&refs, -1)?
        }
    };
    let y = match bias {
        Some(bias) => ops::bias_add(&y, bias)?,
        None => y,
    };
    ops::reshape(&y, &[b as isize, t as isize, k as isize])
}

/// `keras.layers.RNN(cell, return_sequences=False, return_state=False, go_backwards=False,
/// stateful=False, unroll=False, zero_output_for_mask=False)`: runs a cell over the time axis
/// of `[batch, time, features]` inputs. `LSTM`, `GRU` and `SimpleRNN` are this layer with their
/// cell (and their Keras class name).
///
/// Matches Keras 3: the initial state is zeros (or the extra inputs: `call(&[x, h0, c0])`, the
/// functional API's `initial_state`); a mask (`[batch, time]`, from `Embedding(mask_zero=True)`
/// or `Masking`) makes masked steps keep the previous state and repeat the previous output
/// (zeros before the first real step; zeros at every masked step with
/// `zero_output_for_mask=True`); `go_backwards` reads the sequence reversed and returns the
/// outputs in that reversed order; `stateful` carries the last states to the next call until
/// [`reset_states`](RNN::reset_states); dropout masks are drawn once per call and reused at every
/// step (one per gate when `recurrent_dropout > 0`, as Keras's `implementation=1`).
///
/// ```
/// use ferroflow_keras::layers::{LSTMCell, LayerHandle, RNN};
/// use ferroflow_core::{DType, ops};
/// let rnn = LayerHandle::new(RNN::new(LSTMCell::new(4)).return_sequences(true));
/// let y = rnn.call(&ops::ones(&[2, 5, 3], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 5, 4]);
/// assert_eq!(rnn.lock().count_params(), 4 * (3 * 4 + 4 * 4 + 4));
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct RNN {
    pub(crate) base: LayerBase,
    class: &'static str,
    pub(crate) cell: Box<dyn RnnCell>,
    /// Return the output of every step (`[batch, time, units]`) instead of the last.
    pub return_sequences: bool,
    /// Also return the final states.
    pub return_state: bool,
    /// Process the sequence backwards (and return the reversed sequence).
    pub go_backwards: bool,
    /// Keep the last states as the next call's initial states.
    pub stateful: bool,
    /// Accepted for Keras compatibility; the loop is the same either way.
    pub unroll: bool,
    /// Output zeros (instead of the previous output) at masked steps.
    pub zero_output_for_mask: bool,
    /// Run the whole sequence as one fused core op when the cell allows it (default true; the
    /// counterpart of Keras's `use_cudnn="auto"`: same results, faster). False forces the
    /// step-by-step loop.
    pub use_fused: bool,
    /// The path of the layer holding this one (`bidirectional`), for weight names.
    pub(crate) parent: String,
    states: Option<Vec<Tensor>>,
}

impl RNN {
    /// `RNN(cell)` with Keras's defaults.
    pub fn new(cell: impl RnnCell) -> RNN {
        RNN::with_class("RNN", Box::new(cell))
    }

    /// An RNN reported under another Keras class name (`LSTM`, `GRU`, `SimpleRNN`).
    pub(crate) fn with_class(class: &'static str, cell: Box<dyn RnnCell>) -> RNN {
        RNN {
            base: LayerBase::new(class),
            class,
            cell,
            return_sequences: false,
            return_state: false,
            go_backwards: false,
            stateful: false,
            unroll: false,
            zero_output_for_mask: false,
            use_fused: true,
            parent: String::new(),
            states: None,
        }
    }

    /// An unbuilt copy with the same arguments and a fresh cell (Bidirectional's backward layer).
    pub(crate) fn fresh_copy(&self, name: &str) -> RNN {
        let mut r = RNN::with_class(self.class, self.cell.fresh());
        r.base.name = name.to_string();
        r.return_sequences = self.return_sequences;
        r.return_state = self.return_state;
        r.go_backwards = self.go_backwards;
        r.stateful = self.stateful;
        r.unroll = self.unroll;
        r.zero_output_for_mask = self.zero_output_for_mask;
        r.use_fused = self.use_fused;
        r
    }

    /// The cell.
    pub fn cell(&self) -> &dyn RnnCell {
        self.cell.as_ref()
    }

    /// Return the whole output sequence.
    pub fn return_sequences(mut self, b: bool) -> Self {
        self.return_sequences = b;
        self
    }

    /// Also return the final states (`[output, h]`, LSTM `[output, h, c]`).
    pub fn return_state(mut self, b: bool) -> Self {
        self.return_state = b;
        self
    }

    /// Process the input sequence backwards.
    pub fn go_backwards(mut self, b: bool) -> Self {
        self.go_backwards = b;
        self
    }

    /// Carry the final states to the next call (until [`reset_states`](RNN::reset_states)).
    pub fn stateful(mut self, b: bool) -> Self {
        self.stateful = b;
        self
    }

    /// Keras's `unroll` (accepted; no effect on results).
    pub fn unroll(mut self, b: bool) -> Self {
        self.unroll = b;
        self
    }

    /// Output zeros at masked steps (Keras's `zero_output_for_mask`).
    pub fn zero_output_for_mask(mut self, b: bool) -> Self {
        self.zero_output_for_mask = b;
        self
    }

    /// Use the fused sequence op when the cell allows it (default true); false forces the
    /// step-by-step loop (same results).
    pub fn use_fused(mut self, b: bool) -> Self {
        self.use_fused = b;
        self
    }

    /// Keras's `reset_states()`: a stateful layer starts again from zeros.
    pub fn reset_states(&mut self) {
        self.states = None;
    }

    /// The states a stateful layer carries (none before the first call or after a reset).
    pub fn states(&self) -> Option<&[Tensor]> {
        self.states.as_deref()
    }

    /// The weight values `[kernel, recurrent_kernel, bias?]` of the built cell.
    fn weight_values(&self) -> Result<Vec<Tensor>> {
        if self.cell.base().weights.is_empty() {
            return Err(Error::invalid(
                &self.base.name,
                format!("layer {:?} is not built", self.base.name),
            ));
        }
        Ok(self
            .cell
            .base()
            .weights
            .iter()
            .map(|w| w.variable.value())
            .collect())
    }

    /// The forward pass with explicit weight values (`[kernel, recurrent_kernel, bias?]`, in the
    /// inputs' float dtype) instead of the layer's variables — e.g. float64 copies for a
    /// gradient check. `inputs` is `[x]` or `[x, initial states...]`; `mask` is `[batch, time]`.
    pub fn call_with_weights(
        &mut self,
        weights: &[Tensor],
        inputs: &[Tensor],
        mask: Option<&Tensor>,
        training: bool,
    ) -> Result<Vec<Tensor>> {
        if !self.base.built {
            let shapes: Vec<Shape> = inputs
                .iter()
                .map(|t| crate::backend::batch_shape(t.shape()))
                .collect();
            super::layer::ensure_built(self, &shapes)?;
        }
        self.run(weights, inputs, mask, training)
    }

    /// The loop itself.
    fn run(
        &mut self,
        weights: &[Tensor],
        inputs: &[Tensor],
        mask: Option<&Tensor>,
        training: bool,
    ) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let Some((x, init)) = inputs.split_first() else {
            return Err(Error::invalid(&name, "an RNN needs an input sequence"));
        };
        if x.rank() != 3 {
            return Err(Error::shape(
                &name,
                format!(
                    "layer {name:?} expects inputs of shape [batch, time, features], got rank {}",
                    x.rank()
                ),
                &[x.shape()],
            ));
        }
        let dtype = weights.first().map_or(DType::F32, Tensor::dtype);
        let x = if x.dtype() != dtype {
            ops::cast(x, dtype)?
        } else {
            x.clone()
        };
        let (batch, time) = (x.shape()[0], x.shape()[1]);
        if time == 0 {
            return Err(Error::shape(
                &name,
                format!("layer {name:?}: the input sequence has no time steps"),
                &[x.shape()],
            ));
        }
        let sizes = self.cell.state_size();
        let units = self.cell.args().units;
        // Initial states: the extra inputs, a stateful layer's carried states, or zeros.
        let states: Vec<Tensor> = if !init.is_empty() {
            if init.len() != sizes.len() {
                return Err(Error::invalid(
                    &name,
                    format!(
                        "layer {name:?} has {} state(s) but was passed {} initial state(s)",
                        sizes.len(),
                        init.len()
                    ),
                ));
            }
            init.iter()
                .zip(&sizes)
                .map(|(s, &n)| {
                    if s.shape() != [batch, n] {
                        return Err(Error::shape(
                            &name,
                            format!(
                                "layer {name:?}: an initial state must have shape [{batch}, {n}]"
                            ),
                            &[s.shape()],
                        ));
                    }
                    if s.dtype() != dtype {
                        ops::cast(s, dtype)
                    } else {
                        Ok(s.clone())
                    }
                })
                .collect::<Result<_>>()?
        } else if let (true, Some(st)) = (self.stateful, &self.states) {
            if st.first().map(|s| s.shape()[0]) != Some(batch) {
                return Err(Error::invalid(
                    &name,
                    format!(
                        "if an RNN is stateful, the batch size of the input sequences must be the same as the batch size of the initial state; expected {}, received {batch}",
                        st.first().map_or(0, |s| s.shape()[0])
                    ),
                ));
            }
            st.clone()
        } else {
            sizes
                .iter()
                .map(|&n| ops::zeros(&[batch, n], dtype))
                .collect()
        };
        let (x, mask) = if self.go_backwards {
            (
                ops::reverse(&x, &[1])?,
                mask.map(|m| ops::reverse(m, &[1])).transpose()?,
            )
        } else {
            (x, mask.cloned())
        };
        // The mask as [batch, time] booleans.
        let mask: Option<Tensor> = match mask {
            None => None,
            Some(m) => {
                if m.shape() != [batch, time] {
                    return Err(Error::shape(
                        &name,
                        format!("layer {name:?}: the mask must have shape [batch, time] = [{batch}, {time}]"),
                        &[m.shape()],
                    ));
                }
                let m = if m.dtype() == DType::Bool {
                    m
                } else {
                    ops::not_equal(&m, &Tensor::scalar_of(m.dtype(), 0.0))?
                };
                Some(m)
            }
        };
        // Dropout masks, drawn once per call (Keras's DropoutRNNCell).
        let count = self.cell.dropout_mask_count();
        let in_dim = x.shape()[2];
        let args = self.cell.args().clone();
        let mut draw = |rate: f64, width: usize| -> Result<Option<Vec<Tensor>>> {
            if !training || rate <= 0.0 {
                return Ok(None);
            }
            let ones = ops::ones(&[batch, width], dtype);
            let seed = self.base.next_call_seed();
            (0..count)
                .map(|g| ops::dropout(&ones, rate, crate::backend::mix(seed ^ g as u64), None))
                .collect::<Result<Vec<_>>>()
                .map(Some)
        };
        let dp = draw(args.dropout, in_dim)?;
        let rec = draw(args.recurrent_dropout, units)?;

        let bias = self.cell.input_bias(weights)?;
        // The projection without the bias: the fused op adds it itself.
        let xp = project_inputs(&x, &weights[0], None, units, dp.as_deref())?;
        let fused = if self.use_fused && rec.is_none() {
            self.cell.fused_sequence(
                weights,
                &xp,
                bias.as_ref(),
                &states,
                mask.as_ref(),
                self.zero_output_for_mask,
            )?
        } else {
            None
        };
        let (output, states) = match fused {
            Some((seq, states)) => {
                let output = if self.return_sequences {
                    seq
                } else if mask.is_none() {
                    // Without a mask the last output is the last `h`.
                    states[0].clone()
                } else {
                    let last = ops::slice(&seq, &[0, time - 1, 0], &[-1, 1, -1])?;
                    ops::reshape(&last, &[batch as isize, units as isize])?
                };
                (output, states)
            }
            None => self.step_loop(
                &match &bias {
                    Some(b) => ops::bias_add(&xp, b)?,
                    None => xp,
                },
                states,
                mask.as_ref(),
                rec.as_deref(),
                weights,
                batch,
                time,
                dtype,
            )?,
        };
        if self.stateful {
            self.states = Some(
                states
                    .iter()
                    .map(ops::stop_gradient)
                    .collect::<Result<_>>()?,
            );
        }
        let mut result = vec![output];
        if self.return_state {
            result.extend(states);
        }
        Ok(result)
    }

    /// The step-by-step loop (any cell, recurrent dropout): returns the output and last states.
    #[allow(clippy::too_many_arguments)]
    fn step_loop(
        &self,
        xp: &Tensor,
        mut states: Vec<Tensor>,
        mask: Option<&Tensor>,
        rec: Option<&[Tensor]>,
        weights: &[Tensor],
        batch: usize,
        time: usize,
        dtype: DType,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let name = &self.base.name;
        let units = self.cell.args().units;
        // The mask as [time] tensors of [batch, 1] booleans.
        let step_masks: Option<Vec<Tensor>> = match mask {
            None => None,
            Some(m) => {
                let m = ops::reshape(m, &[batch as isize, time as isize, 1])?;
                Some(ops::unstack(&m, 1)?)
            }
        };
        let steps = ops::unstack(xp, 1)?;
        let prep = self.cell.prepare(weights)?;
        let mut outputs: Vec<Tensor> =
            Vec::with_capacity(if self.return_sequences { time } else { 0 });
        let mut last: Option<Tensor> = None;
        let zeros_out = ops::zeros(&[batch, units], dtype);
        for (t, xt) in steps.iter().enumerate() {
            let (out, new_states) = self.cell.step(&prep, xt, &states, rec)?;
            let (out, new_states) = match &step_masks {
                None => (out, new_states),
                Some(ms) => {
                    let m = &ms[t];
                    let prev = if self.zero_output_for_mask {
                        &zeros_out
                    } else {
                        last.as_ref().unwrap_or(&zeros_out)
                    };
                    let out = ops::where_(m, &out, prev)?;
                    let ns = new_states
                        .iter()
                        .zip(&states)
                        .map(|(n, o)| ops::where_(m, n, o))
                        .collect::<Result<Vec<_>>>()?;
                    (out, ns)
                }
            };
            states = new_states;
            if self.return_sequences {
                outputs.push(out.clone());
            }
            last = Some(out);
        }
        let output = if self.return_sequences {
            let refs: Vec<&Tensor> = outputs.iter().collect();
            ops::stack(&refs, 1)?
        } else {
            last.ok_or_else(|| Error::invalid(name, "no time steps"))?
        };
        Ok((output, states))
    }

    fn forward(
        &mut self,
        inputs: &[Tensor],
        mask: Option<&Tensor>,
        training: bool,
    ) -> Result<Vec<Tensor>> {
        self.cell.args().check(&self.base.name)?;
        let weights = self.weight_values()?;
        self.run(&weights, inputs, mask, training)
    }

    /// Output shapes for an input shape `[batch, time, features]`.
    pub(crate) fn output_shapes(&self, input: &Shape) -> Vec<Shape> {
        let units = self.cell.args().units;
        let (b, t) = (
            input.first().copied().flatten(),
            input.get(1).copied().flatten(),
        );
        let mut out = vec![if self.return_sequences {
            vec![b, t, Some(units)]
        } else {
            vec![b, Some(units)]
        }];
        if self.return_state {
            for n in self.cell.state_size() {
                out.push(vec![b, Some(n)]);
            }
        }
        out
    }
}

impl Layer for RNN {
    fn class_name(&self) -> &str {
        self.class
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        let in_dim = self
            .cell
            .base()
            .weights
            .first()
            .map(|w| w.variable.shape()[0]);
        Some(InputSpec::ndim(3).axis(-1, in_dim))
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let name = self.base.name.clone();
        self.cell.args().check(&name)?;
        let shape = input_shapes
            .first()
            .ok_or_else(|| Error::invalid(&name, "an RNN needs one input"))?;
        if shape.len() != 3 {
            return Err(Error::shape(
                &name,
                format!(
                    "layer {name:?} expects inputs of shape [batch, time, features], got {}",
                    fmt_shape(shape)
                ),
                &[],
            ));
        }
        let Some(in_dim) = shape[2] else {
            return Err(Error::invalid(
                &name,
                format!(
                    "layer {name:?}: the last dimension of the input must be known, got {}",
                    fmt_shape(shape)
                ),
            ));
        };
        let path = if self.parent.is_empty() {
            name.clone()
        } else {
            format!("{}/{name}", self.parent)
        };
        self.cell.build_cell(in_dim, &path)?;
        self.cell.base_mut().built = true;
        self.base.weights = self.cell.base().weights.clone();
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        self.forward(inputs, None, training)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_mask(&self, _inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        // Keras: the output keeps the mask only when it is a sequence.
        Ok(if self.return_sequences {
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
        self.forward(inputs, mask.as_ref(), training)
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let first = input_shapes
            .first()
            .ok_or_else(|| Error::invalid(&self.base.name, "an RNN needs one input"))?;
        Ok(self.output_shapes(first))
    }

    fn get_config(&self) -> Value {
        let mut c = json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        });
        let cell = self.cell.get_config();
        if self.class == "RNN" {
            c["cell"] = json!({"class_name": self.cell.class_name(), "config": cell});
        } else if let (Some(obj), Value::Object(cell)) = (c.as_object_mut(), cell) {
            for (k, v) in cell {
                if k != "name" && k != "trainable" {
                    obj.insert(k, v);
                }
            }
        }
        c
    }
}

/// Implements a recurrent layer (`LSTM`, `GRU`, `SimpleRNN`) as a newtype over [`RNN`]: the
/// `Layer` trait by delegation, the RNN's and the cell's builder methods, and `From` into `RNN`
/// (for `Bidirectional`).
macro_rules! recurrent_layer {
    ($t:ident, $cell:ident) => {
        impl $t {
            fn cell_mut(&mut self) -> &mut $crate::layers::rnn::CellArgs {
                self.0.cell.args_mut()
            }

            /// The underlying generic [`RNN`](crate::layers::RNN).
            pub fn rnn(&self) -> &$crate::layers::RNN {
                &self.0
            }

            /// The underlying generic [`RNN`](crate::layers::RNN), mutably.
            pub fn rnn_mut(&mut self) -> &mut $crate::layers::RNN {
                &mut self.0
            }

            /// Return the whole output sequence (`[batch, time, units]`).
            pub fn return_sequences(mut self, b: bool) -> Self {
                self.0.return_sequences = b;
                self
            }

            /// Also return the final states.
            pub fn return_state(mut self, b: bool) -> Self {
                self.0.return_state = b;
                self
            }

            /// Process the input sequence backwards (and return the reversed sequence).
            pub fn go_backwards(mut self, b: bool) -> Self {
                self.0.go_backwards = b;
                self
            }

            /// Carry the final states to the next call (until `reset_states`).
            pub fn stateful(mut self, b: bool) -> Self {
                self.0.stateful = b;
                self
            }

            /// Keras's `unroll` (accepted; no effect on results).
            pub fn unroll(mut self, b: bool) -> Self {
                self.0.unroll = b;
                self
            }

            /// Output zeros at masked steps.
            pub fn zero_output_for_mask(mut self, b: bool) -> Self {
                self.0.zero_output_for_mask = b;
                self
            }

            /// Keras's `reset_states()`.
            pub fn reset_states(&mut self) {
                self.0.reset_states();
            }

            /// Use the fused sequence op when the configuration allows it (default true, the
            /// counterpart of Keras's `use_cudnn="auto"`); false forces the step loop.
            pub fn use_fused(mut self, b: bool) -> Self {
                self.0.use_fused = b;
                self
            }

            /// The output activation (default `tanh`), by name or value.
            pub fn activation(
                mut self,
                a: impl Into<$crate::backend::Arg<$crate::activations::Activation>>,
            ) -> Self {
                self.cell_mut().activation = a.into();
                self
            }

            /// Whether the cell has a bias.
            pub fn use_bias(mut self, b: bool) -> Self {
                self.cell_mut().use_bias = b;
                self
            }

            /// The input kernel's initializer (default `glorot_uniform`).
            pub fn kernel_initializer(
                mut self,
                i: impl Into<$crate::backend::Arg<$crate::initializers::Initializer>>,
            ) -> Self {
                self.cell_mut().kernel_initializer = i.into();
                self
            }

            /// The recurrent kernel's initializer (default `orthogonal`).
            pub fn recurrent_initializer(
                mut self,
                i: impl Into<$crate::backend::Arg<$crate::initializers::Initializer>>,
            ) -> Self {
                self.cell_mut().recurrent_initializer = i.into();
                self
            }

            /// The bias initializer (default `zeros`).
            pub fn bias_initializer(
                mut self,
                i: impl Into<$crate::backend::Arg<$crate::initializers::Initializer>>,
            ) -> Self {
                self.cell_mut().bias_initializer = i.into();
                self
            }

            /// A penalty on the input kernel.
            pub fn kernel_regularizer(
                mut self,
                r: impl Into<$crate::backend::Arg<$crate::regularizers::Regularizer>>,
            ) -> Self {
                self.cell_mut().kernel_regularizer = Some(r.into());
                self
            }

            /// A penalty on the recurrent kernel.
            pub fn recurrent_regularizer(
                mut self,
                r: impl Into<$crate::backend::Arg<$crate::regularizers::Regularizer>>,
            ) -> Self {
                self.cell_mut().recurrent_regularizer = Some(r.into());
                self
            }

            /// A penalty on the bias.
            pub fn bias_regularizer(
                mut self,
                r: impl Into<$crate::backend::Arg<$crate::regularizers::Regularizer>>,
            ) -> Self {
                self.cell_mut().bias_regularizer = Some(r.into());
                self
            }

            /// Dropout rate on the inputs (in `[0, 1)`, one mask per sequence).
            pub fn dropout(mut self, rate: f64) -> Self {
                self.cell_mut().dropout = rate;
                self
            }

            /// Dropout rate on the recurrent state (in `[0, 1)`, one mask per sequence).
            pub fn recurrent_dropout(mut self, rate: f64) -> Self {
                self.cell_mut().recurrent_dropout = rate;
                self
            }

            /// A fixed seed for the dropout masks.
            pub fn seed(mut self, seed: u64) -> Self {
                self.0.base.seed = seed;
                self.0.base.calls = 0;
                self
            }
        }

        impl $crate::layers::Layer for $t {
            fn class_name(&self) -> &str {
                self.0.class_name()
            }
            fn base(&self) -> &$crate::layers::LayerBase {
                &self.0.base
            }
            fn base_mut(&mut self) -> &mut $crate::layers::LayerBase {
                &mut self.0.base
            }
            fn input_spec(&self) -> Option<$crate::layers::InputSpec> {
                self.0.input_spec()
            }
            fn build(
                &mut self,
                input_shapes: &[$crate::backend::Shape],
            ) -> ferroflow_core::Result<()> {
                self.0.build(input_shapes)
            }
            fn call(
                &mut self,
                inputs: &[ferroflow_core::Tensor],
                training: bool,
            ) -> ferroflow_core::Result<Vec<ferroflow_core::Tensor>> {
                self.0.call(inputs, training)
            }
            fn supports_masking(&self) -> bool {
                true
            }
            fn compute_mask(
                &self,
                inputs: &[ferroflow_core::Tensor],
                masks: &[Option<ferroflow_core::Tensor>],
            ) -> ferroflow_core::Result<Option<ferroflow_core::Tensor>> {
                self.0.compute_mask(inputs, masks)
            }
            fn call_with_mask(
                &mut self,
                inputs: &[ferroflow_core::Tensor],
                masks: &[Option<ferroflow_core::Tensor>],
                training: bool,
            ) -> ferroflow_core::Result<Vec<ferroflow_core::Tensor>> {
                self.0.call_with_mask(inputs, masks, training)
            }
            fn compute_output_shape(
                &mut self,
                input_shapes: &[$crate::backend::Shape],
            ) -> ferroflow_core::Result<Vec<$crate::backend::Shape>> {
                self.0.compute_output_shape(input_shapes)
            }
            fn get_config(&self) -> serde_json::Value {
                self.0.get_config()
            }
        }

        impl From<$t> for $crate::layers::RNN {
            fn from(l: $t) -> $crate::layers::RNN {
                l.0
            }
        }
    };
}
pub(crate) use recurrent_layer;

/// A cell's constructor-side plumbing shared by the three cells: `Any` access and the fresh copy.
macro_rules! cell_common {
    () => {
        fn base(&self) -> &$crate::layers::LayerBase {
            &self.base
        }
        fn base_mut(&mut self) -> &mut $crate::layers::LayerBase {
            &mut self.base
        }
        fn args(&self) -> &$crate::layers::rnn::CellArgs {
            &self.args
        }
        fn args_mut(&mut self) -> &mut $crate::layers::rnn::CellArgs {
            &mut self.args
        }
        fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
            self
        }
        fn fresh(&self) -> Box<dyn $crate::layers::rnn::RnnCell> {
            Box::new(Self {
                base: $crate::layers::rnn::fixed_base(&self.base.name),
                args: self.args.clone(),
            })
        }
    };
}
pub(crate) use cell_common;

/// The cell builder methods (on a cell struct with an `args: CellArgs` field).
macro_rules! cell_builders {
    () => {
        /// The output activation (default `tanh`).
        pub fn activation(
            mut self,
            a: impl Into<$crate::backend::Arg<$crate::activations::Activation>>,
        ) -> Self {
            self.args.activation = a.into();
            self
        }

        /// Whether the cell has a bias.
        pub fn use_bias(mut self, b: bool) -> Self {
            self.args.use_bias = b;
            self
        }

        /// The input kernel's initializer (default `glorot_uniform`).
        pub fn kernel_initializer(
            mut self,
            i: impl Into<$crate::backend::Arg<$crate::initializers::Initializer>>,
        ) -> Self {
            self.args.kernel_initializer = i.into();
            self
        }

        /// The recurrent kernel's initializer (default `orthogonal`).
        pub fn recurrent_initializer(
            mut self,
            i: impl Into<$crate::backend::Arg<$crate::initializers::Initializer>>,
        ) -> Self {
            self.args.recurrent_initializer = i.into();
            self
        }

        /// The bias initializer (default `zeros`).
        pub fn bias_initializer(
            mut self,
            i: impl Into<$crate::backend::Arg<$crate::initializers::Initializer>>,
        ) -> Self {
            self.args.bias_initializer = i.into();
            self
        }

        /// Dropout rate on the inputs.
        pub fn dropout(mut self, rate: f64) -> Self {
            self.args.dropout = rate;
            self
        }

        /// Dropout rate on the recurrent state.
        pub fn recurrent_dropout(mut self, rate: f64) -> Self {
            self.args.recurrent_dropout = rate;
            self
        }
    };
}
pub(crate) use cell_builders;

/// Checks the number of weights a cell was given.
pub(crate) fn expect_weights(cell: &str, weights: &[Tensor], use_bias: bool) -> Result<()> {
    let n = if use_bias { 3 } else { 2 };
    if weights.len() != n {
        return Err(Error::invalid(
            cell,
            format!(
                "{cell} expects {n} weights (kernel, recurrent_kernel{}), got {}",
                if use_bias { ", bias" } else { "" },
                weights.len()
            ),
        ));
    }
    Ok(())
}
