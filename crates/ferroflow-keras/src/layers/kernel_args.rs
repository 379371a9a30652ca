//! What `Dense` and the convolution layers share: the activation, the bias, and the kernel's and
//! bias's initializers and regularizers — their Keras arguments, their builder methods, and the
//! `bias_add` + activation that ends every forward pass.

use ferroflow_core::{ops, Result, Tensor, Variable};

use super::layer::LayerBase;
use crate::activations::Activation;
use crate::backend::Arg;
use crate::initializers::Initializer;
use crate::regularizers::Regularizer;

/// Resolves an optional named argument.
pub(crate) fn resolve_opt<T: Clone>(a: &Option<Arg<T>>) -> Result<Option<T>> {
    match a {
        None => Ok(None),
        Some(Arg(r)) => r.clone().map(Some),
    }
}

/// The shared arguments, with Keras's defaults (`activation=None`, `use_bias=True`,
/// `kernel_initializer="glorot_uniform"`, `bias_initializer="zeros"`), and what `build` made of
/// them.
pub(crate) struct KernelArgs {
    pub(crate) activation: Arg<Activation>,
    pub(crate) use_bias: bool,
    pub(crate) kernel_initializer: Arg<Initializer>,
    pub(crate) bias_initializer: Arg<Initializer>,
    pub(crate) kernel_regularizer: Option<Arg<Regularizer>>,
    pub(crate) bias_regularizer: Option<Arg<Regularizer>>,
    act: Activation,
    bias: Option<Variable>,
}

/// The initializers and regularizers resolved from their names, ready for `add_weight`.
pub(crate) struct Resolved {
    pub(crate) kernel_initializer: Initializer,
    pub(crate) kernel_regularizer: Option<Regularizer>,
    bias_initializer: Initializer,
    bias_regularizer: Option<Regularizer>,
}

impl KernelArgs {
    pub(crate) fn new() -> KernelArgs {
        KernelArgs {
            activation: Arg(Ok(Activation::Linear)),
            use_bias: true,
            kernel_initializer: Arg(Ok(Initializer::glorot_uniform())),
            bias_initializer: Arg(Ok(Initializer::Zeros)),
            kernel_regularizer: None,
            bias_regularizer: None,
            act: Activation::Linear,
            bias: None,
        }
    }

    /// Resolves every name (a bad one is the build's error) and keeps the activation.
    pub(crate) fn resolve(&mut self) -> Result<Resolved> {
        self.act = self.activation.0.clone()?;
        Ok(Resolved {
            kernel_initializer: self.kernel_initializer.0.clone()?,
            bias_initializer: self.bias_initializer.0.clone()?,
            kernel_regularizer: resolve_opt(&self.kernel_regularizer)?,
            bias_regularizer: resolve_opt(&self.bias_regularizer)?,
        })
    }

    /// Adds the `bias` weight of `units` values, if `use_bias`.
    pub(crate) fn add_bias(
        &mut self,
        base: &mut LayerBase,
        r: &Resolved,
        units: usize,
    ) -> Result<()> {
        if self.use_bias {
            self.bias = Some(base.add_weight(
                "bias",
                &[units],
                &r.bias_initializer,
                r.bias_regularizer.clone(),
                true,
            )?);
        }
        Ok(())
    }

    /// The end of the forward pass: `activation(y + bias)`.
    pub(crate) fn finish(&self, y: Tensor) -> Result<Tensor> {
        let y = match &self.bias {
            Some(b) => ops::bias_add(&y, &b.value())?,
            None => y,
        };
        self.act.apply(&y)
    }

    /// Adds the initializers and regularizers to a layer's `get_config` object, as Keras's
    /// nested objects (`{kernel}_initializer`, `bias_initializer`, `{kernel}_regularizer`,
    /// `bias_regularizer`; `null` for no regularizer). A name that does not resolve is written
    /// as `null`.
    pub(crate) fn config_into(&self, c: &mut serde_json::Value, kernel: &str) {
        let init = |a: &Arg<Initializer>| {
            a.0.as_ref()
                .map(Initializer::get_config)
                .unwrap_or(serde_json::Value::Null)
        };
        let reg = |a: &Option<Arg<Regularizer>>| match a {
            Some(Arg(Ok(r))) => r.get_config(),
            _ => serde_json::Value::Null,
        };
        if let Some(o) = c.as_object_mut() {
            o.insert(
                format!("{kernel}_initializer"),
                init(&self.kernel_initializer),
            );
            o.insert("bias_initializer".into(), init(&self.bias_initializer));
            o.insert(
                format!("{kernel}_regularizer"),
                reg(&self.kernel_regularizer),
            );
            o.insert("bias_regularizer".into(), reg(&self.bias_regularizer));
        }
    }

    /// The activation's name, for `get_config`.
    pub(crate) fn activation_name(&self) -> String {
        self.activation
            .0
            .as_ref()
            .map(|a| a.name().to_string())
            .unwrap_or_default()
    }
}

/// The builder methods for [`KernelArgs`] (held in a field `args`), with the kernel's
/// initializer and regularizer methods named as the layer names them in Keras
/// (`kernel_initializer`, or `depthwise_initializer` for `DepthwiseConv2D`).
macro_rules! kernel_builders {
    ($kernel_initializer:ident, $kernel_regularizer:ident) => {
        /// The activation, by name or value.
        pub fn activation(
            mut self,
            a: impl Into<$crate::backend::Arg<$crate::activations::Activation>>,
        ) -> Self {
            self.args.activation = a.into();
            self
        }

        /// Whether to add a bias.
        pub fn use_bias(mut self, b: bool) -> Self {
            self.args.use_bias = b;
            self
        }

        /// The kernel's initializer.
        pub fn $kernel_initializer(
            mut self,
            i: impl Into<$crate::backend::Arg<$crate::initializers::Initializer>>,
        ) -> Self {
            self.args.kernel_initializer = i.into();
            self
        }

        /// The bias initializer.
        pub fn bias_initializer(
            mut self,
            i: impl Into<$crate::backend::Arg<$crate::initializers::Initializer>>,
        ) -> Self {
            self.args.bias_initializer = i.into();
            self
        }

        /// A penalty on the kernel.
        pub fn $kernel_regularizer(
            mut self,
            r: impl Into<$crate::backend::Arg<$crate::regularizers::Regularizer>>,
        ) -> Self {
            self.args.kernel_regularizer = Some(r.into());
            self
        }

        /// A penalty on the bias.
        pub fn bias_regularizer(
            mut self,
            r: impl Into<$crate::backend::Arg<$crate::regularizers::Regularizer>>,
        ) -> Self {
            self.args.bias_regularizer = Some(r.into());
            self
        }
    };
}
pub(crate) use kernel_builders;
