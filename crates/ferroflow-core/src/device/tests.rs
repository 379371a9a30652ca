//! Host-side tests of the device layer: they run in the default build and with `--features cuda`
//! on a machine without a GPU. They verify parsing, scopes, placement, default-device choice and
//! the kernels' index arithmetic (through host emulations, against the CPU ops); they do not run
//! any CUDA code.

use super::kernels::{self, GpuOp};
use super::plan::{launch_dims, GemmCall, ReduceArgs, StridedArgs, BLOCK, MAX_GRID};
use super::*;
use crate::dtype::DType;
use crate::layout::Layout;
use crate::ops;
use crate::ops::binary::BinaryOp;
use crate::ops::reduce::ReduceKind;
use crate::ops::unary::UnaryOp;

fn msg(e: &Error) -> String {
    e.to_string()
}

#[test]
fn parses_tensorflow_device_strings() {
    let ok = [
        ("/GPU:0", Device::Gpu(0)),
        ("/device:GPU:0", Device::Gpu(0)),
        ("gpu:1", Device::Gpu(1)),
        ("GPU", Device::Gpu(0)),
        ("/Gpu:3", Device::Gpu(3)),
        ("  /gpu:2 ", Device::Gpu(2)),
        (
            "/job:localhost/replica:0/task:0/device:GPU:2",
            Device::Gpu(2),
        ),
        ("/CPU:0", Device::Cpu),
        ("/device:cpu:0", Device::Cpu),
        ("cpu", Device::Cpu),
        ("CPU:0", Device::Cpu),
    ];
    for (s, d) in ok {
        assert_eq!(Device::parse(s).unwrap(), d, "{s}");
        assert_eq!(s.parse::<Device>().unwrap(), d, "{s}");
    }
}

#[test]
fn bad_device_strings_are_typed_errors_naming_the_string() {
    for s in [
        "",
        "tpu:0",
        "/GPU:x",
        "/GPU:-1",
        "/GPU:0:1",
        "/CPU:1",
        "/job:worker/device:GPU:0",
        "/replica:1/device:CPU:0",
        "/device:GPU:0/device:CPU:0",
        "/job:localhost",
    ] {
        match Device::parse(s) {
            Err(e @ Error::InvalidArgument { .. }) => {
                assert!(msg(&e).contains("tf.device"), "{e}");
                assert!(msg(&e).contains(&format!("'{s}'")), "{e}");
            }
            other => panic!("{s:?} parsed as {other:?}"),
        }
    }
}

#[test]
fn displays_in_tensorflow_form_and_round_trips() {
    assert_eq!(Device::Cpu.to_string(), "/device:CPU:0");
    assert_eq!(Device::Gpu(1).to_string(), "/device:GPU:1");
    assert_eq!(
        Device::Gpu(0).full_name(),
        "/job:localhost/replica:0/task:0/device:GPU:0"
    );
    for d in [Device::Cpu, Device::Gpu(0), Device::Gpu(7)] {
        assert_eq!(Device::parse(&d.to_string()).unwrap(), d);
        assert_eq!(Device::parse(&d.full_name()).unwrap(), d);
    }
    assert_eq!(Device::Gpu(2).device_type(), "GPU");
    assert!(!Device::Cpu.is_gpu());
}

#[test]
fn default_device_choice_for_each_probe_result() {
    assert_eq!(choose_default(&Probe::NotBuilt), (Device::Cpu, None));
    assert_eq!(choose_default(&Probe::Gpus(2)), (Device::Gpu(0), None));
    for (p, words) in [
        (Probe::Gpus(0), "sees no GPU"),
        (Probe::NoDriver, "libcuda"),
        (Probe::MissingLibrary("cuBLAS (libcublas)".into()), "cuBLAS"),
        (
            Probe::DriverError("CUDA_ERROR_NO_DEVICE".into()),
            "CUDA_ERROR_NO_DEVICE",
        ),
    ] {
        let (d, m) = choose_default(&p);
        assert_eq!(d, Device::Cpu, "{p:?}");
        let m = m.expect("a message when the feature is on but no GPU is usable");
        assert!(m.contains("`cuda` feature") && m.contains(words), "{m}");
        assert!(m.contains("running on the CPU"), "{m}");
    }
}

#[test]
fn this_build_probes_without_panicking() {
    // Without the feature: NotBuilt. With it on a machine without CUDA: NoDriver (or another
    // reason), never a panic; the default device is then the CPU.
    let p = probe();
    #[cfg(not(feature = "cuda"))]
    assert_eq!(p, &Probe::NotBuilt);
    if gpu_count() == 0 {
        assert!(!matches!(p, Probe::Gpus(n) if *n > 0));
        assert_eq!(default_device(), Device::Cpu);
        assert_eq!(current(), Device::Cpu);
    }
}

