//! `keras.optimizers.schedules`: learning rates as functions of the iteration count.
//!
//! A schedule passed as an optimizer's `learning_rate` is evaluated at `optimizer.iterations`
//! (0 for the first step) before each step, as in Keras 3.
//!
//! ```
//! use ferroflow_keras::optimizers::schedules::{ExponentialDecay, LearningRateSchedule};
//! use ferroflow_keras::optimizers::{Optimizer, SGD};
//! let s = ExponentialDecay::new(0.1, 10, 0.5)?.staircase(true);
//! assert_eq!(s.call(9), 0.1);
//! assert_eq!(s.call(10), 0.05);
//! let opt = SGD::new().learning_rate(s);
//! assert_eq!(Optimizer::learning_rate(&opt), 0.1); // (the builder `learning_rate` shadows it)
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::f64::consts::PI;

use ferroflow_core::{Error, Result};

/// A learning-rate schedule, evaluated at `optimizer.iterations` before each step.
pub trait LearningRateSchedule: Send + Sync {
    /// The Keras class name.
    fn name(&self) -> &str;

    /// The learning rate at `step` (0-based iteration count).
    fn call(&self, step: u64) -> f64;

    /// Keras's `get_config()` (the arguments by their Keras names), for saving. Empty by
    /// default.
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

/// A step count as Keras writes it: an integer when it is one.
fn steps_json(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        serde_json::json!(v as i64)
    } else {
        serde_json::json!(v)
    }
}

fn check_decay_steps(schedule: &str, decay_steps: f64) -> Result<()> {
    if decay_steps.is_nan() || decay_steps <= 0.0 {
        return Err(Error::invalid(
            schedule,
            format!("argument `decay_steps` must be > 0; received decay_steps={decay_steps}"),
        ));
    }
    Ok(())
}

/// `ExponentialDecay(initial_learning_rate, decay_steps, decay_rate, staircase=False)`:
/// `initial·rate^(step/decay_steps)`, with `floor(step/decay_steps)` when `staircase`.
#[derive(Clone, Debug)]
pub struct ExponentialDecay {
    /// The initial learning rate.
    pub initial_learning_rate: f64,
    /// The decay period (> 0).
    pub decay_steps: f64,
    /// The decay rate.
    pub decay_rate: f64,
    /// Decay at discrete intervals.
    pub staircase: bool,
}

impl ExponentialDecay {
    /// Keras's arguments; `decay_steps` must be positive.
    pub fn new(
        initial_learning_rate: f64,
        decay_steps: impl Into<f64>,
        decay_rate: f64,
    ) -> Result<Self> {
        let decay_steps = decay_steps.into();
        check_decay_steps("ExponentialDecay", decay_steps)?;
        Ok(ExponentialDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase: false,
        })
    }

    /// Decay at discrete intervals.
    pub fn staircase(mut self, s: bool) -> Self {
        self.staircase = s;
        self
    }
}

impl LearningRateSchedule for ExponentialDecay {
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({"initial_learning_rate": self.initial_learning_rate, "decay_steps": steps_json(self.decay_steps), "decay_rate": self.decay_rate, "staircase": self.staircase, "name": "ExponentialDecay"})
    }

    fn name(&self) -> &str {
        "ExponentialDecay"
    }

    fn call(&self, step: u64) -> f64 {
        let mut p = step as f64 / self.decay_steps;
        if self.staircase {
            p = p.floor();
        }
        self.initial_learning_rate * self.decay_rate.powf(p)
    }
}

/// `PiecewiseConstantDecay(boundaries, values)`: `values[0]` while `step <= boundaries[0]`,
/// `values[i]` while `boundaries[i-1] < step <= boundaries[i]`, `values[-1]` after the last
/// boundary.
#[derive(Clone, Debug)]
pub struct PiecewiseConstantDecay {
    /// Increasing step boundaries.
    pub boundaries: Vec<f64>,
    /// One more value than boundaries.
    pub values: Vec<f64>,
}

impl PiecewiseConstantDecay {
    /// Keras's arguments; `values` must have one more element than `boundaries`.
    pub fn new<B: Into<f64> + Copy>(boundaries: &[B], values: &[f64]) -> Result<Self> {
        if boundaries.len() + 1 != values.len() {
            return Err(Error::invalid(
                "PiecewiseConstantDecay",
                format!(
                    "the length of boundaries should be 1 less than the length of values; \
                     received boundaries of length {} and values of length {}",
                    boundaries.len(),
                    values.len()
                ),
            ));
        }
        Ok(PiecewiseConstantDecay {
            boundaries: boundaries.iter().map(|&b| b.into()).collect(),
            values: values.to_vec(),
        })
    }
}

impl LearningRateSchedule for PiecewiseConstantDecay {
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({"boundaries": self.boundaries.iter().map(|b| steps_json(*b)).collect::<Vec<_>>(), "values": self.values, "name": "PiecewiseConstant"})
    }

    fn name(&self) -> &str {
        "PiecewiseConstantDecay"
    }

    fn call(&self, step: u64) -> f64 {
        let s = step as f64;
        let i = self.boundaries.iter().take_while(|&&b| s > b).count();
        self.values[i]
    }
}

