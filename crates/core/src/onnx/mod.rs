//! Reading, inspecting and editing ONNX models (protobuf via `prost` and the official
//! `onnx.proto`).

use crate::{DType, Dim, Error, Result, Tensor, TensorInfo, onnx_type_name};
use prost::Message;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// The ONNX protobuf messages, generated from `onnx.proto` by `scripts/gen-onnx-proto.sh`.
#[allow(missing_docs, clippy::all, reason = "generated code")]
pub mod proto {
    include!("proto.rs");
}

use proto::{GraphProto, ModelProto, TensorProto, tensor_proto::DataLocation, type_proto};

/// What rdeploy reports about a model: its signature and provenance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelInfo {
    /// Graph inputs that are not initializers, in graph order.
    pub inputs: Vec<TensorInfo>,
    /// Graph outputs, in graph order.
    pub outputs: Vec<TensorInfo>,
    /// Operator set imports: (domain, version); the default domain is `""`.
    pub opsets: Vec<(String, i64)>,
    /// The ONNX IR version.
    pub ir_version: i64,
    /// The producing tool and its version.
    pub producer: String,
    /// Nodes in the main graph.
    pub node_count: usize,
    /// The graph's name.
    pub graph_name: String,
}

impl ModelInfo {
    /// The default-domain (`ai.onnx`) opset version, if imported.
    pub fn opset(&self) -> Option<i64> {
        self.opsets
            .iter()
            .find(|(d, _)| d.is_empty() || d == "ai.onnx")
            .map(|(_, v)| *v)
    }
}

/// Reads an ONNX model from a file, with any external data loaded into the model.
///
/// # Errors
/// [`Error::Model`] naming the file: missing, empty, not ONNX, truncated, or with external data
/// that is missing.
pub fn load(path: &Path) -> Result<ModelProto> {
    crate::files::regular_file_size(path).map_err(|msg| Error::model(path, msg))?;
    let bytes = std::fs::read(path).map_err(|e| {
        let msg = if e.kind() == std::io::ErrorKind::NotFound {
            "file not found; check the path".to_string()
        } else {
            format!("cannot read: {e}")
        };
        Error::model(path, msg)
    })?;
    let mut model = decode(&bytes).map_err(|msg| Error::model(path, msg))?;
    let base = path.parent().unwrap_or(Path::new("."));
    internalize_external_data(&mut model, base).map_err(|msg| Error::model(path, msg))?;
    Ok(model)
}

/// Decodes an ONNX model from bytes.
///
/// # Errors
/// A message saying whether the bytes are empty, truncated or not ONNX at all.
pub fn decode(bytes: &[u8]) -> std::result::Result<ModelProto, String> {
    if bytes.is_empty() {
        return Err("the file is empty; expected an ONNX model".into());
    }
    let model = ModelProto::decode(bytes).map_err(|e| {
        let text = e.to_string();
        if text.contains("underflow") || text.contains("buffer") {
            format!("the file is truncated or corrupt ({text}); re-export or re-copy the model")
        } else {
            format!("not an ONNX model: it is not a valid ONNX protobuf ({text})")
        }
    })?;
    if model.ir_version.unwrap_or(0) <= 0 || model.graph.is_none() {
        return Err("not an ONNX model: it has no ir_version or no graph".into());
    }
    Ok(model)
}

/// Encodes a model and writes it atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn save(model: &ModelProto, path: &Path) -> Result<()> {
    let bytes = model.encode_to_vec();
    crate::atomic::write_atomic(path, |w| w.write_all(&bytes))
        .map_err(|e| Error::io("cannot write", path, e))
}

fn ext_entry<'a>(t: &'a TensorProto, key: &str) -> Option<&'a str> {
    t.external_data
        .iter()
        .find(|e| e.key() == key)
        .map(|e| e.value())
}

/// Loads every tensor stored as external data (beside the `.onnx` file) into the model itself.
fn internalize_external_data(
    model: &mut ModelProto,
    base: &Path,
) -> std::result::Result<(), String> {
    let mut cache: HashMap<String, Vec<u8>> = HashMap::new();
    let mut result = Ok(());
    if let Some(g) = model.graph.as_mut() {
        for_each_tensor_mut(g, &mut |t| {
            if result.is_err() || t.data_location() != DataLocation::External {
                return;
            }
            result = load_one_external(t, base, &mut cache);
        });
    }
    result
}

