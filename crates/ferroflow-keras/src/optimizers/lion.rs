//! Lion.

use ferroflow_core::{Error, Result, Tensor, Variable};

use super::kernel::{apply_kernel, Float, Kernel};
use super::{common_builders, zeros_slot, Optimizer, OptimizerConfig, Slots};

/// `keras.optimizers.Lion(learning_rate=0.001, beta_1=0.9, beta_2=0.99)`.
///
/// Keras 3's rule: `w -= lr·sign(β1·m + (1-β1)·g)`, then `m = β2·m + (1-β2)·g` (`sign(0) = 0`).
/// One `momentum` slot per variable; `β1` must lie in `(0, 1]`.
///
/// ```
/// use ferroflow_core::{Tensor, Variable};
/// use ferroflow_keras::optimizers::{Lion, Optimizer};
/// let w = Variable::new(Tensor::from_vec(vec![1.0f32, 1.0, 1.0], &[3])?, "w");
/// let mut opt = Lion::new().learning_rate(0.1);
/// opt.apply_gradients(&[(Tensor::from_vec(vec![3.0f32, -0.01, 0.0], &[3])?, w.clone())])?;
/// assert_eq!(w.value().to_vec::<f32>()?, vec![0.9, 1.1, 1.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Lion {
    config: OptimizerConfig,
    /// β1, mixing the gradient into the update's sign.
    pub beta_1: f64,
    /// β2, the momentum's decay.
    pub beta_2: f64,
    slots: Slots,
}

impl Default for Lion {
    fn default() -> Self {
        Lion {
            config: OptimizerConfig::new(0.001),
            beta_1: 0.9,
            beta_2: 0.99,
            slots: Slots::default(),
        }
    }
}

impl Lion {
    /// With Keras's defaults.
    pub fn new() -> Lion {
        Lion::default()
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

    common_builders!(config);
}

struct LionKernel {
    lr: f64,
    beta_1: f64,
    beta_2: f64,
}

impl Kernel for LionKernel {
    fn run<T: Float>(&self, w: &mut [T], g: &[T], slots: &mut [Vec<T>]) {
        let (lr, b1, c1, b2, c2) = (
            T::c(self.lr),
            T::c(self.beta_1),
            T::c(1.0 - self.beta_1),
            T::c(self.beta_2),
            T::c(1.0 - self.beta_2),
        );
        let m = &mut slots[0];
        for i in 0..w.len() {
            let gi = g[i];
            w[i] = w[i] - lr * (m[i] * b1 + gi * c1).sign();
            m[i] = m[i] * b2 + gi * c2;
        }
    }
}

impl Optimizer for Lion {
    fn hyperparameters(&self) -> serde_json::Value {
        serde_json::json!({"beta_1": self.beta_1, "beta_2": self.beta_2})
    }

    fn name(&self) -> &str {
        "Lion"
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
        if self.beta_1 <= 0.0 || self.beta_1 > 1.0 {
            return Err(Error::invalid(
                "Lion",
                format!(
                    "`beta_1` must be in the [0, 1] range, otherwise the optimizer degenerates \
                     to SignSGD; received beta_1={}",
                    self.beta_1
                ),
            ));
        }
        Ok(())
    }

    fn update_step(&mut self, grad: &Tensor, var: &Variable, lr: f64) -> Result<()> {
        let slots = self
            .slots
            .get_or_create(var, |v| Ok(vec![zeros_slot(v, "momentum")]))?
            .to_vec();
        let k = LionKernel {
            lr,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
        };
        apply_kernel(var, grad, &slots, &k)
    }
}
