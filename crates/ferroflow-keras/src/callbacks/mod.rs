//! `keras.callbacks`: hooks into `fit`, `evaluate` and `predict`.
//!
//! A callback gets the model (mutably: it may stop training, change the learning rate or restore
//! weights) and the logs — the epoch's or batch's figures by name (`loss`, `accuracy`,
//! `val_loss`, ...), sorted as Keras sorts them.

mod csv_logger;
mod early_stopping;
mod history;
mod lambda;
mod learning_rate;
mod model_checkpoint;
mod monitor;
mod tensorboard;
mod terminate_on_nan;

pub use csv_logger::CSVLogger;
pub use early_stopping::EarlyStopping;
pub use history::History;
pub use lambda::{IndexHook, LambdaCallback, LogsHook};
pub use learning_rate::{LearningRateScheduler, ReduceLROnPlateau, Schedule};
pub use model_checkpoint::{format_filepath, register_saver, ModelCheckpoint, Saver, TrainState};
pub use monitor::Mode;
pub use tensorboard::{TensorBoard, UpdateFreq};
pub use terminate_on_nan::TerminateOnNaN;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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
    fn on_epoch_end(&mut self, model: &mut Model, epoch: usize, logs: &mut Logs) -> Result<()> {
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

/// A shared callback: `fit` takes callbacks by value, so keep an `Arc<Mutex<_>>` clone to read a
/// callback's state after training (`early_stopping.lock().unwrap().stopped_epoch()`).
macro_rules! forward {
    ($($name:ident($($arg:ident: $t:ty),*);)*) => {
        $(
            fn $name(&mut self, model: &mut Model, $($arg: $t),*) -> Result<()> {
                self.lock()
                    .map_err(|_| ferroflow_core::Error::invalid("callback", "a shared callback's lock is poisoned"))?
                    .$name(model, $($arg),*)
            }
        )*
    };
}

impl<C: Callback> Callback for Arc<Mutex<C>> {
    forward! {
        on_train_begin(logs: &Logs);
        on_train_end(logs: &Logs);
        on_epoch_begin(epoch: usize, logs: &Logs);
        on_epoch_end(epoch: usize, logs: &mut Logs);
        on_train_batch_begin(batch: usize, logs: &Logs);
        on_train_batch_end(batch: usize, logs: &Logs);
        on_test_begin(logs: &Logs);
        on_test_end(logs: &Logs);
        on_test_batch_end(batch: usize, logs: &Logs);
        on_predict_begin(logs: &Logs);
        on_predict_end(logs: &Logs);
        on_predict_batch_end(batch: usize, logs: &Logs);
    }
}
