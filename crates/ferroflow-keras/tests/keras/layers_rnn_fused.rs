//! The fused LSTM path (`ops::lstm_sequence`) against the step-by-step loop of the same layer
//! (`use_fused(false)`): outputs within 1e-6 and gradients within 1e-5 in float32, over several
//! lengths, with and without masks, and through every RNN option (return_sequences,
//! return_state, go_backwards, zero_output_for_mask, initial states, input dropout, stateful).

use ferroflow_core::testing::{test_tensor, test_values};
use ferroflow_core::{ops, DType, GradientTape, Tensor, Watchable};
use ferroflow_keras::layers::*;

fn f32t(shape: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    ops::cast(&test_tensor(shape, seed, lo, hi), DType::F32).unwrap()
}

/// A mask with some rows starting masked, some fully real, and holes.
fn mask(b: usize, t: usize, seed: u64) -> Tensor {
    let v = test_values(b * t, seed, 0.0, 1.0);
    let m: Vec<bool> = (0..b * t)
        .map(|k| {
            let (row, s) = (k / t, k % t);
            match row % 3 {
                0 => true,
                1 => s > 0 && v[k] > 0.3,
                _ => v[k] > 0.5,
            }
        })
        .collect();
    Tensor::from_vec(m, &[b, t]).unwrap()
}

#[derive(Clone, Copy, Debug)]
struct Case {
    t: usize,
    masked: bool,
    seqs: bool,
    backwards: bool,
    zero_out: bool,
    init: bool,
    dropout: bool,
}

/// Runs an LSTM (fused or not) on fixed weights and returns its outputs and the gradients of
/// a weighted sum of them with respect to x, the weights and the initial states.
fn run(c: Case, fused: bool) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let (b, d, u) = (7, 3, 5);
    let x = f32t(&[b, c.t, d], 1, -1.0, 1.0);
    let w = vec![
        f32t(&[d, 4 * u], 2, -0.7, 0.7),
        f32t(&[u, 4 * u], 3, -0.7, 0.7),
        f32t(&[4 * u], 4, -0.5, 0.5),
    ];
    let h0 = f32t(&[b, u], 5, -0.5, 0.5);
    let c0 = f32t(&[b, u], 6, -0.5, 0.5);
    let m = c.masked.then(|| mask(b, c.t, 7 + c.t as u64));
    let mut layer = LSTM::new(u)
        .return_sequences(c.seqs)
        .return_state(true)
        .go_backwards(c.backwards)
        .zero_output_for_mask(c.zero_out)
        .dropout(if c.dropout { 0.3 } else { 0.0 })
        .seed(11)
        .use_fused(fused);
    let tape = GradientTape::new();
    let mut watched = vec![x.clone()];
    watched.extend(w.iter().cloned());
    let mut inputs = vec![x.clone()];
    if c.init {
        inputs.push(h0.clone());
        inputs.push(c0.clone());
        watched.push(h0.clone());
        watched.push(c0.clone());
    }
    for v in &watched {
        tape.watch(v);
    }
    let out = layer
        .rnn_mut()
        .call_with_weights(&w, &inputs, m.as_ref(), c.dropout)
        .unwrap();
    let mut loss = Tensor::scalar(0.0f32);
    for (k, o) in out.iter().enumerate() {
        let wk = f32t(o.shape(), 30 + k as u64, -1.0, 1.0);
        let s = ops::reduce_sum(&ops::mul(o, &wk).unwrap(), ops::Axes::All, false).unwrap();
        loss = ops::add(&loss, &s).unwrap();
    }
    let refs: Vec<&dyn Watchable> = watched.iter().map(|t| t as &dyn Watchable).collect();
    let grads = tape.gradient(&loss, &refs).unwrap();
    (
        out.iter().map(|o| o.to_vec::<f32>().unwrap()).collect(),
        grads
            .into_iter()
            .map(|g| g.expect("gradient").to_vec::<f32>().unwrap())
            .collect(),
    )
}

fn assert_close(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: count");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}[{k}]: length");
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= tol,
                "{what}[{k}][{i}]: fused {a}, loop {b}"
            );
        }
    }
}

fn check(c: Case) {
    let (fo, fg) = run(c, true);
    let (lo, lg) = run(c, false);
    assert_close(&format!("outputs {c:?}"), &fo, &lo, 1e-6);
    assert_close(&format!("gradients {c:?}"), &fg, &lg, 1e-5);
}

#[test]
fn fused_lstm_equals_step_loop_over_lengths_and_masks() {
    for t in [1, 2, 6, 17] {
        for masked in [false, true] {
            for seqs in [false, true] {
                check(Case {
                    t,
                    masked,
                    seqs,
                    backwards: false,
                    zero_out: false,
                    init: false,
                    dropout: false,
                });
            }
        }
    }
}

#[test]
fn fused_lstm_equals_step_loop_with_every_option() {
    for (backwards, zero_out, init, dropout) in [
        (true, false, false, false),
        (false, true, false, false),
        (true, true, true, false),
        (false, false, true, false),
        (false, false, false, true),
        (true, false, true, true),
    ] {
        for masked in [false, true] {
            for seqs in [false, true] {
                check(Case {
                    t: 5,
                    masked,
                    seqs,
                    backwards,
                    zero_out,
                    init,
                    dropout,
                });
            }
        }
    }
}

#[test]
fn fused_stateful_lstm_equals_step_loop() {
    let run = |fused: bool| {
        let h = LayerHandle::new(LSTM::new(4).stateful(true).use_fused(fused).seed(3));
        let x1 = f32t(&[3, 4, 2], 1, -1.0, 1.0);
        let x2 = f32t(&[3, 5, 2], 2, -1.0, 1.0);
        h.build(&[vec![Some(3), Some(4), Some(2)]]).unwrap();
        // Same weights in both runs: set them.
        let ws: Vec<Tensor> = h
            .lock()
            .weights()
            .iter()
            .enumerate()
            .map(|(k, w)| f32t(&w.shape(), 40 + k as u64, -0.6, 0.6))
            .collect();
        h.lock().set_weights(&ws).unwrap();
        let a = h.call(&x1, false).unwrap().to_vec::<f32>().unwrap();
        let b = h.call(&x2, false).unwrap().to_vec::<f32>().unwrap();
        vec![a, b]
    };
    assert_close("stateful", &run(true), &run(false), 1e-6);
}

#[test]
fn non_default_activations_and_recurrent_dropout_use_the_loop() {
    // relu activation: the fused op does not apply; results must still equal the loop's.
    let x = f32t(&[2, 3, 2], 1, -1.0, 1.0);
    let run = |l: LSTM| {
        let h = LayerHandle::new(l);
        h.build(&[vec![None, Some(3), Some(2)]]).unwrap();
        let ws: Vec<Tensor> = h
            .lock()
            .weights()
            .iter()
            .enumerate()
            .map(|(k, w)| f32t(&w.shape(), 50 + k as u64, -0.6, 0.6))
            .collect();
        h.lock().set_weights(&ws).unwrap();
        h.call(&x, true).unwrap().to_vec::<f32>().unwrap()
    };
    let a = run(LSTM::new(3).activation("relu"));
    let b = run(LSTM::new(3).activation("relu").use_fused(false));
    assert_eq!(a, b);
    let a = run(LSTM::new(3).recurrent_dropout(0.4).seed(2));
    let b = run(LSTM::new(3).recurrent_dropout(0.4).seed(2).use_fused(false));
    assert_eq!(a, b);
}
