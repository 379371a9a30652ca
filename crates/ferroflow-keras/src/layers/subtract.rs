//! `keras.layers.Subtract`.

use super::merge::{elementwise_merge_layer, fold_elementwise, masked_merge};
use super::LayerBase;

/// `keras.layers.Subtract()`: `inputs[0] - inputs[1]`; exactly two inputs (shapes as for
/// [`Add`](super::Add)), as Keras requires.
///
/// ```
/// use ferroflow_keras::layers::{Subtract, LayerHandle};
/// use ferroflow_core::Tensor;
/// let a = Tensor::from_vec(vec![5.0f32, 2.0], &[1, 2])?;
/// let b = Tensor::from_vec(vec![3.0f32, 4.0], &[1, 2])?;
/// let y = LayerHandle::new(Subtract::new()).call_many(&[a, b], false)?;
/// assert_eq!(y[0].to_vec::<f32>()?, vec![2.0, -2.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Subtract {
    base: LayerBase,
}

elementwise_merge_layer!(
    Subtract,
    "Subtract",
    2,
    Some(2),
    |name, inputs| { fold_elementwise(name, "Subtract", inputs, ferroflow_core::ops::sub) },
    |name, inputs, masks| {
        masked_merge(name, "Subtract", inputs, masks, ferroflow_core::ops::sub)
    }
);
