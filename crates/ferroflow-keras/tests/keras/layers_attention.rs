//! Attention layers (MultiHeadAttention, Attention, AdditiveAttention, PositionEmbedding), the
//! character tokenizer, and masks through Dense/Dropout: outputs against real Keras 3.15 (values
//! written by fixtures/attn_ref.py into fixtures/attn_ref_values.rs), masks and causal masks,
//! shapes, errors, and a finite-difference gradient check of MultiHeadAttention in f64.

use std::cell::RefCell;

use ferroflow_core::testing::check_gradients;
use ferroflow_core::{ops, DType, Tensor};
use ferroflow_keras::layers::*;
use ferroflow_keras::models::Model;
use ferroflow_keras::prelude::*;
use ferroflow_keras::utils::CharTokenizer;

#[allow(dead_code, clippy::excessive_precision)]
mod keras_ref {
    include!("fixtures/attn_ref_values.rs");
}
use keras_ref as r;

/// The fixture pattern of attn_ref.py: `((i·7 + salt) mod 13 − 6) / 20`.
fn fill_vals(n: usize, salt: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 7 + salt) % 13) as f64 / 20.0 - 0.3)
        .collect()
}

fn fill(shape: &[usize], salt: usize, scale: f64, dtype: DType) -> Tensor {
    let n = shape.iter().product();
    let v: Vec<f64> = fill_vals(n, salt).iter().map(|v| v * scale).collect();
    Tensor::from_f64_slice(dtype, &v, shape).unwrap()
}

fn set_fill(layer: &LayerHandle, salt: usize) {
    let mut l = layer.lock();
    let ws: Vec<Tensor> = l
        .weights()
        .iter()
        .enumerate()
        .map(|(k, w)| fill(&w.shape(), salt + 3 * k, 1.0, DType::F32))
        .collect();
    l.set_weights(&ws).unwrap();
}

fn close(got: &Tensor, want: &[f32], tol: f64) {
    let g = got.to_f64_vec();
    assert_eq!(g.len(), want.len(), "length: got {g:?}");
    for (i, (a, b)) in g.iter().zip(want).enumerate() {
        assert!(
            (a - *b as f64).abs() <= tol,
            "element {i}: got {a}, Keras {b}\n got {g:?}\nwant {want:?}"
        );
    }
}

const TOL: f64 = 2e-6;

fn bools(v: &[u8], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.iter().map(|&b| b != 0).collect::<Vec<_>>(), shape).unwrap()
}
fn qmask() -> Tensor {
    bools(&[1, 1, 1, 0, 1, 0, 1, 1], &[2, 4])
}
fn vmask() -> Tensor {
    bools(&[1, 1, 0, 0, 1, 1], &[2, 3])
}
fn amask() -> Tensor {
    bools(
        &[
            1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1,
        ],
        &[2, 4, 3],
    )
}
fn q() -> Tensor {
    fill(&[2, 4, 5], 1, 2.0, DType::F32)
}
fn v() -> Tensor {
    fill(&[2, 3, 6], 2, 2.0, DType::F32)
}
fn k() -> Tensor {
    fill(&[2, 3, 4], 3, 2.0, DType::F32)
}

#[test]
fn mha_weights_key_and_output_shape_match_keras() {
    let h = LayerHandle::new(
        MultiHeadAttention::new(2, 3)
            .value_dim(4)
            .output_shape(7)
            .return_attention_scores(true)
            .named("multi_head_attention"),
    );
    h.build(&[
        vec![None, Some(4), Some(5)],
        vec![None, Some(3), Some(6)],
        vec![None, Some(3), Some(4)],
    ])
    .unwrap();
    // Names and shapes as printed by attn_ref.py for Keras's layer.
    let names: Vec<(String, Vec<usize>)> = h
        .lock()
        .weights()
        .iter()
        .map(|w| (w.name().to_string(), w.shape()))
        .collect();
    let want = [
        ("query/kernel", vec![5, 2, 3]),
        ("query/bias", vec![2, 3]),
        ("key/kernel", vec![4, 2, 3]),
        ("key/bias", vec![2, 3]),
        ("value/kernel", vec![6, 2, 4]),
        ("value/bias", vec![2, 4]),
        ("attention_output/kernel", vec![2, 4, 7]),
        ("attention_output/bias", vec![7]),
    ];
    for ((n, s), (wn, ws)) in names.iter().zip(&want) {
        assert_eq!(n, &format!("multi_head_attention/{wn}"));
        assert_eq!(s, ws);
    }
    set_fill(&h, 0);
    let y = h.call_many(&[q(), v(), k()], false).unwrap();
    assert_eq!(y[0].shape(), &[2, 4, 7]);
    assert_eq!(y[1].shape(), &[2, 2, 4, 3]);
    close(&y[0], r::MHA_KEY_OUT, TOL);
    close(&y[1], r::MHA_KEY_SCORES, TOL);
    assert_eq!(
        h.lock()
            .compute_output_shape(&[vec![None, Some(4), Some(5)], vec![None, Some(3), Some(6)]])
            .unwrap(),
        vec![
            vec![None, Some(4), Some(7)],
            vec![None, Some(2), Some(4), Some(3)]
        ]
    );
}

