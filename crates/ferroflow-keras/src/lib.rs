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
//!
//! Custom training loops work as in TensorFlow 2: the forward pass under a `GradientTape`, a
//! loss object, and `optimizer.apply_gradients`:
//!
//! ```
//! use ferroflow_keras::prelude::*;
//! use ferroflow_keras::layers::Dense;
//! use ferroflow_keras::losses::SparseCategoricalCrossentropy;
//! use ferroflow_keras::optimizers::Adam;
//! use ferroflow_core::{GradientTape, Tensor, Watchable};
//!
//! let mut model = Sequential::new();
//! model.add(Input::new(&[2]))?;
//! model.add(Dense::new(16).activation("relu"))?;
//! model.add(Dense::new(2))?;
//! let loss_fn = SparseCategoricalCrossentropy::new().from_logits(true);
//! let mut optimizer = Adam::new().learning_rate(0.05);
//! // Class 1 when x0 > x1.
//! let x = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 0.8, 0.1, 0.2, 0.9], &[4, 2])?;
//! let y = Tensor::from_vec(vec![1i64, 0, 1, 0], &[4])?;
//! let mut first = None;
//! for _step in 0..50 {
//!     let vars = model.trainable_weights();
//!     let tape = GradientTape::new();
//!     let logits = model.call(&[x.clone()], true)?.remove(0);
//!     let loss = loss_fn.compute(&y, &logits, None)?;
//!     let sources: Vec<&dyn Watchable> = vars.iter().map(|v| v as &dyn Watchable).collect();
//!     let grads = tape.gradient(&loss, &sources)?;
//!     let pairs = grads.into_iter().zip(vars).filter_map(|(g, v)| g.map(|g| (g, v))).collect::<Vec<_>>();
//!     optimizer.apply_gradients(&pairs)?;
//!     let value = loss.item::<f32>()?;
//!     first.get_or_insert(value);
//!     if _step == 49 {
//!         assert!(value < first.unwrap() / 10.0);
//!     }
//! }
//! # Ok::<(), ferroflow_core::Error>(())
//! ```
#![warn(missing_docs)]

pub mod activations;
pub mod backend;
pub mod callbacks;
pub mod datasets;
pub mod distribute;
pub mod initializers;
pub mod layers;
pub mod losses;
pub mod metrics;
pub mod models;
pub mod optimizers;
pub mod regularizers;
pub mod summary;
pub mod utils;

pub use layers::{Input, KerasTensor};
pub use models::{Model, Sequential};

/// `keras.Sequential([...])`: a [`Sequential`] from an optional `Input` and layers, in order.
///
/// ```
/// use ferroflow_keras::layers::{Dense, Dropout, Input};
/// let model = ferroflow_keras::sequential![
///     Input::new(&[784]),
///     Dense::new(64).activation("relu"),
///     Dropout::new(0.2),
///     Dense::new(10).activation("softmax"),
/// ]?;
/// assert_eq!(model.layers().len(), 3);
/// assert_eq!(model.count_params(), 784 * 64 + 64 + 64 * 10 + 10);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[macro_export]
macro_rules! sequential {
    ($($layer:expr),* $(,)?) => {
        $crate::models::Sequential::from_layers(vec![
            $($crate::models::SequentialItem::from($layer)),*
        ])
    };
}

/// The traits and types most programs need: `use ferroflow_keras::prelude::*;`.
pub mod prelude {
    pub use crate::callbacks::{Callback, History, Logs};
    pub use crate::layers::{Input, KerasTensor, Layer, LayerHandle};
    pub use crate::losses::Loss;
    pub use crate::metrics::Metric;
    pub use crate::models::{Model, Sequential};
    pub use crate::optimizers::Optimizer;
}
