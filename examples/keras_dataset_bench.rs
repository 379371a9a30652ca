//! What a `Dataset` input pipeline costs `fit`: the seed CNN (the one of `mnist_cnn.rs`) trains
//! one epoch on the bundled MNIST-10k training digits (8,000) at batch 32, either
//!
//! - A: from a pipeline, `Dataset::from_tensor_slices((x, y)).shuffle(8000, seed).batch(32)
//!   .prefetch(AUTOTUNE)`, through `model.fit_dataset(&ds)`, or
//! - B: from the in-memory tensors, `model.fit(&x, &y).batch_size(32)` (shuffled each epoch),
//!
//! alternating A B A B so that drifts of the machine hit both alike, each run on a freshly
//! built model with the same initial weights. It prints every time, the medians and the ratio
//! A / B (the goal: at most 1.05).
//!
//! `cargo run --release --example keras_dataset_bench` (`REPS=7` sets the repetitions of each,
//! default 5; one short warm-up of each comes first and is not counted).

use std::time::Instant;

use ferroflow::data::{Dataset, AUTOTUNE};
use ferroflow::keras::datasets::mnist;
use ferroflow::keras::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use ferroflow::keras::prelude::*;
use ferroflow::keras::utils::set_random_seed;
use ferroflow::{ops, DType, Result, Tensor};

/// The seed CNN (225,034 parameters), as in `mnist_cnn.rs`.
fn seed_cnn() -> Result<Sequential> {
    let mut model = Sequential::new();
    model.add(
        Conv2D::new(32, (3, 3))
            .activation("relu")
            .input_shape(&[28, 28, 1]),
    )?;
    model.add(MaxPooling2D::new((2, 2)))?;
    model.add(Conv2D::new(64, (3, 3)).activation("relu"))?;
    model.add(MaxPooling2D::new((2, 2)))?;
    model.add(Flatten::new())?;
    model.add(Dense::new(128).activation("relu"))?;
    model.add(Dense::new(10).activation("softmax"))?;
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])?;
    Ok(model)
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

/// Seconds for one epoch (or `steps` batches) with the pipeline (A) or the tensors (B).
fn epoch(x: &Tensor, y: &Tensor, pipeline: bool, rep: u64, steps: Option<usize>) -> Result<f64> {
    set_random_seed(0);
    let mut model = seed_cnn()?;
    let t0 = Instant::now();
    if pipeline {
        let n = x.shape()[0];
        let ds = Dataset::from_tensor_slices((x.clone(), y.clone()))?
            .shuffle(n, Some(rep), true)
            .batch(32, false)
            .prefetch(AUTOTUNE);
        let mut fit = model.fit_dataset(&ds).verbose(0);
        if let Some(s) = steps {
            fit = fit.steps_per_epoch(s);
        }
        fit.run()?;
    } else {
        let mut fit = model.fit(x, y).batch_size(32).verbose(0);
        if let Some(s) = steps {
            fit = fit.steps_per_epoch(s);
        }
        fit.run()?;
    }
    Ok(t0.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    let reps: u64 = std::env::var("REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let ((x, y), _) = mnist::load_data_from(dir)?;
    let x = ops::mul_scalar(&ops::cast(&x, DType::F32)?, 1.0 / 255.0)?;
    let n = x.shape()[0];
    let x = ops::reshape(&x, &[n as isize, 28, 28, 1])?;
    println!(
        "seed CNN, {n} samples, batch 32, one epoch; A = Dataset pipeline, B = in-memory tensors"
    );
    // Warm-up (allocator, thread pool, caches), not counted.
    epoch(&x, &y, true, 0, Some(20))?;
    epoch(&x, &y, false, 0, Some(20))?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let ta = epoch(&x, &y, true, rep, None)?;
        let tb = epoch(&x, &y, false, rep, None)?;
        println!("rep {rep}: A {ta:.3} s   B {tb:.3} s");
        a.push(ta);
        b.push(tb);
    }
    let (ma, mb) = (median(&a), median(&b));
    println!(
        "median A (Dataset) {ma:.3} s, B (tensors) {mb:.3} s, ratio A/B {:.3}",
        ma / mb
    );
    Ok(())
}
