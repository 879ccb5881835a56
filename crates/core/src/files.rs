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

/// `MemAvailable` from `/proc/meminfo`, in bytes (None where the system does not say).
pub fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Checks that `dims` elements of `elem_size` bytes can be held: the product must not overflow
/// and must fit in the memory available. Returns the byte count.
///
/// # Errors
/// A message saying which limit the shape passes (for the caller to name the tensor or file).
pub fn checked_bytes(dims: &[usize], elem_size: usize) -> Result<usize, String> {
    let bytes = dims
        .iter()
        .try_fold(elem_size, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("shape {dims:?} has more elements than can be addressed"))?;
    if let Some(avail) = memory_available()
        && bytes as u64 > avail
    {
        return Err(format!(
            "shape {dims:?} needs {bytes} bytes, more than the {avail} bytes of memory available"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_shapes_are_refused() {
        assert!(
            checked_bytes(&[1 << 40, 1 << 40], 4)
                .unwrap_err()
                .contains("addressed")
        );
        assert!(checked_bytes(&[1 << 50], 8).is_err());
        assert_eq!(checked_bytes(&[2, 3], 4), Ok(24));
        assert_eq!(checked_bytes(&[], 4), Ok(4));
    }

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
