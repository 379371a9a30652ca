//! Reverse-mode automatic differentiation in eager mode: [`GradientTape`].

pub mod tape;

pub use tape::{GradientTape, Watchable};