fn load_one_external(
    t: &mut TensorProto,
    base: &Path,
    cache: &mut HashMap<String, Vec<u8>>,
) -> std::result::Result<(), String> {
    let name = t.name().to_string();
    let location = ext_entry(t, "location")
        .ok_or_else(|| format!("tensor '{name}' is external but names no location"))?
        .to_string();
    let rel = Path::new(&location);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!(
            "tensor '{name}': external data location '{location}' must be a relative path \
             inside the model's folder"
        ));
    }
    let parse = |k: &str| -> std::result::Result<Option<usize>, String> {
        ext_entry(t, k)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| format!("tensor '{name}': bad {k} '{v}'"))
            })
            .transpose()
    };
    let offset = parse("offset")?.unwrap_or(0);
    let length = parse("length")?;
    if !cache.contains_key(&location) {
        let p = base.join(rel);
        let data = std::fs::read(&p).map_err(|e| {
            format!(
                "tensor '{name}': cannot read external data file {}: {e}; keep the data files \
                 beside the .onnx file",
                p.display()
            )
        })?;
        cache.insert(location.clone(), data);
    }
    let data = &cache[&location];
    let end = match length {
        Some(l) => offset.checked_add(l),
        None => Some(data.len()),
    };
    let slice = end.and_then(|end| data.get(offset..end)).ok_or_else(|| {
        format!("tensor '{name}': external data file '{location}' is shorter than the model says")
    })?;
    t.raw_data = Some(slice.to_vec());
    t.data_location = Some(DataLocation::Default as i32);
    t.external_data.clear();
    Ok(())
}

/// Calls `f` on every tensor of a graph: initializers and tensor attributes, subgraphs included.
fn for_each_tensor_mut(g: &mut GraphProto, f: &mut dyn FnMut(&mut TensorProto)) {
    for t in &mut g.initializer {
        f(t);
    }
    for n in &mut g.node {
        for a in &mut n.attribute {
            if let Some(t) = a.t.as_mut() {
                f(t);
            }
            for t in &mut a.tensors {
                f(t);
            }
            if let Some(sub) = a.g.as_mut() {
                for_each_tensor_mut(sub, f);
            }
            for sub in &mut a.graphs {
                for_each_tensor_mut(sub, f);
            }
        }
    }
}

fn value_info(v: &proto::ValueInfoProto) -> std::result::Result<TensorInfo, String> {
    let name = v.name().to_string();
    let tt = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(tt)) => tt,
        Some(_) => {
            return Err(format!(
                "'{name}' is not a tensor (sequences and maps are not supported)"
            ));
        }
        None => return Err(format!("'{name}' has no type")),
    };
    let code = tt.elem_type();
    let dtype = DType::from_onnx_code(code).ok_or_else(|| {
        format!(
            "'{name}' has element type {}, which rdeploy does not support",
            onnx_type_name(code)
        )
    })?;
    let shape = tt.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(proto::tensor_shape_proto::dimension::Value::DimValue(v)) if *v >= 0 => {
                    Dim::Fixed(*v as u64)
                }
                Some(proto::tensor_shape_proto::dimension::Value::DimParam(p))
                    if !is_anonymous_dim_param(p) =>
                {
                    Dim::Symbolic(p.clone())
                }
                _ => Dim::Symbolic(String::new()),
            })
            .collect()
    });
    Ok(TensorInfo { name, dtype, shape })
}

/// Dim params that converters write for "unknown" rather than as a name shared by dims:
/// Paddle2ONNX writes `?`, others `-1` or an empty string. Each such dim is its own unknown
/// (`Dim::Symbolic("")`), not one symbol all of them must equal.
pub fn is_anonymous_dim_param(p: &str) -> bool {
    matches!(p.trim(), "" | "?" | "-1")
}

