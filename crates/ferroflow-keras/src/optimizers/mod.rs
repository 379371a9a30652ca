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

mod adadelta;
mod adagrad;
mod adam;
mod adamax;
mod adamw;
pub mod kernel;
mod lion;
mod nadam;
mod rmsprop;
pub mod schedules;
mod sgd;

pub use adadelta::Adadelta;
pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::Adamax;
pub use adamw::AdamW;
pub use lion::Lion;
pub use nadam::Nadam;
pub use rmsprop::RMSprop;
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
    /// Decoupled weight decay: `w -= w·weight_decay·lr` for every variable before the update.
    pub weight_decay: Option<f64>,
    /// Clip each gradient to this L2 norm.
    pub clipnorm: Option<f64>,
    /// Clip each gradient's values to `[-clipvalue, clipvalue]`.
    pub clipvalue: Option<f64>,
    /// Clip all gradients together to this global L2 norm.
    pub global_clipnorm: Option<f64>,
    /// Variables whose name contains one of these strings get no weight decay
    /// (`optimizer.exclude_from_weight_decay(var_names=...)`).
    pub exclude_from_weight_decay: Vec<String>,
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
            exclude_from_weight_decay: Vec::new(),
            iterations: 0,
        }
    }

    /// Keras's constructor check: at most one of `clipnorm`, `clipvalue` and `global_clipnorm`.
    pub fn validate(&self, optimizer: &str) -> Result<()> {
        let set = [self.clipnorm, self.clipvalue, self.global_clipnorm]
            .iter()
            .filter(|c| c.is_some())
            .count();
        if set > 1 {
            return Err(Error::invalid(
                optimizer,
                format!(
                    "only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set; \
                     received clipnorm={:?}, clipvalue={:?}, global_clipnorm={:?}",
                    self.clipnorm, self.clipvalue, self.global_clipnorm
                ),
            ));
        }
        Ok(())
    }

    /// Whether weight decay applies to `var` (not excluded by name).
    pub fn decays(&self, var: &Variable) -> bool {
        self.weight_decay.is_some()
            && !self
                .exclude_from_weight_decay
                .iter()
                .any(|n| var.name().contains(n.as_str()))
    }
}

/// A Keras optimizer. Implement `name`, `config`/`config_mut`, `update_step` and `variables`;
/// `apply_gradients` does the rest.
pub trait Optimizer: Send {
    /// The Keras class name (`"Adam"`).
    fn name(&self) -> &str;

    /// The common arguments and the iteration count.
    fn config(&self) -> &OptimizerConfig;

    /// The common arguments, mutably.
    fn config_mut(&mut self) -> &mut OptimizerConfig;

    /// Updates `var` from its (already clipped) gradient with learning rate `lr`; the step
    /// number for bias corrections is `config().iterations + 1`.
    fn update_step(&mut self, grad: &Tensor, var: &Variable, lr: f64) -> Result<()>;

    /// The optimizer's own variables (moments, accumulators, ...) in Keras's order, created
    /// the first time each model variable is updated. Keras's `optimizer.variables` also
    /// starts with `iteration` and, unless the learning rate is a schedule, `learning_rate`;
    /// here those are [`iterations`](Optimizer::iterations) and
    /// [`learning_rate`](Optimizer::learning_rate).
    fn variables(&self) -> Vec<Variable>;

