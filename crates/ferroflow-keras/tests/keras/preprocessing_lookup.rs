//! Normalization, CategoryEncoding, IntegerLookup, StringLookup, TextVectorization.
//!
//! Expected values named `keras: <key>` come from real Keras 3.15.1 / TF 2.21: the script
//! `fixtures/preprocessing_lookup.py` printed them into `fixtures/preprocessing_lookup.txt`
//! (`<key> = <json>`). The others are hand computations or f64 reference loops.

use std::sync::Arc;

use ferroflow_core::{DType, Tensor};
use ferroflow_data::{Dataset, Element};
use ferroflow_keras::layers::{
    CategoryEncoding, Discretization, Hashing, Input, IntegerLookup, Layer, LayerHandle,
    Normalization, Split, Standardize, StringLookup, TextVectorization,
};
use ferroflow_keras::Sequential;

fn f32s(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape).unwrap()
}

fn i64s(v: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: lengths ({got:?} vs {want:?})"
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------------------------------------------------
// Normalization

const X: [f64; 12] = [1.0, 2.0, 4.0, 3.0, 2.0, 10.0, 5.0, 2.0, -2.0, 0.5, 2.0, 1.0];

#[test]
fn normalization_adapt_matches_keras() {
    let x = f32s(&X, &[4, 3]);
    let mut n = Normalization::new();
    n.adapt(&x).unwrap();
    // keras: norm_mean, norm_var
    close(
        &n.mean().unwrap().to_f64_vec(),
        &[2.375, 2.0, 3.25],
        1e-7,
        "mean",
    );
    close(
        &n.variance().unwrap().to_f64_vec(),
        &[3.171875, 0.0, 19.6875],
        1e-7,
        "var",
    );
    // keras: norm_weights = ["mean", "variance", "count"], norm_count = 0 (int64), norm_params = 7
    let names: Vec<String> = n.weights().iter().map(|w| w.name().to_string()).collect();
    assert!(
        names[0].ends_with("/mean")
            && names[1].ends_with("/variance")
            && names[2].ends_with("/count"),
        "{names:?}"
    );
    assert_eq!(n.weights()[2].value().dtype(), DType::I64);
    assert_eq!(n.weights()[2].value().to_vec::<i64>().unwrap(), vec![0]);
    assert_eq!(n.count_params(), 7);
    assert!(n.trainable_weights().is_empty());
    let y = LayerHandle::new(n).call(&x, false).unwrap();
    // keras: norm_out
    let want = [
        -0.7720486521720886,
        0.0,
        0.16903084516525269,
        0.35093119740486145,
        0.0,
        1.521277666091919,
        1.4739110469818115,
        0.0,
        -1.1832159757614136,
        -1.0527936220169067,
        0.0,
        -0.5070925354957581,
    ];
    close(&y.to_f64_vec(), &want, 1e-6, "out");
    // hand check of the zero-variance column: (2 - 2) / max(0, 1e-7) = 0
}

#[test]
fn normalization_reference_loop() {
    // f64 reference: population statistics per column, (x - m) / max(sqrt(v), 1e-7)
    let x = f32s(&X, &[4, 3]);
    let mut n = Normalization::new();
    n.adapt(&x).unwrap();
    let y = LayerHandle::new(n).call(&x, false).unwrap().to_f64_vec();
    for j in 0..3 {
        let col: Vec<f64> = (0..4).map(|i| X[i * 3 + j]).collect();
        let m = col.iter().sum::<f64>() / 4.0;
        let v = col.iter().map(|c| (c - m) * (c - m)).sum::<f64>() / 4.0;
        for i in 0..4 {
            let want = (X[i * 3 + j] - m) / v.sqrt().max(1e-7);
            assert!((y[i * 3 + j] - want).abs() < 1e-5, "({i},{j})");
        }
    }
}

#[test]
fn normalization_adapt_dataset_combines_batches() {
    let ds = Dataset::from_tensor_slices(f32s(&X, &[4, 3]))
        .unwrap()
        .batch(3, false);
    let mut n = Normalization::new();
    n.adapt_dataset(&ds).unwrap();
    // keras: norm_ds_mean, norm_ds_var (adapt on Dataset.from_tensor_slices(x).batch(3))
    close(
        &n.mean().unwrap().to_f64_vec(),
        &[2.375, 2.0, 3.25],
        1e-6,
        "mean",
    );
    close(
        &n.variance().unwrap().to_f64_vec(),
        &[3.171875, 0.0, 19.6875],
        1e-6,
        "var",
    );
    // unbatched rows (rank-1 elements) give the same statistics
    let rows = Dataset::from_tensor_slices(f32s(&X, &[4, 3])).unwrap();
    let mut n2 = Normalization::new();
    n2.adapt_dataset(&rows).unwrap();
    close(
        &n2.variance().unwrap().to_f64_vec(),
        &[3.171875, 0.0, 19.6875],
        1e-6,
        "rows var",
    );
    // (x, y) tuples: x is used
    let xy = Dataset::from_tensor_slices(Element::Tuple(vec![
        Element::Tensor(f32s(&X, &[4, 3])),
        Element::Tensor(f32s(&[0.0; 4], &[4])),
    ]))
    .unwrap()
    .batch(2, false);
    let mut n3 = Normalization::new();
    n3.adapt_dataset(&xy).unwrap();
    close(
        &n3.mean().unwrap().to_f64_vec(),
        &[2.375, 2.0, 3.25],
        1e-6,
        "xy mean",
    );
}

#[test]
fn normalization_axis_none_and_axis1() {
    let x = f32s(&X, &[4, 3]);
    let mut n = Normalization::new().axis(None);
    n.adapt(&x).unwrap();
    // keras: norm_none_mean, norm_none_var, norm_none_out
    close(
        &n.mean().unwrap().to_f64_vec(),
        &[2.5416667461395264],
        1e-6,
        "mean",
    );
    close(
        &n.variance().unwrap().to_f64_vec(),
        &[7.894097805023193],
        1e-6,
        "var",
    );
    assert_eq!(n.count_params(), 3);
    let y = LayerHandle::new(n)
        .call(&f32s(&X[..3], &[1, 3]), false)
        .unwrap();
    close(
        &y.to_f64_vec(),
        &[
            -0.5487053990364075,
            -0.19278840720653534,
            0.5190455913543701,
        ],
        1e-6,
        "out",
    );
    // keras: norm_axis1_mean / var on arange(24).reshape(2, 3, 4) ** 1.5 with axis=1
    let x3: Vec<f64> = (0..24).map(|i| (i as f64).powf(1.5)).collect();
    let mut n = Normalization::new().axis(Some(&[1]));
    n.adapt(&f32s(&x3, &[2, 3, 4])).unwrap();
    close(
        &n.mean().unwrap().to_f64_vec(),
        &[25.992990493774414, 43.209617614746094, 64.61289978027344],
        1e-6,
        "axis1 mean",
    );
    close(
        &n.variance().unwrap().to_f64_vec(),
        &[584.364501953125, 938.9288330078125, 1281.1739501953125],
        1e-5,
        "axis1 var",
    );
}

#[test]
fn normalization_given_stats_and_invert() {
    let x = f32s(&[3.0, 5.0, 0.0], &[1, 3]);
    let n = Normalization::new()
        .mean_variance(&[1.0, 2.0, 3.0], &[3], &[4.0, 0.0, 9.0], &[3])
        .unwrap();
    let n = LayerHandle::new(n);
    // keras: norm_given_out = [[1.0, 30000000.0, -1.0]] (variance 0 → divide by epsilon 1e-7)
    close(
        &n.call(&x, false).unwrap().to_f64_vec(),
        &[1.0, 3e7, -1.0],
        1e-6,
        "given",
    );
    assert_eq!(n.lock().count_params(), 0); // keras: norm_given_params = 0
    let inv = Normalization::new()
        .mean_variance(&[1.0, 2.0, 3.0], &[3], &[4.0, 0.0, 9.0], &[3])
        .unwrap()
        .invert(true);
    // keras: norm_invert_out = [[7.0, 2.000000476837158, 3.0]]
    let y = LayerHandle::new(inv).call(&x, false).unwrap();
    close(
        &y.to_f64_vec(),
        &[7.0, 2.000000476837158, 3.0],
        1e-7,
        "invert",
    );
    // scalar statistics broadcast
    let s = Normalization::new()
        .mean_variance(&[1.0], &[], &[4.0], &[])
        .unwrap();
    let y = LayerHandle::new(s).call(&x, false).unwrap();
    close(&y.to_f64_vec(), &[1.0, 2.0, -0.5], 1e-7, "scalar");
}

#[test]
fn normalization_in_model_counts_params_as_keras() {
    let mut n = Normalization::new();
    n.adapt(&f32s(&X, &[4, 3])).unwrap();
    let mut m = Sequential::new();
    m.add(Input::new(&[3])).unwrap();
    m.add(n).unwrap();
    // keras: norm_adapt_params = 7
    assert_eq!(m.count_params(), 7);
    let y = m.predict_on_batch(f32s(&X, &[4, 3])).unwrap().remove(0);
    assert!(
        m.summary_string(None).contains("Non-trainable params: 7"),
        "{}",
        m.summary_string(None)
    );
    assert!((y.to_f64_vec()[0] - -0.7720486521720886).abs() < 1e-6);
}

#[test]
fn normalization_errors() {
    let e = Normalization::new()
        .mean_variance(&[1.0, 2.0], &[2], &[1.0], &[1])
        .err()
        .unwrap();
    assert!(e.to_string().contains("same shape"), "{e}");
    let mut given = Normalization::new()
        .mean_variance(&[0.0], &[], &[1.0], &[])
        .unwrap();
    assert!(given.adapt(&f32s(&X, &[4, 3])).is_err());
    let mut n = Normalization::new().named("norm_x");
    n.adapt(&f32s(&X, &[4, 3])).unwrap();
    let e = n.adapt(&f32s(&X, &[3, 4])).unwrap_err();
    assert!(
        e.to_string().contains("norm_x") && e.to_string().contains("incompatible"),
        "{e}"
    );
    let mut bad_axis = Normalization::new().axis(Some(&[3]));
    assert!(bad_axis.adapt(&f32s(&X, &[4, 3])).is_err());
    let empty = Dataset::from_tensor_slices(f32s(&[], &[0, 3]))
        .unwrap()
        .batch(2, false);
    assert!(Normalization::new().adapt_dataset(&empty).is_err());
}

// ------------------------------------------------------------------------------------------
// CategoryEncoding

fn encode(layer: CategoryEncoding, x: Tensor) -> (Vec<f64>, Vec<usize>) {
    let y = LayerHandle::new(layer).call(&x, false).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    (y.to_f64_vec(), y.shape().to_vec())
}

#[test]
fn category_encoding_matches_keras() {
    // keras: ce_onehot_rank1 — rank-1 (batch,) → (batch, num_tokens)
    let (v, s) = encode(
        CategoryEncoding::new(4).output_mode("one_hot").unwrap(),
        i64s(&[3, 2, 0, 1], &[4]),
    );
    assert_eq!(s, [4, 4]);
    assert_eq!(
        v,
        [0., 0., 0., 1., 0., 0., 1., 0., 1., 0., 0., 0., 0., 1., 0., 0.]
    );
    // keras: ce_onehot_col — (batch, 1) → (batch, num_tokens)
    let (v, s) = encode(
        CategoryEncoding::new(4).output_mode("one_hot").unwrap(),
        i64s(&[3, 2], &[2, 1]),
    );
    assert_eq!(s, [2, 4]);
    assert_eq!(v, [0., 0., 0., 1., 0., 0., 1., 0.]);
    // keras: ce_onehot_rank2 — (2, 2) → (2, 2, 3)
    let (v, s) = encode(
        CategoryEncoding::new(3).output_mode("one_hot").unwrap(),
        i64s(&[0, 2, 1, 1], &[2, 2]),
    );
    assert_eq!(s, [2, 2, 3]);
    assert_eq!(v, [1., 0., 0., 0., 0., 1., 0., 1., 0., 0., 1., 0.]);
    let x = i64s(&[0, 1, 0, 0, 1, 2, 3, 1], &[4, 2]);
    // keras: ce_multihot
    let (v, s) = encode(CategoryEncoding::new(4), x.clone());
    assert_eq!(s, [4, 4]);
    assert_eq!(
        v,
        [1., 1., 0., 0., 1., 0., 0., 0., 0., 1., 1., 0., 0., 1., 0., 1.]
    );
    // keras: ce_count
    let (v, _) = encode(
        CategoryEncoding::new(4).output_mode("count").unwrap(),
        x.clone(),
    );
    assert_eq!(
        v,
        [1., 1., 0., 0., 2., 0., 0., 0., 0., 1., 1., 0., 0., 1., 0., 1.]
    );
    // keras: ce_multihot_rank1 — one sample
    let (v, s) = encode(CategoryEncoding::new(4), i64s(&[0, 1, 1], &[3]));
    assert_eq!(s, [4]);
    assert_eq!(v, [1., 1., 0., 0.]);
    // keras: ce_count_weights
    let ce = CategoryEncoding::new(4).output_mode("count").unwrap();
    let w = f32s(&[0.1, 0.2, 0.1, 0.1, 0.2, 0.3, 0.4, 0.2], &[4, 2]);
    let y = ce.call_with_count_weights(&x, &w).unwrap();
    let want = [
        0.1, 0.2, 0., 0., 0.2, 0., 0., 0., 0., 0.2, 0.3, 0., 0., 0.2, 0., 0.4,
    ];
    close(&y.to_f64_vec(), &want, 1e-7, "count_weights");
    // int32 and uint8 inputs
    let (v, _) = encode(
        CategoryEncoding::new(3),
        Tensor::from_vec(vec![2i32, 0], &[1, 2]).unwrap(),
    );
    assert_eq!(v, [1., 0., 1.]);
    let (v, _) = encode(
        CategoryEncoding::new(3),
        Tensor::from_vec(vec![1u8], &[1, 1]).unwrap(),
    );
    assert_eq!(v, [0., 1., 0.]);
}

#[test]
fn category_encoding_out_of_range_as_keras() {
    // keras: ce_oob_one_hot on [[0, 3], [-1, 1]] with num_tokens=3: zero rows, no error
    let (v, s) = encode(
        CategoryEncoding::new(3).output_mode("one_hot").unwrap(),
        i64s(&[0, 3, -1, 1], &[2, 2]),
    );
    assert_eq!(s, [2, 2, 3]);
    assert_eq!(v, [1., 0., 0., 0., 0., 0., 0., 0., 0., 0., 1., 0.]);
    // multi_hot/count: a negative id is an error naming the layer (keras: InvalidArgumentError);
    // an id ≥ num_tokens is dropped (keras probe: [[0, 3]] → [[1, 0, 0]])
    for mode in ["multi_hot", "count"] {
        let l = LayerHandle::new(
            CategoryEncoding::new(3)
                .output_mode(mode)
                .unwrap()
                .named("cat_enc"),
        );
        let e = l.call(&i64s(&[-1, 1], &[1, 2]), false).unwrap_err();
        assert!(
            e.to_string().contains("cat_enc") && e.to_string().contains("-1"),
            "{e}"
        );
        let y = l.call(&i64s(&[0, 3], &[1, 2]), false).unwrap();
        assert_eq!(y.to_f64_vec(), [1., 0., 0.]);
    }
    assert!(CategoryEncoding::new(3).output_mode("tf_idf").is_err());
    let e = LayerHandle::new(CategoryEncoding::new(3))
        .call(&f32s(&[1.5], &[1, 1]), false)
        .unwrap_err();
    assert!(e.to_string().contains("1.5"), "{e}");
    // whole-number floats (a float32 model input) are ids
    let (v, _) = encode(CategoryEncoding::new(3), f32s(&[2.0], &[1, 1]));
    assert_eq!(v, [0., 0., 1.]);
    assert!(LayerHandle::new(CategoryEncoding::new(0))
        .call(&i64s(&[0], &[1]), false)
        .is_err());
    let ce = CategoryEncoding::new(3);
    assert!(ce
        .call_with_count_weights(&i64s(&[0], &[1, 1]), &f32s(&[1.0], &[1, 1]))
        .is_err());
}

#[test]
fn category_encoding_in_model() {
    // a float32 model input holding ids → one_hot → Dense
    let mut m = Sequential::new();
    m.add(Input::new(&[1])).unwrap();
    m.add(CategoryEncoding::new(4).output_mode("one_hot").unwrap())
        .unwrap();
    let y = m
        .predict_on_batch(f32s(&[3.0, 1.0], &[2, 1]))
        .unwrap()
        .remove(0);
    assert_eq!(y.shape(), [2, 4]);
    assert_eq!(y.to_f64_vec(), [0., 0., 0., 1., 0., 1., 0., 0.]);
    assert!(
        m.summary_string(None).contains("(None, 4)"),
        "{}",
        m.summary_string(None)
    );
}

#[test]
fn category_encoding_rank3_as_keras() {
    // Keras probe (fixture comment): multi_hot reduces the last axis, count reduces axis 1
    let x = i64s(&[0, 1, 2, 2, 1, 1, 0, 0], &[2, 2, 2]);
    let (v, s) = encode(CategoryEncoding::new(3), i64s(&[0, 1, 2, 2], &[1, 2, 2]));
    assert_eq!(s, [1, 2, 3]);
    assert_eq!(v, [1., 1., 0., 0., 0., 1.]);
    let (v, s) = encode(CategoryEncoding::new(3).output_mode("count").unwrap(), x);
    assert_eq!(s, [2, 2, 3]);
    assert_eq!(v, [1., 0., 1., 0., 1., 1., 1., 1., 0., 1., 1., 0.]);
}

// ------------------------------------------------------------------------------------------
// IntegerLookup

fn int_call(layer: IntegerLookup, x: Tensor) -> Tensor {
    LayerHandle::new(layer).call(&x, false).unwrap()
}

#[test]
fn integer_lookup_adapt_matches_keras() {
    let data = i64s(&[12, 1138, 42, 42, 1000, 36, 42, 12, 7], &[3, 3]);
    let mut il = IntegerLookup::new();
    il.adapt(&data).unwrap();
    // keras: il_vocab — by frequency, ties by descending value
    assert_eq!(il.get_vocabulary(), [-1, 42, 12, 1138, 1000, 36, 7]);
    assert_eq!(il.vocabulary_size(), 7);
    assert_eq!(il.get_vocabulary_tokens(), [42, 12, 1138, 1000, 36, 7]);
    let y = int_call(il, i64s(&[12, 1138, 42, 42, 1000, 5], &[2, 3]));
    assert_eq!(y.dtype(), DType::I64);
    assert_eq!(y.to_vec::<i64>().unwrap(), [2, 3, 1, 1, 4, 0]); // keras: il_int
    let mut il = IntegerLookup::new().max_tokens(Some(3)).unwrap();
    il.adapt(&data).unwrap();
    assert_eq!(il.get_vocabulary(), [-1, 42, 12]); // keras: il_max_tokens_vocab
}

#[test]
fn integer_lookup_modes_match_keras() {
    let v = [12i64, 1138, 42];
    // keras: il_oov2 — floormod OOV buckets
    let il = IntegerLookup::new()
        .num_oov_indices(2)
        .unwrap()
        .vocabulary(&[12, 1138, 42, 1000, 36])
        .unwrap();
    assert_eq!(il.get_vocabulary(), [-1, -1, 12, 1138, 42, 1000, 36]); // keras: il_oov2_vocab
    let y = int_call(il, i64s(&[12, 5, 42, 8, 1000, -3], &[2, 3]));
    assert_eq!(y.to_vec::<i64>().unwrap(), [2, 1, 4, 0, 5, 1]);
    // keras: il_mask_vocab, il_mask
    let il = IntegerLookup::new()
        .mask_token(Some(0))
        .unwrap()
        .vocabulary(&v)
        .unwrap();
    assert_eq!(il.get_vocabulary(), [0, -1, 12, 1138, 42]);
    let y = int_call(il, i64s(&[12, 0, 42, 9, 1138, 0], &[2, 3]));
    assert_eq!(y.to_vec::<i64>().unwrap(), [2, 0, 4, 1, 3, 0]);
    let x = i64s(&[12, 12, 5, 42, 1138, 42], &[2, 3]);
    // keras: il_multihot, il_count (int64 outputs)
    let y = int_call(
        IntegerLookup::new()
            .output_mode("multi_hot")
            .unwrap()
            .vocabulary(&v)
            .unwrap(),
        x.clone(),
    );
    assert_eq!((y.dtype(), y.shape()), (DType::I64, &[2usize, 4][..]));
    assert_eq!(y.to_vec::<i64>().unwrap(), [1, 1, 0, 0, 0, 0, 1, 1]);
    let y = int_call(
        IntegerLookup::new()
            .output_mode("count")
            .unwrap()
            .vocabulary(&v)
            .unwrap(),
        x,
    );
    assert_eq!(y.to_vec::<i64>().unwrap(), [1, 2, 0, 0, 0, 0, 1, 2]);
    // keras: il_onehot
    let y = int_call(
        IntegerLookup::new()
            .output_mode("one_hot")
            .unwrap()
            .vocabulary(&v)
            .unwrap(),
        i64s(&[12, 5, 42], &[3]),
    );
    assert_eq!(y.shape(), [3, 4]);
    assert_eq!(
        y.to_vec::<i64>().unwrap(),
        [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    );
    // keras: il_mask_multihot_vocab, il_mask_multihot — the mask is dropped outside "int" mode
    let il = IntegerLookup::new()
        .mask_token(Some(0))
        .unwrap()
        .output_mode("multi_hot")
        .unwrap()
        .vocabulary(&v)
        .unwrap();
    assert_eq!(il.get_vocabulary(), [-1, 12, 1138, 42]);
    let y = int_call(il, i64s(&[12, 0, 7, 0, 0, 42], &[2, 3]));
    assert_eq!(y.to_vec::<i64>().unwrap(), [1, 1, 0, 0, 0, 0, 0, 1]);
    // keras: il_invert
    let il = IntegerLookup::new()
        .invert(true)
        .unwrap()
        .vocabulary(&v)
        .unwrap();
    let y = int_call(il, i64s(&[1, 3, 0, 2, 9, 1], &[2, 3]));
    assert_eq!(y.to_vec::<i64>().unwrap(), [12, 42, -1, 1138, -1, 12]);
    // keras: il_pad
    let il = IntegerLookup::new()
        .max_tokens(Some(8))
        .unwrap()
        .pad_to_max_tokens(true)
        .unwrap()
        .output_mode("multi_hot")
        .unwrap()
        .vocabulary(&[5, 6])
        .unwrap();
    let y = int_call(il, i64s(&[5, 7], &[1, 2]));
    assert_eq!(y.to_vec::<i64>().unwrap(), [1, 1, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn integer_lookup_tf_idf_matches_keras() {
    let data = i64s(&[12, 1138, 42, 42, 1000, 36, 42, 12, 7], &[3, 3]);
    let mut il = IntegerLookup::new().output_mode("tf_idf").unwrap();
    il.adapt(&data).unwrap();
    assert_eq!(il.get_vocabulary(), [-1, 42, 12, 1138, 1000, 36, 7]); // keras: il_tfidf_vocab
                                                                      // hand: 3 documents; df(42) = 3, df(12) = 2, others 1 → idf = ln(1 + 3 / (1 + df))
    let idf = |df: f64| (1.0 + 3.0 / (1.0 + df)).ln();
    let tok = [idf(3.0), idf(2.0), idf(1.0), idf(1.0), idf(1.0), idf(1.0)];
    let mean = tok.iter().sum::<f64>() / 6.0;
    let w = il.idf_weights().unwrap();
    close(
        &w.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        &[&[mean][..], &tok].concat(),
        1e-6,
        "idf",
    );
    let y = int_call(il, i64s(&[12, 42, 42, 99], &[1, 4]));
    assert_eq!(y.dtype(), DType::F32);
    // keras: il_tfidf
    let want = [
        0.8196544051170349,
        1.1192315816879272,
        0.6931471824645996,
        0.0,
        0.0,
        0.0,
        0.0,
    ];
    close(&y.to_f64_vec(), &want, 1e-6, "tf_idf");
    // hand: slot 1 (42) = 2 · idf(3), slot 0 = 1 · mean
    close(&y.to_f64_vec()[..2], &[mean, 2.0 * idf(3.0)], 1e-6, "hand");
}

#[test]
fn integer_lookup_adapt_dataset_and_in_model() {
    let ds = Dataset::from_tensor_slices(i64s(&[3, 3, 5, 9, 9, 9], &[6]))
        .unwrap()
        .batch(4, false);
    let mut il = IntegerLookup::new();
    il.adapt_dataset(&ds).unwrap();
    assert_eq!(il.get_vocabulary(), [-1, 9, 3, 5]);
    // the layer inside a functional pipeline: int32 input, int64 output
    let mut m = Sequential::new();
    m.add(Input::new(&[2])).unwrap();
    m.add(il).unwrap();
    let y = m
        .predict_on_batch(Tensor::from_vec(vec![9i32, 4, 5, 3], &[2, 2]).unwrap())
        .unwrap()
        .remove(0);
    assert_eq!(y.to_f64_vec(), [1.0, 0.0, 3.0, 2.0]);
}

#[test]
fn integer_lookup_output_shapes() {
    let mut l = IntegerLookup::new().output_mode("multi_hot").unwrap();
    assert_eq!(
        l.compute_output_shape(&[vec![None, Some(3)]]).unwrap(),
        [vec![None, None]]
    );
    l.set_vocabulary(&[4, 5], None).unwrap();
    assert_eq!(
        l.compute_output_shape(&[vec![None, Some(3)]]).unwrap(),
        [vec![None, Some(3)]]
    );
    let mut l = IntegerLookup::new()
        .output_mode("one_hot")
        .unwrap()
        .vocabulary(&[4, 5])
        .unwrap();
    assert_eq!(
        l.compute_output_shape(&[vec![None, Some(1)]]).unwrap(),
        [vec![None, Some(3)]]
    );
    let mut l = IntegerLookup::new();
    assert_eq!(
        l.compute_output_shape(&[vec![None, Some(2)]]).unwrap(),
        [vec![None, Some(2)]]
    );
}

#[test]
fn integer_lookup_errors() {
    // keras: il_oov0_error (InvalidArgumentError at call)
    let il = IntegerLookup::new()
        .num_oov_indices(0)
        .unwrap()
        .vocabulary(&[12, 1138, 42])
        .unwrap()
        .named("ids");
    let e = LayerHandle::new(il)
        .call(&i64s(&[12, 5], &[1, 2]), false)
        .unwrap_err();
    assert!(
        e.to_string().contains("ids") && e.to_string().contains('5'),
        "{e}"
    );
    assert!(IntegerLookup::new().max_tokens(Some(1)).is_err());
    assert!(IntegerLookup::new().pad_to_max_tokens(true).is_err());
    assert!(IntegerLookup::new()
        .output_mode("one_hot")
        .unwrap()
        .invert(true)
        .is_err());
    assert!(IntegerLookup::new().output_mode("bogus").is_err());
    assert!(IntegerLookup::new().vocabulary(&[]).is_err());
    let e = IntegerLookup::new().vocabulary(&[1, 2, 1]).err().unwrap();
    assert!(e.to_string().contains("repeated"), "{e}");
    assert!(IntegerLookup::new()
        .mask_token(Some(0))
        .unwrap()
        .vocabulary(&[1, 0])
        .is_err());
    assert!(IntegerLookup::new()
        .max_tokens(Some(3))
        .unwrap()
        .vocabulary(&[1, 2, 3])
        .is_err());
    assert!(IntegerLookup::new()
        .output_mode("tf_idf")
        .unwrap()
        .vocabulary(&[1, 2])
        .is_err());
    let mut fixed = IntegerLookup::new().vocabulary(&[1, 2]).unwrap();
    assert!(fixed.adapt(&i64s(&[1], &[1])).is_err());
    let e = LayerHandle::new(IntegerLookup::new().output_mode("multi_hot").unwrap())
        .call(&i64s(&[1], &[1, 1]), false)
        .unwrap_err();
    assert!(e.to_string().contains("vocabulary"), "{e}");
    let e = LayerHandle::new(IntegerLookup::new().vocabulary(&[1]).unwrap())
        .call(&f32s(&[1.5], &[1]), false)
        .unwrap_err();
    assert!(e.to_string().contains("integer ids"), "{e}");
}

// ------------------------------------------------------------------------------------------
// StringLookup

const SDATA: [[&str; 3]; 4] = [
    ["a", "c", "d"],
    ["d", "z", "b"],
    ["z", "d", "c"],
    ["b", "e", "e"],
];

#[test]
fn string_lookup_matches_keras() {
    let mut sl = StringLookup::new();
    sl.adapt_documents(&SDATA).unwrap();
    // keras: sl_vocab — frequency, then descending strings
    assert_eq!(
        sl.get_vocabulary(),
        strs(&["[UNK]", "d", "z", "e", "c", "b", "a"])
    );
    // keras: sl_int
    let y = sl
        .call_strings(&["a", "c", "d", "d", "z", "q"], &[2, 3])
        .unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), [6, 4, 1, 1, 2, 0]);
    // keras: sl_mask_vocab, sl_mask
    let sl = StringLookup::new()
        .mask_token(Some(""))
        .unwrap()
        .vocabulary(&["a", "b", "c", "d"])
        .unwrap();
    assert_eq!(
        sl.get_vocabulary(),
        strs(&["", "[UNK]", "a", "b", "c", "d"])
    );
    assert_eq!(
        sl.call_strings(&["a", "", "x"], &[1, 3])
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        [2, 0, 1]
    );
    // keras: sl_invert
    let inv = StringLookup::new()
        .invert(true)
        .unwrap()
        .vocabulary(&["a", "b", "c", "d"])
        .unwrap();
    assert_eq!(
        inv.call_indices(&i64s(&[1, 4, 0, 7], &[1, 4])).unwrap(),
        strs(&["a", "d", "[UNK]", "[UNK]"])
    );
    // keras: sl_vocab_with_oov — a leading OOV token is recognised as the special slot
    let sl = StringLookup::new()
        .vocabulary(&["[UNK]", "a", "b"])
        .unwrap();
    assert_eq!(sl.get_vocabulary(), strs(&["[UNK]", "a", "b"]));
    // scalar string → scalar index; one_hot of a rank-1 batch (keras probe in the fixture notes)
    assert_eq!(
        sl.call_strings(&["a"], &[]).unwrap().shape(),
        &[] as &[usize]
    );
    let oh = StringLookup::new()
        .output_mode("one_hot")
        .unwrap()
        .vocabulary(&["a", "b"])
        .unwrap();
    let y = oh.call_strings(&["a", "q"], &[2]).unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), [0, 1, 0, 1, 0, 0]);
}

#[test]
fn string_lookup_farmhash_oov_buckets_match_keras() {
    // keras: sl_oov3 — three OOV slots chosen by FarmHash64
    let sl = StringLookup::new()
        .num_oov_indices(3)
        .unwrap()
        .vocabulary(&["a", "b"])
        .unwrap();
    let y = sl
        .call_strings(&["a", "q", "hello", "zz", "b", "héllo"], &[1, 6])
        .unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), [3, 2, 1, 1, 4, 2]);
}

