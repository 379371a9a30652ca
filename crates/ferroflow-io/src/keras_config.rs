//! Keras 3's `config.json`: a model as nested `{"module", "class_name", "config",
//! "registered_name"}` objects (`keras.saving.serialize_keras_object`), and back
//! (`deserialize_keras_object` / `Layer.from_config`) through a registry of every ferroflow
//! layer by Keras class name.
//!
//! Matched on files written by Keras 3.15: `Sequential` configs list their layers (an
//! `InputLayer` first); functional models (`class_name: "Functional"`) give each layer its
//! `inbound_nodes` (`{"args": [keras tensors], "kwargs": {}}`, each tensor naming its
//! `keras_history` `[layer, node_index, tensor_index]`) and `input_layers`/`output_layers` as
//! triples (a bare triple for a single one). Initializers and regularizers are nested objects;
//! the dtype is a `DTypePolicy` object. Keys a layer's `get_config` lacks are filled with Keras's
//! defaults for that class; keys we do not model (constraints, `quantization_config`) are written
//! as Keras's defaults and ignored when read.

use std::collections::HashMap;

use ferroflow_core::{DType, Error, Result};
use ferroflow_keras::initializers::{Distribution, FanMode, Initializer};
use ferroflow_keras::layers::*;
use ferroflow_keras::losses::{self, Loss};
use ferroflow_keras::models::{ModelStructure, TensorRef};
use ferroflow_keras::optimizers::{self, LearningRate, Optimizer};
use ferroflow_keras::regularizers::Regularizer;
use ferroflow_keras::{Model, Sequential};
use serde_json::{json, Map, Value};

const WHO: &str = "keras config";

fn bad(msg: impl Into<String>) -> Error {
    Error::invalid(WHO, msg.into())
}

// ---------------------------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------------------------

/// Keras's float32 `DTypePolicy` object.
pub fn dtype_policy(name: &str) -> Value {
    json!({"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": null})
}

/// A Keras initializer object (`{"module": "keras.initializers", "class_name": "GlorotUniform",
/// "config": {"seed": null, ...}, "registered_name": null}`).
pub fn initializer_config(init: &Initializer) -> Value {
    init.get_config()
}

/// A Keras regularizer object (`{"module": "keras.regularizers", "class_name": "L2", ...}`).
pub fn regularizer_config(r: &Regularizer) -> Value {
    r.get_config()
}

/// Keras's defaults for keys a layer's `get_config` may lack.
fn defaults(class: &str) -> Vec<(&'static str, Value)> {
    let glorot = initializer_config(&Initializer::glorot_uniform());
    let zeros = initializer_config(&Initializer::Zeros);
    let ones = initializer_config(&Initializer::Ones);
    let kernel = |extra: Vec<(&'static str, Value)>| {
        let mut v = vec![
            ("kernel_initializer", glorot.clone()),
            ("bias_initializer", zeros.clone()),
            ("kernel_regularizer", Value::Null),
            ("bias_regularizer", Value::Null),
            ("kernel_constraint", Value::Null),
            ("bias_constraint", Value::Null),
        ];
        v.extend(extra);
        v
    };
    match class {
        "Dense" => kernel(vec![("quantization_config", Value::Null)]),
        "Conv1D" | "Conv2D" => kernel(vec![
            ("data_format", json!("channels_last")),
            ("groups", json!(1)),
            ("activity_regularizer", Value::Null),
        ]),
        "Conv2DTranspose" => kernel(vec![
            ("data_format", json!("channels_last")),
            ("activity_regularizer", Value::Null),
        ]),
        "MaxPooling1D"
        | "AveragePooling1D"
        | "GlobalAveragePooling1D"
        | "GlobalAveragePooling2D"
        | "GlobalMaxPooling1D"
        | "GlobalMaxPooling2D" => {
            vec![("data_format", json!("channels_last"))]
        }
        "BatchNormalization" => vec![
            ("beta_initializer", zeros.clone()),
            ("gamma_initializer", ones.clone()),
            ("moving_mean_initializer", zeros),
            ("moving_variance_initializer", ones),
            ("beta_regularizer", Value::Null),
            ("gamma_regularizer", Value::Null),
            ("beta_constraint", Value::Null),
            ("gamma_constraint", Value::Null),
            ("synchronized", json!(false)),
        ],
        "Embedding" => vec![
            (
                "embeddings_initializer",
                initializer_config(&Initializer::random_uniform(-0.05, 0.05)),
            ),
            ("embeddings_regularizer", Value::Null),
            ("activity_regularizer", Value::Null),
            ("embeddings_constraint", Value::Null),
            ("quantization_config", Value::Null),
        ],
        "LSTM" | "GRU" | "SimpleRNN" => {
            let mut v = kernel(vec![
                (
                    "recurrent_initializer",
                    initializer_config(&Initializer::Orthogonal {
                        gain: 1.0,
                        seed: None,
                    }),
                ),
                ("recurrent_regularizer", Value::Null),
                ("activity_regularizer", Value::Null),
                ("recurrent_constraint", Value::Null),
                ("seed", Value::Null),
            ]);
            if class == "GRU" {
                v.push(("reset_after", json!(true)));
            }
            v
        }
        _ => Vec::new(),
    }
}

/// A layer's config in Keras's form: its `get_config()`, the dtype policy, Keras's defaults for
/// the keys it lacks, nested layers (`Bidirectional`, `TimeDistributed`) as full objects.
fn keras_layer_config(class: &str, mut config: Value) -> Value {
    let Some(obj) = config.as_object_mut() else {
        return config;
    };
    if class != "InputLayer" && !obj.contains_key("dtype") {
        obj.insert("dtype".into(), dtype_policy("float32"));
    }
    for (k, v) in defaults(class) {
        obj.entry(k).or_insert(v);
    }
    for (k, v) in obj.iter_mut() {
        if k.ends_with("_initializer") {
            if let Value::String(s) = v {
                if let Ok(init) = Initializer::get(s) {
                    *v = initializer_config(&init);
                }
            }
        }
    }
    for key in ["layer", "backward_layer"] {
        if let Some(inner) = obj.get(key).cloned() {
            if let (Some(c), Some(cfg)) = (inner["class_name"].as_str(), inner.get("config")) {
                obj.insert(key.into(), wrap_layer(c, cfg.clone(), None));
            }
        }
    }
    config
}

