//! The Keras examples run and learn: linear regression with Dense(1)/"sgd"/"mse".

#[allow(dead_code)]
#[path = "../examples/keras_linear_regression.rs"]
mod keras_linear_regression;

#[test]
fn dense_sgd_mse_recovers_the_line() {
    let (w, b) = keras_linear_regression::train(100, 0).expect("training runs");
    assert!((w - 3.0).abs() < 0.05, "w = {w}");
    assert!((b - 2.0).abs() < 0.05, "b = {b}");
}
