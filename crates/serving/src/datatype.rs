//! Element types as the serving protocols name them.
//!
//! Sources: the Open Inference Protocol's tensor data types (KServe v2,
//! `docs/protocol/extension_*` and `required_api.md#tensor-data-types` in
//! github.com/kserve/open-inference-protocol) and Triton's `model_config.proto` `DataType`.

use rdeploy::core::DType;

/// Every dtype with its KServe v2 name and its Triton model-config name.
const TABLE: [(DType, &str, &str); 12] = [
    (DType::Bool, "BOOL", "TYPE_BOOL"),
    (DType::U8, "UINT8", "TYPE_UINT8"),
    (DType::U16, "UINT16", "TYPE_UINT16"),
    (DType::U32, "UINT32", "TYPE_UINT32"),
    (DType::U64, "UINT64", "TYPE_UINT64"),
    (DType::I8, "INT8", "TYPE_INT8"),
    (DType::I16, "INT16", "TYPE_INT16"),
    (DType::I32, "INT32", "TYPE_INT32"),
    (DType::I64, "INT64", "TYPE_INT64"),
    (DType::F16, "FP16", "TYPE_FP16"),
    (DType::F32, "FP32", "TYPE_FP32"),
    (DType::F64, "FP64", "TYPE_FP64"),
];

/// The KServe v2 / Triton wire name of `dtype` (`FP32`, `INT64`, `BOOL`).
pub fn v2_name(dtype: DType) -> &'static str {
    TABLE.iter().find(|t| t.0 == dtype).map_or("", |t| t.1)
}

/// The dtype of a KServe v2 datatype name, `None` for one rdeploy tensors cannot hold
/// (`BYTES`, `BF16`) or an unknown name.
pub fn from_v2_name(name: &str) -> Option<DType> {
    TABLE.iter().find(|t| t.1 == name).map(|t| t.0)
}

/// The Triton model-config type of `dtype` (`TYPE_FP32`).
pub fn triton_type(dtype: DType) -> &'static str {
    TABLE.iter().find(|t| t.0 == dtype).map_or("", |t| t.2)
}

/// The dtype of a Triton model-config type name (`TYPE_FP32`); `None` for `TYPE_STRING`,
/// `TYPE_BF16` and unknown names.
pub fn from_triton_type(name: &str) -> Option<DType> {
    TABLE.iter().find(|t| t.2 == name).map(|t| t.0)
}

/// The v2 datatype names this build can carry, comma separated, for error messages.
pub fn supported_v2_names() -> String {
    TABLE.iter().map(|t| t.1).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_has_both_names_and_they_round_trip() {
        for d in DType::ALL {
            assert_eq!(from_v2_name(v2_name(d)), Some(d), "{d}");
            assert_eq!(from_triton_type(triton_type(d)), Some(d), "{d}");
            assert_eq!(triton_type(d), format!("TYPE_{}", v2_name(d)));
        }
        assert_eq!(from_v2_name("BYTES"), None);
        assert_eq!(from_triton_type("TYPE_STRING"), None);
    }

    #[test]
    fn triton_names_exist_in_model_config_proto() {
        use crate::proto::DataType;
        for d in DType::ALL {
            assert!(DataType::from_str_name(triton_type(d)).is_some(), "{d}");
        }
    }
}
