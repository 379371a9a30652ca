//! The subcommands, one module each.

pub mod plot;
pub mod summary;
