//! `Dataset`: a re-iterable source of elements, and its transformations.
//!
//! A dataset is a recipe: each call to [`Dataset::iter`] starts a fresh pass (an epoch) over the
//! elements. Transformations wrap the recipe of the dataset they transform, one family per file:
//! `map.rs` (`map`, `map_parallel`, `filter`), `shuffle.rs`, `batch.rs` (`batch`,
//! `padded_batch`, `unbatch`), `combine.rs` (`repeat`, `take`, `skip`, `zip`, `concatenate`,
//! `enumerate`), `cache.rs` (memory and file) and `prefetch.rs`.

mod batch;
mod cache;
mod combine;
mod map;
mod prefetch;
mod shuffle;

pub use batch::PaddedShape;

use std::sync::Arc;

use ferroflow_core::layout::Layout;
use ferroflow_core::{Error, Result, Tensor};

use crate::element::Element;

/// One pass over a dataset's elements.
pub type ElementIter = Box<dyn Iterator<Item = Result<Element>> + Send>;

type Source = Arc<dyn Fn() -> ElementIter + Send + Sync>;

/// `tf.data.AUTOTUNE`: pass it as `num_parallel_calls` or a prefetch `buffer_size` to let the
/// pipeline choose (the number of rayon threads for `map_parallel`, 2 for `prefetch`).
pub const AUTOTUNE: usize = usize::MAX;

/// How many elements a dataset has, when known without iterating (TF's `cardinality()`, whose
/// `INFINITE_CARDINALITY` and `UNKNOWN_CARDINALITY` are the other two variants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    /// Exactly this many elements.
    Finite(usize),
    /// Never ends (`repeat()` with no count).
    Infinite,
    /// Not known without iterating (`filter`, `unbatch`, generators without a count).
    Unknown,
}

impl Cardinality {
    fn from_option(n: Option<usize>) -> Cardinality {
        n.map_or(Cardinality::Unknown, Cardinality::Finite)
    }

    /// Applies `f` to a finite count; `Infinite` and `Unknown` pass through.
    fn map(self, f: impl FnOnce(usize) -> usize) -> Cardinality {
        match self {
            Cardinality::Finite(n) => Cardinality::Finite(f(n)),
            other => other,
        }
    }
}

/// `tf.data.Dataset`: a re-iterable, lazily computed sequence of elements.
///
/// Each [`Dataset::iter`] call is a new pass (an epoch). Transformations return new datasets
/// and never run anything until iterated; cloning is cheap (the recipe is shared).
///
/// ```
/// use ferroflow_core::Tensor;
/// use ferroflow_data::Dataset;
/// let x = Tensor::from_vec((0..10).map(|i| i as f32).collect::<Vec<_>>(), &[10])?;
/// let ds = Dataset::from_tensor_slices(x)?
///     .shuffle(4, Some(42), true)
///     .batch(4, false)
///     .prefetch(2);
/// assert_eq!(ds.cardinality(), Some(3));
/// let sizes: Vec<usize> = ds
///     .iter()
///     .map(|b| Ok(b?.tensor()?.shape()[0]))
///     .collect::<ferroflow_core::Result<_>>()?;
/// assert_eq!(sizes, vec![4, 4, 2]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Dataset {
    source: Source,
    cardinality: Cardinality,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("cardinality", &self.cardinality)
            .finish_non_exhaustive()
    }
}

impl Dataset {
    /// A dataset from a function that starts a new pass each time it is called (TF's
    /// `from_generator`). `cardinality` is the number of elements if known.
    pub fn from_generator(
        f: impl Fn() -> ElementIter + Send + Sync + 'static,
        cardinality: Option<usize>,
    ) -> Dataset {
        Dataset::from_source(f, Cardinality::from_option(cardinality))
    }

    /// A dataset each of whose passes yields `err` once (for invalid arguments to a chained
    /// transformation, reported when the pipeline runs).
    pub(crate) fn failing(err: Error) -> Dataset {
        Dataset::from_source(
            move || Box::new(std::iter::once(Err(err.clone()))),
            Cardinality::Unknown,
        )
    }

