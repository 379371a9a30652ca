//! Keras masks: propagation through layers (merge layers, Concatenate, pooling, TimeDistributed,
//! attention, pass-through and mask-dropping layers, Lambda) and mask-weighted losses and
//! metrics in `fit`/`evaluate`, against real Keras 3.15 (values written by
//! fixtures/masks_ref.py into fixtures/masks_ref_values.rs), plus error cases.

use ferroflow_core::{DType, Tensor};
use ferroflow_keras::layers::*;
use ferroflow_keras::metrics::{update_with_mask, SparseCategoricalAccuracy};
use ferroflow_keras::models::Model;
use ferroflow_keras::optimizers::SGD;

#[allow(dead_code, clippy::excessive_precision)]
mod keras_ref {
    include!("fixtures/masks_ref_values.rs");
}
use keras_ref as r;

const TOL: f64 = 1e-6;

/// masks_ref.py's pattern: `((i·7 + salt) mod 13) / 20 − 0.3`.
fn fill(shape: &[usize], salt: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i * 7 + salt) % 13) as f64 / 20.0 - 0.3)
        .collect();
    Tensor::from_f64_slice(DType::F32, &v, shape).unwrap()
}

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

fn x1() -> Tensor {
    t(r::X1, &[2, 4, 3])
}

fn x2() -> Tensor {
    t(r::X2, &[2, 4, 3])
}

fn close(got: &Tensor, want: &[f32], tol: f64, what: &str) {
    let g = got.to_f64_vec();
    assert_eq!(g.len(), want.len(), "{what}: length, got {g:?}");
    for (i, (a, b)) in g.iter().zip(want).enumerate() {
        assert!(
            (a - *b as f64).abs() <= tol || (a.is_nan() && b.is_nan()),
            "{what}: element {i}: got {a}, Keras {b}\n got {g:?}\nwant {want:?}"
        );
    }
}

/// Checks an output mask against Keras's (`want` empty = no mask).
fn check_mask(got: &Option<Tensor>, has: bool, want: &[f32], shape: &[usize], what: &str) {
    assert_eq!(got.is_some(), has, "{what}: mask presence (Keras: {has})");
    if let Some(m) = got {
        assert_eq!(m.dtype(), DType::Bool, "{what}");
        assert_eq!(m.shape(), shape, "{what}: mask shape");
        let v: Vec<f32> = m
            .to_vec::<bool>()
            .unwrap()
            .iter()
            .map(|&b| b as u8 as f32)
            .collect();
        assert_eq!(v, want, "{what}: mask values");
    }
}

/// `Input(4, 3)` ×2 → `Masking(0.0)` on the chosen inputs → `layer([a, b])`, run on X1, X2:
/// the output and its mask.
fn run_two(layer: LayerHandle, masked: (bool, bool)) -> (Tensor, Option<Tensor>) {
    let (a, b) = (Input::new(&[4, 3]), Input::new(&[4, 3]));
    let ma = if masked.0 {
        Masking::new(0.0).apply(&a).unwrap()
    } else {
        a.clone()
    };
    let mb = if masked.1 {
        Masking::new(0.0).apply(&b).unwrap()
    } else {
        b.clone()
    };
    let y = layer.apply([&ma, &mb]).unwrap();
    let model = Model::new([&a, &b], y).unwrap();
    let (out, masks) = model.call_with_masks(&[x1(), x2()], false).unwrap();
    (out[0].clone(), masks[0].clone())
}

/// `Input(4, 3)` → `Masking(0.0)` → `layer`, run on X1: the first output and its mask.
fn run_one(layer: LayerHandle) -> (Tensor, Option<Tensor>) {
    let a = Input::new(&[4, 3]);
    let y = layer.apply(Masking::new(0.0).apply(&a).unwrap()).unwrap();
    let model = Model::new(&a, y).unwrap();
    let (out, masks) = model.call_with_masks(&[x1()], false).unwrap();
    (out[0].clone(), masks[0].clone())
}

type Case = (
    &'static str,
    fn() -> LayerHandle,
    (bool, bool),
    &'static [f32],
    bool,
    &'static [f32],
    &'static [usize],
);

macro_rules! case {
    ($name:literal, $ctor:expr, $masked:expr, $v:ident, $h:ident, $m:ident, $s:ident) => {
        ($name, $ctor, $masked, r::$v, r::$h, r::$m, r::$s)
    };
}

