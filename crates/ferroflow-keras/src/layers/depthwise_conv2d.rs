//! `keras.layers.DepthwiseConv2D`.

use ferroflow_core::{ops, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::conv_utils::{
    check_positive, check_rank, check_window, conv_output_length, known_channels, resolve_padding,
    window_builders, ConvPadding, PaddingArg, Pair,
};
use super::kernel_args::{kernel_builders, KernelArgs};
use super::layer::{built_dim, single_input, InputSpec, Layer, LayerBase};
use crate::backend::Shape;

/// `keras.layers.DepthwiseConv2D(kernel_size, strides=(1, 1), padding="valid",
/// depth_multiplier=1, dilation_rate=(1, 1), activation=None, use_bias=True,
/// depthwise_initializer="glorot_uniform", bias_initializer="zeros")`: each input channel is
/// convolved with its own `depth_multiplier` filters (NHWC inputs of rank 4), giving
/// `in·depth_multiplier` output channels (channel `c·m + j` is filter `j` of input channel `c`,
/// as TensorFlow's `depthwise_conv2d`).
///
/// The kernel is `[kh, kw, in, depth_multiplier]` (named `kernel`, as Keras 3), the bias
/// `[in·depth_multiplier]`. Padding arithmetic as [`Conv2D`](super::Conv2D).
///
/// ```
/// use ferroflow_keras::layers::{DepthwiseConv2D, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let dw = LayerHandle::new(DepthwiseConv2D::new(3).depth_multiplier(2).padding("same"));
/// let y = dw.call(&ops::ones(&[1, 8, 8, 4], DType::F32), false)?;
/// assert_eq!(y.shape(), &[1, 8, 8, 8]);
/// assert_eq!(dw.lock().count_params(), 3 * 3 * 4 * 2 + 8);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct DepthwiseConv2D {
    base: LayerBase,
    /// Filters per input channel.
    pub depth_multiplier: usize,
    /// Window size `[kh, kw]`.
    pub kernel_size: [usize; 2],
    /// Strides `[sh, sw]`.
    pub strides: [usize; 2],
    padding: PaddingArg,
    /// Dilation rates `[dh, dw]`.
    pub dilation_rate: [usize; 2],
    args: KernelArgs,
    kernel: Option<Variable>,
    pad: ConvPadding,
}

impl DepthwiseConv2D {
    /// `DepthwiseConv2D(kernel_size)` with Keras's defaults; `kernel_size` is `3` or `(3, 3)`.
    pub fn new(kernel_size: impl Into<Pair>) -> DepthwiseConv2D {
        DepthwiseConv2D {
            base: LayerBase::new("DepthwiseConv2D"),
            depth_multiplier: 1,
            kernel_size: kernel_size.into().0,
            strides: [1, 1],
            padding: ConvPadding::Valid.into(),
            dilation_rate: [1, 1],
            args: KernelArgs::new(),
            kernel: None,
            pad: ConvPadding::Valid,
        }
    }

    /// Filters per input channel (default 1).
    pub fn depth_multiplier(mut self, m: usize) -> Self {
        self.depth_multiplier = m;
        self
    }

    window_builders!();

    fn check_args(&self) -> Result<ConvPadding> {
        let name = &self.base.name;
        check_positive(name, "depth_multiplier", &[self.depth_multiplier])?;
        check_window(name, &self.kernel_size, &self.strides, &self.dilation_rate)?;
        resolve_padding(&self.padding, false)
    }

    kernel_builders!(depthwise_initializer, depthwise_regularizer);
}

impl Layer for DepthwiseConv2D {
    fn class_name(&self) -> &str {
        "DepthwiseConv2D"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        Some(InputSpec::ndim(4).axis(-1, built_dim(&self.base, -1)))
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let name = self.base.name.clone();
        let shape = input_shapes
            .first()
            .ok_or_else(|| Error::invalid(&name, "DepthwiseConv2D needs one input"))?;
        self.pad = self.check_args()?;
        check_rank(&name, "DepthwiseConv2D", shape, 4)?;
        let in_ch = known_channels(&name, shape)?;
        let r = self.args.resolve()?;
        let k_init = r.kernel_initializer.clone();
        let k_reg = r.kernel_regularizer.clone();
        let [kh, kw] = self.kernel_size;
        self.kernel = Some(self.base.add_weight(
            "kernel",
            &[kh, kw, in_ch, self.depth_multiplier],
            &k_init,
            k_reg,
            true,
        )?);
        self.args
            .add_bias(&mut self.base, &r, in_ch * self.depth_multiplier)?;
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
            "DepthwiseConv2D",
            &crate::backend::batch_shape(x.shape()),
            4,
        )?;
        let y = ops::depthwise_conv2d(
            x,
            &kernel,
            self.strides,
            self.pad.op_padding(),
            self.dilation_rate,
        )?;
        Ok(vec![self.args.finish(y)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.base.name.clone();
        let s = super::conv_utils::first_shape(&self.base.name, input_shapes)?;
        check_rank(&name, "DepthwiseConv2D", s, 4)?;
        let pad = self.check_args()?;
        let mut out = vec![s[0]];
        for i in 0..2 {
            out.push(conv_output_length(
                &name,
                s[i + 1],
                self.kernel_size[i],
                self.strides[i],
                self.dilation_rate[i],
                pad,
            )?);
        }
        out.push(s[3].map(|c| c * self.depth_multiplier));
        Ok(vec![out])
    }

    fn get_config(&self) -> Value {
        let mut c = json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "depth_multiplier": self.depth_multiplier,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding.0.as_ref().map(|p| p.name()).unwrap_or("invalid"),
            "dilation_rate": self.dilation_rate,
            "activation": self.args.activation_name(),
            "use_bias": self.args.use_bias,
        });
        self.args.config_into(&mut c, "depthwise");
        c
    }
}
