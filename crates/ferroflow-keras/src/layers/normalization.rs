//! `keras.layers.Normalization`.

use ferroflow_core::{ops, DType, Error, Result, Tensor, Variable};
use ferroflow_data::{Dataset, Element};
use serde_json::{json, Value};

use super::layer::{single_input, Layer, LayerBase, Weight};
use super::pool_utils::first_shape;
use crate::backend::{Shape, EPSILON};
use crate::initializers::Initializer;

/// `keras.layers.Normalization(axis=-1, mean=None, variance=None, invert=False)`: feature-wise
/// standardization `(x - mean) / max(sqrt(variance), epsilon)` with Keras's `epsilon` 1e-7
/// (`ops.maximum(ops.sqrt(variance), backend.epsilon())`, so a zero variance divides by 1e-7),
/// or with `invert` the inverse `mean + x · max(sqrt(variance), epsilon)`.
///
/// `axis` lists the axes that keep their own statistics (default the last; `axis(None)` one
/// mean and variance for everything); [`adapt`](Normalization::adapt) computes the mean and
/// the **population** variance over all other axes, from a tensor or from a batched
/// [`Dataset`] (batch statistics are combined as Keras does, which gives the whole-data
/// statistics). Adapted layers hold Keras's three non-trainable weights `mean`, `variance`
/// (float32, the kept axes' shape) and `count` (an int64 scalar Keras never updates: it stays
/// 0), so `count_params()` and `summary()` match Keras (7 for 3 features); a layer given `mean`
/// and `variance` has no weights, as in Keras. The layer works inside a model (its ops have
/// gradients) and on a data pipeline.
///
/// ```
/// use ferroflow_keras::layers::{LayerHandle, Normalization};
/// use ferroflow_core::Tensor;
/// let x = Tensor::from_vec(vec![1.0f32, 10.0, 3.0, 30.0], &[2, 2])?;
/// let mut norm = Normalization::new();
/// norm.adapt(&x)?; // mean [2, 20], variance [1, 100]
/// let y = LayerHandle::new(norm).call(&x, false)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![-1.0, -1.0, 1.0, 1.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Normalization {
    base: LayerBase,
    /// The kept axes (`None` in Keras = empty: one statistic overall).
    pub axis: Vec<isize>,
    /// The given mean, if any (flattened values and shape).
    pub input_mean: Option<(Vec<f64>, Vec<usize>)>,
    /// The given variance, if any.
    pub input_variance: Option<(Vec<f64>, Vec<usize>)>,
    /// Apply the inverse transformation.
    pub invert: bool,
    keep_axis: Vec<usize>,
    broadcast_shape: Vec<usize>,
    build_shape: Option<Shape>,
    /// Broadcastable mean and variance when given directly.
    fixed: Option<(Tensor, Tensor)>,
}

impl Default for Normalization {
    fn default() -> Self {
        Normalization::new()
    }
}

impl Normalization {
    /// `Normalization()` on the last axis, to be adapted.
    pub fn new() -> Normalization {
        Normalization {
            base: LayerBase::new("Normalization"),
            axis: vec![-1],
            input_mean: None,
            input_variance: None,
            invert: false,
            keep_axis: Vec::new(),
            broadcast_shape: Vec::new(),
            build_shape: None,
            fixed: None,
        }
    }

    /// The kept axes: `Some(&[-1])` (default), several axes, or `None` for one mean and
    /// variance over the whole input.
    pub fn axis(mut self, axis: Option<&[isize]>) -> Self {
        self.axis = axis.map(|a| a.to_vec()).unwrap_or_default();
        self
    }

