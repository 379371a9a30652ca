//! Sequence layers (Embedding, Masking, SimpleRNN, LSTM, GRU, RNN, Bidirectional,
//! TimeDistributed) and `pad_sequences`: outputs against real Keras 3.15 (values written by
//! fixtures/rnn_ref.py into fixtures/rnn_ref_values.rs), a plain-loop f64 LSTM step, finite
//! difference gradient checks in f64, masks through models, weight names, and errors.

use ferroflow_core::testing::check_gradients;
use ferroflow_core::{ops, DType, GradientTape, Tensor};
use ferroflow_keras::layers::*;
use ferroflow_keras::models::Model;
use ferroflow_keras::prelude::*;
use ferroflow_keras::utils::pad_sequences;

#[allow(dead_code, clippy::excessive_precision)]
mod keras_ref {
    include!("fixtures/rnn_ref_values.rs");
}
use keras_ref as r;

/// The fixture pattern of rnn_ref.py: `((i·7 + salt) mod 13 − 6) / 20`.
fn fill_vals(n: usize, salt: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 7 + salt) % 13) as f64 / 20.0 - 0.3)
        .collect()
}

fn fill(shape: &[usize], salt: usize, dtype: DType) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f64_slice(dtype, &fill_vals(n, salt), shape).unwrap()
}

/// The test input `fill((2, 4, 3), 1) * 2` of rnn_ref.py.
fn x_in() -> Tensor {
    let v: Vec<f64> = fill_vals(24, 1).iter().map(|v| v * 2.0).collect();
    Tensor::from_f64_slice(DType::F32, &v, &[2, 4, 3]).unwrap()
}

/// rnn_ref.py's mask `[[1, 1, 1, 0], [1, 0, 1, 1]]`.
fn mask_in() -> Tensor {
    Tensor::from_vec(
        vec![true, true, true, false, true, false, true, true],
        &[2, 4],
    )
    .unwrap()
}

