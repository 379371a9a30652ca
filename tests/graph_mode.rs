//! Graph mode end to end: the TF 1 linear regression example converges.

#[allow(dead_code)]
#[path = "../examples/tf1_linear_regression.rs"]
mod tf1_linear_regression;

#[test]
fn tf1_linear_regression_converges() {
    std::env::set_var("QUIET", "1");
    let (w, b, loss) = tf1_linear_regression::train(201, 7).expect("training runs");
    // 201 full-batch steps of lr 0.01 on unit-variance inputs shrink the initial error by
    // about (1 - 0.02)^201 ≈ 0.02.
    for (got, want) in w.iter().zip(tf1_linear_regression::TRUE_W) {
        assert!((got - want).abs() < 0.15, "W = {w:?}");
    }
    assert!((b - tf1_linear_regression::TRUE_B).abs() < 0.15, "b = {b}");
    assert!(loss < 0.05, "loss = {loss}");
}

#[allow(dead_code)]
#[path = "../examples/tf1_mnist_cnn.rs"]
mod tf1_mnist_cnn;

/// The TF 1 CNN's graph (narrowed so a debug build is quick) trains: the loss of the last steps is
/// below that of the first ones, and the test accuracy is above chance.
#[test]
fn tf1_mnist_cnn_smoke_loss_decreases() {
    use ferroflow::keras::datasets::mnist;
    let ((xi, yi), (xti, yti)) = mnist::load_data().expect("bundled MNIST");
    let take = |t: &ferroflow::Tensor, n: usize| {
        let mut size = vec![-1isize; t.rank()];
        size[0] = n as isize;
        ferroflow::ops::slice(t, &vec![0; t.rank()], &size).unwrap()
    };
    let (x, y) = tf1_mnist_cnn::prepare(&take(&xi, 400), &take(&yi, 400)).unwrap();
    let (xt, yt) = tf1_mnist_cnn::prepare(&take(&xti, 200), &take(&yti, 200)).unwrap();
    let cfg = tf1_mnist_cnn::Config {
        filters1: 4,
        filters2: 8,
        dense: 32,
        epochs: 3,
        batch_size: 40,
        verbose: false,
        ..Default::default()
    };
    let r = tf1_mnist_cnn::train_on(&cfg, (&x, &y), (&xt, &yt)).expect("training runs");
    assert_eq!(r.losses.len(), 30);
    let first: f32 = r.losses[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = r.losses[25..].iter().sum::<f32>() / 5.0;
    // Ten classes: the untrained loss is about ln 10 ≈ 2.3.
    assert!(first > 1.8, "first losses {:?}", &r.losses[..5]);
    assert!(last < 0.8 * first, "loss {first} → {last}: {:?}", r.losses);
    assert!(r.test_accuracy > 0.3, "test accuracy {}", r.test_accuracy);
}
