//! Data-parallel training of ferroflow's Keras models over MPI, the way Horovod does it: one
//! process per replica started by `mpirun`, gradients summed with `MPI_Allreduce` before every
//! optimizer step, rank 0's weights broadcast at the start.
//!
//! [`MpiStrategy`] implements `ferroflow_keras::distribute::Strategy` (the Keras side: sharding
//! of the global batch, the gradient bucket, reduced logs, chief-only printing; see that
//! module). The MPI backend is behind this crate's `mpi` feature (the root crate's `mpi`
//! feature turns it on), so a default build needs no MPI library.
//!
//! Every collective runs under a watchdog: when one takes longer than `FERROFLOW_MPI_TIMEOUT`
//! seconds (default 60), the process prints
//! `ferroflow-mpi: rank N: no progress in collective X for T s; a peer probably died or hangs`
//! and calls `MPI_Abort`, which ends the whole job. A rank that exits or is killed is caught
//! sooner by `mpirun` itself, which then terminates the other ranks.
//!
//! ```no_run
//! # #[cfg(feature = "mpi")]
//! # fn main() -> ferroflow_core::Result<()> {
//! use ferroflow_keras::distribute::ChiefOnly;
//! use ferroflow_keras::callbacks::ModelCheckpoint;
//! # use ferroflow_keras::prelude::*;
//! # use ferroflow_keras::layers::Dense;
//! # let x = ferroflow_core::Tensor::from_vec(vec![0.5f32; 16], &[8, 2])?;
//! # let y = ferroflow_core::Tensor::from_vec(vec![1.0f32; 8], &[8, 1])?;
//! let strategy = ferroflow_mpi::MpiStrategy::init()?; // under `mpirun -np 4 ./prog`
//! ferroflow_keras::backend::set_random_seed(1); // the same seed on every rank
//! let mut model = Sequential::new();
//! model.add(Dense::new(1).input_shape(&[2]))?;
//! model.compile("adam", "mse", ())?;
//! model
//!     .fit(&x, &y)
//!     .batch_size(64) // the global batch: 16 per rank on 4 ranks
//!     .strategy(&strategy)
//!     .callback(ChiefOnly::new(ModelCheckpoint::new("ckpt.keras")))
//!     .run()?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "mpi"))]
//! # fn main() {}
//! ```

#[cfg(feature = "mpi")]
mod backend;
#[cfg(feature = "mpi")]
pub use backend::{CollectiveStats, MpiStrategy};

/// The environment variable holding the collectives' timeout in seconds (default 60).
pub const TIMEOUT_ENV: &str = "FERROFLOW_MPI_TIMEOUT";

/// Whether this process was started by an MPI launcher (`mpirun`/`mpiexec` of Open MPI or
/// MPICH, or Slurm's PMI): the launcher's rank variables are set.
pub fn launched_by_mpirun() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// The collectives' timeout: `FERROFLOW_MPI_TIMEOUT` seconds (a positive number), default 60.
pub fn timeout_from_env() -> ferroflow_core::Result<std::time::Duration> {
    match std::env::var(TIMEOUT_ENV) {
        Err(_) => Ok(std::time::Duration::from_secs(60)),
        Ok(s) => match s.trim().parse::<f64>() {
            Ok(t) if t > 0.0 && t.is_finite() => Ok(std::time::Duration::from_secs_f64(t)),
            _ => Err(ferroflow_core::Error::invalid(
                "ferroflow-mpi",
                format!("{TIMEOUT_ENV} must be a positive number of seconds, got {s:?}"),
            )),
        },
    }
}
