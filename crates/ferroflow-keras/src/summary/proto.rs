//! The few TensorFlow protocol buffers an event file holds (`Event`, `Summary`,
//! `SummaryMetadata`, `TensorProto`, `HistogramProto`), encoded and decoded by hand.
//!
//! Field numbers are those of `tensorflow/core/util/event.proto`,
//! `tensorflow/core/framework/summary.proto` and `tensor.proto`. Proto3 rules: fields holding
//! their default value (step 0, empty strings) are not written; unknown fields are skipped when
//! decoding.

use ferroflow_core::{Error, Result};

/// `DataType` values used in summaries.
pub mod dtype {
    /// `DT_FLOAT`.
    pub const FLOAT: i32 = 1;
    /// `DT_DOUBLE`.
    pub const DOUBLE: i32 = 2;
    /// `DT_INT32`.
    pub const INT32: i32 = 3;
    /// `DT_STRING`.
    pub const STRING: i32 = 7;
    /// `DT_INT64`.
    pub const INT64: i32 = 9;
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, ((field as u64) << 3) | wire as u64);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_double(out: &mut Vec<u8>, field: u32, v: f64) {
    key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_float(out: &mut Vec<u8>, field: u32, v: f32) {
    key(out, field, 5);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_varint(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, 0);
    varint(out, v);
}

/// A tensor as `TensorProto` holds it: dtype, shape and the raw little-endian values
/// (`tensor_content`), or the strings (`string_val`) for `DT_STRING`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorProto {
    /// `DataType` code (see [`dtype`]).
    pub dtype: i32,
    /// Dimensions (`[]` for a scalar).
    pub shape: Vec<i64>,
    /// `tensor_content`: the values, little-endian, row-major.
    pub content: Vec<u8>,
    /// `float_val` (used by writers that do not fill `tensor_content`).
    pub float_val: Vec<f32>,
    /// `double_val`.
    pub double_val: Vec<f64>,
    /// `string_val`.
    pub string_val: Vec<Vec<u8>>,
}

impl TensorProto {
    /// A `DT_FLOAT` scalar (how `tf.summary.scalar` stores its value).
    pub fn float_scalar(v: f32) -> TensorProto {
        TensorProto {
            dtype: dtype::FLOAT,
            content: v.to_le_bytes().to_vec(),
            ..Default::default()
        }
    }

    /// A `DT_DOUBLE` tensor of this shape from row-major values.
    pub fn doubles(shape: &[i64], values: &[f64]) -> TensorProto {
        TensorProto {
            dtype: dtype::DOUBLE,
            shape: shape.to_vec(),
            content: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        }
    }

    /// A rank-1 (or, with `scalar`, rank-0) `DT_STRING` tensor.
    pub fn strings(values: Vec<Vec<u8>>, scalar: bool) -> TensorProto {
        TensorProto {
            dtype: dtype::STRING,
            shape: if scalar {
                vec![]
            } else {
                vec![values.len() as i64]
            },
            string_val: values,
            ..Default::default()
        }
    }

    /// The serialized message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.dtype != 0 {
            put_varint(&mut out, 1, self.dtype as u64);
        }
        let mut shape = Vec::new();
        for &d in &self.shape {
            let mut dim = Vec::new();
            if d != 0 {
                put_varint(&mut dim, 1, d as u64);
            }
            put_bytes(&mut shape, 2, &dim);
        }
        // TF always writes the shape, even `{}` for a scalar.
        put_bytes(&mut out, 2, &shape);
        if !self.content.is_empty() {
            put_bytes(&mut out, 4, &self.content);
        }
        if !self.float_val.is_empty() {
            let b: Vec<u8> = self
                .float_val
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            put_bytes(&mut out, 5, &b);
        }
        if !self.double_val.is_empty() {
            let b: Vec<u8> = self
                .double_val
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            put_bytes(&mut out, 6, &b);
        }
        for s in &self.string_val {
            put_bytes(&mut out, 8, s);
        }
        out
    }

    /// The values as `f64` (float and double tensors; `tensor_content` or the `*_val` fields).
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        match self.dtype {
            dtype::FLOAT if !self.content.is_empty() => Some(
                self.content
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                    .collect(),
            ),
            dtype::FLOAT => Some(self.float_val.iter().map(|&v| v as f64).collect()),
            dtype::DOUBLE if !self.content.is_empty() => Some(
                self.content
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            dtype::DOUBLE => Some(self.double_val.clone()),
            _ => None,
        }
    }
}