#[test]
fn string_lookup_tf_idf_matches_keras() {
    let mut sl = StringLookup::new().output_mode("tf_idf").unwrap();
    sl.adapt_documents(&SDATA).unwrap();
    assert_eq!(
        sl.get_vocabulary(),
        strs(&["[UNK]", "d", "z", "e", "c", "b", "a"])
    ); // keras: sl_tfidf_vocab
    let y = sl
        .call_strings(&["a", "d", "d", "q", "e", "e", "z", "c"], &[2, 4])
        .unwrap();
    // keras: sl_tfidf
    let want = [
        0.9053775668144226,
        1.3862943649291992,
        0.0,
        0.0,
        0.0,
        0.0,
        1.0986123085021973,
        0.0,
        0.0,
        0.8472978472709656,
        2.1972246170043945,
        0.8472978472709656,
        0.0,
        0.0,
    ];
    close(&y.to_f64_vec(), &want, 1e-6, "tf_idf");
    // keras: sl_given_idf — OOV slot gets the mean of the given weights
    let sl = StringLookup::new()
        .output_mode("tf_idf")
        .unwrap()
        .vocabulary_with_idf(&["a", "b"], &[0.5, 0.25])
        .unwrap();
    let y = sl.call_strings(&["a", "a", "b", "q"], &[1, 4]).unwrap();
    close(&y.to_f64_vec(), &[0.375, 1.0, 0.25], 1e-7, "given idf");
}

