//! Integration tests of ferroflow-keras, one module per area.

mod layers_conv;
mod layers_core;
mod losses;
mod models;
mod seed_cnn;
