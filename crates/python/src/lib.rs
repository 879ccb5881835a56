//! `rdeploy._rdeploy`: the native half of the `rdeploy` Python package, over the `rdeploy`
//! facade crate. The pure-Python half (`python/rdeploy/`) re-exports it and adds
//! `rdeploy.mmdeploy`.
//!
//! Arrays: inputs are copied once into rdeploy tensors (one memcpy when C-contiguous); outputs
//! are handed to numpy without a copy. The GIL is released while engines run, so Python threads
//! calling one wrapper run in parallel. Errors raise `rdeploy.Error` subclasses with the CLI's
//! one-paragraph messages.

mod convert;
mod pybackend;
mod pypass;

use convert::{
    BackendUnavailable, ConfigError, DeviceError, InputMismatch, IntoPy, RdeployError, TensorSpec,
    json_to_py, py_to_tensor, py_to_value, spec, tensor_to_py, value_to_py,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rdeploy::compare::{CompareInputs, CompareOptions};
use rdeploy::inputs::{ShapeHint, random_inputs};
use rdeploy::{DeployOptions, Device, NamedTensors, Registry};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, RwLock};

/// The process's registry: the built-in backends, plugins from `RDEPLOY_PLUGIN_PATH`, and
/// backends registered from Python.
static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(|| {
    let mut r = rdeploy::builtin_registry();
    rdeploy::install_plugins(&mut r, &[]);
    // Backends written in Python that installed packages offer (`rdeploy.backends` entry
    // points, found on sys.path without importing them): in-process here, imported on first use.
    let (dirs, _) = rdeploy::core::locate::python_site_dirs();
    for ep in rdeploy::python_backends::entry_points(dirs) {
        if r.get(&ep.name).is_ok() {
            continue;
        }
        let _ = r.register(Arc::new(pybackend::PyBackend {
            name: ep.name,
            manager: pybackend::Manager::Entry {
                value: ep.value,
                loaded: std::sync::OnceLock::new(),
            },
            device_kinds: &["cpu"],
        }));
    }
    RwLock::new(r)
});

