//! The IDX format of MNIST and Fashion-MNIST (optionally gzipped): a magic number, big-endian
//! dimensions, then the raw bytes.

use std::io::Read;
use std::path::Path;

use ferroflow_core::{Error, Result, Tensor};

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

/// Un-gzips bytes (an in-memory `.gz` file).
pub fn gunzip(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| Error::invalid("gunzip", format!("{what}: {e}")))?;
    Ok(out)
}
