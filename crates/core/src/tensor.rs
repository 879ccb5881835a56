//! An owned, contiguous, typed n-dimensional tensor.

use crate::minifloat::{F4E2M1, F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, F8E8M0, I2, I4, U2, U4};
use crate::{DType, Error, Result};
use half::{bf16, f16};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use std::borrow::Cow;

/// An owned tensor: one contiguous, row-major (C order) ndarray of one of rdeploy's dtypes.
///
/// Typed access is zero-copy through [`Tensor::view`] (numbers) and [`Tensor::as_strings`]
/// (strings); [`Tensor::as_bytes`] gives the raw little-endian buffer of a numeric tensor, and
/// [`Tensor::to_packed_bytes`] the layout engines and ONNX files take (4-bit types two per byte,
/// 2-bit types four).
/// Constructors normalise to standard layout, so every tensor is contiguous.
///
/// Strings are the one type without a fixed-width byte form: they are not an [`Element`], and
/// every function that moves bytes returns an error for them, so that each consumer (ONNX
/// `string_data`, NumPy unicode arrays, KServe `BYTES`) encodes them its own way.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// 32-bit floats.
    F32(ArrayD<f32>),
    /// 16-bit floats.
    F16(ArrayD<f16>),
    /// 64-bit floats.
    F64(ArrayD<f64>),
    /// Signed 8-bit integers.
    I8(ArrayD<i8>),
    /// Signed 16-bit integers.
    I16(ArrayD<i16>),
    /// Signed 32-bit integers.
    I32(ArrayD<i32>),
    /// Signed 64-bit integers.
    I64(ArrayD<i64>),
    /// Unsigned 8-bit integers.
    U8(ArrayD<u8>),
    /// Unsigned 16-bit integers.
    U16(ArrayD<u16>),
    /// Unsigned 32-bit integers.
    U32(ArrayD<u32>),
    /// Unsigned 64-bit integers.
    U64(ArrayD<u64>),
    /// Booleans.
    Bool(ArrayD<bool>),
    /// bfloat16 values.
    BF16(ArrayD<bf16>),
    /// ONNX FLOAT8E4M3FN values.
    F8E4M3FN(ArrayD<F8E4M3FN>),
    /// ONNX FLOAT8E4M3FNUZ values.
    F8E4M3FNUZ(ArrayD<F8E4M3FNUZ>),
    /// ONNX FLOAT8E5M2 values.
    F8E5M2(ArrayD<F8E5M2>),
    /// ONNX FLOAT8E5M2FNUZ values.
    F8E5M2FNUZ(ArrayD<F8E5M2FNUZ>),
    /// ONNX FLOAT8E8M0 values.
    F8E8M0(ArrayD<F8E8M0>),
    /// Unsigned 4-bit integers, one per byte.
    U4(ArrayD<U4>),
    /// Signed 4-bit integers, one per byte.
    I4(ArrayD<I4>),
    /// ONNX FLOAT4E2M1 values, one per byte.
    F4E2M1(ArrayD<F4E2M1>),
    /// Unsigned 2-bit integers, one per byte.
    U2(ArrayD<U2>),
    /// Signed 2-bit integers, one per byte.
    I2(ArrayD<I2>),
    /// UTF-8 strings.
    Str(ArrayD<String>),
}

/// Runs `$body` with `$a` bound to the inner array of `$t` when it holds numbers (an
/// `ArrayD<T>` with `T:` [`Element`]), and `$sbody` with `$s` bound to the `ArrayD<String>` when
/// it holds strings: every caller says what strings do.
///
/// ```
/// # use rdeploy_core::{dispatch_tensor, Tensor};
/// let t = Tensor::from_strings(&[2], vec!["a".into(), "bc".into()])?;
/// let bytes: usize = dispatch_tensor!(&t, a => a.len() * std::mem::size_of_val(&a[0]), Str(s) => s.iter().map(String::len).sum());
/// assert_eq!(bytes, 3);
/// # Ok::<(), rdeploy_core::Error>(())
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_tensor {
    ($t:expr, $a:ident => $body:expr, Str($s:ident) => $sbody:expr $(,)?) => {
        match $t {
            $crate::Tensor::F32($a) => $body,
            $crate::Tensor::F16($a) => $body,
            $crate::Tensor::F64($a) => $body,
            $crate::Tensor::I8($a) => $body,
            $crate::Tensor::I16($a) => $body,
            $crate::Tensor::I32($a) => $body,
            $crate::Tensor::I64($a) => $body,
            $crate::Tensor::U8($a) => $body,
            $crate::Tensor::U16($a) => $body,
            $crate::Tensor::U32($a) => $body,
            $crate::Tensor::U64($a) => $body,
            $crate::Tensor::Bool($a) => $body,
            $crate::Tensor::BF16($a) => $body,
            $crate::Tensor::F8E4M3FN($a) => $body,
            $crate::Tensor::F8E4M3FNUZ($a) => $body,
            $crate::Tensor::F8E5M2($a) => $body,
            $crate::Tensor::F8E5M2FNUZ($a) => $body,
            $crate::Tensor::F8E8M0($a) => $body,
            $crate::Tensor::U4($a) => $body,
            $crate::Tensor::I4($a) => $body,
            $crate::Tensor::F4E2M1($a) => $body,
            $crate::Tensor::U2($a) => $body,
            $crate::Tensor::I2($a) => $body,
            $crate::Tensor::Str($s) => $sbody,
        }
    };
}

