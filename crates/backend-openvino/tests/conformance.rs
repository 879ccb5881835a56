//! OpenVINO against the shared conformance suite, through the real path: `ovc` converts each
//! model to IR, the runtime compiles it for the CPU. Skips when OpenVINO is not installed, unless
//! RDEPLOY_REQUIRE_BACKENDS names openvino (CI does), then fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_backend_openvino::OpenVinoBackend;
use rdeploy_conformance as conf;
use rdeploy_core::{BackendManager, DeployConfig, Device, Tensor, Wrapper};
use serde_json::json;

/// Cases OpenVINO cannot run, with the reason.
const SKIP: &[(&str, &str)] = &[
    (
        "test_operator_add_broadcast",
        "float64 model with values near 1e198: OpenVINO's CPU plugin computes f64 in f32, so \
         they saturate to f32::MAX (a documented plugin limitation, not a conversion error)",
    ),
    (
        "test_PReLU_2d_multiparam",
        "opset-6 PRelu with a [3] slope on a [2,3,4,5] input: the broadcast is not valid ONNX \
     (skipped on every backend)",
    ),
];

#[test]
fn onnx_backend_test_data_matches() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    // Tolerance: numpy allclose with rtol 1e-3, atol 1e-4 against PyTorch's outputs, as for the
    // other backends; OpenVINO computes in f32 here (rdeploy's default).
    conf::onnx_backend_suite(&OpenVinoBackend, SKIP, 1e-3, 1e-4, 10);
}

#[test]
fn cnn_matches_onnxruntime_reference() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    let case = conf::cnn_case();
    let work = conf::tempdir("openvino", "cnn");
    // The reference was computed by ONNX Runtime: another engine, both in f32 (different
    // convolution algorithms and summation orders, so not bit-exact).
    conf::run_case(&OpenVinoBackend, &case, &work, 1e-5, 1e-6).unwrap();
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn bad_inputs_are_rejected() {
    if conf::backend_under_test(&OpenVinoBackend) {
        conf::forward_rejects_bad_inputs(&OpenVinoBackend);
    }
}

#[test]
fn concurrent_forward() {
    if conf::backend_under_test(&OpenVinoBackend) {
        conf::concurrent_forward_matches_serial(&OpenVinoBackend);
    }
}

#[test]
fn dynamic_batch() {
    if conf::backend_under_test(&OpenVinoBackend) {
        conf::dynamic_batch_is_consistent(&OpenVinoBackend);
    }
}

#[test]
fn unknown_device_kind_is_refused() {
    if conf::backend_under_test(&OpenVinoBackend) {
        conf::unsupported_device_is_an_error(&OpenVinoBackend, "cuda:0");
    }
}

fn cfg(backend_config: serde_json::Value) -> DeployConfig {
    DeployConfig(json!({ "backend_config": backend_config }))
}

fn setting(w: &dyn Wrapper, name: &str) -> String {
    w.settings()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no setting {name} in {:?}", w.settings()))
}

/// Converts the test CNN with `backend_config` into a fresh work dir and loads it: (files,
/// wrapper, work dir).
fn deploy(
    backend_config: serde_json::Value,
    what: &str,
) -> (
    Vec<std::path::PathBuf>,
    Box<dyn Wrapper>,
    std::path::PathBuf,
) {
    let case = conf::cnn_case();
    let work = conf::tempdir("openvino", what);
    let c = cfg(backend_config);
    let files = OpenVinoBackend
        .to_backend(std::slice::from_ref(&case.model), &c, &work, &Device::cpu())
        .unwrap();
    let w = OpenVinoBackend
        .build_wrapper(&files, &Device::cpu(), &[], &[], &c)
        .unwrap();
    (files, w, work)
}

