//! Loading config files with `_base_` inheritance, merged by mmengine's rules.

use crate::python::parse_module;
use crate::value::{Dict, Key, Value};
use rdeploy_core::{Error, Result};
use std::path::{Path, PathBuf};

const BASE_KEY: &str = "_base_";
const DELETE_KEY: &str = "_delete_";

fn cfg_err(file: &Path, line: Option<usize>, col: Option<usize>, msg: impl Into<String>) -> Error {
    Error::Config {
        file: Some(file.to_path_buf()),
        line,
        col,
        key: None,
        msg: msg.into(),
    }
}

/// Reads one file (no inheritance): its top-level keys in order, with `_base_` among them.
/// Where each top-level key was last assigned: file and line (line only for .py).
pub type Origins = std::collections::HashMap<String, (PathBuf, Option<usize>)>;

/// A file's own keys, the line of its `_base_`, and the line of each assignment (.py only).
type FileContent = (Dict, Option<usize>, Vec<(String, usize)>);

fn read_file(path: &Path) -> Result<FileContent> {
    rdeploy_core::files::regular_file_size(path).map_err(|msg| cfg_err(path, None, None, msg))?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        let msg = match e.kind() {
            std::io::ErrorKind::NotFound => "file not found; check the path".to_string(),
            std::io::ErrorKind::InvalidData => "the file is not UTF-8 text".to_string(),
            _ => format!("cannot read: {e}"),
        };
        cfg_err(path, None, None, msg)
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "py" => {
            let assigns = parse_module(&text)
                .map_err(|e| cfg_err(path, Some(e.pos.line), Some(e.pos.col), e.msg))?;
            let lines: Vec<(String, usize)> = assigns
                .iter()
                .map(|(n, _, p)| (n.clone(), p.line))
                .collect();
            let base_line = assigns
                .iter()
                .find(|(n, _, _)| n == BASE_KEY)
                .map(|(_, _, p)| p.line);
            let dict = Dict(
                assigns
                    .into_iter()
                    .filter(|(n, _, _)| !n.starts_with("__"))
                    .map(|(n, v, _)| (Key::Str(n), v))
                    .collect(),
            );
            Ok((dict, base_line, lines))
        }
        "json" => {
            let j: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                cfg_err(
                    path,
                    Some(e.line()),
                    Some(e.column()),
                    format!("invalid JSON: {e}"),
                )
            })?;
            match Value::from_json(&j) {
                Value::Dict(d) => Ok((d, None, vec![])),
                other => Err(cfg_err(
                    path,
                    None,
                    None,
                    format!(
                        "the top level must be an object, not a {}",
                        other.type_name()
                    ),
                )),
            }
        }
        "toml" => {
            let t: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((0, 0));
                cfg_err(
                    path,
                    Some(line),
                    Some(col),
                    format!("invalid TOML: {}", e.message()),
                )
            })?;
            Ok((from_toml_table(&t), None, vec![]))
        }
        "yaml" | "yml" => {
            reject_yaml_aliases(&text, path)?;
            let docs = yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| {
                cfg_err(
                    path,
                    Some(e.marker().line()),
                    Some(e.marker().col() + 1),
                    format!("invalid YAML: {}", e.info()),
                )
            })?;
            match docs.first().map(|d| from_yaml(d, path)).transpose()? {
                Some(Value::Dict(d)) => Ok((d, None, vec![])),
                None | Some(Value::None) => Ok((Dict::default(), None, vec![])),
                Some(other) => Err(cfg_err(
                    path,
                    None,
                    None,
                    format!(
                        "the top level must be a mapping, not a {}",
                        other.type_name()
                    ),
                )),
            }
        }
        _ => Err(cfg_err(
            path,
            None,
            None,
            "unknown config file type; use .py (MMDeploy's format), .yaml, .json or .toml",
        )),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Refuses YAML aliases before the loader expands them (nested aliases grow exponentially: a
/// few lines can ask for gigabytes). MMDeploy's configs have none.
fn reject_yaml_aliases(text: &str, path: &Path) -> Result<()> {
    use yaml_rust2::parser::{Event, Parser};
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => return Ok(()),
            Ok((Event::Alias(_), mark)) => {
                return Err(cfg_err(
                    path,
                    Some(mark.line()),
                    Some(mark.col() + 1),
                    "YAML aliases (*name) are not supported; write the value out",
                ));
            }
            Ok(_) => {}
            // The loader reports syntax errors with their position.
            Err(_) => return Ok(()),
        }
    }
}

