//! An rdeploy backend written outside rdeploy: `ndarray`, a reference interpreter for float32
//! CNNs (Conv, pooling, Gemm/MatMul, element-wise ops, Softmax, Flatten/Reshape) on the
//! [`ndarray`] crate. Slow and simple on purpose: it is a readable reference to check engines
//! against, and the worked example of docs/adding-a-backend.md.
//!
//! It plugs into rdeploy two ways:
//! - linked in: `rdeploy_cli::run_with(registry)` with [`BACKEND`] installed (see `src/main.rs`,
//!   the `rdeploy-ndarray` binary);
//! - as a plugin: this crate is also a `cdylib` exporting the C ABI with
//!   [`rdeploy_plugin::export_plugin!`], loadable by the stock `rdeploy --plugin`.

use ndarray::{Array2, ArrayD, Axis, IxDyn};
use rdeploy_core::onnx::proto::{AttributeProto, NodeProto};
use rdeploy_core::{
    BackendDescriptor, BackendManager, DType, DeployConfig, Device, Error, Result, Signature,
    Tensor, TensorInfo, Wrapper,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The backend's name, as written in `backend_config.type`.
pub const NAME: &str = "ndarray";

/// The descriptor a registry installs.
pub const BACKEND: BackendDescriptor = BackendDescriptor {
    name: NAME,
    aliases: &["ndarray-ref"],
    create: || Arc::new(NdarrayBackend),
};

rdeploy_plugin::export_plugin!(BACKEND);

/// The operators this interpreter runs.
pub const SUPPORTED_OPS: &[&str] = &[
    "Conv",
    "Relu",
    "Sigmoid",
    "Tanh",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Flatten",
    "Reshape",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Softmax",
    "Identity",
    "Dropout",
];

/// The backend manager.
#[derive(Debug, Default, Clone, Copy)]
pub struct NdarrayBackend;

/// A parsed model: nodes in graph order and float32 weights.
struct Graph {
    nodes: Vec<NodeProto>,
    weights: HashMap<String, ArrayD<f32>>,
}

fn node_label(n: &NodeProto) -> String {
    format!(
        "node '{}' ({})",
        n.name.as_deref().unwrap_or(""),
        n.op_type.as_deref().unwrap_or("?")
    )
}

/// Loads and checks a model: every operator supported, every weight float32 (or int64 shapes).
fn load_graph(path: &Path) -> Result<Graph> {
    let model = rdeploy_core::onnx::load(path)?;
    let graph = model
        .graph
        .ok_or_else(|| Error::model(path, "the model has no graph"))?;
    for n in &graph.node {
        let op = n.op_type.as_deref().unwrap_or("");
        let domain = n.domain.as_deref().unwrap_or("");
        if !(domain.is_empty() || domain == "ai.onnx") || !SUPPORTED_OPS.contains(&op) {
            return Err(Error::model(
                path,
                format!(
                    "{} is not supported by the ndarray backend (it runs {}); use another backend for this model",
                    node_label(n),
                    SUPPORTED_OPS.join(", ")
                ),
            ));
        }
    }
    let mut weights = HashMap::new();
    for t in &graph.initializer {
        let name = t.name.clone().unwrap_or_default();
        let tensor = rdeploy_core::onnx::tensor_from_proto(t)
            .map_err(|m| Error::model(path, format!("weight '{name}': {m}")))?;
        let tensor = tensor.cast(DType::F32, rdeploy_core::Cast::Unchecked)?;
        weights.insert(name, tensor.view::<f32>()?.to_owned());
    }
    Ok(Graph {
        nodes: graph.node,
        weights,
    })
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name))
}

fn ints(n: &NodeProto, name: &str) -> Option<Vec<usize>> {
    attr(n, name).map(|a| a.ints.iter().map(|&v| v.max(0) as usize).collect())
}

fn int(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).and_then(|a| a.i).unwrap_or(default)
}

