//! Callbacks and weight saving with a tiny `Dense(1)` regression model.

use std::sync::{Arc, Mutex};

use ferroflow_core::{ops, DType, Tensor};
use ferroflow_keras::callbacks::{
    format_filepath, CSVLogger, Callback, EarlyStopping, LambdaCallback, LearningRateScheduler,
    Logs, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN,
};
use ferroflow_keras::layers::{Dense, Layer};
use ferroflow_keras::optimizers::SGD;
use ferroflow_keras::{Model, Sequential};

fn model(lr: f64) -> Sequential {
    let mut m = Sequential::new();
    m.add(Dense::new(1).input_shape(&[1])).unwrap();
    m.compile(SGD::new().learning_rate(lr), "mse", ()).unwrap();
    m
}

/// y = 3x + 2 on 32 points.
fn data() -> (Tensor, Tensor) {
    let x = Tensor::from_vec((0..32).map(|i| i as f32 / 32.0).collect(), &[32, 1]).unwrap();
    let y = ops::add_scalar(&ops::mul_scalar(&x, 3.0).unwrap(), 2.0).unwrap();
    (x, y)
}

fn logs(pairs: &[(&str, f64)]) -> Logs {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn weights_f64(m: &Model) -> Vec<Vec<f64>> {
    m.get_weights().iter().map(|t| t.to_f64_vec()).collect()
}

fn set_all(m: &Model, v: f32) {
    m.set_weights(&[
        Tensor::from_vec(vec![v], &[1, 1]).unwrap(),
        Tensor::from_vec(vec![v], &[1]).unwrap(),
    ])
    .unwrap();
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ff_cb_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Records the weights at each epoch's end.
struct WeightRecorder(Arc<Mutex<Vec<Vec<Vec<f64>>>>>);

impl Callback for WeightRecorder {
    fn on_epoch_end(
        &mut self,
        model: &mut Model,
        _epoch: usize,
        _logs: &mut Logs,
    ) -> ferroflow_core::Result<()> {
        self.0.lock().unwrap().push(weights_f64(model));
        Ok(())
    }
}

/// Records the optimizer's learning rate at each epoch's end.
struct LrRecorder(Arc<Mutex<Vec<f64>>>);

impl Callback for LrRecorder {
    fn on_epoch_end(
        &mut self,
        model: &mut Model,
        _epoch: usize,
        _logs: &mut Logs,
    ) -> ferroflow_core::Result<()> {
        let lr = model.optimizer()?.learning_rate();
        self.0.lock().unwrap().push(lr);
        Ok(())
    }
}

// ---------- EarlyStopping ----------

#[test]
fn early_stopping_counts_patience_and_restores_best_weights() {
    let mut m = model(0.1);
    let es = Arc::new(Mutex::new(
        EarlyStopping::new()
            .monitor("val_loss")
            .patience(2)
            .restore_best_weights(true),
    ));
    let mut cb = es.clone();
    cb.on_train_begin(&mut m, &Logs::new()).unwrap();
    // val_loss 1.0, 0.5 (best, epoch 1), 0.6, 0.7 → stop at epoch 3 (two epochs without
    // improvement).
    let seq = [1.0, 0.5, 0.6, 0.7];
    for (epoch, v) in seq.iter().enumerate() {
        set_all(&m, epoch as f32 + 10.0);
        cb.on_epoch_end(&mut m, epoch, &mut logs(&[("val_loss", *v)]))
            .unwrap();
        assert_eq!(m.stop_training, epoch == 3, "epoch {epoch}");
    }
    cb.on_train_end(&mut m, &Logs::new()).unwrap();
    assert_eq!(es.lock().unwrap().stopped_epoch(), 3);
    assert_eq!(es.lock().unwrap().best_epoch(), 1);
    assert_eq!(weights_f64(&m), vec![vec![11.0], vec![11.0]]);
}

#[test]
fn early_stopping_min_delta_baseline_mode_and_start_epoch() {
    let run = |es: EarlyStopping, seq: &[f64], key: &str| -> Option<usize> {
        let mut m = model(0.1);
        let mut es = es;
        es.on_train_begin(&mut m, &Logs::new()).unwrap();
        for (e, v) in seq.iter().enumerate() {
            es.on_epoch_end(&mut m, e, &mut logs(&[(key, *v)])).unwrap();
            if m.stop_training {
                return Some(e);
            }
        }
        None
    };
    // Improvements smaller than min_delta do not count: 1.0 → 0.95 → 0.9 with min_delta 0.1.
    assert_eq!(
        run(
            EarlyStopping::new()
                .monitor("loss")
                .min_delta(0.1)
                .patience(1),
            &[1.0, 0.95, 0.9],
            "loss"
        ),
        Some(1)
    );
    // auto mode maximises accuracy: rising accuracy never stops.
    assert_eq!(
        run(
            EarlyStopping::new().monitor("val_accuracy").patience(1),
            &[0.5, 0.6, 0.7, 0.8],
            "val_accuracy"
        ),
        None
    );
    // mode="max" on a loss: a falling loss is "no improvement".
    assert_eq!(
        run(
            EarlyStopping::new().monitor("loss").mode("max").patience(2),
            &[1.0, 0.9, 0.8, 0.7],
            "loss"
        ),
        Some(2)
    );
    // Baseline: improvements that do not beat 0.5 do not reset the wait (Keras 3: the wait
    // grows 1, 2, 3 and the first non-improving epoch stops); without a baseline it would be 1.
    assert_eq!(
        run(
            EarlyStopping::new()
                .monitor("loss")
                .baseline(0.5)
                .patience(2),
            &[1.0, 0.9, 0.95],
            "loss"
        ),
        Some(2)
    );
    assert_eq!(
        run(
            EarlyStopping::new().monitor("loss").patience(2),
            &[1.0, 0.9, 0.95],
            "loss"
        ),
        None
    );
    // start_from_epoch: nothing is watched before epoch 2.
    assert_eq!(
        run(
            EarlyStopping::new()
                .monitor("loss")
                .patience(1)
                .start_from_epoch(2),
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            "loss"
        ),
        Some(3)
    );
    // A missing monitor never stops.
    assert_eq!(
        run(EarlyStopping::new().patience(0), &[1.0, 2.0, 3.0], "loss"),
        None
    );
    // A bad mode is an error when training begins.
    let mut m = model(0.1);
    let err = EarlyStopping::new()
        .mode("up")
        .on_train_begin(&mut m, &Logs::new())
        .unwrap_err();
    assert!(err.to_string().contains("auto"), "{err}");
}

#[test]
fn early_stopping_in_fit_stops_and_restores() {
    let (x, y) = data();
    // lr = 0: the loss never changes, so it never improves after epoch 0; patience 2 → 3 epochs.
    let mut m = model(0.0);
    let h = m
        .fit(&x, &y)
        .epochs(20)
        .batch_size(8)
        .verbose(0)
        .shuffle(false)
        .callback(EarlyStopping::new().monitor("loss").patience(2))
        .run()
        .unwrap();
    assert_eq!(h.epoch, vec![0, 1, 2]);

    // mode="max" on a falling loss: epoch 0 is the best; patience 1 stops at epoch 1 and the
    // weights at the end of epoch 0 come back.
    let mut m = model(0.1);
    let rec = Arc::new(Mutex::new(Vec::new()));
    let h = m
        .fit(&x, &y)
        .epochs(20)
        .batch_size(8)
        .verbose(0)
        .callback(WeightRecorder(rec.clone()))
        .callback(
            EarlyStopping::new()
                .monitor("loss")
                .mode("max")
                .patience(1)
                .restore_best_weights(true),
        )
        .run()
        .unwrap();
    assert_eq!(h.epoch.len(), 2);
    let rec = rec.lock().unwrap();
    assert_ne!(rec[0], rec[1]);
    assert_eq!(weights_f64(&m), rec[0]);
}

// ---------- ModelCheckpoint ----------

#[test]
fn checkpoint_filepath_formatting() {
    let l = logs(&[("val_loss", 0.123456), ("loss", 12.5)]);
    assert_eq!(
        format_filepath("w.{epoch:02d}-{val_loss:.2f}.safetensors", 3, &l).unwrap(),
        "w.03-0.12.safetensors"
    );
    assert_eq!(
        format_filepath("{epoch}_{loss}_{loss:.1e}_{{x}}", 12, &l).unwrap(),
        "12_12.5_1.2e+01_{x}"
    );
    assert_eq!(format_filepath("{epoch:03d}", 7, &l).unwrap(), "007");
    let err = format_filepath("{acc:.2f}", 1, &l).unwrap_err();
    assert!(err.to_string().contains("\"acc\""), "{err}");
}

#[test]
fn checkpoint_save_best_only_writes_on_improvement_and_loads_back() {
    let dir = tmpdir("ckpt");
    let template = dir.join("w.{epoch:02d}-{val_loss:.2f}.safetensors");
    let best = dir.join("best.safetensors");
    let mut m = model(0.1);
    let mut per_epoch = ModelCheckpoint::new(template.to_str().unwrap())
        .save_best_only(true)
        .save_weights_only(true);
    let mut single = ModelCheckpoint::new(best.to_str().unwrap()).save_best_only(true);
    per_epoch.on_train_begin(&mut m, &Logs::new()).unwrap();
    single.on_train_begin(&mut m, &Logs::new()).unwrap();
    let seq = [1.0, 0.8, 0.9, 0.7];
    let mut best_bytes = Vec::new();
    for (epoch, v) in seq.iter().enumerate() {
        set_all(&m, epoch as f32 + 1.0);
        let l = logs(&[("val_loss", *v), ("loss", 1.0)]);
        per_epoch
            .on_epoch_end(&mut m, epoch, &mut l.clone())
            .unwrap();
        single.on_epoch_end(&mut m, epoch, &mut l.clone()).unwrap();
        let bytes = std::fs::read(&best).unwrap();
        if epoch == 2 {
            // No improvement: the file still holds epoch 1's weights.
            assert_eq!(bytes, best_bytes);
        } else {
            assert_ne!(bytes, best_bytes);
        }
        best_bytes = bytes;
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "best.safetensors",
            "w.01-1.00.safetensors",
            "w.02-0.80.safetensors",
            "w.04-0.70.safetensors"
        ]
    );
    // The epoch-2 file (weights 2.0) loads back.
    m.load_weights(dir.join("w.02-0.80.safetensors")).unwrap();
    assert_eq!(weights_f64(&m), vec![vec![2.0], vec![2.0]]);
    m.load_weights(&best).unwrap();
    assert_eq!(weights_f64(&m), vec![vec![4.0], vec![4.0]]);
    // initial_value_threshold: nothing is saved until the value beats it.
    let gated = dir.join("gated.safetensors");
    let mut cb = ModelCheckpoint::new(gated.to_str().unwrap())
        .save_best_only(true)
        .initial_value_threshold(0.75);
    cb.on_train_begin(&mut m, &Logs::new()).unwrap();
    cb.on_epoch_end(&mut m, 0, &mut logs(&[("val_loss", 0.8)]))
        .unwrap();
    assert!(!gated.exists());
    cb.on_epoch_end(&mut m, 1, &mut logs(&[("val_loss", 0.7)]))
        .unwrap();
    assert!(gated.exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn checkpoint_in_fit_and_bad_extension() {
    let dir = tmpdir("ckfit");
    let (x, y) = data();
    let mut m = model(0.1);
    let path = dir.join("sub/e{epoch}.safetensors");
    m.fit(&x, &y)
        .epochs(3)
        .batch_size(8)
        .verbose(0)
        .validation_data(&x, &y)
        .callback(ModelCheckpoint::new(path.to_str().unwrap()))
        .run()
        .unwrap();
    for e in 1..=3 {
        assert!(dir.join(format!("sub/e{e}.safetensors")).exists());
    }
    // The last file holds the final weights.
    let fin = weights_f64(&m);
    set_all(&m, 0.0);
    m.load_weights(dir.join("sub/e3.safetensors")).unwrap();
    assert_eq!(weights_f64(&m), fin);
    let err = m
        .fit(&x, &y)
        .epochs(1)
        .verbose(0)
        .callback(ModelCheckpoint::new("model.keras"))
        .run()
        .unwrap_err();
    assert!(err.to_string().contains(".safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

// ---------- learning rate ----------

#[test]
fn reduce_lr_on_plateau_algorithm() {
    let mut m = model(0.1);
    let mut cb = ReduceLROnPlateau::new()
        .monitor("loss")
        .factor(0.5)
        .patience(2)
        .cooldown(2)
        .min_lr(0.02);
    cb.on_train_begin(&mut m, &Logs::new()).unwrap();
    // Constant loss (Keras 3's order: the cooldown counter is decremented first, then the wait
    // counts if no longer cooling down): epoch 0 improves on +inf; waits 1, 2 → reduce at
    // epoch 2 (0.05, cooldown 2); epoch 3 cooling (1 left); epoch 4 cooldown ends, wait 1;
    // epoch 5 wait 2 → 0.025; epochs 6, 7 likewise; epoch 8 → max(0.0125, 0.02) = 0.02;
    // epoch 11: the rate is not above min_lr any more → unchanged.
    let mut lrs = Vec::new();
    for epoch in 0..12 {
        cb.on_epoch_end(&mut m, epoch, &mut logs(&[("loss", 1.0)]))
            .unwrap();
        lrs.push(m.optimizer().unwrap().learning_rate());
    }
    let want = [
        0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02, 0.02, 0.02, 0.02,
    ];
    for (g, w) in lrs.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{lrs:?}");
    }
    // Improvements by more than min_delta reset the wait.
    let mut m = model(0.1);
    let mut cb = ReduceLROnPlateau::new().monitor("loss").patience(1);
    cb.on_train_begin(&mut m, &Logs::new()).unwrap();
    for (e, v) in [1.0, 0.9, 0.8, 0.79995].iter().enumerate() {
        cb.on_epoch_end(&mut m, e, &mut logs(&[("loss", *v)]))
            .unwrap();
    }
    // 0.79995 is within min_delta=1e-4 of 0.8 → no improvement → reduced once.
    assert!((m.optimizer().unwrap().learning_rate() - 0.01).abs() < 1e-12);
    assert!(ReduceLROnPlateau::new()
        .factor(1.5)
        .on_train_begin(&mut m, &Logs::new())
        .is_err());
}

#[test]
fn reduce_lr_on_plateau_in_fit() {
    let (x, y) = data();
    let mut m = model(0.1);
    let lrs = Arc::new(Mutex::new(Vec::new()));
    // mode="max" on the falling training loss: every epoch after the first is a plateau.
    m.fit(&x, &y)
        .epochs(4)
        .batch_size(8)
        .verbose(0)
        .callback(
            ReduceLROnPlateau::new()
                .monitor("loss")
                .mode("max")
                .patience(1),
        )
        .callback(LrRecorder(lrs.clone()))
        .run()
        .unwrap();
    let lrs = lrs.lock().unwrap();
    let want = [0.1, 0.01, 0.001, 0.0001];
    for (g, w) in lrs.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{lrs:?}");
    }
}

#[test]
fn learning_rate_scheduler_sets_rate_each_epoch() {
    let (x, y) = data();
    let mut m = model(0.2);
    let lrs = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    m.fit(&x, &y)
        .epochs(4)
        .batch_size(8)
        .verbose(0)
        .callback(LearningRateScheduler::new(move |epoch, lr| {
            s.lock().unwrap().push((epoch, lr));
            if epoch < 2 {
                lr
            } else {
                lr * 0.5
            }
        }))
        .callback(LrRecorder(lrs.clone()))
        .run()
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(0, 0.2), (1, 0.2), (2, 0.2), (3, 0.1)]
    );
    assert_eq!(*lrs.lock().unwrap(), vec![0.2, 0.2, 0.1, 0.05]);
    // The rate is really used: with lr 0 the weights do not move.
    let mut m = model(0.5);
    let before = weights_f64(&m);
    m.fit(&x, &y)
        .epochs(2)
        .verbose(0)
        .callback(LearningRateScheduler::new(|_, _| 0.0))
        .run()
        .unwrap();
    assert_eq!(weights_f64(&m), before);
}

// ---------- CSVLogger ----------

#[test]
fn csv_logger_writes_sorted_keys_and_appends() {
    let dir = tmpdir("csv");
    let file = dir.join("log.csv");
    let (x, y) = data();
    let mut m = model(0.1);
    let h = m
        .fit(&x, &y)
        .epochs(3)
        .batch_size(8)
        .verbose(0)
        .validation_data(&x, &y)
        .callback(CSVLogger::new(file.to_str().unwrap()))
        .run()
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines.len(), 5, "{text:?}"); // header, 3 rows, "" after the last \r\n
    assert_eq!(lines[0], "epoch,loss,val_loss");
    assert_eq!(lines[4], "");
    for e in 0..3 {
        let f: Vec<&str> = lines[e + 1].split(',').collect();
        assert_eq!(f[0], e.to_string());
        // Python's repr round-trips exactly.
        assert_eq!(f[1].parse::<f64>().unwrap(), h.get("loss").unwrap()[e]);
        assert_eq!(f[2].parse::<f64>().unwrap(), h.get("val_loss").unwrap()[e]);
    }
    // Append with another separator: no second header.
    m.fit(&x, &y)
        .epochs(1)
        .verbose(0)
        .callback(
            CSVLogger::new(file.to_str().unwrap())
                .separator(";")
                .append(true),
        )
        .run()
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines.len(), 6);
    assert!(lines[4].starts_with("0;"), "{:?}", lines[4]);
    assert_eq!(lines[4].split(';').count(), 2); // epoch;loss (no validation this time)
                                                // Hand-driven: a key missing from a later epoch is NA; floats print as Python does.
    let f2 = dir.join("hand.csv");
    let mut cb = CSVLogger::new(f2.to_str().unwrap());
    cb.on_train_begin(&mut m, &Logs::new()).unwrap();
    cb.on_epoch_end(&mut m, 0, &mut logs(&[("loss", 0.5), ("acc", 1e-5)]))
        .unwrap();
    cb.on_epoch_end(&mut m, 1, &mut logs(&[("loss", 2.0)]))
        .unwrap();
    cb.on_train_end(&mut m, &Logs::new()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&f2).unwrap(),
        "epoch,acc,loss\r\n0,1e-05,0.5\r\n1,NA,2.0\r\n"
    );
    std::fs::remove_dir_all(&dir).ok();
}

