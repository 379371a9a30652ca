//! Readers and writers for the files users bring: NumPy `.npy`/`.npz` ([`npy`]), CSV ([`csv`]),
//! text lines ([`text`]), TFRecord and `tf.train.Example` ([`tfrecord`]), and a folder of images
//! sorted into one sub-folder per class ([`image_folder`]).
//!
//! Every error names the file and the place in it (a byte offset, a line, a record, an entry of
//! an archive), e.g. `read_npy: data/x.npy: byte 0: bad magic ...`. Every writer is atomic: it
//! writes a temporary file beside the target and renames it over the target, so a reader never
//! sees a half-written file.

pub mod csv;
pub mod image_folder;
pub mod npy;
pub mod text;
pub mod tfrecord;

pub use csv::{load_csv, make_csv_dataset, CsvDatasetBuilder};
pub use image_folder::{image_dataset_from_directory, ImageDatasetBuilder, ImageFolderDataset};
pub use npy::{load_npz, npy_from_bytes, npy_to_bytes, read_npy, save_npz, write_npy};
pub use text::{line_to_string, read_lines, TextLineDataset};
pub use tfrecord::{
    crc32c, frame_record, masked_crc32c, read_tfrecord, write_tfrecord, Example, Feature,
    TfRecordDataset, TfRecordReader, TfRecordWriter,
};

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ferroflow_core::Error;

/// An error of `op` about `path` at `place` (`"byte 12"`, `"line 3"`, ...).
pub(crate) fn file_error(
    op: &str,
    path: &Path,
    place: impl std::fmt::Display,
    msg: impl std::fmt::Display,
) -> Error {
    Error::invalid(op, format!("{}: {place}: {msg}", path.display()))
}

/// An I/O error of `op` about `path` (no place: opening, reading or renaming failed).
pub(crate) fn io_error(op: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid(op, format!("{}: {e}", path.display()))
}

/// Reads a whole file, with an error naming it.
pub(crate) fn read_file(op: &str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| io_error(op, path, e))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file beside `path` that becomes `path` on [`AtomicFile::commit`] and is removed
/// when dropped uncommitted.
pub(crate) struct AtomicFile {
    op: String,
    target: PathBuf,
    temp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Creates the temporary file (`.<name>.<pid>.<n>.tmp` in the target's folder).
    pub(crate) fn create(op: &str, path: &Path) -> Result<AtomicFile, Error> {
        let name = path
            .file_name()
            .ok_or_else(|| io_error(op, path, "not a file name"))?
            .to_string_lossy()
            .into_owned();
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let file = File::create(&temp).map_err(|e| io_error(op, path, e))?;
        Ok(AtomicFile {
            op: op.to_string(),
            target: path.to_path_buf(),
            temp,
            file: Some(file),
        })
    }

    /// The open temporary file.
    pub(crate) fn file(&mut self) -> &mut File {
        match self.file.as_mut() {
            Some(f) => f,
            None => unreachable!("the file is open until commit"),
        }
    }

    /// Flushes, syncs and renames the temporary file over the target.
    pub(crate) fn commit(mut self) -> Result<(), Error> {
        if let Some(mut f) = self.file.take() {
            f.flush()
                .and_then(|_| f.sync_all())
                .map_err(|e| io_error(&self.op, &self.target, e))?;
        }
        std::fs::rename(&self.temp, &self.target).map_err(|e| io_error(&self.op, &self.target, e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `path` atomically (temporary file + rename).
pub(crate) fn write_atomic(op: &str, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut f = AtomicFile::create(op, path)?;
    f.file()
        .write_all(bytes)
        .map_err(|e| io_error(op, path, e))?;
    f.commit()
}

/// A small deterministic generator (SplitMix64) for the readers' shuffles.
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Fisher-Yates shuffle.
    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// A seed from the clock, for shuffles without a user seed (TF draws a random one too).
pub(crate) fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    SplitMix(t ^ TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)).next_u64()
}

/// `Dataset.shuffle(buffer_size)` over `items`: keep a buffer, emit a random buffered item and
/// refill its slot with the next input; then drain the buffer in random order.
pub(crate) fn buffer_shuffle(items: &[usize], buffer: usize, rng: &mut SplitMix) -> Vec<usize> {
    let buffer = buffer.max(1);
    let mut out = Vec::with_capacity(items.len());
    let mut buf: Vec<usize> = Vec::with_capacity(buffer.min(items.len()));
    for &x in items {
        if buf.len() < buffer {
            buf.push(x);
            continue;
        }
        let j = rng.below(buf.len());
        out.push(std::mem::replace(&mut buf[j], x));
    }
    while !buf.is_empty() {
        let j = rng.below(buf.len());
        out.push(buf.swap_remove(j));
    }
    out
}
