//! rdeploy's bfloat16, float8, float8e8m0, float4e2m1 and 2-bit conversions against `ml_dtypes` and
//! ONNX's reference implementation (`onnx.numpy_helper.saturate_cast`, `to_float8e8m0`), for
//! every bit pattern on decode and for every bfloat16 value (as `f32`, which puts inputs on and
//! between every float8 value, ties included) plus random `f32` bit patterns on encode.
//!
//! The tables come from `$VIRTUAL_ENV/bin/python` (or `python3`) with numpy, ml_dtypes and onnx;
//! without them the test says so and skips.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_core::{F4E2M1, F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, F8E8M0, bf16};
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = r#"
import sys, numpy as np, ml_dtypes as m
from onnx import numpy_helper as nh
out = sys.argv[1]
rng = np.random.default_rng(0)
x = np.concatenate([
    np.arange(65536, dtype=np.uint32) << 16,
    rng.integers(0, 2**32, 100000, dtype=np.uint64).astype(np.uint32),
]).view(np.float32)
x.tofile(out + "/x.bin")
np.arange(65536, dtype=np.uint16).view(m.bfloat16).astype(np.float32).tofile(out + "/bf16_decode.bin")
x.astype(m.bfloat16).view(np.uint16).tofile(out + "/bf16_encode.bin")
for name in ["float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float4_e2m1fn"]:
    t = getattr(m, name)
    codes = np.arange(16 if name.startswith("float4") else 256, dtype=np.uint8)
    codes.view(t).astype(np.float32).tofile(out + f"/{name}_decode.bin")
    nh.saturate_cast(x, t).view(np.uint8).tofile(out + f"/{name}_encode.bin")
np.arange(256, dtype=np.uint8).view(m.float8_e8m0fnu).astype(np.float32).tofile(out + "/float8_e8m0fnu_decode.bin")
nh.to_float8e8m0(x, True, "up").view(np.uint8).tofile(out + "/float8_e8m0fnu_encode.bin")
"#;

fn python() -> PathBuf {
    match std::env::var_os("VIRTUAL_ENV") {
        Some(v) => Path::new(&v).join("bin/python"),
        None => PathBuf::from("python3"),
    }
}

/// Whether the Python has numpy, ml_dtypes and onnx (else the tests say so and skip).
fn has_references() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import numpy, ml_dtypes, onnx"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "skipping: {} has no numpy, ml_dtypes and onnx; set VIRTUAL_ENV to an environment with them",
            python().display()
        );
    }
    ok
}

