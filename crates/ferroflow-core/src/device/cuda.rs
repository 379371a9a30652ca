//! The CUDA backend (feature `cuda`), on `cudarc`'s driver API, cuBLAS and NVRTC.
//!
//! **Status: builds and is reached by the host-side tests, but no line of it has run on a GPU
//! yet** (no GPU was available while it was written; docs/cuda.md). What it does:
//! - one [`Backend`] per GPU ordinal: a context, its default stream, a cuBLAS handle and the
//!   NVRTC-compiled kernels, cached by name;
//! - a GPU tensor is an ordinary [`Tensor`] whose [`DeviceSlot`] holds a [`CudaStorage`] (its
//!   `Storage` is an empty placeholder carrying the dtype); its `Layout` keeps working, so views
//!   (transpose, broadcast, reshape) stay views and the kernels read strided inputs;
//! - [`dispatch`] (the `op::compute` hook) runs the GPU kernel of an op whose inputs are on a
//!   GPU (`kernels::gpu_op`), or returns a typed error; it never falls back to the CPU silently.
//!
//! The CUDA libraries are opened at run time (`dynamic-loading`); [`probe`] looks for each before
//! anything calls into it, because cudarc panics when a library is missing.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, StridedBatchedConfig};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg,
    ValidAsZeroBits,
};

use super::kernels::{self, GpuOp};
use super::plan::{launch_dims, GemmCall, ReduceArgs, StridedArgs};
use super::{check_available, no_gpu_kernel, placement, scoped, Device, Placement, Probe};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::{broadcast_shapes, Layout};
use crate::op::Op;
use crate::ops::array::Reshape;
use crate::ops::reduce::ReduceKind;
use crate::storage::StorageElement;
use crate::tensor::Tensor;

// SAFETY: both are `#[repr(C)]` structs of integers, laid out field for field as the C structs
// `Strided` / `Reduce` of `kernels::PRELUDE`, and passed to kernels by value.
unsafe impl DeviceRepr for StridedArgs {}
// SAFETY: as above.
unsafe impl DeviceRepr for ReduceArgs {}

/// Looks for the CUDA driver, NVRTC and cuBLAS libraries, then asks the driver for its GPUs.
pub fn probe() -> Probe {
    // SAFETY: `is_culib_present` only tries to open the shared library; it calls nothing in it.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Probe::NoDriver;
    }
    // SAFETY: as above.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Probe::MissingLibrary("NVRTC (libnvrtc)".into());
    }
    // SAFETY: as above.
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        return Probe::MissingLibrary("cuBLAS (libcublas)".into());
    }
    match CudaContext::device_count() {
        Ok(n) => Probe::Gpus(n.max(0) as usize),
        Err(e) => Probe::DriverError(e.to_string()),
    }
}

/// True when the NVRTC library can be loaded (it needs no GPU or driver).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to open the shared library.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compiles a kernel source to PTX with NVRTC (no GPU needed): the check that the generated
/// CUDA C++ is valid. Errors carry NVRTC's log.
pub fn compile_check(name: &str, source: &str) -> Result<()> {
    if !nvrtc_present() {
        return Err(Error::invalid("NVRTC", "libnvrtc is not installed"));
    }
    cudarc::nvrtc::compile_ptx(source)
        .map(|_| ())
        .map_err(|e| Error::invalid("NVRTC", format!("compiling {name}: {e}")))
}

fn cuda_err<E: fmt::Display>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::invalid(what, format!("CUDA error: {e}"))
}

/// The typed device buffer of a GPU tensor.
pub enum CudaData {
    /// float32 elements.
    F32(CudaSlice<f32>),
    /// float64 elements.
    F64(CudaSlice<f64>),
    /// int32 elements.
    I32(CudaSlice<i32>),
    /// int64 elements.
    I64(CudaSlice<i64>),
}

/// A GPU tensor's buffer and the GPU holding it.
pub struct CudaStorage {
    ordinal: usize,
    data: CudaData,
}

impl fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CudaStorage(GPU:{})", self.ordinal)
    }
}

/// A tensor's device buffer: `Some` for a GPU tensor.
#[derive(Clone, Debug, Default)]
pub struct DeviceSlot(Option<Arc<CudaStorage>>);

impl DeviceSlot {
    /// True for a GPU tensor.
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
    /// True for a host tensor.
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }
    /// The device holding the values.
    pub fn device(&self) -> Device {
        match &self.0 {
            Some(s) => Device::Gpu(s.ordinal),
            None => Device::Cpu,
        }
    }
}

