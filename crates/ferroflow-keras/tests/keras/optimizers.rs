//! keras.optimizers: every update rule against its formula written out here in plain f64 loops,
//! over three steps with different gradients; clipping, weight decay, schedules, `get`.

use ferroflow_core::{ops, DType, GradientTape, Tensor, Variable, Watchable};
use ferroflow_keras::losses::{Loss, MeanSquaredError};
use ferroflow_keras::optimizers::schedules::{
    CosineDecay, CosineDecayRestarts, ExponentialDecay, InverseTimeDecay, LearningRateSchedule,
    PiecewiseConstantDecay, PolynomialDecay,
};
use ferroflow_keras::optimizers::{
    get, Adadelta, Adagrad, Adam, AdamW, Adamax, Lion, Nadam, Optimizer, RMSprop, NAMES, SGD,
};

const W0: [f64; 4] = [0.5, -1.5, 2.0, 0.0];
const GRADS: [[f64; 4]; 3] = [
    [0.1, -0.2, 0.3, 0.0],
    [-0.4, 0.5, 0.05, 1.0],
    [0.2, 0.2, -0.6, -0.3],
];

fn variable(vals: &[f64], dtype: DType, name: &str) -> Variable {
    Variable::new(
        Tensor::from_f64_slice(dtype, vals, &[vals.len()]).unwrap(),
        name,
    )
}

fn tensor(vals: &[f64], dtype: DType) -> Tensor {
    Tensor::from_f64_slice(dtype, vals, &[vals.len()]).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w} (all: {got:?} vs {want:?})"
        );
    }
}

/// Runs three steps of `opt` from W0 with GRADS, returning the weights after each step.
fn run(opt: &mut dyn Optimizer, dtype: DType) -> Vec<Vec<f64>> {
    let w = variable(&W0, dtype, "w");
    GRADS
        .iter()
        .map(|g| {
            opt.apply_gradients(&[(tensor(g, dtype), w.clone())])
                .unwrap();
            w.value().to_f64_vec()
        })
        .collect()
}

/// Checks `make()` against `reference` (weights after each of the three steps) in f64 (tight)
/// and f32 (loose).
fn check(name: &str, make: impl Fn() -> Box<dyn Optimizer>, reference: Vec<Vec<f64>>) {
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 2e-6)] {
        let mut opt = make();
        let got = run(opt.as_mut(), dtype);
        for (step, (g, r)) in got.iter().zip(&reference).enumerate() {
            assert_close(g, r, tol, &format!("{name} {dtype:?} step {}", step + 1));
        }
        assert_eq!(opt.iterations(), 3, "{name}");
    }
}

// ---- reference rules (textbook forms, one element at a time) ----

fn ref_sgd(lr: f64, mu: f64, nesterov: bool, wd: f64) -> Vec<Vec<f64>> {
    let mut w = W0.to_vec();
    let mut m = [0.0; 4];
    let mut out = vec![];
    for g in GRADS {
        for i in 0..4 {
            w[i] -= w[i] * wd * lr;
            if mu == 0.0 {
                w[i] -= lr * g[i];
            } else {
                m[i] = mu * m[i] - lr * g[i];
                w[i] += if nesterov {
                    mu * m[i] - lr * g[i]
                } else {
                    m[i]
                };
            }
        }
        out.push(w.clone());
    }
    out
}

fn ref_adam(lr: f64, b1: f64, b2: f64, eps: f64, amsgrad: bool, wd: f64) -> Vec<Vec<f64>> {
    let mut w = W0.to_vec();
    let (mut m, mut v, mut vmax) = ([0.0; 4], [0.0; 4], [0.0f64; 4]);
    let mut out = vec![];
    for (k, g) in GRADS.iter().enumerate() {
        let t = (k + 1) as i32;
        for i in 0..4 {
            w[i] -= w[i] * wd * lr;
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            vmax[i] = vmax[i].max(v[i]);
            let vv = if amsgrad { vmax[i] } else { v[i] };
            // Kingma & Ba's "epsilon hat" form, as Keras: the bias corrections fold into the
            // step size and ε is added to the uncorrected √v.
            let step = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            w[i] -= step * m[i] / (vv.sqrt() + eps);
        }
        out.push(w.clone());
    }
    out
}

