//! The public op functions, in TensorFlow's names (`ops::matmul`, `ops::reduce_sum`, ...).
//!
//! One file per op family. Each op is a struct implementing [`Op`](crate::op::Op) (shape rule,
//! kernel call, gradient) next to the public function that runs it.

pub mod array;
pub mod binary;
pub mod compare;
pub mod create;
pub mod linalg;
pub mod random;
pub mod reduce;
pub mod unary;

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
pub use create::{
    arange, eye, fill, full_like, linspace, ones, ones_like, range, zeros, zeros_like,
};
pub use linalg::{einsum, matmul, norm, tensordot, MatMul, NormOrd, TensordotAxes};
pub use random::{
    random_normal, random_shuffle, random_uniform, random_uniform_int, truncated_normal, Generator,
};
pub use reduce::{
    argmax, argmin, cumprod, cumsum, moments, reduce_all, reduce_any, reduce_logsumexp, reduce_max,
    reduce_mean, reduce_min, reduce_prod, reduce_std, reduce_sum, reduce_variance, Axes,
};
pub use unary::{
    abs, ceil, cos, elu, erf, exp, expm1, floor, gelu, hard_sigmoid, leaky_relu, log, log1p, neg,
    reciprocal, relu, relu6, round, rsqrt, selu, sigmoid, sign, silu, sin, softplus, softsign,
    sqrt, square, swish, tanh,
};
