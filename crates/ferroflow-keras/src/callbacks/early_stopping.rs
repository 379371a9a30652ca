//! `keras.callbacks.EarlyStopping`.

use ferroflow_core::{Error, Result, Tensor};

use super::monitor::{is_improvement, Mode};
use super::{Callback, Logs};
use crate::models::Model;

/// `keras.callbacks.EarlyStopping(monitor='val_loss', min_delta=0, patience=0, verbose=0,
/// mode='auto', baseline=None, restore_best_weights=False, start_from_epoch=0)`: stops `fit`
/// (sets `model.stop_training`) once the monitored figure has not improved by more than
/// `min_delta` for `patience` epochs, as Keras 3 does: the wait counter counts epochs since the
/// last improvement (improvements that do not beat `baseline` do not reset it), epochs before
/// `start_from_epoch` are ignored, and with `restore_best_weights` the weights of the best epoch
/// are put back when training ends (whether or not it stopped early). A monitored figure that is
/// missing from the logs is skipped with a warning, as in Keras. Like Keras, a reused instance
/// keeps its best value across `fit` calls (the wait counter and best weights are reset).
///
/// ```
/// use ferroflow_keras::callbacks::EarlyStopping;
/// let es = EarlyStopping::new().monitor("loss").patience(3).restore_best_weights(true);
/// assert_eq!(es.stopped_epoch(), 0);
/// ```
pub struct EarlyStopping {
    monitor: String,
    min_delta: f64,
    patience: usize,
    verbose: u8,
    mode: Mode,
    baseline: Option<f64>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    error: Option<Error>,
    wait: usize,
    stopped_epoch: usize,
    best: Option<f64>,
    best_epoch: usize,
    best_weights: Option<Vec<Tensor>>,
}

impl EarlyStopping {
    /// Keras's defaults: monitor `val_loss`, patience 0, mode `auto`.
    pub fn new() -> Self {
        EarlyStopping {
            monitor: "val_loss".into(),
            min_delta: 0.0,
            patience: 0,
            verbose: 0,
            mode: Mode::Auto,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            error: None,
            wait: 0,
            stopped_epoch: 0,
            best: None,
            best_epoch: 0,
            best_weights: None,
        }
    }
    /// The figure to watch (`"val_loss"`, `"accuracy"`, ...).
    pub fn monitor(mut self, m: &str) -> Self {
        self.monitor = m.into();
        self
    }
    /// The smallest change that counts as an improvement (its sign is ignored).
    pub fn min_delta(mut self, d: f64) -> Self {
        self.min_delta = d.abs();
        self
    }
    /// Epochs without improvement before stopping.
    pub fn patience(mut self, p: usize) -> Self {
        self.patience = p;
        self
    }
    /// 1 prints when stopping and restoring.
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// `"auto"`, `"min"` or `"max"` (another string is an error when training begins).
    pub fn mode(mut self, m: &str) -> Self {
        match Mode::parse("EarlyStopping", m) {
            Ok(mode) => self.mode = mode,
            Err(e) => self.error = Some(e),
        }
        self
    }
    /// A value the figure must beat for the wait counter to reset.
    pub fn baseline(mut self, b: f64) -> Self {
        self.baseline = Some(b);
        self
    }
    /// Put back the best epoch's weights when training ends.
    pub fn restore_best_weights(mut self, r: bool) -> Self {
        self.restore_best_weights = r;
        self
    }
    /// Epochs to wait before watching at all (a warm-up).
    pub fn start_from_epoch(mut self, e: usize) -> Self {
        self.start_from_epoch = e;
        self
    }

    /// The epoch (0-based) at which training was stopped, 0 if it was not.
    pub fn stopped_epoch(&self) -> usize {
        self.stopped_epoch
    }

    /// The best value seen.
    pub fn best(&self) -> Option<f64> {
        self.best
    }

    /// The epoch (0-based) of the best value.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self::new()
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _model: &mut Model, _logs: &Logs) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.wait = 0;
        self.stopped_epoch = 0;
        self.best_epoch = 0;
        self.best_weights = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &mut Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        let Some(&current) = logs.get(&self.monitor) else {
            eprintln!(
                "WARNING: Early stopping conditioned on metric `{}` which is not available. Available metrics are: {}",
                self.monitor,
                logs.keys().cloned().collect::<Vec<_>>().join(",")
            );
            return Ok(());
        };
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        let maximise = self.mode.maximises(&self.monitor);
        if self.restore_best_weights && self.best_weights.is_none() {
            // The first watched epoch's weights, in case nothing ever improves.
            self.best_weights = Some(model.get_weights());
            self.best_epoch = epoch;
        }
        self.wait += 1;
        if is_improvement(maximise, current, self.best, self.min_delta) {
            self.best = Some(current);
            self.best_epoch = epoch;
            if self.restore_best_weights {
                self.best_weights = Some(model.get_weights());
            }
            if self.baseline.is_none()
                || is_improvement(maximise, current, self.baseline, self.min_delta)
            {
                self.wait = 0;
            }
            return Ok(());
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = epoch;
            model.stop_training = true;
        }
        Ok(())
    }

    fn on_train_end(&mut self, model: &mut Model, _logs: &Logs) -> Result<()> {
        if self.stopped_epoch > 0 && self.verbose > 0 {
            println!("Epoch {}: early stopping", self.stopped_epoch + 1);
        }
        if self.restore_best_weights {
            if let Some(w) = &self.best_weights {
                if self.verbose > 0 {
                    println!(
                        "Restoring model weights from the end of the best epoch: {}.",
                        self.best_epoch + 1
                    );
                }
                model.set_weights(w)?;
            }
        }
        Ok(())
    }
}
