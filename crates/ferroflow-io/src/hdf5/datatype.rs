//! HDF5 datatype messages (message type 0x0003): the classes Keras files use, decoded and encoded.
//!
//! Supported (HDF5 spec "Datatype Message"): fixed-point (class 0, 1/2/4/8 bytes, signed or not,
//! either byte order), floating point (class 1, IEEE 2/4/8 bytes, either byte order), fixed-length
//! strings (class 3), opaque (class 5, Keras's bfloat16), enums over an integer (class 8, numpy's
//! `bool`), and variable-length strings (class 9). Compound, array, reference and vlen sequences
//! are reported as unsupported with their class number.

use super::read::Cur;
use ferroflow_core::Result;

/// Byte order of a numeric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// Little-endian (what h5py and Keras write).
    Little,
    /// Big-endian (readable, never written).
    Big,
}

/// A character set of a string type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// `H5T_CSET_ASCII` (numpy `bytes`).
    Ascii,
    /// `H5T_CSET_UTF8` (Python `str`).
    Utf8,
}

/// An HDF5 element type, limited to what Keras files use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datatype {
    /// A fixed-point integer of `size` bytes.
    Int {
        /// Bytes per element (1, 2, 4 or 8).
        size: usize,
        /// Two's complement signed.
        signed: bool,
        /// Byte order.
        order: ByteOrder,
    },
    /// An IEEE float of `size` bytes (2, 4 or 8).
    Float {
        /// Bytes per element.
        size: usize,
        /// Byte order.
        order: ByteOrder,
    },
    /// A fixed-length string of `size` bytes (null-terminated, null-padded or space-padded).
    FixedString {
        /// Bytes per element.
        size: usize,
        /// The character set.
        charset: Charset,
    },
    /// A variable-length string: each element is a global-heap reference (16 bytes with 8-byte
    /// offsets).
    VarString {
        /// The character set.
        charset: Charset,
    },
    /// Opaque bytes with an ASCII tag (Keras stores bfloat16 as 2-byte opaque).
    Opaque {
        /// Bytes per element.
        size: usize,
        /// The tag.
        tag: String,
    },
    /// An enumeration over an integer base type (numpy's `bool` is `{FALSE: 0, TRUE: 1}` on int8).
    Enum {
        /// The base integer type.
        base: Box<Datatype>,
        /// Member names and values (as i64).
        members: Vec<(String, i64)>,
    },
}

impl Datatype {
    /// Little-endian float32, Keras's weight type.
    pub const F32: Datatype = Datatype::Float {
        size: 4,
        order: ByteOrder::Little,
    };

    /// Bytes per element in the file (16 for a variable-length string with 8-byte offsets).
    pub fn size(&self) -> usize {
        match self {
            Datatype::Int { size, .. }
            | Datatype::Float { size, .. }
            | Datatype::FixedString { size, .. }
            | Datatype::Opaque { size, .. } => *size,
            Datatype::VarString { .. } => 16,
            Datatype::Enum { base, .. } => base.size(),
        }
    }

    /// Whether this is numpy's `bool` (an enum `FALSE=0, TRUE=1` over a 1-byte integer).
    pub fn is_bool(&self) -> bool {
        match self {
            Datatype::Enum { base, members } => {
                base.size() == 1
                    && members.len() == 2
                    && members
                        .iter()
                        .any(|(n, v)| n.eq_ignore_ascii_case("false") && *v == 0)
                    && members
                        .iter()
                        .any(|(n, v)| n.eq_ignore_ascii_case("true") && *v == 1)
            }
            _ => false,
        }
    }

