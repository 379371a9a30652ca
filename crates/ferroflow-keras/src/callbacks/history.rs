//! `keras.callbacks.History`, what `fit` returns.

use std::collections::BTreeMap;

use ferroflow_core::Result;

use super::{Callback, Logs};
use crate::models::Model;

/// The record of a `fit` call: `history["loss"][epoch]`, the epoch numbers, and the parameters
/// (`epochs`, `steps`, `verbose`).
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Every logged figure, one value per epoch.
    pub history: BTreeMap<String, Vec<f64>>,
    /// The epochs run (0-based, from `initial_epoch`).
    pub epoch: Vec<usize>,
    /// `fit`'s parameters: `epochs`, `steps`, `verbose`.
    pub params: BTreeMap<String, usize>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// The values of one figure (`"loss"`, `"val_accuracy"`), if logged.
    pub fn get(&self, key: &str) -> Option<&[f64]> {
        self.history.get(key).map(|v| v.as_slice())
    }
}

impl Callback for History {
    fn on_epoch_end(&mut self, _model: &mut Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        self.epoch.push(epoch);
        for (k, v) in logs {
            self.history.entry(k.clone()).or_default().push(*v);
        }
        Ok(())
    }
}
