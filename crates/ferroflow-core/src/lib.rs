//! ferroflow-core: dtypes, shapes, tensors, CPU kernels, ops and reverse-mode autodiff.
//!
//! Users normally depend on the `ferroflow` facade crate, which re-exports this one.
#![warn(missing_docs)]

pub mod autodiff;
#[cfg(feature = "ndarray")]
pub mod convert;
pub mod device;
pub mod display;
pub mod dtype;
pub mod error;
pub mod graph;
pub mod kernels;
pub mod layout;
pub mod op;
pub mod ops;
pub mod profiler;
pub mod storage;
pub mod tensor;
pub mod testing;
pub mod variable;

pub use autodiff::{GradientTape, Watchable};
pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use graph::{Graph, Session};
pub use ops::random::Generator;
pub use tensor::{Tensor, TensorId};
pub use variable::Variable;
