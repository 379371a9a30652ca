//! Weights by extension: `.npz` of named arrays (checked with numpy when present),
//! `.safetensors`, `.weights.h5`, `.keras` (load), and the errors.

use ferroflow_core::{ops, DType};
use ferroflow_io::{load_model, load_weights_any, save_weights_any};
use ferroflow_keras::Model;

use crate::common::{fixture, python, run_python, tmp};

fn zero_all(m: &Model) {
    for w in m.weights() {
        w.assign(&ops::zeros(&w.shape(), DType::F32)).unwrap();
    }
}

fn values(m: &Model) -> Vec<Vec<f32>> {
    m.get_weights()
        .iter()
        .map(|t| t.to_vec::<f32>().unwrap())
        .collect()
}

#[test]
fn every_weights_format_round_trips() {
    let mut m = load_model(fixture("cnn.keras")).unwrap();
    let want = values(&m);
    for name in ["w.npz", "w.safetensors", "w.weights.h5"] {
        let p = tmp(name);
        save_weights_any(&m, &p).unwrap();
        zero_all(&m);
        load_weights_any(&mut m, &p).unwrap();
        assert_eq!(values(&m), want, "{name}");
    }
    // Keras's load_weights also takes a .keras file.
    zero_all(&m);
    load_weights_any(&mut m, fixture("cnn.keras")).unwrap();
    assert_eq!(values(&m), want, ".keras");
}

#[test]
fn npz_holds_named_arrays_numpy_reads() {
    let m = load_model(fixture("mlp.keras")).unwrap();
    let p = tmp("mlp.npz");
    save_weights_any(&m, &p).unwrap();
    let Some(py) = python() else {
        eprintln!("skipped: no python with numpy (set FERROFLOW_PYTHON)");
        return;
    };
    let out = run_python(
        &py,
        &format!(
            "import numpy as np\nz = np.load({:?})\nfor k in sorted(z.files): print(k, list(z[k].shape), repr(float(z[k].reshape(-1)[0])))",
            p.display().to_string()
        ),
    );
    let mut lines: Vec<String> = Vec::new();
    let mut weights = m.weights();
    weights.sort_by(|a, b| a.name().cmp(b.name()));
    for w in &weights {
        let first = w.value().to_vec::<f32>().unwrap()[0] as f64;
        lines.push(format!("{} {:?} {first:?}", w.name(), w.shape()));
    }
    let got: Vec<String> = out.lines().map(|l| l.replace(", ", ",")).collect();
    let want: Vec<String> = lines.iter().map(|l| l.replace(", ", ",")).collect();
    assert_eq!(got, want);
}

#[test]
fn weights_format_errors() {
    let mut m = load_model(fixture("mlp.keras")).unwrap();
    let e = save_weights_any(&m, tmp("w.pkl")).unwrap_err().to_string();
    assert!(e.contains("w.pkl") && e.contains(".npz"), "{e}");
    let e = load_weights_any(&mut m, tmp("w.bin"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("w.bin"), "{e}");
    // An npz of another model: the missing name is reported, nothing assigned.
    let other = load_model(fixture("cnn.keras")).unwrap();
    let p = tmp("cnn.npz");
    save_weights_any(&other, &p).unwrap();
    let before = values(&m);
    let e = load_weights_any(&mut m, &p).unwrap_err().to_string();
    assert!(e.contains("cnn.npz") && e.contains("dense"), "{e}");
    assert_eq!(values(&m), before);
    // Truncated npz: an error naming the file.
    let bytes = std::fs::read(&p).unwrap();
    let q = tmp("cut.npz");
    std::fs::write(&q, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_weights_any(&mut m, &q).unwrap_err().to_string();
    assert!(e.contains("cut.npz"), "{e}");
}
