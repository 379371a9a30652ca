//! `_FusedConv2DMaxPoolGrad`: the backward pass of a fused `Conv2D + bias [+ ReLU] + MaxPool`
//! (VALID pooling, strides == window) from the pooled gradient, without the full-size gradient of
//! the convolution output (kernel: [`crate::kernels::conv_pool_grad`]).
//!
//! It replaces, in a training graph, the chain
//! `dz = ReluGrad(MaxPoolGrad(c, pooled, dpooled), c)` (or `_MaxPoolReluGrad(pooled, argmax,
//! dpooled)`) feeding `BiasAddGrad(dz)`, `Conv2DBackpropFilter(x, dz)` and optionally
//! `Conv2DBackpropInput(dz, w)`, with bit-identical results (TensorFlow has no such op: this is a
//! ferroflow remapper fusion in the spirit of Grappler's `_Fused*` ops).

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::conv::Conv2dGeom;
use crate::kernels::conv_pool_grad::{conv2d_max_pool_backward, PoolGradSource};
use crate::kernels::elementwise::tensor_from;
use crate::kernels::Float;
use crate::op::{execute, no_gradient, Dim, GradCtx, Op, TensorSpec};
use crate::ops::conv::{ConvAttrs, ConvKind};
use crate::storage::StorageElement;
use crate::tensor::Tensor;

const NAME: &str = "_FusedConv2DMaxPoolGrad";

/// `_FusedConv2DMaxPoolGrad`: inputs `[x, filter, pooled, argmax, dpooled]`, outputs
/// `[dw, db]` or `[dw, db, dx]` (when `want_dx`).
///
/// * `x` `[n, h, w, c]` and `filter` `[kh, kw, c, oc]`: the forward convolution's operands
///   (`conv`: its strides, padding and dilations);
/// * `pooled` `[n, oh / ph, ow / pw, oc]`: the forward output, `max_pool(relu?(conv + bias))`
///   with window `window = [ph, pw]`, strides equal to the window, VALID padding;
/// * `argmax` (u8, same shape): `i*pw + j`, the position in its window of the first maximum
///   (row-major; the element `MaxPoolGrad` routes the gradient to);
/// * `dpooled` (same shape): the gradient of `pooled`.
///
/// `dw`, `db`, `dx` are bit-identical to `Conv2DBackpropFilter`, `BiasAddGrad` and
/// `Conv2DBackpropInput` on `dz = ReluGrad(MaxPoolGrad(..), ..)` (`relu`) or
/// `MaxPoolGrad(..)` (no ReLU). The op has no gradient (an error if one is asked for).
///
/// ```
/// use ferroflow_core::ops::conv_pool_grad::FusedConv2DMaxPoolGrad;
/// use ferroflow_core::ops::{conv::ConvAttrs, Padding};
/// use ferroflow_core::Tensor;
/// // 1x2x2x1 input, 1x1 filter: the conv output is 2x2, one 2x2 window pools it to 1x1.
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[1, 2, 2, 1])?;
/// let w = Tensor::from_vec(vec![1.0f32], &[1, 1, 1, 1])?;
/// let pooled = Tensor::from_vec(vec![4.0f32], &[1, 1, 1, 1])?;
/// let argmax = Tensor::from_vec(vec![3u8], &[1, 1, 1, 1])?; // bottom-right element
/// let dpooled = Tensor::from_vec(vec![0.5f32], &[1, 1, 1, 1])?;
/// let conv = ConvAttrs { strides: [1, 1], padding: Padding::Valid, dilations: [1, 1] };
/// let op = FusedConv2DMaxPoolGrad::new(conv, [2, 2], true, true);
/// let out = op.call(&x, &w, &pooled, &argmax, &dpooled)?;
/// assert_eq!(out[0].to_vec::<f32>()?, vec![2.0]); // dw = x[1,1] * 0.5
/// assert_eq!(out[1].to_vec::<f32>()?, vec![0.5]); // db
/// assert_eq!(out[2].to_vec::<f32>()?, vec![0.0, 0.0, 0.0, 0.5]); // dx
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FusedConv2DMaxPoolGrad {
    /// The forward convolution's strides, padding and dilations.
    pub conv: ConvAttrs,
    /// The max-pool window `[ph, pw]` (also its strides; VALID padding; `ph*pw <= 256`).
    pub window: [usize; 2],
    /// Whether a ReLU sat between the bias and the pooling.
    pub relu: bool,
    /// Whether to compute the input gradient `dx` (the third output).
    pub want_dx: bool,
}

impl FusedConv2DMaxPoolGrad {
    /// The op for a convolution with `conv`, a max-pool `window`, with or without ReLU, with or
    /// without the input gradient (the remapper's constructor).
    pub fn new(conv: ConvAttrs, window: [usize; 2], relu: bool, want_dx: bool) -> Self {
        FusedConv2DMaxPoolGrad {
            conv,
            window,
            relu,
            want_dx,
        }
    }

    /// Runs the op on `[x, filter, pooled, argmax, dpooled]` (eagerly, or as a graph node while
    /// building a graph): `[dw, db]` or `[dw, db, dx]`.
    pub fn call(
        &self,
        x: &Tensor,
        filter: &Tensor,
        pooled: &Tensor,
        argmax: &Tensor,
        dpooled: &Tensor,
    ) -> Result<Vec<Tensor>> {
        execute(
            self.clone(),
            &[
                x.clone(),
                filter.clone(),
                pooled.clone(),
                argmax.clone(),
                dpooled.clone(),
            ],
        )
    }
}