fn float(n: &NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).and_then(|a| a.f).unwrap_or(default)
}

fn bad(n: &NodeProto, msg: impl std::fmt::Display) -> Error {
    Error::backend(NAME, format!("{}: {msg}", node_label(n)))
}

fn matrix(n: &NodeProto, a: &ArrayD<f32>) -> Result<Array2<f32>> {
    a.clone().into_dimensionality().map_err(|_| {
        bad(
            n,
            format!("expects a 2-D matrix, got shape {:?}", a.shape()),
        )
    })
}

/// 2-D convolution (NCHW) with pads, strides, dilations and groups.
fn conv(
    n: &NodeProto,
    x: &ArrayD<f32>,
    w: &ArrayD<f32>,
    b: Option<&ArrayD<f32>>,
) -> Result<ArrayD<f32>> {
    if x.ndim() != 4 || w.ndim() != 4 {
        return Err(bad(n, "only 2-D convolutions (NCHW) are supported"));
    }
    let (batch, c, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let (m, cg, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
    let group = int(n, "group", 1).max(1) as usize;
    if c != cg * group || m % group != 0 {
        return Err(bad(
            n,
            format!(
                "{c} channels do not match weights {:?} with group {group}",
                w.shape()
            ),
        ));
    }
    let pads = ints(n, "pads").unwrap_or(vec![0; 4]);
    let strides = ints(n, "strides").unwrap_or(vec![1, 1]);
    let dil = ints(n, "dilations").unwrap_or(vec![1, 1]);
    let oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) / strides[0] + 1;
    let ow = (wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) / strides[1] + 1;
    let mut y = ArrayD::<f32>::zeros(IxDyn(&[batch, m, oh, ow]));
    let per_group = m / group;
    for bi in 0..batch {
        for oc in 0..m {
            let g = oc / per_group;
            let bias = b.map_or(0.0, |b| b[[oc]]);
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias;
                    for ic in 0..cg {
                        for ky in 0..kh {
                            let iy = (oy * strides[0] + ky * dil[0]) as isize - pads[0] as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix =
                                    (ox * strides[1] + kx * dil[1]) as isize - pads[1] as isize;
                                if ix < 0 || ix >= wd as isize {
                                    continue;
                                }
                                acc += x[[bi, g * cg + ic, iy as usize, ix as usize]]
                                    * w[[oc, ic, ky, kx]];
                            }
                        }
                    }
                    y[[bi, oc, oy, ox]] = acc;
                }
            }
        }
    }
    Ok(y)
}

/// Max or average pooling over 2-D windows (NCHW).
fn pool(n: &NodeProto, x: &ArrayD<f32>, max: bool) -> Result<ArrayD<f32>> {
    if x.ndim() != 4 {
        return Err(bad(n, "only 2-D pooling (NCHW) is supported"));
    }
    if int(n, "ceil_mode", 0) != 0 {
        return Err(bad(n, "ceil_mode=1 is not supported"));
    }
    let k = ints(n, "kernel_shape").ok_or_else(|| bad(n, "kernel_shape is required"))?;
    let strides = ints(n, "strides").unwrap_or(vec![1, 1]);
    let pads = ints(n, "pads").unwrap_or(vec![0; 4]);
    let count_pad = int(n, "count_include_pad", 0) != 0;
    let (batch, c, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let oh = (h + pads[0] + pads[2] - k[0]) / strides[0] + 1;
    let ow = (w + pads[1] + pads[3] - k[1]) / strides[1] + 1;
    let mut y = ArrayD::<f32>::zeros(IxDyn(&[batch, c, oh, ow]));
    for bi in 0..batch {
        for ci in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut best, mut sum, mut count) = (f32::NEG_INFINITY, 0.0f32, 0usize);
                    for ky in 0..k[0] {
                        for kx in 0..k[1] {
                            let iy = (oy * strides[0] + ky) as isize - pads[0] as isize;
                            let ix = (ox * strides[1] + kx) as isize - pads[1] as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                count += usize::from(count_pad);
                                continue;
                            }
                            let v = x[[bi, ci, iy as usize, ix as usize]];
                            best = best.max(v);
                            sum += v;
                            count += 1;
                        }
                    }
                    y[[bi, ci, oy, ox]] = if max { best } else { sum / count.max(1) as f32 };
                }
            }
        }
    }
    Ok(y)
}

