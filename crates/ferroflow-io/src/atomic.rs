//! Atomic file writes: a temporary file in the target's directory, fsync, rename, then (best
//! effort) fsync of the directory — a crash mid-save never leaves a half-written file under the
//! real name, and the previous file survives until the rename.

use std::io::Write;
use std::path::{Path, PathBuf};

use ferroflow_core::{Error, Result};

/// Writes `bytes` to `path` atomically; `who` names the caller in errors.
pub fn write_atomic(who: &str, path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        Error::invalid(who, format!("{what} {}: {e}", p.display()))
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.tmp.{}.{n}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| io("cannot write", &tmp, e))?;
        f.sync_all().map_err(|e| io("cannot sync", &tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io("cannot rename onto", path, e))
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
