//! AdamW: Adam with decoupled weight decay.

use ferroflow_core::{Result, Tensor, Variable};

use super::{common_builders, Adam, Optimizer, OptimizerConfig};

/// `keras.optimizers.AdamW(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
/// epsilon=1e-7, amsgrad=False)`.
///
/// Exactly Keras 3's AdamW: the [`Adam`] update, preceded (as for every Keras optimizer with
/// `weight_decay`) by the decoupled decay `w -= w·weight_decay·lr`; only the default
/// `weight_decay` differs.
///
/// ```
/// use ferroflow_core::{Tensor, Variable};
/// use ferroflow_keras::optimizers::{AdamW, Optimizer};
/// let w = Variable::new(Tensor::from_vec(vec![2.0f32], &[1])?, "w");
/// let mut opt = AdamW::new().learning_rate(0.1).weight_decay(0.5);
/// opt.apply_gradients(&[(Tensor::from_vec(vec![0.0f32], &[1])?, w.clone())])?;
/// // A zero gradient leaves only the decay: 2 - 2·0.5·0.1.
/// assert!((w.value().to_vec::<f32>()?[0] - 1.9).abs() < 1e-6);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct AdamW {
    adam: Adam,
}

impl Default for AdamW {
    fn default() -> Self {
        let mut adam = Adam::new();
        adam.config.weight_decay = Some(0.004);
        AdamW { adam }
    }
}

impl AdamW {
    /// With Keras's defaults.
    pub fn new() -> AdamW {
        AdamW::default()
    }

    /// β1.
    pub fn beta_1(mut self, b: f64) -> Self {
        self.adam.beta_1 = b;
        self
    }

    /// β2.
    pub fn beta_2(mut self, b: f64) -> Self {
        self.adam.beta_2 = b;
        self
    }

    /// ε.
    pub fn epsilon(mut self, e: f64) -> Self {
        self.adam.epsilon = e;
        self
    }

    /// AMSGrad.
    pub fn amsgrad(mut self, a: bool) -> Self {
        self.adam.amsgrad = a;
        self
    }

    common_builders!(adam.config);
}

impl Optimizer for AdamW {
    fn hyperparameters(&self) -> serde_json::Value {
        self.adam.hyperparameters()
    }

    fn name(&self) -> &str {
        "AdamW"
    }

    fn config(&self) -> &OptimizerConfig {
        self.adam.config()
    }

    fn config_mut(&mut self) -> &mut OptimizerConfig {
        self.adam.config_mut()
    }

    fn variables(&self) -> Vec<Variable> {
        self.adam.variables()
    }

    fn update_step(&mut self, grad: &Tensor, var: &Variable, lr: f64) -> Result<()> {
        self.adam.update_step(grad, var, lr)
    }
}