fn ref_rmsprop(lr: f64, rho: f64, mu: f64, eps: f64, centered: bool) -> Vec<Vec<f64>> {
    let mut w = W0.to_vec();
    let (mut ms, mut mg, mut mom) = ([0.0; 4], [0.0; 4], [0.0; 4]);
    let mut out = vec![];
    for g in GRADS {
        for i in 0..4 {
            ms[i] = rho * ms[i] + (1.0 - rho) * g[i] * g[i];
            mg[i] = rho * mg[i] + (1.0 - rho) * g[i];
            let var = if centered {
                ms[i] - mg[i] * mg[i]
            } else {
                ms[i]
            };
            let incr = lr * g[i] / (var + eps).sqrt();
            if mu > 0.0 {
                mom[i] = mu * mom[i] + incr;
                w[i] -= mom[i];
            } else {
                w[i] -= incr;
            }
        }
        out.push(w.clone());
    }
    out
}

fn ref_adagrad(lr: f64, init: f64, eps: f64) -> Vec<Vec<f64>> {
    let mut w = W0.to_vec();
    let mut acc = [init; 4];
    let mut out = vec![];
    for g in GRADS {
        for i in 0..4 {
            acc[i] += g[i] * g[i];
            w[i] -= lr * g[i] / (acc[i] + eps).sqrt();
        }
        out.push(w.clone());
    }
    out
}

fn ref_adadelta(lr: f64, rho: f64, eps: f64) -> Vec<Vec<f64>> {
    let mut w = W0.to_vec();
    let (mut eg, mut edx) = ([0.0; 4], [0.0; 4]);
    let mut out = vec![];
    for g in GRADS {
        for i in 0..4 {
            eg[i] = rho * eg[i] + (1.0 - rho) * g[i] * g[i];
            let dx = -((edx[i] + eps).sqrt() / (eg[i] + eps).sqrt()) * g[i];
            edx[i] = rho * edx[i] + (1.0 - rho) * dx * dx;
            w[i] += lr * dx;
        }
        out.push(w.clone());
    }
    out
}

fn ref_adamax(lr: f64, b1: f64, b2: f64, eps: f64) -> Vec<Vec<f64>> {
    let mut w = W0.to_vec();
    let (mut m, mut u) = ([0.0; 4], [0.0f64; 4]);
    let mut out = vec![];
    for (k, g) in GRADS.iter().enumerate() {
        let t = (k + 1) as i32;
        for i in 0..4 {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            u[i] = (b2 * u[i]).max(g[i].abs());
            w[i] -= (lr / (1.0 - b1.powi(t))) * m[i] / (u[i] + eps);
        }
        out.push(w.clone());
    }
    out
}

fn ref_nadam(lr: f64, b1: f64, b2: f64, eps: f64) -> Vec<Vec<f64>> {
    let mu = |t: i32| b1 * (1.0 - 0.5 * 0.96f64.powi(t));
    let mut w = W0.to_vec();
    let (mut m, mut v) = ([0.0; 4], [0.0; 4]);
    let mut prod = 1.0; // Π_{i ≤ t} μ_i
    let mut out = vec![];
    for (k, g) in GRADS.iter().enumerate() {
        let t = (k + 1) as i32;
        prod *= mu(t);
        let prod_next = prod * mu(t + 1);
        for i in 0..4 {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let m_hat = mu(t + 1) * m[i] / (1.0 - prod_next) + (1.0 - mu(t)) * g[i] / (1.0 - prod);
            let v_hat = v[i] / (1.0 - b2.powi(t));
            w[i] -= lr * m_hat / (v_hat.sqrt() + eps);
        }
        out.push(w.clone());
    }
    out
}

