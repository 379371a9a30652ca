//! The HDF5 writer: the layout h5py's default (`libver="earliest"`) produces, which every
//! libhdf5 since 1.8 and our reader read.
//!
//! Superblock version 0 (8-byte offsets and lengths), version-1 object headers, groups as
//! symbol tables (a one-level v1 B-tree over symbol-table nodes, names in a local heap),
//! contiguous datasets without filters, version-1 attribute messages, and variable-length
//! strings in global heap collections placed right after the superblock. The file is built in
//! memory and written atomically by [`FileWriter::close`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ferroflow_core::{storage::Storage, DType, Error, Result, Tensor};

use super::datatype::{ByteOrder, Charset, Datatype};
use super::read::{SIGNATURE, UNDEF};

/// Group B-tree internal-node K (libhdf5's default): up to 32 symbol-table nodes per group.
const INTERNAL_K: usize = 16;
/// The smallest global heap collection libhdf5 makes.
const GCOL_MIN: usize = 4096;

/// A value to store as an attribute.
#[derive(Clone, Debug)]
pub enum AttrValue {
    /// A scalar variable-length UTF-8 string (what h5py writes for a Python `str`).
    String(String),
    /// A 1-D array of variable-length UTF-8 strings (h5py's list of `str`).
    Strings(Vec<String>),
    /// A 1-D array of fixed-length, null-padded ASCII strings (numpy `|S<n>`, old Keras files).
    FixedStrings(Vec<String>),
    /// Numbers of any supported dtype and shape (rank 0 for a scalar).
    Tensor(Tensor),
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::String(s.to_string())
    }
}

impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::String(s)
    }
}

impl From<Vec<String>> for AttrValue {
    fn from(v: Vec<String>) -> Self {
        AttrValue::Strings(v)
    }
}

impl From<Tensor> for AttrValue {
    fn from(t: Tensor) -> Self {
        AttrValue::Tensor(t)
    }
}

impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Tensor(Tensor::scalar(v))
    }
}

impl From<f64> for AttrValue {
    fn from(v: f64) -> Self {
        AttrValue::Tensor(Tensor::scalar(v))
    }
}

/// A dataset to write: element type, shape, raw little-endian bytes, attributes.
#[derive(Clone, Debug)]
pub struct DatasetBuilder {
    dtype: Datatype,
    shape: Vec<usize>,
    data: Vec<u8>,
    attrs: Vec<(String, AttrValue)>,
}

impl DatasetBuilder {
    /// Sets (or replaces) an attribute.
    pub fn set_attr(&mut self, name: &str, value: impl Into<AttrValue>) -> &mut Self {
        set(&mut self.attrs, name, value.into());
        self
    }
}

fn set(attrs: &mut Vec<(String, AttrValue)>, name: &str, value: AttrValue) {
    match attrs.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => attrs.push((name.to_string(), value)),
    }
}

#[derive(Clone, Debug)]
enum Member {
    Group(GroupBuilder),
    Dataset(DatasetBuilder),
}

/// A group to write: members (kept sorted by name, as HDF5 stores them) and attributes.
#[derive(Clone, Debug, Default)]
pub struct GroupBuilder {
    members: BTreeMap<String, Member>,
    attrs: Vec<(String, AttrValue)>,
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name.contains('\0') {
        return Err(Error::invalid(
            "hdf5",
            format!("invalid HDF5 member name {name:?}"),
        ));
    }
    Ok(())
}

impl GroupBuilder {
    /// Sets (or replaces) an attribute.
    pub fn set_attr(&mut self, name: &str, value: impl Into<AttrValue>) -> &mut Self {
        set(&mut self.attrs, name, value.into());
        self
    }

