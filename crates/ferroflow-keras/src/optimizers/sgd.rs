//! Stochastic gradient descent.

use ferroflow_core::{ops, Result, Tensor, Variable};

use super::{common_builders, zeros_slot, Optimizer, OptimizerConfig, Slots};

/// `keras.optimizers.SGD(learning_rate=0.01, momentum=0.0, nesterov=False)`.
///
/// Keras 3's rule: without momentum `w -= lr·g`; with momentum `m = μ·m - lr·g`, then
/// `w += m`, or with Nesterov `w += μ·m - lr·g`.
#[derive(Clone, Debug)]
pub struct SGD {
    config: OptimizerConfig,
    /// Momentum μ.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    slots: Slots,
}

impl Default for SGD {
    fn default() -> Self {
        SGD {
            config: OptimizerConfig::new(0.01),
            momentum: 0.0,
            nesterov: false,
            slots: Slots::default(),
        }
    }
}

impl SGD {
    /// With Keras's defaults.
    pub fn new() -> SGD {
        SGD::default()
    }

    /// Momentum μ.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Nesterov momentum.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    common_builders!();
}

impl Optimizer for SGD {
    fn name(&self) -> &str {
        "SGD"
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
        let g = ops::cast(grad, var.dtype())?;
        if self.momentum == 0.0 {
            return var.assign_sub(&ops::mul_scalar(&g, lr)?);
        }
        let mu = self.momentum;
        let m = self
            .slots
            .get_or_create(var, |v| Ok(vec![zeros_slot(v, "momentum")]))?[0]
            .clone();
        let new_m = ops::sub(&ops::mul_scalar(&m.value(), mu)?, &ops::mul_scalar(&g, lr)?)?;
        m.assign(&new_m)?;
        if self.nesterov {
            let step = ops::sub(&ops::mul_scalar(&new_m, mu)?, &ops::mul_scalar(&g, lr)?)?;
            var.assign_add(&step)
        } else {
            var.assign_add(&new_m)
        }
    }
}
