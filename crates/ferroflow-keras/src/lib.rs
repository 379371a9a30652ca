//! ferroflow's Keras: layers, `Sequential` and functional models, `compile` / `fit` /
//! `evaluate` / `predict`, optimizers, losses, metrics and callbacks — with Keras's names,
//! defaults and numerics. Users reach it as `ferroflow::keras`.
//!
//! ```
//! use ferroflow_keras::prelude::*;
//! use ferroflow_keras::layers::Dense;
//! use ferroflow_core::{ops, DType, Tensor};
//!
//! // The seeds' linear regression: y = 3x + 2 with Dense(1), "sgd" and "mse".
//! let x = Tensor::from_vec((0..64).map(|i| i as f32 / 64.0).collect(), &[64, 1])?;
//! let y = ops::add_scalar(&ops::mul_scalar(&x, 3.0)?, 2.0)?;
//! let mut model = Sequential::new();
//! model.add(Dense::new(1).input_shape(&[1]))?;
//! model.compile(ferroflow_keras::optimizers::SGD::new().learning_rate(0.5), "mse", ())?;
//! model.fit(&x, &y).epochs(100).batch_size(16).verbose(0).run()?;
//! let w = model.get_weights();
//! assert!((w[0].to_vec::<f32>()?[0] - 3.0).abs() < 0.05);
//! assert!((w[1].to_vec::<f32>()?[0] - 2.0).abs() < 0.05);
//! # Ok::<(), ferroflow_core::Error>(())
//! ```
#![warn(missing_docs)]

pub mod activations;
pub mod backend;
pub mod callbacks;
pub mod datasets;
pub mod initializers;
pub mod layers;
pub mod losses;
pub mod metrics;
pub mod models;
pub mod optimizers;
pub mod regularizers;
pub mod utils;

pub use layers::{Input, KerasTensor};
pub use models::{Model, Sequential};

/// The traits and types most programs need: `use ferroflow_keras::prelude::*;`.
pub mod prelude {
    pub use crate::callbacks::{Callback, History, Logs};
    pub use crate::layers::{Input, KerasTensor, Layer, LayerHandle};
    pub use crate::losses::Loss;
    pub use crate::metrics::Metric;
    pub use crate::models::{Model, Sequential};
    pub use crate::optimizers::Optimizer;
}
