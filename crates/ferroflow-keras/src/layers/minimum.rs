//! `keras.layers.Minimum`.

use super::merge::{elementwise_merge_layer, fold_elementwise, masked_merge};
use super::LayerBase;

/// `keras.layers.Minimum()`: the elementwise minimum of its inputs (at least one; shapes as
/// for [`Add`](super::Add)).
///
/// ```
/// use ferroflow_keras::layers::{Minimum, LayerHandle};
/// use ferroflow_core::Tensor;
/// let a = Tensor::from_vec(vec![1.0f32, 5.0], &[1, 2])?;
/// let b = Tensor::from_vec(vec![3.0f32, 4.0], &[1, 2])?;
/// let y = LayerHandle::new(Minimum::new()).call_many(&[a, b], false)?;
/// assert_eq!(y[0].to_vec::<f32>()?, vec![1.0, 4.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Minimum {
    base: LayerBase,
}

elementwise_merge_layer!(
    Minimum,
    "Minimum",
    1,
    None,
    |name, inputs| { fold_elementwise(name, "Minimum", inputs, ferroflow_core::ops::minimum) },
    |name, inputs, masks| {
        masked_merge(name, "Minimum", inputs, masks, ferroflow_core::ops::minimum)
    }
);