fn known4(s: &[usize]) -> [usize; 4] {
    let mut out = [0; 4];
    for (o, &d) in out.iter_mut().zip(s) {
        *o = d;
    }
    out
}

impl Op for FusedConv2DMaxPoolGrad {
    fn name(&self) -> &'static str {
        NAME
    }

    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let [x, w, pooled, argmax, dpooled] = inputs else {
            return Err(Error::invalid(
                NAME,
                format!(
                    "expects 5 inputs (x, filter, pooled, argmax, dpooled), got {}",
                    inputs.len()
                ),
            ));
        };
        let all: Vec<Vec<usize>> = inputs.iter().map(|s| s.shape_for_error()).collect();
        let shapes: Vec<&[usize]> = all.iter().map(|s| &s[..]).collect();
        let dtype = x.dtype;
        if !matches!(dtype, DType::F32 | DType::F64)
            || [w, pooled, dpooled].iter().any(|s| s.dtype != dtype)
        {
            return Err(Error::dtype(
                NAME,
                "x, filter, pooled and dpooled must all be float32 or all float64",
                &[x.dtype, w.dtype, pooled.dtype, dpooled.dtype],
            ));
        }
        if argmax.dtype != DType::U8 {
            return Err(Error::dtype(NAME, "argmax must be uint8", &[argmax.dtype]));
        }
        for (what, s) in [
            ("x", x),
            ("filter", w),
            ("pooled", pooled),
            ("argmax", argmax),
            ("dpooled", dpooled),
        ] {
            if s.rank() != 4 {
                return Err(Error::shape(
                    NAME,
                    format!("{what} must be rank 4 (x NHWC, filter [kh, kw, in, out])"),
                    &shapes,
                ));
            }
        }
        let [ph, pw] = self.window;
        if ph == 0 || pw == 0 || ph * pw > 256 {
            return Err(Error::invalid(
                NAME,
                format!(
                    "the pool window must be positive with at most 256 elements (a u8 argmax), \
                     got {:?}",
                    self.window
                ),
            ));
        }
        let conv_out =
            self.conv
                .output_shape(NAME, ConvKind::Regular, &x.shape, &w.shape, &shapes[..2])?;
        let want: Vec<Dim> = vec![
            conv_out[0],
            conv_out[1].map(|d| d / ph),
            conv_out[2].map(|d| d / pw),
            conv_out[3],
        ];
        for (what, s) in [("pooled", pooled), ("argmax", argmax), ("dpooled", dpooled)] {
            let agree = want
                .iter()
                .zip(&s.shape)
                .all(|(a, b)| a.is_none() || b.is_none() || a == b);
            if !agree {
                let want_s: Vec<usize> = want.iter().map(|d| d.unwrap_or(0)).collect();
                return Err(Error::shape(
                    NAME,
                    format!(
                        "{what} (first shape) must have the shape of the pooled convolution \
                         output [n, conv_h / {ph}, conv_w / {pw}, out_channels] (second shape; \
                         0 = unknown)"
                    ),
                    &[&s.shape_for_error(), &want_s],
                ));
            }
        }
        let mut out = vec![
            TensorSpec {
                dtype,
                shape: w.shape.clone(),
            },
            TensorSpec {
                dtype,
                shape: vec![w.shape[3]],
            },
        ];
        if self.want_dx {
            out.push(TensorSpec {
                dtype,
                shape: x.shape.clone(),
            });
        }
        Ok(out)
    }

    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (x, w) = (&inputs[0], &inputs[1]);
        let ws = known4(w.shape());
        let g = Conv2dGeom::new(
            known4(x.shape()),
            [ws[0], ws[1]],
            ws[3],
            self.conv.strides,
            self.conv.dilations,
            self.conv.padding,
        );
        fn run<T: Float + StorageElement>(
            op: &FusedConv2DMaxPoolGrad,
            g: &Conv2dGeom,
            inputs: &[Tensor],
        ) -> Result<Vec<Tensor>> {
            let (x, w) = (inputs[0].data::<T>()?, inputs[1].data::<T>()?);
            let (pooled, argmax, dpooled) = (
                inputs[2].data::<T>()?,
                inputs[3].data::<u8>()?,
                inputs[4].data::<T>()?,
            );
            let src = PoolGradSource {
                window: op.window,
                relu: op.relu,
                pooled: &pooled,
                argmax: &argmax,
                dpooled: &dpooled,
            };
            let mut dw = vec![T::zero(); g.filter_len()];
            let mut db = vec![T::zero(); g.oc];
            let mut dx = if op.want_dx {
                vec![T::zero(); g.input_len()]
            } else {
                Vec::new()
            };
            let dx_out = if op.want_dx { Some(&mut dx[..]) } else { None };
            conv2d_max_pool_backward(g, src, &x, &w, &mut dw, &mut db, dx_out);
            let mut out = vec![tensor_from(dw, inputs[1].shape()), tensor_from(db, &[g.oc])];
            if op.want_dx {
                out.push(tensor_from(dx, inputs[0].shape()));
            }
            Ok(out)
        }
        match x.dtype() {
            DType::F32 => run::<f32>(self, &g, inputs),
            DType::F64 => run::<f64>(self, &g, inputs),
            d => Err(Error::dtype(NAME, "x must be float32 or float64", &[d])),
        }
    }

    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        no_gradient(self)
    }
}
