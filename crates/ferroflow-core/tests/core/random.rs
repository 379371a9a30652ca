use ferroflow_core::ops;
use ferroflow_core::{DType, Error, Generator, Tensor};

fn with_threads<R: Send>(k: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(k)
        .build()
        .unwrap()
        .install(f)
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

const N: usize = 100_000;

#[test]
fn same_seed_same_values_different_seed_differs() {
    for dt in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let a = ops::random_normal(&[64], 0.0, 1.0, dt, 11).unwrap();
        let b = ops::random_normal(&[64], 0.0, 1.0, dt, 11).unwrap();
        let c = ops::random_normal(&[64], 0.0, 1.0, dt, 12).unwrap();
        assert_eq!(a.dtype(), dt);
        assert_eq!(a.to_f64_vec(), b.to_f64_vec());
        assert_ne!(a.to_f64_vec(), c.to_f64_vec());
    }
    let u1 = ops::random_uniform(&[3, 5], 0.0, 1.0, DType::F32, 1).unwrap();
    let u2 = ops::random_uniform(&[3, 5], 0.0, 1.0, DType::F32, 2).unwrap();
    assert_eq!(u1.shape(), &[3, 5]);
    assert_ne!(u1.to_f64_vec(), u2.to_f64_vec());
    let t1 = ops::truncated_normal(&[10], 0.0, 1.0, DType::F64, 1).unwrap();
    let t2 = ops::truncated_normal(&[10], 0.0, 1.0, DType::F64, 1).unwrap();
    assert_eq!(t1.to_f64_vec(), t2.to_f64_vec());
    let i1 = ops::random_uniform_int(&[10], -5, 5, DType::I64, 3).unwrap();
    let i2 = ops::random_uniform_int(&[10], -5, 5, DType::I64, 4).unwrap();
    assert_ne!(i1.to_vec::<i64>().unwrap(), i2.to_vec::<i64>().unwrap());
}

#[test]
fn uniform_statistics_and_range() {
    for dt in [DType::F32, DType::F64] {
        let v = ops::random_uniform(&[N], -2.0, 3.0, dt, 5)
            .unwrap()
            .to_f64_vec();
        assert!(v.iter().all(|&x| (-2.0..3.0).contains(&x)));
        let (m, s) = mean_std(&v);
        // Uniform(-2, 3): mean 0.5, std 5/sqrt(12).
        assert!((m - 0.5).abs() < 0.02, "{dt:?} mean {m}");
        assert!((s - 5.0 / 12f64.sqrt()).abs() < 0.02, "{dt:?} std {s}");
    }
}

#[test]
fn normal_statistics() {
    for dt in [DType::F32, DType::F64] {
        let v = ops::random_normal(&[N], 1.5, 2.0, dt, 6)
            .unwrap()
            .to_f64_vec();
        let (m, s) = mean_std(&v);
        assert!((m - 1.5).abs() < 0.03, "{dt:?} mean {m}");
        assert!((s - 2.0).abs() < 0.03, "{dt:?} std {s}");
    }
}

#[test]
fn truncated_normal_stays_within_two_stddev() {
    for dt in [DType::F32, DType::F64] {
        let v = ops::truncated_normal(&[N], -1.0, 0.5, dt, 7)
            .unwrap()
            .to_f64_vec();
        assert!(v.iter().all(|&x| (x + 1.0).abs() <= 1.0 + 1e-6), "{dt:?}");
        let (m, s) = mean_std(&v);
        // A standard normal truncated to [-2, 2] has std ≈ 0.87962.
        assert!((m + 1.0).abs() < 0.01, "{dt:?} mean {m}");
        assert!((s - 0.5 * 0.87962).abs() < 0.01, "{dt:?} std {s}");
    }
}