fn softmax(n: &NodeProto, x: &ArrayD<f32>) -> Result<ArrayD<f32>> {
    let axis = int(n, "axis", -1);
    let axis = if axis < 0 {
        axis + x.ndim() as i64
    } else {
        axis
    };
    if axis < 0 || axis >= x.ndim() as i64 {
        return Err(bad(n, format!("axis {axis} is out of range")));
    }
    let ax = Axis(axis as usize);
    let mut y = x.clone();
    for mut lane in y.lanes_mut(ax) {
        let m = lane.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        lane.mapv_inplace(|v| (v - m).exp());
        let s: f32 = lane.sum();
        lane.mapv_inplace(|v| v / s);
    }
    Ok(y)
}

/// Element-wise arithmetic with numpy broadcasting (shapes checked by the caller: ndarray
/// panics on shapes that do not broadcast).
fn binary(a: &ArrayD<f32>, b: &ArrayD<f32>, op: &str) -> ArrayD<f32> {
    match op {
        "Add" => a + b,
        "Sub" => a - b,
        "Mul" => a * b,
        _ => a / b,
    }
}

fn broadcastable(a: &[usize], b: &[usize]) -> bool {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .all(|(x, y)| x == y || *x == 1 || *y == 1)
}

impl Graph {
    fn run(
        &self,
        inputs: Vec<(String, ArrayD<f32>)>,
        outputs: &[TensorInfo],
    ) -> Result<Vec<ArrayD<f32>>> {
        let mut vals: HashMap<String, ArrayD<f32>> = inputs.into_iter().collect();
        for n in &self.nodes {
            let get = |i: usize| -> Result<Option<&ArrayD<f32>>> {
                match n.input.get(i).map(String::as_str) {
                    None | Some("") => Ok(None),
                    Some(name) => vals
                        .get(name)
                        .or_else(|| self.weights.get(name))
                        .map(Some)
                        .ok_or_else(|| bad(n, format!("input '{name}' is not computed before it"))),
                }
            };
            let need = |i: usize| -> Result<&ArrayD<f32>> {
                get(i)?.ok_or_else(|| bad(n, format!("input {i} is missing")))
            };
            let op = n.op_type.as_deref().unwrap_or("");
            let y = match op {
                "Conv" => conv(n, need(0)?, need(1)?, get(2)?)?,
                "Relu" => need(0)?.mapv(|v| v.max(0.0)),
                "Sigmoid" => need(0)?.mapv(|v| 1.0 / (1.0 + (-v).exp())),
                "Tanh" => need(0)?.mapv(f32::tanh),
                "Identity" | "Dropout" => need(0)?.clone(),
                "MaxPool" => pool(n, need(0)?, true)?,
                "AveragePool" => pool(n, need(0)?, false)?,
                "GlobalAveragePool" => {
                    let x = need(0)?;
                    if x.ndim() < 3 {
                        return Err(bad(n, "expects N, C and spatial dims"));
                    }
                    let (b, c) = (x.shape()[0], x.shape()[1]);
                    let flat = x
                        .to_shape((b, c, x.len() / (b * c).max(1)))
                        .map_err(|e| bad(n, e))?;
                    let mean = flat
                        .mean_axis(Axis(2))
                        .ok_or_else(|| bad(n, "empty input"))?;
                    let mut shape = vec![b, c];
                    shape.resize(x.ndim(), 1);
                    mean.into_shape_with_order(IxDyn(&shape))
                        .map_err(|e| bad(n, e))?
                }
                "Flatten" => {
                    let x = need(0)?;
                    let axis = int(n, "axis", 1).clamp(0, x.ndim() as i64) as usize;
                    let rows: usize = x.shape()[..axis].iter().product();
                    x.to_shape(IxDyn(&[rows, x.len() / rows.max(1)]))
                        .map_err(|e| bad(n, e))?
                        .to_owned()
                }
                "Reshape" => {
                    let x = need(0)?;
                    let spec = need(1)?;
                    let mut shape: Vec<isize> = spec.iter().map(|&v| v as isize).collect();
                    for (i, d) in shape.iter_mut().enumerate() {
                        if *d == 0 {
                            *d = x.shape().get(i).copied().unwrap_or(1) as isize;
                        }
                    }
                    let known: isize = shape.iter().filter(|&&d| d > 0).product();
                    let dims: Vec<usize> = shape
                        .iter()
                        .map(|&d| {
                            if d < 0 {
                                x.len() / known.max(1) as usize
                            } else {
                                d as usize
                            }
                        })
                        .collect();
                    x.to_shape(IxDyn(&dims)).map_err(|e| bad(n, e))?.to_owned()
                }
                "Gemm" | "MatMul" => {
                    let (a, b) = (matrix(n, need(0)?)?, matrix(n, need(1)?)?);
                    let gemm = op == "Gemm";
                    let a = if gemm && int(n, "transA", 0) != 0 {
                        a.reversed_axes()
                    } else {
                        a
                    };
                    let b = if gemm && int(n, "transB", 0) != 0 {
                        b.reversed_axes()
                    } else {
                        b
                    };
                    if a.ncols() != b.nrows() {
                        return Err(bad(
                            n,
                            format!("inner dims {} and {} differ", a.ncols(), b.nrows()),
                        ));
                    }
                    let mut y = a.dot(&b).into_dyn();
                    if gemm {
                        y *= float(n, "alpha", 1.0);
                        if let Some(c) = get(2)? {
                            if !broadcastable(y.shape(), c.shape()) {
                                return Err(bad(
                                    n,
                                    format!(
                                        "C {:?} does not broadcast to {:?}",
                                        c.shape(),
                                        y.shape()
                                    ),
                                ));
                            }
                            y = &y + &(c * float(n, "beta", 1.0));
                        }
                    }
                    y
                }
                "Add" | "Sub" | "Mul" | "Div" => {
                    let (a, b) = (need(0)?, need(1)?);
                    if !broadcastable(a.shape(), b.shape()) {
                        return Err(bad(
                            n,
                            format!(
                                "shapes {:?} and {:?} do not broadcast",
                                a.shape(),
                                b.shape()
                            ),
                        ));
                    }
                    binary(a, b, op)
                }
                "Softmax" => softmax(n, need(0)?)?,
                other => return Err(bad(n, format!("unsupported operator {other}"))),
            };
            let out = n.output.first().cloned().unwrap_or_default();
            vals.insert(out, y);
        }
        outputs
            .iter()
            .map(|o| {
                vals.remove(&o.name).ok_or_else(|| {
                    Error::backend(
                        NAME,
                        format!("output '{}' is not computed by any node", o.name),
                    )
                })
            })
            .collect()
    }
}

