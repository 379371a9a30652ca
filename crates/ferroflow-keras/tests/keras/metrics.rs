//! Metrics against values computed independently (plain f64 loops or by hand).
#![allow(clippy::needless_range_loop)] // index loops mirror the hand formulas

use ferroflow_core::Tensor;
use ferroflow_keras::metrics::{
    self, ConfusionMatrix, F1Score, FBetaScore, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredError, Metric, Precision, Recall, RootMeanSquaredError,
    SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy, AUC,
};

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<f32>>(), shape).unwrap()
}

fn scalar(m: &dyn Metric) -> f64 {
    m.result().unwrap().item::<f32>().unwrap() as f64
}

fn vector(m: &dyn Metric) -> Vec<f64> {
    m.result().unwrap().to_f64_vec()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
}

// ---------- top-k ----------

/// Rank of the target by sorting (no ties in the data): in the top k when among the first k.
fn in_top_k_by_sort(row: &[f64], target: usize, k: usize) -> bool {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].partial_cmp(&row[a]).unwrap());
    idx[..k.min(idx.len())].contains(&target)
}

const PRED: [[f64; 4]; 4] = [
    [0.1, 0.5, 0.3, 0.05],
    [0.7, 0.1, 0.15, 0.05],
    [0.2, 0.25, 0.3, 0.25 + 1e-3],
    [0.05, 0.15, 0.35, 0.45],
];
const LABELS: [usize; 4] = [2, 1, 0, 3];

#[test]
fn top_k_categorical_accuracy_streaming_weighted() {
    let w = [1.0, 2.0, 0.5, 3.0];
    for k in [1usize, 2, 3] {
        let mut m = TopKCategoricalAccuracy::new().k(k);
        let (mut num, mut den) = (0.0, 0.0);
        for b in 0..2 {
            let rows = &PRED[b * 2..b * 2 + 2];
            let labels = &LABELS[b * 2..b * 2 + 2];
            let mut onehot = vec![0.0; 8];
            for (i, &l) in labels.iter().enumerate() {
                onehot[i * 4 + l] = 1.0;
            }
            let p: Vec<f64> = rows.iter().flatten().copied().collect();
            let sw = t(&w[b * 2..b * 2 + 2], &[2]);
            m.update_state(&t(&onehot, &[2, 4]), &t(&p, &[2, 4]), Some(&sw))
                .unwrap();
            for i in 0..2 {
                let hit = in_top_k_by_sort(&rows[i], labels[i], k) as u8 as f64;
                num += hit * w[b * 2 + i];
                den += w[b * 2 + i];
            }
        }
        close(scalar(&m), num / den);
    }
    // Default k = 5 with 4 classes: always a hit.
    let mut m = TopKCategoricalAccuracy::new();
    let mut onehot = vec![0.0; 16];
    for (i, &l) in LABELS.iter().enumerate() {
        onehot[i * 4 + l] = 1.0;
    }
    let p: Vec<f64> = PRED.iter().flatten().copied().collect();
    m.update_state(&t(&onehot, &[4, 4]), &t(&p, &[4, 4]), None)
        .unwrap();
    close(scalar(&m), 1.0);
    assert_eq!(m.name(), "top_k_categorical_accuracy");
}

#[test]
fn top_k_ties_at_the_boundary_count_as_in() {
    // TensorFlow's in_top_k: target 0.3 ties with another 0.3 for 2nd place, k=2 → in.
    let mut m = TopKCategoricalAccuracy::new().k(2);
    m.update_state(
        &t(&[0.0, 0.0, 1.0], &[1, 3]),
        &t(&[0.4, 0.3, 0.3], &[1, 3]),
        None,
    )
    .unwrap();
    close(scalar(&m), 1.0);
}

