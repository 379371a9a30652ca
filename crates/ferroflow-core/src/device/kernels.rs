//! Which ops have a GPU kernel, and the CUDA C++ source of each kernel, generated per op and
//! dtype as Rust strings (compiled at run time by NVRTC in `cuda.rs`).
//!
//! Pure string and table code, compiled in every build so the tests check it without CUDA:
//! names, expressions, that every listed op has a source. Whether NVRTC accepts the sources and
//! the kernels compute the right values is only checked on a GPU machine (docs/cuda.md).

use crate::dtype::DType;
use crate::op::Op;
use crate::ops::array::{BroadcastTo, Identity, Reshape, StopGradient, Transpose};
use crate::ops::binary::{Binary, BinaryOp};
use crate::ops::create::FillLike;
use crate::ops::linalg::MatMul;
use crate::ops::nn::ReluGrad;
use crate::ops::reduce::{Axes, Reduce, ReduceKind};
use crate::ops::softmax::Softmax;
use crate::ops::unary::{Unary, UnaryOp, SELU_ALPHA, SELU_SCALE};

/// What the GPU backend does for an op (the ops it knows; [`gpu_op`] gives `None` for the rest).
#[derive(Clone, Debug, PartialEq)]
pub enum GpuOp {
    /// An elementwise unary function.
    Unary(UnaryOp),
    /// An elementwise binary function with broadcasting.
    Binary(BinaryOp),
    /// `ReluGrad(gradients, features)`: `features > 0 ? gradients : 0`.
    ReluGrad,
    /// cuBLAS GEMM (batched, batch dimensions broadcast).
    MatMul {
        /// `transpose_a`.
        transpose_a: bool,
        /// `transpose_b`.
        transpose_b: bool,
    },
    /// A reduction (sum, mean, max, min) over axes.
    Reduce {
        /// Which reduction.
        kind: ReduceKind,
        /// Over which axes.
        axes: Axes,
        /// Keep reduced axes with size 1.
        keepdims: bool,
    },
    /// Softmax or log-softmax along one axis (one thread per row, as the CPU's row kernel).
    Softmax {
        /// The axis (negative counts from the end).
        axis: isize,
        /// `LogSoftmax`.
        log: bool,
    },
    /// A view op whose own `compute` only changes the layout (identity, reshape, transpose,
    /// broadcast_to); it runs unchanged on a device tensor.
    View,
    /// `fill(shape(x), value)` on `x`'s device (`zeros_like`, `ones_like`: the tape's seeds).
    Fill(f64),
}

/// The GPU version of `op`, or `None` when it has no GPU kernel (then the op is a typed error
/// on GPU inputs).
pub fn gpu_op(op: &dyn Op) -> Option<GpuOp> {
    let any = op.as_any();
    if let Some(u) = any.downcast_ref::<Unary>() {
        return unary_expr(u.0, DType::F32).map(|_| GpuOp::Unary(u.0));
    }
    if let Some(b) = any.downcast_ref::<Binary>() {
        return binary_expr(b.0, DType::F32).map(|_| GpuOp::Binary(b.0));
    }
    if any.is::<ReluGrad>() {
        return Some(GpuOp::ReluGrad);
    }
    if let Some(m) = any.downcast_ref::<MatMul>() {
        return Some(GpuOp::MatMul {
            transpose_a: m.transpose_a,
            transpose_b: m.transpose_b,
        });
    }
    if let Some(r) = any.downcast_ref::<Reduce>() {
        return reduce_init(r.kind).map(|_| GpuOp::Reduce {
            kind: r.kind,
            axes: r.axes.clone(),
            keepdims: r.keepdims,
        });
    }
    if let Some(s) = any.downcast_ref::<Softmax>() {
        return Some(GpuOp::Softmax {
            axis: s.axis,
            log: s.log,
        });
    }
    if any.is::<Identity>()
        || any.is::<StopGradient>()
        || any.is::<Reshape>()
        || any.is::<Transpose>()
        || any.is::<BroadcastTo>()
    {
        return Some(GpuOp::View);
    }
    if let Some(f) = any.downcast_ref::<FillLike>() {
        return Some(GpuOp::Fill(f.value));
    }
    None
}