fn wrap_layer(class: &str, config: Value, build_shapes: Option<&[Vec<Option<usize>>]>) -> Value {
    let mut o = json!({
        "module": "keras.layers",
        "class_name": class,
        "config": keras_layer_config(class, config),
        "registered_name": null,
    });
    if let Some(s) = build_shapes {
        if class == "MultiHeadAttention" && s.len() >= 2 {
            // Keras builds it from `build(query_shape, value_shape, key_shape=None)`.
            let mut d = json!({"query_shape": s[0], "value_shape": s[1]});
            if let Some(k) = s.get(2) {
                d["key_shape"] = json!(k);
            }
            o["build_config"] = json!({ "shapes_dict": d });
        } else {
            let shape = if s.len() == 1 { json!(s[0]) } else { json!(s) };
            o["build_config"] = json!({ "input_shape": shape });
        }
    }
    o
}

/// A layer as Keras serializes it (with `build_config` when it has weights and is built).
pub fn layer_object(layer: &LayerHandle) -> Value {
    let l = layer.lock();
    let class = l.class_name().to_string();
    let shapes = if l.base().built && !l.weights().is_empty() {
        l.base().build_shapes.clone()
    } else {
        None
    };
    wrap_layer(&class, l.get_config(), shapes.as_deref())
}

fn keras_tensor(t: &TensorRef) -> Value {
    json!({"class_name": "__keras_tensor__", "config": {
        "shape": t.shape, "dtype": t.dtype.name(),
        "keras_history": [t.layer, t.node_index, t.tensor_index]}})
}

fn triples(ts: &[TensorRef]) -> Value {
    let one = |t: &TensorRef| json!([t.layer, t.node_index, t.tensor_index]);
    if ts.len() == 1 {
        one(&ts[0])
    } else {
        Value::Array(ts.iter().map(one).collect())
    }
}

/// The model's `config.json` object (without `compile_config`, see [`compile_config`]).
pub fn model_config(model: &Model) -> Value {
    match model.structure() {
        ModelStructure::Sequential {
            input_shape,
            input_dtype,
            layers,
        } => {
            let mut list = Vec::new();
            if let Some(s) = &input_shape {
                list.push(json!({"module": "keras.layers", "class_name": "InputLayer", "registered_name": null,
                    "config": {"batch_shape": s, "dtype": input_dtype.name(), "sparse": false, "ragged": false,
                               "name": "input_layer", "optional": false}}));
            }
            list.extend(layers.iter().map(layer_object));
            let mut config = json!({"name": model.name(), "trainable": true,
                "dtype": dtype_policy("float32"), "layers": list});
            let mut o =
                json!({"module": "keras", "class_name": "Sequential", "registered_name": null});
            if let Some(s) = &input_shape {
                config["build_input_shape"] = json!(s);
                o["build_config"] = json!({ "input_shape": s });
            }
            o["config"] = config;
            o
        }
        ModelStructure::Functional {
            inputs,
            outputs,
            nodes,
        } => {
            let mut layers: Vec<Value> = Vec::new();
            let mut index: HashMap<String, usize> = HashMap::new();
            for l in model.layers() {
                let mut o = layer_object(&l);
                let name = l.name();
                o["name"] = json!(name);
                o["inbound_nodes"] = json!([]);
                index.insert(name, layers.len());
                layers.push(o);
            }
            for n in &nodes {
                let args: Vec<Value> = n.inputs.iter().map(keras_tensor).collect();
                // Keras calls `MultiHeadAttention(query, value[, key])` with positional
                // tensors, the merge layers with one list.
                let positional = n.layer.class_name() == "MultiHeadAttention";
                let args = if args.len() == 1 || positional {
                    json!(args)
                } else {
                    json!([args])
                };
                if let Some(&i) = index.get(&n.layer.name()) {
                    if let Some(list) = layers[i]["inbound_nodes"].as_array_mut() {
                        list.push(json!({"args": args, "kwargs": {}}));
                    }
                }
            }
            json!({"module": "keras.src.models.functional", "class_name": "Functional",
                "config": {"name": model.name(), "trainable": true, "layers": layers,
                    "input_layers": triples(&inputs), "output_layers": triples(&outputs)},
                "registered_name": "Functional", "build_config": {"input_shape": null}})
        }
    }
}

/// Keras's `compile_config` (`{}` for a model that is not compiled): the optimizer object, the
/// loss and metric names.
pub fn compile_config(model: &Model) -> Value {
    let Some(c) = model.compiled() else {
        return json!({});
    };
    let opt = &c.optimizer;
    let cfg = opt.config();
    let lr = match &cfg.learning_rate {
        LearningRate::Constant(v) => json!(*v as f32 as f64),
        LearningRate::Schedule(s) => json!({"module": "keras.optimizers.schedules",
            "class_name": s.name(), "config": s.get_config(), "registered_name": null}),
    };
    let mut oc = json!({"name": ferroflow_keras::backend::to_snake_case(opt.name()), "learning_rate": lr,
        "weight_decay": cfg.weight_decay, "clipnorm": cfg.clipnorm, "global_clipnorm": cfg.global_clipnorm,
        "clipvalue": cfg.clipvalue, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null,
        "loss_scale_factor": null, "gradient_accumulation_steps": null});
    let extra = opt.hyperparameters();
    if let (Some(o), Some(e)) = (oc.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    let losses: Vec<Value> = c
        .losses
        .iter()
        .map(|l| {
            let extra = l.get_config();
            if extra.as_object().is_none_or(|o| o.values().all(|v| v == &json!(false))) {
                return json!(l.name());
            }
            // A configured loss object, as Keras writes it.
            let class: String = l
                .name()
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            let mut config = json!({"name": l.name(), "reduction": l.reduction().name()});
            if let (Some(o), Some(e)) = (config.as_object_mut(), extra.as_object()) {
                for (k, v) in e {
                    o.insert(k.clone(), v.clone());
                }
            }
            json!({"module": "keras.losses", "class_name": class, "config": config, "registered_name": null})
        })
        .collect();
    let loss = if losses.len() == 1 {
        losses[0].clone()
    } else {
        Value::Array(losses)
    };
    let metrics: Vec<String> = c
        .metrics
        .first()
        .map(|m| m.iter().map(|m| m.name().to_string()).collect())
        .unwrap_or_default();
    json!({"optimizer": {"module": "keras.optimizers", "class_name": opt.name(), "config": oc, "registered_name": null},
        "loss": loss, "loss_weights": null,
        "metrics": if metrics.is_empty() { Value::Null } else { json!(metrics) },
        "weighted_metrics": null, "run_eagerly": false, "steps_per_execution": 1, "jit_compile": false})
}

/// The whole `config.json` object: model config plus `compile_config`.
pub fn serialize_model(model: &Model) -> Value {
    let mut v = model_config(model);
    v["compile_config"] = compile_config(model);
    v
}

// ---------------------------------------------------------------------------------------------
// Deserialization
// ---------------------------------------------------------------------------------------------

/// Typed accessors on a layer's config, with errors naming the layer and the key.
struct Cfg<'a> {
    class: &'a str,
    c: &'a Map<String, Value>,
}