#[test]
fn string_lookup_text_line_tensors_and_dataset() {
    let sl = StringLookup::new().vocabulary(&["héllo", "world"]).unwrap();
    let line = Tensor::from_vec("world".as_bytes().to_vec(), &[5]).unwrap();
    let y = sl.call_line(&line).unwrap();
    assert_eq!(
        (y.shape(), y.to_vec::<i64>().unwrap()),
        (&[] as &[usize], vec![2])
    );
    // a NUL-padded batch of lines
    let mut b = "héllo".as_bytes().to_vec();
    b.extend_from_slice(b"x\0\0\0\0\0");
    let y = sl
        .call_line(&Tensor::from_vec(b, &[2, 6]).unwrap())
        .unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), [1, 0]);
    assert!(sl
        .call_line(&Tensor::from_vec(vec![0xffu8], &[1]).unwrap())
        .is_err());
    assert!(sl.call_line(&f32s(&[1.0], &[1])).is_err());
    // adapt from a dataset of lines: each line a one-token document
    let lines = ["b", "a", "b", "c", "b", "a"];
    let ds = Dataset::from_generator(
        move || {
            Box::new(lines.into_iter().map(|l: &'static str| {
                Ok(Element::Tensor(
                    Tensor::from_vec(l.as_bytes().to_vec(), &[l.len()]).unwrap(),
                ))
            }))
        },
        None,
    );
    let mut sl = StringLookup::new();
    sl.adapt_dataset(&ds).unwrap();
    assert_eq!(sl.get_vocabulary(), strs(&["[UNK]", "b", "a", "c"]));
}