    /// A dataset from a pass-starting function and a cardinality of any kind.
    pub(crate) fn from_source(
        f: impl Fn() -> ElementIter + Send + Sync + 'static,
        cardinality: Cardinality,
    ) -> Dataset {
        Dataset {
            source: Arc::new(f),
            cardinality,
        }
    }

    /// `Dataset.from_tensor_slices`: the slices along axis 0 of a tensor, or of every tensor of a
    /// tuple or dict (which must agree on their first dimension). Slices are views of the
    /// tensors, not copies.
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

    /// `Dataset.from_tensors`: a dataset of one element, `e` itself.
    pub fn from_tensors(e: impl Into<Element>) -> Dataset {
        Dataset::from_iter(vec![e.into()])
    }

    /// `Dataset.range(n)`: the `int64` scalars `0, 1, .., n - 1`.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let v: Vec<i64> = Dataset::range(4)
    ///     .iter()
    ///     .map(|e| e?.tensor()?.item::<i64>())
    ///     .collect::<ferroflow_core::Result<_>>()?;
    /// assert_eq!(v, vec![0, 1, 2, 3]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn range(n: usize) -> Dataset {
        Dataset::from_generator(
            move || Box::new((0..n).map(|i| Ok(Element::Tensor(Tensor::scalar(i as i64))))),
            Some(n),
        )
    }

    /// Starts a pass over the elements.
    pub fn iter(&self) -> ElementIter {
        (self.source)()
    }

    /// The number of elements, if known without iterating (`None` for unknown and for infinite
    /// datasets; see [`Dataset::cardinality_kind`] to tell them apart).
    pub fn cardinality(&self) -> Option<usize> {
        match self.cardinality {
            Cardinality::Finite(n) => Some(n),
            _ => None,
        }
    }

    /// The cardinality with TF's three cases: finite, infinite, unknown.
    pub fn cardinality_kind(&self) -> Cardinality {
        self.cardinality
    }

    /// True when the dataset never ends (TF's `cardinality() == INFINITE_CARDINALITY`).
    pub fn is_infinite(&self) -> bool {
        self.cardinality == Cardinality::Infinite
    }

    /// Runs a full pass and collects the elements (the first error stops it).
    pub fn collect(&self) -> Result<Vec<Element>> {
        if self.is_infinite() {
            return Err(Error::invalid(
                "Dataset::collect",
                "the dataset is infinite; take(n) first",
            ));
        }
        self.iter().collect()
    }
}

/// `Dataset::from_iter(vec![..])`: a dataset of the given elements (kept in memory and replayed
/// on every pass).
impl FromIterator<Element> for Dataset {
    fn from_iter<I: IntoIterator<Item = Element>>(iter: I) -> Self {
        let v: Arc<Vec<Element>> = Arc::new(iter.into_iter().collect());
        let n = v.len();
        Dataset::from_generator(
            move || {
                let v = v.clone();
                Box::new((0..n).map(move |i| Ok(v[i].clone())))
            },
            Some(n),
        )
    }
}

/// `for e in &dataset { .. }`: one pass, as [`Dataset::iter`].
impl IntoIterator for &Dataset {
    type Item = Result<Element>;
    type IntoIter = ElementIter;

    fn into_iter(self) -> ElementIter {
        self.iter()
    }
}

/// Element `i` along axis 0 of every tensor in `e`.
fn slice_element(e: &Element, i: usize) -> Result<Element> {
    e.map_tensors(&mut |t| Ok(row(t, i)))
}

/// Row `i` of `t` as a view (no copy): the layout without its first dimension, offset by `i`
/// rows. The caller checked `i < t.shape()[0]`.
fn row(t: &Tensor, i: usize) -> Tensor {
    let l = t.layout();
    let layout = Layout::new(
        l.shape()[1..].to_vec(),
        l.strides()[1..].to_vec(),
        l.offset() + i * l.strides()[0],
    );
    t.view(layout)
}