fn f32s(p: &Path) -> Vec<f32> {
    std::fs::read(p)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[test]
fn conversions_match_ml_dtypes_and_onnx() {
    let dir = tempfile::tempdir().unwrap();
    if !has_references() {
        return;
    }
    let o = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "writing the reference tables failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let x = f32s(&dir.path().join("x.bin"));
    let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap();

    // bfloat16: every pattern decodes as ml_dtypes does; encoding rounds to nearest even.
    let dec = f32s(&dir.path().join("bf16_decode.bin"));
    for (bits, want) in dec.iter().enumerate() {
        assert!(
            same(bf16::from_bits(bits as u16).to_f32(), *want),
            "bf16 {bits:#x}"
        );
    }
    let enc: Vec<u16> = read("bf16_encode.bin")
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    for (v, want) in x.iter().zip(&enc) {
        let got = bf16::from_f32(*v);
        assert!(
            got.to_bits() == *want || (v.is_nan() && got.is_nan()),
            "bf16 encode of {v:e} ({:#x}): {:#x}, ml_dtypes {want:#x}",
            v.to_bits(),
            got.to_bits()
        );
    }

    type Decode = fn(u8) -> f32;
    type Encode = fn(f32) -> u8;
    let formats: [(&str, Decode, Encode); 5] = [
        (
            "float8_e4m3fn",
            |b| F8E4M3FN(b).to_f32(),
            |v| F8E4M3FN::from_f32(v).0,
        ),
        (
            "float8_e4m3fnuz",
            |b| F8E4M3FNUZ(b).to_f32(),
            |v| F8E4M3FNUZ::from_f32(v).0,
        ),
        (
            "float8_e5m2",
            |b| F8E5M2(b).to_f32(),
            |v| F8E5M2::from_f32(v).0,
        ),
        (
            "float8_e5m2fnuz",
            |b| F8E5M2FNUZ(b).to_f32(),
            |v| F8E5M2FNUZ::from_f32(v).0,
        ),
        (
            "float4_e2m1fn",
            |b| F4E2M1(b).to_f32(),
            |v| F4E2M1::from_f32(v).0,
        ),
    ];
    for (name, decode, encode) in formats {
        let dec = f32s(&dir.path().join(format!("{name}_decode.bin")));
        for (bits, want) in dec.iter().enumerate() {
            assert!(
                same(decode(bits as u8), *want),
                "{name} decode {bits:#x}: {} vs {want}",
                decode(bits as u8)
            );
        }
        for (v, want) in x.iter().zip(read(&format!("{name}_encode.bin"))) {
            if v.is_nan() {
                // Which NaN pattern (or, for float4, which stand-in) is not fixed by ONNX.
                assert!(
                    decode(encode(*v)).is_nan() || name.starts_with("float4"),
                    "{name} NaN"
                );
                continue;
            }
            assert_eq!(
                encode(*v),
                want,
                "{name} encode of {v:e} ({:#x}): ours {}, ONNX {}",
                v.to_bits(),
                decode(encode(*v)),
                decode(want)
            );
        }
    }

    let dec = f32s(&dir.path().join("float8_e8m0fnu_decode.bin"));
    for (bits, want) in dec.iter().enumerate() {
        assert!(
            same(F8E8M0(bits as u8).to_f32(), *want),
            "e8m0 decode {bits:#x}"
        );
    }
    for (v, want) in x.iter().zip(read("float8_e8m0fnu_encode.bin")) {
        // Documented differences from ONNX's reference code: infinities saturate to 0xFE as
        // ONNX's Cast table says (the reference gives NaN), and subnormals up to 2^-127 round
        // up to 2^-127 itself (the reference skips it and gives 2^-126).
        if v.is_infinite() || (v.is_subnormal() && v.abs() <= F8E8M0(0).to_f32()) {
            continue;
        }
        assert_eq!(
            F8E8M0::from_f32(*v).0,
            want,
            "e8m0 encode of {v:e} ({:#x})",
            v.to_bits()
        );
    }
}

const WRITE: &str = r#"
import sys, numpy as np, ml_dtypes as m, onnx
from onnx import numpy_helper as nh
out = sys.argv[1]
vals = np.array([[-1.5, 0.5, 3.0], [7.0, -4.0, 0.0]], dtype=np.float32)
for name in ["bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
             "float8_e8m0fnu", "int4", "uint4", "float4_e2m1fn"]:
    v = np.abs(vals) if name in ("uint4", "float8_e8m0fnu") else vals
    if name == "float8_e8m0fnu":
        v = np.where(v == 0, 1, v)
    a = v.astype(getattr(m, name))
    np.save(f"{out}/{name}.npy", a)
    open(f"{out}/{name}.pb", "wb").write(nh.from_array(a, name).SerializeToString())
    a.astype(np.float32).tofile(f"{out}/{name}.f32")
# Every 2-bit value; six of them leave the second packed byte half full.
for name, v in [("int2", [[-2, -1, 0], [1, 1, -2]]), ("uint2", [[0, 1, 2], [3, 3, 1]])]:
    a = np.array(v, dtype=getattr(m, name))
    np.save(f"{out}/{name}.npy", a)
    open(f"{out}/{name}.pb", "wb").write(nh.from_array(a, name).SerializeToString())
    a.astype(np.float32).tofile(f"{out}/{name}.f32")
s = np.array([["a", "bc", ""], ["ü€", "x y", "7"]])
np.save(f"{out}/str.npy", s)
np.save(f"{out}/bytes.npy", np.char.encode(s, "utf-8"))
open(f"{out}/str.pb", "wb").write(nh.from_array(s.astype(object), "str").SerializeToString())
"#;

const CHECK: &str = r#"
import sys, numpy as np, ml_dtypes as m, onnx
from onnx import numpy_helper as nh
src, back = sys.argv[1], sys.argv[2]
for name in ["bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
             "float8_e8m0fnu", "int4", "uint4", "float4_e2m1fn", "int2", "uint2"]:
    # (numpy.load cannot read ml_dtypes' own '<f1' float8_e5m2 files: the values instead.)
    want = np.fromfile(f"{src}/{name}.f32", np.float32).reshape(2, 3).astype(getattr(m, name))
    got = np.load(f"{back}/{name}.npy").view(getattr(m, name))
    assert got.shape == want.shape and (got.view(np.uint8) == want.view(np.uint8)).all(), (name, got, want)
    t = onnx.TensorProto(); t.ParseFromString(open(f"{back}/{name}.pb", "rb").read())
    got = nh.to_array(t)
    assert got.dtype == want.dtype and (got.astype(np.float32) == want.astype(np.float32)).all(), (name, got, want)
s = np.load(f"{back}/str.npy")
assert s.dtype.kind == "U" and s.tolist() == [["a", "bc", ""], ["ü€", "x y", "7"]], s
t = onnx.TensorProto(); t.ParseFromString(open(f"{back}/str.pb", "rb").read())
assert nh.to_array(t).tolist() == s.tolist()
print("ok")
"#;

#[test]
fn npy_and_pb_files_round_trip_with_numpy_and_onnx() {
    use rdeploy_core::io::{read_tensor_file, read_tensor_file_expecting, write_npy};
    use rdeploy_core::{DType, Tensor};
    let src = tempfile::tempdir().unwrap();
    let back = tempfile::tempdir().unwrap();
    if !has_references() {
        return;
    }
    let o = Command::new(python())
        .arg("-c")
        .arg(WRITE)
        .arg(src.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "writing the reference files failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let one = |v: Vec<(Option<String>, Tensor)>| v.into_iter().next().unwrap().1;
    for d in [
        DType::BF16,
        DType::F8E4M3FN,
        DType::F8E4M3FNUZ,
        DType::F8E5M2,
        DType::F8E5M2FNUZ,
        DType::F8E8M0,
        DType::I4,
        DType::U4,
        DType::F4E2M1,
        DType::I2,
        DType::U2,
    ] {
        let name = d.numpy_name();
        let want = f32s(&src.path().join(format!("{name}.f32")))
            .into_iter()
            .map(f64::from)
            .collect::<Vec<_>>();
        let npy = one(
            read_tensor_file_expecting(&src.path().join(format!("{name}.npy")), &|_| Some(d))
                .unwrap(),
        );
        let pb = one(read_tensor_file(&src.path().join(format!("{name}.pb"))).unwrap());
        for t in [&npy, &pb] {
            assert_eq!((t.dtype(), t.shape()), (d, &[2usize, 3][..]), "{name}");
            assert_eq!(t.to_f64_vec(), want, "{name}");
        }
        write_npy(&back.path().join(format!("{name}.npy")), &npy).unwrap();
        let proto = rdeploy_core::onnx::tensor_to_proto(name, &pb);
        std::fs::write(
            back.path().join(format!("{name}.pb")),
            prost::Message::encode_to_vec(&proto),
        )
        .unwrap();
    }
    let strings: Vec<String> = ["a", "bc", "", "ü€", "x y", "7"].map(String::from).to_vec();
    let want = Tensor::from_strings(&[2, 3], strings).unwrap();
    for f in ["str.npy", "bytes.npy", "str.pb"] {
        assert_eq!(
            one(read_tensor_file(&src.path().join(f)).unwrap()),
            want,
            "{f}"
        );
    }
    write_npy(&back.path().join("str.npy"), &want).unwrap();
    let proto = rdeploy_core::onnx::tensor_to_proto("str", &want);
    std::fs::write(
        back.path().join("str.pb"),
        prost::Message::encode_to_vec(&proto),
    )
    .unwrap();
    let o = Command::new(python())
        .arg("-c")
        .arg(CHECK)
        .arg(src.path())
        .arg(back.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "numpy/onnx disagree with rdeploy's files: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

const TWO_BIT_CASTS: &str = r#"
import sys, numpy as np, ml_dtypes as m
out = sys.argv[1]
f = np.arange(-40, 40, dtype=np.float32) / 4  # -10.0 .. 9.75 in quarters
i = np.arange(-20, 20, dtype=np.int64)
f.tofile(f"{out}/f.bin")
i.tofile(f"{out}/i.bin")
for name in ["int2", "uint2"]:
    t = getattr(m, name)
    f.astype(t).view(np.uint8).tofile(f"{out}/{name}_from_f32.bin")
    i.astype(t).view(np.uint8).tofile(f"{out}/{name}_from_i64.bin")
"#;

/// Casts to int2 and uint2 (unchecked) give `ml_dtypes`'s bytes: floats truncate toward zero,
/// then integers keep their low two bits.
#[test]
fn two_bit_casts_match_ml_dtypes() {
    use rdeploy_core::{Cast, DType, Tensor};
    let dir = tempfile::tempdir().unwrap();
    if !has_references() {
        return;
    }
    let o = Command::new(python())
        .arg("-c")
        .arg(TWO_BIT_CASTS)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "writing the reference casts failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap();
    let f = f32s(&dir.path().join("f.bin"));
    let i: Vec<i64> = read("i.bin")
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let f = Tensor::from_shape_vec(&[f.len()], f).unwrap();
    let i = Tensor::from_shape_vec(&[i.len()], i).unwrap();
    for (d, name) in [(DType::I2, "int2"), (DType::U2, "uint2")] {
        for (src, what) in [(&f, "f32"), (&i, "i64")] {
            let got = src.cast(d, Cast::Unchecked).unwrap();
            let want = read(&format!("{name}_from_{what}.bin"));
            assert_eq!(got.as_bytes().unwrap(), &want[..], "{what} to {name}");
        }
    }
}
