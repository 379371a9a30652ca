//! TF 1's layer functions (`tf.compat.v1.layers`): `dense`, `conv2d`, `max_pooling2d`, `flatten`,
//! `dropout`, built from the op library, so they work in a graph (the point: TF 1 code) and
//! eagerly (as TF 2's `tf.compat.v1.layers` do).
//!
//! Matched TF 1 behaviour:
//! - Each call creates its variables, named as TF 1 does: the layer's name (default `dense`,
//!   `conv2d`, ... made unique per graph: `dense`, `dense_1`, ...) then `/kernel` and `/bias`.
//!   Reusing an explicit name in the same graph is an error, as TF 1's
//!   "Variable fc1/kernel already exists" (there is no `reuse`).
//! - The ops a layer adds are in a name scope of its name (`dense/MatMul`, `conv2d_1/Relu`).
//! - `kernel_initializer` defaults to Glorot uniform, `U(±sqrt(6 / (fan_in + fan_out)))` with
//!   `fan_in = kh·kw·in`, `fan_out = kh·kw·out` for a convolution; biases start at zeros.
//!   In a graph the initializer is a random node run by `global_variables_initializer()`.
//! - Seeds: TF 1 derives op seeds from the graph seed and an op counter; here a layer without an
//!   explicit `.seed(s)` uses a hash of its variable's name (`"dense_1/kernel"`), so the same
//!   program gives the same initial values. Values are not TensorFlow's for the same seed.
//! - `conv2d` and `max_pooling2d` are channels-last (NHWC) with `"valid"`/`"same"` padding
//!   (default `"valid"`, as TF 1).
//! - `dropout(training)` takes a bool or a scalar bool tensor (a placeholder fed per run). With a
//!   tensor the output is `where(training, dropout(x), x)`: TF 1 uses a `cond`, which this graph
//!   has not, so the mask is drawn (and its run count advanced) on inference runs too; the values
//!   are the same. The mask is redrawn on every `Session::run` (see `graph::random`).
//!
//! ```
//! use ferroflow_core::graph::{self, layers};
//! use ferroflow_core::{ops, DType, Graph, Session, Tensor};
//! let g = Graph::new();
//! let _default = g.as_default();
//! let x = graph::placeholder(DType::F32, &[None, Some(4)], "x")?;
//! let h = layers::dense(&x, 8).activation(ops::relu).apply()?;
//! let y = layers::dense(&h, 2).apply()?;
//! let names: Vec<String> = g.global_variables().iter().map(|v| v.name().to_string()).collect();
//! assert_eq!(names, ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]);
//! let init = graph::global_variables_initializer()?;
//! let sess = Session::new(&g);
//! sess.run(&[&init], &[])?;
//! let out = sess.run(&[&y], &[(&x, ops::ones(&[3, 4], DType::F32))])?;
//! assert_eq!(out[0].shape(), &[3, 2]);
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::HashMap;

use super::{default_graph, GraphId, NameScope};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::TensorSpec;
use crate::ops::{self, Padding};
use crate::tensor::Tensor;
use crate::variable::Variable;

/// An activation, as TF 1's `activation=tf.nn.relu`: any op function (`ops::relu`).
pub type Activation = fn(&Tensor) -> Result<Tensor>;

/// How a layer's kernel or bias starts.
#[derive(Clone, Debug)]
pub enum Initializer {
    /// `tf.glorot_uniform_initializer()`: `U(±sqrt(6 / (fan_in + fan_out)))` (the kernel default).
    GlorotUniform,
    /// `tf.zeros_initializer()` (the bias default).
    Zeros,
    /// `tf.constant_initializer(value)`.
    Constant(f64),
    /// `tf.truncated_normal_initializer(0, stddev)`: normal, re-drawn beyond 2 stddev.
    TruncatedNormal(f64),
    /// A given value (its shape and dtype must be the variable's): for reproducing a run.
    Value(Tensor),
}

