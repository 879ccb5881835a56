//! rdeploy's ONNX Runtime backend: the [`ort`] crate with `libonnxruntime` loaded at run time,
//! so rdeploy builds and runs without ONNX Runtime and uses it when present.
//!
//! ```no_run
//! use rdeploy_core::{DeployConfig, Device, Registry};
//! let mut registry = Registry::new();
//! registry.install(&rdeploy_backend_ort::BACKEND)?;
//! let ort = registry.get("onnxruntime")?;
//! println!("{}", ort.check_env_line()); // onnxruntime: 1.32.0 ... or None (reason)
//! # Ok::<(), rdeploy_core::Error>(())
//! ```
//!
//! Loading: `ORT_DYLIB_PATH`, else the `onnxruntime` pip package of the active Python
//! environment, else system library folders ([`locate`]). The library's version is read with
//! `OrtGetApiBase()->GetVersionString()` before `ort` touches it, so an old or broken library is
//! an error with both versions named, never a panic. One ONNX Runtime environment exists per
//! process, created on first use.
//!
//! Wrapper: a session is built once and reused. `ort` needs `&mut Session` to run, so the
//! wrapper keeps a small pool (`backend_config.session_pool_size`, default 1): concurrent
//! `forward` calls are safe, and run in parallel when the pool has more than one session.
//! Inputs are passed to ONNX Runtime as views of rdeploy's buffers, without copies.
//!
//! Custom operators: `backend_config.custom_ops = ['libmyops.so']` names shared libraries that
//! ONNX Runtime loads into every session (`RegisterCustomOpsLibrary`; the library exports
//! `RegisterCustomOps`). `to_backend` copies them into the work dir's `custom_ops/` folder and
//! lists them after the model among the backend files, so a work dir carries its libraries and
//! loads the same way from any folder; `build_wrapper` loads the libraries among its files, or
//! the configured ones when it is given the model alone.

#![deny(unsafe_op_in_unsafe_fn)]

mod custom_ops;
pub mod locate;

use ort::session::{Session, builder::GraphOptimizationLevel};
use ort::value::{DynValue, TensorElementType, TensorRef, ValueType};
use rdeploy_core::{
    BackendDescriptor, BackendManager, DType, DeployConfig, Device, Error, Result, Signature,
    Tensor, TensorInfo, Wrapper,
};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The backend's registered name (MMDeploy's `Backend.ONNXRUNTIME`).
pub const NAME: &str = "onnxruntime";

/// The descriptor the CLI (or any registry) installs.
pub const BACKEND: BackendDescriptor = BackendDescriptor {
    name: NAME,
    aliases: &["ort"],
    create: || Arc::new(OrtBackend),
};

/// The ONNX Runtime backend manager.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrtBackend;

/// The loaded library: where it came from, its version, its execution providers.
#[derive(Debug)]
struct Runtime {
    found: locate::Found,
    providers: Vec<String>,
    env: ort::environment::Environment,
}

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

