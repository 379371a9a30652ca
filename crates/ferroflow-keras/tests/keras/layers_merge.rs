//! Merge layers: values against plain loops, Keras's shape rules, errors, functional use.

use ferroflow_core::testing::test_values;
use ferroflow_core::{DType, Tensor};
use ferroflow_keras::layers::{
    Add, Average, Concatenate, Dense, Input, Layer, LayerHandle, Maximum, Multiply, Subtract,
};
use ferroflow_keras::Model;

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape).unwrap()
}

fn run(layer: impl Layer, inputs: &[Tensor]) -> ferroflow_core::Result<Tensor> {
    Ok(LayerHandle::new(layer).call_many(inputs, false)?.remove(0))
}

fn elementwise(layer: impl Layer, f: impl Fn(&[f64]) -> f64) {
    let shape = [2, 3, 4];
    let xs: Vec<Vec<f64>> = (0..3).map(|s| test_values(24, s, -2.0, 2.0)).collect();
    let ts: Vec<Tensor> = xs.iter().map(|v| t(v, &shape)).collect();
    let xs: Vec<Vec<f64>> = ts.iter().map(|t| t.to_f64_vec()).collect();
    let got = run(layer, &ts).unwrap();
    assert_eq!(got.shape(), &shape);
    let got = got.to_f64_vec();
    for i in 0..24 {
        let args: Vec<f64> = xs.iter().map(|x| x[i]).collect();
        let want = f(&args);
        assert!(
            (got[i] - want).abs() < 1e-5,
            "element {i}: {} vs {want}",
            got[i]
        );
    }
}

#[test]
fn elementwise_merges_of_three_inputs() {
    elementwise(Add::new(), |a| a.iter().sum());
    elementwise(Multiply::new(), |a| a.iter().product());
    elementwise(Average::new(), |a| a.iter().sum::<f64>() / 3.0);
    elementwise(Maximum::new(), |a| {
        a.iter().cloned().fold(f64::MIN, f64::max)
    });
}

#[test]
fn subtract_takes_exactly_two() {
    let a = t(&[5.0, 1.0], &[1, 2]);
    let b = t(&[2.0, 3.0], &[1, 2]);
    let y = run(Subtract::new(), &[a.clone(), b.clone()]).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![3.0, -2.0]);
    let e = run(
        Subtract::new().named("sub"),
        &[a.clone(), b.clone(), a.clone()],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sub") && e.contains("exactly 2"), "{e}");
    let e = run(Subtract::new().named("sub1"), &[a])
        .unwrap_err()
        .to_string();
    assert!(e.contains("sub1") && e.contains("exactly 2"), "{e}");
}

#[test]
fn merges_broadcast_like_keras() {
    // (2, 1, 3) + (2, 4, 3) → (2, 4, 3); (2, 3) gets an axis after the batch axis.
    let a = test_values(6, 1, -1.0, 1.0);
    let b = test_values(24, 2, -1.0, 1.0);
    let ta = t(&a, &[2, 1, 3]);
    let tb = t(&b, &[2, 4, 3]);
    let (a, b) = (ta.to_f64_vec(), tb.to_f64_vec());
    let y = run(Add::new(), &[ta, tb.clone()]).unwrap();
    assert_eq!(y.shape(), &[2, 4, 3]);
    let y = y.to_f64_vec();
    for n in 0..2 {
        for i in 0..4 {
            for j in 0..3 {
                let want = a[n * 3 + j] + b[n * 12 + i * 3 + j];
                assert!((y[n * 12 + i * 3 + j] - want).abs() < 1e-6);
            }
        }
    }
    let tc = t(&a, &[2, 3]);
    let y = run(Multiply::new(), &[tc, tb]).unwrap();
    assert_eq!(y.shape(), &[2, 4, 3]);
    let y = y.to_f64_vec();
    assert!((y[12 + 2 * 3 + 1] - a[3 + 1] * b[12 + 2 * 3 + 1]).abs() < 1e-6);
}

