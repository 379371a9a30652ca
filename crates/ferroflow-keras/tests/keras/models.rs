//! Models: Sequential and functional construction, compile/fit/evaluate/predict, errors.

use ferroflow_core::{ops, DType, Error, Tensor};
use ferroflow_keras::layers::{Concatenate, Dense, Input, LayerHandle};
use ferroflow_keras::optimizers::SGD;
use ferroflow_keras::prelude::*;
use ferroflow_keras::utils::set_random_seed;

fn toy_regression(n: usize) -> (Tensor, Tensor) {
    // y = 2·x0 - x1 + 0.5 on a fixed grid.
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let a = (i as f32 / n as f32) * 2.0 - 1.0;
        let b = ((i * 7 % n) as f32 / n as f32) * 2.0 - 1.0;
        x.extend([a, b]);
        y.push(2.0 * a - b + 0.5);
    }
    (
        Tensor::from_vec(x, &[n, 2]).unwrap(),
        Tensor::from_vec(y, &[n, 1]).unwrap(),
    )
}

fn mlp() -> Sequential {
    let mut m = Sequential::new();
    m.add(Input::new(&[2])).unwrap();
    m.add(Dense::new(8).activation("tanh")).unwrap();
    m.add(Dense::new(1)).unwrap();
    m
}

#[test]
fn fit_before_compile_is_an_error_naming_the_model() {
    let (x, y) = toy_regression(8);
    let mut m = mlp();
    let err = m.fit(&x, &y).verbose(0).run().unwrap_err().to_string();
    assert!(err.contains("compile()"), "{err}");
    assert!(err.contains(m.name()), "{err}");
    let err = m.evaluate(&x, &y).verbose(0).run().unwrap_err().to_string();
    assert!(err.contains("compile()"), "{err}");
}

