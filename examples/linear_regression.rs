//! Linear regression by gradient descent, the seed's TensorFlow example in TF 2 style:
//!
//! ```python
//! W = tf.Variable(tf.random.normal([1, 1])); b = tf.Variable(tf.random.normal([1]))
//! for step in range(...):
//!     with tf.GradientTape() as tape:
//!         loss = tf.reduce_mean(tf.square(tf.matmul(x, W) + b - y))
//!     dW, db = tape.gradient(loss, [W, b])
//!     W.assign_sub(lr * dW); b.assign_sub(lr * db)
//! ```
//!
//! Data: `y = 3·x + 2` plus a little Gaussian noise. Run it with
//! `cargo run --release --example linear_regression`.

use ferroflow::{ops, DType, GradientTape, Result, Variable};

/// The true parameters the data is drawn from.
pub const TRUE_W: f32 = 3.0;
/// The true bias.
pub const TRUE_B: f32 = 2.0;

/// Trains `y = x·W + b` on `n` noisy samples for `steps` steps of plain gradient descent with
/// learning rate `lr`; returns the learned `(w, b)` and the final loss.
pub fn train(n: usize, steps: usize, lr: f64, seed: u64) -> Result<(f32, f32, f32)> {
    // Inputs in [-1, 1) and noise with standard deviation 0.01, both seeded.
    let x = ops::random_uniform(&[n, 1], -1.0, 1.0, DType::F32, seed)?;
    let noise = ops::random_normal(&[n, 1], 0.0, 0.01, DType::F32, seed + 1)?;
    let y = ops::add(
        &ops::add_scalar(&ops::mul_scalar(&x, TRUE_W as f64)?, TRUE_B as f64)?,
        &noise,
    )?;

    let w = Variable::new(
        ops::random_normal(&[1, 1], 0.0, 1.0, DType::F32, seed + 2)?,
        "weights",
    );
    let b = Variable::new(
        ops::random_normal(&[1], 0.0, 1.0, DType::F32, seed + 3)?,
        "biases",
    );

    let mut last_loss = f32::NAN;
    for step in 0..steps {
        let tape = GradientTape::new();
        let y_pred = ops::add(&ops::matmul(&x, &w.value(), false, false)?, &b.value())?;
        let loss = ops::reduce_mean(
            &ops::square(&ops::sub(&y_pred, &y)?)?,
            ops::Axes::All,
            false,
        )?;
        let grads = tape.gradient(&loss, &[&w, &b])?;
        for (var, g) in [&w, &b].into_iter().zip(grads) {
            if let Some(g) = g {
                var.assign_sub(&ops::mul_scalar(&g, lr)?)?;
            }
        }
        last_loss = loss.item::<f32>()?;
        if step % 50 == 0 && std::env::var_os("QUIET").is_none() {
            println!("step {step:4}  loss {last_loss:.6}");
        }
    }
    let w = w.value().item::<f32>()?;
    let b = b.value().item::<f32>()?;
    Ok((w, b, last_loss))
}

#[allow(dead_code)] // `main` is unused when the test suite includes this file.
fn main() -> Result<()> {
    let (w, b, loss) = train(1000, 201, 0.5, 42)?;
    println!(
        "learned w = {w:.4} (true {TRUE_W}), b = {b:.4} (true {TRUE_B}), final loss {loss:.6}"
    );
    let ok = (w - TRUE_W).abs() < 1e-2 && (b - TRUE_B).abs() < 1e-2;
    println!(
        "{}",
        if ok {
            "recovered w and b within 1e-2"
        } else {
            "did NOT converge"
        }
    );
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
