//! `rdeploy compare` against expected outputs (ONNX's own test data) and against another model
//! (a copy with one weight changed by `change_one_weight` below), per-output tolerances, and
//! the statistics it reports (cosine, worst element, top-1/top-5).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use assert_cmd::Command;
use prost::Message;
use rdeploy::onnx::proto::ModelProto;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rdeploy(args: &[&str]) -> (i32, String, String) {
    let o = Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(root())
        .env("RDEPLOY_LOG", "warn")
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A copy of `model` with element 0 of the float initializer `name` changed by `delta`.
fn change_one_weight(model: &Path, name: &str, delta: f32, out: &Path) {
    let mut m = ModelProto::decode(std::fs::read(model).unwrap().as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let t = g
        .initializer
        .iter_mut()
        .find(|t| t.name() == name)
        .unwrap_or_else(|| panic!("no initializer {name}"));
    if let Some(raw) = t.raw_data.as_mut().filter(|r| r.len() >= 4) {
        let v = f32::from_le_bytes(raw[..4].try_into().unwrap()) + delta;
        raw[..4].copy_from_slice(&v.to_le_bytes());
    } else {
        t.float_data[0] += delta;
    }
    std::fs::write(out, m.encode_to_vec()).unwrap();
}

/// Two outputs from two weights: `y1 = x . w1` and `y2 = softmax(x . w2)` (rank 2, [4, 10]).
fn two_branch_model(dir: &Path) -> PathBuf {
    use rdeploy::onnx::proto::{GraphProto, NodeProto, OperatorSetIdProto};
    use rdeploy::{Dim, Tensor};
    let w = |name: &str, seed: u32| {
        let data: Vec<f32> = (0..16 * 10)
            .map(|i| {
                ((((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 1000.0) - 0.5
            })
            .collect();
        rdeploy::onnx::tensor_to_proto(name, &Tensor::from_shape_vec(&[16, 10], data).unwrap())
    };
    let node = |op: &str, i: &[&str], o: &str| NodeProto {
        op_type: Some(op.into()),
        input: i.iter().map(|s| s.to_string()).collect(),
        output: vec![o.into()],
        ..Default::default()
    };
    let vi = |name: &str, dims: &[u64]| {
        rdeploy::passes::build::tensor_value_info(
            name,
            1,
            Some(&dims.iter().map(|&d| Dim::Fixed(d)).collect::<Vec<_>>()),
        )
    };
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            name: Some("two".into()),
            node: vec![
                node("MatMul", &["x", "w1"], "y1"),
                node("MatMul", &["x", "w2"], "z"),
                node("Softmax", &["z"], "y2"),
            ],
            input: vec![vi("x", &[4, 16])],
            output: vec![vi("y1", &[4, 10]), vi("y2", &[4, 10])],
            initializer: vec![w("w1", 1), w("w2", 2)],
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = dir.join("two.onnx");
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

#[test]
fn expected_outputs_from_onnx_test_data() {
    let case = root().join("tests/data/generated/onnx-backend/test_Conv2d");
    let model = case.join("model.onnx");
    let set = case.join("test_data_set_0");
    // Inputs and expected outputs from the data set: passes at the float32 defaults.
    let (code, out, err) = rdeploy(&[
        "compare",
        s(&model),
        "--backends",
        "tract",
        "--expected",
        s(&set),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["reference"], "expected");
    let d = &v["outputs"][0];
    assert_eq!(
        (d["rtol"].as_f64(), d["atol"].as_f64()),
        (Some(1e-3), Some(1e-4))
    );
    assert!(d["cosine"].as_f64().unwrap() > 0.999_999, "{d}");
    assert_eq!(d["worst"]["index"].as_array().unwrap().len(), 4, "{d}");
    // No tolerance at all: float32 sums in another order differ, and the failure names it.
    let (code, out, err) = rdeploy(&[
        "compare",
        s(&model),
        "--backends",
        "tract",
        "--expected",
        s(&set),
        "--rtol",
        "0",
        "--atol",
        "0",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL") && err.contains("of tract"),
        "{out}\n{err}"
    );
}

#[test]
fn against_a_model_with_one_weight_changed_names_the_output_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let model = two_branch_model(dir.path());
    // The model against itself passes, on two backends.
    let (code, _, err) = rdeploy(&[
        "compare",
        s(&model),
        "--backends",
        "tract,onnxruntime",
        "--against",
        s(&model),
    ]);
    assert_eq!(code, 0, "{err}");
    // w2 changed: y2 fails, y1 (w1 alone) passes.
    let changed = dir.path().join("changed.onnx");
    change_one_weight(&model, "w2", 0.5, &changed);
    let (code, out, err) = rdeploy(&[
        "compare",
        s(&model),
        "--backends",
        "tract",
        "--against",
        s(&changed),
        "--json",
    ]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let by: std::collections::HashMap<&str, &serde_json::Value> = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["output"].as_str().unwrap(), d))
        .collect();
    assert_eq!(by["y1"]["pass"], true, "{v}");
    assert_eq!(by["y2"]["pass"], false, "{v}");
    assert!(err.contains("'y2'") && !err.contains("'y1'"), "{err}");
    // Row 0 of x . w2 moved: the worst element is in row... whichever rows use x[:, 0]; the
    // index has the output's rank, and scores stay mostly in agreement.
    assert_eq!(by["y2"]["worst"]["index"].as_array().unwrap().len(), 2);
    assert!(by["y2"]["top1_agreement"].as_f64().is_some());
    // --bisect names the node that consumes the changed weight.
    let (code, out, _) = rdeploy(&[
        "compare",
        s(&model),
        "--backends",
        "tract",
        "--against",
        s(&changed),
        "--bisect",
        "--json",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let b = &v["bisect"];
    assert_eq!(b["op_type"], "MatMul", "{b}");
    assert_eq!(b["inputs"], serde_json::json!(["x", "w2"]), "{b}");
    assert_eq!(b["diff"]["output"], "z", "{b}");
    // A per-output tolerance wide enough lets y2 pass.
    let (code, _, err) = rdeploy(&[
        "compare",
        s(&model),
        "--backends",
        "tract",
        "--against",
        s(&changed),
        "--tol",
        "y2=1,1",
    ]);
    assert_eq!(code, 0, "{err}");
    // A malformed --tol is a usage error naming the form.
    let (code, _, err) = rdeploy(&["compare", s(&model), "--backends", "tract", "--tol", "y2=x"]);
    assert_eq!(code, 2);
    assert!(err.contains("NAME=RTOL,ATOL"), "{err}");
}

#[test]
fn rank_2_scores_report_top1_and_top5_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let model = two_branch_model(dir.path());
    let (code, out, err) = rdeploy(&[
        "compare",
        s(&model),
        "--backends",
        "tract,onnxruntime",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for d in v["outputs"].as_array().unwrap() {
        assert_eq!(d["top1_agreement"], 1.0, "{d}");
        assert_eq!(d["top5_agreement"], 1.0, "{d}");
        assert_eq!(d["nan_mismatches"], 0);
    }
}

#[test]
fn bisect_finds_the_node_of_a_changed_weight_deep_in_a_cnn() {
    let dir = tempfile::tempdir().unwrap();
    let model = root().join("tests/data/small-cnn.onnx");
    // The second convolution's weight: four nodes before it agree.
    let changed = dir.path().join("changed.onnx");
    change_one_weight(&model, "conv2.w", 3.0, &changed);
    for backends in ["tract", "onnxruntime"] {
        let (code, out, err) = rdeploy(&[
            "compare",
            s(&model),
            "--backends",
            backends,
            "--against",
            s(&changed),
            "--bisect",
            "--json",
        ]);
        assert_eq!(code, 1, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(err.contains("'probs'"), "{err}");
        let b = &v["bisect"];
        assert_eq!(b["op_type"], "Conv", "{b}");
        assert_eq!(
            b["inputs"],
            serde_json::json!(["p1", "conv2.w", "conv2.b"]),
            "{b}"
        );
        assert_eq!(b["nodes_checked"], 3, "{b}");
    }
}

#[test]
fn a_work_dir_is_the_reference_and_another_work_dir_runs_as_deployed() {
    let dir = tempfile::tempdir().unwrap();
    let model = root().join("tests/data/small-cnn.onnx");
    let deploy = |m: &Path, w: &Path| {
        let (code, _, err) = rdeploy(&[
            "deploy",
            "configs/mmpretrain/classification_tract_dynamic.py",
            s(m),
            "--work-dir",
            s(w),
        ]);
        assert_eq!(code, 0, "{err}");
    };
    let work = dir.path().join("w");
    deploy(&model, &work);
    // The work dir's own engine is the reference; its end2end.onnx runs on the others.
    let (code, out, err) = rdeploy(&["compare", s(&work), "--backends", "tract", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["reference"], "w (tract)", "{v}");
    assert_eq!(v["outputs"][0]["backend"], "tract");
    // Against a work dir of the model with one weight changed: the output it feeds fails, and
    // --bisect names the node that consumes that weight.
    let changed = dir.path().join("changed.onnx");
    change_one_weight(&model, "conv2.w", 3.0, &changed);
    let other = dir.path().join("w2");
    deploy(&changed, &other);
    let (code, out, err) = rdeploy(&[
        "compare",
        s(&work),
        "--against",
        s(&other),
        "--bisect",
        "--json",
    ]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["outputs"][0]["backend"], "w2 (tract)", "{v}");
    assert_eq!(v["outputs"][0]["pass"], false, "{v}");
    assert_eq!(v["bisect"]["inputs"][1], "conv2.w", "{v}");
    // A work dir alone has nothing to compare with.
    let (code, _, err) = rdeploy(&["compare", s(&work)]);
    assert_eq!(code, 1);
    assert!(err.contains("--backends"), "{err}");
}

/// Whether onnxruntime and openvino are here (a failure instead when CI requires them).
fn engines_ready() -> bool {
    let (_, out, _) = rdeploy(&["check-env", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let missing: Vec<&str> = ["onnxruntime", "openvino"]
        .into_iter()
        .filter(|b| {
            !v["backends"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x["name"] == *b && x["available"] == true)
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var("RDEPLOY_REQUIRE_BACKENDS").unwrap_or_default();
    assert!(
        !missing
            .iter()
            .any(|m| required.split(',').any(|r| r.trim() == *m)),
        "{missing:?} required (RDEPLOY_REQUIRE_BACKENDS) but unavailable"
    );
    eprintln!("skipping: {missing:?} unavailable");
    false
}

#[test]
fn ten_real_models_agree_across_the_three_engines_at_default_tolerances() {
    if !engines_ready() {
        return;
    }
    let bench = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare-models");
    let python = std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"))
        .join("bin/python");
    let made = std::process::Command::new(python)
        .arg(root().join("scripts/make-bench-models.py"))
        .arg(&bench)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let g = root().join("tests/data/generated");
    let models: Vec<(PathBuf, &str)> = vec![
        (bench.join("resnet18.onnx"), "batch=1"),
        (bench.join("resnet50.onnx"), "batch=1"),
        (bench.join("squeezenet.onnx"), "batch=2"),
        (bench.join("inception.onnx"), "batch=1"),
        (bench.join("densenet121.onnx"), "batch=1"),
        (g.join("realworld/ppocr-cls.onnx"), "x:2x3x48x192"),
        (g.join("realworld/ppocr-det.onnx"), "x:1x3x96x160"),
        (g.join("realworld/ppocr-rec.onnx"), "x:1x3x48x320"),
        (root().join("tests/data/small-cnn.onnx"), "batch=3"),
        (g.join("mlp/model.onnx"), "batch=4"),
    ];
    let mut failures = Vec::new();
    for (model, shape) in &models {
        let (code, out, err) = rdeploy(&[
            "compare",
            s(model),
            "--backends",
            "onnxruntime,tract,openvino",
            "--shape",
            shape,
            "--json",
        ]);
        if code != 0 {
            failures.push(format!("{}: {err}\n{out}", model.display()));
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["outputs"].as_array().unwrap().len() % 2, 0, "{v}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
