//! The core crate's integration tests, in one binary (one link step) with a module per family.

mod elementwise;
mod nn;
mod reduce;
mod tape;
