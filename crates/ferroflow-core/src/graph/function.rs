//! Traced functions: TensorFlow 2's `tf.function`.
//!
//! [`function`] wraps a Rust closure over tensors. The first call with a given *input signature*
//! (each argument's dtype and shape) **traces** it: a fresh [`Graph`] becomes the default, every
//! argument becomes a placeholder of that spec, and the closure runs once, building nodes instead
//! of computing. The result is a [`ConcreteFunction`]: the graph, its placeholders, its outputs,
//! and the assignments the closure made (its side effects). Later calls with the same signature
//! feed the arguments to that graph's [`Session`], which specializes and caches an executable plan
//! per fed shape — no Rust code of the closure runs again. A new signature traces again; an
//! explicit [`Function::input_signature`] with unknown (`None`) dimensions avoids retracing for
//! every batch size, as TF's `input_signature=[tf.TensorSpec([None, 3])]`.
//!
//! As in TensorFlow:
//! - Rust side effects of the closure (a `println!`, a counter) happen only while tracing.
//! - **Captured variables.** An eager [`Variable`] created outside and read inside (a Keras weight,
//!   an optimizer slot) is *captured by reference*: the graph holds a read node of that variable,
//!   and each call reads its live value. `assign`, `assign_add`, `assign_sub` inside the closure
//!   become assign nodes that every call runs (all of them, whether or not an output depends on
//!   them — TF 2's automatic control dependencies), writing the live eager variable. A read made
//!   after an assign in the closure sees the assigned value; one made before sees the old one.
//! - Eager tensors used by the closure become constants of the graph (captured by value).
//! - A variable created while tracing is *lifted* out of the graph: it is an eager variable whose
//!   initial value is computed once, at trace time (TF's `init_scope`). Its initial value may not
//!   depend on the arguments.
//! - Gradient tapes of the caller do not see the trace; a `GradientTape` created inside the
//!   closure records in the graph (with the signature's shapes fully known), so gradients
//!   computed inside the function are graph nodes too.
//! - An error of the closure is returned by the call that traced it, and nothing is cached.
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use ferroflow_core::{graph, ops, Tensor, Variable};
//! let counter = Variable::new(Tensor::scalar(0.0f32), "counter");
//! let traces = Rc::new(Cell::new(0));
//! let (c, t) = (counter.clone(), traces.clone());
//! let f = graph::function(move |args: &[Tensor]| {
//!     t.set(t.get() + 1); // Rust code: runs only while tracing
//!     c.assign_add(&Tensor::scalar(1.0f32))?; // a graph side effect: runs every call
//!     Ok(vec![ops::mul(&args[0], &args[0])?])
//! });
//! let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
//! assert_eq!(f.call(&[x.clone()])?[0].to_vec::<f32>()?, vec![1.0, 4.0, 9.0]);
//! assert_eq!(f.call(&[x])?[0].to_vec::<f32>()?, vec![1.0, 4.0, 9.0]);
//! assert_eq!((traces.get(), f.trace_count()), (1, 1));
//! assert_eq!(counter.value().to_vec::<f32>()?, vec![2.0]);
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::{fmt_dims, placeholder, EagerScope, Graph, Session};
use crate::autodiff::tape::SuspendTapes;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{Dim, TensorSpec};
use crate::tensor::Tensor;
use crate::variable::Variable;

/// The closure a [`Function`] traces.
type Body = Box<dyn FnMut(&[Tensor]) -> Result<Vec<Tensor>>>;

/// A signature: each argument's dtype and (partial) shape.
type Signature = Vec<(DType, Vec<Dim>)>;

/// `tf.function(f)`: see the [module documentation](self).
pub fn function(f: impl FnMut(&[Tensor]) -> Result<Vec<Tensor>> + 'static) -> Function {
    Function {
        name: "function".to_string(),
        body: RefCell::new(Box::new(f)),
        signature: None,
        cache: RefCell::new(HashMap::new()),
        traces: RefCell::new(0),
    }
}

/// A traced function (TF 2's `tf.function`-decorated callable), made by [`function`]: one
/// [`ConcreteFunction`] per input signature, traced on first use.
pub struct Function {
    name: String,
    body: RefCell<Body>,
    signature: Option<Vec<TensorSpec>>,
    cache: RefCell<HashMap<Signature, Arc<ConcreteFunction>>>,
    traces: RefCell<usize>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<Function {} with {} concrete function(s)>",
            self.name,
            self.cache.borrow().len()
        )
    }
}

