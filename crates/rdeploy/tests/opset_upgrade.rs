//! The `opset_upgrade` pass through the deploy pipeline: every model-suite case of the `onnx`
//! package written at opset <= 6 (copied unchanged by `scripts/prepare-test-data.py`) deploys
//! and matches its expected outputs (PyTorch's, shipped with the cases) on each backend, and an
//! opset-9 `Softmax` over `[1, 1000, 1, 1]` (SqueezeNet's head) is right everywhere.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

mod common;

use rdeploy_conformance as conf;
use rdeploy_core::BackendManager;
use std::path::Path;

/// Cases whose model is not valid ONNX at any opset: PRelu with a slope of shape `[3]` on an
/// input `[2, 3, 4, 5]` (PyTorch's per-channel slope, which numpy broadcasting in opset 7
/// cannot express and the opset-6 text does not define for rank 4).
const INVALID: &[&str] = &["test_PReLU_2d_multiparam"];

fn old_opset_suite(backend: &dyn BackendManager) {
    old_opset_suite_skipping(backend, &[]);
}

fn old_opset_suite_skipping(backend: &dyn BackendManager, skip: &[&str]) {
    if !conf::backend_under_test(backend) {
        return;
    }
    let root = conf::test_data_dir().join("onnx-old-opset");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/prepare-test-data.py", root.display()))
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let work = conf::tempdir(backend.name(), "old-opset");
    let mut failures = Vec::new();
    let mut passed = 0;
    for d in &dirs {
        let case = conf::load_case(d);
        if INVALID.contains(&case.name.as_str()) || skip.contains(&case.name.as_str()) {
            continue;
        }
        // PyTorch's float32 outputs against an engine's: summation order only.
        match common::deploy_case(backend.name(), &case, &work, 1e-3, 1e-4) {
            Ok(()) => passed += 1,
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        failures.is_empty(),
        "{} of {} old-opset cases failed on {}:\n{}",
        failures.len(),
        dirs.len() - INVALID.len() - skip.len(),
        backend.name(),
        failures.join("\n")
    );
    assert!(passed + skip.len() >= 111, "only {passed} cases ran");
}

#[test]
fn old_opset_cases_run_on_onnxruntime() {
    old_opset_suite(&rdeploy_backend_ort::OrtBackend);
}

#[test]
fn old_opset_cases_run_on_tract() {
    old_opset_suite(&rdeploy_backend_tract::TractBackend);
}

#[test]
fn old_opset_cases_run_on_openvino() {
    // float64 cases whose PyTorch inputs are uninitialised memory (values near 1e198 and
    // 1e-310): OpenVINO's CPU plugin computes float64 in float32, so they overflow there.
    let f64_garbage = [
        "test_operator_add_broadcast",
        "test_operator_add_size1_broadcast",
        "test_operator_add_size1_right_broadcast",
        "test_operator_add_size1_singleton_broadcast",
        "test_operator_addconstant",
    ];
    old_opset_suite_skipping(&rdeploy_backend_openvino::OpenVinoBackend, &f64_garbage);
}

use rdeploy_core::Tensor;
use rdeploy_core::onnx::proto::{ModelProto, NodeProto, TensorProto};
use rdeploy_onnx::node;

/// A one-node float32 model at `opset` from `x` (dims `shape`) to `y`.
fn one_node(opset: i64, n: NodeProto, shape: &[u64], inits: Vec<TensorProto>) -> ModelProto {
    common::model(opset, vec![n], &common::fixed(shape), inits)
}

/// Deploys `model` on every available backend and returns each backend's output for `x`.
fn run_everywhere(model: &ModelProto, what: &str, x: &Tensor) -> Vec<(String, Tensor)> {
    let work = conf::tempdir("all", what);
    std::fs::create_dir_all(&work).unwrap();
    let path = work.join("model.onnx");
    rdeploy_core::onnx::save(model, &path).unwrap();
    let mut out = Vec::new();
    for backend in [
        &rdeploy_backend_tract::TractBackend as &dyn BackendManager,
        &rdeploy_backend_ort::OrtBackend,
        &rdeploy_backend_openvino::OpenVinoBackend,
    ] {
        if !conf::backend_under_test(backend) {
            continue;
        }
        let (_, w) = common::deploy(
            backend.name(),
            &path,
            &work.join(backend.name()),
            serde_json::json!({}),
            &rdeploy::DeployOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{what} on {}: {e}", backend.name()));
        let y = w.forward(vec![("x".into(), x.clone())]).unwrap();
        out.push((backend.name().to_string(), y[0].1.clone()));
    }
    let _ = std::fs::remove_dir_all(&work);
    out
}

/// numpy-style softmax of `v` over consecutive blocks of `block` elements.
fn softmax_blocks(v: &[f32], block: usize) -> Vec<f32> {
    v.chunks(block)
        .flat_map(|c| {
            let m = c.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f64> = c.iter().map(|x| f64::from(x - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |x| (x / s) as f32)
        })
        .collect()
}

fn ramp(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 37 % 101) as f32) / 17.0 - 3.0)
        .collect()
}

