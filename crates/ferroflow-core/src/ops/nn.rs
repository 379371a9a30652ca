//! `tf.nn` layers' building blocks: `bias_add` (fused `BiasAdd` / `BiasAddGrad` kernels),
//! `batch_normalization` (a composite of ops) and `dropout` (a Philox mask multiplied in).

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{cast as cast_kernel, tensor_from, zip_map};
use crate::kernels::nn::{
    bias_add as bias_add_kernel, bias_add_grad as bias_add_grad_kernel, bias_grad_rows_per_block,
};
use crate::kernels::philox::fill_dropout_mask;
use crate::kernels::Float;
use crate::layout::broadcast_shapes;
use crate::op::{execute1, GradCtx, Op, TensorSpec};
use crate::ops::softmax::{float_kernel, require_float};
use crate::ops::{add, add_scalar, broadcast_to, mul, neg, rsqrt, sub, zeros_like};
use crate::storage::StorageElement;
use crate::tensor::Tensor;

/// The `BiasAdd` op (NHWC): adds a rank-1 bias along the last axis of a tensor of rank >= 2.
#[derive(Clone, Debug)]
pub struct BiasAdd;

impl Op for BiasAdd {
    fn name(&self) -> &'static str {
        "BiasAdd"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let (x, b) = (&inputs[0], &inputs[1]);
        require_float(self.name(), x)?;
        if b.dtype != x.dtype {
            return Err(Error::dtype(
                self.name(),
                "value and bias must have the same dtype",
                &[x.dtype, b.dtype],
            ));
        }
        let last = x.shape.last().copied().flatten();
        let ok = x.rank() >= 2
            && b.rank() == 1
            && (last.is_none() || b.shape[0].is_none() || last == b.shape[0]);
        if !ok {
            return Err(Error::shape(
                self.name(),
                "value must have rank >= 2 and bias must be rank 1 with the size of value's last dimension",
                &[&x.shape_for_error(), &b.shape_for_error()],
            ));
        }
        Ok(vec![x.clone()])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (x, b) = (&inputs[0], &inputs[1]);
        fn run<T: Float + StorageElement>(x: &Tensor, b: &Tensor) -> Result<Tensor> {
            Ok(tensor_from(
                bias_add_kernel(&x.data::<T>()?, &b.data::<T>()?),
                x.shape(),
            ))
        }
        let y = match x.dtype() {
            DType::F32 => run::<f32>(x, b)?,
            DType::F64 => run::<f64>(x, b)?,
            d => cast_kernel(
                &run::<f32>(&cast_kernel(x, DType::F32), &cast_kernel(b, DType::F32))?,
                d,
            ),
        };
        Ok(vec![y])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let g = ctx.g(0);
        Ok(vec![Some(g.clone()), Some(bias_add_grad(g)?)])
    }
}

/// The `BiasAddGrad` op: sums a rank >= 2 tensor over every axis but the last (the gradient of
/// `BiasAdd`'s bias).
#[derive(Clone, Debug)]
pub struct BiasAddGrad;

impl Op for BiasAddGrad {
    fn name(&self) -> &'static str {
        "BiasAddGrad"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let g = &inputs[0];
        require_float(self.name(), g)?;
        if g.rank() < 2 {
            return Err(Error::shape(
                self.name(),
                "input must have rank >= 2",
                &[&g.shape_for_error()],
            ));
        }
        Ok(vec![TensorSpec {
            dtype: g.dtype,
            shape: vec![g.shape[g.rank() - 1]],
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let g = &inputs[0];
        let c = g.shape().last().copied().unwrap_or(1);
        let rows = bias_grad_rows_per_block(g.shape());
        let y = float_kernel(
            self.name(),
            g,
            &[c],
            |d| bias_add_grad_kernel(d, c, rows),
            |d| bias_add_grad_kernel(d, c, rows),
        )?;
        Ok(vec![y])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(broadcast_to(ctx.g(0), ctx.x(0).shape())?)])
    }
}

/// The `ReluGrad` op (TensorFlow's name): `gradients` where `features > 0`, else 0 — the
/// gradient of `Relu` in one pass, instead of a comparison, a cast and a multiply. As
/// TensorFlow's kernel it selects rather than multiplies, so an infinite or NaN gradient at a
/// non-positive feature gives 0.
#[derive(Clone, Debug)]
pub struct ReluGrad;

