//! GFLOP/s of the kernels that issue 7 compares with the machine's FP32 peak: `ops::matmul` on
//! 1024 x 1024 f32, and the seed CNN's two convolutions (28x28x1 -> 32 and 13x13x32 -> 64
//! filters, 3x3, valid, stride 1, NHWC) forward, backward-input and backward-filter at batch 32
//! and 128, through the ops that training runs (`ops::conv2d`, `ops::conv2d_backprop_input`,
//! `ops::conv2d_backprop_filter`).
//!
//! `cargo run --release --example kernel_gflops` prints one JSON line per kernel:
//! `{"kernel": ..., "batch": ..., "flops": ..., "median_s": ..., "gflops": ...}`, the median of
//! `KERNEL_REPS` timed calls (default 21) after 200 ms of warm-up calls. FLOPs count a multiply-add as 2:
//! `2 n^3` for the matmul, `2 * batch * oh * ow * out * 3 * 3 * in` for each convolution pass
//! (the same product for all three passes). `bench/compare.py` divides them by the all-threads
//! peak of `examples/fma_peak.rs`. Arguments filter the kernels by name (substring);
//! `KERNEL_BATCHES=4,32` times the convolution rows at other batch sizes.
//!
//! Rows `dense_*` are the Dense-layer products of the seed CNN (1600 -> 128 -> 10) and MLP
//! (784 -> 64 -> 64 -> 10) at batch 32, 128 and 256 (predict): forward `x·W` (`nn`), the kernel
//! gradient `xᵀ·g` (`tn`) and the input gradient `g·Wᵀ` (`nt`). Each shape is timed twice in the
//! same run, alternated: `dense_packed_*` through `kernels::dense_gemm::matmul_packed` (what
//! `ops::matmul` uses for these shapes unless `FF_DENSE_GEMM=off`) and `dense_gemm_*` through the
//! `gemm` crate (`kernels::gemm::matmul`), on raw slices (no op overhead in either).
//!
//! `*_forward_fused_pool` is the inference/training graph's `_FusedConv2DMaxPool` (convolution
//! fused with bias, ReLU, max-pool 2x2: the convolution output never goes to memory) and
//! `*_forward_unfused_pool` what the graph runs without that rewrite (`_FusedConv2D` then
//! `MaxPool`); both count only the convolution's FLOPs, so their ratio is the fusion's gain.
//! `maxpool_relu_grad_*` time the backward of the pooling + ReLU: `_MaxPoolReluGrad` (fused)
//! against `MaxPoolGrad` + `ReluGrad` (unfused); no FLOPs counted.
//!
//! Rows `*_pool_grad_*` (labelled "fused with max-pool/ReLU gradient"): the backward pass of
//! `maxpool2x2(relu(conv + bias))` from the pooled gradient — filter + bias gradient (conv1) and
//! filter + bias + input gradient (conv2) — through `_FusedConv2DMaxPoolGrad` (`_fused`, the
//! full-size `dz` never in memory) against the unfused chain on the same inputs (`_unfused`:
//! `MaxPoolGrad`, `ReluGrad`, `BiasAddGrad`, `Conv2DBackpropFilter`[, `Conv2DBackpropInput`]) and
//! against `dz` expanded in full from the argmax then the same three ops (`_expand`, what a
//! `_MaxPoolReluGrad` expansion op feeds). The three are timed alternately in blocks of 4
//! consecutive calls (`time_alternated`): `median_s` is the median of a block's later calls (the
//! op's own inputs in cache, as in every other row), `first_call_median_s` that of a block's first
//! call, after the other two evicted them. FLOPs count the convolution passes only.

use std::time::Instant;

use std::sync::Arc;

use ferroflow::graph::optimize::conv_pool::{FusedConv2DMaxPool, MaxPoolReluGrad};
use ferroflow::graph::optimize::fused::FusedBiasActivation;
use ferroflow::op::{execute, execute1};
use ferroflow::ops::conv::{Conv2D, ConvAttrs, ConvKind};
use ferroflow::ops::unary::UnaryOp;
use ferroflow::ops::Padding;
use ferroflow::{ops, DType, Result, Tensor};

fn rand(shape: &[usize], seed: u64) -> Result<Tensor> {
    ops::random_uniform(shape, -1.0, 1.0, DType::F32, seed)
}

/// Seconds of warm-up calls before each kernel's timed calls.
const WARM_UP_S: f64 = 0.2;

