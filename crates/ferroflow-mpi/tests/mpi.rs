//! Distributed tests: each spawns `mpirun` on this very test binary (the `child` test below does
//! the work of one rank when `FF_MPI_ROLE` is set) and checks what the ranks wrote. Without
//! `mpirun` on the PATH every test prints why and passes. Run with
//! `cargo test -p ferroflow-mpi --features mpi`.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferroflow_core::{ops, DType, Result, Tensor};
use ferroflow_keras::backend::set_random_seed;
use ferroflow_keras::callbacks::{Callback, ModelCheckpoint};
use ferroflow_keras::datasets::mnist;
use ferroflow_keras::distribute::{broadcast_weights, ChiefOnly, Strategy};
use ferroflow_keras::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use ferroflow_keras::prelude::*;
use ferroflow_mpi::MpiStrategy;

/// Relative tolerance of the 2-rank vs 1-rank comparison: per weight tensor,
/// `max|a - b| <= 1e-5 * max|b|` (floating-point reordering of the batch sums only).
const REL_TOL: f64 = 1e-5;

// ---------------------------------------------------------------- the work of one rank

/// The seed CNN of `examples/mnist_cnn.rs`.
fn seed_cnn() -> Result<Sequential> {
    let mut model = Sequential::new();
    model.add(
        Conv2D::new(32, (3, 3))
            .activation("relu")
            .input_shape(&[28, 28, 1]),
    )?;
    model.add(MaxPooling2D::new((2, 2)))?;
    model.add(Conv2D::new(64, (3, 3)).activation("relu"))?;
    model.add(MaxPooling2D::new((2, 2)))?;
    model.add(Flatten::new())?;
    model.add(Dense::new(128).activation("relu"))?;
    model.add(Dense::new(10).activation("softmax"))?;
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])?;
    Ok(model)
}

/// The first `n` bundled MNIST training digits, as the CNN takes them.
fn data(n: usize) -> Result<(Tensor, Tensor)> {
    let ((x, y), _) = mnist::load_data()?;
    let idx = Tensor::from_vec((0..n as i64).collect::<Vec<_>>(), &[n])?;
    let x = ops::mul_scalar(
        &ops::cast(&ops::gather(&x, &idx, 0)?, DType::F32)?,
        1.0 / 255.0,
    )?;
    let x = ops::reshape(&x, &[n as isize, 28, 28, 1])?;
    Ok((x, ops::gather(&y, &idx, 0)?))
}

