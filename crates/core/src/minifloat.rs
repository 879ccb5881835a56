//! Element types narrower than a byte or without a Rust primitive: ONNX's float8 variants,
//! float8e8m0, float4e2m1 and the 4- and 2-bit integers.
//!
//! Each is a `#[repr(transparent)]` newtype over one byte, so a tensor of them is a plain byte
//! buffer (the layout `ml_dtypes` uses in NumPy). The 4- and 2-bit types hold one element per
//! byte, its value in the low bits and zeros above; [`pack_bits`] and [`unpack_bits`] convert to
//! and from the layout of ONNX `raw_data` and the engines: two 4-bit or four 2-bit elements per
//! byte, the first in the lowest bits.
//!
//! Decoding is exact (every value is a dyadic rational that `f32` holds). Encoding follows ONNX
//! `Cast` with its defaults: float8 and float4 round to nearest, ties to even, and saturate
//! (values beyond the largest finite value, infinities included, become that value); float8e8m0
//! rounds up (`round_mode="up"`) and saturates.

use bytemuck::{Pod, Zeroable};
use std::fmt;

/// How a format spends its special bit patterns.
#[derive(Clone, Copy)]
enum Special {
    /// `S.1111.111` is NaN; no infinities (E4M3FN).
    Fn,
    /// `1.0000.000` (negative zero) is the only NaN; no infinities, no negative zero.
    Fnuz,
    /// IEEE-like: an all-ones exponent is infinity (zero mantissa) or NaN.
    Ieee,
    /// Every pattern is a finite number (float4e2m1).
    None,
}

/// A sign-magnitude minifloat layout.
#[derive(Clone, Copy)]
struct Format {
    exp_bits: u32,
    man_bits: u32,
    bias: i32,
    special: Special,
    /// The largest code of a positive finite value; codes `0..=max_code` increase in value.
    max_code: u8,
}

impl Format {
    const fn sign_bit(self) -> u8 {
        1 << (self.exp_bits + self.man_bits)
    }

    fn decode(self, bits: u8) -> f32 {
        let sign = bits & self.sign_bit() != 0;
        let mag = bits & (self.sign_bit() - 1);
        let exp_mask = (1u8 << self.exp_bits) - 1;
        let e = (mag >> self.man_bits) & exp_mask;
        let m = mag & ((1u8 << self.man_bits) - 1);
        match self.special {
            Special::Fn if mag == (self.sign_bit() - 1) => return f32::NAN,
            Special::Fnuz if sign && mag == 0 => return f32::NAN,
            Special::Ieee if e == exp_mask => {
                return match (m, sign) {
                    (0, false) => f32::INFINITY,
                    (0, true) => f32::NEG_INFINITY,
                    _ => f32::NAN,
                };
            }
            _ => {}
        }
        let scale = 2f64.powi(1 - self.bias - self.man_bits as i32);
        let v = if e == 0 {
            f64::from(m) * scale
        } else {
            f64::from(m | (1 << self.man_bits)) * scale * 2f64.powi(i32::from(e) - 1)
        };
        // Exact: at most 4 significant bits, exponents well inside f32's range.
        let v = v as f32;
        if sign { -v } else { v }
    }

    fn nan(self, negative: bool) -> u8 {
        let sign = if negative { self.sign_bit() } else { 0 };
        match self.special {
            Special::Fn => (self.sign_bit() - 1) | sign,
            Special::Fnuz => self.sign_bit(),
            // ml_dtypes' quiet NaN: all-ones exponent, top mantissa bit.
            Special::Ieee => (self.sign_bit() - 1 - ((1 << (self.man_bits - 1)) - 1)) | sign,
            // No NaN to give: zero, as the most neutral value.
            Special::None => 0,
        }
    }

