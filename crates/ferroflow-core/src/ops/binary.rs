//! Binary elementwise arithmetic with NumPy broadcasting. Gradients are summed back to each
//! input's shape with [`reduce_to_shape`].

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{cast as cast_kernel, tensor_from, zip_map};
use crate::kernels::Float;
use crate::layout::broadcast_shapes;
use crate::op::{execute1, Dim, GradCtx, Op, TensorSpec};
use crate::ops::array::reduce_to_shape;
use crate::ops::{
    cast, floor, greater, greater_equal, less_equal, log, neg, square, where_, zeros_like,
};
use crate::storage::StorageElement;
use crate::tensor::Tensor;

/// Which binary function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (integers: true division to float64, as `tf.math.divide`)
    Div,
    /// `a ^ b`
    Pow,
    /// elementwise max
    Maximum,
    /// elementwise min
    Minimum,
    /// `floor(a / b)`
    FloorDiv,
    /// `a - floor(a / b)·b` (sign of the divisor, as `tf.math.floormod`)
    Mod,
    /// `(a - b)²`
    SquaredDifference,
}

impl BinaryOp {
    fn tf_name(self) -> &'static str {
        match self {
            BinaryOp::Add => "AddV2",
            BinaryOp::Sub => "Sub",
            BinaryOp::Mul => "Mul",
            BinaryOp::Div => "RealDiv",
            BinaryOp::Pow => "Pow",
            BinaryOp::Maximum => "Maximum",
            BinaryOp::Minimum => "Minimum",
            BinaryOp::FloorDiv => "FloorDiv",
            BinaryOp::Mod => "FloorMod",
            BinaryOp::SquaredDifference => "SquaredDifference",
        }
    }
}

/// Broadcasts two possibly partially known shapes (`None` = unknown).
pub fn broadcast_specs(op: &str, a: &TensorSpec, b: &TensorSpec) -> Result<Vec<Dim>> {
    let rank = a.rank().max(b.rank());
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let da = if i + a.rank() >= rank {
            a.shape[i + a.rank() - rank]
        } else {
            Some(1)
        };
        let db = if i + b.rank() >= rank {
            b.shape[i + b.rank() - rank]
        } else {
            Some(1)
        };
        out.push(match (da, db) {
            (Some(x), Some(y)) if x == y => Some(x),
            (Some(1), d) | (d, Some(1)) => d,
            (Some(_), Some(_)) => {
                return Err(Error::shape(
                    op,
                    "incompatible shapes for broadcasting",
                    &[&a.shape_for_error(), &b.shape_for_error()],
                ))
            }
            (None, Some(d)) | (Some(d), None) => Some(d),
            (None, None) => None,
        });
    }
    Ok(out)
}

/// Checks that two inputs share a dtype (TensorFlow does not promote implicitly).
pub fn same_dtype(op: &str, a: &TensorSpec, b: &TensorSpec) -> Result<DType> {
    if a.dtype != b.dtype {
        return Err(Error::dtype(
            op,
            "both inputs must have the same dtype (use cast)",
            &[a.dtype, b.dtype],
        ));
    }
    Ok(a.dtype)
}

/// An elementwise binary op with broadcasting.
#[derive(Clone, Debug)]
pub struct Binary(pub BinaryOp);

fn float_kernel<T: Float + StorageElement>(
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    s: &[usize],
) -> Vec<T> {
    match op {
        BinaryOp::Add => zip_map(a, b, s, |x: T, y: T| x + y),
        BinaryOp::Sub => zip_map(a, b, s, |x: T, y: T| x - y),
        BinaryOp::Mul => zip_map(a, b, s, |x: T, y: T| x * y),
        BinaryOp::Div => zip_map(a, b, s, |x: T, y: T| x / y),
        BinaryOp::Pow => zip_map(a, b, s, |x: T, y: T| x.powf(y)),
        // NaN-propagating, as TensorFlow.
        BinaryOp::Maximum => zip_map(
            a,
            b,
            s,
            |x: T, y: T| if x >= y || x.is_nan() { x } else { y },
        ),
        BinaryOp::Minimum => zip_map(
            a,
            b,
            s,
            |x: T, y: T| if x <= y || x.is_nan() { x } else { y },
        ),
        BinaryOp::FloorDiv => zip_map(a, b, s, |x: T, y: T| (x / y).floor()),
        BinaryOp::Mod => zip_map(a, b, s, |x: T, y: T| {
            let r = x % y;
            if r != T::zero() && ((r < T::zero()) != (y < T::zero())) {
                r + y
            } else {
                r
            }
        }),
        BinaryOp::SquaredDifference => zip_map(a, b, s, |x: T, y: T| (x - y) * (x - y)),
    }
}

