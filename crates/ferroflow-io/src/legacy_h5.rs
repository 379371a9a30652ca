//! Writing Keras's legacy full-model HDF5 file (`model.save("m.h5")`, which Keras 3 still writes
//! through its `legacy_h5_format`, with a warning). Reading it is in [`keras_format`](crate::keras_format).
//!
//! The layout, as Keras 3.15's `save_model_to_hdf5` writes it (checked against files it wrote):
//!
//! ```text
//! /  @backend="tensorflow" @keras_version @model_config=<JSON> [@training_config=<JSON>]
//!   model_weights/  @backend @keras_version @layer_names=[every layer, in model order]
//!     <layer>/  @weight_names=["<layer>/kernel", "<layer>/bias"]   (an empty list: float64[0])
//!       <layer>/kernel, <layer>/bias                               (datasets at the weight names)
//!     top_level_model_weights/  @weight_names=float64[0]
//!   optimizer_weights/  @weight_names=["adam/iteration", "adam/learning_rate", "adam/<var>_<slot>", ...]
//! ```
//!
//! `model_config` is the Keras-2-style `{"class_name", "config"}` object: Keras's legacy
//! serializer leaves `module`, `registered_name` and `build_config` off the model and off each
//! entry of its `layers` list (nested objects such as initializers and dtype policies keep
//! them). `training_config` is the compile config with the optimizer moved to
//! `optimizer_config: {class_name, config}`. String-list attributes longer than 64,512 bytes are
//! split into `name0`, `name1`, ... as Keras does.

use std::collections::HashSet;
use std::path::Path;

use ferroflow_core::{ops, DType, Result, Tensor};
use ferroflow_keras::backend::to_snake_case;
use ferroflow_keras::models::Model;
use ferroflow_keras::optimizers::LearningRate;
use serde_json::{json, Value};

use crate::hdf5::{AttrValue, File, GroupBuilder};
use crate::keras_config::{compile_config, model_config};
use crate::keras_format::KERAS_VERSION;

/// h5py's limit on one attribute in an object header, which Keras splits string lists under.
const HDF5_OBJECT_HEADER_LIMIT: usize = 64512;

/// `model.save("m.h5")`: the model's architecture, weights, compile config and optimizer state
/// in Keras's legacy HDF5 layout (which Keras 3 and `tf_keras` load), written atomically.
///
/// ```
/// use ferroflow_keras::prelude::*;
/// use ferroflow_keras::layers::Dense;
/// let mut model = Sequential::new();
/// model.add(Dense::new(2).input_shape(&[3]))?;
/// let path = std::env::temp_dir().join(format!("ff_legacy_doc_{}.h5", std::process::id()));
/// ferroflow_io::legacy_h5::save_legacy_h5(&model, &path)?;
/// let loaded = ferroflow_io::load_model(&path)?;
/// assert_eq!(loaded.get_weights()[0].to_vec::<f32>()?, model.get_weights()[0].to_vec::<f32>()?);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn save_legacy_h5(model: &Model, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = legacy_h5_bytes(model)?;
    crate::atomic::write_atomic("save_model", path, &bytes)
}

/// The bytes of [`save_legacy_h5`]'s file.
pub fn legacy_h5_bytes(model: &Model) -> Result<Vec<u8>> {
    let mut w = File::create("legacy.h5");
    let root = w.root();
    root.set_attr("backend", "tensorflow");
    root.set_attr("keras_version", KERAS_VERSION);
    root.set_attr("model_config", legacy_model_config(model).to_string());
    if let Some(tc) = training_config(model) {
        root.set_attr("training_config", tc.to_string());
    }
    write_model_weights(model, root.group("model_weights")?)?;
    if model.compiled().is_some() {
        write_optimizer_weights(model, root.group("optimizer_weights")?)?;
    }
    w.to_bytes()
}

/// Keras's legacy `model_config`: the `.keras` config without `module`, `registered_name` and
/// `build_config` on the model and on its layer entries.
pub fn legacy_model_config(model: &Model) -> Value {
    fn strip(o: &mut Value) {
        if let Some(m) = o.as_object_mut() {
            for k in ["module", "registered_name", "build_config"] {
                m.remove(k);
            }
        }
    }
    let mut config = model_config(model);
    strip(&mut config);
    if let Some(layers) = config["config"]["layers"].as_array_mut() {
        layers.iter_mut().for_each(strip);
    }
    config
}

/// Keras's legacy `training_config` (`None` for a model that is not compiled).
fn training_config(model: &Model) -> Option<Value> {
    model.compiled()?;
    let mut tc = compile_config(model);
    let obj = tc.as_object_mut()?;
    let opt = obj.remove("optimizer").unwrap_or(Value::Null);
    obj.insert(
        "optimizer_config".into(),
        json!({"class_name": opt["class_name"], "config": opt["config"]}),
    );
    for (k, v) in [
        ("run_eagerly", json!(false)),
        ("steps_per_execution", json!(1)),
        ("jit_compile", json!(false)),
    ] {
        obj.entry(k).or_insert(v);
    }
    Some(tc)
}

