//! Slicing and padding: `slice`, `strided_slice`, `reverse`, `pad` (constant, reflect,
//! symmetric), and the internal gradient ops `StridedSliceGrad` and `MirrorPadGrad`.

use crate::error::{Error, Result};
use crate::kernels::copy::{
    affine_map, full_map, gather_maps_tensor, scatter_add_maps_tensor, IndexMap,
};
use crate::layout::Layout;
use crate::op::{execute1, Dim, GradCtx, Op, TensorSpec};
use crate::ops::array::to_isize;
use crate::tensor::Tensor;

/// `tf.slice` (TensorFlow's `Slice`); the result is a zero-copy view.
#[derive(Debug, Clone)]
pub struct Slice {
    /// Start index per dimension.
    pub begin: Vec<usize>,
    /// Size per dimension; `-1` means "to the end".
    pub size: Vec<isize>,
}

impl Slice {
    fn out_dims(&self, x: &TensorSpec) -> Result<Vec<Dim>> {
        let err = |msg: String| Error::shape("Slice", msg, &[&x.shape_for_error()]);
        if self.begin.len() != x.rank() || self.size.len() != x.rank() {
            return Err(err(format!(
                "begin {:?} and size {:?} must have one entry per dimension",
                self.begin, self.size
            )));
        }
        let mut out = Vec::with_capacity(x.rank());
        for (i, ((&b, &s), &d)) in self.begin.iter().zip(&self.size).zip(&x.shape).enumerate() {
            if s < -1 {
                return Err(err(format!("size[{i}] = {s} is invalid (must be >= -1)")));
            }
            out.push(match d {
                Some(d) => {
                    let size = if s == -1 {
                        d.checked_sub(b)
                    } else {
                        Some(s as usize)
                    };
                    match size {
                        Some(size) if b.checked_add(size).is_some_and(|e| e <= d) => Some(size),
                        _ => {
                            return Err(err(format!(
                            "slice begin {b} with size {s} does not fit dimension {i} of size {d}"
                        )))
                        }
                    }
                }
                None => (s >= 0).then_some(s as usize),
            });
        }
        Ok(out)
    }
}

impl Op for Slice {
    fn name(&self) -> &'static str {
        "Slice"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        Ok(vec![TensorSpec {
            dtype: x.dtype,
            shape: self.out_dims(x)?,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let sizes: Vec<usize> = self
            .out_dims(&TensorSpec::of(x))?
            .into_iter()
            .map(|d| d.unwrap_or(0))
            .collect();
        let steps = vec![1; x.rank()];
        Ok(vec![x.view(x.layout().slice(&self.begin, &sizes, &steps))])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (x, g) = (ctx.x(0), ctx.g(0));
        let paddings: Vec<[usize; 2]> = (0..x.rank())
            .map(|i| [self.begin[i], x.shape()[i] - self.begin[i] - g.shape()[i]])
            .collect();
        Ok(vec![Some(pad(g, &paddings, PadMode::Constant, 0.0)?)])
    }
}

/// `tf.slice(input, begin, size)`: the window starting at `begin` with `size` elements per
/// dimension (`-1` takes the rest of the dimension). Returns a view sharing storage.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let x = Tensor::from_vec((0..12).collect::<Vec<i32>>(), &[3, 4])?;
/// let s = ops::slice(&x, &[1, 1], &[2, -1])?;
/// assert_eq!(s.to_vec::<i32>()?, vec![5, 6, 7, 9, 10, 11]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn slice(input: &Tensor, begin: &[usize], size: &[isize]) -> Result<Tensor> {
    execute1(
        Slice {
            begin: begin.to_vec(),
            size: size.to_vec(),
        },
        &[input.clone()],
    )
}

/// One entry of a [`StridedSlice`], like one comma-separated item of Python's `x[...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceItem {
    /// `begin:end:stride`; `None` bounds are open (TensorFlow's begin/end masks).
    Range {
        /// Start (negative counts from the end); `None` = from the first element in the
        /// stride's direction.
        begin: Option<isize>,
        /// Exclusive end (negative counts from the end); `None` = through the last element.
        end: Option<isize>,
        /// Step; non-zero, negative walks backwards.
        stride: isize,
    },
    /// A single index; the dimension is removed (TensorFlow's shrink_axis_mask).
    Index(isize),
    /// `tf.newaxis`: inserts a size-1 dimension (new_axis_mask).
    NewAxis,
    /// `...`: as many full ranges as needed (ellipsis_mask); at most one.
    Ellipsis,
}

