//! `cache()` in memory and `cache_file(path)` on disk.
//!
//! # The cache file format
//!
//! All integers little-endian:
//!
//! ```text
//! file    := "FFDCACHE" version:u32(=1) record* end
//! record  := 0xE1 element
//! end     := 0xEE count:u64 "FFDCEND!"
//! element := 0x00 dtype:u8 rank:u8 dim:u64*rank data      (a tensor, row-major)
//!          | 0x01 n:u32 element*n                          (a tuple)
//!          | 0x02 n:u32 (len:u32 utf8-key element)*n       (a dict, keys in order)
//! dtype   := 0 f32 | 1 f64 | 2 f16 | 3 bf16 | 4 i32 | 5 i64 | 6 u8 | 7 bool (one byte, 0 or 1)
//! ```
//!
//! The file is written to a temporary name next to `path` and renamed into place only when a
//! pass has read the whole input without error, so a file at `path` is always complete unless
//! something else damaged it; reading checks the end marker before the first element and every
//! header while streaming, and reports the file and the byte offset of anything wrong.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ferroflow_core::{DType, Error, Result, Tensor};
use half::{bf16, f16};

use super::{Dataset, ElementIter};
use crate::element::Element;

const MAGIC: &[u8; 8] = b"FFDCACHE";
const END_MAGIC: &[u8; 8] = b"FFDCEND!";
const VERSION: u32 = 1;
const RECORD: u8 = 0xE1;
const END: u8 = 0xEE;
const HEADER_LEN: u64 = 12;
const FOOTER_LEN: u64 = 17;
const MAX_RANK: usize = 64;
const OP: &str = "cache_file";

/// Elements kept by a memory cache once a pass has completed.
type Store = Arc<Mutex<Option<Arc<Vec<Element>>>>>;

impl Dataset {
    /// `Dataset.cache()`: the first pass that reads the whole input without error keeps its
    /// elements in memory; later passes replay them without running the input pipeline again
    /// (so a `map` before `cache` runs once per element in total). A pass abandoned early, or
    /// one that met an error, keeps nothing (TF discards a partial cache too). Cardinality is
    /// kept.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use ferroflow_data::Dataset;
    /// let calls = Arc::new(AtomicUsize::new(0));
    /// let c = calls.clone();
    /// let ds = Dataset::range(4)
    ///     .map(move |e| { c.fetch_add(1, Ordering::SeqCst); Ok(e) })
    ///     .cache();
    /// for _ in 0..3 {
    ///     assert_eq!(ds.collect()?.len(), 4);
    /// }
    /// assert_eq!(calls.load(Ordering::SeqCst), 4);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn cache(&self) -> Dataset {
        let input = self.clone();
        let store: Store = Arc::new(Mutex::new(None));
        Dataset::from_source(
            move || {
                let cached = store.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match cached {
                    Some(v) => {
                        let n = v.len();
                        Box::new((0..n).map(move |i| Ok(v[i].clone())))
                    }
                    None => Box::new(MemoryFill {
                        input: input.iter(),
                        seen: Vec::new(),
                        failed: false,
                        store: store.clone(),
                    }),
                }
            },
            self.cardinality,
        )
    }

    /// `Dataset.cache(filename)`: like [`Dataset::cache`], but the elements go to the file
    /// `path` (written to a temporary file and renamed into place when a pass completes without
    /// error). If `path` already exists — from an earlier pass or an earlier run — passes read
    /// it instead of the input, as TF does. A truncated or corrupt file is an error naming the
    /// file and the byte offset, never a panic. If the file cannot be written, the pass yields
    /// that error once and goes on with the input's elements uncached.
    ///
    /// The format is ferroflow's own (see the module source): dtype and shape headers, then
    /// row-major little-endian data.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let path = std::env::temp_dir().join(format!("ff-doc-cache-{}.bin", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let ds = Dataset::range(3).batch(2, false).cache_file(&path);
    /// let first = ds.collect()?; // reads the input, writes the file
    /// assert!(path.exists());
    /// let again = ds.collect()?; // reads the file
    /// assert_eq!(again[1].tensor()?.to_vec::<i64>()?, vec![2]);
    /// assert_eq!(first.len(), again.len());
    /// std::fs::remove_file(&path).ok();
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn cache_file(&self, path: impl AsRef<Path>) -> Dataset {
        let input = self.clone();
        let path = path.as_ref().to_path_buf();
        Dataset::from_source(
            move || {
                if path.exists() {
                    match CacheReader::open(&path) {
                        Ok(r) => Box::new(r),
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    }
                } else {
                    Box::new(FileFill::start(input.iter(), &path))
                }
            },
            self.cardinality,
        )
    }
}

