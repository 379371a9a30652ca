//! Devices: where a tensor's values live and where an op runs, as in TensorFlow
//! (`tf.device('/GPU:0')`, `tensor.device`, `tf.config.list_physical_devices`).
//!
//! - [`Device`] is `Cpu` or `Gpu(ordinal)`, parsed from TensorFlow's strings (`"/GPU:0"`,
//!   `"/device:GPU:0"`, `"gpu:1"`, `"/job:localhost/replica:0/task:0/device:CPU:0"`, `"cpu"`;
//!   case-insensitive) and printed in TF's canonical form `/device:GPU:0`.
//! - [`DeviceScope`] / [`with_device`] set the device for the current thread (nesting restores the
//!   outer one, as TF's `with tf.device(...)` blocks); [`current`] reads it, falling back on
//!   [`default_device`]: the first GPU when the `cuda` feature is on and a GPU is present, else
//!   the CPU (with a one-time message on stderr saying why when the feature is on).
//! - [`Tensor::device`] and [`Tensor::to_device`] say where a tensor is and copy it elsewhere.
//!
//! **Placement rule** ([`placement`]): an op runs on the device of its inputs. Inputs on two
//! different devices are an error naming the op and both devices, except host scalars (rank 0:
//! TF's Python-number constants, used by every gradient formula), which are copied to the op's
//! device. Ops whose inputs are all on the host run on the CPU, unless an explicit GPU scope is
//! active: then the inputs are copied to that GPU first (TF's rule for host tensors inside
//! `tf.device`). The *implicit* default device does not move host-input ops (not every op has a GPU
//! kernel yet); it is what [`current`] returns, to use with `t.to_device(device::current())`.
//! An op with no GPU kernel given GPU inputs is a typed error, never a silent CPU fallback.
//!
//! Without the `cuda` feature nothing here touches the CPU path: [`dispatch`] is a constant
//! `None`, tensors carry no device field (a zero-sized [`DeviceSlot`]), and asking for a GPU is an
//! error saying the build lacks the feature. With it, `cuda.rs` holds the backend on `cudarc`
//! (docs/cuda.md says what is verified: only the host side, so far).
//!
//! ```
//! use ferroflow_core::device::{self, Device};
//! let d: Device = "/device:GPU:1".parse()?;
//! assert_eq!(d, Device::Gpu(1));
//! assert_eq!(d.to_string(), "/device:GPU:1");
//! // The CPU scope always exists; nesting restores the outer device.
//! let inner = device::with_device("/CPU:0", device::current)?;
//! assert_eq!(inner, Device::Cpu);
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

pub mod kernels;
pub mod plan;

#[cfg(feature = "cuda")]
pub mod cuda;

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::op::Op;
use crate::tensor::Tensor;

/// A device, as TensorFlow names them: the host CPU or a GPU by ordinal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    /// The host (`/device:CPU:0`).
    Cpu,
    /// A CUDA GPU by ordinal (`/device:GPU:<n>`).
    Gpu(usize),
}

impl Device {
    /// True for a GPU.
    pub fn is_gpu(self) -> bool {
        matches!(self, Device::Gpu(_))
    }