    /// Round to nearest, ties to even, saturating (ONNX `Cast` with `saturate=1`).
    fn encode(self, x: f64) -> u8 {
        if x.is_nan() {
            return self.nan(x.is_sign_negative());
        }
        let negative = x.is_sign_negative();
        let a = x.abs();
        let max = f64::from(self.decode(self.max_code));
        let code = if a >= max {
            self.max_code
        } else {
            // The largest code whose value is <= a (codes 0..=max_code increase in value).
            let (mut lo, mut hi) = (0u8, self.max_code);
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if f64::from(self.decode(mid)) <= a {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            let below = f64::from(self.decode(lo));
            let above = f64::from(self.decode(lo + 1));
            let (db, da) = (a - below, above - a);
            if db < da || (db == da && lo % 2 == 0) {
                lo
            } else {
                lo + 1
            }
        };
        match (negative, self.special) {
            (true, Special::Fnuz) if code == 0 => 0,
            (true, _) => code | self.sign_bit(),
            (false, _) => code,
        }
    }
}

const E4M3FN: Format = Format {
    exp_bits: 4,
    man_bits: 3,
    bias: 7,
    special: Special::Fn,
    max_code: 0x7E,
};
const E4M3FNUZ: Format = Format {
    exp_bits: 4,
    man_bits: 3,
    bias: 8,
    special: Special::Fnuz,
    max_code: 0x7F,
};
const E5M2: Format = Format {
    exp_bits: 5,
    man_bits: 2,
    bias: 15,
    special: Special::Ieee,
    max_code: 0x7B,
};
const E5M2FNUZ: Format = Format {
    exp_bits: 5,
    man_bits: 2,
    bias: 16,
    special: Special::Fnuz,
    max_code: 0x7F,
};
const E2M1: Format = Format {
    exp_bits: 2,
    man_bits: 1,
    bias: 1,
    special: Special::None,
    max_code: 0x7,
};

macro_rules! minifloat {
    ($(#[$doc:meta])* $name:ident, $fmt:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
        #[repr(transparent)]
        pub struct $name(pub u8);

        impl $name {
            /// The value with these bits.
            pub const fn from_bits(bits: u8) -> Self {
                $name(bits)
            }
            /// The bit pattern.
            pub const fn to_bits(self) -> u8 {
                self.0
            }
            /// The exact value.
            pub fn to_f32(self) -> f32 {
                $fmt.decode(self.0)
            }
            /// The exact value.
            pub fn to_f64(self) -> f64 {
                f64::from(self.to_f32())
            }
            /// The nearest value (ties to even), saturating at the largest finite value.
            pub fn from_f64(x: f64) -> Self {
                $name($fmt.encode(x))
            }
            /// The nearest value (ties to even), saturating at the largest finite value.
            pub fn from_f32(x: f32) -> Self {
                Self::from_f64(f64::from(x))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.to_f32(), f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.to_f32(), f)
            }
        }
    };
}

minifloat!(
    /// ONNX FLOAT8E4M3FN: 4 exponent bits (bias 7), 3 mantissa bits, NaN but no infinities;
    /// largest value 448.
    F8E4M3FN,
    E4M3FN
);
minifloat!(
    /// ONNX FLOAT8E4M3FNUZ: 4 exponent bits (bias 8), 3 mantissa bits, one NaN (`0x80`), no
    /// infinities or negative zero; largest value 240.
    F8E4M3FNUZ,
    E4M3FNUZ
);
minifloat!(
    /// ONNX FLOAT8E5M2: 5 exponent bits (bias 15), 2 mantissa bits, IEEE infinities and NaNs;
    /// largest finite value 57344.
    F8E5M2,
    E5M2
);
minifloat!(
    /// ONNX FLOAT8E5M2FNUZ: 5 exponent bits (bias 16), 2 mantissa bits, one NaN (`0x80`), no
    /// infinities or negative zero; largest value 57344.
    F8E5M2FNUZ,
    E5M2FNUZ
);
minifloat!(
    /// ONNX FLOAT4E2M1, one per byte in the low nibble: 2 exponent bits (bias 1), 1 mantissa
    /// bit, no NaN or infinities; values ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}.
    F4E2M1,
    E2M1
);

/// ONNX FLOAT8E8M0: an 8-bit exponent (bias 127) and nothing else, `2^(bits - 127)`; `0xFF` is
/// NaN. Unsigned: there is no zero, no sign and no infinity.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
#[repr(transparent)]
pub struct F8E8M0(pub u8);

impl F8E8M0 {
    /// The value with these bits.
    pub const fn from_bits(bits: u8) -> Self {
        F8E8M0(bits)
    }
    /// The bit pattern.
    pub const fn to_bits(self) -> u8 {
        self.0
    }
    /// The exact value, `2^(bits - 127)`, or NaN for `0xFF`.
    pub fn to_f32(self) -> f32 {
        if self.0 == 0xFF {
            f32::NAN
        } else {
            // 2^-127 is a subnormal f32, 2^127 its largest power of two: both exact.
            f32::from_bits(if self.0 == 0 {
                0x0040_0000
            } else {
                u32::from(self.0) << 23
            })
        }
    }
    /// The exact value.
    pub fn to_f64(self) -> f64 {
        f64::from(self.to_f32())
    }
    /// ONNX `Cast`'s defaults (`round_mode="up"`, `saturate=1`) on the value as an `f32`: the
    /// magnitude's exponent, plus one when any mantissa bit is set (not past the largest, `0xFE`);
    /// NaN gives NaN, infinities the largest value, zeros `0x00`. The sign is ignored (ONNX leaves
    /// negative inputs undefined). Subnormals round up exactly: up to 2^-127 give `0x00` (the
    /// ONNX reference gives `0x01` for all nonzero subnormals, one step above 2^-127 itself).
    pub fn from_f32(x: f32) -> Self {
        if x.is_nan() {
            return F8E8M0(0xFF);
        }
        if x.is_infinite() {
            return F8E8M0(0xFE);
        }
        let bits = x.to_bits();
        let exp = (bits >> 23) & 0xFF;
        if exp == 0 {
            // Zero and subnormals: 2^-127 (code 0) is the smallest value, 2^-126 the next.
            return F8E8M0(u8::from(x.abs() > F8E8M0(0).to_f32()));
        }
        let up = u32::from(bits & 0x7F_FFFF != 0 && exp < 0xFE);
        F8E8M0(u8::try_from(exp + up).unwrap_or(0xFE))
    }
    /// As [`F8E8M0::from_f32`], on the value rounded to `f32` first (as ONNX does).
    #[allow(
        clippy::cast_possible_truncation,
        reason = "ONNX converts to float32 first"
    )]
    pub fn from_f64(x: f64) -> Self {
        Self::from_f32(x as f32)
    }
}