#[test]
fn default_is_f32_ir_with_f32_weights() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    let case = conf::cnn_case();
    let (files, w, work) = deploy(json!({"type": "openvino"}), "f32");
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["model.xml", "model.bin"]);
    // f32 weights: the .bin holds about as many bytes as the ONNX file's initializers.
    let bin = std::fs::metadata(&files[1]).unwrap().len();
    let onnx = std::fs::metadata(&case.model).unwrap().len();
    assert!(bin * 100 > onnx * 80, "bin {bin} bytes vs onnx {onnx}");
    assert_eq!(setting(w.as_ref(), "inference_precision"), "f32");
    assert_eq!(setting(w.as_ref(), "device"), "CPU");
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn fp16_compresses_weights_and_stays_close() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    let case = conf::cnn_case();
    let (files, w, work) = deploy(json!({"type": "openvino", "precision": "fp16"}), "fp16");
    let bin = std::fs::metadata(&files[1]).unwrap().len();
    let onnx = std::fs::metadata(&case.model).unwrap().len();
    assert!(bin * 100 < onnx * 65, "fp16 bin {bin} bytes vs onnx {onnx}");
    let out = w
        .forward(vec![("image".into(), case.data_sets[0].inputs[0].clone())])
        .unwrap();
    // Tolerance: fp16 weights (11-bit significand) and, where the CPU has f16 units, f16
    // arithmetic, through two convolutions and a softmax: below 1e-2 relative, 1e-3 absolute on
    // probabilities in [0, 1].
    conf::compare(&out[0].1, &case.data_sets[0].outputs[0], 1e-2, 1e-3).unwrap();
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn onnx_format_skips_conversion_and_matches_ir() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    let case = conf::cnn_case();
    let work = conf::tempdir("openvino", "onnx-format");
    let c = cfg(json!({"type": "openvino", "model_format": "onnx"}));
    let files = OpenVinoBackend
        .to_backend(std::slice::from_ref(&case.model), &c, &work, &Device::cpu())
        .unwrap();
    assert_eq!(files, std::slice::from_ref(&case.model));
    conf::run_case(&OpenVinoBackend, &case, &work, 1e-5, 1e-6).unwrap();
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn opt_shapes_fix_the_input_shape() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    let case = conf::cnn_case();
    let (_, w, work) = deploy(
        json!({"type": "openvino", "model_inputs": [{"opt_shapes": {"image": [1, 3, 32, 32]}}]}),
        "opt-shapes",
    );
    assert_eq!(w.inputs()[0].shape_string(), "[1, 3, 32, 32]");
    assert_eq!(case.data_sets[0].inputs[0].shape(), [2, 3, 32, 32]);
    let e = w
        .forward(vec![("image".into(), case.data_sets[0].inputs[0].clone())])
        .unwrap_err()
        .to_string();
    assert!(e.contains("'image'") && e.contains("[1, 3, 32, 32]"), "{e}");
    let bad = cfg(json!({"type": "openvino",
        "model_inputs": [{"opt_shapes": {"img": [2, 3, 32, 32]}}]}));
    let e = OpenVinoBackend
        .to_backend(
            std::slice::from_ref(&case.model),
            &bad,
            &work,
            &Device::cpu(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model_inputs") && e.contains("'img'") && e.contains("image"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn conversion_failure_names_the_op_and_leaves_nothing() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    let model = conf::test_data_dir().join("unsupported-op/model.onnx");
    let work = conf::tempdir("openvino", "unsupported");
    let e = OpenVinoBackend
        .to_backend(
            std::slice::from_ref(&model),
            &cfg(json!({"type": "openvino"})),
            &work,
            &Device::cpu(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("RdeployNoSuchOp"), "{e}");
    assert!(e.contains("model.onnx"), "{e}");
    let left: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn bad_settings_name_the_key() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    let case = conf::cnn_case();
    let c = cfg(json!({"type": "openvino", "model_format": "onnx",
        "properties": {"NO_SUCH_PROPERTY": "1"}}));
    let e = OpenVinoBackend
        .build_wrapper(
            std::slice::from_ref(&case.model),
            &Device::cpu(),
            &[],
            &[],
            &c,
        )
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        e.contains("backend_config.properties.NO_SUCH_PROPERTY"),
        "{e}"
    );
}

#[test]
fn throughput_hint_is_applied() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    let case = conf::cnn_case();
    let c = cfg(json!({"type": "openvino", "model_format": "onnx",
        "performance_hint": "THROUGHPUT", "num_streams": 2}));
    let w = OpenVinoBackend
        .build_wrapper(
            std::slice::from_ref(&case.model),
            &Device::cpu(),
            &[],
            &[],
            &c,
        )
        .unwrap();
    assert_eq!(setting(w.as_ref(), "performance_hint"), "THROUGHPUT");
    assert_eq!(setting(w.as_ref(), "num_streams"), "2");
    let x: Tensor = case.data_sets[0].inputs[0].clone();
    let out = w.forward(vec![("image".into(), x)]).unwrap();
    conf::compare(&out[0].1, &case.data_sets[0].outputs[0], 1e-5, 1e-6).unwrap();
}