/// A strided-slice specification, built like Python's subscript: `x[1:5:2, 0, :, tf.newaxis]`
/// is `StridedSlice::new().range(1, 5, 2).index(0).all().new_axis()`. Dimensions not covered
/// are taken whole (an implicit trailing `...`), as in Python and TensorFlow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StridedSlice {
    /// The items, in order.
    pub items: Vec<SliceItem>,
}

/// The resolved selection along one input dimension.
#[derive(Debug, Clone, Copy)]
struct DimSel {
    start: isize,
    step: isize,
    count: Dim,
    shrink: bool,
}

/// Python's `begin:end:stride` over a dimension of size `d` (stride non-zero): the first
/// index and the number of elements. Bounds are clamped, negative bounds count from the end.
fn range_sel(d: usize, begin: Option<isize>, end: Option<isize>, stride: isize) -> (isize, usize) {
    let d = d as isize;
    let norm = |v: isize| if v < 0 { v + d } else { v };
    let (b, span) = if stride > 0 {
        let b = begin.map(norm).unwrap_or(0).clamp(0, d);
        let e = end.map(norm).unwrap_or(d).clamp(0, d);
        (b, e - b)
    } else {
        let b = begin.map(norm).unwrap_or(d - 1).clamp(-1, d - 1);
        let e = end.map(norm).unwrap_or(-1).clamp(-1, d - 1);
        (b, b - e)
    };
    let step = stride.unsigned_abs().min(isize::MAX as usize) as isize;
    let count = if span > 0 { 1 + (span - 1) / step } else { 0 };
    (b, count as usize)
}

/// A spec resolved against a shape: one selection per input dimension and the output dims.
struct Resolved {
    sels: Vec<DimSel>,
    out: Vec<Dim>,
    /// For each output dimension, the input dimension it comes from (`None` = new axis).
    out_src: Vec<Option<usize>>,
}

impl StridedSlice {
    /// An empty spec (selects everything).
    pub fn new() -> StridedSlice {
        StridedSlice::default()
    }
    /// Appends `begin:end:stride`.
    pub fn range(self, begin: isize, end: isize, stride: isize) -> StridedSlice {
        self.span(Some(begin), Some(end), stride)
    }
    /// Appends `begin:end:stride` with optional (open) bounds.
    pub fn span(mut self, begin: Option<isize>, end: Option<isize>, stride: isize) -> StridedSlice {
        self.items.push(SliceItem::Range { begin, end, stride });
        self
    }
    /// Appends `begin:`.
    pub fn range_from(self, begin: isize) -> StridedSlice {
        self.span(Some(begin), None, 1)
    }
    /// Appends `:end`.
    pub fn range_to(self, end: isize) -> StridedSlice {
        self.span(None, Some(end), 1)
    }
    /// Appends `::stride` (e.g. `step(-1)` reverses the dimension).
    pub fn step(self, stride: isize) -> StridedSlice {
        self.span(None, None, stride)
    }
    /// Appends `:`.
    pub fn all(self) -> StridedSlice {
        self.span(None, None, 1)
    }
    /// Appends a single index (the dimension is removed).
    pub fn index(mut self, i: isize) -> StridedSlice {
        self.items.push(SliceItem::Index(i));
        self
    }
    /// Appends `tf.newaxis`.
    pub fn new_axis(mut self) -> StridedSlice {
        self.items.push(SliceItem::NewAxis);
        self
    }
    /// Appends `...`.
    pub fn ellipsis(mut self) -> StridedSlice {
        self.items.push(SliceItem::Ellipsis);
        self
    }

    /// Builds a spec from TensorFlow's raw `StridedSlice` attributes: bit `i` of each mask
    /// refers to entry `i` of `begin`/`end`/`strides`. Precedence as in TensorFlow: ellipsis,
    /// then new axis, then shrink axis, then the begin/end masks.
    #[allow(clippy::too_many_arguments)]
    pub fn from_masks(
        begin: &[isize],
        end: &[isize],
        strides: &[isize],
        begin_mask: u64,
        end_mask: u64,
        ellipsis_mask: u64,
        new_axis_mask: u64,
        shrink_axis_mask: u64,
    ) -> Result<StridedSlice> {
        if begin.len() != end.len() || begin.len() != strides.len() || begin.len() > 64 {
            return Err(Error::invalid(
                "StridedSlice",
                format!("begin {begin:?}, end {end:?} and strides {strides:?} must have the same length (<= 64)"),
            ));
        }
        let bit = |m: u64, i: usize| m >> i & 1 == 1;
        let items = (0..begin.len())
            .map(|i| {
                if bit(ellipsis_mask, i) {
                    SliceItem::Ellipsis
                } else if bit(new_axis_mask, i) {
                    SliceItem::NewAxis
                } else if bit(shrink_axis_mask, i) {
                    SliceItem::Index(begin[i])
                } else {
                    SliceItem::Range {
                        begin: (!bit(begin_mask, i)).then_some(begin[i]),
                        end: (!bit(end_mask, i)).then_some(end[i]),
                        stride: strides[i],
                    }
                }
            })
            .collect();
        Ok(StridedSlice { items })
    }

