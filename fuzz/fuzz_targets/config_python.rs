//! MMDeploy's Python-literal config subset: the tokenizer and parser never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rdeploy_config::parse_module(text);
    }
});
