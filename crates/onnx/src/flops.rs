//! Compute accounting: the floating-point operations of one run of a model, per node, from the
//! ONNX attributes and the value shapes tract's analysis infers at concrete input shapes.
//!
//! Conventions (those of fvcore and torchvision's model tables for the multiply-adds; one
//! multiply-add = 2 FLOPs):
//!
//! | op | FLOPs |
//! |---|---|
//! | `Conv` | 2 x N x C_out x prod(out spatial) x (C_in / group) x prod(kernel), + N x C_out x prod(out spatial) with a bias |
//! | `ConvTranspose` | 2 x N x C_in x prod(in spatial) x (C_out / group) x prod(kernel), + output elements with a bias |
//! | `Gemm` | 2 x M x N x K, + M x N with C |
//! | `MatMul` | 2 x prod(output dims) x K |
//! | `MaxPool`, `AveragePool`, `LpPool` | output elements x prod(kernel) |
//! | `GlobalAveragePool`, `GlobalMaxPool`, `Reduce*` | input elements |
//! | `BatchNormalization`, `InstanceNormalization` | 2 x elements (scale and shift at inference) |
//! | `LayerNormalization` | 5 x elements (mean, variance, normalise, scale, shift) |
//! | `Softmax`, `LogSoftmax` | 3 x elements (exp, sum, divide) |
//! | element-wise math (`Add`, `Mul`, `Relu`, `Sigmoid`, `Erf`...) | output elements |
//! | data movement (`Reshape`, `Transpose`, `Concat`, `Gather`, `Slice`, `Shape`...) | 0 |
//!
//! Multiply-adds (`macs`) are counted for `Conv`, `ConvTranspose`, `Gemm` and `MatMul` alone, the
//! figure model zoos publish (torchvision's "GFLOPS" column is this count).

use crate::node::{attr_int, attr_ints};
use crate::rewrite::Facts;
use rdeploy_core::onnx::proto::ModelProto;
use serde::Serialize;
use std::collections::BTreeMap;

/// The cost of one node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeCost {
    /// The node's name (or `op_type#index` when it has none).
    pub name: String,
    /// Its operator.
    pub op_type: String,
    /// Floating-point operations.
    pub flops: u64,
    /// Multiply-adds (Conv, ConvTranspose, Gemm, MatMul; 0 otherwise).
    pub macs: u64,
}

/// Totals per operator type.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OpTotal {
    /// Nodes of this type.
    pub nodes: usize,
    /// Their FLOPs.
    pub flops: u64,
    /// Their multiply-adds.
    pub macs: u64,
}

/// The compute of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FlopCount {
    /// All FLOPs.
    pub flops: u64,
    /// All multiply-adds (matrix products and convolutions).
    pub macs: u64,
    /// Per operator type, by name.
    pub by_op: BTreeMap<String, OpTotal>,
    /// Nodes that do arithmetic but whose shapes the analysis could not pin down (not counted).
    pub unknown: Vec<String>,
    /// Every node with a cost, in graph order.
    pub nodes: Vec<NodeCost>,
}

/// Element-wise operators: one FLOP per output element.
const ELEMENTWISE: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Sqrt",
    "Reciprocal",
    "Exp",
    "Log",
    "Neg",
    "Abs",
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Celu",
    "Gelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Erf",
    "Softplus",
    "Softsign",
    "Clip",
    "Max",
    "Min",
    "Mean",
    "Sum",
    "Sin",
    "Cos",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Mish",
    "ThresholdedRelu",
    "Where",
    "Equal",
    "Greater",
    "Less",
    "GreaterOrEqual",
    "LessOrEqual",
    "Not",
    "And",
    "Or",
    "Xor",
    "Mod",
];

fn prod(d: &[u64]) -> u64 {
    d.iter().product()
}

