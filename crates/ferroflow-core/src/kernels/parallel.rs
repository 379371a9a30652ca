//! Thread splitting that never changes results.
//!
//! Work is cut into chunks whose boundaries depend only on the problem size (never on the number
//! of threads), so a 1-thread and an N-thread run compute exactly the same floating-point
//! operations in the same order.

use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Makes the calling thread one of the workers of rayon's global thread pool, once per process,
/// so that it runs a share of every parallel pass itself instead of sleeping while the pool's
/// threads wake up and then waking up itself.
///
/// Without it, a thread outside the pool that starts a parallel loop hands the whole loop to the
/// pool and blocks until it is done: on the 2-core machine of issue 7 that hand-off costs about
/// 17 µs per pass (three thread wake-ups), a fifth of conv1's forward at batch 32. With it (rayon's
/// `ThreadPoolBuilder::use_current_thread`), the pool has the calling thread as worker 0 plus
/// `threads - 1` threads of its own, and a loop started on the calling thread splits on the spot.
///
/// Called by every op's execution ([`op::compute`](crate::op)), so the first thread that runs an
/// op joins; Keras's `fit`, `evaluate` and `predict` and [`Session::run`](crate::Session) call it
/// first thing, so the thread that trains is the one that joins even when a dataset's prefetch
/// thread runs ops. Results do not change: every parallel split depends only on the problem size.
///
/// Does nothing (and returns `false`) when:
/// - the process set `FF_CALLER_WORKER=off` (or `0`): the A/B switch;
/// - the global pool already exists (the program or another library configured rayon first);
/// - the pool would have a single thread (`RAYON_NUM_THREADS=1` or one CPU): then the calling
///   thread would be the only worker, and a parallel loop started by any other thread would wait
///   forever, because a joined thread only runs pool work while it waits inside a loop of its own;
/// - the calling thread is already a worker of some pool.
///
/// Returns whether the calling thread is the pool's joined thread. Other threads keep working as
/// before (their loops are handed to the pool).
///
/// ```
/// use ferroflow_core::kernels::parallel::join_thread_pool;
/// let joined = join_thread_pool();
/// // A second call from the same thread gives the same answer.
/// assert_eq!(join_thread_pool(), joined);
/// ```
pub fn join_thread_pool() -> bool {
    static JOINED: OnceLock<Option<std::thread::ThreadId>> = OnceLock::new();
    let me = std::thread::current().id();
    let joined = JOINED.get_or_init(|| {
        static SWITCH: OnceLock<bool> = OnceLock::new();
        if !crate::kernels::env_switch::on(&SWITCH, "FF_CALLER_WORKER")
            || rayon::current_thread_index().is_some()
        {
            return None;
        }
        let builder = rayon::ThreadPoolBuilder::new();
        // `num_threads(0)` (the default) means RAYON_NUM_THREADS or the CPU count: resolve it
        // the way rayon does before deciding.
        let threads = std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if threads < 2 {
            return None;
        }
        builder
            .num_threads(threads)
            .use_current_thread()
            .build_global()
            .ok()
            .map(|()| me)
    });
    let is_joined = *joined == Some(me);
    if is_joined {
        keep_pool_awake();
    }
    is_joined
}

/// Pool threads currently running [`spin`].
static SPINNERS: AtomicUsize = AtomicUsize::new(0);

