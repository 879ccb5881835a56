//! Model inputs from the command line: `--input NAME=FILE` tensor files (generated inputs are
//! `rdeploy::inputs`).

use anyhow::{Result, anyhow, bail};
use rdeploy::{NamedTensors, TensorInfo};
use std::path::{Path, PathBuf};

/// `--input NAME=FILE` or `--input FILE`.
#[derive(Clone, Debug, PartialEq)]
pub struct InputArg {
    /// The input name, when given.
    pub name: Option<String>,
    /// The tensor file.
    pub file: PathBuf,
}

impl std::str::FromStr for InputArg {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.is_empty() {
            return Err("expected NAME=FILE or FILE".into());
        }
        // A name never contains '/', so 'dir/a=b.npy' is a path.
        match s.split_once('=') {
            Some((n, f)) if !n.is_empty() && !n.contains('/') && !f.is_empty() => Ok(InputArg {
                name: Some(n.to_string()),
                file: PathBuf::from(f),
            }),
            Some((_, "")) => Err(format!("'{s}': the file after '=' is missing")),
            _ => Ok(InputArg {
                name: None,
                file: PathBuf::from(s),
            }),
        }
    }
}

/// Reads the `--input` files into named tensors for `specs`.
///
/// # Errors
/// A file that cannot be read, a name the model does not have (named in the message), an
/// unnamed file when the model has several inputs.
pub fn load_inputs(args: &[InputArg], specs: &[TensorInfo]) -> Result<NamedTensors> {
    let mut out: NamedTensors = Vec::new();
    for a in args {
        let tensors = rdeploy::io::read_tensor_file(&a.file)?;
        match &a.name {
            Some(name) => {
                let t = if tensors.len() == 1 {
                    tensors.into_iter().next().map(|(_, t)| t)
                } else {
                    let names: Vec<String> =
                        tensors.iter().filter_map(|(n, _)| n.clone()).collect();
                    let found = tensors
                        .into_iter()
                        .find(|(n, _)| n.as_deref() == Some(name))
                        .map(|(_, t)| t);
                    if found.is_none() {
                        bail!(
                            "{}: holds {} but no array named '{name}'",
                            a.file.display(),
                            names.join(", ")
                        );
                    }
                    found
                };
                out.push((
                    name.clone(),
                    t.ok_or_else(|| anyhow!("{}: no tensor", a.file.display()))?,
                ));
            }
            None => {
                let n = tensors.len();
                for (i, (fname, t)) in tensors.into_iter().enumerate() {
                    let name = match fname {
                        Some(f) if specs.iter().any(|s| s.name == f) => f,
                        _ if n == 1 && args.len() == 1 && specs.len() == 1 => specs[0].name.clone(),
                        other => bail!(
                            "{}: cannot tell which input {} is for (model inputs: {}); write --input NAME={}",
                            a.file.display(),
                            other
                                .map(|o| format!("array '{o}'"))
                                .unwrap_or_else(|| format!("tensor {i}")),
                            specs
                                .iter()
                                .map(|s| s.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            a.file.display()
                        ),
                    };
                    out.push((name, t));
                }
            }
        }
    }
    Ok(out)
}

/// A file name for an output tensor: its name with characters unsafe in file names replaced.
pub fn output_file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() {
        "output.npy".into()
    } else {
        format!("{safe}.npy")
    }
}

/// The path of an output file.
pub fn output_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(output_file_name(name))
}
