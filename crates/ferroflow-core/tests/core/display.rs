//! `Display` must print exactly what TensorFlow's `str(tensor)` prints.

use ferroflow_core::{ops, DType, Tensor};

#[test]
fn display_float32_matrix_on_its_own_line() {
    let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    assert_eq!(
        t.to_string(),
        "tf.Tensor(\n[[1. 2.]\n [3. 4.]], shape=(2, 2), dtype=float32)"
    );
    // Debug is the same text.
    assert_eq!(format!("{t:?}"), t.to_string());
}

#[test]
fn display_scalars() {
    assert_eq!(
        Tensor::scalar(3.0f32).to_string(),
        "tf.Tensor(3.0, shape=(), dtype=float32)"
    );
    assert_eq!(
        Tensor::scalar(3i32).to_string(),
        "tf.Tensor(3, shape=(), dtype=int32)"
    );
    assert_eq!(
        Tensor::scalar(true).to_string(),
        "tf.Tensor(True, shape=(), dtype=bool)"
    );
    assert_eq!(
        Tensor::scalar(0.1f64).to_string(),
        "tf.Tensor(0.1, shape=(), dtype=float64)"
    );
}

#[test]
fn display_vectors_of_each_dtype() {
    assert_eq!(
        Tensor::from_vec(vec![1i32, 2, 3], &[3])
            .unwrap()
            .to_string(),
        "tf.Tensor([1 2 3], shape=(3,), dtype=int32)"
    );
    assert_eq!(
        Tensor::from_vec(vec![-10i64, 200], &[2])
            .unwrap()
            .to_string(),
        "tf.Tensor([-10 200], shape=(2,), dtype=int64)"
    );
    assert_eq!(
        Tensor::from_vec(vec![0.5f64, 1.25], &[2])
            .unwrap()
            .to_string(),
        "tf.Tensor([0.5  1.25], shape=(2,), dtype=float64)"
    );
    assert_eq!(
        Tensor::from_vec(vec![true, false], &[2])
            .unwrap()
            .to_string(),
        "tf.Tensor([ True False], shape=(2,), dtype=bool)"
    );
    assert_eq!(
        Tensor::from_vec(vec![0u8, 255], &[2]).unwrap().to_string(),
        "tf.Tensor([  0 255], shape=(2,), dtype=uint8)"
    );
    let h = ops::cast(
        &Tensor::from_vec(vec![0.1f32, 1.0], &[2]).unwrap(),
        DType::F16,
    )
    .unwrap();
    assert_eq!(
        h.to_string(),
        "tf.Tensor([0.1 1. ], shape=(2,), dtype=float16)"
    );
    // bfloat16 elements print with %g and are joined unpadded (ml_dtypes).
    let b = ops::cast(
        &Tensor::from_vec(vec![1.0f32, 0.1, -2.5], &[3]).unwrap(),
        DType::BF16,
    )
    .unwrap();
    assert_eq!(
        b.to_string(),
        "tf.Tensor([1 0.100098 -2.5], shape=(3,), dtype=bfloat16)"
    );
    let e = Tensor::from_vec(Vec::<f32>::new(), &[0]).unwrap();
    assert_eq!(e.to_string(), "tf.Tensor([], shape=(0,), dtype=float32)");
}

#[test]
fn display_int_matrix_and_views() {
    let t = Tensor::from_vec(vec![1i32, 2, 3, 4, 5, 6], &[2, 3]).unwrap();
    assert_eq!(
        t.to_string(),
        "tf.Tensor(\n[[1 2 3]\n [4 5 6]], shape=(2, 3), dtype=int32)"
    );
    // A transposed (non-contiguous) view prints its logical order.
    let tt = ops::transpose(&t, &[1, 0]).unwrap();
    assert_eq!(
        tt.to_string(),
        "tf.Tensor(\n[[1 4]\n [2 5]\n [3 6]], shape=(3, 2), dtype=int32)"
    );
}

#[test]
fn display_long_tensor_is_summarised() {
    let t = Tensor::from_vec((0..2000).collect::<Vec<i32>>(), &[2000]).unwrap();
    assert_eq!(
        t.to_string(),
        "tf.Tensor([   0    1    2 ... 1997 1998 1999], shape=(2000,), dtype=int32)"
    );
    // NumPy switches to scientific notation here: over the shown elements, max / min(nonzero)
    // = 1999 > 1e3.
    let m = Tensor::from_vec((0..2000).map(|v| v as f32).collect::<Vec<_>>(), &[40, 50]).unwrap();
    assert_eq!(
        m.to_string(),
        "tf.Tensor(\n[[0.000e+00 1.000e+00 2.000e+00 ... 4.700e+01 4.800e+01 4.900e+01]\n \
         [5.000e+01 5.100e+01 5.200e+01 ... 9.700e+01 9.800e+01 9.900e+01]\n \
         [1.000e+02 1.010e+02 1.020e+02 ... 1.470e+02 1.480e+02 1.490e+02]\n \
         ...\n \
         [1.850e+03 1.851e+03 1.852e+03 ... 1.897e+03 1.898e+03 1.899e+03]\n \
         [1.900e+03 1.901e+03 1.902e+03 ... 1.947e+03 1.948e+03 1.949e+03]\n \
         [1.950e+03 1.951e+03 1.952e+03 ... 1.997e+03 1.998e+03 1.999e+03]], \
         shape=(40, 50), dtype=float32)"
    );
    // Without the wide range, fixed notation with aligned points.
    let f = Tensor::from_vec(
        (0..1001).map(|v| v as f32 / 4.0 + 1.0).collect::<Vec<_>>(),
        &[1001],
    )
    .unwrap();
    assert_eq!(
        f.to_string(),
        "tf.Tensor([  1.     1.25   1.5  ... 250.5  250.75 251.  ], shape=(1001,), dtype=float32)"
    );
}
