use ferroflow_core::ops::{self, Axes};
use ferroflow_core::testing::{assert_close, check_gradients, test_tensor};
use ferroflow_core::{DType, Tensor};

fn nd(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|v| v as f64).collect::<Vec<_>>(), shape).unwrap()
}

#[test]
fn reductions_over_any_axes() {
    let x = nd(&[2, 3, 4]);
    let s = ops::reduce_sum(&x, [0, 2], false).unwrap();
    assert_eq!(s.shape(), &[3]);
    // sum over i,k of (12 i + 4 j + k) = 8·4j + 2·(0+1+2+3) + 4·12
    assert_eq!(s.to_vec::<f64>().unwrap(), vec![60.0, 92.0, 124.0]);
    let s = ops::reduce_sum(&x, [0, 2], true).unwrap();
    assert_eq!(s.shape(), &[1, 3, 1]);
    let m = ops::reduce_mean(&x, -1, false).unwrap();
    assert_eq!(m.shape(), &[2, 3]);
    assert_eq!(
        m.to_vec::<f64>().unwrap(),
        vec![1.5, 5.5, 9.5, 13.5, 17.5, 21.5]
    );
    assert_eq!(
        ops::reduce_max(&x, Axes::All, false)
            .unwrap()
            .item::<f64>()
            .unwrap(),
        23.0
    );
    assert_eq!(
        ops::reduce_min(&x, 1, false)
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        vec![0.0, 1.0, 2.0, 3.0, 12.0, 13.0, 14.0, 15.0]
    );
    let p = ops::reduce_prod(
        &Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap(),
        0,
        false,
    )
    .unwrap();
    assert_eq!(p.to_vec::<f64>().unwrap(), vec![3.0, 8.0]);
    let am = ops::argmax(
        &Tensor::from_vec(vec![1.0f32, 5.0, 5.0, 7.0, 0.0, 7.0], &[2, 3]).unwrap(),
        1,
    )
    .unwrap();
    assert_eq!(am.dtype(), DType::I64);
    assert_eq!(am.to_vec::<i64>().unwrap(), vec![1, 0]);
    let ai = ops::argmin(
        &Tensor::from_vec(vec![1.0f32, 5.0, 0.0, 7.0], &[2, 2]).unwrap(),
        0,
    )
    .unwrap();
    assert_eq!(ai.to_vec::<i64>().unwrap(), vec![1, 0]);
    // integer mean truncates, as TensorFlow
    let im = ops::reduce_mean(
        &Tensor::from_vec(vec![1i32, 2], &[2]).unwrap(),
        Axes::All,
        false,
    )
    .unwrap();
    assert_eq!(im.item::<i32>().unwrap(), 1);
    let b = Tensor::from_vec(vec![true, false, true, true], &[2, 2]).unwrap();
    assert_eq!(
        ops::reduce_any(&b, 1, false)
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true, true]
    );
    assert_eq!(
        ops::reduce_all(&b, 1, false)
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![false, true]
    );
    let lse = ops::reduce_logsumexp(
        &Tensor::from_vec(vec![1000.0f64, 1000.0], &[2]).unwrap(),
        Axes::All,
        false,
    )
    .unwrap();
    assert_close(
        &[lse.item::<f64>().unwrap()],
        &[1000.0 + 2f64.ln()],
        1e-9,
        0.0,
    );
    let (mean, var) = ops::moments(
        &Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[4]).unwrap(),
        0,
        false,
    )
    .unwrap();
    assert_eq!(
        (mean.item::<f64>().unwrap(), var.item::<f64>().unwrap()),
        (2.5, 1.25)
    );
    let cs = ops::cumsum(&nd(&[2, 3]), 1, false, false).unwrap();
    assert_eq!(
        cs.to_vec::<f64>().unwrap(),
        vec![0.0, 1.0, 3.0, 3.0, 7.0, 12.0]
    );
    let cs = ops::cumsum(&nd(&[2, 3]), 1, true, true).unwrap();
    assert_eq!(
        cs.to_vec::<f64>().unwrap(),
        vec![3.0, 2.0, 0.0, 9.0, 5.0, 0.0]
    );
}

#[test]
fn reduction_errors() {
    let x = nd(&[2, 3]);
    let e = ops::reduce_sum(&x, 2, false).unwrap_err().to_string();
    assert!(
        e.contains("Sum") && e.contains("axis 2") && e.contains("(2, 3)"),
        "{e}"
    );
    assert!(ops::reduce_any(&x, 0, false).is_err());
    assert!(ops::argmax(&x, -3).is_err());
}

#[test]
fn reduction_gradients_with_and_without_keepdims() {
    let x = test_tensor(&[2, 3, 4], 11, -1.0, 1.0);
    for keep in [false, true] {
        for axes in [
            Axes::All,
            Axes::from(0),
            Axes::from(-1),
            Axes::from([0, 2]),
            Axes::from([1, 2]),
        ] {
            check_gradients(
                |v| ops::reduce_sum(&v[0], axes.clone(), keep),
                std::slice::from_ref(&x),
                &[0],
            )
            .unwrap();
            check_gradients(
                |v| ops::reduce_mean(&v[0], axes.clone(), keep),
                std::slice::from_ref(&x),
                &[0],
            )
            .unwrap();
            check_gradients(
                |v| ops::reduce_max(&v[0], axes.clone(), keep),
                std::slice::from_ref(&x),
                &[0],
            )
            .unwrap();
            check_gradients(
                |v| ops::reduce_min(&v[0], axes.clone(), keep),
                std::slice::from_ref(&x),
                &[0],
            )
            .unwrap();
            check_gradients(
                |v| ops::reduce_prod(&v[0], axes.clone(), keep),
                std::slice::from_ref(&x),
                &[0],
            )
            .unwrap();
            check_gradients(
                |v| ops::reduce_logsumexp(&v[0], axes.clone(), keep),
                std::slice::from_ref(&x),
                &[0],
            )
            .unwrap();
            check_gradients(
                |v| ops::reduce_variance(&v[0], axes.clone(), keep),
                std::slice::from_ref(&x),
                &[0],
            )
            .unwrap();
            check_gradients(
                |v| {
                    let (m, s) = ops::moments(&v[0], axes.clone(), keep)?;
                    ops::add(&m, &s)
                },
                std::slice::from_ref(&x),
                &[0],
            )
            .unwrap();
        }
    }
    // prod with a zero: the gradient is the product of the others, not NaN.
    let z = Tensor::from_vec(vec![0.0f64, 2.0, 3.0], &[3]).unwrap();
    check_gradients(|v| ops::reduce_prod(&v[0], Axes::All, false), &[z], &[0]).unwrap();
    for (ex, rev) in [(false, false), (true, false), (false, true), (true, true)] {
        check_gradients(
            |v| ops::cumsum(&v[0], 1, ex, rev),
            std::slice::from_ref(&x),
            &[0],
        )
        .unwrap();
        check_gradients(
            |v| ops::cumprod(&v[0], 2, ex, rev),
            std::slice::from_ref(&x),
            &[0],
        )
        .unwrap();
    }
    // max with ties splits the gradient evenly (TensorFlow's rule)
    let t = Tensor::from_vec(vec![1.0f64, 3.0, 3.0], &[3]).unwrap();
    let tape = ferroflow_core::GradientTape::new();
    tape.watch(&t);
    let m = ops::reduce_max(&t, Axes::All, false).unwrap();
    let g = tape.gradient(&m, &[&t]).unwrap()[0].clone().unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![0.0, 0.5, 0.5]);
}
