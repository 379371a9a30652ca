//! Adadelta.

use ferroflow_core::{Result, Tensor, Variable};

use super::kernel::{apply_kernel, Float, Kernel};
use super::{common_builders, zeros_slot, Optimizer, OptimizerConfig, Slots};

/// `keras.optimizers.Adadelta(learning_rate=0.001, rho=0.95, epsilon=1e-7)`.
///
/// Keras 3's rule, with `rms(x) = √(x + ε)`: `E[g²] = ρ·E[g²] + (1-ρ)·g²`;
/// `Δ = -rms(E[Δ²])·g/rms(E[g²])`; `E[Δ²] = ρ·E[Δ²] + (1-ρ)·Δ²`; `w += lr·Δ`. Slots per
/// variable: `accumulated_grad`, `accumulated_delta_var`.
///
/// ```
/// use ferroflow_core::{Tensor, Variable};
/// use ferroflow_keras::optimizers::{Adadelta, Optimizer};
/// let w = Variable::new(Tensor::from_vec(vec![1.0f32], &[1])?, "w");
/// let mut opt = Adadelta::new().learning_rate(1.0);
/// opt.apply_gradients(&[(Tensor::from_vec(vec![1.0f32], &[1])?, w.clone())])?;
/// // E[g²] = 0.05; Δ = -√1e-7/√(0.05 + 1e-7)
/// let d = -(1e-7f64).sqrt() / (0.05f64 + 1e-7).sqrt();
/// assert!((w.value().to_vec::<f32>()?[0] as f64 - (1.0 + d)).abs() < 1e-6);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Adadelta {
    config: OptimizerConfig,
    /// ρ, the decay rate.
    pub rho: f64,
    /// ε.
    pub epsilon: f64,
    slots: Slots,
}

impl Default for Adadelta {
    fn default() -> Self {
        Adadelta {
            config: OptimizerConfig::new(0.001),
            rho: 0.95,
            epsilon: 1e-7,
            slots: Slots::default(),
        }
    }
}

impl Adadelta {
    /// With Keras's defaults.
    pub fn new() -> Adadelta {
        Adadelta::default()
    }

    /// ρ.
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// ε.
    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }

    common_builders!(config);
}

struct AdadeltaKernel {
    lr: f64,
    rho: f64,
    epsilon: f64,
}

impl Kernel for AdadeltaKernel {
    fn run<T: Float>(&self, w: &mut [T], g: &[T], slots: &mut [Vec<T>]) {
        let (lr, rho, c, eps) = (
            T::c(self.lr),
            T::c(self.rho),
            T::c(1.0 - self.rho),
            T::c(self.epsilon),
        );
        let (ag, ad) = slots.split_at_mut(1);
        let (ag, ad) = (&mut ag[0], &mut ad[0]);
        for i in 0..w.len() {
            let gi = g[i];
            ag[i] = rho * ag[i] + c * (gi * gi);
            let delta = -((ad[i] + eps).sqrt() * gi / (ag[i] + eps).sqrt());
            ad[i] = rho * ad[i] + c * (delta * delta);
            w[i] = w[i] + lr * delta;
        }
    }
}

impl Optimizer for Adadelta {
    fn hyperparameters(&self) -> serde_json::Value {
        serde_json::json!({"rho": self.rho, "epsilon": self.epsilon})
    }

    fn name(&self) -> &str {
        "Adadelta"
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
        let slots = self
            .slots
            .get_or_create(var, |v| {
                Ok(vec![
                    zeros_slot(v, "accumulated_grad"),
                    zeros_slot(v, "accumulated_delta_var"),
                ])
            })?
            .to_vec();
        let k = AdadeltaKernel {
            lr,
            rho: self.rho,
            epsilon: self.epsilon,
        };
        apply_kernel(var, grad, &slots, &k)
    }
}
