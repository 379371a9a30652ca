//! The core crate's integration tests, in one binary (one link step) with a module per family.

mod broadcast_props;
mod conv;
mod conv_fast;
mod conv_pool_grad;
mod convert;
mod determinism;
mod display;
mod elementwise;
mod function;
mod graph;
mod graph_optimize;
mod graph_seed_inputs;
mod image;
mod linalg;
mod nn;
mod pool;
mod profiler;
mod random;
mod reduce;
mod rnn;
mod shape_ops;
mod simd_kernels;
mod tape;
mod tf1;
