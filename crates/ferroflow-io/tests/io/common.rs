//! Shared helpers: fixture paths, the input formula of make_fixtures.py, python detection.

use std::path::PathBuf;
use std::process::Command;

use ferroflow_core::Tensor;
use ferroflow_io::hdf5::{File, Group, Node};

/// A file in tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh path in a new directory under cargo's per-target temporary directory.
pub fn tmp(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "ff_io_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// make_fixtures.py's inputs: `float32(sin(0.37 i + 0.1))` over the flattened shape.
pub fn inputs(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| (0.37 * i as f64 + 0.1).sin() as f32)
        .collect();
    Tensor::from_vec(v, shape).unwrap()
}

/// The python with Keras/h5py, if present (`FERROFLOW_PYTHON` or the project venv).
pub fn python() -> Option<String> {
    let candidates = [
        std::env::var("FERROFLOW_PYTHON").ok(),
        Some("/work/venvs/tf/bin/python".to_string()),
        Some("python3".to_string()),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", "import h5py, keras"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

/// Runs a python script; returns stdout.
pub fn run_python(py: &str, script: &str) -> String {
    let out = Command::new(py)
        .args(["-c", script])
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads every group, attribute and dataset below `g`; returns how many objects it saw. Depth
/// and count are capped: a corrupt file may make a group its own member.
pub fn walk(g: &Group) -> ferroflow_core::Result<usize> {
    let mut budget = 100_000usize;
    walk_inner(g, 0, &mut budget)
}

fn walk_inner(g: &Group, depth: usize, budget: &mut usize) -> ferroflow_core::Result<usize> {
    if depth > 32 || *budget == 0 {
        return Ok(0);
    }
    *budget -= 1;
    let mut n = 1;
    for a in g.attrs() {
        a.value()?;
    }
    for name in g.member_names() {
        match g.member(&name)? {
            Node::Group(sub) => n += walk_inner(&sub, depth + 1, budget)?,
            Node::Dataset(d) => {
                for a in d.attrs() {
                    a.value()?;
                }
                if let Err(e) = d.read() {
                    // kinds.h5's one chunked dataset is an expected "not supported".
                    if d.path() == "/chunked" && e.to_string().contains("not supported") {
                        continue;
                    }
                    d.read_strings()?;
                }
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Opens bytes and walks the whole file.
pub fn walk_bytes(name: &str, bytes: Vec<u8>) -> ferroflow_core::Result<usize> {
    let f = File::from_bytes(name, bytes)?;
    let _ = f.tree();
    walk(&f.root()?)
}

/// Asserts two float lists agree to `tol` (absolute).
pub fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (*g as f64 - w).abs() <= tol,
            "{what}[{i}]: got {g}, want {w} (tol {tol})"
        );
    }
}