#[test]
fn elementwise_merge_masks_and_values_match_keras() {
    // Keras 3.15: the output mask is the OR of the inputs' masks when every input has one
    // (else none); Maximum/Minimum/Multiply also use the masks in their values.
    let add: fn() -> LayerHandle = || LayerHandle::new(Add::new());
    let sub: fn() -> LayerHandle = || LayerHandle::new(Subtract::new());
    let mul: fn() -> LayerHandle = || LayerHandle::new(Multiply::new());
    let avg: fn() -> LayerHandle = || LayerHandle::new(Average::new());
    let max: fn() -> LayerHandle = || LayerHandle::new(Maximum::new());
    let min: fn() -> LayerHandle = || LayerHandle::new(Minimum::new());
    let (both, first, second) = ((true, true), (true, false), (false, true));
    let cases: Vec<Case> = vec![
        case!(
            "Add both",
            add,
            both,
            ADD_BOTH,
            ADD_BOTH_HAS_MASK,
            ADD_BOTH_MASK,
            ADD_BOTH_MASK_SHAPE
        ),
        case!(
            "Add first",
            add,
            first,
            ADD_FIRST,
            ADD_FIRST_HAS_MASK,
            ADD_FIRST_MASK,
            ADD_FIRST_MASK_SHAPE
        ),
        case!(
            "Add second",
            add,
            second,
            ADD_SECOND,
            ADD_SECOND_HAS_MASK,
            ADD_SECOND_MASK,
            ADD_SECOND_MASK_SHAPE
        ),
        case!(
            "Subtract both",
            sub,
            both,
            SUBTRACT_BOTH,
            SUBTRACT_BOTH_HAS_MASK,
            SUBTRACT_BOTH_MASK,
            SUBTRACT_BOTH_MASK_SHAPE
        ),
        case!(
            "Subtract first",
            sub,
            first,
            SUBTRACT_FIRST,
            SUBTRACT_FIRST_HAS_MASK,
            SUBTRACT_FIRST_MASK,
            SUBTRACT_FIRST_MASK_SHAPE
        ),
        case!(
            "Subtract second",
            sub,
            second,
            SUBTRACT_SECOND,
            SUBTRACT_SECOND_HAS_MASK,
            SUBTRACT_SECOND_MASK,
            SUBTRACT_SECOND_MASK_SHAPE
        ),
        case!(
            "Multiply both",
            mul,
            both,
            MULTIPLY_BOTH,
            MULTIPLY_BOTH_HAS_MASK,
            MULTIPLY_BOTH_MASK,
            MULTIPLY_BOTH_MASK_SHAPE
        ),
        case!(
            "Multiply first",
            mul,
            first,
            MULTIPLY_FIRST,
            MULTIPLY_FIRST_HAS_MASK,
            MULTIPLY_FIRST_MASK,
            MULTIPLY_FIRST_MASK_SHAPE
        ),
        case!(
            "Multiply second",
            mul,
            second,
            MULTIPLY_SECOND,
            MULTIPLY_SECOND_HAS_MASK,
            MULTIPLY_SECOND_MASK,
            MULTIPLY_SECOND_MASK_SHAPE
        ),
        case!(
            "Average both",
            avg,
            both,
            AVERAGE_BOTH,
            AVERAGE_BOTH_HAS_MASK,
            AVERAGE_BOTH_MASK,
            AVERAGE_BOTH_MASK_SHAPE
        ),
        case!(
            "Average first",
            avg,
            first,
            AVERAGE_FIRST,
            AVERAGE_FIRST_HAS_MASK,
            AVERAGE_FIRST_MASK,
            AVERAGE_FIRST_MASK_SHAPE
        ),
        case!(
            "Average second",
            avg,
            second,
            AVERAGE_SECOND,
            AVERAGE_SECOND_HAS_MASK,
            AVERAGE_SECOND_MASK,
            AVERAGE_SECOND_MASK_SHAPE
        ),
        case!(
            "Maximum both",
            max,
            both,
            MAXIMUM_BOTH,
            MAXIMUM_BOTH_HAS_MASK,
            MAXIMUM_BOTH_MASK,
            MAXIMUM_BOTH_MASK_SHAPE
        ),
        case!(
            "Maximum first",
            max,
            first,
            MAXIMUM_FIRST,
            MAXIMUM_FIRST_HAS_MASK,
            MAXIMUM_FIRST_MASK,
            MAXIMUM_FIRST_MASK_SHAPE
        ),
        case!(
            "Maximum second",
            max,
            second,
            MAXIMUM_SECOND,
            MAXIMUM_SECOND_HAS_MASK,
            MAXIMUM_SECOND_MASK,
            MAXIMUM_SECOND_MASK_SHAPE
        ),
        case!(
            "Minimum both",
            min,
            both,
            MINIMUM_BOTH,
            MINIMUM_BOTH_HAS_MASK,
            MINIMUM_BOTH_MASK,
            MINIMUM_BOTH_MASK_SHAPE
        ),
        case!(
            "Minimum first",
            min,
            first,
            MINIMUM_FIRST,
            MINIMUM_FIRST_HAS_MASK,
            MINIMUM_FIRST_MASK,
            MINIMUM_FIRST_MASK_SHAPE
        ),
        case!(
            "Minimum second",
            min,
            second,
            MINIMUM_SECOND,
            MINIMUM_SECOND_HAS_MASK,
            MINIMUM_SECOND_MASK,
            MINIMUM_SECOND_MASK_SHAPE
        ),
    ];
    for (what, ctor, masked, values, has, mask, shape) in cases {
        let (y, m) = run_two(ctor(), masked);
        close(&y, values, TOL, what);
        check_mask(&m, has, mask, shape, what);
    }
}

