//! Mask-weighted metrics in `fit`/`evaluate` (Keras 3's `MeanMetricWrapper.update_state`, which
//! reads `y_pred`'s `_keras_mask` and applies it as a sample weight with `apply_mask(...,
//! reduction="sum")`), and the bookkeeping that gets the outputs' masks to the metrics.
//!
//! Keras 3.15, checked with real Keras (tests/keras/fixtures/masks_ref.py): a model whose
//! output carries a mask (`Embedding(mask_zero=True)` → `LSTM(return_sequences=True)` → `Dense`)
//! reports `accuracy` over the kept steps only (4/15 kept steps right, not 9/24 over all steps),
//! and its loss is `Σ mask·loss / Σ mask` per batch (the divisor is the number of kept steps;
//! `models/training.rs`'s `output_mask_weight`). Compiled `metrics=` are not weighted by
//! `sample_weight` (Keras weights only `weighted_metrics=`), but they are weighted by the mask.
//!
//! The traced train/test steps (`models/traced.rs`) return the outputs but not their masks, so
//! a model whose outputs carry a mask runs its steps eagerly when a compiled metric uses the
//! mask (found out on the first step, which runs eagerly whenever such a metric is compiled;
//! models without output masks go back to the traced steps from the second step on).

use ferroflow_core::{ops, DType, Error, Result, Tensor};

use super::Metric;

/// Updates `metric` with one batch, weighting its values by the output's `mask` (a bool
/// `[batch, time, ...]` prefix of `y_pred`'s shape) when the metric uses masks
/// ([`Metric::supports_output_mask`]); otherwise as `update_state(y_true, y_pred, None)`.
/// A mask that is not a prefix of the predictions' shape is an error naming the metric.
///
/// ```
/// use ferroflow_keras::metrics::{update_with_mask, Metric, SparseCategoricalAccuracy};
/// use ferroflow_core::Tensor;
/// let mut acc = SparseCategoricalAccuracy::new();
/// let y = Tensor::from_vec(vec![1i64, 0, 0], &[1, 3])?;
/// let p = Tensor::from_vec(vec![0.2f32, 0.8, 0.9, 0.1, 0.3, 0.7], &[1, 3, 2])?;
/// let mask = Tensor::from_vec(vec![true, true, false], &[1, 3])?;
/// update_with_mask(&mut acc, &y, &p, Some(&mask))?; // the wrong third step is masked
/// assert_eq!(acc.result()?.item::<f32>()?, 1.0);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn update_with_mask(
    metric: &mut dyn Metric,
    y_true: &Tensor,
    y_pred: &Tensor,
    mask: Option<&Tensor>,
) -> Result<()> {
    let Some(mask) = mask.filter(|_| metric.supports_output_mask()) else {
        return metric.update_state(y_true, y_pred, None);
    };
    let (ms, ps) = (mask.shape(), y_pred.shape());
    if ms.len() > ps.len() || ps[..ms.len()] != *ms {
        let name = metric.name().to_string();
        return Err(Error::shape(
            &name,
            format!(
                "metric {name:?}: the output's mask has shape {ms:?}, which does not match the \
                 predictions' leading dimensions {ps:?}"
            ),
            &[ms, ps],
        ));
    }
    let w = ops::cast(mask, DType::F32)?;
    metric.update_state(y_true, y_pred, Some(&w))
}

/// The output masks of the step that just ran (traced or eager), kept for `fit`/`evaluate`'s
/// metric update.
#[derive(Debug, Default)]
pub(crate) struct OutputMaskState {
    last: Option<Vec<Option<Tensor>>>,
}

impl OutputMaskState {
    /// Records the outputs' masks of a step (one entry per output, `None` = unmasked).
    pub(crate) fn record(&mut self, masks: &[Option<Tensor>]) {
        self.last = Some(masks.to_vec());
    }

    /// The masks recorded by the step that just ran.
    pub(crate) fn take(&mut self) -> Vec<Option<Tensor>> {
        self.last.take().unwrap_or_default()
    }
}

/// Updates each output's metrics with the batch (Keras's `compute_metrics`), each weighted by
/// its output's mask where it uses masks (see [`update_with_mask`]); `masks` may be shorter
/// than `outputs` (missing = unmasked).
pub(crate) fn update_output_metrics(
    metrics: &mut [Vec<Box<dyn Metric>>],
    y: &[Tensor],
    outputs: &[Tensor],
    masks: &[Option<Tensor>],
) -> Result<()> {
    for (i, ((ms, out), target)) in metrics.iter_mut().zip(outputs).zip(y).enumerate() {
        let mask = masks.get(i).and_then(Option::as_ref);
        for m in ms.iter_mut() {
            update_with_mask(m.as_mut(), target, out, mask)?;
        }
    }
    Ok(())
}
