//! Element types as the serving protocols name them.
//!
//! Sources: the Open Inference Protocol's tensor data types (KServe v2,
//! `docs/protocol/extension_*` and `required_api.md#tensor-data-types` in
//! github.com/kserve/open-inference-protocol) and Triton's `model_config.proto` `DataType`.
//! The protocol has `BF16` and `BYTES` (strings; in binary data each element is a 4-byte
//! little-endian length and the bytes) but no float8, 4-bit or 2-bit types: rdeploy's other dtypes
//! have no name here, and the servers refuse them with a message saying so.

use rdeploy::core::DType;

/// Every dtype with its KServe v2 name and its Triton model-config name.
const TABLE: [(DType, &str, &str); 14] = [
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
    (DType::BF16, "BF16", "TYPE_BF16"),
    (DType::Str, "BYTES", "TYPE_STRING"),
];

/// The KServe v2 / Triton wire name of `dtype` (`FP32`, `INT64`, `BOOL`, `BYTES`); empty for
/// a dtype the protocol has no name for (float8, 4- and 2-bit types; see [`checked_v2_name`]).
pub fn v2_name(dtype: DType) -> &'static str {
    TABLE.iter().find(|t| t.0 == dtype).map_or("", |t| t.1)
}

/// The KServe v2 name of `what`'s dtype.
///
/// # Errors
/// A message naming `what` (`output 'y'`) and its dtype when the protocol has no name for it.
pub fn checked_v2_name(what: &str, dtype: DType) -> Result<&'static str, String> {
    match v2_name(dtype) {
        "" => Err(format!(
            "{what} is {dtype}, which the KServe v2 / Triton protocol has no datatype for (it \
             carries {}); cast it in the model or serve it through rdeploy's Python API",
            supported_v2_names()
        )),
        name => Ok(name),
    }
}

/// A tensor from bytes in the protocol's binary layout: little-endian numbers, or for `BYTES`
/// each element as a 4-byte little-endian length and then its bytes (UTF-8 here, as rdeploy's
/// strings are).
///
/// # Errors
/// A message (for the caller to prefix with the tensor's name) for a byte count that does not
/// fit the shape, a length running past the data, or bytes that are not UTF-8.
pub fn tensor_from_wire(
    dtype: DType,
    shape: &[usize],
    bytes: &[u8],
) -> Result<rdeploy::core::Tensor, String> {
    use rdeploy::core::Tensor;
    if dtype != DType::Str {
        return Tensor::from_le_bytes(dtype, shape, bytes).map_err(|e| e.to_string());
    }
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let i = out.len();
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .map(|(l, tail)| (u32::from_le_bytes(*l) as usize, tail))
            .ok_or_else(|| format!("BYTES element {i} has a truncated 4-byte length"))?;
        let (s, tail) = tail.split_at_checked(len).ok_or_else(|| {
            format!(
                "BYTES element {i} claims {len} bytes, {} are left",
                tail.len()
            )
        })?;
        out.push(
            String::from_utf8(s.to_vec())
                .map_err(|e| format!("BYTES element {i} is not UTF-8 ({e})"))?,
        );
        rest = tail;
    }
    Tensor::from_strings(shape, out).map_err(|e| e.to_string())
}

/// A tensor's bytes in the protocol's binary layout (see [`tensor_from_wire`]).
///
/// # Errors
/// A message naming `what` when the protocol has no datatype for the tensor's dtype, or a
/// string is longer than 4 GiB.
pub fn tensor_to_wire<'a>(
    what: &str,
    t: &'a rdeploy::core::Tensor,
) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    checked_v2_name(what, t.dtype())?;
    if let Ok(strings) = t.as_strings() {
        let mut out = Vec::with_capacity(strings.iter().map(|s| s.len() + 4).sum());
        for s in strings.iter() {
            let len = u32::try_from(s.len()).map_err(|_| {
                format!(
                    "{what}: a string of {} bytes is too long for BYTES",
                    s.len()
                )
            })?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        return Ok(std::borrow::Cow::Owned(out));
    }
    t.as_bytes()
        .map(std::borrow::Cow::Borrowed)
        .map_err(|e| format!("{what}: {e}"))
}

/// The dtype of a KServe v2 datatype name, `None` for an unknown name.
pub fn from_v2_name(name: &str) -> Option<DType> {
    TABLE.iter().find(|t| t.1 == name).map(|t| t.0)
}

/// The Triton model-config type of `dtype` (`TYPE_FP32`).
pub fn triton_type(dtype: DType) -> &'static str {
    TABLE.iter().find(|t| t.0 == dtype).map_or("", |t| t.2)
}

/// The dtype of a Triton model-config type name (`TYPE_FP32`, `TYPE_STRING`); `None` for
/// unknown names.
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
        for (d, _, _) in TABLE {
            assert_eq!(from_v2_name(v2_name(d)), Some(d), "{d}");
            assert_eq!(from_triton_type(triton_type(d)), Some(d), "{d}");
            if d != DType::Str {
                assert_eq!(triton_type(d), format!("TYPE_{}", v2_name(d)));
            }
        }
        assert_eq!(from_v2_name("BYTES"), Some(DType::Str));
        assert_eq!(from_triton_type("TYPE_STRING"), Some(DType::Str));
        assert_eq!(from_v2_name("FP8"), None);
        let e = checked_v2_name("output 'y'", DType::F8E4M3FN).unwrap_err();
        assert!(
            e.contains("output 'y'") && e.contains("f8e4m3fn") && e.contains("BF16"),
            "{e}"
        );
        let e = checked_v2_name("output 'q'", DType::I2).unwrap_err();
        assert!(
            e.contains("output 'q' is i2") && e.contains("no datatype"),
            "{e}"
        );
        assert_eq!(from_v2_name("INT2"), None);
    }

    #[test]
    fn bytes_are_length_prefixed() {
        use rdeploy::core::Tensor;
        let t = Tensor::from_strings(&[2], vec!["ab".into(), "ü".into()]).unwrap();
        let wire = tensor_to_wire("output 'y'", &t).unwrap();
        assert_eq!(&*wire, b"\x02\x00\x00\x00ab\x02\x00\x00\x00\xc3\xbc");
        assert_eq!(tensor_from_wire(DType::Str, &[2], &wire).unwrap(), t);
        assert!(tensor_from_wire(DType::Str, &[2], &wire[..9]).is_err());
        assert!(tensor_from_wire(DType::Str, &[3], &wire).is_err());
        let f8 = Tensor::zeros(DType::F8E5M2, &[1]);
        assert!(
            tensor_to_wire("output 'z'", &f8)
                .unwrap_err()
                .contains("f8e5m2")
        );
    }

    #[test]
    fn triton_names_exist_in_model_config_proto() {
        use crate::proto::DataType;
        for (d, _, _) in TABLE {
            assert!(DataType::from_str_name(triton_type(d)).is_some(), "{d}");
        }
    }
}