#[test]
fn elementwise_merge_mask_is_or_by_hand() {
    // Independent of the fixture: OR of two hand-made masks, and none when one is missing.
    let x = Tensor::from_vec(vec![1.0f32; 6], &[1, 3, 2]).unwrap();
    let m1 = Tensor::from_vec(vec![true, false, false], &[1, 3]).unwrap();
    let m2 = Tensor::from_vec(vec![false, false, true], &[1, 3]).unwrap();
    let add = LayerHandle::new(Add::new());
    let (_, m) = add
        .call_masked(
            &[x.clone(), x.clone()],
            &[Some(m1.clone()), Some(m2)],
            false,
        )
        .unwrap();
    assert_eq!(
        m.unwrap().to_vec::<bool>().unwrap(),
        vec![true, false, true]
    );
    let (_, m) = add
        .call_masked(&[x.clone(), x], &[Some(m1), None], false)
        .unwrap();
    assert!(m.is_none());
}

#[test]
fn concatenate_masks_match_keras() {
    // Keras 3.15: masks widened to the inputs' shapes (all-true when unmasked), joined along
    // the axis, then `any` over the last axis.
    let last: fn() -> LayerHandle = || LayerHandle::new(Concatenate::new());
    let time: fn() -> LayerHandle = || LayerHandle::new(Concatenate::new().axis(1));
    let cases: Vec<Case> = vec![
        case!(
            "axis -1 both",
            last,
            (true, true),
            CONCAT_LAST_BOTH,
            CONCAT_LAST_BOTH_HAS_MASK,
            CONCAT_LAST_BOTH_MASK,
            CONCAT_LAST_BOTH_MASK_SHAPE
        ),
        case!(
            "axis -1 first",
            last,
            (true, false),
            CONCAT_LAST_FIRST,
            CONCAT_LAST_FIRST_HAS_MASK,
            CONCAT_LAST_FIRST_MASK,
            CONCAT_LAST_FIRST_MASK_SHAPE
        ),
        case!(
            "axis 1 both",
            time,
            (true, true),
            CONCAT_TIME_BOTH,
            CONCAT_TIME_BOTH_HAS_MASK,
            CONCAT_TIME_BOTH_MASK,
            CONCAT_TIME_BOTH_MASK_SHAPE
        ),
        case!(
            "axis 1 second",
            time,
            (false, true),
            CONCAT_TIME_SECOND,
            CONCAT_TIME_SECOND_HAS_MASK,
            CONCAT_TIME_SECOND_MASK,
            CONCAT_TIME_SECOND_MASK_SHAPE
        ),
    ];
    for (what, ctor, masked, values, has, mask, shape) in cases {
        let (y, m) = run_two(ctor(), masked);
        close(&y, values, TOL, what);
        check_mask(&m, has, mask, shape, what);
    }
    // No masks: none.
    let x = Tensor::from_vec(vec![1.0f32; 6], &[1, 3, 2]).unwrap();
    let (_, m) = LayerHandle::new(Concatenate::new())
        .call_masked(&[x.clone(), x], &[None, None], false)
        .unwrap();
    assert!(m.is_none());
}

