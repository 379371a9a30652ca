//! What bounds conv1's filter gradient (28x28x1 -> 32 filters, 3x3, valid, stride 1, NHWC;
//! issue 7), plain (`Conv2DBackpropFilter`) and fused with the max-pool/ReLU gradient
//! (`_FusedConv2DMaxPoolGrad`: filter + bias gradients from the pooled gradient), in a warm loop.
//!
//! `cargo run --release --example conv1_filter_limits` prints one JSON line per variant, batch
//! (32, 128) and pool (all threads, 1 thread): the median of `KERNEL_REPS` (default 41) rounds in
//! which the variants of one batch run in turn, each `BLOCK` (default 20) calls in a row timed as
//! one (steady state: each op's inputs stay in cache), after 3 warm-up rounds.
//!
//! - `op_plain`, `op_fused`: the ops (`ops::conv2d_backprop_filter`, `FusedConv2DMaxPoolGrad`);
//! - `kern_plain`, `kern_fused`: the kernels into reused outputs (no op overhead);
//! - `chunks_plain`, `chunks_pooled`: every filter chunk on the calling thread, no sum (the
//!   arithmetic of one core; half of it is the 2-thread bound);
//! - `bias`: every bias block on the calling thread.
//!
//! FLOPs as `kernel_gflops` (`2 * batch * 26 * 26 * 32 * 9`), also for the fused op.

use std::time::Instant;

use ferroflow::graph::optimize::conv_pool::FusedConv2DMaxPool;
use ferroflow::kernels::conv::{conv2d_backward_filter, Conv2dGeom};
use ferroflow::kernels::conv_pool_grad::{conv2d_max_pool_backward, probe, PoolGradSource};
use ferroflow::op::execute;
use ferroflow::ops::conv::ConvAttrs;
use ferroflow::ops::conv_pool_grad::FusedConv2DMaxPoolGrad;
use ferroflow::ops::Padding;
use ferroflow::{ops, DType, Result, Tensor};

type Variant<'a> = (&'static str, Box<dyn FnMut() + Send + 'a>);

