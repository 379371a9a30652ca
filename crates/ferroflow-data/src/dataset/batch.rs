//! `batch`, `padded_batch` and `unbatch`.

use std::sync::Arc;

use ferroflow_core::error::fmt_shape;
use ferroflow_core::ops::{self, PadMode};
use ferroflow_core::{Error, Result, Tensor};

use super::{Cardinality, Dataset, ElementIter};
use crate::element::{check_same, component, Element};

/// How a batch's elements become one element.
type Combine = Arc<dyn Fn(&[Element]) -> Result<Element> + Send + Sync>;

/// A padded shape: one entry per dimension, `None` to pad to the longest in the batch.
pub type PaddedShape = Vec<Option<usize>>;

impl Dataset {
    /// `Dataset.batch(batch_size, drop_remainder)`: stacks `batch_size` consecutive elements
    /// into one, tensor by tensor through tuples and dicts (`tf.stack` on a new axis 0). The
    /// last batch is smaller unless `drop_remainder`, which drops it. Elements whose tensors
    /// differ in shape or dtype are an error naming the element's index in the batch, the
    /// component and both shapes (TF's "Cannot batch tensors with different shapes"). A
    /// `batch_size` of 0 makes every pass yield one error.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(5).batch(2, false);
    /// assert_eq!(ds.cardinality(), Some(3));
    /// let batches: Vec<Vec<i64>> = ds
    ///     .iter()
    ///     .map(|b| b?.tensor()?.to_vec::<i64>())
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(batches, vec![vec![0, 1], vec![2, 3], vec![4]]);
    /// assert_eq!(Dataset::range(5).batch(2, true).cardinality(), Some(2));
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn batch(&self, batch_size: usize, drop_remainder: bool) -> Dataset {
        self.batch_with(
            "batch",
            batch_size,
            drop_remainder,
            Arc::new(|elems: &[Element]| Element::stack("batch", elems)),
        )
    }

    /// `Dataset.padded_batch(batch_size, padded_shapes, padding_values, drop_remainder)`:
    /// like [`Dataset::batch`], but tensors of different shapes (same rank and dtype) are
    /// padded at the end of each dimension with `padding_value` before stacking.
    ///
    /// `padded_shapes` has one shape per tensor of an element, in [`Element::flatten`]'s
    /// order (TF's nested structure, flattened); a `None` dimension pads to the longest in
    /// the batch, a fixed one pads to that size (an element longer than it is an error).
    /// `padded_shapes = None` pads every dimension to the batch's longest. `padding_value`
    /// (cast to each tensor's dtype) is used for every tensor (TF's default is 0).
    ///
    /// ```
    /// use ferroflow_core::Tensor;
    /// use ferroflow_data::{Dataset, Element};
    /// let seqs: Vec<Element> = vec![vec![1i64], vec![2, 3, 4], vec![5, 6]]
    ///     .into_iter()
    ///     .map(|v| Ok(Element::Tensor(Tensor::from_vec(v.clone(), &[v.len()])?)))
    ///     .collect::<ferroflow_core::Result<_>>()?;
    /// let ds = Dataset::from_iter(seqs).padded_batch(2, None, 0.0, false);
    /// let b: Vec<Element> = ds.collect()?;
    /// assert_eq!(b[0].tensor()?.shape(), &[2, 3]);
    /// assert_eq!(b[0].tensor()?.to_vec::<i64>()?, vec![1, 0, 0, 2, 3, 4]);
    /// assert_eq!(b[1].tensor()?.to_vec::<i64>()?, vec![5, 6]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn padded_batch(
        &self,
        batch_size: usize,
        padded_shapes: Option<Vec<PaddedShape>>,
        padding_value: f64,
        drop_remainder: bool,
    ) -> Dataset {
        let shapes = Arc::new(padded_shapes);
        self.batch_with(
            "padded_batch",
            batch_size,
            drop_remainder,
            Arc::new(move |elems: &[Element]| {
                let n_leaves = elems[0].flatten().len();
                if let Some(s) = shapes.as_ref() {
                    if s.len() != n_leaves {
                        return Err(Error::invalid(
                            "padded_batch",
                            format!(
                                "padded_shapes has {} shapes but each element has {} tensors",
                                s.len(),
                                n_leaves
                            ),
                        ));
                    }
                }
                Element::combine("padded_batch", elems, &mut |leaf, path, ts| {
                    let target = shapes.as_ref().as_ref().map(|s| &s[leaf]);
                    pad_and_stack(path, ts, target, padding_value)
                })
            }),
        )
    }

    /// `Dataset.unbatch()`: splits every element along axis 0 into its rows (the inverse of
    /// [`Dataset::batch`]). The tensors of an element must share their first dimension. The
    /// cardinality becomes unknown.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(5).batch(2, false).unbatch();
    /// let v: Vec<i64> = ds.iter().map(|e| e?.tensor()?.item::<i64>()).collect::<Result<_, _>>()?;
    /// assert_eq!(v, vec![0, 1, 2, 3, 4]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn unbatch(&self) -> Dataset {
        let input = self.clone();
        let card = match self.cardinality {
            Cardinality::Infinite => Cardinality::Infinite,
            Cardinality::Finite(0) => Cardinality::Finite(0),
            _ => Cardinality::Unknown,
        };
        Dataset::from_source(
            move || {
                Box::new(input.iter().flat_map(|e| {
                    let rows: Vec<Result<Element>> = match e.and_then(|e| e.unstack("unbatch")) {
                        Ok(rows) => rows.into_iter().map(Ok).collect(),
                        Err(err) => vec![Err(err)],
                    };
                    rows
                }))
            },
            card,
        )
    }

    fn batch_with(
        &self,
        op: &'static str,
        batch_size: usize,
        drop_remainder: bool,
        combine: Combine,
    ) -> Dataset {
        if batch_size == 0 {
            return Dataset::failing(Error::invalid(op, "batch_size must be greater than zero"));
        }
        let input = self.clone();
        let card = self.cardinality.map(|n| {
            if drop_remainder {
                n / batch_size
            } else {
                n.div_ceil(batch_size)
            }
        });
        Dataset::from_source(
            move || {
                Box::new(Batch {
                    input: input.iter(),
                    pending: Vec::with_capacity(batch_size.min(1 << 16)),
                    batch_size,
                    drop_remainder,
                    combine: combine.clone(),
                    done: false,
                })
            },
            card,
        )
    }
}