pub(crate) fn registry() -> Registry {
    match REGISTRY.read() {
        Ok(r) => r.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn device_arg(device: Option<&str>) -> PyResult<Option<Device>> {
    device
        .map(|d| {
            d.parse::<Device>()
                .map_err(|e| DeviceError::new_err(e.report()))
        })
        .transpose()
}

fn path_arg(obj: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    // str, bytes or os.PathLike; non-UTF-8 names pass through os.fsencode.
    let os = obj.py().import("os")?;
    let raw = os
        .call_method1("fspath", (obj,))
        .and_then(|p| os.call_method1("fsencode", (p,)))
        .map_err(|_| {
            RdeployError::new_err(format!(
                "expected a path (str, bytes or os.PathLike), got a {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
    let bytes: Vec<u8> = raw.extract()?;
    Ok(PathBuf::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes),
    ))
}

/// A merged deploy config, as mmengine's `Config.fromfile` gives it (never executed).
#[pyclass(module = "rdeploy", frozen)]
struct Config {
    inner: rdeploy::Config,
}

#[pymethods]
impl Config {
    /// Loads a deploy config (`.py` as in MMDeploy, `.yaml`, `.json`, `.toml`) with its
    /// `_base_` files, merged by mmengine's rules.
    ///
    /// Raises ConfigError naming the file, line and key of a problem.
    #[staticmethod]
    fn fromfile(filename: &Bound<'_, PyAny>) -> PyResult<Config> {
        let p = path_arg(filename)?;
        Ok(Config {
            inner: rdeploy::Config::from_file(&p).py_err()?,
        })
    }

    /// A config from a dict in MMDeploy's form (`{'backend_config': {'type': 'tract'}, ...}`).
    #[staticmethod]
    fn from_dict(cfg: &Bound<'_, PyAny>) -> PyResult<Config> {
        let value = py_to_value(cfg, "")?;
        Ok(Config {
            inner: rdeploy::Config::from_value(value, std::path::Path::new("<dict>")).py_err()?,
        })
    }

    /// The merged config as plain dicts and lists (what `Config.to_dict()` gives in mmengine).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        value_to_py(py, &rdeploy::config::Value::Dict(self.inner.tree.clone()))
    }

    /// The file it was loaded from.
    #[getter]
    fn filename(&self) -> String {
        self.inner.path.display().to_string()
    }

    fn __getitem__<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.tree.get_str(key) {
            Some(v) => wrap_config(py, v),
            None => Err(pyo3::exceptions::PyKeyError::new_err(key.to_string())),
        }
    }

    /// `cfg.get(key, default=None)`, as on mmengine's Config.
    #[pyo3(signature = (key, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.tree.get_str(key) {
            Some(v) => wrap_config(py, v),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    /// The top-level keys, in order.
    fn keys(&self) -> Vec<String> {
        self.inner.tree.keys().map(|k| k.to_json_key()).collect()
    }

    /// `(key, value)` pairs of the top level.
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
        self.inner
            .tree
            .0
            .iter()
            .map(|(k, v)| Ok((k.to_json_key(), wrap_config(py, v)?)))
            .collect()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyList::new(py, self.keys())?
            .try_iter()
            .map(|i| i.into_any())
    }

    fn __len__(&self) -> usize {
        self.inner.tree.0.len()
    }

    /// Configs are immutable: copies are the same object.
    fn __copy__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __deepcopy__(slf: Py<Self>, _memo: Bound<'_, PyAny>) -> Py<Self> {
        slf
    }

    /// Pickles as its merged dict (the file name is kept for messages).
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyAny>,))> {
        let from_dict = py.get_type::<Config>().getattr("from_dict")?;
        Ok((from_dict, (self.to_dict(py)?,)))
    }

    /// mmengine's attribute access: `cfg.backend_config.type`.
    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.tree.get_str(name) {
            Some(v) => wrap_config(py, v),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "config has no key '{name}'"
            ))),
        }
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> bool {
        key.extract::<String>()
            .is_ok_and(|k| self.inner.tree.get_str(&k).is_some())
    }

    fn __repr__(&self) -> String {
        format!(
            "Config(filename={:?})",
            self.inner.path.display().to_string()
        )
    }
}

/// A config value for Python: dicts as `ConfigDict` (keys are attributes too).
fn wrap_config<'py>(py: Python<'py>, v: &rdeploy::config::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("rdeploy._configdict")?
        .getattr("_wrap")?
        .call1((value_to_py(py, v)?,))
}

fn config_arg(obj: &Bound<'_, PyAny>) -> PyResult<rdeploy::Config> {
    if let Ok(c) = obj.cast::<Config>() {
        return Ok(c.get().inner.clone());
    }
    if obj.cast::<PyDict>().is_ok() {
        return Ok(Config::from_dict(obj)?.inner);
    }
    Ok(Config::fromfile(obj)?.inner)
}

/// A deployed work dir: its path and manifest.
#[pyclass(module = "rdeploy", frozen)]
struct WorkDir {
    inner: rdeploy::WorkDir,
}

#[pymethods]
impl WorkDir {
    /// Opens a work dir written by `deploy` (here or by `rdeploy deploy`): reads and checks
    /// its manifest.
    ///
    /// Raises WorkDirError naming the directory and what is wrong.
    #[staticmethod]
    fn open(path: &Bound<'_, PyAny>) -> PyResult<WorkDir> {
        let p = path_arg(path)?;
        Ok(WorkDir {
            inner: rdeploy::WorkDir::open(&p).py_err()?,
        })
    }

