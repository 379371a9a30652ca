//! `keras.optimizers.schedules`: learning rates as functions of the iteration count.

/// A learning-rate schedule, evaluated at `optimizer.iterations` before each step.
pub trait LearningRateSchedule: Send + Sync {
    /// The Keras class name.
    fn name(&self) -> &str;

    /// The learning rate at `step` (0-based iteration count).
    fn call(&self, step: u64) -> f64;
}
