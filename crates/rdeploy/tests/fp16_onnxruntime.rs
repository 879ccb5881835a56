//! ONNX Runtime's `precision='fp16'`: the `fp16` graph pass the backend asks for, run by the
//! facade's `to_backend`, then ONNX Runtime on the result. References: the float32 expected
//! outputs of the test cases (PyTorch / Python onnxruntime), with float16 tolerances stated.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_backend_ort::OrtBackend;
use rdeploy_conformance as conf;
use rdeploy_core::{BackendManager, DType, DeployConfig, Device, Tensor};
use serde_json::json;

fn config(keep_io_types: bool) -> DeployConfig {
    DeployConfig(
        json!({"backend_config": {"type": "onnxruntime", "precision": "fp16",
        "common_config": {"keep_io_types": keep_io_types, "min_positive_val": 1e-7, "max_finite_val": 1e4}}}),
    )
}

/// Deploys `case` in fp16 and returns (wrapper, fp16 file size, fp32 file size).
fn deploy(
    case: &conf::Case,
    keep_io_types: bool,
    what: &str,
) -> (Box<dyn rdeploy_core::Wrapper>, u64, u64) {
    let work = conf::tempdir("onnxruntime", what);
    let cfg = config(keep_io_types);
    let (files, passes) =
        rdeploy::to_backend(&OrtBackend, &case.model, &cfg, &work, &Device::cpu()).unwrap();
    assert!(
        files[0].to_string_lossy().ends_with(".fp16.onnx"),
        "{files:?}"
    );
    assert_eq!(passes.len(), 1);
    assert_eq!(passes[0].name, "fp16");
    assert_eq!(passes[0].stage, "backend");
    assert!(passes[0].outcome.changed);
    let sizes = (
        std::fs::metadata(&files[0]).unwrap().len(),
        std::fs::metadata(&case.model).unwrap().len(),
    );
    let w = OrtBackend
        .build_wrapper(&files, &Device::cpu(), &[], &[], &cfg)
        .unwrap();
    (w, sizes.0, sizes.1)
}

fn named(w: &dyn rdeploy_core::Wrapper, inputs: &[Tensor]) -> Vec<(String, Tensor)> {
    w.inputs()
        .iter()
        .zip(inputs)
        .map(|(s, t)| {
            (
                s.name.clone(),
                t.cast(s.dtype, rdeploy_core::Cast::Unchecked).unwrap(),
            )
        })
        .collect()
}

#[test]
fn cnn_in_fp16_is_close_to_fp32_and_half_the_size() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let case = conf::cnn_case();
    for keep in [true, false] {
        let (w, fp16_size, fp32_size) = deploy(&case, keep, &format!("fp16-cnn-{keep}"));
        assert_eq!(
            w.inputs()[0].dtype,
            if keep { DType::F32 } else { DType::F16 }
        );
        // Weights dominate the file: float16 halves it (graph structure adds a little).
        assert!(
            fp16_size * 100 < fp32_size * 60,
            "fp16 {fp16_size} bytes vs fp32 {fp32_size}"
        );
        let out = w
            .forward(named(w.as_ref(), &case.data_sets[0].inputs))
            .unwrap();
        let got = out[0]
            .1
            .cast(DType::F32, rdeploy_core::Cast::Unchecked)
            .unwrap();
        // Tolerance: float16 has an 11-bit significand (relative step 2^-11 ~ 4.9e-4); through
        // two convolutions and a softmax the error stays below 1e-2 relative, 1e-3 absolute
        // on probabilities in [0, 1].
        conf::compare(&got, &case.data_sets[0].outputs[0], 1e-2, 1e-3).unwrap();
    }
}

#[test]
fn shape_arithmetic_and_resize_scales_stay_fp32() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let case = conf::load_case(&conf::test_data_dir().join("fp16-traps"));
    let (w, _, _) = deploy(&case, true, "fp16-traps");
    let out = w
        .forward(named(w.as_ref(), &case.data_sets[0].inputs))
        .unwrap();
    // The reshape target 4099 survives (in float16 it would round to 4100 and fail).
    assert_eq!(out[0].1.shape(), &[1, 4099]);
    assert_eq!(out[1].1.shape(), &[1, 1, 8, 8]);
    for ((_, got), want) in out.iter().zip(&case.data_sets[0].outputs) {
        // Values ~N(0,1)+0.5 rounded once to float16: relative error <= 2^-11.
        conf::compare(got, want, 1e-3, 1e-3).unwrap();
    }
}
