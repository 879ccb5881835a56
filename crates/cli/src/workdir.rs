//! Work directories: the deploy pipeline that writes them atomically, and the manifest
//! (`deploy.json`) that makes them loadable.

use crate::ir;
use rdeploy_config::Config;
use rdeploy_core::{
    BackendManager, DeployConfig, Device, Error, Registry, Result, TensorInfo, Wrapper,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The manifest file name in a work dir.
pub const MANIFEST: &str = "deploy.json";
/// The manifest format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A file of a work dir, with its checksum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

fn hex(bytes: &[u8]) -> String {
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

/// What `deploy` did.
#[derive(Debug, Serialize)]
pub struct DeployOutcome {
    /// The work dir.
    pub work_dir: PathBuf,
    /// True when an existing work dir matched and nothing was rebuilt.
    pub reused: bool,
    /// The manifest now in the work dir.
    pub manifest: Manifest,
}

/// Options of one `deploy`.
pub struct DeployRequest<'a> {
    /// The deploy config file.
    pub config_path: &'a Path,
    /// The ONNX model.
    pub model_path: &'a Path,
    /// The work dir to write.
    pub work_dir: &'a Path,
    /// The device.
    pub device: Device,
    /// Rebuild even when the cache matches.
    pub force: bool,
}

/// Runs the whole pipeline: config → IR stage → `to_backend` → manifest, atomically.
///
/// # Errors
/// Any [`Error`] of the stages; on error the work dir holds no new manifest and no staged files.
pub fn deploy(
    registry: &Registry,
    req: &DeployRequest<'_>,
    progress: &dyn Fn(&str),
) -> Result<DeployOutcome> {
    progress("reading config");
    let cfg = Config::from_file(req.config_path)?;
    let backend_name = cfg.backend_type()?;
    let backend = registry.get(&backend_name).map_err(|e| match e {
        Error::UnknownBackend { name, known } => Error::Config {
            file: Some(req.config_path.to_path_buf()),
            line: None,
            col: None,
            key: Some("backend_config.type".into()),
            msg: format!("unknown backend '{name}'; this rdeploy knows: {known}"),
        },
        other => other,
    })?;
    let backend_version = backend.ensure_available()?;
    req.device
        .ensure_supported(backend.name(), backend.device_kinds())?;
    let onnx_cfg = cfg.onnx_config()?;
    let deploy_cfg = cfg.deploy_config();

    progress("reading model");
    let (mut model, info) = rdeploy_core::onnx::inspect_file(req.model_path)?;
    let model_bytes = prost::Message::encode_to_vec(&model);
    let model_sha = hex(&Sha256::digest(&model_bytes));
    let cache_key = {
        let mut h = Sha256::new();
        for part in [
            model_sha.as_str(),
            &serde_json::to_string(&deploy_cfg.0).unwrap_or_default(),
            backend.name(),
            &backend_version,
            &req.device.to_string(),
            rdeploy_core::VERSION,
            &FORMAT_VERSION.to_string(),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        hex(&h.finalize())
    };

    if !req.force
        && let Some(m) = cached(req.work_dir, &cache_key)
    {
        tracing::info!(
            "work dir {} is up to date (same model, config, backend version and device); reusing it (--force rebuilds)",
            req.work_dir.display()
        );
        return Ok(DeployOutcome {
            work_dir: req.work_dir.to_path_buf(),
            reused: true,
            manifest: m,
        });
    }

    progress("applying onnx_config");
    let source_info = info.clone();
    let (info, mut report) = ir::apply_onnx_config(&mut model, &info, &onnx_cfg, req.model_path)
        .map_err(|e| match e {
            Error::Config {
                file: None,
                key: Some(key),
                msg,
                ..
            } => {
                let top = key.split(['.', '[']).next().unwrap_or(&key).to_string();
                let (file, line) = cfg
                    .origins
                    .get(&top)
                    .cloned()
                    .unwrap_or((req.config_path.to_path_buf(), None));
                Error::Config {
                    file: Some(file),
                    line,
                    col: None,
                    key: Some(key),
                    msg,
                }
            }
            other => other,
        })?;
    if let Some(cb) = cfg.codebase_summary() {
        report.notes.push(format!("codebase_config {cb} is kept in the manifest and not acted on (model-family code is outside rdeploy)"));
    }
    let example_shapes = info
        .inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let orig = source_info
                .inputs
                .get(i)
                .and_then(|o| o.shape.clone())
                .unwrap_or_default();
            let dims = t.shape.clone().unwrap_or_default();
            let shape = dims
                .iter()
                .enumerate()
                .map(|(j, d)| {
                    d.fixed()
                        .or_else(|| orig.get(j).and_then(rdeploy_core::Dim::fixed))
                        .unwrap_or(1) as usize
                })
                .collect();
            (t.name.clone(), shape)
        })
        .collect();

    std::fs::create_dir_all(req.work_dir)
        .map_err(|e| Error::io("cannot create work dir", req.work_dir, e))?;
    let staging = req
        .work_dir
        .join(format!(".staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)
        .map_err(|e| Error::io("cannot write to work dir", &staging, e))?;
    let result = stage_and_commit(StageArgs {
        backend: backend.as_ref(),
        backend_version,
        req,
        staging: &staging,
        model: &model,
        info,
        notes: report.notes,
        example_shapes,
        deploy_cfg: &deploy_cfg,
        onnx_save_file: &onnx_cfg.save_file,
        source: SourceModel {
            path: req.model_path.display().to_string(),
            sha256: model_sha,
            opset: crate::opt_opset(&model),
            producer: model.producer_name().to_string(),
        },
        cache_key,
        progress,
    });
    let _ = std::fs::remove_dir_all(&staging);
    let result = result.map_err(|e| unstage_paths(e, &staging, req.work_dir));
    result.map(|manifest| DeployOutcome {
        work_dir: req.work_dir.to_path_buf(),
        reused: false,
        manifest,
    })
}

/// Errors from staged files name the staging dir; users know the work dir.
fn unstage_paths(e: Error, staging: &Path, work_dir: &Path) -> Error {
    let (from, to) = (
        staging.display().to_string(),
        work_dir.display().to_string(),
    );
    match e {
        Error::Backend { backend, msg } => Error::Backend {
            backend,
            msg: msg.replace(&from, &to),
        },
        Error::Model { path, msg } => Error::Model {
            path: work_dir.join(path.strip_prefix(staging).unwrap_or(&path)),
            msg: msg.replace(&from, &to),
        },
        Error::Io {
            action,
            path,
            source,
        } => Error::Io {
            action,
            path: work_dir.join(path.strip_prefix(staging).unwrap_or(&path)),
            source,
        },
        other => other,
    }
}

struct StageArgs<'a> {
    backend: &'a dyn BackendManager,
    backend_version: String,
    req: &'a DeployRequest<'a>,
    staging: &'a Path,
    model: &'a rdeploy_core::onnx::proto::ModelProto,
    info: rdeploy_core::onnx::ModelInfo,
    notes: Vec<String>,
    example_shapes: std::collections::BTreeMap<String, Vec<usize>>,
    deploy_cfg: &'a DeployConfig,
    onnx_save_file: &'a str,
    source: SourceModel,
    cache_key: String,
    progress: &'a dyn Fn(&str),
}

fn stage_and_commit(a: StageArgs<'_>) -> Result<Manifest> {
    let ir_staged = a.staging.join(a.onnx_save_file);
    rdeploy_core::onnx::save(a.model, &ir_staged)?;
    (a.progress)(&format!("converting for {}", a.backend.name()));
    let files = a.backend.to_backend(
        std::slice::from_ref(&ir_staged),
        a.deploy_cfg,
        a.staging,
        &a.req.device,
    )?;

    // Every backend file must be inside the work dir (staged, or the IR itself).
    let mut rel_files = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(a.staging).map_err(|_| {
            Error::backend(
                a.backend.name(),
                format!("to_backend returned {} outside the work dir", f.display()),
            )
        })?;
        rel_files.push(rel.to_path_buf());
    }

    // Commit: drop the old manifest first (a crash from here on leaves no manifest, never a
    // manifest that disagrees with the files), move files in, write the manifest last.
    let manifest_path = a.req.work_dir.join(MANIFEST);
    match std::fs::remove_file(&manifest_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot replace", &manifest_path, e)),
    }
    let mut to_move: Vec<PathBuf> = vec![PathBuf::from(a.onnx_save_file)];
    for r in &rel_files {
        if !to_move.contains(r) {
            to_move.push(r.clone());
        }
    }
    let mut entries = Vec::new();
    for rel in &to_move {
        let from = a.staging.join(rel);
        let to = a.req.work_dir.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
        }
        std::fs::rename(&from, &to)
            .map_err(|e| Error::io("cannot move into the work dir", &to, e))?;
        let (sha256, bytes) = hash_file(&to)?;
        entries.push(FileEntry {
            path: rel.to_string_lossy().into_owned(),
            sha256,
            bytes,
        });
    }
    let ir_file = entries[0].clone();
    let backend_files = rel_files
        .iter()
        .filter_map(|r| entries.iter().find(|e| Path::new(&e.path) == r).cloned())
        .collect();
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        rdeploy_version: rdeploy_core::VERSION.to_string(),
        backend: a.backend.name().to_string(),
        backend_version: a.backend_version,
        device: a.req.device.clone(),
        ir_file,
        backend_files,
        inputs: a.info.inputs,
        outputs: a.info.outputs,
        source_model: a.source,
        config_file: a.req.config_path.display().to_string(),
        config: a.deploy_cfg.0.clone(),
        example_shapes: a.example_shapes,
        notes: a.notes,
        cache_key: a.cache_key,
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| Error::backend("rdeploy", e))?;
    rdeploy_core::io::write_atomic(&manifest_path, |w| w.write_all(text.as_bytes()))
        .map_err(|e| Error::io("cannot write", &manifest_path, e))?;
    Ok(manifest)
}

