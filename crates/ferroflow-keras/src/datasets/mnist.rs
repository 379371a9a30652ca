//! `keras.datasets.mnist`: `((x_train, y_train), (x_test, y_test))`, images `uint8 (n, 28, 28)`,
//! labels `uint8 (n,)`.
//!
//! [`load_data`] looks for the full MNIST (60,000 + 10,000 digits) in the cache folder
//! ([`cache_dir`](super::cache_dir)): Keras's `mnist.npz` (arrays `x_train`, `y_train`,
//! `x_test`, `y_test`), or the four standard IDX files (`.gz` or not) in `mnist/` or directly in
//! the folder. With the cargo feature `download`, a missing `mnist.npz` is downloaded from
//! Keras's address into the cache folder first. Without them it falls back to the 10,000 real digits
//! bundled with ferroflow (8,000 train / 2,000 test, `data/mnist-10k` in the repository, compiled
//! into the library), and says so once on stderr.

use std::path::{Path, PathBuf};
use std::sync::Once;

use ferroflow_core::{Error, Result, Tensor};

use super::idx::{gunzip, parse_idx, read_idx};

/// Train and test splits: `((x_train, y_train), (x_test, y_test))`.
pub type Splits = ((Tensor, Tensor), (Tensor, Tensor));

/// Reads `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
/// `test-images-idx3-ubyte[.gz]` and `test-labels-idx1-ubyte[.gz]` from `dir` (the original
/// distribution's `t10k-` names for the test files work too).
///
/// ```
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist-10k");
/// let ((x_train, y_train), (x_test, y_test)) = ferroflow_keras::datasets::mnist::load_data_from(dir)?;
/// assert_eq!(x_train.shape(), &[8000, 28, 28]);
/// assert_eq!(y_test.shape(), &[2000]);
/// # let _ = (y_train, x_test);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn load_data_from(dir: impl AsRef<Path>) -> Result<Splits> {
    load_idx_dir(dir.as_ref(), "mnist.load_data")
}

/// The four IDX files of an MNIST-format dataset in `dir`.
pub(crate) fn load_idx_dir(dir: &Path, what: &str) -> Result<Splits> {
    let x_train = read_idx(&find(dir, "train-images-idx3-ubyte")?)?;
    let y_train = read_idx(&find(dir, "train-labels-idx1-ubyte")?)?;
    let x_test = read_idx(
        &find(dir, "test-images-idx3-ubyte").or_else(|_| find(dir, "t10k-images-idx3-ubyte"))?,
    )?;
    let y_test = read_idx(
        &find(dir, "test-labels-idx1-ubyte").or_else(|_| find(dir, "t10k-labels-idx1-ubyte"))?,
    )?;
    for (x, y) in [(&x_train, &y_train), (&x_test, &y_test)] {
        if x.shape()[0] != y.shape()[0] {
            return Err(Error::shape(
                what,
                "images and labels disagree on the number of samples",
                &[x.shape(), y.shape()],
            ));
        }
    }
    Ok(((x_train, y_train), (x_test, y_test)))
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::invalid(
        "mnist.load_data",
        format!("{stem}[.gz] not found in {}", dir.display()),
    ))
}

/// The standard file names, without `.gz`.
const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "test-images-idx3-ubyte",
    "test-labels-idx1-ubyte",
];

/// The folder holding the four IDX files under `root`, if any (`root/mnist` or `root`).
pub(crate) fn idx_folder(root: &Path, sub: &str) -> Option<PathBuf> {
    let has = |d: &Path, f: &str| d.join(format!("{f}.gz")).is_file() || d.join(f).is_file();
    [root.join(sub), root.to_path_buf()].into_iter().find(|d| {
        FILES
            .iter()
            .all(|f| has(d, f) || has(d, &f.replace("test-", "t10k-")))
    })
}

