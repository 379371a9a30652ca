//! Algebraic simplification (Grappler's arithmetic optimizer and the simplifications of its
//! constant folder), on fully shaped graphs:
//! - `x * 1`, `1 * x`, `x / 1`, `x + 0`, `0 + x`, `x - 0` → `x` when the constant is all ones
//!   (zeros) and the result has `x`'s dtype and shape (so nothing was broadcast). As in
//!   Grappler, `x + 0 → x` keeps `-0.0` where IEEE would give `+0.0`.
//! - `transpose(transpose(x, p), q)` → `transpose(x, p∘q)`, or `x` when that is the identity; a
//!   transpose by the identity permutation → `x`.
//! - `reshape(reshape(x))` → one reshape of `x`; a reshape to the input's own shape → `x`.
//! - `Greater(z, 0)` when `Relu(z)` also exists → `Greater(Relu(z), 0)` (equal: `relu(z) > 0`
//!   exactly when `z > 0`, NaN included). A ReLU's gradient mask then no longer keeps `z` alive,
//!   which lets the remapper fuse `z`'s BiasAdd with the ReLU in training graphs.
//!
//! A fetched node that simplifies to `x` becomes `Identity(x)` (it must survive); any other
//! node's readers read `x` directly.

use std::collections::HashMap;
use std::sync::Arc;

use super::Work;
use crate::graph::NodeKind;
use crate::ops::array::{Identity, Reshape, Transpose};
use crate::ops::binary::{Binary, BinaryOp};
use crate::ops::compare::{Compare, CompareOp};
use crate::ops::unary::{Unary, UnaryOp};

/// True when `l` is a constant whose every element equals `v`.
fn all_equal(w: &Work, l: (usize, usize), v: f64) -> bool {
    w.constant(l)
        .is_some_and(|t| t.num_elements() > 0 && t.to_f64_vec().iter().all(|&x| x == v))
}

/// Node `n` computes the same values as `x`.
fn forward(w: &mut Work, n: usize, x: (usize, usize)) {
    if w.keep.contains(&n) {
        w.nodes[n].kind = NodeKind::Op(Arc::new(Identity));
        w.nodes[n].inputs = vec![x];
    } else {
        w.redirect((n, 0), x);
    }
}

/// Applies the rules once over the graph, in topological order.
pub(crate) fn run(w: &mut Work) {
    // Relu(z) nodes by z.
    let mut relu_of: HashMap<(usize, usize), usize> = HashMap::new();
    for n in 0..w.nodes.len() {
        let Some(op) = w.op(n).cloned() else { continue };
        let any = op.as_any();
        let inputs = w.nodes[n].inputs.clone();
        let out = w.nodes[n].outputs[0].clone();
        let same_as = |w: &Work, x: (usize, usize)| w.nodes[x.0].outputs.get(x.1) == Some(&out);
        if let Some(Binary(b)) = any.downcast_ref::<Binary>() {
            let (a, c) = (inputs[0], inputs[1]);
            let x = match b {
                BinaryOp::Mul if all_equal(w, c, 1.0) => Some(a),
                BinaryOp::Mul if all_equal(w, a, 1.0) => Some(c),
                BinaryOp::Div if all_equal(w, c, 1.0) => Some(a),
                BinaryOp::Add if all_equal(w, c, 0.0) => Some(a),
                BinaryOp::Add if all_equal(w, a, 0.0) => Some(c),
                BinaryOp::Sub if all_equal(w, c, 0.0) => Some(a),
                _ => None,
            };
            if let Some(x) = x.filter(|&x| same_as(w, x)) {
                forward(w, n, x);
            }
        } else if let Some(t) = any.downcast_ref::<Transpose>() {
            let x = inputs[0];
            let identity = |p: &[usize]| p.iter().enumerate().all(|(i, &v)| i == v);
            if identity(&t.perm) {
                forward(w, n, x);
                continue;
            }
            let inner = w
                .op(x.0)
                .and_then(|o| o.as_any().downcast_ref::<Transpose>().cloned());
            if let Some(inner) = inner {
                let composed: Vec<usize> = t.perm.iter().map(|&i| inner.perm[i]).collect();
                let src = w.nodes[x.0].inputs[0];
                if identity(&composed) {
                    forward(w, n, src);
                } else {
                    w.nodes[n].kind = NodeKind::Op(Arc::new(Transpose { perm: composed }));
                    w.nodes[n].inputs = vec![src];
                }
            }
        } else if any.is::<Reshape>() {
            let x = inputs[0];
            if same_as(w, x) {
                forward(w, n, x);
                continue;
            }
            if w.op(x.0).is_some_and(|o| o.as_any().is::<Reshape>()) {
                let src = w.nodes[x.0].inputs[0];
                if w.nodes[src.0].outputs.get(src.1) == Some(&out.clone()) {
                    forward(w, n, src);
                } else {
                    w.nodes[n].inputs = vec![src];
                }
            }
        } else if let Some(Unary(UnaryOp::Relu)) = any.downcast_ref::<Unary>() {
            relu_of.entry(inputs[0]).or_insert(n);
        } else if let Some(Compare(CompareOp::Greater)) = any.downcast_ref::<Compare>() {
            if let Some(&r) = relu_of.get(&inputs[0]) {
                if all_equal(w, inputs[1], 0.0) && r < n {
                    w.nodes[n].inputs[0] = (r, 0);
                }
            }
        }
    }
}
