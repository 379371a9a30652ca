//! The cross-entropy losses: `BinaryCrossentropy`, `CategoricalCrossentropy` and
//! `SparseCategoricalCrossentropy`.
//!
//! From probabilities, as Keras's TensorFlow backend, predictions are clipped to `[ε, 1-ε]`
//! (`ε = 1e-7`), so a confident wrong prediction costs at most `-ln 1e-7 ≈ 16.118`. When `y_pred`
//! came from a `sigmoid`/`softmax` activation ([`crate::activations::keras_logits`]), the loss is
//! computed from its logits instead — exactly, without clipping (Keras's `_keras_logits`).

use ferroflow_core::{ops, DType, Error, Result, Tensor};

use super::shapes::{align, logits_of, norm_axis, one_minus};
use super::{Loss, Reduction};
use crate::activations::LogitsKind;
use crate::backend::EPSILON;

/// `keras.losses.BinaryCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1)`:
/// `-(y·log p + (1-y)·log(1-p))` with `p` clipped to `[1e-7, 1-1e-7]`, then averaged over `axis`.
///
/// With `from_logits`, or when `y_pred` is a `sigmoid` activation's output, it is
/// `sigmoid_cross_entropy_with_logits` on the logits (no clipping). Label smoothing replaces `y`
/// by `y·(1-s) + s/2`.
///
/// ```
/// use ferroflow_keras::losses::{BinaryCrossentropy, Loss};
/// use ferroflow_core::Tensor;
/// let y = Tensor::from_vec(vec![1.0f64, 0.0], &[1, 2])?;
/// let p = Tensor::from_vec(vec![0.5f64, 0.5], &[1, 2])?;
/// let bce = BinaryCrossentropy::new().call(&y, &p)?.to_vec::<f64>()?;
/// assert!((bce[0] - std::f64::consts::LN_2).abs() < 1e-12);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BinaryCrossentropy {
    /// Whether `y_pred` holds logits (Keras's `from_logits=False`).
    pub from_logits: bool,
    /// Label smoothing in `[0, 1]` (Keras's `label_smoothing=0.0`).
    pub label_smoothing: f64,
    /// The axis averaged over (Keras's `axis=-1`).
    pub axis: isize,
    /// The reduction.
    pub reduction: Reduction,
}

impl Default for BinaryCrossentropy {
    fn default() -> Self {
        BinaryCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
            axis: -1,
            reduction: Reduction::default(),
        }
    }
}

impl BinaryCrossentropy {
    /// `keras.losses.BinaryCrossentropy()` with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// `from_logits=True` or not.
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// Sets `label_smoothing`.
    pub fn label_smoothing(mut self, label_smoothing: f64) -> Self {
        self.label_smoothing = label_smoothing;
        self
    }

    /// Sets the axis averaged over.
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// Sets the reduction (Keras's `reduction=`).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// Checks `label_smoothing` is in `[0, 1]`.
fn check_smoothing(name: &str, s: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&s) {
        return Err(Error::invalid(
            name,
            format!("label_smoothing must be in [0, 1], got {s}"),
        ));
    }
    Ok(())
}

impl Loss for BinaryCrossentropy {
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({"from_logits": self.from_logits})
    }

    fn name(&self) -> &str {
        "binary_crossentropy"
    }

    fn reduction(&self) -> Reduction {
        self.reduction
    }
    fn clone_loss(&self) -> Option<Box<dyn Loss>> {
        Some(Box::new(self.clone()))
    }

    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let name = self.name();
        check_smoothing(name, self.label_smoothing)?;
        let (x, from_logits) = logits_of(y_pred, self.from_logits, LogitsKind::Sigmoid);
        let (mut y, x) = align(name, y_true, &x)?;
        let axis = norm_axis(name, self.axis, x.rank())? as isize;
        let s = self.label_smoothing;
        if s != 0.0 {
            y = ops::add_scalar(&ops::mul_scalar(&y, 1.0 - s)?, 0.5 * s)?;
        }
        let per = if from_logits {
            ops::sigmoid_cross_entropy_with_logits(&y, &x)?
        } else {
            let p = ops::clip_by_value_scalar(&x, EPSILON, 1.0 - EPSILON)?;
            let pos = ops::mul(&y, &ops::log(&p)?)?;
            let neg = ops::mul(&one_minus(&y)?, &ops::log(&one_minus(&p)?)?)?;
            ops::neg(&ops::add(&pos, &neg)?)?
        };
        ops::reduce_mean(&per, axis, false)
    }
}

