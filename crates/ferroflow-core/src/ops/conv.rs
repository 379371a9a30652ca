//! Convolutions (NHWC activations, HWIO filters, TensorFlow `valid`/`same` padding): `conv2d`,
//! `conv1d`, `depthwise_conv2d`, `conv2d_transpose` and the backprop ops their gradients use.
//!
//! Each convolution family is three ops that are each other's gradients, so derivatives of any
//! order work:
//! * forward `y = conv(x, w)` (`Conv2D`, `DepthwiseConv2dNative`),
//! * `dx = backprop_input(w, dy)` (`Conv2DBackpropInput`, also the forward pass of
//!   `conv2d_transpose`),
//! * `dw = backprop_filter(x, dy)` (`Conv2DBackpropFilter`).
//!
//! All three are bilinear, with `<conv(x, w), dy> = <x, backprop_input(w, dy)> =
//! <w, backprop_filter(x, dy)>`; every gradient below follows from that identity.

use std::borrow::Cow;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::conv::{
    conv2d_backward_filter, conv2d_backward_input, conv2d_forward, conv2d_forward_fused_vec,
    depthwise_conv2d_backward_filter, depthwise_conv2d_backward_input, depthwise_conv2d_forward,
    Conv2dGeom, DepthwiseGeom,
};
use crate::kernels::elementwise::{cast as cast_kernel, tensor_from};
use crate::kernels::padding::{out_size_and_pads, Padding};
use crate::kernels::Float;
use crate::op::{execute1, Dim, GradCtx, Op, TensorSpec};
use crate::ops::unary::UnaryOp;
use crate::ops::{expand_dims, squeeze};
use crate::storage::StorageElement;
use crate::tensor::Tensor;

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by `ops::pool`).

/// A kernel over float slices, run in the input dtype (f32/f64) or in f32 for f16/bf16.
pub(crate) trait FloatKernel {
    /// Computes `out` (overwritten) from the contiguous inputs.
    fn run<T: Float>(&self, inputs: &[&[T]], out: &mut [T]);
}

fn run_typed<T: Float + StorageElement, K: FloatKernel>(
    k: &K,
    inputs: &[&Tensor],
    out_shape: &[usize],
) -> Result<Tensor> {
    let data: Vec<Cow<'_, [T]>> = inputs
        .iter()
        .map(|t| t.data::<T>())
        .collect::<Result<_>>()?;
    let slices: Vec<&[T]> = data.iter().map(|d| &**d).collect();
    let mut out = vec![T::zero(); out_shape.iter().product()];
    k.run(&slices, &mut out);
    Ok(tensor_from(out, out_shape))
}

/// Runs `k` on `inputs` (all of one float dtype): natively for f32/f64, through f32 for
/// f16/bf16 (cast back to the input dtype).
pub(crate) fn compute_float<K: FloatKernel>(
    op: &str,
    k: &K,
    inputs: &[&Tensor],
    out_shape: &[usize],
) -> Result<Tensor> {
    let dtype = inputs
        .first()
        .map(|t| t.dtype())
        .ok_or_else(|| Error::invalid(op, "no inputs"))?;
    match dtype {
        DType::F32 => run_typed::<f32, K>(k, inputs, out_shape),
        DType::F64 => run_typed::<f64, K>(k, inputs, out_shape),
        DType::F16 | DType::BF16 => {
            let up: Vec<Tensor> = inputs.iter().map(|t| cast_kernel(t, DType::F32)).collect();
            let up: Vec<&Tensor> = up.iter().collect();
            let y = run_typed::<f32, K>(k, &up, out_shape)?;
            Ok(cast_kernel(&y, dtype))
        }
        d => Err(Error::dtype(op, "expects a float tensor", &[d])),
    }
}

/// Checks that every input has one float dtype and returns it.
pub(crate) fn check_float(op: &str, specs: &[&TensorSpec]) -> Result<DType> {
    let dtypes: Vec<DType> = specs.iter().map(|s| s.dtype).collect();
    let d = dtypes[0];
    if !d.is_float() {
        return Err(Error::dtype(op, "expects float tensors", &dtypes));
    }
    if dtypes.iter().any(|&x| x != d) {
        return Err(Error::dtype(
            op,
            "all inputs must have the same dtype (use cast)",
            &dtypes,
        ));
    }
    Ok(d)
}

