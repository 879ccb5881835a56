//! The compare harness: one model, the same inputs through several backends, per-output
//! differences against the first backend.

use crate::inputs::{ShapeHint, random_inputs};
use rdeploy_core::{DeployConfig, Device, Error, NamedTensors, Registry, Result, Tensor, Wrapper};
use serde::Serialize;
use std::path::Path;

/// Where the inputs of a comparison come from.
#[derive(Clone, Debug)]
pub enum CompareInputs {
    /// These tensors, by input name.
    Given(NamedTensors),
    /// Generated from the model's signature ([`crate::inputs::random_inputs`]).
    Generated {
        /// Shapes for symbolic dims.
        shapes: Vec<ShapeHint>,
        /// The random seed.
        seed: u64,
    },
}

/// Options of [`compare`].
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Backends to run, by registered name; the first is the reference.
    pub backends: Vec<String>,
    /// The device for every backend.
    pub device: Device,
    /// Relative tolerance: pass when `|a - b| <= atol + rtol * |b|` (numpy's `allclose`).
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// The inputs.
    pub inputs: CompareInputs,
}

/// One output of one backend against the reference backend.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputDiff {
    /// The backend compared.
    pub backend: String,
    /// The output's name.
    pub output: String,
    /// Largest `|a - b|` over finite differences (NaN when shapes differ).
    pub max_abs_diff: f64,
    /// Largest `|a - b| / |b|`.
    pub max_rel_diff: f64,
    /// Whether every element is within tolerance, NaNs agree, and shape and dtype match.
    pub pass: bool,
    /// A shape or dtype mismatch, when there is one.
    pub problem: Option<String>,
}

/// What [`compare`] found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompareReport {
    /// The reference backend (the first).
    pub reference: String,
    /// The relative tolerance used.
    pub rtol: f64,
    /// The absolute tolerance used.
    pub atol: f64,
    /// Whether every output of every backend passed.
    pub pass: bool,
    /// Per backend and output.
    pub outputs: Vec<OutputDiff>,
}