    fn resolve(&self, op: &str, x: &TensorSpec) -> Result<Resolved> {
        let rank = x.rank();
        let consuming = self
            .items
            .iter()
            .filter(|i| matches!(i, SliceItem::Range { .. } | SliceItem::Index(_)))
            .count();
        let ellipses = self
            .items
            .iter()
            .filter(|i| matches!(i, SliceItem::Ellipsis))
            .count();
        if ellipses > 1 {
            return Err(Error::invalid(op, "at most one ellipsis is allowed"));
        }
        if consuming > rank {
            return Err(Error::shape(
                op,
                format!("{consuming} indices given for a tensor of rank {rank}"),
                &[&x.shape_for_error()],
            ));
        }
        let full = SliceItem::Range {
            begin: None,
            end: None,
            stride: 1,
        };
        let mut items: Vec<SliceItem> = Vec::with_capacity(rank + self.items.len());
        for it in &self.items {
            if *it == SliceItem::Ellipsis {
                items.extend(std::iter::repeat_n(full, rank - consuming));
            } else {
                items.push(*it);
            }
        }
        if ellipses == 0 {
            items.extend(std::iter::repeat_n(full, rank - consuming));
        }
        let mut sels = Vec::with_capacity(rank);
        let mut out = Vec::new();
        let mut out_src = Vec::new();
        for it in items {
            let k = sels.len();
            let d = x.shape.get(k).copied().flatten();
            let sel = match it {
                SliceItem::NewAxis => {
                    out.push(Some(1));
                    out_src.push(None);
                    continue;
                }
                SliceItem::Ellipsis => continue,
                SliceItem::Index(i) => {
                    let start = match d {
                        Some(d) => {
                            let j = if i < 0 { i + d as isize } else { i };
                            if j < 0 || j >= d as isize {
                                return Err(Error::shape(
                                    op,
                                    format!(
                                        "index {i} is out of bounds for dimension {k} of size {d}"
                                    ),
                                    &[&x.shape_for_error()],
                                ));
                            }
                            j
                        }
                        None => i,
                    };
                    DimSel {
                        start,
                        step: 1,
                        count: Some(1),
                        shrink: true,
                    }
                }
                SliceItem::Range { begin, end, stride } => {
                    if stride == 0 {
                        return Err(Error::invalid(
                            op,
                            format!("stride for dimension {k} must be non-zero"),
                        ));
                    }
                    match d {
                        None => DimSel {
                            start: 0,
                            step: stride,
                            count: None,
                            shrink: false,
                        },
                        Some(d) => {
                            let (b, count) = range_sel(d, begin, end, stride);
                            DimSel {
                                start: b,
                                step: stride,
                                count: Some(count),
                                shrink: false,
                            }
                        }
                    }
                }
            };
            if !sel.shrink {
                out.push(sel.count);
                out_src.push(Some(k));
            }
            sels.push(sel);
        }
        Ok(Resolved { sels, out, out_src })
    }

    /// Per-input-dimension index maps for a known shape.
    fn maps(&self, op: &str, shape: &[usize]) -> Result<(Vec<IndexMap>, Vec<usize>)> {
        let r = self.resolve(op, &TensorSpec::new(crate::dtype::DType::F32, shape))?;
        let maps = r
            .sels
            .iter()
            .map(|s| affine_map(s.start, s.step, s.count.unwrap_or(0)))
            .collect();
        Ok((maps, r.out.into_iter().map(|d| d.unwrap_or(0)).collect()))
    }
}

/// `tf.strided_slice` / Python subscripting (TensorFlow's `StridedSlice`). A zero-copy view
/// when every stride is positive, a copy otherwise.
#[derive(Debug, Clone)]
pub struct StridedSliceOp {
    /// The specification.
    pub spec: StridedSlice,
}

