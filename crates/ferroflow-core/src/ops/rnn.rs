//! Fused recurrent sequences: `lstm_sequence` runs a whole LSTM time loop in one op (one GEMM
//! per step for all gates, no allocation per step), and its gradient is one backward op
//! (backpropagation through time, then one GEMM for the recurrent kernel's gradient).
//!
//! The input projection `x·W + b` of every step is **not** part of the op: the caller computes
//! it with one matmul over `[batch·time, in]` (as Keras's layer and cuDNN do), so the gradients
//! of `W`, `b` and `x` come from that ordinary matmul.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::elementwise::tensor_from;
use crate::kernels::rnn::{lstm_backward, lstm_forward, LstmDims, RnnFloat};
use crate::op::{execute, no_gradient, Dim, GradCtx, Op, TensorSpec};
use crate::storage::StorageElement;
use crate::tensor::Tensor;

/// Merges dimensions that must agree: the known value, or an error naming `what`.
fn merge(op: &str, what: &str, dims: &[Dim], specs: &[&TensorSpec]) -> Result<Dim> {
    let mut out: Dim = None;
    for d in dims.iter().flatten() {
        match out {
            Some(o) if o != *d => {
                let shapes: Vec<Vec<usize>> = specs.iter().map(|s| s.shape_for_error()).collect();
                let refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
                return Err(Error::shape(
                    op,
                    format!("the {what} sizes of the inputs disagree ({o} vs {d})"),
                    &refs,
                ));
            }
            _ => out = Some(*d),
        }
    }
    Ok(out)
}

fn check_rank(op: &str, name: &str, s: &TensorSpec, rank: usize, layout: &str) -> Result<()> {
    if s.rank() != rank {
        return Err(Error::shape(
            op,
            format!("{name} must have shape {layout}"),
            &[&s.shape_for_error()],
        ));
    }
    Ok(())
}

fn check_float(op: &str, specs: &[&TensorSpec]) -> Result<DType> {
    let dt = specs[0].dtype;
    if !matches!(dt, DType::F32 | DType::F64) || specs.iter().any(|s| s.dtype != dt) {
        let got: Vec<DType> = specs.iter().map(|s| s.dtype).collect();
        return Err(Error::dtype(
            op,
            "expects float32 or float64 inputs, all of the same dtype",
            &got,
        ));
    }
    Ok(dt)
}

fn check_mask(op: &str, m: &TensorSpec) -> Result<()> {
    check_rank(op, "mask", m, 2, "[batch, time]")?;
    if m.dtype != DType::Bool {
        return Err(Error::dtype(op, "mask must be bool", &[m.dtype]));
    }
    Ok(())
}

/// `units·k` when known.
fn times(d: Dim, k: usize) -> Dim {
    d.map(|d| d * k)
}

/// `d / k` when known and divisible (else an error).
fn div(op: &str, what: &str, d: Dim, k: usize, s: &TensorSpec) -> Result<Dim> {
    match d {
        Some(d) if d % k != 0 => Err(Error::shape(
            op,
            format!("the last dimension of {what} must be a multiple of {k}"),
            &[&s.shape_for_error()],
        )),
        d => Ok(d.map(|d| d / k)),
    }
}

/// The fused LSTM sequence op (`xp, h0, c0, recurrent_kernel[, bias][, mask]` →
/// `outputs, h_last, c_last, workspace`). See [`lstm_sequence`].
#[derive(Clone, Debug)]
pub struct LstmSequence {
    /// Whether a `[4·units]` bias follows the recurrent kernel.
    pub has_bias: bool,
    /// Whether a `[batch, time]` bool mask is the last input.
    pub has_mask: bool,
    /// Masked steps output zeros instead of the previous output.
    pub zero_output_for_mask: bool,
}