impl Function {
    /// Names the function (its graphs' nodes are not renamed; errors and `Debug` use it).
    pub fn named(mut self, name: &str) -> Function {
        self.name = name.to_string();
        self
    }

    /// TF's `input_signature=[...]`: the one signature every call must fit. `None` dimensions
    /// take any size, so calls with other batch sizes reuse the one trace (each fed shape still
    /// gets its own specialized plan inside the session). A call that does not fit is an error
    /// naming the argument.
    pub fn input_signature(mut self, specs: Vec<TensorSpec>) -> Function {
        self.signature = Some(specs);
        self
    }

    /// How many times the closure has been traced (TF's `experimental_get_tracing_count()`).
    pub fn trace_count(&self) -> usize {
        *self.traces.borrow()
    }

    /// The concrete functions traced so far, in no particular order.
    pub fn concrete_functions(&self) -> Vec<Arc<ConcreteFunction>> {
        self.cache.borrow().values().cloned().collect()
    }

    /// `get_concrete_function(*args)`: the concrete function for these arguments' signature,
    /// traced now if needed.
    pub fn concrete_function(&self, args: &[Tensor]) -> Result<Arc<ConcreteFunction>> {
        let sig = self.signature_of(args)?;
        if let Some(c) = self.cache.borrow().get(&sig) {
            return Ok(c.clone());
        }
        let specs: Vec<TensorSpec> = sig
            .iter()
            .map(|(dtype, shape)| TensorSpec {
                dtype: *dtype,
                shape: shape.clone(),
            })
            .collect();
        let mut body = self.body.try_borrow_mut().map_err(|_| {
            Error::invalid(
                &self.name,
                "a traced function called itself while being traced (recursion is not supported)",
            )
        })?;
        let concrete = Arc::new(ConcreteFunction::trace(&specs, |a| (body)(a))?);
        *self.traces.borrow_mut() += 1;
        self.cache.borrow_mut().insert(sig, concrete.clone());
        Ok(concrete)
    }

    /// Calls the function: traces it for a new signature, then runs the graph on `args`.
    pub fn call(&self, args: &[Tensor]) -> Result<Vec<Tensor>> {
        self.concrete_function(args)?.call(args)
    }

    fn signature_of(&self, args: &[Tensor]) -> Result<Signature> {
        if let Some(specs) = &self.signature {
            if specs.len() != args.len() {
                return Err(Error::invalid(
                    &self.name,
                    format!(
                        "the input_signature has {} argument(s) but {} were given",
                        specs.len(),
                        args.len()
                    ),
                ));
            }
            for (i, (s, a)) in specs.iter().zip(args).enumerate() {
                check_arg(&self.name, i, s, a)?;
            }
            return Ok(specs.iter().map(|s| (s.dtype, s.shape.clone())).collect());
        }
        Ok(args.iter().map(|a| (a.dtype(), a.dims())).collect())
    }
}

fn check_arg(name: &str, i: usize, spec: &TensorSpec, a: &Tensor) -> Result<()> {
    if a.is_symbolic() {
        return Err(Error::invalid(
            name,
            format!(
                "argument {i} is a graph tensor; a traced function is called with eager tensors"
            ),
        ));
    }
    if spec.dtype != a.dtype() || !spec.admits(a.shape()) {
        return Err(Error::invalid(
            name,
            format!(
                "argument {i} ({} {}) is incompatible with the input_signature's TensorSpec(shape={}, dtype={})",
                a.dtype().name(),
                crate::error::fmt_shape(a.shape()),
                fmt_dims(&spec.shape),
                spec.dtype.name()
            ),
        ));
    }
    Ok(())
}

/// One trace of a [`Function`] for one input signature (TF's `ConcreteFunction`): the graph, its
/// argument placeholders, its outputs, and the side effects (assign nodes) every call runs.
pub struct ConcreteFunction {
    graph: Graph,
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
    updates: Vec<Tensor>,
    session: Session,
    /// The traced seed of each seed argument (`trace_with_seed_inputs`).
    seeds: Vec<u64>,
}