impl Op for StridedSliceOp {
    fn name(&self) -> &'static str {
        "StridedSlice"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        Ok(vec![TensorSpec {
            dtype: x.dtype,
            shape: self.spec.resolve("StridedSlice", x)?.out,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let r = self.spec.resolve("StridedSlice", &TensorSpec::of(x))?;
        if r.sels.iter().all(|s| s.step > 0) {
            // Positive strides only: a zero-copy view.
            let l = x.layout();
            let offset = l.offset()
                + r.sels
                    .iter()
                    .zip(l.strides())
                    .map(|(s, &st)| s.start as usize * st)
                    .sum::<usize>();
            let strides = r
                .out_src
                .iter()
                .map(|src| src.map_or(0, |k| l.strides()[k] * r.sels[k].step as usize))
                .collect();
            let shape = r.out.iter().map(|d| d.unwrap_or(0)).collect();
            return Ok(vec![x.view(Layout::new(shape, strides, offset))]);
        }
        let (maps, out) = self.spec.maps("StridedSlice", x.shape())?;
        let t = gather_maps_tensor(x, &maps, 0.0);
        Ok(vec![t.view(Layout::contiguous(&out))])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(execute1(
            StridedSliceGrad {
                spec: self.spec.clone(),
                shape: ctx.x(0).shape().to_vec(),
            },
            &[ctx.g(0).clone()],
        )?)])
    }
}

/// The gradient of `StridedSlice`: scatters `dy` into zeros of the input shape.
#[derive(Debug, Clone)]
pub struct StridedSliceGrad {
    /// The forward op's specification.
    pub spec: StridedSlice,
    /// The forward op's input shape.
    pub shape: Vec<usize>,
}

impl Op for StridedSliceGrad {
    fn name(&self) -> &'static str {
        "StridedSliceGrad"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let dy = &inputs[0];
        let (_, out) = self.spec.maps("StridedSliceGrad", &self.shape)?;
        let ok = dy.rank() == out.len()
            && dy
                .shape
                .iter()
                .zip(&out)
                .all(|(d, &o)| d.is_none_or(|d| d == o));
        if !ok {
            return Err(Error::shape(
                "StridedSliceGrad",
                "dy does not have the shape of the slice",
                &[&dy.shape_for_error(), &out],
            ));
        }
        Ok(vec![TensorSpec::new(dy.dtype, &self.shape)])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (maps, _) = self.spec.maps("StridedSliceGrad", &self.shape)?;
        let sel: Vec<usize> = maps.iter().map(|m| m.len()).collect();
        let dy = inputs[0].contiguous();
        let dy = dy.view(Layout::contiguous(&sel));
        Ok(vec![scatter_add_maps_tensor(&dy, &self.shape, &maps)])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(strided_slice(ctx.g(0), &self.spec)?)])
    }
}

/// `tf.strided_slice`: Python-style subscripting `x[1:5:2, 0, ::-1, tf.newaxis, ...]` with
/// negative indices and strides. Out-of-range range bounds are clamped (as Python); an
/// out-of-range single index is an error (as TensorFlow).
///
/// ```
/// use ferroflow_core::{ops, ops::StridedSlice, Tensor};
/// let x = Tensor::from_vec((0..12).collect::<Vec<i32>>(), &[3, 4])?;
/// // x[::-1, 1:4:2]
/// let s = ops::strided_slice(&x, &StridedSlice::new().step(-1).range(1, 4, 2))?;
/// assert_eq!(s.to_vec::<i32>()?, vec![9, 11, 5, 7, 1, 3]);
/// // x[-1, tf.newaxis]
/// let r = ops::strided_slice(&x, &StridedSlice::new().index(-1).new_axis())?;
/// assert_eq!(r.shape(), &[1, 4]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn strided_slice(input: &Tensor, spec: &StridedSlice) -> Result<Tensor> {
    execute1(StridedSliceOp { spec: spec.clone() }, &[input.clone()])
}

/// `tf.reverse` (TensorFlow's `ReverseV2`).
#[derive(Debug, Clone)]
pub struct ReverseV2 {
    /// The axes to reverse (negative count from the end).
    pub axes: Vec<isize>,
}

