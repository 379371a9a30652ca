//! Keras weights in HDF5: Keras 3's `.weights.h5` (save and load) and legacy Keras 2 `.h5`
//! weights (load).
//!
//! Keras 3 layout (`saving_lib._save_state`, the same inside a `.keras` zip's
//! `model.weights.h5`): a model's layers form the list `layers`; each list member is named
//! `snake_case(ClassName)`, de-duplicated per class in list order (`dense`, `dense_1`, ...,
//! *not* the layer's `name`), and its variables are the datasets `layers/<member>/vars/0..n-1`
//! in creation order; the `vars` group carries the layer's name as attribute `name`. The
//! optimizer's variables are `optimizer/vars/0..` (`iteration` int64, `learning_rate` float32
//! unless it is a schedule, then the slots: Adam's `m₁ v₁ m₂ v₂ ...`); the model itself gets an
//! empty `vars` group named after it. Recurrent layers keep their variables in
//! `layers/<member>/cell/vars` (Keras's `cell` attribute). Loading walks the model the same way,
//! so weights are matched by structure, not by name — as in Keras.
//!
//! Legacy Keras 2 files (`model_weights/` or root groups keyed by layer name, with
//! `layer_names`/`weight_names` attributes) are matched by position among the layers that
//! have weights, as Keras's `load_weights_from_hdf5_group` does.

use std::collections::HashMap;
use std::path::Path;

use ferroflow_core::{ops, DType, Error, Result, Tensor, Variable};
use ferroflow_keras::backend::to_snake_case;
use ferroflow_keras::layers::LayerHandle;
use ferroflow_keras::optimizers::LearningRate;
use ferroflow_keras::Model;

use crate::hdf5::{File, GroupBuilder};

/// Keras's suffix rule for `save_weights`.
pub const WEIGHTS_SUFFIX: &str = ".weights.h5";

/// Where a layer's own variables live below its member group, by Keras class: `vars`, or the
/// attributes Keras saves them under — `cell/vars` for the recurrent layers (their cell's),
/// `forward_layer/cell/vars` + `backward_layer/cell/vars` for `Bidirectional` (half each),
/// `layer/vars` (or `layer/cell/vars`) for `TimeDistributed`, `query_dense/vars`, `key_dense/vars`,
/// `value_dense/vars`, `output_dense/vars` (a quarter each) for `MultiHeadAttention`. Returns
/// `(subpath, how many)`.
fn var_groups(class_name: &str, config: &serde_json::Value, n: usize) -> Vec<(String, usize)> {
    let recurrent = |c: &str| matches!(c, "LSTM" | "GRU" | "SimpleRNN");
    let inner = config["layer"]["class_name"].as_str().unwrap_or("");
    match class_name {
        c if recurrent(c) => vec![("cell/vars".into(), n)],
        "Bidirectional" => vec![
            ("forward_layer/cell/vars".into(), n / 2),
            ("backward_layer/cell/vars".into(), n - n / 2),
        ],
        "TimeDistributed" if recurrent(inner) => vec![("layer/cell/vars".into(), n)],
        "TimeDistributed" => vec![("layer/vars".into(), n)],
        // Keras 3's MultiHeadAttention keeps its variables in four EinsumDense sublayers
        // (kernel, then bias when `use_bias`), in this order.
        "MultiHeadAttention" => ["query_dense", "key_dense", "value_dense", "output_dense"]
            .iter()
            .map(|d| (format!("{d}/vars"), n / 4))
            .collect(),
        _ => vec![("vars".into(), n)],
    }
}

/// Each layer with its member path in the `layers` list (`dense`, `dense_1`, `conv2d`, ...).
pub fn layer_paths(model: &Model) -> Vec<(String, LayerHandle)> {
    let mut used: HashMap<String, usize> = HashMap::new();
    model
        .layers()
        .into_iter()
        .map(|l| {
            let base = to_snake_case(&l.class_name());
            let n = used.entry(base.clone()).or_insert(0);
            let name = if *n == 0 {
                base.clone()
            } else {
                format!("{base}_{n}")
            };
            *n += 1;
            (name, l)
        })
        .collect()
}

