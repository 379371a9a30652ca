//! `MpiStrategy`: the collectives on MPI, each under the watchdog.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroflow_core::{Error, Result};
use ferroflow_keras::distribute::Strategy;
use mpi::collective::SystemOperation;
use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{CommunicatorCollectives, Root};

/// Time and volume spent in collectives so far (to see what communication costs).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CollectiveStats {
    /// Collectives called.
    pub calls: u64,
    /// Seconds spent inside them (waiting for peers included).
    pub seconds: f64,
    /// Bytes of payload this rank passed to them.
    pub bytes: u64,
}

/// The collective in progress and since when (read by the watchdog thread).
type InFlight = Arc<Mutex<Option<(&'static str, Instant)>>>;

struct Inner {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    in_flight: InFlight,
    stop: Arc<AtomicBool>,
    stats: Cell<CollectiveStats>,
    watchdog: Option<std::thread::JoinHandle<()>>,
    // Dropped last: finalizes MPI.
    _universe: Universe,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.watchdog.take() {
            let _ = h.join();
        }
    }
}

/// Data parallelism over MPI (`MPI_COMM_WORLD`): one replica per rank. Cheap to clone (shared).
///
/// Build it once per process with [`MpiStrategy::init`] (MPI is initialized once; dropping the
/// last clone finalizes it), then pass it to `fit(...).strategy(&s)` or enter
/// `ferroflow_keras::distribute::scope`.
#[derive(Clone)]
pub struct MpiStrategy {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for MpiStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MpiStrategy {{ rank: {}, world_size: {} }}",
            self.inner.rank, self.inner.size
        )
    }
}

impl MpiStrategy {
    /// Initializes MPI (asking for `MPI_THREAD_MULTIPLE`, so the watchdog may call
    /// `MPI_Abort` while a collective blocks) with the timeout of `FERROFLOW_MPI_TIMEOUT`.
    /// Outside `mpirun` it is a world of one rank. Errors when MPI was initialized before.
    pub fn init() -> Result<MpiStrategy> {
        Self::with_timeout(crate::timeout_from_env()?)
    }

    /// [`init`](Self::init) when the process was started by `mpirun` (the launcher's variables
    /// are set), else `None`: what a program calls to train distributed exactly when launched so.
    pub fn from_env() -> Result<Option<MpiStrategy>> {
        if crate::launched_by_mpirun() {
            Self::init().map(Some)
        } else {
            Ok(None)
        }
    }

    /// [`init`](Self::init) with an explicit collective timeout.
    pub fn with_timeout(timeout: Duration) -> Result<MpiStrategy> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Multiple)
            .ok_or_else(|| {
                Error::invalid(
                    "MpiStrategy::init",
                    "MPI is already initialized in this process (create one MpiStrategy and clone it)",
                )
            })?;
        let world = universe.world();
        let rank = world.rank() as usize;
        let size = world.size() as usize;
        let in_flight: InFlight = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let in_flight = in_flight.clone();
            let stop = stop.clone();
            let can_abort = threading == Threading::Multiple;
            std::thread::Builder::new()
                .name("ferroflow-mpi-watchdog".into())
                .spawn(move || watchdog(rank, timeout, in_flight, stop, can_abort))
                .map_err(|e| {
                    Error::invalid(
                        "MpiStrategy::init",
                        format!("cannot start the watchdog thread: {e}"),
                    )
                })?
        };
        Ok(MpiStrategy {
            inner: Rc::new(Inner {
                world,
                rank,
                size,
                in_flight,
                stop,
                stats: Cell::new(CollectiveStats::default()),
                watchdog: Some(watchdog),
                _universe: universe,
            }),
        })
    }

    /// Time and bytes spent in collectives so far on this rank.
    pub fn stats(&self) -> CollectiveStats {
        self.inner.stats.get()
    }

    /// Ends the whole job now (`MPI_Abort`), printing `msg` first: for a rank that hit an error
    /// its peers cannot know about.
    pub fn abort(&self, msg: &str, code: i32) -> ! {
        eprintln!(
            "ferroflow-mpi: rank {}: {msg}; aborting the job",
            self.inner.rank
        );
        self.inner.world.abort(code)
    }

    /// Runs collective `name` under the watchdog and counts it.
    fn timed<T>(&self, name: &'static str, bytes: usize, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        if let Ok(mut g) = self.inner.in_flight.lock() {
            *g = Some((name, start));
        }
        let out = f();
        if let Ok(mut g) = self.inner.in_flight.lock() {
            *g = None;
        }
        let mut s = self.inner.stats.get();
        s.calls += 1;
        s.seconds += start.elapsed().as_secs_f64();
        s.bytes += bytes as u64;
        self.inner.stats.set(s);
        out
    }
}

fn watchdog(
    rank: usize,
    timeout: Duration,
    in_flight: InFlight,
    stop: Arc<AtomicBool>,
    can_abort: bool,
) {
    let tick = Duration::from_millis(100).min(timeout / 4);
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(tick);
        let stuck = in_flight
            .lock()
            .ok()
            .and_then(|g| *g)
            .filter(|(_, since)| since.elapsed() > timeout);
        if let Some((name, since)) = stuck {
            eprintln!(
                "ferroflow-mpi: rank {rank}: no progress in collective {name} for {:.1} s; a peer \
                 probably died or hangs ({} = {} s); aborting the job",
                since.elapsed().as_secs_f64(),
                crate::TIMEOUT_ENV,
                timeout.as_secs_f64()
            );
            if can_abort {
                // MPI_THREAD_MULTIPLE: MPI may be called from here while the main thread blocks.
                SimpleCommunicator::world().abort(70);
            }
            // Without thread support: exit without MPI_Finalize; mpirun then ends the job.
            std::process::exit(70);
        }
    }
}

impl Strategy for MpiStrategy {
    fn rank(&self) -> usize {
        self.inner.rank
    }
    fn world_size(&self) -> usize {
        self.inner.size
    }
    fn all_reduce_sum_f32(&self, buf: &mut [f32]) -> Result<()> {
        if self.inner.size <= 1 {
            return Ok(());
        }
        let send = buf.to_vec();
        self.timed("allreduce", send.len() * 4, || {
            self.inner
                .world
                .all_reduce_into(&send[..], buf, SystemOperation::sum())
        });
        Ok(())
    }
    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<()> {
        if self.inner.size <= 1 {
            return Ok(());
        }
        let send = buf.to_vec();
        self.timed("allreduce", send.len() * 8, || {
            self.inner
                .world
                .all_reduce_into(&send[..], buf, SystemOperation::sum())
        });
        Ok(())
    }
    fn broadcast_f64(&self, buf: &mut [f64]) -> Result<()> {
        if self.inner.size <= 1 {
            return Ok(());
        }
        // The length first, so replicas that disagree get an error instead of a corrupt read.
        let mut n = [buf.len() as u64];
        self.timed("broadcast", 8, || {
            self.inner
                .world
                .process_at_rank(0)
                .broadcast_into(&mut n[..])
        });
        if n[0] != buf.len() as u64 {
            self.abort(
                &format!(
                    "broadcast: rank 0 sends {} values but this rank expects {} (are the models \
                     the same on every rank?)",
                    n[0],
                    buf.len()
                ),
                71,
            );
        }
        self.timed("broadcast", buf.len() * 8, || {
            self.inner.world.process_at_rank(0).broadcast_into(buf)
        });
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        if self.inner.size <= 1 {
            return Ok(());
        }
        self.timed("barrier", 0, || self.inner.world.barrier());
        Ok(())
    }
}
