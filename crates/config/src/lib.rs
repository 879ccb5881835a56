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
    /// Where each top-level key was last assigned (for error messages).
    pub origins: load::Origins,
}

/// `onnx_config.input_shape`: how to fix input dims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputShape {
    /// MMDeploy's `[w, h]`: the last two dims of the first input become `h, w`.
    WidthHeight(u64, u64),
    /// Full shapes, one per input in order (a single flat list is the first input's shape).
    Full(Vec<Vec<u64>>),
}

/// One entry of `backend_config.model_inputs`: shapes a backend builds for.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ModelInput {
    /// TensorRT style: per input, the min/opt/max shapes of its optimization profile.
    pub input_shapes: Vec<(String, ShapeRange)>,
    /// OpenVINO style (`opt_shapes`), or MMDeploy TVM's `shape`: per input, the shape to build
    /// for.
    pub opt_shapes: Vec<(String, Vec<u64>)>,
    /// MMDeploy TVM's `shape`: per input, the one shape the model is compiled for (the IR is
    /// fixed to it, like a TensorRT profile with min == opt == max).
    pub fixed_shapes: Vec<(String, Vec<u64>)>,
}

/// A min/opt/max shape range (MMDeploy's `min_shape`, `opt_shape`, `max_shape`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ShapeRange {
    /// Smallest shape.
    pub min: Option<Vec<u64>>,
    /// Shape to optimize for.
    pub opt: Option<Vec<u64>>,
    /// Largest shape.
    pub max: Option<Vec<u64>>,
}