impl Op for LstmSequence {
    fn name(&self) -> &'static str {
        "LstmSequence"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let n = self.name();
        let want = 4 + usize::from(self.has_bias) + usize::from(self.has_mask);
        if inputs.len() != want {
            return Err(Error::invalid(
                n,
                format!("expects {want} inputs, got {}", inputs.len()),
            ));
        }
        let (xp, h0, c0, r) = (&inputs[0], &inputs[1], &inputs[2], &inputs[3]);
        let dt = check_float(n, &[xp, h0, c0, r])?;
        let bias_units = if self.has_bias {
            let b = &inputs[4];
            check_float(n, &[xp, b])?;
            check_rank(n, "bias", b, 1, "[4·units]")?;
            div(n, "bias", b.shape[0], 4, b)?
        } else {
            None
        };
        check_rank(n, "xp", xp, 3, "[batch, time, 4·units]")?;
        check_rank(n, "h0", h0, 2, "[batch, units]")?;
        check_rank(n, "c0", c0, 2, "[batch, units]")?;
        check_rank(n, "recurrent_kernel", r, 2, "[units, 4·units]")?;
        let mask = if self.has_mask {
            let m = &inputs[want - 1];
            check_mask(n, m)?;
            Some(m)
        } else {
            None
        };
        let all: Vec<&TensorSpec> = inputs.iter().collect();
        let units = merge(
            n,
            "units",
            &[
                bias_units,
                h0.shape[1],
                c0.shape[1],
                r.shape[0],
                div(n, "recurrent_kernel", r.shape[1], 4, r)?,
                div(n, "xp", xp.shape[2], 4, xp)?,
            ],
            &all,
        )?;
        let mut bd = vec![xp.shape[0], h0.shape[0], c0.shape[0]];
        let mut td = vec![xp.shape[1]];
        if let Some(m) = mask {
            bd.push(m.shape[0]);
            td.push(m.shape[1]);
        }
        let b = merge(n, "batch", &bd, &all)?;
        let t = merge(n, "time", &td, &all)?;
        let spec = |shape: Vec<Dim>| TensorSpec { dtype: dt, shape };
        Ok(vec![
            spec(vec![b, t, units]),
            spec(vec![b, units]),
            spec(vec![b, units]),
            spec(vec![b, t, times(units, 7)]),
        ])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        fn run<T: RnnFloat + StorageElement>(
            op: &LstmSequence,
            inputs: &[Tensor],
        ) -> Result<Vec<Tensor>> {
            let (xp, h0, c0, r) = (&inputs[0], &inputs[1], &inputs[2], &inputs[3]);
            let (b, t, u) = (xp.shape()[0], xp.shape()[1], r.shape()[0]);
            let bias = if op.has_bias {
                Some(inputs[4].data::<T>()?)
            } else {
                None
            };
            let mask = if op.has_mask {
                inputs.last().map(|m| m.data::<bool>()).transpose()?
            } else {
                None
            };
            let f = lstm_forward(
                LstmDims {
                    batch: b,
                    time: t,
                    units: u,
                },
                &xp.data::<T>()?,
                &h0.data::<T>()?,
                &c0.data::<T>()?,
                &r.data::<T>()?,
                bias.as_deref(),
                mask.as_deref(),
                op.zero_output_for_mask,
            );
            Ok(vec![
                tensor_from(f.hs, &[b, t, u]),
                tensor_from(f.h_last, &[b, u]),
                tensor_from(f.c_last, &[b, u]),
                tensor_from(f.ws, &[b, t, 7 * u]),
            ])
        }
        match inputs[0].dtype() {
            DType::F32 => run::<f32>(self, inputs),
            DType::F64 => run::<f64>(self, inputs),
            d => Err(Error::dtype(
                self.name(),
                "expects float32 or float64",
                &[d],
            )),
        }
    }
    fn grad(&self, ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        let mask = if self.has_mask {
            ctx.inputs.last()
        } else {
            None
        };
        let [dxp, dh0, dc0, dr, dbias] = lstm_sequence_grad(
            ctx.x(3),
            ctx.y(3),
            ctx.g(0),
            ctx.g(1),
            ctx.g(2),
            mask,
            self.zero_output_for_mask,
        )?;
        let mut g = vec![Some(dxp), Some(dh0), Some(dc0), Some(dr)];
        if self.has_bias {
            g.push(Some(dbias));
        }
        if self.has_mask {
            g.push(None);
        }
        Ok(g)
    }
}

