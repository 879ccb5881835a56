//! A work dir's deploy.json: any content is read, checked, or refused; never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    if std::fs::write(dir.path().join("deploy.json"), data).is_ok() {
        let _ = rdeploy::WorkDir::open(dir.path());
    }
});
