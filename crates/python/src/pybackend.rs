//! Backends written in Python (`rdeploy.register_backend`): a manager with MMDeploy's methods,
//! adapted to the backend contract so that deploy, load, compare and bench use it like a
//! built-in one.

use crate::convert::{json_to_py, py_to_tensor, tensor_to_py};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rdeploy::{
    BackendManager, DType, DeployConfig, Device, Dim, Error, Result, Signature, Tensor, TensorInfo,
    Wrapper,
};
use std::path::{Path, PathBuf};

/// A Python manager: an object (usually a class with classmethods) with MMDeploy's
/// `is_available()`, `get_version()`, `to_backend(ir_files, work_dir, deploy_cfg, log_level,
/// device)` and `build_wrapper(backend_files, device, input_names, output_names, deploy_cfg)`.
pub struct PyBackend {
    pub name: String,
    pub manager: Manager,
    /// From the manager's optional `device_kinds` attribute (default `["cpu"]`).
    pub device_kinds: &'static [&'static str],
}

/// The Python exception as text: `TypeName: message` (interrupts are kept to re-raise).
pub(crate) fn describe(py: Python<'_>, e: &PyErr) -> String {
    crate::convert::keep_if_interrupt(py, e);
    let ty = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    format!("{ty}: {}", e.value(py))
}

/// Where a Python backend's manager comes from.
pub enum Manager {
    /// Given to `register_backend`.
    Object(Py<PyAny>),
    /// An `rdeploy.backends` entry point (`module:attribute`), imported on first use so that
    /// `import rdeploy` stays fast and a broken package only makes its backend unavailable.
    Entry {
        value: String,
        loaded: std::sync::OnceLock<Py<PyAny>>,
    },
}

impl PyBackend {
    /// The manager object, importing an entry point's module on first use.
    fn manager<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.manager {
            Manager::Object(m) => Ok(m.bind(py).clone()),
            Manager::Entry { value, loaded } => {
                if let Some(m) = loaded.get() {
                    return Ok(m.bind(py).clone());
                }
                let (module, attr) = value.split_once(':').unwrap_or((value, ""));
                let mut obj = py
                    .import(module)
                    .map_err(|e| {
                        pyo3::exceptions::PyImportError::new_err(format!(
                            "cannot import {value}: {}",
                            describe(py, &e)
                        ))
                    })?
                    .into_any();
                for part in attr.split('.').filter(|p| !p.is_empty()) {
                    obj = obj.getattr(part)?;
                }
                let _ = loaded.set(obj.clone().unbind());
                Ok(obj)
            }
        }
    }

    fn err(&self, py: Python<'_>, doing: &str, e: PyErr) -> Error {
        Error::backend(
            &self.name,
            format!("the Python backend's {doing} raised {}", describe(py, &e)),
        )
    }
}

fn cfg_to_py<'py>(py: Python<'py>, cfg: &DeployConfig) -> PyResult<Bound<'py, PyAny>> {
    json_to_py(py, &cfg.0)
}

fn paths(list: &[PathBuf]) -> Vec<String> {
    list.iter().map(|p| p.display().to_string()).collect()
}

