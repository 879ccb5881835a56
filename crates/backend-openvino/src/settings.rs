//! The `backend_config` keys the OpenVINO backend acts on.
//!
//! MMDeploy's keys: `type`, `model_inputs` (`opt_shapes` per input) and `mo_options` (`args`,
//! `flags`: passed to the converter). rdeploy's additions, all optional:
//!
//! | key | values | OpenVINO property |
//! |---|---|---|
//! | `precision` | `'fp32'` (default), `'fp16'` (fp16 weights in the IR and f16 inference) | `INFERENCE_PRECISION_HINT` |
//! | `inference_precision` | `'f32'`, `'bf16'`, `'f16'` (overrides `precision` at run time) | `INFERENCE_PRECISION_HINT` |
//! | `performance_hint` | `'LATENCY'`, `'THROUGHPUT'`, `'CUMULATIVE_THROUGHPUT'` | `PERFORMANCE_HINT` |
//! | `num_streams` | an int, or `'AUTO'` | `NUM_STREAMS` |
//! | `inference_num_threads` | an int | `INFERENCE_NUM_THREADS` |
//! | `properties` | `dict(KEY='value', ...)`, any device property | as given |
//! | `model_format` | `'ir'` (default: convert with `ovc`), `'onnx'` (read the ONNX file directly) | |
//!
//! `custom_ops` (extension libraries, loaded by ONNX Runtime) is refused with the reason: the
//! `openvino` crate does not expose `Core::add_extension`.

use rdeploy_core::{DeployConfig, Error, Result};
use serde_json::Value as Json;

/// What `to_backend` produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModelFormat {
    /// OpenVINO IR (`.xml` + `.bin`), converted by `ovc`.
    Ir,
    /// The ONNX file, read by OpenVINO's ONNX frontend at load time.
    Onnx,
}

/// The backend settings of a deploy config.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub model_format: ModelFormat,
    /// Weights stored in fp16 in the IR.
    pub compress_to_fp16: bool,
    /// `INFERENCE_PRECISION_HINT`: always set, `f32` unless asked.
    pub inference_precision: String,
    pub performance_hint: Option<String>,
    pub num_streams: Option<String>,
    pub inference_num_threads: Option<String>,
    /// `properties`, in the order written.
    pub extra: Vec<(String, String)>,
}

fn key(k: &str) -> String {
    format!("backend_config.{k}")
}

fn scalar(k: &str, v: &Json) -> Result<String> {
    match v {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(if *b { "YES" } else { "NO" }.to_string()),
        other => Err(Error::config_key(
            key(k),
            format!("must be a string, number or bool, not {other}"),
        )),
    }
}

fn one_of(k: &str, v: &Json, allowed: &[&str]) -> Result<String> {
    let s = v.as_str().ok_or_else(|| {
        Error::config_key(
            key(k),
            format!("must be one of {}, not {v}", allowed.join(", ")),
        )
    })?;
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(s))
        .map(|a| a.to_string())
        .ok_or_else(|| {
            Error::config_key(
                key(k),
                format!("'{s}' is not one of {}", allowed.join(", ")),
            )
        })
}

impl Settings {
    pub fn from_config(cfg: &DeployConfig) -> Result<Settings> {
        let get = |k: &str| cfg.get(&key(k)).filter(|v| !v.is_null());
        if let Some(v) = get("custom_ops").filter(|v| v.as_array().is_none_or(|a| !a.is_empty())) {
            return Err(Error::config_key(
                key("custom_ops"),
                format!(
                    "OpenVINO extension libraries are not supported (given {v}): the openvino crate rdeploy uses does not expose Core::add_extension. Remove the key, or deploy with backend_config.type='onnxruntime', which loads custom-op libraries"
                ),
            ));
        }
        let model_format = match get("model_format") {
            None => ModelFormat::Ir,
            Some(v) => match one_of("model_format", v, &["ir", "onnx"])?.as_str() {
                "onnx" => ModelFormat::Onnx,
                _ => ModelFormat::Ir,
            },
        };
        let fp16 = match get("precision") {
            None => false,
            Some(v) => one_of("precision", v, &["fp32", "fp16"])? == "fp16",
        };
        let inference_precision = match get("inference_precision") {
            Some(v) => one_of("inference_precision", v, &["f32", "bf16", "f16"])?,
            None if fp16 => "f16".into(),
            None => "f32".into(),
        };
        let performance_hint = get("performance_hint")
            .map(|v| {
                one_of(
                    "performance_hint",
                    v,
                    &["LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"],
                )
            })
            .transpose()?;
        let num_streams = match get("num_streams") {
            None => None,
            Some(Json::Number(n)) if n.as_u64().is_some() => Some(n.to_string()),
            Some(Json::String(s)) if s.eq_ignore_ascii_case("auto") => Some("AUTO".into()),
            Some(v) => {
                return Err(Error::config_key(
                    key("num_streams"),
                    format!("must be a non-negative int or 'AUTO', not {v}"),
                ));
            }
        };
        let inference_num_threads = match get("inference_num_threads") {
            None => None,
            Some(v) => Some(v.as_u64().map(|n| n.to_string()).ok_or_else(|| {
                Error::config_key(
                    key("inference_num_threads"),
                    format!("must be a non-negative int, not {v}"),
                )
            })?),
        };
        let extra = match get("properties") {
            None => vec![],
            Some(Json::Object(m)) => m
                .iter()
                .map(|(k, v)| Ok((k.clone(), scalar(&format!("properties.{k}"), v)?)))
                .collect::<Result<_>>()?,
            Some(v) => {
                return Err(Error::config_key(
                    key("properties"),
                    format!("must be a dict of OpenVINO property names to values, not {v}"),
                ));
            }
        };
        Ok(Settings {
            model_format,
            compress_to_fp16: fp16,
            inference_precision,
            performance_hint,
            num_streams,
            inference_num_threads,
            extra,
        })
    }

