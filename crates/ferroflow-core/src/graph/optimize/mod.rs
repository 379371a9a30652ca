//! Graph optimisation passes, run by a [`Session`](crate::Session) on each specialized plan
//! (after symbolic gradients are expanded, so backward passes are optimised too), in TensorFlow
//! Grappler's spirit and with its option names (`tf.config.optimizer.set_experimental_options`):
//!
//! | option | pass (file) | what it does |
//! | --- | --- | --- |
//! | `pruning` | `pruning.rs` | forwards `Identity`/`StopGradient` (Grappler's dependency optimizer) and drops every node the fetches do not need |
//! | `constant_folding` | `constant_folding.rs` | evaluates an op whose inputs are all constants, once, into a `Const` |
//! | `arithmetic` | `arithmetic.rs` | `x*1`, `1*x`, `x/1`, `x+0`, `0+x`, `x-0` → `x`; transpose of transpose; reshape chains and no-op reshapes; `Greater(z, 0)` next to `Relu(z)` reads `Relu(z)` (so a ReLU's gradient no longer keeps `z` alive) |
//! | `common_subexpression_elimination` | `cse.rs` | merges nodes doing the same op on the same inputs (and equal small constants) |
//! | `remapping` | `remapping.rs`, `conv_pool_rewrite.rs` | fuses MatMul/Conv2D + BiasAdd (+ activation) into `_FusedMatMul`/`_FusedConv2D`, then `_FusedConv2D` + disjoint `MaxPool` (and its `MaxPoolGrad` + `ReluGrad` in training graphs) into `_FusedConv2DMaxPool` + `_MaxPoolReluGrad`, whose readers `BiasAddGrad` + `Conv2DBackprop*` become one `_FusedConv2DMaxPoolGrad` (`conv_pool_grad_rewrite.rs`) ([`conv_pool`]; `FF_CONV_POOL=0` disables both, `FF_CONV_POOL_GRAD=0` the second), and trees of elementwise ops into one `FusedElementwise` kernel ([`fused`]) |
//! | `memory_optimization` | `memory.rs` | a static memory plan: each intermediate is freed as soon as its last consumer has run, and elementwise ops write into a dead, uniquely owned input buffer (in place) |
//!
//! All are on by default. Set them for every new plan with [`set_experimental_options`], or per
//! session with [`Session::with_options`](crate::Session::with_options). Nodes that read or
//! write variables, placeholders and stateful ops ([`Op::is_stateful`], e.g. random ops) are
//! never folded, merged or fused; a fetched node is never removed or replaced (it may be folded
//! into a constant of the same value).
//!
//! ```
//! use ferroflow_core::graph::optimize::{optimize_graph, OptimizerOptions};
//! use ferroflow_core::{graph, ops, DType, Graph, Tensor};
//! let g = Graph::new();
//! let y = {
//!     let _d = g.as_default();
//!     let x = graph::placeholder(DType::F32, &[Some(2)], "x")?;
//!     ops::mul(&x, &Tensor::scalar(1.0f32))?
//! };
//! let (opt, fetches) = optimize_graph(&g, &[&y], &OptimizerOptions::default())?;
//! // x * 1 is x, but the fetched node survives (as an Identity of x).
//! assert!(opt.dump().contains("Mul = Identity(x:0)"));
//! # let _ = fetches;
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

mod arithmetic;
mod constant_folding;
pub mod conv_pool;
mod conv_pool_grad_rewrite;
mod conv_pool_rewrite;
mod cse;
pub mod fused;
pub(crate) mod memory;
mod pruning;
mod remapping;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use super::{ancestors, Graph, Node, NodeKind};
use crate::error::{Error, Result};
use crate::op::Op;
use crate::tensor::Tensor;

pub use memory::MemoryPlan;

/// Which optimisation passes run (Grappler's names; all on by default). See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OptimizerOptions {
    /// Fold ops whose inputs are all constants.
    pub constant_folding: bool,
    /// Merge identical nodes.
    pub common_subexpression_elimination: bool,
    /// Forward identities and drop nodes the fetches do not need.
    pub pruning: bool,
    /// Algebraic simplification (Grappler's `arithmetic_optimization`).
    pub arithmetic: bool,
    /// Fusion (Grappler's `remapping`).
    pub remapping: bool,
    /// Free dead intermediates early and compute elementwise ops in place.
    pub memory_optimization: bool,
}