fn runtime() -> std::result::Result<&'static Runtime, String> {
    RUNTIME
        .get_or_init(|| {
            let found = locate::locate()?;
            let init = rdeploy_core::guard::catch_engine_panic(NAME, "loading", || {
                let builder = ort::init_from(&found.path).map_err(|e| {
                    Error::backend(NAME, format!("cannot load {}: {e}", found.path.display()))
                })?;
                builder
                    .with_name("rdeploy")
                    .with_telemetry(false)
                    .build()
                    .map_err(|e| {
                        Error::backend(NAME, format!("cannot create the environment: {e}"))
                    })
            });
            // The environment lives in this static for the whole process: one per process.
            let env = init.map_err(|e| e.to_string())?;
            let providers = available_providers();
            tracing::debug!(
                "ONNX Runtime {} from {} ({})",
                found.version,
                found.path.display(),
                found.source
            );
            Ok(Runtime {
                found,
                providers,
                env,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The process's ONNX Runtime environment (created on first use), for code that builds its own
/// `ort` sessions beside rdeploy's, such as benchmarks comparing against bare `ort`.
///
/// # Errors
/// [`Error::BackendUnavailable`] with the reason when the library cannot be loaded.
pub fn environment() -> Result<&'static ort::environment::Environment> {
    runtime()
        .map(|r| &r.env)
        .map_err(|reason| Error::BackendUnavailable {
            backend: NAME.into(),
            reason,
        })
}

fn available_providers() -> Vec<String> {
    use ort::ep::ExecutionProvider;
    let mut v = Vec::new();
    type Probe = fn() -> ort::Result<bool>;
    let known: [(&str, Probe); 4] = [
        ("CPUExecutionProvider", ort::ep::CPU::is_available),
        ("CUDAExecutionProvider", ort::ep::CUDA::is_available),
        ("TensorrtExecutionProvider", ort::ep::TensorRT::is_available),
        ("OpenVINOExecutionProvider", ort::ep::OpenVINO::is_available),
    ];
    for (name, avail) in known {
        if avail().unwrap_or(false) {
            v.push(name.to_string());
        }
    }
    v
}

fn ort_err(what: &str, e: impl Into<rdeploy_core::BoxError>) -> Error {
    Error::engine(NAME, what, e)
}

/// The key naming custom-op libraries.
const CUSTOM_OPS_KEY: &str = "backend_config.custom_ops";
/// The work dir folder holding the copies of the custom-op libraries.
const CUSTOM_OPS_DIR: &str = "custom_ops";

/// `backend_config.custom_ops`: a path or a list of paths. Relative paths resolve against the
/// current directory here; the deploy pipeline has already resolved them against the config
/// file's folder.
fn custom_ops(cfg: &DeployConfig) -> Result<Vec<PathBuf>> {
    let items: Vec<&Json> = match cfg.get(CUSTOM_OPS_KEY) {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(one @ Json::String(_)) => vec![one],
        Some(Json::Array(items)) => items.iter().collect(),
        Some(other) => {
            return Err(Error::config_key(
                CUSTOM_OPS_KEY,
                format!(
                    "must be a list of library paths, e.g. custom_ops=['libmyops.so'], not {other}"
                ),
            ));
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v.as_str() {
            Some(s) if !s.trim().is_empty() => std::path::absolute(s)
                .map_err(|e| Error::io("cannot resolve the custom-op library", s, e)),
            _ => Err(Error::config_key(
                format!("{CUSTOM_OPS_KEY}[{i}]"),
                format!("must be a non-empty path to a shared library, not {v}"),
            )),
        })
        .collect()
}

/// Fails unless `lib` is a readable regular file, naming it and the key.
fn check_library(lib: &Path) -> Result<()> {
    rdeploy_core::files::regular_file_size(lib)
        .map(|_| ())
        .map_err(|why| {
            Error::config_key(
                CUSTOM_OPS_KEY,
                format!(
                    "the custom-op library {}: {why} (relative paths resolve against the config file's folder)",
                    lib.display()
                ),
            )
        })
}

/// Copies the custom-op libraries into `work_dir/custom_ops/`, one file name each (a name
/// taken twice gets its index in front), and returns the copies.
fn copy_libraries(libs: &[PathBuf], work_dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = work_dir.join(CUSTOM_OPS_DIR);
    if !libs.is_empty() {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    }
    let mut out: Vec<PathBuf> = Vec::with_capacity(libs.len());
    for (i, lib) in libs.iter().enumerate() {
        let name = lib
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("custom_ops_{i}"));
        let mut to = dir.join(&name);
        if out.contains(&to) {
            to = dir.join(format!("{i}-{name}"));
        }
        // Copying a file onto itself would empty it (a config naming the copy, say).
        let same = |a: &Path, b: &Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y);
        if same(lib, &to) {
            out.push(to);
            continue;
        }
        std::fs::copy(lib, &to)
            .map_err(|e| Error::io("cannot copy the custom-op library to", &to, e))?;
        out.push(to);
    }
    Ok(out)
}

/// Domains whose operators ONNX Runtime implements itself.
const BUILTIN_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.preview.training",
    "ai.onnx.training",
    "com.microsoft",
    "com.microsoft.nchwc",
    "com.microsoft.experimental",
    "com.ms.internal.nhwc",
    "org.pytorch.aten",
];

/// The `domain::Op` operators of the model at `path` that only a custom-op library can provide
/// (outside ONNX Runtime's own domains, and not functions the model defines), sorted, once
/// each.
fn custom_domain_ops(path: &Path, include_rdeploy_ops: bool) -> Vec<String> {
    let Ok(model) = rdeploy_core::onnx::load(path) else {
        return Vec::new();
    };
    let local = |d: &str, op: &str| {
        model
            .functions
            .iter()
            .any(|f| f.domain() == d && f.name() == op)
    };
    let mut ops: Vec<String> = model
        .graph
        .iter()
        .flat_map(|g| &g.node)
        .filter(|n| !BUILTIN_DOMAINS.contains(&n.domain()) && !local(n.domain(), n.op_type()))
        // rdeploy's own kernels (the mmdeploy/mmcv domains) need no library, unless a
        // library took their domain.
        .filter(|n| include_rdeploy_ops || rdeploy_ops::find(n.domain(), n.op_type()).is_none())
        .map(|n| format!("{}::{}", n.domain(), n.op_type()))
        .collect();
    ops.sort();
    ops.dedup();
    ops
}

/// The error for a model ONNX Runtime cannot load; when it lacks operators that only a
/// custom-op library provides, says which and where to name the library.
fn model_load_error(path: &Path, libs: &[PathBuf], e: &dyn std::fmt::Display) -> Error {
    let text = e.to_string();
    let mut msg = format!("ONNX Runtime cannot load it: {text}");
    // ONNX Runtime names a missing op `domain:op`; one of rdeploy's is missing only when a
    // library took its domain.
    let rdeploy_op_missing = rdeploy_ops::all()
        .iter()
        .any(|d| text.contains(&format!("{}:{}(", d.domain, d.op_type)));
    let custom = custom_domain_ops(path, !libs.is_empty() && rdeploy_op_missing);
    let named = custom.iter().any(|op| {
        op.rsplit("::")
            .next()
            .is_some_and(|name| text.contains(name))
    });
    if !custom.is_empty() && (named || text.contains("not a registered function/op")) {
        msg.push_str(&format!(
            ". The model uses operators that only a custom-op library provides: {}. ",
            custom.join(", ")
        ));
        if libs.is_empty() {
            msg.push_str(&format!(
                "Name the library that implements them in {CUSTOM_OPS_KEY}, e.g. backend_config = dict(type='onnxruntime', custom_ops=['path/to/libmyops.so'])"
            ));
        } else {
            let names: Vec<String> = libs.iter().map(|l| l.display().to_string()).collect();
            msg.push_str(&format!(
                "The libraries of {CUSTOM_OPS_KEY} ({}) did not register them all: add the library that implements them",
                names.join(", ")
            ));
            if custom.iter().any(|op| {
                op.split_once("::")
                    .is_some_and(|(d, o)| rdeploy_ops::find(d, o).is_some())
            }) {
                msg.push_str(
                    ". rdeploy's own kernels of the mmdeploy/mmcv ops stepped aside because a library registers the same domain (MMDeploy's op library does): that library must provide them all",
                );
            }
        }
    }
    Error::model(path, msg)
}

/// The session settings a deploy config gives (`backend_config.common_config`, MMDeploy's keys
/// and ONNX Runtime's own names).
#[derive(Clone, Debug, Default, PartialEq)]
struct SessionSettings {
    intra_threads: Option<usize>,
    inter_threads: Option<usize>,
    opt_level: Option<GraphOptimizationLevel>,
    parallel: Option<bool>,
    mem_pattern: Option<bool>,
    pool_size: usize,
    /// ONNX Runtime's profiler on, writing `<prefix>_<time>.json` ([`OrtWrapper::profile`]).
    profile_prefix: Option<PathBuf>,
}

fn settings(cfg: &DeployConfig) -> Result<SessionSettings> {
    let common = cfg.get("backend_config.common_config");
    let get = |k: &str| {
        common
            .and_then(|c| c.get(k))
            .or_else(|| cfg.get(&format!("backend_config.{k}")))
    };
    let bad = |k: &str, want: &str, v: &Json| {
        Error::config_key(
            format!("backend_config.common_config.{k}"),
            format!("must be {want}, not {v}"),
        )
    };
    let count = |k: &str| -> Result<Option<usize>> {
        match get(k) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| bad(k, "a non-negative int (0 = ONNX Runtime's default)", v)),
        }
    };
    let flag = |k: &str| -> Result<Option<bool>> {
        match get(k) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(bad(k, "True or False", v)),
        }
    };
    let opt_level = match get("graph_optimization_level") {
        None | Some(Json::Null) => None,
        Some(v) => Some(match (v.as_str(), v.as_u64()) {
            (Some("disable" | "ORT_DISABLE_ALL"), _) | (_, Some(0)) => {
                GraphOptimizationLevel::Disable
            }
            (Some("basic" | "ORT_ENABLE_BASIC"), _) | (_, Some(1)) => {
                GraphOptimizationLevel::Level1
            }
            (Some("extended" | "ORT_ENABLE_EXTENDED"), _) | (_, Some(2)) => {
                GraphOptimizationLevel::Level2
            }
            (Some("all" | "ORT_ENABLE_ALL"), _) | (_, Some(99 | 3)) => GraphOptimizationLevel::All,
            _ => {
                return Err(bad(
                    "graph_optimization_level",
                    "one of 'disable', 'basic', 'extended', 'all' (or 0, 1, 2, 99)",
                    v,
                ));
            }
        }),
    };
    let parallel = match get("execution_mode") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) if s.eq_ignore_ascii_case("sequential") || s == "ORT_SEQUENTIAL" => {
            Some(false)
        }
        Some(Json::String(s)) if s.eq_ignore_ascii_case("parallel") || s == "ORT_PARALLEL" => {
            Some(true)
        }
        Some(v) => return Err(bad("execution_mode", "'sequential' or 'parallel'", v)),
    };
    let pool_size = count("session_pool_size")?.unwrap_or(1).max(1);
    Ok(SessionSettings {
        intra_threads: count("intra_op_num_threads")?,
        inter_threads: count("inter_op_num_threads")?,
        opt_level,
        parallel,
        mem_pattern: flag("enable_mem_pattern")?,
        pool_size,
        profile_prefix: None,
    })
}

