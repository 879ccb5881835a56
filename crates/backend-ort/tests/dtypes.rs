//! ONNX Runtime on ONNX's own node test cases whose inputs or outputs are the element types
//! beyond the numeric basics: strings, bfloat16, the float8 types, float8e8m0, int4, uint4,
//! float4e2m1, int2 and uint2. The cases (model, inputs, expected outputs) are written by the `onnx` Python
//! package (`crates/conformance/dtype_cases.py`, run with `$VIRTUAL_ENV/bin/python` or `python3`),
//! so the reference is ONNX's, not rdeploy's: this checks rdeploy's `.pb` reading, its tensors
//! and its binding of every type to ONNX Runtime, end to end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_backend_ort::OrtBackend;
use rdeploy_conformance as conf;

/// Cases ONNX Runtime itself cannot load, with the reason.
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
    ("test_dequantizelinear_uint2", NO_OPSET_28),
    ("test_dequantizelinear_int2", NO_OPSET_28),
    ("test_quantizelinear_uint2", NO_OPSET_28),
    ("test_quantizelinear_int2", NO_OPSET_28),
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

#[test]
fn onnx_node_cases_of_every_new_dtype_match() {
    if !conf::backend_under_test(&OrtBackend) {
        return;
    }
    let r = conf::dtype_suite(&OrtBackend);
    let mut problems: Vec<String> = r.failed.clone();
    for refused in &r.refused {
        let name = refused.split(':').next().unwrap_or("");
        if !KNOWN.iter().any(|(n, _)| *n == name) {
            problems.push(refused.clone());
        }
    }
    for (name, why) in KNOWN {
        // Environment-dependent (a locale being installed): passing is fine.
        if *why != NO_LOCALE && r.passed.iter().any(|p| p == name) {
            problems.push(format!("{name}: passes now; drop it from KNOWN"));
        }
    }
    assert!(
        r.passed.len() >= 170,
        "only {} cases matched",
        r.passed.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