/// Inspects a model's signature and provenance.
///
/// # Errors
/// A message when an input or output is not a tensor of a supported dtype.
pub fn inspect(model: &ModelProto) -> std::result::Result<ModelInfo, String> {
    let empty = GraphProto::default();
    let g = model.graph.as_ref().unwrap_or(&empty);
    let inits: BTreeSet<&str> = g.initializer.iter().map(|t| t.name()).collect();
    let inputs = g
        .input
        .iter()
        .filter(|i| !inits.contains(i.name()))
        .map(|v| value_info(v).map_err(|e| format!("input {e}")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let outputs = g
        .output
        .iter()
        .map(|v| value_info(v).map_err(|e| format!("output {e}")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let producer = match (model.producer_name(), model.producer_version()) {
        ("", _) => String::new(),
        (n, "") => n.to_string(),
        (n, v) => format!("{n} {v}"),
    };
    Ok(ModelInfo {
        inputs,
        outputs,
        opsets: model
            .opset_import
            .iter()
            .map(|o| (o.domain().to_string(), o.version()))
            .collect(),
        ir_version: model.ir_version(),
        producer,
        node_count: g.node.len(),
        graph_name: g.name().to_string(),
    })
}

/// Loads and inspects a model file.
///
/// # Errors
/// As [`load`], plus [`Error::Model`] for an unsupported signature.
pub fn inspect_file(path: &Path) -> Result<(ModelProto, ModelInfo)> {
    let model = load(path)?;
    let info = inspect(&model).map_err(|msg| Error::model(path, msg))?;
    Ok((model, info))
}

/// Decodes a `TensorProto` (`.pb` file bytes) into its name and tensor.
///
/// # Errors
/// A message when the bytes are not a `TensorProto` or hold an unsupported dtype.
pub fn tensor_from_pb_bytes(bytes: &[u8]) -> std::result::Result<(Option<String>, Tensor), String> {
    let t = TensorProto::decode(bytes)
        .map_err(|e| format!("not an ONNX TensorProto .pb file ({e})"))?;
    let name = t.name.clone().filter(|n| !n.is_empty());
    Ok((name, tensor_from_proto(&t)?))
}

/// Converts a `TensorProto` with its data inside (raw or typed fields) into a tensor.
///
/// # Errors
/// A message for an unsupported dtype, external data, or a data size that does not match dims.
pub fn tensor_from_proto(t: &TensorProto) -> std::result::Result<Tensor, String> {
    let label = if t.name().is_empty() {
        "tensor".to_string()
    } else {
        format!("tensor '{}'", t.name())
    };
    let dtype = DType::from_onnx_code(t.data_type()).ok_or_else(|| {
        format!(
            "{label} has element type {}, which rdeploy does not support",
            onnx_type_name(t.data_type())
        )
    })?;
    if t.data_location() == DataLocation::External {
        return Err(format!(
            "{label} keeps its data in an external file; load it through its model"
        ));
    }
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("{label} has negative dim {d}")))
        .collect::<std::result::Result<_, _>>()?;
    let count = crate::files::checked_bytes(&shape, 1).map_err(|m| format!("{label}: {m}"))?;
    let err = |e: Error| format!("{label}: {e}");
    if let Some(raw) = t.raw_data.as_ref().filter(|r| !r.is_empty() || count == 0) {
        if dtype == DType::Str {
            return Err(format!(
                "{label} is a string tensor with raw_data; ONNX keeps strings in string_data"
            ));
        }
        return Tensor::from_packed_bytes(dtype, &shape, raw).map_err(err);
    }
    // int32_data holds the bit patterns of 16- and 8-bit floats, one per entry, and 4- and
    // 2-bit values packed into the low byte of each entry as raw_data packs them: two or four
    // per entry, the first in the lowest bits (onnx.proto).
    let low16 = || t.int32_data.iter().map(|&v| v as u16);
    let low8 = || t.int32_data.iter().map(|&v| v as u8).collect::<Vec<u8>>();
    let bytes = |dtype: DType, b: Vec<u8>| -> std::result::Result<Tensor, Error> {
        if b.len() != count {
            return Err(Error::Tensor(format!(
                "{} values do not fill shape {shape:?}",
                b.len()
            )));
        }
        Tensor::from_le_bytes(dtype, &shape, &b)
    };
    if dtype == DType::Str {
        let strings = t
            .string_data
            .iter()
            .enumerate()
            .map(|(i, s)| {
                String::from_utf8(s.clone())
                    .map_err(|e| format!("{label}: string {i} is not valid UTF-8 ({e})"))
            })
            .collect::<std::result::Result<Vec<String>, String>>()?;
        return Tensor::from_strings(&shape, strings).map_err(err);
    }
    let t = match dtype {
        DType::Str => unreachable_str(),
        DType::BF16 => Tensor::from_shape_vec(&shape, low16().map(half::bf16::from_bits).collect()),
        d @ (DType::F8E4M3FN
        | DType::F8E4M3FNUZ
        | DType::F8E5M2
        | DType::F8E5M2FNUZ
        | DType::F8E8M0) => bytes(d, low8()),
        d @ (DType::U4 | DType::I4 | DType::F4E2M1 | DType::U2 | DType::I2) => {
            let bits = d.packed_bits().unwrap_or(4);
            let per = if bits == 2 { "four" } else { "two" };
            if t.int32_data.len() != count.div_ceil((8 / bits) as usize) {
                return Err(format!(
                    "{label}: {} int32_data entries do not hold {count} {bits}-bit values ({per} per entry)",
                    t.int32_data.len()
                ));
            }
            let unpacked = crate::minifloat::unpack_bits(&low8(), count, bits)
                .map_err(|m| format!("{label}: {m}"))?;
            bytes(d, unpacked)
        }
        DType::F32 => Tensor::from_shape_vec(&shape, t.float_data.clone()),
        DType::F64 => Tensor::from_shape_vec(&shape, t.double_data.clone()),
        DType::I64 => Tensor::from_shape_vec(&shape, t.int64_data.clone()),
        DType::I32 => Tensor::from_shape_vec(&shape, t.int32_data.clone()),
        DType::I16 => {
            Tensor::from_shape_vec(&shape, t.int32_data.iter().map(|&v| v as i16).collect())
        }
        DType::I8 => {
            Tensor::from_shape_vec(&shape, t.int32_data.iter().map(|&v| v as i8).collect())
        }
        DType::U16 => {
            Tensor::from_shape_vec(&shape, t.int32_data.iter().map(|&v| v as u16).collect())
        }
        DType::U8 => {
            Tensor::from_shape_vec(&shape, t.int32_data.iter().map(|&v| v as u8).collect())
        }
        DType::Bool => {
            Tensor::from_shape_vec(&shape, t.int32_data.iter().map(|&v| v != 0).collect())
        }
        DType::F16 => Tensor::from_shape_vec(
            &shape,
            t.int32_data
                .iter()
                .map(|&v| half::f16::from_bits(v as u16))
                .collect(),
        ),
        DType::U32 => {
            Tensor::from_shape_vec(&shape, t.uint64_data.iter().map(|&v| v as u32).collect())
        }
        DType::U64 => Tensor::from_shape_vec(&shape, t.uint64_data.clone()),
    };
    t.map_err(err)
}

fn unreachable_str() -> Result<Tensor> {
    Err(Error::Tensor(
        "strings are read from string_data above".into(),
    ))
}

/// Converts a tensor into a `TensorProto`: raw little-endian data (4-bit types packed two per
/// byte, 2-bit types four per byte, the first element in the lowest bits), or `string_data` for
/// strings.
pub fn tensor_to_proto(name: &str, t: &Tensor) -> TensorProto {
    let mut p = TensorProto {
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(t.dtype().onnx_code()),
        name: Some(name.to_string()),
        ..Default::default()
    };
    match (t.as_strings(), t.to_packed_bytes()) {
        (Ok(s), _) => p.string_data = s.iter().map(|s| s.as_bytes().to_vec()).collect(),
        (_, Ok(b)) => p.raw_data = Some(b.into_owned()),
        (Err(_), Err(_)) => {}
    }
    p
}

#[cfg(test)]
mod tests;
