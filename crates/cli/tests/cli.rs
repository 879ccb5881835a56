//! The `rdeploy` binary, run as a process: exit codes, stdout, files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use assert_cmd::Command;
use rdeploy::Tensor;
use rdeploy_conformance as conf;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rdeploy() -> Command {
    let mut c = Command::cargo_bin("rdeploy").unwrap();
    c.current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .env("RDEPLOY_LOG", "warn");
    c
}

/// Runs and returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let o = rdeploy().args(args).output().unwrap();
    let code = o.status.code().unwrap_or(-1);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "rdeploy panicked on {args:?}:\n{err}"
    );
    (code, out, err)
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?} failed:\n{err}");
    out
}

/// Fails with exit code 1 and returns stderr.
fn fails(args: &[&str]) -> String {
    let (code, _, err) = run(args);
    assert_eq!(code, 1, "{args:?} should fail with 1:\n{err}");
    // Engines may log warnings first; the error is the last paragraph.
    let at = err
        .find("error: ")
        .unwrap_or_else(|| panic!("no error message:\n{err}"));
    assert!(at == 0 || err[..at].ends_with('\n'), "{err}");
    err[at..].to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read_npy(p: &Path) -> Tensor {
    rdeploy::io::read_tensor_file(p).unwrap().remove(0).1
}

#[test]
fn check_env_lists_tract() {
    let out = ok(&["check-env"]);
    assert!(out.lines().any(|l| l.starts_with("tract:\t0.")), "{out}");
    let j: serde_json::Value = serde_json::from_str(&ok(&["check-env", "--json"])).unwrap();
    let tract = j["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "tract")
        .unwrap();
    assert_eq!(tract["available"], true);
}

#[test]
fn mmdeploy_classification_config_deploys_and_matches_onnxruntime() {
    let case = conf::cnn_case();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    let out = ok(&[
        "deploy",
        "configs/mmpretrain/classification_tract_dynamic.py",
        s(&case.model),
        "--work-dir",
        s(&work),
    ]);
    assert!(
        out.contains("input  input: f32 [batch, 3, height, width]"),
        "{out}"
    );
    assert!(work.join("end2end.onnx").is_file() && work.join("deploy.json").is_file());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("deploy.json")).unwrap()).unwrap();
    assert_eq!(m["backend"], "tract");
    assert_eq!(m["inputs"][0]["name"], "input");
    assert_eq!(m["config"]["codebase_config"]["type"], "mmpretrain");
    assert_eq!(m["backend_files"][0]["sha256"].as_str().unwrap().len(), 64);

    let input = case.data_sets[0].dir.join("input_0.pb");
    let outdir = tmp.path().join("o");
    ok(&[
        "infer",
        s(&work),
        "--input",
        &format!("input={}", s(&input)),
        "--output-dir",
        s(&outdir),
    ]);
    let got = read_npy(&outdir.join("output.npy"));
    // Reference: onnxruntime (Python) on the same model and input; f32 rounding differences only.
    conf::compare(&got, &case.data_sets[0].outputs[0], 1e-4, 1e-6).unwrap();

    // Same model, config, backend and device: reused, and says so.
    let again = ok(&[
        "deploy",
        "configs/mmpretrain/classification_tract_dynamic.py",
        s(&case.model),
        "--work-dir",
        s(&work),
    ]);
    assert!(again.contains("reused"), "{again}");
    let forced = ok(&[
        "deploy",
        "configs/mmpretrain/classification_tract_dynamic.py",
        s(&case.model),
        "--work-dir",
        s(&work),
        "--force",
    ]);
    assert!(forced.starts_with("deployed"), "{forced}");
}

#[test]
fn onnx_backend_cases_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = conf::onnx_backend_cases();
    let mut ran = 0;
    for case in cases.iter().filter(|c| {
        [
            "test_Conv2d_dynbatch",
            "test_operator_addmm",
            "test_operator_chunk",
            "test_Embedding",
        ]
        .contains(&c.name.as_str())
    }) {
        let work = tmp.path().join(&case.name);
        ok(&[
            "deploy",
            "configs/onnx/generic_tract.py",
            s(&case.model),
            "--work-dir",
            s(&work),
        ]);
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(work.join("deploy.json")).unwrap()).unwrap();
        for ds in &case.data_sets {
            let outdir = tmp.path().join(format!(
                "{}-{}",
                case.name,
                ds.dir.file_name().unwrap().to_string_lossy()
            ));
            let mut args: Vec<String> = vec![
                "infer".into(),
                s(&work).into(),
                "--output-dir".into(),
                s(&outdir).into(),
            ];
            for (i, spec) in m["inputs"].as_array().unwrap().iter().enumerate() {
                args.push("--input".into());
                args.push(format!(
                    "{}={}",
                    spec["name"].as_str().unwrap(),
                    s(&ds.dir.join(format!("input_{i}.pb")))
                ));
            }
            ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
            for (i, spec) in m["outputs"].as_array().unwrap().iter().enumerate() {
                let name = spec["name"].as_str().unwrap();
                let got = read_npy(&outdir.join(format!("{name}.npy")));
                conf::compare(&got, &ds.outputs[i], 1e-3, 1e-4)
                    .unwrap_or_else(|e| panic!("{} {name}: {e}", case.name));
            }
        }
        ran += 1;
    }
    assert_eq!(ran, 4);
}

#[test]
fn generated_inputs_use_the_model_shape_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    ok(&[
        "deploy",
        "configs/mmpretrain/classification_tract_dynamic.py",
        "tests/data/small-cnn.onnx",
        "--work-dir",
        s(&work),
    ]);
    let j: serde_json::Value =
        serde_json::from_str(&ok(&["infer", s(&work), "--json", "--shape", "batch=3"])).unwrap();
    assert_eq!(j["outputs"][0]["shape"], serde_json::json!([3, 10]));
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "infer",
        s(&work),
        "--json",
        "--shape",
        "input:2x3x40x48",
    ]))
    .unwrap();
    assert_eq!(j["outputs"][0]["shape"], serde_json::json!([2, 10]));
    // Softmax rows sum to 1 whatever the random input.
    let mean = j["outputs"][0]["mean"].as_f64().unwrap();
    assert!((mean - 0.1).abs() < 1e-6, "{mean}");
    let e = fails(&["infer", s(&work), "--shape", "nope:1x2"]);
    assert!(e.contains("'nope'"), "{e}");

    // RDEPLOY_TIME_EXECUTE: MMDeploy's TimeCounter lines (mmdeploy/utils/timer.py), the count
    // including the 2 warmup calls, every 4 calls after them: 12 bench calls -> counts 6, 10.
    let o = rdeploy()
        .env("RDEPLOY_LOG", "info")
        .env("RDEPLOY_TIME_EXECUTE", "2,4")
        .args(["bench", s(&work), "--warmup", "2", "--iters", "10"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("times per count"))
        .collect();
    assert_eq!(lines.len(), 2, "{err}");
    for (line, count) in lines.iter().zip([6, 10]) {
        let tail = line
            .split_once(&format!("[tract]-{count} times per count: "))
            .unwrap_or_else(|| panic!("{line}"))
            .1;
        let (ms, fps) = tail.split_once(" ms, ").unwrap();
        let (ms, fps): (f64, f64) = (
            ms.parse().unwrap(),
            fps.trim_end_matches(" FPS").parse().unwrap(),
        );
        // FPS is 1000 / the mean, which the line rounds to 0.01 ms.
        assert!(ms > 0.0 && (1000.0 / fps - ms).abs() <= 0.0051, "{line}");
    }
    let e = rdeploy()
        .env("RDEPLOY_TIME_EXECUTE", "2,0")
        .args(["infer", s(&work)])
        .output()
        .unwrap();
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("WARMUP,LOG_INTERVAL[,BATCH_SIZE]"));
}