impl BackendManager for PyBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn device_kinds(&self) -> &[&str] {
        self.device_kinds
    }

    fn check(&self) -> rdeploy::core::Availability {
        Python::attach(|py| {
            let m = self.manager(py).map_err(|e| describe(py, &e))?;
            let v = m
                .call_method0("is_available")
                .map_err(|e| format!("is_available() raised {}", describe(py, &e)))?;
            let ok = v.extract::<bool>().map_err(|_| {
                format!(
                    "the Python backend's is_available() returned {}, not True or False",
                    v.repr().map(|r| r.to_string()).unwrap_or_default()
                )
            })?;
            if !ok {
                // MMDeploy has no way to say why; rdeploy's managers add why_unavailable().
                return Err(match m.getattr_opt("why_unavailable") {
                    Ok(Some(f)) => f
                        .call0()
                        .and_then(|v| v.str().map(|s| s.to_string()))
                        .unwrap_or_else(|e| {
                            format!("why_unavailable() raised {}", describe(py, &e))
                        }),
                    _ => "the Python backend's is_available() returned False".into(),
                });
            }
            match m.getattr_opt("get_version") {
                Ok(Some(f)) => f
                    .call0()
                    .and_then(|v| v.str().map(|s| s.to_string()))
                    .map_err(|e| format!("get_version() raised {}", describe(py, &e))),
                _ => Ok("unknown".into()),
            }
        })
    }

    fn ir_passes(&self, deploy_cfg: &DeployConfig) -> Result<Vec<rdeploy::core::PassRequest>> {
        Python::attach(|py| {
            let run = || -> PyResult<Vec<rdeploy::core::PassRequest>> {
                let m = self.manager(py)?;
                let Some(f) = m.getattr_opt("ir_passes")? else {
                    return Ok(Vec::new());
                };
                let out = f.call1((cfg_to_py(py, deploy_cfg)?,))?;
                if out.is_none() {
                    return Ok(Vec::new());
                }
                let value = crate::convert::py_to_value(&out, "ir_passes()")?.to_json();
                crate::pybackend::pass_requests(value)
                    .map_err(pyo3::exceptions::PyTypeError::new_err)
            };
            run().map_err(|e| self.err(py, "ir_passes()", e))
        })
    }

    fn to_backend(
        &self,
        ir_files: &[PathBuf],
        deploy_cfg: &DeployConfig,
        work_dir: &Path,
        device: &Device,
    ) -> Result<Vec<PathBuf>> {
        // Python code joins paths itself (os.path.join(work_dir, ...)): give it an absolute dir
        // so that what it returns is absolute too.
        let work_dir =
            &std::path::absolute(work_dir).map_err(|e| Error::io("cannot resolve", work_dir, e))?;
        Python::attach(|py| {
            let run = || -> PyResult<Vec<String>> {
                let cfg = cfg_to_py(py, deploy_cfg)?;
                let out = self.manager(py)?.call_method1(
                    "to_backend",
                    (
                        paths(ir_files),
                        work_dir.display().to_string(),
                        cfg,
                        20, // logging.INFO, MMDeploy's default log_level
                        device.to_string(),
                    ),
                )?;
                if out.is_none() {
                    return Ok(Vec::new());
                }
                let bad = || {
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "to_backend must return a list of file paths, not {}",
                        crate::convert::truncate(
                            &out.repr().map(|r| r.to_string()).unwrap_or_default(),
                            120
                        )
                    ))
                };
                if out.cast::<pyo3::types::PyString>().is_ok() {
                    return Err(bad());
                }
                let os = py.import("os")?;
                out.try_iter()
                    .map_err(|_| bad())?
                    .map(|p| {
                        os.call_method1("fspath", (p?,))
                            .and_then(|s| s.extract::<String>())
                            .map_err(|_| bad())
                    })
                    .collect()
            };
            let files = run().map_err(|e| self.err(py, "to_backend", e))?;
            rdeploy::core::resolve_backend_files(&self.name, work_dir, files)
        })
    }

    fn build_wrapper(
        &self,
        backend_files: &[PathBuf],
        device: &Device,
        input_names: &[String],
        output_names: &[String],
        deploy_cfg: &DeployConfig,
    ) -> Result<Box<dyn Wrapper>> {
        let (obj, declared) = Python::attach(|py| {
            let run = || -> PyResult<(Py<PyAny>, Option<Io>)> {
                let cfg = cfg_to_py(py, deploy_cfg)?;
                let w = self.manager(py)?.call_method1(
                    "build_wrapper",
                    (
                        paths(backend_files),
                        device.to_string(),
                        input_names.to_vec(),
                        output_names.to_vec(),
                        cfg,
                    ),
                )?;
                if !w.hasattr("forward")? {
                    return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                        "build_wrapper returned {}, which has no forward(dict) method",
                        crate::convert::truncate(&w.repr()?.to_string(), 120)
                    )));
                }
                let declared = declared_signature(&w).map_err(|e| {
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "the wrapper's inputs/outputs must be lists of (name, dtype, shape): {e}"
                    ))
                })?;
                Ok((w.unbind(), declared))
            };
            run().map_err(|e| self.err(py, "build_wrapper", e))
        })?;
        // The signature: the wrapper's own `inputs`/`outputs` when it declares them, else the
        // ONNX among the backend files, else the manifest beside them.
        let (inputs, outputs) = match declared {
            Some(io) => io,
            None => rdeploy::core::signature_from_files(&self.name, backend_files)?,
        };
        let sig = rdeploy::core::select_signature(
            &self.name,
            &inputs,
            &outputs,
            input_names,
            output_names,
            device,
        )?;
        Ok(Box::new(PyWrapper {
            backend: self.name.clone(),
            obj,
            sig,
        }))
    }
}

