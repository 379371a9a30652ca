//! TensorFlow 1's MNIST CNN (`tf.compat.v1.layers` + `AdamOptimizer` + `Session`), line by line
//! in graph mode:
//!
//! ```python
//! x = tf.placeholder(tf.float32, [None, 28, 28, 1]); y = tf.placeholder(tf.float32, [None, 10])
//! training = tf.placeholder(tf.bool, [])
//! conv1 = tf.layers.conv2d(x, 32, 5, padding='same', activation=tf.nn.relu)
//! pool1 = tf.layers.max_pooling2d(conv1, 2, 2)
//! conv2 = tf.layers.conv2d(pool1, 64, 5, padding='same', activation=tf.nn.relu)
//! pool2 = tf.layers.max_pooling2d(conv2, 2, 2)
//! flat = tf.layers.flatten(pool2)
//! dense = tf.layers.dense(flat, 1024, activation=tf.nn.relu)
//! drop = tf.layers.dropout(dense, rate=0.4, training=training)
//! logits = tf.layers.dense(drop, 10)
//! loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
//! train_op = tf.train.AdamOptimizer(1e-3).minimize(loss)
//! correct = tf.equal(tf.argmax(logits, 1), tf.argmax(y, 1))
//! accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
//! init = tf.global_variables_initializer()
//! with tf.Session() as sess:
//!     sess.run(init)
//!     for epoch in range(EPOCHS):
//!         for xb, yb in batches(x_train, y_train, 50):   # shuffled each epoch
//!             sess.run(train_op, feed_dict={x: xb, y: yb, training: True})
//!     print(sess.run(accuracy, feed_dict={x: x_test, y: y_test, training: False}))
//! ```
//!
//! The data is `keras.datasets.mnist.load_data()`: the full MNIST from the cache folder when it
//! is there, else the 8,000 training and 2,000 test digits bundled with ferroflow
//! (`data/mnist-10k`). The dropout mask is redrawn on every `sess.run` (stateful random ops).
//!
//! Widths: the default is the tutorial's full 32/64 filters and a 1024-unit dense layer (no
//! shrinking needed; `--filters1`, `--filters2`, `--dense` change them), `--epochs` (default 3),
//! `--batch-size` (50), `--lr` (1e-3).
//!
//! Measured (release build, the bundled 8,000/2,000 digits, 2 shared CPU cores under a load of
//! about 16): test accuracy 0.9715 after 3 epochs (480 steps), 104 s of training, 108 s wall,
//! 410 MB peak memory.
//! Run: `cargo run --release --example tf1_mnist_cnn`.

use ferroflow::graph::layers;
use ferroflow::graph::train::{AdamOptimizer, Optimizer};
use ferroflow::keras::datasets::mnist;
use ferroflow::{graph, ops, DType, Graph, Result, Session, Tensor};

/// Layer widths and training settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Filters of the first convolution (32 in the tutorial).
    pub filters1: usize,
    /// Filters of the second convolution (64).
    pub filters2: usize,
    /// Units of the hidden dense layer (1024).
    pub dense: usize,
    /// Adam's learning rate (1e-3).
    pub learning_rate: f64,
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Stop an epoch after this many steps (`usize::MAX`: the whole set).
    pub max_steps: usize,
    /// Print progress.
    pub verbose: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            filters1: 32,
            filters2: 64,
            dense: 1024,
            learning_rate: 1e-3,
            epochs: 3,
            batch_size: 50,
            max_steps: usize::MAX,
            verbose: true,
        }
    }
}

/// The graph's handles, as the Python names them.
pub struct Model {
    /// The graph.
    pub graph: Graph,
    /// `x`: `[None, 28, 28, 1]` float32 images in [0, 1].
    pub x: Tensor,
    /// `y`: `[None, 10]` one-hot labels.
    pub y: Tensor,
    /// `training`: the scalar bool fed to dropout.
    pub training: Tensor,
    /// `loss`.
    pub loss: Tensor,
    /// `train_op`.
    pub train_op: Tensor,
    /// `accuracy`.
    pub accuracy: Tensor,
    /// `init`.
    pub init: Tensor,
}

/// Builds the graph.
pub fn build(cfg: &Config) -> Result<Model> {
    let graph = Graph::new();
    let _default = graph.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(28), Some(28), Some(1)], "x")?;
    let y = graph::placeholder(DType::F32, &[None, Some(10)], "y")?;
    let training = graph::placeholder(DType::Bool, &[], "training")?;
    let conv1 = layers::conv2d(&x, cfg.filters1, [5, 5])
        .padding("same")
        .activation(ops::relu)
        .apply()?;
    let pool1 = layers::max_pooling2d(&conv1, [2, 2], [2, 2], "valid")?;
    let conv2 = layers::conv2d(&pool1, cfg.filters2, [5, 5])
        .padding("same")
        .activation(ops::relu)
        .apply()?;
    let pool2 = layers::max_pooling2d(&conv2, [2, 2], [2, 2], "valid")?;
    let flat = layers::flatten(&pool2)?;
    let dense = layers::dense(&flat, cfg.dense)
        .activation(ops::relu)
        .apply()?;
    let drop = layers::dropout(&dense, 0.4).training(&training).apply()?;
    let logits = layers::dense(&drop, 10).apply()?;
    // `softmax_cross_entropy_with_logits` is TF's v2 (gradients to both inputs).
    let loss = ops::reduce_mean(
        &ops::softmax_cross_entropy_with_logits(&y, &logits, -1)?,
        ops::Axes::All,
        false,
    )?;
    let train_op = AdamOptimizer::new(cfg.learning_rate).minimize(&loss)?;
    let correct = ops::equal(&ops::argmax(&logits, 1)?, &ops::argmax(&y, 1)?)?;
    let accuracy = ops::reduce_mean(&ops::cast(&correct, DType::F32)?, ops::Axes::All, false)?;
    let init = graph::global_variables_initializer()?;
    std::mem::drop(_default);
    Ok(Model {
        graph,
        x,
        y,
        training,
        loss,
        train_op,
        accuracy,
        init,
    })
}