#[test]
fn config_print_and_check() {
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "config",
        "print",
        "--json",
        "configs/mmpretrain/classification_tract_dynamic.py",
    ]))
    .unwrap();
    assert_eq!(j["backend_config"]["type"], "tract");
    assert_eq!(j["onnx_config"]["dynamic_axes"]["input"]["0"], "batch");
    assert_eq!(j["onnx_config"]["opset_version"], 11);
    let py = ok(&[
        "config",
        "print",
        "configs/mmpretrain/classification_tract_dynamic.py",
    ]);
    assert!(
        py.contains("backend_config = dict(\n    type='tract'"),
        "{py}"
    );
    assert!(
        ok(&[
            "config",
            "check",
            "configs/mmpretrain/classification_tract_dynamic.py"
        ])
        .ends_with("ok\n")
    );
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.py");
    std::fs::write(
        &bad,
        "backend_config = dict(type='nope', custom_ops=['libs/libmissing.so'])\nonnx_config = dict(input_shape='x')\n",
    )
    .unwrap();
    let e = fails(&["config", "check", s(&bad)]);
    assert!(
        e.contains("3 problem(s)") && e.contains("'nope'") && e.contains("onnx_config.input_shape"),
        "{e}"
    );
    // custom_ops resolve against the config file's folder, not the current one.
    assert!(
        e.contains("backend_config.custom_ops")
            && e.contains(&tmp.path().join("libs/libmissing.so").display().to_string())
            && e.contains("not found"),
        "{e}"
    );
}

#[test]
fn bad_input_gives_specific_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let cfg = "configs/onnx/generic_tract.py";
    let model = "tests/data/small-cnn.onnx";
    // Missing model, non-ONNX file, truncated ONNX.
    let e = fails(&[
        "deploy",
        cfg,
        s(&t.join("nope.onnx")),
        "--work-dir",
        s(&t.join("w1")),
    ]);
    assert!(e.contains("nope.onnx") && e.contains("not found"), "{e}");
    std::fs::write(t.join("text.onnx"), "hello, I am not a model\n").unwrap();
    let e = fails(&[
        "deploy",
        cfg,
        s(&t.join("text.onnx")),
        "--work-dir",
        s(&t.join("w2")),
    ]);
    assert!(
        e.contains("text.onnx") && e.contains("not an ONNX model"),
        "{e}"
    );
    let bytes = std::fs::read(root().join(model)).unwrap();
    std::fs::write(t.join("trunc.onnx"), &bytes[..bytes.len() - 100]).unwrap();
    let e = fails(&[
        "deploy",
        cfg,
        s(&t.join("trunc.onnx")),
        "--work-dir",
        s(&t.join("w3")),
    ]);
    assert!(e.contains("trunc.onnx") && e.contains("truncated"), "{e}");
    for w in ["w1", "w2", "w3"] {
        assert!(!t.join(w).join("deploy.json").exists());
    }
    // Missing config, unknown backend, unknown or malformed device.
    let e = fails(&[
        "deploy",
        s(&t.join("missing.py")),
        model,
        "--work-dir",
        s(&t.join("w4")),
    ]);
    assert!(e.contains("missing.py") && e.contains("not found"), "{e}");
    std::fs::write(t.join("nope.py"), "backend_config = dict(type='nope')\n").unwrap();
    let e = fails(&[
        "deploy",
        s(&t.join("nope.py")),
        model,
        "--work-dir",
        s(&t.join("w5")),
    ]);
    assert!(
        e.contains("unknown backend 'nope'") && e.contains("tract"),
        "{e}"
    );
    let e = fails(&[
        "deploy",
        cfg,
        model,
        "--work-dir",
        s(&t.join("w6")),
        "--device",
        "cuda:0",
    ]);
    assert!(
        e.contains("cuda:0") && e.contains("tract") && e.contains("cpu"),
        "{e}"
    );
    let e = fails(&[
        "deploy",
        cfg,
        model,
        "--work-dir",
        s(&t.join("w6")),
        "--device",
        "cuda:x",
    ]);
    assert!(e.contains("device 'cuda:x'"), "{e}");
    // A work dir that cannot be created (its parent is a file; root ignores permission bits).
    std::fs::write(t.join("file"), "x").unwrap();
    let e = fails(&[
        "deploy",
        cfg,
        model,
        "--work-dir",
        s(&t.join("file").join("w")),
    ]);
    assert!(
        e.contains("cannot create work dir") && e.contains("file/w"),
        "{e}"
    );

    // Inputs: wrong name, dtype, shape, file; a dir with no manifest.
    let work = t.join("good");
    ok(&["deploy", cfg, model, "--work-dir", s(&work)]);
    let x = conf::cnn_case().data_sets[0].dir.join("input_0.pb");
    let e = fails(&["infer", s(&work), "--input", &format!("nope={}", s(&x))]);
    assert!(e.contains("'nope'") && e.contains("image"), "{e}");
    let f64_input = t.join("x64.npy");
    rdeploy::io::write_npy(
        &f64_input,
        &Tensor::zeros(rdeploy::DType::F64, &[1, 3, 32, 32]),
    )
    .unwrap();
    let e = fails(&[
        "infer",
        s(&work),
        "--input",
        &format!("image={}", s(&f64_input)),
    ]);
    assert!(
        e.contains("'image'") && e.contains("dtype f32") && e.contains("f64"),
        "{e}"
    );
    let small = t.join("small.npy");
    rdeploy::io::write_npy(&small, &Tensor::zeros(rdeploy::DType::F32, &[1, 3, 16, 32])).unwrap();
    let e = fails(&[
        "infer",
        s(&work),
        "--input",
        &format!("image={}", s(&small)),
    ]);
    assert!(
        e.contains("'image'") && e.contains("[batch, 3, 32, 32]") && e.contains("[1, 3, 16, 32]"),
        "{e}"
    );
    let e = fails(&[
        "infer",
        s(&work),
        "--input",
        &format!("image={}", s(&t.join("none.npy"))),
    ]);
    assert!(e.contains("none.npy"), "{e}");
    let e = fails(&["infer", s(t)]);
    assert!(e.contains("deploy.json"), "{e}");
}

