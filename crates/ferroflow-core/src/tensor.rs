//! [`Tensor`]: an immutable, cheaply clonable n-dimensional array.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::dtype::{DType, Element};
use crate::error::{fmt_shape, Error, Result};
use crate::layout::Layout;
use crate::storage::{Storage, StorageElement};
use crate::with_storage;

/// Identifies a tensor (or a variable) for the gradient tape. Every new tensor handle gets a
/// fresh id; clones of a handle share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    /// A new, never-used id.
    pub fn new() -> TensorId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for TensorId {
    fn default() -> Self {
        Self::new()
    }
}

struct TensorImpl {
    id: TensorId,
    storage: Arc<Storage>,
    layout: Layout,
    symbol: Option<Box<Symbol>>,
    /// Where the values live when not in `storage` (a GPU buffer; a zero-sized nothing without
    /// the `cuda` feature). See `device/`.
    device: crate::device::DeviceSlot,
}

/// Where a symbolic tensor (a [`Graph`](crate::graph::Graph) node's output) comes from. A symbolic
/// tensor has a dtype and a partially known shape but no values: ops applied to it add nodes to its
/// graph, and a [`Session`](crate::graph::Session) computes it.
#[derive(Clone, Debug)]
pub struct Symbol {
    /// The graph holding the node.
    pub graph: crate::graph::GraphId,
    /// The node's index in the graph.
    pub node: usize,
    /// Which output of the node.
    pub output: usize,
    /// The shape as far as it is known (`None`: unknown, e.g. a placeholder's batch dimension).
    pub dims: Vec<crate::op::Dim>,
    /// TensorFlow's tensor name, `"<node name>:<output>"`.
    pub name: Arc<str>,
}

/// An immutable n-dimensional array of one [`DType`], like TensorFlow's eager `tf.Tensor`.
///
/// Cloning is cheap (a reference count). Views such as a transpose share storage.
///
/// ```
/// use ferroflow_core::Tensor;
/// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// assert_eq!(t.shape(), &[2, 2]);
/// assert_eq!(t.to_string(), "tf.Tensor(\n[[1. 2.]\n [3. 4.]], shape=(2, 2), dtype=float32)");
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Tensor(Arc<TensorImpl>);