fn build_session(
    path: &Path,
    device: &Device,
    s: &SessionSettings,
    libs: &[PathBuf],
    save_optimized: Option<&Path>,
) -> Result<Session> {
    // rdeploy's mmdeploy/mmcv kernels sit beside the config's libraries; a library that
    // registers one of those domains itself (MMDeploy's libmmdeploy_onnxruntime_ops.so) makes
    // ONNX Runtime refuse the pair ("Domain already set in registry"), and then its kernels
    // take the place of rdeploy's.
    match session_with(path, device, s, libs, save_optimized, true) {
        Err(e) if !libs.is_empty() && e.to_string().contains("Domain already set") => {
            tracing::info!(
                "onnxruntime: a custom_ops library registers the mmdeploy/mmcv domain itself; its kernels replace rdeploy's"
            );
            session_with(path, device, s, libs, save_optimized, false)
        }
        r => r,
    }
}

fn session_with(
    path: &Path,
    device: &Device,
    s: &SessionSettings,
    libs: &[PathBuf],
    save_optimized: Option<&Path>,
    builtin_ops: bool,
) -> Result<Session> {
    rdeploy_core::guard::catch_engine_panic(NAME, "creating a session", || {
        let rt = runtime().map_err(|reason| Error::BackendUnavailable {
            backend: NAME.into(),
            reason,
        })?;
        let mut b = Session::builder(&rt.env).map_err(|e| ort_err("session options", e))?;
        let step = |what: &str, e: ort::Error| ort_err(what, e);
        if let Some(n) = s.intra_threads {
            b = b
                .with_intra_threads(n)
                .map_err(|e| step("intra_op_num_threads", e.into()))?;
        }
        if let Some(n) = s.inter_threads {
            b = b
                .with_inter_threads(n)
                .map_err(|e| step("inter_op_num_threads", e.into()))?;
        }
        if let Some(l) = s.opt_level {
            b = b
                .with_optimization_level(l)
                .map_err(|e| step("graph_optimization_level", e.into()))?;
        }
        if let Some(p) = s.parallel {
            b = b
                .with_parallel_execution(p)
                .map_err(|e| step("execution_mode", e.into()))?;
        }
        if let Some(m) = s.mem_pattern {
            b = b
                .with_memory_pattern(m)
                .map_err(|e| step("enable_mem_pattern", e.into()))?;
        }
        for lib in libs {
            b = b.with_operator_library(lib).map_err(|e| {
                Error::config_key(
                    CUSTOM_OPS_KEY,
                    format!(
                        "ONNX Runtime cannot load the custom-op library {}: {e}. It must be a shared library for this platform that exports RegisterCustomOps (ONNX Runtime's custom-op entry point), built against the C API of ONNX Runtime {} or older",
                        lib.display(),
                        runtime().map(|r| r.found.version.as_str()).unwrap_or("(the one loaded)")
                    ),
                )
            })?;
        }
        if let Some(p) = save_optimized {
            b = b
                .with_optimized_model_path(p)
                .map_err(|e| step("optimized_model_filepath", e.into()))?;
        }
        if let Some(p) = &s.profile_prefix {
            b = b
                .with_profiling(p)
                .map_err(|e| step("enable_profiling", e.into()))?;
        }
        if device.kind() == "cuda" {
            let id = i32::try_from(device.index().unwrap_or(0)).unwrap_or(0);
            let ep = ort::ep::CUDA::default()
                .with_device_id(id)
                .build()
                .error_on_failure();
            b = b
                .with_execution_providers([ep])
                .map_err(|e| step("the CUDA execution provider", e.into()))?;
        }
        // MMDeploy's and mmcv's custom ops (the `mmdeploy`/`mmcv` domains), built in.
        let builtin = if builtin_ops {
            custom_ops::domains().map_err(|e| ort_err("rdeploy's custom-op domains", e))?
        } else {
            Vec::new()
        };
        for d in builtin {
            b = b
                .with_operators(d)
                .map_err(|e| step("rdeploy's custom-op domains", e.into()))?;
        }
        // ONNX Runtime registers a session's custom-op domains in onnx's process-wide schema
        // table with a check-then-add that races: two sessions created at once fail with
        // "the domain is already exist". Session creation is serialised for that reason.
        static SESSION_INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _init = SESSION_INIT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        b.commit_from_file(path)
            .map_err(|e| model_load_error(path, libs, &e))
    })
}