fn int_kernel<T>(op: BinaryOp, a: &Tensor, b: &Tensor, s: &[usize]) -> Result<Vec<T>>
where
    T: StorageElement
        + num_traits::PrimInt
        + num_traits::WrappingAdd
        + num_traits::WrappingSub
        + num_traits::WrappingMul,
{
    let div_zero = || Error::invalid(BinaryOp::FloorDiv.tf_name(), "integer division by zero");
    Ok(match op {
        BinaryOp::Add => zip_map(a, b, s, |x: T, y: T| x.wrapping_add(&y)),
        BinaryOp::Sub => zip_map(a, b, s, |x: T, y: T| x.wrapping_sub(&y)),
        BinaryOp::Mul => zip_map(a, b, s, |x: T, y: T| x.wrapping_mul(&y)),
        BinaryOp::Maximum => zip_map(a, b, s, |x: T, y: T| x.max(y)),
        BinaryOp::Minimum => zip_map(a, b, s, |x: T, y: T| x.min(y)),
        BinaryOp::SquaredDifference => zip_map(a, b, s, |x: T, y: T| {
            let d = x.wrapping_sub(&y);
            d.wrapping_mul(&d)
        }),
        BinaryOp::Pow => zip_map(a, b, s, |x: T, y: T| {
            let e = y.to_u32().unwrap_or(0);
            let mut r = T::one();
            for _ in 0..e {
                r = r.wrapping_mul(&x);
            }
            r
        }),
        BinaryOp::FloorDiv | BinaryOp::Mod => {
            if b.to_f64_vec().contains(&0.0) {
                return Err(div_zero());
            }
            let floor_mod = op == BinaryOp::Mod;
            zip_map(a, b, s, move |x: T, y: T| {
                let q = x / y;
                let r = x - q * y;
                let adjust = r != T::zero() && ((r < T::zero()) != (y < T::zero()));
                if floor_mod {
                    if adjust {
                        r + y
                    } else {
                        r
                    }
                } else if adjust {
                    q - T::one()
                } else {
                    q
                }
            })
        }
        BinaryOp::Div => unreachable!("integer division is promoted to float64"),
    })
}