#[test]
fn lists_physical_devices_as_tensorflow() {
    let all = list_physical_devices(None);
    assert_eq!(all[0].name, "/physical_device:CPU:0");
    assert_eq!(all[0].device_type, "CPU");
    assert_eq!(all.len(), 1 + gpu_count());
    assert_eq!(list_physical_devices(Some("gpu")).len(), gpu_count());
    assert_eq!(list_physical_devices(Some("CPU")).len(), 1);
    assert!(list_physical_devices(Some("TPU")).is_empty());
}

#[test]
fn scopes_nest_and_restore() {
    assert_eq!(scoped(), None);
    let r = with_device("/CPU:0", || {
        assert_eq!(scoped(), Some(Device::Cpu));
        let inner = with_device("cpu", || (scoped(), current())).unwrap();
        assert_eq!(inner, (Some(Device::Cpu), Device::Cpu));
        assert_eq!(scoped(), Some(Device::Cpu));
        7
    })
    .unwrap();
    assert_eq!(r, 7);
    assert_eq!(scoped(), None);
    // Guards dropped out of order still leave the stack as it was before the outer one.
    let a = scope("/CPU:0").unwrap();
    let b = scope("/CPU:0").unwrap();
    drop(a);
    assert_eq!(scoped(), None);
    drop(b);
    assert_eq!(scoped(), None);
    // Scopes are per thread.
    let _g = scope("/CPU:0").unwrap();
    assert_eq!(std::thread::spawn(scoped).join().unwrap(), None);
}

#[test]
fn a_gpu_scope_without_a_gpu_is_a_typed_error() {
    if gpu_count() > 0 {
        eprintln!("skipped: a GPU is present");
        return;
    }
    let e = with_device("/GPU:0", || ()).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    #[cfg(not(feature = "cuda"))]
    assert!(msg(&e).contains("built without the `cuda` feature"), "{e}");
    #[cfg(feature = "cuda")]
    assert!(msg(&e).contains("no GPU is usable"), "{e}");
    assert_eq!(scoped(), None, "a failed scope leaves no trace");
    assert!(scope("/TPU:0").is_err());
}

#[test]
fn host_tensors_are_on_the_cpu_and_to_device_checks_availability() {
    let t = crate::Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    assert_eq!(t.device(), Device::Cpu);
    assert_eq!(t.to_device(Device::Cpu).unwrap().id(), t.id());
    if gpu_count() == 0 {
        let e = t.to_device(Device::Gpu(0)).unwrap_err();
        assert!(msg(&e).contains("/device:GPU:0"), "{e}");
    }
    let g = crate::Graph::new();
    let _d = g.as_default();
    let p = crate::graph::placeholder(DType::F32, &[None, Some(2)], "x").unwrap();
    assert!(p.to_device(Device::Cpu).is_err());
}

#[test]
fn placement_rule() {
    let (cpu, g0, g1) = (Device::Cpu, Device::Gpu(0), Device::Gpu(1));
    assert_eq!(placement("Add", &[], None).unwrap(), Placement::Cpu);
    assert_eq!(
        placement("Add", &[(cpu, false), (cpu, false)], None).unwrap(),
        Placement::Cpu
    );
    assert_eq!(
        placement("Add", &[(g1, false), (g1, false)], None).unwrap(),
        Placement::Gpu(1)
    );
    // Host scalars follow the other inputs (TF's Python-number constants).
    assert_eq!(
        placement("Mul", &[(g0, false), (cpu, true)], None).unwrap(),
        Placement::Gpu(0)
    );
    assert_eq!(
        placement("Mul", &[(cpu, true), (cpu, true)], None).unwrap(),
        Placement::Cpu
    );
    // An explicit GPU scope takes host inputs along; a CPU scope changes nothing.
    assert_eq!(
        placement("Add", &[(cpu, false), (cpu, true)], Some(g1)).unwrap(),
        Placement::Gpu(1)
    );
    assert_eq!(placement("Fill", &[], Some(g0)).unwrap(), Placement::Gpu(0));
    assert_eq!(
        placement("Add", &[(cpu, false)], Some(cpu)).unwrap(),
        Placement::Cpu
    );
    // Inputs on the GPU stay there whatever the scope.
    assert_eq!(
        placement("Add", &[(g0, false)], Some(cpu)).unwrap(),
        Placement::Gpu(0)
    );
    // Mixed devices: a typed error naming the op and both devices.
    for (ins, a, b) in [
        (
            vec![(cpu, false), (g0, false)],
            "/device:CPU:0",
            "/device:GPU:0",
        ),
        (
            vec![(g0, false), (g1, false)],
            "/device:GPU:0",
            "/device:GPU:1",
        ),
        (
            vec![(g1, false), (cpu, true), (cpu, false)],
            "/device:GPU:1",
            "/device:CPU:0",
        ),
    ] {
        let e = placement("MatMul", &ins, None).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { ref op, .. } if op == "MatMul"));
        let m = msg(&e);
        assert!(
            m.contains(a) && m.contains(b) && m.contains("different devices"),
            "{m}"
        );
    }
}