fn run_all(reps: usize, block: usize, vs: &mut [Variant<'_>]) -> Vec<f64> {
    for _ in 0..3 {
        for (_, f) in vs.iter_mut() {
            for _ in 0..block {
                f();
            }
        }
    }
    let mut t = vec![Vec::with_capacity(reps); vs.len()];
    for _ in 0..reps {
        for ((_, f), ti) in vs.iter_mut().zip(t.iter_mut()) {
            let s = Instant::now();
            for _ in 0..block {
                f();
            }
            ti.push(s.elapsed().as_secs_f64() / block as f64);
        }
    }
    t.into_iter()
        .map(|mut ti| {
            ti.sort_by(|a, b| a.total_cmp(b));
            ti[ti.len() / 2]
        })
        .collect()
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

fn main() -> Result<()> {
    ferroflow::kernels::parallel::join_thread_pool();
    let reps = env("KERNEL_REPS", 41);
    let block = env("BLOCK", 20);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a 1-thread pool");
    let all = rayon::current_num_threads();
    let only: Option<usize> = std::env::var("BATCH").ok().and_then(|v| v.parse().ok());
    for batch in [32usize, 128] {
        if only.is_some_and(|b| b != batch) {
            continue;
        }
        let (h, w, c, oc) = (28, 28, 1, 32);
        let (s, p, d) = ([1, 1], Padding::Valid, [1, 1]);
        let g = Conv2dGeom::new([batch, h, w, c], [3, 3], oc, s, d, p);
        let flops = 2.0 * (batch * g.oh * g.ow * oc * 9 * c) as f64;
        let xt = ops::random_uniform(&[batch, h, w, c], -1.0, 1.0, DType::F32, 3)?;
        let kt = ops::random_uniform(&[3, 3, c, oc], -1.0, 1.0, DType::F32, 4)?;
        let bt = ops::random_uniform(&[oc], -1.0, 1.0, DType::F32, 6)?;
        let dyt = ops::random_uniform(&[batch, g.oh, g.ow, oc], -1.0, 1.0, DType::F32, 7)?;
        // The forward that training runs: pooled values and argmax of relu(conv + bias).
        let fwd = FusedConv2DMaxPool::new(
            ConvAttrs {
                strides: s,
                padding: p,
                dilations: d,
            },
            true,
            [2, 2],
        )?;
        let pa = execute(fwd, &[xt.clone(), kt.clone(), bt.clone()])?;
        let (pv, av) = (pa[0].to_vec::<f32>()?, pa[1].to_vec::<u8>()?);
        let pshape = [batch, g.oh / 2, g.ow / 2, oc];
        let dpt = ops::random_uniform(&pshape, -1.0, 1.0, DType::F32, 5)?;
        let dv = dpt.to_vec::<f32>()?;
        let pooled = Tensor::from_vec(pv.clone(), &pshape)?;
        let argmax = Tensor::from_vec(av.clone(), &pshape)?;
        let (x, k, dy) = (
            xt.to_vec::<f32>()?,
            kt.to_vec::<f32>()?,
            dyt.to_vec::<f32>()?,
        );
        let fused = FusedConv2DMaxPoolGrad::new(
            ConvAttrs {
                strides: s,
                padding: p,
                dilations: d,
            },
            [2, 2],
            true,
            false,
        );
        let src = PoolGradSource {
            window: [2, 2],
            relu: true,
            pooled: &pv,
            argmax: &av,
            dpooled: &dv,
        };
        for (threads, pool) in [(all, None), (1, Some(&one))] {
            let (g, x, k, dy) = (&g, &x[..], &k[..], &dy[..]);
            let (xt, dyt, kt, fused) = (&xt, &dyt, &kt, &fused);
            let (pooled, argmax, dpt) = (&pooled, &argmax, &dpt);
            let mut dw = vec![0f32; g.filter_len()];
            let mut dw2 = vec![0f32; g.filter_len()];
            let mut db = vec![0f32; oc];
            let mut parts = Vec::new();
            let mut parts2 = Vec::new();
            let mut bparts = Vec::new();
            let mut vs: Vec<Variant<'_>> = vec![
                (
                    "op_plain",
                    Box::new(move || {
                        let r = ops::conv2d_backprop_filter(xt, &[3, 3, 1, 32], dyt, s, p, d);
                        std::hint::black_box(r.ok());
                    }),
                ),
                (
                    "kern_plain",
                    Box::new(|| conv2d_backward_filter(g, x, dy, &mut dw)),
                ),
                (
                    "chunks_plain",
                    Box::new(|| {
                        std::hint::black_box(probe::chunks_plain(g, x, dy, &mut parts));
                    }),
                ),
                (
                    "op_fused",
                    Box::new(move || {
                        let r = fused.call(xt, kt, pooled, argmax, dpt);
                        std::hint::black_box(r.ok());
                    }),
                ),
                (
                    "kern_fused",
                    Box::new(|| conv2d_max_pool_backward(g, src, x, k, &mut dw2, &mut db, None)),
                ),
                (
                    "chunks_pooled",
                    Box::new(|| {
                        std::hint::black_box(probe::chunks_pooled(g, x, src, &mut parts2));
                    }),
                ),
                ("bias", Box::new(|| probe::bias_blocks(g, src, &mut bparts))),
            ];
            let t = match pool {
                None => run_all(reps, block, &mut vs),
                Some(pl) => pl.install(|| run_all(reps, block, &mut vs)),
            };
            for ((name, _), secs) in vs.iter().zip(t) {
                println!(
                    "{{\"variant\": \"{name}\", \"batch\": {batch}, \"threads\": {threads}, \"us\": {:.2}, \"gflops\": {:.1}}}",
                    secs * 1e6,
                    flops / secs / 1e9
                );
            }
        }
    }
    Ok(())
}
