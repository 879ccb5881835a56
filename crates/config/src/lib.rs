//! Reads MMDeploy deploy configs without executing them: a literal subset of Python (or TOML /
//! JSON), with `_base_` inheritance merged by mmengine's rules, and typed access to the keys
//! rdeploy acts on.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # std::fs::write(dir.path().join("base.py"), "backend_config = dict(type='tract')\nonnx_config = dict(input_names=['input'], opset_version=11)\n")?;
//! # std::fs::write(dir.path().join("cfg.py"), "_base_ = ['./base.py']\nonnx_config = dict(dynamic_axes={'input': {0: 'batch'}})\n")?;
//! let cfg = rdeploy_config::Config::from_file(&dir.path().join("cfg.py"))?;
//! assert_eq!(cfg.backend_type()?, "tract");
//! let onnx = cfg.onnx_config()?;
//! assert_eq!(onnx.input_names, vec!["input"]);
//! assert_eq!(onnx.dynamic_axes[0].1, vec![(0, "batch".to_string())]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Design: a hand-written tokenizer and parser for exactly the constructs MMDeploy's configs use
//! (assignments of `dict(...)`, literals, small integer arithmetic, `[f'x{i}' for i in
//! range(N)]`), so a config can never run code; everything else is an error with its line and
//! column.

mod lexer;
mod load;
mod python;
mod value;

pub use lexer::Pos;
pub use python::{SyntaxError, parse_module};
pub use value::{Dict, Key, Value};

use rdeploy_core::{DeployConfig, Error, Result};
use std::path::{Path, PathBuf};

/// A loaded, fully merged deploy config.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The merged tree.
    pub tree: Dict,
}

/// `onnx_config.input_shape`: how to fix input dims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputShape {
    /// MMDeploy's `[w, h]`: the last two dims of the first input become `h, w`.
    WidthHeight(u64, u64),
    /// Full shapes, one per input in order (a single flat list is the first input's shape).
    Full(Vec<Vec<u64>>),
}

/// The typed `onnx_config` section.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct OnnxConfig {
    /// New names for the graph inputs, in order (empty: keep).
    pub input_names: Vec<String>,
    /// New names for the graph outputs, in order (empty: keep).
    pub output_names: Vec<String>,
    /// Dims to fix.
    pub input_shape: Option<InputShape>,
    /// Per input/output name (after renaming), the axes to make symbolic with their names.
    pub dynamic_axes: Vec<(String, Vec<(usize, String)>)>,
    /// The opset the config asks for.
    pub opset_version: Option<i64>,
    /// The IR file name in the work dir (default `end2end.onnx`).
    pub save_file: String,
}

impl Config {
    /// Loads a config file with its bases.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, line and column of the problem.
    pub fn from_file(path: &Path) -> Result<Config> {
        Ok(Config {
            path: path.to_path_buf(),
            tree: load::load_tree(path)?,
        })
    }

    /// The merged config as JSON, as `json.dumps(Config.fromfile(p).to_dict())` writes it.
    pub fn to_json(&self) -> serde_json::Value {
        Value::Dict(self.tree.clone()).to_json()
    }

    /// The merged config in the form the backend contract passes around.
    pub fn deploy_config(&self) -> DeployConfig {
        DeployConfig(self.to_json())
    }

    fn key_err(&self, key: &str, msg: impl Into<String>) -> Error {
        Error::Config {
            file: Some(self.path.clone()),
            line: None,
            col: None,
            key: Some(key.to_string()),
            msg: msg.into(),
        }
    }

    fn section(&self, name: &str) -> Result<Option<&Dict>> {
        match self.tree.get_str(name) {
            None => Ok(None),
            Some(Value::Dict(d)) => Ok(Some(d)),
            Some(other) => {
                Err(self.key_err(name, format!("must be a dict, not a {}", other.type_name())))
            }
        }
    }

    /// `backend_config.type`.
    ///
    /// # Errors
    /// [`Error::Config`] when it is missing or not a string.
    pub fn backend_type(&self) -> Result<String> {
        let missing = || {
            self.key_err("backend_config.type", "missing: the config must say which backend to use, e.g. backend_config = dict(type='tract'), usually by inheriting configs/_base_/backends/<backend>.py")
        };
        match self
            .section("backend_config")?
            .and_then(|d| d.get_str("type"))
        {
            Some(Value::Str(s)) => Ok(s.clone()),
            Some(other) => Err(self.key_err(
                "backend_config.type",
                format!("must be a string, not a {}", other.type_name()),
            )),
            None => Err(missing()),
        }
    }