impl Initializer {
    fn init(
        &self,
        layer: &str,
        shape: &[usize],
        fans: (usize, usize),
        dtype: DType,
        seed: u64,
    ) -> Result<Tensor> {
        match self {
            Initializer::GlorotUniform => {
                let limit = (6.0 / (fans.0 + fans.1).max(1) as f64).sqrt();
                ops::random_uniform(shape, -limit, limit, dtype, seed)
            }
            Initializer::Zeros => Ok(ops::zeros(shape, dtype)),
            Initializer::Constant(c) => Ok(ops::fill(shape, dtype, *c)),
            Initializer::TruncatedNormal(s) => ops::truncated_normal(shape, 0.0, *s, dtype, seed),
            Initializer::Value(t) => {
                if t.is_symbolic() || t.shape() != shape || t.dtype() != dtype {
                    return Err(Error::invalid(
                        layer,
                        format!(
                            "initializer value is {} {:?}, the variable needs {} {:?}",
                            t.dtype().name(),
                            t.dims(),
                            dtype.name(),
                            shape
                        ),
                    ));
                }
                Ok(t.clone())
            }
        }
    }
}

thread_local! {
    /// Layer names used so far, per graph (`None`: eager).
    static NAMES: RefCell<HashMap<Option<GraphId>, HashMap<String, usize>>> =
        RefCell::new(HashMap::new());
}

/// The layer's name: `explicit` (an error if already used in this graph) or `base` made unique
/// (`dense`, `dense_1`, ...), as TF 1's `unique_layer_name`.
fn layer_name(base: &str, explicit: Option<&str>) -> Result<String> {
    let key = default_graph().map(|g| g.id());
    NAMES.with(|n| {
        let mut n = n.borrow_mut();
        let used = n.entry(key).or_default();
        if let Some(name) = explicit {
            if used.contains_key(name) {
                return Err(Error::invalid(
                    base,
                    format!("Variable {name}/kernel already exists, disallowed: layer names must be unique in a graph"),
                ));
            }
            used.insert(name.to_string(), 1);
            return Ok(name.to_string());
        }
        loop {
            let count = used.entry(base.to_string()).or_insert(0);
            let name = if *count == 0 {
                base.to_string()
            } else {
                format!("{base}_{count}")
            };
            *count += 1;
            if !used.contains_key(&name) || name == base {
                used.entry(name.clone()).or_insert(1);
                return Ok(name);
            }
        }
    })
}

/// FNV-1a of a variable name: the default seed of its initializer.
fn name_seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The name scope of a layer's ops (graph mode only).
fn scope(name: &str) -> Option<NameScope> {
    default_graph().map(|g| g.name_scope(name))
}

/// A layer variable `<layer>/<what>`, initialized by `init` (its initializer ops are named
/// `<layer>/<what>/Initializer/...`); returns the variable and its read.
#[allow(clippy::too_many_arguments)]
fn make_variable(
    layer: &str,
    what: &str,
    init: &Initializer,
    shape: &[usize],
    fans: (usize, usize),
    dtype: DType,
    seed: Option<u64>,
) -> Result<(Variable, Tensor)> {
    let full = format!("{layer}/{what}");
    let seed = seed.unwrap_or_else(|| name_seed(&full));
    let value = {
        let _s = scope(&format!("{full}/Initializer"));
        init.init(layer, shape, fans, dtype, seed)?
    };
    let v = Variable::new(value, &full);
    let read = v.value();
    Ok((v, read))
}

fn float_input(layer: &str, x: &Tensor, rank: usize) -> Result<(TensorSpec, usize)> {
    let spec = TensorSpec::of(x);
    if !spec.dtype.is_float() {
        return Err(Error::dtype(layer, "expects a float input", &[spec.dtype]));
    }
    if spec.rank() != rank {
        return Err(Error::invalid(
            layer,
            format!(
                "expects an input of rank {rank}, got shape {}",
                super::fmt_dims(&spec.shape)
            ),
        ));
    }
    let last = spec.shape[rank - 1].ok_or_else(|| {
        Error::invalid(
            layer,
            format!(
                "the last dimension of the inputs should be defined, got shape {}",
                super::fmt_dims(&spec.shape)
            ),
        )
    })?;
    Ok((spec, last))
}