/// Calls the generic function `$f::<T>($($arg),*)` with `T` the [`Element`] type of `$dtype`,
/// or evaluates `$str` for [`DType::Str`].
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_dtype {
    ($dtype:expr, $f:ident($($arg:expr),*), Str => $str:expr $(,)?) => {
        match $dtype {
            $crate::DType::F32 => $f::<f32>($($arg),*),
            $crate::DType::F16 => $f::<$crate::f16>($($arg),*),
            $crate::DType::F64 => $f::<f64>($($arg),*),
            $crate::DType::I8 => $f::<i8>($($arg),*),
            $crate::DType::I16 => $f::<i16>($($arg),*),
            $crate::DType::I32 => $f::<i32>($($arg),*),
            $crate::DType::I64 => $f::<i64>($($arg),*),
            $crate::DType::U8 => $f::<u8>($($arg),*),
            $crate::DType::U16 => $f::<u16>($($arg),*),
            $crate::DType::U32 => $f::<u32>($($arg),*),
            $crate::DType::U64 => $f::<u64>($($arg),*),
            $crate::DType::Bool => $f::<bool>($($arg),*),
            $crate::DType::BF16 => $f::<$crate::bf16>($($arg),*),
            $crate::DType::F8E4M3FN => $f::<$crate::F8E4M3FN>($($arg),*),
            $crate::DType::F8E4M3FNUZ => $f::<$crate::F8E4M3FNUZ>($($arg),*),
            $crate::DType::F8E5M2 => $f::<$crate::F8E5M2>($($arg),*),
            $crate::DType::F8E5M2FNUZ => $f::<$crate::F8E5M2FNUZ>($($arg),*),
            $crate::DType::F8E8M0 => $f::<$crate::F8E8M0>($($arg),*),
            $crate::DType::U4 => $f::<$crate::U4>($($arg),*),
            $crate::DType::I4 => $f::<$crate::I4>($($arg),*),
            $crate::DType::F4E2M1 => $f::<$crate::F4E2M1>($($arg),*),
            $crate::DType::U2 => $f::<$crate::U2>($($arg),*),
            $crate::DType::I2 => $f::<$crate::I2>($($arg),*),
            $crate::DType::Str => $str,
        }
    };
}

/// A number in a form every dtype converts to and from, used by casts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// A floating-point value.
    Float(f64),
    /// An integer (or boolean) value.
    Int(i128),
}

/// A Rust type that can be a tensor element.
pub trait Element:
    Copy + Default + Send + Sync + std::fmt::Debug + bytemuck::NoUninit + 'static
{
    /// The dtype of this element type.
    const DTYPE: DType;
    /// The array inside `t`, if `t` holds this type.
    fn array(t: &Tensor) -> Option<&ArrayD<Self>>;
    /// Wraps an array of this type in a tensor.
    fn wrap(a: ArrayD<Self>) -> Tensor;
    /// This value as a [`Num`].
    fn to_num(self) -> Num;
    /// A value from a [`Num`], rounding, saturating or wrapping like a C cast.
    fn from_num(n: Num) -> Self;
    /// Decodes one element from little-endian bytes (`bytes.len() == DTYPE.size()`).
    fn from_le(bytes: &[u8]) -> Self;
    /// This value as text, for casts to strings: integers in decimal, floats in the shortest
    /// plain form that reads back to the same value (ONNX `Cast` to STRING).
    fn to_text(self) -> String {
        match self.to_num() {
            Num::Float(f) => format_float(f),
            Num::Int(i) => i.to_string(),
        }
    }
}

/// A float as plain decimal text (`314.15926`, `inf`, `-inf`, `NaN`), shortest round trip.
fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "INF".into() } else { "-INF".into() }
    } else {
        f.to_string()
    }
}

