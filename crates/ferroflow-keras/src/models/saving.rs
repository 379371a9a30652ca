//! `Model::save_weights` / `Model::load_weights` in the safetensors format.
//!
//! Every weight is stored under its variable name (`dense/kernel`, `dense/bias`, ...) with its
//! dtype and shape; the file's metadata records the `weights()` order. Writes are atomic: the
//! bytes go to a temporary file in the target's directory, which is fsynced and renamed over the
//! target, so a crash never leaves a half-written checkpoint under the real name.
//!
//! Only `.safetensors` (including `.weights.safetensors`) is handled here. Keras's own formats,
//! `.weights.h5` and `.keras`, are planned (issue 6) and will be dispatched from the same two
//! methods by extension; until then they are rejected with an error listing what is supported.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ferroflow_core::{ops, DType, Error, Result, Tensor};
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};

use super::Model;

/// The extensions `save_weights` / `load_weights` accept.
pub const WEIGHTS_EXTENSIONS: &[&str] = &[".safetensors", ".weights.safetensors"];

/// Metadata key holding the JSON list of weight names in `weights()` order.
const ORDER_KEY: &str = "ferroflow.weights_order";

/// Checks that `path` ends with a supported weights extension (`.safetensors`).
pub(crate) fn check_weights_path(who: &str, path: &str) -> Result<()> {
    if path.ends_with(".safetensors") {
        return Ok(());
    }
    Err(Error::invalid(
        who,
        format!(
            "invalid filepath extension for weights: {path:?}; supported extensions are {} \
             (Keras's .keras and .weights.h5 are written by ferroflow-io: ferroflow_io::save_model / save_weights, and ferroflow_io::register_savers() for ModelCheckpoint)",
            WEIGHTS_EXTENSIONS.join(", ")
        ),
    ))
}

fn io_err(who: &str, path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::invalid(who, format!("{what} {}: {e}", path.display()))
}

fn st_dtype(d: DType) -> StDtype {
    match d {
        DType::F32 => StDtype::F32,
        DType::F64 => StDtype::F64,
        DType::F16 => StDtype::F16,
        DType::BF16 => StDtype::BF16,
        DType::I32 => StDtype::I32,
        DType::I64 => StDtype::I64,
        DType::U8 => StDtype::U8,
        DType::Bool => StDtype::BOOL,
    }
}

fn from_st_dtype(d: StDtype) -> Option<DType> {
    Some(match d {
        StDtype::F32 => DType::F32,
        StDtype::F64 => DType::F64,
        StDtype::F16 => DType::F16,
        StDtype::BF16 => DType::BF16,
        StDtype::I32 => DType::I32,
        StDtype::I64 => DType::I64,
        StDtype::U8 => DType::U8,
        StDtype::BOOL => DType::Bool,
        _ => return None,
    })
}

/// The tensor's elements as little-endian bytes.
fn to_bytes(t: &Tensor) -> Vec<u8> {
    use ferroflow_core::storage::Storage;
    let t = t.contiguous();
    let start = t.layout().offset();
    let n = t.num_elements();
    match t.storage().as_ref() {
        Storage::F32(v) => v[start..start + n]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        Storage::F64(v) => v[start..start + n]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        Storage::F16(v) => v[start..start + n]
            .iter()
            .flat_map(|x| x.to_bits().to_le_bytes())
            .collect(),
        Storage::BF16(v) => v[start..start + n]
            .iter()
            .flat_map(|x| x.to_bits().to_le_bytes())
            .collect(),
        Storage::I32(v) => v[start..start + n]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        Storage::I64(v) => v[start..start + n]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        Storage::U8(v) => v[start..start + n].to_vec(),
        Storage::Bool(v) => v[start..start + n].iter().map(|&b| b as u8).collect(),
    }
}

/// IEEE half-precision bits to f64.
fn f16_bits_to_f64(b: u16) -> f64 {
    let sign = if b & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((b >> 10) & 0x1f) as i32;
    let man = (b & 0x3ff) as f64;
    sign * match exp {
        0 => man * 2f64.powi(-24),
        31 if man == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + man / 1024.0) * 2f64.powi(e - 15),
    }
}

