//! Graph mode: TensorFlow 1's `tf.Graph`, placeholders, graph variables and `Session`, built from
//! the same op functions as eager mode.
//!
//! While a graph is the default on this thread ([`Graph::as_default`]), every op function
//! (`ops::matmul`, `ops::add`, ...) goes through [`op::execute`](crate::op::execute) as always, but
//! instead of computing, `execute` adds a node holding the op value to the graph and returns
//! *symbolic* tensors: a dtype and a shape that may have unknown dimensions (`None`), found by the
//! op's own shape rule ([`Op::infer`]). So no op is defined twice.
//!
//! A [`Session`] runs the graph: `run(fetches, feeds)` *specializes* the sub-graph the fetches need
//! to the fed shapes (every node's shape rule runs again with the concrete shapes, and symbolic
//! gradients are expanded then, from the same [`Op::grad`] rules the tape uses), caches that plan
//! per feed signature, and executes it. Variables created in graph mode hold their values in the
//! session, so several sessions on one graph are independent.
//!
//! ```
//! use ferroflow_core::{graph, ops, DType, Graph, Session, Tensor};
//! let g = Graph::new();
//! let (x, y) = {
//!     let _default = g.as_default();
//!     let x = graph::placeholder(DType::F32, &[None, Some(2)], "x")?;
//!     let y = ops::reduce_sum(&ops::mul(&x, &x)?, 1, false)?;
//!     (x, y)
//! };
//! assert_eq!(x.to_string(), "Tensor(\"x:0\", shape=(None, 2), dtype=float32)");
//! let sess = Session::new(&g);
//! let out = sess.run(&[&y], &[(&x, Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?)])?;
//! assert_eq!(out[0].to_vec::<f32>()?, vec![5.0, 25.0]);
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

mod function;
mod gradients;
pub mod layers;
pub mod optimize;
pub mod random;
mod session;
mod text;
pub mod train;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{Dim, Op, TensorSpec};
use crate::tensor::{Symbol, Tensor, TensorId};
use crate::variable::Variable;

pub use function::{function, ConcreteFunction, Function};
pub use session::Session;

pub(crate) use function::{lift_variable, note_symbolic_read};

/// Identifies a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GraphId(u64);

/// What a node does.
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// A value fed to `Session::run` (`tf.placeholder`).
    Placeholder,
    /// A constant captured from an eager tensor used in the graph.
    Const(Tensor),
    /// An op of the op library.
    Op(Arc<dyn Op>),
    /// Reads a variable's current value (in the session for graph variables; an eager variable's
    /// live value, for one captured by a traced function).
    ReadVariable(Variable),
    /// Writes its input into a variable and outputs the new value (`tf.assign`, `assign_add`,
    /// `assign_sub`).
    Assign(Variable, AssignKind),
    /// Runs its inputs and outputs nothing (`tf.group`, a train op).
    Group,
    /// `tf.gradients(ys, xs)`: its inputs are the `n_ys` targets then the sources; expanded into
    /// the ops' gradient rules when a session specializes the graph.
    Gradients {
        /// How many of the inputs are targets.
        n_ys: usize,
    },
}

/// How an [`NodeKind::Assign`] combines the input with the old value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignKind {
    /// `var = x`.
    Set,
    /// `var += x`.
    Add,
    /// `var -= x`.
    Sub,
}

/// One node: what it does, which outputs of earlier nodes it reads, and its outputs' specs.
#[derive(Clone, Debug)]
pub struct Node {
    /// The unique name (`"dense/MatMul_1"`).
    pub name: String,
    /// What the node does.
    pub kind: NodeKind,
    /// `(node, output)` of each input; always earlier nodes, so index order is topological.
    pub inputs: Vec<(usize, usize)>,
    /// Dtype and (partial) shape of each output.
    pub outputs: Vec<TensorSpec>,
}

