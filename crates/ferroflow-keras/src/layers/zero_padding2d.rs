//! `keras.layers.ZeroPadding2D`.

use ferroflow_core::{ops, Result, Tensor};
use serde_json::{json, Value};

use super::conv_utils::{check_rank, Pads2};
use super::layer::{single_input, InputSpec, Layer, LayerBase};
use crate::backend::{batch_shape, Shape};

/// `keras.layers.ZeroPadding2D(padding=(1, 1))`: adds rows and columns of zeros around
/// channels-last images `[batch, rows, cols, channels]` (rank 4).
///
/// `padding` takes Keras's three forms: `2` (every side), `(h, w)` (`h` rows on top and bottom,
/// `w` columns left and right) or `((top, bottom), (left, right))`.
///
/// ```
/// use ferroflow_keras::layers::{ZeroPadding2D, LayerHandle};
/// use ferroflow_core::{DType, ops};
/// let pad = LayerHandle::new(ZeroPadding2D::new(((1, 0), (2, 3))));
/// let y = pad.call(&ops::ones(&[1, 4, 4, 2], DType::F32), false)?;
/// assert_eq!(y.shape(), &[1, 5, 9, 2]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct ZeroPadding2D {
    base: LayerBase,
    /// `[[top, bottom], [left, right]]`.
    pub padding: [[usize; 2]; 2],
}

impl ZeroPadding2D {
    /// `ZeroPadding2D(padding)`: `1`, `(h, w)` or `((top, bottom), (left, right))`.
    pub fn new(padding: impl Into<Pads2>) -> ZeroPadding2D {
        ZeroPadding2D {
            base: LayerBase::new("ZeroPadding2D"),
            padding: padding.into().0,
        }
    }
}

impl Default for ZeroPadding2D {
    /// Keras's default `padding=(1, 1)`.
    fn default() -> Self {
        ZeroPadding2D::new(1)
    }
}

impl Layer for ZeroPadding2D {
    fn class_name(&self) -> &str {
        "ZeroPadding2D"
    }

    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut LayerBase {
        &mut self.base
    }

    fn input_spec(&self) -> Option<InputSpec> {
        Some(InputSpec::ndim(4))
    }

    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        if let Some(s) = input_shapes.first() {
            check_rank(&self.base.name, "ZeroPadding2D", s, 4)?;
        }
        Ok(())
    }

    fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
        let x = single_input(&self.base.name, inputs)?;
        check_rank(&self.base.name, "ZeroPadding2D", &batch_shape(x.shape()), 4)?;
        let [h, w] = self.padding;
        let y = ops::pad(x, &[[0, 0], h, w, [0, 0]], ops::PadMode::Constant, 0.0)?;
        Ok(vec![y])
    }

    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let s = super::conv_utils::first_shape(&self.base.name, input_shapes)?;
        check_rank(&self.base.name, "ZeroPadding2D", s, 4)?;
        let [h, w] = self.padding;
        Ok(vec![vec![
            s[0],
            s[1].map(|d| d + h[0] + h[1]),
            s[2].map(|d| d + w[0] + w[1]),
            s[3],
        ]])
    }

    fn get_config(&self) -> Value {
        json!({
            "name": self.base.name,
            "trainable": self.base.trainable,
            "padding": self.padding,
        })
    }
}
