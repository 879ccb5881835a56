//! `rdeploy config print|check`.

use crate::out;
use anyhow::{Result, bail};
use rdeploy::{Config, Registry};
use std::path::Path;

pub(crate) fn print(path: &Path, json: bool) -> Result<()> {
    let cfg = Config::from_file(path)?;
    if json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&cfg.to_json())?
        ))
    } else {
        out(&python_text(&cfg.tree))
    }
}

pub(crate) fn check(registry: &Registry, path: &Path) -> Result<()> {
    let cfg = Config::from_file(path)?;
    let mut problems = Vec::new();
    match cfg.backend_type() {
        Ok(b) => match registry.get(&b) {
            Err(e) => problems.push(format!("backend_config.type: {e}")),
            // The graph passes the deploy would run: rewrite_config and pass options checked.
            Ok(backend) => {
                if let Err(e) = rdeploy::backend_passes(
                    backend.as_ref(),
                    &cfg.deploy_config(),
                    &rdeploy::PassRegistry::builtin(),
                    &rdeploy::RewriteRegistry::builtin(),
                ) {
                    problems.push(e.to_string());
                }
            }
        },
        Err(e) => problems.push(e.to_string()),
    }
    if let Err(e) = cfg.onnx_config() {
        problems.push(e.to_string());
    }
    match cfg.custom_ops() {
        Ok(libs) => {
            for lib in libs {
                if let Err(why) = rdeploy::core::files::regular_file_size(&lib) {
                    problems.push(format!(
                        "backend_config.custom_ops: the library {}: {why}",
                        lib.display()
                    ));
                }
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    if problems.is_empty() {
        out(&format!("{}: ok\n", path.display()))
    } else {
        bail!(
            "{} has {} problem(s):\n  {}",
            path.display(),
            problems.len(),
            problems.join("\n  ")
        )
    }
}

/// The merged config written back as Python assignments (like mmengine's `pretty_text`).
pub(crate) fn python_text(tree: &rdeploy::config::Dict) -> String {
    use rdeploy::config::{Key, Value};
    fn lit(v: &Value, indent: usize, out: &mut String) {
        let pad = "    ".repeat(indent + 1);
        match v {
            Value::None => out.push_str("None"),
            Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&format!("{f:?}")),
            Value::Str(s) => out.push_str(&format!("{s:?}").replace('"', "'")),
            Value::List(items) | Value::Tuple(items) => {
                let (open, close) = if matches!(v, Value::List(_)) {
                    ('[', ']')
                } else {
                    ('(', ')')
                };
                out.push(open);
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    lit(x, indent, out);
                }
                if matches!(v, Value::Tuple(t) if t.len() == 1) {
                    out.push(',');
                }
                out.push(close);
            }
            Value::Dict(d) => {
                let identifiers = d.0.iter().all(|(k, _)| matches!(k, Key::Str(s) if !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_') && !s.starts_with(|c: char| c.is_ascii_digit())));
                out.push_str(if identifiers { "dict(" } else { "{" });
                for (i, (k, x)) in d.0.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    out.push_str(&pad);
                    match (identifiers, k) {
                        (true, Key::Str(s)) => out.push_str(&format!("{s}=")),
                        (_, Key::Str(s)) => {
                            out.push_str(&format!("{}: ", format!("{s:?}").replace('"', "'")))
                        }
                        (_, Key::Int(n)) => out.push_str(&format!("{n}: ")),
                    }
                    lit(x, indent + 1, out);
                }
                if !d.0.is_empty() {
                    out.push('\n');
                    out.push_str(&"    ".repeat(indent));
                }
                out.push(if identifiers { ')' } else { '}' });
            }
        }
    }
    let mut s = String::new();
    for (k, v) in &tree.0 {
        s.push_str(&format!("{} = ", k.to_json_key()));
        lit(v, 0, &mut s);
        s.push('\n');
    }
    s
}
