//! CPU kernels: plain functions over contiguous slices, with no knowledge of `Tensor`, the tape or
//! graphs. Ops (`crate::ops`) validate shapes and dtypes and then call into these.
//!
//! Determinism rule: a kernel's result never depends on the number of threads. Parallel work is
//! split over *outputs* (or over fixed-size blocks combined in a fixed order), never over a
//! reduction in a thread-count-dependent way.

pub mod float;
pub mod parallel;

pub use float::Float;
