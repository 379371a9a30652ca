//! The README's main job, `examples/linear_regression.rs`, must recover w and b to within 1e-2.

#[allow(dead_code)]
#[path = "../examples/linear_regression.rs"]
mod linear_regression;

#[test]
fn linear_regression_recovers_w_and_b() {
    std::env::set_var("QUIET", "1");
    let (w, b, loss) = linear_regression::train(1000, 201, 0.5, 42).expect("training runs");
    assert!((w - linear_regression::TRUE_W).abs() < 1e-2, "w = {w}");
    assert!((b - linear_regression::TRUE_B).abs() < 1e-2, "b = {b}");
    // The noise has variance 1e-4; the fit cannot go below it by much, nor stay far above it.
    assert!(loss < 2e-4, "loss = {loss}");
}
