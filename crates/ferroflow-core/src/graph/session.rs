//! [`Session`]: runs the part of a graph that fetches need, specialized to the fed shapes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::optimize::{self, MemoryPlan, OptimizerOptions};
use super::{ancestors, fmt_dims, gradients, AssignKind, Graph, Node, NodeKind};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::{Tensor, TensorId};

/// A graph specialized to one feed signature: every shape is known, gradients are expanded.
struct Plan {
    /// The specialized graph.
    graph: Graph,
    /// Nodes of `graph` to run, in order.
    order: Vec<usize>,
    /// Per fetch: a tensor of `graph` or a constant.
    fetches: Vec<Tensor>,
    /// Per feed (in the order given to `run`): the placeholder node of `graph`.
    feed_nodes: Vec<usize>,
    /// The nodes of `graph` (kept here so a run does not copy them).
    nodes: Vec<Node>,
    /// Reader counts when memory optimisation is on.
    memory: Option<MemoryPlan>,
    /// Random nodes of `graph` → the session graph's node they specialize (its run count).
    random: HashMap<usize, usize>,
}

type PlanKey = (
    OptimizerOptions,
    usize,
    Vec<(usize, usize)>,
    Vec<((usize, usize), DType, Vec<usize>)>,
);

/// Runs a [`Graph`] (TF 1's `tf.compat.v1.Session`). Graph variables keep their values here,
/// across runs; two sessions on one graph have independent values.
pub struct Session {
    graph: Graph,
    vars: Mutex<HashMap<TensorId, Tensor>>,
    plans: Mutex<HashMap<PlanKey, Arc<Plan>>>,
    options: Option<OptimizerOptions>,
    random_runs: super::random::RunCounts,
}

impl Session {
    /// A session on `graph`.
    pub fn new(graph: &Graph) -> Session {
        Session {
            graph: graph.clone(),
            vars: Mutex::new(HashMap::new()),
            plans: Mutex::new(HashMap::new()),
            options: None,
            random_runs: Default::default(),
        }
    }

    /// A session on `graph` whose plans are optimised with `options` (TF 1's
    /// `tf.compat.v1.Session(config=ConfigProto(graph_options=...rewrite_options))`); a session
    /// made with [`new`](Self::new) uses the global
    /// [`optimize::get_experimental_options`](super::optimize::get_experimental_options).
    pub fn with_options(graph: &Graph, options: OptimizerOptions) -> Session {
        let mut s = Session::new(graph);
        s.options = Some(options);
        s
    }

    /// The options this session's new plans use.
    pub fn options(&self) -> OptimizerOptions {
        self.options
            .unwrap_or_else(optimize::get_experimental_options)
    }

    /// The optimised, specialized graph that [`run`](Self::run) executes for these fetches and
    /// feeds (built and cached as `run` would, not executed), with the fetches' tensors in it:
    /// to look at with [`Graph::dump`].
    pub fn optimized_graph(
        &self,
        fetches: &[&Tensor],
        feeds: &[(&Tensor, Tensor)],
    ) -> Result<(Graph, Vec<Tensor>)> {
        let plan = self.plan(fetches, feeds)?;
        Ok((plan.graph.clone(), plan.fetches.clone()))
    }

    /// The graph this session runs.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// `sess.run(fetches, feed_dict)`: computes `fetches`, running only the nodes they need, with
    /// each `(placeholder, value)` of `feeds` fed. A train op (from `group` or `minimize`) fetches
    /// as an empty tensor.
    ///
    /// Errors name the placeholder for a missing feed or a value of the wrong dtype or shape, and
    /// the tensor for a fetch from another graph.
    pub fn run(&self, fetches: &[&Tensor], feeds: &[(&Tensor, Tensor)]) -> Result<Vec<Tensor>> {
        crate::kernels::parallel::join_thread_pool();
        let plan = self.plan(fetches, feeds)?;
        self.execute(&plan, feeds)
    }

    /// The cached plan for these fetches and feed shapes, built on first use.
    fn plan(&self, fetches: &[&Tensor], feeds: &[(&Tensor, Tensor)]) -> Result<Arc<Plan>> {
        let fetch_locs = fetches
            .iter()
            .map(|t| self.graph.locate(t, "Session::run"))
            .collect::<Result<Vec<_>>>()?;
        let mut feed_locs = Vec::with_capacity(feeds.len());
        for (p, v) in feeds {
            let loc = self.graph.locate(p, "Session::run (feed)")?;
            self.check_feed(loc, v)?;
            feed_locs.push((loc, v.dtype(), v.shape().to_vec()));
        }
        let options = self.options();
        let key = (options, self.graph.len(), fetch_locs, feed_locs);
        let plan = {
            let cached = lock(&self.plans).get(&key).cloned();
            match cached {
                Some(p) => p,
                None => {
                    let p = Arc::new(self.specialize(&key.2, feeds, &options)?);
                    lock(&self.plans).insert(key, p.clone());
                    p
                }
            }
        };
        Ok(plan)
    }