/// Images `uint8 (n, 28, 28)` → float32 `(n, 28, 28, 1)` in [0, 1]; labels → one-hot float32.
pub fn prepare(images: &Tensor, labels: &Tensor) -> Result<(Tensor, Tensor)> {
    let x = ops::mul_scalar(&ops::cast(images, DType::F32)?, 1.0 / 255.0)?;
    let n = x.shape()[0] as isize;
    let x = ops::reshape(&x, &[n, 28, 28, 1])?;
    let y = ops::one_hot(
        &ops::cast(labels, DType::I32)?,
        10,
        1.0,
        0.0,
        -1,
        DType::F32,
    )?;
    Ok((x, y))
}

/// Rows `start..start + len` of `t`.
fn rows(t: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    let mut begin = vec![0; t.rank()];
    begin[0] = start;
    let mut size = vec![-1isize; t.rank()];
    size[0] = len as isize;
    ops::slice(t, &begin, &size)
}

/// What a run gives.
#[derive(Clone, Debug)]
pub struct Report {
    /// The loss of each training step (on its batch, before the update).
    pub losses: Vec<f32>,
    /// Accuracy on the test set.
    pub test_accuracy: f64,
    /// Seconds spent training.
    pub train_seconds: f64,
}

/// Trains on `(x_train, y_train)` and evaluates on `(x_test, y_test)` (prepared tensors).
pub fn train_on(
    cfg: &Config,
    (x_train, y_train): (&Tensor, &Tensor),
    (x_test, y_test): (&Tensor, &Tensor),
) -> Result<Report> {
    let m = build(cfg)?;
    let sess = Session::new(&m.graph);
    sess.run(&[&m.init], &[])?;
    let yes = Tensor::from_vec(vec![true], &[])?;
    let no = Tensor::from_vec(vec![false], &[])?;
    let n = x_train.shape()[0];
    let mut losses = Vec::new();
    let start = std::time::Instant::now();
    for epoch in 0..cfg.epochs {
        // Shuffled each epoch (the tutorial's `mnist.train.next_batch`), reproducibly.
        let order = ops::random_shuffle(
            &Tensor::from_vec((0..n as i64).collect::<Vec<_>>(), &[n])?,
            1000 + epoch as u64,
        )?;
        let (xs, ys) = (
            ops::gather(x_train, &order, 0)?,
            ops::gather(y_train, &order, 0)?,
        );
        for (step, b) in (0..n / cfg.batch_size).enumerate() {
            if step >= cfg.max_steps {
                break;
            }
            let s = b * cfg.batch_size;
            let feed = [
                (&m.x, rows(&xs, s, cfg.batch_size)?),
                (&m.y, rows(&ys, s, cfg.batch_size)?),
                (&m.training, yes.clone()),
            ];
            let out = sess.run(&[&m.loss, &m.train_op], &feed)?;
            let l = out[0].item::<f32>()?;
            losses.push(l);
            if cfg.verbose && step % 40 == 0 {
                println!(
                    "epoch {} step {step:4}: loss {l:.4} ({:.1}s)",
                    epoch + 1,
                    start.elapsed().as_secs_f64()
                );
            }
        }
    }
    let train_seconds = start.elapsed().as_secs_f64();
    // Evaluate in chunks of 500 (the whole test set at once would need a large im2col buffer).
    let nt = x_test.shape()[0];
    let mut right = 0.0;
    let mut s = 0;
    while s < nt {
        let len = 500.min(nt - s);
        let feed = [
            (&m.x, rows(x_test, s, len)?),
            (&m.y, rows(y_test, s, len)?),
            (&m.training, no.clone()),
        ];
        right += f64::from(sess.run(&[&m.accuracy], &feed)?[0].item::<f32>()?) * len as f64;
        s += len;
    }
    Ok(Report {
        losses,
        test_accuracy: right / nt as f64,
        train_seconds,
    })
}

/// Loads MNIST and runs [`train_on`].
pub fn train(cfg: &Config) -> Result<Report> {
    let ((xi, yi), (xti, yti)) = mnist::load_data()?;
    let (x_train, y_train) = prepare(&xi, &yi)?;
    let (x_test, y_test) = prepare(&xti, &yti)?;
    train_on(cfg, (&x_train, &y_train), (&x_test, &y_test))
}

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[allow(dead_code)]
fn main() -> Result<()> {
    let d = Config::default();
    let cfg = Config {
        filters1: arg("--filters1", d.filters1),
        filters2: arg("--filters2", d.filters2),
        dense: arg("--dense", d.dense),
        learning_rate: arg("--lr", d.learning_rate),
        epochs: arg("--epochs", d.epochs),
        batch_size: arg("--batch-size", d.batch_size),
        ..d
    };
    println!("{cfg:?}");
    let r = train(&cfg)?;
    println!(
        "test accuracy {:.4} after {} steps, {:.1}s of training",
        r.test_accuracy,
        r.losses.len(),
        r.train_seconds
    );
    Ok(())
}
