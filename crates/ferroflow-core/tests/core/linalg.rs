use ferroflow_core::ops::{self, Axes, NormOrd, TensordotAxes};
use ferroflow_core::testing::{assert_close, check_gradients, test_tensor};
use ferroflow_core::{DType, Error, Tensor};

/// Reference batched matmul on explicit row-major data: `a` is `[batch_a.., m/k..]` etc.
/// Operands are given already logically transposed by index arithmetic below.
fn naive_mat(a: &[f64], rows: usize, cols: usize, trans: bool, i: usize, j: usize) -> f64 {
    // Element (i, j) of op(A) where A is stored row-major as rows x cols.
    let _ = rows;
    if trans {
        a[j * cols + i]
    } else {
        a[i * cols + j]
    }
}

/// Naive product of `a` (`[ba.., ra, ca]`) and `b` (`[bb.., rb, cb]`) with NumPy batch
/// broadcasting, written with plain loops.
fn naive_matmul(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> (Vec<usize>, Vec<f64>) {
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    let (da, db) = (a.to_f64_vec(), b.to_f64_vec());
    let (ra, ca) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (rb, cb) = (sb[sb.len() - 2], sb[sb.len() - 1]);
    let (m, k) = if ta { (ca, ra) } else { (ra, ca) };
    let n = if tb { rb } else { cb };
    let ba = &sa[..sa.len() - 2];
    let bb = &sb[..sb.len() - 2];
    let r = ba.len().max(bb.len());
    let pad = |s: &[usize]| -> Vec<usize> {
        let mut v = vec![1; r - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (pa, pb) = (pad(ba), pad(bb));
    let batch: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| x.max(y)).collect();
    let nb: usize = batch.iter().product();
    let mut out = Vec::new();
    for bi in 0..nb {
        // Unravel bi over batch, then ravel into a's and b's batch index.
        let mut rem = bi;
        let mut idx = vec![0; r];
        for d in (0..r).rev() {
            idx[d] = rem % batch[d];
            rem /= batch[d];
        }
        let (mut ia, mut ib) = (0, 0);
        for d in 0..r {
            ia = ia * pa[d] + if pa[d] == 1 { 0 } else { idx[d] };
            ib = ib * pb[d] + if pb[d] == 1 { 0 } else { idx[d] };
        }
        let ma = &da[ia * ra * ca..(ia + 1) * ra * ca];
        let mb = &db[ib * rb * cb..(ib + 1) * rb * cb];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    s += naive_mat(ma, ra, ca, ta, i, p) * naive_mat(mb, rb, cb, tb, p, j);
                }
                out.push(s);
            }
        }
    }
    let mut shape = batch;
    shape.push(m);
    shape.push(n);
    (shape, out)
}

fn check_against_naive(a: &Tensor, b: &Tensor, ta: bool, tb: bool) {
    let (shape, want) = naive_matmul(a, b, ta, tb);
    let got = ops::matmul(a, b, ta, tb).unwrap();
    assert_eq!(got.shape(), &shape[..], "ta={ta} tb={tb}");
    assert_close(&got.to_f64_vec(), &want, 1e-10, 1e-10);
}

#[test]
fn matmul_matches_naive_loops_for_every_transpose_flag() {
    for &(ta, tb) in &[(false, false), (false, true), (true, false), (true, true)] {
        let a = if ta {
            test_tensor(&[4, 3], 1, -1.0, 1.0)
        } else {
            test_tensor(&[3, 4], 1, -1.0, 1.0)
        };
        let b = if tb {
            test_tensor(&[5, 4], 2, -1.0, 1.0)
        } else {
            test_tensor(&[4, 5], 2, -1.0, 1.0)
        };
        check_against_naive(&a, &b, ta, tb);
    }
}