fn env_usize(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write_weights(model: &Model, path: &Path) {
    let mut bytes = Vec::new();
    for w in model.get_weights() {
        for v in w.to_f64_vec() {
            bytes.extend_from_slice(&(v as f32).to_le_bytes());
        }
    }
    std::fs::write(path, bytes).expect("write weights");
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Makes rank `rank` die (SIGKILL) or hang at `(epoch, step)`, after writing the time to `mark`.
struct Sabotage {
    rank: usize,
    epoch: usize,
    step: usize,
    hang: bool,
    mark: PathBuf,
    current_epoch: usize,
}

impl Callback for Sabotage {
    fn on_epoch_begin(&mut self, _m: &mut Model, epoch: usize, _l: &Logs) -> Result<()> {
        self.current_epoch = epoch;
        Ok(())
    }
    fn on_train_batch_begin(&mut self, _m: &mut Model, step: usize, _l: &Logs) -> Result<()> {
        let me = ferroflow_keras::distribute::current().map_or(0, |s| s.rank());
        if me == self.rank && self.current_epoch == self.epoch && step == self.step {
            std::fs::write(&self.mark, now_secs().to_string()).expect("mark");
            if self.hang {
                std::thread::sleep(Duration::from_secs(600));
            } else {
                let pid = std::process::id().to_string();
                let _ = Command::new("kill").args(["-9", &pid]).status();
                std::thread::sleep(Duration::from_secs(600));
            }
        }
        Ok(())
    }
}

/// One rank's job, chosen by `FF_MPI_ROLE`, writing into `FF_MPI_OUT`.
fn run_child(role: &str, out: &Path) -> Result<()> {
    let strategy = MpiStrategy::init()?;
    let rank = strategy.rank();
    ferroflow_io::register_savers();
    match role {
        "broadcast" => {
            // Different initial weights per rank, then rank 0's everywhere.
            set_random_seed(100 + rank as u64);
            let model = seed_cnn()?;
            write_weights(&model, &out.join(format!("before_{rank}.bin")));
            broadcast_weights(&strategy, &model)?;
            write_weights(&model, &out.join(format!("after_{rank}.bin")));
        }
        "train" => {
            let n = env_usize("FF_N", 256);
            let epochs = env_usize("FF_EPOCHS", 1);
            let (x, y) = data(n)?;
            set_random_seed(7);
            let mut model = seed_cnn()?;
            let mut fit = model
                .fit(&x, &y)
                .epochs(epochs)
                .batch_size(64)
                .verbose(0)
                .strategy(&strategy);
            if let Ok(ckpt) = std::env::var("FF_CKPT") {
                fit = fit.callback(ChiefOnly::new(ModelCheckpoint::new(&ckpt)));
            }
            if let Ok(spec) = std::env::var("FF_SABOTAGE") {
                // "die:rank:epoch:step" or "hang:rank:epoch:step"
                let p: Vec<&str> = spec.split(':').collect();
                fit = fit.callback(Sabotage {
                    hang: p[0] == "hang",
                    rank: p[1].parse().unwrap_or(1),
                    epoch: p[2].parse().unwrap_or(0),
                    step: p[3].parse().unwrap_or(0),
                    mark: out.join("sabotage_time"),
                    current_epoch: 0,
                });
            }
            let history = fit.run()?;
            if strategy.is_chief() {
                write_weights(&model, &out.join("weights.bin"));
                let loss = history.history["loss"].last().copied().unwrap_or(f64::NAN);
                std::fs::write(out.join("loss"), loss.to_string()).expect("loss");
            }
        }
        other => panic!("unknown FF_MPI_ROLE {other}"),
    }
    Ok(())
}

/// Not a test of its own: the entry point of one rank when `mpirun` starts this binary.
#[test]
fn child() {
    let (Ok(role), Ok(out)) = (std::env::var("FF_MPI_ROLE"), std::env::var("FF_MPI_OUT")) else {
        return;
    };
    if let Err(e) = run_child(&role, Path::new(&out)) {
        eprintln!("rank failed: {e}");
        std::process::exit(2);
    }
}

// ---------------------------------------------------------------- the launcher side

fn have_mpirun() -> bool {
    let ok = Command::new("mpirun")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: mpirun is not on the PATH (install openmpi-bin)");
    }
    ok
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ff_mpi_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("out dir");
    d
}

struct Job {
    ok: bool,
    output: String,
    ended_at: f64,
}

/// `mpirun -np <np>` on this test binary's `child` with `role`; killed after `limit`.
fn mpirun(np: usize, role: &str, out: &Path, env: &[(&str, &str)], limit: Duration) -> Job {
    let exe = std::env::current_exe().expect("test exe");
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "-np",
        &np.to_string(),
    ])
    .arg(exe)
    .args(["--exact", "child", "--nocapture", "--test-threads=1"])
    .env("FF_MPI_ROLE", role)
    .env("FF_MPI_OUT", out)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn mpirun");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait mpirun") {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let ended_at = now_secs();
    let mut output = String::new();
    use std::io::Read;
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut output);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut output);
    }
    assert!(
        status.is_some(),
        "mpirun did not end within {limit:?} (a hang):\n{output}"
    );
    Job {
        ok: status.is_some_and(|s| s.success()),
        output,
        ended_at,
    }
}

