//! The optimizer update as a node of the traced train step (Keras 3 traces
//! `optimizer.apply_gradients` into the train function; TensorFlow runs `ResourceApplyAdam`-style
//! ops there).
//!
//! [`ApplyOptimizer`] is a stateful graph op whose inputs are the step's results (so it runs
//! after everything the step computes) followed by the gradients. When the session runs it, it
//! averages the gradients over the ranks of a distribution strategy
//! ([`distribute::reduce_gradients`](crate::distribute)), then calls the model's own optimizer's
//! [`apply_gradients`](crate::optimizers::Optimizer::apply_gradients) — clipping, weight decay
//! and each optimizer's fused host kernel (`optimizers/kernel.rs`) on the captured variables and
//! their slots. The step-dependent scalars (the learning rate of a schedule or set by a
//! callback, the bias corrections, `iterations`) are read from the optimizer at run time, so
//! changing them needs no retrace, and the update is the eager step's, bit for bit. The
//! gradients never leave the graph.
//!
//! The optimizer itself lives in the model's [`Compiled`](super::Compiled); for the duration of
//! a traced train step's run it is lent to the graph through a [`Lender`] and handed back after.

use std::sync::{Arc, Mutex, MutexGuard};

use ferroflow_core::op::{no_gradient, GradCtx, Op, TensorSpec};
use ferroflow_core::{DType, Error, Result, Tensor, Variable};

use crate::optimizers::Optimizer;

/// Where a traced train step finds the optimizer while it runs.
pub(crate) type Lender = Arc<Mutex<Option<Box<dyn Optimizer>>>>;

pub(crate) fn lock(l: &Lender) -> MutexGuard<'_, Option<Box<dyn Optimizer>>> {
    match l.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// `optimizer.apply_gradients(zip(grads, vars))` as a graph op: see the module documentation.
/// Its output is the optimizer's iteration count after the update (an `int64` scalar).
/// Stateful (never folded, merged or moved) and without a gradient.
pub(crate) struct ApplyOptimizer {
    /// The optimizer, lent for each run.
    pub(crate) lender: Lender,
    /// Every trainable variable of the step, in the model's order.
    pub(crate) vars: Vec<Variable>,
    /// Which of `vars` has a gradient (those follow the dependencies in the inputs, in order).
    pub(crate) has_grad: Vec<bool>,
    /// How many leading inputs are only dependencies (the step's loss and outputs).
    pub(crate) n_deps: usize,
}

impl std::fmt::Debug for ApplyOptimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ApplyOptimizer({} variables, {} after {} results)",
            self.vars.len(),
            self.has_grad.iter().filter(|h| **h).count(),
            self.n_deps
        )
    }
}

impl Op for ApplyOptimizer {
    fn name(&self) -> &'static str {
        "ApplyOptimizer"
    }

    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let n_grads = self.has_grad.iter().filter(|h| **h).count();
        if inputs.len() != self.n_deps + n_grads || self.vars.len() != self.has_grad.len() {
            return Err(Error::invalid(
                self.name(),
                format!(
                    "internal: {} inputs for {} results and {n_grads} gradients",
                    inputs.len(),
                    self.n_deps
                ),
            ));
        }
        Ok(vec![TensorSpec::new(DType::I64, &[])])
    }

    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut grads = inputs.get(self.n_deps..).unwrap_or_default().iter();
        let grads: Vec<Option<Tensor>> = self
            .has_grad
            .iter()
            .map(|&h| if h { grads.next().cloned() } else { None })
            .collect();
        // Data parallelism: the gradients averaged over ranks before the update, as in the
        // eager step (no-op without a strategy).
        let grads = crate::distribute::reduce_gradients(grads)?;
        let pairs: Vec<(Tensor, Variable)> = grads
            .into_iter()
            .zip(&self.vars)
            .filter_map(|(g, v)| g.map(|g| (g, v.clone())))
            .collect();
        let mut guard = lock(&self.lender);
        let opt = guard.as_mut().ok_or_else(|| {
            Error::invalid(
                self.name(),
                "internal: the traced train step ran without its optimizer",
            )
        })?;
        opt.apply_gradients(&pairs)?;
        Ok(vec![Tensor::scalar(opt.iterations() as i64)])
    }

    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        no_gradient(self)
    }

    fn is_stateful(&self) -> bool {
        true
    }
}
