//! TF 1's optimizers (`tf.compat.v1.train.*Optimizer`): `minimize(loss)` builds the gradient and
//! update nodes in the default graph and returns the train op to run.
//!
//! The update rules are TF 1's kernels (`ApplyGradientDescent`, `ApplyMomentum`, `ApplyAdam`,
//! `ApplyRMSProp`, `ApplyAdagrad`), with TF 1's defaults and slot names (`weights/Adam`,
//! `weights/Adam_1`, `beta1_power`, ...). Slot variables are graph variables, so
//! `global_variables_initializer()` must be built after `minimize`, as in TensorFlow.
//!
//! ```
//! use ferroflow_core::{graph, graph::train::{GradientDescentOptimizer, Optimizer}, ops};
//! use ferroflow_core::{DType, Graph, Session, Tensor, Variable};
//! let g = Graph::new();
//! let _default = g.as_default();
//! let x = graph::placeholder(DType::F32, &[None], "x")?;
//! let w = Variable::new(Tensor::from_vec(vec![0.0f32], &[1])?, "w");
//! let loss = ops::reduce_mean(&ops::square(&ops::sub(&ops::mul(&x, &w.value())?, &ops::mul_scalar(&x, 3.0)?)?)?, ops::Axes::All, false)?;
//! let train = GradientDescentOptimizer::new(0.1).minimize(&loss)?;
//! let init = graph::global_variables_initializer()?;
//! let sess = Session::new(&g);
//! sess.run(&[&init], &[])?;
//! for _ in 0..50 {
//!     sess.run(&[&train], &[(&x, Tensor::from_vec(vec![1.0f32, 2.0], &[2])?)])?;
//! }
//! let w_now = sess.run(&[&w.value()], &[])?[0].to_vec::<f32>()?[0];
//! assert!((w_now - 3.0).abs() < 1e-3);
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use super::{assign, assign_sub, default_graph, gradients, group};
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::Tensor;
use crate::variable::Variable;

/// What every TF 1 optimizer offers.
pub trait Optimizer {
    /// The op name prefix (`"GradientDescent"`, `"Adam"`, ...).
    fn name(&self) -> &'static str;

    /// The update of one variable from its gradient; returns the op(s) to run.
    fn apply_dense(&mut self, grad: &Tensor, var: &Variable) -> Result<Tensor>;

    /// Ops to run after every variable is updated (Adam's `beta1_power` update).
    fn finish(&mut self, updates: Vec<Tensor>) -> Result<Tensor> {
        group(&updates, self.name())
    }

    /// `compute_gradients(loss, var_list)`: `(gradient, variable)` for each trainable variable of
    /// the default graph (or of `var_list`) that the loss depends on.
    fn compute_gradients(
        &mut self,
        loss: &Tensor,
        var_list: Option<&[Variable]>,
    ) -> Result<Vec<(Tensor, Variable)>> {
        let g = default_graph().ok_or_else(|| {
            Error::invalid(
                "Optimizer::compute_gradients",
                "needs a default graph: call it inside `let _g = graph.as_default();`",
            )
        })?;
        let vars = match var_list {
            Some(v) => v.to_vec(),
            None => g.trainable_variables(),
        };
        let reads: Vec<Tensor> = vars.iter().map(Variable::value).collect();
        let grads = gradients(std::slice::from_ref(loss), &reads)?;
        Ok(grads
            .into_iter()
            .zip(vars)
            .filter_map(|(g, v)| g.map(|g| (g, v)))
            .collect())
    }

    /// `apply_gradients(grads_and_vars)`: one train op applying every update.
    fn apply_gradients(&mut self, grads_and_vars: &[(Tensor, Variable)]) -> Result<Tensor> {
        let mut updates = Vec::with_capacity(grads_and_vars.len());
        for (g, v) in grads_and_vars {
            updates.push(self.apply_dense(g, v)?);
        }
        self.finish(updates)
    }

    /// `minimize(loss)`: the train op of one step on every trainable variable.
    fn minimize(&mut self, loss: &Tensor) -> Result<Tensor> {
        let gv = self.compute_gradients(loss, None)?;
        if gv.is_empty() {
            return Err(Error::invalid(
                self.name(),
                "No gradients provided for any variable: the loss does not depend on a trainable variable",
            ));
        }
        self.apply_gradients(&gv)
    }
}

/// A slot variable (non-trainable, same shape and dtype as `var`) holding `init` everywhere.
fn slot(var: &Variable, suffix: &str, init: f64) -> Result<Variable> {
    let spec = var.spec();
    let shape = spec.known_shape().ok_or_else(|| {
        Error::invalid(
            "Optimizer",
            format!(
                "variable '{}' needs a fully known shape for its slots",
                var.name()
            ),
        )
    })?;
    let value = ops::fill(&shape, spec.dtype, init);
    Ok(Variable::with_trainable(
        value,
        &format!("{}/{suffix}", var.name()),
        false,
    ))
}

/// `tf.compat.v1.train.GradientDescentOptimizer(learning_rate)`: `var -= lr * grad`.
#[derive(Debug, Clone)]
pub struct GradientDescentOptimizer {
    learning_rate: f64,
}

