//! A Triton model served by rdeploy: its configuration (the parts this backend reads) and the
//! rdeploy work dir its version folder holds or is deployed into at load.
//!
//! Two layouts of `<model_dir>/<version>/`:
//! - an rdeploy work dir (`deploy.json` and the backend files), as `rdeploy deploy` or
//!   `rdeploy export triton` writes it;
//! - `model.onnx` (or the configuration's `default_model_filename`) with a deploy config named
//!   by the model parameter `deploy_config`: a path relative to the model folder, or one of
//!   rdeploy's base configs (`configs/_base_/backends/onnxruntime.py`, built into this
//!   library). It is deployed at load into `<model_dir>/<version>/rdeploy_work/` (written
//!   atomically, and reused while model and config are unchanged).

use rdeploy::{Config, DType, DeployOptions, Device, Registry, WorkDir};
use rdeploy_serving::datatype;
use rdeploy_serving::model_config::{ModelSettings, TensorSpec};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The work dir deployed at load inside the version folder.
pub const DEPLOYED_WORK_DIR: &str = "rdeploy_work";

/// rdeploy's base backend configs, for `deploy_config` values that name them.
const BASE_CONFIGS: [(&str, &str); 7] = [
    (
        "tract.py",
        include_str!("../../../configs/_base_/backends/tract.py"),
    ),
    (
        "onnxruntime.py",
        include_str!("../../../configs/_base_/backends/onnxruntime.py"),
    ),
    (
        "onnxruntime-fp16.py",
        include_str!("../../../configs/_base_/backends/onnxruntime-fp16.py"),
    ),
    (
        "openvino.py",
        include_str!("../../../configs/_base_/backends/openvino.py"),
    ),
    // Python backends (worker processes of the environment Triton runs in).
    (
        "ncnn.py",
        include_str!("../../../configs/_base_/backends/ncnn.py"),
    ),
    (
        "ncnn-fp16.py",
        include_str!("../../../configs/_base_/backends/ncnn-fp16.py"),
    ),
    (
        "tvm.py",
        include_str!("../../../configs/_base_/backends/tvm.py"),
    ),
];

/// One input or output of the model configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorConfig {
    /// The tensor's name.
    pub name: String,
    /// `data_type` (`TYPE_FP32`).
    pub data_type: String,
    /// `dims`, without the batch dim when `max_batch_size > 0`; -1 for any size.
    pub dims: Vec<i64>,
}

/// What this backend reads of a model's configuration (Triton's `ModelConfig` as JSON).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// `max_batch_size`: 0 for no batching, else requests carry a batch dim first.
    pub max_batch_size: u64,
    /// `input`.
    pub inputs: Vec<TensorConfig>,
    /// `output`.
    pub outputs: Vec<TensorConfig>,
    /// The `deploy_config` parameter.
    pub deploy_config: Option<String>,
    /// `default_model_filename`, when set.
    pub default_model_filename: Option<String>,
}

impl ModelConfig {
    /// Reads the configuration Triton gives as JSON (`TRITONBACKEND_ModelConfig`).
    ///
    /// # Errors
    /// A message naming the field that is malformed.
    pub fn from_json(config: &Value) -> Result<ModelConfig, String> {
        let int = |v: &Value, what: &str| -> Result<i64, String> {
            match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| format!("model config: {what} is {v}, not an integer"))
        };
        let max_batch_size = match config.get("max_batch_size") {
            None => 0,
            Some(v) => u64::try_from(int(v, "max_batch_size")?)
                .map_err(|_| "model config: max_batch_size is negative".to_string())?,
        };
        let tensors = |key: &str| -> Result<Vec<TensorConfig>, String> {
            let Some(list) = config.get(key) else {
                return Ok(Vec::new());
            };
            let list = list
                .as_array()
                .ok_or_else(|| format!("model config: {key} is not a list"))?;
            list.iter()
                .map(|t| {
                    let name = t
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("model config: an {key} has no name"))?;
                    let dims = match t.get("dims") {
                        None => Vec::new(),
                        Some(Value::Array(d)) => d
                            .iter()
                            .map(|v| int(v, &format!("a dim of {key} '{name}'")))
                            .collect::<Result<_, _>>()?,
                        Some(v) => return Err(format!("model config: dims of '{name}' are {v}")),
                    };
                    Ok(TensorConfig {
                        name: name.to_string(),
                        data_type: t
                            .get("data_type")
                            .and_then(Value::as_str)
                            .unwrap_or("TYPE_INVALID")
                            .to_string(),
                        dims,
                    })
                })
                .collect()
        };
        let deploy_config = config
            .pointer("/parameters/deploy_config/string_value")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let default_model_filename = config
            .get("default_model_filename")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(ModelConfig {
            max_batch_size,
            inputs: tensors("input")?,
            outputs: tensors("output")?,
            deploy_config,
            default_model_filename,
        })
    }

    /// Whether requests carry a batch dim first (and may be joined).
    pub fn batching(&self) -> bool {
        self.max_batch_size > 0
    }
}

