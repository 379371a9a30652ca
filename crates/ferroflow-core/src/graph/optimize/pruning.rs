//! Pruning (Grappler's dependency optimizer + model pruner): readers of an `Identity` or
//! `StopGradient` read its input instead (gradients are already expanded, so `StopGradient` is a
//! plain identity here); the nodes the fetches no longer need are dropped when the plan is
//! compacted (`Work::compact`). A fetched identity stays.

use super::Work;
use crate::ops::array::{Identity, StopGradient};

/// Forwards identities.
pub(crate) fn run(w: &mut Work) {
    for n in 0..w.nodes.len() {
        if w.keep.contains(&n) || w.nodes[n].inputs.len() != 1 {
            continue;
        }
        let Some(op) = w.op(n) else { continue };
        let any = op.as_any();
        if any.is::<Identity>() || any.is::<StopGradient>() {
            let to = w.nodes[n].inputs[0];
            w.redirect((n, 0), to);
        }
    }
}