/// Checks that strides (and dilations) are positive.
pub(crate) fn check_positive(op: &str, what: &str, v: [usize; 2]) -> Result<()> {
    if v.contains(&0) {
        return Err(Error::invalid(
            op,
            format!("{what} must be positive, got {v:?}"),
        ));
    }
    Ok(())
}

/// Output length of a windowed op along one axis (`None` when unknown) for a window of `k`
/// taps with `(stride, dilation)`; an error when a `valid` window does not fit. `shapes` are the op's input shapes, for the message.
pub(crate) fn window_out_dim(
    op: &str,
    axis: &str,
    in_size: Dim,
    k: Dim,
    (stride, dilation): (usize, usize),
    padding: Padding,
    shapes: &[&[usize]],
) -> Result<Dim> {
    // Reject windows whose extent overflows (the kernels' index arithmetic assumes it fits).
    if let Some(k) = k {
        let eff = dilation
            .checked_mul(k.saturating_sub(1))
            .and_then(|e| e.checked_add(1))
            .and_then(|e| e.checked_add(in_size.unwrap_or(0)))
            .and_then(|e| e.checked_add(stride));
        if eff.is_none() {
            return Err(Error::shape(
                op,
                format!("the {axis} window (size {k}, dilation {dilation}) is too large"),
                shapes,
            ));
        }
    }
    match (in_size, k, padding) {
        (Some(i), _, Padding::Same) => Ok(Some(i.div_ceil(stride.max(1)))),
        (Some(i), Some(k), Padding::Valid) => {
            let (o, _, _) = out_size_and_pads(i, k, stride, dilation, padding);
            if o == 0 {
                let eff = if k == 0 { 0 } else { dilation * (k - 1) + 1 };
                return Err(Error::shape(
                    op,
                    format!(
                        "with valid padding the {axis} window (size {k}, dilation {dilation}, \
                         effective size {eff}) does not fit in the input {axis} of {i}"
                    ),
                    shapes,
                ));
            }
            Ok(Some(o))
        }
        _ => Ok(None),
    }
}

/// Two possibly unknown dims are compatible when either is unknown or they agree.
fn dims_agree(a: Dim, b: Dim) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

fn known4(s: &[usize]) -> [usize; 4] {
    let mut out = [0; 4];
    for (o, &d) in out.iter_mut().zip(s) {
        *o = d;
    }
    out
}

fn shape_arg(op: &str, what: &str, s: &[usize]) -> Result<[usize; 4]> {
    if s.len() != 4 {
        return Err(Error::shape(
            op,
            format!("{what} must have 4 entries, got {}", s.len()),
            &[s],
        ));
    }
    Ok(known4(s))
}

// ---------------------------------------------------------------------------------------------
// Attributes and geometry.

/// Which convolution family an op belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvKind {
    /// Regular convolution, filter `[kh, kw, in, out]`.
    Regular,
    /// Depthwise convolution, filter `[kh, kw, in, multiplier]`, `in*multiplier` outputs.
    Depthwise,
}

impl ConvKind {
    fn names(self) -> [&'static str; 3] {
        match self {
            ConvKind::Regular => ["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"],
            ConvKind::Depthwise => [
                "DepthwiseConv2dNative",
                "DepthwiseConv2dNativeBackpropInput",
                "DepthwiseConv2dNativeBackpropFilter",
            ],
        }
    }

    /// Output channels for a filter shape.
    fn out_channels(self, w: &[Dim]) -> Dim {
        match self {
            ConvKind::Regular => w[3],
            ConvKind::Depthwise => match (w[2], w[3]) {
                (Some(c), Some(m)) => Some(c * m),
                (Some(0), _) | (_, Some(0)) => Some(0),
                _ => None,
            },
        }
    }
}

/// Strides, padding and dilations of a 2-D convolution (`[along H, along W]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvAttrs {
    /// Strides `[sh, sw]` (>= 1).
    pub strides: [usize; 2],
    /// `valid` or `same`.
    pub padding: Padding,
    /// Dilations `[dh, dw]` (>= 1).
    pub dilations: [usize; 2],
}

