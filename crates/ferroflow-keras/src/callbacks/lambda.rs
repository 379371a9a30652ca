//! `keras.callbacks.LambdaCallback`.

use ferroflow_core::Result;

use super::{Callback, Logs};
use crate::models::Model;

/// A hook of an epoch or batch: `(index, logs)`.
pub type IndexHook = Box<dyn FnMut(usize, &Logs) + Send>;
/// A hook of the whole training: `(logs)`.
pub type LogsHook = Box<dyn FnMut(&Logs) + Send>;

/// `keras.callbacks.LambdaCallback(on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
/// on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None)`: a callback made of
/// closures, called with Keras's arguments (`(epoch, logs)`, `(batch, logs)` or `(logs)`).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use ferroflow_keras::callbacks::LambdaCallback;
/// let losses = Arc::new(Mutex::new(Vec::new()));
/// let l = losses.clone();
/// let cb = LambdaCallback::new().on_epoch_end(move |_epoch, logs| {
///     l.lock().unwrap().push(logs["loss"]);
/// });
/// # let _ = cb;
/// ```
#[derive(Default)]
pub struct LambdaCallback {
    epoch_begin: Option<IndexHook>,
    epoch_end: Option<IndexHook>,
    train_begin: Option<LogsHook>,
    train_end: Option<LogsHook>,
    batch_begin: Option<IndexHook>,
    batch_end: Option<IndexHook>,
}

impl LambdaCallback {
    /// A callback doing nothing until hooks are added.
    pub fn new() -> Self {
        Self::default()
    }
    /// Called with `(epoch, logs)` before each epoch.
    pub fn on_epoch_begin(mut self, f: impl FnMut(usize, &Logs) + Send + 'static) -> Self {
        self.epoch_begin = Some(Box::new(f));
        self
    }
    /// Called with `(epoch, logs)` after each epoch.
    pub fn on_epoch_end(mut self, f: impl FnMut(usize, &Logs) + Send + 'static) -> Self {
        self.epoch_end = Some(Box::new(f));
        self
    }
    /// Called with the logs before training.
    pub fn on_train_begin(mut self, f: impl FnMut(&Logs) + Send + 'static) -> Self {
        self.train_begin = Some(Box::new(f));
        self
    }
    /// Called with the last epoch's logs after training.
    pub fn on_train_end(mut self, f: impl FnMut(&Logs) + Send + 'static) -> Self {
        self.train_end = Some(Box::new(f));
        self
    }
    /// Called with `(batch, logs)` before each training batch.
    pub fn on_train_batch_begin(mut self, f: impl FnMut(usize, &Logs) + Send + 'static) -> Self {
        self.batch_begin = Some(Box::new(f));
        self
    }
    /// Called with `(batch, logs)` after each training batch.
    pub fn on_train_batch_end(mut self, f: impl FnMut(usize, &Logs) + Send + 'static) -> Self {
        self.batch_end = Some(Box::new(f));
        self
    }
}

impl Callback for LambdaCallback {
    fn on_train_begin(&mut self, _model: &mut Model, logs: &Logs) -> Result<()> {
        if let Some(f) = &mut self.train_begin {
            f(logs);
        }
        Ok(())
    }
    fn on_train_end(&mut self, _model: &mut Model, logs: &Logs) -> Result<()> {
        if let Some(f) = &mut self.train_end {
            f(logs);
        }
        Ok(())
    }
    fn on_epoch_begin(&mut self, _model: &mut Model, epoch: usize, logs: &Logs) -> Result<()> {
        if let Some(f) = &mut self.epoch_begin {
            f(epoch, logs);
        }
        Ok(())
    }
    fn on_epoch_end(&mut self, _model: &mut Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        if let Some(f) = &mut self.epoch_end {
            f(epoch, logs);
        }
        Ok(())
    }
    fn on_train_batch_begin(
        &mut self,
        _model: &mut Model,
        batch: usize,
        logs: &Logs,
    ) -> Result<()> {
        if let Some(f) = &mut self.batch_begin {
            f(batch, logs);
        }
        Ok(())
    }
    fn on_train_batch_end(&mut self, _model: &mut Model, batch: usize, logs: &Logs) -> Result<()> {
        if let Some(f) = &mut self.batch_end {
            f(batch, logs);
        }
        Ok(())
    }
}
