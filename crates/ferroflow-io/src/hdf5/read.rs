//! The HDF5 reader: superblock, object headers, groups, datasets and attributes.
//!
//! The whole file is read into memory (Keras weight files are read whole anyway) and every
//! offset or length taken from the file goes through [`Reader::slice`] or a [`Cur`], which
//! check it against the file's size: a corrupt or truncated file is an [`Error`] naming the
//! file and the byte offset, never a panic, and no allocation is sized by an unchecked number.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use ferroflow_core::{DType, Error, Result, Tensor};

use super::datatype::{int_value, ByteOrder, Datatype};

/// The HDF5 signature, at offset 0 (or 512, 1024, ... after a user block).
pub(crate) const SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];
/// The "undefined address" value (all bits set).
pub(crate) const UNDEF: u64 = u64::MAX;

const MAX_CONTINUATIONS: usize = 4096;
const MAX_BTREE_DEPTH: usize = 32;
const MAX_RANK: usize = 32;
const MAX_PATH_DEPTH: usize = 256;

/// The bytes of an open file and the sizes from its superblock.
pub(crate) struct Reader {
    pub(crate) name: String,
    pub(crate) data: Vec<u8>,
    /// Size of file offsets ("addresses") in bytes.
    pub(crate) so: usize,
    /// Size of lengths in bytes.
    pub(crate) sl: usize,
    /// Base address: every address is relative to it.
    pub(crate) base: u64,
    pub(crate) superblock_version: u8,
}

impl Reader {
    /// An error naming the file and a byte offset.
    pub(crate) fn err(&self, at: u64, msg: impl std::fmt::Display) -> Error {
        Error::invalid(
            &self.name,
            format!(
                "corrupt, truncated or unsupported HDF5 file {}: {msg} (at byte offset {at:#x})",
                self.name
            ),
        )
    }

    /// `len` bytes at file address `addr` (relative to the base address), bounds-checked.
    pub(crate) fn slice(&self, addr: u64, len: u64, what: &str) -> Result<&[u8]> {
        let start = self.abs(addr, what)?;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.data.len() as u64)
            .ok_or_else(|| {
                self.err(
                    start,
                    format!(
                        "{what} of {len} bytes runs past the end of the file ({} bytes)",
                        self.data.len()
                    ),
                )
            })?;
        Ok(&self.data[start as usize..end as usize])
    }

    /// The absolute offset of address `addr`, checked to lie inside the file.
    fn abs(&self, addr: u64, what: &str) -> Result<u64> {
        if addr == UNDEF {
            return Err(self.err(0, format!("{what} has an undefined address")));
        }
        let start = self
            .base
            .checked_add(addr)
            .ok_or_else(|| self.err(addr, format!("{what} address {addr:#x} overflows")))?;
        if start > self.data.len() as u64 {
            return Err(self.err(
                start,
                format!(
                    "{what} address {addr:#x} is past the end of the file ({} bytes)",
                    self.data.len()
                ),
            ));
        }
        Ok(start)
    }

    /// A cursor over the rest of the file from `addr`.
    pub(crate) fn cur(&self, addr: u64, what: &'static str) -> Result<Cur<'_>> {
        let start = self.abs(addr, what)?;
        Ok(Cur {
            r: self,
            buf: &self.data[start as usize..],
            pos: 0,
            origin: start,
            what,
        })
    }

    /// A cursor over exactly `len` bytes at `addr`.
    pub(crate) fn cur_len(&self, addr: u64, len: u64, what: &'static str) -> Result<Cur<'_>> {
        let start = self.abs(addr, what)?;
        let buf = self.slice(addr, len, what)?;
        Ok(Cur {
            r: self,
            buf,
            pos: 0,
            origin: start,
            what,
        })
    }
}

/// A bounds-checked little-endian cursor over part of the file.
pub(crate) struct Cur<'a> {
    r: &'a Reader,
    buf: &'a [u8],
    pos: usize,
    /// The absolute file offset of `buf[0]`.
    origin: u64,
    what: &'static str,
}

impl<'a> Cur<'a> {
    /// The absolute file offset of the cursor.
    pub(crate) fn offset(&self) -> u64 {
        self.origin + self.pos as u64
    }

    /// The position within the cursor's buffer.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// An error at the cursor.
    pub(crate) fn error(&self, msg: impl std::fmt::Display) -> Error {
        self.r.err(self.offset(), format!("{}: {msg}", self.what))
    }

