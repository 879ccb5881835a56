//! Helpers shared by the facade's integration tests: deploy + load through the public API,
//! run a case's data sets against its expected outputs, and build small models.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use rdeploy_conformance as conf;
use rdeploy_core::onnx::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
};
use rdeploy_core::{Dim, Tensor};
use rdeploy_onnx::build::tensor_value_info;
use std::path::Path;

/// `{"backend_config": {"type": backend}}` with `extra`'s top-level keys merged in.
pub fn config(backend: &str, extra: serde_json::Value) -> rdeploy::Config {
    let mut cfg = serde_json::json!({"backend_config": {"type": backend}});
    if let (Some(o), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    rdeploy::Config::from_json(&cfg, Path::new("<test>")).expect("a valid test config")
}

/// Deploys `model` for `backend` into `dir` and loads it; errors as `deploy: ...`/`load: ...`.
pub fn deploy(
    backend: &str,
    model: &Path,
    dir: &Path,
    extra: serde_json::Value,
    options: &rdeploy::DeployOptions<'_>,
) -> Result<(rdeploy::WorkDir, std::sync::Arc<dyn rdeploy::Wrapper>), String> {
    let registry = rdeploy::builtin_registry();
    let wd = rdeploy::deploy(
        &registry,
        &config(backend, extra),
        model,
        dir,
        &rdeploy::Device::cpu(),
        options,
    )
    .map_err(|e| format!("deploy: {}", e.report()))?;
    let w = rdeploy::load(&wd, &registry, None).map_err(|e| format!("load: {}", e.report()))?;
    Ok((wd, w))
}

/// Runs every data set of `case` (inputs by position) and compares with its expected outputs.
pub fn check_data_sets(
    w: &dyn rdeploy::Wrapper,
    case: &conf::Case,
    rtol: f64,
    atol: f64,
) -> Result<(), String> {
    for ds in &case.data_sets {
        let named = w
            .inputs()
            .iter()
            .map(|s| s.name.clone())
            .zip(ds.inputs.iter().cloned())
            .collect();
        let outs = w
            .forward(named)
            .map_err(|e| format!("forward: {}", e.report()))?;
        if outs.len() != ds.outputs.len() {
            return Err(format!(
                "{} outputs, expected {}",
                outs.len(),
                ds.outputs.len()
            ));
        }
        for ((name, got), want) in outs.iter().zip(&ds.outputs) {
            conf::compare(got, want, rtol, atol).map_err(|e| format!("output {name}: {e}"))?;
        }
    }
    Ok(())
}

/// Deploys `case` for `backend` in `work/<case>` with the stock config and checks its data
/// sets; the folder is removed when it passes.
pub fn deploy_case(
    backend: &str,
    case: &conf::Case,
    work: &Path,
    rtol: f64,
    atol: f64,
) -> Result<(), String> {
    let dir = work.join(&case.name);
    let (_, w) = deploy(
        backend,
        &case.model,
        &dir,
        serde_json::json!({}),
        &rdeploy::DeployOptions::default(),
    )?;
    check_data_sets(w.as_ref(), case, rtol, atol)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A float32 model at default-domain `opset` from input `x` (dims `x_dims`) to output `y`.
pub fn model(
    opset: i64,
    nodes: Vec<NodeProto>,
    x_dims: &[Dim],
    initializers: Vec<TensorProto>,
) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        producer_name: Some("rdeploy-test".into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: nodes,
            input: vec![tensor_value_info("x", 1, Some(x_dims))],
            output: vec![tensor_value_info("y", 1, None)],
            initializer: initializers,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Fixed dims.
pub fn fixed(dims: &[u64]) -> Vec<Dim> {
    dims.iter().map(|d| Dim::Fixed(*d)).collect()
}

/// A 1-D int64 initializer.
pub fn i64s(name: &str, v: &[i64]) -> TensorProto {
    rdeploy_core::onnx::tensor_to_proto(
        name,
        &Tensor::from_shape_vec(&[v.len()], v.to_vec()).expect("a 1-D shape fits"),
    )
}

/// A float32 tensor of `shape` with varied, repeatable values in about [-3.5, 4].
pub fn ramp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_shape_vec(
        shape,
        (0..n)
            .map(|i| ((i * 29 % 97) as f32) / 13.0 - 3.5)
            .collect(),
    )
    .expect("the shape's own element count")
}
