//! Converting an ONNX model's float32 computation to float16, on the protobuf (MMDeploy's
//! `precision='fp16'` for ONNX Runtime, done by `onnxconverter_common.float16` there).
//!
//! What stays float32, with casts inserted at the boundaries:
//! - graph inputs and outputs when `keep_io_types` (the default here);
//! - operators in the block list (ops without float16 semantics, `Range`, custom domains, ops
//!   with subgraphs) and nodes named in `node_block_list`;
//! - shape arithmetic: values computed from `Shape`/`Size` (a float16 can hold integers exactly
//!   only up to 2048, so a reshape target computed in float16 would be wrong);
//! - `Resize`'s `roi` and `scales` inputs and `Upsample`'s `scales`, which the spec wants float32.
//!
//! Float32 weights are rounded to float16 after clamping: magnitudes below `min_positive_val`
//! become `min_positive_val`, magnitudes above `max_finite_val` become `max_finite_val`.

use crate::{Pass, PassContext, PassOutcome};
use half::f16;
use rdeploy_core::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, attribute_proto::AttributeType,
    type_proto,
};
use rdeploy_core::{DeployConfig, Error, PassRequest, Result};
use std::collections::{HashMap, HashSet};

const FLOAT: i32 = 1;
const FLOAT16: i32 = 10;
const INT64: i32 = 7;
const BOOL: i32 = 9;

/// Conversion options (MMDeploy's `common_config` keys for `onnxruntime-fp16`).
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Keep graph inputs and outputs float32 (casts inside the graph).
    pub keep_io_types: bool,
    /// Smallest non-zero magnitude a weight keeps.
    pub min_positive_val: f32,
    /// Largest magnitude a weight keeps.
    pub max_finite_val: f32,
    /// Operator types that stay float32 (replaces the default list when given).
    pub op_block_list: Vec<String>,
    /// Node names that stay float32.
    pub node_block_list: Vec<String>,
}

/// Ops kept in float32 by default: onnxconverter-common's default block list (ML ops, ops with
/// index outputs or float16-unsafe arithmetic) plus `Range`.
pub const DEFAULT_OP_BLOCK_LIST: &[&str] = &[
    "ArrayFeatureExtractor",
    "Binarizer",
    "CastMap",
    "CategoryMapper",
    "DictVectorizer",
    "FeatureVectorizer",
    "Imputer",
    "LabelEncoder",
    "LinearClassifier",
    "LinearRegressor",
    "Normalizer",
    "OneHotEncoder",
    "RandomUniformLike",
    "SVMClassifier",
    "SVMRegressor",
    "Scaler",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "ZipMap",
    "NonMaxSuppression",
    "TopK",
    "RoiAlign",
    "Range",
    "CumSum",
    "Min",
    "Max",
    "Upsample",
];

impl Default for Options {
    fn default() -> Self {
        Options {
            keep_io_types: true,
            min_positive_val: 1e-7,
            max_finite_val: 1e4,
            op_block_list: DEFAULT_OP_BLOCK_LIST
                .iter()
                .map(|s| s.to_string())
                .collect(),
            node_block_list: Vec::new(),
        }
    }
}

/// What the conversion did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Nodes now computing in float16.
    pub fp16_nodes: usize,
    /// Nodes kept in float32.
    pub fp32_nodes: usize,
    /// Initializers converted.
    pub converted_initializers: usize,
    /// Cast nodes inserted.
    pub casts: usize,
    /// Nodes kept in float32 because a weight or constant they read leaves float16's range
    /// (`|v| > max_finite_val`, or a tensor whose non-zero values are all below
    /// `min_positive_val`, which float16 would flush or clamp): `(node, reason)`.
    pub kept_for_range: Vec<(String, String)>,
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name() == name)
}

fn has_subgraph(n: &NodeProto) -> bool {
    n.attribute
        .iter()
        .any(|a| a.g.is_some() || !a.graphs.is_empty())
}

