//! Every built-in backend against every other, on the same inputs: outputs must agree.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_backend_openvino::OpenVinoBackend;
use rdeploy_backend_ort::OrtBackend;
use rdeploy_backend_tract::TractBackend;
use rdeploy_conformance as conf;
use rdeploy_core::{BackendManager, Wrapper};

/// Runs every case through both backends and compares outputs; returns how many were compared.
/// Cases named in `skip` (with the reason in the backend's own suite) are left out.
fn agree(a: &dyn BackendManager, b: &dyn BackendManager, skip: &[&str]) -> usize {
    let work = conf::tempdir("cross", &format!("{}-{}", a.name(), b.name()));
    let mut compared = 0;
    for case in conf::onnx_backend_cases()
        .into_iter()
        .chain([conf::cnn_case()])
        .filter(|c| !skip.contains(&c.name.as_str()))
    {
        let (Ok(wa), Ok(wb)) = (
            conf::wrapper_for(a, &case.model, &work),
            conf::wrapper_for(b, &case.model, &work),
        ) else {
            continue; // a case one engine cannot load is covered by its own suite's skip list
        };
        for ds in &case.data_sets {
            let named = |w: &dyn Wrapper| {
                w.inputs()
                    .iter()
                    .map(|s| s.name.clone())
                    .zip(ds.inputs.iter().cloned())
                    .collect::<Vec<_>>()
            };
            let (ya, yb) = (
                wa.forward(named(wa.as_ref())).unwrap(),
                wb.forward(named(wb.as_ref())).unwrap(),
            );
            for ((name, x), (_, y)) in ya.iter().zip(&yb) {
                // Same f32 model on two engines: summation order only.
                conf::compare(x, y, 1e-4, 1e-5).unwrap_or_else(|e| {
                    panic!(
                        "{} vs {}: {} output {name}: {e}",
                        a.name(),
                        b.name(),
                        case.name
                    )
                });
            }
        }
        compared += 1;
    }
    let _ = std::fs::remove_dir_all(&work);
    compared
}

#[test]
fn tract_and_onnxruntime_agree_on_every_case() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let compared = agree(&TractBackend, &OrtBackend, &[]);
    assert!(compared >= 30, "only {compared} cases compared");
}

#[test]
fn openvino_agrees_with_tract_and_onnxruntime() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    // float64 values near 1e198: OpenVINO's CPU plugin computes f64 in f32; an invalid PRelu
    // broadcast that no engine runs the same way (see the backends' suites).
    let skip = ["test_operator_add_broadcast", "test_PReLU_2d_multiparam"];
    let compared = agree(&TractBackend, &OpenVinoBackend, &skip);
    assert!(compared >= 30, "only {compared} cases compared with tract");
    if conf::backend_under_test(&OrtBackend) {
        let compared = agree(&OrtBackend, &OpenVinoBackend, &skip);
        assert!(
            compared >= 30,
            "only {compared} cases compared with onnxruntime"
        );
    }
}
