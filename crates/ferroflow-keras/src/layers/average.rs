//! `keras.layers.Average`.

use super::merge::{elementwise_merge_layer, fold_elementwise, masked_merge};
use super::LayerBase;

/// `keras.layers.Average()`: the elementwise mean of its inputs (at least one; shapes as for
/// [`Add`](super::Add)): their sum divided by how many there are.
///
/// ```
/// use ferroflow_keras::layers::{Average, LayerHandle};
/// use ferroflow_core::Tensor;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2])?;
/// let b = Tensor::from_vec(vec![3.0f32, 6.0], &[1, 2])?;
/// let y = LayerHandle::new(Average::new()).call_many(&[a, b], false)?;
/// assert_eq!(y[0].to_vec::<f32>()?, vec![2.0, 4.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Average {
    base: LayerBase,
}

elementwise_merge_layer!(
    Average,
    "Average",
    1,
    None,
    |name, inputs| {
        let sum = fold_elementwise(name, "Average", inputs, ferroflow_core::ops::add)?;
        ferroflow_core::ops::mul_scalar(&sum, 1.0 / inputs.len() as f64)
    },
    |name, inputs, masks| {
        let sum = masked_merge(name, "Average", inputs, masks, ferroflow_core::ops::add)?;
        ferroflow_core::ops::mul_scalar(&sum, 1.0 / inputs.len() as f64)
    }
);
