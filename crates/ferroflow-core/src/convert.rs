//! Conversions between [`Tensor`] and `ndarray` arrays (cargo feature `ndarray`).
//!
//! ```
//! use ferroflow_core::Tensor;
//! use ndarray::{array, ArrayD};
//! let a = array![[1.0f32, 2.0], [3.0, 4.0]];
//! let t = Tensor::from_ndarray(a.clone());
//! assert_eq!(t.shape(), &[2, 2]);
//! let back: ArrayD<f32> = t.to_ndarray()?;
//! assert_eq!(back, a.into_dyn());
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use ndarray::{Array, ArrayD, Dimension, IxDyn};

use crate::error::{Error, Result};
use crate::storage::StorageElement;
use crate::tensor::Tensor;

impl Tensor {
    /// A tensor with the shape and (logical, row-major) values of `a`, of any dimensionality.
    /// A standard-layout array hands over its buffer without copying.
    pub fn from_ndarray<T: StorageElement, D: Dimension>(a: Array<T, D>) -> Tensor {
        let shape = a.shape().to_vec();
        let n = a.len();
        let data: Vec<T> = if a.as_slice().is_some() {
            match a.into_raw_vec_and_offset() {
                (v, Some(0)) if v.len() == n => v,
                (v, off) => {
                    let off = off.unwrap_or(0);
                    v[off..off + n].to_vec()
                }
            }
        } else {
            a.iter().copied().collect()
        };
        crate::kernels::elementwise::tensor_from(data, &shape)
    }

    /// The values as a dynamic-dimensional `ndarray` array (a copy, row-major). Errors when `T`
    /// is not this tensor's dtype.
    pub fn to_ndarray<T: StorageElement>(&self) -> Result<ArrayD<T>> {
        let data = self.to_vec::<T>()?;
        ArrayD::from_shape_vec(IxDyn(self.shape()), data)
            .map_err(|e| Error::invalid("Tensor::to_ndarray", e.to_string()))
    }
}

impl<T: StorageElement, D: Dimension> From<Array<T, D>> for Tensor {
    /// [`Tensor::from_ndarray`].
    fn from(a: Array<T, D>) -> Tensor {
        Tensor::from_ndarray(a)
    }
}

impl<T: StorageElement> TryFrom<&Tensor> for ArrayD<T> {
    type Error = Error;
    /// [`Tensor::to_ndarray`].
    fn try_from(t: &Tensor) -> Result<ArrayD<T>> {
        t.to_ndarray()
    }
}
