//! The remapper's conv + max-pool rewrite (run after the bias/activation fusion, so convolutions
//! are already `_FusedConv2D` with no activation or ReLU):
//!
//! * inference: `C = _FusedConv2D(x, w, b)` read only by `P = MaxPool(C)` with disjoint `valid`
//!   windows (`strides == ksize`) → `P = _FusedConv2DMaxPool(x, w, b)` without its argmax output
//!   (nothing reads it) in `P`'s node;
//! * training: `C` read only by that `MaxPool`, by `G1 = MaxPoolGrad(C, dP)` and (with ReLU) by
//!   `G2 = ReluGrad(G1, C)`, `G1` read only by `G2` → `(P, A) = _FusedConv2DMaxPool(x, w, b)`
//!   (output 1 the argmax) in `P`'s node, and
//!   `G2 = _MaxPoolReluGrad(P, A, dP)` in `G2`'s node (in `G1`'s without ReLU). `C` and `G1`
//!   are then dead.
//!
//! `C` and `G1` must not be fetched; float32/float64 with fully known shapes only. The values are
//! bit-identical (see [`conv_pool`](super::conv_pool)). The environment variable
//! `FF_CONV_POOL=0` turns the rewrite off (read once; for A/B measurements).

use std::sync::{Arc, OnceLock};

use super::conv_pool::{FusedConv2DMaxPool, MaxPoolReluGrad};
use super::fused::FusedBiasActivation;
use super::Work;
use crate::dtype::DType;
use crate::graph::NodeKind;
use crate::kernels::padding::Padding;
use crate::op::TensorSpec;
use crate::ops::conv::{Conv2D, ConvKind};
use crate::ops::nn::ReluGrad;
use crate::ops::pool::{MaxPool, MaxPoolGrad, PoolAttrs};
use crate::ops::unary::UnaryOp;

/// Whether the rewrite is on (`FF_CONV_POOL=0` or `off` turns it off).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    crate::kernels::env_switch::on(&ON, "FF_CONV_POOL")
}

fn known_float(s: &TensorSpec) -> bool {
    matches!(s.dtype, DType::F32 | DType::F64) && s.known_shape().is_some()
}

/// The disjoint-window attributes of a `MaxPool`/`MaxPoolGrad`, if it has them.
fn disjoint(a: &PoolAttrs) -> bool {
    a.ksize == a.strides
        && a.padding == Padding::Valid
        && a.ksize[0] >= 1
        && a.ksize[1] >= 1
        && a.ksize[0] * a.ksize[1] <= crate::kernels::conv_pool::MAX_WINDOW
}