#[test]
fn matmul_hand_computed_values() {
    let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let b = Tensor::from_vec(vec![7.0f32, 8.0, 9.0, 10.0, 11.0, 12.0], &[3, 2]).unwrap();
    let c = ops::matmul(&a, &b, false, false).unwrap();
    assert_eq!(c.shape(), &[2, 2]);
    assert_eq!(c.to_vec::<f32>().unwrap(), vec![58.0, 64.0, 139.0, 154.0]);
}

#[test]
fn matmul_batch_broadcast() {
    let a = test_tensor(&[2, 1, 3, 4], 3, -1.0, 1.0);
    let b = test_tensor(&[5, 4, 2], 4, -1.0, 1.0);
    let c = ops::matmul(&a, &b, false, false).unwrap();
    assert_eq!(c.shape(), &[2, 5, 3, 2]);
    check_against_naive(&a, &b, false, false);
    // Rank-2 against a batch, and with transposes.
    let w = test_tensor(&[2, 4], 5, -1.0, 1.0);
    check_against_naive(&a, &w, false, true);
    let a2 = test_tensor(&[5, 4, 3], 6, -1.0, 1.0);
    check_against_naive(&a2, &b, true, false);
    // Batch dims 3 and 5 do not broadcast.
    let a3 = test_tensor(&[3, 3, 4], 6, -1.0, 1.0);
    let msg = ops::matmul(&a3, &b, false, false).unwrap_err().to_string();
    assert!(
        msg.contains("BatchMatMulV2") && msg.contains("(3, 3, 4)") && msg.contains("(5, 4, 2)"),
        "{msg}"
    );
}

#[test]
fn matmul_non_contiguous_inputs() {
    // Transposed views and a broadcast view are read through their strides.
    let base = test_tensor(&[4, 3], 7, -1.0, 1.0);
    let at = ops::transpose(&base, &[1, 0]).unwrap(); // [3, 4], non-contiguous
    assert!(!at.is_contiguous());
    let b = test_tensor(&[4, 2], 8, -1.0, 1.0);
    let got = ops::matmul(&at, &b, false, false).unwrap();
    let at_c = Tensor::from_vec(at.to_f64_vec(), &[3, 4]).unwrap();
    check_against_naive(&at_c, &b, false, false);
    let (_, want) = naive_matmul(&at_c, &b, false, false);
    assert_close(&got.to_f64_vec(), &want, 1e-12, 1e-12);
    // Transposed view with transpose flag: equals base·b with shapes [4,3]ᵀᵀ...
    let got = ops::matmul(&at, &b, true, false);
    assert!(got.is_err(), "inner dims 3 vs 4 must fail");
    // A batch view with permuted batch axes.
    let x = test_tensor(&[3, 2, 4], 9, -1.0, 1.0);
    let xp = ops::transpose(&x, &[1, 0, 2]).unwrap(); // [2, 3, 4]
    let y = test_tensor(&[4, 5], 10, -1.0, 1.0);
    let got = ops::matmul(&xp, &y, false, false).unwrap();
    let xp_c = Tensor::from_vec(xp.to_f64_vec(), &[2, 3, 4]).unwrap();
    let (_, want) = naive_matmul(&xp_c, &y, false, false);
    assert_close(&got.to_f64_vec(), &want, 1e-12, 1e-12);
    // A broadcast (zero-stride) operand.
    let v = test_tensor(&[1, 4], 11, -1.0, 1.0);
    let vb = ops::broadcast_to(&v, &[3, 4]).unwrap();
    let got = ops::matmul(&vb, &y, false, false).unwrap();
    let vb_c = Tensor::from_vec(vb.to_f64_vec(), &[3, 4]).unwrap();
    let (_, want) = naive_matmul(&vb_c, &y, false, false);
    assert_close(&got.to_f64_vec(), &want, 1e-12, 1e-12);
}

