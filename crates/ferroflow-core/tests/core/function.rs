//! Traced functions (`graph::function`, TF 2's `tf.function`): tracing per signature, captured
//! variables and side effects, gradients inside, errors.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use ferroflow_core::op::TensorSpec;
use ferroflow_core::{graph, ops, DType, GradientTape, Tensor, Variable};

fn t32(v: Vec<f32>, s: &[usize]) -> Tensor {
    Tensor::from_vec(v, s).unwrap()
}

#[test]
fn traces_once_per_signature_and_rust_side_effects_run_only_while_tracing() {
    let rust_calls = Rc::new(Cell::new(0));
    let rc = rust_calls.clone();
    let f = graph::function(move |a: &[Tensor]| {
        rc.set(rc.get() + 1); // like a Python print inside tf.function: trace time only
        Ok(vec![ops::add_scalar(&ops::mul(&a[0], &a[0])?, 1.0)?])
    });
    let x3 = t32(vec![1.0, 2.0, 3.0], &[3]);
    assert_eq!(
        f.call(&[x3.clone()]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![2.0, 5.0, 10.0]
    );
    assert_eq!(
        f.call(&[t32(vec![0.5, -1.0, 4.0], &[3])]).unwrap()[0]
            .to_vec::<f32>()
            .unwrap(),
        vec![1.25, 2.0, 17.0]
    );
    assert_eq!((f.trace_count(), rust_calls.get()), (1, 1));
    // A new shape traces again.
    let x4 = t32(vec![1.0, 2.0, 3.0, 4.0], &[4]);
    assert_eq!(
        f.call(&[x4]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![2.0, 5.0, 10.0, 17.0]
    );
    assert_eq!(f.trace_count(), 2);
    // A new dtype traces again.
    let x64 = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap();
    let y = f.call(&[x64.clone()]).unwrap();
    assert_eq!(y[0].dtype(), DType::F64);
    assert_eq!(y[0].to_vec::<f64>().unwrap(), vec![2.0, 5.0, 10.0]);
    assert_eq!(f.trace_count(), 3);
    // Known signatures do not.
    f.call(&[x3]).unwrap();
    f.call(&[x64]).unwrap();
    assert_eq!((f.trace_count(), rust_calls.get()), (3, 3));
    assert_eq!(f.concrete_functions().len(), 3);
}

#[test]
fn an_input_signature_with_unknown_dims_avoids_retracing() {
    let f = graph::function(|a: &[Tensor]| Ok(vec![ops::reduce_sum(&a[0], 1, false)?]))
        .input_signature(vec![TensorSpec {
            dtype: DType::F32,
            shape: vec![None, Some(2)],
        }]);
    for n in [1usize, 3, 5] {
        let x = t32((0..2 * n).map(|i| i as f32).collect(), &[n, 2]);
        let want: Vec<f32> = (0..n).map(|r| (4 * r + 1) as f32).collect();
        assert_eq!(f.call(&[x]).unwrap()[0].to_vec::<f32>().unwrap(), want);
    }
    assert_eq!(f.trace_count(), 1);
    let c = f.concrete_functions().remove(0);
    assert_eq!(c.input_specs()[0].shape, vec![None, Some(2)]);
    // Calls that do not fit the signature are errors naming the argument.
    let e = f
        .call(&[t32(vec![0.0; 6], &[2, 3])])
        .unwrap_err()
        .to_string();
    assert!(e.contains("argument 0") && e.contains("(None, 2)"), "{e}");
    let e = f
        .call(&[Tensor::from_vec(vec![0.0f64; 4], &[2, 2]).unwrap()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("float64") && e.contains("float32"), "{e}");
    let e = f.call(&[]).unwrap_err().to_string();
    assert!(e.contains("1 argument"), "{e}");
    assert_eq!(f.trace_count(), 1);
}

#[test]
fn side_effects_on_captured_variables_run_every_call() {
    let counter = Variable::new(Tensor::scalar(0.0f32), "counter");
    let c = counter.clone();
    let f = graph::function(move |a: &[Tensor]| {
        let before = c.value();
        c.assign_add(&Tensor::scalar(1.0f32))?;
        let after = c.value();
        let scaled = ops::mul(&a[0], &after)?;
        Ok(vec![before, after, scaled])
    });
    let x = t32(vec![2.0], &[1]);
    for i in 1..=3 {
        let out = f.call(&[x.clone()]).unwrap();
        let (before, after) = (i as f32 - 1.0, i as f32);
        assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![before]);
        assert_eq!(out[1].to_vec::<f32>().unwrap(), vec![after]);
        assert_eq!(out[2].to_vec::<f32>().unwrap(), vec![2.0 * after]);
        assert_eq!(counter.value().to_vec::<f32>().unwrap(), vec![after]);
    }
    assert_eq!(f.trace_count(), 1);
    // A side effect no output depends on still runs (automatic control dependencies).
    let c = counter.clone();
    let g = graph::function(move |a: &[Tensor]| {
        c.assign_sub(&Tensor::scalar(0.5f32))?;
        Ok(vec![ops::neg(&a[0])?])
    });
    g.call(&[x.clone()]).unwrap();
    g.call(&[x]).unwrap();
    assert_eq!(counter.value().to_vec::<f32>().unwrap(), vec![2.0]);
    assert_eq!(g.concrete_functions()[0].num_side_effects(), 1);
}

#[test]
fn captured_variables_are_read_live_each_call() {
    let w = Variable::new(t32(vec![1.0, 2.0], &[2]), "w");
    let wc = w.clone();
    let f = graph::function(move |a: &[Tensor]| Ok(vec![ops::mul(&a[0], &wc.value())?]));
    let x = t32(vec![3.0, 4.0], &[2]);
    assert_eq!(
        f.call(&[x.clone()]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![3.0, 8.0]
    );
    w.assign(&t32(vec![-1.0, 0.5], &[2])).unwrap();
    assert_eq!(
        f.call(&[x]).unwrap()[0].to_vec::<f32>().unwrap(),
        vec![-3.0, 2.0]
    );
    assert_eq!(f.trace_count(), 1);
}

#[test]
fn results_equal_eager_bit_for_bit() {
    let w = Variable::new(
        ops::random_normal(&[5, 4], 0.0, 1.0, DType::F32, 3).unwrap(),
        "w",
    );
    let b = Variable::new(t32(vec![0.1, -0.2, 0.3, 0.0], &[4]), "b");
    let body = {
        let (w, b) = (w.clone(), b.clone());
        move |a: &[Tensor]| -> ferroflow_core::Result<Vec<Tensor>> {
            let h = ops::relu(&ops::add(
                &ops::matmul(&a[0], &w.value(), false, false)?,
                &b.value(),
            )?)?;
            let s = ops::softmax(&h, -1)?;
            Ok(vec![
                s.clone(),
                ops::reduce_mean(
                    &ops::log(&ops::add_scalar(&s, 1e-3)?)?,
                    ops::Axes::All,
                    false,
                )?,
            ])
        }
    };
    let x = ops::random_uniform(&[7, 5], -1.0, 1.0, DType::F32, 9).unwrap();
    let eager_body = body.clone();
    let eager = eager_body(&[x.clone()]).unwrap();
    let f = graph::function(body);
    let traced = f.call(&[x]).unwrap();
    for (e, t) in eager.iter().zip(&traced) {
        assert_eq!(e.shape(), t.shape());
        let (e, t) = (e.to_vec::<f32>().unwrap(), t.to_vec::<f32>().unwrap());
        assert!(
            e.iter().zip(&t).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{e:?} vs {t:?}"
        );
    }
}

#[test]
fn gradients_with_a_tape_inside_a_traced_training_step() {
    // Linear least squares, one SGD step per call: w -= lr · 2/n · xᵀ(xw − y).
    let w = Variable::new(t32(vec![0.0, 0.0], &[2, 1]), "w");
    let wc = w.clone();
    let lr = 0.1;
    let step = graph::function(move |a: &[Tensor]| {
        let tape = GradientTape::new();
        let err = ops::sub(&ops::matmul(&a[0], &wc.value(), false, false)?, &a[1])?;
        let loss = ops::reduce_mean(&ops::square(&err)?, ops::Axes::All, false)?;
        let g = tape.gradient(&loss, &[&wc])?.remove(0).unwrap();
        wc.assign_sub(&ops::mul_scalar(&g, lr)?)?;
        Ok(vec![loss, g])
    });
    let xs = [[1.0f64, 2.0], [3.0, -1.0], [0.5, 0.5]];
    let ys = [1.0f64, 2.0, -0.5];
    let x = t32(xs.iter().flatten().map(|&v| v as f32).collect(), &[3, 2]);
    let y = t32(ys.iter().map(|&v| v as f32).collect(), &[3, 1]);
    let mut wr = [0.0f64; 2];
    for _ in 0..5 {
        // The reference, in f64 loops.
        let errs: Vec<f64> = (0..3)
            .map(|i| xs[i][0] * wr[0] + xs[i][1] * wr[1] - ys[i])
            .collect();
        let loss_ref = errs.iter().map(|e| e * e).sum::<f64>() / 3.0;
        let g_ref: Vec<f64> = (0..2)
            .map(|j| (0..3).map(|i| 2.0 * xs[i][j] * errs[i]).sum::<f64>() / 3.0)
            .collect();
        let out = step.call(&[x.clone(), y.clone()]).unwrap();
        assert!(
            (out[0].to_vec::<f32>().unwrap()[0] as f64 - loss_ref).abs() < 1e-5 * (1.0 + loss_ref)
        );
        let g = out[1].to_vec::<f32>().unwrap();
        for j in 0..2 {
            assert!((g[j] as f64 - g_ref[j]).abs() < 1e-5, "{g:?} vs {g_ref:?}");
            wr[j] -= lr * g_ref[j];
        }
        let wv = w.value().to_vec::<f32>().unwrap();
        assert!(
            (0..2).all(|j| (wv[j] as f64 - wr[j]).abs() < 1e-5),
            "{wv:?} vs {wr:?}"
        );
    }
    assert_eq!(step.trace_count(), 1);
}

#[test]
fn caller_tapes_do_not_record_the_trace() {
    let w = Variable::new(t32(vec![2.0], &[1]), "w");
    let wc = w.clone();
    let f = graph::function(move |a: &[Tensor]| Ok(vec![ops::mul(&a[0], &wc.value())?]));
    let tape = GradientTape::new();
    let y = f.call(&[t32(vec![3.0], &[1])]).unwrap();
    // The call is not differentiable from outside (not supported yet): no gradient, no error.
    assert!(tape.gradient(&y[0], &[&w]).unwrap()[0].is_none());
}

#[test]
fn closure_errors_surface_and_nothing_is_cached() {
    let f = graph::function(|a: &[Tensor]| Ok(vec![ops::matmul(&a[0], &a[0], false, false)?]));
    let e = f
        .call(&[t32(vec![0.0; 6], &[2, 3])])
        .unwrap_err()
        .to_string();
    assert!(e.contains("MatMul") || e.contains("matmul"), "{e}");
    assert_eq!(f.trace_count(), 0);
    // The same function works for a valid signature.
    let out = f.call(&[t32(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])]).unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![7.0, 10.0, 15.0, 22.0]);

    let g = graph::function(|_: &[Tensor]| -> ferroflow_core::Result<Vec<Tensor>> {
        Err(ferroflow_core::Error::invalid(
            "my_step",
            "the closure says no",
        ))
    });
    let e = g.call(&[t32(vec![1.0], &[1])]).unwrap_err().to_string();
    assert!(
        e.contains("my_step") && e.contains("the closure says no"),
        "{e}"
    );
    // Reading values of a symbolic tensor inside the closure is an error, not a silent value.
    let h = graph::function(|a: &[Tensor]| {
        let v = a[0].to_vec::<f32>()?;
        Ok(vec![Tensor::scalar(v[0])])
    });
    assert!(h.call(&[t32(vec![1.0], &[1])]).is_err());
    // Even through to_f64_vec, which gives no values for a symbolic tensor instead of an error.
    let k = graph::function(|a: &[Tensor]| {
        let n = a[0].to_f64_vec().len();
        Ok(vec![ops::mul_scalar(&a[0], n as f64)?])
    });
    let e = k.call(&[t32(vec![1.0], &[1])]).unwrap_err().to_string();
    assert!(e.contains("args_0") && e.contains("to_f64_vec"), "{e}");
}

#[test]
fn variables_created_while_tracing_are_lifted_out_as_eager_variables() {
    let made: Rc<RefCell<Option<Variable>>> = Rc::new(RefCell::new(None));
    let m = made.clone();
    let f = graph::function(move |a: &[Tensor]| {
        let mut slot = m.borrow_mut();
        if slot.is_none() {
            // An initial value built from ops (symbolic while tracing) that needs no argument.
            let init = ops::add_scalar(&ops::zeros(&[2], DType::F32), 5.0)?;
            *slot = Some(Variable::new(init, "acc"));
        }
        let v = slot.clone().unwrap();
        v.assign_add(&a[0])?;
        Ok(vec![v.value()])
    });
    let out = f.call(&[t32(vec![1.0, 2.0], &[2])]).unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![6.0, 7.0]);
    f.call(&[t32(vec![1.0, 2.0], &[2])]).unwrap();
    let v = made.borrow().clone().unwrap();
    assert!(v.graph().is_none());
    assert_eq!(v.value().to_vec::<f32>().unwrap(), vec![7.0, 9.0]);

    let bad = graph::function(|a: &[Tensor]| {
        let v = Variable::new(ops::mul_scalar(&a[0], 2.0)?, "from_arg");
        Ok(vec![v.value()])
    });
    let e = bad.call(&[t32(vec![1.0], &[1])]).unwrap_err().to_string();
    assert!(e.contains("from_arg") && e.contains("arguments"), "{e}");
}
