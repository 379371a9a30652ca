//! The fused LSTM sequence op: forward against an independent f64 loop, gradients against finite
//! differences (eager and graph) and against the tape gradients of the same LSTM written with
//! plain ops, determinism across thread counts, errors.

use ferroflow_core::ops;
use ferroflow_core::testing::{check_gradients, test_tensor, test_values};
use ferroflow_core::{DType, Error, GradientTape, Tensor, Watchable};

fn sig(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// A plain-loop LSTM in f64 (Keras's equations and RNN mask semantics), independent of the op.
#[allow(clippy::too_many_arguments)]
fn reference(
    b: usize,
    t: usize,
    u: usize,
    xp: &[f64],
    h0: &[f64],
    c0: &[f64],
    r: &[f64],
    mask: Option<&[bool]>,
    zero_output: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut hs = vec![0.0; b * t * u];
    let mut h = h0.to_vec();
    let mut c = c0.to_vec();
    for bi in 0..b {
        let mut prev_out = vec![0.0; u];
        for s in 0..t {
            let keep = mask.is_none_or(|m| m[bi * t + s]);
            let mut z = vec![0.0; 4 * u];
            for (k, zk) in z.iter_mut().enumerate() {
                *zk = xp[(bi * t + s) * 4 * u + k];
                for j in 0..u {
                    *zk += h[bi * u + j] * r[j * 4 * u + k];
                }
            }
            let mut hn = vec![0.0; u];
            let mut cn = vec![0.0; u];
            for j in 0..u {
                let (i, f, g, o) = (
                    sig(z[j]),
                    sig(z[u + j]),
                    z[2 * u + j].tanh(),
                    sig(z[3 * u + j]),
                );
                cn[j] = f * c[bi * u + j] + i * g;
                hn[j] = o * cn[j].tanh();
            }
            let out: Vec<f64> = if keep {
                h[bi * u..(bi + 1) * u].copy_from_slice(&hn);
                c[bi * u..(bi + 1) * u].copy_from_slice(&cn);
                hn
            } else if zero_output {
                vec![0.0; u]
            } else {
                prev_out.clone()
            };
            hs[(bi * t + s) * u..(bi * t + s + 1) * u].copy_from_slice(&out);
            prev_out = out;
        }
    }
    (hs, h, c)
}

/// The same LSTM written with plain ops (matmul, split, sigmoid, tanh, where), for the tape.
fn plain_ops(
    xp: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    r: &Tensor,
    mask: Option<&Tensor>,
    zero_output: bool,
) -> (Tensor, Tensor, Tensor) {
    let (b, t) = (xp.shape()[0], xp.shape()[1]);
    let steps = ops::unstack(xp, 1).unwrap();
    let masks = mask
        .map(|m| ops::unstack(&ops::reshape(m, &[b as isize, t as isize, 1]).unwrap(), 1).unwrap());
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let zeros = ops::zeros_like(h0).unwrap();
    let mut prev = zeros.clone();
    let mut outs = Vec::new();
    for (s, x) in steps.iter().enumerate() {
        let z = ops::add(x, &ops::matmul(&h, r, false, false).unwrap()).unwrap();
        let g = ops::split(&z, ops::Split::Num(4), -1).unwrap();
        let i = ops::sigmoid(&g[0]).unwrap();
        let f = ops::sigmoid(&g[1]).unwrap();
        let cc = ops::tanh(&g[2]).unwrap();
        let o = ops::sigmoid(&g[3]).unwrap();
        let cn = ops::add(&ops::mul(&f, &c).unwrap(), &ops::mul(&i, &cc).unwrap()).unwrap();
        let hn = ops::mul(&o, &ops::tanh(&cn).unwrap()).unwrap();
        let out = match &masks {
            None => {
                h = hn.clone();
                c = cn;
                hn
            }
            Some(ms) => {
                let m = &ms[s];
                let p = if zero_output { &zeros } else { &prev };
                let out = ops::where_(m, &hn, p).unwrap();
                h = ops::where_(m, &hn, &h).unwrap();
                c = ops::where_(m, &cn, &c).unwrap();
                out
            }
        };
        prev = out.clone();
        outs.push(out);
    }
    let refs: Vec<&Tensor> = outs.iter().collect();
    (ops::stack(&refs, 1).unwrap(), h, c)
}

fn inputs(b: usize, t: usize, u: usize, seed: u64) -> Vec<Tensor> {
    vec![
        test_tensor(&[b, t, 4 * u], seed, -1.5, 1.5),
        test_tensor(&[b, u], seed + 1, -0.8, 0.8),
        test_tensor(&[b, u], seed + 2, -0.8, 0.8),
        test_tensor(&[u, 4 * u], seed + 3, -0.6, 0.6),
    ]
}

fn mask_of(b: usize, t: usize, seed: u64) -> Tensor {
    let m: Vec<bool> = test_values(b * t, seed, 0.0, 1.0)
        .iter()
        .map(|&v| v > 0.35)
        .collect();
    Tensor::from_vec(m, &[b, t]).unwrap()
}

fn flat_all(hs: &Tensor, h: &Tensor, c: &Tensor) -> Tensor {
    let f = |x: &Tensor| ops::reshape(x, &[-1]).unwrap();
    ops::concat(&[&f(hs), &f(h), &f(c)], 0).unwrap()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "{what}[{k}]: got {g}, want {w}");
    }
}