/// Sets every weight `k` of a built layer to `fill(shape, salt + 3k)`, as `set_cell` does.
fn set_fill(layer: &LayerHandle, salt: usize) {
    let mut l = layer.lock();
    let ws: Vec<Tensor> = l
        .weights()
        .iter()
        .enumerate()
        .map(|(k, w)| fill(&w.shape(), salt + 3 * k, DType::F32))
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

/// Builds `layer` on the test input, sets the fixture weights, and runs it (with a mask and
/// extra inputs if given).
fn run(layer: impl Layer, extra: &[Tensor], mask: Option<Tensor>) -> Vec<Tensor> {
    let h = LayerHandle::new(layer);
    h.build(&[vec![None, Some(4), Some(3)]]).unwrap();
    set_fill(&h, 0);
    let mut inputs = vec![x_in()];
    inputs.extend_from_slice(extra);
    h.call_masked(&inputs, &[mask], false).unwrap().0
}

const TOL: f64 = 2e-6;

#[test]
fn lstm_sequences_and_states_match_keras() {
    let y = run(
        LSTM::new(3).return_sequences(true).return_state(true),
        &[],
        None,
    );
    assert_eq!(y.len(), 3);
    assert_eq!(y[0].shape(), &[2, 4, 3]);
    assert_eq!(y[1].shape(), &[2, 3]);
    close(&y[0], r::LSTM_SEQ_STATE_0, TOL);
    close(&y[1], r::LSTM_SEQ_STATE_1, TOL);
    close(&y[2], r::LSTM_SEQ_STATE_2, TOL);
}

#[test]
fn lstm_go_backwards_matches_keras() {
    let y = run(
        LSTM::new(3).go_backwards(true).return_sequences(true),
        &[],
        None,
    );
    close(&y[0], r::LSTM_BACK_0, TOL);
}

#[test]
fn lstm_mask_matches_keras() {
    let y = run(
        LSTM::new(3).return_sequences(true).return_state(true),
        &[],
        Some(mask_in()),
    );
    close(&y[0], r::LSTM_MASK_0, TOL);
    close(&y[1], r::LSTM_MASK_1, TOL);
    close(&y[2], r::LSTM_MASK_2, TOL);
}

#[test]
fn lstm_initial_state_matches_keras() {
    let h0 = fill(&[2, 3], 5, DType::F32);
    let c0 = fill(&[2, 3], 6, DType::F32);
    let y = run(LSTM::new(3).return_state(true), &[h0, c0], None);
    close(&y[0], r::LSTM_INIT_0, TOL);
    close(&y[1], r::LSTM_INIT_1, TOL);
    close(&y[2], r::LSTM_INIT_2, TOL);
}

#[test]
fn gru_both_reset_modes_and_mask_match_keras() {
    let y = run(
        GRU::new(3).return_sequences(true).return_state(true),
        &[],
        None,
    );
    close(&y[0], r::GRU_AFTER_0, TOL);
    close(&y[1], r::GRU_AFTER_1, TOL);
    let y = run(
        GRU::new(3).return_sequences(true).reset_after(false),
        &[],
        None,
    );
    close(&y[0], r::GRU_BEFORE_0, TOL);
    let y = run(
        GRU::new(3).return_sequences(true).go_backwards(true),
        &[],
        Some(mask_in()),
    );
    close(&y[0], r::GRU_MASK_BACK_0, TOL);
}

#[test]
fn simple_rnn_matches_keras() {
    let y = run(
        SimpleRNN::new(3).return_sequences(true).return_state(true),
        &[],
        None,
    );
    close(&y[0], r::SRNN_0, TOL);
    close(&y[1], r::SRNN_1, TOL);
    let y = run(
        SimpleRNN::new(3).return_sequences(true),
        &[],
        Some(mask_in()),
    );
    close(&y[0], r::SRNN_MASK_0, TOL);
}

#[test]
fn generic_rnn_with_cell_equals_lstm() {
    let y = run(
        RNN::new(LSTMCell::new(3))
            .return_sequences(true)
            .return_state(true),
        &[],
        None,
    );
    close(&y[0], r::LSTM_SEQ_STATE_0, TOL);
    close(&y[2], r::LSTM_SEQ_STATE_2, TOL);
}

#[test]
fn bidirectional_merge_modes_match_keras() {
    let cases: [(&str, &[f32]); 4] = [
        ("concat", r::BI_CONCAT_0),
        ("sum", r::BI_SUM_0),
        ("mul", r::BI_MUL_0),
        ("ave", r::BI_AVE_0),
    ];
    for (mode, want) in cases {
        let y = run(
            Bidirectional::new(LSTM::new(2).return_sequences(true)).merge_mode(mode),
            &[],
            None,
        );
        assert_eq!(y.len(), 1);
        close(&y[0], want, TOL);
    }
    let y = run(
        Bidirectional::new(LSTM::new(2).return_sequences(true)).no_merge(),
        &[],
        None,
    );
    close(&y[0], r::BI_NONE_0, TOL);
    close(&y[1], r::BI_NONE_1, TOL);
    let y = run(
        Bidirectional::new(GRU::new(2).return_sequences(true)),
        &[],
        Some(mask_in()),
    );
    close(&y[0], r::BI_GRU_MASK_0, TOL);
    let y = run(
        Bidirectional::new(LSTM::new(2).return_state(true)),
        &[],
        None,
    );
    assert_eq!(y.len(), 5);
    close(&y[0], r::BI_LSTM_STATE_0, TOL);
    close(&y[1], r::BI_LSTM_STATE_1, TOL);
    close(&y[2], r::BI_LSTM_STATE_2, TOL);
    close(&y[3], r::BI_LSTM_STATE_3, TOL);
    close(&y[4], r::BI_LSTM_STATE_4, TOL);
}

#[test]
fn bidirectional_weight_names_and_shapes_as_keras() {
    let bi = LayerHandle::new(Bidirectional::new(LSTM::new(2).named("lstm")).named("bidi"));
    bi.build(&[vec![None, Some(5), Some(3)]]).unwrap();
    let names: Vec<String> = bi
        .lock()
        .weights()
        .iter()
        .map(|w| w.name().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "bidi/forward_lstm/lstm_cell/kernel",
            "bidi/forward_lstm/lstm_cell/recurrent_kernel",
            "bidi/forward_lstm/lstm_cell/bias",
            "bidi/backward_lstm/lstm_cell/kernel",
            "bidi/backward_lstm/lstm_cell/recurrent_kernel",
            "bidi/backward_lstm/lstm_cell/bias",
        ]
    );
    let out = bi
        .compute_output_shape(&[vec![None, Some(5), Some(3)]])
        .unwrap();
    assert_eq!(out, vec![vec![None, Some(4)]]);
}

#[test]
fn embedding_mask_zero_feeds_lstm_in_sequential_and_functional() {
    let ids = Tensor::from_vec(vec![0i32, 0, 1, 2, 0, 3, 1, 2], &[2, 4]).unwrap();
    let setup = |emb: &LayerHandle, lstm: &LayerHandle| {
        emb.lock()
            .set_weights(&[fill(&[5, 3], 2, DType::F32)])
            .unwrap();
        set_fill(lstm, 0);
    };
    // Sequential.
    let emb = LayerHandle::new(Embedding::new(5, 3).mask_zero(true));
    let lstm = LayerHandle::new(LSTM::new(2).return_sequences(true));
    let mut m = Sequential::new();
    m.add(Input::with_shape(&[Some(4)], DType::I32, None))
        .unwrap();
    m.add(emb.clone()).unwrap();
    m.add(lstm.clone()).unwrap();
    setup(&emb, &lstm);
    let y = m.call(std::slice::from_ref(&ids), false).unwrap();
    assert_eq!(y[0].shape(), &[2, 4, 2]);
    close(&y[0], r::EMB_LSTM, TOL);
    let (_, masks) = m
        .call_with_masks(std::slice::from_ref(&ids), false)
        .unwrap();
    assert_eq!(
        masks[0].as_ref().unwrap().to_vec::<bool>().unwrap(),
        vec![false, false, true, true, false, true, true, true]
    );
    // Functional.
    let inp = Input::with_shape(&[Some(4)], DType::I32, None);
    let emb = LayerHandle::new(Embedding::new(5, 3).mask_zero(true));
    let lstm = LayerHandle::new(LSTM::new(2).return_sequences(true));
    let h = emb.apply(inp.clone()).unwrap();
    let out = lstm.apply(h).unwrap();
    let model = Model::new(inp, out).unwrap();
    setup(&emb, &lstm);
    let (y, masks) = model.call_with_masks(&[ids], false).unwrap();
    close(&y[0], r::EMB_LSTM, TOL);
    assert_eq!(
        masks[0].as_ref().unwrap().to_vec::<bool>().unwrap(),
        vec![false, false, true, true, false, true, true, true]
    );
}

