//! Integration tests of ferroflow-data, one module per area.

mod formats;
mod pipeline;