/// The C type of a GPU element type (`None`: the dtype has no GPU kernels yet).
pub fn c_type(dtype: DType) -> Option<&'static str> {
    match dtype {
        DType::F32 => Some("float"),
        DType::F64 => Some("double"),
        DType::I32 => Some("int"),
        DType::I64 => Some("long long"),
        _ => None,
    }
}

/// A C math function for `dtype`: `expf` for float32, `exp` for float64.
fn m(name: &str, dtype: DType) -> String {
    if dtype == DType::F32 {
        format!("{name}f")
    } else {
        name.to_string()
    }
}

/// A floating literal of type `T`.
fn lit(v: f64) -> String {
    format!("((T){v:e})")
}

/// The C expression of a unary op on `x` (type `T`), float32/float64 only; `None` for ops
/// without a GPU kernel. Mirrors the CPU kernels' formulas (`ops/unary.rs`).
pub fn unary_expr(op: UnaryOp, dtype: DType) -> Option<String> {
    use UnaryOp::*;
    if !matches!(dtype, DType::F32 | DType::F64) {
        return None;
    }
    let f = |n: &str| m(n, dtype);
    let sigmoid = format!(
        "(x >= (T)0 ? (T)1 / ((T)1 + {e}(-x)) : {e}(x) / ((T)1 + {e}(x)))",
        e = f("exp")
    );
    Some(match op {
        Neg => "-x".into(),
        Abs => format!("{}(x)", f("fabs")),
        Sign => "(x > (T)0 ? (T)1 : (x < (T)0 ? (T)-1 : x))".into(),
        Exp => format!("{}(x)", f("exp")),
        Expm1 => format!("{}(x)", f("expm1")),
        Log => format!("{}(x)", f("log")),
        Log1p => format!("{}(x)", f("log1p")),
        Sqrt => format!("{}(x)", f("sqrt")),
        Rsqrt => format!("(T)1 / {}(x)", f("sqrt")),
        Square => "x * x".into(),
        Reciprocal => "(T)1 / x".into(),
        Sin => format!("{}(x)", f("sin")),
        Cos => format!("{}(x)", f("cos")),
        Tanh => format!("{}(x)", f("tanh")),
        Sigmoid => sigmoid,
        Relu => "(x > (T)0 ? x : (T)0)".into(),
        Relu6 => format!("{}({}(x, (T)0), (T)6)", f("fmin"), f("fmax")),
        LeakyRelu(a) => format!("(x > (T)0 ? x : {} * x)", lit(a)),
        Elu(a) => format!("(x > (T)0 ? x : {} * {}(x))", lit(a), f("expm1")),
        Selu => format!(
            "(x > (T)0 ? {s} * x : {s} * {a} * {e}(x))",
            s = lit(SELU_SCALE),
            a = lit(SELU_ALPHA),
            e = f("expm1")
        ),
        Gelu => format!(
            "(T)0.5 * x * ((T)1 + {}(x * {}))",
            f("erf"),
            lit(std::f64::consts::FRAC_1_SQRT_2)
        ),
        GeluTanh => format!(
            "(T)0.5 * x * ((T)1 + {}({} * (x + (T)0.044715 * x * x * x)))",
            f("tanh"),
            lit((2.0 / std::f64::consts::PI).sqrt())
        ),
        Softplus => format!(
            "{}({}(-{}(x))) + {}(x, (T)0)",
            f("log1p"),
            f("exp"),
            f("fabs"),
            f("fmax")
        ),
        Softsign => format!("x / ((T)1 + {}(x))", f("fabs")),
        Silu => format!("x * {sigmoid}"),
        HardSigmoid => format!("{}({}(x + (T)3, (T)0), (T)6) / (T)6", f("fmin"), f("fmax")),
        Floor => format!("{}(x)", f("floor")),
        Ceil => format!("{}(x)", f("ceil")),
        // rint rounds half to even in the default rounding mode, as tf.round.
        Round => format!("{}(x)", f("rint")),
        Erf => format!("{}(x)", f("erf")),
    })
}

