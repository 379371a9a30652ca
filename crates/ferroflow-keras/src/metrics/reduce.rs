//! Reducing metrics: `Mean`, `Sum`, and `MeanMetricWrapper` (the mean of a per-sample function).

use std::sync::Arc;

use ferroflow_core::{ops, DType, Error, Result, Tensor};

use super::Metric;

/// Per-sample weights as f64s for `n` samples (`None` → all ones); `(n,)` or `(n, 1)`.
pub(crate) fn sample_weights(name: &str, w: Option<&Tensor>, n: usize) -> Result<Vec<f64>> {
    match w {
        None => Ok(vec![1.0; n]),
        Some(w) => {
            let v = w.to_f64_vec();
            if v.len() != n {
                return Err(Error::shape(
                    name,
                    "sample_weight must have one value per sample",
                    &[w.shape(), &[n]],
                ));
            }
            Ok(v)
        }
    }
}

/// `keras.metrics.Mean`: the weighted mean of all values seen.
#[derive(Clone, Debug)]
pub struct Mean {
    name: String,
    total: f64,
    count: f64,
}

impl Mean {
    /// A mean named `name`.
    pub fn new(name: &str) -> Mean {
        Mean {
            name: name.to_string(),
            total: 0.0,
            count: 0.0,
        }
    }

    /// Adds `values` (any shape) with optional weights of the same number of elements.
    ///
    /// Per-sample weights for values with more axes (`(n,)` weights, `(n, t)` values) first
    /// average the values over their trailing axes, as Keras's `reduce_to_samplewise_values`.
    pub fn update(&mut self, values: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
        let mut v = values.to_f64_vec();
        if let Some(w) = sample_weight {
            let nw = w.num_elements();
            if nw > 0 && nw != v.len() && values.rank() >= 1 && values.shape()[0] == nw {
                let per = v.len() / nw;
                v = v
                    .chunks(per)
                    .map(|c| c.iter().sum::<f64>() / per as f64)
                    .collect();
            }
        }
        let w = sample_weights(&self.name, sample_weight, v.len())?;
        for (x, w) in v.iter().zip(&w) {
            self.total += x * w;
            self.count += w;
        }
        Ok(())
    }

    /// Adds one value with a weight (how `fit` averages batch losses by batch size).
    pub fn update_value(&mut self, value: f64, weight: f64) {
        self.total += value * weight;
        self.count += weight;
    }

    /// The mean as an f64 (0 before any update).
    pub fn value(&self) -> f64 {
        if self.count == 0.0 {
            0.0
        } else {
            self.total / self.count
        }
    }
}

impl Metric for Mean {
    fn name(&self) -> &str {
        &self.name
    }

    /// `y_true` is ignored; `y_pred` are the values (Keras's `Mean.update_state(values)`).
    fn update_state(
        &mut self,
        _y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        self.update(y_pred, sample_weight)
    }

    fn result(&self) -> Result<Tensor> {
        Ok(Tensor::scalar(self.value() as f32))
    }

    fn reset_state(&mut self) {
        self.total = 0.0;
        self.count = 0.0;
    }
}

/// `keras.metrics.Sum`: the weighted sum of all values seen.
#[derive(Clone, Debug)]
pub struct Sum {
    name: String,
    total: f64,
}

impl Sum {
    /// A sum named `name`.
    pub fn new(name: &str) -> Sum {
        Sum {
            name: name.to_string(),
            total: 0.0,
        }
    }
}

impl Metric for Sum {
    fn name(&self) -> &str {
        &self.name
    }

    fn update_state(
        &mut self,
        _y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        let v = y_pred.to_f64_vec();
        let w = sample_weights(&self.name, sample_weight, v.len())?;
        self.total += v.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>();
        Ok(())
    }

    fn result(&self) -> Result<Tensor> {
        Ok(Tensor::scalar(self.total as f32))
    }

    fn reset_state(&mut self) {
        self.total = 0.0;
    }
}

/// A per-sample metric function: `(y_true, y_pred) -> values of shape (batch,)`.
pub type MetricFn = Arc<dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync>;

/// `keras.metrics.MeanMetricWrapper`: the weighted mean over samples of a per-sample function.
#[derive(Clone)]
pub struct MeanMetricWrapper {
    mean: Mean,
    f: MetricFn,
}

impl MeanMetricWrapper {
    /// Wraps `f` under `name`.
    pub fn new(
        name: &str,
        f: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
    ) -> MeanMetricWrapper {
        MeanMetricWrapper {
            mean: Mean::new(name),
            f: Arc::new(f),
        }
    }
}

impl Metric for MeanMetricWrapper {
    fn name(&self) -> &str {
        self.mean.name()
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        let values = (self.f)(y_true, y_pred)?;
        let values = ops::cast(&values, DType::F64)?;
        self.mean.update(&values, sample_weight)
    }

    fn result(&self) -> Result<Tensor> {
        self.mean.result()
    }

    fn reset_state(&mut self) {
        self.mean.reset_state();
    }

    fn supports_output_mask(&self) -> bool {
        true
    }
}