    /// The group at `path` (`/`-separated, relative), created with its parents if missing
    /// (h5py's `require_group`). A dataset in the way is an error.
    pub fn group(&mut self, path: &str) -> Result<&mut GroupBuilder> {
        let mut g = self;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            check_name(part)?;
            let m = g
                .members
                .entry(part.to_string())
                .or_insert_with(|| Member::Group(GroupBuilder::default()));
            g = match m {
                Member::Group(g) => g,
                Member::Dataset(_) => {
                    return Err(Error::invalid(
                        "hdf5",
                        format!("cannot create group {path:?}: {part:?} is a dataset"),
                    ))
                }
            };
        }
        Ok(g)
    }

    /// Adds (or replaces) the dataset `path` (parents are created) holding `t`'s values with
    /// its dtype and shape (bool as numpy's bool enum; bfloat16 as Keras stores it: 2-byte
    /// opaque with a `dtype="bfloat16"` attribute).
    pub fn create_dataset(&mut self, path: &str, t: &Tensor) -> Result<&mut DatasetBuilder> {
        let (parent, name) = match path.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", path),
        };
        check_name(name)?;
        let (dtype, data) = encode_tensor(t);
        let mut ds = DatasetBuilder {
            dtype,
            shape: t.shape().to_vec(),
            data,
            attrs: Vec::new(),
        };
        if t.dtype() == DType::BF16 {
            ds.set_attr("dtype", "bfloat16");
        }
        let g = self.group(parent)?;
        if let Some(Member::Group(_)) = g.members.get(name) {
            return Err(Error::invalid(
                "hdf5",
                format!("cannot create dataset {path:?}: a group has that name"),
            ));
        }
        g.members.insert(name.to_string(), Member::Dataset(ds));
        match g.members.get_mut(name) {
            Some(Member::Dataset(d)) => Ok(d),
            _ => Err(Error::invalid("hdf5", "dataset vanished")),
        }
    }

    fn max_members(&self) -> usize {
        self.members
            .values()
            .map(|m| match m {
                Member::Group(g) => g.max_members(),
                Member::Dataset(_) => 0,
            })
            .fold(self.members.len(), usize::max)
    }

    fn collect_strings<'a>(&'a self, out: &mut Vec<&'a str>) {
        collect_attr_strings(&self.attrs, out);
        for m in self.members.values() {
            match m {
                Member::Group(g) => g.collect_strings(out),
                Member::Dataset(d) => collect_attr_strings(&d.attrs, out),
            }
        }
    }
}

fn collect_attr_strings<'a>(attrs: &'a [(String, AttrValue)], out: &mut Vec<&'a str>) {
    for (_, v) in attrs {
        match v {
            AttrValue::String(s) => out.push(s),
            AttrValue::Strings(v) => out.extend(v.iter().map(|s| s.as_str())),
            _ => {}
        }
    }
}