/// A number read from text: decimal or scientific notation, `INF`/`+INF`/`-INF`/`NaN` in any
/// case (ONNX `Cast` from STRING); integers stay exact.
fn parse_num(s: &str) -> Option<Num> {
    let t = s.trim();
    if let Ok(i) = t.parse::<i128>() {
        return Some(Num::Int(i));
    }
    let lower = t.to_ascii_lowercase();
    match lower.as_str() {
        "true" => return Some(Num::Int(1)),
        "false" => return Some(Num::Int(0)),
        "inf" | "+inf" | "infinity" | "+infinity" => return Some(Num::Float(f64::INFINITY)),
        "-inf" | "-infinity" => return Some(Num::Float(f64::NEG_INFINITY)),
        "nan" | "+nan" | "-nan" => return Some(Num::Float(f64::NAN)),
        _ => {}
    }
    t.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Num::Float)
}

macro_rules! int_element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn array(t: &Tensor) -> Option<&ArrayD<Self>> {
                match t {
                    Tensor::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn wrap(a: ArrayD<Self>) -> Tensor {
                Tensor::$variant(a)
            }
            fn to_num(self) -> Num {
                Num::Int(self as i128)
            }
            #[allow(
                clippy::cast_possible_truncation,
                reason = "casts are C-like by contract"
            )]
            fn from_num(n: Num) -> Self {
                match n {
                    Num::Float(f) => f as $t,
                    Num::Int(i) => i as $t,
                }
            }
            fn from_le(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
        }
    };
}
int_element!(i8, I8);
int_element!(i16, I16);
int_element!(i32, I32);
int_element!(i64, I64);
int_element!(u8, U8);
int_element!(u16, U16);
int_element!(u32, U32);
int_element!(u64, U64);

macro_rules! float_element {
    ($t:ty, $variant:ident, $to:expr, $from:expr, $le:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn array(t: &Tensor) -> Option<&ArrayD<Self>> {
                match t {
                    Tensor::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn wrap(a: ArrayD<Self>) -> Tensor {
                Tensor::$variant(a)
            }
            fn to_num(self) -> Num {
                Num::Float($to(self))
            }
            fn from_num(n: Num) -> Self {
                match n {
                    Num::Float(f) => $from(f),
                    Num::Int(i) => $from(i as f64),
                }
            }
            fn from_le(bytes: &[u8]) -> Self {
                $le(bytes)
            }
            fn to_text(self) -> String {
                let f: f64 = $to(self);
                if f.is_finite() {
                    self.to_string()
                } else {
                    format_float(f)
                }
            }
        }
    };
}
float_element!(f32, F32, f64::from, |f: f64| f as f32, |b: &[u8]| {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
});
float_element!(f64, F64, |x| x, |f| f, |b: &[u8]| f64::from_le_bytes([
    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
]));
float_element!(f16, F16, f16::to_f64, f16::from_f64, |b: &[u8]| {
    f16::from_le_bytes([b[0], b[1]])
});
float_element!(bf16, BF16, bf16::to_f64, bf16::from_f64, |b: &[u8]| {
    bf16::from_le_bytes([b[0], b[1]])
});
float_element!(
    F8E4M3FN,
    F8E4M3FN,
    F8E4M3FN::to_f64,
    F8E4M3FN::from_f64,
    |b: &[u8]| { F8E4M3FN(b[0]) }
);
float_element!(
    F8E4M3FNUZ,
    F8E4M3FNUZ,
    F8E4M3FNUZ::to_f64,
    F8E4M3FNUZ::from_f64,
    |b: &[u8]| F8E4M3FNUZ(b[0])
);
float_element!(
    F8E5M2,
    F8E5M2,
    F8E5M2::to_f64,
    F8E5M2::from_f64,
    |b: &[u8]| { F8E5M2(b[0]) }
);
float_element!(
    F8E5M2FNUZ,
    F8E5M2FNUZ,
    F8E5M2FNUZ::to_f64,
    F8E5M2FNUZ::from_f64,
    |b: &[u8]| F8E5M2FNUZ(b[0])
);
float_element!(
    F8E8M0,
    F8E8M0,
    F8E8M0::to_f64,
    F8E8M0::from_f64,
    |b: &[u8]| { F8E8M0(b[0]) }
);
float_element!(
    F4E2M1,
    F4E2M1,
    F4E2M1::to_f64,
    F4E2M1::from_f64,
    |b: &[u8]| { F4E2M1::from_bits(b[0]) }
);

macro_rules! nibble_element {
    ($t:ident, $get:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$t;
            fn array(t: &Tensor) -> Option<&ArrayD<Self>> {
                match t {
                    Tensor::$t(a) => Some(a),
                    _ => None,
                }
            }
            fn wrap(a: ArrayD<Self>) -> Tensor {
                Tensor::$t(a)
            }
            fn to_num(self) -> Num {
                Num::Int(i128::from($get(self)))
            }
            /// Truncates toward zero, then keeps the low 4 (or 2) bits (C-like, as `ml_dtypes`
            /// does).
            fn from_num(n: Num) -> Self {
                match n {
                    Num::Float(f) => $t::wrapping_from(f as i128),
                    Num::Int(i) => $t::wrapping_from(i),
                }
            }
            fn from_le(bytes: &[u8]) -> Self {
                $t::from_bits(bytes[0])
            }
        }
    };
}
nibble_element!(U4, U4::get);
nibble_element!(I4, I4::get);
nibble_element!(U2, U2::get);
nibble_element!(I2, I2::get);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn array(t: &Tensor) -> Option<&ArrayD<Self>> {
        match t {
            Tensor::Bool(a) => Some(a),
            _ => None,
        }
    }
    fn wrap(a: ArrayD<Self>) -> Tensor {
        Tensor::Bool(a)
    }
    fn to_num(self) -> Num {
        Num::Int(i128::from(self))
    }
    fn from_num(n: Num) -> Self {
        match n {
            Num::Float(f) => f != 0.0,
            Num::Int(i) => i != 0,
        }
    }
    fn from_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
    /// `True` / `False`, as NumPy writes them.
    fn to_text(self) -> String {
        if self { "True" } else { "False" }.into()
    }
}

