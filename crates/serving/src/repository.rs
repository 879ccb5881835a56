//! Triton-layout model repositories: `<repo>/<model>/config.pbtxt` and numbered version
//! folders `<repo>/<model>/<version>/`, each holding an rdeploy work dir (for `backend:
//! "rdeploy"`) or the files of Triton's native backends.
//!
//! Source of the layout: Triton's model repository guide
//! (`docs/user_guide/model_repository.md` in github.com/triton-inference-server/server):
//! version folders are positive integers; `onnxruntime_onnx` reads `model.onnx`, the OpenVINO
//! backend `model.xml` + `model.bin`; a model's `name`, when given, must equal its folder name.

use crate::model_config::{self, CONFIG_FILE, ModelSettings};
use crate::{datatype, proto};
use rdeploy::core::{Dim, Error, Result, TensorInfo};
use rdeploy::workdir::{MANIFEST, Manifest, WorkDir};
use std::path::{Path, PathBuf};

/// Which Triton backend a repository entry is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Platform {
    /// rdeploy's own Triton backend (`backend: "rdeploy"`): the version folder is the work dir,
    /// served on its deployed engine (tract, onnxruntime, openvino or a plugin).
    #[default]
    Rdeploy,
    /// Triton's own backend for the work dir's engine: `onnxruntime_onnx` with `model.onnx` for
    /// onnxruntime work dirs, `openvino` with `model.xml`/`model.bin` for openvino ones.
    Native,
}

/// Settings of `rdeploy export triton` (and of `rdeploy serve` on a bare work dir).
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// The model's name in the repository; the work dir's folder name when `None`.
    pub name: Option<String>,
    /// The version folder (a positive integer).
    pub version: u64,
    /// Largest batch per engine call; 0 = no batching (dims keep the model's first dim).
    pub max_batch_size: usize,
    /// Model instances (`instance_group [ { count: N, kind: KIND_CPU } ]`).
    pub instances: usize,
    /// Turn on Triton's dynamic batcher (needs `max_batch_size > 0`).
    pub dynamic_batching: bool,
    /// `max_queue_delay_microseconds` of the dynamic batcher.
    pub max_queue_delay_us: u64,
    /// The backend the entry is for.
    pub platform: Platform,
    /// Replace an existing version folder and a config with other settings.
    pub force: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            name: None,
            version: 1,
            max_batch_size: 0,
            instances: 1,
            dynamic_batching: false,
            max_queue_delay_us: 100,
            platform: Platform::Rdeploy,
            force: false,
        }
    }
}

/// A model name usable as a folder and a URL path segment.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Config {
            file: None,
            line: None,
            col: None,
            key: Some("name".into()),
            msg: format!(
                "model name '{name}' must be letters, digits, '_', '-' or '.' (not starting with '.'): it names a folder and a URL path segment"
            ),
        })
    }
}

fn name_of(work_dir: &Path, name: Option<&str>) -> Result<String> {
    let name = match name {
        Some(n) => n.to_string(),
        None => std::fs::canonicalize(work_dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
    };
    check_name(&name)?;
    Ok(name)
}

fn export_err(work_dir: &Path, msg: String) -> Error {
    Error::WorkDir {
        path: work_dir.to_path_buf(),
        msg,
    }
}

/// One tensor of the manifest as a config tensor: TYPE_* and dims, the batch dim left out
/// when `batched`.
fn config_dims(
    work_dir: &Path,
    kind: &str,
    t: &TensorInfo,
    batched: bool,
) -> Result<(i32, Vec<i64>)> {
    let ty = proto::DataType::from_str_name(datatype::triton_type(t.dtype))
        .map(|d| d as i32)
        .ok_or_else(|| {
            export_err(
                work_dir,
                format!("{kind} '{}': {} has no Triton type", t.name, t.dtype),
            )
        })?;
    let Some(shape) = &t.shape else {
        return Err(export_err(
            work_dir,
            format!(
                "{kind} '{}' has unknown rank; Triton needs its dims: deploy with a shape for it (onnx_config.input_shape, or a model with typed outputs)",
                t.name
            ),
        ));
    };
    let mut dims: Vec<i64> = shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => i64::try_from(*n).unwrap_or(-1),
            Dim::Symbolic(_) => -1,
        })
        .collect();
    if batched {
        match shape.first() {
            Some(Dim::Symbolic(_)) => {
                dims.remove(0);
            }
            first => {
                return Err(export_err(
                    work_dir,
                    format!(
                        "{kind} '{}' {} has no variable batch dim first ({}), so requests cannot be batched: use --max-batch-size 0, or deploy with a dynamic first axis (onnx_config.dynamic_axes)",
                        t.name,
                        t.shape_string(),
                        first.map_or("a scalar".to_string(), |d| format!("dim 0 is {d}")),
                    ),
                ));
            }
        }
    }
    Ok((ty, dims))
}

