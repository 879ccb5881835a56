//! `rdeploy rewrite`: the graph passes of a deploy, alone.

use crate::args::RewriteArgs;
use crate::out;
use anyhow::{Context, Result, bail};
use rdeploy::{Config, Registry, RewriteRegistry};
use serde_json::json;

pub(crate) fn run(registry: &Registry, a: RewriteArgs) -> Result<()> {
    let rewrites = RewriteRegistry::builtin();
    if a.list {
        return list(registry, &rewrites, a.backend.as_deref(), a.json);
    }
    let (Some(model), Some(backend), Some(output)) = (&a.model, &a.backend, &a.output) else {
        bail!("rewrite needs MODEL, --backend and -o OUTPUT (or --list)");
    };
    let manager = registry.get(backend)?;
    let mut cfg = match &a.config {
        Some(p) => Config::from_file(p)?.deploy_config(),
        None => rdeploy::DeployConfig(json!({})),
    };
    if let Some(root) = cfg.0.as_object_mut() {
        let be = root.entry("backend_config").or_insert_with(|| json!({}));
        if let Some(be) = be.as_object_mut() {
            be.insert("type".into(), json!(backend));
        }
        if let Some(t) = a.target_opset {
            let rc = root.entry("rewrite_config").or_insert_with(|| json!({}));
            match rc.as_object_mut() {
                Some(rc) => {
                    rc.insert("opset_upgrade".into(), json!({ "target": t }));
                }
                None => bail!("rewrite_config in the config is not a dict"),
            }
        }
    }
    let (m, records) = rdeploy::rewrite_model(
        manager.as_ref(),
        model,
        &cfg,
        a.passes.as_deref(),
        &rewrites,
    )?;
    rdeploy::core::onnx::save(&m, output)
        .with_context(|| format!("writing {}", output.display()))?;
    if a.json {
        return out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "model": model, "backend": backend, "output": output, "passes": records
            }))?
        ));
    }
    let mut s = String::new();
    for r in &records {
        s.push_str(&format!(
            "{:<14} {}{}\n",
            r.name,
            if r.outcome.changed {
                "changed the graph"
            } else {
                "nothing to do"
            },
            if r.outcome.details.is_empty() {
                String::new()
            } else {
                format!(" {}", serde_json::Value::Object(r.outcome.details.clone()))
            }
        ));
        for n in &r.outcome.notes {
            s.push_str(&format!("  note  {n}\n"));
        }
    }
    if records.is_empty() {
        s.push_str("no pass applies to this model for this backend\n");
    }
    s.push_str(&format!("wrote {}\n", output.display()));
    out(&s)
}

fn list(
    registry: &Registry,
    rewrites: &RewriteRegistry,
    backend: Option<&str>,
    json: bool,
) -> Result<()> {
    if let Some(b) = backend {
        registry.get(b)?;
    }
    let mut rows = vec![json!({
        "name": "opset_upgrade",
        "kind": "pass",
        "backends": [],
        "matches": "every default-domain node",
        "needs_opset": null,
        "default": true,
        "description": "upgrades models below opset 7 (or a backend's minimum) to opset 13; rewrite_config.opset_upgrade.target sets another",
    })];
    for r in rewrites.rules() {
        if let Some(b) = backend
            && !(r.backends().is_empty() || r.backends().contains(&b))
        {
            continue;
        }
        let p = r.pattern();
        rows.push(json!({
            "name": r.name(),
            "kind": "rule",
            "backends": r.backends(),
            "matches": format!(
                "{}{}{}",
                if p.domain.is_empty() { String::new() } else { format!("{}::", p.domain) },
                p.op_type,
                match (*p.opsets.start(), *p.opsets.end()) {
                    (1, i64::MAX) => String::new(),
                    (a, i64::MAX) => format!(" (opset {a} and later)"),
                    (a, b) => format!(" (opset {a} to {b})"),
                }
            ),
            "needs_opset": r.needs_opset(),
            "default": r.enabled_by_default(),
            "description": r.description(),
        }));
    }
    rows.push(json!({
        "name": "simplify",
        "kind": "pass",
        "backends": [],
        "matches": "shape arithmetic, dead nodes",
        "needs_opset": null,
        "default": false,
        "description": "folds Shape/Gather/Concat/... integer arithmetic whose dims are known, removes dead nodes and unused initializers (rewrite_config.enable=['simplify'])",
    }));
    if backend.is_none_or(|b| b == "onnxruntime") {
        rows.push(json!({
            "name": "fp16",
            "kind": "pass",
            "backends": ["onnxruntime"],
            "matches": "float32 computation",
            "needs_opset": null,
            "default": false,
            "description": "float32 to float16, asked for by precision='fp16' (not switched by rewrite_config)",
        }));
    }
    rows.push(json!({
        "name": "rewrite",
        "kind": "pass",
        "backends": [],
        "matches": "the rules above",
        "needs_opset": null,
        "default": true,
        "description": "all the rules for the backend at once (rewrite_config.disable=['rewrite'] turns them all off)",
    }));
    if json {
        return out(&format!("{}\n", serde_json::to_string_pretty(&rows)?));
    }
    let width = rows
        .iter()
        .filter_map(|r| r["name"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(0);
    let mut s = String::new();
    for r in &rows {
        let backends = r["backends"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "all".into());
        s.push_str(&format!(
            "{:<width$}  {:<4}  {:<20}  {}{}\n    {}\n",
            r["name"].as_str().unwrap_or(""),
            r["kind"].as_str().unwrap_or(""),
            backends,
            r["matches"].as_str().unwrap_or(""),
            if r["default"] == json!(false) {
                "  (off by default)"
            } else {
                ""
            },
            r["description"].as_str().unwrap_or("")
        ));
    }
    out(&s)
}
