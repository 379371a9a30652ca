//! The ops of the conv + max-pool fusion (kernels in [`crate::kernels::conv_pool`]):
//! [`FusedConv2DMaxPool`] (`_FusedConv2DMaxPool`: Conv2D + BiasAdd + optional ReLU + a max pool
//! with disjoint `valid` windows, outputs the pooled values and a `u8` argmax) and
//! [`MaxPoolReluGrad`] (`_MaxPoolReluGrad`: `ReluGrad(MaxPoolGrad(z, dp), z)` from the pooled
//! values and the argmax, without `z`). The remapper's rewrite (`conv_pool_rewrite.rs`) puts them
//! in place of the unfused ops in inference and training graphs; both are bit-identical to the
//! ops they replace.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::conv::Conv2dGeom;
use crate::kernels::conv_pool::{conv2d_maxpool_forward_vec, max_pool_relu_grad, PoolWindow};
use crate::kernels::elementwise::tensor_from;
use crate::kernels::Float;
use crate::op::{execute1, no_gradient, Dim, GradCtx, Op, TensorSpec};
use crate::ops::conv::{Conv2D, ConvAttrs, ConvKind};
use crate::ops::nn::BiasAdd;
use crate::storage::StorageElement;
use crate::tensor::Tensor;

fn check_window(op: &str, window: [usize; 2]) -> Result<PoolWindow> {
    let win = PoolWindow {
        ph: window[0],
        pw: window[1],
    };
    if !win.is_valid() {
        return Err(Error::invalid(
            op,
            format!(
                "the pooling window {window:?} must be positive with at most {} elements",
                crate::kernels::conv_pool::MAX_WINDOW
            ),
        ));
    }
    Ok(win)
}

fn float_dtype(op: &str, d: DType) -> Result<DType> {
    match d {
        DType::F32 | DType::F64 => Ok(d),
        _ => Err(Error::dtype(
            op,
            "computes in float32 or float64 only",
            &[d],
        )),
    }
}

/// Pooled length of a convolution output length `o` (unknown stays unknown); an error when the
/// window does not fit (as a `valid` MaxPool).
fn pooled_dim(op: &str, axis: &str, o: Dim, p: usize, shapes: &[&[usize]]) -> Result<Dim> {
    match o {
        Some(o) if o < p => Err(Error::shape(
            op,
            format!("the pooling window's {axis} {p} does not fit in the convolution output's {axis} {o}"),
            shapes,
        )),
        Some(o) => Ok(Some(o / p)),
        None => Ok(None),
    }
}

/// `_FusedConv2DMaxPool`: `maxpool(activation(conv2d(x, filter) + bias))` with the pooling's
/// `strides == window` and `valid` padding (Keras `MaxPooling2D`'s default), activation none or
/// ReLU. Inputs `[x, filter, bias]` (NHWC, HWIO, `[out_channels]`), float32/float64. Outputs:
/// 0 = pooled `[n, oh/ph, ow/pw, out]` and 1 = argmax (`uint8`, same shape): the index `i*pw + j`
/// inside its window of the first maximum (the element TensorFlow's `MaxPoolGrad` routes the
/// gradient to).
///
/// Bit-identical to `Conv2D` → `BiasAdd` → `Relu` → `MaxPool`; the convolution's output is never
/// written in full. The gradient is `_MaxPoolReluGrad`, then BiasAdd's and Conv2D's own rules.
///
/// [`without_argmax`](Self::without_argmax) gives the inference form (the remapper's choice when
/// no gradient reads the argmax): one output, the pooled values (the same bits), no index pass.
/// Its gradient recomputes the forward with the argmax, then proceeds as above.
///
/// ```
/// use ferroflow_core::graph::optimize::conv_pool::FusedConv2DMaxPool;
/// use ferroflow_core::kernels::padding::Padding;
/// use ferroflow_core::ops::conv::ConvAttrs;
/// use ferroflow_core::{op::execute, Tensor};
/// let conv = ConvAttrs { strides: [1, 1], padding: Padding::Valid, dilations: [1, 1] };
/// let op = FusedConv2DMaxPool::new(conv, true, [2, 2])?;
/// // A 1x1 filter of weight 1 and bias -2 over a 2x2 image: relu(x - 2), then the max.
/// let x = Tensor::from_vec(vec![1.0f32, 5.0, 4.0, 3.0], &[1, 2, 2, 1])?;
/// let w = Tensor::from_vec(vec![1.0f32], &[1, 1, 1, 1])?;
/// let b = Tensor::from_vec(vec![-2.0f32], &[1])?;
/// let out = execute(op, &[x, w, b])?;
/// assert_eq!(out[0].to_vec::<f32>()?, vec![3.0]);
/// assert_eq!(out[1].to_vec::<u8>()?, vec![1]); // row 0, column 1
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FusedConv2DMaxPool {
    /// The convolution's strides, padding and dilations.
    pub conv: ConvAttrs,
    /// ReLU after the bias.
    pub relu: bool,
    /// The pooling window `[ph, pw]` (= its strides).
    pub window: [usize; 2],
    /// Whether the op computes and outputs the argmax (output 1); `false`: one output.
    pub argmax: bool,
}