    /// TensorFlow's device type: `"CPU"` or `"GPU"`.
    pub fn device_type(self) -> &'static str {
        match self {
            Device::Cpu => "CPU",
            Device::Gpu(_) => "GPU",
        }
    }

    /// The ordinal (0 for the CPU).
    pub fn ordinal(self) -> usize {
        match self {
            Device::Cpu => 0,
            Device::Gpu(n) => n,
        }
    }

    /// The fully qualified name TF gives `tensor.device`:
    /// `/job:localhost/replica:0/task:0/device:GPU:0`.
    pub fn full_name(self) -> String {
        format!("/job:localhost/replica:0/task:0{self}")
    }

    /// Parses a TensorFlow device string (see the module docs). Errors name the string.
    pub fn parse(spec: &str) -> Result<Device> {
        let bad = |why: &str| {
            Error::invalid(
                "tf.device",
                format!("cannot parse device specification '{spec}': {why}"),
            )
        };
        let s = spec.trim();
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        // The last `/`-separated field that names a device; job/replica/task fields are accepted
        // only for the local task, as TF's full names.
        let mut device: Option<&str> = None;
        for field in s.split('/').filter(|f| !f.is_empty()) {
            let lower = field.to_ascii_lowercase();
            if let Some(rest) = lower.strip_prefix("job:") {
                if rest != "localhost" {
                    return Err(bad("only the local job (job:localhost) exists"));
                }
            } else if let Some(rest) = lower
                .strip_prefix("replica:")
                .or_else(|| lower.strip_prefix("task:"))
            {
                if rest != "0" {
                    return Err(bad("only replica 0 / task 0 exist"));
                }
            } else if device.is_some() {
                return Err(bad("it names more than one device"));
            } else {
                device = Some(field);
            }
        }
        let field = device.ok_or_else(|| bad("it names no device"))?;
        let lower = field.to_ascii_lowercase();
        let body = lower.strip_prefix("device:").unwrap_or(&lower);
        let (kind, index) = match body.split_once(':') {
            Some((k, i)) => (k, Some(i)),
            None => (body, None),
        };
        let ordinal = match index {
            None => 0,
            Some(i) => i
                .parse::<usize>()
                .map_err(|_| bad("the index after ':' must be a non-negative integer"))?,
        };
        match kind {
            "cpu" if ordinal == 0 => Ok(Device::Cpu),
            "cpu" => Err(bad("only CPU:0 exists")),
            "gpu" => Ok(Device::Gpu(ordinal)),
            _ => Err(bad("the device type must be CPU or GPU")),
        }
    }
}

impl fmt::Display for Device {
    /// TF's canonical form (`tf.DeviceSpec.to_string()`): `/device:CPU:0`, `/device:GPU:1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/device:{}:{}", self.device_type(), self.ordinal())
    }
}

impl FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Device> {
        Device::parse(s)
    }
}

/// What a device probe found (the input of [`choose_default`]; `cuda.rs` fills it in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Built without the `cuda` feature.
    NotBuilt,
    /// The CUDA driver library (`libcuda`) could not be loaded.
    NoDriver,
    /// A CUDA library other than the driver is missing (its name).
    MissingLibrary(String),
    /// The driver answered with an error (its message).
    DriverError(String),
    /// The driver works and sees this many GPUs (maybe 0).
    Gpus(usize),
}

/// The default device for a probe result, and the message to print once when the `cuda` feature
/// is on but the GPU cannot be used. Pure, so the choice is tested without a GPU.
pub fn choose_default(probe: &Probe) -> (Device, Option<String>) {
    let cpu = |why: String| {
        (
            Device::Cpu,
            Some(format!(
                "ferroflow: built with the `cuda` feature but {why}; running on the CPU"
            )),
        )
    };
    match probe {
        Probe::NotBuilt => (Device::Cpu, None),
        Probe::Gpus(n) if *n > 0 => (Device::Gpu(0), None),
        Probe::Gpus(_) => cpu("the CUDA driver sees no GPU".into()),
        Probe::NoDriver => cpu("the CUDA driver library (libcuda) is not installed".into()),
        Probe::MissingLibrary(l) => cpu(format!("the CUDA library {l} is not installed")),
        Probe::DriverError(e) => cpu(format!("the CUDA driver failed ({e})")),
    }
}

/// Probes for GPUs once per process (never panics: libraries are looked up before any call).
pub fn probe() -> &'static Probe {
    static PROBE: std::sync::OnceLock<Probe> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| {
        #[cfg(feature = "cuda")]
        {
            cuda::probe()
        }
        #[cfg(not(feature = "cuda"))]
        {
            Probe::NotBuilt
        }
    })
}

/// The device ops and `to_device(current())` use when no scope is active: GPU 0 when the `cuda`
/// feature is on and a GPU is usable, else the CPU (printing, once, why the GPU is not used).
pub fn default_device() -> Device {
    static DEFAULT: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    *DEFAULT.get_or_init(|| {
        let (d, msg) = choose_default(probe());
        if let Some(m) = msg {
            eprintln!("{m}");
        }
        d
    })
}

/// The number of usable GPUs (0 without the `cuda` feature or without a GPU).
pub fn gpu_count() -> usize {
    match probe() {
        Probe::Gpus(n) => *n,
        _ => 0,
    }
}

/// `tf.config.PhysicalDevice`: a device's name (`/physical_device:GPU:0`) and type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalDevice {
    /// `/physical_device:CPU:0`, `/physical_device:GPU:1`.
    pub name: String,
    /// `"CPU"` or `"GPU"`.
    pub device_type: String,
}