fn ref_lion(lr: f64, b1: f64, b2: f64, wd: f64) -> Vec<Vec<f64>> {
    let sign = |x: f64| {
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    let mut w = W0.to_vec();
    let mut m = [0.0; 4];
    let mut out = vec![];
    for g in GRADS {
        for i in 0..4 {
            w[i] -= w[i] * wd * lr;
            w[i] -= lr * sign(b1 * m[i] + (1.0 - b1) * g[i]);
            m[i] = b2 * m[i] + (1.0 - b2) * g[i];
        }
        out.push(w.clone());
    }
    out
}

// ---- update rules ----

#[test]
fn sgd_plain_momentum_nesterov() {
    check(
        "SGD",
        || Box::new(SGD::new()),
        ref_sgd(0.01, 0.0, false, 0.0),
    );
    check(
        "SGD momentum",
        || Box::new(SGD::new().learning_rate(0.1).momentum(0.9)),
        ref_sgd(0.1, 0.9, false, 0.0),
    );
    check(
        "SGD nesterov",
        || Box::new(SGD::new().learning_rate(0.1).momentum(0.9).nesterov(true)),
        ref_sgd(0.1, 0.9, true, 0.0),
    );
}

#[test]
fn adam_bias_correction_and_amsgrad() {
    check(
        "Adam defaults",
        || Box::new(Adam::new()),
        ref_adam(0.001, 0.9, 0.999, 1e-7, false, 0.0),
    );
    check(
        "Adam custom",
        || {
            Box::new(
                Adam::new()
                    .learning_rate(0.1)
                    .beta_1(0.8)
                    .beta_2(0.9)
                    .epsilon(1e-3),
            )
        },
        ref_adam(0.1, 0.8, 0.9, 1e-3, false, 0.0),
    );
    // amsgrad differs from Adam once v shrinks (step 3 for the third element).
    check(
        "Adam amsgrad",
        || Box::new(Adam::new().learning_rate(0.1).beta_2(0.5).amsgrad(true)),
        ref_adam(0.1, 0.9, 0.5, 1e-7, true, 0.0),
    );
    let plain = ref_adam(0.1, 0.9, 0.5, 1e-7, false, 0.0);
    let ams = ref_adam(0.1, 0.9, 0.5, 1e-7, true, 0.0);
    assert!(
        (plain[2][2] - ams[2][2]).abs() > 1e-3,
        "the amsgrad case must be exercised"
    );
}

#[test]
fn adam_first_step_is_lr_times_sign() {
    // With zero moments the bias-corrected first step is lr·g/(|g| + ε·…) ≈ lr·sign(g).
    let w = variable(&[1.0, 1.0], DType::F64, "w");
    let mut opt = Adam::new().learning_rate(0.01);
    opt.apply_gradients(&[(tensor(&[3.0, -0.5], DType::F64), w.clone())])
        .unwrap();
    assert_close(&w.value().to_f64_vec(), &[0.99, 1.01], 1e-6, "adam step 1");
}

#[test]
fn adamw_is_adam_with_decoupled_decay() {
    check(
        "AdamW defaults",
        || Box::new(AdamW::new()),
        ref_adam(0.001, 0.9, 0.999, 1e-7, false, 0.004),
    );
    check(
        "AdamW custom",
        || {
            Box::new(
                AdamW::new()
                    .learning_rate(0.1)
                    .weight_decay(0.2)
                    .amsgrad(true),
            )
        },
        ref_adam(0.1, 0.9, 0.999, 1e-7, true, 0.2),
    );
}

#[test]
fn rmsprop_plain_momentum_centered() {
    check(
        "RMSprop defaults",
        || Box::new(RMSprop::new()),
        ref_rmsprop(0.001, 0.9, 0.0, 1e-7, false),
    );
    check(
        "RMSprop momentum",
        || Box::new(RMSprop::new().learning_rate(0.01).rho(0.8).momentum(0.5)),
        ref_rmsprop(0.01, 0.8, 0.5, 1e-7, false),
    );
    check(
        "RMSprop centered",
        || Box::new(RMSprop::new().learning_rate(0.01).centered(true)),
        ref_rmsprop(0.01, 0.9, 0.0, 1e-7, true),
    );
    check(
        "RMSprop centered+momentum",
        || {
            Box::new(
                RMSprop::new()
                    .learning_rate(0.01)
                    .momentum(0.9)
                    .centered(true)
                    .epsilon(1e-4),
            )
        },
        ref_rmsprop(0.01, 0.9, 0.9, 1e-4, true),
    );
}

#[test]
fn adagrad_rule() {
    check(
        "Adagrad defaults",
        || Box::new(Adagrad::new()),
        ref_adagrad(0.001, 0.1, 1e-7),
    );
    check(
        "Adagrad custom",
        || {
            Box::new(
                Adagrad::new()
                    .learning_rate(0.5)
                    .initial_accumulator_value(0.01)
                    .epsilon(1e-5),
            )
        },
        ref_adagrad(0.5, 0.01, 1e-5),
    );
}

#[test]
fn adadelta_rule() {
    check(
        "Adadelta defaults",
        || Box::new(Adadelta::new()),
        ref_adadelta(0.001, 0.95, 1e-7),
    );
    check(
        "Adadelta custom",
        || Box::new(Adadelta::new().learning_rate(1.0).rho(0.5).epsilon(1e-2)),
        ref_adadelta(1.0, 0.5, 1e-2),
    );
}

#[test]
fn adamax_rule() {
    check(
        "Adamax defaults",
        || Box::new(Adamax::new()),
        ref_adamax(0.001, 0.9, 0.999, 1e-7),
    );
    check(
        "Adamax custom",
        || Box::new(Adamax::new().learning_rate(0.1).beta_1(0.5).beta_2(0.6)),
        ref_adamax(0.1, 0.5, 0.6, 1e-7),
    );
}

#[test]
fn nadam_momentum_cache() {
    check(
        "Nadam defaults",
        || Box::new(Nadam::new()),
        ref_nadam(0.001, 0.9, 0.999, 1e-7),
    );
    check(
        "Nadam custom",
        || Box::new(Nadam::new().learning_rate(0.1).beta_1(0.8).beta_2(0.9)),
        ref_nadam(0.1, 0.8, 0.9, 1e-7),
    );
}

#[test]
fn nadam_u_product_is_shared_across_variables() {
    // Two variables in one step: the momentum cache advances once per step, not per variable.
    let a = variable(&W0, DType::F64, "a");
    let b = variable(&W0, DType::F64, "b");
    let mut opt = Nadam::new().learning_rate(0.1);
    for g in GRADS {
        let g = tensor(&g, DType::F64);
        opt.apply_gradients(&[(g.clone(), a.clone()), (g, b.clone())])
            .unwrap();
    }
    let want = ref_nadam(0.1, 0.9, 0.999, 1e-7);
    assert_close(&a.value().to_f64_vec(), &want[2], 1e-12, "a");
    assert_close(&b.value().to_f64_vec(), &want[2], 1e-12, "b");
    let vars = opt.variables();
    assert_eq!(vars.len(), 5);
    let mu = |t: i32| 0.9 * (1.0 - 0.5 * 0.96f64.powi(t));
    assert_close(
        &vars[4].value().to_f64_vec(),
        &[mu(1) * mu(2) * mu(3)],
        1e-12,
        "u_product",
    );
}

#[test]
fn lion_rule() {
    check(
        "Lion defaults",
        || Box::new(Lion::new()),
        ref_lion(0.001, 0.9, 0.99, 0.0),
    );
    check(
        "Lion custom",
        // (β1 0.6 keeps every sign argument away from an exact 0, where f32 and f64 differ)
        || Box::new(Lion::new().learning_rate(0.1).beta_1(0.6).beta_2(0.7)),
        ref_lion(0.1, 0.6, 0.7, 0.0),
    );
}

// ---- weight decay and clipping ----

#[test]
fn weight_decay_before_update() {
    check(
        "SGD wd",
        || {
            Box::new(
                SGD::new()
                    .learning_rate(0.1)
                    .momentum(0.5)
                    .weight_decay(0.3),
            )
        },
        ref_sgd(0.1, 0.5, false, 0.3),
    );
    check(
        "Adam wd",
        || Box::new(Adam::new().learning_rate(0.05).weight_decay(0.1)),
        ref_adam(0.05, 0.9, 0.999, 1e-7, false, 0.1),
    );
    check(
        "Lion wd",
        || Box::new(Lion::new().learning_rate(0.1).weight_decay(0.5)),
        ref_lion(0.1, 0.9, 0.99, 0.5),
    );
}

#[test]
fn weight_decay_exclusion_by_name() {
    let k = variable(&[1.0], DType::F64, "dense/kernel");
    let b = variable(&[1.0], DType::F64, "dense/bias");
    let mut opt = SGD::new()
        .learning_rate(0.1)
        .weight_decay(0.5)
        .exclude_from_weight_decay(&["bias"]);
    let g = tensor(&[0.0], DType::F64);
    opt.apply_gradients(&[(g.clone(), k.clone()), (g, b.clone())])
        .unwrap();
    assert_close(&k.value().to_f64_vec(), &[0.95], 1e-12, "kernel decays");
    assert_close(&b.value().to_f64_vec(), &[1.0], 1e-12, "bias excluded");
}

/// One SGD(lr=1) step on two variables: returns the applied (clipped) gradients.
fn clipped(opt: SGD, g1: &[f64], g2: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let a = variable(&vec![0.0; g1.len()], DType::F64, "a");
    let b = variable(&vec![0.0; g2.len()], DType::F64, "b");
    let mut opt = opt.learning_rate(1.0);
    opt.apply_gradients(&[
        (tensor(g1, DType::F64), a.clone()),
        (tensor(g2, DType::F64), b.clone()),
    ])
    .unwrap();
    let neg = |v: Vec<f64>| v.into_iter().map(|x| -x).collect::<Vec<_>>();
    (neg(a.value().to_f64_vec()), neg(b.value().to_f64_vec()))
}

#[test]
fn clipnorm_per_variable() {
    // ‖(3, 4)‖ = 5 → scaled to norm 1; ‖(0.3, 0.4)‖ = 0.5 stays.
    let (a, b) = clipped(SGD::new().clipnorm(1.0), &[3.0, 4.0], &[0.3, 0.4]);
    assert_close(&a, &[0.6, 0.8], 1e-12, "clipnorm a");
    assert_close(&b, &[0.3, 0.4], 1e-12, "clipnorm b");
}

#[test]
fn global_clipnorm_joint() {
    // Global norm √(3² + 4² + 12²) = 13 → every gradient scaled by 2/13.
    let (a, b) = clipped(SGD::new().global_clipnorm(2.0), &[3.0, 4.0], &[12.0]);
    let s = 2.0 / 13.0;
    assert_close(&a, &[3.0 * s, 4.0 * s], 1e-12, "global a");
    assert_close(&b, &[12.0 * s], 1e-12, "global b");
    // Below the threshold nothing changes.
    let (a, b) = clipped(SGD::new().global_clipnorm(20.0), &[3.0, 4.0], &[12.0]);
    assert_close(&a, &[3.0, 4.0], 1e-12, "global a unclipped");
    assert_close(&b, &[12.0], 1e-12, "global b unclipped");
}

#[test]
fn clipvalue_elementwise() {
    let (a, b) = clipped(SGD::new().clipvalue(0.5), &[3.0, -0.2], &[-7.0]);
    assert_close(&a, &[0.5, -0.2], 1e-12, "clipvalue a");
    assert_close(&b, &[-0.5], 1e-12, "clipvalue b");
}

#[test]
fn clipping_happens_before_the_adam_update() {
    // Adam on clipnorm-clipped gradients equals Adam fed the clipped gradients directly.
    let grads = [[3.0, 4.0], [0.0, 10.0], [-1.0, 0.5]];
    let clip = |g: [f64; 2]| {
        let n = (g[0] * g[0] + g[1] * g[1]).sqrt();
        let s = if n > 1.0 { 1.0 / n } else { 1.0 };
        [g[0] * s, g[1] * s]
    };
    let a = variable(&[1.0, 1.0], DType::F64, "a");
    let b = variable(&[1.0, 1.0], DType::F64, "b");
    let mut clipping = Adam::new().learning_rate(0.1).clipnorm(1.0);
    let mut plain = Adam::new().learning_rate(0.1);
    for g in grads {
        clipping
            .apply_gradients(&[(tensor(&g, DType::F64), a.clone())])
            .unwrap();
        plain
            .apply_gradients(&[(tensor(&clip(g), DType::F64), b.clone())])
            .unwrap();
    }
    assert_close(
        &a.value().to_f64_vec(),
        &b.value().to_f64_vec(),
        1e-12,
        "adam clipnorm",
    );
}

#[test]
fn two_clipping_arguments_are_an_error() {
    let w = variable(&[1.0], DType::F64, "w");
    let mut opt = SGD::new().clipnorm(1.0).clipvalue(0.5);
    let err = opt
        .apply_gradients(&[(tensor(&[1.0], DType::F64), w.clone())])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("clipnorm") && err.contains("clipvalue"),
        "{err}"
    );
    assert_eq!(w.value().to_f64_vec(), vec![1.0], "nothing applied");
}