    /// Short human description (`int32`, `float32-be`, `vlen-string`, ...).
    pub fn describe(&self) -> String {
        match self {
            Datatype::Int {
                size,
                signed,
                order,
            } => format!(
                "{}int{}{}",
                if *signed { "" } else { "u" },
                size * 8,
                if *order == ByteOrder::Big { "-be" } else { "" }
            ),
            Datatype::Float { size, order } => format!(
                "float{}{}",
                size * 8,
                if *order == ByteOrder::Big { "-be" } else { "" }
            ),
            Datatype::FixedString { size, .. } => format!("string[{size}]"),
            Datatype::VarString { .. } => "vlen-string".into(),
            Datatype::Opaque { size, tag } => format!("opaque[{size}]{tag:?}"),
            Datatype::Enum { .. } if self.is_bool() => "bool".into(),
            Datatype::Enum { base, .. } => format!("enum({})", base.describe()),
        }
    }

    /// Decodes a datatype message starting at the cursor; leaves the cursor after it.
    pub(crate) fn decode(c: &mut Cur<'_>, depth: usize) -> Result<Datatype> {
        if depth > 4 {
            return Err(c.error("datatype nested too deeply"));
        }
        let start = c.offset();
        let b0 = c.u8()?;
        let class = b0 & 0x0f;
        let version = b0 >> 4;
        let bits = [c.u8()?, c.u8()?, c.u8()?];
        let size = c.u32()? as usize;
        if !(1..=3).contains(&version) {
            return Err(c.error_at(start, format!("datatype message version {version}")));
        }
        let order = if bits[0] & 1 == 1 {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        match class {
            0 => {
                c.skip(4)?; // bit offset, precision
                if !matches!(size, 1 | 2 | 4 | 8) {
                    return Err(c.error_at(start, format!("integer of {size} bytes")));
                }
                Ok(Datatype::Int {
                    size,
                    signed: bits[0] & 0x08 != 0,
                    order,
                })
            }
            1 => {
                c.skip(12)?;
                if bits[0] & 0x40 != 0 {
                    return Err(c.error_at(start, "VAX-order float is not supported"));
                }
                if !matches!(size, 2 | 4 | 8) {
                    return Err(c.error_at(start, format!("float of {size} bytes")));
                }
                Ok(Datatype::Float { size, order })
            }
            3 => Ok(Datatype::FixedString {
                size,
                charset: charset(bits[0] >> 4),
            }),
            5 => {
                let tag_len = bits[0] as usize;
                let tag = c.bytes(tag_len)?;
                let tag = String::from_utf8_lossy(tag)
                    .trim_end_matches('\0')
                    .to_string();
                Ok(Datatype::Opaque { size, tag })
            }
            8 => {
                let n = u16::from_le_bytes([bits[0], bits[1]]) as usize;
                let base = Datatype::decode(c, depth + 1)?;
                let Datatype::Int { .. } = base else {
                    return Err(c.error_at(start, "enum over a non-integer type"));
                };
                let mut names = Vec::new();
                for _ in 0..n {
                    let name_start = c.pos();
                    let name = c.cstr()?;
                    if version < 3 {
                        // Names are padded to a multiple of 8 bytes (counting the NUL).
                        let used = c.pos() - name_start;
                        c.skip(used.div_ceil(8) * 8 - used)?;
                    }
                    names.push(name);
                }
                let mut members = Vec::with_capacity(n.min(1024));
                for name in names {
                    let raw = c.bytes(base.size())?;
                    members.push((name, int_value(&base, raw).unwrap_or(0)));
                }
                Ok(Datatype::Enum {
                    base: Box::new(base),
                    members,
                })
            }
            9 => {
                let kind = bits[0] & 0x0f;
                let cs = charset(bits[1] & 0x0f);
                let _base = Datatype::decode(c, depth + 1)?;
                if kind != 1 {
                    return Err(c.error_at(
                        start,
                        "variable-length sequences (other than strings) are not supported",
                    ));
                }
                Ok(Datatype::VarString { charset: cs })
            }
            _ => Err(c.error_at(
                start,
                format!(
                    "datatype class {class} ({}) is not supported",
                    match class {
                        2 => "time",
                        4 => "bitfield",
                        6 => "compound",
                        7 => "reference",
                        10 => "array",
                        _ => "unknown",
                    }
                ),
            )),
        }
    }

    /// Encodes the datatype message (version 1, unpadded).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Datatype::Int {
                size,
                signed,
                order,
            } => {
                let b = (*order == ByteOrder::Big) as u8 | if *signed { 0x08 } else { 0 };
                out.extend([0x10, b, 0, 0]);
                out.extend((*size as u32).to_le_bytes());
                out.extend(0u16.to_le_bytes());
                out.extend(((*size * 8) as u16).to_le_bytes());
            }
            Datatype::Float { size, order } => {
                // (sign bit, exponent location, exponent size, mantissa size, bias)
                let (sign, eloc, esize, msize, bias): (u8, u8, u8, u8, u32) = match size {
                    2 => (15, 10, 5, 10, 15),
                    8 => (63, 52, 11, 52, 1023),
                    _ => (31, 23, 8, 23, 127),
                };
                let b0 = (*order == ByteOrder::Big) as u8 | 0x20; // implied leading mantissa bit
                out.extend([0x11, b0, sign, 0]);
                out.extend((*size as u32).to_le_bytes());
                out.extend(0u16.to_le_bytes());
                out.extend(((*size * 8) as u16).to_le_bytes());
                out.extend([eloc, esize, 0, msize]);
                out.extend(bias.to_le_bytes());
            }
            Datatype::FixedString { size, charset } => {
                // Null-padded, as numpy's `|S<n>`.
                let cs = (*charset == Charset::Utf8) as u8;
                out.extend([0x13, 1 | (cs << 4), 0, 0]);
                out.extend((*size as u32).to_le_bytes());
            }
            Datatype::VarString { charset } => {
                let cs = (*charset == Charset::Utf8) as u8;
                out.extend([0x19, 0x01, cs, 0]);
                out.extend(16u32.to_le_bytes());
                // Base type: an unsigned byte.
                out.extend(
                    Datatype::Int {
                        size: 1,
                        signed: false,
                        order: ByteOrder::Little,
                    }
                    .encode(),
                );
            }
            Datatype::Opaque { size, tag } => {
                let mut t = tag.as_bytes().to_vec();
                t.push(0);
                t.resize(t.len().div_ceil(8) * 8, 0);
                out.extend([0x15, t.len() as u8, 0, 0]);
                out.extend((*size as u32).to_le_bytes());
                out.extend(t);
            }
            Datatype::Enum { base, members } => {
                let n = members.len() as u16;
                let nb = n.to_le_bytes();
                out.extend([0x18, nb[0], nb[1], 0]);
                out.extend((base.size() as u32).to_le_bytes());
                out.extend(base.encode());
                for (name, _) in members {
                    let mut b = name.as_bytes().to_vec();
                    b.push(0);
                    b.resize(b.len().div_ceil(8) * 8, 0);
                    out.extend(b);
                }
                for (_, v) in members {
                    out.extend(&v.to_le_bytes()[..base.size()]);
                }
            }
        }
        out
    }
}

fn charset(v: u8) -> Charset {
    if v == 1 {
        Charset::Utf8
    } else {
        Charset::Ascii
    }
}

/// The value of one integer element (`None` for a u64 above `i64::MAX`).
pub(crate) fn int_value(dt: &Datatype, raw: &[u8]) -> Option<i64> {
    let Datatype::Int {
        size,
        signed,
        order,
    } = dt
    else {
        return None;
    };
    let mut b = [0u8; 8];
    let n = (*size).min(8).min(raw.len());
    match order {
        ByteOrder::Little => b[..n].copy_from_slice(&raw[..n]),
        ByteOrder::Big => {
            for i in 0..n {
                b[i] = raw[n - 1 - i];
            }
        }
    }
    let u = u64::from_le_bytes(b);
    if *signed && n < 8 {
        let shift = 64 - 8 * n as u32;
        Some(((u << shift) as i64) >> shift)
    } else if *signed {
        Some(u as i64)
    } else {
        i64::try_from(u).ok()
    }
}
