//! Checkpoints that resume training exactly: a `.keras` file (model, weights, optimizer state
//! with its iteration count and moments) plus a member `ferroflow_state.json` holding the epochs
//! done, the session's seed stream and each layer's seed and call count (dropout masks). Keras
//! ignores the extra member, so a checkpoint is also an ordinary `.keras` file.
//!
//! Files are written atomically (temporary file in the same directory, fsync, rename): a crash
//! during a save leaves the previous checkpoint intact.
//!
//! [`register_savers`] plugs these formats into `keras::callbacks::ModelCheckpoint` (which cannot
//! depend on this crate): `.keras` paths get [`save_checkpoint`], `.weights.h5` paths get
//! [`save_weights`](crate::save_weights) (weights and optimizer state), other `.h5`/`.hdf5` paths
//! a legacy full model ([`save_legacy_h5`](crate::legacy_h5::save_legacy_h5)).
//!
//! ```
//! use ferroflow_keras::prelude::*;
//! use ferroflow_keras::layers::{Dense, Dropout};
//! use ferroflow_keras::callbacks::TrainState;
//! let mut model = Sequential::new();
//! model.add(Dense::new(2).input_shape(&[3]))?;
//! model.add(Dropout::new(0.5))?;
//! model.compile("adam", "mse", ())?;
//! let path = std::env::temp_dir().join(format!("ff_ckpt_doc_{}.keras", std::process::id()));
//! let state = TrainState { epoch: 3, rng_seed: 1337, rng_draws: 5 };
//! ferroflow_io::checkpoint::save_checkpoint(&model, &path, &state)?;
//! let (back, st) = ferroflow_io::checkpoint::load_checkpoint(&path)?;
//! assert_eq!(st.epoch, 3);
//! assert_eq!(back.count_params(), model.count_params());
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::io::{Cursor, Read, Write};
use std::path::Path;

use ferroflow_core::{Error, Result};
use ferroflow_keras::backend::set_seed_state;
use ferroflow_keras::callbacks::{register_saver, TrainState};
use ferroflow_keras::optimizers::LearningRate;
use ferroflow_keras::Model;
use serde_json::{json, Value};

use crate::keras_format::{from_keras_bytes, to_keras_bytes};

/// The zip member holding the training state.
pub const STATE_MEMBER: &str = "ferroflow_state.json";

fn state_json(model: &Model, st: &TrainState) -> Value {
    let layers: Vec<Value> = model
        .layers()
        .iter()
        .map(|l| {
            let l = l.lock();
            // u64 seeds as strings: JSON numbers lose bits above 2^53 in other readers.
            json!({"name": l.name(), "seed": l.base().seed.to_string(), "calls": l.base().calls})
        })
        .collect();
    // The exact f64 learning rate (model.weights.h5 holds it as float32, as Keras does), as bits.
    let lr = match model
        .compiled()
        .map(|c| &c.optimizer.config().learning_rate)
    {
        Some(LearningRate::Constant(v)) => json!(v.to_bits().to_string()),
        _ => Value::Null,
    };
    json!({"epoch": st.epoch, "rng": {"seed": st.rng_seed.to_string(), "draws": st.rng_draws},
           "learning_rate_bits": lr, "layers": layers})
}

/// Writes a resumable checkpoint (a `.keras` zip with `ferroflow_state.json`) atomically.
pub fn save_checkpoint(model: &Model, path: impl AsRef<Path>, state: &TrainState) -> Result<()> {
    let path = path.as_ref();
    let base = to_keras_bytes(model)?;
    // Re-open the zip to append the state member (members are stored, so this is cheap).
    let mut zip = zip::ZipWriter::new_append(Cursor::new(base))
        .map_err(|e| Error::invalid("save_checkpoint", format!("zip: {e}")))?;
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(STATE_MEMBER, opts)
        .and_then(|_| {
            zip.write_all(state_json(model, state).to_string().as_bytes())
                .map_err(Into::into)
        })
        .map_err(|e| Error::invalid("save_checkpoint", format!("zip: {e}")))?;
    let bytes = zip
        .finish()
        .map_err(|e| Error::invalid("save_checkpoint", format!("zip: {e}")))?
        .into_inner();
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::invalid(
                    "save_checkpoint",
                    format!("cannot create directory {}: {e}", dir.display()),
                )
            })?;
        }
    }
    crate::atomic::write_atomic("save_checkpoint", path, &bytes)
}

