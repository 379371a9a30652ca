//! The op abstraction: one definition per op serves eager execution, the gradient tape and
//! (later) graphs.
//!
//! An op is a small value (its attributes: axes, strides, ...) implementing [`Op`]:
//! - [`Op::infer`] is the shape and dtype rule. It works on [`TensorSpec`]s whose dimensions may
//!   be unknown (`None`), so graph mode can run the same rule on placeholders; in eager mode it
//!   validates the inputs before any kernel runs and gives the typed error.
//! - [`Op::compute`] runs the CPU kernel on concrete tensors.
//! - [`Op::grad`] returns the gradient of each input, written with the public op functions, so
//!   the same rule builds a backward graph in graph mode and records on outer tapes in eager mode
//!   (second derivatives).
//!
//! [`execute`] is the single entry point every public op function goes through.

use std::fmt::Debug;
use std::sync::Arc;

use crate::autodiff::tape;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A dimension that may be unknown (graph mode's `None`, printed `?`).
pub type Dim = Option<usize>;

/// Dtype and (partially known) shape of an op input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Element type.
    pub dtype: DType,
    /// Dimensions; `None` where unknown.
    pub shape: Vec<Dim>,
}

impl TensorSpec {
    /// A spec with a fully known shape.
    pub fn new(dtype: DType, shape: &[usize]) -> TensorSpec {
        TensorSpec {
            dtype,
            shape: shape.iter().map(|&d| Some(d)).collect(),
        }
    }

    /// The spec of a concrete tensor.
    pub fn of(t: &Tensor) -> TensorSpec {
        match t.symbol() {
            Some(sym) => TensorSpec {
                dtype: t.dtype(),
                shape: sym.dims.clone(),
            },
            None => TensorSpec::new(t.dtype(), t.shape()),
        }
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The shape when every dimension is known.
    pub fn known_shape(&self) -> Option<Vec<usize>> {
        self.shape.iter().copied().collect()
    }

    /// The shape with unknown dimensions shown as 0, for error messages.
    pub fn shape_for_error(&self) -> Vec<usize> {
        self.shape.iter().map(|d| d.unwrap_or(0)).collect()
    }

    /// True when a concrete `shape` fits this spec: same rank, equal wherever a dimension is known.
    pub fn admits(&self, shape: &[usize]) -> bool {
        self.shape.len() == shape.len()
            && self
                .shape
                .iter()
                .zip(shape)
                .all(|(d, &n)| d.is_none_or(|d| d == n))
    }

    /// True when some concrete tensor could fit both specs: same dtype and rank, and no known
    /// dimension that differs.
    pub fn compatible(&self, other: &TensorSpec) -> bool {
        self.dtype == other.dtype
            && self.rank() == other.rank()
            && self
                .shape
                .iter()
                .zip(&other.shape)
                .all(|(a, b)| a.is_none() || b.is_none() || a == b)
    }

    /// Number of elements when known.
    pub fn num_elements(&self) -> Option<usize> {
        self.known_shape().map(|s| s.iter().product())
    }
}

/// What [`Op::grad`] receives: the op's inputs and outputs and the gradient of each output
/// (zeros where an output did not reach the target).
pub struct GradCtx<'a> {
    /// The inputs the op was called with.
    pub inputs: &'a [Tensor],
    /// The outputs it produced.
    pub outputs: &'a [Tensor],
    /// d(target)/d(output) for each output, same shape as the output.
    pub grads: &'a [Tensor],
    /// Which inputs' gradients the caller will use, by input index; empty means all. A rule may
    /// skip the work for an input it is told is not needed and return `None` for it (TensorFlow's
    /// `skip_input_indices`): the tape marks the inputs that no watched tensor flows into, such
    /// as a model's data.
    pub needed: &'a [bool],
}

impl GradCtx<'_> {
    /// Input `i`.
    pub fn x(&self, i: usize) -> &Tensor {
        &self.inputs[i]
    }
    /// Output `i`.
    pub fn y(&self, i: usize) -> &Tensor {
        &self.outputs[i]
    }
    /// Gradient of output `i`.
    pub fn g(&self, i: usize) -> &Tensor {
        &self.grads[i]
    }
    /// Whether the caller uses the gradient of input `i` (see [`GradCtx::needed`]).
    pub fn needs(&self, i: usize) -> bool {
        self.needed.get(i).copied().unwrap_or(true)
    }
    /// [`GradCtx::needed`] for the first `n` inputs, for a rule that hands them to another rule.
    pub fn needed_prefix(&self, n: usize) -> &[bool] {
        self.needed.get(..n).unwrap_or(&[])
    }
}