impl FusedConv2DMaxPool {
    /// The fused op (with its argmax output); errors for a window of more than 256 elements (the
    /// argmax is a `u8`) or an empty one.
    pub fn new(conv: ConvAttrs, relu: bool, window: [usize; 2]) -> Result<FusedConv2DMaxPool> {
        check_window("_FusedConv2DMaxPool", window)?;
        Ok(FusedConv2DMaxPool {
            conv,
            relu,
            window,
            argmax: true,
        })
    }

    /// The inference form: only output 0 (the pooled values), no argmax computed.
    ///
    /// ```
    /// use ferroflow_core::graph::optimize::conv_pool::FusedConv2DMaxPool;
    /// use ferroflow_core::kernels::padding::Padding;
    /// use ferroflow_core::ops::conv::ConvAttrs;
    /// use ferroflow_core::{op::execute, Tensor};
    /// let conv = ConvAttrs { strides: [1, 1], padding: Padding::Valid, dilations: [1, 1] };
    /// let op = FusedConv2DMaxPool::new(conv, false, [1, 2])?.without_argmax();
    /// let x = Tensor::from_vec(vec![1.0f32, 5.0], &[1, 1, 2, 1])?;
    /// let w = Tensor::from_vec(vec![2.0f32], &[1, 1, 1, 1])?;
    /// let b = Tensor::from_vec(vec![0.5f32], &[1])?;
    /// let out = execute(op, &[x, w, b])?;
    /// assert_eq!(out.len(), 1);
    /// assert_eq!(out[0].to_vec::<f32>()?, vec![10.5]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn without_argmax(self) -> FusedConv2DMaxPool {
        FusedConv2DMaxPool {
            argmax: false,
            ..self
        }
    }

    fn conv_op(&self) -> Conv2D {
        Conv2D {
            kind: ConvKind::Regular,
            attrs: self.conv,
        }
    }

    fn run<T: Float + StorageElement>(
        &self,
        g: &Conv2dGeom,
        win: PoolWindow,
        inputs: &[Tensor],
    ) -> Result<Vec<Tensor>> {
        let (x, w, b) = (
            inputs[0].data::<T>()?,
            inputs[1].data::<T>()?,
            inputs[2].data::<T>()?,
        );
        let (poh, pow) = win.pooled(g.oh, g.ow);
        let shape = [g.n, poh, pow, g.oc];
        let len = shape.iter().product();
        // Written once by the kernel (never zero-filled first on the AVX-512 path).
        let (pooled, argmax) =
            conv2d_maxpool_forward_vec(g, &x, &w, Some(&b), self.relu, win, self.argmax);
        debug_assert_eq!(pooled.len(), len);
        if !self.argmax {
            return Ok(vec![tensor_from(pooled, &shape)]);
        }
        Ok(vec![
            tensor_from(pooled, &shape),
            tensor_from(argmax, &shape),
        ])
    }
}