/// `PolynomialDecay(initial_learning_rate, decay_steps, end_learning_rate=1e-4, power=1.0,
/// cycle=False)`: `(initial - end)·(1 - step/decay_steps)^power + end` with
/// `step = min(step, decay_steps)`; with `cycle`, `decay_steps` is multiplied by
/// `ceil(step/decay_steps)` (1 at step 0) instead.
#[derive(Clone, Debug)]
pub struct PolynomialDecay {
    /// The initial learning rate.
    pub initial_learning_rate: f64,
    /// The decay period (> 0).
    pub decay_steps: f64,
    /// The final learning rate.
    pub end_learning_rate: f64,
    /// The polynomial's power.
    pub power: f64,
    /// Restart after each period.
    pub cycle: bool,
}

impl PolynomialDecay {
    /// Keras's defaults for the optional arguments; `decay_steps` must be positive.
    pub fn new(initial_learning_rate: f64, decay_steps: impl Into<f64>) -> Result<Self> {
        let decay_steps = decay_steps.into();
        check_decay_steps("PolynomialDecay", decay_steps)?;
        Ok(PolynomialDecay {
            initial_learning_rate,
            decay_steps,
            end_learning_rate: 1e-4,
            power: 1.0,
            cycle: false,
        })
    }

    /// The final learning rate.
    pub fn end_learning_rate(mut self, v: f64) -> Self {
        self.end_learning_rate = v;
        self
    }

    /// The polynomial's power.
    pub fn power(mut self, p: f64) -> Self {
        self.power = p;
        self
    }

    /// Restart after each period.
    pub fn cycle(mut self, c: bool) -> Self {
        self.cycle = c;
        self
    }
}

impl LearningRateSchedule for PolynomialDecay {
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({"initial_learning_rate": self.initial_learning_rate, "decay_steps": steps_json(self.decay_steps), "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle, "name": "PolynomialDecay"})
    }

    fn name(&self) -> &str {
        "PolynomialDecay"
    }

    fn call(&self, step: u64) -> f64 {
        let mut s = step as f64;
        let mut d = self.decay_steps;
        if self.cycle {
            let mult = if s == 0.0 { 1.0 } else { (s / d).ceil() };
            d *= mult;
        } else {
            s = s.min(d);
        }
        let p = s / d;
        (self.initial_learning_rate - self.end_learning_rate) * (1.0 - p).powf(self.power)
            + self.end_learning_rate
    }
}

/// `InverseTimeDecay(initial_learning_rate, decay_steps, decay_rate, staircase=False)`:
/// `initial / (1 + rate·step/decay_steps)`, with `floor(step/decay_steps)` when `staircase`.
#[derive(Clone, Debug)]
pub struct InverseTimeDecay {
    /// The initial learning rate.
    pub initial_learning_rate: f64,
    /// The decay period (> 0).
    pub decay_steps: f64,
    /// The decay rate.
    pub decay_rate: f64,
    /// Decay at discrete intervals.
    pub staircase: bool,
}

impl InverseTimeDecay {
    /// Keras's arguments; `decay_steps` must be positive.
    pub fn new(
        initial_learning_rate: f64,
        decay_steps: impl Into<f64>,
        decay_rate: f64,
    ) -> Result<Self> {
        let decay_steps = decay_steps.into();
        check_decay_steps("InverseTimeDecay", decay_steps)?;
        Ok(InverseTimeDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase: false,
        })
    }

    /// Decay at discrete intervals.
    pub fn staircase(mut self, s: bool) -> Self {
        self.staircase = s;
        self
    }
}

impl LearningRateSchedule for InverseTimeDecay {
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({"initial_learning_rate": self.initial_learning_rate, "decay_steps": steps_json(self.decay_steps), "decay_rate": self.decay_rate, "staircase": self.staircase, "name": "InverseTimeDecay"})
    }

    fn name(&self) -> &str {
        "InverseTimeDecay"
    }

    fn call(&self, step: u64) -> f64 {
        let mut p = step as f64 / self.decay_steps;
        if self.staircase {
            p = p.floor();
        }
        self.initial_learning_rate / (1.0 + self.decay_rate * p)
    }
}

/// `CosineDecay(initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
/// warmup_steps=0)`.
///
/// Without `warmup_target`: `initial·((1-α)·½(1 + cos(π·s/decay_steps)) + α)` with
/// `s = min(step, decay_steps)`. With it: `s = min(step, decay_steps + warmup_steps)`; while
/// `s < warmup_steps` the rate rises linearly, `(target - initial)·s/warmup_steps + initial`,
/// then decays from `target` as above over `s - warmup_steps`.
#[derive(Clone, Debug)]
pub struct CosineDecay {
    /// The initial learning rate (the warmup's start when a warmup target is set).
    pub initial_learning_rate: f64,
    /// The decay period (> 0).
    pub decay_steps: f64,
    /// The final rate as a fraction of the decay's starting rate.
    pub alpha: f64,
    /// The rate reached at the end of the warmup (no warmup when `None`).
    pub warmup_target: Option<f64>,
    /// The warmup's length in steps.
    pub warmup_steps: f64,
}

