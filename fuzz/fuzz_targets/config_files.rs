//! Whole config files in each format (the first byte picks .py, .yaml, .json or .toml), with
//! `_base_` inheritance and merging: errors, never panics.
#![no_main]
use std::io::Write;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let ext = ["py", "yaml", "json", "toml"][usize::from(pick) % 4];
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join(format!("cfg.{ext}"));
    if let Ok(mut f) = std::fs::File::create(&path) {
        let _ = f.write_all(body);
    }
    if let Ok(cfg) = rdeploy_config::Config::from_file(&path) {
        let _ = cfg.onnx_config();
        let _ = cfg.model_inputs();
        let _ = cfg.backend_type();
    }
});