impl ConvAttrs {
    /// Validates the attributes and the input (`x`, NHWC) / filter (`w`) shapes, and returns the
    /// output shape `[n, oh, ow, out_channels]` (unknown where the inputs are unknown).
    pub(crate) fn output_shape(
        &self,
        op: &str,
        kind: ConvKind,
        x: &[Dim],
        w: &[Dim],
        shapes: &[&[usize]],
    ) -> Result<Vec<Dim>> {
        check_positive(op, "strides", self.strides)?;
        check_positive(op, "dilations", self.dilations)?;
        if !dims_agree(x[3], w[2]) {
            return Err(Error::shape(
                op,
                format!(
                    "the input has {} channels but the filter expects {} (filter dim 2)",
                    x[3].unwrap_or(0),
                    w[2].unwrap_or(0)
                ),
                shapes,
            ));
        }
        let oh = window_out_dim(
            op,
            "height",
            x[1],
            w[0],
            (self.strides[0], self.dilations[0]),
            self.padding,
            shapes,
        )?;
        let ow = window_out_dim(
            op,
            "width",
            x[2],
            w[1],
            (self.strides[1], self.dilations[1]),
            self.padding,
            shapes,
        )?;
        Ok(vec![x[0], oh, ow, kind.out_channels(w)])
    }
}

/// The kernel geometry of one call, for concrete input and filter shapes.
#[derive(Clone, Copy, Debug)]
enum Geom {
    Regular(Conv2dGeom),
    Depthwise(DepthwiseGeom),
}

impl Geom {
    fn new(kind: ConvKind, a: &ConvAttrs, x: [usize; 4], w: [usize; 4]) -> Geom {
        match kind {
            ConvKind::Regular => Geom::Regular(Conv2dGeom::new(
                x,
                [w[0], w[1]],
                w[3],
                a.strides,
                a.dilations,
                a.padding,
            )),
            ConvKind::Depthwise => Geom::Depthwise(DepthwiseGeom::new(
                x,
                [w[0], w[1]],
                w[3],
                a.strides,
                a.dilations,
                a.padding,
            )),
        }
    }
}

/// Which of the three bilinear maps to run.
#[derive(Clone, Copy, Debug)]
enum Pass {
    Forward,
    BackpropInput,
    BackpropFilter,
}

struct ConvKernel(Geom, Pass);

impl FloatKernel for ConvKernel {
    fn run<T: Float>(&self, i: &[&[T]], out: &mut [T]) {
        match (self.0, self.1) {
            (Geom::Regular(g), Pass::Forward) => conv2d_forward(&g, i[0], i[1], out),
            (Geom::Regular(g), Pass::BackpropInput) => conv2d_backward_input(&g, i[1], i[0], out),
            (Geom::Regular(g), Pass::BackpropFilter) => conv2d_backward_filter(&g, i[0], i[1], out),
            (Geom::Depthwise(g), Pass::Forward) => depthwise_conv2d_forward(&g, i[0], i[1], out),
            (Geom::Depthwise(g), Pass::BackpropInput) => {
                depthwise_conv2d_backward_input(&g, i[1], i[0], out)
            }
            (Geom::Depthwise(g), Pass::BackpropFilter) => {
                depthwise_conv2d_backward_filter(&g, i[0], i[1], out)
            }
        }
    }
}

fn dims(s: &[usize]) -> Vec<Dim> {
    s.iter().map(|&d| Some(d)).collect()
}

/// Checks `dy` against the output shape the forward convolution would produce.
fn check_dy(op: &str, want: &[Dim], dy: &TensorSpec, shapes: &[&[usize]]) -> Result<()> {
    if want.iter().zip(&dy.shape).all(|(&a, &b)| dims_agree(a, b)) {
        return Ok(());
    }
    let want: Vec<String> = want
        .iter()
        .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
        .collect();
    Err(Error::shape(
        op,
        format!(
            "the output gradient (out_backprop) must have the forward convolution's output \
             shape ({}), inconsistent with the given input/output sizes",
            want.join(", ")
        ),
        shapes,
    ))
}

// ---------------------------------------------------------------------------------------------
// The ops.

