//! Known limits of OpenVINO's CPU plugin that would otherwise pass silently, found in a model
//! before conversion (docs/backends/openvino.md, "Known engine limits").
//!
//! The CPU plugin computes int64 (and uint64) in int32: `a + b` with values near 5e9 returns
//! wrapped numbers with no error (measured with OpenVINO 2026.4 on this project's CI machine).
//! Shape arithmetic (values from `Shape`/`Size`) stays small and is not reported; int64 data
//! from the model's inputs, or int64 constants beyond int32's range, reaching arithmetic is.

use rdeploy_core::onnx::proto::{ModelProto, TensorProto, type_proto};
use std::collections::HashSet;

const INT64: i32 = 7;
const UINT64: i32 = 13;

/// Ops that compute on the values (where wrapping changes results).
const ARITHMETIC: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Mod",
    "Neg",
    "Abs",
    "Pow",
    "MatMul",
    "Gemm",
    "CumSum",
    "ReduceSum",
    "ReduceProd",
    "ReduceMean",
    "Sum",
];
/// Ops that move integer values around without computing on them; their results carry the
/// values on, as arithmetic's do.
const MOVERS: &[&str] = &[
    "ReduceMax",
    "ReduceMin",
    "Max",
    "Min",
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Concat",
    "Gather",
    "Slice",
    "Expand",
    "Tile",
    "Identity",
    "Where",
];

fn beyond_i32(t: &TensorProto) -> bool {
    let raw = t.raw_data.as_deref().unwrap_or_default();
    let from_raw = raw
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
    let wide = |v: i64| i32::try_from(v).is_err();
    match t.data_type() {
        INT64 => from_raw.chain(t.int64_data.iter().copied()).any(wide),
        UINT64 => raw
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .chain(t.uint64_data.iter().copied())
            .any(|v| v > i32::MAX as u64),
        _ => false,
    }
}

/// The nodes (`op 'name'`) where 64-bit integer data from the model's inputs, or 64-bit
/// constants beyond int32, reach arithmetic; empty when there are none.
pub fn int64_arithmetic(model: &ModelProto) -> Vec<String> {
    let Some(g) = model.graph.as_ref() else {
        return Vec::new();
    };
    let mut tainted: HashSet<&str> = HashSet::new();
    for v in &g.input {
        if let Some(type_proto::Value::TensorType(tt)) =
            v.r#type.as_ref().and_then(|t| t.value.as_ref())
            && matches!(tt.elem_type(), INT64 | UINT64)
        {
            tainted.insert(v.name());
        }
    }
    for t in g.initializer.iter().filter(|t| beyond_i32(t)) {
        tainted.insert(t.name());
    }
    let mut found = Vec::new();
    for n in &g.node {
        if n.op_type() == "Constant"
            && n.attribute
                .iter()
                .any(|a| a.t.as_ref().is_some_and(beyond_i32))
        {
            tainted.extend(n.output.iter().map(String::as_str));
            continue;
        }
        if !n.input.iter().any(|i| tainted.contains(i.as_str())) {
            continue;
        }
        if ARITHMETIC.contains(&n.op_type()) {
            found.push(if n.name().is_empty() {
                n.op_type().to_string()
            } else {
                format!("{} '{}'", n.op_type(), n.name())
            });
        }
        if ARITHMETIC.contains(&n.op_type()) || MOVERS.contains(&n.op_type()) {
            tainted.extend(n.output.iter().map(String::as_str));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdeploy_core::onnx::proto::{
        GraphProto, NodeProto, TensorShapeProto, TypeProto, ValueInfoProto,
    };

    fn input(name: &str, elem: i32) -> ValueInfoProto {
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(elem),
                    shape: Some(TensorShapeProto::default()),
                })),
                denotation: None,
            }),
            ..Default::default()
        }
    }

    fn node(op: &str, ins: &[&str], out: &str) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            ..Default::default()
        }
    }

    #[test]
    fn int64_inputs_reaching_arithmetic_are_found_and_shape_math_is_not() {
        let model = |inputs: Vec<ValueInfoProto>, nodes: Vec<NodeProto>| ModelProto {
            graph: Some(GraphProto {
                input: inputs,
                node: nodes,
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = model(
            vec![input("a", INT64), input("b", INT64)],
            vec![
                node("Identity", &["a"], "a2"),
                node("Add", &["a2", "b"], "c"),
            ],
        );
        assert_eq!(int64_arithmetic(&m), vec!["Add".to_string()]);
        // float input; shape arithmetic on Shape's int64 output is not reported
        let m = model(
            vec![input("x", 1)],
            vec![node("Shape", &["x"], "s"), node("Mul", &["s", "s"], "t")],
        );
        assert!(int64_arithmetic(&m).is_empty());
        let big = TensorProto {
            name: Some("k".into()),
            data_type: Some(INT64),
            int64_data: vec![5_000_000_000],
            ..Default::default()
        };
        let mut m = model(vec![input("x", 1)], vec![node("Mul", &["k", "k"], "t")]);
        m.graph.as_mut().unwrap().initializer.push(big);
        assert_eq!(int64_arithmetic(&m).len(), 1);
    }
}