#[derive(Default)]
pub(crate) struct GraphInner {
    pub(crate) nodes: Vec<Node>,
    names: HashMap<String, usize>,
    consts: HashMap<TensorId, usize>,
    reads: HashMap<TensorId, usize>,
    pub(crate) variables: Vec<Variable>,
    update_ops: Vec<(usize, usize)>,
    scopes: Vec<String>,
    /// A traced function's graph: variables created while it is the default are lifted out as
    /// eager variables (see `function.rs`).
    pub(crate) lifts_variables: bool,
    /// Errors met while tracing (lifting variables, reading a symbolic tensor's values),
    /// returned by the trace.
    pub(crate) lift_errors: Vec<Error>,
    /// `Some` while random ops become seed-fed nodes: `(traced seed, placeholder node)` of each
    /// (see `random.rs`, [`ConcreteFunction::trace_with_seed_inputs`]).
    pub(crate) seed_inputs: Option<Vec<(u64, usize)>>,
}

/// A dataflow graph (TensorFlow 1's `tf.Graph`). Clones share the same graph.
#[derive(Clone)]
pub struct Graph {
    id: GraphId,
    inner: Arc<Mutex<GraphInner>>,
}

impl Default for Graph {
    fn default() -> Self {
        Graph::new()
    }
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<Graph {} with {} nodes>",
            self.id.0,
            self.lock().nodes.len()
        )
    }
}

thread_local! {
    static DEFAULT: RefCell<Vec<Graph>> = const { RefCell::new(Vec::new()) };
}

/// Keeps a graph the default on this thread until dropped (`with graph.as_default():`).
pub struct DefaultGuard {
    id: GraphId,
}

impl Drop for DefaultGuard {
    fn drop(&mut self) {
        DEFAULT.with(|d| {
            let mut d = d.borrow_mut();
            if let Some(pos) = d.iter().rposition(|g| g.id == self.id) {
                d.remove(pos);
            }
        });
    }
}

/// Keeps a name scope open on a graph until dropped (`with tf.name_scope("layer1"):`).
pub struct NameScope {
    graph: Graph,
}

impl Drop for NameScope {
    fn drop(&mut self) {
        self.graph.lock().scopes.pop();
    }
}

/// Suspends graph building on this thread until dropped (a session computes eagerly even when
/// called inside `as_default`).
pub(crate) struct EagerScope {
    saved: Vec<Graph>,
}

impl EagerScope {
    pub(crate) fn new() -> EagerScope {
        EagerScope {
            saved: DEFAULT.with(|d| std::mem::take(&mut *d.borrow_mut())),
        }
    }
}

impl Drop for EagerScope {
    fn drop(&mut self) {
        let saved = std::mem::take(&mut self.saved);
        DEFAULT.with(|d| {
            let mut d = d.borrow_mut();
            let pushed = std::mem::take(&mut *d);
            *d = saved;
            d.extend(pushed);
        });
    }
}

/// Keeps graph building suspended on this thread until dropped; see [`init_scope`].
pub struct InitScope {
    _eager: EagerScope,
}

/// `tf.init_scope()`: op functions called until the guard drops compute eagerly even while a graph
/// is being built (host-side initializers such as Keras's `Orthogonal`, which read their random
/// draws' values).
pub fn init_scope() -> InitScope {
    InitScope {
        _eager: EagerScope::new(),
    }
}

/// True while a graph is the default on this thread (op functions then build nodes).
pub fn building() -> bool {
    DEFAULT.with(|d| !d.borrow().is_empty())
}

/// The default graph of this thread, if one is set.
pub fn default_graph() -> Option<Graph> {
    DEFAULT.with(|d| d.borrow().last().cloned())
}

fn require_default(what: &str) -> Result<Graph> {
    default_graph().ok_or_else(|| {
        Error::invalid(
            what,
            "needs a default graph: call it inside `let _g = graph.as_default();`",
        )
    })
}

