//! `keras.optimizers`: Keras 3's update rules and defaults, by name (`"adam"`) or by value.
//!
//! Every optimizer shares Keras's common arguments ([`OptimizerConfig`]): `learning_rate` (a
//! number or a schedule), `clipnorm`, `clipvalue`, `global_clipnorm` and decoupled
//! `weight_decay`. [`Optimizer::apply_gradients`] clips, decays, calls the optimizer's
//! `update_step` for each variable, then counts one iteration — as a custom training loop uses it:
//!
//! ```
//! use ferroflow_core::{ops, GradientTape, Tensor, Variable};
//! use ferroflow_keras::optimizers::{Optimizer, SGD};
//! let w = Variable::new(Tensor::from_vec(vec![1.0f32, 2.0], &[2])?, "w");
//! let mut opt = SGD::new().learning_rate(0.1);
//! let tape = GradientTape::new();
//! let loss = ops::reduce_sum(&ops::square(&w.value())?, ops::Axes::All, false)?;
//! let g = tape.gradient(&loss, &[&w])?.remove(0).unwrap();
//! opt.apply_gradients(&[(g, w.clone())])?;
//! assert_eq!(w.value().to_vec::<f32>()?, vec![0.8, 1.6]); // w - 0.1·2w
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

mod adam;
pub mod schedules;
mod sgd;

pub use adam::Adam;
pub use schedules::LearningRateSchedule;
pub use sgd::SGD;

use std::sync::Arc;

use ferroflow_core::{ops, Error, Result, Tensor, TensorId, Variable};

use crate::backend::{unknown_name, Arg};

/// A learning rate: a constant, or a schedule evaluated at `optimizer.iterations`.
#[derive(Clone)]
pub enum LearningRate {
    /// A fixed value.
    Constant(f64),
    /// A schedule of the iteration count.
    Schedule(Arc<dyn LearningRateSchedule>),
}

impl std::fmt::Debug for LearningRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LearningRate::Constant(v) => write!(f, "{v}"),
            LearningRate::Schedule(s) => write!(f, "{}", s.name()),
        }
    }
}

impl From<f64> for LearningRate {
    fn from(v: f64) -> Self {
        LearningRate::Constant(v)
    }
}

impl<S: LearningRateSchedule + 'static> From<S> for LearningRate {
    fn from(s: S) -> Self {
        LearningRate::Schedule(Arc::new(s))
    }
}

/// The arguments every Keras optimizer takes, and its iteration count.
#[derive(Clone, Debug)]
pub struct OptimizerConfig {
    /// The learning rate or schedule.
    pub learning_rate: LearningRate,
    /// Decoupled weight decay: `w -= lr·weight_decay·w` before each update.
    pub weight_decay: Option<f64>,
    /// Clip each gradient to this L2 norm.
    pub clipnorm: Option<f64>,
    /// Clip each gradient's values to `[-clipvalue, clipvalue]`.
    pub clipvalue: Option<f64>,
    /// Clip all gradients together to this global L2 norm.
    pub global_clipnorm: Option<f64>,
    /// How many times `apply_gradients` has run (Keras's `optimizer.iterations`).
    pub iterations: u64,
}

impl OptimizerConfig {
    /// A config with this learning rate and no clipping or decay.
    pub fn new(learning_rate: f64) -> OptimizerConfig {
        OptimizerConfig {
            learning_rate: LearningRate::Constant(learning_rate),
            weight_decay: None,
            clipnorm: None,
            clipvalue: None,
            global_clipnorm: None,
            iterations: 0,
        }
    }
}

/// A Keras optimizer. Implement `name`, `config`/`config_mut`, `update_step` and `variables`;
/// `apply_gradients` does the rest.
pub trait Optimizer: Send {
    /// The Keras name (`"adam"`).
    fn name(&self) -> &str;

    /// The common arguments and the iteration count.
    fn config(&self) -> &OptimizerConfig;

    /// The common arguments, mutably.
    fn config_mut(&mut self) -> &mut OptimizerConfig;

    /// Updates `var` from its (already clipped) gradient with learning rate `lr`; the step
    /// number for bias corrections is `config().iterations + 1`.
    fn update_step(&mut self, grad: &Tensor, var: &Variable, lr: f64) -> Result<()>;

    /// The optimizer's slot variables (moments, accumulators), in creation order.
    fn variables(&self) -> Vec<Variable>;

    /// The learning rate at the current iteration.
    fn learning_rate(&self) -> f64 {
        let c = self.config();
        match &c.learning_rate {
            LearningRate::Constant(v) => *v,
            LearningRate::Schedule(s) => s.call(c.iterations),
        }
    }

    /// Sets a constant learning rate (replacing a schedule), as `optimizer.learning_rate = v`.
    fn set_learning_rate(&mut self, lr: f64) {
        self.config_mut().learning_rate = LearningRate::Constant(lr);
    }

    /// `optimizer.iterations`.
    fn iterations(&self) -> u64 {
        self.config().iterations
    }

    /// Applies one step: clip (`global_clipnorm`, `clipnorm`, `clipvalue`), decoupled weight
    /// decay, `update_step` per variable, then `iterations += 1`.
    fn apply_gradients(&mut self, grads_and_vars: &[(Tensor, Variable)]) -> Result<()> {
        let lr = self.learning_rate();
        let grads = clip_gradients(self.config(), grads_and_vars)?;
        let wd = self.config().weight_decay;
        for (g, (_, var)) in grads.iter().zip(grads_and_vars) {
            if g.shape() != var.shape().as_slice() {
                return Err(Error::shape(
                    self.name(),
                    format!("gradient for variable {:?} has another shape", var.name()),
                    &[g.shape(), &var.shape()],
                ));
            }
            if let Some(wd) = wd {
                if wd != 0.0 {
                    let w = var.value();
                    var.assign_sub(&ops::mul_scalar(&w, lr * wd)?)?;
                }
            }
            self.update_step(g, var, lr)?;
        }
        self.config_mut().iterations += 1;
        Ok(())
    }
}