/// The datatype and little-endian bytes of a tensor.
pub(crate) fn encode_tensor(t: &Tensor) -> (Datatype, Vec<u8>) {
    let t = t.contiguous();
    let start = t.layout().offset();
    let n = t.num_elements();
    let le = ByteOrder::Little;
    let int = |size: usize, signed: bool| Datatype::Int {
        size,
        signed,
        order: le,
    };
    match t.storage().as_ref() {
        Storage::F32(v) => (
            Datatype::Float { size: 4, order: le },
            v[start..start + n]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        Storage::F64(v) => (
            Datatype::Float { size: 8, order: le },
            v[start..start + n]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        Storage::F16(v) => (
            Datatype::Float { size: 2, order: le },
            v[start..start + n]
                .iter()
                .flat_map(|x| x.to_bits().to_le_bytes())
                .collect(),
        ),
        Storage::BF16(v) => (
            Datatype::Opaque {
                size: 2,
                tag: String::new(),
            },
            v[start..start + n]
                .iter()
                .flat_map(|x| x.to_bits().to_le_bytes())
                .collect(),
        ),
        Storage::I32(v) => (
            int(4, true),
            v[start..start + n]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        Storage::I64(v) => (
            int(8, true),
            v[start..start + n]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        Storage::U8(v) => (int(1, false), v[start..start + n].to_vec()),
        Storage::Bool(v) => (
            Datatype::Enum {
                base: Box::new(int(1, true)),
                members: vec![("FALSE".into(), 0), ("TRUE".into(), 1)],
            },
            v[start..start + n].iter().map(|&b| b as u8).collect(),
        ),
    }
}

/// An HDF5 file being written: fill [`FileWriter::root`], then [`FileWriter::close`].
///
/// ```
/// use ferroflow_io::hdf5::File;
/// use ferroflow_core::Tensor;
/// let path = std::env::temp_dir().join(format!("ff_h5_doc_{}.h5", std::process::id()));
/// let mut w = File::create(&path);
/// w.root().group("layers/dense/vars")?.set_attr("name", "dense");
/// w.root().create_dataset("layers/dense/vars/0", &Tensor::from_vec(vec![1.0f32, 2.0], &[2])?)?;
/// w.close()?;
/// let f = File::open(&path)?;
/// assert_eq!(f.dataset("layers/dense/vars/0")?.read()?.to_vec::<f32>()?, vec![1.0, 2.0]);
/// assert_eq!(f.group("layers/dense/vars")?.attr("name")?.as_string()?, "dense");
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct FileWriter {
    path: PathBuf,
    root: GroupBuilder,
}

impl FileWriter {
    pub(crate) fn new(path: impl AsRef<Path>) -> FileWriter {
        FileWriter {
            path: path.as_ref().to_path_buf(),
            root: GroupBuilder::default(),
        }
    }

    /// The root group.
    pub fn root(&mut self) -> &mut GroupBuilder {
        &mut self.root
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        to_bytes(&self.root, &self.path.display().to_string())
    }

    /// Writes the file atomically (temporary file, fsync, rename).
    pub fn close(self) -> Result<()> {
        let bytes = self.to_bytes()?;
        crate::atomic::write_atomic("hdf5", &self.path, &bytes)
    }
}

struct Ctx<'a> {
    buf: Vec<u8>,
    leaf_k: usize,
    heap_ids: HashMap<&'a str, (u64, u32)>,
    file: String,
}

impl Ctx<'_> {
    fn align8(&mut self) {
        let n = self.buf.len().div_ceil(8) * 8;
        self.buf.resize(n, 0);
    }

    fn at(&self) -> u64 {
        self.buf.len() as u64
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend(v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend(v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.buf.extend(v.to_le_bytes());
    }
}

/// Serialises a tree of groups.
pub(crate) fn to_bytes(root: &GroupBuilder, file: &str) -> Result<Vec<u8>> {
    let max = root.max_members();
    let leaf_k = 4usize.max(max.div_ceil(4 * INTERNAL_K));
    if leaf_k > u16::MAX as usize / 2 {
        return Err(Error::invalid(
            file,
            format!("a group with {max} members is too large to write"),
        ));
    }
    let mut ctx = Ctx {
        buf: Vec::new(),
        leaf_k,
        heap_ids: HashMap::new(),
        file: file.to_string(),
    };
    // Superblock v0, patched at the end.
    ctx.buf.extend(SIGNATURE);
    ctx.buf.extend([0, 0, 0, 0, 0, 8, 8, 0]);
    ctx.u16(leaf_k as u16);
    ctx.u16(INTERNAL_K as u16);
    ctx.u32(0);
    ctx.u64(0); // base address
    ctx.u64(UNDEF); // free-space info
    ctx.u64(0); // EOF, patched
    ctx.u64(UNDEF); // driver info
    ctx.buf.extend([0u8; 40]); // root symbol table entry, patched
                               // Variable-length strings of every attribute, in global heap collections.
    let mut strings = Vec::new();
    root.collect_strings(&mut strings);
    write_global_heaps(&mut ctx, strings);
    let (header, btree, heap) = write_group(&mut ctx, root, "/")?;
    let eof = ctx.at();
    ctx.buf[40..48].copy_from_slice(&eof.to_le_bytes());
    let mut entry = Vec::with_capacity(40);
    entry.extend(0u64.to_le_bytes());
    entry.extend(header.to_le_bytes());
    entry.extend(1u32.to_le_bytes());
    entry.extend(0u32.to_le_bytes());
    entry.extend(btree.to_le_bytes());
    entry.extend(heap.to_le_bytes());
    ctx.buf[56..96].copy_from_slice(&entry);
    Ok(ctx.buf)
}

fn write_global_heaps<'a>(ctx: &mut Ctx<'a>, strings: Vec<&'a str>) {
    let mut pending: Vec<&'a str> = Vec::new();
    for s in strings {
        if !s.is_empty() && !ctx.heap_ids.contains_key(s) && !pending.contains(&s) {
            pending.push(s);
        }
    }
    for chunk in pending.chunks(u16::MAX as usize - 1) {
        ctx.align8();
        let start = ctx.at();
        let used: usize = chunk.iter().map(|s| 16 + s.len().div_ceil(8) * 8).sum();
        let size = GCOL_MIN.max(16 + used + 16);
        ctx.buf.extend(b"GCOL");
        ctx.buf.extend([1, 0, 0, 0]);
        ctx.u64(size as u64);
        for (i, s) in chunk.iter().enumerate() {
            let idx = (i + 1) as u16;
            ctx.u16(idx);
            ctx.u16(1);
            ctx.u32(0);
            ctx.u64(s.len() as u64);
            ctx.buf.extend(s.as_bytes());
            ctx.align8();
            ctx.heap_ids.insert(s, (start, idx as u32));
        }
        // The free-space object (index 0) covers the rest, its own header included.
        let free = start as usize + size - ctx.buf.len();
        ctx.u16(0);
        ctx.u16(0);
        ctx.u32(0);
        ctx.u64(free as u64);
        ctx.buf.resize(start as usize + size, 0);
    }
}

/// Writes a group and everything below it; returns (object header, B-tree, local heap).
fn write_group(ctx: &mut Ctx<'_>, g: &GroupBuilder, path: &str) -> Result<(u64, u64, u64)> {
    // Children first: their addresses go into this group's symbol table.
    let mut entries = Vec::with_capacity(g.members.len());
    for (name, m) in &g.members {
        let child_path = if path == "/" {
            format!("/{name}")
        } else {
            format!("{path}/{name}")
        };
        match m {
            Member::Group(sub) => {
                let (h, b, l) = write_group(ctx, sub, &child_path)?;
                entries.push((name.as_str(), h, Some((b, l))));
            }
            Member::Dataset(d) => {
                let h = write_dataset(ctx, d, &child_path)?;
                entries.push((name.as_str(), h, None));
            }
        }
    }
    // Local heap: the empty name at 0, then each name NUL-terminated, 8-byte padded.
    let mut heap_data = vec![0u8; 8];
    let mut offsets = Vec::with_capacity(entries.len());
    for (name, _, _) in &entries {
        offsets.push(heap_data.len() as u64);
        heap_data.extend(name.as_bytes());
        heap_data.push(0);
        heap_data.resize(heap_data.len().div_ceil(8) * 8, 0);
    }
    ctx.align8();
    let heap = ctx.at();
    ctx.buf.extend(b"HEAP");
    ctx.buf.extend([0, 0, 0, 0]);
    ctx.u64(heap_data.len() as u64);
    ctx.u64(1); // no free block (H5HL_FREE_NULL)
    ctx.u64(heap + 32);
    ctx.buf.extend(&heap_data);
    // Symbol table nodes of 2·K_leaf entries each, allocated full size.
    let per = 2 * ctx.leaf_k;
    let mut nodes = Vec::new();
    for (ci, chunk) in entries.chunks(per).enumerate() {
        ctx.align8();
        let at = ctx.at();
        ctx.buf.extend(b"SNOD");
        ctx.buf.extend([1, 0]);
        ctx.u16(chunk.len() as u16);
        for (j, (_, header, scratch)) in chunk.iter().enumerate() {
            ctx.u64(offsets[ci * per + j]);
            ctx.u64(*header);
            match scratch {
                Some((b, l)) => {
                    ctx.u32(1);
                    ctx.u32(0);
                    ctx.u64(*b);
                    ctx.u64(*l);
                }
                None => {
                    ctx.u32(0);
                    ctx.u32(0);
                    ctx.buf.extend([0u8; 16]);
                }
            }
        }
        ctx.buf.resize(at as usize + 8 + per * 40, 0);
        let last = offsets[ci * per + chunk.len() - 1];
        nodes.push((at, last));
    }
    if nodes.len() > 2 * INTERNAL_K {
        return Err(Error::invalid(
            &ctx.file,
            format!("group {path:?} has too many members to write"),
        ));
    }
    // One leaf-level B-tree node over the symbol table nodes, allocated full size.
    ctx.align8();
    let btree = ctx.at();
    ctx.buf.extend(b"TREE");
    ctx.buf.extend([0, 0]);
    ctx.u16(nodes.len() as u16);
    ctx.u64(UNDEF);
    ctx.u64(UNDEF);
    ctx.u64(0);
    for (child, last) in &nodes {
        ctx.u64(*child);
        ctx.u64(*last);
    }
    ctx.buf
        .resize(btree as usize + 24 + (4 * INTERNAL_K + 1) * 8, 0);
    // The object header: the symbol table message, then the attributes.
    let mut msgs = Vec::new();
    let mut st = Vec::with_capacity(16);
    st.extend(btree.to_le_bytes());
    st.extend(heap.to_le_bytes());
    msgs.push((0x11u16, 0u8, st));
    for (name, v) in &g.attrs {
        msgs.push((0x0c, 0, encode_attr(ctx, name, v, path)?));
    }
    let header = write_header(ctx, msgs, path)?;
    Ok((header, btree, heap))
}

fn write_dataset(ctx: &mut Ctx<'_>, d: &DatasetBuilder, path: &str) -> Result<u64> {
    let mut msgs = vec![
        (0x01u16, 0u8, encode_dataspace(&d.shape)),
        (0x03, 1, d.dtype.encode()),
        // Fill value v2: allocation late, write if set, no fill value defined.
        (0x05, 1, vec![2, 2, 2, 0]),
    ];
    let layout_at = msgs.len();
    msgs.push((0x08, 0, Vec::new()));
    for (name, v) in &d.attrs {
        msgs.push((0x0c, 0, encode_attr(ctx, name, v, path)?));
    }
    // The data follows its header; the layout message needs its address, so compute the
    // header's size first (it does not depend on the address).
    let mut layout = vec![3u8, 1];
    layout.extend(0u64.to_le_bytes());
    layout.extend((d.data.len() as u64).to_le_bytes());
    msgs[layout_at].2 = layout.clone();
    let header_len = 16
        + msgs
            .iter()
            .map(|m| 8 + m.2.len().div_ceil(8) * 8)
            .sum::<usize>();
    ctx.align8();
    let data_addr = if d.data.is_empty() {
        UNDEF
    } else {
        ctx.at() + header_len as u64
    };
    layout[2..10].copy_from_slice(&data_addr.to_le_bytes());
    msgs[layout_at].2 = layout;
    let header = write_header(ctx, msgs, path)?;
    debug_assert!(d.data.is_empty() || ctx.at() == data_addr);
    ctx.buf.extend(&d.data);
    Ok(header)
}

/// A version-1 object header holding `msgs` (type, flags, data); returns its address.
fn write_header(ctx: &mut Ctx<'_>, msgs: Vec<(u16, u8, Vec<u8>)>, path: &str) -> Result<u64> {
    ctx.align8();
    let at = ctx.at();
    let size: usize = msgs.iter().map(|m| 8 + m.2.len().div_ceil(8) * 8).sum();
    let size = u32::try_from(size).map_err(|_| {
        Error::invalid(
            &ctx.file,
            format!("object {path:?} has too many attributes"),
        )
    })?;
    ctx.buf.extend([1, 0]);
    ctx.u16(msgs.len() as u16);
    ctx.u32(1);
    ctx.u32(size);
    ctx.u32(0);
    for (t, flags, data) in msgs {
        let padded = data.len().div_ceil(8) * 8;
        let len = u16::try_from(padded).map_err(|_| {
            Error::invalid(
                &ctx.file,
                format!(
                    "a header message of {path:?} is {padded} bytes; HDF5 limits them to 65535 (Keras splits long attribute lists into name0, name1, ...)"
                ),
            )
        })?;
        ctx.u16(t);
        ctx.u16(len);
        ctx.buf.extend([flags, 0, 0, 0]);
        ctx.buf.extend(&data);
        ctx.buf.resize(ctx.buf.len() + padded - data.len(), 0);
    }
    Ok(at)
}

/// A version-1 dataspace (rank 0 = scalar), with max dims = dims.
fn encode_dataspace(shape: &[usize]) -> Vec<u8> {
    let rank = shape.len() as u8;
    let mut out = vec![1, rank, (rank > 0) as u8, 0, 0, 0, 0, 0];
    for _ in 0..2 {
        for &d in shape {
            out.extend((d as u64).to_le_bytes());
        }
    }
    out
}

/// A version-1 attribute message.
fn encode_attr(ctx: &Ctx<'_>, name: &str, v: &AttrValue, path: &str) -> Result<Vec<u8>> {
    let vlen = |s: &str| -> Vec<u8> {
        let mut e = Vec::with_capacity(16);
        e.extend((s.len() as u32).to_le_bytes());
        let (coll, idx) = ctx.heap_ids.get(s).copied().unwrap_or((0, 0));
        e.extend(coll.to_le_bytes());
        e.extend(idx.to_le_bytes());
        e
    };
    let utf8 = Datatype::VarString {
        charset: Charset::Utf8,
    };
    let (dtype, shape, data): (Datatype, Vec<usize>, Vec<u8>) = match v {
        AttrValue::String(s) => (utf8, vec![], vlen(s)),
        AttrValue::Strings(list) => (
            utf8,
            vec![list.len()],
            list.iter().flat_map(|s| vlen(s)).collect(),
        ),
        AttrValue::FixedStrings(list) => {
            let size = list.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
            let mut data = Vec::with_capacity(size * list.len());
            for s in list {
                let mut b = s.as_bytes().to_vec();
                b.resize(size, 0);
                data.extend(b);
            }
            (
                Datatype::FixedString {
                    size,
                    charset: Charset::Ascii,
                },
                vec![list.len()],
                data,
            )
        }
        AttrValue::Tensor(t) => {
            let (dt, data) = encode_tensor(t);
            (dt, t.shape().to_vec(), data)
        }
    };
    let dt = dtype.encode();
    let ds = encode_dataspace(&shape);
    let mut name_b = name.as_bytes().to_vec();
    name_b.push(0);
    let too_long = || {
        Error::invalid(
            &ctx.file,
            format!(
                "attribute {name:?} of {path:?} is too large for an HDF5 object header (64 KiB)"
            ),
        )
    };
    let mut out = vec![1u8, 0];
    out.extend(
        u16::try_from(name_b.len())
            .map_err(|_| too_long())?
            .to_le_bytes(),
    );
    out.extend((dt.len() as u16).to_le_bytes());
    out.extend((ds.len() as u16).to_le_bytes());
    for part in [name_b, dt, ds] {
        let n = part.len().div_ceil(8) * 8;
        out.extend(&part);
        out.resize(out.len() + n - part.len(), 0);
    }
    out.extend(data);
    if out.len() > 65528 {
        return Err(too_long());
    }
    Ok(out)
}
