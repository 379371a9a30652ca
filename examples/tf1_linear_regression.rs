//! TensorFlow 1's linear regression, line by line in graph mode: placeholders, `Variable`s,
//! `GradientDescentOptimizer(0.01).minimize(loss)`, `global_variables_initializer`, a `Session`
//! fed with `feed_dict`.
//!
//! ```python
//! x = tf.placeholder(tf.float32, shape=[None, 2]); y = tf.placeholder(tf.float32, shape=[None, 1])
//! W = tf.Variable(tf.random_normal([2, 1]), name='weights'); b = tf.Variable(tf.random_normal([1]), name='biases')
//! y_pred = tf.matmul(x, W) + b
//! loss = tf.reduce_mean(tf.square(y_pred - y))
//! optimizer = tf.train.GradientDescentOptimizer(0.01).minimize(loss)
//! init = tf.global_variables_initializer()
//! with tf.Session() as sess:
//!     sess.run(init)
//!     for step in range(201):
//!         sess.run(optimizer, feed_dict={x: X_train, y: Y_train})
//! ```
//!
//! The data: 1,000 points `x ~ N(0, 1)²`, `y = x·[2, -3.4] + 4.2 + 0.01·noise`.
//! Run: `cargo run --release --example tf1_linear_regression`.

use ferroflow::graph::train::{GradientDescentOptimizer, Optimizer};
use ferroflow::{graph, ops, DType, Graph, Result, Session, Tensor, Variable};

/// The weights and bias the data was made with.
pub const TRUE_W: [f32; 2] = [2.0, -3.4];
/// See [`TRUE_W`].
pub const TRUE_B: f32 = 4.2;

/// `(X_train, Y_train)`: `n` seeded samples.
pub fn data(n: usize, seed: u64) -> Result<(Tensor, Tensor)> {
    let x = ops::random_normal(&[n, 2], 0.0, 1.0, DType::F32, seed)?;
    let noise = ops::random_normal(&[n, 1], 0.0, 0.01, DType::F32, seed + 1)?;
    let w = Tensor::from_vec(TRUE_W.to_vec(), &[2, 1])?;
    let y = ops::add(
        &ops::add_scalar(&ops::matmul(&x, &w, false, false)?, TRUE_B as f64)?,
        &noise,
    )?;
    Ok((x, y))
}

/// Trains for `steps` and returns the learnt `(W, b, loss)`.
pub fn train(steps: usize, seed: u64) -> Result<(Vec<f32>, f32, f32)> {
    let (x_train, y_train) = data(1000, seed)?;
    let g = Graph::new();
    let _default = g.as_default();
    let x = graph::placeholder(DType::F32, &[None, Some(2)], "x")?;
    let y = graph::placeholder(DType::F32, &[None, Some(1)], "y")?;
    let w = Variable::new(
        ops::random_normal(&[2, 1], 0.0, 1.0, DType::F32, seed + 2)?,
        "weights",
    );
    let b = Variable::new(
        ops::random_normal(&[1], 0.0, 1.0, DType::F32, seed + 3)?,
        "biases",
    );
    let y_pred = ops::add(&ops::matmul(&x, &w.value(), false, false)?, &b.value())?;
    let loss = ops::reduce_mean(
        &ops::square(&ops::sub(&y_pred, &y)?)?,
        ops::Axes::All,
        false,
    )?;
    let optimizer = GradientDescentOptimizer::new(0.01).minimize(&loss)?;
    let init = graph::global_variables_initializer()?;
    let sess = Session::new(&g);
    sess.run(&[&init], &[])?;
    let quiet = std::env::var_os("QUIET").is_some();
    for step in 0..steps {
        let feed = [(&x, x_train.clone()), (&y, y_train.clone())];
        sess.run(&[&optimizer], &feed)?;
        if !quiet && step % 50 == 0 {
            let l = sess.run(&[&loss], &feed)?[0].item::<f32>()?;
            println!("step {step:3}: loss {l:.6}");
        }
    }
    let feed = [(&x, x_train), (&y, y_train)];
    let out = sess.run(&[&w.value(), &b.value(), &loss], &feed)?;
    Ok((
        out[0].to_vec::<f32>()?,
        out[1].to_vec::<f32>()?[0],
        out[2].item::<f32>()?,
    ))
}

fn main() -> Result<()> {
    let (w, b, loss) = train(201, 7)?;
    println!(
        "W = [{:.4}, {:.4}] (true [2, -3.4]), b = {b:.4} (true 4.2), loss {loss:.6}",
        w[0], w[1]
    );
    Ok(())
}
