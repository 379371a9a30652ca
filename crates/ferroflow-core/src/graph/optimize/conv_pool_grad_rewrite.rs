//! The remapper's second conv + max-pool rewrite, on training graphs (run right after
//! [`conv_pool_rewrite`](super::conv_pool_rewrite)): the full-size output gradient
//! `dz = _MaxPoolReluGrad(P, A, dP)` read only by `BiasAddGrad(dz)`,
//! `Conv2DBackpropFilter(x, dz)` and at most one `Conv2DBackpropInput(w, dz)` of the same
//! convolution (`(P, A) = _FusedConv2DMaxPool(x, w, b)`) → one
//! [`FusedConv2DMaxPoolGrad`] node `(dw, db[, dx])` in `dz`'s place, reading
//! `(x, w, P, A, dP)`: `dz` is then expanded tile by tile inside the gradient kernels and never
//! written in full. The readers of the three gradients read the fused node's outputs; the old
//! nodes are dead.
//!
//! None of the nodes may be fetched; float32/float64 with fully known shapes only. The values are
//! bit-identical to the unfused chain (see [`conv_pool_grad`](crate::kernels::conv_pool_grad)).
//! `FF_CONV_POOL=0` turns this rewrite off with the first; `FF_CONV_POOL_GRAD=0` this one alone
//! (both read once; for A/B measurements).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::conv_pool::{FusedConv2DMaxPool, MaxPoolReluGrad};
use super::Work;
use crate::dtype::DType;
use crate::graph::NodeKind;
use crate::ops::conv::{Conv2DBackpropFilter, Conv2DBackpropInput, ConvKind};
use crate::ops::conv_pool_grad::FusedConv2DMaxPoolGrad;
use crate::ops::nn::BiasAddGrad;

/// Whether the rewrite is on (`FF_CONV_POOL` or `FF_CONV_POOL_GRAD` set to `0`/`off` turn it off).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    super::conv_pool_rewrite::enabled() && crate::kernels::env_switch::on(&ON, "FF_CONV_POOL_GRAD")
}

/// The consumers of one `dz` that the fused node replaces.
#[derive(Default)]
struct Readers {
    bias: Option<usize>,
    filter: Option<usize>,
    input: Option<usize>,
}

/// Runs the rewrite over the graph.
pub(crate) fn run(w: &mut Work) {
    if !enabled() {
        return;
    }
    let live = w.live();
    // Live readers of every output: (reader, input slot).
    let mut readers: HashMap<(usize, usize), Vec<(usize, usize)>> = HashMap::new();
    for (i, n) in w.nodes.iter().enumerate() {
        if live[i] {
            for (s, &l) in n.inputs.iter().enumerate() {
                readers.entry(l).or_default().push((i, s));
            }
        }
    }
    for (g, &is_live) in live.iter().enumerate() {
        if !is_live || w.keep.contains(&g) {
            continue;
        }
        let Some(grad) = w
            .op(g)
            .and_then(|o| o.as_any().downcast_ref::<MaxPoolReluGrad>())
            .cloned()
        else {
            continue;
        };
        let [(p, 0), (p1, 1), dp] = w.nodes[g].inputs[..] else {
            continue;
        };
        if p != p1 {
            continue;
        }
        let Some(fwd) = w
            .op(p)
            .and_then(|o| o.as_any().downcast_ref::<FusedConv2DMaxPool>())
            .cloned()
        else {
            continue;
        };
        if fwd.relu != grad.relu || fwd.window != grad.window || w.nodes[p].inputs.len() != 3 {
            continue;
        }
        let (x, filter) = (w.nodes[p].inputs[0], w.nodes[p].inputs[1]);
        let Some(found) = match_readers(w, &readers, g, &fwd, x, filter) else {
            continue;
        };
        let (Some(fb), Some(bb)) = (found.filter, found.bias) else {
            continue;
        };
        let mut outputs = vec![
            w.nodes[fb].outputs[0].clone(),
            w.nodes[bb].outputs[0].clone(),
        ];
        if let Some(ib) = found.input {
            outputs.push(w.nodes[ib].outputs[0].clone());
        }
        if !outputs
            .iter()
            .all(|s| matches!(s.dtype, DType::F32 | DType::F64) && s.known_shape().is_some())
        {
            continue;
        }
        let op = FusedConv2DMaxPoolGrad::new(fwd.conv, fwd.window, fwd.relu, found.input.is_some());
        w.nodes[g].kind = NodeKind::Op(Arc::new(op));
        w.nodes[g].inputs = vec![x, filter, (p, 0), (p, 1), dp];
        w.nodes[g].outputs = outputs;
        // The old gradient nodes come after `g` (they read it): their readers read `g` now.
        w.redirect((fb, 0), (g, 0));
        w.redirect((bb, 0), (g, 1));
        if let Some(ib) = found.input {
            w.redirect((ib, 0), (g, 2));
        }
        // The old gradient nodes are dead now (no reader, not fetched): pruning drops them.
    }
}

/// The readers of `dz = (g, 0)`, if every one of them is a gradient of the convolution of `fwd`
/// (`x`, `filter` its inputs) that the fused node computes, none fetched, each at most once.
fn match_readers(
    w: &Work,
    readers: &HashMap<(usize, usize), Vec<(usize, usize)>>,
    g: usize,
    fwd: &FusedConv2DMaxPool,
    x: (usize, usize),
    filter: (usize, usize),
) -> Option<Readers> {
    let rs = readers.get(&(g, 0))?;
    // A fetch of dz itself would show in `keep` (checked by the caller); every slot reading dz
    // must be one of the three below.
    let mut found = Readers::default();
    for &(n, s) in rs {
        if w.keep.contains(&n) || w.nodes[n].outputs.len() != 1 {
            return None;
        }
        let any = w.op(n)?.as_any();
        let slot = if any.is::<BiasAddGrad>() && s == 0 && w.nodes[n].inputs.len() == 1 {
            &mut found.bias
        } else if let Some(f) = any.downcast_ref::<Conv2DBackpropFilter>() {
            if f.kind != ConvKind::Regular
                || f.attrs != fwd.conv
                || s != 1
                || w.nodes[n].inputs != [x, (g, 0)]
            {
                return None;
            }
            &mut found.filter
        } else if let Some(i) = any.downcast_ref::<Conv2DBackpropInput>() {
            if i.kind != ConvKind::Regular
                || i.attrs != fwd.conv
                || s != 1
                || w.nodes[n].inputs != [filter, (g, 0)]
            {
                return None;
            }
            &mut found.input
        } else {
            return None;
        };
        if slot.replace(n).is_some() {
            return None;
        }
    }
    Some(found)
}
