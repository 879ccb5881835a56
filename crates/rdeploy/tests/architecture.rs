//! The dependency rule of docs/architecture.md, read from `cargo metadata`: dependencies point
//! down only (front ends -> facade -> ONNX passes / config / backends -> custom-op kernels ->
//! core), a backend depends on core (and the kernels of `rdeploy-ops`) alone, and there are no
//! cycles.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use std::collections::{BTreeMap, BTreeSet};

/// The workspace crates each layer may depend on (normal dependencies; dev-dependencies are
/// free, as tests may use anything).
fn allowed(krate: &str) -> Option<&'static [&'static str]> {
    const BACKENDS_AND_BELOW: &[&str] = &[
        "rdeploy-core",
        "rdeploy-config",
        "rdeploy-onnx",
        "rdeploy-ops",
        "rdeploy-plugin",
        "rdeploy-backend-tract",
        "rdeploy-backend-ort",
        "rdeploy-backend-openvino",
        "rdeploy-backend-python",
    ];
    Some(match krate {
        "rdeploy-core" => &[],
        "rdeploy-config" => &["rdeploy-core"],
        "rdeploy-onnx" => &["rdeploy-core", "rdeploy-config"],
        "rdeploy-plugin" | "rdeploy-conformance" | "rdeploy-ops" => &["rdeploy-core"],
        // A backend depends on core, and on the engine-neutral custom-op kernels it registers.
        b if b.starts_with("rdeploy-backend-") => &["rdeploy-core", "rdeploy-ops"],
        "rdeploy" => BACKENDS_AND_BELOW,
        // What the servers share (model repositories, v2 datatypes, batching), over the facade.
        "rdeploy-serving" => &["rdeploy"],
        // Front ends: the command line, the Python package, the servers.
        "rdeploy-cli" | "rdeploy-python" | "rdeploy-serve" | "rdeploy-triton" => {
            &["rdeploy", "rdeploy-serving", "rdeploy-serve"]
        }
        _ => return None,
    })
}

fn metadata() -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn dependencies_point_down_only() {
    let meta = metadata();
    let packages = meta["packages"].as_array().unwrap();
    let ours: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut problems = Vec::new();
    for p in packages {
        let name = p["name"].as_str().unwrap();
        let deps: Vec<&str> = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap())
            .filter(|d| ours.contains(d))
            .collect();
        match allowed(name) {
            None => problems.push(format!(
                "{name} is not placed in a layer: add it to docs/architecture.md and to allowed() here"
            )),
            Some(ok) => {
                for d in &deps {
                    if !ok.contains(d) {
                        problems.push(format!("{name} depends on {d}, which its layer may not"));
                    }
                }
            }
        }
        graph.insert(name, deps);
    }
    assert!(
        graph.contains_key("rdeploy") && graph.contains_key("rdeploy-onnx"),
        "the facade and the ONNX crate are workspace members: {:?}",
        graph.keys()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // No cycles (depth-first search with colours).
    fn visit<'a>(
        n: &'a str,
        g: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) {
        match state.get(n) {
            Some(2) => return,
            Some(1) => panic!("dependency cycle: {} -> {n}", path.join(" -> ")),
            _ => {}
        }
        state.insert(n, 1);
        path.push(n);
        for d in g.get(n).into_iter().flatten() {
            visit(d, g, state, path);
        }
        path.pop();
        state.insert(n, 2);
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        visit(n, &graph, &mut state, &mut Vec::new());
    }
}

#[test]
fn the_rule_rejects_what_it_should() {
    assert_eq!(
        allowed("rdeploy-backend-tract"),
        Some(&["rdeploy-core", "rdeploy-ops"][..])
    );
    assert!(!allowed("rdeploy-cli").unwrap().contains(&"rdeploy-core"));
    assert!(allowed("something-new").is_none());
}
