//! MMDeploy's and mmcv's ONNX custom ops, built in: each generated case (a small model using
//! one op, from `scripts/make_custom_op_models.py`) deploys with the stock config (no external
//! op library) and matches the expected outputs, which that script computes with numpy
//! implementations written from the ops' documented semantics (an independent reference).
//! tract and ONNX Runtime run every op (rdeploy's kernels, or a rewrite to the standard op);
//! OpenVINO runs those a rewrite maps to a standard op it has (and the two `mmdeploy` ops its
//! importer has itself), and refuses the rest clearly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

mod common;

use rdeploy_conformance as conf;
use rdeploy_core::BackendManager;
use std::path::Path;

struct CaseMeta {
    case: conf::Case,
    domain: String,
    op_type: String,
    rtol: f64,
    atol: f64,
}

fn cases() -> Vec<CaseMeta> {
    let root = conf::test_data_dir().join("custom-ops");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap_or_else(|e| {
            panic!("{}: {e}; run scripts/prepare-test-data.py", root.display())
        }))
        .unwrap();
    index["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let dir = root.join(c["name"].as_str().unwrap());
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
            CaseMeta {
                case: conf::load_case(&dir),
                domain: c["domain"].as_str().unwrap().to_string(),
                op_type: c["op_type"].as_str().unwrap().to_string(),
                rtol: meta["rtol"].as_f64().unwrap_or(1e-4),
                atol: meta["atol"].as_f64().unwrap_or(1e-5),
            }
        })
        .collect()
}

fn run(backend: &dyn BackendManager, c: &CaseMeta, work: &Path) -> Result<(), String> {
    common::deploy_case(backend.name(), &c.case, work, c.rtol, c.atol)
}

/// The ops the issue names: every backend that claims custom ops must run all of them.
const REQUIRED: &[(&str, &str)] = &[
    ("mmdeploy", "grid_sampler"),
    ("mmdeploy", "MMCVModulatedDeformConv2d"),
    ("mmdeploy", "NMSRotated"),
    ("mmdeploy", "MMCVRoIAlignRotated"),
    ("mmdeploy", "NMSMatch"),
    ("mmcv", "MMCVRoiAlign"),
    ("mmcv", "grid_sampler"),
    ("mmcv", "NonMaxSuppression"),
];

/// Runs every case on `backend`: the required ops must pass; others must pass when rdeploy
/// has a kernel for them, and otherwise fail at deploy naming the op.
fn suite(backend: &dyn BackendManager) {
    if !conf::backend_under_test(backend) {
        return;
    }
    let work = conf::tempdir(backend.name(), "custom-ops");
    let mut failures = Vec::new();
    let mut passed = Vec::new();
    for c in cases() {
        let have_kernel = rdeploy_ops::find(&c.domain, &c.op_type).is_some();
        match run(backend, &c, &work) {
            Ok(()) => passed.push(format!("{}::{}", c.domain, c.op_type)),
            Err(e) if !have_kernel && e.contains(&c.op_type) && e.starts_with("deploy") => {}
            Err(e) => failures.push(format!(
                "{} ({}::{}): {e}",
                c.case.name, c.domain, c.op_type
            )),
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        failures.is_empty(),
        "custom-op cases failing on {}:\n{}",
        backend.name(),
        failures.join("\n")
    );
    for (d, o) in REQUIRED {
        assert!(
            passed.contains(&format!("{d}::{o}")),
            "{d}::{o} has no passing case on {}",
            backend.name()
        );
    }
}

#[test]
fn custom_ops_run_on_onnxruntime() {
    suite(&rdeploy_backend_ort::OrtBackend);
}

#[test]
fn custom_ops_run_on_tract() {
    suite(&rdeploy_backend_tract::TractBackend);
}

#[test]
fn openvino_runs_the_rewritable_ops_and_refuses_the_rest_clearly() {
    let ov = rdeploy_backend_openvino::OpenVinoBackend;
    if !conf::backend_under_test(&ov) {
        return;
    }
    let work = conf::tempdir("openvino", "custom-ops");
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in cases() {
        // A rewrite to a standard op OpenVINO has, or one of the `mmdeploy` ops its ONNX
        // importer implements itself (NMSRotated; MMCVRoIAlignRotated, but not with
        // clockwise=1).
        let rewritable = matches!(c.op_type.as_str(), "grid_sampler")
            || c.case.name.starts_with("roi_align_avg")
            || c.case.name == "mmcv_nms_offset0"
            || c.case.name.starts_with("mixed")
            || c.case.name == "nms_rotated"
            || c.case.name == "roi_align_rotated_aligned1_sr2";
        match run(&ov, &c, &work) {
            Ok(()) if rewritable => ran += 1,
            Ok(()) => failures.push(format!("{}: ran, but no rewrite was expected", c.case.name)),
            Err(e) if rewritable => failures.push(format!("{}: {e}", c.case.name)),
            Err(e) => {
                if !e.contains(&c.op_type) {
                    failures.push(format!(
                        "{}: the error does not name {}: {e}",
                        c.case.name, c.op_type
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 8, "only {ran} cases ran on OpenVINO");
}
