//! `keras.datasets`: ready-made datasets, read from a cache folder, as Keras reads
//! `~/.keras/datasets`.

#[cfg(feature = "download")]
mod download;
pub mod fashion_mnist;
pub mod idx;
pub mod mnist;

use std::path::PathBuf;

/// The cache folder datasets are read from: `$FERROFLOW_HOME/datasets`, or
/// `~/.ferroflow/datasets` (Keras: `~/.keras/datasets`).
pub fn cache_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("FERROFLOW_HOME") {
        return PathBuf::from(home).join("datasets");
    }
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".ferroflow").join("datasets")
}
