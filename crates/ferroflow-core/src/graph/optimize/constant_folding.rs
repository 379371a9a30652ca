//! Constant folding: an op node whose inputs are all `Const` nodes is evaluated once, when the
//! plan is built, and becomes a `Const` of the same name (so a fetch of it still works). Stateful
//! ops (random) and nodes reading or writing variables are never folded; results larger than
//! [`MAX_ELEMENTS`] stay ops (Grappler likewise caps folded constants' size).

use super::Work;
use crate::error::Result;
use crate::graph::NodeKind;
use crate::tensor::Tensor;

/// The largest result folded, in elements.
pub const MAX_ELEMENTS: usize = 1 << 20;

/// Folds every foldable node, in topological order (so chains of constants fold completely).
pub(crate) fn run(w: &mut Work) -> Result<()> {
    let _eager = crate::graph::EagerScope::new();
    for n in 0..w.nodes.len() {
        let Some(op) = w.op(n).cloned() else { continue };
        if op.is_stateful() || w.nodes[n].inputs.is_empty() {
            continue;
        }
        let small = w.nodes[n]
            .outputs
            .iter()
            .all(|s| s.num_elements().is_some_and(|k| k <= MAX_ELEMENTS));
        if !small || w.nodes[n].outputs.len() != 1 {
            continue;
        }
        let inputs: Option<Vec<Tensor>> = w.nodes[n]
            .inputs
            .iter()
            .map(|&l| w.constant(l).cloned())
            .collect();
        let Some(inputs) = inputs else { continue };
        // An op that fails here (e.g. a bad index) fails at run time too: leave it to report then.
        let Ok(mut out) = crate::op::compute(op.as_ref(), &inputs) else {
            continue;
        };
        let t = out.swap_remove(0);
        if t.dtype() != w.nodes[n].outputs[0].dtype || !w.nodes[n].outputs[0].admits(t.shape()) {
            continue;
        }
        w.nodes[n].kind = NodeKind::Const(t);
        w.nodes[n].inputs.clear();
    }
    Ok(())
}