impl Cfg<'_> {
    fn err(&self, key: &str, want: &str) -> Error {
        bad(format!(
            "layer {:?} ({}): config key {key:?} must be {want}, got {}",
            self.name(),
            self.class,
            self.c
                .get(key)
                .map(|v| v.to_string())
                .unwrap_or("nothing".into())
        ))
    }
    fn name(&self) -> String {
        self.c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    }
    fn get(&self, key: &str) -> Option<&Value> {
        self.c.get(key).filter(|v| !v.is_null())
    }
    fn usize(&self, key: &str) -> Result<usize> {
        let v = self.get(key).ok_or_else(|| self.err(key, "an integer"))?;
        let v = match v {
            Value::Array(a) if a.len() == 1 => &a[0],
            v => v,
        };
        v.as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| self.err(key, "a non-negative integer"))
    }
    fn usize_or(&self, key: &str, d: usize) -> Result<usize> {
        if self.get(key).is_some() {
            self.usize(key)
        } else {
            Ok(d)
        }
    }
    fn f64_or(&self, key: &str, d: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(d),
            Some(v) => v.as_f64().ok_or_else(|| self.err(key, "a number")),
        }
    }
    fn bool_or(&self, key: &str, d: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(d),
            Some(v) => v.as_bool().ok_or_else(|| self.err(key, "a boolean")),
        }
    }
    fn str_or<'b>(&'b self, key: &str, d: &'b str) -> Result<&'b str> {
        match self.get(key) {
            None => Ok(d),
            Some(v) => v.as_str().ok_or_else(|| self.err(key, "a string")),
        }
    }
    fn ints(&self, key: &str) -> Result<Vec<i64>> {
        match self.get(key) {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_i64()
                        .ok_or_else(|| self.err(key, "a list of integers"))
                })
                .collect(),
            Some(v) => v
                .as_i64()
                .map(|x| vec![x])
                .ok_or_else(|| self.err(key, "an integer or a list of integers")),
            None => Err(self.err(key, "an integer or a list of integers")),
        }
    }
    fn pair(&self, key: &str) -> Result<(usize, usize)> {
        let v = self.ints(key)?;
        match v.as_slice() {
            [a] if *a >= 0 => Ok((*a as usize, *a as usize)),
            [a, b] if *a >= 0 && *b >= 0 => Ok((*a as usize, *b as usize)),
            _ => Err(self.err(key, "one or two non-negative integers")),
        }
    }
    fn pair_or(&self, key: &str, d: (usize, usize)) -> Result<(usize, usize)> {
        if self.get(key).is_some() {
            self.pair(key)
        } else {
            Ok(d)
        }
    }
    fn pads(&self, key: &str) -> Result<((usize, usize), (usize, usize))> {
        let v = self.get(key).ok_or_else(|| self.err(key, "padding"))?;
        if let Some(n) = v.as_u64() {
            let n = n as usize;
            return Ok(((n, n), (n, n)));
        }
        let a = v.as_array().ok_or_else(|| self.err(key, "padding"))?;
        let one = |x: &Value| -> Result<(usize, usize)> {
            if let Some(n) = x.as_u64() {
                return Ok((n as usize, n as usize));
            }
            match x
                .as_array()
                .map(|p| p.iter().map(Value::as_u64).collect::<Vec<_>>())
            {
                Some(p) if p.len() == 2 && p.iter().all(Option::is_some) => {
                    Ok((p[0].unwrap_or(0) as usize, p[1].unwrap_or(0) as usize))
                }
                _ => Err(self.err(key, "((top, bottom), (left, right))")),
            }
        };
        match a.as_slice() {
            [h, w] => Ok((one(h)?, one(w)?)),
            _ => Err(self.err(key, "two entries")),
        }
    }
    fn initializer(&self, key: &str) -> Result<Option<Initializer>> {
        self.get(key)
            .map(|v| {
                initializer_from(v).map_err(|e| bad(format!("layer {:?}: {key}: {e}", self.name())))
            })
            .transpose()
    }
    fn regularizer(&self, key: &str) -> Result<Option<Regularizer>> {
        self.get(key)
            .map(|v| {
                regularizer_from(v).map_err(|e| bad(format!("layer {:?}: {key}: {e}", self.name())))
            })
            .transpose()
    }
    fn activation(&self) -> Result<&str> {
        self.str_or("activation", "linear")
    }
}

/// An initializer from its Keras form: a name (`"glorot_uniform"`) or an object.
pub fn initializer_from(v: &Value) -> Result<Initializer> {
    if let Some(s) = v.as_str() {
        return Initializer::get(s);
    }
    let class = v["class_name"].as_str().ok_or_else(|| {
        bad(format!(
            "an initializer must be a name or an object, got {v}"
        ))
    })?;
    let c = &v["config"];
    let f = |k: &str, d: f64| c[k].as_f64().unwrap_or(d);
    let seed = c["seed"].as_u64();
    let mut init = match class {
        "Constant" => Initializer::Constant(f("value", 0.0)),
        "RandomNormal" => Initializer::random_normal(f("mean", 0.0), f("stddev", 0.05)),
        "RandomUniform" => Initializer::random_uniform(f("minval", -0.05), f("maxval", 0.05)),
        "TruncatedNormal" => Initializer::TruncatedNormal {
            mean: f("mean", 0.0),
            stddev: f("stddev", 0.05),
            seed: None,
        },
        "Orthogonal" => Initializer::Orthogonal {
            gain: f("gain", 1.0),
            seed: None,
        },
        "Identity" => Initializer::Identity {
            gain: f("gain", 1.0),
        },
        "VarianceScaling" => {
            let mode = match c["mode"].as_str().unwrap_or("fan_in") {
                "fan_in" => FanMode::FanIn,
                "fan_out" => FanMode::FanOut,
                "fan_avg" => FanMode::FanAvg,
                m => return Err(bad(format!("VarianceScaling: unknown mode {m:?}"))),
            };
            let distribution = match c["distribution"].as_str().unwrap_or("truncated_normal") {
                "truncated_normal" | "normal" => Distribution::TruncatedNormal,
                "untruncated_normal" => Distribution::UntruncatedNormal,
                "uniform" => Distribution::Uniform,
                d => return Err(bad(format!("VarianceScaling: unknown distribution {d:?}"))),
            };
            Initializer::variance_scaling(f("scale", 1.0), mode, distribution)
        }
        other => Initializer::get(other)?,
    };
    if let Some(s) = seed {
        init = init.with_seed(s);
    }
    Ok(init)
}

