//! Thresholded confusion metrics: `Precision`, `Recall` and `AUC`, with Keras's
//! `update_confusion_matrix_variables` semantics: a prediction is positive when it is strictly
//! greater than the threshold, a label is positive when it is non-zero, and the sample weight
//! multiplies every prediction of its sample.

use ferroflow_core::{Error, Result, Tensor};

use super::util::{div_no_nan, element_weights, num_samples, result_tensor, same_values};
use super::Metric;
use crate::backend::unknown_name;

/// Keras's `NEG_INF` for predictions filtered out by `top_k`.
const NEG_INF: f64 = -1e10;
/// Keras's `backend.epsilon()`.
const EPSILON: f64 = 1e-7;

/// Flattened labels (as bools), predictions and per-value weights, after Keras's `top_k`
/// filtering and `class_id` slicing.
fn prepare(
    name: &str,
    y_true: &Tensor,
    y_pred: &Tensor,
    sample_weight: Option<&Tensor>,
    top_k: Option<usize>,
    class_id: Option<usize>,
) -> Result<(Vec<bool>, Vec<f64>, Vec<f64>)> {
    same_values(name, y_true, y_pred)?;
    let labels: Vec<bool> = y_true.to_f64_vec().iter().map(|&v| v != 0.0).collect();
    let mut pred = y_pred.to_f64_vec();
    let n = num_samples(y_pred);
    let mut w = element_weights(name, sample_weight, n, pred.len())?;
    let classes = if y_pred.rank() == 0 {
        1
    } else {
        y_pred.shape()[y_pred.rank() - 1]
    };
    if let Some(k) = top_k {
        if classes > 0 {
            for row in pred.chunks_mut(classes) {
                // tf.math.top_k: the k largest, the lower index first among equals.
                let mut idx: Vec<usize> = (0..row.len()).collect();
                idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                let keep: Vec<usize> = idx.into_iter().take(k).collect();
                for (j, v) in row.iter_mut().enumerate() {
                    if !keep.contains(&j) {
                        *v = NEG_INF;
                    }
                }
            }
        }
    }
    if let Some(c) = class_id {
        if c >= classes {
            return Err(Error::invalid(
                name,
                format!("class_id {c} is out of range for predictions of shape {:?} ({classes} classes)", y_pred.shape()),
            ));
        }
        let pick = |v: &[f64]| -> Vec<f64> { v.chunks(classes).map(|r| r[c]).collect() };
        let picked_labels = labels.chunks(classes).map(|r| r[c]).collect();
        pred = pick(&pred);
        w = pick(&w);
        return Ok((picked_labels, pred, w));
    }
    Ok((labels, pred, w))
}

/// Weighted true/false positive/negative counts at each threshold.
#[derive(Clone, Debug)]
struct Counts {
    thresholds: Vec<f64>,
    tp: Vec<f64>,
    fp: Vec<f64>,
    tn: Vec<f64>,
    fn_: Vec<f64>,
}

impl Counts {
    fn new(thresholds: Vec<f64>) -> Counts {
        let n = thresholds.len();
        Counts {
            thresholds,
            tp: vec![0.0; n],
            fp: vec![0.0; n],
            tn: vec![0.0; n],
            fn_: vec![0.0; n],
        }
    }

    fn add(&mut self, labels: &[bool], pred: &[f64], w: &[f64]) {
        for ((&l, &p), &w) in labels.iter().zip(pred).zip(w) {
            for (i, &t) in self.thresholds.iter().enumerate() {
                match (l, p > t) {
                    (true, true) => self.tp[i] += w,
                    (true, false) => self.fn_[i] += w,
                    (false, true) => self.fp[i] += w,
                    (false, false) => self.tn[i] += w,
                }
            }
        }
    }

    fn reset(&mut self) {
        *self = Counts::new(std::mem::take(&mut self.thresholds));
    }
}

/// Checks thresholds are in `[0, 1]` as Keras requires.
fn check_thresholds(name: &str, t: &[f64]) -> Result<()> {
    if t.is_empty() || t.iter().any(|x| !(0.0..=1.0).contains(x)) {
        return Err(Error::invalid(
            name,
            format!("thresholds must be in [0, 1] (and at least one), got {t:?}"),
        ));
    }
    Ok(())
}