impl GradientDescentOptimizer {
    /// With the given learning rate.
    pub fn new(learning_rate: f64) -> Self {
        GradientDescentOptimizer { learning_rate }
    }
}

impl Optimizer for GradientDescentOptimizer {
    fn name(&self) -> &'static str {
        "GradientDescent"
    }
    fn apply_dense(&mut self, grad: &Tensor, var: &Variable) -> Result<Tensor> {
        assign_sub(var, &ops::mul_scalar(grad, self.learning_rate)?)
    }
}

/// `tf.compat.v1.train.MomentumOptimizer(learning_rate, momentum, use_nesterov=False)`:
/// `accum = momentum * accum + grad; var -= lr * accum` (Nesterov:
/// `var -= lr * (grad + momentum * accum)`), slot `<var>/Momentum`.
#[derive(Debug, Clone)]
pub struct MomentumOptimizer {
    learning_rate: f64,
    momentum: f64,
    use_nesterov: bool,
}

impl MomentumOptimizer {
    /// With the given learning rate and momentum.
    pub fn new(learning_rate: f64, momentum: f64) -> Self {
        MomentumOptimizer {
            learning_rate,
            momentum,
            use_nesterov: false,
        }
    }
    /// Nesterov momentum.
    pub fn use_nesterov(mut self, on: bool) -> Self {
        self.use_nesterov = on;
        self
    }
}

impl Optimizer for MomentumOptimizer {
    fn name(&self) -> &'static str {
        "Momentum"
    }
    fn apply_dense(&mut self, grad: &Tensor, var: &Variable) -> Result<Tensor> {
        let accum = slot(var, "Momentum", 0.0)?;
        let new_accum = ops::add(&ops::mul_scalar(&accum.value(), self.momentum)?, grad)?;
        let accum_t = assign(&accum, &new_accum)?;
        let step = if self.use_nesterov {
            ops::add(grad, &ops::mul_scalar(&accum_t, self.momentum)?)?
        } else {
            accum_t
        };
        assign_sub(var, &ops::mul_scalar(&step, self.learning_rate)?)
    }
}

/// `tf.compat.v1.train.AdamOptimizer(learning_rate=0.001, beta1=0.9, beta2=0.999,
/// epsilon=1e-08)`, TF 1's `ApplyAdam`:
/// `lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`, `m = beta1 m + (1 - beta1) g`,
/// `v = beta2 v + (1 - beta2) g²`, `var -= lr_t m / (sqrt(v) + epsilon)` — the epsilon is
/// added *after* the bias correction ("epsilon hat"), unlike Keras's Adam. Slots
/// `<var>/Adam`, `<var>/Adam_1` and the `beta1_power`/`beta2_power` variables.
#[derive(Debug, Clone)]
pub struct AdamOptimizer {
    learning_rate: f64,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    powers: Option<(Variable, Variable)>,
}

impl Default for AdamOptimizer {
    fn default() -> Self {
        AdamOptimizer::new(0.001)
    }
}

impl AdamOptimizer {
    /// With the given learning rate and TF 1's other defaults.
    pub fn new(learning_rate: f64) -> Self {
        AdamOptimizer {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            powers: None,
        }
    }
    /// `beta1` and `beta2`.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }
    /// `epsilon`.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    fn powers(&mut self, like: &Variable) -> Result<(Variable, Variable)> {
        if let Some(p) = &self.powers {
            return Ok(p.clone());
        }
        let dtype = like.spec().dtype;
        let p = (
            Variable::with_trainable(Tensor::scalar_of(dtype, self.beta1), "beta1_power", false),
            Variable::with_trainable(Tensor::scalar_of(dtype, self.beta2), "beta2_power", false),
        );
        self.powers = Some(p.clone());
        Ok(p)
    }
}

impl Optimizer for AdamOptimizer {
    fn name(&self) -> &'static str {
        "Adam"
    }
    fn apply_dense(&mut self, grad: &Tensor, var: &Variable) -> Result<Tensor> {
        let (b1p, b2p) = self.powers(var)?;
        let m = slot(var, "Adam", 0.0)?;
        let v = slot(var, "Adam_1", 0.0)?;
        let one_minus = |p: &Tensor| ops::add_scalar(&ops::mul_scalar(p, -1.0)?, 1.0);
        let lr_t = ops::mul_scalar(
            &ops::div(
                &ops::sqrt(&one_minus(&b2p.value())?)?,
                &one_minus(&b1p.value())?,
            )?,
            self.learning_rate,
        )?;
        let m_t = assign(
            &m,
            &ops::add(
                &ops::mul_scalar(&m.value(), self.beta1)?,
                &ops::mul_scalar(grad, 1.0 - self.beta1)?,
            )?,
        )?;
        let v_t = assign(
            &v,
            &ops::add(
                &ops::mul_scalar(&v.value(), self.beta2)?,
                &ops::mul_scalar(&ops::square(grad)?, 1.0 - self.beta2)?,
            )?,
        )?;
        let denom = ops::add_scalar(&ops::sqrt(&v_t)?, self.epsilon)?;
        assign_sub(var, &ops::div(&ops::mul(&m_t, &lr_t)?, &denom)?)
    }
    fn finish(&mut self, updates: Vec<Tensor>) -> Result<Tensor> {
        let Some((b1p, b2p)) = self.powers.clone() else {
            return group(&updates, "Adam");
        };
        // The powers advance after the variables' updates, which read the old powers (the
        // reads are computed before any assign of the same run).
        let mut all = updates;
        all.push(assign(&b1p, &ops::mul_scalar(&b1p.value(), self.beta1)?)?);
        all.push(assign(&b2p, &ops::mul_scalar(&b2p.value(), self.beta2)?)?);
        group(&all, "Adam")
    }
}