impl BackendManager for NdarrayBackend {
    fn name(&self) -> &str {
        NAME
    }

    fn check(&self) -> rdeploy_core::Availability {
        // Pure Rust, compiled in: always available.
        Ok(env!("CARGO_PKG_VERSION").to_string())
    }

    fn to_backend(
        &self,
        ir_files: &[PathBuf],
        _deploy_cfg: &DeployConfig,
        _work_dir: &Path,
        device: &Device,
    ) -> Result<Vec<PathBuf>> {
        device.ensure_supported(NAME, &["cpu"])?;
        let ir = rdeploy_core::single_file(NAME, "ndarray's to_backend", ir_files)?;
        // No conversion: the backend runs the ONNX file. Loading it now names any operator it
        // lacks at deploy time instead of at first use.
        load_graph(ir)?;
        Ok(vec![ir.to_path_buf()])
    }

    fn build_wrapper(
        &self,
        backend_files: &[PathBuf],
        device: &Device,
        input_names: &[String],
        output_names: &[String],
        _deploy_cfg: &DeployConfig,
    ) -> Result<Box<dyn Wrapper>> {
        device.ensure_supported(NAME, &["cpu"])?;
        let path = rdeploy_core::single_file(NAME, "ndarray's build_wrapper", backend_files)?;
        let graph = load_graph(path)?;
        let (_, info) = rdeploy_core::onnx::inspect_file(path)?;
        if let Some(t) = info.inputs.iter().find(|t| t.dtype != DType::F32) {
            return Err(Error::model(
                path,
                format!(
                    "input '{}' is {}; the ndarray backend runs float32 models only",
                    t.name, t.dtype
                ),
            ));
        }
        let sig = rdeploy_core::select_signature(
            NAME,
            &info.inputs,
            &info.outputs,
            input_names,
            output_names,
            device,
        )?;
        Ok(Box::new(NdarrayWrapper { sig, graph }))
    }
}

