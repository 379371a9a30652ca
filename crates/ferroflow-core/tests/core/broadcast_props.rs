//! Property tests for NumPy broadcasting: values against a naive index computation, gradients
//! summed back to each input's shape, and incompatible shapes rejected with an error.

use ferroflow_core::{ops, GradientTape, Tensor};
use proptest::prelude::*;

/// An output shape (rank 0..=4, dims 1..=4) and two input shapes that broadcast to it: each input
/// drops some leading dims and turns some dims into 1.
fn broadcast_case() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1usize..=4, 0..=4).prop_flat_map(|out| {
        let r = out.len();
        (
            Just(out.clone()),
            0..=r,
            prop::collection::vec(any::<bool>(), r),
            0..=r,
            prop::collection::vec(any::<bool>(), r),
        )
            .prop_map(|(out, da, ones_a, db, ones_b)| {
                let mk = |drop: usize, ones: &[bool]| -> Vec<usize> {
                    (drop..out.len())
                        .map(|i| if ones[i] { 1 } else { out[i] })
                        .collect()
                };
                let (a, b) = (mk(da, &ones_a), mk(db, &ones_b));
                (out, a, b)
            })
    })
}

/// Row-major index of output element `flat` inside an input of `shape`, broadcast to `out`.
fn source_index(flat: usize, out: &[usize], shape: &[usize]) -> usize {
    let mut rem = flat;
    let mut coords = vec![0; out.len()];
    for i in (0..out.len()).rev() {
        coords[i] = rem % out[i];
        rem /= out[i];
    }
    let extra = out.len() - shape.len();
    let mut idx = 0;
    for (j, &d) in shape.iter().enumerate() {
        let c = if d == 1 { 0 } else { coords[j + extra] };
        idx = idx * d + c;
    }
    idx
}

fn values(shape: &[usize], offset: f64) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(
        (0..n).map(|i| i as f64 * 0.5 + offset).collect::<Vec<_>>(),
        shape,
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn binary_ops_broadcast_like_numpy((_out, sa, sb) in broadcast_case()) {
        let (a, b) = (values(&sa, 1.0), values(&sb, -3.0));
        let s = ops::sub(&a, &b).unwrap();
        // NumPy's rule, computed independently: right-align, missing dims are 1, take the max
        // (the case generator guarantees each pair is equal or contains a 1).
        let rank = sa.len().max(sb.len());
        let dim = |s: &[usize], i: usize| if i + s.len() >= rank { s[i + s.len() - rank] } else { 1 };
        let expected_shape: Vec<usize> = (0..rank).map(|i| dim(&sa, i).max(dim(&sb, i))).collect();
        prop_assert_eq!(s.shape(), &expected_shape[..]);
        let (av, bv, sv) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap(), s.to_vec::<f64>().unwrap());
        for (k, &got) in sv.iter().enumerate() {
            let want = av[source_index(k, &expected_shape, &sa)] - bv[source_index(k, &expected_shape, &sb)];
            prop_assert_eq!(got, want, "element {}", k);
        }
        // Swapping the operands broadcasts the same way.
        let swapped = ops::add(&b, &a).unwrap();
        prop_assert_eq!(swapped.shape(), &expected_shape[..]);
    }

    #[test]
    fn broadcast_gradients_sum_back_to_input_shapes((_out, sa, sb) in broadcast_case()) {
        let (a, b) = (values(&sa, 1.0), values(&sb, -3.0));
        let tape = GradientTape::new();
        tape.watch(&a);
        tape.watch(&b);
        let y = ops::mul(&a, &b).unwrap();
        let n_out = y.num_elements() as f64;
        let g = tape.gradient(&y, &[&a, &b]).unwrap();
        let (ga, gb) = (g[0].clone().unwrap(), g[1].clone().unwrap());
        prop_assert_eq!(ga.shape(), &sa[..]);
        prop_assert_eq!(gb.shape(), &sb[..]);
        // d/da Σ a·b = Σ over the broadcast copies of b: the totals match Σ_out b_src.
        let total_a: f64 = ga.to_vec::<f64>().unwrap().iter().sum();
        let mean_b: f64 = b.to_vec::<f64>().unwrap().iter().sum::<f64>() / b.num_elements() as f64;
        prop_assert!((total_a - n_out * mean_b).abs() < 1e-9 * (1.0 + total_a.abs()), "{} vs {}", total_a, n_out * mean_b);
    }

    #[test]
    fn broadcast_to_then_reduce_to_shape_multiplies_by_the_copy_count((out, sa, _sb) in broadcast_case()) {
        let a = values(&sa, 2.0);
        let big = ops::broadcast_to(&a, &out).unwrap();
        prop_assert_eq!(big.shape(), &out[..]);
        let back = ops::reduce_to_shape(&big, &sa).unwrap();
        let copies = (out.iter().product::<usize>() / sa.iter().product::<usize>().max(1)) as f64;
        let want: Vec<f64> = a.to_vec::<f64>().unwrap().iter().map(|v| v * copies).collect();
        prop_assert_eq!(back.to_vec::<f64>().unwrap(), want);
    }

    #[test]
    fn incompatible_shapes_are_errors(d in 2usize..5, e in 2usize..5, rank in 1usize..4) {
        prop_assume!(d != e);
        let mut sa = vec![3; rank];
        let mut sb = vec![3; rank];
        sa[rank - 1] = d;
        sb[rank - 1] = e;
        let err = ops::add(&values(&sa, 0.0), &values(&sb, 0.0)).unwrap_err().to_string();
        prop_assert!(err.contains("AddV2"), "{}", err);
        let shown = |s: &[usize]| format!("({})", s.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "));
        let (fa, fb) = if rank == 1 { (format!("({d},)"), format!("({e},)")) } else { (shown(&sa), shown(&sb)) };
        prop_assert!(err.contains(&fa) && err.contains(&fb), "{}", err);
    }
}