#[test]
fn matmul_half_precision_and_empty() {
    let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    for dt in [DType::F16, DType::BF16] {
        let h = ops::cast(&a, dt).unwrap();
        let c = ops::matmul(&h, &h, false, false).unwrap();
        assert_eq!(c.dtype(), dt);
        assert_eq!(c.to_f64_vec(), vec![7.0, 10.0, 15.0, 22.0]);
    }
    // k = 0 gives zeros; m = 0 gives an empty result.
    let z = ops::matmul(
        &Tensor::from_vec(Vec::<f32>::new(), &[2, 0]).unwrap(),
        &Tensor::from_vec(Vec::<f32>::new(), &[0, 3]).unwrap(),
        false,
        false,
    )
    .unwrap();
    assert_eq!(z.shape(), &[2, 3]);
    assert_eq!(z.to_vec::<f32>().unwrap(), vec![0.0; 6]);
    let e = ops::matmul(
        &Tensor::from_vec(Vec::<f32>::new(), &[0, 2]).unwrap(),
        &a,
        false,
        false,
    )
    .unwrap();
    assert_eq!(e.shape(), &[0, 2]);
}

#[test]
fn matmul_errors_name_the_op_and_shapes() {
    let a = Tensor::from_vec(vec![0.0f32; 6], &[2, 3]).unwrap();
    let b = Tensor::from_vec(vec![0.0f32; 8], &[4, 2]).unwrap();
    let e = ops::matmul(&a, &b, false, false).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Shape { .. }), "{msg}");
    assert!(
        msg.contains("MatMul") && msg.contains("(2, 3)") && msg.contains("(4, 2)"),
        "{msg}"
    );
    let a3 = Tensor::from_vec(vec![0.0f32; 12], &[2, 2, 3]).unwrap();
    let b3 = Tensor::from_vec(vec![0.0f32; 18], &[3, 3, 2]).unwrap();
    let msg = ops::matmul(&a3, &b3, false, false).unwrap_err().to_string();
    assert!(
        msg.contains("BatchMatMulV2") && msg.contains("(2, 2, 3)") && msg.contains("(3, 3, 2)"),
        "{msg}"
    );
    let v = Tensor::from_vec(vec![0.0f32; 3], &[3]).unwrap();
    assert!(ops::matmul(&v, &a, false, false).is_err());
    let i = Tensor::from_vec(vec![1i32; 4], &[2, 2]).unwrap();
    assert!(matches!(
        ops::matmul(&i, &i, false, false),
        Err(Error::DType { .. })
    ));
    let d = Tensor::from_vec(vec![1.0f64; 4], &[2, 2]).unwrap();
    let f = Tensor::from_vec(vec![1.0f32; 4], &[2, 2]).unwrap();
    assert!(matches!(
        ops::matmul(&d, &f, false, false),
        Err(Error::DType { .. })
    ));
}

#[test]
fn matmul_gradients_every_transpose_flag() {
    for &(ta, tb) in &[(false, false), (false, true), (true, false), (true, true)] {
        let a = if ta {
            test_tensor(&[4, 3], 12, -1.0, 1.0)
        } else {
            test_tensor(&[3, 4], 12, -1.0, 1.0)
        };
        let b = if tb {
            test_tensor(&[2, 4], 13, -1.0, 1.0)
        } else {
            test_tensor(&[4, 2], 13, -1.0, 1.0)
        };
        check_gradients(|x| ops::matmul(&x[0], &x[1], ta, tb), &[a, b], &[0, 1])
            .unwrap_or_else(|e| panic!("ta={ta} tb={tb}: {e}"));
    }
}

#[test]
fn matmul_gradients_batch_broadcast() {
    for &(ta, tb) in &[(false, false), (true, true), (false, true)] {
        let a = if ta {
            test_tensor(&[2, 1, 4, 3], 14, -1.0, 1.0)
        } else {
            test_tensor(&[2, 1, 3, 4], 14, -1.0, 1.0)
        };
        let b = if tb {
            test_tensor(&[5, 2, 4], 15, -1.0, 1.0)
        } else {
            test_tensor(&[5, 4, 2], 15, -1.0, 1.0)
        };
        check_gradients(|x| ops::matmul(&x[0], &x[1], ta, tb), &[a, b], &[0, 1])
            .unwrap_or_else(|e| panic!("ta={ta} tb={tb}: {e}"));
    }
    // Rank-2 weight shared over a batch.
    let x = test_tensor(&[3, 2, 4], 16, -1.0, 1.0);
    let w = test_tensor(&[4, 3], 17, -1.0, 1.0);
    check_gradients(
        |v| ops::matmul(&v[0], &v[1], false, false),
        &[x, w],
        &[0, 1],
    )
    .unwrap();
}