/// `Conv2D` / `DepthwiseConv2dNative`: inputs `[input, filter]`.
#[derive(Clone, Debug)]
pub struct Conv2D {
    /// Regular or depthwise.
    pub kind: ConvKind,
    /// Strides, padding, dilations.
    pub attrs: ConvAttrs,
}

impl Op for Conv2D {
    fn name(&self) -> &'static str {
        self.kind.names()[0]
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        let (x, w) = (&inputs[0], &inputs[1]);
        let shapes = [&x.shape_for_error()[..], &w.shape_for_error()[..]];
        let dtype = check_float(op, &[x, w])?;
        if x.rank() != 4 {
            return Err(rank_err(op, "input", &shapes));
        }
        if w.rank() != 4 {
            return Err(rank_err(op, "filter", &shapes));
        }
        let shape = self
            .attrs
            .output_shape(op, self.kind, &x.shape, &w.shape, &shapes)?;
        Ok(vec![TensorSpec { dtype, shape }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (x, w) = (&inputs[0], &inputs[1]);
        let g = Geom::new(self.kind, &self.attrs, known4(x.shape()), known4(w.shape()));
        if let Some(y) = direct_forward_new(&g, x, w)? {
            return Ok(vec![y]);
        }
        let out = out_shape_of(&g);
        Ok(vec![compute_float(
            self.name(),
            &ConvKernel(g, Pass::Forward),
            &[x, w],
            &out,
        )?])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (x, w, g) = (ctx.x(0), ctx.x(1), ctx.g(0));
        // A model's first convolution needs no input gradient: skip it when the caller says so.
        let dx = match ctx.needs(0) {
            true => Some(backprop_input_op(self.kind, self.attrs, x.shape(), w, g)?),
            false => None,
        };
        let dw = match ctx.needs(1) {
            true => Some(backprop_filter_op(self.kind, self.attrs, x, w.shape(), g)?),
            false => None,
        };
        Ok(vec![dx, dw])
    }
}

/// A regular `f32` convolution through [`conv2d_forward_fused_vec`] (its output written once,
/// without a zero fill, when the AVX-512 direct kernel takes it); `None` for anything else, which
/// goes through [`compute_float`]. The same bits either way.
fn direct_forward_new(g: &Geom, x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    let Geom::Regular(g) = g else {
        return Ok(None);
    };
    if x.dtype() != DType::F32 || w.dtype() != DType::F32 {
        return Ok(None);
    }
    let (xd, wd) = (x.data::<f32>()?, w.data::<f32>()?);
    let y = conv2d_forward_fused_vec(g, &xd, &wd, None, false);
    Ok(Some(tensor_from(y, &[g.n, g.oh, g.ow, g.oc])))
}

/// `_FusedConv2D`'s fast path: when `base` is a regular [`Conv2D`], `inputs` are
/// `[x, filter, bias]` of one dtype f32/f64 with a bias of `[out_channels]`, and `activation` is
/// none or ReLU, computes `activation(conv2d(x, filter) + bias)` with the bias and ReLU applied in
/// the convolution's write pass ([`conv2d_forward_fused`]; bit-identical to the unfused ops).
/// Returns `None` for anything else (the caller runs the general path).
pub(crate) fn fused_conv2d_bias_relu(
    base: &dyn Op,
    inputs: &[Tensor],
    activation: Option<UnaryOp>,
) -> Result<Option<Tensor>> {
    let Some(conv) = base.as_any().downcast_ref::<Conv2D>() else {
        return Ok(None);
    };
    let relu = match activation {
        None => false,
        Some(UnaryOp::Relu) => true,
        Some(_) => return Ok(None),
    };
    let [x, w, b] = inputs else {
        return Ok(None);
    };
    let dtype = x.dtype();
    if conv.kind != ConvKind::Regular
        || !matches!(dtype, DType::F32 | DType::F64)
        || w.dtype() != dtype
        || b.dtype() != dtype
        || x.shape().len() != 4
        || w.shape().len() != 4
        || b.shape() != [w.shape()[3]]
        || x.shape()[3] != w.shape()[2]
    {
        return Ok(None);
    }
    let Geom::Regular(g) = Geom::new(conv.kind, &conv.attrs, known4(x.shape()), known4(w.shape()))
    else {
        return Ok(None);
    };
    if g.oh == 0 || g.ow == 0 {
        return Ok(None);
    }
    fn run<T: Float + StorageElement>(
        g: &Conv2dGeom,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        relu: bool,
    ) -> Result<Tensor> {
        let (xd, wd, bd) = (x.data::<T>()?, w.data::<T>()?, b.data::<T>()?);
        let out = conv2d_forward_fused_vec(g, &xd, &wd, Some(&bd), relu);
        Ok(tensor_from(out, &[g.n, g.oh, g.ow, g.oc]))
    }
    Ok(Some(match dtype {
        DType::F32 => run::<f32>(&g, x, w, b, relu)?,
        _ => run::<f64>(&g, x, w, b, relu)?,
    }))
}

fn rank_err(op: &str, what: &str, shapes: &[&[usize]; 2]) -> Error {
    Error::shape(
        op,
        format!("the {what} must be rank 4 (input NHWC, filter [kh, kw, in, out])"),
        shapes,
    )
}

fn out_shape_of(g: &Geom) -> Vec<usize> {
    match g {
        Geom::Regular(g) => vec![g.n, g.oh, g.ow, g.oc],
        Geom::Depthwise(g) => vec![g.n, g.oh, g.ow, g.out_channels()],
    }
}

/// `Conv2DBackpropInput` / `DepthwiseConv2dNativeBackpropInput`: inputs `[filter, out_backprop]`,
/// output of shape `input_sizes`.
#[derive(Clone, Debug)]
pub struct Conv2DBackpropInput {
    /// Regular or depthwise.
    pub kind: ConvKind,
    /// Strides, padding, dilations of the forward convolution.
    pub attrs: ConvAttrs,
    /// Shape of the forward convolution's input (`[n, h, w, c]`).
    pub input_sizes: [usize; 4],
}

impl Op for Conv2DBackpropInput {
    fn name(&self) -> &'static str {
        self.kind.names()[1]
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        let (w, dy) = (&inputs[0], &inputs[1]);
        let (ws, dys) = (w.shape_for_error(), dy.shape_for_error());
        let shapes = [&self.input_sizes[..], &ws[..], &dys[..]];
        let dtype = check_float(op, &[w, dy])?;
        for (what, s) in [("filter", w), ("out_backprop", dy)] {
            if s.rank() != 4 {
                return Err(Error::shape(
                    op,
                    format!("the {what} must be rank 4"),
                    &shapes,
                ));
            }
        }
        let want =
            self.attrs
                .output_shape(op, self.kind, &dims(&self.input_sizes), &w.shape, &shapes)?;
        check_dy(op, &want, dy, &shapes)?;
        Ok(vec![TensorSpec::new(dtype, &self.input_sizes)])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (w, dy) = (&inputs[0], &inputs[1]);
        let g = Geom::new(self.kind, &self.attrs, self.input_sizes, known4(w.shape()));
        Ok(vec![compute_float(
            self.name(),
            &ConvKernel(g, Pass::BackpropInput),
            &[w, dy],
            &self.input_sizes,
        )?])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        // out = B(w, dy); <B(w, dy), G> = <conv(G, w), dy>, so
        // d/dw = backprop_filter(G, w.shape, dy) and d/d(dy) = conv(G, w).
        let (w, dy, g) = (ctx.x(0), ctx.x(1), ctx.g(0));
        let dw = backprop_filter_op(self.kind, self.attrs, g, w.shape(), dy)?;
        let ddy = forward_op(self.kind, self.attrs, g, w)?;
        Ok(vec![Some(dw), Some(ddy)])
    }
}

