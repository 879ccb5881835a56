//! Conversions between Python and rdeploy: numpy arrays and tensors, Python literals and JSON,
//! rdeploy errors and Python exceptions.

use numpy::{
    IntoPyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use rdeploy::config::{Dict, Key, Value};
use rdeploy::{DType, Dim, Error, Tensor, TensorInfo};
use serde_json::Value as Json;

/// The Python exception classes (their Rust names are their Python names).
pub mod exc {
    use pyo3::exceptions::PyException;
    pyo3::create_exception!(
        rdeploy,
        Error,
        PyException,
        "Base class of every rdeploy error; the message names the file, tensor, key or backend."
    );
}
pub use exc::Error as RdeployError;
pyo3::create_exception!(
    rdeploy,
    BackendUnavailable,
    RdeployError,
    "The backend is unknown or cannot run here (library missing, version too old)."
);
pyo3::create_exception!(
    rdeploy,
    InputMismatch,
    RdeployError,
    "Inputs do not match the model's signature (name, dtype, shape)."
);
pyo3::create_exception!(
    rdeploy,
    ConfigError,
    RdeployError,
    "A deploy config is malformed or does not fit the model."
);
pyo3::create_exception!(
    rdeploy,
    ModelError,
    RdeployError,
    "An ONNX model is missing, not ONNX, or cannot be loaded."
);
pyo3::create_exception!(
    rdeploy,
    WorkDirError,
    RdeployError,
    "A work dir has no manifest, is corrupt, or its files changed."
);
pyo3::create_exception!(
    rdeploy,
    BackendError,
    RdeployError,
    "The engine failed converting or running the model."
);
pyo3::create_exception!(
    rdeploy,
    DeviceError,
    RdeployError,
    "A device string is malformed or the backend cannot run on it."
);
pyo3::create_exception!(
    rdeploy,
    TensorFileError,
    RdeployError,
    "A tensor file (.npy, .npz, .pb) cannot be read or written."
);

/// The Python exception for an rdeploy error, with the CLI's one-paragraph message.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.report();
    match e {
        Error::UnknownBackend { .. } | Error::BackendUnavailable { .. } => {
            BackendUnavailable::new_err(msg)
        }
        Error::InputMismatch { .. } => InputMismatch::new_err(msg),
        Error::Config { .. } => ConfigError::new_err(msg),
        Error::Model { .. } => ModelError::new_err(msg),
        Error::WorkDir { .. } => WorkDirError::new_err(msg),
        Error::Backend { .. } => BackendError::new_err(msg),
        Error::Device { .. } => DeviceError::new_err(msg),
        Error::TensorFile { .. } | Error::Io { .. } => TensorFileError::new_err(msg),
        _ => RdeployError::new_err(msg),
    }
}

/// `Result<T, rdeploy::Error>` to `PyResult<T>`.
pub trait IntoPy<T> {
    /// Converts the error into the matching Python exception.
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for rdeploy::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// A tensor as a numpy array. The tensor's buffer is handed to numpy as it is (no copy).
pub fn tensor_to_py<'py>(py: Python<'py>, t: Tensor) -> Bound<'py, PyAny> {
    rdeploy::core::dispatch_tensor!(t, a => a.into_pyarray(py).into_any())
}

/// Copies a typed numpy array into a tensor (one memcpy when it is C-contiguous).
fn typed<T: numpy::Element + rdeploy::core::Element>(
    a: &Bound<'_, PyUntypedArray>,
) -> Option<Tensor> {
    let a = a.cast::<PyArrayDyn<T>>().ok()?;
    let ro = a.try_readonly().ok()?;
    Some(Tensor::from_array(ro.as_array().to_owned()))
}

