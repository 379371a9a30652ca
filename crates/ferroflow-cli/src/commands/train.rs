//! `ferroflow train CONFIG.json`: build a model from Keras's architecture JSON, compile it, fit
//! it on the data the config names (with Keras's progress bar) and save it.
//!
//! # The config file
//!
//! A JSON object with two keys (relative paths are relative to the config file's folder):
//!
//! - `"model"`: the architecture in Keras 3's `config.json` schema — exactly the object a
//!   `.keras` zip holds (`{"module": "keras", "class_name": "Sequential", "config": {...}}`,
//!   what Keras's `keras.saving.serialize_keras_object(model)` or `model.to_json()` gives).
//!   Instead, `"model_path"` may name a `.keras` / legacy `.h5` model or a `config.json` file
//!   whose architecture (and weights, for a saved model) is the starting point.
//! - `"training"`: how to train.
//!   - `"data"` (required), one of
//!     - `{"source": "mnist", "limit": 1000, "normalize": true}`: `keras.datasets.mnist`'s
//!       training split (the full MNIST from the cache folder, else the 10,000 bundled digits);
//!       `limit` keeps the first samples, `normalize` (default true) divides by 255; images are
//!       reshaped to the model's input shape (`(28, 28)` or `(28, 28, 1)` or `(784,)`), labels
//!       are class ids (use `sparse_categorical_crossentropy`);
//!     - `{"source": "npy", "x": "x.npy", "y": "y.npy"}`: arrays (`"x"` / `"y"` may be lists,
//!       one file per model input / output);
//!     - `{"source": "csv", "path": "data.csv", "label": "target"}`: a CSV with a header row;
//!       the label column is `y`, every other (numeric) column a feature of `x` (float32).
//!   - `"optimizer"`: a Keras name (`"adam"`) or a Keras config object
//!     (`{"class_name": "Adam", "config": {"learning_rate": 0.001}}`); default `"rmsprop"`,
//!     Keras's `compile` default.
//!   - `"loss"` (required unless the model object has a `compile_config`): a Keras name or
//!     loss config, or a list (one per output); `"metrics"`: a list of Keras names.
//!   - `"epochs"` (default 1), `"batch_size"` (32), `"validation_split"` (0.0), `"shuffle"`
//!     (true), `"verbose"` (1: the progress bar), `"seed"` (Keras's
//!     `keras.utils.set_random_seed`, set before the model is built; default 1337).
//!   - `"callbacks"`: a list of `{"class_name": ..., "config": {...}}` with Keras's argument
//!     names: `ModelCheckpoint` (`filepath`, `monitor`, `save_best_only`, `save_weights_only`,
//!     `mode`), `EarlyStopping` (`monitor`, `min_delta`, `patience`, `mode`,
//!     `restore_best_weights`), `CSVLogger` (`filename`, `separator`, `append`), `TensorBoard`
//!     (`log_dir`, `histogram_freq`, `write_graph`), `ReduceLROnPlateau` (`monitor`, `factor`,
//!     `patience`, `mode`, `min_delta`, `cooldown`, `min_lr`), `TerminateOnNaN`.
//!   - `"output"` (required unless `--output` is given): where to save the trained model
//!     (`.keras`, or weights only as `.weights.h5` / `.safetensors` / `.npz`).
//!
//! Unknown keys are errors (a typo would otherwise be silently ignored). An example is
//! `crates/ferroflow-cli/examples/train_mnist_mlp.json` (MNIST, an MLP, all four callbacks).
//!
//! [`train`] is the whole "build, compile, fit, save" in one function; the fit itself is
//! [`fit`], the one place a distribution strategy hooks into.

use std::path::{Path, PathBuf};

use ferroflow_core::{ops, DType, Tensor};
use ferroflow_keras::callbacks::{
    CSVLogger, Callback, EarlyStopping, History, ModelCheckpoint, ReduceLROnPlateau, TensorBoard,
    TerminateOnNaN,
};
use ferroflow_keras::distribute::{ChiefOnly, Strategy as _};
use ferroflow_keras::Model;
use serde_json::{Map, Value};

use super::common::msg;