/// The work dir of version `version` of the model in `model_dir`: opened when the version
/// folder is one, else deployed into it from the ONNX file and the `deploy_config` parameter.
///
/// # Errors
/// A message saying what is missing or failed, naming the files.
pub fn work_dir(
    registry: &Registry,
    model_dir: &Path,
    version: u64,
    config: &ModelConfig,
) -> Result<WorkDir, String> {
    let version_dir = model_dir.join(version.to_string());
    if version_dir.join("deploy.json").is_file() {
        return WorkDir::open(&version_dir).map_err(|e| e.report());
    }
    let model_file = version_dir.join(
        config
            .default_model_filename
            .as_deref()
            .unwrap_or("model.onnx"),
    );
    let Some(cfg_name) = &config.deploy_config else {
        return Err(format!(
            "{} is not an rdeploy work dir (no deploy.json); put one there (`rdeploy deploy \
             ... --work-dir {}` or `rdeploy export triton`), or put the ONNX model there as {} \
             and name a deploy config in config.pbtxt: parameters {{ key: \"deploy_config\" \
             value: {{ string_value: \"configs/_base_/backends/onnxruntime.py\" }} }}",
            version_dir.display(),
            version_dir.display(),
            model_file.display()
        ));
    };
    if !model_file.is_file() {
        return Err(format!(
            "{} has no deploy.json and no model file {} to deploy with {cfg_name}",
            version_dir.display(),
            model_file.display()
        ));
    }
    let deploy_cfg = deploy_config(model_dir, cfg_name)?;
    rdeploy::deploy(
        registry,
        &deploy_cfg,
        &model_file,
        &version_dir.join(DEPLOYED_WORK_DIR),
        &Device::cpu(),
        &DeployOptions::default(),
    )
    .map_err(|e| {
        format!(
            "deploying {} with {cfg_name}: {}",
            model_file.display(),
            e.report()
        )
    })
}

/// Loads the deploy config `name`: a file relative to the model folder (or absolute), else one
/// of rdeploy's base backend configs built into this library.
fn deploy_config(model_dir: &Path, name: &str) -> Result<Config, String> {
    let path = model_dir.join(name);
    if path.is_file() {
        return Config::from_file(&path).map_err(|e| e.report());
    }
    let p = Path::new(name);
    let base = BASE_CONFIGS.iter().find(|(file, _)| {
        p.file_name().is_some_and(|f| f == *file)
            && p.parent()
                .is_some_and(|d| d.ends_with("_base_/backends") || d == Path::new(""))
    });
    let Some((file, text)) = base else {
        let known: Vec<String> = BASE_CONFIGS
            .iter()
            .map(|(f, _)| format!("configs/_base_/backends/{f}"))
            .collect();
        return Err(format!(
            "deploy_config {name}: no file {} and not one of rdeploy's base configs ({})",
            path.display(),
            known.join(", ")
        ));
    };
    // The config reader takes files; a built-in config goes through a scratch copy.
    let dir = tempfile::tempdir().map_err(|e| format!("a scratch folder: {e}"))?;
    let copy: PathBuf = dir.path().join(file);
    std::fs::write(&copy, text).map_err(|e| format!("writing {}: {e}", copy.display()))?;
    Config::from_file(&copy).map_err(|e| e.report())
}

