//! Checkpoints resume training exactly: 2 epochs straight equal 1 epoch + checkpoint (written by
//! `ModelCheckpoint`) + reload in a fresh session + 1 epoch, bit for bit.

use ferroflow_core::{ops, Tensor};
use ferroflow_io::{load_checkpoint, register_savers};
use ferroflow_keras::backend::{clear_session, set_random_seed};
use ferroflow_keras::callbacks::ModelCheckpoint;
use ferroflow_keras::layers::{Dense, Dropout, Layer};
use ferroflow_keras::{Model, Sequential};

use crate::common::{inputs, python, run_python, tmp};

fn model() -> Model {
    let mut m = Sequential::new();
    m.add(Dense::new(8).activation("relu").input_shape(&[5]))
        .unwrap();
    m.add(Dropout::new(0.3)).unwrap();
    m.add(Dense::new(1)).unwrap();
    m.compile("adam", "mse", ()).unwrap();
    m.into_model()
}

fn data() -> (Tensor, Tensor) {
    let x = inputs(&[12, 5]);
    let y = ops::reduce_sum(&x, ops::Axes::These(vec![1]), true).unwrap();
    (x, y)
}

fn bits(m: &Model) -> Vec<Vec<u32>> {
    m.get_weights()
        .iter()
        .map(|t| {
            t.to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        })
        .collect()
}

/// A fresh session seeded with `seed`: the model trained for `epochs` (batches of 4, shuffled,
/// dropout active), with a `ModelCheckpoint` writing to `checkpoint` if given.
fn train(seed: u64, epochs: usize, checkpoint: Option<&str>) -> Model {
    let (x, y) = data();
    clear_session();
    set_random_seed(seed);
    let mut m = model();
    let mut fit = m.fit(&x, &y).epochs(epochs).batch_size(4).verbose(0);
    if let Some(template) = checkpoint {
        fit = fit.callback(ModelCheckpoint::new(template));
    }
    fit.run().unwrap();
    m
}

/// A fresh "process" (other session state: another seed, another model built first) loads the
/// checkpoint `file` and trains on until `epochs`; returns the model and the epochs it ran.
fn resume(
    file: &str,
    epochs: usize,
    expect_epoch: usize,
    expect_iterations: u64,
) -> (Model, Vec<usize>) {
    let (x, y) = data();
    clear_session();
    set_random_seed(7);
    let _noise = model();
    let (mut c, st) = load_checkpoint(file).unwrap();
    assert_eq!(st.epoch, expect_epoch);
    assert_eq!(
        c.compiled().unwrap().optimizer.iterations(),
        expect_iterations
    );
    let h = c
        .fit(&x, &y)
        .epochs(epochs)
        .initial_epoch(st.epoch)
        .batch_size(4)
        .verbose(0)
        .run()
        .unwrap();
    (c, h.epoch)
}

#[test]
fn resume_from_checkpoint_is_bit_identical() {
    register_savers();
    let a = train(42, 2, None);
    let straight = bits(&a);
    assert_eq!(a.compiled().unwrap().optimizer.iterations(), 6);

    // 1 epoch, checkpointed by ModelCheckpoint.
    let template = tmp("ckpt/model.{epoch:02d}.keras")
        .to_string_lossy()
        .to_string();
    drop(train(42, 1, Some(&template)));
    let file = template.replace("{epoch:02d}", "01");
    // Keras ignores the extra state member: the checkpoint is a valid .keras file.
    if let Some(py) = python() {
        let out = run_python(
            &py,
            &format!(
                "import keras\nm = keras.models.load_model({file:?})\nprint(int(m.optimizer.iterations.numpy()))"
            ),
        );
        assert_eq!(out.lines().last(), Some("3"));
    } else {
        eprintln!("skipped the Keras check: no python with keras");
    }

    let (c, _) = resume(&file, 2, 1, 3);
    assert_eq!(c.compiled().unwrap().optimizer.iterations(), 6);
    assert_eq!(
        bits(&c),
        straight,
        "resumed weights differ from the straight run"
    );
}

