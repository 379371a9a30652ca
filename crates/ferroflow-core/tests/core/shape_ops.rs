use ferroflow_core::op::{Op, TensorSpec};
use ferroflow_core::ops::{self, PadMode, Split, StridedSlice};
use ferroflow_core::testing::{check_gradients, test_tensor};
use ferroflow_core::{DType, Error, Tensor};
use proptest::prelude::*;

fn nd(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|v| v as f64).collect::<Vec<_>>(), shape).unwrap()
}

fn v(t: &Tensor) -> Vec<f64> {
    t.to_f64_vec()
}

fn i32s(d: &[i32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(d.to_vec(), shape).unwrap()
}

const ALL_DTYPES: [DType; 8] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::Bool,
];

fn err_text(r: Result<impl std::fmt::Debug, Error>) -> String {
    r.unwrap_err().to_string()
}

// ---------------------------------------------------------------- join

#[test]
fn concat_values_and_errors() {
    let a = nd(&[2, 2]);
    let b = Tensor::from_vec(vec![10.0, 11.0, 12.0, 13.0, 14.0, 15.0], &[2, 3]).unwrap();
    let c = ops::concat(&[&a, &b], -1).unwrap();
    assert_eq!(c.shape(), &[2, 5]);
    assert_eq!(
        v(&c),
        vec![0.0, 1.0, 10.0, 11.0, 12.0, 2.0, 3.0, 13.0, 14.0, 15.0]
    );
    let c0 = ops::concat(&[&a, &a, &a], 0).unwrap();
    assert_eq!(c0.shape(), &[6, 2]);
    assert_eq!(v(&c0)[4..8], [0.0, 1.0, 2.0, 3.0]);
    // a transposed (non-contiguous) input
    let at = ops::transpose(&a, &[]).unwrap();
    assert_eq!(
        v(&ops::concat(&[&at, &a], 1).unwrap()),
        vec![0.0, 2.0, 0.0, 1.0, 1.0, 3.0, 2.0, 3.0]
    );
    let e = err_text(ops::concat(&[&a, &nd(&[3, 3])], 0));
    assert!(
        e.contains("ConcatV2") && e.contains("(2, 2)") && e.contains("(3, 3)"),
        "{e}"
    );
    let e = err_text(ops::concat(&[&a, &a], 2));
    assert!(e.contains("ConcatV2") && e.contains("axis 2"), "{e}");
    assert!(ops::concat(&[&a, &ops::cast(&a, DType::F32).unwrap()], 0).is_err());
    assert!(ops::concat(&[], 0).is_err());
}

#[test]
fn stack_unstack_values() {
    let a = i32s(&[1, 2, 3], &[3]);
    let b = i32s(&[4, 5, 6], &[3]);
    let s = ops::stack(&[&a, &b], 0).unwrap();
    assert_eq!(s.shape(), &[2, 3]);
    assert_eq!(s.to_vec::<i32>().unwrap(), vec![1, 2, 3, 4, 5, 6]);
    let s = ops::stack(&[&a, &b], -1).unwrap();
    assert_eq!(s.shape(), &[3, 2]);
    assert_eq!(s.to_vec::<i32>().unwrap(), vec![1, 4, 2, 5, 3, 6]);
    assert!(ops::stack(&[&a, &b], 2).is_err());
    assert!(ops::stack(&[&a, &i32s(&[1, 2], &[2])], 0).is_err());
    let x = nd(&[2, 3, 2]);
    let parts = ops::unstack(&x, 1).unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[2].shape(), &[2, 2]);
    assert_eq!(v(&parts[2]), vec![4.0, 5.0, 10.0, 11.0]);
    let parts = ops::unstack(&x, -1).unwrap();
    assert_eq!(v(&parts[1]), vec![1.0, 3.0, 5.0, 7.0, 9.0, 11.0]);
    assert!(ops::unstack(&x, 3).is_err());
}

#[test]
fn split_values_and_errors() {
    let x = nd(&[2, 6]);
    let p = ops::split(&x, Split::Num(3), 1).unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(v(&p[1]), vec![2.0, 3.0, 8.0, 9.0]);
    let p = ops::split(&x, Split::Sizes(vec![1, -1, 0, 2]), -1).unwrap();
    assert_eq!(
        p.iter().map(|t| t.shape()[1]).collect::<Vec<_>>(),
        vec![1, 3, 0, 2]
    );
    assert_eq!(v(&p[1]), vec![1.0, 2.0, 3.0, 7.0, 8.0, 9.0]);
    assert_eq!(v(&p[3]), vec![4.0, 5.0, 10.0, 11.0]);
    assert!(ops::split(&x, Split::Num(4), 1).is_err());
    assert!(ops::split(&x, Split::Sizes(vec![1, 2]), 1).is_err());
    assert!(ops::split(&x, Split::Sizes(vec![-1, -1]), 1).is_err());
    assert!(ops::split(&x, Split::Sizes(vec![4, 4, -1]), 1).is_err());
}

