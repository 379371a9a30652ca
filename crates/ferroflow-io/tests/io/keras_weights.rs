//! Keras 3 `.weights.h5` interoperability. Fixture files were written by real Keras 3.15
//! (tests/fixtures/make_fixtures.py); the expected predictions below are what that script
//! printed (Keras's own `predict`), pasted.

use ferroflow_core::{DType, Tensor};
use ferroflow_io::hdf5::File;
use ferroflow_io::{load_weights, save_weights};
use ferroflow_keras::layers::{
    BatchNormalization, Concatenate, Conv2D, Dense, Dropout, Flatten, Input, Layer, MaxPooling2D,
};
use ferroflow_keras::optimizers::Adam;
use ferroflow_keras::{Model, Sequential};

use crate::common::{assert_close, fixture, inputs, python, run_python, tmp};

const MLP_PRED: [f64; 12] = [
    5.347272754e-01,
    2.389458418e-01,
    2.263268977e-01,
    2.710449100e-01,
    2.589021921e-01,
    4.700528979e-01,
    5.237888098e-01,
    2.301649004e-01,
    2.460463047e-01,
    2.286918014e-01,
    2.655311227e-01,
    5.057770014e-01,
];
const CNN_PRED: [f64; 4] = [
    3.183142841e-01,
    7.112781983e-03,
    3.805318773e-01,
    2.047757059e-01,
];
const TWO_PRED: [f64; 6] = [
    -6.249057129e-02,
    -1.075644374e+00,
    -2.902150452e-01,
    -1.472976089e+00,
    -1.311469436e+00,
    -3.433124125e-01,
];
const KERAS2_PRED: [f64; 6] = [
    1.110965945e-02,
    2.940734662e-02,
    4.372489452e-02,
    -1.941690296e-01,
    -1.184620857e-01,
    -2.672192827e-02,
];

fn mlp() -> Sequential {
    let mut m = Sequential::new().named("mlp");
    m.add(Input::new(&[8])).unwrap();
    m.add(Dense::new(16).activation("relu")).unwrap();
    m.add(Dropout::new(0.3)).unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(Dense::new(3).activation("softmax")).unwrap();
    m
}

fn cnn() -> Sequential {
    let mut m = Sequential::new().named("cnn");
    m.add(Input::new(&[8, 8, 2])).unwrap();
    m.add(
        Conv2D::new(4, 3)
            .strides(2)
            .padding("same")
            .activation("relu"),
    )
    .unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(Conv2D::new(3, 2)).unwrap();
    m.add(MaxPooling2D::new(2)).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(2)).unwrap();
    m
}

fn two_input() -> Model {
    let a = Input::named(&[6], "a_in");
    let b = Input::named(&[4], "b_in");
    let xa = Dense::new(5)
        .activation("tanh")
        .named("dense_a")
        .apply(&a)
        .unwrap();
    let xb = Dense::new(5)
        .activation("relu")
        .named("dense_b")
        .apply(&b)
        .unwrap();
    let m = Concatenate::new()
        .named("concat")
        .apply([&xa, &xb])
        .unwrap();
    let out = Dense::new(2).named("out").apply(&m).unwrap();
    Model::new([&a, &b], [&out]).unwrap().named("two_input")
}

fn two_inputs(n: usize) -> Vec<Tensor> {
    let b = inputs(&[n, 4])
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|x| x * 2.0)
        .collect();
    vec![inputs(&[n, 6]), Tensor::from_vec(b, &[n, 4]).unwrap()]
}

fn pred(m: &Model, x: impl ferroflow_keras::models::IntoTensors) -> Vec<f32> {
    m.predict_on_batch(x)
        .unwrap()
        .remove(0)
        .to_vec::<f32>()
        .unwrap()
}

#[test]
fn keras_mlp_weights_give_keras_predictions() {
    let mut m = mlp();
    load_weights(&mut m, fixture("mlp.weights.h5")).unwrap();
    assert_close(&pred(&m, inputs(&[4, 8])), &MLP_PRED, 1e-6, "mlp");
}

#[test]
fn keras_cnn_weights_give_keras_predictions() {
    let mut m = cnn();
    load_weights(&mut m, fixture("cnn.weights.h5")).unwrap();
    assert_close(&pred(&m, inputs(&[2, 8, 8, 2])), &CNN_PRED, 1e-6, "cnn");
}

