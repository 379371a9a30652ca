//! `keras.layers.Dense`.

use ferroflow_core::{ops, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::kernel_args::{kernel_builders, KernelArgs};
use super::layer::{built_dim, single_input, InputSpec, Layer, LayerBase};
use crate::backend::Shape;

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
    args: KernelArgs,
    kernel: Option<Variable>,
}

impl Dense {
    /// `Dense(units)` with Keras's defaults.
    pub fn new(units: usize) -> Dense {
        Dense {
            base: LayerBase::new("Dense"),
            units,
            args: KernelArgs::new(),
            kernel: None,
        }
    }

    kernel_builders!(kernel_initializer, kernel_regularizer);
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

    /// Keras sets `supports_masking = True` on `Dense`: the input mask passes through.
    fn supports_masking(&self) -> bool {
        true
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
        let r = self.args.resolve()?;
        let k_init = r.kernel_initializer.clone();
        let k_reg = r.kernel_regularizer.clone();
        self.kernel =
            Some(
                self.base
                    .add_weight("kernel", &[in_dim, self.units], &k_init, k_reg, true)?,
            );
        self.args.add_bias(&mut self.base, &r, self.units)?;
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
        Ok(vec![self.args.finish(y)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let mut s = input_shapes[0].clone();
        if let Some(last) = s.last_mut() {
            *last = Some(self.units);
        }
        Ok(vec![s])
    }

    fn get_config(&self) -> Value {
        let mut c = json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "units": self.units,
            "activation": self.args.activation_name(),
            "use_bias": self.args.use_bias,
        });
        self.args.config_into(&mut c, "kernel");
        c
    }
}