    /// Checks every file's SHA-256 against the manifest. Raises WorkDirError on a mismatch.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner.clone();
        py.detach(move || inner.verify()).py_err()
    }

    /// The work dir's path.
    #[getter]
    fn path(&self) -> String {
        self.inner.path.display().to_string()
    }

    /// The backend it was deployed for.
    #[getter]
    fn backend(&self) -> String {
        self.inner.manifest.backend.clone()
    }

    /// The device it was deployed for.
    #[getter]
    fn device(&self) -> String {
        self.inner.manifest.device.to_string()
    }

    /// True when `deploy` found it up to date and rebuilt nothing.
    #[getter]
    fn reused(&self) -> bool {
        self.inner.reused
    }

    /// The backend's files, absolute paths, in the order build_wrapper takes them.
    #[getter]
    fn backend_files(&self) -> Vec<String> {
        self.inner
            .backend_files()
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    }

    /// The model's inputs after the IR stage.
    #[getter]
    fn inputs(&self, py: Python<'_>) -> PyResult<Vec<TensorSpec>> {
        self.inner
            .manifest
            .inputs
            .iter()
            .map(|t| spec(py, t))
            .collect()
    }

    /// The model's outputs after the IR stage.
    #[getter]
    fn outputs(&self, py: Python<'_>) -> PyResult<Vec<TensorSpec>> {
        self.inner
            .manifest
            .outputs
            .iter()
            .map(|t| spec(py, t))
            .collect()
    }

    /// The whole manifest (deploy.json) as a dict.
    #[getter]
    fn manifest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = serde_json::to_value(&self.inner.manifest)
            .map_err(|e| RdeployError::new_err(e.to_string()))?;
        json_to_py(py, &v)
    }

    fn __fspath__(&self) -> String {
        self.path()
    }

    fn __repr__(&self) -> String {
        format!(
            "WorkDir(path={:?}, backend='{}')",
            self.path(),
            self.inner.manifest.backend
        )
    }
}

/// A loaded model: MMDeploy's `BaseWrapper`. Thread-safe: threads may call `forward` at once.
#[pyclass(module = "rdeploy", frozen)]
struct Wrapper {
    inner: Arc<dyn rdeploy::Wrapper>,
    example_shapes: std::collections::BTreeMap<String, Vec<usize>>,
    backend_version: String,
}

/// `{name: array-like}` as tensors; lists and scalars take the dtype `specs` gives the input.
fn named_inputs(
    inputs: &Bound<'_, PyAny>,
    specs: &[rdeploy::TensorInfo],
) -> PyResult<NamedTensors> {
    let d = inputs.cast::<PyDict>().map_err(|_| {
        InputMismatch::new_err(
            "inputs must be a dict {input_name: numpy array}; see Wrapper.inputs for the names",
        )
    })?;
    d.iter()
        .map(|(k, v)| {
            let name: String = match k.extract() {
                Ok(n) => n,
                Err(_) => {
                    return Err(InputMismatch::new_err(format!(
                        "input names must be str, not {}",
                        k.repr()?
                    )));
                }
            };
            let spec = specs.iter().find(|s| s.name == name);
            if let (Some(spec), Ok(a)) = (spec, v.cast::<numpy::PyUntypedArray>()) {
                convert::precheck(a, spec)?;
            }
            let t = py_to_tensor(&v, &name, spec.map(|s| s.dtype))?;
            Ok((name, t))
        })
        .collect()
}

fn outputs_dict<'py>(py: Python<'py>, outs: NamedTensors) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, t) in outs {
        d.set_item(name, tensor_to_py(py, t)?)?;
    }
    Ok(d)
}

