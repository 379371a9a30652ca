//! `keras.activations`: activation functions by name (`"relu"`) or by value
//! (`Activation::Relu`), as layers take them.
//!
//! Like Keras on the TensorFlow backend, `softmax` and `sigmoid` remember the logits they were
//! applied to ([`keras_logits`]), so that a cross-entropy loss on their output is computed from
//! the logits — exactly and without clipping — as Keras does (`_keras_logits`).
//!
//! ```
//! use ferroflow_keras::activations::{self, Activation};
//! use ferroflow_core::Tensor;
//! let x = Tensor::from_vec(vec![-1.0f32, 0.0, 2.0], &[3])?;
//! let relu = Activation::get("relu")?;
//! assert_eq!(relu.apply(&x)?.to_vec::<f32>()?, vec![0.0, 0.0, 2.0]);
//! assert!(Activation::get("rleu").is_err()); // the error lists the valid names
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use ferroflow_core::{ops, Result, Tensor, TensorId};

use crate::backend::{unknown_name, Arg};

/// A user-supplied activation function.
pub type ActivationFn = Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

/// An activation function, as `keras.activations.get` resolves them.
#[derive(Clone)]
pub enum Activation {
    /// `linear` (also `None`): the identity.
    Linear,
    /// `relu`: `max(x, 0)`.
    Relu,
    /// `relu6`: `min(max(x, 0), 6)`.
    Relu6,
    /// `sigmoid`: `1 / (1 + e^-x)`.
    Sigmoid,
    /// `softmax` over the last axis.
    Softmax,
    /// `log_softmax` over the last axis.
    LogSoftmax,
    /// `tanh`.
    Tanh,
    /// `elu` with alpha 1.
    Elu,
    /// `selu`: scaled ELU (alpha 1.67326..., scale 1.05070...).
    Selu,
    /// `gelu`, the exact form (Keras's default `approximate=False`).
    Gelu,
    /// `swish` / `silu`: `x·sigmoid(x)`.
    Swish,
    /// `softplus`: `ln(1 + e^x)`.
    Softplus,
    /// `softsign`: `x / (1 + |x|)`.
    Softsign,
    /// `hard_sigmoid`: Keras 3's `relu6(x + 3) / 6`.
    HardSigmoid,
    /// `leaky_relu` with the given negative slope (the function's default is 0.2).
    LeakyRelu(f64),
    /// `exponential`: `e^x`.
    Exponential,
    /// `mish`: `x·tanh(softplus(x))`.
    Mish,
    /// `log_sigmoid`: `-softplus(-x)`.
    LogSigmoid,
    /// `hard_silu` / `hard_swish`: `x·hard_sigmoid(x)` = `x·relu6(x + 3)/6`.
    HardSilu,
    /// `hard_tanh`: `clip(x, -1, 1)`.
    HardTanh,
    /// `celu` with Keras's default alpha 1: `max(x, 0) + min(0, e^x - 1)` (equal to ELU at alpha 1).
    Celu,
    /// `tanh_shrink`: `x - tanh(x)`.
    TanhShrink,
    /// A user's function with its name.
    Custom(String, ActivationFn),
}

/// The names `Activation::get` accepts.
pub const NAMES: &[&str] = &[
    "linear",
    "relu",
    "relu6",
    "sigmoid",
    "softmax",
    "log_softmax",
    "tanh",
    "elu",
    "selu",
    "gelu",
    "swish",
    "silu",
    "softplus",
    "softsign",
    "hard_sigmoid",
    "leaky_relu",
    "exponential",
    "mish",
    "log_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "celu",
    "tanh_shrink",
];

impl Activation {
    /// `keras.activations.get(name)`; an unknown name is an error listing the valid ones.
    pub fn get(name: &str) -> Result<Activation> {
        Ok(match name {
            "linear" | "None" | "none" => Activation::Linear,
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "sigmoid" => Activation::Sigmoid,
            "softmax" => Activation::Softmax,
            "log_softmax" => Activation::LogSoftmax,
            "tanh" => Activation::Tanh,
            "elu" => Activation::Elu,
            "selu" => Activation::Selu,
            "gelu" => Activation::Gelu,
            "swish" | "silu" => Activation::Swish,
            "softplus" => Activation::Softplus,
            "softsign" => Activation::Softsign,
            "hard_sigmoid" => Activation::HardSigmoid,
            "leaky_relu" => Activation::LeakyRelu(0.2),
            "exponential" => Activation::Exponential,
            "mish" => Activation::Mish,
            "log_sigmoid" => Activation::LogSigmoid,
            "hard_silu" | "hard_swish" => Activation::HardSilu,
            "hard_tanh" => Activation::HardTanh,
            "celu" => Activation::Celu,
            "tanh_shrink" => Activation::TanhShrink,
            _ => return Err(unknown_name("activation", name, NAMES)),
        })
    }

