//! `keras.layers.TimeDistributed`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, InputSpec, Layer, LayerBase, LayerHandle};
use crate::backend::Shape;

/// `keras.layers.TimeDistributed(layer)`: applies `layer` to every time step of a
/// `[batch, time, ...]` input — as Keras, by folding time into the batch
/// (`[batch·time, ...]`), calling the layer once, and unfolding its output. The wrapped layer's
/// weights are this layer's weights (one set shared by all steps). A mask passes through
/// unchanged.
///
/// ```
/// use ferroflow_keras::layers::{Dense, LayerHandle, TimeDistributed};
/// use ferroflow_core::{DType, ops};
/// let td = LayerHandle::new(TimeDistributed::new(Dense::new(3)));
/// let y = td.call(&ops::ones(&[2, 5, 4], DType::F32), false)?;
/// assert_eq!(y.shape(), &[2, 5, 3]);
/// assert_eq!(td.lock().count_params(), 4 * 3 + 3);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct TimeDistributed {
    base: LayerBase,
    layer: LayerHandle,
}

impl TimeDistributed {
    /// `TimeDistributed(layer)`.
    pub fn new(layer: impl Into<LayerHandle>) -> TimeDistributed {
        TimeDistributed {
            base: LayerBase::new("TimeDistributed"),
            layer: layer.into(),
        }
    }

    /// The wrapped layer.
    pub fn layer(&self) -> &LayerHandle {
        &self.layer
    }

    fn inner_shape(&self, shape: &Shape) -> Result<Shape> {
        if shape.len() < 3 {
            let name = &self.base.name;
            return Err(Error::shape(
                name,
                format!(
                    "layer {name:?}: `TimeDistributed` needs an input of rank >= 3 ([batch, time, ...]), got {}",
                    crate::backend::fmt_shape(shape)
                ),
                &[],
            ));
        }
        let mut s = vec![None];
        s.extend_from_slice(&shape[2..]);
        Ok(s)
    }
}

impl Layer for TimeDistributed {
    fn class_name(&self) -> &str {
        "TimeDistributed"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        Some(InputSpec::min_ndim(3))
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let first = super::pool_utils::first_shape(&self.base.name, input_shapes)?;
        let inner = self.inner_shape(first)?;
        self.layer.build(&[inner])?;
        self.base.weights = self.layer.lock().base().weights.clone();
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let s = x.shape().to_vec();
        if s.len() < 3 {
            self.inner_shape(&crate::backend::batch_shape(&s))?;
        }
        let mut folded: Vec<isize> = vec![(s[0] * s[1]) as isize];
        folded.extend(s[2..].iter().map(|&d| d as isize));
        let y = self.layer.call(&ops::reshape(x, &folded)?, training)?;
        let mut out: Vec<isize> = vec![s[0] as isize, s[1] as isize];
        out.extend(y.shape()[1..].iter().map(|&d| d as isize));
        Ok(vec![ops::reshape(&y, &out)?])
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let first = super::pool_utils::first_shape(&self.base.name, input_shapes)?.clone();
        let inner = self.inner_shape(&first)?;
        let out = self.layer.compute_output_shape(&[inner])?;
        let y = out
            .first()
            .ok_or_else(|| Error::invalid(&self.base.name, "the wrapped layer has no output"))?;
        let mut s = vec![first[0], first[1]];
        s.extend_from_slice(&y[1..]);
        Ok(vec![s])
    }

    fn get_config(&self) -> Value {
        let l = self.layer.lock();
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "layer": {"class_name": l.class_name(), "config": l.get_config()},
        })
    }
}
