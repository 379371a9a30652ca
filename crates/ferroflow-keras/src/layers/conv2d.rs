//! `keras.layers.Conv2D`.

use ferroflow_core::{ops, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::conv_utils::{
    check_positive, check_rank, check_window, conv_output_length, known_channels, resolve_padding,
    window_builders, ConvPadding, PaddingArg, Pair,
};
use super::kernel_args::{kernel_builders, KernelArgs};
use super::layer::{built_dim, single_input, InputSpec, Layer, LayerBase};
use crate::backend::Shape;

/// `keras.layers.Conv2D(filters, kernel_size, strides=(1, 1), padding="valid",
/// dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer="glorot_uniform",
/// bias_initializer="zeros")`: a 2-D convolution over channels-last (NHWC) inputs of rank 4.
///
/// The kernel is `[kh, kw, in, filters]` (Keras's layout), the bias `[filters]`. `padding` is
/// `"valid"` (`out = floor((in - d(k-1) - 1)/s) + 1`) or `"same"` (`out = ceil(in/s)`, the odd
/// padding element at the bottom/right, as Keras/TensorFlow). As Keras, `strides > 1` together
/// with `dilation_rate > 1` is refused. `groups` and `data_format="channels_first"` are not
/// supported.
///
/// ```
/// use ferroflow_keras::layers::{Conv2D, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let conv = LayerHandle::new(Conv2D::new(32, (3, 3)).activation("relu"));
/// let y = conv.call(&ops::ones(&[2, 28, 28, 1], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 26, 26, 32]);
/// assert_eq!(conv.lock().count_params(), 3 * 3 * 1 * 32 + 32); // 320, as Keras
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Conv2D {
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
    args: KernelArgs,
    kernel: Option<Variable>,
    pad: ConvPadding,
}

impl Conv2D {
    /// `Conv2D(filters, kernel_size)` with Keras's defaults; `kernel_size` is `3` or `(3, 3)`.
    pub fn new(filters: usize, kernel_size: impl Into<Pair>) -> Conv2D {
        Conv2D {
            base: LayerBase::new("Conv2D"),
            filters,
            kernel_size: kernel_size.into().0,
            strides: [1, 1],
            padding: ConvPadding::Valid.into(),
            dilation_rate: [1, 1],
            args: KernelArgs::new(),
            kernel: None,
            pad: ConvPadding::Valid,
        }
    }

    window_builders!();

    fn check_args(&self) -> Result<ConvPadding> {
        let name = &self.base.name;
        check_positive(name, "filters", &[self.filters])?;
        check_window(name, &self.kernel_size, &self.strides, &self.dilation_rate)?;
        resolve_padding(&self.padding, false)
    }

    kernel_builders!(kernel_initializer, kernel_regularizer);
}

impl Layer for Conv2D {
    fn class_name(&self) -> &str {
        "Conv2D"
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
            .ok_or_else(|| Error::invalid(&name, "Conv2D needs one input"))?;
        self.pad = self.check_args()?;
        check_rank(&name, "Conv2D", shape, 4)?;
        let in_ch = known_channels(&name, shape)?;
        let r = self.args.resolve()?;
        let k_init = r.kernel_initializer.clone();
        let k_reg = r.kernel_regularizer.clone();
        let [kh, kw] = self.kernel_size;
        self.kernel = Some(self.base.add_weight(
            "kernel",
            &[kh, kw, in_ch, self.filters],
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
            "Conv2D",
            &crate::backend::batch_shape(x.shape()),
            4,
        )?;
        let y = ops::conv2d(
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
        check_rank(&name, "Conv2D", s, 4)?;
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
            "activation": self.args.activation_name(),
            "use_bias": self.args.use_bias,
        });
        self.args.config_into(&mut c, "kernel");
        c
    }
}
