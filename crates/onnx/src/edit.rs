//! Primitive edits of a graph's values and signature, used by the passes.

use rdeploy_core::Dim;
use rdeploy_core::onnx::proto::{GraphProto, type_proto};

/// Renames a value everywhere in a graph (node inputs and outputs, graph inputs and outputs,
/// value infos, initializers), including subgraphs that refer to it.
pub fn rename_value(g: &mut GraphProto, from: &str, to: &str) {
    let fix = |s: &mut String| {
        if s == from {
            *s = to.to_string();
        }
    };
    for v in g
        .input
        .iter_mut()
        .chain(g.output.iter_mut())
        .chain(g.value_info.iter_mut())
    {
        if let Some(n) = v.name.as_mut() {
            fix(n);
        }
    }
    for t in &mut g.initializer {
        if let Some(n) = t.name.as_mut() {
            fix(n);
        }
    }
    for n in &mut g.node {
        n.input.iter_mut().for_each(fix);
        n.output.iter_mut().for_each(fix);
        for a in &mut n.attribute {
            if let Some(sub) = a.g.as_mut() {
                rename_value(sub, from, to);
            }
            for sub in &mut a.graphs {
                rename_value(sub, from, to);
            }
        }
    }
}

/// Sets the dims of a graph input or output (`Dim::Symbolic("")` clears a dim to unknown).
///
/// Returns false when no input or output has that name.
pub fn set_dims(g: &mut GraphProto, name: &str, dims: &[Dim]) -> bool {
    let Some(v) = g
        .input
        .iter_mut()
        .chain(g.output.iter_mut())
        .find(|v| v.name() == name)
    else {
        return false;
    };
    let Some(type_proto::Value::TensorType(tt)) = v.r#type.as_mut().and_then(|t| t.value.as_mut())
    else {
        return false;
    };
    let shape = tt.shape.get_or_insert_with(Default::default);
    shape.dim = dims.iter().map(crate::build::dimension).collect();
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdeploy_core::onnx::inspect;

    #[test]
    fn rename_and_set_dims_edit_the_signature() {
        let mut m = crate::testutil::add_model();
        let g = m.graph.as_mut().unwrap();
        rename_value(g, "x", "input");
        rename_value(g, "y", "output");
        assert!(set_dims(g, "input", &[Dim::Fixed(4), Dim::Fixed(3)]));
        assert!(!set_dims(g, "nope", &[]));
        let info = inspect(&m).unwrap();
        assert_eq!(info.inputs[0].name, "input");
        assert_eq!(info.inputs[0].shape_string(), "[4, 3]");
        assert_eq!(m.graph.as_ref().unwrap().node[0].input[0], "input");
        assert_eq!(m.graph.as_ref().unwrap().node[0].output[0], "output");
    }
}