impl Op for FusedConv2DMaxPool {
    fn name(&self) -> &'static str {
        "_FusedConv2DMaxPool"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        if inputs.len() != 3 {
            return Err(Error::invalid(
                op,
                format!("expects 3 inputs (x, filter, bias), got {}", inputs.len()),
            ));
        }
        check_window(op, self.window)?;
        let z = self.conv_op().infer(&inputs[..2])?.swap_remove(0);
        let z = BiasAdd.infer(&[z, inputs[2].clone()])?.swap_remove(0);
        let dtype = float_dtype(op, z.dtype)?;
        let zs = z.shape_for_error();
        let shapes = [&zs[..]];
        let shape = vec![
            z.shape[0],
            pooled_dim(op, "height", z.shape[1], self.window[0], &shapes)?,
            pooled_dim(op, "width", z.shape[2], self.window[1], &shapes)?,
            z.shape[3],
        ];
        let pooled = TensorSpec {
            dtype,
            shape: shape.clone(),
        };
        if !self.argmax {
            return Ok(vec![pooled]);
        }
        Ok(vec![
            pooled,
            TensorSpec {
                dtype: DType::U8,
                shape,
            },
        ])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let win = check_window(self.name(), self.window)?;
        let (xs, ws) = (inputs[0].shape(), inputs[1].shape());
        let g = Conv2dGeom::new(
            [xs[0], xs[1], xs[2], xs[3]],
            [ws[0], ws[1]],
            ws[3],
            self.conv.strides,
            self.conv.dilations,
            self.conv.padding,
        );
        match inputs[0].dtype() {
            DType::F32 => self.run::<f32>(&g, win, inputs),
            DType::F64 => self.run::<f64>(&g, win, inputs),
            d => Err(Error::dtype(
                self.name(),
                "computes in float32 or float64 only",
                &[d],
            )),
        }
    }
    /// `_MaxPoolReluGrad` gives the gradient at the pooling's input `z`; then BiasAdd's and
    /// Conv2D's own rules, as `_FusedConv2D` replays them (the same ops on the same values as
    /// the unfused graph, so the same bits). The argmax output has no gradient. Without the
    /// argmax output ([`without_argmax`](Self::without_argmax)) the forward is recomputed with it.
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (x, w, b) = (ctx.x(0), ctx.x(1), ctx.x(2));
        let recomputed;
        let (pooled, argmax) = if self.argmax {
            (ctx.y(0).clone(), ctx.y(1).clone())
        } else {
            let op = FusedConv2DMaxPool {
                argmax: true,
                ..self.clone()
            };
            recomputed = op.compute(&[x.clone(), w.clone(), b.clone()])?;
            (recomputed[0].clone(), recomputed[1].clone())
        };
        let (xs, ws) = (x.shape(), w.shape());
        let g = Conv2dGeom::new(
            [xs[0], xs[1], xs[2], xs[3]],
            [ws[0], ws[1]],
            ws[3],
            self.conv.strides,
            self.conv.dilations,
            self.conv.padding,
        );
        let dz = execute1(
            MaxPoolReluGrad {
                conv_hw: [g.oh, g.ow],
                window: self.window,
                relu: self.relu,
            },
            &[pooled, argmax, ctx.g(0).clone()],
        )?;
        let zs = [dz.clone()];
        let gzs = [dz.clone()];
        let mb = [dz.clone(), b.clone()];
        let mut gb = BiasAdd
            .grad(&GradCtx {
                inputs: &mb,
                outputs: &zs,
                grads: &gzs,
                needed: &[true, ctx.needs(2)],
            })?
            .into_iter();
        let gm = gb.next().flatten();
        let gbias = gb.next().flatten();
        let Some(gm) = gm else {
            return Ok(vec![None, None, gbias]);
        };
        let ms = [gm.clone()];
        let gms = [gm];
        let xw = [x.clone(), w.clone()];
        let mut out = self.conv_op().grad(&GradCtx {
            inputs: &xw,
            outputs: &ms,
            grads: &gms,
            needed: ctx.needed_prefix(2),
        })?;
        out.resize(2, None);
        out.push(gbias);
        Ok(out)
    }
}