/// A model loaded into the interpreter.
struct NdarrayWrapper {
    sig: Signature,
    graph: Graph,
}

impl Wrapper for NdarrayWrapper {
    fn backend(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }

    fn execute(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let named = inputs
            .iter()
            .zip(&self.sig.inputs)
            .map(|(t, s)| Ok((s.name.clone(), t.view::<f32>()?.to_owned())))
            .collect::<Result<Vec<_>>>()?;
        self.graph
            .run(named, &self.sig.outputs)?
            .into_iter()
            .map(|a| Ok(Tensor::from_array(a)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_rules() {
        assert!(broadcastable(&[2, 3, 4], &[4]));
        assert!(broadcastable(&[2, 1, 4], &[3, 1]));
        assert!(!broadcastable(&[2, 3], &[4]));
    }

    proptest::proptest! {
        #[test]
        fn softmax_is_a_distribution_along_its_axis(
            v in proptest::collection::vec(-30.0f32..30.0, 12),
            axis in 0i64..2,
        ) {
            let n = NodeProto {
                attribute: vec![AttributeProto {
                    name: Some("axis".into()),
                    i: Some(axis),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let x = ArrayD::from_shape_vec(IxDyn(&[3, 4]), v).expect("12 values");
            let y = softmax(&n, &x).expect("softmax");
            for lane in y.lanes(Axis(axis as usize)) {
                proptest::prop_assert!((lane.sum() - 1.0).abs() < 1e-5);
                proptest::prop_assert!(lane.iter().all(|&p| (0.0..=1.0).contains(&p)));
            }
        }

        #[test]
        fn broadcast_add_matches_element_by_element(
            a in proptest::collection::vec(-1e3f32..1e3, 6),
            b in proptest::collection::vec(-1e3f32..1e3, 3),
        ) {
            let x = ArrayD::from_shape_vec(IxDyn(&[2, 3]), a.clone()).expect("6 values");
            let bias = ArrayD::from_shape_vec(IxDyn(&[3]), b.clone()).expect("3 values");
            let y = binary(&x, &bias, "Add");
            for i in 0..2 {
                for j in 0..3 {
                    proptest::prop_assert_eq!(y[[i, j]], a[i * 3 + j] + b[j]);
                }
            }
        }
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let n = NodeProto::default();
        let x = ndarray::arr2(&[[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]]).into_dyn();
        let y = softmax(&n, &x).expect("softmax");
        for row in y.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-6);
        }
        assert!((y[[1, 0]] - 1.0 / 3.0).abs() < 1e-6);
    }
}