/// `HistogramProto` (TF1 style, `Summary.Value.histo`): read, not written (TF 2 writes
/// histograms as tensors).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramProto {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of values.
    pub num: f64,
    /// Sum of the values.
    pub sum: f64,
    /// Sum of their squares.
    pub sum_squares: f64,
    /// Right edge of each bucket.
    pub bucket_limit: Vec<f64>,
    /// Count of each bucket.
    pub bucket: Vec<f64>,
}

/// The value of one `Summary.Value`.
#[derive(Clone, Debug, PartialEq)]
pub enum SummaryData {
    /// `simple_value` (TF 1 scalars).
    Simple(f32),
    /// `tensor` (everything TF 2 writes).
    Tensor(TensorProto),
    /// `histo`.
    Histo(HistogramProto),
    /// A kind this reader does not decode (`image`, `audio`), by field number.
    Other(u32),
}

/// One `Summary.Value`: a tag, its plugin and its data.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryValue {
    /// The tag (`"epoch_loss"`).
    pub tag: String,
    /// `metadata.plugin_data.plugin_name` (`"scalars"`, `"histograms"`, `"images"`, `"text"`).
    pub plugin_name: String,
    /// `metadata.plugin_data.content`.
    pub plugin_content: Vec<u8>,
    /// The data.
    pub data: SummaryData,
}

impl SummaryValue {
    /// A TF 2 summary value: `data` as a tensor with plugin metadata.
    pub fn tensor(tag: &str, plugin: &str, content: &[u8], t: TensorProto) -> SummaryValue {
        SummaryValue {
            tag: tag.into(),
            plugin_name: plugin.into(),
            plugin_content: content.to_vec(),
            data: SummaryData::Tensor(t),
        }
    }

    /// The scalar value: `simple_value`, or a one-element float/double tensor.
    pub fn scalar(&self) -> Option<f64> {
        match &self.data {
            SummaryData::Simple(v) => Some(*v as f64),
            SummaryData::Tensor(t) => match t.to_f64() {
                Some(v) if v.len() == 1 => Some(v[0]),
                _ => None,
            },
            _ => None,
        }
    }

    /// Histogram buckets `(left edge, right edge, count)`: a `[k, 3]` histogram-plugin tensor,
    /// or a `HistogramProto` (left edges from the previous limit, the first from `min`).
    pub fn histogram(&self) -> Option<Vec<[f64; 3]>> {
        match &self.data {
            SummaryData::Tensor(t) if t.shape.len() == 2 && t.shape[1] == 3 => {
                let v = t.to_f64()?;
                Some(v.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
            }
            SummaryData::Histo(h) => {
                let mut left = h.min;
                Some(
                    h.bucket_limit
                        .iter()
                        .zip(&h.bucket)
                        .map(|(&r, &c)| {
                            let row = [left, r, c];
                            left = r;
                            row
                        })
                        .collect(),
                )
            }
            _ => None,
        }
    }

    /// The strings of a `DT_STRING` tensor (text summaries; images as width, height, PNGs).
    pub fn strings(&self) -> Option<&[Vec<u8>]> {
        match &self.data {
            SummaryData::Tensor(t) if t.dtype == dtype::STRING => Some(&t.string_val),
            _ => None,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, self.tag.as_bytes());
        match &self.data {
            SummaryData::Simple(v) => put_float(&mut out, 2, *v),
            SummaryData::Tensor(t) => put_bytes(&mut out, 8, &t.encode()),
            // Not produced by this writer.
            SummaryData::Histo(_) | SummaryData::Other(_) => {}
        }
        if !self.plugin_name.is_empty() {
            let mut plugin = Vec::new();
            put_bytes(&mut plugin, 1, self.plugin_name.as_bytes());
            if !self.plugin_content.is_empty() {
                put_bytes(&mut plugin, 2, &self.plugin_content);
            }
            let mut meta = Vec::new();
            put_bytes(&mut meta, 1, &plugin);
            put_bytes(&mut out, 9, &meta);
        }
        out
    }
}

/// What an `Event` carries (its `what` oneof).
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// `file_version` (`"brain.Event:2"`, the first record of a file).
    FileVersion(String),
    /// `graph_def`: a serialized `GraphDef`.
    GraphDef(Vec<u8>),
    /// `summary`: its values.
    Summary(Vec<SummaryValue>),
    /// Anything else (session log, tagged run metadata, ...), by field number; `0` when empty.
    Other(u32),
}