// ---- schedules ----

#[test]
fn exponential_decay_formula() {
    let s = ExponentialDecay::new(0.1, 4, 0.5).unwrap();
    let st = ExponentialDecay::new(0.1, 4, 0.5).unwrap().staircase(true);
    for step in [0u64, 1, 3, 4, 7, 8, 13] {
        let want = 0.1 * 0.5f64.powf(step as f64 / 4.0);
        assert!((s.call(step) - want).abs() < 1e-15, "step {step}");
        let want_st = 0.1 * 0.5f64.powi((step / 4) as i32);
        assert!((st.call(step) - want_st).abs() < 1e-15, "staircase {step}");
    }
    assert_eq!(st.call(3), 0.1);
    assert_eq!(st.call(4), 0.05);
    assert!(ExponentialDecay::new(0.1, 0, 0.5).is_err());
}

#[test]
fn piecewise_constant_decay_boundaries() {
    let s = PiecewiseConstantDecay::new(&[2, 5], &[1.0, 0.5, 0.1]).unwrap();
    let want = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1];
    for (step, w) in want.iter().enumerate() {
        assert_eq!(s.call(step as u64), *w, "step {step}");
    }
    let err = PiecewiseConstantDecay::new(&[2, 5], &[1.0, 0.5]).unwrap_err();
    assert!(err.to_string().contains("boundaries"), "{err}");
}