/// A model's inputs and outputs.
type Io = (Vec<TensorInfo>, Vec<TensorInfo>);

/// `inputs`/`outputs` attributes of a Python wrapper: lists of `(name, dtype, shape)`.
fn declared_signature(w: &Bound<'_, PyAny>) -> PyResult<Option<Io>> {
    let (Some(i), Some(o)) = (w.getattr_opt("inputs")?, w.getattr_opt("outputs")?) else {
        return Ok(None);
    };
    let read = |list: &Bound<'_, PyAny>| -> PyResult<Vec<TensorInfo>> {
        list.try_iter()?
            .map(|item| {
                let item = item?;
                let (name, dtype, shape): (String, String, Option<Vec<Bound<'_, PyAny>>>) =
                    item.extract()?;
                let dtype: DType = dtype
                    .parse()
                    .map_err(|e: Error| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
                let shape = shape
                    .map(|dims| {
                        dims.iter()
                            .map(|d| {
                                if d.is_none() {
                                    Ok(Dim::Symbolic(String::new()))
                                } else if let Ok(n) = d.extract::<u64>() {
                                    Ok(Dim::Fixed(n))
                                } else {
                                    Ok(Dim::Symbolic(d.str()?.to_string()))
                                }
                            })
                            .collect::<PyResult<Vec<_>>>()
                    })
                    .transpose()?;
                Ok(TensorInfo { name, dtype, shape })
            })
            .collect()
    };
    Ok(Some((read(&i)?, read(&o)?)))
}

/// A wrapper built by a Python backend: `forward(dict) -> dict` called with the GIL held.
struct PyWrapper {
    backend: String,
    obj: Py<PyAny>,
    sig: Signature,
}

impl Wrapper for PyWrapper {
    fn backend(&self) -> &str {
        &self.backend
    }

    fn signature(&self) -> &Signature {
        &self.sig
    }

    fn execute(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        Python::attach(|py| {
            let run = || -> PyResult<Vec<Tensor>> {
                let d = PyDict::new(py);
                for (spec, t) in self.sig.inputs.iter().zip(inputs) {
                    d.set_item(&spec.name, tensor_to_py(py, t)?)?;
                }
                let out = self.obj.bind(py).call_method1("forward", (d,))?;
                let get = |i: usize, name: &str| -> PyResult<Bound<'_, PyAny>> {
                    if let Ok(d) = out.cast::<PyDict>() {
                        d.get_item(name)?.ok_or_else(|| {
                            pyo3::exceptions::PyKeyError::new_err(format!(
                                "forward() returned no output named '{name}'"
                            ))
                        })
                    } else if let Ok(l) = out.cast::<PyList>() {
                        l.get_item(i)
                    } else {
                        out.get_item(i)
                    }
                };
                self.sig
                    .outputs
                    .iter()
                    .enumerate()
                    .map(|(i, spec)| {
                        py_to_tensor(&get(i, &spec.name)?, &spec.name, Some(spec.dtype))
                    })
                    .collect()
            };
            let outs = run().map_err(|e| {
                Error::backend(
                    &self.backend,
                    format!("the Python wrapper's forward raised {}", describe(py, &e)),
                )
            })?;
            // What Python returns is checked like inputs are: dtype, rank, fixed dims.
            rdeploy::core::validate_outputs(&self.backend, &self.sig.outputs, &outs)?;
            Ok(outs)
        })
    }
}

/// The passes an `ir_passes()` returned: names, or `{"name": ..., "options": {...}}`.
pub(crate) fn pass_requests(
    value: serde_json::Value,
) -> std::result::Result<Vec<rdeploy::core::PassRequest>, String> {
    let serde_json::Value::Array(items) = value else {
        return Err(format!("ir_passes() must return a list, not {value}"));
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(name) => Ok(rdeploy::core::PassRequest::new(name)),
            serde_json::Value::Object(_) => serde_json::from_value(item.clone()).map_err(|e| {
                format!("ir_passes() returned {item}, not dict(name=..., options=...): {e}")
            }),
            other => Err(format!(
                "ir_passes() must return pass names or dict(name=..., options=...), got {other}"
            )),
        })
        .collect()
}