#[test]
fn incompatible_shapes_are_errors_naming_layer_and_shapes() {
    let a = t(&[0.0; 6], &[2, 3]);
    let b = t(&[0.0; 8], &[2, 4]);
    for (layer, name) in [
        (LayerHandle::new(Add::new().named("my_add")), "my_add"),
        (LayerHandle::new(Maximum::new().named("my_max")), "my_max"),
    ] {
        // The layer is built on the first call, from the shapes with the batch axis unknown.
        let e = layer
            .call_many(&[a.clone(), b.clone()], false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(name) && e.contains("(None, 3)") && e.contains("(None, 4)"),
            "{e}"
        );
    }
    // A built layer still rejects shapes that cannot be merged (like Keras, it has no fixed
    // input spec, so other compatible shapes are accepted).
    let built = LayerHandle::new(Add::new().named("add_c"));
    built.call_many(&[a.clone(), a.clone()], false).unwrap();
    assert!(built
        .call_many(&[a.clone(), t(&[0.0; 4], &[2, 2])], false)
        .is_err());
    built
        .call_many(&[a.clone(), t(&[0.0; 2], &[2, 1]), a.clone()], false)
        .unwrap();
    // Different batch sizes.
    let c = t(&[0.0; 9], &[3, 3]);
    let e = run(Add::new().named("add_b"), &[a, c])
        .unwrap_err()
        .to_string();
    assert!(e.contains("add_b") && e.contains("batch"), "{e}");
    // Symbolic shapes are checked when the layer is applied.
    let x = Input::new(&[3]);
    let z = Input::new(&[5]);
    let e = Average::new()
        .named("avg")
        .apply([&x, &z])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("avg") && e.contains("(None, 3)") && e.contains("(None, 5)"),
        "{e}"
    );
}

#[test]
fn elementwise_output_shapes() {
    let h = LayerHandle::new(Add::new());
    let s = h
        .compute_output_shape(&[vec![None, Some(1), Some(3)], vec![None, Some(4), Some(3)]])
        .unwrap();
    assert_eq!(s, vec![vec![None, Some(4), Some(3)]]);
    let h = LayerHandle::new(Multiply::new());
    let s = h
        .compute_output_shape(&[vec![None, None, Some(3)], vec![None, Some(4), Some(3)]])
        .unwrap();
    assert_eq!(s, vec![vec![None, None, Some(3)]]);
    let h = LayerHandle::new(Maximum::new());
    let s = h
        .compute_output_shape(&[vec![Some(8), Some(3)], vec![None, Some(3)]])
        .unwrap();
    assert_eq!(s, vec![vec![Some(8), Some(3)]]);
}

#[test]
fn concatenate_values_on_the_last_and_middle_axes() {
    let a = test_values(2 * 3 * 2, 1, -1.0, 1.0);
    let b = test_values(6, 2, -1.0, 1.0);
    let (ta, tb) = (t(&a, &[2, 3, 2]), t(&b, &[2, 3, 1]));
    let (a, b) = (ta.to_f64_vec(), tb.to_f64_vec());
    let y = run(Concatenate::new(), &[ta.clone(), tb]).unwrap();
    assert_eq!(y.shape(), &[2, 3, 3]);
    let y = y.to_f64_vec();
    for r in 0..6 {
        assert_eq!(y[r * 3], a[r * 2]);
        assert_eq!(y[r * 3 + 1], a[r * 2 + 1]);
        assert_eq!(y[r * 3 + 2], b[r]);
    }
    let c = test_values(4, 3, -1.0, 1.0);
    let tc = t(&c, &[2, 1, 2]);
    let c = tc.to_f64_vec();
    let y = run(Concatenate::new().axis(1), &[ta, tc]).unwrap();
    assert_eq!(y.shape(), &[2, 4, 2]);
    let y = y.to_f64_vec();
    for n in 0..2 {
        for i in 0..4 {
            for k in 0..2 {
                let want = if i < 3 {
                    a[n * 6 + i * 2 + k]
                } else {
                    c[n * 2 + k]
                };
                assert_eq!(y[n * 8 + i * 2 + k], want);
            }
        }
    }
}