#[test]
fn unknown_names_list_the_valid_ones() {
    let mut m = mlp();
    let e = m.compile("adamm", "mse", ()).unwrap_err().to_string();
    assert!(
        e.contains("\"adamm\"") && e.contains("adam") && e.contains("sgd"),
        "{e}"
    );
    let e = m
        .compile("adam", "mean_sqared_error", ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("mean_sqared_error") && e.contains("mse"), "{e}");
    let e = m
        .compile("adam", "mse", ["acuracy"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("acuracy") && e.contains("accuracy"), "{e}");
    // A bad activation name surfaces when the layer is built (here: at add, input known).
    let mut s = Sequential::new();
    s.add(Input::new(&[2])).unwrap();
    let e = s
        .add(Dense::new(3).activation("rleu"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("rleu") && e.contains("relu"), "{e}");
}

#[test]
fn wrong_input_shape_names_the_model_and_both_shapes() {
    let mut m = mlp();
    m.compile("sgd", "mse", ()).unwrap();
    let x = ops::zeros(&[4, 3], DType::F32);
    let y = ops::zeros(&[4, 1], DType::F32);
    let err = m.fit(&x, &y).verbose(0).run().unwrap_err();
    let s = err.to_string();
    assert!(matches!(err, Error::Shape { .. }), "{s}");
    assert!(
        s.contains("(None, 2)") && s.contains("(4, 3)") && s.contains(m.name()),
        "{s}"
    );
    let err = m.predict(&x).verbose(0).run().unwrap_err().to_string();
    assert!(err.contains("(None, 2)") && err.contains("(4, 3)"), "{err}");
}

#[test]
fn mismatched_labels_are_clear_errors() {
    let mut m = mlp();
    m.compile("sgd", "mse", ()).unwrap();
    let x = ops::zeros(&[4, 2], DType::F32);
    // Different number of samples.
    let y = ops::zeros(&[5, 1], DType::F32);
    let e = m.fit(&x, &y).verbose(0).run().unwrap_err().to_string();
    assert!(
        e.contains("cardinality") && e.contains("(4, 2)") && e.contains("(5, 1)"),
        "{e}"
    );
    // Same count, wrong shape for the loss.
    let y = ops::zeros(&[4, 3], DType::F32);
    let e = m.fit(&x, &y).verbose(0).run().unwrap_err().to_string();
    assert!(
        e.contains("mean_squared_error") && e.contains("(4, 3)") && e.contains("(4, 1)"),
        "{e}"
    );
    // Sparse labels that do not fit the predictions.
    let mut c = Sequential::new();
    c.add(Input::new(&[2])).unwrap();
    c.add(Dense::new(3).activation("softmax")).unwrap();
    c.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap();
    let y = ops::zeros(&[4, 2], DType::F32);
    let e = c.fit(&x, &y).verbose(0).run().unwrap_err().to_string();
    assert!(
        e.contains("sparse_categorical_crossentropy")
            && e.contains("(4, 2)")
            && e.contains("(4, 3)"),
        "{e}"
    );
}

#[test]
fn sequential_regression_learns() {
    set_random_seed(1);
    let (x, y) = toy_regression(64);
    let mut m = mlp();
    m.compile(SGD::new().learning_rate(0.1), "mse", ["mae"])
        .unwrap();
    let before = m.evaluate(&x, &y).verbose(0).run().unwrap();
    let h = m
        .fit(&x, &y)
        .epochs(40)
        .batch_size(16)
        .verbose(0)
        .run()
        .unwrap();
    let after = m.evaluate(&x, &y).verbose(0).run().unwrap();
    assert_eq!(before.len(), 2, "[loss, mae]");
    assert!(after[0] < before[0] * 0.1, "{before:?} -> {after:?}");
    let losses = h.get("loss").unwrap();
    assert_eq!(losses.len(), 40);
    assert!(losses[39] < losses[0]);
    assert_eq!(h.epoch, (0..40).collect::<Vec<_>>());
    assert_eq!(h.params["steps"], 4);
}

#[test]
fn evaluate_matches_a_hand_computed_loss_and_metric() {
    // Dense(1) with known weights: predictions and MSE/MAE by hand.
    let mut m = Sequential::new();
    m.add(Input::new(&[2])).unwrap();
    m.add(Dense::new(1)).unwrap();
    m.set_weights(&[
        Tensor::from_vec(vec![1.0f32, -1.0], &[2, 1]).unwrap(),
        Tensor::from_vec(vec![0.5f32], &[1]).unwrap(),
    ])
    .unwrap();
    m.compile("sgd", "mse", ["mae"]).unwrap();
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 1.0, 0.0, 0.0], &[3, 2]).unwrap();
    let y = Tensor::from_vec(vec![0.0f32, 2.0, 1.0], &[3, 1]).unwrap();
    // predictions: -0.5, 2.5, 0.5 → errors -0.5, 0.5, -0.5
    let r = m.evaluate(&x, &y).batch_size(2).verbose(0).run().unwrap();
    assert!((r[0] - 0.25).abs() < 1e-6, "{r:?}");
    assert!((r[1] - 0.5).abs() < 1e-6, "{r:?}");
    let p = m.predict(&x).batch_size(2).verbose(0).run().unwrap();
    assert_eq!(p.to_vec::<f32>().unwrap(), vec![-0.5, 2.5, 0.5]);
}

