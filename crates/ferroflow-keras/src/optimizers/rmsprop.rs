//! RMSprop.

use ferroflow_core::{Error, Result, Tensor, Variable};

use super::kernel::{apply_kernel, Float, Kernel};
use super::{common_builders, zeros_slot, Optimizer, OptimizerConfig, Slots};

/// `keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
/// centered=False)`.
///
/// Keras 3's rule: `v = ρ·v + (1-ρ)·g²`; centered: `a = ρ·a + (1-ρ)·g` and the denominator is
/// `v - a² + ε`, else `v + ε` (ε **inside** the square root); `incr = lr·g/√denominator`; with
/// momentum `m = μ·m + incr; w -= m`, else `w -= incr`. Slots as Keras orders them: every
/// `velocity`, then every `momentum` (if `μ > 0`), then every `average_gradient` (if centered).
///
/// ```
/// use ferroflow_core::{Tensor, Variable};
/// use ferroflow_keras::optimizers::{Optimizer, RMSprop};
/// // Keras's docstring example: var 10, loss var²/2, lr 0.1 → 9.683772.
/// let w = Variable::new(Tensor::from_vec(vec![10.0f32], &[1])?, "w");
/// let mut opt = RMSprop::new().learning_rate(0.1);
/// opt.apply_gradients(&[(Tensor::from_vec(vec![10.0f32], &[1])?, w.clone())])?;
/// assert!((w.value().to_vec::<f32>()?[0] - 9.683772).abs() < 1e-5);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RMSprop {
    config: OptimizerConfig,
    /// ρ, the discount of the squared-gradient average.
    pub rho: f64,
    /// Momentum μ (no momentum slot when 0).
    pub momentum: f64,
    /// ε.
    pub epsilon: f64,
    /// Normalise by the estimated variance instead of the second moment.
    pub centered: bool,
    slots: Slots,
}

impl Default for RMSprop {
    fn default() -> Self {
        RMSprop {
            config: OptimizerConfig::new(0.001),
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            slots: Slots::default(),
        }
    }
}

impl RMSprop {
    /// With Keras's defaults.
    pub fn new() -> RMSprop {
        RMSprop::default()
    }

    /// ρ.
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    /// Momentum μ.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// ε.
    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }

    /// The centered variant.
    pub fn centered(mut self, c: bool) -> Self {
        self.centered = c;
        self
    }

    common_builders!(config);
}

struct RmspropKernel {
    lr: f64,
    rho: f64,
    momentum: Option<f64>,
    epsilon: f64,
    centered: bool,
}

impl Kernel for RmspropKernel {
    fn run<T: Float>(&self, w: &mut [T], g: &[T], slots: &mut [Vec<T>]) {
        let (lr, rho, c, eps) = (
            T::c(self.lr),
            T::c(self.rho),
            T::c(1.0 - self.rho),
            T::c(self.epsilon),
        );
        let mu = self.momentum.map(T::c);
        let (vs, rest) = slots.split_at_mut(1);
        let v = &mut vs[0];
        let (ms, avg) = rest.split_at_mut(if mu.is_some() { 1 } else { 0 });
        for i in 0..w.len() {
            let gi = g[i];
            v[i] = rho * v[i] + c * (gi * gi);
            let denom = if self.centered {
                let a = &mut avg[0];
                a[i] = rho * a[i] + c * gi;
                v[i] - a[i] * a[i] + eps
            } else {
                v[i] + eps
            };
            let incr = lr * gi / denom.sqrt();
            match mu {
                Some(mu) => {
                    let m = &mut ms[0];
                    m[i] = mu * m[i] + incr;
                    w[i] = w[i] - m[i];
                }
                None => w[i] = w[i] - incr,
            }
        }
    }
}

impl Optimizer for RMSprop {
    fn hyperparameters(&self) -> serde_json::Value {
        serde_json::json!({"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon, "centered": self.centered})
    }

    fn name(&self) -> &str {
        "RMSprop"
    }

    fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    fn config_mut(&mut self) -> &mut OptimizerConfig {
        &mut self.config
    }

    fn variables(&self) -> Vec<Variable> {
        self.slots.variables_by_kind()
    }

    fn update_step(&mut self, grad: &Tensor, var: &Variable, lr: f64) -> Result<()> {
        let (momentum, centered) = (self.momentum > 0.0, self.centered);
        let slots = self
            .slots
            .get_or_create(var, |v| {
                let mut s = vec![zeros_slot(v, "velocity")];
                if momentum {
                    s.push(zeros_slot(v, "momentum"));
                }
                if centered {
                    s.push(zeros_slot(v, "average_gradient"));
                }
                Ok(s)
            })?
            .to_vec();
        if slots.len() != 1 + usize::from(momentum) + usize::from(centered) {
            return Err(Error::invalid(
                "RMSprop",
                "`momentum` or `centered` changed after the optimizer created its variables",
            ));
        }
        let k = RmspropKernel {
            lr,
            rho: self.rho,
            momentum: momentum.then_some(self.momentum),
            epsilon: self.epsilon,
            centered,
        };
        apply_kernel(var, grad, &slots, &k)
    }
}
