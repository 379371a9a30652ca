//! `TopKCategoricalAccuracy` and `SparseTopKCategoricalAccuracy`.

use ferroflow_core::{Error, Result, Tensor};

use super::reduce::{sample_weights, Mean};
use super::Metric;

/// TensorFlow's `in_top_k` for one row: the target is in the top `k` when fewer than `k`
/// predictions are strictly greater than its own (so ties at the boundary count as in), and its
/// prediction is finite.
fn in_top_k(row: &[f64], target: usize, k: usize) -> bool {
    let Some(&t) = row.get(target) else {
        return false;
    };
    t.is_finite() && row.iter().filter(|&&x| x > t).count() < k
}

/// Rows of the predictions: `(batch..., classes)` flattened to `(n, classes)`.
fn pred_rows(name: &str, y_pred: &Tensor) -> Result<(Vec<f64>, usize, usize)> {
    if y_pred.rank() < 2 {
        return Err(Error::shape(
            name,
            "y_pred must have a class axis: (batch, num_classes)",
            &[y_pred.shape()],
        ));
    }
    let c = y_pred.shape()[y_pred.rank() - 1];
    let v = y_pred.to_f64_vec();
    let n = v.len().checked_div(c).unwrap_or(0);
    Ok((v, n, c))
}

/// `keras.metrics.TopKCategoricalAccuracy(k=5)`: how often the one-hot target's class
/// (`argmax(y_true)`) is among the `k` highest predictions (TensorFlow's `in_top_k`: ties at the
/// boundary count as in), sample-weighted and accumulated.
///
/// ```
/// use ferroflow_keras::metrics::{Metric, TopKCategoricalAccuracy};
/// use ferroflow_core::Tensor;
/// let mut m = TopKCategoricalAccuracy::new().k(1);
/// let y = Tensor::from_vec(vec![0.0f32, 0.0, 1.0, 0.0, 1.0, 0.0], &[2, 3])?;
/// let p = Tensor::from_vec(vec![0.1f32, 0.9, 0.8, 0.05, 0.95, 0.0], &[2, 3])?;
/// m.update_state(&y, &p, None)?;
/// assert_eq!(m.result()?.item::<f32>()?, 0.5);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TopKCategoricalAccuracy {
    mean: Mean,
    k: usize,
}

impl TopKCategoricalAccuracy {
    /// `k = 5`, named `top_k_categorical_accuracy`.
    pub fn new() -> Self {
        TopKCategoricalAccuracy {
            mean: Mean::new("top_k_categorical_accuracy"),
            k: 5,
        }
    }

    /// How many top predictions count.
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Another name.
    pub fn named(mut self, name: &str) -> Self {
        self.mean = Mean::new(name);
        self
    }
}

impl Default for TopKCategoricalAccuracy {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for TopKCategoricalAccuracy {
    fn name(&self) -> &str {
        self.mean.name()
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        let name = self.mean.name().to_string();
        if y_true.shape() != y_pred.shape() {
            return Err(Error::shape(
                &name,
                "one-hot labels must have the predictions' shape",
                &[y_true.shape(), y_pred.shape()],
            ));
        }
        let (p, n, c) = pred_rows(&name, y_pred)?;
        let t = y_true.to_f64_vec();
        let w = sample_weights(&name, sample_weight, n)?;
        for (i, w) in w.iter().enumerate() {
            let row = &t[i * c..(i + 1) * c];
            // argmax, first maximum on ties (as ops.argmax).
            let target = row
                .iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |(bi, bv), (j, &v)| {
                    if v > bv {
                        (j, v)
                    } else {
                        (bi, bv)
                    }
                })
                .0;
            let hit = in_top_k(&p[i * c..(i + 1) * c], target, self.k);
            self.mean.update_value(if hit { 1.0 } else { 0.0 }, *w);
        }
        Ok(())
    }

    fn result(&self) -> Result<Tensor> {
        self.mean.result()
    }

    fn reset_state(&mut self) {
        self.mean.reset_state();
    }

    /// A Keras `MeanMetricWrapper`: weighted by the output's mask.
    fn supports_output_mask(&self) -> bool {
        true
    }
}

/// `keras.metrics.SparseTopKCategoricalAccuracy(k=5)`: how often the integer label is among the
/// `k` highest predictions (labels of shape `(n,)` or `(n, 1)`), sample-weighted and accumulated.
/// A label outside `[0, num_classes)` counts as a miss (TensorFlow's `in_top_k`).
#[derive(Clone, Debug)]
pub struct SparseTopKCategoricalAccuracy {
    mean: Mean,
    k: usize,
}

impl SparseTopKCategoricalAccuracy {
    /// `k = 5`, named `sparse_top_k_categorical_accuracy`.
    pub fn new() -> Self {
        SparseTopKCategoricalAccuracy {
            mean: Mean::new("sparse_top_k_categorical_accuracy"),
            k: 5,
        }
    }

    /// How many top predictions count.
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Another name.
    pub fn named(mut self, name: &str) -> Self {
        self.mean = Mean::new(name);
        self
    }
}

impl Default for SparseTopKCategoricalAccuracy {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for SparseTopKCategoricalAccuracy {
    fn name(&self) -> &str {
        self.mean.name()
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        let name = self.mean.name().to_string();
        let (p, n, c) = pred_rows(&name, y_pred)?;
        let t = y_true.to_f64_vec();
        if t.len() != n {
            return Err(Error::shape(
                &name,
                "labels must have one integer class id per row of predictions",
                &[y_true.shape(), y_pred.shape()],
            ));
        }
        let w = sample_weights(&name, sample_weight, n)?;
        for (i, (label, w)) in t.iter().zip(&w).enumerate() {
            let hit = *label >= 0.0
                && label.fract() == 0.0
                && in_top_k(&p[i * c..(i + 1) * c], *label as usize, self.k);
            self.mean.update_value(if hit { 1.0 } else { 0.0 }, *w);
        }
        Ok(())
    }

    fn result(&self) -> Result<Tensor> {
        self.mean.result()
    }

    fn reset_state(&mut self) {
        self.mean.reset_state();
    }

    /// A Keras `MeanMetricWrapper`: weighted by the output's mask.
    fn supports_output_mask(&self) -> bool {
        true
    }
}