/// Output element types of a node from its op and input types (`None`: unknown).
fn output_types(n: &NodeProto, ty: &HashMap<String, i32>) -> Vec<Option<i32>> {
    let input = |i: usize| {
        n.input
            .get(i)
            .filter(|s| !s.is_empty())
            .and_then(|s| ty.get(s).copied())
    };
    let count = n.output.len();
    let all = |t: Option<i32>| vec![t; count];
    let tensor_attr_type = |name: &str| {
        attr(n, name)
            .and_then(|a| a.t.as_ref())
            .map(|t| t.data_type())
    };
    match n.op_type() {
        "Cast" => all(attr(n, "to").map(|a| a.i() as i32)),
        "CastLike" => all(input(1)),
        "Constant" => all(tensor_attr_type("value").or_else(|| {
            n.attribute.iter().find_map(|a| match a.name() {
                "value_float" | "value_floats" => Some(FLOAT),
                "value_int" | "value_ints" => Some(INT64),
                _ => None,
            })
        })),
        "ConstantOfShape" => all(Some(tensor_attr_type("value").unwrap_or(FLOAT))),
        "Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin" | "NonMaxSuppression" => {
            all(Some(INT64))
        }
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor"
        | "Not" | "IsNaN" | "IsInf" => all(Some(BOOL)),
        "TopK" | "MaxPool" => {
            let mut v = vec![input(0)];
            v.extend(std::iter::repeat_n(Some(INT64), count.saturating_sub(1)));
            v
        }
        "Dropout" => {
            let mut v = vec![input(0)];
            v.extend(std::iter::repeat_n(Some(BOOL), count.saturating_sub(1)));
            v
        }
        "Unique" => {
            let mut v = vec![input(0)];
            v.extend(std::iter::repeat_n(Some(INT64), count.saturating_sub(1)));
            v
        }
        "Where" => all(input(1)),
        "DequantizeLinear" => all(input(1)),
        "QuantizeLinear" => all(input(2).or(Some(2))),
        "RandomNormal" | "RandomUniform" | "EyeLike" | "RandomNormalLike" | "RandomUniformLike" => {
            all(attr(n, "dtype")
                .map(|a| a.i() as i32)
                .or_else(|| input(0))
                .or(Some(FLOAT)))
        }
        _ => all(input(0)),
    }
}

fn elem_type_of(v: &rdeploy_core::onnx::proto::ValueInfoProto) -> Option<i32> {
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => Some(t.elem_type()),
        _ => None,
    }
}

fn set_elem_type(v: &mut rdeploy_core::onnx::proto::ValueInfoProto, code: i32) {
    if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = Some(code);
    }
}

/// Why a float32 constant cannot become float16 without changing it, if it cannot: a value
/// beyond `max_finite_val` (it would be clamped: `Mul` by 30000 would become 1e4), or non-zero
/// values all below `min_positive_val` (an epsilon such as 1e-12 would become 1e-7 or 0).
fn out_of_range(t: &TensorProto, opts: &Options) -> Option<String> {
    if t.data_type() != FLOAT {
        return None;
    }
    let vals = f32_values(t).ok()?;
    let big = vals
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0f32, |m, v| m.max(v.abs()));
    if big > opts.max_finite_val {
        return Some(format!(
            "'{}' holds {big:e}, beyond float16's range as configured (max_finite_val {:e})",
            t.name(),
            opts.max_finite_val
        ));
    }
    if big > 0.0 && big < opts.min_positive_val {
        return Some(format!(
            "'{}' holds only values below {:e} (largest {big:e}), which float16 cannot keep",
            t.name(),
            opts.min_positive_val
        ));
    }
    None
}

