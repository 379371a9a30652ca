//! `LearningRateScheduler` and `ReduceLROnPlateau`.

use ferroflow_core::{Error, Result};

use super::monitor::Mode;
use super::{Callback, Logs};
use crate::models::Model;

/// A schedule: `(epoch, current learning rate) -> new learning rate`.
pub type Schedule = Box<dyn FnMut(usize, f64) -> f64 + Send>;

/// `keras.callbacks.LearningRateScheduler(schedule, verbose=0)`: at the start of every epoch,
/// sets the optimizer's learning rate to `schedule(epoch, lr)` (epoch 0-based, `lr` the current
/// rate), as `optimizer.learning_rate = ...` does (a learning-rate schedule object is replaced by
/// the constant). Keras also adds `learning_rate` to the epoch's logs; ferroflow's logs are
/// read-only for callbacks, so read it from the optimizer instead.
///
/// ```
/// use ferroflow_keras::callbacks::LearningRateScheduler;
/// // Keep the rate for 10 epochs, then decay it by e^-0.1 per epoch (Keras's example).
/// let cb = LearningRateScheduler::new(|epoch, lr| if epoch < 10 { lr } else { lr * (-0.1f64).exp() });
/// # let _ = cb;
/// ```
pub struct LearningRateScheduler {
    schedule: Schedule,
    verbose: u8,
}

impl LearningRateScheduler {
    /// A scheduler calling `schedule(epoch, lr)`.
    pub fn new(schedule: impl FnMut(usize, f64) -> f64 + Send + 'static) -> Self {
        LearningRateScheduler {
            schedule: Box::new(schedule),
            verbose: 0,
        }
    }

    /// 1 prints each new rate.
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
}

impl Callback for LearningRateScheduler {
    fn on_epoch_begin(&mut self, model: &mut Model, epoch: usize, _logs: &Logs) -> Result<()> {
        let opt = model.optimizer()?;
        let lr = (self.schedule)(epoch, opt.learning_rate());
        if !lr.is_finite() {
            return Err(Error::invalid(
                "LearningRateScheduler",
                format!(
                    "the schedule returned {lr} for epoch {epoch}; it must return a finite number"
                ),
            ));
        }
        opt.set_learning_rate(lr);
        if self.verbose > 0 {
            println!(
                "\nEpoch {}: LearningRateScheduler setting learning rate to {lr}.",
                epoch + 1
            );
        }
        Ok(())
    }

    /// Keras logs the learning rate: `history["learning_rate"]`.
    fn on_epoch_end(&mut self, model: &mut Model, _epoch: usize, logs: &mut Logs) -> Result<()> {
        logs.insert("learning_rate".into(), model.optimizer()?.learning_rate());
        Ok(())
    }
}

/// `keras.callbacks.ReduceLROnPlateau(monitor='val_loss', factor=0.1, patience=10, verbose=0,
/// mode='auto', min_delta=1e-4, cooldown=0, min_lr=0.0)`: multiplies the learning rate by
/// `factor` (not below `min_lr`) when the monitored figure has not improved by more than
/// `min_delta` for `patience` epochs, then waits `cooldown` epochs before counting again — Keras
/// 3's algorithm step for step.
///
/// ```
/// use ferroflow_keras::callbacks::ReduceLROnPlateau;
/// let cb = ReduceLROnPlateau::new().monitor("loss").factor(0.5).patience(2).min_lr(1e-4);
/// # let _ = cb;
/// ```
pub struct ReduceLROnPlateau {
    monitor: String,
    factor: f64,
    patience: usize,
    verbose: u8,
    mode: Mode,
    min_delta: f64,
    cooldown: usize,
    min_lr: f64,
    error: Option<Error>,
    best: f64,
    wait: usize,
    cooldown_counter: usize,
}

impl ReduceLROnPlateau {
    /// Keras's defaults.
    pub fn new() -> Self {
        ReduceLROnPlateau {
            monitor: "val_loss".into(),
            factor: 0.1,
            patience: 10,
            verbose: 0,
            mode: Mode::Auto,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            error: None,
            best: f64::INFINITY,
            wait: 0,
            cooldown_counter: 0,
        }
    }
    /// The figure to watch.
    pub fn monitor(mut self, m: &str) -> Self {
        self.monitor = m.into();
        self
    }
    /// The factor the rate is multiplied by; must be below 1 (checked when training begins).
    pub fn factor(mut self, f: f64) -> Self {
        self.factor = f;
        if f >= 1.0 {
            self.error = Some(Error::invalid(
                "ReduceLROnPlateau",
                format!("ReduceLROnPlateau does not support a factor >= 1.0, got {f}"),
            ));
        }
        self
    }
    /// Epochs without improvement before reducing.
    pub fn patience(mut self, p: usize) -> Self {
        self.patience = p;
        self
    }
    /// 1 prints each reduction.
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// `"auto"`, `"min"` or `"max"`.
    pub fn mode(mut self, m: &str) -> Self {
        match Mode::parse("ReduceLROnPlateau", m) {
            Ok(mode) => self.mode = mode,
            Err(e) => self.error = Some(e),
        }
        self
    }
    /// The smallest change that counts as an improvement.
    pub fn min_delta(mut self, d: f64) -> Self {
        self.min_delta = d;
        self
    }
    /// Epochs to wait after a reduction before counting again.
    pub fn cooldown(mut self, c: usize) -> Self {
        self.cooldown = c;
        self
    }
    /// The lowest rate.
    pub fn min_lr(mut self, lr: f64) -> Self {
        self.min_lr = lr;
        self
    }

    fn maximise(&self) -> bool {
        // Keras's ReduceLROnPlateau: in "auto" mode only monitors containing "acc" are
        // maximised (unlike EarlyStopping, which asks the metric).
        match self.mode {
            Mode::Auto => self.monitor.contains("acc"),
            m => m.maximises(&self.monitor),
        }
    }

    fn better(&self, current: f64) -> bool {
        if self.maximise() {
            current > self.best + self.min_delta
        } else {
            current < self.best - self.min_delta
        }
    }

    fn reset(&mut self) {
        self.best = if self.maximise() {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        self.wait = 0;
        self.cooldown_counter = 0;
    }
}

impl Default for ReduceLROnPlateau {
    fn default() -> Self {
        Self::new()
    }
}

impl Callback for ReduceLROnPlateau {
    fn on_train_begin(&mut self, _model: &mut Model, _logs: &Logs) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.reset();
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &mut Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        // Keras logs the learning rate in effect during the epoch.
        logs.insert("learning_rate".into(), model.optimizer()?.learning_rate());
        let Some(&current) = logs.get(&self.monitor) else {
            eprintln!(
                "WARNING: Learning rate reduction is conditioned on metric `{}` which is not available. Available metrics are: {}",
                self.monitor,
                logs.keys().cloned().collect::<Vec<_>>().join(",")
            );
            return Ok(());
        };
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.better(current) {
            self.best = current;
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let opt = model.optimizer()?;
                let old = opt.learning_rate();
                // Keras compares against the float32 min_lr.
                if old > self.min_lr as f32 as f64 {
                    let new = (old * self.factor).max(self.min_lr);
                    opt.set_learning_rate(new);
                    if self.verbose > 0 {
                        println!(
                            "\nEpoch {}: ReduceLROnPlateau reducing learning rate to {new}.",
                            epoch + 1
                        );
                    }
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(())
    }
}