/// `tf.config.list_physical_devices(device_type)`: the CPU and every usable GPU, or only those of
/// `device_type` (`"CPU"`/`"GPU"`, case-insensitive; another type lists nothing, as in TF).
pub fn list_physical_devices(device_type: Option<&str>) -> Vec<PhysicalDevice> {
    let all = std::iter::once(Device::Cpu).chain((0..gpu_count()).map(Device::Gpu));
    all.filter(|d| device_type.is_none_or(|t| t.eq_ignore_ascii_case(d.device_type())))
        .map(|d| PhysicalDevice {
            name: format!("/physical_device:{}:{}", d.device_type(), d.ordinal()),
            device_type: d.device_type().to_string(),
        })
        .collect()
}

/// Checks that `device` can hold tensors in this build and on this machine.
pub fn check_available(device: Device) -> Result<()> {
    match device {
        Device::Cpu => Ok(()),
        Device::Gpu(n) => {
            if matches!(probe(), Probe::NotBuilt) {
                return Err(Error::invalid(
                    "tf.device",
                    format!(
                        "{device} requested but ferroflow was built without the `cuda` feature \
                         (rebuild with `--features cuda`; docs/cuda.md)"
                    ),
                ));
            }
            let (_, why) = choose_default(probe());
            match why {
                Some(why) => Err(Error::invalid(
                    "tf.device",
                    format!("{device} requested but no GPU is usable: {why}"),
                )),
                None if n >= gpu_count() => Err(Error::invalid(
                    "tf.device",
                    format!(
                        "{device} requested but only {} GPU(s) are visible",
                        gpu_count()
                    ),
                )),
                None => Ok(()),
            }
        }
    }
}

thread_local! {
    static SCOPES: RefCell<Vec<Device>> = const { RefCell::new(Vec::new()) };
}

/// A device scope on this thread (`with tf.device(...)`): while it lives, [`current`] is its
/// device; dropping it restores the outer one. Not `Send`: scopes are per thread, as in TF.
#[must_use = "the scope ends when this guard is dropped"]
pub struct DeviceScope {
    depth: usize,
    _not_send: PhantomData<*const ()>,
}

impl DeviceScope {
    /// Enters `device` (an error when it is not available, e.g. a GPU without the `cuda` feature).
    pub fn enter(device: Device) -> Result<DeviceScope> {
        check_available(device)?;
        let depth = SCOPES.with(|s| {
            let mut s = s.borrow_mut();
            s.push(device);
            s.len() - 1
        });
        Ok(DeviceScope {
            depth,
            _not_send: PhantomData,
        })
    }
}

impl Drop for DeviceScope {
    fn drop(&mut self) {
        SCOPES.with(|s| s.borrow_mut().truncate(self.depth));
    }
}

/// Enters the device named by `spec` (TF's string) until the guard is dropped.
pub fn scope(spec: &str) -> Result<DeviceScope> {
    DeviceScope::enter(Device::parse(spec)?)
}

/// Runs `f` with the device named by `spec` as this thread's device (`with tf.device(spec):`).
pub fn with_device<R>(spec: &str, f: impl FnOnce() -> R) -> Result<R> {
    let _guard = scope(spec)?;
    Ok(f())
}

/// The innermost explicit scope's device on this thread, if any.
pub fn scoped() -> Option<Device> {
    SCOPES.with(|s| s.borrow().last().copied())
}

/// This thread's device: the innermost scope's, else [`default_device`].
pub fn current() -> Device {
    scoped().unwrap_or_else(default_device)
}

/// Where an op runs, from its inputs' devices ([`placement`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On the host, with the CPU kernels (the unchanged path).
    Cpu,
    /// On this GPU; host inputs (scalars, or all of them under an explicit scope) are copied there.
    Gpu(usize),
}

