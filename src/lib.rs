pub use ferroflow_core::*;
