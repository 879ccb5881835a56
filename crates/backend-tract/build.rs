//! Records the tract version resolved in Cargo.lock, for `check-env` and manifests.
fn main() {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let mut version = "unknown".to_string();
    let mut in_tract = false;
    for line in text.lines() {
        if line.starts_with("name = ") {
            in_tract = line == "name = \"tract-onnx\"";
        } else if in_tract && let Some(v) = line.strip_prefix("version = ") {
            version = v.trim_matches('"').to_string();
            break;
        }
    }
    println!("cargo:rustc-env=RDEPLOY_TRACT_VERSION={version}");
}
