//! Work directories and their manifest (`deploy.json`), which makes them loadable and
//! trustworthy.

use rdeploy_core::{Device, Error, Result, TensorInfo};
use rdeploy_onnx::PassRecord;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The manifest file name in a work dir.
pub const MANIFEST: &str = "deploy.json";
/// The manifest format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A file of a work dir, with its checksum.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the work dir.
    pub path: String,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// `deploy.json`: everything needed to load and trust a work dir.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version.
    pub format_version: u32,
    /// The rdeploy version that wrote it.
    pub rdeploy_version: String,
    /// The backend's registered name.
    pub backend: String,
    /// The backend engine's version at deploy time.
    pub backend_version: String,
    /// The device converted for.
    pub device: Device,
    /// The IR file (ONNX after the IR stage).
    pub ir_file: FileEntry,
    /// The backend's files, in the order `build_wrapper` takes them.
    pub backend_files: Vec<FileEntry>,
    /// The model's inputs after the IR stage.
    pub inputs: Vec<TensorInfo>,
    /// The model's outputs after the IR stage.
    pub outputs: Vec<TensorInfo>,
    /// The source model as given to `deploy`.
    pub source_model: SourceModel,
    /// The config file given to `deploy`.
    pub config_file: String,
    /// The merged config.
    pub config: serde_json::Value,
    /// A concrete shape per input for generated inputs: the model's own dims where the source
    /// model fixed them, else 1.
    #[serde(default)]
    pub example_shapes: std::collections::BTreeMap<String, Vec<usize>>,
    /// Notes from the IR stage and the backend.
    pub notes: Vec<String>,
    /// Every graph pass run on the way to the backend's files, in order.
    #[serde(default)]
    pub passes: Vec<PassRecord>,
    /// Hash of everything that determines the work dir's content; equal keys mean `deploy`
    /// can reuse it.
    pub cache_key: String,
}

/// The model `deploy` started from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceModel {
    /// Its path as given.
    pub path: String,
    /// Hex SHA-256 of its bytes (external data included, once loaded).
    pub sha256: String,
    /// ONNX opset (default domain).
    pub opset: Option<i64>,
    /// Producer name and version.
    pub producer: String,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 and size of a file, streamed.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read", path, e))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((hex(&h.finalize()), n))
}

/// The manifest of a work dir whose cache key matches and whose files are intact.
pub(crate) fn cached(work_dir: &Path, key: &str) -> Option<Manifest> {
    let m = read_manifest(work_dir).ok()?;
    if m.cache_key != key {
        return None;
    }
    let intact = std::iter::once(&m.ir_file)
        .chain(&m.backend_files)
        .all(|f| {
            let p = work_dir.join(&f.path);
            rdeploy_core::files::regular_file_size(&p) == Ok(f.bytes)
                && hash_file(&p)
                    .map(|(sha, n)| sha == f.sha256 && n == f.bytes)
                    .unwrap_or(false)
        });
    intact.then_some(m)
}

