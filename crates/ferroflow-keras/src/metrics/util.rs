//! Host-side helpers shared by the metrics: metric state is accumulated in f64 on the host (no
//! gradients flow through metrics), as Keras keeps it in metric variables.

use ferroflow_core::{Error, Result, Tensor};

/// Per-element weights for `len` values laid out as `n` samples of `len / n` values each:
/// `None` → ones; a scalar → that value everywhere; `(n,)` / `(n, 1)` → repeated over each
/// sample's values (Keras broadcasts `sample_weight` to `y_pred`); one weight per value → as is.
pub(crate) fn element_weights(
    name: &str,
    w: Option<&Tensor>,
    n: usize,
    len: usize,
) -> Result<Vec<f64>> {
    let Some(w) = w else {
        return Ok(vec![1.0; len]);
    };
    let v = w.to_f64_vec();
    if v.len() == len {
        return Ok(v);
    }
    if v.len() == 1 {
        return Ok(vec![v[0]; len]);
    }
    if n > 0 && v.len() == n && len.is_multiple_of(n) {
        let per = len / n;
        return Ok(v
            .iter()
            .flat_map(|&x| std::iter::repeat_n(x, per))
            .collect());
    }
    Err(Error::shape(
        name,
        "sample_weight must be a scalar, have one value per sample, or one per prediction",
        &[w.shape(), &[len]],
    ))
}

/// The number of samples (the first dimension; 1 for a scalar).
pub(crate) fn num_samples(t: &Tensor) -> usize {
    t.shape().first().copied().unwrap_or(1)
}

/// Keras's `squeeze_or_expand_dimensions` for element-wise metrics: `y_true` and `y_pred` must
/// hold the same number of values, their shapes equal up to a trailing 1.
pub(crate) fn same_values(name: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
    let strip = |s: &[usize]| -> Vec<usize> {
        let mut s = s.to_vec();
        if s.len() > 1 && s.last() == Some(&1) {
            s.pop();
        }
        s
    };
    if strip(y_true.shape()) != strip(y_pred.shape()) {
        return Err(Error::shape(
            name,
            "y_true and y_pred must have the same shape",
            &[y_true.shape(), y_pred.shape()],
        ));
    }
    Ok(())
}

/// `a / b`, 0 where `b` is 0 (Keras's `divide_no_nan`).
pub(crate) fn div_no_nan(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// A float32 result: a scalar for one value, else a vector.
pub(crate) fn result_tensor(v: &[f64]) -> Result<Tensor> {
    let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    if f.len() == 1 {
        Ok(Tensor::scalar(f[0]))
    } else {
        let n = f.len();
        Tensor::from_vec(f, &[n])
    }
}
