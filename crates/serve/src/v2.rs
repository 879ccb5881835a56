//! Open Inference Protocol (KServe v2) tensors: the JSON form of the HTTP API, the binary
//! tensor data extension, and the checks both protocols share.
//!
//! Source: the protocol's REST/gRPC specification (`required_api.md` in
//! github.com/kserve/open-inference-protocol) and Triton's binary data extension
//! (`docs/protocol/extension_binary_data.md` in github.com/triton-inference-server/server).

use crate::error::ServeError;
use rdeploy::core::{DType, Tensor};
use rdeploy_serving::datatype;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /v2/models/{name}/infer` body (the JSON part).
#[derive(Debug, Deserialize)]
pub struct InferRequest {
    /// Echoed in the response.
    #[serde(default)]
    pub id: Option<String>,
    /// `binary_data_output` and other request parameters.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// The input tensors.
    pub inputs: Vec<RequestInput>,
    /// The outputs wanted (all when absent).
    #[serde(default)]
    pub outputs: Option<Vec<RequestOutput>>,
}

/// One input tensor of a request.
#[derive(Debug, Deserialize)]
pub struct RequestInput {
    /// The input's name.
    pub name: String,
    /// Its v2 datatype (`FP32`).
    pub datatype: String,
    /// Its shape.
    pub shape: Vec<i64>,
    /// `binary_data_size` when the data follows the JSON in binary.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// The elements, flat or nested, row-major (absent with binary data).
    #[serde(default)]
    pub data: Option<Value>,
}

/// One output asked for.
#[derive(Debug, Deserialize)]
pub struct RequestOutput {
    /// The output's name.
    pub name: String,
    /// `binary_data: true` to get it as binary.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
}

/// One output tensor of a response.
#[derive(Debug, Serialize)]
pub struct ResponseOutput {
    /// The output's name.
    pub name: String,
    /// Its v2 datatype.
    pub datatype: &'static str,
    /// Its shape.
    pub shape: Vec<usize>,
    /// `binary_data_size` when the data follows the JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    /// The elements, flat, when not binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<Value>>,
}

/// The JSON part of an infer response.
#[derive(Debug, Serialize)]
pub struct InferResponse {
    /// The model's name.
    pub model_name: String,
    /// The version that ran.
    pub model_version: String,
    /// The request's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The outputs.
    pub outputs: Vec<ResponseOutput>,
}

fn bad(msg: String) -> ServeError {
    ServeError::BadRequest(msg)
}

/// The dtype of an input's v2 datatype name.
///
/// # Errors
/// 400 naming the input and the datatypes rdeploy carries.
pub fn dtype_of(input: &str, name: &str) -> Result<DType, ServeError> {
    datatype::from_v2_name(name).ok_or_else(|| {
        bad(format!(
            "input '{input}': datatype '{name}' is not supported (use one of {})",
            datatype::supported_v2_names()
        ))
    })
}

/// A request shape as sizes.
///
/// # Errors
/// 400 for a negative dim or a shape whose byte size overflows.
pub fn shape_of(input: &str, shape: &[i64], dtype: DType) -> Result<Vec<usize>, ServeError> {
    let dims = shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            bad(format!(
                "input '{input}': shape {shape:?} has a negative dim"
            ))
        })?;
    rdeploy::core::files::checked_bytes(&dims, dtype.size())
        .map_err(|e| bad(format!("input '{input}': {e}")))?;
    Ok(dims)
}

/// A tensor from raw little-endian bytes (binary data extension, gRPC `raw_input_contents`).
///
/// # Errors
/// 400 when the byte count does not match the shape and datatype.
pub fn tensor_from_raw(
    input: &str,
    dtype: DType,
    shape: &[usize],
    bytes: &[u8],
) -> Result<Tensor, ServeError> {
    datatype::tensor_from_wire(dtype, shape, bytes)
        .map_err(|e| bad(format!("input '{input}': {e}")))
}

/// The binary form of an output: its little-endian buffer, or for `BYTES` each string as a
/// 4-byte little-endian length and its bytes.
///
/// # Errors
/// 400 naming the output when the protocol has no datatype for its dtype.
pub fn raw_bytes<'a>(
    output: &str,
    t: &'a Tensor,
) -> Result<std::borrow::Cow<'a, [u8]>, ServeError> {
    datatype::tensor_to_wire(&format!("output '{output}'"), t).map_err(bad)
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

/// A tensor from the JSON `data` of an input: flat or nested arrays, row-major.
///
/// # Errors
/// 400 naming the input and the first element that is not of the datatype (a string for
/// `FP32`, 1.5 or 300 for `UINT8`, a number for `BOOL`), or a wrong element count.
pub fn tensor_from_json(
    input: &str,
    dtype: DType,
    shape: &[usize],
    data: &Value,
) -> Result<Tensor, ServeError> {
    let mut items = Vec::new();
    flatten(data, &mut items);
    let n: usize = shape.iter().product();
    if items.len() != n {
        return Err(bad(format!(
            "input '{input}': {} elements given, shape {shape:?} needs {n}",
            items.len()
        )));
    }
    if dtype == DType::Str {
        let strings = items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    bad(format!(
                        "input '{input}': element {i} ({v}) is not a BYTES value (a JSON string)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Tensor::from_strings(shape, strings)
            .map_err(|e| bad(format!("input '{input}': {e}")));
    }
    let mut bytes = Vec::with_capacity(n * dtype.size());
    for (i, v) in items.iter().enumerate() {
        let wrong = || {
            bad(format!(
                "input '{input}': element {i} ({v}) is not a {} value",
                datatype::v2_name(dtype)
            ))
        };
        macro_rules! int {
            ($t:ty) => {{
                let x = if let Some(x) = v.as_i64() {
                    <$t>::try_from(x).ok()
                } else {
                    v.as_u64().and_then(|x| <$t>::try_from(x).ok())
                };
                bytes.extend_from_slice(&x.ok_or_else(wrong)?.to_le_bytes());
            }};
        }
        match dtype {
            DType::F32 => {
                bytes.extend_from_slice(&(v.as_f64().ok_or_else(wrong)? as f32).to_le_bytes())
            }
            DType::F64 => bytes.extend_from_slice(&v.as_f64().ok_or_else(wrong)?.to_le_bytes()),
            DType::F16 => bytes.extend_from_slice(
                &half::f16::from_f64(v.as_f64().ok_or_else(wrong)?).to_le_bytes(),
            ),
            DType::Bool => bytes.push(u8::from(v.as_bool().ok_or_else(wrong)?)),
            DType::I8 => int!(i8),
            DType::I16 => int!(i16),
            DType::I32 => int!(i32),
            DType::I64 => int!(i64),
            DType::U8 => int!(u8),
            DType::U16 => int!(u16),
            DType::U32 => int!(u32),
            DType::U64 => int!(u64),
            DType::BF16 => bytes.extend_from_slice(
                &half::bf16::from_f64(v.as_f64().ok_or_else(wrong)?).to_le_bytes(),
            ),
            other => {
                return Err(bad(datatype::checked_v2_name(
                    &format!("input '{input}'"),
                    other,
                )
                .err()
                .unwrap_or_else(|| {
                    format!("input '{input}': {other} cannot be sent as JSON")
                })));
            }
        }
    }
    tensor_from_raw(input, dtype, shape, &bytes)
}

/// The elements of `t` as JSON values, flat (NaN and infinities become `null`, as JSON has
/// no such numbers).
pub fn json_data(t: &Tensor) -> Vec<Value> {
    fn ints<T: rdeploy::core::Element + Into<Value>>(t: &Tensor) -> Vec<Value> {
        t.as_slice::<T>()
            .map(|s| s.iter().map(|&x| x.into()).collect())
            .unwrap_or_default()
    }
    match t.dtype() {
        DType::Bool => ints::<bool>(t),
        DType::I8 => ints::<i8>(t),
        DType::I16 => ints::<i16>(t),
        DType::I32 => ints::<i32>(t),
        DType::I64 => ints::<i64>(t),
        DType::U8 => ints::<u8>(t),
        DType::U16 => ints::<u16>(t),
        DType::U32 => ints::<u32>(t),
        DType::U64 => ints::<u64>(t),
        DType::Str => t
            .as_strings()
            .map(|s| s.iter().map(|x| Value::String(x.clone())).collect())
            .unwrap_or_default(),
        DType::U4 | DType::I4 | DType::U2 | DType::I2 => t
            .to_f64_vec()
            .into_iter()
            .map(|x| (x as i64).into())
            .collect(),
        DType::F16
        | DType::F32
        | DType::F64
        | DType::BF16
        | DType::F8E4M3FN
        | DType::F8E4M3FNUZ
        | DType::F8E5M2
        | DType::F8E5M2FNUZ
        | DType::F8E8M0
        | DType::F4E2M1 => t
            .to_f64_vec()
            .into_iter()
            .map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number))
            .collect(),
    }
}

/// A boolean request parameter (`binary_data`, `binary_data_output`).
pub fn flag(params: Option<&Map<String, Value>>, key: &str) -> Option<bool> {
    params.and_then(|p| p.get(key)).and_then(Value::as_bool)
}

/// The `binary_data_size` parameter of an input.
///
/// # Errors
/// 400 when it is present but not a non-negative integer.
pub fn binary_size(input: &RequestInput) -> Result<Option<usize>, ServeError> {
    match input
        .parameters
        .as_ref()
        .and_then(|p| p.get("binary_data_size"))
    {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                bad(format!(
                    "input '{}': binary_data_size {v} is not a byte count",
                    input.name
                ))
            }),
    }
}
