//! What `fit`, `evaluate` and `predict` accept as inputs and targets.

use ferroflow_core::Tensor;

/// One tensor or several (a model with several inputs or outputs takes one per input/output,
/// in order).
pub trait IntoTensors {
    /// The tensors.
    fn into_tensors(self) -> Vec<Tensor>;
}

impl IntoTensors for Tensor {
    fn into_tensors(self) -> Vec<Tensor> {
        vec![self]
    }
}

impl IntoTensors for &Tensor {
    fn into_tensors(self) -> Vec<Tensor> {
        vec![self.clone()]
    }
}

impl IntoTensors for Vec<Tensor> {
    fn into_tensors(self) -> Vec<Tensor> {
        self
    }
}

impl IntoTensors for &Vec<Tensor> {
    fn into_tensors(self) -> Vec<Tensor> {
        self.clone()
    }
}

impl IntoTensors for &[Tensor] {
    fn into_tensors(self) -> Vec<Tensor> {
        self.to_vec()
    }
}

impl<const N: usize> IntoTensors for [Tensor; N] {
    fn into_tensors(self) -> Vec<Tensor> {
        self.to_vec()
    }
}

impl<const N: usize> IntoTensors for [&Tensor; N] {
    fn into_tensors(self) -> Vec<Tensor> {
        self.iter().map(|t| (*t).clone()).collect()
    }
}