#[test]
fn failed_deploy_keeps_the_previous_work_dir_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    ok(&[
        "deploy",
        "configs/onnx/generic_tract.py",
        "tests/data/small-cnn.onnx",
        "--work-dir",
        s(&work),
    ]);
    let before = std::fs::read(work.join("deploy.json")).unwrap();
    // A model tract rejects at conversion time.
    let bad = conf::test_data_dir().join("onnx-backend/test_PReLU_2d_multiparam/model.onnx");
    let e = fails(&[
        "deploy",
        "configs/onnx/generic_tract.py",
        s(&bad),
        "--work-dir",
        s(&work),
        "--force",
    ]);
    assert!(e.contains("tract") && e.contains("Prelu"), "{e}");
    assert!(
        !e.contains(".staging"),
        "the error should name the work dir, not the staging dir: {e}"
    );
    assert_eq!(std::fs::read(work.join("deploy.json")).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
    ok(&["infer", s(&work)]);
}

#[test]
fn help_is_complete() {
    let out = ok(&["--help"]);
    for cmd in ["check-env", "deploy", "infer", "config"] {
        assert!(out.contains(cmd), "{out}");
    }
    let out = ok(&["infer", "--help"]);
    for flag in [
        "--input",
        "--shape",
        "--random-seed",
        "--output-dir",
        "--json",
    ] {
        assert!(out.contains(flag), "{out}");
    }
    let (code, _, _) = run(&["deploy"]);
    assert_eq!(code, 2);
}

fn required(backend: &str) -> bool {
    std::env::var("RDEPLOY_REQUIRE_BACKENDS")
        .unwrap_or_default()
        .split(',')
        .any(|b| b.trim() == backend)
}

/// True when check-env lists `backend` with a version; panics if it is required and missing.
fn available(backend: &str) -> bool {
    let out = ok(&["check-env"]);
    let prefix = format!("{backend}:\t");
    let found = out
        .lines()
        .any(|l| l.starts_with(&prefix) && !l.starts_with(&format!("{prefix}None")));
    assert!(
        found || !required(backend),
        "{backend} is required but check-env says:\n{out}"
    );
    found
}

/// The `check-env` line of `backend`, with environment variables set and removed.
fn check_env_line(backend: &str, set: &[(&str, &Path)], remove: &[&str]) -> String {
    let mut c = rdeploy();
    c.arg("check-env");
    for (k, v) in set {
        c.env(k, v);
    }
    for k in remove {
        c.env_remove(k);
    }
    let o = c.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let prefix = format!("{backend}:");
    out.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {backend} line in:\n{out}"))
        .to_string()
}

/// True when ONNX Runtime is found; panics if it is required and missing.
fn ort_available() -> bool {
    available("onnxruntime")
}

#[test]
fn onnxruntime_check_env_reports_version_or_where_it_looked() {
    if ort_available() {
        let out = ok(&["check-env"]);
        let line = out.lines().find(|l| l.starts_with("onnxruntime:")).unwrap();
        assert!(
            line.contains("CPUExecutionProvider") && line.contains("GPU: "),
            "{line}"
        );
    }
    let empty = tempfile::tempdir().unwrap();
    let line = check_env_line(
        "onnxruntime",
        &[("RDEPLOY_ORT_SEARCH_PATH", empty.path())],
        &["ORT_DYLIB_PATH"],
    );
    assert!(
        line.starts_with("onnxruntime:\tNone (libonnxruntime not found (looked in: "),
        "{line}"
    );
    assert!(
        line.contains(s(empty.path())) && line.contains("pip install onnxruntime"),
        "{line}"
    );
    // Asking to use it then is a clear error, not a crash.
    let tmp = tempfile::tempdir().unwrap();
    let o = rdeploy()
        .args([
            "deploy",
            "configs/onnx/generic_onnxruntime.py",
            "tests/data/small-cnn.onnx",
            "--work-dir",
            s(&tmp.path().join("w")),
        ])
        .env("RDEPLOY_ORT_SEARCH_PATH", empty.path())
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("backend 'onnxruntime' is not available")
            && err.contains("pip install onnxruntime"),
        "{err}"
    );
    let o = rdeploy()
        .args(["check-env"])
        .env("ORT_DYLIB_PATH", s(&empty.path().join("libnope.so")))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("ORT_DYLIB_PATH=") && out.contains("does not exist"),
        "{out}"
    );
}

#[test]
fn onnxruntime_and_tract_agree_through_the_cli() {
    if !ort_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let x = conf::cnn_case().data_sets[0].dir.join("input_0.pb");
    let mut outs = Vec::new();
    for be in ["tract", "onnxruntime"] {
        let work = tmp.path().join(be);
        let cfg = format!("configs/mmpretrain/classification_{be}_dynamic.py");
        ok(&[
            "deploy",
            &cfg,
            "tests/data/small-cnn.onnx",
            "--work-dir",
            s(&work),
        ]);
        let o = tmp.path().join(format!("{be}-out"));
        ok(&[
            "infer",
            s(&work),
            "--input",
            &format!("input={}", s(&x)),
            "--output-dir",
            s(&o),
        ]);
        outs.push(read_npy(&o.join("output.npy")));
    }
    // Two engines, same f32 model: only summation-order differences.
    conf::compare(&outs[0], &outs[1], 1e-4, 1e-6).unwrap();
}

#[test]
fn mmdeploy_onnxruntime_fp16_config_runs_float32_inputs() {
    if !ort_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    let case = conf::cnn_case();
    ok(&[
        "deploy",
        "configs/mmpretrain/classification_onnxruntime-fp16_dynamic.py",
        s(&case.model),
        "--work-dir",
        s(&work),
    ]);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("deploy.json")).unwrap()).unwrap();
    assert_eq!(m["backend_files"][0]["path"], "end2end.fp16.onnx");
    let o = tmp.path().join("o");
    let x = case.data_sets[0].dir.join("input_0.pb");
    ok(&[
        "infer",
        s(&work),
        "--input",
        &format!("input={}", s(&x)),
        "--output-dir",
        s(&o),
    ]);
    let got = read_npy(&o.join("output.npy"))
        .cast(rdeploy::DType::F32, rdeploy::Cast::Unchecked)
        .unwrap();
    // float16 end to end (MMDeploy's keep_io_types=False): rtol 1e-2, atol 1e-3 on probabilities.
    conf::compare(&got, &case.data_sets[0].outputs[0], 1e-2, 1e-3).unwrap();
}

#[test]
fn bench_reports_percentiles_and_execute_time() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    ok(&[
        "deploy",
        "configs/mmpretrain/classification_tract_dynamic.py",
        "tests/data/small-cnn.onnx",
        "--work-dir",
        s(&work),
    ]);
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        s(&work),
        "--warmup",
        "2",
        "--iters",
        "20",
        "--shape",
        "batch=2",
        "--json",
    ]))
    .unwrap();
    assert_eq!(j["iters"], 20);
    assert_eq!(j["input_shapes"][0][1], serde_json::json!([2, 3, 32, 32]));
    let lat = &j["latency_ms"];
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    assert!(
        f(&lat["min"]) <= f(&lat["p50"])
            && f(&lat["p50"]) <= f(&lat["p90"])
            && f(&lat["p90"]) <= f(&lat["p99"])
            && f(&lat["p99"]) <= f(&lat["max"])
    );
    // The engine call is part of the whole call.
    assert!(f(&j["execute_ms"]["mean"]) <= f(&lat["mean"]));
    assert!(f(&j["throughput_per_s"]) > 0.0);
    let e = fails(&["bench", s(&work), "--iters", "0"]);
    assert!(e.contains("--iters"), "{e}");
}

