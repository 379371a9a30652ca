//! `keras.layers`: the `Layer` trait and the built-in layers, one per file, with Keras's
//! arguments and defaults.

mod dense;
mod dropout;
mod flatten;
mod input;
mod layer;
mod max_pooling2d;
mod pool_utils;

pub use dense::Dense;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use input::{Input, InputLayer, KerasTensor, Node, SymbolicInputs};
pub use layer::{check_input_shapes, single_input, Layer, LayerBase, LayerHandle, Weight};
pub use max_pooling2d::MaxPooling2D;
pub use pool_utils::PoolSize2D;

#[allow(unused_imports)]
pub(crate) use dense::resolve_opt;
#[allow(unused_imports)]
pub(crate) use layer::ensure_built;
