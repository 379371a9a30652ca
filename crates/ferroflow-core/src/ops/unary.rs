//! Unary elementwise math: one kernel line and one gradient line per op.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{cast as cast_kernel, map, tensor_from};
use crate::kernels::Float;
use crate::op::{execute1, GradCtx, Op, TensorSpec};
use crate::ops::{add, cast, div, greater, less, logical_and, mul, sub, where_, zeros_like};
use crate::tensor::Tensor;

/// SELU's constants (Klambauer et al.), as in TensorFlow.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// SELU's scale.
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// Which unary function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// -1, 0 or 1
    Sign,
    /// `e^x`
    Exp,
    /// `e^x - 1`
    Expm1,
    /// natural log
    Log,
    /// `ln(1 + x)`
    Log1p,
    /// square root
    Sqrt,
    /// `1/sqrt(x)`
    Rsqrt,
    /// `x²`
    Square,
    /// `1/x`
    Reciprocal,
    /// sine
    Sin,
    /// cosine
    Cos,
    /// hyperbolic tangent
    Tanh,
    /// logistic sigmoid
    Sigmoid,
    /// `max(x, 0)`
    Relu,
    /// `min(max(x, 0), 6)`
    Relu6,
    /// `x` if `x > 0` else `alpha·x`
    LeakyRelu(f64),
    /// `x` if `x > 0` else `alpha·(e^x - 1)`
    Elu(f64),
    /// scaled ELU
    Selu,
    /// exact GELU `x·Φ(x)`
    Gelu,
    /// tanh approximation of GELU
    GeluTanh,
    /// `ln(1 + e^x)`
    Softplus,
    /// `x / (1 + |x|)`
    Softsign,
    /// `x·sigmoid(x)` (swish)
    Silu,
    /// Keras 3's `relu6(x + 3) / 6`
    HardSigmoid,
    /// round down
    Floor,
    /// round up
    Ceil,
    /// round half to even (TensorFlow's `round`)
    Round,
    /// error function
    Erf,
}

impl UnaryOp {
    fn tf_name(self) -> &'static str {
        use UnaryOp::*;
        match self {
            Neg => "Neg",
            Abs => "Abs",
            Sign => "Sign",
            Exp => "Exp",
            Expm1 => "Expm1",
            Log => "Log",
            Log1p => "Log1p",
            Sqrt => "Sqrt",
            Rsqrt => "Rsqrt",
            Square => "Square",
            Reciprocal => "Reciprocal",
            Sin => "Sin",
            Cos => "Cos",
            Tanh => "Tanh",
            Sigmoid => "Sigmoid",
            Relu => "Relu",
            Relu6 => "Relu6",
            LeakyRelu(_) => "LeakyRelu",
            Elu(_) => "Elu",
            Selu => "Selu",
            Gelu => "Gelu",
            GeluTanh => "GeluTanh",
            Softplus => "Softplus",
            Softsign => "Softsign",
            Silu => "Silu",
            HardSigmoid => "HardSigmoid",
            Floor => "Floor",
            Ceil => "Ceil",
            Round => "Round",
            Erf => "Erf",
        }
    }

    fn int_ok(self) -> bool {
        matches!(
            self,
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Square
        )
    }
}

/// An elementwise unary op.
#[derive(Clone, Debug)]
pub struct Unary(pub UnaryOp);

#[inline(always)]
pub(crate) fn sigmoid_scalar<T: Float>(v: T) -> T {
    if v >= T::zero() {
        T::one() / (T::one() + (-v).exp())
    } else {
        let e = v.exp();
        e / (T::one() + e)
    }
}

#[inline(always)]
fn erf_scalar<T: Float>(v: T) -> T {
    T::from_f64c(libm::erf(v.to_f64c()))
}

fn erf_f32(v: f32) -> f32 {
    libm::erff(v)
}