/// Runs the rewrite over the graph.
pub(crate) fn run(w: &mut Work) {
    if !enabled() {
        return;
    }
    let uses = w.consumers();
    let live = w.live();
    // Live readers of each node's output 0: (reader, input slot).
    let mut readers: Vec<Vec<(usize, usize)>> = vec![Vec::new(); w.nodes.len()];
    for (i, n) in w.nodes.iter().enumerate() {
        if live[i] {
            for (s, &(j, o)) in n.inputs.iter().enumerate() {
                if o == 0 {
                    readers[j].push((i, s));
                }
            }
        }
    }
    for c in 0..w.nodes.len() {
        if !live[c] || w.keep.contains(&c) {
            continue;
        }
        let Some(op) = w.op(c) else { continue };
        let Some(f) = op.as_any().downcast_ref::<FusedBiasActivation>() else {
            continue;
        };
        let relu = match f.activation {
            None => false,
            Some(UnaryOp::Relu) => true,
            Some(_) => continue,
        };
        let Some(conv) = f
            .base
            .as_any()
            .downcast_ref::<Conv2D>()
            .filter(|cv| cv.kind == ConvKind::Regular)
        else {
            continue;
        };
        let conv_attrs = conv.attrs;
        if w.nodes[c].inputs.len() != 3
            || w.nodes[c].outputs.len() != 1
            || !known_float(&w.nodes[c].outputs[0])
        {
            continue;
        }
        // Every use of C must be one of the live readers below (no fetch of C).
        let rs = &readers[c];
        if uses[c][0] != rs.len() {
            continue;
        }
        let kind_of = |n: usize| w.op(n).map(|o| o.as_any());
        let pools: Vec<usize> = rs
            .iter()
            .filter(|&&(n, s)| s == 0 && kind_of(n).is_some_and(|a| a.is::<MaxPool>()))
            .map(|&(n, _)| n)
            .collect();
        let [p] = pools[..] else { continue };
        let Some(attrs) = kind_of(p)
            .and_then(|a| a.downcast_ref::<MaxPool>())
            .map(|m| m.attrs)
        else {
            continue;
        };
        if !disjoint(&attrs)
            || w.nodes[p].outputs.len() != 1
            || !known_float(&w.nodes[p].outputs[0])
        {
            continue;
        }
        // The training part: G1 = MaxPoolGrad(C, dP) and G2 = ReluGrad(G1, C).
        let mut grad: Option<(usize, usize, (usize, usize))> = None; // (node replaced, dead G1, dP)
        if rs.len() > 1 {
            let others: Vec<(usize, usize)> = rs.iter().copied().filter(|&(n, _)| n != p).collect();
            let g1s: Vec<usize> = others
                .iter()
                .filter(|&&(n, s)| {
                    s == 0
                        && kind_of(n)
                            .and_then(|a| a.downcast_ref::<MaxPoolGrad>())
                            .is_some_and(|m| m.attrs == attrs)
                })
                .map(|&(n, _)| n)
                .collect();
            let [g1] = g1s[..] else { continue };
            if w.keep.contains(&g1) || w.nodes[g1].inputs.len() != 2 {
                continue;
            }
            let dp = w.nodes[g1].inputs[1];
            let target = if relu {
                // Exactly one more reader of C: ReluGrad(G1, C), the only reader of G1.
                let [(g2, 1)] = others
                    .iter()
                    .copied()
                    .filter(|&(n, _)| n != g1)
                    .collect::<Vec<_>>()[..]
                else {
                    continue;
                };
                let ok = kind_of(g2).is_some_and(|a| a.is::<ReluGrad>())
                    && w.nodes[g2].inputs == [(g1, 0), (c, 0)]
                    && uses[g1][0] == 1
                    && others.len() == 2;
                if !ok {
                    continue;
                }
                g2
            } else {
                if others.len() != 1 {
                    continue;
                }
                g1
            };
            // The new node reads P (node p) and dP: both must come before it.
            if p >= target || dp.0 >= target || !known_float(&w.nodes[target].outputs[0]) {
                continue;
            }
            grad = Some((target, g1, dp));
        }
        let Ok(fused) = FusedConv2DMaxPool::new(conv_attrs, relu, attrs.ksize) else {
            continue;
        };
        let inputs = w.nodes[c].inputs.clone();
        if inputs.iter().any(|&(i, _)| i >= p) {
            continue;
        }
        let pooled = w.nodes[p].outputs[0].clone();
        if grad.is_some() {
            let argmax = TensorSpec {
                dtype: DType::U8,
                shape: pooled.shape.clone(),
            };
            w.nodes[p].kind = NodeKind::Op(Arc::new(fused));
            w.nodes[p].outputs = vec![pooled, argmax];
        } else {
            // Inference: nothing reads the argmax (the MaxPool had one output), so it is not
            // computed.
            w.nodes[p].kind = NodeKind::Op(Arc::new(fused.without_argmax()));
            w.nodes[p].outputs = vec![pooled];
        }
        w.nodes[p].inputs = inputs;
        if let Some((target, _g1, dp)) = grad {
            let conv_hw = w.nodes[c].outputs[0]
                .known_shape()
                .map_or([0, 0], |s| [s[1], s[2]]);
            w.nodes[target].kind = NodeKind::Op(Arc::new(MaxPoolReluGrad {
                conv_hw,
                window: attrs.ksize,
                relu,
            }));
            w.nodes[target].inputs = vec![(p, 0), (p, 1), dp];
        }
    }
}