/// `_MaxPoolReluGrad`: inputs `[pooled, argmax, dpooled]` of a [`FusedConv2DMaxPool`] (the
/// pooled values, their `uint8` argmax, the pooled gradient); output `dz` `[n, oh, ow, c]`, the
/// gradient at the convolution's (post-activation) output `z`: exactly
/// `ReluGrad(MaxPoolGrad(z, dpooled), z)` (`MaxPoolGrad` alone when `relu` is false) — `dpooled`
/// at each window's argmax when `pooled > 0`, 0 everywhere else, including the rows and columns
/// outside every window. No gradient of its own.
///
/// ```
/// use ferroflow_core::graph::optimize::conv_pool::MaxPoolReluGrad;
/// use ferroflow_core::{op::execute1, Tensor};
/// let op = MaxPoolReluGrad { conv_hw: [2, 3], window: [2, 2], relu: true };
/// let pooled = Tensor::from_vec(vec![3.0f32], &[1, 1, 1, 1])?;
/// let argmax = Tensor::from_vec(vec![2u8], &[1, 1, 1, 1])?; // row 1, column 0
/// let dp = Tensor::from_vec(vec![-0.5f32], &[1, 1, 1, 1])?;
/// let dz = execute1(op, &[pooled, argmax, dp])?;
/// assert_eq!(dz.to_vec::<f32>()?, vec![0.0, 0.0, 0.0, -0.5, 0.0, 0.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MaxPoolReluGrad {
    /// The convolution output's `[oh, ow]` (the shape of `dz`).
    pub conv_hw: [usize; 2],
    /// The pooling window `[ph, pw]` (= its strides).
    pub window: [usize; 2],
    /// Whether a ReLU preceded the pooling.
    pub relu: bool,
}

impl Op for MaxPoolReluGrad {
    fn name(&self) -> &'static str {
        "_MaxPoolReluGrad"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        if inputs.len() != 3 {
            return Err(Error::invalid(
                op,
                format!(
                    "expects 3 inputs (pooled, argmax, dpooled), got {}",
                    inputs.len()
                ),
            ));
        }
        let win = check_window(op, self.window)?;
        let (p, a, d) = (&inputs[0], &inputs[1], &inputs[2]);
        let shapes = [
            p.shape_for_error(),
            a.shape_for_error(),
            d.shape_for_error(),
        ];
        let shapes: Vec<&[usize]> = shapes.iter().map(|s| &s[..]).collect();
        let dtype = float_dtype(op, p.dtype)?;
        if d.dtype != dtype || a.dtype != DType::U8 {
            return Err(Error::dtype(
                op,
                "pooled and dpooled must share a float dtype and argmax must be uint8",
                &[p.dtype, a.dtype, d.dtype],
            ));
        }
        let (poh, pow) = win.pooled(self.conv_hw[0], self.conv_hw[1]);
        let fits = |s: &TensorSpec| {
            s.rank() == 4
                && [None, Some(poh), Some(pow), None]
                    .iter()
                    .zip(&s.shape)
                    .all(|(w, h)| w.is_none() || h.is_none() || w == h)
        };
        let same = |s: &TensorSpec| {
            s.shape
                .iter()
                .zip(&p.shape)
                .all(|(x, y)| x.is_none() || y.is_none() || x == y)
        };
        if !(fits(p) && fits(a) && fits(d) && same(a) && same(d)) {
            return Err(Error::shape(
                op,
                format!(
                    "pooled, argmax and dpooled must all have shape (n, {poh}, {pow}, c): the \
                     convolution output {:?} pooled by {:?}",
                    self.conv_hw, self.window
                ),
                &shapes,
            ));
        }
        Ok(vec![TensorSpec {
            dtype,
            shape: vec![
                p.shape[0],
                Some(self.conv_hw[0]),
                Some(self.conv_hw[1]),
                p.shape[3],
            ],
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let win = check_window(self.name(), self.window)?;
        let ps = inputs[0].shape();
        let shape = [ps[0], self.conv_hw[0], self.conv_hw[1], ps[3]];
        fn run<T: Float + StorageElement>(
            shape: [usize; 4],
            win: PoolWindow,
            relu: bool,
            inputs: &[Tensor],
        ) -> Result<Tensor> {
            let (p, a, d) = (
                inputs[0].data::<T>()?,
                inputs[1].data::<u8>()?,
                inputs[2].data::<T>()?,
            );
            let mut dz = vec![T::zero(); shape.iter().product()];
            max_pool_relu_grad(shape, win, relu, &p, &a, &d, &mut dz);
            Ok(tensor_from(dz, &shape))
        }
        let y = match inputs[0].dtype() {
            DType::F32 => run::<f32>(shape, win, self.relu, inputs)?,
            DType::F64 => run::<f64>(shape, win, self.relu, inputs)?,
            d => {
                return Err(Error::dtype(
                    self.name(),
                    "computes in float32 or float64 only",
                    &[d],
                ))
            }
        };
        Ok(vec![y])
    }
    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        no_gradient(self)
    }
}