#[test]
fn uniform_int_range_and_statistics() {
    let v = ops::random_uniform_int(&[N], -3, 7, DType::I32, 8).unwrap();
    assert_eq!(v.dtype(), DType::I32);
    let v = v.to_vec::<i32>().unwrap();
    assert!(v.iter().all(|x| (-3..7).contains(x)));
    for k in -3..7 {
        let c = v.iter().filter(|&&x| x == k).count() as f64 / N as f64;
        assert!((c - 0.1).abs() < 0.01, "value {k}: frequency {c}");
    }
    // random_uniform with an integer dtype forwards to the integer generator.
    let w = ops::random_uniform(&[10], 0.0, 4.0, DType::I64, 8).unwrap();
    assert!(w
        .to_vec::<i64>()
        .unwrap()
        .iter()
        .all(|x| (0..4).contains(x)));
    assert!(matches!(
        ops::random_uniform_int(&[2], 3, 3, DType::I32, 0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        ops::random_uniform_int(&[2], 0, 3, DType::F32, 0),
        Err(Error::DType { .. })
    ));
    assert!(ops::random_normal(&[2], 0.0, 1.0, DType::Bool, 0).is_err());
}

#[test]
fn values_do_not_depend_on_thread_count() {
    let run = || {
        vec![
            ops::random_uniform(&[50_001], 0.0, 1.0, DType::F32, 9)
                .unwrap()
                .to_f64_vec(),
            ops::random_normal(&[50_001], 0.0, 1.0, DType::F64, 9)
                .unwrap()
                .to_f64_vec(),
            ops::truncated_normal(&[50_001], 0.0, 1.0, DType::F32, 9)
                .unwrap()
                .to_f64_vec(),
            ops::random_uniform_int(&[50_001], 0, 1000, DType::I64, 9)
                .unwrap()
                .to_f64_vec(),
            {
                let g = Generator::from_seed(9);
                g.normal(&[10_000], 0.0, 1.0, DType::F32).unwrap();
                g.uniform(&[10_000], 0.0, 1.0, DType::F64)
                    .unwrap()
                    .to_f64_vec()
            },
        ]
    };
    let one = with_threads(1, run);
    let two = with_threads(2, run);
    assert_eq!(one, two);
}

#[test]
fn shuffle_permutes_rows_and_is_not_differentiable() {
    let x = Tensor::from_vec((0..20).map(|v| v as f64).collect::<Vec<_>>(), &[10, 2]).unwrap();
    let y = ops::random_shuffle(&x, 3).unwrap();
    assert_eq!(y.shape(), &[10, 2]);
    let v = y.to_vec::<f64>().unwrap();
    let mut firsts: Vec<i64> = Vec::new();
    for r in 0..10 {
        // Rows stay intact: (2k, 2k+1).
        assert_eq!(v[2 * r + 1], v[2 * r] + 1.0);
        assert_eq!(v[2 * r] as i64 % 2, 0);
        firsts.push(v[2 * r] as i64 / 2);
    }
    assert_ne!(
        firsts,
        (0..10).collect::<Vec<_>>(),
        "seed 3 should move something"
    );
    firsts.sort_unstable();
    assert_eq!(firsts, (0..10).collect::<Vec<_>>());
    assert_eq!(
        ops::random_shuffle(&x, 3).unwrap().to_vec::<f64>().unwrap(),
        v
    );
    // Any dtype, and a non-contiguous input.
    let b = Tensor::from_vec(vec![true, false, false], &[3]).unwrap();
    let bs = ops::random_shuffle(&b, 1)
        .unwrap()
        .to_vec::<bool>()
        .unwrap();
    assert_eq!(bs.iter().filter(|&&t| t).count(), 1);
    let xt = ops::transpose(&x, &[1, 0]).unwrap();
    let ys = ops::random_shuffle(&xt, 0).unwrap();
    assert_eq!(ys.shape(), &[2, 10]);
    // No gradient, as TensorFlow's RandomShuffle.
    let tape = ferroflow_core::GradientTape::new();
    tape.watch(&x);
    let y = ops::random_shuffle(&x, 3).unwrap();
    let s = ops::reduce_sum(&y, ops::Axes::All, false).unwrap();
    assert!(matches!(
        tape.gradient(&s, &[&x]),
        Err(Error::NoGradient { .. })
    ));
}

#[test]
fn generator_advances_and_replays() {
    let g = Generator::from_seed(123);
    assert_eq!(g.seed(), 123);
    let seq = |g: &Generator| {
        vec![
            g.uniform(&[5], 0.0, 1.0, DType::F32).unwrap().to_f64_vec(),
            g.uniform(&[5], 0.0, 1.0, DType::F32).unwrap().to_f64_vec(),
            g.normal(&[5], 0.0, 1.0, DType::F64).unwrap().to_f64_vec(),
            g.truncated_normal(&[5], 0.0, 1.0, DType::F32)
                .unwrap()
                .to_f64_vec(),
            g.truncated_normal(&[5], 0.0, 1.0, DType::F32)
                .unwrap()
                .to_f64_vec(),
            g.uniform_int(&[5], 0, 1 << 30, DType::I64)
                .unwrap()
                .to_f64_vec(),
            g.uniform_int(&[5], 0, 1 << 30, DType::I64)
                .unwrap()
                .to_f64_vec(),
            g.shuffle(&Tensor::from_vec((0..8).collect::<Vec<i32>>(), &[8]).unwrap())
                .unwrap()
                .to_f64_vec(),
        ]
    };
    let a = seq(&g);
    assert_ne!(a[0], a[1]);
    assert_ne!(a[3], a[4]);
    assert_ne!(a[5], a[6]);
    let b = seq(&Generator::from_seed(123));
    assert_eq!(a, b);
    let c = seq(&Generator::from_seed(124));
    assert_ne!(a, c);
    // Errors do not consume the stream.
    let g1 = Generator::from_seed(5);
    assert!(g1.uniform_int(&[3], 2, 1, DType::I32).is_err());
    assert!(g1.normal(&[3], 0.0, 1.0, DType::I32).is_err());
    let g2 = Generator::from_seed(5);
    assert_eq!(
        g1.normal(&[3], 0.0, 1.0, DType::F32).unwrap().to_f64_vec(),
        g2.normal(&[3], 0.0, 1.0, DType::F32).unwrap().to_f64_vec()
    );
}