#[test]
fn sparse_top_k_streaming_and_label_shapes() {
    for k in [1usize, 2] {
        let mut m = SparseTopKCategoricalAccuracy::new().k(k);
        let p: Vec<f64> = PRED.iter().flatten().copied().collect();
        let l: Vec<f64> = LABELS.iter().map(|&x| x as f64).collect();
        // batch 1 with (n,) labels, batch 2 with (n, 1) labels.
        m.update_state(&t(&l[..2], &[2]), &t(&p[..8], &[2, 4]), None)
            .unwrap();
        m.update_state(&t(&l[2..], &[2, 1]), &t(&p[8..], &[2, 4]), None)
            .unwrap();
        let hits: f64 = (0..4)
            .map(|i| in_top_k_by_sort(&PRED[i], LABELS[i], k) as u8 as f64)
            .sum();
        close(scalar(&m), hits / 4.0);
        m.reset_state();
        close(scalar(&m), 0.0);
    }
    let mut m = SparseTopKCategoricalAccuracy::new();
    let err = m
        .update_state(&t(&[0.0, 1.0, 2.0], &[3]), &t(&[0.0; 8], &[2, 4]), None)
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("sparse_top_k_categorical_accuracy"));
}

// ---------- precision / recall ----------

const Y: [f64; 8] = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
const P: [f64; 8] = [0.9, 0.6, 0.4, 0.7, 0.2, 0.55, 0.5, 0.1];
const W: [f64; 8] = [1.0, 2.0, 1.0, 0.5, 1.0, 3.0, 1.0, 1.0];

/// (tp, fp, fn) at threshold `th` by a plain loop: predicted positive iff p > th.
fn counts(y: &[f64], p: &[f64], w: &[f64], th: f64) -> (f64, f64, f64) {
    let (mut tp, mut fp, mut fnn) = (0.0, 0.0, 0.0);
    for i in 0..y.len() {
        let pos = p[i] > th;
        if y[i] == 1.0 && pos {
            tp += w[i];
        } else if y[i] == 0.0 && pos {
            fp += w[i];
        } else if y[i] == 1.0 {
            fnn += w[i];
        }
    }
    (tp, fp, fnn)
}

#[test]
fn precision_and_recall_streaming_weighted_and_multi_threshold() {
    let mut pr = Precision::new();
    let mut re = Recall::new();
    for b in 0..2 {
        let r = b * 4..b * 4 + 4;
        let sw = t(&W[r.clone()], &[4]);
        pr.update_state(&t(&Y[r.clone()], &[4]), &t(&P[r.clone()], &[4]), Some(&sw))
            .unwrap();
        re.update_state(&t(&Y[r.clone()], &[4, 1]), &t(&P[r], &[4, 1]), Some(&sw))
            .unwrap();
    }
    let (tp, fp, fnn) = counts(&Y, &P, &W, 0.5);
    // By hand: tp = 1 + 0.5 = 1.5 (0.9, 0.7); fp = 2 + 3 = 5 (0.6, 0.55); fn = 1 + 1 = 2.
    assert_eq!((tp, fp, fnn), (1.5, 5.0, 2.0));
    close(scalar(&pr), tp / (tp + fp));
    close(scalar(&re), tp / (tp + fnn));

    let ths = [0.3, 0.5, 0.8];
    let mut pr = Precision::new().thresholds(&ths);
    let mut re = Recall::new().thresholds(&ths);
    pr.update_state(&t(&Y, &[8]), &t(&P, &[8]), None).unwrap();
    re.update_state(&t(&Y, &[8]), &t(&P, &[8]), None).unwrap();
    let ones = [1.0; 8];
    let (pv, rv) = (vector(&pr), vector(&re));
    assert_eq!(pv.len(), 3);
    for (i, &th) in ths.iter().enumerate() {
        let (tp, fp, fnn) = counts(&Y, &P, &ones, th);
        close(pv[i], tp / (tp + fp));
        close(rv[i], tp / (tp + fnn));
    }
}

#[test]
fn precision_with_nothing_predicted_is_zero() {
    let mut pr = Precision::new();
    pr.update_state(&t(&[1.0, 0.0], &[2]), &t(&[0.1, 0.2], &[2]), None)
        .unwrap();
    close(scalar(&pr), 0.0);
}

