//! The `rdeploy-ndarray` binary (rdeploy + this backend): check-env lists the backend, a real
//! CNN deploys and runs, its outputs match ONNX Runtime's reference in rdeploy's test data, and
//! `rdeploy compare` against tract passes.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data() -> PathBuf {
    std::env::var_os("RDEPLOY_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("tests/data/generated"))
}

/// Runs the binary; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let o = Command::cargo_bin("rdeploy-ndarray")
        .unwrap()
        .args(args)
        .current_dir(root())
        .env("RDEPLOY_LOG", "warn")
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (success, out, err) = run(args);
    assert!(success, "{args:?} failed:\n{err}");
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn check_env_lists_the_backend_beside_the_built_in_ones() {
    Command::cargo_bin("rdeploy-ndarray")
        .unwrap()
        .arg("check-env")
        .assert()
        .success()
        .stdout(predicate::str::contains("\nndarray:\t0.1.0\n"))
        .stdout(predicate::str::starts_with("rdeploy:\t"))
        .stdout(predicate::str::contains("\ntract:\t"));
}

#[test]
fn a_cnn_deploys_runs_and_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let work = tmp.join("w");
    let cfg =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/classification_ndarray_dynamic.py");
    let cnn = data().join("cnn");
    ok(&[
        "deploy",
        s(&cfg),
        s(&cnn.join("model.onnx")),
        "--work-dir",
        s(&work),
        "--force",
    ]);
    let m: String = std::fs::read_to_string(work.join("deploy.json")).unwrap();
    assert!(m.contains("\"backend\": \"ndarray\""), "{m}");
    let input = cnn.join("test_data_set_0/input_0.pb");
    ok(&[
        "infer",
        s(&work),
        "--input",
        &format!("input={}", s(&input)),
        "--output-dir",
        s(&tmp.join("y")),
    ]);
    let got = rdeploy_core::io::read_tensor_file(&tmp.join("y/output.npy"))
        .unwrap()
        .remove(0)
        .1;
    let want = rdeploy_core::io::read_tensor_file(&cnn.join("test_data_set_0/output_0.pb"))
        .unwrap()
        .remove(0)
        .1;
    assert_eq!(got.shape(), want.shape());
    // Reference: ONNX Runtime in float32; the interpreter sums in another order: 1e-5 relative.
    for (a, b) in got.to_f64_vec().iter().zip(want.to_f64_vec()) {
        assert!((a - b).abs() <= 1e-6 + 1e-5 * b.abs(), "{a} vs {b}");
    }
}

#[test]
fn compare_against_tract_passes() {
    let out = ok(&[
        "compare",
        "tests/data/small-cnn.onnx",
        "--backends",
        "tract,ndarray",
        "--shape",
        "batch=3",
        "--json",
    ]);
    assert!(out.contains("\"pass\": true"), "{out}");
}

#[test]
fn an_unsupported_model_is_refused_at_deploy_naming_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("w");
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/_base_/backends/ndarray.py");
    let model = data().join("unsupported-op/model.onnx");
    let (success, _, err) = run(&["deploy", s(&cfg), s(&model), "--work-dir", s(&tmp)]);
    assert!(!success);
    assert!(
        err.contains("RdeployNoSuchOp") && err.contains("not supported by the ndarray backend"),
        "{err}"
    );
    assert!(!tmp.join("deploy.json").exists());
}
