//! `keras.layers.Dense`.

use ferroflow_core::{ops, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::layer::{built_dim, single_input, InputSpec, Layer, LayerBase};
use crate::activations::Activation;
use crate::backend::{Arg, Shape};
use crate::initializers::Initializer;
use crate::regularizers::Regularizer;

/// `keras.layers.Dense(units, activation=None, use_bias=True,
/// kernel_initializer="glorot_uniform", bias_initializer="zeros")`: `activation(x·W + b)` on the
/// last axis (kernel `[in, units]`; N-D inputs keep their leading axes).
///
/// ```
/// use ferroflow_keras::layers::{Dense, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let dense = LayerHandle::new(Dense::new(3).activation("relu"));
/// let y = dense.call(&ops::ones(&[2, 4], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 3]);
/// assert_eq!(dense.lock().count_params(), 4 * 3 + 3);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Dense {
    base: LayerBase,
    /// Output size.
    pub units: usize,
    activation: Arg<Activation>,
    /// Whether to add a bias.
    pub use_bias: bool,
    kernel_initializer: Arg<Initializer>,
    bias_initializer: Arg<Initializer>,
    kernel_regularizer: Option<Arg<Regularizer>>,
    bias_regularizer: Option<Arg<Regularizer>>,
    kernel: Option<Variable>,
    bias: Option<Variable>,
    act: Activation,
}

impl Dense {
    /// `Dense(units)` with Keras's defaults.
    pub fn new(units: usize) -> Dense {
        Dense {
            base: LayerBase::new("Dense"),
            units,
            activation: Arg(Ok(Activation::Linear)),
            use_bias: true,
            kernel_initializer: Arg(Ok(Initializer::glorot_uniform())),
            bias_initializer: Arg(Ok(Initializer::Zeros)),
            kernel_regularizer: None,
            bias_regularizer: None,
            kernel: None,
            bias: None,
            act: Activation::Linear,
        }
    }

    /// The activation, by name or value.
    pub fn activation(mut self, a: impl Into<Arg<Activation>>) -> Self {
        self.activation = a.into();
        self
    }

    /// Whether to add a bias.
    pub fn use_bias(mut self, b: bool) -> Self {
        self.use_bias = b;
        self
    }

    /// The kernel initializer.
    pub fn kernel_initializer(mut self, i: impl Into<Arg<Initializer>>) -> Self {
        self.kernel_initializer = i.into();
        self
    }

    /// The bias initializer.
    pub fn bias_initializer(mut self, i: impl Into<Arg<Initializer>>) -> Self {
        self.bias_initializer = i.into();
        self
    }

    /// A penalty on the kernel.
    pub fn kernel_regularizer(mut self, r: impl Into<Arg<Regularizer>>) -> Self {
        self.kernel_regularizer = Some(r.into());
        self
    }

    /// A penalty on the bias.
    pub fn bias_regularizer(mut self, r: impl Into<Arg<Regularizer>>) -> Self {
        self.bias_regularizer = Some(r.into());
        self
    }
}

/// Resolves an optional named argument.
pub(crate) fn resolve_opt<T: Clone>(a: &Option<Arg<T>>) -> Result<Option<T>> {
    match a {
        None => Ok(None),
        Some(Arg(r)) => r.clone().map(Some),
    }
}

impl Layer for Dense {
    fn class_name(&self) -> &str {
        "Dense"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        Some(InputSpec::min_ndim(2).axis(-1, built_dim(&self.base, -1)))
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let name = self.base.name.clone();
        let shape = input_shapes
            .first()
            .ok_or_else(|| Error::invalid(&name, "Dense needs one input"))?;
        let Some(Some(in_dim)) = shape.last().copied() else {
            return Err(Error::invalid(
                &name,
                format!(
                    "layer {name:?}: the last dimension of the input must be known, got {}",
                    crate::backend::fmt_shape(shape)
                ),
            ));
        };
        self.act = self.activation.0.clone()?;
        let k_init = self.kernel_initializer.0.clone()?;
        let b_init = self.bias_initializer.0.clone()?;
        let k_reg = resolve_opt(&self.kernel_regularizer)?;
        let b_reg = resolve_opt(&self.bias_regularizer)?;
        self.kernel =
            Some(
                self.base
                    .add_weight("kernel", &[in_dim, self.units], &k_init, k_reg, true)?,
            );
        if self.use_bias {
            self.bias = Some(
                self.base
                    .add_weight("bias", &[self.units], &b_init, b_reg, true)?,
            );
        }
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let kernel = self
            .kernel
            .as_ref()
            .ok_or_else(|| Error::invalid(&self.base.name, "layer is not built"))?
            .value();
        let y = if x.rank() == 2 {
            ops::matmul(x, &kernel, false, false)?
        } else {
            ops::tensordot(x, &kernel, ops::TensordotAxes::N(1))?
        };
        let y = match &self.bias {
            Some(b) => ops::bias_add(&y, &b.value())?,
            None => y,
        };
        Ok(vec![self.act.apply(&y)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let mut s = input_shapes[0].clone();
        if let Some(last) = s.last_mut() {
            *last = Some(self.units);
        }
        Ok(vec![s])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "units": self.units,
            "activation": self.activation.0.as_ref().map(|a| a.name().to_string()).unwrap_or_default(),
            "use_bias": self.use_bias,
        })
    }
}
