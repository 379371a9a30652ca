//! Adam.

use ferroflow_core::{ops, Result, Tensor, Variable};

use super::{common_builders, zeros_slot, Optimizer, OptimizerConfig, Slots};

/// `keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
/// amsgrad=False)`.
///
/// Keras 3's rule, with `t = iterations + 1`: `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
/// `α = lr·√(1 - β2^t)/(1 - β1^t)`, `w -= α·m/(√v + ε)` (ε outside the bias correction); with
/// amsgrad, `v̂ = max(v̂, v)` replaces `v` in the last step.
#[derive(Clone, Debug)]
pub struct Adam {
    config: OptimizerConfig,
    /// β1.
    pub beta_1: f64,
    /// β2.
    pub beta_2: f64,
    /// ε.
    pub epsilon: f64,
    /// The AMSGrad variant.
    pub amsgrad: bool,
    slots: Slots,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            config: OptimizerConfig::new(0.001),
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            slots: Slots::default(),
        }
    }
}

impl Adam {
    /// With Keras's defaults.
    pub fn new() -> Adam {
        Adam::default()
    }

    /// β1.
    pub fn beta_1(mut self, b: f64) -> Self {
        self.beta_1 = b;
        self
    }

    /// β2.
    pub fn beta_2(mut self, b: f64) -> Self {
        self.beta_2 = b;
        self
    }

    /// ε.
    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }

    /// AMSGrad.
    pub fn amsgrad(mut self, a: bool) -> Self {
        self.amsgrad = a;
        self
    }

    common_builders!();
}

impl Optimizer for Adam {
    fn name(&self) -> &str {
        "Adam"
    }

    fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    fn config_mut(&mut self) -> &mut OptimizerConfig {
        &mut self.config
    }

    fn variables(&self) -> Vec<Variable> {
        self.slots.variables()
    }

    fn update_step(&mut self, grad: &Tensor, var: &Variable, lr: f64) -> Result<()> {
        let amsgrad = self.amsgrad;
        let slots = self.slots.get_or_create(var, |v| {
            let mut s = vec![zeros_slot(v, "momentum"), zeros_slot(v, "velocity")];
            if amsgrad {
                s.push(zeros_slot(v, "velocity_hat"));
            }
            Ok(s)
        })?;
        let (m, v) = (slots[0].clone(), slots[1].clone());
        let vhat = slots.get(2).cloned();
        let t = (self.config.iterations + 1) as f64;
        let (b1, b2) = (self.beta_1, self.beta_2);
        let g = ops::cast(grad, var.dtype())?;
        let alpha = lr * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
        let m_new = ops::add(
            &m.value(),
            &ops::mul_scalar(&ops::sub(&g, &m.value())?, 1.0 - b1)?,
        )?;
        let v_new = ops::add(
            &v.value(),
            &ops::mul_scalar(&ops::sub(&ops::square(&g)?, &v.value())?, 1.0 - b2)?,
        )?;
        m.assign(&m_new)?;
        v.assign(&v_new)?;
        let denom_v = match vhat {
            Some(vh) => {
                let mx = ops::maximum(&vh.value(), &v_new)?;
                vh.assign(&mx)?;
                mx
            }
            None => v_new,
        };
        let denom = ops::add_scalar(&ops::sqrt(&denom_v)?, self.epsilon)?;
        var.assign_sub(&ops::mul_scalar(&ops::div(&m_new, &denom)?, alpha)?)
    }
}