#[test]
fn functional_two_inputs_shared_layer_two_outputs_trains() {
    set_random_seed(7);
    let a = Input::named(&[4], "a_in");
    let b = Input::named(&[4], "b_in");
    let shared = LayerHandle::new(Dense::new(8).activation("tanh").named("shared"));
    let ha = shared.apply(&a).unwrap();
    let hb = shared.apply(&b).unwrap();
    let both = Concatenate::new().named("both").apply([&ha, &hb]).unwrap();
    let out1 = Dense::new(1).named("sum_out").apply(&both).unwrap();
    let out2 = Dense::new(2)
        .activation("softmax")
        .named("cls_out")
        .apply(&hb)
        .unwrap();
    let mut model = Model::new([&a, &b], [&out1, &out2]).unwrap();
    // The shared layer's weights count once.
    assert_eq!(model.count_params(), (4 * 8 + 8) + (16 + 1) + (8 * 2 + 2));
    assert_eq!(model.layers().len(), 6);
    // Keras's functional summary: four columns, the shared layer called twice.
    let s = model.summary_string(Some(112));
    assert!(s.contains("Connected to"), "{s}");
    assert!(s.contains("a_in[0][0]") && s.contains("b_in[0][0]"), "{s}");
    assert!(
        s.contains("shared[0][0]") && s.contains("shared[1][0]"),
        "{s}"
    );
    model
        .compile(
            "adam",
            vec!["mse", "sparse_categorical_crossentropy"],
            vec![vec![], vec!["accuracy"]],
        )
        .unwrap();
    model.set_loss_weights(&[1.0, 0.5]).unwrap();
    let n = 64;
    let xa: Vec<f32> = (0..n * 4)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let xb: Vec<f32> = (0..n * 4)
        .map(|i| ((i * 53 % 97) as f32 / 48.0) - 1.0)
        .collect();
    let ysum: Vec<f32> = xa.chunks(4).map(|r| r.iter().sum::<f32>() * 0.5).collect();
    let ycls: Vec<i64> = xb.chunks(4).map(|r| (r[0] > 0.0) as i64).collect();
    let xa = Tensor::from_vec(xa, &[n, 4]).unwrap();
    let xb = Tensor::from_vec(xb, &[n, 4]).unwrap();
    let ysum = Tensor::from_vec(ysum, &[n, 1]).unwrap();
    let ycls = Tensor::from_vec(ycls, &[n]).unwrap();
    let h = model
        .fit([&xa, &xb], [&ysum, &ycls])
        .epochs(60)
        .batch_size(16)
        .verbose(0)
        .run()
        .unwrap();
    for key in ["loss", "sum_out_loss", "cls_out_loss", "cls_out_accuracy"] {
        assert!(
            h.get(key).is_some(),
            "missing {key}: {:?}",
            h.history.keys()
        );
    }
    let l = h.get("loss").unwrap();
    assert!(l[l.len() - 1] < l[0] * 0.5, "{l:?}");
    // Keras logs each output's loss after its loss weight, so the parts add up to the total
    // (no regularizers here).
    let r = model
        .evaluate([&xa, &xb], [&ysum, &ycls])
        .verbose(0)
        .run_dict()
        .unwrap();
    assert!(
        (r["loss"] - (r["sum_out_loss"] + r["cls_out_loss"])).abs() < 1e-5,
        "{r:?}"
    );
    assert!(r["cls_out_accuracy"] > 0.8, "{r:?}");
    let preds = model.predict([&xa, &xb]).verbose(0).run_all().unwrap();
    assert_eq!(preds[0].shape(), &[n, 1]);
    assert_eq!(preds[1].shape(), &[n, 2]);
}

#[test]
fn graph_disconnected_is_an_error() {
    let a = Input::new(&[3]);
    let b = Input::new(&[3]);
    let out = Dense::new(1).apply(&b).unwrap();
    let e = Model::new(&a, &out).unwrap_err().to_string();
    assert!(e.contains("disconnected"), "{e}");
}

#[test]
fn predict_equals_call_and_batches_concatenate() {
    let mut m = mlp();
    let x = Tensor::from_vec((0..70).map(|i| i as f32 / 70.0).collect(), &[35, 2]).unwrap();
    let whole = m.call(&[x.clone()], false).unwrap().remove(0);
    let p = m.predict(&x).batch_size(8).verbose(0).run().unwrap();
    assert_eq!(p.shape(), &[35, 1]);
    assert_eq!(p.to_vec::<f32>().unwrap(), whole.to_vec::<f32>().unwrap());
}

