//! Whole models: Keras 3's `.keras` zip (`model.save("m.keras")`,
//! `keras.models.load_model("m.keras")`) and legacy Keras `.h5` full models (load).
//!
//! A `.keras` file is a zip whose members are stored uncompressed, in Keras 3.15's order:
//! `metadata.json` (`keras_version`, `date_saved` as `%Y-%m-%d@%H:%M:%S`), `config.json` (the
//! model's [`serialize_model`](crate::keras_config::serialize_model) object, with its
//! `compile_config`) and `model.weights.h5` (the `.weights.h5` layout, optimizer state
//! included). Loading rebuilds the model from `config.json` through the layer registry
//! ([`layer_from_config`](crate::keras_config::layer_from_config)), recompiles it from
//! `compile_config` when present, then loads the weights — and the optimizer state, after
//! creating the optimizer's slot variables, as Keras's `optimizer.build` does.
//!
//! A legacy `.h5` (`model.save("m.h5")`) holds the same config as the root attribute
//! `model_config`, the compile arguments in `training_config` (`optimizer_config`), and the
//! weights under `model_weights` (matched by position, see [`crate::keras_h5`]) and the
//! optimizer state under `optimizer_weights` (restored as Keras does).

use std::io::{Cursor, Read, Write};
use std::path::Path;

use ferroflow_core::{ops, Error, Result, Tensor};
use ferroflow_keras::Model;
use serde_json::{json, Value};

use crate::hdf5::File;
use crate::keras_config::{compile_from, model_from_config, serialize_model};
use crate::keras_h5::{load_weights_from, write_weights};

/// The Keras version written in `metadata.json` (the format ferroflow matches).
pub const KERAS_VERSION: &str = "3.15.1";

fn zip_err(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid("load_model", format!("{}: {what}: {e}", path.display()))
}

/// `%Y-%m-%d@%H:%M:%S` (UTC) of the current time, as Keras's `date_saved`.
fn date_saved() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}@{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The bytes of a `.keras` file for `model`.
pub fn to_keras_bytes(model: &Model) -> Result<Vec<u8>> {
    let metadata = json!({"keras_version": KERAS_VERSION, "date_saved": date_saved()});
    let config = serialize_model(model);
    let mut h5 = File::create("model.weights.h5");
    write_weights(model, h5.root())?;
    let weights = h5.to_bytes()?;
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let err = |e: &dyn std::fmt::Display| Error::invalid("save_model", format!("zip: {e}"));
    for (name, bytes) in [
        ("metadata.json", metadata.to_string().into_bytes()),
        ("config.json", config.to_string().into_bytes()),
        ("model.weights.h5", weights),
    ] {
        zip.start_file(name, opts).map_err(|e| err(&e))?;
        zip.write_all(&bytes).map_err(|e| err(&e))?;
    }
    Ok(zip.finish().map_err(|e| err(&e))?.into_inner())
}

/// `model.save("m.keras")`: Keras 3's `.keras` zip, written atomically (temporary file, fsync,
/// rename). As Keras 3, a `.h5`/`.hdf5` name writes the legacy HDF5 full model instead
/// ([`save_legacy_h5`](crate::legacy_h5::save_legacy_h5)), and any other extension is an error.
///
/// ```
/// use ferroflow_keras::prelude::*;
/// use ferroflow_keras::layers::Dense;
/// let mut model = Sequential::new();
/// model.add(Dense::new(2).activation("relu").input_shape(&[3]))?;
/// let path = std::env::temp_dir().join(format!("ff_doc_{}.keras", std::process::id()));
/// ferroflow_io::save_model(&model, &path)?;
/// let loaded = ferroflow_io::load_model(&path)?;
/// assert_eq!(loaded.count_params(), model.count_params());
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn save_model(model: &Model, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let p = path.to_string_lossy();
    if p.ends_with(".h5") || p.ends_with(".hdf5") {
        return crate::legacy_h5::save_legacy_h5(model, path);
    }
    if !p.ends_with(".keras") {
        return Err(Error::invalid(
            "save_model",
            format!(
                "invalid filepath extension for saving: {}; please add either a .keras extension (the native Keras format) or a .h5 extension (the legacy HDF5 format)",
                path.display()
            ),
        ));
    }
    let bytes = to_keras_bytes(model)?;
    crate::atomic::write_atomic("save_model", path, &bytes)
}

/// `keras.models.load_model(path)`: a `.keras` zip or a legacy full-model `.h5`, compiled when
/// the file says how (and with the optimizer state restored, for `.keras`).
pub fn load_model(path: impl AsRef<Path>) -> Result<Model> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| {
        Error::invalid("load_model", format!("cannot read {}: {e}", path.display()))
    })?;
    if bytes.starts_with(b"PK") {
        from_keras_bytes(path, bytes)
    } else if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        load_legacy_h5(path, bytes)
    } else {
        Err(Error::invalid(
            "load_model",
            format!(
                "{} is neither a .keras zip nor an HDF5 file (first bytes {:?})",
                path.display(),
                &bytes[..bytes.len().min(8)]
            ),
        ))
    }
}

