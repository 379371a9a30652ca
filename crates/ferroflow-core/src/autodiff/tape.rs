//! TensorFlow 2's `GradientTape`.
//!
//! While a tape is alive (and recording), every op executed on the thread whose inputs the tape
//! watches is appended to the tape as an [`Entry`]: the op value (with its attributes), its input
//! tensors and its output tensors. The outputs become watched in turn. Reading a trainable
//! [`Variable`](crate::Variable) watches it automatically.
//!
//! [`GradientTape::gradient`] replays the entries in reverse order. Entries are appended in
//! execution order, which is a topological order, so when an entry is reached every consumer of
//! its outputs has already added its contribution. Each op's [`Op::grad`](crate::op::Op::grad)
//! is called with the accumulated output gradients and returns input gradients, which are summed
//! per tensor id. The gradient ops themselves go through [`execute`](crate::op::execute), so an
//! outer tape records them: nesting tapes gives second derivatives.
//!
//! Tapes are per thread, as in TensorFlow.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::op::{GradCtx, Op};
use crate::ops;
use crate::tensor::{Tensor, TensorId};

/// One recorded op application.
#[derive(Clone)]
struct Entry {
    op: Arc<dyn Op>,
    input_ids: Vec<TensorId>,
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
}

struct TapeState {
    watched: HashSet<TensorId>,
    entries: Vec<Entry>,
    recording: bool,
    persistent: bool,
    watch_accessed_variables: bool,
    used: bool,
}

type TapeRef = Rc<RefCell<TapeState>>;

thread_local! {
    static ACTIVE: RefCell<Vec<TapeRef>> = const { RefCell::new(Vec::new()) };
}

/// True when at least one tape is alive on this thread (a cheap check before recording).
pub fn any_recording() -> bool {
    ACTIVE.with(|a| !a.borrow().is_empty())
}

/// Hides every tape of this thread until dropped (a traced function's graph is built apart
/// from the tapes of its caller, as TF 2's `tf.function` does); tapes created meanwhile stay
/// active after it.
pub(crate) struct SuspendTapes {
    saved: Vec<TapeRef>,
}

impl SuspendTapes {
    pub(crate) fn new() -> SuspendTapes {
        SuspendTapes {
            saved: ACTIVE.with(|a| std::mem::take(&mut *a.borrow_mut())),
        }
    }
}

impl Drop for SuspendTapes {
    fn drop(&mut self) {
        let saved = std::mem::take(&mut self.saved);
        let _ = ACTIVE.try_with(|a| {
            if let Ok(mut a) = a.try_borrow_mut() {
                let inner = std::mem::take(&mut *a);
                *a = saved;
                a.extend(inner);
            }
        });
    }
}

/// Records `op(inputs) -> outputs` on every recording tape that watches one of the inputs.
pub fn record(op: Arc<dyn Op>, inputs: &[Tensor], outputs: &[Tensor]) {
    ACTIVE.with(|a| {
        for tape in a.borrow().iter() {
            let mut t = tape.borrow_mut();
            if !t.recording || !inputs.iter().any(|x| t.watched.contains(&x.id())) {
                continue;
            }
            for o in outputs.iter().filter(|o| o.dtype().is_float()) {
                t.watched.insert(o.id());
            }
            t.entries.push(Entry {
                op: op.clone(),
                input_ids: inputs.iter().map(Tensor::id).collect(),
                inputs: inputs.to_vec(),
                outputs: outputs.to_vec(),
            });
        }
    });
}

