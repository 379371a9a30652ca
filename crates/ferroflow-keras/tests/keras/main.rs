//! Integration tests of ferroflow-keras, one module per area.

mod layers_conv;
mod losses;
mod models;
