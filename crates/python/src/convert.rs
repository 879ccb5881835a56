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

use pyo3::exceptions::PyException;

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

/// A `KeyboardInterrupt`/`SystemExit` raised inside Python backend code while rdeploy was
/// running it: re-raised as itself when the call returns, so Ctrl-C stops a deploy.
static PENDING: std::sync::Mutex<Option<PyErr>> = std::sync::Mutex::new(None);

/// Keeps `e` to re-raise if it is not an `Exception` (interrupts, exits).
pub fn keep_if_interrupt(py: Python<'_>, e: &PyErr) {
    if !e.is_instance_of::<PyException>(py)
        && let Ok(mut slot) = PENDING.lock()
        && slot.is_none()
    {
        *slot = Some(e.clone_ref(py));
    }
}

/// The Python exception for an rdeploy error, with the CLI's one-paragraph message.
pub fn to_py(e: Error) -> PyErr {
    if let Some(pending) = PENDING.lock().ok().and_then(|mut s| s.take()) {
        return pending;
    }
    // A message quoting a value (a huge number, a buffer) stays readable.
    let msg = truncate(&e.report(), 2000);
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

/// The `ml_dtypes` module, which gives NumPy bfloat16, float8, int4, uint4, float4, int2 and
/// uint2 types.
///
/// # Errors
/// An [`RdeployError`] saying to install it, naming the dtype that needs it.
fn ml_dtypes<'py>(py: Python<'py>, d: DType) -> PyResult<Bound<'py, PyModule>> {
    py.import("ml_dtypes").map_err(|e| {
        RdeployError::new_err(format!(
            "{d} tensors are numpy arrays of ml_dtypes.{} and the ml_dtypes package cannot be \
             imported ({e}); pip install ml_dtypes",
            d.numpy_name()
        ))
    })
}

/// The `ml_dtypes` type of `d` (`ml_dtypes.int2`...).
///
/// # Errors
/// An [`RdeployError`] when `ml_dtypes` cannot be imported or is too old to have the type
/// (int2 and uint2 came in ml_dtypes 0.5).
fn ml_dtype<'py>(py: Python<'py>, d: DType) -> PyResult<Bound<'py, PyAny>> {
    let m = ml_dtypes(py, d)?;
    m.getattr(d.numpy_name()).map_err(|_| {
        let version = m
            .getattr("__version__")
            .and_then(|v| v.extract::<String>())
            .unwrap_or_else(|_| "of unknown version".into());
        RdeployError::new_err(format!(
            "{d} tensors are numpy arrays of ml_dtypes.{}, which ml_dtypes {version} lacks; \
             pip install -U ml_dtypes",
            d.numpy_name()
        ))
    })
}

/// Whether NumPy holds `d` only through `ml_dtypes`.
fn needs_ml_dtypes(d: DType) -> bool {
    d == DType::BF16 || d.is_float8() || d.packed_bits().is_some()
}