/// Shows the launcher's lines about the failure (what a user would see).
fn print_lines(output: &str, keys: &[&str]) {
    for l in output
        .lines()
        .filter(|l| keys.iter().any(|k| l.contains(k)))
    {
        eprintln!("  | {l}");
    }
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The 1-process reference: the same training without any strategy, weights as one vector.
fn reference(n: usize, epochs: usize) -> (Vec<f32>, Vec<usize>) {
    let (x, y) = data(n).unwrap();
    set_random_seed(7);
    let mut model = seed_cnn().unwrap();
    model
        .fit(&x, &y)
        .epochs(epochs)
        .batch_size(64)
        .verbose(0)
        .run()
        .unwrap();
    flat(&model)
}

fn flat(model: &Model) -> (Vec<f32>, Vec<usize>) {
    let ws = model.get_weights();
    let sizes = ws.iter().map(Tensor::num_elements).collect();
    let v = ws
        .iter()
        .flat_map(|w| w.to_f64_vec())
        .map(|v| v as f32)
        .collect();
    (v, sizes)
}

/// The largest `max|a - b| / max|b|` over the weight tensors (computed in f64).
fn max_rel_diff(a: &[f32], b: &[f32], sizes: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len(), "weight counts differ");
    let mut off = 0;
    let mut worst = 0.0f64;
    for &n in sizes {
        let (mut d, mut scale) = (0.0f64, 0.0f64);
        for i in off..off + n {
            d = d.max((a[i] as f64 - b[i] as f64).abs());
            scale = scale.max((b[i] as f64).abs());
        }
        worst = worst.max(d / scale.max(1e-30));
        off += n;
    }
    worst
}

/// Acceptance: the seed CNN, one epoch over 256 digits at a global batch of 64, trained on
/// 2 ranks × 32 equals 1 process × 64 within 1e-5 relative (and is not bit-identical by luck of
/// a no-op: the weights moved from their initial values).
#[test]
fn two_ranks_match_one_process() {
    if !have_mpirun() {
        return;
    }
    let out = out_dir("equiv");
    let job = mpirun(
        2,
        "train",
        &out,
        &[("FF_N", "256")],
        Duration::from_secs(400),
    );
    assert!(job.ok, "mpirun failed:\n{}", job.output);
    let two = read_f32(&out.join("weights.bin"));
    let (one, sizes) = reference(256, 1);
    let rel = max_rel_diff(&two, &one, &sizes);
    eprintln!("2 ranks x 32 vs 1 x 64: max relative weight difference {rel:.3e}");
    assert!(rel <= REL_TOL, "2 ranks differ from 1 process: {rel:e}");
    // Training did move the weights (so the comparison means something).
    set_random_seed(7);
    let (init, _) = flat(&seed_cnn().unwrap());
    assert!(max_rel_diff(&init, &one, &sizes) > 1e-3);
    // A 1-rank MPI job is the plain training exactly.
    let out1 = out_dir("equiv1");
    let job = mpirun(
        1,
        "train",
        &out1,
        &[("FF_N", "256")],
        Duration::from_secs(400),
    );
    assert!(job.ok, "mpirun -np 1 failed:\n{}", job.output);
    assert_eq!(read_f32(&out1.join("weights.bin")), one);
}

/// Rank 0's initial weights reach every rank, bit for bit.
#[test]
fn broadcast_makes_replicas_equal() {
    if !have_mpirun() {
        return;
    }
    let out = out_dir("bcast");
    let job = mpirun(3, "broadcast", &out, &[], Duration::from_secs(200));
    assert!(job.ok, "mpirun failed:\n{}", job.output);
    let b: Vec<Vec<f32>> = (0..3)
        .map(|r| read_f32(&out.join(format!("before_{r}.bin"))))
        .collect();
    let a: Vec<Vec<f32>> = (0..3)
        .map(|r| read_f32(&out.join(format!("after_{r}.bin"))))
        .collect();
    assert_ne!(b[0], b[1], "different seeds should give different weights");
    assert_ne!(b[0], b[2]);
    for (r, after) in a.iter().enumerate() {
        assert_eq!(after, &b[0], "rank {r} does not hold rank 0's weights");
    }
}