/// `Conv2DBackpropFilter` / `DepthwiseConv2dNativeBackpropFilter`: inputs
/// `[input, out_backprop]`, output of shape `filter_sizes`.
#[derive(Clone, Debug)]
pub struct Conv2DBackpropFilter {
    /// Regular or depthwise.
    pub kind: ConvKind,
    /// Strides, padding, dilations of the forward convolution.
    pub attrs: ConvAttrs,
    /// Shape of the forward convolution's filter.
    pub filter_sizes: [usize; 4],
}

impl Op for Conv2DBackpropFilter {
    fn name(&self) -> &'static str {
        self.kind.names()[2]
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let op = self.name();
        let (x, dy) = (&inputs[0], &inputs[1]);
        let (xs, dys) = (x.shape_for_error(), dy.shape_for_error());
        let shapes = [&xs[..], &self.filter_sizes[..], &dys[..]];
        let dtype = check_float(op, &[x, dy])?;
        for (what, s) in [("input", x), ("out_backprop", dy)] {
            if s.rank() != 4 {
                return Err(Error::shape(
                    op,
                    format!("the {what} must be rank 4"),
                    &shapes,
                ));
            }
        }
        let want =
            self.attrs
                .output_shape(op, self.kind, &x.shape, &dims(&self.filter_sizes), &shapes)?;
        check_dy(op, &want, dy, &shapes)?;
        Ok(vec![TensorSpec::new(dtype, &self.filter_sizes)])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (x, dy) = (&inputs[0], &inputs[1]);
        let g = Geom::new(self.kind, &self.attrs, known4(x.shape()), self.filter_sizes);
        Ok(vec![compute_float(
            self.name(),
            &ConvKernel(g, Pass::BackpropFilter),
            &[x, dy],
            &self.filter_sizes,
        )?])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        // out = F(x, dy); <F(x, dy), G> = <conv(x, G), dy>, so
        // d/dx = backprop_input(x.shape, G, dy) and d/d(dy) = conv(x, G).
        let (x, dy, g) = (ctx.x(0), ctx.x(1), ctx.g(0));
        let dx = backprop_input_op(self.kind, self.attrs, x.shape(), g, dy)?;
        let ddy = forward_op(self.kind, self.attrs, x, g)?;
        Ok(vec![Some(dx), Some(ddy)])
    }
}

