use ferroflow_core::ops;
use ferroflow_core::testing::{assert_close, check_gradients, check_gradients_tol, test_tensor};
use ferroflow_core::{DType, Error, Tensor};

type UnaryFn = fn(&Tensor) -> ferroflow_core::Result<Tensor>;

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

#[test]
fn unary_values_match_formulas() {
    let xs = [-2.5, -1.0, -0.3, 0.0, 0.4, 1.0, 3.0];
    let x = t(&xs, &[7]);
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    #[allow(clippy::type_complexity)]
    let cases: Vec<(UnaryFn, Box<dyn Fn(f64) -> f64>)> = vec![
        (ops::neg, Box::new(|v| -v)),
        (ops::abs, Box::new(|v: f64| v.abs())),
        (
            ops::sign,
            Box::new(|v: f64| {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }),
        ),
        (ops::exp, Box::new(|v: f64| v.exp())),
        (ops::expm1, Box::new(|v: f64| v.exp_m1())),
        (ops::square, Box::new(|v| v * v)),
        (ops::sin, Box::new(|v: f64| v.sin())),
        (ops::cos, Box::new(|v: f64| v.cos())),
        (ops::tanh, Box::new(|v: f64| v.tanh())),
        (ops::sigmoid, Box::new(sig)),
        (ops::relu, Box::new(|v: f64| v.max(0.0))),
        (ops::relu6, Box::new(|v: f64| v.clamp(0.0, 6.0))),
        (
            ops::selu,
            Box::new(|v: f64| {
                let (a, s) = (1.6732632423543772, 1.0507009873554805);
                if v > 0.0 {
                    s * v
                } else {
                    s * a * (v.exp() - 1.0)
                }
            }),
        ),
        (ops::softplus, Box::new(|v: f64| (1.0 + v.exp()).ln())),
        (ops::softsign, Box::new(|v: f64| v / (1.0 + v.abs()))),
        (ops::silu, Box::new(move |v: f64| v * sig(v))),
        (
            ops::hard_sigmoid,
            Box::new(|v: f64| ((v + 3.0).clamp(0.0, 6.0)) / 6.0),
        ),
        (ops::floor, Box::new(|v: f64| v.floor())),
        (ops::ceil, Box::new(|v: f64| v.ceil())),
        (ops::erf, Box::new(|v: f64| libm_erf(v))),
    ];
    for (i, (f, r)) in cases.iter().enumerate() {
        let got = f(&x).unwrap().to_vec::<f64>().unwrap();
        let want: Vec<f64> = xs.iter().map(|&v| r(v)).collect();
        assert_close(&got, &want, 1e-12, 1e-12);
        let _ = i;
    }
    // Rounding is half to even, as tf.round.
    let r = ops::round(&t(&[0.5, 1.5, 2.5, -0.5, -1.5, 0.4], &[6])).unwrap();
    assert_eq!(
        r.to_vec::<f64>().unwrap(),
        vec![0.0, 2.0, 2.0, -0.0, -2.0, 0.0]
    );
    // GELU exact and tanh (values from the definitions).
    let g = ops::gelu(&t(&[1.0], &[1]), false)
        .unwrap()
        .item::<f64>()
        .unwrap();
    assert!((g - 0.8413447460685429).abs() < 1e-12);
    let g = ops::gelu(&t(&[1.0], &[1]), true)
        .unwrap()
        .item::<f64>()
        .unwrap();
    assert!((g - 0.8411919906082768).abs() < 1e-12);
    let l = ops::leaky_relu(&t(&[-2.0, 3.0], &[2]), 0.2).unwrap();
    assert_close(&l.to_vec::<f64>().unwrap(), &[-0.4, 3.0], 1e-15, 0.0);
    let e = ops::elu(&t(&[-1.0, 2.0], &[2]), 1.0).unwrap();
    assert_close(
        &e.to_vec::<f64>().unwrap(),
        &[(-1.0f64).exp() - 1.0, 2.0],
        1e-15,
        0.0,
    );
}

fn libm_erf(x: f64) -> f64 {
    // Abramowitz–Stegun 7.1.26 is too coarse; use the series for |x| <= 3 (enough here).
    let mut sum = 0.0;
    let mut term = x;
    let mut n = 0.0;
    while term.abs() > 1e-17 {
        sum += term / (2.0 * n + 1.0);
        n += 1.0;
        term *= -x * x / n;
    }
    2.0 / std::f64::consts::PI.sqrt() * sum
}