/// The builder methods TF 1's `dense` and `conv2d` share (`activation`, `use_bias`, the
/// initializers, `name`, `seed`), on fields of those names.
macro_rules! kernel_layer_builders {
    ($default_name:literal) => {
        /// `activation=` (default none: linear).
        pub fn activation(mut self, f: Activation) -> Self {
            self.activation = Some(f);
            self
        }
        /// `use_bias=` (default true).
        pub fn use_bias(mut self, on: bool) -> Self {
            self.use_bias = on;
            self
        }
        /// `kernel_initializer=` (default Glorot uniform).
        pub fn kernel_initializer(mut self, init: Initializer) -> Self {
            self.kernel_initializer = init;
            self
        }
        /// `bias_initializer=` (default zeros).
        pub fn bias_initializer(mut self, init: Initializer) -> Self {
            self.bias_initializer = init;
            self
        }
        #[doc = concat!("`name=` (default `", $default_name, "`, made unique).")]
        pub fn name(mut self, name: &str) -> Self {
            self.name = Some(name.to_string());
            self
        }
        /// The kernel initializer's seed (default: a hash of the variable's name).
        pub fn seed(mut self, seed: u64) -> Self {
            self.seed = Some(seed);
            self
        }
    };
}

/// `tf.compat.v1.layers.dense(inputs, units)`: a builder; set options, then [`Dense::apply`].
pub fn dense(inputs: &Tensor, units: usize) -> Dense {
    Dense {
        inputs: inputs.clone(),
        units,
        activation: None,
        use_bias: true,
        kernel_initializer: Initializer::GlorotUniform,
        bias_initializer: Initializer::Zeros,
        name: None,
        seed: None,
    }
}

/// `tf.compat.v1.layers.dense`: `activation(inputs @ kernel + bias)` on a rank-2 input whose last
/// dimension is known; variables `<name>/kernel` `[in, units]` and `<name>/bias` `[units]`.
#[derive(Clone, Debug)]
pub struct Dense {
    inputs: Tensor,
    units: usize,
    activation: Option<Activation>,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    name: Option<String>,
    seed: Option<u64>,
}

impl Dense {
    kernel_layer_builders!("dense");

    /// Creates the variables and returns the output.
    pub fn apply(self) -> Result<Tensor> {
        Ok(self.apply_with_variables()?.0)
    }

    /// [`apply`](Dense::apply), also returning the variables (kernel, then bias if any).
    pub fn apply_with_variables(self) -> Result<(Tensor, Vec<Variable>)> {
        const WHAT: &str = "dense";
        if self.units == 0 {
            return Err(Error::invalid(WHAT, "units must be positive, got 0"));
        }
        let (spec, n_in) = float_input(WHAT, &self.inputs, 2)?;
        let name = layer_name(WHAT, self.name.as_deref())?;
        let (k, kr) = make_variable(
            &name,
            "kernel",
            &self.kernel_initializer,
            &[n_in, self.units],
            (n_in, self.units),
            spec.dtype,
            self.seed,
        )?;
        let mut vars = vec![k];
        let bias = if self.use_bias {
            let (b, br) = make_variable(
                &name,
                "bias",
                &self.bias_initializer,
                &[self.units],
                (self.units, self.units),
                spec.dtype,
                self.seed.map(|s| s ^ 1),
            )?;
            vars.push(b);
            Some(br)
        } else {
            None
        };
        let _s = scope(&name);
        let mut y = ops::matmul(&self.inputs, &kr, false, false)?;
        if let Some(b) = bias {
            y = ops::bias_add(&y, &b)?;
        }
        if let Some(f) = self.activation {
            y = f(&y)?;
        }
        Ok((y, vars))
    }
}

fn parse_padding(layer: &str, s: &str) -> Result<Padding> {
    Padding::parse(s).ok_or_else(|| {
        Error::invalid(
            layer,
            format!("padding must be \"valid\" or \"same\", got {s:?}"),
        )
    })
}