/// Gives `&dyn Any` for any op, so graph optimisation passes can read an op's attributes
/// (`op.as_any().downcast_ref::<Transpose>()`). Implemented for every `'static` type.
pub trait AsAny {
    /// `self` as `Any`.
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<T: std::any::Any> AsAny for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// One op: its attributes, shape rule, kernel and gradient. See the module docs.
pub trait Op: AsAny + Debug + Send + Sync + 'static {
    /// TensorFlow-style op name (`"MatMul"`, `"Conv2D"`), used in errors and profiles.
    fn name(&self) -> &'static str;

    /// The shape and dtype rule: validates the inputs and describes the outputs.
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>>;

    /// Runs the kernel. Inputs have passed [`Op::infer`].
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>>;

    /// Gradients of the inputs (`None` where an input gets none, e.g. integer indices), written
    /// with the public op functions. An op without a gradient returns
    /// [`Error::NoGradient`] — use [`no_gradient`].
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>>;

    /// True for an op whose result may differ between runs with the same inputs (random ops,
    /// anything with hidden state): graph optimisation passes never fold, merge or move it
    /// (Grappler's rule for stateful ops). Every random op (one with a [`random_seed`](Self::random_seed)) is.
    fn is_stateful(&self) -> bool {
        self.random_seed().is_some()
    }

    /// A random op's seed (`None`, the default, for every other op). A [`Session`](crate::Session)
    /// gives each execution of a random node a fresh seed derived from this one and the node's run
    /// count (`graph::random`), so runs differ and the sequence is reproducible, as TF 1's
    /// stateful random ops.
    fn random_seed(&self) -> Option<u64> {
        None
    }

    /// The same random op drawing from `seed` instead (`None` for non-random ops).
    fn with_random_seed(&self, _seed: u64) -> Option<Arc<dyn Op>> {
        None
    }
}

/// The `grad` of an op that has no gradient: an error if one is ever asked for.
pub fn no_gradient(op: &dyn Op) -> Result<Vec<Option<Tensor>>> {
    Err(Error::NoGradient {
        op: op.name().to_string(),
    })
}

/// Runs `op` on `inputs` eagerly: checks the shape rule, computes, and records on every active
/// gradient tape that watches an input.
///
/// While a [`Graph`](crate::graph::Graph) is the default on this thread (or an input is symbolic),
/// nothing is computed: the op becomes a node of the graph and the outputs are symbolic tensors
/// whose shapes come from the same [`Op::infer`].
pub fn execute<O: Op>(op: O, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    if crate::graph::building() || inputs.iter().any(Tensor::is_symbolic) {
        let op: Arc<dyn Op> = Arc::new(op);
        let outputs = crate::graph::add_op(op.clone(), inputs)?;
        if tape::any_recording() {
            tape::record(op, inputs, &outputs);
        }
        return Ok(outputs);
    }
    let specs: Vec<TensorSpec> = inputs.iter().map(TensorSpec::of).collect();
    let out_specs = op.infer(&specs)?;
    let outputs = compute(&op, inputs)?;
    debug_assert_eq!(
        out_specs.len(),
        outputs.len(),
        "{}: output count",
        op.name()
    );
    #[cfg(debug_assertions)]
    for (s, o) in out_specs.iter().zip(&outputs) {
        debug_assert_eq!(s.dtype, o.dtype(), "{}: output dtype", op.name());
        debug_assert!(
            s.admits(o.shape()),
            "{}: inferred shape {:?} but computed {:?}",
            op.name(),
            s.shape,
            o.shape()
        );
    }
    if tape::any_recording() {
        tape::record(Arc::new(op), inputs, &outputs);
    }
    Ok(outputs)
}

/// Runs the op's kernel (timed when the profiler is on): what eager execution and a `Session`
/// share.
pub(crate) fn compute(op: &dyn Op, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    crate::kernels::parallel::join_thread_pool();
    // Device placement (`device/`): always `None` without the `cuda` feature.
    if let Some(out) = crate::device::dispatch(op, inputs) {
        return out;
    }
    if crate::profiler::enabled() {
        crate::profiler::timed(op.name(), || op.compute(inputs))
    } else {
        op.compute(inputs)
    }
}

/// [`execute`] for single-output ops.
pub fn execute1<O: Op>(op: O, inputs: &[Tensor]) -> Result<Tensor> {
    let mut out = execute(op, inputs)?;
    Ok(out.swap_remove(0))
}