    /// Given statistics (Keras's `mean=`, `variance=`): a scalar (`&[]` shape) or values for
    /// the kept axes, aligned right to left as Keras does. Shapes must agree.
    pub fn mean_variance(
        mut self,
        mean: &[f64],
        mean_shape: &[usize],
        variance: &[f64],
        variance_shape: &[usize],
    ) -> Result<Self> {
        let name = self.base.name.clone();
        if mean_shape != variance_shape {
            return Err(Error::shape(
                &name,
                "when setting values directly, mean and variance must have the same shape",
                &[mean_shape, variance_shape],
            ));
        }
        let n: usize = mean_shape.iter().product();
        if mean.len() != n || variance.len() != n {
            return Err(Error::invalid(
                &name,
                format!(
                    "mean/variance have {} and {} values, their shape {mean_shape:?} needs {n}",
                    mean.len(),
                    variance.len()
                ),
            ));
        }
        if mean_shape.len() > self.axis.len() {
            return Err(Error::invalid(
                &name,
                format!(
                    "the rank of mean must be less than or equal to the number of axes ({}); got mean shape {mean_shape:?} for axis {:?}",
                    self.axis.len(),
                    self.axis
                ),
            ));
        }
        self.input_mean = Some((mean.to_vec(), mean_shape.to_vec()));
        self.input_variance = Some((variance.to_vec(), variance_shape.to_vec()));
        Ok(self)
    }

    /// Apply the inverse (`mean + x · std`).
    pub fn invert(mut self, invert: bool) -> Self {
        self.invert = invert;
        self
    }

    fn stats_shape(&self) -> Vec<usize> {
        self.keep_axis
            .iter()
            .map(|&d| self.broadcast_shape[d])
            .collect()
    }

    /// The adapted (or initial) mean, with the kept axes' shape; `None` before building.
    pub fn mean(&self) -> Option<Tensor> {
        self.base.weights.first().map(|w| w.variable.value())
    }

    /// The adapted (or initial) variance; `None` before building.
    pub fn variance(&self) -> Option<Tensor> {
        self.base.weights.get(1).map(|w| w.variable.value())
    }

    fn do_build(&mut self, shape: &Shape) -> Result<()> {
        let name = self.base.name.clone();
        let ndim = shape.len() as isize;
        let mut keep = Vec::new();
        for &a in &self.axis {
            if a < -ndim || a >= ndim {
                return Err(Error::invalid(
                    &name,
                    format!("all axis values must be in the range [-ndim, ndim); received inputs with ndim={ndim}, while axis={:?}", self.axis),
                ));
            }
            let d = (if a < 0 { a + ndim } else { a }) as usize;
            if !keep.contains(&d) {
                keep.push(d);
            }
        }
        keep.sort_unstable();
        for &d in &keep {
            if shape[d].is_none() {
                return Err(Error::invalid(
                    &name,
                    format!("all axis values to be kept must have a known shape; received axis={:?}, input shape {}, with unknown axis at index {d}", self.axis, crate::backend::fmt_shape(shape)),
                ));
            }
        }
        self.broadcast_shape = (0..shape.len())
            .map(|d| {
                if keep.contains(&d) {
                    shape[d].unwrap_or(1)
                } else {
                    1
                }
            })
            .collect();
        self.keep_axis = keep;
        self.build_shape = Some(shape.clone());
        let stats_shape = self.stats_shape();
        match (&self.input_mean, &self.input_variance) {
            (Some((m, ms)), Some((v, _))) => {
                // Keras aligns the given statistics' axes to the kept axes from the right.
                let mut expanded = vec![1usize; shape.len()];
                for i in 1..=ms.len() {
                    expanded[self.keep_axis[self.keep_axis.len() - i]] = ms[ms.len() - i];
                }
                let mean = Tensor::from_f64_slice(DType::F32, m, &expanded)?;
                let var = Tensor::from_f64_slice(DType::F32, v, &expanded)?;
                let mean = ops::broadcast_to(&mean, &self.broadcast_shape).map_err(|e| {
                    Error::invalid(&name, format!("mean does not fit the kept axes: {e}"))
                })?;
                let var = ops::broadcast_to(&var, &self.broadcast_shape).map_err(|e| {
                    Error::invalid(&name, format!("variance does not fit the kept axes: {e}"))
                })?;
                self.fixed = Some((mean, var));
            }
            _ => {
                self.base
                    .add_weight("mean", &stats_shape, &Initializer::Zeros, None, false)?;
                self.base
                    .add_weight("variance", &stats_shape, &Initializer::Ones, None, false)?;
                let count = Variable::with_trainable(
                    Tensor::scalar(0i64),
                    &format!("{}/count", self.base.name),
                    false,
                );
                self.base.weights.push(Weight {
                    variable: count,
                    trainable: false,
                    regularizer: None,
                });
            }
        }
        self.base.built = true;
        self.base.build_shapes = Some(vec![shape.clone()]);
        Ok(())
    }

