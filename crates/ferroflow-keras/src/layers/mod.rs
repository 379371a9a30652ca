//! `keras.layers`: the `Layer` trait and the built-in layers, one per file, with Keras's
//! arguments and defaults.

mod add;
mod average;
mod batch_normalization;
mod concatenate;
mod dense;
mod input;
mod layer;
mod layer_normalization;
mod maximum;
mod merge;
mod multiply;
mod subtract;

pub use add::Add;
pub use average::Average;
pub use batch_normalization::BatchNormalization;
pub use concatenate::Concatenate;
pub use dense::Dense;
pub use input::{Input, InputLayer, KerasTensor, Node, SymbolicInputs};
pub use layer::{check_input_shapes, single_input, Layer, LayerBase, LayerHandle, Weight};
pub use layer_normalization::LayerNormalization;
pub use maximum::Maximum;
pub use multiply::Multiply;
pub use subtract::Subtract;

#[allow(unused_imports)]
pub(crate) use dense::resolve_opt;
#[allow(unused_imports)]
pub(crate) use layer::ensure_built;
