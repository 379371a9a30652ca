//! `Display` for tensors, exactly as TensorFlow's `str(tensor)`:
//! `tf.Tensor(<numpy str>, shape=(2, 2), dtype=float32)`, where the NumPy text (rendered by
//! [`crate::kernels::format`]) is put on its own line when it spans several lines:
//!
//! ```text
//! tf.Tensor(
//! [[1. 2.]
//!  [3. 4.]], shape=(2, 2), dtype=float32)
//! tf.Tensor([1 2 3], shape=(3,), dtype=int32)
//! tf.Tensor(3.0, shape=(), dtype=float32)
//! ```
//!
//! (TensorFlow's `_numpy_text` prefixes a newline when the text contains one.) Tensors with
//! more than 1000 elements are summarised with `...`, as NumPy does.

use crate::kernels::format::{format_shape, format_values, FmtValue};
use crate::storage::StorageElement;
use crate::tensor::Tensor;
use crate::with_storage;

fn numpy_text<T: StorageElement + Into<FmtValue>>(t: &Tensor) -> String {
    match t.data::<T>() {
        Ok(d) => format_values(t.shape(), &d),
        Err(_) => "<unprintable>".to_string(),
    }
}

/// The NumPy `str()` of the tensor's values (the part between `tf.Tensor(` and `, shape=`).
pub fn numpy_str(t: &Tensor) -> String {
    with_storage!(&**t.storage(), v => {
        fn typed<T: StorageElement + Into<FmtValue>>(_: &[T], t: &Tensor) -> String {
            numpy_text::<T>(t)
        }
        typed(v, t)
    })
}

impl std::fmt::Display for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(sym) = self.symbol() {
            // TF 1's `str()` of a graph tensor: Tensor("MatMul:0", shape=(None, 1), dtype=float32).
            return write!(
                f,
                "Tensor(\"{}\", shape={}, dtype={})",
                sym.name,
                crate::graph::fmt_dims(&sym.dims),
                self.dtype().name()
            );
        }
        let text = numpy_str(self);
        let sep = if text.contains('\n') { "\n" } else { "" };
        write!(
            f,
            "tf.Tensor({sep}{text}, shape={}, dtype={})",
            format_shape(self.shape()),
            self.dtype().name()
        )
    }
}
