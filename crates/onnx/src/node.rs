//! Reading and building nodes and attributes (the protobuf forms of `onnx.proto`).

use rdeploy_core::onnx::proto::attribute_proto::AttributeType;
use rdeploy_core::onnx::proto::{AttributeProto, NodeProto};

/// The attribute `name` of `node`, if present.
pub fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name() == name)
}

/// The attribute's declared type (`None` when the exporter left it unset).
fn ty(a: &AttributeProto) -> Option<AttributeType> {
    a.r#type.and_then(|t| AttributeType::try_from(t).ok())
}

/// An `INT` attribute's value (`None` when absent or of another type).
pub fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name)
        .filter(|a| matches!(ty(a), None | Some(AttributeType::Int)))
        .and_then(|a| a.i)
}

/// A `FLOAT` attribute's value (`None` when absent or of another type).
pub fn attr_float(node: &NodeProto, name: &str) -> Option<f32> {
    attr(node, name)
        .filter(|a| matches!(ty(a), None | Some(AttributeType::Float)))
        .and_then(|a| a.f)
}

/// An `INTS` attribute's values (`None` when absent or of another type); a single `INT` reads
/// as one value, as ONNX Runtime's attribute reader and MMDeploy's kernels take it.
pub fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    let a = attr(node, name)?;
    match ty(a) {
        Some(AttributeType::Ints) => Some(a.ints.clone()),
        Some(AttributeType::Int) => a.i.map(|i| vec![i]),
        None if !a.ints.is_empty() => Some(a.ints.clone()),
        None => a.i.map(|i| vec![i]),
        _ => None,
    }
}

/// A `FLOATS` attribute's values (`None` when absent or of another type).
pub fn attr_floats(node: &NodeProto, name: &str) -> Option<Vec<f32>> {
    let a = attr(node, name)?;
    match ty(a) {
        Some(AttributeType::Floats) | None => Some(a.floats.clone()),
        Some(AttributeType::Float) => a.f.map(|f| vec![f]),
        _ => None,
    }
}

/// A `STRING` attribute's value, as UTF-8 (lossy; `None` when absent or of another type).
pub fn attr_string(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name)
        .filter(|a| matches!(ty(a), None | Some(AttributeType::String)))
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

/// The attribute `name` when present with a type other than `want` (for errors: a rule
/// must not read a mistyped attribute as absent).
pub fn mistyped(node: &NodeProto, name: &str, want: AttributeType) -> Option<String> {
    let a = attr(node, name)?;
    match ty(a) {
        Some(t) if t != want && !(want == AttributeType::Ints && t == AttributeType::Int) => {
            Some(format!(
                "attribute '{name}' is {}, expected {}",
                t.as_str_name(),
                want.as_str_name()
            ))
        }
        _ => None,
    }
}

/// `Op node 'name' (output 'y')`, with a custom domain as `domain::Op`: how errors name a node.
pub fn describe(n: &NodeProto) -> String {
    let op = match domain(n) {
        "" => n.op_type().to_string(),
        d => format!("{d}::{}", n.op_type()),
    };
    format!(
        "{op} node '{}' (output '{}')",
        n.name(),
        n.output.first().map(String::as_str).unwrap_or("")
    )
}

/// `node`'s name with `_suffix`, or empty for an unnamed node.
pub fn suffixed(name: &str, suffix: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("{name}_{suffix}")
    }
}

/// Removes the attributes named in `names` from `node`.
pub fn remove_attrs(node: &mut NodeProto, names: &[&str]) {
    node.attribute.retain(|a| !names.contains(&a.name()));
}

/// Sets (adds or replaces) an attribute.
pub fn set_attr(node: &mut NodeProto, a: AttributeProto) {
    node.attribute.retain(|x| x.name() != a.name());
    node.attribute.push(a);
}

fn base(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

/// An `INT` attribute.
pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        ..base(name, AttributeType::Int)
    }
}

/// A `FLOAT` attribute.
pub fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        ..base(name, AttributeType::Float)
    }
}

/// An `INTS` attribute.
pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..base(name, AttributeType::Ints)
    }
}

/// A `STRING` attribute.
pub fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        ..base(name, AttributeType::String)
    }
}

/// A node in the default (`ai.onnx`) domain.
pub fn node(
    op_type: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attributes: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: Some(op_type.to_string()),
        name: (!name.is_empty()).then(|| name.to_string()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attributes,
        ..Default::default()
    }
}

/// The node's domain, with `ai.onnx` written as `""` (they are the same domain).
pub fn domain(node: &NodeProto) -> &str {
    match node.domain() {
        "ai.onnx" => "",
        d => d,
    }
}