#[test]
fn masking_layer_feeds_simple_rnn() {
    let mut xm = x_in().to_f64_vec();
    for f in 0..3 {
        xm[3 * 3 + f] = 0.0; // sample 0, step 3
        xm[12 + f] = 0.0; // sample 1, step 0
    }
    let xm = Tensor::from_f64_slice(DType::F32, &xm, &[2, 4, 3]).unwrap();
    let rnn = LayerHandle::new(SimpleRNN::new(2));
    let mut m = Sequential::new();
    m.add(Input::new(&[4, 3])).unwrap();
    m.add(Masking::new(0.0)).unwrap();
    m.add(rnn.clone()).unwrap();
    set_fill(&rnn, 0);
    let y = m.call(&[xm], false).unwrap();
    close(&y[0], r::MASKING_SRNN, TOL);
}

#[test]
fn masking_output_and_mask_by_hand() {
    let x = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 0.0, 0.0, 2.0], &[1, 3, 2]).unwrap();
    let m = LayerHandle::new(Masking::new(0.0));
    let (y, mask) = m.call_masked(&[x], &[], false).unwrap();
    assert_eq!(
        y[0].to_vec::<f32>().unwrap(),
        vec![1.0, 0.0, 0.0, 0.0, 0.0, 2.0]
    );
    assert_eq!(
        mask.unwrap().to_vec::<bool>().unwrap(),
        vec![true, false, true]
    );
    // A non-zero mask value: steps equal to it everywhere are zeroed.
    let x = Tensor::from_vec(vec![5.0f32, 5.0, 1.0, 5.0], &[1, 2, 2]).unwrap();
    let m = LayerHandle::new(Masking::new(5.0));
    let (y, mask) = m.call_masked(&[x], &[], false).unwrap();
    assert_eq!(y[0].to_vec::<f32>().unwrap(), vec![0.0, 0.0, 1.0, 5.0]);
    assert_eq!(mask.unwrap().to_vec::<bool>().unwrap(), vec![false, true]);
}

