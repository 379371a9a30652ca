//! ferroflow's file formats.
//!
//! - [`hdf5`]: a small pure-Rust HDF5 reader/writer for exactly what Keras files use (no C
//!   library needed).
//! - [`keras_h5`]: Keras 3's `.weights.h5` (`model.save_weights` / `model.load_weights`), and
//!   reading legacy Keras 2 `.h5` weights.
//! - [`atomic`]: atomic file writes (temporary file, fsync, rename).
//!
//! Later: the `.keras` zip (config.json + metadata.json + model.weights.h5) and checkpoints.

#![warn(missing_docs)]

pub mod atomic;
pub mod hdf5;
pub mod keras_h5;

pub use keras_h5::{load_weights, save_weights};