impl std::fmt::Debug for ConcreteFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sig: Vec<String> = self
            .inputs
            .iter()
            .map(|t| format!("{}{}", t.dtype().name(), fmt_dims(&t.dims())))
            .collect();
        write!(
            f,
            "<ConcreteFunction ({}) with {} nodes, {} outputs, {} side effects>",
            sig.join(", "),
            self.graph.len(),
            self.outputs.len(),
            self.updates.len()
        )
    }
}

impl ConcreteFunction {
    /// Traces `f` once for arguments of these specs (a fresh graph is the default meanwhile, the
    /// caller's tapes are hidden). [`Function`] calls this per signature; it is public for
    /// callers that keep their own cache (Keras's traced train step).
    pub fn trace(
        specs: &[TensorSpec],
        f: impl FnOnce(&[Tensor]) -> Result<Vec<Tensor>>,
    ) -> Result<ConcreteFunction> {
        Self::trace_impl(specs, f, false)
    }

    /// [`trace`](Self::trace), with every random op's seed made an input (see
    /// [`graph::random`](super::random)): the function takes, after the signature's arguments,
    /// one scalar `int64` seed per random op traced, in trace order;
    /// [`random_seeds`](Self::random_seeds) gives the seed each was traced with (from which
    /// the caller knows where it came from). Each call draws with the seeds it is given, so
    /// the caller keeps the seed state (Keras's traced train step feeds the seeds the eager
    /// step would draw).
    pub fn trace_with_seed_inputs(
        specs: &[TensorSpec],
        f: impl FnOnce(&[Tensor]) -> Result<Vec<Tensor>>,
    ) -> Result<ConcreteFunction> {
        Self::trace_impl(specs, f, true)
    }

    fn trace_impl(
        specs: &[TensorSpec],
        f: impl FnOnce(&[Tensor]) -> Result<Vec<Tensor>>,
        seed_inputs: bool,
    ) -> Result<ConcreteFunction> {
        let graph = Graph::new();
        graph.lock().lifts_variables = true;
        if seed_inputs {
            graph.lock().seed_inputs = Some(Vec::new());
        }
        let (inputs, outputs) = {
            let _tapes = SuspendTapes::new();
            let _default = graph.as_default();
            let inputs = specs
                .iter()
                .enumerate()
                .map(|(i, s)| placeholder(s.dtype, &s.shape, &format!("args_{i}")))
                .collect::<Result<Vec<_>>>()?;
            let outputs = f(&inputs)?;
            (inputs, outputs)
        };
        let lift_errors = std::mem::take(&mut graph.lock().lift_errors);
        if let Some(e) = lift_errors.into_iter().next() {
            return Err(e);
        }
        for o in &outputs {
            if o.is_symbolic() {
                graph.locate(o, "traced function (output)")?;
            }
        }
        let updates = graph.update_ops();
        let mut inputs = inputs;
        let fed = graph.lock().seed_inputs.take().unwrap_or_default();
        let mut seeds = Vec::with_capacity(fed.len());
        for (seed, node) in fed {
            inputs.push(graph.tensor(node, 0)?);
            seeds.push(seed);
        }
        Ok(ConcreteFunction {
            session: Session::new(&graph),
            graph,
            inputs,
            outputs,
            updates,
            seeds,
        })
    }

    /// For a function traced with
    /// [`trace_with_seed_inputs`](Self::trace_with_seed_inputs): the seed each random op was
    /// traced with, one per seed argument (they follow the signature's arguments); empty
    /// otherwise.
    pub fn random_seeds(&self) -> &[u64] {
        &self.seeds
    }

    /// The traced graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The argument specs this trace accepts (`structured_input_signature`).
    pub fn input_specs(&self) -> Vec<TensorSpec> {
        self.inputs.iter().map(TensorSpec::of).collect()
    }

    /// The outputs' specs.
    pub fn output_specs(&self) -> Vec<TensorSpec> {
        self.outputs.iter().map(TensorSpec::of).collect()
    }

    /// The optimised graph that [`call`](Self::call) runs (the session's specialized plan for
    /// the traced argument shapes, every argument fed): to look at with [`Graph::dump`] (which
    /// ops the graph passes fused). Errors when an argument's shape is not fully known.
    pub fn optimized_graph(&self) -> Result<Graph> {
        let mut fetches: Vec<&Tensor> = self.outputs.iter().filter(|o| o.is_symbolic()).collect();
        fetches.extend(self.updates.iter());
        let mut values = Vec::with_capacity(self.inputs.len());
        for t in &self.inputs {
            let shape = TensorSpec::of(t).known_shape().ok_or_else(|| {
                Error::invalid(
                    "ConcreteFunction::optimized_graph",
                    "an argument's shape is not fully known",
                )
            })?;
            values.push(crate::ops::zeros(&shape, t.dtype()));
        }
        let feeds: Vec<(&Tensor, Tensor)> = self.inputs.iter().zip(values).collect();
        Ok(self.session.optimized_graph(&fetches, &feeds)?.0)
    }