#[test]
fn mha_masks_match_keras() {
    let h = LayerHandle::new(MultiHeadAttention::new(2, 3));
    h.build(&[vec![None, Some(4), Some(5)], vec![None, Some(3), Some(6)]])
        .unwrap();
    set_fill(&h, 1);
    let y = h.call_many(&[q(), v()], false).unwrap();
    assert_eq!(y.len(), 1);
    close(&y[0], r::MHA_PLAIN, TOL);
    // attention_mask as the 4th input (key = value).
    let y = h.call_many(&[q(), v(), v(), amask()], false).unwrap();
    close(&y[0], r::MHA_AMASK, TOL);
    // A float attention mask means the same (non-zero = attend).
    let y = h
        .call_many(
            &[q(), v(), v(), ops::cast(&amask(), DType::F32).unwrap()],
            false,
        )
        .unwrap();
    close(&y[0], r::MHA_AMASK, TOL);
    // Query and value masks from the mask mechanism; the output carries the query mask.
    let (y, m) = h
        .call_masked(&[q(), v()], &[Some(qmask()), Some(vmask())], false)
        .unwrap();
    close(&y[0], r::MHA_QVMASK, TOL);
    assert_eq!(
        m.unwrap().to_vec::<bool>().unwrap(),
        qmask().to_vec::<bool>().unwrap()
    );
    // With scores returned, Keras zeroes masked probabilities (fully masked query rows too).
    let mut l = MultiHeadAttention::new(2, 3);
    let qq = q();
    let vv = v();
    let (qm, vm) = (qmask(), vmask());
    l.call_with(
        &qq,
        &vv,
        None,
        None,
        [None, None, None],
        false,
        false,
        false,
    )
    .unwrap();
    let ws: Vec<Tensor> = l
        .weights()
        .iter()
        .enumerate()
        .map(|(k, w)| fill(&w.shape(), 1 + 3 * k, 1.0, DType::F32))
        .collect();
    l.set_weights(&ws).unwrap();
    let (y, s) = l
        .call_with(
            &qq,
            &vv,
            None,
            None,
            [Some(&qm), Some(&vm), None],
            true,
            false,
            false,
        )
        .unwrap();
    close(&y, r::MHA_QVMASK_SCORES_OUT, TOL);
    close(&s.unwrap(), r::MHA_QVMASK_SCORES, TOL);
}

#[test]
fn mha_causal_mask_matches_keras() {
    let h = LayerHandle::new(
        MultiHeadAttention::new(3, 2)
            .use_bias(false)
            .use_causal_mask(true),
    );
    h.build(&[vec![None, Some(4), Some(5)], vec![None, Some(4), Some(5)]])
        .unwrap();
    assert_eq!(h.lock().weights().len(), 4);
    set_fill(&h, 2);
    let y = h.call_many(&[q(), q()], false).unwrap();
    close(&y[0], r::MHA_CAUSAL, TOL);
    let (y, _) = h
        .call_masked(&[q(), q()], &[Some(qmask()), Some(qmask())], false)
        .unwrap();
    close(&y[0], r::MHA_CAUSAL_QMASK, TOL);
    // Step 0 of a causal self-attention sees only itself: changing later steps leaves it alone.
    let mut q2 = q().to_f64_vec();
    for x in q2.iter_mut().skip(5).take(15) {
        *x += 1.0;
    }
    let q2 = Tensor::from_f64_slice(DType::F32, &q2, &[2, 4, 5]).unwrap();
    let y2 = h.call_many(&[q2.clone(), q2], false).unwrap();
    let a = h.call_many(&[q(), q()], false).unwrap()[0].to_f64_vec();
    let b = y2[0].to_f64_vec();
    assert_eq!(&a[..5], &b[..5]);
    assert_ne!(&a[5..10], &b[5..10]);
}

