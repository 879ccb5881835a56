//! `backend_config.custom_ops` on ONNX Runtime, through the whole pipeline: a custom-op library
//! in C (`examples/ort-custom-op/myops.c`, domain `rdeploy.test`, `ScaledAdd(A, B) = A +
//! alpha * B`, built by rdeploy-conformance's build script) and a model `Y = Relu(ScaledAdd(A,
//! B, alpha=2.5))`. References are computed here by hand.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy::{Config, DeployConfig, DeployOptions, Device, Tensor, WorkDir};
use rdeploy_backend_ort::OrtBackend;
use rdeploy_conformance::{self as conf, custom_ops};
use rdeploy_core::BackendManager;
use std::path::{Path, PathBuf};

const ALPHA: f32 = 2.5;
const LIB: &str = "librdeploy_test_ops.so";

/// A folder with the model, a copy of the library in `libs/`, and `cfg.py` naming it by a path
/// relative to the config file (not to the test's current directory).
struct Setup {
    dir: PathBuf,
    model: PathBuf,
    lib: PathBuf,
}

fn setup(what: &str, backend_config: &str) -> Setup {
    let dir = conf::tempdir("onnxruntime", what);
    let libs = dir.join("libs");
    std::fs::create_dir_all(&libs).unwrap();
    let lib = libs.join(LIB);
    std::fs::copy(custom_ops::library(), &lib).unwrap();
    let model = dir.join("scaled_add.onnx");
    custom_ops::scaled_add_model(&model, ALPHA);
    std::fs::write(
        dir.join("cfg.py"),
        format!("# custom ops\nbackend_config = dict({backend_config})\n"),
    )
    .unwrap();
    Setup { dir, model, lib }
}

fn deploy(s: &Setup, force: bool) -> rdeploy::Result<WorkDir> {
    let config = Config::from_file(&s.dir.join("cfg.py"))?;
    rdeploy::deploy(
        &rdeploy::builtin_registry(),
        &config,
        &s.model,
        &s.dir.join("work"),
        &Device::cpu(),
        &DeployOptions {
            force,
            ..Default::default()
        },
    )
}

/// Inputs of shape [3, 4] whose every `A + 2.5 * B` is exact in float32 (multiples of 1/4), with
/// negative sums for Relu to clear, and the reference.
fn inputs_and_reference() -> (Vec<(String, Tensor)>, Vec<f32>) {
    let a: Vec<f32> = (0..12).map(|i| i as f32 * 0.75 - 4.0).collect();
    let b: Vec<f32> = (0..12).map(|i| (i % 5) as f32 * 0.25 - 0.5).collect();
    let want = a
        .iter()
        .zip(&b)
        .map(|(a, b)| (a + ALPHA * b).max(0.0))
        .collect();
    let t = |v: Vec<f32>| Tensor::from_shape_vec(&[3, 4], v).unwrap();
    (vec![("A".into(), t(a)), ("B".into(), t(b))], want)
}

/// Runs the model in `w` and checks Y against the hand-computed reference, exactly (every value
/// is exact in float32).
fn check_runs(w: &dyn rdeploy::Wrapper) {
    let (inputs, want) = inputs_and_reference();
    let out = w.forward(inputs).unwrap();
    assert_eq!(out[0].0, "Y");
    assert_eq!(out[0].1.shape(), &[3, 4]);
    assert_eq!(out[0].1.as_slice::<f32>().unwrap(), want.as_slice());
    assert!(want.contains(&0.0) && want.iter().any(|&y| y > 0.0));
}