#[test]
fn unary_gradients_match_finite_differences() {
    // Points away from kinks (0 for relu-likes, ±3 for hard_sigmoid, 6 for relu6).
    let x = t(&[-2.3, -1.1, -0.45, 0.35, 0.9, 1.7, 2.6, 7.0], &[2, 4]);
    let pos = t(&[0.3, 0.7, 1.1, 1.9, 2.5, 3.3], &[2, 3]);
    let fs: Vec<(&str, UnaryFn)> = vec![
        ("neg", ops::neg),
        ("abs", ops::abs),
        ("exp", ops::exp),
        ("expm1", ops::expm1),
        ("square", ops::square),
        ("sin", ops::sin),
        ("cos", ops::cos),
        ("tanh", ops::tanh),
        ("sigmoid", ops::sigmoid),
        ("relu", ops::relu),
        ("relu6", ops::relu6),
        ("selu", ops::selu),
        ("softplus", ops::softplus),
        ("softsign", ops::softsign),
        ("silu", ops::silu),
        ("hard_sigmoid", ops::hard_sigmoid),
        ("erf", ops::erf),
    ];
    for (name, f) in fs {
        check_gradients(|v| f(&v[0]), std::slice::from_ref(&x), &[0])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let pos_fs: Vec<(&str, UnaryFn)> = vec![
        ("log", ops::log),
        ("log1p", ops::log1p),
        ("sqrt", ops::sqrt),
        ("rsqrt", ops::rsqrt),
        ("reciprocal", ops::reciprocal),
    ];
    for (name, f) in pos_fs {
        check_gradients(|v| f(&v[0]), std::slice::from_ref(&pos), &[0])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    check_gradients(
        |v| ops::leaky_relu(&v[0], 0.2),
        std::slice::from_ref(&x),
        &[0],
    )
    .unwrap();
    check_gradients(|v| ops::elu(&v[0], 1.3), std::slice::from_ref(&x), &[0]).unwrap();
    check_gradients(|v| ops::gelu(&v[0], false), std::slice::from_ref(&x), &[0]).unwrap();
    check_gradients(|v| ops::gelu(&v[0], true), std::slice::from_ref(&x), &[0]).unwrap();
}

#[test]
fn binary_broadcasting_values_and_gradients() {
    let a = test_tensor(&[2, 3, 4], 1, -1.0, 1.0);
    let b = test_tensor(&[3, 1], 2, 0.5, 1.5);
    let s = ops::add(&a, &b).unwrap();
    assert_eq!(s.shape(), &[2, 3, 4]);
    let (av, bv) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    let got = s.to_vec::<f64>().unwrap();
    for i in 0..2 {
        for j in 0..3 {
            for k in 0..4 {
                assert_eq!(got[i * 12 + j * 4 + k], av[i * 12 + j * 4 + k] + bv[j]);
            }
        }
    }
    type BinFn = fn(&Tensor, &Tensor) -> ferroflow_core::Result<Tensor>;
    let fs: Vec<(&str, BinFn)> = vec![
        ("add", ops::add),
        ("sub", ops::sub),
        ("mul", ops::mul),
        ("div", ops::div),
        ("maximum", ops::maximum),
        ("minimum", ops::minimum),
        ("squared_difference", ops::squared_difference),
        ("floor_mod", ops::floor_mod),
    ];
    for (name, f) in fs {
        // both broadcast directions, and a scalar
        check_gradients(|v| f(&v[0], &v[1]), &[a.clone(), b.clone()], &[0, 1])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // floor_mod is discontinuous where the divisor nears 0; `a` crosses 0, so the swapped
        // direction is checked below with a divisor bounded away from 0.
        if name != "floor_mod" {
            check_gradients(|v| f(&v[0], &v[1]), &[b.clone(), a.clone()], &[0, 1])
                .unwrap_or_else(|e| panic!("{name} (swapped): {e}"));
        }
        let c = Tensor::scalar(0.7f64);
        check_gradients(|v| f(&v[0], &v[1]), &[a.clone(), c], &[0, 1])
            .unwrap_or_else(|e| panic!("{name} (scalar): {e}"));
    }
    let num = test_tensor(&[3, 1], 8, -2.0, 2.0);
    let den = test_tensor(&[2, 3, 4], 9, 0.6, 1.4);
    check_gradients(|v| ops::floor_mod(&v[0], &v[1]), &[num, den], &[0, 1]).unwrap();
    let pos = test_tensor(&[3, 4], 3, 0.5, 2.0);
    let e = test_tensor(&[4], 4, -1.5, 1.5);
    check_gradients(|v| ops::pow(&v[0], &v[1]), &[pos, e], &[0, 1]).unwrap();
}

#[test]
fn integer_and_bool_semantics() {
    let a = Tensor::from_vec(vec![7i32, -7, 7, -7], &[4]).unwrap();
    let b = Tensor::from_vec(vec![2i32, 2, -2, -2], &[4]).unwrap();
    assert_eq!(
        ops::floor_div(&a, &b).unwrap().to_vec::<i32>().unwrap(),
        vec![3, -4, -4, 3]
    );
    assert_eq!(
        ops::floor_mod(&a, &b).unwrap().to_vec::<i32>().unwrap(),
        vec![1, 1, -1, -1]
    );
    // Integer true division gives float64, as tf.math.divide.
    let d = ops::div(&a, &b).unwrap();
    assert_eq!(d.dtype(), DType::F64);
    assert_eq!(d.to_vec::<f64>().unwrap(), vec![3.5, -3.5, -3.5, 3.5]);
    let z = Tensor::from_vec(vec![0i32; 4], &[4]).unwrap();
    assert!(ops::floor_div(&a, &z).is_err());
    let m = ops::greater(&a, &b).unwrap();
    assert_eq!(m.to_vec::<bool>().unwrap(), vec![true, false, true, false]);
    let n = ops::logical_not(&m).unwrap();
    assert_eq!(
        ops::logical_and(&m, &n).unwrap().to_vec::<bool>().unwrap(),
        vec![false; 4]
    );
    assert_eq!(
        ops::logical_or(&m, &n).unwrap().to_vec::<bool>().unwrap(),
        vec![true; 4]
    );
    let w = ops::where_(&m, &a, &b).unwrap();
    assert_eq!(w.to_vec::<i32>().unwrap(), vec![7, 2, 7, -2]);
    let c = ops::cast(
        &Tensor::from_vec(vec![1.7f32, -1.7, 0.0], &[3]).unwrap(),
        DType::I32,
    )
    .unwrap();
    assert_eq!(c.to_vec::<i32>().unwrap(), vec![1, -1, 0]);
    let bo = ops::cast(
        &Tensor::from_vec(vec![2.0f32, 0.0], &[2]).unwrap(),
        DType::Bool,
    )
    .unwrap();
    assert_eq!(bo.to_vec::<bool>().unwrap(), vec![true, false]);
    let h = ops::cast(
        &Tensor::from_vec(vec![1.5f32, -2.25], &[2]).unwrap(),
        DType::F16,
    )
    .unwrap();
    let h2 = ops::add(&h, &h).unwrap();
    assert_eq!(h2.dtype(), DType::F16);
    assert_eq!(
        ops::cast(&h2, DType::F32).unwrap().to_vec::<f32>().unwrap(),
        vec![3.0, -4.5]
    );
}

#[test]
fn where_and_clip_gradients() {
    let c = Tensor::from_vec(vec![true, false, true, false, false, true], &[2, 3]).unwrap();
    let x = test_tensor(&[2, 3], 5, -1.0, 1.0);
    let y = test_tensor(&[3], 6, -1.0, 1.0);
    check_gradients(|v| ops::where_(&c, &v[0], &v[1]), &[x.clone(), y], &[0, 1]).unwrap();
    let clipped = ops::clip_by_value_scalar(&x, -0.5, 0.5)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!(clipped.iter().all(|v| (-0.5..=0.5).contains(v)));
    check_gradients(|v| ops::clip_by_value_scalar(&v[0], -0.5, 0.5), &[x], &[0]).unwrap();
    // A round trip through float32 is linear; the step must be far above f32's resolution.
    check_gradients_tol(
        |v| ops::cast(&ops::cast(&v[0], DType::F32)?, DType::F64),
        &[test_tensor(&[3], 7, -1.0, 1.0)],
        &[0],
        1e-2,
        1e-4,
        1e-4,
    )
    .unwrap();
}

#[test]
fn errors_name_the_op_and_shapes() {
    let a = Tensor::from_vec(vec![1.0f32; 6], &[2, 3]).unwrap();
    let b = Tensor::from_vec(vec![1.0f32; 4], &[2, 2]).unwrap();
    let e = ops::add(&a, &b).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Shape { .. }), "{msg}");
    assert!(
        msg.contains("AddV2") && msg.contains("(2, 3)") && msg.contains("(2, 2)"),
        "{msg}"
    );
    let i = Tensor::from_vec(vec![1i32; 6], &[2, 3]).unwrap();
    let e = ops::mul(&a, &i).unwrap_err();
    assert!(matches!(e, Error::DType { .. }));
    assert!(
        e.to_string().contains("float32") && e.to_string().contains("int32"),
        "{e}"
    );
    assert!(ops::exp(&i).unwrap_err().to_string().contains("Exp"));
    assert!(ops::logical_and(&a, &a).is_err());
}