/// Applies the config's gradient clipping, in Keras's order: `clipnorm`, `clipvalue`, then
/// `global_clipnorm`.
pub fn clip_gradients(
    c: &OptimizerConfig,
    grads_and_vars: &[(Tensor, Variable)],
) -> Result<Vec<Tensor>> {
    let mut grads: Vec<Tensor> = grads_and_vars.iter().map(|(g, _)| g.clone()).collect();
    if let Some(n) = c.clipnorm {
        grads = grads
            .iter()
            .map(|g| clip_by_norm(g, n))
            .collect::<Result<_>>()?;
    }
    if let Some(v) = c.clipvalue {
        grads = grads
            .iter()
            .map(|g| ops::clip_by_value_scalar(g, -v, v))
            .collect::<Result<_>>()?;
    }
    if let Some(n) = c.global_clipnorm {
        let sq: f64 = grads
            .iter()
            .map(|g| g.to_f64_vec().iter().map(|x| x * x).sum::<f64>())
            .sum();
        let norm = sq.sqrt();
        if norm > n {
            grads = grads
                .iter()
                .map(|g| ops::mul_scalar(g, n / norm))
                .collect::<Result<_>>()?;
        }
    }
    Ok(grads)
}

/// `tf.clip_by_norm`: scales `g` down to L2 norm `n` if it is longer.
pub fn clip_by_norm(g: &Tensor, n: f64) -> Result<Tensor> {
    let norm = g.to_f64_vec().iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > n {
        ops::mul_scalar(g, n / norm)
    } else {
        Ok(g.clone())
    }
}

/// Per-variable slot storage in creation order (Keras lists optimizer variables in the order
/// the model's variables were first updated).
#[derive(Clone, Debug, Default)]
pub struct Slots {
    entries: Vec<(TensorId, Vec<Variable>)>,
}

impl Slots {
    /// The slots of `var`, created with `make` (called once with the variable) the first time.
    pub fn get_or_create(
        &mut self,
        var: &Variable,
        make: impl FnOnce(&Variable) -> Result<Vec<Variable>>,
    ) -> Result<&[Variable]> {
        let id = var.id();
        let pos = match self.entries.iter().position(|(i, _)| *i == id) {
            Some(p) => p,
            None => {
                self.entries.push((id, make(var)?));
                self.entries.len() - 1
            }
        };
        Ok(&self.entries[pos].1)
    }

    /// Every slot variable, variable by variable.
    pub fn variables(&self) -> Vec<Variable> {
        self.entries.iter().flat_map(|(_, v)| v.clone()).collect()
    }
}

/// A zero-initialised slot like `var`, named `{var}/{slot}`.
pub fn zeros_slot(var: &Variable, slot: &str) -> Variable {
    Variable::with_trainable(
        ops::zeros(&var.shape(), var.dtype()),
        &format!("{}_{}", var.name().replace('/', "_"), slot),
        false,
    )
}

/// The names [`get`] accepts (case-insensitive, as Keras).
pub const NAMES: &[&str] = &["sgd", "adam"];

/// `keras.optimizers.get(name)`: an optimizer with Keras's defaults; an unknown name is an error
/// listing the valid ones.
pub fn get(name: &str) -> Result<Box<dyn Optimizer>> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "sgd" => Box::new(SGD::new()),
        "adam" => Box::new(Adam::new()),
        _ => return Err(unknown_name("optimizer", name, NAMES)),
    })
}

impl From<&str> for Arg<Box<dyn Optimizer>> {
    fn from(name: &str) -> Self {
        Arg(get(name))
    }
}

impl<O: Optimizer + 'static> From<O> for Arg<Box<dyn Optimizer>> {
    fn from(o: O) -> Self {
        Arg(Ok(Box::new(o)))
    }
}

impl From<Box<dyn Optimizer>> for Arg<Box<dyn Optimizer>> {
    fn from(o: Box<dyn Optimizer>) -> Self {
        Arg(Ok(o))
    }
}

/// Builder methods for the common arguments, shared by every optimizer type.
macro_rules! common_builders {
    () => {
        /// The learning rate: a number or a schedule.
        pub fn learning_rate(mut self, lr: impl Into<$crate::optimizers::LearningRate>) -> Self {
            self.config.learning_rate = lr.into();
            self
        }
        /// Decoupled weight decay.
        pub fn weight_decay(mut self, wd: f64) -> Self {
            self.config.weight_decay = Some(wd);
            self
        }
        /// Clip each gradient to this norm.
        pub fn clipnorm(mut self, n: f64) -> Self {
            self.config.clipnorm = Some(n);
            self
        }
        /// Clip gradient values to `[-v, v]`.
        pub fn clipvalue(mut self, v: f64) -> Self {
            self.config.clipvalue = Some(v);
            self
        }
        /// Clip all gradients together to this global norm.
        pub fn global_clipnorm(mut self, n: f64) -> Self {
            self.config.global_clipnorm = Some(n);
            self
        }
    };
}
pub(crate) use common_builders;
