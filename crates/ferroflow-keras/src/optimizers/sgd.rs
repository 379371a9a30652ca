//! Stochastic gradient descent.

use ferroflow_core::{Error, Result, Tensor, Variable};

use super::kernel::{apply_kernel, Float, Kernel};
use super::{common_builders, zeros_slot, Optimizer, OptimizerConfig, Slots};

/// `keras.optimizers.SGD(learning_rate=0.01, momentum=0.0, nesterov=False)`.
///
/// Keras 3's rule: without momentum `w -= lr·g`; with momentum `m = μ·m - lr·g`, then
/// `w += m`, or with Nesterov `w += μ·m - lr·g` (with the updated `m`). The `momentum` slot
/// exists only when `μ ≠ 0`; `μ` must lie in `[0, 1]`.
///
/// ```
/// use ferroflow_core::{Tensor, Variable};
/// use ferroflow_keras::optimizers::{Optimizer, SGD};
/// let w = Variable::new(Tensor::from_vec(vec![1.0f32], &[1])?, "w");
/// let mut opt = SGD::new().learning_rate(0.1).momentum(0.9);
/// let g = Tensor::from_vec(vec![1.0f32], &[1])?;
/// opt.apply_gradients(&[(g.clone(), w.clone())])?; // m = -0.1, w = 0.9
/// opt.apply_gradients(&[(g, w.clone())])?; // m = 0.9·(-0.1) - 0.1 = -0.19, w = 0.71
/// assert!((w.value().to_vec::<f32>()?[0] - 0.71).abs() < 1e-6);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
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

    /// Momentum μ, in `[0, 1]`.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Nesterov momentum.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    common_builders!(config);
}

struct SgdKernel {
    lr: f64,
    momentum: f64,
    nesterov: bool,
}

impl Kernel for SgdKernel {
    fn run<T: Float>(&self, w: &mut [T], g: &[T], slots: &mut [Vec<T>]) {
        let lr = T::c(self.lr);
        match slots.first_mut() {
            None => {
                for (w, &g) in w.iter_mut().zip(g) {
                    *w = *w - g * lr;
                }
            }
            Some(m) => {
                let mu = T::c(self.momentum);
                for ((w, &g), m) in w.iter_mut().zip(g).zip(m.iter_mut()) {
                    *m = *m * mu - g * lr;
                    if self.nesterov {
                        *w = *w + (*m * mu - g * lr);
                    } else {
                        *w = *w + *m;
                    }
                }
            }
        }
    }
}

impl Optimizer for SGD {
    fn hyperparameters(&self) -> serde_json::Value {
        serde_json::json!({"momentum": self.momentum, "nesterov": self.nesterov})
    }

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

    fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::invalid(
                "SGD",
                format!(
                    "`momentum` must be a float between [0, 1]; received momentum={}",
                    self.momentum
                ),
            ));
        }
        Ok(())
    }

    fn update_step(&mut self, grad: &Tensor, var: &Variable, lr: f64) -> Result<()> {
        let k = SgdKernel {
            lr,
            momentum: self.momentum,
            nesterov: self.nesterov,
        };
        if self.momentum == 0.0 {
            return apply_kernel(var, grad, &[], &k);
        }
        let slots = self
            .slots
            .get_or_create(var, |v| Ok(vec![zeros_slot(v, "momentum")]))?
            .to_vec();
        apply_kernel(var, grad, &slots, &k)
    }
}
