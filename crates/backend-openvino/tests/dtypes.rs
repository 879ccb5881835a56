//! OpenVINO on ONNX's own node test cases of the types beyond the numeric basics (see
//! `rdeploy_conformance::dtype_suite`). OpenVINO's ONNX frontend refuses many of them (strings,
//! the float8 FNUZ variants, ops without kernels for these types); what it loads must give
//! ONNX's outputs, which checks rdeploy's bf16, float8, e8m0 and packed 4-bit tensors there
//! (decoding casts from every one of them match; see the cases below for where OpenVINO's own
//! conversions differ from ONNX's).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_backend_openvino::OpenVinoBackend;
use rdeploy_conformance as conf;

/// Case name prefixes whose outputs OpenVINO computes otherwise than ONNX, with the reason.
/// These are the engine's conversions, not rdeploy's: the same types decode exactly in the
/// cases that cast them back to float.
const DIFFERS: &[(&str, &str)] = &[
    (
        "test_cast_FLOAT_to_FLOAT8E",
        "OpenVINO ignores Cast's saturate=1: out of range gives inf/NaN, not the largest value",
    ),
    ("test_cast_FLOAT16_to_FLOAT8E", "as above (saturate)"),
    ("test_castlike_FLOAT_to_FLOAT8E", "as above (saturate)"),
    ("test_castlike_FLOAT16_to_FLOAT8E", "as above (saturate)"),
    (
        "test_cast_FLOAT_to_FLOAT4E2M1",
        "OpenVINO's float4 conversion of NaN/-0 differs from ONNX's",
    ),
    ("test_cast_FLOAT16_to_FLOAT4E2M1", "as above (float4)"),
    ("test_castlike_FLOAT_to_FLOAT4E2M1", "as above (float4)"),
    ("test_castlike_FLOAT16_to_FLOAT4E2M1", "as above (float4)"),
    (
        "test_cast_e8m0_FLOAT",
        "OpenVINO rounds to nearest where ONNX Cast's default round_mode is up",
    ),
    (
        "test_attention_4d_causal_padded_kv_bf16_expanded",
        "OpenVINO's bf16 softmax over a fully masked row gives NaN where ONNX gives 0",
    ),
];

#[test]
fn onnx_node_cases_it_loads_match() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    let r = conf::dtype_suite(&OpenVinoBackend);
    eprintln!(
        "refused by OpenVINO ({}):\n{}",
        r.refused.len(),
        r.refused.join("\n")
    );
    let unexplained: Vec<&String> = r
        .failed
        .iter()
        .filter(|f| {
            // rdeploy's OpenVINO binding takes no 0-d inputs yet (said in the error).
            !f.contains("0-d (scalar)") && !DIFFERS.iter().any(|(p, _)| f.starts_with(p))
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "{}",
        unexplained
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        r.passed.len() >= 80,
        "only {} cases matched",
        r.passed.len()
    );
}

/// An OpenVINO IR model (written by `openvino.save_model`, OpenVINO 2026.4) that converts a
/// `u2[5]` input `x` to `u8` (output `y`) and a `u8[5]` input `z` to `u2` (output `w`).
/// OpenVINO's ONNX frontend reads no UINT2, so u2 reaches OpenVINO only through IR.
const U2_IR: &str = r#"<?xml version="1.0"?>
<net name="u2" version="11">
	<layers>
		<layer id="0" name="x" type="Parameter" version="opset1">
			<data shape="5" element_type="u2" />
			<output><port id="0" precision="U2" names="x"><dim>5</dim></port></output>
		</layer>
		<layer id="1" name="z" type="Parameter" version="opset1">
			<data shape="5" element_type="u8" />
			<output><port id="0" precision="U8" names="z"><dim>5</dim></port></output>
		</layer>
		<layer id="2" name="Convert_4" type="Convert" version="opset1">
			<data destination_type="u2" />
			<input><port id="0" precision="U8"><dim>5</dim></port></input>
			<output><port id="1" precision="U2" names="w"><dim>5</dim></port></output>
		</layer>
		<layer id="3" name="Convert_3" type="Convert" version="opset1">
			<data destination_type="u8" />
			<input><port id="0" precision="U2"><dim>5</dim></port></input>
			<output><port id="1" precision="U8" names="y"><dim>5</dim></port></output>
		</layer>
		<layer id="4" name="Result_5" type="Result" version="opset1" output_names="y">
			<input><port id="0" precision="U8"><dim>5</dim></port></input>
		</layer>
		<layer id="5" name="Result_6" type="Result" version="opset1" output_names="w">
			<input><port id="0" precision="U2"><dim>5</dim></port></input>
		</layer>
	</layers>
	<edges>
		<edge from-layer="0" from-port="0" to-layer="3" to-port="0" />
		<edge from-layer="1" from-port="0" to-layer="2" to-port="0" />
		<edge from-layer="2" from-port="1" to-layer="5" to-port="0" />
		<edge from-layer="3" from-port="1" to-layer="4" to-port="0" />
	</edges>
</net>
"#;

/// u2 crosses into and out of OpenVINO packed four per byte, lowest bits first (ONNX's order,
/// which OpenVINO's u2 shares): Convert keeps every value 0..=3, five of them leaving a byte
/// partly filled, so a wrong bit order or count would change them.
#[test]
fn u2_round_trips_through_an_ir_model() {
    use rdeploy_core::{BackendManager, DType, DeployConfig, Device, Tensor, U2};
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    let dir = conf::tempdir("openvino", "u2");
    let (xml, bin) = (dir.join("u2.xml"), dir.join("u2.bin"));
    std::fs::write(&xml, U2_IR).unwrap();
    std::fs::write(&bin, b"").unwrap();
    let cfg = DeployConfig::empty();
    let w = OpenVinoBackend
        .build_wrapper(&[xml, bin], &Device::cpu(), &[], &[], &cfg)
        .unwrap();
    let sig = w.signature();
    let dtypes: Vec<(&str, DType)> = sig
        .inputs
        .iter()
        .chain(&sig.outputs)
        .map(|t| (t.name.as_str(), t.dtype))
        .collect();
    assert!(dtypes.contains(&("x", DType::U2)) && dtypes.contains(&("w", DType::U2)));
    let values = [3u8, 0, 1, 2, 3];
    let x = Tensor::from_shape_vec(&[5], values.map(U2::from_bits).to_vec()).unwrap();
    let z = Tensor::from_shape_vec(&[5], values.to_vec()).unwrap();
    let out = w.forward(vec![("x".into(), x), ("z".into(), z)]).unwrap();
    let get = |n: &str| &out.iter().find(|(name, _)| name == n).unwrap().1;
    assert_eq!(get("y").as_slice::<u8>().unwrap(), &values);
    assert_eq!(get("w").dtype(), DType::U2);
    assert_eq!(get("w").to_f64_vec(), values.map(f64::from));
    let _ = std::fs::remove_dir_all(&dir);
}

/// OpenVINO's ONNX frontend refuses an int2 model with a bare "Unsupported type"; rdeploy's
/// error names the port and its type.
#[test]
fn an_onnx_int2_model_is_refused_by_name() {
    if !conf::backend_under_test(&OpenVinoBackend) {
        return;
    }
    let dir = conf::tempdir("openvino", "int2");
    let names = conf::write_dtype_cases(&dir);
    let case = "test_cast_INT2_to_FLOAT";
    assert!(names.iter().any(|n| n == case), "{case} was not written");
    let model = dir.join(case).join("model.onnx");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let e = conf::wrapper_for(&OpenVinoBackend, &model, &work)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("input 'input' is i2") && e.contains("no such element type"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
