//! Model inputs from the command line: `--input NAME=FILE` tensor files (generated inputs are
//! `rdeploy::inputs`).

use anyhow::{Result, anyhow, bail};
use rdeploy::{NamedTensors, TensorInfo};
use std::path::{Path, PathBuf};

/// `--input NAME=FILE` or `--input FILE`, as written; which it is depends on the model's input
/// names, so it is decided by [`InputArg::resolve`] once the model is known.
#[derive(Clone, Debug, PartialEq)]
pub struct InputArg {
    /// The argument as given.
    pub raw: String,
}

impl std::str::FromStr for InputArg {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.is_empty() {
            return Err("expected NAME=FILE or FILE".into());
        }
        Ok(InputArg { raw: s.to_string() })
    }
}

impl InputArg {
    /// The input name (if any) and the file. ONNX names are arbitrary strings (`gpu_0/data_0`,
    /// `input_1:0`, `/model/Conv_output_0`, names with `=` or spaces), so `NAME=FILE` is matched
    /// against the model's actual input names first; only when none matches is the argument a
    /// plain file, or `NAME=FILE` with a name the model lacks (an error listing the names).
    ///
    /// # Errors
    /// An unknown name, a missing file after `=`, or two readings that both name existing files.
    pub fn resolve(&self, specs: &[TensorInfo]) -> Result<(Option<String>, PathBuf)> {
        let s = self.raw.as_str();
        let readings: Vec<(&str, &str)> = specs
            .iter()
            .filter_map(|sp| {
                s.strip_prefix(sp.name.as_str())
                    .and_then(|rest| rest.strip_prefix('='))
                    .filter(|f| !f.is_empty())
                    .map(|f| (sp.name.as_str(), f))
            })
            .collect();
        let one = |(n, f): (&str, &str)| Ok((Some(n.to_string()), PathBuf::from(f)));
        match readings.as_slice() {
            [r] => return one(*r),
            [] => {}
            many => {
                let existing: Vec<&(&str, &str)> = many
                    .iter()
                    .filter(|(_, f)| Path::new(f).is_file())
                    .collect();
                if let [r] = existing.as_slice() {
                    return one(**r);
                }
                let list: Vec<String> = many
                    .iter()
                    .map(|(n, f)| format!("input '{n}' from file '{f}'"))
                    .collect();
                bail!(
                    "--input '{s}' is ambiguous: it reads as {}; rename or move the file so that exactly one reading names an existing file",
                    list.join(", or as ")
                );
            }
        }
        if !s.contains('=') || Path::new(s).is_file() {
            return Ok((None, PathBuf::from(s)));
        }
        let names = specs
            .iter()
            .map(|sp| format!("'{}'", sp.name))
            .collect::<Vec<_>>()
            .join(", ");
        match s.split_once('=') {
            Some((n, "")) => {
                bail!("--input '{s}': the file after '=' is missing; write --input {n}=FILE")
            }
            Some((n, _)) => bail!(
                "--input '{s}': the model has no input named '{n}' and no file '{s}' exists; the model's inputs are {names} (write --input NAME=FILE with one of them)"
            ),
            None => Ok((None, PathBuf::from(s))),
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
    for arg in args {
        let (name, file) = arg.resolve(specs)?;
        // The model's dtypes settle what a file cannot say (an ml_dtypes `<V1` array is float8,
        // int4... as the input it is given for is).
        let dtype_of = |n: &str| specs.iter().find(|s| s.name == n).map(|s| s.dtype);
        let given = name.as_deref().and_then(dtype_of);
        let only = (specs.len() == 1).then(|| specs[0].dtype);
        let expect = |entry: Option<&str>| entry.and_then(dtype_of).or(given).or(only);
        let a = Loaded { name, file };
        let tensors = rdeploy::io::read_tensor_file_expecting(&a.file, &expect)?;
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

/// An `--input` after resolving it against the model's names.
struct Loaded {
    name: Option<String>,
    file: PathBuf,
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