/// A regularizer from its Keras form: a name (`"l2"`) or an object.
pub fn regularizer_from(v: &Value) -> Result<Regularizer> {
    if let Some(s) = v.as_str() {
        return Regularizer::get(s);
    }
    let c = &v["config"];
    Ok(match v["class_name"].as_str().unwrap_or("") {
        "L1" => Regularizer::L1(c["l1"].as_f64().unwrap_or(0.01)),
        "L2" => Regularizer::L2(c["l2"].as_f64().unwrap_or(0.01)),
        "L1L2" => Regularizer::L1L2 {
            l1: c["l1"].as_f64().unwrap_or(0.0),
            l2: c["l2"].as_f64().unwrap_or(0.0),
        },
        other => return Err(bad(format!("unknown regularizer class {other:?}"))),
    })
}

/// The class names [`layer_from_config`] knows.
pub const LAYER_CLASSES: &[&str] = &[
    "Activation",
    "Add",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "BatchNormalization",
    "Bidirectional",
    "Concatenate",
    "Conv1D",
    "Conv2D",
    "Conv2DTranspose",
    "Cropping2D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRU",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "InputLayer",
    "LSTM",
    "LayerNormalization",
    "Masking",
    "MaxPooling1D",
    "MaxPooling2D",
    "Maximum",
    "Multiply",
    "Permute",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "SeparableConv2D",
    "SimpleRNN",
    "Subtract",
    "TimeDistributed",
    "UpSampling2D",
    "ZeroPadding2D",
];

/// Applies the arguments every kernel layer shares (`Dense`, the convolutions).
macro_rules! kernel_args {
    ($layer:expr, $c:expr, $kinit:ident, $kreg:ident) => {{
        let mut l = $layer
            .activation($c.activation()?)
            .use_bias($c.bool_or("use_bias", true)?);
        if let Some(i) = $c.initializer(stringify!($kinit))? {
            l = l.$kinit(i);
        }
        if let Some(i) = $c.initializer("bias_initializer")? {
            l = l.bias_initializer(i);
        }
        if let Some(r) = $c.regularizer(stringify!($kreg))? {
            l = l.$kreg(r);
        }
        if let Some(r) = $c.regularizer("bias_regularizer")? {
            l = l.bias_regularizer(r);
        }
        l
    }};
}

/// Applies the arguments of the recurrent layers.
macro_rules! recurrent {
    ($ty:ident, $c:expr) => {{
        let c = $c;
        let mut l = $ty::new(c.usize("units")?)
            .activation(c.str_or("activation", "tanh")?)
            .use_bias(c.bool_or("use_bias", true)?)
            .return_sequences(c.bool_or("return_sequences", false)?)
            .return_state(c.bool_or("return_state", false)?)
            .go_backwards(c.bool_or("go_backwards", false)?)
            .stateful(c.bool_or("stateful", false)?)
            .unroll(c.bool_or("unroll", false)?)
            .zero_output_for_mask(c.bool_or("zero_output_for_mask", false)?)
            .dropout(c.f64_or("dropout", 0.0)?)
            .recurrent_dropout(c.f64_or("recurrent_dropout", 0.0)?);
        if let Some(i) = c.initializer("kernel_initializer")? {
            l = l.kernel_initializer(i);
        }
        if let Some(i) = c.initializer("recurrent_initializer")? {
            l = l.recurrent_initializer(i);
        }
        if let Some(i) = c.initializer("bias_initializer")? {
            l = l.bias_initializer(i);
        }
        if let Some(s) = c.get("seed").and_then(Value::as_u64) {
            l = l.seed(s);
        }
        l.named(&c.name())
    }};
}

fn recurrent_from(class: &str, config: &Map<String, Value>) -> Result<RNN> {
    let c = Cfg { class, c: config };
    Ok(match class {
        "LSTM" => recurrent!(LSTM, &c)
            .recurrent_activation(c.str_or("recurrent_activation", "sigmoid")?)
            .unit_forget_bias(c.bool_or("unit_forget_bias", true)?)
            .into(),
        "GRU" => recurrent!(GRU, &c)
            .recurrent_activation(c.str_or("recurrent_activation", "sigmoid")?)
            .reset_after(c.bool_or("reset_after", true)?)
            .into(),
        "SimpleRNN" => recurrent!(SimpleRNN, &c).into(),
        other => {
            return Err(bad(format!(
                "Bidirectional wraps LSTM, GRU or SimpleRNN here, got {other:?}"
            )))
        }
    })
}

/// The class name and config of a nested serialized object (`{"class_name", "config"}`).
fn nested<'a>(v: &'a Value, what: &str) -> Result<(&'a str, &'a Map<String, Value>)> {
    let class = v["class_name"].as_str().ok_or_else(|| {
        bad(format!(
            "{what}: a serialized object needs `class_name`, got {v}"
        ))
    })?;
    let config = v["config"]
        .as_object()
        .ok_or_else(|| bad(format!("{what} ({class}): `config` must be an object")))?;
    Ok((class, config))
}

