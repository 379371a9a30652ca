//! `Dataset`: a re-iterable source of elements, and its transformations.
//!
//! A dataset is a recipe: each call to [`Dataset::iter`] starts a fresh pass (an epoch) over the
//! elements. Transformations wrap the recipe of the dataset they transform.

use std::sync::Arc;

use ferroflow_core::{ops, Error, Result, Tensor};

use crate::element::Element;

/// One pass over a dataset's elements.
pub type ElementIter = Box<dyn Iterator<Item = Result<Element>> + Send>;

type Source = Arc<dyn Fn() -> ElementIter + Send + Sync>;

/// `tf.data.Dataset`: a re-iterable, lazily computed sequence of elements.
#[derive(Clone)]
pub struct Dataset {
    source: Source,
    /// The number of elements when known without iterating (TF's `cardinality`).
    cardinality: Option<usize>,
}

impl Dataset {
    /// A dataset from a function that starts a new pass each time it is called (TF's
    /// `from_generator`). `cardinality` is the number of elements if known.
    pub fn from_generator(
        f: impl Fn() -> ElementIter + Send + Sync + 'static,
        cardinality: Option<usize>,
    ) -> Dataset {
        Dataset {
            source: Arc::new(f),
            cardinality,
        }
    }

    /// `Dataset.from_tensor_slices`: the slices along axis 0 of a tensor, or of every tensor of a
    /// tuple or dict (which must agree on their first dimension).
    pub fn from_tensor_slices(e: impl Into<Element>) -> Result<Dataset> {
        let e = e.into();
        let tensors = e.flatten();
        let n = match tensors.first() {
            Some(t) if t.rank() > 0 => t.shape()[0],
            _ => {
                return Err(Error::invalid(
                    "from_tensor_slices",
                    "needs tensors of rank >= 1 to slice",
                ))
            }
        };
        if let Some(bad) = tensors.iter().find(|t| t.rank() == 0 || t.shape()[0] != n) {
            return Err(Error::shape(
                "from_tensor_slices",
                "all tensors must have the same first dimension",
                &[tensors[0].shape(), bad.shape()],
            ));
        }
        Ok(Dataset::from_generator(
            move || {
                let e = e.clone();
                Box::new((0..n).map(move |i| slice_element(&e, i)))
            },
            Some(n),
        ))
    }

    /// Starts a pass over the elements.
    pub fn iter(&self) -> ElementIter {
        (self.source)()
    }

    /// The number of elements, if known without iterating.
    pub fn cardinality(&self) -> Option<usize> {
        self.cardinality
    }
}

/// Element `i` along axis 0 of every tensor in `e`.
fn slice_element(e: &Element, i: usize) -> Result<Element> {
    Ok(match e {
        Element::Tensor(t) => Element::Tensor(row(t, i)?),
        Element::Tuple(v) => Element::Tuple(
            v.iter()
                .map(|x| slice_element(x, i))
                .collect::<Result<_>>()?,
        ),
        Element::Dict(d) => Element::Dict(
            d.iter()
                .map(|(k, x)| Ok((k.clone(), slice_element(x, i)?)))
                .collect::<Result<_>>()?,
        ),
    })
}

fn row(t: &Tensor, i: usize) -> Result<Tensor> {
    let idx = Tensor::scalar(i as i64);
    ops::gather(t, &idx, 0)
}
