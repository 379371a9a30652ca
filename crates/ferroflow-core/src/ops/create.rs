//! Tensor creation: zeros, ones, fill, eye, range, linspace and the `*_like` forms. These are
//! sources, not ops: they have no inputs and so nothing to differentiate.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{execute1, GradCtx, Op, TensorSpec};
use crate::storage::Storage;
use crate::tensor::{storage_from_f64, Tensor};

/// `tf.zeros(shape, dtype)`.
pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_storage(Storage::zeros(dtype, n), shape).expect("sizes agree")
}

/// `tf.ones(shape, dtype)`.
pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
    fill(shape, dtype, 1.0)
}

/// `tf.fill(shape, value)` in `dtype`.
pub fn fill(shape: &[usize], dtype: DType, value: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let s = storage_from_f64(dtype, &[value]);
    let s = match s {
        Storage::F32(v) => Storage::F32(vec![v[0]; n]),
        Storage::F64(v) => Storage::F64(vec![v[0]; n]),
        Storage::F16(v) => Storage::F16(vec![v[0]; n]),
        Storage::BF16(v) => Storage::BF16(vec![v[0]; n]),
        Storage::I32(v) => Storage::I32(vec![v[0]; n]),
        Storage::I64(v) => Storage::I64(vec![v[0]; n]),
        Storage::U8(v) => Storage::U8(vec![v[0]; n]),
        Storage::Bool(v) => Storage::Bool(vec![v[0]; n]),
    };
    Tensor::from_storage(s, shape).expect("sizes agree")
}

/// `tf.zeros_like(x)`.
pub fn zeros_like(x: &Tensor) -> Result<Tensor> {
    full_like(x, 0.0)
}

/// `tf.ones_like(x)`.
pub fn ones_like(x: &Tensor) -> Result<Tensor> {
    full_like(x, 1.0)
}

/// `tf.fill(tf.shape(x), value)` with `x`'s dtype.
///
/// On a graph tensor this is the op [`FillLike`], so the shape is taken when the graph runs (a
/// placeholder's unknown batch size included).
pub fn full_like(x: &Tensor, value: f64) -> Result<Tensor> {
    // On a GPU tensor the op fills on its device (`device/`), so tape seeds land beside it.
    if x.is_symbolic() || x.device().is_gpu() {
        return execute1(FillLike { value }, &[x.clone()]);
    }
    Ok(fill(x.shape(), x.dtype(), value))
}

/// `fill(shape(x), value)` as an op (graph mode's `zeros_like` / `ones_like`): its output does
/// not depend on `x`'s values, so `x` gets no gradient.
#[derive(Debug, Clone)]
pub struct FillLike {
    /// The value of every element.
    pub value: f64,
}

impl Op for FillLike {
    fn name(&self) -> &'static str {
        if self.value == 0.0 {
            "ZerosLike"
        } else if self.value == 1.0 {
            "OnesLike"
        } else {
            "FillLike"
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        Ok(vec![inputs[0].clone()])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![fill(inputs[0].shape(), inputs[0].dtype(), self.value)])
    }
    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![None])
    }
}

/// `tf.eye(num_rows, num_columns)`: ones on the diagonal.
pub fn eye(rows: usize, cols: usize, dtype: DType) -> Tensor {
    let mut v = vec![0.0; rows * cols];
    for i in 0..rows.min(cols) {
        v[i * cols + i] = 1.0;
    }
    Tensor::from_f64_slice(dtype, &v, &[rows, cols]).expect("sizes agree")
}

/// `tf.range(start, limit, delta)` in `dtype`.
pub fn range(start: f64, limit: f64, delta: f64, dtype: DType) -> Result<Tensor> {
    if delta == 0.0 || !delta.is_finite() || !start.is_finite() || !limit.is_finite() {
        return Err(Error::invalid(
            "Range",
            format!("invalid range {start}..{limit} step {delta}"),
        ));
    }
    let n = ((limit - start) / delta).ceil().max(0.0) as usize;
    let v: Vec<f64> = (0..n).map(|i| start + i as f64 * delta).collect();
    Tensor::from_f64_slice(dtype, &v, &[n])
}

/// `np.arange(n)` style shortcut: `[0, 1, ..., n-1]` in `dtype`.
pub fn arange(n: usize, dtype: DType) -> Tensor {
    let v: Vec<f64> = (0..n).map(|i| i as f64).collect();
    Tensor::from_f64_slice(dtype, &v, &[n]).expect("sizes agree")
}

/// `tf.linspace(start, stop, num)`: `num` evenly spaced values including both ends.
pub fn linspace(start: f64, stop: f64, num: usize, dtype: DType) -> Result<Tensor> {
    let v: Vec<f64> = match num {
        0 => vec![],
        1 => vec![start],
        _ => (0..num)
            .map(|i| start + (stop - start) * i as f64 / (num - 1) as f64)
            .collect(),
    };
    Tensor::from_f64_slice(dtype, &v, &[num])
}
