//! CSV files: `tf.data.experimental.make_csv_dataset` and a whole-file [`load_csv`].
//!
//! Matches TensorFlow's `make_csv_dataset`:
//! - the first row is the header (`header(true)`), or names come from `column_names`;
//! - each selected column's type is inferred from the first `num_rows_for_inference` rows (100 by
//!   default; `None` reads them all) as the least permissive of int32 → int64 → float32 →
//!   float64 → string that fits every non-empty value (a float must parse and be `< inf`, so
//!   `nan` and `inf` make a column a string column, as in TF);
//! - empty fields and `na_value` become 0 (TF's inferred defaults);
//! - elements are batches: `(features, label)` where `features` is an [`Element::Dict`] of
//!   column name → rank-1 tensor of `batch_size` values, or just `features` without a
//!   `label_name`; by default the rows repeat forever (`num_epochs(None)`), reshuffled each epoch
//!   (`shuffle(true)`, a `shuffle_buffer_size` of 10,000) and batches are then always full
//!   (`drop_remainder` exactly when `num_epochs` is `None`, as TF does).
//!
//! Differences, on purpose: **ferroflow tensors have no string dtype, so a column inferred as
//! string is an error** naming the column and an offending value, unless it is left out with
//! `select_columns`. Rows of several files are read file after file and then shuffled together
//! (TF shuffles the file order and interleaves). Blank lines are skipped.
//! `compression_type("GZIP")` reads gzipped files. The shuffle is ferroflow's own (seeded
//! SplitMix64), so the order for a given seed differs from TF's. Files
//! are read and parsed when the dataset is built, so format errors surface at `build()`.
//!
//! Errors name the file and the line: a ragged row, an unterminated quote, a value that does
//! not fit the inferred type (a row after the inference window).
//!
//! ```
//! use ferroflow_data::io::make_csv_dataset;
//! let path = std::env::temp_dir().join(format!("ff-doc-{}.csv", std::process::id()));
//! std::fs::write(&path, "x,y,label\n1,0.5,0\n2,1.5,1\n3,2.5,0\n")?;
//! let ds = make_csv_dataset(&path, 2)
//!     .label_name("label")
//!     .num_epochs(Some(1))
//!     .shuffle(false)
//!     .build()?;
//! let first = ds.iter().next().unwrap()?;
//! let (features, label) = (first.tuple()?[0].dict()?, first.tuple()?[1].tensor()?);
//! assert_eq!(features["x"].tensor()?.to_vec::<i32>()?, vec![1, 2]);
//! assert_eq!(features["y"].tensor()?.to_vec::<f32>()?, vec![0.5, 1.5]);
//! assert_eq!(label.to_vec::<i32>()?, vec![0, 1]);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferroflow_core::{DType, Error, Result, Tensor};

use crate::dataset::Dataset;
use crate::element::Element;

use super::{buffer_shuffle, file_error, io_error, random_seed, read_file, SplitMix};

const OP: &str = "make_csv_dataset";

/// `make_csv_dataset(file, batch_size)`: a builder with TF's defaults; see the module docs.
pub fn make_csv_dataset(path: impl AsRef<Path>, batch_size: usize) -> CsvDatasetBuilder {
    CsvDatasetBuilder {
        files: vec![path.as_ref().to_path_buf()],
        batch_size,
        column_names: None,
        label_name: None,
        select_columns: None,
        field_delim: b',',
        use_quote_delim: true,
        na_value: String::new(),
        header: true,
        num_epochs: None,
        shuffle: true,
        shuffle_buffer_size: 10_000,
        shuffle_seed: None,
        num_rows_for_inference: Some(100),
        compression_type: String::new(),
    }
}

/// Reads a whole CSV file (with a header) into its columns, in file order, each a rank-1 tensor
/// of the type inferred from **all** rows. String columns are an error.
pub fn load_csv(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    make_csv_dataset(path, 1)
        .num_rows_for_inference(None)
        .load()
}

/// Options of [`make_csv_dataset`], named and defaulted as in TensorFlow.
#[derive(Clone, Debug)]
pub struct CsvDatasetBuilder {
    files: Vec<PathBuf>,
    batch_size: usize,
    column_names: Option<Vec<String>>,
    label_name: Option<String>,
    select_columns: Option<Vec<String>>,
    field_delim: u8,
    use_quote_delim: bool,
    na_value: String,
    header: bool,
    num_epochs: Option<usize>,
    shuffle: bool,
    shuffle_buffer_size: usize,
    shuffle_seed: Option<u64>,
    num_rows_for_inference: Option<usize>,
    compression_type: String,
}

