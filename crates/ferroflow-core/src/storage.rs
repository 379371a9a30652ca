//! Owned, contiguous element buffers, one variant per dtype.

use crate::dtype::{DType, Element};
use half::{bf16, f16};

/// A flat buffer of elements. Tensors share storages through `Arc` and view them with a
/// [`Layout`](crate::layout::Layout).
#[derive(Clone, Debug, PartialEq)]
pub enum Storage {
    /// float32 data.
    F32(Vec<f32>),
    /// float64 data.
    F64(Vec<f64>),
    /// float16 data.
    F16(Vec<f16>),
    /// bfloat16 data.
    BF16(Vec<bf16>),
    /// int32 data.
    I32(Vec<i32>),
    /// int64 data.
    I64(Vec<i64>),
    /// uint8 data.
    U8(Vec<u8>),
    /// bool data.
    Bool(Vec<bool>),
}

/// Runs `$body` with `$v` bound to the typed `Vec` inside a `Storage` (or `&Storage`); the body is
/// expanded once per dtype, so it may be generic over the element type.
#[macro_export]
#[doc(hidden)]
macro_rules! with_storage {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            $crate::storage::Storage::F32($v) => $body,
            $crate::storage::Storage::F64($v) => $body,
            $crate::storage::Storage::F16($v) => $body,
            $crate::storage::Storage::BF16($v) => $body,
            $crate::storage::Storage::I32($v) => $body,
            $crate::storage::Storage::I64($v) => $body,
            $crate::storage::Storage::U8($v) => $body,
            $crate::storage::Storage::Bool($v) => $body,
        }
    };
}

impl Storage {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::F16(_) => DType::F16,
            Storage::BF16(_) => DType::BF16,
            Storage::I32(_) => DType::I32,
            Storage::I64(_) => DType::I64,
            Storage::U8(_) => DType::U8,
            Storage::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements in the buffer.
    pub fn len(&self) -> usize {
        with_storage!(self, v => v.len())
    }

    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A buffer of `n` zeros of `dtype`.
    pub fn zeros(dtype: DType, n: usize) -> Storage {
        match dtype {
            DType::F32 => Storage::F32(vec![0.0; n]),
            DType::F64 => Storage::F64(vec![0.0; n]),
            DType::F16 => Storage::F16(vec![f16::ZERO; n]),
            DType::BF16 => Storage::BF16(vec![bf16::ZERO; n]),
            DType::I32 => Storage::I32(vec![0; n]),
            DType::I64 => Storage::I64(vec![0; n]),
            DType::U8 => Storage::U8(vec![0; n]),
            DType::Bool => Storage::Bool(vec![false; n]),
        }
    }
}

/// Moves typed vectors in and out of [`Storage`].
pub trait StorageElement: Element {
    /// Wraps a vector.
    fn into_storage(v: Vec<Self>) -> Storage;
    /// Borrows the vector when the dtype matches.
    fn slice(s: &Storage) -> Option<&[Self]>;
}

macro_rules! storage_element {
    ($t:ty, $v:ident) => {
        impl StorageElement for $t {
            fn into_storage(v: Vec<Self>) -> Storage {
                Storage::$v(v)
            }
            fn slice(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$v(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
storage_element!(f32, F32);
storage_element!(f64, F64);
storage_element!(f16, F16);
storage_element!(bf16, BF16);
storage_element!(i32, I32);
storage_element!(i64, I64);
storage_element!(u8, U8);
storage_element!(bool, Bool);
