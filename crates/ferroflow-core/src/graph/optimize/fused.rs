//! The fused kernels the remapping pass creates: [`FusedElementwise`] (a tree of elementwise
//! unary/binary ops evaluated in one pass over memory) and [`FusedBiasActivation`] (Grappler's
//! `_FusedMatMul` / `_FusedConv2D`: MatMul or Conv2D, then BiasAdd and an activation applied in
//! the same pass over the output buffer).
//!
//! Both keep each element's arithmetic exactly as the unfused ops do it (same expressions, same
//! order), so their results are bit-identical to the unfused graph; their gradients are the
//! unfused ops' own [`Op::grad`] rules, replayed.

use std::sync::Arc;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::elementwise::tensor_from;
use crate::kernels::parallel::for_each_chunk_mut;
use crate::kernels::Float;
use crate::op::{execute1, GradCtx, Op, TensorSpec};
use crate::ops::binary::{Binary, BinaryOp};
use crate::ops::conv::{Conv2D, ConvKind};
use crate::ops::linalg::MatMul;
use crate::ops::nn::BiasAdd;
use crate::ops::unary::{sigmoid_scalar, Unary, UnaryOp};
use crate::storage::{Storage, StorageElement};
use crate::tensor::Tensor;

/// One elementwise function of a fused program.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ElemFn {
    /// A unary op.
    Unary(UnaryOp),
    /// A binary op (its arguments broadcast).
    Binary(BinaryOp),
}

/// Where a step of a fused program reads an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Input `i` of the fused op.
    Input(usize),
    /// The result of an earlier step.
    Step(usize),
}

/// The unary functions a fused kernel evaluates (the same expressions as `ops::unary`).
pub fn fusable_unary(op: UnaryOp) -> bool {
    use UnaryOp::*;
    matches!(
        op,
        Neg | Abs
            | Exp
            | Expm1
            | Log
            | Log1p
            | Sqrt
            | Rsqrt
            | Square
            | Reciprocal
            | Sin
            | Cos
            | Tanh
            | Sigmoid
            | Relu
            | Relu6
            | LeakyRelu(_)
            | Elu(_)
            | Softplus
            | Softsign
            | Silu
    )
}

/// The binary functions a fused kernel evaluates (the same expressions as `ops::binary`).
pub fn fusable_binary(op: BinaryOp) -> bool {
    use BinaryOp::*;
    matches!(
        op,
        Add | Sub | Mul | Div | Pow | Maximum | Minimum | SquaredDifference
    )
}

/// Expands to a `match` on a [`UnaryOp`] calling `$each!(|v| expr)` with exactly the
/// per-element expression of `ops::unary`'s kernel (never-fused ops: `$other`).
macro_rules! unary_match {
    ($op:expr, $t:ty, $each:ident, $other:expr) => {{
        use UnaryOp::*;
        let k = <$t>::from_f64c;
        match $op {
            Neg => $each!(|v| -v),
            Abs => $each!(|v| v.abs()),
            Exp => $each!(|v| v.exp()),
            Expm1 => $each!(|v| v.exp_m1()),
            Log => $each!(|v| v.ln()),
            Log1p => $each!(|v| v.ln_1p()),
            Sqrt => $each!(|v| v.sqrt()),
            Rsqrt => $each!(|v| <$t>::one() / v.sqrt()),
            Square => $each!(|v| v * v),
            Reciprocal => $each!(|v| <$t>::one() / v),
            Sin => $each!(|v| v.sin()),
            Cos => $each!(|v| v.cos()),
            Tanh => $each!(|v| v.tanh()),
            Sigmoid => $each!(|v| sigmoid_scalar(v)),
            Relu => $each!(|v| if v > <$t>::zero() { v } else { <$t>::zero() }),
            Relu6 => {
                let six = k(6.0);
                $each!(|v| v.max(<$t>::zero()).min(six))
            }
            LeakyRelu(a) => {
                let a = k(a);
                $each!(|v| if v > <$t>::zero() { v } else { a * v })
            }
            Elu(a) => {
                let a = k(a);
                $each!(|v| if v > <$t>::zero() { v } else { a * v.exp_m1() })
            }
            Softplus => $each!(|v| (-v.abs()).exp().ln_1p() + v.max(<$t>::zero())),
            Softsign => $each!(|v| v / (<$t>::one() + v.abs())),
            Silu => $each!(|v| v * sigmoid_scalar(v)),
            _ => $other,
        }
    }};
}