/// Median seconds of `reps` calls of `f` after at least 3 warm-up calls and [`WARM_UP_S`].
fn time_median(reps: usize, mut f: impl FnMut() -> Result<Tensor>) -> Result<f64> {
    // Warm-up: at least 3 calls and 200 ms, so that both cores run at their steady pace (with
    // 3 calls only, a 2-thread pass of ~60 µs measured ~95 µs for hundreds of calls).
    let warm = Instant::now();
    let mut calls = 0;
    while calls < 3 || warm.elapsed().as_secs_f64() < WARM_UP_S {
        std::hint::black_box(f()?);
        calls += 1;
    }
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let s = Instant::now();
        std::hint::black_box(f()?);
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(|a, b| a.total_cmp(b));
    Ok(t[t.len() / 2])
}

fn report(kernel: &str, batch: usize, flops: f64, secs: f64) {
    println!(
        "{{\"kernel\": \"{kernel}\", \"batch\": {batch}, \"flops\": {flops:.0}, \"median_s\": {secs:.6e}, \"gflops\": {:.1}}}",
        flops / secs / 1e9
    );
}

fn main() -> Result<()> {
    // As `fit` does: this thread runs a share of each parallel pass (`FF_CALLER_WORKER=off`: not).
    ferroflow::kernels::parallel::join_thread_pool();
    let reps: usize = std::env::var("KERNEL_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21)
        .max(1);
    // `KERNEL_BATCHES=4,32`: other batch sizes for the convolution rows (default 32 and 128).
    let conv_batches: Vec<usize> = std::env::var("KERNEL_BATCHES")
        .ok()
        .map(|v| v.split(',').filter_map(|b| b.trim().parse().ok()).collect())
        .filter(|b: &Vec<usize>| !b.is_empty() && !b.contains(&0))
        .unwrap_or_else(|| vec![32, 128]);
    let filters: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));

    if wanted("matmul_1024") {
        let n = 1024;
        let (a, b) = (rand(&[n, n], 1)?, rand(&[n, n], 2)?);
        let secs = time_median(reps, || ops::matmul(&a, &b, false, false))?;
        report("matmul_1024", 0, 2.0 * (n * n * n) as f64, secs);
    }

    dense_rows(reps, &wanted);

    // The seed CNN's convolutions: (name, h, w, in channels, out channels).
    let layers = [
        ("conv1_28x28x1_32", 28, 28, 1, 32),
        ("conv2_13x13x32_64", 13, 13, 32, 64),
    ];
    for (name, h, w, ci, oc) in layers {
        for &batch in &conv_batches {
            let (oh, ow) = (h - 2, w - 2);
            let flops = 2.0 * (batch * oh * ow * oc * 9 * ci) as f64;
            let x = rand(&[batch, h, w, ci], 3)?;
            let k = rand(&[3, 3, ci, oc], 4)?;
            let dy = rand(&[batch, oh, ow, oc], 5)?;
            let (s, p, d) = ([1, 1], Padding::Valid, [1, 1]);
            let fwd = format!("{name}_forward");
            if wanted(&fwd) {
                let secs = time_median(reps, || ops::conv2d(&x, &k, s, p, d))?;
                report(&fwd, batch, flops, secs);
            }
            let bias = rand(&[oc], 6)?;
            let fused = format!("{name}_forward_fused_pool");
            if wanted(&fused) {
                let op = FusedConv2DMaxPool::new(
                    ConvAttrs {
                        strides: s,
                        padding: p,
                        dilations: d,
                    },
                    true,
                    [2, 2],
                )?;
                let secs = time_median(reps, || {
                    Ok(execute(op.clone(), &[x.clone(), k.clone(), bias.clone()])?.swap_remove(0))
                })?;
                report(&fused, batch, flops, secs);
            }
            // The inference graph's form: no argmax computed.
            let infer = format!("{name}_forward_fused_pool_noargmax");
            if wanted(&infer) {
                let op = FusedConv2DMaxPool::new(
                    ConvAttrs {
                        strides: s,
                        padding: p,
                        dilations: d,
                    },
                    true,
                    [2, 2],
                )?
                .without_argmax();
                let secs = time_median(reps, || {
                    Ok(execute(op.clone(), &[x.clone(), k.clone(), bias.clone()])?.swap_remove(0))
                })?;
                report(&infer, batch, flops, secs);
            }
            let unfused = format!("{name}_forward_unfused_pool");
            if wanted(&unfused) {
                // What the graph runs without the rewrite: `_FusedConv2D` then `MaxPool`.
                let conv = FusedBiasActivation::new(
                    Arc::new(Conv2D {
                        kind: ConvKind::Regular,
                        attrs: ConvAttrs {
                            strides: s,
                            padding: p,
                            dilations: d,
                        },
                    }),
                    Some(UnaryOp::Relu),
                )?;
                let secs = time_median(reps, || {
                    let z = execute1(conv.clone(), &[x.clone(), k.clone(), bias.clone()])?;
                    ops::max_pool2d(&z, [2, 2], [2, 2], Padding::Valid)
                })?;
                report(&unfused, batch, flops, secs);
            }
            // The backward of the pooling + ReLU: `_MaxPoolReluGrad` vs `MaxPoolGrad` + `ReluGrad`
            // (no FLOPs counted).
            let (gf, gu) = (
                format!("maxpool_relu_grad_{name}_fused"),
                format!("maxpool_relu_grad_{name}_unfused"),
            );
            if wanted(&gf) || wanted(&gu) {
                let op = FusedConv2DMaxPool::new(
                    ConvAttrs {
                        strides: s,
                        padding: p,
                        dilations: d,
                    },
                    true,
                    [2, 2],
                )?;
                let out = execute(op, &[x.clone(), k.clone(), bias.clone()])?;
                let dp = rand(out[0].shape(), 7)?;
                let z = ops::relu(&ops::bias_add(&ops::conv2d(&x, &k, s, p, d)?, &bias)?)?;
                let attrs = ops::pool::PoolAttrs {
                    ksize: [2, 2],
                    strides: [2, 2],
                    padding: Padding::Valid,
                };
                let g = MaxPoolReluGrad {
                    conv_hw: [oh, ow],
                    window: [2, 2],
                    relu: true,
                };
                let secs = time_median(reps, || {
                    execute1(g.clone(), &[out[0].clone(), out[1].clone(), dp.clone()])
                })?;
                report(&gf, batch, 0.0, secs);
                let secs = time_median(reps, || {
                    ops::relu_grad(&ops::pool::max_pool_grad(&z, &dp, attrs)?, &z)
                })?;
                report(&gu, batch, 0.0, secs);
            }
            let bin = format!("{name}_backward_input");
            if wanted(&bin) {
                let sizes = [batch, h, w, ci];
                let secs = time_median(reps, || {
                    ops::conv2d_backprop_input(&sizes, &k, &dy, s, p, d)
                })?;
                report(&bin, batch, flops, secs);
            }
            let bfl = format!("{name}_backward_filter");
            if wanted(&bfl) {
                let sizes = [3, 3, ci, oc];
                let secs = time_median(reps, || {
                    ops::conv2d_backprop_filter(&x, &sizes, &dy, s, p, d)
                })?;
                report(&bfl, batch, flops, secs);
            }
        }
    }
    pool_grad_rows(reps, &conv_batches, &wanted)?;
    Ok(())
}