#[test]
fn stateful_lstm_carries_states_until_reset() {
    let l = LayerHandle::new(LSTM::new(3).stateful(true).named("st"));
    l.build(&[vec![Some(2), Some(4), Some(3)]]).unwrap();
    set_fill(&l, 0);
    let first = l.call(&x_in(), false).unwrap();
    let second = l.call(&x_in(), false).unwrap();
    close(&second, r::LSTM_STATEFUL_2, TOL);
    // Another batch size is an error.
    let err = l
        .call(&ops::zeros(&[3, 4, 3], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("stateful"), "{err}");
    // reset_states (on the layer itself): back to the first call's result.
    let mut raw = LSTM::new(3).stateful(true);
    raw.build(&[vec![Some(2), Some(4), Some(3)]]).unwrap();
    let ws = l.lock().get_weights();
    raw.set_weights(&ws).unwrap();
    raw.call(&[x_in()], false).unwrap();
    raw.reset_states();
    let again = raw.call(&[x_in()], false).unwrap();
    close(&again[0], &first.to_vec::<f32>().unwrap(), 0.0);
    close(&first, r::LSTM_SEQ_STATE_1, TOL);
}

#[test]
fn time_distributed_dense_matches_keras() {
    let td = LayerHandle::new(TimeDistributed::new(Dense::new(2)));
    td.build(&[vec![None, Some(4), Some(3)]]).unwrap();
    td.lock()
        .set_weights(&[fill(&[3, 2], 0, DType::F32), fill(&[2], 3, DType::F32)])
        .unwrap();
    let y = td.call(&x_in(), false).unwrap();
    assert_eq!(y.shape(), &[2, 4, 2]);
    close(&y, r::TD_DENSE, TOL);
    let s = td
        .compute_output_shape(&[vec![None, None, Some(3)]])
        .unwrap();
    assert_eq!(s, vec![vec![None, None, Some(2)]]);
}

#[test]
fn pad_sequences_matches_keras() {
    let seqs: Vec<Vec<i64>> = vec![vec![1, 2, 3, 4], vec![5, 6], vec![7], vec![]];
    let cases: [(&str, &str, &[f32]); 4] = [
        ("pre", "pre", r::PAD_PRE_PRE),
        ("pre", "post", r::PAD_PRE_POST),
        ("post", "pre", r::PAD_POST_PRE),
        ("post", "post", r::PAD_POST_POST),
    ];
    for (p, t, want) in cases {
        let y = pad_sequences(&seqs, Some(3), DType::I32, p, t, -1.0).unwrap();
        assert_eq!(y.shape(), &[4, 3]);
        assert_eq!(y.dtype(), DType::I32);
        close(&y, want, 0.0);
    }
    let y = pad_sequences(&seqs, None, DType::I32, "pre", "pre", 0.0).unwrap();
    assert_eq!(y.shape(), &[4, 4]);
    close(&y, r::PAD_NONE, 0.0);
    let y = pad_sequences(
        &[vec![1.5f64, 2.5], vec![3.7]],
        None,
        DType::F32,
        "pre",
        "pre",
        0.25,
    )
    .unwrap();
    close(&y, r::PAD_FLOAT, 0.0);
    // Errors, as Keras's ValueErrors.
    let e = pad_sequences(&seqs, None, DType::I32, "middle", "pre", 0.0).unwrap_err();
    assert!(e.to_string().contains("padding type"), "{e}");
    let e = pad_sequences(&seqs, None, DType::I32, "pre", "both", 0.0).unwrap_err();
    assert!(e.to_string().contains("truncating type"), "{e}");
}

#[test]
fn param_counts_and_weight_paths_as_keras() {
    let mut m = Sequential::new();
    m.add(Input::with_shape(&[Some(7)], DType::I32, None))
        .unwrap();
    m.add(Embedding::new(1000, 16)).unwrap();
    m.add(LSTM::new(32).return_sequences(true)).unwrap();
    m.add(GRU::new(8)).unwrap();
    m.add(Dense::new(1)).unwrap();
    let counts: Vec<f32> = m
        .layers()
        .iter()
        .map(|l| l.lock().count_params() as f32)
        .collect();
    assert_eq!(counts, r::PARAM_COUNTS);
    // Keras's paths are `model/layer/...`; ours `layer/...`. Compare from the cell on.
    let ours: Vec<String> = m.weights().iter().map(|w| w.name().to_string()).collect();
    assert_eq!(ours.len(), r::PATHS.len());
    for (o, k) in ours.iter().zip(r::PATHS) {
        let k_tail: Vec<&str> = k.split('/').skip(2).collect();
        let o_tail: Vec<&str> = o.split('/').skip(1).collect();
        assert_eq!(o_tail, k_tail, "{o} vs {k}");
    }
    let shapes: Vec<Vec<usize>> = m.weights().iter().map(|w| w.shape()).collect();
    assert_eq!(
        shapes,
        vec![
            vec![1000, 16],
            vec![16, 128],
            vec![32, 128],
            vec![128],
            vec![32, 24],
            vec![8, 24],
            vec![2, 24],
            vec![8, 1],
            vec![1],
        ]
    );
    let s = m.summary_string(Some(100));
    assert!(s.contains("6,272") && s.contains("1,008"), "{s}");
}

#[test]
fn lstm_default_init_follows_keras() {
    let l = LayerHandle::new(LSTM::new(3));
    l.build(&[vec![None, None, Some(2)]]).unwrap();
    let w = l.lock().get_weights();
    // unit_forget_bias: [0]*u ++ [1]*u ++ [0]*2u.
    assert_eq!(
        w[2].to_vec::<f32>().unwrap(),
        vec![0., 0., 0., 1., 1., 1., 0., 0., 0., 0., 0., 0.]
    );
    // Orthogonal recurrent kernel [3, 12]: rows orthonormal (U Uᵀ = I).
    let u = w[1].to_f64_vec();
    for i in 0..3 {
        for j in 0..3 {
            let d: f64 = (0..12).map(|k| u[i * 12 + k] * u[j * 12 + k]).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((d - want).abs() < 1e-5, "U Uᵀ[{i},{j}] = {d}");
        }
    }
    let g = LayerHandle::new(GRU::new(3).reset_after(false));
    g.build(&[vec![None, None, Some(2)]]).unwrap();
    assert_eq!(g.lock().get_weights()[2].shape(), &[9]);
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// One LSTM step written as plain loops in f64 (gate order i, f, c, o).
#[test]
fn lstm_one_step_matches_plain_loop() {
    let (b, d, u) = (2, 3, 2);
    let x = fill_vals(b * d, 4);
    let k = fill_vals(d * 4 * u, 0);
    let rk = fill_vals(u * 4 * u, 3);
    let bias = fill_vals(4 * u, 6);
    let h0 = fill_vals(b * u, 8);
    let c0 = fill_vals(b * u, 9);
    let mut want_h = vec![0.0; b * u];
    let mut want_c = vec![0.0; b * u];
    for n in 0..b {
        let mut z = vec![0.0; 4 * u];
        for (j, zj) in z.iter_mut().enumerate() {
            *zj = bias[j];
            for i in 0..d {
                *zj += x[n * d + i] * k[i * 4 * u + j];
            }
            for i in 0..u {
                *zj += h0[n * u + i] * rk[i * 4 * u + j];
            }
        }
        for j in 0..u {
            let ig = sigmoid(z[j]);
            let fg = sigmoid(z[u + j]);
            let cc = z[2 * u + j].tanh();
            let og = sigmoid(z[3 * u + j]);
            let c = fg * c0[n * u + j] + ig * cc;
            want_c[n * u + j] = c;
            want_h[n * u + j] = og * c.tanh();
        }
    }
    let t = |v: &[f64], s: &[usize]| Tensor::from_f64_slice(DType::F64, v, s).unwrap();
    let mut l = LSTM::new(u).return_state(true);
    let out = l
        .rnn_mut()
        .call_with_weights(
            &[t(&k, &[d, 4 * u]), t(&rk, &[u, 4 * u]), t(&bias, &[4 * u])],
            &[t(&x, &[b, 1, d]), t(&h0, &[b, u]), t(&c0, &[b, u])],
            None,
            false,
        )
        .unwrap();
    assert_eq!(out[0].dtype(), DType::F64);
    let (gh, gc) = (out[1].to_f64_vec(), out[2].to_f64_vec());
    for i in 0..b * u {
        assert!((gh[i] - want_h[i]).abs() < 1e-12, "{gh:?} vs {want_h:?}");
        assert!((gc[i] - want_c[i]).abs() < 1e-12, "{gc:?} vs {want_c:?}");
    }
}

/// Finite-difference checks (f64) of the tape's gradients through a whole sequence, with
/// respect to the input, the initial states and every weight.
#[test]
fn lstm_and_gru_gradients_match_finite_differences() {
    let t =
        |shape: &[usize], seed: u64| ferroflow_core::testing::test_tensor(shape, seed, -0.8, 0.8);
    // LSTM: inputs [x, h0, c0, kernel, recurrent_kernel, bias].
    let lstm_inputs = vec![
        t(&[2, 3, 2], 1),
        t(&[2, 2], 2),
        t(&[2, 2], 3),
        t(&[2, 8], 4),
        t(&[2, 8], 5),
        t(&[8], 6),
    ];
    let f = |v: &[Tensor]| {
        let mut l = LSTM::new(2).return_sequences(true).return_state(true);
        let out = l.rnn_mut().call_with_weights(
            &v[3..6],
            &[v[0].clone(), v[1].clone(), v[2].clone()],
            Some(&Tensor::from_vec(vec![true, true, false, true, false, true], &[2, 3]).unwrap()),
            false,
        )?;
        ops::concat(
            &[
                &ops::reshape(&out[0], &[-1])?,
                &ops::reshape(&out[2], &[-1])?,
            ],
            0,
        )
    };
    check_gradients(f, &lstm_inputs, &[0, 1, 2, 3, 4, 5]).unwrap();
    // GRU, both reset modes: inputs [x, h0, kernel, recurrent_kernel, bias].
    for reset_after in [true, false] {
        let bias_shape: &[usize] = if reset_after { &[2, 6] } else { &[6] };
        let inputs = vec![
            t(&[2, 3, 2], 7),
            t(&[2, 2], 8),
            t(&[2, 6], 9),
            t(&[2, 6], 10),
            t(bias_shape, 11),
        ];
        let f = |v: &[Tensor]| {
            let mut l = GRU::new(2).return_sequences(true).reset_after(reset_after);
            let out = l.rnn_mut().call_with_weights(
                &v[2..5],
                &[v[0].clone(), v[1].clone()],
                None,
                false,
            )?;
            Ok(out[0].clone())
        };
        check_gradients(f, &inputs, &[0, 1, 2, 3, 4]).unwrap();
    }
}

#[test]
fn gradients_reach_embeddings_and_cell_weights() {
    let emb = LayerHandle::new(Embedding::new(5, 3));
    let lstm = LayerHandle::new(LSTM::new(2));
    let ids = Tensor::from_vec(vec![1i32, 2, 2, 0], &[2, 2]).unwrap();
    let e = emb.call(&ids, false).unwrap();
    lstm.call(&e, false).unwrap();
    let mut vars = emb.lock().weights();
    vars.extend(lstm.lock().weights());
    let tape = GradientTape::new();
    let y = lstm.call(&emb.call(&ids, true).unwrap(), true).unwrap();
    let loss = ops::reduce_sum(&y, ops::Axes::All, false).unwrap();
    let src: Vec<&dyn ferroflow_core::Watchable> = vars
        .iter()
        .map(|v| v as &dyn ferroflow_core::Watchable)
        .collect();
    let g = tape.gradient(&loss, &src).unwrap();
    let ge = g[0].as_ref().expect("embedding gradient").to_f64_vec();
    // Rows 3 and 4 are never looked up: zero gradient; rows 1 and 2 get one.
    assert!(ge[9..15].iter().all(|&v| v == 0.0), "{ge:?}");
    assert!(ge[3..9].iter().any(|&v| v != 0.0), "{ge:?}");
    for gw in &g[1..] {
        assert!(gw.is_some());
    }
}

#[test]
fn dropout_masks_are_fixed_across_time_steps() {
    // kernel = I, recurrent kernel = 0, no bias, linear: output_t = x_t · mask.
    let l = LayerHandle::new(
        SimpleRNN::new(4)
            .activation("linear")
            .use_bias(false)
            .dropout(0.5)
            .return_sequences(true)
            .seed(7),
    );
    l.build(&[vec![None, Some(6), Some(4)]]).unwrap();
    let eye = ops::eye(4, 4, DType::F32);
    l.lock()
        .set_weights(&[eye, ops::zeros(&[4, 4], DType::F32)])
        .unwrap();
    let x = ops::ones(&[3, 6, 4], DType::F32);
    assert_eq!(
        l.call(&x, false).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0; 72]
    );
    let y = l.call(&x, true).unwrap().to_vec::<f32>().unwrap();
    assert!(y.iter().all(|&v| v == 0.0 || v == 2.0), "{y:?}");
    assert!(y.contains(&0.0) && y.contains(&2.0));
    for n in 0..3 {
        let first = &y[n * 24..n * 24 + 4];
        for t in 1..6 {
            assert_eq!(&y[n * 24 + t * 4..n * 24 + t * 4 + 4], first);
        }
    }
    // LSTM/GRU with recurrent dropout (Keras's per-gate masks) run and change the output only in
    // training.
    for layer in [
        LayerHandle::new(LSTM::new(3).dropout(0.3).recurrent_dropout(0.4)),
        LayerHandle::new(GRU::new(3).dropout(0.3).recurrent_dropout(0.4)),
        LayerHandle::new(GRU::new(3).recurrent_dropout(0.4).reset_after(false)),
    ] {
        let a = layer.call(&x_in(), false).unwrap().to_f64_vec();
        let b = layer.call(&x_in(), false).unwrap().to_f64_vec();
        assert_eq!(a, b);
        let c = layer.call(&x_in(), true).unwrap().to_f64_vec();
        assert!(c.iter().all(|v| v.is_finite()));
        assert_ne!(a, c);
    }
}

#[test]
fn recurrent_output_shapes_and_masks() {
    let l = LayerHandle::new(LSTM::new(5).return_sequences(true).return_state(true));
    let s = l
        .compute_output_shape(&[vec![None, None, Some(3)]])
        .unwrap();
    assert_eq!(
        s,
        vec![
            vec![None, None, Some(5)],
            vec![None, Some(5)],
            vec![None, Some(5)]
        ]
    );
    // The output keeps the mask only with return_sequences.
    let seq = LayerHandle::new(GRU::new(2).return_sequences(true));
    let (_, m) = seq
        .call_masked(&[x_in()], &[Some(mask_in())], false)
        .unwrap();
    assert_eq!(
        m.unwrap().to_vec::<bool>().unwrap(),
        mask_in().to_vec::<bool>().unwrap()
    );
    let last = LayerHandle::new(GRU::new(2));
    let (_, m) = last
        .call_masked(&[x_in()], &[Some(mask_in())], false)
        .unwrap();
    assert!(m.is_none());
    // A layer without masking support drops the mask.
    let d = LayerHandle::new(Dense::new(2));
    let (_, m) = d.call_masked(&[x_in()], &[Some(mask_in())], false).unwrap();
    assert!(m.is_none());
}

#[test]
fn errors_name_the_layer() {
    let l = LayerHandle::new(LSTM::new(2).named("my_lstm"));
    let e = l
        .call(&ops::zeros(&[2, 3], DType::F32), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("my_lstm"), "{e}");
    let l = LayerHandle::new(LSTM::new(2).named("lstm_states"));
    let e = l
        .call_many(&[x_in(), ops::zeros(&[2, 2], DType::F32)], false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("initial state"), "{e}");
    let l = LayerHandle::new(GRU::new(2).named("gru_bad_state"));
    let e = l
        .call_many(&[x_in(), ops::zeros(&[2, 5], DType::F32)], false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("initial state"), "{e}");
    let l = LayerHandle::new(SimpleRNN::new(2).dropout(1.5).named("srnn_drop"));
    let e = l.call(&x_in(), false).unwrap_err().to_string();
    assert!(e.contains("dropout"), "{e}");
    let emb = LayerHandle::new(Embedding::new(3, 2).named("emb_range"));
    let e = emb
        .call(&Tensor::from_vec(vec![0i32, 3], &[1, 2]).unwrap(), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("out of range") && e.contains("emb_range"), "{e}");
    let bi = LayerHandle::new(Bidirectional::new(LSTM::new(2)).merge_mode("max"));
    let e = bi.call(&x_in(), false).unwrap_err().to_string();
    assert!(e.contains("merge mode"), "{e}");
    let l = LayerHandle::new(LSTM::new(2));
    let e = l
        .call_masked(
            &[x_in()],
            &[Some(Tensor::from_vec(vec![true; 3], &[1, 3]).unwrap())],
            false,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("mask"), "{e}");
    let td = LayerHandle::new(TimeDistributed::new(Dense::new(2)));
    assert!(td.call(&ops::zeros(&[2, 3], DType::F32), false).is_err());
}

#[test]
fn lstm_trains_in_a_sequential_model() {
    ferroflow_keras::utils::set_random_seed(3);
    let mut m = Sequential::new();
    m.add(Input::new(&[5, 2])).unwrap();
    m.add(LSTM::new(8)).unwrap();
    m.add(Dense::new(1)).unwrap();
    m.compile("adam", "mse", ()).unwrap();
    // Target: the sum of the first feature over time.
    let x = ferroflow_core::testing::test_tensor(&[64, 5, 2], 9, -1.0, 1.0);
    let x = ops::cast(&x, DType::F32).unwrap();
    let y = ops::reduce_sum(
        &ops::slice(&x, &[0, 0, 0], &[-1, -1, 1]).unwrap(),
        vec![1isize, 2],
        false,
    )
    .unwrap();
    let y = ops::reshape(&y, &[64, 1]).unwrap();
    let before = m.evaluate(&x, &y).verbose(0).run().unwrap();
    m.fit(&x, &y)
        .epochs(30)
        .batch_size(16)
        .verbose(0)
        .run()
        .unwrap();
    let after = m.evaluate(&x, &y).verbose(0).run().unwrap();
    assert!(after[0] < before[0] * 0.6, "{before:?} -> {after:?}");
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Simple,
    Lstm,
    GruAfter,
    GruBefore,
}

/// `Σ_i a[i]·m[i, j]` for a row-major matrix with `cols` columns, columns `j0..j0+n`.
fn vecmat(a: &[f64], m: &[f64], cols: usize, j0: usize, n: usize) -> Vec<f64> {
    (0..n)
        .map(|j| {
            a.iter()
                .enumerate()
                .map(|(i, v)| v * m[i * cols + j0 + j])
                .sum()
        })
        .collect()
}

/// A step-by-step reference written from Keras's equations, plain f64 loops: returns the output
/// sequence (in processing order) and the final states, per sample.
#[allow(clippy::type_complexity)]
fn reference(
    kind: Kind,
    x: &[f64],
    [b, t, d]: [usize; 3],
    u: usize,
    w: &[Vec<f64>],
    mask: Option<&[bool]>,
    backwards: bool,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let sig = sigmoid;
    let g = match kind {
        Kind::Simple => 1,
        Kind::Lstm => 4,
        _ => 3,
    };
    let (k, rk, bias) = (&w[0], &w[1], &w[2]);
    let mut seq = vec![0.0; b * t * u];
    let mut finals: Vec<Vec<f64>> = vec![vec![0.0; b * u]; if kind == Kind::Lstm { 2 } else { 1 }];
    for n in 0..b {
        let mut h = vec![0.0; u];
        let mut c = vec![0.0; u];
        let mut out = vec![0.0; u];
        for s in 0..t {
            let step = if backwards { t - 1 - s } else { s };
            let xt = &x[(n * t + step) * d..(n * t + step + 1) * d];
            let keep = mask.is_none_or(|m| m[n * t + step]);
            let xk = vecmat(xt, k, g * u, 0, g * u);
            let (nh, nc) = match kind {
                Kind::Simple => {
                    let hu = vecmat(&h, rk, u, 0, u);
                    let nh: Vec<f64> = (0..u).map(|j| (xk[j] + bias[j] + hu[j]).tanh()).collect();
                    (nh, c.clone())
                }
                Kind::Lstm => {
                    let hu = vecmat(&h, rk, 4 * u, 0, 4 * u);
                    let z: Vec<f64> = (0..4 * u).map(|j| xk[j] + hu[j] + bias[j]).collect();
                    let mut nh = vec![0.0; u];
                    let mut nc = vec![0.0; u];
                    for j in 0..u {
                        let (i, f, cc, o) = (
                            sig(z[j]),
                            sig(z[u + j]),
                            z[2 * u + j].tanh(),
                            sig(z[3 * u + j]),
                        );
                        nc[j] = f * c[j] + i * cc;
                        nh[j] = o * nc[j].tanh();
                    }
                    (nh, nc)
                }
                Kind::GruAfter => {
                    let hu = vecmat(&h, rk, 3 * u, 0, 3 * u);
                    let (bi, br) = (&bias[..3 * u], &bias[3 * u..]);
                    let nh = (0..u)
                        .map(|j| {
                            let z = sig(xk[j] + bi[j] + hu[j] + br[j]);
                            let r = sig(xk[u + j] + bi[u + j] + hu[u + j] + br[u + j]);
                            let hh = (xk[2 * u + j]
                                + bi[2 * u + j]
                                + r * (hu[2 * u + j] + br[2 * u + j]))
                                .tanh();
                            z * h[j] + (1.0 - z) * hh
                        })
                        .collect();
                    (nh, c.clone())
                }
                Kind::GruBefore => {
                    let hu = vecmat(&h, rk, 3 * u, 0, 2 * u);
                    let z: Vec<f64> = (0..u).map(|j| sig(xk[j] + bias[j] + hu[j])).collect();
                    let r: Vec<f64> = (0..u)
                        .map(|j| sig(xk[u + j] + bias[u + j] + hu[u + j]))
                        .collect();
                    let rh: Vec<f64> = (0..u).map(|j| r[j] * h[j]).collect();
                    let rhu = vecmat(&rh, rk, 3 * u, 2 * u, u);
                    let nh = (0..u)
                        .map(|j| {
                            let hh = (xk[2 * u + j] + bias[2 * u + j] + rhu[j]).tanh();
                            z[j] * h[j] + (1.0 - z[j]) * hh
                        })
                        .collect();
                    (nh, c.clone())
                }
            };
            if keep {
                h = nh;
                c = nc;
                out = h.clone();
            }
            seq[(n * t + s) * u..(n * t + s + 1) * u].copy_from_slice(&out);
        }
        finals[0][n * u..(n + 1) * u].copy_from_slice(&h);
        if kind == Kind::Lstm {
            finals[1][n * u..(n + 1) * u].copy_from_slice(&c);
        }
    }
    (seq, finals)
}

/// Every cell against the plain-loop reference, in f64, for several sequence lengths, forwards
/// and backwards, with and without masks.
#[test]
fn recurrent_layers_match_step_by_step_reference() {
    let (b, d, u) = (3, 2, 3);
    let tt = |v: &[f64], s: &[usize]| Tensor::from_f64_slice(DType::F64, v, s).unwrap();
    for kind in [Kind::Simple, Kind::Lstm, Kind::GruAfter, Kind::GruBefore] {
        let g = match kind {
            Kind::Simple => 1,
            Kind::Lstm => 4,
            _ => 3,
        };
        let bias_shape: Vec<usize> = if kind == Kind::GruAfter {
            vec![2, g * u]
        } else {
            vec![g * u]
        };
        let shapes = [vec![d, g * u], vec![u, g * u], bias_shape];
        let w: Vec<Vec<f64>> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                ferroflow_core::testing::test_values(s.iter().product(), 40 + i as u64, -0.7, 0.7)
            })
            .collect();
        let wt: Vec<Tensor> = w.iter().zip(&shapes).map(|(v, s)| tt(v, s)).collect();
        for t in [1usize, 3, 6] {
            let x = ferroflow_core::testing::test_values(b * t * d, t as u64, -1.5, 1.5);
            let mask: Vec<bool> = (0..b * t).map(|i| (i * 5 + t) % 3 != 0).collect();
            for (masked, backwards) in [(false, false), (true, false), (false, true), (true, true)]
            {
                let m = masked.then_some(mask.as_slice());
                let (want_seq, want_states) = reference(kind, &x, [b, t, d], u, &w, m, backwards);
                let rnn: RNN = match kind {
                    Kind::Simple => SimpleRNN::new(u).into(),
                    Kind::Lstm => LSTM::new(u).into(),
                    Kind::GruAfter => GRU::new(u).into(),
                    Kind::GruBefore => GRU::new(u).reset_after(false).into(),
                };
                let mut rnn = rnn
                    .return_sequences(true)
                    .return_state(true)
                    .go_backwards(backwards);
                let mt = masked.then(|| Tensor::from_vec(mask.clone(), &[b, t]).unwrap());
                let out = rnn
                    .call_with_weights(&wt, &[tt(&x, &[b, t, d])], mt.as_ref(), false)
                    .unwrap();
                let what = format!("{kind:?} t={t} masked={masked} backwards={backwards}");
                let got = out[0].to_f64_vec();
                assert_eq!(got.len(), want_seq.len(), "{what}");
                for (a, e) in got.iter().zip(&want_seq) {
                    assert!((a - e).abs() < 1e-12, "{what}: {got:?} vs {want_seq:?}");
                }
                for (s, want) in out[1..].iter().zip(&want_states) {
                    for (a, e) in s.to_f64_vec().iter().zip(want) {
                        assert!((a - e).abs() < 1e-12, "{what} states");
                    }
                }
            }
        }
    }
}

