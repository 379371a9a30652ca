//! Nadam.

use ferroflow_core::{DType, Result, Tensor, Variable};

use super::kernel::{apply_kernel, Float, Kernel};
use super::{common_builders, zeros_slot, Optimizer, OptimizerConfig, Slots};

/// `keras.optimizers.Nadam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`.
///
/// Keras 3's rule (Dozat's momentum schedule), with `t = iterations + 1` and
/// `u_t = β1·(1 - 0.5·0.96^t)`: once per step the optimizer variable `u_product` (starting
/// at one) becomes `u_product·u_t`; then, per variable:
///
/// - `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
/// - `m̂ = u_{t+1}·m/(1 - u_product·u_{t+1}) + (1 - u_t)·g/(1 - u_product)`,
/// - `v̂ = v/(1 - β2^t)`, `w -= lr·m̂/(√v̂ + ε)`.
///
/// Variables: `momentum`, `velocity` per model variable, then the scalar `u_product`.
///
/// ```
/// use ferroflow_core::{Tensor, Variable};
/// use ferroflow_keras::optimizers::{Nadam, Optimizer};
/// let w = Variable::new(Tensor::from_vec(vec![1.0f32, 2.0], &[2])?, "w");
/// let mut opt = Nadam::new();
/// opt.apply_gradients(&[(Tensor::from_vec(vec![1.0f32, 1.0], &[2])?, w.clone())])?;
/// assert_eq!(opt.variables().len(), 3); // momentum, velocity, u_product
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Nadam {
    config: OptimizerConfig,
    /// β1.
    pub beta_1: f64,
    /// β2.
    pub beta_2: f64,
    /// ε.
    pub epsilon: f64,
    slots: Slots,
    u_product: Option<Variable>,
}

impl Default for Nadam {
    fn default() -> Self {
        Nadam {
            config: OptimizerConfig::new(0.001),
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            slots: Slots::default(),
            u_product: None,
        }
    }
}

impl Nadam {
    /// With Keras's defaults.
    pub fn new() -> Nadam {
        Nadam::default()
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

    /// `u_t = β1·(1 - 0.5·0.96^t)`, Keras's momentum schedule.
    fn u(&self, t: f64) -> f64 {
        self.beta_1 * (1.0 - 0.5 * 0.96f64.powf(t))
    }

    fn u_product_value(&self) -> f64 {
        self.u_product
            .as_ref()
            .map(|v| v.value().to_f64_vec()[0])
            .unwrap_or(1.0)
    }
}

struct NadamKernel {
    lr: f64,
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    /// `u_{t+1}/(1 - u_product·u_{t+1})`.
    m_coef: f64,
    /// `(1 - u_t)/(1 - u_product)`.
    g_coef: f64,
    /// `1 - β2^t`.
    v_bias: f64,
}

impl Kernel for NadamKernel {
    fn run<T: Float>(&self, w: &mut [T], g: &[T], slots: &mut [Vec<T>]) {
        let (lr, c1, c2, eps) = (
            T::c(self.lr),
            T::c(1.0 - self.beta_1),
            T::c(1.0 - self.beta_2),
            T::c(self.epsilon),
        );
        let (mc, gc, vb) = (T::c(self.m_coef), T::c(self.g_coef), T::c(self.v_bias));
        let (ms, vs) = slots.split_at_mut(1);
        let (m, v) = (&mut ms[0], &mut vs[0]);
        for i in 0..w.len() {
            let gi = g[i];
            m[i] = m[i] + (gi - m[i]) * c1;
            v[i] = v[i] + (gi * gi - v[i]) * c2;
            let m_hat = mc * m[i] + gc * gi;
            let v_hat = v[i] / vb;
            w[i] = w[i] - m_hat * lr / (v_hat.sqrt() + eps);
        }
    }
}

impl Optimizer for Nadam {
    fn hyperparameters(&self) -> serde_json::Value {
        serde_json::json!({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
    }

    fn name(&self) -> &str {
        "Nadam"
    }

    fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    fn config_mut(&mut self) -> &mut OptimizerConfig {
        &mut self.config
    }

    fn variables(&self) -> Vec<Variable> {
        let mut v = self.slots.variables();
        v.extend(self.u_product.clone());
        v
    }

    fn prepare_step(&mut self, vars: &[Variable]) -> Result<()> {
        let t = (self.config.iterations + 1) as f64;
        let next = self.u_product_value() * self.u(t);
        let dtype = match (&self.u_product, vars.first()) {
            (Some(u), _) => u.dtype(),
            (None, Some(v)) if v.dtype().is_float() => v.dtype(),
            _ => DType::F32,
        };
        let value = Tensor::scalar_of(dtype, next);
        match &self.u_product {
            Some(u) => u.assign(&value),
            None => {
                self.u_product = Some(Variable::with_trainable(value, "u_product", false));
                Ok(())
            }
        }
    }

    fn update_step(&mut self, grad: &Tensor, var: &Variable, lr: f64) -> Result<()> {
        let slots = self
            .slots
            .get_or_create(var, |v| {
                Ok(vec![zeros_slot(v, "momentum"), zeros_slot(v, "velocity")])
            })?
            .to_vec();
        let t = (self.config.iterations + 1) as f64;
        let (u_t, u_t1) = (self.u(t), self.u(t + 1.0));
        let u_product_t = self.u_product_value();
        let k = NadamKernel {
            lr,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            m_coef: u_t1 / (1.0 - u_product_t * u_t1),
            g_coef: (1.0 - u_t) / (1.0 - u_product_t),
            v_bias: 1.0 - self.beta_2.powf(t),
        };
        apply_kernel(var, grad, &slots, &k)
    }
}