macro_rules! confusion_metric {
    ($(#[$doc:meta])* $t:ident, $default:literal, |$c:ident, $i:ident| $num:expr, $den:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $t {
            name: String,
            thresholds: Option<Vec<f64>>,
            top_k: Option<usize>,
            class_id: Option<usize>,
            counts: Option<Counts>,
            error: Option<Error>,
        }

        impl $t {
            #[doc = concat!("Threshold 0.5 (`-1e10` with `top_k`), named `", $default, "`.")]
            pub fn new() -> Self {
                $t {
                    name: $default.to_string(),
                    thresholds: None,
                    top_k: None,
                    class_id: None,
                    counts: None,
                    error: None,
                }
            }

            /// One threshold in `[0, 1]`.
            pub fn threshold(self, t: f64) -> Self {
                self.thresholds(&[t])
            }

            /// Several thresholds: `result()` is then a vector, one value per threshold.
            pub fn thresholds(mut self, t: &[f64]) -> Self {
                self.error = check_thresholds(&self.name, t).err();
                self.thresholds = Some(t.to_vec());
                self
            }

            /// Only the `k` highest predictions of each sample can be positive.
            pub fn top_k(mut self, k: usize) -> Self {
                self.top_k = Some(k);
                self
            }

            /// Only this class (last-axis index) is evaluated.
            pub fn class_id(mut self, c: usize) -> Self {
                self.class_id = Some(c);
                self
            }

            /// Another name.
            pub fn named(mut self, name: &str) -> Self {
                self.name = name.to_string();
                self
            }

            fn thresholds_used(&self) -> Vec<f64> {
                match &self.thresholds {
                    Some(t) => t.clone(),
                    None if self.top_k.is_some() => vec![NEG_INF],
                    None => vec![0.5],
                }
            }
        }

        impl Default for $t {
            fn default() -> Self {
                Self::new()
            }
        }

        impl Metric for $t {
            fn name(&self) -> &str {
                &self.name
            }

            fn update_state(
                &mut self,
                y_true: &Tensor,
                y_pred: &Tensor,
                sample_weight: Option<&Tensor>,
            ) -> Result<()> {
                if let Some(e) = &self.error {
                    return Err(e.clone());
                }
                let (l, p, w) =
                    prepare(&self.name, y_true, y_pred, sample_weight, self.top_k, self.class_id)?;
                let t = self.thresholds_used();
                self.counts.get_or_insert_with(|| Counts::new(t)).add(&l, &p, &w);
                Ok(())
            }

            fn result(&self) -> Result<Tensor> {
                let fresh;
                let $c = match &self.counts {
                    Some(c) => c,
                    None => {
                        fresh = Counts::new(self.thresholds_used());
                        &fresh
                    }
                };
                let v: Vec<f64> = (0..$c.thresholds.len())
                    .map(|$i| div_no_nan($num, $den))
                    .collect();
                result_tensor(&v)
            }

            fn reset_state(&mut self) {
                if let Some(c) = &mut self.counts {
                    c.reset();
                }
            }
        }
    };
}

confusion_metric!(
    /// `keras.metrics.Precision(thresholds=None, top_k=None, class_id=None)`:
    /// `tp / (tp + fp)` over everything seen (0 when nothing was predicted positive). With
    /// several thresholds the result is a vector.
    ///
    /// ```
    /// use ferroflow_keras::metrics::{Metric, Precision};
    /// use ferroflow_core::Tensor;
    /// let mut m = Precision::new();
    /// let y = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 1.0], &[4])?;
    /// let p = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 1.0], &[4])?;
    /// m.update_state(&y, &p, None)?;
    /// assert!((m.result()?.item::<f32>()? - 2.0 / 3.0).abs() < 1e-6);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    Precision,
    "precision",
    |c, i| c.tp[i],
    c.tp[i] + c.fp[i]
);

confusion_metric!(
    /// `keras.metrics.Recall(thresholds=None, top_k=None, class_id=None)`: `tp / (tp + fn)` over
    /// everything seen (0 when there was no positive label). With several thresholds the result
    /// is a vector.
    Recall,
    "recall",
    |c, i| c.tp[i],
    c.tp[i] + c.fn_[i]
);

/// The curve `AUC` integrates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AucCurve {
    /// Receiver operating characteristic: recall against false-positive rate (the default).
    Roc,
    /// Precision against recall.
    Pr,
}

/// How `AUC` sums the area between thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AucSummation {
    /// Trapezoids for ROC; Davis & Goadrich's interpolation of the PR curve (the default).
    Interpolation,
    /// The lower of the two heights.
    Minoring,
    /// The higher of the two heights.
    Majoring,
}