#[test]
fn precision_recall_top_k_and_class_id() {
    // 3 samples, 4 classes (multi-label targets).
    let y = [
        [1.0, 0.0, 1.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 1.0],
    ];
    let p = [
        [0.9, 0.8, 0.1, 0.3],
        [0.2, 0.6, 0.7, 0.1],
        [0.3, 0.4, 0.2, 0.95],
    ];
    let yf: Vec<f64> = y.iter().flatten().copied().collect();
    let pf: Vec<f64> = p.iter().flatten().copied().collect();
    // top_k = 2: predicted positive = the 2 highest of each row (threshold -inf).
    let mut tp = 0.0;
    let mut fp = 0.0;
    let mut fnn = 0.0;
    for i in 0..3 {
        let mut idx: Vec<usize> = (0..4).collect();
        idx.sort_by(|&a, &b| p[i][b].partial_cmp(&p[i][a]).unwrap());
        for j in 0..4 {
            let pos = idx[..2].contains(&j);
            match (y[i][j] == 1.0, pos) {
                (true, true) => tp += 1.0,
                (false, true) => fp += 1.0,
                (true, false) => fnn += 1.0,
                _ => {}
            }
        }
    }
    let mut pr = Precision::new().top_k(2);
    let mut re = Recall::new().top_k(2);
    pr.update_state(&t(&yf, &[3, 4]), &t(&pf, &[3, 4]), None)
        .unwrap();
    re.update_state(&t(&yf, &[3, 4]), &t(&pf, &[3, 4]), None)
        .unwrap();
    close(scalar(&pr), tp / (tp + fp));
    close(scalar(&re), tp / (tp + fnn));

    // class_id = 2 at threshold 0.5: column 2 only: y = [1, 0, 1], p = [0.1, 0.7, 0.2].
    let mut pr = Precision::new().class_id(2);
    let mut re = Recall::new().class_id(2);
    pr.update_state(&t(&yf, &[3, 4]), &t(&pf, &[3, 4]), None)
        .unwrap();
    re.update_state(&t(&yf, &[3, 4]), &t(&pf, &[3, 4]), None)
        .unwrap();
    close(scalar(&pr), 0.0); // one positive prediction (0.7), a false positive
    close(scalar(&re), 0.0); // two positive labels, both missed

    let err = Precision::new()
        .class_id(7)
        .update_state(&t(&yf, &[3, 4]), &t(&pf, &[3, 4]), None)
        .unwrap_err();
    assert!(err.to_string().contains("class_id 7"), "{err}");
    let err = Precision::new()
        .update_state(&t(&yf, &[3, 4]), &t(&pf[..8], &[2, 4]), None)
        .unwrap_err();
    assert!(
        err.to_string().contains("(3, 4)") && err.to_string().contains("(2, 4)"),
        "{err}"
    );
    assert!(Precision::new()
        .threshold(1.5)
        .update_state(&t(&[1.0], &[1]), &t(&[1.0], &[1]), None)
        .is_err());
}

// ---------- AUC ----------

#[test]
fn auc_keras_documented_example_and_summation_methods() {
    // keras.metrics.AUC(num_thresholds=3): y=[0,0,1,1], p=[0,0.5,0.3,0.9] → 0.75.
    let y = t(&[0.0, 0.0, 1.0, 1.0], &[4]);
    let p = t(&[0.0, 0.5, 0.3, 0.9], &[4]);
    // Thresholds [-ε, 0.5, 1+ε]. By hand: (tp, fp, fn, tn) = (2,2,0,0), (1,0,1,2), (0,0,2,2).
    // ROC points (fpr, tpr): (1, 1), (0, 0.5), (0, 0).
    let cases = [
        ("ROC", "interpolation", 1.0 * (1.0 + 0.5) / 2.0),
        ("ROC", "minoring", 1.0 * 0.5),
        ("ROC", "majoring", 1.0 * 1.0),
        // PR points (recall, precision): (1, 0.5), (0.5, 1), (0, 0).
        ("PR", "minoring", 0.5 * 0.5 + 0.5 * 0.0),
        ("PR", "majoring", 0.5 * 1.0 + 0.5 * 1.0),
        // Davis–Goadrich interpolation, by hand: interval 1: slope = dTP/dP = 1/3, intercept =
        // 1 - 1/3, area = slope·(dTP + intercept·ln(P_A/P_B)) / (tp+fn) = (1/3)(1 + (2/3)ln 4)/2;
        // interval 2: slope 1, intercept 0, area = 1·1/2.
        (
            "PR",
            "interpolation",
            (1.0 / 3.0) * (1.0 + (2.0 / 3.0) * 4f64.ln()) / 2.0 + 0.5,
        ),
    ];
    for (curve, method, want) in cases {
        let mut m = AUC::new()
            .num_thresholds(3)
            .curve(curve)
            .summation_method(method);
        m.update_state(&y, &p, None).unwrap();
        close(scalar(&m), want);
    }
}

