//! Where a training or predict step of the seed MLP / CNN spends its time and memory: steps per
//! second, heap allocations per steady-state step (a counting global allocator), and the time from
//! process start to the first finished training step.
//!
//! `cargo run --release --example step_probe -- mlp32 cnn128 ...` prints one JSON line per case:
//! `train_step_us` (median over the measured steps), `allocs_per_step` and `alloc_bytes_per_step`
//! (heap allocations made by one steady-state `train_on_batch`), the same for `predict` of 256
//! samples, and `first_step_ms` (process start to the first finished step of the first case).
//! With `FERROFLOW_PROFILE=1` the per-op table is printed to stderr at the end.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ferroflow::keras::datasets::mnist;
use ferroflow::keras::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use ferroflow::keras::prelude::*;
use ferroflow::keras::utils::set_random_seed;
use ferroflow::{ops, DType, Result, Tensor};

/// Counts heap allocations (calls and bytes) and passes them on to the system allocator.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// the counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counters() -> (u64, u64) {
    (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    )
}

fn model(flat: bool) -> Result<Sequential> {
    let mut m = Sequential::new();
    if flat {
        m.add(Input::new(&[784]))?;
        m.add(Dense::new(64).activation("relu"))?;
        m.add(Dense::new(64).activation("relu"))?;
    } else {
        m.add(Input::new(&[28, 28, 1]))?;
        m.add(Conv2D::new(32, (3, 3)).activation("relu"))?;
        m.add(MaxPooling2D::new((2, 2)))?;
        m.add(Conv2D::new(64, (3, 3)).activation("relu"))?;
        m.add(MaxPooling2D::new((2, 2)))?;
        m.add(Flatten::new())?;
        m.add(Dense::new(128).activation("relu"))?;
    }
    m.add(Dense::new(10).activation("softmax"))?;
    Ok(m)
}

/// `n` rows of `t` from `start`, as a contiguous tensor.
fn rows(t: &Tensor, start: usize, n: usize) -> Result<Tensor> {
    let mut begin = vec![0; t.rank()];
    begin[0] = start;
    let mut size = vec![-1isize; t.rank()];
    size[0] = n as isize;
    Ok(ops::slice(t, &begin, &size)?.contiguous())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run(case: &str, process_start: Instant, first: bool) -> Result<()> {
    let (kind, batch) = case.split_at(3);
    let batch: usize = batch.parse().unwrap_or(32);
    let flat = kind == "mlp";
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let ((xtr, ytr), _) = mnist::load_data_from(dir)?;
    let x = ops::mul_scalar(&ops::cast(&xtr, DType::F32)?, 1.0 / 255.0)?;
    let n = x.shape()[0];
    let x = if flat {
        ops::reshape(&x, &[n as isize, 784])?
    } else {
        ops::reshape(&x, &[n as isize, 28, 28, 1])?
    };
    set_random_seed(0);
    let mut m = model(flat)?;
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])?;
    let batches: Vec<(Tensor, Tensor)> = (0..n / batch)
        .map(|i| Ok((rows(&x, i * batch, batch)?, rows(&ytr, i * batch, batch)?)))
        .collect::<Result<_>>()?;
    m.train_on_batch(&batches[0].0, &batches[0].1, None)?;
    let first_step_ms = process_start.elapsed().as_secs_f64() * 1e3;
    let mut times = Vec::new();
    let (a0, b0) = counters();
    let steps = batches.len().min(200);
    for (bx, by) in batches.iter().cycle().skip(1).take(steps) {
        let t = Instant::now();
        m.train_on_batch(bx, by, None)?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (a1, b1) = counters();
    let xp = rows(&x, 0, 256)?;
    m.predict(&xp).batch_size(256).verbose(0).run()?;
    let mut ptimes = Vec::new();
    let (p0, q0) = counters();
    for _ in 0..20 {
        let t = Instant::now();
        m.predict(&xp).batch_size(256).verbose(0).run()?;
        ptimes.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (p1, q1) = counters();
    println!(
        "{{\"case\": \"{case}\", \"train_step_us\": {:.1}, \"train_samples_per_s\": {:.0}, \"allocs_per_step\": {:.1}, \"alloc_bytes_per_step\": {:.0}, \"predict256_us\": {:.1}, \"predict_samples_per_s\": {:.0}, \"predict_allocs\": {:.1}, \"predict_alloc_bytes\": {:.0}, \"first_step_ms\": {}}}",
        median(times.clone()),
        batch as f64 * 1e6 / median(times),
        (a1 - a0) as f64 / steps as f64,
        (b1 - b0) as f64 / steps as f64,
        median(ptimes.clone()),
        256.0 * 1e6 / median(ptimes),
        (p1 - p0) as f64 / 20.0,
        (q1 - q0) as f64 / 20.0,
        if first { format!("{first_step_ms:.1}") } else { "null".into() },
    );
    Ok(())
}

fn main() -> Result<()> {
    let start = Instant::now();
    let _report = ferroflow::profiler::ReportGuard;
    let cases: Vec<String> = std::env::args().skip(1).collect();
    let cases = if cases.is_empty() {
        vec![
            "mlp32".to_string(),
            "mlp128".into(),
            "cnn32".into(),
            "cnn128".into(),
        ]
    } else {
        cases
    };
    for (i, c) in cases.iter().enumerate() {
        run(c, start, i == 0)?;
    }
    Ok(())
}
