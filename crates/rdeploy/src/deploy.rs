//! The deploy pipeline: config → IR stage (`onnx_config` pass) → the backend's passes →
//! `to_backend` → manifest, written atomically into a work dir.

use crate::workdir::{FileEntry, MANIFEST, Manifest, SourceModel, WorkDir, cached, hash_file, hex};
use rdeploy_config::Config;
use rdeploy_core::onnx::proto::ModelProto;
use rdeploy_core::{BackendManager, DeployConfig, Device, Error, NamedTensors, Registry, Result};
use rdeploy_onnx::{
    OnnxConfigPass, Pass, PassContext, PassRecord, PassRegistry, PassRequest, RewritePass,
    RewriteRegistry,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of one [`deploy`].
#[derive(Default)]
pub struct DeployOptions<'a> {
    /// Rebuild even when the work dir is up to date.
    pub force: bool,
    /// Called with the name of each step as it starts ("reading model", "converting for
    /// openvino"), for progress displays.
    pub progress: Option<&'a (dyn Fn(&str) + Sync)>,
    /// The passes backends may ask for; [`PassRegistry::builtin`] when `None`.
    pub passes: Option<&'a PassRegistry>,
    /// The rewrite rules applied per backend; [`RewriteRegistry::builtin`] when `None`.
    pub rewrites: Option<&'a RewriteRegistry>,
    /// Real inputs for deploy's check run (a test case's), by the deployed model's input
    /// names, instead of generated ones: the engine must then run them.
    pub check_inputs: Option<&'a NamedTensors>,
}

/// The graph passes run on the IR before `backend`'s `to_backend`, in order:
/// `opset_upgrade` (the backend's request, or the default: models below opset 7 to 13), the
/// `rewrite` rules registered for the backend, whole-model passes registered for it (third
/// parties'), `simplify` (when asked for or enabled), then
/// the backend's other requests (`fp16`).
/// `rewrite_config.disable` in the deploy config switches `opset_upgrade`, rules and the
/// backend's other requested passes (`fold_batchnorm`) off by name.
///
/// # Errors
/// [`Error::Config`] for a bad `rewrite_config` or pass option; [`Error::Backend`] for a
/// request naming a pass this build lacks.
pub fn backend_passes(
    backend: &dyn BackendManager,
    deploy_cfg: &DeployConfig,
    passes: &PassRegistry,
    rewrites: &RewriteRegistry,
) -> Result<Vec<Arc<dyn Pass>>> {
    let switches = rdeploy_onnx::rewrite::RewriteSwitches::from_config(deploy_cfg)?;
    let requests = backend.ir_passes(deploy_cfg)?;
    let mut out: Vec<Arc<dyn Pass>> = Vec::new();
    if !switches.disabled("opset_upgrade") {
        let req = requests
            .iter()
            .find(|r| r.name == "opset_upgrade")
            .cloned()
            .unwrap_or_else(|| PassRequest::new("opset_upgrade"));
        out.push(passes.resolve(&req, deploy_cfg)?);
    }
    let rules = rewrites.for_backend(backend.name(), deploy_cfg)?;
    if !rules.is_empty() && !switches.disabled("rewrite") {
        out.push(Arc::new(RewritePass { rules }));
    }
    out.extend(rewrites.passes_for_backend(backend.name(), deploy_cfg)?);
    // `simplify` (constant folding, dead nodes): when the backend asks or the config enables.
    let simplify_asked = requests.iter().any(|r| r.name == "simplify");
    if (simplify_asked || switches.enable.iter().any(|n| n == "simplify"))
        && !switches.disabled("simplify")
    {
        out.push(passes.resolve(&PassRequest::new("simplify"), deploy_cfg)?);
    }
    for r in requests.iter().filter(|r| {
        r.name != "opset_upgrade" && r.name != "simplify" && !switches.disabled(&r.name)
    }) {
        out.push(passes.resolve(r, deploy_cfg)?);
    }
    Ok(out)
}

/// The backend a config names, with the error pointing at `backend_config.type`.
///
/// # Errors
/// [`Error::Config`] for a missing type or an unknown backend (listing the known ones).
pub fn backend_of(registry: &Registry, config: &Config) -> Result<Arc<dyn BackendManager>> {
    let name = config.backend_type()?;
    registry.get(&name).map_err(|e| match e {
        Error::UnknownBackend { name, known } => locate_config_error(
            Error::config_key(
                "backend_config.type",
                format!("unknown backend '{name}'; this rdeploy knows: {known}"),
            ),
            config,
        ),
        other => other,
    })
}