#[test]
fn no_gpu_kernel_error_names_the_op_and_device() {
    let e = no_gpu_kernel("Conv2D", Device::Gpu(0));
    let m = msg(&e);
    assert!(
        m.starts_with("Conv2D:") && m.contains("/device:GPU:0"),
        "{m}"
    );
    assert!(m.contains("to_device"), "{m}");
}

#[test]
fn gpu_op_table() {
    use crate::ops::array::{Reshape, Transpose};
    use crate::ops::binary::Binary;
    use crate::ops::linalg::MatMul;
    use crate::ops::reduce::{Axes, Reduce};
    use crate::ops::unary::Unary;
    assert_eq!(
        kernels::gpu_op(&Unary(UnaryOp::Relu)),
        Some(GpuOp::Unary(UnaryOp::Relu))
    );
    assert_eq!(
        kernels::gpu_op(&Binary(BinaryOp::Add)),
        Some(GpuOp::Binary(BinaryOp::Add))
    );
    assert_eq!(
        kernels::gpu_op(&crate::ops::nn::ReluGrad),
        Some(GpuOp::ReluGrad)
    );
    assert_eq!(
        kernels::gpu_op(&MatMul {
            transpose_a: true,
            transpose_b: false
        }),
        Some(GpuOp::MatMul {
            transpose_a: true,
            transpose_b: false
        })
    );
    let sum = Reduce {
        kind: ReduceKind::Sum,
        axes: Axes::These(vec![1]),
        keepdims: true,
    };
    assert_eq!(
        kernels::gpu_op(&sum),
        Some(GpuOp::Reduce {
            kind: ReduceKind::Sum,
            axes: Axes::These(vec![1]),
            keepdims: true
        })
    );
    let prod = Reduce {
        kind: ReduceKind::Prod,
        axes: Axes::All,
        keepdims: false,
    };
    assert_eq!(kernels::gpu_op(&prod), None);
    assert_eq!(
        kernels::gpu_op(&Reshape { shape: vec![-1] }),
        Some(GpuOp::View)
    );
    assert_eq!(
        kernels::gpu_op(&Transpose { perm: vec![1, 0] }),
        Some(GpuOp::View)
    );
    assert_eq!(
        kernels::gpu_op(&crate::ops::create::FillLike { value: 1.0 }),
        Some(GpuOp::Fill(1.0))
    );
    assert_eq!(
        kernels::gpu_op(&crate::ops::softmax::Softmax {
            axis: -1,
            log: true
        }),
        Some(GpuOp::Softmax {
            axis: -1,
            log: true
        })
    );
    assert_eq!(kernels::gpu_op(&crate::ops::nn::BiasAdd), None);
}

