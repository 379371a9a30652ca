//! Traced train steps with random layers (issue 4): the seeds are inputs of the traced graph,
//! fed per step from the layers' seed streams, so traced and eager training with Dropout give
//! bit-identical weights, every step draws a new mask, and the layers' call counts (which
//! checkpoints save) advance exactly as in eager training.

use ferroflow_core::{ops, DType, Tensor};
use ferroflow_keras::layers::{
    Conv2D, Dense, Dropout, Embedding, Flatten, Input, MaxPooling2D, RandomFlip, LSTM,
};
use ferroflow_keras::optimizers::SGD;
use ferroflow_keras::prelude::*;
use ferroflow_keras::utils::{clear_session, set_random_seed};

fn data(n: usize, shape: &[usize], classes: i64, seed: u64) -> (Tensor, Tensor) {
    let mut full = vec![n];
    full.extend_from_slice(shape);
    let x = ops::random_normal(&full, 0.0, 1.0, DType::F32, seed).unwrap();
    let y = ops::random_uniform_int(&[n], 0, classes, DType::I64, seed + 1).unwrap();
    (x, y)
}

fn bits(m: &Model) -> Vec<u32> {
    m.get_weights()
        .iter()
        .flat_map(|w| w.to_vec::<f32>().unwrap())
        .map(f32::to_bits)
        .collect()
}

fn calls(m: &Model) -> Vec<u64> {
    m.layers().iter().map(|l| l.lock().base().calls).collect()
}

fn dropout_mlp() -> Sequential {
    let mut m = Sequential::new();
    m.add(Dense::new(32).activation("relu").input_shape(&[8]))
        .unwrap();
    m.add(Dropout::new(0.4)).unwrap();
    m.add(Dense::new(16).activation("relu")).unwrap();
    m.add(Dropout::new(0.2)).unwrap();
    m.add(Dense::new(4).activation("softmax")).unwrap();
    m
}

/// The seed CNN's shape (conv → pool → flatten → dropout → dense), small.
fn dropout_cnn() -> Sequential {
    let mut m = Sequential::new();
    m.add(
        Conv2D::new(4, (3, 3))
            .activation("relu")
            .input_shape(&[8, 8, 1]),
    )
    .unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dropout::new(0.5)).unwrap();
    m.add(Dense::new(3).activation("softmax")).unwrap();
    m
}

struct Run {
    bits: Vec<u32>,
    loss: Vec<f64>,
    val_loss: Vec<f64>,
    calls: Vec<u64>,
    traced: usize,
    fallback: Option<String>,
}

fn fit(make: fn() -> Sequential, x: &Tensor, y: &Tensor, optimizer: &str, eager: bool) -> Run {
    clear_session();
    set_random_seed(17);
    let mut m = make();
    m.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap()
        .run_eagerly(eager);
    // Shuffled (the default), a partial last batch, validation: 4 epochs.
    let h = m
        .fit(x, y)
        .epochs(4)
        .batch_size(16)
        .validation_split(0.2)
        .verbose(0)
        .run()
        .unwrap();
    Run {
        bits: bits(&m),
        loss: h.get("loss").unwrap().to_vec(),
        val_loss: h.get("val_loss").unwrap().to_vec(),
        calls: calls(&m),
        traced: m.traced_step_count(),
        fallback: m.eager_fallback_reason(),
    }
}

fn assert_traced_equals_eager(make: fn() -> Sequential, x: &Tensor, y: &Tensor, opt: &str) {
    let e = fit(make, x, y, opt, true);
    let t = fit(make, x, y, opt, false);
    assert_eq!(e.traced, 0);
    assert_eq!(t.fallback, None, "the random train step is traced");
    assert!(t.traced >= 2, "train steps traced: {}", t.traced);
    // Each Dropout layer drew one seed per train step, in both modes.
    assert_eq!(e.calls, t.calls);
    assert!(t.calls.iter().any(|&c| c > 0));
    assert_eq!(e.loss, t.loss);
    assert_eq!(e.val_loss, t.val_loss);
    assert_eq!(e.bits, t.bits, "weights differ between traced and eager");
}

