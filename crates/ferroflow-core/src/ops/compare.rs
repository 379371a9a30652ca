//! Comparisons (to bool), logical ops, `where`, `cast` and `clip_by_value`.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{cast as cast_kernel, map, tensor_from, zip3_map, zip_map};
use crate::layout::broadcast_shapes;
use crate::op::{execute1, GradCtx, Op, TensorSpec};
use crate::ops::array::reduce_to_shape;
use crate::ops::binary::{broadcast_specs, same_dtype};
use crate::ops::{maximum, minimum, zeros_like};
use crate::storage::StorageElement;
use crate::tensor::Tensor;
use crate::with_storage;

/// Which comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `a == b`
    Equal,
    /// `a != b`
    NotEqual,
    /// `a < b`
    Less,
    /// `a <= b`
    LessEqual,
    /// `a > b`
    Greater,
    /// `a >= b`
    GreaterEqual,
}

/// An elementwise comparison producing bool (no gradient: TensorFlow marks these
/// non-differentiable).
#[derive(Clone, Debug)]
pub struct Compare(pub CompareOp);

fn cmp_kernel<T: StorageElement>(op: CompareOp, a: &Tensor, b: &Tensor, s: &[usize]) -> Vec<bool> {
    match op {
        CompareOp::Equal => zip_map(a, b, s, |x: T, y: T| x == y),
        CompareOp::NotEqual => zip_map(a, b, s, |x: T, y: T| x != y),
        CompareOp::Less => zip_map(a, b, s, |x: T, y: T| x < y),
        CompareOp::LessEqual => zip_map(a, b, s, |x: T, y: T| x <= y),
        CompareOp::Greater => zip_map(a, b, s, |x: T, y: T| x > y),
        CompareOp::GreaterEqual => zip_map(a, b, s, |x: T, y: T| x >= y),
    }
}

impl Op for Compare {
    fn name(&self) -> &'static str {
        match self.0 {
            CompareOp::Equal => "Equal",
            CompareOp::NotEqual => "NotEqual",
            CompareOp::Less => "Less",
            CompareOp::LessEqual => "LessEqual",
            CompareOp::Greater => "Greater",
            CompareOp::GreaterEqual => "GreaterEqual",
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        same_dtype(self.name(), &inputs[0], &inputs[1])?;
        Ok(vec![TensorSpec {
            dtype: DType::Bool,
            shape: broadcast_specs(self.name(), &inputs[0], &inputs[1])?,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let s = broadcast_shapes(a.shape(), b.shape()).ok_or_else(|| {
            Error::shape(self.name(), "incompatible shapes", &[a.shape(), b.shape()])
        })?;
        let v = with_storage!(&**a.storage(), v => cmp_kernel_for(self.0, &v[..], a, b, &s));
        Ok(vec![tensor_from(v, &s)])
    }
    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![None, None])
    }
}

fn cmp_kernel_for<T: StorageElement>(
    op: CompareOp,
    _witness: &[T],
    a: &Tensor,
    b: &Tensor,
    s: &[usize],
) -> Vec<bool> {
    cmp_kernel::<T>(op, a, b, s)
}

macro_rules! cmp_fns {
    ($($(#[$doc:meta])* $fname:ident => $variant:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $fname(a: &Tensor, b: &Tensor) -> Result<Tensor> {
                execute1(Compare(CompareOp::$variant), &[a.clone(), b.clone()])
            }
        )*
    };
}

cmp_fns! {
    /// `tf.equal`.
    equal => Equal;
    /// `tf.not_equal`.
    not_equal => NotEqual;
    /// `tf.less`.
    less => Less;
    /// `tf.less_equal`.
    less_equal => LessEqual;
    /// `tf.greater`.
    greater => Greater;
    /// `tf.greater_equal`.
    greater_equal => GreaterEqual;
}

/// Which logical op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogicalOp {
    /// `a && b`
    And,
    /// `a || b`
    Or,
    /// `a != b`
    Xor,
    /// `!a` (unary)
    Not,
}

