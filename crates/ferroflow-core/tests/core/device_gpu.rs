//! GPU ops against the CPU ops on random inputs (feature `cuda`, a GPU machine). Each test
//! prints "skipped" and passes when no GPU is usable (the default build, or no CUDA driver/GPU),
//! so the file builds and runs everywhere; on a GPU machine it is the backend's check
//! (docs/cuda.md says how to build the binary here and run it there).
//!
//! Tolerance: 1e-4 relative for float32 (with an absolute floor of 1e-4 near zero), 1e-10 for
//! float64. The CPU result is the reference: the CPU ops are checked against hand and
//! reference computations in the other test modules.

use ferroflow_core::device::{self, Device};
use ferroflow_core::op::execute1;
use ferroflow_core::ops::{self, binary::Binary, binary::BinaryOp, unary::Unary, unary::UnaryOp};
use ferroflow_core::{DType, GradientTape, Tensor};

/// GPU 0, or `None` (with a message) when no GPU is usable.
fn gpu() -> Option<Device> {
    if device::gpu_count() == 0 {
        eprintln!(
            "skipped: no usable GPU (probe: {:?}); build with --features cuda and run on a GPU machine",
            device::probe()
        );
        return None;
    }
    Some(Device::Gpu(0))
}

/// Deterministic values in [lo, hi) (a 64-bit LCG, independent of ferroflow's generators).
fn values(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            lo + ((s >> 11) as f64 / (1u64 << 53) as f64) * (hi - lo)
        })
        .collect()
}

fn rand(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f64_slice(dtype, &values(n, seed, -2.0, 2.0), shape).unwrap()
}

fn assert_close(cpu: &Tensor, gpu: &Tensor, what: &str) {
    assert_eq!(gpu.device(), Device::Gpu(0), "{what}: result left the GPU");
    let host = gpu.to_device(Device::Cpu).unwrap();
    assert_eq!(host.device(), Device::Cpu);
    assert_eq!(host.shape(), cpu.shape(), "{what}: shape");
    assert_eq!(host.dtype(), cpu.dtype(), "{what}: dtype");
    let tol = if cpu.dtype() == DType::F64 {
        1e-10
    } else {
        1e-4
    };
    for (i, (a, b)) in cpu.to_f64_vec().iter().zip(host.to_f64_vec()).enumerate() {
        if a.is_nan() {
            assert!(b.is_nan(), "{what}[{i}]: cpu NaN, gpu {b}");
            continue;
        }
        let ok = (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0) || a == &b;
        assert!(ok, "{what}[{i}]: cpu {a} vs gpu {b}");
    }
}

const UNARY: [UnaryOp; 30] = [
    UnaryOp::Neg,
    UnaryOp::Abs,
    UnaryOp::Sign,
    UnaryOp::Exp,
    UnaryOp::Expm1,
    UnaryOp::Log,
    UnaryOp::Log1p,
    UnaryOp::Sqrt,
    UnaryOp::Rsqrt,
    UnaryOp::Square,
    UnaryOp::Reciprocal,
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Relu,
    UnaryOp::Relu6,
    UnaryOp::LeakyRelu(0.2),
    UnaryOp::Elu(0.7),
    UnaryOp::Selu,
    UnaryOp::Gelu,
    UnaryOp::GeluTanh,
    UnaryOp::Softplus,
    UnaryOp::Softsign,
    UnaryOp::Silu,
    UnaryOp::HardSigmoid,
    UnaryOp::Floor,
    UnaryOp::Ceil,
    UnaryOp::Round,
    UnaryOp::Erf,
];

#[test]
fn gpu_unary_ops_match_cpu() {
    let Some(g) = gpu() else { return };
    for dtype in [DType::F32, DType::F64] {
        for (i, &op) in UNARY.iter().enumerate() {
            // Positive inputs where the function needs them; halves for Round's ties.
            let x = match op {
                UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt => {
                    let v = values(3 * 37, i as u64, 0.1, 4.0);
                    Tensor::from_f64_slice(dtype, &v, &[3, 37]).unwrap()
                }
                UnaryOp::Log1p => {
                    let v = values(3 * 37, i as u64, -0.9, 4.0);
                    Tensor::from_f64_slice(dtype, &v, &[3, 37]).unwrap()
                }
                UnaryOp::Round => {
                    let v: Vec<f64> = (0..3 * 37).map(|k| (k as f64 - 55.0) * 0.5).collect();
                    Tensor::from_f64_slice(dtype, &v, &[3, 37]).unwrap()
                }
                _ => rand(&[3, 37], dtype, i as u64),
            };
            let want = execute1(Unary(op), &[x.clone()]).unwrap();
            let got = execute1(Unary(op), &[x.to_device(g).unwrap()]).unwrap();
            assert_close(&want, &got, &format!("{op:?} {dtype:?}"));
        }
    }
}

