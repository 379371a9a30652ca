//! Adagrad.

use ferroflow_core::{Error, Result, Tensor, Variable};

use super::kernel::{apply_kernel, Float, Kernel};
use super::{common_builders, const_slot, Optimizer, OptimizerConfig, Slots};

/// `keras.optimizers.Adagrad(learning_rate=0.001, initial_accumulator_value=0.1,
/// epsilon=1e-7)`.
///
/// Keras 3's rule: `acc += g²` (the `accumulator` slot starts at `initial_accumulator_value`),
/// `w -= lr·g/√(acc + ε)`.
///
/// ```
/// use ferroflow_core::{Tensor, Variable};
/// use ferroflow_keras::optimizers::{Adagrad, Optimizer};
/// let w = Variable::new(Tensor::from_vec(vec![1.0f32], &[1])?, "w");
/// let mut opt = Adagrad::new().learning_rate(0.1);
/// opt.apply_gradients(&[(Tensor::from_vec(vec![0.3f32], &[1])?, w.clone())])?;
/// // acc = 0.1 + 0.09 = 0.19; w = 1 - 0.1·0.3/√0.19
/// assert!((w.value().to_vec::<f32>()?[0] - (1.0 - 0.03 / 0.19f32.sqrt())).abs() < 1e-6);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Adagrad {
    config: OptimizerConfig,
    /// The accumulators' starting value (non-negative).
    pub initial_accumulator_value: f64,
    /// ε.
    pub epsilon: f64,
    slots: Slots,
}

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad {
            config: OptimizerConfig::new(0.001),
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
            slots: Slots::default(),
        }
    }
}

impl Adagrad {
    /// With Keras's defaults.
    pub fn new() -> Adagrad {
        Adagrad::default()
    }

    /// The accumulators' starting value.
    pub fn initial_accumulator_value(mut self, v: f64) -> Self {
        self.initial_accumulator_value = v;
        self
    }

    /// ε.
    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }

    common_builders!(config);
}

struct AdagradKernel {
    lr: f64,
    epsilon: f64,
}

impl Kernel for AdagradKernel {
    fn run<T: Float>(&self, w: &mut [T], g: &[T], slots: &mut [Vec<T>]) {
        let (lr, eps) = (T::c(self.lr), T::c(self.epsilon));
        let acc = &mut slots[0];
        for i in 0..w.len() {
            let gi = g[i];
            acc[i] = acc[i] + gi * gi;
            w[i] = w[i] - lr * gi / (acc[i] + eps).sqrt();
        }
    }
}

impl Optimizer for Adagrad {
    fn hyperparameters(&self) -> serde_json::Value {
        serde_json::json!({"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon})
    }

    fn name(&self) -> &str {
        "Adagrad"
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
        if self.initial_accumulator_value < 0.0 {
            return Err(Error::invalid(
                "Adagrad",
                format!(
                    "`initial_accumulator_value` must be non-negative; received {}",
                    self.initial_accumulator_value
                ),
            ));
        }
        Ok(())
    }

    fn update_step(&mut self, grad: &Tensor, var: &Variable, lr: f64) -> Result<()> {
        let init = self.initial_accumulator_value;
        let slots = self
            .slots
            .get_or_create(var, |v| Ok(vec![const_slot(v, "accumulator", init)]))?
            .to_vec();
        let k = AdagradKernel {
            lr,
            epsilon: self.epsilon,
        };
        apply_kernel(var, grad, &slots, &k)
    }
}
