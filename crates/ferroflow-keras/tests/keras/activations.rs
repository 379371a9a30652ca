//! `keras.activations`: every name resolves, and each activation's values match its formula,
//! written here in plain f64.

use ferroflow_core::Tensor;
use ferroflow_keras::activations::{self, Activation, NAMES};

const XS: [f64; 9] = [-5.0, -3.0, -1.5, -0.5, 0.0, 0.25, 1.0, 2.5, 7.0];

fn apply(a: &Activation, xs: &[f64]) -> Vec<f64> {
    let x = Tensor::from_vec(xs.to_vec(), &[xs.len()]).unwrap();
    a.apply(&x).unwrap().to_vec::<f64>().unwrap()
}

fn check(name: &str, f: impl Fn(f64) -> f64) {
    let a = Activation::get(name).unwrap();
    let got = apply(&a, &XS);
    for (x, g) in XS.iter().zip(&got) {
        let want = f(*x);
        assert!(
            (g - want).abs() <= 1e-12 + 1e-10 * want.abs(),
            "{name}({x}) = {g}, formula gives {want}"
        );
    }
}

/// erf by composite Simpson integration of 2/√π·e^{-t²} (independent of the library's erf).
fn erf(x: f64) -> f64 {
    let n = 2000;
    let h = x / n as f64;
    let f = |t: f64| (-t * t).exp();
    let mut s = f(0.0) + f(x);
    for i in 1..n {
        let t = i as f64 * h;
        s += if i % 2 == 1 { 4.0 } else { 2.0 } * f(t);
    }
    s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn every_name_resolves_to_itself() {
    for &n in NAMES {
        let a = Activation::get(n).unwrap_or_else(|e| panic!("{n}: {e}"));
        // "swish" and "silu" are one function; Keras 3 names it "silu".
        let expect = match n {
            "swish" => "silu",
            "hard_swish" => "hard_silu",
            _ => n,
        };
        assert_eq!(a.name(), expect);
    }
    assert!(Activation::get("linear").unwrap().is_linear());
}

#[test]
fn unknown_name_lists_the_valid_ones() {
    let e = Activation::get("rleu").unwrap_err().to_string();
    assert!(e.contains("rleu"), "{e}");
    for &n in NAMES {
        assert!(e.contains(n), "{e} should list {n}");
    }
}

#[test]
fn elementwise_values_match_formulas() {
    check("linear", |x| x);
    check("relu", |x| x.max(0.0));
    check("relu6", |x| x.clamp(0.0, 6.0));
    check("sigmoid", sigmoid);
    check("tanh", |x| x.tanh());
    check("elu", |x| if x > 0.0 { x } else { x.exp() - 1.0 });
    let (alpha, scale) = (1.673_263_242_354_377_3, 1.050_700_987_355_480_5);
    check("selu", move |x| {
        scale * if x > 0.0 { x } else { alpha * (x.exp() - 1.0) }
    });
    check("gelu", |x| 0.5 * x * (1.0 + erf(x / 2f64.sqrt())));
    check("swish", |x| x * sigmoid(x));
    check("silu", |x| x * sigmoid(x));
    check("softplus", |x| (1.0 + x.exp()).ln());
    check("softsign", |x| x / (1.0 + x.abs()));
    // Keras 3: hard_sigmoid(x) = relu6(x + 3) / 6.
    check("hard_sigmoid", |x| (x + 3.0).clamp(0.0, 6.0) / 6.0);
    // keras.activations.leaky_relu's default negative_slope is 0.2.
    check("leaky_relu", |x| if x >= 0.0 { x } else { 0.2 * x });
    check("exponential", |x| x.exp());
    let softplus = |x: f64| (1.0 + x.exp()).ln();
    check("mish", move |x| x * softplus(x).tanh());
    check("log_sigmoid", |x| sigmoid(x).ln());
    check("hard_silu", |x| x * (x + 3.0).clamp(0.0, 6.0) / 6.0);
    check("hard_swish", |x| x * (x + 3.0).clamp(0.0, 6.0) / 6.0);
    check("hard_tanh", |x| x.clamp(-1.0, 1.0));
    // celu(x, alpha=1) = max(0, x) + min(0, alpha·(e^(x/alpha) - 1)).
    check("celu", |x| x.max(0.0) + (x.exp() - 1.0).min(0.0));
    check("tanh_shrink", |x| x - x.tanh());
}

#[test]
fn leaky_relu_takes_its_slope() {
    let got = apply(&Activation::LeakyRelu(0.5), &[-2.0, 3.0]);
    assert_eq!(got, vec![-1.0, 3.0]);
}

#[test]
fn softmax_and_log_softmax_over_the_last_axis() {
    let rows = [[1.0, 2.0, 3.0], [-1.0, 0.0, 10.0]];
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let x = Tensor::from_vec(flat, &[2, 3]).unwrap();
    let sm = activations::softmax(&x).unwrap().to_vec::<f64>().unwrap();
    let lsm = Activation::get("log_softmax")
        .unwrap()
        .apply(&x)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    for (r, row) in rows.iter().enumerate() {
        let z: f64 = row.iter().map(|v| v.exp()).sum();
        for (c, v) in row.iter().enumerate() {
            let p = v.exp() / z;
            assert!((sm[r * 3 + c] - p).abs() < 1e-12);
            assert!((lsm[r * 3 + c] - p.ln()).abs() < 1e-12);
        }
    }
}

#[test]
fn softmax_and_sigmoid_remember_their_logits() {
    let x = Tensor::from_vec(vec![0.5f64, -1.0], &[1, 2]).unwrap();
    let y = activations::sigmoid(&x).unwrap();
    let (logits, kind) = activations::keras_logits(&y).expect("logits remembered");
    assert_eq!(kind, activations::LogitsKind::Sigmoid);
    assert_eq!(logits.to_vec::<f64>().unwrap(), vec![0.5, -1.0]);
    let y = activations::softmax(&x).unwrap();
    assert_eq!(
        activations::keras_logits(&y).unwrap().1,
        activations::LogitsKind::Softmax
    );
    let r = activations::relu(&x).unwrap();
    assert!(activations::keras_logits(&r).is_none());
}

#[test]
fn custom_activation_is_called_by_name() {
    let a = Activation::custom("double", |x| ferroflow_core::ops::mul_scalar(x, 2.0));
    assert_eq!(a.name(), "double");
    assert_eq!(apply(&a, &[1.5, -1.0]), vec![3.0, -2.0]);
}

#[test]
fn every_activation_has_correct_gradients() {
    let x = ferroflow_core::testing::test_tensor(&[3, 4], 17, -4.0, 4.0);
    for &n in NAMES {
        let a = Activation::get(n).unwrap();
        ferroflow_core::testing::check_gradients(|xs| a.apply(&xs[0]), &[x.clone()], &[0])
            .unwrap_or_else(|e| panic!("{n}: {e}"));
    }
}