fn forward_op(kind: ConvKind, attrs: ConvAttrs, x: &Tensor, w: &Tensor) -> Result<Tensor> {
    execute1(Conv2D { kind, attrs }, &[x.clone(), w.clone()])
}

fn backprop_input_op(
    kind: ConvKind,
    attrs: ConvAttrs,
    input_sizes: &[usize],
    w: &Tensor,
    dy: &Tensor,
) -> Result<Tensor> {
    let input_sizes = shape_arg(kind.names()[1], "input_sizes", input_sizes)?;
    execute1(
        Conv2DBackpropInput {
            kind,
            attrs,
            input_sizes,
        },
        &[w.clone(), dy.clone()],
    )
}

fn backprop_filter_op(
    kind: ConvKind,
    attrs: ConvAttrs,
    x: &Tensor,
    filter_sizes: &[usize],
    dy: &Tensor,
) -> Result<Tensor> {
    let filter_sizes = shape_arg(kind.names()[2], "filter_sizes", filter_sizes)?;
    execute1(
        Conv2DBackpropFilter {
            kind,
            attrs,
            filter_sizes,
        },
        &[x.clone(), dy.clone()],
    )
}

fn attrs(strides: [usize; 2], padding: Padding, dilations: [usize; 2]) -> ConvAttrs {
    ConvAttrs {
        strides,
        padding,
        dilations,
    }
}

// ---------------------------------------------------------------------------------------------
// Public functions.

/// `tf.nn.conv2d(input, filters, strides, padding, dilations=dilations)` with NHWC data: input
/// `[n, h, w, in]`, filters `[kh, kw, in, out]`, output `[n, oh, ow, out]` (op `Conv2D`).
///
/// `strides` and `dilations` are `[along H, along W]` and must be positive. `same` padding
/// gives `oh = ceil(h / sh)` and puts the odd padding element at the bottom/right, as TF.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::Padding;
/// // 3x3 image of ones, 2x2 filter of ones: every valid window sums 4 ones.
/// let x = Tensor::from_vec(vec![1.0f32; 9], &[1, 3, 3, 1])?;
/// let w = Tensor::from_vec(vec![1.0f32; 4], &[2, 2, 1, 1])?;
/// let y = ops::conv2d(&x, &w, [1, 1], Padding::Valid, [1, 1])?;
/// assert_eq!(y.shape(), &[1, 2, 2, 1]);
/// assert_eq!(y.to_vec::<f32>()?, vec![4.0; 4]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn conv2d(
    input: &Tensor,
    filters: &Tensor,
    strides: [usize; 2],
    padding: Padding,
    dilations: [usize; 2],
) -> Result<Tensor> {
    forward_op(
        ConvKind::Regular,
        attrs(strides, padding, dilations),
        input,
        filters,
    )
}