#[test]
fn tile_values() {
    let x = Tensor::from_vec(vec![1i64, 2, 3, 4], &[2, 2]).unwrap();
    let t = ops::tile(&x, &[2, 3]).unwrap();
    assert_eq!(t.shape(), &[4, 6]);
    let row0 = vec![1, 2, 1, 2, 1, 2];
    let row1 = vec![3, 4, 3, 4, 3, 4];
    let want: Vec<i64> = [&row0, &row1, &row0, &row1]
        .iter()
        .flat_map(|r| r.iter().copied())
        .collect();
    assert_eq!(t.to_vec::<i64>().unwrap(), want);
    assert_eq!(ops::tile(&x, &[0, 1]).unwrap().shape(), &[0, 2]);
    assert!(ops::tile(&x, &[2]).is_err());
}

// ---------------------------------------------------------------- slice

#[test]
fn slice_values_and_errors() {
    let x = nd(&[3, 4]);
    let s = ops::slice(&x, &[1, 1], &[2, 2]).unwrap();
    assert_eq!(v(&s), vec![5.0, 6.0, 9.0, 10.0]);
    let s = ops::slice(&x, &[2, 0], &[-1, -1]).unwrap();
    assert_eq!(s.shape(), &[1, 4]);
    assert_eq!(v(&s), vec![8.0, 9.0, 10.0, 11.0]);
    let e = err_text(ops::slice(&x, &[2, 0], &[2, 1]));
    assert!(e.contains("Slice") && e.contains("(3, 4)"), "{e}");
    assert!(ops::slice(&x, &[0], &[1]).is_err());
    assert!(ops::slice(&x, &[0, 0], &[-2, 1]).is_err());
}

/// Reference for a 1-D Python slice `[b:e:s]` over `0..n` with open bounds as `None`.
fn py_slice(n: isize, b: Option<isize>, e: Option<isize>, s: isize) -> Vec<isize> {
    let norm = |x: isize| if x < 0 { x + n } else { x };
    let mut out = vec![];
    if s > 0 {
        let mut i = b.map(norm).unwrap_or(0).max(0);
        let end = e.map(norm).unwrap_or(n).min(n);
        while i < end {
            out.push(i);
            i += s;
        }
    } else {
        let mut i = b.map(norm).unwrap_or(n - 1).min(n - 1);
        let end = e.map(norm).unwrap_or(-1).max(-1);
        while i > end {
            out.push(i);
            i += s;
        }
    }
    out
}

#[test]
fn strided_slice_values() {
    let x = nd(&[10]);
    let s = ops::strided_slice(&x, &StridedSlice::new().range(1, 5, 2)).unwrap();
    assert_eq!(v(&s), vec![1.0, 3.0]);
    let s = ops::strided_slice(&x, &StridedSlice::new().step(-3)).unwrap();
    assert_eq!(v(&s), vec![9.0, 6.0, 3.0, 0.0]);
    let s = ops::strided_slice(&x, &StridedSlice::new().range(-2, 2, -2)).unwrap();
    assert_eq!(v(&s), vec![8.0, 6.0, 4.0]);
    let s = ops::strided_slice(&x, &StridedSlice::new().range(3, 100, 4)).unwrap();
    assert_eq!(v(&s), vec![3.0, 7.0]);
    let s = ops::strided_slice(&x, &StridedSlice::new().range(5, 2, 1)).unwrap();
    assert_eq!(s.shape(), &[0]);
    // every small combination against the plain-loop reference
    let opts = [
        None,
        Some(-12),
        Some(-3),
        Some(0),
        Some(2),
        Some(7),
        Some(12),
    ];
    for b in opts {
        for e in opts {
            for st in [-3, -1, 1, 2] {
                let s = ops::strided_slice(&x, &StridedSlice::new().span(b, e, st)).unwrap();
                let want: Vec<f64> = py_slice(10, b, e, st).iter().map(|&i| i as f64).collect();
                assert_eq!(v(&s), want, "[{b:?}:{e:?}:{st}]");
            }
        }
    }
    // x[-1, :, 1::2] on a (2, 3, 4) tensor
    let y = nd(&[2, 3, 4]);
    let s = ops::strided_slice(
        &y,
        &StridedSlice::new().index(-1).all().span(Some(1), None, 2),
    )
    .unwrap();
    assert_eq!(s.shape(), &[3, 2]);
    assert_eq!(v(&s), vec![13.0, 15.0, 17.0, 19.0, 21.0, 23.0]);
    // y[..., 0], y[tf.newaxis, 0, ::-1]
    let s = ops::strided_slice(&y, &StridedSlice::new().ellipsis().index(0)).unwrap();
    assert_eq!(s.shape(), &[2, 3]);
    assert_eq!(v(&s), vec![0.0, 4.0, 8.0, 12.0, 16.0, 20.0]);
    let s = ops::strided_slice(&y, &StridedSlice::new().new_axis().index(0).step(-1)).unwrap();
    assert_eq!(s.shape(), &[1, 3, 4]);
    assert_eq!(v(&s)[..4], [8.0, 9.0, 10.0, 11.0]);
    // y[1, ..., tf.newaxis, 2]
    let s = ops::strided_slice(
        &y,
        &StridedSlice::new().index(1).ellipsis().new_axis().index(2),
    )
    .unwrap();
    assert_eq!(s.shape(), &[3, 1]);
    assert_eq!(v(&s), vec![14.0, 18.0, 22.0]);
    // masks: begin=[0, 1], end=[0, 3], strides=[1, 1], shrink bit 0, begin_mask bit 1 → y[0, :3]
    let spec = StridedSlice::from_masks(&[0, 1], &[0, 3], &[1, 1], 0b10, 0, 0, 0, 0b01).unwrap();
    assert_eq!(spec, StridedSlice::new().index(0).span(None, Some(3), 1));
    assert_eq!(ops::strided_slice(&y, &spec).unwrap().shape(), &[3, 4]);
    // other dtypes
    let yi = ops::cast(&y, DType::I32).unwrap();
    let s = ops::strided_slice(&yi, &StridedSlice::new().index(1).index(-1).step(-2)).unwrap();
    assert_eq!(s.to_vec::<i32>().unwrap(), vec![23, 21]);
}

