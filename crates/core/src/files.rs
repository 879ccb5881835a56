//! Checks on files named by users before reading them whole.

use std::path::Path;

/// The size of `path` when it is a regular file (links followed), else why it cannot be read
/// as one: missing, a directory, or a device, pipe or socket (`/dev/zero` would never end).
///
/// # Errors
/// A short message for the caller to put after the path.
pub fn regular_file_size(path: &Path) -> Result<u64, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(m.len()),
        Ok(m) if m.is_dir() => Err("is a directory, not a file".into()),
        Ok(_) => Err("is not a regular file (a device, pipe or socket); give a file".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("file not found; check the path".into())
        }
        Err(e) => Err(format!("cannot read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_pass() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(regular_file_size(&f), Ok(3));
        assert!(
            regular_file_size(dir.path())
                .unwrap_err()
                .contains("directory")
        );
        assert!(
            regular_file_size(&dir.path().join("b"))
                .unwrap_err()
                .contains("not found")
        );
        if Path::new("/dev/zero").exists() {
            assert!(
                regular_file_size(Path::new("/dev/zero"))
                    .unwrap_err()
                    .contains("device")
            );
        }
    }
}