impl fmt::Debug for F8E8M0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_f32(), f)
    }
}

impl fmt::Display for F8E8M0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_f32(), f)
    }
}

/// ONNX UINT4, one per byte: the value `0..=15` in the low nibble.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Pod, Zeroable)]
#[repr(transparent)]
pub struct U4(pub u8);

impl U4 {
    /// The value of the low nibble of `bits` (the high nibble is ignored).
    pub const fn from_bits(bits: u8) -> Self {
        U4(bits & 0xF)
    }
    /// The nibble, zero above.
    pub const fn to_bits(self) -> u8 {
        self.0 & 0xF
    }
    /// The value.
    pub const fn get(self) -> u8 {
        self.0 & 0xF
    }
    /// The low 4 bits of `v` (C-like wrapping).
    #[allow(clippy::cast_possible_truncation, reason = "wrapping by contract")]
    pub const fn wrapping_from(v: i128) -> Self {
        U4((v as u8) & 0xF)
    }
}

/// ONNX INT4, one per byte: the two's-complement value `-8..=7` in the low nibble, zeros above
/// (as `ml_dtypes.int4` stores it).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
#[repr(transparent)]
pub struct I4(pub u8);

impl I4 {
    /// The value of the low nibble of `bits` (the high nibble is ignored).
    pub const fn from_bits(bits: u8) -> Self {
        I4(bits & 0xF)
    }
    /// The nibble, zero above.
    pub const fn to_bits(self) -> u8 {
        self.0 & 0xF
    }
    /// The value, sign-extended.
    #[allow(clippy::cast_possible_wrap, reason = "sign extension of the nibble")]
    pub const fn get(self) -> i8 {
        ((self.0 << 4) as i8) >> 4
    }
    /// The low 4 bits of `v` as two's complement (C-like wrapping).
    #[allow(clippy::cast_possible_truncation, reason = "wrapping by contract")]
    pub const fn wrapping_from(v: i128) -> Self {
        I4((v as u8) & 0xF)
    }
}

macro_rules! nibble_fmt {
    ($($t:ty),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.get(), f)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.get(), f)
            }
        }
    )*};
}
/// ONNX UINT2, one per byte: the value `0..=3` in the low two bits.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Pod, Zeroable)]
#[repr(transparent)]
pub struct U2(pub u8);

