//! Whole models: `.keras` files written by Keras 3.15 (fixtures/make_keras_fixtures.py) load
//! here with Keras's predictions; files we write load back here and in real Keras; legacy
//! full-model `.h5`; errors.

use ferroflow_core::{ops, DType, Tensor};
use ferroflow_io::keras_config::{layer_from_config, serialize_model};
use ferroflow_io::{load_model, save_model, ModelIoExt};
use ferroflow_keras::Model;

use crate::common::{assert_close, fixture, inputs, python, run_python, tmp};

// Predictions printed by make_keras_fixtures.py (Keras 3.15.1, TF 2.21 CPU).
const MLP: [f64; 6] = [
    1.750583351e-01,
    4.053230882e-01,
    4.196186066e-01,
    3.220259249e-01,
    3.045046926e-01,
    3.734693825e-01,
];
const CNN: [f64; 20] = [
    1.033097208e-01,
    1.051658839e-01,
    1.000907421e-01,
    9.572907537e-02,
    9.856080264e-02,
    1.023792997e-01,
    9.941522777e-02,
    9.377884120e-02,
    1.045467407e-01,
    9.702371061e-02,
    1.049493998e-01,
    1.070066020e-01,
    9.607774764e-02,
    9.669379145e-02,
    1.004839018e-01,
    1.015173793e-01,
    9.873320162e-02,
    9.406704456e-02,
    1.041513681e-01,
    9.631952643e-02,
];
const TWO_INPUT: [f64; 4] = [
    -4.918461740e-01,
    3.107288182e-01,
    -2.799442410e-01,
    4.779298604e-02,
];
const LSTM: [f64; 2] = [4.993191957e-01, 5.020025373e-01];

fn two_input_x() -> Vec<Tensor> {
    vec![
        inputs(&[2, 4]),
        ops::mul_scalar(&inputs(&[2, 3]), 0.5).unwrap(),
    ]
}

fn tokens() -> Tensor {
    Tensor::from_vec(vec![0i32, 7, 4, 1, 8, 5, 2, 9, 6, 3], &[2, 5]).unwrap()
}

pub(crate) fn predict(m: &Model, x: Vec<Tensor>) -> Vec<f32> {
    m.predict_on_batch(x).unwrap()[0].to_vec::<f32>().unwrap()
}

/// (fixture, inputs, Keras's predictions, optimizer class)
pub(crate) fn cases() -> Vec<(&'static str, Vec<Tensor>, Vec<f64>, &'static str)> {
    vec![
        ("mlp.keras", vec![inputs(&[2, 6])], MLP.to_vec(), "Adam"),
        (
            "cnn.keras",
            vec![inputs(&[2, 12, 12, 1])],
            CNN.to_vec(),
            "Adam",
        ),
        ("two_input.keras", two_input_x(), TWO_INPUT.to_vec(), "SGD"),
        ("lstm.keras", vec![tokens()], LSTM.to_vec(), "RMSprop"),
    ]
}

#[test]
fn keras_written_files_load_with_keras_predictions() {
    for (file, x, want, opt) in cases() {
        let m = load_model(fixture(file)).unwrap();
        assert_close(&predict(&m, x), &want, 1e-6, file);
        let c = m
            .compiled()
            .unwrap_or_else(|| panic!("{file}: not recompiled"));
        assert_eq!(c.optimizer.name(), opt, "{file}");
        // 8 samples, batch 4, 2 epochs: Keras's iteration counter is 4.
        assert_eq!(c.optimizer.iterations(), 4, "{file}");
        assert!(
            !c.optimizer.variables().is_empty(),
            "{file}: optimizer state"
        );
    }
}

#[test]
fn keras_file_config_names_and_structure() {
    let m = load_model(fixture("two_input.keras")).unwrap();
    assert_eq!(m.name(), "two_input");
    let names: Vec<String> = m.layers().iter().map(|l| l.name()).collect();
    assert_eq!(
        names,
        ["a_in", "b_in", "dense_a", "dense_b", "concat", "out"]
    );
    // 4·5+5 + 3·5+5 + 10·2+2
    assert_eq!(m.count_params(), 25 + 20 + 22);
    let m = load_model(fixture("cnn.keras")).unwrap();
    // conv 3·3·1·4+4, conv 3·3·4·6+6, dense (1·1·6)·8+8, dense 8·10+10
    assert_eq!(m.count_params(), 40 + 222 + 56 + 90);
}

