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
use tract_onnx::tract_hir::infer::Factoid;

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
    // tract panics on some malformed graphs: caught quietly (rdeploy's panic hook stays
    // silent inside catch_engine_panic), reported as a failed analysis.
    let analysed = rdeploy_core::guard::catch_engine_panic("tract", "shape analysis", || {
        tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .and_then(|m| m.into_typed())
            .map_err(|e| rdeploy_core::Error::backend("tract", format!("{e:#}")))
    })
    .map_err(|e| e.to_string())?;
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

/// The shapes and element types tract's analysis finds for the values of `model` it can (dims
/// it cannot pin down are `None`), for passes that need ranks of intermediate values (opset
/// upgrades aligning old broadcasts, say). Values of a graph tract cannot load are absent;
/// the result is a hint, never an error.
pub fn infer_values(model: &ModelProto) -> crate::rewrite::Facts {
    let mut out = crate::rewrite::Facts::default();
    let bytes = prost::Message::encode_to_vec(model);
    // Shapes from the inputs alone: an exporter's intermediate value infos can be stale.
    let Ok(mut m) = rdeploy_core::guard::catch_engine_panic("tract", "shape analysis", || {
        tract_onnx::onnx()
            .with_ignore_value_info(true)
            .with_ignore_output_shapes(true)
            .model_for_read(&mut bytes.as_slice())
            .map_err(|e| rdeploy_core::Error::backend("tract", format!("{e:#}")))
    }) else {
        return out;
    };
    // Analysis stops at the first node it cannot type; what it found before stays.
    let _ = rdeploy_core::guard::catch_engine_panic("tract", "shape analysis", || {
        let _ = m.analyse(false);
        Ok(())
    });
    for node in m.nodes() {
        for (ix, o) in node.outputs.iter().enumerate() {
            let Some(label) = m.outlet_label(OutletId::new(node.id, ix)) else {
                continue;
            };
            if let Some(e) = o.fact.datum_type.concretize().and_then(elem_type_of) {
                out.elem_types.insert(label.to_string(), e);
            }
            if o.fact.shape.is_open() {
                continue;
            }
            let dims = o
                .fact
                .shape
                .dims()
                .map(|d| {
                    d.concretize()
                        .and_then(|d| d.as_i64())
                        .and_then(|n| u64::try_from(n).ok())
                })
                .collect();
            out.shapes.insert(label.to_string(), dims);
        }
    }
    out
}

/// ONNX's `TensorProto.DataType` of a tract datum type.
fn elem_type_of(dt: DatumType) -> Option<i32> {
    Some(match dt {
        DatumType::F32 => 1,
        DatumType::U8 => 2,
        DatumType::I8 => 3,
        DatumType::U16 => 4,
        DatumType::I16 => 5,
        DatumType::I32 => 6,
        DatumType::I64 => 7,
        DatumType::Bool => 9,
        DatumType::F16 => 10,
        DatumType::F64 => 11,
        DatumType::U32 => 12,
        DatumType::U64 => 13,
        _ => return None,
    })
}
