//! Integration tests of ferroflow-keras, one module per area.

mod callbacks;
mod layers_conv;
mod layers_core;
mod losses;
mod metrics;
mod models;
mod seed_cnn;