    /// How many assignments (side effects on variables) each call runs.
    pub fn num_side_effects(&self) -> usize {
        self.updates.len()
    }

    /// Runs the graph on `args` (checked against the placeholders: dtype, rank, known
    /// dimensions) and returns the outputs; every side effect runs, in the order the closure made
    /// them.
    pub fn call(&self, args: &[Tensor]) -> Result<Vec<Tensor>> {
        if args.len() != self.inputs.len() {
            return Err(Error::invalid(
                "ConcreteFunction::call",
                format!(
                    "the function takes {} argument(s) but {} were given",
                    self.inputs.len(),
                    args.len()
                ),
            ));
        }
        // Outputs that are eager tensors (constants) come back as they are; the others, and every
        // side effect, are fetched in one run.
        let mut fetches: Vec<&Tensor> = self.outputs.iter().filter(|o| o.is_symbolic()).collect();
        let n_out = fetches.len();
        fetches.extend(self.updates.iter());
        let feeds: Vec<(&Tensor, Tensor)> = self.inputs.iter().zip(args.iter().cloned()).collect();
        let mut values = if fetches.is_empty() {
            Vec::new()
        } else {
            self.session.run(&fetches, &feeds)?
        };
        values.truncate(n_out);
        let mut values = values.into_iter();
        Ok(self
            .outputs
            .iter()
            .map(|o| {
                if o.is_symbolic() {
                    values.next().unwrap_or_else(|| o.clone())
                } else {
                    o.clone()
                }
            })
            .collect())
    }
}

/// `Tensor::to_f64_vec` on a symbolic tensor (which gives no values) while a function graph is
/// the default: recorded as an error of the trace, as TF's `.numpy()` inside `tf.function` is.
pub(crate) fn note_symbolic_read(t: &Tensor) {
    let Some(g) = super::default_graph() else {
        return;
    };
    let mut inner = g.lock();
    if inner.lifts_variables && inner.lift_errors.is_empty() {
        let name = t.symbol().map(|s| s.name.to_string()).unwrap_or_default();
        inner.lift_errors.push(Error::invalid(
            "traced function",
            format!(
                "the values of graph tensor \"{name}\" were read while tracing (Tensor::to_f64_vec); \
                 a traced function can only use tensor values through ops"
            ),
        ));
    }
}

/// A variable created while a function graph is being traced: made eager, with its initial value
/// computed now (TF 2's `init_scope`). An initial value that needs the arguments is recorded as
/// an error the trace returns.
pub(crate) fn lift_variable(g: &Graph, initial: Tensor, name: &str, trainable: bool) -> Variable {
    let value = if initial.is_symbolic() {
        // Seed-fed random ops (`trace_with_seed_inputs`) draw with the seed they were traced
        // with, as the eager op would.
        let fed: Vec<(u64, usize)> = g.lock().seed_inputs.clone().unwrap_or_default();
        let seeds: Vec<(Tensor, Tensor)> = fed
            .into_iter()
            .filter_map(|(s, n)| Some((g.tensor(n, 0).ok()?, Tensor::scalar(s as i64))))
            .collect();
        let feeds: Vec<(&Tensor, Tensor)> = seeds.iter().map(|(p, v)| (p, v.clone())).collect();
        let run = Session::new(g).run(&[&initial], &feeds);
        match run {
            Ok(mut v) => v.swap_remove(0),
            Err(e) => {
                g.lock().lift_errors.push(Error::invalid(
                    "traced function",
                    format!(
                        "variable '{name}' created while tracing needs an initial value that does \
                         not depend on the function's arguments: {e}"
                    ),
                ));
                let shape: Vec<usize> = initial.dims().iter().map(|d| d.unwrap_or(0)).collect();
                crate::ops::zeros(&shape, initial.dtype())
            }
        }
    } else {
        initial
    };
    let _eager = EagerScope::new();
    Variable::with_trainable(value, name, trainable)
}
