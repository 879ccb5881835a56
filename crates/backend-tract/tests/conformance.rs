//! tract against the shared conformance suite.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_backend_tract::TractBackend;
use rdeploy_conformance as conf;

/// Cases tract cannot run, with the reason.
const SKIP: &[(&str, &str)] = &[(
    "test_PReLU_2d_multiparam",
    "opset-6 PRelu with a [3] slope on a [2,3,4,5] input relies on PyTorch's channel broadcast, \
     not ONNX's unidirectional broadcast; tract rejects it (so does onnxruntime)",
)];

#[test]
fn onnx_backend_test_data_matches() {
    // Tolerance: numpy allclose with rtol 1e-3, atol 1e-4 against PyTorch's outputs.
    conf::onnx_backend_suite(&TractBackend, SKIP, 1e-3, 1e-4, 10);
}

#[test]
fn cnn_matches_onnxruntime_reference() {
    let case = conf::cnn_case();
    assert!(
        !case.data_sets[0].outputs.is_empty(),
        "cnn/ has no expected outputs: prepare test data with onnxruntime installed"
    );
    let work = conf::tempdir("tract", "cnn");
    conf::run_case(&TractBackend, &case, &work, 1e-4, 1e-6).unwrap();
}

#[test]
fn bad_inputs_are_rejected() {
    conf::forward_rejects_bad_inputs(&TractBackend);
}

#[test]
fn cuda_is_refused() {
    conf::unsupported_device_is_an_error(&TractBackend, "cuda:0");
}

#[test]
fn concurrent_forward() {
    conf::concurrent_forward_matches_serial(&TractBackend);
}

#[test]
fn dynamic_batch() {
    conf::dynamic_batch_is_consistent(&TractBackend);
}