/// The backward op of [`LstmSequence`] (`recurrent_kernel, workspace, d_outputs, d_h_last,
/// d_c_last[, mask]` → `d_xp, d_h0, d_c0, d_recurrent_kernel, d_bias`). See
/// [`lstm_sequence_grad`].
#[derive(Clone, Debug)]
pub struct LstmSequenceGrad {
    /// Whether a `[batch, time]` bool mask is the sixth input.
    pub has_mask: bool,
    /// As the forward op's.
    pub zero_output_for_mask: bool,
}

impl Op for LstmSequenceGrad {
    fn name(&self) -> &'static str {
        "LstmSequenceGrad"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let n = self.name();
        let want = 5 + usize::from(self.has_mask);
        if inputs.len() != want {
            return Err(Error::invalid(
                n,
                format!("expects {want} inputs, got {}", inputs.len()),
            ));
        }
        let (r, ws, dhs, dh, dc) = (&inputs[0], &inputs[1], &inputs[2], &inputs[3], &inputs[4]);
        let dt = check_float(n, &[r, ws, dhs, dh, dc])?;
        check_rank(n, "recurrent_kernel", r, 2, "[units, 4·units]")?;
        check_rank(n, "workspace", ws, 3, "[batch, time, 7·units]")?;
        check_rank(n, "d_outputs", dhs, 3, "[batch, time, units]")?;
        check_rank(n, "d_h_last", dh, 2, "[batch, units]")?;
        check_rank(n, "d_c_last", dc, 2, "[batch, units]")?;
        let all: Vec<&TensorSpec> = inputs.iter().collect();
        let mut bd = vec![ws.shape[0], dhs.shape[0], dh.shape[0], dc.shape[0]];
        let mut td = vec![ws.shape[1], dhs.shape[1]];
        if self.has_mask {
            check_mask(n, &inputs[5])?;
            bd.push(inputs[5].shape[0]);
            td.push(inputs[5].shape[1]);
        }
        let units = merge(
            n,
            "units",
            &[
                r.shape[0],
                div(n, "recurrent_kernel", r.shape[1], 4, r)?,
                div(n, "workspace", ws.shape[2], 7, ws)?,
                dhs.shape[2],
                dh.shape[1],
                dc.shape[1],
            ],
            &all,
        )?;
        let b = merge(n, "batch", &bd, &all)?;
        let t = merge(n, "time", &td, &all)?;
        let spec = |shape: Vec<Dim>| TensorSpec { dtype: dt, shape };
        Ok(vec![
            spec(vec![b, t, times(units, 4)]),
            spec(vec![b, units]),
            spec(vec![b, units]),
            spec(vec![units, times(units, 4)]),
            spec(vec![times(units, 4)]),
        ])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        fn run<T: RnnFloat + StorageElement>(
            inputs: &[Tensor],
            zero_output: bool,
        ) -> Result<Vec<Tensor>> {
            let (r, ws, dhs, dh, dc) = (&inputs[0], &inputs[1], &inputs[2], &inputs[3], &inputs[4]);
            let (b, t, u) = (ws.shape()[0], ws.shape()[1], r.shape()[0]);
            let mask = inputs.get(5).map(|m| m.data::<bool>()).transpose()?;
            let g = lstm_backward(
                LstmDims {
                    batch: b,
                    time: t,
                    units: u,
                },
                &r.data::<T>()?,
                &ws.data::<T>()?,
                mask.as_deref(),
                zero_output,
                &dhs.data::<T>()?,
                &dh.data::<T>()?,
                &dc.data::<T>()?,
            );
            Ok(vec![
                tensor_from(g.dxp, &[b, t, 4 * u]),
                tensor_from(g.dh0, &[b, u]),
                tensor_from(g.dc0, &[b, u]),
                tensor_from(g.dr, &[u, 4 * u]),
                tensor_from(g.dbias, &[4 * u]),
            ])
        }
        match inputs[0].dtype() {
            DType::F32 => run::<f32>(inputs, self.zero_output_for_mask),
            DType::F64 => run::<f64>(inputs, self.zero_output_for_mask),
            d => Err(Error::dtype(
                self.name(),
                "expects float32 or float64",
                &[d],
            )),
        }
    }
    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        // Second derivatives through the fused LSTM are not supported; the unfused ops have them.
        no_gradient(self)
    }
}