    fn check_feed(&self, loc: (usize, usize), v: &Tensor) -> Result<()> {
        let g = self.graph.lock();
        let node = &g.nodes[loc.0];
        let spec = &node.outputs[loc.1];
        let fits = spec.admits(v.shape());
        if spec.dtype != v.dtype() {
            return Err(Error::invalid(
                "Session::run",
                format!(
                    "cannot feed a {} value to tensor '{}:{}', which has dtype {}",
                    v.dtype().name(),
                    node.name,
                    loc.1,
                    spec.dtype.name()
                ),
            ));
        }
        if !fits {
            return Err(Error::invalid(
                "Session::run",
                format!(
                    "cannot feed a value of shape {} for tensor '{}:{}', which has shape {}",
                    crate::error::fmt_shape(v.shape()),
                    node.name,
                    loc.1,
                    fmt_dims(&spec.shape)
                ),
            ));
        }
        Ok(())
    }

    /// Builds the specialized graph for these fetches and fed shapes.
    fn specialize(
        &self,
        fetches: &[(usize, usize)],
        feeds: &[(&Tensor, Tensor)],
        options: &OptimizerOptions,
    ) -> Result<Plan> {
        let nodes = self.graph.nodes();
        let fed: HashMap<(usize, usize), usize> = feeds
            .iter()
            .enumerate()
            .filter_map(|(i, (p, _))| p.symbol().map(|s| ((s.node, s.output), i)))
            .collect();
        // The nodes the fetches need (a fed output cuts the walk).
        let order = ancestors(&nodes, fetches.iter().map(|l| l.0), |l| {
            fed.contains_key(&l)
        });

        let spec = Graph::new();
        let _default = spec.as_default();
        // The specialized value of each needed output.
        let mut map: HashMap<(usize, usize), Tensor> = HashMap::new();
        let mut feed_nodes = vec![usize::MAX; feeds.len()];
        let mut random = HashMap::new();
        for (&loc, &i) in &fed {
            let v = &feeds[i].1;
            let name = &nodes[loc.0].name;
            let t = super::placeholder(v.dtype(), &v.dims(), name)?;
            feed_nodes[i] = t.symbol().map(|s| s.node).unwrap_or_default();
            map.insert(loc, t);
        }
        for &n in &order {
            let node = &nodes[n];
            if node
                .outputs
                .iter()
                .enumerate()
                .all(|(o, _)| fed.contains_key(&(n, o)))
            {
                continue;
            }
            let inputs: Vec<Tensor> = node
                .inputs
                .iter()
                .map(|l| map.get(l).cloned())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    Error::invalid(
                        "Session::run",
                        format!("node '{}': missing input", node.name),
                    )
                })?;
            let outs: Vec<Tensor> = match &node.kind {
                NodeKind::Placeholder => {
                    let s = &node.outputs[0];
                    return Err(Error::invalid(
                        "Session::run",
                        format!(
                            "You must feed a value for placeholder tensor '{}' with dtype {} and shape {}",
                            node.name,
                            s.dtype.name(),
                            fmt_dims(&s.shape)
                        ),
                    ));
                }
                NodeKind::Const(t) => vec![t.clone()],
                NodeKind::ReadVariable(v) => vec![spec.read_variable(v)],
                NodeKind::Assign(v, kind) => vec![super::assign_impl(v, &inputs[0], *kind)?],
                NodeKind::Group => vec![super::group(&inputs, &node.name)?],
                NodeKind::Op(op) => {
                    let outs = spec.add_op_node(op.clone(), &inputs)?;
                    if op.random_seed().is_some() {
                        if let Some(s) = outs.first().and_then(|t| t.symbol()) {
                            random.insert(s.node, n);
                        }
                    }
                    outs
                }
                NodeKind::Gradients { n_ys } => {
                    let (ys, xs) = inputs.split_at(*n_ys);
                    gradients::expand(ys, xs)?
                        .into_iter()
                        .zip(xs)
                        .map(|(g, x)| g.map_or_else(|| ops::zeros_like(x), Ok))
                        .collect::<Result<Vec<_>>>()?
                }
            };
            for (o, t) in outs.into_iter().enumerate() {
                map.insert((n, o), t);
            }
        }
        let fetch_tensors = fetches
            .iter()
            .map(|l| {
                map.get(l).cloned().ok_or_else(|| {
                    Error::invalid("Session::run", "a fetch was not computed".to_string())
                })
            })
            .collect::<Result<Vec<_>>>()?;
        drop(_default);
        // The optimisation passes (all off: the specialized graph as built).
        let o = optimize::optimize(&spec, &fetch_tensors, &feed_nodes, options)?;
        Ok(Plan {
            graph: o.graph,
            order: o.order,
            fetches: o.fetches,
            feed_nodes: o.feed_nodes,
            nodes: o.nodes,
            memory: o.memory,
            // Random nodes keep their run counts through the passes' renumbering (the passes
            // never merge or fold them: they are stateful).
            random: random
                .into_iter()
                .filter_map(|(s, orig)| o.index_map.get(s).copied().flatten().map(|n| (n, orig)))
                .collect(),
        })
    }

    fn execute(&self, plan: &Plan, feeds: &[(&Tensor, Tensor)]) -> Result<Vec<Tensor>> {
        let _eager = super::EagerScope::new();
        let nodes = &plan.nodes;
        let mut values: Vec<Vec<Option<Tensor>>> = vec![Vec::new(); nodes.len()];
        // Reads left of each value (memory plan), so its last reader takes it.
        let mut left: Option<Vec<Vec<usize>>> = plan.memory.as_ref().map(|m| m.uses.clone());
        for (i, &n) in plan.feed_nodes.iter().enumerate() {
            if n < values.len() {
                values[n] = vec![Some(feeds[i].1.clone())];
            }
        }
        for &n in &plan.order {
            if !values[n].is_empty() {
                continue;
            }
            let node = &nodes[n];
            let mut inputs: Vec<Tensor> = Vec::with_capacity(node.inputs.len());
            for &(i, o) in &node.inputs {
                let last = match left.as_mut() {
                    Some(l) => {
                        l[i][o] = l[i][o].saturating_sub(1);
                        l[i][o] == 0
                    }
                    None => false,
                };
                let slot = values[i].get_mut(o);
                let v = if last {
                    slot.and_then(Option::take)
                } else {
                    slot.and_then(|v| v.clone())
                };
                inputs.push(v.ok_or_else(|| {
                    Error::invalid(
                        "Session::run",
                        format!("node '{}': input not computed", node.name),
                    )
                })?);
            }
            let out = match &node.kind {
                NodeKind::Placeholder => {
                    return Err(Error::invalid(
                        "Session::run",
                        format!("placeholder '{}' was not fed", node.name),
                    ))
                }
                NodeKind::Const(t) => vec![t.clone()],
                NodeKind::ReadVariable(v) => vec![self.read(v)?],
                NodeKind::Assign(v, kind) => vec![self.write(v, *kind, &inputs[0])?],
                NodeKind::Group => vec![Tensor::from_vec(Vec::<f32>::new(), &[0])?],
                NodeKind::Op(op) => match plan.random.get(&n) {
                    Some(&key) => {
                        super::random::compute(op.as_ref(), &inputs, &self.random_runs, key)?
                    }
                    None if left.is_some() => optimize::memory::compute_owned(op.as_ref(), inputs)?,
                    None => crate::op::compute(op.as_ref(), &inputs)?,
                },
                NodeKind::Gradients { .. } => {
                    return Err(Error::invalid(
                        "Session::run",
                        "internal: an unexpanded gradients node",
                    ))
                }
            };
            values[n] = match &left {
                // An output nobody reads is freed at once.
                Some(l) => out
                    .into_iter()
                    .enumerate()
                    .map(|(o, t)| (l[n].get(o).copied().unwrap_or(0) > 0).then_some(t))
                    .collect(),
                None => out.into_iter().map(Some).collect(),
            };
        }
        plan.fetches
            .iter()
            .map(|t| match t.symbol() {
                None => Ok(t.clone()),
                Some(s) => values[s.node]
                    .get_mut(s.output)
                    .and_then(|v| v.clone())
                    .ok_or_else(|| Error::invalid("Session::run", "a fetch was not computed")),
            })
            .collect()
    }

    fn read(&self, v: &crate::Variable) -> Result<Tensor> {
        if v.graph().is_none() {
            // An eager variable captured by the graph: its own value, shared (TF 2 semantics).
            return Ok(v.initial_value());
        }
        if v.graph() != Some(self.graph.id()) {
            return Err(Error::invalid(
                "Session::run",
                format!("variable '{}' belongs to another graph", v.name()),
            ));
        }
        lock(&self.vars).get(&v.id()).cloned().ok_or_else(|| {
            Error::invalid(
                "Session::run",
                format!(
                    "Attempting to use uninitialized value {} (run global_variables_initializer() first)",
                    v.name()
                ),
            )
        })
    }

    fn write(&self, v: &crate::Variable, kind: AssignKind, x: &Tensor) -> Result<Tensor> {
        let new = match kind {
            AssignKind::Set => x.contiguous(),
            AssignKind::Add => ops::add(&self.read(v)?, x)?,
            AssignKind::Sub => ops::sub(&self.read(v)?, x)?,
        };
        let spec = v.spec();
        let fits = new.dtype() == spec.dtype && spec.admits(new.shape());
        if !fits {
            return Err(Error::invalid(
                "Session::run",
                format!(
                    "assigning a {} {} value to variable '{}' of {} {}",
                    new.dtype().name(),
                    crate::error::fmt_shape(new.shape()),
                    v.name(),
                    spec.dtype.name(),
                    fmt_dims(&spec.shape)
                ),
            ));
        }
        if v.graph().is_none() {
            v.set_value_unchecked(new.clone());
        } else {
            lock(&self.vars).insert(v.id(), new.clone());
        }
        Ok(new)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