/// `keras.metrics.AUC(num_thresholds=200, curve='ROC', summation_method='interpolation')`: the
/// area under the ROC or PR curve, approximated by a Riemann sum over thresholds
/// `[-1e-7, 1/(n-1), ..., (n-2)/(n-1), 1 + 1e-7]`. Predictions are clipped to `[0, 1]` (as
/// Keras's evenly-spaced fast path does); labels are positive when non-zero. With
/// `multi_label`, one AUC per label column is computed and averaged.
///
/// ```
/// use ferroflow_keras::metrics::{Metric, AUC};
/// use ferroflow_core::Tensor;
/// // Keras's documented example.
/// let mut m = AUC::new().num_thresholds(3);
/// let y = Tensor::from_vec(vec![0.0f32, 0.0, 1.0, 1.0], &[4])?;
/// let p = Tensor::from_vec(vec![0.0f32, 0.5, 0.3, 0.9], &[4])?;
/// m.update_state(&y, &p, None)?;
/// assert!((m.result()?.item::<f32>()? - 0.75).abs() < 1e-6);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct AUC {
    name: String,
    curve: AucCurve,
    summation: AucSummation,
    from_logits: bool,
    multi_label: bool,
    label_weights: Option<Vec<f64>>,
    counts: Counts,
    per_label: Vec<Counts>,
    error: Option<Error>,
}

impl AUC {
    /// 200 thresholds, ROC, interpolation; named `auc`.
    pub fn new() -> Self {
        AUC {
            name: "auc".to_string(),
            curve: AucCurve::Roc,
            summation: AucSummation::Interpolation,
            from_logits: false,
            multi_label: false,
            label_weights: None,
            counts: Counts::new(Self::even_thresholds(200)),
            per_label: Vec::new(),
            error: None,
        }
    }

    fn even_thresholds(n: usize) -> Vec<f64> {
        let mut t = vec![0.0 - EPSILON];
        t.extend((0..n.saturating_sub(2)).map(|i| (i + 1) as f64 / (n - 1) as f64));
        t.push(1.0 + EPSILON);
        t
    }

    /// The number of thresholds (more than 1).
    pub fn num_thresholds(mut self, n: usize) -> Self {
        if n <= 1 {
            self.error = Some(Error::invalid(
                &self.name,
                format!("num_thresholds must be an integer > 1, got {n}"),
            ));
        }
        self.counts = Counts::new(Self::even_thresholds(n.max(2)));
        self
    }

    /// Explicit thresholds in `[0, 1]` (sorted; `-1e-7` and `1 + 1e-7` are added as Keras does).
    pub fn thresholds(mut self, t: &[f64]) -> Self {
        self.error = check_thresholds(&self.name, t).err();
        let mut t = t.to_vec();
        t.sort_by(f64::total_cmp);
        let mut all = vec![0.0 - EPSILON];
        all.extend(t);
        all.push(1.0 + EPSILON);
        self.counts = Counts::new(all);
        self
    }

    /// `curve="ROC"` or `"PR"` (case-insensitive); another name is an error at `update_state`.
    pub fn curve(mut self, curve: &str) -> Self {
        match curve.to_ascii_uppercase().as_str() {
            "ROC" => self.curve = AucCurve::Roc,
            "PR" => self.curve = AucCurve::Pr,
            _ => self.error = Some(unknown_name("AUC curve", curve, &["ROC", "PR"])),
        }
        self
    }

    /// `summation_method="interpolation"`, `"minoring"` or `"majoring"`.
    pub fn summation_method(mut self, m: &str) -> Self {
        match m.to_ascii_lowercase().as_str() {
            "interpolation" => self.summation = AucSummation::Interpolation,
            "minoring" => self.summation = AucSummation::Minoring,
            "majoring" => self.summation = AucSummation::Majoring,
            _ => {
                self.error = Some(unknown_name(
                    "AUC summation_method",
                    m,
                    &["interpolation", "minoring", "majoring"],
                ))
            }
        }
        self
    }

    /// Predictions are logits (a sigmoid is applied first).
    pub fn from_logits(mut self, yes: bool) -> Self {
        self.from_logits = yes;
        self
    }

    /// `multi_label=True`: `(batch, labels)` data is not flattened; one AUC is computed per
    /// label (column) and the result is their mean (weighted by `label_weights` if given).
    pub fn multi_label(mut self, yes: bool) -> Self {
        self.multi_label = yes;
        self
    }

    /// Non-negative weights per label: with `multi_label` they weight the per-label AUCs in the
    /// mean; without it they multiply the weight of each label's predictions, as in Keras.
    pub fn label_weights(mut self, w: &[f64]) -> Self {
        if w.iter().any(|&x| x < 0.0) {
            self.error = Some(Error::invalid(
                &self.name,
                format!("all values of label_weights must be non-negative, got {w:?}"),
            ));
        }
        self.label_weights = Some(w.to_vec());
        self
    }

    /// Another name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The thresholds used (with Keras's end points).
    pub fn thresholds_used(&self) -> &[f64] {
        &self.counts.thresholds
    }

