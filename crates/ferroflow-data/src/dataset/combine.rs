//! `repeat`, `take`, `skip`, `zip`, `concatenate` and `enumerate`.

use ferroflow_core::{Error, Result, Tensor};

use super::{Cardinality, Dataset, ElementIter};
use crate::element::Element;

impl Dataset {
    /// `Dataset.repeat(count)`: `count` passes over this dataset one after the other; `None`
    /// repeats forever (the cardinality becomes infinite). Each repetition is a new pass of the
    /// input, so a `shuffle(.., reshuffle_each_iteration=true)` before it reshuffles every
    /// repetition, as in TF. Repeating an empty dataset forever yields nothing.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(2).repeat(Some(3));
    /// assert_eq!(ds.cardinality(), Some(6));
    /// let v: Vec<i64> = ds.iter().map(|e| e?.tensor()?.item::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 1, 0, 1, 0, 1]);
    /// assert!(Dataset::range(2).repeat(None).is_infinite());
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn repeat(&self, count: Option<usize>) -> Dataset {
        let input = self.clone();
        let card = match (self.cardinality, count) {
            (_, Some(0)) | (Cardinality::Finite(0), _) => Cardinality::Finite(0),
            (c, Some(k)) => c.map(|n| n.saturating_mul(k)),
            (Cardinality::Unknown, None) => Cardinality::Unknown,
            (_, None) => Cardinality::Infinite,
        };
        Dataset::from_source(
            move || {
                Box::new(Repeat {
                    input: input.clone(),
                    current: None,
                    passes_left: count,
                    yielded_this_pass: false,
                })
            },
            card,
        )
    }

