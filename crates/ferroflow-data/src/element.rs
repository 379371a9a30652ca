//! What a dataset yields: a tensor, or a tuple or dict of them (TF's nested structures).

use std::collections::BTreeMap;

use ferroflow_core::error::fmt_shape;
use ferroflow_core::{ops, Error, Result, Tensor};

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

impl Element {
    /// A new element of the same structure with `f` applied to every tensor, depth first (dict
    /// entries in key order).
    pub fn map_tensors(&self, f: &mut impl FnMut(&Tensor) -> Result<Tensor>) -> Result<Element> {
        Ok(match self {
            Element::Tensor(t) => Element::Tensor(f(t)?),
            Element::Tuple(v) => {
                Element::Tuple(v.iter().map(|x| x.map_tensors(f)).collect::<Result<_>>()?)
            }
            Element::Dict(d) => Element::Dict(
                d.iter()
                    .map(|(k, x)| Ok((k.clone(), x.map_tensors(f)?)))
                    .collect::<Result<_>>()?,
            ),
        })
    }

    /// `keras.utils.unpack_x_y_sample_weight`: how `fit` reads a dataset element. A tuple of
    /// 1, 2 or 3 parts is `(x,)`, `(x, y)` or `(x, y, sample_weight)`; anything else that is
    /// not a tuple is `x` alone. A tuple of another length is an error, as in Keras.
    ///
    /// ```
    /// use ferroflow_core::Tensor;
    /// use ferroflow_data::Element;
    /// let e = Element::from((Tensor::scalar(1.0f32), Tensor::scalar(0i64)));
    /// let (x, y, sw) = e.unpack_x_y_sample_weight()?;
    /// assert_eq!(x.tensor()?.item::<f32>()?, 1.0);
    /// assert!(y.is_some() && sw.is_none());
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn unpack_x_y_sample_weight(&self) -> Result<(Element, Option<Element>, Option<Element>)> {
        match self {
            Element::Tuple(v) => match v.as_slice() {
                [x] => Ok((x.clone(), None, None)),
                [x, y] => Ok((x.clone(), Some(y.clone()), None)),
                [x, y, sw] => Ok((x.clone(), Some(y.clone()), Some(sw.clone()))),
                _ => Err(Error::invalid(
                    "unpack_x_y_sample_weight",
                    format!(
                        "data is expected to be in format `x`, `(x,)`, `(x, y)`, or \
                         `(x, y, sample_weight)`, found a tuple of {} parts",
                        v.len()
                    ),
                )),
            },
            other => Ok((other.clone(), None, None)),
        }
    }

    /// Combines same-structured elements leaf by leaf: `f(leaf_index, path, tensors)` gets the
    /// `i`-th tensor of every element (leaves numbered depth first, as [`Element::flatten`]) and
    /// returns the combined tensor. Elements whose structures differ are an error naming `op`,
    /// the element's index in `elems` and the component.
    pub fn combine(
        op: &str,
        elems: &[Element],
        f: &mut impl FnMut(usize, &str, &[&Tensor]) -> Result<Tensor>,
    ) -> Result<Element> {
        if elems.is_empty() {
            return Err(Error::invalid(op, "needs at least one element to combine"));
        }
        let refs: Vec<&Element> = elems.iter().collect();
        let mut leaf = 0;
        combine_rec(op, &refs, &mut String::new(), &mut leaf, f)
    }

    /// `tf.stack` of same-structured elements, leaf by leaf (what `batch` does). A tensor whose
    /// shape or dtype differs from element 0's is an error naming `op`, the element's index,
    /// the component and both shapes.
    pub fn stack(op: &str, elems: &[Element]) -> Result<Element> {
        Element::combine(op, elems, &mut |_, path, ts| {
            check_same(op, path, ts)?;
            ops::stack(ts, 0)
        })
    }

    /// The inverse of [`Element::stack`]: splits every tensor along axis 0 (what `unbatch`
    /// does). All tensors must have rank >= 1 and the same first dimension.
    pub fn unstack(&self, op: &str) -> Result<Vec<Element>> {
        let tensors = self.flatten();
        let n = match tensors.first() {
            Some(t) if t.rank() > 0 => t.shape()[0],
            Some(t) => {
                return Err(Error::shape(
                    op,
                    "needs tensors of rank >= 1 to split along their first dimension",
                    &[t.shape()],
                ))
            }
            None => return Ok(Vec::new()),
        };
        if let Some(bad) = tensors.iter().find(|t| t.rank() == 0 || t.shape()[0] != n) {
            return Err(Error::shape(
                op,
                "all tensors of an element must have the same first dimension",
                &[tensors[0].shape(), bad.shape()],
            ));
        }
        let mut parts: Vec<std::vec::IntoIter<Tensor>> = tensors
            .iter()
            .map(|t| ops::unstack(t, 0).map(Vec::into_iter))
            .collect::<Result<_>>()?;
        (0..n)
            .map(|_| {
                let mut k = 0;
                self.map_tensors(&mut |_| {
                    let t = parts[k].next().ok_or_else(|| {
                        Error::invalid(op, "internal: ran out of rows while unstacking")
                    })?;
                    k += 1;
                    Ok(t)
                })
            })
            .collect()
    }
}