/// The FLOPs of `model` at the shapes in `facts` (see [`Facts::of`]; fix the inputs' dims
/// first for concrete counts).
pub fn count(model: &ModelProto, facts: &Facts) -> FlopCount {
    let mut out = FlopCount::default();
    let Some(g) = &model.graph else {
        return out;
    };
    let shape = |name: &str| -> Option<Vec<u64>> {
        facts
            .shapes
            .get(name)?
            .iter()
            .copied()
            .collect::<Option<Vec<u64>>>()
    };
    for (i, n) in g.node.iter().enumerate() {
        let op = n.op_type();
        let name = if n.name().is_empty() {
            format!("{op}#{i}")
        } else {
            n.name().to_string()
        };
        let input = |k: usize| {
            n.input
                .get(k)
                .filter(|s| !s.is_empty())
                .and_then(|s| shape(s))
        };
        let output = || n.output.first().and_then(|s| shape(s));
        let cost: Option<(u64, u64)> = match op {
            "Conv" => (|| {
                let y = output()?;
                let w = input(1)?;
                let group = attr_int(n, "group").unwrap_or(1).max(1) as u64;
                let (batch, cout) = (*y.first()?, *y.get(1)?);
                let spatial = prod(y.get(2..)?);
                let cin = w.get(1)? * group;
                let kernel = prod(w.get(2..)?);
                let macs = batch * cout * spatial * (cin / group) * kernel;
                let bias = if input(2).is_some() {
                    batch * cout * spatial
                } else {
                    0
                };
                Some((2 * macs + bias, macs))
            })(),
            "ConvTranspose" => (|| {
                let x = input(0)?;
                let w = input(1)?;
                let y = output()?;
                let group = attr_int(n, "group").unwrap_or(1).max(1) as u64;
                let (batch, cin) = (*x.first()?, *x.get(1)?);
                let cout_per_group = *w.get(1)?;
                let kernel = prod(w.get(2..)?);
                let macs = batch * cin * prod(x.get(2..)?) * cout_per_group * kernel;
                let bias = if input(2).is_some() { prod(&y) } else { 0 };
                let _ = group;
                Some((2 * macs + bias, macs))
            })(),
            "Gemm" => (|| {
                let a = input(0)?;
                let b = input(1)?;
                let (m, k) = if attr_int(n, "transA") == Some(1) {
                    (*a.get(1)?, *a.first()?)
                } else {
                    (*a.first()?, *a.get(1)?)
                };
                let cols = if attr_int(n, "transB") == Some(1) {
                    *b.first()?
                } else {
                    *b.get(1)?
                };
                let macs = m * cols * k;
                let c = if input(2).is_some() { m * cols } else { 0 };
                Some((2 * macs + c, macs))
            })(),
            "MatMul" => (|| {
                let a = input(0)?;
                let y = output()?;
                let k = *a.last()?;
                let macs = prod(&y) * k;
                Some((2 * macs, macs))
            })(),
            "MaxPool" | "AveragePool" | "LpPool" => (|| {
                let y = output()?;
                let kernel = attr_ints(n, "kernel_shape")?;
                let k: u64 = kernel.iter().map(|&d| d.max(0) as u64).product();
                Some((prod(&y) * k, 0))
            })(),
            "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => {
                input(0).map(|x| (prod(&x), 0))
            }
            r if r.starts_with("Reduce") => input(0).map(|x| (prod(&x), 0)),
            "BatchNormalization" | "InstanceNormalization" => output().map(|y| (2 * prod(&y), 0)),
            "LayerNormalization" => output().map(|y| (5 * prod(&y), 0)),
            "Softmax" | "LogSoftmax" => output().map(|y| (3 * prod(&y), 0)),
            e if ELEMENTWISE.contains(&e) => output().map(|y| (prod(&y), 0)),
            _ => Some((0, 0)),
        };
        match cost {
            Some((flops, macs)) => {
                if flops == 0 {
                    continue;
                }
                out.flops += flops;
                out.macs += macs;
                let t = out.by_op.entry(op.to_string()).or_default();
                t.nodes += 1;
                t.flops += flops;
                t.macs += macs;
                out.nodes.push(NodeCost {
                    name,
                    op_type: op.to_string(),
                    flops,
                    macs,
                });
            }
            None => out.unknown.push(name),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;
    use crate::build::tensor_value_info;
    use crate::node::{int, ints, node};
    use rdeploy_core::onnx::proto::{GraphProto, OperatorSetIdProto};
    use rdeploy_core::onnx::tensor_to_proto;
    use rdeploy_core::{DType, Dim, Tensor};

    fn fixed(d: &[u64]) -> Vec<Dim> {
        d.iter().map(|&n| Dim::Fixed(n)).collect()
    }

    /// Conv 3->8 (k3, pad 1, bias) -> MaxPool 2x2 -> Flatten -> Gemm 512->10 (transB, C), and a
    /// MatMul of [2, 4, 6] by [6, 5] beside it.
    fn small() -> ModelProto {
        let init =
            |name: &str, shape: &[usize]| tensor_to_proto(name, &Tensor::zeros(DType::F32, shape));
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(13),
            }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                node: vec![
                    node(
                        "Conv",
                        "conv",
                        &["x", "w", "b"],
                        &["c"],
                        vec![ints("pads", &[1, 1, 1, 1])],
                    ),
                    node(
                        "MaxPool",
                        "pool",
                        &["c"],
                        &["p"],
                        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
                    ),
                    node("Flatten", "", &["p"], &["f"], vec![]),
                    node(
                        "Gemm",
                        "fc",
                        &["f", "fw", "fb"],
                        &["y"],
                        vec![int("transB", 1)],
                    ),
                    node("MatMul", "mm", &["a", "bm"], &["z"], vec![]),
                    node("Relu", "relu", &["z"], &["r"], vec![]),
                ],
                input: vec![
                    tensor_value_info("x", 1, Some(&fixed(&[1, 3, 16, 16]))),
                    tensor_value_info("a", 1, Some(&fixed(&[2, 4, 6]))),
                ],
                output: vec![
                    tensor_value_info("y", 1, None),
                    tensor_value_info("r", 1, None),
                ],
                initializer: vec![
                    init("w", &[8, 3, 3, 3]),
                    init("b", &[8]),
                    init("fw", &[10, 512]),
                    init("fb", &[10]),
                    init("bm", &[6, 5]),
                ],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn each_op_by_its_formula() {
        let m = small();
        let f = count(&m, &Facts::of(&m));
        assert!(f.unknown.is_empty(), "{:?}", f.unknown);
        let conv_macs = 8 * 16 * 16 * 3 * 9;
        assert_eq!(f.by_op["Conv"].macs, conv_macs);
        assert_eq!(f.by_op["Conv"].flops, 2 * conv_macs + 8 * 16 * 16);
        assert_eq!(f.by_op["MaxPool"].flops, 8 * 8 * 8 * 4);
        assert_eq!(f.by_op["Gemm"].macs, 10 * 512);
        assert_eq!(f.by_op["Gemm"].flops, 2 * 10 * 512 + 10);
        assert_eq!(f.by_op["MatMul"].macs, 2 * 4 * 5 * 6);
        assert_eq!(f.by_op["Relu"].flops, 2 * 4 * 5);
        assert!(!f.by_op.contains_key("Flatten"));
        assert_eq!(f.macs, conv_macs + 10 * 512 + 2 * 4 * 5 * 6);
    }
}