/// Compares `got` with `want` elementwise: (max abs diff, max rel diff, pass, problem).
pub fn diff(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> (f64, f64, bool, Option<String>) {
    if got.shape() != want.shape() {
        return (
            f64::NAN,
            f64::NAN,
            false,
            Some(format!("shape {:?} vs {:?}", got.shape(), want.shape())),
        );
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let (mut abs, mut rel, mut pass) = (0f64, 0f64, true);
    for (a, b) in g.iter().zip(&w) {
        let d = (a - b).abs();
        let both_inf_same = a.is_infinite() && a == b;
        if a.is_nan() != b.is_nan() || (!both_inf_same && !a.is_nan() && d > atol + rtol * b.abs())
        {
            pass = false;
        }
        if d.is_finite() {
            abs = abs.max(d);
            // Relative to non-zero references only (a zero reference has no relative scale;
            // its difference shows in max_abs_diff).
            if *b != 0.0 {
                rel = rel.max(d / b.abs());
            }
        }
    }
    // Outputs of different dtypes are different outputs, however close their values.
    let problem =
        (got.dtype() != want.dtype()).then(|| format!("dtype {} vs {}", got.dtype(), want.dtype()));
    (abs, rel, pass && problem.is_none(), problem)
}

/// Runs `model` (as it is, no `onnx_config`) on every backend of `options` with the same
/// inputs and compares each backend's outputs with the first's. Each backend converts into a
/// private temporary dir, removed afterwards.
///
/// # Errors
/// [`Error::InputMismatch`] for fewer than two backends or inputs that do not fit; any error of
/// deploying or running on a backend (naming it).
pub fn compare(
    registry: &Registry,
    model: &Path,
    options: &CompareOptions,
) -> Result<CompareReport> {
    for (key, v) in [("rtol", options.rtol), ("atol", options.atol)] {
        if !v.is_finite() || v < 0.0 {
            return Err(Error::config_key(
                key,
                format!("must be a finite number >= 0, not {v}"),
            ));
        }
    }
    if options.backends.len() < 2 {
        return Err(Error::config_key(
            "backends",
            "needs at least two backends to compare (e.g. tract,onnxruntime)",
        ));
    }
    let scratch = tempfile::Builder::new()
        .prefix("rdeploy-compare-")
        .tempdir()
        .map_err(|e| Error::io("cannot create a temporary dir", std::env::temp_dir(), e))?;
    let mut wrappers: Vec<(String, Box<dyn Wrapper>)> = Vec::new();
    for (i, name) in options.backends.iter().enumerate() {
        let be = registry.get(name)?;
        be.ensure_available()?;
        let work = scratch.path().join(format!("{i}-{name}"));
        std::fs::create_dir_all(&work).map_err(|e| Error::io("cannot create", work.clone(), e))?;
        let cfg = DeployConfig(serde_json::json!({"backend_config": {"type": be.name()}}));
        let (files, _) =
            crate::deploy::to_backend(be.as_ref(), model, &cfg, &work, &options.device)?;
        wrappers.push((
            be.name().to_string(),
            be.build_wrapper(&files, &options.device, &[], &[], &cfg)?,
        ));
    }
    let named = match &options.inputs {
        CompareInputs::Given(t) => t.clone(),
        CompareInputs::Generated { shapes, seed } => {
            let (_, info) = rdeploy_core::onnx::inspect_file(model)?;
            let examples = info
                .inputs
                .iter()
                .map(|t| (t.name.clone(), t.concrete_shape(&Default::default())))
                .collect();
            random_inputs(wrappers[0].1.inputs(), shapes, &examples, *seed)?
        }
    };
    let mut results = Vec::new();
    for (name, w) in &wrappers {
        // Input errors are the caller's (named as such); engine errors name the backend.
        let outs = w.forward(named.clone()).map_err(|e| match e {
            Error::Backend { .. } | Error::InputMismatch { .. } => e,
            other => Error::engine(name.clone(), "running the model", other),
        })?;
        results.push((name.clone(), outs));
    }
    let (_, reference) = &results[0];
    let mut outputs = Vec::new();
    for (name, outs) in &results[1..] {
        for ((oname, got), (_, want)) in outs.iter().zip(reference) {
            let (abs, rel, pass, problem) = diff(got, want, options.rtol, options.atol);
            outputs.push(OutputDiff {
                backend: name.clone(),
                output: oname.clone(),
                max_abs_diff: abs,
                max_rel_diff: rel,
                pass,
                problem,
            });
        }
    }
    Ok(CompareReport {
        reference: options.backends[0].clone(),
        rtol: options.rtol,
        atol: options.atol,
        pass: outputs.iter().all(|d| d.pass),
        outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtypes_that_differ_never_pass() {
        let a = Tensor::from_shape_vec(&[2], vec![1f32, 2.]).unwrap();
        let b = a
            .cast(rdeploy_core::DType::F64, rdeploy_core::Cast::Unchecked)
            .unwrap();
        let (abs, _, pass, problem) = diff(&a, &b, 1e-3, 1e-4);
        assert_eq!(abs, 0.0);
        assert!(!pass);
        assert_eq!(problem.as_deref(), Some("dtype f32 vs f64"));
        let (_, _, pass, problem) = diff(&a, &a, 0.0, 0.0);
        assert!(pass && problem.is_none());
        let inf = Tensor::from_shape_vec(&[1], vec![f32::INFINITY]).unwrap();
        assert!(diff(&inf, &inf, 0.0, 0.0).2, "equal infinities agree");
        let nan = Tensor::from_shape_vec(&[1], vec![f32::NAN]).unwrap();
        assert!(!diff(&nan, &inf, 1.0, 1.0).2);
    }
}