#[test]
fn train_on_batch_steps_once() {
    let (x, y) = toy_regression(16);
    let mut m = mlp();
    m.compile(SGD::new().learning_rate(0.05), "mse", ())
        .unwrap();
    let w0 = m.get_weights();
    let logs = m.train_on_batch(&x, &y, None).unwrap();
    assert!(logs["loss"] > 0.0);
    assert_eq!(m.optimizer().unwrap().iterations(), 1);
    let w1 = m.get_weights();
    assert_ne!(
        w0[0].to_vec::<f32>().unwrap(),
        w1[0].to_vec::<f32>().unwrap()
    );
    let t = m.test_on_batch(&x, &y, None).unwrap();
    assert!(t["loss"] < logs["loss"], "{t:?} vs {logs:?}");
    assert_eq!(m.optimizer().unwrap().iterations(), 1);
}

#[test]
fn frozen_layers_do_not_train() {
    let (x, y) = toy_regression(16);
    let mut m = Sequential::new();
    m.add(Input::new(&[2])).unwrap();
    m.add(Dense::new(4).trainable(false)).unwrap();
    m.add(Dense::new(1)).unwrap();
    assert_eq!(m.trainable_weights().len(), 2);
    assert_eq!(m.non_trainable_weights().len(), 2);
    m.compile("sgd", "mse", ()).unwrap();
    let before = m.get_weights();
    m.fit(&x, &y).epochs(2).verbose(0).run().unwrap();
    let after = m.get_weights();
    assert_eq!(
        before[0].to_vec::<f32>().unwrap(),
        after[0].to_vec::<f32>().unwrap()
    );
    assert_ne!(
        before[2].to_vec::<f32>().unwrap(),
        after[2].to_vec::<f32>().unwrap()
    );
}

#[test]
fn validation_split_takes_the_tail_and_logs_val_keys() {
    let (x, y) = toy_regression(40);
    let mut m = mlp();
    m.compile("sgd", "mse", ["mae"]).unwrap();
    let h = m
        .fit(&x, &y)
        .epochs(2)
        .batch_size(8)
        .validation_split(0.25)
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(h.params["steps"], 4, "30 training samples at batch 8");
    let keys: Vec<&String> = h.history.keys().collect();
    assert_eq!(keys, ["loss", "mae", "val_loss", "val_mae"]);
    // The validation loss is the loss on the last 10 samples with the final weights.
    let idx = Tensor::from_vec((30i64..40).collect::<Vec<_>>(), &[10]).unwrap();
    let (vx, vy) = (
        ops::gather(&x, &idx, 0).unwrap(),
        ops::gather(&y, &idx, 0).unwrap(),
    );
    let r = m.evaluate(&vx, &vy).verbose(0).run_dict().unwrap();
    assert!((r["loss"] - h.get("val_loss").unwrap()[1]).abs() < 1e-6);
}