/// Any array-like (numpy array, scalar, list, torch CPU tensor) as a tensor for the input
/// `name`. numpy arrays keep their dtype (a wrong one is the signature check's to report, as
/// ONNX Runtime does); lists and scalars take `want` when given.
///
/// # Errors
/// [`InputMismatch`] naming the input when the value is not numeric or has a dtype rdeploy
/// does not support (complex, object, strings, float128).
pub fn py_to_tensor(obj: &Bound<'_, PyAny>, name: &str, want: Option<DType>) -> PyResult<Tensor> {
    let py = obj.py();
    if obj.is_none() {
        return Err(InputMismatch::new_err(format!(
            "input '{name}': got None; give a numpy array"
        )));
    }
    let np = py.import("numpy")?;
    let arr = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => {
            // torch tensors: through numpy (CPU only; detach first).
            let obj = if obj.hasattr("detach")? && obj.hasattr("numpy")? {
                obj.call_method0("detach")?
                    .call_method0("cpu")?
                    .call_method0("numpy")?
            } else {
                obj.clone()
            };
            let is_array_like = obj.hasattr("__array__")? || obj.hasattr("__array_interface__")?;
            let converted = match want {
                Some(d) if !is_array_like => np.call_method1("asarray", (obj, d.numpy_name())),
                _ => np.call_method1("asarray", (obj,)),
            };
            converted
                .map_err(|e| {
                    InputMismatch::new_err(format!(
                        "input '{name}': numpy cannot make an array of it ({e})"
                    ))
                })?
                .cast_into::<PyUntypedArray>()
                .map_err(|_| {
                    InputMismatch::new_err(format!(
                        "input '{name}': expected a numpy array (or something numpy.asarray takes)"
                    ))
                })?
        }
    };
    if let Some(t) = from_array(&arr) {
        return Ok(t);
    }
    // Byte-swapped or unaligned arrays: numpy makes a native copy.
    let dtype = arr.dtype();
    if matches!(dtype.kind(), b'f' | b'i' | b'u' | b'b') {
        let native = dtype.call_method1("newbyteorder", ("=",))?;
        let copy = np
            .call_method1("ascontiguousarray", (arr.clone(), native))?
            .cast_into::<PyUntypedArray>()
            .map_err(PyErr::from)?;
        if let Some(t) = from_array(&copy) {
            return Ok(t);
        }
    }
    Err(InputMismatch::new_err(format!(
        "input '{name}': dtype {} is not supported; use one of float32, float16, float64, int8/16/32/64, uint8/16/32/64 or bool",
        dtype.str()?
    )))
}

fn from_array(a: &Bound<'_, PyUntypedArray>) -> Option<Tensor> {
    typed::<f32>(a)
        .or_else(|| typed::<half::f16>(a))
        .or_else(|| typed::<f64>(a))
        .or_else(|| typed::<i64>(a))
        .or_else(|| typed::<i32>(a))
        .or_else(|| typed::<u8>(a))
        .or_else(|| typed::<bool>(a))
        .or_else(|| typed::<i8>(a))
        .or_else(|| typed::<i16>(a))
        .or_else(|| typed::<u16>(a))
        .or_else(|| typed::<u32>(a))
        .or_else(|| typed::<u64>(a))
}

