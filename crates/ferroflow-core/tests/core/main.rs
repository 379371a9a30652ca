//! The core crate's integration tests, in one binary (one link step) with a module per family.

mod broadcast_props;
mod display;
mod elementwise;
mod linalg;
mod random;
mod conv;
mod pool;
mod nn;
mod reduce;
mod shape_ops;
mod tape;
