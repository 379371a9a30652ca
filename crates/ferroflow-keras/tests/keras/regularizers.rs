//! `keras.regularizers`: penalties against their formulas, and their place in the loss.

use ferroflow_core::testing::test_values;
use ferroflow_core::{DType, Tensor};
use ferroflow_keras::layers::{Dense, Layer};
use ferroflow_keras::regularizers::{Regularizer, NAMES};
use ferroflow_keras::Sequential;

fn penalty(r: &Regularizer, w: &[f64]) -> f64 {
    let t = Tensor::from_vec(w.to_vec(), &[w.len()]).unwrap();
    r.penalty(&t).unwrap().item::<f64>().unwrap()
}

#[test]
fn penalties_match_formulas() {
    let w = test_values(20, 4, -3.0, 3.0);
    let l1: f64 = w.iter().map(|x| x.abs()).sum();
    let l2: f64 = w.iter().map(|x| x * x).sum();
    assert!((penalty(&Regularizer::L1(0.3), &w) - 0.3 * l1).abs() < 1e-12);
    assert!((penalty(&Regularizer::L2(0.7), &w) - 0.7 * l2).abs() < 1e-12);
    let both = Regularizer::L1L2 { l1: 0.1, l2: 0.2 };
    assert!((penalty(&both, &w) - (0.1 * l1 + 0.2 * l2)).abs() < 1e-12);
    // The string names use Keras's default factor 0.01.
    assert!((penalty(&Regularizer::get("l1").unwrap(), &w) - 0.01 * l1).abs() < 1e-12);
    assert!((penalty(&Regularizer::get("l2").unwrap(), &w) - 0.01 * l2).abs() < 1e-12);
    let e = penalty(&Regularizer::get("l1_l2").unwrap(), &w);
    assert!((e - 0.01 * (l1 + l2)).abs() < 1e-12);
    // A 2-D weight sums over everything; the penalty keeps the weight's dtype.
    let m = Tensor::from_vec(vec![1.0f32, -2.0, 3.0, -4.0], &[2, 2]).unwrap();
    let p = Regularizer::L1(1.0).penalty(&m).unwrap();
    assert_eq!(p.dtype(), DType::F32);
    assert_eq!(p.item::<f32>().unwrap(), 10.0);
}

#[test]
fn names_and_errors() {
    for &n in NAMES {
        Regularizer::get(n).unwrap();
    }
    assert_eq!(Regularizer::get("l1_l2").unwrap().class_name(), "L1L2");
    let e = Regularizer::get("l3").unwrap_err().to_string();
    assert!(
        e.contains("l3") && NAMES.iter().all(|n| e.contains(n)),
        "{e}"
    );
}

#[test]
fn kernel_regularizer_adds_its_penalty_to_the_loss() {
    let x = Tensor::from_vec(
        test_values(12, 1, -1.0, 1.0)
            .iter()
            .map(|&v| v as f32)
            .collect::<Vec<_>>(),
        &[4, 3],
    )
    .unwrap();
    let y = Tensor::from_vec(vec![1.0f32, -1.0, 0.5, 2.0], &[4, 1]).unwrap();
    let model_with = |reg: Option<f64>| -> Sequential {
        let mut model = Sequential::new();
        let dense = Dense::new(1).input_shape(&[3]).bias_initializer("ones");
        let dense = match reg {
            Some(l2) => dense.kernel_regularizer(Regularizer::L2(l2)),
            None => dense,
        };
        model.add(dense).unwrap();
        model.compile("sgd", "mse", ()).unwrap();
        // The same kernel for both models.
        model
            .set_weights(&[
                Tensor::from_vec(vec![0.5f32, -1.0, 2.0], &[3, 1]).unwrap(),
                Tensor::from_vec(vec![0.25f32], &[1]).unwrap(),
            ])
            .unwrap();
        let n = model.regularization_losses().unwrap().len();
        assert_eq!(n, usize::from(reg.is_some()));
        model
    };
    let loss_of = |reg: Option<f64>| -> (f64, Vec<f64>) {
        let mut model = model_with(reg);
        let logs = model.test_on_batch(&x, &y, None).unwrap();
        (logs["loss"], model.get_weights()[0].to_f64_vec())
    };
    let (plain, w) = loss_of(None);
    let (regularized, _) = loss_of(Some(0.1));
    // Plain MSE by hand.
    let xv = x.to_f64_vec();
    let yv = y.to_f64_vec();
    let mse: f64 = (0..4)
        .map(|i| {
            let p: f64 = (0..3).map(|k| xv[i * 3 + k] * w[k]).sum::<f64>() + 0.25;
            (p - yv[i]).powi(2)
        })
        .sum::<f64>()
        / 4.0;
    assert!((plain - mse).abs() < 1e-5, "{plain} vs {mse}");
    let sq: f64 = w.iter().map(|v| v * v).sum();
    assert!(
        (regularized - (mse + 0.1 * sq)).abs() < 1e-5,
        "{regularized} vs {}",
        mse + 0.1 * sq
    );
    // Training: the reported loss includes the penalty, and so does the gradient. One SGD step
    // (lr 0.01): w -= lr·(dmse/dw + 2·l2·w), with dmse/dw_k = 2/n·Σ_i (p_i - y_i)·x_ik.
    let mut model = model_with(Some(0.1));
    let logs = model.train_on_batch(&x, &y, None).unwrap();
    assert!((logs["loss"] - (mse + 0.1 * sq)).abs() < 1e-5);
    let resid: Vec<f64> = (0..4)
        .map(|i| (0..3).map(|k| xv[i * 3 + k] * w[k]).sum::<f64>() + 0.25 - yv[i])
        .collect();
    let new_w = model.get_weights()[0].to_f64_vec();
    for k in 0..3 {
        let g = 2.0 / 4.0 * (0..4).map(|i| resid[i] * xv[i * 3 + k]).sum::<f64>() + 0.2 * w[k];
        assert!((new_w[k] - (w[k] - 0.01 * g)).abs() < 1e-6, "kernel[{k}]");
    }
    let new_b = model.get_weights()[1].to_f64_vec()[0];
    let gb = 2.0 / 4.0 * resid.iter().sum::<f64>();
    assert!((new_b - (0.25 - 0.01 * gb)).abs() < 1e-6, "bias");
}