#[test]
fn string_lookup_errors() {
    let e = StringLookup::new()
        .num_oov_indices(0)
        .unwrap()
        .vocabulary(&["a"])
        .unwrap()
        .named("words")
        .call_strings(&["zz"], &[1])
        .unwrap_err();
    assert!(
        e.to_string().contains("words") && e.to_string().contains("zz"),
        "{e}"
    );
    let sl = StringLookup::new()
        .num_oov_indices(2)
        .unwrap()
        .vocabulary(&["a"])
        .unwrap();
    assert!(sl.call_strings(&["a", "b"], &[3]).is_err());
    assert!(sl.call_indices(&i64s(&[0], &[1])).is_err());
    let inv = StringLookup::new().invert(true).unwrap();
    assert!(inv.clone().vocabulary(&["a", "[UNK]"]).is_err());
    assert!(inv.call_strings(&["a"], &[1]).is_err());
}

// ------------------------------------------------------------------------------------------
// TextVectorization

const TEXTS: [&str; 4] = [
    "The Brown fox; the BROWN dog!",
    "A dog's life: the end.",
    "  tabs\tand\nnewlines  here  ",
    "Ünïcode ÉCOLE café",
];

#[test]
fn text_vectorization_matches_keras() {
    let mut tv = TextVectorization::new();
    tv.adapt_texts(&TEXTS).unwrap();
    // keras: tv_vocab (ASCII-only lowercasing: "É" stays; ties by descending UTF-8 bytes)
    let vocab = strs(&[
        "",
        "[UNK]",
        "the",
        "brown",
        "Ünïcode",
        "École",
        "tabs",
        "newlines",
        "life",
        "here",
        "fox",
        "end",
        "dogs",
        "dog",
        "café",
        "and",
        "a",
    ]);
    assert_eq!(tv.get_vocabulary(), vocab);
    // keras: tv_int — padded to the longest text
    let y = tv.call_texts(&["the brown cat", "dog's, dog!!"]).unwrap();
    assert_eq!((y.dtype(), y.shape()), (DType::I64, &[2usize, 3][..]));
    assert_eq!(y.to_vec::<i64>().unwrap(), [2, 3, 1, 12, 13, 0]);
    // keras: tv_seq4
    let tv4 = tv.clone().output_sequence_length(Some(4)).unwrap();
    let y = tv4
        .call_texts(&["the brown fox the brown dog", "a"])
        .unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), [2, 3, 10, 2, 16, 0, 0, 0]);
    // keras: tv_empty
    let mut t = TextVectorization::new();
    t.adapt_texts(&["x"]).unwrap();
    assert_eq!(
        t.call_texts(&["", "x x"]).unwrap().to_vec::<i64>().unwrap(),
        [0, 0, 2, 2]
    );
}