#[test]
fn keras_functional_two_input_weights_give_keras_predictions() {
    let mut m = two_input();
    load_weights(&mut m, fixture("two_input.weights.h5")).unwrap();
    assert_close(&pred(&m, two_inputs(3)), &TWO_PRED, 1e-6, "two_input");
}

#[test]
fn legacy_keras2_weights_load_by_position() {
    let mut m = Sequential::new();
    m.add(Input::new(&[8])).unwrap();
    m.add(Dense::new(16).activation("relu")).unwrap();
    m.add(Dropout::new(0.3)).unwrap();
    m.add(Dense::new(3)).unwrap();
    load_weights(&mut m, fixture("keras2_mlp.h5")).unwrap();
    assert_close(&pred(&m, inputs(&[2, 8])), &KERAS2_PRED, 1e-6, "keras2");
    // A legacy file with a different layer count is an error naming both sides.
    let mut other = Sequential::new();
    other.add(Input::new(&[8])).unwrap();
    other.add(Dense::new(3)).unwrap();
    let err = load_weights(&mut other, fixture("keras2_mlp.h5"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layer count mismatch") && err.contains("dense_1"),
        "{err}"
    );
}

#[test]
fn keras3_legacy_full_model_h5_weights_load() {
    // make_legacy_fixture.py: the same MLP weights saved by Keras 3's `model.save("x.h5")`
    // (model_weights/<layer>/mlp/<layer>/kernel ...): Keras's predictions are MLP_PRED.
    let mut m = mlp();
    load_weights(&mut m, fixture("mlp_legacy.h5")).unwrap();
    assert_close(&pred(&m, inputs(&[4, 8])), &MLP_PRED, 1e-6, "mlp_legacy");
    let f = File::open(fixture("mlp_legacy.h5")).unwrap();
    assert!(f
        .root()
        .unwrap()
        .attr("model_config")
        .unwrap()
        .as_string()
        .unwrap()
        .contains("\"Sequential\""));
}

#[test]
fn optimizer_state_loads_into_a_built_optimizer() {
    let mut m = mlp();
    m.compile(Adam::new(), "mse", ()).unwrap();
    // One step creates the optimizer's slots (Keras builds them in compile).
    let x = inputs(&[4, 8]);
    let y = inputs(&[4, 3]);
    m.fit(&x, &y)
        .epochs(1)
        .batch_size(4)
        .verbose(0)
        .run()
        .unwrap();
    load_weights(&mut m, fixture("mlp.weights.h5")).unwrap();
    let f = File::open(fixture("mlp.weights.h5")).unwrap();
    let opt = m.optimizer().unwrap();
    assert_eq!(opt.iterations(), 16);
    assert!((opt.learning_rate() - 0.001).abs() < 1e-9);
    let slots = opt.variables();
    assert_eq!(slots.len(), 12);
    for (i, s) in slots.iter().enumerate() {
        let want = f
            .dataset(&format!("optimizer/vars/{}", i + 2))
            .unwrap()
            .read()
            .unwrap();
        assert_eq!(
            s.value().to_vec::<f32>().unwrap(),
            want.to_vec::<f32>().unwrap(),
            "slot {i}"
        );
    }
}

#[test]
fn save_writes_keras_layout() {
    let m = two_input();
    let path = tmp("two.weights.h5");
    save_weights(&m, &path).unwrap();
    let f = File::open(&path).unwrap();
    assert_eq!(
        f.group("layers").unwrap().member_names(),
        vec![
            "concatenate",
            "dense",
            "dense_1",
            "dense_2",
            "input_layer",
            "input_layer_1"
        ]
    );
    assert_eq!(
        f.group("layers/dense_1/vars")
            .unwrap()
            .attr("name")
            .unwrap()
            .as_string()
            .unwrap(),
        "dense_b"
    );
    assert_eq!(
        f.group("layers/input_layer/vars")
            .unwrap()
            .attr("name")
            .unwrap()
            .as_string()
            .unwrap(),
        "a_in"
    );
    assert_eq!(
        f.group("vars")
            .unwrap()
            .attr("name")
            .unwrap()
            .as_string()
            .unwrap(),
        "two_input"
    );
    assert_eq!(
        f.dataset("layers/dense_2/vars/0").unwrap().shape(),
        &[10, 2]
    );
    assert!(
        !f.root().unwrap().contains("optimizer"),
        "not compiled: no optimizer group"
    );
}

#[test]
fn save_load_roundtrip_and_byte_stable() {
    let m = cnn();
    let path = tmp("cnn.weights.h5");
    save_weights(&m, &path).unwrap();
    let first = std::fs::read(&path).unwrap();
    let want = m.get_weights();
    let mut other = cnn();
    load_weights(&mut other, &path).unwrap();
    for (a, b) in other.get_weights().iter().zip(&want) {
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    }
    // Load back into the same model and save again: the same bytes.
    let mut m = m;
    load_weights(&mut m, &path).unwrap();
    save_weights(&m, &path).unwrap();
    assert!(
        std::fs::read(&path).unwrap() == first,
        "save → load → save is byte-stable"
    );
}

#[test]
fn load_errors_name_layer_weight_and_shapes() {
    let mut wrong = Sequential::new().named("mlp");
    wrong.add(Input::new(&[8])).unwrap();
    wrong
        .add(Dense::new(17).activation("relu").named("hidden"))
        .unwrap();
    wrong.add(Dropout::new(0.3)).unwrap();
    wrong.add(BatchNormalization::new()).unwrap();
    wrong.add(Dense::new(3)).unwrap();
    let before = wrong.get_weights();
    let err = load_weights(&mut wrong, fixture("mlp.weights.h5"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hidden")
            && err.contains("kernel")
            && err.contains("[8, 17]")
            && err.contains("[8, 16]"),
        "{err}"
    );
    // Nothing was assigned.
    for (a, b) in wrong.get_weights().iter().zip(&before) {
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    }
    // A layer the file does not have.
    let mut extra = mlp();
    extra.add(Dense::new(2)).unwrap();
    let err = load_weights(&mut extra, fixture("mlp.weights.h5"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dense_2") && err.contains("layers/dense_2/vars"),
        "{err}"
    );
    // Keras's suffix rule, missing and non-HDF5 files.
    let err = save_weights(&mlp(), tmp("m.h5")).unwrap_err().to_string();
    assert!(err.contains(".weights.h5"), "{err}");
    let err = load_weights(&mut mlp(), fixture("missing.weights.h5"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.weights.h5"), "{err}");
    let err = load_weights(&mut mlp(), fixture("make_fixtures.py"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an HDF5 file"), "{err}");
}

/// Deterministic, non-trivial weights (positive where BatchNormalization needs a variance).
fn set_formula_weights(m: &Model) {
    for (i, w) in m.weights().iter().enumerate() {
        let n: usize = w.shape().iter().product();
        let v: Vec<f64> = (0..n)
            .map(|j| {
                let s = (0.37 * j as f64 + i as f64).sin() * 0.5;
                if w.name().ends_with("moving_variance") {
                    0.5 + s * s
                } else {
                    s
                }
            })
            .collect();
        w.assign(&Tensor::from_f64_slice(DType::F32, &v, &w.shape()).unwrap())
            .unwrap();
    }
}

#[test]
fn keras_loads_our_weights_with_same_predictions() {
    let Some(py) = python() else {
        eprintln!("skipped: no python with keras (set FERROFLOW_PYTHON)");
        return;
    };
    let mut mlp_m = mlp();
    set_formula_weights(&mlp_m);
    mlp_m.compile(Adam::new(), "mse", ()).unwrap();
    mlp_m
        .fit(inputs(&[8, 8]), inputs(&[8, 3]))
        .epochs(1)
        .batch_size(4)
        .verbose(0)
        .run()
        .unwrap();
    let cnn_m = cnn();
    set_formula_weights(&cnn_m);
    let two = two_input();
    set_formula_weights(&two);
    let dir = tmp("x").parent().unwrap().to_path_buf();
    let (p1, p2, p3) = (
        dir.join("mlp.weights.h5"),
        dir.join("cnn.weights.h5"),
        dir.join("two.weights.h5"),
    );
    save_weights(&mlp_m, &p1).unwrap();
    save_weights(&cnn_m, &p2).unwrap();
    save_weights(&two, &p3).unwrap();
    let script = format!(
        r#"
import os, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras
def inputs(shape):
    n = int(np.prod(shape))
    return np.sin(0.37 * np.arange(n, dtype=np.float64) + 0.1).astype(np.float32).reshape(shape)
mlp = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.3),
    keras.layers.BatchNormalization(), keras.layers.Dense(3, activation="softmax")], name="mlp")
mlp.compile(optimizer="adam", loss="mse")
mlp.optimizer.build(mlp.trainable_variables)
mlp.load_weights({p1:?})
cnn = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
    keras.layers.BatchNormalization(), keras.layers.Conv2D(3, 2), keras.layers.MaxPooling2D(), keras.layers.Flatten(),
    keras.layers.Dense(2)], name="cnn")
cnn.load_weights({p2:?})
a = keras.Input((6,), name="a_in"); b = keras.Input((4,), name="b_in")
xa = keras.layers.Dense(5, activation="tanh", name="dense_a")(a)
xb = keras.layers.Dense(5, activation="relu", name="dense_b")(b)
out = keras.layers.Dense(2, name="out")(keras.layers.Concatenate(name="concat")([xa, xb]))
two = keras.Model([a, b], out, name="two_input")
two.load_weights({p3:?})
print(json.dumps({{
    "mlp": mlp.predict(inputs((4, 8)), verbose=0).ravel().tolist(),
    "iterations": int(mlp.optimizer.iterations.numpy()),
    "m0": mlp.optimizer.variables[2].numpy().ravel()[:5].tolist(),
    "cnn": cnn.predict(inputs((2, 8, 8, 2)), verbose=0).ravel().tolist(),
    "two": two.predict([inputs((3, 6)), inputs((3, 4)) * 2.0], verbose=0).ravel().tolist(),
}}))
"#,
        p1 = p1.display().to_string(),
        p2 = p2.display().to_string(),
        p3 = p3.display().to_string()
    );
    let out = run_python(&py, &script);
    let line = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let floats = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    assert_close(
        &pred(&mlp_m, inputs(&[4, 8])),
        &floats("mlp"),
        1e-5,
        "keras mlp",
    );
    assert_close(
        &pred(&cnn_m, inputs(&[2, 8, 8, 2])),
        &floats("cnn"),
        1e-5,
        "keras cnn",
    );
    assert_close(
        &pred(&two, two_inputs(3)),
        &floats("two"),
        1e-5,
        "keras two_input",
    );
    assert_eq!(v["iterations"], 2);
    let m0 = mlp_m.optimizer().unwrap().variables()[0]
        .value()
        .to_vec::<f32>()
        .unwrap();
    assert_close(&m0[..5], &floats("m0"), 1e-12, "adam m of dense/kernel");
}

#[test]
fn legacy_split_name_attributes_are_joined() {
    // Keras splits attribute lists above 64 KiB into `layer_names0`, `layer_names1`, ...; an
    // empty `weight_names` is an empty float64 array. Built here with our writer.
    use ferroflow_io::hdf5::AttrValue;
    let path = tmp("split.h5");
    let (k, b, k2) = (inputs(&[8, 3]), inputs(&[3]), inputs(&[3, 2]));
    let mut w = File::create(&path);
    let root = w.root();
    root.set_attr("layer_names0", AttrValue::FixedStrings(vec!["d".into()]));
    root.set_attr(
        "layer_names1",
        AttrValue::Strings(vec!["drop".into(), "d2".into()]),
    );
    let empty = Tensor::from_vec(Vec::<f64>::new(), &[0]).unwrap();
    root.group("drop").unwrap().set_attr("weight_names", empty);
    let names = |v: &[&str]| AttrValue::Strings(v.iter().map(|s| s.to_string()).collect());
    root.group("d")
        .unwrap()
        .set_attr("weight_names", names(&["d/kernel:0", "d/bias:0"]));
    root.create_dataset("d/d/kernel:0", &k).unwrap();
    root.create_dataset("d/d/bias:0", &b).unwrap();
    root.group("d2")
        .unwrap()
        .set_attr("weight_names", names(&["d2/kernel:0"]));
    root.create_dataset("d2/d2/kernel:0", &k2).unwrap();
    w.close().unwrap();
    let model = |bias: bool| {
        let mut m = Sequential::new();
        m.add(Input::new(&[8])).unwrap();
        m.add(Dense::new(3)).unwrap();
        m.add(Dropout::new(0.5)).unwrap();
        m.add(Dense::new(2).use_bias(bias)).unwrap();
        m
    };
    let mut m = model(false);
    load_weights(&mut m, &path).unwrap();
    let got = m.get_weights();
    for (g, want) in got.iter().zip([&k, &b, &k2]) {
        assert_eq!(g.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    }
    let mut with_bias = model(true);
    let err = load_weights(&mut with_bias, &path).unwrap_err().to_string();
    assert!(
        err.contains("has 2 weights") && err.contains("\"d2\""),
        "{err}"
    );
}
