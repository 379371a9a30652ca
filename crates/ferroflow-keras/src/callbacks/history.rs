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

impl History {
    /// Draws the training curves to `path` (`.png` or `.svg`, atomically; the directory must
    /// exist): one panel per figure (`loss` first), the `val_` values beside the training ones,
    /// epochs counted from 1 on the x axis. See [`History::plot_titled`] for a title.
    ///
    /// ```no_run
    /// # let history = ferroflow_keras::callbacks::History::new();
    /// history.plot("curves.png")?;
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn plot(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        crate::utils::curves::plot_history(self, path.as_ref(), None)
    }

    /// [`History::plot`] with a title above the panels.
    pub fn plot_titled(&self, path: impl AsRef<std::path::Path>, title: &str) -> Result<()> {
        crate::utils::curves::plot_history(self, path.as_ref(), Some(title))
    }

    /// Reads a [`CSVLogger`](super::CSVLogger) file (`epoch,accuracy,loss,val_accuracy,val_loss`
    /// with one row per epoch) back into a history. `NA` and empty fields become NaN; without an
    /// `epoch` column the rows count from 0. Errors name the file and the line: a missing file,
    /// an empty one, a row with another number of fields than the header, a value that is not a
    /// number.
    ///
    /// ```no_run
    /// use ferroflow_keras::callbacks::History;
    /// let history = History::read_csv("training.log", ',')?;
    /// println!("{:?}", history.get("val_loss"));
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn read_csv(path: impl AsRef<std::path::Path>, separator: char) -> Result<History> {
        let path = path.as_ref();
        let err = |place: String, msg: String| {
            ferroflow_core::Error::invalid(
                "History::read_csv",
                format!("{}: {place}{msg}", path.display()),
            )
        };
        let bytes = std::fs::read(path).map_err(|e| err(String::new(), e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            err(
                format!("byte {}: ", e.utf8_error().valid_up_to()),
                "not UTF-8 text".into(),
            )
        })?;
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return Err(err(
                String::new(),
                "empty file; expected a CSVLogger header such as `epoch,loss,val_loss`".into(),
            ));
        };
        let names = split_csv(header, separator);
        let epoch_col = names.iter().position(|n| n == "epoch");
        let mut history = History::new();
        for (lineno, line) in lines {
            let fields = split_csv(line, separator);
            if fields.len() != names.len() {
                return Err(err(
                    format!("line {lineno}: "),
                    format!(
                        "expected {} fields as in the header, found {}",
                        names.len(),
                        fields.len()
                    ),
                ));
            }
            for (j, (name, v)) in names.iter().zip(&fields).enumerate() {
                let v = v.trim();
                if Some(j) == epoch_col {
                    let e: usize = v.parse().map_err(|_| {
                        err(
                            format!("line {lineno}: "),
                            format!("epoch {v:?} is not a non-negative integer"),
                        )
                    })?;
                    history.epoch.push(e);
                    continue;
                }
                let x = if v.is_empty() || v == "NA" {
                    f64::NAN
                } else {
                    v.parse::<f64>().map_err(|_| {
                        err(
                            format!("line {lineno}, column {name:?}: "),
                            format!("{v:?} is not a number"),
                        )
                    })?
                };
                history.history.entry(name.clone()).or_default().push(x);
            }
            if epoch_col.is_none() {
                history.epoch.push(history.epoch.len());
            }
        }
        if history.epoch.is_empty() {
            return Err(err(String::new(), "no rows after the header".into()));
        }
        Ok(history)
    }
}

/// Splits one CSV line as Python's `csv` module reads it: fields may be double-quoted, with `""`
/// for a quote inside.
fn split_csv(line: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' {
            quoted = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}