/// The Triton model config for a work dir's manifest.
///
/// # Errors
/// [`Error::WorkDir`] when a tensor has unknown rank or no variable first dim while batching,
/// when dynamic batching is asked without `max_batch_size`, and when `Platform::Native` is asked
/// for an engine Triton has no backend for (tract, plugins).
pub fn model_config_for(
    work_dir: &Path,
    manifest: &Manifest,
    name: &str,
    opts: &ExportOptions,
) -> Result<proto::ModelConfig> {
    let batched = opts.max_batch_size > 0;
    if opts.dynamic_batching && !batched {
        return Err(export_err(
            work_dir,
            "dynamic batching needs --max-batch-size > 0 (Triton batches along the first dim up to it)".into(),
        ));
    }
    let mut cfg = proto::ModelConfig {
        name: name.to_string(),
        max_batch_size: i32::try_from(opts.max_batch_size).unwrap_or(i32::MAX),
        ..Default::default()
    };
    match opts.platform {
        Platform::Rdeploy => cfg.backend = "rdeploy".into(),
        Platform::Native => match manifest.backend.as_str() {
            "onnxruntime" => {
                cfg.platform = "onnxruntime_onnx".into();
                cfg.default_model_filename = "model.onnx".into();
            }
            "openvino" => {
                cfg.backend = "openvino".into();
                cfg.default_model_filename = "model.xml".into();
            }
            other => {
                return Err(export_err(
                    work_dir,
                    format!(
                        "--platform native: Triton has no backend of its own for '{other}' work dirs (it has onnxruntime and openvino); use --platform rdeploy"
                    ),
                ));
            }
        },
    }
    for t in &manifest.inputs {
        let (data_type, dims) = config_dims(work_dir, "input", t, batched)?;
        cfg.input.push(proto::ModelInput {
            name: t.name.clone(),
            data_type,
            dims,
            ..Default::default()
        });
    }
    for t in &manifest.outputs {
        let (data_type, dims) = config_dims(work_dir, "output", t, batched)?;
        cfg.output.push(proto::ModelOutput {
            name: t.name.clone(),
            data_type,
            dims,
            ..Default::default()
        });
    }
    cfg.instance_group.push(proto::ModelInstanceGroup {
        count: i32::try_from(opts.instances.max(1)).unwrap_or(1),
        kind: proto::model_instance_group::Kind::Cpu as i32,
        ..Default::default()
    });
    if opts.dynamic_batching {
        cfg.scheduling_choice = Some(proto::model_config::SchedulingChoice::DynamicBatching(
            proto::ModelDynamicBatching {
                max_queue_delay_microseconds: opts.max_queue_delay_us,
                ..Default::default()
            },
        ));
    }
    Ok(cfg)
}

/// What [`export_triton`] wrote.
#[derive(Clone, Debug)]
pub struct Exported {
    /// `<repo>/<name>`.
    pub model_dir: PathBuf,
    /// `<repo>/<name>/<version>`.
    pub version_dir: PathBuf,
    /// The config written to `<repo>/<name>/config.pbtxt`.
    pub config: proto::ModelConfig,
}

/// Copies the regular files of `from` into `to` (created), recursively.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io("cannot create directory", to, e))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| Error::io("cannot read directory", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot read directory", from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::metadata(&src).map_err(|e| Error::io("cannot read", &src, e))?;
        if meta.is_dir() {
            copy_tree(&src, &dst)?;
        } else if meta.is_file() {
            std::fs::copy(&src, &dst).map_err(|e| Error::io("cannot copy", &src, e))?;
        }
    }
    Ok(())
}

fn copy_as(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| Error::io("cannot copy", from, e))
}