#[test]
fn global_average_pooling1d_averages_kept_steps_like_keras() {
    let (y, m) = run_one(LayerHandle::new(GlobalAveragePooling1D::new()));
    close(&y, r::GAP1D, TOL, "GlobalAveragePooling1D");
    check_mask(
        &m,
        r::GAP1D_HAS_MASK,
        r::GAP1D_MASK,
        r::GAP1D_MASK_SHAPE,
        "GAP1D",
    );
    let (y, m) = run_one(LayerHandle::new(
        GlobalAveragePooling1D::new().keepdims(true),
    ));
    assert_eq!(y.shape(), &[2, 1, 3]);
    close(
        &y,
        r::GAP1D_KEEPDIMS,
        TOL,
        "GlobalAveragePooling1D keepdims",
    );
    assert!(m.is_none());
    // By hand: Σ_t mask·x / Σ_t mask over X1 (a step is kept when any feature is non-zero).
    let x = r::X1;
    let yv = y.to_f64_vec();
    for b in 0..2 {
        for c in 0..3 {
            let (mut s, mut n) = (0.0, 0.0);
            for s_ in 0..4 {
                let row = &x[(b * 4 + s_) * 3..(b * 4 + s_) * 3 + 3];
                if row.iter().any(|&v| v != 0.0) {
                    s += row[c] as f64;
                    n += 1.0;
                }
            }
            assert!((yv[b * 3 + c] - s / n).abs() < 1e-6);
        }
    }
    // GlobalMaxPooling1D does not support masking in Keras: plain max, no mask.
    let (y, m) = run_one(LayerHandle::new(GlobalMaxPooling1D::new()));
    close(&y, r::GMP1D, TOL, "GlobalMaxPooling1D");
    check_mask(
        &m,
        r::GMP1D_HAS_MASK,
        r::GMP1D_MASK,
        r::GMP1D_MASK_SHAPE,
        "GMP1D",
    );
}

