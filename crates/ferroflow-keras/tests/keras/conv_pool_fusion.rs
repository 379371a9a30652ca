//! The conv + max-pool fusion in Keras's traced steps: the seed CNN's optimised train and
//! predict graphs hold `_FusedConv2DMaxPool` (and `_FusedConv2DMaxPoolGrad` in training) instead of the
//! unfused chain, and a traced fit stays bit-identical to the eager one.

use ferroflow_core::{ops, DType, Tensor};
use ferroflow_keras::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use ferroflow_keras::prelude::*;
use ferroflow_keras::utils::{clear_session, set_random_seed};

fn seed_cnn() -> Sequential {
    let mut m = Sequential::new();
    m.add(
        Conv2D::new(32, (3, 3))
            .activation("relu")
            .input_shape(&[28, 28, 1]),
    )
    .unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Conv2D::new(64, (3, 3)).activation("relu")).unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(128).activation("relu")).unwrap();
    m.add(Dense::new(10).activation("softmax")).unwrap();
    m
}

fn data(n: usize) -> (Tensor, Tensor) {
    let x = ops::random_uniform(&[n, 28, 28, 1], 0.0, 1.0, DType::F32, 3).unwrap();
    let y = ops::random_uniform_int(&[n], 0, 10, DType::I64, 4).unwrap();
    (x, y)
}

fn count(dump: &str, op: &str) -> usize {
    dump.lines()
        .filter(|l| l.contains(&format!("= {op}(")))
        .count()
}

fn fit(eager: bool, x: &Tensor, y: &Tensor) -> (Vec<u32>, Sequential) {
    clear_session();
    set_random_seed(11);
    let mut m = seed_cnn();
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap()
        .run_eagerly(eager);
    m.fit(x, y)
        .epochs(1)
        .batch_size(32)
        .verbose(0)
        .run()
        .unwrap();
    let bits = m
        .get_weights()
        .iter()
        .flat_map(|w| w.to_vec::<f32>().unwrap())
        .map(f32::to_bits)
        .collect();
    (bits, m)
}

#[test]
fn seed_cnn_traced_steps_use_the_fused_conv_max_pool() {
    let (x, y) = data(64);
    let (_, mut m) = fit(false, &x, &y);
    m.predict(&x).batch_size(32).verbose(0).run().unwrap();
    let graphs = m.traced_optimized_step_graphs().unwrap();
    let train: Vec<&String> = graphs.iter().filter(|g| g.starts_with("Train")).collect();
    let predict: Vec<&String> = graphs.iter().filter(|g| g.starts_with("Predict")).collect();
    assert_eq!(train.len(), 1);
    assert_eq!(predict.len(), 1);
    let d = train[0];
    if std::env::var("FF_PRINT_GRAPH").is_ok() {
        eprintln!("{d}");
    }
    assert_eq!(count(d, "_FusedConv2DMaxPool"), 2, "{d}");
    // The pooled gradient feeds one fused backward per block (filter, bias[, input] gradients).
    assert_eq!(count(d, "_FusedConv2DMaxPoolGrad"), 2, "{d}");
    assert_eq!(count(d, "_MaxPoolReluGrad"), 0, "{d}");
    for gone in ["MaxPool", "MaxPoolGrad", "_FusedConv2D", "Conv2D"] {
        assert_eq!(count(d, gone), 0, "{gone} left in the train step: {d}");
    }
    // The train step's fused ops output the argmax the backward reads.
    let with_argmax = |d: &str| {
        d.lines()
            .filter(|l| l.contains("= _FusedConv2DMaxPool(") && l.contains("uint8"))
            .count()
    };
    assert_eq!(with_argmax(train[0]), 2, "{}", train[0]);
    let d = predict[0];
    assert_eq!(count(d, "_FusedConv2DMaxPool"), 2, "{d}");
    assert_eq!(count(d, "MaxPool"), 0, "{d}");
    // The predict step's do not compute it (nothing reads it).
    assert_eq!(with_argmax(d), 0, "{d}");
}

#[test]
fn seed_cnn_traced_fit_with_the_fusion_is_bit_identical_to_eager() {
    let (x, y) = data(64);
    let (eager, _) = fit(true, &x, &y);
    let (traced, m) = fit(false, &x, &y);
    assert!(m.traced_step_count() >= 1);
    assert_eq!(m.eager_fallback_reason(), None);
    assert!(eager == traced, "traced weights differ from eager");
}
