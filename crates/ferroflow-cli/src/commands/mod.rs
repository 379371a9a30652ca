//! The subcommands, one module each.

pub mod common;
pub mod convert;
pub mod evaluate;
pub mod inspect;
pub mod plot;
pub mod predict;
pub mod summary;
pub mod train;