/// Formats a partial shape as TensorFlow does: `(None, 2)`, `(3,)`.
pub fn fmt_dims(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("None".to_string(), |d| d.to_string()))
        .collect();
    match parts.len() {
        1 => format!("({},)", parts[0]),
        _ => format!("({})", parts.join(", ")),
    }
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Graph {
            id: GraphId(NEXT.fetch_add(1, Ordering::Relaxed)),
            inner: Arc::new(Mutex::new(GraphInner::default())),
        }
    }

    /// This graph's id.
    pub fn id(&self) -> GraphId {
        self.id
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, GraphInner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Makes this graph the default on this thread until the guard is dropped: op functions called
    /// meanwhile add nodes to it.
    pub fn as_default(&self) -> DefaultGuard {
        DEFAULT.with(|d| d.borrow_mut().push(self.clone()));
        DefaultGuard { id: self.id }
    }

    /// Opens a name scope: nodes created until the guard drops are named `"<scope>/<name>"`
    /// (nested scopes join with `/`).
    pub fn name_scope(&self, name: &str) -> NameScope {
        self.lock().scopes.push(name.to_string());
        NameScope {
            graph: self.clone(),
        }
    }

    /// A copy of the nodes, in creation (topological) order.
    pub fn nodes(&self) -> Vec<Node> {
        self.lock().nodes.clone()
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.lock().nodes.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The variables created while this graph was the default (`tf.global_variables()`).
    pub fn global_variables(&self) -> Vec<Variable> {
        self.lock().variables.clone()
    }

    /// The assignments made with `Variable::assign*` while building (a layer's moving averages):
    /// TF 1's `tf.GraphKeys.UPDATE_OPS` collection. A session runs them only when fetched, e.g.
    /// `group` them with the train op.
    pub fn update_ops(&self) -> Vec<Tensor> {
        let locs = self.lock().update_ops.clone();
        locs.into_iter()
            .filter_map(|(n, o)| self.tensor(n, o).ok())
            .collect()
    }

    /// The trainable ones (`tf.trainable_variables()`).
    pub fn trainable_variables(&self) -> Vec<Variable> {
        self.global_variables()
            .into_iter()
            .filter(|v| v.trainable())
            .collect()
    }

    /// The symbolic tensor for output `output` of node `node`.
    pub fn tensor(&self, node: usize, output: usize) -> Result<Tensor> {
        let g = self.lock();
        let n = g.nodes.get(node).ok_or_else(|| {
            Error::invalid("Graph::tensor", format!("the graph has no node {node}"))
        })?;
        let spec = n.outputs.get(output).ok_or_else(|| {
            Error::invalid(
                "Graph::tensor",
                format!("node '{}' has no output {output}", n.name),
            )
        })?;
        Ok(self.handle(n, node, output, spec))
    }

    fn handle(&self, n: &Node, node: usize, output: usize, spec: &TensorSpec) -> Tensor {
        Tensor::symbolic(
            spec.dtype,
            Symbol {
                graph: self.id,
                node,
                output,
                dims: spec.shape.clone(),
                name: format!("{}:{output}", n.name).into(),
            },
        )
    }

    /// Checks that `t` is a tensor of this graph and returns its `(node, output)`.
    pub(crate) fn locate(&self, t: &Tensor, what: &str) -> Result<(usize, usize)> {
        match t.symbol() {
            Some(s) if s.graph == self.id => Ok((s.node, s.output)),
            Some(s) => Err(Error::invalid(
                what,
                format!(
                    "Tensor(\"{}\") must be from the same graph as the other tensors; it belongs to another graph",
                    s.name
                ),
            )),
            None => Err(Error::invalid(
                what,
                "expected a graph tensor, got an eager tensor",
            )),
        }
    }

    fn unique_name(g: &mut GraphInner, base: &str) -> String {
        let full = if g.scopes.is_empty() {
            base.to_string()
        } else {
            format!("{}/{base}", g.scopes.join("/"))
        };
        let count = g.names.entry(full.clone()).or_insert(0);
        let name = if *count == 0 {
            full.clone()
        } else {
            format!("{full}_{count}")
        };
        *count += 1;
        name
    }

    /// Adds a node and returns its outputs as symbolic tensors.
    pub(crate) fn add_node(
        &self,
        name: &str,
        kind: NodeKind,
        inputs: Vec<(usize, usize)>,
        outputs: Vec<TensorSpec>,
    ) -> Vec<Tensor> {
        let mut g = self.lock();
        let name = Self::unique_name(&mut g, name);
        let index = g.nodes.len();
        g.nodes.push(Node {
            name,
            kind,
            inputs,
            outputs,
        });
        let n = &g.nodes[index];
        n.outputs
            .iter()
            .enumerate()
            .map(|(i, s)| self.handle(n, index, i, s))
            .collect()
    }

    /// The `(node, output)` of `t` in this graph: a symbolic tensor of this graph, or an eager
    /// tensor captured as a constant node (once per tensor).
    pub(crate) fn input_of(&self, t: &Tensor, what: &str) -> Result<(usize, usize)> {
        if t.is_symbolic() {
            return self.locate(t, what);
        }
        let known = self.lock().consts.get(&t.id()).copied();
        if let Some(n) = known {
            return Ok((n, 0));
        }
        let spec = TensorSpec::of(t);
        let out = self.add_node("Const", NodeKind::Const(t.clone()), vec![], vec![spec]);
        let node = out[0].symbol().map(|s| s.node).unwrap_or_default();
        self.lock().consts.insert(t.id(), node);
        Ok((node, 0))
    }

    /// Adds an op node (what [`op::execute`](crate::op::execute) does in graph mode).
    pub(crate) fn add_op_node(&self, op: Arc<dyn Op>, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        if let Some(fed) = random::add_seed_fed(self, &op, inputs) {
            return fed;
        }
        let specs: Vec<TensorSpec> = inputs.iter().map(TensorSpec::of).collect();
        let outputs = op.infer(&specs)?;
        let locs = inputs
            .iter()
            .map(|t| self.input_of(t, op.name()))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.add_node(op.name(), NodeKind::Op(op), locs, outputs))
    }

    /// The node reading `var` in this graph (one per variable and graph, as TF 1's variable
    /// tensor).
    pub(crate) fn read_variable(&self, var: &Variable) -> Tensor {
        let known = self.lock().reads.get(&var.id()).copied();
        if let Some(n) = known {
            if let Ok(t) = self.tensor(n, 0) {
                return t;
            }
        }
        let spec = var.spec();
        let out = self.add_node(
            &format!("{}/read", var.name()),
            NodeKind::ReadVariable(var.clone()),
            vec![],
            vec![spec],
        );
        let t = out[0].clone();
        if let Some(s) = t.symbol() {
            self.lock().reads.insert(var.id(), s.node);
        }
        t
    }

    /// Records a variable created while this graph is the default.
    pub(crate) fn register_variable(&self, var: &Variable) {
        self.lock().variables.push(var.clone());
    }
}

