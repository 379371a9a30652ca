//! `keras.layers.Discretization`.

use ferroflow_core::{DType, Error, Result, Tensor};
use ferroflow_data::Dataset;
use serde_json::{json, Value};

use super::index_lookup::{encode_categorical, encoded_shape, OutputMode};
use super::integer_lookup::first_tensor;
use super::layer::{single_input, Layer, LayerBase};
use crate::backend::Shape;

/// `keras.layers.Discretization(bin_boundaries=None, num_bins=None, epsilon=0.01,
/// output_mode="int")`: buckets float values by boundaries. Matched Keras 3.15 (checked against
/// real Keras): the bucket of `x` is the number of boundaries `≤ x` (`np.digitize`), so
/// boundaries `[0, 1, 2]` give buckets `(-inf, 0), [0, 1), [1, 2), [2, inf)`; `"int"` outputs
/// int32, `"one_hot"` / `"multi_hot"` / `"count"` float32 of depth `len(boundaries) + 1` with
/// `CategoryEncoding`'s rank rules. [`adapt`](Discretization::adapt) reproduces Keras's
/// approximate quantile summary (`summarize` / `merge_summaries` / `compress_summary` with
/// `epsilon`, then `num_bins` boundaries), batch by batch for a dataset, so the boundaries equal
/// Keras's, not exact quantiles.
///
/// ```
/// use ferroflow_keras::layers::{Discretization, LayerHandle};
/// use ferroflow_core::Tensor;
/// let d = Discretization::with_bin_boundaries(&[0.0, 1.0, 2.0])?;
/// let y = LayerHandle::new(d).call(&Tensor::from_vec(vec![-1.5f32, 1.0, 0.5, 3.0], &[4])?, false)?;
/// assert_eq!(y.to_vec::<i32>()?, vec![0, 2, 1, 3]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Discretization {
    base: LayerBase,
    bin_boundaries: Option<Vec<f64>>,
    num_bins: Option<usize>,
    epsilon: f64,
    mode: OutputMode,
    /// Keras's running summary: (values, weights), float32 as Keras keeps them.
    summary: (Vec<f32>, Vec<f32>),
}

impl Discretization {
    fn make(bin_boundaries: Option<Vec<f64>>, num_bins: Option<usize>) -> Discretization {
        Discretization {
            base: LayerBase::new("Discretization"),
            bin_boundaries,
            num_bins,
            epsilon: 0.01,
            mode: OutputMode::Int,
            summary: (Vec::new(), Vec::new()),
        }
    }

    /// `Discretization(bin_boundaries=...)`: boundaries must be sorted (non-decreasing).
    pub fn with_bin_boundaries(bin_boundaries: &[f64]) -> Result<Discretization> {
        let d = Discretization::make(Some(bin_boundaries.to_vec()), None);
        if bin_boundaries
            .windows(2)
            .any(|w| w[0].partial_cmp(&w[1]).is_none_or(|o| o.is_gt()))
        {
            return Err(Error::invalid(
                &d.base.name,
                format!("bin_boundaries must be sorted, got {bin_boundaries:?}"),
            ));
        }
        Ok(d)
    }

    /// `Discretization(num_bins=n)`, to be adapted.
    pub fn with_num_bins(num_bins: usize) -> Discretization {
        Discretization::make(None, Some(num_bins))
    }

    /// The summary precision of `adapt` (default 0.01), in `(0, 1]`.
    pub fn epsilon(mut self, epsilon: f64) -> Result<Self> {
        if epsilon.is_nan() || epsilon <= 0.0 || epsilon > 1.0 {
            return Err(Error::invalid(
                &self.base.name,
                format!("epsilon must be in (0, 1], got {epsilon}"),
            ));
        }
        self.epsilon = epsilon;
        Ok(self)
    }

    /// `"int"`, `"one_hot"`, `"multi_hot"` or `"count"`.
    pub fn output_mode(mut self, mode: &str) -> Result<Self> {
        let m = OutputMode::parse(&self.base.name, mode)?;
        if m == OutputMode::TfIdf {
            return Err(Error::invalid(
                &self.base.name,
                "Discretization's output_mode must be one of \"int\", \"one_hot\", \"multi_hot\", \"count\"",
            ));
        }
        self.mode = m;
        Ok(self)
    }

    /// The boundaries (given, or computed by `adapt`).
    pub fn bin_boundaries(&self) -> Option<&[f64]> {
        self.bin_boundaries.as_deref()
    }

    fn update(&mut self, values: &[f32]) {
        // Keras: merge_summaries(new, previous): the new batch's summary first, then sorted
        let (mut v, mut w) = summarize(values, self.epsilon);
        let (pv, pw) = std::mem::take(&mut self.summary);
        v.extend(pv);
        w.extend(pw);
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let merged = (
            order.iter().map(|&i| v[i]).collect(),
            order.iter().map(|&i| w[i]).collect(),
        );
        self.summary = compress_summary(merged, self.epsilon);
    }

    fn finish(&mut self) -> Result<()> {
        let n = self.num_bins.ok_or_else(|| {
            Error::invalid(
                &self.base.name,
                "cannot adapt a Discretization layer that has been initialized with bin_boundaries; use num_bins instead",
            )
        })?;
        if n == 0 {
            return Err(Error::invalid(
                &self.base.name,
                "num_bins must be ≥ 1 to adapt",
            ));
        }
        let (v, _) = compress_summary(self.summary.clone(), 1.0 / n as f64);
        let k = v.len().saturating_sub(1);
        self.bin_boundaries = Some(v[..k].iter().map(|&x| x as f64).collect());
        Ok(())
    }