#[test]
fn auc_roc_matches_pairwise_statistic_when_buckets_separate_predictions() {
    // Predictions at least 1/199 apart, so each lies in its own bucket of the 200 thresholds and
    // the trapezoidal ROC-AUC equals the Mann–Whitney statistic P(p_pos > p_neg).
    let y = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0];
    let p = [0.93, 0.12, 0.47, 0.58, 0.33, 0.81, 0.27, 0.05, 0.66, 0.71];
    let w = [1.0, 2.0, 1.0, 1.0, 0.5, 1.0, 3.0, 1.0, 1.0, 1.0];
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..10 {
        for j in 0..10 {
            if y[i] == 1.0 && y[j] == 0.0 {
                den += w[i] * w[j];
                if p[i] > p[j] {
                    num += w[i] * w[j];
                }
            }
        }
    }
    let mut m = AUC::new();
    m.update_state(
        &t(&y[..4], &[4]),
        &t(&p[..4], &[4]),
        Some(&t(&w[..4], &[4])),
    )
    .unwrap();
    m.update_state(
        &t(&y[4..], &[6, 1]),
        &t(&p[4..], &[6, 1]),
        Some(&t(&w[4..], &[6])),
    )
    .unwrap();
    close(scalar(&m), num / den);
    assert_eq!(m.name(), "auc");
    m.reset_state();
    close(scalar(&m), 0.0);
    assert!(AUC::new()
        .curve("XY")
        .update_state(&t(&y, &[10]), &t(&p, &[10]), None)
        .is_err());
    assert!(AUC::new()
        .num_thresholds(1)
        .update_state(&t(&y, &[10]), &t(&p, &[10]), None)
        .is_err());
}

// ---------- F-scores ----------

#[test]
fn f1_keras_example_and_averages() {
    let y = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
    let p = [0.2, 0.6, 0.7, 0.2, 0.6, 0.6, 0.6, 0.8, 0.0];
    // Per class at threshold 0.5 (by a loop): tp/fp/fn/support.
    let mut tp = [0.0; 3];
    let mut fp = [0.0; 3];
    let mut fnn = [0.0; 3];
    let mut sup = [0.0; 3];
    for i in 0..3 {
        for j in 0..3 {
            let pos = p[i * 3 + j] > 0.5;
            let l = y[i * 3 + j] == 1.0;
            tp[j] += (pos && l) as u8 as f64;
            fp[j] += (pos && !l) as u8 as f64;
            fnn[j] += (!pos && l) as u8 as f64;
            sup[j] += l as u8 as f64;
        }
    }
    let f1 = |tp: f64, fp: f64, fnn: f64| {
        let (pr, re) = (tp / (tp + fp), tp / (tp + fnn));
        if pr + re == 0.0 {
            0.0
        } else {
            2.0 * pr * re / (pr + re)
        }
    };
    let per: Vec<f64> = (0..3).map(|j| f1(tp[j], fp[j], fnn[j])).collect();
    // Keras's documented values.
    close(per[0], 0.5);
    close(per[1], 0.8);
    close(per[2], 2.0 / 3.0);

    let mut none = F1Score::new().threshold(0.5);
    // Streaming: rows 0 then 1–2.
    none.update_state(&t(&y[..3], &[1, 3]), &t(&p[..3], &[1, 3]), None)
        .unwrap();
    none.update_state(&t(&y[3..], &[2, 3]), &t(&p[3..], &[2, 3]), None)
        .unwrap();
    let got = vector(&none);
    assert_eq!(got.len(), 3);
    for j in 0..3 {
        close(got[j], per[j]);
    }
    let run = |avg: &str| {
        let mut m = F1Score::new().threshold(0.5).average(avg);
        m.update_state(&t(&y, &[3, 3]), &t(&p, &[3, 3]), None)
            .unwrap();
        scalar(&m)
    };
    close(run("macro"), per.iter().sum::<f64>() / 3.0);
    let total: f64 = sup.iter().sum();
    close(
        run("weighted"),
        per.iter().zip(&sup).map(|(f, s)| f * s / total).sum(),
    );
    close(
        run("micro"),
        f1(tp.iter().sum(), fp.iter().sum(), fnn.iter().sum()),
    );
}

