//! The machine's FP32 peak: independent fused multiply-add chains, on one thread and on all
//! threads, printed as one JSON line (GFLOP/s; one FMA lane = 2 FLOPs).
//!
//! `cargo run --release --example fma_peak` (`bench/compare.py` runs it for its "% of peak"
//! column). The widest path the CPU has, chosen at run time:
//! - `avx512f`: 16 independent `vfmadd213ps` chains on zmm registers (16 lanes each), enough
//!   to cover the FMA latency (4 cycles) times its throughput (2 per cycle) twice over;
//! - `avx2+fma`: 12 chains of `_mm256_fmadd_ps` (8 lanes each);
//! - `portable`: 48 scalar chains with a separate multiply and add (the compiler vectorises
//!   them with the baseline SIMD, SSE2 on x86-64; a lower bound, not the peak).
//!
//! The AVX-512 loop is inline assembly (written when the AVX-512 intrinsics were not yet
//! stable). Each chain computes `acc = 0.5 * acc + 0.5` from `acc = 1.0`, a
//! fixed point, so no value overflows or turns subnormal. `FMA_THREADS` overrides the number of
//! threads of the all-threads run (default: the available parallelism); `FMA_ISA=avx2` or
//! `FMA_ISA=portable` forces a narrower path (to check the fallbacks).
//!
//! Output keys: `isa`, `chains`, `lanes`, `threads`, `single_thread_gflops`,
//! `all_threads_gflops` (the best of 60 timed runs of about 5 ms each; a peak is a maximum).

use std::hint::black_box;
use std::time::Instant;

/// The FMA paths, widest first.
#[derive(Clone, Copy, Debug)]
enum Isa {
    Avx512,
    Avx2Fma,
    Portable,
}

impl Isa {
    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::env::var("FMA_ISA").is_ok_and(|v| v == "portable") {
                return Isa::Portable;
            }
            if is_x86_feature_detected!("avx512f") && std::env::var("FMA_ISA").is_err() {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2Fma;
            }
        }
        Isa::Portable
    }

    fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512f",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Portable => "portable",
        }
    }

    /// FLOPs of one call of [`Isa::run`] per iteration.
    fn flops_per_iter(self) -> f64 {
        match self {
            Isa::Avx512 => (16 * 16 * 2) as f64,
            Isa::Avx2Fma => (12 * 8 * 2) as f64,
            Isa::Portable => (48 * 2) as f64,
        }
    }

    fn chains_lanes(self) -> (usize, usize) {
        match self {
            Isa::Avx512 => (16, 16),
            Isa::Avx2Fma => (12, 8),
            Isa::Portable => (48, 1),
        }
    }

    /// Runs `iters` iterations; returns a value that depends on every chain.
    fn run(self, iters: u64) -> f32 {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: only chosen by `detect` when the CPU has AVX-512F.
            Isa::Avx512 => unsafe { x86::fma_avx512(iters) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: only chosen by `detect` when the CPU has AVX2 and FMA.
            Isa::Avx2Fma => unsafe { x86::fma_avx2(iters) },
            _ => portable(iters),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;
    use std::arch::x86_64::*;

    /// 16 chains of `acc = 0.5 * acc + 0.5` on zmm0..zmm15 (constants in zmm30/zmm31).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    pub unsafe fn fma_avx512(iters: u64) -> f32 {
        let half: u32 = 0.5f32.to_bits();
        let one: u32 = 1.0f32.to_bits();
        let mut out: u32;
        // SAFETY: the caller checked AVX-512F. The block writes zmm0-15 (declared as clobbered
        // through their xmm names, the register class this crate's baseline target knows) and
        // zmm30/31, which code compiled without AVX-512 never uses; it touches no memory.
        unsafe {
            asm!(
                "vpbroadcastd zmm30, {half:e}",
                "vpbroadcastd zmm31, {one:e}",
                "vmovaps zmm0, zmm31", "vmovaps zmm1, zmm31", "vmovaps zmm2, zmm31", "vmovaps zmm3, zmm31",
                "vmovaps zmm4, zmm31", "vmovaps zmm5, zmm31", "vmovaps zmm6, zmm31", "vmovaps zmm7, zmm31",
                "vmovaps zmm8, zmm31", "vmovaps zmm9, zmm31", "vmovaps zmm10, zmm31", "vmovaps zmm11, zmm31",
                "vmovaps zmm12, zmm31", "vmovaps zmm13, zmm31", "vmovaps zmm14, zmm31", "vmovaps zmm15, zmm31",
                "test {n}, {n}",
                "jz 3f",
                "2:",
                "vfmadd213ps zmm0, zmm30, zmm30", "vfmadd213ps zmm1, zmm30, zmm30",
                "vfmadd213ps zmm2, zmm30, zmm30", "vfmadd213ps zmm3, zmm30, zmm30",
                "vfmadd213ps zmm4, zmm30, zmm30", "vfmadd213ps zmm5, zmm30, zmm30",
                "vfmadd213ps zmm6, zmm30, zmm30", "vfmadd213ps zmm7, zmm30, zmm30",
                "vfmadd213ps zmm8, zmm30, zmm30", "vfmadd213ps zmm9, zmm30, zmm30",
                "vfmadd213ps zmm10, zmm30, zmm30", "vfmadd213ps zmm11, zmm30, zmm30",
                "vfmadd213ps zmm12, zmm30, zmm30", "vfmadd213ps zmm13, zmm30, zmm30",
                "vfmadd213ps zmm14, zmm30, zmm30", "vfmadd213ps zmm15, zmm30, zmm30",
                "dec {n}",
                "jnz 2b",
                "3:",
                "vaddps zmm0, zmm0, zmm15",
                "vmovd {out:e}, xmm0",
                "vzeroupper",
                half = in(reg) half,
                one = in(reg) one,
                n = inout(reg) iters => _,
                out = lateout(reg) out,
                out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
                out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
                out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
                out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
                options(nostack, nomem),
            );
        }
        f32::from_bits(out)
    }

    /// 12 chains of `acc = 0.5 * acc + 0.5` on ymm registers.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma_avx2(iters: u64) -> f32 {
        // black_box: values the compiler cannot see, so it cannot fold the fixed point.
        let h = std::hint::black_box(_mm256_set1_ps(0.5));
        let mut a = std::hint::black_box([_mm256_set1_ps(1.0); 12]);
        for _ in 0..iters {
            // A fixed-size loop the compiler unrolls: 12 independent FMAs per iteration.
            for acc in a.iter_mut() {
                *acc = _mm256_fmadd_ps(*acc, h, h);
            }
        }
        let mut s = a[0];
        for v in &a[1..] {
            s = _mm256_add_ps(s, *v);
        }
        _mm256_cvtss_f32(s)
    }
}