#[test]
fn cells_step_on_their_own() {
    // GRUCell one step against GRU over a one-step sequence with the same weights.
    let mut cell = GRUCell::new(3);
    let x = fill(&[2, 4], 1, DType::F32);
    let h0 = fill(&[2, 3], 2, DType::F32);
    let (y, st) = cell.call_cell(&x, std::slice::from_ref(&h0)).unwrap();
    assert_eq!(cell.base().weights[0].variable.name(), "gru_cell/kernel");
    let ws: Vec<Tensor> = cell
        .base()
        .weights
        .iter()
        .map(|w| w.variable.value())
        .collect();
    let mut gru: RNN = GRU::new(3).into();
    let want = gru
        .call_with_weights(
            &ws,
            &[ops::expand_dims(&x, 1).unwrap(), h0.clone()],
            None,
            false,
        )
        .unwrap();
    assert_eq!(y.to_f64_vec(), want[0].to_f64_vec());
    assert_eq!(st[0].to_f64_vec(), want[0].to_f64_vec());
    // Wrong state shapes are errors naming the cell.
    let e = cell.call_cell(&x, &[]).unwrap_err().to_string();
    assert!(e.contains("state"), "{e}");
    let mut s = SimpleRNNCell::new(2);
    let e = s
        .call_cell(&ops::zeros(&[2, 3, 4], DType::F32), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("[batch, features]"), "{e}");
}

#[test]
fn initial_state_through_the_functional_api() {
    let x = Input::new(&[4, 3]);
    let h = Input::new(&[3]);
    let c = Input::new(&[3]);
    let lstm = LayerHandle::new(LSTM::new(3));
    let y = lstm.apply(vec![x.clone(), h.clone(), c.clone()]).unwrap();
    assert_eq!(y.shape(), &vec![None, Some(3)]);
    let model = Model::new(vec![x, h, c], y).unwrap();
    set_fill(&lstm, 0);
    let out = model
        .call(
            &[
                x_in(),
                fill(&[2, 3], 5, DType::F32),
                fill(&[2, 3], 6, DType::F32),
            ],
            false,
        )
        .unwrap();
    close(&out[0], r::LSTM_INIT_0, TOL);
}