    /// `Dataset.take(count)`: the first `count` elements.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(10).repeat(None).take(3);
    /// assert_eq!(ds.cardinality(), Some(3));
    /// let v: Vec<i64> = ds.iter().map(|e| e?.tensor()?.item::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 1, 2]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn take(&self, count: usize) -> Dataset {
        let input = self.clone();
        let card = match self.cardinality {
            Cardinality::Finite(n) => Cardinality::Finite(n.min(count)),
            Cardinality::Infinite => Cardinality::Finite(count),
            Cardinality::Unknown if count == 0 => Cardinality::Finite(0),
            Cardinality::Unknown => Cardinality::Unknown,
        };
        Dataset::from_source(move || Box::new(input.iter().take(count)), card)
    }

    /// `Dataset.skip(count)`: all but the first `count` elements.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(5).skip(3);
    /// assert_eq!(ds.cardinality(), Some(2));
    /// let v: Vec<i64> = ds.iter().map(|e| e?.tensor()?.item::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![3, 4]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn skip(&self, count: usize) -> Dataset {
        let input = self.clone();
        let card = self.cardinality.map(|n| n.saturating_sub(count));
        Dataset::from_source(move || Box::new(input.iter().skip(count)), card)
    }

    /// `tf.data.Dataset.zip(datasets)`: tuples of the datasets' elements, side by side; ends
    /// with the shortest. An empty list is an error (yielded by every pass).
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::zip(&[Dataset::range(3), Dataset::range(10).skip(5)]);
    /// assert_eq!(ds.cardinality(), Some(3));
    /// let v: Vec<(i64, i64)> = ds
    ///     .iter()
    ///     .map(|e| {
    ///         let e = e?;
    ///         let t = e.tuple()?;
    ///         Ok((t[0].tensor()?.item()?, t[1].tensor()?.item()?))
    ///     })
    ///     .collect::<ferroflow_core::Result<_>>()?;
    /// assert_eq!(v, vec![(0, 5), (1, 6), (2, 7)]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn zip(datasets: &[Dataset]) -> Dataset {
        if datasets.is_empty() {
            return Dataset::failing(Error::invalid("zip", "needs at least one dataset"));
        }
        let inputs: Vec<Dataset> = datasets.to_vec();
        let mut card = Cardinality::Infinite;
        for d in datasets {
            card = match (card, d.cardinality) {
                (Cardinality::Finite(a), Cardinality::Finite(b)) => Cardinality::Finite(a.min(b)),
                (Cardinality::Finite(0), _) | (_, Cardinality::Finite(0)) => Cardinality::Finite(0),
                (Cardinality::Infinite, c) | (c, Cardinality::Infinite) => c,
                _ => Cardinality::Unknown,
            };
        }
        Dataset::from_source(
            move || {
                let mut iters: Vec<ElementIter> = inputs.iter().map(Dataset::iter).collect();
                Box::new(std::iter::from_fn(move || {
                    let mut parts = Vec::with_capacity(iters.len());
                    for it in iters.iter_mut() {
                        match it.next()? {
                            Ok(e) => parts.push(e),
                            Err(err) => return Some(Err(err)),
                        }
                    }
                    Some(Ok(Element::Tuple(parts)))
                }))
            },
            card,
        )
    }

    /// `Dataset.concatenate(other)`: this dataset's elements, then `other`'s.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(2).concatenate(&Dataset::range(3));
    /// assert_eq!(ds.cardinality(), Some(5));
    /// let v: Vec<i64> = ds.iter().map(|e| e?.tensor()?.item::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 1, 0, 1, 2]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn concatenate(&self, other: &Dataset) -> Dataset {
        let (a, b) = (self.clone(), other.clone());
        let card = match (self.cardinality, other.cardinality) {
            (Cardinality::Finite(x), Cardinality::Finite(y)) => Cardinality::Finite(x + y),
            (Cardinality::Infinite, _) | (_, Cardinality::Infinite) => Cardinality::Infinite,
            _ => Cardinality::Unknown,
        };
        Dataset::from_source(
            move || {
                let b = b.clone();
                // `other` starts its pass only when this one has ended.
                let mut second: Option<ElementIter> = None;
                let mut first = a.iter();
                let mut first_done = false;
                Box::new(std::iter::from_fn(move || {
                    if !first_done {
                        match first.next() {
                            Some(x) => return Some(x),
                            None => first_done = true,
                        }
                    }
                    second.get_or_insert_with(|| b.iter()).next()
                }))
            },
            card,
        )
    }

    /// `Dataset.enumerate(start)`: tuples `(i, element)` where `i` is an `int64` scalar
    /// counting from `start`.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(3).skip(1).enumerate(10);
    /// let e = ds.collect()?;
    /// assert_eq!(e[1].tuple()?[0].tensor()?.item::<i64>()?, 11);
    /// assert_eq!(e[1].tuple()?[1].tensor()?.item::<i64>()?, 2);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn enumerate(&self, start: i64) -> Dataset {
        let input = self.clone();
        Dataset::from_source(
            move || {
                Box::new(input.iter().zip(start..).map(|(e, i)| {
                    e.map(|e| Element::Tuple(vec![Element::Tensor(Tensor::scalar(i)), e]))
                }))
            },
            self.cardinality,
        )
    }
}

/// One pass of `repeat`.
struct Repeat {
    input: Dataset,
    current: Option<ElementIter>,
    /// Passes still to start (`None`: forever).
    passes_left: Option<usize>,
    yielded_this_pass: bool,
}

impl Iterator for Repeat {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        loop {
            if let Some(it) = self.current.as_mut() {
                if let Some(x) = it.next() {
                    self.yielded_this_pass = true;
                    return Some(x);
                }
                self.current = None;
                // A pass with no element: repeating it forever would never yield.
                if !self.yielded_this_pass && self.passes_left.is_none() {
                    return None;
                }
            }
            match &mut self.passes_left {
                Some(0) => return None,
                Some(k) => *k -= 1,
                None => {}
            }
            self.yielded_this_pass = false;
            self.current = Some(self.input.iter());
        }
    }
}