impl Op for Binary {
    fn name(&self) -> &'static str {
        self.0.tf_name()
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let dtype = same_dtype(self.name(), a, b)?;
        if dtype == DType::Bool {
            return Err(Error::dtype(
                self.name(),
                "does not accept bool tensors",
                &[dtype],
            ));
        }
        let shape = broadcast_specs(self.name(), a, b)?;
        let dtype = if self.0 == BinaryOp::Div && dtype.is_int() {
            DType::F64
        } else {
            dtype
        };
        Ok(vec![TensorSpec { dtype, shape }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let s = broadcast_shapes(a.shape(), b.shape()).ok_or_else(|| {
            Error::shape(self.name(), "incompatible shapes", &[a.shape(), b.shape()])
        })?;
        let out = match a.dtype() {
            DType::F32 => tensor_from(float_kernel::<f32>(self.0, a, b, &s), &s),
            DType::F64 => tensor_from(float_kernel::<f64>(self.0, a, b, &s), &s),
            DType::F16 | DType::BF16 => {
                let (a32, b32) = (cast_kernel(a, DType::F32), cast_kernel(b, DType::F32));
                cast_kernel(
                    &tensor_from(float_kernel::<f32>(self.0, &a32, &b32, &s), &s),
                    a.dtype(),
                )
            }
            d if self.0 == BinaryOp::Div => {
                debug_assert!(d.is_int());
                let (a64, b64) = (cast_kernel(a, DType::F64), cast_kernel(b, DType::F64));
                tensor_from(float_kernel::<f64>(self.0, &a64, &b64, &s), &s)
            }
            DType::I32 => tensor_from(int_kernel::<i32>(self.0, a, b, &s)?, &s),
            DType::I64 => tensor_from(int_kernel::<i64>(self.0, a, b, &s)?, &s),
            DType::U8 => tensor_from(int_kernel::<u8>(self.0, a, b, &s)?, &s),
            DType::Bool => {
                return Err(Error::dtype(
                    self.name(),
                    "does not accept bool",
                    &[DType::Bool],
                ))
            }
        };
        Ok(vec![out])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (a, b, g, y) = (ctx.x(0), ctx.x(1), ctx.g(0), ctx.y(0));
        let k = |v: f64| Tensor::scalar_of(a.dtype(), v);
        let (ga, gb) = match self.0 {
            BinaryOp::Add => (g.clone(), g.clone()),
            BinaryOp::Sub => (g.clone(), neg(g)?),
            BinaryOp::Mul => (mul(g, b)?, mul(g, a)?),
            BinaryOp::Div => (div(g, b)?, neg(&div(&mul(g, a)?, &square(b)?)?)?),
            BinaryOp::Pow => {
                // d/da = b·a^(b-1); d/db = y·ln(a) where a > 0 (0 elsewhere, as TensorFlow).
                let ga = mul(g, &mul(b, &pow(a, &sub(b, &k(1.0))?)?)?)?;
                let pos = greater(a, &k(0.0))?;
                let safe_a = where_(&pos, a, &Tensor::scalar_of(a.dtype(), 1.0))?;
                let ln = where_(&pos, &log(&safe_a)?, &zeros_like(a)?)?;
                (ga, mul(g, &mul(y, &ln)?)?)
            }
            BinaryOp::Maximum => {
                let m = cast(&greater_equal(a, b)?, a.dtype())?;
                (mul(g, &m)?, mul(g, &sub(&k(1.0), &m)?)?)
            }
            BinaryOp::Minimum => {
                let m = cast(&less_equal(a, b)?, a.dtype())?;
                (mul(g, &m)?, mul(g, &sub(&k(1.0), &m)?)?)
            }
            BinaryOp::FloorDiv => return Ok(vec![None, None]),
            // floormod(a, b) = a - floor(a/b)·b
            BinaryOp::Mod => (g.clone(), neg(&mul(g, &floor(&div(a, b)?)?)?)?),
            BinaryOp::SquaredDifference => {
                let d = mul(&mul(g, &sub(a, b)?)?, &k(2.0))?;
                (d.clone(), neg(&d)?)
            }
        };
        Ok(vec![
            Some(reduce_to_shape(&ga, a.shape())?),
            Some(reduce_to_shape(&gb, b.shape())?),
        ])
    }
}

fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    execute1(Binary(op), &[a.clone(), b.clone()])
}

macro_rules! binary_fns {
    ($($(#[$doc:meta])* $fname:ident => $variant:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $fname(a: &Tensor, b: &Tensor) -> Result<Tensor> {
                binary(BinaryOp::$variant, a, b)
            }
        )*
    };
}

binary_fns! {
    /// `tf.add`: `a + b` with broadcasting.
    ///
    /// ```
    /// use ferroflow_core::{ops, Tensor};
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let b = Tensor::from_vec(vec![10.0f32, 20.0], &[2])?;
    /// assert_eq!(ops::add(&a, &b)?.to_vec::<f32>()?, vec![11.0, 22.0, 13.0, 24.0]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    add => Add;
    /// `tf.subtract`: `a - b`.
    sub => Sub;
    /// `tf.multiply`: `a * b`.
    mul => Mul;
    /// `tf.math.divide`: `a / b` (integer inputs give float64, as TensorFlow).
    div => Div;
    /// `tf.pow`: `a ^ b`.
    pow => Pow;
    /// `tf.maximum`.
    maximum => Maximum;
    /// `tf.minimum`.
    minimum => Minimum;
    /// `tf.math.floordiv`: `floor(a / b)`.
    floor_div => FloorDiv;
    /// `tf.math.floormod`: the remainder with the divisor's sign.
    floor_mod => Mod;
    /// `tf.math.squared_difference`: `(a - b)²`.
    squared_difference => SquaredDifference;
}

/// `a + c` for a scalar `c` of `a`'s dtype.
pub fn add_scalar(a: &Tensor, c: f64) -> Result<Tensor> {
    add(a, &Tensor::scalar_of(a.dtype(), c))
}

/// `a · c` for a scalar `c` of `a`'s dtype.
pub fn mul_scalar(a: &Tensor, c: f64) -> Result<Tensor> {
    mul(a, &Tensor::scalar_of(a.dtype(), c))
}
