//! Determinism: the same seeded computation (random init, matmul, conv, pooling, softmax,
//! reductions, dropout and the gradients of all of them) gives bit-identical results on a 1-thread
//! and a 2-thread pool. Shapes are large enough that every kernel takes its parallel path.

use ferroflow_core::ops::{self, Axes, Padding};
use ferroflow_core::{DType, GradientTape, Tensor, Variable};

/// One training-like step of a small CNN; returns every value and gradient as raw bits.
fn step() -> Vec<Vec<u32>> {
    let x = ops::random_normal(&[16, 14, 14, 8], 0.0, 1.0, DType::F32, 7).unwrap();
    let k = Variable::new(
        ops::truncated_normal(&[3, 3, 8, 32], 0.0, 0.1, DType::F32, 8).unwrap(),
        "k",
    );
    let w = Variable::new(
        ops::random_uniform(&[6 * 6 * 32, 10], -0.05, 0.05, DType::F32, 9).unwrap(),
        "w",
    );
    let labels = ops::random_uniform_int(&[16], 0, 10, DType::I64, 10).unwrap();
    let tape = GradientTape::new();
    let h =
        ops::relu(&ops::conv2d(&x, &k.value(), [1, 1], Padding::Valid, [1, 1]).unwrap()).unwrap();
    let h = ops::max_pool2d(&h, [2, 2], [2, 2], Padding::Valid).unwrap();
    let h = ops::dropout(&h, 0.25, 11, None).unwrap();
    let flat = ops::reshape(&h, &[16, -1]).unwrap();
    let logits = ops::matmul(&flat, &w.value(), false, false).unwrap();
    let per_example = ops::sparse_softmax_cross_entropy_with_logits(&labels, &logits).unwrap();
    let loss = ops::reduce_mean(&per_example, Axes::All, false).unwrap();
    let big = ops::random_normal(&[512, 1024], 0.0, 1.0, DType::F32, 12).unwrap();
    let sums = ops::reduce_sum(&ops::softmax(&big, -1).unwrap(), Axes::from(0), false).unwrap();
    let grads = tape.gradient(&loss, &[&k, &w]).unwrap();
    let bits = |t: &Tensor| {
        t.to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    vec![
        bits(&loss),
        bits(&logits),
        bits(&sums),
        bits(grads[0].as_ref().unwrap()),
        bits(grads[1].as_ref().unwrap()),
    ]
}

#[test]
fn one_and_two_threads_give_identical_bits() {
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(step)
    };
    let one = run(1);
    let two = run(2);
    for (i, (a, b)) in one.iter().zip(&two).enumerate() {
        assert_eq!(a.len(), b.len());
        let diff = a.iter().zip(b).filter(|(x, y)| x != y).count();
        assert_eq!(
            diff,
            0,
            "result {i}: {diff} of {} elements differ between 1 and 2 threads",
            a.len()
        );
    }
    // And a rerun on the same pool size reproduces it.
    assert_eq!(one, run(1));
}
