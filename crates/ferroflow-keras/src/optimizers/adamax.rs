//! Adamax.

use ferroflow_core::{Result, Tensor, Variable};

use super::kernel::{apply_kernel, Float, Kernel};
use super::{common_builders, zeros_slot, Optimizer, OptimizerConfig, Slots};

/// `keras.optimizers.Adamax(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`.
///
/// Keras 3's rule, with `t = iterations + 1`: `m += (g - m)(1 - β1)`, `u = max(β2·u, |g|)`,
/// `w -= lr·m / ((1 - β1^t)(u + ε))`. Slots per variable: `momentum`, `norm`.
///
/// ```
/// use ferroflow_core::{Tensor, Variable};
/// use ferroflow_keras::optimizers::{Adamax, Optimizer};
/// let w = Variable::new(Tensor::from_vec(vec![1.0f32], &[1])?, "w");
/// let mut opt = Adamax::new().learning_rate(0.1);
/// opt.apply_gradients(&[(Tensor::from_vec(vec![-2.0f32], &[1])?, w.clone())])?;
/// // m = -0.2, u = 2: w = 1 + 0.1·0.2/(0.1·2) ≈ 1.1
/// assert!((w.value().to_vec::<f32>()?[0] - 1.1).abs() < 1e-5);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Adamax {
    config: OptimizerConfig,
    /// β1.
    pub beta_1: f64,
    /// β2, the decay of the infinity norm.
    pub beta_2: f64,
    /// ε.
    pub epsilon: f64,
    slots: Slots,
}

impl Default for Adamax {
    fn default() -> Self {
        Adamax {
            config: OptimizerConfig::new(0.001),
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            slots: Slots::default(),
        }
    }
}

impl Adamax {
    /// With Keras's defaults.
    pub fn new() -> Adamax {
        Adamax::default()
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

    common_builders!(config);
}

struct AdamaxKernel {
    lr: f64,
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    bias: f64,
}

impl Kernel for AdamaxKernel {
    fn run<T: Float>(&self, w: &mut [T], g: &[T], slots: &mut [Vec<T>]) {
        let (lr, c1, b2, eps, bias) = (
            T::c(self.lr),
            T::c(1.0 - self.beta_1),
            T::c(self.beta_2),
            T::c(self.epsilon),
            T::c(self.bias),
        );
        let (ms, us) = slots.split_at_mut(1);
        let (m, u) = (&mut ms[0], &mut us[0]);
        for i in 0..w.len() {
            let gi = g[i];
            m[i] = m[i] + (gi - m[i]) * c1;
            u[i] = (b2 * u[i]).maximum(gi.abs());
            w[i] = w[i] - lr * m[i] / (bias * (u[i] + eps));
        }
    }
}

impl Optimizer for Adamax {
    fn hyperparameters(&self) -> serde_json::Value {
        serde_json::json!({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
    }

    fn name(&self) -> &str {
        "Adamax"
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
                Ok(vec![zeros_slot(v, "momentum"), zeros_slot(v, "norm")])
            })?
            .to_vec();
        let t = (self.config.iterations + 1) as f64;
        let k = AdamaxKernel {
            lr,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            bias: 1.0 - self.beta_1.powf(t),
        };
        apply_kernel(var, grad, &slots, &k)
    }
}