/// Fills `root` with the model's weights (and optimizer state, if compiled) in Keras 3's layout.
/// This is the content of a `.weights.h5` file and of a `.keras` zip's `model.weights.h5`.
pub fn write_weights(model: &Model, root: &mut GroupBuilder) -> Result<()> {
    root.group("layers")?;
    for (member, layer) in layer_paths(model) {
        let (class, name, weights, config) = {
            let l = layer.lock();
            (
                l.class_name().to_string(),
                l.name().to_string(),
                l.weights(),
                l.get_config(),
            )
        };
        root.group(&format!("layers/{member}/vars"))?
            .set_attr("name", name.as_str());
        let mut next = 0;
        for (sub, count) in var_groups(&class, &config, weights.len()) {
            if sub != "vars" {
                // Keras names a cell `<class>_cell` and a wrapped layer after itself.
                let owner = sub.trim_end_matches("/vars");
                let cell_class = if owner.ends_with("cell") {
                    let c = if class == "Bidirectional" || class == "TimeDistributed" {
                        config["layer"]["class_name"]
                            .as_str()
                            .unwrap_or("rnn")
                            .to_string()
                    } else {
                        class.clone()
                    };
                    format!("{}_cell", to_snake_case(&c))
                } else {
                    config["layer"]["config"]["name"]
                        .as_str()
                        .unwrap_or("layer")
                        .to_string()
                };
                root.group(&format!("layers/{member}/{sub}"))?
                    .set_attr("name", cell_class);
                if let Some(parent) = owner.strip_suffix("/cell") {
                    let pname = format!(
                        "{}_{}",
                        parent.trim_end_matches("_layer"),
                        config["layer"]["config"]["name"].as_str().unwrap_or("rnn")
                    );
                    root.group(&format!("layers/{member}/{parent}/vars"))?
                        .set_attr("name", pname);
                }
            }
            let g = root.group(&format!("layers/{member}/{sub}"))?;
            for (i, w) in weights[next..next + count].iter().enumerate() {
                g.create_dataset(&i.to_string(), &w.value())?;
            }
            next += count;
        }
    }
    if let Some(c) = model.compiled() {
        let opt = &c.optimizer;
        let g = root.group("optimizer/vars")?;
        g.set_attr("name", to_snake_case(opt.name()));
        let mut values = vec![Tensor::scalar(opt.iterations() as i64)];
        if let LearningRate::Constant(lr) = opt.config().learning_rate {
            values.push(Tensor::scalar(lr as f32));
        }
        values.extend(opt.variables().iter().map(|v| v.value()));
        for (i, v) in values.iter().enumerate() {
            g.create_dataset(&i.to_string(), v)?;
        }
    }
    root.group("vars")?.set_attr("name", model.name());
    Ok(())
}

/// `model.save_weights("m.weights.h5")` in Keras 3's format, written atomically. The name must
/// end in `.weights.h5` (Keras's rule).
///
/// ```
/// use ferroflow_keras::prelude::*;
/// use ferroflow_keras::layers::Dense;
/// let mut model = Sequential::new();
/// model.add(Dense::new(2).input_shape(&[3]))?;
/// let path = std::env::temp_dir().join(format!("ff_io_doc_{}.weights.h5", std::process::id()));
/// ferroflow_io::save_weights(&model, &path)?;
/// let before = model.get_weights();
/// model.set_weights(&[ferroflow_core::ops::zeros(&[3, 2], ferroflow_core::DType::F32),
///                     ferroflow_core::ops::zeros(&[2], ferroflow_core::DType::F32)])?;
/// ferroflow_io::load_weights(&mut model, &path)?;
/// assert_eq!(model.get_weights()[0].to_vec::<f32>()?, before[0].to_vec::<f32>()?);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn save_weights(model: &Model, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let p = path.to_string_lossy();
    if !p.ends_with(WEIGHTS_SUFFIX) {
        return Err(Error::invalid(
            "save_weights",
            format!("the filename must end in `.weights.h5`, received: {p:?}"),
        ));
    }
    let mut w = File::create(path);
    write_weights(model, w.root())?;
    w.close()
}

