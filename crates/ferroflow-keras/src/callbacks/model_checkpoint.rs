//! `keras.callbacks.ModelCheckpoint`.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use ferroflow_core::{Error, Result};

use super::monitor::{is_improvement, Mode};
use super::{Callback, Logs};
use crate::models::Model;

/// What a checkpoint saver gets besides the model: how many epochs are done, and the session's
/// seed stream as it was before `fit` drew its shuffle seed (so a resumed `fit` draws it again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainState {
    /// Epochs completed (the `initial_epoch` to resume with).
    pub epoch: usize,
    /// The session seed ([`crate::backend::seed_state`]).
    pub rng_seed: u64,
    /// Seeds drawn from the session before this `fit` call.
    pub rng_draws: u64,
}

/// Writes a checkpoint file (see [`register_saver`]).
pub type Saver = fn(&Model, &Path, &TrainState) -> Result<()>;

static SAVERS: RwLock<Vec<(String, Saver)>> = RwLock::new(Vec::new());

/// Registers the saver `ModelCheckpoint` uses for paths ending in `suffix` (a later
/// registration of the same suffix replaces the earlier one).
pub fn register_saver(suffix: &str, saver: Saver) {
    let mut s = SAVERS.write().unwrap_or_else(|e| e.into_inner());
    s.retain(|(x, _)| x != suffix);
    s.push((suffix.to_string(), saver));
}

fn saver_for(path: &str) -> Option<Saver> {
    let s = SAVERS.read().unwrap_or_else(|e| e.into_inner());
    s.iter()
        .filter(|(x, _)| path.ends_with(x.as_str()))
        .max_by_key(|(x, _)| x.len())
        .map(|(_, f)| *f)
}

/// `keras.callbacks.ModelCheckpoint(filepath, monitor='val_loss', verbose=0,
/// save_best_only=False, save_weights_only=False, mode='auto', initial_value_threshold=None)` with `save_freq='epoch'`: after
/// each epoch, writes the model's weights with [`Model::save_weights`] to `filepath` formatted
/// with Python's `str.format` rules for `{epoch}` (1-based, as Keras) and the epoch's logs
/// (`weights.{epoch:02d}-{val_loss:.2f}.safetensors`). With `save_best_only`, it writes only when
/// the monitored figure improved on the best so far (a missing figure skips the save with a
/// warning, as Keras). As in Keras, the best value is kept across `fit` calls.
///
/// `.safetensors` files are written here ([`Model::save_weights`]). Other formats come from
/// savers registered with [`register_saver`] by file suffix — `ferroflow_io::register_savers()`
/// adds `.keras` (a resumable checkpoint: model, optimizer state, epoch and the seed stream) and
/// `.weights.h5` — so this crate needs no dependency on the file-format crate. An unregistered
/// suffix is an error at `on_train_begin`. (`ferroflow_io` also registers `.h5`/`.hdf5`: a legacy
/// full model.)
///
/// ```
/// use ferroflow_keras::callbacks::ModelCheckpoint;
/// let cb = ModelCheckpoint::new("ckpt/w.{epoch:02d}-{val_loss:.2f}.safetensors").save_best_only(true);
/// # let _ = cb;
/// ```
pub struct ModelCheckpoint {
    filepath: String,
    monitor: String,
    verbose: u8,
    save_best_only: bool,
    save_weights_only: bool,
    mode: Mode,
    best: Option<f64>,
    error: Option<Error>,
    rng: (u64, u64),
}

