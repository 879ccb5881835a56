//! Backends written in Python, from the `rdeploy` binary: a test-only pip package installed
//! with pip (its entry points found by rdeploy in `check-env`, then deploy + infer in fresh
//! processes), and the ncnn and TVM backends shipped in the `rdeploy` Python package on real
//! models, each output compared with Python onnxruntime's on the same inputs.
//!
//! Needs the project venv (`scripts/setup-venv.sh`, `scripts/install-python.sh --dev`); skips
//! without it unless RDEPLOY_REQUIRE_BACKENDS is set (CI), then fails. ncnn and tvm fail when
//! RDEPLOY_REQUIRE_BACKENDS names them and they are unavailable.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use assert_cmd::Command;
use rdeploy::Tensor;
use rdeploy_conformance as conf;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn venv() -> PathBuf {
    match std::env::var_os("VIRTUAL_ENV") {
        Some(v) => PathBuf::from(v),
        None => root().join(".venv"),
    }
}

fn python() -> PathBuf {
    venv().join("bin/python")
}

fn required() -> Vec<String> {
    std::env::var("RDEPLOY_REQUIRE_BACKENDS")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether the venv has the rdeploy package and onnxruntime; fails instead when CI asks.
fn venv_ready() -> bool {
    let probe = std::process::Command::new(python())
        .args(["-c", "import rdeploy._worker, onnxruntime, numpy"])
        .output();
    if probe.as_ref().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let why = probe
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_else(|e| e.to_string());
    assert!(
        required().is_empty(),
        "the project venv is required (RDEPLOY_REQUIRE_BACKENDS is set): {why}; run scripts/install-python.sh --dev"
    );
    eprintln!("skipping: {why}");
    false
}

/// tests/python-backend-pkg installed by pip into a folder of the target dir (once per run).
fn test_package() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-backend-pkg");
        let _ = std::fs::remove_dir_all(&dir);
        let out = std::process::Command::new(python())
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-build-isolation",
                "--target",
            ])
            .arg(&dir)
            .arg(root().join("tests/python-backend-pkg"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pip install tests/python-backend-pkg failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn rdeploy(pythonpath: Option<&Path>) -> Command {
    let mut c = Command::cargo_bin("rdeploy").unwrap();
    c.current_dir(root())
        .env("VIRTUAL_ENV", venv())
        .env_remove("RDEPLOY_PYTHON")
        .env("RDEPLOY_LOG", "warn");
    match pythonpath {
        Some(p) => c.env("PYTHONPATH", p),
        None => c.env_remove("PYTHONPATH"),
    };
    c
}

fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Python onnxruntime's outputs for `model` on seeded random inputs at `shapes` (dims of each
/// input in order), written as input_N.npy / output_N.npy into `dir`.
fn reference(model: &Path, dir: &Path, shapes: &[Vec<usize>]) {
    let script = r#"
import json, sys, numpy as np, onnxruntime as ort
model, out, shapes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
feeds = {}
for i, (inp, shape) in enumerate(zip(s.get_inputs(), shapes)):
    x = rng.standard_normal(shape).astype(np.float32)
    np.save(f"{out}/input_{i}.npy", x)
    feeds[inp.name] = x
for i, y in enumerate(s.run(None, feeds)):
    np.save(f"{out}/output_{i}.npy", y)
"#;
    let o = std::process::Command::new(python())
        .args(["-c", script])
        .arg(model)
        .arg(dir)
        .arg(serde_json::to_string(shapes).unwrap())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "onnxruntime reference failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn read(p: &Path) -> Tensor {
    rdeploy::io::read_tensor_file(p).unwrap().remove(0).1
}

/// deploy + infer in fresh processes, outputs against onnxruntime's.
fn deploy_and_infer(
    backend: &str,
    cfg: &str,
    model: &Path,
    shapes: &[Vec<usize>],
    pythonpath: Option<&Path>,
    rtol: f64,
    atol: f64,
) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    reference(model, d, shapes);
    let cfg_file = d.join("cfg.py");
    std::fs::write(&cfg_file, cfg).unwrap();
    let work = d.join("work");
    let o = rdeploy(pythonpath)
        .arg("deploy")
        .arg(&cfg_file)
        .arg(model)
        .arg("--work-dir")
        .arg(&work)
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(format!(
            "deploy failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("deploy.json")).unwrap()).unwrap();
    let mut cmd = rdeploy(pythonpath);
    cmd.arg("infer")
        .arg(&work)
        .arg("--output-dir")
        .arg(d.join("out"));
    for (i, inp) in manifest["inputs"].as_array().unwrap().iter().enumerate() {
        let name = inp["name"].as_str().unwrap();
        cmd.arg("--input").arg(format!(
            "{name}={}",
            d.join(format!("input_{i}.npy")).display()
        ));
    }
    let o = cmd.output().unwrap();
    if !o.status.success() {
        return Err(format!(
            "infer failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    for (i, out) in manifest["outputs"].as_array().unwrap().iter().enumerate() {
        let name = out["name"].as_str().unwrap();
        // `infer` names files after outputs, other characters than [A-Za-z0-9._-] as '_'.
        let file: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let got = read(&d.join("out").join(format!("{file}.npy")));
        let want = read(&d.join(format!("output_{i}.npy")));
        conf::compare(&got, &want, rtol, atol)
            .map_err(|e| format!("{backend}: output '{name}': {e}"))?;
    }
    Ok(())
}

#[test]
fn a_pip_installed_python_backend_shows_in_check_env_and_deploys_from_the_cli() {
    if !venv_ready() {
        return;
    }
    let pkg = test_package();
    let out = ok(rdeploy(Some(pkg)).args(["check-env", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let find = |name: &str| {
        v["backends"]
            .as_array()
            .unwrap_or_else(|| panic!("no backends list: {v}"))
            .iter()
            .find(|b| b["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in check-env: {v}"))
            .clone()
    };
    let ortpy = find("ortpy");
    assert_eq!(ortpy["available"], true, "{ortpy}");
    let line = ortpy["line"].as_str().unwrap();
    assert!(
        line.contains("rdeploy-testbackend 0.3.0")
            && line.contains(&python().display().to_string()),
        "{line}"
    );
    let missing = find("missingdep");
    assert_eq!(missing["available"], false, "{missing}");
    assert!(
        missing["reason"]
            .as_str()
            .unwrap()
            .contains("No module named 'rdeploy_engine_that_is_not_installed'"),
        "{missing}"
    );
    // Without the package on the path, the backends are not there.
    let plain = ok(rdeploy(None).args(["check-env"]));
    assert!(!plain.contains("ortpy"), "{plain}");

    let model = root().join("tests/data/small-cnn.onnx");
    deploy_and_infer(
        "ortpy",
        "backend_config = dict(type='ortpy', python_worker=dict(pool_size=2))\nonnx_config = dict(input_names=['input'], dynamic_axes={'input': {0: 'batch'}})\n",
        &model,
        &[vec![3, 3, 32, 32]],
        Some(pkg),
        1e-6,
        1e-7,
    )
    .unwrap();

    // Deploying to the unavailable one names it and the import error.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.py");
    std::fs::write(&cfg, "backend_config = dict(type='missingdep')\n").unwrap();
    let o = rdeploy(Some(pkg))
        .arg("deploy")
        .arg(&cfg)
        .arg(&model)
        .arg("--work-dir")
        .arg(dir.path().join("w"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("missingdep") && err.contains("rdeploy_engine_that_is_not_installed"),
        "{err}"
    );
    assert!(!dir.path().join("w/deploy.json").exists());
}

/// Whether `backend` (ncnn, tvm) can be tested: available, or a failure when CI requires it.
fn engine_ready(backend: &str) -> bool {
    if !venv_ready() {
        return false;
    }
    let out = ok(rdeploy(None).args(["check-env", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let status = v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == backend)
        .cloned();
    match status {
        Some(s) if s["available"] == true => true,
        other => {
            assert!(
                !required().iter().any(|r| r == backend),
                "{backend} is required (RDEPLOY_REQUIRE_BACKENDS) but unavailable: {other:?}; run scripts/setup-venv.sh and scripts/install-python.sh --dev"
            );
            eprintln!("skipping {backend}: {other:?}");
            false
        }
    }
}

/// Eleven real models (pretrained PP-OCR classifier and detector from RapidOCR's wheel, the ONNX
/// test suite's PyTorch exports, rdeploy's CNNs and MLP) with the input shapes to convert at.
fn real_models() -> Vec<(PathBuf, Vec<Vec<usize>>)> {
    let g = root().join("tests/data/generated");
    let mut v = vec![
        (
            root().join("tests/data/small-cnn.onnx"),
            vec![vec![1, 3, 32, 32]],
        ),
        (
            g.join("realworld/ppocr-cls.onnx"),
            vec![vec![1, 3, 48, 192]],
        ),
        (
            g.join("realworld/ppocr-det.onnx"),
            vec![vec![1, 3, 96, 160]],
        ),
        (g.join("cnn/model.onnx"), vec![vec![2, 3, 32, 32]]),
        (g.join("mlp/model.onnx"), vec![vec![3, 16]]),
    ];
    for case in [
        "test_Conv2d",
        "test_BatchNorm2d_eval",
        "test_MaxPool2d",
        "test_ConvTranspose2d",
        "test_Conv2d_groups",
        "test_PixelShuffle",
    ] {
        let c = conf::load_case(&g.join("onnx-backend").join(case));
        let shapes = c.data_sets[0]
            .inputs
            .iter()
            .map(|t| t.shape().to_vec())
            .collect();
        v.push((c.model, shapes));
    }
    v
}

/// A deploy config for `backend` converting at `shapes`, with dim 0 of every input and output
/// marked as the batch (ncnn runs batch items one by one over a dynamic dim 0).
fn cfg_for(backend: &str, shapes: &[Vec<usize>], model: &Path) -> String {
    let info = rdeploy::onnx::inspect_file(model).unwrap().1;
    let dict: Vec<String> = info
        .inputs
        .iter()
        .zip(shapes)
        .map(|(i, s)| format!("'{}': {:?}", i.name, s))
        .collect();
    let axes: Vec<String> = info
        .inputs
        .iter()
        .chain(&info.outputs)
        .map(|t| format!("'{}': {{0: 'batch'}}", t.name))
        .collect();
    format!(
        "backend_config = dict(type='{backend}', model_inputs=[dict(shape={{{}}})])\nonnx_config = dict(dynamic_axes={{{}}})\n",
        dict.join(", "),
        axes.join(", ")
    )
}

fn engine_on_real_models(backend: &str, rtol: f64, atol: f64) {
    if !engine_ready(backend) {
        return;
    }
    let mut failures = Vec::new();
    for (model, shapes) in real_models() {
        let cfg = cfg_for(backend, &shapes, &model);
        if let Err(e) = deploy_and_infer(backend, &cfg, &model, &shapes, None, rtol, atol) {
            failures.push(format!("{}: {e}", model.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ncnn_deploy_and_infer_match_onnxruntime() {
    // float32 with another summation order (ncnn's packed convolutions): rtol 1e-4 as the
    // issue sets, atol 1e-5 for outputs near zero.
    engine_on_real_models("ncnn", 1e-4, 1e-5);
}

#[test]
fn tvm_deploy_and_infer_match_onnxruntime() {
    engine_on_real_models("tvm", 1e-4, 1e-5);
}

#[test]
fn a_worker_does_not_outlive_a_killed_rdeploy() {
    if !venv_ready() {
        return;
    }
    let pkg = test_package();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fault = d.join("fault");
    let cfg = d.join("cfg.py");
    std::fs::write(
        &cfg,
        format!(
            "backend_config = dict(type='ortpy', fault_file={:?})\n",
            fault.display().to_string()
        ),
    )
    .unwrap();
    let work = d.join("work");
    ok(rdeploy(Some(pkg))
        .arg("deploy")
        .arg(&cfg)
        .arg(root().join("tests/data/small-cnn.onnx"))
        .arg("--work-dir")
        .arg(&work));
    // The next forward writes the worker's pid and then sleeps 30 s inside the call.
    std::fs::write(&fault, "pid").unwrap();
    let bin = assert_cmd::cargo::cargo_bin("rdeploy");
    let mut child = std::process::Command::new(bin)
        .arg("infer")
        .arg(&work)
        .env("VIRTUAL_ENV", venv())
        .env("PYTHONPATH", pkg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = d.join("fault.pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !pid_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    assert!(proc_dir.exists(), "the worker is not running");
    child.kill().unwrap(); // SIGKILL: rdeploy cannot stop its worker itself
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while proc_dir.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Reaped by init once it exits; a zombie entry may linger briefly, so check its state.
    let state = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    assert!(
        !proc_dir.exists() || state.split_whitespace().nth(2) == Some("Z"),
        "worker {} still running 10 s after rdeploy was killed: {state}",
        pid.trim()
    );
}

/// The process ids whose command line holds every one of `needles`.
fn pids_with(needles: &[&str]) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if needles.iter().all(|n| cmd.contains(n)) {
            out.push(pid);
        }
    }
    out
}

/// `rdeploy conformance` runs each case in a worker process with a time limit: a hung engine
/// costs its case (timeout), a killed worker its case (crash), and the run goes on with a new
/// worker each time; with the fault gone, the same cases pass.
#[test]
fn conformance_survives_hung_and_killed_workers() {
    if !venv_ready() {
        return;
    }
    let pkg = test_package();
    let tmp = tempfile::tempdir().unwrap();
    // Three cases: ONNX test data (PyTorch's Conv2d export) under three names.
    let cases = tmp.path().join("cases");
    let src = root().join("tests/data/generated/onnx-backend/test_Conv2d");
    for name in ["test_a", "test_b", "test_c"] {
        let d = cases.join("node").join(name);
        std::fs::create_dir_all(d.join("test_data_set_0")).unwrap();
        std::fs::copy(src.join("model.onnx"), d.join("model.onnx")).unwrap();
        for f in ["input_0.pb", "output_0.pb"] {
            std::fs::copy(
                src.join("test_data_set_0").join(f),
                d.join("test_data_set_0").join(f),
            )
            .unwrap();
        }
        std::fs::write(
            d.join("case.json"),
            format!(
                r#"{{"name": "{name}", "suite": "node", "rtol": 1e-3, "atol": 1e-7, "op": "Conv",
                    "inputs": [{{"name": "0", "kind": "tensor"}}], "outputs": [{{"name": "3", "kind": "tensor"}}]}}"#
            ),
        )
        .unwrap();
    }
    let fault = tmp.path().join("fault");
    std::fs::write(&fault, "hang").unwrap();
    let cfg = tmp.path().join("ortpy_hang_test.py");
    std::fs::write(
        &cfg,
        format!(
            "backend_config = dict(type='ortpy', fault_file={:?})\n",
            fault.to_str().unwrap()
        ),
    )
    .unwrap();
    let run = || {
        let mut c = rdeploy(Some(pkg));
        c.args([
            "conformance",
            "--backends",
            "ortpy",
            "--jobs",
            "1",
            "--timeout",
            "5",
        ])
        .args(["--json", "--dir"])
        .arg(&cases)
        .arg("--config")
        .arg(&cfg);
        c
    };
    // Kill the first worker mid-case (the test's config path is in its command line).
    let marker = cfg.to_str().unwrap().to_string();
    let killer = std::thread::spawn(move || {
        // Up to two minutes: on a loaded machine (CI) the run's start (engine checks, the
        // first Python worker) took more than ten seconds.
        for _ in 0..2400 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            if let Some(&pid) = pids_with(&["conformance-worker", &marker]).first() {
                std::thread::sleep(std::time::Duration::from_millis(1500));
                // SAFETY: kill(2) with a pid read from /proc; a signal, no memory involved.
                unsafe { libc_kill(pid, 9) };
                return true;
            }
        }
        false
    });
    let v: serde_json::Value = serde_json::from_str(&ok(&mut run())).unwrap();
    assert!(killer.join().unwrap(), "no worker was seen");
    let classes: Vec<&str> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["crash", "timeout", "timeout"], "{v}");
    assert!(
        v["cases"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("signal 9"),
        "{v}"
    );
    // No worker is left behind, nor the Python processes they ran.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        pids_with(&["conformance-worker", cfg.to_str().unwrap()]).is_empty(),
        "a worker outlived its run"
    );
    std::fs::remove_file(&fault).unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&mut run())).unwrap();
    assert_eq!(v["summary"]["ortpy"]["pass"], 3, "{v}");
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
