//! The per-op profiler. Its totals are process-wide and the other tests of this binary run ops
//! on other threads, so the exact-count checks run in a child process that runs only
//! `profiler::child_exact_counts` (with `FERROFLOW_PROFILE=1`, which also tests the environment
//! switch).

use std::process::Command;
use std::time::Duration;

use ferroflow_core::profiler::{self, OpStat};
use ferroflow_core::{ops, GradientTape, Tensor, Variable};

const CHILD_ENV: &str = "FERROFLOW_PROFILER_TEST_CHILD";

fn calls(stats: &[OpStat], op: &str) -> u64 {
    stats.iter().find(|s| s.op == op).map_or(0, |s| s.calls)
}

/// Runs in a fresh process (see `exact_counts_in_a_child_process`); a no-op otherwise.
#[test]
fn child_exact_counts() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    // FERROFLOW_PROFILE=1 switched it on: no enable() call here.
    assert!(
        profiler::enabled(),
        "FERROFLOW_PROFILE=1 must turn profiling on"
    );
    profiler::reset();
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    let mut y = x.clone();
    for _ in 0..3 {
        y = ops::add(&y, &x).unwrap();
    }
    let _ = ops::mul(&y, &x).unwrap();
    let s = profiler::snapshot();
    assert_eq!(calls(&s, "AddV2"), 3, "{s:?}");
    assert_eq!(calls(&s, "Mul"), 1, "{s:?}");
    assert_eq!(calls(&s, "BatchMatMulV2"), 0, "{s:?}");
    // A failing op (shape error in infer) is not counted: its kernel never ran.
    let bad = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    assert!(ops::add(&x, &bad).is_err());
    assert_eq!(calls(&profiler::snapshot(), "AddV2"), 3);

    // Gradient ops are counted too: d(sum(a·b))/da and /db are one matmul each
    // (TensorFlow's MatMul gradient), so 1 forward + 2 backward. (ferroflow's matmul op reports
    // itself as BatchMatMulV2 whatever the ranks.)
    profiler::reset();
    assert!(profiler::snapshot().is_empty());
    let a = Variable::new(ops::ones(&[2, 3], ferroflow_core::DType::F32), "a");
    let b = Variable::new(ops::ones(&[3, 4], ferroflow_core::DType::F32), "b");
    let tape = GradientTape::new();
    let prod = ops::matmul(&a.value(), &b.value(), false, false).unwrap();
    let loss = ops::reduce_sum(&prod, ops::Axes::All, false).unwrap();
    let g = tape.gradient(&loss, &[&a, &b]).unwrap();
    assert_eq!(
        g[0].as_ref().unwrap().to_vec::<f32>().unwrap(),
        vec![4.0; 6]
    );
    let s = profiler::snapshot();
    assert_eq!(calls(&s, "BatchMatMulV2"), 3, "{s:?}");
    assert_eq!(calls(&s, "Sum"), 1, "{s:?}");

    // Sorted by total time, largest first; the table has one row per op and a total line.
    for w in s.windows(2) {
        assert!(w[0].total >= w[1].total);
    }
    let table = profiler::report();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), s.len() + 2, "{table}");
    assert!(lines[0].starts_with("op"));
    assert!(lines.last().unwrap().starts_with("total"));

    // Nested calls: exclusive times. The outer call sleeps 10 ms itself and runs an inner call
    // that sleeps 100 ms: the inner row gets >= 100 ms, the outer only its own part (< 100 ms,
    // where inclusive timing would give >= 110 ms). (No reset: the check below still needs the
    // matmul count; these names are used nowhere else.)
    let inner_ms = profiler::timed("TestOuter", || {
        std::thread::sleep(Duration::from_millis(10));
        profiler::timed("TestInner", || {
            std::thread::sleep(Duration::from_millis(100));
            100
        })
    });
    assert_eq!(inner_ms, 100);
    let s = profiler::snapshot();
    let total = |op: &str| s.iter().find(|r| r.op == op).map(|r| r.total).unwrap();
    assert!(total("TestInner") >= Duration::from_millis(100), "{s:?}");
    assert!(total("TestOuter") >= Duration::from_millis(10), "{s:?}");
    assert!(total("TestOuter") < Duration::from_millis(100), "{s:?}");
    assert_eq!((calls(&s, "TestOuter"), calls(&s, "TestInner")), (1, 1));

    // Off: nothing more is counted.
    profiler::disable();
    let _ = ops::matmul(&a.value(), &b.value(), false, false).unwrap();
    assert_eq!(calls(&profiler::snapshot(), "BatchMatMulV2"), 3);
}

#[test]
fn exact_counts_in_a_child_process() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "profiler::child_exact_counts",
            "--exact",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env("FERROFLOW_PROFILE", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the child test did not run:\n{text}"
    );
}

#[test]
fn table_columns_from_known_rows() {
    // Hand-made rows: 3 calls for 6 ms → mean 2000 µs, 75 %; 1 call for 2 ms → 25 %.
    let rows = vec![
        OpStat {
            op: "MatMul",
            calls: 3,
            total: Duration::from_millis(6),
        },
        OpStat {
            op: "Relu",
            calls: 1,
            total: Duration::from_millis(2),
        },
    ];
    let t = profiler::format_table(&rows);
    let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines[0],
        vec!["op", "calls", "total", "ms", "mean", "µs", "%"]
    );
    assert_eq!(lines[1], vec!["MatMul", "3", "6.000", "2000.000", "75.00%"]);
    assert_eq!(lines[2], vec!["Relu", "1", "2.000", "2000.000", "25.00%"]);
    assert_eq!(lines[3], vec!["total", "4", "8.000"]);
    assert_eq!(rows[0].mean(), Duration::from_millis(2));
}