fn f32_values(t: &TensorProto) -> Result<Vec<f32>, String> {
    Ok(match t.raw_data.as_ref().filter(|r| !r.is_empty()) {
        Some(raw) => {
            if raw.len() % 4 != 0 {
                return Err(format!(
                    "tensor '{}' has {} raw bytes, not a multiple of 4",
                    t.name(),
                    raw.len()
                ));
            }
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }
        None => t.float_data.clone(),
    })
}

fn to_f16_tensor(t: &mut TensorProto, opts: &Options) -> Result<(), String> {
    let vals = f32_values(t)?;
    let clamp = |v: f32| {
        let a = v.abs();
        if v.is_nan() || a == 0.0 {
            v
        } else if a < opts.min_positive_val {
            opts.min_positive_val.copysign(v)
        } else if a > opts.max_finite_val {
            opts.max_finite_val.copysign(v)
        } else {
            v
        }
    };
    let mut raw = Vec::with_capacity(vals.len() * 2);
    for v in vals {
        raw.extend_from_slice(&f16::from_f32(clamp(v)).to_le_bytes());
    }
    t.float_data.clear();
    t.raw_data = Some(raw);
    t.data_type = Some(FLOAT16);
    Ok(())
}

/// Names a subgraph reads from its enclosing scopes: node inputs (nested subgraphs included)
/// that the subgraph neither takes as inputs, holds as initializers, nor computes.
fn captured_names(g: &GraphProto) -> Vec<String> {
    let mut defined: HashSet<&str> = g.input.iter().map(|v| v.name()).collect();
    defined.extend(g.initializer.iter().map(|t| t.name()));
    defined.extend(
        g.node
            .iter()
            .flat_map(|n| n.output.iter().map(String::as_str)),
    );
    let mut out = Vec::new();
    for n in &g.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            if !defined.contains(i.as_str()) {
                out.push(i.clone());
            }
        }
        for a in &n.attribute {
            for sub in a.g.iter().chain(&a.graphs) {
                out.extend(
                    captured_names(sub)
                        .into_iter()
                        .filter(|c| !defined.contains(c.as_str())),
                );
            }
        }
    }
    out
}

