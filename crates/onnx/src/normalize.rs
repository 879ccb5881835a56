//! The `normalize` pass: rewrites that keep a graph's meaning but spare engines forms they
//! mishandle, run in the IR stage for every backend.
//!
//! - A trailing empty input (`""`, ONNX's "omitted optional input") is an absent one:
//!   `ReduceSum(x, "")` becomes `ReduceSum(x)` (tract and OpenVINO's converter refused the
//!   former). Trailing empty outputs likewise.
//! - A graph output produced by a lone `Identity`, or by an inference-mode `Dropout` whose mask
//!   is unused, is produced by that node's producer directly: engines fold such nodes away and
//!   the output's name went with them (OpenVINO renamed `y:0` to `y_1:0`).

use crate::edit::rename_value;
use crate::{Pass, PassContext, PassOutcome};
use rdeploy_core::Result;
use rdeploy_core::onnx::proto::{GraphProto, ModelProto};
use std::collections::HashSet;

/// See the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct NormalizePass;

impl Pass for NormalizePass {
    fn name(&self) -> &str {
        "normalize"
    }

    fn run(&self, model: &mut ModelProto, _cx: &PassContext<'_>) -> Result<PassOutcome> {
        let g = model.graph.get_or_insert_with(Default::default);
        let trimmed = trim_empty(g);
        let bypassed = bypass_output_passthroughs(g);
        let mut out = PassOutcome {
            changed: trimmed > 0 || !bypassed.is_empty(),
            ..Default::default()
        };
        out.details
            .insert("empty_optional_inputs_removed".into(), trimmed.into());
        out.details
            .insert("output_passthroughs_removed".into(), bypassed.len().into());
        if trimmed > 0 {
            out.notes.push(format!(
                "normalize: removed {trimmed} trailing empty optional input(s)/output(s)"
            ));
        }
        for (op, name) in bypassed {
            out.notes.push(format!(
                "normalize: output '{name}' is now produced directly (a lone {op} before it was removed, so engines keep its name)"
            ));
        }
        Ok(out)
    }
}

/// Drops trailing `""` inputs and outputs of every node, subgraphs included. Returns how many.
fn trim_empty(g: &mut GraphProto) -> usize {
    let mut n = 0;
    for node in &mut g.node {
        while node.input.last().is_some_and(String::is_empty) {
            node.input.pop();
            n += 1;
        }
        while node.output.last().is_some_and(String::is_empty) {
            node.output.pop();
            n += 1;
        }
        for a in &mut node.attribute {
            if let Some(sub) = a.g.as_mut() {
                n += trim_empty(sub);
            }
            for sub in &mut a.graphs {
                n += trim_empty(sub);
            }
        }
    }
    n
}

/// Removes `Identity`/inference `Dropout` nodes whose output is a graph output, renaming their
/// input (an intermediate value) to the output's name. Returns `(op, output)` per removal.
fn bypass_output_passthroughs(g: &mut GraphProto) -> Vec<(String, String)> {
    let mut done = Vec::new();
    loop {
        let outputs: HashSet<String> = g.output.iter().map(|o| o.name().to_string()).collect();
        let fixed: HashSet<String> = g
            .input
            .iter()
            .map(|i| i.name().to_string())
            .chain(g.initializer.iter().map(|t| t.name().to_string()))
            .collect();
        let produced: HashSet<String> = g.node.iter().flat_map(|n| n.output.clone()).collect();
        let found = g.node.iter().position(|n| {
            let passthrough = match n.op_type() {
                "Identity" => n.input.len() == 1 && n.output.len() == 1,
                // Inference mode unless a training_mode input says otherwise; no mask output.
                "Dropout" => n.input.len() == 1 && n.output.len() == 1,
                _ => false,
            };
            passthrough
                && n.domain().is_empty()
                && outputs.contains(&n.output[0])
                && !outputs.contains(&n.input[0])
                && !fixed.contains(&n.input[0])
                && produced.contains(&n.input[0])
        });
        let Some(i) = found else {
            return done;
        };
        let node = g.node.remove(i);
        let (from, to) = (node.input[0].clone(), node.output[0].clone());
        // The value info the graph had for the intermediate describes the output now.
        g.value_info.retain(|v| v.name() != from && v.name() != to);
        rename_value(g, &from, &to);
        done.push((node.op_type().to_string(), to));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::add_model;
    use rdeploy_core::onnx::proto::NodeProto;

    fn normalize(m: &mut ModelProto) -> PassOutcome {
        let cfg = rdeploy_core::DeployConfig::default();
        let cx = PassContext {
            model_path: std::path::Path::new("m.onnx"),
            deploy_cfg: &cfg,
        };
        NormalizePass.run(m, &cx).unwrap()
    }

    #[test]
    fn trailing_empty_inputs_go_and_passthrough_outputs_are_bypassed() {
        let mut m = add_model();
        let g = m.graph.as_mut().unwrap();
        // x + w -> t; ReduceSum(t, "") -> s; Identity(s) -> y (the graph output)
        g.node[0].output[0] = "t".into();
        g.node.push(NodeProto {
            op_type: Some("ReduceSum".into()),
            input: vec!["t".into(), String::new()],
            output: vec!["s".into()],
            ..Default::default()
        });
        g.node.push(NodeProto {
            op_type: Some("Identity".into()),
            input: vec!["s".into()],
            output: vec!["y".into()],
            ..Default::default()
        });
        let out = normalize(&mut m);
        assert!(out.changed);
        let g = m.graph.as_ref().unwrap();
        assert_eq!(g.node.len(), 2);
        assert_eq!(g.node[1].input, vec!["t".to_string()]);
        assert_eq!(g.node[1].output, vec!["y".to_string()]);
        assert_eq!(out.details["output_passthroughs_removed"], 1);
    }

    #[test]
    fn an_output_that_is_an_input_is_left_alone() {
        let mut m = add_model();
        let g = m.graph.as_mut().unwrap();
        g.node.push(NodeProto {
            op_type: Some("Identity".into()),
            input: vec!["x".into()],
            output: vec!["x_copy".into()],
            ..Default::default()
        });
        let before = m.clone();
        let out = normalize(&mut m);
        assert!(!out.changed);
        assert_eq!(m, before);
    }
}