/// The C expression of a binary op on `x`, `y` (type `T`), float32/float64 only. Mirrors
/// `ops/binary.rs` (NaN-propagating maximum/minimum, floor-mod with the divisor's sign).
pub fn binary_expr(op: BinaryOp, dtype: DType) -> Option<String> {
    use BinaryOp::*;
    if !matches!(dtype, DType::F32 | DType::F64) {
        return None;
    }
    let f = |n: &str| m(n, dtype);
    Some(match op {
        Add => "x + y".into(),
        Sub => "x - y".into(),
        Mul => "x * y".into(),
        Div => "x / y".into(),
        Pow => format!("{}(x, y)", f("pow")),
        Maximum => "((x >= y || x != x) ? x : y)".into(),
        Minimum => "((x <= y || x != x) ? x : y)".into(),
        FloorDiv => format!("{}(x / y)", f("floor")),
        Mod => format!("floormod_(x, y, {}(x, y))", f("fmod")),
        SquaredDifference => "(x - y) * (x - y)".into(),
    })
}

/// `ReluGrad(gradients = x, features = y)`: TF's `_ReluGrad` passes the gradient where the
/// forward input was positive.
pub const RELU_GRAD_EXPR: &str = "(y > (T)0 ? x : (T)0)";

/// Every kernel the backend can generate, as `(entry name, source)`: what NVRTC compiles at run
/// time, listed so a test can compile them all up front (`cuda.rs`, where NVRTC is installed).
pub fn all_sources() -> Vec<(String, String)> {
    use crate::ops::unary::UnaryOp as U;
    let unary = [
        U::Neg,
        U::Abs,
        U::Sign,
        U::Exp,
        U::Expm1,
        U::Log,
        U::Log1p,
        U::Sqrt,
        U::Rsqrt,
        U::Square,
        U::Reciprocal,
        U::Sin,
        U::Cos,
        U::Tanh,
        U::Sigmoid,
        U::Relu,
        U::Relu6,
        U::LeakyRelu(0.2),
        U::Elu(1.0),
        U::Selu,
        U::Gelu,
        U::GeluTanh,
        U::Softplus,
        U::Softsign,
        U::Silu,
        U::HardSigmoid,
        U::Floor,
        U::Ceil,
        U::Round,
        U::Erf,
    ];
    let binary = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::FloorDiv,
        BinaryOp::Mod,
        BinaryOp::SquaredDifference,
    ];
    let mut out = Vec::new();
    for dt in [DType::F32, DType::F64] {
        for u in unary {
            let name = kernel_name(&format!("{u:?}").replace(['(', ')', '.'], "_"), dt);
            if let Some(e) = unary_expr(u, dt) {
                out.push((name.clone(), unary_source(&name, dt, &e)));
            }
        }
        for b in binary {
            let name = kernel_name(&format!("{b:?}"), dt);
            if let Some(e) = binary_expr(b, dt) {
                out.push((name.clone(), binary_source(&name, dt, &e)));
            }
        }
        let name = kernel_name("Softmax", dt);
        out.push((name.clone(), softmax_source(&name, dt)));
        let name = kernel_name("ReluGrad", dt);
        out.push((name.clone(), binary_source(&name, dt, RELU_GRAD_EXPR)));
        for k in [
            ReduceKind::Sum,
            ReduceKind::Mean,
            ReduceKind::Max,
            ReduceKind::Min,
        ] {
            let name = kernel_name(&format!("reduce_{k:?}"), dt);
            if let Some(src) = reduce_source(&name, dt, k) {
                out.push((name, src));
            }
        }
    }
    for dt in [DType::F32, DType::F64, DType::I32, DType::I64] {
        let name = kernel_name("fill", dt);
        out.push((name.clone(), fill_source(&name, dt)));
        let name = kernel_name("copy", dt);
        out.push((name.clone(), unary_source(&name, dt, "x")));
    }
    out
}