/// One `tensorflow.Event`.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// The step (0 when absent).
    pub step: i64,
    /// The payload.
    pub kind: EventKind,
}

impl Event {
    /// The serialized message (with `source_metadata.writer = "ferroflow"` on the file-version
    /// event, as TF names its writer there).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_double(&mut out, 1, self.wall_time);
        if self.step != 0 {
            put_varint(&mut out, 2, self.step as u64);
        }
        match &self.kind {
            EventKind::FileVersion(v) => {
                put_bytes(&mut out, 3, v.as_bytes());
                let mut src = Vec::new();
                put_bytes(&mut src, 1, b"ferroflow");
                put_bytes(&mut out, 10, &src);
            }
            EventKind::GraphDef(g) => put_bytes(&mut out, 4, g),
            EventKind::Summary(values) => {
                let mut s = Vec::new();
                for v in values {
                    put_bytes(&mut s, 1, &v.encode());
                }
                put_bytes(&mut out, 5, &s);
            }
            EventKind::Other(_) => {}
        }
        out
    }

    /// Decodes a serialized `Event`; `what` names the place for errors.
    pub fn decode(b: &[u8], what: &str) -> Result<Event> {
        let mut ev = Event {
            wall_time: 0.0,
            step: 0,
            kind: EventKind::Other(0),
        };
        for f in Fields::new(b, what) {
            let (field, v) = f?;
            match (field, v) {
                (1, Val::Fixed64(x)) => ev.wall_time = f64::from_bits(x),
                (2, Val::Varint(x)) => ev.step = x as i64,
                (3, Val::Bytes(s)) => {
                    ev.kind = EventKind::FileVersion(String::from_utf8_lossy(s).into_owned())
                }
                (4, Val::Bytes(g)) => ev.kind = EventKind::GraphDef(g.to_vec()),
                (5, Val::Bytes(s)) => {
                    let mut values = Vec::new();
                    for f in Fields::new(s, what) {
                        if let (1, Val::Bytes(v)) = f? {
                            values.push(decode_value(v, what)?);
                        }
                    }
                    ev.kind = EventKind::Summary(values);
                }
                (n @ 6..=9, _) => ev.kind = EventKind::Other(n),
                _ => {}
            }
        }
        Ok(ev)
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

enum Val<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// Iterates the fields of one message.
struct Fields<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'a str,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(b: &'a [u8], what: &'a str) -> Fields<'a> {
        Fields {
            b,
            pos: 0,
            what,
            failed: false,
        }
    }

    fn err(&self, msg: &str) -> Error {
        Error::invalid(
            "read_events",
            format!(
                "{}: malformed protobuf at byte {} of the message: {msg}",
                self.what, self.pos
            ),
        )
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.b.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            v |= ((byte & 0x7f) as u64) << (7 * i);
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() - self.pos < n {
            return Err(self.err(&format!("field of {n} bytes runs past the end")));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn field(&mut self) -> Result<(u32, Val<'a>)> {
        let k = self.varint()?;
        let field = (k >> 3) as u32;
        let v = match k & 7 {
            0 => Val::Varint(self.varint()?),
            1 => Val::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().unwrap_or([0; 8]),
            )),
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| self.err("length too large"))?;
                Val::Bytes(self.take(n)?)
            }
            5 => Val::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().unwrap_or([0; 4]),
            )),
            w => return Err(self.err(&format!("unsupported wire type {w}"))),
        };
        Ok((field, v))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Val<'a>)>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.b.len() {
            return None;
        }
        let r = self.field();
        self.failed = r.is_err();
        Some(r)
    }
}