/// `tf.nn.conv2d_backprop_input`: the gradient of [`conv2d`] with respect to its input, for an
/// input of shape `input_sizes` (`[n, h, w, in]`), `filters` `[kh, kw, in, out]` and output
/// gradient `dy` `[n, oh, ow, out]` (op `Conv2DBackpropInput`).
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::Padding;
/// let w = Tensor::from_vec(vec![1.0f64; 4], &[2, 2, 1, 1])?;
/// let dy = Tensor::from_vec(vec![1.0f64; 4], &[1, 2, 2, 1])?;
/// let dx = ops::conv2d_backprop_input(&[1, 3, 3, 1], &w, &dy, [1, 1], Padding::Valid, [1, 1])?;
/// // how many 2x2 windows cover each pixel of a 3x3 image
/// assert_eq!(dx.to_vec::<f64>()?, vec![1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn conv2d_backprop_input(
    input_sizes: &[usize],
    filters: &Tensor,
    dy: &Tensor,
    strides: [usize; 2],
    padding: Padding,
    dilations: [usize; 2],
) -> Result<Tensor> {
    backprop_input_op(
        ConvKind::Regular,
        attrs(strides, padding, dilations),
        input_sizes,
        filters,
        dy,
    )
}

/// `tf.nn.conv2d_backprop_filter`: the gradient of [`conv2d`] with respect to its filter of
/// shape `filter_sizes` (`[kh, kw, in, out]`), for `input` `[n, h, w, in]` and output gradient
/// `dy` `[n, oh, ow, out]` (op `Conv2DBackpropFilter`).
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::Padding;
/// let x = Tensor::from_vec((1..=9).map(|v| v as f64).collect(), &[1, 3, 3, 1])?;
/// let dy = Tensor::from_vec(vec![1.0f64; 4], &[1, 2, 2, 1])?;
/// let dw = ops::conv2d_backprop_filter(&x, &[2, 2, 1, 1], &dy, [1, 1], Padding::Valid, [1, 1])?;
/// // each tap sums the 2x2 block of inputs it sees: 1+2+4+5, 2+3+5+6, ...
/// assert_eq!(dw.to_vec::<f64>()?, vec![12.0, 16.0, 24.0, 28.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn conv2d_backprop_filter(
    input: &Tensor,
    filter_sizes: &[usize],
    dy: &Tensor,
    strides: [usize; 2],
    padding: Padding,
    dilations: [usize; 2],
) -> Result<Tensor> {
    backprop_filter_op(
        ConvKind::Regular,
        attrs(strides, padding, dilations),
        input,
        filter_sizes,
        dy,
    )
}

/// `tf.nn.conv1d(input, filters, stride, padding, dilations=dilation)`: input `[n, w, in]`,
/// filters `[k, in, out]`, output `[n, ow, out]`.
///
/// Runs [`conv2d`] on `[n, 1, w, in]` with a `[1, k, in, out]` filter (as TensorFlow does), so
/// errors come from `Conv2D` and gradients come for free.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::Padding;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[1, 4, 1])?;
/// let w = Tensor::from_vec(vec![1.0f32, -1.0], &[2, 1, 1])?;
/// let y = ops::conv1d(&x, &w, 1, Padding::Valid, 1)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![-1.0, -1.0, -1.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn conv1d(
    input: &Tensor,
    filters: &Tensor,
    stride: usize,
    padding: Padding,
    dilation: usize,
) -> Result<Tensor> {
    if input.rank() != 3 || filters.rank() != 3 {
        return Err(Error::shape(
            "Conv1D",
            "expects input [n, w, in] and filters [k, in, out] (rank 3)",
            &[input.shape(), filters.shape()],
        ));
    }
    let x = expand_dims(input, 1)?;
    let w = expand_dims(filters, 0)?;
    let y = conv2d(&x, &w, [1, stride], padding, [1, dilation])?;
    squeeze(&y, &[1])
}

