//! `keras.initializers`: fans, distributions against Keras's formulas (keras-reference.md §7),
//! seeding, Orthogonal, Identity and the constants.

use ferroflow_core::DType;
use ferroflow_keras::initializers::{compute_fans, Distribution, FanMode, Initializer, NAMES};
use ferroflow_keras::utils::set_random_seed;

fn draw(init: &Initializer, shape: &[usize]) -> Vec<f64> {
    let t = init.init(shape, DType::F32).unwrap();
    assert_eq!(t.shape(), shape);
    assert_eq!(t.dtype(), DType::F32);
    t.to_f64_vec()
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// Keras's fans, written out: 2-D (in, out); N-D kernels multiply by the receptive field.
fn keras_fans(shape: &[usize]) -> (f64, f64) {
    match shape.len() {
        0 => (1.0, 1.0),
        1 => (shape[0] as f64, shape[0] as f64),
        2 => (shape[0] as f64, shape[1] as f64),
        r => {
            let rf: usize = shape[..r - 2].iter().product();
            ((shape[r - 2] * rf) as f64, (shape[r - 1] * rf) as f64)
        }
    }
}

#[test]
fn fans_of_dense_and_conv_shapes() {
    assert_eq!(compute_fans(&[784, 128]), (784.0, 128.0));
    assert_eq!(compute_fans(&[7]), (7.0, 7.0));
    assert_eq!(compute_fans(&[]), (1.0, 1.0));
    // Conv2D kernel [kh, kw, in, out]: fan_in = 3·3·16, fan_out = 3·3·32.
    assert_eq!(compute_fans(&[3, 3, 16, 32]), (144.0, 288.0));
    // Conv1D [k, in, out].
    assert_eq!(compute_fans(&[5, 4, 8]), (20.0, 40.0));
}

/// A uniform initializer: every value within ±limit, the extremes reached, variance limit²/3.
fn check_uniform(init: Initializer, shape: &[usize], limit: f64) {
    let v = draw(&init, shape);
    let max = v.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
    assert!(max <= limit * (1.0 + 1e-6), "{init:?}: {max} > {limit}");
    assert!(max > 0.98 * limit, "{init:?}: max {max} far below {limit}");
    let (m, s) = mean_std(&v);
    let want = limit / 3f64.sqrt();
    assert!(m.abs() < 0.02 * limit, "{init:?}: mean {m}");
    assert!(
        (s / want - 1.0).abs() < 0.03,
        "{init:?}: std {s}, want {want}"
    );
}

/// A truncated-normal VarianceScaling initializer: values within 2σ of the pre-truncation σ
/// (= √(scale/n)/0.8796…), and the sample std equal to √(scale/n).
fn check_truncated(init: Initializer, shape: &[usize], target_var: f64) {
    let v = draw(&init, shape);
    let sigma = target_var.sqrt() / 0.879_625_661_034_239_8;
    let max = v.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
    assert!(
        max <= 2.0 * sigma * (1.0 + 1e-6),
        "{init:?}: {max} beyond 2σ = {}",
        2.0 * sigma
    );
    assert!(max > 1.9 * sigma, "{init:?}: max {max}");
    let (m, s) = mean_std(&v);
    assert!(m.abs() < 0.02 * sigma, "{init:?}: mean {m}");
    let want = target_var.sqrt();
    assert!(
        (s / want - 1.0).abs() < 0.03,
        "{init:?}: std {s}, want {want}"
    );
}

#[test]
fn glorot_he_lecun_uniform_bounds() {
    let s = [200, 300];
    let (fi, fo) = keras_fans(&s);
    check_uniform(Initializer::glorot_uniform(), &s, (6.0 / (fi + fo)).sqrt());
    let c = [3, 3, 32, 64];
    let (fi, fo) = keras_fans(&c);
    check_uniform(Initializer::glorot_uniform(), &c, (6.0 / (fi + fo)).sqrt());
    check_uniform(Initializer::he_uniform(), &c, (6.0 / fi).sqrt());
    check_uniform(
        Initializer::lecun_uniform(),
        &[400, 100],
        (3.0f64 / 400.0).sqrt(),
    );
    check_uniform(
        Initializer::get("glorot_uniform").unwrap(),
        &s,
        (6.0f64 / 500.0).sqrt(),
    );
}

#[test]
fn glorot_he_lecun_normal_stddev() {
    let s = [300, 200];
    check_truncated(Initializer::glorot_normal(), &s, 2.0 / 500.0);
    let c = [3, 3, 16, 64];
    let (fi, _) = keras_fans(&c);
    check_truncated(Initializer::he_normal(), &c, 2.0 / fi);
    check_truncated(Initializer::lecun_normal(), &[400, 150], 1.0 / 400.0);
    // VarianceScaling's default (scale 1, fan_in, truncated normal).
    check_truncated(
        Initializer::get("variance_scaling").unwrap(),
        &[250, 240],
        1.0 / 250.0,
    );
}

#[test]
fn variance_scaling_modes_and_untruncated_normal() {
    let init = Initializer::variance_scaling(3.0, FanMode::FanOut, Distribution::UntruncatedNormal);
    let v = draw(&init, &[100, 500]);
    let (m, s) = mean_std(&v);
    let want = (3.0f64 / 500.0).sqrt();
    assert!(m.abs() < 0.02 * want);
    assert!((s / want - 1.0).abs() < 0.03, "std {s}, want {want}");
    // Untruncated: some values lie beyond 2σ (about 4.6% of them).
    let beyond = v.iter().filter(|x| x.abs() > 2.0 * want).count() as f64 / v.len() as f64;
    assert!((beyond - 0.0455).abs() < 0.01, "{beyond}");
    // scale is divided by max(1, n): a fan below 1 does not blow up.
    let init = Initializer::variance_scaling(1.0, FanMode::FanAvg, Distribution::Uniform);
    let v = draw(&init, &[0, 3]);
    assert!(v.is_empty());
}

#[test]
fn random_normal_uniform_and_truncated() {
    let v = draw(&Initializer::random_normal(1.0, 0.5), &[50_000]);
    let (m, s) = mean_std(&v);
    assert!((m - 1.0).abs() < 0.01 && (s - 0.5).abs() < 0.01, "{m} {s}");
    let v = draw(&Initializer::get("random_uniform").unwrap(), &[50_000]);
    assert!(v.iter().all(|x| (-0.05..=0.05).contains(x)));
    let (m, s) = mean_std(&v);
    assert!(m.abs() < 0.001 && (s - 0.1 / 12f64.sqrt()).abs() < 0.001);
    // TruncatedNormal(0, 0.05): within 2σ, std 0.05·0.8796 after truncation.
    let v = draw(&Initializer::get("truncated_normal").unwrap(), &[50_000]);
    assert!(v.iter().all(|x| x.abs() <= 0.1 + 1e-7));
    let (_, s) = mean_std(&v);
    assert!((s / (0.05 * 0.879_625_661) - 1.0).abs() < 0.03, "{s}");
    let v = draw(&Initializer::get("normal").unwrap(), &[50_000]);
    let (_, s) = mean_std(&v);
    assert!((s - 0.05).abs() < 0.002);
}

#[test]
fn seeded_initializers_repeat_their_values() {
    for init in [
        Initializer::glorot_uniform(),
        Initializer::he_normal(),
        Initializer::random_normal(0.0, 1.0),
        Initializer::random_uniform(-1.0, 1.0),
        Initializer::get("truncated_normal").unwrap(),
        Initializer::get("orthogonal").unwrap(),
    ] {
        let a = init.clone().with_seed(7);
        assert_eq!(draw(&a, &[6, 4]), draw(&a, &[6, 4]), "{init:?}");
        let b = init.clone().with_seed(8);
        assert_ne!(draw(&a, &[6, 4]), draw(&b, &[6, 4]), "{init:?}");
    }
}

#[test]
fn unseeded_initializers_follow_the_session_seed() {
    let init = Initializer::glorot_uniform();
    set_random_seed(42);
    let a1 = draw(&init, &[5, 5]);
    let a2 = draw(&init, &[5, 5]);
    assert_ne!(a1, a2, "consecutive unseeded draws differ");
    set_random_seed(42);
    assert_eq!(draw(&init, &[5, 5]), a1);
    assert_eq!(draw(&init, &[5, 5]), a2);
    set_random_seed(43);
    assert_ne!(draw(&init, &[5, 5]), a1);
}

/// `MᵀM` of a row-major `rows x cols` matrix (cols x cols).
fn gram_cols(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut g = vec![0.0; cols * cols];
    for i in 0..cols {
        for j in 0..cols {
            g[i * cols + j] = (0..rows).map(|r| m[r * cols + i] * m[r * cols + j]).sum();
        }
    }
    g
}

/// `MMᵀ` (rows x rows).
fn gram_rows(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut g = vec![0.0; rows * rows];
    for i in 0..rows {
        for j in 0..rows {
            g[i * rows + j] = (0..cols).map(|c| m[i * cols + c] * m[j * cols + c]).sum();
        }
    }
    g
}

fn assert_scaled_identity(g: &[f64], n: usize, s: f64) {
    for i in 0..n {
        for j in 0..n {
            let want = if i == j { s } else { 0.0 };
            assert!(
                (g[i * n + j] - want).abs() < 1e-5,
                "[{i},{j}] = {}",
                g[i * n + j]
            );
        }
    }
}

#[test]
fn orthogonal_tall_wide_conv_and_gain() {
    let orth = |gain: f64| Initializer::Orthogonal {
        gain,
        seed: Some(3),
    };
    // Tall: orthonormal columns.
    let q = draw(&orth(1.0), &[8, 5]);
    assert_scaled_identity(&gram_cols(&q, 8, 5), 5, 1.0);
    // Wide: orthonormal rows.
    let q = draw(&orth(1.0), &[3, 7]);
    assert_scaled_identity(&gram_rows(&q, 3, 7), 3, 1.0);
    // Square, gain 2: QᵀQ = 4I.
    let q = draw(&orth(2.0), &[6, 6]);
    assert_scaled_identity(&gram_cols(&q, 6, 6), 6, 4.0);
    // A conv kernel is flattened to (∏shape[..-1], shape[-1]).
    let q = draw(&orth(1.0), &[3, 3, 4, 8]);
    assert_scaled_identity(&gram_cols(&q, 36, 8), 8, 1.0);
    // float64 too.
    let q = orth(1.0).init(&[5, 2], DType::F64).unwrap();
    assert_eq!(q.dtype(), DType::F64);
    assert!(Initializer::get("orthogonal")
        .unwrap()
        .init(&[4], DType::F32)
        .is_err());
}

#[test]
fn identity_zeros_ones_constant() {
    let v = draw(&Initializer::Identity { gain: 2.0 }, &[3, 4]);
    for r in 0..3 {
        for c in 0..4 {
            assert_eq!(v[r * 4 + c], if r == c { 2.0 } else { 0.0 });
        }
    }
    let e = Initializer::get("identity")
        .unwrap()
        .init(&[2, 2, 2], DType::F32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Identity") && e.contains("2-D"), "{e}");
    assert!(draw(&Initializer::Zeros, &[2, 3]).iter().all(|&x| x == 0.0));
    assert!(draw(&Initializer::get("ones").unwrap(), &[4])
        .iter()
        .all(|&x| x == 1.0));
    assert!(draw(&Initializer::Constant(2.5), &[2, 2])
        .iter()
        .all(|&x| x == 2.5));
    assert!(draw(&Initializer::get("constant").unwrap(), &[2])
        .iter()
        .all(|&x| x == 0.0));
}

#[test]
fn names_resolve_and_unknown_names_list_them() {
    for &n in NAMES {
        let i = Initializer::get(n).unwrap_or_else(|e| panic!("{n}: {e}"));
        i.init(&[4, 4], DType::F32).unwrap();
    }
    let class = |n: &str| Initializer::get(n).unwrap().class_name().to_string();
    assert_eq!(class("glorot_uniform"), "GlorotUniform");
    assert_eq!(class("glorot_normal"), "GlorotNormal");
    assert_eq!(class("he_uniform"), "HeUniform");
    assert_eq!(class("he_normal"), "HeNormal");
    assert_eq!(class("lecun_uniform"), "LecunUniform");
    assert_eq!(class("lecun_normal"), "LecunNormal");
    assert_eq!(class("orthogonal"), "Orthogonal");
    // Keras also accepts the class names.
    for c in [
        "GlorotUniform",
        "GlorotNormal",
        "HeUniform",
        "HeNormal",
        "LecunUniform",
        "LecunNormal",
        "Zeros",
        "Ones",
        "RandomNormal",
        "RandomUniform",
        "TruncatedNormal",
        "Orthogonal",
        "Identity",
    ] {
        assert_eq!(class(c), c);
    }
    let e = Initializer::get("glorot").unwrap_err().to_string();
    assert!(e.contains("glorot"));
    for &n in NAMES {
        assert!(e.contains(n), "{e} should list {n}");
    }
}

#[test]
fn custom_initializer_gets_a_seed() {
    let init = Initializer::custom("twos", |shape, dtype, _seed| {
        Ok(ferroflow_core::ops::fill(shape, dtype, 2.0))
    });
    assert_eq!(init.class_name(), "twos");
    assert_eq!(draw(&init, &[2]), vec![2.0, 2.0]);
}