#[test]
fn gpu_binary_ops_with_broadcasting_and_views_match_cpu() {
    let Some(g) = gpu() else { return };
    let ops_ = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::FloorDiv,
        BinaryOp::Mod,
        BinaryOp::SquaredDifference,
    ];
    let shapes: [(&[usize], &[usize]); 4] = [
        (&[4, 5], &[4, 5]),
        (&[2, 1, 5], &[3, 1]),
        (&[7], &[]),
        (&[1, 6], &[6, 1]),
    ];
    for dtype in [DType::F32, DType::F64] {
        for (i, &op) in ops_.iter().enumerate() {
            for (j, &(sa, sb)) in shapes.iter().enumerate() {
                let seed = (i * 10 + j) as u64;
                let a = if op == BinaryOp::Pow {
                    let n = sa.iter().product();
                    Tensor::from_f64_slice(dtype, &values(n, seed, 0.1, 3.0), sa).unwrap()
                } else {
                    rand(sa, dtype, seed)
                };
                // Divisors kept away from 0.
                let nb = sb.iter().product();
                let b =
                    Tensor::from_f64_slice(dtype, &values(nb, seed + 99, 0.5, 2.0), sb).unwrap();
                let b = ops::mul(&b, &Tensor::scalar_of(dtype, -1.0)).unwrap();
                let want = execute1(Binary(op), &[a.clone(), b.clone()]).unwrap();
                let (ga, gb) = (a.to_device(g).unwrap(), b.to_device(g).unwrap());
                let got = execute1(Binary(op), &[ga, gb]).unwrap();
                assert_close(&want, &got, &format!("{op:?} {sa:?} {sb:?} {dtype:?}"));
            }
        }
        // A transposed (strided) GPU view as input.
        let a = rand(&[3, 4], dtype, 1);
        let b = rand(&[4, 3], dtype, 2);
        let want = ops::add(&ops::transpose(&a, &[]).unwrap(), &b).unwrap();
        let ga = ops::transpose(&a.to_device(g).unwrap(), &[]).unwrap();
        assert_eq!(ga.device(), g, "a view stays on the GPU");
        let got = ops::add(&ga, &b.to_device(g).unwrap()).unwrap();
        assert_close(&want, &got, "add of a transposed view");
        // A host scalar (rank 0) follows the GPU input.
        let got = ops::mul(&ga, &Tensor::scalar_of(dtype, 3.0)).unwrap();
        let want = ops::mul(
            &ops::transpose(&a, &[]).unwrap(),
            &Tensor::scalar_of(dtype, 3.0),
        )
        .unwrap();
        assert_close(&want, &got, "mul by a host scalar");
    }
}

#[test]
fn gpu_matmul_matches_cpu() {
    let Some(g) = gpu() else { return };
    let cases: [(&[usize], &[usize], bool, bool); 6] = [
        (&[33, 17], &[17, 9], false, false),
        (&[17, 33], &[17, 9], true, false),
        (&[33, 17], &[9, 17], false, true),
        (&[17, 33], &[9, 17], true, true),
        (&[4, 5, 6], &[4, 6, 3], false, false),
        (&[2, 1, 5, 6], &[3, 6, 2], false, false),
    ];
    for dtype in [DType::F32, DType::F64] {
        for (i, &(sa, sb, ta, tb)) in cases.iter().enumerate() {
            let a = rand(sa, dtype, 2 * i as u64);
            let b = rand(sb, dtype, 2 * i as u64 + 1);
            let want = ops::matmul(&a, &b, ta, tb).unwrap();
            let got =
                ops::matmul(&a.to_device(g).unwrap(), &b.to_device(g).unwrap(), ta, tb).unwrap();
            assert_close(
                &want,
                &got,
                &format!("matmul {sa:?} {sb:?} {ta} {tb} {dtype:?}"),
            );
        }
    }
}

