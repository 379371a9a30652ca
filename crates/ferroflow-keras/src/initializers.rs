//! `keras.initializers`: how a layer's weights start, by name (`"glorot_uniform"`) or by value.
//!
//! Matches Keras 3: fans of a 2-D shape are `(shape[0], shape[1])`; of a convolution kernel
//! `[k.., in, out]` they are `in·∏k` and `out·∏k`. `VarianceScaling` divides `scale` by
//! `max(1, n)` (n = fan_in, fan_out or their mean); its truncated normal has stddev
//! `√scale / 0.8796256610342398` (cut at two standard deviations), its uniform limit `√(3·scale)`.
//! Random initializers without a seed draw one from the session's stream
//! ([`set_random_seed`](crate::utils::set_random_seed)), so a program is reproducible.
//!
//! ```
//! use ferroflow_keras::initializers::Initializer;
//! use ferroflow_core::DType;
//! let w = Initializer::get("glorot_uniform")?.init(&[784, 128], DType::F32)?;
//! let limit = (6.0f32 / (784.0 + 128.0)).sqrt();
//! assert!(w.to_vec::<f32>()?.iter().all(|v| v.abs() <= limit));
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use ferroflow_core::{ops, DType, Error, Result, Tensor};

use crate::backend::{next_seed, unknown_name, Arg};

/// How `VarianceScaling` counts the fan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Inputs per unit.
    FanIn,
    /// Outputs per unit.
    FanOut,
    /// Their mean.
    FanAvg,
}

/// The distribution `VarianceScaling` draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// Normal truncated at two standard deviations.
    TruncatedNormal,
    /// Plain normal.
    UntruncatedNormal,
    /// Uniform.
    Uniform,
}

/// A user-supplied initializer: `(shape, dtype, seed) -> tensor`.
pub type InitializerFn = Arc<dyn Fn(&[usize], DType, u64) -> Result<Tensor> + Send + Sync>;

/// A weight initializer, as `keras.initializers.get` resolves them.
#[derive(Clone)]
pub enum Initializer {
    /// `zeros`.
    Zeros,
    /// `ones`.
    Ones,
    /// `Constant(value)`.
    Constant(f64),
    /// `RandomNormal(mean, stddev)` (`"random_normal"`/`"normal"`: 0, 0.05).
    RandomNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
        /// Fixed seed, or `None` to draw one from the session.
        seed: Option<u64>,
    },
    /// `RandomUniform(minval, maxval)` (`"random_uniform"`/`"uniform"`: -0.05, 0.05).
    RandomUniform {
        /// Lower bound.
        minval: f64,
        /// Upper bound.
        maxval: f64,
        /// Fixed seed, or `None`.
        seed: Option<u64>,
    },
    /// `TruncatedNormal(mean, stddev)` (0, 0.05), cut at two standard deviations.
    TruncatedNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation before truncation.
        stddev: f64,
        /// Fixed seed, or `None`.
        seed: Option<u64>,
    },
    /// `VarianceScaling(scale, mode, distribution)`; the Glorot, He and LeCun initializers are
    /// instances of it.
    VarianceScaling {
        /// Scale factor.
        scale: f64,
        /// Which fan divides the scale.
        mode: FanMode,
        /// Distribution.
        distribution: Distribution,
        /// Fixed seed, or `None`.
        seed: Option<u64>,
    },
    /// `Orthogonal(gain)`: a (semi-)orthogonal matrix from the QR decomposition of a normal
    /// matrix, sign-corrected by `diag(R)`, times `gain`.
    Orthogonal {
        /// Multiplier.
        gain: f64,
        /// Fixed seed, or `None`.
        seed: Option<u64>,
    },
    /// `Identity(gain)`: `gain` times the identity matrix (2-D shapes only).
    Identity {
        /// Multiplier.
        gain: f64,
    },
    /// A user's initializer, with its name.
    Custom(String, InitializerFn),
}

/// The names `Initializer::get` accepts.
pub const NAMES: &[&str] = &[
    "zeros",
    "ones",
    "constant",
    "random_normal",
    "normal",
    "random_uniform",
    "uniform",
    "truncated_normal",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "variance_scaling",
    "orthogonal",
    "identity",
];