#[test]
fn polynomial_decay_formula_and_cycle() {
    let s = PolynomialDecay::new(0.1, 10).unwrap();
    for step in [0u64, 3, 10, 25] {
        let p = (step.min(10) as f64) / 10.0;
        let want = (0.1 - 1e-4) * (1.0 - p) + 1e-4;
        assert!((s.call(step) - want).abs() < 1e-15, "step {step}");
    }
    let c = PolynomialDecay::new(1.0, 4)
        .unwrap()
        .end_learning_rate(0.0)
        .power(2.0)
        .cycle(true);
    // step 0 → 1; step 2 → (1 - 2/4)² ; step 4 → 0 (ceil(4/4) = 1); step 5 → (1 - 5/8)².
    let cases = [(0u64, 1.0), (2, 0.25), (4, 0.0), (5, 0.140625), (9, 0.0625)];
    for (step, want) in cases {
        assert!(
            (c.call(step) - want).abs() < 1e-15,
            "cycle step {step}: {}",
            c.call(step)
        );
    }
}

#[test]
fn inverse_time_decay_formula() {
    let s = InverseTimeDecay::new(0.1, 2, 0.5).unwrap();
    let st = InverseTimeDecay::new(0.1, 2, 0.5).unwrap().staircase(true);
    for step in [0u64, 1, 2, 3, 10] {
        let want = 0.1 / (1.0 + 0.5 * step as f64 / 2.0);
        assert!((s.call(step) - want).abs() < 1e-15, "step {step}");
        let want_st = 0.1 / (1.0 + 0.5 * (step / 2) as f64);
        assert!((st.call(step) - want_st).abs() < 1e-15, "staircase {step}");
    }
}

