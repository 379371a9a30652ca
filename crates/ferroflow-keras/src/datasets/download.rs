//! Downloads of missing datasets (cargo feature `download`; tests never use it).

use std::io::Read;
use std::path::Path;

use ferroflow_core::{Error, Result};

/// Downloads `url` to `dest`, atomically: into `dest.part`, then renamed. Refuses bodies larger
/// than `max_bytes`.
pub(crate) fn fetch(url: &str, dest: &Path, max_bytes: u64) -> Result<()> {
    let err = |m: String| Error::invalid("download", format!("{url}: {m}"));
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
    }
    let response = ureq::get(url).call().map_err(|e| err(e.to_string()))?;
    let mut body = Vec::new();
    response
        .into_reader()
        .take(max_bytes + 1)
        .read_to_end(&mut body)
        .map_err(|e| err(e.to_string()))?;
    if body.len() as u64 > max_bytes {
        return Err(err(format!("larger than {max_bytes} bytes")));
    }
    let part = dest.with_extension("part");
    std::fs::write(&part, &body).map_err(|e| err(format!("{}: {e}", part.display())))?;
    std::fs::rename(&part, dest).map_err(|e| err(format!("{}: {e}", dest.display())))
}
