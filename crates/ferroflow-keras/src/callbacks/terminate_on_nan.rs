//! `keras.callbacks.TerminateOnNaN`.

use ferroflow_core::Result;

use super::{Callback, Logs};
use crate::models::Model;

/// `keras.callbacks.TerminateOnNaN()`: after a training batch whose (running) loss is NaN or
/// infinite, prints `Batch N: Invalid loss, terminating training` and sets
/// `model.stop_training`, so `fit` ends after that batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct TerminateOnNaN;

impl TerminateOnNaN {
    /// The callback.
    pub fn new() -> Self {
        TerminateOnNaN
    }
}

impl Callback for TerminateOnNaN {
    fn on_train_batch_end(&mut self, model: &mut Model, batch: usize, logs: &Logs) -> Result<()> {
        if let Some(loss) = logs.get("loss") {
            if !loss.is_finite() {
                println!("Batch {batch}: Invalid loss, terminating training");
                model.stop_training = true;
            }
        }
        Ok(())
    }
}