#[test]
fn text_vectorization_modes_match_keras() {
    // keras: tv_multihot_vocab, tv_multihot
    let mut tv = TextVectorization::new()
        .max_tokens(Some(5))
        .unwrap()
        .output_mode("multi_hot")
        .unwrap();
    tv.adapt_texts(&TEXTS).unwrap();
    assert_eq!(
        tv.get_vocabulary(),
        strs(&["[UNK]", "the", "brown", "Ünïcode", "École"])
    );
    let y = tv.call_texts(&["the dog the", "cat"]).unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), [1, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
    // keras: tv_ngram_vocab, tv_ngram_count
    let mut tv = TextVectorization::new()
        .output_mode("count")
        .unwrap()
        .ngrams(2)
        .unwrap();
    tv.adapt_texts(&["a b c", "b c d", "a"]).unwrap();
    assert_eq!(
        tv.get_vocabulary(),
        strs(&["[UNK]", "c", "b c", "b", "a", "d", "c d", "a b"])
    );
    let y = tv.call_texts(&["a b c b c"]).unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), [1, 2, 2, 2, 1, 0, 0, 1]);
    // keras: tv_ngram23_vocab, tv_ngram23 — all bigrams, then trigrams
    let mut tv = TextVectorization::new().ngram_widths(&[2, 3]).unwrap();
    tv.adapt_texts(&["p q r s"]).unwrap();
    assert_eq!(
        tv.get_vocabulary(),
        strs(&["", "[UNK]", "r s", "q r s", "q r", "p q r", "p q"])
    );
    assert_eq!(
        tv.call_texts(&["p q r s"])
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        [6, 4, 2, 5, 3]
    );
    // keras: tv_char_vocab, tv_char
    let mut tv = TextVectorization::new()
        .standardize(Standardize::None)
        .split(Split::Character);
    tv.adapt_texts(&["aAb", "b!"]).unwrap();
    assert_eq!(
        tv.get_vocabulary(),
        strs(&["", "[UNK]", "b", "a", "A", "!"])
    );
    assert_eq!(
        tv.call_texts(&["Ab!c"]).unwrap().to_vec::<i64>().unwrap(),
        [4, 2, 5, 1]
    );
    // keras: tv_given_vocab, tv_given
    let tv = TextVectorization::new()
        .output_sequence_length(Some(3))
        .unwrap()
        .vocabulary(&["cat", "dog"])
        .unwrap();
    assert_eq!(tv.get_vocabulary(), strs(&["", "[UNK]", "cat", "dog"]));
    assert_eq!(
        tv.call_texts(&["Dog. CAT, bird"])
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        [3, 2, 1]
    );
    // keras: tv_strip_vocab
    let mut tv = TextVectorization::new()
        .standardize_str("strip_punctuation")
        .unwrap();
    tv.adapt_texts(&["A-b_c (d) e's x.y @z"]).unwrap();
    assert_eq!(
        tv.get_vocabulary(),
        strs(&["", "[UNK]", "z", "xy", "es", "d", "Abc"])
    );
}

