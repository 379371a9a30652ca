//! A per-op profiler: how many times each op ran and how long its kernels took.
//!
//! Turned on by the environment variable `FERROFLOW_PROFILE=1` (read once, at the first op) or
//! by [`enable`]. While on, every [`crate::op::execute`] (and every kernel a graph `Session` runs)
//! times the op's [`crate::op::Op::compute`]
//! (the kernel; not the shape check or the tape bookkeeping) and adds it to the op's row; gradient
//! ops are ordinary ops run by `tape.gradient`, so they appear under their own names. When off,
//! the cost per op is one relaxed atomic load.
//!
//! The totals are process-wide (all threads) and kept until [`reset`]. Read them with
//! [`snapshot`] (sorted by total time, largest first) or as a table with [`report`] /
//! [`print_report`]. Rust runs no destructors for statics at exit, so nothing is printed
//! automatically at process exit; instead Keras's `fit` prints the table (the totals so far) to
//! stderr when it ends if `FERROFLOW_PROFILE` is set, and [`ReportGuard`] prints it when dropped
//! (put one at the top of `main`).
//!
//! Times are exclusive ("self" time): an op whose kernel itself runs other ops (a composite
//! kernel, such as a graph's `_FusedConv2D` running `Conv2D`) is charged only for its time
//! outside them, and they under their own names, so the rows add up to the time spent in kernels
//! and the shares are not counted twice. Nesting is followed per thread ([`timed`]); an inner op
//! that a kernel hands to another thread is not subtracted from it. Graph steps (`Session::run`)
//! are covered: every node's kernel runs through the same timed entry as an eager op.
//!
//! ```
//! use ferroflow_core::{ops, profiler, Tensor};
//! profiler::enable();
//! profiler::reset();
//! let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?;
//! let _y = ops::add(&x, &x)?;
//! let stats = profiler::snapshot();
//! assert!(stats.iter().any(|s| s.op == "AddV2" && s.calls >= 1));
//! profiler::disable();
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 0: not decided yet (read the environment), 1: off, 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Per op name: (calls, total nanoseconds).
static STATS: Mutex<Option<HashMap<&'static str, (u64, u128)>>> = Mutex::new(None);

/// Whether profiling is on: `FERROFLOW_PROFILE` set to anything but `""`/`0` at the first call,
/// or [`enable`] called since.
#[inline]
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => init_from_env(),
    }
}

/// Whether the environment asks for profiling (`FERROFLOW_PROFILE` set to anything but
/// `""`/`0`), read now. Keras's `fit` prints the table at its end when this is true.
pub fn env_enabled() -> bool {
    std::env::var("FERROFLOW_PROFILE").is_ok_and(|v| !v.is_empty() && v != "0")
}

