//! MultiHeadAttention in Keras 3 files: Keras nests its variables in four EinsumDense
//! sublayers (`layers/multi_head_attention/{query,key,value,output}_dense/vars`), calls it with
//! positional `(query, value)` tensors and builds it from `shapes_dict`. A model saved by real
//! Keras (tests/fixtures/make_mha_fixture.py) loads here with Keras's predictions, and one saved
//! here loads in real Keras with ours.

use ferroflow_core::Tensor;
use ferroflow_data::io::{read_npy, write_npy};
use ferroflow_io::{load_model, load_weights, save_model, save_weights};
use ferroflow_keras::layers::{Dense, GlobalAveragePooling1D, Layer, MultiHeadAttention};
use ferroflow_keras::{Input, Model};

use crate::common::{assert_close, fixture, python, run_python, tmp};

fn xs() -> Vec<Tensor> {
    vec![
        read_npy(fixture("mha.q.npy")).unwrap(),
        read_npy(fixture("mha.v.npy")).unwrap(),
    ]
}

fn want() -> Vec<f64> {
    read_npy(fixture("mha.pred.npy")).unwrap().to_f64_vec()
}

fn predict(m: &mut Model) -> Vec<f32> {
    m.predict(xs())
        .verbose(0)
        .run()
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
}

#[test]
fn keras_mha_model_loads_with_keras_predictions() {
    let mut m = load_model(fixture("mha.keras")).unwrap();
    assert_eq!(
        m.count_params(),
        // query (6, 2, 3) + (2, 3), key and value (5, 2, 3) + (2, 3), output (2, 3, 6) + (6,),
        // Dense (6, 2) + (2,): 170, as Keras counts.
        (36 + 6) + 2 * (30 + 6) + (36 + 6) + (12 + 2)
    );
    assert_close(&predict(&mut m), &want(), 1e-5, "mha.keras");
    // Adam's state came along: iterations = 2 epochs x 2 steps.
    assert_eq!(m.compiled().unwrap().optimizer.iterations(), 4);
}

/// The same architecture built here (layer names differ from Keras's: weights match by
/// structure, as in Keras).
fn built_here() -> Model {
    let q = Input::new(&[4, 6]);
    let v = Input::new(&[3, 5]);
    let att = MultiHeadAttention::new(2, 3)
        .apply(vec![q.clone(), v.clone()])
        .unwrap();
    let pooled = GlobalAveragePooling1D::new().apply(&att).unwrap();
    let out = Dense::new(2).apply(&pooled).unwrap();
    Model::new(vec![q, v], out).unwrap()
}

#[test]
fn keras_mha_weights_h5_loads_into_a_model_built_here() {
    let mut m = built_here();
    load_weights(&mut m, fixture("mha.weights.h5")).unwrap();
    assert_close(&predict(&mut m), &want(), 1e-5, "mha.weights.h5");
    // Saved again, it reads back the same.
    let p = tmp("mha_again.weights.h5");
    save_weights(&m, &p).unwrap();
    let mut m2 = built_here();
    load_weights(&mut m2, &p).unwrap();
    assert_eq!(predict(&mut m2), predict(&mut m));
}

#[test]
fn mha_model_saved_here_loads_in_keras() {
    let mut m = load_model(fixture("mha.keras")).unwrap();
    let p = tmp("mha_ours.keras");
    save_model(&m, &p).unwrap();
    // Our own loader first.
    let mut back = load_model(&p).unwrap();
    assert_eq!(predict(&mut back), predict(&mut m));
    let Some(py) = python() else {
        eprintln!("skipped the Keras check: no python with keras");
        return;
    };
    let q = p.with_file_name("q.npy");
    let v = p.with_file_name("v.npy");
    let xs = xs();
    write_npy(&q, &xs[0]).unwrap();
    write_npy(&v, &xs[1]).unwrap();
    let out = run_python(
        &py,
        &format!(
            "import numpy as np, keras\nm = keras.models.load_model({:?})\np = m.predict([np.load({:?}), np.load({:?})], verbose=0)\nprint(' '.join(repr(float(x)) for x in p.reshape(-1)))",
            p.to_str().unwrap(),
            q.to_str().unwrap(),
            v.to_str().unwrap()
        ),
    );
    let keras: Vec<f64> = out
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_close(&predict(&mut m), &keras, 1e-5, "Keras on our mha.keras");
}