enum Precision {
    Fp32,
    Fp16,
}

/// `backend_config.precision` (MMDeploy's `onnxruntime-fp16.py` sets `'fp16'`).
fn precision(cfg: &DeployConfig) -> Result<Precision> {
    match cfg.get_str("backend_config.precision") {
        None | Some("fp32") => Ok(Precision::Fp32),
        Some("fp16") => Ok(Precision::Fp16),
        Some(other) => Err(Error::config_key(
            "backend_config.precision",
            format!("'{other}' is not supported by onnxruntime; use 'fp32' or 'fp16'"),
        )),
    }
}

fn check_device(device: &Device) -> Result<()> {
    device.ensure_supported(NAME, &["cpu", "cuda"])?;
    if device.kind() == "cuda" {
        let rt = runtime().map_err(|reason| Error::BackendUnavailable {
            backend: NAME.into(),
            reason,
        })?;
        if !rt.providers.iter().any(|p| p == "CUDAExecutionProvider") {
            return Err(Error::Device {
                device: device.to_string(),
                msg: format!(
                    "the ONNX Runtime at {} has no CUDAExecutionProvider (it has {}); install onnxruntime-gpu, or use --device cpu",
                    rt.found.path.display(),
                    rt.providers.join(", ")
                ),
            });
        }
    }
    Ok(())
}

