//! NumPy's `.npy` (one array) and `.npz` (a zip of `.npy` files), read and written.
//!
//! Matches `numpy.save`/`numpy.load`/`numpy.savez`:
//! - format versions 1.0, 2.0 and 3.0 are read (3.0 only differs by a UTF-8 header); writing uses
//!   1.0, or 2.0 when the header would not fit 1.0's 16-bit length, with numpy's header layout
//!   (a Python dict literal padded with spaces so that the data starts at a multiple of 64 bytes);
//! - little- (`<`), big- (`>`), native- (`=`) and not-applicable (`|`) byte orders are read;
//!   writing is little-endian, as numpy does on every common machine;
//! - `fortran_order: True` arrays are read and transposed into ferroflow's row-major (C) order;
//!   writing is always C order;
//! - dtypes: `float16/32/64` (`f2 f4 f8`), `int32/64` (`i4 i8`), `uint8` (`u1`), `bool` (`b1`)
//!   map one to one onto ferroflow's dtypes. Integer dtypes ferroflow lacks are widened without
//!   loss when read: `int8`, `int16`, `uint16` → int32, `uint32` → int64. `uint64`, complex,
//!   strings, objects and structured dtypes are refused with an error naming the dtype;
//! - **bfloat16** has no NumPy dtype (`ml_dtypes` stores it as raw `V2` bytes, which a reader
//!   cannot tell from any other 2-byte void): writing a bfloat16 tensor is an error that says so
//!   and suggests casting to float32 first, which is exact.
//!
//! `.npz` archives are read whether their entries are stored or deflated (`savez` and
//! `savez_compressed`); [`save_npz`] writes stored entries, as `numpy.savez` does. Keys are the
//! entry names without `.npy`, as in `np.load(...)[key]`.
//!
//! ```
//! use ferroflow_core::Tensor;
//! use ferroflow_data::io::{read_npy, write_npy};
//! let path = std::env::temp_dir().join(format!("ff-doc-{}.npy", std::process::id()));
//! let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
//! write_npy(&path, &x)?;
//! let y = read_npy(&path)?;
//! assert_eq!(y.shape(), &[2, 3]);
//! assert_eq!(y.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use ferroflow_core::{DType, Error, Result, Tensor};
use half::f16;

use super::{io_error, read_file, write_atomic, AtomicFile};

const MAGIC: &[u8] = b"\x93NUMPY";

fn err(op: &str, name: &str, place: impl std::fmt::Display, msg: impl std::fmt::Display) -> Error {
    Error::invalid(op, format!("{name}: {place}: {msg}"))
}

/// Reads a `.npy` file into a tensor (row-major; Fortran-ordered files are transposed).
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    let bytes = read_file("read_npy", path)?;
    npy_from_bytes(&bytes, &path.display().to_string())
}

/// Writes a tensor as a `.npy` file (format 1.0, little-endian, C order), atomically.
///
/// Errors for bfloat16 tensors, which NumPy has no dtype for (cast to float32 first).
pub fn write_npy(path: impl AsRef<Path>, tensor: &Tensor) -> Result<()> {
    let path = path.as_ref();
    let bytes = npy_to_bytes(tensor).map_err(|e| io_error("write_npy", path, e))?;
    write_atomic("write_npy", path, &bytes)
}