    /// An error at absolute offset `at`.
    pub(crate) fn error_at(&self, at: u64, msg: impl std::fmt::Display) -> Error {
        self.r.err(at, format!("{}: {msg}", self.what))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() || self.pos > self.buf.len() {
            return Err(self.error(format!(
                "needs {n} more bytes but only {} are left",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An unsigned little-endian integer of `n` (1..=8) bytes.
    pub(crate) fn uint(&mut self, n: usize) -> Result<u64> {
        let b = self.bytes(n)?;
        let mut v = [0u8; 8];
        v[..n.min(8)].copy_from_slice(&b[..n.min(8)]);
        Ok(u64::from_le_bytes(v))
    }

    /// A file address (all ones = undefined, returned as [`UNDEF`]).
    pub(crate) fn addr(&mut self) -> Result<u64> {
        let n = self.r.so;
        let v = self.uint(n)?;
        Ok(if n < 8 && v == (1u64 << (8 * n)) - 1 {
            UNDEF
        } else {
            v
        })
    }

    /// A length field.
    pub(crate) fn len(&mut self) -> Result<u64> {
        self.uint(self.r.sl)
    }

    /// A NUL-terminated string (the NUL is consumed).
    pub(crate) fn cstr(&mut self) -> Result<String> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.error("unterminated string"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    /// Checks a 4-byte signature.
    fn sig(&mut self, sig: &[u8; 4]) -> Result<()> {
        let at = self.offset();
        let b = self.bytes(4)?;
        if b != sig {
            return Err(self.error_at(
                at,
                format!(
                    "expected signature {:?}, found {:?}",
                    String::from_utf8_lossy(sig),
                    String::from_utf8_lossy(b)
                ),
            ));
        }
        Ok(())
    }
}

/// Parses the superblock of `data`.
pub(crate) fn open_bytes(name: &str, data: Vec<u8>) -> Result<(Arc<Reader>, u64)> {
    let mut reader = Reader {
        name: name.to_string(),
        data,
        so: 8,
        sl: 8,
        base: 0,
        superblock_version: 0,
    };
    // The superblock is at 0 or after a user block of 512·2^k bytes.
    let mut at = 0usize;
    loop {
        if reader.data.len() >= at + 8 && reader.data[at..at + 8] == SIGNATURE {
            break;
        }
        at = if at == 0 { 512 } else { at * 2 };
        if at >= reader.data.len() {
            return Err(reader.err(
                0,
                "no HDF5 signature (\\x89HDF\\r\\n\\x1a\\n) at offset 0, 512, 1024, ...: not an HDF5 file",
            ));
        }
    }
    let version = *reader
        .data
        .get(at + 8)
        .ok_or_else(|| reader.err(at as u64 + 8, "superblock truncated"))?;
    reader.superblock_version = version;
    reader.base = at as u64;
    let root;
    match version {
        0 | 1 => {
            let sizes = reader
                .data
                .get(at + 13..at + 15)
                .ok_or_else(|| reader.err(at as u64 + 13, "superblock truncated"))?;
            let (so, sl) = (sizes[0] as usize, sizes[1] as usize);
            check_sizes(&reader, at as u64 + 13, so, sl)?;
            reader.so = so;
            reader.sl = sl;
            let mut c = Cur {
                r: &reader,
                buf: &reader.data[at..],
                pos: 0,
                origin: at as u64,
                what: "superblock",
            };
            c.skip(16)?;
            c.skip(4)?; // leaf K, internal K
            c.skip(4)?; // flags
            if version == 1 {
                c.skip(4)?;
            }
            let base = c.addr()?;
            c.addr()?; // free-space info
            let _eof = c.addr()?;
            c.addr()?; // driver info
                       // Root group symbol table entry.
            c.len()?; // link name offset
            root = c.addr()?;
            if base != 0 && base != at as u64 {
                return Err(reader.err(at as u64 + 24, format!("base address {base:#x}")));
            }
        }
        2 | 3 => {
            let sizes = reader
                .data
                .get(at + 9..at + 11)
                .ok_or_else(|| reader.err(at as u64 + 9, "superblock truncated"))?;
            let (so, sl) = (sizes[0] as usize, sizes[1] as usize);
            check_sizes(&reader, at as u64 + 9, so, sl)?;
            reader.so = so;
            reader.sl = sl;
            let mut c = Cur {
                r: &reader,
                buf: &reader.data[at..],
                pos: 0,
                origin: at as u64,
                what: "superblock",
            };
            c.skip(12)?;
            let base = c.addr()?;
            c.addr()?; // superblock extension
            c.addr()?; // EOF
            root = c.addr()?;
            if base != 0 && base != at as u64 {
                return Err(reader.err(at as u64 + 12, format!("base address {base:#x}")));
            }
        }
        v => {
            return Err(reader.err(
                at as u64 + 8,
                format!("superblock version {v} is not supported"),
            ))
        }
    }
    if root == UNDEF {
        return Err(reader.err(at as u64, "the root group has an undefined address"));
    }
    Ok((Arc::new(reader), root))
}

fn check_sizes(r: &Reader, at: u64, so: usize, sl: usize) -> Result<()> {
    if !matches!(so, 2 | 4 | 8) || !matches!(sl, 2 | 4 | 8) {
        return Err(r.err(
            at,
            format!("sizes of offsets/lengths {so}/{sl} (expected 2, 4 or 8)"),
        ));
    }
    Ok(())
}

/// One header message: its type, flags and where its data lies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Msg {
    pub(crate) mtype: u16,
    pub(crate) flags: u8,
    pub(crate) addr: u64,
    pub(crate) len: u64,
}

/// Reads every message of the object header at `addr` (version 1 or 2), following
/// continuation messages.
pub(crate) fn header_messages(r: &Reader, addr: u64) -> Result<Vec<Msg>> {
    let mut out = Vec::new();
    let mut c = r.cur(addr, "object header")?;
    let first = c.bytes(4)?;
    let mut visited = HashSet::new();
    visited.insert(addr);
    let mut blocks: Vec<(u64, u64)> = Vec::new();
    let v2;
    let mut creation_order = false;
    if first == b"OHDR" {
        v2 = true;
        let version = c.u8()?;
        if version != 2 {
            return Err(c.error(format!("OHDR version {version}")));
        }
        let flags = c.u8()?;
        if flags & 0x20 != 0 {
            c.skip(16)?;
        }
        if flags & 0x10 != 0 {
            c.skip(4)?;
        }
        creation_order = flags & 0x04 != 0;
        let size = c.uint(1 << (flags & 3))?;
        blocks.push((c.offset() - r.base, size));
    } else {
        v2 = false;
        if first[0] != 1 {
            return Err(c.error_at(
                c.offset() - 4,
                format!("object header version {} (expected 1 or 2)", first[0]),
            ));
        }
        c.u32()?; // reference count
        let size = c.u32()? as u64;
        // Messages start 8-byte aligned after the 12-byte prefix.
        blocks.push((addr + 16, size));
    }
    let mut i = 0;
    while i < blocks.len() {
        if blocks.len() > MAX_CONTINUATIONS {
            return Err(r.err(addr, "too many object header continuation blocks"));
        }
        let (baddr, blen) = blocks[i];
        i += 1;
        let mut c = r.cur_len(baddr, blen, "object header messages")?;
        let mut end = blen as usize;
        if v2 && i > 1 {
            // Continuation chunks: signature, messages, checksum (chunk 0's size excludes
            // its checksum).
            c.sig(b"OCHK")?;
            end = end.saturating_sub(4);
        }
        let hdr = if v2 {
            4 + 2 * creation_order as usize
        } else {
            8
        };
        while c.pos() + hdr <= end {
            let (mtype, len, flags) = if v2 {
                let t = c.u8()? as u16;
                let l = c.u16()? as u64;
                let f = c.u8()?;
                if creation_order {
                    c.skip(2)?;
                }
                (t, l, f)
            } else {
                let t = c.u16()?;
                let l = c.u16()? as u64;
                let f = c.u8()?;
                c.skip(3)?;
                (t, l, f)
            };
            let data_at = c.offset() - r.base;
            if len as usize > end - c.pos() {
                return Err(c.error(format!(
                    "message of type {mtype:#x} with {len} bytes overruns its header block"
                )));
            }
            c.skip(len as usize)?;
            if mtype == 0x10 {
                let mut m = r.cur_len(data_at, len, "continuation message")?;
                let caddr = m.addr()?;
                let clen = m.len()?;
                if !visited.insert(caddr) {
                    return Err(r.err(data_at, "object header continuation loop"));
                }
                blocks.push((caddr, clen));
            } else if mtype != 0 {
                out.push(Msg {
                    mtype,
                    flags,
                    addr: data_at,
                    len,
                });
            }
        }
    }
    Ok(out)
}

/// A dataspace: `None` for the null dataspace, else the dims (empty = scalar).
pub(crate) fn decode_dataspace(c: &mut Cur<'_>) -> Result<Option<Vec<u64>>> {
    let version = c.u8()?;
    let rank = c.u8()? as usize;
    let flags = c.u8()?;
    let mut null = false;
    match version {
        1 => {
            c.skip(5)?;
        }
        2 => {
            null = c.u8()? == 2;
        }
        v => return Err(c.error(format!("dataspace version {v}"))),
    }
    if rank > MAX_RANK {
        return Err(c.error(format!("dataspace of rank {rank}")));
    }
    let mut dims = Vec::with_capacity(rank);
    for _ in 0..rank {
        dims.push(c.len()?);
    }
    if flags & 1 != 0 {
        for _ in 0..rank {
            c.len()?;
        }
    }
    Ok(if null { None } else { Some(dims) })
}

/// Number of elements of `dims`, checked against overflow.
fn count(r: &Reader, at: u64, dims: &[u64]) -> Result<u64> {
    dims.iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| r.err(at, format!("dataspace {dims:?} overflows")))
}

/// What an object header describes.
pub(crate) struct Object {
    pub(crate) msgs: Vec<Msg>,
}

impl Object {
    pub(crate) fn load(r: &Reader, addr: u64) -> Result<Object> {
        Ok(Object {
            msgs: header_messages(r, addr)?,
        })
    }

    fn find(&self, t: u16) -> Option<Msg> {
        self.msgs.iter().copied().find(|m| m.mtype == t)
    }

    fn is_group(&self) -> bool {
        self.msgs
            .iter()
            .any(|m| matches!(m.mtype, 0x11 | 0x02 | 0x06))
    }
}

/// Reads a group's links (name, object header address), sorted by name.
fn group_links(r: &Reader, obj: &Object, path: &str) -> Result<Vec<(String, u64)>> {
    let mut links = Vec::new();
    if let Some(m) = obj.find(0x11) {
        let mut c = r.cur_len(m.addr, m.len, "symbol table message")?;
        let btree = c.addr()?;
        let heap = c.addr()?;
        let heap = LocalHeap::load(r, heap)?;
        let mut visited = HashSet::new();
        walk_btree(r, btree, &heap, &mut links, &mut visited, None)?;
    } else {
        for m in obj.msgs.iter().filter(|m| m.mtype == 0x02) {
            let mut c = r.cur_len(m.addr, m.len, "link info message")?;
            c.u8()?;
            let flags = c.u8()?;
            if flags & 1 != 0 {
                c.skip(8)?;
            }
            let heap = c.addr()?;
            if heap != UNDEF {
                return Err(r.err(
                    m.addr,
                    format!("group {path:?} uses dense link storage (fractal heap), which is not supported"),
                ));
            }
        }
        for m in obj.msgs.iter().filter(|m| m.mtype == 0x06) {
            if let Some(l) = decode_link(r, *m)? {
                links.push(l);
            }
        }
    }
    links.sort();
    Ok(links)
}

/// A link message (0x0006): hard links only (soft/external links are skipped).
fn decode_link(r: &Reader, m: Msg) -> Result<Option<(String, u64)>> {
    let mut c = r.cur_len(m.addr, m.len, "link message")?;
    let version = c.u8()?;
    if version != 1 {
        return Err(c.error(format!("link message version {version}")));
    }
    let flags = c.u8()?;
    let ltype = if flags & 0x08 != 0 { c.u8()? } else { 0 };
    if flags & 0x04 != 0 {
        c.skip(8)?;
    }
    if flags & 0x10 != 0 {
        c.u8()?;
    }
    let nlen = c.uint(1 << (flags & 3))? as usize;
    let name = String::from_utf8_lossy(c.bytes(nlen)?).into_owned();
    if ltype != 0 {
        return Ok(None);
    }
    Ok(Some((name, c.addr()?)))
}

/// A local heap (names of a symbol-table group).
struct LocalHeap {
    addr: u64,
    data_addr: u64,
    size: u64,
}

impl LocalHeap {
    fn load(r: &Reader, addr: u64) -> Result<LocalHeap> {
        let mut c = r.cur(addr, "local heap")?;
        c.sig(b"HEAP")?;
        c.skip(4)?;
        let size = c.len()?;
        c.len()?; // free list
        let data_addr = c.addr()?;
        r.slice(data_addr, size, "local heap data segment")?;
        Ok(LocalHeap {
            addr,
            data_addr,
            size,
        })
    }

    fn name(&self, r: &Reader, offset: u64) -> Result<String> {
        if offset >= self.size {
            return Err(r.err(
                self.addr,
                format!(
                    "name offset {offset} is outside the local heap ({} bytes)",
                    self.size
                ),
            ));
        }
        let mut c = r.cur_len(
            self.data_addr + offset,
            self.size - offset,
            "local heap name",
        )?;
        c.cstr()
    }
}

/// Collects the entries of a version-1 group B-tree.
fn walk_btree(
    r: &Reader,
    addr: u64,
    heap: &LocalHeap,
    out: &mut Vec<(String, u64)>,
    visited: &mut HashSet<u64>,
    expected_level: Option<u8>,
) -> Result<()> {
    if !visited.insert(addr) || visited.len() > 1_000_000 {
        return Err(r.err(addr, "group B-tree node visited twice (a cycle)"));
    }
    let mut c = r.cur(addr, "group B-tree node")?;
    c.sig(b"TREE")?;
    let ntype = c.u8()?;
    let level = c.u8()?;
    if ntype != 0 {
        return Err(c.error(format!("B-tree node type {ntype} in a group")));
    }
    if level as usize > MAX_BTREE_DEPTH || expected_level.is_some_and(|e| e != level) {
        return Err(c.error(format!("B-tree node level {level} out of place")));
    }
    let used = c.u16()? as usize;
    c.addr()?;
    c.addr()?;
    let mut children = Vec::with_capacity(used.min(4096));
    for _ in 0..used {
        c.len()?; // key
        children.push(c.addr()?);
    }
    for child in children {
        if level > 0 {
            walk_btree(r, child, heap, out, visited, Some(level - 1))?;
        } else {
            if !visited.insert(child) {
                return Err(r.err(child, "symbol table node referenced twice"));
            }
            let mut s = r.cur(child, "symbol table node")?;
            s.sig(b"SNOD")?;
            s.skip(2)?;
            let n = s.u16()? as usize;
            for _ in 0..n {
                let name_off = s.len()?;
                let obj = s.addr()?;
                s.skip(8 + 16)?;
                out.push((heap.name(r, name_off)?, obj));
            }
        }
    }
    Ok(())
}

/// One entry of a group: a sub-group or a dataset.
pub enum Node {
    /// A group.
    Group(Group),
    /// A dataset.
    Dataset(Dataset),
}

/// An open HDF5 file (read-only). Obtain groups and datasets by path from [`File::root`],
/// [`File::group`] and [`File::dataset`].
///
/// ```no_run
/// use ferroflow_io::hdf5::File;
/// let f = File::open("model.weights.h5")?;
/// let kernel = f.dataset("layers/dense/vars/0")?.read()?;
/// println!("{:?} {:?}", kernel.shape(), f.group("layers/dense/vars")?.attr("name")?.as_string()?);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct File {
    r: Arc<Reader>,
    root: u64,
}

impl File {
    /// Opens and checks the superblock of the HDF5 file at `path` (the whole file is read).
    pub fn open(path: impl AsRef<Path>) -> Result<File> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|e| {
            Error::invalid(
                "hdf5",
                format!("cannot read HDF5 file {}: {e}", path.display()),
            )
        })?;
        File::from_bytes(&path.display().to_string(), data)
    }

    /// Parses an HDF5 file held in memory; `name` is used in error messages.
    pub fn from_bytes(name: &str, data: Vec<u8>) -> Result<File> {
        let (r, root) = open_bytes(name, data)?;
        Ok(File { r, root })
    }

    /// Creates a file to write (see [`super::FileWriter`]); nothing is written until
    /// [`FileWriter::close`](super::FileWriter::close).
    pub fn create(path: impl AsRef<Path>) -> super::FileWriter {
        super::FileWriter::new(path)
    }

    /// The superblock version (0 for h5py's default, 2 or 3 for `libver="latest"`).
    pub fn superblock_version(&self) -> u8 {
        self.r.superblock_version
    }

    /// The root group `/`.
    pub fn root(&self) -> Result<Group> {
        Group::load(&self.r, self.root, "/".to_string())
    }

    /// The group at `path` (`"layers/dense/vars"`, relative to the root).
    pub fn group(&self, path: &str) -> Result<Group> {
        self.root()?.group(path)
    }

    /// The dataset at `path`.
    pub fn dataset(&self, path: &str) -> Result<Dataset> {
        self.root()?.dataset(path)
    }

    /// A listing of every group and dataset with shapes, element types and attributes, one
    /// per line (`/layers/dense/vars/0: float32 [8, 16]`), for `ferroflow inspect`. Data is
    /// not read; attribute values are shown shortened. Nesting deeper than 64 levels is cut.
    pub fn tree(&self) -> Result<String> {
        let mut out = String::new();
        tree_lines(&self.root()?, 0, &mut out)?;
        Ok(out)
    }
}

fn attr_summary(attrs: &[Attribute]) -> String {
    let mut s = String::new();
    for a in attrs {
        let v = match a.value() {
            Ok(Value::String(x)) => format!("{x:?}"),
            Ok(Value::Strings(v)) => format!("{v:?}"),
            Ok(Value::Tensor(t)) if t.num_elements() <= 8 => format!("{:?}", t.to_f64_vec()),
            Ok(Value::Tensor(t)) => format!("{:?}{:?}", t.dtype(), t.shape()),
            Err(_) => a.dtype.describe(),
        };
        let v = if v.len() > 80 {
            let cut: String = v.chars().take(77).collect();
            format!("{cut}...")
        } else {
            v
        };
        s.push_str(&format!(" @{}={v}", a.name));
    }
    s
}

fn tree_lines(g: &Group, depth: usize, out: &mut String) -> Result<()> {
    out.push_str(&format!("{}{}", g.path, attr_summary(&g.attrs)));
    out.push('\n');
    if depth > 64 {
        return Ok(());
    }
    for name in g.member_names() {
        match g.member(&name)? {
            Node::Group(sub) => tree_lines(&sub, depth + 1, out)?,
            Node::Dataset(d) => {
                out.push_str(&format!(
                    "{}: {} {:?}{}\n",
                    d.path,
                    d.dtype.describe(),
                    d.shape,
                    attr_summary(&d.attrs)
                ));
            }
        }
    }
    Ok(())
}

/// A group: named members (sub-groups and datasets) and attributes.
#[derive(Clone)]
pub struct Group {
    r: Arc<Reader>,
    path: String,
    links: Vec<(String, u64)>,
    attrs: Vec<Attribute>,
}

impl Group {
    fn load(r: &Arc<Reader>, addr: u64, path: String) -> Result<Group> {
        let obj = Object::load(r, addr)?;
        if !obj.is_group() {
            return Err(r.err(addr, format!("{path:?} is not a group")));
        }
        Ok(Group {
            links: group_links(r, &obj, &path)?,
            attrs: load_attributes(r, &obj, &path)?,
            r: r.clone(),
            path,
        })
    }

