//! Model inputs from the command line: tensor files, or generated from the signature.

use anyhow::{Context, Result, anyhow, bail};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rdeploy_core::{DType, Dim, NamedTensors, Tensor, TensorInfo};
use std::collections::{BTreeMap, HashMap};
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

/// `--shape NAME:1x3x224x224` (an input's full shape) or `--shape DIM=N` (a symbolic dim).
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeArg {
    /// An input's full shape.
    Input(String, Vec<usize>),
    /// A symbolic dim's size, for every input that has it.
    Dim(String, u64),
}

impl std::str::FromStr for ShapeArg {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some((name, dims)) = s.rsplit_once(':') {
            let dims = dims
                .split(['x', 'X', ','])
                .map(|d| {
                    d.trim()
                        .parse::<usize>()
                        .map_err(|_| format!("'{s}': '{d}' is not a dim; write NAME:1x3x224x224"))
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            if name.is_empty() {
                return Err(format!("'{s}': the input name before ':' is missing"));
            }
            return Ok(ShapeArg::Input(name.to_string(), dims));
        }
        if let Some((dim, n)) = s.split_once('=') {
            let n = n
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("'{s}': '{n}' is not a size; write DIM=N such as batch=4"))?;
            return Ok(ShapeArg::Dim(dim.trim().to_string(), n));
        }
        Err(format!(
            "'{s}': write INPUT:1x3x224x224 for an input's shape, or DIM=N (batch=4) for a symbolic dim"
        ))
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
        let tensors = rdeploy_core::io::read_tensor_file(&a.file)?;
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

/// Concrete shapes for every input: `--shape NAME:DIMS` first; then each symbolic dim from
/// `--shape DIM=N`, else the example shape's dim at that position, else 1.
///
/// # Errors
/// A `--shape` for an input the model does not have, or whose rank or fixed dims disagree.
pub fn resolve_shapes(
    specs: &[TensorInfo],
    shapes: &[ShapeArg],
    examples: &BTreeMap<String, Vec<usize>>,
) -> Result<Vec<Vec<usize>>> {
    let mut dims: HashMap<String, u64> = HashMap::new();
    for s in shapes {
        match s {
            ShapeArg::Dim(d, n) => {
                dims.insert(d.clone(), *n);
            }
            ShapeArg::Input(name, _) if !specs.iter().any(|sp| &sp.name == name) => {
                bail!(
                    "--shape names input '{name}', which the model does not have (inputs: {})",
                    specs
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            ShapeArg::Input(..) => {}
        }
    }
    specs
        .iter()
        .map(|spec| {
            let given = shapes.iter().find_map(|s| match s {
                ShapeArg::Input(n, d) if *n == spec.name => Some(d.clone()),
                _ => None,
            });
            match (given, &spec.shape) {
                (Some(g), Some(want)) => {
                    let ok = g.len() == want.len()
                        && g.iter()
                            .zip(want)
                            .all(|(a, d)| d.fixed().is_none_or(|f| f as usize == *a));
                    if !ok {
                        bail!(
                            "--shape {}:{} does not fit the input's shape {}",
                            spec.name,
                            g.iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("x"),
                            spec.shape_string()
                        );
                    }
                    Ok(g)
                }
                (Some(g), None) => Ok(g),
                (None, Some(want)) => {
                    let example = examples.get(&spec.name);
                    Ok(want
                        .iter()
                        .enumerate()
                        .map(|(j, d)| match d {
                            Dim::Fixed(n) => *n as usize,
                            Dim::Symbolic(s) => dims
                                .get(s)
                                .map(|&n| n as usize)
                                .or_else(|| example.and_then(|e| e.get(j).copied()))
                                .unwrap_or(1),
                        })
                        .collect())
                }
                (None, None) => bail!(
                    "input '{}' has no known shape; give one with --shape {}:1x3x224x224",
                    spec.name,
                    spec.name
                ),
            }
        })
        .collect()
}

/// Random inputs for a signature: floats uniform in [0, 1), integers in [0, 2), random bools.
/// Integer inputs are often indices, so they stay small to be valid for any table.
///
/// # Errors
/// As [`resolve_shapes`].
pub fn random_inputs(
    specs: &[TensorInfo],
    shapes: &[ShapeArg],
    examples: &BTreeMap<String, Vec<usize>>,
    seed: u64,
) -> Result<NamedTensors> {
    let mut rng = StdRng::seed_from_u64(seed);
    let concrete = resolve_shapes(specs, shapes, examples)?;
    specs
        .iter()
        .zip(concrete)
        .map(|(spec, shape)| {
            let n: usize = shape.iter().product();
            let t = match spec.dtype {
                DType::Bool => {
                    Tensor::from_shape_vec(&shape, (0..n).map(|_| rng.random::<bool>()).collect())?
                }
                d if d.is_float() => {
                    Tensor::from_shape_vec(&shape, (0..n).map(|_| rng.random::<f32>()).collect())?
                        .cast(d, rdeploy_core::Cast::Unchecked)?
                }
                d => Tensor::from_shape_vec(
                    &shape,
                    (0..n).map(|_| rng.random_range(0..2i64)).collect(),
                )?
                .cast(d, rdeploy_core::Cast::Unchecked)?,
            };
            Ok((spec.name.clone(), t))
        })
        .collect::<Result<_>>()
        .context("generating inputs")
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
