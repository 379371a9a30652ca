//! The distribution hooks of `fit` without MPI: ranks are threads (each has its own Keras session)
//! and the collectives go through shared memory, so the Keras side of data parallelism is
//! tested in the default build. The MPI backend is tested in `ferroflow-mpi`.

use std::rc::Rc;
use std::sync::{Arc, Barrier, Mutex};

use ferroflow_core::{Result, Tensor};
use ferroflow_keras::backend::set_random_seed;
use ferroflow_keras::callbacks::{Callback, Logs};
use ferroflow_keras::distribute::{
    all_reduce_mean, broadcast_weights, reduce_logs, scope, shard_range, ChiefOnly, Strategy,
};
use ferroflow_keras::layers::{Dense, Dropout};
use ferroflow_keras::prelude::*;

/// What the thread-ranks share: one slot per rank and a barrier.
struct Shared {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f64>>>,
}

/// A strategy whose ranks are threads of this process.
#[derive(Clone)]
struct Threads {
    rank: usize,
    world: usize,
    shared: Arc<Shared>,
}

impl Threads {
    fn exchange(&self, mine: Vec<f64>) -> Vec<Vec<f64>> {
        self.shared.slots.lock().unwrap()[self.rank] = mine;
        self.shared.barrier.wait();
        let all = self.shared.slots.lock().unwrap().clone();
        self.shared.barrier.wait();
        all
    }
}

impl Strategy for Threads {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world
    }
    fn all_reduce_sum_f32(&self, buf: &mut [f32]) -> Result<()> {
        let all = self.exchange(buf.iter().map(|&v| v as f64).collect());
        for (i, b) in buf.iter_mut().enumerate() {
            // Summed in f32, in rank order, as an MPI sum of f32 would.
            *b = all.iter().fold(0.0f32, |s, r| s + r[i] as f32);
        }
        Ok(())
    }
    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<()> {
        let all = self.exchange(buf.to_vec());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = all.iter().map(|r| r[i]).sum();
        }
        Ok(())
    }
    fn broadcast_f64(&self, buf: &mut [f64]) -> Result<()> {
        let all = self.exchange(buf.to_vec());
        buf.copy_from_slice(&all[0]);
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        self.shared.barrier.wait();
        Ok(())
    }
}

/// Runs `f(strategy)` on `world` thread-ranks; returns each rank's result.
fn on_ranks<T: Send + 'static>(
    world: usize,
    f: impl Fn(Threads) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let shared = Arc::new(Shared {
        barrier: Barrier::new(world),
        slots: Mutex::new(vec![Vec::new(); world]),
    });
    let f = Arc::new(f);
    let handles: Vec<_> = (0..world)
        .map(|rank| {
            let s = Threads {
                rank,
                world,
                shared: shared.clone(),
            };
            let f = f.clone();
            std::thread::spawn(move || f(s))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// 20 samples of a small regression with a sample weight on each (so the shares' weights
/// matter), deterministic.
fn data() -> (Tensor, Tensor, Tensor) {
    let x: Vec<f32> = (0..60)
        .map(|i| ((i * 37 % 23) as f32) / 23.0 - 0.5)
        .collect();
    let y: Vec<f32> = (0..20).map(|i| ((i * 11 % 7) as f32) / 7.0).collect();
    let w: Vec<f32> = (0..20).map(|i| 0.5 + (i % 3) as f32 * 0.25).collect();
    (
        Tensor::from_vec(x, &[20, 3]).unwrap(),
        Tensor::from_vec(y, &[20, 1]).unwrap(),
        Tensor::from_vec(w, &[20]).unwrap(),
    )
}

fn model(seed: u64) -> Sequential {
    set_random_seed(seed);
    let mut m = Sequential::new();
    m.add(Dense::new(8).activation("tanh").input_shape(&[3]))
        .unwrap();
    m.add(Dense::new(1)).unwrap();
    m.compile("adam", "mse", ["mae"]).unwrap();
    m
}

/// Trains 2 epochs at a global batch of 8 (20 samples: batches of 8, 8, 4) and returns the
/// weights and the last epoch's logs.
fn train(strategy: Option<Threads>, init_seed: u64) -> (Vec<Vec<f64>>, Logs) {
    let (x, y, w) = data();
    let mut m = model(init_seed);
    // The same session seed on every rank (the shuffle), whatever the initial weights.
    set_random_seed(3);
    let mut fit = m
        .fit(&x, &y)
        .sample_weight(&w)
        .epochs(2)
        .batch_size(8)
        .verbose(0);
    if let Some(s) = &strategy {
        fit = fit.strategy(s);
    }
    let h = fit.run().unwrap();
    let logs: Logs = h
        .history
        .iter()
        .map(|(k, v)| (k.clone(), *v.last().unwrap()))
        .collect();
    (
        m.get_weights().iter().map(|t| t.to_f64_vec()).collect(),
        logs,
    )
}

fn max_rel(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            let d = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            let s = b.iter().map(|v| v.abs()).fold(1e-30, f64::max);
            d / s
        })
        .fold(0.0, f64::max)
}