    /// The group's path from the root (`/layers/dense`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Member names, in byte order (as HDF5 lists them: `"0", "1", "10", "2"`).
    pub fn member_names(&self) -> Vec<String> {
        self.links.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Whether the group has a direct member `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.links.iter().any(|(n, _)| n == name)
    }

    fn child_path(&self, name: &str) -> String {
        if self.path == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.path)
        }
    }

    /// The member `name` (a direct child), as a group or a dataset.
    pub fn member(&self, name: &str) -> Result<Node> {
        let addr = self
            .links
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                Error::invalid(
                    &self.r.name,
                    format!(
                        "{}: no member {name:?} in group {:?} (members: {})",
                        self.r.name,
                        self.path,
                        self.member_names().join(", ")
                    ),
                )
            })?;
        let path = self.child_path(name);
        let obj = Object::load(&self.r, addr)?;
        if obj.is_group() {
            Ok(Node::Group(Group {
                links: group_links(&self.r, &obj, &path)?,
                attrs: load_attributes(&self.r, &obj, &path)?,
                r: self.r.clone(),
                path,
            }))
        } else {
            Ok(Node::Dataset(Dataset::from_object(
                &self.r, &obj, addr, path,
            )?))
        }
    }

    /// Follows a `/`-separated path of members.
    fn walk(&self, path: &str) -> Result<Node> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts.len() > MAX_PATH_DEPTH {
            return Err(Error::invalid(
                &self.r.name,
                format!("path too deep: {path:?}"),
            ));
        }
        let mut node = Node::Group(self.clone());
        for p in parts {
            node = match node {
                Node::Group(g) => g.member(p)?,
                Node::Dataset(d) => {
                    return Err(Error::invalid(
                        &self.r.name,
                        format!("{}: {:?} is a dataset, not a group", self.r.name, d.path),
                    ))
                }
            };
        }
        Ok(node)
    }

    /// The group at `path` below this one.
    pub fn group(&self, path: &str) -> Result<Group> {
        match self.walk(path)? {
            Node::Group(g) => Ok(g),
            Node::Dataset(d) => Err(Error::invalid(
                &self.r.name,
                format!("{}: {:?} is a dataset, not a group", self.r.name, d.path),
            )),
        }
    }

    /// The dataset at `path` below this one.
    pub fn dataset(&self, path: &str) -> Result<Dataset> {
        match self.walk(path)? {
            Node::Dataset(d) => Ok(d),
            Node::Group(g) => Err(Error::invalid(
                &self.r.name,
                format!("{}: {:?} is a group, not a dataset", self.r.name, g.path),
            )),
        }
    }

    /// The group's attributes.
    pub fn attrs(&self) -> &[Attribute] {
        &self.attrs
    }

    /// The attribute `name`.
    pub fn attr(&self, name: &str) -> Result<&Attribute> {
        find_attr(&self.r, &self.attrs, &self.path, name)
    }
}

fn find_attr<'a>(
    r: &Reader,
    attrs: &'a [Attribute],
    path: &str,
    name: &str,
) -> Result<&'a Attribute> {
    attrs.iter().find(|a| a.name == name).ok_or_else(|| {
        Error::invalid(
            &r.name,
            format!(
                "{}: {path:?} has no attribute {name:?} (attributes: {})",
                r.name,
                attrs
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Where a dataset's elements are.
#[derive(Clone, Debug)]
enum Layout {
    /// In the object header (address and length of the raw bytes).
    Compact(u64, u64),
    /// One contiguous block (address may be undefined when nothing was written).
    Contiguous(u64, u64),
    /// Chunked or virtual: not supported.
    Unsupported(String),
}

/// A dataset: shape, element type, attributes; [`Dataset::read`] gives a [`Tensor`].
#[derive(Clone)]
pub struct Dataset {
    r: Arc<Reader>,
    path: String,
    shape: Vec<usize>,
    dtype: Datatype,
    layout: Layout,
    attrs: Vec<Attribute>,
}

impl Dataset {
    fn from_object(r: &Arc<Reader>, obj: &Object, addr: u64, path: String) -> Result<Dataset> {
        let need = |t: u16, what: &str| {
            obj.find(t).ok_or_else(|| {
                r.err(
                    addr,
                    format!("object {path:?} is neither a group nor a dataset (no {what} message)"),
                )
            })
        };
        let sm = need(0x01, "dataspace")?;
        let tm = need(0x03, "datatype")?;
        let lm = need(0x08, "layout")?;
        if tm.flags & 0x02 != 0 {
            return Err(r.err(
                tm.addr,
                format!(
                    "dataset {path:?} uses a shared (committed) datatype, which is not supported"
                ),
            ));
        }
        let dims = decode_dataspace(&mut r.cur_len(sm.addr, sm.len, "dataspace message")?)?
            .unwrap_or_default();
        let dtype = Datatype::decode(&mut r.cur_len(tm.addr, tm.len, "datatype message")?, 0)?;
        let mut c = r.cur_len(lm.addr, lm.len, "layout message")?;
        let version = c.u8()?;
        let layout = match version {
            3 | 4 => match c.u8()? {
                0 => {
                    let n = c.u16()? as u64;
                    Layout::Compact(lm.addr + 4, n)
                }
                1 => Layout::Contiguous(c.addr()?, c.len()?),
                2 => Layout::Unsupported("chunked".into()),
                3 => Layout::Unsupported("virtual".into()),
                k => return Err(c.error(format!("layout class {k}"))),
            },
            1 | 2 => {
                let rank = c.u8()? as usize;
                let class = c.u8()?;
                c.skip(5)?;
                match class {
                    1 => {
                        let a = c.addr()?;
                        let bytes = count(r, lm.addr, &dims)?.saturating_mul(dtype.size() as u64);
                        c.skip(4 * rank)?;
                        Layout::Contiguous(a, bytes)
                    }
                    0 => {
                        c.skip(4 * rank)?;
                        let n = c.u32()? as u64;
                        Layout::Compact(c.offset() - r.base, n)
                    }
                    _ => Layout::Unsupported("chunked".into()),
                }
            }
            v => return Err(c.error(format!("layout message version {v}"))),
        };
        let layout = if obj.find(0x0b).is_some() {
            Layout::Unsupported("filtered (compressed)".into())
        } else {
            layout
        };
        let n = count(r, sm.addr, &dims)?;
        let shape = dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| r.err(sm.addr, "dimension too large")))
            .collect::<Result<Vec<_>>>()?;
        let bytes = n.checked_mul(dtype.size() as u64);
        if let (Layout::Contiguous(_, len) | Layout::Compact(_, len), Some(b)) = (&layout, bytes) {
            if *len < b {
                return Err(r.err(
                    lm.addr,
                    format!("dataset {path:?} holds {len} bytes but its shape {shape:?} of {} needs {b}", dtype.describe()),
                ));
            }
        }
        Ok(Dataset {
            attrs: load_attributes(r, obj, &path)?,
            r: r.clone(),
            path,
            shape,
            dtype,
            layout,
        })
    }

    /// The dataset's path from the root.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The shape (empty for a scalar).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type in the file.
    pub fn datatype(&self) -> &Datatype {
        &self.dtype
    }

    /// The dataset's attributes.
    pub fn attrs(&self) -> &[Attribute] {
        &self.attrs
    }

    /// The attribute `name`.
    pub fn attr(&self, name: &str) -> Result<&Attribute> {
        find_attr(&self.r, &self.attrs, &self.path, name)
    }

    /// The raw element bytes, as stored.
    pub fn raw(&self) -> Result<Vec<u8>> {
        let n = self
            .shape
            .iter()
            .try_fold(self.dtype.size() as u64, |a, &d| a.checked_mul(d as u64));
        match (&self.layout, n) {
            (Layout::Unsupported(kind), _) => Err(Error::invalid(
                &self.r.name,
                format!(
                    "{}: dataset {:?} is stored {kind}, which is not supported (only contiguous and compact datasets without filters, as Keras writes them)",
                    self.r.name, self.path
                ),
            )),
            (_, None) => Err(Error::invalid(
                &self.r.name,
                format!("{}: dataset {:?} is too large", self.r.name, self.path),
            )),
            (_, Some(0)) => Ok(Vec::new()),
            (Layout::Contiguous(a, _) | Layout::Compact(a, _), Some(n)) => {
                Ok(self.r.slice(*a, n, "dataset data")?.to_vec())
            }
        }
    }

    /// Reads the dataset as a tensor (see [`decode_tensor`] for the dtype mapping). A bfloat16
    /// dataset as Keras writes it (2-byte opaque with a `dtype="bfloat16"` attribute) becomes a
    /// bfloat16 tensor.
    pub fn read(&self) -> Result<Tensor> {
        let raw = self.raw()?;
        let bf16 = matches!(&self.dtype, Datatype::Opaque { size: 2, .. })
            && self
                .attr("dtype")
                .ok()
                .and_then(|a| a.as_string().ok())
                .as_deref()
                == Some("bfloat16");
        if bf16 {
            let v: Vec<half::bf16> = raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])))
                .collect();
            return Tensor::from_vec(v, &self.shape);
        }
        decode_tensor(&self.r.name, &self.path, &self.dtype, &raw, &self.shape)
    }

    /// Reads a string dataset (fixed or variable length) as a flat list.
    pub fn read_strings(&self) -> Result<Vec<String>> {
        let raw = self.raw()?;
        decode_strings(&self.r, &self.path, &self.dtype, &raw)
    }
}

/// Converts raw little/big-endian elements to a tensor: float16/32/64 keep their dtype; int8,
/// int16, int32 and uint16 become int32; int64 and uint32 become int64; uint64 becomes int64 (an
/// error above `i64::MAX`); uint8 stays uint8; numpy's bool enum becomes bool.
pub fn decode_tensor(
    file: &str,
    what: &str,
    dt: &Datatype,
    raw: &[u8],
    shape: &[usize],
) -> Result<Tensor> {
    let unsupported = || {
        Error::invalid(
            file,
            format!(
                "{file}: {what:?} has element type {}, which has no tensor dtype",
                dt.describe()
            ),
        )
    };
    let size = dt.size();
    if size == 0 || !raw.len().is_multiple_of(size) {
        return Err(unsupported());
    }
    let ordered = |c: &[u8], order: ByteOrder| -> [u8; 8] {
        let mut b = [0u8; 8];
        match order {
            ByteOrder::Little => b[..c.len()].copy_from_slice(c),
            ByteOrder::Big => {
                for (i, x) in c.iter().rev().enumerate() {
                    b[i] = *x;
                }
            }
        }
        b
    };
    match dt {
        Datatype::Float { size, order } => {
            let it = raw.chunks_exact(*size).map(|c| ordered(c, *order));
            match size {
                2 => Tensor::from_vec(
                    it.map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])))
                        .collect::<Vec<_>>(),
                    shape,
                ),
                4 => Tensor::from_vec(
                    it.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect::<Vec<_>>(),
                    shape,
                ),
                _ => Tensor::from_vec(it.map(f64::from_le_bytes).collect::<Vec<_>>(), shape),
            }
        }
        Datatype::Int { size, signed, .. } => {
            let vals = raw.chunks_exact(*size).map(|c| int_value(dt, c));
            match (size, signed) {
                (1, false) => Tensor::from_vec(raw.to_vec(), shape),
                (1 | 2, _) | (4, true) => Tensor::from_vec(
                    vals.map(|v| v.unwrap_or(0) as i32).collect::<Vec<i32>>(),
                    shape,
                ),
                _ => {
                    let v = vals
                        .map(|v| {
                            v.ok_or_else(|| {
                                Error::invalid(
                                    file,
                                    format!(
                                        "{file}: {what:?} holds a uint64 above the int64 range"
                                    ),
                                )
                            })
                        })
                        .collect::<Result<Vec<i64>>>()?;
                    Tensor::from_vec(v, shape)
                }
            }
        }
        Datatype::Enum { .. } if dt.is_bool() => {
            Tensor::from_vec(raw.iter().map(|&b| b != 0).collect::<Vec<bool>>(), shape)
        }
        _ => Err(unsupported()),
    }
}

/// Decodes fixed- or variable-length string elements.
fn decode_strings(r: &Reader, what: &str, dt: &Datatype, raw: &[u8]) -> Result<Vec<String>> {
    match dt {
        Datatype::FixedString { size, .. } if *size > 0 => Ok(raw
            .chunks_exact(*size)
            .map(|c| {
                let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                String::from_utf8_lossy(&c[..end]).trim_end().to_string()
            })
            .collect()),
        Datatype::VarString { .. } => {
            let elem = 4 + r.so + 4;
            raw.chunks_exact(elem)
                .map(|c| {
                    let mut cur = Cur {
                        r,
                        buf: c,
                        pos: 0,
                        origin: 0,
                        what: "variable-length string",
                    };
                    let len = cur.u32()? as u64;
                    let coll = cur.addr()?;
                    let idx = cur.u32()?;
                    if len == 0 {
                        return Ok(String::new());
                    }
                    let bytes = global_heap_object(r, coll, idx)?;
                    let b = bytes.get(..len as usize).ok_or_else(|| {
                        r.err(
                            coll,
                            format!(
                                "global heap object {idx} is shorter than the string length {len}"
                            ),
                        )
                    })?;
                    Ok(String::from_utf8_lossy(b).into_owned())
                })
                .collect()
        }
        _ => Err(Error::invalid(
            &r.name,
            format!(
                "{}: {what:?} has element type {}, not a string",
                r.name,
                dt.describe()
            ),
        )),
    }
}

/// The bytes of object `idx` of the global heap collection at `addr`.
fn global_heap_object(r: &Reader, addr: u64, idx: u32) -> Result<&[u8]> {
    let mut c = r.cur(addr, "global heap collection")?;
    c.sig(b"GCOL")?;
    c.skip(4)?;
    let size = c.len()?;
    let mut c = r.cur_len(addr, size, "global heap collection")?;
    c.skip(8 + r.sl)?;
    while c.remaining() >= 8 + r.sl {
        let i = c.u16()? as u32;
        c.skip(6)?;
        let n = c.len()?;
        if i == 0 {
            break;
        }
        let at = c.pos();
        if i == idx {
            return c.bytes(n as usize);
        }
        let padded = (n as usize).div_ceil(8).saturating_mul(8);
        if padded > c.remaining() {
            return Err(c.error(format!("object {i} of {n} bytes overruns the collection")));
        }
        c.skip(padded)?;
        let _ = at;
    }
    Err(r.err(addr, format!("global heap collection has no object {idx}")))
}

/// An attribute: a name, an element type, a shape and its value.
#[derive(Clone)]
pub struct Attribute {
    r: Arc<Reader>,
    owner: String,
    /// The attribute's name.
    pub name: String,
    /// The element type.
    pub dtype: Datatype,
    /// The shape (empty for a scalar; `None` for HDF5's null dataspace).
    pub shape: Option<Vec<usize>>,
    raw: Vec<u8>,
}

/// An attribute value, decoded.
#[derive(Clone, Debug)]
pub enum Value {
    /// A scalar string (fixed or variable length).
    String(String),
    /// An array of strings, flattened (fixed or variable length).
    Strings(Vec<String>),
    /// Numbers (a rank-0 tensor for a scalar).
    Tensor(Tensor),
}

impl PartialEq for Value {
    /// Strings compare as strings; tensors by dtype, shape and values.
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Strings(a), Value::Strings(b)) => a == b,
            (Value::Tensor(a), Value::Tensor(b)) => {
                a.dtype() == b.dtype() && a.shape() == b.shape() && a.to_f64_vec() == b.to_f64_vec()
            }
            _ => false,
        }
    }
}

impl Attribute {
    /// The decoded value.
    pub fn value(&self) -> Result<Value> {
        let what = format!("attribute {:?} of {:?}", self.name, self.owner);
        match &self.dtype {
            Datatype::FixedString { .. } | Datatype::VarString { .. } => {
                let v = decode_strings(&self.r, &what, &self.dtype, &self.raw)?;
                match &self.shape {
                    Some(s) if s.is_empty() => {
                        Ok(Value::String(v.into_iter().next().unwrap_or_default()))
                    }
                    _ => Ok(Value::Strings(v)),
                }
            }
            dt => Ok(Value::Tensor(decode_tensor(
                &self.r.name,
                &what,
                dt,
                &self.raw,
                self.shape.as_deref().unwrap_or(&[0]),
            )?)),
        }
    }

    /// The value as one string (a scalar string, or a one-element array).
    pub fn as_string(&self) -> Result<String> {
        match self.value()? {
            Value::String(s) => Ok(s),
            Value::Strings(v) if v.len() == 1 => Ok(v.into_iter().next().unwrap_or_default()),
            _ => Err(self.not("a string")),
        }
    }

    /// The value as a list of strings (a scalar string gives one; an empty numeric array, as
    /// Keras writes an empty `weight_names`, gives none).
    pub fn as_strings(&self) -> Result<Vec<String>> {
        match self.value()? {
            Value::String(s) => Ok(vec![s]),
            Value::Strings(v) => Ok(v),
            Value::Tensor(t) if t.num_elements() == 0 => Ok(Vec::new()),
            _ => Err(self.not("a list of strings")),
        }
    }

    /// The value as a tensor of numbers.
    pub fn as_tensor(&self) -> Result<Tensor> {
        match self.value()? {
            Value::Tensor(t) => Ok(t),
            _ => Err(self.not("numeric")),
        }
    }

    fn not(&self, what: &str) -> Error {
        Error::invalid(
            &self.r.name,
            format!(
                "{}: attribute {:?} of {:?} is {} {:?}, not {what}",
                self.r.name,
                self.name,
                self.owner,
                self.dtype.describe(),
                self.shape
            ),
        )
    }
}

impl std::fmt::Debug for Attribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Attribute({:?}: {} {:?})",
            self.name,
            self.dtype.describe(),
            self.shape
        )
    }
}

/// Attribute messages (0x000C) of an object; dense attribute storage is reported unsupported.
fn load_attributes(r: &Arc<Reader>, obj: &Object, path: &str) -> Result<Vec<Attribute>> {
    let mut out = Vec::new();
    for m in &obj.msgs {
        if m.mtype == 0x15 {
            let mut c = r.cur_len(m.addr, m.len, "attribute info message")?;
            c.u8()?;
            let flags = c.u8()?;
            if flags & 1 != 0 {
                c.skip(2)?;
            }
            if c.addr()? != UNDEF {
                return Err(r.err(
                    m.addr,
                    format!("{path:?} keeps its attributes in dense storage (fractal heap), which is not supported"),
                ));
            }
        }
        if m.mtype != 0x0c {
            continue;
        }
        let mut c = r.cur_len(m.addr, m.len, "attribute message")?;
        let version = c.u8()?;
        let flags = c.u8()?;
        let name_len = c.u16()? as usize;
        let dt_len = c.u16()? as usize;
        let ds_len = c.u16()? as usize;
        if version == 3 {
            c.u8()?; // name charset
        } else if version != 1 && version != 2 {
            return Err(c.error(format!("attribute message version {version}")));
        }
        if flags & 0x03 != 0 {
            return Err(c.error("shared datatype/dataspace in an attribute is not supported"));
        }
        let pad = |n: usize| if version == 1 { n.div_ceil(8) * 8 } else { n };
        let name_bytes = c.bytes(pad(name_len))?;
        let name_bytes = &name_bytes[..name_len.min(name_bytes.len())];
        let name = String::from_utf8_lossy(name_bytes)
            .trim_end_matches('\0')
            .to_string();
        let dt_bytes_at = c.offset() - r.base;
        c.skip(pad(dt_len))?;
        let dtype = Datatype::decode(
            &mut r.cur_len(dt_bytes_at, dt_len as u64, "attribute datatype")?,
            0,
        )?;
        let ds_at = c.offset() - r.base;
        c.skip(pad(ds_len))?;
        let dims =
            decode_dataspace(&mut r.cur_len(ds_at, ds_len as u64, "attribute dataspace")?)?;
        let n = match &dims {
            Some(d) => count(r, ds_at, d)?,
            None => 0,
        };
        let bytes = n
            .checked_mul(dtype.size() as u64)
            .filter(|&b| b <= c.remaining() as u64)
            .ok_or_else(|| {
                c.error(format!(
                    "attribute {name:?} of {path:?} needs more data than its message holds"
                ))
            })?;
        let raw = c.bytes(bytes as usize)?.to_vec();
        let shape = dims.map(|d| d.iter().map(|&x| x as usize).collect::<Vec<usize>>());
        out.push(Attribute {
            r: r.clone(),
            owner: path.to_string(),
            name,
            dtype,
            shape,
            raw,
        });
    }
    Ok(out)
}

/// The tensor dtype a dataset of `dt` reads as (see [`decode_tensor`]).
pub fn tensor_dtype(dt: &Datatype) -> Option<DType> {
    Some(match dt {
        Datatype::Float { size: 2, .. } => DType::F16,
        Datatype::Float { size: 4, .. } => DType::F32,
        Datatype::Float { .. } => DType::F64,
        Datatype::Int {
            size: 1,
            signed: false,
            ..
        } => DType::U8,
        Datatype::Int { size: 1 | 2, .. }
        | Datatype::Int {
            size: 4,
            signed: true,
            ..
        } => DType::I32,
        Datatype::Int { .. } => DType::I64,
        Datatype::Enum { .. } if dt.is_bool() => DType::Bool,
        _ => return None,
    })
}
