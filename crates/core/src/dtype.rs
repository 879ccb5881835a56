//! Element types of tensors, with their ONNX and NumPy names.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// 64-bit IEEE float.
    F64,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Boolean, one byte per element.
    Bool,
    /// bfloat16: 8 exponent bits like `f32`, 7 mantissa bits ([`half::bf16`]).
    BF16,
    /// ONNX FLOAT8E4M3FN ([`crate::F8E4M3FN`]).
    F8E4M3FN,
    /// ONNX FLOAT8E4M3FNUZ ([`crate::F8E4M3FNUZ`]).
    F8E4M3FNUZ,
    /// ONNX FLOAT8E5M2 ([`crate::F8E5M2`]).
    F8E5M2,
    /// ONNX FLOAT8E5M2FNUZ ([`crate::F8E5M2FNUZ`]).
    F8E5M2FNUZ,
    /// ONNX FLOAT8E8M0, a power of two ([`crate::F8E8M0`]).
    F8E8M0,
    /// Unsigned 4-bit integer ([`crate::U4`]); one per byte in a tensor, packed two per byte in
    /// files and engines.
    U4,
    /// Signed 4-bit integer ([`crate::I4`]); one per byte in a tensor, packed two per byte in
    /// files and engines.
    I4,
    /// ONNX FLOAT4E2M1 ([`crate::F4E2M1`]); one per byte in a tensor, packed two per byte in
    /// files and engines.
    F4E2M1,
    /// Unsigned 2-bit integer ([`crate::U2`]); one per byte in a tensor, packed four per byte in
    /// files and engines.
    U2,
    /// Signed 2-bit integer ([`crate::I2`]); one per byte in a tensor, packed four per byte in
    /// files and engines.
    I2,
    /// UTF-8 strings of any length.
    Str,
}

impl DType {
    /// Every dtype, in a stable order.
    pub const ALL: [DType; 24] = [
        DType::F32,
        DType::F16,
        DType::F64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::Bool,
        DType::BF16,
        DType::F8E4M3FN,
        DType::F8E4M3FNUZ,
        DType::F8E5M2,
        DType::F8E5M2FNUZ,
        DType::F8E8M0,
        DType::U4,
        DType::I4,
        DType::F4E2M1,
        DType::U2,
        DType::I2,
        DType::Str,
    ];

    /// The short name used in manifests and messages (`f32`, `i64`, `bool`...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::F64 => "f64",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::Bool => "bool",
            DType::BF16 => "bf16",
            DType::F8E4M3FN => "f8e4m3fn",
            DType::F8E4M3FNUZ => "f8e4m3fnuz",
            DType::F8E5M2 => "f8e5m2",
            DType::F8E5M2FNUZ => "f8e5m2fnuz",
            DType::F8E8M0 => "f8e8m0",
            DType::U4 => "u4",
            DType::I4 => "i4",
            DType::F4E2M1 => "f4e2m1",
            DType::U2 => "u2",
            DType::I2 => "i2",
            DType::Str => "string",
        }
    }

    /// Size of one element in a tensor's memory, in bytes: 4- and 2-bit types take a byte each
    /// ([`DType::packed_len`] gives their size in files and engines). Strings have no fixed
    /// size: for them this is the size of a `String` handle, which keeps memory bounds computed
    /// from it meaningful; code that moves bytes must use [`DType::fixed_size`].
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ => 1,
            DType::F8E8M0 | DType::U4 | DType::I4 | DType::F4E2M1 | DType::U2 | DType::I2 => 1,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
            DType::Str => std::mem::size_of::<String>(),
        }
    }

    /// Size of one element in a tensor's byte buffer ([`crate::Tensor::as_bytes`]); `None` for
    /// strings, which have no byte buffer.
    pub fn fixed_size(self) -> Option<usize> {
        (self != DType::Str).then(|| self.size())
    }

    /// Bytes that `count` elements take packed as ONNX and the engines store them: 4-bit types
    /// two per byte and 2-bit types four per byte (rounded up), others [`DType::size`] each;
    /// `None` for strings or overflow.
    pub fn packed_len(self, count: usize) -> Option<usize> {
        match (self, self.packed_bits()) {
            (DType::Str, _) => None,
            (_, Some(bits)) => Some(count.div_ceil((8 / bits) as usize)),
            (d, None) => count.checked_mul(d.size()),
        }
    }

    /// Whether elements are 4 bits wide (u4, i4, f4e2m1), packed two per byte outside tensors.
    pub fn is_4bit(self) -> bool {
        matches!(self, DType::U4 | DType::I4 | DType::F4E2M1)
    }

    /// Whether elements are 2 bits wide (u2, i2), packed four per byte outside tensors.
    pub fn is_2bit(self) -> bool {
        matches!(self, DType::U2 | DType::I2)
    }

    /// The width in bits of a type narrower than a byte (4 or 2), which files and engines pack
    /// several to a byte, the first element in the lowest bits; `None` for whole-byte types.
    pub fn packed_bits(self) -> Option<u32> {
        if self.is_4bit() {
            Some(4)
        } else if self.is_2bit() {
            Some(2)
        } else {
            None
        }
    }

    /// Whether this is a floating-point type (the float8 and float4 types included).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DType::F16
                | DType::F32
                | DType::F64
                | DType::BF16
                | DType::F8E4M3FN
                | DType::F8E4M3FNUZ
                | DType::F8E5M2
                | DType::F8E5M2FNUZ
                | DType::F8E8M0
                | DType::F4E2M1
        )
    }

    /// Whether this is one of the float8 types (float8e8m0 included).
    pub fn is_float8(self) -> bool {
        matches!(
            self,
            DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ | DType::F8E8M0
        )
    }

    /// The ONNX `TensorProto.DataType` number, as used in `.onnx` and `.pb` files.
    pub fn onnx_code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::U16 => 4,
            DType::I16 => 5,
            DType::I32 => 6,
            DType::I64 => 7,
            DType::Bool => 9,
            DType::F16 => 10,
            DType::F64 => 11,
            DType::U32 => 12,
            DType::U64 => 13,
            DType::Str => 8,
            DType::BF16 => 16,
            DType::F8E4M3FN => 17,
            DType::F8E4M3FNUZ => 18,
            DType::F8E5M2 => 19,
            DType::F8E5M2FNUZ => 20,
            DType::U4 => 21,
            DType::I4 => 22,
            DType::F4E2M1 => 23,
            DType::F8E8M0 => 24,
            DType::U2 => 25,
            DType::I2 => 26,
        }
    }

    /// The dtype of an ONNX `TensorProto.DataType` number, if rdeploy supports it.
    pub fn from_onnx_code(code: i32) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.onnx_code() == code)
    }

    /// The NumPy name (`float32`, `int64`, `bool`...); for types NumPy lacks, the
    /// `ml_dtypes` name (`bfloat16`, `float8_e4m3fn`, `int4`, `int2`...); `str` for strings.
    pub fn numpy_name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::F64 => "float64",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::Bool => "bool",
            DType::BF16 => "bfloat16",
            DType::F8E4M3FN => "float8_e4m3fn",
            DType::F8E4M3FNUZ => "float8_e4m3fnuz",
            DType::F8E5M2 => "float8_e5m2",
            DType::F8E5M2FNUZ => "float8_e5m2fnuz",
            DType::F8E8M0 => "float8_e8m0fnu",
            DType::U4 => "uint4",
            DType::I4 => "int4",
            DType::F4E2M1 => "float4_e2m1fn",
            DType::U2 => "uint2",
            DType::I2 => "int2",
            DType::Str => "str",
        }
    }
}