#[test]
fn strided_slice_errors() {
    let y = nd(&[2, 3]);
    let e = err_text(ops::strided_slice(&y, &StridedSlice::new().index(2)));
    assert!(e.contains("StridedSlice") && e.contains("index 2"), "{e}");
    assert!(ops::strided_slice(&y, &StridedSlice::new().index(-3)).is_err());
    assert!(ops::strided_slice(&y, &StridedSlice::new().step(0)).is_err());
    assert!(ops::strided_slice(&y, &StridedSlice::new().all().all().all()).is_err());
    assert!(ops::strided_slice(&y, &StridedSlice::new().ellipsis().ellipsis()).is_err());
}

#[test]
fn reverse_values() {
    let x = nd(&[2, 3]);
    assert_eq!(
        v(&ops::reverse(&x, &[1]).unwrap()),
        vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0]
    );
    assert_eq!(
        v(&ops::reverse(&x, &[0, -1]).unwrap()),
        vec![5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    );
    assert_eq!(v(&ops::reverse(&x, &[]).unwrap()), v(&x));
    let e = err_text(ops::reverse(&x, &[2]));
    assert!(e.contains("ReverseV2"), "{e}");
    assert!(ops::reverse(&x, &[1, -1]).is_err());
}

#[test]
fn pad_matches_tensorflow_docs() {
    let t = Tensor::from_vec(vec![1i32, 2, 3, 4, 5, 6], &[2, 3]).unwrap();
    let p = [[1, 1], [2, 2]];
    let c = ops::pad(&t, &p, PadMode::Constant, 0.0).unwrap();
    assert_eq!(c.shape(), &[4, 7]);
    #[rustfmt::skip]
    assert_eq!(c.to_vec::<i32>().unwrap(), vec![
        0, 0, 0, 0, 0, 0, 0,
        0, 0, 1, 2, 3, 0, 0,
        0, 0, 4, 5, 6, 0, 0,
        0, 0, 0, 0, 0, 0, 0,
    ]);
    let r = ops::pad(&t, &p, PadMode::Reflect, 0.0).unwrap();
    #[rustfmt::skip]
    assert_eq!(r.to_vec::<i32>().unwrap(), vec![
        6, 5, 4, 5, 6, 5, 4,
        3, 2, 1, 2, 3, 2, 1,
        6, 5, 4, 5, 6, 5, 4,
        3, 2, 1, 2, 3, 2, 1,
    ]);
    let s = ops::pad(&t, &p, PadMode::Symmetric, 0.0).unwrap();
    #[rustfmt::skip]
    assert_eq!(s.to_vec::<i32>().unwrap(), vec![
        2, 1, 1, 2, 3, 3, 2,
        2, 1, 1, 2, 3, 3, 2,
        5, 4, 4, 5, 6, 6, 5,
        5, 4, 4, 5, 6, 6, 5,
    ]);
    let c = ops::pad(&t, &[[0, 0], [1, 0]], PadMode::Constant, -7.0).unwrap();
    assert_eq!(c.to_vec::<i32>().unwrap(), vec![-7, 1, 2, 3, -7, 4, 5, 6]);
    // limits: reflect needs pad < dim, symmetric pad <= dim
    let e = err_text(ops::pad(&t, &[[2, 0], [0, 0]], PadMode::Reflect, 0.0));
    assert!(e.contains("MirrorPad") && e.contains("(2, 3)"), "{e}");
    assert!(ops::pad(&t, &[[2, 2], [3, 3]], PadMode::Symmetric, 0.0).is_ok());
    assert!(ops::pad(&t, &[[3, 0], [0, 0]], PadMode::Symmetric, 0.0).is_err());
    assert!(ops::pad(&t, &[[1, 1]], PadMode::Constant, 0.0).is_err());
}

// ---------------------------------------------------------------- gather