fn from_yaml(y: &yaml_rust2::Yaml, path: &Path) -> Result<Value> {
    use yaml_rust2::Yaml;
    Ok(match y {
        Yaml::Null => Value::None,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::Int(*i),
        Yaml::Real(r) => Value::Float(
            y.as_f64()
                .ok_or_else(|| cfg_err(path, None, None, format!("'{r}' is not a number")))?,
        ),
        Yaml::String(s) => Value::Str(s.clone()),
        Yaml::Array(a) => Value::List(
            a.iter()
                .map(|x| from_yaml(x, path))
                .collect::<Result<_>>()?,
        ),
        Yaml::Hash(h) => {
            let mut d = Dict::default();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => Key::Str(s.clone()),
                    Yaml::Integer(i) => Key::Int(*i),
                    other => {
                        return Err(cfg_err(
                            path,
                            None,
                            None,
                            format!("mapping keys must be strings or ints; found {other:?}"),
                        ));
                    }
                };
                d.insert(key, from_yaml(v, path)?);
            }
            Value::Dict(d)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err(cfg_err(
                path,
                None,
                None,
                "YAML aliases and unparsable values are not supported",
            ));
        }
    })
}

fn from_toml(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::Str(s.clone()),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::Str(d.to_string()),
        toml::Value::Array(a) => Value::List(a.iter().map(from_toml).collect()),
        toml::Value::Table(t) => Value::Dict(from_toml_table(t)),
    }
}

fn from_toml_table(t: &toml::Table) -> Dict {
    Dict(
        t.iter()
            .map(|(k, v)| (Key::Str(k.clone()), from_toml(v)))
            .collect(),
    )
}

/// Loads a config file with its bases, merged as mmengine's `Config.fromfile` does.
///
/// # Errors
/// [`Error::Config`] naming the file (and line and column where known): unreadable, outside the
/// supported syntax, a missing base, a cycle, or a key defined in two bases.
pub fn load_tree(path: &Path) -> Result<(Dict, Origins)> {
    let mut origins = Origins::new();
    let tree = load_rec(path, &mut Vec::new(), &mut origins)?;
    Ok((tree, origins))
}