#[test]
fn pass_through_and_dropping_layers_match_keras() {
    // X1's Masking mask.
    let want = [1.0f32, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
    let cases: Vec<(&str, LayerHandle, bool)> = vec![
        ("Dense", LayerHandle::new(Dense::new(2)), r::PASS_DENSE),
        (
            "Activation",
            LayerHandle::new(Activation::new("relu")),
            r::PASS_ACTIVATION,
        ),
        (
            "Dropout",
            LayerHandle::new(Dropout::new(0.5)),
            r::PASS_DROPOUT,
        ),
        (
            "LayerNormalization",
            LayerHandle::new(LayerNormalization::new()),
            r::PASS_LAYER_NORM,
        ),
        (
            "BatchNormalization",
            LayerHandle::new(BatchNormalization::new()),
            r::PASS_BATCH_NORM,
        ),
        (
            "Rescaling",
            LayerHandle::new(Rescaling::new(2.0)),
            r::PASS_RESCALING,
        ),
        (
            "TimeDistributed",
            LayerHandle::new(TimeDistributed::new(Dense::new(2))),
            r::PASS_TIME_DISTRIBUTED,
        ),
        (
            "Bidirectional seq",
            LayerHandle::new(Bidirectional::new(LSTM::new(2).return_sequences(true))),
            r::PASS_BIDIRECTIONAL_SEQ,
        ),
        (
            "Bidirectional last",
            LayerHandle::new(Bidirectional::new(LSTM::new(2))),
            r::PASS_BIDIRECTIONAL_LAST,
        ),
        (
            "LSTM seq",
            LayerHandle::new(LSTM::new(2).return_sequences(true)),
            r::PASS_LSTM_SEQ,
        ),
        (
            "LSTM last",
            LayerHandle::new(LSTM::new(2)),
            r::PASS_LSTM_LAST,
        ),
        ("Flatten", LayerHandle::new(Flatten::new()), r::PASS_FLATTEN),
        (
            "Reshape",
            LayerHandle::new(Reshape::new(&[12])),
            r::PASS_RESHAPE,
        ),
        (
            "Conv1D",
            LayerHandle::new(Conv1D::new(2, 2).padding("same")),
            r::PASS_CONV1D,
        ),
        (
            "MaxPooling1D",
            LayerHandle::new(MaxPooling1D::new(2)),
            r::PASS_MAX_POOL1D,
        ),
        (
            "GlobalMaxPooling1D",
            LayerHandle::new(GlobalMaxPooling1D::new()),
            r::PASS_GLOBAL_MAX_POOL1D,
        ),
        (
            "GlobalAveragePooling1D",
            LayerHandle::new(GlobalAveragePooling1D::new()),
            r::PASS_GLOBAL_AVG_POOL1D,
        ),
        (
            "Permute",
            LayerHandle::new(Permute::new(&[2, 1])),
            r::PASS_REPEAT_PERMUTE,
        ),
    ];
    for (what, layer, passes) in cases {
        let (_, m) = run_one(layer);
        check_mask(&m, passes, &want, &[2, 4], what);
    }
}

#[test]
fn attention_layers_output_the_query_mask_like_keras() {
    let cases: Vec<(&str, LayerHandle, bool, &[f32])> = vec![
        (
            "Attention",
            LayerHandle::new(Attention::new()),
            r::ATTENTION_HAS_MASK,
            r::ATTENTION_MASK,
        ),
        (
            "AdditiveAttention",
            LayerHandle::new(AdditiveAttention::new()),
            r::ADDITIVE_ATTENTION_HAS_MASK,
            r::ADDITIVE_ATTENTION_MASK,
        ),
        (
            "MultiHeadAttention",
            LayerHandle::new(MultiHeadAttention::new(2, 2)),
            r::MHA_HAS_MASK,
            r::MHA_MASK,
        ),
    ];
    for (what, layer, has, mask) in cases {
        let (_, m) = run_two(layer, (true, true));
        check_mask(&m, has, mask, &[2, 4], what);
    }
}

#[test]
fn time_distributed_gives_the_inner_rnn_each_steps_mask_like_keras() {
    let a = Input::new(&[3, 4, 2]);
    let lstm = LayerHandle::new(LSTM::new(2));
    let td = LayerHandle::new(TimeDistributed::new(lstm.clone()));
    let y = td.apply(Masking::new(0.0).apply(&a).unwrap()).unwrap();
    let model = Model::new(&a, y).unwrap();
    {
        let mut l = lstm.lock();
        let ws: Vec<Tensor> = l
            .weights()
            .iter()
            .enumerate()
            .map(|(k, w)| fill(&w.shape(), 3 * k))
            .collect();
        l.set_weights(&ws).unwrap();
    }
    let (out, masks) = model
        .call_with_masks(&[t(r::X4, &[2, 3, 4, 2])], false)
        .unwrap();
    close(&out[0], r::TD_LSTM, 1e-5, "TimeDistributed(LSTM)");
    check_mask(
        &masks[0],
        true,
        r::TD_LSTM_MASK,
        r::TD_LSTM_MASK_SHAPE,
        "TimeDistributed",
    );
}

#[test]
fn lambda_mask_function_gives_the_output_mask() {
    let x = Tensor::from_vec(vec![1.0f32; 6], &[1, 3, 2]).unwrap();
    let m = Tensor::from_vec(vec![true, false, true], &[1, 3]).unwrap();
    // Without `mask` (Keras's default) the mask is dropped.
    let plain = LayerHandle::new(Lambda::new(|x: &Tensor| Ok(x.clone())));
    let (_, out) = plain
        .call_masked(&[x.clone()], &[Some(m.clone())], false)
        .unwrap();
    assert!(out.is_none());
    let inv = LayerHandle::new(
        Lambda::new(|x: &Tensor| Ok(x.clone()))
            .mask(|_, m| m.map(ferroflow_core::ops::logical_not).transpose()),
    );
    let (_, out) = inv.call_masked(&[x], &[Some(m)], false).unwrap();
    assert_eq!(
        out.unwrap().to_vec::<bool>().unwrap(),
        vec![false, true, false]
    );
}

/// Embedding(8, 3, mask_zero) → LSTM(4, return_sequences) → Dense(3, softmax) with the
/// fixture's weights, compiled with SGD(0.5), sparse CCE and accuracy.
fn seq_model(run_eagerly: bool) -> Model {
    let inp = Input::with_shape(&[Some(6)], DType::I32, None);
    let h = Embedding::new(8, 3).mask_zero(true).apply(&inp).unwrap();
    let h = LSTM::new(4).return_sequences(true).apply(h).unwrap();
    let y = Dense::new(3).activation("softmax").apply(h).unwrap();
    let mut m = Model::new(&inp, y).unwrap();
    let ws = [
        r::SEQ_W0,
        r::SEQ_W1,
        r::SEQ_W2,
        r::SEQ_W3,
        r::SEQ_W4,
        r::SEQ_W5,
    ];
    let cur = m.get_weights();
    assert_eq!(cur.len(), r::SEQ_NW);
    let ws: Vec<Tensor> = cur.iter().zip(ws).map(|(c, w)| t(w, c.shape())).collect();
    m.set_weights(&ws).unwrap();
    m.compile(
        SGD::new().learning_rate(0.5),
        "sparse_categorical_crossentropy",
        ["accuracy"],
    )
    .unwrap()
    .run_eagerly(run_eagerly);
    m
}

fn ids_labels() -> (Tensor, Tensor) {
    let ids: Vec<i32> = r::SEQ_IDS.iter().map(|&v| v as i32).collect();
    let ys: Vec<i32> = r::SEQ_LABELS.iter().map(|&v| v as i32).collect();
    (
        Tensor::from_vec(ids, &[4, 6]).unwrap(),
        Tensor::from_vec(ys, &[4, 6]).unwrap(),
    )
}

fn near(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-5, "{what}: got {got}, Keras {want}");
}