impl BackendManager for OrtBackend {
    fn name(&self) -> &str {
        NAME
    }

    fn check(&self) -> rdeploy_core::Availability {
        runtime().map(|r| r.found.version.clone())
    }

    fn check_env_line(&self) -> String {
        match runtime() {
            Ok(r) => {
                let has = |p: &str| r.providers.iter().any(|x| x == p);
                let gpu = if has("CUDAExecutionProvider") {
                    format!(
                        "GPU: CUDA{}",
                        if has("TensorrtExecutionProvider") {
                            " + TensorRT"
                        } else {
                            ""
                        }
                    )
                } else {
                    "GPU: no (CPU-only package; pip install onnxruntime-gpu for CUDA/TensorRT)"
                        .to_string()
                };
                format!(
                    "{NAME}:\t{} (from {}: {}; providers: {}; {gpu})",
                    r.found.version,
                    r.found.source,
                    r.found.path.display(),
                    r.providers.join(", ")
                )
            }
            Err(reason) => format!("{NAME}:\tNone ({reason})"),
        }
    }

    fn custom_ops(&self) -> Vec<String> {
        custom_ops::names()
    }

    fn device_kinds(&self) -> &[&str] {
        &["cpu", "cuda"]
    }

    fn ir_passes(&self, deploy_cfg: &DeployConfig) -> Result<Vec<rdeploy_core::PassRequest>> {
        Ok(match precision(deploy_cfg)? {
            Precision::Fp32 => Vec::new(),
            Precision::Fp16 => vec![rdeploy_core::PassRequest::new("fp16")],
        })
    }

    fn to_backend(
        &self,
        ir_files: &[PathBuf],
        deploy_cfg: &DeployConfig,
        work_dir: &Path,
        device: &Device,
    ) -> Result<Vec<PathBuf>> {
        self.ensure_available()?;
        check_device(device)?;
        let ir = rdeploy_core::single_file(NAME, "onnxruntime's to_backend", ir_files)?;
        let s = settings(deploy_cfg)?;
        // precision='fp16' was applied by the `fp16` graph pass (ir_passes) before this call.
        precision(deploy_cfg)?;
        let model_file = ir.to_path_buf();
        let libs = custom_ops(deploy_cfg)?;
        for lib in &libs {
            check_library(lib)?;
        }
        let save = deploy_cfg
            .get("backend_config.save_optimized_model")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        // Loading once validates the model (unsupported ops, bad shapes) and the custom-op
        // libraries (as configured, so errors name them) at deploy time.
        let model_file = if save {
            // Let ONNX Runtime optimize once now and load the result later without re-optimizing.
            let opt = work_dir.join("end2end.ort-optimized.onnx");
            build_session(&model_file, device, &s, &libs, Some(&opt))?;
            opt
        } else {
            build_session(&model_file, device, &s, &libs, None)?;
            model_file
        };
        // The work dir keeps its own copies, listed after the model: it loads anywhere.
        let mut files = vec![model_file];
        files.extend(copy_libraries(&libs, work_dir)?);
        Ok(files)
    }

    fn build_wrapper(
        &self,
        backend_files: &[PathBuf],
        device: &Device,
        input_names: &[String],
        output_names: &[String],
        deploy_cfg: &DeployConfig,
    ) -> Result<Box<dyn Wrapper>> {
        self.ensure_available()?;
        check_device(device)?;
        let Some((path, copied)) = backend_files.split_first() else {
            return Err(Error::backend(
                NAME,
                "onnxruntime's build_wrapper takes the .onnx file (then any custom-op libraries), got no file",
            ));
        };
        // The libraries among the files (a work dir's copies), else the configured ones.
        let libs = if copied.is_empty() {
            let libs = custom_ops(deploy_cfg)?;
            for lib in &libs {
                check_library(lib)?;
            }
            libs
        } else {
            copied.to_vec()
        };
        let (_, info) = rdeploy_core::onnx::inspect_file(path)?;
        let sig = rdeploy_core::select_signature(
            NAME,
            &info.inputs,
            &info.outputs,
            input_names,
            output_names,
            device,
        )?;
        let mut s = settings(deploy_cfg)?;
        if backend_files
            .first()
            .is_some_and(|p| p.to_string_lossy().ends_with(".ort-optimized.onnx"))
        {
            s.opt_level = Some(GraphOptimizationLevel::Disable);
        }
        let sessions = (0..s.pool_size)
            .map(|_| build_session(path, device, &s, &libs, None).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::new(OrtWrapper {
            sig,
            sessions,
            next: Default::default(),
            source: Source {
                path: path.to_path_buf(),
                device: device.clone(),
                settings: s,
                libs,
            },
        }))
    }
}

/// A model loaded into ONNX Runtime sessions.
pub struct OrtWrapper {
    sig: Signature,
    sessions: Vec<Mutex<Session>>,
    next: std::sync::atomic::AtomicUsize,
    /// What the sessions were built from, for a profiling session.
    source: Source,
}