    /// The device properties to set, in order (raw `properties` last, so they win).
    pub fn properties(&self) -> Vec<(String, String)> {
        let mut p = vec![(
            "INFERENCE_PRECISION_HINT".to_string(),
            self.inference_precision.clone(),
        )];
        let named = [
            ("PERFORMANCE_HINT", &self.performance_hint),
            ("NUM_STREAMS", &self.num_streams),
            ("INFERENCE_NUM_THREADS", &self.inference_num_threads),
        ];
        for (k, v) in named {
            if let Some(v) = v {
                p.push((k.to_string(), v.clone()));
            }
        }
        p.extend(self.extra.iter().cloned());
        p
    }

    /// The config key that set an OpenVINO property, for error messages.
    pub fn key_for(&self, property: &str) -> String {
        if self.extra.iter().any(|(k, _)| k == property) {
            return key(&format!("properties.{property}"));
        }
        key(match property {
            "INFERENCE_PRECISION_HINT" => "inference_precision",
            "PERFORMANCE_HINT" => "performance_hint",
            "NUM_STREAMS" => "num_streams",
            "INFERENCE_NUM_THREADS" => "inference_num_threads",
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use serde_json::json;

    fn s(v: Json) -> Result<Settings> {
        Settings::from_config(&DeployConfig(json!({ "backend_config": v })))
    }

    #[test]
    fn defaults_are_f32_ir() {
        let d = s(json!({"type": "openvino"})).unwrap();
        assert_eq!(d.model_format, ModelFormat::Ir);
        assert!(!d.compress_to_fp16);
        assert_eq!(
            d.properties(),
            [("INFERENCE_PRECISION_HINT".into(), "f32".into())]
        );
    }

    #[test]
    fn fp16_and_hints() {
        let d = s(
            json!({"precision": "fp16", "performance_hint": "throughput", "num_streams": 2,
                         "properties": {"ENABLE_CPU_PINNING": false}}),
        )
        .unwrap();
        assert!(d.compress_to_fp16);
        assert_eq!(
            d.properties(),
            [
                ("INFERENCE_PRECISION_HINT".into(), "f16".into()),
                ("PERFORMANCE_HINT".into(), "THROUGHPUT".into()),
                ("NUM_STREAMS".into(), "2".into()),
                ("ENABLE_CPU_PINNING".into(), "NO".into()),
            ]
        );
        assert_eq!(
            d.key_for("ENABLE_CPU_PINNING"),
            "backend_config.properties.ENABLE_CPU_PINNING"
        );
        let e = s(json!({"inference_precision": "int4"}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("backend_config.inference_precision") && e.contains("int4"),
            "{e}"
        );
        let e = s(json!({"num_streams": -1})).unwrap_err().to_string();
        assert!(e.contains("num_streams"), "{e}");
    }

    #[test]
    fn custom_ops_are_refused_with_the_reason() {
        let e = s(json!({"custom_ops": ["/x/libext.so"]}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("backend_config.custom_ops")
                && e.contains("/x/libext.so")
                && e.contains("add_extension")
                && e.contains("onnxruntime"),
            "{e}"
        );
        assert!(s(json!({"custom_ops": []})).is_ok());
        assert!(s(json!({"custom_ops": null})).is_ok());
    }
}