/// `y[i] = op(x[i])`, with exactly the per-element expression of `ops::unary`'s kernel.
fn unary_slice<T: Float>(op: UnaryOp, x: &[T], y: &mut [T]) {
    macro_rules! each {
        (|$v:ident| $e:expr) => {
            for (o, &$v) in y.iter_mut().zip(x) {
                *o = $e;
            }
        };
    }
    // Never fused (see `fusable_unary`): copy so the kernel stays total.
    unary_match!(op, T, each, y.copy_from_slice(x))
}

/// `y[i] = op(y[i])` in place (same expressions as [`unary_slice`]).
fn unary_in_place<T: Float>(op: UnaryOp, y: &mut [T]) {
    macro_rules! each {
        (|$v:ident| $e:expr) => {
            for o in y.iter_mut() {
                let $v = *o;
                *o = $e;
            }
        };
    }
    unary_match!(op, T, each, ())
}

/// `y[i] = op(a[i], b[i])`, with exactly the per-element expression of `ops::binary`'s kernel.
fn binary_slice<T: Float>(op: BinaryOp, a: &[T], b: &[T], y: &mut [T]) {
    macro_rules! each {
        (|$x:ident, $z:ident| $e:expr) => {
            for ((o, &$x), &$z) in y.iter_mut().zip(a).zip(b) {
                *o = $e;
            }
        };
    }
    match op {
        BinaryOp::Add => each!(|x, z| x + z),
        BinaryOp::Sub => each!(|x, z| x - z),
        BinaryOp::Mul => each!(|x, z| x * z),
        BinaryOp::Div => each!(|x, z| x / z),
        BinaryOp::Pow => each!(|x, z| x.powf(z)),
        BinaryOp::Maximum => each!(|x, z| if x >= z || x.is_nan() { x } else { z }),
        BinaryOp::Minimum => each!(|x, z| if x <= z || x.is_nan() { x } else { z }),
        BinaryOp::SquaredDifference => each!(|x, z| (x - z) * (x - z)),
        // Never fused (see `fusable_binary`).
        _ => y.copy_from_slice(a),
    }
}

/// How an input of a fused elementwise kernel maps onto the output's elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broadcast {
    /// The input has the output's shape.
    Full,
    /// One element, used everywhere.
    Scalar,
    /// The output's last dimension (a bias): element `i` reads `x[i % last]`.
    Row,
}

/// Classifies an input of shape `x` against the output shape `out`, or `None` when the fused
/// kernel does not handle that broadcast.
pub fn classify(x: &[usize], out: &[usize]) -> Option<Broadcast> {
    let n: usize = x.iter().product();
    if x == out {
        return Some(Broadcast::Full);
    }
    if n == 1 && x.len() <= out.len() {
        return Some(Broadcast::Scalar);
    }
    let last = *out.last()?;
    let trailing_ok = x.last() == Some(&last) && n == last && x.len() <= out.len();
    trailing_ok.then_some(Broadcast::Row)
}

/// A source of a fused kernel's input while it runs.
enum Src<'a, T> {
    Data(&'a [T], Broadcast),
    /// The output buffer itself (an input computed in place).
    InPlace,
}

/// Block length of the per-step registers: small enough to stay in L1.
const BLOCK: usize = 256;