const ALL_UNARY: [UnaryOp; 30] = [
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
    UnaryOp::Elu(1.0),
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

const ALL_BINARY: [BinaryOp; 10] = [
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

/// Cheap syntax checks of generated C: balanced brackets, one entry point with C linkage.
fn check_source(src: &str, name: &str) {
    for (o, c) in [('(', ')'), ('{', '}'), ('[', ']')] {
        let (no, nc) = (src.matches(o).count(), src.matches(c).count());
        assert_eq!(no, nc, "unbalanced {o}{c} in {name}:\n{src}");
    }
    assert_eq!(
        src.matches(&format!("extern \"C\" __global__ void {name}("))
            .count(),
        1,
        "{src}"
    );
    assert!(src.contains("struct Strided") && src.contains("struct Reduce"));
}

#[test]
fn every_float_unary_and_binary_op_has_kernel_source() {
    for dt in [DType::F32, DType::F64] {
        for u in ALL_UNARY {
            let e = kernels::unary_expr(u, dt).unwrap_or_else(|| panic!("{u:?}"));
            let name = kernels::kernel_name(&format!("{u:?}"), dt);
            check_source(&kernels::unary_source(&name, dt, &e), &name);
            assert!(kernels::unary_expr(u, DType::I32).is_none());
        }
        for b in ALL_BINARY {
            let e = kernels::binary_expr(b, dt).unwrap_or_else(|| panic!("{b:?}"));
            let name = kernels::kernel_name(&format!("{b:?}"), dt);
            check_source(&kernels::binary_source(&name, dt, &e), &name);
        }
        for k in [
            ReduceKind::Sum,
            ReduceKind::Mean,
            ReduceKind::Max,
            ReduceKind::Min,
        ] {
            let name = kernels::kernel_name(&format!("reduce_{k:?}"), dt);
            check_source(&kernels::reduce_source(&name, dt, k).unwrap(), &name);
        }
        assert!(kernels::reduce_source("r", dt, ReduceKind::Prod).is_none());
        let name = kernels::kernel_name("fill", dt);
        check_source(&kernels::fill_source(&name, dt), &name);
    }
    // Single precision calls the `f`-suffixed functions; double the plain ones.
    let f = kernels::unary_expr(UnaryOp::Exp, DType::F32).unwrap();
    let d = kernels::unary_expr(UnaryOp::Exp, DType::F64).unwrap();
    assert_eq!((f.as_str(), d.as_str()), ("expf(x)", "exp(x)"));
    assert!(kernels::unary_source("k", DType::F64, "x").contains("typedef double T;"));
    assert!(kernels::unary_source("k", DType::F32, "x").contains("typedef float T;"));
    assert_eq!(
        kernels::kernel_name("AddV2", DType::F32),
        "ff_addv2_float32"
    );
    // Attributes become literals of T.
    let lr = kernels::unary_expr(UnaryOp::LeakyRelu(0.25), DType::F32).unwrap();
    assert!(lr.contains("((T)2.5e-1)"), "{lr}");
}

#[test]
fn launch_dimensions() {
    assert_eq!(launch_dims(0), None);
    assert_eq!(launch_dims(1), Some((1, BLOCK)));
    assert_eq!(launch_dims(BLOCK as usize), Some((1, BLOCK)));
    assert_eq!(launch_dims(BLOCK as usize + 1), Some((2, BLOCK)));
    // Past the cap the grid-stride loop takes over: every index is still visited once.
    let n = (MAX_GRID as usize) * (BLOCK as usize) * 3 + 5;
    let (g, b) = launch_dims(n).unwrap();
    assert_eq!(g, MAX_GRID);
    let stride = (g * b) as usize;
    let visits: usize = (0..stride).map(|t| (t..n).step_by(stride).count()).sum();
    assert_eq!(visits, n);
}

#[test]
fn parameter_blocks_have_the_c_layout() {
    // struct Strided: long long n; int rank, pad; long long shape[8], sa[8], sb[8]; oa; ob.
    assert_eq!(
        std::mem::size_of::<StridedArgs>(),
        8 + 4 + 4 + 3 * 64 + 8 + 8
    );
    // struct Reduce: n, count; int keep_rank, red_rank; four long long[8]; offset.
    assert_eq!(
        std::mem::size_of::<ReduceArgs>(),
        8 + 8 + 4 + 4 + 4 * 64 + 8
    );
    assert_eq!(std::mem::align_of::<StridedArgs>(), 8);
    let src = kernels::PRELUDE;
    let strided = src.find("long long n; int rank; int pad;").unwrap();
    let reduce = src
        .find("long long n; long long count; int keep_rank; int red_rank;")
        .unwrap();
    assert!(strided < reduce);
}

/// Deterministic pseudo-random values in [-2, 2) (a 64-bit LCG; no dependency on our kernels).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 2.0
        })
        .collect()
}

#[test]
fn strided_offsets_reproduce_cpu_broadcasting() {
    // (a shape, b shape, transpose a?) → emulate `x - y` with the kernel's index math and compare
    // with the CPU op (identical f64 arithmetic, so exactly equal).
    let cases: [(&[usize], &[usize], bool); 6] = [
        (&[3, 4], &[3, 4], false),
        (&[2, 3, 4], &[4], false),
        (&[2, 1, 4], &[3, 1], false),
        (&[4, 3], &[4], true),
        (&[], &[2, 2], false),
        (&[5, 1, 2, 1, 3], &[1, 4, 1, 2, 1], false),
    ];
    for (i, &(sa, sb, ta)) in cases.iter().enumerate() {
        let na: usize = sa.iter().product();
        let nb: usize = sb.iter().product();
        let mut a = crate::Tensor::from_f64_slice(DType::F64, &values(na, i as u64), sa).unwrap();
        if ta {
            a = ops::transpose(&a, &[]).unwrap(); // a strided view
            assert!(!a.is_contiguous());
        }
        let b = crate::Tensor::from_f64_slice(DType::F64, &values(nb, 100 + i as u64), sb).unwrap();
        let want = ops::sub(&a, &b).unwrap();
        let args = StridedArgs::new("Sub", want.shape(), a.layout(), Some(b.layout())).unwrap();
        assert_eq!(args.n as usize, want.num_elements());
        let (ra, rb) = (a.storage().clone(), b.storage().clone());
        let (ra, rb) = match (&*ra, &*rb) {
            (crate::storage::Storage::F64(x), crate::storage::Storage::F64(y)) => {
                (x.clone(), y.clone())
            }
            _ => unreachable!(),
        };
        let got: Vec<f64> = (0..args.n)
            .map(|j| {
                let (ia, ib) = args.offsets(j);
                ra[ia as usize] - rb[ib as usize]
            })
            .collect();
        assert_eq!(got, want.to_vec::<f64>().unwrap(), "case {i}");
    }
}