fn member(zip: &mut zip::ZipArchive<Cursor<Vec<u8>>>, path: &Path, name: &str) -> Result<Vec<u8>> {
    let mut f = zip
        .by_name(name)
        .map_err(|e| zip_err(path, &format!("member {name:?}"), e))?;
    // Keras's zip-bomb guard, in spirit: refuse members over 4 GiB.
    if f.size() > 4 << 30 {
        return Err(zip_err(path, name, "member too large"));
    }
    let mut out = Vec::with_capacity(f.size() as usize);
    f.read_to_end(&mut out)
        .map_err(|e| zip_err(path, &format!("reading {name:?}"), e))?;
    Ok(out)
}

fn parse_json(path: &Path, what: &str, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| zip_err(path, what, e))
}

/// [`load_model`] of a `.keras` file's bytes (`path` names it in errors).
pub fn from_keras_bytes(path: &Path, bytes: Vec<u8>) -> Result<Model> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| zip_err(path, "not a valid zip", e))?;
    let config = parse_json(path, "config.json", &member(&mut zip, path, "config.json")?)?;
    let mut model = model_from_config(&config).map_err(|e| {
        Error::invalid(
            "load_model",
            format!("{}: config.json: {e}", path.display()),
        )
    })?;
    if let Some(cc) = config.get("compile_config") {
        compile_from(&mut model, cc)?;
    }
    let h5 = member(&mut zip, path, "model.weights.h5")?;
    let f = File::from_bytes(&format!("{}/model.weights.h5", path.display()), h5)?;
    build_optimizer(&mut model)?;
    load_weights_from(&mut model, &f)?;
    Ok(model)
}

/// Creates the optimizer's slot variables without changing any weight (Keras's
/// `optimizer.build(trainable_variables)` before loading its state): one update with zero
/// gradients and a zero learning rate, then the iteration count is put back.
///
/// Every optimizer here leaves a variable unchanged for a zero gradient at learning rate 0,
/// and moments of zero gradients stay zero, so nothing but the slots' existence changes; the
/// loaded file then overwrites them.
pub fn build_optimizer(model: &mut Model) -> Result<()> {
    if model.compiled().is_none() {
        return Ok(());
    }
    let vars = model.trainable_weights();
    let opt = model.optimizer()?;
    if !opt.variables().is_empty() || vars.is_empty() {
        return Ok(());
    }
    let saved_cfg = opt.config().clone();
    let grads: Vec<(Tensor, ferroflow_core::Variable)> = vars
        .iter()
        .map(|v| (ops::zeros(&v.shape(), v.dtype()), v.clone()))
        .collect();
    let before: Vec<Tensor> = vars.iter().map(|v| v.value()).collect();
    opt.set_learning_rate(0.0);
    let cfg = opt.config_mut();
    cfg.weight_decay = None;
    let r = opt.apply_gradients(&grads);
    *opt.config_mut() = saved_cfg;
    r?;
    for (v, b) in vars.iter().zip(before) {
        v.assign(&b)?;
    }
    Ok(())
}

fn load_legacy_h5(path: &Path, bytes: Vec<u8>) -> Result<Model> {
    let f = File::from_bytes(&path.display().to_string(), bytes)?;
    let root = f.root()?;
    let text = root
        .attr("model_config")
        .map_err(|_| {
            Error::invalid(
                "load_model",
                format!(
                    "{}: no model found in config file (no `model_config` attribute: a weights-only file? use load_weights)",
                    path.display()
                ),
            )
        })?
        .as_string()?;
    let config = parse_json(path, "model_config", text.as_bytes())?;
    let mut model = model_from_config(&config).map_err(|e| {
        Error::invalid(
            "load_model",
            format!("{}: model_config: {e}", path.display()),
        )
    })?;
    if let Ok(a) = root.attr("training_config") {
        let tc = parse_json(path, "training_config", a.as_string()?.as_bytes())?;
        compile_from(&mut model, &tc)?;
        build_optimizer(&mut model)?;
    }
    load_weights_from(&mut model, &f)?;
    crate::keras_h5::load_legacy_optimizer_weights(&mut model, &f, &path.display().to_string())?;
    Ok(model)
}

/// `model.save(path)` and `keras.models.load_model` as methods on [`Model`].
pub trait ModelIoExt {
    /// `model.save("m.keras")` (see [`save_model`]).
    fn save(&self, path: impl AsRef<Path>) -> Result<()>;
}

impl ModelIoExt for Model {
    fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_model(self, path)
    }
}

/// The Keras `model.summary()` table of a saved model (`.keras` or legacy `.h5`): what a
/// `ferroflow summary m.keras` command prints. `columns` as `summary_string`'s line width.
pub fn summary_of_file(path: impl AsRef<Path>, columns: Option<usize>) -> Result<String> {
    Ok(load_model(path)?.summary_string(columns))
}