#[test]
fn tensordot_values_and_gradients() {
    let a = test_tensor(&[2, 3, 4], 20, -1.0, 1.0);
    let b = test_tensor(&[4, 3, 5], 21, -1.0, 1.0);
    // Contract a's axes (1, 2) with b's axes (1, 0): out[i, l] = Σ_jk a[i,j,k] b[k,j,l].
    let c = ops::tensordot(&a, &b, TensordotAxes::Pairs(vec![1, 2], vec![1, 0])).unwrap();
    assert_eq!(c.shape(), &[2, 5]);
    let (da, db) = (a.to_f64_vec(), b.to_f64_vec());
    let mut want = vec![0.0; 10];
    for i in 0..2 {
        for l in 0..5 {
            for j in 0..3 {
                for k in 0..4 {
                    want[i * 5 + l] += da[i * 12 + j * 4 + k] * db[k * 15 + j * 5 + l];
                }
            }
        }
    }
    assert_close(&c.to_f64_vec(), &want, 1e-12, 1e-12);
    // N = 1: last axis of a with the first of b.
    let c1 = ops::tensordot(&a, &b, TensordotAxes::N(1)).unwrap();
    assert_eq!(c1.shape(), &[2, 3, 3, 5]);
    let mut want1 = vec![0.0; 90];
    for i in 0..2 {
        for j in 0..3 {
            for q in 0..3 {
                for l in 0..5 {
                    for k in 0..4 {
                        want1[((i * 3 + j) * 3 + q) * 5 + l] +=
                            da[i * 12 + j * 4 + k] * db[k * 15 + q * 5 + l];
                    }
                }
            }
        }
    }
    assert_close(&c1.to_f64_vec(), &want1, 1e-12, 1e-12);
    check_gradients(
        |x| ops::tensordot(&x[0], &x[1], TensordotAxes::Pairs(vec![1, -1], vec![1, 0])),
        &[a.clone(), b.clone()],
        &[0, 1],
    )
    .unwrap();
    check_gradients(
        |x| ops::tensordot(&x[0], &x[1], TensordotAxes::N(0)),
        &[
            test_tensor(&[2], 22, -1.0, 1.0),
            test_tensor(&[3], 23, -1.0, 1.0),
        ],
        &[0, 1],
    )
    .unwrap();
    // Errors.
    let msg = ops::tensordot(&a, &b, TensordotAxes::N(2))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("Tensordot") && msg.contains("(2, 3, 4)"),
        "{msg}"
    );
    assert!(ops::tensordot(&a, &b, TensordotAxes::N(4)).is_err());
    assert!(ops::tensordot(&a, &b, TensordotAxes::Pairs(vec![2, 2], vec![0, 0])).is_err());
}

/// Checks `einsum(eq)` against `want` and its gradient by finite differences.
fn einsum_case(eq: &str, xs: &[Tensor], want_shape: &[usize], want: &[f64]) {
    let refs: Vec<&Tensor> = xs.iter().collect();
    let y = ops::einsum(eq, &refs).unwrap();
    assert_eq!(y.shape(), want_shape, "{eq}");
    assert_close(&y.to_f64_vec(), want, 1e-12, 1e-12);
    let wrt: Vec<usize> = (0..xs.len()).collect();
    check_gradients(
        |v| {
            let r: Vec<&Tensor> = v.iter().collect();
            ops::einsum(eq, &r)
        },
        xs,
        &wrt,
    )
    .unwrap_or_else(|e| panic!("{eq}: {e}"));
}

