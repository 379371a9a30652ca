//! `keras.layers.Maximum`.

use super::merge::{elementwise_merge_layer, fold_elementwise, masked_merge};
use super::LayerBase;

/// `keras.layers.Maximum()`: the elementwise maximum of its inputs (at least one; shapes as
/// for [`Add`](super::Add)).
///
/// ```
/// use ferroflow_keras::layers::{Maximum, LayerHandle};
/// use ferroflow_core::Tensor;
/// let a = Tensor::from_vec(vec![1.0f32, 5.0], &[1, 2])?;
/// let b = Tensor::from_vec(vec![3.0f32, 4.0], &[1, 2])?;
/// let y = LayerHandle::new(Maximum::new()).call_many(&[a, b], false)?;
/// assert_eq!(y[0].to_vec::<f32>()?, vec![3.0, 5.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Maximum {
    base: LayerBase,
}

elementwise_merge_layer!(
    Maximum,
    "Maximum",
    1,
    None,
    |name, inputs| { fold_elementwise(name, "Maximum", inputs, ferroflow_core::ops::maximum) },
    |name, inputs, masks| {
        masked_merge(name, "Maximum", inputs, masks, ferroflow_core::ops::maximum)
    }
);
