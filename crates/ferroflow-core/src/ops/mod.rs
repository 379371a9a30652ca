//! The public op functions, in TensorFlow's names (`ops::matmul`, `ops::reduce_sum`, ...).
//!
//! One file per op family. Each op is a struct implementing [`Op`](crate::op::Op) (shape rule,
//! kernel call, gradient) next to the public function that runs it.

pub mod array;
pub mod binary;
pub mod compare;
pub mod conv;
pub mod conv_pool_grad;
pub mod create;
pub mod gather;
pub mod image;
pub mod join;
pub mod linalg;
pub mod losses;
pub mod nn;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod rnn;
pub mod slice;
pub mod softmax;
pub mod unary;

pub use crate::kernels::padding::Padding;
pub use array::{
    broadcast_to, expand_dims, identity, matrix_transpose, reduce_to_shape, reshape, squeeze,
    stop_gradient, transpose,
};
pub use binary::{
    add, add_scalar, div, floor_div, floor_mod, maximum, minimum, mul, mul_scalar, pow,
    squared_difference, sub,
};
pub use compare::{
    cast, clip_by_value, clip_by_value_scalar, equal, greater, greater_equal, is_finite, is_inf,
    is_nan, less, less_equal, logical_and, logical_not, logical_or, logical_xor, not_equal, where_,
};
pub use conv::{
    conv1d, conv2d, conv2d_backprop_filter, conv2d_backprop_input, conv2d_transpose,
    depthwise_conv2d, depthwise_conv2d_backprop_filter, depthwise_conv2d_backprop_input,
};
pub use create::{
    arange, eye, fill, full_like, linspace, ones, ones_like, range, zeros, zeros_like,
};
pub use gather::{
    gather, gather_nd, one_hot, scatter_add, tensor_scatter_nd_add, unsorted_segment_sum,
};
pub use image::{
    affine_transform, central_crop, crop_to_bounding_box, flip_left_right, flip_up_down,
    image_projective_transform_grad, image_projective_transform_v3, resize, resize_grad, FillMode,
    Interpolation, ResizeMethod,
};
pub use join::{concat, split, stack, tile, unstack, Split};
pub use linalg::{einsum, matmul, norm, tensordot, MatMul, NormOrd, TensordotAxes};
pub use losses::{
    l2_loss, sigmoid_cross_entropy_with_logits, softmax_cross_entropy_with_logits,
    sparse_softmax_cross_entropy_with_logits,
};
pub use nn::{batch_normalization, bias_add, bias_add_grad, dropout, relu_grad};
pub use pool::{avg_pool1d, avg_pool2d, max_pool1d, max_pool2d};
pub use random::{
    random_normal, random_shuffle, random_uniform, random_uniform_int, truncated_normal, Generator,
};
pub use reduce::{
    argmax, argmin, cumprod, cumsum, moments, reduce_all, reduce_any, reduce_logsumexp, reduce_max,
    reduce_mean, reduce_min, reduce_prod, reduce_std, reduce_sum, reduce_variance, Axes,
};
pub use rnn::{lstm_sequence, lstm_sequence_grad};
pub use slice::{pad, reverse, slice, strided_slice, PadMode, SliceItem, StridedSlice};
pub use softmax::{log_softmax, softmax};
pub use unary::{
    abs, ceil, cos, elu, erf, exp, expm1, floor, gelu, hard_sigmoid, leaky_relu, log, log1p, neg,
    reciprocal, relu, relu6, round, rsqrt, selu, sigmoid, sign, silu, sin, softplus, softsign,
    sqrt, square, swish, tanh,
};
