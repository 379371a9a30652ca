//! CPU kernels: plain functions over contiguous slices, with no knowledge of the tape or graphs.
//! Ops (`crate::ops`) validate shapes and dtypes and then call into these.
//!
//! Determinism rule: a kernel's result never depends on the number of threads. Parallel work is
//! split over *outputs* (or over fixed-size blocks combined in a fixed order), never over a
//! reduction in a thread-count-dependent way.

pub mod conv;
pub(crate) mod conv2_filter;
pub(crate) mod conv_bwd_input;
pub mod conv_direct;
pub(crate) mod conv_direct_filter;
pub mod conv_direct_fwd;
pub mod conv_pool;
pub mod conv_pool_grad;
pub mod copy;
pub mod dense_gemm;
pub mod elementwise;
pub(crate) mod env_switch;
pub mod float;
pub mod format;
pub mod gemm;
#[cfg(target_arch = "x86_64")]
pub(crate) mod gemm_avx2;
pub mod image;
pub mod nn;
pub mod optim;
pub mod padding;
pub mod parallel;
pub mod philox;
pub mod pool;
pub mod reduce;
pub mod rnn;
pub mod rnn_gemm;
pub mod simd;
pub mod softmax;
#[cfg(test)]
pub(crate) mod test_util;

pub use float::Float;
