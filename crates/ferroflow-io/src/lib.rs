//! ferroflow's file formats.
//!
//! - [`hdf5`]: a small pure-Rust HDF5 reader/writer for exactly what Keras files use (no C
//!   library needed).
//! - [`keras_h5`]: Keras 3's `.weights.h5` (`model.save_weights` / `model.load_weights`), and
//!   reading legacy Keras 2 `.h5` weights.
//! - [`named_weights`]: weights as `.npz`, and `save_weights`/`load_weights` by extension.
//! - [`checkpoint`]: resumable training checkpoints, and the savers `ModelCheckpoint` uses.
//! - [`atomic`]: atomic file writes (temporary file, fsync, rename).
//!
//! - [`keras_format`]: whole models, Keras 3's `.keras` zip (save and load) and legacy `.h5`
//!   full models (load); [`legacy_h5`]: writing legacy `.h5` full models; [`keras_config`]:
//!   `config.json` and the layer registry.

#![warn(missing_docs)]

pub mod atomic;
pub mod checkpoint;
pub mod hdf5;
pub mod keras_config;
pub mod keras_format;
pub mod keras_h5;
pub mod legacy_h5;
pub mod named_weights;

pub use checkpoint::{load_checkpoint, register_savers, save_checkpoint};
pub use keras_format::{load_model, save_model, ModelIoExt};
pub use keras_h5::{load_weights, save_weights};
pub use named_weights::{load_weights_any, save_weights_any};