impl ReverseV2 {
    fn flags(&self, x: &TensorSpec) -> Result<Vec<bool>> {
        let mut rev = vec![false; x.rank()];
        for &a in &self.axes {
            let i = crate::ops::join::resolve_axis("ReverseV2", a, x, x.rank())?;
            if rev[i] {
                return Err(Error::invalid(
                    "ReverseV2",
                    format!("axis {a} is given twice in {:?}", self.axes),
                ));
            }
            rev[i] = true;
        }
        Ok(rev)
    }
}

impl Op for ReverseV2 {
    fn name(&self) -> &'static str {
        "ReverseV2"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        self.flags(&inputs[0])?;
        Ok(vec![inputs[0].clone()])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let rev = self.flags(&TensorSpec::of(x))?;
        let maps: Vec<IndexMap> = x
            .shape()
            .iter()
            .zip(&rev)
            .map(|(&d, &r)| {
                if r {
                    affine_map(d as isize - 1, -1, d)
                } else {
                    full_map(d)
                }
            })
            .collect();
        Ok(vec![gather_maps_tensor(x, &maps, 0.0)])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(reverse(ctx.g(0), &self.axes)?)])
    }
}

/// `tf.reverse(tensor, axis)`: reverses the order of elements along each of `axes`.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let x = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[2, 3])?;
/// assert_eq!(ops::reverse(&x, &[-1])?.to_vec::<i64>()?, vec![3, 2, 1, 6, 5, 4]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn reverse(tensor: &Tensor, axes: &[isize]) -> Result<Tensor> {
    execute1(
        ReverseV2 {
            axes: axes.to_vec(),
        },
        &[tensor.clone()],
    )
}

/// The `mode` of [`pad`], as in `tf.pad`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    /// Pads with `constant_values` (`"CONSTANT"`).
    Constant,
    /// Mirrors without repeating the edge (`"REFLECT"`); each padding must be `< dim`.
    Reflect,
    /// Mirrors including the edge (`"SYMMETRIC"`); each padding must be `<= dim`.
    Symmetric,
}

/// Source-index map of one padded dimension of input size `d`.
fn pad_map(d: usize, [a, b]: [usize; 2], mode: PadMode) -> IndexMap {
    let (d, a) = (d as isize, a as isize);
    (0..d + a + b as isize)
        .map(|o| {
            let i = o - a;
            if (0..d).contains(&i) {
                return Some(i as usize);
            }
            let j = match mode {
                PadMode::Constant => return None,
                PadMode::Reflect if i < 0 => -i,
                PadMode::Reflect => 2 * (d - 1) - i,
                PadMode::Symmetric if i < 0 => -i - 1,
                PadMode::Symmetric => 2 * d - 1 - i,
            };
            Some(j as usize)
        })
        .collect()
}

/// Checks paddings against the (input) dims for `mode`.
fn check_paddings(op: &str, paddings: &[[usize; 2]], mode: PadMode, x: &TensorSpec) -> Result<()> {
    if paddings.len() != x.rank() {
        return Err(Error::shape(
            op,
            format!("paddings {paddings:?} must have one [before, after] pair per dimension"),
            &[&x.shape_for_error()],
        ));
    }
    for (i, (&[a, b], &d)) in paddings.iter().zip(&x.shape).enumerate() {
        let Some(d) = d else { continue };
        let bad = match mode {
            PadMode::Constant => false,
            PadMode::Reflect => a >= d.max(1) && a > 0 || b >= d.max(1) && b > 0,
            PadMode::Symmetric => a > d || b > d,
        };
        if bad {
            let rule = if mode == PadMode::Reflect {
                "less than"
            } else {
                "no greater than"
            };
            return Err(Error::shape(
                op,
                format!("paddings [{a}, {b}] of dimension {i} must be {rule} the dimension size {d} in {mode:?} mode"),
                &[&x.shape_for_error()],
            ));
        }
    }
    Ok(())
}

/// `tf.pad` (TensorFlow's `PadV2` for constant mode, `MirrorPad` for reflect/symmetric).
#[derive(Debug, Clone)]
pub struct Pad {
    /// `[before, after]` per dimension.
    pub paddings: Vec<[usize; 2]>,
    /// The mode.
    pub mode: PadMode,
    /// Fill value for constant mode (converted to the dtype).
    pub constant_values: f64,
}