impl Default for OptimizerOptions {
    fn default() -> Self {
        OptimizerOptions {
            constant_folding: true,
            common_subexpression_elimination: true,
            pruning: true,
            arithmetic: true,
            remapping: true,
            memory_optimization: true,
        }
    }
}

impl OptimizerOptions {
    /// Every pass off (`disable_meta_optimizer`): the specialized graph runs as built.
    pub fn none() -> OptimizerOptions {
        OptimizerOptions {
            constant_folding: false,
            common_subexpression_elimination: false,
            pruning: false,
            arithmetic: false,
            remapping: false,
            memory_optimization: false,
        }
    }
}

static GLOBAL: RwLock<Option<OptimizerOptions>> = RwLock::new(None);

/// `tf.config.optimizer.set_experimental_options`: the options sessions created without their
/// own use for plans built from now on.
pub fn set_experimental_options(options: OptimizerOptions) {
    match GLOBAL.write() {
        Ok(mut g) => *g = Some(options),
        Err(p) => *p.into_inner() = Some(options),
    }
}

/// `tf.config.optimizer.get_experimental_options`: the global options.
pub fn get_experimental_options() -> OptimizerOptions {
    let g = match GLOBAL.read() {
        Ok(g) => *g,
        Err(p) => *p.into_inner(),
    };
    g.unwrap_or_default()
}

/// The graph a pass works on: its nodes (index order is topological), the fetched outputs and
/// the nodes that must survive.
pub(crate) struct Work {
    pub(crate) nodes: Vec<Node>,
    /// Per fetch: `(node, output)`, or `None` for a fetch that is a constant tensor.
    pub(crate) fetches: Vec<Option<(usize, usize)>>,
    /// Fetched nodes and placeholders: never removed nor redirected.
    pub(crate) keep: HashSet<usize>,
}

impl Work {
    /// How many input slots (plus fetches) read each output of each node.
    pub(crate) fn consumers(&self) -> Vec<Vec<usize>> {
        let mut c: Vec<Vec<usize>> = self
            .nodes
            .iter()
            .map(|n| vec![0; n.outputs.len()])
            .collect();
        let live = self.live();
        for (i, n) in self.nodes.iter().enumerate() {
            if !live[i] {
                continue;
            }
            for &(j, o) in &n.inputs {
                c[j][o] += 1;
            }
        }
        for &(j, o) in self.fetches.iter().flatten() {
            c[j][o] += 1;
        }
        c
    }

    /// Which nodes the fetches need.
    pub(crate) fn live(&self) -> Vec<bool> {
        let mut live = vec![false; self.nodes.len()];
        for n in ancestors(
            &self.nodes,
            self.fetches.iter().flatten().map(|l| l.0),
            |_| false,
        ) {
            live[n] = true;
        }
        live
    }

    /// Makes every reader of `from` read `to` instead (`to` is an earlier output).
    pub(crate) fn redirect(&mut self, from: (usize, usize), to: (usize, usize)) {
        for n in &mut self.nodes[from.0 + 1..] {
            for l in &mut n.inputs {
                if *l == from {
                    *l = to;
                }
            }
        }
    }

    /// The op of node `n`, if it is an op node.
    pub(crate) fn op(&self, n: usize) -> Option<&Arc<dyn Op>> {
        match &self.nodes[n].kind {
            NodeKind::Op(op) => Some(op),
            _ => None,
        }
    }

    /// The constant value of output `l`, if it is a `Const` node.
    pub(crate) fn constant(&self, l: (usize, usize)) -> Option<&Tensor> {
        match &self.nodes[l.0].kind {
            NodeKind::Const(t) if l.1 == 0 => Some(t),
            _ => None,
        }
    }

    /// Drops the nodes the fetches do not need, renumbering; returns the old → new index map.
    fn compact(&mut self) -> Vec<Option<usize>> {
        let live = self.live();
        let mut map = vec![None; self.nodes.len()];
        let mut kept = Vec::with_capacity(self.nodes.len());
        for (i, n) in std::mem::take(&mut self.nodes).into_iter().enumerate() {
            if live[i] || matches!(n.kind, NodeKind::Placeholder) {
                map[i] = Some(kept.len());
                kept.push(n);
            }
        }
        for n in &mut kept {
            for l in &mut n.inputs {
                l.0 = map[l.0].unwrap_or(usize::MAX);
            }
        }
        for l in self.fetches.iter_mut().flatten() {
            l.0 = map[l.0].unwrap_or(usize::MAX);
        }
        self.keep = self.keep.iter().filter_map(|&k| map[k]).collect();
        self.nodes = kept;
        map
    }
}

