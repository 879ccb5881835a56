//! Whole-file writes: a reader sees the old file or the complete new one, never a part.
//!
//! Its own module so that both tensor files (`io`) and ONNX models (`onnx`) can use it without
//! depending on each other.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes a file through a temporary sibling and a rename, so that the file is either the old
/// one or the whole new one.
///
/// # Errors
/// The I/O error of creating, writing, syncing or renaming.
pub fn write_atomic(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let f = File::create(&tmp)?;
        let mut w = BufWriter::new(f);
        body(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