impl ShapeRange {
    /// The shape when min, opt and max are all given and equal: a static input.
    pub fn fixed(&self) -> Option<&Vec<u64>> {
        match (&self.min, &self.opt, &self.max) {
            (Some(a), Some(b), Some(c)) if a == b && b == c => Some(a),
            _ => None,
        }
    }
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
    /// Static shapes from `backend_config.model_inputs` (min == opt == max, or TVM's `shape`),
    /// by input name.
    pub static_shapes: Vec<(String, Vec<u64>)>,
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
        let (tree, origins) = load::load_tree(path)?;
        Ok(Config {
            path: path.to_path_buf(),
            tree,
            origins,
        })
    }

    /// A config given as a tree (a Python `dict` in MMDeploy's form, or JSON), with no file:
    /// `label` stands in for the file name in error messages.
    ///
    /// # Errors
    /// [`Error::Config`] when `value` is not an object, or uses `_base_` (inheritance needs
    /// files; load those with [`Config::from_file`]).
    pub fn from_json(value: &serde_json::Value, label: &Path) -> Result<Config> {
        Config::from_value(Value::from_json(value), label)
    }

    /// A config given as a tree of values (a Python `dict` converted key by key, integer keys
    /// such as `dynamic_axes={'input': {0: 'batch'}}` kept), with no file.
    ///
    /// # Errors
    /// As [`Config::from_json`].
    pub fn from_value(value: Value, label: &Path) -> Result<Config> {
        let err = |msg: &str| Error::Config {
            file: Some(label.to_path_buf()),
            line: None,
            col: None,
            key: None,
            msg: msg.to_string(),
        };
        let Value::Dict(tree) = value else {
            return Err(err(
                "a deploy config must be a dict of sections (backend_config=..., onnx_config=...)",
            ));
        };
        if tree.get_str("_base_").is_some() {
            return Err(err(
                "_base_ needs files to inherit from; write the config to a file, or merge the bases into the dict",
            ));
        }
        Ok(Config {
            path: label.to_path_buf(),
            tree,
            origins: Default::default(),
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
        // Point at the assignment of the top-level key in the file that set it last.
        let top = key.split(['.', '[']).next().unwrap_or(key);
        let (file, line) = self
            .origins
            .get(top)
            .cloned()
            .unwrap_or((self.path.clone(), None));
        Error::Config {
            file: Some(file),
            line,
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

    /// The typed `backend_config.model_inputs` (empty when absent).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key with a wrong type.
    pub fn model_inputs(&self) -> Result<Vec<ModelInput>> {
        let Some(be) = self.section("backend_config")? else {
            return Ok(vec![]);
        };
        let items = match be.get_str("model_inputs") {
            None | Some(Value::None) => return Ok(vec![]),
            Some(Value::List(v)) | Some(Value::Tuple(v)) => v,
            Some(other) => {
                return Err(self.key_err(
                    "backend_config.model_inputs",
                    format!("must be a list of dicts, not a {}", other.type_name()),
                ));
            }
        };
        let shape = |v: &Value, key: &str| -> Result<Vec<u64>> {
            match v {
                Value::List(d) | Value::Tuple(d) => d
                    .iter()
                    .map(|x| match x {
                        Value::Int(i) if *i >= 0 => Ok(*i as u64),
                        other => Err(self.key_err(
                            key,
                            format!("dims must be non-negative ints; found {other}"),
                        )),
                    })
                    .collect(),
                other => Err(self.key_err(
                    key,
                    format!("must be a shape such as [1, 3, 224, 224], not {other}"),
                )),
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let base = format!("backend_config.model_inputs[{i}]");
            let Value::Dict(d) = item else {
                return Err(
                    self.key_err(&base, format!("must be a dict, not a {}", item.type_name()))
                );
            };
            let mut mi = ModelInput::default();
            if let Some(Value::Dict(shapes)) = d.get_str("input_shapes") {
                for (name, r) in &shapes.0 {
                    let key = format!("{base}.input_shapes.{}", name.to_json_key());
                    // A plain shape is one fixed shape (min = opt = max), as the backends written
                    // in Python (ncnn, tvm) take it.
                    if let Value::List(_) | Value::Tuple(_) = r {
                        let fixed = shape(r, &key)?;
                        mi.input_shapes.push((
                            name.to_json_key(),
                            ShapeRange {
                                min: Some(fixed.clone()),
                                opt: Some(fixed.clone()),
                                max: Some(fixed),
                            },
                        ));
                        continue;
                    }
                    let Value::Dict(r) = r else {
                        return Err(self.key_err(
                            &key,
                            "must be dict(min_shape=..., opt_shape=..., max_shape=...), or one shape such as [1, 3, 224, 224]",
                        ));
                    };
                    let get = |k: &str| {
                        r.get_str(k)
                            .filter(|v| !matches!(v, Value::None))
                            .map(|v| shape(v, &format!("{key}.{k}")))
                            .transpose()
                    };
                    mi.input_shapes.push((
                        name.to_json_key(),
                        ShapeRange {
                            min: get("min_shape")?,
                            opt: get("opt_shape")?,
                            max: get("max_shape")?,
                        },
                    ));
                }
            }
            // OpenVINO's `opt_shapes`, and MMDeploy TVM's `shape` (configs/_base_/backends/tvm.py
            // configs: model_inputs=[dict(shape=dict(input=[1, 3, 224, 224]), dtype=...)]).
            for key in ["opt_shapes", "shape"] {
                if let Some(Value::Dict(shapes)) = d.get_str(key) {
                    for (name, s) in &shapes.0 {
                        let name = name.to_json_key();
                        let dims = shape(s, &format!("{base}.{key}.{name}"))?;
                        if key == "shape" {
                            mi.fixed_shapes.push((name.clone(), dims.clone()));
                        }
                        if !mi.opt_shapes.iter().any(|(n, _)| *n == name) {
                            mi.opt_shapes.push((name, dims));
                        }
                    }
                }
            }
            out.push(mi);
        }
        Ok(out)
    }

    /// `codebase_config` as `type/task`, for reports (rdeploy keeps it and does not act on it).
    pub fn codebase_summary(&self) -> Option<String> {
        let Ok(Some(d)) = self.section("codebase_config") else {
            return None;
        };
        let get = |k: &str| match d.get_str(k) {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        };
        Some(match (get("type"), get("task")) {
            (Some(t), Some(k)) => format!("{t}/{k}"),
            (Some(t), None) => t,
            (None, Some(k)) => k,
            (None, None) => "(no type)".into(),
        })
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
        for mi in self.model_inputs()? {
            for (name, range) in mi.input_shapes {
                if let Some(s) = range.fixed() {
                    out.static_shapes.push((name, s.clone()));
                }
            }
            for (name, s) in mi.fixed_shapes {
                if !out.static_shapes.iter().any(|(n, _)| *n == name) {
                    out.static_shapes.push((name, s));
                }
            }
        }
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

    /// `backend_config.custom_ops`: the custom-op (extension) libraries the backend loads, as
    /// absolute paths. A relative path is resolved against the directory of the config file
    /// this config was loaded from (also when the key is written in a `_base_` file), or the
    /// current directory for a config that has no file ([`Config::from_json`]). Empty when
    /// absent or `None`; a single string is one library.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key when it is not a path or a list of paths, and
    /// [`Error::Io`] when the current directory is needed and cannot be read.
    pub fn custom_ops(&self) -> Result<Vec<PathBuf>> {
        const KEY: &str = "backend_config.custom_ops";
        let Some(be) = self.section("backend_config")? else {
            return Ok(vec![]);
        };
        let items: Vec<&Value> = match be.get_str("custom_ops") {
            None | Some(Value::None) => return Ok(vec![]),
            Some(one @ Value::Str(_)) => vec![one],
            Some(Value::List(v)) | Some(Value::Tuple(v)) => v.iter().collect(),
            Some(other) => {
                return Err(self.key_err(
                    KEY,
                    format!(
                        "must be a list of library paths, e.g. custom_ops=['libmyops.so'], not a {}",
                        other.type_name()
                    ),
                ));
            }
        };
        // The config file's folder when there is a file, else the current directory.
        // (`cfg.py` has the empty parent: the current directory.)
        let base = match self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && self.path.is_file())
        {
            Some(dir) => std::path::absolute(dir),
            None => std::env::current_dir(),
        }
        .map_err(|e| Error::io("cannot resolve custom_ops against", &self.path, e))?;
        let mut out: Vec<PathBuf> = Vec::with_capacity(items.len());
        for (i, v) in items.into_iter().enumerate() {
            let p = match v {
                Value::Str(s) if !s.trim().is_empty() => base.join(s),
                other => {
                    return Err(self.key_err(
                        &format!("{KEY}[{i}]"),
                        format!("must be a non-empty path to a shared library, not {other}"),
                    ));
                }
            };
            // The same library named twice (or through a link) is loaded once: ONNX Runtime
            // refuses a domain registered twice.
            let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
                (Ok(x), Ok(y)) => x == y,
                _ => a == b,
            };
            if !out.iter().any(|o| same(o, &p)) {
                out.push(p);
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
