//! Fused element-wise updates: every Keras optimizer's `update_step` is element-wise, so each
//! one runs as a single pass over the variable, its gradient and its slots instead of a chain of
//! tensor ops (one allocation per intermediate).
//!
//! `float32` and `float64` variables are updated in their own precision (as Keras computes in
//! the variable's dtype); `float16`/`bfloat16` variables go through `f64` and are rounded back.

use std::ops::{Add, Div, Mul, Neg, Sub};

use ferroflow_core::storage::StorageElement;
use ferroflow_core::{ops, DType, Error, Result, Tensor, Variable};

/// The float types a fused update runs in.
pub trait Float:
    StorageElement
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// `√x`.
    fn sqrt(self) -> Self;
    /// `|x|`.
    fn abs(self) -> Self;
    /// `max(a, b)`, NaN-propagating like `ops.maximum`.
    fn maximum(self, other: Self) -> Self;
    /// `ops.sign`: -1, 0 or 1 (NaN stays NaN).
    fn sign(self) -> Self;
    /// The constant `v` in this precision.
    fn c(v: f64) -> Self {
        <Self as ferroflow_core::Element>::from_f64(v)
    }
}

macro_rules! float_impl {
    ($t:ty) => {
        impl Float for $t {
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn maximum(self, other: Self) -> Self {
                if self.is_nan() || other.is_nan() {
                    <$t>::NAN
                } else if self >= other {
                    self
                } else {
                    other
                }
            }
            fn sign(self) -> Self {
                if self > 0.0 {
                    1.0
                } else if self < 0.0 {
                    -1.0
                } else {
                    self // 0, -0 or NaN
                }
            }
        }
    };
}
float_impl!(f32);
float_impl!(f64);

/// One optimizer's element-wise rule: updates the variable `w` in place from its gradient `g`
/// and its slots (each as long as `w`), all in precision `T`.
pub trait Kernel {
    /// Runs the rule over whole arrays.
    fn run<T: Float>(&self, w: &mut [T], g: &[T], slots: &mut [Vec<T>]);
}

/// Applies `kernel` to `var` with gradient `grad` and the slot variables `slots` (same shape and
/// dtype as `var`), then writes the variable and the slots back.
pub fn apply_kernel<K: Kernel>(
    var: &Variable,
    grad: &Tensor,
    slots: &[Variable],
    kernel: &K,
) -> Result<()> {
    // Not an op: timed here so that `FERROFLOW_PROFILE=1` shows the optimizer's share too.
    if ferroflow_core::profiler::enabled() {
        return ferroflow_core::profiler::timed("OptimizerUpdate", || {
            apply_untimed(var, grad, slots, kernel)
        });
    }
    apply_untimed(var, grad, slots, kernel)
}

fn apply_untimed<K: Kernel>(
    var: &Variable,
    grad: &Tensor,
    slots: &[Variable],
    kernel: &K,
) -> Result<()> {
    match var.dtype() {
        DType::F32 => run_typed::<f32, K>(var, grad, slots, kernel),
        DType::F64 => run_typed::<f64, K>(var, grad, slots, kernel),
        DType::F16 | DType::BF16 => {
            let dtype = var.dtype();
            let shape = var.shape();
            let mut w = var_value(var).to_f64_vec();
            let g = grad.to_f64_vec();
            let mut s: Vec<Vec<f64>> = slots.iter().map(|v| var_value(v).to_f64_vec()).collect();
            kernel.run(&mut w, &g, &mut s);
            for (slot, data) in slots.iter().zip(&s) {
                slot.assign(&Tensor::from_f64_slice(dtype, data, &shape)?)?;
            }
            var.assign(&Tensor::from_f64_slice(dtype, &w, &shape)?)
        }
        other => Err(Error::dtype(
            "optimizer",
            format!("variable {:?} is not a float variable", var.name()),
            &[other],
        )),
    }
}

/// The variable's current value.
fn var_value(v: &Variable) -> Tensor {
    v.value()
}

fn run_typed<T: Float, K: Kernel>(
    var: &Variable,
    grad: &Tensor,
    slots: &[Variable],
    kernel: &K,
) -> Result<()> {
    let shape = var.shape();
    let g = if grad.dtype() == T::DTYPE {
        grad.clone()
    } else {
        ops::cast(grad, T::DTYPE)?
    };
    let gd = g.data::<T>()?;
    let n: usize = shape.iter().product();
    if gd.len() != n || slots.iter().any(|s| s.shape() != shape) {
        return Err(Error::shape(
            "optimizer",
            format!(
                "gradient or slots of variable {:?} do not match its shape",
                var.name()
            ),
            &[&shape, g.shape()],
        ));
    }
    if !ferroflow_core::graph::building() && var.graph().is_none() {
        // Weights and slots updated in their own buffers when nothing else holds them (no
        // per-step copies or allocations); same arithmetic as the copying path below.
        let mut all: Vec<&Variable> = Vec::with_capacity(1 + slots.len());
        all.push(var);
        all.extend(slots.iter());
        return Variable::update_elements::<T>(&all, |vs| {
            if let Some((w, s)) = vs.split_first_mut() {
                kernel.run(w, &gd, s);
            }
        });
    }
    let mut w = var_value(var).to_vec::<T>()?;
    let mut s = slots
        .iter()
        .map(|v| var_value(v).to_vec::<T>())
        .collect::<Result<Vec<_>>>()?;
    kernel.run(&mut w, &gd, &mut s);
    for (slot, data) in slots.iter().zip(s) {
        slot.assign(&Tensor::from_vec(data, &shape)?)?;
    }
    var.assign(&Tensor::from_vec(w, &shape)?)
}

/// Keras's decoupled weight decay, `w = w - w·wd·lr`, as one pass.
pub struct WeightDecay {
    /// `wd·lr`.
    pub rate: f64,
}

impl Kernel for WeightDecay {
    fn run<T: Float>(&self, w: &mut [T], _g: &[T], _slots: &mut [Vec<T>]) {
        let r = T::c(self.rate);
        for x in w.iter_mut() {
            *x = *x - *x * r;
        }
    }
}

/// Runs a kernel that only reads and writes the variable (no gradient, no slots).
pub fn apply_to_variable<K: Kernel>(var: &Variable, kernel: &K) -> Result<()> {
    // The kernel ignores the gradient; the variable's own value stands in for it.
    apply_kernel(var, &var.value(), &[], kernel)
}
