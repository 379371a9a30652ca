//! The `Layer` trait and the state every layer shares (`LayerBase`): Keras's layer lifecycle.
//!
//! A layer is created with its arguments, **built** on the first input shape it sees (this is
//! where it creates its weights), then **called** on tensors with a `training` flag. Its weights
//! are [`Variable`]s; the layer's `trainable` flag decides whether a model trains them.

use std::sync::{Arc, Mutex, MutexGuard};

use ferroflow_core::{ops, DType, Error, Result, Tensor, Variable};
use serde_json::Value;

use super::input::{KerasTensor, SymbolicInputs};
use crate::backend::{fmt_shape, to_snake_case, unique_name, Shape};
use crate::initializers::Initializer;
use crate::regularizers::Regularizer;

/// One weight of a layer.
#[derive(Clone, Debug)]
pub struct Weight {
    /// The variable (named `layer/weight`, e.g. `dense/kernel`).
    pub variable: Variable,
    /// Whether training updates it (`False` for BatchNormalization's moving statistics).
    pub trainable: bool,
    /// Its penalty, added to the training loss.
    pub regularizer: Option<Regularizer>,
}

/// What a built layer accepts (Keras's `InputSpec`): a rank, a minimum rank, and sizes of
/// particular axes (`{-1: 784}` for a `Dense` built on 784 features). Checked on every call,
/// eager or symbolic; a layer without a spec accepts any input its ops accept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputSpec {
    /// The exact rank, if fixed.
    pub ndim: Option<usize>,
    /// The minimum rank, if any.
    pub min_ndim: Option<usize>,
    /// `(axis, size)` pairs; negative axes count from the end.
    pub axes: Vec<(isize, usize)>,
}

impl InputSpec {
    /// A spec fixing the rank.
    pub fn ndim(ndim: usize) -> InputSpec {
        InputSpec {
            ndim: Some(ndim),
            ..InputSpec::default()
        }
    }

    /// A spec with a minimum rank.
    pub fn min_ndim(min_ndim: usize) -> InputSpec {
        InputSpec {
            min_ndim: Some(min_ndim),
            ..InputSpec::default()
        }
    }

    /// Also requires `axis` to have `size` (when that size is known).
    pub fn axis(mut self, axis: isize, size: Option<usize>) -> InputSpec {
        if let Some(size) = size {
            self.axes.push((axis, size));
        }
        self
    }

