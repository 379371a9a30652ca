//! [`Variable`]: mutable, named state (weights), as TensorFlow's `tf.Variable`.

use std::sync::{Arc, RwLock};

use crate::autodiff::tape;
use crate::autodiff::Watchable;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::{self, GraphId};
use crate::op::TensorSpec;
use crate::ops;
use crate::tensor::{Tensor, TensorId};

struct VariableImpl {
    id: TensorId,
    name: String,
    trainable: bool,
    value: RwLock<Tensor>,
    /// Set for a variable created in graph mode: its value then lives in each `Session`, and
    /// `value` holds the initial value.
    graph: Option<GraphId>,
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
    ///
    /// Created while a [`Graph`](crate::Graph) is the default, it is a graph variable (TF 1's
    /// `tf.Variable`): `initial` may be symbolic, the variable joins the graph's
    /// `global_variables()`, and each `Session` holds its own value, set by running
    /// `graph::global_variables_initializer()`.
    pub fn with_trainable(initial: Tensor, name: &str, trainable: bool) -> Variable {
        let graph = graph::default_graph();
        if let Some(g) = graph.as_ref().filter(|g| g.lock().lifts_variables) {
            return graph::lift_variable(g, initial, name, trainable);
        }
        let v = Variable(Arc::new(VariableImpl {
            id: TensorId::new(),
            name: name.to_string(),
            trainable,
            value: RwLock::new(initial.contiguous()),
            graph: graph.as_ref().map(|g| g.id()),
        }));
        if let Some(g) = graph {
            g.register_variable(&v);
        }
        v
    }

    /// The graph this variable belongs to (`None` for an eager variable).
    pub fn graph(&self) -> Option<GraphId> {
        self.0.graph
    }

    /// Dtype and shape (partial when a graph variable's initial value has unknown dimensions).
    pub fn spec(&self) -> TensorSpec {
        TensorSpec::of(&self.current())
    }