#[test]
fn concatenate_shapes_and_errors() {
    let h = LayerHandle::new(Concatenate::new());
    let s = h
        .compute_output_shape(&[vec![None, Some(4), Some(2)], vec![None, None, Some(5)]])
        .unwrap();
    assert_eq!(s, vec![vec![None, Some(4), Some(7)]]);
    let h = LayerHandle::new(Concatenate::new());
    let s = h
        .compute_output_shape(&[vec![None, Some(2)], vec![None, None]])
        .unwrap();
    assert_eq!(s, vec![vec![None, None]]);
    // Mismatch off the axis.
    let e = LayerHandle::new(Concatenate::new().named("cat"))
        .compute_output_shape(&[vec![None, Some(3), Some(2)], vec![None, Some(4), Some(2)]])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cat") && e.contains("(None, 3, 2)") && e.contains("(None, 4, 2)"),
        "{e}"
    );
    // Concrete tensors too.
    let e = run(
        Concatenate::new().axis(1).named("cat1"),
        &[t(&[0.0; 4], &[2, 2]), t(&[0.0; 3], &[3, 1])],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("cat1") && e.contains("(2, 2)") && e.contains("(3, 1)"),
        "{e}"
    );
    // Rank mismatch and a bad axis.
    let e = run(
        Concatenate::new().named("cat2"),
        &[t(&[0.0; 4], &[2, 2]), t(&[0.0; 4], &[2, 1, 2])],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cat2") && e.contains("rank"), "{e}");
    let e = run(
        Concatenate::new().axis(5).named("cat3"),
        &[t(&[0.0; 4], &[2, 2])],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cat3") && e.contains("axis 5"), "{e}");
}

#[test]
fn merge_layers_in_a_functional_model() {
    let a = Input::named(&[4], "a_in");
    let b = Input::named(&[4], "b_in");
    let shared = LayerHandle::new(Dense::new(3).activation("relu"));
    let (xa, xb) = (shared.apply(&a).unwrap(), shared.apply(&b).unwrap());
    let merged = Concatenate::new().apply([&xa, &xb]).unwrap();
    assert_eq!(merged.shape(), &vec![None, Some(6)]);
    let summed = Add::new().apply([&xa, &xb]).unwrap();
    assert_eq!(summed.shape(), &vec![None, Some(3)]);
    let model = Model::new([&a, &b], [&merged, &summed]).unwrap();
    assert_eq!(model.count_params(), 4 * 3 + 3);
    let x1 = t(&test_values(8, 1, -1.0, 1.0), &[2, 4]);
    let x2 = t(&test_values(8, 2, -1.0, 1.0), &[2, 4]);
    let out = model.predict_on_batch([x1.clone(), x2.clone()]).unwrap();
    let ya = shared.call(&x1, false).unwrap().to_f64_vec();
    let yb = shared.call(&x2, false).unwrap().to_f64_vec();
    let (cat, sum) = (out[0].to_f64_vec(), out[1].to_f64_vec());
    assert_eq!(out[0].dtype(), DType::F32);
    for n in 0..2 {
        for j in 0..3 {
            assert_eq!(cat[n * 6 + j], ya[n * 3 + j]);
            assert_eq!(cat[n * 6 + 3 + j], yb[n * 3 + j]);
            assert!((sum[n * 3 + j] - (ya[n * 3 + j] + yb[n * 3 + j])).abs() < 1e-6);
        }
    }
}

#[test]
fn summary_of_a_model_with_concatenate_and_batch_norm() {
    use ferroflow_keras::layers::BatchNormalization;
    // keras-reference.md §2.2's functional model: two Dense branches, concat, bn.
    let a = Input::named(&[16], "a_in");
    let b = Input::named(&[16], "b_in");
    let da = Dense::new(32).named("dense_a").apply(&a).unwrap();
    let db = Dense::new(32).named("dense_b").apply(&b).unwrap();
    let cat = Concatenate::new()
        .named("concat")
        .apply([&da, &db])
        .unwrap();
    let bn = BatchNormalization::new().named("bn").apply(&cat).unwrap();
    assert_eq!(bn.shape(), &vec![None, Some(64)]);
    let model = Model::new([&a, &b], &bn).unwrap();
    assert_eq!(model.count_params(), 2 * (16 * 32 + 32) + 256);
    let s = model.summary_string(Some(112));
    let line = |needle: &str| -> String {
        s.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{s}"))
            .to_string()
    };
    let l = line("concat (Concatenate)");
    assert!(
        l.contains("(None, 64)") && l.contains(" 0 ") && l.contains("dense_a[0][0]"),
        "{l}"
    );
    let l = line("bn (BatchNormalization)");
    assert!(
        l.contains("(None, 64)") && l.contains("256") && l.contains("concat[0][0]"),
        "{l}"
    );
    assert!(s.contains(" Non-trainable params: 128 (512.00 B)"), "{s}");
    assert!(s.contains(" Trainable params: 1,216 "), "{s}");
}