fn float_kernel<T: Float + crate::storage::StorageElement>(op: UnaryOp, x: &Tensor) -> Vec<T> {
    use UnaryOp::*;
    let k = T::from_f64c;
    match op {
        Neg => map(x, |v: T| -v),
        Abs => map(x, |v: T| v.abs()),
        Sign => map(x, |v: T| {
            if v > T::zero() {
                T::one()
            } else if v < T::zero() {
                -T::one()
            } else {
                v
            }
        }),
        Exp => map(x, |v: T| v.exp()),
        Expm1 => map(x, |v: T| v.exp_m1()),
        Log => map(x, |v: T| v.ln()),
        Log1p => map(x, |v: T| v.ln_1p()),
        Sqrt => map(x, |v: T| v.sqrt()),
        Rsqrt => map(x, |v: T| T::one() / v.sqrt()),
        Square => map(x, |v: T| v * v),
        Reciprocal => map(x, |v: T| T::one() / v),
        Sin => map(x, |v: T| v.sin()),
        Cos => map(x, |v: T| v.cos()),
        Tanh => map(x, |v: T| v.tanh()),
        Sigmoid => map(x, sigmoid_scalar::<T>),
        Relu => map(x, |v: T| if v > T::zero() { v } else { T::zero() }),
        Relu6 => {
            let six = k(6.0);
            map(x, move |v: T| v.max(T::zero()).min(six))
        }
        LeakyRelu(a) => {
            let a = k(a);
            map(x, move |v: T| if v > T::zero() { v } else { a * v })
        }
        Elu(a) => {
            let a = k(a);
            map(
                x,
                move |v: T| if v > T::zero() { v } else { a * v.exp_m1() },
            )
        }
        Selu => {
            let (a, s) = (k(SELU_ALPHA), k(SELU_SCALE));
            map(x, move |v: T| {
                if v > T::zero() {
                    s * v
                } else {
                    s * a * v.exp_m1()
                }
            })
        }
        Gelu => {
            let r = k(std::f64::consts::FRAC_1_SQRT_2);
            let h = k(0.5);
            if T::from_f64c(0.1) == T::from_f64c(0.1f32 as f64) {
                // f32: use the single-precision erf.
                map(x, move |v: T| {
                    h * v * (T::one() + T::from_f64c(erf_f32((v * r).to_f64c() as f32) as f64))
                })
            } else {
                map(x, move |v: T| h * v * (T::one() + erf_scalar(v * r)))
            }
        }
        GeluTanh => {
            let c = k((2.0 / std::f64::consts::PI).sqrt());
            let (h, a) = (k(0.5), k(0.044715));
            map(x, move |v: T| {
                h * v * (T::one() + (c * (v + a * v * v * v)).tanh())
            })
        }
        Softplus => map(x, |v: T| (-v.abs()).exp().ln_1p() + v.max(T::zero())),
        Softsign => map(x, |v: T| v / (T::one() + v.abs())),
        Silu => map(x, |v: T| v * sigmoid_scalar(v)),
        HardSigmoid => {
            let (three, six) = (k(3.0), k(6.0));
            map(x, move |v: T| (v + three).max(T::zero()).min(six) / six)
        }
        Floor => map(x, |v: T| v.floor()),
        Ceil => map(x, |v: T| v.ceil()),
        Round => map(x, |v: T| {
            // Banker's rounding (round half to even), as tf.round.
            let r = v.round();
            if (v - v.trunc()).abs() == k(0.5) {
                k(2.0) * (v / k(2.0)).round()
            } else {
                r
            }
        }),
        Erf => map(x, erf_scalar::<T>),
    }
}

fn int_kernel<T>(op: UnaryOp, x: &Tensor) -> Vec<T>
where
    T: crate::storage::StorageElement + num_traits::Signed + WrappingOps,
{
    match op {
        UnaryOp::Neg => map(x, |v: T| WrappingOps::wrapping_neg(v)),
        UnaryOp::Abs => map(x, |v: T| v.abs()),
        UnaryOp::Sign => map(x, |v: T| v.signum()),
        _ => map(x, |v: T| WrappingOps::wrapping_mul(v, &v)),
    }
}

/// Integer negation and squaring that wrap on overflow (as TensorFlow's kernels do).
pub trait WrappingOps: Sized {
    /// `-self`, wrapping.
    fn wrapping_neg(self) -> Self;
    /// `self * o`, wrapping.
    fn wrapping_mul(self, o: &Self) -> Self;
}
impl WrappingOps for i32 {
    fn wrapping_neg(self) -> Self {
        i32::wrapping_neg(self)
    }
    fn wrapping_mul(self, o: &Self) -> Self {
        i32::wrapping_mul(self, *o)
    }
}
impl WrappingOps for i64 {
    fn wrapping_neg(self) -> Self {
        i64::wrapping_neg(self)
    }
    fn wrapping_mul(self, o: &Self) -> Self {
        i64::wrapping_mul(self, *o)
    }
}