    /// A user's activation function, named for `summary` and configs.
    pub fn custom(
        name: &str,
        f: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Activation {
        Activation::Custom(name.to_string(), Arc::new(f))
    }

    /// The Keras name (`"relu"`).
    pub fn name(&self) -> &str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
            Activation::Sigmoid => "sigmoid",
            Activation::Softmax => "softmax",
            Activation::LogSoftmax => "log_softmax",
            Activation::Tanh => "tanh",
            Activation::Elu => "elu",
            Activation::Selu => "selu",
            Activation::Gelu => "gelu",
            Activation::Swish => "silu",
            Activation::Softplus => "softplus",
            Activation::Softsign => "softsign",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Exponential => "exponential",
            Activation::Mish => "mish",
            Activation::LogSigmoid => "log_sigmoid",
            Activation::HardSilu => "hard_silu",
            Activation::HardTanh => "hard_tanh",
            Activation::Celu => "celu",
            Activation::TanhShrink => "tanh_shrink",
            Activation::Custom(n, _) => n,
        }
    }

    /// Whether this is the identity.
    pub fn is_linear(&self) -> bool {
        matches!(self, Activation::Linear)
    }

    /// Applies the activation. `softmax` and `sigmoid` record their logits (see [`keras_logits`]).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let y = match self {
            Activation::Linear => return Ok(x.clone()),
            Activation::Relu => ops::relu(x)?,
            Activation::Relu6 => ops::relu6(x)?,
            Activation::Sigmoid => {
                let y = ops::sigmoid(x)?;
                remember_logits(&y, x, LogitsKind::Sigmoid);
                y
            }
            Activation::Softmax => {
                let y = ops::softmax(x, -1)?;
                remember_logits(&y, x, LogitsKind::Softmax);
                y
            }
            Activation::LogSoftmax => ops::log_softmax(x, -1)?,
            Activation::Tanh => ops::tanh(x)?,
            Activation::Elu => ops::elu(x, 1.0)?,
            Activation::Selu => ops::selu(x)?,
            Activation::Gelu => ops::gelu(x, false)?,
            Activation::Swish => ops::silu(x)?,
            Activation::Softplus => ops::softplus(x)?,
            Activation::Softsign => ops::softsign(x)?,
            Activation::HardSigmoid => ops::hard_sigmoid(x)?,
            Activation::LeakyRelu(a) => ops::leaky_relu(x, *a)?,
            Activation::Exponential => ops::exp(x)?,
            Activation::Mish => ops::mul(x, &ops::tanh(&ops::softplus(x)?)?)?,
            Activation::LogSigmoid => ops::neg(&ops::softplus(&ops::neg(x)?)?)?,
            Activation::HardSilu => ops::mul(x, &ops::hard_sigmoid(x)?)?,
            Activation::HardTanh => ops::clip_by_value_scalar(x, -1.0, 1.0)?,
            Activation::Celu => ops::elu(x, 1.0)?,
            Activation::TanhShrink => ops::sub(x, &ops::tanh(x)?)?,
            Activation::Custom(_, f) => f(x)?,
        };
        Ok(y)
    }
}

impl fmt::Debug for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Activation({})", self.name())
    }
}

impl From<&str> for Arg<Activation> {
    fn from(name: &str) -> Self {
        Arg(Activation::get(name))
    }
}

impl From<Activation> for Arg<Activation> {
    fn from(a: Activation) -> Self {
        Arg(Ok(a))
    }
}

/// Which activation produced a tensor whose logits were remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitsKind {
    /// `softmax` over the last axis.
    Softmax,
    /// `sigmoid`.
    Sigmoid,
}

/// How many recent (output, logits) pairs are kept; a model's outputs are looked up right after
/// its forward pass, so a few suffice.
const LOGITS_MEMORY: usize = 16;

thread_local! {
    static LOGITS: RefCell<Vec<(TensorId, Tensor, LogitsKind)>> = const { RefCell::new(Vec::new()) };
}

fn remember_logits(output: &Tensor, logits: &Tensor, kind: LogitsKind) {
    LOGITS.with(|l| {
        let mut l = l.borrow_mut();
        if l.len() >= LOGITS_MEMORY {
            l.remove(0);
        }
        l.push((output.id(), logits.clone(), kind));
    });
}

/// The logits a `softmax`/`sigmoid` activation was applied to in order to produce `output`
/// (Keras's `output._keras_logits`), if it was produced by one on this thread recently.
pub fn keras_logits(output: &Tensor) -> Option<(Tensor, LogitsKind)> {
    LOGITS.with(|l| {
        l.borrow()
            .iter()
            .rev()
            .find(|(id, _, _)| *id == output.id())
            .map(|(_, t, k)| (t.clone(), *k))
    })
}

/// `keras.activations.relu`.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    Activation::Relu.apply(x)
}

/// `keras.activations.softmax` (last axis).
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    Activation::Softmax.apply(x)
}

/// `keras.activations.sigmoid`.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    Activation::Sigmoid.apply(x)
}