#[test]
fn f1_argmax_mode_with_sample_weights_and_fbeta() {
    // No threshold: the row's maximum is the positive prediction.
    let y = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let p = [0.6, 0.3, 0.1, 0.2, 0.5, 0.3, 0.7, 0.2, 0.1, 0.1, 0.2, 0.7];
    let w = [1.0, 2.0, 0.5, 1.5];
    let mut tp = [0.0; 3];
    let mut fp = [0.0; 3];
    let mut fnn = [0.0; 3];
    for i in 0..4 {
        let row = &p[i * 3..i * 3 + 3];
        let am = (0..3)
            .max_by(|&a, &b| row[a].partial_cmp(&row[b]).unwrap())
            .unwrap();
        for j in 0..3 {
            let pos = j == am;
            let l = y[i * 3 + j] == 1.0;
            tp[j] += (pos && l) as u8 as f64 * w[i];
            fp[j] += (pos && !l) as u8 as f64 * w[i];
            fnn[j] += (!pos && l) as u8 as f64 * w[i];
        }
    }
    let beta2: f64 = 4.0; // beta = 2
    let fb = |j: usize, b2: f64| {
        let (pr, re) = (tp[j] / (tp[j] + fp[j]), tp[j] / (tp[j] + fnn[j]));
        if pr + re == 0.0 {
            0.0
        } else {
            (1.0 + b2) * pr * re / (b2 * pr + re)
        }
    };
    let mut m = F1Score::new();
    m.update_state(&t(&y, &[4, 3]), &t(&p, &[4, 3]), Some(&t(&w, &[4])))
        .unwrap();
    let got = vector(&m);
    for j in 0..3 {
        close(got[j], fb(j, 1.0));
    }
    let mut m = FBetaScore::new(2.0).average("macro");
    m.update_state(&t(&y, &[4, 3]), &t(&p, &[4, 3]), Some(&t(&w, &[4])))
        .unwrap();
    close(scalar(&m), (0..3).map(|j| fb(j, beta2)).sum::<f64>() / 3.0);
    // Errors: rank-1 input, unknown average.
    assert!(F1Score::new()
        .update_state(&t(&y[..3], &[3]), &t(&p[..3], &[3]), None)
        .is_err());
    let err = F1Score::new()
        .average("median")
        .update_state(&t(&y, &[4, 3]), &t(&p, &[4, 3]), None)
        .unwrap_err();
    assert!(err.to_string().contains("micro"), "{err}");
}

// ---------- regression ----------

