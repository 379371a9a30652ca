//! [`Variable`]: mutable, named state (weights), as TensorFlow's `tf.Variable`.

use std::sync::{Arc, RwLock};

use crate::autodiff::tape;
use crate::autodiff::Watchable;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::{Tensor, TensorId};

struct VariableImpl {
    id: TensorId,
    name: String,
    trainable: bool,
    value: RwLock<Tensor>,
}

/// A mutable tensor with a name and a `trainable` flag. Clones share the same variable.
///
/// Reading it with [`value`](Variable::value) inside a [`GradientTape`](crate::GradientTape)
/// records the read, so gradients flow to the variable.
///
/// ```
/// use ferroflow_core::{ops, Tensor, Variable};
/// let v = Variable::new(Tensor::from_vec(vec![1.0f32, 2.0], &[2])?, "w");
/// v.assign_sub(&Tensor::from_vec(vec![0.5f32, 0.5], &[2])?)?;
/// assert_eq!(v.value().to_vec::<f32>()?, vec![0.5, 1.5]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Variable(Arc<VariableImpl>);

impl Variable {
    /// A trainable variable holding `initial`.
    pub fn new(initial: Tensor, name: &str) -> Variable {
        Self::with_trainable(initial, name, true)
    }

    /// A variable with an explicit `trainable` flag.
    pub fn with_trainable(initial: Tensor, name: &str, trainable: bool) -> Variable {
        Variable(Arc::new(VariableImpl {
            id: TensorId::new(),
            name: name.to_string(),
            trainable,
            value: RwLock::new(initial.contiguous()),
        }))
    }

    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether optimizers and tapes treat it as a weight to train.
    pub fn trainable(&self) -> bool {
        self.0.trainable
    }

    /// The id tapes use for this variable.
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    fn current(&self) -> Tensor {
        match self.0.value.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the current value (recorded on active tapes, like `read_value()`).
    pub fn value(&self) -> Tensor {
        let v = self.current();
        let read = v.with_new_id();
        tape::record_variable_read(self.0.id, self.0.trainable, &v, &read);
        read
    }

    /// The shape.
    pub fn shape(&self) -> Vec<usize> {
        self.current().shape().to_vec()
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.current().dtype()
    }

    /// Replaces the value; the new value must have the same shape and dtype.
    pub fn assign(&self, value: &Tensor) -> Result<()> {
        let cur = self.current();
        if value.shape() != cur.shape() {
            return Err(Error::shape(
                &format!("Variable '{}'.assign", self.0.name),
                "the new value must have the variable's shape",
                &[cur.shape(), value.shape()],
            ));
        }
        if value.dtype() != cur.dtype() {
            return Err(Error::dtype(
                &format!("Variable '{}'.assign", self.0.name),
                format!("the new value must be {}", cur.dtype()),
                &[value.dtype()],
            ));
        }
        let new = value.contiguous().with_new_id();
        match self.0.value.write() {
            Ok(mut v) => *v = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        Ok(())
    }

    /// `self += delta`.
    pub fn assign_add(&self, delta: &Tensor) -> Result<()> {
        let v = ops::add(&self.current(), delta)?;
        self.assign(&v)
    }

    /// `self -= delta`.
    pub fn assign_sub(&self, delta: &Tensor) -> Result<()> {
        let v = ops::sub(&self.current(), delta)?;
        self.assign(&v)
    }
}

impl Watchable for Variable {
    fn watch_id(&self) -> TensorId {
        self.0.id
    }
}

impl std::fmt::Debug for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.current();
        write!(
            f,
            "<tf.Variable '{}:0' shape={} dtype={}, numpy={:?}>",
            self.0.name,
            crate::error::fmt_shape(v.shape()),
            v.dtype(),
            v.to_f64_vec()
        )
    }
}
