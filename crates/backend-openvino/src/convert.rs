//! ONNX → OpenVINO IR with OpenVINO's own converter, `ovc`, as MMDeploy's `onnx2openvino` runs
//! the model optimizer: input shapes from `backend_config.model_inputs[0].opt_shapes`, weights in
//! fp32 unless `precision='fp16'`, extra converter options from `mo_options`.

use crate::NAME;
use crate::settings::Settings;
use rdeploy_core::{DeployConfig, Error, Result};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `name[d0,d1,...]` for each input of `onnx`, in the model's order, with the shapes the config
/// gives (`opt_shapes` as a dict by name, or a list in `onnx_config.input_names` order). `None`
/// when the config gives no shapes (the model's own shapes are kept).
fn input_spec(onnx: &Path, cfg: &DeployConfig) -> Result<Option<String>> {
    let Some(mi) = cfg
        .get("backend_config.model_inputs")
        .filter(|v| !v.is_null())
    else {
        return Ok(None);
    };
    let bad = |msg: String| Error::config_key("backend_config.model_inputs", msg);
    let first = match mi {
        Json::Array(a) if a.len() > 1 => {
            return Err(bad(format!(
                "has {} entries; OpenVINO converts one model (a partitioned model is not supported), give one entry",
                a.len()
            )));
        }
        Json::Array(a) => match a.first() {
            Some(f) => f,
            None => return Ok(None),
        },
        other => {
            return Err(bad(format!(
                "must be a list of dict(opt_shapes=...), not {other}"
            )));
        }
    };
    let Some(opt) = first.get("opt_shapes").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let (_, info) = rdeploy_core::onnx::inspect_file(onnx)?;
    let names: Vec<String> = info.inputs.iter().map(|i| i.name.clone()).collect();
    let shape_of = |k: &str, v: &Json| -> Result<Vec<i64>> {
        v.as_array()
            .and_then(|a| a.iter().map(Json::as_i64).collect::<Option<Vec<i64>>>())
            .filter(|d| d.iter().all(|&x| x >= -1))
            .ok_or_else(|| {
                bad(format!(
                    "opt_shapes.{k} must be a list of ints (-1 for a dynamic dim), not {v}"
                ))
            })
    };
    let mut shapes: Vec<(String, Vec<i64>)> = Vec::new();
    match opt {
        Json::Object(m) => {
            for (k, v) in m {
                if !names.contains(k) {
                    return Err(bad(format!(
                        "opt_shapes names '{k}', which is not an input of {} (inputs: {})",
                        onnx.display(),
                        names.join(", ")
                    )));
                }
                shapes.push((k.clone(), shape_of(k, v)?));
            }
        }
        Json::Array(list) => {
            let order: Vec<String> = match cfg.get("onnx_config.input_names") {
                Some(Json::Array(a)) if !a.is_empty() => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                _ => names.clone(),
            };
            for (k, v) in order.iter().zip(list) {
                shapes.push((k.clone(), shape_of(k, v)?));
            }
        }
        other => {
            return Err(bad(format!(
                "opt_shapes must be a dict or a list, not {other}"
            )));
        }
    }
    // ovc keeps only the inputs listed, in the order listed: list every input.
    let mut parts = Vec::new();
    for input in &info.inputs {
        let dims: Vec<String> = match shapes.iter().find(|(k, _)| *k == input.name) {
            Some((_, d)) => d
                .iter()
                .map(|&x| {
                    if x < 0 {
                        "?".to_string()
                    } else {
                        x.to_string()
                    }
                })
                .collect(),
            None => match &input.shape {
                Some(d) => d
                    .iter()
                    .map(|x| x.fixed().map_or("?".to_string(), |n| n.to_string()))
                    .collect(),
                None => {
                    parts.push(input.name.clone());
                    continue;
                }
            },
        };
        parts.push(format!("{}[{}]", input.name, dims.join(",")));
    }
    Ok(Some(parts.join(",")))
}

/// `mo_options = dict(args=dict({'--key': value}), flags=['--flag'])`, as converter arguments.
fn mo_options(cfg: &DeployConfig) -> Result<Vec<String>> {
    let Some(mo) = cfg
        .get("backend_config.mo_options")
        .filter(|v| !v.is_null())
    else {
        return Ok(vec![]);
    };
    let bad = |msg: String| Error::config_key("backend_config.mo_options", msg);
    let mut out = Vec::new();
    if let Some(args) = mo.get("args").filter(|v| !v.is_null()) {
        let m = args
            .as_object()
            .ok_or_else(|| bad(format!("args must be a dict, not {args}")))?;
        for (k, v) in m {
            let v = match v {
                Json::String(s) => s.clone(),
                Json::Number(_) | Json::Bool(_) => v.to_string(),
                Json::Array(a) => {
                    let parts: Vec<String> = a.iter().map(ToString::to_string).collect();
                    format!("[{}]", parts.join(","))
                }
                other => return Err(bad(format!("args.{k} must be a scalar, not {other}"))),
            };
            out.push(format!("{k}={v}"));
        }
    }
    if let Some(flags) = mo.get("flags").filter(|v| !v.is_null()) {
        let a = flags
            .as_array()
            .ok_or_else(|| bad(format!("flags must be a list, not {flags}")))?;
        for f in a {
            out.push(
                f.as_str()
                    .ok_or_else(|| bad(format!("flags must be strings, not {f}")))?
                    .to_string(),
            );
        }
    }
    Ok(out)
}