impl Op for ReluGrad {
    fn name(&self) -> &'static str {
        "ReluGrad"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let (g, x) = (&inputs[0], &inputs[1]);
        require_float(self.name(), g)?;
        if g.dtype != x.dtype {
            return Err(Error::dtype(
                self.name(),
                "gradients and features must have the same dtype",
                &[g.dtype, x.dtype],
            ));
        }
        let same = g.rank() == x.rank()
            && g.shape
                .iter()
                .zip(&x.shape)
                .all(|(a, b)| a.is_none() || b.is_none() || a == b);
        if !same {
            return Err(Error::shape(
                self.name(),
                "gradients and features must have the same shape",
                &[&g.shape_for_error(), &x.shape_for_error()],
            ));
        }
        Ok(vec![x.clone()])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (g, x) = (&inputs[0], &inputs[1]);
        fn run<T: Float + StorageElement>(g: &Tensor, x: &Tensor) -> Tensor {
            let zero = T::zero();
            let v = zip_map(
                g,
                x,
                x.shape(),
                |g: T, x: T| if x > zero { g } else { zero },
            );
            tensor_from(v, x.shape())
        }
        let y = match x.dtype() {
            DType::F32 => run::<f32>(g, x),
            DType::F64 => run::<f64>(g, x),
            d => cast_kernel(
                &run::<f32>(&cast_kernel(g, DType::F32), &cast_kernel(x, DType::F32)),
                d,
            ),
        };
        Ok(vec![y])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        // Linear in the gradients; piecewise constant (zero derivative) in the features, as
        // TensorFlow's `_ReluGradGrad`.
        Ok(vec![
            Some(relu_grad(ctx.g(0), ctx.x(1))?),
            Some(zeros_like(ctx.x(1))?),
        ])
    }
}

/// `ReluGrad(gradients, features)`: the gradient of `tf.nn.relu` at `features` (see
/// [`ReluGrad`]).
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let g = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
/// let x = Tensor::from_vec(vec![-1.0f32, 0.0, 5.0], &[3])?;
/// assert_eq!(ops::relu_grad(&g, &x)?.to_vec::<f32>()?, vec![0.0, 0.0, 3.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn relu_grad(gradients: &Tensor, features: &Tensor) -> Result<Tensor> {
    execute1(ReluGrad, &[gradients.clone(), features.clone()])
}

/// `tf.nn.bias_add(value, bias)` with the default NHWC format: `bias` (rank 1) is added along
/// the last axis of `value` (rank >= 2, as TensorFlow requires). The bias gradient is the
/// fused `BiasAddGrad` reduction.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// let b = Tensor::from_vec(vec![10.0f32, 20.0], &[2]).unwrap();
/// let y = ops::bias_add(&x, &b).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![11.0, 22.0, 13.0, 24.0]);
/// ```
pub fn bias_add(value: &Tensor, bias: &Tensor) -> Result<Tensor> {
    execute1(BiasAdd, &[value.clone(), bias.clone()])
}

/// `BiasAddGrad`: the sum of `out_backprop` over all axes but the last (NHWC).
pub fn bias_add_grad(out_backprop: &Tensor) -> Result<Tensor> {
    execute1(BiasAddGrad, &[out_backprop.clone()])
}

/// `tf.nn.batch_normalization(x, mean, variance, offset, scale, variance_epsilon)`:
/// `(x - mean)·scale / sqrt(variance + ε) + offset`, computed as TensorFlow does
/// (`inv = rsqrt(variance + ε)·scale; x·inv + (offset - mean·inv)`), with broadcasting. A
/// composite of ops, so every input gets its gradient automatically.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let x = Tensor::from_vec(vec![3.0f64], &[1]).unwrap();
/// let m = Tensor::from_vec(vec![1.0f64], &[1]).unwrap();
/// let v = Tensor::from_vec(vec![4.0f64], &[1]).unwrap();
/// let y = ops::batch_normalization(&x, &m, &v, None, None, 0.0).unwrap();
/// assert_eq!(y.to_vec::<f64>().unwrap(), vec![1.0]);
/// ```
pub fn batch_normalization(
    x: &Tensor,
    mean: &Tensor,
    variance: &Tensor,
    offset: Option<&Tensor>,
    scale: Option<&Tensor>,
    variance_epsilon: f64,
) -> Result<Tensor> {
    let mut inv = rsqrt(&add_scalar(variance, variance_epsilon)?)?;
    if let Some(s) = scale {
        inv = mul(&inv, s)?;
    }
    let shift = match offset {
        Some(o) => sub(o, &mul(mean, &inv)?)?,
        None => neg(&mul(mean, &inv)?)?,
    };
    add(&mul(x, &inv)?, &shift)
}