/// Writes a Triton repository entry for a deployed work dir: `<repo>/<name>/config.pbtxt` and
/// the version folder (the work dir itself for [`Platform::Rdeploy`]; `model.onnx`, or
/// `model.xml` + `model.bin`, for [`Platform::Native`]). The version folder is assembled
/// beside its place and renamed into it, so a failed export leaves nothing half-written.
///
/// # Errors
/// [`Error::WorkDir`] for a work dir that does not load or verify, or does not fit the options
/// (see [`model_config_for`]); [`Error::Config`] for a bad model name, an existing version
/// folder or a config with other settings without `force`; [`Error::Io`] from the file system.
pub fn export_triton(work_dir: &Path, repo: &Path, opts: &ExportOptions) -> Result<Exported> {
    let wd = WorkDir::open(work_dir)?;
    wd.verify()?;
    let name = name_of(work_dir, opts.name.as_deref())?;
    if opts.version == 0 {
        return Err(Error::Config {
            file: None,
            line: None,
            col: None,
            key: Some("version".into()),
            msg: "Triton's version folders are positive integers; use --version 1 or more".into(),
        });
    }
    let cfg = model_config_for(work_dir, &wd.manifest, &name, opts)?;
    let text = model_config::to_pbtxt(&cfg)?;
    let model_dir = repo.join(&name);
    let version_dir = model_dir.join(opts.version.to_string());
    let config_path = model_dir.join(CONFIG_FILE);
    let exists = |path: &Path, what: &str| Error::WorkDir {
        path: path.to_path_buf(),
        msg: format!("{what} already exists; pass --force to replace it"),
    };
    if !opts.force {
        let same_files = opts.platform == Platform::Rdeploy
            && std::fs::read(version_dir.join(MANIFEST)).ok()
                == std::fs::read(work_dir.join(MANIFEST)).ok()
            && WorkDir::open(&version_dir).and_then(|w| w.verify()).is_ok();
        let same_config =
            std::fs::read_to_string(&config_path).ok().as_deref() == Some(text.as_str());
        if version_dir.exists() && same_files && same_config {
            // The same work dir with the same settings: already exported, nothing to do.
            return Ok(Exported {
                model_dir,
                version_dir,
                config: cfg,
            });
        }
        if version_dir.exists() {
            return Err(exists(&version_dir, "this version, with other files,"));
        }
        if let Ok(old) = std::fs::read_to_string(&config_path)
            && old != text
        {
            return Err(exists(&config_path, "a config with other settings"));
        }
    }
    std::fs::create_dir_all(&model_dir)
        .map_err(|e| Error::io("cannot create directory", &model_dir, e))?;
    let (src, dst) = (
        std::fs::canonicalize(work_dir).map_err(|e| Error::io("cannot read", work_dir, e))?,
        std::fs::canonicalize(&model_dir).map_err(|e| Error::io("cannot read", &model_dir, e))?,
    );
    if dst.starts_with(&src) || src.starts_with(dst.join(opts.version.to_string())) {
        return Err(export_err(
            work_dir,
            format!(
                "the repository entry {} would be inside the work dir it copies, or replace it; use a --repo outside the work dir",
                model_dir.display()
            ),
        ));
    }
    remove_stale_staging(&model_dir);
    let staging = tempfile_dir(&model_dir)?;
    let staged = staging.join("v");
    match opts.platform {
        Platform::Rdeploy => {
            copy_tree(work_dir, &staged)?;
            WorkDir::open(&staged)?.verify()?;
        }
        Platform::Native => {
            std::fs::create_dir_all(&staged)
                .map_err(|e| Error::io("cannot create directory", &staged, e))?;
            let files = wd.backend_files();
            match (wd.manifest.backend.as_str(), files.as_slice()) {
                ("onnxruntime", [onnx]) => copy_as(onnx, &staged.join("model.onnx"))?,
                ("onnxruntime", _) => {
                    return Err(export_err(
                        work_dir,
                        "--platform native: this work dir loads custom-op libraries, which Triton's onnxruntime backend would need in model_operations; use --platform rdeploy".into(),
                    ));
                }
                ("openvino", [xml, bin, ..]) => {
                    copy_as(xml, &staged.join("model.xml"))?;
                    copy_as(bin, &staged.join("model.bin"))?;
                }
                (b, f) => {
                    return Err(export_err(
                        work_dir,
                        format!(
                            "--platform native: unexpected {b} backend files {f:?}; use --platform rdeploy"
                        ),
                    ));
                }
            }
        }
    }
    if version_dir.exists() {
        let old = staging.join("old");
        std::fs::rename(&version_dir, &old)
            .map_err(|e| Error::io("cannot replace", &version_dir, e))?;
    }
    std::fs::rename(&staged, &version_dir)
        .map_err(|e| Error::io("cannot create", &version_dir, e))?;
    let _ = std::fs::remove_dir_all(&staging);
    rdeploy::core::atomic::write_atomic(&config_path, |w| w.write_all(text.as_bytes()))
        .map_err(|e| Error::io("cannot write", &config_path, e))?;
    Ok(Exported {
        model_dir,
        version_dir,
        config: cfg,
    })
}