#[test]
fn input_shape_and_model_inputs_fix_the_signature_and_the_backend_honours_it() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("static");
    let out = ok(&[
        "deploy",
        "configs/mmpretrain/classification_tract_static.py",
        "tests/data/small-cnn.onnx",
        "--work-dir",
        s(&work),
    ]);
    assert!(
        out.contains("input  input: f32 [batch, 3, 224, 224]")
            && out.contains("mmpretrain/Classification"),
        "{out}"
    );
    let x32 = conf::cnn_case().data_sets[0].dir.join("input_0.pb");
    let e = fails(&["infer", s(&work), "--input", &format!("input={}", s(&x32))]);
    assert!(
        e.contains("[batch, 3, 224, 224]") && e.contains("[2, 3, 32, 32]"),
        "{e}"
    );
    let j: serde_json::Value = serde_json::from_str(&ok(&["infer", s(&work), "--json"])).unwrap();
    assert_eq!(j["outputs"][0]["shape"], serde_json::json!([1, 10]));
    // A static TensorRT-style profile (min == opt == max) in a TOML config fixes the whole shape.
    let cfg = tmp.path().join("c.toml");
    std::fs::write(
        &cfg,
        "_base_ = '../../../work/main/configs/_base_/backends/tract.py'\n",
    )
    .unwrap();
    let base = root().join("configs/_base_/backends/tract.py");
    std::fs::write(&cfg, format!("_base_ = '{}'\n[[backend_config.model_inputs]]\ninput_shapes.image = {{ min_shape = [3, 3, 32, 32], opt_shape = [3, 3, 32, 32], max_shape = [3, 3, 32, 32] }}\n", s(&base))).unwrap();
    let work = tmp.path().join("profile");
    let out = ok(&[
        "deploy",
        s(&cfg),
        "tests/data/small-cnn.onnx",
        "--work-dir",
        s(&work),
    ]);
    assert!(out.contains("input  image: f32 [3, 3, 32, 32]"), "{out}");
    let j: serde_json::Value = serde_json::from_str(&ok(&["infer", s(&work), "--json"])).unwrap();
    assert_eq!(j["outputs"][0]["shape"], serde_json::json!([3, 10]));
    let e = fails(&[
        "deploy",
        s(&cfg),
        "tests/data/generated/onnx-backend/test_Conv2d/model.onnx",
        "--work-dir",
        s(&tmp.path().join("x")),
    ]);
    assert!(
        e.contains("backend_config.model_inputs") && e.contains("'image'"),
        "{e}"
    );
}

#[test]
fn compare_backends() {
    // tract against itself always works; with onnxruntime when it is here.
    let mut backends = "tract,tract".to_string();
    if ort_available() {
        backends = "tract,onnxruntime".into();
    }
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "compare",
        "tests/data/small-cnn.onnx",
        "--backends",
        &backends,
        "--shape",
        "batch=3",
        "--json",
    ]))
    .unwrap();
    assert_eq!(j["pass"], true, "{j}");
    assert_eq!(j["outputs"][0]["output"], "probs");
    assert!(j["outputs"][0]["max_abs_diff"].as_f64().unwrap() < 1e-5);
    let x = conf::cnn_case().data_sets[0].dir.join("input_0.pb");
    let text = ok(&[
        "compare",
        "tests/data/small-cnn.onnx",
        "--backends",
        &backends,
        "--input",
        &format!("image={}", s(&x)),
    ]);
    assert!(text.contains("PASS"), "{text}");
    // An impossible tolerance fails with exit code 1 and says so.
    if backends.contains("onnxruntime") {
        let (code, out, err) = run(&[
            "compare",
            "tests/data/small-cnn.onnx",
            "--backends",
            &backends,
            "--rtol",
            "0",
            "--atol",
            "0",
            "--shape",
            "batch=8",
        ]);
        if out.contains("FAIL") {
            assert_eq!(code, 1, "{err}");
            assert!(err.contains("outputs differ"), "{err}");
        }
    }
    let e = fails(&[
        "compare",
        "tests/data/small-cnn.onnx",
        "--backends",
        "tract,nope",
    ]);
    assert!(e.contains("unknown backend 'nope'"), "{e}");
    let e = fails(&[
        "compare",
        "tests/data/small-cnn.onnx",
        "--backends",
        "tract",
    ]);
    assert!(e.contains("two runs to compare"), "{e}");
}

#[test]
fn save_file_names_the_ir_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.py");
    let base = root().join("configs/_base_/backends/tract.py");
    std::fs::write(
        &cfg,
        format!(
            "_base_ = ['{}']\nonnx_config = dict(save_file='model_ir.onnx', opset_version=17)\n",
            s(&base)
        ),
    )
    .unwrap();
    let work = tmp.path().join("w");
    let out = ok(&[
        "deploy",
        s(&cfg),
        "tests/data/small-cnn.onnx",
        "--work-dir",
        s(&work),
    ]);
    // The model is opset 13: a higher opset in the config is reported, not silently ignored.
    assert!(
        out.contains("opset 17") && out.contains("opset 13"),
        "{out}"
    );
    assert!(work.join("model_ir.onnx").is_file() && !work.join("end2end.onnx").exists());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("deploy.json")).unwrap()).unwrap();
    assert_eq!(m["ir_file"]["path"], "model_ir.onnx");
    ok(&["infer", s(&work)]);
}

#[test]
fn openvino_check_env_reports_version_or_where_it_looked() {
    if available("openvino") {
        let out = ok(&["check-env"]);
        let line = out.lines().find(|l| l.starts_with("openvino:")).unwrap();
        assert!(
            line.starts_with("openvino:\t20") && line.contains("devices: CPU"),
            "{line}"
        );
    }
    let empty = tempfile::tempdir().unwrap();
    let line = check_env_line(
        "openvino",
        &[("RDEPLOY_OPENVINO_SEARCH_PATH", empty.path())],
        &["RDEPLOY_OPENVINO_LIB"],
    );
    assert!(
        line.starts_with("openvino:\tNone (libopenvino_c not found (looked in: ")
            && line.contains(s(empty.path()))
            && line.contains("pip install openvino"),
        "{line}"
    );
    let missing = empty.path().join("libnope.so");
    let line = check_env_line("openvino", &[("RDEPLOY_OPENVINO_LIB", &missing)], &[]);
    assert!(
        line.contains("RDEPLOY_OPENVINO_LIB=") && line.contains("does not exist"),
        "{line}"
    );
    // A file that is not OpenVINO is named as such.
    let fake = empty.path().join("libopenvino_c.so.2641");
    std::fs::write(&fake, b"not a library").unwrap();
    let line = check_env_line("openvino", &[("RDEPLOY_OPENVINO_LIB", &fake)], &[]);
    assert!(
        line.starts_with("openvino:\tNone (cannot load ") && line.contains(s(&fake)),
        "{line}"
    );
}