/// `ferroflow train`'s arguments.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  ferroflow train crates/ferroflow-cli/examples/train_mnist_mlp.json\n  ferroflow train config.json --output run2.keras --epochs 3\n\nThe config schema is documented in the crate docs of ferroflow-cli's commands::train:\n{\"model\": <Keras config.json object>, \"training\": {\"data\": {\"source\": \"npy\", \"x\": \"x.npy\", \"y\": \"y.npy\"},\n \"optimizer\": \"adam\", \"loss\": \"mse\", \"metrics\": [], \"epochs\": 1, \"batch_size\": 32,\n \"validation_split\": 0.0, \"callbacks\": [{\"class_name\": \"CSVLogger\", \"config\": {\"filename\": \"log.csv\"}}],\n \"output\": \"model.keras\"}}"
)]
pub struct Args {
    /// The training config (JSON; see the example).
    pub config: PathBuf,
    /// Overrides the config's `training.output`.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overrides the config's `training.epochs`.
    #[arg(short, long)]
    pub epochs: Option<usize>,
}

/// Where the training data comes from.
#[derive(Clone, Debug)]
pub enum DataSource {
    /// `keras.datasets.mnist` training split.
    Mnist {
        /// Keep the first `limit` samples.
        limit: Option<usize>,
        /// Divide pixels by 255.
        normalize: bool,
    },
    /// `.npy` arrays, one per model input / output.
    Npy {
        /// Input files.
        x: Vec<PathBuf>,
        /// Target files.
        y: Vec<PathBuf>,
    },
    /// A CSV file with a header and a label column.
    Csv {
        /// The file.
        path: PathBuf,
        /// The label column's name.
        label: String,
    },
}

/// A parsed training config.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// The architecture: a Keras config object.
    pub model: Option<Value>,
    /// Or a saved model / config.json file.
    pub model_path: Option<PathBuf>,
    /// The data.
    pub data: DataSource,
    /// Keras's `compile_config` (`optimizer`, `loss`, `metrics`), when the training section
    /// gives a loss.
    pub compile: Option<Value>,
    /// Epochs to train.
    pub epochs: usize,
    /// Samples per batch.
    pub batch_size: usize,
    /// Fraction of the samples (the last ones) held out for validation.
    pub validation_split: f64,
    /// Shuffle each epoch.
    pub shuffle: bool,
    /// Progress display (0 silent, 1 progress bar, 2 one line per epoch).
    pub verbose: u8,
    /// The session seed.
    pub seed: u64,
    /// The callbacks' `{"class_name", "config"}` objects.
    pub callbacks: Vec<Value>,
    /// Where to save the trained model.
    pub output: PathBuf,
}

fn bad(file: &Path, m: impl std::fmt::Display) -> String {
    format!("{}: {m}", file.display())
}

