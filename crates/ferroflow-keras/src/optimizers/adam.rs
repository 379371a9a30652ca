//! Adam.

use ferroflow_core::{Result, Tensor, Variable};

use super::kernel::{apply_kernel, Float, Kernel};
use super::{common_builders, zeros_slot, Optimizer, OptimizerConfig, Slots};

/// `keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
/// amsgrad=False)`.
///
/// Keras 3's rule, with `t = iterations + 1`: `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
/// `α = lr·√(1 - β2^t)/(1 - β1^t)`, `w -= α·m/(√v + ε)` (ε outside the bias correction,
/// "epsilon hat"); with amsgrad, `v̂ = max(v̂, v)` replaces `v` in the last step. Slots per
/// variable, in Keras's order: `momentum`, `velocity` (+ `velocity_hat` with amsgrad).
///
/// ```
/// use ferroflow_core::{Tensor, Variable};
/// use ferroflow_keras::optimizers::{Adam, Optimizer};
/// let w = Variable::new(Tensor::from_vec(vec![1.0f32, -1.0], &[2])?, "w");
/// let mut opt = Adam::new().learning_rate(0.1);
/// opt.apply_gradients(&[(Tensor::from_vec(vec![0.5f32, -2.0], &[2])?, w.clone())])?;
/// // The first bias-corrected step moves each weight by about lr against its gradient's sign.
/// let v = w.value().to_vec::<f32>()?;
/// assert!((v[0] - 0.9).abs() < 1e-5 && (v[1] + 0.9).abs() < 1e-5);
/// assert_eq!(opt.variables().len(), 2); // momentum and velocity
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Adam {
    pub(crate) config: OptimizerConfig,
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

    common_builders!(config);
}

struct AdamKernel {
    alpha: f64,
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
}

impl Kernel for AdamKernel {
    fn run<T: Float>(&self, w: &mut [T], g: &[T], slots: &mut [Vec<T>]) {
        let (alpha, eps) = (T::c(self.alpha), T::c(self.epsilon));
        let (c1, c2) = (T::c(1.0 - self.beta_1), T::c(1.0 - self.beta_2));
        let (ms, rest) = slots.split_at_mut(1);
        let (vs, vhat) = rest.split_at_mut(1);
        let (m, v) = (&mut ms[0], &mut vs[0]);
        match vhat.first_mut() {
            None => {
                // The vectorised kernel (same expressions, same bits) for f32/f64.
                let s = ferroflow_core::kernels::optim::AdamScalars {
                    alpha: self.alpha,
                    beta_1: self.beta_1,
                    beta_2: self.beta_2,
                    epsilon: self.epsilon,
                };
                if ferroflow_core::kernels::optim::adam(w, g, m, v, s) {
                    return;
                }
                for i in 0..w.len() {
                    let gi = g[i];
                    m[i] = m[i] + (gi - m[i]) * c1;
                    v[i] = v[i] + (gi * gi - v[i]) * c2;
                    w[i] = w[i] - m[i] * alpha / (v[i].sqrt() + eps);
                }
            }
            Some(vh) => {
                for i in 0..w.len() {
                    let gi = g[i];
                    m[i] = m[i] + (gi - m[i]) * c1;
                    v[i] = v[i] + (gi * gi - v[i]) * c2;
                    vh[i] = vh[i].maximum(v[i]);
                    w[i] = w[i] - m[i] * alpha / (vh[i].sqrt() + eps);
                }
            }
        }
    }
}

impl Optimizer for Adam {
    fn hyperparameters(&self) -> serde_json::Value {
        serde_json::json!({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon, "amsgrad": self.amsgrad})
    }

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
        let slots = self
            .slots
            .get_or_create(var, |v| {
                let mut s = vec![zeros_slot(v, "momentum"), zeros_slot(v, "velocity")];
                if amsgrad {
                    s.push(zeros_slot(v, "velocity_hat"));
                }
                Ok(s)
            })?
            .to_vec();
        let t = (self.config.iterations + 1) as f64;
        let (b1, b2) = (self.beta_1, self.beta_2);
        let k = AdamKernel {
            alpha: lr * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t)),
            beta_1: b1,
            beta_2: b2,
            epsilon: self.epsilon,
        };
        apply_kernel(var, grad, &slots, &k)
    }
}