/// `save_weights_to_hdf5_group`: `layer_names`, one group per layer with its `weight_names`
/// and datasets, and the empty `top_level_model_weights`.
fn write_model_weights(model: &Model, g: &mut GroupBuilder) -> Result<()> {
    g.set_attr("backend", "tensorflow");
    g.set_attr("keras_version", KERAS_VERSION);
    let layers = model.layers();
    set_string_list(g, "layer_names", layers.iter().map(|l| l.name()).collect());
    for layer in &layers {
        let name = layer.name();
        let weights = layer.lock().weights();
        let named: Vec<(String, Tensor)> = unique_names(
            weights
                .iter()
                .map(|v| weight_path(&name, v.name()))
                .collect(),
        )
        .into_iter()
        .zip(weights.iter().map(|v| v.value()))
        .collect();
        let lg = g.group(&name)?;
        write_subset(lg, &named)?;
    }
    write_subset(g.group("top_level_model_weights")?, &[])
}

/// `save_optimizer_weights_to_hdf5_group`: the iteration count, a constant learning rate, then
/// the slots, in Keras's order, named `<optimizer>/iteration`, `<optimizer>/learning_rate` and
/// `<optimizer>/<variable>_<slot>`.
fn write_optimizer_weights(model: &Model, g: &mut GroupBuilder) -> Result<()> {
    let Some(c) = model.compiled() else {
        return Ok(());
    };
    let opt = &c.optimizer;
    let prefix = to_snake_case(opt.name());
    let mut named = vec![(
        format!("{prefix}/iteration"),
        Tensor::scalar(opt.iterations() as i64),
    )];
    if let LearningRate::Constant(lr) = opt.config().learning_rate {
        named.push((format!("{prefix}/learning_rate"), Tensor::scalar(lr as f32)));
    }
    for v in opt.variables() {
        named.push((
            format!("{prefix}/{}", v.name().replace('/', "_")),
            v.value(),
        ));
    }
    let names = unique_names(named.iter().map(|(n, _)| n.clone()).collect());
    let named: Vec<(String, Tensor)> = names
        .into_iter()
        .zip(named.into_iter().map(|(_, t)| t))
        .collect();
    write_subset(g, &named)
}

/// A layer weight's path in its group: the variable's name (`dense/kernel`), under the layer's
/// name when the variable's name does not start with it.
fn weight_path(layer: &str, var: &str) -> String {
    if var.starts_with(&format!("{layer}/")) {
        var.to_string()
    } else {
        format!("{layer}/{var}")
    }
}

/// Makes names unique by suffixing repeats with `_1`, `_2`, ... (a dataset path can hold only
/// one dataset).
fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .into_iter()
        .map(|n| {
            let mut candidate = n.clone();
            let mut i = 1;
            while !seen.insert(candidate.clone()) {
                candidate = format!("{n}_{i}");
                i += 1;
            }
            candidate
        })
        .collect()
}

/// `save_subset_weights_to_hdf5_group`: the `weight_names` attribute and one dataset per name.
fn write_subset(g: &mut GroupBuilder, named: &[(String, Tensor)]) -> Result<()> {
    set_string_list(
        g,
        "weight_names",
        named.iter().map(|(n, _)| n.clone()).collect(),
    );
    for (n, t) in named {
        g.create_dataset(n, t)?;
    }
    Ok(())
}

/// `save_attributes_to_hdf5_group`: a list of strings as one attribute, an empty list as an
/// empty float64 array (what `np.asarray([])` gives), a long list split into `name0`, `name1`, ...
/// in near-equal parts (`np.array_split`) so each part stays under h5py's header limit.
fn set_string_list(g: &mut GroupBuilder, name: &str, list: Vec<String>) {
    if list.is_empty() {
        g.set_attr(name, AttrValue::Tensor(ops::zeros(&[0], DType::F64)));
        return;
    }
    let longest = list.iter().map(String::len).max().unwrap_or(0).max(1);
    let mut chunks = 1;
    // numpy stores the list with the longest item's width; split until each part fits.
    while list.len().div_ceil(chunks) * longest > HDF5_OBJECT_HEADER_LIMIT && chunks < list.len() {
        chunks += 1;
    }
    if chunks == 1 {
        g.set_attr(name, AttrValue::Strings(list));
        return;
    }
    // np.array_split: the first `len % chunks` parts get one more item.
    let (base, extra) = (list.len() / chunks, list.len() % chunks);
    let mut rest = list.into_iter();
    for c in 0..chunks {
        let part: Vec<String> = rest.by_ref().take(base + usize::from(c < extra)).collect();
        g.set_attr(&format!("{name}{c}"), AttrValue::Strings(part));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list over h5py's header limit is split as `np.array_split` splits it, each part under
    /// the limit, and the parts join back in order.
    #[test]
    fn long_string_lists_split_under_the_header_limit() {
        let names: Vec<String> = (0..3001).map(|i| format!("{i:0>40}")).collect();
        let mut w = File::create("split.h5");
        set_string_list(w.root(), "layer_names", names.clone());
        let f = File::from_bytes("split.h5", w.to_bytes().unwrap()).unwrap();
        let root = f.root().unwrap();
        assert!(root.attr("layer_names").is_err());
        let mut joined = Vec::new();
        let mut sizes = Vec::new();
        for c in 0.. {
            let Ok(a) = root.attr(&format!("layer_names{c}")) else {
                break;
            };
            let part = a.as_strings().unwrap();
            assert!(part.len() * 40 <= HDF5_OBJECT_HEADER_LIMIT);
            sizes.push(part.len());
            joined.extend(part);
        }
        // 3001 × 40 bytes = 120,040 > 64,512: two parts, the first one longer (1501 + 1500).
        assert_eq!(sizes, vec![1501, 1500]);
        assert_eq!(joined, names);
    }
}