/// Parses the bytes of a `.npy` file; `name` (a file name) is used in error messages.
pub fn npy_from_bytes(bytes: &[u8], name: &str) -> Result<Tensor> {
    const OP: &str = "read_npy";
    if bytes.len() < 6 || &bytes[..6] != MAGIC {
        let got = &bytes[..bytes.len().min(6)];
        return Err(err(
            OP,
            name,
            "byte 0",
            format!("bad magic {got:?}: not a .npy file (expected b\"\\x93NUMPY\")"),
        ));
    }
    if bytes.len() < 10 {
        return Err(err(
            OP,
            name,
            "byte 6",
            format!("truncated header: {} bytes in all", bytes.len()),
        ));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_start, header_len) = match major {
        1 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(err(OP, name, "byte 8", "truncated header length"));
            }
            (
                12,
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            )
        }
        _ => {
            return Err(err(
                OP,
                name,
                "byte 6",
                format!("unsupported format version {major}.{minor} (1.0, 2.0 and 3.0 are read)"),
            ))
        }
    };
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err(err(
            OP,
            name,
            format!("byte {header_start}"),
            format!(
                "truncated header: {header_len} bytes announced, {} present",
                bytes.len() - header_start
            ),
        ));
    }
    let header_bytes = &bytes[header_start..data_start];
    let header = if major == 3 {
        std::str::from_utf8(header_bytes)
            .map_err(|e| err(OP, name, format!("byte {header_start}"), e))?
            .to_string()
    } else {
        header_bytes.iter().map(|&b| b as char).collect()
    };
    let at_header = format!("header at byte {header_start}");
    let h = parse_header(&header).map_err(|m| err(OP, name, &at_header, m))?;
    let src = SourceType::parse(&h.descr).map_err(|m| err(OP, name, &at_header, m))?;
    let n = h
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err(OP, name, &at_header, "shape too large"))?;
    let need = n
        .checked_mul(src.size)
        .ok_or_else(|| err(OP, name, &at_header, "shape too large"))?;
    let data = &bytes[data_start..];
    if data.len() < need {
        return Err(err(
            OP,
            name,
            format!("byte {data_start}"),
            format!(
                "truncated data: shape {:?} of '{}' needs {need} bytes, {} present",
                h.shape,
                h.descr,
                data.len()
            ),
        ));
    }
    if data.len() > need {
        return Err(err(
            OP,
            name,
            format!("byte {}", data_start + need),
            format!(
                "{} unexpected bytes after the data of shape {:?}",
                data.len() - need,
                h.shape
            ),
        ));
    }
    let mut t = src.decode(data, &h.shape)?;
    if h.fortran_order && h.shape.len() > 1 {
        t = fortran_to_c(&t, &h.shape)?;
    }
    Ok(t)
}

