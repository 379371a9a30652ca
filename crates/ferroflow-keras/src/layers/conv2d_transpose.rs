//! `keras.layers.Conv2DTranspose`.

use ferroflow_core::{ops, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::conv_utils::{
    check_positive, check_rank, deconv_output_length, known_channels, resolve_padding,
    window_builders, ConvPadding, PaddingArg, Pair,
};
use super::kernel_args::{kernel_builders, KernelArgs};
use super::layer::{built_dim, single_input, InputSpec, Layer, LayerBase};
use crate::backend::Shape;

/// `keras.layers.Conv2DTranspose(filters, kernel_size, strides=(1, 1), padding="valid",
/// dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer="glorot_uniform",
/// bias_initializer="zeros")`: the transpose (gradient) of a 2-D convolution, for learned
/// up-sampling, over NHWC inputs of rank 4.
///
/// The kernel is `[kh, kw, filters, in]` (Keras's layout: output channels before input
/// channels), the bias `[filters]`. Output sizes follow Keras's `deconv_output_length`: without
/// `output_padding`, `valid` → `in·s + max(k - s, 0)` (`k` the dilated kernel size), `same` →
/// `in·s` (e.g. 7 with k=3, s=2 → 15 | 14); with it, `(in - 1)·s + k - 2·pad + output_padding`
/// (`pad = k / 2` for `same`, 0 for `valid`), and as Keras each `output_padding` must be smaller
/// than its stride.
///
/// ```
/// use ferroflow_keras::layers::{Conv2DTranspose, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let up = LayerHandle::new(Conv2DTranspose::new(8, 3).strides(2).padding("same"));
/// let y = up.call(&ops::ones(&[1, 7, 7, 4], DType::F32), false)?;
/// assert_eq!(y.shape(), &[1, 14, 14, 8]);
/// assert_eq!(up.lock().count_params(), 3 * 3 * 8 * 4 + 8);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Conv2DTranspose {
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
    /// Extra rows/columns on the output's bottom/right (Keras's `output_padding`; `None` infers
    /// the size).
    pub output_padding: Option<[usize; 2]>,
    args: KernelArgs,
    kernel: Option<Variable>,
    pad: ConvPadding,
}

impl Conv2DTranspose {
    /// `Conv2DTranspose(filters, kernel_size)` with Keras's defaults; `kernel_size` is `3` or
    /// `(3, 3)`.
    pub fn new(filters: usize, kernel_size: impl Into<Pair>) -> Conv2DTranspose {
        Conv2DTranspose {
            base: LayerBase::new("Conv2DTranspose"),
            filters,
            kernel_size: kernel_size.into().0,
            strides: [1, 1],
            padding: ConvPadding::Valid.into(),
            dilation_rate: [1, 1],
            output_padding: None,
            args: KernelArgs::new(),
            kernel: None,
            pad: ConvPadding::Valid,
        }
    }

    window_builders!();

    /// `output_padding`, `1` or `(1, 0)`: each must be smaller than its stride.
    pub fn output_padding(mut self, p: impl Into<Pair>) -> Self {
        self.output_padding = Some(p.into().0);
        self
    }

    fn check_args(&self) -> Result<ConvPadding> {
        let name = &self.base.name;
        check_positive(name, "filters", &[self.filters])?;
        check_positive(name, "kernel_size", &self.kernel_size)?;
        check_positive(name, "strides", &self.strides)?;
        check_positive(name, "dilation_rate", &self.dilation_rate)?;
        if let Some(op) = self.output_padding {
            if op.iter().zip(&self.strides).any(|(p, s)| p >= s) {
                return Err(Error::invalid(
                    name,
                    format!(
                        "layer {name:?}: strides must be greater than output padding, got \
                         strides={:?}, output_padding={op:?}",
                        self.strides
                    ),
                ));
            }
        }
        resolve_padding(&self.padding, false)
    }

    kernel_builders!(kernel_initializer, kernel_regularizer);
}

impl Layer for Conv2DTranspose {
    fn class_name(&self) -> &str {
        "Conv2DTranspose"
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
            .ok_or_else(|| Error::invalid(&name, "Conv2DTranspose needs one input"))?;
        self.pad = self.check_args()?;
        check_rank(&name, "Conv2DTranspose", shape, 4)?;
        let in_ch = known_channels(&name, shape)?;
        let r = self.args.resolve()?;
        let k_init = r.kernel_initializer.clone();
        let k_reg = r.kernel_regularizer.clone();
        let [kh, kw] = self.kernel_size;
        self.kernel = Some(self.base.add_weight(
            "kernel",
            &[kh, kw, self.filters, in_ch],
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
            "Conv2DTranspose",
            &crate::backend::batch_shape(x.shape()),
            4,
        )?;
        let out_size = |i: usize| {
            deconv_output_length(
                Some(x.shape()[i + 1]),
                self.kernel_size[i],
                self.strides[i],
                self.dilation_rate[i],
                self.pad,
                self.output_padding.map(|p| p[i]),
            )
            .unwrap_or(0)
        };
        let output_shape = [x.shape()[0], out_size(0), out_size(1), self.filters];
        let y = ops::conv2d_transpose(
            x,
            &kernel,
            &output_shape,
            self.strides,
            self.pad.op_padding(),
            self.dilation_rate,
        )?;
        Ok(vec![self.args.finish(y)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let name = self.base.name.clone();
        let s = super::conv_utils::first_shape(&self.base.name, input_shapes)?;
        check_rank(&name, "Conv2DTranspose", s, 4)?;
        let pad = self.check_args()?;
        let mut out = vec![s[0]];
        for i in 0..2 {
            out.push(deconv_output_length(
                s[i + 1],
                self.kernel_size[i],
                self.strides[i],
                self.dilation_rate[i],
                pad,
                self.output_padding.map(|p| p[i]),
            ));
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
            "output_padding": self.output_padding,
            "activation": self.args.activation_name(),
            "use_bias": self.args.use_bias,
        });
        self.args.config_into(&mut c, "kernel");
        c
    }
}