/// A tree of elementwise ops evaluated in one pass: for each block of output elements, the
/// inputs are read once, every step runs on block-sized registers, and only the result is
/// written — no intermediate tensor is ever allocated.
///
/// Inputs are either of the output's shape, a scalar, or a vector along the last axis (a bias).
/// Float32/float64 only. Each element is computed by the very expressions of the unfused ops, in
/// the same order, so results are bit-identical; the gradient replays the unfused ops' rules.
///
/// ```
/// use ferroflow_core::graph::optimize::fused::{Arg, ElemFn, FusedElementwise};
/// use ferroflow_core::ops::{binary::BinaryOp, unary::UnaryOp};
/// use ferroflow_core::{op::execute1, Tensor};
/// // relu(x * 2 + b)
/// let f = FusedElementwise::new(
///     3,
///     vec![
///         (ElemFn::Binary(BinaryOp::Mul), vec![Arg::Input(0), Arg::Input(1)]),
///         (ElemFn::Binary(BinaryOp::Add), vec![Arg::Step(0), Arg::Input(2)]),
///         (ElemFn::Unary(UnaryOp::Relu), vec![Arg::Step(1)]),
///     ],
/// )?;
/// let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.0, -4.0], &[2, 2])?;
/// let two = Tensor::scalar(2.0f32);
/// let b = Tensor::from_vec(vec![0.5f32, 1.0], &[2])?;
/// let y = execute1(f, &[x, two, b])?;
/// assert_eq!(y.to_vec::<f32>()?, vec![2.5, 0.0, 6.5, 0.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FusedElementwise {
    /// Number of inputs.
    pub n_inputs: usize,
    /// The steps in evaluation order; the last one is the output.
    pub steps: Vec<(ElemFn, Vec<Arg>)>,
}

impl FusedElementwise {
    /// A fused program; errors when a step refers to a missing input or a later step, or has the
    /// wrong number of arguments.
    pub fn new(n_inputs: usize, steps: Vec<(ElemFn, Vec<Arg>)>) -> Result<FusedElementwise> {
        if steps.is_empty() {
            return Err(Error::invalid(
                "FusedElementwise",
                "needs at least one step",
            ));
        }
        for (j, (f, args)) in steps.iter().enumerate() {
            let arity = match f {
                ElemFn::Unary(u) if fusable_unary(*u) => 1,
                ElemFn::Binary(b) if fusable_binary(*b) => 2,
                _ => {
                    return Err(Error::invalid(
                        "FusedElementwise",
                        format!("step {j}: {f:?} cannot be fused"),
                    ))
                }
            };
            let ok = args.len() == arity
                && args.iter().all(|a| match *a {
                    Arg::Input(i) => i < n_inputs,
                    Arg::Step(s) => s < j,
                });
            if !ok {
                return Err(Error::invalid(
                    "FusedElementwise",
                    format!("step {j}: bad arguments {args:?} ({n_inputs} inputs)"),
                ));
            }
        }
        Ok(FusedElementwise { n_inputs, steps })
    }

    fn step_op(f: ElemFn) -> Arc<dyn Op> {
        match f {
            ElemFn::Unary(u) => Arc::new(Unary(u)),
            ElemFn::Binary(b) => Arc::new(Binary(b)),
        }
    }

    /// Computes with owned inputs: when an input of the output's shape is uniquely owned (the
    /// memory planner proved it dead), its buffer becomes the output (in place).
    pub(crate) fn compute_owned(&self, inputs: Vec<Tensor>, in_place: bool) -> Result<Tensor> {
        let specs: Vec<TensorSpec> = inputs.iter().map(TensorSpec::of).collect();
        let out_spec = self.infer(&specs)?.swap_remove(0);
        let shape = out_spec.known_shape().unwrap_or_default();
        let kinds = inputs
            .iter()
            .map(|t| classify(t.shape(), &shape))
            .collect::<Option<Vec<_>>>();
        let float = matches!(out_spec.dtype, DType::F32 | DType::F64);
        let Some(kinds) = kinds.filter(|_| float) else {
            return self.compute_unfused(&inputs);
        };
        match out_spec.dtype {
            DType::F32 => self.run::<f32>(inputs, &kinds, &shape, in_place),
            _ => self.run::<f64>(inputs, &kinds, &shape, in_place),
        }
    }

