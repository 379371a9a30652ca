//! `keras.callbacks`: hooks into `fit`, `evaluate` and `predict`.
//!
//! A callback gets the model (mutably: it may stop training, change the learning rate or restore
//! weights) and the logs — the epoch's or batch's figures by name (`loss`, `accuracy`,
//! `val_loss`, ...), sorted as Keras sorts them.

mod history;

pub use history::History;

use std::collections::BTreeMap;

use ferroflow_core::Result;

use crate::models::Model;

/// Figures by name (`"loss"`, `"val_accuracy"`, `"learning_rate"`), in Keras's (alphabetical)
/// order.
pub type Logs = BTreeMap<String, f64>;

/// A Keras callback. Every hook has an empty default; implement those you need.
#[allow(unused_variables)]
pub trait Callback: Send {
    /// Before the first epoch.
    fn on_train_begin(&mut self, model: &mut Model, logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// After the last epoch (or an early stop).
    fn on_train_end(&mut self, model: &mut Model, logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// Before each epoch (`epoch` counts from 0, as in Keras).
    fn on_epoch_begin(&mut self, model: &mut Model, epoch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// After each epoch, with the epoch's training and validation figures.
    fn on_epoch_end(&mut self, model: &mut Model, epoch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// Before each training batch.
    fn on_train_batch_begin(&mut self, model: &mut Model, batch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// After each training batch, with the running epoch figures.
    fn on_train_batch_end(&mut self, model: &mut Model, batch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// Before `evaluate` (or the validation pass of `fit`).
    fn on_test_begin(&mut self, model: &mut Model, logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// After `evaluate`.
    fn on_test_end(&mut self, model: &mut Model, logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// After each evaluation batch.
    fn on_test_batch_end(&mut self, model: &mut Model, batch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// Before `predict`.
    fn on_predict_begin(&mut self, model: &mut Model, logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// After `predict`.
    fn on_predict_end(&mut self, model: &mut Model, logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// After each prediction batch.
    fn on_predict_batch_end(&mut self, model: &mut Model, batch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }
}
