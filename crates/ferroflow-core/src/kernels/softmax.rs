//! Fused, numerically stable softmax / log-softmax and softmax cross-entropy kernels.
//!
//! Every row is computed by exactly one call (max, then `Σ exp(x - max)` in index order), so
//! results never depend on the thread count.

use rayon::prelude::*;

use super::parallel::{for_each_row_mut, PAR_THRESHOLD};
use super::Float;

/// Softmax (or log-softmax when `log`) of one contiguous row into `dst`.
fn softmax_row<T: Float>(src: &[T], dst: &mut [T], log: bool) {
    let m = src.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
    let mut sum = T::zero();
    for (d, &v) in dst.iter_mut().zip(src) {
        let e = (v - m).exp();
        sum += e;
        *d = if log { v - m } else { e };
    }
    if log {
        let ls = sum.ln();
        for d in dst.iter_mut() {
            *d -= ls;
        }
    } else {
        for d in dst.iter_mut() {
            *d /= sum;
        }
    }
}

/// Softmax (or log-softmax when `log`) of `x`, viewed as a contiguous `[outer, r, inner]`
/// array, along its middle axis of length `r`.
///
/// `inner == 1` (the last axis) is the fast path: contiguous rows, parallel over rows. Otherwise
/// each `[r, inner]` block is processed with the reduction strided by `inner` (vectorised over
/// the `inner` columns), parallel over blocks.
pub fn softmax_mid<T: Float>(x: &[T], outer: usize, r: usize, inner: usize, log: bool) -> Vec<T> {
    let block = r * inner;
    let mut out = vec![T::zero(); x.len()];
    if block == 0 || x.len() != outer * block {
        return out;
    }
    if inner == 1 {
        for_each_row_mut(&mut out, r, 8, |i, row| {
            softmax_row(&x[i * r..(i + 1) * r], row, log)
        });
        return out;
    }
    for_each_row_mut(&mut out, block, 8, |o, dst| {
        let src = &x[o * block..(o + 1) * block];
        let mut m = vec![T::neg_infinity(); inner];
        for s in src.chunks_exact(inner) {
            for (mj, &v) in m.iter_mut().zip(s) {
                *mj = mj.max(v);
            }
        }
        let mut sum = vec![T::zero(); inner];
        for (d, s) in dst.chunks_exact_mut(inner).zip(src.chunks_exact(inner)) {
            for (((dj, &v), &mj), sj) in d.iter_mut().zip(s).zip(&m).zip(sum.iter_mut()) {
                let e = (v - mj).exp();
                *sj += e;
                *dj = if log { v - mj } else { e };
            }
        }
        if log {
            let ls: Vec<T> = sum.iter().map(|s| s.ln()).collect();
            for d in dst.chunks_exact_mut(inner) {
                for (dj, &l) in d.iter_mut().zip(&ls) {
                    *dj -= l;
                }
            }
        } else {
            for d in dst.chunks_exact_mut(inner) {
                for (dj, &s) in d.iter_mut().zip(&sum) {
                    *dj /= s;
                }
            }
        }
    });
    out
}

/// Runs `f(row, loss, backprop_row)` for every `n`-long row, in parallel when large; each row
/// is handled by exactly one call.
fn rows_with_loss<T: Float, F>(loss: &mut [T], bp: &mut [T], n: usize, f: F)
where
    F: Fn(usize, &mut T, &mut [T]) + Sync + Send,
{
    if n == 0 {
        return;
    }
    if bp.len() < PAR_THRESHOLD / 4 || rayon::current_num_threads() == 1 {
        for (i, (l, b)) in loss.iter_mut().zip(bp.chunks_mut(n)).enumerate() {
            f(i, l, b);
        }
    } else {
        loss.par_iter_mut()
            .zip(bp.par_chunks_mut(n))
            .enumerate()
            .for_each(|(i, (l, b))| f(i, l, b));
    }
}

/// `(max, log Σ exp(x - max) + max)` of a row.
fn log_sum_exp<T: Float>(row: &[T]) -> T {
    let m = row.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
    let s: T = row.iter().map(|&v| (v - m).exp()).sum();
    s.ln() + m
}

/// Dense softmax cross-entropy over contiguous rows of length `n`: returns
/// `loss[i] = Σ_j labels[i,j]·(lse_i - logits[i,j])` and the exact gradient of `loss[i]` with
/// respect to the logits, `backprop[i,j] = softmax_ij·Σ_k labels[i,k] - labels[i,j]` (TensorFlow's
/// `softmax - labels` when label rows sum to 1).
/// `rows` is the number of rows (a row of length 0 has loss 0).
pub fn softmax_xent_rows<T: Float>(
    labels: &[T],
    logits: &[T],
    rows: usize,
    n: usize,
) -> (Vec<T>, Vec<T>) {
    let mut loss = vec![T::zero(); rows];
    let mut bp = vec![T::zero(); logits.len()];
    rows_with_loss(&mut loss, &mut bp, n, |i, l, b| {
        let x = &logits[i * n..(i + 1) * n];
        let z = &labels[i * n..(i + 1) * n];
        let lse = log_sum_exp(x);
        let mut acc = T::zero();
        let mut zsum = T::zero();
        for (&xv, &zv) in x.iter().zip(z) {
            acc += zv * (lse - xv);
            zsum += zv;
        }
        *l = acc;
        for ((bv, &xv), &zv) in b.iter_mut().zip(x).zip(z) {
            *bv = (xv - lse).exp() * zsum - zv;
        }
    });
    (loss, bp)
}

/// Sparse softmax cross-entropy over contiguous rows of length `n`, with one class index per
/// row (already checked to lie in `[0, n)`): `loss[i] = lse_i - logits[i, labels[i]]` and
/// `backprop = softmax - one_hot(labels)`.
pub fn sparse_softmax_xent_rows<T: Float>(
    labels: &[usize],
    logits: &[T],
    n: usize,
) -> (Vec<T>, Vec<T>) {
    let rows = labels.len();
    let mut loss = vec![T::zero(); rows];
    let mut bp = vec![T::zero(); logits.len()];
    rows_with_loss(&mut loss, &mut bp, n, |i, l, b| {
        let x = &logits[i * n..(i + 1) * n];
        let lse = log_sum_exp(x);
        let k = labels[i];
        *l = lse - x[k];
        for (bv, &xv) in b.iter_mut().zip(x) {
            *bv = (xv - lse).exp();
        }
        b[k] -= T::one();
    });
    (loss, bp)
}
