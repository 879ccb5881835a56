//! Backends written in Python, for rdeploy's binary, `rdeploy serve` and the Triton backend.
//!
//! Engines that ship only as Python wheels (ncnn, TVM) and third-party backends plug in as
//! Python managers (MMDeploy's `BaseBackendManager` shape: `is_available`, `get_version`,
//! `to_backend`, `build_wrapper`; see `docs/python.md`). A pip package offers one through the
//! `rdeploy.backends` entry-point group:
//!
//! ```toml
//! [project.entry-points."rdeploy.backends"]
//! mybackend = "my_package.backend:MyManager"
//! ```
//!
//! [`install`] finds those entry points in the active Python environment (`RDEPLOY_PYTHON`, else
//! `$VIRTUAL_ENV/bin/python`, else `python3`) by reading the installed packages'
//! `entry_points.txt`, without importing anything, and registers each as a [`PythonBackend`].
//! Calls then run in supervised worker processes (`python -m rdeploy._worker`, shipped in the
//! `rdeploy` Python package): control messages as JSON lines over pipes, tensors through a
//! shared-memory file (no pickling; dtype, shape and offset in the message).
//!
//! Per model, `backend_config.python_worker` sets the pool and the limits:
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `pool_size` | 1 | worker processes serving concurrent `forward` calls, each with the model loaded |
//! | `call_timeout_s` | 120 | seconds a `forward` may take before its worker is killed |
//! | `convert_timeout_s` | 3600 | seconds for `to_backend`, loading and the availability check |
//!
//! A worker that crashes, hangs past its limit or breaks the protocol is stopped and the call
//! fails with an error giving its exit status and last lines of stderr; the next call starts a
//! new worker. A Python exception fails the call with the exception's type and message and
//! keeps the worker (its state is the Python code's own, as in Triton's Python backend).
//!
//! Inside a Python interpreter (the `rdeploy` package), the same managers run in-process
//! instead, through `rdeploy.register_backend`.

mod worker;

use rdeploy_core::{
    Availability, BackendManager, DeployConfig, Device, Error, PassRequest, Registry, Result,
    Signature, Tensor, TensorInfo, Wrapper,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;
use worker::{CallError, Worker};

/// The entry-point group Python packages list their backends under.
pub const ENTRY_POINT_GROUP: &str = "rdeploy.backends";

/// How long the availability check may take (it imports the backend's module), unless
/// `RDEPLOY_PYTHON_CHECK_TIMEOUT_S` says otherwise (the check runs before a config is read).
fn check_timeout() -> Duration {
    std::env::var("RDEPLOY_PYTHON_CHECK_TIMEOUT_S")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0 && *s <= 86_400.0)
        .map_or(Duration::from_secs(120), Duration::from_secs_f64)
}

/// One backend offered by an installed Python package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryPoint {
    /// The backend's name (`backend_config.type`).
    pub name: String,
    /// `module:attribute` of its manager.
    pub value: String,
    /// The package (distribution) that declares it.
    pub dist: String,
    /// That package's version.
    pub dist_version: String,
}

/// The interpreter Python backends run in: `RDEPLOY_PYTHON`, else the active environment's.
pub fn python() -> PathBuf {
    match std::env::var_os("RDEPLOY_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(rdeploy_core::locate::python_site_dirs().1),
    }
}

/// The `rdeploy.backends` entry points of the packages installed in `dirs` (`sys.path`), first
/// folder first; a name declared twice is taken from the first package that declares it.
pub fn entry_points(dirs: &[PathBuf]) -> Vec<EntryPoint> {
    let mut found: Vec<EntryPoint> = Vec::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut metas: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "dist-info" || e == "egg-info")
            })
            .collect();
        metas.sort();
        for meta in metas {
            let Ok(text) = std::fs::read_to_string(meta.join("entry_points.txt")) else {
                continue;
            };
            let (dist, dist_version) = dist_name_version(&meta);
            for (name, value) in parse_group(&text, ENTRY_POINT_GROUP) {
                if let Some(first) = found.iter().find(|e| e.name == name) {
                    tracing::warn!(
                        "the Python backend '{name}' of {} {} ({value}) is not used: {} {} declares that name first on the path",
                        dist,
                        dist_version,
                        first.dist,
                        first.dist_version
                    );
                    continue;
                }
                found.push(EntryPoint {
                    name,
                    value,
                    dist: dist.clone(),
                    dist_version: dist_version.clone(),
                });
            }
        }
    }
    found
}