#[test]
fn strided_args_errors() {
    let l = Layout::contiguous(&[2, 3]);
    let e = StridedArgs::new("Add", &[4, 3], &l, None).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let big = [1usize; 9];
    let e = StridedArgs::new("Add", &big, &Layout::contiguous(&big), None).unwrap_err();
    assert!(msg(&e).contains("rank <= 8"), "{e}");
    assert!(ReduceArgs::new("Sum", &Layout::contiguous(&big), &[0]).is_err());
}

#[test]
fn reduce_offsets_reproduce_cpu_reductions() {
    let x = crate::Tensor::from_f64_slice(DType::F64, &values(2 * 3 * 4, 9), &[2, 3, 4]).unwrap();
    let xt = ops::transpose(&x, &[2, 0, 1]).unwrap(); // [4, 2, 3], strided
    let data = x.to_vec::<f64>().unwrap();
    for axes in [vec![0], vec![1], vec![2], vec![0, 2], vec![0, 1, 2], vec![]] {
        for keepdims in [false, true] {
            let ax: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let want_sum = ops::reduce_sum(&xt, ax.clone(), keepdims).unwrap();
            let want_max = ops::reduce_max(&xt, ax.clone(), keepdims).unwrap();
            let args = ReduceArgs::new("Sum", xt.layout(), &axes).unwrap();
            assert_eq!(args.n as usize, want_sum.num_elements());
            let (mut sums, mut maxs) = (vec![], vec![]);
            for i in 0..args.n {
                let offs = args.offsets(i);
                assert_eq!(offs.len() as i64, args.count);
                sums.push(offs.iter().map(|&o| data[o as usize]).sum::<f64>());
                maxs.push(
                    offs.iter()
                        .map(|&o| data[o as usize])
                        .fold(f64::NEG_INFINITY, f64::max),
                );
            }
            for (g, w) in sums.iter().zip(want_sum.to_vec::<f64>().unwrap()) {
                assert!((g - w).abs() <= 1e-12, "axes {axes:?}: {g} vs {w}");
            }
            assert_eq!(maxs, want_max.to_vec::<f64>().unwrap(), "axes {axes:?}");
        }
    }
}

#[test]
fn gemm_call_maps_row_major_matmul_onto_column_major_blas() {
    let (m, n, k) = (3, 5, 4);
    for ta in [false, true] {
        for tb in [false, true] {
            let sa: &[usize] = if ta { &[k, m] } else { &[m, k] };
            let sb: &[usize] = if tb { &[n, k] } else { &[k, n] };
            let a = crate::Tensor::from_f64_slice(DType::F64, &values(m * k, 1), sa).unwrap();
            let b = crate::Tensor::from_f64_slice(DType::F64, &values(k * n, 2), sb).unwrap();
            let want = ops::matmul(&a, &b, ta, tb)
                .unwrap()
                .to_vec::<f64>()
                .unwrap();
            let call = GemmCall::row_major(m, n, k, ta, tb).unwrap();
            // cuBLAS's A is our B, its B our A; C comes back column-major [n, m] = row-major [m, n].
            let got = call.emulate(&b.to_vec::<f64>().unwrap(), &a.to_vec::<f64>().unwrap());
            assert_eq!(got.len(), m * n);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-12, "ta={ta} tb={tb}: {g} vs {w}");
            }
        }
    }
    assert!(GemmCall::row_major(1 << 31, 1, 1, false, false).is_err());
}

/// Compiles every generated kernel with NVRTC when the library is present (it needs no GPU:
/// `LD_LIBRARY_PATH` pointing at a libnvrtc.so.12 is enough; docs/cuda.md). This verifies the
/// CUDA C++ sources, not what they compute.
#[cfg(feature = "cuda")]
#[test]
fn nvrtc_compiles_every_kernel_source() {
    if !super::cuda::nvrtc_present() {
        eprintln!("skipped: libnvrtc not found (set LD_LIBRARY_PATH to a CUDA 12 NVRTC)");
        return;
    }
    let e = super::cuda::compile_check("bad", "extern \"C\" __global__ void bad() { int x = ; }");
    assert!(e.unwrap_err().to_string().contains("compiling bad"));
    let all = kernels::all_sources();
    assert!(all.len() > 90, "{}", all.len());
    for (name, src) in &all {
        if let Err(e) = super::cuda::compile_check(name, src) {
            panic!("{e}\n{src}");
        }
    }
}