impl ModelCheckpoint {
    /// A checkpoint written to `filepath` (a template) after every epoch.
    pub fn new(filepath: &str) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            monitor: "val_loss".into(),
            verbose: 0,
            save_best_only: false,
            save_weights_only: false,
            mode: Mode::Auto,
            best: None,
            error: None,
            rng: (0, 0),
        }
    }
    /// The figure that decides "best" (default `val_loss`).
    pub fn monitor(mut self, m: &str) -> Self {
        self.monitor = m.into();
        self
    }
    /// 1 prints a line for each save (or skipped save).
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// Write only when the monitored figure improves.
    pub fn save_best_only(mut self, b: bool) -> Self {
        self.save_best_only = b;
        self
    }
    /// Write only the weights (the only kind of file written for now).
    pub fn save_weights_only(mut self, b: bool) -> Self {
        self.save_weights_only = b;
        self
    }
    /// `"auto"`, `"min"` or `"max"`.
    pub fn mode(mut self, m: &str) -> Self {
        match Mode::parse("ModelCheckpoint", m) {
            Ok(mode) => self.mode = mode,
            Err(e) => self.error = Some(e),
        }
        self
    }

    /// Keras's `initial_value_threshold`: with `save_best_only`, the first save needs a value
    /// better than this.
    pub fn initial_value_threshold(mut self, v: f64) -> Self {
        self.best = Some(v);
        self
    }

    /// The best monitored value so far.
    pub fn best(&self) -> Option<f64> {
        self.best
    }

    fn save(&self, model: &Model, path: &str, epoch: usize) -> Result<()> {
        if let Some(dir) = PathBuf::from(path).parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::invalid(
                        "ModelCheckpoint",
                        format!("cannot create directory {}: {e}", dir.display()),
                    )
                })?;
            }
        }
        match saver_for(path) {
            Some(f) if !path.ends_with(".safetensors") => f(
                model,
                Path::new(path),
                &TrainState {
                    epoch,
                    rng_seed: self.rng.0,
                    rng_draws: self.rng.1,
                },
            ),
            _ => model.save_weights(path),
        }
    }
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, _model: &mut Model, _logs: &Logs) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        // `fit` drew its shuffle seed just before `on_train_begin`.
        let (seed, draws) = crate::backend::seed_state();
        self.rng = (seed, draws.saturating_sub(1));
        if self.save_weights_only && self.filepath.ends_with(".keras") {
            return Err(Error::invalid(
                "ModelCheckpoint",
                format!(
                    "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided must end in `.weights.h5` (Keras weights format). Received: filepath={}",
                    self.filepath
                ),
            ));
        }
        if saver_for(&self.filepath).is_some() {
            return Ok(());
        }
        crate::models::check_weights_path("ModelCheckpoint", &self.filepath)
    }

    fn on_epoch_end(&mut self, model: &mut Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        let path = format_filepath(&self.filepath, epoch + 1, logs)?;
        if !self.save_best_only {
            if self.verbose > 0 {
                println!("\nEpoch {}: saving model to {path}", epoch + 1);
            }
            return self.save(model, &path, epoch + 1);
        }
        let Some(&current) = logs.get(&self.monitor) else {
            eprintln!(
                "WARNING: Can save best model only with {} available, skipping.",
                self.monitor
            );
            return Ok(());
        };
        let maximise = self.mode.maximises(&self.monitor);
        if is_improvement(maximise, current, self.best, 0.0) {
            if self.verbose > 0 {
                let best = self.best.unwrap_or(if maximise {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                });
                println!(
                    "\nEpoch {}: {} improved from {best:.5} to {current:.5}, saving model to {path}",
                    epoch + 1,
                    self.monitor
                );
            }
            self.best = Some(current);
            self.save(model, &path, epoch + 1)?;
        } else if self.verbose > 0 {
            println!(
                "\nEpoch {}: {} did not improve from {:.5}",
                epoch + 1,
                self.monitor,
                self.best.unwrap_or(f64::NAN)
            );
        }
        Ok(())
    }
}