#[test]
fn text_vectorization_tf_idf_matches_keras() {
    let mut tv = TextVectorization::new().output_mode("tf_idf").unwrap();
    tv.adapt_texts(&TEXTS).unwrap();
    let y = tv.call_texts(&["the the dog zebra"]).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    // keras: tv_tfidf
    let mut want = vec![0.0; 16];
    want[0] = 1.0818580389022827;
    want[1] = 1.6945956945419312;
    want[12] = 1.0986123085021973;
    close(&y.to_f64_vec(), &want, 1e-6, "tf_idf");
    // hand: 4 documents, "the" in 2 → 2 · ln(1 + 4/3); "dog" in 1 ("dog's" became "dogs")
    assert!((y.to_f64_vec()[1] - 2.0 * (1.0f64 + 4.0 / 3.0).ln()).abs() < 1e-6);
    assert!((y.to_f64_vec()[12] - (1.0f64 + 4.0 / 2.0).ln()).abs() < 1e-6);
    // keras: tv_tfidf_pad_vocab, tv_tfidf_pad
    let mut tv = TextVectorization::new()
        .max_tokens(Some(6))
        .unwrap()
        .output_mode("tf_idf")
        .unwrap()
        .pad_to_max_tokens(true)
        .unwrap();
    tv.adapt_texts(&["x y", "y z"]).unwrap();
    assert_eq!(tv.get_vocabulary(), strs(&["[UNK]", "y", "z", "x"]));
    let y = tv.call_texts(&["y y x q"]).unwrap();
    assert_eq!(y.shape(), [1, 6]);
    close(
        &y.to_f64_vec(),
        &[
            0.6323733329772949,
            1.021651268005371,
            0.0,
            0.6931471824645996,
            0.0,
            0.0,
        ],
        1e-6,
        "pad",
    );
}