#[test]
fn optimizer_state_loads_from_keras_file() {
    // Adam's first moment of the last Dense bias in mlp.keras, read with h5py by the fixture
    // script's layout: optimizer/vars/{2 + 2k} are the m's. Compare against the h5 directly.
    let m = load_model(fixture("mlp.keras")).unwrap();
    let c = m.compiled().unwrap();
    let vars = c.optimizer.variables();
    let bytes = std::fs::read(fixture("mlp.keras")).unwrap();
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut h5 = Vec::new();
    std::io::Read::read_to_end(&mut z.by_name("model.weights.h5").unwrap(), &mut h5).unwrap();
    let f = ferroflow_io::hdf5::File::from_bytes("mlp.weights.h5", h5).unwrap();
    for (i, v) in vars.iter().enumerate() {
        let t = f
            .dataset(&format!("optimizer/vars/{}", i + 2))
            .unwrap()
            .read()
            .unwrap();
        assert_eq!(
            v.value().to_vec::<f32>().unwrap(),
            t.to_vec::<f32>().unwrap(),
            "slot {i}"
        );
    }
    assert!(vars
        .iter()
        .any(|v| v.value().to_vec::<f32>().unwrap().iter().any(|x| *x != 0.0)));
}

#[test]
fn legacy_full_model_h5_loads() {
    let m = load_model(fixture("mlp_full.h5")).unwrap();
    assert_close(
        &predict(&m, vec![inputs(&[2, 6])]),
        &MLP,
        1e-6,
        "mlp_full.h5",
    );
    let c = m.compiled().expect("training_config recompiles");
    assert_eq!(c.optimizer.name(), "Adam");
    assert_eq!(c.losses[0].name(), "sparse_categorical_crossentropy");
}

#[test]
fn round_trip_keeps_predictions_config_and_optimizer() {
    for (file, x, want, _) in cases() {
        let m = load_model(fixture(file)).unwrap();
        let p = tmp(file);
        m.save(&p).unwrap();
        let back = load_model(&p).unwrap();
        assert_close(&predict(&back, x), &want, 1e-6, file);
        assert_eq!(back.name(), m.name());
        let (a, b) = (m.compiled().unwrap(), back.compiled().unwrap());
        assert_eq!(a.optimizer.iterations(), b.optimizer.iterations());
        for (va, vb) in a.optimizer.variables().iter().zip(b.optimizer.variables()) {
            assert_eq!(
                va.value().to_vec::<f32>().unwrap(),
                vb.value().to_vec::<f32>().unwrap()
            );
        }
    }
}

#[test]
fn written_zip_has_keras_members_and_schema() {
    let m = load_model(fixture("two_input.keras")).unwrap();
    let p = tmp("two.keras");
    save_model(&m, &p).unwrap();
    let mut z = zip::ZipArchive::new(std::fs::File::open(&p).unwrap()).unwrap();
    let names: Vec<String> = (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().to_string())
        .collect();
    assert_eq!(names, ["metadata.json", "config.json", "model.weights.h5"]);
    for i in 0..z.len() {
        assert_eq!(
            z.by_index(i).unwrap().compression(),
            zip::CompressionMethod::Stored
        );
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut z.by_name("metadata.json").unwrap(), &mut s).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(meta["keras_version"], "3.15.1");
    let d = meta["date_saved"].as_str().unwrap();
    assert_eq!(d.len(), 19, "{d}");
    assert_eq!(&d[10..11], "@");
    let c = serialize_model(&m);
    assert_eq!(c["class_name"], "Functional");
    assert_eq!(
        c["config"]["input_layers"],
        serde_json::json!([["a_in", 0, 0], ["b_in", 0, 0]])
    );
    assert_eq!(
        c["config"]["output_layers"],
        serde_json::json!(["out", 0, 0])
    );
    let concat = &c["config"]["layers"][4];
    assert_eq!(concat["name"], "concat");
    assert_eq!(
        concat["inbound_nodes"][0]["args"][0][1]["config"]["keras_history"],
        serde_json::json!(["dense_b", 0, 0])
    );
    let dense = &c["config"]["layers"][2]["config"];
    assert_eq!(dense["kernel_initializer"]["class_name"], "GlorotUniform");
    assert_eq!(dense["kernel_initializer"]["module"], "keras.initializers");
    assert_eq!(dense["dtype"]["class_name"], "DTypePolicy");
    assert_eq!(c["compile_config"]["optimizer"]["class_name"], "SGD");
}