/// The name of an ONNX element type number, including ones rdeploy cannot hold (for messages).
pub fn onnx_type_name(code: i32) -> String {
    let name = match code {
        0 => "undefined",
        14 => "complex64",
        15 => "complex128",
        _ => match DType::from_onnx_code(code) {
            Some(d) => return d.name().to_string(),
            None => return format!("onnx type {code}"),
        },
    };
    name.to_string()
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = crate::Error;

    /// Parses rdeploy's, NumPy's or ONNX's spelling (`f32`, `float32`, `float`, `int64`...).
    fn from_str(s: &str) -> crate::Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let found = match lower.as_str() {
            "float" => Some(DType::F32),
            "half" | "float16" => Some(DType::F16),
            "double" => Some(DType::F64),
            "long" => Some(DType::I64),
            "int" => Some(DType::I32),
            "boolean" => Some(DType::Bool),
            "bfloat16" => Some(DType::BF16),
            "float8e4m3fn" => Some(DType::F8E4M3FN),
            "float8e4m3fnuz" => Some(DType::F8E4M3FNUZ),
            "float8e5m2" => Some(DType::F8E5M2),
            "float8e5m2fnuz" => Some(DType::F8E5M2FNUZ),
            "float8e8m0" | "float8_e8m0" => Some(DType::F8E8M0),
            "float4e2m1" | "float4_e2m1" => Some(DType::F4E2M1),
            "str" | "string" | "bytes" => Some(DType::Str),
            other => DType::ALL
                .into_iter()
                .find(|d| d.name() == other || d.numpy_name() == other),
        };
        found.ok_or_else(|| {
            let names: Vec<&str> = DType::ALL.iter().map(|d| d.name()).collect();
            crate::Error::Tensor(format!(
                "unknown dtype '{s}'; use one of {}",
                names.join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnx_codes_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_onnx_code(d.onnx_code()), Some(d));
            assert_eq!(d.name().parse::<DType>().ok(), Some(d));
            assert_eq!(d.numpy_name().parse::<DType>().ok(), Some(d));
        }
        assert_eq!(DType::from_onnx_code(14), None);
        assert_eq!(onnx_type_name(14), "complex64");
        assert_eq!(onnx_type_name(8), "string");
        assert_eq!(DType::from_onnx_code(16), Some(DType::BF16));
        assert_eq!(DType::from_onnx_code(24), Some(DType::F8E8M0));
        // onnx.TensorProto.UINT2, onnx.TensorProto.INT2
        assert_eq!(DType::from_onnx_code(25), Some(DType::U2));
        assert_eq!(DType::from_onnx_code(26), Some(DType::I2));
        assert_eq!(onnx_type_name(26), "i2");
        assert_eq!(DType::from_onnx_code(27), None);
        assert_eq!(onnx_type_name(1), "f32");
    }

    #[test]
    fn unknown_dtype_names_the_choices() {
        let e = "complex".parse::<DType>().unwrap_err().to_string();
        assert!(e.contains("complex") && e.contains("f32"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(DType::F16.size(), 2);
        assert_eq!(DType::I64.size(), 8);
        assert_eq!(DType::Bool.size(), 1);
        assert_eq!(DType::BF16.size(), 2);
        assert_eq!(DType::U4.packed_len(3), Some(2));
        assert_eq!(DType::I2.size(), 1);
        assert_eq!(DType::I2.packed_len(5), Some(2));
        assert_eq!(DType::U2.packed_len(4), Some(1));
        assert_eq!(DType::U2.packed_len(0), Some(0));
        assert_eq!(DType::F32.packed_bits(), None);
        assert_eq!(DType::Str.fixed_size(), None);
        assert_eq!(DType::Str.packed_len(1), None);
    }
}
