//! Output shapes of an edited graph, inferred again from its (new) input shapes.
//!
//! After `onnx_config` fixes or renames input dims, the output shapes the exporter recorded no
//! longer hold. tract's ONNX analysis (the embedded engine, used here as a library) propagates
//! the new input facts through the graph: fixed dims come out as numbers, dims that follow a
//! named input dim keep its name, anything else (an expression of several dims) is unknown.

use rdeploy_core::Dim;
use rdeploy_core::onnx::proto::ModelProto;
use std::collections::HashSet;
use tract_onnx::prelude::*;

/// The inferred shape of each graph output (`None`: unknown rank), in graph order.
///
/// # Errors
/// tract's reason when it cannot analyse the graph (an operator it lacks, say); callers fall
/// back to unknown dims.
pub fn infer_outputs(model: &ModelProto) -> Result<Vec<Option<Vec<Dim>>>, String> {
    // The input dim names a user can see; tract's own symbols for unnamed dims are not shown.
    let names: HashSet<String> =
        model
            .graph
            .iter()
            .flat_map(|g| &g.input)
            .filter_map(|v| v.r#type.as_ref()?.value.as_ref())
            .filter_map(|t| match t {
                rdeploy_core::onnx::proto::type_proto::Value::TensorType(tt) => tt.shape.as_ref(),
                _ => None,
            })
            .flat_map(|s| &s.dim)
            .filter_map(|d| match &d.value {
                Some(
                    rdeploy_core::onnx::proto::tensor_shape_proto::dimension::Value::DimParam(p),
                ) if !rdeploy_core::onnx::is_anonymous_dim_param(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
    let bytes = prost::Message::encode_to_vec(model);
    let analysed = std::panic::catch_unwind(|| -> TractResult<TypedModel> {
        tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())?
            .into_typed()
    })
    .map_err(|_| "tract's analysis failed internally".to_string())?
    .map_err(|e| format!("{e:#}"))?;
    let outputs = analysed
        .output_outlets()
        .map_err(|e| format!("{e:#}"))?
        .to_vec();
    outputs
        .iter()
        .map(|o| {
            let fact = analysed.outlet_fact(*o).map_err(|e| format!("{e:#}"))?;
            Ok(Some(
                fact.shape
                    .iter()
                    .map(|d| match d.as_i64() {
                        Some(n) if n >= 0 => Dim::Fixed(n as u64),
                        _ => {
                            let s = d.to_string();
                            if names.contains(&s) {
                                Dim::Symbolic(s)
                            } else {
                                Dim::Symbolic(String::new())
                            }
                        }
                    })
                    .collect(),
            ))
        })
        .collect()
}