#[test]
fn einsum_common_forms() {
    let a = test_tensor(&[2, 3], 30, -1.0, 1.0);
    let b = test_tensor(&[3, 4], 31, -1.0, 1.0);
    let (da, db) = (a.to_f64_vec(), b.to_f64_vec());
    // ij,jk->ik
    let mut want = vec![0.0; 8];
    for i in 0..2 {
        for k in 0..4 {
            for j in 0..3 {
                want[i * 4 + k] += da[i * 3 + j] * db[j * 4 + k];
            }
        }
    }
    einsum_case("ij,jk->ik", &[a.clone(), b.clone()], &[2, 4], &want);
    // Implicit output (alphabetical labels appearing once) gives the same.
    let imp = ops::einsum("ij,jk", &[&a, &b]).unwrap();
    assert_close(&imp.to_f64_vec(), &want, 1e-12, 1e-12);
    // ij->ji
    let mut want = vec![0.0; 6];
    for i in 0..2 {
        for j in 0..3 {
            want[j * 2 + i] = da[i * 3 + j];
        }
    }
    einsum_case("ij->ji", &[a.clone()], &[3, 2], &want);
    // ij->i
    let want: Vec<f64> = (0..2)
        .map(|i| (0..3).map(|j| da[i * 3 + j]).sum())
        .collect();
    einsum_case("ij->i", &[a.clone()], &[2], &want);
    // i,j->ij and i,i->
    let u = test_tensor(&[3], 32, -1.0, 1.0);
    let v = test_tensor(&[4], 33, -1.0, 1.0);
    let w = test_tensor(&[3], 34, -1.0, 1.0);
    let (du, dv, dw) = (u.to_f64_vec(), v.to_f64_vec(), w.to_f64_vec());
    let want: Vec<f64> = (0..12).map(|q| du[q / 4] * dv[q % 4]).collect();
    einsum_case("i,j->ij", &[u.clone(), v.clone()], &[3, 4], &want);
    let dot: f64 = (0..3).map(|i| du[i] * dw[i]).sum();
    einsum_case("i,i->", &[u.clone(), w.clone()], &[], &[dot]);
    // bi,ij->bj
    let x = test_tensor(&[5, 3], 35, -1.0, 1.0);
    let dx = x.to_f64_vec();
    let mut want = vec![0.0; 20];
    for bb in 0..5 {
        for j in 0..4 {
            for i in 0..3 {
                want[bb * 4 + j] += dx[bb * 3 + i] * db[i * 4 + j];
            }
        }
    }
    einsum_case("bi,ij->bj", &[x, b.clone()], &[5, 4], &want);
    // bij,bjk->bik
    let p = test_tensor(&[2, 3, 2], 36, -1.0, 1.0);
    let q = test_tensor(&[2, 2, 4], 37, -1.0, 1.0);
    let (dp, dq) = (p.to_f64_vec(), q.to_f64_vec());
    let mut want = vec![0.0; 24];
    for bb in 0..2 {
        for i in 0..3 {
            for k in 0..4 {
                for j in 0..2 {
                    want[(bb * 3 + i) * 4 + k] +=
                        dp[(bb * 3 + i) * 2 + j] * dq[(bb * 2 + j) * 4 + k];
                }
            }
        }
    }
    einsum_case("bij,bjk->bik", &[p, q], &[2, 3, 4], &want);
    // bhqd,bhkd->bhqk (attention scores)
    let qt = test_tensor(&[2, 2, 3, 4], 38, -1.0, 1.0);
    let kt = test_tensor(&[2, 2, 5, 4], 39, -1.0, 1.0);
    let (dq, dk) = (qt.to_f64_vec(), kt.to_f64_vec());
    let mut want = vec![0.0; 2 * 2 * 3 * 5];
    for bh in 0..4 {
        for i in 0..3 {
            for j in 0..5 {
                for d in 0..4 {
                    want[(bh * 3 + i) * 5 + j] +=
                        dq[(bh * 3 + i) * 4 + d] * dk[(bh * 5 + j) * 4 + d];
                }
            }
        }
    }
    einsum_case("bhqd,bhkd->bhqk", &[qt, kt], &[2, 2, 3, 5], &want);
    // A label summed away inside one operand before the product: ij,jk->k
    let mut want = vec![0.0; 4];
    for k in 0..4 {
        for i in 0..2 {
            for j in 0..3 {
                want[k] += da[i * 3 + j] * db[j * 4 + k];
            }
        }
    }
    einsum_case("ij,jk->k", &[a.clone(), b.clone()], &[4], &want);
    // Three operands: i,ij,j->
    let mut s = 0.0;
    let u2 = test_tensor(&[2], 40, -1.0, 1.0);
    let du2 = u2.to_f64_vec();
    for i in 0..2 {
        for j in 0..3 {
            s += du2[i] * da[i * 3 + j] * dw[j];
        }
    }
    einsum_case("i,ij,j->", &[u2, a.clone(), w], &[], &[s]);
}