#[test]
fn same_seed_gives_the_same_weights() {
    let (x, y) = toy_regression(32);
    let run = || {
        set_random_seed(42);
        ferroflow_keras::utils::clear_session();
        let mut m = mlp();
        m.compile("adam", "mse", ()).unwrap();
        m.fit(&x, &y)
            .epochs(2)
            .batch_size(8)
            .verbose(0)
            .run()
            .unwrap();
        m.get_weights()
            .iter()
            .flat_map(|w| w.to_vec::<f32>().unwrap())
            .map(f32::to_bits)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

/// A Dense(2) softmax classifier with fixed weights, and its per-sample cross-entropies computed
/// by hand from the logits.
fn fixed_classifier() -> (Sequential, Tensor, Tensor, Vec<f64>) {
    let mut m = Sequential::new();
    m.add(Input::new(&[2])).unwrap();
    m.add(Dense::new(2).activation("softmax")).unwrap();
    let w = [0.5f32, -0.25, 1.0, 0.75];
    let b = [0.1f32, -0.1];
    m.set_weights(&[
        Tensor::from_vec(w.to_vec(), &[2, 2]).unwrap(),
        Tensor::from_vec(b.to_vec(), &[2]).unwrap(),
    ])
    .unwrap();
    let xs = [[1.0f32, 2.0], [-1.0, 0.5], [0.3, -0.7], [2.0, 1.0]];
    let ys = [0i64, 1, 1, 0];
    let ce: Vec<f64> = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| {
            let z: Vec<f64> = (0..2)
                .map(|j| (x[0] * w[j] + x[1] * w[2 + j] + b[j]) as f64)
                .collect();
            let lse = (z[0].exp() + z[1].exp()).ln();
            lse - z[y as usize]
        })
        .collect();
    let x = Tensor::from_vec(xs.concat(), &[4, 2]).unwrap();
    let y = Tensor::from_vec(ys.to_vec(), &[4]).unwrap();
    (m, x, y, ce)
}

#[test]
fn class_weight_and_sample_weight_scale_the_loss_as_keras() {
    // Keras: loss = Σ w_i·ce_i / n (sum_over_batch_size divides by the count, not Σw).
    let (mut m, x, y, ce) = fixed_classifier();
    m.compile(
        SGD::new().learning_rate(0.0),
        "sparse_categorical_crossentropy",
        (),
    )
    .unwrap();
    let cw: std::collections::HashMap<usize, f64> = [(0, 2.0), (1, 0.5)].into_iter().collect();
    let h = m
        .fit(&x, &y)
        .batch_size(4)
        .shuffle(false)
        .class_weight(cw)
        .verbose(0)
        .run()
        .unwrap();
    let want = (2.0 * ce[0] + 0.5 * ce[1] + 0.5 * ce[2] + 2.0 * ce[3]) / 4.0;
    assert!(
        (h.get("loss").unwrap()[0] - want).abs() < 1e-5,
        "{:?} vs {want}",
        h.history
    );
    let sw = Tensor::from_vec(vec![1.0f32, 0.0, 3.0, 1.0], &[4]).unwrap();
    let h = m
        .fit(&x, &y)
        .batch_size(4)
        .shuffle(false)
        .sample_weight(&sw)
        .verbose(0)
        .run()
        .unwrap();
    let want = (ce[0] + 3.0 * ce[2] + ce[3]) / 4.0;
    assert!((h.get("loss").unwrap()[0] - want).abs() < 1e-5);
    // evaluate with sample weights, and the unweighted mean.
    let r = m
        .evaluate(&x, &y)
        .sample_weight(&sw)
        .verbose(0)
        .run()
        .unwrap();
    assert!((r[0] - want).abs() < 1e-5);
    let r = m.evaluate(&x, &y).verbose(0).run().unwrap();
    assert!((r[0] - ce.iter().sum::<f64>() / 4.0).abs() < 1e-5);
}

#[test]
fn initial_epoch_and_steps_per_epoch() {
    let (x, y) = toy_regression(40);
    let mut m = mlp();
    m.compile("sgd", "mse", ()).unwrap();
    let h = m
        .fit(&x, &y)
        .epochs(4)
        .initial_epoch(2)
        .batch_size(8)
        .steps_per_epoch(2)
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(h.epoch, vec![2, 3]);
    assert_eq!(h.params["steps"], 2);
    assert_eq!(m.optimizer().unwrap().iterations(), 4);
}

#[test]
fn shuffling_is_seeded_and_changes_the_result() {
    let (x, y) = toy_regression(32);
    let run = |seed: u64, shuffle: bool| {
        set_random_seed(seed);
        let mut m = mlp();
        m.compile("sgd", "mse", ()).unwrap();
        m.fit(&x, &y)
            .epochs(2)
            .batch_size(4)
            .shuffle(shuffle)
            .verbose(0)
            .run()
            .unwrap();
        m.get_weights()[0].to_vec::<f32>().unwrap()
    };
    assert_eq!(run(5, true), run(5, true));
    // Same initial weights (same seed), different order of batches: different weights.
    assert_ne!(run(5, true), run(5, false));
}

#[test]
fn review_fixes_weights_metrics_and_validation() {
    let (mut m, x, y, ce) = fixed_classifier();
    m.compile(
        SGD::new().learning_rate(0.0),
        "sparse_categorical_crossentropy",
        ["accuracy"],
    )
    .unwrap();
    // Compiled metrics are not weighted by sample_weight (Keras weights only weighted_metrics).
    let unweighted = m.evaluate(&x, &y).verbose(0).run_dict().unwrap()["accuracy"];
    let sw = Tensor::from_vec(vec![1.0f32, 0.0, 3.0, 1.0], &[4]).unwrap();
    let weighted = m
        .evaluate(&x, &y)
        .sample_weight(&sw)
        .verbose(0)
        .run_dict()
        .unwrap()["accuracy"];
    assert_eq!(unweighted, weighted);
    // class_weight and sample_weight together are an error, as in Keras.
    let cw: std::collections::HashMap<usize, f64> = [(0, 2.0)].into_iter().collect();
    let e = m
        .fit(&x, &y)
        .class_weight(cw)
        .sample_weight(&sw)
        .verbose(0)
        .run()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("class_weight") && e.contains("sample_weight"),
        "{e}"
    );
    // validation_split keeps the validation samples' weights: 8 samples, the last 4 validate.
    let x8 = ops::concat(&[&x, &x], 0).unwrap();
    let y8 = ops::concat(&[&y, &y], 0).unwrap();
    let sw8 = Tensor::from_vec(vec![1.0f32, 1.0, 1.0, 1.0, 1.0, 0.0, 3.0, 1.0], &[8]).unwrap();
    let h = m
        .fit(&x8, &y8)
        .sample_weight(&sw8)
        .validation_split(0.5)
        .shuffle(false)
        .verbose(0)
        .run()
        .unwrap();
    let want = (ce[0] + 3.0 * ce[2] + ce[3]) / 4.0;
    assert!(
        (h.get("val_loss").unwrap()[0] - want).abs() < 1e-5,
        "{:?}",
        h.history
    );
}