/// `tf.compat.v1.layers.conv2d(inputs, filters, kernel_size)`: a builder; set options, then
/// [`Conv2D::apply`].
pub fn conv2d(inputs: &Tensor, filters: usize, kernel_size: [usize; 2]) -> Conv2D {
    Conv2D {
        inputs: inputs.clone(),
        filters,
        kernel_size,
        strides: [1, 1],
        padding: "valid".to_string(),
        activation: None,
        use_bias: true,
        kernel_initializer: Initializer::GlorotUniform,
        bias_initializer: Initializer::Zeros,
        name: None,
        seed: None,
    }
}

/// `tf.compat.v1.layers.conv2d`: a 2-D convolution of an NHWC input with known channels;
/// variables `<name>/kernel` `[kh, kw, in, filters]` and `<name>/bias` `[filters]`.
#[derive(Clone, Debug)]
pub struct Conv2D {
    inputs: Tensor,
    filters: usize,
    kernel_size: [usize; 2],
    strides: [usize; 2],
    padding: String,
    activation: Option<Activation>,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    name: Option<String>,
    seed: Option<u64>,
}

impl Conv2D {
    /// `strides=` (default 1, 1).
    pub fn strides(mut self, strides: [usize; 2]) -> Self {
        self.strides = strides;
        self
    }
    /// `padding=`: `"valid"` (default) or `"same"`, case-insensitive.
    pub fn padding(mut self, padding: &str) -> Self {
        self.padding = padding.to_string();
        self
    }
    kernel_layer_builders!("conv2d");

    /// Creates the variables and returns the output.
    pub fn apply(self) -> Result<Tensor> {
        Ok(self.apply_with_variables()?.0)
    }

    /// [`apply`](Conv2D::apply), also returning the variables (kernel, then bias if any).
    pub fn apply_with_variables(self) -> Result<(Tensor, Vec<Variable>)> {
        const WHAT: &str = "conv2d";
        let [kh, kw] = self.kernel_size;
        if self.filters == 0 || kh == 0 || kw == 0 || self.strides.contains(&0) {
            return Err(Error::invalid(
                WHAT,
                format!(
                    "filters, kernel_size and strides must be positive, got filters={}, kernel_size={:?}, strides={:?}",
                    self.filters, self.kernel_size, self.strides
                ),
            ));
        }
        let padding = parse_padding(WHAT, &self.padding)?;
        let (spec, c_in) = float_input(WHAT, &self.inputs, 4)?;
        let name = layer_name(WHAT, self.name.as_deref())?;
        let (k, kr) = make_variable(
            &name,
            "kernel",
            &self.kernel_initializer,
            &[kh, kw, c_in, self.filters],
            (kh * kw * c_in, kh * kw * self.filters),
            spec.dtype,
            self.seed,
        )?;
        let mut vars = vec![k];
        let bias = if self.use_bias {
            let (b, br) = make_variable(
                &name,
                "bias",
                &self.bias_initializer,
                &[self.filters],
                (self.filters, self.filters),
                spec.dtype,
                self.seed.map(|s| s ^ 1),
            )?;
            vars.push(b);
            Some(br)
        } else {
            None
        };
        let _s = scope(&name);
        let mut y = ops::conv2d(&self.inputs, &kr, self.strides, padding, [1, 1])?;
        if let Some(b) = bias {
            y = ops::bias_add(&y, &b)?;
        }
        if let Some(f) = self.activation {
            y = f(&y)?;
        }
        Ok((y, vars))
    }
}

/// `tf.compat.v1.layers.max_pooling2d(inputs, pool_size, strides, padding)`: NHWC max pooling,
/// `padding` `"valid"` or `"same"`; ops in the scope `max_pooling2d` (made unique).
pub fn max_pooling2d(
    inputs: &Tensor,
    pool_size: [usize; 2],
    strides: [usize; 2],
    padding: &str,
) -> Result<Tensor> {
    const WHAT: &str = "max_pooling2d";
    let padding = parse_padding(WHAT, padding)?;
    if pool_size.contains(&0) || strides.contains(&0) {
        return Err(Error::invalid(
            WHAT,
            format!("pool_size and strides must be positive, got {pool_size:?}, {strides:?}"),
        ));
    }
    let name = layer_name(WHAT, None)?;
    let _s = scope(&name);
    ops::max_pool2d(inputs, pool_size, strides, padding)
}