    fn run<T: Float + StorageElement + FromStorage>(
        &self,
        mut inputs: Vec<Tensor>,
        kinds: &[Broadcast],
        shape: &[usize],
        in_place: bool,
    ) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        // An input whose buffer can hold the output.
        let mut out: Option<(usize, Vec<T>)> = None;
        if in_place {
            for (i, kind) in kinds.iter().enumerate() {
                if *kind != Broadcast::Full || inputs[i].dtype() != T::DTYPE {
                    continue;
                }
                let t = std::mem::replace(&mut inputs[i], Tensor::scalar(T::zero()));
                match t.try_into_storage() {
                    Ok(s) => {
                        out = T::from_storage(s).map(|v| (i, v));
                        if out.is_some() {
                            break;
                        }
                    }
                    Err(t) => inputs[i] = t,
                }
            }
        }
        let datas: Vec<std::borrow::Cow<'_, [T]>> = inputs
            .iter()
            .map(|t| t.data::<T>())
            .collect::<Result<_>>()?;
        let srcs: Vec<Src<'_, T>> = datas
            .iter()
            .zip(kinds)
            .enumerate()
            .map(|(i, (d, &k))| match &out {
                Some((j, _)) if *j == i => Src::InPlace,
                _ => Src::Data(d, k),
            })
            .collect();
        let mut buf = match out {
            Some((_, v)) => v,
            None => vec![T::zero(); n],
        };
        let last = shape.last().copied().unwrap_or(1).max(1);
        let steps = &self.steps;
        let n_in = self.n_inputs;
        for_each_chunk_mut(&mut buf, |start, chunk| {
            let mut ins = vec![T::zero(); n_in * BLOCK];
            let mut regs = vec![T::zero(); steps.len() * BLOCK];
            let mut s = 0;
            while s < chunk.len() {
                let b = BLOCK.min(chunk.len() - s);
                let base = start + s;
                for (k, src) in srcs.iter().enumerate() {
                    let dst = &mut ins[k * BLOCK..k * BLOCK + b];
                    match src {
                        Src::InPlace => dst.copy_from_slice(&chunk[s..s + b]),
                        Src::Data(d, Broadcast::Full) => dst.copy_from_slice(&d[base..base + b]),
                        Src::Data(d, Broadcast::Scalar) => dst.fill(d[0]),
                        Src::Data(d, Broadcast::Row) => {
                            for (i, o) in dst.iter_mut().enumerate() {
                                *o = d[(base + i) % last];
                            }
                        }
                    }
                }
                for (j, (f, args)) in steps.iter().enumerate() {
                    let (done, rest) = regs.split_at_mut(j * BLOCK);
                    let y = &mut rest[..b];
                    let arg = |a: &Arg| -> &[T] {
                        match *a {
                            Arg::Input(i) => &ins[i * BLOCK..i * BLOCK + b],
                            Arg::Step(p) => &done[p * BLOCK..p * BLOCK + b],
                        }
                    };
                    match f {
                        ElemFn::Unary(u) => unary_slice(*u, arg(&args[0]), y),
                        ElemFn::Binary(op) => binary_slice(*op, arg(&args[0]), arg(&args[1]), y),
                    }
                }
                let l = steps.len() - 1;
                chunk[s..s + b].copy_from_slice(&regs[l * BLOCK..l * BLOCK + b]);
                s += b;
            }
        });
        Ok(tensor_from(buf, shape))
    }

    /// The same result from the unfused ops (any dtype or broadcast).
    fn compute_unfused(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let vals = self.replay(inputs, false)?;
        Ok(vals.into_iter().last().unwrap_or_else(|| inputs[0].clone()))
    }

    /// Each step's value from the unfused ops: computed directly, or (`symbolic`) through
    /// [`execute1`] so that graph mode builds nodes.
    fn replay(&self, inputs: &[Tensor], symbolic: bool) -> Result<Vec<Tensor>> {
        let mut vals: Vec<Tensor> = Vec::with_capacity(self.steps.len());
        for (f, args) in &self.steps {
            let xs: Vec<Tensor> = args
                .iter()
                .map(|a| match *a {
                    Arg::Input(i) => inputs[i].clone(),
                    Arg::Step(p) => vals[p].clone(),
                })
                .collect();
            let y = if symbolic {
                match *f {
                    ElemFn::Unary(u) => execute1(Unary(u), &xs)?,
                    ElemFn::Binary(b) => execute1(Binary(b), &xs)?,
                }
            } else {
                crate::op::compute(Self::step_op(*f).as_ref(), &xs)?.swap_remove(0)
            };
            vals.push(y);
        }
        Ok(vals)
    }
}

