//! `keras.callbacks.CSVLogger`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};

use ferroflow_core::{Error, Result};

use super::model_checkpoint::python_repr;
use super::{Callback, Logs};
use crate::models::Model;

/// `keras.callbacks.CSVLogger(filename, separator=',', append=False)`: one row per epoch, as
/// Keras writes it with Python's `csv` module: a header `epoch,<log keys sorted>` (the keys of
/// the first epoch), then the epoch (0-based) and each value as Python prints a float (`0.5`,
/// `1e-05`, `nan`), `NA` for a key missing from a later epoch; lines end with `\r\n` (the `excel`
/// dialect). With `append`, rows are added to an existing file and the header is written only if
/// the file was empty. The file is flushed after every row.
///
/// ```no_run
/// use ferroflow_keras::callbacks::CSVLogger;
/// let cb = CSVLogger::new("training.log").separator(";").append(true);
/// # let _ = cb;
/// ```
pub struct CSVLogger {
    filename: String,
    separator: String,
    append: bool,
    keys: Option<Vec<String>>,
    file: Option<File>,
    write_header: bool,
}

impl CSVLogger {
    /// A logger writing to `filename`.
    pub fn new(filename: &str) -> Self {
        CSVLogger {
            filename: filename.into(),
            separator: ",".into(),
            append: false,
            keys: None,
            file: None,
            write_header: true,
        }
    }
    /// The field separator (default `,`).
    pub fn separator(mut self, s: &str) -> Self {
        self.separator = s.into();
        self
    }
    /// Append to an existing file instead of overwriting it.
    pub fn append(mut self, a: bool) -> Self {
        self.append = a;
        self
    }

    fn io_err(&self, e: std::io::Error) -> Error {
        Error::invalid("CSVLogger", format!("{}: {e}", self.filename))
    }

    /// Python's `csv` quoting (minimal): quote a field holding the separator, a quote or a line
    /// break, doubling its quotes.
    fn field(&self, s: &str) -> String {
        if s.contains(&self.separator) || s.contains('"') || s.contains('\n') || s.contains('\r') {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
}

impl Callback for CSVLogger {
    fn on_train_begin(&mut self, _model: &mut Model, _logs: &Logs) -> Result<()> {
        self.write_header = true;
        if self.append {
            if let Ok(f) = File::open(&self.filename) {
                let mut first = String::new();
                BufReader::new(f)
                    .read_line(&mut first)
                    .map_err(|e| self.io_err(e))?;
                self.write_header = first.is_empty();
            }
        }
        let file = if self.append {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.filename)
        } else {
            File::create(&self.filename)
        }
        .map_err(|e| self.io_err(e))?;
        self.file = Some(file);
        self.keys = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, _model: &mut Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        let keys = self
            .keys
            .get_or_insert_with(|| logs.keys().cloned().collect())
            .clone();
        let mut text = String::new();
        if self.write_header {
            let header: Vec<String> = std::iter::once("epoch".to_string())
                .chain(keys.iter().cloned())
                .map(|k| self.field(&k))
                .collect();
            text.push_str(&header.join(&self.separator));
            text.push_str("\r\n");
            self.write_header = false;
        }
        let row: Vec<String> = std::iter::once(epoch.to_string())
            .chain(keys.iter().map(|k| match logs.get(k) {
                Some(v) => python_repr(*v),
                None => "NA".to_string(),
            }))
            .map(|v| self.field(&v))
            .collect();
        text.push_str(&row.join(&self.separator));
        text.push_str("\r\n");
        let Some(file) = self.file.as_mut() else {
            return Err(Error::invalid(
                "CSVLogger",
                "on_epoch_end called before on_train_begin",
            ));
        };
        let res = file.write_all(text.as_bytes()).and_then(|_| file.flush());
        res.map_err(|e| self.io_err(e))
    }

    fn on_train_end(&mut self, _model: &mut Model, _logs: &Logs) -> Result<()> {
        self.file = None;
        Ok(())
    }
}
