//! Common-subexpression elimination: two op nodes with the same op (same name and attributes,
//! compared through their `Debug` form) reading the same inputs compute the same values, so the
//! later one's readers read the earlier one; equal small constants (up to [`MAX_CONST`] elements,
//! compared bit for bit) are merged likewise. Stateful ops, variable reads and assigns,
//! placeholders and fetched nodes are never merged away.

use std::collections::HashMap;

use super::Work;
use crate::graph::NodeKind;

/// Constants up to this many elements are compared by value.
pub const MAX_CONST: usize = 64;

/// Merges duplicates.
pub(crate) fn run(w: &mut Work) {
    let mut seen: HashMap<(String, Vec<(usize, usize)>), usize> = HashMap::new();
    for n in 0..w.nodes.len() {
        let key = match &w.nodes[n].kind {
            NodeKind::Op(op) if !op.is_stateful() => format!("{}{op:?}", op.name()),
            NodeKind::Const(t) if t.num_elements() <= MAX_CONST => {
                let bits: Vec<u64> = t.to_f64_vec().iter().map(|v| v.to_bits()).collect();
                format!("Const {:?} {:?} {bits:?}", t.dtype(), t.shape())
            }
            _ => continue,
        };
        let key = (key, w.nodes[n].inputs.clone());
        match seen.get(&key) {
            Some(&first) if !w.keep.contains(&n) => {
                for o in 0..w.nodes[n].outputs.len() {
                    w.redirect((n, o), (first, o));
                }
            }
            Some(_) => {}
            None => {
                seen.insert(key, n);
            }
        }
    }
}
