//! Writing legacy full-model `.h5` files (`model.save("m.h5")`): the layout Keras 3.15's
//! `save_model_to_hdf5` writes, a round trip here, and (when python with Keras is present) real
//! Keras loading our file with the same predictions and compile state.

use ferroflow_core::{ops, Tensor};
use ferroflow_data::io::write_npy;
use ferroflow_io::hdf5::File;
use ferroflow_io::{load_model, save_model};

use crate::common::{assert_close, fixture, python, run_python, tmp};
use crate::keras_format::{cases, predict};

/// One training step towards the model's own predictions (their argmax for a sparse loss).
fn train_one_step(m: &mut ferroflow_keras::Model, x: &[Tensor]) {
    let y = m.predict_on_batch(x.to_vec()).unwrap();
    if m.train_on_batch(x.to_vec(), y.clone(), None).is_err() {
        let ids: Vec<Tensor> = y.iter().map(|t| ops::argmax(t, -1).unwrap()).collect();
        m.train_on_batch(x.to_vec(), ids, None).unwrap();
    }
}

/// Every fixture model (Sequential, CNN, two-input functional, LSTM), after one training step
/// so that the optimizer has state, saved as `.h5` and loaded back: the same weights bit for
/// bit, the same predictions, the same optimizer, iteration count and slots.
#[test]
fn legacy_h5_round_trips_every_fixture_model() {
    for (name, x, _, class) in cases() {
        let mut m = load_model(fixture(name)).unwrap();
        train_one_step(&mut m, &x);
        let p = tmp("m.h5");
        save_model(&m, &p).unwrap();
        let mut back = load_model(&p).unwrap();
        let (w0, w1) = (m.get_weights(), back.get_weights());
        assert_eq!(w0.len(), w1.len(), "{name}");
        for (a, b) in w0.iter().zip(&w1) {
            assert_eq!(a.shape(), b.shape(), "{name}");
            assert_eq!(a.to_f64_vec(), b.to_f64_vec(), "{name}");
        }
        assert_eq!(predict(&m, x.clone()), predict(&back, x), "{name}");
        let (o0, o1) = (m.optimizer().unwrap(), back.optimizer().unwrap());
        assert_eq!(o1.name(), class, "{name}");
        assert_eq!(o1.iterations(), o0.iterations(), "{name}");
        assert!(o1.iterations() >= 1, "{name}");
        let (s0, s1) = (o0.variables(), o1.variables());
        assert_eq!(s0.len(), s1.len(), "{name}");
        for (a, b) in s0.iter().zip(&s1) {
            assert_eq!(
                a.value().to_f64_vec(),
                b.value().to_f64_vec(),
                "{name}: {}",
                a.name()
            );
        }
    }
}