    fn check_adapt_shape(&mut self, shape: &[usize]) -> Result<()> {
        let as_shape: Shape = shape
            .iter()
            .enumerate()
            .map(|(i, &d)| if i == 0 { None } else { Some(d) })
            .collect();
        if !self.base.built {
            return self.do_build(&as_shape);
        }
        let built = self.build_shape.clone().unwrap_or_default();
        let bad = built.len() != shape.len()
            || self
                .keep_axis
                .iter()
                .any(|&d| built[d].is_some_and(|b| b != shape[d]));
        if bad {
            return Err(Error::invalid(
                &self.base.name,
                format!(
                    "the layer was built with input_shape={}, but adapt() is being called with data with an incompatible shape, data.shape={shape:?}",
                    crate::backend::fmt_shape(&built)
                ),
            ));
        }
        Ok(())
    }

    /// Per-kept-position mean and population variance of one batch, and the reduced count.
    fn batch_moments(&self, x: &Tensor) -> Result<(Vec<f64>, Vec<f64>, usize)> {
        let shape = x.shape().to_vec();
        let data = x.to_f64_vec();
        let k: usize = self.stats_shape().iter().product();
        let n = data.len().checked_div(k).unwrap_or(0);
        let mut sum = vec![0.0f64; k];
        let mut sq = vec![0.0f64; k];
        let mut slot = vec![0usize; data.len()];
        // slot of each element: its index over the kept axes
        let rank = shape.len();
        let mut idx = vec![0usize; rank];
        for (i, s) in slot.iter_mut().enumerate() {
            let mut r = i;
            for d in (0..rank).rev() {
                idx[d] = r % shape[d];
                r /= shape[d];
            }
            let mut p = 0;
            for &d in &self.keep_axis {
                p = p * shape[d] + idx[d];
            }
            *s = p;
        }
        for (i, &v) in data.iter().enumerate() {
            sum[slot[i]] += v;
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n.max(1) as f64).collect();
        for (i, &v) in data.iter().enumerate() {
            let d = v - mean[slot[i]];
            sq[slot[i]] += d * d;
        }
        let var = sq.iter().map(|s| s / n.max(1) as f64).collect();
        Ok((mean, var, n))
    }

    fn assign_stats(&mut self, mean: &[f64], var: &[f64]) -> Result<()> {
        let shape = self.stats_shape();
        if let (Some(m), Some(v)) = (self.base.weights.first(), self.base.weights.get(1)) {
            m.variable
                .assign(&Tensor::from_f64_slice(DType::F32, mean, &shape)?)?;
            v.variable
                .assign(&Tensor::from_f64_slice(DType::F32, var, &shape)?)?;
            Ok(())
        } else {
            Err(Error::invalid(
                &self.base.name,
                "adapt() cannot be used when mean and variance were given",
            ))
        }
    }

    fn check_given(&self) -> Result<()> {
        if self.input_mean.is_some() {
            return Err(Error::invalid(
                &self.base.name,
                "adapt() cannot be used when mean and variance were given",
            ));
        }
        Ok(())
    }

    /// Keras's `adapt(data)` on one tensor (the first axis is the batch): mean and population
    /// variance over every axis but the kept ones.
    pub fn adapt(&mut self, data: &Tensor) -> Result<()> {
        self.check_given()?;
        if data.rank() == 0 {
            return Err(Error::invalid(
                &self.base.name,
                "adapt() needs data of rank ≥ 1",
            ));
        }
        self.check_adapt_shape(data.shape())?;
        let (mean, var, _) = self.batch_moments(data)?;
        self.assign_stats(&mean, &var)
    }

