//! `keras.callbacks.TensorBoard`.

use std::path::PathBuf;
use std::time::Instant;

use ferroflow_core::{ops, profiler, Error, Result, Tensor};
use serde_json::json;

use super::{Callback, Logs};
use crate::models::{Model, Network};
use crate::summary::{SummaryValue, SummaryWriter, TensorProto};

/// How often `TensorBoard` writes training figures: Keras's `update_freq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateFreq {
    /// `"epoch"`: `epoch_*` scalars only (the default).
    Epoch,
    /// `"batch"` (= 1) or an integer N: also `batch_*` scalars every N training batches.
    Batches(usize),
    /// A string that is neither `"epoch"` nor `"batch"` (reported by `fit`).
    Invalid(String),
}

impl From<&str> for UpdateFreq {
    fn from(s: &str) -> UpdateFreq {
        match s {
            "epoch" => UpdateFreq::Epoch,
            "batch" => UpdateFreq::Batches(1),
            other => UpdateFreq::Invalid(other.to_string()),
        }
    }
}

impl From<usize> for UpdateFreq {
    fn from(n: usize) -> UpdateFreq {
        UpdateFreq::Batches(n)
    }
}

/// So that `update_freq(100)` works with an untyped literal; a number below 1 is reported by
/// `fit`.
impl From<i32> for UpdateFreq {
    fn from(n: i32) -> UpdateFreq {
        match usize::try_from(n) {
            Ok(n) => UpdateFreq::Batches(n),
            Err(_) => UpdateFreq::Invalid(n.to_string()),
        }
    }
}

/// `keras.callbacks.TensorBoard(log_dir='logs', histogram_freq=0, write_graph=True,
/// write_images=False, write_steps_per_second=False, update_freq='epoch')`: writes TensorBoard
/// event files as Keras 3.15 does.
///
/// Layout and tags (Keras 3's):
/// - `<log_dir>/train/`: `epoch_<name>` for every training log (`epoch_loss`,
///   `epoch_accuracy`, ...) and `epoch_learning_rate` (the optimizer's), step = epoch (from 0);
///   with `update_freq` `"batch"` or N, `batch_<name>` every N training batches, step = the
///   global batch count (from 1, across epochs); with `histogram_freq` N, every N epochs a
///   30-bucket histogram per weight tagged `<weight path>/histogram` (`sequential/dense/kernel/
///   histogram` in a `Sequential`, `dense/kernel/histogram` in a functional model — Keras's
///   `weight.path`), plus with `write_images` the weight as an image `<weight path>/image`
///   (Keras's reshaping: bias → 1×n, a Dense kernel → its wider orientation, a Conv1D kernel →
///   one image per input channel; other ranks are skipped); with `write_steps_per_second`,
///   `epoch_steps_per_second` and `batch_steps_per_second`.
/// - `<log_dir>/validation/`: `epoch_<name>` of the `val_` logs without the prefix (step = epoch)
///   and `evaluation_<name>_vs_iterations` after each validation pass (step = the optimizer's
///   iterations).
/// - `write_graph` (default true): as Keras 3, no op graph (`GraphDef`) is written — only the
///   `keras` tag in `train/` (plugin `graph_keras_model`, step 0): the model as Keras JSON, from
///   which TensorBoard's Graphs tab draws the layer graph. ferroflow writes it for `Sequential`
///   models (class names, layer names and their configs); functional models get none (their
///   layer connections are not serialised yet).
///
/// ferroflow's addition: [`TensorBoard::write_profile`] turns the op profiler
/// ([`ferroflow_core::profiler`]) on at the start of training and writes its table as a text
/// summary `ferroflow_profile` in `train/` at each epoch's end (Keras's `profile_batch` runs
/// TensorFlow's profiler, which ferroflow does not have).
///
/// Files are flushed at each epoch's end and closed at the end of training. Writing to a
/// directory that cannot be created makes `fit` fail with an error naming it.
///
/// ```no_run
/// use ferroflow_keras::callbacks::TensorBoard;
/// let tb = TensorBoard::new("logs/fit").histogram_freq(1).update_freq("batch");
/// # let _ = tb;
/// ```
pub struct TensorBoard {
    log_dir: PathBuf,
    histogram_freq: usize,
    write_graph: bool,
    write_images: bool,
    write_steps_per_second: bool,
    update_freq: UpdateFreq,
    write_profile: bool,
    train: Option<SummaryWriter>,
    val: Option<SummaryWriter>,
    global_train_batch: u64,
    batch_start: Option<Instant>,
    epoch_start: Option<Instant>,
    epoch_start_iterations: u64,
}