#[test]
fn squeezenet_style_opset9_softmax_is_right_on_every_backend() {
    let x = Tensor::from_shape_vec(&[1, 1000, 1, 1], ramp(1000)).unwrap();
    let want = Tensor::from_shape_vec(&[1, 1000, 1, 1], softmax_blocks(&ramp(1000), 1000)).unwrap();
    let m = one_node(
        9,
        node::node("Softmax", "prob", &["x"], &["y"], vec![]),
        &[1, 1000, 1, 1],
        vec![],
    );
    let got = run_everywhere(&m, "softmax9", &x);
    assert!(!got.is_empty());
    for (b, y) in got {
        // Reference: the definition, in f64; engines differ in exp's last bits.
        conf::compare(&y, &want, 1e-4, 1e-7).unwrap_or_else(|e| panic!("{b}: {e}"));
    }
}

#[test]
fn old_softmax_flattens_from_axis_on_every_backend() {
    // Opset 11, axis=1 over [2, 3, 4]: the old definition is a softmax over each run of 12
    // elements (dims 1 and 2 flattened); opset 13's would be over dim 1 alone.
    let x = Tensor::from_shape_vec(&[2, 3, 4], ramp(24)).unwrap();
    let want = Tensor::from_shape_vec(&[2, 3, 4], softmax_blocks(&ramp(24), 12)).unwrap();
    for op in ["Softmax", "LogSoftmax"] {
        let m = one_node(
            11,
            node::node(op, "s", &["x"], &["y"], vec![node::int("axis", 1)]),
            &[2, 3, 4],
            vec![],
        );
        let cfg_all = run_everywhere_upgraded(&m, op, &x);
        for (b, y) in cfg_all {
            let want = if op == "LogSoftmax" {
                Tensor::from_shape_vec(
                    &[2, 3, 4],
                    want.as_slice::<f32>()
                        .unwrap()
                        .iter()
                        .map(|v| v.ln())
                        .collect(),
                )
                .unwrap()
            } else {
                want.clone()
            };
            conf::compare(&y, &want, 1e-4, 1e-6).unwrap_or_else(|e| panic!("{op} on {b}: {e}"));
        }
    }
}

/// As [`run_everywhere`], with `rewrite_config.opset_upgrade.target = 13` forcing the upgrade.
fn run_everywhere_upgraded(model: &ModelProto, what: &str, x: &Tensor) -> Vec<(String, Tensor)> {
    let mut m = model.clone();
    let p = rdeploy_onnx::OpsetUpgradePass {
        below: None,
        target: 13,
    };
    let cfg = rdeploy_core::DeployConfig::empty();
    let cx = rdeploy_onnx::PassContext {
        model_path: Path::new("<test>"),
        deploy_cfg: &cfg,
    };
    use rdeploy_onnx::Pass;
    let o = p.run(&mut m, &cx).unwrap();
    assert!(o.changed);
    assert_eq!(rdeploy_onnx::upgrade::default_opset(&m), 13);
    // The old form must have been spelled out (Flatten -> op -> Reshape), not re-labelled.
    let ops: Vec<&str> = m
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type())
        .collect();
    assert!(ops.contains(&"Flatten"), "{ops:?}");
    run_everywhere(&m, what, x)
}

#[test]
fn upsample_becomes_resize_matching_onnxruntime_on_the_original() {
    // Reference: ONNX Runtime's own Upsample-9 kernel on the original model, run directly
    // (no rdeploy pass), against every backend on the upgraded one.
    let ort = rdeploy_backend_ort::OrtBackend;
    if !conf::backend_under_test(&ort) {
        return;
    }
    let x = Tensor::from_shape_vec(&[1, 2, 3, 4], ramp(24)).unwrap();
    for mode in ["nearest", "linear"] {
        let scales = rdeploy_core::onnx::tensor_to_proto(
            "scales",
            &Tensor::from_shape_vec(&[4], vec![1f32, 1., 2., 3.]).unwrap(),
        );
        let m = one_node(
            9,
            node::node(
                "Upsample",
                "up",
                &["x", "scales"],
                &["y"],
                vec![node::string("mode", mode)],
            ),
            &[1, 2, 3, 4],
            vec![scales],
        );
        let work = conf::tempdir("onnxruntime", &format!("upsample-{mode}"));
        std::fs::create_dir_all(&work).unwrap();
        let path = work.join("orig.onnx");
        rdeploy_core::onnx::save(&m, &path).unwrap();
        let w = conf::wrapper_for(&ort, &path, &work).unwrap();
        let want = w
            .forward(vec![("x".into(), x.clone())])
            .unwrap()
            .remove(0)
            .1;
        let _ = std::fs::remove_dir_all(&work);
        let got = {
            let mut m2 = m.clone();
            let cfg = rdeploy_core::DeployConfig::empty();
            let cx = rdeploy_onnx::PassContext {
                model_path: Path::new("<test>"),
                deploy_cfg: &cfg,
            };
            use rdeploy_onnx::Pass;
            rdeploy_onnx::OpsetUpgradePass {
                below: None,
                target: 13,
            }
            .run(&mut m2, &cx)
            .unwrap();
            assert_eq!(
                m2.graph.as_ref().unwrap().node.last().unwrap().op_type(),
                "Resize"
            );
            run_everywhere(&m2, &format!("resize-{mode}"), &x)
        };
        for (b, y) in got {
            conf::compare(&y, &want, 1e-5, 1e-6)
                .unwrap_or_else(|e| panic!("Upsample {mode} on {b}: {e}"));
        }
    }
}
