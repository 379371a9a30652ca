//! ferroflow's input pipeline, `tf.data` in Rust: [`Dataset`] and its transformations, and
//! readers and writers for the files users bring. Users reach it as `ferroflow::data`.
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

pub use dataset::{Dataset, ElementIter};
pub use element::Element;