    fn check_adaptable(&mut self) -> Result<()> {
        if self.num_bins.is_none() {
            return Err(Error::invalid(
                &self.base.name,
                "cannot adapt a Discretization layer that has been initialized with bin_boundaries; use num_bins instead",
            ));
        }
        self.summary = (Vec::new(), Vec::new());
        Ok(())
    }

    /// Keras's `adapt(array)`: all values of `data` as one batch.
    pub fn adapt(&mut self, data: &Tensor) -> Result<()> {
        self.check_adaptable()?;
        let values: Vec<f32> = data.to_f64_vec().into_iter().map(|v| v as f32).collect();
        self.update(&values);
        self.finish()
    }

    /// Keras's `adapt(dataset)`: one summary update per element (batch), then the boundaries.
    pub fn adapt_dataset(&mut self, dataset: &Dataset) -> Result<()> {
        self.check_adaptable()?;
        for element in dataset.iter() {
            let x = first_tensor(&self.base.name, &element?)?;
            let values: Vec<f32> = x.to_f64_vec().into_iter().map(|v| v as f32).collect();
            self.update(&values);
        }
        self.finish()
    }

    fn depth(&self) -> Option<usize> {
        self.bin_boundaries
            .as_ref()
            .map(|b| b.len() + 1)
            .or(self.num_bins)
    }
}

/// Keras's `summarize(values, epsilon)`: every `step`-th sorted value, weighted by `step`.
fn summarize(values: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    let elements = v.len() as f64;
    let num_buckets = 1.0 / epsilon;
    let increment = elements / num_buckets;
    let step = increment.max(1.0);
    let start = (step - 1.0) as usize;
    let stride = (step as usize).max(1);
    let bounds: Vec<f32> = v.iter().skip(start).step_by(stride).copied().collect();
    let weights = vec![step as f32; bounds.len()];
    (bounds, weights)
}

/// `np.interp(x, xp, fp)` for increasing `xp` (values outside clamp to the ends).
fn interp(x: f64, xp: &[f64], fp: &[f64]) -> f64 {
    let n = xp.len();
    if x <= xp[0] {
        return fp[0];
    }
    if x >= xp[n - 1] {
        return fp[n - 1];
    }
    // the last j with xp[j] <= x (numpy's binary search, side="right" - 1)
    let j = xp.partition_point(|&p| p <= x) - 1;
    let (x0, x1) = (xp[j], xp[j + 1]);
    if x1 == x0 {
        return fp[j];
    }
    let slope = (fp[j + 1] - fp[j]) / (x1 - x0);
    slope * (x - x0) + fp[j]
}

/// Keras's `compress_summary(summary, epsilon)`.
fn compress_summary(summary: (Vec<f32>, Vec<f32>), epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let (v, w) = summary;
    if (v.len() as f64) * epsilon < 1.0 {
        return (v, w);
    }
    // np.arange(0.0, 1.0, epsilon) + epsilon
    let count = (1.0 / epsilon).ceil() as usize;
    let percents: Vec<f64> = (0..count).map(|i| epsilon + i as f64 * epsilon).collect();
    // float32 cumsum and percentages, as numpy on float32 arrays
    let mut cum = Vec::with_capacity(w.len());
    let mut acc = 0.0f32;
    for &x in &w {
        acc += x;
        cum.push(acc);
    }
    let total = *cum.last().unwrap_or(&1.0);
    let cum_pct: Vec<f64> = cum.iter().map(|&c| (c / total) as f64).collect();
    let vals: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    let cum64: Vec<f64> = cum.iter().map(|&c| c as f64).collect();
    let new_bins: Vec<f64> = percents
        .iter()
        .map(|&p| interp(p, &cum_pct, &vals))
        .collect();
    let new_cum: Vec<f64> = percents
        .iter()
        .map(|&p| interp(p, &cum_pct, &cum64))
        .collect();
    let new_w: Vec<f32> = (0..new_cum.len())
        .map(|i| (new_cum[i] - if i == 0 { 0.0 } else { new_cum[i - 1] }) as f32)
        .collect();
    (new_bins.into_iter().map(|x| x as f32).collect(), new_w)
}

impl Layer for Discretization {
    fn class_name(&self) -> &str {
        "Discretization"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let bounds = self.bin_boundaries.as_ref().ok_or_else(|| {
            Error::invalid(
                &self.base.name,
                "you need to either pass bin_boundaries at construction time or call adapt(dataset) before you can start using the Discretization layer",
            )
        })?;
        // compare in float32, the layer's input dtype
        let b32: Vec<f32> = bounds.iter().map(|&b| b as f32).collect();
        let idx: Vec<i64> = x
            .to_f64_vec()
            .into_iter()
            .map(|v| b32.partition_point(|&b| b <= v as f32) as i64)
            .collect();
        if self.mode == OutputMode::Int {
            let data: Vec<i32> = idx.iter().map(|&i| i as i32).collect();
            return Ok(vec![Tensor::from_vec(data, x.shape())?]);
        }
        let depth = bounds.len() + 1;
        let (out, shape) =
            encode_categorical(&self.base.name, &idx, x.shape(), self.mode, depth, None)?;
        Ok(vec![Tensor::from_f64_slice(DType::F32, &out, &shape)?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let shape = super::pool_utils::first_shape(&self.base.name, input_shapes)?;
        let depth = self.depth().unwrap_or(1);
        Ok(vec![encoded_shape(shape, self.mode, depth)])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "bin_boundaries": self.bin_boundaries,
            "num_bins": self.num_bins,
            "epsilon": self.epsilon,
            "output_mode": self.mode.as_str(),
            "sparse": false,
        })
    }
}
