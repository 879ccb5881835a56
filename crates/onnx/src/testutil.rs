//! Small models for this crate's unit tests.

use crate::build::tensor_value_info;
use rdeploy_core::onnx::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto};
use rdeploy_core::onnx::tensor_to_proto;
use rdeploy_core::{Dim, Tensor};

/// `y = x + w` with `x: [batch, 3]` float32 and a 3-element initializer `w`.
pub fn add_model() -> ModelProto {
    #[allow(clippy::unwrap_used, reason = "a fixed, valid shape")]
    let w = tensor_to_proto(
        "w",
        &Tensor::from_shape_vec(&[3], vec![1f32, 2., 3.]).unwrap(),
    );
    let batch = [Dim::Symbolic("batch".into()), Dim::Fixed(3)];
    ModelProto {
        ir_version: Some(8),
        producer_name: Some("test".into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![NodeProto {
                op_type: Some("Add".into()),
                input: vec!["x".into(), "w".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![
                tensor_value_info("x", 1, Some(&batch)),
                tensor_value_info("w", 1, Some(&[Dim::Fixed(3)])),
            ],
            output: vec![tensor_value_info("y", 1, Some(&batch))],
            initializer: vec![w],
            ..Default::default()
        }),
        ..Default::default()
    }
}
