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
const KNOWN: &[(&str, &str)] = &[
    // ONNX Runtime has no CPU kernel for these ops at the opset ONNX's newest tests use, or for
    // these types at all: the model fails to load, in Python onnxruntime too.
    ("test_attention_4d_causal_bf16", NO_BF16_KERNELS),
    ("test_attention_4d_causal_bf16_expanded", NO_BF16_KERNELS),
    ("test_attention_4d_padded_kv_bf16", NO_BF16_KERNELS),
    ("test_attention_4d_padded_kv_bf16_expanded", NO_BF16_KERNELS),
    ("test_attention_4d_causal_padded_kv_bf16", NO_BF16_KERNELS),
    (
        "test_attention_4d_causal_padded_kv_bf16_expanded",
        NO_BF16_KERNELS,
    ),
    ("test_attention_4d_attn_mask_causal_bf16", NO_BF16_KERNELS),
    (
        "test_attention_4d_attn_mask_causal_bf16_expanded",
        NO_BF16_KERNELS,
    ),
    ("test_attention_3d_causal_bf16", NO_BF16_KERNELS),
    ("test_attention_3d_causal_bf16_expanded", NO_BF16_KERNELS),
    ("test_celu_bfloat16_expanded", NO_BF16_KERNELS),
    ("test_cast_FLOAT4E2M1_to_FLOAT", NO_FLOAT4_CAST),
    ("test_cast_FLOAT4E2M1_to_FLOAT16", NO_FLOAT4_CAST),
    ("test_cast_FLOAT_to_FLOAT4E2M1", NO_FLOAT4_CAST),
    ("test_cast_FLOAT16_to_FLOAT4E2M1", NO_FLOAT4_CAST),
    ("test_castlike_FLOAT4E2M1_to_FLOAT", NO_FLOAT4_CAST),
    ("test_castlike_FLOAT4E2M1_to_FLOAT_expanded", NO_FLOAT4_CAST),
    ("test_castlike_FLOAT4E2M1_to_FLOAT16", NO_FLOAT4_CAST),
    (
        "test_castlike_FLOAT4E2M1_to_FLOAT16_expanded",
        NO_FLOAT4_CAST,
    ),
    ("test_castlike_FLOAT_to_FLOAT4E2M1", NO_FLOAT4_CAST),
    ("test_castlike_FLOAT_to_FLOAT4E2M1_expanded", NO_FLOAT4_CAST),
    ("test_castlike_FLOAT16_to_FLOAT4E2M1", NO_FLOAT4_CAST),
    (
        "test_castlike_FLOAT16_to_FLOAT4E2M1_expanded",
        NO_FLOAT4_CAST,
    ),
    ("test_dequantizelinear_e4m3fn", NO_OPSET_28),
    ("test_dequantizelinear_e4m3fn_float16", NO_OPSET_28),
    ("test_dequantizelinear_e4m3fn_zero_point", NO_OPSET_28),
    ("test_dequantizelinear_e5m2", NO_OPSET_28),
    ("test_dequantizelinear_uint4", NO_OPSET_28),
    ("test_dequantizelinear_int4", NO_OPSET_28),
    ("test_dequantizelinear_float4e2m1", NO_OPSET_28),
    ("test_quantizelinear_e4m3fn", NO_OPSET_28),
    ("test_quantizelinear_e5m2", NO_OPSET_28),
    ("test_quantizelinear_uint4", NO_OPSET_28),
    ("test_quantizelinear_int4", NO_OPSET_28),
    ("test_quantizelinear_float4e2m1", NO_OPSET_28),
    ("test_onehot_with_bfloat16_values", NO_OPSET_28),
    // A machine without the en_US.UTF-8 locale: ONNX Runtime's StringNormalizer needs it for
    // case changes ("install necessary language-pack"); the cases that keep case pass.
    (
        "test_strnormalizer_export_monday_casesensintive_lower",
        NO_LOCALE,
    ),
    (
        "test_strnormalizer_export_monday_casesensintive_upper",
        NO_LOCALE,
    ),
    ("test_strnormalizer_export_monday_empty_output", NO_LOCALE),
    (
        "test_strnormalizer_export_monday_insensintive_upper_twodim",
        NO_LOCALE,
    ),
];
const NO_BF16_KERNELS: &str =
    "ONNX Runtime's CPU provider has no bfloat16 kernel for Add/Mul/Div/Expand";
const NO_FLOAT4_CAST: &str = "ONNX Runtime's CPU Cast has no float4e2m1 kernel";
const NO_OPSET_28: &str = "ONNX Runtime has no kernel for this op at opset 28 (onnx 1.23's tests)";
const NO_LOCALE: &str = "ONNX Runtime's StringNormalizer needs the en_US.UTF-8 locale";

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
            // Environment-dependent (a locale being installed): passing is fine.
            (Ok(_), Some((_, why))) if *why == NO_LOCALE => passed.push(name.clone()),
            (Ok(_), Some(_)) => failures.push(format!("{name}: passes now; drop it from KNOWN")),
            (Err(e), Some((_, why))) if e.contains("ONNX Runtime cannot load it") => {
                known.push(format!("{name}: {why}"))
            }
            (Err(e), _) => failures.push(format!("{name}: {e}")),
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