impl Initializer {
    /// `keras.initializers.get(name)`: the snake-case names and, as Keras, the class names
    /// (`"HeNormal"`); an unknown name is an error listing the valid ones.
    pub fn get(name: &str) -> Result<Initializer> {
        Ok(match name {
            "zeros" | "Zeros" => Initializer::Zeros,
            "ones" | "Ones" => Initializer::Ones,
            "constant" | "Constant" => Initializer::Constant(0.0),
            "random_normal" | "normal" | "RandomNormal" => Initializer::random_normal(0.0, 0.05),
            "random_uniform" | "uniform" | "RandomUniform" => {
                Initializer::random_uniform(-0.05, 0.05)
            }
            "truncated_normal" | "TruncatedNormal" => Initializer::TruncatedNormal {
                mean: 0.0,
                stddev: 0.05,
                seed: None,
            },
            "glorot_uniform" | "GlorotUniform" => Initializer::glorot_uniform(),
            "glorot_normal" | "GlorotNormal" => Initializer::glorot_normal(),
            "he_uniform" | "HeUniform" => Initializer::he_uniform(),
            "he_normal" | "HeNormal" => Initializer::he_normal(),
            "lecun_uniform" | "LecunUniform" => Initializer::lecun_uniform(),
            "lecun_normal" | "LecunNormal" => Initializer::lecun_normal(),
            "variance_scaling" | "VarianceScaling" => {
                Initializer::variance_scaling(1.0, FanMode::FanIn, Distribution::TruncatedNormal)
            }
            "orthogonal" | "Orthogonal" => Initializer::Orthogonal {
                gain: 1.0,
                seed: None,
            },
            "identity" | "Identity" => Initializer::Identity { gain: 1.0 },
            _ => return Err(unknown_name("initializer", name, NAMES)),
        })
    }

    /// `RandomNormal(mean, stddev)`.
    pub fn random_normal(mean: f64, stddev: f64) -> Initializer {
        Initializer::RandomNormal {
            mean,
            stddev,
            seed: None,
        }
    }

    /// `RandomUniform(minval, maxval)`.
    pub fn random_uniform(minval: f64, maxval: f64) -> Initializer {
        Initializer::RandomUniform {
            minval,
            maxval,
            seed: None,
        }
    }

    /// `VarianceScaling(scale, mode, distribution)`.
    pub fn variance_scaling(scale: f64, mode: FanMode, distribution: Distribution) -> Initializer {
        Initializer::VarianceScaling {
            scale,
            mode,
            distribution,
            seed: None,
        }
    }

    /// `GlorotUniform`: U(±√(6/(fan_in+fan_out))).
    pub fn glorot_uniform() -> Initializer {
        Initializer::variance_scaling(1.0, FanMode::FanAvg, Distribution::Uniform)
    }

    /// `GlorotNormal`: truncated normal, stddev √(2/(fan_in+fan_out)).
    pub fn glorot_normal() -> Initializer {
        Initializer::variance_scaling(1.0, FanMode::FanAvg, Distribution::TruncatedNormal)
    }

    /// `HeUniform`: U(±√(6/fan_in)).
    pub fn he_uniform() -> Initializer {
        Initializer::variance_scaling(2.0, FanMode::FanIn, Distribution::Uniform)
    }

    /// `HeNormal`: truncated normal, stddev √(2/fan_in).
    pub fn he_normal() -> Initializer {
        Initializer::variance_scaling(2.0, FanMode::FanIn, Distribution::TruncatedNormal)
    }

    /// `LecunUniform`: U(±√(3/fan_in)).
    pub fn lecun_uniform() -> Initializer {
        Initializer::variance_scaling(1.0, FanMode::FanIn, Distribution::Uniform)
    }

    /// `LecunNormal`: truncated normal, stddev √(1/fan_in).
    pub fn lecun_normal() -> Initializer {
        Initializer::variance_scaling(1.0, FanMode::FanIn, Distribution::TruncatedNormal)
    }