/// Checks the configuration's inputs and outputs against the deployed model's: same names,
/// datatypes, ranks (plus the batch dim when batching) and fixed dims, and a batch dim that
/// can grow when batching.
///
/// # Errors
/// A message naming the tensor and what differs.
pub fn check_signature(config: &ModelConfig, work: &WorkDir) -> Result<(), String> {
    let spec = |c: &TensorConfig| -> Result<TensorSpec, String> {
        let dtype = datatype::from_triton_type(&c.data_type).ok_or_else(|| {
            format!(
                "config.pbtxt tensor '{}': data_type {} is not supported by rdeploy (numeric types only)",
                c.name, c.data_type
            )
        })?;
        Ok(TensorSpec {
            name: c.name.clone(),
            dtype,
            dims: c.dims.clone(),
        })
    };
    let settings = ModelSettings {
        name: String::new(),
        max_batch_size: usize::try_from(config.max_batch_size).unwrap_or(usize::MAX),
        inputs: config.inputs.iter().map(spec).collect::<Result<_, _>>()?,
        outputs: config.outputs.iter().map(spec).collect::<Result<_, _>>()?,
        dynamic_batching: None,
        instances: 1,
    };
    settings.check_signature(&work.manifest.inputs, &work.manifest.outputs)
}

/// The dtype of a request tensor's `TRITONSERVER_DataType` code.
///
/// # Errors
/// A message naming the tensor, for `BYTES`, `BF16` and unknown codes.
pub fn dtype_of_code(tensor: &str, code: u32) -> Result<DType, String> {
    let name = crate::ffi::DATATYPE_NAMES
        .get(code as usize)
        .copied()
        .unwrap_or("an unknown datatype");
    datatype::from_v2_name(name)
        .ok_or_else(|| format!("input '{tensor}' is {name}, which rdeploy does not run"))
}

/// The `TRITONSERVER_DataType` code of a dtype.
pub fn code_of_dtype(dtype: DType) -> u32 {
    let name = datatype::v2_name(dtype);
    crate::ffi::DATATYPE_NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or(0) as u32
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_config_triton_gives() {
        let c = ModelConfig::from_json(&json!({
            "name": "m", "backend": "rdeploy", "max_batch_size": 8,
            "input": [{"name": "image", "data_type": "TYPE_FP32", "dims": ["3", 32, "-1"]}],
            "output": [{"name": "probs", "data_type": "TYPE_FP32", "dims": [10]}],
            "parameters": {"deploy_config": {"string_value": "configs/_base_/backends/tract.py"}},
            "default_model_filename": ""
        }))
        .unwrap();
        assert_eq!(c.max_batch_size, 8);
        assert_eq!(c.inputs[0].dims, vec![3, 32, -1]);
        assert_eq!(c.outputs[0].name, "probs");
        assert_eq!(
            c.deploy_config.as_deref(),
            Some("configs/_base_/backends/tract.py")
        );
        assert_eq!(c.default_model_filename, None);
        assert!(ModelConfig::from_json(&json!({"max_batch_size": -1})).is_err());
    }

    #[test]
    fn datatype_codes_follow_the_header() {
        assert_eq!(code_of_dtype(DType::F32), 11);
        assert_eq!(code_of_dtype(DType::Bool), 1);
        assert_eq!(dtype_of_code("x", 9).unwrap(), DType::I64);
        assert_eq!(dtype_of_code("x", 13).unwrap(), DType::Str);
        assert!(dtype_of_code("x", 99).is_err());
        for d in DType::ALL
            .into_iter()
            .filter(|&d| !datatype::v2_name(d).is_empty())
        {
            let code = code_of_dtype(d);
            assert_eq!(dtype_of_code("x", code).unwrap(), d);
        }
    }

    #[test]
    fn base_configs_resolve_by_their_paths() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "configs/_base_/backends/tract.py",
            "_base_/backends/openvino.py",
            "onnxruntime.py",
        ] {
            deploy_config(dir.path(), name).unwrap();
        }
        let e = deploy_config(dir.path(), "configs/mine.py").unwrap_err();
        assert!(e.contains("configs/mine.py"), "{e}");
    }
}