    /// Keras's `adapt(dataset)`: every element is a **batch** (the first tensor of a tuple
    /// element is used, as Keras's `(x, y)` datasets); the batch statistics are combined with
    /// Keras's formula (weights `count / total`, lack-of-fit sum of squares), which equals the
    /// statistics of all the data. As Keras, a dataset of rank-1 elements (unbatched rows) is
    /// treated as rows of a batch.
    pub fn adapt_dataset(&mut self, dataset: &Dataset) -> Result<()> {
        self.check_given()?;
        let mut total_mean: Vec<f64> = Vec::new();
        let mut total_var: Vec<f64> = Vec::new();
        let mut total_count = 0usize;
        let mut first = true;
        for element in dataset.iter() {
            let element = element?;
            let x = match &element {
                Element::Tuple(items) => items
                    .first()
                    .ok_or_else(|| {
                        Error::invalid(&self.base.name, "adapt() got an empty tuple element")
                    })?
                    .tensor()?
                    .clone(),
                e => e.tensor()?.clone(),
            };
            let x = match x.rank() {
                0 => ops::reshape(&x, &[1, 1])?,
                1 => ops::expand_dims(&x, 0)?,
                _ => x,
            };
            self.check_adapt_shape(x.shape())?;
            let (bm, bv, bc) = self.batch_moments(&x)?;
            if first {
                total_mean = vec![0.0; bm.len()];
                total_var = vec![0.0; bm.len()];
                first = false;
            }
            total_count += bc;
            if total_count == 0 {
                continue;
            }
            let bw = bc as f64 / total_count as f64;
            let ew = 1.0 - bw;
            for i in 0..bm.len() {
                let new_mean = total_mean[i] * ew + bm[i] * bw;
                total_var[i] = (total_var[i] + (total_mean[i] - new_mean).powi(2)) * ew
                    + (bv[i] + (bm[i] - new_mean).powi(2)) * bw;
                total_mean[i] = new_mean;
            }
        }
        if first {
            return Err(Error::invalid(
                &self.base.name,
                "adapt() received an empty dataset (no batches)",
            ));
        }
        self.assign_stats(&total_mean, &total_var)
    }
}

impl Layer for Normalization {
    fn class_name(&self) -> &str {
        "Normalization"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let shape = first_shape(&self.base.name, input_shapes)?.clone();
        self.do_build(&shape)
    }

    /// Keras sets `supports_masking = True` on `Normalization`: the input mask passes through.
    fn supports_masking(&self) -> bool {
        true
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let x = if x.dtype() == DType::F32 {
            x.clone()
        } else {
            ops::cast(x, DType::F32)?
        };
        let (mean, var) = match &self.fixed {
            Some((m, v)) => (m.clone(), v.clone()),
            None => {
                let (m, v) = match (self.base.weights.first(), self.base.weights.get(1)) {
                    (Some(m), Some(v)) => (m.variable.value(), v.variable.value()),
                    _ => {
                        return Err(Error::invalid(
                            &self.base.name,
                            "the layer must be built (or adapted) before it is called",
                        ))
                    }
                };
                let bs: Vec<isize> = self.broadcast_shape.iter().map(|&d| d as isize).collect();
                (ops::reshape(&m, &bs)?, ops::reshape(&v, &bs)?)
            }
        };
        if x.rank() != self.broadcast_shape.len() {
            return Err(Error::shape(
                &self.base.name,
                format!(
                    "input rank {} differs from the rank the layer was built for",
                    x.rank()
                ),
                &[x.shape(), &self.broadcast_shape],
            ));
        }
        let std = ops::maximum(&ops::sqrt(&var)?, &Tensor::scalar(EPSILON as f32))?;
        let y = if self.invert {
            ops::add(&mean, &ops::mul(&x, &std)?)?
        } else {
            ops::div(&ops::sub(&x, &mean)?, &std)?
        };
        Ok(vec![y])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![first_shape(&self.base.name, input_shapes)?.clone()])
    }

    fn get_config(&self) -> Value {
        let axis: Value = self.axis.iter().map(|&a| json!(a)).collect();
        let stat = |s: &Option<(Vec<f64>, Vec<usize>)>| -> Value {
            match s {
                None => Value::Null,
                Some((v, shape)) if shape.is_empty() => json!(v[0]),
                Some((v, _)) => json!(v),
            }
        };
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "axis": axis,
            "invert": self.invert,
            "mean": stat(&self.input_mean),
            "variance": stat(&self.input_variance),
        })
    }
}
