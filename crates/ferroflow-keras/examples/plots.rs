//! Draws the pictures in `docs/img/`: `plot_model` of the seed CNN and of a two-input functional
//! model, and the training curves of a short MNIST run of the seed MLP (logged with `CSVLogger`,
//! drawn with `History::plot`; `ferroflow plot <csv> -o <png>` draws the same from the CSV).
//!
//! ```text
//! cargo run -p ferroflow-keras --example plots -- <out_dir> [epochs]
//! ```

use ferroflow_core::{ops, DType, Result, Tensor};
use ferroflow_keras::callbacks::CSVLogger;
use ferroflow_keras::datasets::mnist;
use ferroflow_keras::layers::{Concatenate, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D};
use ferroflow_keras::prelude::*;
use ferroflow_keras::utils::plot_model;

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

/// Keras's functional-API guide model, in small: a title and a body share nothing, a tag input
/// joins them; two outputs (a priority score and a department).
fn two_input() -> Result<Model> {
    let title = Input::named(&[64], "title");
    let body = Input::named(&[256], "body");
    let t = Dense::new(32)
        .activation("relu")
        .named("title_features")
        .apply(&title)?;
    let b = Dense::new(64)
        .activation("relu")
        .named("body_features")
        .apply(&body)?;
    let b = Dropout::new(0.2).named("body_dropout").apply(&b)?;
    let x = Concatenate::new().named("merge").apply([&t, &b])?;
    let priority = Dense::new(1)
        .activation("sigmoid")
        .named("priority")
        .apply(&x)?;
    let department = Dense::new(4)
        .activation("softmax")
        .named("department")
        .apply(&x)?;
    Model::new([&title, &body], [&priority, &department])
}

fn flatten(images: &Tensor) -> Result<Tensor> {
    let x = ops::mul_scalar(&ops::cast(images, DType::F32)?, 1.0 / 255.0)?;
    let n = x.shape()[0] as isize;
    ops::reshape(&x, &[n, 784])
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().unwrap_or_else(|| "docs/img".into()));
    let epochs: usize = args.next().and_then(|e| e.parse().ok()).unwrap_or(5);
    std::fs::create_dir_all(&out)
        .map_err(|e| ferroflow_core::Error::invalid("plots", e.to_string()))?;
    ferroflow_keras::utils::set_random_seed(0);

    let cnn = seed_cnn()?;
    plot_model(&cnn, out.join("seed_cnn.png"))
        .show_shapes(true)
        .show_layer_names(true)
        .dpi(96)
        .run()?;
    plot_model(&two_input()?, out.join("two_input_model.png"))
        .show_shapes(true)
        .show_layer_names(true)
        .dpi(96)
        .run()?;

    // A short MNIST run of the seed MLP on the bundled digits, with validation.
    let ((x_train, y_train), _) = mnist::load_data()?;
    let x_train = flatten(&x_train)?;
    let mut mlp = Sequential::new();
    mlp.add(Dense::new(64).activation("relu").input_shape(&[784]))?;
    mlp.add(Dense::new(64).activation("relu"))?;
    mlp.add(Dense::new(10).activation("softmax"))?;
    mlp.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])?;
    let csv = out.join("mnist_history.csv");
    let history = mlp
        .fit(&x_train, &y_train)
        .epochs(epochs)
        .batch_size(32)
        .validation_split(0.2)
        .callbacks(vec![Box::new(CSVLogger::new(&csv.to_string_lossy()))])
        .verbose(2)
        .run()?;
    history.plot_titled(
        out.join("mnist_curves.png"),
        "Seed MLP on MNIST (8,000 bundled digits)",
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
