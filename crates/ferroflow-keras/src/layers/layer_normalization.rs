//! `keras.layers.LayerNormalization`.

use ferroflow_core::{ops, Error, Result, Tensor, Variable};
use serde_json::{json, Value};

use super::batch_normalization::value_as;
use super::kernel_args::resolve_opt;
use super::layer::{single_input, Layer, LayerBase};
use crate::backend::{fmt_shape, Arg, Shape};
use crate::initializers::Initializer;
use crate::regularizers::Regularizer;

/// `keras.layers.LayerNormalization(axis=-1, epsilon=1e-3, center=True, scale=True,
/// beta_initializer="zeros", gamma_initializer="ones")`.
///
/// Matches Keras 3: each sample is normalized by the mean and the biased variance over `axis`
/// (one axis or several), `y = (x - μ)/√(σ² + ε)·γ + β`, the same in training and inference.
/// Its weights are `gamma` (if `scale`) then `beta` (if `center`), of shape
/// `[input_shape[a] for a in axis]`. Float64 inputs are normalized in float64.
///
/// ```
/// use ferroflow_keras::layers::{LayerNormalization, Layer, LayerHandle};
/// use ferroflow_core::Tensor;
/// let ln = LayerHandle::new(LayerNormalization::new());
/// let x = Tensor::from_vec(vec![1.0f32, 3.0], &[1, 2])?;
/// let y = ln.call(&x, false)?.to_vec::<f32>()?;
/// // mean 2, variance 1: (x - 2)/√(1 + 0.001)
/// assert!((y[0] + 1.0 / 1.001f32.sqrt()).abs() < 1e-6);
/// assert_eq!(ln.lock().count_params(), 4);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct LayerNormalization {
    base: LayerBase,
    /// The normalized axes (negative counts from the end).
    pub axis: Vec<isize>,
    /// Added to the variance before the square root.
    pub epsilon: f64,
    /// Whether to add the offset `beta`.
    pub center: bool,
    /// Whether to multiply by `gamma`.
    pub scale: bool,
    beta_initializer: Arg<Initializer>,
    gamma_initializer: Arg<Initializer>,
    beta_regularizer: Option<Arg<Regularizer>>,
    gamma_regularizer: Option<Arg<Regularizer>>,
    gamma: Option<Variable>,
    beta: Option<Variable>,
}

impl LayerNormalization {
    /// `LayerNormalization()` with Keras's defaults.
    pub fn new() -> LayerNormalization {
        LayerNormalization {
            base: LayerBase::new("LayerNormalization"),
            axis: vec![-1],
            epsilon: 1e-3,
            center: true,
            scale: true,
            beta_initializer: Arg(Ok(Initializer::Zeros)),
            gamma_initializer: Arg(Ok(Initializer::Ones)),
            beta_regularizer: None,
            gamma_regularizer: None,
            gamma: None,
            beta: None,
        }
    }

    /// One normalized axis (default -1).
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = vec![axis];
        self
    }

    /// Several normalized axes (Keras's `axis=[1, 2]`).
    pub fn axes(mut self, axes: &[isize]) -> Self {
        self.axis = axes.to_vec();
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

    /// The sorted non-negative axes for an input of `rank`, or an error naming the layer.
    fn resolve_axes(&self, rank: usize, shape: &str) -> Result<Vec<usize>> {
        let name = &self.base.name;
        if self.axis.is_empty() {
            return Err(Error::invalid(
                name,
                format!("layer {name:?}: axis must name at least one axis"),
            ));
        }
        let mut out = Vec::new();
        for &a in &self.axis {
            let r = if a < 0 { a + rank as isize } else { a };
            if r < 0 || r >= rank as isize {
                return Err(Error::invalid(
                    name,
                    format!(
                        "layer {name:?}: axis {a} is out of range for an input of shape {shape}"
                    ),
                ));
            }
            out.push(r as usize);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

impl Default for LayerNormalization {
    fn default() -> Self {
        LayerNormalization::new()
    }
}

impl Layer for LayerNormalization {
    fn class_name(&self) -> &str {
        "LayerNormalization"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    /// Keras sets `supports_masking = True` on `LayerNormalization`: the input mask passes through.
    fn supports_masking(&self) -> bool {
        true
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let name = self.base.name.clone();
        let shape = input_shapes
            .first()
            .ok_or_else(|| Error::invalid(&name, "LayerNormalization needs one input"))?;
        let axes = self.resolve_axes(shape.len(), &fmt_shape(shape))?;
        let mut param_shape = Vec::new();
        for &a in &axes {
            let Some(d) = shape[a] else {
                return Err(Error::invalid(
                    &name,
                    format!(
                        "layer {name:?}: the normalized axes of the input must be known, got {}",
                        fmt_shape(shape)
                    ),
                ));
            };
            param_shape.push(d);
        }
        let gamma_init = self.gamma_initializer.0.clone()?;
        let beta_init = self.beta_initializer.0.clone()?;
        let gamma_reg = resolve_opt(&self.gamma_regularizer)?;
        let beta_reg = resolve_opt(&self.beta_regularizer)?;
        if self.scale {
            self.gamma =
                Some(
                    self.base
                        .add_weight("gamma", &param_shape, &gamma_init, gamma_reg, true)?,
                );
        }
        if self.center {
            self.beta =
                Some(
                    self.base
                        .add_weight("beta", &param_shape, &beta_init, beta_reg, true)?,
                );
        }
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let name = self.base.name.clone();
        let x = single_input(&name, inputs)?;
        if !x.dtype().is_float() {
            return Err(Error::dtype(
                &name,
                format!("layer {name:?} expects a float input"),
                &[x.dtype()],
            ));
        }
        let rank = x.rank();
        let axes = self.resolve_axes(rank, &ferroflow_core::error::fmt_shape(x.shape()))?;
        // The parameters broadcast as [1, .., d_a, .., 1] over the normalized axes.
        let mut bshape = vec![1isize; rank];
        for &a in &axes {
            bshape[a] = x.shape()[a] as isize;
        }
        let dtype = x.dtype();
        let param = |v: &Option<Variable>| -> Result<Option<Tensor>> {
            v.as_ref()
                .map(|v| {
                    let p = value_as(v, dtype)?;
                    let want: Vec<usize> = axes.iter().map(|&a| x.shape()[a]).collect();
                    if p.shape() != want.as_slice() {
                        return Err(Error::shape(
                            &name,
                            format!(
                                "layer {name:?} was built for normalized dimensions {:?}, the input has {:?}",
                                p.shape(),
                                want
                            ),
                            &[p.shape(), x.shape()],
                        ));
                    }
                    ops::reshape(&p, &bshape)
                })
                .transpose()
        };
        let gamma = param(&self.gamma)?;
        let beta = param(&self.beta)?;
        let axes_i: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
        let (mean, var) = ops::moments(x, axes_i, true)?;
        let y =
            ops::batch_normalization(x, &mean, &var, beta.as_ref(), gamma.as_ref(), self.epsilon)?;
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
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        })
    }
}