#[test]
fn gpu_reductions_match_cpu() {
    let Some(g) = gpu() else { return };
    type R = fn(&Tensor, Vec<isize>, bool) -> ferroflow_core::Result<Tensor>;
    let fns: [(&str, R); 4] = [
        ("sum", |x, a, k| ops::reduce_sum(x, a, k)),
        ("mean", |x, a, k| ops::reduce_mean(x, a, k)),
        ("max", |x, a, k| ops::reduce_max(x, a, k)),
        ("min", |x, a, k| ops::reduce_min(x, a, k)),
    ];
    for dtype in [DType::F32, DType::F64] {
        let x = rand(&[5, 6, 7], dtype, 3);
        let gx = x.to_device(g).unwrap();
        for (name, f) in fns {
            for axes in [vec![0], vec![2], vec![0, 2], vec![-1, 1], vec![0, 1, 2]] {
                for keep in [false, true] {
                    let want = f(&x, axes.clone(), keep).unwrap();
                    let got = f(&gx, axes.clone(), keep).unwrap();
                    assert_close(&want, &got, &format!("{name} {axes:?} {keep} {dtype:?}"));
                }
            }
        }
    }
}

#[test]
fn gpu_softmax_matches_cpu() {
    let Some(g) = gpu() else { return };
    for dtype in [DType::F32, DType::F64] {
        let x = rand(&[4, 5, 6], dtype, 21);
        let gx = x.to_device(g).unwrap();
        for axis in [-1isize, 1, 0] {
            let want = ops::softmax(&x, axis).unwrap();
            assert_close(&want, &ops::softmax(&gx, axis).unwrap(), "softmax");
            let want = ops::log_softmax(&x, axis).unwrap();
            assert_close(&want, &ops::log_softmax(&gx, axis).unwrap(), "log_softmax");
        }
    }
}

#[test]
fn gpu_gradients_match_cpu() {
    let Some(g) = gpu() else { return };
    for dtype in [DType::F32, DType::F64] {
        let x = rand(&[8, 5], dtype, 11);
        let w = rand(&[5, 3], dtype, 12);
        let b = rand(&[3], dtype, 13);
        let grads = |x: &Tensor, w: &Tensor, b: &Tensor| {
            let tape = GradientTape::new();
            for t in [x, w, b] {
                tape.watch(t);
            }
            let h = ops::add(&ops::matmul(x, w, false, false).unwrap(), b).unwrap();
            let a = execute1(Unary(UnaryOp::Relu), &[h.clone()]).unwrap();
            let s = execute1(Unary(UnaryOp::Sigmoid), &[h]).unwrap();
            let p = ops::softmax(&ops::mul(&a, &s).unwrap(), -1).unwrap();
            let y = ops::reduce_mean(&ops::mul(&p, &a).unwrap(), ops::Axes::All, false).unwrap();
            tape.gradient(&y, &[x, w, b]).unwrap()
        };
        let want = grads(&x, &w, &b);
        let (gx, gw, gb) = (
            x.to_device(g).unwrap(),
            w.to_device(g).unwrap(),
            b.to_device(g).unwrap(),
        );
        let got = grads(&gx, &gw, &gb);
        for (i, (w_, g_)) in want.iter().zip(&got).enumerate() {
            assert_close(
                w_.as_ref().unwrap(),
                g_.as_ref().unwrap(),
                &format!("gradient {i} {dtype:?}"),
            );
        }
    }
}

#[test]
fn gpu_device_errors_and_scopes() {
    let Some(g) = gpu() else { return };
    let a = rand(&[2, 3], DType::F32, 1);
    let ga = a.to_device(g).unwrap();
    // Mixed devices: a typed error naming the op and both devices.
    let e = ops::add(&a, &ga).unwrap_err().to_string();
    assert!(
        e.contains("AddV2") && e.contains("/device:CPU:0") && e.contains("/device:GPU:0"),
        "{e}"
    );
    // An op without a GPU kernel says so.
    let e = ops::concat(&[&ga, &ga], 0).unwrap_err().to_string();
    assert!(e.contains("no GPU kernel"), "{e}");
    // Host inputs inside a GPU scope run on the GPU.
    let got = device::with_device("/GPU:0", || ops::add(&a, &a))
        .unwrap()
        .unwrap();
    assert_close(&ops::add(&a, &a).unwrap(), &got, "add in a GPU scope");
    // Round trips keep the values for every GPU dtype; others are a typed error.
    for dt in [DType::F32, DType::F64, DType::I32, DType::I64] {
        let t = Tensor::from_f64_slice(dt, &[1.0, -2.0, 3.0], &[3]).unwrap();
        let back = t.to_device(g).unwrap().to_device(Device::Cpu).unwrap();
        assert_eq!(back.to_f64_vec(), vec![1.0, -2.0, 3.0]);
    }
    let h = Tensor::from_f64_slice(DType::F16, &[1.0], &[1]).unwrap();
    assert!(h.to_device(g).is_err());
    // Reading values of a GPU tensor copies them back (TF's .numpy()).
    assert_eq!(ga.to_vec::<f32>().unwrap(), a.to_vec::<f32>().unwrap());
}
