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

/// The tape tells each gradient rule which inputs a watched tensor flows into
/// (`GradCtx::needed`), so a rule can skip the others' work: here the data `x` of
/// `matmul(x, w)` and `conv2d(x, k)` is not watched, so only the weights' gradients are computed
/// (`None` for `x`), and they equal the gradients computed with `x` watched.
#[test]
fn rules_skip_the_gradients_of_unwatched_inputs() {
    use ferroflow_core::op::TensorSpec;
    use ferroflow_core::op::{execute1, GradCtx, Op};
    use ferroflow_core::ops::linalg::MatMul;
    use std::sync::{Arc, Mutex};

    const MM: MatMul = MatMul {
        transpose_a: false,
        transpose_b: false,
    };
    /// `matmul` whose rule records the `needed` flags it was given.
    #[derive(Clone, Debug)]
    struct Recording(Arc<Mutex<Vec<Vec<bool>>>>);
    impl Op for Recording {
        fn name(&self) -> &'static str {
            "RecordingMatMul"
        }
        fn infer(&self, inputs: &[TensorSpec]) -> ferroflow_core::Result<Vec<TensorSpec>> {
            MM.infer(inputs)
        }
        fn compute(&self, inputs: &[Tensor]) -> ferroflow_core::Result<Vec<Tensor>> {
            MM.compute(inputs)
        }
        fn grad(&self, ctx: &GradCtx<'_>) -> ferroflow_core::Result<Vec<Option<Tensor>>> {
            let needed = (0..ctx.inputs.len()).map(|i| ctx.needs(i)).collect();
            self.0.lock().unwrap().push(needed);
            MM.grad(ctx)
        }
    }

    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let w = Variable::new(
        Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 1.5, -0.5, 1.0], &[3, 2]).unwrap(),
        "w",
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tape = GradientTape::new();
    let y = execute1(Recording(seen.clone()), &[x.clone(), w.value()]).unwrap();
    let loss = ops::reduce_sum(&ops::mul(&y, &y).unwrap(), ops::Axes::All, false).unwrap();
    let g = tape.gradient(&loss, &[&w]).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![vec![false, true]]);
    // d(sum y²)/dw = xᵀ·2y, by hand: y = x·w = [[3, 5], [9, 9.5]].
    let want = [
        2.0 * (1.0 * 3.0 + 4.0 * 9.0),
        2.0 * (1.0 * 5.0 + 4.0 * 9.5),
        2.0 * (2.0 * 3.0 + 5.0 * 9.0),
        2.0 * (2.0 * 5.0 + 5.0 * 9.5),
        2.0 * (3.0 * 3.0 + 6.0 * 9.0),
        2.0 * (3.0 * 5.0 + 6.0 * 9.5),
    ];
    assert_eq!(g[0].as_ref().unwrap().to_vec::<f32>().unwrap(), want);

    // With `x` watched too, both are needed and `w`'s gradient is the same.
    seen.lock().unwrap().clear();
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = execute1(Recording(seen.clone()), &[x.clone(), w.value()]).unwrap();
    let loss = ops::reduce_sum(&ops::mul(&y, &y).unwrap(), ops::Axes::All, false).unwrap();
    let g2 = tape.gradient(&loss, &[&w, &x]).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![vec![true, true]]);
    assert_eq!(g2[0].as_ref().unwrap().to_vec::<f32>().unwrap(), want);
    assert!(g2[1].is_some());

    // Conv2D skips the input gradient of unwatched data.
    let xi = ops::random_uniform(&[2, 5, 5, 1], -1.0, 1.0, ferroflow_core::DType::F32, 1).unwrap();
    let k = Variable::new(
        ops::random_uniform(&[3, 3, 1, 4], -1.0, 1.0, ferroflow_core::DType::F32, 2).unwrap(),
        "k",
    );
    let conv = ferroflow_core::ops::conv::Conv2D {
        kind: ferroflow_core::ops::conv::ConvKind::Regular,
        attrs: ferroflow_core::ops::conv::ConvAttrs {
            strides: [1, 1],
            padding: ferroflow_core::ops::Padding::Valid,
            dilations: [1, 1],
        },
    };
    let out = [execute1(conv.clone(), &[xi.clone(), k.value()]).unwrap()];
    let gy = [ops::ones_like(&out[0]).unwrap()];
    let inputs = [xi.clone(), k.value()];
    let skip = conv
        .grad(&GradCtx {
            inputs: &inputs,
            outputs: &out,
            grads: &gy,
            needed: &[false, true],
        })
        .unwrap();
    let all = conv
        .grad(&GradCtx {
            inputs: &inputs,
            outputs: &out,
            grads: &gy,
            needed: &[],
        })
        .unwrap();
    assert!(skip[0].is_none() && all[0].is_some());
    assert_eq!(
        skip[1].as_ref().unwrap().to_vec::<f32>().unwrap(),
        all[1].as_ref().unwrap().to_vec::<f32>().unwrap()
    );
}
