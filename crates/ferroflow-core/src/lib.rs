//! ferroflow-core: dtypes, shapes, tensors, CPU kernels, ops and reverse-mode autodiff.
pub mod kernels;