#[test]
fn gather_values_and_errors() {
    let p = nd(&[3, 4]);
    let i = i32s(&[2, 0, 2], &[3]);
    let g = ops::gather(&p, &i, 0).unwrap();
    assert_eq!(g.shape(), &[3, 4]);
    assert_eq!(v(&g)[..8], [8.0, 9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 3.0]);
    let i2 = Tensor::from_vec(vec![3i64, 0, 1, 1], &[2, 2]).unwrap();
    let g = ops::gather(&p, &i2, -1).unwrap();
    assert_eq!(g.shape(), &[3, 2, 2]);
    assert_eq!(v(&g)[..8], [3.0, 0.0, 1.0, 1.0, 7.0, 4.0, 5.0, 5.0]);
    let s = ops::gather(&p, &Tensor::scalar(1i32), 1).unwrap();
    assert_eq!(s.shape(), &[3]);
    assert_eq!(v(&s), vec![1.0, 5.0, 9.0]);
    let e = err_text(ops::gather(&p, &i32s(&[0, 7], &[2]), 0));
    assert!(
        e.contains("GatherV2") && e.contains("indices[1] = 7") && e.contains("[0, 3)"),
        "{e}"
    );
    assert!(ops::gather(&p, &i32s(&[-1], &[1]), 0).is_err());
    assert!(ops::gather(&p, &i, 2).is_err());
    assert!(ops::gather(&p, &p, 0).is_err(), "float indices");
}

#[test]
fn gather_nd_and_scatter_add_values() {
    let p = nd(&[2, 3, 2]);
    let i = i32s(&[1, 2, 0, 0], &[2, 2]);
    let g = ops::gather_nd(&p, &i).unwrap();
    assert_eq!(g.shape(), &[2, 2]);
    assert_eq!(v(&g), vec![10.0, 11.0, 0.0, 1.0]);
    let i3 = i32s(&[1, 0, 1], &[1, 3]);
    assert_eq!(v(&ops::gather_nd(&p, &i3).unwrap()), vec![7.0]);
    assert!(ops::gather_nd(&p, &i32s(&[2, 0], &[1, 2])).is_err());
    assert!(ops::gather_nd(&p, &i32s(&[0, 0, 0, 0], &[1, 4])).is_err());
    // duplicates accumulate
    let t = Tensor::from_vec(vec![1.0f32; 6], &[3, 2]).unwrap();
    let idx = i32s(&[2, 0, 2], &[3, 1]);
    let u = Tensor::from_vec(vec![1.0f32, 2.0, 10.0, 20.0, 100.0, 200.0], &[3, 2]).unwrap();
    let s = ops::tensor_scatter_nd_add(&t, &idx, &u).unwrap();
    assert_eq!(
        s.to_vec::<f32>().unwrap(),
        vec![11.0, 21.0, 1.0, 1.0, 102.0, 203.0]
    );
    // full-depth indices, int dtype
    let t = Tensor::from_vec(vec![0i64; 4], &[2, 2]).unwrap();
    let idx = i32s(&[1, 0, 1, 0, 0, 1], &[3, 2]);
    let u = Tensor::from_vec(vec![5i64, 6, 7], &[3]).unwrap();
    let s = ops::scatter_add(&t, &idx, &u).unwrap();
    assert_eq!(s.to_vec::<i64>().unwrap(), vec![0, 7, 11, 0]);
    assert!(
        ops::tensor_scatter_nd_add(&t, &idx, &Tensor::from_vec(vec![1i64; 2], &[2]).unwrap())
            .is_err()
    );
    assert!(ops::tensor_scatter_nd_add(
        &t,
        &i32s(&[2, 0], &[1, 2]),
        &Tensor::from_vec(vec![1i64], &[1]).unwrap()
    )
    .is_err());
}

#[test]
fn unsorted_segment_sum_values() {
    let d = nd(&[4, 2]);
    let s = i32s(&[1, -1, 1, 0], &[4]);
    let r = ops::unsorted_segment_sum(&d, &s, 3).unwrap();
    assert_eq!(r.shape(), &[3, 2]);
    assert_eq!(v(&r), vec![6.0, 7.0, 4.0, 6.0, 0.0, 0.0]);
    // 2-D ids over 2-D data
    let r = ops::unsorted_segment_sum(&d, &i32s(&[0, 1, 1, 0, 0, 0, 1, 1], &[4, 2]), 2).unwrap();
    assert_eq!(r.shape(), &[2]);
    assert_eq!(v(&r), vec![0.0 + 3.0 + 4.0 + 5.0, 1.0 + 2.0 + 6.0 + 7.0]);
    let e = err_text(ops::unsorted_segment_sum(&d, &i32s(&[0, 3, 0, 0], &[4]), 3));
    assert!(e.contains("UnsortedSegmentSum") && e.contains("3"), "{e}");
    assert!(ops::unsorted_segment_sum(&d, &i32s(&[0, 0, 0], &[3]), 3).is_err());
}

