//! `rdeploy inspect MODEL.onnx`: signature, opsets, operators, parameters, FLOPs.

use crate::args::InspectArgs;
use crate::out;
use anyhow::Result;

/// A count with a unit prefix: 8.21 G, 25.6 M, 512.
fn si(n: f64) -> String {
    for (div, unit) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if n >= div {
            return format!("{:.2} {unit}", n / div);
        }
    }
    format!("{n:.0} ")
}

pub(crate) fn run(a: InspectArgs) -> Result<()> {
    let r = rdeploy::inspect::inspect(&a.model, &a.shapes)?;
    if a.json {
        return out(&format!("{}\n", serde_json::to_string_pretty(&r)?));
    }
    let opsets: Vec<String> = r.opsets.iter().map(|(d, v)| format!("{d} {v}")).collect();
    let mut s = format!(
        "{}: graph '{}', ONNX IR {}, opsets {}{}\n",
        r.path,
        r.graph_name,
        r.ir_version,
        opsets.join(", "),
        if r.producer.is_empty() {
            String::new()
        } else {
            format!(", made by {}", r.producer)
        }
    );
    for (what, list) in [("input ", &r.inputs), ("output", &r.outputs)] {
        for t in list {
            s.push_str(&format!(
                "  {what} {}: {} {}\n",
                t.name,
                t.dtype,
                t.shape_string()
            ));
        }
    }
    s.push_str(&format!(
        "  {} nodes, {} parameters ({}B)\n",
        r.nodes,
        si(r.parameters as f64).trim_end(),
        si(r.parameter_bytes as f64)
    ));
    let ops: Vec<String> = r
        .op_histogram
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect();
    s.push_str(&format!("  operators: {}\n", ops.join(", ")));
    let at: Vec<String> = r
        .input_shapes
        .iter()
        .map(|(n, d)| {
            let dims: Vec<String> = d.iter().map(ToString::to_string).collect();
            format!("{n}: [{}]", dims.join(", "))
        })
        .collect();
    let c = &r.compute;
    s.push_str(&format!(
        "compute at {}: {}FLOPs, {} multiply-adds (Conv, ConvTranspose, Gemm, MatMul)\n",
        at.join(", "),
        si(c.flops as f64),
        si(c.macs as f64).trim_end()
    ));
    let mut by_op: Vec<(&String, &rdeploy::passes::flops::OpTotal)> = c.by_op.iter().collect();
    by_op.sort_by_key(|(_, t)| std::cmp::Reverse(t.flops));
    for (op, t) in by_op {
        s.push_str(&format!(
            "  {op:<22} {:>4} nodes  {:>12}FLOPs  {:5.1}%\n",
            t.nodes,
            si(t.flops as f64),
            100.0 * t.flops as f64 / c.flops.max(1) as f64
        ));
    }
    if !c.unknown.is_empty() {
        s.push_str(&format!(
            "  not counted (shapes unknown to the analysis): {}\n",
            c.unknown.join(", ")
        ));
    }
    if a.top > 0 {
        let mut nodes: Vec<_> = c.nodes.iter().collect();
        nodes.sort_by_key(|n| std::cmp::Reverse(n.flops));
        s.push_str(&format!("top {} nodes by FLOPs:\n", a.top.min(nodes.len())));
        for n in nodes.into_iter().take(a.top) {
            s.push_str(&format!(
                "  {:<40} {:<16} {}FLOPs\n",
                n.name,
                n.op_type,
                si(n.flops as f64)
            ));
        }
    }
    out(&s)
}