/// Removes staging folders of exports whose process is gone (killed mid-export).
fn remove_stale_staging(model_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(model_dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(".rdeploy-export-") else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A fresh hidden folder in `parent` for assembling files before renaming them into place.
fn tempfile_dir(parent: &Path) -> Result<PathBuf> {
    for i in 0..1000u32 {
        let p = parent.join(format!(".rdeploy-export-{}-{i}", std::process::id()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("cannot create directory", &p, e)),
        }
    }
    Err(Error::io(
        "cannot create directory",
        parent,
        std::io::Error::other("no free staging name"),
    ))
}

/// One model of a repository, ready to serve.
#[derive(Clone, Debug)]
pub struct RepositoryModel {
    /// The model's name (its folder name).
    pub name: String,
    /// The model's folder (for a bare work dir: the work dir).
    pub dir: PathBuf,
    /// Its config (`config.pbtxt`, or made from the work dir's manifest when there is none).
    pub config: proto::ModelConfig,
    /// The checked serving settings of `config`.
    pub settings: ModelSettings,
    /// The versions to serve, by the config's version policy: (version, work dir), ascending.
    pub versions: Vec<(u64, PathBuf)>,
}

/// A model repository, or a single work dir served as one.
#[derive(Clone, Debug)]
pub struct Repository {
    /// The folder given.
    pub root: PathBuf,
    /// Its models, by name.
    pub models: Vec<RepositoryModel>,
}

impl Repository {
    /// Opens a Triton-layout repository of rdeploy work dirs, or a single work dir (holding
    /// `deploy.json`) as a repository of one model configured by `single` (its name, batching,
    /// instances).
    ///
    /// # Errors
    /// [`Error::Config`] for a `config.pbtxt` that does not parse or check (file:line:col), a
    /// config naming another model, a model for a Triton-native backend; [`Error::WorkDir`] for
    /// a model with no version folder to serve or an unreadable manifest.
    pub fn open(path: &Path, single: &ExportOptions) -> Result<Repository> {
        if path.join(MANIFEST).is_file() {
            let wd = WorkDir::open(path)?;
            let name = name_of(path, single.name.as_deref())?;
            let single = ExportOptions {
                platform: Platform::Rdeploy,
                ..single.clone()
            };
            let config = model_config_for(path, &wd.manifest, &name, &single)?;
            let settings = ModelSettings::from_config(&config, &path.join(MANIFEST))?;
            return Ok(Repository {
                root: path.to_path_buf(),
                models: vec![RepositoryModel {
                    name,
                    dir: path.to_path_buf(),
                    config,
                    settings,
                    versions: vec![(1, path.to_path_buf())],
                }],
            });
        }
        let entries = std::fs::read_dir(path)
            .map_err(|e| Error::io("cannot read model repository", path, e))?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        dirs.sort();
        let mut models = Vec::new();
        let mut skipped = Vec::new();
        for dir in dirs {
            match read_model(&dir)? {
                Some(m) => models.push(m),
                None => skipped.push(
                    dir.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
            }
        }
        if models.is_empty() && !skipped.is_empty() {
            return Err(Error::WorkDir {
                path: path.to_path_buf(),
                msg: format!(
                    "no model rdeploy serves here: {} are entries for Triton's own backends (--platform native); export with --platform rdeploy to serve them with rdeploy serve",
                    skipped.join(", ")
                ),
            });
        }
        if models.is_empty() {
            return Err(Error::WorkDir {
                path: path.to_path_buf(),
                msg: format!(
                    "neither a work dir ({MANIFEST}) nor a model repository (<model>/{CONFIG_FILE} and <model>/<version>/{MANIFEST}); deploy a model or run `rdeploy export triton` first"
                ),
            });
        }
        Ok(Repository {
            root: path.to_path_buf(),
            models,
        })
    }
}

/// One model folder; `None` (with a warning) for an entry of Triton's own backends, which the
/// same repository may hold for Triton.
fn read_model(dir: &Path) -> Result<Option<RepositoryModel>> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut all: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("cannot read", dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u64>().ok()?;
            (v > 0 && e.path().is_dir()).then(|| (v, e.path()))
        })
        .collect();
    all.sort();
    let config_path = dir.join(CONFIG_FILE);
    let cfg_err = |key: &str, msg: String| Error::Config {
        file: Some(config_path.clone()),
        line: None,
        col: None,
        key: Some(key.into()),
        msg,
    };
    let config = if config_path.exists() {
        let mut c = model_config::read(dir)?;
        if c.name.is_empty() {
            c.name = name.clone();
        } else if c.name != name {
            return Err(cfg_err(
                "name",
                format!(
                    "names '{}' but the folder is '{name}'; Triton requires them equal",
                    c.name
                ),
            ));
        }
        if !c.platform.is_empty() || !(c.backend.is_empty() || c.backend == "rdeploy") {
            let (key, value) = if c.platform.is_empty() {
                ("backend", &c.backend)
            } else {
                ("platform", &c.platform)
            };
            tracing::warn!(
                "skipping model '{name}': {} has {key}: \"{value}\", an entry for Triton's own backend; rdeploy serves entries with backend: \"rdeploy\" (rdeploy export triton --platform rdeploy)",
                config_path.display()
            );
            return Ok(None);
        }
        if c.input.is_empty() && c.output.is_empty() {
            // Triton's auto-complete: a config that lists no tensors takes the model's.
            if let Some((_, latest)) = all.last() {
                let wd = WorkDir::open(latest)?;
                let opts = ExportOptions {
                    max_batch_size: usize::try_from(c.max_batch_size).unwrap_or(0),
                    ..Default::default()
                };
                let full = model_config_for(latest, &wd.manifest, &name, &opts)?;
                c.input = full.input;
                c.output = full.output;
            }
        }
        c
    } else {
        let Some((_, latest)) = all.last() else {
            return Err(Error::WorkDir {
                path: dir.to_path_buf(),
                msg: format!("no {CONFIG_FILE} and no version folder (<version>/{MANIFEST})"),
            });
        };
        let wd = WorkDir::open(latest)?;
        model_config_for(latest, &wd.manifest, &name, &ExportOptions::default())?
    };
    let settings = ModelSettings::from_config(&config, &config_path)?;
    use proto::model_version_policy::PolicyChoice;
    let versions: Vec<(u64, PathBuf)> = match config
        .version_policy
        .as_ref()
        .and_then(|p| p.policy_choice.as_ref())
    {
        None => all.last().cloned().into_iter().collect(),
        Some(PolicyChoice::Latest(l)) => {
            let n = (l.num_versions as usize).max(1);
            all[all.len().saturating_sub(n)..].to_vec()
        }
        Some(PolicyChoice::All(_)) => all.clone(),
        Some(PolicyChoice::Specific(s)) => all
            .iter()
            .filter(|(v, _)| {
                s.versions
                    .iter()
                    .any(|w| u64::try_from(*w).ok() == Some(*v))
            })
            .cloned()
            .collect(),
    };
    if versions.is_empty() {
        return Err(Error::WorkDir {
            path: dir.to_path_buf(),
            msg: format!(
                "no version folder matches the config's version policy (version folders: {}; they are positive integers holding {MANIFEST})",
                if all.is_empty() {
                    "none".to_string()
                } else {
                    all.iter()
                        .map(|(v, _)| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        });
    }
    for (_, v) in &versions {
        let wd = WorkDir::open(v)?;
        settings
            .check_signature(&wd.manifest.inputs, &wd.manifest.outputs)
            .map_err(|msg| Error::Config {
                file: Some(config_path.clone()),
                line: None,
                col: None,
                key: None,
                msg: format!("does not fit version folder {}: {msg}", v.display()),
            })?;
    }
    Ok(Some(RepositoryModel {
        name,
        dir: dir.to_path_buf(),
        config,
        settings,
        versions,
    }))
}
