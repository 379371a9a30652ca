//! Training and inference throughput of the seed CNN and MLP on MNIST-10k, measured exactly as
//! `../shared/bench/tf_anchor.py` measures TensorFlow: the same models, data, optimizer (Adam)
//! and batch sizes; training samples/s = 8,000 / the median epoch time over the epochs after
//! the first; inference = 2,000 test images at batch 256 after a warm-up.
//!
//! `cargo run --release --example keras_bench -- cnn32 cnn128 mlp32 mlp128` prints one JSON
//! line per case (the same keys as the TensorFlow script); `EPOCHS` sets the epochs (default 4).
//! `bench/compare.py` runs both side by side. `RUN_EAGERLY=1` trains and predicts op by op instead
//! of with traced step graphs (the default, as Keras's `run_eagerly=False`).
//!
//! `keras_bench startup` measures the time to the first finished training step instead, as
//! `bench/tf_startup.py` does for TensorFlow: it builds and compiles the seed CNN, runs one
//! `train_on_batch` on a fixed synthetic batch of 32 images (no data file is read), and prints
//! `first_step_unix_s` (the wall clock when that step finished, for the parent process, which
//! knows when it spawned this one) and `in_process_s` (the same from the start of `main`).

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ferroflow::keras::callbacks::{Callback, Logs};
use ferroflow::keras::datasets::mnist;
use ferroflow::keras::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use ferroflow::keras::prelude::*;
use ferroflow::keras::utils::set_random_seed;
use ferroflow::{ops, DType, Result, Tensor};

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

fn cnn() -> Result<Sequential> {
    let mut m = Sequential::new();
    m.add(Input::new(&[28, 28, 1]))?;
    m.add(Conv2D::new(32, (3, 3)).activation("relu"))?;
    m.add(MaxPooling2D::new((2, 2)))?;
    m.add(Conv2D::new(64, (3, 3)).activation("relu"))?;
    m.add(MaxPooling2D::new((2, 2)))?;
    m.add(Flatten::new())?;
    m.add(Dense::new(128).activation("relu"))?;
    m.add(Dense::new(10).activation("softmax"))?;
    Ok(m)
}

fn mlp() -> Result<Sequential> {
    let mut m = Sequential::new();
    m.add(Input::new(&[784]))?;
    m.add(Dense::new(64).activation("relu"))?;
    m.add(Dense::new(64).activation("relu"))?;
    m.add(Dense::new(10).activation("softmax"))?;
    Ok(m)
}

fn prepare(images: &Tensor, flat: bool) -> Result<Tensor> {
    let x = ops::mul_scalar(&ops::cast(images, DType::F32)?, 1.0 / 255.0)?;
    let n = x.shape()[0] as isize;
    if flat {
        ops::reshape(&x, &[n, 784])
    } else {
        ops::reshape(&x, &[n, 28, 28, 1])
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn run(case: &str, epochs: usize) -> Result<()> {
    let (kind, batch) = case.split_at(3);
    let batch: usize = batch.parse().unwrap_or(32);
    let flat = kind == "mlp";
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let ((xtr, ytr), (xte, yte)) = mnist::load_data_from(dir)?;
    let (xtr, xte) = (prepare(&xtr, flat)?, prepare(&xte, flat)?);
    set_random_seed(0);
    let mut m = if flat { mlp()? } else { cnn()? };
    // `RUN_EAGERLY=1`: the eager step instead of the traced one (Keras's `run_eagerly=True`).
    let eager = std::env::var("RUN_EAGERLY").is_ok_and(|v| v == "1");
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])?
        .run_eagerly(eager);
    let times = Arc::new(Mutex::new(Vec::new()));
    m.fit(&xtr, &ytr)
        .epochs(epochs)
        .batch_size(batch)
        .verbose(0)
        .callback(EpochTimer {
            start: None,
            times: times.clone(),
        })
        .run()?;
    m.predict(&xte).batch_size(256).verbose(0).run()?;
    let t0 = Instant::now();
    let pred = m.predict(&xte).batch_size(256).verbose(0).run()?;
    let tp = t0.elapsed().as_secs_f64();
    let predicted = ops::argmax(&pred, -1)?.to_vec::<i64>()?;
    let truth = yte.to_vec::<u8>()?;
    let acc = predicted
        .iter()
        .zip(&truth)
        .filter(|(p, t)| **p == **t as i64)
        .count() as f64
        / truth.len() as f64;
    let times = times.lock().map(|t| t.clone()).unwrap_or_default();
    let steady = if times.len() > 1 {
        &times[1..]
    } else {
        &times[..]
    };
    println!(
        "{{\"framework\": \"ferroflow-{}\", \"case\": \"{case}\", \"batch\": {batch}, \"epochs\": {epochs}, \"train_samples_per_s\": {:.1}, \"first_epoch_s\": {:.2}, \"infer_samples_per_s\": {:.1}, \"test_accuracy\": {:.4}, \"threads\": {}, \"run_eagerly\": {eager}}}",
        env!("CARGO_PKG_VERSION"),
        xtr.shape()[0] as f64 / median(steady),
        times.first().copied().unwrap_or(0.0),
        xte.shape()[0] as f64 / tp,
        acc,
        rayon::current_num_threads()
    );
    Ok(())
}

/// The `startup` case: process start to the first finished training step of the seed CNN.
fn startup(main_start: Instant) -> Result<()> {
    // The same synthetic batch as bench/tf_startup.py: pixel i of the batch = (i % 255) / 255,
    // label j = j % 10.
    let x: Vec<f32> = (0..32 * 28 * 28)
        .map(|i| (i % 255) as f32 / 255.0)
        .collect();
    let y: Vec<i64> = (0..32).map(|j| j % 10).collect();
    let (x, y) = (
        Tensor::from_vec(x, &[32, 28, 28, 1])?,
        Tensor::from_vec(y, &[32])?,
    );
    set_random_seed(0);
    let mut m = cnn()?;
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])?;
    let logs = m.train_on_batch(&x, &y, None)?;
    let in_process = main_start.elapsed().as_secs_f64();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let loss = logs.get("loss").copied().unwrap_or(f64::NAN);
    println!(
        "{{\"framework\": \"ferroflow-{}\", \"case\": \"startup\", \"first_step_unix_s\": {now:.6}, \"in_process_s\": {in_process:.6}, \"loss\": {loss:.6}}}",
        env!("CARGO_PKG_VERSION")
    );
    Ok(())
}

fn main() -> Result<()> {
    let main_start = Instant::now();
    let epochs = std::env::var("EPOCHS")
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(4);
    let mut cases: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if cases.is_empty() {
        cases = ["cnn32", "cnn128", "mlp32", "mlp128"]
            .map(String::from)
            .to_vec();
    }
    for c in &cases {
        if c == "startup" {
            startup(main_start)?;
            continue;
        }
        run(c, epochs)?;
    }
    Ok(())
}