/// What a session runs: the optimised graph and, when memory optimisation is on, its plan.
pub(crate) struct Optimized {
    pub(crate) graph: Graph,
    pub(crate) nodes: Vec<Node>,
    pub(crate) order: Vec<usize>,
    pub(crate) fetches: Vec<Tensor>,
    pub(crate) feed_nodes: Vec<usize>,
    pub(crate) memory: Option<MemoryPlan>,
    /// Node `i` of the specialized graph is node `index_map[i]` here (`None`: removed).
    pub(crate) index_map: Vec<Option<usize>>,
}

/// Runs the enabled passes on the specialized graph `spec` (the session's one hook).
pub(crate) fn optimize(
    spec: &Graph,
    fetches: &[Tensor],
    feed_nodes: &[usize],
    options: &OptimizerOptions,
) -> Result<Optimized> {
    let nodes = spec.nodes();
    let mut fetch_locs = Vec::with_capacity(fetches.len());
    for t in fetches {
        fetch_locs.push(match t.symbol() {
            Some(_) => Some(spec.locate(t, "Session::run")?),
            None => None,
        });
    }
    let mut keep: HashSet<usize> = fetch_locs.iter().flatten().map(|l| l.0).collect();
    keep.extend(
        nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.kind, NodeKind::Placeholder))
            .map(|(i, _)| i),
    );
    let mut w = Work {
        nodes,
        fetches: fetch_locs,
        keep,
    };
    // Two rounds: folding exposes simplifications and the other way round.
    for _ in 0..2 {
        if options.pruning {
            pruning::run(&mut w);
        }
        if options.constant_folding {
            constant_folding::run(&mut w)?;
        }
        if options.arithmetic {
            arithmetic::run(&mut w);
        }
        if options.common_subexpression_elimination {
            cse::run(&mut w);
        }
    }
    if options.remapping {
        remapping::run(&mut w)?;
    }
    let mut feed_nodes = feed_nodes.to_vec();
    let mut index_map: Vec<Option<usize>> = (0..w.nodes.len()).map(Some).collect();
    if options.pruning {
        index_map = w.compact();
        for f in &mut feed_nodes {
            *f = index_map.get(*f).copied().flatten().unwrap_or(usize::MAX);
        }
    }
    let graph = Graph::new();
    for n in &w.nodes {
        graph.add_node(&n.name, n.kind.clone(), n.inputs.clone(), n.outputs.clone());
    }
    let mut out_fetches = Vec::with_capacity(fetches.len());
    for (t, l) in fetches.iter().zip(&w.fetches) {
        out_fetches.push(match l {
            Some((n, o)) => graph.tensor(*n, *o)?,
            None => t.clone(),
        });
    }
    let order = ancestors(&w.nodes, w.fetches.iter().flatten().map(|l| l.0), |_| false);
    let memory = options
        .memory_optimization
        .then(|| MemoryPlan::new(&w.nodes, &order, &w.fetches));
    Ok(Optimized {
        graph,
        nodes: w.nodes,
        order,
        fetches: out_fetches,
        feed_nodes,
        memory,
        index_map,
    })
}

/// Optimises the part of `graph` that `fetches` need (every placeholder's shape must be fully
/// known) and returns the optimised graph with the fetches' tensors in it: what a session
/// runs, to look at (`dump`) or test. Sessions call the same passes on their specialized plans;
/// see also [`Session::optimized_graph`](crate::Session::optimized_graph).
pub fn optimize_graph(
    graph: &Graph,
    fetches: &[&Tensor],
    options: &OptimizerOptions,
) -> Result<(Graph, Vec<Tensor>)> {
    let nodes = graph.nodes();
    let mut fetch_locs = Vec::with_capacity(fetches.len());
    for t in fetches {
        fetch_locs.push(graph.locate(t, "optimize_graph")?);
    }
    for n in &nodes {
        if matches!(n.kind, NodeKind::Gradients { .. }) {
            return Err(Error::invalid(
                "optimize_graph",
                format!(
                    "node '{}': symbolic gradients are expanded by a Session; use Session::optimized_graph",
                    n.name
                ),
            ));
        }
    }
    let ts: Vec<Tensor> = fetches.iter().map(|t| (*t).clone()).collect();
    let feeds: Vec<usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.kind, NodeKind::Placeholder))
        .map(|(i, _)| i)
        .collect();
    let o = optimize(graph, &ts, &feeds, options)?;
    Ok((o.graph, o.fetches))
}
