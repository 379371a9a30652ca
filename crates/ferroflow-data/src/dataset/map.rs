//! `map`, `map_parallel` (TF's `map(num_parallel_calls=..)`, order kept) and `filter`.

use std::collections::VecDeque;
use std::sync::Arc;

use ferroflow_core::Result;
use rayon::prelude::*;

use super::{Cardinality, Dataset, ElementIter, AUTOTUNE};
use crate::element::Element;

/// A user transformation of one element.
type MapFn = Arc<dyn Fn(Element) -> Result<Element> + Send + Sync>;

impl Dataset {
    /// `Dataset.map(f)`: applies `f` to every element, one at a time, in order. An error from
    /// `f` is yielded in the failing element's place. Cardinality is kept.
    ///
    /// ```
    /// use ferroflow_core::{ops, Tensor};
    /// use ferroflow_data::{Dataset, Element};
    /// let ds = Dataset::range(3).map(|e| Ok(Element::Tensor(ops::mul_scalar(e.tensor()?, 10.0)?)));
    /// let v: Vec<i64> = ds.iter().map(|e| e?.tensor()?.item::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 10, 20]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn map(&self, f: impl Fn(Element) -> Result<Element> + Send + Sync + 'static) -> Dataset {
        let input = self.clone();
        let f: MapFn = Arc::new(f);
        Dataset::from_source(
            move || {
                let f = f.clone();
                Box::new(input.iter().map(move |e| e.and_then(|e| f(e))))
            },
            self.cardinality,
        )
    }

    /// `Dataset.map(f, num_parallel_calls=n, deterministic=True)`: applies `f` to up to `n`
    /// elements at once on rayon's thread pool and yields the results **in input order**, so
    /// the output is exactly that of [`Dataset::map`] whatever the number of threads.
    /// [`AUTOTUNE`] uses one call per rayon thread; `0` or `1` runs sequentially.
    ///
    /// ```
    /// use ferroflow_core::{ops, Tensor};
    /// use ferroflow_data::{Dataset, Element};
    /// let ds = Dataset::range(8)
    ///     .map_parallel(|e| Ok(Element::Tensor(ops::square(e.tensor()?)?)), 4);
    /// let v: Vec<i64> = ds.iter().map(|e| e?.tensor()?.item::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 1, 4, 9, 16, 25, 36, 49]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn map_parallel(
        &self,
        f: impl Fn(Element) -> Result<Element> + Send + Sync + 'static,
        num_parallel_calls: usize,
    ) -> Dataset {
        if num_parallel_calls <= 1 {
            return self.map(f);
        }
        let input = self.clone();
        let f: MapFn = Arc::new(f);
        Dataset::from_source(
            move || {
                let n = if num_parallel_calls == AUTOTUNE {
                    rayon::current_num_threads().max(2)
                } else {
                    num_parallel_calls
                };
                Box::new(ParallelMap {
                    input: input.iter(),
                    f: f.clone(),
                    width: n,
                    ready: VecDeque::new(),
                    done: false,
                })
            },
            self.cardinality,
        )
    }

    /// `Dataset.filter(predicate)`: keeps the elements for which `predicate` returns `true`
    /// (TF's predicate returns a scalar `bool` tensor; here a Rust `bool`). An error from the
    /// predicate is yielded in the element's place. The cardinality becomes unknown.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(6).filter(|e| Ok(e.tensor()?.item::<i64>()? % 2 == 0));
    /// let v: Vec<i64> = ds.iter().map(|e| e?.tensor()?.item::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 2, 4]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn filter(
        &self,
        predicate: impl Fn(&Element) -> Result<bool> + Send + Sync + 'static,
    ) -> Dataset {
        let input = self.clone();
        let p = Arc::new(predicate);
        let card = match self.cardinality {
            Cardinality::Finite(0) => Cardinality::Finite(0),
            _ => Cardinality::Unknown,
        };
        Dataset::from_source(
            move || {
                let p = p.clone();
                Box::new(input.iter().filter_map(move |e| match e {
                    Ok(e) => match p(&e) {
                        Ok(true) => Some(Ok(e)),
                        Ok(false) => None,
                        Err(err) => Some(Err(err)),
                    },
                    Err(err) => Some(Err(err)),
                }))
            },
            card,
        )
    }
}

/// The iterator of `map_parallel`: pulls `width` inputs, maps them in parallel, and hands the
/// results out in order.
struct ParallelMap {
    input: ElementIter,
    f: MapFn,
    width: usize,
    ready: VecDeque<Result<Element>>,
    done: bool,
}

impl Iterator for ParallelMap {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        if self.ready.is_empty() && !self.done {
            let chunk: Vec<Result<Element>> = self.input.by_ref().take(self.width).collect();
            if chunk.len() < self.width {
                self.done = true;
            }
            let f = &self.f;
            let mapped: Vec<Result<Element>> = chunk
                .into_par_iter()
                .map(|e| e.and_then(|e| f(e)))
                .collect();
            self.ready.extend(mapped);
        }
        self.ready.pop_front()
    }
}
