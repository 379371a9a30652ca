//! The ferroflow-keras integration tests, one module per area.

mod activations;
mod initializers;
mod layers_merge;
mod layers_norm;
mod regularizers;