/// Logical ops on bool tensors.
#[derive(Clone, Debug)]
pub struct Logical(pub LogicalOp);

impl Op for Logical {
    fn name(&self) -> &'static str {
        match self.0 {
            LogicalOp::And => "LogicalAnd",
            LogicalOp::Or => "LogicalOr",
            LogicalOp::Xor => "LogicalXor",
            LogicalOp::Not => "LogicalNot",
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        if inputs.iter().any(|s| s.dtype != DType::Bool) {
            return Err(Error::dtype(
                self.name(),
                "expects bool tensors",
                &inputs.iter().map(|s| s.dtype).collect::<Vec<_>>(),
            ));
        }
        let shape = if inputs.len() == 1 {
            inputs[0].shape.clone()
        } else {
            broadcast_specs(self.name(), &inputs[0], &inputs[1])?
        };
        Ok(vec![TensorSpec {
            dtype: DType::Bool,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let a = &inputs[0];
        if self.0 == LogicalOp::Not {
            return Ok(vec![tensor_from(map(a, |x: bool| !x), a.shape())]);
        }
        let b = &inputs[1];
        let s = broadcast_shapes(a.shape(), b.shape()).ok_or_else(|| {
            Error::shape(self.name(), "incompatible shapes", &[a.shape(), b.shape()])
        })?;
        let v = match self.0 {
            LogicalOp::And => zip_map(a, b, &s, |x: bool, y: bool| x && y),
            LogicalOp::Or => zip_map(a, b, &s, |x: bool, y: bool| x || y),
            _ => zip_map(a, b, &s, |x: bool, y: bool| x != y),
        };
        Ok(vec![tensor_from(v, &s)])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![None; ctx.inputs.len()])
    }
}

/// `tf.logical_and`.
pub fn logical_and(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    execute1(Logical(LogicalOp::And), &[a.clone(), b.clone()])
}
/// `tf.logical_or`.
pub fn logical_or(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    execute1(Logical(LogicalOp::Or), &[a.clone(), b.clone()])
}
/// `tf.math.logical_xor`.
pub fn logical_xor(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    execute1(Logical(LogicalOp::Xor), &[a.clone(), b.clone()])
}
/// `tf.logical_not`.
pub fn logical_not(a: &Tensor) -> Result<Tensor> {
    execute1(Logical(LogicalOp::Not), &[a.clone()])
}

/// `tf.where(cond, x, y)`: elements of `x` where `cond` is true, else of `y` (all three broadcast).
#[derive(Clone, Debug)]
pub struct Select;

impl Op for Select {
    fn name(&self) -> &'static str {
        "SelectV2"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let (c, x, y) = (&inputs[0], &inputs[1], &inputs[2]);
        if c.dtype != DType::Bool {
            return Err(Error::dtype(
                "SelectV2",
                "condition must be bool",
                &[c.dtype],
            ));
        }
        let dtype = same_dtype("SelectV2", x, y)?;
        let xy = TensorSpec {
            dtype,
            shape: broadcast_specs("SelectV2", x, y)?,
        };
        Ok(vec![TensorSpec {
            dtype,
            shape: broadcast_specs("SelectV2", c, &xy)?,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (c, x, y) = (&inputs[0], &inputs[1], &inputs[2]);
        let s = broadcast_shapes(x.shape(), y.shape())
            .and_then(|s| broadcast_shapes(c.shape(), &s))
            .ok_or_else(|| {
                Error::shape(
                    "SelectV2",
                    "incompatible shapes",
                    &[c.shape(), x.shape(), y.shape()],
                )
            })?;
        let out = with_storage!(&**x.storage(), v => select_for(&v[..], c, x, y, &s));
        Ok(vec![out])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (c, x, y, g) = (ctx.x(0), ctx.x(1), ctx.x(2), ctx.g(0));
        let z = zeros_like(g)?;
        let gx = where_(c, g, &z)?;
        let gy = where_(c, &z, g)?;
        Ok(vec![
            None,
            Some(reduce_to_shape(&gx, x.shape())?),
            Some(reduce_to_shape(&gy, y.shape())?),
        ])
    }
}

fn select_for<T: StorageElement>(
    _w: &[T],
    c: &Tensor,
    x: &Tensor,
    y: &Tensor,
    s: &[usize],
) -> Tensor {
    tensor_from(
        zip3_map(c, x, y, s, |c: bool, a: T, b: T| if c { a } else { b }),
        s,
    )
}

/// `tf.where(cond, x, y)`.
pub fn where_(cond: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    execute1(Select, &[cond.clone(), x.clone(), y.clone()])
}

/// `tf.cast`: converts to another dtype (float → int truncates toward zero).
#[derive(Clone, Debug)]
pub struct Cast {
    /// Target dtype.
    pub dtype: DType,
}

impl Op for Cast {
    fn name(&self) -> &'static str {
        "Cast"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        Ok(vec![TensorSpec {
            dtype: self.dtype,
            shape: inputs[0].shape.clone(),
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![cast_kernel(&inputs[0], self.dtype).with_new_id()])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.x(0);
        if x.dtype().is_float() && self.dtype.is_float() {
            Ok(vec![Some(cast(ctx.g(0), x.dtype())?)])
        } else {
            Ok(vec![None])
        }
    }
}

/// `tf.cast(x, dtype)`.
pub fn cast(x: &Tensor, dtype: DType) -> Result<Tensor> {
    execute1(Cast { dtype }, &[x.clone()])
}

/// `tf.clip_by_value(x, lo, hi)` (lo and hi broadcast; gradient passes where lo ≤ x ≤ hi).
pub fn clip_by_value(x: &Tensor, lo: &Tensor, hi: &Tensor) -> Result<Tensor> {
    minimum(&maximum(x, lo)?, hi)
}

/// `tf.clip_by_value` with scalar bounds.
pub fn clip_by_value_scalar(x: &Tensor, lo: f64, hi: f64) -> Result<Tensor> {
    clip_by_value(
        x,
        &Tensor::scalar_of(x.dtype(), lo),
        &Tensor::scalar_of(x.dtype(), hi),
    )
}

/// `tf.math.is_finite` / `is_nan` / `is_inf`: float → bool tests (no gradient).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatTest {
    /// neither inf nor nan
    Finite,
    /// nan
    Nan,
    /// ±inf
    Inf,
}

/// A float → bool elementwise test.
#[derive(Clone, Debug)]
pub struct IsFloatClass(pub FloatTest);

impl Op for IsFloatClass {
    fn name(&self) -> &'static str {
        match self.0 {
            FloatTest::Finite => "IsFinite",
            FloatTest::Nan => "IsNan",
            FloatTest::Inf => "IsInf",
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        if !inputs[0].dtype.is_float() {
            return Err(Error::dtype(
                self.name(),
                "expects a float tensor",
                &[inputs[0].dtype],
            ));
        }
        Ok(vec![TensorSpec {
            dtype: DType::Bool,
            shape: inputs[0].shape.clone(),
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = cast_kernel(&inputs[0], DType::F64);
        let v = match self.0 {
            FloatTest::Finite => map(&x, |v: f64| v.is_finite()),
            FloatTest::Nan => map(&x, |v: f64| v.is_nan()),
            FloatTest::Inf => map(&x, |v: f64| v.is_infinite()),
        };
        Ok(vec![tensor_from(v, x.shape())])
    }
    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![None])
    }
}

/// `tf.math.is_finite`.
pub fn is_finite(x: &Tensor) -> Result<Tensor> {
    execute1(IsFloatClass(FloatTest::Finite), &[x.clone()])
}
/// `tf.math.is_nan`.
pub fn is_nan(x: &Tensor) -> Result<Tensor> {
    execute1(IsFloatClass(FloatTest::Nan), &[x.clone()])
}
/// `tf.math.is_inf`.
pub fn is_inf(x: &Tensor) -> Result<Tensor> {
    execute1(IsFloatClass(FloatTest::Inf), &[x.clone()])
}
