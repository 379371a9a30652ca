//! `keras.utils`: seeds, one-hot labels, the progress bar.

mod progbar;
mod sequence;

pub use progbar::Progbar;
pub use sequence::{pad_sequences, SequenceValue};

pub use crate::backend::{clear_session, set_random_seed};

use ferroflow_core::{ops, DType, Error, Result, Tensor};

/// `keras.utils.to_categorical(y, num_classes)`: integer class ids → one-hot rows (float32 here;
/// Keras returns float64). `num_classes = None` uses `max(y) + 1`. A trailing axis of size 1 on
/// `y` is dropped first, as in Keras.
///
/// ```
/// use ferroflow_keras::utils::to_categorical;
/// use ferroflow_core::Tensor;
/// let y = Tensor::from_vec(vec![0i64, 2, 1], &[3])?;
/// let onehot = to_categorical(&y, None)?;
/// assert_eq!(onehot.shape(), &[3, 3]);
/// assert_eq!(onehot.to_vec::<f32>()?, vec![1., 0., 0., 0., 0., 1., 0., 1., 0.]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn to_categorical(y: &Tensor, num_classes: Option<usize>) -> Result<Tensor> {
    let ids = y.to_f64_vec();
    let mut shape = y.shape().to_vec();
    if shape.last() == Some(&1) && shape.len() > 1 {
        shape.pop();
    }
    let mut ints = Vec::with_capacity(ids.len());
    for &v in &ids {
        if v < 0.0 || v.fract() != 0.0 {
            return Err(Error::invalid(
                "to_categorical",
                format!("class ids must be non-negative integers, got {v}"),
            ));
        }
        ints.push(v as usize);
    }
    let n = num_classes.unwrap_or_else(|| ints.iter().max().map_or(0, |m| m + 1));
    if let Some(&bad) = ints.iter().find(|&&i| i >= n) {
        return Err(Error::invalid(
            "to_categorical",
            format!("class id {bad} is out of range for num_classes={n}"),
        ));
    }
    let mut out = vec![0.0f32; ints.len() * n];
    for (row, &i) in ints.iter().enumerate() {
        out[row * n + i] = 1.0;
    }
    shape.push(n);
    let t = Tensor::from_vec(out, &shape)?;
    debug_assert_eq!(t.dtype(), DType::F32);
    Ok(t)
}

/// `keras.utils.normalize(x, axis=-1, order=2)`: `x` divided by its `order`-norm along `axis`
/// (a zero norm divides by 1, as Keras does).
///
/// ```
/// use ferroflow_keras::utils::normalize;
/// use ferroflow_core::Tensor;
/// let x = Tensor::from_vec(vec![3.0f32, 4.0, 0.0, 0.0], &[2, 2])?;
/// assert_eq!(normalize(&x, -1, 2)?.to_vec::<f32>()?, vec![0.6, 0.8, 0.0, 0.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn normalize(x: &Tensor, axis: isize, order: u32) -> Result<Tensor> {
    if order == 0 {
        return Err(Error::invalid("normalize", "order must be at least 1"));
    }
    let x = if x.dtype().is_float() {
        x.clone()
    } else {
        ops::cast(x, DType::F32)?
    };
    let p = order as f64;
    let powered = if order == 1 {
        ops::abs(&x)?
    } else if order == 2 {
        ops::square(&x)?
    } else {
        ops::pow(&ops::abs(&x)?, &Tensor::scalar_of(x.dtype(), p))?
    };
    let sum = ops::reduce_sum(&powered, axis, true)?;
    let norm = match order {
        1 => sum,
        2 => ops::sqrt(&sum)?,
        _ => ops::pow(&sum, &Tensor::scalar_of(x.dtype(), 1.0 / p))?,
    };
    let zero = ops::equal(&norm, &Tensor::scalar_of(x.dtype(), 0.0))?;
    let norm = ops::where_(&zero, &ops::ones_like(&norm)?, &norm)?;
    ops::div(&x, &norm)
}