fn add_grad(slot: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *slot = Some(match slot.take() {
        Some(a) => crate::ops::add(&a, &g)?,
        None => g,
    });
    Ok(())
}

impl Op for FusedElementwise {
    fn name(&self) -> &'static str {
        "FusedElementwise"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        if inputs.len() != self.n_inputs {
            return Err(Error::invalid(
                self.name(),
                format!("expects {} inputs, got {}", self.n_inputs, inputs.len()),
            ));
        }
        let mut specs: Vec<TensorSpec> = Vec::with_capacity(self.steps.len());
        for (f, args) in &self.steps {
            let xs: Vec<TensorSpec> = args
                .iter()
                .map(|a| match *a {
                    Arg::Input(i) => inputs[i].clone(),
                    Arg::Step(p) => specs[p].clone(),
                })
                .collect();
            specs.push(Self::step_op(*f).infer(&xs)?.swap_remove(0));
        }
        Ok(vec![specs.swap_remove(specs.len() - 1)])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![self.compute_owned(inputs.to_vec(), false)?])
    }
    /// The unfused ops' gradient rules, replayed backwards over the program.
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let vals = self.replay(ctx.inputs, true)?;
        let mut step_g: Vec<Option<Tensor>> = vec![None; self.steps.len()];
        let mut in_g: Vec<Option<Tensor>> = vec![None; self.n_inputs];
        step_g[self.steps.len() - 1] = Some(ctx.g(0).clone());
        for j in (0..self.steps.len()).rev() {
            let Some(g) = step_g[j].take() else { continue };
            let (f, args) = &self.steps[j];
            let xs: Vec<Tensor> = args
                .iter()
                .map(|a| match *a {
                    Arg::Input(i) => ctx.inputs[i].clone(),
                    Arg::Step(p) => vals[p].clone(),
                })
                .collect();
            let sub = GradCtx {
                inputs: &xs,
                outputs: std::slice::from_ref(&vals[j]),
                grads: std::slice::from_ref(&g),
                needed: &[],
            };
            let gs = Self::step_op(*f).grad(&sub)?;
            for (a, gi) in args.iter().zip(gs) {
                let Some(gi) = gi else { continue };
                match *a {
                    Arg::Input(i) => add_grad(&mut in_g[i], gi)?,
                    Arg::Step(p) => add_grad(&mut step_g[p], gi)?,
                }
            }
        }
        Ok(in_g)
    }
}

/// Runs an `Arc<dyn Op>` through [`execute1`] (graph mode builds a node, a tape records it).
#[derive(Debug)]
struct DynOp(Arc<dyn Op>);

impl Op for DynOp {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        self.0.infer(inputs)
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.0.compute(inputs)
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        self.0.grad(ctx)
    }
    fn is_stateful(&self) -> bool {
        self.0.is_stateful()
    }
}

/// MatMul or Conv2D, then BiasAdd, then an optional activation, with the bias and the activation
/// applied in one pass over the base op's output buffer (TensorFlow Grappler's `_FusedMatMul` and
/// `_FusedConv2D`). Inputs: the base op's two inputs, then the bias.
///
/// The base op runs its usual kernel; `v + bias[c]` then `activation(...)` are the unfused
/// BiasAdd and activation expressions, so results are bit-identical to the unfused ops; the
/// gradient is theirs, replayed (activation, BiasAdd, then the base op's rule).
///
/// ```
/// use ferroflow_core::graph::optimize::fused::FusedBiasActivation;
/// use ferroflow_core::ops::{linalg::MatMul, unary::UnaryOp};
/// use ferroflow_core::{op::execute1, Tensor};
/// let f = FusedBiasActivation::new(
///     std::sync::Arc::new(MatMul { transpose_a: false, transpose_b: false }),
///     Some(UnaryOp::Relu),
/// )?;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2])?;
/// let w = Tensor::from_vec(vec![1.0f32, -1.0, 1.0, -1.0], &[2, 2])?;
/// let b = Tensor::from_vec(vec![0.5f32, 0.5], &[2])?;
/// let y = execute1(f, &[a, w, b])?;
/// assert_eq!(y.to_vec::<f32>()?, vec![3.5, 0.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FusedBiasActivation {
    /// The op producing the pre-bias value (`MatMul` or `Conv2D`).
    pub base: Arc<dyn Op>,
    /// The activation after the bias, if any.
    pub activation: Option<UnaryOp>,
}