#[pymethods]
impl Wrapper {
    /// Runs the model: `{input_name: ndarray}` in, `{output_name: ndarray}` out, outputs in
    /// `output_names` order. Dtypes and shapes must match `inputs` (symbolic dims take any
    /// size). The GIL is released while the engine runs.
    ///
    /// Raises InputMismatch for a missing, unknown, mistyped or misshaped input; BackendError
    /// when the engine fails.
    fn forward<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let named = named_inputs(inputs, self.inner.inputs())?;
        let w = self.inner.clone();
        let outs = py.detach(move || w.forward(named)).py_err()?;
        outputs_dict(py, outs)
    }

    /// Same as `forward`.
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.forward(py, inputs)
    }

    /// The engine call alone: arrays in `inputs` order, already valid; arrays in `outputs`
    /// order. What timings measure.
    fn execute<'py>(
        &self,
        py: Python<'py>,
        inputs: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let specs = self.inner.inputs();
        if inputs.len() != specs.len() {
            return Err(InputMismatch::new_err(format!(
                "execute takes {} arrays (inputs {}), got {}",
                specs.len(),
                specs
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                inputs.len()
            )));
        }
        let tensors = inputs
            .iter()
            .zip(specs)
            .map(|(x, s)| {
                if let Ok(a) = x.cast::<numpy::PyUntypedArray>() {
                    convert::precheck(a, s)?;
                }
                py_to_tensor(x, &s.name, Some(s.dtype))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let w = self.inner.clone();
        let outs = py.detach(move || w.execute(tensors)).py_err()?;
        let outs = outs
            .into_iter()
            .map(|t| tensor_to_py(py, t))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, outs)
    }

    /// The inputs: name, dtype (numpy's name) and shape (int, dim name, or None).
    #[getter]
    fn inputs(&self, py: Python<'_>) -> PyResult<Vec<TensorSpec>> {
        self.inner.inputs().iter().map(|t| spec(py, t)).collect()
    }

    /// The outputs, in output order.
    #[getter]
    fn outputs(&self, py: Python<'_>) -> PyResult<Vec<TensorSpec>> {
        self.inner.outputs().iter().map(|t| spec(py, t)).collect()
    }

    /// The output names, in output order (MMDeploy's `output_names`).
    #[getter]
    fn output_names(&self) -> Vec<String> {
        self.inner
            .outputs()
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }

    /// The engine settings in effect (precision, threads, streams).
    #[getter]
    fn settings(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.settings().into_iter().collect()
    }

    /// The backend's name.
    #[getter]
    fn backend(&self) -> String {
        self.inner.backend().to_string()
    }

    /// The device the model runs on.
    #[getter]
    fn device(&self) -> String {
        self.inner.device().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "Wrapper(backend='{}', device='{}', inputs={:?}, outputs={:?})",
            self.inner.backend(),
            self.inner.device(),
            self.inner
                .inputs()
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            self.output_names()
        )
    }
}

/// Every registered backend with its version, or why it is unavailable: the facts of
/// `rdeploy check-env --json`.
#[pyfunction]
fn check_env(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let reg = registry();
    let status = py.detach(move || rdeploy::check_env(&reg));
    let v = serde_json::json!({
        "rdeploy": rdeploy::VERSION,
        "backends": status.iter().map(|b| serde_json::json!({
            "name": b.name,
            "available": b.available,
            "version": b.version,
            "reason": b.reason,
            "devices": b.devices,
            "custom_ops": b.custom_ops,
        })).collect::<Vec<_>>(),
    });
    json_to_py(py, &v)
}

/// The registered backends' names.
#[pyfunction]
fn backends() -> Vec<String> {
    registry().names()
}

/// Deploys `model` with `deploy_cfg` (a path, a dict in MMDeploy's form, or a Config) into
/// `work_dir`: onnx_config, the backend's graph passes, conversion, manifest. Reuses an
/// up-to-date work dir unless `force`. Progress goes to the `rdeploy` logger.
///
/// Raises ConfigError, ModelError, BackendUnavailable, DeviceError or BackendError; a failed
/// deploy leaves the work dir as it was.
#[pyfunction]
#[pyo3(signature = (deploy_cfg, model, work_dir, device = "cpu", force = false))]
fn deploy(
    py: Python<'_>,
    deploy_cfg: &Bound<'_, PyAny>,
    model: &Bound<'_, PyAny>,
    work_dir: &Bound<'_, PyAny>,
    device: &str,
    force: bool,
) -> PyResult<WorkDir> {
    pypass::refuse_inside_pass()?;
    let config = config_arg(deploy_cfg)?;
    let model = path_arg(model)?;
    let work_dir = path_arg(work_dir)?;
    let device = device_arg(Some(device))?.unwrap_or_else(Device::cpu);
    let reg = registry();
    let rewrites = pypass::rewrites();
    let inner = py
        .detach(move || {
            rdeploy::deploy(
                &reg,
                &config,
                &model,
                &work_dir,
                &device,
                &DeployOptions {
                    force,
                    rewrites: Some(&rewrites),
                    ..Default::default()
                },
            )
        })
        .py_err()?;
    Ok(WorkDir { inner })
}