#[test]
fn cosine_decay_with_and_without_warmup() {
    let pi = std::f64::consts::PI;
    let s = CosineDecay::new(0.2, 10).unwrap().alpha(0.1);
    for step in [0u64, 5, 10, 15] {
        let x = step.min(10) as f64 / 10.0;
        let want = 0.2 * (0.9 * 0.5 * (1.0 + (pi * x).cos()) + 0.1);
        assert!((s.call(step) - want).abs() < 1e-15, "step {step}");
    }
    assert!((s.call(5) - 0.2 * (0.45 + 0.1)).abs() < 1e-15);
    // Warmup 0 → 1.0 over 4 steps, then cosine from 1.0 over 8 steps.
    let w = CosineDecay::new(0.0, 8)
        .unwrap()
        .warmup_target(1.0)
        .warmup_steps(4);
    let cases = [
        (0u64, 0.0),
        (1, 0.25),
        (3, 0.75),
        (4, 1.0),
        (8, 0.5),
        (12, 0.0),
        (20, 0.0),
    ];
    for (step, want) in cases {
        assert!(
            (w.call(step) - want).abs() < 1e-12,
            "warmup step {step}: {}",
            w.call(step)
        );
    }
}

#[test]
fn cosine_decay_restarts_periods() {
    // Periods of 4, 8, 16 steps (t_mul 2), restarting at 1, 0.5, 0.25 (m_mul 0.5); α = 0.1.
    let pi = std::f64::consts::PI;
    let s = CosineDecayRestarts::new(1.0, 4)
        .unwrap()
        .t_mul(2.0)
        .m_mul(0.5)
        .alpha(0.1);
    let (mut start, mut len, mut peak) = (0u64, 4u64, 1.0);
    for step in 0..28u64 {
        if step == start + len {
            start += len;
            len *= 2;
            peak *= 0.5;
        }
        let f = (step - start) as f64 / len as f64;
        let want = 0.9 * 0.5 * peak * (1.0 + (pi * f).cos()) + 0.1;
        assert!(
            (s.call(step) - want).abs() < 1e-12,
            "step {step}: {}",
            s.call(step)
        );
    }
    // t_mul 1: equal periods.
    let e = CosineDecayRestarts::new(2.0, 5).unwrap().t_mul(1.0);
    for step in 0..12u64 {
        let f = (step % 5) as f64 / 5.0;
        let want = 2.0 * 0.5 * (1.0 + (pi * f).cos());
        assert!((e.call(step) - want).abs() < 1e-12, "t_mul 1 step {step}");
    }
    assert!(CosineDecayRestarts::new(1.0, 0).is_err());
}

