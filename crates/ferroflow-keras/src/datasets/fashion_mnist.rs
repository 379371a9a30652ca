//! `keras.datasets.fashion_mnist`: the same IDX format and shapes as MNIST (10 clothing
//! classes). It is not bundled: put the four standard files (`train-images-idx3-ubyte.gz`, ...)
//! in `fashion-mnist/` under the cache folder ([`cache_dir`](super::cache_dir)).

use std::path::Path;

use ferroflow_core::{Error, Result};

use super::mnist::{idx_folder, load_idx_dir, Splits};

/// `keras.datasets.fashion_mnist.load_data()` from the cache folder.
pub fn load_data() -> Result<Splits> {
    load_data_in(&super::cache_dir())
}

/// [`load_data`] with an explicit cache folder.
pub fn load_data_in(root: &Path) -> Result<Splits> {
    match idx_folder(root, "fashion-mnist") {
        Some(dir) => load_idx_dir(&dir, "fashion_mnist.load_data"),
        None => Err(Error::invalid(
            "fashion_mnist.load_data",
            format!(
                "Fashion-MNIST not found: put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
                 t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in {}",
                root.join("fashion-mnist").display()
            ),
        )),
    }
}
