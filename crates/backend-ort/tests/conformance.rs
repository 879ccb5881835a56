//! ONNX Runtime against the shared conformance suite. Skips when ONNX Runtime is not installed,
//! unless RDEPLOY_REQUIRE_BACKENDS names onnxruntime (CI does), then fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_backend_ort::OrtBackend;
use rdeploy_conformance as conf;

/// Cases ONNX Runtime cannot run, with the reason.
const SKIP: &[(&str, &str)] = &[(
    "test_PReLU_2d_multiparam",
    "opset-6 PRelu with a [3] slope on a [2,3,4,5] input: onnxruntime has no kernel for PRelu(6) \
     (NOT_IMPLEMENTED), and the broadcast is not valid ONNX anyway",
)];

#[test]
fn onnx_backend_test_data_matches() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    // Tolerance: numpy allclose with rtol 1e-3, atol 1e-4 against PyTorch's outputs.
    conf::onnx_backend_suite(&OrtBackend, SKIP, 1e-3, 1e-4, 10);
}

#[test]
fn cnn_matches_python_onnxruntime() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let case = conf::cnn_case();
    let work = conf::tempdir("onnxruntime", "cnn");
    // The reference was computed by Python onnxruntime on the same library: near-exact.
    conf::run_case(&OrtBackend, &case, &work, 1e-6, 1e-7).unwrap();
}

#[test]
fn bad_inputs_are_rejected() {
    if conf::backend_under_test(&OrtBackend) {
        conf::forward_rejects_bad_inputs(&OrtBackend);
    }
}

#[test]
fn concurrent_forward() {
    if conf::backend_under_test(&OrtBackend) {
        conf::concurrent_forward_matches_serial(&OrtBackend);
    }
}

#[test]
fn dynamic_batch() {
    if conf::backend_under_test(&OrtBackend) {
        conf::dynamic_batch_is_consistent(&OrtBackend);
    }
}

#[test]
fn unknown_device_kind_is_refused() {
    if conf::backend_under_test(&OrtBackend) {
        conf::unsupported_device_is_an_error(&OrtBackend, "npu:0");
    }
}

#[test]
fn saved_optimized_model_loads_and_matches() {
    use rdeploy_core::{BackendManager, DeployConfig, Device};
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let case = conf::cnn_case();
    let work = conf::tempdir("onnxruntime", "optimized");
    let cfg = DeployConfig(
        serde_json::json!({"backend_config": {"type": "onnxruntime", "save_optimized_model": true,
        "common_config": {"graph_optimization_level": "all", "intra_op_num_threads": 1, "session_pool_size": 2}}}),
    );
    let files = OrtBackend
        .to_backend(
            std::slice::from_ref(&case.model),
            &cfg,
            &work,
            &Device::cpu(),
        )
        .unwrap();
    assert!(
        files[0].ends_with("end2end.ort-optimized.onnx") && files[0].is_file(),
        "{files:?}"
    );
    let w = OrtBackend
        .build_wrapper(&files, &Device::cpu(), &[], &[], &cfg)
        .unwrap();
    let out = w
        .forward(vec![("image".into(), case.data_sets[0].inputs[0].clone())])
        .unwrap();
    conf::compare(&out[0].1, &case.data_sets[0].outputs[0], 1e-5, 1e-6).unwrap();
    let bad = DeployConfig(
        serde_json::json!({"backend_config": {"type": "onnxruntime", "common_config": {"graph_optimization_level": "max"}}}),
    );
    let e = OrtBackend
        .build_wrapper(&files, &Device::cpu(), &[], &[], &bad)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("graph_optimization_level") && e.contains("'max'") || e.contains("\"max\""),
        "{e}"
    );
}
