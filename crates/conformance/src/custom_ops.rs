//! The ONNX Runtime custom-op fixture: `examples/ort-custom-op/myops.c` (domain `rdeploy.test`,
//! `ScaledAdd(A, B) = A + alpha * B`), built by this crate's build script, and a model using it.

use rdeploy_core::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
    TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_shape_proto::Dimension,
    tensor_shape_proto::dimension::Value as DimValue, type_proto,
};
use std::path::{Path, PathBuf};

/// The custom operators' domain.
pub const DOMAIN: &str = "rdeploy.test";

/// The custom-op shared library (`librdeploy_test_ops.so` on Linux), in this crate's build
/// output.
pub fn library() -> PathBuf {
    PathBuf::from(env!("RDEPLOY_TEST_ORT_OPS_LIB"))
}

/// The program printing `examples/ort-custom-op/ort_c_api_subset.h`'s layout, one
/// `name value` line each.
pub fn layout_check() -> PathBuf {
    PathBuf::from(env!("RDEPLOY_TEST_ORT_LAYOUT_CHECK"))
}

fn float_input(name: &str) -> ValueInfoProto {
    let dim = |v: DimValue| Dimension {
        value: Some(v),
        denotation: None,
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim(DimValue::DimParam("batch".into())),
                        dim(DimValue::DimValue(4)),
                    ],
                }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

/// Writes a model `Y = Relu(ScaledAdd(A, B, alpha))` (A, B, Y float32 `[batch, 4]`;
/// `ScaledAdd` from [`DOMAIN`], `Relu` from ONNX) to `path`.
///
/// # Panics
/// When the file cannot be written.
pub fn scaled_add_model(path: &Path, alpha: f32) {
    let model = ModelProto {
        ir_version: Some(8),
        producer_name: Some("rdeploy-conformance".into()),
        opset_import: vec![
            OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(17),
            },
            OperatorSetIdProto {
                domain: Some(DOMAIN.into()),
                version: Some(1),
            },
        ],
        graph: Some(GraphProto {
            name: Some("scaled_add".into()),
            node: vec![
                NodeProto {
                    name: Some("scaled_add".into()),
                    op_type: Some("ScaledAdd".into()),
                    domain: Some(DOMAIN.into()),
                    input: vec!["A".into(), "B".into()],
                    output: vec!["S".into()],
                    attribute: vec![AttributeProto {
                        name: Some("alpha".into()),
                        r#type: Some(AttributeType::Float as i32),
                        f: Some(alpha),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                NodeProto {
                    name: Some("relu".into()),
                    op_type: Some("Relu".into()),
                    input: vec!["S".into()],
                    output: vec!["Y".into()],
                    ..Default::default()
                },
            ],
            input: vec![float_input("A"), float_input("B")],
            output: vec![float_input("Y")],
            ..Default::default()
        }),
        ..Default::default()
    };
    rdeploy_core::onnx::save(&model, path).unwrap();
}