/// `(name, value)` pairs of one `[group]` section of an `entry_points.txt` (INI syntax, as
/// `importlib.metadata` reads it; extras in `[...]` after the value are dropped).
fn parse_group(text: &str, group: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == group;
            continue;
        }
        if !inside {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.split('[').next().unwrap_or(v).trim();
            if !k.trim().is_empty() && !v.is_empty() {
                out.push((k.trim().to_string(), v.to_string()));
            }
        }
    }
    out
}

/// A package's name and version from its metadata (`METADATA` / `PKG-INFO`), else its folder.
fn dist_name_version(meta: &Path) -> (String, String) {
    for file in ["METADATA", "PKG-INFO"] {
        if let Ok(text) = std::fs::read_to_string(meta.join(file)) {
            let field = |key: &str| {
                text.lines()
                    .take_while(|l| !l.is_empty())
                    .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
            };
            if let (Some(n), Some(v)) = (field("Name:"), field("Version:")) {
                return (n, v);
            }
        }
    }
    let stem = meta
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    match stem.split_once('-') {
        Some((n, v)) => (n.to_string(), v.split('-').next().unwrap_or(v).to_string()),
        None => (stem, "unknown".into()),
    }
}

/// Registers every Python backend of the active environment in `registry`. A name a backend
/// already registered holds (a built-in one) is kept, with a warning.
pub fn install(registry: &mut Registry) {
    let (dirs, _) = rdeploy_core::locate::python_site_dirs();
    if dirs.is_empty() {
        // Only worth a word when an environment was named: without one there is no Python.
        if std::env::var_os("RDEPLOY_PYTHON").is_some() || std::env::var_os("VIRTUAL_ENV").is_some()
        {
            tracing::warn!(
                "the Python interpreter {} does not run, so no backends written in Python (ncnn, tvm...) are available; check RDEPLOY_PYTHON / VIRTUAL_ENV",
                python().display()
            );
        }
        return;
    }
    let python = python();
    for ep in entry_points(dirs) {
        if registry.get(&ep.name).is_ok() {
            tracing::warn!(
                "the Python backend '{}' ({} {}) is not used: a backend of that name is already registered",
                ep.name,
                ep.dist,
                ep.dist_version
            );
            continue;
        }
        let name = ep.name.clone();
        if let Err(e) = registry.register(Arc::new(PythonBackend::new(ep, python.clone()))) {
            tracing::warn!("the Python backend '{name}' is not used: {e}");
        }
    }
}

/// Worker settings from `backend_config.python_worker`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorkerSettings {
    /// Worker processes for concurrent calls.
    pub pool_size: usize,
    /// Limit of one `forward`.
    pub call_timeout: Duration,
    /// Limit of `to_backend`, loading and the availability check.
    pub convert_timeout: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            pool_size: 1,
            call_timeout: Duration::from_secs(120),
            convert_timeout: Duration::from_secs(3600),
        }
    }
}

impl WorkerSettings {
    /// Reads `backend_config.python_worker` (a dict of `pool_size`, `call_timeout_s`,
    /// `convert_timeout_s`).
    ///
    /// # Errors
    /// [`Error::Config`] naming a key rdeploy does not read or a value out of range.
    pub fn from_config(cfg: &DeployConfig) -> Result<WorkerSettings> {
        let mut s = WorkerSettings::default();
        let Some(v) = cfg.get("backend_config.python_worker") else {
            return Ok(s);
        };
        let Some(obj) = v.as_object() else {
            return Err(Error::config_key(
                "backend_config.python_worker",
                "must be a dict, e.g. dict(pool_size=2, call_timeout_s=60)",
            ));
        };
        let secs = |key: &str, v: &Value| -> Result<Duration> {
            v.as_f64()
                .filter(|s| *s > 0.0 && *s <= 86_400.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    Error::config_key(
                        format!("backend_config.python_worker.{key}"),
                        format!("must be a number of seconds between 0 and 86400, got {v}"),
                    )
                })
        };
        for (k, v) in obj {
            match k.as_str() {
                "pool_size" => {
                    s.pool_size = v.as_u64().filter(|n| (1..=64).contains(n)).ok_or_else(|| {
                        Error::config_key(
                            "backend_config.python_worker.pool_size",
                            format!("must be a number of processes from 1 to 64, got {v}"),
                        )
                    })? as usize
                }
                "call_timeout_s" => s.call_timeout = secs(k, v)?,
                "convert_timeout_s" => s.convert_timeout = secs(k, v)?,
                _ => {
                    return Err(Error::config_key(
                        format!("backend_config.python_worker.{k}"),
                        "is not a key rdeploy reads; python_worker takes pool_size, call_timeout_s and convert_timeout_s",
                    ));
                }
            }
        }
        Ok(s)
    }
}