/// `tf.compat.v1.train.RMSPropOptimizer(learning_rate, decay=0.9, momentum=0.0,
/// epsilon=1e-10, centered=False)`, TF 1's `ApplyRMSProp`: `ms = decay ms + (1 - decay) g²`,
/// `mom = momentum mom + lr g / sqrt(ms + epsilon)`, `var -= mom`; centered subtracts `mg²`
/// (`mg = decay mg + (1 - decay) g`) inside the root. TF 1 starts `ms` (slot `<var>/RMSProp`) at
/// ones, `mom` (`<var>/RMSProp_1`) and `mg` at zeros.
#[derive(Debug, Clone)]
pub struct RMSPropOptimizer {
    learning_rate: f64,
    decay: f64,
    momentum: f64,
    epsilon: f64,
    centered: bool,
}

impl RMSPropOptimizer {
    /// With the given learning rate and TF 1's other defaults.
    pub fn new(learning_rate: f64) -> Self {
        RMSPropOptimizer {
            learning_rate,
            decay: 0.9,
            momentum: 0.0,
            epsilon: 1e-10,
            centered: false,
        }
    }
    /// `decay`.
    pub fn decay(mut self, decay: f64) -> Self {
        self.decay = decay;
        self
    }
    /// `momentum`.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }
    /// `epsilon`.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }
    /// `centered`.
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }
}

impl Optimizer for RMSPropOptimizer {
    fn name(&self) -> &'static str {
        "RMSProp"
    }
    fn apply_dense(&mut self, grad: &Tensor, var: &Variable) -> Result<Tensor> {
        let ms = slot(var, "RMSProp", 1.0)?;
        let mom = slot(var, "RMSProp_1", 0.0)?;
        let ms_t = assign(
            &ms,
            &ops::add(
                &ops::mul_scalar(&ms.value(), self.decay)?,
                &ops::mul_scalar(&ops::square(grad)?, 1.0 - self.decay)?,
            )?,
        )?;
        let mut denom = ms_t;
        if self.centered {
            let mg = slot(var, "RMSProp_2", 0.0)?;
            let mg_t = assign(
                &mg,
                &ops::add(
                    &ops::mul_scalar(&mg.value(), self.decay)?,
                    &ops::mul_scalar(grad, 1.0 - self.decay)?,
                )?,
            )?;
            denom = ops::sub(&denom, &ops::square(&mg_t)?)?;
        }
        let step = ops::div(
            &ops::mul_scalar(grad, self.learning_rate)?,
            &ops::sqrt(&ops::add_scalar(&denom, self.epsilon)?)?,
        )?;
        let mom_t = assign(
            &mom,
            &ops::add(&ops::mul_scalar(&mom.value(), self.momentum)?, &step)?,
        )?;
        assign_sub(var, &mom_t)
    }
}

/// `tf.compat.v1.train.AdagradOptimizer(learning_rate, initial_accumulator_value=0.1)`, TF 1's
/// `ApplyAdagrad`: `accum += g²; var -= lr g / sqrt(accum)` (slot `<var>/Adagrad`).
#[derive(Debug, Clone)]
pub struct AdagradOptimizer {
    learning_rate: f64,
    initial_accumulator_value: f64,
}

impl AdagradOptimizer {
    /// With the given learning rate and TF 1's initial accumulator 0.1.
    pub fn new(learning_rate: f64) -> Self {
        AdagradOptimizer {
            learning_rate,
            initial_accumulator_value: 0.1,
        }
    }
    /// `initial_accumulator_value`.
    pub fn initial_accumulator_value(mut self, v: f64) -> Self {
        self.initial_accumulator_value = v;
        self
    }
}

impl Optimizer for AdagradOptimizer {
    fn name(&self) -> &'static str {
        "Adagrad"
    }
    fn apply_dense(&mut self, grad: &Tensor, var: &Variable) -> Result<Tensor> {
        let acc = slot(var, "Adagrad", self.initial_accumulator_value)?;
        let acc_t = assign(&acc, &ops::add(&acc.value(), &ops::square(grad)?)?)?;
        let step = ops::div(
            &ops::mul_scalar(grad, self.learning_rate)?,
            &ops::sqrt(&acc_t)?,
        )?;
        assign_sub(var, &step)
    }
}