#[test]
fn shard_range_splits_contiguously() {
    assert_eq!(shard_range(64, 0, 2), (0, 32));
    assert_eq!(shard_range(64, 1, 2), (32, 64));
    // 10 over 3 ranks: 3, 3, 4 samples, covering 0..10 without overlap.
    assert_eq!(shard_range(10, 0, 3), (0, 3));
    assert_eq!(shard_range(10, 1, 3), (3, 6));
    assert_eq!(shard_range(10, 2, 3), (6, 10));
    // Fewer samples than ranks: some shares are empty.
    assert_eq!(shard_range(1, 0, 2), (0, 0));
    assert_eq!(shard_range(1, 1, 2), (0, 1));
}

/// 2 and 3 thread-ranks (sample weights, a short last batch that 3 ranks split 1/1/2, ranks
/// starting from different weights that the broadcast makes equal) train to the 1-process
/// weights within 1e-5 relative, and every rank logs the 1-process epoch loss.
#[test]
fn thread_ranks_match_one_process() {
    let (want, want_logs) = train(None, 1);
    for world in [2, 3] {
        let got = on_ranks(world, |s| {
            let seed = 1 + s.rank() as u64 * 10;
            train(Some(s), seed)
        });
        for (r, (w, logs)) in got.iter().enumerate() {
            let rel = max_rel(w, &want);
            assert!(
                rel < 1e-5,
                "world {world} rank {r}: weights differ by {rel:e}"
            );
            let (a, b) = (logs["loss"], want_logs["loss"]);
            assert!(
                (a - b).abs() <= 1e-5 * b.abs(),
                "world {world} rank {r}: loss {a} vs {b}"
            );
        }
    }
}

/// `all_reduce_mean` averages in one bucket; `reduce_logs` weights by samples.
#[test]
fn collectives_helpers() {
    let got = on_ranks(2, |s| {
        let r = s.rank() as f32;
        let a = Tensor::from_vec(vec![r, 2.0 * r], &[2]).unwrap();
        let b = Tensor::from_vec(vec![10.0 + r], &[1, 1]).unwrap();
        let m = all_reduce_mean(&s, &[a, b]).unwrap();
        let mut logs = Logs::new();
        logs.insert("loss".into(), 1.0 + s.rank() as f64); // 1 on rank 0, 2 on rank 1
        let l = reduce_logs(&s, &logs, if s.rank() == 0 { 3.0 } else { 1.0 }).unwrap();
        (
            m[0].to_f64_vec(),
            m[1].to_f64_vec(),
            m[1].shape().to_vec(),
            l["loss"],
        )
    });
    for (a, b, shape, loss) in got {
        assert_eq!(a, vec![0.5, 1.0]);
        assert_eq!(b, vec![10.5]);
        assert_eq!(shape, vec![1, 1]);
        // (3·1 + 1·2) / 4
        assert!((loss - 1.25).abs() < 1e-12);
    }
}

#[test]
fn broadcast_weights_copies_rank_zero() {
    let got = on_ranks(3, |s| {
        let m = model(100 + s.rank() as u64);
        let before: Vec<Vec<f64>> = m.get_weights().iter().map(|t| t.to_f64_vec()).collect();
        broadcast_weights(&s, &m).unwrap();
        let after: Vec<Vec<f64>> = m.get_weights().iter().map(|t| t.to_f64_vec()).collect();
        (before, after)
    });
    assert_ne!(got[0].0, got[1].0);
    for (_, after) in &got {
        assert_eq!(after, &got[0].0);
    }
}

/// Counts the epochs it sees.
struct Count(Arc<Mutex<usize>>);
impl Callback for Count {
    fn on_epoch_end(&mut self, _m: &mut Model, _e: usize, _l: &mut Logs) -> Result<()> {
        *self.0.lock().unwrap() += 1;
        Ok(())
    }
}

/// `ChiefOnly` runs its callback on rank 0 only (and always without a strategy); dropout draws
/// different masks on different ranks, the same without a strategy as on rank 0.
#[test]
fn chief_only_and_dropout_seeds_per_rank() {
    let got = on_ranks(2, |s| {
        let n = Arc::new(Mutex::new(0));
        let (x, y, _) = data();
        let mut m = model(1);
        m.fit(&x, &y)
            .epochs(2)
            .batch_size(10)
            .verbose(0)
            .strategy(&s)
            .callback(ChiefOnly::new(Count(n.clone())))
            .run()
            .unwrap();
        let masks = {
            let _g = scope(Rc::new(s.clone()));
            dropout_mask()
        };
        let c = *n.lock().unwrap();
        (c, masks)
    });
    assert_eq!(got[0].0, 2);
    assert_eq!(got[1].0, 0);
    assert_ne!(
        got[0].1, got[1].1,
        "ranks should draw different dropout masks"
    );
    assert_eq!(
        got[0].1,
        dropout_mask(),
        "rank 0 draws as without a strategy"
    );
}

/// Which of 32 units a fresh `Dropout(0.5)` (session seed 5) keeps in its first training call.
fn dropout_mask() -> Vec<bool> {
    set_random_seed(5);
    let mut d = Sequential::new();
    d.add(Input::new(&[32])).unwrap();
    d.add(Dropout::new(0.5)).unwrap();
    let x = Tensor::from_vec(vec![1.0f32; 32], &[1, 32]).unwrap();
    let out = d.call(&[x], true).unwrap().remove(0);
    out.to_f64_vec().iter().map(|&v| v != 0.0).collect()
}
