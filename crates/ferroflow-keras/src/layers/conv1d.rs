//! `keras.layers.Conv1D`.

use ferroflow_core::ops::Padding;
use ferroflow_core::{ops, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::conv_utils::{
    check_positive, check_rank, check_window, conv_output_length, known_channels, resolve_padding,
    ConvPadding, PaddingArg,
};
use super::kernel_args::{kernel_builders, KernelArgs};
use super::layer::{built_dim, single_input, InputSpec, Layer, LayerBase};
use crate::backend::Shape;

/// `keras.layers.Conv1D(filters, kernel_size, strides=1, padding="valid", dilation_rate=1,
/// activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros")`:
/// a 1-D convolution over channels-last inputs `[batch, steps, channels]` (rank 3).
///
/// The kernel is `[k, in, filters]` (Keras's layout), the bias `[filters]`. `padding` is
/// `"valid"`, `"same"` (`out = ceil(in/s)`, the odd padding element at the end) or `"causal"`
/// (Keras: left-pad by `dilation·(k-1)` zeros, then a valid convolution, so output `t` only sees
/// inputs `<= t`). As Keras, `strides > 1` together with `dilation_rate > 1` is refused.
///
/// ```
/// use ferroflow_keras::layers::{Conv1D, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let conv = LayerHandle::new(Conv1D::new(8, 3).padding("causal"));
/// let y = conv.call(&ops::ones(&[2, 10, 4], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 10, 8]);
/// assert_eq!(conv.lock().count_params(), 3 * 4 * 8 + 8);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Conv1D {
    base: LayerBase,
    /// Number of output channels.
    pub filters: usize,
    /// Window size.
    pub kernel_size: usize,
    /// Stride.
    pub strides: usize,
    padding: PaddingArg,
    /// Dilation rate.
    pub dilation_rate: usize,
    args: KernelArgs,
    kernel: Option<Variable>,
    pad: ConvPadding,
}

impl Conv1D {
    /// `Conv1D(filters, kernel_size)` with Keras's defaults.
    pub fn new(filters: usize, kernel_size: usize) -> Conv1D {
        Conv1D {
            base: LayerBase::new("Conv1D"),
            filters,
            kernel_size,
            strides: 1,
            padding: ConvPadding::Valid.into(),
            dilation_rate: 1,
            args: KernelArgs::new(),
            kernel: None,
            pad: ConvPadding::Valid,
        }
    }

    /// The stride.
    pub fn strides(mut self, s: usize) -> Self {
        self.strides = s;
        self
    }

    /// `"valid"` (default), `"same"` or `"causal"`.
    pub fn padding(mut self, p: impl Into<PaddingArg>) -> Self {
        self.padding = p.into();
        self
    }

    /// The dilation rate.
    pub fn dilation_rate(mut self, d: usize) -> Self {
        self.dilation_rate = d;
        self
    }

    fn check_args(&self) -> Result<ConvPadding> {
        let name = &self.base.name;
        check_positive(name, "filters", &[self.filters])?;
        check_window(
            name,
            &[self.kernel_size],
            &[self.strides],
            &[self.dilation_rate],
        )?;
        resolve_padding(&self.padding, true)
    }

    kernel_builders!(kernel_initializer, kernel_regularizer);
}

impl Layer for Conv1D {
    fn class_name(&self) -> &str {
        "Conv1D"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        Some(InputSpec::ndim(3).axis(-1, built_dim(&self.base, -1)))
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let name = self.base.name.clone();
        let shape = input_shapes
            .first()
            .ok_or_else(|| Error::invalid(&name, "Conv1D needs one input"))?;
        self.pad = self.check_args()?;
        check_rank(&name, "Conv1D", shape, 3)?;
        let in_ch = known_channels(&name, shape)?;
        let r = self.args.resolve()?;
        let k_init = r.kernel_initializer.clone();
        let k_reg = r.kernel_regularizer.clone();
        self.kernel = Some(self.base.add_weight(
            "kernel",
            &[self.kernel_size, in_ch, self.filters],
            &k_init,
            k_reg,
            true,
        )?);
        self.args.add_bias(&mut self.base, &r, self.filters)?;
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let kernel = self
            .kernel
            .as_ref()
            .ok_or_else(|| Error::invalid(&self.base.name, "layer is not built"))?
            .value();
        check_rank(
            &self.base.name,
            "Conv1D",
            &crate::backend::batch_shape(x.shape()),
            3,
        )?;
        let y = if self.pad == ConvPadding::Causal {
            let left = self.dilation_rate * (self.kernel_size - 1);
            let xp = ops::pad(x, &[[0, 0], [left, 0], [0, 0]], ops::PadMode::Constant, 0.0)?;
            ops::conv1d(
                &xp,
                &kernel,
                self.strides,
                Padding::Valid,
                self.dilation_rate,
            )?
        } else {
            ops::conv1d(
                x,
                &kernel,
                self.strides,
                self.pad.op_padding(),
                self.dilation_rate,
            )?
        };
        Ok(vec![self.args.finish(y)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.base.name.clone();
        let s = super::conv_utils::first_shape(&self.base.name, input_shapes)?;
        check_rank(&name, "Conv1D", s, 3)?;
        let pad = self.check_args()?;
        let steps = conv_output_length(
            &name,
            s[1],
            self.kernel_size,
            self.strides,
            self.dilation_rate,
            pad,
        )?;
        Ok(vec![vec![s[0], steps, Some(self.filters)]])
    }

    fn get_config(&self) -> Value {
        let mut c = json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding.0.as_ref().map(|p| p.name()).unwrap_or("invalid"),
            "dilation_rate": self.dilation_rate,
            "activation": self.args.activation_name(),
            "use_bias": self.args.use_bias,
        });
        self.args.config_into(&mut c, "kernel");
        c
    }
}
