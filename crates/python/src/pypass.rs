//! Graph passes written in Python (`rdeploy.register_pass`): a function over the serialized
//! ONNX model, run by every deploy from Python for the backends it names, after rdeploy's own
//! rewrite rules, like MMDeploy's rewriters registered per backend.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rdeploy::core::onnx::proto::ModelProto;
use rdeploy::passes::{Pass, PassContext, PassOutcome};
use rdeploy::{Error, RewriteRegistry};
use std::sync::{Arc, LazyLock, RwLock};

/// The rewrite rules and passes deploys from Python use: rdeploy's, plus Python's.
static REWRITES: LazyLock<RwLock<RewriteRegistry>> =
    LazyLock::new(|| RwLock::new(RewriteRegistry::builtin()));

/// A snapshot of the process's rewrite registry.
pub(crate) fn rewrites() -> RewriteRegistry {
    match REWRITES.read() {
        Ok(r) => r.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// A Python function `f(model: bytes) -> bytes | None` as a pass.
struct PyPass {
    name: String,
    func: Py<PyAny>,
}

impl Pass for PyPass {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&self, model: &mut ModelProto, cx: &PassContext<'_>) -> rdeploy::Result<PassOutcome> {
        let bytes = prost::Message::encode_to_vec(model);
        let fail = |msg: String| {
            Error::model(
                cx.model_path,
                format!("the Python pass '{}' {msg}", self.name),
            )
        };
        let out: Option<Vec<u8>> = Python::attach(|py| {
            IN_PASS.with(|c| c.set(c.get() + 1));
            let r = self.func.call1(py, (PyBytes::new(py, &bytes),));
            IN_PASS.with(|c| c.set(c.get().saturating_sub(1)));
            let r =
                r.map_err(|e| fail(format!("raised {}", crate::pybackend::describe(py, &e))))?;
            let r = r.bind(py);
            if r.is_none() {
                return Ok(None);
            }
            r.extract::<Vec<u8>>().map(Some).map_err(|_| {
                fail(format!(
                    "returned {}, not bytes (the serialized model: onnx's model.SerializeToString()) or None",
                    r.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })
        })?;
        let Some(out) = out else {
            return Ok(PassOutcome::default());
        };
        if out == bytes {
            return Ok(PassOutcome::default());
        }
        *model = rdeploy::core::onnx::decode(&out)
            .map_err(|e| fail(format!("returned bytes that are not an ONNX model: {e}")))?;
        Ok(PassOutcome {
            changed: true,
            notes: vec![format!("Python pass '{}' rewrote the model", self.name)],
            ..Default::default()
        })
    }
}

/// Registers a graph pass written in Python, run by deploys from this process after rdeploy's
/// rewrite rules: `func(model: bytes) -> bytes | None` takes the serialized ONNX model
/// (`onnx.load_from_string`) and returns the rewritten one (`SerializeToString()`), or None to
/// leave it. `backends`: the backend names it runs for (all when None). The manifest lists it
/// under `passes`; `rewrite_config = dict(disable=[name])` switches it off.
///
/// Raises ConfigError for a name that is not a plain identifier or that rdeploy's own passes
/// use, or a func that is not callable.
#[pyfunction]
#[pyo3(signature = (name, func, backends = None))]
pub(crate) fn register_pass(
    name: &str,
    func: Bound<'_, PyAny>,
    backends: Option<Bound<'_, PyAny>>,
) -> PyResult<()> {
    use crate::convert::ConfigError;
    // One name or a list of names, each a registered backend (aliases become their names).
    let backends: Vec<String> = match backends {
        None => Vec::new(),
        Some(b) if b.is_none() => Vec::new(),
        Some(b) => {
            let names: Vec<String> = match b.extract::<String>() {
                Ok(one) => vec![one],
                Err(_) => b.extract::<Vec<String>>().map_err(|_| {
                    ConfigError::new_err(format!(
                        "backends of the pass '{name}' must be a backend name or a list of them"
                    ))
                })?,
            };
            if names.is_empty() {
                return Err(ConfigError::new_err(format!(
                    "backends of the pass '{name}' is empty; pass None for every backend"
                )));
            }
            let reg = crate::registry();
            names
                .iter()
                .map(|n| {
                    reg.get(n).map(|b| b.name().to_string()).map_err(|_| {
                        ConfigError::new_err(format!(
                            "the pass '{name}' names backend '{n}', which is not registered (known: {})",
                            reg.names().join(", ")
                        ))
                    })
                })
                .collect::<PyResult<_>>()?
        }
    };
    crate::plain_name("pass", name)?;
    let builtin = RewriteRegistry::builtin();
    if rdeploy::passes::KNOWN_PASS_NAMES.contains(&name)
        || builtin.rules().iter().any(|r| r.name() == name)
    {
        return Err(ConfigError::new_err(format!(
            "'{name}' is the name of one of rdeploy's own passes; choose another"
        )));
    }
    if !func.is_callable() {
        return Err(ConfigError::new_err(format!(
            "the pass '{name}' must be a callable taking the model's bytes"
        )));
    }
    let pass = PyPass {
        name: name.to_string(),
        func: func.unbind(),
    };
    let mut r = match REWRITES.write() {
        Ok(r) => r,
        Err(poisoned) => poisoned.into_inner(),
    };
    r.register_pass(Arc::new(pass), backends);
    Ok(())
}

thread_local! {
    /// How many Python passes this thread is inside.
    static IN_PASS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A deploy from inside a Python pass would run that pass again, without end: refused.
///
/// # Errors
/// RuntimeError when called from inside a pass.
pub(crate) fn refuse_inside_pass() -> PyResult<()> {
    if IN_PASS.with(|c| c.get()) > 0 {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "rdeploy.deploy was called from inside a graph pass registered with register_pass; a pass must transform the model bytes it is given, not deploy",
        ));
    }
    Ok(())
}

/// Removes the Python pass registered as `name`; returns whether there was one.
#[pyfunction]
pub(crate) fn unregister_pass(name: &str) -> bool {
    let mut r = match REWRITES.write() {
        Ok(r) => r,
        Err(poisoned) => poisoned.into_inner(),
    };
    r.unregister_pass(name)
}
