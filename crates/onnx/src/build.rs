//! Building graph pieces: value infos with a tensor type and shape.

use rdeploy_core::Dim;
use rdeploy_core::onnx::proto::{
    TensorShapeProto, TypeProto, ValueInfoProto,
    tensor_shape_proto::{Dimension, dimension::Value as DV},
    type_proto,
};

/// A `ValueInfoProto` for a tensor of ONNX element type `elem_type` (1 = float, 7 = int64...;
/// `TensorProto.DataType` in `onnx.proto`) with `dims` (`None`: unknown rank).
pub fn tensor_value_info(name: &str, elem_type: i32, dims: Option<&[Dim]>) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem_type),
                shape: dims.map(|dims| TensorShapeProto {
                    dim: dims.iter().map(dimension).collect(),
                }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

/// One dim in protobuf form: `DimValue`, `DimParam`, or nothing for an unnamed unknown.
pub fn dimension(d: &Dim) -> Dimension {
    Dimension {
        value: match d {
            Dim::Fixed(n) => Some(DV::DimValue(i64::try_from(*n).unwrap_or(i64::MAX))),
            Dim::Symbolic(s) if s.is_empty() => None,
            Dim::Symbolic(s) => Some(DV::DimParam(s.clone())),
        },
        denotation: None,
    }
}
