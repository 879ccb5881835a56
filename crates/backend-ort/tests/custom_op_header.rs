//! The C declarations of `examples/ort-custom-op/ort_c_api_subset.h` (a prefix of ONNX
//! Runtime's `OrtApi` with placeholder slots, `OrtCustomOp` as of API 17) against the `ort-sys`
//! bindings of the real header: every offset and enum value `myops.c` relies on must agree.
//! Needs no ONNX Runtime.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use ort::sys::{
    ONNXTensorElementDataType, OrtApi, OrtApiBase, OrtCustomOp,
    OrtCustomOpInputOutputCharacteristic, OrtErrorCode, OrtMemType,
};
use std::collections::BTreeMap;
use std::mem::offset_of;

#[test]
fn custom_op_header_matches_ort_sys() {
    let exe = rdeploy_conformance::custom_ops::layout_check();
    let out = std::process::Command::new(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(out.status.success(), "{} failed", exe.display());
    let c: BTreeMap<String, i64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();
    macro_rules! offsets {
        ($ty:ident: $($f:ident),+) => {
            vec![$((format!("{}.{}", stringify!($ty), stringify!($f)), offset_of!($ty, $f) as i64)),+]
        };
    }
    let mut want: Vec<(String, i64)> = offsets!(OrtApi: CreateStatus, CreateCustomOpDomain,
        CustomOpDomain_Add, AddCustomOpDomain, GetTensorMutableData, GetDimensionsCount,
        GetDimensions, GetTensorShapeElementCount, GetTensorTypeAndShape,
        KernelInfoGetAttribute_float, KernelContext_GetInput, KernelContext_GetOutput,
        ReleaseStatus, ReleaseTensorTypeAndShapeInfo, ReleaseCustomOpDomain);
    want.extend(offsets!(OrtApiBase: GetApi, GetVersionString));
    want.extend(
        offsets!(OrtCustomOp: version, CreateKernel, GetName, GetExecutionProviderType,
        GetInputType, GetInputTypeCount, GetOutputType, GetOutputTypeCount, KernelCompute,
        KernelDestroy, GetInputCharacteristic, GetOutputCharacteristic, GetInputMemoryType,
        GetVariadicInputMinArity, GetVariadicInputHomogeneity, GetVariadicOutputMinArity,
        GetVariadicOutputHomogeneity, CreateKernelV2, KernelComputeV2, InferOutputShapeFn,
        GetStartVersion, GetEndVersion),
    );
    want.extend([
        ("enum.ORT_FAIL".to_string(), OrtErrorCode::ORT_FAIL as i64),
        (
            "enum.ORT_INVALID_ARGUMENT".to_string(),
            OrtErrorCode::ORT_INVALID_ARGUMENT as i64,
        ),
        (
            "enum.ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT".to_string(),
            ONNXTensorElementDataType::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT as i64,
        ),
        (
            "enum.INPUT_OUTPUT_REQUIRED".to_string(),
            OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_REQUIRED as i64,
        ),
        (
            "enum.OrtMemTypeDefault".to_string(),
            OrtMemType::OrtMemTypeDefault as i64,
        ),
    ]);
    for (name, offset) in &want {
        assert_eq!(
            c.get(name),
            Some(offset),
            "{name}: the C header gives {:?}, ort-sys {offset}",
            c.get(name)
        );
    }
    assert_eq!(
        c.len(),
        want.len(),
        "layout_check prints fields this test does not compare: {:?}",
        c.keys()
            .filter(|k| !want.iter().any(|(w, _)| w == *k))
            .collect::<Vec<_>>()
    );
}
