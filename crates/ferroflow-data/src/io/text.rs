//! Text files, line by line (`tf.data.TextLineDataset`).
//!
//! ferroflow has no string dtype, so a line in a dataset is a **rank-1 `uint8` tensor of its
//! UTF-8 bytes** (shape `(len,)`, possibly `(0,)` for an empty line); [`line_to_string`] turns
//! it back into a `String`. For plain Rust use, [`read_lines`] returns the lines as `String`s.
//!
//! As in TensorFlow, lines are split at `\n`, a `\r` before the `\n` is dropped too, and a
//! final line without a newline is kept. Files are read through gzip when
//! [`TextLineDataset::compression_type`] is `"GZIP"` (TF's option; `""` means none).
//!
//! ```
//! use ferroflow_data::io::{line_to_string, TextLineDataset};
//! let path = std::env::temp_dir().join(format!("ff-doc-{}.txt", std::process::id()));
//! std::fs::write(&path, "hello\r\nworld\n")?;
//! let ds = TextLineDataset::new([&path]).build()?;
//! let lines: Vec<String> = ds
//!     .iter()
//!     .map(|e| e.and_then(|e| line_to_string(e.tensor()?)))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(lines, ["hello", "world"]);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use ferroflow_core::{DType, Error, Result, Tensor};

use crate::dataset::Dataset;
use crate::element::Element;

use super::{file_error, io_error};

/// Reads a text file's lines as `String`s (no line terminators). Invalid UTF-8 is an error
/// naming the file and line.
pub fn read_lines(path: impl AsRef<Path>) -> Result<Vec<String>> {
    let path = path.as_ref();
    let mut out = Vec::new();
    for (i, line) in LineReader::open(path, false)?.enumerate() {
        let line = line?;
        out.push(String::from_utf8(line).map_err(|e| {
            file_error(
                "read_lines",
                path,
                format!("line {}", i + 1),
                format!("invalid UTF-8: {e}"),
            )
        })?);
    }
    Ok(out)
}

/// The `String` held by a line tensor (rank-1 `uint8` UTF-8 bytes).
pub fn line_to_string(t: &Tensor) -> Result<String> {
    if t.dtype() != DType::U8 || t.rank() != 1 {
        return Err(Error::dtype(
            "line_to_string",
            format!(
                "expected a rank-1 uint8 tensor of UTF-8 bytes, got rank {}",
                t.rank()
            ),
            &[t.dtype()],
        ));
    }
    String::from_utf8(t.to_vec::<u8>()?)
        .map_err(|e| Error::invalid("line_to_string", format!("invalid UTF-8: {e}")))
}

/// Builder of a `TextLineDataset`: the lines of one or more files, file after file.
#[derive(Clone, Debug)]
pub struct TextLineDataset {
    paths: Vec<PathBuf>,
    gzip: bool,
    compression: String,
}

impl TextLineDataset {
    /// Lines of `filenames`, in order.
    pub fn new<P: AsRef<Path>>(filenames: impl IntoIterator<Item = P>) -> TextLineDataset {
        TextLineDataset {
            paths: filenames
                .into_iter()
                .map(|p| p.as_ref().to_path_buf())
                .collect(),
            gzip: false,
            compression: String::new(),
        }
    }

    /// `compression_type`: `""` (none, the default) or `"GZIP"`.
    pub fn compression_type(mut self, c: &str) -> Self {
        self.compression = c.to_string();
        self
    }

    /// The dataset; each element is a line as a rank-1 `uint8` tensor. Files are opened lazily
    /// on each pass, so a missing file is an error element naming it.
    pub fn build(mut self) -> Result<Dataset> {
        self.gzip = match self.compression.as_str() {
            "" => false,
            "GZIP" => true,
            other => {
                return Err(Error::invalid(
                    "TextLineDataset",
                    format!("unknown compression_type '{other}' (valid: \"\", \"GZIP\")"),
                ))
            }
        };
        let (paths, gzip) = (self.paths, self.gzip);
        Ok(Dataset::from_generator(
            move || {
                let paths = paths.clone();
                Box::new(paths.into_iter().flat_map(move |p| {
                    let it: Box<dyn Iterator<Item = Result<Vec<u8>>> + Send> =
                        match LineReader::open(&p, gzip) {
                            Ok(r) => Box::new(r),
                            Err(e) => Box::new(std::iter::once(Err(e))),
                        };
                    it.map(|line| {
                        line.and_then(|b| {
                            let n = b.len();
                            Tensor::from_vec(b, &[n]).map(Element::Tensor)
                        })
                    })
                }))
            },
            None,
        ))
    }
}

/// Lines as bytes, terminators stripped; stops after the first error.
struct LineReader {
    reader: Box<dyn BufRead + Send>,
    path: PathBuf,
    line: usize,
    done: bool,
}

impl LineReader {
    fn open(path: &Path, gzip: bool) -> Result<LineReader> {
        let f = std::fs::File::open(path).map_err(|e| io_error("TextLineDataset", path, e))?;
        let reader: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f)))
        } else {
            Box::new(BufReader::new(f))
        };
        Ok(LineReader {
            reader,
            path: path.to_path_buf(),
            line: 0,
            done: false,
        })
    }
}

impl Iterator for LineReader {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        if self.done {
            return None;
        }
        let mut buf = Vec::new();
        self.line += 1;
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                }
                Some(Ok(buf))
            }
            Err(e) => {
                self.done = true;
                Some(Err(file_error(
                    "TextLineDataset",
                    &self.path,
                    format!("line {}", self.line),
                    e,
                )))
            }
        }
    }
}