/// Element types a GPU buffer can hold.
pub trait GpuElem: DeviceRepr + ValidAsZeroBits + StorageElement + Copy + Unpin + 'static {
    /// Wraps a typed buffer.
    fn wrap(s: CudaSlice<Self>) -> CudaData;
    /// The typed buffer when the dtype matches.
    fn get(d: &CudaData) -> Option<&CudaSlice<Self>>;
}

macro_rules! gpu_elem {
    ($t:ty, $v:ident) => {
        impl GpuElem for $t {
            fn wrap(s: CudaSlice<Self>) -> CudaData {
                CudaData::$v(s)
            }
            fn get(d: &CudaData) -> Option<&CudaSlice<Self>> {
                match d {
                    CudaData::$v(s) => Some(s),
                    _ => None,
                }
            }
        }
    };
}
gpu_elem!(f32, F32);
gpu_elem!(f64, F64);
gpu_elem!(i32, I32);
gpu_elem!(i64, I64);

/// One GPU: context, stream, cuBLAS handle, compiled kernels.
pub struct Backend {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: Mutex<CudaBlas>,
    functions: Mutex<HashMap<String, CudaFunction>>,
}

/// The backend of GPU `ordinal`, created on first use (an error when that GPU is not usable).
pub fn backend(ordinal: usize) -> Result<Arc<Backend>> {
    static BACKENDS: OnceLock<Mutex<HashMap<usize, Arc<Backend>>>> = OnceLock::new();
    check_available(Device::Gpu(ordinal))?;
    let map = BACKENDS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map
        .lock()
        .map_err(|_| Error::invalid("CUDA", "backend registry poisoned by a panic"))?;
    if let Some(b) = map.get(&ordinal) {
        return Ok(b.clone());
    }
    let ctx = CudaContext::new(ordinal).map_err(cuda_err("CUDA context"))?;
    let stream = ctx.default_stream();
    let blas = CudaBlas::new(stream.clone()).map_err(cuda_err("cuBLAS"))?;
    let b = Arc::new(Backend {
        ordinal,
        ctx,
        stream,
        blas: Mutex::new(blas),
        functions: Mutex::new(HashMap::new()),
    });
    map.insert(ordinal, b.clone());
    Ok(b)
}

impl Backend {
    /// The kernel `name`, compiled from `source()` by NVRTC the first time.
    fn function(&self, name: &str, source: impl FnOnce() -> String) -> Result<CudaFunction> {
        let mut fns = self
            .functions
            .lock()
            .map_err(|_| Error::invalid("CUDA", "kernel cache poisoned by a panic"))?;
        if let Some(f) = fns.get(name) {
            return Ok(f.clone());
        }
        let ptx = cudarc::nvrtc::compile_ptx(source())
            .map_err(|e| Error::invalid("NVRTC", format!("compiling {name}: {e}")))?;
        let module = self.ctx.load_module(ptx).map_err(cuda_err("CUDA module"))?;
        let f = module
            .load_function(name)
            .map_err(cuda_err("CUDA module"))?;
        fns.insert(name.to_string(), f.clone());
        Ok(f)
    }

    fn alloc<T: GpuElem>(&self, n: usize) -> Result<CudaSlice<T>> {
        // Never a 0-byte allocation: an empty tensor gets one (unused) element.
        self.stream
            .alloc_zeros::<T>(n.max(1))
            .map_err(cuda_err("CUDA alloc"))
    }

    fn tensor<T: GpuElem>(&self, data: CudaSlice<T>, shape: &[usize]) -> Tensor {
        Tensor::from_device_parts(
            T::DTYPE,
            Layout::contiguous(shape),
            DeviceSlot(Some(Arc::new(CudaStorage {
                ordinal: self.ordinal,
                data: T::wrap(data),
            }))),
        )
    }
}

