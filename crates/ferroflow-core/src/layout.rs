//! How a tensor's logical shape maps onto its storage: shape, strides (in elements) and offset.
//!
//! Transpose, slicing with a step, `expand_dims` and broadcasting only change the layout; the
//! storage is shared. Kernels ask for contiguous data and get a copy only when the layout is
//! not already row-major contiguous.

use crate::error::{Error, Result};

/// Shape, strides and offset of a view into a storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

/// Row-major (C order) strides for `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1usize;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc *= shape[i].max(1);
    }
    strides
}

/// NumPy broadcasting of two shapes, or `None` when they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = if da == db {
            da
        } else if da == 1 {
            db
        } else if db == 1 {
            da
        } else {
            return None;
        };
    }
    Some(out)
}

/// Resolves a possibly negative `axis` against `rank` (`-1` is the last axis).
pub fn normalize_axis(op: &str, axis: isize, shape: &[usize]) -> Result<usize> {
    let rank = shape.len() as isize;
    let a = if axis < 0 { axis + rank } else { axis };
    if a < 0 || a >= rank {
        return Err(Error::axis(op, axis, shape));
    }
    Ok(a as usize)
}

impl Layout {
    /// A contiguous row-major layout.
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// A layout from explicit parts (callers guarantee they stay inside the storage).
    pub fn new(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Layout {
        Layout {
            shape,
            strides,
            offset,
        }
    }

    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Strides in elements, one per dimension (0 for a broadcast dimension).
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Offset of element `[0, ..., 0]` in the storage.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of elements.
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when elements are laid out row-major with no gaps (offset may be non-zero).
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1usize;
        for i in (0..self.shape.len()).rev() {
            if self.shape[i] != 1 && self.strides[i] != acc {
                return false;
            }
            acc *= self.shape[i];
        }
        true
    }

    /// The contiguous range of the storage this layout covers, when it is contiguous.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous()
            .then(|| self.offset..self.offset + self.num_elements())
    }

    /// Permutes the dimensions (a view). `perm` must be a permutation of `0..rank`.
    pub fn permute(&self, perm: &[usize]) -> Layout {
        Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        }
    }

    /// Broadcasts to `shape` (a view with zero strides), or `None` when incompatible.
    pub fn broadcast_to(&self, shape: &[usize]) -> Option<Layout> {
        if shape.len() < self.shape.len() {
            return None;
        }
        let extra = shape.len() - self.shape.len();
        let mut strides = vec![0; shape.len()];
        for i in 0..shape.len() {
            if i < extra {
                continue;
            }
            let d = self.shape[i - extra];
            if d == shape[i] {
                strides[i] = self.strides[i - extra];
            } else if d == 1 {
                strides[i] = 0;
            } else {
                return None;
            }
        }
        Some(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// Inserts a size-1 dimension at `axis` (`0..=rank`).
    pub fn expand_dims(&self, axis: usize) -> Layout {
        let mut shape = self.shape.clone();
        let mut strides = self.strides.clone();
        let stride = if axis < shape.len() {
            strides[axis] * shape[axis]
        } else {
            1
        };
        shape.insert(axis, 1);
        strides.insert(axis, stride);
        Layout {
            shape,
            strides,
            offset: self.offset,
        }
    }

    /// Restricts each dimension to `start..start + size` stepping by `step` (`step >= 1`).
    pub fn slice(&self, starts: &[usize], sizes: &[usize], steps: &[usize]) -> Layout {
        let mut offset = self.offset;
        let mut strides = self.strides.clone();
        for i in 0..self.shape.len() {
            offset += starts[i] * self.strides[i];
            strides[i] *= steps[i];
        }
        Layout {
            shape: sizes.to_vec(),
            strides,
            offset,
        }
    }

    /// Storage offsets of every element, in row-major logical order.
    pub fn offsets(&self) -> StridedOffsets<'_> {
        StridedOffsets::new(self)
    }

    /// Calls `f(storage_offset_of_row_start, inner_stride, inner_len)` for every innermost row, in
    /// row-major order. This is the fast way for kernels to walk a strided view.
    pub fn for_each_row(&self, mut f: impl FnMut(usize, usize, usize)) {
        let rank = self.shape.len();
        if self.num_elements() == 0 {
            return;
        }
        if rank == 0 {
            f(self.offset, 1, 1);
            return;
        }
        let inner = self.shape[rank - 1];
        let inner_stride = self.strides[rank - 1];
        let outer_rank = rank - 1;
        let mut idx = vec![0usize; outer_rank];
        let mut off = self.offset;
        loop {
            f(off, inner_stride, inner);
            // advance the odometer over the outer dims
            let mut d = outer_rank;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                off += self.strides[d];
                if idx[d] < self.shape[d] {
                    break;
                }
                off -= self.strides[d] * self.shape[d];
                idx[d] = 0;
            }
        }
    }
}

/// Iterator over storage offsets of a strided layout, in row-major logical order.
pub struct StridedOffsets<'a> {
    layout: &'a Layout,
    idx: Vec<usize>,
    next: Option<usize>,
}

impl<'a> StridedOffsets<'a> {
    fn new(layout: &'a Layout) -> Self {
        let next = (layout.num_elements() > 0).then_some(layout.offset);
        StridedOffsets {
            layout,
            idx: vec![0; layout.shape.len()],
            next,
        }
    }
}

impl Iterator for StridedOffsets<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let cur = self.next?;
        let l = self.layout;
        let mut off = cur;
        let mut d = l.shape.len();
        loop {
            if d == 0 {
                self.next = None;
                break;
            }
            d -= 1;
            self.idx[d] += 1;
            off += l.strides[d];
            if self.idx[d] < l.shape[d] {
                self.next = Some(off);
                break;
            }
            off -= l.strides[d] * l.shape[d];
            self.idx[d] = 0;
        }
        Some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes(&[2, 1, 3], &[4, 1]), Some(vec![2, 4, 3]));
        assert_eq!(broadcast_shapes(&[], &[5]), Some(vec![5]));
        assert_eq!(broadcast_shapes(&[2, 3], &[3, 2]), None);
    }

    #[test]
    fn offsets_of_a_transpose() {
        let l = Layout::contiguous(&[2, 3]).permute(&[1, 0]);
        assert_eq!(l.offsets().collect::<Vec<_>>(), vec![0, 3, 1, 4, 2, 5]);
        assert!(!l.is_contiguous());
        let mut rows = vec![];
        l.for_each_row(|o, s, n| rows.push((o, s, n)));
        assert_eq!(rows, vec![(0, 3, 2), (1, 3, 2), (2, 3, 2)]);
    }
}
