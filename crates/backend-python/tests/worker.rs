//! The worker host against a real backend written in Python: `ortpy` from the test-only package
//! `tests/python-backend-pkg` (ONNX Runtime driven from Python), run in worker processes of the
//! project venv. The shared conformance suite checks outputs against ONNX's expected outputs;
//! the fault tests kill, hang and break the worker and check the error and the next call.
//!
//! Needs the `rdeploy` Python package (its `rdeploy._worker` module) and `onnxruntime` in the
//! venv (`scripts/install-python.sh --dev`); skips without them unless RDEPLOY_REQUIRE_BACKENDS
//! is set (CI), then fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_backend_python::{EntryPoint, PythonBackend};
use rdeploy_conformance as conf;
use rdeploy_core::{BackendManager, DeployConfig, Device, Tensor, Wrapper};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    match std::env::var_os("VIRTUAL_ENV") {
        Some(v) => PathBuf::from(v).join("bin/python"),
        None => root().join(".venv/bin/python"),
    }
}

fn backend(name: &str, value: &str) -> PythonBackend {
    PythonBackend::new(
        EntryPoint {
            name: name.into(),
            value: value.into(),
            dist: "rdeploy-testbackend".into(),
            dist_version: "0.3.0".into(),
        },
        python(),
    )
    .with_env(
        "PYTHONPATH",
        root()
            .join("tests/python-backend-pkg")
            .display()
            .to_string(),
    )
}

fn ortpy() -> PythonBackend {
    backend("ortpy", "rdeploy_testbackend:OrtPyManager")
}

/// Whether to run: the worker starts and ortpy is available; otherwise skip locally, fail when
/// RDEPLOY_REQUIRE_BACKENDS is set.
fn ready(b: &PythonBackend) -> bool {
    match b.check() {
        Ok(_) => true,
        Err(reason) => {
            let required = std::env::var("RDEPLOY_REQUIRE_BACKENDS").unwrap_or_default();
            assert!(
                required.trim().is_empty(),
                "the Python worker is required (RDEPLOY_REQUIRE_BACKENDS={required}) but ortpy is unavailable: {reason}; run scripts/install-python.sh --dev"
            );
            eprintln!("skipping: {reason}");
            false
        }
    }
}

#[test]
fn onnx_backend_test_data_matches() {
    let b = ortpy();
    if !ready(&b) {
        return;
    }
    // ONNX Runtime itself, behind the worker: the same tolerance as the built-in backend, and
    // the same skipped case (no PRelu(6) kernel).
    conf::onnx_backend_suite(
        &b,
        &[(
            "test_PReLU_2d_multiparam",
            "onnxruntime has no PRelu(6) kernel",
        )],
        1e-3,
        1e-4,
        30,
    );
}

#[test]
fn cnn_matches_python_onnxruntime_exactly() {
    let b = ortpy();
    if !ready(&b) {
        return;
    }
    let case = conf::cnn_case();
    let work = conf::tempdir("ortpy", "cnn");
    conf::run_case(&b, &case, &work, 1e-6, 1e-7).unwrap();
}

#[test]
fn bad_inputs_concurrency_and_dynamic_batch() {
    let b = ortpy();
    if !ready(&b) {
        return;
    }
    conf::forward_rejects_bad_inputs(&b);
    conf::concurrent_forward_matches_serial(&b);
    conf::dynamic_batch_is_consistent(&b);
}

/// A cnn wrapper whose faults the file `fault` controls, with `extra` worker settings.
fn faulty(fault: &Path, extra: serde_json::Value) -> (PythonBackend, Box<dyn Wrapper>) {
    let b = ortpy();
    // Beside the fault file: a folder of this test's own (the tests run at once).
    let work = fault.with_extension("work");
    std::fs::create_dir_all(&work).unwrap();
    let model = conf::cnn_case().model;
    let mut cfg = json!({"backend_config": {"type": "ortpy", "fault_file": fault}});
    cfg["backend_config"]["python_worker"] = extra;
    let cfg = DeployConfig(cfg);
    let files = b.to_backend(&[model], &cfg, &work, &Device::cpu()).unwrap();
    let w = b
        .build_wrapper(&files, &Device::cpu(), &[], &[], &cfg)
        .unwrap();
    (b, w)
}

fn input() -> Vec<(String, Tensor)> {
    let case = conf::cnn_case();
    vec![("image".into(), case.data_sets[0].inputs[0].clone())]
}

fn expected() -> Tensor {
    conf::cnn_case().data_sets[0].outputs[0].clone()
}

fn works(w: &dyn Wrapper) {
    let out = w.forward(input()).unwrap();
    conf::compare(&out[0].1, &expected(), 1e-6, 1e-7).unwrap();
}