/// 48 independent scalar chains (6 x 8 lanes once vectorised) of `acc = acc * 0.5 + 0.5` with no target feature (multiply, then add).
fn portable(iters: u64) -> f32 {
    let h = black_box(0.5f32);
    let mut a = black_box([1.0f32; 48]);
    for _ in 0..iters {
        for v in a.iter_mut() {
            *v = *v * h + h;
        }
    }
    black_box(&a)[0]
}

/// GFLOP/s of `threads` threads each running `iters` iterations: the best of `reps` runs.
fn measure(isa: Isa, threads: usize, iters: u64, reps: usize) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..reps {
        // Each thread notes its own start and end: the span from the first start to the last
        // end is the run's time (a timestamp of the spawning thread would come late whenever
        // the scheduler wakes it after the workers started).
        let barrier = std::sync::Barrier::new(threads);
        let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        let start = Instant::now();
                        black_box(isa.run(black_box(iters)));
                        (start, Instant::now())
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let (Some(first), Some(last)) = (
            spans.iter().map(|s| s.0).min(),
            spans.iter().map(|s| s.1).max(),
        ) else {
            continue;
        };
        let secs = (last - first).as_secs_f64().max(1e-9);
        let flops = isa.flops_per_iter() * iters as f64 * threads as f64;
        best = best.max(flops / secs / 1e9);
    }
    best
}

fn main() {
    let isa = Isa::detect();
    let threads = std::env::var("FMA_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Short runs (about 5 ms each, calibrated on one probe; thread start-up is ~1% of that),
    // the best of 60: on a shared machine the best short run is one that no other process
    // interrupted (a scheduler time slice is a few ms).
    let probe = 200_000u64;
    let t = Instant::now();
    black_box(isa.run(black_box(probe)));
    let per_iter = t.elapsed().as_secs_f64().max(1e-9) / probe as f64;
    let iters = ((0.005 / per_iter) as u64).clamp(10_000, 2_000_000_000);
    let single = measure(isa, 1, iters, 60);
    let all = measure(isa, threads, iters, 60);
    let (chains, lanes) = isa.chains_lanes();
    println!(
        "{{\"isa\": \"{}\", \"chains\": {chains}, \"lanes\": {lanes}, \"threads\": {threads}, \"single_thread_gflops\": {single:.1}, \"all_threads_gflops\": {all:.1}}}",
        isa.name()
    );
}