    /// The class-specific hyperparameters as Keras's `get_config()` names them (`beta_1`,
    /// `momentum`, ...), for saving (`compile_config`). The common ones live in
    /// [`config`](Optimizer::config).
    fn hyperparameters(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    /// Checks the optimizer's hyperparameters (Keras checks them in the constructor).
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Runs once per `apply_gradients`, after clipping and weight decay and before the
    /// per-variable updates (Nadam advances its momentum-cache product here).
    fn prepare_step(&mut self, _vars: &[Variable]) -> Result<()> {
        Ok(())
    }

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

    /// Applies one step as Keras 3 does: clip the gradients (`clipnorm`, else
    /// `global_clipnorm`, else `clipvalue`), decay every variable (`w -= w·wd·lr`), run
    /// `update_step` for each variable with the learning rate at the current iteration, then
    /// `iterations += 1`. An empty list is a no-op (the iteration count does not move).
    fn apply_gradients(&mut self, grads_and_vars: &[(Tensor, Variable)]) -> Result<()> {
        if grads_and_vars.is_empty() {
            return Ok(());
        }
        self.config().validate(self.name())?;
        self.check()?;
        for (g, var) in grads_and_vars {
            if g.shape() != var.shape().as_slice() {
                return Err(Error::shape(
                    self.name(),
                    format!("gradient for variable {:?} has another shape", var.name()),
                    &[g.shape(), &var.shape()],
                ));
            }
        }
        let lr = self.learning_rate();
        let grads = clip_gradients(self.config(), grads_and_vars)?;
        let vars: Vec<Variable> = grads_and_vars.iter().map(|(_, v)| v.clone()).collect();
        if let Some(wd) = self.config().weight_decay {
            for var in &vars {
                if self.config().decays(var) {
                    kernel::apply_to_variable(var, &kernel::WeightDecay { rate: wd * lr })?;
                }
            }
        }
        self.prepare_step(&vars)?;
        for (g, var) in grads.iter().zip(&vars) {
            self.update_step(g, var, lr)?;
        }
        self.config_mut().iterations += 1;
        Ok(())
    }
}

/// Applies the config's gradient clipping as Keras 3's `_clip_gradients`: `clipnorm` (each
/// gradient to that L2 norm) if set and positive, else `global_clipnorm` (all gradients scaled
/// by `clip / max(global_norm, clip)`; a non-finite global norm makes every gradient NaN),
/// else `clipvalue` (element-wise to `[-v, v]`). Keras allows only one of the three.
pub fn clip_gradients(
    c: &OptimizerConfig,
    grads_and_vars: &[(Tensor, Variable)],
) -> Result<Vec<Tensor>> {
    let grads: Vec<Tensor> = grads_and_vars.iter().map(|(g, _)| g.clone()).collect();
    if let Some(n) = c.clipnorm.filter(|n| *n > 0.0) {
        return grads.iter().map(|g| clip_by_norm(g, n)).collect();
    }
    if let Some(n) = c.global_clipnorm.filter(|n| *n > 0.0) {
        let sq: f64 = grads
            .iter()
            .map(|g| g.to_f64_vec().iter().map(|x| x * x).sum::<f64>())
            .sum();
        let norm = sq.sqrt();
        let scale = if norm.is_finite() {
            n * (1.0 / norm).min(1.0 / n)
        } else {
            f64::NAN
        };
        if scale == 1.0 {
            return Ok(grads);
        }
        return grads.iter().map(|g| ops::mul_scalar(g, scale)).collect();
    }
    if let Some(v) = c.clipvalue.filter(|v| *v > 0.0) {
        return grads
            .iter()
            .map(|g| ops::clip_by_value_scalar(g, -v, v))
            .collect();
    }
    Ok(grads)
}

/// Keras's `_clip_by_norm`: `g·n / max(‖g‖₂, n)` (scales `g` down to L2 norm `n` if longer).
pub fn clip_by_norm(g: &Tensor, n: f64) -> Result<Tensor> {
    let norm = g.to_f64_vec().iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > n {
        ops::mul_scalar(g, n / norm)
    } else {
        Ok(g.clone())
    }
}

/// Per-variable slot storage, in the order the model's variables were first updated.
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

    /// Every slot variable, variable by variable (Keras's order when an optimizer creates
    /// its slots with one `add_optimizer_variables(vars, [names...])` call: Adam's
    /// `m₁ v₁ m₂ v₂ ...`).
    pub fn variables(&self) -> Vec<Variable> {
        self.entries.iter().flat_map(|(_, v)| v.clone()).collect()
    }