/// `tf.compat.v1.layers.flatten(inputs)`: `[batch, ...]` → `[batch, product of the rest]`; the
/// non-batch dimensions must be known (the batch may be unknown).
pub fn flatten(inputs: &Tensor) -> Result<Tensor> {
    const WHAT: &str = "flatten";
    let spec = TensorSpec::of(inputs);
    if spec.rank() == 0 {
        return Err(Error::invalid(
            WHAT,
            "expects an input of rank >= 1, got a scalar",
        ));
    }
    let rest: Option<Vec<usize>> = spec.shape[1..].iter().copied().collect();
    let rest = rest.ok_or_else(|| {
        Error::invalid(
            WHAT,
            format!(
                "the non-batch dimensions must be known, got shape {}",
                super::fmt_dims(&spec.shape)
            ),
        )
    })?;
    let n: usize = rest.iter().product();
    let name = layer_name(WHAT, None)?;
    let _s = scope(&name);
    ops::reshape(inputs, &[-1, n as isize])
}

/// Whether [`dropout`] drops: a fixed bool or a scalar bool tensor (TF 1's `training=`).
#[derive(Clone, Debug)]
pub enum Training {
    /// Known when the graph is built.
    Bool(bool),
    /// Decided per run: a scalar bool tensor, usually a placeholder.
    Tensor(Tensor),
}

impl From<bool> for Training {
    fn from(b: bool) -> Self {
        Training::Bool(b)
    }
}

impl From<&Tensor> for Training {
    fn from(t: &Tensor) -> Self {
        Training::Tensor(t.clone())
    }
}

/// `tf.compat.v1.layers.dropout(inputs, rate)`: a builder; set `training` (default false, as TF 1)
/// and options, then [`Dropout::apply`].
pub fn dropout(inputs: &Tensor, rate: f64) -> Dropout {
    Dropout {
        inputs: inputs.clone(),
        rate,
        training: Training::Bool(false),
        seed: None,
        noise_shape: None,
    }
}

/// `tf.compat.v1.layers.dropout`: at training, each element is kept with probability
/// `1 - rate` and scaled by `1 / (1 - rate)` (`tf.nn.dropout`); otherwise the identity.
#[derive(Clone, Debug)]
pub struct Dropout {
    inputs: Tensor,
    rate: f64,
    training: Training,
    seed: Option<u64>,
    noise_shape: Option<Vec<usize>>,
}

impl Dropout {
    /// `training=`: a bool, or a scalar bool tensor (placeholder) fed per run.
    pub fn training(mut self, training: impl Into<Training>) -> Self {
        self.training = training.into();
        self
    }
    /// `seed=` (default: a hash of the layer's name).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// `noise_shape=`: the mask's shape, broadcast against the input.
    pub fn noise_shape(mut self, shape: &[usize]) -> Self {
        self.noise_shape = Some(shape.to_vec());
        self
    }

    /// The output.
    pub fn apply(self) -> Result<Tensor> {
        const WHAT: &str = "dropout";
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::invalid(
                WHAT,
                format!("rate must be in [0, 1), got {}", self.rate),
            ));
        }
        if let Training::Tensor(t) = &self.training {
            let s = TensorSpec::of(t);
            if s.dtype != DType::Bool || s.rank() != 0 {
                return Err(Error::invalid(
                    WHAT,
                    format!(
                        "training must be a bool or a scalar bool tensor, got {} {}",
                        s.dtype.name(),
                        super::fmt_dims(&s.shape)
                    ),
                ));
            }
        }
        let name = layer_name(WHAT, None)?;
        let seed = self.seed.unwrap_or_else(|| name_seed(&name));
        let _s = scope(&name);
        let dropped = |x: &Tensor| ops::dropout(x, self.rate, seed, self.noise_shape.as_deref());
        match &self.training {
            Training::Bool(false) => ops::identity(&self.inputs),
            Training::Bool(true) => dropped(&self.inputs),
            Training::Tensor(t) => ops::where_(t, &dropped(&self.inputs)?, &self.inputs),
        }
    }
}
