//! `fit`/`evaluate`/`predict` as traced graphs (the default, Keras 3's `run_eagerly=False`)
//! against the eager path (`compile(...)?.run_eagerly(true)`): same seed, same weights.

use ferroflow_core::{ops, DType, Tensor};
use ferroflow_keras::layers::{BatchNormalization, Conv2D, Dense, Flatten, Lambda, MaxPooling2D};
use ferroflow_keras::optimizers::{Optimizer, SGD};
use ferroflow_keras::prelude::*;
use ferroflow_keras::utils::{clear_session, set_random_seed};

fn data(n: usize, shape: &[usize], classes: i64, seed: u64) -> (Tensor, Tensor) {
    let mut full = vec![n];
    full.extend_from_slice(shape);
    let x = ops::random_normal(&full, 0.0, 1.0, DType::F32, seed).unwrap();
    let y = ops::random_uniform_int(&[n], 0, classes, DType::I64, seed + 1).unwrap();
    (x, y)
}

fn mlp() -> Sequential {
    let mut m = Sequential::new();
    m.add(Dense::new(16).activation("relu").input_shape(&[8]))
        .unwrap();
    m.add(Dense::new(4).activation("softmax")).unwrap();
    m
}

fn cnn() -> Sequential {
    let mut m = Sequential::new();
    m.add(
        Conv2D::new(4, (3, 3))
            .activation("relu")
            .input_shape(&[8, 8, 1]),
    )
    .unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(3).activation("softmax")).unwrap();
    m
}

fn bits(m: &Model) -> Vec<u32> {
    m.get_weights()
        .iter()
        .flat_map(|w| w.to_vec::<f32>().unwrap())
        .map(f32::to_bits)
        .collect()
}

/// Fits a fresh model from `seed`; returns the weights' bits, the history and the model.
fn fit_once(
    make: fn() -> Sequential,
    optimizer: &str,
    x: &Tensor,
    y: &Tensor,
    eager: bool,
) -> (Vec<u32>, History, Sequential) {
    clear_session();
    set_random_seed(7);
    let mut m = make();
    m.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap()
        .run_eagerly(eager);
    assert_eq!(m.run_eagerly(), eager);
    let h = m
        .fit(x, y)
        .epochs(2)
        .batch_size(16)
        .validation_split(0.2)
        .verbose(0)
        .run()
        .unwrap();
    (bits(&m), h, m)
}

fn assert_same_history(a: &History, b: &History) {
    for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
        let (a, b) = (a.get(key).unwrap(), b.get(key).unwrap());
        assert_eq!(a, b, "{key}");
    }
}

#[test]
fn traced_fit_of_the_mlp_is_bit_identical_to_eager() {
    // 50 samples: 40 train (batches of 16, 16, 8) and 10 validation.
    let (x, y) = data(50, &[8], 4, 11);
    let (eager_bits, eager_h, eager_m) = fit_once(mlp, "adam", &x, &y, true);
    let (traced_bits, traced_h, traced_m) = fit_once(mlp, "adam", &x, &y, false);
    assert_eq!(eager_m.traced_step_count(), 0);
    // Train steps for 16 and 8 samples (the partial batch retraces), one test step for 10.
    assert_eq!(traced_m.traced_step_count(), 3);
    assert_eq!(traced_m.eager_fallback_reason(), None);
    assert_eq!(eager_bits, traced_bits);
    assert_same_history(&eager_h, &traced_h);
    clear_session();
    set_random_seed(7);
    let fresh = mlp();
    assert_ne!(eager_bits, bits(&fresh), "training moved the weights");
}

#[test]
fn traced_fit_of_a_small_cnn_is_bit_identical_to_eager() {
    let (x, y) = data(40, &[8, 8, 1], 3, 5);
    let (eager_bits, eager_h, _) = fit_once(cnn, "rmsprop", &x, &y, true);
    let (traced_bits, traced_h, traced_m) = fit_once(cnn, "rmsprop", &x, &y, false);
    assert!(traced_m.traced_step_count() >= 2);
    assert_eq!(eager_bits, traced_bits);
    assert_same_history(&eager_h, &traced_h);
}

