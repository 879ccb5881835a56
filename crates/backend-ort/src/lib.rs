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

#![deny(unsafe_op_in_unsafe_fn)]

mod custom_ops;
pub mod locate;

use ort::session::{Session, builder::GraphOptimizationLevel};
use ort::value::{DynValue, TensorElementType, TensorRef, ValueType};
use rdeploy_core::{
    BackendDescriptor, BackendManager, DeployConfig, Device, Error, Result, Signature, Tensor,
    TensorInfo, Wrapper,
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
    })
}

fn build_session(
    path: &Path,
    device: &Device,
    s: &SessionSettings,
    save_optimized: Option<&Path>,
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
        if let Some(p) = save_optimized {
            b = b
                .with_optimized_model_path(p)
                .map_err(|e| step("optimized_model_filepath", e.into()))?;
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
        for d in custom_ops::domains().map_err(|e| ort_err("rdeploy's custom-op domains", e))? {
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
            .map_err(|e| Error::model(path, format!("ONNX Runtime cannot load it: {e}")))
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
        let save = deploy_cfg
            .get("backend_config.save_optimized_model")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        if save {
            // Let ONNX Runtime optimize once now and load the result later without re-optimizing.
            let opt = work_dir.join("end2end.ort-optimized.onnx");
            build_session(&model_file, device, &s, Some(&opt))?;
            return Ok(vec![opt]);
        }
        // Loading once validates the model (unsupported ops, bad shapes) at deploy time.
        build_session(&model_file, device, &s, None)?;
        Ok(vec![model_file])
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
        let path = rdeploy_core::single_file(NAME, "onnxruntime's build_wrapper", backend_files)?;
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
            .map(|_| build_session(path, device, &s, None).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::new(OrtWrapper {
            sig,

            sessions,
            next: Default::default(),
        }))
    }
}

/// A model loaded into ONNX Runtime sessions.
pub struct OrtWrapper {
    sig: Signature,
    sessions: Vec<Mutex<Session>>,
    next: std::sync::atomic::AtomicUsize,
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

fn to_ort(t: &Tensor) -> Result<ort::session::SessionInputValue<'_>> {
    rdeploy_core::dispatch_tensor!(t, a => {
        let data = a.as_slice().ok_or_else(|| Error::Tensor("tensor is not contiguous".into()))?;
        TensorRef::from_array_view((a.shape().to_vec(), data)).map(Into::into).map_err(|e| ort_err("binding an input", e))
    })
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
    let ty = match v.dtype() {
        ValueType::Tensor { ty, .. } => *ty,
        other => {
            return Err(Error::backend(
                NAME,
                format!("output '{}' is a {other:?}, not a tensor", spec.name),
            ));
        }
    };
    match ty {
        TensorElementType::Float32 => get::<f32>(v),
        TensorElementType::Float16 => get::<half::f16>(v),
        TensorElementType::Float64 => get::<f64>(v),
        TensorElementType::Int8 => get::<i8>(v),
        TensorElementType::Int16 => get::<i16>(v),
        TensorElementType::Int32 => get::<i32>(v),
        TensorElementType::Int64 => get::<i64>(v),
        TensorElementType::Uint8 => get::<u8>(v),
        TensorElementType::Uint16 => get::<u16>(v),
        TensorElementType::Uint32 => get::<u32>(v),
        TensorElementType::Uint64 => get::<u64>(v),
        TensorElementType::Bool => get::<bool>(v),
        other => Err(Error::backend(
            NAME,
            format!(
                "output '{}' has element type {other:?}, which rdeploy cannot hold",
                spec.name
            ),
        )),
    }
}

impl Wrapper for OrtWrapper {
    fn backend(&self) -> &str {
        NAME
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