// ---------- TerminateOnNaN / LambdaCallback ----------

#[test]
fn terminate_on_nan_stops_a_diverging_fit() {
    let (x, y) = data();
    let x = ops::mul_scalar(&x, 1e3).unwrap();
    let mut m = model(1e6);
    let batches = Arc::new(Mutex::new(0usize));
    let b = batches.clone();
    let h = m
        .fit(&x, &y)
        .epochs(50)
        .batch_size(1)
        .verbose(0)
        .shuffle(false)
        .callback(TerminateOnNaN::new())
        .callback(LambdaCallback::new().on_train_batch_end(move |_, _| {
            *b.lock().unwrap() += 1;
        }))
        .run()
        .unwrap();
    assert_eq!(h.epoch, vec![0]);
    assert!(!h.get("loss").unwrap()[0].is_finite());
    assert!(
        *batches.lock().unwrap() < 32,
        "training went on after the NaN"
    );
    // Without it, training runs all epochs.
    let mut m = model(1e6);
    let h = m.fit(&x, &y).epochs(2).verbose(0).run().unwrap();
    assert_eq!(h.epoch.len(), 2);
}

#[test]
fn lambda_callback_hooks_are_called_in_order() {
    let (x, y) = data();
    let mut m = model(0.1);
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let (a, b, c, d, e, f) = (
        events.clone(),
        events.clone(),
        events.clone(),
        events.clone(),
        events.clone(),
        events.clone(),
    );
    m.fit(&x, &y)
        .epochs(2)
        .batch_size(16)
        .verbose(0)
        .callback(
            LambdaCallback::new()
                .on_train_begin(move |_| a.lock().unwrap().push("train_begin".into()))
                .on_epoch_begin(move |e, _| b.lock().unwrap().push(format!("epoch_begin {e}")))
                .on_train_batch_begin(move |i, _| {
                    c.lock().unwrap().push(format!("batch_begin {i}"))
                })
                .on_train_batch_end(move |i, l| {
                    assert!(l.contains_key("loss"));
                    d.lock().unwrap().push(format!("batch_end {i}"))
                })
                .on_epoch_end(move |ep, l| {
                    assert!(l.contains_key("loss"));
                    e.lock().unwrap().push(format!("epoch_end {ep}"))
                })
                .on_train_end(move |_| f.lock().unwrap().push("train_end".into())),
        )
        .run()
        .unwrap();
    let ev = events.lock().unwrap().clone();
    assert_eq!(
        ev,
        vec![
            "train_begin",
            "epoch_begin 0",
            "batch_begin 0",
            "batch_end 0",
            "batch_begin 1",
            "batch_end 1",
            "epoch_end 0",
            "epoch_begin 1",
            "batch_begin 0",
            "batch_end 0",
            "batch_begin 1",
            "batch_end 1",
            "epoch_end 1",
            "train_end"
        ]
    );
}

