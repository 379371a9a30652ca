//! `keras.layers`: the `Layer` trait and the built-in layers, one per file, with Keras's
//! arguments and defaults.

mod conv1d;
mod conv2d;
mod conv2d_transpose;
pub mod conv_utils;
mod cropping2d;
mod dense;
mod depthwise_conv2d;
mod input;
mod layer;
mod separable_conv2d;
mod up_sampling2d;
mod zero_padding2d;

pub use conv1d::Conv1D;
pub use conv2d::Conv2D;
pub use conv2d_transpose::Conv2DTranspose;
pub use conv_utils::{ConvPadding, PaddingArg, Pads2, Pair};
pub use cropping2d::Cropping2D;
pub use dense::Dense;
pub use depthwise_conv2d::DepthwiseConv2D;
pub use input::{Input, InputLayer, KerasTensor, Node, SymbolicInputs};
pub use layer::{check_input_shapes, single_input, Layer, LayerBase, LayerHandle, Weight};
pub use separable_conv2d::SeparableConv2D;
pub use up_sampling2d::{Interpolation, UpSampling2D};
pub use zero_padding2d::ZeroPadding2D;

#[allow(unused_imports)]
pub(crate) use dense::resolve_opt;
#[allow(unused_imports)]
pub(crate) use layer::ensure_built;
