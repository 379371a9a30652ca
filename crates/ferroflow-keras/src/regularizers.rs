//! `keras.regularizers`: weight penalties added to the training loss.
//!
//! As in Keras, `L1(l1)` adds `l1·Σ|w|` and `L2(l2)` adds `l2·Σw²` (no factor ½); the string
//! names `"l1"`, `"l2"`, `"l1_l2"` use Keras's default factor 0.01.
//!
//! ```
//! use ferroflow_keras::regularizers::Regularizer;
//! use ferroflow_core::Tensor;
//! let w = Tensor::from_vec(vec![1.0f32, -2.0], &[2])?;
//! let p = Regularizer::L2(0.5).penalty(&w)?;
//! assert_eq!(p.item::<f32>()?, 2.5); // 0.5 · (1 + 4)
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use ferroflow_core::{ops, Result, Tensor};

use crate::backend::{unknown_name, Arg};

/// A user-supplied penalty function of a weight.
pub type RegularizerFn = Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

/// A weight regularizer.
#[derive(Clone)]
pub enum Regularizer {
    /// `L1(l1)`: `l1·Σ|w|`.
    L1(f64),
    /// `L2(l2)`: `l2·Σw²`.
    L2(f64),
    /// `L1L2(l1, l2)`: both.
    L1L2 {
        /// The L1 factor.
        l1: f64,
        /// The L2 factor.
        l2: f64,
    },
    /// A user's penalty, with its name.
    Custom(String, RegularizerFn),
}

/// The names `Regularizer::get` accepts.
pub const NAMES: &[&str] = &["l1", "l2", "l1_l2"];

impl Regularizer {
    /// `keras.regularizers.get(name)` with Keras's default factors (0.01).
    pub fn get(name: &str) -> Result<Regularizer> {
        Ok(match name {
            "l1" | "L1" => Regularizer::L1(0.01),
            "l2" | "L2" => Regularizer::L2(0.01),
            "l1_l2" | "L1L2" => Regularizer::L1L2 { l1: 0.01, l2: 0.01 },
            _ => return Err(unknown_name("regularizer", name, NAMES)),
        })
    }

    /// The scalar penalty for weight `w` (same dtype as `w`).
    pub fn penalty(&self, w: &Tensor) -> Result<Tensor> {
        let l1 = |f: f64| -> Result<Tensor> {
            ops::mul_scalar(&ops::reduce_sum(&ops::abs(w)?, ops::Axes::All, false)?, f)
        };
        let l2 = |f: f64| -> Result<Tensor> {
            ops::mul_scalar(
                &ops::reduce_sum(&ops::square(w)?, ops::Axes::All, false)?,
                f,
            )
        };
        match self {
            Regularizer::L1(f) => l1(*f),
            Regularizer::L2(f) => l2(*f),
            Regularizer::L1L2 { l1: a, l2: b } => ops::add(&l1(*a)?, &l2(*b)?),
            Regularizer::Custom(_, f) => f(w),
        }
    }

    /// Keras's serialized form: `{"module": "keras.regularizers", "class_name": "L2",
    /// "config": {"l2": 0.01}, "registered_name": null}`.
    pub fn get_config(&self) -> serde_json::Value {
        use serde_json::json;
        let config = match self {
            Regularizer::L1(f) => json!({ "l1": f }),
            Regularizer::L2(f) => json!({ "l2": f }),
            Regularizer::L1L2 { l1, l2 } => json!({"l1": l1, "l2": l2}),
            Regularizer::Custom(..) => json!({}),
        };
        json!({"module": "keras.regularizers", "class_name": self.class_name(), "config": config, "registered_name": null})
    }

    /// The Keras class name (`"L2"`).
    pub fn class_name(&self) -> &str {
        match self {
            Regularizer::L1(_) => "L1",
            Regularizer::L2(_) => "L2",
            Regularizer::L1L2 { .. } => "L1L2",
            Regularizer::Custom(n, _) => n,
        }
    }
}

impl fmt::Debug for Regularizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Regularizer({})", self.class_name())
    }
}

impl From<&str> for Arg<Regularizer> {
    fn from(name: &str) -> Self {
        Arg(Regularizer::get(name))
    }
}

impl From<Regularizer> for Arg<Regularizer> {
    fn from(r: Regularizer) -> Self {
        Arg(Ok(r))
    }
}
