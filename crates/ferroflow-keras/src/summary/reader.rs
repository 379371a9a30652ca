//! [`read_events`]: the events of one event file, every record's CRCs checked.

use std::path::Path;

use ferroflow_core::{Error, Result};
use ferroflow_data::io::TfRecordReader;

use super::proto::Event;

/// Reads every event of a TensorBoard event file (ours or TensorFlow's). Both masked CRC-32Cs of
/// every record are checked; a bad CRC, a truncated record or a malformed `Event` is an error
/// naming the file and the record's byte offset.
///
/// ```no_run
/// use ferroflow_keras::summary::{read_events, EventKind};
/// for ev in read_events("logs/train/events.out.tfevents.1795365454.vm.11450.0.v2")? {
///     if let EventKind::Summary(values) = &ev.kind {
///         for v in values {
///             println!("{} step {}: {:?}", v.tag, ev.step, v.scalar());
///         }
///     }
/// }
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn read_events(path: impl AsRef<Path>) -> Result<Vec<Event>> {
    let path = path.as_ref();
    let mut offset = 0u64;
    let mut events = Vec::new();
    for rec in TfRecordReader::open(path)? {
        let rec = rec?;
        let what = format!("{}: record at byte {offset}", path.display());
        events.push(Event::decode(&rec, &what)?);
        offset += rec.len() as u64 + 16;
    }
    Ok(events)
}

/// The event files (names holding `tfevents`, as TensorBoard looks for them) directly in `dir`,
/// sorted by name (TF's names sort by creation time).
pub fn event_files(dir: impl AsRef<Path>) -> Result<Vec<std::path::PathBuf>> {
    let dir = dir.as_ref();
    let rd = std::fs::read_dir(dir).map_err(|e| {
        Error::invalid("event_files", format!("cannot list {}: {e}", dir.display()))
    })?;
    let mut files: Vec<_> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains("tfevents"))
        })
        .collect();
    files.sort();
    Ok(files)
}