fn strings_have_no_bytes() -> Error {
    Error::Tensor(
        "a string tensor has no fixed-width byte buffer; encode its strings instead".into(),
    )
}

/// How [`Tensor::cast`] treats values the target dtype cannot hold exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cast {
    /// Fail unless every value survives the round trip (`i32` 7 → `f32` 7.0 is fine, 0.5 → `i32` is not).
    Lossless,
    /// Convert like a C cast: round toward zero, saturate or wrap, lose precision.
    Unchecked,
}

impl Tensor {
    /// A tensor from an ndarray of any supported element type; copies only if `a` is not in
    /// standard (C) layout.
    pub fn from_array<T: Element>(a: ArrayD<T>) -> Tensor {
        T::wrap(standard(a))
    }

    /// A tensor of `shape` from a flat vector in row-major order.
    ///
    /// # Errors
    /// [`Error::Tensor`] when `data.len()` is not the product of `shape`.
    pub fn from_shape_vec<T: Element>(shape: &[usize], data: Vec<T>) -> Result<Tensor> {
        let n = data.len();
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .map(T::wrap)
            .map_err(|_| Error::Tensor(format!("{n} elements do not fill shape {shape:?}")))
    }

    /// A string tensor of `shape` from a flat vector in row-major order.
    ///
    /// # Errors
    /// [`Error::Tensor`] when `data.len()` is not the product of `shape`.
    pub fn from_strings(shape: &[usize], data: Vec<String>) -> Result<Tensor> {
        let n = data.len();
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .map(Tensor::Str)
            .map_err(|_| Error::Tensor(format!("{n} strings do not fill shape {shape:?}")))
    }

