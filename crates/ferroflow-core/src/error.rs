//! The error type of every fallible ferroflow operation.

use crate::dtype::DType;

/// Formats a shape the way TensorFlow prints it: `(2, 3)`, `(3,)`, `()`.
pub fn fmt_shape(shape: &[usize]) -> String {
    match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Everything that can go wrong in ferroflow. Messages name the op (or layer) and the shapes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Input shapes that the op cannot combine (`shapes` are already formatted, e.g. `(2, 3)`).
    #[error("{op}: {msg} (shapes {})", shapes.join(", "))]
    Shape {
        /// The op or layer that rejected the shapes.
        op: String,
        /// What is wrong.
        msg: String,
        /// Every shape involved, formatted as `(2, 3)`.
        shapes: Vec<String>,
    },
    /// An input has a dtype the op does not accept, or inputs disagree.
    #[error("{op}: {msg} (got {})", got.iter().map(|d| d.name()).collect::<Vec<_>>().join(", "))]
    DType {
        /// The op that rejected the dtype.
        op: String,
        /// What was expected.
        msg: String,
        /// The dtypes that were given.
        got: Vec<DType>,
    },
    /// An axis out of range for the tensor's rank.
    #[error("{op}: axis {axis} is out of range for a tensor of rank {rank} (shape {shape})")]
    Axis {
        /// The op that rejected the axis.
        op: String,
        /// The axis given.
        axis: isize,
        /// The tensor's rank.
        rank: usize,
        /// The tensor's shape, formatted.
        shape: String,
    },
    /// Any other invalid argument.
    #[error("{op}: {msg}")]
    InvalidArgument {
        /// The op or function.
        op: String,
        /// What is wrong.
        msg: String,
    },
    /// A gradient was requested through an op that has none.
    #[error("{op}: this op has no gradient")]
    NoGradient {
        /// The op.
        op: String,
    },
    /// A `GradientTape` was used in a way TensorFlow also forbids (e.g. a second `gradient` call
    /// on a non-persistent tape).
    #[error("GradientTape: {0}")]
    Tape(String),
}

/// `Result` with ferroflow's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A shape error naming `op` and every shape involved.
    pub fn shape(op: &str, msg: impl Into<String>, shapes: &[&[usize]]) -> Self {
        Error::Shape {
            op: op.to_string(),
            msg: msg.into(),
            shapes: shapes.iter().map(|s| fmt_shape(s)).collect(),
        }
    }

    /// A dtype error naming `op`.
    pub fn dtype(op: &str, msg: impl Into<String>, got: &[DType]) -> Self {
        Error::DType {
            op: op.to_string(),
            msg: msg.into(),
            got: got.to_vec(),
        }
    }

    /// An invalid-argument error naming `op`.
    pub fn invalid(op: &str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op: op.to_string(),
            msg: msg.into(),
        }
    }

    /// An axis error naming `op` and the tensor's shape.
    pub fn axis(op: &str, axis: isize, shape: &[usize]) -> Self {
        Error::Axis {
            op: op.to_string(),
            axis,
            rank: shape.len(),
            shape: fmt_shape(shape),
        }
    }
}