/// The bytes of a `.npy` file holding `tensor` (format 1.0 or 2.0, little-endian, C order).
pub fn npy_to_bytes(tensor: &Tensor) -> Result<Vec<u8>> {
    let descr = match tensor.dtype() {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::F16 => "<f2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::Bool => "|b1",
        DType::BF16 => {
            return Err(Error::dtype(
                "write_npy",
                "bfloat16 has no NumPy dtype; cast to float32 first (exact)",
                &[DType::BF16],
            ))
        }
    };
    let shape = match tensor.shape() {
        [d] => format!("({d},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // numpy pads the header with spaces and a final newline so the data is 64-byte aligned.
    let (version, prefix) = if dict.len() + 1 + 10 <= 65535 {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
    let header_len = total - prefix;
    let mut out =
        Vec::with_capacity(total + tensor.num_elements() * tensor.dtype().size_in_bytes());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    let t = tensor.contiguous();
    match t.dtype() {
        DType::F32 => t
            .data::<f32>()?
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        DType::F64 => t
            .data::<f64>()?
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        DType::F16 => t
            .data::<f16>()?
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        DType::I32 => t
            .data::<i32>()?
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        DType::I64 => t
            .data::<i64>()?
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        DType::U8 => out.extend_from_slice(&t.data::<u8>()?),
        DType::Bool => t.data::<bool>()?.iter().for_each(|&v| out.push(v as u8)),
        DType::BF16 => unreachable!("refused above"),
    }
    Ok(out)
}

/// Reads every array of a `.npz` archive, keyed by entry name without `.npy` (stored and
/// deflated entries both read).
pub fn load_npz(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor>> {
    const OP: &str = "load_npz";
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| io_error(OP, path, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| io_error(OP, path, format!("not a valid .npz (zip) archive: {e}")))?;
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| io_error(OP, path, format!("entry {i}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let entry_name = entry.name().to_string();
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 26) as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(OP, path, format!("entry '{entry_name}': {e}")))?;
        let key = entry_name
            .strip_suffix(".npy")
            .unwrap_or(&entry_name)
            .to_string();
        let t = npy_from_bytes(&bytes, &format!("{}:{entry_name}", path.display()))?;
        out.insert(key, t);
    }
    Ok(out)
}

/// Writes tensors as a `.npz` archive of stored (uncompressed) `<key>.npy` entries, like
/// `numpy.savez(path, key=tensor, ...)`, atomically.
pub fn save_npz<'a, K: AsRef<str> + 'a>(
    path: impl AsRef<Path>,
    arrays: impl IntoIterator<Item = (K, &'a Tensor)>,
) -> Result<()> {
    const OP: &str = "save_npz";
    let path = path.as_ref();
    let mut file = AtomicFile::create(OP, path)?;
    {
        let mut zip = zip::ZipWriter::new(file.file());
        for (key, t) in arrays {
            let key = key.as_ref();
            let bytes = npy_to_bytes(t).map_err(|e| io_error(OP, path, format!("'{key}': {e}")))?;
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(bytes.len() as u64 >= u32::MAX as u64);
            zip.start_file(format!("{key}.npy"), options)
                .map_err(|e| io_error(OP, path, format!("'{key}': {e}")))?;
            zip.write_all(&bytes)
                .map_err(|e| io_error(OP, path, format!("'{key}': {e}")))?;
        }
        zip.finish().map_err(|e| io_error(OP, path, e))?;
    }
    file.commit()
}

struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Parses numpy's header, a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn parse_header(s: &str) -> std::result::Result<Header, String> {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    p.expect(b'{')?;
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        match key.as_str() {
            "descr" => {
                if p.peek() == Some(b'[') {
                    return Err("structured dtypes (a list 'descr') are not supported".into());
                }
                descr = Some(p.string()?)
            }
            "fortran_order" => fortran = Some(p.boolean()?),
            "shape" => shape = Some(p.tuple()?),
            other => return Err(format!("unexpected key '{other}' in the header")),
        }
        p.ws();
        if !p.eat(b',') {
            p.ws();
            p.expect(b'}')?;
            break;
        }
    }
    Ok(Header {
        descr: descr.ok_or("header lacks 'descr'")?,
        fortran_order: fortran.ok_or("header lacks 'fortran_order'")?,
        shape: shape.ok_or("header lacks 'shape'")?,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        self.ws();
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "malformed header: expected '{}' at character {}",
                c as char, self.i
            ))
        }
    }
    fn string(&mut self) -> std::result::Result<String, String> {
        let q = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(format!(
                    "malformed header: expected a string at character {}",
                    self.i
                ))
            }
        };
        self.i += 1;
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == q {
                let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                return Ok(v);
            }
            self.i += 1;
        }
        Err("malformed header: unterminated string".into())
    }
    fn boolean(&mut self) -> std::result::Result<bool, String> {
        for (word, v) in [("True", true), ("False", false)] {
            if self.s[self.i..].starts_with(word.as_bytes()) {
                self.i += word.len();
                return Ok(v);
            }
        }
        Err(format!(
            "malformed header: expected True or False at character {}",
            self.i
        ))
    }
    fn tuple(&mut self) -> std::result::Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            let d = digits.parse::<usize>().map_err(|_| {
                format!("malformed header: expected a dimension at character {start}")
            })?;
            self.eat(b'L');
            dims.push(d);
            self.ws();
            if !self.eat(b',') {
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

/// A numpy element type we can read, and the ferroflow dtype it becomes.
struct SourceType {
    kind: u8,
    size: usize,
    big: bool,
}

impl SourceType {
    fn parse(descr: &str) -> std::result::Result<SourceType, String> {
        let b = descr.as_bytes();
        let unsupported = || {
            format!(
                "unsupported dtype '{descr}' (readable: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 b1; \
                 bfloat16 has no NumPy dtype)"
            )
        };
        if b.len() < 3 {
            return Err(unsupported());
        }
        let big = match b[0] {
            b'<' | b'|' => false,
            b'>' => true,
            b'=' => cfg!(target_endian = "big"),
            _ => return Err(unsupported()),
        };
        let size: usize = descr[2..].parse().map_err(|_| unsupported())?;
        let ok = matches!(
            (b[1], size),
            (b'f', 2 | 4 | 8) | (b'i', 1 | 2 | 4 | 8) | (b'u', 1 | 2 | 4) | (b'b', 1)
        );
        if !ok {
            return Err(unsupported());
        }
        Ok(SourceType {
            kind: b[1],
            size,
            big,
        })
    }

    fn decode(&self, data: &[u8], shape: &[usize]) -> Result<Tensor> {
        macro_rules! conv {
            ($t:ty, $n:expr, $map:expr) => {{
                let v: Vec<_> = data
                    .chunks_exact($n)
                    .map(|c| {
                        let mut a = [0u8; $n];
                        a.copy_from_slice(c);
                        let x = if self.big {
                            <$t>::from_be_bytes(a)
                        } else {
                            <$t>::from_le_bytes(a)
                        };
                        $map(x)
                    })
                    .collect();
                Tensor::from_vec(v, shape)
            }};
        }
        match (self.kind, self.size) {
            (b'f', 2) => conv!(u16, 2, f16::from_bits),
            (b'f', 4) => conv!(f32, 4, |x| x),
            (b'f', 8) => conv!(f64, 8, |x| x),
            (b'i', 1) => conv!(i8, 1, i32::from),
            (b'i', 2) => conv!(i16, 2, i32::from),
            (b'i', 4) => conv!(i32, 4, |x| x),
            (b'i', 8) => conv!(i64, 8, |x| x),
            (b'u', 1) => Tensor::from_vec(data.to_vec(), shape),
            (b'u', 2) => conv!(u16, 2, i32::from),
            (b'u', 4) => conv!(u32, 4, i64::from),
            (b'b', 1) => Tensor::from_vec(data.iter().map(|&b| b != 0).collect::<Vec<_>>(), shape),
            _ => unreachable!("checked by parse"),
        }
    }
}

/// Reorders column-major (Fortran) data of `shape` into row-major order.
fn fortran_to_c(t: &Tensor, shape: &[usize]) -> Result<Tensor> {
    fn reorder<T: Copy>(src: &[T], shape: &[usize]) -> Vec<T> {
        let r = shape.len();
        // Fortran strides: axis 0 varies fastest.
        let mut fstride = vec![1usize; r];
        for k in 1..r {
            fstride[k] = fstride[k - 1] * shape[k - 1];
        }
        let n: usize = shape.iter().product();
        let mut out = Vec::with_capacity(n);
        let mut idx = vec![0usize; r];
        for _ in 0..n {
            let off: usize = idx.iter().zip(&fstride).map(|(i, s)| i * s).sum();
            out.push(src[off]);
            // Increment the row-major multi-index (last axis fastest).
            for k in (0..r).rev() {
                idx[k] += 1;
                if idx[k] < shape[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        out
    }
    match t.dtype() {
        DType::F32 => Tensor::from_vec(reorder(&t.data::<f32>()?, shape), shape),
        DType::F64 => Tensor::from_vec(reorder(&t.data::<f64>()?, shape), shape),
        DType::F16 => Tensor::from_vec(reorder(&t.data::<f16>()?, shape), shape),
        DType::BF16 => Tensor::from_vec(reorder(&t.data::<half::bf16>()?, shape), shape),
        DType::I32 => Tensor::from_vec(reorder(&t.data::<i32>()?, shape), shape),
        DType::I64 => Tensor::from_vec(reorder(&t.data::<i64>()?, shape), shape),
        DType::U8 => Tensor::from_vec(reorder(&t.data::<u8>()?, shape), shape),
        DType::Bool => Tensor::from_vec(reorder(&t.data::<bool>()?, shape), shape),
    }
}
