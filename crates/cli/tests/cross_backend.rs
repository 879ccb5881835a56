//! Every built-in backend against every other, on the same inputs: outputs must agree.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_backend_ort::OrtBackend;
use rdeploy_backend_tract::TractBackend;
use rdeploy_conformance as conf;
use rdeploy_core::Wrapper;

#[test]
fn tract_and_onnxruntime_agree_on_every_case() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let work = conf::tempdir("cross", "tract-ort");
    let mut compared = 0;
    for case in conf::onnx_backend_cases()
        .into_iter()
        .chain([conf::cnn_case()])
    {
        let (Ok(a), Ok(b)) = (
            conf::wrapper_for(&TractBackend, &case.model, &work),
            conf::wrapper_for(&OrtBackend, &case.model, &work),
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
                a.forward(named(a.as_ref())).unwrap(),
                b.forward(named(b.as_ref())).unwrap(),
            );
            for ((name, x), (_, y)) in ya.iter().zip(&yb) {
                // Same f32 model on two engines: summation order only.
                conf::compare(x, y, 1e-4, 1e-5)
                    .unwrap_or_else(|e| panic!("{} output {name}: {e}", case.name));
            }
        }
        compared += 1;
    }
    assert!(compared >= 30, "only {compared} cases compared");
}