    /// A tensor of `dtype` and `shape` decoded from little-endian bytes in a tensor's own layout
    /// ([`Tensor::as_bytes`]: 4- and 2-bit types one per byte, the bits above them ignored).
    ///
    /// # Errors
    /// [`Error::Tensor`] when the byte count does not match, or for strings.
    pub fn from_le_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
        fn decode<T: Element>(shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
            let size = T::DTYPE.size();
            let data: Vec<T> = bytes.chunks_exact(size).map(T::from_le).collect();
            Tensor::from_shape_vec(shape, data)
        }
        let size = dtype.fixed_size().ok_or_else(strings_have_no_bytes)?;
        let want = crate::files::checked_bytes(shape, size).map_err(Error::Tensor)?;
        if bytes.len() != want {
            return Err(Error::Tensor(format!(
                "{} bytes of {dtype} data do not fill shape {shape:?} ({want} bytes needed)",
                bytes.len()
            )));
        }
        crate::dispatch_dtype!(dtype, decode(shape, bytes), Str => Err(strings_have_no_bytes()))
    }

    /// A tensor of `dtype` and `shape` from bytes laid out as ONNX `raw_data` and the engines
    /// store them: as [`Tensor::from_le_bytes`], except that 4-bit types are packed two per
    /// byte and 2-bit types four per byte, the first element in the lowest bits.
    ///
    /// # Errors
    /// [`Error::Tensor`] when the byte count does not match, or for strings.
    pub fn from_packed_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
        let Some(bits) = dtype.packed_bits() else {
            return Tensor::from_le_bytes(dtype, shape, bytes);
        };
        let count = crate::files::checked_bytes(shape, 1).map_err(Error::Tensor)?;
        let unpacked = crate::minifloat::unpack_bits(bytes, count, bits)
            .map_err(|m| Error::Tensor(format!("{dtype} data of shape {shape:?}: {m}")))?;
        Tensor::from_le_bytes(dtype, shape, &unpacked)
    }

    /// A tensor of zeros (`false` for bool, empty strings; for float8e8m0, which has no zero,
    /// its all-zero bit pattern 2^-127).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        fn z<T: Element>(shape: &[usize]) -> Tensor {
            T::wrap(ArrayD::from_elem(IxDyn(shape), T::default()))
        }
        crate::dispatch_dtype!(dtype, z(shape), Str => Tensor::Str(ArrayD::from_elem(IxDyn(shape), String::new())))
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        fn d<T: Element>(_: &ArrayD<T>) -> DType {
            T::DTYPE
        }
        crate::dispatch_tensor!(self, a => d(a), Str(_s) => DType::Str)
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        crate::dispatch_tensor!(self, a => a.shape(), Str(a) => a.shape())
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        crate::dispatch_tensor!(self, a => a.len(), Str(a) => a.len())
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A zero-copy typed view.
    ///
    /// # Errors
    /// [`Error::Tensor`] when `T` is not this tensor's element type.
    pub fn view<T: Element>(&self) -> Result<ArrayViewD<'_, T>> {
        T::array(self).map(|a| a.view()).ok_or_else(|| {
            Error::Tensor(format!("tensor holds {}, not {}", self.dtype(), T::DTYPE))
        })
    }

    /// The elements as a flat slice in row-major order.
    ///
    /// # Errors
    /// [`Error::Tensor`] when `T` is not this tensor's element type.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        let a = T::array(self).ok_or_else(|| {
            Error::Tensor(format!("tensor holds {}, not {}", self.dtype(), T::DTYPE))
        })?;
        a.as_slice()
            .ok_or_else(|| Error::Tensor("tensor is not contiguous".into()))
    }

    /// A zero-copy view of a string tensor.
    ///
    /// # Errors
    /// [`Error::Tensor`] when the tensor does not hold strings.
    pub fn as_strings(&self) -> Result<ArrayViewD<'_, String>> {
        match self {
            Tensor::Str(a) => Ok(a.view()),
            other => Err(Error::Tensor(format!(
                "tensor holds {}, not string",
                other.dtype()
            ))),
        }
    }

    /// The raw buffer, native-endian (little-endian on every platform rdeploy targets), in the
    /// tensor's own layout: 4- and 2-bit types one element per byte (see
    /// [`Tensor::to_packed_bytes`]).
    ///
    /// # Errors
    /// [`Error::Tensor`] for a string tensor, which has no fixed-width buffer.
    pub fn as_bytes(&self) -> Result<&[u8]> {
        // Constructors keep standard layout, so as_slice cannot fail; an empty slice is a safe
        // fallback should an array ever be built around them.
        crate::dispatch_tensor!(
            self,
            a => Ok(a.as_slice().map(bytemuck::cast_slice).unwrap_or(&[])),
            Str(_s) => Err(strings_have_no_bytes()),
        )
    }

    /// The data as ONNX `raw_data` and the engines hold it: [`Tensor::as_bytes`], except that
    /// 4-bit types are packed two per byte and 2-bit types four per byte, the first element in
    /// the lowest bits.
    ///
    /// # Errors
    /// [`Error::Tensor`] for a string tensor.
    pub fn to_packed_bytes(&self) -> Result<Cow<'_, [u8]>> {
        let bytes = self.as_bytes()?;
        Ok(match self.dtype().packed_bits() {
            Some(bits) => Cow::Owned(crate::minifloat::pack_bits(bytes, bits)),
            None => Cow::Borrowed(bytes),
        })
    }

    /// The same data with another shape of the same element count.
    ///
    /// # Errors
    /// [`Error::Tensor`] when the element counts differ.
    pub fn reshape(self, shape: &[usize]) -> Result<Tensor> {
        let len = self.len();
        let bad = || Error::Tensor(format!("cannot reshape {len} elements to {shape:?}"));
        crate::dispatch_tensor!(self, a => {
            let a = a.into_shape_with_order(IxDyn(shape)).map_err(|_| bad())?;
            Ok(Tensor::from_array(a))
        }, Str(a) => {
            let a = a.into_shape_with_order(IxDyn(shape)).map_err(|_| bad())?;
            Ok(Tensor::Str(standard(a)))
        })
    }

    /// Converts to another dtype: numbers like a C cast or ONNX `Cast` (float8 and float4
    /// round to nearest even and saturate, 4- and 2-bit integers wrap), numbers to strings as plain
    /// decimal text, strings to numbers by parsing (`1.5`, `1e-5`, `INF`, `NaN`).
    ///
    /// # Errors
    /// With [`Cast::Lossless`], [`Error::Tensor`] naming the first value that would change; in
    /// any mode, a string that is not a number.
    pub fn cast(&self, to: DType, mode: Cast) -> Result<Tensor> {
        if to == self.dtype() {
            return Ok(self.clone());
        }
        fn lossless_check<T: Element>(n: Num, shown: &dyn std::fmt::Debug, i: usize) -> Result<()> {
            let back = T::from_num(n).to_num();
            let same = match (n, back) {
                (Num::Float(x), Num::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
                (Num::Int(x), Num::Int(y)) => x == y,
                (Num::Float(x), Num::Int(y)) => x == y as f64,
                (Num::Int(x), Num::Float(y)) => x as f64 == y && x.unsigned_abs() < 1 << 53,
            };
            if same {
                Ok(())
            } else {
                Err(Error::Tensor(format!(
                    "value {shown:?} at flat index {i} cannot be represented exactly as {}; \
                     ask for an unchecked cast to convert anyway",
                    T::DTYPE
                )))
            }
        }
        fn convert<T: Element>(a: &ArrayD<impl Element>, mode: Cast) -> Result<Tensor> {
            if mode == Cast::Lossless {
                for (i, &v) in a.iter().enumerate() {
                    lossless_check::<T>(v.to_num(), &v, i)?;
                }
            }
            Ok(T::wrap(a.mapv(|v| T::from_num(v.to_num()))))
        }
        fn to_target<S: Element>(a: &ArrayD<S>, to: DType, mode: Cast) -> Result<Tensor> {
            crate::dispatch_dtype!(
                to,
                convert(a, mode),
                Str => Ok(Tensor::Str(a.mapv(S::to_text))),
            )
        }
        fn parse<T: Element>(a: &ArrayD<String>, mode: Cast) -> Result<Tensor> {
            let mut out = Vec::with_capacity(a.len());
            for (i, s) in a.iter().enumerate() {
                let n = parse_num(s).ok_or_else(|| {
                    Error::Tensor(format!(
                        "string {s:?} at flat index {i} is not a number, so it cannot become {}",
                        T::DTYPE
                    ))
                })?;
                if mode == Cast::Lossless {
                    lossless_check::<T>(n, s, i)?;
                }
                out.push(T::from_num(n));
            }
            Tensor::from_shape_vec(a.shape(), out)
        }
        crate::dispatch_tensor!(
            self,
            a => to_target(a, to, mode),
            Str(s) => crate::dispatch_dtype!(to, parse(s, mode), Str => Ok(self.clone())),
        )
    }

    /// The elements converted to `f64`, row-major (for comparisons and statistics); strings
    /// are parsed as numbers, NaN where they are not.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        fn conv<T: Element>(a: &ArrayD<T>) -> Vec<f64> {
            a.iter().map(|v| num_to_f64(v.to_num())).collect()
        }
        crate::dispatch_tensor!(self, a => conv(a), Str(s) => s
            .iter()
            .map(|s| parse_num(s).map_or(f64::NAN, num_to_f64))
            .collect())
    }
}