fn workdir_arg(obj: &Bound<'_, PyAny>) -> PyResult<rdeploy::WorkDir> {
    if let Ok(w) = obj.cast::<WorkDir>() {
        return Ok(w.get().inner.clone());
    }
    Ok(WorkDir::open(obj)?.inner)
}

/// Loads a work dir (path or WorkDir) into a Wrapper on `device` (the deploy's by default).
///
/// Raises WorkDirError, BackendUnavailable, DeviceError or BackendError.
#[pyfunction]
#[pyo3(signature = (work_dir, device = None))]
fn load(py: Python<'_>, work_dir: &Bound<'_, PyAny>, device: Option<&str>) -> PyResult<Wrapper> {
    let device = device_arg(device)?;
    let work = workdir_arg(work_dir)?;
    let reg = registry();
    let (inner, work) = py
        .detach(move || rdeploy::load(&work, &reg, device.as_ref()).map(|w| (w, work)))
        .py_err()?;
    Ok(Wrapper {
        inner,
        example_shapes: work.manifest.example_shapes.clone(),
        backend_version: work.manifest.backend_version.clone(),
    })
}

fn shape_hints(shapes: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<ShapeHint>> {
    let mut out = Vec::new();
    if let Some(d) = shapes {
        for (k, v) in d.iter() {
            let k: String = k.extract()?;
            if let Ok(n) = v.extract::<u64>() {
                out.push(ShapeHint::Dim(k, n));
            } else {
                let dims: Vec<usize> = v.extract().map_err(|_| {
                    InputMismatch::new_err(format!(
                        "shapes['{k}']: give a dim size (int) or an input's full shape (list of ints)"
                    ))
                })?;
                out.push(ShapeHint::Input(k, dims));
            }
        }
    }
    Ok(out)
}

/// Runs `model` (as it is) on every backend of `backends` with the same inputs and compares
/// each one's outputs with the first's (numpy's allclose rule: |a - b| <= atol + rtol * |b|,
/// dtypes and shapes must match). Inputs are given as a dict, or generated (`shapes` fixes
/// symbolic dims: {'batch': 2} or {'input': [1, 3, 224, 224]}; `seed`).
///
/// Returns {'reference', 'rtol', 'atol', 'pass', 'outputs': [{'backend', 'output',
/// 'max_abs_diff', 'max_rel_diff', 'pass', 'problem'}]}.
#[pyfunction]
#[pyo3(signature = (model, backends, inputs = None, rtol = 1e-3, atol = 1e-4, device = "cpu", shapes = None, seed = 0))]
#[allow(clippy::too_many_arguments, reason = "Python keyword arguments")]
fn compare<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    backends: &Bound<'py, PyAny>,
    inputs: Option<&Bound<'py, PyAny>>,
    rtol: f64,
    atol: f64,
    device: &str,
    shapes: Option<&Bound<'py, PyDict>>,
    seed: u64,
) -> PyResult<Bound<'py, PyAny>> {
    let model = path_arg(model)?;
    // "tract,onnxruntime" like the command line, or a list of names.
    let backends: Vec<String> = match backends.extract::<String>() {
        Ok(s) => s.split(',').map(|b| b.trim().to_string()).collect(),
        Err(_) => backends.extract()?,
    };
    let inputs = match inputs {
        Some(i) => {
            let (_, info) = rdeploy::onnx::inspect_file(&model).py_err()?;
            CompareInputs::Given(named_inputs(i, &info.inputs)?)
        }
        None => CompareInputs::Generated {
            shapes: shape_hints(shapes)?,
            seed,
        },
    };
    let options = CompareOptions {
        backends,
        device: device_arg(Some(device))?.unwrap_or_else(Device::cpu),
        rtol: Some(rtol),
        atol: Some(atol),
        per_output: Vec::new(),
        inputs,
        against: None,
        expected: None,
    };
    let reg = registry();
    let report = py
        .detach(move || rdeploy::compare::compare(&reg, &model, &options))
        .py_err()?;
    let v = serde_json::to_value(&report).map_err(|e| RdeployError::new_err(e.to_string()))?;
    json_to_py(py, &v)
}

