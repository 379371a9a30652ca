//! GPU vs CPU timings of the ops with GPU kernels (feature `cuda`; docs/cuda.md).
//!
//! `cargo run --release --features cuda --example cuda_bench` on a GPU machine (or build it with
//! `--no-run`-style `cargo build --release --features cuda --example cuda_bench` and copy
//! `target/release/examples/cuda_bench` there). Without a usable GPU it says so and exits.
//!
//! GPU times include the launches and end with one copy back to the host, which waits for the
//! stream, so they measure the work and not just the asynchronous launch.

use std::time::Instant;

use ferroflow::device::{self, Device};
use ferroflow::{ops, DType, Tensor};

fn rand(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0)
        .collect();
    Tensor::from_f64_slice(DType::F32, &v, shape).expect("shape")
}

fn time(reps: usize, mut f: impl FnMut() -> Tensor) -> f64 {
    let _ = f().to_device(Device::Cpu); // warm-up (kernel compilation, cuBLAS init)
    let t = Instant::now();
    let mut last = None;
    for _ in 0..reps {
        last = Some(f());
    }
    if let Some(l) = last {
        let _ = l.to_device(Device::Cpu).expect("copy back");
    }
    t.elapsed().as_secs_f64() / reps as f64
}

fn main() -> ferroflow::Result<()> {
    if device::gpu_count() == 0 {
        println!(
            "no usable GPU (probe: {:?}); nothing to measure",
            device::probe()
        );
        return Ok(());
    }
    let g = Device::Gpu(0);
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "op", "CPU ms", "GPU ms", "speed-up"
    );
    for n in [256usize, 1024, 2048] {
        let (a, b) = (rand(&[n, n]), rand(&[n, n]));
        let (ga, gb) = (a.to_device(g)?, b.to_device(g)?);
        let reps = if n >= 2048 { 3 } else { 10 };
        let c = time(reps, || ops::matmul(&a, &b, false, false).expect("matmul"));
        let d = time(reps * 10, || {
            ops::matmul(&ga, &gb, false, false).expect("matmul")
        });
        let gflops = 2.0 * (n as f64).powi(3) / d / 1e9;
        println!(
            "{:<28} {:>12.3} {:>12.3} {:>7.1}x  ({gflops:.0} GFLOP/s on the GPU)",
            format!("matmul {n}x{n} f32"),
            c * 1e3,
            d * 1e3,
            c / d
        );
    }
    let (x, bias) = (rand(&[4096, 1024]), rand(&[1024]));
    let (gx, gbias) = (x.to_device(g)?, bias.to_device(g)?);
    let c = time(10, || ops::add(&x, &bias).expect("add"));
    let d = time(100, || ops::add(&gx, &gbias).expect("add"));
    println!(
        "{:<28} {:>12.3} {:>12.3} {:>7.1}x",
        "add [4096,1024]+[1024] f32",
        c * 1e3,
        d * 1e3,
        c / d
    );
    let c = time(10, || ops::reduce_sum(&x, [1isize], false).expect("sum"));
    let d = time(100, || ops::reduce_sum(&gx, [1isize], false).expect("sum"));
    println!(
        "{:<28} {:>12.3} {:>12.3} {:>7.1}x",
        "sum [4096,1024] axis 1",
        c * 1e3,
        d * 1e3,
        c / d
    );
    Ok(())
}