/// Formats a checkpoint path template as Python's `str.format(epoch=..., **logs)`: `{name}` or
/// `{name:spec}` with spec `[0][width][.precision][d|f|e|g|%]`; `{{`/`}}` are literal braces. A
/// name that is neither `epoch` nor in the logs is an error naming it.
pub fn format_filepath(template: &str, epoch: usize, logs: &Logs) -> Result<String> {
    let err = |msg: String| Error::invalid("ModelCheckpoint", msg);
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => field.push(ch),
                        None => return Err(err(format!("unclosed '{{' in filepath {template:?}"))),
                    }
                }
                let (name, spec) = match field.split_once(':') {
                    Some((n, s)) => (n, s),
                    None => (field.as_str(), ""),
                };
                let value = if name == "epoch" {
                    Value::Int(epoch as i64)
                } else if let Some(v) = logs.get(name) {
                    Value::Float(*v)
                } else {
                    return Err(err(format!(
                        "failed to format filepath {template:?}: key {name:?} is neither `epoch` nor in the logs (available: {})",
                        logs.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                };
                out.push_str(
                    &format_spec(value, spec)
                        .map_err(|m| err(format!("failed to format filepath {template:?}: {m}")))?,
                );
            }
            '}' => return Err(err(format!("single '}}' in filepath {template:?}"))),
            _ => out.push(c),
        }
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Value {
    Int(i64),
    Float(f64),
}

/// One Python format spec (`02d`, `.2f`, `.3e`, ``).
fn format_spec(v: Value, spec: &str) -> std::result::Result<String, String> {
    let mut s = spec;
    let zero = s.starts_with('0');
    if zero {
        s = &s[1..];
    }
    let ty = s
        .chars()
        .last()
        .filter(|c| c.is_ascii_alphabetic() || *c == '%');
    if let Some(t) = ty {
        s = &s[..s.len() - t.len_utf8()];
    }
    let (w, p) = match s.split_once('.') {
        Some((w, p)) => (w, Some(p)),
        None => (s, None),
    };
    let width: usize = if w.is_empty() {
        0
    } else {
        w.parse().map_err(|_| format!("bad format spec {spec:?}"))?
    };
    let prec: Option<usize> = match p {
        Some(p) => Some(p.parse().map_err(|_| format!("bad format spec {spec:?}"))?),
        None => None,
    };
    let body = match (ty, v) {
        (None, Value::Int(i)) | (Some('d'), Value::Int(i)) => i.to_string(),
        (Some('d'), Value::Float(_)) => {
            return Err(format!(
                "unknown format code 'd' for a float value ({spec:?})"
            ))
        }
        (Some('f') | Some('F'), v) => format!("{:.*}", prec.unwrap_or(6), as_f64(v)),
        (Some('e'), v) => python_exp(as_f64(v), prec.unwrap_or(6)),
        (Some('%'), v) => format!("{:.*}%", prec.unwrap_or(6), as_f64(v) * 100.0),
        (Some('g') | None, Value::Float(f)) => match prec {
            Some(p) => python_g(f, p),
            None => python_repr(f),
        },
        (Some('g'), Value::Int(i)) => python_g(i as f64, prec.unwrap_or(6)),
        (Some(t), _) => return Err(format!("unsupported format code {t:?} in {spec:?}")),
    };
    if body.len() >= width {
        return Ok(body);
    }
    let pad = width - body.len();
    Ok(if zero {
        match body.strip_prefix('-') {
            Some(rest) => format!("-{}{rest}", "0".repeat(pad)),
            None => format!("{}{body}", "0".repeat(pad)),
        }
    } else {
        format!("{}{body}", " ".repeat(pad))
    })
}

fn as_f64(v: Value) -> f64 {
    match v {
        Value::Int(i) => i as f64,
        Value::Float(f) => f,
    }
}

/// Python's `'{:.Ne}'`: mantissa with N decimals, exponent with a sign and at least 2 digits.
fn python_exp(x: f64, prec: usize) -> String {
    if !x.is_finite() {
        return python_repr(x);
    }
    let s = format!("{x:.prec$e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// Python's `'{:.Ng}'`.
fn python_g(x: f64, prec: usize) -> String {
    if !x.is_finite() {
        return python_repr(x);
    }
    let p = prec.max(1);
    if x == 0.0 {
        return "0".into();
    }
    let exp = format!("{x:.*e}", p - 1)
        .split_once('e')
        .and_then(|(_, e)| e.parse::<i32>().ok())
        .unwrap_or(0);
    let s = if exp < -4 || exp >= p as i32 {
        python_exp(x, p - 1)
    } else {
        format!("{x:.*}", (p as i32 - 1 - exp).max(0) as usize)
    };
    // %g strips trailing zeros.
    match s.split_once('e') {
        Some((m, e)) if m.contains('.') => {
            format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
        }
        None if s.contains('.') => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        _ => s,
    }
}

/// Python's `repr(float)`: the shortest round-trip digits, fixed notation for exponents in
/// `[-4, 16)`, else `1e-05` style.
pub(crate) fn python_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{x:e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    if (-4..16).contains(&e) {
        let f = format!("{x}");
        if f.contains('.') {
            f
        } else {
            format!("{f}.0")
        }
    } else {
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}