    /// Keras's `interpolate_pr_auc` (Davis & Goadrich 2006): TP and P = TP + FP vary linearly
    /// between thresholds, precision is integrated in closed form.
    fn interpolate_pr_auc(c: &Counts) -> f64 {
        let n = c.thresholds.len();
        let p: Vec<f64> = (0..n).map(|i| c.tp[i] + c.fp[i]).collect();
        let mut auc = 0.0;
        for i in 0..n - 1 {
            let dtp = c.tp[i] - c.tp[i + 1];
            let dp = p[i] - p[i + 1];
            let slope = div_no_nan(dtp, dp.max(0.0));
            let intercept = c.tp[i + 1] - slope * p[i + 1];
            let ratio = if p[i] > 0.0 && p[i + 1] > 0.0 {
                div_no_nan(p[i], p[i + 1].max(0.0))
            } else {
                1.0
            };
            auc += div_no_nan(
                slope * (dtp + intercept * ratio.ln()),
                (c.tp[i + 1] + c.fn_[i + 1]).max(0.0),
            );
        }
        auc
    }
}

impl AUC {
    /// The area under the curve of one set of counts.
    fn auc_of(&self, c: &Counts) -> f64 {
        if self.curve == AucCurve::Pr && self.summation == AucSummation::Interpolation {
            return Self::interpolate_pr_auc(c);
        }
        let n = c.thresholds.len();
        let recall: Vec<f64> = (0..n)
            .map(|i| div_no_nan(c.tp[i], c.tp[i] + c.fn_[i]))
            .collect();
        let (x, y) = match self.curve {
            AucCurve::Roc => (
                (0..n)
                    .map(|i| div_no_nan(c.fp[i], c.fp[i] + c.tn[i]))
                    .collect::<Vec<_>>(),
                recall,
            ),
            AucCurve::Pr => (
                recall,
                (0..n)
                    .map(|i| div_no_nan(c.tp[i], c.tp[i] + c.fp[i]))
                    .collect(),
            ),
        };
        let mut auc = 0.0;
        for i in 0..n - 1 {
            let h = match self.summation {
                AucSummation::Interpolation => (y[i] + y[i + 1]) / 2.0,
                AucSummation::Minoring => y[i].min(y[i + 1]),
                AucSummation::Majoring => y[i].max(y[i + 1]),
            };
            auc += (x[i] - x[i + 1]) * h;
        }
        auc
    }
}

impl Default for AUC {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for AUC {
    fn name(&self) -> &str {
        &self.name
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let (l, mut p, mut w) = prepare(&self.name, y_true, y_pred, sample_weight, None, None)?;
        for v in p.iter_mut() {
            if self.from_logits {
                *v = 1.0 / (1.0 + (-*v).exp());
            }
            *v = v.clamp(0.0, 1.0);
        }
        let labels = if y_pred.rank() == 0 {
            1
        } else {
            y_pred.shape()[y_pred.rank() - 1]
        };
        if let Some(lw) = &self.label_weights {
            if lw.len() != labels {
                return Err(Error::shape(
                    &self.name,
                    "label_weights must have one value per label (the last axis of y_pred)",
                    &[&[lw.len()], y_pred.shape()],
                ));
            }
        }
        if !self.multi_label {
            if let Some(lw) = &self.label_weights {
                for (i, w) in w.iter_mut().enumerate() {
                    *w *= lw[i % labels];
                }
            }
            self.counts.add(&l, &p, &w);
            return Ok(());
        }
        if y_pred.rank() != 2 {
            return Err(Error::shape(
                &self.name,
                "y_pred must have rank 2 when multi_label=True",
                &[y_pred.shape()],
            ));
        }
        if self.per_label.is_empty() {
            self.per_label = vec![self.counts.clone(); labels];
        } else if self.per_label.len() != labels {
            return Err(Error::shape(
                &self.name,
                format!("the number of labels changed from {}", self.per_label.len()),
                &[y_pred.shape()],
            ));
        }
        for (j, c) in self.per_label.iter_mut().enumerate() {
            let col =
                |v: &[f64]| -> Vec<f64> { v.iter().skip(j).step_by(labels).copied().collect() };
            let lc: Vec<bool> = l.iter().skip(j).step_by(labels).copied().collect();
            c.add(&lc, &col(&p), &col(&w));
        }
        Ok(())
    }

    fn result(&self) -> Result<Tensor> {
        if !self.multi_label {
            return Ok(Tensor::scalar(self.auc_of(&self.counts) as f32));
        }
        let aucs: Vec<f64> = self.per_label.iter().map(|c| self.auc_of(c)).collect();
        let v = match &self.label_weights {
            Some(lw) => div_no_nan(
                aucs.iter().zip(lw).map(|(a, w)| a * w).sum(),
                lw.iter().take(aucs.len()).sum(),
            ),
            None if aucs.is_empty() => 0.0,
            None => aucs.iter().sum::<f64>() / aucs.len() as f64,
        };
        Ok(Tensor::scalar(v as f32))
    }

    fn reset_state(&mut self) {
        self.counts.reset();
        for c in &mut self.per_label {
            c.reset();
        }
    }
}
