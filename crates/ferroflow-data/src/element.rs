//! What a dataset yields: a tensor, or a tuple or dict of them (TF's nested structures).

use std::collections::BTreeMap;

use ferroflow_core::{Error, Result, Tensor};

/// One element of a dataset: a tensor, a tuple `(x, y)`, or a dict `{"image": .., "label": ..}`,
/// nested as deeply as needed.
#[derive(Clone, Debug)]
pub enum Element {
    /// A single tensor.
    Tensor(Tensor),
    /// A tuple of elements.
    Tuple(Vec<Element>),
    /// Named elements, in key order.
    Dict(BTreeMap<String, Element>),
}

impl Element {
    /// The tensor of a `Tensor` element, or an error naming what it is instead.
    pub fn tensor(&self) -> Result<&Tensor> {
        match self {
            Element::Tensor(t) => Ok(t),
            other => Err(Error::invalid(
                "Element",
                format!("expected a tensor, got {}", other.kind()),
            )),
        }
    }

    /// The parts of a `Tuple` element.
    pub fn tuple(&self) -> Result<&[Element]> {
        match self {
            Element::Tuple(v) => Ok(v),
            other => Err(Error::invalid(
                "Element",
                format!("expected a tuple, got {}", other.kind()),
            )),
        }
    }

    /// The entries of a `Dict` element.
    pub fn dict(&self) -> Result<&BTreeMap<String, Element>> {
        match self {
            Element::Dict(d) => Ok(d),
            other => Err(Error::invalid(
                "Element",
                format!("expected a dict, got {}", other.kind()),
            )),
        }
    }

    /// `"tensor"`, `"tuple"` or `"dict"`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Element::Tensor(_) => "tensor",
            Element::Tuple(_) => "tuple",
            Element::Dict(_) => "dict",
        }
    }

    /// Every tensor in the element, depth first (dict entries in key order).
    pub fn flatten(&self) -> Vec<Tensor> {
        match self {
            Element::Tensor(t) => vec![t.clone()],
            Element::Tuple(v) => v.iter().flat_map(Element::flatten).collect(),
            Element::Dict(d) => d.values().flat_map(Element::flatten).collect(),
        }
    }
}

impl From<Tensor> for Element {
    fn from(t: Tensor) -> Self {
        Element::Tensor(t)
    }
}

impl From<(Tensor, Tensor)> for Element {
    fn from((a, b): (Tensor, Tensor)) -> Self {
        Element::Tuple(vec![Element::Tensor(a), Element::Tensor(b)])
    }
}