impl Op for Pad {
    fn name(&self) -> &'static str {
        match self.mode {
            PadMode::Constant => "PadV2",
            _ => "MirrorPad",
        }
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let x = &inputs[0];
        check_paddings(self.name(), &self.paddings, self.mode, x)?;
        let mut shape = Vec::with_capacity(x.rank());
        for (d, p) in x.shape.iter().zip(&self.paddings) {
            shape.push(match d {
                Some(d) => Some(
                    d.checked_add(p[0])
                        .and_then(|v| v.checked_add(p[1]))
                        .ok_or_else(|| {
                            Error::invalid(
                                self.name(),
                                format!("paddings {p:?} overflow dimension {d}"),
                            )
                        })?,
                ),
                None => None,
            });
        }
        Ok(vec![TensorSpec {
            dtype: x.dtype,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        let maps: Vec<_> = x
            .shape()
            .iter()
            .zip(&self.paddings)
            .map(|(&d, &p)| pad_map(d, p, self.mode))
            .collect();
        Ok(vec![gather_maps_tensor(x, &maps, self.constant_values)])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let (x, g) = (ctx.x(0), ctx.g(0));
        let gx = match self.mode {
            PadMode::Constant => {
                let begin: Vec<usize> = self.paddings.iter().map(|p| p[0]).collect();
                slice(g, &begin, &to_isize(x.shape()))?
            }
            mode => execute1(
                MirrorPadGrad {
                    paddings: self.paddings.clone(),
                    mode,
                },
                &[g.clone()],
            )?,
        };
        Ok(vec![Some(gx)])
    }
}

/// The gradient of a reflect/symmetric `MirrorPad`: the padded gradient folded back, each
/// mirrored element's gradient added to the element it copied.
#[derive(Debug, Clone)]
pub struct MirrorPadGrad {
    /// The forward paddings.
    pub paddings: Vec<[usize; 2]>,
    /// The forward mode (reflect or symmetric).
    pub mode: PadMode,
}

impl MirrorPadGrad {
    fn out_dims(&self, g: &TensorSpec) -> Result<Vec<Dim>> {
        if self.paddings.len() != g.rank() {
            return Err(Error::shape(
                "MirrorPadGrad",
                "paddings must match the rank",
                &[&g.shape_for_error()],
            ));
        }
        g.shape
            .iter()
            .zip(&self.paddings)
            .map(|(d, p)| match d {
                Some(d) => d.checked_sub(p[0] + p[1]).map(Some).ok_or_else(|| {
                    Error::shape(
                        "MirrorPadGrad",
                        "gradient smaller than the paddings",
                        &[&g.shape_for_error()],
                    )
                }),
                None => Ok(None),
            })
            .collect()
    }
}

impl Op for MirrorPadGrad {
    fn name(&self) -> &'static str {
        "MirrorPadGrad"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let g = &inputs[0];
        let shape = self.out_dims(g)?;
        check_paddings(
            "MirrorPadGrad",
            &self.paddings,
            self.mode,
            &TensorSpec {
                dtype: g.dtype,
                shape: shape.clone(),
            },
        )?;
        Ok(vec![TensorSpec {
            dtype: g.dtype,
            shape,
        }])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let g = &inputs[0];
        let shape: Vec<usize> = self
            .out_dims(&TensorSpec::of(g))?
            .into_iter()
            .map(|d| d.unwrap_or(0))
            .collect();
        let maps: Vec<_> = shape
            .iter()
            .zip(&self.paddings)
            .map(|(&d, &p)| pad_map(d, p, self.mode))
            .collect();
        Ok(vec![scatter_add_maps_tensor(g, &shape, &maps)])
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(pad(ctx.g(0), &self.paddings, self.mode, 0.0)?)])
    }
}

/// `tf.pad(tensor, paddings, mode, constant_values)`: adds `paddings[i] = [before, after]`
/// elements around dimension `i`. `Reflect` and `Symmetric` mirror the edge exactly as
/// TensorFlow's `MirrorPad` (reflect excludes the edge element, symmetric repeats it).
///
/// ```
/// use ferroflow_core::{ops, ops::PadMode, Tensor};
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?;
/// let r = ops::pad(&x, &[[2, 2]], PadMode::Reflect, 0.0)?;
/// assert_eq!(r.to_vec::<f32>()?, vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]);
/// let c = ops::pad(&x, &[[1, 0]], PadMode::Constant, 9.0)?;
/// assert_eq!(c.to_vec::<f32>()?, vec![9.0, 1.0, 2.0, 3.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn pad(
    tensor: &Tensor,
    paddings: &[[usize; 2]],
    mode: PadMode,
    constant_values: f64,
) -> Result<Tensor> {
    execute1(
        Pad {
            paddings: paddings.to_vec(),
            mode,
            constant_values,
        },
        &[tensor.clone()],
    )
}