#[test]
fn openvino_ir_runs_in_a_new_process_without_the_onnx_file() {
    if !available("openvino") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    let case = conf::cnn_case();
    ok(&[
        "deploy",
        "configs/onnx/dynamic-batch_openvino.py",
        s(&case.model),
        "--work-dir",
        s(&work),
    ]);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("deploy.json")).unwrap()).unwrap();
    let files: Vec<&str> = m["backend_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["end2end.xml", "end2end.bin"]);
    std::fs::remove_file(work.join("end2end.onnx")).unwrap();
    let o = tmp.path().join("o");
    let x = case.data_sets[0].dir.join("input_0.pb");
    ok(&[
        "infer",
        s(&work),
        "--input",
        &format!("input={}", s(&x)),
        "--output-dir",
        s(&o),
    ]);
    // Reference: ONNX Runtime's output in the test data; both engines in f32.
    conf::compare(
        &read_npy(&o.join("output.npy")),
        &case.data_sets[0].outputs[0],
        1e-5,
        1e-6,
    )
    .unwrap();
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        s(&work),
        "--warmup",
        "1",
        "--iters",
        "5",
        "--json",
    ]))
    .unwrap();
    assert_eq!(j["settings"]["inference_precision"], "f32", "{j}");
    // A damaged IR is an error naming the file, not a crash.
    std::fs::write(work.join("end2end.bin"), b"truncated").unwrap();
    let e = fails(&["infer", s(&work)]);
    assert!(
        e.contains("end2end.bin") || e.contains("end2end.xml"),
        "{e}"
    );
}

#[test]
fn openvino_and_onnxruntime_and_tract_compare_equal() {
    if !available("openvino") || !ort_available() {
        return;
    }
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "compare",
        "tests/data/small-cnn.onnx",
        "--backends",
        "tract,onnxruntime,openvino",
        "--shape",
        "batch=3",
        "--json",
    ]))
    .unwrap();
    assert_eq!(j["pass"], true, "{j}");
}

#[test]
fn a_plugin_that_cannot_load_is_listed_and_the_rest_works() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("libjunk.so");
    std::fs::write(&junk, b"not a shared library").unwrap();
    let (code, out, err) = run(&["--plugin", s(&junk), "check-env"]);
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.starts_with("junk:")).unwrap();
    assert!(
        line.starts_with("junk:\tNone (plugin ") && line.contains("cannot load it"),
        "{line}"
    );
    assert!(out.lines().any(|l| l.starts_with("tract:\t0.")), "{out}");
    // From RDEPLOY_PLUGIN_PATH (a folder) too; and using it is a clear error, other backends run.
    let o = rdeploy()
        .args([
            "compare",
            "tests/data/small-cnn.onnx",
            "--backends",
            "tract,tract",
        ])
        .env("RDEPLOY_PLUGIN_PATH", tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = fails(&[
        "--plugin",
        s(&junk),
        "compare",
        "tests/data/small-cnn.onnx",
        "--backends",
        "tract,junk",
    ]);
    assert!(e.contains("junk") && e.contains("cannot load it"), "{e}");
}

/// A model `out/y:0 = Add(gpu_0/data_0, input_1:0)` with [n, 3] float32 tensors: names as
/// Caffe2 and TensorFlow converters write them.
fn odd_names_model(path: &Path) {
    use rdeploy::onnx::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto};
    use rdeploy::passes::build::tensor_value_info;
    let dims = [rdeploy::Dim::Symbolic("n".into()), rdeploy::Dim::Fixed(3)];
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            name: Some("odd".into()),
            node: vec![NodeProto {
                op_type: Some("Add".into()),
                input: vec!["gpu_0/data_0".into(), "input_1:0".into()],
                output: vec!["out/y:0".into()],
                ..Default::default()
            }],
            input: vec![
                tensor_value_info("gpu_0/data_0", 1, Some(&dims)),
                tensor_value_info("input_1:0", 1, Some(&dims)),
            ],
            output: vec![tensor_value_info("out/y:0", 1, Some(&dims))],
            ..Default::default()
        }),
        ..Default::default()
    };
    rdeploy::onnx::save(&model, path).unwrap();
}

#[test]
fn tensor_names_with_slashes_and_colons_work_in_every_option() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("odd.onnx");
    odd_names_model(&model);
    let a = Tensor::from_shape_vec(&[2, 3], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
    let b = Tensor::from_shape_vec(&[2, 3], vec![10f32, 20., 30., 40., 50., 60.]).unwrap();
    let (fa, fb) = (tmp.path().join("a.npy"), tmp.path().join("b.npy"));
    rdeploy::io::write_npy(&fa, &a).unwrap();
    rdeploy::io::write_npy(&fb, &b).unwrap();
    for backend in ["tract", "onnxruntime", "openvino"] {
        if !available(backend) {
            continue;
        }
        let work = tmp.path().join(format!("w-{backend}"));
        let cfg = root().join(format!("configs/onnx/generic_{backend}.py"));
        ok(&["deploy", s(&cfg), s(&model), "--work-dir", s(&work)]);
        let out = tmp.path().join(format!("out-{backend}"));
        ok(&[
            "infer",
            s(&work),
            "--input",
            &format!("gpu_0/data_0={}", s(&fa)),
            "--input",
            &format!("input_1:0={}", s(&fb)),
            "--output-dir",
            s(&out),
        ]);
        // Reference: elementwise sum, computed here.
        let got = read_npy(&out.join("out_y_0.npy"));
        assert_eq!(
            got.as_slice::<f32>().unwrap(),
            &[11., 22., 33., 44., 55., 66.],
            "{backend}"
        );
        // Generated inputs with a shape for a name holding ':' and '/'.
        let j = ok(&[
            "infer",
            s(&work),
            "--shape",
            "gpu_0/data_0:4x3",
            "--shape",
            "input_1:0:4x3",
            "--json",
        ]);
        assert!(
            j.contains("\"shape\": [\n        4,\n        3\n      ]"),
            "{j}"
        );
        let e = fails(&["infer", s(&work), "--input", &format!("data_0={}", s(&fa))]);
        assert!(
            e.contains("no input named 'data_0'") && e.contains("'gpu_0/data_0', 'input_1:0'"),
            "{e}"
        );
    }
}