fn u64_of(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Loads a checkpoint: the compiled model with its weights and optimizer state, each layer's
/// seed and call count restored, and the session's seed stream put back where the checkpointed
/// `fit` started, so `model.fit(x, y).epochs(n).initial_epoch(state.epoch)` continues exactly
/// as the uninterrupted run would have. A plain `.keras` file (no state member) loads with
/// `epoch` 0 and the seed stream untouched.
pub fn load_checkpoint(path: impl AsRef<Path>) -> Result<(Model, TrainState)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| {
        Error::invalid(
            "load_checkpoint",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let state: Option<Value> = {
        let mut z = zip::ZipArchive::new(Cursor::new(&bytes[..])).map_err(|e| {
            Error::invalid(
                "load_checkpoint",
                format!("{}: not a valid zip: {e}", path.display()),
            )
        })?;
        let found = match z.by_name(STATE_MEMBER) {
            Ok(mut f) => {
                let mut s = String::new();
                f.read_to_string(&mut s).map_err(|e| {
                    Error::invalid(
                        "load_checkpoint",
                        format!("{}: {STATE_MEMBER}: {e}", path.display()),
                    )
                })?;
                Some(serde_json::from_str(&s).map_err(|e| {
                    Error::invalid(
                        "load_checkpoint",
                        format!("{}: {STATE_MEMBER}: {e}", path.display()),
                    )
                })?)
            }
            Err(_) => None,
        };
        found
    };
    let mut model = from_keras_bytes(path, bytes)?;
    let Some(st) = state else {
        let (rng_seed, rng_draws) = ferroflow_keras::backend::seed_state();
        return Ok((
            model,
            TrainState {
                epoch: 0,
                rng_seed,
                rng_draws,
            },
        ));
    };
    let bad = |what: &str| {
        Error::invalid(
            "load_checkpoint",
            format!("{}: {STATE_MEMBER}: bad or missing {what}", path.display()),
        )
    };
    let layers = st["layers"].as_array().ok_or_else(|| bad("layers"))?;
    let model_layers = model.layers();
    if layers.len() != model_layers.len() {
        return Err(bad("layers (count differs from the model)"));
    }
    for (l, s) in model_layers.iter().zip(layers) {
        let seed = u64_of(&s["seed"]).ok_or_else(|| bad("layer seed"))?;
        let calls = u64_of(&s["calls"]).ok_or_else(|| bad("layer calls"))?;
        let mut l = l.lock();
        let b = l.base_mut();
        b.seed = seed;
        b.calls = calls;
    }
    if let Some(bits) = u64_of(&st["learning_rate_bits"]) {
        if model.compiled().is_some() {
            model.optimizer()?.set_learning_rate(f64::from_bits(bits));
        }
    }
    let state = TrainState {
        epoch: st["epoch"].as_u64().ok_or_else(|| bad("epoch"))? as usize,
        rng_seed: u64_of(&st["rng"]["seed"]).ok_or_else(|| bad("rng.seed"))?,
        rng_draws: u64_of(&st["rng"]["draws"]).ok_or_else(|| bad("rng.draws"))?,
    };
    set_seed_state(state.rng_seed, state.rng_draws);
    Ok((model, state))
}

fn save_weights_h5(model: &Model, path: &Path, _st: &TrainState) -> Result<()> {
    crate::save_weights(model, path)
}

fn save_legacy_h5(model: &Model, path: &Path, _st: &TrainState) -> Result<()> {
    crate::legacy_h5::save_legacy_h5(model, path)
}

fn save_ckpt(model: &Model, path: &Path, st: &TrainState) -> Result<()> {
    save_checkpoint(model, path, st)
}

/// Registers `.keras` ([`save_checkpoint`]), `.weights.h5` and legacy `.h5`/`.hdf5` (a full
/// model, as Keras's `ModelCheckpoint("m.h5")`) savers with `keras::callbacks::ModelCheckpoint`.
/// Call once before `fit`.
pub fn register_savers() {
    register_saver(".keras", save_ckpt);
    register_saver(".weights.h5", save_weights_h5);
    register_saver(".h5", save_legacy_h5);
    register_saver(".hdf5", save_legacy_h5);
}
