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
/// Only a regular file (or nothing) is replaced: a path naming a directory, a device (`/dev/null`
/// as root would be renamed over), a FIFO or a socket is refused.
///
/// # Errors
/// The I/O error of creating, writing, syncing or renaming; `InvalidInput` for a path that
/// exists and is not a regular file.
pub fn write_atomic(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Ok(m) = std::fs::metadata(path)
        && !m.is_file()
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            if m.is_dir() {
                "it is a directory; name a file to write"
            } else {
                "it is not a regular file (a device, FIFO or socket) and would be replaced; name a regular file to write"
            },
        ));
    }
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

#[cfg(test)]
mod refuse_tests {
    use super::*;

    #[test]
    fn only_regular_files_are_replaced() {
        let dir = std::env::temp_dir().join(format!("rdeploy-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let e = write_atomic(&dir, |w| w.write_all(b"x")).err();
        assert!(e.is_some_and(|e| e.to_string().contains("directory")));
        // A character device (what `-o /dev/null` names): refused, left as it is.
        let e = write_atomic(Path::new("/dev/null"), |w| w.write_all(b"x")).err();
        assert!(e.is_some_and(|e| e.to_string().contains("not a regular file")));
        assert!(
            !std::fs::metadata("/dev/null")
                .map(|m| m.is_file())
                .unwrap_or(true)
        );
        let f = dir.join("f.bin");
        write_atomic(&f, |w| w.write_all(b"ok")).unwrap_or_default();
        assert_eq!(std::fs::read(&f).unwrap_or_default(), b"ok");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