fn num_to_f64(n: Num) -> f64 {
    match n {
        Num::Float(f) => f,
        Num::Int(i) => i as f64,
    }
}

fn standard<T: Clone>(a: ArrayD<T>) -> ArrayD<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

impl From<ArrayD<String>> for Tensor {
    fn from(a: ArrayD<String>) -> Self {
        Tensor::Str(standard(a))
    }
}

impl<T: Element> From<ArrayD<T>> for Tensor {
    fn from(a: ArrayD<T>) -> Self {
        Tensor::from_array(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ShapeBuilder, arr2};

    #[test]
    fn views_are_zero_copy_and_typed() {
        let t = Tensor::from_shape_vec(&[2, 3], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
        let v = t.view::<f32>().unwrap();
        assert_eq!(v.as_ptr(), t.as_slice::<f32>().unwrap().as_ptr());
        assert_eq!(v[[1, 2]], 6.0);
        assert!(
            t.view::<i64>()
                .unwrap_err()
                .to_string()
                .contains("holds f32, not i64")
        );
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.as_bytes().unwrap().len(), 24);
    }

    #[test]
    fn non_standard_layout_is_normalised() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 2]).f(), vec![1i32, 2, 3, 4]).unwrap();
        let t = Tensor::from_array(a);
        assert_eq!(t.as_slice::<i32>().unwrap(), &[1, 3, 2, 4]);
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        assert!(Tensor::from_shape_vec(&[2, 2], vec![1u8; 3]).is_err());
        assert!(Tensor::from_le_bytes(DType::F32, &[2], &[0; 7]).is_err());
        let t = Tensor::zeros(DType::I64, &[2, 3]);
        assert!(t.clone().reshape(&[7]).is_err());
        assert_eq!(t.reshape(&[3, 2]).unwrap().shape(), &[3, 2]);
    }

    #[test]
    fn le_bytes_round_trip_every_dtype() {
        for d in DType::ALL {
            let t = Tensor::zeros(d, &[3, 1]);
            if d == DType::Str {
                assert!(t.as_bytes().is_err() && t.to_packed_bytes().is_err());
                assert!(Tensor::from_le_bytes(d, &[1], &[0; 24]).is_err());
                continue;
            }
            let back = Tensor::from_le_bytes(d, &[3, 1], t.as_bytes().unwrap()).unwrap();
            assert_eq!(back, t);
            let packed = t.to_packed_bytes().unwrap();
            assert_eq!(Some(packed.len()), d.packed_len(3), "{d}");
            assert_eq!(Tensor::from_packed_bytes(d, &[3, 1], &packed).unwrap(), t);
        }
        let t = Tensor::from_le_bytes(DType::F16, &[1], &f16::from_f32(1.5).to_le_bytes()).unwrap();
        assert_eq!(t.as_slice::<f16>().unwrap()[0].to_f32(), 1.5);
    }

    #[test]
    fn lossless_casts_succeed_and_lossy_ones_fail() {
        let t = Tensor::from(arr2(&[[1i32, -2], [3, 4]]).into_dyn());
        let f = t.cast(DType::F32, Cast::Lossless).unwrap();
        assert_eq!(f.as_slice::<f32>().unwrap(), &[1.0, -2.0, 3.0, 4.0]);
        assert!(
            t.cast(DType::U8, Cast::Lossless)
                .unwrap_err()
                .to_string()
                .contains("-2")
        );
        let u = t.cast(DType::U8, Cast::Unchecked).unwrap();
        assert_eq!(u.as_slice::<u8>().unwrap(), &[1, 254, 3, 4]);
        let h = Tensor::from(arr2(&[[0.1f32]]).into_dyn());
        assert!(h.cast(DType::F16, Cast::Lossless).is_err());
        assert!(h.cast(DType::F16, Cast::Unchecked).is_ok());
        let big = Tensor::from(arr2(&[[(1i64 << 60) + 1]]).into_dyn());
        assert!(big.cast(DType::F64, Cast::Lossless).is_err());
        let b = Tensor::from(arr2(&[[0u8, 3]]).into_dyn())
            .cast(DType::Bool, Cast::Unchecked)
            .unwrap();
        assert_eq!(b.as_slice::<bool>().unwrap(), &[false, true]);
    }

    #[test]
    fn four_bit_types_pack_two_per_byte() {
        let t = Tensor::from_shape_vec(
            &[3],
            vec![
                I4::wrapping_from(-1),
                I4::wrapping_from(7),
                I4::wrapping_from(-8),
            ],
        )
        .unwrap();
        assert_eq!(t.as_bytes().unwrap(), &[0x0F, 0x07, 0x08]);
        assert_eq!(&*t.to_packed_bytes().unwrap(), &[0x7F, 0x08]);
        assert_eq!(t.to_f64_vec(), [-1.0, 7.0, -8.0]);
        let back = Tensor::from_packed_bytes(DType::I4, &[3], &[0x7F, 0x08]).unwrap();
        assert_eq!(back, t);
        assert!(Tensor::from_packed_bytes(DType::U4, &[3], &[0x7F]).is_err());
        let u = t.cast(DType::U4, Cast::Unchecked).unwrap();
        assert_eq!(u.to_f64_vec(), [15.0, 7.0, 8.0]);
        assert!(t.cast(DType::U4, Cast::Lossless).is_err());
    }

    #[test]
    fn two_bit_types_pack_four_per_byte() {
        // ml_dtypes.int2 holds -2, -1, 0, 1, 1 as the bytes 2, 3, 0, 1, 1 and
        // onnx.numpy_helper.from_array packs them into raw_data 0x4E, 0x01.
        let t = Tensor::from_shape_vec(&[5], [-2, -1, 0, 1, 1].map(I2::wrapping_from).to_vec())
            .unwrap();
        assert_eq!(t.as_bytes().unwrap(), &[2, 3, 0, 1, 1]);
        assert_eq!(&*t.to_packed_bytes().unwrap(), &[0x4E, 0x01]);
        assert_eq!(t.to_f64_vec(), [-2.0, -1.0, 0.0, 1.0, 1.0]);
        assert_eq!(
            Tensor::from_packed_bytes(DType::I2, &[5], &[0x4E, 0x01]).unwrap(),
            t
        );
        assert!(Tensor::from_packed_bytes(DType::I2, &[5], &[0x4E]).is_err());
        let u = t.cast(DType::U2, Cast::Unchecked).unwrap();
        assert_eq!(u.to_f64_vec(), [2.0, 3.0, 0.0, 1.0, 1.0]);
        assert!(t.cast(DType::U2, Cast::Lossless).is_err());
        // As ml_dtypes casts float32 to int2: truncate toward zero, keep the low two bits.
        let f = Tensor::from_shape_vec(&[5], vec![2.7f32, -2.7, 5.0, -5.0, 1.5]).unwrap();
        let i2 = f.cast(DType::I2, Cast::Unchecked).unwrap();
        assert_eq!(i2.to_f64_vec(), [-2.0, -2.0, 1.0, -1.0, 1.0]);
        let u2 = f.cast(DType::U2, Cast::Unchecked).unwrap();
        assert_eq!(u2.to_f64_vec(), [2.0, 2.0, 1.0, 3.0, 1.0]);
        assert_eq!(
            u2.cast(DType::F32, Cast::Lossless).unwrap().dtype(),
            DType::F32
        );
    }

    #[test]
    fn new_float_casts_round_and_saturate() {
        let t = Tensor::from_shape_vec(&[4], vec![1.0f32, 0.1, 1000.0, -3.0]).unwrap();
        let f8 = t.cast(DType::F8E4M3FN, Cast::Unchecked).unwrap();
        assert_eq!(f8.to_f64_vec(), [1.0, 0.1015625, 448.0, -3.0]);
        assert!(t.cast(DType::F8E4M3FN, Cast::Lossless).is_err());
        let b = t.cast(DType::BF16, Cast::Unchecked).unwrap();
        assert_eq!(b.to_f64_vec()[1], 0.10009765625);
        let f4 = t.cast(DType::F4E2M1, Cast::Unchecked).unwrap();
        assert_eq!(f4.to_f64_vec(), [1.0, 0.0, 6.0, -3.0]);
        let back = f8.cast(DType::F32, Cast::Lossless).unwrap();
        assert_eq!(
            back.as_slice::<f32>().unwrap(),
            &[1.0, 0.1015625, 448.0, -3.0]
        );
    }

    #[test]
    fn strings_cast_to_and_from_numbers() {
        let s = Tensor::from_strings(
            &[2, 3],
            ["1.5", " -2 ", "1e-5", "INF", "-inf", "NaN"]
                .map(String::from)
                .to_vec(),
        )
        .unwrap();
        assert_eq!(s.dtype(), DType::Str);
        assert_eq!(s.shape(), &[2, 3]);
        let f = s.cast(DType::F32, Cast::Unchecked).unwrap();
        let v = f.as_slice::<f32>().unwrap();
        assert_eq!(
            &v[..5],
            &[1.5, -2.0, 1e-5, f32::INFINITY, f32::NEG_INFINITY]
        );
        assert!(v[5].is_nan());
        assert!(s.cast(DType::I32, Cast::Lossless).is_err());
        let back = f.cast(DType::Str, Cast::Lossless).unwrap();
        assert_eq!(
            back.as_strings()
                .unwrap()
                .iter()
                .cloned()
                .collect::<Vec<_>>(),
            ["1.5", "-2", "0.00001", "INF", "-INF", "NaN"]
        );
        let i = Tensor::from_shape_vec(&[2], vec![7i64, -1]).unwrap();
        let si = i.cast(DType::Str, Cast::Lossless).unwrap();
        assert_eq!(si.cast(DType::I64, Cast::Lossless).unwrap(), i);
        let bad = Tensor::from_strings(&[1], vec!["hello".into()]).unwrap();
        let e = bad
            .cast(DType::F32, Cast::Unchecked)
            .unwrap_err()
            .to_string();
        assert!(e.contains("hello") && e.contains("not a number"), "{e}");
        assert!(bad.view::<f32>().is_err() && i.as_strings().is_err());
        assert_eq!(bad.clone().reshape(&[1, 1]).unwrap().shape(), &[1, 1]);
        assert!(bad.to_f64_vec()[0].is_nan());
        let bools = Tensor::from_shape_vec(&[2], vec![true, false]).unwrap();
        let sb = bools.cast(DType::Str, Cast::Unchecked).unwrap();
        assert_eq!(sb.cast(DType::Bool, Cast::Lossless).unwrap(), bools);
    }
}
