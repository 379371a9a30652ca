//! `ndarray` conversions (feature `ndarray`).
#![cfg(feature = "ndarray")]

use ferroflow_core::{ops, DType, Tensor};
use ndarray::{array, s, Array3, ArrayD, IxDyn};

#[test]
fn convert_round_trips_shapes_and_values() {
    let a = array![[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let t = Tensor::from_ndarray(a.clone());
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.dtype(), DType::F64);
    assert_eq!(
        t.to_vec::<f64>().unwrap(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    let back: ArrayD<f64> = t.to_ndarray().unwrap();
    assert_eq!(back, a.clone().into_dyn());
    let via_try = ArrayD::<f64>::try_from(&t).unwrap();
    assert_eq!(via_try.shape(), &[2, 3]);
    // A non-standard-layout (transposed) array and a sliced array keep their logical order.
    let tt = Tensor::from(a.t().to_owned());
    assert_eq!(tt.shape(), &[3, 2]);
    assert_eq!(
        tt.to_vec::<f64>().unwrap(),
        vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    );
    let sl = a.slice_move(s![1.., 1..]);
    assert_eq!(Tensor::from(sl).to_vec::<f64>().unwrap(), vec![5.0, 6.0]);
    // Integer, bool, scalar and empty arrays.
    let i = Array3::<i32>::from_shape_fn((2, 1, 2), |(x, _, z)| (x * 2 + z) as i32);
    assert_eq!(Tensor::from(i).to_vec::<i32>().unwrap(), vec![0, 1, 2, 3]);
    let b = Tensor::from_ndarray(ArrayD::from_elem(IxDyn(&[]), true));
    assert_eq!(b.shape(), &[] as &[usize]);
    assert!(b.to_ndarray::<bool>().unwrap()[IxDyn(&[])]);
    let e = Tensor::from_ndarray(ArrayD::<f32>::zeros(IxDyn(&[0, 3])));
    assert_eq!(e.shape(), &[0, 3]);
    // A strided tensor view converts in logical order; a wrong dtype is an error.
    let v = ops::transpose(&t, &[1, 0]).unwrap();
    assert_eq!(
        v.to_ndarray::<f64>().unwrap(),
        array![[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]].into_dyn()
    );
    assert!(t.to_ndarray::<f32>().is_err());
}