    /// Every slot variable, kind by kind (Keras's order when an optimizer creates each kind
    /// with its own call: RMSprop's `velocity₁ velocity₂ ... momentum₁ momentum₂ ...`).
    pub fn variables_by_kind(&self) -> Vec<Variable> {
        let kinds = self.entries.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        (0..kinds)
            .flat_map(|k| {
                self.entries
                    .iter()
                    .filter_map(move |(_, v)| v.get(k).cloned())
            })
            .collect()
    }

    /// Whether no slot was created yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A zero-initialised slot like `var`, named `{var}_{slot}` (`/` replaced by `_`, as Keras).
pub fn zeros_slot(var: &Variable, slot: &str) -> Variable {
    const_slot(var, slot, 0.0)
}

/// A slot like `var` filled with `value` (Adagrad's `initial_accumulator_value`).
pub fn const_slot(var: &Variable, slot: &str, value: f64) -> Variable {
    Variable::with_trainable(
        ops::fill(&var.shape(), var.dtype(), value),
        &format!("{}_{}", var.name().replace('/', "_"), slot),
        false,
    )
}

/// The names [`get`] accepts (case-insensitive, as Keras).
pub const NAMES: &[&str] = &[
    "sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "adamw", "lion",
];

/// `keras.optimizers.get(name)`: an optimizer with Keras's defaults; an unknown name is an error
/// listing the valid ones.
///
/// ```
/// use ferroflow_keras::optimizers::{get, Optimizer};
/// assert_eq!(get("RMSprop")?.name(), "RMSprop");
/// assert!(get("adamm").is_err());
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn get(name: &str) -> Result<Box<dyn Optimizer>> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "sgd" => Box::new(SGD::new()),
        "adam" => Box::new(Adam::new()),
        "rmsprop" => Box::new(RMSprop::new()),
        "adagrad" => Box::new(Adagrad::new()),
        "adadelta" => Box::new(Adadelta::new()),
        "adamax" => Box::new(Adamax::new()),
        "nadam" => Box::new(Nadam::new()),
        "adamw" => Box::new(AdamW::new()),
        "lion" => Box::new(Lion::new()),
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

/// Builder methods for the common arguments, shared by every optimizer type; the argument is
/// the path of the optimizer's [`OptimizerConfig`] field (`common_builders!(config)`).
macro_rules! common_builders {
    ($($cfg:ident).+) => {
        /// The learning rate: a number or a schedule.
        pub fn learning_rate(mut self, lr: impl Into<$crate::optimizers::LearningRate>) -> Self {
            self.$($cfg).+.learning_rate = lr.into();
            self
        }
        /// Decoupled weight decay: `w -= w·wd·lr` before each update.
        pub fn weight_decay(mut self, wd: f64) -> Self {
            self.$($cfg).+.weight_decay = Some(wd);
            self
        }
        /// Clip each gradient to this L2 norm.
        pub fn clipnorm(mut self, n: f64) -> Self {
            self.$($cfg).+.clipnorm = Some(n);
            self
        }
        /// Clip gradient values to `[-v, v]`.
        pub fn clipvalue(mut self, v: f64) -> Self {
            self.$($cfg).+.clipvalue = Some(v);
            self
        }
        /// Clip all gradients together to this global L2 norm.
        pub fn global_clipnorm(mut self, n: f64) -> Self {
            self.$($cfg).+.global_clipnorm = Some(n);
            self
        }
        /// `exclude_from_weight_decay(var_names=...)`: variables whose name contains one of
        /// these strings are not decayed.
        pub fn exclude_from_weight_decay<S: AsRef<str>>(mut self, var_names: &[S]) -> Self {
            self.$($cfg).+.exclude_from_weight_decay =
                var_names.iter().map(|s| s.as_ref().to_string()).collect();
            self
        }
    };
}
pub(crate) use common_builders;
