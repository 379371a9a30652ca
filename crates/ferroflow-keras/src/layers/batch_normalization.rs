//! `keras.layers.BatchNormalization`.

use ferroflow_core::{ops, DType, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::kernel_args::resolve_opt;
use super::layer::{built_dim, single_input, InputSpec, Layer, LayerBase};
use crate::backend::{fmt_shape, Arg, Shape};
use crate::initializers::Initializer;
use crate::regularizers::Regularizer;

/// `keras.layers.BatchNormalization(axis=-1, momentum=0.99, epsilon=1e-3, center=True,
/// scale=True, beta_initializer="zeros", gamma_initializer="ones",
/// moving_mean_initializer="zeros", moving_variance_initializer="ones")`.
///
/// Matches Keras 3:
/// - weights, in order, `gamma` (if `scale`), `beta` (if `center`), `moving_mean`,
///   `moving_variance`, each of shape `[input_shape[axis]]`; the moving statistics are
///   non-trainable;
/// - in training (`training=true` and the layer trainable), the batch mean and the **biased**
///   variance over every axis but `axis` normalize the input,
///   `y = (x - μ)/√(σ² + ε)·γ + β`, and the moving statistics become
///   `mm·momentum + μ·(1 - momentum)` and `mv·momentum + σ²·(1 - momentum)`;
/// - in inference (or when the layer is frozen, as Keras 3 does), the moving statistics
///   normalize the input.
///
/// The moving statistics are updated from `stop_gradient`'ed batch statistics, so training
/// under a `GradientTape` differentiates only the normalization. Float64 inputs are normalized
/// in float64 (the float32 weights are cast to the input's dtype).
///
/// ```
/// use ferroflow_keras::layers::{BatchNormalization, Layer, LayerHandle};
/// use ferroflow_core::{ops, DType};
/// let bn = LayerHandle::new(BatchNormalization::new());
/// let y = bn.call(&ops::ones(&[4, 64], DType::F32), true)?;
/// assert_eq!(y.shape(), &[4, 64]);
/// let l = bn.lock();
/// assert_eq!(l.count_params(), 256);
/// assert_eq!(l.trainable_weights().len(), 2);
/// assert_eq!(l.non_trainable_weights().len(), 2);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct BatchNormalization {
    base: LayerBase,
    /// The feature axis (negative counts from the end).
    pub axis: isize,
    /// Momentum of the moving statistics.
    pub momentum: f64,
    /// Added to the variance before the square root.
    pub epsilon: f64,
    /// Whether to add the offset `beta`.
    pub center: bool,
    /// Whether to multiply by `gamma`.
    pub scale: bool,
    beta_initializer: Arg<Initializer>,
    gamma_initializer: Arg<Initializer>,
    moving_mean_initializer: Arg<Initializer>,
    moving_variance_initializer: Arg<Initializer>,
    beta_regularizer: Option<Arg<Regularizer>>,
    gamma_regularizer: Option<Arg<Regularizer>>,
    gamma: Option<Variable>,
    beta: Option<Variable>,
    moving_mean: Option<Variable>,
    moving_variance: Option<Variable>,
}

impl BatchNormalization {
    /// `BatchNormalization()` with Keras's defaults.
    pub fn new() -> BatchNormalization {
        BatchNormalization {
            base: LayerBase::new("BatchNormalization"),
            axis: -1,
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            beta_initializer: Arg(Ok(Initializer::Zeros)),
            gamma_initializer: Arg(Ok(Initializer::Ones)),
            moving_mean_initializer: Arg(Ok(Initializer::Zeros)),
            moving_variance_initializer: Arg(Ok(Initializer::Ones)),
            beta_regularizer: None,
            gamma_regularizer: None,
            gamma: None,
            beta: None,
            moving_mean: None,
            moving_variance: None,
        }
    }