/// A tensor from a safetensors view (the library has checked the byte count).
fn from_view(name: &str, v: &TensorView<'_>) -> Result<Tensor> {
    let dtype = from_st_dtype(v.dtype()).ok_or_else(|| {
        Error::invalid(
            "load_weights",
            format!("weight {name:?} has an unsupported dtype {:?}", v.dtype()),
        )
    })?;
    let shape = v.shape().to_vec();
    let b = v.data();
    macro_rules! le {
        ($t:ty, $n:expr) => {
            b.chunks_exact($n)
                .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; $n])))
                .collect::<Vec<$t>>()
        };
    }
    match dtype {
        DType::F32 => Tensor::from_vec(le!(f32, 4), &shape),
        DType::F64 => Tensor::from_vec(le!(f64, 8), &shape),
        DType::I32 => Tensor::from_vec(le!(i32, 4), &shape),
        DType::I64 => Tensor::from_vec(le!(i64, 8), &shape),
        DType::U8 => Tensor::from_vec(b.to_vec(), &shape),
        DType::Bool => Tensor::from_vec(b.iter().map(|&x| x != 0).collect::<Vec<bool>>(), &shape),
        DType::F16 => {
            let v: Vec<f64> = le!(u16, 2).into_iter().map(f16_bits_to_f64).collect();
            Tensor::from_f64_slice(DType::F16, &v, &shape)
        }
        DType::BF16 => {
            let v: Vec<f64> = le!(u16, 2)
                .into_iter()
                .map(|x| f32::from_bits((x as u32) << 16) as f64)
                .collect();
            Tensor::from_f64_slice(DType::BF16, &v, &shape)
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// then (best effort) fsync of the directory.
fn write_atomic(who: &str, path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "weights".into());
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.tmp.{}.{n}", std::process::id()));
    let result = (|| {
        let mut f =
            std::fs::File::create(&tmp).map_err(|e| io_err(who, &tmp, "cannot create", e))?;
        f.write_all(bytes)
            .map_err(|e| io_err(who, &tmp, "cannot write", e))?;
        f.sync_all()
            .map_err(|e| io_err(who, &tmp, "cannot sync", e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io_err(who, path, "cannot rename onto", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Model {
    /// `model.save_weights(path)`: every weight (`weights()`), by variable name, in a
    /// safetensors file written atomically. `path` must end in `.safetensors` (e.g.
    /// `model.weights.safetensors`); other extensions are an error naming the supported ones
    /// (Keras's `.weights.h5` is planned). Weight names must be unique.
    ///
    /// ```
    /// use ferroflow_keras::prelude::*;
    /// use ferroflow_keras::layers::Dense;
    /// let mut model = Sequential::new();
    /// model.add(Dense::new(2).input_shape(&[3]))?;
    /// let path = std::env::temp_dir().join(format!("ff_doc_{}.weights.safetensors", std::process::id()));
    /// model.save_weights(&path)?;
    /// let before = model.get_weights();
    /// model.set_weights(&[ferroflow_core::ops::zeros(&[3, 2], ferroflow_core::DType::F32),
    ///                     ferroflow_core::ops::zeros(&[2], ferroflow_core::DType::F32)])?;
    /// model.load_weights(&path)?;
    /// assert_eq!(model.get_weights()[0].to_vec::<f32>()?, before[0].to_vec::<f32>()?);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let who = "save_weights";
        check_weights_path(who, &path.to_string_lossy())?;
        let weights = self.weights();
        let mut seen = std::collections::HashSet::new();
        let mut order = Vec::new();
        let mut entries = Vec::new();
        for w in &weights {
            let name = w.name().to_string();
            if !seen.insert(name.clone()) {
                return Err(Error::invalid(
                    who,
                    format!("model {:?} has two weights named {name:?}; weight names must be unique to be saved by name (rename a layer)", self.name),
                ));
            }
            let t = w.value();
            entries.push((name.clone(), t.dtype(), t.shape().to_vec(), to_bytes(&t)));
            order.push(name);
        }
        let views = entries
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(st_dtype(*dtype), shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::invalid(who, format!("weight {name:?}: {e:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut meta = HashMap::new();
        meta.insert(
            ORDER_KEY.to_string(),
            serde_json::to_string(&order).map_err(|e| Error::invalid(who, e.to_string()))?,
        );
        meta.insert("format".to_string(), "ferroflow-keras".to_string());
        let mut bytes = safetensors::serialize(views, &Some(meta))
            .map_err(|e| Error::invalid(who, format!("cannot serialize: {e:?}")))?;
        canonical_header(&mut bytes);
        write_atomic(who, path, &bytes)
    }

    /// `model.load_weights(path)`: reads a file written by [`Model::save_weights`]. Weights are
    /// matched by variable name; when the names differ (a model rebuilt with other layer names)
    /// but the file has exactly as many weights, in `weights()` order, with the same shapes, they
    /// are matched by position — as Keras 3 matches weights by the model's structure. Nothing is
    /// assigned unless every weight matches: a missing, extra or mis-shaped weight, or a
    /// truncated or corrupt file, is an error (never a panic). Values of another dtype are cast.
    pub fn load_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let who = "load_weights";
        check_weights_path(who, &path.to_string_lossy())?;
        let bytes = std::fs::read(path).map_err(|e| io_err(who, path, "cannot read", e))?;
        let corrupt = |e: safetensors::SafeTensorError| {
            Error::invalid(
                who,
                format!(
                    "{} is not a valid safetensors file (truncated or corrupt): {e:?}",
                    path.display()
                ),
            )
        };
        let st = SafeTensors::deserialize(&bytes).map_err(corrupt)?;
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(corrupt)?;
        let file_order: Option<Vec<String>> = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(ORDER_KEY))
            .and_then(|s| serde_json::from_str(s).ok());
        let weights = self.weights();
        let file_names: Vec<String> = match &file_order {
            Some(o) => o.clone(),
            None => {
                let mut n: Vec<String> = st.names().into_iter().cloned().collect();
                n.sort();
                n
            }
        };
        let model_names: Vec<&str> = weights.iter().map(|w| w.name()).collect();
        let missing: Vec<&str> = model_names
            .iter()
            .copied()
            .filter(|n| !file_names.iter().any(|f| f == n))
            .collect();
        let extra: Vec<&String> = file_names
            .iter()
            .filter(|f| !model_names.contains(&f.as_str()))
            .collect();
        // Pick the file entry for each model weight.
        let sources: Vec<String> = if missing.is_empty() && extra.is_empty() {
            model_names.iter().map(|s| s.to_string()).collect()
        } else if file_order.is_some()
            && file_names.len() == weights.len()
            && weights.iter().zip(&file_names).all(|(w, f)| {
                st.tensor(f)
                    .map(|v| v.shape() == w.shape().as_slice())
                    .unwrap_or(false)
            })
        {
            file_names.clone()
        } else {
            let mut msg = format!(
                "{} does not match model {:?} ({} weights in the file, {} in the model)",
                path.display(),
                self.name,
                file_names.len(),
                weights.len()
            );
            if !missing.is_empty() {
                msg.push_str(&format!("; missing from the file: {}", missing.join(", ")));
            }
            if !extra.is_empty() {
                let e: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
                msg.push_str(&format!("; not in the model: {}", e.join(", ")));
            }
            if weights.is_empty() {
                msg.push_str("; the model has no weights yet: build it first (give an input_shape or call it)");
            }
            return Err(Error::invalid(who, msg));
        };
        let mut values = Vec::with_capacity(weights.len());
        for (w, src) in weights.iter().zip(&sources) {
            let view = st.tensor(src).map_err(corrupt)?;
            if view.shape() != w.shape().as_slice() {
                return Err(Error::shape(
                    who,
                    format!(
                        "weight {:?} has shape {:?} in the model but {:?} in the file",
                        w.name(),
                        w.shape(),
                        view.shape()
                    ),
                    &[&w.shape(), view.shape()],
                ));
            }
            let t = from_view(src, &view)?;
            let t = if t.dtype() == w.dtype() {
                t
            } else {
                ops::cast(&t, w.dtype())?
            };
            values.push(t);
        }
        for (w, v) in weights.iter().zip(&values) {
            w.assign(v)?;
        }
        Ok(())
    }
}

/// Rewrites a safetensors header with its JSON keys sorted, so the same weights give the same
/// bytes (the `safetensors` crate writes the metadata from a `HashMap`, in no fixed order). The
/// compact JSON of the same keys and values has the same length, so offsets are unchanged; a
/// header that would not keep its length is left as it is.
fn canonical_header(bytes: &mut [u8]) {
    let Some(len) = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
    else {
        return;
    };
    let Some(header) = bytes.get(8..8 + len) else {
        return;
    };
    let text = String::from_utf8_lossy(header);
    let trimmed = text.trim_end();
    let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed) else {
        return;
    };
    let Ok(sorted) = serde_json::to_string(&sort_keys(value)) else {
        return;
    };
    if sorted.len() == trimmed.len() {
        bytes[8..8 + sorted.len()].copy_from_slice(sorted.as_bytes());
    }
}

fn sort_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let sorted: std::collections::BTreeMap<String, serde_json::Value> =
                m.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        other => other,
    }
}
