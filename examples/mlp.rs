//! The seeds' multilayer perceptron (Dense 64-64-10) on flattened MNIST digits:
//!
//! ```python
//! model = Sequential([Dense(64, activation='relu', input_shape=(784,)),
//!                     Dense(64, activation='relu'), Dense(10, activation='softmax')])
//! model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
//! model.fit(x_train, y_train, epochs=5, batch_size=32)
//! ```
//!
//! Run it with `cargo run --release --example mlp`.

use ferroflow::keras::datasets::mnist;
use ferroflow::keras::layers::Dense;
use ferroflow::keras::prelude::*;
use ferroflow::{ops, DType, Result, Tensor};

/// Images as float32 rows of 784 values in [0, 1].
pub fn flatten(images: &Tensor) -> Result<Tensor> {
    let x = ops::mul_scalar(&ops::cast(images, DType::F32)?, 1.0 / 255.0)?;
    let n = x.shape()[0] as isize;
    ops::reshape(&x, &[n, 784])
}

/// The seed MLP.
pub fn seed_mlp() -> Result<Sequential> {
    let mut model = Sequential::new();
    model.add(Dense::new(64).activation("relu").input_shape(&[784]))?;
    model.add(Dense::new(64).activation("relu"))?;
    model.add(Dense::new(10).activation("softmax"))?;
    Ok(model)
}

fn main() -> Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let (x_train, x_test) = (flatten(&x_train)?, flatten(&x_test)?);
    let mut model = seed_mlp()?;
    model.summary();
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])?;
    model
        .fit(&x_train, &y_train)
        .epochs(5)
        .batch_size(32)
        .run()?;
    let scores = model.evaluate(&x_test, &y_test).run()?;
    println!("test loss {:.4}, test accuracy {:.4}", scores[0], scores[1]);
    Ok(())
}
