//! Test helpers: finite-difference gradient checks and closeness assertions. Public so that
//! users who write their own ops can check them the same way.

use crate::autodiff::{GradientTape, Watchable};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph;
use crate::ops;
use crate::tensor::Tensor;

/// Deterministic pseudo-random f64 values in `[lo, hi)` (a small LCG; for tests only).
pub fn test_values(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            lo + (hi - lo) * u
        })
        .collect()
}

/// A float64 tensor of `shape` with deterministic values in `[lo, hi)`.
pub fn test_tensor(shape: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(test_values(n, seed, lo, hi), shape).expect("sizes agree")
}

/// Checks the tape's gradient of `f` against central finite differences, in float64, for the
/// inputs listed in `wrt` (other inputs, e.g. integer indices, are passed through).
///
/// The scalar checked is `Σ f(x) · w` with fixed pseudo-random weights `w`, so every output
/// element contributes with a different upstream gradient. Errors describe the first mismatch.
pub fn check_gradients<F>(f: F, inputs: &[Tensor], wrt: &[usize]) -> Result<()>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    check_gradients_tol(f, inputs, wrt, 1e-6, 1e-5, 1e-5)
}

/// [`check_gradients`] with an explicit step `eps` and tolerances `|a - n| <= atol + rtol·|n|`.
pub fn check_gradients_tol<F>(
    f: F,
    inputs: &[Tensor],
    wrt: &[usize],
    eps: f64,
    atol: f64,
    rtol: f64,
) -> Result<()>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    for &i in wrt {
        if inputs[i].dtype() != DType::F64 {
            return Err(Error::dtype(
                "check_gradients",
                "checked inputs must be float64",
                &[inputs[i].dtype()],
            ));
        }
    }
    let y0 = f(inputs)?;
    let w = Tensor::from_vec(test_values(y0.num_elements(), 99, 0.5, 1.5), y0.shape())?;
    let loss = |xs: &[Tensor]| -> Result<f64> {
        let y = f(xs)?;
        ops::reduce_sum(
            &ops::mul(&ops::cast(&y, DType::F64)?, &w)?,
            ops::Axes::All,
            false,
        )?
        .item::<f64>()
    };
    // Analytic.
    let analytic = {
        let tape = GradientTape::new();
        for &i in wrt {
            tape.watch(&inputs[i]);
        }
        let y = f(inputs)?;
        let l = ops::reduce_sum(
            &ops::mul(&ops::cast(&y, DType::F64)?, &w)?,
            ops::Axes::All,
            false,
        )?;
        let srcs: Vec<&dyn Watchable> = wrt.iter().map(|&i| &inputs[i] as &dyn Watchable).collect();
        tape.gradient(&l, &srcs)?
    };
    // The same gradients in graph mode: placeholders for the inputs, `graph::gradients`, a
    // session run. They come from the same gradient rules, so they must agree to rounding.
    let symbolic = graph_gradients(&f, inputs, wrt, &w)?;
    for (k, &i) in wrt.iter().enumerate() {
        let a = analytic[k].as_ref().map(|g| g.to_f64_vec());
        let s = symbolic[k].to_f64_vec();
        let a = a.unwrap_or_else(|| vec![0.0; s.len()]);
        let bad = a.len() != s.len()
            || a.iter()
                .zip(&s)
                .any(|(x, y)| (x - y).abs() > 1e-12 + 1e-10 * x.abs() || x.is_nan() != y.is_nan());
        if bad {
            return Err(Error::invalid(
                "check_gradients",
                format!("input {i}: graph mode gives {s:?}, the tape gives {a:?}"),
            ));
        }
    }
    for (k, &i) in wrt.iter().enumerate() {
        let x = &inputs[i];
        let base = x.to_vec::<f64>()?;
        let a = match &analytic[k] {
            Some(g) => g.to_vec::<f64>()?,
            None => vec![0.0; base.len()],
        };
        if a.len() != base.len() {
            return Err(Error::invalid(
                "check_gradients",
                format!(
                    "input {i}: gradient has {} elements, input {}",
                    a.len(),
                    base.len()
                ),
            ));
        }
        for j in 0..base.len() {
            let mut xs = inputs.to_vec();
            let mut v = base.clone();
            v[j] = base[j] + eps;
            xs[i] = Tensor::from_vec(v.clone(), x.shape())?;
            let lp = loss(&xs)?;
            v[j] = base[j] - eps;
            xs[i] = Tensor::from_vec(v, x.shape())?;
            let lm = loss(&xs)?;
            let n = (lp - lm) / (2.0 * eps);
            if (a[j] - n).abs() > atol + rtol * n.abs() || !a[j].is_finite() {
                return Err(Error::invalid(
                    "check_gradients",
                    format!(
                        "input {i} (shape {:?}) element {j}: tape gives {}, finite differences give {n}",
                        x.shape(),
                        a[j]
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `d Σ f(x)·w / d x[i]` for `i` in `wrt`, computed in graph mode (zeros where unconnected).
fn graph_gradients<F>(f: &F, inputs: &[Tensor], wrt: &[usize], w: &Tensor) -> Result<Vec<Tensor>>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let g = graph::Graph::new();
    let (phs, grads) = {
        let _default = g.as_default();
        // The differentiated inputs are placeholders; the others (indices, ...) constants.
        let phs = inputs
            .iter()
            .enumerate()
            .map(|(i, x)| {
                if !wrt.contains(&i) {
                    return Ok(x.clone());
                }
                let dims: Vec<Option<usize>> = x.shape().iter().map(|&d| Some(d)).collect();
                graph::placeholder(x.dtype(), &dims, &format!("input{i}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let y = f(&phs)?;
        let l = ops::reduce_sum(
            &ops::mul(&ops::cast(&y, DType::F64)?, w)?,
            ops::Axes::All,
            false,
        )?;
        let xs: Vec<Tensor> = wrt.iter().map(|&i| phs[i].clone()).collect();
        (phs, graph::gradients(&[l], &xs)?)
    };
    let sess = graph::Session::new(&g);
    let feeds: Vec<(&Tensor, Tensor)> = phs
        .iter()
        .zip(inputs)
        .filter(|(p, _)| p.is_symbolic())
        .map(|(p, x)| (p, x.clone()))
        .collect();
    // One run fetches every connected gradient; unconnected ones are zeros.
    let fetches: Vec<&Tensor> = grads.iter().flatten().collect();
    let mut values = sess.run(&fetches, &feeds)?.into_iter();
    let mut out = Vec::with_capacity(wrt.len());
    for (k, gk) in grads.iter().enumerate() {
        let value = if gk.is_some() { values.next() } else { None };
        match value {
            Some(v) => out.push(v),
            None => out.push(ops::zeros_like(&inputs[wrt[k]])?),
        }
    }
    Ok(out)
}

/// Asserts that two float slices agree within `atol + rtol·|b|` elementwise (panics with the
/// first mismatch; for tests).
pub fn assert_close(a: &[f64], b: &[f64], atol: f64, rtol: f64) {
    assert_eq!(
        a.len(),
        b.len(),
        "lengths differ: {} vs {}",
        a.len(),
        b.len()
    );
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= atol + rtol * y.abs() || (x.is_nan() && y.is_nan()),
            "element {i}: {x} vs {y}\n left: {a:?}\nright: {b:?}"
        );
    }
}