    /// The feature axis (default -1, channels-last).
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// Momentum of the moving statistics (default 0.99).
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }

    /// Epsilon (default 1e-3).
    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }

    /// Whether to add `beta` (default true).
    pub fn center(mut self, c: bool) -> Self {
        self.center = c;
        self
    }

    /// Whether to multiply by `gamma` (default true).
    pub fn scale(mut self, s: bool) -> Self {
        self.scale = s;
        self
    }

    /// The initializer of `beta` (default zeros).
    pub fn beta_initializer(mut self, i: impl Into<Arg<Initializer>>) -> Self {
        self.beta_initializer = i.into();
        self
    }

    /// The initializer of `gamma` (default ones).
    pub fn gamma_initializer(mut self, i: impl Into<Arg<Initializer>>) -> Self {
        self.gamma_initializer = i.into();
        self
    }

    /// The initializer of `moving_mean` (default zeros).
    pub fn moving_mean_initializer(mut self, i: impl Into<Arg<Initializer>>) -> Self {
        self.moving_mean_initializer = i.into();
        self
    }

    /// The initializer of `moving_variance` (default ones).
    pub fn moving_variance_initializer(mut self, i: impl Into<Arg<Initializer>>) -> Self {
        self.moving_variance_initializer = i.into();
        self
    }

    /// A penalty on `beta`.
    pub fn beta_regularizer(mut self, r: impl Into<Arg<Regularizer>>) -> Self {
        self.beta_regularizer = Some(r.into());
        self
    }

    /// A penalty on `gamma`.
    pub fn gamma_regularizer(mut self, r: impl Into<Arg<Regularizer>>) -> Self {
        self.gamma_regularizer = Some(r.into());
        self
    }

    /// The non-negative feature axis for an input of `rank`, or an error naming the layer.
    fn resolve_axis(&self, rank: usize, shape: &str) -> Result<usize> {
        let a = if self.axis < 0 {
            self.axis + rank as isize
        } else {
            self.axis
        };
        if a < 0 || a >= rank as isize {
            return Err(Error::invalid(
                &self.base.name,
                format!(
                    "layer {:?}: axis {} is out of range for an input of shape {shape}",
                    self.base.name, self.axis
                ),
            ));
        }
        Ok(a as usize)
    }
}

impl Default for BatchNormalization {
    fn default() -> Self {
        BatchNormalization::new()
    }
}

/// A variable's value in `dtype` (cast when the input is not float32).
pub(crate) fn value_as(v: &Variable, dtype: DType) -> Result<Tensor> {
    let t = v.value();
    if t.dtype() == dtype {
        Ok(t)
    } else {
        ops::cast(&t, dtype)
    }
}

/// Reshapes a per-feature vector so that it broadcasts against an input of `rank` along `axis`.
pub(crate) fn broadcast_param(p: Tensor, rank: usize, axis: usize) -> Result<Tensor> {
    if axis + 1 == rank {
        return Ok(p);
    }
    let mut shape = vec![1isize; rank];
    shape[axis] = -1;
    ops::reshape(&p, &shape)
}