#[test]
fn traced_evaluate_and_predict_equal_eager() {
    let (x, y) = data(37, &[8, 8, 1], 3, 21);
    clear_session();
    set_random_seed(3);
    let mut m = cnn();
    m.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap()
        .run_eagerly(true);
    let e_eval = m.evaluate(&x, &y).batch_size(8).verbose(0).run().unwrap();
    let e_pred = m.predict(&x).batch_size(8).verbose(0).run().unwrap();
    assert_eq!(m.traced_step_count(), 0);
    m.set_run_eagerly(false).unwrap();
    let t_eval = m.evaluate(&x, &y).batch_size(8).verbose(0).run().unwrap();
    let t_pred = m.predict(&x).batch_size(8).verbose(0).run().unwrap();
    // Test steps for 8 and 5 samples, predict steps for 8 and 5.
    assert_eq!(m.traced_step_count(), 4);
    assert_eq!(e_eval, t_eval);
    assert_eq!(e_pred.shape(), &[37, 3]);
    let (a, b) = (
        e_pred.to_vec::<f32>().unwrap(),
        t_pred.to_vec::<f32>().unwrap(),
    );
    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
    // A second evaluate reuses the traces.
    m.evaluate(&x, &y).batch_size(8).verbose(0).run().unwrap();
    assert_eq!(m.traced_step_count(), 4);
}

#[test]
fn batch_norm_moving_statistics_update_in_the_traced_step() {
    let make = || {
        let mut m = Sequential::new();
        m.add(Dense::new(6).input_shape(&[5])).unwrap();
        m.add(BatchNormalization::new()).unwrap();
        m.add(Dense::new(2).activation("softmax")).unwrap();
        m
    };
    let (x, y) = data(24, &[5], 2, 31);
    let run = |eager: bool| {
        clear_session();
        set_random_seed(1);
        let mut m = make();
        m.compile(
            SGD::new().learning_rate(0.05),
            "sparse_categorical_crossentropy",
            (),
        )
        .unwrap()
        .run_eagerly(eager);
        m.fit(&x, &y)
            .epochs(3)
            .batch_size(8)
            .verbose(0)
            .run()
            .unwrap();
        let moving_mean = m.non_trainable_weights()[0]
            .value()
            .to_vec::<f32>()
            .unwrap();
        (bits(&m), m.traced_step_count(), moving_mean)
    };
    let (eager, n0, _) = run(true);
    let (traced, n1, moving_mean) = run(false);
    assert_eq!((n0, n1), (0, 1));
    // Every weight, the moving statistics included, as the eager run left it.
    assert_eq!(eager, traced);
    // The moving mean (initially zeros) moved: the update ran in the traced steps.
    assert!(moving_mean.iter().any(|&v| v != 0.0), "{moving_mean:?}");
}

#[test]
fn train_on_batch_is_traced_and_retraces_only_for_new_shapes() {
    let (x, y) = data(8, &[8], 4, 41);
    clear_session();
    let mut m = mlp();
    m.compile("sgd", "sparse_categorical_crossentropy", ())
        .unwrap();
    assert!(!m.run_eagerly());
    for _ in 0..3 {
        m.train_on_batch(&x, &y, None).unwrap();
    }
    assert_eq!(m.traced_step_count(), 1);
    assert_eq!(m.optimizer().unwrap().iterations(), 3);
    let idx = Tensor::from_vec(vec![0i64, 1, 2], &[3]).unwrap();
    let (x3, y3) = (
        ops::gather(&x, &idx, 0).unwrap(),
        ops::gather(&y, &idx, 0).unwrap(),
    );
    m.train_on_batch(&x3, &y3, None).unwrap();
    assert_eq!(m.traced_step_count(), 2);
    // compile again: a fresh start, no traces.
    m.compile("sgd", "sparse_categorical_crossentropy", ())
        .unwrap();
    assert_eq!(m.traced_step_count(), 0);
}