impl CosineDecay {
    /// Keras's defaults for the optional arguments; `decay_steps` must be positive.
    pub fn new(initial_learning_rate: f64, decay_steps: impl Into<f64>) -> Result<Self> {
        let decay_steps = decay_steps.into();
        check_decay_steps("CosineDecay", decay_steps)?;
        Ok(CosineDecay {
            initial_learning_rate,
            decay_steps,
            alpha: 0.0,
            warmup_target: None,
            warmup_steps: 0.0,
        })
    }

    /// The final rate as a fraction of the decay's starting rate.
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
        self
    }

    /// The rate reached at the end of the warmup.
    pub fn warmup_target(mut self, t: f64) -> Self {
        self.warmup_target = Some(t);
        self
    }

    /// The warmup's length in steps.
    pub fn warmup_steps(mut self, n: impl Into<f64>) -> Self {
        self.warmup_steps = n.into();
        self
    }

    fn decay(&self, s: f64, from: f64) -> f64 {
        let cosine = 0.5 * (1.0 + (PI * (s / self.decay_steps)).cos());
        from * ((1.0 - self.alpha) * cosine + self.alpha)
    }
}

impl LearningRateSchedule for CosineDecay {
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({"initial_learning_rate": self.initial_learning_rate, "decay_steps": steps_json(self.decay_steps), "alpha": self.alpha, "name": "CosineDecay", "warmup_target": self.warmup_target, "warmup_steps": steps_json(self.warmup_steps)})
    }

    fn name(&self) -> &str {
        "CosineDecay"
    }

    fn call(&self, step: u64) -> f64 {
        let s = step as f64;
        match self.warmup_target {
            None => self.decay(s.min(self.decay_steps), self.initial_learning_rate),
            Some(target) => {
                let s = s.min(self.decay_steps + self.warmup_steps);
                if s < self.warmup_steps {
                    (target - self.initial_learning_rate) * (s / self.warmup_steps)
                        + self.initial_learning_rate
                } else {
                    self.decay(s - self.warmup_steps, target)
                }
            }
        }
    }
}

/// `CosineDecayRestarts(initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
/// alpha=0.0)` (SGDR): cosine decay over periods of `first_decay_steps·t_mul^i` steps, the
/// `i`-th restarting from `initial·m_mul^i`; within a period at fraction `f`, the rate is
/// `initial·((1-α)·½·m_mul^i·(1 + cos(π·f)) + α)` (Keras's formula: `α` is not scaled).
#[derive(Clone, Debug)]
pub struct CosineDecayRestarts {
    /// The initial learning rate.
    pub initial_learning_rate: f64,
    /// The first period's length (> 0).
    pub first_decay_steps: f64,
    /// Each period is `t_mul` times longer than the previous.
    pub t_mul: f64,
    /// Each restart starts `m_mul` times lower than the previous.
    pub m_mul: f64,
    /// The minimum rate as a fraction of `initial_learning_rate`.
    pub alpha: f64,
}

impl CosineDecayRestarts {
    /// Keras's defaults for the optional arguments; `first_decay_steps` must be positive.
    pub fn new(initial_learning_rate: f64, first_decay_steps: impl Into<f64>) -> Result<Self> {
        let first_decay_steps = first_decay_steps.into();
        if first_decay_steps.is_nan() || first_decay_steps <= 0.0 {
            return Err(Error::invalid(
                "CosineDecayRestarts",
                format!(
                    "argument `first_decay_steps` must be > 0; received \
                     first_decay_steps={first_decay_steps}"
                ),
            ));
        }
        Ok(CosineDecayRestarts {
            initial_learning_rate,
            first_decay_steps,
            t_mul: 2.0,
            m_mul: 1.0,
            alpha: 0.0,
        })
    }

    /// The period growth factor.
    pub fn t_mul(mut self, t: f64) -> Self {
        self.t_mul = t;
        self
    }

    /// The restart decay factor.
    pub fn m_mul(mut self, m: f64) -> Self {
        self.m_mul = m;
        self
    }

    /// The minimum rate as a fraction of the initial rate.
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
        self
    }
}

impl LearningRateSchedule for CosineDecayRestarts {
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": steps_json(self.first_decay_steps), "t_mul": self.t_mul, "m_mul": self.m_mul, "alpha": self.alpha, "name": "SGDRDecay"})
    }

    fn name(&self) -> &str {
        "CosineDecayRestarts"
    }

    fn call(&self, step: u64) -> f64 {
        let mut fraction = step as f64 / self.first_decay_steps;
        let i_restart = if self.t_mul == 1.0 {
            let i = fraction.floor();
            fraction -= i;
            i
        } else {
            let t = self.t_mul;
            let i = ((1.0 - fraction * (1.0 - t)).ln() / t.ln()).floor();
            let sum_r = (1.0 - t.powf(i)) / (1.0 - t);
            fraction = (fraction - sum_r) / t.powf(i);
            i
        };
        let m_fac = self.m_mul.powf(i_restart);
        let cosine = 0.5 * m_fac * (1.0 + (PI * fraction).cos());
        self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)
    }
}
