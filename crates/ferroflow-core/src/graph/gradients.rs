//! Symbolic gradients: `tf.gradients(ys, xs)` in a graph.
//!
//! At build time [`build`] only records a `Gradients` node (shapes may still be unknown, and a
//! gradient rule may need them: `reduce_to_shape`, a mean's count). When a session specializes the
//! graph, [`expand`] walks the specialized forward nodes backwards and calls each op's
//! [`Op::grad`](crate::op::Op::grad) on symbolic tensors, so the backward pass becomes ordinary
//! graph nodes built by the very rules the `GradientTape` uses.

use std::collections::{HashMap, HashSet};

use super::{ancestors, default_graph, Graph, NodeKind};
use crate::error::{Error, Result};
use crate::op::{GradCtx, TensorSpec};
use crate::ops;
use crate::tensor::Tensor;

/// Records a `Gradients` node; `None` for sources that do not reach any target.
pub(super) fn build(g: &Graph, ys: &[Tensor], xs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
    let y_locs = ys
        .iter()
        .map(|t| g.locate(t, "gradients"))
        .collect::<Result<Vec<_>>>()?;
    let x_locs = xs
        .iter()
        .map(|t| g.locate(t, "gradients"))
        .collect::<Result<Vec<_>>>()?;
    let nodes = g.nodes();
    let reach = reaching(&nodes, &y_locs);
    let connected: Vec<bool> = x_locs
        .iter()
        .zip(xs)
        .map(|(l, x)| reach.contains(&l.0) && x.dtype().is_float())
        .collect();
    let sources: Vec<(usize, usize)> = x_locs
        .iter()
        .zip(&connected)
        .filter(|(_, &c)| c)
        .map(|(l, _)| *l)
        .collect();
    if sources.is_empty() {
        return Ok(vec![None; xs.len()]);
    }
    let specs: Vec<TensorSpec> = sources
        .iter()
        .map(|&(n, o)| nodes[n].outputs[o].clone())
        .collect();
    let mut inputs = y_locs.clone();
    inputs.extend(&sources);
    let outs = g.add_node(
        "gradients",
        NodeKind::Gradients { n_ys: ys.len() },
        inputs,
        specs,
    );
    let mut outs = outs.into_iter();
    Ok(connected
        .into_iter()
        .map(|c| if c { outs.next() } else { None })
        .collect())
}

/// Nodes that some target depends on (the targets included).
fn reaching(nodes: &[super::Node], targets: &[(usize, usize)]) -> HashSet<usize> {
    ancestors(nodes, targets.iter().map(|l| l.0), |_| false)
        .into_iter()
        .collect()
}

/// Builds the backward nodes in the default graph (a specialized one: every shape known) and
/// returns d(sum of ys)/d(x) for each x (`None` where x does not reach the ys).
pub(super) fn expand(ys: &[Tensor], xs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
    let g = default_graph().ok_or_else(|| Error::invalid("gradients", "no default graph"))?;
    let loc = |t: &Tensor| -> Option<(usize, usize)> {
        t.symbol()
            .filter(|s| s.graph == g.id())
            .map(|s| (s.node, s.output))
    };
    let nodes = g.nodes();
    let y_locs: Vec<(usize, usize)> = ys.iter().filter_map(loc).collect();
    let x_locs: Vec<Option<(usize, usize)>> = xs.iter().map(loc).collect();
    let upstream = reaching(&nodes, &y_locs);
    // Nodes downstream of a source.
    let mut downstream: HashSet<usize> = x_locs.iter().flatten().map(|l| l.0).collect();
    for (i, n) in nodes.iter().enumerate() {
        if n.inputs.iter().any(|l| downstream.contains(&l.0)) {
            downstream.insert(i);
        }
    }
    let mut grads: HashMap<(usize, usize), Tensor> = HashMap::new();
    let accumulate = |grads: &mut HashMap<(usize, usize), Tensor>, l, g: Tensor| -> Result<()> {
        let sum = match grads.remove(&l) {
            Some(prev) => ops::add(&prev, &g)?,
            None => g,
        };
        grads.insert(l, sum);
        Ok(())
    };
    for (y, l) in ys.iter().zip(ys.iter().map(loc)) {
        if let Some(l) = l {
            if y.dtype().is_float() {
                accumulate(&mut grads, l, ops::ones(y.shape(), y.dtype()))?;
            }
        }
    }
    let last = nodes.len();
    for n in (0..last).rev() {
        if !upstream.contains(&n) || !downstream.contains(&n) {
            continue;
        }
        let node = &nodes[n];
        let NodeKind::Op(op) = &node.kind else {
            continue;
        };
        if !(0..node.outputs.len()).any(|o| grads.contains_key(&(n, o))) {
            continue;
        }
        // Constants enter the rules as the eager tensors they are, so a rule may read them
        // (segment ids, gather indices).
        let inputs = node
            .inputs
            .iter()
            .map(|&(i, o)| match &nodes[i].kind {
                NodeKind::Const(t) => Ok(t.clone()),
                _ => g.tensor(i, o),
            })
            .collect::<Result<Vec<_>>>()?;
        let outputs = (0..node.outputs.len())
            .map(|o| g.tensor(n, o))
            .collect::<Result<Vec<_>>>()?;
        let out_grads = outputs
            .iter()
            .enumerate()
            .map(|(o, t)| match grads.get(&(n, o)) {
                Some(gr) => Ok(gr.clone()),
                None => ops::zeros_like(t),
            })
            .collect::<Result<Vec<_>>>()?;
        // Only the inputs that depend on a source take a gradient.
        let needed: Vec<bool> = node
            .inputs
            .iter()
            .map(|l| downstream.contains(&l.0) && nodes[l.0].outputs[l.1].dtype.is_float())
            .collect();
        let in_grads = op.grad(&GradCtx {
            inputs: &inputs,
            outputs: &outputs,
            grads: &out_grads,
            needed: &needed,
        })?;
        for ((&l, gi), &need) in node.inputs.iter().zip(in_grads).zip(&needed) {
            let Some(gi) = gi else { continue };
            if !need {
                continue;
            }
            accumulate(&mut grads, l, gi)?;
        }
    }
    Ok(x_locs
        .into_iter()
        .map(|l| l.and_then(|l| grads.get(&l).cloned()))
        .collect())
}