#[test]
fn multi_output_metric_lists_pair_with_outputs() {
    let a = Input::new(&[3]);
    let o1 = Dense::new(1).named("reg").apply(&a).unwrap();
    let o2 = Dense::new(2)
        .activation("softmax")
        .named("cls")
        .apply(&a)
        .unwrap();
    let mut m = Model::new(&a, [&o1, &o2]).unwrap();
    // Keras pairs a flat list element-wise with the outputs ...
    m.compile(
        "sgd",
        vec!["mse", "sparse_categorical_crossentropy"],
        ["mae", "accuracy"],
    )
    .unwrap();
    let x = ops::zeros(&[4, 3], DType::F32);
    let (y1, y2) = (
        ops::zeros(&[4, 1], DType::F32),
        Tensor::from_vec(vec![0i64, 1, 0, 1], &[4]).unwrap(),
    );
    let logs = m.test_on_batch(&x, [&y1, &y2], None).unwrap();
    let keys: Vec<&String> = logs.keys().collect();
    assert_eq!(
        keys,
        ["cls_accuracy", "cls_loss", "loss", "reg_loss", "reg_mae"]
    );
    // ... and rejects one of another length.
    let e = m
        .compile(
            "sgd",
            vec!["mse", "sparse_categorical_crossentropy"],
            ["accuracy"],
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("as many entries as the model has outputs"),
        "{e}"
    );
}