/// The manifest of a work dir whose cache key matches and whose files are intact.
fn cached(work_dir: &Path, key: &str) -> Option<Manifest> {
    let m = read_manifest(work_dir).ok()?;
    if m.cache_key != key {
        return None;
    }
    let intact = std::iter::once(&m.ir_file)
        .chain(&m.backend_files)
        .all(|f| {
            hash_file(&work_dir.join(&f.path))
                .map(|(sha, n)| sha == f.sha256 && n == f.bytes)
                .unwrap_or(false)
        });
    intact.then_some(m)
}

/// Reads and checks a work dir's manifest.
///
/// # Errors
/// [`Error::WorkDir`] when the dir or manifest is missing, unreadable, from a newer format, or
/// lists files that are missing.
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
    // Only the backend's files are needed to run: the IR (end2end.onnx) may be deleted once
    // converted (OpenVINO IR, say), as MMDeploy's work dirs allow.
    for f in &m.backend_files {
        if !work_dir.join(&f.path).is_file() {
            return Err(wd_err(format!(
                "the file {} listed in {MANIFEST} is missing; deploy again with --force",
                f.path
            )));
        }
    }
    Ok(m)
}

/// Loads a work dir into a runnable wrapper.
///
/// # Errors
/// [`Error::WorkDir`] for a bad work dir, [`Error::UnknownBackend`] or
/// [`Error::BackendUnavailable`] when its backend cannot run here, and the backend's errors.
pub fn load_wrapper(registry: &Registry, work_dir: &Path) -> Result<(Manifest, Arc<dyn Wrapper>)> {
    let m = read_manifest(work_dir)?;
    let backend = registry.get(&m.backend)?;
    let version = backend.ensure_available()?;
    if version != m.backend_version {
        tracing::warn!(
            "{} was deployed with {} {} and is loaded with {version}",
            work_dir.display(),
            m.backend,
            m.backend_version
        );
    }
    let files: Vec<PathBuf> = m
        .backend_files
        .iter()
        .map(|f| work_dir.join(&f.path))
        .collect();
    let inputs: Vec<String> = m.inputs.iter().map(|t| t.name.clone()).collect();
    let outputs: Vec<String> = m.outputs.iter().map(|t| t.name.clone()).collect();
    let w = backend.build_wrapper(
        &files,
        &m.device,
        &inputs,
        &outputs,
        &DeployConfig(m.config.clone()),
    )?;
    Ok((m, Arc::from(w)))
}