    /// The typed `onnx_config` (defaults when absent).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key with a wrong type or value.
    pub fn onnx_config(&self) -> Result<OnnxConfig> {
        let mut out = OnnxConfig {
            save_file: "end2end.onnx".into(),
            ..Default::default()
        };
        let Some(d) = self.section("onnx_config")? else {
            return Ok(out);
        };
        let strings = |key: &str| -> Result<Vec<String>> {
            match d.get_str(key) {
                None | Some(Value::None) => Ok(vec![]),
                Some(Value::List(v)) | Some(Value::Tuple(v)) => v
                    .iter()
                    .map(|x| match x {
                        Value::Str(s) => Ok(s.clone()),
                        other => Err(self.key_err(
                            &format!("onnx_config.{key}"),
                            format!("must be a list of strings; found a {}", other.type_name()),
                        )),
                    })
                    .collect(),
                Some(other) => Err(self.key_err(
                    &format!("onnx_config.{key}"),
                    format!("must be a list of strings, not a {}", other.type_name()),
                )),
            }
        };
        out.input_names = strings("input_names")?;
        out.output_names = strings("output_names")?;
        let dim = |v: &Value, key: &str| -> Result<u64> {
            match v {
                Value::Int(i) if *i > 0 => Ok(*i as u64),
                other => {
                    Err(self.key_err(key, format!("dims must be positive ints; found {other}")))
                }
            }
        };
        out.input_shape = match d.get_str("input_shape") {
            None | Some(Value::None) => None,
            Some(Value::List(v)) | Some(Value::Tuple(v))
                if v.iter()
                    .all(|x| matches!(x, Value::List(_) | Value::Tuple(_)))
                    && !v.is_empty() =>
            {
                let shapes = v
                    .iter()
                    .map(|s| match s {
                        Value::List(dims) | Value::Tuple(dims) => dims
                            .iter()
                            .map(|x| dim(x, "onnx_config.input_shape"))
                            .collect(),
                        _ => Ok(vec![]),
                    })
                    .collect::<Result<Vec<Vec<u64>>>>()?;
                Some(InputShape::Full(shapes))
            }
            Some(Value::List(v)) | Some(Value::Tuple(v)) if v.len() == 2 => {
                Some(InputShape::WidthHeight(
                    dim(&v[0], "onnx_config.input_shape")?,
                    dim(&v[1], "onnx_config.input_shape")?,
                ))
            }
            Some(Value::List(v)) | Some(Value::Tuple(v)) if !v.is_empty() => {
                Some(InputShape::Full(vec![
                    v.iter()
                        .map(|x| dim(x, "onnx_config.input_shape"))
                        .collect::<Result<_>>()?,
                ]))
            }
            Some(other) => {
                return Err(self.key_err(
                    "onnx_config.input_shape",
                    format!("must be None, [width, height] or a full shape, not {other}"),
                ));
            }
        };
        if let Some(v) = d.get_str("dynamic_axes") {
            match v {
                Value::None => {}
                Value::Dict(axes) => {
                    for (name, spec) in &axes.0 {
                        let Key::Str(name) = name else {
                            return Err(self.key_err(
                                "onnx_config.dynamic_axes",
                                format!("keys must be input/output names; found {name}"),
                            ));
                        };
                        let key = format!("onnx_config.dynamic_axes.{name}");
                        let axis = |a: i64| {
                            usize::try_from(a).map_err(|_| {
                                self.key_err(&key, format!("axis {a} must be a non-negative int"))
                            })
                        };
                        let list = match spec {
                            Value::Dict(m) => m
                                .0
                                .iter()
                                .map(|(a, n)| match (a, n) {
                                    (Key::Int(a), Value::Str(n)) => Ok((axis(*a)?, n.clone())),
                                    _ => Err(self.key_err(&key, format!("must map axis numbers to dim names, e.g. {{0: 'batch'}}; found {a}: {n}"))),
                                })
                                .collect::<Result<Vec<_>>>()?,
                            Value::List(l) | Value::Tuple(l) => l
                                .iter()
                                .map(|a| match a {
                                    // torch.onnx.export names list-given axes this way.
                                    Value::Int(a) => Ok((axis(*a)?, format!("{name}_dynamic_axes_{}", a + 1))),
                                    other => Err(self.key_err(&key, format!("axes must be ints; found {other}"))),
                                })
                                .collect::<Result<Vec<_>>>()?,
                            other => return Err(self.key_err(&key, format!("must be a dict {{axis: name}} or a list of axes, not a {}", other.type_name()))),
                        };
                        out.dynamic_axes.push((name.clone(), list));
                    }
                }
                other => {
                    return Err(self.key_err(
                        "onnx_config.dynamic_axes",
                        format!(
                            "must be a dict of name -> axes, not a {}",
                            other.type_name()
                        ),
                    ));
                }
            }
        }
        out.opset_version = match d.get_str("opset_version") {
            None | Some(Value::None) => None,
            Some(Value::Int(i)) if *i > 0 => Some(*i),
            Some(other) => {
                return Err(self.key_err(
                    "onnx_config.opset_version",
                    format!("must be a positive int, not {other}"),
                ));
            }
        };
        match d.get_str("save_file") {
            None | Some(Value::None) => {}
            Some(Value::Str(s)) if is_plain_file_name(s) => out.save_file = s.clone(),
            Some(other) => {
                return Err(self.key_err(
                    "onnx_config.save_file",
                    format!("must be a plain file name such as end2end.onnx; found {other}"),
                ));
            }
        }
        Ok(out)
    }
}

fn is_plain_file_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.contains('/')
        && !s.contains('\\')
        && s != "deploy.json"
}

#[cfg(test)]
mod tests;