#[test]
fn schedule_is_read_at_the_current_iteration() {
    // lr_k = 0.1·0.5^k at iteration k; constant gradient 1 → w_k = w_{k-1} - lr_{k-1}.
    let w = variable(&[1.0], DType::F64, "w");
    let mut opt = SGD::new().learning_rate(ExponentialDecay::new(0.1, 1, 0.5).unwrap());
    let mut want = 1.0;
    for k in 0..4 {
        let lr = 0.1 * 0.5f64.powi(k);
        assert!(
            (Optimizer::learning_rate(&opt) - lr).abs() < 1e-15,
            "lr at iteration {k}"
        );
        opt.apply_gradients(&[(tensor(&[1.0], DType::F64), w.clone())])
            .unwrap();
        want -= lr;
        assert_close(&w.value().to_f64_vec(), &[want], 1e-12, "w");
    }
    assert_eq!(opt.iterations(), 4);
    // Weight decay uses the scheduled rate too.
    let w = variable(&[1.0], DType::F64, "w");
    let sched = PiecewiseConstantDecay::new(&[0], &[0.5, 0.25]).unwrap();
    let mut opt = SGD::new().learning_rate(sched).weight_decay(1.0);
    let g = tensor(&[0.0], DType::F64);
    opt.apply_gradients(&[(g.clone(), w.clone())]).unwrap(); // lr 0.5: w = 0.5
    opt.apply_gradients(&[(g, w.clone())]).unwrap(); // lr 0.25: w = 0.375
    assert_close(
        &w.value().to_f64_vec(),
        &[0.375],
        1e-12,
        "decay with schedule",
    );
}

// ---- bookkeeping ----

#[test]
fn variables_match_keras_counts_and_order() {
    let grads_and_vars = || {
        let a = variable(&[1.0, 2.0], DType::F32, "dense/kernel");
        let b = variable(&[0.5], DType::F32, "dense/bias");
        vec![
            (tensor(&[0.1, 0.2], DType::F32), a),
            (tensor(&[0.3], DType::F32), b),
        ]
    };
    let names = |opt: &mut dyn Optimizer| {
        opt.apply_gradients(&grads_and_vars()).unwrap();
        opt.variables()
            .iter()
            .map(|v| v.name().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&mut Adam::new()),
        [
            "dense_kernel_momentum",
            "dense_kernel_velocity",
            "dense_bias_momentum",
            "dense_bias_velocity"
        ]
    );
    assert_eq!(names(&mut Adam::new().amsgrad(true)).len(), 6);
    assert_eq!(names(&mut AdamW::new()).len(), 4);
    assert_eq!(names(&mut SGD::new()).len(), 0);
    assert_eq!(names(&mut SGD::new().momentum(0.9)).len(), 2);
    assert_eq!(names(&mut RMSprop::new()).len(), 2);
    assert_eq!(
        names(&mut RMSprop::new().momentum(0.9).centered(true)),
        [
            "dense_kernel_velocity",
            "dense_bias_velocity",
            "dense_kernel_momentum",
            "dense_bias_momentum",
            "dense_kernel_average_gradient",
            "dense_bias_average_gradient"
        ]
    );
    assert_eq!(
        names(&mut Adagrad::new()),
        ["dense_kernel_accumulator", "dense_bias_accumulator"]
    );
    assert_eq!(names(&mut Adadelta::new()).len(), 4);
    assert_eq!(
        names(&mut Adamax::new()),
        [
            "dense_kernel_momentum",
            "dense_kernel_norm",
            "dense_bias_momentum",
            "dense_bias_norm"
        ]
    );
    assert_eq!(names(&mut Nadam::new()).len(), 5);
    assert_eq!(names(&mut Lion::new()).len(), 2);
    // Slots have the variable's shape and dtype and are not trainable.
    let mut opt = Adam::new();
    let gv = grads_and_vars();
    opt.apply_gradients(&gv).unwrap();
    let v = opt.variables();
    assert_eq!(v[0].shape(), vec![2]);
    assert_eq!(v[0].dtype(), DType::F32);
    assert!(!v[0].trainable());
}

#[test]
fn adagrad_accumulator_starts_at_initial_value() {
    let w = variable(&[1.0], DType::F64, "w");
    let mut opt = Adagrad::new().initial_accumulator_value(0.25);
    opt.apply_gradients(&[(tensor(&[0.5], DType::F64), w.clone())])
        .unwrap();
    assert_close(
        &opt.variables()[0].value().to_f64_vec(),
        &[0.5],
        1e-12,
        "acc",
    );
}

#[test]
fn get_by_name() {
    let expected = [
        ("sgd", "SGD"),
        ("Adam", "Adam"),
        ("RMSPROP", "RMSprop"),
        ("adagrad", "Adagrad"),
        ("adadelta", "Adadelta"),
        ("adamax", "Adamax"),
        ("nadam", "Nadam"),
        ("AdamW", "AdamW"),
        ("lion", "Lion"),
    ];
    for (name, class) in expected {
        assert_eq!(get(name).unwrap().name(), class, "{name}");
    }
    assert_eq!(NAMES.len(), expected.len());
    // Defaults by name are Keras's.
    assert_eq!(get("sgd").unwrap().learning_rate(), 0.01);
    assert_eq!(get("adagrad").unwrap().learning_rate(), 0.001);
    assert_eq!(get("adamw").unwrap().config().weight_decay, Some(0.004));
    let err = match get("adamm") {
        Err(e) => e.to_string(),
        Ok(o) => panic!("got {}", o.name()),
    };
    assert!(err.contains("adamm") && err.contains("rmsprop"), "{err}");
}

