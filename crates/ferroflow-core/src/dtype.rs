//! Element types: [`DType`] names them at run time, [`Element`] ties a Rust type to its `DType`.

use half::{bf16, f16};

/// The element type of a tensor, named as in TensorFlow (`float32`, `int64`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float (the default).
    F32,
    /// 64-bit float.
    F64,
    /// IEEE half precision (storage; math upcasts to f32).
    F16,
    /// bfloat16 (storage; math upcasts to f32).
    BF16,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer (indices, `argmax`).
    I64,
    /// 8-bit unsigned integer (images).
    U8,
    /// Boolean (comparisons, masks).
    Bool,
}

impl DType {
    /// TensorFlow's name: `float32`, `float64`, `float16`, `bfloat16`, `int32`, `int64`, `uint8`, `bool`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::Bool => "bool",
        }
    }

    /// Parses TensorFlow's names (and a few NumPy aliases such as `f32`).
    pub fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "float32" | "f32" | "float" => DType::F32,
            "float64" | "f64" | "double" => DType::F64,
            "float16" | "f16" | "half" => DType::F16,
            "bfloat16" | "bf16" => DType::BF16,
            "int32" | "i32" => DType::I32,
            "int64" | "i64" => DType::I64,
            "uint8" | "u8" => DType::U8,
            "bool" => DType::Bool,
            _ => return None,
        })
    }

    /// True for every floating-point dtype (the ones gradients flow through).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// True for the integer dtypes.
    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64 | DType::U8)
    }

    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 | DType::Bool => 1,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that can be a tensor element.
pub trait Element: Copy + Send + Sync + std::fmt::Debug + PartialOrd + Default + 'static {
    /// The matching run-time dtype.
    const DTYPE: DType;
    /// Converts to `f64` (`true` → 1).
    fn to_f64(self) -> f64;
    /// Converts from `f64` (truncating toward zero for integers, `!= 0` for bool).
    fn from_f64(v: f64) -> Self;
}

macro_rules! num_element {
    ($t:ty, $d:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    };
}
num_element!(f32, F32);
num_element!(f64, F64);
num_element!(i32, I32);
num_element!(i64, I64);
num_element!(u8, U8);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn to_f64(self) -> f64 {
        if self {
            1.0
        } else {
            0.0
        }
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
}

impl Element for f16 {
    const DTYPE: DType = DType::F16;
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
    fn from_f64(v: f64) -> Self {
        f16::from_f64(v)
    }
}

impl Element for bf16 {
    const DTYPE: DType = DType::BF16;
    fn to_f64(self) -> f64 {
        bf16::to_f64(self)
    }
    fn from_f64(v: f64) -> Self {
        bf16::from_f64(v)
    }
}