#[test]
fn rewrite_lists_runs_and_refuses_clearly() {
    let list: serde_json::Value =
        serde_json::from_str(&ok(&["rewrite", "--list", "--json"])).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for n in [
        "opset_upgrade",
        "grid_sampler_to_grid_sample",
        "decompose_lp_pool",
        "simplify",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
    // --backend filters: tract gets the decompositions, not the GridSample rule.
    let tract = ok(&["rewrite", "--list", "--backend", "tract"]);
    assert!(tract.contains("decompose_lp_pool") && !tract.contains("grid_sampler_to_grid_sample"));
    // An opset-6 model-suite case, upgraded: the output is plain ONNX at opset 13.
    let case = conf::test_data_dir().join("onnx-old-opset/test_BatchNorm2d_eval/model.onnx");
    let dir = conf::tempdir("cli", "rewrite");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("up.onnx");
    let text = ok(&[
        "rewrite",
        s(&case),
        "--backend",
        "onnxruntime",
        "-o",
        s(&out),
    ]);
    assert!(
        text.contains("opset_upgrade") && text.contains("wrote"),
        "{text}"
    );
    let (_, info) = rdeploy::core::onnx::inspect_file(&out).unwrap();
    assert_eq!(info.opset(), Some(13));
    // Unknown pass names, missing models and bad backends are errors naming them.
    assert!(
        fails(&[
            "rewrite",
            s(&case),
            "--backend",
            "tract",
            "-o",
            s(&out),
            "--passes",
            "nope"
        ])
        .contains("'nope'")
    );
    assert!(
        fails(&[
            "rewrite",
            "/nonexistent.onnx",
            "--backend",
            "tract",
            "-o",
            s(&out)
        ])
        .contains("/nonexistent.onnx")
    );
    assert!(fails(&["rewrite", s(&case), "--backend", "nosuch", "-o", s(&out)]).contains("nosuch"));
    let (code, _, _) = run(&["rewrite", s(&case)]);
    assert_eq!(code, 2, "--backend and -o are required without --list");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn custom_ops_resolve_against_a_config_named_by_bare_file_name() {
    let dir = conf::tempdir("cli", "bare-config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cfg.py"),
        "backend_config = dict(type='onnxruntime', custom_ops=['libs/libmyops.so'])\n",
    )
    .unwrap();
    let (code, _, err) = {
        let o = rdeploy()
            .current_dir(&dir)
            .args(["config", "check", "cfg.py"])
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(code, 1, "{err}");
    // The path is resolved (and reported missing), not "cannot make an empty path absolute".
    assert!(
        err.contains("libs/libmyops.so") && err.contains("not found"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_ranks_backends_on_a_model() {
    let model = root().join("tests/data/small-cnn.onnx");
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", s(&model), "--json"])).unwrap();
    let one_flops = inspected["compute"]["flops"].as_u64().unwrap();
    let backends = if ort_available() {
        "tract,onnxruntime"
    } else {
        "tract"
    };
    let out = ok(&[
        "bench",
        s(&model),
        "--backends",
        backends,
        "--iters",
        "20",
        "--rounds",
        "4",
        "--warmup",
        "2",
        "--threads",
        "1",
        "--shape",
        "batch=2",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 1, "{v}");
    let ranked = v["runs"][0]["ranked"].as_array().unwrap();
    assert_eq!(ranked.len(), backends.split(',').count(), "{v}");
    let mut last = 0.0;
    for (i, r) in ranked.iter().enumerate() {
        assert_eq!(r["rank"], i + 1);
        let rep = &r["report"];
        assert_eq!(rep["iters"], 20);
        let p50 = rep["latency_ms"]["p50"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 >= last, "ranked by p50: {v}");
        last = p50;
        assert!(rep["latency_ms"]["std"].as_f64().is_some());
        assert_eq!(
            rep["input_shapes"][0][1][0], 2,
            "--shape reaches every backend"
        );
        assert!(r["deploy_ms"].as_f64().unwrap() > 0.0);
        // The small CNN's FLOPs at batch 2 (rdeploy inspect's count) and the rate at p50.
        let flops = rep["flops_per_call"].as_u64().unwrap();
        assert_eq!(flops, 2 * one_flops, "{rep}");
        let g = rep["gflops_per_s"].as_f64().unwrap();
        assert!((g - flops as f64 / (p50 * 1e-3) / 1e9).abs() < 1e-6 * g.max(1.0));
    }
    // A backend that cannot deploy is listed as failed; the others are still ranked.
    let out = ok(&[
        "bench",
        s(&model),
        "--backends",
        "tract,nosuch",
        "--iters",
        "4",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"][0]["ranked"].as_array().unwrap().len(), 1);
    assert_eq!(v["failed"][0]["backend"], "nosuch");
    // The plain table names the columns.
    let text = ok(&["bench", s(&model), "--backends", "tract", "--iters", "4"]);
    assert!(text.contains("p50 ms") && text.contains("tract"), "{text}");
}

/// The benchmark models (`scripts/make-bench-models.py`: ResNet-18/50, SqueezeNet, Inception,
/// DenseNet-121 with random weights, opset 13, dynamic batch), made once per test run.
fn bench_models() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-bench-models");
        let python = std::env::var_os("VIRTUAL_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join(".venv"))
            .join("bin/python");
        let o = std::process::Command::new(python)
            .arg(root().join("scripts/make-bench-models.py"))
            .arg(&dir)
            .output()
            .expect("the venv's python (scripts/setup-venv.sh) makes the benchmark models");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dir
    })
    .clone()
}

#[test]
fn bench_grid_of_concurrency_and_batch_with_memory_and_duration() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    ok(&[
        "deploy",
        "configs/mmpretrain/classification_tract_dynamic.py",
        "tests/data/small-cnn.onnx",
        "--work-dir",
        s(&work),
    ]);
    // A work dir over a grid: 2 concurrencies x 2 batches, each a run of its own.
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        s(&work),
        "--warmup",
        "1",
        "--iters",
        "6",
        "--concurrency",
        "1,2",
        "--batch",
        "1,3",
        "--json",
    ]))
    .unwrap();
    let runs = v["runs"].as_array().unwrap();
    let grid: Vec<(u64, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["concurrency"].as_u64().unwrap(),
                r["batch"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(grid, [(1, 1), (1, 3), (2, 1), (2, 3)], "{v}");
    for r in runs {
        let rep = &r["ranked"][0]["report"];
        let b = r["batch"].as_u64().unwrap();
        assert_eq!(rep["batch"], b);
        assert_eq!(
            rep["input_shapes"][0][1][0], b,
            "--batch sets the first dim"
        );
        assert_eq!(rep["concurrency"], r["concurrency"]);
        assert_eq!(rep["iters"], 6);
        let calls = rep["throughput_per_s"].as_f64().unwrap();
        let samples = rep["samples_per_s"].as_f64().unwrap();
        assert!(
            (samples - calls * b as f64).abs() <= 1e-9 * samples.max(1.0),
            "{rep}"
        );
        // Resident memory is read from /proc on Linux: the process holds at least the model.
        assert!(rep["peak_rss_mb"].as_f64().unwrap() > 1.0, "{rep}");
    }
    assert!(v["backends"][0]["load_rss_mb"].as_f64().is_some(), "{v}");
    assert!(
        v["backends"][0]["deploy_ms"].is_null(),
        "a work dir is not deployed: {v}"
    );
    // --duration instead of --iters: calls until the time is up (at least one per thread).
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        s(&work),
        "--warmup",
        "1",
        "--duration",
        "0.3",
        "--json",
    ]))
    .unwrap();
    let n = j["iters"].as_u64().unwrap();
    assert!(n >= 1, "{j}");
    assert_eq!(j["latency_ms"]["p50"].as_f64().map(|x| x > 0.0), Some(true));
    // Bad settings name what to change.
    for (args, want) in [
        (vec!["--duration", "0"], "duration"),
        (vec!["--duration", "soon"], "seconds"),
        (vec!["--batch", "0"], "--batch"),
        (vec!["--concurrency", "1,0"], "--concurrency"),
        (vec!["--backends", "onnxruntime"], "deployed for tract"),
        (vec!["--threads", "2"], "--threads"),
    ] {
        let mut a = vec!["bench", s(&work)];
        a.extend(args);
        let (code, _, err) = run(&a);
        assert_ne!(code, 0, "{a:?}");
        assert!(err.contains(want), "{a:?}: {err}");
    }
}

#[test]
fn bench_batch_needs_a_dynamic_first_dim() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("fixed");
    // PyTorch's Conv2d export from the ONNX test data: input fixed to [2, 3, 7, 5] (a plain
    // backend config: no dynamic_axes).
    ok(&[
        "deploy",
        "configs/_base_/backends/tract.py",
        "tests/data/generated/onnx-backend/test_Conv2d/model.onnx",
        "--work-dir",
        s(&work),
    ]);
    let e = fails(&["bench", s(&work), "--batch", "4", "--iters", "2"]);
    assert!(
        e.contains("input") && e.contains("fixes it to 2") && e.contains("dynamic"),
        "{e}"
    );
    // The batch it already has is fine.
    ok(&["bench", s(&work), "--batch", "2", "--iters", "2"]);
}

