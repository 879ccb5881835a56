//! `rdeploy inspect`: what an ONNX model is (signature, opsets, operators, parameters) and what
//! one run costs (FLOPs per operator, at concrete input shapes; conventions in
//! [`rdeploy_onnx::flops`]).

use crate::inputs::{ShapeHint, resolve_shapes};
use rdeploy_core::onnx::proto::{ModelProto, tensor_shape_proto, type_proto};
use rdeploy_core::{DType, Error, Result, TensorInfo};
use rdeploy_onnx::flops::FlopCount;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// What `inspect` found.
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    /// The model file.
    pub path: String,
    /// The graph's name.
    pub graph_name: String,
    /// The producing tool and version.
    pub producer: String,
    /// ONNX IR version.
    pub ir_version: i64,
    /// Opset imports: (domain, version), the default domain as `ai.onnx`.
    pub opsets: Vec<(String, i64)>,
    /// Graph inputs (not initializers).
    pub inputs: Vec<TensorInfo>,
    /// Graph outputs.
    pub outputs: Vec<TensorInfo>,
    /// The concrete input shapes the compute was counted at.
    pub input_shapes: Vec<(String, Vec<usize>)>,
    /// Nodes of the main graph.
    pub nodes: usize,
    /// Nodes per operator (`domain::op` outside the default domain), most frequent first.
    pub op_histogram: Vec<(String, usize)>,
    /// Elements of all initializers (the weights).
    pub parameters: u64,
    /// Their size in bytes.
    pub parameter_bytes: u64,
    /// The compute of one run at `input_shapes`.
    pub compute: FlopCount,
}

/// Inspects the ONNX model at `path`; symbolic input dims take their sizes from `shapes`
/// (`batch=1`, `input:1x3x224x224`), else 1.
///
/// # Errors
/// [`Error::Model`] for a file that is not a readable ONNX model; [`Error::InputMismatch`] for
/// a shape hint that does not fit an input.
pub fn inspect(path: &Path, shapes: &[ShapeHint]) -> Result<Inspection> {
    let (mut model, info) = rdeploy_core::onnx::inspect_file(path)?;
    let concrete = resolve_shapes(&info.inputs, shapes, &BTreeMap::new())?;
    fix_input_dims(&mut model, &info.inputs, &concrete);
    let facts = rdeploy_onnx::rewrite::Facts::of(&model);
    let compute = rdeploy_onnx::flops::count(&model, &facts);
    let g = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::model(path, "the model has no graph"))?;
    let mut hist: BTreeMap<String, usize> = BTreeMap::new();
    for n in &g.node {
        let d = rdeploy_onnx::node::domain(n);
        let key = if d.is_empty() {
            n.op_type().to_string()
        } else {
            format!("{d}::{}", n.op_type())
        };
        *hist.entry(key).or_default() += 1;
    }
    let mut op_histogram: Vec<(String, usize)> = hist.into_iter().collect();
    op_histogram.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let (mut parameters, mut parameter_bytes) = (0u64, 0u64);
    for t in &g.initializer {
        let n: u64 = t.dims.iter().map(|&d| d.max(0) as u64).product();
        parameters += n;
        let size = DType::from_onnx_code(t.data_type()).map_or(0, |d| d.size() as u64);
        parameter_bytes += n * size;
    }
    Ok(Inspection {
        path: path.display().to_string(),
        graph_name: info.graph_name,
        producer: info.producer,
        ir_version: info.ir_version,
        opsets: info
            .opsets
            .into_iter()
            .map(|(d, v)| (if d.is_empty() { "ai.onnx".into() } else { d }, v))
            .collect(),
        input_shapes: info
            .inputs
            .iter()
            .map(|i| i.name.clone())
            .zip(concrete)
            .collect(),
        inputs: info.inputs,
        outputs: info.outputs,
        nodes: g.node.len(),
        op_histogram,
        parameters,
        parameter_bytes,
        compute,
    })
}

/// Writes the concrete shapes into the graph inputs' declared dims, so that the shape analysis
/// works with numbers.
fn fix_input_dims(model: &mut ModelProto, inputs: &[TensorInfo], shapes: &[Vec<usize>]) {
    let names: HashSet<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let Some(g) = model.graph.as_mut() else {
        return;
    };
    for v in g.input.iter_mut().filter(|v| names.contains(v.name())) {
        let Some(k) = inputs.iter().position(|i| i.name == v.name()) else {
            continue;
        };
        let Some(type_proto::Value::TensorType(tt)) =
            v.r#type.as_mut().and_then(|t| t.value.as_mut())
        else {
            continue;
        };
        let shape = tt.shape.get_or_insert_with(Default::default);
        shape.dim = shapes[k]
            .iter()
            .map(|&n| tensor_shape_proto::Dimension {
                value: Some(tensor_shape_proto::dimension::Value::DimValue(n as i64)),
                ..Default::default()
            })
            .collect();
    }
}

/// The FLOPs of one run of the model at `path` on inputs of these shapes; `None` when the model
/// cannot be read or some node with arithmetic has shapes the analysis cannot pin down (a
/// partial count would mislead a GFLOP/s figure).
pub fn flops_at(path: &Path, inputs: &[(String, Vec<usize>)]) -> Option<u64> {
    let hints: Vec<ShapeHint> = inputs
        .iter()
        .map(|(n, d)| ShapeHint::Input(n.clone(), d.clone()))
        .collect();
    let r = inspect(path, &hints).ok()?;
    r.compute.unknown.is_empty().then_some(r.compute.flops)
}
