//! `ConfusionMatrix`: `tf.math.confusion_matrix`, accumulated over batches.

use ferroflow_core::{Error, Result, Tensor};

use super::reduce::sample_weights;
use super::Metric;

/// An accumulated confusion matrix, as `tf.math.confusion_matrix(labels, predictions,
/// num_classes, weights)` summed over every batch: entry `[i, j]` is the (weighted) number of
/// samples of label `i` predicted as `j`. `y_true` holds integer class ids (`(n,)` or `(n, 1)`);
/// `y_pred` holds class ids of the same shape, or scores `(n, num_classes)` whose `argmax` is
/// taken. A class id outside `[0, num_classes)` is an error, as in TensorFlow. The result is a
/// float32 `(num_classes, num_classes)` tensor (float so that weights can be fractional).
///
/// ```
/// use ferroflow_keras::metrics::{ConfusionMatrix, Metric};
/// use ferroflow_core::Tensor;
/// let mut m = ConfusionMatrix::new(3);
/// let y = Tensor::from_vec(vec![0i64, 1, 2, 2], &[4])?;
/// let p = Tensor::from_vec(vec![0i64, 2, 2, 1], &[4])?;
/// m.update_state(&y, &p, None)?;
/// assert_eq!(m.result()?.to_vec::<f32>()?, vec![1., 0., 0., 0., 0., 1., 0., 1., 1.]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConfusionMatrix {
    name: String,
    num_classes: usize,
    counts: Vec<f64>,
}

impl ConfusionMatrix {
    /// A `num_classes × num_classes` matrix named `confusion_matrix`.
    pub fn new(num_classes: usize) -> Self {
        ConfusionMatrix {
            name: "confusion_matrix".to_string(),
            num_classes,
            counts: vec![0.0; num_classes * num_classes],
        }
    }

    /// Another name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    fn class_id(&self, what: &str, v: f64) -> Result<usize> {
        if v < 0.0 || v.fract() != 0.0 || v >= self.num_classes as f64 {
            return Err(Error::invalid(
                &self.name,
                format!(
                    "{what} {v} is not a class id in [0, {}) (num_classes={})",
                    self.num_classes, self.num_classes
                ),
            ));
        }
        Ok(v as usize)
    }
}

impl Metric for ConfusionMatrix {
    fn name(&self) -> &str {
        &self.name
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        let labels = y_true.to_f64_vec();
        let n = labels.len();
        let p = y_pred.to_f64_vec();
        let preds: Vec<f64> = if p.len() == n {
            p
        } else if y_pred.rank() >= 2
            && y_pred.shape()[y_pred.rank() - 1] == self.num_classes
            && p.len() == n * self.num_classes
        {
            p.chunks(self.num_classes.max(1))
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .fold((0usize, f64::NEG_INFINITY), |(bi, bv), (j, &v)| {
                            if v > bv {
                                (j, v)
                            } else {
                                (bi, bv)
                            }
                        })
                        .0 as f64
                })
                .collect()
        } else {
            return Err(Error::shape(
                &self.name,
                format!(
                    "predictions must be class ids shaped like the labels, or scores (n, {})",
                    self.num_classes
                ),
                &[y_true.shape(), y_pred.shape()],
            ));
        };
        let w = sample_weights(&self.name, sample_weight, n)?;
        // Validate everything before accumulating, so an error leaves the state untouched.
        let mut cells = Vec::with_capacity(n);
        for (l, p) in labels.iter().zip(&preds) {
            cells.push((
                self.class_id("label", *l)?,
                self.class_id("prediction", *p)?,
            ));
        }
        for ((i, j), w) in cells.into_iter().zip(w) {
            self.counts[i * self.num_classes + j] += w;
        }
        Ok(())
    }

    fn result(&self) -> Result<Tensor> {
        let v: Vec<f32> = self.counts.iter().map(|&x| x as f32).collect();
        Tensor::from_vec(v, &[self.num_classes, self.num_classes])
    }

    fn reset_state(&mut self) {
        self.counts.iter_mut().for_each(|x| *x = 0.0);
    }
}