/// `tf.nn.dropout(x, rate, noise_shape, seed)`: keeps each element with probability
/// `1 - rate` and scales kept values by `1 / (1 - rate)`; dropped elements become 0.
///
/// - `rate` must lie in `[0, 1)`; `rate == 0` returns `x` unchanged (as TensorFlow).
/// - `noise_shape` (default `x`'s shape) is the shape of the random keep mask, broadcast
///   against `x` (each of its dimensions is 1 or `x`'s), as in TensorFlow.
/// - The mask comes from the Philox stream `seed` (counter offset 0,
///   [`fill_dropout_mask`]): the same seed gives the same mask whatever the thread count.
///   Values are not bit-identical to TensorFlow's for the same seed.
///
/// The result is `x · mask` with the mask (`1/(1 - rate)` or 0) the output of a
/// [`DropoutMask`] op that reads only `x`'s shape, so the gradient is `g · mask` and reuses it.
/// In a graph the mask is a node a `Session` redraws on every run (reproducibly from `seed`,
/// TF 1's stateful dropout; see `graph::random`); its first run equals the eager mask.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let x = ops::ones(&[1000], ferroflow_core::DType::F32);
/// let y = ops::dropout(&x, 0.5, 7, None).unwrap().to_vec::<f32>().unwrap();
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// ```
pub fn dropout(x: &Tensor, rate: f64, seed: u64, noise_shape: Option<&[usize]>) -> Result<Tensor> {
    let op = "Dropout";
    if !x.dtype().is_float() {
        return Err(Error::dtype(op, "expects a float tensor", &[x.dtype()]));
    }
    if !(0.0..1.0).contains(&rate) {
        return Err(Error::invalid(
            op,
            format!("rate must be a scalar in [0, 1), got {rate}"),
        ));
    }
    let shape = noise_shape.unwrap_or(x.shape());
    if broadcast_shapes(shape, x.shape()).as_deref() != Some(x.shape()) {
        return Err(Error::shape(
            op,
            "noise_shape must broadcast to the shape of x",
            &[shape, x.shape()],
        ));
    }
    if rate == 0.0 {
        return Ok(x.clone());
    }
    let mask = execute1(
        DropoutMask {
            rate,
            seed,
            noise_shape: noise_shape.map(<[usize]>::to_vec),
        },
        std::slice::from_ref(x),
    )?;
    mul(x, &mask)
}

/// The keep mask of [`dropout`]: `1 / (1 - rate)` where kept, 0 where dropped, of `noise_shape`
/// (default: the input's shape) and the input's dtype. Reads only the input's shape, so it passes
/// no gradient to it. A random op: a `Session` gives each run a fresh seed.
#[derive(Clone, Debug)]
pub struct DropoutMask {
    /// The drop probability, in `(0, 1)`.
    pub rate: f64,
    /// The Philox seed (counter offset 0).
    pub seed: u64,
    /// The mask's shape when not the input's.
    pub noise_shape: Option<Vec<usize>>,
}

impl Op for DropoutMask {
    fn name(&self) -> &'static str {
        "DropoutMask"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        if !x.dtype.is_float() {
            return Err(Error::dtype(
                self.name(),
                "expects a float tensor",
                &[x.dtype],
            ));
        }
        let Some(ns) = &self.noise_shape else {
            return Ok(vec![x.clone()]);
        };
        if let Some(xs) = x.known_shape() {
            if broadcast_shapes(ns, &xs).as_deref() != Some(&xs[..]) {
                return Err(Error::shape(
                    self.name(),
                    "noise_shape must broadcast to the shape of x",
                    &[ns.as_slice(), xs.as_slice()],
                ));
            }
        }
        Ok(vec![TensorSpec::new(x.dtype, ns)])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let shape = self.noise_shape.as_deref().unwrap_or(x.shape());
        let keep = 1.0 - self.rate;
        let n: usize = shape.iter().product();
        let mask = if x.dtype() == DType::F64 {
            let mut m = vec![0.0f64; n];
            fill_dropout_mask(self.seed, 0, &mut m, keep, 1.0 / keep);
            tensor_from(m, shape)
        } else {
            let mut m = vec![0.0f32; n];
            fill_dropout_mask(self.seed, 0, &mut m, keep, (1.0 / keep) as f32);
            cast_kernel(&tensor_from(m, shape), x.dtype())
        };
        Ok(vec![mask])
    }
    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![None])
    }
    fn random_seed(&self) -> Option<u64> {
        Some(self.seed)
    }
    fn with_random_seed(&self, seed: u64) -> Option<std::sync::Arc<dyn Op>> {
        Some(std::sync::Arc::new(DropoutMask {
            seed,
            ..self.clone()
        }))
    }
}