/// A session's model file, device, settings and custom-op libraries.
struct Source {
    path: PathBuf,
    device: Device,
    settings: SessionSettings,
    libs: Vec<PathBuf>,
}

/// Per-node times from ONNX Runtime's profiling JSON (Chrome trace events): `Node` events
/// named `<node>_kernel_time` with `dur` in microseconds and `args.op_name`, after the first
/// `model_run` (a warm-up), averaged over `runs`.
fn parse_ort_profile(json: &str, runs: usize) -> Result<Vec<rdeploy_core::OpTime>> {
    let events: Vec<Json> = serde_json::from_str(json)
        .map_err(|e| Error::backend(NAME, format!("unreadable profiling JSON: {e}")))?;
    let num = |e: &Json, k: &str| e.get(k).and_then(Json::as_f64).unwrap_or(0.0);
    let warm_end = events
        .iter()
        .filter(|e| e.get("name").and_then(Json::as_str) == Some("model_run"))
        .map(|e| num(e, "ts") + num(e, "dur"))
        .fold(f64::INFINITY, f64::min);
    let mut by_node: Vec<rdeploy_core::OpTime> = Vec::new();
    for e in &events {
        let Some(name) = e.get("name").and_then(Json::as_str) else {
            continue;
        };
        let Some(node) = name.strip_suffix("_kernel_time") else {
            continue;
        };
        if e.get("cat").and_then(Json::as_str) != Some("Node") || num(e, "ts") < warm_end {
            continue;
        }
        let op = e
            .pointer("/args/op_name")
            .and_then(Json::as_str)
            .unwrap_or("?");
        let ms = num(e, "dur") / 1e3 / runs.max(1) as f64;
        match by_node.iter_mut().find(|t| t.node == node) {
            Some(t) => t.ms += ms,
            None => by_node.push(rdeploy_core::OpTime {
                node: node.to_string(),
                op_type: op.to_string(),
                ms,
            }),
        }
    }
    Ok(by_node)
}