/// Calls of each closure per block in [`time_alternated`].
const BLOCK: usize = 4;

/// Per closure, `(steady, first)`: the median time of a call in the steady state and of the first
/// call of a block. The closures run in blocks of [`BLOCK`] consecutive calls, alternated
/// closure by closure for `reps` rounds (after at least 3 warm-up rounds and [`WARM_UP_S`]), so a
/// drift of the machine's pace hits every closure alike. The first call of a block starts with
/// the caches that the other closures left (the unfused chain reads and writes several times the
/// fused op's data); the later calls run with the closure's own inputs in cache, as every other
/// row of this benchmark does (in training, the fused op's pooled gradient comes from the op run
/// just before it, its pooled values and argmax from the same step's forward pass). Both figures
/// are printed.
fn time_alternated<const N: usize>(
    reps: usize,
    fs: [&mut dyn FnMut() -> Result<Vec<Tensor>>; N],
) -> Result<[(f64, f64); N]> {
    let mut fs = fs;
    let warm = Instant::now();
    let mut rounds = 0;
    while rounds < 3 || warm.elapsed().as_secs_f64() < WARM_UP_S {
        for f in fs.iter_mut() {
            std::hint::black_box(f()?);
        }
        rounds += 1;
    }
    let mut steady = vec![Vec::with_capacity(reps * (BLOCK - 1)); N];
    let mut first = vec![Vec::with_capacity(reps); N];
    for _ in 0..reps {
        for ((f, ts), t1) in fs.iter_mut().zip(steady.iter_mut()).zip(first.iter_mut()) {
            for call in 0..BLOCK {
                let s = Instant::now();
                std::hint::black_box(f()?);
                let secs = s.elapsed().as_secs_f64();
                if call == 0 {
                    t1.push(secs);
                } else {
                    ts.push(secs);
                }
            }
        }
    }
    let median = |mut t: Vec<f64>| {
        t.sort_by(|a, b| a.total_cmp(b));
        t[t.len() / 2]
    };
    let mut out = [(0.0, 0.0); N];
    for (o, (ts, t1)) in out.iter_mut().zip(steady.into_iter().zip(first)) {
        *o = (median(ts), median(t1));
    }
    Ok(out)
}

