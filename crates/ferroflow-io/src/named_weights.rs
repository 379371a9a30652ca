//! Weights by name in other containers, and one `save_weights`/`load_weights` pair that picks
//! the format from the file name as Keras does: `.weights.h5` (Keras 3, [`crate::keras_h5`]),
//! `.keras` (load only: the weights inside a `.keras` zip, as Keras's `load_weights` accepts),
//! `.safetensors` (`Model::save_weights` of the keras crate, reused), and `.npz` — a NumPy
//! archive of named arrays (`dense/kernel`, `dense/bias`, ...; `numpy.load(path)["dense/kernel"]`),
//! written and read with ferroflow-data's npz code.

use std::path::Path;

use ferroflow_core::{ops, Error, Result, Tensor, Variable};
use ferroflow_data::io::npy::{load_npz, save_npz};
use ferroflow_keras::Model;

/// Writes the model's weights as a `.npz` of arrays named after the variables (atomically).
/// Two weights with one name are an error (rename a layer).
pub fn save_weights_npz(model: &Model, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let weights = model.weights();
    let mut seen = std::collections::HashSet::new();
    let mut arrays = Vec::new();
    for w in &weights {
        if !seen.insert(w.name().to_string()) {
            return Err(Error::invalid(
                "save_weights",
                format!(
                    "{}: model {:?} has two weights named {:?}; names must be unique in a .npz",
                    path.display(),
                    model.name(),
                    w.name()
                ),
            ));
        }
        arrays.push((w.name().to_string(), w.value()));
    }
    save_npz(path, arrays.iter().map(|(k, t)| (k.as_str(), t)))
}

/// Loads a `.npz` of named weights, matched by variable name (extra arrays are ignored).
/// Nothing is assigned unless every weight is found with its shape; values of another dtype
/// are cast. Errors name the file, the weight and the shapes.
pub fn load_weights_npz(model: &Model, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let arrays = load_npz(path)?;
    let mut plan: Vec<(Variable, Tensor)> = Vec::new();
    for w in model.weights() {
        let t = arrays.get(w.name()).ok_or_else(|| {
            Error::invalid(
                "load_weights",
                format!(
                    "{}: no array {:?} (the archive has {})",
                    path.display(),
                    w.name(),
                    arrays.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        if t.shape() != w.shape().as_slice() {
            return Err(Error::shape(
                "load_weights",
                format!("{}: weight {:?}", path.display(), w.name()),
                &[&w.shape(), t.shape()],
            ));
        }
        let t = if t.dtype() == w.dtype() {
            t.clone()
        } else {
            ops::cast(t, w.dtype())?
        };
        plan.push((w, t));
    }
    for (v, t) in &plan {
        v.assign(t)?;
    }
    Ok(())
}

/// `model.save_weights(path)` by extension: `.weights.h5`, `.safetensors` or `.npz`.
pub fn save_weights_any(model: &Model, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let p = path.to_string_lossy();
    if p.ends_with(crate::keras_h5::WEIGHTS_SUFFIX) {
        crate::save_weights(model, path)
    } else if p.ends_with(".safetensors") {
        model.save_weights(path)
    } else if p.ends_with(".npz") {
        save_weights_npz(model, path)
    } else {
        Err(Error::invalid(
            "save_weights",
            format!("{p:?}: the filename must end in .weights.h5, .safetensors or .npz"),
        ))
    }
}

/// `model.load_weights(path)` by extension: `.weights.h5` / legacy `.h5`, `.keras`,
/// `.safetensors` or `.npz`.
pub fn load_weights_any(model: &mut Model, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let p = path.to_string_lossy();
    if p.ends_with(".h5") || p.ends_with(".hdf5") {
        crate::load_weights(model, path)
    } else if p.ends_with(".keras") {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::invalid(
                "load_weights",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| {
            Error::invalid(
                "load_weights",
                format!("{}: not a valid zip: {e}", path.display()),
            )
        })?;
        let mut h5 = Vec::new();
        std::io::Read::read_to_end(
            &mut z.by_name("model.weights.h5").map_err(|e| {
                Error::invalid(
                    "load_weights",
                    format!("{}: model.weights.h5: {e}", path.display()),
                )
            })?,
            &mut h5,
        )
        .map_err(|e| Error::invalid("load_weights", format!("{}: {e}", path.display())))?;
        let f = crate::hdf5::File::from_bytes(&format!("{}/model.weights.h5", path.display()), h5)?;
        crate::keras_h5::load_weights_from(model, &f)
    } else if p.ends_with(".safetensors") {
        model.load_weights(path)
    } else if p.ends_with(".npz") {
        load_weights_npz(model, path)
    } else {
        Err(Error::invalid(
            "load_weights",
            format!(
                "{p:?}: the filename must end in .weights.h5, .h5, .keras, .safetensors or .npz"
            ),
        ))
    }
}
