//! TFRecord files (`tf.io.TFRecordWriter`, `tf.data.TFRecordDataset`) and `tf.train.Example`.
//!
//! A TFRecord file is a sequence of records, each framed as
//! `u64 length (little-endian) | u32 masked CRC-32C of the length | data | u32 masked CRC-32C of
//! the data`, where `mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`. Both CRCs are
//! checked on reading; a mismatch is an error naming the file and the record's byte offset.
//! Compressed (GZIP/ZLIB) TFRecord files are not supported.
//!
//! [`Example`] encodes and decodes the `tf.train.Example` protocol buffer (a map of feature name
//! → `BytesList` | `FloatList` | `Int64List`), packed or not, skipping unknown fields, with a
//! small hand-written protobuf codec for exactly these messages.
//!
//! ```
//! use ferroflow_data::io::{read_tfrecord, write_tfrecord, Example, Feature};
//! let path = std::env::temp_dir().join(format!("ff-doc-{}.tfrecord", std::process::id()));
//! let mut ex = Example::default();
//! ex.features.insert("x".into(), Feature::Float(vec![0.5, 1.5]));
//! ex.features.insert("label".into(), Feature::Int64(vec![3]));
//! write_tfrecord(&path, [ex.encode()])?;
//! let records = read_tfrecord(&path)?;
//! let back = Example::decode(&records[0])?;
//! assert_eq!(back, ex);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use ferroflow_core::{Error, Result, Tensor};

use crate::dataset::Dataset;
use crate::element::Element;

use super::{file_error, io_error, AtomicFile};

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32C (Castagnoli), as used by TFRecord: `crc32c(b"123456789") == 0xE3069283`.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC32C_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// TFRecord's masked CRC-32C: `((crc >> 15) | (crc << 17)) + 0xa282ead8` (wrapping).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc32c(data);
    c.rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// One record in TFRecord framing: `u64 length | masked CRC of the length | data | masked CRC of