/// The `roots` and every node they depend on, in index (topological) order; an input for which
/// `cut` holds (a fed output) is not followed.
pub(crate) fn ancestors(
    nodes: &[Node],
    roots: impl IntoIterator<Item = usize>,
    cut: impl Fn((usize, usize)) -> bool,
) -> Vec<usize> {
    let mut seen = vec![false; nodes.len()];
    let mut stack: Vec<usize> = roots.into_iter().collect();
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        stack.extend(nodes[n].inputs.iter().filter(|&&l| !cut(l)).map(|l| l.0));
    }
    (0..nodes.len()).filter(|&n| seen[n]).collect()
}

/// Adds `op` to the default graph (called by [`op::execute`](crate::op::execute) in graph mode).
pub(crate) fn add_op(op: Arc<dyn Op>, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    let g = match default_graph() {
        Some(g) => g,
        None => {
            let name = inputs
                .iter()
                .find_map(|t| t.symbol().map(|s| s.name.to_string()))
                .unwrap_or_default();
            return Err(Error::invalid(
                op.name(),
                format!(
                    "Tensor(\"{name}\") is a graph tensor, but no graph is the default on this thread: build inside `let _g = graph.as_default();`"
                ),
            ));
        }
    };
    g.add_op_node(op, inputs)
}

/// `tf.compat.v1.placeholder(dtype, shape, name)`: a tensor whose value is fed to
/// [`Session::run`]; `None` dimensions take any size.
pub fn placeholder(dtype: DType, shape: &[Dim], name: &str) -> Result<Tensor> {
    let g = require_default("placeholder")?;
    let name = if name.is_empty() { "Placeholder" } else { name };
    let spec = TensorSpec {
        dtype,
        shape: shape.to_vec(),
    };
    Ok(g.add_node(name, NodeKind::Placeholder, vec![], vec![spec])
        .swap_remove(0))
}

