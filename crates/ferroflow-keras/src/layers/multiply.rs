//! `keras.layers.Multiply`.

use super::merge::{elementwise_merge_layer, fold_elementwise, masked_merge};
use super::LayerBase;

/// `keras.layers.Multiply()`: the elementwise product of its inputs (at least one; shapes as
/// for [`Add`](super::Add)).
///
/// ```
/// use ferroflow_keras::layers::{Multiply, LayerHandle};
/// use ferroflow_core::Tensor;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2])?;
/// let b = Tensor::from_vec(vec![3.0f32, 4.0], &[1, 2])?;
/// let y = LayerHandle::new(Multiply::new()).call_many(&[a, b], false)?;
/// assert_eq!(y[0].to_vec::<f32>()?, vec![3.0, 8.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Multiply {
    base: LayerBase,
}

elementwise_merge_layer!(
    Multiply,
    "Multiply",
    1,
    None,
    |name, inputs| { fold_elementwise(name, "Multiply", inputs, ferroflow_core::ops::mul) },
    |name, inputs, masks| {
        masked_merge(name, "Multiply", inputs, masks, ferroflow_core::ops::mul)
    }
);
