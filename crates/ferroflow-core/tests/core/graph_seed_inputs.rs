//! Random ops whose seed is an input of a traced function
//! (`ConcreteFunction::trace_with_seed_inputs`, `graph::random::SeedInput`).

use ferroflow_core::graph::ConcreteFunction;
use ferroflow_core::op::TensorSpec;
use ferroflow_core::{ops, DType, GradientTape, Tensor, Variable};

fn f32s(t: &Tensor) -> Vec<u32> {
    t.to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn each_random_op_gets_a_seed_argument_and_draws_with_the_fed_seed() {
    let specs = [TensorSpec::new(DType::F32, &[4, 5])];
    let f = ConcreteFunction::trace_with_seed_inputs(&specs, |a| {
        let d = ops::dropout(&a[0], 0.5, 11, None)?;
        let n = ops::random_normal(&[4, 5], 0.0, 1.0, DType::F32, 22)?;
        Ok(vec![ops::add(&d, &n)?])
    })
    .unwrap();
    // Two random ops (the dropout mask, the normal fill), traced with seeds 11 and 22.
    assert_eq!(f.random_seeds(), &[11, 22]);
    assert_eq!(f.input_specs().len(), 3);
    let x = ops::random_normal(&[4, 5], 0.0, 1.0, DType::F32, 1).unwrap();
    let eager = |s1: u64, s2: u64| {
        let d = ops::dropout(&x, 0.5, s1, None).unwrap();
        let n = ops::random_normal(&[4, 5], 0.0, 1.0, DType::F32, s2).unwrap();
        f32s(&ops::add(&d, &n).unwrap())
    };
    let call = |s1: u64, s2: u64| {
        let out = f
            .call(&[
                x.clone(),
                Tensor::scalar(s1 as i64),
                Tensor::scalar(s2 as i64),
            ])
            .unwrap();
        f32s(&out[0])
    };
    // The fed seeds decide, run after run (no hidden run count): equal to the eager ops.
    assert_eq!(call(11, 22), eager(11, 22));
    assert_eq!(call(11, 22), eager(11, 22));
    assert_eq!(call(5, 6), eager(5, 6));
    // A seed above i64::MAX travels as its 64 bits.
    let big = u64::MAX - 3;
    assert_eq!(call(big, 6), eager(big, 6));
    assert_ne!(call(5, 6), call(7, 6));
}

#[test]
fn plain_trace_keeps_seeds_as_attributes() {
    let specs = [TensorSpec::new(DType::F32, &[3])];
    let f =
        ConcreteFunction::trace(&specs, |a| Ok(vec![ops::dropout(&a[0], 0.5, 3, None)?])).unwrap();
    assert!(f.random_seeds().is_empty());
    assert_eq!(f.input_specs().len(), 1);
}

#[test]
fn gradients_flow_through_a_seed_fed_dropout() {
    // The traced gradient of sum(dropout(w)) is the mask the fed seed draws.
    let w = Variable::new(Tensor::from_vec(vec![1.0f32; 8], &[8]).unwrap(), "w");
    let wc = w.clone();
    let f = ConcreteFunction::trace_with_seed_inputs(&[], move |_| {
        let tape = GradientTape::new();
        tape.watch(&wc);
        let y = ops::dropout(&wc.value(), 0.5, 9, None)?;
        let loss = ops::reduce_sum(&y, ops::Axes::All, false)?;
        let g = tape.gradient(&loss, &[&wc])?.remove(0);
        Ok(vec![g.expect("a gradient")])
    })
    .unwrap();
    assert_eq!(f.random_seeds(), &[9]);
    for seed in [9u64, 10, 12345] {
        let got = f.call(&[Tensor::scalar(seed as i64)]).unwrap();
        let ones = Tensor::from_vec(vec![1.0f32; 8], &[8]).unwrap();
        let mask = ops::dropout(&ones, 0.5, seed, None).unwrap();
        assert_eq!(f32s(&got[0]), f32s(&mask), "seed {seed}");
    }
}

#[test]
fn a_bad_seed_argument_is_an_error() {
    let specs = [TensorSpec::new(DType::F32, &[3])];
    let f = ConcreteFunction::trace_with_seed_inputs(&specs, |a| {
        Ok(vec![ops::dropout(&a[0], 0.5, 3, None)?])
    })
    .unwrap();
    let x = Tensor::from_vec(vec![1.0f32; 3], &[3]).unwrap();
    // Missing: the argument count is wrong.
    let e = f.call(&[x.clone()]).unwrap_err().to_string();
    assert!(e.contains("2 argument(s) but 1"), "{e}");
    // A float seed: the placeholder's dtype check names it.
    let e = f
        .call(&[x, Tensor::scalar(1.0f32)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("random_seed") && e.contains("int64"), "{e}");
}