#[test]
fn masked_sequence_model_loss_and_accuracy_match_keras() {
    for eager in [false, true] {
        let mut m = seq_model(eager);
        let (ids, ys) = ids_labels();
        let e = m
            .evaluate(&ids, &ys)
            .batch_size(4)
            .verbose(0)
            .run_dict()
            .unwrap();
        near(e["loss"], r::SEQ_EVAL_LOSS, "evaluate loss");
        // 4 of the 15 kept steps right (not 9 of all 24 steps).
        near(e["accuracy"], r::SEQ_EVAL_ACC, "evaluate accuracy");
        let e = m
            .evaluate(&ids, &ys)
            .batch_size(2)
            .verbose(0)
            .run_dict()
            .unwrap();
        near(e["loss"], r::SEQ_EVAL2_LOSS, "evaluate loss, batches of 2");
        near(
            e["accuracy"],
            r::SEQ_EVAL2_ACC,
            "evaluate accuracy, batches of 2",
        );
        let h = m
            .fit(&ids, &ys)
            .batch_size(2)
            .epochs(1)
            .shuffle(false)
            .verbose(0)
            .run()
            .unwrap();
        near(h.history["loss"][0], r::SEQ_FIT_LOSS, "fit loss");
        near(h.history["accuracy"][0], r::SEQ_FIT_ACC, "fit accuracy");
        let e = m
            .evaluate(&ids, &ys)
            .batch_size(4)
            .verbose(0)
            .run_dict()
            .unwrap();
        near(e["loss"], r::SEQ_AFTER_LOSS, "loss after one epoch");
        near(e["accuracy"], r::SEQ_AFTER_ACC, "accuracy after one epoch");
        // Temporal sample weights: the loss weights are mask × sample_weight; metrics=
        // are not weighted by sample_weight but still by the mask.
        let sw = t(r::SEQ_SW, &[4, 6]);
        let e = m
            .evaluate(&ids, &ys)
            .batch_size(4)
            .sample_weight(&sw)
            .verbose(0)
            .run_dict()
            .unwrap();
        near(e["loss"], r::SEQ_SW_LOSS, "loss with sample weights");
        near(e["accuracy"], r::SEQ_SW_ACC, "accuracy with sample weights");
        // The default path really is the traced step (it returns the outputs' masks).
        assert_eq!(m.traced_train_step_graphs().is_empty(), eager);
    }
}

#[test]
fn masked_accuracy_by_hand() {
    // Independent of Keras: accuracy over the kept steps of the model's own predictions.
    let mut m = seq_model(false);
    let (ids, ys) = ids_labels();
    let p = m.call(std::slice::from_ref(&ids), false).unwrap()[0].to_f64_vec();
    let (idv, yv) = (ids.to_vec::<i32>().unwrap(), ys.to_vec::<i32>().unwrap());
    let (mut right, mut n) = (0.0, 0.0);
    for s in 0..24 {
        if idv[s] != 0 {
            let row = &p[s * 3..s * 3 + 3];
            let arg = (0..3).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            right += (arg as i32 == yv[s]) as u8 as f64;
            n += 1.0;
        }
    }
    let e = m
        .evaluate(&ids, &ys)
        .batch_size(4)
        .verbose(0)
        .run_dict()
        .unwrap();
    near(e["accuracy"], right / n, "accuracy by hand");
}