/// Reads and checks a work dir's manifest.
///
/// # Errors
/// [`Error::WorkDir`] when the dir or manifest is missing, unreadable, from a newer format, or
/// lists backend files that are missing or whose size changed.
pub fn read_manifest(work_dir: &Path) -> Result<Manifest> {
    let wd_err = |msg: String| Error::WorkDir {
        path: work_dir.to_path_buf(),
        msg,
    };
    if !work_dir.is_dir() {
        return Err(wd_err(
            "not found or not a directory; pass the --work-dir of a finished `rdeploy deploy`"
                .into(),
        ));
    }
    let p = work_dir.join(MANIFEST);
    if p.exists()
        && let Err(why) = rdeploy_core::files::regular_file_size(&p)
    {
        return Err(wd_err(format!("{MANIFEST} {why}")));
    }
    let text = std::fs::read_to_string(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            wd_err(format!(
                "has no {MANIFEST}: it is not a finished deploy; run `rdeploy deploy` into it"
            ))
        } else {
            wd_err(format!("cannot read {MANIFEST}: {e}"))
        }
    })?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| {
        wd_err(format!(
            "{MANIFEST} is corrupt ({e}); deploy again with --force"
        ))
    })?;
    if m.format_version > FORMAT_VERSION {
        return Err(wd_err(format!(
            "{MANIFEST} has format {} but this rdeploy reads up to {FORMAT_VERSION}; upgrade rdeploy",
            m.format_version
        )));
    }
    // Every listed file is inside the work dir: a manifest cannot point elsewhere.
    for f in std::iter::once(&m.ir_file).chain(&m.backend_files) {
        let rel = Path::new(&f.path);
        if f.path.is_empty()
            || rel.components().any(|c| {
                !matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            })
        {
            return Err(wd_err(format!(
                "{MANIFEST} lists the file '{}', which is not a path inside the work dir; deploy again with --force",
                f.path
            )));
        }
    }
    // Only the backend's files are needed to run: the IR (end2end.onnx) may be deleted once
    // converted (OpenVINO IR, say), as MMDeploy's work dirs allow.
    for f in &m.backend_files {
        let p = work_dir.join(&f.path);
        match rdeploy_core::files::regular_file_size(&p) {
            Ok(n) if n == f.bytes => {}
            Ok(n) => {
                return Err(wd_err(format!(
                    "the file {} is {n} bytes but {MANIFEST} lists {}: it changed after deploy; deploy again with --force",
                    f.path, f.bytes
                )));
            }
            Err(why) => {
                return Err(wd_err(format!(
                    "the file {} listed in {MANIFEST} {why}; deploy again with --force",
                    f.path
                )));
            }
        }
    }
    Ok(m)
}

/// A finished work dir: its path and its checked manifest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkDir {
    /// The directory.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// True when `deploy` found it up to date and rebuilt nothing.
    pub reused: bool,
}

impl WorkDir {
    /// Opens a work dir written by `deploy`: reads its manifest and checks that every backend
    /// file is there with the size the manifest lists (see [`WorkDir::verify`] for checksums).
    ///
    /// # Errors
    /// [`Error::WorkDir`] naming the directory and what is wrong (no manifest, corrupt, newer
    /// format, a file missing or changed) and what to do.
    pub fn open(path: impl AsRef<Path>) -> Result<WorkDir> {
        let path = path.as_ref();
        Ok(WorkDir {
            manifest: read_manifest(path)?,
            path: path.to_path_buf(),
            reused: false,
        })
    }

    /// Checks the SHA-256 of every file the manifest lists that is present (the IR may have
    /// been deleted after conversion).
    ///
    /// # Errors
    /// [`Error::WorkDir`] naming the first file whose content differs from the manifest.
    pub fn verify(&self) -> Result<()> {
        for f in std::iter::once(&self.manifest.ir_file).chain(&self.manifest.backend_files) {
            let p = self.path.join(&f.path);
            if !p.exists() && f.path == self.manifest.ir_file.path {
                continue;
            }
            // Size first: a file replaced by a device (/dev/zero) would never finish hashing.
            match rdeploy_core::files::regular_file_size(&p) {
                Ok(n) if n == f.bytes => {}
                Ok(_) | Err(_) => {
                    return Err(Error::WorkDir {
                        path: self.path.clone(),
                        msg: format!(
                            "{} is not the file {MANIFEST} lists (missing, changed size, or not a regular file); deploy again with --force",
                            f.path
                        ),
                    });
                }
            }
            let (sha, n) = hash_file(&p)?;
            if sha != f.sha256 || n != f.bytes {
                return Err(Error::WorkDir {
                    path: self.path.clone(),
                    msg: format!(
                        "{} does not match the checksum in {MANIFEST}: it changed after deploy; deploy again with --force",
                        f.path
                    ),
                });
            }
        }
        Ok(())
    }

    /// The absolute paths of the backend's files, in the order `build_wrapper` takes them.
    pub fn backend_files(&self) -> Vec<PathBuf> {
        self.manifest
            .backend_files
            .iter()
            .map(|f| self.path.join(&f.path))
            .collect()
    }
}