/// A column parsed into its inferred type.
#[derive(Clone, Debug)]
enum Column {
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Column {
    fn gather(&self, idx: &[usize]) -> Result<Tensor> {
        let n = idx.len();
        match self {
            Column::I32(v) => Tensor::from_vec(idx.iter().map(|&i| v[i]).collect(), &[n]),
            Column::I64(v) => Tensor::from_vec(idx.iter().map(|&i| v[i]).collect(), &[n]),
            Column::F32(v) => Tensor::from_vec(idx.iter().map(|&i| v[i]).collect(), &[n]),
            Column::F64(v) => Tensor::from_vec(idx.iter().map(|&i| v[i]).collect(), &[n]),
        }
    }
    fn len(&self) -> usize {
        match self {
            Column::I32(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::F32(v) => v.len(),
            Column::F64(v) => v.len(),
        }
    }
}

impl CsvDatasetBuilder {
    /// Reads several files (rows concatenated in this order) instead of the one given.
    pub fn files<P: AsRef<Path>>(mut self, files: impl IntoIterator<Item = P>) -> Self {
        self.files = files
            .into_iter()
            .map(|p| p.as_ref().to_path_buf())
            .collect();
        self
    }
    /// `column_names`: the names of every column, in order (required with `header(false)`).
    pub fn column_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.column_names = Some(names.into_iter().map(Into::into).collect());
        self
    }
    /// `label_name`: the column returned as the label, apart from the features.
    pub fn label_name(mut self, name: &str) -> Self {
        self.label_name = Some(name.to_string());
        self
    }
    /// `select_columns`: the columns to keep (by name), the label included.
    pub fn select_columns<S: Into<String>>(mut self, cols: impl IntoIterator<Item = S>) -> Self {
        self.select_columns = Some(cols.into_iter().map(Into::into).collect());
        self
    }
    /// `field_delim` (default `,`; one ASCII character).
    pub fn field_delim(mut self, delim: char) -> Self {
        self.field_delim = if delim.is_ascii() { delim as u8 } else { 0 };
        self
    }
    /// `use_quote_delim` (default true): double quotes group a field, `""` is a literal quote.
    pub fn use_quote_delim(mut self, yes: bool) -> Self {
        self.use_quote_delim = yes;
        self
    }
    /// `na_value` (default `""`): a value read as missing (0).
    pub fn na_value(mut self, v: &str) -> Self {
        self.na_value = v.to_string();
        self
    }
    /// `header` (default true): the first row holds the column names.
    pub fn header(mut self, yes: bool) -> Self {
        self.header = yes;
        self
    }
    /// `num_epochs` (default `None`: repeat forever).
    pub fn num_epochs(mut self, n: Option<usize>) -> Self {
        self.num_epochs = n;
        self
    }
    /// `shuffle` (default true).
    pub fn shuffle(mut self, yes: bool) -> Self {
        self.shuffle = yes;
        self
    }
    /// `shuffle_buffer_size` (default 10,000).
    pub fn shuffle_buffer_size(mut self, n: usize) -> Self {
        self.shuffle_buffer_size = n;
        self
    }
    /// `shuffle_seed` (default `None`: a fresh random seed for each pass).
    pub fn shuffle_seed(mut self, seed: u64) -> Self {
        self.shuffle_seed = Some(seed);
        self
    }
    /// `num_rows_for_inference` (default `Some(100)`; `None` infers from every row).
    pub fn num_rows_for_inference(mut self, n: Option<usize>) -> Self {
        self.num_rows_for_inference = n;
        self
    }

    /// `compression_type`: `""` (none, the default) or `"GZIP"`.
    pub fn compression_type(mut self, c: &str) -> Self {
        self.compression_type = c.to_string();
        self
    }

    /// Parses the files into typed columns (selected columns only), in column order.
    fn columns(&self) -> Result<Vec<(String, Column)>> {
        if self.field_delim == 0 || self.field_delim == b'\n' || self.field_delim == b'"' {
            return Err(Error::invalid(
                OP,
                "field_delim must be one ASCII character other than a newline or a quote",
            ));
        }
        let gzip = match self.compression_type.as_str() {
            "" => false,
            "GZIP" => true,
            other => {
                return Err(Error::invalid(
                    OP,
                    format!("unknown compression_type '{other}' (valid: \"\", \"GZIP\")"),
                ))
            }
        };
        if self.files.is_empty() {
            return Err(Error::invalid(OP, "no file given"));
        }
        // (file, line, fields) of every data row.
        let mut names: Option<Vec<String>> = self.column_names.clone();
        let mut rows: Vec<(usize, usize, Vec<String>)> = Vec::new();
        for (fi, path) in self.files.iter().enumerate() {
            let mut bytes = read_file(OP, path)?;
            if gzip {
                let mut out = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                    &mut out,
                )
                .map_err(|e| io_error(OP, path, format!("not valid gzip: {e}")))?;
                bytes = out;
            }
            let text = String::from_utf8(bytes).map_err(|e| {
                let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                file_error(OP, path, format!("line {line}"), "invalid UTF-8")
            })?;
            let mut records = parse_records(&text, self.field_delim, self.use_quote_delim, path)?;
            if self.header {
                if records.is_empty() {
                    return Err(file_error(OP, path, "line 1", "no header row"));
                }
                let (_, head) = records.remove(0);
                if names.is_none() {
                    names = Some(head);
                }
            } else if names.is_none() {
                return Err(Error::invalid(
                    OP,
                    "expected `column_names` or `header`; neither is provided",
                ));
            }
            let ncol = names.as_ref().map_or(0, Vec::len);
            for (line, rec) in records {
                if rec.len() != ncol {
                    return Err(file_error(
                        OP,
                        path,
                        format!("line {line}"),
                        format!(
                            "ragged row: {} fields, expected {ncol} (one per column)",
                            rec.len()
                        ),
                    ));
                }
                rows.push((fi, line, rec));
            }
        }
        let names = names.unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(Error::invalid(
                OP,
                format!("duplicate column name '{dup}' in {names:?}"),
            ));
        }
        let selected: Vec<usize> = match &self.select_columns {
            None => (0..names.len()).collect(),
            Some(sel) => {
                let mut idx = Vec::new();
                for s in sel {
                    match names.iter().position(|n| n == s) {
                        Some(i) => idx.push(i),
                        None => {
                            return Err(Error::invalid(
                                OP,
                                format!("select_columns: no column '{s}' (columns: {names:?})"),
                            ))
                        }
                    }
                }
                idx.sort_unstable();
                idx.dedup();
                idx
            }
        };
        if let Some(label) = &self.label_name {
            if !selected.iter().any(|&i| &names[i] == label) {
                let cols: Vec<&String> = selected.iter().map(|&i| &names[i]).collect();
                return Err(Error::invalid(
                    OP,
                    format!("label_name '{label}' must be one of the columns {cols:?}"),
                ));
            }
        }
        let is_na = |s: &str| s.is_empty() || s == self.na_value;
        let window = self.num_rows_for_inference.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for &c in &selected {
            let mut ty: Option<DType> = None;
            for (fi, line, rec) in rows.iter().take(window) {
                let v = rec[c].trim();
                if is_na(v) {
                    continue;
                }
                match infer(v, ty) {
                    Some(t) => ty = Some(t),
                    None => {
                        return Err(file_error(
                            OP,
                            &self.files[*fi],
                            format!("line {line}"),
                            format!(
                                "column '{}' holds text ('{v}'); ferroflow tensors have no \
                                 string dtype, leave it out with select_columns",
                                names[c]
                            ),
                        ))
                    }
                }
            }
            let ty = ty.ok_or_else(|| {
                Error::invalid(
                    OP,
                    format!(
                        "column '{}' has no value to infer a type from (TF would make it a \
                         string column, which ferroflow cannot hold); leave it out with \
                         select_columns",
                        names[c]
                    ),
                )
            })?;
            let bad = |fi: usize, line: usize, v: &str| {
                file_error(
                    OP,
                    &self.files[fi],
                    format!("line {line}"),
                    format!(
                        "column '{}': '{v}' is not a valid {} (the type inferred from the first \
                         rows)",
                        names[c],
                        ty.name()
                    ),
                )
            };
            macro_rules! fill {
                ($t:ty, $variant:ident) => {{
                    let mut col = Vec::with_capacity(rows.len());
                    for (fi, line, rec) in &rows {
                        let v = rec[c].trim();
                        col.push(if is_na(v) {
                            <$t>::default()
                        } else {
                            v.parse::<$t>().map_err(|_| bad(*fi, *line, v))?
                        });
                    }
                    Column::$variant(col)
                }};
            }
            let col = match ty {
                DType::I32 => fill!(i32, I32),
                DType::I64 => fill!(i64, I64),
                DType::F32 => fill!(f32, F32),
                _ => fill!(f64, F64),
            };
            out.push((names[c].clone(), col));
        }
        Ok(out)
    }

    /// Parses every row and returns the selected columns (label included) as rank-1 tensors,
    /// in file order, without batching or shuffling.
    pub fn load(&self) -> Result<Vec<(String, Tensor)>> {
        let cols = self.columns()?;
        cols.iter()
            .map(|(n, c)| Ok((n.clone(), c.gather(&(0..c.len()).collect::<Vec<_>>())?)))
            .collect()
    }

    /// Reads and parses the files and returns the dataset of batches.
    pub fn build(self) -> Result<Dataset> {
        if self.batch_size == 0 {
            return Err(Error::invalid(OP, "batch_size must be positive"));
        }
        let cols = Arc::new(self.columns()?);
        let n = cols.first().map_or(0, |(_, c)| c.len());
        let label = self.label_name.clone();
        let (batch, epochs, shuffle, buffer, seed) = (
            self.batch_size,
            self.num_epochs,
            self.shuffle,
            self.shuffle_buffer_size.max(1),
            self.shuffle_seed,
        );
        let drop_remainder = epochs.is_none();
        let cardinality = epochs.map(|e| (n * e).div_ceil(batch));
        Ok(Dataset::from_generator(
            move || {
                let cols = cols.clone();
                let label = label.clone();
                let mut rng = SplitMix(seed.unwrap_or_else(random_seed));
                let mut epoch = 0usize;
                let mut order: Vec<usize> = Vec::new();
                let mut pos = 0usize;
                Box::new(std::iter::from_fn(move || {
                    if n == 0 {
                        return None;
                    }
                    let mut idx = Vec::with_capacity(batch);
                    while idx.len() < batch {
                        if pos == order.len() {
                            if epochs.is_some_and(|e| epoch >= e) {
                                break;
                            }
                            epoch += 1;
                            order = (0..n).collect();
                            if shuffle {
                                order = buffer_shuffle(&order, buffer, &mut rng);
                            }
                            pos = 0;
                        }
                        idx.push(order[pos]);
                        pos += 1;
                    }
                    if idx.is_empty() || (drop_remainder && idx.len() < batch) {
                        return None;
                    }
                    Some(make_batch(&cols, &idx, label.as_deref()))
                }))
            },
            cardinality,
        ))
    }
}

