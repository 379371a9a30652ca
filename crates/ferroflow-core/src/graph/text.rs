//! Seeing a graph: a readable text dump and Graphviz DOT.

use super::{fmt_dims, Graph, NodeKind};

fn kind_name(kind: &NodeKind) -> String {
    match kind {
        NodeKind::Placeholder => "Placeholder".into(),
        NodeKind::Const(_) => "Const".into(),
        NodeKind::Op(op) => op.name().into(),
        NodeKind::ReadVariable(v) => format!("ReadVariable[{}]", v.name()),
        NodeKind::Assign(v, k) => format!("{k:?}[{}]", v.name()).replace("Set[", "Assign["),
        NodeKind::Group => "NoOp".into(),
        NodeKind::Gradients { .. } => "Gradients".into(),
    }
}

impl Graph {
    /// One line per node: `name = Op(inputs) -> dtype shape`, in topological order.
    ///
    /// ```text
    /// x = Placeholder() -> float32 (None, 2)
    /// MatMul = MatMul(x:0, weights/read:0) -> float32 (None, 1)
    /// ```
    pub fn dump(&self) -> String {
        let g = self.lock();
        let mut out = String::new();
        for n in &g.nodes {
            let inputs: Vec<String> = n
                .inputs
                .iter()
                .map(|&(i, o)| format!("{}:{o}", g.nodes[i].name))
                .collect();
            let outs: Vec<String> = n
                .outputs
                .iter()
                .map(|s| format!("{} {}", s.dtype.name(), fmt_dims(&s.shape)))
                .collect();
            out.push_str(&format!(
                "{} = {}({}) -> {}\n",
                n.name,
                kind_name(&n.kind),
                inputs.join(", "),
                outs.join(", ")
            ));
        }
        out
    }

    /// The graph in Graphviz DOT: one box per node (name, op, output shapes), one edge per input.
    pub fn to_dot(&self) -> String {
        let g = self.lock();
        let mut out = String::from("digraph G {\n  node [shape=box, fontname=\"Helvetica\"];\n");
        for (i, n) in g.nodes.iter().enumerate() {
            let shapes: Vec<String> = n
                .outputs
                .iter()
                .map(|s| format!("{} {}", s.dtype.name(), fmt_dims(&s.shape)))
                .collect();
            let label = format!(
                "{}\\n{}\\n{}",
                n.name,
                kind_name(&n.kind),
                shapes.join(", ")
            );
            out.push_str(&format!(
                "  n{i} [label=\"{}\"];\n",
                label.replace('"', "\\\"")
            ));
        }
        for (i, n) in g.nodes.iter().enumerate() {
            for &(j, o) in &n.inputs {
                out.push_str(&format!("  n{j} -> n{i} [label=\"{o}\"];\n"));
            }
        }
        out.push_str("}\n");
        out
    }
}