#[test]
fn errors() {
    let w = variable(&[1.0, 2.0], DType::F32, "w");
    let g = tensor(&[1.0, 2.0, 3.0], DType::F32);
    let err = Adam::new()
        .apply_gradients(&[(g, w.clone())])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Adam") && err.contains('3') && err.contains('2'),
        "{err}"
    );
    let g = tensor(&[1.0, 1.0], DType::F32);
    assert!(SGD::new()
        .momentum(1.5)
        .apply_gradients(&[(g.clone(), w.clone())])
        .is_err());
    assert!(Lion::new()
        .beta_1(0.0)
        .apply_gradients(&[(g.clone(), w.clone())])
        .is_err());
    assert_eq!(w.value().to_f64_vec(), vec![1.0, 2.0], "nothing applied");
    // An empty list is a no-op that does not count an iteration.
    let mut opt = SGD::new();
    opt.apply_gradients(&[]).unwrap();
    assert_eq!(opt.iterations(), 0);
}

#[test]
fn half_precision_and_integer_variables() {
    // float16 / bfloat16 variables are updated through f64 and rounded back.
    for dtype in [DType::F16, DType::BF16] {
        let mut opt = Adam::new().learning_rate(0.1);
        let got = run(&mut opt, dtype);
        let want = ref_adam(0.1, 0.9, 0.999, 1e-7, false, 0.0);
        assert_close(&got[2], &want[2], 2e-2, &format!("Adam {dtype:?}"));
        assert_eq!(opt.variables()[0].dtype(), dtype);
    }
    let w = Variable::new(Tensor::from_vec(vec![1i32, 2], &[2]).unwrap(), "int_w");
    let g = Tensor::from_vec(vec![1i32, 1], &[2]).unwrap();
    let err = SGD::new()
        .apply_gradients(&[(g, w)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("int_w"), "{err}");
}

// ---- a custom training loop ----

#[test]
fn custom_training_loop_decreases_the_loss() {
    // Fit y = 2x - 1 with a 1→1 linear model: GradientTape + MSE + apply_gradients.
    let xs: Vec<f32> = (0..16).map(|i| i as f32 / 8.0 - 1.0).collect();
    let ys: Vec<f32> = xs.iter().map(|x| 2.0 * x - 1.0).collect();
    let x = Tensor::from_vec(xs, &[16, 1]).unwrap();
    let y = Tensor::from_vec(ys, &[16, 1]).unwrap();
    let kernel = Variable::new(Tensor::from_vec(vec![0.0f32], &[1, 1]).unwrap(), "kernel");
    let bias = Variable::new(Tensor::from_vec(vec![0.0f32], &[1]).unwrap(), "bias");
    let loss_fn = MeanSquaredError::new();
    for mut opt in [
        Box::new(Adam::new().learning_rate(0.1)) as Box<dyn Optimizer>,
        Box::new(RMSprop::new().learning_rate(0.05)),
        Box::new(Lion::new().learning_rate(0.05)),
    ] {
        kernel
            .assign(&Tensor::from_vec(vec![0.0f32], &[1, 1]).unwrap())
            .unwrap();
        bias.assign(&Tensor::from_vec(vec![0.0f32], &[1]).unwrap())
            .unwrap();
        let mut losses = vec![];
        for _ in 0..60 {
            let tape = GradientTape::new();
            let pred = ops::add(
                &ops::matmul(&x, &kernel.value(), false, false).unwrap(),
                &bias.value(),
            )
            .unwrap();
            let loss = loss_fn.compute(&y, &pred, None).unwrap();
            let sources: [&dyn Watchable; 2] = [&kernel, &bias];
            let grads = tape.gradient(&loss, &sources).unwrap();
            let pairs: Vec<(Tensor, Variable)> = grads
                .into_iter()
                .zip([kernel.clone(), bias.clone()])
                .map(|(g, v)| (g.unwrap(), v))
                .collect();
            opt.apply_gradients(&pairs).unwrap();
            losses.push(loss.to_f64_vec()[0]);
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(last < first * 0.5, "{}: loss {first} → {last}", opt.name());
        assert_eq!(opt.iterations(), 60);
    }
}
