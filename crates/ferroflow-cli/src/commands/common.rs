//! What several subcommands share: loading models and arrays with errors that name the file.

use std::path::Path;

use ferroflow_core::Tensor;
use ferroflow_keras::backend::Shape;
use ferroflow_keras::Model;

/// A `ferroflow_core::Error` (or any message) as the command's error text.
pub fn msg(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Loads a whole model (`.keras` or legacy `.h5`), saying which file is missing when it is.
pub fn load_model(path: &Path) -> Result<Model, String> {
    if !path.exists() {
        return Err(format!("{}: no such file", path.display()));
    }
    ferroflow_io::load_model(path).map_err(msg)
}

/// Reads a `.npy` array, naming the file on failure.
pub fn read_npy(path: &Path) -> Result<Tensor, String> {
    if !path.exists() {
        return Err(format!("{}: no such file", path.display()));
    }
    ferroflow_data::io::read_npy(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `[None, 4]`-style text of a Keras shape.
pub fn shape_text(s: &Shape) -> String {
    let dims: Vec<String> = s
        .iter()
        .map(|d| d.map_or("None".to_string(), |v| v.to_string()))
        .collect();
    format!("({})", dims.join(", "))
}

/// The model's input names in input order (`InputLayer` names of a functional model; the
/// model's own name for a `Sequential`'s single input).
pub fn input_names(model: &Model) -> Vec<String> {
    match model.structure() {
        ferroflow_keras::models::ModelStructure::Functional { inputs, .. } => {
            inputs.into_iter().map(|t| t.layer).collect()
        }
        ferroflow_keras::models::ModelStructure::Sequential { .. } => vec!["input".to_string()],
    }
}

/// Checks `arrays` (one per model input, in the model's input order) against the model's
/// inputs: their number, each one's per-sample shape (unknown dimensions match anything) and
/// that all agree on the number of samples. `files` names the arrays in errors.
pub fn check_inputs(model: &Model, arrays: &[Tensor], files: &[&Path]) -> Result<(), String> {
    let names = input_names(model);
    let shapes = model.input_shapes();
    let expected = shapes.as_ref().map_or(names.len(), Vec::len);
    if arrays.len() != expected {
        return Err(format!(
            "model {:?} has {expected} input{} ({}) but {} --input file{} given; pass one --input per model input, in this order",
            model.name(),
            if expected == 1 { "" } else { "s" },
            names.join(", "),
            arrays.len(),
            if arrays.len() == 1 { " was" } else { "s were" },
        ));
    }
    let Some(shapes) = shapes else {
        return Ok(());
    };
    for (i, ((x, want), file)) in arrays.iter().zip(&shapes).zip(files).enumerate() {
        let got = x.shape();
        let fits = got.len() == want.len()
            && got
                .iter()
                .zip(want.iter())
                .skip(1)
                .all(|(g, w)| w.is_none_or(|w| w == *g));
        if !fits {
            return Err(format!(
                "input {} ({}): {} has shape {got:?} but the model expects {} (batch first)",
                i + 1,
                names.get(i).map_or("?", String::as_str),
                file.display(),
                shape_text(want),
            ));
        }
    }
    if let Some(first) = arrays.first() {
        let n = first.shape().first().copied().unwrap_or(0);
        for (x, file) in arrays.iter().zip(files).skip(1) {
            if x.shape().first().copied().unwrap_or(0) != n {
                return Err(format!(
                    "{} has {} samples but {} has {n}: every input needs the same number of samples",
                    file.display(),
                    x.shape().first().copied().unwrap_or(0),
                    files[0].display()
                ));
            }
        }
    }
    Ok(())
}