/// Benchmarks a Wrapper (or a work dir, loaded first): `warmup` untimed calls per thread, then
/// `iters` timed calls shared by `concurrency` threads (or, with `duration` in seconds, calls
/// until that much time has passed). Inputs as a dict, or generated from the signature
/// (`shapes`, `seed`).
///
/// Returns the report as a dict (milliseconds): latency_ms and execute_ms with mean/std/min/
/// p50/p90/p99/max, overhead_ms_mean, throughput_per_s, samples_per_s, batch, peak_rss_mb,
/// settings, input_shapes.
#[pyfunction]
#[pyo3(name = "bench", signature = (target, inputs = None, warmup = 10, iters = 100, concurrency = 1, shapes = None, seed = 0, duration = None))]
#[allow(clippy::too_many_arguments, reason = "Python keyword arguments")]
fn bench_wrapper<'py>(
    py: Python<'py>,
    target: &Bound<'py, PyAny>,
    inputs: Option<&Bound<'py, PyAny>>,
    warmup: i64,
    iters: i64,
    concurrency: i64,
    shapes: Option<&Bound<'py, PyDict>>,
    seed: u64,
    duration: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let duration = duration
        .map(|d| {
            std::time::Duration::try_from_secs_f64(d)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    RdeployError::new_err(format!(
                        "bench: duration must be a positive number of seconds, not {d}"
                    ))
                })
        })
        .transpose()?;
    let count = |what: &str, v: i64, min: i64| -> PyResult<usize> {
        usize::try_from(v)
            .ok()
            .filter(|&n| n as i64 >= min)
            .ok_or_else(|| {
                RdeployError::new_err(format!("bench: {what} must be at least {min}, not {v}"))
            })
    };
    let (warmup, iters, concurrency) = (
        count("warmup", warmup, 0)?,
        count("iters", iters, 1)?,
        count("concurrency", concurrency, 1)?,
    );
    let (w, examples, version) = match target.cast::<Wrapper>() {
        Ok(w) => {
            let w = w.get();
            (
                w.inner.clone(),
                w.example_shapes.clone(),
                w.backend_version.clone(),
            )
        }
        Err(_) => {
            let p = path_arg(target)?;
            if p.is_file() {
                return Err(convert::WorkDirError::new_err(format!(
                    "bench: {} is a file; bench takes a Wrapper or a work dir: rdeploy.bench(rdeploy.load(rdeploy.deploy(cfg, model, work_dir)))",
                    p.display()
                )));
            }
            let w = load(py, target, None)?;
            (w.inner, w.example_shapes, w.backend_version)
        }
    };
    let named = match inputs {
        Some(i) => named_inputs(i, w.inputs())?,
        None => random_inputs(w.inputs(), &shape_hints(shapes)?, &examples, seed).py_err()?,
    };
    let mut report = py
        .detach(move || {
            rdeploy::bench::bench(
                w.as_ref(),
                &named,
                &rdeploy::bench::BenchOptions {
                    warmup,
                    iters,
                    duration,
                    concurrency,
                    tick: None,
                },
            )
        })
        .py_err()?;
    report.backend_version = version;
    let v = serde_json::to_value(&report).map_err(|e| RdeployError::new_err(e.to_string()))?;
    json_to_py(py, &v)
}

/// Fails unless `name` is letters, digits, '-' and '_' (what a registered backend or pass may be
/// called: it appears in configs, logs and file names).
pub(crate) fn plain_name(kind: &str, name: &str) -> PyResult<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ConfigError::new_err(format!(
            "'{name}' is not a {kind} name: use letters, digits, '-' and '_'"
        )));
    }
    Ok(())
}