/// Records that `read` is a read of the variable `var_id` whose current value is `value`.
/// Trainable variables are watched automatically by tapes that watch accessed variables.
pub(crate) fn record_variable_read(
    var_id: TensorId,
    trainable: bool,
    value: &Tensor,
    read: &Tensor,
) {
    if !any_recording() || !read.dtype().is_float() {
        return;
    }
    ACTIVE.with(|a| {
        for tape in a.borrow().iter() {
            let mut t = tape.borrow_mut();
            if !t.recording {
                continue;
            }
            if trainable && t.watch_accessed_variables {
                t.watched.insert(var_id);
            }
            if t.watched.contains(&var_id) {
                t.watched.insert(read.id());
                t.entries.push(Entry {
                    op: Arc::new(ops::array::Identity),
                    input_ids: vec![var_id],
                    inputs: vec![value.clone()],
                    outputs: vec![read.clone()],
                });
            }
        }
    });
}

/// Something a tape can watch and differentiate with respect to: a [`Tensor`] or a
/// [`Variable`](crate::Variable).
pub trait Watchable {
    /// The id the tape tracks.
    fn watch_id(&self) -> TensorId;
}

impl Watchable for Tensor {
    fn watch_id(&self) -> TensorId {
        self.id()
    }
}

/// Records operations for automatic differentiation, like TensorFlow's `tf.GradientTape`.
///
/// The tape records from creation until it is dropped (Rust's scope replaces Python's `with`).
/// Trainable variables read while it records are watched automatically; other tensors need
/// [`watch`](GradientTape::watch).
///
/// ```
/// use ferroflow_core::{ops, GradientTape, Tensor};
/// let x = Tensor::scalar(3.0f32);
/// let tape = GradientTape::new();
/// tape.watch(&x);
/// let y = ops::mul(&x, &x)?;
/// let dy_dx = tape.gradient(&y, &[&x])?;
/// assert_eq!(dy_dx[0].as_ref().unwrap().item::<f32>()?, 6.0);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct GradientTape {
    state: TapeRef,
}

impl Default for GradientTape {
    fn default() -> Self {
        Self::new()
    }
}

impl GradientTape {
    /// A non-persistent tape that watches accessed trainable variables (TensorFlow's default).
    pub fn new() -> GradientTape {
        Self::with_options(false, true)
    }

    /// A persistent tape: `gradient` may be called several times.
    pub fn persistent() -> GradientTape {
        Self::with_options(true, true)
    }

    /// A tape with TensorFlow's two options.
    pub fn with_options(persistent: bool, watch_accessed_variables: bool) -> GradientTape {
        let state = Rc::new(RefCell::new(TapeState {
            watched: HashSet::new(),
            entries: Vec::new(),
            recording: true,
            persistent,
            watch_accessed_variables,
            used: false,
        }));
        ACTIVE.with(|a| a.borrow_mut().push(state.clone()));
        GradientTape { state }
    }

    /// Watches a tensor or variable so that gradients with respect to it can be taken.
    pub fn watch(&self, x: &dyn Watchable) {
        self.state.borrow_mut().watched.insert(x.watch_id());
    }

    /// Ids of everything watched (tensors, variables and recorded outputs).
    pub fn is_watched(&self, x: &dyn Watchable) -> bool {
        self.state.borrow().watched.contains(&x.watch_id())
    }

    /// Runs `f` without recording on this tape (`tape.stop_recording()` in TensorFlow).
    pub fn stop_recording<R>(&self, f: impl FnOnce() -> R) -> R {
        let was = std::mem::replace(&mut self.state.borrow_mut().recording, false);
        let r = f();
        self.state.borrow_mut().recording = was;
        r
    }

    /// Forgets everything recorded and watched.
    pub fn reset(&self) {
        let mut s = self.state.borrow_mut();
        s.entries.clear();
        s.watched.clear();
        s.used = false;
    }

    /// d(sum of `target`)/d(source) for each source; `None` for a source that `target` does not
    /// depend on (or that is not of a float dtype).
    pub fn gradient(
        &self,
        target: &Tensor,
        sources: &[&dyn Watchable],
    ) -> Result<Vec<Option<Tensor>>> {
        self.gradient_with(target, sources, None)
    }