/// Chromium for the report test: `CHROMIUM`, else Debian's /usr/bin/chromium (scripts/test.sh
/// installs it). Missing in CI is a failure.
fn chromium() -> Option<PathBuf> {
    let p = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: scripts/install-chromium.sh installs Debian's chromium",
        p.display()
    );
    eprintln!(
        "skipped: no chromium at {} (scripts/install-chromium.sh)",
        p.display()
    );
    None
}

/// Runs headless Chromium on `page` with `extra` arguments (flags from the machine notes: no
/// background networking on a closed network, a fresh profile).
fn headless(chrome: &Path, page: &Path, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn bench_ranks_three_engines_on_resnet_with_an_html_report_checked_in_chromium() {
    let need = ["tract", "onnxruntime", "openvino"];
    if need.iter().any(|b| !available(b)) {
        assert!(
            !need.iter().any(|b| required(b) && !available(b)),
            "a required backend is unavailable"
        );
        eprintln!("skipped: needs tract, onnxruntime and openvino");
        return;
    }
    let model = bench_models().join("resnet18.onnx");
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("report.html");
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        s(&model),
        "--backends",
        "tract,onnxruntime,openvino",
        "--threads",
        "2",
        "--warmup",
        "1",
        "--iters",
        "4",
        "--rounds",
        "2",
        "--concurrency",
        "1,2",
        "--batch",
        "1,2",
        "--report",
        s(&page),
        "--json",
    ]))
    .unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "{v}");
    for r in runs {
        let ranked = r["ranked"].as_array().unwrap();
        let mut names: Vec<&str> = ranked
            .iter()
            .map(|x| x["backend"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["onnxruntime", "openvino", "tract"], "{r}");
        let p50: Vec<f64> = ranked
            .iter()
            .map(|x| x["report"]["latency_ms"]["p50"].as_f64().unwrap())
            .collect();
        assert!(
            p50.windows(2).all(|w| w[0] <= w[1]),
            "ranked by p50: {p50:?}"
        );
        for x in ranked {
            // ResNet-18 at batch b: 1.81 G multiply-adds (torchvision) = 3.6 GFLOPs per sample.
            let f = x["report"]["flops_per_call"].as_f64().unwrap();
            let b = r["batch"].as_f64().unwrap();
            assert!((f / b / 1e9 - 3.64).abs() < 0.1, "{f}");
            assert!(x["deploy_ms"].as_f64().unwrap() > 0.0);
        }
    }
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing is fetched when the page is viewed.
    for fetch in ["<link", " src=", "url(", "@import"] {
        assert!(!html.contains(fetch), "the report loads '{fetch}'");
    }
    let Some(chrome) = chromium() else { return };
    // The DOM as Chromium built it: every chart is there, with the backends in its legend.
    let dom = headless(&chrome, &page, &["--dump-dom"]);
    for k in 0..4 {
        for chart in ["latency-ranges", "latency-cdf"] {
            let id = format!("id=\"{chart}-{k}\"");
            let at = dom.find(&id).unwrap_or_else(|| panic!("{id} missing"));
            let svg = &dom[at..at + dom[at..].find("</svg>").unwrap()];
            for b in ["tract", "onnxruntime", "openvino"] {
                assert!(svg.contains(b), "{chart}-{k} does not name {b}");
            }
            assert!(
                svg.contains("<path") || svg.contains("<polyline"),
                "{chart}-{k} is empty"
            );
        }
    }
    assert!(
        dom.contains("id=\"throughput\""),
        "the across-settings chart"
    );
    assert!(
        dom.contains("2 thread(s), batch 2"),
        "the settings are labelled"
    );
    assert!(dom.contains("bench-data"), "the numbers behind the page");
    // And it paints: a screenshot of the page is a real PNG of the window's size.
    let shot = tmp.path().join("report.png");
    headless(
        &chrome,
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1100,2000",
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (w, h) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (1100, 2000));
    assert!(
        png.len() > 50_000,
        "a blank page is a few KB: {} bytes",
        png.len()
    );
}

#[test]
fn bench_profile_ops_maps_each_engines_profile_to_onnx_operators() {
    let need = ["tract", "onnxruntime", "openvino"];
    if need.iter().any(|b| !available(b)) {
        assert!(
            !need.iter().any(|b| required(b)),
            "a required backend is unavailable"
        );
        return;
    }
    let model = bench_models().join("resnet18.onnx");
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        s(&model),
        "--backends",
        "tract,onnxruntime,openvino",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--profile-ops",
        "--profile-runs",
        "3",
        "--json",
    ]))
    .unwrap();
    let profiles = v["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 3, "{v}");
    for p in profiles {
        assert!(p["error"].is_null(), "{p}");
        assert_eq!(p["runs"], 3);
        let by = p["by_op_type"].as_array().unwrap();
        // Every engine's convolutions, whatever it calls them (OpenVINO's Convolution with the
        // BatchNormalization folded in, ONNX Runtime's fused NCHWc Conv, tract's OptMatMul),
        // count under the model's Conv, and they are most of ResNet-18's time.
        assert_eq!(by[0]["op_type"], "Conv", "{}: {by:?}", p["backend"]);
        let total: f64 = by.iter().map(|o| o["ms"].as_f64().unwrap()).sum();
        assert!(by[0]["ms"].as_f64().unwrap() > 0.5 * total, "{by:?}");
        assert!(!p["nodes"].as_array().unwrap().is_empty());
    }
    // A work dir: its engine's profile, in the plain output.
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    ok(&[
        "deploy",
        "configs/mmpretrain/classification_tract_dynamic.py",
        "tests/data/small-cnn.onnx",
        "--work-dir",
        s(&work),
    ]);
    let text = ok(&["bench", s(&work), "--iters", "2", "--profile-ops"]);
    assert!(
        text.contains("per-operator time") && text.contains("in operators"),
        "{text}"
    );
}

