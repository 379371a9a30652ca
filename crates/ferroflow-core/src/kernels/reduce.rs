//! Reduction kernels over a contiguous `[outer, r, inner]` view: the reduced axes form the
//! middle block. Summation order is fixed by the problem size alone (blocks of [`BLOCK`]
//! elements, 8 lanes inside a block, blocks combined left to right), so results are bit-identical
//! for any thread count.

use super::parallel::for_each_row_mut;

/// Elements per partial sum in a long row.
pub const BLOCK: usize = 4096;

/// Reduces `x` (contiguous, `outer·r·inner` long) over its middle dimension with the associative
/// `f` starting from `init`. Returns `outer·inner` values.
pub fn reduce_mid<T, F>(x: &[T], outer: usize, r: usize, inner: usize, init: T, f: F) -> Vec<T>
where
    T: Copy + Send + Sync + Default,
    F: Fn(T, T) -> T + Sync + Send,
{
    let mut out = vec![init; outer * inner];
    if outer * inner == 0 {
        return out;
    }
    if inner == 1 {
        // One row of `r` elements per output.
        if outer == 1 && r >= 2 * BLOCK {
            // A single long row: fixed blocks reduced in parallel, then combined in order.
            let nblocks = r.div_ceil(BLOCK);
            let mut partial = vec![init; nblocks];
            for_each_row_mut(&mut partial, 1, BLOCK, |b, p| {
                let s = &x[b * BLOCK..((b + 1) * BLOCK).min(r)];
                p[0] = lanes(s, init, &f);
            });
            out[0] = partial.into_iter().fold(init, &f);
        } else {
            for_each_row_mut(&mut out, 1, r, |o, p| {
                let row = &x[o * r..(o + 1) * r];
                let mut acc = init;
                for blk in row.chunks(BLOCK) {
                    acc = f(acc, lanes(blk, init, &f));
                }
                p[0] = acc;
            });
        }
    } else {
        // Column accumulation: out[o, j] = f over i of x[o, i, j], i in order.
        for_each_row_mut(&mut out, inner, r, |o, acc| {
            let base = o * r * inner;
            for i in 0..r {
                let row = &x[base + i * inner..base + (i + 1) * inner];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = f(*a, v);
                }
            }
        });
    }
    out
}

/// Folds a slice with 8 independent accumulators (vectorisable), combined pairwise at the end.
#[inline]
fn lanes<T: Copy, F: Fn(T, T) -> T>(s: &[T], init: T, f: &F) -> T {
    let mut acc = [init; 8];
    let chunks = s.chunks_exact(8);
    let rem = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] = f(acc[k], c[k]);
        }
    }
    for (k, &v) in rem.iter().enumerate() {
        acc[k] = f(acc[k], v);
    }
    let a = f(f(acc[0], acc[4]), f(acc[2], acc[6]));
    let b = f(f(acc[1], acc[5]), f(acc[3], acc[7]));
    f(a, b)
}

/// Index of the first extreme element along the middle dimension (`better(a, b)` is true when
/// `a` should replace the current best `b`). Returns `outer·inner` indices.
pub fn arg_reduce_mid<T, F>(x: &[T], outer: usize, r: usize, inner: usize, better: F) -> Vec<i64>
where
    T: Copy + Send + Sync,
    F: Fn(T, T) -> bool + Sync + Send,
{
    let mut out = vec![0i64; outer * inner];
    if r == 0 {
        return out;
    }
    for_each_row_mut(&mut out, inner, r, |o, idx| {
        let base = o * r * inner;
        for (j, slot) in idx.iter_mut().enumerate() {
            let mut best = x[base + j];
            let mut bi = 0;
            for i in 1..r {
                let v = x[base + i * inner + j];
                if better(v, best) {
                    best = v;
                    bi = i;
                }
            }
            *slot = bi as i64;
        }
    });
    out
}

/// Inclusive or exclusive cumulative sum along the middle dimension, optionally reversed.
pub fn cumsum_mid<T>(
    x: &[T],
    outer: usize,
    r: usize,
    inner: usize,
    exclusive: bool,
    reverse: bool,
) -> Vec<T>
where
    T: Copy + Send + Sync + Default + std::ops::Add<Output = T>,
{
    debug_assert_eq!(x.len(), outer * r * inner);
    let mut out = vec![T::default(); x.len()];
    for_each_row_mut(&mut out, r * inner, 1, |o, block| {
        let base = o * r * inner;
        let mut acc = vec![T::default(); inner];
        for step in 0..r {
            let i = if reverse { r - 1 - step } else { step };
            let src = &x[base + i * inner..base + (i + 1) * inner];
            let dst = &mut block[i * inner..(i + 1) * inner];
            for j in 0..inner {
                if exclusive {
                    dst[j] = acc[j];
                    acc[j] = acc[j] + src[j];
                } else {
                    acc[j] = acc[j] + src[j];
                    dst[j] = acc[j];
                }
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_match_naive_and_threads() {
        let x: Vec<f64> = (0..3 * 5 * 4).map(|v| v as f64).collect();
        let s = reduce_mid(&x, 3, 5, 4, 0.0, |a, b| a + b);
        for o in 0..3 {
            for j in 0..4 {
                let n: f64 = (0..5).map(|i| x[o * 20 + i * 4 + j]).sum();
                assert_eq!(s[o * 4 + j], n);
            }
        }
        let big: Vec<f32> = (0..1_000_003).map(|v| ((v % 97) as f32) * 0.01).collect();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let a = one.install(|| reduce_mid(&big, 1, big.len(), 1, 0.0f32, |a, b| a + b));
        let b = two.install(|| reduce_mid(&big, 1, big.len(), 1, 0.0f32, |a, b| a + b));
        assert_eq!(a[0].to_bits(), b[0].to_bits());
    }

    #[test]
    fn argmax_takes_first_of_ties() {
        let x = [1.0, 3.0, 3.0, 2.0];
        assert_eq!(arg_reduce_mid(&x, 1, 4, 1, |a: f64, b| a > b), vec![1]);
    }
}