/// The accumulator's start value of a reduction (`None`: no GPU kernel for this reduction).
pub fn reduce_init(kind: ReduceKind) -> Option<&'static str> {
    match kind {
        ReduceKind::Sum | ReduceKind::Mean => Some("0"),
        ReduceKind::Max => Some("-FF_INF"),
        ReduceKind::Min => Some("FF_INF"),
        _ => None,
    }
}

/// The parameter blocks (`plan::StridedArgs`, `plan::ReduceArgs`) as C structs, field for field.
pub const PRELUDE: &str = r#"
#define MAX_RANK 8
struct Strided {
    long long n; int rank; int pad;
    long long shape[MAX_RANK]; long long sa[MAX_RANK]; long long sb[MAX_RANK];
    long long oa; long long ob;
};
struct Reduce {
    long long n; long long count; int keep_rank; int red_rank;
    long long keep_shape[MAX_RANK]; long long keep_strides[MAX_RANK];
    long long red_shape[MAX_RANK]; long long red_strides[MAX_RANK];
    long long offset;
};
#define FF_INF __longlong_as_double(0x7ff0000000000000LL)
"#;

fn header(dtype: DType) -> String {
    let t = c_type(dtype).unwrap_or("float");
    format!(
        "{PRELUDE}typedef {t} T;\n\
         __device__ __forceinline__ T floormod_(T x, T y, T r) {{\n\
         \x20   return (r != (T)0 && ((r < (T)0) != (y < (T)0))) ? r + y : r;\n}}\n"
    )
}