/// The placement rule of the module docs, on devices only (pure; tested without a GPU).
/// `inputs` gives each input's device and whether it is a host scalar; `scope` is the explicit
/// scope's device, if any.
pub fn placement(op: &str, inputs: &[(Device, bool)], scope: Option<Device>) -> Result<Placement> {
    let mut on: Option<Device> = None;
    for &(d, host_scalar) in inputs {
        if d == Device::Cpu && host_scalar {
            continue;
        }
        match on {
            None => on = Some(d),
            Some(o) if o == d => {}
            Some(o) => {
                return Err(Error::invalid(
                    op,
                    format!(
                        "inputs are on different devices ({o} and {d}); move them with \
                         Tensor::to_device first"
                    ),
                ))
            }
        }
    }
    // Only host scalars: they are on the CPU too.
    let on = on.unwrap_or(if inputs.is_empty() {
        Device::Cpu
    } else {
        inputs[0].0
    });
    Ok(match (on, scope) {
        (Device::Gpu(n), _) => Placement::Gpu(n),
        (Device::Cpu, Some(Device::Gpu(n))) => Placement::Gpu(n),
        (Device::Cpu, _) => Placement::Cpu,
    })
}

/// The error for an op that has no GPU kernel yet.
pub fn no_gpu_kernel(op: &str, device: Device) -> Error {
    Error::invalid(
        op,
        format!(
            "no GPU kernel for this op yet; its inputs are on {device}: copy them to the host \
             with Tensor::to_device(Device::Cpu) (docs/cuda.md lists the GPU ops)"
        ),
    )
}

/// A tensor's device buffer. Without the `cuda` feature this is zero-sized and always empty, so
/// tensors are unchanged.
#[cfg(not(feature = "cuda"))]
#[derive(Clone, Debug, Default)]
pub struct DeviceSlot;

#[cfg(not(feature = "cuda"))]
impl DeviceSlot {
    /// Never (no device buffers without the `cuda` feature).
    #[inline(always)]
    pub fn is_some(&self) -> bool {
        false
    }
    /// Always.
    #[inline(always)]
    pub fn is_none(&self) -> bool {
        true
    }
}

#[cfg(feature = "cuda")]
pub use cuda::DeviceSlot;

/// The hook in `op::compute`: `None` to run the CPU kernel (always, without the `cuda` feature
/// or when every input is on the host and no GPU scope is active), else the op's result on the
/// GPU (or the typed error of [`placement`] / [`no_gpu_kernel`]).
#[inline(always)]
pub(crate) fn dispatch(op: &dyn Op, inputs: &[Tensor]) -> Option<Result<Vec<Tensor>>> {
    #[cfg(feature = "cuda")]
    {
        cuda::dispatch(op, inputs)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (op, inputs);
        None
    }
}

/// A host copy of a device tensor (contiguous); the tensor itself on the CPU.
pub(crate) fn to_host(t: &Tensor) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    {
        cuda::to_host(t)
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(t.clone())
    }
}

/// `Tensor::contiguous` for a device tensor (a copy on its device).
pub(crate) fn contiguous(t: &Tensor) -> Tensor {
    #[cfg(feature = "cuda")]
    {
        cuda::contiguous(t)
    }
    #[cfg(not(feature = "cuda"))]
    {
        t.clone()
    }
}

impl Tensor {
    /// The device holding the values (`tensor.device` in TF, as a [`Device`]; see
    /// [`Device::full_name`] for TF's string). Always the CPU without the `cuda` feature.
    pub fn device(&self) -> Device {
        #[cfg(feature = "cuda")]
        {
            self.device_slot().device()
        }
        #[cfg(not(feature = "cuda"))]
        {
            Device::Cpu
        }
    }

    /// A copy on `device` (this tensor itself when it is there already). Copying to a GPU needs
    /// the `cuda` feature and a usable GPU: otherwise a typed error says which is missing.
    ///
    /// ```
    /// use ferroflow_core::{device::Device, Tensor};
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?;
    /// assert_eq!(t.device(), Device::Cpu);
    /// assert_eq!(t.to_device(Device::Cpu)?.id(), t.id()); // no copy
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if self.is_symbolic() {
            return Err(Error::invalid(
                "Tensor::to_device",
                "a symbolic graph tensor has no values to copy",
            ));
        }
        if self.device() == device {
            return Ok(self.clone());
        }
        check_available(device)?;
        #[cfg(feature = "cuda")]
        {
            match device {
                Device::Cpu => cuda::to_host(self),
                Device::Gpu(n) => cuda::to_gpu(&to_host(self)?, n),
            }
        }
        #[cfg(not(feature = "cuda"))]
        {
            // check_available refused every GPU, and CPU == CPU returned above.
            Err(Error::invalid(
                "Tensor::to_device",
                format!("cannot copy to {device}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
