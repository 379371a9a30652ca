//! The seed CNN of `mnist_cnn.rs`, trained data-parallel over MPI (Horovod-style: one replica per
//! rank, gradients averaged with an allreduce before every step). Build and run:
//!
//! ```text
//! cargo build --release --features mpi --example mnist_mpi
//! mpirun --allow-run-as-root --oversubscribe -np 2 target/release/examples/mnist_mpi
//! ```
//!
//! (`--allow-run-as-root` only as root; `--oversubscribe` when there are more ranks than cores.)
//! Options: `--epochs 2 --batch-size 64 --seed 2 --samples 8000 --checkpoint mnist_mpi.keras`.
//! `--batch-size` is the global batch: each of the `n` ranks computes gradients on
//! `batch-size / n` samples of it. Only rank 0 prints the progress bar, the test accuracy and the
//! throughput, and writes the checkpoint. Started without `mpirun` it trains as one process.
//! See `docs/distributed.md`.

use std::time::Instant;

use ferroflow::keras::backend::set_random_seed;
use ferroflow::keras::callbacks::ModelCheckpoint;
use ferroflow::keras::datasets::mnist;
use ferroflow::keras::distribute::{ChiefOnly, Strategy};
use ferroflow::keras::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use ferroflow::keras::prelude::*;
use ferroflow::mpi::MpiStrategy;
use ferroflow::{ops, DType, Error, Result, Tensor};

/// Images as float32 in [0, 1] with a channel axis: `(n, 28, 28, 1)`.
fn prepare(images: &Tensor) -> Result<Tensor> {
    let x = ops::mul_scalar(&ops::cast(images, DType::F32)?, 1.0 / 255.0)?;
    let n = x.shape()[0] as isize;
    ops::reshape(&x, &[n, 28, 28, 1])
}

/// The first `n` samples.
fn head(t: &Tensor, n: usize) -> Result<Tensor> {
    let n = n.min(t.shape()[0]);
    let idx = Tensor::from_vec((0..n as i64).collect::<Vec<_>>(), &[n])?;
    ops::gather(t, &idx, 0)
}

/// The seed CNN (225,034 parameters).
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
    Ok(model)
}

/// Times each epoch's training (not the validation) on the chief.
struct Throughput {
    samples: usize,
    start: Option<Instant>,
}

impl Callback for Throughput {
    fn on_epoch_begin(&mut self, _m: &mut Model, _e: usize, _l: &Logs) -> Result<()> {
        self.start = Some(Instant::now());
        Ok(())
    }
    fn on_epoch_end(&mut self, _m: &mut Model, epoch: usize, _l: &mut Logs) -> Result<()> {
        if let Some(s) = self.start.take() {
            let secs = s.elapsed().as_secs_f64();
            println!(
                "epoch {}: {} samples in {secs:.2} s = {:.1} samples/s",
                epoch + 1,
                self.samples,
                self.samples as f64 / secs
            );
        }
        Ok(())
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::invalid("mnist_mpi", format!("{name} needs a value"))),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let epochs: usize = arg(&args, "--epochs", 2)?;
    let batch_size: usize = arg(&args, "--batch-size", 64)?;
    let seed: u64 = arg(&args, "--seed", 2)?;
    let samples: usize = arg(&args, "--samples", usize::MAX)?;
    let checkpoint: String = arg(&args, "--checkpoint", String::new())?;

    let strategy = MpiStrategy::init()?;
    let chief = strategy.is_chief();
    // The same seed on every rank: the same initial weights (rank 0's are broadcast anyway) and
    // the same shuffle, of which each rank takes its share.
    set_random_seed(seed);
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let (x_train, y_train) = (
        prepare(&head(&x_train, samples)?)?,
        head(&y_train, samples)?,
    );
    let (x_test, y_test) = (prepare(&x_test)?, y_test);
    let n = x_train.shape()[0];
    let mut model = seed_cnn()?;
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])?;
    if chief {
        println!(
            "{} rank(s), global batch {batch_size} ({} per rank), {n} training samples",
            strategy.world_size(),
            batch_size / strategy.world_size()
        );
    }
    let mut fit = model
        .fit(&x_train, &y_train)
        .epochs(epochs)
        .batch_size(batch_size)
        .strategy(&strategy)
        .callback(ChiefOnly::new(Throughput {
            samples: n,
            start: None,
        }));
    if !checkpoint.is_empty() {
        ferroflow::io::register_savers();
        fit = fit.callback(ChiefOnly::new(ModelCheckpoint::new(&checkpoint)));
    }
    let history = fit.run()?;
    // Every rank holds the same weights; only the chief evaluates and prints.
    if chief {
        let scores = model.evaluate(&x_test, &y_test).verbose(0).run()?;
        println!("test loss {:.4}, test accuracy {:.4}", scores[0], scores[1]);
        println!(
            "final training loss {:.4}",
            history.history["loss"].last().copied().unwrap_or(f64::NAN)
        );
        let st = strategy.stats();
        println!(
            "collectives on rank 0: {} calls, {:.3} s, {:.1} MB",
            st.calls,
            st.seconds,
            st.bytes as f64 / 1e6
        );
    }
    Ok(())
}