#[test]
fn deploy_and_run_with_a_custom_op_library() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let s = setup(
        "custom-ops-run",
        "type='onnxruntime', custom_ops=['libs/librdeploy_test_ops.so']",
    );
    let work = deploy(&s, false).unwrap();
    // The work dir holds a copy of the library, listed after the model.
    let files: Vec<&str> = work
        .manifest
        .backend_files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(files, ["end2end.onnx", "custom_ops/librdeploy_test_ops.so"]);
    assert_eq!(
        std::fs::read(work.path.join(files[1])).unwrap(),
        std::fs::read(&s.lib).unwrap()
    );
    // The manifest's config names the library deployed from, resolved against cfg.py's folder.
    assert_eq!(
        work.manifest.config["backend_config"]["custom_ops"][0],
        std::path::absolute(&s.lib).unwrap().to_str().unwrap()
    );
    let registry = rdeploy::builtin_registry();
    check_runs(rdeploy::load(&work, &registry, None).unwrap().as_ref());

    // Same inputs to the deploy: reused. A rebuilt library: deployed again.
    assert!(deploy(&s, false).unwrap().reused);
    let mut bytes = std::fs::read(&s.lib).unwrap();
    bytes.push(0); // bytes after the ELF sections do not change what it loads as
    std::fs::write(&s.lib, &bytes).unwrap();
    let again = deploy(&s, false).unwrap();
    assert!(!again.reused);
    assert_eq!(
        std::fs::read(again.path.join("custom_ops").join(LIB)).unwrap(),
        bytes
    );

    // build_wrapper given the model alone loads the configured libraries.
    let cfg = DeployConfig(serde_json::json!({"backend_config": {"custom_ops": [s.lib]}}));
    let w = OrtBackend
        .build_wrapper(
            std::slice::from_ref(&s.model),
            &Device::cpu(),
            &[],
            &[],
            &cfg,
        )
        .unwrap();
    check_runs(w.as_ref());
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Set in the child process [`work_dir_loads_from_another_cwd`] starts: the work dir to load.
const CHILD_ENV: &str = "RDEPLOY_TEST_CUSTOM_OPS_WORK_DIR";

#[test]
fn work_dir_loads_from_another_cwd() {
    if let Some(work) = std::env::var_os(CHILD_ENV) {
        // The child: another current directory, and the original library is gone.
        let work = WorkDir::open(Path::new(&work)).unwrap();
        let w = rdeploy::load(&work, &rdeploy::builtin_registry(), None).unwrap();
        check_runs(w.as_ref());
        println!("child: loaded and ran {}", work.path.display());
        return;
    }
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let s = setup(
        "custom-ops-cwd",
        "type='onnxruntime', custom_ops=['libs/librdeploy_test_ops.so']",
    );
    let work = deploy(&s, false).unwrap();
    std::fs::remove_dir_all(s.dir.join("libs")).unwrap();
    let elsewhere = conf::tempdir("onnxruntime", "custom-ops-cwd-elsewhere");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "work_dir_loads_from_another_cwd", "--nocapture"])
        .env(CHILD_ENV, &work.path)
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child failed:\n{text}");
    assert!(text.contains("child: loaded and ran"), "{text}");
    let _ = std::fs::remove_dir_all(&s.dir);
    let _ = std::fs::remove_dir_all(&elsewhere);
}

#[test]
fn a_missing_library_names_the_path_and_the_key() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let s = setup(
        "custom-ops-missing",
        "type='onnxruntime', custom_ops=['libs/libnope.so']",
    );
    let e = deploy(&s, false).unwrap_err().to_string();
    let want = std::path::absolute(s.dir.join("libs/libnope.so")).unwrap();
    assert!(
        e.contains(&want.display().to_string())
            && e.contains("backend_config.custom_ops")
            && e.contains("not found")
            && e.contains("cfg.py:2"),
        "{e}"
    );
    assert!(
        !s.dir.join("work").exists(),
        "a failed deploy left its work dir"
    );
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn a_file_that_is_not_a_library_is_a_clear_error() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let s = setup(
        "custom-ops-not-a-lib",
        "type='onnxruntime', custom_ops=['libs/libtext.so']",
    );
    let fake = s.dir.join("libs/libtext.so");
    std::fs::write(&fake, "this is a text file, not a shared library\n").unwrap();
    let e = deploy(&s, false).unwrap_err().to_string();
    assert!(
        e.contains(&std::path::absolute(&fake).unwrap().display().to_string())
            && e.contains("backend_config.custom_ops")
            && e.contains("cannot load the custom-op library")
            && e.contains("RegisterCustomOps"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn a_custom_op_without_custom_ops_names_the_op_and_the_key() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let s = setup("custom-ops-unset", "type='onnxruntime'");
    let e = deploy(&s, false).unwrap_err().to_string();
    assert!(
        e.contains("rdeploy.test::ScaledAdd") && e.contains("backend_config.custom_ops"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&s.dir);
}