#[cold]
fn init_from_env() -> bool {
    let on = env_enabled();
    // Keep an explicit enable()/disable() that raced with us.
    let _ = STATE.compare_exchange(
        0,
        if on { 2 } else { 1 },
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    STATE.load(Ordering::Relaxed) == 2
}

/// Turns profiling on (whatever `FERROFLOW_PROFILE` says).
pub fn enable() {
    STATE.store(2, Ordering::Relaxed);
}

/// Turns profiling off; the totals so far are kept.
pub fn disable() {
    STATE.store(1, Ordering::Relaxed);
}

/// Forgets every total.
pub fn reset() {
    if let Ok(mut s) = STATS.lock() {
        *s = None;
    }
}

thread_local! {
    /// Nanoseconds spent so far in timed calls nested in the current [`timed`] call of this
    /// thread (0 outside any).
    static NESTED: Cell<u128> = const { Cell::new(0) };
}

/// Runs `f` as one call of `op` and records its exclusive time: its wall time less the time of
/// the timed calls nested in it on this thread (which record their own). What `op::compute` and
/// the graph executor's kernel entries call while profiling is on.
pub fn timed<R>(op: &'static str, f: impl FnOnce() -> R) -> R {
    let outer = NESTED.with(|n| n.replace(0));
    let start = Instant::now();
    let out = f();
    let elapsed = start.elapsed().as_nanos();
    let nested = NESTED.with(|n| n.replace(outer.saturating_add(elapsed)));
    record_nanos(op, elapsed.saturating_sub(nested));
    out
}

/// Adds one call of `op` that took `elapsed` (not nested: use [`timed`] for kernels that may
/// run other ops).
pub fn record(op: &'static str, elapsed: Duration) {
    record_nanos(op, elapsed.as_nanos());
}

fn record_nanos(op: &'static str, nanos: u128) {
    // A poisoned lock only means another thread panicked while adding; the map is still valid.
    let mut s = STATS.lock().unwrap_or_else(|e| e.into_inner());
    let row = s
        .get_or_insert_with(HashMap::new)
        .entry(op)
        .or_insert((0, 0));
    row.0 += 1;
    row.1 += nanos;
}

/// One row of the profile: an op's call count and kernel time.
#[derive(Clone, Debug, PartialEq)]
pub struct OpStat {
    /// The op's TensorFlow-style name (`"MatMul"`).
    pub op: &'static str,
    /// How many times it ran.
    pub calls: u64,
    /// Total kernel time.
    pub total: Duration,
}

impl OpStat {
    /// Mean time per call.
    pub fn mean(&self) -> Duration {
        if self.calls == 0 {
            Duration::ZERO
        } else {
            self.total / self.calls.min(u32::MAX as u64) as u32
        }
    }
}

/// Every op's totals, by total time (largest first; ties by name).
pub fn snapshot() -> Vec<OpStat> {
    let s = STATS.lock().unwrap_or_else(|e| e.into_inner());
    let mut rows: Vec<OpStat> = s
        .iter()
        .flatten()
        .map(|(&op, &(calls, nanos))| OpStat {
            op,
            calls,
            total: Duration::from_nanos(nanos.min(u64::MAX as u128) as u64),
        })
        .collect();
    rows.sort_by(|a, b| b.total.cmp(&a.total).then(a.op.cmp(b.op)));
    rows
}

/// The profile as a text table sorted by total time: op, calls, total ms, mean µs, % of the
/// total (the sum over all ops), and a closing total line.
pub fn report() -> String {
    format_table(&snapshot())
}

/// [`report`]'s table for given rows (in their order).
pub fn format_table(rows: &[OpStat]) -> String {
    let total: f64 = rows.iter().map(|r| r.total.as_secs_f64()).sum();
    let width = rows.iter().map(|r| r.op.len()).max().unwrap_or(2).max(2);
    let mut out = format!(
        "{:<width$}  {:>10}  {:>12}  {:>12}  {:>7}\n",
        "op", "calls", "total ms", "mean µs", "%"
    );
    for r in rows {
        let t = r.total.as_secs_f64();
        let pct = if total > 0.0 { 100.0 * t / total } else { 0.0 };
        out.push_str(&format!(
            "{:<width$}  {:>10}  {:>12.3}  {:>12.3}  {:>6.2}%\n",
            r.op,
            r.calls,
            t * 1e3,
            r.mean().as_secs_f64() * 1e6,
            pct
        ));
    }
    let calls: u64 = rows.iter().map(|r| r.calls).sum();
    out.push_str(&format!(
        "{:<width$}  {:>10}  {:>12.3}\n",
        "total",
        calls,
        total * 1e3
    ));
    out
}

/// Prints [`report`] to stderr (nothing when no op was recorded).
pub fn print_report() {
    let rows = snapshot();
    if !rows.is_empty() {
        eprintln!(
            "ferroflow profile (op kernels, by total time):\n{}",
            format_table(&rows)
        );
    }
}

/// Prints the profile to stderr when dropped, if profiling is on: `let _p =
/// profiler::ReportGuard;` at the top of `main` gives a table at the end of the program.
#[derive(Debug, Default)]
pub struct ReportGuard;

impl Drop for ReportGuard {
    fn drop(&mut self) {
        if enabled() {
            print_report();
        }
    }
}