impl OrtWrapper {
    /// A free session if there is one, else waits for one in round-robin order.
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        for m in &self.sessions {
            if let Ok(g) = m.try_lock() {
                return g;
            }
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.sessions.len();
        // A poisoned session only means another call panicked mid-run; ONNX Runtime keeps no
        // per-run state in the session, so it is still usable.
        self.sessions[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// ONNX Runtime's element type for a dtype.
fn ort_type(d: DType) -> TensorElementType {
    match d {
        DType::F32 => TensorElementType::Float32,
        DType::F16 => TensorElementType::Float16,
        DType::F64 => TensorElementType::Float64,
        DType::I8 => TensorElementType::Int8,
        DType::I16 => TensorElementType::Int16,
        DType::I32 => TensorElementType::Int32,
        DType::I64 => TensorElementType::Int64,
        DType::U8 => TensorElementType::Uint8,
        DType::U16 => TensorElementType::Uint16,
        DType::U32 => TensorElementType::Uint32,
        DType::U64 => TensorElementType::Uint64,
        DType::Bool => TensorElementType::Bool,
        DType::BF16 => TensorElementType::Bfloat16,
        DType::F8E4M3FN => TensorElementType::Float8E4M3FN,
        DType::F8E4M3FNUZ => TensorElementType::Float8E4M3FNUZ,
        DType::F8E5M2 => TensorElementType::Float8E5M2,
        DType::F8E5M2FNUZ => TensorElementType::Float8E5M2FNUZ,
        DType::F8E8M0 => TensorElementType::Float8E8M0,
        DType::U4 => TensorElementType::Uint4,
        DType::I4 => TensorElementType::Int4,
        DType::F4E2M1 => TensorElementType::Float4E2M1,
        DType::U2 => TensorElementType::Uint2,
        DType::I2 => TensorElementType::Int2,
        DType::Str => TensorElementType::String,
    }
}

/// The dtype of one of ONNX Runtime's element types, if rdeploy holds it.
fn dtype_of(t: TensorElementType) -> Option<DType> {
    DType::ALL.into_iter().find(|&d| ort_type(d) == t)
}

fn to_ort(t: &Tensor) -> Result<ort::session::SessionInputValue<'_>> {
    let shape = t.shape().to_vec();
    let bind = |e| ort_err("binding an input", e);
    match t {
        // Types ort's safe API has no Rust type for: an ONNX Runtime tensor of the element type,
        // filled with the packed bytes.
        Tensor::F8E4M3FN(_)
        | Tensor::F8E4M3FNUZ(_)
        | Tensor::F8E5M2(_)
        | Tensor::F8E5M2FNUZ(_)
        | Tensor::F8E8M0(_)
        | Tensor::U4(_)
        | Tensor::I4(_)
        | Tensor::F4E2M1(_)
        | Tensor::U2(_)
        | Tensor::I2(_) => {
            let bytes = t.to_packed_bytes()?;
            let mut v = ort::value::DynTensor::new(
                &ort::memory::Allocator::default(),
                ort_type(t.dtype()),
                shape,
            )
            .map_err(bind)?;
            if !bytes.is_empty() {
                if v.size() != Some(bytes.len()) {
                    return Err(Error::backend(
                        NAME,
                        format!(
                            "ONNX Runtime sized a {} tensor of shape {:?} at {:?} bytes, rdeploy at {}",
                            t.dtype(),
                            t.shape(),
                            v.size(),
                            bytes.len()
                        ),
                    ));
                }
                let dst = v.data_ptr_mut().cast::<u8>();
                // SAFETY: the tensor was just allocated in CPU memory by the default allocator
                // and holds exactly `bytes.len()` bytes (checked above); the regions are distinct.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
            }
            Ok(v.into())
        }
        Tensor::Str(a) => {
            let data = a
                .as_slice()
                .ok_or_else(|| Error::Tensor("tensor is not contiguous".into()))?;
            ort::value::Tensor::from_string_array((shape, data))
                .map(Into::into)
                .map_err(bind)
        }
        Tensor::F32(a) => view(shape, a),
        Tensor::F16(a) => view(shape, a),
        Tensor::BF16(a) => view(shape, a),
        Tensor::F64(a) => view(shape, a),
        Tensor::I8(a) => view(shape, a),
        Tensor::I16(a) => view(shape, a),
        Tensor::I32(a) => view(shape, a),
        Tensor::I64(a) => view(shape, a),
        Tensor::U8(a) => view(shape, a),
        Tensor::U16(a) => view(shape, a),
        Tensor::U32(a) => view(shape, a),
        Tensor::U64(a) => view(shape, a),
        Tensor::Bool(a) => view(shape, a),
    }
}

/// A zero-copy ONNX Runtime view of a tensor of one of ort's Rust element types.
fn view<T: ort::value::PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static>(
    shape: Vec<usize>,
    a: &ndarray::ArrayD<T>,
) -> Result<ort::session::SessionInputValue<'_>> {
    let data = a
        .as_slice()
        .ok_or_else(|| Error::Tensor("tensor is not contiguous".into()))?;
    TensorRef::from_array_view((shape, data))
        .map(Into::into)
        .map_err(|e| ort_err("binding an input", e))
}

fn from_ort(v: &DynValue, spec: &TensorInfo) -> Result<Tensor> {
    fn get<T: ort::value::PrimitiveTensorElementType + rdeploy_core::Element>(
        v: &DynValue,
    ) -> Result<Tensor> {
        let (shape, data) = v
            .try_extract_tensor::<T>()
            .map_err(|e| ort_err("reading an output", e))?;
        let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
        Tensor::from_shape_vec(&shape, data.to_vec())
    }
    let (ty, shape) = match v.dtype() {
        ValueType::Tensor { ty, shape, .. } => (
            *ty,
            shape
                .iter()
                .map(|&d| d.max(0) as usize)
                .collect::<Vec<usize>>(),
        ),
        other => {
            return Err(Error::backend(
                NAME,
                format!("output '{}' is a {other:?}, not a tensor", spec.name),
            ));
        }
    };
    let dtype = dtype_of(ty).ok_or_else(|| {
        Error::backend(
            NAME,
            format!(
                "output '{}' has element type {ty}, which rdeploy cannot hold",
                spec.name
            ),
        )
    })?;
    match dtype {
        DType::F32 => get::<f32>(v),
        DType::F16 => get::<half::f16>(v),
        DType::BF16 => get::<half::bf16>(v),
        DType::F64 => get::<f64>(v),
        DType::I8 => get::<i8>(v),
        DType::I16 => get::<i16>(v),
        DType::I32 => get::<i32>(v),
        DType::I64 => get::<i64>(v),
        DType::U8 => get::<u8>(v),
        DType::U16 => get::<u16>(v),
        DType::U32 => get::<u32>(v),
        DType::U64 => get::<u64>(v),
        DType::Bool => get::<bool>(v),
        DType::Str => {
            let (shape, data) = v
                .try_extract_strings()
                .map_err(|e| ort_err("reading an output", e))?;
            let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
            Tensor::from_strings(&shape, data)
        }
        DType::F8E4M3FN
        | DType::F8E4M3FNUZ
        | DType::F8E5M2
        | DType::F8E5M2FNUZ
        | DType::F8E8M0
        | DType::U4
        | DType::I4
        | DType::F4E2M1
        | DType::U2
        | DType::I2 => {
            let count = rdeploy_core::files::checked_bytes(&shape, 1)
                .map_err(|m| Error::backend(NAME, format!("output '{}': {m}", spec.name)))?;
            let len = dtype.packed_len(count).unwrap_or(0);
            if len == 0 {
                return Ok(Tensor::zeros(dtype, &shape));
            }
            let tensor = v
                .view()
                .downcast::<ort::value::DynTensorValueType>()
                .map_err(|e| ort_err("reading an output", e))?;
            let ptr = tensor.data_ptr().cast::<u8>();
            if ptr.is_null() {
                return Err(Error::backend(
                    NAME,
                    format!("output '{}' has no data buffer", spec.name),
                ));
            }
            // SAFETY: ONNX Runtime's outputs live in CPU memory (the session binds them to the
            // default allocator); a tensor of this element type and shape holds `len` bytes
            // (packed 4-bit types: half a byte each, 2-bit ones a quarter, rounded up), and `v`
            // outlives the borrow.
            let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
            Tensor::from_packed_bytes(dtype, &shape, bytes)
        }
    }
}

impl Wrapper for OrtWrapper {
    fn backend(&self) -> &str {
        NAME
    }