/// `tf.gradients(ys, xs)`: symbolic gradients of `sum(ys)` with respect to each of `xs` in the
/// default graph; `None` where `x` does not reach any `y` (as TensorFlow). The gradient ops are
/// built from each op's gradient rule when a session specializes the graph to concrete shapes.
pub fn gradients(ys: &[Tensor], xs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
    let g = require_default("gradients")?;
    gradients::build(&g, ys, xs)
}

/// Which assign, for the three public functions.
fn assign_impl(var: &Variable, value: &Tensor, kind: AssignKind) -> Result<Tensor> {
    let what = match kind {
        AssignKind::Set => "Assign",
        AssignKind::Add => "AssignAdd",
        AssignKind::Sub => "AssignSub",
    };
    let Some(g) = default_graph() else {
        match kind {
            AssignKind::Set => var.assign(value)?,
            AssignKind::Add => var.assign_add(value)?,
            AssignKind::Sub => var.assign_sub(value)?,
        }
        return Ok(var.value());
    };
    let spec = var.spec();
    let vspec = TensorSpec::of(value);
    if !vspec.compatible(&spec) {
        return Err(Error::invalid(
            what,
            format!(
                "variable '{}' is {} {} but the value is {} {}",
                var.name(),
                spec.dtype.name(),
                fmt_dims(&spec.shape),
                vspec.dtype.name(),
                fmt_dims(&vspec.shape)
            ),
        ));
    }
    let input = g.input_of(value, what)?;
    let out = g
        .add_node(
            &format!("{}/{what}", var.name()),
            NodeKind::Assign(var.clone(), kind),
            vec![input],
            vec![spec],
        )
        .swap_remove(0);
    // A read made after this assign is a new read node, run after it (index order), so it sees
    // the new value (TF 2's program order inside a traced function).
    g.lock().reads.remove(&var.id());
    Ok(out)
}

/// `Variable::assign*` called while a graph is being built: an assign node, added to the graph's
/// [`update_ops`](Graph::update_ops).
pub(crate) fn record_update(var: &Variable, value: &Tensor, kind: AssignKind) -> Result<()> {
    let g = require_default("Variable::assign")?;
    let t = assign_impl(var, value, kind)?;
    let loc = g.locate(&t, "Variable::assign")?;
    g.lock().update_ops.push(loc);
    Ok(())
}

/// `tf.compat.v1.assign(var, value)`: in graph mode a node that writes `value` into `var` when run
/// and outputs the new value; eagerly, assigns at once and returns the new value.
pub fn assign(var: &Variable, value: &Tensor) -> Result<Tensor> {
    assign_impl(var, value, AssignKind::Set)
}

/// `tf.compat.v1.assign_add(var, delta)`; see [`assign`].
pub fn assign_add(var: &Variable, delta: &Tensor) -> Result<Tensor> {
    assign_impl(var, delta, AssignKind::Add)
}

/// `tf.compat.v1.assign_sub(var, delta)`; see [`assign`].
pub fn assign_sub(var: &Variable, delta: &Tensor) -> Result<Tensor> {
    assign_impl(var, delta, AssignKind::Sub)
}

/// `tf.group(*inputs)`: a node that runs all `inputs` (a train op); fetching it gives an empty
/// tensor.
pub fn group(inputs: &[Tensor], name: &str) -> Result<Tensor> {
    let g = require_default("group")?;
    let locs = inputs
        .iter()
        .map(|t| g.input_of(t, "group"))
        .collect::<Result<Vec<_>>>()?;
    let name = if name.is_empty() { "group_deps" } else { name };
    Ok(g.add_node(
        name,
        NodeKind::Group,
        locs,
        vec![TensorSpec::new(DType::F32, &[0])],
    )
    .swap_remove(0))
}

/// `tf.compat.v1.global_variables_initializer()`: one op that assigns every variable of the
/// default graph its initial value.
pub fn global_variables_initializer() -> Result<Tensor> {
    let g = require_default("global_variables_initializer")?;
    let vars = g.global_variables();
    let mut inits = Vec::with_capacity(vars.len());
    for v in &vars {
        inits.push(assign(v, &v.initial_value())?);
    }
    group(&inits, "init")
}