/// Plain-loop f64 multi-head attention (no biases, no mask), written from the equations.
fn mha_reference(
    qx: &[f64],
    vx: &[f64],
    w: &[Vec<f64>],
    dims: (usize, usize, usize, usize, usize, usize, usize),
) -> Vec<f64> {
    let (b, t, s, dq, dv, h, kd) = dims;
    let (wq, wk, wv, wo) = (&w[0], &w[1], &w[2], &w[3]);
    let mut out = vec![0.0; b * t * dq];
    for bi in 0..b {
        for hi in 0..h {
            let proj = |x: &[f64], len: usize, din: usize, wt: &[f64], i: usize, e: usize| -> f64 {
                (0..din)
                    .map(|c| x[(bi * len + i) * din + c] * wt[(c * h + hi) * kd + e])
                    .sum()
            };
            for ti in 0..t {
                let qv: Vec<f64> = (0..kd).map(|e| proj(qx, t, dq, wq, ti, e)).collect();
                let sc: Vec<f64> = (0..s)
                    .map(|si| {
                        (0..kd)
                            .map(|e| qv[e] * proj(vx, s, dv, wk, si, e))
                            .sum::<f64>()
                            / (kd as f64).sqrt()
                    })
                    .collect();
                let mx = sc.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = sc.iter().map(|x| (x - mx).exp()).sum();
                for e in 0..kd {
                    let o: f64 = (0..s)
                        .map(|si| (sc[si] - mx).exp() / z * proj(vx, s, dv, wv, si, e))
                        .sum();
                    for d in 0..dq {
                        out[(bi * t + ti) * dq + d] += o * wo[(hi * kd + e) * dq + d];
                    }
                }
            }
        }
    }
    out
}

#[test]
fn mha_matches_plain_loop_reference_and_gradients_in_f64() {
    let layer = RefCell::new(MultiHeadAttention::new(2, 3).use_bias(false));
    let qx = fill(&[2, 4, 5], 1, 2.0, DType::F64);
    let vx = fill(&[2, 3, 6], 2, 2.0, DType::F64);
    // query, key (= value input), value and output kernels.
    let shapes = [
        vec![5usize, 2, 3],
        vec![6, 2, 3],
        vec![6, 2, 3],
        vec![2, 3, 5],
    ];
    let ws: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| fill(s, 3 * k + 4, 1.0, DType::F64))
        .collect();
    let y = layer
        .borrow_mut()
        .call_with_weights(&ws, &qx, &vx, None, false)
        .unwrap();
    let want = mha_reference(
        &qx.to_f64_vec(),
        &vx.to_f64_vec(),
        &ws.iter().map(|w| w.to_f64_vec()).collect::<Vec<_>>(),
        (2, 4, 3, 5, 6, 2, 3),
    );
    for (a, b) in y.to_f64_vec().iter().zip(&want) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let am = amask();
    let f = |ins: &[Tensor]| {
        layer
            .borrow_mut()
            .call_with_weights(&ins[2..], &ins[0], &ins[1], Some(&am), false)
    };
    let mut inputs = vec![qx, vx];
    inputs.extend(ws);
    check_gradients(f, &inputs, &[0, 1, 2, 3, 4, 5]).unwrap();
}