    /// The initial value of a graph variable (the current value of an eager one).
    pub fn initial_value(&self) -> Tensor {
        self.current()
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
    ///
    /// In graph mode it is the graph's read node for this variable (one per graph, as TF 1's
    /// variable tensor).
    pub fn value(&self) -> Tensor {
        if let Some(g) = graph::default_graph() {
            let read = g.read_variable(self);
            tape::record_variable_read(self.0.id, self.0.trainable, &read, &read);
            return read;
        }
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
    ///
    /// While a graph is being built it records an assign node instead, collected in the graph's
    /// `update_ops()` (as TF 1's `UPDATE_OPS`).
    pub fn assign(&self, value: &Tensor) -> Result<()> {
        if graph::building() {
            return graph::record_update(self, value, graph::AssignKind::Set);
        }
        if self.0.graph.is_some() || value.is_symbolic() {
            return Err(Error::invalid(
                &format!("Variable '{}'.assign", self.0.name),
                "in graph mode a variable's value lives in a Session: use graph::assign(&var, value) and run the op it returns",
            ));
        }
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

    /// Updates eager variables of dtype `T` together, in place where possible: `f` gets each
    /// variable's elements (row-major) as an owned vector and what it leaves there becomes the
    /// variable's new value (same shape). When a variable's value is the only owner of its whole
    /// storage (no tensor read from it is still alive), that vector **is** the storage: no copy
    /// and no allocation, which is what optimizers want for weights and slots on every step.
    /// Otherwise it is a copy and readers of the old value keep seeing the old value. The
    /// variables stay write-locked while `f` runs, so nobody observes a half-done update.
    ///
    /// Errors (before anything changes) when a variable is a graph variable, does not hold `T`,
    /// or appears twice. `f` must keep each vector's length: a variable whose vector `f` resized
    /// is reset to zeros of its shape and an error is returned.
    ///
    /// ```
    /// use ferroflow_core::{Tensor, Variable};
    /// let w = Variable::new(Tensor::from_vec(vec![1.0f32, 2.0], &[2])?, "w");
    /// let m = Variable::new(Tensor::from_vec(vec![0.0f32, 0.0], &[2])?, "m");
    /// Variable::update_elements::<f32>(&[&w, &m], |vs| {
    ///     let (w, m) = vs.split_at_mut(1);
    ///     for (wi, mi) in w[0].iter_mut().zip(m[0].iter_mut()) {
    ///         *mi += 1.0;
    ///         *wi -= *mi;
    ///     }
    /// })?;
    /// assert_eq!(w.value().to_vec::<f32>()?, vec![0.0, 1.0]);
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn update_elements<T: crate::storage::StorageElement>(
        vars: &[&Variable],
        f: impl FnOnce(&mut [Vec<T>]),
    ) -> Result<()> {
        let name = "Variable::update_elements";
        for (i, v) in vars.iter().enumerate() {
            v.check_eager()?;
            if vars[..i].iter().any(|u| Arc::ptr_eq(&u.0, &v.0)) {
                return Err(Error::invalid(
                    name,
                    format!("variable '{}' given twice", v.0.name),
                ));
            }
        }
        let mut guards = Vec::with_capacity(vars.len());
        for v in vars {
            let g = match v.0.value.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if g.dtype() != T::DTYPE {
                return Err(Error::dtype(
                    name,
                    format!("variable '{}' does not hold {}", v.0.name, T::DTYPE),
                    &[g.dtype()],
                ));
            }
            guards.push(g);
        }
        let mut shapes = Vec::with_capacity(vars.len());
        let mut vecs = Vec::with_capacity(vars.len());
        for g in guards.iter_mut() {
            let shape = g.shape().to_vec();
            // The placeholder never escapes: the lock is held until the new value replaces it.
            let cur = std::mem::replace(&mut **g, Tensor::scalar(0u8));
            let v = match cur.try_into_storage() {
                Ok(s) => crate::with_storage!(s, v => {
                    let b: Box<dyn std::any::Any> = Box::new(v);
                    b.downcast::<Vec<T>>().map(|b| *b).ok()
                }),
                Err(t) => t.to_vec::<T>().ok(),
            };
            // The dtype was checked above, so both ways give the elements.
            let v = v.unwrap_or_default();
            shapes.push(shape);
            vecs.push(v);
        }
        f(&mut vecs);
        let mut bad = None;
        for ((g, v), shape) in guards.iter_mut().zip(vecs).zip(shapes) {
            let n = v.len();
            match Tensor::from_vec(v, &shape) {
                Ok(t) => **g = t,
                Err(_) => {
                    bad = Some((shape.clone(), n));
                    **g = Tensor::from_vec(vec![T::default(); shape.iter().product()], &shape)?;
                }
            }
        }
        match bad {
            None => Ok(()),
            Some((shape, n)) => Err(Error::shape(
                name,
                format!("the update left {n} elements for a variable of shape {shape:?} (zeroed)"),
                &[&shape],
            )),
        }
    }

    fn check_eager(&self) -> Result<()> {
        if self.0.graph.is_some() {
            return Err(Error::invalid(
                &format!("Variable '{}'.assign", self.0.name),
                "a graph variable's value lives in a Session: use graph::assign_add / assign_sub and run the op they return",
            ));
        }
        Ok(())
    }

    /// Sets the value of an eager variable from a session (no checks beyond the graph's).
    pub(crate) fn set_value_unchecked(&self, value: Tensor) {
        match self.0.value.write() {
            Ok(mut v) => *v = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }

    /// `self += delta`.
    pub fn assign_add(&self, delta: &Tensor) -> Result<()> {
        if graph::building() {
            return graph::record_update(self, delta, graph::AssignKind::Add);
        }
        self.check_eager()?;
        let v = ops::add(&self.current(), delta)?;
        self.assign(&v)
    }

    /// `self -= delta`.
    pub fn assign_sub(&self, delta: &Tensor) -> Result<()> {
        if graph::building() {
            return graph::record_update(self, delta, graph::AssignKind::Sub);
        }
        self.check_eager()?;
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
        if self.0.graph.is_some() {
            return write!(
                f,
                "<tf.Variable '{}:0' shape={} dtype={}_ref>",
                self.0.name,
                graph::fmt_dims(&v.dims()),
                v.dtype()
            );
        }
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