fn make_batch(cols: &[(String, Column)], idx: &[usize], label: Option<&str>) -> Result<Element> {
    let mut features = BTreeMap::new();
    let mut lab = None;
    for (name, col) in cols {
        let t = col.gather(idx)?;
        if Some(name.as_str()) == label {
            lab = Some(t);
        } else {
            features.insert(name.clone(), Element::Tensor(t));
        }
    }
    Ok(match lab {
        Some(l) => Element::Tuple(vec![Element::Dict(features), Element::Tensor(l)]),
        None => Element::Dict(features),
    })
}

/// TF's `_infer_type`: the least permissive type that fits `v` and what was seen before;
/// `None` for a string.
fn infer(v: &str, prev: Option<DType>) -> Option<DType> {
    let order = [DType::I32, DType::I64, DType::F32, DType::F64];
    let rank = |t: DType| order.iter().position(|&o| o == t).unwrap_or(0);
    let fits = [
        v.parse::<i32>().is_ok(),
        v.parse::<i64>().is_ok(),
        v.parse::<f32>().is_ok_and(|x| x < f32::INFINITY),
        v.parse::<f64>().is_ok_and(|x| x < f64::INFINITY),
    ];
    let start = prev.map_or(0, rank);
    (start..4).find(|&i| fits[i]).map(|i| order[i])
}