#[test]
fn masked_regression_model_mse_and_mae_match_keras() {
    for eager in [false, true] {
        let inp = Input::new(&[5, 2]);
        let h = Masking::new(0.0).apply(&inp).unwrap();
        let h = LSTM::new(3).return_sequences(true).apply(h).unwrap();
        let y = Dense::new(1).apply(h).unwrap();
        let mut m = Model::new(&inp, y).unwrap();
        let ws = [r::REG_W0, r::REG_W1, r::REG_W2, r::REG_W3, r::REG_W4];
        let cur = m.get_weights();
        assert_eq!(cur.len(), r::REG_NW);
        let ws: Vec<Tensor> = cur.iter().zip(ws).map(|(c, w)| t(w, c.shape())).collect();
        m.set_weights(&ws).unwrap();
        m.compile(SGD::new().learning_rate(0.1), "mse", ["mae"])
            .unwrap()
            .run_eagerly(eager);
        let (x, yt) = (t(r::REG_X, &[4, 5, 2]), t(r::REG_Y, &[4, 5, 1]));
        let e = m
            .evaluate(&x, &yt)
            .batch_size(4)
            .verbose(0)
            .run_dict()
            .unwrap();
        near(e["loss"], r::REG_EVAL_LOSS, "mse");
        near(e["mae"], r::REG_EVAL_MAE, "mae");
        let h = m
            .fit(&x, &yt)
            .batch_size(2)
            .epochs(1)
            .shuffle(false)
            .verbose(0)
            .run()
            .unwrap();
        near(h.history["loss"][0], r::REG_FIT_LOSS, "fit mse");
        near(h.history["mae"][0], r::REG_FIT_MAE, "fit mae");
        let e = m
            .evaluate(&x, &yt)
            .batch_size(4)
            .verbose(0)
            .run_dict()
            .unwrap();
        near(e["loss"], r::REG_AFTER_LOSS, "mse after one epoch");
        near(e["mae"], r::REG_AFTER_MAE, "mae after one epoch");
    }
}

#[test]
fn mismatched_masks_are_errors_naming_the_layer() {
    let x = Tensor::from_vec(vec![1.0f32; 12], &[2, 3, 2]).unwrap();
    let m23 = Tensor::from_vec(vec![true; 6], &[2, 3]).unwrap();
    let m22 = Tensor::from_vec(vec![true; 4], &[2, 2]).unwrap();
    // A merge whose second mask does not match its input.
    let add = LayerHandle::new(Add::new().named("my_add"));
    let err = add
        .call_masked(
            &[x.clone(), x.clone()],
            &[Some(m23.clone()), Some(m22.clone())],
            false,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("my_add") && err.contains("mask"), "{err}");
    // Concatenate likewise.
    let cat = LayerHandle::new(Concatenate::new().named("my_cat"));
    let err = cat
        .call_masked(&[x.clone(), x.clone()], &[None, Some(m22.clone())], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("my_cat") && err.contains("mask"), "{err}");
    // GlobalAveragePooling1D with a mask of the wrong length.
    let gap = LayerHandle::new(GlobalAveragePooling1D::new().named("my_gap"));
    let err = gap
        .call_masked(&[x.clone()], &[Some(m22.clone())], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("my_gap") && err.contains("mask"), "{err}");
    // TimeDistributed: the mask must start with [batch, time].
    let td = LayerHandle::new(TimeDistributed::new(Dense::new(2)).named("my_td"));
    let err = td
        .call_masked(&[x.clone()], &[Some(m22)], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("my_td") && err.contains("mask"), "{err}");
    // A metric given a mask that does not fit the predictions names the metric.
    let mut acc = SparseCategoricalAccuracy::new();
    let y = Tensor::from_vec(vec![0i64; 6], &[2, 3]).unwrap();
    let bad = Tensor::from_vec(vec![true; 3], &[3]).unwrap();
    let err = update_with_mask(&mut acc, &y, &x, Some(&bad))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sparse_categorical_accuracy") && err.contains("mask"),
        "{err}"
    );
    // The right mask is fine.
    update_with_mask(&mut acc, &y, &x, Some(&m23)).unwrap();
}