#[test]
fn regression_metrics_streaming_weighted() {
    let y = [[1.0, 2.0], [0.5, -1.0], [3.0, 0.0], [2.0, 2.0]];
    let p = [[1.5, 1.0], [0.0, -1.0], [2.0, 1.0], [2.5, 3.0]];
    let w = [1.0, 2.0, 0.5, 1.0];
    let (mut se, mut ae, mut ape, mut den) = (0.0, 0.0, 0.0, 0.0);
    let mut se_elem = 0.0;
    for i in 0..4 {
        let (mut s, mut a, mut pc) = (0.0, 0.0, 0.0);
        for j in 0..2 {
            let d: f64 = y[i][j] - p[i][j];
            s += d * d;
            a += d.abs();
            pc += (d / f64::max(y[i][j].abs(), 1e-7)).abs();
        }
        se += s / 2.0 * w[i];
        ae += a / 2.0 * w[i];
        ape += 100.0 * pc / 2.0 * w[i];
        se_elem += s * w[i];
        den += w[i];
    }
    let mut mse = MeanSquaredError::new();
    let mut mae = MeanAbsoluteError::new();
    let mut mape = MeanAbsolutePercentageError::new();
    let mut rmse = RootMeanSquaredError::new();
    for b in 0..2 {
        let yt: Vec<f64> = y[b * 2..b * 2 + 2].iter().flatten().copied().collect();
        let pt: Vec<f64> = p[b * 2..b * 2 + 2].iter().flatten().copied().collect();
        let sw = t(&w[b * 2..b * 2 + 2], &[2]);
        for m in [&mut mse as &mut dyn Metric, &mut mae, &mut mape, &mut rmse] {
            m.update_state(&t(&yt, &[2, 2]), &t(&pt, &[2, 2]), Some(&sw))
                .unwrap();
        }
    }
    close(scalar(&mse), se / den);
    close(scalar(&mae), ae / den);
    assert!((scalar(&mape) - ape / den).abs() < 1e-3 * (ape / den));
    close(scalar(&rmse), (se_elem / (2.0 * den)).sqrt());
    let err = mse
        .update_state(&t(&[1.0, 2.0], &[2]), &t(&[1.0, 2.0, 3.0], &[3]), None)
        .unwrap_err();
    assert!(err.to_string().contains("mean_squared_error"), "{err}");
}

// ---------- confusion matrix ----------

#[test]
fn confusion_matrix_accumulates_like_tf() {
    let labels = [0, 1, 2, 2, 1, 0, 2];
    let preds = [0, 2, 2, 1, 1, 1, 2];
    let w = [1.0, 2.0, 1.0, 0.5, 1.0, 3.0, 1.0];
    let mut want = [[0.0; 3]; 3];
    for i in 0..7 {
        want[labels[i]][preds[i]] += w[i];
    }
    let lf: Vec<f64> = labels.iter().map(|&x| x as f64).collect();
    let pf: Vec<f64> = preds.iter().map(|&x| x as f64).collect();
    let mut m = ConfusionMatrix::new(3);
    m.update_state(
        &t(&lf[..3], &[3]),
        &t(&pf[..3], &[3]),
        Some(&t(&w[..3], &[3])),
    )
    .unwrap();
    // Second batch as scores: argmax gives the predicted class.
    let mut scores = vec![0.1; 4 * 3];
    for (i, &c) in preds[3..].iter().enumerate() {
        scores[i * 3 + c] = 0.8;
    }
    m.update_state(
        &t(&lf[3..], &[4, 1]),
        &t(&scores, &[4, 3]),
        Some(&t(&w[3..], &[4])),
    )
    .unwrap();
    let got = m.result().unwrap();
    assert_eq!(got.shape(), &[3, 3]);
    let got = got.to_f64_vec();
    for i in 0..3 {
        for j in 0..3 {
            close(got[i * 3 + j], want[i][j]);
        }
    }
    let err = m
        .update_state(&t(&[3.0], &[1]), &t(&[0.0], &[1]), None)
        .unwrap_err();
    assert!(err.to_string().contains("num_classes=3"), "{err}");
    // The failed update left the state alone.
    let again = m.result().unwrap().to_f64_vec();
    assert_eq!(again, got);
}

// ---------- names ----------

#[test]
fn get_resolves_keras_names_and_logs_them_as_given() {
    for name in [
        "accuracy",
        "acc",
        "mse",
        "mae",
        "mape",
        "AUC",
        "auc",
        "precision",
        "recall",
        "binary_accuracy",
        "categorical_accuracy",
        "sparse_categorical_accuracy",
        "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy",
    ] {
        let m = metrics::get(name).unwrap();
        assert_eq!(m.name(), name);
    }
    let mut m = metrics::get("mse").unwrap();
    m.update_state(&t(&[1.0, 3.0], &[2, 1]), &t(&[0.0, 1.0], &[2, 1]), None)
        .unwrap();
    close(scalar(m.as_ref()), (1.0 + 4.0) / 2.0);
    let err = match metrics::get("f2") {
        Err(e) => e.to_string(),
        Ok(_) => panic!("unknown name accepted"),
    };
    assert!(err.contains("sparse_top_k_categorical_accuracy"), "{err}");
}