#[test]
fn inputs_of_other_dtypes_are_cast_to_float32() {
    let mut m = mlp();
    m.compile("sgd", "mse", ()).unwrap();
    let x = Tensor::from_vec(vec![1u8, 2, 3, 4], &[2, 2]).unwrap();
    let xf = ops::cast(&x, DType::F32).unwrap();
    let p = m.predict(&x).verbose(0).run().unwrap();
    let q = m.predict(&xf).verbose(0).run().unwrap();
    assert_eq!(p.to_vec::<f32>().unwrap(), q.to_vec::<f32>().unwrap());
    let x64 = ops::cast(&x, DType::F64).unwrap();
    let y = ops::zeros(&[2, 1], DType::F64);
    m.fit(&x64, &y).verbose(0).run().unwrap();
}

#[test]
fn duplicate_layer_names_and_empty_data_are_errors() {
    let a = Input::new(&[2]);
    let h = Dense::new(2).named("d").apply(&a).unwrap();
    let o = Dense::new(1).named("d").apply(&h).unwrap();
    let e = Model::new(&a, &o).unwrap_err().to_string();
    assert!(e.contains("\"d\"") && e.contains("unique"), "{e}");
    let mut m = mlp();
    m.compile("sgd", "mse", ()).unwrap();
    let x = ops::zeros(&[0, 2], DType::F32);
    let y = ops::zeros(&[0, 1], DType::F32);
    let e = m.fit(&x, &y).verbose(0).run().unwrap_err().to_string();
    assert!(e.contains("no samples"), "{e}");
    let e = m.predict(&x).verbose(0).run().unwrap_err().to_string();
    assert!(e.contains("no samples"), "{e}");
    let (x, y) = toy_regression(1);
    let e = m
        .fit(&x, &y)
        .validation_split(0.5)
        .verbose(0)
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains("not sufficient"), "{e}");
}

#[test]
fn a_loss_without_reduction_is_logged_as_its_mean() {
    use ferroflow_keras::losses::{MeanSquaredError, Reduction};
    let mut m = Sequential::new();
    m.add(Input::new(&[1])).unwrap();
    m.add(Dense::new(1).use_bias(false)).unwrap();
    m.set_weights(&[Tensor::from_vec(vec![1.0f32], &[1, 1]).unwrap()])
        .unwrap();
    let mut mse = MeanSquaredError::new();
    mse.reduction = Reduction::None;
    m.compile("sgd", mse, ()).unwrap();
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[4, 1]).unwrap();
    let y = ops::zeros(&[4, 1], DType::F32);
    let logs = m.test_on_batch(&x, &y, None).unwrap();
    assert!((logs["loss"] - 7.5).abs() < 1e-6, "{logs:?}");
}

#[test]
fn learning_rate_schedulers_log_the_rate() {
    use ferroflow_keras::callbacks::LearningRateScheduler;
    let (x, y) = toy_regression(16);
    let mut m = mlp();
    m.compile("sgd", "mse", ()).unwrap();
    let h = m
        .fit(&x, &y)
        .epochs(3)
        .verbose(0)
        .callback(LearningRateScheduler::new(|epoch, _lr| {
            0.1 / (epoch as f64 + 1.0)
        }))
        .run()
        .unwrap();
    let lr = h.get("learning_rate").unwrap();
    assert!(
        (lr[0] - 0.1).abs() < 1e-12 && (lr[2] - 0.1 / 3.0).abs() < 1e-12,
        "{lr:?}"
    );
}

#[test]
fn summary_counts_a_slotless_optimizer_once_built() {
    let (x, y) = toy_regression(8);
    let mut m = mlp();
    m.compile("sgd", "mse", ()).unwrap();
    assert!(!m.summary_string(Some(80)).contains("Optimizer params"));
    m.train_on_batch(&x, &y, None).unwrap();
    // Plain SGD: only Keras's `iteration` and `learning_rate` variables.
    assert!(m
        .summary_string(Some(80))
        .contains(" Optimizer params: 2 (8.00 B)\n"));
}