/// One pass of `batch`/`padded_batch`.
struct Batch {
    input: ElementIter,
    pending: Vec<Element>,
    batch_size: usize,
    drop_remainder: bool,
    combine: Combine,
    done: bool,
}

impl Iterator for Batch {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        while !self.done && self.pending.len() < self.batch_size {
            match self.input.next() {
                Some(Ok(e)) => self.pending.push(e),
                // The elements gathered so far stay pending for the next call.
                Some(Err(err)) => return Some(Err(err)),
                None => self.done = true,
            }
        }
        if self.pending.is_empty() || (self.drop_remainder && self.pending.len() < self.batch_size)
        {
            return None;
        }
        let elems = std::mem::take(&mut self.pending);
        Some((self.combine)(&elems))
    }
}

/// Pads every tensor of `ts` to a common shape (`target`'s fixed dims, the longest otherwise)
/// with `value`, then stacks them.
fn pad_and_stack(
    path: &str,
    ts: &[&Tensor],
    target: Option<&PaddedShape>,
    value: f64,
) -> Result<Tensor> {
    const OP: &str = "padded_batch";
    let first = ts[0];
    let rank = first.rank();
    for (i, t) in ts.iter().enumerate() {
        if t.rank() != rank {
            return Err(Error::shape(
                OP,
                format!(
                    "element {i}{} has rank {} but element 0 has rank {rank}",
                    component(path),
                    t.rank()
                ),
                &[first.shape(), t.shape()],
            ));
        }
    }
    let mut shape: Vec<usize> = (0..rank)
        .map(|d| ts.iter().map(|t| t.shape()[d]).max().unwrap_or(0))
        .collect();
    if let Some(target) = target {
        if target.len() != rank {
            return Err(Error::invalid(
                OP,
                format!(
                    "padded shape {:?}{} has {} dimensions but the tensors have rank {rank}",
                    target,
                    component(path),
                    target.len()
                ),
            ));
        }
        for (d, want) in target.iter().enumerate() {
            if let Some(w) = *want {
                if let Some((i, t)) = ts.iter().enumerate().find(|(_, t)| t.shape()[d] > w) {
                    return Err(Error::shape(
                        OP,
                        format!(
                            "element {i}{} has shape {}, longer than the padded shape in \
                             dimension {d} ({w})",
                            component(path),
                            fmt_shape(t.shape())
                        ),
                        &[t.shape()],
                    ));
                }
                shape[d] = w;
            }
        }
    }
    let padded: Vec<Tensor> = ts
        .iter()
        .map(|t| {
            if t.shape() == shape.as_slice() {
                return Ok((*t).clone());
            }
            let pads: Vec<[usize; 2]> = t
                .shape()
                .iter()
                .zip(&shape)
                .map(|(&have, &want)| [0, want - have])
                .collect();
            ops::pad(t, &pads, PadMode::Constant, value)
        })
        .collect::<Result<_>>()?;
    let refs: Vec<&Tensor> = padded.iter().collect();
    check_same(OP, path, &refs)?;
    ops::stack(&refs, 0)
}
