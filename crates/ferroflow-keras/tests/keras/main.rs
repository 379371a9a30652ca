//! Integration tests of ferroflow-keras, one module per area.

mod losses;
mod models;
