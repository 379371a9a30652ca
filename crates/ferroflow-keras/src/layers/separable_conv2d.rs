//! `keras.layers.SeparableConv2D`.

use ferroflow_core::ops::Padding;
use ferroflow_core::{ops, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::conv_utils::{
    check_positive, check_rank, check_window, conv_output_length, known_channels, resolve_padding,
    window_builders, ConvPadding, PaddingArg, Pair,
};
use super::kernel_args::{kernel_builders, resolve_opt, KernelArgs};
use super::layer::{built_dim, single_input, InputSpec, Layer, LayerBase};
use crate::backend::{Arg, Shape};
use crate::initializers::Initializer;
use crate::regularizers::Regularizer;

/// `keras.layers.SeparableConv2D(filters, kernel_size, strides=(1, 1), padding="valid",
/// dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
/// depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
/// bias_initializer="zeros")`: a depthwise convolution (strides, padding and dilation apply
/// here) followed by a pointwise 1×1 convolution mixing channels, as `tf.nn.separable_conv2d`.
///
/// Weights, in Keras's order: `depthwise_kernel` `[kh, kw, in, depth_multiplier]`,
/// `pointwise_kernel` `[1, 1, in·depth_multiplier, filters]`, `bias` `[filters]`. NHWC inputs of
/// rank 4; padding arithmetic as [`Conv2D`](super::Conv2D).
///
/// ```
/// use ferroflow_keras::layers::{SeparableConv2D, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let sep = LayerHandle::new(SeparableConv2D::new(16, 3).padding("same"));
/// let y = sep.call(&ops::ones(&[1, 8, 8, 4], DType::F32), false)?;
/// assert_eq!(y.shape(), &[1, 8, 8, 16]);
/// assert_eq!(sep.lock().count_params(), 3 * 3 * 4 + 4 * 16 + 16);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct SeparableConv2D {
    base: LayerBase,
    /// Number of output channels.
    pub filters: usize,
    /// Window size `[kh, kw]`.
    pub kernel_size: [usize; 2],
    /// Strides `[sh, sw]`.
    pub strides: [usize; 2],
    padding: PaddingArg,
    /// Dilation rates `[dh, dw]`.
    pub dilation_rate: [usize; 2],
    /// Depthwise filters per input channel.
    pub depth_multiplier: usize,
    args: KernelArgs,
    pointwise_initializer: Arg<Initializer>,
    pointwise_regularizer: Option<Arg<Regularizer>>,
    depthwise_kernel: Option<Variable>,
    pointwise_kernel: Option<Variable>,
    pad: ConvPadding,
}

impl SeparableConv2D {
    /// `SeparableConv2D(filters, kernel_size)` with Keras's defaults; `kernel_size` is `3` or
    /// `(3, 3)`.
    pub fn new(filters: usize, kernel_size: impl Into<Pair>) -> SeparableConv2D {
        SeparableConv2D {
            base: LayerBase::new("SeparableConv2D"),
            filters,
            kernel_size: kernel_size.into().0,
            strides: [1, 1],
            padding: ConvPadding::Valid.into(),
            dilation_rate: [1, 1],
            args: KernelArgs::new(),
            depth_multiplier: 1,
            pointwise_initializer: Arg(Ok(Initializer::glorot_uniform())),
            pointwise_regularizer: None,
            depthwise_kernel: None,
            pointwise_kernel: None,
            pad: ConvPadding::Valid,
        }
    }

    window_builders!();

    /// Depthwise filters per input channel (default 1).
    pub fn depth_multiplier(mut self, m: usize) -> Self {
        self.depth_multiplier = m;
        self
    }

    /// The pointwise kernel initializer.
    pub fn pointwise_initializer(mut self, i: impl Into<Arg<Initializer>>) -> Self {
        self.pointwise_initializer = i.into();
        self
    }

    /// A penalty on the pointwise kernel.
    pub fn pointwise_regularizer(mut self, r: impl Into<Arg<Regularizer>>) -> Self {
        self.pointwise_regularizer = Some(r.into());
        self
    }

    fn check_args(&self) -> Result<ConvPadding> {
        let name = &self.base.name;
        check_positive(name, "filters", &[self.filters])?;
        check_positive(name, "depth_multiplier", &[self.depth_multiplier])?;
        check_window(name, &self.kernel_size, &self.strides, &self.dilation_rate)?;
        resolve_padding(&self.padding, false)
    }

    kernel_builders!(depthwise_initializer, depthwise_regularizer);
}

impl Layer for SeparableConv2D {
    fn class_name(&self) -> &str {
        "SeparableConv2D"
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
            .ok_or_else(|| Error::invalid(&name, "SeparableConv2D needs one input"))?;
        self.pad = self.check_args()?;
        check_rank(&name, "SeparableConv2D", shape, 4)?;
        let in_ch = known_channels(&name, shape)?;
        let r = self.args.resolve()?;
        let d_init = r.kernel_initializer.clone();
        let p_init = self.pointwise_initializer.0.clone()?;
        let d_reg = r.kernel_regularizer.clone();
        let p_reg = resolve_opt(&self.pointwise_regularizer)?;
        let [kh, kw] = self.kernel_size;
        let mult = self.depth_multiplier;
        self.depthwise_kernel = Some(self.base.add_weight(
            "depthwise_kernel",
            &[kh, kw, in_ch, mult],
            &d_init,
            d_reg,
            true,
        )?);
        self.pointwise_kernel = Some(self.base.add_weight(
            "pointwise_kernel",
            &[1, 1, in_ch * mult, self.filters],
            &p_init,
            p_reg,
            true,
        )?);
        self.args.add_bias(&mut self.base, &r, self.filters)?;
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let not_built = || Error::invalid(&self.base.name, "layer is not built");
        let depthwise = self
            .depthwise_kernel
            .as_ref()
            .ok_or_else(not_built)?
            .value();
        let pointwise = self
            .pointwise_kernel
            .as_ref()
            .ok_or_else(not_built)?
            .value();
        check_rank(
            &self.base.name,
            "SeparableConv2D",
            &crate::backend::batch_shape(x.shape()),
            4,
        )?;
        let y = ops::depthwise_conv2d(
            x,
            &depthwise,
            self.strides,
            self.pad.op_padding(),
            self.dilation_rate,
        )?;
        let y = ops::conv2d(&y, &pointwise, [1, 1], Padding::Valid, [1, 1])?;
        Ok(vec![self.args.finish(y)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.base.name.clone();
        let s = super::conv_utils::first_shape(&self.base.name, input_shapes)?;
        check_rank(&name, "SeparableConv2D", s, 4)?;
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
        out.push(Some(self.filters));
        Ok(vec![out])
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
            "depth_multiplier": self.depth_multiplier,
            "activation": self.args.activation_name(),
            "use_bias": self.args.use_bias,
        });
        self.args.config_into(&mut c, "depthwise");
        c
    }
}