/// Deploys `model` for the backend `config` names into `work_dir`, MMDeploy's pipeline:
/// applies `onnx_config` (the IR, `end2end.onnx`), runs the graph passes the backend asks for,
/// converts with the backend's `to_backend`, and writes `deploy.json` listing every file with
/// its SHA-256, the signature, versions, passes and the merged config.
///
/// Deploying again with the same model, config, backend version and device reuses the work dir
/// unless `options.force`.
///
/// `backend_config.custom_ops` paths are resolved against the config file's folder
/// ([`Config::custom_ops`]) and handed to the backend, and kept in the manifest, as absolute
/// paths; a change in a library's content is a change of config for reuse.
///
/// # Errors
/// [`Error::Config`] for a config that does not fit the model (naming file, line and key),
/// [`Error::Model`] for a model that cannot be read, [`Error::BackendUnavailable`],
/// [`Error::Device`], the backend's conversion errors, [`Error::Io`] for the work dir. On any
/// error the work dir holds no new manifest and no staged files; a previous deploy in it stays
/// usable.
pub fn deploy(
    registry: &Registry,
    config: &Config,
    model_path: &Path,
    work_dir: &Path,
    device: &Device,
    options: &DeployOptions<'_>,
) -> Result<WorkDir> {
    let progress = |s: &str| {
        tracing::debug!("deploy: {s}");
        if let Some(p) = options.progress {
            p(s);
        }
    };
    check_work_dir(work_dir)?;
    let backend = backend_of(registry, config)?;
    let backend_version = backend.ensure_available()?;
    device.ensure_supported(backend.name(), backend.device_kinds())?;
    let onnx_cfg = config.onnx_config()?;
    let (deploy_cfg, custom_ops) = with_resolved_custom_ops(config)?;
    let builtin;
    let pass_registry = match options.passes {
        Some(p) => p,
        None => {
            builtin = PassRegistry::builtin();
            &builtin
        }
    };
    let builtin_rewrites;
    let rewrites = match options.rewrites {
        Some(r) => r,
        None => {
            builtin_rewrites = RewriteRegistry::builtin();
            &builtin_rewrites
        }
    };
    let passes_for_backend = backend_passes(backend.as_ref(), &deploy_cfg, pass_registry, rewrites)
        .map_err(|e| locate_config_error(e, config))?;

    progress("reading model");
    let (mut model, source_info) = rdeploy_core::onnx::inspect_file(model_path)?;
    let model_bytes = prost::Message::encode_to_vec(&model);
    let model_sha = hex(&Sha256::digest(&model_bytes));
    drop(model_bytes);
    // The graph passes and rules that would run (third parties' included): another set is
    // another deploy.
    let pass_names: Vec<String> = passes_for_backend.iter().map(|p| p.identity()).collect();
    let cache_key = {
        let mut h = Sha256::new();
        for part in [
            pass_names.join(",").as_str(),
            model_sha.as_str(),
            &serde_json::to_string(&deploy_cfg.0).unwrap_or_default(),
            backend.name(),
            &backend_version,
            &device.to_string(),
            rdeploy_core::VERSION,
            &crate::workdir::FORMAT_VERSION.to_string(),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        // A rebuilt custom-op library is a new deploy (the work dir holds a copy of the old).
        // Only regular files are read (a FIFO or /dev/zero would never end).
        for lib in &custom_ops {
            let sha = match rdeploy_core::files::regular_file_size(lib) {
                Ok(_) => hash_file(lib).map_or_else(|_| "missing".to_string(), |(sha, _)| sha),
                Err(why) => {
                    return Err(locate_config_error(
                        Error::config_key(
                            "backend_config.custom_ops",
                            format!("the custom-op library {}: {why}", lib.display()),
                        ),
                        config,
                    ));
                }
            };
            h.update(sha.as_bytes());
            h.update([0u8]);
        }
        hex(&h.finalize())
    };
    if !options.force
        && let Some(m) = cached(work_dir, &cache_key)
    {
        tracing::info!(
            "work dir {} is up to date (same model, config, backend version and device); reusing it (--force rebuilds)",
            work_dir.display()
        );
        return Ok(WorkDir {
            path: work_dir.to_path_buf(),
            manifest: m,
            reused: true,
        });
    }

    progress("applying onnx_config");
    let cx = PassContext {
        model_path,
        deploy_cfg: &deploy_cfg,
    };
    let ir_passes: [Arc<dyn Pass>; 2] = [
        Arc::new(rdeploy_onnx::NormalizePass),
        Arc::new(OnnxConfigPass {
            config: onnx_cfg.clone(),
        }),
    ];
    let mut records = rdeploy_onnx::run_passes(&mut model, &ir_passes, "ir", &cx)
        .map_err(|e| locate_config_error(e, config))?;
    let info = rdeploy_core::onnx::inspect(&model).map_err(|m| Error::model(model_path, m))?;
    let mut notes: Vec<String> = records
        .iter()
        .flat_map(|r| r.outcome.notes.iter().cloned())
        .collect();
    if let Some(cb) = config.codebase_summary() {
        notes.push(format!("codebase_config {cb} is kept in the manifest and not acted on (model-family code is outside rdeploy)"));
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

    let created = !work_dir.exists();
    std::fs::create_dir_all(work_dir)
        .map_err(|e| Error::io("cannot create work dir", work_dir, e))?;
    // A private staging dir inside the work dir (same file system, so the final moves are
    // renames), removed on drop whatever happens.
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(work_dir)
        .map_err(|e| Error::io("cannot write to work dir", work_dir, e))?;
    let staged = Staged {
        backend: backend.as_ref(),
        backend_passes: &passes_for_backend,
        staging: staging.path(),
        work_dir,
        device,
        deploy_cfg: &deploy_cfg,
        model_path,
        ir_name: &onnx_cfg.save_file,
    };
    let mut opt_shapes = opt_shapes(config)?;
    // Where the config gives no shape, the source model's own dims (it was exported at them)
    // are a real shape to check at, even when onnx_config made them symbolic.
    for (i, t) in info.inputs.iter().enumerate() {
        if opt_shapes.contains_key(&t.name) {
            continue;
        }
        let (Some(dims), Some(orig)) = (
            t.shape.as_ref(),
            source_info.inputs.get(i).and_then(|s| s.shape.as_ref()),
        ) else {
            continue;
        };
        if dims.len() != orig.len() {
            continue;
        }
        let shape: Option<Vec<u64>> = dims
            .iter()
            .zip(orig)
            .enumerate()
            .map(|(axis, (d, o))| d.fixed().or(o.fixed()).or((axis == 0).then_some(1)))
            .collect();
        if let Some(shape) = shape {
            opt_shapes.insert(t.name.clone(), shape);
        }
    }
    let result = staged.convert(&model).and_then(|converted| {
        let Converted {
            mut files,
            records: mut more,
            signature,
        } = converted;
        // The manifest states what the deployed files take and return.
        let info = signature.unwrap_or_else(|| info.clone());
        // Prove the deploy: the backend loads what it wrote, with the manifest's names, and
        // runs it; an fp16 graph still matches the float32 one.
        let mut report = crate::check::CheckReport { notes: Vec::new() };
        let fp16 = more.iter().any(|r| r.name == "fp16" && r.outcome.changed);
        let ran = crate::check::run_check(
            backend.as_ref(),
            &files,
            &info.inputs,
            &info.outputs,
            &opt_shapes,
            device,
            &deploy_cfg,
            fp16,
            options.check_inputs,
            &mut report,
        )?;
        let mut used_cfg = deploy_cfg.clone();
        if let Some(run) = &ran
            && more.iter().any(|r| r.name == "fp16" && r.outcome.changed)
        {
            // Named nodes of the IR, in graph order: what a node_block_list can keep float32.
            let candidates: Vec<String> = model
                .graph
                .iter()
                .flat_map(|g| &g.node)
                .filter(|n| !n.name().is_empty() && n.op_type() != "Constant")
                .map(|n| n.name().to_string())
                .collect();
            let in_names: Vec<String> = info.inputs.iter().map(|t| t.name.clone()).collect();
            let out_names: Vec<String> = info.outputs.iter().map(|t| t.name.clone()).collect();
            // One conversion with `blocked` kept float32, in `dir`.
            let convert_with =
                |blocked: &[String], dir: &Path| -> Result<(DeployConfig, Converted)> {
                    let cfg = with_node_block_list(&deploy_cfg, blocked);
                    let passes = backend_passes(backend.as_ref(), &cfg, pass_registry, rewrites)?;
                    let st = Staged {
                        backend: backend.as_ref(),
                        backend_passes: &passes,
                        staging: dir,
                        work_dir,
                        device,
                        deploy_cfg: &cfg,
                        model_path,
                        ir_name: &onnx_cfg.save_file,
                    };
                    let c = st.convert(&model)?;
                    Ok((cfg, c))
                };
            let probe = |blocked: &[String]| -> Result<NamedTensors> {
                let dir = tempfile::tempdir_in(staging.path())
                    .map_err(|e| Error::io("cannot write to work dir", staging.path(), e))?;
                let (cfg, c) = convert_with(blocked, dir.path())?;
                let w = backend.build_wrapper(&c.files, device, &in_names, &out_names, &cfg)?;
                let inputs = run
                    .0
                    .iter()
                    .zip(w.inputs())
                    .map(|((n, t), s)| {
                        Ok((n.clone(), t.cast(s.dtype, rdeploy_core::Cast::Unchecked)?))
                    })
                    .collect::<Result<NamedTensors>>()?;
                w.forward(inputs)
            };
            let blocked = crate::check::fp16_check(
                backend.as_ref(),
                &staging.path().join(&onnx_cfg.save_file),
                &staging.path().join(".fp32-check"),
                &info.outputs,
                device,
                &deploy_cfg,
                run,
                &mut report,
                Some((&candidates, &probe)),
            )?;
            let _ = std::fs::remove_dir_all(staging.path().join(".fp32-check"));
            if !blocked.is_empty() {
                // The deployed files are the converted model with those nodes kept float32.
                let (cfg, c) = convert_with(&blocked, staging.path())?;
                files = c.files;
                more = c.records;
                used_cfg = cfg;
            }
        }
        notes.extend(report.notes);
        records.extend(more);
        notes.extend(
            records
                .iter()
                .filter(|r| r.stage == "backend")
                .flat_map(|r| r.outcome.notes.iter().cloned()),
        );
        staged.commit(
            &files,
            Manifest {
                format_version: crate::workdir::FORMAT_VERSION,
                rdeploy_version: rdeploy_core::VERSION.to_string(),
                backend: backend.name().to_string(),
                backend_version: backend_version.clone(),
                device: device.clone(),
                ir_file: FileEntry::default(),
                backend_files: Vec::new(),
                inputs: info.inputs.clone(),
                outputs: info.outputs.clone(),
                source_model: SourceModel {
                    path: model_path.display().to_string(),
                    sha256: model_sha,
                    opset: source_info.opset(),
                    producer: model.producer_name().to_string(),
                },
                config_file: config.path.display().to_string(),
                config: used_cfg.0.clone(),
                example_shapes,
                notes,
                passes: records,
                cache_key,
            },
        )
    });
    let result =
        result.map_err(|e| locate_config_error(unstage_paths(e, staging.path(), work_dir), config));
    drop(staging);
    if result.is_err() && created {
        // A work dir this deploy made and filled with nothing: leave no trace.
        let _ = std::fs::remove_dir(work_dir);
    }
    result.map(|manifest| WorkDir {
        path: work_dir.to_path_buf(),
        manifest,
        reused: false,
    })
}

/// Runs the passes `backend` asks for on the IR file, then its `to_backend`, in `out_dir`:
/// MMDeploy's `to_backend(ir_files, work_dir, deploy_cfg, device)` with rdeploy's graph passes
/// in front. Returns the backend's files and the pass records.
///
/// # Errors
/// As [`deploy`] for the conversion steps.
pub fn to_backend(
    backend: &dyn BackendManager,
    ir_file: &Path,
    deploy_cfg: &DeployConfig,
    out_dir: &Path,
    device: &Device,
) -> Result<(Vec<PathBuf>, Vec<PassRecord>)> {
    backend.ensure_available()?;
    let passes = backend_passes(
        backend,
        deploy_cfg,
        &PassRegistry::builtin(),
        &RewriteRegistry::builtin(),
    )?;
    let model = if passes.is_empty() {
        None
    } else {
        Some(rdeploy_core::onnx::load(ir_file)?)
    };
    let name = ir_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "end2end.onnx".into());
    let staged = Staged {
        backend,
        backend_passes: &passes,
        staging: out_dir,
        work_dir: out_dir,
        device,
        deploy_cfg,
        model_path: ir_file,
        ir_name: &name,
    };
    match model {
        Some(m) => staged.convert(&m).map(|c| (c.files, c.records)),
        None => {
            let files =
                backend.to_backend(&[ir_file.to_path_buf()], deploy_cfg, out_dir, device)?;
            Ok((files, Vec::new()))
        }
    }
}

/// The merged config for the backend, with `backend_config.custom_ops` made absolute
/// (relative paths resolve against the config file's folder, see [`Config::custom_ops`]), and
/// those libraries. The manifest keeps this config, so it names the libraries deployed from.
fn with_resolved_custom_ops(config: &Config) -> Result<(DeployConfig, Vec<PathBuf>)> {
    let mut cfg = config.deploy_config();
    let libs = config
        .custom_ops()
        .map_err(|e| locate_config_error(e, config))?;
    if libs.is_empty() {
        return Ok((cfg, libs));
    }
    let strings = libs
        .iter()
        .map(|p| {
            p.to_str()
                .map(|s| serde_json::Value::String(s.to_string()))
                .ok_or_else(|| {
                    locate_config_error(
                        Error::config_key(
                            "backend_config.custom_ops",
                            format!(
                                "{} is not a UTF-8 path; move the library to one",
                                p.display()
                            ),
                        ),
                        config,
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(be) = cfg
        .0
        .get_mut("backend_config")
        .and_then(serde_json::Value::as_object_mut)
    {
        be.insert("custom_ops".into(), serde_json::Value::Array(strings));
    }
    Ok((cfg, libs))
}

/// `deploy_cfg` with `names` added to `backend_config.common_config.node_block_list`.
fn with_node_block_list(deploy_cfg: &DeployConfig, names: &[String]) -> DeployConfig {
    let mut cfg = deploy_cfg.clone();
    if names.is_empty() {
        return cfg;
    }
    let Some(root) = cfg.0.as_object_mut() else {
        return cfg;
    };
    let be = root
        .entry("backend_config")
        .or_insert_with(|| serde_json::json!({}));
    let Some(be) = be.as_object_mut() else {
        return cfg;
    };
    let common = be
        .entry("common_config")
        .or_insert_with(|| serde_json::json!({}));
    let Some(common) = common.as_object_mut() else {
        return cfg;
    };
    let list = common
        .entry("node_block_list")
        .or_insert_with(|| serde_json::json!([]));
    if !list.is_array() {
        *list = serde_json::json!([]);
    }
    if let Some(a) = list.as_array_mut() {
        a.extend(names.iter().map(|n| serde_json::Value::String(n.clone())));
    }
    cfg
}

/// Shapes the config gives for checking a deploy: OpenVINO's `opt_shapes` or TensorRT-style
/// `input_shapes[name].opt_shape` from the first `backend_config.model_inputs` entry.
fn opt_shapes(config: &Config) -> Result<std::collections::BTreeMap<String, Vec<u64>>> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(first) = config.model_inputs()?.into_iter().next() {
        for (name, shape) in first.opt_shapes {
            out.insert(name, shape);
        }
        for (name, range) in first.input_shapes {
            if let Some(opt) = range.opt {
                out.entry(name).or_insert(opt);
            }
        }
    }
    Ok(out)
}

/// A work dir must name a directory of its own: not empty, not a file system root, not a file.
fn check_work_dir(work_dir: &Path) -> Result<()> {
    let bad = |msg: &str| Error::WorkDir {
        path: work_dir.to_path_buf(),
        msg: msg.to_string(),
    };
    if work_dir.as_os_str().is_empty() {
        return Err(bad(
            "the work dir is an empty path; name a directory for the deploy (it is created)",
        ));
    }
    let abs =
        std::path::absolute(work_dir).map_err(|e| Error::io("cannot resolve", work_dir, e))?;
    if abs.parent().is_none() {
        return Err(bad(
            "a file system root cannot be a work dir; name a directory for the deploy",
        ));
    }
    if abs.exists() && !abs.is_dir() {
        return Err(bad(
            "exists and is not a directory; name a directory for the deploy",
        ));
    }
    Ok(())
}

/// Puts the top-level key's file and line on a config error that has only a key.
fn locate_config_error(e: Error, config: &Config) -> Error {
    match e {
        Error::Config {
            file: None,
            key: Some(key),
            msg,
            ..
        } => {
            let top = key.split(['.', '[']).next().unwrap_or(&key).to_string();
            let (file, line) = config
                .origins
                .get(&top)
                .cloned()
                .unwrap_or((config.path.clone(), None));
            Error::Config {
                file: Some(file),
                line,
                col: None,
                key: Some(key),
                msg,
            }
        }
        other => other,
    }
}

/// Errors from staged files name the staging dir; users know the work dir.
fn unstage_paths(e: Error, staging: &Path, work_dir: &Path) -> Error {
    let (from, to) = (
        staging.display().to_string(),
        work_dir.display().to_string(),
    );
    match e {
        Error::Backend {
            backend,
            msg,
            source,
        } => Error::Backend {
            backend,
            msg: msg.replace(&from, &to),
            source,
        },
        Error::Model { path, msg, source } => Error::Model {
            path: work_dir.join(path.strip_prefix(staging).unwrap_or(&path)),
            msg: msg.replace(&from, &to),
            source,
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
        Error::Config {
            file,
            line,
            col,
            key,
            msg,
        } => Error::Config {
            file,
            line,
            col,
            key,
            msg: msg.replace(&from, &to),
        },
        other => other,
    }
}

/// What [`Staged::convert`] produced.
struct Converted {
    files: Vec<PathBuf>,
    records: Vec<PassRecord>,
    /// The signature of the file the backend converted, when backend passes changed it.
    signature: Option<rdeploy_core::onnx::ModelInfo>,
}

/// One conversion in a staging dir.
struct Staged<'a> {
    backend: &'a dyn BackendManager,
    backend_passes: &'a [Arc<dyn Pass>],
    staging: &'a Path,
    work_dir: &'a Path,
    device: &'a Device,
    deploy_cfg: &'a DeployConfig,
    model_path: &'a Path,
    /// The IR file's name (`onnx_config.save_file`).
    ir_name: &'a str,
}

impl Staged<'_> {
    /// Writes the IR, runs the backend's passes into `<stem>.<passes>.onnx`, and converts.
    fn convert(&self, model: &ModelProto) -> Result<Converted> {
        let ir = self.staging.join(self.ir_name);
        if ir != self.model_path {
            rdeploy_core::onnx::save(model, &ir)?;
        }
        let mut records = Vec::new();
        let mut input = ir.clone();
        let mut signature = None;
        // Passes that would leave the model as it is are not run (nor is the model copied).
        let passes: Vec<Arc<dyn Pass>> = self
            .backend_passes
            .iter()
            .filter(|p| !p.is_noop(model))
            .cloned()
            .collect();
        if !passes.is_empty() {
            let mut edited = model.clone();
            let cx = PassContext {
                model_path: self.model_path,
                deploy_cfg: self.deploy_cfg,
            };
            records = rdeploy_onnx::run_passes(&mut edited, &passes, "backend", &cx)?;
            // `end2end.fp16.onnx`: the IR's stem, then the passes that changed it.
            let changed: Vec<&str> = records
                .iter()
                .filter(|r| r.outcome.changed)
                .map(|r| r.name.as_str())
                .collect();
            if !changed.is_empty() {
                let stem = Path::new(self.ir_name)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "end2end".into());
                input = self
                    .staging
                    .join(format!("{stem}.{}.onnx", changed.join(".")));
                rdeploy_core::onnx::save(&edited, &input)?;
                // What the backend's file takes and returns (fp16 with keep_io_types=False
                // takes float16).
                signature = Some(
                    rdeploy_core::onnx::inspect(&edited).map_err(|m| Error::model(&input, m))?,
                );
            }
        }
        tracing::info!("converting for {}", self.backend.name());
        let files = self.backend.to_backend(
            std::slice::from_ref(&input),
            self.deploy_cfg,
            self.staging,
            self.device,
        )?;
        Ok(Converted {
            files,
            records,
            signature,
        })
    }

    /// Moves the staged files into the work dir and writes the manifest last.
    fn commit(&self, files: &[PathBuf], mut manifest: Manifest) -> Result<Manifest> {
        // Every backend file must be inside the work dir (staged, or the IR itself).
        let mut rel_files = Vec::new();
        for f in files {
            let rel = f.strip_prefix(self.staging).map_err(|_| {
                Error::backend(
                    self.backend.name(),
                    format!("to_backend returned {} outside the work dir", f.display()),
                )
            })?;
            rel_files.push(rel.to_path_buf());
        }
        // Drop the old manifest first (a crash from here on leaves no manifest, never a manifest
        // that disagrees with the files), move files in, write the manifest last.
        let manifest_path = self.work_dir.join(MANIFEST);
        match std::fs::remove_file(&manifest_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("cannot replace", &manifest_path, e)),
        }
        let mut to_move: Vec<PathBuf> = vec![PathBuf::from(self.ir_name)];
        for r in &rel_files {
            if !to_move.contains(r) {
                to_move.push(r.clone());
            }
        }
        let mut entries = Vec::new();
        for rel in &to_move {
            let from = self.staging.join(rel);
            let to = self.work_dir.join(rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io("cannot create", parent, e))?;
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
        manifest.ir_file = entries[0].clone();
        manifest.backend_files = rel_files
            .iter()
            .filter_map(|r| entries.iter().find(|e| Path::new(&e.path) == r).cloned())
            .collect();
        let text =
            serde_json::to_string_pretty(&manifest).map_err(|e| Error::backend("rdeploy", e))?;
        rdeploy_core::atomic::write_atomic(&manifest_path, |w| w.write_all(text.as_bytes()))
            .map_err(|e| Error::io("cannot write", &manifest_path, e))?;
        Ok(manifest)
    }
}

/// The graph passes a deploy for `backend` runs, on a model file alone (`rdeploy rewrite`):
/// [`backend_passes`], or only the passes and rules named in `only` (`opset_upgrade`, rule
/// names, `fp16`), in that order. No engine is needed.
///
/// # Errors
/// [`Error::Model`] for a model that cannot be read or rewritten; [`Error::Config`] naming
/// `--passes` for a name that is neither a pass nor a rule.
pub fn rewrite_model(
    backend: &dyn BackendManager,
    model_path: &Path,
    deploy_cfg: &DeployConfig,
    only: Option<&[String]>,
    rewrites: &RewriteRegistry,
) -> Result<(ModelProto, Vec<PassRecord>)> {
    let passes = PassRegistry::builtin();
    let list: Vec<Arc<dyn Pass>> = match only {
        None => backend_passes(backend, deploy_cfg, &passes, rewrites)?,
        Some(names) => {
            let requests = backend.ir_passes(deploy_cfg)?;
            let mut list: Vec<Arc<dyn Pass>> = Vec::new();
            let mut rules = Vec::new();
            for n in names {
                if let Some(r) = rewrites.rules().iter().find(|r| r.name() == n) {
                    rules.push(r.clone());
                    continue;
                }
                if let Some((p, _)) = rewrites.passes().iter().find(|(p, _)| p.name() == n) {
                    list.push(p.clone());
                    continue;
                }
                if !passes.names().contains(&n.as_str()) {
                    return Err(Error::config_key(
                        "--passes",
                        format!(
                            "'{n}' is neither a pass ({}) nor a rewrite rule (`rdeploy rewrite --list`)",
                            passes.names().join(", ")
                        ),
                    ));
                }
                let req = requests
                    .iter()
                    .find(|r| &r.name == n)
                    .cloned()
                    .unwrap_or_else(|| PassRequest::new(n.clone()));
                list.push(passes.resolve(&req, deploy_cfg)?);
            }
            if !rules.is_empty() {
                list.push(Arc::new(RewritePass { rules }));
            }
            list
        }
    };
    let mut model = rdeploy_core::onnx::load(model_path)?;
    let cx = PassContext {
        model_path,
        deploy_cfg,
    };
    let records = rdeploy_onnx::run_passes(&mut model, &list, "backend", &cx)?;
    Ok((model, records))
}
