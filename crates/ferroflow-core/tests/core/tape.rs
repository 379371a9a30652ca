use ferroflow_core::ops;
use ferroflow_core::testing::check_gradients;
use ferroflow_core::{Error, GradientTape, Tensor, Variable};

#[test]
fn variables_are_watched_automatically() {
    let w = Variable::new(Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap(), "w");
    let frozen = Variable::with_trainable(
        Tensor::from_vec(vec![3.0f32, 4.0], &[2]).unwrap(),
        "f",
        false,
    );
    let tape = GradientTape::new();
    let y = ops::reduce_sum(
        &ops::mul(&w.value(), &frozen.value()).unwrap(),
        ops::Axes::All,
        false,
    )
    .unwrap();
    let g = tape.gradient(&y, &[&w, &frozen]).unwrap();
    assert_eq!(
        g[0].as_ref().unwrap().to_vec::<f32>().unwrap(),
        vec![3.0, 4.0]
    );
    assert!(g[1].is_none(), "non-trainable variables are not watched");
}

#[test]
fn unconnected_and_integer_sources_give_none() {
    let x = Tensor::scalar(2.0f32);
    let z = Tensor::scalar(5.0f32);
    let i = Tensor::scalar(3i32);
    let tape = GradientTape::new();
    tape.watch(&x);
    tape.watch(&z);
    tape.watch(&i);
    let y = ops::mul(&x, &x).unwrap();
    let _int = ops::mul(&i, &i).unwrap();
    let g = tape.gradient(&y, &[&x, &z, &i]).unwrap();
    assert_eq!(g[0].as_ref().unwrap().item::<f32>().unwrap(), 4.0);
    assert!(g[1].is_none());
    assert!(g[2].is_none());
}

#[test]
fn non_persistent_tape_refuses_a_second_call() {
    let x = Tensor::scalar(2.0f32);
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = ops::exp(&x).unwrap();
    tape.gradient(&y, &[&x]).unwrap();
    assert!(matches!(tape.gradient(&y, &[&x]), Err(Error::Tape(_))));

    let tape = GradientTape::persistent();
    tape.watch(&x);
    let y = ops::square(&x).unwrap();
    let z = ops::exp(&x).unwrap();
    assert_eq!(
        tape.gradient(&y, &[&x]).unwrap()[0]
            .as_ref()
            .unwrap()
            .item::<f32>()
            .unwrap(),
        4.0
    );
    let dz = tape.gradient(&z, &[&x]).unwrap()[0]
        .as_ref()
        .unwrap()
        .item::<f32>()
        .unwrap();
    assert!((dz - 2f32.exp()).abs() < 1e-5);
}

#[test]
fn stop_gradient_and_stop_recording() {
    let x = Tensor::scalar(3.0f64);
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = ops::add(
        &ops::mul(&x, &x).unwrap(),
        &ops::stop_gradient(&ops::mul(&x, &x).unwrap()).unwrap(),
    )
    .unwrap();
    let z = tape.stop_recording(|| ops::mul(&y, &x).unwrap());
    let g = tape.gradient(&y, &[&x]).unwrap();
    assert_eq!(g[0].as_ref().unwrap().item::<f64>().unwrap(), 6.0);
    let _ = z;
}

#[test]
fn non_scalar_targets_are_summed_and_reuse_accumulates() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap();
    let tape = GradientTape::new();
    tape.watch(&x);
    // y = x·x + x uses x three times
    let y = ops::add(&ops::mul(&x, &x).unwrap(), &x).unwrap();
    let g = tape.gradient(&y, &[&x]).unwrap()[0].clone().unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![3.0, 5.0, 7.0]);
}

#[test]
fn nested_tapes_give_second_derivatives() {
    let x = Tensor::scalar(0.7f64);
    let outer = GradientTape::new();
    outer.watch(&x);
    let dy_dx = {
        let inner = GradientTape::new();
        inner.watch(&x);
        let y = ops::mul(&ops::sin(&x).unwrap(), &x).unwrap(); // x sin x
        inner.gradient(&y, &[&x]).unwrap()[0].clone().unwrap()
    };
    let d2 = outer.gradient(&dy_dx, &[&x]).unwrap()[0].clone().unwrap();
    // d²/dx² x sin x = 2 cos x - x sin x
    let want = 2.0 * 0.7f64.cos() - 0.7 * 0.7f64.sin();
    assert!((d2.item::<f64>().unwrap() - want).abs() < 1e-12);
}

#[test]
fn output_gradients_and_composites() {
    let x = Tensor::from_vec(vec![1.0f64, -2.0], &[2]).unwrap();
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = ops::mul(&x, &x).unwrap();
    let og = Tensor::from_vec(vec![10.0f64, 1.0], &[2]).unwrap();
    let g = tape.gradient_with(&y, &[&x], Some(&og)).unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![20.0, -4.0]);
    // a small composite function, checked end to end
    check_gradients(
        |v| {
            let h = ops::tanh(&ops::add(&ops::mul(&v[0], &v[1])?, &v[1])?)?;
            ops::reduce_mean(&ops::square(&h)?, -1, false)
        },
        &[
            ferroflow_core::testing::test_tensor(&[3, 4], 1, -1.0, 1.0),
            ferroflow_core::testing::test_tensor(&[4], 2, -1.0, 1.0),
        ],
        &[0, 1],
    )
    .unwrap();
}
