//! Training throughput of an LSTM(128) over 100 time steps at batch 64 — the recurrent
//! benchmark case: input `[64, 100, 32]` (random normal), `LSTM(128)` → `Dense(1)`, mean squared
//! error, Adam. One epoch = 20 batches; training steps/s = 20 / the median epoch time over the
//! epochs after the first (as examples/keras_bench.rs measures).
//!
//! `cargo run --release --example lstm_bench` prints one JSON line (`EPOCHS`, default 4); the
//! equivalent Keras model is `Sequential([Input((100, 32)), LSTM(128), Dense(1)])` compiled with
//! `"adam", "mse"` and fitted with `batch_size=64`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferroflow::keras::callbacks::{Callback, Logs};
use ferroflow::keras::layers::{Dense, LSTM};
use ferroflow::keras::prelude::*;
use ferroflow::keras::utils::set_random_seed;
use ferroflow::{ops, DType, Result};

const BATCH: usize = 64;
const STEPS: usize = 100;
const FEATURES: usize = 32;
const UNITS: usize = 128;
const BATCHES: usize = 20;

struct EpochTimer {
    start: Option<Instant>,
    times: Arc<Mutex<Vec<f64>>>,
}

impl Callback for EpochTimer {
    fn on_epoch_begin(&mut self, _m: &mut Model, _e: usize, _l: &Logs) -> Result<()> {
        self.start = Some(Instant::now());
        Ok(())
    }
    fn on_epoch_end(&mut self, _m: &mut Model, _e: usize, _l: &mut Logs) -> Result<()> {
        if let Some(s) = self.start {
            if let Ok(mut t) = self.times.lock() {
                t.push(s.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }
}

fn main() -> Result<()> {
    let epochs = std::env::var("EPOCHS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(4usize)
        .max(2);
    set_random_seed(0);
    let n = BATCH * BATCHES;
    let x = ops::random_normal(&[n, STEPS, FEATURES], 0.0, 1.0, DType::F32, 1)?;
    let y = ops::random_normal(&[n, 1], 0.0, 1.0, DType::F32, 2)?;
    let mut m = Sequential::new();
    m.add(Input::new(&[STEPS, FEATURES]))?;
    // FUSED=0 forces the step-by-step loop (for comparison).
    let fused = std::env::var("FUSED").map_or(true, |v| v != "0");
    m.add(LSTM::new(UNITS).use_fused(fused))?;
    m.add(Dense::new(1))?;
    m.compile("adam", "mse", ())?;
    let times = Arc::new(Mutex::new(Vec::new()));
    m.fit(&x, &y)
        .epochs(epochs)
        .batch_size(BATCH)
        .shuffle(false)
        .verbose(0)
        .callback(EpochTimer {
            start: None,
            times: times.clone(),
        })
        .run()?;
    let mut t = times.lock().map(|t| t.clone()).unwrap_or_default();
    let first = t.first().copied().unwrap_or(0.0);
    let mut steady: Vec<f64> = t.split_off(1.min(t.len()));
    steady.sort_by(|a, b| a.total_cmp(b));
    let median = steady.get(steady.len() / 2).copied().unwrap_or(first);
    println!(
        "{{\"framework\": \"ferroflow-{}\", \"case\": \"lstm{UNITS}_t{STEPS}_b{BATCH}\", \"batch\": {BATCH}, \"epochs\": {epochs}, \"train_steps_per_s\": {:.2}, \"train_samples_per_s\": {:.1}, \"first_epoch_s\": {:.2}, \"threads\": {}, \"fused\": {fused}}}",
        env!("CARGO_PKG_VERSION"),
        BATCHES as f64 / median,
        n as f64 / median,
        first,
        rayon::current_num_threads()
    );
    Ok(())
}