#[test]
fn files_we_write_load_in_real_keras() {
    let Some(py) = python() else {
        eprintln!("skipped: no python with keras (set FERROFLOW_PYTHON)");
        return;
    };
    let mut script = String::from(
        "import keras, numpy as np, json\n\
         def inputs(shape):\n    n = int(np.prod(shape))\n    return np.sin(0.37*np.arange(n, dtype=np.float64)+0.1).astype(np.float32).reshape(shape)\n\
         out = {}\n",
    );
    let mut want = Vec::new();
    for (file, x, _, _) in cases() {
        let m = load_model(fixture(file)).unwrap();
        let p = tmp(file);
        save_model(&m, &p).unwrap();
        want.push((file, predict(&m, x)));
        let x = match file {
            "mlp.keras" => "inputs((2, 6))",
            "cnn.keras" => "inputs((2, 12, 12, 1))",
            "two_input.keras" => "[inputs((2, 4)), inputs((2, 3)) * 0.5]",
            _ => "np.array([[0, 7, 4, 1, 8], [5, 2, 9, 6, 3]], dtype='int32')",
        };
        script.push_str(&format!(
            "m = keras.models.load_model({:?})\nout[{file:?}] = [float(v) for v in np.asarray(m.predict({x}, verbose=0)).reshape(-1)] + [int(m.optimizer.iterations.numpy())]\n",
            p.display().to_string()
        ));
    }
    script.push_str("print(json.dumps(out))\n");
    let text = run_python(&py, &script);
    let line = text.lines().last().unwrap();
    let got: serde_json::Value = serde_json::from_str(line).unwrap();
    for (file, ours) in want {
        let k: Vec<f64> = got[file]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let (pred, it) = k.split_at(k.len() - 1);
        assert_close(&ours, pred, 1e-6, file);
        assert_eq!(it[0], 4.0, "{file}: optimizer iterations in Keras");
    }
}