#[test]
fn exception_crash_and_hang_each_fail_the_call_and_the_next_call_works() {
    if !ready(&ortpy()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fault = dir.path().join("fault");
    let (_b, w) = faulty(&fault, json!({"call_timeout_s": 2}));
    works(&*w);

    // A Python exception: its type and message, and the same worker goes on.
    std::fs::write(&fault, "raise").unwrap();
    let e = w.forward(input()).unwrap_err().to_string();
    assert!(
        e.contains("ortpy") && e.contains("forward raised ValueError: injected failure"),
        "{e}"
    );
    std::fs::remove_file(&fault).unwrap();
    works(&*w);

    // The worker kills itself mid-call: the signal, and a new worker for the next call.
    std::fs::write(&fault, "crash").unwrap();
    let e = w.forward(input()).unwrap_err().to_string();
    assert!(
        e.contains("ended during forward")
            && e.contains("killed by signal 9 (SIGKILL)")
            && e.contains("the next call starts a new worker"),
        "{e}"
    );
    std::fs::remove_file(&fault).unwrap();
    works(&*w);

    // A hang past call_timeout_s: stopped after the limit, named in the message.
    std::fs::write(&fault, "hang").unwrap();
    let start = Instant::now();
    let e = w.forward(input()).unwrap_err().to_string();
    let took = start.elapsed();
    assert!(
        e.contains("did not answer forward within 2.")
            && e.contains("backend_config.python_worker.call_timeout_s"),
        "{e}"
    );
    assert!(took >= Duration::from_secs(2), "stopped after {took:?}");
    std::fs::remove_file(&fault).unwrap();
    works(&*w);
}

#[test]
fn a_worker_killed_from_outside_mid_call_is_replaced() {
    if !ready(&ortpy()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fault = dir.path().join("fault");
    let (_b, w) = faulty(&fault, json!({}));
    std::fs::write(&fault, "pid").unwrap();
    let pid_file = dir.path().join("fault.pid");
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !pid_file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let st = std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap();
        assert!(st.success());
    });
    let e = w.forward(input()).unwrap_err().to_string();
    killer.join().unwrap();
    assert!(
        e.contains("ended during forward") && e.contains("SIGKILL"),
        "{e}"
    );
    std::fs::remove_file(&fault).unwrap();
    works(&*w);
}

#[test]
fn a_pool_serves_concurrent_calls_in_several_processes() {
    if !ready(&ortpy()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fault = dir.path().join("fault");
    let (_b, w) = faulty(&fault, json!({"pool_size": 3}));
    let w: std::sync::Arc<dyn Wrapper> = w.into();
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let w = w.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    works(&*w);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let settings = w.settings();
    assert!(
        settings.contains(&("pool_size".to_string(), "3".to_string())),
        "{settings:?}"
    );
}

#[test]
fn a_missing_package_is_unavailable_with_the_import_error() {
    if !ready(&ortpy()) {
        return;
    }
    let b = backend("missingdep", "rdeploy_testbackend.missing:Manager");
    let reason = b.check().unwrap_err();
    assert!(
        reason.contains("rdeploy_testbackend.missing")
            && reason.contains("No module named 'rdeploy_engine_that_is_not_installed'"),
        "{reason}"
    );
    let line = b.check_env_line();
    assert!(
        line.starts_with("missingdep:\tNone (") && line.contains("rdeploy-testbackend 0.3.0"),
        "{line}"
    );
    let e = b
        .build_wrapper(
            &[conf::cnn_case().model],
            &Device::cpu(),
            &[],
            &[],
            &DeployConfig::empty(),
        )
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("missingdep") && e.contains("No module named"),
        "{e}"
    );
}

#[test]
fn an_interpreter_without_rdeploy_is_named() {
    let b = PythonBackend::new(
        EntryPoint {
            name: "ortpy".into(),
            value: "rdeploy_testbackend:OrtPyManager".into(),
            dist: "rdeploy-testbackend".into(),
            dist_version: "0.3.0".into(),
        },
        PathBuf::from("/usr/bin/python3"),
    )
    .with_env("PYTHONNOUSERSITE", "1");
    if !Path::new("/usr/bin/python3").exists() {
        return;
    }
    let reason = b.check().unwrap_err();
    assert!(
        reason.contains("the rdeploy Python package is not installed for /usr/bin/python3"),
        "{reason}"
    );
}

#[test]
fn worker_settings_reach_the_error_for_a_bad_key() {
    let b = ortpy();
    if !ready(&b) {
        return;
    }
    let cfg =
        DeployConfig(json!({"backend_config": {"type": "ortpy", "python_worker": {"pool": 2}}}));
    let e = b
        .build_wrapper(&[conf::cnn_case().model], &Device::cpu(), &[], &[], &cfg)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("backend_config.python_worker.pool"), "{e}");
}

#[test]
fn odd_outputs_stderr_and_huge_errors_are_handled_and_the_worker_goes_on() {
    if !ready(&ortpy()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fault = dir.path().join("fault");
    let (_b, w) = faulty(&fault, json!({"call_timeout_s": 20}));
    // Big-endian arrays come back as their values, not their bytes reread.
    std::fs::write(&fault, "bigendian").unwrap();
    works(&*w);
    // Bytes that are not UTF-8 on stderr do not stop the draining: later prints still work.
    std::fs::write(&fault, "badutf8").unwrap();
    for _ in 0..3 {
        works(&*w);
    }
    // A 5 MB exception message arrives quickly (no quadratic read), cut to a readable size.
    std::fs::write(&fault, "hugeerror").unwrap();
    let start = Instant::now();
    let e = w.forward(input()).unwrap_err().to_string();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        e.contains("ValueError: xxxx") && e.contains("more bytes)") && e.len() < 10_000,
        "{} bytes: {}",
        e.len(),
        &e[..200.min(e.len())]
    );
    std::fs::remove_file(&fault).unwrap();
    works(&*w);
}

#[test]
fn a_hung_workers_children_are_stopped_with_it() {
    if !ready(&ortpy()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fault = dir.path().join("fault");
    let (_b, w) = faulty(&fault, json!({"call_timeout_s": 3}));
    std::fs::write(&fault, "spawn").unwrap();
    let e = w.forward(input()).unwrap_err().to_string();
    assert!(e.contains("did not answer forward within"), "{e}");
    let child = std::fs::read_to_string(dir.path().join("fault.child")).unwrap();
    let proc_dir = PathBuf::from(format!("/proc/{}", child.trim()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc_dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let state = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    assert!(
        !proc_dir.exists() || state.split_whitespace().nth(2) == Some("Z"),
        "the backend's child {} outlived its stopped worker: {state}",
        child.trim()
    );
    std::fs::remove_file(&fault).unwrap();
    works(&*w);
}