impl FusedBiasActivation {
    /// Fuses `base` (a `MatMul` or `Conv2D`) with a bias and `activation` (one the elementwise
    /// fuser handles, see [`fusable_unary`]).
    pub fn new(base: Arc<dyn Op>, activation: Option<UnaryOp>) -> Result<FusedBiasActivation> {
        let any = base.as_any();
        let ok = any.is::<MatMul>()
            || any
                .downcast_ref::<Conv2D>()
                .is_some_and(|c| c.kind == ConvKind::Regular);
        if !ok {
            return Err(Error::invalid(
                "FusedBiasActivation",
                format!("fuses MatMul or Conv2D, not {}", base.name()),
            ));
        }
        if let Some(a) = activation.filter(|a| !fusable_unary(*a)) {
            return Err(Error::invalid(
                "FusedBiasActivation",
                format!("activation {a:?} cannot be fused"),
            ));
        }
        Ok(FusedBiasActivation { base, activation })
    }

    fn apply<T: Float + StorageElement + FromStorage>(
        &self,
        y: Tensor,
        bias: &Tensor,
    ) -> Result<Tensor> {
        let shape = y.shape().to_vec();
        let mut v: Vec<T> = match y.try_into_storage() {
            Ok(s) => match T::from_storage(s) {
                Some(v) => v,
                None => return Err(Error::invalid(self.name(), "internal: dtype")),
            },
            Err(y) => y.to_vec::<T>()?,
        };
        let b = bias.data::<T>()?;
        let c = b.len();
        if c == 0 {
            return Ok(tensor_from(v, &shape));
        }
        let act = self.activation;
        for_each_chunk_mut(&mut v, |start, chunk| {
            // The chunk's first (partial) row, then whole rows: bias then activation, while
            // the row is in cache.
            let head = ((c - start % c) % c).min(chunk.len());
            let (first, rest) = chunk.split_at_mut(head);
            let rows =
                std::iter::once((start % c, first)).chain(rest.chunks_mut(c).map(|r| (0, r)));
            for (j0, row) in rows {
                for (o, &bb) in row.iter_mut().zip(&b[j0..]) {
                    *o += bb;
                }
                if let Some(a) = act {
                    unary_in_place(a, row);
                }
            }
        });
        Ok(tensor_from(v, &shape))
    }
}