#[test]
fn all_sources_lists_distinct_entry_points() {
    let all = kernels::all_sources();
    let mut names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
    for (n, s) in &all {
        check_source(s, n);
    }
}

/// Makes the generated CUDA C++ compile and run as plain host C++: CUDA's qualifiers become
/// nothing, its thread indices become globals that [`run_on_host`] steps through every
/// (block, thread) pair, and its intrinsics get host versions.
const HOST_SHIM: &str = r#"
#include <math.h>
#include <stdio.h>
#include <string.h>
struct Dim3 { unsigned x, y, z; };
static Dim3 blockIdx, blockDim, threadIdx, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
static inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, 8); return d; }
template <class F> static void launch(unsigned grid, unsigned block, F f) {
    gridDim = {grid, 1, 1}; blockDim = {block, 1, 1};
    for (unsigned b = 0; b < grid; ++b)
        for (unsigned t = 0; t < block; ++t) { blockIdx = {b, 0, 0}; threadIdx = {t, 0, 0}; f(); }
}
"#;

/// One kernel run for [`generated_kernels_compute_the_cpu_results_when_run_on_the_host`].
struct HostCase {
    what: String,
    source: String,
    /// C++ statements: declare the inputs, `out`, the parameter block `p`, and call `launch`.
    body: String,
    n: usize,
    want: Vec<f64>,
    f32: bool,
}

fn c_array(t: &crate::Tensor, name: &str) -> String {
    let (ty, vals): (&str, Vec<String>) = match &**t.storage() {
        crate::storage::Storage::F32(v) => ("float", v.iter().map(|x| format!("{x:e}f")).collect()),
        crate::storage::Storage::F64(v) => ("double", v.iter().map(|x| format!("{x:e}")).collect()),
        crate::storage::Storage::I32(v) => ("int", v.iter().map(|x| x.to_string()).collect()),
        crate::storage::Storage::I64(v) => {
            ("long long", v.iter().map(|x| format!("{x}LL")).collect())
        }
        _ => unreachable!("test dtypes"),
    };
    format!("static const {ty} {name}[] = {{{}}};\n", vals.join(", "))
}

fn strided_init(p: &StridedArgs) -> String {
    let arr = |a: &[i64]| {
        a.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "p.n = {}; p.rank = {}; p.pad = 0; {{ long long s[] = {{{}}}, a[] = {{{}}}, b[] = {{{}}}; \
         memcpy(p.shape, s, sizeof s); memcpy(p.sa, a, sizeof a); memcpy(p.sb, b, sizeof b); }} \
         p.oa = {}; p.ob = {};\n",
        p.n,
        p.rank,
        arr(&p.shape),
        arr(&p.sa),
        arr(&p.sb),
        p.oa,
        p.ob
    )
}

fn reduce_init_code(p: &ReduceArgs) -> String {
    let arr = |a: &[i64]| {
        a.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "p.n = {}; p.count = {}; p.keep_rank = {}; p.red_rank = {}; \
         {{ long long a[] = {{{}}}, b[] = {{{}}}, c[] = {{{}}}, d[] = {{{}}}; \
         memcpy(p.keep_shape, a, sizeof a); memcpy(p.keep_strides, b, sizeof b); \
         memcpy(p.red_shape, c, sizeof c); memcpy(p.red_strides, d, sizeof d); }} p.offset = {};\n",
        p.n,
        p.count,
        p.keep_rank,
        p.red_rank,
        arr(&p.keep_shape),
        arr(&p.keep_strides),
        arr(&p.red_shape),
        arr(&p.red_strides),
        p.offset
    )
}

