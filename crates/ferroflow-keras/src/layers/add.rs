//! `keras.layers.Add`.

use super::merge::{elementwise_merge_layer, fold_elementwise, masked_merge};
use super::LayerBase;

/// `keras.layers.Add()`: the elementwise sum of its inputs (at least one; shapes equal except
/// for the batch axis, or broadcastable by Keras's merge rule: right-aligned, size 1 broadcasts).
///
/// ```
/// use ferroflow_keras::layers::{Add, LayerHandle};
/// use ferroflow_core::Tensor;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2])?;
/// let b = Tensor::from_vec(vec![10.0f32, 20.0], &[1, 2])?;
/// let y = LayerHandle::new(Add::new()).call_many(&[a, b], false)?;
/// assert_eq!(y[0].to_vec::<f32>()?, vec![11.0, 22.0]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Add {
    base: LayerBase,
}

elementwise_merge_layer!(
    Add,
    "Add",
    1,
    None,
    |name, inputs| { fold_elementwise(name, "Add", inputs, ferroflow_core::ops::add) },
    |name, inputs, masks| { masked_merge(name, "Add", inputs, masks, ferroflow_core::ops::add) }
);