impl TensorBoard {
    /// A callback writing under `log_dir` (Keras's default is `"logs"`).
    pub fn new(log_dir: impl Into<PathBuf>) -> TensorBoard {
        TensorBoard {
            log_dir: log_dir.into(),
            histogram_freq: 0,
            write_graph: true,
            write_images: false,
            write_steps_per_second: false,
            update_freq: UpdateFreq::Epoch,
            write_profile: false,
            train: None,
            val: None,
            global_train_batch: 0,
            batch_start: None,
            epoch_start: None,
            epoch_start_iterations: 0,
        }
    }
    /// Weight histograms every `n` epochs (0, the default: none).
    pub fn histogram_freq(mut self, n: usize) -> Self {
        self.histogram_freq = n;
        self
    }
    /// Write the model's Keras JSON (`keras` tag) for TensorBoard's Graphs tab (default true).
    pub fn write_graph(mut self, b: bool) -> Self {
        self.write_graph = b;
        self
    }
    /// Also write weights as images with the histograms (default false).
    pub fn write_images(mut self, b: bool) -> Self {
        self.write_images = b;
        self
    }
    /// Log training steps per second (default false).
    pub fn write_steps_per_second(mut self, b: bool) -> Self {
        self.write_steps_per_second = b;
        self
    }
    /// `"epoch"` (default), `"batch"`, or every N batches (`update_freq(100)`).
    pub fn update_freq(mut self, f: impl Into<UpdateFreq>) -> Self {
        self.update_freq = f.into();
        self
    }
    /// Profile ops during training and write the profiler's table as the text summary
    /// `ferroflow_profile` at each epoch's end (default false).
    pub fn write_profile(mut self, b: bool) -> Self {
        self.write_profile = b;
        self
    }

    fn train_writer(&mut self) -> Result<&mut SummaryWriter> {
        if self.train.is_none() {
            self.train = Some(SummaryWriter::create(self.log_dir.join("train"))?);
        }
        self.train
            .as_mut()
            .ok_or_else(|| Error::invalid("TensorBoard", "no train writer"))
    }

    fn val_writer(&mut self) -> Result<&mut SummaryWriter> {
        if self.val.is_none() {
            self.val = Some(SummaryWriter::create(self.log_dir.join("validation"))?);
        }
        self.val
            .as_mut()
            .ok_or_else(|| Error::invalid("TensorBoard", "no validation writer"))
    }

    fn records_batches(&self) -> Option<u64> {
        match self.update_freq {
            UpdateFreq::Batches(n) if n > 0 => Some(n as u64),
            _ => None,
        }
    }

