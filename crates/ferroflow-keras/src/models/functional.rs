//! The functional API's model: a graph of layer calls from `Input`s to outputs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ferroflow_core::{Error, Result, Tensor};

use crate::layers::{KerasTensor, LayerHandle, Node};

/// The graph of a functional model: its inputs, outputs, and every layer call between them in
/// an order where each call comes after the calls it depends on.
pub struct FunctionalNet {
    pub(crate) inputs: Vec<KerasTensor>,
    pub(crate) outputs: Vec<KerasTensor>,
    /// Non-input nodes in topological order.
    pub(crate) nodes: Vec<Arc<Node>>,
}

impl FunctionalNet {
    pub(crate) fn new(
        inputs: Vec<KerasTensor>,
        outputs: Vec<KerasTensor>,
    ) -> Result<FunctionalNet> {
        if inputs.is_empty() || outputs.is_empty() {
            return Err(Error::invalid(
                "Model",
                "a functional model needs at least one input and one output",
            ));
        }
        for i in &inputs {
            if !i.node.is_input() {
                return Err(Error::invalid(
                    "Model",
                    format!(
                        "model inputs must be Input tensors; {:?} comes from layer {:?}",
                        i,
                        i.layer_name()
                    ),
                ));
            }
        }
        let input_ids: HashSet<usize> = inputs.iter().map(|t| t.node.id).collect();
        let mut order = Vec::new();
        let mut done = HashSet::new();
        let mut visiting = HashSet::new();
        for o in &outputs {
            visit(&o.node, &input_ids, &mut done, &mut visiting, &mut order)?;
        }
        let net = FunctionalNet {
            inputs,
            outputs,
            nodes: order,
        };
        // Keras: "All operation names should be unique."
        let names: Vec<String> = net.layers().iter().map(LayerHandle::name).collect();
        for (i, n) in names.iter().enumerate() {
            let count = names.iter().filter(|m| *m == n).count();
            if count > 1 && names[..i].iter().all(|m| m != n) {
                return Err(Error::invalid(
                    "Model",
                    format!(
                        "the name {n:?} is used {count} times in the model; all layer names should be unique"
                    ),
                ));
            }
        }
        Ok(net)
    }

    /// Input layers first, then every other layer once, in call order.
    pub(crate) fn layers(&self) -> Vec<LayerHandle> {
        let mut out: Vec<LayerHandle> = self.inputs.iter().map(|t| t.node.layer.clone()).collect();
        for n in &self.nodes {
            if !out.iter().any(|l| l.same(&n.layer)) {
                out.push(n.layer.clone());
            }
        }
        out
    }

    pub(crate) fn call(
        &self,
        model: &str,
        inputs: &[Tensor],
        training: bool,
    ) -> Result<Vec<Tensor>> {
        Ok(self.call_masked(model, inputs, training)?.0)
    }

    /// The forward pass and each output's mask (Keras's mask propagation).
    pub(crate) fn call_masked(
        &self,
        model: &str,
        inputs: &[Tensor],
        training: bool,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::invalid(
                model,
                format!(
                    "model {model:?} expects {} input(s), but it received {}",
                    self.inputs.len(),
                    inputs.len()
                ),
            ));
        }
        let mut values: HashMap<(usize, usize), Tensor> = HashMap::new();
        let mut masks: HashMap<(usize, usize), Tensor> = HashMap::new();
        for (t, x) in self.inputs.iter().zip(inputs) {
            values.insert((t.node.id, 0), x.clone());
        }
        for n in &self.nodes {
            let args: Vec<Tensor> = n
                .inputs
                .iter()
                .map(|t| {
                    values.get(&(t.node.id, t.index)).cloned().ok_or_else(|| {
                        Error::invalid(model, "internal: a layer's input was not computed")
                    })
                })
                .collect::<Result<_>>()?;
            // Keras's mask propagation: a layer gets its inputs' masks; its first output's mask
            // is kept for the layers after it.
            let in_masks: Vec<Option<Tensor>> = n
                .inputs
                .iter()
                .map(|t| masks.get(&(t.node.id, t.index)).cloned())
                .collect();
            let (outs, mask) = n.layer.call_masked(&args, &in_masks, training)?;
            if let Some(m) = mask {
                masks.insert((n.id, 0), m);
            }
            for (i, o) in outs.into_iter().enumerate() {
                values.insert((n.id, i), o);
            }
        }
        let outs =
            self.outputs
                .iter()
                .map(|t| {
                    values.get(&(t.node.id, t.index)).cloned().ok_or_else(|| {
                        Error::invalid(model, "internal: an output was not computed")
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        let out_masks = self
            .outputs
            .iter()
            .map(|t| masks.get(&(t.node.id, t.index)).cloned())
            .collect();
        Ok((outs, out_masks))
    }
}

/// Depth-first post-order from an output back to the inputs.
fn visit(
    node: &Arc<Node>,
    input_ids: &HashSet<usize>,
    done: &mut HashSet<usize>,
    visiting: &mut HashSet<usize>,
    order: &mut Vec<Arc<Node>>,
) -> Result<()> {
    if done.contains(&node.id) {
        return Ok(());
    }
    if node.is_input() {
        if !input_ids.contains(&node.id) {
            return Err(Error::invalid(
                "Model",
                format!(
                    "graph disconnected: the outputs need input {:?}, which is not among the model's inputs",
                    node.layer.name()
                ),
            ));
        }
        done.insert(node.id);
        return Ok(());
    }
    if !visiting.insert(node.id) {
        return Err(Error::invalid("Model", "the layer graph has a cycle"));
    }
    for t in &node.inputs {
        visit(&t.node, input_ids, done, visiting, order)?;
    }
    visiting.remove(&node.id);
    done.insert(node.id);
    order.push(node.clone());
    Ok(())
}