fn check_keys(
    file: &Path,
    what: &str,
    o: &Map<String, Value>,
    known: &[&str],
) -> Result<(), String> {
    for k in o.keys() {
        if !known.contains(&k.as_str()) {
            return Err(bad(
                file,
                format!("{what}: unknown key {k:?} (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn paths(file: &Path, base: &Path, v: &Value, what: &str) -> Result<Vec<PathBuf>, String> {
    let one = |v: &Value| {
        v.as_str()
            .map(|s| base.join(s))
            .ok_or_else(|| bad(file, format!("{what}: expected a file name")))
    };
    match v {
        Value::Array(a) if !a.is_empty() => a.iter().map(one).collect(),
        _ => Ok(vec![one(v)?]),
    }
}

impl TrainConfig {
    /// Reads and checks a config file (paths become relative to its folder).
    pub fn from_file(file: &Path) -> Result<TrainConfig, String> {
        if !file.exists() {
            return Err(format!("{}: no such file", file.display()));
        }
        let text = std::fs::read_to_string(file).map_err(|e| bad(file, e))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| bad(file, format!("not valid JSON: {e}")))?;
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_value(file, &base, &v)
    }

    /// Parses a config object; `file` names it in errors, `base` is the folder relative paths
    /// start from.
    pub fn from_value(file: &Path, base: &Path, v: &Value) -> Result<TrainConfig, String> {
        let o = v
            .as_object()
            .ok_or_else(|| bad(file, "expected a JSON object"))?;
        check_keys(file, "top level", o, &["model", "model_path", "training"])?;
        let model = o.get("model").cloned();
        let model_path = match o.get("model_path") {
            Some(p) => Some(
                base.join(
                    p.as_str()
                        .ok_or_else(|| bad(file, "model_path: expected a file name"))?,
                ),
            ),
            None => None,
        };
        if model.is_none() == model_path.is_none() {
            return Err(bad(
                file,
                "give the architecture as either \"model\" (a Keras config.json object) or \"model_path\"",
            ));
        }
        let t = o
            .get("training")
            .and_then(Value::as_object)
            .ok_or_else(|| bad(file, "missing the \"training\" object"))?;
        check_keys(
            file,
            "training",
            t,
            &[
                "data",
                "optimizer",
                "loss",
                "metrics",
                "epochs",
                "batch_size",
                "validation_split",
                "shuffle",
                "verbose",
                "seed",
                "callbacks",
                "output",
            ],
        )?;
        let d = t
            .get("data")
            .and_then(Value::as_object)
            .ok_or_else(|| bad(file, "training: missing the \"data\" object"))?;
        let source = d.get("source").and_then(Value::as_str).unwrap_or("");
        let data = match source {
            "mnist" => {
                check_keys(file, "training.data", d, &["source", "limit", "normalize"])?;
                DataSource::Mnist {
                    limit: d.get("limit").and_then(Value::as_u64).map(|n| n as usize),
                    normalize: d.get("normalize").and_then(Value::as_bool).unwrap_or(true),
                }
            }
            "npy" => {
                check_keys(file, "training.data", d, &["source", "x", "y"])?;
                let x = d
                    .get("x")
                    .ok_or_else(|| bad(file, "training.data: missing \"x\""))?;
                let y = d
                    .get("y")
                    .ok_or_else(|| bad(file, "training.data: missing \"y\""))?;
                DataSource::Npy {
                    x: paths(file, base, x, "training.data.x")?,
                    y: paths(file, base, y, "training.data.y")?,
                }
            }
            "csv" => {
                check_keys(file, "training.data", d, &["source", "path", "label"])?;
                DataSource::Csv {
                    path: base.join(
                        d.get("path")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(file, "training.data: missing \"path\""))?,
                    ),
                    label: d
                        .get("label")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            bad(file, "training.data: missing \"label\" (the label column)")
                        })?
                        .to_string(),
                }
            }
            other => {
                return Err(bad(
                    file,
                    format!(
                        "training.data.source: {other:?}; expected \"mnist\", \"npy\" or \"csv\""
                    ),
                ))
            }
        };
        let compile = t.get("loss").map(|loss| {
            serde_json::json!({
                "optimizer": t.get("optimizer").cloned().unwrap_or(Value::from("rmsprop")),
                "loss": loss,
                "metrics": t.get("metrics").cloned().unwrap_or(Value::Array(vec![])),
            })
        });
        let num = |k: &str, d: u64| -> Result<u64, String> {
            match t.get(k) {
                None => Ok(d),
                Some(v) => v.as_u64().ok_or_else(|| {
                    bad(
                        file,
                        format!("training.{k}: expected a non-negative integer"),
                    )
                }),
            }
        };
        let validation_split = match t.get("validation_split") {
            None => 0.0,
            Some(v) => v
                .as_f64()
                .filter(|f| (0.0..1.0).contains(f))
                .ok_or_else(|| {
                    bad(
                        file,
                        "training.validation_split: expected a number in [0, 1)",
                    )
                })?,
        };
        let callbacks = match t.get("callbacks") {
            None => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(bad(file, "training.callbacks: expected a list")),
        };
        let output = t
            .get("output")
            .and_then(Value::as_str)
            .map(|s| base.join(s))
            .unwrap_or_default();
        let batch_size = num("batch_size", 32)? as usize;
        if batch_size == 0 {
            return Err(bad(file, "training.batch_size must be at least 1"));
        }
        Ok(TrainConfig {
            model,
            model_path,
            data,
            compile,
            epochs: num("epochs", 1)? as usize,
            batch_size,
            validation_split,
            shuffle: t.get("shuffle").and_then(Value::as_bool).unwrap_or(true),
            verbose: num("verbose", 1)?.min(2) as u8,
            seed: num("seed", 1337)?,
            callbacks,
            output,
        })
    }
}

/// Builds the model the config describes and compiles it (the training section's loss, or
/// the model object's own `compile_config`).
pub fn build_model(cfg: &TrainConfig) -> Result<Model, String> {
    let mut model = match (&cfg.model, &cfg.model_path) {
        (Some(v), _) => {
            ferroflow_io::keras_config::model_from_config(v).map_err(|e| format!("model: {e}"))?
        }
        (None, Some(p)) => super::convert::architecture(p)?,
        (None, None) => return Err("the config gives no model".into()),
    };
    let cc = cfg.compile.clone().or_else(|| {
        cfg.model
            .as_ref()
            .and_then(|m| m.get("compile_config").cloned())
    });
    match cc {
        Some(cc) => ferroflow_io::keras_config::compile_from(&mut model, &cc)
            .map_err(|e| format!("training (optimizer/loss/metrics): {e}"))?,
        None if model.compiled().is_some() => {}
        None => {
            return Err("training: no \"loss\" given (and the model has no compile_config)".into())
        }
    }
    Ok(model)
}

/// The callbacks the config lists.
pub fn build_callbacks(cfg: &TrainConfig, base: &Path) -> Result<Vec<Box<dyn Callback>>, String> {
    let mut out: Vec<Box<dyn Callback>> = Vec::new();
    for (i, cb) in cfg.callbacks.iter().enumerate() {
        let class = cb.get("class_name").and_then(Value::as_str).unwrap_or("");
        let empty = Map::new();
        let c = cb
            .get("config")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let what = format!("training.callbacks[{i}] ({class})");
        let s = |k: &str| c.get(k).and_then(Value::as_str);
        let f = |k: &str| c.get(k).and_then(Value::as_f64);
        let u = |k: &str| c.get(k).and_then(Value::as_u64).map(|v| v as usize);
        let b = |k: &str| c.get(k).and_then(Value::as_bool);
        let keys = |known: &[&str]| -> Result<(), String> {
            for k in c.keys() {
                if !known.contains(&k.as_str()) {
                    return Err(format!(
                        "{what}: unknown argument {k:?} (known: {})",
                        known.join(", ")
                    ));
                }
            }
            Ok(())
        };
        let path = |k: &str| -> Result<String, String> {
            s(k).map(|p| base.join(p).to_string_lossy().into_owned())
                .ok_or_else(|| format!("{what}: missing {k:?}"))
        };
        match class {
            "ModelCheckpoint" => {
                keys(&["filepath", "monitor", "save_best_only", "save_weights_only", "mode"])?;
                let mut m = ModelCheckpoint::new(&path("filepath")?);
                if let Some(v) = s("monitor") { m = m.monitor(v); }
                if let Some(v) = b("save_best_only") { m = m.save_best_only(v); }
                if let Some(v) = b("save_weights_only") { m = m.save_weights_only(v); }
                if let Some(v) = s("mode") { m = m.mode(v); }
                // Files are written by the chief only under a distribution strategy.
                out.push(Box::new(ChiefOnly::new(m)));
            }
            "EarlyStopping" => {
                keys(&["monitor", "min_delta", "patience", "mode", "restore_best_weights"])?;
                let mut m = EarlyStopping::new();
                if let Some(v) = s("monitor") { m = m.monitor(v); }
                if let Some(v) = f("min_delta") { m = m.min_delta(v); }
                if let Some(v) = u("patience") { m = m.patience(v); }
                if let Some(v) = s("mode") { m = m.mode(v); }
                if let Some(v) = b("restore_best_weights") { m = m.restore_best_weights(v); }
                out.push(Box::new(m));
            }
            "CSVLogger" => {
                keys(&["filename", "separator", "append"])?;
                let mut m = CSVLogger::new(&path("filename")?);
                if let Some(v) = s("separator") { m = m.separator(v); }
                if let Some(v) = b("append") { m = m.append(v); }
                // Files are written by the chief only under a distribution strategy.
                out.push(Box::new(ChiefOnly::new(m)));
            }
            "TensorBoard" => {
                keys(&["log_dir", "histogram_freq", "write_graph"])?;
                let dir = s("log_dir").unwrap_or("logs");
                let mut m = TensorBoard::new(base.join(dir));
                if let Some(v) = u("histogram_freq") { m = m.histogram_freq(v); }
                if let Some(v) = b("write_graph") { m = m.write_graph(v); }
                // Files are written by the chief only under a distribution strategy.
                out.push(Box::new(ChiefOnly::new(m)));
            }
            "ReduceLROnPlateau" => {
                keys(&["monitor", "factor", "patience", "mode", "min_delta", "cooldown", "min_lr"])?;
                let mut m = ReduceLROnPlateau::new();
                if let Some(v) = s("monitor") { m = m.monitor(v); }
                if let Some(v) = f("factor") { m = m.factor(v); }
                if let Some(v) = u("patience") { m = m.patience(v); }
                if let Some(v) = s("mode") { m = m.mode(v); }
                if let Some(v) = f("min_delta") { m = m.min_delta(v); }
                if let Some(v) = u("cooldown") { m = m.cooldown(v); }
                if let Some(v) = f("min_lr") { m = m.min_lr(v); }
                out.push(Box::new(m));
            }
            "TerminateOnNaN" => {
                keys(&[])?;
                out.push(Box::new(TerminateOnNaN::new()));
            }
            other => {
                return Err(format!(
                    "training.callbacks[{i}]: unknown callback {other:?} (known: ModelCheckpoint, EarlyStopping, CSVLogger, TensorBoard, ReduceLROnPlateau, TerminateOnNaN)"
                ))
            }
        }
    }
    Ok(out)
}

/// Reshapes `x` (batch first) to the model's first input shape when the element counts agree
/// (MNIST's `(n, 28, 28)` for a `(28, 28, 1)` or `(784,)` input).
fn fit_to_input(model: &Model, x: Tensor) -> Result<Tensor, String> {
    let Some(want) = model.input_shapes().and_then(|s| s.first().cloned()) else {
        return Ok(x);
    };
    let dims: Option<Vec<usize>> = want.iter().skip(1).copied().collect();
    let Some(dims) = dims else { return Ok(x) };
    let per: usize = x.shape().iter().skip(1).product();
    if dims.iter().product::<usize>() != per || &x.shape()[1..] == dims.as_slice() {
        return Ok(x);
    }
    let mut shape = vec![x.shape()[0] as isize];
    shape.extend(dims.iter().map(|&d| d as isize));
    ops::reshape(&x, &shape).map_err(msg)
}

/// The training arrays the config names: inputs and targets.
pub fn load_data(cfg: &TrainConfig, model: &Model) -> Result<(Vec<Tensor>, Vec<Tensor>), String> {
    match &cfg.data {
        DataSource::Mnist { limit, normalize } => {
            let ((x, y), _) = ferroflow_keras::datasets::mnist::load_data().map_err(msg)?;
            let n = limit.unwrap_or(x.shape()[0]).min(x.shape()[0]);
            let x = ops::slice(&x, &[0, 0, 0], &[n as isize, -1, -1]).map_err(msg)?;
            let y = ops::slice(&y, &[0], &[n as isize]).map_err(msg)?;
            let mut x = ops::cast(&x, DType::F32).map_err(msg)?;
            if *normalize {
                x = ops::mul_scalar(&x, 1.0 / 255.0).map_err(msg)?;
            }
            let y = ops::cast(&y, DType::I32).map_err(msg)?;
            Ok((vec![fit_to_input(model, x)?], vec![y]))
        }
        DataSource::Npy { x, y } => {
            let xs = x
                .iter()
                .map(|p| super::common::read_npy(p))
                .collect::<Result<Vec<_>, _>>()?;
            let ys = y
                .iter()
                .map(|p| super::common::read_npy(p))
                .collect::<Result<Vec<_>, _>>()?;
            let files: Vec<&Path> = x.iter().map(PathBuf::as_path).collect();
            super::common::check_inputs(model, &xs, &files)?;
            Ok((xs, ys))
        }
        DataSource::Csv { path, label } => {
            if !path.exists() {
                return Err(format!("{}: no such file", path.display()));
            }
            let cols = ferroflow_data::io::load_csv(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let mut y = None;
            let mut feats = Vec::new();
            for (name, t) in cols {
                if !t.dtype().is_float() && !matches!(t.dtype(), DType::I32 | DType::I64) {
                    return Err(format!(
                        "{}: column {name:?} is not numeric ({:?}); only numeric columns can be features or labels",
                        path.display(),
                        t.dtype()
                    ));
                }
                if &name == label {
                    y = Some(t);
                } else {
                    feats.push(ops::cast(&t, DType::F32).map_err(msg)?);
                }
            }
            let y = y.ok_or_else(|| format!("{}: no column named {label:?}", path.display()))?;
            if feats.is_empty() {
                return Err(format!(
                    "{}: no feature columns besides {label:?}",
                    path.display()
                ));
            }
            let refs: Vec<&Tensor> = feats.iter().collect();
            let x = ops::stack(&refs, 1).map_err(msg)?;
            Ok((vec![fit_to_input(model, x)?], vec![y]))
        }
    }
}

/// `model.fit(x, y, ...)` with the config's settings: the one place a distribution strategy
/// hooks into training.
pub fn fit(
    model: &mut Model,
    x: Vec<Tensor>,
    y: Vec<Tensor>,
    cfg: &TrainConfig,
    callbacks: Vec<Box<dyn Callback>>,
    strategy: Option<&Strategy>,
) -> Result<History, String> {
    let mut fit = model
        .fit(x, y)
        .epochs(cfg.epochs)
        .batch_size(cfg.batch_size)
        .validation_split(cfg.validation_split)
        .shuffle(cfg.shuffle)
        .verbose(cfg.verbose)
        .callbacks(callbacks);
    if let Some(s) = strategy {
        fit = fit.strategy(s);
    }
    fit.run().map_err(msg)
}

/// The distribution strategy `ferroflow train` uses: with the `mpi` feature and when launched by
/// `mpirun`/`mpiexec`/`srun`, data parallelism over MPI (`MpiStrategy::from_env`); else none.
#[cfg(feature = "mpi")]
pub type Strategy = ferroflow_mpi::MpiStrategy;
/// The distribution strategy `ferroflow train` uses: none in a build without the `mpi` feature.
#[cfg(not(feature = "mpi"))]
pub type Strategy = ferroflow_keras::distribute::SingleProcess;

#[cfg(feature = "mpi")]
fn strategy_from_env() -> Result<Option<Strategy>, String> {
    ferroflow_mpi::MpiStrategy::from_env().map_err(msg)
}

#[cfg(not(feature = "mpi"))]
fn strategy_from_env() -> Result<Option<Strategy>, String> {
    Ok(None)
}

/// Build, compile, fit, save: the whole of `ferroflow train`. `base` is the folder the
/// callbacks' relative paths start from. Returns the model, its history, and whether this
/// process is the chief (false on the other ranks under `mpirun`, which write nothing).
pub fn train(cfg: &TrainConfig, base: &Path) -> Result<(Model, History, bool), String> {
    if cfg.output.as_os_str().is_empty() {
        return Err("training: no \"output\" given (or pass --output)".into());
    }
    super::convert::format_of(&cfg.output)?;
    ferroflow_io::register_savers();
    ferroflow_keras::backend::set_random_seed(cfg.seed);
    let mut model = build_model(cfg)?;
    let (x, y) = load_data(cfg, &model)?;
    let callbacks = build_callbacks(cfg, base)?;
    let strategy = strategy_from_env()?;
    let history = fit(&mut model, x, y, cfg, callbacks, strategy.as_ref())?;
    // Under a strategy only the chief writes the model (every replica holds the same weights).
    if !strategy.as_ref().is_none_or(|s| s.is_chief()) {
        return Ok((model, history, false));
    }
    if cfg.output.to_string_lossy().ends_with(".keras") {
        ferroflow_io::save_model(&model, &cfg.output).map_err(msg)?;
    } else {
        ferroflow_io::save_weights_any(&model, &cfg.output).map_err(msg)?;
    }
    Ok((model, history, true))
}

/// Reads the config, trains, saves, prints the final logs.
pub fn run(args: Args) -> Result<(), String> {
    let mut cfg = TrainConfig::from_file(&args.config)?;
    if let Some(o) = args.output {
        cfg.output = o;
    }
    if let Some(e) = args.epochs {
        cfg.epochs = e;
    }
    let base = args
        .config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let (_model, history, chief) = train(&cfg, &base)?;
    if !chief {
        return Ok(());
    }
    let mut last: Vec<String> = Vec::new();
    for (k, v) in history.history.iter() {
        if let Some(x) = v.last() {
            last.push(format!("{k}: {x:.4}"));
        }
    }
    println!(
        "trained {} epoch(s); {}",
        history.epoch.len(),
        last.join(" - ")
    );
    println!("wrote {}", cfg.output.display());
    Ok(())
}