fn config(grid: u32, block: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (grid, 1, 1),
        block_dim: (block, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn slice_of<T: GpuElem>(t: &Tensor) -> Result<&CudaSlice<T>> {
    let s =
        t.device_slot().0.as_ref().ok_or_else(|| {
            Error::invalid("CUDA", "internal: a host tensor reached a GPU kernel")
        })?;
    T::get(&s.data).ok_or_else(|| {
        Error::dtype(
            "CUDA",
            format!("internal: expected a {} buffer", T::DTYPE.name()),
            &[t.dtype()],
        )
    })
}

/// Copies a host tensor to GPU `ordinal` (contiguous).
pub fn to_gpu(t: &Tensor, ordinal: usize) -> Result<Tensor> {
    fn up<T: GpuElem>(t: &Tensor, b: &Backend) -> Result<Tensor> {
        let host = t.data::<T>()?;
        let buf = if host.is_empty() {
            b.alloc::<T>(0)?
        } else {
            b.stream
                .clone_htod(&host[..])
                .map_err(cuda_err("CUDA copy to device"))?
        };
        Ok(b.tensor(buf, t.shape()))
    }
    let b = backend(ordinal)?;
    match t.dtype() {
        DType::F32 => up::<f32>(t, &b),
        DType::F64 => up::<f64>(t, &b),
        DType::I32 => up::<i32>(t, &b),
        DType::I64 => up::<i64>(t, &b),
        d => Err(Error::dtype(
            "Tensor::to_device",
            "GPU tensors hold float32, float64, int32 or int64 so far (cast first)",
            &[d],
        )),
    }
}

/// Copies a GPU tensor to the host (contiguous); a host tensor is returned as is.
pub fn to_host(t: &Tensor) -> Result<Tensor> {
    fn down<T: GpuElem>(t: &Tensor, s: &CudaStorage) -> Result<Tensor> {
        let b = backend(s.ordinal)?;
        let buf = T::get(&s.data)
            .ok_or_else(|| Error::dtype("Tensor::to_device", "buffer dtype", &[t.dtype()]))?;
        let v = b
            .stream
            .clone_dtoh(buf)
            .map_err(cuda_err("CUDA copy to host"))?;
        b.stream.synchronize().map_err(cuda_err("CUDA sync"))?;
        // The whole buffer under the tensor's own layout, then a host-side contiguous copy.
        Ok(Tensor::from_parts(Arc::new(T::into_storage(v)), t.layout().clone()).contiguous())
    }
    let Some(s) = t.device_slot().0.as_ref() else {
        return Ok(t.clone());
    };
    match &s.data {
        CudaData::F32(_) => down::<f32>(t, s),
        CudaData::F64(_) => down::<f64>(t, s),
        CudaData::I32(_) => down::<i32>(t, s),
        CudaData::I64(_) => down::<i64>(t, s),
    }
}

/// A contiguous copy of a GPU tensor on its GPU (itself when already contiguous from 0).
pub fn try_contiguous(t: &Tensor) -> Result<Tensor> {
    let Some(s) = t.device_slot().0.as_ref() else {
        return Ok(t.contiguous());
    };
    let len = match &s.data {
        CudaData::F32(v) => v.len(),
        CudaData::F64(v) => v.len(),
        CudaData::I32(v) => v.len(),
        CudaData::I64(v) => v.len(),
    };
    let l = t.layout();
    if l.is_contiguous() && l.offset() == 0 && len == l.num_elements() {
        return Ok(t.clone());
    }
    let b = backend(s.ordinal)?;
    match t.dtype() {
        DType::F32 => unary::<f32>(&b, "copy", "x", t),
        DType::F64 => unary::<f64>(&b, "copy", "x", t),
        DType::I32 => unary::<i32>(&b, "copy", "x", t),
        DType::I64 => unary::<i64>(&b, "copy", "x", t),
        d => Err(Error::dtype("Tensor::contiguous", "GPU dtype", &[d])),
    }
}

/// `Tensor::contiguous` on a GPU tensor; a failed copy is reported on stderr and the tensor
/// returned unchanged (ops use [`try_contiguous`], which returns the error).
pub fn contiguous(t: &Tensor) -> Tensor {
    try_contiguous(t).unwrap_or_else(|e| {
        eprintln!("ferroflow: Tensor::contiguous on {}: {e}", t.device());
        t.clone()
    })
}

/// Strided elementwise unary kernel `expr(x)` over `x` (any layout).
fn unary<T: GpuElem>(b: &Backend, what: &str, expr: &str, x: &Tensor) -> Result<Tensor> {
    let name = kernels::expr_kernel_name(what, T::DTYPE, expr);
    let f = b.function(&name, || kernels::unary_source(&name, T::DTYPE, expr))?;
    let shape = x.shape().to_vec();
    let args = StridedArgs::new(what, &shape, x.layout(), None)?;
    let a = slice_of::<T>(x)?;
    let mut out = b.alloc::<T>(args.n as usize)?;
    if let Some((grid, block)) = launch_dims(args.n as usize) {
        let mut l = b.stream.launch_builder(&f);
        l.arg(a).arg(&mut out).arg(&args);
        // SAFETY: the kernel reads `a` at the offsets of `args` (within `x`'s storage, as its
        // layout is valid for it) and writes `out[0..n]`, allocated with `n` elements.
        unsafe { l.launch(config(grid, block)) }.map_err(cuda_err("CUDA launch"))?;
    }
    Ok(b.tensor(out, &shape))
}

/// Strided elementwise binary kernel `expr(x, y)` with broadcasting.
fn binary<T: GpuElem>(
    b: &Backend,
    what: &str,
    expr: &str,
    x: &Tensor,
    y: &Tensor,
) -> Result<Tensor> {
    let shape = broadcast_shapes(x.shape(), y.shape()).ok_or_else(|| {
        Error::shape(
            what,
            "incompatible shapes for broadcasting",
            &[x.shape(), y.shape()],
        )
    })?;
    let name = kernels::expr_kernel_name(what, T::DTYPE, expr);
    let f = b.function(&name, || kernels::binary_source(&name, T::DTYPE, expr))?;
    let args = StridedArgs::new(what, &shape, x.layout(), Some(y.layout()))?;
    let (sa, sb) = (slice_of::<T>(x)?, slice_of::<T>(y)?);
    let mut out = b.alloc::<T>(args.n as usize)?;
    if let Some((grid, block)) = launch_dims(args.n as usize) {
        let mut l = b.stream.launch_builder(&f);
        l.arg(sa).arg(sb).arg(&mut out).arg(&args);
        // SAFETY: reads within both inputs' layouts, writes `out[0..n]` (see `unary`).
        unsafe { l.launch(config(grid, block)) }.map_err(cuda_err("CUDA launch"))?;
    }
    Ok(b.tensor(out, &shape))
}

fn fill<T: GpuElem>(b: &Backend, shape: &[usize], v: f64) -> Result<Tensor> {
    let name = kernels::kernel_name("fill", T::DTYPE);
    let f = b.function(&name, || kernels::fill_source(&name, T::DTYPE))?;
    let n = shape.iter().product::<usize>();
    let mut out = b.alloc::<T>(n)?;
    let (v, n64) = (T::from_f64(v), n as i64);
    if let Some((grid, block)) = launch_dims(n) {
        let mut l = b.stream.launch_builder(&f);
        l.arg(&mut out).arg(&v).arg(&n64);
        // SAFETY: writes `out[0..n]`, allocated with `n` elements.
        unsafe { l.launch(config(grid, block)) }.map_err(cuda_err("CUDA launch"))?;
    }
    Ok(b.tensor(out, shape))
}

fn reduce<T: GpuElem>(
    b: &Backend,
    kind: ReduceKind,
    axes: &[usize],
    keepdims: bool,
    x: &Tensor,
) -> Result<Tensor> {
    let what = format!("reduce_{kind:?}");
    let name = kernels::kernel_name(&what, T::DTYPE);
    let src = kernels::reduce_source(&name, T::DTYPE, kind)
        .ok_or_else(|| no_gpu_kernel(&what, x.device()))?;
    let f = b.function(&name, || src)?;
    let args = ReduceArgs::new(&what, x.layout(), axes)?;
    let shape: Vec<usize> = x
        .shape()
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let a = slice_of::<T>(x)?;
    let mut out = b.alloc::<T>(args.n as usize)?;
    if let Some((grid, block)) = launch_dims(args.n as usize) {
        let mut l = b.stream.launch_builder(&f);
        l.arg(a).arg(&mut out).arg(&args);
        // SAFETY: reads within `x`'s layout, writes `out[0..n]`.
        unsafe { l.launch(config(grid, block)) }.map_err(cuda_err("CUDA launch"))?;
    }
    Ok(b.tensor(out, &shape))
}

fn softmax<T: GpuElem>(b: &Backend, axis: usize, log: bool, x: &Tensor) -> Result<Tensor> {
    let name = kernels::kernel_name("Softmax", T::DTYPE);
    let f = b.function(&name, || kernels::softmax_source(&name, T::DTYPE))?;
    let x = try_contiguous(x)?;
    let shape = x.shape().to_vec();
    let (outer, r, inner): (usize, usize, usize) = (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    );
    let a = slice_of::<T>(&x)?;
    let mut out = b.alloc::<T>(outer * r * inner)?;
    let (o64, r64, i64_, l32) = (outer as i64, r as i64, inner as i64, i32::from(log));
    if let (Some((grid, block)), true) = (launch_dims(outer * inner), r > 0) {
        let mut l = b.stream.launch_builder(&f);
        l.arg(a)
            .arg(&mut out)
            .arg(&o64)
            .arg(&r64)
            .arg(&i64_)
            .arg(&l32);
        // SAFETY: `x` is contiguous with outer·r·inner elements; each thread reads and writes
        // one (outer, inner) row of it and of `out`, allocated with as many.
        unsafe { l.launch(config(grid, block)) }.map_err(cuda_err("CUDA launch"))?;
    }
    Ok(b.tensor(out, &shape))
}

/// A contiguous `[batch, rows, cols]` buffer of `t`'s matrices broadcast to `batch_shape`,
/// and its batch stride (0 when `t` holds a single matrix, which cuBLAS then reuses).
fn batched_operand<T: GpuElem>(
    b: &Backend,
    t: &Tensor,
    batch_shape: &[usize],
) -> Result<(Tensor, i64)> {
    let r = t.rank();
    let (rows, cols) = (t.shape()[r - 2], t.shape()[r - 1]);
    let own_batch: usize = t.shape()[..r - 2].iter().product();
    if own_batch == 1 {
        let m = t.view(Layout::new(
            vec![rows, cols],
            t.layout().strides()[r - 2..].to_vec(),
            t.layout().offset(),
        ));
        return Ok((try_contiguous(&m)?, 0));
    }
    let mut full = batch_shape.to_vec();
    full.extend([rows, cols]);
    let l = t.layout().broadcast_to(&full).ok_or_else(|| {
        Error::shape(
            "BatchMatMulV2",
            "batch dimensions do not broadcast",
            &[t.shape(), &full],
        )
    })?;
    let c = unary::<T>(b, "copy", "x", &t.view(l))?;
    Ok((c, (rows * cols) as i64))
}

fn matmul<T: GpuElem>(b: &Backend, x: &Tensor, y: &Tensor, ta: bool, tb: bool) -> Result<Tensor>
where
    CudaBlas: Gemm<T>,
{
    let (ra, rb) = (x.rank(), y.rank());
    let (xs, ys) = (x.shape(), y.shape());
    let (m, k) = if ta {
        (xs[ra - 1], xs[ra - 2])
    } else {
        (xs[ra - 2], xs[ra - 1])
    };
    let n = if tb { ys[rb - 2] } else { ys[rb - 1] };
    let batch_shape = broadcast_shapes(&xs[..ra - 2], &ys[..rb - 2]).ok_or_else(|| {
        Error::shape(
            "BatchMatMulV2",
            "batch dimensions do not broadcast",
            &[xs, ys],
        )
    })?;
    let batch: usize = batch_shape.iter().product();
    let mut shape = batch_shape.clone();
    shape.extend([m, n]);
    let mut out = b.alloc::<T>(batch * m * n)?;
    if batch > 0 && m > 0 && n > 0 && k > 0 {
        let (xa, stride_x) = batched_operand::<T>(b, x, &batch_shape)?;
        let (yb, stride_y) = batched_operand::<T>(b, y, &batch_shape)?;
        let call = GemmCall::row_major(m, n, k, ta, tb)?;
        let op = |t: bool| {
            if t {
                cublasOperation_t::CUBLAS_OP_T
            } else {
                cublasOperation_t::CUBLAS_OP_N
            }
        };
        let cfg = GemmConfig {
            transa: op(call.trans_first),
            transb: op(call.trans_second),
            m: call.m,
            n: call.n,
            k: call.k,
            alpha: T::from_f64(1.0),
            lda: call.ld_first,
            ldb: call.ld_second,
            beta: T::from_f64(0.0),
            ldc: call.ldc,
        };
        let blas = b
            .blas
            .lock()
            .map_err(|_| Error::invalid("cuBLAS", "handle poisoned by a panic"))?;
        let (first, second) = (slice_of::<T>(&yb)?, slice_of::<T>(&xa)?);
        if batch == 1 {
            // SAFETY: the buffers hold the matrices `call` describes (contiguous row-major
            // `op(A)`/`op(B)` read as column-major transposes; `plan::GemmCall`), and `out`
            // holds m·n elements.
            unsafe { blas.gemm(cfg, first, second, &mut out) }.map_err(cuda_err("cuBLAS gemm"))?;
        } else {
            let bcfg = StridedBatchedConfig {
                gemm: cfg,
                batch_size: i32::try_from(batch)
                    .map_err(|_| Error::invalid("BatchMatMulV2", "batch too large for cuBLAS"))?,
                stride_a: stride_y,
                stride_b: stride_x,
                stride_c: (m * n) as i64,
            };
            // SAFETY: as above, per batch entry; a stride of 0 reuses one matrix.
            unsafe { blas.gemm_strided_batched(bcfg, first, second, &mut out) }
                .map_err(cuda_err("cuBLAS gemm"))?;
        }
    }
    Ok(b.tensor(out, &shape))
}

/// The `op::compute` hook (see the module docs of `device`).
pub(crate) fn dispatch(op: &dyn Op, inputs: &[Tensor]) -> Option<Result<Vec<Tensor>>> {
    let scope = scoped().filter(|d| d.is_gpu());
    if scope.is_none() && inputs.iter().all(|t| t.device_slot().is_none()) {
        return None;
    }
    let devices: Vec<(Device, bool)> = inputs.iter().map(|t| (t.device(), t.rank() == 0)).collect();
    match placement(op.name(), &devices, scope) {
        Err(e) => Some(Err(e)),
        Ok(Placement::Cpu) => None,
        Ok(Placement::Gpu(n)) => Some(run(op, inputs, n)),
    }
}

fn float_only(op: &str, d: DType) -> Error {
    Error::dtype(op, "GPU kernels of this op take float32 or float64", &[d])
}

fn run(op: &dyn Op, inputs: &[Tensor], ordinal: usize) -> Result<Vec<Tensor>> {
    let device = Device::Gpu(ordinal);
    if inputs.is_empty() {
        // Ops without inputs (constants, random draws) run on the host; the results move.
        return op
            .compute(inputs)?
            .iter()
            .map(|t| to_gpu(t, ordinal))
            .collect();
    }
    let g = kernels::gpu_op(op).ok_or_else(|| no_gpu_kernel(op.name(), device))?;
    let b = backend(ordinal)?;
    let inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| {
            if t.device_slot().is_none() {
                to_gpu(t, ordinal)
            } else {
                Ok(t.clone())
            }
        })
        .collect::<Result<_>>()?;
    let name = op.name();
    let dtype = inputs[0].dtype();
    macro_rules! floats {
        ($f:ident, $($arg:expr),*) => {
            match dtype {
                DType::F32 => $f::<f32>($($arg),*),
                DType::F64 => $f::<f64>($($arg),*),
                d => Err(float_only(name, d)),
            }
        };
    }
    let out = match g {
        GpuOp::View => {
            let inputs = if op.as_any().is::<Reshape>() {
                vec![try_contiguous(&inputs[0])?]
            } else {
                inputs
            };
            return op.compute(&inputs);
        }
        GpuOp::Fill(v) => match dtype {
            DType::F32 => fill::<f32>(&b, inputs[0].shape(), v),
            DType::F64 => fill::<f64>(&b, inputs[0].shape(), v),
            DType::I32 => fill::<i32>(&b, inputs[0].shape(), v),
            DType::I64 => fill::<i64>(&b, inputs[0].shape(), v),
            d => Err(Error::dtype(name, "GPU dtype", &[d])),
        },
        GpuOp::Unary(u) => {
            let expr = kernels::unary_expr(u, dtype).ok_or_else(|| float_only(name, dtype))?;
            floats!(unary, &b, name, &expr, &inputs[0])
        }
        GpuOp::Binary(o) => {
            let expr = kernels::binary_expr(o, dtype).ok_or_else(|| float_only(name, dtype))?;
            floats!(binary, &b, name, &expr, &inputs[0], &inputs[1])
        }
        GpuOp::ReluGrad => floats!(
            binary,
            &b,
            name,
            kernels::RELU_GRAD_EXPR,
            &inputs[0],
            &inputs[1]
        ),
        GpuOp::MatMul {
            transpose_a,
            transpose_b,
        } => floats!(matmul, &b, &inputs[0], &inputs[1], transpose_a, transpose_b),
        GpuOp::Softmax { axis, log } => {
            let axis = crate::layout::normalize_axis(name, axis, inputs[0].shape())?;
            floats!(softmax, &b, axis, log, &inputs[0])
        }
        GpuOp::Reduce {
            kind,
            axes,
            keepdims,
        } => {
            let axes = axes.resolve(name, inputs[0].shape())?;
            floats!(reduce, &b, kind, &axes, keepdims, &inputs[0])
        }
    }?;
    Ok(vec![out])
}