#[test]
fn traced_mlp_with_dropout_is_bit_identical_to_eager() {
    // 70 samples: 56 train (batches 16, 16, 16, 8), 14 validation.
    let (x, y) = data(70, &[8], 4, 101);
    assert_traced_equals_eager(dropout_mlp, &x, &y, "adam");
    // Steps per epoch 4, epochs 4: every Dropout layer was called 16 times in training.
    let t = fit(dropout_mlp, &x, &y, "adam", false);
    assert_eq!(t.calls, vec![0, 16, 0, 16, 0]);
}

#[test]
fn traced_cnn_with_dropout_is_bit_identical_to_eager() {
    let (x, y) = data(45, &[8, 8, 1], 3, 103);
    assert_traced_equals_eager(dropout_cnn, &x, &y, "rmsprop");
}

#[test]
fn traced_dropout_draws_a_new_mask_every_step() {
    let (x, y) = data(16, &[8], 4, 71);
    clear_session();
    set_random_seed(4);
    let mut m = Sequential::new();
    m.add(Dense::new(32).input_shape(&[8])).unwrap();
    m.add(Dropout::new(0.5)).unwrap();
    m.add(Dense::new(4).activation("softmax")).unwrap();
    // Learning rate 0: the weights stay, so only the dropout mask can change the loss.
    m.compile(
        SGD::new().learning_rate(0.0),
        "sparse_categorical_crossentropy",
        (),
    )
    .unwrap();
    let a = m.train_on_batch(&x, &y, None).unwrap()["loss"];
    let b = m.train_on_batch(&x, &y, None).unwrap()["loss"];
    let c = m.train_on_batch(&x, &y, None).unwrap()["loss"];
    assert_eq!(m.traced_step_count(), 1);
    assert_eq!(m.eager_fallback_reason(), None);
    assert_eq!(calls(&m), vec![0, 3, 0]);
    assert!(a != b && b != c && a != c, "a mask repeated: {a} {b} {c}");

    // The same three steps eagerly, from the same seed: the same three losses.
    clear_session();
    set_random_seed(4);
    let mut e = Sequential::new();
    e.add(Dense::new(32).input_shape(&[8])).unwrap();
    e.add(Dropout::new(0.5)).unwrap();
    e.add(Dense::new(4).activation("softmax")).unwrap();
    e.compile(
        SGD::new().learning_rate(0.0),
        "sparse_categorical_crossentropy",
        (),
    )
    .unwrap()
    .run_eagerly(true);
    let got: Vec<f64> = (0..3)
        .map(|_| e.train_on_batch(&x, &y, None).unwrap()["loss"])
        .collect();
    assert_eq!(got, vec![a, b, c]);
}

#[test]
fn traced_step_continues_from_restored_call_counts() {
    // What a checkpoint restores: the layers' call counts. Setting them back replays the masks.
    let (x, y) = data(16, &[8], 4, 73);
    clear_session();
    set_random_seed(5);
    let mut m = dropout_mlp();
    m.compile(
        SGD::new().learning_rate(0.0),
        "sparse_categorical_crossentropy",
        (),
    )
    .unwrap();
    let first: Vec<f64> = (0..2)
        .map(|_| m.train_on_batch(&x, &y, None).unwrap()["loss"])
        .collect();
    for l in m.layers() {
        l.lock().base_mut().calls = 0;
    }
    let again: Vec<f64> = (0..2)
        .map(|_| m.train_on_batch(&x, &y, None).unwrap()["loss"])
        .collect();
    assert_eq!(first, again);
    assert_eq!(m.traced_step_count(), 1);
}