    /// A session like this wrapper's with ONNX Runtime's profiler on (`enable_profiling`):
    /// one warm-up call, then `runs` calls; the profile's kernel times per node.
    fn profile(&self, inputs: Vec<Tensor>, runs: usize) -> Result<Vec<rdeploy_core::OpTime>> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let prefix = std::env::temp_dir().join(format!(
            "rdeploy-ort-profile-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut settings = self.source.settings.clone();
        settings.profile_prefix = Some(prefix);
        let src = &self.source;
        let mut session = build_session(&src.path, &src.device, &settings, &src.libs, None)?;
        let file = rdeploy_core::guard::catch_engine_panic(NAME, "profiling", || {
            for _ in 0..=runs.max(1) {
                let values = inputs
                    .iter()
                    .zip(&self.sig.inputs)
                    .map(|(t, spec)| Ok((spec.name.as_str(), to_ort(t)?)))
                    .collect::<Result<Vec<_>>>()?;
                session
                    .run(values)
                    .map_err(|e| ort_err("inference failed", e))?;
            }
            session
                .end_profiling()
                .map_err(|e| ort_err("ending the profile", e))
        })?;
        let text = std::fs::read_to_string(&file);
        let _ = std::fs::remove_file(&file);
        let text = text.map_err(|e| Error::io("cannot read ONNX Runtime's profile", &file, e))?;
        parse_ort_profile(&text, runs.max(1))
    }

    fn signature(&self) -> &Signature {
        &self.sig
    }

    fn execute(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let values = inputs
            .iter()
            .zip(&self.sig.inputs)
            .map(|(t, spec)| Ok((spec.name.as_str(), to_ort(t)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut session = self.session();
        rdeploy_core::guard::catch_engine_panic(NAME, "inference", || {
            let outs = session
                .run(values)
                .map_err(|e| ort_err("inference failed", e))?;
            self.sig
                .outputs
                .iter()
                .map(|spec| {
                    let v = outs.get(spec.name.as_str()).ok_or_else(|| {
                        Error::backend(
                            NAME,
                            format!("the session returned no output '{}'", spec.name),
                        )
                    })?;
                    from_ort(v, spec)
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use serde_json::json;

    fn ops(v: Json) -> Result<Vec<PathBuf>> {
        custom_ops(&DeployConfig(
            json!({ "backend_config": { "custom_ops": v } }),
        ))
    }

    #[test]
    fn custom_ops_forms() {
        assert!(ops(Json::Null).unwrap().is_empty());
        assert!(custom_ops(&DeployConfig::empty()).unwrap().is_empty());
        assert_eq!(
            ops(json!("/a/lib.so")).unwrap(),
            [PathBuf::from("/a/lib.so")]
        );
        assert_eq!(
            ops(json!(["rel.so"])).unwrap(),
            [std::env::current_dir().unwrap().join("rel.so")]
        );
        let e = ops(json!({"a": 1})).unwrap_err().to_string();
        assert!(
            e.contains(CUSTOM_OPS_KEY) && e.contains("list of library paths"),
            "{e}"
        );
        let e = ops(json!(["/a.so", 3])).unwrap_err().to_string();
        assert!(e.contains("backend_config.custom_ops[1]"), "{e}");
        let e = check_library(Path::new("/nonexistent/libx.so"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/libx.so")
                && e.contains(CUSTOM_OPS_KEY)
                && e.contains("not found"),
            "{e}"
        );
    }

    #[test]
    fn copies_keep_names_apart_and_never_copy_onto_themselves() {
        let d = tempfile::tempdir().unwrap();
        for (sub, text) in [("a", "first"), ("b", "second")] {
            std::fs::create_dir_all(d.path().join(sub)).unwrap();
            std::fs::write(d.path().join(sub).join("libops.so"), text).unwrap();
        }
        let libs = [d.path().join("a/libops.so"), d.path().join("b/libops.so")];
        let work = d.path().join("work");
        let copies = copy_libraries(&libs, &work).unwrap();
        assert_eq!(
            copies,
            [
                work.join("custom_ops/libops.so"),
                work.join("custom_ops/1-libops.so")
            ]
        );
        assert_eq!(std::fs::read_to_string(&copies[1]).unwrap(), "second");
        // A config naming the work dir's own copy: left as it is.
        let again = copy_libraries(&copies[..1], &work).unwrap();
        assert_eq!(again, copies[..1]);
        assert_eq!(std::fs::read_to_string(&copies[0]).unwrap(), "first");
        assert!(
            copy_libraries(&[], &d.path().join("w2"))
                .unwrap()
                .is_empty()
        );
        assert!(!d.path().join("w2").exists());
    }
}