/// A rank killed (SIGKILL) in the middle of epoch 2 ends the job within seconds, non-zero, and
/// the checkpoint written after epoch 1 stays intact (it loads and says 1 epoch done).
#[test]
fn dead_rank_fails_fast_and_keeps_checkpoint() {
    if !have_mpirun() {
        return;
    }
    let out = out_dir("dead");
    let ckpt = out.join("ckpt.keras");
    let job = mpirun(
        2,
        "train",
        &out,
        &[
            ("FF_N", "256"),
            ("FF_EPOCHS", "3"),
            ("FF_CKPT", ckpt.to_str().unwrap()),
            ("FF_SABOTAGE", "die:1:1:2"),
        ],
        Duration::from_secs(400),
    );
    assert!(!job.ok, "the job should fail:\n{}", job.output);
    let died: f64 = std::fs::read_to_string(out.join("sabotage_time"))
        .unwrap()
        .parse()
        .unwrap();
    let took = job.ended_at - died;
    eprintln!("job ended {took:.2} s after rank 1 was killed");
    print_lines(&job.output, &["signal", "Killed"]);
    assert!(took < 15.0, "took {took} s:\n{}", job.output);
    assert!(
        job.output.contains("signal 9") || job.output.contains("Killed"),
        "mpirun should say which rank died:\n{}",
        job.output
    );
    assert!(!out.join("weights.bin").exists());
    let (model, state) = ferroflow_io::checkpoint::load_checkpoint(&ckpt).unwrap();
    assert_eq!(state.epoch, 1);
    assert_eq!(model.count_params(), 225_034);
}

/// A rank that hangs (alive, but never reaching the allreduce) trips the watchdog of its peer:
/// the job ends with the watchdog's message soon after `FERROFLOW_MPI_TIMEOUT` (3 s here).
#[test]
fn hung_rank_trips_the_watchdog() {
    if !have_mpirun() {
        return;
    }
    let out = out_dir("hang");
    let job = mpirun(
        2,
        "train",
        &out,
        &[
            ("FF_N", "128"),
            ("FF_SABOTAGE", "hang:1:0:1"),
            ("FERROFLOW_MPI_TIMEOUT", "3"),
        ],
        Duration::from_secs(400),
    );
    assert!(!job.ok, "the job should fail:\n{}", job.output);
    let hung: f64 = std::fs::read_to_string(out.join("sabotage_time"))
        .unwrap()
        .parse()
        .unwrap();
    let took = job.ended_at - hung;
    eprintln!("job ended {took:.2} s after rank 1 hung (timeout 3 s)");
    print_lines(&job.output, &["no progress", "MPI_ABORT"]);
    assert!(took < 15.0, "took {took} s:\n{}", job.output);
    assert!(
        job.output.contains("rank 0: no progress in collective"),
        "the watchdog's message is missing:\n{}",
        job.output
    );
}

/// A checkpoint written by a 2-rank job after epoch 1 resumes in one process (no MPI) and
/// gives, after epoch 2, the weights of an uninterrupted 2-rank run of 2 epochs (1e-5 relative).
#[test]
fn resume_two_rank_checkpoint_on_one_process() {
    if !have_mpirun() {
        return;
    }
    let out = out_dir("resume");
    let ckpt = out.join("ckpt.keras");
    let job = mpirun(
        2,
        "train",
        &out,
        &[
            ("FF_N", "128"),
            ("FF_EPOCHS", "1"),
            ("FF_CKPT", ckpt.to_str().unwrap()),
        ],
        Duration::from_secs(400),
    );
    assert!(job.ok, "mpirun failed:\n{}", job.output);
    let out2 = out_dir("resume_full");
    let job = mpirun(
        2,
        "train",
        &out2,
        &[("FF_N", "128"), ("FF_EPOCHS", "2")],
        Duration::from_secs(400),
    );
    assert!(job.ok, "mpirun failed:\n{}", job.output);
    let full = read_f32(&out2.join("weights.bin"));

    let (x, y) = data(128).unwrap();
    set_random_seed(7);
    let (mut model, state) = ferroflow_io::checkpoint::load_checkpoint(&ckpt).unwrap();
    assert_eq!(state.epoch, 1);
    model
        .fit(&x, &y)
        .epochs(2)
        .initial_epoch(state.epoch)
        .batch_size(64)
        .verbose(0)
        .run()
        .unwrap();
    let (resumed, sizes) = flat(&model);
    let rel = max_rel_diff(&resumed, &full, &sizes);
    eprintln!("resumed on 1 process vs 2 ranks throughout: {rel:.3e}");
    assert!(rel <= REL_TOL, "resume differs: {rel:e}");
}