#[test]
fn compiled_metrics_by_name_in_evaluate() {
    use ferroflow_keras::layers::{Dense, Layer};
    use ferroflow_keras::Sequential;
    let x = Tensor::from_vec((0..20).map(|i| i as f32 / 10.0 - 1.0).collect(), &[20, 1]).unwrap();
    let y = Tensor::from_vec(
        (0..20)
            .map(|i| if i % 3 == 0 { 1.0f32 } else { 0.0 })
            .collect(),
        &[20, 1],
    )
    .unwrap();
    let mut model = Sequential::new();
    model
        .add(Dense::new(1).activation("sigmoid").input_shape(&[1]))
        .unwrap();
    model
        .compile("sgd", "mse", ["mae", "mse", "AUC", "precision"])
        .unwrap();
    let logs = model
        .evaluate(&x, &y)
        .batch_size(8)
        .verbose(0)
        .run_dict()
        .unwrap();
    let p = model.predict(&x).verbose(0).run().unwrap().to_f64_vec();
    let yv = y.to_f64_vec();
    let n = p.len() as f64;
    let mae: f64 = p.iter().zip(&yv).map(|(a, b)| (a - b).abs()).sum::<f64>() / n;
    let mse: f64 = p
        .iter()
        .zip(&yv)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        / n;
    let (mut tp, mut fp) = (0.0, 0.0);
    for (a, b) in p.iter().zip(&yv) {
        if *a > 0.5 {
            if *b == 1.0 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
        }
    }
    let prec = if tp + fp == 0.0 { 0.0 } else { tp / (tp + fp) };
    assert!((logs["mae"] - mae).abs() < 1e-5, "{logs:?}");
    assert!((logs["mse"] - mse).abs() < 1e-5, "{logs:?}");
    assert!((logs["precision"] - prec).abs() < 1e-5, "{logs:?}");
    assert!((0.0..=1.0).contains(&logs["AUC"]), "{logs:?}");
}

#[test]
fn auc_multi_label_and_label_weights() {
    // Column 0 is Keras's documented example (ROC-AUC 0.75 with 3 thresholds); column 1,
    // y = [1, 0, 1, 0], p = [0.9, 0.1, 0.6, 0.4]: ROC points (1, 1), (0, 1), (0, 0) → 1.0.
    let y = t(&[0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0], &[4, 2]);
    let p = t(&[0.0, 0.9, 0.5, 0.1, 0.3, 0.6, 0.9, 0.4], &[4, 2]);
    let mut m = AUC::new().num_thresholds(3).multi_label(true);
    m.update_state(&y, &p, None).unwrap();
    close(scalar(&m), (0.75 + 1.0) / 2.0);
    let mut m = AUC::new()
        .num_thresholds(3)
        .multi_label(true)
        .label_weights(&[1.0, 3.0]);
    m.update_state(&y, &p, None).unwrap();
    close(scalar(&m), (0.75 * 1.0 + 1.0 * 3.0) / 4.0);
    // Flattened with label weights 1 and 3, by hand: threshold 0.5 keeps tp = 1·1 + 3·2 = 7 of
    // 8 weighted positives and no false positive: area = (1 + 7/8) / 2.
    let mut m = AUC::new().num_thresholds(3).label_weights(&[1.0, 3.0]);
    m.update_state(&y, &p, None).unwrap();
    close(scalar(&m), (1.0 + 7.0 / 8.0) / 2.0);
    assert!(AUC::new()
        .multi_label(true)
        .update_state(&t(&[1.0, 0.0], &[2]), &t(&[0.5, 0.5], &[2]), None)
        .is_err());
}