/// A whole LSTM sequence in one op, Keras's `LSTM` with its default activations (`tanh`,
/// recurrent `sigmoid`), gate blocks in Keras's order **i, f, c, o**.
///
/// - `xp` `[batch, time, 4·units]`: the input projection of every step, `x·W + b` (compute it
///   with one matmul over `[batch·time, in]`);
/// - `h0`, `c0` `[batch, units]`: the initial states; `recurrent_kernel` `[units, 4·units]`;
/// - `bias` `[4·units]`: added to `xp` inside the kernel (saves a pass over `xp`; its gradient
///   is the column sum of the gate gradients), or `None` when `xp` already holds it;
/// - `mask` `[batch, time]` bool (true = a real step): as Keras's RNN, a masked step keeps the
///   previous states and outputs the previous output (zeros before the first real step), or
///   zeros with `zero_output_for_mask`.
///
/// Per step `z = xp_t + h·R`, `i = σ(z_i)`, `f = σ(z_f)`, `c' = f·c + i·tanh(z_c)`,
/// `o = σ(z_o)`, `h' = o·tanh(c')`. Returns `(outputs [batch, time, units], h_last, c_last)`.
/// Float32 and float64; float32 uses a vectorized `exp` (error about 2e-7).
///
/// ```
/// use ferroflow_core::{ops, DType};
/// let xp = ops::zeros(&[2, 3, 8], DType::F64);
/// let h0 = ops::zeros(&[2, 2], DType::F64);
/// let c0 = ops::ones(&[2, 2], DType::F64);
/// let r = ops::zeros(&[2, 8], DType::F64);
/// let (hs, h, c) = ops::lstm_sequence(&xp, &h0, &c0, &r, None, None, false)?;
/// assert_eq!(hs.shape(), &[2, 3, 2]);
/// // z = 0: every gate is 1/2 and the candidate 0, so c halves each step: 1/8 after 3 steps.
/// assert!((c.to_vec::<f64>()?[0] - 0.125).abs() < 1e-12);
/// assert!((h.to_vec::<f64>()?[0] - 0.5 * 0.125f64.tanh()).abs() < 1e-12);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn lstm_sequence(
    xp: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    recurrent_kernel: &Tensor,
    bias: Option<&Tensor>,
    mask: Option<&Tensor>,
    zero_output_for_mask: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let mut inputs = vec![xp.clone(), h0.clone(), c0.clone(), recurrent_kernel.clone()];
    inputs.extend(bias.cloned());
    inputs.extend(mask.cloned());
    let mut out = execute(
        LstmSequence {
            has_bias: bias.is_some(),
            has_mask: mask.is_some(),
            zero_output_for_mask,
        },
        &inputs,
    )?;
    out.truncate(3);
    let c = out.pop();
    let h = out.pop();
    match (out.pop(), h, c) {
        (Some(hs), Some(h), Some(c)) => Ok((hs, h, c)),
        _ => Err(Error::invalid("LstmSequence", "expected three outputs")),
    }
}

/// The gradient of [`lstm_sequence`] as one op: given the recurrent kernel, the forward op's
/// workspace (its fourth output) and the gradients of its three results, returns
/// `[d_xp, d_h0, d_c0, d_recurrent_kernel, d_bias]`. Used by the op's gradient; public for
/// graphs.
pub fn lstm_sequence_grad(
    recurrent_kernel: &Tensor,
    workspace: &Tensor,
    d_outputs: &Tensor,
    d_h_last: &Tensor,
    d_c_last: &Tensor,
    mask: Option<&Tensor>,
    zero_output_for_mask: bool,
) -> Result<[Tensor; 5]> {
    let mut inputs = vec![
        recurrent_kernel.clone(),
        workspace.clone(),
        d_outputs.clone(),
        d_h_last.clone(),
        d_c_last.clone(),
    ];
    inputs.extend(mask.cloned());
    let out = execute(
        LstmSequenceGrad {
            has_mask: mask.is_some(),
            zero_output_for_mask,
        },
        &inputs,
    )?;
    out.try_into()
        .map_err(|_| Error::invalid("LstmSequenceGrad", "expected five outputs"))
}