#[test]
fn one_hot_values() {
    let i = i32s(&[0, 2, -1, 3], &[4]);
    let h = ops::one_hot(&i, 3, 5.0, -1.0, -1, DType::F32).unwrap();
    assert_eq!(h.shape(), &[4, 3]);
    #[rustfmt::skip]
    assert_eq!(h.to_vec::<f32>().unwrap(), vec![
        5.0, -1.0, -1.0,
        -1.0, -1.0, 5.0,
        -1.0, -1.0, -1.0,
        -1.0, -1.0, -1.0,
    ]);
    let i = Tensor::from_vec(vec![1i64, 0], &[2]).unwrap();
    let h = ops::one_hot(&i, 2, 1.0, 0.0, 0, DType::I32).unwrap();
    assert_eq!(h.to_vec::<i32>().unwrap(), vec![0, 1, 1, 0]);
    let h = ops::one_hot(&i32s(&[1, 0], &[1, 2]), 3, 1.0, 0.0, 1, DType::Bool).unwrap();
    assert_eq!(h.shape(), &[1, 3, 2]);
    assert_eq!(
        h.to_vec::<bool>().unwrap(),
        vec![false, true, true, false, false, false]
    );
    assert!(ops::one_hot(&i, 2, 1.0, 0.0, 2, DType::F32).is_err());
    assert!(ops::one_hot(&nd(&[2]), 2, 1.0, 0.0, -1, DType::F32).is_err());
}

#[test]
fn every_dtype_is_supported() {
    let base = nd(&[2, 3]);
    for dt in ALL_DTYPES {
        let x = ops::cast(&base, dt).unwrap();
        let want = |idx: &[usize]| -> Vec<f64> {
            let b = v(&base);
            idx.iter()
                .map(|&i| ops::cast(&Tensor::scalar(b[i]), dt).unwrap().to_f64_vec()[0])
                .collect()
        };
        let c = ops::concat(&[&x, &x], 0).unwrap();
        assert_eq!(
            v(&c),
            [want(&[0, 1, 2, 3, 4, 5]), want(&[0, 1, 2, 3, 4, 5])].concat(),
            "{dt}"
        );
        assert_eq!(
            v(&ops::stack(&[&x, &x], 2).unwrap())[..4],
            want(&[0, 0, 1, 1])[..],
            "{dt}"
        );
        assert_eq!(v(&ops::unstack(&x, 1).unwrap()[2]), want(&[2, 5]), "{dt}");
        assert_eq!(
            v(&ops::split(&x, Split::Num(3), 1).unwrap()[1]),
            want(&[1, 4]),
            "{dt}"
        );
        assert_eq!(
            v(&ops::tile(&x, &[1, 2]).unwrap())[..6],
            want(&[0, 1, 2, 0, 1, 2])[..],
            "{dt}"
        );
        assert_eq!(
            v(&ops::slice(&x, &[1, 1], &[1, 2]).unwrap()),
            want(&[4, 5]),
            "{dt}"
        );
        let s = ops::strided_slice(&x, &StridedSlice::new().step(-1).index(0)).unwrap();
        assert_eq!(v(&s), want(&[3, 0]), "{dt}");
        assert_eq!(
            v(&ops::reverse(&x, &[1]).unwrap())[..3],
            want(&[2, 1, 0])[..],
            "{dt}"
        );
        let p = ops::pad(&x, &[[0, 0], [1, 1]], PadMode::Reflect, 0.0).unwrap();
        assert_eq!(v(&p)[..5], want(&[1, 0, 1, 2, 1])[..], "{dt}");
        let p = ops::pad(&x, &[[0, 0], [0, 1]], PadMode::Constant, 1.0).unwrap();
        assert_eq!(v(&p)[3], 1.0, "{dt}");
        let g = ops::gather(&x, &i32s(&[2, 0], &[2]), 1).unwrap();
        assert_eq!(v(&g), want(&[2, 0, 5, 3]), "{dt}");
        let g = ops::gather_nd(&x, &i32s(&[1, 2], &[1, 2])).unwrap();
        assert_eq!(v(&g), want(&[5]), "{dt}");
        let z = ops::zeros(&[2, 3], dt);
        let s = ops::tensor_scatter_nd_add(
            &z,
            &i32s(&[1], &[1, 1]),
            &ops::slice(&x, &[0, 0], &[1, 3]).unwrap(),
        )
        .unwrap();
        assert_eq!(v(&s)[3..], want(&[0, 1, 2])[..], "{dt}");
        let u = ops::unsorted_segment_sum(&x, &i32s(&[1, 1], &[2]), 2).unwrap();
        assert_eq!(u.dtype(), dt);
        assert_eq!(v(&u)[..3], [0.0; 3], "{dt}");
        let h = ops::one_hot(&i32s(&[1], &[1]), 2, 1.0, 0.0, -1, dt).unwrap();
        assert_eq!((h.dtype(), v(&h)), (dt, vec![0.0, 1.0]));
    }
}