/// `keras.losses.CategoricalCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1)`:
/// one-hot (or soft) labels against class probabilities along `axis`.
///
/// From probabilities, as Keras's TensorFlow backend: `p /= Σp` along `axis`, clip to
/// `[1e-7, 1-1e-7]`, `-Σ y·log p`. With `from_logits`, or when `y_pred` is a `softmax`
/// activation's output (over the last axis, which `axis` must then be), it is
/// `softmax_cross_entropy_with_logits` on the logits — exact even when saturated. Label smoothing
/// replaces `y` by `y·(1-s) + s/num_classes`, `num_classes` being the size of the last axis (as
/// Keras, whatever `axis` is).
///
/// ```
/// use ferroflow_keras::losses::{CategoricalCrossentropy, Loss};
/// use ferroflow_core::Tensor;
/// let y = Tensor::from_vec(vec![0.0f64, 1.0], &[1, 2])?;
/// let p = Tensor::from_vec(vec![0.75f64, 0.25], &[1, 2])?;
/// let cce = CategoricalCrossentropy::new().call(&y, &p)?.to_vec::<f64>()?;
/// assert!((cce[0] - 4f64.ln()).abs() < 1e-12);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CategoricalCrossentropy {
    /// Whether `y_pred` holds logits (Keras's `from_logits=False`).
    pub from_logits: bool,
    /// Label smoothing in `[0, 1]` (Keras's `label_smoothing=0.0`).
    pub label_smoothing: f64,
    /// The class axis (Keras's `axis=-1`).
    pub axis: isize,
    /// The reduction.
    pub reduction: Reduction,
}

impl Default for CategoricalCrossentropy {
    fn default() -> Self {
        CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
            axis: -1,
            reduction: Reduction::default(),
        }
    }
}

impl CategoricalCrossentropy {
    /// `keras.losses.CategoricalCrossentropy()` with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// `from_logits=True` or not.
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// Sets `label_smoothing`.
    pub fn label_smoothing(mut self, label_smoothing: f64) -> Self {
        self.label_smoothing = label_smoothing;
        self
    }

    /// Sets the class axis.
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// Sets the reduction (Keras's `reduction=`).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

impl Loss for CategoricalCrossentropy {
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({"from_logits": self.from_logits})
    }

    fn name(&self) -> &str {
        "categorical_crossentropy"
    }

    fn reduction(&self) -> Reduction {
        self.reduction
    }
    fn clone_loss(&self) -> Option<Box<dyn Loss>> {
        Some(Box::new(self.clone()))
    }

    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let name = self.name();
        check_smoothing(name, self.label_smoothing)?;
        let axis = norm_axis(name, self.axis, y_pred.rank())?;
        let (x, from_logits) = if axis + 1 == y_pred.rank() {
            logits_of(y_pred, self.from_logits, LogitsKind::Softmax)
        } else {
            (y_pred.clone(), self.from_logits)
        };
        let (mut y, x) = align(name, y_true, &x)?;
        if x.rank() != y_pred.rank() {
            return Err(Error::shape(
                name,
                "y_true and y_pred must have the same shape",
                &[y_true.shape(), y_pred.shape()],
            ));
        }
        let s = self.label_smoothing;
        if s != 0.0 {
            let classes = *x.shape().last().unwrap_or(&1) as f64;
            y = ops::add_scalar(&ops::mul_scalar(&y, 1.0 - s)?, s / classes)?;
        }
        let axis = axis as isize;
        if from_logits {
            ops::softmax_cross_entropy_with_logits(&y, &x, axis)
        } else {
            let p = ops::div(&x, &ops::reduce_sum(&x, axis, true)?)?;
            let p = ops::clip_by_value_scalar(&p, EPSILON, 1.0 - EPSILON)?;
            ops::neg(&ops::reduce_sum(
                &ops::mul(&y, &ops::log(&p)?)?,
                axis,
                false,
            )?)
        }
    }
}

/// `keras.losses.SparseCategoricalCrossentropy(from_logits=False, ignore_class=None)`: integer
/// class labels of shape `(batch,)` or `(batch, 1)` against class scores `(batch, classes)`.
///
/// From probabilities it computes, as Keras's TensorFlow backend, `log(clip(p, ε, 1-ε))` and the
/// softmax cross-entropy of that (which also normalises rows that do not sum to 1). When `y_pred`
/// came from a `softmax` activation, the loss uses its logits instead — exact, without clipping
/// (Keras's `_keras_logits`).
///
/// With `ignore_class`, samples of that label get loss 0 and, as Keras's loss mask, are left out
/// of the `sum_over_batch_size` average (see [`Loss::compute`]).
///
/// ```
/// use ferroflow_keras::losses::{Loss, SparseCategoricalCrossentropy};
/// use ferroflow_core::Tensor;
/// let labels = Tensor::from_vec(vec![1i64], &[1])?;
/// let p = Tensor::from_vec(vec![0.5f64, 0.5], &[1, 2])?;
/// let l = SparseCategoricalCrossentropy::new().call(&labels, &p)?.to_vec::<f64>()?;
/// assert!((l[0] - std::f64::consts::LN_2).abs() < 1e-12);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct SparseCategoricalCrossentropy {
    /// Whether `y_pred` holds logits.
    pub from_logits: bool,
    /// A label whose samples are ignored (Keras's `ignore_class=None`).
    pub ignore_class: Option<i64>,
    /// The reduction.
    pub reduction: Reduction,
}

impl SparseCategoricalCrossentropy {
    /// With Keras's defaults (`from_logits=False`, `ignore_class=None`).
    pub fn new() -> Self {
        Self::default()
    }

