//! The seeds' linear regression in Keras's words: one `Dense(1)` unit, `"sgd"` and `"mse"`:
//!
//! ```python
//! model = Sequential([Dense(1, input_shape=(1,))])
//! model.compile(optimizer='sgd', loss='mse')
//! model.fit(X, y, epochs=100)
//! ```
//!
//! Data: `y = 3·x + 2` plus a little noise. Run it with
//! `cargo run --release --example keras_linear_regression`.

use ferroflow::keras::layers::Dense;
use ferroflow::keras::prelude::*;
use ferroflow::{ops, DType, Result};

/// Fits `Dense(1)` with `"sgd"`/`"mse"` for `epochs`; returns the learned `(w, b)`.
pub fn train(epochs: usize, verbose: u8) -> Result<(f32, f32)> {
    let x = ops::random_uniform(&[256, 1], -1.0, 1.0, DType::F32, 1)?;
    let noise = ops::random_normal(&[256, 1], 0.0, 0.01, DType::F32, 2)?;
    let y = ops::add(&ops::add_scalar(&ops::mul_scalar(&x, 3.0)?, 2.0)?, &noise)?;
    let mut model = Sequential::new();
    model.add(Dense::new(1).input_shape(&[1]))?;
    model.compile("sgd", "mse", ())?;
    model.fit(&x, &y).epochs(epochs).verbose(verbose).run()?;
    let w = model.get_weights();
    Ok((w[0].to_vec::<f32>()?[0], w[1].to_vec::<f32>()?[0]))
}

#[allow(dead_code)]
fn main() -> Result<()> {
    let (w, b) = train(100, 2)?;
    println!("learned w = {w:.4}, b = {b:.4} (true: 3, 2)");
    Ok(())
}
