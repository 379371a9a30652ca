//! Criterion benchmarks of the core ops: `cargo bench --bench ops`.
//!
//! Throughput is declared in FLOPs (multiply-add = 2), so Criterion's "elem/s" column reads as
//! FLOP/s. `matmul/gemm-direct` calls the `gemm` crate with no ferroflow code around it: the
//! ratio `matmul/ops` : `matmul/gemm-direct` is ferroflow's overhead (target: >= 90%).
//! Figures are recorded in BENCHMARKS.md.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferroflow::kernels::conv::{conv2d_backward_filter, conv2d_backward_input, Conv2dGeom};
use ferroflow::kernels::padding::Padding;
use ferroflow::kernels::pool::{max_pool2d_backward, max_pool2d_forward, Pool2dGeom};
use ferroflow::{ops, DType, Tensor};

fn rand(shape: &[usize], seed: u64) -> Tensor {
    ops::random_uniform(shape, -1.0, 1.0, DType::F32, seed).expect("random_uniform")
}

fn gemm_direct(n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let par = if n >= 64 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: a, b and c each hold n*n row-major f32 elements; the strides (column 1, row n)
    // keep every access inside them, and c does not alias a or b.
    unsafe {
        gemm::gemm(
            n,
            n,
            n,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            n as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    }
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul");
    for &n in &[128usize, 512, 1024] {
        g.throughput(Throughput::Elements((2 * n * n * n) as u64));
        if n == 1024 {
            g.sample_size(20);
        }
        let a = rand(&[n, n], 1);
        let b = rand(&[n, n], 2);
        g.bench_with_input(BenchmarkId::new("ops", n), &n, |bch, _| {
            bch.iter(|| ops::matmul(black_box(&a), black_box(&b), false, false).expect("matmul"))
        });
        let (av, bv) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        let mut cv = vec![0.0f32; n * n];
        g.bench_with_input(BenchmarkId::new("gemm-direct", n), &n, |bch, _| {
            bch.iter(|| gemm_direct(n, black_box(&av), black_box(&bv), &mut cv))
        });
    }
    g.finish();
}

/// The seed CNN's two convolutions: 28x28x1 -> 32 filters 3x3, and 13x13x32 -> 64 filters 3x3
/// (valid padding, stride 1), at batch 32 and 128.
fn conv_cases() -> Vec<(&'static str, [usize; 4], usize)> {
    vec![
        ("28x28x1-32", [0, 28, 28, 1], 32),
        ("13x13x32-64", [0, 13, 13, 32], 64),
    ]
}

fn conv2d(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d");
    g.sample_size(20);
    for (name, shape, oc) in conv_cases() {
        for &batch in &[32usize, 128] {
            let [_, h, w, ci] = shape;
            let geom = Conv2dGeom::new(
                [batch, h, w, ci],
                [3, 3],
                oc,
                [1, 1],
                [1, 1],
                Padding::Valid,
            );
            let flops = 2 * batch * geom.oh * geom.ow * oc * 9 * ci;
            g.throughput(Throughput::Elements(flops as u64));
            let x = rand(&[batch, h, w, ci], 3);
            let k = rand(&[3, 3, ci, oc], 4);
            let id = format!("{name}/b{batch}");
            g.bench_function(BenchmarkId::new("forward", &id), |bch| {
                bch.iter(|| {
                    ops::conv2d(black_box(&x), black_box(&k), [1, 1], Padding::Valid, [1, 1])
                        .expect("conv2d")
                })
            });
            let (xv, kv) = (x.to_vec::<f32>().unwrap(), k.to_vec::<f32>().unwrap());
            let dy = vec![0.5f32; batch * geom.oh * geom.ow * oc];
            let mut dx = vec![0.0f32; xv.len()];
            let mut dw = vec![0.0f32; kv.len()];
            g.bench_function(BenchmarkId::new("backward-input", &id), |bch| {
                bch.iter(|| conv2d_backward_input(&geom, black_box(&dy), black_box(&kv), &mut dx))
            });
            g.bench_function(BenchmarkId::new("backward-filter", &id), |bch| {
                bch.iter(|| conv2d_backward_filter(&geom, black_box(&xv), black_box(&dy), &mut dw))
            });
        }
    }
    g.finish();
}

/// The seed CNN's two 2x2 max-pools (NHWC, stride 2, valid): 26x26x32 and 11x11x64, batch 32 and
/// 128. Throughput is counted in input elements.
fn maxpool(c: &mut Criterion) {
    let mut g = c.benchmark_group("maxpool2d");
    g.sample_size(20);
    for (name, h, ch) in [("26x26x32", 26usize, 32usize), ("11x11x64", 11, 64)] {
        for &batch in &[32usize, 128] {
            let geom = Pool2dGeom::new([batch, h, h, ch], [2, 2], [2, 2], Padding::Valid);
            let n_in = batch * h * h * ch;
            g.throughput(Throughput::Elements(n_in as u64));
            let x = rand(&[batch, h, h, ch], 6).to_vec::<f32>().unwrap();
            let dy = rand(&[batch, geom.oh, geom.ow, ch], 7)
                .to_vec::<f32>()
                .unwrap();
            let mut y = vec![0.0f32; dy.len()];
            let mut dx = vec![0.0f32; n_in];
            let id = format!("{name}/b{batch}");
            g.bench_function(BenchmarkId::new("forward", &id), |bch| {
                bch.iter(|| max_pool2d_forward(&geom, black_box(&x), &mut y))
            });
            g.bench_function(BenchmarkId::new("backward", &id), |bch| {
                bch.iter(|| max_pool2d_backward(&geom, black_box(&x), black_box(&dy), &mut dx))
            });
        }
    }
    g.finish();
}

fn elementwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("1M-elements");
    let n = 1 << 20;
    g.throughput(Throughput::Elements(n as u64));
    let x = rand(&[1024, 1024], 5);
    g.bench_function("softmax-last-axis", |bch| {
        bch.iter(|| ops::softmax(black_box(&x), -1).expect("softmax"))
    });
    // relu(x·2 + 1) then exp: a typical chain of elementwise ops, each a full pass.
    g.bench_function("chain-mul-add-relu-exp", |bch| {
        bch.iter(|| {
            let y = ops::add_scalar(&ops::mul_scalar(black_box(&x), 2.0).unwrap(), 1.0).unwrap();
            ops::exp(&ops::relu(&y).unwrap()).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, matmul, conv2d, maxpool, elementwise);
criterion_main!(benches);
