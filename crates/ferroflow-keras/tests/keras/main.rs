//! Integration tests of ferroflow-keras, one module per area.

mod activations;
mod callbacks;
mod datasets;
mod initializers;
mod layers_conv;
mod layers_core;
mod layers_merge;
mod layers_norm;
mod losses;
mod metrics;
mod models;
mod optimizers;
mod plot;
mod regularizers;
mod seed_cnn;
