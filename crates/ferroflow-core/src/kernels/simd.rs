//! Run-time SIMD dispatch for the elementwise kernels.
//!
//! The workspace is compiled for the baseline x86-64 (SSE2), so a plain loop only uses 4-lane
//! vectors. The hot elementwise loops are therefore also compiled inside functions with
//! `#[target_feature(enable = ...)]` for AVX2 and AVX-512, and [`run`] picks the widest one the
//! CPU has (`is_x86_feature_detected!`, looked up once). The loop body is the same Rust closure
//! in every variant and LLVM never reassociates or contracts floating-point arithmetic (no
//! fast-math), so every variant computes bit-identical results; the portable variant stays and
//! the tests run all variants the CPU supports against each other ([`available`], [`run_at`]).

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level a kernel can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// The baseline target (SSE2 on x86-64; whatever the target has elsewhere).
    Portable,
    /// AVX2 + FMA (FMA is enabled for the instruction set only: Rust never fuses `a * b + c`).
    Avx2,
    /// AVX-512 F/BW/DQ/VL.
    Avx512,
}

/// 0: not detected yet; otherwise 1 + the level's index.
static DETECTED: AtomicU8 = AtomicU8::new(0);

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl")
        {
            return Level::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Portable
}

/// The widest level this CPU supports (detected once).
#[inline]
pub fn detected() -> Level {
    match DETECTED.load(Ordering::Relaxed) {
        1 => Level::Portable,
        2 => Level::Avx2,
        3 => Level::Avx512,
        _ => {
            let l = detect();
            let code = match l {
                Level::Portable => 1,
                Level::Avx2 => 2,
                Level::Avx512 => 3,
            };
            DETECTED.store(code, Ordering::Relaxed);
            l
        }
    }
}

/// Every level this CPU can run, narrowest first (for tests comparing the variants).
pub fn available() -> Vec<Level> {
    let mut v = vec![Level::Portable];
    match detected() {
        Level::Portable => {}
        Level::Avx2 => v.push(Level::Avx2),
        Level::Avx512 => v.extend([Level::Avx2, Level::Avx512]),
    }
    v
}

#[cfg(target_arch = "x86_64")]
mod wide {
    // SAFETY (all): callers check with `detected()` that the CPU supports these features.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2<R, F: FnOnce() -> R>(f: F) -> R {
        f()
    }
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    pub(super) unsafe fn avx512<R, F: FnOnce() -> R>(f: F) -> R {
        f()
    }
}

/// Runs `f` (a loop) compiled for the widest level the CPU supports.
#[inline(always)]
pub fn run<R, F: FnOnce() -> R>(f: F) -> R {
    run_at(detected(), f)
}

/// Runs `f` compiled for `level`, or for the widest supported level below it when the CPU does
/// not have `level` (so a test may ask for any level).
#[inline(always)]
pub fn run_at<R, F: FnOnce() -> R>(level: Level, f: F) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        let have = detected();
        match level {
            Level::Avx512 if have == Level::Avx512 => {
                // SAFETY: the CPU supports AVX-512 F/BW/DQ/VL, AVX2 and FMA (detected above).
                return unsafe { wide::avx512(f) };
            }
            Level::Avx512 | Level::Avx2 if have != Level::Portable => {
                // SAFETY: the CPU supports AVX2 and FMA (`have` is Avx2 or Avx512).
                return unsafe { wide::avx2(f) };
            }
            _ => {}
        }
    }
    let _ = level;
    f()
}