    /// A user's initializer, named for configs.
    pub fn custom(
        name: &str,
        f: impl Fn(&[usize], DType, u64) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Initializer {
        Initializer::Custom(name.to_string(), Arc::new(f))
    }

    /// The same initializer with a fixed seed (for those that draw random numbers).
    pub fn with_seed(self, seed: u64) -> Initializer {
        match self {
            Initializer::RandomNormal { mean, stddev, .. } => Initializer::RandomNormal {
                mean,
                stddev,
                seed: Some(seed),
            },
            Initializer::RandomUniform { minval, maxval, .. } => Initializer::RandomUniform {
                minval,
                maxval,
                seed: Some(seed),
            },
            Initializer::TruncatedNormal { mean, stddev, .. } => Initializer::TruncatedNormal {
                mean,
                stddev,
                seed: Some(seed),
            },
            Initializer::VarianceScaling {
                scale,
                mode,
                distribution,
                ..
            } => Initializer::VarianceScaling {
                scale,
                mode,
                distribution,
                seed: Some(seed),
            },
            Initializer::Orthogonal { gain, .. } => Initializer::Orthogonal {
                gain,
                seed: Some(seed),
            },
            other => other,
        }
    }

    /// Keras's serialized form: `{"module": "keras.initializers", "class_name": "GlorotUniform",
    /// "config": {"seed": null, ...}, "registered_name": null}` (the `.keras` format's
    /// `config.json`).
    pub fn get_config(&self) -> serde_json::Value {
        use serde_json::json;
        let seed = |s: &Option<u64>| {
            s.map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null)
        };
        let config = match self {
            Initializer::Zeros | Initializer::Ones | Initializer::Custom(..) => json!({}),
            Initializer::Constant(v) => json!({ "value": v }),
            Initializer::RandomNormal {
                mean,
                stddev,
                seed: s,
            }
            | Initializer::TruncatedNormal {
                mean,
                stddev,
                seed: s,
            } => {
                json!({"seed": seed(s), "mean": mean, "stddev": stddev})
            }
            Initializer::RandomUniform {
                minval,
                maxval,
                seed: s,
            } => {
                json!({"seed": seed(s), "minval": minval, "maxval": maxval})
            }
            Initializer::VarianceScaling {
                scale,
                mode,
                distribution,
                seed: s,
            } => {
                if self.class_name() == "VarianceScaling" {
                    json!({"seed": seed(s), "scale": scale,
                    "mode": match mode { FanMode::FanIn => "fan_in", FanMode::FanOut => "fan_out", FanMode::FanAvg => "fan_avg" },
                    "distribution": match distribution {
                        Distribution::TruncatedNormal => "truncated_normal",
                        Distribution::UntruncatedNormal => "untruncated_normal",
                        Distribution::Uniform => "uniform",
                    }})
                } else {
                    json!({"seed": seed(s), "input_axes": null, "output_axes": null})
                }
            }
            Initializer::Orthogonal { gain, seed: s } => json!({"seed": seed(s), "gain": gain}),
            Initializer::Identity { gain } => json!({ "gain": gain }),
        };
        json!({"module": "keras.initializers", "class_name": self.class_name(), "config": config, "registered_name": null})
    }

    /// The Keras class name (`"GlorotUniform"`), for configs and messages.
    pub fn class_name(&self) -> &str {
        match self {
            Initializer::Zeros => "Zeros",
            Initializer::Ones => "Ones",
            Initializer::Constant(_) => "Constant",
            Initializer::RandomNormal { .. } => "RandomNormal",
            Initializer::RandomUniform { .. } => "RandomUniform",
            Initializer::TruncatedNormal { .. } => "TruncatedNormal",
            Initializer::VarianceScaling {
                scale,
                mode,
                distribution,
                ..
            } => match (*scale, mode, distribution) {
                (1.0, FanMode::FanAvg, Distribution::Uniform) => "GlorotUniform",
                (1.0, FanMode::FanAvg, Distribution::TruncatedNormal) => "GlorotNormal",
                (2.0, FanMode::FanIn, Distribution::Uniform) => "HeUniform",
                (2.0, FanMode::FanIn, Distribution::TruncatedNormal) => "HeNormal",
                (1.0, FanMode::FanIn, Distribution::Uniform) => "LecunUniform",
                (1.0, FanMode::FanIn, Distribution::TruncatedNormal) => "LecunNormal",
                _ => "VarianceScaling",
            },
            Initializer::Orthogonal { .. } => "Orthogonal",
            Initializer::Identity { .. } => "Identity",
            Initializer::Custom(n, _) => n,
        }
    }