/// `model.load_weights(path)`: a Keras 3 `.weights.h5` (also accepted: a legacy Keras 2 `.h5`
/// with `layer_names`, at the root or under `model_weights`). Nothing is assigned unless every
/// weight is found with the right shape; errors name the layer, the weight and both shapes.
/// Values of another dtype are cast. The optimizer state in the file is loaded when the model is
/// compiled and its optimizer already has its slot variables (after a training step); an
/// optimizer that has none yet is left as it is, and a different number of slots is an error.
pub fn load_weights(model: &mut Model, path: impl AsRef<Path>) -> Result<()> {
    let f = File::open(path)?;
    load_weights_from(model, &f)
}

/// [`load_weights`] from an open file (e.g. a `.keras` zip's `model.weights.h5`).
pub fn load_weights_from(model: &mut Model, f: &File) -> Result<()> {
    let root = f.root()?;
    if root
        .attrs()
        .iter()
        .any(|a| a.name.starts_with("layer_names"))
    {
        return load_legacy(model, &root, "/");
    }
    if root.contains("model_weights") && !root.contains("layers") {
        let g = root.group("model_weights")?;
        return load_legacy(model, &g, "/model_weights");
    }
    let mut plan: Vec<(Variable, Tensor)> = Vec::new();
    for (member, layer) in layer_paths(model) {
        let (class, name, weights, config) = {
            let l = layer.lock();
            (
                l.class_name().to_string(),
                l.name().to_string(),
                l.weights(),
                l.get_config(),
            )
        };
        if weights.is_empty() {
            continue;
        }
        let mut next = 0;
        for (sub, count) in var_groups(&class, &config, weights.len()) {
            let part = &weights[next..next + count];
            next += count;
            let gpath = format!("layers/{member}/{sub}");
            let g = root.group(&gpath).map_err(|e| {
                Error::invalid(
                    "load_weights",
                    format!(
                        "layer {name:?} ({class}, {} weights) has no group {gpath:?} in the file: {e}",
                        weights.len()
                    ),
                )
            })?;
            let n = count_vars(&g.member_names());
            if n != part.len() {
                return Err(Error::invalid(
                    "load_weights",
                    format!(
                        "layer {name:?} expected {} variables, but received {n} variables during loading (group {gpath:?}). Expected: {}",
                        part.len(),
                        part.iter().map(|w| w.name().to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            for (i, w) in part.iter().enumerate() {
                let t = g.dataset(&i.to_string())?.read()?;
                plan.push((w.clone(), checked(&name, w, t)?));
            }
        }
    }
    let opt_plan = optimizer_plan(model, &root)?;
    for (v, t) in &plan {
        v.assign(t)?;
    }
    if let Some((iterations, lr, slots)) = opt_plan {
        for (v, t) in &slots {
            v.assign(t)?;
        }
        let opt = model.optimizer()?;
        opt.config_mut().iterations = iterations;
        if let Some(lr) = lr {
            opt.set_learning_rate(lr);
        }
    }
    Ok(())
}

/// How many members named `0, 1, 2, ...` a `vars` group has.
fn count_vars(names: &[String]) -> usize {
    let mut n = 0;
    while names.iter().any(|m| *m == n.to_string()) {
        n += 1;
    }
    n
}

type OptPlan = Option<(u64, Option<f64>, Vec<(Variable, Tensor)>)>;

/// The optimizer state to assign: (iterations, learning rate, slots), or `None` to leave it.
fn optimizer_plan(model: &Model, root: &crate::hdf5::Group) -> Result<OptPlan> {
    let Some(c) = model.compiled() else {
        return Ok(None);
    };
    if !root.contains("optimizer") {
        return Ok(None);
    }
    let g = root.group("optimizer/vars")?;
    let n = count_vars(&g.member_names());
    let opt = &c.optimizer;
    let constant = matches!(opt.config().learning_rate, LearningRate::Constant(_));
    let head = 1 + constant as usize;
    let slots = opt.variables();
    if slots.is_empty() {
        return Ok(None);
    }
    // An optimizer saved before its first step has only `iteration` (and `learning_rate`):
    // keep the slots as they are (zeros) and restore the counters.
    let slots_in_file = n != head;
    if slots_in_file && n != head + slots.len() {
        return Err(Error::invalid(
            "load_weights",
            format!(
                "optimizer {:?} has {} variables (iteration{}, {} slots) but the file's optimizer/vars has {n}",
                opt.name(),
                head + slots.len(),
                if constant { ", learning_rate" } else { "" },
                slots.len()
            ),
        ));
    }
    let it = g.dataset("0")?.read()?.to_f64_vec();
    let iterations = it.first().copied().unwrap_or(0.0).max(0.0) as u64;
    let lr = if constant {
        g.dataset("1")?.read()?.to_f64_vec().first().copied()
    } else {
        None
    };
    let mut plan = Vec::with_capacity(slots.len());
    if !slots_in_file {
        return Ok(Some((iterations, lr, plan)));
    }
    for (i, v) in slots.iter().enumerate() {
        let t = g.dataset(&(head + i).to_string())?.read()?;
        plan.push((v.clone(), checked(opt.name(), v, t)?));
    }
    Ok(Some((iterations, lr, plan)))
}

/// `t` cast to `w`'s dtype, or an error naming the layer, the weight and both shapes.
fn checked(layer: &str, w: &Variable, t: Tensor) -> Result<Tensor> {
    if t.shape() != w.shape().as_slice() {
        return Err(Error::shape(
            "load_weights",
            format!(
                "layer {layer:?}: weight {:?} has shape {:?} in the model but {:?} in the file",
                w.name(),
                w.shape(),
                t.shape()
            ),
            &[&w.shape(), t.shape()],
        ));
    }
    if t.dtype() == w.dtype() {
        Ok(t)
    } else if t.dtype() == DType::Bool || w.dtype() == DType::Bool {
        Err(Error::invalid(
            "load_weights",
            format!(
                "layer {layer:?}: weight {:?} is {:?} in the model but {:?} in the file",
                w.name(),
                w.dtype(),
                t.dtype()
            ),
        ))
    } else {
        ops::cast(&t, w.dtype())
    }
}

/// Keras's `load_attributes_from_hdf5_group`: `name`, or `name0`, `name1`, ... concatenated
/// (Keras splits attribute lists longer than 64 KiB).
fn string_list_attr(g: &crate::hdf5::Group, name: &str) -> Result<Vec<String>> {
    if let Ok(a) = g.attr(name) {
        return a.as_strings();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while let Ok(a) = g.attr(&format!("{name}{i}")) {
        out.extend(a.as_strings()?);
        i += 1;
    }
    if i == 0 {
        return Err(Error::invalid(
            "load_weights",
            format!("legacy HDF5 group {:?} has no attribute {name:?}", g.path()),
        ));
    }
    Ok(out)
}

/// Legacy Keras 2 weights: layers with weights matched by position.
fn load_legacy(model: &Model, g: &crate::hdf5::Group, at: &str) -> Result<()> {
    let names = string_list_attr(g, "layer_names")?;
    let mut saved = Vec::new();
    for n in &names {
        let lg = g.group(n).map_err(|e| {
            Error::invalid(
                "load_weights",
                format!(
                    "legacy HDF5 weights: layer {n:?} listed in {at}@layer_names has no group: {e}"
                ),
            )
        })?;
        let wn = string_list_attr(&lg, "weight_names")?;
        if !wn.is_empty() {
            saved.push((n.clone(), lg, wn));
        }
    }
    let layers: Vec<(String, Vec<Variable>)> = model
        .layers()
        .iter()
        .map(|l| {
            let l = l.lock();
            (l.name().to_string(), l.weights())
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    if layers.len() != saved.len() {
        return Err(Error::invalid(
            "load_weights",
            format!(
                "layer count mismatch when loading weights from a legacy HDF5 file: the model has {} layers with weights ({}), the file {} ({})",
                layers.len(),
                layers.iter().map(|l| l.0.as_str()).collect::<Vec<_>>().join(", "),
                saved.len(),
                saved.iter().map(|s| s.0.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let mut plan = Vec::new();
    for ((lname, weights), (fname, lg, wn)) in layers.iter().zip(&saved) {
        if weights.len() != wn.len() {
            return Err(Error::invalid(
                "load_weights",
                format!(
                    "layer {lname:?} has {} weights but the file's layer {fname:?} has {} ({})",
                    weights.len(),
                    wn.len(),
                    wn.join(", ")
                ),
            ));
        }
        for (w, n) in weights.iter().zip(wn) {
            let t = lg.dataset(n)?.read()?;
            plan.push((w.clone(), checked(lname, w, t)?));
        }
    }
    for (v, t) in &plan {
        v.assign(t)?;
    }
    Ok(())
}

/// A legacy Keras `.h5` full model's optimizer state (`model.save("m.h5")` of a compiled, trained
/// model): the group `optimizer_weights` whose `weight_names` attribute lists its datasets in
/// Keras's `optimizer.variables` order (`adam/iteration`, `adam/learning_rate` for a constant
/// rate, then the slots). As Keras's `legacy_h5_format.load_model_from_hdf5`, a state that does
/// not fit the optimizer is skipped with a warning on stderr (the model still loads); a file
/// without the group leaves the optimizer fresh. Returns whether the state was restored.
pub fn load_legacy_optimizer_weights(model: &mut Model, f: &File, file_name: &str) -> Result<bool> {
    let root = f.root()?;
    if model.compiled().is_none() || !root.contains("optimizer_weights") {
        return Ok(false);
    }
    let g = root.group("optimizer_weights")?;
    let names = g.attr("weight_names")?.as_strings()?;
    let opt = model.optimizer()?;
    let constant = matches!(opt.config().learning_rate, LearningRate::Constant(_));
    let head = 1 + constant as usize;
    let slots = opt.variables();
    if names.len() != head + slots.len() {
        eprintln!(
            "warning: {}: error in loading the saved optimizer state: optimizer {:?} has {} variables but the file lists {}; the optimizer starts fresh",
            file_name,
            opt.name(),
            head + slots.len(),
            names.len()
        );
        return Ok(false);
    }
    let mut values = Vec::with_capacity(names.len());
    for n in &names {
        values.push(g.dataset(n)?.read()?);
    }
    let mut plan = Vec::with_capacity(slots.len());
    for (v, t) in slots.iter().zip(values.iter().skip(head)) {
        plan.push((v.clone(), checked(opt.name(), v, t.clone())?));
    }
    let iterations = values[0]
        .to_f64_vec()
        .first()
        .copied()
        .unwrap_or(0.0)
        .max(0.0) as u64;
    let lr = if constant {
        values[1].to_f64_vec().first().copied()
    } else {
        None
    };
    for (v, t) in &plan {
        v.assign(t)?;
    }
    opt.config_mut().iterations = iterations;
    if let Some(lr) = lr {
        opt.set_learning_rate(lr);
    }
    Ok(true)
}
