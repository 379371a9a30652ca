//! A small pure-Rust HDF5 reader and writer for exactly what Keras files use.
//!
//! Reading covers what h5py writes by default (`libver="earliest"`: superblock 0, version-1
//! object headers, symbol-table groups) and its `libver="latest"` layout for small files
//! (superblock 2/3, version-2 object headers, compact link messages); datasets stored
//! contiguously or compactly; integer, float (either byte order), fixed/variable-length string,
//! opaque and numpy-bool element types; attributes in object headers. Chunked or compressed
//! datasets, dense (fractal-heap) groups and attributes, compound and array types are clear
//! "not supported" errors naming the object. Every offset read from the file is checked: a
//! corrupt or truncated file is an error naming the file and the byte offset.
//!
//! Writing produces h5py's default layout (see [`FileWriter`]), which h5py/libhdf5 and real
//! Keras read.
//!
//! ```
//! use ferroflow_io::hdf5::{AttrValue, File, Value};
//! use ferroflow_core::Tensor;
//! let path = std::env::temp_dir().join(format!("ff_h5_mod_{}.h5", std::process::id()));
//! let mut w = File::create(&path);
//! w.root().set_attr("names", AttrValue::Strings(vec!["a".into(), "b".into()]));
//! w.root().create_dataset("x", &Tensor::from_vec(vec![1i64, 2, 3], &[3])?)?;
//! w.close()?;
//! let f = File::open(&path)?;
//! assert_eq!(f.root()?.attr("names")?.value()?, Value::Strings(vec!["a".into(), "b".into()]));
//! assert_eq!(f.dataset("x")?.shape(), &[3]);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

mod datatype;
mod read;
mod write;

pub use datatype::{ByteOrder, Charset, Datatype};
pub use read::{decode_tensor, tensor_dtype, Attribute, Dataset, File, Group, Node, Value};
pub use write::{AttrValue, DatasetBuilder, FileWriter, GroupBuilder};
