//! An owned, contiguous, typed n-dimensional tensor.

use crate::{DType, Error, Result};
use half::f16;
use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// An owned tensor: one contiguous, row-major (C order) ndarray of one of rdeploy's dtypes.
///
/// Typed access is zero-copy through [`Tensor::view`]; [`Tensor::as_bytes`] gives the raw
/// little-endian buffer that engines take. Constructors normalise to standard layout, so every
/// tensor is contiguous.
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
}

/// Runs `$body` with `$a` bound to the inner array of `$t`, whatever its dtype.
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_tensor {
    ($t:expr, $a:ident => $body:expr) => {
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
        let a = if a.is_standard_layout() {
            a
        } else {
            a.as_standard_layout().into_owned()
        };
        T::wrap(a)
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

    /// A tensor of `dtype` and `shape` decoded from little-endian bytes.
    ///
    /// # Errors
    /// [`Error::Tensor`] when the byte count does not match.
    pub fn from_le_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
        fn decode<T: Element>(shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
            let size = T::DTYPE.size();
            let data: Vec<T> = bytes.chunks_exact(size).map(T::from_le).collect();
            Tensor::from_shape_vec(shape, data)
        }
        let want = crate::files::checked_bytes(shape, dtype.size()).map_err(Error::Tensor)?;
        if bytes.len() != want {
            return Err(Error::Tensor(format!(
                "{} bytes of {dtype} data do not fill shape {shape:?} ({want} bytes needed)",
                bytes.len()
            )));
        }
        match dtype {
            DType::F32 => decode::<f32>(shape, bytes),
            DType::F16 => decode::<f16>(shape, bytes),
            DType::F64 => decode::<f64>(shape, bytes),
            DType::I8 => decode::<i8>(shape, bytes),
            DType::I16 => decode::<i16>(shape, bytes),
            DType::I32 => decode::<i32>(shape, bytes),
            DType::I64 => decode::<i64>(shape, bytes),
            DType::U8 => decode::<u8>(shape, bytes),
            DType::U16 => decode::<u16>(shape, bytes),
            DType::U32 => decode::<u32>(shape, bytes),
            DType::U64 => decode::<u64>(shape, bytes),
            DType::Bool => decode::<bool>(shape, bytes),
        }
    }

    /// A tensor of zeros (`false` for bool).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        fn z<T: Element>(shape: &[usize]) -> Tensor {
            T::wrap(ArrayD::from_elem(IxDyn(shape), T::default()))
        }
        match dtype {
            DType::F32 => z::<f32>(shape),
            DType::F16 => z::<f16>(shape),
            DType::F64 => z::<f64>(shape),
            DType::I8 => z::<i8>(shape),
            DType::I16 => z::<i16>(shape),
            DType::I32 => z::<i32>(shape),
            DType::I64 => z::<i64>(shape),
            DType::U8 => z::<u8>(shape),
            DType::U16 => z::<u16>(shape),
            DType::U32 => z::<u32>(shape),
            DType::U64 => z::<u64>(shape),
            DType::Bool => z::<bool>(shape),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::F16(_) => DType::F16,
            Tensor::F64(_) => DType::F64,
            Tensor::I8(_) => DType::I8,
            Tensor::I16(_) => DType::I16,
            Tensor::I32(_) => DType::I32,
            Tensor::I64(_) => DType::I64,
            Tensor::U8(_) => DType::U8,
            Tensor::U16(_) => DType::U16,
            Tensor::U32(_) => DType::U32,
            Tensor::U64(_) => DType::U64,
            Tensor::Bool(_) => DType::Bool,
        }
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        dispatch_tensor!(self, a => a.shape())
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        dispatch_tensor!(self, a => a.len())
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

    /// The raw buffer, native-endian (little-endian on every platform rdeploy targets).
    pub fn as_bytes(&self) -> &[u8] {
        // Constructors keep standard layout, so as_slice cannot fail; an empty slice is a safe
        // fallback should an array ever be built around them.
        dispatch_tensor!(self, a => a.as_slice().map(bytemuck::cast_slice).unwrap_or(&[]))
    }

    /// The same data with another shape of the same element count.
    ///
    /// # Errors
    /// [`Error::Tensor`] when the element counts differ.
    pub fn reshape(self, shape: &[usize]) -> Result<Tensor> {
        let len = self.len();
        let bad = || Error::Tensor(format!("cannot reshape {len} elements to {shape:?}"));
        dispatch_tensor!(self, a => {
            let a = a.into_shape_with_order(IxDyn(shape)).map_err(|_| bad())?;
            Ok(Tensor::from_array(a))
        })
    }

    /// Converts to another dtype.
    ///
    /// # Errors
    /// With [`Cast::Lossless`], [`Error::Tensor`] naming the first value that would change.
    pub fn cast(&self, to: DType, mode: Cast) -> Result<Tensor> {
        if to == self.dtype() {
            return Ok(self.clone());
        }
        fn convert<S: Element, T: Element>(a: &ArrayD<S>, mode: Cast) -> Result<Tensor> {
            if mode == Cast::Lossless {
                for (i, &v) in a.iter().enumerate() {
                    let n = v.to_num();
                    let back = T::from_num(n).to_num();
                    let same = match (n, back) {
                        (Num::Float(x), Num::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
                        (Num::Int(x), Num::Int(y)) => x == y,
                        (Num::Float(x), Num::Int(y)) => x == y as f64,
                        (Num::Int(x), Num::Float(y)) => x as f64 == y && x.unsigned_abs() < 1 << 53,
                    };
                    if !same {
                        return Err(Error::Tensor(format!(
                            "value {v:?} at flat index {i} cannot be represented exactly as {}; \
                             ask for an unchecked cast to convert anyway",
                            T::DTYPE
                        )));
                    }
                }
            }
            Ok(T::wrap(a.mapv(|v| T::from_num(v.to_num()))))
        }
        fn to_target<S: Element>(a: &ArrayD<S>, to: DType, mode: Cast) -> Result<Tensor> {
            match to {
                DType::F32 => convert::<S, f32>(a, mode),
                DType::F16 => convert::<S, f16>(a, mode),
                DType::F64 => convert::<S, f64>(a, mode),
                DType::I8 => convert::<S, i8>(a, mode),
                DType::I16 => convert::<S, i16>(a, mode),
                DType::I32 => convert::<S, i32>(a, mode),
                DType::I64 => convert::<S, i64>(a, mode),
                DType::U8 => convert::<S, u8>(a, mode),
                DType::U16 => convert::<S, u16>(a, mode),
                DType::U32 => convert::<S, u32>(a, mode),
                DType::U64 => convert::<S, u64>(a, mode),
                DType::Bool => convert::<S, bool>(a, mode),
            }
        }
        dispatch_tensor!(self, a => to_target(a, to, mode))
    }

    /// The elements converted to `f64`, row-major (for comparisons and statistics).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        fn conv<T: Element>(a: &ArrayD<T>) -> Vec<f64> {
            a.iter()
                .map(|v| match v.to_num() {
                    Num::Float(f) => f,
                    Num::Int(i) => i as f64,
                })
                .collect()
        }
        dispatch_tensor!(self, a => conv(a))
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
        assert_eq!(t.as_bytes().len(), 24);
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
            let back = Tensor::from_le_bytes(d, &[3, 1], t.as_bytes()).unwrap();
            assert_eq!(back, t);
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
}