/// What the availability check found.
#[derive(Clone)]
struct Status {
    availability: Availability,
    device_kinds: &'static [&'static str],
}

/// A backend written in Python, run in worker processes.
pub struct PythonBackend {
    ep: EntryPoint,
    python: PathBuf,
    /// The availability check's answer; a check that failed to get one (the worker died or
    /// hung) is not kept, so a later call asks again.
    status: OnceLock<Status>,
    /// The worker for checks and conversions, kept between them.
    control: Mutex<Option<Worker>>,
    /// Environment variables set for its workers.
    env: Vec<(String, String)>,
}

impl PythonBackend {
    /// A backend for `ep`, run by the interpreter `python`.
    pub fn new(ep: EntryPoint, python: PathBuf) -> PythonBackend {
        PythonBackend {
            ep,
            python,
            status: OnceLock::new(),
            control: Mutex::new(None),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable for its worker processes (`PYTHONPATH` for a package
    /// that is not installed, an engine's thread setting...).
    #[must_use]
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> PythonBackend {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The entry point it was found through.
    pub fn entry_point(&self) -> &EntryPoint {
        &self.ep
    }

    fn control_call(&self, op: &str, doing: &str, req: Value, timeout: Duration) -> Result<Value> {
        self.control_raw(op, req, timeout)?
            .map_err(|e| e.into_error(&self.ep.name, doing))
    }

    /// A call on the control worker: `Err` when no worker could be started, else the call's
    /// own outcome (a Python exception, or a worker that died or hung).
    fn control_raw(
        &self,
        op: &str,
        req: Value,
        timeout: Duration,
    ) -> Result<std::result::Result<Value, CallError>> {
        let mut guard = self
            .control
            .lock()
            .map_err(|_| Error::backend(&self.ep.name, "the worker lock is poisoned"))?;
        if guard.as_ref().is_none_or(Worker::is_broken) {
            *guard = Some(Worker::spawn(&self.ep.name, &self.python, &self.env)?);
        }
        let Some(w) = guard.as_mut() else {
            return Err(Error::backend(&self.ep.name, "no worker"));
        };
        let mut req = req;
        req["entry"] = json!(self.ep.value);
        let r = w.call(op, req, timeout);
        if w.is_broken() {
            *guard = None;
        }
        Ok(r)
    }

    fn status(&self) -> Status {
        if let Some(s) = self.status.get() {
            return s.clone();
        }
        let reply = self.control_raw("check", json!({}), check_timeout());
        let mut kinds: Vec<&'static str> = vec!["cpu"];
        let (availability, definitive) = match reply {
            Err(e) => (Err(e.to_string()), true),
            // The worker died or hung: ask again next time (a server keeps running).
            Ok(Err(e @ CallError::Broken(_))) => (
                Err(e.into_error(&self.ep.name, "is_available()").to_string()),
                false,
            ),
            Ok(Err(e)) => (
                Err(e.into_error(&self.ep.name, "is_available()").to_string()),
                true,
            ),
            Ok(Ok(v)) => {
                if let Some(k) = v.get("device_kinds").and_then(Value::as_array) {
                    // Leaked once per backend per process: the contract hands out `&str`s.
                    kinds = k
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|s| &*Box::leak(s.to_ascii_lowercase().into_boxed_str()))
                        .collect();
                }
                let a = if v.get("available") == Some(&Value::Bool(true)) {
                    Ok(v.get("version")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .to_string())
                } else {
                    Err(v
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("is_available() returned False")
                        .to_string())
                };
                (a, true)
            }
        };
        let status = Status {
            availability,
            device_kinds: Box::leak(kinds.into_boxed_slice()),
        };
        if definitive {
            let _ = self.status.set(status.clone());
        }
        status
    }

    fn origin(&self) -> String {
        format!(
            "Python backend {} from {} {}, {}",
            self.ep.value,
            self.ep.dist,
            self.ep.dist_version,
            self.python.display()
        )
    }
}

fn paths(list: &[PathBuf]) -> Vec<String> {
    list.iter().map(|p| p.display().to_string()).collect()
}

impl BackendManager for PythonBackend {
    fn name(&self) -> &str {
        &self.ep.name
    }

    fn check(&self) -> Availability {
        self.status().availability.clone()
    }

    fn check_env_line(&self) -> String {
        match self.check() {
            Ok(v) => format!("{}:\t{v} ({})", self.ep.name, self.origin()),
            Err(reason) => format!("{}:\tNone ({reason}; {})", self.ep.name, self.origin()),
        }
    }

    fn device_kinds(&self) -> &[&str] {
        match self.status.get() {
            Some(s) => s.device_kinds,
            None => self.status().device_kinds,
        }
    }

    fn ir_passes(&self, deploy_cfg: &DeployConfig) -> Result<Vec<PassRequest>> {
        let timeout = WorkerSettings::from_config(deploy_cfg)?.convert_timeout;
        let v = self.control_call(
            "ir_passes",
            "ir_passes()",
            json!({"deploy_cfg": deploy_cfg.0}),
            timeout,
        )?;
        let passes = v.get("passes").cloned().unwrap_or(Value::Null);
        serde_json::from_value(passes).map_err(|e| {
            Error::backend(
                &self.ep.name,
                format!(
                    "the Python backend's ir_passes() returned something rdeploy cannot read: {e}"
                ),
            )
        })
    }

    fn to_backend(
        &self,
        ir_files: &[PathBuf],
        deploy_cfg: &DeployConfig,
        work_dir: &Path,
        device: &Device,
    ) -> Result<Vec<PathBuf>> {
        let timeout = WorkerSettings::from_config(deploy_cfg)?.convert_timeout;
        // Python code joins paths itself: give it absolute ones so that it returns absolute ones.
        let work_dir =
            &std::path::absolute(work_dir).map_err(|e| Error::io("cannot resolve", work_dir, e))?;
        let ir: Vec<PathBuf> = ir_files
            .iter()
            .map(|p| std::path::absolute(p).map_err(|e| Error::io("cannot resolve", p, e)))
            .collect::<Result<_>>()?;
        let v = self.control_call(
            "to_backend",
            "to_backend",
            json!({
                "ir_files": paths(&ir),
                "work_dir": work_dir.display().to_string(),
                "deploy_cfg": deploy_cfg.0,
                "log_level": 20, // logging.INFO, MMDeploy's default
                "device": device.to_string(),
            }),
            timeout,
        )?;
        let files: Vec<String> = v
            .get("files")
            .and_then(|f| serde_json::from_value(f.clone()).ok())
            .unwrap_or_default();
        rdeploy_core::resolve_backend_files(&self.ep.name, work_dir, files)
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
        let settings = WorkerSettings::from_config(deploy_cfg)?;
        let files: Vec<PathBuf> = backend_files
            .iter()
            .map(|p| std::path::absolute(p).map_err(|e| Error::io("cannot resolve", p, e)))
            .collect::<Result<_>>()?;
        let load_req = json!({
            "entry": self.ep.value,
            "backend_files": paths(&files),
            "device": device.to_string(),
            "input_names": input_names,
            "output_names": output_names,
            "deploy_cfg": deploy_cfg.0,
        });
        // The worker that checked availability (and converted, in a deploy) becomes the pool's
        // first: one process per loaded model, and the manager's module is imported already.
        let checked = self
            .control
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .filter(|w| !w.is_broken());
        let (first, reply) = start_worker(
            &self.ep.name,
            &self.python,
            &self.env,
            checked,
            &load_req,
            None,
            settings.convert_timeout,
        )?;
        let declared = match (reply.get("inputs"), reply.get("outputs")) {
            (Some(i), Some(o)) => Some((specs(&self.ep.name, i)?, specs(&self.ep.name, o)?)),
            _ => None,
        };
        let (inputs, outputs) = match declared {
            Some(io) => io,
            None => rdeploy_core::signature_from_files(&self.ep.name, &files)?,
        };
        let sig = rdeploy_core::select_signature(
            &self.ep.name,
            &inputs,
            &outputs,
            input_names,
            output_names,
            device,
        )?;
        let engine_settings: Vec<(String, String)> = reply
            .get("settings")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let out_names: Vec<String> = sig.outputs.iter().map(|o| o.name.clone()).collect();
        let mut first = first;
        first
            .call(
                "set_outputs",
                json!({"output_names": out_names}),
                settings.convert_timeout,
            )
            .map_err(|e| e.into_error(&self.ep.name, "set_outputs"))?;
        Ok(Box::new(PythonWrapper {
            backend: self.ep.name.clone(),
            python: self.python.clone(),
            env: self.env.clone(),
            sig,
            load_req,
            out_names,
            settings,
            engine_settings,
            pool: Pool {
                state: Mutex::new(PoolState {
                    idle: vec![first],
                    live: 1,
                }),
                freed: Condvar::new(),
            },
        }))
    }
}

/// Starts a worker (or takes `idle`) and loads the model into it (`build_wrapper` in Python).
fn start_worker(
    backend: &str,
    python: &Path,
    env: &[(String, String)],
    idle: Option<Worker>,
    load_req: &Value,
    out_names: Option<&[String]>,
    timeout: Duration,
) -> Result<(Worker, Value)> {
    let mut w = match idle {
        Some(w) => w,
        None => Worker::spawn(backend, python, env)?,
    };
    let reply = w
        .load(load_req.clone(), timeout)
        .map_err(|e| e.into_error(backend, "build_wrapper"))?;
    if let Some(names) = out_names {
        w.call("set_outputs", json!({"output_names": names}), timeout)
            .map_err(|e| e.into_error(backend, "set_outputs"))?;
    }
    Ok((w, reply))
}

/// `[name, dtype, shape]` lists from a wrapper's `inputs`/`outputs`.
fn specs(backend: &str, v: &Value) -> Result<Vec<TensorInfo>> {
    let bad = |e: String| {
        Error::backend(
            backend,
            format!(
                "the Python wrapper's inputs/outputs must be lists of (name, dtype, shape): {e}"
            ),
        )
    };
    let items = v.as_array().ok_or_else(|| bad("not a list".into()))?;
    items
        .iter()
        .map(|item| {
            let (name, dtype, shape): (String, String, Option<Vec<Value>>) =
                serde_json::from_value(item.clone()).map_err(|e| bad(e.to_string()))?;
            let dtype = dtype.parse().map_err(|e: Error| bad(e.to_string()))?;
            let shape = shape.map(|dims| {
                dims.iter()
                    .map(|d| match d {
                        Value::Number(n) if n.as_u64().is_some() => {
                            rdeploy_core::Dim::Fixed(n.as_u64().unwrap_or(0))
                        }
                        Value::String(s) => rdeploy_core::Dim::Symbolic(s.clone()),
                        _ => rdeploy_core::Dim::Symbolic(String::new()),
                    })
                    .collect()
            });
            Ok(TensorInfo { name, dtype, shape })
        })
        .collect()
}

struct PoolState {
    idle: Vec<Worker>,
    /// Workers alive (idle or busy).
    live: usize,
}

/// Worker processes with the model loaded, up to `pool_size`, started as calls need them.
struct Pool {
    state: Mutex<PoolState>,
    freed: Condvar,
}

/// A model loaded by a Python backend: calls go to a pool of worker processes.
struct PythonWrapper {
    backend: String,
    python: PathBuf,
    env: Vec<(String, String)>,
    sig: Signature,
    load_req: Value,
    out_names: Vec<String>,
    settings: WorkerSettings,
    /// What the Python wrapper's `settings` reported.
    engine_settings: Vec<(String, String)>,
    pool: Pool,
}

impl PythonWrapper {
    fn poisoned(&self) -> Error {
        Error::backend(&self.backend, "the worker pool's lock is poisoned")
    }

    /// An idle worker, a new one when the pool has room, or the next one freed.
    fn acquire(&self) -> Result<Worker> {
        let mut st = self.pool.state.lock().map_err(|_| self.poisoned())?;
        loop {
            if let Some(w) = st.idle.pop() {
                return Ok(w);
            }
            if st.live < self.settings.pool_size {
                st.live += 1;
                drop(st);
                let started = start_worker(
                    &self.backend,
                    &self.python,
                    &self.env,
                    None,
                    &self.load_req,
                    Some(&self.out_names),
                    self.settings.convert_timeout,
                );
                return match started {
                    Ok((w, _)) => Ok(w),
                    Err(e) => {
                        self.discard();
                        Err(e)
                    }
                };
            }
            st = self.pool.freed.wait(st).map_err(|_| self.poisoned())?;
        }
    }

    fn release(&self, w: Worker) {
        if w.is_broken() {
            drop(w);
            self.discard();
            return;
        }
        if let Ok(mut st) = self.pool.state.lock() {
            st.idle.push(w);
        }
        self.pool.freed.notify_one();
    }

    fn discard(&self) {
        if let Ok(mut st) = self.pool.state.lock() {
            st.live = st.live.saturating_sub(1);
        }
        self.pool.freed.notify_one();
    }
}

impl Wrapper for PythonWrapper {
    fn backend(&self) -> &str {
        &self.backend
    }

    fn signature(&self) -> &Signature {
        &self.sig
    }

    fn execute(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        self.execute_timed(inputs).map(|(o, _)| o)
    }

    fn execute_timed(&self, inputs: Vec<Tensor>) -> Result<(Vec<Tensor>, Option<Duration>)> {
        let names: Vec<String> = self.sig.inputs.iter().map(|i| i.name.clone()).collect();
        let mut w = self.acquire()?;
        let r = w.forward(&names, &inputs, self.settings.call_timeout);
        self.release(w);
        let (outs, engine_ns) = r.map_err(|e: CallError| e.into_error(&self.backend, "forward"))?;
        rdeploy_core::validate_outputs(&self.backend, &self.sig.outputs, &outs)?;
        Ok((outs, Some(Duration::from_nanos(engine_ns))))
    }

    fn settings(&self) -> Vec<(String, String)> {
        let mut v = self.engine_settings.clone();
        v.extend([
            ("python".into(), self.python.display().to_string()),
            ("pool_size".into(), self.settings.pool_size.to_string()),
            (
                "call_timeout_s".into(),
                format!("{}", self.settings.call_timeout.as_secs_f64()),
            ),
        ]);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_txt_sections() {
        let text = "[console_scripts]\nx = a:b\n\n[rdeploy.backends]\nncnn = rdeploy.backends.ncnn:NcnnManager\n tvm=rdeploy.backends.tvm:TVMManager [extra]\n# comment\n[other]\ny = c:d\n";
        assert_eq!(
            parse_group(text, ENTRY_POINT_GROUP),
            vec![
                (
                    "ncnn".to_string(),
                    "rdeploy.backends.ncnn:NcnnManager".to_string()
                ),
                (
                    "tvm".to_string(),
                    "rdeploy.backends.tvm:TVMManager".to_string()
                ),
            ]
        );
    }

    #[test]
    fn first_package_wins_and_metadata_names_it() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for (dir, dist, ver) in [(&a, "pkg_one", "1.2"), (&b, "pkg-two", "0.3")] {
            let meta = dir.path().join(format!("{dist}-{ver}.dist-info"));
            std::fs::create_dir(&meta).unwrap();
            std::fs::write(
                meta.join("entry_points.txt"),
                format!("[rdeploy.backends]\nshared = {dist}:M\nonly_{dist} = {dist}:M\n"),
            )
            .unwrap();
            std::fs::write(
                meta.join("METADATA"),
                format!("Metadata-Version: 2.1\nName: {dist}\nVersion: {ver}\n\nbody Name: x\n"),
            )
            .unwrap();
        }
        let eps = entry_points(&[a.path().to_path_buf(), b.path().to_path_buf()]);
        let names: Vec<(&str, &str, &str)> = eps
            .iter()
            .map(|e| (e.name.as_str(), e.dist.as_str(), e.dist_version.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("shared", "pkg_one", "1.2"),
                ("only_pkg_one", "pkg_one", "1.2"),
                ("only_pkg-two", "pkg-two", "0.3"),
            ]
        );
    }

    #[test]
    fn worker_settings_keys_are_checked() {
        let cfg = |v: Value| DeployConfig(json!({"backend_config": {"python_worker": v}}));
        let s = WorkerSettings::from_config(&cfg(json!({"pool_size": 3, "call_timeout_s": 0.5})))
            .unwrap();
        assert_eq!(s.pool_size, 3);
        assert_eq!(s.call_timeout, Duration::from_millis(500));
        for (bad, key) in [
            (json!({"pool_size": 0}), "pool_size"),
            (json!({"call_timeout_s": -1}), "call_timeout_s"),
            (json!({"timeout": 3}), "timeout"),
            (json!(3), "python_worker"),
        ] {
            let e = WorkerSettings::from_config(&cfg(bad))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }
    }
}
