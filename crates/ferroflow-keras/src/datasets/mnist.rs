//! MNIST in its own IDX format (optionally gzipped), as `keras.datasets.mnist` returns it:
//! `((x_train, y_train), (x_test, y_test))`, images `uint8 (n, 28, 28)`, labels `uint8 (n,)`.

use std::io::Read;
use std::path::Path;

use ferroflow_core::{Error, Result, Tensor};

/// Train and test splits: `((x_train, y_train), (x_test, y_test))`.
pub type Splits = ((Tensor, Tensor), (Tensor, Tensor));

/// Reads `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
/// `test-images-idx3-ubyte[.gz]` and `test-labels-idx1-ubyte[.gz]` from `dir`.
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
    let dir = dir.as_ref();
    let x_train = read_idx(&find(dir, "train-images-idx3-ubyte")?)?;
    let y_train = read_idx(&find(dir, "train-labels-idx1-ubyte")?)?;
    let x_test = read_idx(&find(dir, "test-images-idx3-ubyte")?)?;
    let y_test = read_idx(&find(dir, "test-labels-idx1-ubyte")?)?;
    for (x, y) in [(&x_train, &y_train), (&x_test, &y_test)] {
        if x.shape()[0] != y.shape()[0] {
            return Err(Error::shape(
                "mnist.load_data",
                "images and labels disagree on the number of samples",
                &[x.shape(), y.shape()],
            ));
        }
    }
    Ok(((x_train, y_train), (x_test, y_test)))
}

fn find(dir: &Path, stem: &str) -> Result<std::path::PathBuf> {
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

/// Reads one IDX file of unsigned bytes (gzipped if its name ends in `.gz`) as a `uint8` tensor.
pub fn read_idx(path: &Path) -> Result<Tensor> {
    let io = |e: std::io::Error| Error::invalid("read_idx", format!("{}: {e}", path.display()));
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    parse_idx(&bytes)
        .map_err(|msg| Error::invalid("read_idx", format!("{}: {msg}", path.display())))
}

/// Parses IDX bytes: magic `0x00 0x00 0x08 ndim`, `ndim` big-endian u32 sizes, then the data.
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<Tensor, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (bad magic)".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!("IDX type 0x{:02x} is not unsigned bytes", bytes[2]));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err("truncated IDX header".into());
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let n: usize = dims.iter().product();
    let data = &bytes[header..];
    if data.len() != n {
        return Err(format!(
            "IDX data has {} bytes, the header promises {n} (truncated or corrupt file)",
            data.len()
        ));
    }
    Tensor::from_vec(data.to_vec(), &dims).map_err(|e| e.to_string())
}