#[test]
fn mha_errors() {
    let h = LayerHandle::new(MultiHeadAttention::new(2, 3));
    let err = h.call_many(&[q()], false).unwrap_err().to_string();
    assert!(err.contains("at least a query and a value"), "{err}");
    let h = LayerHandle::new(MultiHeadAttention::new(2, 3));
    h.call_many(&[q(), v()], false).unwrap();
    // Batch mismatch.
    let err = h
        .call_many(&[q(), fill(&[3, 3, 6], 0, 1.0, DType::F32)], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("batch size"), "{err}");
    // Wrong feature size for the built kernels.
    let err = h
        .call_many(&[q(), fill(&[2, 3, 5], 0, 1.0, DType::F32)], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("value kernel"), "{err}");
    // Attention mask of the wrong shape.
    let err = h
        .call_many(&[q(), v(), v(), bools(&[1; 8], &[2, 4])], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("attention_mask must have shape"), "{err}");
    // Query mask of the wrong length.
    let err = h
        .call_masked(&[q(), v()], &[Some(vmask())], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("query mask"), "{err}");
    // Too many inputs, bad arguments.
    let five = vec![q(), v(), v(), amask(), amask()];
    assert!(h.call_many(&five, false).is_err());
    let err = LayerHandle::new(MultiHeadAttention::new(0, 3))
        .call_many(&[q(), v()], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be positive"), "{err}");
    let err = LayerHandle::new(MultiHeadAttention::new(2, 3).attention_axes(&[1, 2]))
        .call_many(&[q(), v()], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not supported"), "{err}");
    let err = LayerHandle::new(MultiHeadAttention::new(2, 3))
        .call_many(&[fill(&[2, 5], 0, 1.0, DType::F32), v()], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[batch, time, features]"), "{err}");
}

#[test]
fn mha_in_functional_model_with_embedding_mask() {
    let inp = Input::with_shape(&[Some(4)], DType::I32, None);
    let emb = LayerHandle::new(Embedding::new(6, 4).mask_zero(true));
    let mha = LayerHandle::new(MultiHeadAttention::new(2, 2));
    let x = emb.apply(inp.clone()).unwrap();
    let y = mha.apply(vec![x.clone(), x]).unwrap();
    assert_eq!(y.shape(), &vec![None, Some(4), Some(4)]);
    let model = Model::new(inp, y).unwrap();
    let ids = Tensor::from_vec(vec![3i32, 1, 0, 0, 2, 5, 4, 0], &[2, 4]).unwrap();
    let (out, masks) = model
        .call_with_masks(std::slice::from_ref(&ids), false)
        .unwrap();
    let m = masks[0].clone().unwrap();
    assert_eq!(
        m.to_vec::<bool>().unwrap(),
        vec![true, true, false, false, true, true, true, false]
    );
    // Same as calling the layers by hand with the masks.
    let e = emb.call(&ids, false).unwrap();
    let (want, _) = mha
        .call_masked(&[e.clone(), e], &[Some(m.clone()), Some(m)], false)
        .unwrap();
    assert_eq!(out[0].to_f64_vec(), want[0].to_f64_vec());
    // Padded keys get no attention: changing a padded embedding leaves real steps unchanged.
    let ids2 = Tensor::from_vec(vec![3i32, 1, 0, 0, 2, 5, 4, 0], &[2, 4]).unwrap();
    let e2 = emb.call(&ids2, false).unwrap();
    let mut ev = e2.to_f64_vec();
    for x in ev.iter_mut().skip(8).take(8) {
        *x += 5.0; // sample 0, steps 2 and 3 (padding)
    }
    let e2 = Tensor::from_f64_slice(DType::F32, &ev, &[2, 4, 4]).unwrap();
    let mm = model.call_with_masks(&[ids], false).unwrap().1[0].clone();
    let (y2, _) = mha
        .call_masked(&[e2.clone(), e2], &[mm.clone(), mm], false)
        .unwrap();
    let (a, b) = (y2[0].to_f64_vec(), out[0].to_f64_vec());
    for i in 0..8 {
        assert!((a[i] - b[i]).abs() < 1e-6);
    }
}

fn qa() -> Tensor {
    fill(&[2, 4, 4], 4, 2.0, DType::F32)
}
fn va() -> Tensor {
    fill(&[2, 3, 5], 5, 2.0, DType::F32)
}
fn ka() -> Tensor {
    fill(&[2, 3, 4], 6, 2.0, DType::F32)
}

#[test]
fn attention_matches_keras() {
    let h = LayerHandle::new(Attention::new());
    close(
        &h.call_many(&[qa(), va(), ka()], false).unwrap()[0],
        r::ATT_DOT,
        TOL,
    );
    let (y, m) = h
        .call_masked(&[qa(), va(), ka()], &[Some(qmask()), Some(vmask())], false)
        .unwrap();
    close(&y[0], r::ATT_DOT_MASK, TOL);
    assert_eq!(
        m.unwrap().to_vec::<bool>().unwrap(),
        qmask().to_vec::<bool>().unwrap()
    );
    let h = LayerHandle::new(
        Attention::new()
            .use_causal_mask(true)
            .return_attention_scores(true),
    );
    let y = h.call_many(&[qa(), ka()], false).unwrap();
    close(&y[0], r::ATT_CAUSAL_OUT, TOL);
    close(&y[1], r::ATT_CAUSAL_SCORES, TOL);
    let h = LayerHandle::new(
        Attention::new()
            .use_scale(true)
            .score_mode(ScoreMode::Concat),
    );
    h.build(&[vec![None, Some(4), Some(4)]]).unwrap();
    h.lock()
        .set_weights(&[Tensor::scalar(0.7f32), Tensor::scalar(-1.3f32)])
        .unwrap();
    let (y, _) = h
        .call_masked(&[qa(), va(), ka()], &[Some(qmask()), Some(vmask())], false)
        .unwrap();
    close(&y[0], r::ATT_CONCAT_MASK, TOL);
    let h = LayerHandle::new(Attention::new().use_scale(true));
    h.build(&[vec![None, Some(4), Some(4)]]).unwrap();
    h.lock().set_weights(&[Tensor::scalar(0.6f32)]).unwrap();
    close(
        &h.call_many(&[qa(), va(), ka()], false).unwrap()[0],
        r::ATT_SCALE,
        TOL,
    );
}

#[test]
fn additive_attention_matches_keras() {
    let h = LayerHandle::new(AdditiveAttention::new());
    h.build(&[vec![None, Some(4), Some(4)]]).unwrap();
    set_fill(&h, 7);
    close(
        &h.call_many(&[qa(), va(), ka()], false).unwrap()[0],
        r::ADD_PLAIN,
        TOL,
    );
    let (y, _) = h
        .call_masked(&[qa(), va(), ka()], &[Some(qmask()), Some(vmask())], false)
        .unwrap();
    close(&y[0], r::ADD_MASK, TOL);
    let h = LayerHandle::new(
        AdditiveAttention::new()
            .use_scale(false)
            .use_causal_mask(true),
    );
    close(
        &h.call_many(&[qa(), ka()], false).unwrap()[0],
        r::ADD_NOSCALE_CAUSAL,
        TOL,
    );
    assert!(h.lock().weights().is_empty());
}

#[test]
fn attention_errors() {
    let h = LayerHandle::new(Attention::new());
    let err = h.call_many(&[qa()], false).unwrap_err().to_string();
    assert!(err.contains("expects [query, value]"), "{err}");
    let err = h.call_many(&[qa(), va()], false).unwrap_err().to_string();
    assert!(err.contains("must agree"), "{err}");
    let err = h
        .call_masked(&[qa(), va(), ka()], &[None, Some(qmask())], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("value mask"), "{err}");
    let err = LayerHandle::new(AdditiveAttention::new().dropout(1.5))
        .call_many(&[qa(), ka()], false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dropout"), "{err}");
}

#[test]
fn attention_dropout_is_seeded_and_inactive_in_inference() {
    let h = LayerHandle::new(Attention::new().dropout(0.5));
    let a = h.call_many(&[qa(), va(), ka()], false).unwrap();
    close(&a[0], r::ATT_DOT, TOL);
    let t1 = h.call_many(&[qa(), va(), ka()], true).unwrap()[0].to_f64_vec();
    let t2 = h.call_many(&[qa(), va(), ka()], true).unwrap()[0].to_f64_vec();
    assert_ne!(t1, t2);
    let h = LayerHandle::new(MultiHeadAttention::new(2, 3).dropout(0.3));
    let a = h.call_many(&[q(), v()], false).unwrap()[0].to_f64_vec();
    let b = h.call_many(&[q(), v()], false).unwrap()[0].to_f64_vec();
    assert_eq!(a, b);
    let c = h.call_many(&[q(), v()], true).unwrap()[0].to_f64_vec();
    assert_ne!(a, c);
}

#[test]
fn position_embedding_rows_and_errors() {
    let h = LayerHandle::new(PositionEmbedding::new(6));
    let x = fill(&[2, 4, 3], 1, 1.0, DType::F32);
    h.build(&[vec![None, Some(4), Some(3)]]).unwrap();
    let table = fill(&[6, 3], 9, 1.0, DType::F32);
    h.lock().set_weights(std::slice::from_ref(&table)).unwrap();
    let y = h.call(&x, false).unwrap();
    assert_eq!(y.shape(), &[2, 4, 3]);
    let t = table.to_f64_vec();
    let yv = y.to_f64_vec();
    for b in 0..2 {
        assert_eq!(&yv[b * 12..b * 12 + 12], &t[..12]);
    }
    let err = h
        .call(&fill(&[1, 7, 3], 1, 1.0, DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("do not fit"), "{err}");
    let h = LayerHandle::new(PositionEmbedding::new(6).start_index(2));
    h.build(&[vec![None, Some(4), Some(3)]]).unwrap();
    h.lock().set_weights(std::slice::from_ref(&table)).unwrap();
    assert_eq!(&h.call(&x, false).unwrap().to_f64_vec()[..12], &t[6..18]);
}

#[test]
fn masks_flow_through_dropout_and_dense() {
    // Embedding(mask_zero) → Dropout → LSTM: the LSTM sees the mask, so a masked step repeats
    // the previous output (Keras's behaviour for return_sequences).
    let mut m = Sequential::new();
    m.add(Input::with_shape(&[Some(4)], DType::I32, None))
        .unwrap();
    m.add(Embedding::new(5, 3).mask_zero(true)).unwrap();
    m.add(Dropout::new(0.5)).unwrap();
    m.add(LSTM::new(2).return_sequences(true)).unwrap();
    m.add(Dense::new(3)).unwrap();
    m.add(Activation::new("relu")).unwrap();
    let ids = Tensor::from_vec(vec![3i32, 0, 2, 0, 1, 2, 3, 4], &[2, 4]).unwrap();
    let (y, masks) = m
        .call_with_masks(std::slice::from_ref(&ids), false)
        .unwrap();
    assert_eq!(
        masks[0].as_ref().unwrap().to_vec::<bool>().unwrap(),
        vec![true, false, true, false, true, true, true, true]
    );
    let v = y[0].to_f64_vec();
    // sample 0: step 1 equals step 0, step 3 equals step 2.
    assert_eq!(&v[0..3], &v[3..6]);
    assert_eq!(&v[6..9], &v[9..12]);
}

#[test]
fn char_tokenizer_round_trip() {
    let text = "the cat sat on the mat";
    let tok = CharTokenizer::fit(text);
    // ' ' (5×) and 't' (5×): ties by code point, so ' ' first; then 'a' (3×).
    assert_eq!(&tok.vocabulary()[..3], &[' ', 't', 'a']);
    assert_eq!(tok.vocabulary_size(), 2 + 10);
    assert_eq!(tok.id(' '), 2);
    assert_eq!(tok.id('z'), CharTokenizer::OOV);
    assert_eq!(tok.decode(&tok.encode(text)), text);
    assert_eq!(tok.decode(&[0, tok.id('c'), 1, 99]), "c\u{FFFD}\u{FFFD}");
    assert_eq!(
        tok.encode_tensor("at").unwrap().to_vec::<i64>().unwrap(),
        vec![4, 3]
    );
    assert!(CharTokenizer::from_vocabulary(&['a', 'b', 'a']).is_err());
    let t2 = CharTokenizer::from_vocabulary(&['x', 'y']).unwrap();
    assert_eq!(t2.encode("yx?"), vec![3, 2, 1]);
    assert_eq!(t2.char_of(3), Some('y'));
    assert_eq!(t2.char_of(0), None);
}

#[test]
fn losses_of_a_masked_output_match_keras() {
    // Keras's apply_mask: the loss is averaged over the unmasked steps only.
    let layers = [
        LayerHandle::new(Embedding::new(5, 3).mask_zero(true)),
        LayerHandle::new(LSTM::new(2).return_sequences(true)),
        LayerHandle::new(Dense::new(3).activation("softmax")),
    ];
    let mut m = Sequential::new();
    m.add(Input::with_shape(&[Some(4)], DType::I32, None))
        .unwrap();
    for l in &layers {
        m.add(l.clone()).unwrap();
    }
    for (j, l) in layers.iter().enumerate() {
        set_fill(l, j);
    }
    m.compile("sgd", "sparse_categorical_crossentropy", ())
        .unwrap();
    let ids = Tensor::from_vec(vec![0i32, 0, 3, 1, 0, 2, 4, 1], &[2, 4]).unwrap();
    let ys = Tensor::from_vec(vec![0i32, 1, 2, 1, 2, 0, 1, 1], &[2, 4]).unwrap();
    let loss = m.evaluate(&ids, &ys).verbose(0).run().unwrap()[0];
    assert!(
        (loss - r::MASKED_LOSS[0] as f64).abs() < 1e-5,
        "{loss} vs {}",
        r::MASKED_LOSS[0]
    );
    // The same from the predictions by hand: mean of -log p over the 5 unmasked steps.
    let p = m.call(std::slice::from_ref(&ids), false).unwrap()[0].to_f64_vec();
    let (idv, yv) = (ids.to_vec::<i32>().unwrap(), ys.to_vec::<i32>().unwrap());
    let (mut sum, mut n) = (0.0, 0.0);
    for s in 0..8 {
        if idv[s] != 0 {
            sum -= p[s * 3 + yv[s] as usize].ln();
            n += 1.0;
        }
    }
    assert!((loss - sum / n).abs() < 1e-5);
}