impl U2 {
    /// The value of the low two bits of `bits` (the others are ignored).
    pub const fn from_bits(bits: u8) -> Self {
        U2(bits & 0x3)
    }
    /// The two bits, zero above.
    pub const fn to_bits(self) -> u8 {
        self.0 & 0x3
    }
    /// The value.
    pub const fn get(self) -> u8 {
        self.0 & 0x3
    }
    /// The low 2 bits of `v` (C-like wrapping).
    #[allow(clippy::cast_possible_truncation, reason = "wrapping by contract")]
    pub const fn wrapping_from(v: i128) -> Self {
        U2((v as u8) & 0x3)
    }
}

/// ONNX INT2, one per byte: the two's-complement value `-2..=1` in the low two bits, zeros above
/// (as `ml_dtypes.int2` stores it).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
#[repr(transparent)]
pub struct I2(pub u8);

impl I2 {
    /// The value of the low two bits of `bits` (the others are ignored).
    pub const fn from_bits(bits: u8) -> Self {
        I2(bits & 0x3)
    }
    /// The two bits, zero above.
    pub const fn to_bits(self) -> u8 {
        self.0 & 0x3
    }
    /// The value, sign-extended.
    #[allow(clippy::cast_possible_wrap, reason = "sign extension of the two bits")]
    pub const fn get(self) -> i8 {
        ((self.0 << 6) as i8) >> 6
    }
    /// The low 2 bits of `v` as two's complement (C-like wrapping).
    #[allow(clippy::cast_possible_truncation, reason = "wrapping by contract")]
    pub const fn wrapping_from(v: i128) -> Self {
        I2((v as u8) & 0x3)
    }
}

nibble_fmt!(U4, I4, U2, I2);

/// Packs one-per-byte elements of `bits` bits (4 or 2) into whole bytes, the first element in
/// the lowest bits (ONNX `raw_data`, ONNX Runtime and OpenVINO u4/i4/f4e2m1/u2/i2); the bits
/// past the last element of a partial byte are zero.
///
/// # Panics
/// When `bits` is not 2 or 4 (a programming error: only these are packed).
pub fn pack_bits(unpacked: &[u8], bits: u32) -> Vec<u8> {
    assert!(bits == 2 || bits == 4, "packing {bits}-bit elements");
    let per = (8 / bits) as usize;
    let mask = (1u8 << bits) - 1;
    unpacked
        .chunks(per)
        .map(|c| {
            c.iter()
                .zip((0..8).step_by(bits as usize))
                .fold(0u8, |b, (&v, shift)| b | ((v & mask) << shift))
        })
        .collect()
}

/// Unpacks `count` elements of `bits` bits (4 or 2) stored whole bytes at a time, the first
/// element in the lowest bits, into one per byte.
///
/// # Errors
/// A message when `packed` does not hold exactly the bytes `count` elements need.
///
/// # Panics
/// When `bits` is not 2 or 4.
pub fn unpack_bits(packed: &[u8], count: usize, bits: u32) -> Result<Vec<u8>, String> {
    assert!(bits == 2 || bits == 4, "unpacking {bits}-bit elements");
    let per = (8 / bits) as usize;
    let need = count.div_ceil(per);
    if packed.len() != need {
        return Err(format!(
            "{} bytes of packed {bits}-bit data do not hold {count} elements ({need} bytes needed)",
            packed.len(),
        ));
    }
    let mask = (1u8 << bits) - 1;
    Ok(packed
        .iter()
        .flat_map(|&b| (0..8).step_by(bits as usize).map(move |s| (b >> s) & mask))
        .take(count)
        .collect())
}

/// Packs one-per-byte nibbles two per byte, the first element in the low nibble
/// ([`pack_bits`] with 4 bits).
pub fn pack_nibbles(unpacked: &[u8]) -> Vec<u8> {
    pack_bits(unpacked, 4)
}