#[test]
fn shape_rules_keep_unknown_dims() {
    use ferroflow_core::ops::gather::GatherV2;
    use ferroflow_core::ops::join::{ConcatV2, SplitV, Tile};
    use ferroflow_core::ops::slice::{Pad, StridedSliceOp};
    let spec = |s: &[Option<usize>]| TensorSpec {
        dtype: DType::F32,
        shape: s.to_vec(),
    };
    let out = ConcatV2 { axis: 0 }
        .infer(&[spec(&[None, Some(3)]), spec(&[Some(2), None])])
        .unwrap();
    assert_eq!(out[0].shape, vec![None, Some(3)]);
    let out = ConcatV2 { axis: 1 }
        .infer(&[spec(&[None, Some(3)]), spec(&[Some(2), Some(1)])])
        .unwrap();
    assert_eq!(out[0].shape, vec![Some(2), Some(4)]);
    assert!(ConcatV2 { axis: 1 }
        .infer(&[spec(&[Some(1), Some(3)]), spec(&[Some(2), Some(1)])])
        .is_err());
    let out = SplitV {
        split: Split::Sizes(vec![1, -1]),
        axis: 0,
    }
    .infer(&[spec(&[None])])
    .unwrap();
    assert_eq!(out[1].shape, vec![None]);
    let out = Tile {
        multiples: vec![2, 3],
    }
    .infer(&[spec(&[None, Some(2)])])
    .unwrap();
    assert_eq!(out[0].shape, vec![None, Some(6)]);
    let out = StridedSliceOp {
        spec: StridedSlice::new().index(0).range(0, 2, 1).new_axis(),
    }
    .infer(&[spec(&[None, None, Some(5)])])
    .unwrap();
    assert_eq!(out[0].shape, vec![None, Some(1), Some(5)]);
    let out = Pad {
        paddings: vec![[1, 1], [0, 2]],
        mode: PadMode::Reflect,
        constant_values: 0.0,
    }
    .infer(&[spec(&[None, Some(3)])])
    .unwrap();
    assert_eq!(out[0].shape, vec![None, Some(5)]);
    let idx = TensorSpec {
        dtype: DType::I32,
        shape: vec![None, Some(2)],
    };
    let out = GatherV2 { axis: 1 }
        .infer(&[spec(&[Some(4), None, Some(3)]), idx])
        .unwrap();
    assert_eq!(out[0].shape, vec![Some(4), None, Some(2), Some(3)]);
}

// ---------------------------------------------------------------- gradients

#[test]
fn join_gradients() {
    let a = test_tensor(&[2, 3], 1, -1.0, 1.0);
    let b = test_tensor(&[2, 2], 2, -1.0, 1.0);
    check_gradients(
        |x| ops::concat(&[&x[0], &x[1]], -1),
        &[a.clone(), b.clone()],
        &[0, 1],
    )
    .unwrap();
    let c = test_tensor(&[3, 3], 3, -1.0, 1.0);
    check_gradients(
        |x| ops::concat(&[&x[0], &x[1], &x[0]], 0),
        &[a.clone(), c.clone()],
        &[0, 1],
    )
    .unwrap();
    check_gradients(|x| ops::concat(&[&x[0], &x[0]], 0), &[a.clone()], &[0]).unwrap();
    let a2 = test_tensor(&[2, 3], 4, -1.0, 1.0);
    check_gradients(
        |x| ops::stack(&[&x[0], &x[1]], 1),
        &[a.clone(), a2.clone()],
        &[0, 1],
    )
    .unwrap();
    check_gradients(
        |x| ops::stack(&[&x[0], &x[1]], -1),
        &[a.clone(), a2.clone()],
        &[0, 1],
    )
    .unwrap();
    // unstack: nonlinear use of two outputs; the middle one unused gets zeros
    check_gradients(
        |x| {
            let p = ops::unstack(&x[0], -1)?;
            ops::mul(&p[0], &ops::square(&p[2])?)
        },
        &[a.clone()],
        &[0],
    )
    .unwrap();
    let x6 = test_tensor(&[3, 6], 5, -1.0, 1.0);
    check_gradients(
        |x| {
            let p = ops::split(&x[0], Split::Sizes(vec![2, -1, 1]), 1)?;
            ops::add(&ops::square(&p[0])?, &ops::slice(&p[1], &[0, 0], &[3, 2])?)
        },
        &[x6.clone()],
        &[0],
    )
    .unwrap();
    check_gradients(
        |x| Ok(ops::split(&x[0], Split::Num(3), 0)?[1].clone()),
        &[x6.clone()],
        &[0],
    )
    .unwrap();
    check_gradients(
        |x| ops::tile(&x[0], &[2, 1, 3]),
        &[test_tensor(&[2, 3, 1], 6, -1.0, 1.0)],
        &[0],
    )
    .unwrap();
}

