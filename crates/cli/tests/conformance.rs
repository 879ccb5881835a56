//! `rdeploy conformance`: a sample of the ONNX node suite on the three engines gives exactly
//! the classes committed in docs/conformance.json (the whole run that generated
//! docs/conformance.md), so the published table stays true.

use assert_cmd::Command;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"))
        .join("bin/python")
}

/// The node cases, serialised by scripts/prepare-conformance.py (once; it skips work done).
fn cases() -> PathBuf {
    let dir = root().join("target/conformance");
    let o = std::process::Command::new(python())
        .arg(root().join("scripts/prepare-conformance.py"))
        .args(["--suite", "node", "--out"])
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("the venv's python (scripts/setup-venv.sh) prepares the cases: {e}")
        });
    assert!(
        o.status.success(),
        "prepare-conformance.py failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    dir
}

#[test]
fn a_sample_of_the_node_suite_matches_the_committed_results() {
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/conformance.json")).unwrap(),
    )
    .unwrap();
    let backends: Vec<String> = committed["backends"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let dir = cases();
    let o = Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(root())
        .env("RDEPLOY_LOG", "error")
        .args([
            "conformance",
            "--backends",
            &backends.join(","),
            "--sample",
            "11",
        ])
        .args(["--jobs", "2", "--json", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["cases"].as_array().unwrap();
    assert!(rows.len() >= 170 * backends.len(), "{} results", rows.len());
    let mut differ: BTreeMap<String, (String, String)> = BTreeMap::new();
    for r in rows {
        let (case, backend) = (r["case"].as_str().unwrap(), r["backend"].as_str().unwrap());
        let now = r["class"].as_str().unwrap();
        let then = committed["cases"][case][backend]
            .as_str()
            .unwrap_or("absent");
        if now != then {
            differ.insert(
                format!("{case} on {backend}"),
                (then.to_string(), format!("{now}: {}", r["detail"])),
            );
        }
    }
    assert!(
        differ.is_empty(),
        "docs/conformance.json is out of date (regenerate it: docs/conformance.md says how): {differ:#?}"
    );
    // Each class is a count in the summary.
    for b in &backends {
        let s = &v["summary"][b];
        let sum: u64 = ["pass", "wrong", "unsupported", "error", "timeout", "crash"]
            .iter()
            .map(|c| s[c].as_u64().unwrap())
            .sum();
        assert_eq!(sum, s["total"].as_u64().unwrap(), "{s}");
    }
}

#[test]
fn bad_arguments_say_what_to_do() {
    let run = |args: &[&str]| {
        let o = Command::cargo_bin("rdeploy")
            .unwrap()
            .current_dir(root())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = run(&["conformance", "--dir", "/nonexistent/cases"]);
    assert!(e.contains("prepare-conformance.py"), "{e}");
    let dir = cases();
    let d = dir.to_str().unwrap();
    let e = run(&["conformance", "--dir", d, "--filter", "(unclosed"]);
    assert!(e.contains("--filter"), "{e}");
    let e = run(&["conformance", "--dir", d, "--filter", "^no_such_case$"]);
    assert!(e.contains("no case matches"), "{e}");
    let e = run(&[
        "conformance",
        "--dir",
        d,
        "--backends",
        "nosuch",
        "--filter",
        "^test_abs$",
    ]);
    assert!(e.contains("no backend named 'nosuch'"), "{e}");
    // A config a backend refuses is one error naming the file and key, not a refused suite.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("badprec.py");
    std::fs::write(
        &bad,
        "backend_config = dict(type='tract', precision='fp99')\n",
    )
    .unwrap();
    let e = run(&[
        "conformance",
        "--dir",
        d,
        "--backends",
        "onnxruntime",
        "--filter",
        "^test_abs$",
        "--config",
        bad.to_str().unwrap(),
    ]);
    assert!(
        e.contains("badprec.py") && e.contains("backend_config.precision"),
        "{e}"
    );
    let e = run(&[
        "conformance",
        "--dir",
        d,
        "--native",
        "onnxruntime",
        "--filter",
        "^test_abs$",
    ]);
    assert!(e.contains("BACKEND=FILE.json"), "{e}");
}