/// Compiles all cases into one host program, runs it, returns each case's outputs.
fn run_on_host(cases: &[HostCase]) -> Option<Vec<Vec<f64>>> {
    let cxx = ["c++", "g++", "clang++"].into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })?;
    let mut prog = String::from(HOST_SHIM);
    for (i, c) in cases.iter().enumerate() {
        prog += &format!("namespace c{i} {{\n{}\n}}\n", c.source);
    }
    prog += "int main() {\n";
    for (i, c) in cases.iter().enumerate() {
        prog += &format!(
            "{{ using namespace c{i};\n{}\nfor (long long j = 0; j < {}; ++j) printf(\"{i} %.17g\\n\", (double)out[j]); }}\n",
            c.body, c.n
        );
    }
    prog += "return 0; }\n";
    let dir = std::env::temp_dir().join(format!("ff_kernel_host_{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let (src, bin) = (dir.join("k.cpp"), dir.join("k"));
    std::fs::write(&src, &prog).ok()?;
    let cc = std::process::Command::new(cxx)
        .args(["-O1", "-std=c++17", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .ok()?;
    assert!(
        cc.status.success(),
        "host compile of the kernels failed:\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let out = std::process::Command::new(&bin).output().ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success());
    let mut res = vec![Vec::new(); cases.len()];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (i, v) = line.split_once(' ').unwrap();
        res[i.parse::<usize>().unwrap()].push(v.parse::<f64>().unwrap());
    }
    Some(res)
}

/// The generated kernel sources, run as host C++ (every block and thread of the launch stepped
/// through in turn), give the CPU ops' results: this checks the kernels' code and the
/// parameter blocks the backend passes them, short of running them on a GPU. Skipped without
/// a C++ compiler.
#[test]
fn generated_kernels_compute_the_cpu_results_when_run_on_the_host() {
    use crate::op::execute1;
    use crate::ops::binary::Binary;
    use crate::ops::unary::Unary;
    let mut cases = Vec::new();
    for dt in [DType::F32, DType::F64] {
        let ct = kernels::c_type(dt).unwrap();
        for (i, &u) in ALL_UNARY.iter().enumerate() {
            let v = match u {
                UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Log1p => {
                    values(15, i as u64).iter().map(|x| x.abs() + 0.1).collect()
                }
                UnaryOp::Round => (0..15).map(|k| (k as f64 - 7.0) * 0.5).collect(),
                _ => values(15, i as u64),
            };
            let x = crate::Tensor::from_f64_slice(dt, &v, &[3, 5]).unwrap();
            // Odd cases read a transposed (strided) view.
            let x = if i % 2 == 1 {
                ops::transpose(&x, &[]).unwrap()
            } else {
                x
            };
            let want = execute1(Unary(u), &[x.clone()]).unwrap();
            let expr = kernels::unary_expr(u, dt).unwrap();
            let name = format!("k_{}", cases.len());
            let p = StridedArgs::new("u", want.shape(), x.layout(), None).unwrap();
            // A small grid, so the grid-stride loop runs more than once per thread.
            let body = format!(
                "{}static {ct} out[{}]; Strided p; {}launch(2, 4, [&] {{ {name}(a, out, p); }});",
                c_array(&x, "a"),
                p.n,
                strided_init(&p)
            );
            cases.push(HostCase {
                what: format!("{u:?} {dt:?}"),
                source: kernels::unary_source(&name, dt, &expr),
                body,
                n: p.n as usize,
                want: want.to_vec::<f64>().unwrap_or_else(|_| want.to_f64_vec()),
                f32: dt == DType::F32,
            });
        }
        for (i, &b) in ALL_BINARY.iter().enumerate() {
            let xa: Vec<f64> = values(6, 50 + i as u64)
                .iter()
                .map(|v| v.abs() + 0.2)
                .collect();
            let yb: Vec<f64> = values(4, 70 + i as u64)
                .iter()
                .map(|v| if *v < 0.0 { v - 0.5 } else { v + 0.5 })
                .collect();
            let x = crate::Tensor::from_f64_slice(dt, &xa, &[2, 1, 3]).unwrap();
            let y = crate::Tensor::from_f64_slice(dt, &yb, &[4, 1]).unwrap();
            let want = execute1(Binary(b), &[x.clone(), y.clone()]).unwrap();
            let expr = kernels::binary_expr(b, dt).unwrap();
            let name = format!("k_{}", cases.len());
            let p = StridedArgs::new("b", want.shape(), x.layout(), Some(y.layout())).unwrap();
            let (grid, block) = launch_dims(p.n as usize).unwrap();
            let body = format!(
                "{}{}static {ct} out[{}]; Strided p; {}launch({grid}, {block}, [&] {{ {name}(a, b, out, p); }});",
                c_array(&x, "a"),
                c_array(&y, "b"),
                p.n,
                strided_init(&p)
            );
            cases.push(HostCase {
                what: format!("{b:?} {dt:?}"),
                source: kernels::binary_source(&name, dt, &expr),
                body,
                n: p.n as usize,
                want: want.to_f64_vec(),
                f32: dt == DType::F32,
            });
        }
        // ReluGrad(gradients, features).
        let g = crate::Tensor::from_f64_slice(dt, &values(8, 5), &[2, 4]).unwrap();
        let f = crate::Tensor::from_f64_slice(dt, &values(8, 6), &[2, 4]).unwrap();
        let want = ops::relu_grad(&g, &f).unwrap();
        let name = format!("k_{}", cases.len());
        let p = StridedArgs::new("r", &[2, 4], g.layout(), Some(f.layout())).unwrap();
        cases.push(HostCase {
            what: format!("ReluGrad {dt:?}"),
            source: kernels::binary_source(&name, dt, kernels::RELU_GRAD_EXPR),
            body: format!(
                "{}{}static {ct} out[8]; Strided p; {}launch(1, 256, [&] {{ {name}(a, b, out, p); }});",
                c_array(&g, "a"),
                c_array(&f, "b"),
                strided_init(&p)
            ),
            n: 8,
            want: want.to_f64_vec(),
            f32: dt == DType::F32,
        });
        // Softmax / log-softmax along the middle axis (inner > 1) and the last one.
        let x = crate::Tensor::from_f64_slice(dt, &values(24, 12), &[2, 3, 4]).unwrap();
        for (axis, log) in [(1usize, false), (1, true), (2, false), (2, true)] {
            let want = if log {
                ops::log_softmax(&x, axis as isize)
            } else {
                ops::softmax(&x, axis as isize)
            }
            .unwrap();
            let sh = x.shape();
            let (outer, r, inner): (usize, usize, usize) = (
                sh[..axis].iter().product(),
                sh[axis],
                sh[axis + 1..].iter().product(),
            );
            let name = format!("k_{}", cases.len());
            cases.push(HostCase {
                what: format!("softmax axis {axis} log {log} {dt:?}"),
                source: kernels::softmax_source(&name, dt),
                body: format!(
                    "{}static {ct} out[24]; launch(1, 3, [&] {{ {name}(a, out, {outer}, {r}, {inner}, {}); }});",
                    c_array(&x, "a"),
                    i32::from(log)
                ),
                n: 24,
                want: want.to_f64_vec(),
                f32: dt == DType::F32,
            });
        }
        // Reductions over axes of a transposed view.
        let x = crate::Tensor::from_f64_slice(dt, &values(24, 8), &[2, 3, 4]).unwrap();
        let xt = ops::transpose(&x, &[2, 0, 1]).unwrap();
        for k in [
            ReduceKind::Sum,
            ReduceKind::Mean,
            ReduceKind::Max,
            ReduceKind::Min,
        ] {
            for axes in [vec![0usize, 2], vec![1]] {
                let ax: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
                let want = match k {
                    ReduceKind::Sum => ops::reduce_sum(&xt, ax, false),
                    ReduceKind::Mean => ops::reduce_mean(&xt, ax, false),
                    ReduceKind::Max => ops::reduce_max(&xt, ax, false),
                    _ => ops::reduce_min(&xt, ax, false),
                }
                .unwrap();
                let name = format!("k_{}", cases.len());
                let p = ReduceArgs::new("r", xt.layout(), &axes).unwrap();
                cases.push(HostCase {
                    what: format!("{k:?} {axes:?} {dt:?}"),
                    source: kernels::reduce_source(&name, dt, k).unwrap(),
                    body: format!(
                        "{}static {ct} out[{}]; Reduce p; {}launch(1, 3, [&] {{ {name}(a, out, p); }});",
                        c_array(&x, "a"),
                        p.n,
                        reduce_init_code(&p)
                    ),
                    n: p.n as usize,
                    want: want.to_f64_vec(),
                    f32: dt == DType::F32,
                });
            }
        }
    }
    // Fill and the strided copy (Tensor::contiguous) on integer dtypes.
    for dt in [DType::I32, DType::I64] {
        let ct = kernels::c_type(dt).unwrap();
        let name = format!("k_{}", cases.len());
        cases.push(HostCase {
            what: format!("fill {dt:?}"),
            source: kernels::fill_source(&name, dt),
            body: format!("static {ct} out[7]; launch(1, 2, [&] {{ {name}(out, ({ct})-3, 7); }});"),
            n: 7,
            want: vec![-3.0; 7],
            f32: false,
        });
        let x =
            crate::Tensor::from_f64_slice(dt, &(0..12).map(f64::from).collect::<Vec<_>>(), &[3, 4])
                .unwrap();
        let xt = ops::transpose(&x, &[]).unwrap();
        let name = format!("k_{}", cases.len());
        let p = StridedArgs::new("c", xt.shape(), xt.layout(), None).unwrap();
        cases.push(HostCase {
            what: format!("copy {dt:?}"),
            source: kernels::unary_source(&name, dt, "x"),
            body: format!(
                "{}static {ct} out[12]; Strided p; {}launch(1, 5, [&] {{ {name}(a, out, p); }});",
                c_array(&x, "a"),
                strided_init(&p)
            ),
            n: 12,
            want: xt.to_f64_vec(),
            f32: false,
        });
    }
    let Some(got) = run_on_host(&cases) else {
        eprintln!("skipped: no C++ compiler (c++, g++ or clang++) found");
        return;
    };
    for (c, g) in cases.iter().zip(&got) {
        assert_eq!(g.len(), c.n, "{}", c.what);
        let tol = if c.f32 { 1e-5 } else { 1e-12 };
        for (j, (a, b)) in g.iter().zip(&c.want).enumerate() {
            let ok = a == b || (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-3);
            assert!(ok, "{}[{j}]: kernel {a} vs CPU {b}", c.what);
        }
    }
}