    fn log_weights(&mut self, model: &Model, epoch: i64) -> Result<()> {
        let prefix = match &model.net {
            Network::Sequential(_) => format!("{}/", model.name()),
            Network::Functional(_) => String::new(),
        };
        let write_images = self.write_images;
        let w = self.train_writer()?;
        for layer in model.layers() {
            let weights = layer.lock().weights();
            for v in weights {
                let name = format!("{prefix}{}", v.name().replace(':', "_"));
                let value = v.value();
                w.histogram(&format!("{name}/histogram"), &value, epoch)?;
                if write_images {
                    if let Some(img) = weight_image(&value)? {
                        w.image(&format!("{name}/image"), &img, epoch)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Keras's `_log_weight_as_image`: the weight squeezed, then a bias `[n]` → `[1, n, 1, 1]`, a
/// 2-D kernel → `[1, rows, cols, 1]` with rows ≤ cols (transposed if needed), a 3-D kernel
/// `[k, in, out]` → transposed to `[out, k, in]` → `[out, k, in, 1]` (one image per output
/// channel). `None` for the shapes Keras skips (scalars, rank 4 and up).
fn weight_image(w: &Tensor) -> Result<Option<Tensor>> {
    let dims: Vec<isize> = w
        .shape()
        .iter()
        .filter(|&&d| d != 1)
        .map(|&d| d as isize)
        .collect();
    let sq = ops::reshape(w, &dims)?;
    let img = match dims.len() {
        1 => ops::reshape(&sq, &[1, dims[0], 1, 1])?,
        2 => {
            let (t, r, c) = if dims[0] > dims[1] {
                (ops::transpose(&sq, &[1, 0])?, dims[1], dims[0])
            } else {
                (sq, dims[0], dims[1])
            };
            ops::reshape(&t, &[1, r, c, 1])?
        }
        3 => {
            let t = ops::transpose(&sq, &[2, 0, 1])?;
            ops::reshape(&t, &[dims[2], dims[0], dims[1], 1])?
        }
        _ => return Ok(None),
    };
    Ok(Some(img))
}

/// The Keras JSON of a `Sequential` model, as much of `model.to_json()` as TensorBoard's graph
/// plugin reads: class names, layer names and configs.
fn sequential_json(model: &Model) -> Option<String> {
    if !matches!(model.net, Network::Sequential(_)) {
        return None;
    }
    let layers: Vec<_> = model
        .layers()
        .iter()
        .map(|l| {
            let guard = l.lock();
            let mut config = guard.get_config();
            if let Some(obj) = config.as_object_mut() {
                obj.insert("name".into(), json!(guard.name()));
                obj.entry("dtype").or_insert(json!("float32"));
            }
            json!({ "module": "keras.layers", "class_name": guard.class_name(), "config": config })
        })
        .collect();
    let doc = json!({
        "module": "keras",
        "class_name": "Sequential",
        "config": { "name": model.name(), "trainable": true, "layers": layers },
    });
    serde_json::to_string(&doc).ok()
}

impl Callback for TensorBoard {
    fn on_train_begin(&mut self, model: &mut Model, _logs: &Logs) -> Result<()> {
        match &self.update_freq {
            UpdateFreq::Invalid(s) => {
                return Err(Error::invalid(
                    "TensorBoard",
                    format!("update_freq must be \"epoch\", \"batch\" or an integer, got {s:?}"),
                ))
            }
            UpdateFreq::Batches(0) => {
                return Err(Error::invalid(
                    "TensorBoard",
                    "update_freq must be a positive number of batches, got 0",
                ))
            }
            _ => {}
        }
        self.global_train_batch = 0;
        if self.write_profile {
            profiler::enable();
        }
        let json = if self.write_graph {
            sequential_json(model)
        } else {
            None
        };
        let w = self.train_writer()?;
        if let Some(json) = json {
            let v = SummaryValue::tensor(
                "keras",
                "graph_keras_model",
                b"1",
                TensorProto::strings(vec![json.into_bytes()], true),
            );
            w.write_summary(vec![v], 0)?;
        }
        w.flush()
    }

    fn on_train_batch_begin(
        &mut self,
        _model: &mut Model,
        _batch: usize,
        _logs: &Logs,
    ) -> Result<()> {
        self.global_train_batch += 1;
        if self.write_steps_per_second {
            self.batch_start = Some(Instant::now());
        }
        Ok(())
    }

    fn on_train_batch_end(&mut self, _model: &mut Model, _batch: usize, logs: &Logs) -> Result<()> {
        let Some(n) = self.records_batches() else {
            return Ok(());
        };
        let step = self.global_train_batch;
        if !step.is_multiple_of(n) {
            return Ok(());
        }
        let sps = self
            .batch_start
            .filter(|_| self.write_steps_per_second)
            .map(|t| 1.0 / t.elapsed().as_secs_f64().max(1e-9));
        let w = self.train_writer()?;
        if let Some(sps) = sps {
            w.scalar("batch_steps_per_second", sps, step as i64)?;
        }
        for (name, v) in logs {
            w.scalar(&format!("batch_{name}"), *v, step as i64)?;
        }
        Ok(())
    }

    fn on_test_end(&mut self, model: &mut Model, logs: &Logs) -> Result<()> {
        let Ok(opt) = model.optimizer() else {
            return Ok(());
        };
        let step = opt.iterations() as i64;
        let w = self.val_writer()?;
        for (name, v) in logs {
            let name = name.strip_prefix("val_").unwrap_or(name);
            w.scalar(&format!("evaluation_{name}_vs_iterations"), *v, step)?;
        }
        Ok(())
    }

    fn on_epoch_begin(&mut self, model: &mut Model, _epoch: usize, _logs: &Logs) -> Result<()> {
        if self.write_steps_per_second {
            self.epoch_start = Some(Instant::now());
            self.epoch_start_iterations = model.optimizer().map_or(0, |o| o.iterations());
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &mut Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        let step = epoch as i64;
        let mut train: Logs = logs
            .iter()
            .filter(|(k, _)| !k.starts_with("val_"))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let val: Logs = logs
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("val_").map(|k| (k.to_string(), *v)))
            .collect();
        if let Ok(opt) = model.optimizer() {
            train.insert("learning_rate".into(), opt.learning_rate());
            if let (true, Some(t)) = (self.write_steps_per_second, self.epoch_start) {
                let steps = opt.iterations().saturating_sub(self.epoch_start_iterations);
                train.insert(
                    "steps_per_second".into(),
                    steps as f64 / t.elapsed().as_secs_f64().max(1e-9),
                );
            }
        }
        {
            let w = self.train_writer()?;
            for (name, v) in &train {
                w.scalar(&format!("epoch_{name}"), *v, step)?;
            }
        }
        if !val.is_empty() {
            let w = self.val_writer()?;
            for (name, v) in &val {
                w.scalar(&format!("epoch_{name}"), *v, step)?;
            }
            w.flush()?;
        }
        if self.histogram_freq > 0 && epoch.is_multiple_of(self.histogram_freq) {
            self.log_weights(model, step)?;
        }
        if self.write_profile {
            let table = profile_markdown();
            self.train_writer()?
                .text("ferroflow_profile", &table, step)?;
        }
        self.train_writer()?.flush()
    }

    fn on_train_end(&mut self, _model: &mut Model, _logs: &Logs) -> Result<()> {
        let train = self.train.take();
        let val = self.val.take();
        for w in [train, val].into_iter().flatten() {
            w.close()?;
        }
        Ok(())
    }
}

/// The profiler's table as Markdown (TensorBoard's text plugin renders Markdown tables).
fn profile_markdown() -> String {
    let rows = profiler::snapshot();
    let total: f64 = rows.iter().map(|r| r.total.as_secs_f64()).sum();
    let mut s =
        String::from("| op | calls | total ms | mean µs | % |\n|---|---:|---:|---:|---:|\n");
    for r in &rows {
        let t = r.total.as_secs_f64();
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {:.2} |\n",
            r.op,
            r.calls,
            t * 1e3,
            r.mean().as_secs_f64() * 1e6,
            if total > 0.0 { 100.0 * t / total } else { 0.0 }
        ));
    }
    s
}