#[test]
fn einsum_rejects_unsupported_forms() {
    let a = test_tensor(&[3, 3], 41, -1.0, 1.0);
    let b = test_tensor(&[3, 4], 42, -1.0, 1.0);
    for (eq, xs) in [
        ("ii->i", vec![&a]),
        ("...ij->ij", vec![&a]),
        ("ij,jk->iz", vec![&a, &b]),
        ("ij,jk->ik", vec![&a]),
    ] {
        let e = ops::einsum(eq, &xs).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{eq}: {e}");
        assert!(e.to_string().contains("Einsum"), "{eq}: {e}");
    }
    let e = ops::einsum("ij,jk->ik", &[&b, &b]).unwrap_err();
    assert!(
        e.to_string().contains("Einsum") && e.to_string().contains("(3, 4)"),
        "{e}"
    );
}

#[test]
fn norm_values() {
    let x = Tensor::from_vec(vec![1.0f64, -2.0, 3.0, -4.0, 5.0, -6.0], &[2, 3]).unwrap();
    let all = ops::norm(&x, NormOrd::Euclidean, Axes::All, false).unwrap();
    assert_eq!(all.shape(), &[] as &[usize]);
    assert_close(&all.to_f64_vec(), &[91f64.sqrt()], 1e-12, 0.0);
    let rows = ops::norm(&x, NormOrd::Euclidean, 1, false).unwrap();
    assert_close(
        &rows.to_f64_vec(),
        &[14f64.sqrt(), 77f64.sqrt()],
        1e-12,
        0.0,
    );
    let cols = ops::norm(&x, NormOrd::One, 0, true).unwrap();
    assert_eq!(cols.shape(), &[1, 3]);
    assert_eq!(cols.to_f64_vec(), vec![5.0, 7.0, 9.0]);
    let inf = ops::norm(&x, NormOrd::Inf, -1, false).unwrap();
    assert_eq!(inf.to_f64_vec(), vec![3.0, 6.0]);
    // Matrix norms: fro, 1 (max column sum), inf (max row sum).
    let fro = ops::norm(&x, NormOrd::Fro, [0, 1], false).unwrap();
    assert_close(&fro.to_f64_vec(), &[91f64.sqrt()], 1e-12, 0.0);
    let m1 = ops::norm(&x, NormOrd::One, [0, 1], false).unwrap();
    assert_eq!(m1.to_f64_vec(), vec![9.0]);
    let mi = ops::norm(&x, NormOrd::Inf, [0, 1], true).unwrap();
    assert_eq!(mi.shape(), &[1, 1]);
    assert_eq!(mi.to_f64_vec(), vec![15.0]);
    // Batched matrix norm over the last two axes.
    let b = ops::reshape(&ops::cast(&x, DType::F32).unwrap(), &[1, 2, 3]).unwrap();
    let bn = ops::norm(&b, NormOrd::Inf, [-2, -1], false).unwrap();
    assert_eq!(bn.shape(), &[1]);
    assert_eq!(bn.to_vec::<f32>().unwrap(), vec![15.0]);
    // Errors.
    assert!(ops::norm(&x, NormOrd::Fro, 0, false).is_err());
    assert!(ops::norm(&x, NormOrd::Euclidean, [0, 0], false).is_err());
    assert!(ops::norm(&x, NormOrd::Euclidean, 2, false).is_err());
    // TensorFlow's gradient of the Euclidean norm at 0 is NaN (x / norm).
    let z = Tensor::from_vec(vec![0.0f64, 0.0], &[2]).unwrap();
    let tape = ferroflow_core::GradientTape::new();
    tape.watch(&z);
    let n = ops::norm(&z, NormOrd::Euclidean, Axes::All, false).unwrap();
    let g = tape.gradient(&n, &[&z]).unwrap();
    assert!(g[0]
        .as_ref()
        .unwrap()
        .to_f64_vec()
        .iter()
        .all(|v| v.is_nan()));
}