/// Checks that every tensor of `ts` has `ts[0]`'s dtype and shape.
pub(crate) fn check_same(op: &str, path: &str, ts: &[&Tensor]) -> Result<()> {
    let first = ts[0];
    for (i, t) in ts.iter().enumerate().skip(1) {
        if t.dtype() != first.dtype() {
            return Err(Error::dtype(
                op,
                format!(
                    "element {i}{} has dtype {} but element 0 has dtype {}",
                    component(path),
                    t.dtype(),
                    first.dtype()
                ),
                &[first.dtype(), t.dtype()],
            ));
        }
        if t.shape() != first.shape() {
            return Err(Error::shape(
                op,
                format!(
                    "element {i}{} has shape {} but element 0 has shape {}; \
                     use padded_batch for elements of different shapes",
                    component(path),
                    fmt_shape(t.shape()),
                    fmt_shape(first.shape())
                ),
                &[first.shape(), t.shape()],
            ));
        }
    }
    Ok(())
}

/// `" (component [1]['label'])"`, or nothing for a plain tensor element.
pub(crate) fn component(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" (component {path})")
    }
}

fn combine_rec(
    op: &str,
    elems: &[&Element],
    path: &mut String,
    leaf: &mut usize,
    f: &mut impl FnMut(usize, &str, &[&Tensor]) -> Result<Tensor>,
) -> Result<Element> {
    let first = elems[0];
    let mismatch = |i: usize, e: &Element, path: &str| {
        Error::invalid(
            op,
            format!(
                "element {i}{} is a {} of a different structure than element 0 ({} {})",
                component(path),
                e.kind(),
                first.kind(),
                describe(first)
            ),
        )
    };
    match first {
        Element::Tensor(_) => {
            let mut ts = Vec::with_capacity(elems.len());
            for (i, e) in elems.iter().enumerate() {
                match e {
                    Element::Tensor(t) => ts.push(t),
                    other => return Err(mismatch(i, other, path)),
                }
            }
            let out = f(*leaf, path, &ts)?;
            *leaf += 1;
            Ok(Element::Tensor(out))
        }
        Element::Tuple(v0) => {
            for (i, e) in elems.iter().enumerate() {
                match e {
                    Element::Tuple(v) if v.len() == v0.len() => {}
                    other => return Err(mismatch(i, other, path)),
                }
            }
            let mut out = Vec::with_capacity(v0.len());
            for j in 0..v0.len() {
                let parts: Vec<&Element> = elems
                    .iter()
                    .map(|e| match e {
                        Element::Tuple(v) => &v[j],
                        _ => e,
                    })
                    .collect();
                let len = path.len();
                path.push_str(&format!("[{j}]"));
                let r = combine_rec(op, &parts, path, leaf, f);
                path.truncate(len);
                out.push(r?);
            }
            Ok(Element::Tuple(out))
        }
        Element::Dict(d0) => {
            for (i, e) in elems.iter().enumerate() {
                match e {
                    Element::Dict(d) if d.len() == d0.len() && d.keys().eq(d0.keys()) => {}
                    other => return Err(mismatch(i, other, path)),
                }
            }
            let mut out = BTreeMap::new();
            for k in d0.keys() {
                let parts: Vec<&Element> = elems
                    .iter()
                    .map(|e| match e {
                        Element::Dict(d) => d.get(k).unwrap_or(e),
                        _ => e,
                    })
                    .collect();
                let len = path.len();
                path.push_str(&format!("['{k}']"));
                let r = combine_rec(op, &parts, path, leaf, f);
                path.truncate(len);
                out.insert(k.clone(), r?);
            }
            Ok(Element::Dict(out))
        }
    }
}

/// A short description of a structure: `tensor`, `tuple of 2`, `dict with keys [a, b]`.
fn describe(e: &Element) -> String {
    match e {
        Element::Tensor(_) => String::new(),
        Element::Tuple(v) => format!("of {}", v.len()),
        Element::Dict(d) => format!(
            "with keys [{}]",
            d.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
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

impl From<(Tensor, Tensor, Tensor)> for Element {
    fn from((a, b, c): (Tensor, Tensor, Tensor)) -> Self {
        Element::Tuple(vec![
            Element::Tensor(a),
            Element::Tensor(b),
            Element::Tensor(c),
        ])
    }
}

impl From<Vec<Element>> for Element {
    fn from(v: Vec<Element>) -> Self {
        Element::Tuple(v)
    }
}

impl From<BTreeMap<String, Element>> for Element {
    fn from(d: BTreeMap<String, Element>) -> Self {
        Element::Dict(d)
    }
}