/// A JSON value as plain Python objects (dict, list, str, int, float, bool, None).
pub fn json_to_py<'py>(py: Python<'py>, v: &Json) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Json::Null => py.None().into_bound(py),
        Json::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => PyInt::new(py, i).into_any(),
            (None, Some(u)) => PyInt::new(py, u).into_any(),
            _ => PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any(),
        },
        Json::String(s) => PyString::new(py, s).into_any(),
        Json::Array(a) => {
            let items = a
                .iter()
                .map(|x| json_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Json::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// A config value as Python objects, as mmengine's `Config.to_dict()` gives them: int keys and
/// tuples kept.
pub fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Dict(d) => {
            let out = PyDict::new(py);
            for (k, x) in &d.0 {
                let x = value_to_py(py, x)?;
                match k {
                    Key::Str(s) => out.set_item(s, x)?,
                    Key::Int(i) => out.set_item(i, x)?,
                }
            }
            out.into_any()
        }
        Value::Tuple(items) => PyTuple::new(
            py,
            items
                .iter()
                .map(|x| value_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        Value::List(items) => PyList::new(
            py,
            items
                .iter()
                .map(|x| value_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        other => json_to_py(py, &other.to_json())?,
    })
}

/// Plain Python objects (a config dict in MMDeploy's form) as a config value: int keys and
/// tuples kept, as mmengine keeps them.
///
/// # Errors
/// [`ConfigError`] naming the key path of a value that is not a literal.
pub fn py_to_value(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut out = Vec::new();
        for (k, v) in d.iter() {
            let key = if k.cast::<PyInt>().is_ok() && k.cast::<PyBool>().is_err() {
                Key::Int(k.extract::<i64>()?)
            } else {
                Key::Str(k.str()?.to_string())
            };
            let sub = if path.is_empty() {
                key.to_json_key()
            } else {
                format!("{path}.{}", key.to_json_key())
            };
            out.push((key, py_to_value(&v, &sub)?));
        }
        return Ok(Value::Dict(Dict(out)));
    }
    let is_tuple = obj.cast::<PyTuple>().is_ok();
    if is_tuple || obj.cast::<PyList>().is_ok() {
        let mut v = Vec::new();
        for (i, x) in obj.try_iter()?.enumerate() {
            v.push(py_to_value(&x?, &format!("{path}[{i}]"))?);
        }
        return Ok(if is_tuple {
            Value::Tuple(v)
        } else {
            Value::List(v)
        });
    }
    Ok(Value::from_json(&py_to_json(obj, path)?))
}

/// Plain Python objects (a config dict in MMDeploy's form) as JSON. Tuples become lists;
/// dict keys become strings.
///
/// # Errors
/// [`ConfigError`] naming the key path of a value that is not a literal.
pub fn py_to_json(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Json> {
    if obj.is_none() {
        return Ok(Json::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Json::Bool(b.is_true()));
    }
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Json::from(i));
        }
        return Ok(Json::from(obj.extract::<u64>()?));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(serde_json::Number::from_f64(f.value())
            .map(Json::Number)
            .unwrap_or(Json::Null));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Json::String(s.to_string()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = serde_json::Map::new();
        for (k, v) in d.iter() {
            let key = k.str()?.to_string();
            let sub = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            m.insert(key, py_to_json(&v, &sub)?);
        }
        return Ok(Json::Object(m));
    }
    if obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok() {
        let mut v = Vec::new();
        for (i, x) in obj.try_iter()?.enumerate() {
            v.push(py_to_json(&x?, &format!("{path}[{i}]"))?);
        }
        return Ok(Json::Array(v));
    }
    Err(ConfigError::new_err(format!(
        "config key '{path}': a {} is not a config value; use dicts, lists, tuples, strings, numbers, booleans and None",
        obj.get_type().name()?
    )))
}

/// A tensor signature entry as Python sees it.
#[pyclass(module = "rdeploy", frozen)]
pub struct TensorSpec {
    name: String,
    dtype: String,
    shape: Option<Py<PyTuple>>,
}

#[pymethods]
impl TensorSpec {
    /// The tensor's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// numpy's dtype name (`float32`).
    #[getter]
    fn dtype(&self) -> String {
        self.dtype.clone()
    }

    /// Dims as a tuple: an int when fixed, a str for a named symbolic dim, None when unknown;
    /// None for an unknown rank.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        match &self.shape {
            Some(t) => t.bind(py).clone().into_any(),
            None => py.None().into_bound(py),
        }
    }

    /// Unpacks as `name, dtype, shape` (the form Python backends declare signatures in).
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let items: [Bound<'py, PyAny>; 3] = [
            PyString::new(py, &self.name).into_any(),
            PyString::new(py, &self.dtype).into_any(),
            self.shape(py),
        ];
        Ok(PyTuple::new(py, items)?.try_iter()?.into_any())
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        match other.cast::<TensorSpec>() {
            Ok(o) => {
                let o = o.get();
                Ok(
                    self.name == o.name
                        && self.dtype == o.dtype
                        && self.shape(py).eq(o.shape(py))?,
                )
            }
            Err(_) => Ok(false),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "TensorSpec(name={:?}, dtype='{}', shape={})",
            self.name,
            self.dtype,
            self.shape(py).repr()?
        ))
    }
}

/// A signature entry for Python.
pub fn spec(py: Python<'_>, t: &TensorInfo) -> PyResult<TensorSpec> {
    let shape = match &t.shape {
        None => None,
        Some(dims) => Some(
            dims.iter()
                .map(|d| {
                    Ok(match d {
                        Dim::Fixed(n) => PyInt::new(py, *n).into_any().unbind(),
                        Dim::Symbolic(s) if s.is_empty() => py.None(),
                        Dim::Symbolic(s) => PyString::new(py, s).into_any().unbind(),
                    })
                })
                .collect::<PyResult<Vec<_>>>()
                .and_then(|v| PyTuple::new(py, v))?
                .unbind(),
        ),
    };
    Ok(TensorSpec {
        name: t.name.clone(),
        dtype: t.dtype.numpy_name().to_string(),
        shape,
    })
}
