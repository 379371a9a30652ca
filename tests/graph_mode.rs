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
