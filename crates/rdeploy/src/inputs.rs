//! Inputs generated from a signature: shapes from hints and example shapes, random values.

use rand::{Rng, SeedableRng, rngs::StdRng};
use rdeploy_core::{DType, Dim, Error, NamedTensors, Result, Tensor, TensorInfo};
use std::collections::{BTreeMap, HashMap};

/// A shape for generated inputs: an input's full shape (`NAME:1x3x224x224` on the command
/// line) or the size of a symbolic dim for every input that has it (`DIM=N`, `batch=4`).
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeHint {
    /// An input's full shape.
    Input(String, Vec<usize>),
    /// A symbolic dim's size, for every input that has it.
    Dim(String, u64),
}

impl std::str::FromStr for ShapeHint {
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
            return Ok(ShapeHint::Input(name.to_string(), dims));
        }
        if let Some((dim, n)) = s.split_once('=') {
            let n = n
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("'{s}': '{n}' is not a size; write DIM=N such as batch=4"))?;
            return Ok(ShapeHint::Dim(dim.trim().to_string(), n));
        }
        Err(format!(
            "'{s}': write INPUT:1x3x224x224 for an input's shape, or DIM=N (batch=4) for a symbolic dim"
        ))
    }
}

/// Concrete shapes for every input: an input's [`ShapeHint::Input`] first; then each symbolic
/// dim from [`ShapeHint::Dim`], else the example shape's dim at that position (the manifest's
/// `example_shapes`), else 1.
///
/// # Errors
/// [`Error::InputMismatch`] for a hint naming an input the model does not have, or whose rank
/// or fixed dims disagree, or an input of unknown rank with no hint.
pub fn resolve_shapes(
    specs: &[TensorInfo],
    shapes: &[ShapeHint],
    examples: &BTreeMap<String, Vec<usize>>,
) -> Result<Vec<Vec<usize>>> {
    let mut dims: HashMap<String, u64> = HashMap::new();
    for s in shapes {
        match s {
            ShapeHint::Dim(d, n) => {
                dims.insert(d.clone(), *n);
            }
            ShapeHint::Input(name, _) if !specs.iter().any(|sp| &sp.name == name) => {
                return Err(Error::InputMismatch {
                    name: name.clone(),
                    expected: format!(
                        "one of the model's inputs ({})",
                        specs
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    got: "a shape for an input the model does not have".into(),
                });
            }
            ShapeHint::Input(..) => {}
        }
    }
    specs
        .iter()
        .map(|spec| {
            let given = shapes.iter().find_map(|s| match s {
                ShapeHint::Input(n, d) if *n == spec.name => Some(d.clone()),
                _ => None,
            });
            match (given, &spec.shape) {
                (Some(g), Some(want)) => {
                    let ok = g.len() == want.len()
                        && g.iter()
                            .zip(want)
                            .all(|(a, d)| d.fixed().is_none_or(|f| f as usize == *a));
                    if !ok {
                        return Err(Error::InputMismatch {
                            name: spec.name.clone(),
                            expected: format!("a shape that fits {}", spec.shape_string()),
                            got: format!(
                                "the shape {}",
                                g.iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join("x")
                            ),
                        });
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
                (None, None) => Err(Error::InputMismatch {
                    name: spec.name.clone(),
                    expected: format!(
                        "a shape for generated inputs (the model does not say its rank); give one, e.g. --shape {}:1x3x224x224",
                        spec.name
                    ),
                    got: "none".into(),
                }),
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
    shapes: &[ShapeHint],
    examples: &BTreeMap<String, Vec<usize>>,
    seed: u64,
) -> Result<NamedTensors> {
    let mut rng = StdRng::seed_from_u64(seed);
    let concrete = resolve_shapes(specs, shapes, examples)?;
    specs
        .iter()
        .zip(concrete)
        .map(|(spec, shape)| {
            let n = shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| Error::InputMismatch {
                    name: spec.name.clone(),
                    expected: "a shape whose element count fits in memory".into(),
                    got: format!("{shape:?}"),
                })?;
            let t = match spec.dtype {
                DType::Bool => {
                    Tensor::from_shape_vec(&shape, filled(n, spec, || rng.random::<bool>())?)?
                }
                d if d.is_float() => {
                    Tensor::from_shape_vec(&shape, filled(n, spec, || rng.random::<f32>())?)?
                        .cast(d, rdeploy_core::Cast::Unchecked)?
                }
                d => {
                    Tensor::from_shape_vec(&shape, filled(n, spec, || rng.random_range(0..2i64))?)?
                        .cast(d, rdeploy_core::Cast::Unchecked)?
                }
            };
            Ok((spec.name.clone(), t))
        })
        .collect()
}

/// `n` values from `f`, or an error naming the input when memory for them cannot be had (a
/// shape such as batch=2^40 must not abort the process).
fn filled<T>(n: usize, spec: &TensorInfo, mut f: impl FnMut() -> T) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::InputMismatch {
        name: spec.name.clone(),
        expected: "a shape whose elements fit in memory".into(),
        got: format!(
            "{n} elements ({} bytes)",
            n.saturating_mul(std::mem::size_of::<T>())
        ),
    })?;
    v.extend((0..n).map(|_| f()));
    Ok(v)
}

/// The inputs at batch size `batch`: each input's first dim becomes `batch`, its first sample
/// repeated (an input already at `batch` is kept as it is).
///
/// # Errors
/// [`Error::InputMismatch`] naming the input when its first dim is empty, or when the model
/// fixes its first dim to another size (export it with a dynamic batch axis). Scalars (0-d
/// inputs) have no batch axis and are kept.
pub fn with_batch(
    inputs: &NamedTensors,
    specs: &[TensorInfo],
    batch: usize,
) -> Result<NamedTensors> {
    if batch == 0 {
        return Err(Error::config_key("batch", "must be at least 1"));
    }
    inputs
        .iter()
        .map(|(name, t)| {
            let bad = |expected: String| Error::InputMismatch {
                name: name.clone(),
                expected,
                got: format!("{:?}", t.shape()),
            };
            let fixed = specs
                .iter()
                .find(|s| &s.name == name)
                .and_then(|s| s.shape.as_ref()?.first()?.fixed());
            if let Some(f) = fixed.filter(|&f| f != batch as u64) {
                return Err(bad(format!(
                    "a dynamic first dim for batch {batch}: the model fixes it to {f} (export it with a dynamic batch axis, e.g. torch.onnx.export(..., dynamic_axes={{'{name}': {{0: 'batch'}}}}))"
                )));
            }
            let first = match t.shape().first() {
                Some(&f) if f > 0 => f,
                Some(_) => return Err(bad(format!("a sample to repeat {batch} times; the first dim is empty"))),
                // A scalar (a threshold, a flag) has no batch axis: it stays as it is.
                None => return Ok((name.clone(), t.clone())),
            };
            if first == batch {
                return Ok((name.clone(), t.clone()));
            }
            let mut shape = t.shape().to_vec();
            shape[0] = batch;
            if let Ok(strings) = t.as_strings() {
                let all: Vec<String> = strings.iter().cloned().collect();
                let sample = &all[..all.len() / first];
                let repeated = (0..batch).flat_map(|_| sample.iter().cloned()).collect();
                return Ok((name.clone(), Tensor::from_strings(&shape, repeated)?));
            }
            let all = t.as_bytes()?;
            let sample = &all[..all.len() / first];
            let bytes = sample.repeat(batch);
            Ok((name.clone(), Tensor::from_le_bytes(t.dtype(), &shape, &bytes)?))
        })
        .collect()
}