/// The first pass of a memory cache: passes elements through and keeps copies.
struct MemoryFill {
    input: ElementIter,
    seen: Vec<Element>,
    failed: bool,
    store: Store,
}

impl Iterator for MemoryFill {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        match self.input.next() {
            Some(Ok(e)) => {
                if !self.failed {
                    self.seen.push(e.clone());
                }
                Some(Ok(e))
            }
            Some(Err(err)) => {
                self.failed = true;
                self.seen = Vec::new();
                Some(Err(err))
            }
            None => {
                if !self.failed {
                    let v = std::mem::take(&mut self.seen);
                    let mut s = self.store.lock().unwrap_or_else(|p| p.into_inner());
                    if s.is_none() {
                        *s = Some(Arc::new(v));
                    }
                }
                self.failed = true; // store once
                None
            }
        }
    }
}

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid(OP, format!("{}: {what}: {e}", path.display()))
}

/// Distinguishes the temporary files of concurrent passes.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The writer of a file cache's first pass.
struct FileWriter {
    out: BufWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    count: u64,
}

impl FileWriter {
    fn create(path: &Path) -> Result<FileWriter> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cache".into());
        let tmp = path.with_file_name(format!(
            "{name}.tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&tmp).map_err(|e| io_err(&tmp, "cannot create", e))?;
        let mut w = FileWriter {
            out: BufWriter::new(file),
            tmp,
            path: path.to_path_buf(),
            count: 0,
        };
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&VERSION.to_le_bytes());
        w.write(&header)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| io_err(&self.tmp, "write failed", e))
    }

    fn element(&mut self, e: &Element) -> Result<()> {
        let mut buf = vec![RECORD];
        encode(e, &mut buf)?;
        self.write(&buf)?;
        self.count += 1;
        Ok(())
    }

    /// Writes the end marker and renames the file into place.
    fn finish(mut self) -> Result<()> {
        let mut footer = vec![END];
        footer.extend_from_slice(&self.count.to_le_bytes());
        footer.extend_from_slice(END_MAGIC);
        self.write(&footer)?;
        self.out
            .flush()
            .map_err(|e| io_err(&self.tmp, "write failed", e))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(|e| io_err(&self.tmp, "sync failed", e))?;
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| io_err(&self.path, "cannot rename the finished cache into place", e))?;
        self.tmp = PathBuf::new(); // nothing left to clean up
        Ok(())
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The first pass of a file cache: passes elements through and writes them.
struct FileFill {
    input: ElementIter,
    writer: Option<FileWriter>,
    pending_error: Option<Error>,
}

impl FileFill {
    fn start(input: ElementIter, path: &Path) -> FileFill {
        let (writer, pending_error) = match FileWriter::create(path) {
            Ok(w) => (Some(w), None),
            Err(e) => (None, Some(e)),
        };
        FileFill {
            input,
            writer,
            pending_error,
        }
    }
}

impl Iterator for FileFill {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        if let Some(e) = self.pending_error.take() {
            return Some(Err(e));
        }
        match self.input.next() {
            Some(Ok(e)) => {
                if let Some(w) = self.writer.as_mut() {
                    if let Err(err) = w.element(&e) {
                        self.writer = None; // abandon the cache, removing the temporary file
                        self.pending_error = Some(err);
                        return Some(Ok(e));
                    }
                }
                Some(Ok(e))
            }
            Some(Err(err)) => {
                self.writer = None; // an incomplete pass is not cached
                Some(Err(err))
            }
            None => {
                if let Some(w) = self.writer.take() {
                    if let Err(err) = w.finish() {
                        return Some(Err(err));
                    }
                }
                None
            }
        }
    }
}

/// A reader that counts the bytes it has consumed, for error messages.
struct Counting {
    inner: BufReader<File>,
    pos: u64,
    len: u64,
}

impl Counting {
    fn bytes(&mut self, n: u64) -> std::io::Result<Vec<u8>> {
        if n > self.len.saturating_sub(self.pos) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("needs {n} more bytes, the file ends first"),
            ));
        }
        let mut v = vec![0u8; n as usize];
        self.inner.read_exact(&mut v)?;
        self.pos += n;
        Ok(v)
    }

    fn u8(&mut self) -> std::io::Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    fn u32(&mut self) -> std::io::Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> std::io::Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }
}

/// A pass over a finished cache file.
struct CacheReader {
    r: Counting,
    path: PathBuf,
    index: u64,
    count: u64,
    done: bool,
}

