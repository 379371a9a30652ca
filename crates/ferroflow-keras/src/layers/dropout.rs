//! `keras.layers.Dropout`.

use ferroflow_core::{ops, Error, Result, Tensor};
use serde_json::{json, Value};

use super::layer::{single_input, Layer, LayerBase};
use super::pool_utils::{known, shape_error};
use crate::backend::Shape;

/// `keras.layers.Dropout(rate, noise_shape=None, seed=None)`: inverted dropout, active only in
/// training (`fit`, or `call(x, true)`): each element is kept with probability `1 - rate` and
/// scaled by `1 / (1 - rate)`, the others become 0; at inference the layer is the identity —
/// Keras's behaviour (rate 0.5 gives values 0 or 2).
///
/// Every training call draws a fresh mask from a seed derived from the layer's seed and the
/// number of calls so far, so masks differ from step to step yet a run is reproducible: after
/// the same [`set_random_seed`](crate::utils::set_random_seed) (or with the same `.seed(..)`)
/// the sequence of masks is the same.
///
/// ```
/// use ferroflow_keras::layers::{Dropout, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let drop = LayerHandle::new(Dropout::new(0.5));
/// let x = ops::ones(&[4, 8], DType::F32);
/// assert_eq!(drop.call(&x, false)?.to_vec::<f32>()?, vec![1.0; 32]); // inference: identity
/// let y = drop.call(&x, true)?.to_vec::<f32>()?;
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct Dropout {
    base: LayerBase,
    /// The fraction of inputs to drop, in `[0, 1)`.
    pub rate: f64,
    /// The shape of the keep mask, batch dimension included; `None` entries take the input's
    /// dimension (Keras's `noise_shape=(None, 1, features)`).
    pub noise_shape: Option<Shape>,
    seed: Option<u64>,
}

impl Dropout {
    /// `Dropout(rate)`. A rate outside `[0, 1)` is reported when the layer is first used.
    pub fn new(rate: f64) -> Dropout {
        Dropout {
            base: LayerBase::new("Dropout"),
            rate,
            noise_shape: None,
            seed: None,
        }
    }

    /// The shape of the binary keep mask (batch dimension included, `None` = the input's
    /// dimension); a dimension of 1 shares one mask value along that axis.
    pub fn noise_shape(mut self, shape: &[Option<usize>]) -> Self {
        self.noise_shape = Some(shape.to_vec());
        self
    }

    /// A fixed seed for the layer's masks (instead of one drawn from the global seed). Calls
    /// still advance, so each training step gets its own mask.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self.base.seed = seed;
        self.base.calls = 0;
        self
    }

    fn check_rate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.rate) {
            let name = &self.base.name;
            return Err(Error::invalid(
                name,
                format!(
                    "layer {name:?}: invalid value received for argument `rate`, expected a float in [0, 1), got {}",
                    self.rate
                ),
            ));
        }
        Ok(())
    }

    /// The concrete mask shape for an input shape.
    fn mask_shape(&self, input: &[usize]) -> Result<Option<Vec<usize>>> {
        let Some(ns) = &self.noise_shape else {
            return Ok(None);
        };
        let name = &self.base.name;
        let bad = || {
            shape_error(
                name,
                format!(
                    "layer {name:?}: noise_shape must have the input's rank and each dimension 1, None or the input's"
                ),
                &[ns, &known(input)],
            )
        };
        if ns.len() != input.len() {
            return Err(bad());
        }
        ns.iter()
            .zip(input)
            .map(|(n, &d)| match n {
                None => Ok(d),
                Some(v) if *v == d || *v == 1 => Ok(*v),
                Some(_) => Err(bad()),
            })
            .collect::<Result<Vec<usize>>>()
            .map(Some)
    }
}

impl Layer for Dropout {
    fn class_name(&self) -> &str {
        "Dropout"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    /// Keras sets `supports_masking = True` on `Dropout`: the input mask passes through.
    fn supports_masking(&self) -> bool {
        true
    }

    fn build(&mut self, _input_shapes: &[Shape]) -> Result<()> {
        self.check_rate()
    }

    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        self.check_rate()?;
        if !training || self.rate == 0.0 {
            return Ok(vec![x.clone()]);
        }
        let mask_shape = self.mask_shape(x.shape())?;
        let seed = self.base.next_call_seed();
        Ok(vec![ops::dropout(
            x,
            self.rate,
            seed,
            mask_shape.as_deref(),
        )?])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![super::pool_utils::first_shape(
            &self.base.name,
            input_shapes,
        )?
        .clone()])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "rate": self.rate,
            "seed": self.seed,
            "noise_shape": self.noise_shape,
        })
    }
}