#[test]
fn lstm_sequence_forward_matches_plain_loop() {
    for (b, t, u) in [(1, 1, 1), (3, 4, 2), (5, 7, 3), (37, 3, 4)] {
        for masked in [false, true] {
            for zero_output in [false, true] {
                let x = inputs(b, t, u, 10 + t as u64);
                let m = masked.then(|| mask_of(b, t, 99 + b as u64));
                let mv = m.as_ref().map(|m| m.to_vec::<bool>().unwrap());
                let v: Vec<Vec<f64>> = x.iter().map(|x| x.to_vec::<f64>().unwrap()).collect();
                let (hs, h, c) = reference(
                    b,
                    t,
                    u,
                    &v[0],
                    &v[1],
                    &v[2],
                    &v[3],
                    mv.as_deref(),
                    zero_output,
                );
                let (ghs, gh, gc) =
                    ops::lstm_sequence(&x[0], &x[1], &x[2], &x[3], None, m.as_ref(), zero_output)
                        .unwrap();
                let tag = format!("b{b} t{t} u{u} mask {masked} zero {zero_output}");
                assert_close(&tag, &ghs.to_vec::<f64>().unwrap(), &hs, 1e-12);
                assert_close(&tag, &gh.to_vec::<f64>().unwrap(), &h, 1e-12);
                assert_close(&tag, &gc.to_vec::<f64>().unwrap(), &c, 1e-12);
                // float32 (vectorized exp) agrees within float32 accuracy.
                let x32: Vec<Tensor> = x
                    .iter()
                    .map(|x| ops::cast(x, DType::F32).unwrap())
                    .collect();
                let (hs32, _, c32) = ops::lstm_sequence(
                    &x32[0],
                    &x32[1],
                    &x32[2],
                    &x32[3],
                    None,
                    m.as_ref(),
                    zero_output,
                )
                .unwrap();
                assert_close(&tag, &hs32.to_f64_vec(), &hs, 2e-6);
                assert_close(&tag, &c32.to_f64_vec(), &c, 2e-6);
            }
        }
    }
}

#[test]
fn lstm_sequence_gradients_match_finite_differences() {
    for (b, t, u, masked, zero_output) in [
        (2, 3, 2, false, false),
        (3, 4, 2, true, false),
        (3, 4, 2, true, true),
        (1, 1, 3, false, false),
    ] {
        let mut x = inputs(b, t, u, 7);
        x.push(test_tensor(&[4 * u], 8, -0.5, 0.5));
        if masked {
            x.push(mask_of(b, t, 5));
        }
        let f = move |v: &[Tensor]| {
            let (hs, h, c) = ops::lstm_sequence(
                &v[0],
                &v[1],
                &v[2],
                &v[3],
                Some(&v[4]),
                v.get(5),
                zero_output,
            )?;
            Ok(flat_all(&hs, &h, &c))
        };
        check_gradients(f, &x, &[0, 1, 2, 3, 4])
            .unwrap_or_else(|e| panic!("b{b} t{t} u{u} mask {masked} zero {zero_output}: {e}"));
    }
}

