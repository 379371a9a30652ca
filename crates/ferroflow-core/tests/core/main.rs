//! The core crate's integration tests, in one binary (one link step) with a module per family.

mod broadcast_props;
mod elementwise;
mod reduce;
mod shape_ops;
mod tape;