#[test]
fn errors_name_the_problem() {
    // Unknown layer class.
    let e = layer_from_config(
        "FancyLayer",
        serde_json::json!({"name": "x"}).as_object().unwrap(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("FancyLayer") && e.contains("Dense"), "{e}");
    // Wrong key type names the layer and key.
    let e = layer_from_config(
        "Dense",
        serde_json::json!({"name": "d", "units": "ten"})
            .as_object()
            .unwrap(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("\"d\"") && e.contains("units"), "{e}");
    // Wrong extension.
    let m = load_model(fixture("mlp.keras")).unwrap();
    let e = save_model(&m, tmp("m.txt")).unwrap_err().to_string();
    assert!(
        e.contains(".keras") && e.contains(".h5") && e.contains("m.txt"),
        "{e}"
    );
    // Not a model file.
    let p = tmp("junk.keras");
    std::fs::write(&p, b"hello world").unwrap();
    let e = load_model(&p).unwrap_err().to_string();
    assert!(e.contains("junk.keras"), "{e}");
    // Truncated zip: an error naming the file, never a panic.
    let bytes = std::fs::read(fixture("mlp.keras")).unwrap();
    for cut in [10, bytes.len() / 2, bytes.len() - 10] {
        let p = tmp("cut.keras");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let e = load_model(&p).unwrap_err().to_string();
        assert!(e.contains("cut.keras"), "cut at {cut}: {e}");
    }
    // A weights-only h5 is not a model.
    let e = load_model(fixture("mlp.weights.h5"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("model_config"), "{e}");
    // Missing file.
    assert!(load_model(tmp("nope.keras")).is_err());
}

#[test]
fn fresh_sequential_saves_and_loads_every_registry_layer_kind() {
    use ferroflow_keras::layers::*;
    use ferroflow_keras::Sequential;
    let mut m = Sequential::new();
    m.add(Input::with_shape(&[Some(6), Some(4)], DType::F32, None))
        .unwrap();
    m.add(Masking::new(0.0)).unwrap();
    m.add(Bidirectional::new(GRU::new(3).return_sequences(true)))
        .unwrap();
    m.add(TimeDistributed::new(Dense::new(2))).unwrap();
    m.add(SimpleRNN::new(3)).unwrap();
    m.add(BatchNormalization::new()).unwrap();
    m.add(Dense::new(2).activation("softmax")).unwrap();
    let p = tmp("rnn.keras");
    save_model(&m, &p).unwrap();
    let back = load_model(&p).unwrap();
    let x = inputs(&[2, 6, 4]);
    let a = predict(&m, vec![x.clone()]);
    let b: Vec<f64> = predict(&back, vec![x]).iter().map(|v| *v as f64).collect();
    assert_close(&a, &b, 0.0, "rnn round trip");
    let classes: Vec<String> = back.layers().iter().map(|l| l.class_name()).collect();
    assert_eq!(
        classes,
        [
            "Masking",
            "Bidirectional",
            "TimeDistributed",
            "SimpleRNN",
            "BatchNormalization",
            "Dense"
        ]
    );
}

/// Models using every layer class of the registry, built here, saved, and loaded by real Keras:
/// the configs' keys and value forms must be ones Keras accepts, and Keras's predictions must
/// equal ours.
fn registry_models() -> Vec<(&'static str, Model, Vec<Tensor>, &'static str)> {
    use ferroflow_keras::layers::*;
    use ferroflow_keras::Sequential;
    ferroflow_keras::backend::set_random_seed(3);
    let mut img = Sequential::new().named("img");
    img.add(Input::with_shape(
        &[Some(8), Some(8), Some(3)],
        DType::F32,
        None,
    ))
    .unwrap();
    img.add(Rescaling::new(0.5).offset(0.1)).unwrap();
    img.add(ZeroPadding2D::new(1)).unwrap();
    img.add(Conv2D::new(4, 3).padding("same").activation("tanh"))
        .unwrap();
    img.add(DepthwiseConv2D::new(3).depth_multiplier(2))
        .unwrap();
    img.add(SeparableConv2D::new(4, 3).padding("same")).unwrap();
    img.add(Conv2DTranspose::new(3, 2).strides(2)).unwrap();
    img.add(Cropping2D::new(((1, 1), (2, 0)))).unwrap();
    img.add(UpSampling2D::new(2)).unwrap();
    img.add(AveragePooling2D::new(2)).unwrap();
    img.add(MaxPooling2D::new(2).strides(2)).unwrap();
    img.add(BatchNormalization::new()).unwrap();
    img.add(LayerNormalization::new()).unwrap();
    img.add(Activation::new("relu")).unwrap();
    img.add(GlobalAveragePooling2D::new()).unwrap();
    img.add(
        Dense::new(6)
            .activation("sigmoid")
            .kernel_initializer("he_normal")
            .kernel_regularizer(ferroflow_keras::regularizers::Regularizer::L2(0.02)),
    )
    .unwrap();
    img.add(Reshape::new(&[2, 3])).unwrap();
    img.add(Permute::new(&[2, 1])).unwrap();
    img.add(Flatten::new()).unwrap();
    img.add(RepeatVector::new(4)).unwrap();
    img.add(Conv1D::new(3, 2).activation("relu")).unwrap();
    img.add(AveragePooling1D::new(1)).unwrap();
    img.add(MaxPooling1D::new(2)).unwrap();
    img.add(GlobalMaxPooling1D::new()).unwrap();
    img.add(Dropout::new(0.1)).unwrap();
    let mut seq = Sequential::new().named("seq");
    seq.add(Input::with_shape(&[Some(5)], DType::I32, None))
        .unwrap();
    // mask_zero stays off: TimeDistributed and GlobalAveragePooling1D do not propagate/use
    // masks in ferroflow yet, so Keras's masked results would differ (a layer gap, not the
    // format's). The merge model below covers Masking → LSTM.
    seq.add(Embedding::new(10, 4).mask_zero(false)).unwrap();
    seq.add(Bidirectional::new(LSTM::new(3).return_sequences(true)))
        .unwrap();
    seq.add(TimeDistributed::new(Dense::new(2))).unwrap();
    seq.add(GRU::new(3).return_sequences(true)).unwrap();
    seq.add(SimpleRNN::new(2).return_sequences(true)).unwrap();
    seq.add(GlobalAveragePooling1D::new()).unwrap();
    let a = Input::named(&[4], "a");
    let b = Input::named(&[4], "b");
    let shared = LayerHandle::new(Dense::new(4).activation("elu").named("shared"));
    let (xa, xb) = (shared.apply(&a).unwrap(), shared.apply(&b).unwrap());
    let add = Add::new().apply([&xa, &xb]).unwrap();
    let sub = Subtract::new().apply([&xa, &xb]).unwrap();
    let mul = Multiply::new().apply([&add, &sub]).unwrap();
    let max = Maximum::new().apply([&xa, &mul]).unwrap();
    let avg = Average::new().apply([&max, &xb]).unwrap();
    let cat = Concatenate::new().apply([&avg, &add]).unwrap();
    let out = Dense::new(2).named("out").apply(&cat).unwrap();
    let masked_in = Input::named(&[3, 2], "m_in");
    let masked = Masking::new(0.0).apply(&masked_in).unwrap();
    let pooled = LSTM::new(2).apply(&masked).unwrap();
    let f = Model::new([&a, &b, &masked_in], [&out, &pooled])
        .unwrap()
        .named("merge");
    let tok = Tensor::from_vec(vec![1i32, 7, 4, 0, 0, 5, 2, 9, 6, 3], &[2, 5]).unwrap();
    let m_in = Tensor::from_vec(
        vec![
            0.5f32, 1.0, 0.0, 0.0, 0.3, -0.2, 0.1, 0.2, 0.4, 0.5, 0.0, 0.0,
        ],
        &[2, 3, 2],
    )
    .unwrap();
    vec![
        ("img.keras", img.into_model(), vec![inputs(&[2, 8, 8, 3])], "inputs((2, 8, 8, 3))"),
        ("seq.keras", seq.into_model(), vec![tok], "np.array([[1, 7, 4, 0, 0], [5, 2, 9, 6, 3]], dtype='int32')"),
        ("merge.keras", f, vec![inputs(&[2, 4]), ops::mul_scalar(&inputs(&[2, 4]), -0.7).unwrap(), m_in],
         "[inputs((2, 4)), inputs((2, 4)) * -0.7, np.array([0.5, 1.0, 0.0, 0.0, 0.3, -0.2, 0.1, 0.2, 0.4, 0.5, 0.0, 0.0], dtype='float32').reshape(2, 3, 2)]"),
    ]
}

#[test]
fn every_registry_layer_loads_in_real_keras() {
    let mut script = String::from(
        "import keras, numpy as np, json\n\
         def inputs(shape):\n    n = int(np.prod(shape))\n    return np.sin(0.37*np.arange(n, dtype=np.float64)+0.1).astype(np.float32).reshape(shape)\n\
         out = {}\n",
    );
    let mut want = Vec::new();
    for (file, m, x, pyx) in registry_models() {
        let p = tmp(file);
        save_model(&m, &p).unwrap();
        // Our own loader first.
        let back = load_model(&p).unwrap();
        let ours: Vec<f32> = m
            .predict_on_batch(x.clone())
            .unwrap()
            .iter()
            .flat_map(|t| t.to_vec::<f32>().unwrap())
            .collect();
        let again: Vec<f64> = back
            .predict_on_batch(x)
            .unwrap()
            .iter()
            .flat_map(|t| t.to_vec::<f32>().unwrap())
            .map(f64::from)
            .collect();
        assert_close(&ours, &again, 0.0, file);
        want.push((file, ours));
        script.push_str(&format!(
            "m = keras.models.load_model({:?})\np = m.predict({pyx}, verbose=0)\np = p if isinstance(p, list) else [p]\nout[{file:?}] = [float(v) for a in p for v in np.asarray(a).reshape(-1)]\n",
            p.display().to_string()
        ));
    }
    let Some(py) = python() else {
        eprintln!("skipped the Keras half: no python with keras (set FERROFLOW_PYTHON)");
        return;
    };
    script.push_str("print(json.dumps(out))\n");
    let text = run_python(&py, &script);
    let got: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    for (file, ours) in want {
        let k: Vec<f64> = got[file]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_close(&ours, &k, 2e-6, file);
    }
}

#[test]
fn initializers_and_regularizers_are_keras_objects_and_reload() {
    use ferroflow_keras::layers::{Dense, Layer};
    use ferroflow_keras::regularizers::Regularizer;
    use ferroflow_keras::Sequential;
    let mut m = Sequential::new();
    m.add(
        Dense::new(3)
            .input_shape(&[4])
            .kernel_initializer("he_normal")
            .bias_initializer("ones")
            .kernel_regularizer(Regularizer::L2(0.02)),
    )
    .unwrap();
    let c = serialize_model(&m);
    let d = &c["config"]["layers"][1]["config"];
    assert_eq!(d["kernel_initializer"]["class_name"], "HeNormal");
    assert_eq!(d["bias_initializer"]["class_name"], "Ones");
    assert_eq!(
        d["kernel_regularizer"],
        serde_json::json!({"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.02}, "registered_name": null})
    );
    assert_eq!(d["bias_regularizer"], serde_json::Value::Null);
    let p = tmp("init.keras");
    save_model(&m, &p).unwrap();
    let back = load_model(&p).unwrap();
    let bd = back.layers()[0].lock().get_config();
    assert_eq!(bd["kernel_initializer"], d["kernel_initializer"]);
    assert_eq!(bd["kernel_regularizer"], d["kernel_regularizer"]);
    // The regularizer is live again: one penalty term.
    assert_eq!(back.regularization_losses().unwrap().len(), 1);
}

#[test]
fn every_optimizer_keeps_its_hyperparameters() {
    use ferroflow_keras::layers::{Dense, Layer};
    use ferroflow_keras::optimizers::*;
    use ferroflow_keras::Sequential;
    let opts: Vec<Box<dyn Optimizer>> = vec![
        Box::new(Adam::new().beta_1(0.8).epsilon(1e-5).amsgrad(true)),
        Box::new(AdamW::new().beta_2(0.9)),
        Box::new(Adamax::new().beta_1(0.7)),
        Box::new(Nadam::new().epsilon(1e-4)),
        Box::new(Lion::new().beta_2(0.95)),
        Box::new(SGD::new().momentum(0.3).nesterov(true)),
        Box::new(RMSprop::new().rho(0.8).centered(true)),
        Box::new(Adagrad::new().initial_accumulator_value(0.2)),
        Box::new(Adadelta::new().rho(0.9)),
    ];
    for opt in opts {
        let want = opt.hyperparameters();
        let class = opt.name().to_string();
        let mut m = Sequential::new();
        m.add(Dense::new(2).input_shape(&[3])).unwrap();
        m.compile(opt, "mse", ()).unwrap();
        let p = tmp("opt.keras");
        save_model(&m, &p).unwrap();
        let back = load_model(&p).unwrap();
        let o = &back.compiled().unwrap().optimizer;
        assert_eq!(o.name(), class);
        assert_eq!(o.hyperparameters(), want, "{class}");
    }
}

#[test]
fn configured_loss_survives_save_and_load() {
    use ferroflow_keras::layers::{Dense, Layer};
    use ferroflow_keras::losses::SparseCategoricalCrossentropy;
    use ferroflow_keras::Sequential;
    let mut m = Sequential::new();
    m.add(Dense::new(3).input_shape(&[4])).unwrap();
    m.compile(
        ferroflow_keras::optimizers::SGD::new().momentum(0.5),
        SparseCategoricalCrossentropy::new().from_logits(true),
        ["accuracy"],
    )
    .unwrap();
    let c = serialize_model(&m)["compile_config"].clone();
    assert_eq!(c["loss"]["class_name"], "SparseCategoricalCrossentropy");
    assert_eq!(c["loss"]["config"]["from_logits"], true);
    assert_eq!(c["optimizer"]["config"]["momentum"], 0.5);
    assert_eq!(c["metrics"], serde_json::json!(["accuracy"]));
    let p = tmp("logits.keras");
    save_model(&m, &p).unwrap();
    let back = load_model(&p).unwrap();
    let bc = back.compiled().unwrap();
    assert_eq!(bc.losses[0].get_config()["from_logits"], true);
    assert_eq!(bc.optimizer.hyperparameters()["momentum"], 0.5);
}

#[test]
fn keras2_config_schema_is_understood() {
    // Keras 2's forms (tf.keras ≤ 2.15 `model.to_json()`): `batch_input_shape` on the first
    // layer instead of an InputLayer; functional inbound_nodes as `[[layer, node, tensor,
    // kwargs], ...]` lists; initializers as `{"class_name", "config"}` without `module`.
    use ferroflow_io::keras_config::model_from_config;
    let seq = serde_json::json!({"class_name": "Sequential", "config": {"name": "old", "layers": [
        {"class_name": "Dense", "config": {"name": "d1", "units": 5, "activation": "relu",
            "batch_input_shape": [null, 3], "dtype": "float32",
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}}}},
        {"class_name": "Dense", "config": {"name": "d2", "units": 2}}]}});
    let m = model_from_config(&seq).unwrap();
    assert_eq!(m.name(), "old");
    assert_eq!(m.count_params(), 3 * 5 + 5 + 5 * 2 + 2);
    let f = serde_json::json!({"class_name": "Functional", "config": {"name": "f", "layers": [
        {"class_name": "InputLayer", "name": "x", "config": {"batch_input_shape": [null, 4], "dtype": "float32", "name": "x"}, "inbound_nodes": []},
        {"class_name": "Dense", "name": "h", "config": {"name": "h", "units": 3}, "inbound_nodes": [[["x", 0, 0, {}]]]},
        {"class_name": "Dense", "name": "g", "config": {"name": "g", "units": 3}, "inbound_nodes": [[["x", 0, 0, {}]]]},
        {"class_name": "Add", "name": "sum", "config": {"name": "sum"}, "inbound_nodes": [[["h", 0, 0, {}], ["g", 0, 0, {}]]]}],
        "input_layers": [["x", 0, 0]], "output_layers": [["sum", 0, 0]]}});
    let m = model_from_config(&f).unwrap();
    let names: Vec<String> = m.layers().iter().map(|l| l.name()).collect();
    assert_eq!(names, ["x", "h", "g", "sum"]);
    assert_eq!(m.count_params(), 2 * (4 * 3 + 3));
    // A node whose input never appears: "graph disconnected", naming the layer.
    let mut bad = f.clone();
    bad["config"]["layers"][3]["inbound_nodes"] = serde_json::json!([[["nowhere", 0, 0, {}]]]);
    let e = model_from_config(&bad).err().unwrap().to_string();
    assert!(e.contains("sum") && e.contains("disconnected"), "{e}");
}

#[test]
fn summary_of_a_saved_model() {
    let s = ferroflow_io::keras_format::summary_of_file(fixture("cnn.keras"), None).unwrap();
    assert!(s.contains("Model: \"cnn\""), "{s}");
    for l in ["conv2d", "max_pooling2d", "flatten", "dense"] {
        assert!(s.contains(l), "{l} missing:\n{s}");
    }
    // 40 + 222 + 56 + 90 weights (counted by hand in keras_file_config_names_and_structure);
    // Adam's state 2·408 + iteration + learning_rate = 818. Real Keras's summary of this file
    // prints the same four lines.
    for line in [
        "Total params: 1,226 (4.79 KB)",
        "Trainable params: 408 (1.59 KB)",
        "Non-trainable params: 0 (0.00 B)",
        "Optimizer params: 818 (3.20 KB)",
    ] {
        assert!(s.contains(line), "{line} missing:\n{s}");
    }
    assert!(ferroflow_io::keras_format::summary_of_file(fixture("mlp.weights.h5"), None).is_err());
}

#[test]
fn learning_rate_schedule_is_saved_as_keras_object() {
    use ferroflow_keras::layers::{Dense, Layer};
    use ferroflow_keras::optimizers::schedules::ExponentialDecay;
    use ferroflow_keras::optimizers::Adam;
    use ferroflow_keras::Sequential;
    let mut m = Sequential::new();
    m.add(Dense::new(1).input_shape(&[3])).unwrap();
    let sched = ExponentialDecay::new(0.1, 2, 0.5).unwrap().staircase(true);
    m.compile(Adam::new().learning_rate(sched), "mse", ())
        .unwrap();
    let x = inputs(&[6, 3]);
    let y = ops::reduce_sum(&x, ops::Axes::These(vec![1]), true).unwrap();
    m.fit(&x, &y)
        .epochs(1)
        .batch_size(2)
        .verbose(0)
        .run()
        .unwrap();
    let c = serialize_model(&m)["compile_config"]["optimizer"]["config"]["learning_rate"].clone();
    assert_eq!(
        c,
        serde_json::json!({"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
            "config": {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5,
                       "staircase": true, "name": "ExponentialDecay"}, "registered_name": null})
    );
    let p = tmp("sched.keras");
    save_model(&m, &p).unwrap();
    let back = load_model(&p).unwrap();
    let o = &back.compiled().unwrap().optimizer;
    assert_eq!(o.iterations(), 3);
    // 0.1 · 0.5^floor(3/2), by hand.
    assert!(
        (o.learning_rate() - 0.05).abs() < 1e-12,
        "{}",
        o.learning_rate()
    );
    let a = predict(&m, vec![x.clone()]);
    let b: Vec<f64> = predict(&back, vec![x]).iter().map(|v| *v as f64).collect();
    assert_close(&a, &b, 0.0, "schedule round trip");
    if let Some(py) = python() {
        let out = run_python(
            &py,
            &format!(
                "import keras\nm = keras.models.load_model({:?})\no = m.optimizer\nprint(type(o._learning_rate).__name__, int(o.iterations.numpy()), float(o.learning_rate))",
                p.display().to_string()
            ),
        );
        let last = out.lines().last().unwrap();
        let parts: Vec<&str> = last.split_whitespace().collect();
        assert_eq!(parts[..2], ["ExponentialDecay", "3"], "{last}");
        assert!(
            (parts[2].parse::<f64>().unwrap() - 0.05).abs() < 1e-7,
            "{last}"
        );
    } else {
        eprintln!("skipped the Keras check: no python with keras");
    }
}

/// A legacy `.h5` of a trained, compiled model holds `optimizer_weights` (Keras's
/// `weight_names` order); loading restores them as Keras does (2 epochs x 2 steps of Adam).
#[test]
fn legacy_h5_restores_optimizer_weights() {
    let m = load_model(fixture("mlp_full.h5")).unwrap();
    let c = m.compiled().unwrap();
    assert_eq!(c.optimizer.iterations(), 4);
    let f = ferroflow_io::hdf5::File::open(fixture("mlp_full.h5")).unwrap();
    let g = f.group("optimizer_weights").unwrap();
    let names = g.attr("weight_names").unwrap().as_strings().unwrap();
    assert_eq!(names[0], "adam/iteration");
    assert_eq!(names[1], "adam/learning_rate");
    let slots = c.optimizer.variables();
    assert_eq!(names.len(), 2 + slots.len());
    assert_eq!(names[2], "adam/mlp_dense_kernel_momentum");
    for (v, n) in slots.iter().zip(&names[2..]) {
        let t = g.dataset(n).unwrap().read().unwrap();
        assert_eq!(v.shape(), t.shape(), "{n}");
        assert_eq!(
            v.value().to_vec::<f32>().unwrap(),
            t.to_vec::<f32>().unwrap(),
            "{n}"
        );
    }
    assert!(slots
        .iter()
        .any(|v| v.value().to_vec::<f32>().unwrap().iter().any(|x| *x != 0.0)));
    // Real Keras 3.15 restores the iteration count from the same file (its legacy loader then
    // leaves Adam's slots unbuilt: `len(optimizer.variables) == 2`; tf.keras 2 restored them
    // too, as we do, from the values checked above).
    if let Some(py) = python() {
        let out = run_python(
            &py,
            &format!(
                "import keras\nm = keras.models.load_model({:?})\nprint(int(m.optimizer.iterations.numpy()))",
                fixture("mlp_full.h5").to_str().unwrap()
            ),
        );
        assert_eq!(out.lines().last(), Some("4"));
    } else {
        eprintln!("skipped the Keras check: no python with keras");
    }
}