fn packed_f64(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect()
}

fn decode_tensor(b: &[u8], what: &str) -> Result<TensorProto> {
    let mut t = TensorProto::default();
    for f in Fields::new(b, what) {
        match f? {
            (1, Val::Varint(d)) => t.dtype = d as i32,
            (2, Val::Bytes(shape)) => {
                for f in Fields::new(shape, what) {
                    if let (2, Val::Bytes(dim)) = f? {
                        let mut size = 0i64;
                        for f in Fields::new(dim, what) {
                            if let (1, Val::Varint(s)) = f? {
                                size = s as i64;
                            }
                        }
                        t.shape.push(size);
                    }
                }
            }
            (4, Val::Bytes(c)) => t.content = c.to_vec(),
            (5, Val::Bytes(p)) => t.float_val.extend(
                p.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
            (5, Val::Fixed32(x)) => t.float_val.push(f32::from_bits(x)),
            (6, Val::Bytes(p)) => t.double_val.extend(packed_f64(p)),
            (6, Val::Fixed64(x)) => t.double_val.push(f64::from_bits(x)),
            (8, Val::Bytes(s)) => t.string_val.push(s.to_vec()),
            _ => {}
        }
    }
    Ok(t)
}

fn decode_histo(b: &[u8], what: &str) -> Result<HistogramProto> {
    let mut h = HistogramProto::default();
    for f in Fields::new(b, what) {
        match f? {
            (1, Val::Fixed64(x)) => h.min = f64::from_bits(x),
            (2, Val::Fixed64(x)) => h.max = f64::from_bits(x),
            (3, Val::Fixed64(x)) => h.num = f64::from_bits(x),
            (4, Val::Fixed64(x)) => h.sum = f64::from_bits(x),
            (5, Val::Fixed64(x)) => h.sum_squares = f64::from_bits(x),
            (6, Val::Bytes(p)) => h.bucket_limit.extend(packed_f64(p)),
            (6, Val::Fixed64(x)) => h.bucket_limit.push(f64::from_bits(x)),
            (7, Val::Bytes(p)) => h.bucket.extend(packed_f64(p)),
            (7, Val::Fixed64(x)) => h.bucket.push(f64::from_bits(x)),
            _ => {}
        }
    }
    Ok(h)
}

fn decode_value(b: &[u8], what: &str) -> Result<SummaryValue> {
    let mut v = SummaryValue {
        tag: String::new(),
        plugin_name: String::new(),
        plugin_content: Vec::new(),
        data: SummaryData::Other(0),
    };
    for f in Fields::new(b, what) {
        match f? {
            (1, Val::Bytes(s)) => v.tag = String::from_utf8_lossy(s).into_owned(),
            (2, Val::Fixed32(x)) => v.data = SummaryData::Simple(f32::from_bits(x)),
            (5, Val::Bytes(h)) => v.data = SummaryData::Histo(decode_histo(h, what)?),
            (8, Val::Bytes(t)) => v.data = SummaryData::Tensor(decode_tensor(t, what)?),
            (n @ (3 | 4 | 6), _) => v.data = SummaryData::Other(n),
            (9, Val::Bytes(meta)) => {
                for f in Fields::new(meta, what) {
                    if let (1, Val::Bytes(plugin)) = f? {
                        for f in Fields::new(plugin, what) {
                            match f? {
                                (1, Val::Bytes(n)) => {
                                    v.plugin_name = String::from_utf8_lossy(n).into_owned()
                                }
                                (2, Val::Bytes(c)) => v.plugin_content = c.to_vec(),
                                _ => {}
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(v)
}