/// Keras's `Layer.from_config` for every layer ferroflow has, by class name. An unknown class
/// is an error naming it; `Lambda` (Python bytecode) is refused, as Keras's `safe_mode` does.
pub fn layer_from_config(class: &str, config: &Map<String, Value>) -> Result<LayerHandle> {
    let c = Cfg { class, c: config };
    let name = c.name();
    fn h(l: impl Layer) -> LayerHandle {
        LayerHandle::new(l)
    }
    let handle = match class {
        "Dense" => h(kernel_args!(Dense::new(c.usize("units")?), c, kernel_initializer, kernel_regularizer)),
        "Conv2D" => h(kernel_args!(
            Conv2D::new(c.usize("filters")?, c.pair("kernel_size")?)
                .strides(c.pair_or("strides", (1, 1))?)
                .padding(c.str_or("padding", "valid")?)
                .dilation_rate(c.pair_or("dilation_rate", (1, 1))?),
            c, kernel_initializer, kernel_regularizer)),
        "Conv1D" => h(kernel_args!(
            Conv1D::new(c.usize("filters")?, c.usize("kernel_size")?)
                .strides(c.usize_or("strides", 1)?)
                .padding(c.str_or("padding", "valid")?)
                .dilation_rate(c.usize_or("dilation_rate", 1)?),
            c, kernel_initializer, kernel_regularizer)),
        "Conv2DTranspose" => {
            let mut l = Conv2DTranspose::new(c.usize("filters")?, c.pair("kernel_size")?)
                .strides(c.pair_or("strides", (1, 1))?)
                .padding(c.str_or("padding", "valid")?)
                .dilation_rate(c.pair_or("dilation_rate", (1, 1))?);
            if c.get("output_padding").is_some() {
                l = l.output_padding(c.pair("output_padding")?);
            }
            h(kernel_args!(l, c, kernel_initializer, kernel_regularizer))
        }
        "DepthwiseConv2D" => h(kernel_args!(
            DepthwiseConv2D::new(c.pair("kernel_size")?)
                .depth_multiplier(c.usize_or("depth_multiplier", 1)?)
                .strides(c.pair_or("strides", (1, 1))?)
                .padding(c.str_or("padding", "valid")?)
                .dilation_rate(c.pair_or("dilation_rate", (1, 1))?),
            c, depthwise_initializer, depthwise_regularizer)),
        "SeparableConv2D" => h(kernel_args!(
            SeparableConv2D::new(c.usize("filters")?, c.pair("kernel_size")?)
                .depth_multiplier(c.usize_or("depth_multiplier", 1)?)
                .strides(c.pair_or("strides", (1, 1))?)
                .padding(c.str_or("padding", "valid")?)
                .dilation_rate(c.pair_or("dilation_rate", (1, 1))?),
            c, depthwise_initializer, depthwise_regularizer)),
        "MaxPooling2D" | "AveragePooling2D" => {
            let pool = c.pair_or("pool_size", (2, 2))?;
            let strides = c.pair_or("strides", pool)?;
            let padding = c.str_or("padding", "valid")?;
            if class == "MaxPooling2D" {
                h(MaxPooling2D::new(pool).strides(strides).padding(padding))
            } else {
                h(AveragePooling2D::new(pool).strides(strides).padding(padding))
            }
        }
        "MaxPooling1D" | "AveragePooling1D" => {
            let pool = c.usize_or("pool_size", 2)?;
            let strides = c.usize_or("strides", pool)?;
            let padding = c.str_or("padding", "valid")?;
            if class == "MaxPooling1D" {
                h(MaxPooling1D::new(pool).strides(strides).padding(padding))
            } else {
                h(AveragePooling1D::new(pool).strides(strides).padding(padding))
            }
        }
        "GlobalAveragePooling1D" => h(GlobalAveragePooling1D::new().keepdims(c.bool_or("keepdims", false)?)),
        "GlobalAveragePooling2D" => h(GlobalAveragePooling2D::new().keepdims(c.bool_or("keepdims", false)?)),
        "GlobalMaxPooling1D" => h(GlobalMaxPooling1D::new().keepdims(c.bool_or("keepdims", false)?)),
        "GlobalMaxPooling2D" => h(GlobalMaxPooling2D::new().keepdims(c.bool_or("keepdims", false)?)),
        "Flatten" => h(Flatten::new()),
        "Add" => h(Add::new()),
        "Average" => h(Average::new()),
        "Maximum" => h(Maximum::new()),
        "Multiply" => h(Multiply::new()),
        "Subtract" => h(Subtract::new()),
        "Concatenate" => h(Concatenate::new().axis(c.ints("axis").map(|a| a[0]).unwrap_or(-1) as isize)),
        "Dropout" => {
            let mut l = Dropout::new(c.f64_or("rate", 0.0)?);
            if let Some(s) = c.get("seed").and_then(Value::as_u64) {
                l = l.seed(s);
            }
            if let Some(Value::Array(a)) = c.get("noise_shape") {
                let ns: Vec<Option<usize>> = a.iter().map(|x| x.as_u64().map(|n| n as usize)).collect();
                l = l.noise_shape(&ns);
            }
            h(l)
        }
        "BatchNormalization" | "LayerNormalization" => {
            let axes = c.ints("axis").unwrap_or_else(|_| vec![-1]);
            if class == "BatchNormalization" {
                let mut l = BatchNormalization::new()
                    .axis(axes[0] as isize)
                    .momentum(c.f64_or("momentum", 0.99)?)
                    .epsilon(c.f64_or("epsilon", 1e-3)?)
                    .center(c.bool_or("center", true)?)
                    .scale(c.bool_or("scale", true)?);
                if let Some(i) = c.initializer("beta_initializer")? {
                    l = l.beta_initializer(i);
                }
                if let Some(i) = c.initializer("gamma_initializer")? {
                    l = l.gamma_initializer(i);
                }
                if let Some(i) = c.initializer("moving_mean_initializer")? {
                    l = l.moving_mean_initializer(i);
                }
                if let Some(i) = c.initializer("moving_variance_initializer")? {
                    l = l.moving_variance_initializer(i);
                }
                h(l)
            } else {
                let ax: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
                h(LayerNormalization::new()
                    .axes(&ax)
                    .epsilon(c.f64_or("epsilon", 1e-3)?)
                    .center(c.bool_or("center", true)?)
                    .scale(c.bool_or("scale", true)?))
            }
        }
        "Activation" => h(Activation::new(c.activation()?)),
        "Reshape" => {
            let t: Vec<isize> = c.ints("target_shape")?.iter().map(|&x| x as isize).collect();
            h(Reshape::new(&t))
        }
        "Permute" => {
            let d = c.ints("dims")?;
            if d.iter().any(|&x| x < 1) {
                return Err(c.err("dims", "positive axes"));
            }
            let d: Vec<usize> = d.iter().map(|&x| x as usize).collect();
            h(Permute::new(&d))
        }
        "RepeatVector" => h(RepeatVector::new(c.usize("n")?)),
        "Rescaling" => h(Rescaling::new(c.f64_or("scale", 1.0)?).offset(c.f64_or("offset", 0.0)?)),
        "ZeroPadding2D" => h(ZeroPadding2D::new(c.pads("padding")?)),
        "Cropping2D" => h(Cropping2D::new(c.pads("cropping")?)),
        "UpSampling2D" => h(UpSampling2D::new(c.pair_or("size", (2, 2))?)
            .interpolation(c.str_or("interpolation", "nearest")?)),
        "Embedding" => {
            let mut l = Embedding::new(c.usize("input_dim")?, c.usize("output_dim")?)
                .mask_zero(c.bool_or("mask_zero", false)?);
            if let Some(i) = c.initializer("embeddings_initializer")? {
                l = l.embeddings_initializer(i);
            }
            if let Some(r) = c.regularizer("embeddings_regularizer")? {
                l = l.embeddings_regularizer(r);
            }
            h(l)
        }
        "Masking" => h(Masking::new(c.f64_or("mask_value", 0.0)?)),
        "MultiHeadAttention" => {
            let key_dim = c.usize("key_dim")?;
            let mut l = MultiHeadAttention::new(c.usize("num_heads")?, key_dim)
                .value_dim(match c.get("value_dim") {
                    Some(Value::Null) | None => key_dim,
                    _ => c.usize("value_dim")?,
                })
                .dropout(c.f64_or("dropout", 0.0)?)
                .use_bias(c.bool_or("use_bias", true)?);
            match c.get("output_shape") {
                None | Some(Value::Null) => {}
                Some(Value::Array(a)) if a.len() == 1 => {
                    l = l.output_shape(a[0].as_u64().ok_or_else(|| c.err("output_shape", "an integer"))? as usize)
                }
                Some(_) => l = l.output_shape(c.usize("output_shape")?),
            }
            match c.get("attention_axes") {
                None | Some(Value::Null) => {}
                Some(_) => {
                    let axes = c.ints("attention_axes")?;
                    if axes != [1] && axes != [-2] {
                        return Err(c.err("attention_axes", "null or [1] (attention over the sequence axis; other axes are not supported)"));
                    }
                }
            }
            for key in ["use_gate", "sliding_window"] {
                if matches!(c.get(key), Some(v) if !v.is_null() && v != &Value::Bool(false)) {
                    return Err(c.err(key, "false/null (not supported)"));
                }
            }
            if let Some(i) = c.initializer("kernel_initializer")? {
                l = l.kernel_initializer(i);
            }
            if let Some(i) = c.initializer("bias_initializer")? {
                l = l.bias_initializer(i);
            }
            h(l)
        }
        "LSTM" => h(recurrent!(LSTM, &c)
            .recurrent_activation(c.str_or("recurrent_activation", "sigmoid")?)
            .unit_forget_bias(c.bool_or("unit_forget_bias", true)?)),
        "GRU" => h(recurrent!(GRU, &c)
            .recurrent_activation(c.str_or("recurrent_activation", "sigmoid")?)
            .reset_after(c.bool_or("reset_after", true)?)),
        "SimpleRNN" => h(recurrent!(SimpleRNN, &c)),
        "Bidirectional" => {
            let inner = c.get("layer").ok_or_else(|| c.err("layer", "a serialized recurrent layer"))?;
            let (ic, icfg) = nested(inner, &name)?;
            let mut l = Bidirectional::new(recurrent_from(ic, icfg)?);
            match c.get("merge_mode") {
                None => l = l.no_merge(),
                Some(m) => l = l.merge_mode(m.as_str().ok_or_else(|| c.err("merge_mode", "a string or null"))?),
            }
            h(l)
        }
        "TimeDistributed" => {
            let inner = c.get("layer").ok_or_else(|| c.err("layer", "a serialized layer"))?;
            let (ic, icfg) = nested(inner, &name)?;
            h(TimeDistributed::new(layer_from_config(ic, icfg)?))
        }
        "Lambda" => {
            return Err(bad(format!(
                "layer {name:?}: Lambda layers hold Python code and cannot be deserialized (Keras refuses them too with safe_mode=True); rebuild the model in Rust and load its weights"
            )))
        }
        other => {
            return Err(bad(format!(
                "unknown layer class {other:?} (layer {name:?}); known classes: {}",
                LAYER_CLASSES.join(", ")
            )))
        }
    };
    {
        let mut l = handle.lock();
        let b = l.base_mut();
        b.name = name;
        b.trainable = c.bool_or("trainable", true)?;
    }
    Ok(handle)
}

