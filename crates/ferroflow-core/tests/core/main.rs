//! The core crate's integration tests, in one binary (one link step) with a module per family.

mod convert;
mod display;
mod elementwise;
mod linalg;
mod random;
mod reduce;
mod tape;
