//! ferroflow's input pipeline, `tf.data` in Rust: [`Dataset`] and its transformations, and
//! readers and writers for the files users bring. Users reach it as `ferroflow::data`.
//!
//! Transformations, with `tf.data`'s names and semantics: [`Dataset::map`],
//! [`Dataset::map_parallel`] (order kept), [`Dataset::filter`], [`Dataset::shuffle`],
//! [`Dataset::batch`], [`Dataset::padded_batch`], [`Dataset::unbatch`], [`Dataset::repeat`],
//! [`Dataset::take`], [`Dataset::skip`], [`Dataset::zip`], [`Dataset::concatenate`],
//! [`Dataset::enumerate`], [`Dataset::cache`], [`Dataset::cache_file`] and
//! [`Dataset::prefetch`]. Sources: [`Dataset::from_tensor_slices`], [`Dataset::from_tensors`],
//! [`Dataset::from_generator`], [`Dataset::range`] and `Dataset::from_iter` (any iterator of
//! [`Element`]s). The same seed gives the same elements in the same order on every run, whatever
//! the number of threads.
//!
//! ```
//! use ferroflow_data::{Dataset, Element};
//! use ferroflow_core::Tensor;
//! let ds = Dataset::from_tensor_slices(Tensor::from_vec(vec![1i64, 2, 3], &[3])?)?;
//! let items: Vec<i64> = ds
//!     .iter()
//!     .map(|e| e.and_then(|e| e.tensor()?.item::<i64>()))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(items, vec![1, 2, 3]);
//! # Ok::<(), ferroflow_core::Error>(())
//! ```
#![warn(missing_docs)]

mod dataset;
mod element;
pub mod io;

pub use dataset::{Cardinality, Dataset, ElementIter, PaddedShape, AUTOTUNE};
pub use element::Element;