/// The grid-stride loop over output elements with each input's offset (`plan::StridedArgs::offsets`).
const LOOP: &str = r#"    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < p.n;
         i += (long long)blockDim.x * gridDim.x) {
        long long rem = i, ia = p.oa, ib = p.ob;
        for (int d = p.rank - 1; d >= 0; --d) {
            long long c = rem % p.shape[d];
            rem /= p.shape[d];
            ia += c * p.sa[d];
            ib += c * p.sb[d];
        }
"#;

/// A kernel's entry name: `ff_<what>_<dtype>`.
pub fn kernel_name(what: &str, dtype: DType) -> String {
    format!("ff_{}_{}", what.to_ascii_lowercase(), dtype.name())
}

/// The entry name of an elementwise kernel: [`kernel_name`] plus a hash of the expression, so
/// ops with attributes (`LeakyRelu(0.2)` and `LeakyRelu(0.3)`) get distinct cached kernels.
pub fn expr_kernel_name(what: &str, dtype: DType, expr: &str) -> String {
    // FNV-1a, 64 bits: stable across runs and builds.
    let h = expr.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{}_{h:016x}", kernel_name(what, dtype))
}

/// Source of a unary elementwise kernel `name(const T* a, T* out, Strided p)` computing `expr`
/// of `x = a[...]` (strided, so it also makes views contiguous: `expr = "x"`).
pub fn unary_source(name: &str, dtype: DType, expr: &str) -> String {
    format!(
        "{h}extern \"C\" __global__ void {name}(const T* a, T* out, Strided p) {{\n{LOOP}\
         \x20       T x = a[ia]; (void)ib;\n        out[i] = {expr};\n    }}\n}}\n",
        h = header(dtype)
    )
}

/// Source of a binary elementwise kernel `name(const T* a, const T* b, T* out, Strided p)`
/// computing `expr` of `x = a[...]`, `y = b[...]` with broadcasting.
pub fn binary_source(name: &str, dtype: DType, expr: &str) -> String {
    format!(
        "{h}extern \"C\" __global__ void {name}(const T* a, const T* b, T* out, Strided p) {{\n{LOOP}\
         \x20       T x = a[ia]; T y = b[ib];\n        out[i] = {expr};\n    }}\n}}\n",
        h = header(dtype)
    )
}

/// Source of the fill kernel `name(T* out, T v, long long n)`.
pub fn fill_source(name: &str, dtype: DType) -> String {
    format!(
        "{h}extern \"C\" __global__ void {name}(T* out, T v, long long n) {{\n\
         \x20   for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n\
         \x20        i += (long long)blockDim.x * gridDim.x) out[i] = v;\n}}\n",
        h = header(dtype)
    )
}

/// Source of a reduction kernel `name(const T* a, T* out, Reduce p)`: one thread per output
/// element, accumulating in double in the order of `plan::ReduceArgs::offsets`. Mean divides
/// the sum by the count; max/min propagate NaN as the CPU kernels.
pub fn reduce_source(name: &str, dtype: DType, kind: ReduceKind) -> Option<String> {
    let init = reduce_init(kind)?;
    let step = match kind {
        ReduceKind::Sum | ReduceKind::Mean => "acc += v;",
        ReduceKind::Max => "if (acc == acc && (v != v || v > acc)) acc = v;",
        ReduceKind::Min => "if (acc == acc && (v != v || v < acc)) acc = v;",
        _ => return None,
    };
    let fin = if kind == ReduceKind::Mean {
        "acc / (double)p.count"
    } else {
        "acc"
    };
    Some(format!(
        "{h}extern \"C\" __global__ void {name}(const T* a, T* out, Reduce p) {{\n\
         \x20   for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < p.n;\n\
         \x20        i += (long long)blockDim.x * gridDim.x) {{\n\
         \x20       long long rem = i, base = p.offset;\n\
         \x20       for (int d = p.keep_rank - 1; d >= 0; --d) {{\n\
         \x20           base += (rem % p.keep_shape[d]) * p.keep_strides[d];\n\
         \x20           rem /= p.keep_shape[d];\n        }}\n\
         \x20       double acc = {init};\n\
         \x20       for (long long j = 0; j < p.count; ++j) {{\n\
         \x20           long long r = j, off = base;\n\
         \x20           for (int d = p.red_rank - 1; d >= 0; --d) {{\n\
         \x20               off += (r % p.red_shape[d]) * p.red_strides[d];\n\
         \x20               r /= p.red_shape[d];\n            }}\n\
         \x20           double v = (double)a[off];\n            {step}\n        }}\n\
         \x20       out[i] = (T)({fin});\n    }}\n}}\n",
        h = header(dtype)
    ))
}

/// Source of the softmax kernel `name(const T* a, T* out, long long outer, long long r,
/// long long inner, int log_)` on a contiguous `[outer, r, inner]` buffer: one thread per
/// `(outer, inner)` row, with the CPU's steps (`kernels/softmax.rs`): the row maximum, the sum of
/// `exp(x - max)` in `T`, then `e / sum` or `x - max - log(sum)`.
pub fn softmax_source(name: &str, dtype: DType) -> String {
    let (e, l) = (m("exp", dtype), m("log", dtype));
    format!(
        "{h}extern \"C\" __global__ void {name}(const T* a, T* out, long long outer, long long r,\n\
         \x20                                  long long inner, int log_) {{\n\
         \x20   for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < outer * inner;\n\
         \x20        i += (long long)blockDim.x * gridDim.x) {{\n\
         \x20       const T* x = a + (i / inner) * r * inner + i % inner;\n\
         \x20       T* y = out + (i / inner) * r * inner + i % inner;\n\
         \x20       T mx = (T)(-FF_INF);\n\
         \x20       for (long long k = 0; k < r; ++k) if (x[k * inner] > mx) mx = x[k * inner];\n\
         \x20       T s = (T)0;\n\
         \x20       for (long long k = 0; k < r; ++k) {{\n\
         \x20           T ev = {e}(x[k * inner] - mx);\n\
         \x20           s += ev;\n\
         \x20           y[k * inner] = log_ ? x[k * inner] - mx : ev;\n        }}\n\
         \x20       T ls = {l}(s);\n\
         \x20       for (long long k = 0; k < r; ++k) y[k * inner] = log_ ? y[k * inner] - ls : y[k * inner] / s;\n\
         \x20   }}\n}}\n",
        h = header(dtype)
    )
}