/// the data`, for writers that append to a stream themselves (TensorBoard event files).
pub fn frame_record(record: &[u8]) -> Vec<u8> {
    let len = (record.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(record.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(record);
    out.extend_from_slice(&masked_crc32c(record).to_le_bytes());
    out
}

/// Writes TFRecord files (`tf.io.TFRecordWriter`). The file appears at its path, complete, on
/// [`TfRecordWriter::close`]; a writer dropped without closing leaves nothing behind.
pub struct TfRecordWriter {
    file: AtomicFile,
    path: PathBuf,
}

impl TfRecordWriter {
    /// Starts a new TFRecord file at `path` (written to a temporary file until closed).
    pub fn create(path: impl AsRef<Path>) -> Result<TfRecordWriter> {
        let path = path.as_ref().to_path_buf();
        Ok(TfRecordWriter {
            file: AtomicFile::create("TfRecordWriter", &path)?,
            path,
        })
    }

    /// Appends one record.
    pub fn write(&mut self, record: &[u8]) -> Result<()> {
        self.file
            .file()
            .write_all(&frame_record(record))
            .map_err(|e| io_error("TfRecordWriter", &self.path, e))
    }

    /// Finishes the file and moves it into place.
    pub fn close(self) -> Result<()> {
        self.file.commit()
    }
}

/// Writes every record to a new TFRecord file at `path`, atomically.
pub fn write_tfrecord<R: AsRef<[u8]>>(
    path: impl AsRef<Path>,
    records: impl IntoIterator<Item = R>,
) -> Result<()> {
    let mut w = TfRecordWriter::create(path)?;
    for r in records {
        w.write(r.as_ref())?;
    }
    w.close()
}

/// Reads TFRecord files record by record, checking both CRCs of each; an iterator of
/// `Result<Vec<u8>>` that stops after the first error.
pub struct TfRecordReader {
    reader: BufReader<std::fs::File>,
    path: PathBuf,
    offset: u64,
    done: bool,
}

impl TfRecordReader {
    /// Opens a TFRecord file.
    pub fn open(path: impl AsRef<Path>) -> Result<TfRecordReader> {
        let path = path.as_ref().to_path_buf();
        let f = std::fs::File::open(&path).map_err(|e| io_error("TfRecordReader", &path, e))?;
        Ok(TfRecordReader {
            reader: BufReader::new(f),
            path,
            offset: 0,
            done: false,
        })
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` at a clean end of file when `eof_ok`.
    fn fill(&mut self, buf: &mut [u8], eof_ok: bool, what: &str, start: u64) -> Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.reader.read(&mut buf[got..]) {
                Ok(0) => {
                    if got == 0 && eof_ok {
                        return Ok(false);
                    }
                    return Err(self.err(
                        start,
                        format!(
                            "truncated record: {what} needs {} bytes, {got} present",
                            buf.len()
                        ),
                    ));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err(start, e)),
            }
        }
        Ok(true)
    }

    fn err(&self, start: u64, msg: impl std::fmt::Display) -> Error {
        file_error(
            "TfRecordReader",
            &self.path,
            format!("record at byte {start}"),
            msg,
        )
    }

    fn next_record(&mut self) -> Result<Option<Vec<u8>>> {
        let start = self.offset;
        let mut head = [0u8; 12];
        if !self.fill(&mut head, true, "the length header", start)? {
            return Ok(None);
        }
        let len_bytes: [u8; 8] = head[..8].try_into().unwrap_or_default();
        let len_crc = u32::from_le_bytes(head[8..12].try_into().unwrap_or_default());
        if masked_crc32c(&len_bytes) != len_crc {
            return Err(self.err(start, "corrupted record: bad CRC of the length"));
        }
        let len = u64::from_le_bytes(len_bytes);
        // Read in bounded chunks so that a corrupt-but-CRC-valid huge length cannot allocate
        // everything at once.
        let mut data = Vec::new();
        let mut left = len;
        while left > 0 {
            let step = left.min(1 << 24) as usize;
            let at = data.len();
            data.resize(at + step, 0);
            self.fill(
                &mut data[at..],
                false,
                &format!("data of {len} bytes"),
                start,
            )?;
            left -= step as u64;
        }
        let mut crc = [0u8; 4];
        self.fill(&mut crc, false, "the data CRC", start)?;
        if masked_crc32c(&data) != u32::from_le_bytes(crc) {
            return Err(self.err(start, "corrupted record: bad CRC of the data"));
        }
        self.offset += 16 + len;
        Ok(Some(data))
    }
}

impl Iterator for TfRecordReader {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads every record of a TFRecord file.
pub fn read_tfrecord(path: impl AsRef<Path>) -> Result<Vec<Vec<u8>>> {
    TfRecordReader::open(path)?.collect()
}

/// `tf.data.TFRecordDataset`: the records of one or more files, in order, each as a rank-1
/// `uint8` tensor of the record's bytes (ferroflow has no string dtype; decode with
/// [`Example::decode`] on `tensor.to_vec::<u8>()`).
pub struct TfRecordDataset;

impl TfRecordDataset {
    /// A dataset over the records of `paths`, read lazily on each pass.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Dataset {
        let paths: Vec<PathBuf> = paths
            .into_iter()
            .map(|p| p.as_ref().to_path_buf())
            .collect();
        Dataset::from_generator(
            move || {
                let paths = paths.clone();
                Box::new(paths.into_iter().flat_map(|p| {
                    let it: Box<dyn Iterator<Item = Result<Vec<u8>>> + Send> =
                        match TfRecordReader::open(&p) {
                            Ok(r) => Box::new(r),
                            Err(e) => Box::new(std::iter::once(Err(e))),
                        };
                    it.map(|r| {
                        r.and_then(|b| {
                            let n = b.len();
                            Tensor::from_vec(b, &[n]).map(Element::Tensor)
                        })
                    })
                }))
            },
            None,
        )
    }

    /// The records of `paths` parsed as `tf.train.Example`s: each element is the
    /// [`Example::to_element`] dict of rank-1 tensors (float32, int64, or the uint8 bytes of a
    /// single-value `bytes_list`), like mapping `tf.io.parse_single_example` over a
    /// `TFRecordDataset` with every feature as a `VarLenFeature`.
    pub fn examples<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Dataset {
        let records = TfRecordDataset::new(paths);
        Dataset::from_generator(
            move || {
                Box::new(records.iter().map(|r| {
                    let r = r?;
                    let bytes = r.tensor()?.to_vec::<u8>()?;
                    Example::decode(&bytes)?.to_element()
                }))
            },
            None,
        )
    }
}

/// One `tf.train.Feature`: a list of byte strings, floats or 64-bit integers.
#[derive(Clone, Debug, PartialEq)]
pub enum Feature {
    /// `bytes_list`.
    Bytes(Vec<Vec<u8>>),
    /// `float_list`.
    Float(Vec<f32>),
    /// `int64_list`.
    Int64(Vec<i64>),
}

impl Feature {
    /// The feature as a rank-1 tensor: float32 for `Float`, int64 for `Int64`; `Bytes` is an
    /// error (no string dtype) unless it holds exactly one value, returned as uint8 bytes.
    pub fn to_tensor(&self) -> Result<Tensor> {
        match self {
            Feature::Float(v) => Tensor::from_vec(v.clone(), &[v.len()]),
            Feature::Int64(v) => Tensor::from_vec(v.clone(), &[v.len()]),
            Feature::Bytes(v) if v.len() == 1 => Tensor::from_vec(v[0].clone(), &[v[0].len()]),
            Feature::Bytes(v) => Err(Error::invalid(
                "Feature::to_tensor",
                format!(
                    "a bytes_list of {} values has no tensor form (ferroflow has no string dtype)",
                    v.len()
                ),
            )),
        }
    }
}

/// `tf.train.Example`: named features.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Example {
    /// Feature name → feature (`example.features.feature`).
    pub features: BTreeMap<String, Feature>,
}

impl Example {
    /// Serializes to protobuf bytes (`SerializeToString`), features in name order, lists packed.
    pub fn encode(&self) -> Vec<u8> {
        let mut features = Vec::new();
        for (name, f) in &self.features {
            let mut list = Vec::new();
            let field = match f {
                Feature::Bytes(v) => {
                    for b in v {
                        put_len_field(&mut list, 1, b);
                    }
                    1
                }
                Feature::Float(v) => {
                    if !v.is_empty() {
                        let packed: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                        put_len_field(&mut list, 1, &packed);
                    }
                    2
                }
                Feature::Int64(v) => {
                    if !v.is_empty() {
                        let mut packed = Vec::new();
                        v.iter().for_each(|&x| put_varint(&mut packed, x as u64));
                        put_len_field(&mut list, 1, &packed);
                    }
                    3
                }
            };
            let mut feature = Vec::new();
            put_len_field(&mut feature, field, &list);
            let mut entry = Vec::new();
            put_len_field(&mut entry, 1, name.as_bytes());
            put_len_field(&mut entry, 2, &feature);
            put_len_field(&mut features, 1, &entry);
        }
        let mut out = Vec::new();
        put_len_field(&mut out, 1, &features);
        out
    }

    /// Parses protobuf bytes (`Example.FromString`); unknown fields are skipped.
    pub fn decode(bytes: &[u8]) -> Result<Example> {
        let mut ex = Example::default();
        for (field, v) in fields(bytes, "Example")? {
            if let (1, Value::Len(features)) = (field, v) {
                for (field, v) in fields(features, "Features")? {
                    if let (1, Value::Len(entry)) = (field, v) {
                        let (name, feature) = decode_entry(entry)?;
                        ex.features.insert(name, feature);
                    }
                }
            }
        }
        Ok(ex)
    }

    /// The features as an [`Element::Dict`] of rank-1 tensors (see [`Feature::to_tensor`]).
    pub fn to_element(&self) -> Result<Element> {
        Ok(Element::Dict(
            self.features
                .iter()
                .map(|(k, f)| {
                    f.to_tensor()
                        .map(|t| (k.clone(), Element::Tensor(t)))
                        .map_err(|e| Error::invalid("Example::to_element", format!("'{k}': {e}")))
                })
                .collect::<Result<_>>()?,
        ))
    }
}

fn decode_entry(entry: &[u8]) -> Result<(String, Feature)> {
    let mut name = String::new();
    let mut feature = Feature::Bytes(Vec::new());
    for (field, v) in fields(entry, "Features.FeatureEntry")? {
        match (field, v) {
            (1, Value::Len(k)) => {
                name = String::from_utf8(k.to_vec())
                    .map_err(|_| proto_err("Features.FeatureEntry", "feature name is not UTF-8"))?
            }
            (2, Value::Len(f)) => feature = decode_feature(f)?,
            _ => {}
        }
    }
    Ok((name, feature))
}

fn decode_feature(bytes: &[u8]) -> Result<Feature> {
    let mut out = Feature::Bytes(Vec::new());
    for (field, v) in fields(bytes, "Feature")? {
        let Value::Len(list) = v else { continue };
        match field {
            1 => {
                let mut vals = Vec::new();
                for (f, v) in fields(list, "BytesList")? {
                    if let (1, Value::Len(b)) = (f, v) {
                        vals.push(b.to_vec());
                    }
                }
                out = Feature::Bytes(vals);
            }
            2 => {
                let mut vals = Vec::new();
                for (f, v) in fields(list, "FloatList")? {
                    match (f, v) {
                        (1, Value::Fixed32(x)) => vals.push(f32::from_bits(x)),
                        (1, Value::Len(p)) => {
                            if p.len() % 4 != 0 {
                                return Err(proto_err(
                                    "FloatList",
                                    "packed floats not a multiple of 4 bytes",
                                ));
                            }
                            vals.extend(
                                p.chunks_exact(4)
                                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                            );
                        }
                        _ => {}
                    }
                }
                out = Feature::Float(vals);
            }
            3 => {
                let mut vals = Vec::new();
                for (f, v) in fields(list, "Int64List")? {
                    match (f, v) {
                        (1, Value::Varint(x)) => vals.push(x as i64),
                        (1, Value::Len(p)) => {
                            let mut i = 0;
                            while i < p.len() {
                                vals.push(varint(p, &mut i, "Int64List")? as i64);
                            }
                        }
                        _ => {}
                    }
                }
                out = Feature::Int64(vals);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn proto_err(msg_name: &str, msg: &str) -> Error {
    Error::invalid("Example::decode", format!("malformed {msg_name}: {msg}"))
}

enum Value<'a> {
    Varint(u64),
    Fixed64,
    Len(&'a [u8]),
    Fixed32(u32),
}

fn varint(b: &[u8], i: &mut usize, m: &str) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b
            .get(*i)
            .ok_or_else(|| proto_err(m, &format!("truncated varint at byte {i}")))?;
        *i += 1;
        v |= ((byte & 0x7F) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(proto_err(m, &format!("varint too long before byte {i}")))
}

/// The (field number, value) pairs of one message.
fn fields<'a>(b: &'a [u8], m: &str) -> Result<Vec<(u64, Value<'a>)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let at = i;
        let key = varint(b, &mut i, m)?;
        let (field, wire) = (key >> 3, key & 7);
        let need = |n: usize, i: usize| {
            if i + n > b.len() {
                Err(proto_err(
                    m,
                    &format!("truncated field {field} at byte {at}"),
                ))
            } else {
                Ok(())
            }
        };
        let v = match wire {
            0 => Value::Varint(varint(b, &mut i, m)?),
            1 => {
                need(8, i)?;
                i += 8;
                Value::Fixed64
            }
            2 => {
                let n = varint(b, &mut i, m)? as usize;
                need(n, i)?;
                let v = Value::Len(&b[i..i + n]);
                i += n;
                v
            }
            5 => {
                need(4, i)?;
                let v = Value::Fixed32(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
                i += 4;
                v
            }
            w => {
                return Err(proto_err(
                    m,
                    &format!("unsupported wire type {w} at byte {at}"),
                ))
            }
        };
        if !matches!(v, Value::Fixed64) {
            out.push((field, v));
        }
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len_field(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}
