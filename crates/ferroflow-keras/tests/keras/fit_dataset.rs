//! `fit` / `evaluate` / `predict` on a `ferroflow_data::Dataset`: the same arithmetic as on
//! in-memory tensors (bit for bit when the batches are the same), sample weights and class
//! weights from the data, multi-input models fed by a tuple or a dict, Keras's step counting
//! (`steps_per_epoch` over `repeat()`, data that runs out, unknown sizes) and the errors.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use ferroflow_core::{ops, DType, Error, Tensor};
use ferroflow_data::{Dataset, Element};
use ferroflow_keras::layers::{Concatenate, Dense, Input};
use ferroflow_keras::optimizers::SGD;
use ferroflow_keras::prelude::*;
use ferroflow_keras::utils::{set_random_seed, Progbar};

fn toy(n: usize) -> (Tensor, Tensor) {
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

/// The same initial weights every call (the session seed is reset first).
fn mlp(seed: u64) -> Sequential {
    set_random_seed(seed);
    let mut m = Sequential::new();
    m.add(Input::new(&[2])).unwrap();
    m.add(Dense::new(8).activation("tanh")).unwrap();
    m.add(Dense::new(1)).unwrap();
    m.compile(SGD::new().learning_rate(0.1).momentum(0.5), "mse", ["mae"])
        .unwrap();
    m
}

fn bits(m: &Model) -> Vec<Vec<u32>> {
    m.get_weights()
        .iter()
        .map(|w| {
            w.to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        })
        .collect()
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

/// Counts the training batches of each epoch.
#[derive(Clone, Default)]
struct BatchCounter(Arc<Mutex<Vec<usize>>>);

impl Callback for BatchCounter {
    fn on_epoch_begin(&mut self, _: &mut Model, _: usize, _: &Logs) -> ferroflow_core::Result<()> {
        self.0.lock().unwrap().push(0);
        Ok(())
    }
    fn on_train_batch_end(
        &mut self,
        _: &mut Model,
        _: usize,
        _: &Logs,
    ) -> ferroflow_core::Result<()> {
        if let Some(n) = self.0.lock().unwrap().last_mut() {
            *n += 1;
        }
        Ok(())
    }
}

#[test]
fn fit_on_a_dataset_is_bit_identical_to_fit_on_the_same_tensors() {
    // 36 samples in batches of 8: the last batch has 4, on both paths.
    let (x, y) = toy(36);
    let mut a = mlp(11);
    let ha = a
        .fit(&x, &y)
        .batch_size(8)
        .epochs(3)
        .shuffle(false)
        .verbose(0)
        .run()
        .unwrap();
    let mut b = mlp(11);
    assert_ne!(bits(&a), bits(&b), "training changed the weights");
    let ds = Dataset::from_tensor_slices((x.clone(), y.clone()))
        .unwrap()
        .batch(8, false)
        .prefetch(ferroflow_data::AUTOTUNE);
    let hb = b.fit_dataset(&ds).epochs(3).verbose(0).run().unwrap();
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(ha.history["loss"], hb.history["loss"]);
    assert_eq!(ha.history["mae"], hb.history["mae"]);
    assert_eq!(hb.params["steps"], 5);
    assert_eq!(b.optimizer().unwrap().iterations(), 15);
}

#[test]
fn sample_weights_from_the_dataset_match_the_argument_and_a_hand_computed_step() {
    // One SGD step on a linear model, weighted mse, batch of 4: by hand in f64.
    set_random_seed(3);
    let mut m = Sequential::new();
    m.add(Input::new(&[2])).unwrap();
    m.add(Dense::new(1)).unwrap();
    m.compile(SGD::new().learning_rate(0.1), "mse", ()).unwrap();
    let w0 = f32s(&m.get_weights()[0]);
    let b0 = f32s(&m.get_weights()[1])[0];
    let xs = [[0.5f32, -1.0], [1.0, 2.0], [-0.5, 0.25], [2.0, 1.0]];
    let ys = [1.0f32, -2.0, 0.5, 3.0];
    let sws = [1.0f32, 0.0, 2.0, 0.5];
    let x = Tensor::from_vec(xs.concat(), &[4, 2]).unwrap();
    let y = Tensor::from_vec(ys.to_vec(), &[4, 1]).unwrap();
    let sw = Tensor::from_vec(sws.to_vec(), &[4]).unwrap();
    let ds = Dataset::from_tensors((x.clone(), y.clone(), sw.clone()));
    m.fit_dataset(&ds).verbose(0).run().unwrap();
    // Keras's sum_over_batch_size: Σ sw·(p - y)² / 4.
    let (mut gw, mut gb) = ([0.0f64; 2], 0.0f64);
    for i in 0..4 {
        let p = xs[i][0] as f64 * w0[0] as f64 + xs[i][1] as f64 * w0[1] as f64 + b0 as f64;
        let d = 2.0 * sws[i] as f64 * (p - ys[i] as f64) / 4.0;
        gw[0] += d * xs[i][0] as f64;
        gw[1] += d * xs[i][1] as f64;
        gb += d;
    }
    let w1 = f32s(&m.get_weights()[0]);
    let b1 = f32s(&m.get_weights()[1])[0];
    for j in 0..2 {
        let want = w0[j] as f64 - 0.1 * gw[j];
        assert!((w1[j] as f64 - want).abs() < 1e-5, "{} vs {want}", w1[j]);
    }
    assert!((b1 as f64 - (b0 as f64 - 0.1 * gb)).abs() < 1e-5);

    // And bit-identical to the `sample_weight` argument over the same batches.
    let (x, y) = toy(24);
    let sw = Tensor::from_vec((0..24).map(|i| (i % 3) as f32).collect::<Vec<_>>(), &[24]).unwrap();
    let mut a = mlp(5);
    a.fit(&x, &y)
        .sample_weight(&sw)
        .batch_size(6)
        .shuffle(false)
        .epochs(2)
        .verbose(0)
        .run()
        .unwrap();
    let mut b = mlp(5);
    let ds = Dataset::from_tensor_slices((x, y, sw))
        .unwrap()
        .batch(6, false);
    b.fit_dataset(&ds).epochs(2).verbose(0).run().unwrap();
    assert_eq!(bits(&a), bits(&b));
}

#[test]
fn class_weight_with_a_dataset_matches_class_weight_with_tensors() {
    let (x, _) = toy(20);
    let labels =
        Tensor::from_vec((0..20).map(|i| (i % 3) as i64).collect::<Vec<_>>(), &[20]).unwrap();
    let build = || {
        set_random_seed(9);
        let mut m = Sequential::new();
        m.add(Input::new(&[2])).unwrap();
        m.add(Dense::new(3).activation("softmax")).unwrap();
        m.compile("sgd", "sparse_categorical_crossentropy", ())
            .unwrap();
        m
    };
    let cw: HashMap<usize, f64> = [(0, 1.0), (1, 3.0), (2, 0.5)].into_iter().collect();
    let mut a = build();
    a.fit(&x, &labels)
        .class_weight(cw.clone())
        .batch_size(5)
        .shuffle(false)
        .verbose(0)
        .run()
        .unwrap();
    let mut b = build();
    let ds = Dataset::from_tensor_slices((x.clone(), labels.clone()))
        .unwrap()
        .batch(5, false);
    b.fit_dataset(&ds)
        .class_weight(cw.clone())
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(bits(&a), bits(&b));
    // class_weight and the dataset's own sample weights together are an error, as in Keras.
    let sw = ops::ones(&[20], DType::F32);
    let ds = Dataset::from_tensor_slices((x, labels, sw))
        .unwrap()
        .batch(5, false);
    let e = build()
        .fit_dataset(&ds)
        .class_weight(cw)
        .verbose(0)
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains("class_weight and sample_weight"), "{e}");
}

/// A two-input model whose input order differs from the dict's (sorted) key order.
fn two_inputs(seed: u64) -> Model {
    set_random_seed(seed);
    let z = Input::named(&[2], "zeta");
    let a = Input::named(&[3], "alpha");
    let merged = Concatenate::new().apply([&z, &a]).unwrap();
    let out = Dense::new(1).apply(&merged).unwrap();
    let mut m = Model::new([&z, &a], [&out]).unwrap().named("two_in");
    m.compile("sgd", "mse", ()).unwrap();
    m
}

#[test]
fn multi_input_models_take_a_tuple_or_a_dict_keyed_by_input_names() {
    let n = 12;
    let xz = Tensor::from_vec(
        (0..2 * n)
            .map(|i| (i as f32 * 0.37).sin())
            .collect::<Vec<_>>(),
        &[n, 2],
    )
    .unwrap();
    let xa = Tensor::from_vec(
        (0..3 * n)
            .map(|i| (i as f32 * 0.11).cos())
            .collect::<Vec<_>>(),
        &[n, 3],
    )
    .unwrap();
    let y = Tensor::from_vec(
        (0..n).map(|i| i as f32 / n as f32).collect::<Vec<_>>(),
        &[n, 1],
    )
    .unwrap();
    let mut a = two_inputs(4);
    a.fit([&xz, &xa], &y)
        .batch_size(4)
        .shuffle(false)
        .epochs(2)
        .verbose(0)
        .run()
        .unwrap();
    let tuple = Element::Tuple(vec![
        Element::Tuple(vec![xz.clone().into(), xa.clone().into()]),
        y.clone().into(),
    ]);
    let mut b = two_inputs(4);
    let ds = Dataset::from_tensor_slices(tuple).unwrap().batch(4, false);
    b.fit_dataset(&ds).epochs(2).verbose(0).run().unwrap();
    assert_eq!(bits(&a), bits(&b));

    let dict: BTreeMap<String, Element> = [
        ("zeta".to_string(), Element::from(xz.clone())),
        ("alpha".to_string(), Element::from(xa.clone())),
    ]
    .into_iter()
    .collect();
    let mut c = two_inputs(4);
    let ds = Dataset::from_tensor_slices(Element::Tuple(vec![dict.into(), y.clone().into()]))
        .unwrap()
        .batch(4, false);
    c.fit_dataset(&ds).epochs(2).verbose(0).run().unwrap();
    assert_eq!(bits(&a), bits(&c));

    // A dict with other keys names the expected ones.
    let bad: BTreeMap<String, Element> = [
        ("zeta".to_string(), Element::from(xz)),
        ("beta".to_string(), Element::from(xa)),
    ]
    .into_iter()
    .collect();
    let ds = Dataset::from_tensor_slices(Element::Tuple(vec![bad.into(), y.into()]))
        .unwrap()
        .batch(4, false);
    let e = c.fit_dataset(&ds).verbose(0).run().unwrap_err().to_string();
    assert!(
        e.contains("two_in") && e.contains("beta") && e.contains("zeta, alpha"),
        "{e}"
    );
}

#[test]
fn evaluate_and_predict_on_datasets_equal_the_tensor_versions() {
    let (x, y) = toy(30);
    let mut m = mlp(2);
    m.fit(&x, &y).epochs(2).verbose(0).run().unwrap();
    let want = m
        .evaluate(&x, &y)
        .batch_size(7)
        .verbose(0)
        .run_dict()
        .unwrap();
    let ds = Dataset::from_tensor_slices((x.clone(), y.clone()))
        .unwrap()
        .batch(7, false);
    let got = m.evaluate_dataset(&ds).verbose(0).run_dict().unwrap();
    assert_eq!(want, got);
    // The same through a dataset of unknown size (filter) and with `steps`.
    let unknown = ds.filter(|_| Ok(true));
    assert_eq!(
        m.evaluate_dataset(&unknown).verbose(0).run_dict().unwrap(),
        want
    );
    let first2 = m
        .evaluate(
            ops::slice(&x, &[0, 0], &[14, 2]).unwrap(),
            ops::slice(&y, &[0, 0], &[14, 1]).unwrap(),
        )
        .batch_size(7)
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(
        m.evaluate_dataset(&ds.repeat(None))
            .steps(2)
            .verbose(0)
            .run()
            .unwrap(),
        first2
    );

    let p = m.predict(&x).batch_size(7).verbose(0).run().unwrap();
    // Elements (x, y): the targets are ignored; elements x alone.
    let p1 = m.predict_dataset(&ds).verbose(0).run().unwrap();
    let xs = Dataset::from_tensor_slices(x.clone())
        .unwrap()
        .batch(7, false);
    let p2 = m.predict_dataset(&xs).verbose(0).run().unwrap();
    assert_eq!(p.shape(), &[30, 1]);
    assert_eq!(f32s(&p), f32s(&p1));
    assert_eq!(f32s(&p), f32s(&p2));
    let p3 = m
        .predict_dataset(&xs.repeat(None))
        .steps(2)
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(f32s(&p3), f32s(&p)[..14].to_vec());
}

#[test]
fn validation_dataset_equals_validation_tensors() {
    let (x, y) = toy(32);
    let (vx, vy) = toy(10);
    let mut a = mlp(6);
    let ha = a
        .fit(&x, &y)
        .batch_size(8)
        .shuffle(false)
        .epochs(2)
        .validation_data(&vx, &vy)
        .verbose(0)
        .run()
        .unwrap();
    let mut b = mlp(6);
    let ds = Dataset::from_tensor_slices((x, y)).unwrap().batch(8, false);
    let vds = Dataset::from_tensor_slices((vx, vy))
        .unwrap()
        .batch(8, false);
    let hb = b
        .fit_dataset(&ds)
        .epochs(2)
        .validation_dataset(&vds)
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(ha.history["val_loss"], hb.history["val_loss"]);
    assert_eq!(ha.history["val_mae"], hb.history["val_mae"]);
    assert_eq!(bits(&a), bits(&b));
}

#[test]
fn steps_per_epoch_streams_a_repeated_dataset_and_carries_on_across_epochs() {
    let (x, y) = toy(40);
    let ds = Dataset::from_tensor_slices((x, y)).unwrap().batch(8, false); // 5 batches
    let mut m = mlp(1);
    let counter = BatchCounter::default();
    let h = m
        .fit_dataset(&ds.repeat(None))
        .steps_per_epoch(3)
        .epochs(4)
        .validation_dataset(&ds.repeat(None))
        .validation_steps(2)
        .callback(counter.clone())
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(*counter.0.lock().unwrap(), vec![3, 3, 3, 3]);
    assert_eq!(h.params["steps"], 3);
    assert_eq!(h.history["val_loss"].len(), 4);
    assert_eq!(m.optimizer().unwrap().iterations(), 12);

    // Keras 3.15 (checked): 5 batches, steps_per_epoch=3, 3 epochs → 3, then the 2 left (the
    // data ran out: Keras's warning), then a new pass of 3.
    let mut m = mlp(1);
    let counter = BatchCounter::default();
    let h = m
        .fit_dataset(&ds)
        .steps_per_epoch(3)
        .epochs(3)
        .callback(counter.clone())
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(*counter.0.lock().unwrap(), vec![3, 2, 3]);
    assert_eq!(h.history["loss"].len(), 3);
    // The same over a dataset of unknown size.
    let mut m = mlp(1);
    let counter = BatchCounter::default();
    m.fit_dataset(&ds.filter(|_| Ok(true)))
        .steps_per_epoch(3)
        .epochs(3)
        .callback(counter.clone())
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(*counter.0.lock().unwrap(), vec![3, 2, 3]);
}

#[test]
fn unknown_size_is_counted_in_the_first_epoch() {
    let (x, y) = toy(40);
    let ds = Dataset::from_tensor_slices((x, y))
        .unwrap()
        .batch(8, false)
        .filter(|_| Ok(true));
    let mut m = mlp(1);
    let counter = BatchCounter::default();
    let h = m
        .fit_dataset(&ds)
        .epochs(2)
        .callback(counter.clone())
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(*counter.0.lock().unwrap(), vec![5, 5]);
    assert!(!h.params.contains_key("steps"));
    // The progress bar of an unknown total prints Keras's `1/Unknown`, then learns the total.
    let buf = Arc::new(Mutex::new(Vec::new()));
    struct W(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for W {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut p = Progbar::to_writer(None, 1, Box::new(W(buf.clone())));
    p.update(1, &[], false);
    p.set_target(Some(5));
    p.update(5, &[], true);
    let s = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    assert!(s.contains("      1/Unknown"), "{s:?}");
    assert!(
        s.contains("5/5\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━"),
        "{s:?}"
    );
}

#[test]
fn each_epoch_reshuffles_and_the_global_seed_makes_it_reproducible() {
    let order = |ds: &Dataset| -> Vec<i64> {
        ds.iter()
            .map(|e| e.unwrap().tensor().unwrap().item::<i64>().unwrap())
            .collect()
    };
    // TF's rule: after set_seed, an op seed of None is deterministic.
    set_random_seed(21);
    let a = Dataset::range(50).shuffle(50, None, true);
    set_random_seed(21);
    let b = Dataset::range(50).shuffle(50, None, true);
    let (a1, a2) = (order(&a), order(&a));
    assert_eq!(a1, order(&b));
    assert_eq!(a2, order(&b));
    assert_ne!(a1, a2, "each pass reshuffles");
    assert_ne!(a1, (0..50).collect::<Vec<_>>());

    // fit iterates the dataset afresh every epoch: two shuffled epochs equal two fits of one
    // epoch each over the two passes' orders.
    let (x, y) = toy(16);
    let ds = Dataset::from_tensor_slices((x, y))
        .unwrap()
        .shuffle(16, Some(3), true)
        .batch(4, false);
    let mut m = mlp(8);
    m.fit_dataset(&ds).epochs(2).verbose(0).run().unwrap();
    let same = Dataset::from_tensor_slices(toy(16))
        .unwrap()
        .shuffle(16, Some(3), true)
        .batch(4, false);
    let passes: Vec<Element> = same
        .collect()
        .unwrap()
        .into_iter()
        .chain(same.collect().unwrap())
        .collect();
    let mut r = mlp(8);
    r.fit_dataset(&Dataset::from_iter(passes))
        .verbose(0)
        .run()
        .unwrap();
    assert_eq!(bits(&m), bits(&r));
}

#[test]
fn dataset_errors_name_the_model_and_the_problem() {
    let (x, y) = toy(16);
    let ds = Dataset::from_tensor_slices((x.clone(), y.clone()))
        .unwrap()
        .batch(4, false);
    let mut m = mlp(1);
    m.set_name("regressor");
    let err = |r: ferroflow_core::Result<History>| r.unwrap_err().to_string();
    let e = err(m.fit_dataset(&ds).validation_split(0.2).verbose(0).run());
    assert!(
        e.contains("validation_split") && e.contains("regressor"),
        "{e}"
    );
    let e = err(m.fit_dataset(&ds).batch_size(4).verbose(0).run());
    assert!(e.contains("batch_size"), "{e}");
    let e = err(m
        .fit_dataset(&ds)
        .sample_weight(&ops::ones(&[16], DType::F32))
        .verbose(0)
        .run());
    assert!(e.contains("sample_weight"), "{e}");
    let e = err(m
        .fit_dataset(&ds)
        .validation_dataset(&ds)
        .validation_sample_weight(&ops::ones(&[16], DType::F32))
        .verbose(0)
        .run());
    assert!(e.contains("validation_sample_weight"), "{e}");
    // Infinite without steps: fit, evaluate and predict.
    let inf = ds.repeat(None);
    let e = err(m.fit_dataset(&inf).verbose(0).run());
    assert!(
        e.contains("infinite") && e.contains("steps_per_epoch"),
        "{e}"
    );
    let e = m
        .evaluate_dataset(&inf)
        .verbose(0)
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains("infinite") && e.contains("steps"), "{e}");
    let e = m
        .predict_dataset(&inf)
        .verbose(0)
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains("infinite"), "{e}");
    // Elements of the wrong structure.
    let four = Dataset::from_tensors(Element::Tuple(vec![
        x.clone().into(),
        y.clone().into(),
        y.clone().into(),
        y.clone().into(),
    ]));
    let e = err(m.fit_dataset(&four).verbose(0).run());
    assert!(
        e.contains("regressor") && e.contains("(x, y, sample_weight)") && e.contains("4 parts"),
        "{e}"
    );
    let xs = Dataset::from_tensor_slices(x.clone())
        .unwrap()
        .batch(4, false);
    let e = err(m.fit_dataset(&xs).verbose(0).run());
    assert!(e.contains("x alone"), "{e}");
    // Wrong shapes name the model and both shapes.
    let wide = ops::zeros(&[16, 3], DType::F32);
    let ds3 = Dataset::from_tensor_slices((wide, y.clone()))
        .unwrap()
        .batch(4, false);
    match m.fit_dataset(&ds3).verbose(0).run().unwrap_err() {
        Error::Shape { op, msg, .. } => {
            assert_eq!(op, "regressor");
            assert!(msg.contains("(None, 2)") && msg.contains("(4, 3)"), "{msg}");
        }
        other => panic!("{other}"),
    }
    // Inputs and targets of different batch sizes.
    let short = Dataset::from_tensors((x.clone(), ops::slice(&y, &[0, 0], &[8, 1]).unwrap()));
    let e = err(m.fit_dataset(&short).verbose(0).run());
    assert!(e.contains("cardinality") && e.contains("regressor"), "{e}");
    // Empty data.
    let e = err(m.fit_dataset(&ds.take(0)).verbose(0).run());
    assert!(e.contains("no batches"), "{e}");
    // steps_per_epoch = 0.
    let e = err(m.fit_dataset(&ds).steps_per_epoch(0).verbose(0).run());
    assert!(e.contains("steps_per_epoch must be positive"), "{e}");
}
