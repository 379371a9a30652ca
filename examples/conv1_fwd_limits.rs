//! What bounds conv1's plain forward pass (28x28x1 -> 32 filters, 3x3, valid, stride 1, NHWC;
//! issue 7): the same AVX-512 kernel and parallel split timed with its output traffic isolated.
//!
//! `cargo run --release --example conv1_fwd_limits` prints one JSON line per variant and batch
//! (32, 128), the median of `KERNEL_REPS` (default 41) rounds in which all variants run in turn
//! (alternated, after 3 warm-up rounds), on the global pool (all threads) and on a 1-thread pool:
//!
//! - `op`: `ops::conv2d` (what `kernel_gflops conv1_28x28x1_32_forward` times: a new output
//!   tensor per call);
//! - `vec`: `kernels::conv::conv2d_forward_fused_vec` (a new vector per call, no op overhead);
//! - `reused`: the kernel into one output buffer reused by every call (no allocation);
//! - `scratch`: the kernel writing each task's rows into one reused scratch (in L2; no output
//!   traffic beyond L2: the compute bound of this kernel and split);
//! - `split_only`: the same parallel split with nothing done in the tasks (the fixed cost of
//!   dispatching a pass to the thread pool);
//! - `store`, `store_nt`, `store_fresh`: the output's bytes alone written with 64-byte stores
//!   (non-temporal for `_nt`) with the same split, into a reused buffer or a new vector per call.
//!
//! FLOPs as `kernel_gflops` (`2 * batch * 26 * 26 * 32 * 9`); the stores report GB/s.

use std::time::Instant;

use ferroflow::kernels::conv::{conv2d_forward_fused_vec, Conv2dGeom};
use ferroflow::kernels::conv_direct_fwd::probe;
use ferroflow::ops::Padding;
use ferroflow::{ops, DType, Result};

type Variant<'a> = (&'static str, Box<dyn FnMut() + Send + 'a>);

fn run_all(reps: usize, vs: &mut [Variant<'_>]) -> Vec<f64> {
    for _ in 0..3 {
        for (_, f) in vs.iter_mut() {
            f();
        }
    }
    let mut t = vec![Vec::with_capacity(reps); vs.len()];
    for _ in 0..reps {
        for ((_, f), ti) in vs.iter_mut().zip(t.iter_mut()) {
            let s = Instant::now();
            f();
            ti.push(s.elapsed().as_secs_f64());
        }
    }
    t.into_iter()
        .map(|mut ti| {
            ti.sort_by(|a, b| a.total_cmp(b));
            ti[ti.len() / 2]
        })
        .collect()
}

fn main() -> Result<()> {
    // As `fit` does: this thread runs a share of each parallel pass (`FF_CALLER_WORKER=off`: not).
    ferroflow::kernels::parallel::join_thread_pool();
    let reps: usize = std::env::var("KERNEL_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(41)
        .max(1);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a 1-thread pool");
    let all = rayon::current_num_threads();
    for batch in [32usize, 128] {
        let (h, w, c, oc) = (28, 28, 1, 32);
        let g = Conv2dGeom::new([batch, h, w, c], [3, 3], oc, [1, 1], [1, 1], Padding::Valid);
        let flops = 2.0 * (batch * g.oh * g.ow * oc * 9 * c) as f64;
        let xt = ops::random_uniform(&[batch, h, w, c], -1.0, 1.0, DType::F32, 3)?;
        let kt = ops::random_uniform(&[3, 3, c, oc], -1.0, 1.0, DType::F32, 4)?;
        let (x, k) = (xt.to_vec::<f32>()?, kt.to_vec::<f32>()?);
        let len = g.output_len();
        let row_len = g.ow * oc;
        let bytes = (len * 4) as f64;
        for (threads, pool) in [(all, None), (1, Some(&one))] {
            // One output buffer for every variant that writes into a reused one (several
            // buffers of 11 MB at batch 128 would evict each other from the L3 cache).
            let y = std::sync::Mutex::new(vec![0f32; len]);
            let y = &y;
            let (g, x, k, xt, kt) = (&g, &x[..], &k[..], &xt, &kt);
            let mut vs: Vec<Variant<'_>> = vec![
                (
                    "op",
                    Box::new(move || {
                        let r = ops::conv2d(xt, kt, [1, 1], Padding::Valid, [1, 1]);
                        std::hint::black_box(r.ok());
                    }),
                ),
                (
                    "vec",
                    Box::new(move || {
                        std::hint::black_box(conv2d_forward_fused_vec(g, x, k, None, false));
                    }),
                ),
                (
                    "reused",
                    Box::new(move || assert!(probe::forward_into(g, x, k, &mut y.lock().unwrap()))),
                ),
                (
                    "scratch",
                    Box::new(move || {
                        assert!(probe::forward_to_scratch(g, x, k, &mut y.lock().unwrap()))
                    }),
                ),
                (
                    "split_only",
                    Box::new(move || probe::split_only(&mut y.lock().unwrap(), row_len)),
                ),
                (
                    "store",
                    Box::new(move || {
                        assert!(probe::store_only(
                            &mut y.lock().unwrap(),
                            row_len,
                            1.0,
                            false
                        ))
                    }),
                ),
                (
                    "store_nt",
                    Box::new(move || {
                        assert!(probe::store_only(
                            &mut y.lock().unwrap(),
                            row_len,
                            1.0,
                            true
                        ))
                    }),
                ),
                (
                    "store_fresh",
                    Box::new(move || {
                        let mut v: Vec<f32> = Vec::with_capacity(len);
                        let s = &mut v.spare_capacity_mut()[..len];
                        // SAFETY: `MaybeUninit<f32>` and `f32` have the same layout; every
                        // element is written by `store_only` before it is read (never).
                        let s = unsafe {
                            std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut f32, len)
                        };
                        assert!(probe::store_only(s, row_len, 1.0, false));
                        std::hint::black_box(v);
                    }),
                ),
            ];
            let t = match pool {
                Some(p) => p.install(|| run_all(reps, &mut vs)),
                None => run_all(reps, &mut vs),
            };
            for ((name, _), secs) in vs.iter().zip(t) {
                let rate = if *name == "split_only" {
                    "\"gflops\": null".to_string()
                } else if name.starts_with("store") {
                    format!("\"gbytes_per_s\": {:.1}", bytes / secs / 1e9)
                } else {
                    format!("\"gflops\": {:.1}", flops / secs / 1e9)
                };
                println!(
                    "{{\"kernel\": \"conv1_fwd_{name}\", \"batch\": {batch}, \"threads\": {threads}, \"median_us\": {:.1}, {rate}}}",
                    secs * 1e6
                );
            }
        }
    }
    Ok(())
}