impl Tensor {
    /// Builds a tensor from a storage and a layout (kernels' constructor).
    pub fn from_parts(storage: Arc<Storage>, layout: Layout) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            id: TensorId::new(),
            storage,
            layout,
            symbol: None,
            device: Default::default(),
        }))
    }

    /// A tensor whose values live on a device (`storage` is an empty placeholder that only
    /// carries the dtype, as for symbolic tensors).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn from_device_parts(
        dtype: DType,
        layout: Layout,
        device: crate::device::DeviceSlot,
    ) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            id: TensorId::new(),
            storage: Arc::new(Storage::zeros(dtype, 0)),
            layout,
            symbol: None,
            device,
        }))
    }

    /// The device buffer holding the values (empty on the CPU).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn device_slot(&self) -> &crate::device::DeviceSlot {
        &self.0.device
    }

    /// A symbolic tensor (graph mode): `dtype` and `symbol.dims`, no values. Its [`shape`](Self::shape)
    /// shows each unknown dimension as [`UNKNOWN_DIM_PROBE`] so that shape arithmetic in op functions
    /// stays well defined; [`dims`](Self::dims) gives the real partial shape.
    pub fn symbolic(dtype: DType, symbol: Symbol) -> Tensor {
        let probe: Vec<usize> = symbol
            .dims
            .iter()
            .map(|d| d.unwrap_or(UNKNOWN_DIM_PROBE))
            .collect();
        Tensor(Arc::new(TensorImpl {
            id: TensorId::new(),
            storage: Arc::new(Storage::zeros(dtype, 0)),
            layout: Layout::contiguous(&probe),
            symbol: Some(Box::new(symbol)),
            device: Default::default(),
        }))
    }

    /// True for a graph tensor (no values until a `Session` runs it).
    pub fn is_symbolic(&self) -> bool {
        self.0.symbol.is_some()
    }

    /// The graph node this symbolic tensor comes from (`None` for a concrete tensor).
    pub fn symbol(&self) -> Option<&Symbol> {
        self.0.symbol.as_deref()
    }

    /// The shape with unknown dimensions as `None` (all known for a concrete tensor).
    pub fn dims(&self) -> Vec<crate::op::Dim> {
        match &self.0.symbol {
            Some(s) => s.dims.clone(),
            None => self.shape().iter().map(|&d| Some(d)).collect(),
        }
    }

    fn no_values(&self, what: &str) -> Error {
        let name = self
            .symbol()
            .map(|s| s.name.to_string())
            .unwrap_or_default();
        Error::invalid(
            what,
            format!(
                "Tensor(\"{name}\") is a symbolic graph tensor: it has no values until a Session runs it"
            ),
        )
    }

    /// Builds a contiguous tensor from a storage; `shape` must match its length.
    pub fn from_storage(storage: Storage, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != storage.len() {
            return Err(Error::shape(
                "Tensor::from_storage",
                format!(
                    "{} elements cannot have shape {}",
                    storage.len(),
                    fmt_shape(shape)
                ),
                &[shape],
            ));
        }
        Ok(Tensor::from_parts(
            Arc::new(storage),
            Layout::contiguous(shape),
        ))
    }

    /// A tensor owning `data` with `shape` (row-major); errors when the sizes disagree.
    pub fn from_vec<T: StorageElement>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_storage(T::into_storage(data), shape)
    }

    /// A tensor copied from `data` with `shape`.
    pub fn from_slice<T: StorageElement>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A rank-0 tensor.
    pub fn scalar<T: StorageElement>(v: T) -> Tensor {
        Tensor::from_parts(Arc::new(T::into_storage(vec![v])), Layout::contiguous(&[]))
    }

    /// A rank-0 tensor of `dtype` holding `v` (converted).
    pub fn scalar_of(dtype: DType, v: f64) -> Tensor {
        Tensor::from_parts(
            Arc::new(storage_from_f64(dtype, &[v])),
            Layout::contiguous(&[]),
        )
    }

    /// A tensor of `dtype` from `f64` values (converted element by element).
    pub fn from_f64_slice(dtype: DType, data: &[f64], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_storage(storage_from_f64(dtype, data), shape)
    }

    /// This handle's id (used by the gradient tape).
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    /// A new handle on the same data with a fresh id (the tape sees it as a different tensor).
    pub fn with_new_id(&self) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            id: TensorId::new(),
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            symbol: self.0.symbol.clone(),
            device: self.0.device.clone(),
        }))
    }

    /// True when this handle is the only owner of its whole, contiguous storage (what
    /// [`try_into_storage`](Self::try_into_storage) needs to succeed).
    pub(crate) fn is_exclusive(&mut self) -> bool {
        self.0.symbol.is_none()
            && self.0.device.is_none()
            && self.0.layout.is_contiguous()
            && self.0.layout.offset() == 0
            && self.0.storage.len() == self.0.layout.num_elements()
            && Arc::get_mut(&mut self.0).is_some_and(|i| Arc::get_mut(&mut i.storage).is_some())
    }

    /// The storage itself when this handle is its only owner and views all of it contiguously
    /// from offset 0, so an in-place kernel may overwrite it (the graph memory planner's check
    /// of exclusivity); the tensor back otherwise.
    pub(crate) fn try_into_storage(self) -> std::result::Result<Storage, Tensor> {
        let whole = self.0.symbol.is_none()
            && self.0.device.is_none()
            && self.0.layout.is_contiguous()
            && self.0.layout.offset() == 0
            && self.0.storage.len() == self.0.layout.num_elements();
        if !whole {
            return Err(self);
        }
        match Arc::try_unwrap(self.0) {
            Ok(inner) => match Arc::try_unwrap(inner.storage) {
                Ok(s) => Ok(s),
                Err(storage) => Err(Tensor(Arc::new(TensorImpl {
                    id: inner.id,
                    storage,
                    layout: inner.layout,
                    symbol: inner.symbol,
                    device: inner.device,
                }))),
            },
            Err(arc) => Err(Tensor(arc)),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    /// The number of elements.
    pub fn num_elements(&self) -> usize {
        self.0.layout.num_elements()
    }

    /// The layout (shape, strides, offset).
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// The underlying storage (shared with views).
    pub fn storage(&self) -> &Arc<Storage> {
        &self.0.storage
    }

    /// True when the elements are row-major contiguous in storage.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// A view with another layout on the same storage (for view ops).
    pub fn view(&self, layout: Layout) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            id: TensorId::new(),
            storage: self.0.storage.clone(),
            layout,
            symbol: None,
            device: self.0.device.clone(),
        }))
    }

    /// The elements in row-major order, borrowed when the layout is contiguous.
    ///
    /// Errors when `T` is not this tensor's dtype.
    pub fn data<T: StorageElement>(&self) -> Result<Cow<'_, [T]>> {
        if self.is_symbolic() {
            return Err(self.no_values("Tensor::data"));
        }
        if self.0.device.is_some() {
            // Reading a device tensor's values copies them to the host (TF's `.numpy()`).
            return Ok(Cow::Owned(crate::device::to_host(self)?.to_vec::<T>()?));
        }
        let s = T::slice(&self.0.storage).ok_or_else(|| {
            Error::dtype(
                "Tensor::data",
                format!("requested {} elements", T::DTYPE.name()),
                &[self.dtype()],
            )
        })?;
        let l = &self.0.layout;
        if let Some(r) = l.contiguous_range() {
            return Ok(Cow::Borrowed(&s[r]));
        }
        let mut out = Vec::with_capacity(l.num_elements());
        l.for_each_row(|off, stride, n| {
            if stride == 1 {
                out.extend_from_slice(&s[off..off + n]);
            } else {
                out.extend((0..n).map(|i| s[off + i * stride]));
            }
        });
        Ok(Cow::Owned(out))
    }

    /// Copies the elements out in row-major order. Errors when `T` is not the dtype.
    pub fn to_vec<T: StorageElement>(&self) -> Result<Vec<T>> {
        Ok(self.data::<T>()?.into_owned())
    }

    /// Copies the elements out as `f64`, whatever the dtype (empty for a symbolic tensor; while
    /// a traced function is being traced, that makes the trace fail rather than go on with no
    /// values).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        if self.is_symbolic() {
            crate::graph::note_symbolic_read(self);
            return Vec::new();
        }
        if self.0.device.is_some() {
            // Copied to the host; an unreadable device tensor reads as empty, as a symbolic one.
            return crate::device::to_host(self)
                .map(|t| t.to_f64_vec())
                .unwrap_or_default();
        }
        with_storage!(&*self.0.storage, s => {
            let l = &self.0.layout;
            l.offsets().map(|o| s[o].to_f64()).collect()
        })
    }

    /// The single value of a one-element tensor, converted to `T` from this tensor's dtype.
    pub fn item<T: Element>(&self) -> Result<T> {
        if self.is_symbolic() {
            return Err(self.no_values("Tensor::item"));
        }
        if self.num_elements() != 1 {
            return Err(Error::shape(
                "Tensor::item",
                "needs a tensor with exactly one element",
                &[self.shape()],
            ));
        }
        Ok(T::from_f64(self.to_f64_vec()[0]))
    }

    /// A contiguous tensor with the same values (this tensor itself when already contiguous
    /// from offset 0).
    pub fn contiguous(&self) -> Tensor {
        if self.0.device.is_some() {
            return crate::device::contiguous(self);
        }
        if self.is_symbolic()
            || self.is_contiguous()
                && self.0.layout.offset() == 0
                && self.0.storage.len() == self.num_elements()
        {
            return self.clone();
        }
        let storage = self.data_as_storage_vec();
        Tensor::from_parts(Arc::new(storage), Layout::contiguous(self.shape()))
    }

    fn data_as_storage_vec(&self) -> Storage {
        fn copy<T: StorageElement>(t: &Tensor) -> Storage {
            match t.data::<T>() {
                Ok(d) => T::into_storage(d.into_owned()),
                Err(_) => unreachable!("dtype matches storage"),
            }
        }
        match self.dtype() {
            DType::F32 => copy::<f32>(self),
            DType::F64 => copy::<f64>(self),
            DType::F16 => copy::<half::f16>(self),
            DType::BF16 => copy::<half::bf16>(self),
            DType::I32 => copy::<i32>(self),
            DType::I64 => copy::<i64>(self),
            DType::U8 => copy::<u8>(self),
            DType::Bool => copy::<bool>(self),
        }
    }
}

/// The stand-in [`Tensor::shape`] shows for an unknown dimension of a symbolic tensor. It is not 1
/// (so it never broadcasts silently) and small enough that products of several stay far from
/// overflow; a `Session` re-checks every node's shape rule with the fed shapes.
pub const UNKNOWN_DIM_PROBE: usize = 997;

/// Converts `f64` values to a storage of `dtype`.
pub fn storage_from_f64(dtype: DType, data: &[f64]) -> Storage {
    fn conv<T: StorageElement>(d: &[f64]) -> Storage {
        T::into_storage(d.iter().map(|&v| T::from_f64(v)).collect())
    }
    match dtype {
        DType::F32 => conv::<f32>(data),
        DType::F64 => conv::<f64>(data),
        DType::F16 => conv::<half::f16>(data),
        DType::BF16 => conv::<half::bf16>(data),
        DType::I32 => conv::<i32>(data),
        DType::I64 => conv::<i64>(data),
        DType::U8 => conv::<u8>(data),
        DType::Bool => conv::<bool>(data),
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