fn cast_node(input: &str, output: &str, to: i32, name: String) -> NodeProto {
    NodeProto {
        input: vec![input.to_string()],
        output: vec![output.to_string()],
        name: Some(name),
        op_type: Some("Cast".into()),
        attribute: vec![AttributeProto {
            name: Some("to".into()),
            r#type: Some(AttributeType::Int as i32),
            i: Some(i64::from(to)),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Input slots that must stay float32 even on a float16 node.
fn fp32_slots(op: &str) -> &'static [usize] {
    match op {
        "Resize" => &[1, 2],
        "Upsample" => &[1],
        _ => &[],
    }
}

/// Converts `model` in place.
///
/// # Errors
/// A message when a tensor is malformed.
pub fn convert(model: &mut ModelProto, opts: &Options) -> Result<Report, String> {
    let g = model.graph.get_or_insert_with(Default::default);
    let mut report = Report::default();

    // 1. Element types of every value.
    let mut ty: HashMap<String, i32> = HashMap::new();
    for v in g.input.iter().chain(&g.value_info).chain(&g.output) {
        if let Some(t) = elem_type_of(v) {
            ty.insert(v.name().to_string(), t);
        }
    }
    for t in &g.initializer {
        ty.insert(t.name().to_string(), t.data_type());
    }
    for n in &g.node {
        for (o, t) in n.output.iter().zip(output_types(n, &ty)) {
            if let Some(t) = t {
                ty.entry(o.clone()).or_insert(t);
            }
        }
    }
    let is_float = |name: &str| ty.get(name) == Some(&FLOAT);

    // 2. Shape-derived values and each node's precision.
    let constants: HashSet<String> = g
        .initializer
        .iter()
        .map(|t| t.name().to_string())
        .chain(
            g.node
                .iter()
                .filter(|n| n.op_type() == "Constant")
                .flat_map(|n| n.output.clone()),
        )
        .collect();
    // Constants float16 cannot hold: the nodes reading them stay float32.
    let mut unsafe_consts: HashMap<String, String> = HashMap::new();
    for t in &g.initializer {
        if let Some(why) = out_of_range(t, opts) {
            unsafe_consts.insert(t.name().to_string(), why);
        }
    }
    for n in g.node.iter().filter(|n| n.op_type() == "Constant") {
        for a in &n.attribute {
            if let Some(t) = a.t.as_ref() {
                let mut named = t.clone();
                named.name = n.output.first().cloned();
                if let Some(why) = out_of_range(&named, opts) {
                    unsafe_consts.insert(n.output.first().cloned().unwrap_or_default(), why);
                }
            }
        }
    }
    let mut shape_derived: HashSet<String> = HashSet::new();
    let block: HashSet<&str> = opts.op_block_list.iter().map(String::as_str).collect();
    let block_nodes: HashSet<&str> = opts.node_block_list.iter().map(String::as_str).collect();
    let mut fp16_node = Vec::with_capacity(g.node.len());
    for n in &g.node {
        let ins: Vec<&String> = n.input.iter().filter(|s| !s.is_empty()).collect();
        let derived = matches!(n.op_type(), "Shape" | "Size")
            || (!ins.is_empty()
                && ins
                    .iter()
                    .all(|i| shape_derived.contains(*i) || constants.contains(*i))
                && ins.iter().any(|i| shape_derived.contains(*i)));
        if derived {
            shape_derived.extend(n.output.iter().cloned());
        }
        let custom_domain = !matches!(n.domain(), "" | "ai.onnx");
        let range = n
            .input
            .iter()
            .find_map(|i| unsafe_consts.get(i))
            .or_else(|| {
                // A Constant node whose own value is out of range stays float32 too.
                (n.op_type() == "Constant")
                    .then(|| n.output.iter().find_map(|o| unsafe_consts.get(o)))
                    .flatten()
            });
        if let Some(why) = range
            && !derived
        {
            let label = if n.name().is_empty() {
                format!("{} -> {}", n.op_type(), n.output.join(", "))
            } else {
                format!("{} ({})", n.name(), n.op_type())
            };
            report.kept_for_range.push((label, why.clone()));
        }
        let fp32 = derived
            || block.contains(n.op_type())
            || block_nodes.contains(n.name())
            || has_subgraph(n)
            || custom_domain
            || range.is_some();
        fp16_node.push(!fp32);
    }

    // 3. Which precision each float value is wanted in, per consumer slot.
    let graph_outputs: HashSet<String> = g.output.iter().map(|o| o.name().to_string()).collect();
    let mut wanted_fp16: HashMap<String, bool> = HashMap::new(); // constant -> used as fp16 somewhere
    let mut wanted_fp32: HashMap<String, bool> = HashMap::new();
    for (n, &half) in g.node.iter().zip(&fp16_node) {
        for (slot, i) in n.input.iter().enumerate() {
            if i.is_empty() || !is_float(i) {
                continue;
            }
            if half && !fp32_slots(n.op_type()).contains(&slot) {
                wanted_fp16.insert(i.clone(), true);
            } else {
                wanted_fp32.insert(i.clone(), true);
            }
        }
    }

    // Constants follow their consumers: a constant only fp32 nodes read stays fp32, exactly.
    for (n, half) in g.node.iter().zip(fp16_node.iter_mut()) {
        if n.op_type() == "Constant" && *half {
            *half = n.output.iter().any(|o| wanted_fp16.contains_key(o))
                && !n.output.iter().any(|o| wanted_fp32.contains_key(o));
        }
    }

    // 4. Storage type of every float value after conversion.
    let mut storage: HashMap<String, i32> = HashMap::new();
    for v in &g.input {
        if is_float(v.name()) && !constants.contains(v.name()) {
            storage.insert(
                v.name().to_string(),
                if opts.keep_io_types { FLOAT } else { FLOAT16 },
            );
        }
    }
    for t in g.initializer.iter_mut() {
        let name = t.name().to_string();
        if t.data_type() == FLOAT
            && wanted_fp16.contains_key(&name)
            && !wanted_fp32.contains_key(&name)
            && !graph_outputs.contains(&name)
        {
            to_f16_tensor(t, opts)?;
            report.converted_initializers += 1;
            storage.insert(name, FLOAT16);
        } else if t.data_type() == FLOAT {
            storage.insert(name, FLOAT);
        }
    }
    for (n, &half) in g.node.iter_mut().zip(&fp16_node) {
        if half {
            report.fp16_nodes += 1;
            match n.op_type() {
                "Cast" => {
                    for a in n
                        .attribute
                        .iter_mut()
                        .filter(|a| a.name() == "to" && a.i() == i64::from(FLOAT))
                    {
                        a.i = Some(i64::from(FLOAT16));
                    }
                }
                "Constant" | "ConstantOfShape" => {
                    for a in n.attribute.iter_mut() {
                        if let Some(t) = a.t.as_mut().filter(|t| t.data_type() == FLOAT) {
                            to_f16_tensor(t, opts)?;
                        }
                    }
                    if n.op_type() == "Constant"
                        && n.attribute
                            .iter()
                            .any(|a| matches!(a.name(), "value_float" | "value_floats"))
                    {
                        // Rewrite value_float(s) as a float16 tensor.
                        let floats: Vec<f32> = n
                            .attribute
                            .iter()
                            .flat_map(|a| {
                                if a.name() == "value_float" {
                                    vec![a.f()]
                                } else {
                                    a.floats.clone()
                                }
                            })
                            .collect();
                        let scalar = n.attribute.iter().any(|a| a.name() == "value_float");
                        let mut t = TensorProto {
                            data_type: Some(FLOAT),
                            float_data: floats.clone(),
                            dims: if scalar {
                                vec![]
                            } else {
                                vec![floats.len() as i64]
                            },
                            ..Default::default()
                        };
                        to_f16_tensor(&mut t, opts)?;
                        n.attribute = vec![AttributeProto {
                            name: Some("value".into()),
                            r#type: Some(AttributeType::Tensor as i32),
                            t: Some(t),
                            ..Default::default()
                        }];
                    }
                }
                "RandomNormal" | "RandomUniform" | "EyeLike" | "RandomNormalLike" => {
                    for a in n
                        .attribute
                        .iter_mut()
                        .filter(|a| a.name() == "dtype" && a.i() == i64::from(FLOAT))
                    {
                        a.i = Some(i64::from(FLOAT16));
                    }
                }
                _ => {}
            }
            for o in &n.output {
                if is_float(o) {
                    storage.insert(o.clone(), FLOAT16);
                }
            }
        } else {
            report.fp32_nodes += 1;
            for o in &n.output {
                if is_float(o) {
                    storage.insert(o.clone(), FLOAT);
                }
            }
        }
    }

    // 5. Rebuild the node list with casts where a consumer wants the other precision.
    let mut casts: HashMap<(String, i32), String> = HashMap::new();
    let mut nodes: Vec<NodeProto> = Vec::with_capacity(g.node.len());
    let old_nodes = std::mem::take(&mut g.node);
    let mut k = 0usize;
    for (mut n, half) in old_nodes.into_iter().zip(fp16_node) {
        let op = n.op_type().to_string();
        for (slot, i) in n.input.iter_mut().enumerate() {
            let Some(&have) = storage.get(i.as_str()) else {
                continue;
            };
            let want = if half && !fp32_slots(&op).contains(&slot) {
                FLOAT16
            } else {
                FLOAT
            };
            if have == want {
                continue;
            }
            let key = (i.clone(), want);
            let cast_out = match casts.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let out = format!(
                        "{i}__rdeploy_to_{}",
                        if want == FLOAT16 { "fp16" } else { "fp32" }
                    );
                    nodes.push(cast_node(i, &out, want, format!("rdeploy_cast_{k}")));
                    k += 1;
                    report.casts += 1;
                    casts.insert(key, out.clone());
                    out
                }
            };
            *i = cast_out;
        }
        // A subgraph (If/Loop/Scan body, kept float32) may read outer values by name; one whose
        // producer became float16 is cast back at the boundary, or ONNX Runtime refuses the
        // file ("bound to different types"), as onnxconverter-common 1.16 does.
        if has_subgraph(&n) {
            let mut captured: Vec<String> = n
                .attribute
                .iter()
                .flat_map(|a| a.g.iter().chain(&a.graphs))
                .flat_map(captured_names)
                .filter(|c| storage.get(c.as_str()) == Some(&FLOAT16))
                .collect();
            captured.sort();
            captured.dedup();
            for c in captured {
                let key = (c.clone(), FLOAT);
                let cast_out = match casts.get(&key) {
                    Some(o) => o.clone(),
                    None => {
                        let out = format!("{c}__rdeploy_to_fp32");
                        nodes.push(cast_node(&c, &out, FLOAT, format!("rdeploy_cast_{k}")));
                        k += 1;
                        report.casts += 1;
                        casts.insert(key, out.clone());
                        out
                    }
                };
                for a in &mut n.attribute {
                    if let Some(sub) = a.g.as_mut() {
                        crate::edit::rename_value(sub, &c, &cast_out);
                    }
                    for sub in &mut a.graphs {
                        crate::edit::rename_value(sub, &c, &cast_out);
                    }
                }
            }
        }
        nodes.push(n);
    }
    g.node = nodes;

    // 6. Graph inputs and outputs.
    let io_type = if opts.keep_io_types { FLOAT } else { FLOAT16 };
    for v in g.input.iter_mut() {
        if storage.contains_key(v.name()) && !constants.contains(v.name()) {
            set_elem_type(v, io_type);
        }
    }
    let outputs: Vec<String> = g.output.iter().map(|o| o.name().to_string()).collect();
    for name in outputs {
        let Some(&have) = storage.get(&name) else {
            continue;
        };
        if have != io_type {
            let inner = format!("{name}__rdeploy_inner");
            rename_internal(g, &name, &inner);
            g.node.push(cast_node(
                &inner,
                &name,
                io_type,
                format!("rdeploy_cast_{k}"),
            ));
            k += 1;
            report.casts += 1;
        }
        if let Some(v) = g.output.iter_mut().find(|o| o.name() == name) {
            set_elem_type(v, io_type);
        }
    }
    // Intermediate type annotations are stale now; engines infer them again.
    g.value_info.clear();
    Ok(report)
}

/// Renames a value everywhere except in the graph's output list.
fn rename_internal(g: &mut GraphProto, from: &str, to: &str) {
    let outputs: Vec<String> = g.output.iter().map(|o| o.name().to_string()).collect();
    crate::edit::rename_value(g, from, to);
    for (o, name) in g.output.iter_mut().zip(outputs) {
        o.name = Some(name);
    }
}

/// The `fp16` pass: float32 computation to float16 ([`convert`]), configured by MMDeploy's
/// `backend_config.common_config` keys of `onnxruntime-fp16.py` (`keep_io_types`,
/// `min_positive_val`, `max_finite_val`, `op_block_list`, `node_block_list`).
#[derive(Clone, Debug, PartialEq)]
pub struct Fp16Pass {
    /// The conversion options.
    pub options: Options,
}

impl Fp16Pass {
    /// The pass configured from `deploy_cfg`'s `backend_config.common_config`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the `common_config` key with a wrong value.
    pub fn from_request(_req: &PassRequest, deploy_cfg: &DeployConfig) -> Result<Fp16Pass> {
        Ok(Fp16Pass {
            options: options_from_config(deploy_cfg)?,
        })
    }
}

impl Pass for Fp16Pass {
    fn name(&self) -> &str {
        "fp16"
    }

    fn run(&self, model: &mut ModelProto, cx: &PassContext<'_>) -> Result<PassOutcome> {
        let r = convert(model, &self.options)
            .map_err(|m| Error::model(cx.model_path, format!("float16 conversion failed: {m}")))?;
        let mut details = serde_json::Map::new();
        for (k, v) in [
            ("fp16_nodes", r.fp16_nodes),
            ("fp32_nodes", r.fp32_nodes),
            ("converted_initializers", r.converted_initializers),
            ("casts", r.casts),
        ] {
            details.insert(k.into(), v.into());
        }
        details.insert("keep_io_types".into(), self.options.keep_io_types.into());
        details.insert(
            "kept_fp32_for_range".into(),
            r.kept_for_range
                .iter()
                .map(|(n, why)| serde_json::json!({"node": n, "reason": why}))
                .collect::<Vec<_>>()
                .into(),
        );
        let mut notes = vec![format!(
            "fp16: {} nodes in float16, {} kept float32, {} weights converted, {} casts",
            r.fp16_nodes, r.fp32_nodes, r.converted_initializers, r.casts
        )];
        for (n, why) in &r.kept_for_range {
            tracing::warn!("fp16: node {n} stays float32: {why}");
            notes.push(format!("fp16: node {n} stays float32: {why}"));
        }
        Ok(PassOutcome {
            changed: r.fp16_nodes > 0 || r.converted_initializers > 0,
            notes,
            details,
        })
    }
}

/// `backend_config.common_config` keys of MMDeploy's `onnxruntime-fp16.py`.
fn options_from_config(cfg: &DeployConfig) -> Result<Options> {
    use serde_json::Value as Json;
    let mut o = Options::default();
    let Some(common) = cfg.get("backend_config.common_config") else {
        return Ok(o);
    };
    let key = |k: &str| format!("backend_config.common_config.{k}");
    if let Some(v) = common.get("keep_io_types").filter(|v| !v.is_null()) {
        o.keep_io_types = v.as_bool().ok_or_else(|| {
            Error::config_key(
                key("keep_io_types"),
                format!("must be True or False, not {v}"),
            )
        })?;
    }
    for (k, slot) in [
        ("min_positive_val", &mut o.min_positive_val),
        ("max_finite_val", &mut o.max_finite_val),
    ] {
        if let Some(v) = common.get(k).filter(|v| !v.is_null()) {
            *slot = v.as_f64().filter(|f| *f > 0.0).ok_or_else(|| {
                Error::config_key(key(k), format!("must be a positive number, not {v}"))
            })? as f32;
        }
    }
    let strings = |k: &str| -> Result<Option<Vec<String>>> {
        match common.get(k) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str().map(str::to_string).ok_or_else(|| {
                        Error::config_key(key(k), format!("must be a list of names; found {x}"))
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => Err(Error::config_key(
                key(k),
                format!("must be a list of names or None, not {v}"),
            )),
        }
    };
    if let Some(l) = strings("op_block_list")? {
        o.op_block_list = l;
    }
    if let Some(l) = strings("node_block_list")? {
        o.node_block_list = l;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamping_follows_the_options() {
        let opts = Options::default();
        let mut t = TensorProto {
            data_type: Some(FLOAT),
            dims: vec![4],
            float_data: vec![1e-9, -1e-9, 5e5, 0.5],
            ..Default::default()
        };
        to_f16_tensor(&mut t, &opts).unwrap();
        let back: Vec<f32> = t
            .raw_data
            .unwrap()
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect();
        assert_eq!(back[3], 0.5);
        assert_eq!(back[2], f16::from_f32(1e4).to_f32());
        assert!(back[0] > 0.0 && back[1] < 0.0);
    }
}
