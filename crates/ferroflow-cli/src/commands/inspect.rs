//! `ferroflow inspect FILE`: what is inside an HDF5 file (`.h5`, `.weights.h5`, `.hdf5`) or a
//! `.keras` zip, without loading a model. For HDF5: every group and dataset, one per line
//! (`/layers/dense/vars/0: float32 [8, 16]`), datasets with their element type and shape,
//! attributes as `@name=value` (long values shortened). For a `.keras` zip: its members with
//! their sizes, the `metadata.json` text, then the tree of the `model.weights.h5` inside.

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
    /// An HDF5 file or a `.keras` zip.
    pub file: PathBuf,
}

/// Prints the listing.
pub fn run(args: Args) -> Result<(), String> {
    let path = &args.file;
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.starts_with(b"PK") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| format!("{}: not a valid zip: {e}", path.display()))?;
        println!("{}: zip archive ({} members)", path.display(), zip.len());
        let names: Vec<String> = zip.file_names().map(str::to_string).collect();
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
    } else {
        Err(format!(
            "{}: neither an HDF5 file nor a .keras zip (first bytes {:?})",
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