#[test]
fn slice_gradients() {
    let x = test_tensor(&[4, 5], 7, -1.0, 1.0);
    check_gradients(|x| ops::slice(&x[0], &[1, 2], &[2, -1]), &[x.clone()], &[0]).unwrap();
    for spec in [
        StridedSlice::new().range(1, 4, 2).step(-2),
        StridedSlice::new().index(-1).range(-1, 0, -1),
        StridedSlice::new().new_axis().ellipsis().range_to(3),
        StridedSlice::new().step(-1).range_from(1).new_axis(),
    ] {
        check_gradients(|x| ops::strided_slice(&x[0], &spec), &[x.clone()], &[0]).unwrap();
        // second order: StridedSliceGrad's own gradient
        check_gradients(
            |x| {
                let tape = ferroflow_core::GradientTape::new();
                tape.watch(&x[0]);
                let y = ops::reduce_sum(
                    &ops::square(&ops::strided_slice(&x[0], &spec)?)?,
                    ops::Axes::All,
                    false,
                )?;
                Ok(tape.gradient(&y, &[&x[0]])?[0].clone().expect("connected"))
            },
            &[x.clone()],
            &[0],
        )
        .unwrap();
    }
    check_gradients(|x| ops::reverse(&x[0], &[0, -1]), &[x.clone()], &[0]).unwrap();
    for mode in [PadMode::Constant, PadMode::Reflect, PadMode::Symmetric] {
        let p = [[1, 3], [2, 0]];
        check_gradients(|x| ops::pad(&x[0], &p, mode, 0.5), &[x.clone()], &[0]).unwrap();
        // second order through MirrorPadGrad
        check_gradients(
            |x| {
                let tape = ferroflow_core::GradientTape::new();
                tape.watch(&x[0]);
                let y = ops::reduce_sum(
                    &ops::square(&ops::pad(&x[0], &p, mode, 0.0)?)?,
                    ops::Axes::All,
                    false,
                )?;
                Ok(tape.gradient(&y, &[&x[0]])?[0].clone().expect("connected"))
            },
            &[x.clone()],
            &[0],
        )
        .unwrap();
    }
}

#[test]
fn gather_gradients() {
    let p = test_tensor(&[4, 3], 8, -1.0, 1.0);
    let i = i32s(&[1, 3, 1, 1, 0, 3], &[2, 3]);
    check_gradients(
        |x| ops::gather(&x[0], &x[1], 0),
        &[p.clone(), i.clone()],
        &[0],
    )
    .unwrap();
    let i1 = i32s(&[2, 2, 0], &[3]);
    check_gradients(
        |x| ops::gather(&x[0], &x[1], -1),
        &[p.clone(), i1.clone()],
        &[0],
    )
    .unwrap();
    let p3 = test_tensor(&[2, 4, 3], 9, -1.0, 1.0);
    check_gradients(
        |x| ops::gather(&x[0], &x[1], 1),
        &[p3.clone(), i.clone()],
        &[0],
    )
    .unwrap();
    // gather_nd and scatter_add (duplicates)
    let nd_i = i32s(&[1, 2, 1, 2, 0, 0], &[3, 2]);
    check_gradients(
        |x| ops::gather_nd(&x[0], &x[1]),
        &[p3.clone(), nd_i.clone()],
        &[0],
    )
    .unwrap();
    let t = test_tensor(&[4, 3], 10, -1.0, 1.0);
    let u = test_tensor(&[3, 3], 11, -1.0, 1.0);
    let si = i32s(&[3, 0, 3], &[3, 1]);
    check_gradients(
        |x| ops::square(&ops::tensor_scatter_nd_add(&x[0], &x[1], &x[2])?),
        &[t.clone(), si.clone(), u.clone()],
        &[0, 2],
    )
    .unwrap();
    // unsorted_segment_sum, with a dropped negative id
    let d = test_tensor(&[5, 2], 12, -1.0, 1.0);
    let s = i32s(&[2, 0, -1, 2, 1], &[5]);
    check_gradients(
        |x| ops::square(&ops::unsorted_segment_sum(&x[0], &x[1], 4)?),
        &[d.clone(), s.clone()],
        &[0],
    )
    .unwrap();
    let s2 = i32s(&[1, 0, 1, 1, 0], &[5]);
    check_gradients(
        |x| ops::unsorted_segment_sum(&x[0], &x[1], 2),
        &[d, s2],
        &[0],
    )
    .unwrap();
}

#[test]
fn index_inputs_get_no_gradient() {
    let p = test_tensor(&[3], 13, -1.0, 1.0);
    let i = i32s(&[0, 2], &[2]);
    let tape = ferroflow_core::GradientTape::new();
    tape.watch(&p);
    tape.watch(&i);
    let y = ops::reduce_sum(&ops::gather(&p, &i, 0).unwrap(), ops::Axes::All, false).unwrap();
    let g = tape.gradient(&y, &[&p, &i]).unwrap();
    assert_eq!(v(g[0].as_ref().unwrap()), vec![1.0, 0.0, 1.0]);
    assert!(g[1].is_none());
}

// ---------------------------------------------------------------- properties

fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..4, 1..4)
}

