//! Remapping (Grappler's remapper): fusion of
//! 1. `MatMul`/`Conv2D` → `BiasAdd` → optional activation into one [`FusedBiasActivation`]
//!    (`_FusedMatMul`/`_FusedConv2D`), when each intermediate has that single reader and is not
//!    fetched;
//! 2. trees of elementwise unary/binary ops into one [`FusedElementwise`]: starting from the last
//!    op, an input produced by another fusable elementwise op of the same output shape, read only
//!    there and not fetched, becomes a step of the program; the tree's other inputs must be of the
//!    output's shape, scalars or a last-axis vector. Trees of one op stay as they are.
//!
//! Float32/float64 only (the fused kernels' dtypes); stateful ops never take part.

use std::collections::HashMap;
use std::sync::Arc;

use super::fused::{
    classify, fusable_binary, fusable_unary, Arg, ElemFn, FusedBiasActivation, FusedElementwise,
};
use super::Work;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::NodeKind;
use crate::ops::binary::Binary;
use crate::ops::conv::{Conv2D, ConvKind};
use crate::ops::linalg::MatMul;
use crate::ops::nn::BiasAdd;
use crate::ops::unary::Unary;

fn float_out(w: &Work, n: usize) -> bool {
    w.nodes[n].outputs.len() == 1
        && matches!(w.nodes[n].outputs[0].dtype, DType::F32 | DType::F64)
        && w.nodes[n].outputs[0].known_shape().is_some()
}

/// The elementwise function of node `n`, if the fused kernel can evaluate it.
fn elem_fn(w: &Work, n: usize) -> Option<ElemFn> {
    let op = w.op(n)?;
    let any = op.as_any();
    let f = if let Some(Unary(u)) = any.downcast_ref::<Unary>() {
        fusable_unary(*u).then_some(ElemFn::Unary(*u))
    } else if let Some(Binary(b)) = any.downcast_ref::<Binary>() {
        fusable_binary(*b).then_some(ElemFn::Binary(*b))
    } else {
        None
    };
    f.filter(|_| float_out(w, n))
}

/// Runs the fusions (the conv + max-pool rewrite after the bias fusion it builds on).
pub(crate) fn run(w: &mut Work) -> Result<()> {
    fuse_bias_activation(w)?;
    super::conv_pool_rewrite::run(w);
    super::conv_pool_grad_rewrite::run(w);
    fuse_elementwise(w)
}

fn single_reader(w: &Work, uses: &[Vec<usize>], n: usize) -> bool {
    !w.keep.contains(&n) && uses[n].len() == 1 && uses[n][0] == 1
}

fn fuse_bias_activation(w: &mut Work) -> Result<()> {
    let uses = w.consumers();
    // Reader of each node's output 0 (when it has a single one).
    let mut reader: HashMap<usize, usize> = HashMap::new();
    let live = w.live();
    for (i, n) in w.nodes.iter().enumerate() {
        if live[i] {
            for &(j, _) in &n.inputs {
                reader.insert(j, i);
            }
        }
    }
    for (b, &is_live) in live.iter().enumerate() {
        if !is_live || !w.op(b).is_some_and(|o| o.as_any().is::<BiasAdd>()) || !float_out(w, b) {
            continue;
        }
        let m = w.nodes[b].inputs[0];
        let Some(base) = w.op(m.0).cloned() else {
            continue;
        };
        let any = base.as_any();
        let is_base = any.is::<MatMul>()
            || any
                .downcast_ref::<Conv2D>()
                .is_some_and(|c| c.kind == ConvKind::Regular);
        if !is_base || m.1 != 0 || !single_reader(w, &uses, m.0) {
            continue;
        }
        // An activation reading only the BiasAdd.
        let act = reader.get(&b).copied().filter(|&a| {
            single_reader(w, &uses, b)
                && matches!(elem_fn(w, a), Some(ElemFn::Unary(u)) if fusable_unary(u))
                && w.nodes[a].inputs == [(b, 0)]
        });
        let (root, activation) = match act {
            Some(a) => match elem_fn(w, a) {
                Some(ElemFn::Unary(u)) => (a, Some(u)),
                _ => (b, None),
            },
            None => (b, None),
        };
        let Ok(fused) = FusedBiasActivation::new(base.clone(), activation) else {
            continue;
        };
        let inputs = vec![
            w.nodes[m.0].inputs[0],
            w.nodes[m.0].inputs[1],
            w.nodes[b].inputs[1],
        ];
        w.nodes[root].kind = NodeKind::Op(Arc::new(fused));
        w.nodes[root].inputs = inputs;
    }
    Ok(())
}

fn fuse_elementwise(w: &mut Work) -> Result<()> {
    let uses = w.consumers();
    let live = w.live();
    let mut absorbed = vec![false; w.nodes.len()];
    for root in (0..w.nodes.len()).rev() {
        if !live[root] || absorbed[root] {
            continue;
        }
        let Some(_) = elem_fn(w, root) else { continue };
        let out = w.nodes[root].outputs[0].clone();
        let shape = out.known_shape().unwrap_or_default();
        // Collect the tree: nodes absorbed, found depth first from the root.
        let mut members = vec![root];
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            for &(i, o) in &w.nodes[n].inputs.clone() {
                let absorb = o == 0
                    && !absorbed[i]
                    && !members.contains(&i)
                    && single_reader(w, &uses, i)
                    && elem_fn(w, i).is_some()
                    && w.nodes[i].outputs[0] == out
                    && leaves_ok(w, i, &shape);
                if absorb {
                    members.push(i);
                    stack.push(i);
                }
            }
        }
        if members.len() < 2 || !leaves_ok(w, root, &shape) {
            continue;
        }
        members.sort_unstable();
        let mut leaves: Vec<(usize, usize)> = Vec::new();
        let mut steps = Vec::with_capacity(members.len());
        for &n in &members {
            let args = w.nodes[n]
                .inputs
                .iter()
                .map(|&l| match members.iter().position(|&m| m == l.0) {
                    Some(p) if l.1 == 0 => Arg::Step(p),
                    _ => {
                        let k = leaves.iter().position(|&x| x == l).unwrap_or_else(|| {
                            leaves.push(l);
                            leaves.len() - 1
                        });
                        Arg::Input(k)
                    }
                })
                .collect();
            let Some(f) = elem_fn(w, n) else { continue };
            steps.push((f, args));
        }
        let fused = FusedElementwise::new(leaves.len(), steps)?;
        for &n in &members {
            absorbed[n] = true;
        }
        w.nodes[root].kind = NodeKind::Op(Arc::new(fused));
        w.nodes[root].inputs = leaves;
    }
    Ok(())
}

/// True when every input of node `n` that is not itself fused reads in a way the fused kernel
/// handles (the output's shape, a scalar, a last-axis vector). Inputs that are absorbed have the
/// output's shape, so checking all inputs is enough.
fn leaves_ok(w: &Work, n: usize, shape: &[usize]) -> bool {
    w.nodes[n].inputs.iter().all(|&(i, o)| {
        let s = &w.nodes[i].outputs[o];
        s.dtype == w.nodes[n].outputs[0].dtype
            && s.known_shape()
                .is_some_and(|x| classify(&x, shape).is_some())
    })
}