impl CacheReader {
    fn open(path: &Path) -> Result<CacheReader> {
        let mut f = File::open(path).map_err(|e| io_err(path, "cannot open", e))?;
        let len = f
            .metadata()
            .map_err(|e| io_err(path, "cannot stat", e))?
            .len();
        let corrupt = |msg: String| Error::invalid(OP, format!("{}: {msg}", path.display()));
        if len < HEADER_LEN + FOOTER_LEN {
            return Err(corrupt(format!(
                "not a complete ferroflow cache file ({len} bytes; truncated?)"
            )));
        }
        let mut head = [0u8; 12];
        f.read_exact(&mut head)
            .map_err(|e| io_err(path, "read failed", e))?;
        if &head[..8] != MAGIC {
            return Err(corrupt(
                "bad magic at byte 0: not a ferroflow cache file".into(),
            ));
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version != VERSION {
            return Err(corrupt(format!(
                "unsupported cache format version {version} at byte 8 (expected {VERSION})"
            )));
        }
        let mut foot = [0u8; 17];
        f.seek(SeekFrom::Start(len - FOOTER_LEN))
            .and_then(|_| f.read_exact(&mut foot))
            .map_err(|e| io_err(path, "read failed", e))?;
        if foot[0] != END || &foot[9..] != END_MAGIC {
            return Err(corrupt(format!(
                "no end marker at byte {}: the file is truncated or was not finished",
                len - FOOTER_LEN
            )));
        }
        let mut c = [0u8; 8];
        c.copy_from_slice(&foot[1..9]);
        let count = u64::from_le_bytes(c);
        f.seek(SeekFrom::Start(HEADER_LEN))
            .map_err(|e| io_err(path, "seek failed", e))?;
        Ok(CacheReader {
            r: Counting {
                inner: BufReader::new(f),
                pos: HEADER_LEN,
                len: len - FOOTER_LEN,
            },
            path: path.to_path_buf(),
            index: 0,
            count,
            done: false,
        })
    }

    fn read_record(&mut self) -> Result<Element> {
        let start = self.r.pos;
        let res = (|| -> std::result::Result<Element, String> {
            let tag = self.r.u8().map_err(|e| e.to_string())?;
            if tag != RECORD {
                return Err(format!("expected a record marker, found byte {tag:#04x}"));
            }
            decode(&mut self.r, 0)
        })();
        res.map_err(|msg| {
            Error::invalid(
                OP,
                format!(
                    "{}: corrupt element {} (record at byte {start}, error at byte {}): {msg}",
                    self.path.display(),
                    self.index,
                    self.r.pos
                ),
            )
        })
    }
}

impl Iterator for CacheReader {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        if self.done {
            return None;
        }
        if self.index == self.count {
            self.done = true;
            if self.r.pos != self.r.len {
                return Some(Err(Error::invalid(
                    OP,
                    format!(
                        "{}: {} bytes after the last of the {} elements (byte {})",
                        self.path.display(),
                        self.r.len - self.r.pos,
                        self.count,
                        self.r.pos
                    ),
                )));
            }
            return None;
        }
        let e = self.read_record();
        if e.is_err() {
            self.done = true;
        }
        self.index += 1;
        Some(e)
    }
}

fn dtype_code(d: DType) -> u8 {
    match d {
        DType::F32 => 0,
        DType::F64 => 1,
        DType::F16 => 2,
        DType::BF16 => 3,
        DType::I32 => 4,
        DType::I64 => 5,
        DType::U8 => 6,
        DType::Bool => 7,
    }
}

fn dtype_of(code: u8) -> Option<DType> {
    Some(match code {
        0 => DType::F32,
        1 => DType::F64,
        2 => DType::F16,
        3 => DType::BF16,
        4 => DType::I32,
        5 => DType::I64,
        6 => DType::U8,
        7 => DType::Bool,
        _ => return None,
    })
}

fn len_u32(n: usize, what: &str) -> Result<[u8; 4]> {
    u32::try_from(n)
        .map(u32::to_le_bytes)
        .map_err(|_| Error::invalid(OP, format!("{what} too large to cache ({n})")))
}

/// Appends the encoding of `e` to `out`.
fn encode(e: &Element, out: &mut Vec<u8>) -> Result<()> {
    match e {
        Element::Tensor(t) => {
            if t.rank() > MAX_RANK {
                return Err(Error::shape(
                    OP,
                    format!(
                        "cannot cache a tensor of rank {} (at most {MAX_RANK})",
                        t.rank()
                    ),
                    &[t.shape()],
                ));
            }
            out.push(0);
            out.push(dtype_code(t.dtype()));
            out.push(t.rank() as u8);
            for &d in t.shape() {
                out.extend_from_slice(&(d as u64).to_le_bytes());
            }
            encode_data(t, out)?;
        }
        Element::Tuple(v) => {
            out.push(1);
            out.extend_from_slice(&len_u32(v.len(), "tuple")?);
            for x in v {
                encode(x, out)?;
            }
        }
        Element::Dict(d) => {
            out.push(2);
            out.extend_from_slice(&len_u32(d.len(), "dict")?);
            for (k, x) in d {
                out.extend_from_slice(&len_u32(k.len(), "key")?);
                out.extend_from_slice(k.as_bytes());
                encode(x, out)?;
            }
        }
    }
    Ok(())
}