fn optimizer_bits(m: &Model) -> Vec<Vec<u64>> {
    m.compiled()
        .unwrap()
        .optimizer
        .variables()
        .iter()
        .map(|v| v.value().to_f64_vec().iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// The wording: resuming after epoch 2 of 4 (a `ModelCheckpoint` file per epoch, a
/// fresh session, `initial_epoch=2`) ends bit-identical to 4 uninterrupted epochs: weights,
/// Adam's moments and iteration count; shuffling and dropout continue the same random streams.
#[test]
fn resume_after_epoch_2_of_4_is_bit_identical() {
    register_savers();
    let a = train(1234, 4, None);
    let (straight, straight_opt) = (bits(&a), optimizer_bits(&a));
    assert_eq!(a.compiled().unwrap().optimizer.iterations(), 12);
    assert!(!straight_opt.is_empty());

    let template = tmp("ckpt24/model.{epoch:02d}.keras")
        .to_string_lossy()
        .to_string();
    drop(train(1234, 2, Some(&template)));
    let file = template.replace("{epoch:02d}", "02");

    let (c, epochs) = resume(&file, 4, 2, 6);
    assert_eq!(epochs, vec![2, 3]);
    assert_eq!(c.compiled().unwrap().optimizer.iterations(), 12);
    assert_eq!(
        bits(&c),
        straight,
        "resumed weights differ from 4 straight epochs"
    );
    assert_eq!(
        optimizer_bits(&c),
        straight_opt,
        "resumed optimizer state differs from 4 straight epochs"
    );
}

#[test]
fn checkpoint_without_restoring_rng_differs() {
    // The control: resuming from a plain .keras (no training state: the seed stream, the
    // dropout call counts and the exact learning rate are not restored) gives other weights,
    // so the test above really depends on the restored state.
    register_savers();
    let (x, y) = data();
    let straight = bits(&train(42, 2, None));
    let b = train(42, 1, None);
    let p = tmp("plain.keras");
    ferroflow_io::save_model(&b, &p).unwrap();
    clear_session();
    set_random_seed(7);
    let (mut c, st) = load_checkpoint(&p).unwrap();
    assert_eq!(st.epoch, 0, "a plain .keras has no training state");
    c.fit(&x, &y)
        .epochs(2)
        .initial_epoch(1)
        .batch_size(4)
        .verbose(0)
        .run()
        .unwrap();
    assert_ne!(bits(&c), straight);
}

#[test]
fn weights_h5_checkpoints_and_bad_suffix() {
    register_savers();
    let (x, y) = data();
    let mut m = model();
    let p = tmp("w.weights.h5");
    m.fit(&x, &y)
        .epochs(1)
        .verbose(0)
        .callback(ModelCheckpoint::new(&p.to_string_lossy()))
        .run()
        .unwrap();
    let mut fresh = model();
    ferroflow_io::load_weights(&mut fresh, &p).unwrap();
    assert_eq!(bits(&fresh), bits(&m));
    // A plain `.h5` path is a legacy full model, as Keras's ModelCheckpoint("m.h5").
    let h5 = tmp("m.h5");
    m.fit(&x, &y)
        .epochs(1)
        .verbose(0)
        .callback(ModelCheckpoint::new(&h5.to_string_lossy()))
        .run()
        .unwrap();
    let back = ferroflow_io::load_model(&h5).unwrap();
    assert_eq!(bits(&back), bits(&m));
    let e = m
        .fit(&x, &y)
        .epochs(1)
        .verbose(0)
        .callback(ModelCheckpoint::new(&tmp("w.pickle").to_string_lossy()))
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains("w.pickle"), "{e}");
    // Keras's rule: save_weights_only needs a weights file, not a .keras one.
    let e = m
        .fit(&x, &y)
        .epochs(1)
        .verbose(0)
        .callback(ModelCheckpoint::new(&tmp("m.keras").to_string_lossy()).save_weights_only(true))
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains(".weights.h5") && e.contains("m.keras"), "{e}");
}

#[test]
fn failed_save_keeps_previous_checkpoint() {
    let m = model();
    let p = tmp("keep.keras");
    ferroflow_io::save_model(&m, &p).unwrap();
    let before = std::fs::read(&p).unwrap();
    // A save whose target is a directory fails at the rename; the old file's bytes are intact
    // and no temporary file is left next to it.
    let dir = p.with_file_name("adir.keras");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("x"), b"x").unwrap();
    assert!(ferroflow_io::save_model(&m, &dir).is_err());
    assert_eq!(std::fs::read(&p).unwrap(), before);
    let left: Vec<_> = std::fs::read_dir(p.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        left.iter().all(|n| n == "keep.keras" || n == "adir.keras"),
        "{left:?}"
    );
    // Corrupt state member: an error naming the file.
    assert!(load_checkpoint(p.with_file_name("missing.keras")).is_err());
}