#[test]
fn traced_lstm_with_dropout_and_recurrent_dropout_equals_eager() {
    // The RNN derives one mask seed per gate from its call seed (`mix(seed ^ g)`).
    let ids = ops::random_uniform_int(&[12, 5], 1, 6, DType::I32, 7).unwrap();
    let labels = ops::random_uniform_int(&[12], 0, 3, DType::I64, 8).unwrap();
    let run = |eager: bool| {
        clear_session();
        set_random_seed(21);
        let mut m = Sequential::new();
        m.add(Input::with_shape(&[Some(5)], DType::I32, None))
            .unwrap();
        m.add(Embedding::new(6, 3)).unwrap();
        m.add(LSTM::new(4).dropout(0.3).recurrent_dropout(0.2))
            .unwrap();
        m.add(Dense::new(3).activation("softmax")).unwrap();
        m.compile("adam", "sparse_categorical_crossentropy", ())
            .unwrap()
            .run_eagerly(eager);
        let h = m
            .fit(&ids, &labels)
            .epochs(3)
            .batch_size(4)
            .verbose(0)
            .run()
            .unwrap();
        (
            bits(&m),
            h.get("loss").unwrap().to_vec(),
            calls(&m),
            m.eager_fallback_reason(),
        )
    };
    let (eb, el, ec, _) = run(true);
    let (tb, tl, tc, reason) = run(false);
    assert_eq!(reason, None);
    assert_eq!(ec, tc);
    assert_eq!(el, tl);
    assert_eq!(eb, tb);
}

#[test]
fn host_side_augmentation_falls_back_to_eager_with_a_reason() {
    // RandomFlip draws its flips on the host: a trace would replay them as constants.
    let (x, y) = data(16, &[4, 4, 1], 2, 75);
    let run = |eager: bool| {
        clear_session();
        set_random_seed(6);
        let mut m = Sequential::new();
        m.add(RandomFlip::new("horizontal").input_shape(&[4, 4, 1]))
            .unwrap();
        m.add(Flatten::new()).unwrap();
        m.add(Dense::new(2).activation("softmax")).unwrap();
        m.compile("sgd", "sparse_categorical_crossentropy", ())
            .unwrap()
            .run_eagerly(eager);
        m.fit(&x, &y)
            .epochs(2)
            .batch_size(8)
            .verbose(0)
            .run()
            .unwrap();
        (bits(&m), calls(&m), m.eager_fallback_reason())
    };
    let (eb, ec, _) = run(true);
    let (tb, tc, reason) = run(false);
    let reason = reason.expect("falls back");
    assert!(reason.contains("on the host"), "{reason}");
    assert_eq!(ec, tc);
    assert_eq!(eb, tb);
}

#[test]
fn the_train_step_graph_feeds_seeds_and_updates_without_returning_gradients() {
    let (x, y) = data(16, &[8], 4, 77);
    clear_session();
    set_random_seed(3);
    let mut m = dropout_mlp();
    m.compile("adam", "sparse_categorical_crossentropy", ())
        .unwrap();
    m.train_on_batch(&x, &y, None).unwrap();
    let graphs = m.traced_train_step_graphs();
    assert_eq!(graphs.len(), 1);
    let g = &graphs[0];
    // The batch (x, y) and one seed per Dropout layer.
    assert!(
        g.contains("(float32(16, 8), int64(16,), int64(), int64())"),
        "{g}"
    );
    assert_eq!(g.matches("= Placeholder()").count(), 4, "{g}");
    assert_eq!(g.matches("= DropoutMask(").count(), 2, "{g}");
    // One update node for the six trainable variables; the outputs are the loss, the output's
    // loss, the predictions and the update's iteration count — no gradient.
    assert_eq!(g.matches("= ApplyOptimizer(").count(), 1, "{g}");
    assert!(g.contains("4 outputs"), "{g}");
    assert_eq!(m.optimizer().unwrap().iterations(), 1);
}