impl Op for FusedBiasActivation {
    fn name(&self) -> &'static str {
        if self.base.as_any().is::<MatMul>() {
            "_FusedMatMul"
        } else {
            "_FusedConv2D"
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        if inputs.len() != 3 {
            return Err(Error::invalid(
                self.name(),
                format!("expects 3 inputs, got {}", inputs.len()),
            ));
        }
        let m = self.base.infer(&inputs[..2])?.swap_remove(0);
        let z = BiasAdd.infer(&[m, inputs[2].clone()])?.swap_remove(0);
        match self.activation {
            Some(a) => Unary(a).infer(&[z]),
            None => Ok(vec![z]),
        }
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        // Conv2D + bias (+ ReLU) in f32/f64: bias and ReLU in the convolution's own write pass.
        if let Some(y) =
            crate::ops::conv::fused_conv2d_bias_relu(self.base.as_ref(), inputs, self.activation)?
        {
            return Ok(vec![y]);
        }
        let m = crate::op::compute(self.base.as_ref(), &inputs[..2])?.swap_remove(0);
        let y = match m.dtype() {
            DType::F32 => self.apply::<f32>(m, &inputs[2])?,
            DType::F64 => self.apply::<f64>(m, &inputs[2])?,
            _ => {
                let z = BiasAdd.compute(&[m, inputs[2].clone()])?.swap_remove(0);
                match self.activation {
                    Some(a) => Unary(a).compute(&[z])?.swap_remove(0),
                    None => z,
                }
            }
        };
        Ok(vec![y])
    }
    /// The activation's, BiasAdd's and the base op's own rules, replayed.
    ///
    /// With no activation or ReLU nothing is recomputed: ReLU's rule `g·mask(z > 0)` reads the
    /// output `y = relu(z)` instead of `z` (`y > 0` exactly where `z > 0`; a NaN `z` gives
    /// `y = 0` and a false `z > 0`), so the gradient has the unfused bits; the BiasAdd and base
    /// rules read neither `z` nor the base op's output.
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (a, w, bias) = (ctx.x(0), ctx.x(1), ctx.x(2));
        if matches!(self.activation, None | Some(UnaryOp::Relu)) {
            let y = ctx.y(0);
            let gz = match self.activation {
                Some(act) => Unary(act)
                    .grad(&GradCtx {
                        inputs: std::slice::from_ref(y),
                        outputs: ctx.outputs,
                        grads: ctx.grads,
                        needed: &[],
                    })?
                    .swap_remove(0)
                    .ok_or_else(|| Error::invalid(self.name(), "internal: no activation grad"))?,
                None => ctx.g(0).clone(),
            };
            return self.replay_linear_grads(ctx, y, gz);
        }
        let m = execute1(DynOp(self.base.clone()), &[a.clone(), w.clone()])?;
        let z = crate::ops::bias_add(&m, bias)?;
        let gz = match self.activation {
            Some(act) => {
                let sub = GradCtx {
                    inputs: std::slice::from_ref(&z),
                    outputs: ctx.outputs,
                    grads: ctx.grads,
                    needed: &[],
                };
                Unary(act)
                    .grad(&sub)?
                    .swap_remove(0)
                    .ok_or_else(|| Error::invalid(self.name(), "internal: no activation grad"))?
            }
            None => ctx.g(0).clone(),
        };
        self.replay_linear_grads(ctx, &m, gz)
    }
}

impl FusedBiasActivation {
    /// BiasAdd's and the base op's gradient rules given `gz` = d/d(z), `z = m + bias`. `m` only
    /// stands in for the base op's output (of its shape): neither rule reads its values.
    /// `ctx` is the fused op's (inputs `[a, w, bias]`).
    fn replay_linear_grads(
        &self,
        ctx: &GradCtx<'_>,
        m: &Tensor,
        gz: Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let (a, w, bias) = (ctx.x(0), ctx.x(1), ctx.x(2));
        let zs = [m.clone()];
        let gzs = [gz];
        let mb = [m.clone(), bias.clone()];
        let gb = BiasAdd.grad(&GradCtx {
            inputs: &mb,
            outputs: &zs,
            grads: &gzs,
            needed: &[true, ctx.needs(2)],
        })?;
        let mut gb = gb.into_iter();
        let gm = gb.next().flatten();
        let gbias = gb.next().flatten();
        let Some(gm) = gm else {
            return Ok(vec![None, None, gbias]);
        };
        let ms = [m.clone()];
        let gms = [gm];
        let ab = [a.clone(), w.clone()];
        let mut g = self.base.grad(&GradCtx {
            inputs: &ab,
            outputs: &ms,
            grads: &gms,
            needed: ctx.needed_prefix(2),
        })?;
        g.resize(2, None);
        g.push(gbias);
        Ok(g)
    }
}

/// Storage → typed vector, for the in-place paths.
trait FromStorage: Sized {
    fn from_storage(s: Storage) -> Option<Vec<Self>>;
}

impl FromStorage for f32 {
    fn from_storage(s: Storage) -> Option<Vec<f32>> {
        match s {
            Storage::F32(v) => Some(v),
            _ => None,
        }
    }
}

impl FromStorage for f64 {
    fn from_storage(s: Storage) -> Option<Vec<f64>> {
        match s {
            Storage::F64(v) => Some(v),
            _ => None,
        }
    }
}
