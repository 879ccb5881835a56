//! rdeploy's config reader against mmengine's `Config.fromfile` on a corpus of deploy configs
//! (tests/data/configs). The references are made by mmengine itself
//! (scripts/prepare-test-data.py), so they do not depend on this code.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// Structural equality that also checks key order and int-vs-float, which `==` on serde_json
/// values ignores or conflates.
fn same(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let (kx, ky): (Vec<_>, Vec<_>) = (x.keys().collect(), y.keys().collect());
            if kx != ky {
                return Err(format!("{path}: keys {kx:?}, mmengine has {ky:?}"));
            }
            x.iter()
                .try_for_each(|(k, v)| same(v, &y[k], &format!("{path}.{k}")))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .try_for_each(|(i, (p, q))| same(p, q, &format!("{path}[{i}]"))),
        (Value::Number(x), Value::Number(y)) => {
            let kind = |n: &serde_json::Number| if n.is_f64() { "float" } else { "int" };
            if kind(x) != kind(y) || x.as_f64() != y.as_f64() {
                return Err(format!(
                    "{path}: {x} ({}), mmengine has {y} ({})",
                    kind(x),
                    kind(y)
                ));
            }
            Ok(())
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a}, mmengine has {b}")),
    }
}

#[test]
fn corpus_merges_exactly_as_mmengine() {
    let refs_file = root().join("generated/configs-expected.json");
    let text = std::fs::read_to_string(&refs_file).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/test.sh (it installs mmengine and makes the references)",
            refs_file.display()
        )
    });
    let refs: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    assert!(refs.len() >= 20, "only {} references", refs.len());
    let mut failures = Vec::new();
    let mut errors = 0;
    for (rel, want) in &refs {
        let path = root().join("configs").join(rel);
        let got = rdeploy_config::Config::from_file(&path);
        match (want.get("ok"), got) {
            (Some(w), Ok(c)) => {
                if let Err(e) = same(&c.to_json(), w, rel) {
                    failures.push(e);
                }
            }
            (Some(_), Err(e)) => {
                failures.push(format!("{rel}: mmengine reads it, rdeploy fails: {e}"))
            }
            (None, Ok(c)) => failures.push(format!(
                "{rel}: mmengine fails ({}), rdeploy reads {}",
                want["error"],
                c.to_json()
            )),
            (None, Err(e)) => {
                errors += 1;
                assert!(
                    e.to_string().contains(rel.rsplit('/').next().unwrap()),
                    "{rel}: the error should name the file: {e}"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences from mmengine:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(errors, 5, "the five error cases must fail in both");
}