/// The converter's own message: its `[ ERROR ]` lines and what follows them, without Python
/// tracebacks, at most 40 lines.
fn converter_message(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(stderr),
        String::from_utf8_lossy(stdout)
    );
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let start = lines
        .iter()
        .position(|l| l.contains("[ ERROR ]"))
        .unwrap_or(0);
    let kept: Vec<&str> = lines[start..]
        .iter()
        .copied()
        .filter(|l| {
            !l.trim().is_empty() && !l.starts_with("Traceback") && !l.starts_with("  File ")
        })
        .take(40)
        .collect();
    if kept.is_empty() {
        "(no output)".into()
    } else {
        kept.join("\n  ")
    }
}

/// Runs `ovc` on `onnx` and places `<stem>.xml` and `<stem>.bin` in `work_dir`; nothing is left
/// there when conversion fails.
pub(crate) fn onnx_to_ir(
    ovc: &Path,
    onnx: &Path,
    cfg: &DeployConfig,
    s: &Settings,
    work_dir: &Path,
) -> Result<Vec<PathBuf>> {
    let stem = onnx
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "end2end".into());
    let tmp = work_dir.join(format!(".ovc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    let result = (|| {
        let staged = tmp.join(format!("{stem}.xml"));
        let mut cmd = Command::new(ovc);
        cmd.arg(onnx)
            .arg("--output_model")
            .arg(&staged)
            .arg(format!(
                "--compress_to_fp16={}",
                if s.compress_to_fp16 { "True" } else { "False" }
            ));
        if let Some(spec) = input_spec(onnx, cfg)? {
            cmd.arg("--input").arg(spec);
        }
        if let Some(Json::Array(names)) = cfg.get("onnx_config.output_names")
            && !names.is_empty()
        {
            let names: Vec<&str> = names.iter().filter_map(Json::as_str).collect();
            cmd.arg("--output").arg(names.join(","));
        }
        cmd.args(mo_options(cfg)?);
        tracing::debug!("converting with {cmd:?}");
        let out = cmd.output().map_err(|e| {
            Error::backend(
                NAME,
                format!("cannot run OpenVINO's converter {}: {e}", ovc.display()),
            )
        })?;
        if !out.status.success() {
            return Err(Error::model(
                onnx,
                format!(
                    "OpenVINO's converter ({}) failed ({}):\n  {}{}",
                    ovc.display(),
                    out.status,
                    converter_message(&out.stdout, &out.stderr),
                    crate::unreadable_ports_hint(onnx)
                ),
            ));
        }
        let mut files = Vec::new();
        for ext in ["xml", "bin"] {
            let from = tmp.join(format!("{stem}.{ext}"));
            if !from.is_file() {
                return Err(Error::backend(
                    NAME,
                    format!(
                        "OpenVINO's converter succeeded but wrote no {}",
                        from.display()
                    ),
                ));
            }
            let to = work_dir.join(format!("{stem}.{ext}"));
            std::fs::rename(&from, &to).map_err(|e| Error::io("move", &from, e))?;
            files.push(to);
        }
        Ok(files)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    if result.is_err() {
        for ext in ["xml", "bin"] {
            let _ = std::fs::remove_file(work_dir.join(format!("{stem}.{ext}")));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use serde_json::json;

    #[test]
    fn mo_options_become_arguments() {
        let cfg = DeployConfig(json!({"backend_config": {"mo_options": {
            "args": {"--compress_to_fp16": false, "--extension": "x.so"},
            "flags": ["--verbose"]}}}));
        assert_eq!(
            mo_options(&cfg).unwrap(),
            ["--compress_to_fp16=false", "--extension=x.so", "--verbose"]
        );
        let cfg = DeployConfig(json!({"backend_config": {"mo_options": {"flags": "--verbose"}}}));
        assert!(
            mo_options(&cfg)
                .unwrap_err()
                .to_string()
                .contains("flags must be a list")
        );
    }

    #[test]
    fn converter_errors_drop_tracebacks() {
        let msg = converter_message(
            b"",
            b"Traceback (most recent call last):\n  File \"x.py\", line 1\n[ ERROR ]  Check failed\nNo conversion rule found for operations: FooOp\n",
        );
        assert_eq!(
            msg,
            "[ ERROR ]  Check failed\n  No conversion rule found for operations: FooOp"
        );
    }
}