/// How long (µs) a pool thread keeps looking for work after its last job while the joined thread
/// runs ops: 200 µs by default (OpenMP runtimes spin far longer: 200 ms for Intel's and LLVM's),
/// `FF_POOL_SPIN_US=<µs>` to change it, `0` for rayon's own behaviour (a pool thread falls asleep
/// after a few µs without work and takes ~10-20 µs to wake up on this machine).
fn spin_us() -> u64 {
    static V: OnceLock<u64> = OnceLock::new();
    *V.get_or_init(|| {
        std::env::var("FF_POOL_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(200)
    })
}

/// Makes every other thread of the pool run [`spin`] unless it already does: called by the
/// joined thread before each op, so the pool's threads are awake when the op splits its work.
fn keep_pool_awake() {
    if spin_us() == 0 {
        return;
    }
    let want = rayon::current_num_threads().saturating_sub(1);
    let mut n = SPINNERS.load(Ordering::Relaxed);
    while n < want {
        match SPINNERS.compare_exchange_weak(n, n + 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {
                rayon::spawn(spin);
                n += 1;
            }
            Err(now) => n = now,
        }
    }
}

/// A pool thread's job: run the pool's pending jobs as they appear (stealing the share that the
/// joined thread just split off), until none came for [`spin_us`]; then return to rayon, which
/// puts the thread to sleep. The joined thread itself may pick this job up while it waits inside
/// a parallel loop: it returns at once there.
fn spin() {
    if rayon::current_thread_index() != Some(0) {
        let idle = std::time::Duration::from_micros(spin_us());
        let mut last = std::time::Instant::now();
        loop {
            match rayon::yield_now() {
                Some(rayon::Yield::Executed) => last = std::time::Instant::now(),
                Some(rayon::Yield::Idle) if last.elapsed() < idle => {
                    // Look again a little later: each look reads the other threads' queues,
                    // whose cache lines the thread that owns them is writing.
                    for _ in 0..16 {
                        std::hint::spin_loop();
                    }
                }
                _ => break,
            }
        }
    }
    SPINNERS.fetch_sub(1, Ordering::Relaxed);
}

/// Below this many elements, elementwise work stays on the calling thread.
pub const PAR_THRESHOLD: usize = 1 << 15;
/// Chunk length for parallel elementwise work (a multiple of every SIMD width).
pub const CHUNK: usize = 1 << 14;

/// Runs `f(chunk_start, chunk)` over `out` in fixed-size chunks, in parallel when `out` is large.
pub fn for_each_chunk_mut<T: Send, F>(out: &mut [T], f: F)
where
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    if out.len() < PAR_THRESHOLD || rayon::current_num_threads() == 1 {
        for (i, c) in out.chunks_mut(CHUNK).enumerate() {
            f(i * CHUNK, c);
        }
    } else {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, c)| f(i * CHUNK, c));
    }
}

/// Runs `f(row_index, row)` for each `row_len`-long row of `out`, in parallel when the total work
/// (`out.len() * work_per_elem`) is large. Each row is computed by exactly one call, so results do
/// not depend on the thread count.
pub fn for_each_row_mut<T: Send, F>(out: &mut [T], row_len: usize, work_per_elem: usize, f: F)
where
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    if row_len == 0 {
        return;
    }
    let work = out.len().saturating_mul(work_per_elem.max(1));
    if work < PAR_THRESHOLD || rayon::current_num_threads() == 1 {
        for (i, r) in out.chunks_mut(row_len).enumerate() {
            f(i, r);
        }
    } else {
        out.par_chunks_mut(row_len)
            .enumerate()
            .for_each(|(i, r)| f(i, r));
    }
}

/// The smallest problem (multiply-adds) gemm-like kernels share between threads.
pub(crate) const GEMM_PAR_MIN: usize = 1 << 18;

/// Number of threads gemm-like kernels may use for a problem of `flops` multiply-adds.
pub fn gemm_threads(flops: usize) -> usize {
    if flops < GEMM_PAR_MIN {
        1
    } else {
        rayon::current_num_threads()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parallel loop started by a thread outside the pool completes while the joined thread is
    /// blocked outside rayon (it runs pool work only inside loops of its own): the pool always
    /// keeps a thread of its own, so nothing waits forever. Whichever test thread joined first,
    /// this runs the same scenario from the thread that calls it.
    #[test]
    fn loops_of_other_threads_finish_while_the_joined_thread_blocks() {
        join_thread_pool();
        let other = std::thread::spawn(|| {
            let mut v = vec![1u64; 1 << 16];
            for_each_chunk_mut(&mut v, |start, c| {
                for (i, x) in c.iter_mut().enumerate() {
                    *x += (start + i) as u64;
                }
            });
            v.iter().sum::<u64>()
        });
        let n = 1u64 << 16;
        assert_eq!(other.join().ok(), Some(n + n * (n - 1) / 2));
    }

    /// Joining never changes which chunks a loop computes: the same results from the joined
    /// thread as from a 1-thread pool.
    #[test]
    fn joined_thread_splits_give_the_same_results() {
        join_thread_pool();
        let run = || {
            let mut v = vec![0f32; 3 * CHUNK + 17];
            for_each_chunk_mut(&mut v, |start, c| {
                for (i, x) in c.iter_mut().enumerate() {
                    *x = ((start + i) as f32).sqrt();
                }
            });
            v
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .map(|p| p.install(run));
        assert_eq!(one.ok(), Some(run()));
    }
}