#[test]
fn norm_gradients() {
    let x = test_tensor(&[3, 4], 50, 0.1, 1.0);
    // Mixed signs away from ties for the 1/inf norms.
    let xs = ops::mul(
        &x,
        &Tensor::from_vec(vec![1.0f64, -1.0, 1.0, -1.0], &[4]).unwrap(),
    )
    .unwrap();
    for (ord, axes) in [
        (NormOrd::Euclidean, Axes::All),
        (NormOrd::Euclidean, Axes::These(vec![1])),
        (NormOrd::One, Axes::These(vec![0])),
        (NormOrd::Inf, Axes::These(vec![1])),
        (NormOrd::Fro, Axes::These(vec![0, 1])),
        (NormOrd::One, Axes::These(vec![0, 1])),
        (NormOrd::Inf, Axes::These(vec![0, 1])),
    ] {
        for keep in [false, true] {
            let a = axes.clone();
            check_gradients(
                |v| ops::norm(&v[0], ord, a.clone(), keep),
                &[xs.clone()],
                &[0],
            )
            .unwrap_or_else(|e| panic!("{ord:?} {axes:?} keepdims={keep}: {e}"));
        }
    }
}

#[test]
fn matmul_infer_keeps_unknown_dims() {
    use ferroflow_core::op::{Op, TensorSpec};
    let op = ops::MatMul {
        transpose_a: false,
        transpose_b: true,
    };
    let a = TensorSpec {
        dtype: DType::F32,
        shape: vec![None, Some(1), None, Some(4)],
    };
    let b = TensorSpec {
        dtype: DType::F32,
        shape: vec![Some(5), None, None],
    };
    let out = op.infer(&[a.clone(), b]).unwrap();
    assert_eq!(out[0].shape, vec![None, Some(5), None, None]);
    // A known mismatch is still an error.
    let bad = TensorSpec {
        dtype: DType::F32,
        shape: vec![Some(2), Some(3)],
    };
    assert!(op.infer(&[a, bad]).is_err());
}

#[test]
fn matmul_does_not_depend_on_thread_count() {
    let run = || {
        let a = ops::cast(&test_tensor(&[2048, 8, 8], 60, -1.0, 1.0), DType::F32).unwrap();
        let w = ops::cast(&test_tensor(&[8, 8], 61, -1.0, 1.0), DType::F32).unwrap();
        let big = ops::cast(&test_tensor(&[160, 130], 62, -1.0, 1.0), DType::F32).unwrap();
        vec![
            ops::matmul(&a, &w, false, true)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            ops::matmul(&big, &big, false, true)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
        ]
    };
    let pool = |k: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(k)
            .build()
            .unwrap()
    };
    let one = pool(1).install(run);
    let two = pool(2).install(run);
    assert_eq!(one, two);
}
