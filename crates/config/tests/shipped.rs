//! Every deploy config shipped in `configs/` loads, names a backend and has well-typed
//! onnx_config and model_inputs.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use rdeploy_config::Config;
use std::path::{Path, PathBuf};

fn py_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            py_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "py") {
            out.push(p);
        }
    }
}

#[test]
fn shipped_configs_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    py_files(&root.join("configs"), &mut files);
    assert!(files.len() >= 15, "{files:?}");
    let mut backends = std::collections::BTreeSet::new();
    for f in &files {
        let c = Config::from_file(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        c.onnx_config()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        c.model_inputs()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        // Every file but the shared onnx_config and codebase bases names its backend.
        if let Ok(b) = c.backend_type() {
            backends.insert(b);
        }
    }
    for b in ["tract", "onnxruntime", "openvino"] {
        assert!(backends.contains(b), "no config for {b}: {backends:?}");
    }
    let ov = Config::from_file(
        &root.join("configs/mmpretrain/classification_openvino_dynamic-224x224.py"),
    )
    .unwrap();
    let mi = ov.model_inputs().unwrap();
    assert_eq!(mi.len(), 1);
    let j = ov.to_json();
    assert_eq!(
        j["backend_config"]["model_inputs"][0]["opt_shapes"]["input"],
        serde_json::json!([1, 3, 224, 224])
    );
    assert_eq!(j["onnx_config"]["input_shape"], serde_json::Value::Null);
    assert_eq!(j["onnx_config"]["dynamic_axes"]["input"]["0"], "batch");
}
