//! `ferroflow inspect FILE`: what is inside an HDF5 file (`.h5`, `.weights.h5`, `.hdf5`) or a
//! `.keras` zip, without loading a model. For HDF5: every group and dataset, one per line
//! (`/layers/dense/vars/0: float32 [8, 16]`), datasets with their element type and shape,
//! attributes as `@name=value` (long values shortened). For a `.keras` zip: its members with
//! their sizes, the `metadata.json` text, then the tree of the `model.weights.h5` inside. For a
//! NumPy `.npz` (a zip of `.npy` members) and a `.safetensors` file: each array's name, element
//! type and shape, in the same `name: float32 [8, 16]` form.

use std::io::Read;
use std::path::PathBuf;

use ferroflow_io::hdf5::File;

use super::common::msg;

/// `ferroflow inspect`'s arguments.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  ferroflow inspect model.keras\n  ferroflow inspect model.weights.h5"
)]
pub struct Args {
    /// An HDF5 file, a `.keras` zip, a `.npz` or a `.safetensors` file.
    pub file: PathBuf,
}

/// Prints the listing.
pub fn run(args: Args) -> Result<(), String> {
    let path = &args.file;
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.starts_with(b"PK") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| format!("{}: not a valid zip: {e}", path.display()))?;
        let names: Vec<String> = zip.file_names().map(str::to_string).collect();
        if !names.is_empty() && names.iter().all(|n| n.ends_with(".npy")) {
            return npz(&mut zip, path, &names);
        }
        println!("{}: zip archive ({} members)", path.display(), zip.len());
        for i in 0..zip.len() {
            let f = zip
                .by_index(i)
                .map_err(|e| format!("{}: member {i}: {e}", path.display()))?;
            println!("  {} ({} bytes)", f.name(), f.size());
        }
        if names.iter().any(|n| n == "metadata.json") {
            let text = member(&mut zip, path, "metadata.json")?;
            println!("metadata.json: {}", String::from_utf8_lossy(&text).trim());
        }
        if !names.iter().any(|n| n == "model.weights.h5") {
            return Err(format!(
                "{}: no model.weights.h5 member: not a .keras file",
                path.display()
            ));
        }
        let h5 = member(&mut zip, path, "model.weights.h5")?;
        let f =
            File::from_bytes(&format!("{}/model.weights.h5", path.display()), h5).map_err(msg)?;
        println!("model.weights.h5:");
        print!("{}", f.tree().map_err(msg)?);
        Ok(())
    } else if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        let f = File::from_bytes(&path.display().to_string(), bytes).map_err(msg)?;
        println!(
            "{}: HDF5 (superblock version {})",
            path.display(),
            f.superblock_version()
        );
        print!("{}", f.tree().map_err(msg)?);
        Ok(())
    } else if path.extension().is_some_and(|e| e == "safetensors") {
        safetensors(&bytes, path)
    } else {
        Err(format!(
            "{}: neither an HDF5 file, a .keras or .npz zip, nor a .safetensors file (first bytes {:?})",
            path.display(),
            &bytes[..bytes.len().min(8)]
        ))
    }
}

fn member(
    zip: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>,
    path: &std::path::Path,
    name: &str,
) -> Result<Vec<u8>, String> {
    let mut f = zip
        .by_name(name)
        .map_err(|e| format!("{}: {name}: {e}", path.display()))?;
    if f.size() > 4 << 30 {
        return Err(format!("{}: {name}: member too large", path.display()));
    }
    let mut out = Vec::new();
    f.read_to_end(&mut out)
        .map_err(|e| format!("{}: {name}: {e}", path.display()))?;
    Ok(out)
}

/// Lists the arrays of a `.npz`: `name: dtype [shape]`, in the archive's order.
fn npz(
    zip: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>,
    path: &std::path::Path,
    names: &[String],
) -> Result<(), String> {
    println!(
        "{}: NumPy .npz archive ({} arrays)",
        path.display(),
        names.len()
    );
    for name in names {
        let bytes = member(zip, path, name)?;
        let label = format!("{}: {name}", path.display());
        let t = ferroflow_data::io::npy::npy_from_bytes(&bytes, &label).map_err(msg)?;
        let key = name.strip_suffix(".npy").unwrap_or(name);
        println!("  {key}: {} {:?}", t.dtype(), t.shape());
    }
    Ok(())
}

/// Lists the tensors of a `.safetensors` file (`name: dtype [shape]`, sorted by name) and its
/// `__metadata__`, read from the header only.
fn safetensors(bytes: &[u8], path: &std::path::Path) -> Result<(), String> {
    let (_, meta) = ::safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| format!("{}: not a valid .safetensors file: {e}", path.display()))?;
    let mut tensors: Vec<_> = meta.tensors().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    println!(
        "{}: safetensors ({} tensors)",
        path.display(),
        tensors.len()
    );
    if let Some(m) = meta.metadata() {
        let mut entries: Vec<_> = m.iter().collect();
        entries.sort();
        for (k, v) in entries {
            println!("  @{k}={v}");
        }
    }
    for (name, info) in tensors {
        println!("  {name}: {} {:?}", dtype_name(info.dtype), info.shape);
    }
    Ok(())
}

/// NumPy's name for a safetensors element type (`F32` → `float32`).
fn dtype_name(d: ::safetensors::Dtype) -> String {
    use ::safetensors::Dtype::*;
    match d {
        BOOL => "bool".into(),
        U8 => "uint8".into(),
        I8 => "int8".into(),
        I16 => "int16".into(),
        U16 => "uint16".into(),
        F16 => "float16".into(),
        BF16 => "bfloat16".into(),
        I32 => "int32".into(),
        U32 => "uint32".into(),
        F32 => "float32".into(),
        F64 => "float64".into(),
        I64 => "int64".into(),
        U64 => "uint64".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}
