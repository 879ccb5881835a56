//! ONNX Runtime on ONNX's own node test cases whose inputs or outputs are the element types
//! beyond the numeric basics: strings, bfloat16, the float8 types, float8e8m0, int4, uint4 and
//! float4e2m1. The cases (model, inputs, expected outputs) are written by the `onnx` Python
//! package (`dtype_cases.py` beside this file, run with `$VIRTUAL_ENV/bin/python` or `python3`),
//! so the reference is ONNX's, not rdeploy's: this checks rdeploy's `.pb` reading, its tensors
//! and its binding of every type to ONNX Runtime, end to end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_backend_ort::OrtBackend;
use rdeploy_conformance as conf;
use rdeploy_core::DType;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Cases ONNX Runtime itself cannot run or disagrees with ONNX's reference on, with the reason
/// (what rdeploy can check there is that the types reach the engine and come back).
const KNOWN: &[(&str, &str)] = &[];

fn python() -> PathBuf {
    match std::env::var_os("VIRTUAL_ENV") {
        Some(v) => Path::new(&v).join("bin/python"),
        None => PathBuf::from("python3"),
    }
}

/// Writes the cases into `dir`; returns their names.
fn generate(dir: &Path) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dtype_cases.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}); set VIRTUAL_ENV to a Python environment with the onnx package", python().display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Tolerance per output dtype: exact for integers, booleans and strings (and for casts, whose
/// results are exact); for computed floats, a few steps of the type's last mantissa bit.
fn tolerance(d: DType, name: &str) -> (f64, f64) {
    let computed = !name.starts_with("test_cast") && !name.contains("quantizelinear");
    match d {
        _ if !computed => (0.0, 0.0),
        DType::F32 | DType::F64 => (1e-3, 1e-4),
        DType::F16 => (1e-2, 1e-3),
        DType::BF16 => (2e-2, 2e-2),
        _ => (0.0, 0.0),
    }
}

#[test]
fn onnx_node_cases_of_every_new_dtype_match() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let dir = conf::tempdir("onnxruntime", "dtypes");
    let names = generate(&dir);
    assert!(names.len() > 100, "only {} cases were written", names.len());
    let (mut passed, mut failures, mut known) = (Vec::new(), Vec::new(), Vec::new());
    for name in &names {
        let case = conf::load_case(&dir.join(name));
        let out_dtype = case.data_sets[0].outputs[0].dtype();
        let (rtol, atol) = tolerance(out_dtype, name);
        let work = dir.join(format!("{name}-work"));
        std::fs::create_dir_all(&work).unwrap();
        let result = conf::run_case(&OrtBackend, &case, &work, rtol, atol);
        match (result, KNOWN.iter().find(|(n, _)| n == name)) {
            (Ok(_), None) => passed.push(name.clone()),
            (Ok(_), Some(_)) => failures.push(format!("{name}: passes now; drop it from KNOWN")),
            (Err(e), Some((_, why))) => known.push(format!("{name}: {why} ({e})")),
            (Err(e), None) => failures.push(format!("{name}: {e}")),
        }
    }
    eprintln!("passed {}: {}", passed.len(), passed.join(" "));
    eprintln!("known {}:\n{}", known.len(), known.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