/// Splits CSV text into records of fields, each with the line it starts on (1-based). Blank
/// lines are skipped.
fn parse_records(
    text: &str,
    delim: u8,
    quotes: bool,
    path: &Path,
) -> Result<Vec<(usize, Vec<String>)>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < b.len() {
        // Skip blank lines.
        if b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) == Some(&b'\n')) {
            i += if b[i] == b'\r' { 2 } else { 1 };
            line += 1;
            continue;
        }
        let start_line = line;
        let mut fields = Vec::new();
        loop {
            let mut field = Vec::new();
            if quotes && b.get(i) == Some(&b'"') {
                let qline = line;
                i += 1;
                loop {
                    match b.get(i) {
                        None => {
                            return Err(file_error(
                                OP,
                                path,
                                format!("line {qline}"),
                                "unterminated quoted field",
                            ))
                        }
                        Some(b'"') if b.get(i + 1) == Some(&b'"') => {
                            field.push(b'"');
                            i += 2;
                        }
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            if c == b'\n' {
                                line += 1;
                            }
                            field.push(c);
                            i += 1;
                        }
                    }
                }
                if b.get(i) == Some(&b'\r') && b.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                if !matches!(b.get(i), None | Some(b'\n')) && b.get(i) != Some(&delim) {
                    return Err(file_error(
                        OP,
                        path,
                        format!("line {line}"),
                        "unexpected character after a closing quote",
                    ));
                }
            } else {
                while let Some(&c) = b.get(i) {
                    if c == delim || c == b'\n' {
                        break;
                    }
                    field.push(c);
                    i += 1;
                }
                if field.last() == Some(&b'\r') && b.get(i) != Some(&delim) {
                    field.pop();
                }
            }
            fields.push(String::from_utf8_lossy(&field).into_owned());
            match b.get(i) {
                Some(&c) if c == delim => i += 1,
                Some(b'\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        out.push((start_line, fields));
    }
    Ok(out)
}