#[test]
fn bench_tune_tries_each_backends_knobs_and_writes_the_fastest_as_a_deploy_config() {
    let backends = if ort_available() {
        "tract,onnxruntime"
    } else {
        "tract"
    };
    let tmp = tempfile::tempdir().unwrap();
    let tuned = tmp.path().join("tuned.py");
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        "tests/data/small-cnn.onnx",
        "--backends",
        backends,
        "--tune",
        "--tune-out",
        s(&tuned),
        "--iters",
        "4",
        "--warmup",
        "1",
        "--json",
    ]))
    .unwrap();
    let ranked = v["runs"][0]["ranked"].as_array().unwrap();
    let labels: Vec<&str> = ranked
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    // tract: one and all threads; ONNX Runtime: threads x (optimisation level, execution mode).
    assert!(labels.contains(&"tract[threads=1]"), "{labels:?}");
    if backends.contains("onnxruntime") {
        assert!(
            labels.contains(&"onnxruntime[threads=1,opt=basic,mode=sequential]"),
            "{labels:?}"
        );
    }
    // The file is the winner's deploy config, in MMDeploy's form, and deploys.
    let text = std::fs::read_to_string(&tuned).unwrap();
    assert!(
        text.starts_with("# Written by `rdeploy bench --tune`"),
        "{text}"
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&ok(&["config", "print", "--json", s(&tuned)])).unwrap();
    let winner = labels[0];
    assert_eq!(
        cfg["backend_config"]["type"].as_str().unwrap(),
        &winner[..winner.find('[').unwrap()],
        "{text}"
    );
    let want_threads: u64 = winner
        .split("threads=")
        .nth(1)
        .and_then(|t| t.split([',', ']']).next())
        .unwrap()
        .parse()
        .unwrap();
    let threads = cfg["backend_config"]["common_config"]
        .as_object()
        .and_then(|c| {
            c.get("num_threads")
                .or_else(|| c.get("intra_op_num_threads"))
        })
        .and_then(serde_json::Value::as_u64);
    assert_eq!(threads, Some(want_threads), "{text}");
    ok(&[
        "deploy",
        s(&tuned),
        "tests/data/small-cnn.onnx",
        "--work-dir",
        s(&tmp.path().join("w")),
    ]);
}

#[test]
fn shape_hints_reach_every_engine_and_bad_output_paths_fail_before_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    // OpenVINO reports dynamic dims unnamed; the manifest's names make --shape batch=4 apply.
    let backends: Vec<&str> = ["tract", "onnxruntime", "openvino"]
        .into_iter()
        .filter(|b| available(b))
        .collect();
    for b in &backends {
        let work = tmp.path().join(b);
        ok(&[
            "deploy",
            &format!("configs/_base_/backends/{b}.py"),
            "tests/data/small-cnn.onnx",
            "--work-dir",
            s(&work),
        ]);
        let v: serde_json::Value = serde_json::from_str(&ok(&[
            "bench",
            s(&work),
            "--iters",
            "1",
            "--warmup",
            "0",
            "--shape",
            "batch=4",
            "--json",
        ]))
        .unwrap();
        assert_eq!(v["input_shapes"][0][1][0], 4, "{b}: {v}");
        let e = fails(&["bench", s(&work), "--iters", "1", "--shape", "bacth=4"]);
        assert!(
            e.contains("no input has a dim named 'bacth'") && e.contains("batch"),
            "{e}"
        );
    }
    // Output paths are checked before minutes of benchmarking or conformance cases.
    let started = std::time::Instant::now();
    let e = fails(&[
        "bench",
        "tests/data/small-cnn.onnx",
        "--backends",
        "tract",
        "--duration",
        "30",
        "--report",
        "/nonexistent-folder/r.html",
    ]);
    assert!(
        e.contains("--report") && e.contains("does not exist"),
        "{e}"
    );
    assert!(
        started.elapsed().as_secs() < 20,
        "failed only after the run"
    );
    let readme = tmp.path().join("README.md");
    std::fs::write(&readme, "no markers here\n").unwrap();
    let e = fails(&[
        "conformance",
        "--dir",
        "/nonexistent",
        "--readme",
        s(&readme),
    ]);
    assert!(e.contains("conformance:start"), "{e}");
}

#[test]
fn tract_folds_batchnorm_into_the_convolutions_and_the_config_can_say_no() {
    let tmp = tempfile::tempdir().unwrap();
    let model = bench_models().join("resnet18.onnx");
    let passes = |work: &Path| -> Vec<serde_json::Value> {
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(work.join("deploy.json")).unwrap())
                .unwrap();
        m["passes"].as_array().unwrap().clone()
    };
    let work = tmp.path().join("fold");
    ok(&[
        "deploy",
        "configs/_base_/backends/tract.py",
        s(&model),
        "--work-dir",
        s(&work),
    ]);
    let fold = passes(&work)
        .into_iter()
        .find(|p| p["name"] == "fold_batchnorm")
        .expect("tract asks for fold_batchnorm");
    // ResNet-18: one BatchNormalization after each of its 20 convolutions.
    assert_eq!(fold["details"]["folded"], 20, "{fold}");
    let cfg = tmp.path().join("nofold.py");
    std::fs::write(
        &cfg,
        "backend_config = dict(type='tract')\nrewrite_config = dict(disable=['fold_batchnorm'])\n",
    )
    .unwrap();
    let plain = tmp.path().join("plain");
    ok(&["deploy", s(&cfg), s(&model), "--work-dir", s(&plain)]);
    assert!(!passes(&plain).iter().any(|p| p["name"] == "fold_batchnorm"));
    // The folded model computes what the original does (independent reference: the original
    // on ONNX Runtime when it is here, else unfolded on tract).
    let reference = if ort_available() {
        "onnxruntime"
    } else {
        "tract"
    };
    let out = ok(&["compare", s(&work), "--backends", reference, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pass"], true, "{v}");
}

#[test]
fn folders_left_by_an_interrupted_run_are_removed_by_the_next() {
    let tmp = std::env::temp_dir();
    // A pid that is not running (above Linux's pid_max), and pid 1, which always is.
    let stale = tmp.join("rdeploy-bench-4294967-leftover");
    let live = tmp.join("rdeploy-bench-1-someone-elses");
    for d in [&stale, &live] {
        std::fs::create_dir_all(d.join("w")).unwrap();
    }
    ok(&[
        "bench",
        "tests/data/small-cnn.onnx",
        "--backends",
        "tract",
        "--iters",
        "1",
        "--warmup",
        "0",
    ]);
    assert!(!stale.exists(), "a dead run's folder is removed");
    assert!(live.exists(), "a running process's folder is kept");
    std::fs::remove_dir_all(&live).unwrap();
}