fn dtype_of(v: Option<&Value>) -> Result<DType> {
    let name = match v {
        None | Some(Value::Null) => return Ok(DType::F32),
        Some(Value::String(s)) => s.as_str(),
        Some(o) => o["config"]["name"].as_str().unwrap_or("float32"),
    };
    Ok(match name {
        "float32" => DType::F32,
        "float64" => DType::F64,
        "float16" => DType::F16,
        "bfloat16" => DType::BF16,
        "int32" => DType::I32,
        "int64" => DType::I64,
        "uint8" => DType::U8,
        "bool" => DType::Bool,
        other => return Err(bad(format!("unsupported input dtype {other:?}"))),
    })
}

/// An `InputLayer`'s batch shape and dtype (`batch_shape`, or Keras 2's `batch_input_shape`).
fn input_spec(config: &Map<String, Value>) -> Result<(Vec<Option<usize>>, DType)> {
    let s = config
        .get("batch_shape")
        .or_else(|| config.get("batch_input_shape"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad(format!(
                "InputLayer {:?} has no batch_shape",
                config.get("name")
            ))
        })?;
    let shape = s.iter().map(|d| d.as_u64().map(|n| n as usize)).collect();
    Ok((shape, dtype_of(config.get("dtype"))?))
}

/// Rebuilds a model from its `config.json` object (Sequential or Functional), uncompiled and
/// with freshly initialized weights.
pub fn model_from_config(v: &Value) -> Result<Model> {
    let (class, config) = nested(v, "model")?;
    let name = config.get("name").and_then(Value::as_str);
    let model = match class {
        "Sequential" => sequential_from(config)?,
        "Functional" | "Model" => functional_from(config)?,
        other => {
            return Err(bad(format!(
                "unknown model class {other:?} (expected Sequential or Functional)"
            )))
        }
    };
    Ok(match name {
        Some(n) => model.named(n),
        None => model,
    })
}

fn layers_list(config: &Map<String, Value>) -> Result<&Vec<Value>> {
    config
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the model config has no `layers` list"))
}

fn sequential_from(config: &Map<String, Value>) -> Result<Model> {
    let mut m = Sequential::new();
    let mut have_input = false;
    for (i, l) in layers_list(config)?.iter().enumerate() {
        let (class, lc) = nested(l, &format!("layers[{i}]"))?;
        if class == "InputLayer" {
            let (shape, dtype) = input_spec(lc)?;
            m.add(Input::with_shape(&shape[1..], dtype, None))?;
            have_input = true;
            continue;
        }
        // Keras 2 configs put `batch_input_shape` on the first layer instead of an InputLayer.
        if !have_input {
            if let Ok((shape, dtype)) = input_spec(lc) {
                m.add(Input::with_shape(&shape[1..], dtype, None))?;
                have_input = true;
            }
        }
        m.add(layer_from_config(class, lc)?)?;
    }
    if !have_input {
        if let Some(s) = config.get("build_input_shape").and_then(Value::as_array) {
            let shape: Vec<Option<usize>> =
                s.iter().map(|d| d.as_u64().map(|n| n as usize)).collect();
            if shape.len() > 1 && shape[1..].iter().all(Option::is_some) {
                let dims: Vec<usize> = shape[1..].iter().map(|d| d.unwrap_or(0)).collect();
                m.build(&dims)?;
            }
        }
    }
    Ok(m.into_model())
}