/// First maximum of each disjoint `2x2` window (row-major; a later element wins only if
/// strictly greater): `(pooled, argmax)` for `c` `[n, h, w, ch]`.
fn pool_argmax(c: &[f32], [n, h, w, ch]: [usize; 4]) -> (Vec<f32>, Vec<u8>) {
    let (qh, qw) = (h / 2, w / 2);
    let (mut pooled, mut arg) = (Vec::new(), Vec::new());
    for b in 0..n {
        for py in 0..qh {
            for px in 0..qw {
                for o in 0..ch {
                    let at =
                        |i: usize, j: usize| c[((b * h + 2 * py + i) * w + 2 * px + j) * ch + o];
                    let (mut best, mut bi) = (at(0, 0), 0u8);
                    for (t, (i, j)) in [(0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
                        if at(i, j) > best {
                            best = at(i, j);
                            bi = t as u8 + 1;
                        }
                    }
                    pooled.push(best);
                    arg.push(bi);
                }
            }
        }
    }
    (pooled, arg)
}

fn pool_grad_rows(reps: usize, batches: &[usize], wanted: &dyn Fn(&str) -> bool) -> Result<()> {
    use ferroflow::kernels::conv::Conv2dGeom;
    use ferroflow::kernels::conv_pool_grad::{expand_pool_grad, PoolGradSource};
    use ferroflow::ops::conv::ConvAttrs;
    use ferroflow::ops::conv_pool_grad::FusedConv2DMaxPoolGrad;
    use ferroflow::ops::pool::{max_pool_grad, PoolAttrs};
    let layers = [
        ("conv1_28x28x1_32", 28, 28, 1, 32, false),
        ("conv2_13x13x32_64", 13, 13, 32, 64, true),
    ];
    for (name, h, w, ci, oc, want_dx) in layers {
        for &batch in batches {
            let base = format!(
                "{name}_pool_grad_{}",
                if want_dx {
                    "filter_bias_input"
                } else {
                    "filter_bias"
                }
            );
            if !wanted(&base) {
                continue;
            }
            let (oh, ow) = (h - 2, w - 2);
            let passes = if want_dx { 2.0 } else { 1.0 };
            let flops = passes * 2.0 * (batch * oh * ow * oc * 9 * ci) as f64;
            let (s, p, d) = ([1, 1], Padding::Valid, [1, 1]);
            let x = rand(&[batch, h, w, ci], 3)?;
            let k = rand(&[3, 3, ci, oc], 4)?;
            let b = rand(&[oc], 6)?;
            let c = ops::relu(&ops::bias_add(&ops::conv2d(&x, &k, s, p, d)?, &b)?)?;
            let (pooled_v, arg) = pool_argmax(&c.to_vec::<f32>()?, [batch, oh, ow, oc]);
            let pshape = [batch, oh / 2, ow / 2, oc];
            let pooled = Tensor::from_vec(pooled_v, &pshape)?;
            let argmax = Tensor::from_vec(arg, &pshape)?;
            let dp = rand(&pshape, 5)?;
            let conv = ConvAttrs {
                strides: s,
                padding: p,
                dilations: d,
            };
            let fused = FusedConv2DMaxPoolGrad::new(conv, [2, 2], true, want_dx);
            let pattrs = PoolAttrs {
                ksize: [2, 2],
                strides: [2, 2],
                padding: Padding::Valid,
            };
            let (xs, ks) = ([batch, h, w, ci], [3, 3, ci, oc]);
            let tail = |dz: &Tensor| -> Result<Vec<Tensor>> {
                let mut out = vec![
                    ops::conv2d_backprop_filter(&x, &ks, dz, s, p, d)?,
                    ops::bias_add_grad(dz)?,
                ];
                if want_dx {
                    out.push(ops::conv2d_backprop_input(&xs, &k, dz, s, p, d)?);
                }
                Ok(out)
            };
            let g = Conv2dGeom::new(xs, [3, 3], oc, s, d, p);
            let (pv, av, dv) = (
                pooled.to_vec::<f32>()?,
                argmax.to_vec::<u8>()?,
                dp.to_vec::<f32>()?,
            );
            let mut unfused = || tail(&ops::relu_grad(&max_pool_grad(&c, &dp, pattrs)?, &c)?);
            let mut expand = || {
                let src = PoolGradSource {
                    window: [2, 2],
                    relu: true,
                    pooled: &pv,
                    argmax: &av,
                    dpooled: &dv,
                };
                tail(&Tensor::from_vec(
                    expand_pool_grad(&g, src),
                    &[batch, oh, ow, oc],
                )?)
            };
            let mut fused_f = || fused.call(&x, &k, &pooled, &argmax, &dp);
            let [tu, te, tf] = time_alternated(reps, [&mut unfused, &mut expand, &mut fused_f])?;
            for (variant, (secs, first)) in [("unfused", tu), ("expand", te), ("fused", tf)] {
                println!(
                    "{{\"kernel\": \"{base}_{variant}\", \"label\": \"fused with max-pool/ReLU gradient\", \"batch\": {batch}, \"flops\": {flops:.0}, \"median_s\": {secs:.6e}, \"gflops\": {:.1}, \"first_call_median_s\": {first:.6e}, \"first_call_gflops\": {:.1}}}",
                    flops / secs / 1e9,
                    flops / first / 1e9
                );
            }
        }
    }
    Ok(())
}

/// The `dense_*` rows (see the module docs).
fn dense_rows(reps: usize, wanted: &dyn Fn(&str) -> bool) {
    use ferroflow::kernels::{dense_gemm, gemm};
    // (name, batch, inputs, units)
    let layers = [
        ("cnn_1600x128", 1600, 128),
        ("cnn_128x10", 128, 10),
        ("mlp_784x64", 784, 64),
        ("mlp_64x64", 64, 64),
    ];
    for (name, din, dout) in layers {
        for batch in [32usize, 128, 256] {
            // (pass, m, k, n, a_rs, a_cs, b_rs, b_cs)
            let passes = [
                ("nn", batch, din, dout, din, 1, dout, 1),
                ("tn", din, batch, dout, 1, din, dout, 1),
                ("nt", batch, dout, din, dout, 1, 1, dout),
            ];
            for (pass, m, k, n, a_rs, a_cs, b_rs, b_cs) in passes {
                if batch == 256 && pass != "nn" {
                    continue; // predict only runs forward
                }
                let label = format!("{name}_{pass}");
                let packed = format!("dense_packed_{label}");
                let plain = format!("dense_gemm_{label}");
                if !wanted(&packed) && !wanted(&plain) {
                    continue;
                }
                let a: Vec<f32> = (0..m * k)
                    .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
                    .collect();
                let b: Vec<f32> = (0..k * n)
                    .map(|i| ((i * 104729) % 1000) as f32 * 1e-3 - 0.5)
                    .collect();
                let mut c = vec![0f32; m * n];
                let flops = 2.0 * (m * k * n) as f64;
                let mut tp = Vec::with_capacity(reps);
                let mut tg = Vec::with_capacity(reps);
                let isa = dense_gemm::isa();
                for rep in 0..reps + 3 {
                    let s = Instant::now();
                    dense_gemm::matmul_packed(
                        isa, m, k, n, &a, a_rs, a_cs, &b, b_rs, b_cs, &mut c, n, 1, false,
                    );
                    let t1 = s.elapsed().as_secs_f64();
                    std::hint::black_box(&mut c);
                    let s = Instant::now();
                    gemm::matmul(m, k, n, &a, a_rs, a_cs, &b, b_rs, b_cs, &mut c, false);
                    let t2 = s.elapsed().as_secs_f64();
                    std::hint::black_box(&mut c);
                    if rep >= 3 {
                        tp.push(t1);
                        tg.push(t2);
                    }
                }
                for t in [&mut tp, &mut tg] {
                    t.sort_by(|a, b| a.total_cmp(b));
                }
                if wanted(&packed) {
                    report(&packed, batch, flops, tp[tp.len() / 2]);
                }
                if wanted(&plain) {
                    report(&plain, batch, flops, tg[tg.len() / 2]);
                }
            }
        }
    }
}