/// Registers a backend written in Python under `name`, usable by deploy, load, compare and
/// bench in this process like a built-in one. `manager` (a class or an instance) has MMDeploy's
/// manager methods: `is_available()`, `get_version()`, `to_backend(ir_files, work_dir,
/// deploy_cfg, log_level, device) -> list of backend files`, and `build_wrapper(backend_files,
/// device, input_names, output_names, deploy_cfg)` returning an object with `forward(dict) ->
/// dict` (and optionally `inputs`/`outputs`: lists of (name, dtype, shape)).
///
/// Raises ConfigError when the name is taken or not a valid backend name.
#[pyfunction]
fn register_backend(name: &str, manager: Bound<'_, PyAny>) -> PyResult<()> {
    plain_name("backend", name)?;
    for m in ["is_available", "to_backend", "build_wrapper"] {
        if !manager.hasattr(m)? {
            return Err(ConfigError::new_err(format!(
                "the manager for backend '{name}' has no {m}(); it needs MMDeploy's manager methods: is_available, get_version, to_backend, build_wrapper"
            )));
        }
    }
    let kinds: Vec<String> = match manager.getattr_opt("device_kinds")? {
        Some(k) => k.extract().map_err(|_| {
            ConfigError::new_err(format!(
                "the manager for backend '{name}': device_kinds must be a list of device kinds such as ['cpu', 'cuda']"
            ))
        })?,
        None => vec!["cpu".into()],
    };
    // Leaked once per registration: the contract hands out `&str`s for the process's life.
    let device_kinds: &'static [&'static str] = Box::leak(
        kinds
            .into_iter()
            .map(|k| &*Box::leak(k.to_ascii_lowercase().into_boxed_str()))
            .collect::<Vec<&'static str>>()
            .into_boxed_slice(),
    );
    let backend = pybackend::PyBackend {
        name: name.to_string(),
        manager: pybackend::Manager::Object(manager.unbind()),
        device_kinds,
    };
    let mut reg = REGISTRY
        .write()
        .map_err(|_| RdeployError::new_err("the backend registry is poisoned"))?;
    reg.register(Arc::new(backend)).py_err()
}

/// MMDeploy's `to_backend` for one backend: the graph passes it asks for, then its conversion.
/// Returns the backend files.
#[pyfunction]
#[pyo3(signature = (backend, ir_files, work_dir, deploy_cfg, device = "cpu"))]
fn _to_backend(
    py: Python<'_>,
    backend: &str,
    ir_files: Vec<Bound<'_, PyAny>>,
    work_dir: &Bound<'_, PyAny>,
    deploy_cfg: &Bound<'_, PyAny>,
    device: &str,
) -> PyResult<Vec<String>> {
    let ir = match ir_files.as_slice() {
        [one] => path_arg(one)?,
        _ => {
            return Err(RdeployError::new_err(format!(
                "{backend}: to_backend takes one ONNX file (the IR), got {}",
                ir_files.len()
            )));
        }
    };
    let work_dir = path_arg(work_dir)?;
    let cfg = config_arg(deploy_cfg)?.deploy_config();
    let device = device_arg(Some(device))?.unwrap_or_else(Device::cpu);
    let reg = registry();
    let be = reg.get(backend).py_err()?;
    let (files, _) = py
        .detach(move || {
            std::fs::create_dir_all(&work_dir)
                .map_err(|e| rdeploy::Error::io("cannot create", work_dir.clone(), e))?;
            rdeploy::to_backend(be.as_ref(), &ir, &cfg, &work_dir, &device)
        })
        .py_err()?;
    Ok(files.iter().map(|p| p.display().to_string()).collect())
}