impl Layer for BatchNormalization {
    fn class_name(&self) -> &str {
        "BatchNormalization"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    /// Keras sets `supports_masking = True` on `BatchNormalization`: the input mask passes through
    /// (the batch statistics here ignore it; Keras 3 excludes masked steps from them).
    fn supports_masking(&self) -> bool {
        true
    }

    fn input_spec(&self) -> Option<InputSpec> {
        Some(InputSpec::default().axis(self.axis, built_dim(&self.base, self.axis)))
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let name = self.base.name.clone();
        let shape = input_shapes
            .first()
            .ok_or_else(|| Error::invalid(&name, "BatchNormalization needs one input"))?;
        let axis = self.resolve_axis(shape.len(), &fmt_shape(shape))?;
        let Some(dim) = shape[axis] else {
            return Err(Error::invalid(
                &name,
                format!(
                    "layer {name:?}: axis {} of the input must be known, got {}",
                    self.axis,
                    fmt_shape(shape)
                ),
            ));
        };
        let gamma_init = self.gamma_initializer.0.clone()?;
        let beta_init = self.beta_initializer.0.clone()?;
        let mm_init = self.moving_mean_initializer.0.clone()?;
        let mv_init = self.moving_variance_initializer.0.clone()?;
        let gamma_reg = resolve_opt(&self.gamma_regularizer)?;
        let beta_reg = resolve_opt(&self.beta_regularizer)?;
        if self.scale {
            self.gamma =
                Some(
                    self.base
                        .add_weight("gamma", &[dim], &gamma_init, gamma_reg, true)?,
                );
        }
        if self.center {
            self.beta = Some(
                self.base
                    .add_weight("beta", &[dim], &beta_init, beta_reg, true)?,
            );
        }
        self.moving_mean =
            Some(
                self.base
                    .add_weight("moving_mean", &[dim], &mm_init, None, false)?,
            );
        self.moving_variance =
            Some(
                self.base
                    .add_weight("moving_variance", &[dim], &mv_init, None, false)?,
            );
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = single_input(&name, inputs)?;
        let shape_str = ferroflow_core::error::fmt_shape(x.shape());
        if !x.dtype().is_float() {
            return Err(Error::dtype(
                &name,
                format!("layer {name:?} expects a float input"),
                &[x.dtype()],
            ));
        }
        let rank = x.rank();
        let axis = self.resolve_axis(rank, &shape_str)?;
        let not_built = || Error::invalid(&name, "layer is not built");
        let mm = self.moving_mean.clone().ok_or_else(not_built)?;
        let mv = self.moving_variance.clone().ok_or_else(not_built)?;
        let dim = mm.shape()[0];
        if x.shape()[axis] != dim {
            return Err(Error::shape(
                &name,
                format!(
                    "layer {name:?} was built for {dim} features on axis {}, the input has {}",
                    self.axis,
                    x.shape()[axis]
                ),
                &[&mm.shape(), x.shape()],
            ));
        }
        let dtype = x.dtype();
        let param = |v: &Option<Variable>| -> Result<Option<Tensor>> {
            v.as_ref()
                .map(|v| broadcast_param(value_as(v, dtype)?, rank, axis))
                .transpose()
        };
        let gamma = param(&self.gamma)?;
        let beta = param(&self.beta)?;
        let y = if training && self.base.trainable {
            let reduction: Vec<isize> = (0..rank)
                .filter(|&a| a != axis)
                .map(|a| a as isize)
                .collect();
            let (mean, var) = ops::moments(x, reduction, true)?;
            let y = ops::batch_normalization(
                x,
                &mean,
                &var,
                beta.as_ref(),
                gamma.as_ref(),
                self.epsilon,
            )?;
            // Moving statistics from stop_gradient'ed batch statistics: the update is not part
            // of what a tape differentiates.
            let update = |v: &Variable, stat: &Tensor| -> Result<()> {
                let stat = ops::reshape(&ops::stop_gradient(stat)?, &[-1])?;
                let stat = ops::cast(&stat, v.dtype())?;
                let old = ops::stop_gradient(&v.value())?;
                let new = ops::add(
                    &ops::mul_scalar(&old, self.momentum)?,
                    &ops::mul_scalar(&stat, 1.0 - self.momentum)?,
                )?;
                v.assign(&new)
            };
            update(&mm, &mean)?;
            update(&mv, &var)?;
            y
        } else {
            let mean = broadcast_param(value_as(&mm, dtype)?, rank, axis)?;
            let var = broadcast_param(value_as(&mv, dtype)?, rank, axis)?;
            ops::batch_normalization(x, &mean, &var, beta.as_ref(), gamma.as_ref(), self.epsilon)?
        };
        Ok(vec![y])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(input_shapes.first().cloned().into_iter().collect())
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        })
    }
}
