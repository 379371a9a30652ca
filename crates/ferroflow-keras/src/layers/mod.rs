//! `keras.layers`: the `Layer` trait and the built-in layers, one per file, with Keras's
//! arguments and defaults.

mod dense;
mod input;
mod layer;

pub use dense::Dense;
pub use input::{Input, InputLayer, KerasTensor, Node, SymbolicInputs};
pub use layer::{check_input_shapes, single_input, Layer, LayerBase, LayerHandle, Weight};

#[allow(unused_imports)]
pub(crate) use dense::resolve_opt;
#[allow(unused_imports)]
pub(crate) use layer::ensure_built;