impl Op for Unary {
    fn name(&self) -> &'static str {
        self.0.tf_name()
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        let ok =
            x.dtype.is_float() || (self.0.int_ok() && matches!(x.dtype, DType::I32 | DType::I64));
        if !ok {
            return Err(Error::dtype(
                self.name(),
                if self.0.int_ok() {
                    "expects a float or signed integer tensor"
                } else {
                    "expects a float tensor"
                },
                &[x.dtype],
            ));
        }
        Ok(vec![x.clone()])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let shape = x.shape();
        let out = match x.dtype() {
            DType::F32 => tensor_from(float_kernel::<f32>(self.0, x), shape),
            DType::F64 => tensor_from(float_kernel::<f64>(self.0, x), shape),
            DType::F16 | DType::BF16 => {
                let x32 = cast_kernel(x, DType::F32);
                cast_kernel(
                    &tensor_from(float_kernel::<f32>(self.0, &x32), shape),
                    x.dtype(),
                )
            }
            DType::I32 => tensor_from(int_kernel::<i32>(self.0, x), shape),
            DType::I64 => tensor_from(int_kernel::<i64>(self.0, x), shape),
            d => return Err(Error::dtype(self.name(), "unsupported dtype", &[d])),
        };
        Ok(vec![out])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        use UnaryOp::*;
        let (x, y, g) = (ctx.x(0), ctx.y(0), ctx.g(0));
        let k = |v: f64| Tensor::scalar_of(x.dtype(), v);
        let mask = |m: Tensor| cast(&m, x.dtype());
        let d = match self.0 {
            Neg => neg(g)?,
            Abs => mul(g, &sign(x)?)?,
            Sign => zeros_like(x)?,
            Exp => mul(g, y)?,
            Expm1 => mul(g, &add(y, &k(1.0))?)?,
            Log => div(g, x)?,
            Log1p => div(g, &add(x, &k(1.0))?)?,
            Sqrt => div(g, &mul(y, &k(2.0))?)?,
            Rsqrt => mul(g, &mul(&mul(y, &square(y)?)?, &k(-0.5))?)?,
            Square => mul(g, &mul(x, &k(2.0))?)?,
            Reciprocal => neg(&mul(g, &square(y)?)?)?,
            Sin => mul(g, &cos(x)?)?,
            Cos => neg(&mul(g, &sin(x)?)?)?,
            Tanh => mul(g, &sub(&k(1.0), &square(y)?)?)?,
            Sigmoid => mul(g, &mul(y, &sub(&k(1.0), y)?)?)?,
            // TensorFlow's `_ReluGrad` reads the output (`y > 0` exactly where `x > 0`; a NaN
            // `x` gives `y = 0`), so the pre-activation need not be kept: the graph remapper can
            // then fuse bias + ReLU into the conv/matmul in training graphs too.
            Relu => crate::ops::relu_grad(g, y)?,
            Relu6 => mul(
                g,
                &mask(logical_and(&greater(x, &k(0.0))?, &less(x, &k(6.0))?)?)?,
            )?,
            LeakyRelu(a) => where_(&greater(x, &k(0.0))?, g, &mul(g, &k(a))?)?,
            Elu(a) => where_(&greater(x, &k(0.0))?, g, &mul(g, &add(y, &k(a))?)?)?,
            Selu => where_(
                &greater(x, &k(0.0))?,
                &mul(g, &k(SELU_SCALE))?,
                &mul(g, &add(y, &k(SELU_SCALE * SELU_ALPHA))?)?,
            )?,
            Gelu => {
                // d/dx x·Φ(x) = Φ(x) + x·φ(x)
                let cdf = mul(
                    &add(
                        &k(1.0),
                        &erf_op(&mul(x, &k(std::f64::consts::FRAC_1_SQRT_2))?)?,
                    )?,
                    &k(0.5),
                )?;
                let pdf = mul(
                    &exp(&mul(&square(x)?, &k(-0.5))?)?,
                    &k(1.0 / (2.0 * std::f64::consts::PI).sqrt()),
                )?;
                mul(g, &add(&cdf, &mul(x, &pdf)?)?)?
            }
            GeluTanh => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                let x2 = square(x)?;
                let u = mul(&mul(x, &add(&k(1.0), &mul(&x2, &k(0.044715))?)?)?, &k(c))?;
                let t = tanh(&u)?;
                let du = mul(&add(&k(1.0), &mul(&x2, &k(3.0 * 0.044715))?)?, &k(c))?;
                let left = mul(&add(&k(1.0), &t)?, &k(0.5))?;
                let right = mul(&mul(&mul(x, &sub(&k(1.0), &square(&t)?)?)?, &du)?, &k(0.5))?;
                mul(g, &add(&left, &right)?)?
            }
            Softplus => mul(g, &sigmoid_op(x)?)?,
            Softsign => div(g, &square(&add(&k(1.0), &abs(x)?)?)?)?,
            Silu => {
                let s = sigmoid_op(x)?;
                let inner = add(&k(1.0), &mul(x, &sub(&k(1.0), &s)?)?)?;
                mul(g, &mul(&s, &inner)?)?
            }
            HardSigmoid => mul(
                g,
                &mul(
                    &mask(logical_and(&greater(x, &k(-3.0))?, &less(x, &k(3.0))?)?)?,
                    &k(1.0 / 6.0),
                )?,
            )?,
            // Piecewise constant: TensorFlow registers no gradient (None).
            Floor | Ceil | Round => return Ok(vec![None]),
            Erf => mul(
                g,
                &mul(
                    &exp(&neg(&square(x)?)?)?,
                    &k(2.0 / std::f64::consts::PI.sqrt()),
                )?,
            )?,
        };
        Ok(vec![Some(d)])
    }
}

fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    execute1(Unary(op), &[x.clone()])
}

fn erf_op(x: &Tensor) -> Result<Tensor> {
    erf(x)
}

fn sigmoid_op(x: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Sigmoid, x)
}

macro_rules! unary_fns {
    ($($(#[$doc:meta])* $fname:ident => $variant:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $fname(x: &Tensor) -> Result<Tensor> {
                unary(UnaryOp::$variant, x)
            }
        )*
    };
}

unary_fns! {
    /// `tf.negative`: `-x`.
    neg => Neg;
    /// `tf.abs`.
    abs => Abs;
    /// `tf.sign`: -1, 0 or 1.
    sign => Sign;
    /// `tf.exp`.
    exp => Exp;
    /// `tf.math.expm1`: `e^x - 1`, accurate near 0.
    expm1 => Expm1;
    /// `tf.math.log` (natural).
    log => Log;
    /// `tf.math.log1p`: `ln(1 + x)`, accurate near 0.
    log1p => Log1p;
    /// `tf.sqrt`.
    sqrt => Sqrt;
    /// `tf.math.rsqrt`: `1/sqrt(x)`.
    rsqrt => Rsqrt;
    /// `tf.square`.
    square => Square;
    /// `tf.math.reciprocal`: `1/x`.
    reciprocal => Reciprocal;
    /// `tf.sin`.
    sin => Sin;
    /// `tf.cos`.
    cos => Cos;
    /// `tf.tanh`.
    tanh => Tanh;
    /// `tf.sigmoid`: `1/(1 + e^-x)`, computed without overflow.
    sigmoid => Sigmoid;
    /// `tf.nn.relu`: `max(x, 0)`.
    relu => Relu;
    /// `tf.nn.relu6`: `min(max(x, 0), 6)`.
    relu6 => Relu6;
    /// `tf.nn.selu` (scaled ELU).
    selu => Selu;
    /// `tf.nn.softplus`: `ln(1 + e^x)`, computed stably.
    softplus => Softplus;
    /// `tf.nn.softsign`: `x / (1 + |x|)`.
    softsign => Softsign;
    /// `tf.nn.silu` / swish: `x·sigmoid(x)`.
    silu => Silu;
    /// Keras 3's `hard_sigmoid`: `relu6(x + 3) / 6`.
    hard_sigmoid => HardSigmoid;
    /// `tf.floor` (no gradient, as in TensorFlow).
    floor => Floor;
    /// `tf.math.ceil` (no gradient).
    ceil => Ceil;
    /// `tf.round`: half to even (no gradient).
    round => Round;
    /// `tf.math.erf`.
    erf => Erf;
}

/// `tf.nn.swish`, the same as [`silu`].
pub fn swish(x: &Tensor) -> Result<Tensor> {
    silu(x)
}

/// `tf.nn.leaky_relu(x, alpha)` (TensorFlow's default alpha is 0.2).
pub fn leaky_relu(x: &Tensor, alpha: f64) -> Result<Tensor> {
    unary(UnaryOp::LeakyRelu(alpha), x)
}

/// `tf.nn.elu` with Keras's `alpha` (1.0 in `tf.nn.elu`).
pub fn elu(x: &Tensor, alpha: f64) -> Result<Tensor> {
    unary(UnaryOp::Elu(alpha), x)
}

/// `tf.nn.gelu(x, approximate)`: exact `x·Φ(x)` or the tanh approximation.
pub fn gelu(x: &Tensor, approximate: bool) -> Result<Tensor> {
    unary(
        if approximate {
            UnaryOp::GeluTanh
        } else {
            UnaryOp::Gelu
        },
        x,
    )
}