    /// `from_logits=True` or not.
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// Sets `ignore_class` (e.g. `-1` or a padding class in segmentation).
    pub fn ignore_class(mut self, class: i64) -> Self {
        self.ignore_class = Some(class);
        self
    }

    /// Sets the reduction (Keras's `reduction=`).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The per-sample losses and, with `ignore_class`, the validity mask (1.0 valid / 0.0).
    fn losses_and_mask(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let name = self.name();
        if !y_pred.dtype().is_float() || y_pred.rank() == 0 {
            return Err(Error::dtype(
                name,
                "y_pred must be a float tensor of class scores",
                &[y_pred.dtype()],
            ));
        }
        let mut labels = sparse_labels(name, y_true, y_pred)?;
        let (logits, from_logits) = logits_of(y_pred, self.from_logits, LogitsKind::Softmax);
        let logits = if from_logits {
            logits
        } else {
            let p = ops::clip_by_value_scalar(&logits, EPSILON, 1.0 - EPSILON)?;
            ops::log(&p)?
        };
        let mask = match self.ignore_class {
            None => None,
            Some(c) => {
                let ignored = ops::equal(&labels, &Tensor::scalar_of(labels.dtype(), c as f64))?;
                let zero = ops::zeros_like(&labels)?;
                labels = ops::where_(&ignored, &zero, &labels)?;
                Some(ops::cast(&ops::logical_not(&ignored)?, y_pred.dtype())?)
            }
        };
        let classes = *y_pred.shape().last().unwrap_or(&0) as f64;
        // The range check needs values: a traced step (symbolic labels) leaves it to the kernel.
        let label_values = if labels.is_symbolic() {
            Vec::new()
        } else {
            labels.to_f64_vec()
        };
        let bad = label_values.into_iter().find(|&l| l < 0.0 || l >= classes);
        if let Some(l) = bad {
            return Err(Error::invalid(
                name,
                format!(
                    "label {l} is out of range for {classes} classes (shape {:?})",
                    y_pred.shape()
                ),
            ));
        }
        let mut values = ops::sparse_softmax_cross_entropy_with_logits(&labels, &logits)?;
        if let Some(m) = &mask {
            values = ops::mul(&values, m)?;
        }
        Ok((values, mask))
    }
}

/// Integer labels of shape `y_pred.shape[:-1]` from `(batch,)`/`(batch, 1)`, int or float.
pub(crate) fn sparse_labels(name: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let want = &y_pred.shape()[..y_pred.rank().saturating_sub(1)];
    let mut labels = y_true.clone();
    if labels.rank() == want.len() + 1 && labels.shape().last() == Some(&1) {
        labels = ops::squeeze(&labels, &[-1])?;
    }
    if labels.shape() != want {
        return Err(Error::shape(
            name,
            "labels must have the shape of the predictions without their last axis \
             (integer class ids)",
            &[y_true.shape(), y_pred.shape()],
        ));
    }
    match labels.dtype() {
        DType::I32 | DType::I64 => Ok(labels),
        _ => ops::cast(&labels, DType::I64),
    }
}

impl Loss for SparseCategoricalCrossentropy {
    fn get_config(&self) -> serde_json::Value {
        serde_json::json!({"from_logits": self.from_logits})
    }

    fn name(&self) -> &str {
        "sparse_categorical_crossentropy"
    }

    fn reduction(&self) -> Reduction {
        self.reduction
    }
    fn clone_loss(&self) -> Option<Box<dyn Loss>> {
        Some(Box::new(self.clone()))
    }

    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        Ok(self.losses_and_mask(y_true, y_pred)?.0)
    }

    /// As the trait's, but with `ignore_class` the ignored samples are masked out as Keras
    /// does: under `sum_over_batch_size` the sum is divided by the number of valid samples
    /// (plus ε), not by the batch size.
    fn compute(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (values, mask) = self.losses_and_mask(y_true, y_pred)?;
        let weight = match (mask, self.reduction) {
            (None, _) => sample_weight.cloned(),
            (Some(m), r) => {
                let m = if r == Reduction::SumOverBatchSize {
                    // Keras's `apply_mask`: valid entries weigh total / (valid + ε).
                    let total = m.num_elements() as f64;
                    if m.is_symbolic() {
                        // The same f64 arithmetic as ops, for a traced step.
                        let valid = ops::reduce_sum(
                            &ops::cast(&m, ferroflow_core::DType::F64)?,
                            ops::Axes::All,
                            false,
                        )?;
                        let factor =
                            ops::div(&Tensor::scalar(total), &ops::add_scalar(&valid, EPSILON)?)?;
                        ops::mul(&m, &ops::cast(&factor, m.dtype())?)?
                    } else {
                        let valid = m.to_f64_vec().iter().sum::<f64>();
                        ops::mul_scalar(&m, total / (valid + EPSILON))?
                    }
                } else {
                    m
                };
                match sample_weight {
                    None => Some(m),
                    Some(w) => {
                        let w = super::align_weight(self.name(), &ops::cast(w, m.dtype())?, &m)?;
                        Some(ops::mul(&m, &w)?)
                    }
                }
            }
        };
        super::reduce_weighted(self.name(), &values, weight.as_ref(), self.reduction)
    }
}