fn encode_data(t: &Tensor, out: &mut Vec<u8>) -> Result<()> {
    match t.dtype() {
        DType::F32 => t
            .data::<f32>()?
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F64 => t
            .data::<f64>()?
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F16 => t
            .data::<f16>()?
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_bits().to_le_bytes())),
        DType::BF16 => t
            .data::<bf16>()?
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_bits().to_le_bytes())),
        DType::I32 => t
            .data::<i32>()?
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::I64 => t
            .data::<i64>()?
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::U8 => out.extend_from_slice(&t.data::<u8>()?),
        DType::Bool => out.extend(t.data::<bool>()?.iter().map(|&b| u8::from(b))),
    }
    Ok(())
}

/// Reads one element (after its record marker).
fn decode(r: &mut Counting, depth: usize) -> std::result::Result<Element, String> {
    let s = |e: std::io::Error| e.to_string();
    if depth > 64 {
        return Err("elements nested more than 64 deep".into());
    }
    match r.u8().map_err(s)? {
        0 => {
            let code = r.u8().map_err(s)?;
            let dtype = dtype_of(code).ok_or_else(|| format!("unknown dtype code {code}"))?;
            let rank = r.u8().map_err(s)? as usize;
            if rank > MAX_RANK {
                return Err(format!("rank {rank} is larger than {MAX_RANK}"));
            }
            let mut shape = Vec::with_capacity(rank);
            let mut n: u64 = 1;
            for _ in 0..rank {
                let d = r.u64().map_err(s)?;
                n = n
                    .checked_mul(d)
                    .ok_or_else(|| "the shape's element count overflows".to_string())?;
                shape.push(usize::try_from(d).map_err(|_| format!("dimension {d} too large"))?);
            }
            let bytes = n
                .checked_mul(dtype.size_in_bytes() as u64)
                .ok_or_else(|| "the tensor's byte size overflows".to_string())?;
            let b = r.bytes(bytes).map_err(s)?;
            decode_data(dtype, &b, &shape)
        }
        1 => {
            let n = r.u32().map_err(s)? as u64;
            if n > r.len.saturating_sub(r.pos) {
                return Err(format!("a tuple of {n} elements cannot fit in the file"));
            }
            (0..n)
                .map(|_| decode(r, depth + 1))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(Element::Tuple)
        }
        2 => {
            let n = r.u32().map_err(s)? as u64;
            if n > r.len.saturating_sub(r.pos) {
                return Err(format!("a dict of {n} entries cannot fit in the file"));
            }
            let mut d = std::collections::BTreeMap::new();
            for _ in 0..n {
                let klen = r.u32().map_err(s)? as u64;
                let k = String::from_utf8(r.bytes(klen).map_err(s)?)
                    .map_err(|_| "a dict key is not UTF-8".to_string())?;
                d.insert(k, decode(r, depth + 1)?);
            }
            Ok(Element::Dict(d))
        }
        tag => Err(format!("unknown element tag {tag:#04x}")),
    }
}

fn decode_data(dtype: DType, b: &[u8], shape: &[usize]) -> std::result::Result<Element, String> {
    fn chunks<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect()
    }
    let t = match dtype {
        DType::F32 => Tensor::from_vec(chunks(b, f32::from_le_bytes), shape),
        DType::F64 => Tensor::from_vec(chunks(b, f64::from_le_bytes), shape),
        DType::F16 => Tensor::from_vec(chunks(b, |a| f16::from_bits(u16::from_le_bytes(a))), shape),
        DType::BF16 => {
            Tensor::from_vec(chunks(b, |a| bf16::from_bits(u16::from_le_bytes(a))), shape)
        }
        DType::I32 => Tensor::from_vec(chunks(b, i32::from_le_bytes), shape),
        DType::I64 => Tensor::from_vec(chunks(b, i64::from_le_bytes), shape),
        DType::U8 => Tensor::from_vec(b.to_vec(), shape),
        DType::Bool => {
            if let Some(bad) = b.iter().find(|&&x| x > 1) {
                return Err(format!("bool byte {bad} is neither 0 nor 1"));
            }
            Tensor::from_vec(b.iter().map(|&x| x == 1).collect::<Vec<bool>>(), shape)
        }
    };
    t.map(Element::Tensor).map_err(|e| e.to_string())
}
