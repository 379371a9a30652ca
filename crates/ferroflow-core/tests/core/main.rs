//! The core crate's integration tests, in one binary (one link step) with a module per family.

mod conv;
mod elementwise;
mod pool;
mod reduce;
mod tape;