/// Unpacks `count` nibbles stored two per byte, low nibble first, into one per byte
/// ([`unpack_bits`] with 4 bits).
///
/// # Errors
/// A message when `packed` does not hold exactly `count.div_ceil(2)` bytes.
pub fn unpack_nibbles(packed: &[u8], count: usize) -> Result<Vec<u8>, String> {
    unpack_bits(packed, count, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(F8E4M3FN(0x7E).to_f32(), 448.0);
        assert!(F8E4M3FN(0x7F).to_f32().is_nan() && F8E4M3FN(0xFF).to_f32().is_nan());
        assert_eq!(F8E4M3FN(0x01).to_f32(), 2f32.powi(-9));
        assert_eq!(F8E4M3FNUZ(0x7F).to_f32(), 240.0);
        assert!(F8E4M3FNUZ(0x80).to_f32().is_nan());
        assert_eq!(F8E5M2(0x7B).to_f32(), 57344.0);
        assert_eq!(F8E5M2(0x7C).to_f32(), f32::INFINITY);
        assert_eq!(F8E5M2FNUZ(0x7F).to_f32(), 57344.0);
        assert_eq!(F8E8M0(127).to_f32(), 1.0);
        assert_eq!(F8E8M0(0).to_f32(), 2f32.powi(-127));
        assert_eq!(F8E8M0(254).to_f32(), 2f32.powi(127));
        let f4: Vec<f32> = (0..16).map(|b| F4E2M1(b).to_f32()).collect();
        assert_eq!(
            f4,
            [
                0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0,
                -6.0
            ]
        );
        assert_eq!(F8E4M3FN::from_f64(1000.0).0, 0x7E);
        assert_eq!(F8E4M3FN::from_f64(f64::NEG_INFINITY).0, 0xFE);
        assert_eq!(F8E4M3FNUZ::from_f64(-0.0).0, 0);
        assert_eq!(F8E4M3FN::from_f64(-0.0).0, 0x80);
        // 1.0625 lies halfway between 1 (mantissa 000) and 1.125 (001): ties to even.
        assert_eq!(F8E4M3FN::from_f64(1.0625).to_f32(), 1.0);
        assert_eq!(F8E4M3FN::from_f64(1.1875).to_f32(), 1.25);
        assert_eq!(F8E8M0::from_f32(3.0).to_f32(), 4.0);
        assert_eq!(F8E8M0::from_f32(4.0).to_f32(), 4.0);
        assert_eq!(I4(0xF).get(), -1);
        assert_eq!(I4::wrapping_from(-8).0, 8);
        assert_eq!(U4::wrapping_from(17).get(), 1);
    }

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            for (v, back) in [
                (
                    F8E4M3FN(b).to_f64(),
                    F8E4M3FN::from_f64(F8E4M3FN(b).to_f64()).0,
                ),
                (
                    F8E4M3FNUZ(b).to_f64(),
                    F8E4M3FNUZ::from_f64(F8E4M3FNUZ(b).to_f64()).0,
                ),
                (
                    F8E5M2FNUZ(b).to_f64(),
                    F8E5M2FNUZ::from_f64(F8E5M2FNUZ(b).to_f64()).0,
                ),
                (F8E8M0(b).to_f64(), F8E8M0::from_f64(F8E8M0(b).to_f64()).0),
            ] {
                if !v.is_nan() {
                    assert_eq!(back, b, "{b:#x} = {v}");
                }
            }
            let v = F8E5M2(b).to_f64();
            if v.is_finite() {
                assert_eq!(F8E5M2::from_f64(v).0, b);
            }
        }
    }

    #[test]
    fn nibbles_pack_low_first() {
        assert_eq!(pack_nibbles(&[1, 2, 3]), [0x21, 0x03]);
        assert_eq!(unpack_nibbles(&[0x21, 0x03], 3).unwrap(), [1, 2, 3]);
        assert!(unpack_nibbles(&[0x21], 3).is_err());
    }

    #[test]
    fn two_bit_values_pack_four_per_byte_lowest_first() {
        // onnx.numpy_helper.from_array(np.array([0, 1, 2, 3, 1], ml_dtypes.uint2)).raw_data
        assert_eq!(pack_bits(&[0, 1, 2, 3, 1], 2), [0xE4, 0x01]);
        assert_eq!(unpack_bits(&[0xE4, 0x01], 5, 2).unwrap(), [0, 1, 2, 3, 1]);
        let e = unpack_bits(&[0xE4], 5, 2).unwrap_err();
        assert!(e.contains("2-bit") && e.contains("2 bytes needed"), "{e}");
        assert_eq!(I2(0x3).get(), -1);
        assert_eq!(I2(0x2).get(), -2);
        assert_eq!(I2(0x1).get(), 1);
        assert_eq!(I2::wrapping_from(-2).0, 2);
        assert_eq!(I2::wrapping_from(5).get(), 1);
        assert_eq!(U2::wrapping_from(7).get(), 3);
        assert_eq!(U2::from_bits(0xFE).get(), 2);
    }
}
