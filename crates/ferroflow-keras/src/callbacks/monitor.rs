//! What "better" means for a monitored figure (`mode` = `auto` / `min` / `max`), shared by
//! `EarlyStopping`, `ModelCheckpoint` and `ReduceLROnPlateau`.

use ferroflow_core::Result;

use crate::backend::unknown_name;

/// Whether a monitored figure should go down or up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Decide from the name: figures of metrics that grow when better (`accuracy`, `acc`, `auc`,
    /// `precision`, `recall`, F-scores) are maximised, everything else (losses, errors) minimised.
    Auto,
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

impl Mode {
    /// Parses Keras's `mode` strings.
    pub fn parse(who: &str, s: &str) -> Result<Mode> {
        match s {
            "auto" => Ok(Mode::Auto),
            "min" => Ok(Mode::Min),
            "max" => Ok(Mode::Max),
            _ => Err(unknown_name(
                &format!("{who} mode"),
                s,
                &["auto", "min", "max"],
            )),
        }
    }

    /// True when higher values of `monitor` are better under this mode.
    pub fn maximises(self, monitor: &str) -> bool {
        match self {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => {
                let m = monitor.strip_prefix("val_").unwrap_or(monitor);
                [
                    "acc",
                    "auc",
                    "precision",
                    "recall",
                    "f1",
                    "fbeta",
                    "fmeasure",
                ]
                .iter()
                .any(|k| m.contains(k))
            }
        }
    }
}

/// `current` is better than `reference` by more than `min_delta` (Keras's `_is_improvement`);
/// anything is better than no reference.
pub(crate) fn is_improvement(
    maximise: bool,
    current: f64,
    reference: Option<f64>,
    min_delta: f64,
) -> bool {
    let Some(r) = reference else {
        return true;
    };
    if maximise {
        current - min_delta.abs() > r
    } else {
        current + min_delta.abs() < r
    }
}