/// A tensor as a numpy array. Numeric buffers are handed to numpy as they are (no copy);
/// bfloat16, float8 and the 4- and 2-bit types become arrays of their `ml_dtypes` type (a view
/// of the same bytes; 4- and 2-bit types one element per byte, as ml_dtypes holds them), strings
/// a unicode
/// (`<U`) array.
///
/// # Errors
/// An [`RdeployError`] when the tensor needs `ml_dtypes` and it cannot be imported.
pub fn tensor_to_py<'py>(py: Python<'py>, t: Tensor) -> PyResult<Bound<'py, PyAny>> {
    let d = t.dtype();
    let shape = t.shape().to_vec();
    match t {
        Tensor::F32(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::F16(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::F64(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::I8(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::I16(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::I32(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::I64(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::U8(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::U16(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::U32(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::U64(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::Bool(a) => Ok(a.into_pyarray(py).into_any()),
        Tensor::Str(a) => {
            let np = py.import("numpy")?;
            let items = PyList::new(py, a.iter().map(String::as_str))?;
            let longest = a
                .iter()
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
                .max(1);
            np.call_method1("array", (items, format!("<U{longest}")))?
                .call_method1("reshape", (PyTuple::new(py, &shape)?,))
        }
        other => {
            let ty = ml_dtype(py, d)?;
            let bytes = other.as_bytes().map_err(to_py)?;
            let raw = if d.size() == 2 {
                let v: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect();
                v.into_pyarray(py).into_any()
            } else {
                bytes.to_vec().into_pyarray(py).into_any()
            };
            raw.call_method1("view", (ty,))?
                .call_method1("reshape", (PyTuple::new(py, &shape)?,))
        }
    }
}

/// A numpy array of strings (`U`, `S`, or `object` holding `str`/`bytes`) as a string tensor.
fn strings_from_array(a: &Bound<'_, PyUntypedArray>, name: &str) -> PyResult<Tensor> {
    let shape = a.shape().to_vec();
    let items = a.call_method0("ravel")?.call_method0("tolist")?;
    let mut out = Vec::with_capacity(a.len());
    for item in items.try_iter()? {
        let item = item?;
        if let Ok(s) = item.extract::<String>() {
            out.push(s);
        } else if let Ok(b) = item.extract::<Vec<u8>>() {
            out.push(String::from_utf8(b).map_err(|e| {
                InputMismatch::new_err(format!("input '{name}': bytes that are not UTF-8 ({e})"))
            })?);
        } else {
            return Err(InputMismatch::new_err(format!(
                "input '{name}': an object array must hold only str or bytes, not {}",
                item.get_type().name()?
            )));
        }
    }
    Tensor::from_strings(&shape, out).map_err(to_py)
}

/// A numpy array of an `ml_dtypes` type (bfloat16, float8_*, int4, uint4, float4_e2m1fn, int2,
/// uint2) as a
/// tensor: its bytes, viewed as unsigned integers of the same width.
fn ml_dtypes_from_array(a: &Bound<'_, PyUntypedArray>, name: &str) -> Option<PyResult<Tensor>> {
    let dtype_name: String = a.dtype().getattr("name").ok()?.extract().ok()?;
    let d: DType = dtype_name.parse().ok()?;
    if !needs_ml_dtypes(d) {
        return None;
    }
    Some((|| {
        let py = a.py();
        let np = py.import("numpy")?;
        let unsigned = if d.size() == 2 { "uint16" } else { "uint8" };
        let raw = np
            .call_method1("ascontiguousarray", (a,))?
            .call_method1("view", (unsigned,))?
            .cast_into::<PyUntypedArray>()
            .map_err(PyErr::from)?;
        let t = from_array(&raw, name).ok_or_else(|| {
            InputMismatch::new_err(format!("input '{name}': cannot read the {d} array"))
        })??;
        let bytes = t.as_bytes().map_err(to_py)?;
        Tensor::from_le_bytes(d, t.shape(), bytes).map_err(to_py)
    })())
}

/// Copies a typed numpy array into a tensor (one memcpy when it is C-contiguous).
fn typed<T: numpy::Element + rdeploy::core::Element + Copy>(
    a: &Bound<'_, PyUntypedArray>,
    name: &str,
) -> Option<PyResult<Tensor>> {
    let a = a.cast::<PyArrayDyn<T>>().ok()?;
    let ro = a.try_readonly().ok()?;
    let view = ro.as_array();
    Some((|| {
        let n = view.len();
        let bytes = rdeploy::core::files::checked_bytes(view.shape(), std::mem::size_of::<T>())
            .map_err(|m| InputMismatch::new_err(format!("input '{name}': {m}")))?;
        let mut v: Vec<T> = Vec::new();
        v.try_reserve_exact(n).map_err(|_| {
            InputMismatch::new_err(format!(
                "input '{name}': cannot allocate {bytes} bytes for a shape of {:?}",
                view.shape()
            ))
        })?;
        match view.as_slice() {
            Some(s) => v.extend_from_slice(s),
            None => v.extend(view.iter().copied()),
        }
        Tensor::from_shape_vec(view.shape(), v).map_err(to_py)
    })())
}

/// Checks a numpy array's dtype, rank and fixed dims against the input's signature before
/// anything is copied (a wrong shape claiming terabytes is refused, not allocated).
///
/// # Errors
/// [`InputMismatch`] in the words of rdeploy's signature check.
pub fn precheck(a: &Bound<'_, PyUntypedArray>, spec: &TensorInfo) -> PyResult<()> {
    let dtype = a.dtype();
    let got_dtype = dtype.getattr("name")?.extract::<String>()?;
    let is_text = matches!(dtype.kind(), b'U' | b'S' | b'O');
    if (spec.dtype == DType::Str) != is_text || (!is_text && got_dtype != spec.dtype.numpy_name()) {
        return Err(InputMismatch::new_err(format!(
            "input '{}': expected dtype {}, got dtype {got_dtype}",
            spec.name, spec.dtype
        )));
    }
    if let Some(dims) = &spec.shape {
        let shape = a.shape();
        let fits = dims.len() == shape.len()
            && dims
                .iter()
                .zip(shape)
                .all(|(d, &n)| d.fixed().is_none_or(|f| f as usize == n));
        if !fits {
            return Err(InputMismatch::new_err(format!(
                "input '{}': expected shape {}, got shape {shape:?}",
                spec.name,
                spec.shape_string()
            )));
        }
    }
    Ok(())
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
            // Lists and scalars take the input's dtype when that loses nothing: bool to bool,
            // ints to ints (numpy refuses values out of range) or floats, floats to floats.
            // Strings, floats to ints and numbers to bool are refused rather than truncated.
            let converted = np.call_method1("asarray", (&obj,)).and_then(|natural| match want {
                Some(d) if !is_array_like => {
                    let from: String = natural.getattr("dtype")?.getattr("kind")?.extract()?;
                    let to = if d == DType::Bool {
                        "b"
                    } else if d == DType::Str {
                        "U"
                    } else if d.is_float() {
                        "f"
                    } else {
                        "i"
                    };
                    let ok = matches!(
                        (from.as_str(), to),
                        ("b", "b") | ("f", "f") | ("i" | "u", "i" | "f") | ("U" | "S", "U")
                    );
                    if ok && needs_ml_dtypes(d) {
                        let ty = ml_dtype(py, d)?;
                        np.call_method1("asarray", (&obj, ty))
                    } else if ok && d == DType::Str {
                        Ok(natural)
                    } else if ok {
                        np.call_method1("asarray", (&obj, d.numpy_name()))
                    } else {
                        Err(InputMismatch::new_err(format!(
                            "input '{name}': the values are {}, which do not convert to {} without loss; give a numpy array of dtype {}",
                            natural.getattr("dtype")?.str()?,
                            d.numpy_name(),
                            d.numpy_name()
                        )))
                    }
                }
                _ => Ok(natural),
            });
            converted
                .map_err(|e| {
                    if e.is_instance_of::<InputMismatch>(py) {
                        e
                    } else {
                        InputMismatch::new_err(format!(
                            "input '{name}': numpy cannot make an array of it ({})",
                            truncate(&e.to_string(), 300)
                        ))
                    }
                })?
                .cast_into::<PyUntypedArray>()
                .map_err(|_| {
                    InputMismatch::new_err(format!(
                        "input '{name}': expected a numpy array (or something numpy.asarray takes)"
                    ))
                })?
        }
    };
    if let Some(t) = from_array(&arr, name) {
        return t;
    }
    if matches!(arr.dtype().kind(), b'U' | b'S' | b'O') {
        return strings_from_array(&arr, name);
    }
    if let Some(t) = ml_dtypes_from_array(&arr, name) {
        return t;
    }
    // Byte-swapped or unaligned arrays: numpy makes a native copy.
    let dtype = arr.dtype();
    if matches!(dtype.kind(), b'f' | b'i' | b'u' | b'b') {
        let native = dtype.call_method1("newbyteorder", ("=",))?;
        let copy = np
            .call_method1("ascontiguousarray", (arr.clone(), native))?
            .cast_into::<PyUntypedArray>()
            .map_err(PyErr::from)?;
        if let Some(t) = from_array(&copy, name) {
            return t;
        }
    }
    Err(InputMismatch::new_err(format!(
        "input '{name}': dtype {} is not supported; use one of float32, float16, float64, int8/16/32/64, uint8/16/32/64, bool, str, or (with ml_dtypes) bfloat16, float8_*, int4, uint4, float4_e2m1fn",
        dtype.str()?
    )))
}

fn from_array(a: &Bound<'_, PyUntypedArray>, name: &str) -> Option<PyResult<Tensor>> {
    typed::<f32>(a, name)
        .or_else(|| typed::<half::f16>(a, name))
        .or_else(|| typed::<f64>(a, name))
        .or_else(|| typed::<i64>(a, name))
        .or_else(|| typed::<i32>(a, name))
        .or_else(|| typed::<u8>(a, name))
        .or_else(|| typed::<bool>(a, name))
        .or_else(|| typed::<i8>(a, name))
        .or_else(|| typed::<i16>(a, name))
        .or_else(|| typed::<u16>(a, name))
        .or_else(|| typed::<u32>(a, name))
        .or_else(|| typed::<u64>(a, name))
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
        Value::Tuple(items) | Value::List(items) => {
            let items = items
                .iter()
                .map(|x| value_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            if matches!(v, Value::Tuple(_)) {
                PyTuple::new(py, items)?.into_any()
            } else {
                PyList::new(py, items)?.into_any()
            }
        }
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        other => json_to_py(py, &other.to_json())?,
    })
}

/// Plain Python objects (a config dict in MMDeploy's form) as a config value: int keys and
/// tuples kept, as mmengine keeps them.
///
/// # Errors
/// [`ConfigError`] naming the key path of a value that is not a literal, a key that is not a
/// str or int, an int outside 64 bits, or nesting deeper than config files allow (64, which
/// also stops self-referencing dicts).
pub fn py_to_value(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    to_value(obj, path, 0)
}

/// How deep a config may nest (the file parsers' limit).
const MAX_DEPTH: usize = 64;

fn to_value(obj: &Bound<'_, PyAny>, path: &str, depth: usize) -> PyResult<Value> {
    let at = |p: &str| {
        if p.is_empty() {
            "the config".to_string()
        } else {
            format!("config key '{p}'")
        }
    };
    if depth > MAX_DEPTH {
        return Err(ConfigError::new_err(format!(
            "{}: nested more than {MAX_DEPTH} deep (or refers to itself)",
            at(path)
        )));
    }
    if obj.is_none() {
        return Ok(Value::None);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.cast::<PyInt>().is_ok() {
        return obj.extract::<i64>().map(Value::Int).map_err(|_| {
            ConfigError::new_err(format!("{}: the integer does not fit in 64 bits", at(path)))
        });
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(s.to_string()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut out = Vec::new();
        for (k, v) in d.iter() {
            let key = if k.cast::<PyBool>().is_err() && k.cast::<PyInt>().is_ok() {
                Key::Int(k.extract::<i64>().map_err(|_| {
                    ConfigError::new_err(format!("{}: a key does not fit in 64 bits", at(path)))
                })?)
            } else if let Ok(s) = k.cast::<PyString>() {
                Key::Str(s.to_string())
            } else {
                return Err(ConfigError::new_err(format!(
                    "{}: the key {} is a {}; config keys are str or int",
                    at(path),
                    truncate(&k.repr()?.to_string(), 80),
                    k.get_type().name()?
                )));
            };
            let sub = if path.is_empty() {
                key.to_json_key()
            } else {
                format!("{path}.{}", key.to_json_key())
            };
            out.push((key, to_value(&v, &sub, depth + 1)?));
        }
        return Ok(Value::Dict(Dict(out)));
    }
    let is_tuple = obj.cast::<PyTuple>().is_ok();
    if is_tuple || obj.cast::<PyList>().is_ok() {
        let mut v = Vec::new();
        for (i, x) in obj.try_iter()?.enumerate() {
            v.push(to_value(&x?, &format!("{path}[{i}]"), depth + 1)?);
        }
        return Ok(if is_tuple {
            Value::Tuple(v)
        } else {
            Value::List(v)
        });
    }
    Err(ConfigError::new_err(format!(
        "{}: a {} is not a config value; use dicts, lists, tuples, strings, numbers, booleans and None",
        at(path),
        obj.get_type().name()?
    )))
}

/// At most `max` characters of `s`, saying how many were left out.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}… ({} more characters)", &s[..i], s[i..].chars().count()),
    }
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