/// The bundled digits (`data/mnist-10k`), compiled into the library.
const BUNDLED: [&[u8]; 4] = [
    include_bytes!("../../../../data/mnist-10k/train-images-idx3-ubyte.gz"),
    include_bytes!("../../../../data/mnist-10k/train-labels-idx1-ubyte.gz"),
    include_bytes!("../../../../data/mnist-10k/test-images-idx3-ubyte.gz"),
    include_bytes!("../../../../data/mnist-10k/test-labels-idx1-ubyte.gz"),
];

/// The 10,000 real MNIST digits bundled with ferroflow: 8,000 train and 2,000 test.
pub fn load_bundled() -> Result<Splits> {
    let parse = |i: usize| -> Result<Tensor> {
        let bytes = gunzip(BUNDLED[i], FILES[i])?;
        parse_idx(&bytes)
            .map_err(|m| Error::invalid("mnist.load_data", format!("{}: {m}", FILES[i])))
    };
    Ok(((parse(0)?, parse(1)?), (parse(2)?, parse(3)?)))
}

static FALLBACK_NOTICE: Once = Once::new();

/// `keras.datasets.mnist.load_data()`: the full MNIST from the cache folder if it is there,
/// otherwise the bundled 10,000 digits (with a one-time notice on stderr).
///
/// ```
/// let ((x_train, y_train), (x_test, y_test)) = ferroflow_keras::datasets::mnist::load_data()?;
/// assert_eq!(x_train.dtype(), ferroflow_core::DType::U8);
/// assert_eq!(&x_train.shape()[1..], &[28, 28]);
/// assert_eq!(x_train.shape()[0], y_train.shape()[0]);
/// # let _ = (x_test, y_test);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn load_data() -> Result<Splits> {
    load_data_in(&super::cache_dir())
}

/// [`load_data`] with an explicit cache folder (tests use a temporary one).
pub fn load_data_in(root: &Path) -> Result<Splits> {
    let npz = root.join("mnist.npz");
    if npz.is_file() {
        return load_npz(&npz);
    }
    if let Some(dir) = idx_folder(root, "mnist") {
        return load_idx_dir(&dir, "mnist.load_data");
    }
    #[cfg(feature = "download")]
    {
        // Keras's file; checked by parsing it (shapes and dtypes) before it is used.
        const URL: &str = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz";
        match super::download::fetch(URL, &npz, 64 << 20).and_then(|()| load_npz(&npz)) {
            Ok(splits) => return Ok(splits),
            Err(e) => eprintln!("ferroflow: downloading MNIST failed ({e})"),
        }
    }
    FALLBACK_NOTICE.call_once(|| {
        eprintln!(
            "ferroflow: the full MNIST was not found in {} (mnist.npz or IDX files); using the 10,000 digits \
             bundled with ferroflow (8,000 train / 2,000 test)",
            root.display()
        );
    });
    load_bundled()
}

/// Keras's `mnist.npz`: arrays `x_train`, `y_train`, `x_test`, `y_test`.
pub fn load_npz(path: &Path) -> Result<Splits> {
    let mut arrays = ferroflow_data::io::load_npz(path)?;
    let mut take = |k: &str| {
        arrays.remove(k).ok_or_else(|| {
            Error::invalid(
                "mnist.load_data",
                format!(
                    "{}: no array {k:?} (expected x_train, y_train, x_test, y_test)",
                    path.display()
                ),
            )
        })
    };
    let (x_train, y_train) = (take("x_train")?, take("y_train")?);
    let (x_test, y_test) = (take("x_test")?, take("y_test")?);
    for (x, y) in [(&x_train, &y_train), (&x_test, &y_test)] {
        if x.rank() == 0 || y.rank() == 0 || x.shape()[0] != y.shape()[0] {
            return Err(Error::shape(
                "mnist.load_data",
                format!(
                    "{}: images and labels disagree on the number of samples",
                    path.display()
                ),
                &[x.shape(), y.shape()],
            ));
        }
    }
    Ok(((x_train, y_train), (x_test, y_test)))
}
