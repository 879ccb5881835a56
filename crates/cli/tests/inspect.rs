//! `rdeploy inspect`: FLOPs and multiply-adds of real architectures against independent counts.
//!
//! Sources: torchvision's model tables (https://pytorch.org/vision/stable/models.html, the
//! "GFLOPS" column, which counts multiply-adds of convolutions and linear layers at 1x3x224x224):
//! ResNet-50 4.09, ResNet-18 1.81, SqueezeNet 1.1 0.35. The models are built with torchvision's
//! layouts by scripts/make-bench-models.py (random weights; counts do not depend on them). The
//! Transformer-style block's count is the closed formula of its matrix products, written below.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"))
        .join("bin/python")
}

/// The benchmark models and a Transformer-style block, made once per run (None: no venv with
/// onnx here; a failure instead when RDEPLOY_REQUIRE_BACKENDS is set, as in CI).
fn models() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspect-models");
        std::fs::create_dir_all(&dir).unwrap();
        let made = std::process::Command::new(python())
            .arg(root().join("scripts/make-bench-models.py"))
            .arg(&dir)
            .output();
        let transformer = r#"
import sys, numpy as np, onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh
S, D, F = 128, 512, 2048
rng = np.random.default_rng(0)
w = lambda n, *s: nh.from_array((rng.standard_normal(s) * 0.02).astype(np.float32), n)
nodes = [h.make_node("MatMul", ["x", "wq"], ["q"]), h.make_node("MatMul", ["x", "wk"], ["k"]),
         h.make_node("MatMul", ["x", "wv"], ["v"]), h.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
         h.make_node("MatMul", ["q", "kt"], ["s"]), h.make_node("Softmax", ["s"], ["p"], axis=-1),
         h.make_node("MatMul", ["p", "v"], ["a"]), h.make_node("MatMul", ["a", "wo"], ["o"]),
         h.make_node("Add", ["o", "x"], ["r"]), h.make_node("MatMul", ["r", "w1"], ["f1"]),
         h.make_node("Relu", ["f1"], ["g"]), h.make_node("MatMul", ["g", "w2"], ["y"])]
g = h.make_graph(nodes, "block", [h.make_tensor_value_info("x", T.FLOAT, ["batch", S, D])],
                 [h.make_tensor_value_info("y", T.FLOAT, ["batch", S, D])],
                 [w("wq", D, D), w("wk", D, D), w("wv", D, D), w("wo", D, D), w("w1", D, F), w("w2", F, D)])
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)]); m.ir_version = 8
onnx.checker.check_model(m); onnx.save(m, sys.argv[1])
"#;
        let t = std::process::Command::new(python())
            .args(["-c", transformer])
            .arg(dir.join("transformer.onnx"))
            .output();
        match (made, t) {
            (Ok(a), Ok(b)) if a.status.success() && b.status.success() => Some(dir),
            (a, b) => {
                let why = format!("{a:?} {b:?}");
                let required = std::env::var("RDEPLOY_REQUIRE_BACKENDS").unwrap_or_default();
                assert!(
                    required.trim().is_empty(),
                    "cannot make the models (need the venv's onnx): {why}"
                );
                eprintln!("skipping: cannot make the models: {why}");
                None
            }
        }
    })
    .as_deref()
}

fn inspect(model: &Path, extra: &[&str]) -> serde_json::Value {
    let o = Command::cargo_bin("rdeploy")
        .unwrap()
        .arg("inspect")
        .arg(model)
        .args(extra)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn within(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want
}

#[test]
fn cnn_multiply_adds_match_torchvision_within_2_percent() {
    let Some(dir) = models() else { return };
    for (model, gmacs) in [("resnet50", 4.09), ("resnet18", 1.81), ("squeezenet", 0.35)] {
        let r = inspect(&dir.join(format!("{model}.onnx")), &[]);
        let c = &r["compute"];
        assert!(c["unknown"].as_array().unwrap().is_empty(), "{model}: {c}");
        let got = c["macs"].as_f64().unwrap() / 1e9;
        assert!(
            within(got, gmacs, 0.02),
            "{model}: {got:.3} G multiply-adds, torchvision says {gmacs}"
        );
        // FLOPs: twice the multiply-adds plus the element-wise work (BN, ReLU, pooling, bias).
        let flops = c["flops"].as_f64().unwrap() / 1e9;
        assert!(
            flops > 2.0 * got && flops < 2.1 * got,
            "{model}: {flops} GFLOPs"
        );
    }
    // Batch 4 is four times the work.
    let one = inspect(&dir.join("resnet18.onnx"), &[])["compute"]["macs"]
        .as_u64()
        .unwrap();
    let four = inspect(&dir.join("resnet18.onnx"), &["--shape", "batch=4"])["compute"]["macs"]
        .as_u64()
        .unwrap();
    assert_eq!(four, 4 * one);
}

#[test]
fn transformer_block_matches_its_formula() {
    let Some(dir) = models() else { return };
    let r = inspect(&dir.join("transformer.onnx"), &["--shape", "batch=2"]);
    let (b, s, d, f) = (2u64, 128u64, 512u64, 2048u64);
    // Q, K, V and output projections, Q.K^T and P.V, and the two feed-forward products.
    let macs = b * (4 * s * d * d + 2 * s * s * d + 2 * s * d * f);
    let c = &r["compute"];
    assert_eq!(c["by_op"]["MatMul"]["macs"].as_u64().unwrap(), macs, "{c}");
    assert_eq!(c["by_op"]["MatMul"]["nodes"], 8);
    assert_eq!(
        c["by_op"]["Softmax"]["flops"].as_u64().unwrap(),
        3 * b * s * s
    );
    assert_eq!(r["parameters"].as_u64().unwrap(), 4 * d * d + 2 * d * f);
    assert_eq!(r["input_shapes"][0][1], serde_json::json!([2, 128, 512]));
}

#[test]
fn a_file_that_is_not_onnx_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, b"not a model").unwrap();
    let o = Command::cargo_bin("rdeploy")
        .unwrap()
        .arg("inspect")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.onnx"), "{err}");
}