fn load_rec(path: &Path, stack: &mut Vec<PathBuf>, origins: &mut Origins) -> Result<Dict> {
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(i) = stack.iter().position(|p| *p == canon) {
        let chain: Vec<String> = stack[i..]
            .iter()
            .chain(std::iter::once(&canon))
            .map(|p| p.display().to_string())
            .collect();
        return Err(cfg_err(
            path,
            None,
            None,
            format!("_base_ inheritance forms a cycle: {}", chain.join(" -> ")),
        ));
    }
    let (mut dict, base_line, lines) = read_file(path)?;
    let bases = match dict.remove(&Key::Str(BASE_KEY.into())) {
        None => vec![],
        Some(Value::Str(s)) => vec![s],
        Some(Value::List(v)) | Some(Value::Tuple(v)) => v
            .into_iter()
            .map(|b| match b {
                Value::Str(s) => Ok(s),
                other => Err(cfg_err(
                    path,
                    base_line,
                    None,
                    format!(
                        "_base_ entries must be paths (strings), not {}",
                        other.type_name()
                    ),
                )),
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(cfg_err(
                path,
                base_line,
                None,
                format!(
                    "_base_ must be a path or a list of paths, not {}",
                    other.type_name()
                ),
            ));
        }
    };
    stack.push(canon);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut base_dict = Dict::default();
    let mut origin: Vec<(Key, PathBuf)> = Vec::new();
    for b in &bases {
        if b.contains("::") {
            return Err(cfg_err(
                path,
                base_line,
                None,
                format!(
                    "base '{b}' uses a package scope (pkg::path), which rdeploy cannot resolve without Python; copy that config next to yours and name it by path"
                ),
            ));
        }
        let bp = dir.join(b);
        if !bp.is_file() {
            return Err(cfg_err(
                path,
                base_line,
                None,
                format!("base config '{b}' not found (looked for {})", bp.display()),
            ));
        }
        let sub = load_rec(&bp, stack, origins)?;
        for (k, v) in sub.0 {
            if let Some((_, other)) = origin.iter().find(|(kk, _)| *kk == k) {
                return Err(cfg_err(
                    path,
                    base_line,
                    None,
                    format!(
                        "key {k} is defined in two bases, {} and {}; mmengine does not allow duplicate keys among bases: remove it from one of them",
                        other.display(),
                        bp.display()
                    ),
                ));
            }
            origin.push((k.clone(), bp.clone()));
            base_dict.0.push((k, v));
        }
    }
    stack.pop();
    for k in dict.keys() {
        let name = k.to_json_key();
        let line = lines.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
        origins.insert(name, (path.to_path_buf(), line));
    }
    let dict = resolve_base_refs(dict, &base_dict, path, &lines)?;
    let merged = merge_a_into_b(dict, base_dict, path, "")?;
    Ok(Dict(
        merged
            .0
            .into_iter()
            .filter(|(k, _)| !matches!(k, Key::Str(s) if s.starts_with("__")))
            .collect(),
    ))
}

/// Replaces `_base_.a.b` references of a file by the values of its merged bases (mmengine's
/// `_base_` variables), before the file's own keys are merged over them.
fn resolve_base_refs(
    dict: Dict,
    bases: &Dict,
    path: &Path,
    lines: &[(String, usize)],
) -> Result<Dict> {
    use crate::python::BASE_REF;
    fn lookup<'a>(bases: &'a Dict, dotted: &str) -> Option<&'a Value> {
        let mut parts = dotted.split('.');
        let mut v = bases.get_str(parts.next()?)?;
        for p in parts {
            v = match v {
                Value::Dict(d) => d
                    .get_str(p)
                    .or_else(|| p.parse::<i64>().ok().and_then(|i| d.get(&Key::Int(i))))?,
                Value::List(items) | Value::Tuple(items) => items.get(p.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(v)
    }
    fn walk(
        v: Value,
        bases: &Dict,
        top: &str,
        err: &dyn Fn(&str, String) -> Error,
    ) -> Result<Value> {
        Ok(match v {
            Value::Str(s) if s.starts_with(BASE_REF) => {
                let dotted = &s[BASE_REF.len()..];
                lookup(bases, dotted).cloned().ok_or_else(|| {
                    let known: Vec<String> = bases.keys().map(|k| k.to_json_key()).collect();
                    err(
                        top,
                        format!(
                            "'_base_.{dotted}' names no value of the merged bases (they define: {})",
                            if known.is_empty() {
                                "nothing: this file has no _base_".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    )
                })?
            }
            Value::Dict(d) => Value::Dict(Dict(
                d.0.into_iter()
                    .map(|(k, x)| Ok((k, walk(x, bases, top, err)?)))
                    .collect::<Result<_>>()?,
            )),
            Value::List(items) => Value::List(
                items
                    .into_iter()
                    .map(|x| walk(x, bases, top, err))
                    .collect::<Result<_>>()?,
            ),
            Value::Tuple(items) => Value::Tuple(
                items
                    .into_iter()
                    .map(|x| walk(x, bases, top, err))
                    .collect::<Result<_>>()?,
            ),
            other => other,
        })
    }
    let err = |top: &str, msg: String| {
        let line = lines.iter().find(|(n, _)| n == top).map(|(_, l)| *l);
        cfg_err(path, line, None, msg)
    };
    Ok(Dict(
        dict.0
            .into_iter()
            .map(|(k, v)| {
                let top = k.to_json_key();
                Ok((k, walk(v, bases, &top, &err)?))
            })
            .collect::<Result<_>>()?,
    ))
}

/// mmengine's `Config._merge_a_into_b`: values of `a` override `b`; dicts merge recursively
/// unless `a`'s dict has `_delete_=True`, which makes it replace `b`'s.
pub(crate) fn merge_a_into_b(a: Dict, mut b: Dict, file: &Path, prefix: &str) -> Result<Dict> {
    for (k, v) in a.0 {
        let key_path = if prefix.is_empty() {
            k.to_json_key()
        } else {
            format!("{prefix}.{}", k.to_json_key())
        };
        match v {
            Value::Dict(mut vd) if b.contains(&k) => {
                // Like mmengine, `_delete_` is popped only when the key exists in the base.
                let delete = match vd.remove(&Key::Str(DELETE_KEY.into())) {
                    Some(Value::Bool(d)) => d,
                    Some(Value::Int(i)) => i != 0,
                    Some(Value::None) | None => false,
                    Some(other) => {
                        return Err(Error::Config {
                            file: Some(file.to_path_buf()),
                            line: None,
                            col: None,
                            key: Some(format!("{key_path}._delete_")),
                            msg: format!(
                                "_delete_ must be True or False, not {}",
                                other.type_name()
                            ),
                        });
                    }
                };
                if delete {
                    b.insert(k, Value::Dict(vd));
                } else {
                    let base_v = b.get(&k).cloned().unwrap_or(Value::None);
                    let Value::Dict(bd) = base_v else {
                        return Err(Error::Config {
                            file: Some(file.to_path_buf()),
                            line: None,
                            col: None,
                            key: Some(key_path),
                            msg: format!(
                                "is a dict here but a {} in the base config, so it cannot be merged; set _delete_=True in this dict to replace the base value",
                                base_v.type_name()
                            ),
                        });
                    };
                    let merged = merge_a_into_b(vd, bd, file, &key_path)?;
                    b.insert(k, Value::Dict(merged));
                }
            }
            other => b.insert(k, other),
        }
    }
    Ok(b)
}