    /// Like [`gradient`](GradientTape::gradient), with the gradient of `target` given
    /// (`output_gradients` in TensorFlow) instead of ones.
    pub fn gradient_with(
        &self,
        target: &Tensor,
        sources: &[&dyn Watchable],
        output_gradient: Option<&Tensor>,
    ) -> Result<Vec<Option<Tensor>>> {
        let (entries, watched) = {
            let mut s = self.state.borrow_mut();
            if s.used && !s.persistent {
                return Err(Error::Tape(
                    "a non-persistent GradientTape can only compute one set of gradients; \
                     use GradientTape::persistent() to call gradient() again"
                        .into(),
                ));
            }
            s.used = true;
            let entries = if s.persistent {
                s.entries.clone()
            } else {
                std::mem::take(&mut s.entries)
            };
            (entries, s.watched.clone())
        };
        let unknown = |t: &Tensor| {
            t.symbol()
                .is_some_and(|s| s.dims.iter().any(Option::is_none))
        };
        if entries
            .iter()
            .any(|e| e.inputs.iter().chain(&e.outputs).any(unknown))
        {
            return Err(Error::Tape(
                "in graph mode a GradientTape needs fully known shapes, and a recorded tensor has an \
                 unknown dimension; use graph::gradients, which builds the gradients for the fed shapes"
                    .into(),
            ));
        }
        let source_ids: HashSet<TensorId> = sources.iter().map(|s| s.watch_id()).collect();
        if !target.dtype().is_float() || !watched.contains(&target.id()) {
            return Ok(vec![None; sources.len()]);
        }
        self.stop_recording(|| {
            let seed = match output_gradient {
                Some(g) => {
                    if g.shape() != target.shape() {
                        return Err(Error::shape(
                            "GradientTape.gradient",
                            "output_gradients must have the target's shape",
                            &[g.shape(), target.shape()],
                        ));
                    }
                    g.clone()
                }
                None => ops::ones_like(target)?,
            };
            let mut grads: HashMap<TensorId, Tensor> = HashMap::new();
            grads.insert(target.id(), seed);
            for e in entries.iter().rev() {
                if !e.outputs.iter().any(|o| grads.contains_key(&o.id())) {
                    continue;
                }
                let mut out_grads = Vec::with_capacity(e.outputs.len());
                for o in &e.outputs {
                    let g = if source_ids.contains(&o.id()) {
                        grads.get(&o.id()).cloned()
                    } else {
                        grads.remove(&o.id())
                    };
                    out_grads.push(match g {
                        Some(g) => g,
                        None => ops::zeros_like(o)?,
                    });
                }
                // Only the inputs a watched tensor flows into take a gradient.
                let needed: Vec<bool> = e
                    .input_ids
                    .iter()
                    .zip(&e.inputs)
                    .map(|(id, x)| x.dtype().is_float() && watched.contains(id))
                    .collect();
                let ctx = GradCtx {
                    inputs: &e.inputs,
                    outputs: &e.outputs,
                    grads: &out_grads,
                    needed: &needed,
                };
                let in_grads = e.op.grad(&ctx)?;
                for (((id, x), g), &need) in
                    e.input_ids.iter().zip(&e.inputs).zip(in_grads).zip(&needed)
                {
                    let Some(g) = g else { continue };
                    if !need {
                        continue;
                    }
                    debug_assert_eq!(g.shape(), x.shape(), "{}: gradient shape", e.op.name());
                    let acc = match grads.remove(id) {
                        Some(prev) => ops::add(&prev, &g)?,
                        None => g,
                    };
                    grads.insert(*id, acc);
                }
            }
            Ok(sources
                .iter()
                .map(|s| grads.get(&s.watch_id()).cloned())
                .collect())
        })
    }
}

impl Drop for GradientTape {
    fn drop(&mut self) {
        // `try_with`: the thread-local may already be gone during thread teardown.
        let _ = ACTIVE.try_with(|a| {
            if let Ok(mut a) = a.try_borrow_mut() {
                a.retain(|t| !Rc::ptr_eq(t, &self.state));
            }
        });
    }
}
