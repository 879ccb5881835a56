//! Tensor files users pass as inputs (.npy, .npz, ONNX TensorProto .pb; the first byte picks):
//! lying headers and truncated data give errors, never panics or huge allocations.
#![no_main]
use std::io::Write;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let ext = ["npy", "npz", "pb"][usize::from(pick) % 3];
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join(format!("t.{ext}"));
    if let Ok(mut f) = std::fs::File::create(&path) {
        let _ = f.write_all(body);
    }
    let _ = rdeploy_core::io::read_tensor_file(&path);
});