/// MMDeploy's `build_wrapper` for one backend.
#[pyfunction]
#[pyo3(signature = (backend, backend_files, device = "cpu", input_names = None, output_names = None, deploy_cfg = None))]
fn _build_wrapper(
    py: Python<'_>,
    backend: &str,
    backend_files: Vec<Bound<'_, PyAny>>,
    device: &str,
    input_names: Option<Vec<String>>,
    output_names: Option<Vec<String>>,
    deploy_cfg: Option<&Bound<'_, PyAny>>,
) -> PyResult<Wrapper> {
    let files = backend_files
        .iter()
        .map(path_arg)
        .collect::<PyResult<Vec<_>>>()?;
    let cfg = match deploy_cfg {
        Some(c) if !c.is_none() => config_arg(c)?.deploy_config(),
        _ => rdeploy::DeployConfig(serde_json::json!({"backend_config": {"type": backend}})),
    };
    let device = device_arg(Some(device))?.unwrap_or_else(Device::cpu);
    let reg = registry();
    let be = reg.get(backend).py_err()?;
    let (i, o) = (
        input_names.unwrap_or_default(),
        output_names.unwrap_or_default(),
    );
    let inner = py
        .detach(move || be.build_wrapper(&files, &device, &i, &o, &cfg))
        .py_err()?;
    Ok(Wrapper {
        inner: Arc::from(inner),
        example_shapes: Default::default(),
        backend_version: String::new(),
    })
}

/// `(available, version or reason)` of one backend.
#[pyfunction]
fn _backend_check(py: Python<'_>, backend: &str) -> PyResult<(bool, String)> {
    let be = registry().get(backend).py_err()?;
    Ok(match py.detach(move || be.check()) {
        Ok(v) => (true, v),
        Err(r) => (false, r),
    })
}

/// The native module.
#[pymodule]
fn _rdeploy(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Rust `log` records (tracing's, with no tracing subscriber here) go to Python's logging,
    // under the logger names of their modules (`rdeploy`, `rdeploy_onnx`...).
    // Levels are not cached, so `logging.getLogger(...).setLevel` takes effect at once.
    let _ = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::Loggers)?.install();
    // Engine panics caught as errors are not printed (with a backtrace) on stderr.
    rdeploy::guard::quiet_engine_panics();
    let py = m.py();
    // Engines installed as wheels are found in this interpreter's own package folders.
    let sys = py.import("sys")?;
    let dirs: Vec<String> = sys.getattr("path")?.extract()?;
    let exe: String = sys.getattr("executable")?.extract()?;
    rdeploy::core::locate::set_python_site_dirs(
        dirs.into_iter()
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect(),
        exe,
    );
    m.add("__version__", rdeploy::VERSION)?;
    m.add("Error", py.get_type::<RdeployError>())?;
    m.add("BackendUnavailable", py.get_type::<BackendUnavailable>())?;
    m.add("InputMismatch", py.get_type::<InputMismatch>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ModelError", py.get_type::<convert::ModelError>())?;
    m.add("WorkDirError", py.get_type::<convert::WorkDirError>())?;
    m.add("BackendError", py.get_type::<convert::BackendError>())?;
    m.add("DeviceError", py.get_type::<DeviceError>())?;
    m.add("TensorFileError", py.get_type::<convert::TensorFileError>())?;
    m.add_class::<Config>()?;
    m.add_class::<WorkDir>()?;
    m.add_class::<Wrapper>()?;
    m.add_class::<TensorSpec>()?;
    m.add_function(wrap_pyfunction!(check_env, m)?)?;
    m.add_function(wrap_pyfunction!(backends, m)?)?;
    m.add_function(wrap_pyfunction!(deploy, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(bench_wrapper, m)?)?;
    m.add_function(wrap_pyfunction!(register_backend, m)?)?;
    m.add_function(wrap_pyfunction!(pypass::register_pass, m)?)?;
    m.add_function(wrap_pyfunction!(pypass::unregister_pass, m)?)?;
    m.add_function(wrap_pyfunction!(_to_backend, m)?)?;
    m.add_function(wrap_pyfunction!(_build_wrapper, m)?)?;
    m.add_function(wrap_pyfunction!(_backend_check, m)?)?;
    Ok(())
}