/// The groups and attributes are where Keras 3.15 puts them (tests/fixtures/mlp_legacy.h5 was
/// written by it): `layer_names` in model order, `weight_names` per layer with the datasets at
/// those paths, an empty list stored as an empty float64 array, `top_level_model_weights`, and
/// the optimizer's `iteration` / `learning_rate` / slots.
#[test]
fn legacy_h5_layout_is_keras_s() {
    let mut m = load_model(fixture("mlp.keras")).unwrap();
    let x = vec![crate::common::inputs(&[2, 6])];
    train_one_step(&mut m, &x);
    let p = tmp("mlp.h5");
    save_model(&m, &p).unwrap();
    let f = File::open(&p).unwrap();
    let root = f.root().unwrap();
    assert_eq!(
        root.attr("backend").unwrap().as_string().unwrap(),
        "tensorflow"
    );
    assert_eq!(
        root.attr("keras_version").unwrap().as_string().unwrap(),
        "3.15.1"
    );
    let config: serde_json::Value =
        serde_json::from_str(&root.attr("model_config").unwrap().as_string().unwrap()).unwrap();
    assert_eq!(config["class_name"], "Sequential");
    assert!(config.get("module").is_none() && config.get("build_config").is_none());
    for l in config["config"]["layers"].as_array().unwrap() {
        assert!(
            l.get("module").is_none() && l.get("registered_name").is_none(),
            "{l}"
        );
    }
    let tc: serde_json::Value =
        serde_json::from_str(&root.attr("training_config").unwrap().as_string().unwrap()).unwrap();
    assert_eq!(tc["optimizer_config"]["class_name"], "Adam");
    assert!(
        tc.get("optimizer").is_none() && tc.get("loss").is_some(),
        "{tc}"
    );

    let mw = f.group("/model_weights").unwrap();
    let layers = mw.attr("layer_names").unwrap().as_strings().unwrap();
    let names: Vec<String> = m.layers().iter().map(|l| l.name()).collect();
    assert_eq!(layers, names);
    let mut with_weights = 0;
    for l in &m.layers() {
        let g = mw.group(&l.name()).unwrap();
        let a = g.attr("weight_names").unwrap();
        let n = l.lock().weights().len();
        if n == 0 {
            // np.asarray([]) is float64[0].
            let t: Tensor = a.as_tensor().unwrap();
            assert_eq!(t.shape(), &[0]);
            assert_eq!(t.dtype(), ferroflow_core::DType::F64);
            continue;
        }
        with_weights += 1;
        let wn = a.as_strings().unwrap();
        assert_eq!(wn.len(), n);
        for (w, v) in wn.iter().zip(l.lock().weights()) {
            assert_eq!(
                g.dataset(w).unwrap().read().unwrap().to_f64_vec(),
                v.value().to_f64_vec()
            );
        }
    }
    assert!(with_weights >= 2);
    assert!(mw.group("top_level_model_weights").is_ok());
    let ow = f.group("/optimizer_weights").unwrap();
    let on = ow.attr("weight_names").unwrap().as_strings().unwrap();
    assert_eq!(
        &on[..2],
        &[
            "adam/iteration".to_string(),
            "adam/learning_rate".to_string()
        ]
    );
    let iterations = m.optimizer().unwrap().iterations() as f64;
    assert_eq!(
        ow.dataset("adam/iteration")
            .unwrap()
            .read()
            .unwrap()
            .to_f64_vec(),
        vec![iterations]
    );
    assert!(
        on[2..]
            .iter()
            .all(|n| n.ends_with("_momentum") || n.ends_with("_velocity")),
        "{on:?}"
    );
}

/// Real Keras 3 loads our `.h5` (when python with Keras is present): the same predictions within
/// 1e-5 and the same optimizer class, for every fixture model.
#[test]
fn keras_loads_our_legacy_h5() {
    let Some(py) = python() else {
        eprintln!("skipped the Keras check: no python with keras");
        return;
    };
    for (name, x, _, class) in cases() {
        let m = load_model(fixture(name)).unwrap();
        let p = tmp("ours.h5");
        save_model(&m, &p).unwrap();
        let mut loads = Vec::new();
        for (i, t) in x.iter().enumerate() {
            let f = p.with_file_name(format!("x{i}.npy"));
            write_npy(&f, t).unwrap();
            loads.push(format!("np.load({:?})", f.to_str().unwrap()));
        }
        let out = run_python(
            &py,
            &format!(
                "import numpy as np, keras\nm = keras.models.load_model({:?})\np = m.predict([{}], verbose=0)\nprint(type(m.optimizer).__name__)\nprint(' '.join(repr(float(v)) for v in np.asarray(p).reshape(-1)))",
                p.to_str().unwrap(),
                loads.join(", ")
            ),
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[lines.len() - 2], class, "{name}");
        let keras: Vec<f64> = lines[lines.len() - 1]
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_close(
            &predict(&m, x),
            &keras,
            1e-5,
            &format!("Keras on our {name} as .h5"),
        );
    }
}