#[test]
fn text_vectorization_in_a_data_pipeline() {
    let dir = std::env::temp_dir().join(format!("ff-tv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lines.txt");
    std::fs::write(&path, "the cat sat\nthe dog\r\nA cat!\n").unwrap();
    let lines = ferroflow_data::io::TextLineDataset::new([&path])
        .build()
        .unwrap();
    let mut tv = TextVectorization::new()
        .output_sequence_length(Some(3))
        .unwrap();
    tv.adapt_dataset(&lines).unwrap();
    assert_eq!(
        tv.get_vocabulary(),
        strs(&["", "[UNK]", "the", "cat", "sat", "dog", "a"])
    );
    let tv = Arc::new(tv);
    let tv2 = tv.clone();
    let vectors = lines
        .map(move |e| Ok(Element::Tensor(tv2.call_line(e.tensor()?)?)))
        .batch(3, false);
    let batch = vectors.collect().unwrap();
    let t = batch[0].tensor().unwrap();
    assert_eq!(t.shape(), [3, 3]);
    assert_eq!(t.to_vec::<i64>().unwrap(), [2, 3, 4, 2, 5, 0, 6, 3, 0]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn text_vectorization_errors() {
    assert!(TextVectorization::new().output_mode("one_hot").is_err());
    assert!(TextVectorization::new()
        .output_mode("count")
        .unwrap()
        .output_sequence_length(Some(3))
        .is_err());
    assert!(TextVectorization::new()
        .output_sequence_length(Some(3))
        .unwrap()
        .output_mode("count")
        .is_err());
    assert!(TextVectorization::new().standardize_str("upper").is_err());
    assert!(TextVectorization::new().ngrams(0).is_err());
    assert!(TextVectorization::new().max_tokens(Some(1)).is_err());
    let mut fixed = TextVectorization::new().vocabulary(&["a"]).unwrap();
    assert!(fixed.adapt_texts(&["b"]).is_err());
    let e = TextVectorization::new()
        .output_mode("multi_hot")
        .unwrap()
        .named("tv_x")
        .call_texts(&["a"])
        .unwrap_err();
    assert!(e.to_string().contains("tv_x"), "{e}");
    assert!(TextVectorization::new()
        .call_line(&i64s(&[1], &[1]))
        .is_err());
}

// ------------------------------------------------------------------------------------------
// Discretization

fn disc_data() -> Vec<f64> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/keras/fixtures/discretization_data.txt"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.parse::<f64>().unwrap())
        .collect()
}

#[test]
fn discretization_matches_keras() {
    let d = LayerHandle::new(Discretization::with_bin_boundaries(&[0.0, 1.0, 2.0]).unwrap());
    let y = d
        .call(&f32s(&[-1.5, 1.0, 0.5, 2.0, 3.0, 0.0], &[2, 3]), false)
        .unwrap();
    // keras: disc_int (int32); hand: count of boundaries <= x
    assert_eq!(y.dtype(), DType::I32);
    assert_eq!(y.to_vec::<i32>().unwrap(), [0, 2, 1, 3, 3, 1]);
    // keras: disc_onehot
    let d = Discretization::with_bin_boundaries(&[0.0, 1.0, 2.0])
        .unwrap()
        .output_mode("one_hot")
        .unwrap();
    let y = LayerHandle::new(d)
        .call(&f32s(&[-1.5, 1.0, 2.5], &[3]), false)
        .unwrap();
    assert_eq!(y.shape(), [3, 4]);
    assert_eq!(
        y.to_f64_vec(),
        [1., 0., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.]
    );
    // keras: disc_count
    let d = Discretization::with_bin_boundaries(&[0.0, 1.0, 2.0])
        .unwrap()
        .output_mode("count")
        .unwrap();
    let y = LayerHandle::new(d)
        .call(&f32s(&[-1.5, 1.0, 1.5, 2.0, 3.0, 0.0], &[2, 3]), false)
        .unwrap();
    assert_eq!(y.to_f64_vec(), [1., 0., 2., 0., 0., 1., 0., 2.]);
}

#[test]
fn discretization_adapt_matches_keras() {
    // keras: disc_adapt_small — 12 values, num_bins=4: the summary keeps every value, then
    // compress_summary(1/4) interpolates the cumulative weights (hand: the 3rd, 6th, 9th sorted
    // values 1.2, 3.1, 6.1)
    let mut d = Discretization::with_num_bins(4);
    d.adapt(&f32s(
        &[0.1, 2.5, 3.1, 7.0, 4.4, 1.2, 0.6, 9.9, 5.5, 6.1, 8.0, 2.2],
        &[4, 3],
    ))
    .unwrap();
    close(
        d.bin_boundaries().unwrap(),
        &[1.2000000476837158, 3.0999999046325684, 6.099999904632568],
        1e-7,
        "small",
    );
    // keras: disc_adapt_big — 1000 values (fixtures/discretization_data.txt), num_bins=5
    let data = disc_data();
    let mut d = Discretization::with_num_bins(5);
    d.adapt(&f32s(&data, &[1000])).unwrap();
    close(
        d.bin_boundaries().unwrap(),
        &[
            -1.5488200187683105,
            0.08559950441122055,
            1.528062105178833,
            3.31314754486084,
        ],
        1e-6,
        "big",
    );
    // keras: disc_adapt_ds — a dataset of batches of 64 of the first 300 values, epsilon 0.1
    let ds = Dataset::from_tensor_slices(f32s(&data[..300], &[300]))
        .unwrap()
        .batch(64, false);
    let mut d = Discretization::with_num_bins(3).epsilon(0.1).unwrap();
    d.adapt_dataset(&ds).unwrap();
    close(
        d.bin_boundaries().unwrap(),
        &[-0.3972279727458954, 2.31654953956604],
        1e-6,
        "dataset",
    );
}

#[test]
fn discretization_errors() {
    assert!(Discretization::with_bin_boundaries(&[1.0, 0.0]).is_err());
    let mut fixed = Discretization::with_bin_boundaries(&[0.0]).unwrap();
    assert!(fixed.adapt(&f32s(&[1.0], &[1])).is_err());
    let e = LayerHandle::new(Discretization::with_num_bins(3).named("disc"))
        .call(&f32s(&[1.0], &[1]), false)
        .unwrap_err();
    assert!(
        e.to_string().contains("disc") && e.to_string().contains("adapt"),
        "{e}"
    );
    assert!(Discretization::with_num_bins(3)
        .output_mode("tf_idf")
        .is_err());
    assert!(Discretization::with_num_bins(3).epsilon(0.0).is_err());
}

// ------------------------------------------------------------------------------------------
// FarmHash64 and Hashing

fn fp_strings() -> Vec<String> {
    let mut v = strs(&[
        "",
        "a",
        "ab",
        "abc",
        "abcd",
        "hello",
        "héllo wörld",
        "0123456789abcdef",
    ]);
    v.push("x".repeat(17));
    v.push("The quick brown fox jumps over".into());
    v.push("y".repeat(33));
    v.push("z".repeat(64));
    v.push("w".repeat(65));
    v.push((0..200).map(|i| (b'a' + (i % 26) as u8) as char).collect());
    v.push((0..129).map(|i| (b'A' + (i % 26) as u8) as char).collect());
    v
}

#[test]
fn farmhash64_matches_tensorflow() {
    use ferroflow_keras::layers::farmhash::{fingerprint64, hash_bucket_fast};
    // keras: farmhash64 (tf.fingerprint(method="farmhash64")), hash_bucket_fast_7
    let want: [u64; 15] = [
        11160318154034397263,
        12917804110809363939,
        12289600257749001502,
        2640714258260161385,
        1897425971756105985,
        13009744463427800296,
        9001971122424596627,
        6105018409752412263,
        11306081951414300581,
        16670215548606328922,
        8610735037765521150,
        294799756062990872,
        12495383604066267776,
        2725806534515858166,
        11789120591393521667,
    ];
    let buckets = [6u64, 5, 0, 1, 5, 5, 3, 1, 6, 3, 0, 1, 4, 2, 4];
    for (i, s) in fp_strings().iter().enumerate() {
        assert_eq!(
            fingerprint64(s.as_bytes()),
            want[i],
            "string {i} ({} bytes)",
            s.len()
        );
        assert_eq!(hash_bucket_fast(s.as_bytes(), 7), buckets[i], "bucket {i}");
    }
}

#[test]
fn hashing_matches_keras() {
    // keras: hashing_str
    let h = Hashing::new(5);
    let y = h.call_strings(&["a", "b", "hello", "a"], &[2, 2]).unwrap();
    assert_eq!((y.dtype(), y.shape()), (DType::I64, &[2usize, 2][..]));
    assert_eq!(y.to_vec::<i64>().unwrap(), [4, 2, 1, 4]);
    // keras: hashing_mask — the mask goes to bin 0, the rest to 1 + hash mod 4
    let h = Hashing::new(5).mask_value("");
    let y = h.call_strings(&["a", "", "hello", "zz"], &[2, 2]).unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), [4, 0, 1, 3]);
    // keras: hashing_int — integers hashed as decimal strings
    let y = LayerHandle::new(Hashing::new(4))
        .call(&i64s(&[1, 12, -3, 1234567], &[2, 2]), false)
        .unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), [1, 0, 3, 3]);
    // int32 and whole floats give the same bins
    let y = LayerHandle::new(Hashing::new(4))
        .call(&f32s(&[1.0, 12.0, -3.0, 1234567.0], &[2, 2]), false)
        .unwrap();
    assert_eq!(y.to_vec::<i64>().unwrap(), [1, 0, 3, 3]);
    // keras: hashing_onehot, hashing_multihot
    let h = Hashing::new(3).output_mode("one_hot").unwrap();
    let y = h.call_strings(&["a", "b", "c"], &[3]).unwrap();
    assert_eq!(y.shape(), [3, 3]);
    assert_eq!(y.to_f64_vec(), [1., 0., 0., 0., 1., 0., 0., 1., 0.]);
    let h = Hashing::new(3).output_mode("multi_hot").unwrap();
    let y = h.call_strings(&["a", "b", "c"], &[1, 3]).unwrap();
    assert_eq!(y.to_f64_vec(), [1., 1., 0.]);
    // a text line
    let line = Tensor::from_vec(b"hello".to_vec(), &[5]).unwrap();
    assert_eq!(
        Hashing::new(5)
            .call_line(&line)
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        [1]
    );
}

#[test]
fn hashing_errors() {
    assert!(Hashing::new(0).call_strings(&["a"], &[1]).is_err());
    assert!(Hashing::new(3).output_mode("tf_idf").is_err());
    assert!(Hashing::new(3).call_strings(&["a"], &[2]).is_err());
    let e = LayerHandle::new(Hashing::new(3).named("hash_x"))
        .call(&Tensor::from_vec(vec![true], &[1]).unwrap(), false)
        .unwrap_err();
    assert!(e.to_string().contains("hash_x"), "{e}");
}