fn naive_window(x: &[f64], shape: &[usize], begin: &[usize], size: &[usize]) -> Vec<f64> {
    let n: usize = size.iter().product();
    let mut out = Vec::with_capacity(n);
    for flat in 0..n {
        let mut rem = flat;
        let mut off = 0;
        let mut stride = 1;
        for d in (0..shape.len()).rev() {
            let i = rem % size[d];
            rem /= size[d];
            off += (begin[d] + i) * stride;
            stride *= shape[d];
        }
        out.push(x[off]);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn concat_then_split_round_trips(shape in shape_strategy(), extra in prop::collection::vec(0usize..4, 1..4), axis_seed in 0usize..8) {
        let axis = axis_seed % shape.len();
        let parts: Vec<Tensor> = extra.iter().enumerate().map(|(k, &e)| {
            let mut s = shape.clone();
            s[axis] = e;
            test_tensor(&s, k as u64, -5.0, 5.0)
        }).collect();
        let refs: Vec<&Tensor> = parts.iter().collect();
        let c = ops::concat(&refs, axis as isize - shape.len() as isize).unwrap();
        let sizes: Vec<isize> = extra.iter().map(|&e| e as isize).collect();
        let back = ops::split(&c, Split::Sizes(sizes), axis as isize).unwrap();
        prop_assert_eq!(back.len(), parts.len());
        for (b, p) in back.iter().zip(&parts) {
            prop_assert_eq!(b.shape(), p.shape());
            prop_assert_eq!(v(b), v(p));
        }
    }

    #[test]
    fn slice_matches_naive_window(shape in shape_strategy(), seeds in prop::collection::vec((0usize..100, 0usize..100), 3)) {
        let x = test_tensor(&shape, 3, -1.0, 1.0);
        let begin: Vec<usize> = shape.iter().zip(&seeds).map(|(&d, s)| s.0 % d).collect();
        let size: Vec<usize> = shape.iter().zip(&begin).zip(&seeds).map(|((&d, &b), s)| s.1 % (d - b + 1)).collect();
        let isize_size: Vec<isize> = size.iter().map(|&s| s as isize).collect();
        let s = ops::slice(&x, &begin, &isize_size).unwrap();
        prop_assert_eq!(s.shape(), &size[..]);
        prop_assert_eq!(v(&s), naive_window(&v(&x), &shape, &begin, &size));
    }

    #[test]
    fn reverse_twice_is_identity(shape in shape_strategy(), mask in 0u8..8) {
        let x = test_tensor(&shape, 4, -1.0, 1.0);
        let axes: Vec<isize> = (0..shape.len()).filter(|i| mask >> i & 1 == 1).map(|i| i as isize).collect();
        let r = ops::reverse(&ops::reverse(&x, &axes).unwrap(), &axes).unwrap();
        prop_assert_eq!(v(&r), v(&x));
    }

    #[test]
    fn transpose_round_trips(shape in shape_strategy(), perm_seed in Just(()).prop_perturb(|_, mut rng| rng.next_u64())) {
        let x = test_tensor(&shape, 5, -1.0, 1.0);
        let mut perm: Vec<usize> = (0..shape.len()).collect();
        let mut s = perm_seed;
        for i in (1..perm.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            perm.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut inv = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        let t = ops::transpose(&x, &perm).unwrap();
        let back = ops::transpose(&t, &inv).unwrap();
        prop_assert_eq!(back.shape(), x.shape());
        prop_assert_eq!(v(&back), v(&x));
    }

    #[test]
    fn reshape_round_trips(shape in shape_strategy()) {
        let x = test_tensor(&shape, 6, -1.0, 1.0);
        let flat = ops::reshape(&x, &[-1]).unwrap();
        prop_assert_eq!(flat.shape(), &[x.num_elements()][..]);
        let dims: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
        let back = ops::reshape(&ops::transpose(&flat, &[]).unwrap(), &dims).unwrap();
        prop_assert_eq!(back.shape(), x.shape());
        prop_assert_eq!(v(&back), v(&x));
    }
}

#[test]
fn positive_stride_slices_are_views() {
    let x = nd(&[4, 6]);
    let s = ops::slice(&x, &[1, 2], &[2, 3]).unwrap();
    assert!(std::sync::Arc::ptr_eq(s.storage(), x.storage()));
    let s = ops::strided_slice(&x, &StridedSlice::new().range(1, 4, 2).new_axis().step(3)).unwrap();
    assert!(std::sync::Arc::ptr_eq(s.storage(), x.storage()));
    assert_eq!(s.shape(), &[2, 1, 2]);
    assert_eq!(v(&s), vec![6.0, 9.0, 18.0, 21.0]);
    let r = ops::strided_slice(&x, &StridedSlice::new().step(-1)).unwrap();
    assert!(!std::sync::Arc::ptr_eq(r.storage(), x.storage()));
    assert_eq!(v(&r)[..6], [18.0, 19.0, 20.0, 21.0, 22.0, 23.0]);
}

#[test]
fn extreme_arguments_error_instead_of_panicking() {
    let x = nd(&[3]);
    assert!(ops::pad(&x, &[[usize::MAX, 1]], PadMode::Constant, 0.0).is_err());
    assert!(ops::tile(&nd(&[2, 2]), &[usize::MAX, 1]).is_err());
    let s = ops::strided_slice(&x, &StridedSlice::new().span(None, None, isize::MIN)).unwrap();
    assert_eq!(v(&s), vec![2.0]);
    let s = ops::strided_slice(
        &x,
        &StridedSlice::new().span(Some(isize::MIN), Some(isize::MAX), isize::MAX),
    )
    .unwrap();
    assert_eq!(v(&s), vec![0.0]);
}