/// A `[layer, node, tensor]` triple (or Keras 2's 4-element form).
fn triple(v: &Value) -> Result<(String, usize, usize)> {
    let a = v
        .as_array()
        .ok_or_else(|| bad(format!("expected [layer, node, tensor], got {v}")))?;
    match a.as_slice() {
        [l, n, t, ..] => Ok((
            l.as_str()
                .ok_or_else(|| bad(format!("bad tensor reference {v}")))?
                .to_string(),
            n.as_u64().unwrap_or(0) as usize,
            t.as_u64().unwrap_or(0) as usize,
        )),
        _ => Err(bad(format!("expected [layer, node, tensor], got {v}"))),
    }
}

fn triples_from(v: &Value) -> Result<Vec<(String, usize, usize)>> {
    match v {
        Value::Array(a) if !a.is_empty() && a[0].is_string() => Ok(vec![triple(v)?]),
        Value::Array(a) => a.iter().map(triple).collect(),
        Value::Object(o) => o.values().map(triple).collect(),
        _ => Err(bad(format!("bad input_layers/output_layers {v}"))),
    }
}

/// The input references of one inbound node: Keras 3's `{"args": [...], "kwargs": {}}` with
/// `__keras_tensor__` objects, or Keras 2's `[[layer, node, tensor, kwargs], ...]`.
fn node_inputs(node: &Value) -> Result<Vec<(String, usize, usize)>> {
    fn collect(v: &Value, out: &mut Vec<(String, usize, usize)>) -> Result<()> {
        match v {
            Value::Object(o)
                if o.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") =>
            {
                out.push(triple(&v["config"]["keras_history"])?);
            }
            Value::Array(a) => {
                for x in a {
                    collect(x, out)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut out = Vec::new();
    if let Some(args) = node.get("args") {
        collect(args, &mut out)?;
    } else if let Some(a) = node.as_array() {
        for x in a {
            out.push(triple(x)?);
        }
    }
    Ok(out)
}

fn functional_from(config: &Map<String, Value>) -> Result<Model> {
    struct Entry {
        handle: Option<LayerHandle>,
        nodes: Vec<Vec<(String, usize, usize)>>,
        done: usize,
    }
    let mut entries: Vec<(String, Entry)> = Vec::new();
    let mut outputs: HashMap<(String, usize), Vec<KerasTensor>> = HashMap::new();
    for (i, l) in layers_list(config)?.iter().enumerate() {
        let (class, lc) = nested(l, &format!("layers[{i}]"))?;
        let name = l
            .get("name")
            .or_else(|| lc.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("layers[{i}] ({class}) has no name")))?
            .to_string();
        if class == "InputLayer" {
            let (shape, dtype) = input_spec(lc)?;
            outputs.insert(
                (name.clone(), 0),
                vec![Input::with_shape(&shape[1..], dtype, Some(&name))],
            );
            continue;
        }
        let nodes = l
            .get("inbound_nodes")
            .and_then(Value::as_array)
            .map(|n| n.iter().map(node_inputs).collect::<Result<Vec<_>>>())
            .transpose()?
            .unwrap_or_default();
        entries.push((
            name,
            Entry {
                handle: Some(layer_from_config(class, lc)?),
                nodes,
                done: 0,
            },
        ));
    }
    // Keras's `functional_from_config`: process nodes whose inputs exist until none is left.
    loop {
        let mut progress = false;
        let mut left = false;
        for (name, e) in entries.iter_mut() {
            while e.done < e.nodes.len() {
                let refs = &e.nodes[e.done];
                let args: Option<Vec<KerasTensor>> = refs
                    .iter()
                    .map(|(l, n, t)| {
                        outputs
                            .get(&(l.clone(), *n))
                            .and_then(|o| o.get(*t))
                            .cloned()
                    })
                    .collect();
                let Some(args) = args else {
                    left = true;
                    break;
                };
                let h = e
                    .handle
                    .as_ref()
                    .ok_or_else(|| bad("internal: missing layer"))?;
                let out = h.apply_multi(args)?;
                outputs.insert((name.clone(), e.done), out);
                e.done += 1;
                progress = true;
            }
        }
        if !left {
            break;
        }
        if !progress {
            let stuck: Vec<&str> = entries
                .iter()
                .filter(|(_, e)| e.done < e.nodes.len())
                .map(|(n, _)| n.as_str())
                .collect();
            return Err(bad(format!(
                "functional model config: the inputs of layers {} are never produced (graph disconnected)",
                stuck.join(", ")
            )));
        }
    }
    let lookup = |refs: Vec<(String, usize, usize)>| -> Result<Vec<KerasTensor>> {
        refs.into_iter()
            .map(|(l, n, t)| {
                outputs
                    .get(&(l.clone(), n))
                    .and_then(|o| o.get(t))
                    .cloned()
                    .ok_or_else(|| bad(format!("functional model config: no tensor {l}[{n}][{t}]")))
            })
            .collect()
    };
    let inputs =
        lookup(triples_from(config.get("input_layers").ok_or_else(
            || bad("functional config has no input_layers"),
        )?)?)?;
    let outs =
        lookup(triples_from(config.get("output_layers").ok_or_else(
            || bad("functional config has no output_layers"),
        )?)?)?;
    Model::new(inputs, outs)
}

/// An optimizer from its Keras object (`{"class_name": "Adam", "config": {...}}`; Keras 2's
/// `optimizer_config` has the same shape).
pub fn optimizer_from(v: &Value) -> Result<Box<dyn Optimizer>> {
    if let Some(s) = v.as_str() {
        return optimizers::get(s);
    }
    let (class, c) = nested(v, "optimizer")?;
    let f = |k: &str| c.get(k).and_then(Value::as_f64);
    let b = |k: &str| c.get(k).and_then(Value::as_bool);
    // Each Keras-named hyperparameter present in the config, through the builder of that name.
    macro_rules! build {
        ($ty:ident { $($num:ident),* } { $($flag:ident),* }) => {{
            let mut o = optimizers::$ty::new();
            $(if let Some(x) = f(stringify!($num)) { o = o.$num(x); })*
            $(if let Some(x) = b(stringify!($flag)) { o = o.$flag(x); })*
            Box::new(o)
        }};
    }
    let mut opt: Box<dyn Optimizer> = match class {
        "Adam" => build!(Adam { beta_1, beta_2, epsilon } { amsgrad }),
        "AdamW" => build!(AdamW { beta_1, beta_2, epsilon } { amsgrad }),
        "Adamax" => build!(Adamax { beta_1, beta_2, epsilon } {}),
        "Nadam" => build!(Nadam { beta_1, beta_2, epsilon } {}),
        "Lion" => build!(Lion { beta_1, beta_2 } {}),
        "SGD" => build!(SGD { momentum } { nesterov }),
        "RMSprop" => build!(RMSprop { rho, momentum, epsilon } { centered }),
        "Adagrad" => build!(Adagrad { initial_accumulator_value, epsilon } {}),
        "Adadelta" => build!(Adadelta { rho, epsilon } {}),
        other => optimizers::get(other)?,
    };
    let cfg = opt.config_mut();
    match c.get("learning_rate") {
        Some(Value::Object(_)) => {
            cfg.learning_rate = LearningRate::Schedule(schedule_from(&c["learning_rate"])?);
        }
        Some(v) => {
            if let Some(lr) = v.as_f64() {
                cfg.learning_rate = LearningRate::Constant(lr);
            }
        }
        None => {}
    }
    cfg.weight_decay = f("weight_decay");
    cfg.clipnorm = f("clipnorm");
    cfg.clipvalue = f("clipvalue");
    cfg.global_clipnorm = f("global_clipnorm");
    Ok(opt)
}

/// A learning-rate schedule from its Keras object (`keras.optimizers.schedules.*`).
pub fn schedule_from(v: &Value) -> Result<std::sync::Arc<dyn optimizers::LearningRateSchedule>> {
    use optimizers::schedules::*;
    let (class, c) = nested(v, "learning_rate schedule")?;
    let f = |k: &str, d: f64| c.get(k).and_then(Value::as_f64).unwrap_or(d);
    let need = |k: &str| {
        c.get(k).and_then(Value::as_f64).ok_or_else(|| {
            bad(format!(
                "schedule {class}: config key {k:?} must be a number"
            ))
        })
    };
    let b = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
    let nums = |k: &str| -> Result<Vec<f64>> {
        c.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .ok_or_else(|| bad(format!("schedule {class}: config key {k:?} must be a list")))
    };
    Ok(match class {
        "ExponentialDecay" => std::sync::Arc::new(
            ExponentialDecay::new(
                need("initial_learning_rate")?,
                need("decay_steps")?,
                need("decay_rate")?,
            )?
            .staircase(b("staircase")),
        ),
        "InverseTimeDecay" => std::sync::Arc::new(InverseTimeDecay {
            initial_learning_rate: need("initial_learning_rate")?,
            decay_steps: need("decay_steps")?,
            decay_rate: need("decay_rate")?,
            staircase: b("staircase"),
        }),
        "PiecewiseConstantDecay" => std::sync::Arc::new(PiecewiseConstantDecay::new(
            &nums("boundaries")?,
            &nums("values")?,
        )?),
        "PolynomialDecay" => std::sync::Arc::new(PolynomialDecay {
            initial_learning_rate: need("initial_learning_rate")?,
            decay_steps: need("decay_steps")?,
            end_learning_rate: f("end_learning_rate", 0.0001),
            power: f("power", 1.0),
            cycle: b("cycle"),
        }),
        "CosineDecay" => std::sync::Arc::new(CosineDecay {
            initial_learning_rate: need("initial_learning_rate")?,
            decay_steps: need("decay_steps")?,
            alpha: f("alpha", 0.0),
            warmup_target: c.get("warmup_target").and_then(Value::as_f64),
            warmup_steps: f("warmup_steps", 0.0),
        }),
        "CosineDecayRestarts" => std::sync::Arc::new(CosineDecayRestarts {
            initial_learning_rate: need("initial_learning_rate")?,
            first_decay_steps: need("first_decay_steps")?,
            t_mul: f("t_mul", 2.0),
            m_mul: f("m_mul", 1.0),
            alpha: f("alpha", 0.0),
        }),
        other => return Err(bad(format!("unknown learning-rate schedule {other:?}"))),
    })
}

fn loss_from(v: &Value) -> Result<Box<dyn Loss>> {
    match v {
        Value::String(s) => losses::get(s),
        Value::Object(_) => {
            let (class, c) = nested(v, "loss")?;
            let logits = c
                .get("from_logits")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Ok(match class {
                "SparseCategoricalCrossentropy" => {
                    Box::new(losses::SparseCategoricalCrossentropy::new().from_logits(logits))
                }
                "CategoricalCrossentropy" => {
                    Box::new(losses::CategoricalCrossentropy::new().from_logits(logits))
                }
                "BinaryCrossentropy" => {
                    Box::new(losses::BinaryCrossentropy::new().from_logits(logits))
                }
                other => {
                    if logits {
                        return Err(bad(format!(
                            "loss {other} with from_logits=True is not supported"
                        )));
                    }
                    losses::get(other)?
                }
            })
        }
        _ => Err(bad(format!("unsupported loss {v}"))),
    }
}

/// Compiles `model` from a Keras `compile_config` (or Keras 2's `training_config`); `{}` or
/// `null` leaves it uncompiled.
pub fn compile_from(model: &mut Model, cc: &Value) -> Result<()> {
    let Some(o) = cc.as_object() else {
        return Ok(());
    };
    let Some(opt) = o.get("optimizer").or_else(|| o.get("optimizer_config")) else {
        return Ok(());
    };
    let opt = optimizer_from(opt)?;
    let losses: Vec<Box<dyn Loss>> = match o.get("loss") {
        Some(Value::Array(a)) => a.iter().map(loss_from).collect::<Result<_>>()?,
        Some(Value::Object(m)) if !m.contains_key("class_name") => {
            m.values().map(loss_from).collect::<Result<_>>()?
        }
        Some(v) if !v.is_null() => vec![loss_from(v)?],
        _ => return Err(bad("compile_config has an optimizer but no loss")),
    };
    let metrics: Vec<String> = match o.get("metrics") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|m| match m {
                Value::String(s) => Some(s.clone()),
                Value::Object(_) => m["config"]["name"].as_str().map(str::to_string),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let metrics: Vec<&str> = metrics.iter().map(String::as_str).collect();
    model.compile(opt, losses, metrics)?;
    if let Some(Value::Array(w)) = o.get("loss_weights") {
        let w: Vec<f64> = w.iter().filter_map(Value::as_f64).collect();
        model.set_loss_weights(&w)?;
    }
    Ok(())
}
