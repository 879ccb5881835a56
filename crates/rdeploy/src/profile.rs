//! Per-operator profiles of several engines in one table: each engine's nodes (from
//! [`Wrapper::profile`](crate::Wrapper::profile)) mapped back to the ONNX node they came from,
//! so ONNX Runtime's fused kernels, OpenVINO's layers and tract's optimised nodes add up under
//! the same ONNX operator types.

use crate::OpTime;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One engine node with the ONNX operator it maps to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MappedOp {
    /// The engine's node.
    #[serde(flatten)]
    pub time: OpTime,
    /// The ONNX operator type of the model node it came from; the engine's own type in
    /// brackets (`[Reorder]`) for nodes the engine added.
    pub onnx_op: String,
}

/// Time per ONNX operator type for one engine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpTypeTime {
    /// The ONNX operator type (or an engine-added node type in brackets).
    pub op_type: String,
    /// Mean milliseconds per call over its nodes.
    pub ms: f64,
    /// Engine nodes counted.
    pub nodes: usize,
}

/// Maps engine nodes back to the model's ONNX nodes by name: the name itself, else with
/// trailing `.suffix` parts removed (tract names its optimised nodes `<onnx node>.<step>`),
/// else the longest ONNX node name it starts with (OpenVINO's fused layers); a node whose
/// name matches none keeps its engine type when that is one of the model's operator types
/// (ONNX Runtime renames fused nodes but keeps `Conv`), else its engine type in brackets.
pub fn map_to_onnx(model: &Path, times: &[OpTime]) -> Vec<MappedOp> {
    let ops: HashMap<String, String> = crate::onnx::load(model)
        .map(|m| {
            m.graph
                .map(|g| {
                    g.node
                        .into_iter()
                        .filter_map(|n| {
                            let name = n.name.filter(|x| !x.is_empty())?;
                            Some((name, n.op_type.unwrap_or_default()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default();
    times
        .iter()
        .map(|t| {
            let mut name = t.node.as_str();
            let mut found = ops.get(name);
            while found.is_none() {
                match name.rsplit_once('.') {
                    Some((head, _)) => {
                        name = head;
                        found = ops.get(name);
                    }
                    None => break,
                }
            }
            let found = found.or_else(|| {
                ops.iter()
                    .filter(|(n, _)| t.node.starts_with(n.as_str()))
                    .max_by_key(|(n, _)| n.len())
                    .map(|(_, op)| op)
            });
            // A renamed node (ONNX Runtime names its fused and layout-changed nodes itself)
            // whose engine type is one of the model's ONNX operators.
            let in_model = |op: &str| ops.values().any(|o| o == op);
            let alias = engine_alias(&t.op_type);
            let onnx_op = match found {
                // A fused node named after the last op it took in (tract's `Relu_1.low`, a
                // convolution with its ReLU) is the product's, not the activation's.
                Some(op) if !alias.is_empty() && !alias.contains(&op.as_str()) => alias
                    .iter()
                    .find(|a| in_model(a))
                    .map_or_else(|| op.clone(), |a| (*a).to_string()),
                Some(op) => op.clone(),
                None if in_model(&t.op_type) => t.op_type.clone(),
                None => engine_alias(&t.op_type)
                    .iter()
                    .find(|op| in_model(op))
                    .map_or_else(|| format!("[{}]", t.op_type), |op| (*op).to_string()),
            };
            MappedOp {
                time: t.clone(),
                onnx_op,
            }
        })
        .collect()
}

/// A copy of `model` at `out` whose unnamed nodes are named `<op_type>_<index>`, so that
/// engines' profiles can be mapped back to them (engines name unnamed nodes each their own
/// way). `None` when every node has a name already or the model keeps its weights in external
/// files (a copy elsewhere would lose them): use the model as it is.
///
/// # Errors
/// Reading or writing the model.
pub fn named_copy(model: &Path, out: &Path) -> crate::Result<Option<std::path::PathBuf>> {
    let mut m = crate::onnx::load(model)?;
    let Some(g) = m.graph.as_mut() else {
        return Ok(None);
    };
    let external = g
        .initializer
        .iter()
        .any(|t| t.data_location() == crate::onnx::proto::tensor_proto::DataLocation::External);
    if external || g.node.iter().all(|n| !n.name().is_empty()) {
        return Ok(None);
    }
    let taken: std::collections::HashSet<String> =
        g.node.iter().map(|n| n.name().to_string()).collect();
    for (i, n) in g.node.iter_mut().enumerate() {
        if n.name().is_empty() {
            let mut name = format!("{}_{i}", n.op_type());
            while taken.contains(&name) {
                name.push('_');
            }
            n.name = Some(name);
        }
    }
    crate::onnx::save(&m, out)?;
    Ok(Some(out.to_path_buf()))
}

/// The ONNX operators an engine's own layer type stands for (OpenVINO's opset names, ONNX
/// Runtime's contrib kernels), in order of preference; used for nodes whose names the engine
/// made up (OpenVINO names a convolution with a folded BatchNormalization after the multiply).
fn engine_alias(op: &str) -> &'static [&'static str] {
    match op {
        "Convolution" | "GroupConvolution" | "FusedConv" | "NchwcConv" => &["Conv"],
        // tract's matrix products and their packing (a convolution is im2col + product).
        "OptMatMul" | "Im2col" | "OptMatMulPack" | "MatMatMulPack" | "ConvUnary" | "EinSum" => {
            &["Conv", "MatMul", "Gemm", "ConvTranspose"]
        }
        "ConvolutionBackpropData" | "GroupConvolutionBackpropData" => &["ConvTranspose"],
        "FullyConnected" | "FusedMatMul" => &["Gemm", "MatMul"],
        "FusedGemm" => &["Gemm"],
        "NchwcMaxPool" => &["MaxPool"],
        "NchwcAveragePool" => &["AveragePool"],
        "NchwcGlobalAveragePool" => &["GlobalAveragePool"],
        "SoftMax" => &["Softmax"],
        "Interpolate" => &["Resize", "Upsample"],
        _ => &[],
    }
}

/// Sums mapped nodes per ONNX operator type, largest first.
pub fn by_op_type(mapped: &[MappedOp]) -> Vec<OpTypeTime> {
    let mut m: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for op in mapped {
        let e = m.entry(op.onnx_op.as_str()).or_default();
        e.0 += op.time.ms;
        e.1 += 1;
    }
    let mut v: Vec<OpTypeTime> = m
        .into_iter()
        .map(|(k, (ms, nodes))| OpTypeTime {
            op_type: k.to_string(),
            ms,
            nodes,
        })
        .collect();
    v.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(node: &str, op: &str, ms: f64) -> OpTime {
        OpTime {
            node: node.into(),
            op_type: op.into(),
            ms,
        }
    }

    #[test]
    fn engine_nodes_map_back_to_onnx_ops() {
        let small = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/small-cnn.onnx");
        let tmp = tempfile::tempdir().unwrap();
        // Its nodes have no names: the copy names them.
        let model = named_copy(&small, &tmp.path().join("named.onnx"))
            .unwrap()
            .unwrap();
        assert_eq!(
            named_copy(&model, &tmp.path().join("again.onnx")).unwrap(),
            None
        );
        let conv = "Conv_0".to_string();
        let mapped = map_to_onnx(
            &model,
            &[
                t(&format!("{conv}.matmatmul"), "OptMatMul", 2.0),
                t(&format!("{conv}.im2col"), "Im2col", 1.0),
                t(&conv, "Convolution", 0.5),
                t("reorder_42", "Reorder", 0.25),
            ],
        );
        let ops: Vec<&str> = mapped.iter().map(|m| m.onnx_op.as_str()).collect();
        assert_eq!(ops, ["Conv", "Conv", "Conv", "[Reorder]"]);
        let by = by_op_type(&mapped);
        assert_eq!(by[0].op_type, "Conv");
        assert!((by[0].ms - 3.5).abs() < 1e-12 && by[0].nodes == 3);
        assert_eq!(by[1].op_type, "[Reorder]");
    }
}