/// "A fused kernel's gradient is tested against the unfused ops": the fused op's gradients equal
/// the tape's gradients of the same LSTM written with plain ops.
#[test]
fn lstm_sequence_gradients_match_unfused_ops() {
    for (b, t, u, masked, zero_output) in [
        (4, 1, 3, false, false),
        (4, 6, 3, false, false),
        (20, 9, 5, true, false),
        (20, 9, 5, true, true),
    ] {
        let mut x = inputs(b, t, u, 21 + t as u64);
        x.push(test_tensor(&[4 * u], 9, -0.5, 0.5));
        let m = masked.then(|| mask_of(b, t, 3));
        let w = test_tensor(&[b * t * u + 2 * b * u], 4, -1.0, 1.0);
        let grads = |fused: bool| -> Vec<Vec<f64>> {
            let tape = GradientTape::new();
            for v in &x {
                tape.watch(v);
            }
            let (hs, h, c) = if fused {
                ops::lstm_sequence(
                    &x[0],
                    &x[1],
                    &x[2],
                    &x[3],
                    Some(&x[4]),
                    m.as_ref(),
                    zero_output,
                )
                .unwrap()
            } else {
                let xp = ops::add(&x[0], &x[4]).unwrap();
                plain_ops(&xp, &x[1], &x[2], &x[3], m.as_ref(), zero_output)
            };
            let loss = ops::reduce_sum(
                &ops::mul(&flat_all(&hs, &h, &c), &w).unwrap(),
                ops::Axes::All,
                false,
            )
            .unwrap();
            let refs: Vec<&dyn Watchable> = x.iter().map(|t| t as &dyn Watchable).collect();
            tape.gradient(&loss, &refs)
                .unwrap()
                .into_iter()
                .map(|g| g.unwrap().to_vec::<f64>().unwrap())
                .collect()
        };
        let (fused, plain) = (grads(true), grads(false));
        for (k, name) in ["xp", "h0", "c0", "recurrent_kernel", "bias"]
            .iter()
            .enumerate()
        {
            assert_close(
                &format!("d{name} b{b} t{t} mask {masked} zero {zero_output}"),
                &fused[k],
                &plain[k],
                1e-10,
            );
        }
    }
}

#[test]
fn lstm_sequence_is_bit_identical_on_one_and_two_threads() {
    // 70 rows: two blocks, one per thread; 40 rows: one block, gemm's own threads.
    for b in [70, 40] {
        bit_identical(b);
    }
}

fn bit_identical(b: usize) {
    let (t, u) = (5, 8);
    let x: Vec<Tensor> = inputs(b, t, u, 3)
        .iter()
        .map(|v| ops::cast(v, DType::F32).unwrap())
        .collect();
    let m = mask_of(b, t, 8);
    let run = || {
        let tape = GradientTape::new();
        for v in &x {
            tape.watch(v);
        }
        let (hs, h, c) =
            ops::lstm_sequence(&x[0], &x[1], &x[2], &x[3], None, Some(&m), false).unwrap();
        let loss = ops::reduce_sum(&flat_all(&hs, &h, &c), ops::Axes::All, false).unwrap();
        let refs: Vec<&dyn Watchable> = x.iter().map(|t| t as &dyn Watchable).collect();
        let g = tape.gradient(&loss, &refs).unwrap();
        let mut all = hs.to_vec::<f32>().unwrap();
        for g in g {
            all.extend(g.unwrap().to_vec::<f32>().unwrap());
        }
        all.into_iter().map(f32::to_bits).collect::<Vec<u32>>()
    };
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    assert_eq!(pool(1).install(run), pool(2).install(run));
}

#[test]
fn lstm_sequence_errors_are_typed() {
    let x = inputs(2, 3, 2, 1);
    // recurrent kernel not [units, 4·units]
    let bad_r = ops::zeros(&[2, 6], DType::F64);
    let e = ops::lstm_sequence(&x[0], &x[1], &x[2], &bad_r, None, None, false).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    // batch disagreement
    let h_bad = ops::zeros(&[3, 2], DType::F64);
    let e = ops::lstm_sequence(&x[0], &h_bad, &x[2], &x[3], None, None, false).unwrap_err();
    assert!(e.to_string().contains("batch"), "{e}");
    // mixed dtypes
    let r32 = ops::cast(&x[3], DType::F32).unwrap();
    let e = ops::lstm_sequence(&x[0], &x[1], &x[2], &r32, None, None, false).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    // non-bool mask and wrong mask time
    let fm = ops::ones(&[2, 3], DType::F64);
    let e = ops::lstm_sequence(&x[0], &x[1], &x[2], &x[3], None, Some(&fm), false).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    let m = Tensor::from_vec(vec![true; 8], &[2, 4]).unwrap();
    let e = ops::lstm_sequence(&x[0], &x[1], &x[2], &x[3], None, Some(&m), false).unwrap_err();
    assert!(e.to_string().contains("time"), "{e}");
    // bias not [4·units]
    let bad_b = ops::zeros(&[6], DType::F64);
    let e = ops::lstm_sequence(&x[0], &x[1], &x[2], &x[3], Some(&bad_b), None, false).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    // integer input
    let xi = ops::zeros(&[2, 3, 8], DType::I32);
    assert!(ops::lstm_sequence(&xi, &x[1], &x[2], &x[3], None, None, false).is_err());
}