    /// A tensor of `shape` and `dtype` drawn from this initializer.
    pub fn init(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let seed = |s: &Option<u64>| s.unwrap_or_else(next_seed);
        match self {
            Initializer::Zeros => Ok(ops::zeros(shape, dtype)),
            Initializer::Ones => Ok(ops::ones(shape, dtype)),
            Initializer::Constant(v) => Ok(ops::fill(shape, dtype, *v)),
            Initializer::RandomNormal {
                mean,
                stddev,
                seed: s,
            } => ops::random_normal(shape, *mean, *stddev, dtype, seed(s)),
            Initializer::RandomUniform {
                minval,
                maxval,
                seed: s,
            } => ops::random_uniform(shape, *minval, *maxval, dtype, seed(s)),
            Initializer::TruncatedNormal {
                mean,
                stddev,
                seed: s,
            } => ops::truncated_normal(shape, *mean, *stddev, dtype, seed(s)),
            Initializer::VarianceScaling {
                scale,
                mode,
                distribution,
                seed: s,
            } => {
                let (fan_in, fan_out) = compute_fans(shape);
                let n = match mode {
                    FanMode::FanIn => fan_in,
                    FanMode::FanOut => fan_out,
                    FanMode::FanAvg => (fan_in + fan_out) / 2.0,
                };
                let scale = scale / n.max(1.0);
                match distribution {
                    Distribution::TruncatedNormal => {
                        let stddev = scale.sqrt() / 0.879_625_661_034_239_8;
                        ops::truncated_normal(shape, 0.0, stddev, dtype, seed(s))
                    }
                    Distribution::UntruncatedNormal => {
                        ops::random_normal(shape, 0.0, scale.sqrt(), dtype, seed(s))
                    }
                    Distribution::Uniform => {
                        let limit = (3.0 * scale).sqrt();
                        ops::random_uniform(shape, -limit, limit, dtype, seed(s))
                    }
                }
            }
            Initializer::Orthogonal { gain, seed: s } => orthogonal(shape, *gain, dtype, seed(s)),
            Initializer::Identity { gain } => {
                if shape.len() != 2 {
                    return Err(Error::invalid(
                        "Identity",
                        format!("the Identity initializer needs a 2-D shape, got {shape:?}"),
                    ));
                }
                ops::mul_scalar(&ops::eye(shape[0], shape[1], dtype), *gain)
            }
            Initializer::Custom(_, f) => f(shape, dtype, next_seed()),
        }
    }
}

/// Keras's `compute_fans`: `(fan_in, fan_out)` of a weight shape.
pub fn compute_fans(shape: &[usize]) -> (f64, f64) {
    match shape.len() {
        0 => (1.0, 1.0),
        1 => (shape[0] as f64, shape[0] as f64),
        2 => (shape[0] as f64, shape[1] as f64),
        r => {
            let receptive: usize = shape[..r - 2].iter().product();
            (
                (shape[r - 2] * receptive) as f64,
                (shape[r - 1] * receptive) as f64,
            )
        }
    }
}

/// `Orthogonal`: flatten to `(∏shape[..-1], shape[-1])`, QR-decompose a normal matrix of the
/// taller orientation, fix signs by `diag(R)`, transpose back if needed, times `gain`.
fn orthogonal(shape: &[usize], gain: f64, dtype: DType, seed: u64) -> Result<Tensor> {
    if shape.len() < 2 {
        return Err(Error::invalid(
            "Orthogonal",
            format!("the Orthogonal initializer needs a shape of rank >= 2, got {shape:?}"),
        ));
    }
    let cols = shape[shape.len() - 1];
    let rows: usize = shape[..shape.len() - 1].iter().product();
    let (m, n) = (rows.max(cols), rows.min(cols));
    // The draw is read on the host: computed eagerly even while a graph is being built.
    let a = {
        let _eager = ferroflow_core::graph::init_scope();
        ops::random_normal(&[m, n], 0.0, 1.0, DType::F64, seed)?.to_vec::<f64>()?
    };
    let q = thin_q(&a, m, n);
    // q is m x n with orthonormal columns; the result is rows x cols.
    let mut out = vec![0.0f64; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[r * cols + c] = gain
                * if rows >= cols {
                    q[r * n + c]
                } else {
                    q[c * n + r]
                };
        }
    }
    Tensor::from_f64_slice(dtype, &out, shape)
}

/// The `Q` of a thin QR decomposition (modified Gram–Schmidt, twice for stability) of the
/// row-major `m x n` matrix `a` (`m >= n`). Gram–Schmidt makes `diag(R)` positive, which is what
/// Keras's sign correction `q * sign(diag(r))` achieves for a Householder QR.
fn thin_q(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut q = a.to_vec();
    for j in 0..n {
        for _pass in 0..2 {
            for k in 0..j {
                let dot: f64 = (0..m).map(|i| q[i * n + k] * q[i * n + j]).sum();
                for i in 0..m {
                    q[i * n + j] -= dot * q[i * n + k];
                }
            }
            let norm: f64 = (0..m)
                .map(|i| q[i * n + j] * q[i * n + j])
                .sum::<f64>()
                .sqrt();
            let norm = if norm == 0.0 { 1.0 } else { norm };
            for i in 0..m {
                q[i * n + j] /= norm;
            }
        }
    }
    q
}

impl fmt::Debug for Initializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Initializer({})", self.class_name())
    }
}

impl From<&str> for Arg<Initializer> {
    fn from(name: &str) -> Self {
        Arg(Initializer::get(name))
    }
}

impl From<Initializer> for Arg<Initializer> {
    fn from(i: Initializer) -> Self {
        Arg(Ok(i))
    }
}
