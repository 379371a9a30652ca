//! The static memory plan: for each output of each node, how many readers (input slots of
//! planned nodes, plus fetches) it has, computed once per plan. While a session executes the
//! plan it hands a value to its last reader by move and frees it then, so an intermediate lives
//! only from its producer to its last reader; an elementwise op (`Unary`, `Binary`,
//! `FusedElementwise`) whose input is dead after it and uniquely owned (its `Arc`s' counts prove
//! no other handle, view or variable shares the buffer) writes its result into that buffer.

use super::fused::{fusable_binary, fusable_unary, Arg, ElemFn, FusedElementwise};
use crate::error::Result;
use crate::graph::Node;
use crate::op::Op;
use crate::ops::binary::Binary;
use crate::ops::unary::Unary;
use crate::tensor::Tensor;

/// Reader counts of every output of a plan's nodes. See the module docs.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    /// `uses[node][output]`: how many times the value is read during one run.
    pub uses: Vec<Vec<usize>>,
}

impl MemoryPlan {
    /// Counts the readers among the `order`ed nodes and the fetches.
    pub(crate) fn new(
        nodes: &[Node],
        order: &[usize],
        fetches: &[Option<(usize, usize)>],
    ) -> MemoryPlan {
        let mut uses: Vec<Vec<usize>> = nodes.iter().map(|n| vec![0; n.outputs.len()]).collect();
        for &n in order {
            for &(i, o) in &nodes[n].inputs {
                uses[i][o] += 1;
            }
        }
        for &(i, o) in fetches.iter().flatten() {
            uses[i][o] += 1;
        }
        MemoryPlan { uses }
    }
}

/// Runs `op` on owned `inputs`: in place when it is elementwise and an input's buffer can be
/// reused, through the op's usual kernel otherwise. Timed by the profiler like every kernel.
pub(crate) fn compute_owned(op: &dyn Op, mut inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
    let any = op.as_any();
    let single = any.is::<Unary>() || any.is::<Binary>();
    if single && !reusable(&mut inputs) {
        return crate::op::compute(op, &inputs);
    }
    let program = if let Some(f) = any.downcast_ref::<FusedElementwise>() {
        Some(f.clone())
    } else if let Some(Unary(u)) = any.downcast_ref::<Unary>() {
        fusable_unary(*u)
            .then(|| FusedElementwise::new(1, vec![(ElemFn::Unary(*u), vec![Arg::Input(0)])]).ok())
            .flatten()
    } else if let Some(Binary(b)) = any.downcast_ref::<Binary>() {
        fusable_binary(*b)
            .then(|| {
                FusedElementwise::new(
                    2,
                    vec![(ElemFn::Binary(*b), vec![Arg::Input(0), Arg::Input(1)])],
                )
                .ok()
            })
            .flatten()
    } else {
        None
    };
    let Some(program) = program else {
        return crate::op::compute(op, &inputs);
    };
    let out = if crate::profiler::enabled() {
        crate::profiler::timed(op.name(), || program.compute_owned(inputs, true))?
    } else {
        program.compute_owned(inputs, true)?
    };
    Ok(vec![out])
}

/// True when some float input has the output's shape (the broadcast of all inputs), is dead and
/// exclusively owned, and every other input is a broadcast the fused kernel handles.
fn reusable(inputs: &mut [Tensor]) -> bool {
    let mut shape: Vec<usize> = Vec::new();
    for t in inputs.iter() {
        match crate::layout::broadcast_shapes(&shape, t.shape()) {
            Some(s) => shape = s,
            None => return false,
        }
    }
    let handled = inputs
        .iter()
        .all(|t| super::fused::classify(t.shape(), &shape).is_some());
    handled
        && inputs.iter_mut().any(|t| {
            matches!(t.dtype(), crate::DType::F32 | crate::DType::F64)
                && t.shape() == shape.as_slice()
                && t.is_exclusive()
        })
}