/// `tf.nn.depthwise_conv2d(input, filter, strides, padding, dilations=dilations)`: input
/// `[n, h, w, c]`, filter `[kh, kw, c, multiplier]`, output `[n, oh, ow, c*multiplier]` where
/// output channel `ci*multiplier + m` convolves input channel `ci` with `filter[.., .., ci, m]`
/// (op `DepthwiseConv2dNative`).
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::Padding;
/// // two channels (1 and 10 everywhere), multiplier 1, 2x2 filter [1, 2] per tap
/// let x = Tensor::from_vec(vec![1.0f32, 10.0, 1.0, 10.0, 1.0, 10.0, 1.0, 10.0], &[1, 2, 2, 2])?;
/// let w = Tensor::from_vec(vec![1.0f32, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0], &[2, 2, 2, 1])?;
/// let y = ops::depthwise_conv2d(&x, &w, [1, 1], Padding::Valid, [1, 1])?;
/// assert_eq!(y.to_vec::<f32>()?, vec![4.0, 80.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn depthwise_conv2d(
    input: &Tensor,
    filter: &Tensor,
    strides: [usize; 2],
    padding: Padding,
    dilations: [usize; 2],
) -> Result<Tensor> {
    forward_op(
        ConvKind::Depthwise,
        attrs(strides, padding, dilations),
        input,
        filter,
    )
}

/// `tf.nn.depthwise_conv2d_backprop_input`: gradient of [`depthwise_conv2d`] with respect to
/// its input of shape `input_sizes` (op `DepthwiseConv2dNativeBackpropInput`).
pub fn depthwise_conv2d_backprop_input(
    input_sizes: &[usize],
    filter: &Tensor,
    dy: &Tensor,
    strides: [usize; 2],
    padding: Padding,
    dilations: [usize; 2],
) -> Result<Tensor> {
    backprop_input_op(
        ConvKind::Depthwise,
        attrs(strides, padding, dilations),
        input_sizes,
        filter,
        dy,
    )
}

/// `tf.nn.depthwise_conv2d_backprop_filter`: gradient of [`depthwise_conv2d`] with respect to
/// its filter of shape `filter_sizes` (op `DepthwiseConv2dNativeBackpropFilter`).
pub fn depthwise_conv2d_backprop_filter(
    input: &Tensor,
    filter_sizes: &[usize],
    dy: &Tensor,
    strides: [usize; 2],
    padding: Padding,
    dilations: [usize; 2],
) -> Result<Tensor> {
    backprop_filter_op(
        ConvKind::Depthwise,
        attrs(strides, padding, dilations),
        input,
        filter_sizes,
        dy,
    )
}

/// `tf.nn.conv2d_transpose(input, filters, output_shape, strides, padding, dilations=...)`:
/// input `[n, h, w, in]`, filters `[kh, kw, out, in]`, output of shape `output_shape`
/// (`[n, oh, ow, out]`).
///
/// This is [`conv2d_backprop_input`] with `dy = input` (TensorFlow builds the same
/// `Conv2DBackpropInput` op): `output_shape` must be a shape whose [`conv2d`] with `filters`
/// (same strides, padding and dilations) has the input's shape, otherwise a shape error.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// use ferroflow_core::ops::Padding;
/// // stride 2, 1x1 kernel of 1: spreads the input onto every other pixel
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[1, 2, 2, 1])?;
/// let w = Tensor::from_vec(vec![1.0f32], &[1, 1, 1, 1])?;
/// let y = ops::conv2d_transpose(&x, &w, &[1, 3, 3, 1], [2, 2], Padding::Valid, [1, 1])?;
/// assert_eq!(y.to_vec::<f32>()?, vec![1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 4.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn conv2d_transpose(
    input: &Tensor,
    filters: &Tensor,
    output_shape: &[usize],
    strides: [usize; 2],
    padding: Padding,
    dilations: [usize; 2],
) -> Result<Tensor> {
    conv2d_backprop_input(output_shape, filters, input, strides, padding, dilations)
}
