//! `keras.layers`: the `Layer` trait and the built-in layers, one per file, with Keras's
//! arguments and defaults.

mod activation;
mod add;
mod average;
mod average_pooling1d;
mod average_pooling2d;
mod batch_normalization;
mod center_crop;
mod concatenate;
mod conv1d;
mod conv2d;
mod conv2d_transpose;
pub mod conv_utils;
mod cropping2d;
mod dense;
mod depthwise_conv2d;
mod dropout;
mod flatten;
mod global_average_pooling1d;
mod global_average_pooling2d;
mod global_max_pooling1d;
mod global_max_pooling2d;
mod image_preprocessing;
mod input;
mod kernel_args;
mod lambda;
mod layer;
mod max_pooling1d;
mod max_pooling2d;
mod permute;
mod pool_utils;
mod random_brightness;
mod random_contrast;
mod random_crop;
mod random_flip;
mod random_rotation;
mod random_translation;
mod random_zoom;
mod resizing;
mod separable_conv2d;
mod up_sampling2d;
mod zero_padding2d;

mod additive_attention;
mod attention;
mod multi_head_attention;
mod position_embedding;

mod bidirectional;
mod embedding;
mod gru;
mod lstm;
mod masking;
pub(crate) mod rnn;
mod simple_rnn;
mod time_distributed;

pub use additive_attention::AdditiveAttention;
pub use attention::{Attention, ScoreMode};
pub use multi_head_attention::MultiHeadAttention;
pub use position_embedding::PositionEmbedding;

pub use bidirectional::{Bidirectional, MergeMode};
pub use embedding::Embedding;
pub use gru::{GRUCell, GRU};
pub use lstm::{LSTMCell, LSTM};
pub use masking::Masking;
pub use rnn::{CellArgs, RnnCell, RNN};
pub use simple_rnn::{SimpleRNN, SimpleRNNCell};
pub use time_distributed::TimeDistributed;

pub use conv1d::Conv1D;
pub use conv2d::Conv2D;
pub use conv2d_transpose::Conv2DTranspose;
pub use conv_utils::{ConvPadding, PaddingArg, Pads2, Pair};
mod category_encoding;
mod discretization;
pub mod farmhash;
mod hashing;
pub mod index_lookup;
mod integer_lookup;
mod normalization;
mod repeat_vector;
mod rescaling;
mod reshape;
mod string_lookup;
mod text_vectorization;

pub use activation::Activation;
pub use average_pooling1d::AveragePooling1D;
pub use average_pooling2d::AveragePooling2D;
mod layer_normalization;
mod maximum;
mod merge;
mod minimum;
mod multiply;
mod subtract;

pub use add::Add;
pub use average::Average;
pub use batch_normalization::BatchNormalization;
pub use category_encoding::CategoryEncoding;
pub use center_crop::CenterCrop;
pub use concatenate::Concatenate;
pub use cropping2d::Cropping2D;
pub use dense::Dense;
pub use depthwise_conv2d::DepthwiseConv2D;
pub use discretization::Discretization;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use global_average_pooling1d::GlobalAveragePooling1D;
pub use global_average_pooling2d::GlobalAveragePooling2D;
pub use global_max_pooling1d::GlobalMaxPooling1D;
pub use global_max_pooling2d::GlobalMaxPooling2D;
pub use hashing::Hashing;
pub use image_preprocessing::Factor;
pub use index_lookup::OutputMode;
pub use input::{Input, InputLayer, KerasTensor, Node, SymbolicInputs};
pub use integer_lookup::IntegerLookup;
pub use lambda::{Lambda, LambdaFn, LambdaMaskFn, LambdaShapeFn};
pub use layer::{
    built_dim, check_input_shapes, single_input, InputSpec, Layer, LayerBase, LayerHandle, Weight,
};
pub use layer_normalization::LayerNormalization;
pub use max_pooling1d::MaxPooling1D;
pub use max_pooling2d::MaxPooling2D;
pub use maximum::Maximum;
pub use minimum::Minimum;
pub use multiply::Multiply;
pub use normalization::Normalization;
pub use permute::Permute;
pub use pool_utils::PoolSize2D;
pub use random_brightness::RandomBrightness;
pub use random_contrast::RandomContrast;
pub use random_crop::RandomCrop;
pub use random_flip::RandomFlip;
pub use random_rotation::RandomRotation;
pub use random_translation::RandomTranslation;
pub use random_zoom::RandomZoom;
pub use repeat_vector::RepeatVector;
pub use rescaling::Rescaling;
pub use reshape::Reshape;
pub use resizing::Resizing;
pub use separable_conv2d::SeparableConv2D;
pub use string_lookup::{texts_from_tensor, StringLookup};
pub use subtract::Subtract;
pub use text_vectorization::{Split, Standardize, TextVectorization};
pub use up_sampling2d::{Interpolation, UpSampling2D};
pub use zero_padding2d::ZeroPadding2D;

/// Keras's alias `keras.layers.MaxPool1D` (the same class as [`MaxPooling1D`]).
pub type MaxPool1D = MaxPooling1D;
/// Keras's alias `keras.layers.MaxPool2D` (the same class as [`MaxPooling2D`]).
pub type MaxPool2D = MaxPooling2D;
/// Keras's alias `keras.layers.AvgPool1D` (the same class as [`AveragePooling1D`]).
pub type AvgPool1D = AveragePooling1D;
/// Keras's alias `keras.layers.AvgPool2D` (the same class as [`AveragePooling2D`]).
pub type AvgPool2D = AveragePooling2D;
/// Keras's alias `keras.layers.GlobalMaxPool1D` (the same class as [`GlobalMaxPooling1D`]).
pub type GlobalMaxPool1D = GlobalMaxPooling1D;
/// Keras's alias `keras.layers.GlobalMaxPool2D` (the same class as [`GlobalMaxPooling2D`]).
pub type GlobalMaxPool2D = GlobalMaxPooling2D;
/// Keras's alias `keras.layers.GlobalAvgPool1D` (the same class as [`GlobalAveragePooling1D`]).
pub type GlobalAvgPool1D = GlobalAveragePooling1D;
/// Keras's alias `keras.layers.GlobalAvgPool2D` (the same class as [`GlobalAveragePooling2D`]).
pub type GlobalAvgPool2D = GlobalAveragePooling2D;
