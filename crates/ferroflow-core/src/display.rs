//! `Display` for tensors, in TensorFlow's form: `tf.Tensor([[1. 2.] [3. 4.]], shape=(2, 2), dtype=float32)`.

use crate::tensor::Tensor;

impl std::fmt::Display for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Placeholder until the NumPy-style formatter lands.
        write!(
            f,
            "tf.Tensor({:?}, shape={}, dtype={})",
            self.to_f64_vec(),
            crate::error::fmt_shape(self.shape()),
            self.dtype()
        )
    }
}
