//! # ferroflow
//!
//! A deep-learning framework in Rust with TensorFlow's and Keras's shape: tensors, a complete set
//! of CPU ops, and reverse-mode automatic differentiation with a [`GradientTape`].
//!
//! This crate is the facade users depend on; it re-exports the engine (`ferroflow-core`) under
//! TensorFlow's names: `ferroflow::Tensor`, `ferroflow::ops::matmul`, `ferroflow::GradientTape`,
//! `ferroflow::Variable`. Later crates (graphs, Keras, data, io) are re-exported here as they land.
//!
//! ```
//! use ferroflow::{ops, GradientTape, Tensor, Variable};
//!
//! // y = w·x + b, and dy/dw, dy/db, as with tf.GradientTape.
//! let w = Variable::new(Tensor::scalar(2.0f32), "w");
//! let b = Variable::new(Tensor::scalar(0.5f32), "b");
//! let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
//! let tape = GradientTape::new();
//! let y = ops::add(&ops::mul(&w.value(), &x)?, &b.value())?;
//! let loss = ops::reduce_sum(&y, ops::Axes::All, false)?;
//! let grads = tape.gradient(&loss, &[&w, &b])?;
//! assert_eq!(grads[0].as_ref().unwrap().item::<f32>()?, 6.0); // Σx
//! assert_eq!(grads[1].as_ref().unwrap().item::<f32>()?, 3.0); // n
//! # Ok::<(), ferroflow::Error>(())
//! ```
#![warn(missing_docs)]

pub use ferroflow_core::*;

/// Keras: layers, models, `compile`/`fit`/`evaluate`/`predict`, optimizers, losses, metrics and
/// callbacks (`ferroflow::keras::layers::Dense`, ...), mirroring `tf.keras`.
pub use ferroflow_keras as keras;

/// The input pipeline (`tf.data`): `ferroflow::data::Dataset` and the file readers.
pub use ferroflow_data as data;
/// Files: Keras's `.keras`/`.h5`/`.weights.h5` formats, checkpoints, HDF5 (`ferroflow-io`).
pub use ferroflow_io as io;
/// Data-parallel training over MPI (`ferroflow::mpi::MpiStrategy`, Horovod-style allreduce);
/// feature `mpi`, which needs an MPI library. See `docs/distributed.md`.
#[cfg(feature = "mpi")]
pub use ferroflow_mpi as mpi;

/// `tf.summary`: TensorBoard event files (`ferroflow::summary::SummaryWriter`) and their reader.
pub use ferroflow_keras::summary;
