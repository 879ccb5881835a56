//! `rdeploy check-env`: every backend's version, or why it is unavailable.

use crate::out;
use anyhow::Result;
use rdeploy::Registry;
use serde_json::json;

pub(crate) fn run(registry: &Registry, json: bool) -> Result<()> {
    let status = rdeploy::check_env(registry);
    if json {
        let list: Vec<serde_json::Value> = status
            .iter()
            .map(|b| {
                json!({
                    "name": b.name,
                    "available": b.available,
                    "version": b.version,
                    "reason": b.reason,
                    "devices": b.devices,
                    "custom_ops": b.custom_ops,
                    // The human line: where the engine was found (library, Python package and
                    // interpreter of a Python backend).
                    "line": b.line,
                })
            })
            .collect();
        let doc = json!({"rdeploy": rdeploy::VERSION, "backends": list});
        out(&format!("{}\n", serde_json::to_string_pretty(&doc)?))
    } else {
        let mut s = format!("rdeploy:\t{}\n", rdeploy::VERSION);
        for b in &status {
            s.push_str(&b.line);
            s.push('\n');
            // MMDeploy's `ONNXRuntime custom ops: Available` line, with the ops named.
            if !b.custom_ops.is_empty() {
                s.push_str(&format!(
                    "{} custom ops:\tAvailable ({})\n",
                    b.name,
                    b.custom_ops.join(", ")
                ));
            }
        }
        out(&s)
    }
}
