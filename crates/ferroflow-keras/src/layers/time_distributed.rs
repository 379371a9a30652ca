//! `keras.layers.TimeDistributed`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, InputSpec, Layer, LayerBase, LayerHandle};
use crate::backend::Shape;

/// `keras.layers.TimeDistributed(layer)`: applies `layer` to every time step of a
/// `[batch, time, ...]` input — as Keras, by folding time into the batch
/// (`[batch·time, ...]`), calling the layer once, and unfolding its output. The wrapped layer's
/// weights are this layer's weights (one set shared by all steps). A mask passes through
/// unchanged (see [`Layer::call_with_mask`] for what the wrapped layer gets).
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

    /// Keras sets `supports_masking = True` on `TimeDistributed` (no `compute_mask` of its
    /// own): the input mask passes through unchanged.
    fn supports_masking(&self) -> bool {
        true
    }

    /// Keras's `TimeDistributed.call(inputs, mask)`: the mask must start with the input's
    /// `[batch, time]` (else an error naming the layer and both shapes, as Keras's check), and
    /// the wrapped layer gets each step's mask — here, with time folded into the batch, the
    /// mask folded the same way (`[batch·time, ...]`). A mask `[batch, time]` folds to one
    /// value per row, which no layer here uses (Keras passes it only to a layer whose `call`
    /// takes a mask), so it is passed on only when it has axes beyond time, e.g. the
    /// `[batch, time, steps]` mask of `Masking` on a `[batch, time, steps, features]` input
    /// that an inner RNN uses.
    fn call_with_mask(
        &mut self,
        inputs: &[Tensor],
        masks: &[Option<Tensor>],
        training: bool,
    ) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        let Some(Some(mask)) = masks.first() else {
            return self.call(inputs, training);
        };
        let name = &self.base.name;
        let (s, ms) = (x.shape(), mask.shape());
        if ms.len() < 2 || s.len() < 3 || ms.len() >= s.len() || ms[..2] != s[..2] {
            return Err(Error::shape(
                name,
                format!(
                    "layer {name:?}: the mask passed to `TimeDistributed` has shape {ms:?},                      incompatible with the input shape {s:?}: the mask's first two dimensions                      (batch size and timesteps) must match the input's"
                ),
                &[ms, s],
            ));
        }
        if ms.len() == 2 {
            return self.call(inputs, training);
        }
        let fold = |shape: &[usize]| -> Vec<isize> {
            let mut f = vec![(shape[0] * shape[1]) as isize];
            f.extend(shape[2..].iter().map(|&d| d as isize));
            f
        };
        let xf = ops::reshape(x, &fold(s))?;
        let mf = ops::reshape(mask, &fold(ms))?;
        let (ys, _) = self.layer.call_masked(&[xf], &[Some(mf)], training)?;
        let y = ys
            .first()
            .ok_or_else(|| Error::invalid(name, "the wrapped layer has no output"))?;
        let mut out: Vec<isize> = vec![s[0] as isize, s[1] as isize];
        out.extend(y.shape()[1..].iter().map(|&d| d as isize));
        Ok(vec![ops::reshape(y, &out)?])
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