// ---------- save_weights / load_weights ----------

#[test]
fn save_load_round_trip_and_errors() {
    let dir = tmpdir("save");
    let mut m = model(0.1);
    let (x, y) = data();
    m.fit(&x, &y).epochs(2).verbose(0).run().unwrap();
    let w = weights_f64(&m);
    let path = dir.join("m.weights.safetensors");
    m.save_weights(&path).unwrap();
    // Written atomically: no temporary file left behind.
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(entries.len(), 1);
    set_all(&m, 0.0);
    m.load_weights(&path).unwrap();
    assert_eq!(weights_f64(&m), w);

    // A model with other layer names but the same structure loads by position.
    let mut other = Sequential::new();
    other
        .add(Dense::new(1).named("renamed").input_shape(&[1]))
        .unwrap();
    other.load_weights(&path).unwrap();
    assert_eq!(weights_f64(&other), w);

    // A mis-shaped weight is an error naming the shapes, and nothing is assigned.
    let mut wide = Sequential::new();
    wide.add(Dense::new(2).input_shape(&[1])).unwrap();
    let before = weights_f64(&wide);
    let err = wide.load_weights(&path).unwrap_err().to_string();
    assert!(
        err.contains("does not match") || err.contains("shape"),
        "{err}"
    );
    assert_eq!(weights_f64(&wide), before);

    // Truncated and garbage files are errors, not panics.
    let bytes = std::fs::read(&path).unwrap();
    let bad = dir.join("bad.safetensors");
    for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        let err = m.load_weights(&bad).unwrap_err().to_string();
        assert!(err.contains("load_weights"), "{err}");
    }
    std::fs::write(&bad, b"this is not a safetensors file at all").unwrap();
    assert!(m.load_weights(&bad).is_err());
    // Missing file and unsupported extensions.
    assert!(m.load_weights(dir.join("nope.safetensors")).is_err());
    for p in ["w.weights.h5", "m.keras", "w.bin"] {
        let err = m.save_weights(dir.join(p)).unwrap_err().to_string();
        assert!(err.contains(".safetensors"), "{err}");
        assert!(m.load_weights(dir.join(p)).is_err());
    }
    // An unbuilt model has nothing to load into.
    let mut empty = Sequential::new();
    empty.add(Dense::new(1)).unwrap();
    assert!(empty.load_weights(&path).is_err());
    // Casting: a float64 model loads float32 values.
    let cast = ops::cast(&m.get_weights()[0], DType::F64).unwrap();
    assert_eq!(cast.to_f64_vec(), w[0]);
    std::fs::remove_dir_all(&dir).ok();
}