    /// Checks a (possibly symbolic) input shape; the error names the layer and both shapes, as
    /// Keras's "Input 0 of layer ... is incompatible with the layer".
    pub fn check(&self, layer: &str, index: usize, shape: &[Option<usize>]) -> Result<()> {
        let fail = |what: String| -> Error {
            let found = fmt_shape(shape);
            Error::Shape {
                op: layer.to_string(),
                msg: format!(
                    "input {index} of layer {layer:?} is incompatible with the layer: {what}, but it received input with shape {found}"
                ),
                shapes: vec![found],
            }
        };
        let rank = shape.len();
        if let Some(n) = self.ndim {
            if rank != n {
                return Err(fail(format!("expected ndim={n}, found ndim={rank}")));
            }
        }
        if let Some(n) = self.min_ndim {
            if rank < n {
                return Err(fail(format!("expected min_ndim={n}, found ndim={rank}")));
            }
        }
        for &(axis, size) in &self.axes {
            let a = if axis < 0 { rank as isize + axis } else { axis };
            if a < 0 || a as usize >= rank {
                return Err(fail(format!("expected an axis {axis}")));
            }
            if let Some(d) = shape[a as usize] {
                if d != size {
                    return Err(fail(format!(
                        "expected axis {axis} of the input shape to have value {size}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The size of `axis` of the first shape the layer was built with, if known.
pub fn built_dim(base: &LayerBase, axis: isize) -> Option<usize> {
    let shape = base.build_shapes.as_ref()?.first()?;
    let a = if axis < 0 {
        shape.len() as isize + axis
    } else {
        axis
    };
    if a < 0 {
        return None;
    }
    shape.get(a as usize).copied().flatten()
}

/// The state every layer carries: Keras's `name`, `trainable`, `built`, its weights and a
/// declared input shape.
#[derive(Clone, Debug)]
pub struct LayerBase {
    /// The unique name (`dense`, `dense_1`, ...).
    pub name: String,
    /// When false, the layer's weights are not trained (and count as non-trainable).
    pub trainable: bool,
    /// Set once `build` has run.
    pub built: bool,
    /// The input shape without the batch dimension, when given (`input_shape=(28, 28, 1)`).
    pub input_shape: Option<Vec<usize>>,
    /// The shapes `build` ran with (batch dimension `None`).
    pub build_shapes: Option<Vec<Shape>>,
    /// The weights, in creation order (Keras's `layer.weights` order).
    pub weights: Vec<Weight>,
    /// Base seed for layers that draw random numbers (dropout, noise); calls advance `calls`.
    pub seed: u64,
    /// How many seeded training calls have run.
    pub calls: u64,
    /// How many times the layer was applied to symbolic tensors (Keras's inbound nodes).
    pub nodes: usize,
}

impl LayerBase {
    /// A base with a unique auto-name derived from the class name (`Conv2D` → `conv2d`,
    /// `conv2d_1`, ...).
    pub fn new(class_name: &str) -> LayerBase {
        LayerBase {
            name: unique_name(&to_snake_case(class_name)),
            trainable: true,
            built: false,
            input_shape: None,
            build_shapes: None,
            weights: Vec::new(),
            seed: crate::backend::next_seed(),
            calls: 0,
            nodes: 0,
        }
    }

    /// Keras's `add_weight`: creates a float32 variable named `{layer}/{name}` from `initializer`.
    pub fn add_weight(
        &mut self,
        name: &str,
        shape: &[usize],
        initializer: &Initializer,
        regularizer: Option<Regularizer>,
        trainable: bool,
    ) -> Result<Variable> {
        let value = initializer.init(shape, DType::F32)?;
        let variable =
            Variable::with_trainable(value, &format!("{}/{}", self.name, name), trainable);
        self.weights.push(Weight {
            variable: variable.clone(),
            trainable,
            regularizer,
        });
        Ok(variable)
    }

    /// A fresh seed for one training call of a random layer: a function of the layer's seed and
    /// how many calls ran before, so training is reproducible.
    pub fn next_call_seed(&mut self) -> u64 {
        self.calls += 1;
        // Under a distribution strategy each rank draws its own masks (distribute/mod.rs).
        crate::distribute::mix_rank(crate::backend::mix(
            self.seed ^ crate::backend::mix(self.calls),
        ))
    }
}

/// A Keras layer. Implement `class_name`, `base`/`base_mut`, `call`, and `build` if the layer
/// has weights; everything else has Keras's default behaviour.
///
/// A custom layer in a user's crate:
///
/// ```
/// use ferroflow_core::{ops, Result, Tensor};
/// use ferroflow_keras::layers::{Layer, LayerBase};
/// use ferroflow_keras::backend::Shape;
/// use ferroflow_keras::initializers::Initializer;
///
/// /// y = x·w (no bias), like Keras's guide's `Linear` layer.
/// struct Linear { base: LayerBase, units: usize }
///
/// impl Linear {
///     fn new(units: usize) -> Linear { Linear { base: LayerBase::new("Linear"), units } }
/// }
///
/// impl Layer for Linear {
///     fn class_name(&self) -> &str { "Linear" }
///     fn base(&self) -> &LayerBase { &self.base }
///     fn base_mut(&mut self) -> &mut LayerBase { &mut self.base }
///     fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
///         let last = input_shapes[0].last().copied().flatten().unwrap_or(1);
///         self.base.add_weight("w", &[last, self.units], &Initializer::glorot_uniform(), None, true)?;
///         Ok(())
///     }
///     fn call(&mut self, inputs: &[Tensor], _training: bool) -> Result<Vec<Tensor>> {
///         Ok(vec![ops::matmul(&inputs[0], &self.base.weights[0].variable.value(), false, false)?])
///     }
/// }
///
/// let mut layer = Linear::new(4);
/// let x = ops::ones(&[2, 3], ferroflow_core::DType::F32);
/// let y = ferroflow_keras::layers::LayerHandle::new(layer).call(&x, false)?;
/// assert_eq!(y.shape(), &[2, 4]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub trait Layer: Send + 'static {
    /// The Keras class name (`"Dense"`), shown by `summary()`.
    fn class_name(&self) -> &str;

    /// The shared layer state.
    fn base(&self) -> &LayerBase;

    /// The shared layer state, mutably.
    fn base_mut(&mut self) -> &mut LayerBase;

    /// Creates the layer's weights for these input shapes (batch dimension `None`). Called once,
    /// before the first `call`. Layers without weights keep the default.
    fn build(&mut self, input_shapes: &[Shape]) -> Result<()> {
        let _ = input_shapes;
        Ok(())
    }

    /// The forward pass. `training` is true inside `fit` (dropout active, batch statistics).
    fn call(&mut self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>>;

    /// Keras's `supports_masking`: whether the layer passes an input mask on unchanged (the
    /// default `compute_mask`). False by default, as in Keras's base `Layer`: a layer that does
    /// not support masking drops the mask, and layers after it see none.
    ///
    /// **Masks** (Keras's `_keras_mask`): a boolean tensor `[batch, time]` (true = a real step)
    /// that travels with a tensor through `Sequential` and functional models. Each layer call
    /// receives its inputs' masks in [`call_with_mask`](Layer::call_with_mask) and produces the
    /// mask of its first output with [`compute_mask`](Layer::compute_mask).
    fn supports_masking(&self) -> bool {
        false
    }

    /// Keras's `compute_mask(inputs, previous_mask)`: the mask of the layer's first output (other
    /// outputs carry none), given its inputs and their masks (one entry per input). The default
    /// returns the first input's mask when [`supports_masking`](Layer::supports_masking), else
    /// `None`. `Embedding(mask_zero=True)` and `Masking` make a mask from values; recurrent
    /// layers keep it only with `return_sequences`.
    fn compute_mask(&self, inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let _ = inputs;
        if self.supports_masking() {
            Ok(masks.first().cloned().flatten())
        } else {
            Ok(None)
        }
    }

    /// The forward pass with the inputs' masks (one entry per input, `None` = unmasked), Keras's
    /// `call(inputs, mask=...)`. The default ignores the masks and runs [`call`](Layer::call);
    /// layers that use masks (RNNs) override it.
    fn call_with_mask(
        &mut self,
        inputs: &[Tensor],
        masks: &[Option<Tensor>],
        training: bool,
    ) -> Result<Vec<Tensor>> {
        let _ = masks;
        self.call(inputs, training)
    }

    /// The output shapes for these input shapes (batch dimension `None`). The default runs `call`
    /// on zeros (unknown dimensions set to 1, then to 2; a dimension that follows them is
    /// unknown in the output), which is right for any layer whose shapes do not depend on values.
    fn compute_output_shape(&mut self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        probe_output_shapes(self, input_shapes)
    }

    /// What the built layer accepts (Keras's `input_spec`); `None` accepts anything. Checked
    /// against the first input on every call.
    fn input_spec(&self) -> Option<InputSpec> {
        None
    }

    /// Keras's `get_config()`: the layer's arguments as JSON (used by saving).
    fn get_config(&self) -> Value {
        serde_json::json!({ "name": self.base().name, "trainable": self.base().trainable })
    }

    /// Applies the layer to symbolic tensors (the functional API's `layer(x)`), consuming it;
    /// wrap it in a [`LayerHandle`] first to apply one layer several times (shared layers).
    fn apply(self, inputs: impl SymbolicInputs) -> Result<KerasTensor>
    where
        Self: Sized,
    {
        LayerHandle::new(self).apply(inputs)
    }

    /// The layer's name.
    fn name(&self) -> &str {
        &self.base().name
    }

    /// Names the layer (Keras's `name=` argument) instead of its auto-name.
    fn named(mut self, name: &str) -> Self
    where
        Self: Sized,
    {
        self.base_mut().name = name.to_string();
        self
    }

    /// Declares the input shape without the batch dimension (Keras's `input_shape=` on the first
    /// layer of a `Sequential`).
    fn input_shape(mut self, shape: &[usize]) -> Self
    where
        Self: Sized,
    {
        self.base_mut().input_shape = Some(shape.to_vec());
        self
    }

    /// Sets the `trainable` flag (a frozen layer's weights are not trained).
    fn trainable(mut self, trainable: bool) -> Self
    where
        Self: Sized,
    {
        self.base_mut().trainable = trainable;
        self
    }

    /// All weights, trainable first within each creation order as Keras lists `layer.weights`.
    fn weights(&self) -> Vec<Variable> {
        self.base()
            .weights
            .iter()
            .map(|w| w.variable.clone())
            .collect()
    }

    /// Weights that training updates (none when the layer is frozen).
    fn trainable_weights(&self) -> Vec<Variable> {
        if !self.base().trainable {
            return Vec::new();
        }
        self.base()
            .weights
            .iter()
            .filter(|w| w.trainable)
            .map(|w| w.variable.clone())
            .collect()
    }

    /// Weights that training does not update.
    fn non_trainable_weights(&self) -> Vec<Variable> {
        let trainable = self.base().trainable;
        self.base()
            .weights
            .iter()
            .filter(|w| !(trainable && w.trainable))
            .map(|w| w.variable.clone())
            .collect()
    }

    /// The weights' current values, in `weights()` order.
    fn get_weights(&self) -> Vec<Tensor> {
        self.weights().iter().map(|v| v.value()).collect()
    }

    /// Sets every weight, in `weights()` order; shapes must match exactly.
    fn set_weights(&mut self, values: &[Tensor]) -> Result<()> {
        let weights = self.weights();
        if values.len() != weights.len() {
            return Err(Error::invalid(
                self.name(),
                format!(
                    "set_weights: layer {:?} expects {} weights, got {}",
                    self.name(),
                    weights.len(),
                    values.len()
                ),
            ));
        }
        for (w, v) in weights.iter().zip(values) {
            if w.shape() != v.shape() {
                return Err(Error::shape(
                    self.name(),
                    format!("set_weights: weight {:?} has another shape", w.name()),
                    &[&w.shape(), v.shape()],
                ));
            }
            w.assign(&ops::cast(v, w.dtype())?)?;
        }
        Ok(())
    }

    /// The number of scalars in all weights.
    fn count_params(&self) -> usize {
        self.base()
            .weights
            .iter()
            .map(|w| w.variable.shape().iter().product::<usize>())
            .sum()
    }

    /// Regularization penalties of the weights (Keras's `layer.losses`).
    fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        self.base()
            .weights
            .iter()
            .filter_map(|w| {
                w.regularizer
                    .as_ref()
                    .map(|r| r.penalty(&w.variable.value()))
            })
            .collect()
    }
}

/// The default `compute_output_shape`: run the layer on zeros.
pub(crate) fn probe_output_shapes<L: Layer + ?Sized>(
    layer: &mut L,
    input_shapes: &[Shape],
) -> Result<Vec<Shape>> {
    let concrete = |fill: usize| -> Vec<Tensor> {
        input_shapes
            .iter()
            .map(|s| {
                let dims: Vec<usize> = s.iter().map(|d| d.unwrap_or(fill)).collect();
                ops::zeros(&dims, DType::F32)
            })
            .collect()
    };
    let a = layer.call(&concrete(1), false)?;
    let unknown = input_shapes.iter().any(|s| s.iter().any(|d| d.is_none()));
    if !unknown {
        return Ok(a
            .iter()
            .map(|t| t.shape().iter().map(|&d| Some(d)).collect())
            .collect());
    }
    let b = layer.call(&concrete(2), false)?;
    Ok(a.iter()
        .zip(&b)
        .map(|(x, y)| {
            if x.rank() != y.rank() {
                return vec![None; x.rank()];
            }
            x.shape()
                .iter()
                .zip(y.shape())
                .map(|(&p, &q)| if p == q { Some(p) } else { None })
                .collect()
        })
        .collect())
}

/// The single input of a one-input layer, or an error naming the layer.
pub fn single_input<'a>(layer: &str, inputs: &'a [Tensor]) -> Result<&'a Tensor> {
    match inputs {
        [x] => Ok(x),
        _ => Err(Error::invalid(
            layer,
            format!(
                "layer {layer:?} expects exactly one input, got {}",
                inputs.len()
            ),
        )),
    }
}

/// Checks a built layer's first input against its [`InputSpec`] (Keras checks each layer's own
/// spec, not the shape it was first built with, so a layer without weights can be reused on
/// other shapes).
pub fn check_input_shapes(layer: &dyn Layer, inputs: &[Tensor]) -> Result<()> {
    if let (Some(spec), Some(x)) = (layer.input_spec(), inputs.first()) {
        let shape: Vec<Option<usize>> = x.shape().iter().map(|&d| Some(d)).collect();
        spec.check(layer.name(), 0, &shape)?;
    }
    Ok(())
}

/// A shared, callable handle on a layer: what models hold, and what the functional API calls on
/// symbolic tensors. Cloning it shares the layer (Keras's shared layers).
#[derive(Clone)]
pub struct LayerHandle(Arc<Mutex<Box<dyn Layer>>>);

impl LayerHandle {
    /// Wraps a layer.
    pub fn new(layer: impl Layer) -> LayerHandle {
        LayerHandle(Arc::new(Mutex::new(Box::new(layer))))
    }

    /// Wraps a boxed layer.
    pub fn from_box(layer: Box<dyn Layer>) -> LayerHandle {
        LayerHandle(Arc::new(Mutex::new(layer)))
    }

    /// Locks the layer for direct access.
    pub fn lock(&self) -> MutexGuard<'_, Box<dyn Layer>> {
        // A panic inside a layer poisons the mutex; the layer's state is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether two handles are the same layer.
    pub fn same(&self, other: &LayerHandle) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The index of the next symbolic call of this layer.
    pub(crate) fn next_node_index(&self) -> usize {
        let mut l = self.lock();
        let b = l.base_mut();
        b.nodes += 1;
        b.nodes - 1
    }

    /// The layer's name.
    pub fn name(&self) -> String {
        self.lock().name().to_string()
    }

    /// The layer's class name.
    pub fn class_name(&self) -> String {
        self.lock().class_name().to_string()
    }

    /// Builds the layer for these shapes if it is not built yet.
    pub fn build(&self, input_shapes: &[Shape]) -> Result<()> {
        let mut layer = self.lock();
        ensure_built(layer.as_mut(), input_shapes)
    }

    /// Calls the layer on one tensor (building it on the first call).
    pub fn call(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let mut out = self.call_many(std::slice::from_ref(x), training)?;
        if out.len() != 1 {
            return Err(Error::invalid(
                &self.name(),
                format!(
                    "layer returned {} outputs where one was expected",
                    out.len()
                ),
            ));
        }
        Ok(out.remove(0))
    }

    /// Calls the layer on several tensors (merge layers), building it on the first call.
    pub fn call_many(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        let mut layer = self.lock();
        let shapes: Vec<Shape> = inputs
            .iter()
            .map(|t| crate::backend::batch_shape(t.shape()))
            .collect();
        ensure_built(layer.as_mut(), &shapes)?;
        check_input_shapes(layer.as_ref(), inputs)?;
        layer.call(inputs, training)
    }

    /// Calls the layer with its inputs' masks (Keras's mask propagation): returns the outputs
    /// and the mask of the first output (see [`Layer::compute_mask`]). `masks` may be shorter
    /// than `inputs` (missing entries are `None`).
    pub fn call_masked(
        &self,
        inputs: &[Tensor],
        masks: &[Option<Tensor>],
        training: bool,
    ) -> Result<(Vec<Tensor>, Option<Tensor>)> {
        let mut layer = self.lock();
        let shapes: Vec<Shape> = inputs
            .iter()
            .map(|t| crate::backend::batch_shape(t.shape()))
            .collect();
        ensure_built(layer.as_mut(), &shapes)?;
        check_input_shapes(layer.as_ref(), inputs)?;
        let mut masks = masks.to_vec();
        masks.resize(inputs.len(), None);
        let out = if masks.iter().any(Option::is_some) {
            layer.call_with_mask(inputs, &masks, training)?
        } else {
            layer.call(inputs, training)?
        };
        let mask = layer.compute_mask(inputs, &masks)?;
        Ok((out, mask))
    }

    /// The output shapes for these input shapes (building the layer if needed).
    pub fn compute_output_shape(&self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        let mut layer = self.lock();
        ensure_built(layer.as_mut(), input_shapes)?;
        if let (Some(spec), Some(first)) = (layer.input_spec(), input_shapes.first()) {
            spec.check(layer.name(), 0, first)?;
        }
        layer.compute_output_shape(input_shapes)
    }
}

impl std::fmt::Debug for LayerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = self.lock();
        write!(f, "<{} name={}>", l.class_name(), l.name())
    }
}

impl<L: Layer> From<L> for LayerHandle {
    fn from(layer: L) -> Self {
        LayerHandle::new(layer)
    }
}

/// Runs `build` once, remembering the shapes for later input checks.
pub(crate) fn ensure_built(layer: &mut dyn Layer, input_shapes: &[Shape]) -> Result<()> {
    if layer.base().built {
        return Ok(());
    }
    layer.build(input_shapes)?;
    let base = layer.base_mut();
    base.built = true;
    base.build_shapes = Some(input_shapes.to_vec());
    Ok(())
}