#[test]
fn data_errors_surface_from_the_traced_step_without_falling_back() {
    let (x, _) = data(8, &[8], 4, 51);
    clear_session();
    let mut m = mlp();
    m.compile("sgd", "sparse_categorical_crossentropy", ())
        .unwrap();
    // Two target arrays for a one-output model: the eager step's error, no fallback.
    let y = Tensor::from_vec(vec![0i64; 8], &[8]).unwrap();
    let e = m
        .train_on_batch(&x, vec![y.clone(), y.clone()], None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 output(s) but 2 target"), "{e}");
    assert_eq!(m.eager_fallback_reason(), None);
    m.train_on_batch(&x, &y, None).unwrap();
    assert_eq!(m.traced_step_count(), 1);
}

#[test]
fn a_layer_that_reads_values_falls_back_to_eager_once() {
    // A Lambda that reads its input's values cannot be traced.
    let make = || {
        let mut m = Sequential::new();
        m.add(Dense::new(4).input_shape(&[8])).unwrap();
        m.add(Lambda::new(|x: &Tensor| {
            // Reads the values: a symbolic tensor has none (the trace notices).
            let peak = x.to_f64_vec().iter().fold(0.0f64, |a, v| a.max(v.abs()));
            ops::mul_scalar(x, 1.0 / (1.0 + peak))
        }))
        .unwrap();
        m.add(Dense::new(4).activation("softmax")).unwrap();
        m
    };
    let (x, y) = data(32, &[8], 4, 61);
    let run = |eager: bool| {
        clear_session();
        set_random_seed(2);
        let mut m = make();
        m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
            .unwrap()
            .run_eagerly(eager);
        let h = m
            .fit(&x, &y)
            .epochs(2)
            .batch_size(8)
            .verbose(0)
            .run()
            .unwrap();
        (
            bits(&m),
            h,
            m.eager_fallback_reason(),
            m.traced_step_count(),
        )
    };
    let (eb, eh, _, _) = run(true);
    let (tb, th, reason, n) = run(false);
    let reason = reason.expect("fell back");
    assert!(
        reason.contains("train step") && reason.contains("to_f64_vec"),
        "{reason}"
    );
    assert_eq!(n, 0);
    assert_eq!(eb, tb);
    assert_eq!(eh.get("loss"), th.get("loss"));
}

/// Fits the MLP with `optimizer` for 3 epochs (shuffled, a partial last batch) and returns
/// the weights' and optimizer variables' bits, the losses and the iteration count.
fn fit_with(
    optimizer: Box<dyn Optimizer>,
    x: &Tensor,
    y: &Tensor,
    eager: bool,
) -> (Vec<u32>, Vec<u64>, Vec<f64>, u64, Option<String>) {
    clear_session();
    set_random_seed(13);
    let mut m = mlp();
    m.compile(optimizer, "sparse_categorical_crossentropy", ())
        .unwrap()
        .run_eagerly(eager);
    let h = m
        .fit(x, y)
        .epochs(3)
        .batch_size(16)
        .verbose(0)
        .run()
        .unwrap();
    let (weights, reason) = (bits(&m), m.eager_fallback_reason());
    let opt = m.optimizer().unwrap();
    let slots: Vec<u64> = opt
        .variables()
        .iter()
        .flat_map(|v| v.value().to_f64_vec())
        .map(f64::to_bits)
        .collect();
    (
        weights,
        slots,
        h.get("loss").unwrap().to_vec(),
        opt.iterations(),
        reason,
    )
}

/// The optimizer update runs inside the traced step (an `ApplyOptimizer` node running the
/// fused host kernel): every optimizer, with momentum/nesterov/centered variants, weight decay
/// and each kind of gradient clipping, ends bit-identical to the eager step — weights, slots
/// and iteration count.
#[test]
fn every_optimizer_in_the_traced_step_is_bit_identical_to_eager() {
    use ferroflow_keras::optimizers::{
        schedules::ExponentialDecay, Adadelta, Adagrad, Adam, AdamW, Adamax, Lion, Nadam, RMSprop,
    };
    let (x, y) = data(40, &[8], 4, 81);
    type Make = fn() -> Box<dyn Optimizer>;
    let cases: Vec<(&str, Make)> = vec![
        ("sgd", || Box::new(SGD::new().learning_rate(0.05))),
        ("sgd momentum", || {
            Box::new(SGD::new().learning_rate(0.05).momentum(0.9))
        }),
        ("sgd nesterov", || {
            Box::new(SGD::new().learning_rate(0.05).momentum(0.9).nesterov(true))
        }),
        ("adam", || Box::new(Adam::new())),
        ("adamw", || Box::new(AdamW::new())),
        ("rmsprop", || Box::new(RMSprop::new())),
        ("rmsprop centered momentum", || {
            Box::new(RMSprop::new().momentum(0.5).centered(true))
        }),
        ("adagrad", || Box::new(Adagrad::new())),
        ("adadelta", || Box::new(Adadelta::new().learning_rate(1.0))),
        ("adamax", || Box::new(Adamax::new())),
        ("nadam", || Box::new(Nadam::new())),
        ("lion", || Box::new(Lion::new())),
        ("adam clipnorm", || Box::new(Adam::new().clipnorm(0.05))),
        ("adam clipvalue", || Box::new(Adam::new().clipvalue(0.01))),
        ("adam global_clipnorm", || {
            Box::new(Adam::new().global_clipnorm(0.05))
        }),
        ("sgd weight_decay", || {
            Box::new(SGD::new().learning_rate(0.05).weight_decay(0.1))
        }),
        ("adam schedule", || {
            Box::new(Adam::new().learning_rate(ExponentialDecay::new(0.01, 2, 0.5).unwrap()))
        }),
    ];
    for (name, make) in cases {
        let (eb, es, el, ei, _) = fit_with(make(), &x, &y, true);
        let (tb, ts, tl, ti, reason) = fit_with(make(), &x, &y, false);
        assert_eq!(reason, None, "{name}");
        // 40 samples in batches of 16: 3 steps per epoch.
        assert_eq!((ei, ti), (9, 9), "{name}");
        assert_eq!(el, tl, "{name}: losses");
        assert_eq!(eb, tb, "{name}: weights");
        assert_eq!(es, ts, "{name}: optimizer variables");
    }
}

/// A learning-rate callback changes the rate between epochs: the traced update reads it at
/// run time (no retrace) and matches the eager run.
#[test]
fn learning_rate_callback_applies_to_the_traced_update_without_retracing() {
    use ferroflow_keras::callbacks::LearningRateScheduler;
    let (x, y) = data(32, &[8], 4, 83);
    let run = |eager: bool| {
        clear_session();
        set_random_seed(8);
        let mut m = mlp();
        m.compile("adam", "sparse_categorical_crossentropy", ())
            .unwrap()
            .run_eagerly(eager);
        m.fit(&x, &y)
            .epochs(3)
            .batch_size(16)
            .verbose(0)
            .callback(LearningRateScheduler::new(|epoch, lr| {
                if epoch == 0 {
                    lr
                } else {
                    lr * 0.1
                }
            }))
            .run()
            .unwrap();
        (
            bits(&m),
            m.traced_step_count(),
            m.optimizer().unwrap().learning_rate(),
        )
    };
    let (eb, _, elr) = run(true);
    let (tb, n, tlr) = run(false);
    assert_eq!(n, 1, "one train step trace for every epoch");
    assert_eq!(elr.to_bits(), tlr.to_bits());
    assert!((tlr - 1e-5).abs() < 1e-12, "{tlr}");
    assert_eq!(eb, tb);
}

#[test]
fn masked_sequence_loss_and_hinge_labels_are_traced_like_eager() {
    use ferroflow_keras::layers::{Embedding, Input, LSTM};
    // Embedding(mask_zero) → LSTM(return_sequences) → Dense: the loss is weighted by the mask,
    // scaled by (size / valid steps) — computed with ops inside the traced step.
    let ids = Tensor::from_vec(
        vec![0i32, 0, 3, 1, 0, 2, 4, 1, 3, 3, 0, 0, 1, 2, 3, 4],
        &[4, 4],
    )
    .unwrap();
    let labels = ops::random_uniform_int(&[4, 4], 0, 3, DType::I64, 3).unwrap();
    let run = |eager: bool| {
        clear_session();
        set_random_seed(9);
        let mut m = Sequential::new();
        m.add(Input::with_shape(&[Some(4)], DType::I32, None))
            .unwrap();
        m.add(Embedding::new(5, 3).mask_zero(true)).unwrap();
        m.add(LSTM::new(4).return_sequences(true)).unwrap();
        m.add(Dense::new(3).activation("softmax")).unwrap();
        m.compile("adam", "sparse_categorical_crossentropy", ())
            .unwrap()
            .run_eagerly(eager);
        let h = m
            .fit(&ids, &labels)
            .epochs(2)
            .batch_size(2)
            .verbose(0)
            .run()
            .unwrap();
        (
            bits(&m),
            h.get("loss").unwrap().to_vec(),
            m.eager_fallback_reason(),
        )
    };
    let (eb, el, _) = run(true);
    let (tb, tl, reason) = run(false);
    assert_eq!(reason, None);
    assert_eq!(el, tl);
    assert_eq!(eb, tb);

    // Hinge with labels already in {-1, 1} (kept) and in {0, 1} (converted): the choice is made
    // on values, with ops, inside the traced step.
    let x = ops::random_normal(&[12, 3], 0.0, 1.0, DType::F32, 5).unwrap();
    for labels in [vec![-1.0f32, 1.0], vec![0.0, 1.0]] {
        let y: Vec<f32> = (0..12).map(|i| labels[i % 2]).collect();
        let y = Tensor::from_vec(y, &[12, 1]).unwrap();
        let run = |eager: bool| {
            clear_session();
            set_random_seed(3);
            let mut m = Sequential::new();
            m.add(Dense::new(1).activation("tanh").input_shape(&[3]))
                .unwrap();
            m.compile(SGD::new().learning_rate(0.1), "hinge", ())
                .unwrap()
                .run_eagerly(eager);
            let h = m
                .fit(&x, &y)
                .epochs(2)
                .batch_size(4)
                .verbose(0)
                .run()
                .unwrap();
            (bits(&m), h.get("loss").unwrap().to_vec())
        };
        assert_eq!(run(true), run(false), "labels {labels:?}");
    }
}
