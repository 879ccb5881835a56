//! The compare harness: one model, the same inputs through several backends, per-output
//! differences against the first backend.

use crate::inputs::{ShapeHint, random_inputs};
use rdeploy_core::{DeployConfig, Device, Error, NamedTensors, Registry, Result, Tensor, Wrapper};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

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
    /// Backends to run, by registered name; the first is the reference (unless `expected` is
    /// given).
    pub backends: Vec<String>,
    /// The device for every backend.
    pub device: Device,
    /// Relative tolerance for every output: pass when `|a - b| <= atol + rtol * |b|` (numpy's
    /// `allclose`); `None`: the output dtype's default ([`default_tolerance`]).
    pub rtol: Option<f64>,
    /// Absolute tolerance for every output; `None`: the dtype's default.
    pub atol: Option<f64>,
    /// Per output name: (rtol, atol), over the above.
    pub per_output: Vec<(String, f64, f64)>,
    /// The inputs.
    pub inputs: CompareInputs,
    /// Another model to compare against the model (an fp16 or optimised copy, a re-export):
    /// the model on the first backend is the reference, the other model runs on every backend.
    pub against: Option<std::path::PathBuf>,
    /// Expected outputs (ONNX test data, a reference run saved earlier): every backend is
    /// compared with them. Matched by output name, or by position when the names differ.
    pub expected: Option<NamedTensors>,
}

/// numpy-style default tolerances per output dtype: float32 rtol 1e-3 / atol 1e-4 (engines sum
/// in different orders and fuse differently), float16 1e-2 / 1e-3 (10 bits of mantissa),
/// bfloat16 the same rtol with atol 1e-2 (7 bits: one rounding step is 0.4-0.8 %), float64
/// numpy's `allclose` defaults 1e-5 / 1e-8. The float8 and float4 types allow one step of their
/// last mantissa bit (a rounding a different engine may take the other way): e4m3 1/8, e5m2
/// 1/4, float4e2m1 1/2, e8m0 (powers of two) a factor of 2; ONNX's own float8 tests use rtol
/// 0.1 to 0.2 for the same reason. Integers, booleans and strings are compared exactly.
pub fn default_tolerance(dtype: rdeploy_core::DType) -> (f64, f64) {
    use rdeploy_core::DType;
    match dtype {
        DType::F32 => (1e-3, 1e-4),
        DType::F16 => (1e-2, 1e-3),
        DType::BF16 => (1e-2, 1e-2),
        DType::F64 => (1e-5, 1e-8),
        DType::F8E4M3FN | DType::F8E4M3FNUZ => (0.125, 1e-3),
        DType::F8E5M2 | DType::F8E5M2FNUZ => (0.25, 1e-3),
        DType::F4E2M1 => (0.5, 1e-3),
        DType::F8E8M0 => (1.0, 0.0),
        _ => (0.0, 0.0),
    }
}

/// The element that differs most (by `|a - b| - (atol + rtol * |b|)`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Worst {
    /// Its index, one number per dim.
    pub index: Vec<usize>,
    /// The compared value.
    pub got: f64,
    /// The reference value.
    pub want: f64,
}

/// One output of one backend against the reference.
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
    /// The relative tolerance applied to this output.
    pub rtol: f64,
    /// The absolute tolerance applied to this output.
    pub atol: f64,
    /// Mean `|a - b|` over finite differences.
    pub mean_abs_diff: f64,
    /// Cosine similarity of the two as vectors (finite elements; `None` for a zero vector).
    pub cosine: Option<f64>,
    /// The element furthest outside (or least inside) the tolerance.
    pub worst: Option<Worst>,
    /// Elements NaN in one and not the other.
    pub nan_mismatches: usize,
    /// Elements infinite in one and not equal in the other.
    pub inf_mismatches: usize,
    /// For a rank-2 float output (a batch of scores): the share of rows whose arg-max agrees.
    pub top1_agreement: Option<f64>,
    /// The share of rows whose reference top-1 class is among the compared top 5.
    pub top5_agreement: Option<f64>,
}

impl OutputDiff {
    /// `got` against `want` under `rtol`/`atol`.
    pub fn of(
        backend: &str,
        output: &str,
        got: &Tensor,
        want: &Tensor,
        rtol: f64,
        atol: f64,
    ) -> OutputDiff {
        let mut d = OutputDiff {
            backend: backend.to_string(),
            output: output.to_string(),
            max_abs_diff: f64::NAN,
            max_rel_diff: f64::NAN,
            pass: false,
            problem: None,
            rtol,
            atol,
            mean_abs_diff: f64::NAN,
            cosine: None,
            worst: None,
            nan_mismatches: 0,
            inf_mismatches: 0,
            top1_agreement: None,
            top5_agreement: None,
        };
        if got.shape() != want.shape() {
            d.problem = Some(format!("shape {:?} vs {:?}", got.shape(), want.shape()));
            return d;
        }
        if let (Ok(gs), Ok(ws)) = (got.as_strings(), want.as_strings()) {
            // Strings are equal or not: no distances, no tolerance.
            let differ: Vec<usize> = gs
                .iter()
                .zip(ws.iter())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(i, _)| i)
                .collect();
            d.max_abs_diff = 0.0;
            d.max_rel_diff = 0.0;
            d.mean_abs_diff = 0.0;
            d.pass = differ.is_empty();
            if let Some(&i) = differ.first() {
                let (a, b) = (gs.iter().nth(i), ws.iter().nth(i));
                d.problem = Some(format!(
                    "{} of {} strings differ; the first at {:?}: {:?} vs {:?}",
                    differ.len(),
                    gs.len(),
                    unravel(i, got.shape()),
                    a.map_or("", |s| s.as_str()),
                    b.map_or("", |s| s.as_str())
                ));
            }
            return d;
        }
        let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
        let (mut abs, mut rel, mut pass, mut sum) = (0f64, 0f64, true, 0f64);
        let (mut dot, mut ng, mut nw, mut finite) = (0f64, 0f64, 0f64, 0usize);
        let mut worst: Option<(f64, usize)> = None;
        for (i, (a, b)) in g.iter().zip(&w).enumerate() {
            if a.is_nan() != b.is_nan() {
                d.nan_mismatches += 1;
                pass = false;
                continue;
            }
            if a.is_nan() {
                continue;
            }
            if a.is_infinite() || b.is_infinite() {
                if a != b {
                    d.inf_mismatches += 1;
                    pass = false;
                }
                continue;
            }
            let diff = (a - b).abs();
            let excess = diff - (atol + rtol * b.abs());
            if excess > 0.0 {
                pass = false;
            }
            if worst.is_none_or(|(e, _)| excess > e) {
                worst = Some((excess, i));
            }
            abs = abs.max(diff);
            // Relative to non-zero references only (a zero reference has no relative scale;
            // its difference shows in max_abs_diff).
            if *b != 0.0 {
                rel = rel.max(diff / b.abs());
            }
            sum += diff;
            finite += 1;
            dot += a * b;
            ng += a * a;
            nw += b * b;
        }
        d.max_abs_diff = abs;
        d.max_rel_diff = rel;
        d.mean_abs_diff = if finite > 0 { sum / finite as f64 } else { 0.0 };
        d.cosine = (ng > 0.0 && nw > 0.0).then(|| dot / (ng.sqrt() * nw.sqrt()));
        d.worst = worst.map(|(_, i)| Worst {
            index: unravel(i, got.shape()),
            got: g[i],
            want: w[i],
        });
        if got.shape().len() == 2 && got.dtype().is_float() && got.shape()[1] > 1 {
            let (rows, cols) = (got.shape()[0], got.shape()[1]);
            let (mut top1, mut top5) = (0usize, 0usize);
            for r in 0..rows {
                let (gr, wr) = (&g[r * cols..(r + 1) * cols], &w[r * cols..(r + 1) * cols]);
                let want_best = argmax(wr);
                if argmax(gr) == want_best {
                    top1 += 1;
                }
                let mut order: Vec<usize> = (0..cols).collect();
                order.sort_by(|&x, &y| gr[y].total_cmp(&gr[x]));
                if order.iter().take(5).any(|&c| c == want_best) {
                    top5 += 1;
                }
            }
            if rows > 0 {
                d.top1_agreement = Some(top1 as f64 / rows as f64);
                d.top5_agreement = Some(top5 as f64 / rows as f64);
            }
        }
        // Outputs of different dtypes are different outputs, however close their values.
        d.problem = (got.dtype() != want.dtype())
            .then(|| format!("dtype {} vs {}", got.dtype(), want.dtype()));
        d.pass = pass && d.problem.is_none();
        d
    }
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if x.total_cmp(&v[best]).is_gt() {
            best = i;
        }
    }
    best
}

/// A flat index as one index per dim (row-major).
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (k, &n) in shape.iter().enumerate().rev() {
        if n > 0 {
            idx[k] = i % n;
            i /= n;
        }
    }
    idx
}

/// What [`compare`] found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompareReport {
    /// The reference: the first backend, `expected`, or `MODEL on BACKEND` with `against`.
    pub reference: String,
    /// The relative tolerance asked for every output (`None`: per dtype; each output records
    /// its own).
    pub rtol: Option<f64>,
    /// The absolute tolerance asked for every output.
    pub atol: Option<f64>,
    /// Whether every output of every backend passed.
    pub pass: bool,
    /// Per backend and output.
    pub outputs: Vec<OutputDiff>,
}

/// Runs `model` (as it is, no `onnx_config`) on every backend of `options` with the same
/// inputs and compares outputs, matched by name: each backend's with the first's; or each
/// backend's with `options.expected`; or, with `options.against`, the other model's on every
/// backend with the model's on the first. Each backend converts into a private temporary dir,
/// removed afterwards.
///
/// # Errors
/// [`Error::Config`] for a tolerance that is not a finite number >= 0 or too few backends;
/// [`Error::InputMismatch`] for inputs that do not fit; any error of deploying or running on a
/// backend (naming it).
pub fn compare(
    registry: &Registry,
    model: &Path,
    options: &CompareOptions,
) -> Result<CompareReport> {
    let explicit = [("rtol", options.rtol), ("atol", options.atol)];
    let per = options
        .per_output
        .iter()
        .flat_map(|(_, r, a)| [("rtol", Some(*r)), ("atol", Some(*a))]);
    for (key, v) in explicit.into_iter().chain(per) {
        if let Some(v) = v
            && (!v.is_finite() || v < 0.0)
        {
            return Err(Error::config_key(
                key,
                format!("must be a finite number >= 0, not {v}"),
            ));
        }
    }
    // Runs of the model: a work dir's own engine, and each backend's. Another model file
    // runs on each backend (with a work dir and none named: on the work dir's backend).
    let model_runs = options.backends.len() + usize::from(model.is_dir());
    let enough = if options.expected.is_some() || options.against.is_some() {
        model_runs >= 1
    } else {
        model_runs >= 2
    };
    if !enough {
        return Err(Error::config_key(
            "backends",
            "two runs to compare: name two backends (--backends tract,onnxruntime), or one backend or a work dir together with expected outputs (--expected) or another model (--against)",
        ));
    }
    let scratch = tempfile::Builder::new()
        .prefix("rdeploy-compare-")
        .tempdir()
        .map_err(|e| Error::io("cannot create a temporary dir", std::env::temp_dir(), e))?;
    let load = |m: &Path, i: usize, name: &str| {
        load_on(
            registry,
            m,
            name,
            &scratch.path().join(format!("{i}-{name}")),
            &options.device,
        )
        .map(Arc::<dyn Wrapper>::from)
    };
    let (model_onnx, model_work) = resolve(model)?;
    let against = options.against.as_deref().map(resolve).transpose()?;
    let label_of = |p: &Path| {
        p.file_name().map_or_else(
            || p.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        )
    };
    // (label, wrapper): the model (a work dir's own engine first), then the other model.
    let mut runs: Vec<(String, Arc<dyn Wrapper>)> = Vec::new();
    if let Some(w) = &model_work {
        runs.push((
            format!("{} ({})", label_of(model), w.manifest.backend),
            crate::load(w, registry, None)?,
        ));
    }
    for (i, name) in options.backends.iter().enumerate() {
        if against.is_some() && !runs.is_empty() {
            break; // the model runs on one backend only: the reference
        }
        let label = if against.is_some() {
            format!("{} on {name}", label_of(model))
        } else {
            name.clone()
        };
        runs.push((label, load(&model_onnx, i, name)?));
    }
    match (&against, &options.against) {
        // Another work dir runs on its own deployed files.
        (Some((_, Some(w))), Some(other)) => runs.push((
            format!("{} ({})", label_of(other), w.manifest.backend),
            crate::load(w, registry, None)?,
        )),
        (Some((other_onnx, None)), Some(other)) => {
            let backends = match (&model_work, options.backends.is_empty()) {
                (Some(w), true) => vec![w.manifest.backend.clone()],
                _ => options.backends.clone(),
            };
            for (i, name) in backends.iter().enumerate() {
                runs.push((
                    format!("{} on {name}", label_of(other)),
                    load(other_onnx, 100 + i, name)?,
                ));
            }
        }
        _ => {}
    }
    let named = inputs_for(options, &model_onnx, runs[0].1.as_ref())?;
    let mut results: Vec<(String, NamedTensors)> = Vec::new();
    for (name, w) in &runs {
        // Input errors are the caller's (named as such); engine errors name the backend.
        let outs = w.forward(named.clone()).map_err(|e| match e {
            Error::Backend { .. } | Error::InputMismatch { .. } => e,
            other => Error::engine(name.clone(), "running the model", other),
        })?;
        results.push((name.clone(), outs));
    }
    let (reference_label, reference, candidates) = match &options.expected {
        Some(expected) => {
            // By name when the names are the model's, else by position (.pb files often carry
            // no names).
            let names: Vec<String> = results[0].1.iter().map(|(n, _)| n.clone()).collect();
            let by_name = expected.iter().all(|(n, _)| names.contains(n));
            let reference: NamedTensors = if by_name {
                expected.clone()
            } else {
                names
                    .iter()
                    .zip(expected.iter())
                    .map(|(n, (_, t))| (n.clone(), t.clone()))
                    .collect()
            };
            ("expected".to_string(), reference, &results[..])
        }
        None => (results[0].0.clone(), results[0].1.clone(), &results[1..]),
    };
    let mut outputs = Vec::new();
    for (name, outs) in candidates {
        for (oname, want) in &reference {
            let (rtol, atol) = tolerance_for(options, oname, want.dtype());
            match outs.iter().find(|(n, _)| n == oname) {
                Some((_, got)) => {
                    outputs.push(OutputDiff::of(name, oname, got, want, rtol, atol));
                }
                None => {
                    let mut d = OutputDiff::of(name, oname, want, want, rtol, atol);
                    d.pass = false;
                    d.problem = Some(format!(
                        "no output named '{oname}' (it has {})",
                        outs.iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    outputs.push(d);
                }
            }
        }
    }
    Ok(CompareReport {
        reference: reference_label,
        rtol: options.rtol,
        atol: options.atol,
        pass: outputs.iter().all(|d| d.pass),
        outputs,
    })
}

/// An ONNX file as it is, or a work dir: its deployed model (`end2end.onnx`) and the work dir.
///
/// # Errors
/// A work dir that cannot be opened (no or a bad `deploy.json`).
pub fn resolve(path: &Path) -> Result<(std::path::PathBuf, Option<crate::WorkDir>)> {
    if path.is_dir() {
        let w = crate::WorkDir::open(path)?;
        return Ok((w.path.join(&w.manifest.ir_file.path), Some(w)));
    }
    Ok((path.to_path_buf(), None))
}

/// `model` as it is (no `onnx_config`) converted for `backend` in `work` and loaded.
fn load_on(
    registry: &Registry,
    model: &Path,
    backend: &str,
    work: &Path,
    device: &Device,
) -> Result<Box<dyn Wrapper>> {
    let be = registry.get(backend)?;
    be.ensure_available()?;
    std::fs::create_dir_all(work).map_err(|e| Error::io("cannot create", work, e))?;
    let cfg = DeployConfig(serde_json::json!({"backend_config": {"type": be.name()}}));
    let (files, _) = crate::deploy::to_backend(be.as_ref(), model, &cfg, work, device)?;
    be.build_wrapper(&files, device, &[], &[], &cfg)
}

/// The (rtol, atol) of one output: its own from `per_output`, else the options' for every
/// output, else its dtype's default.
fn tolerance_for(options: &CompareOptions, output: &str, dtype: rdeploy_core::DType) -> (f64, f64) {
    match options.per_output.iter().find(|(n, _, _)| n == output) {
        Some((_, r, a)) => (*r, *a),
        None => {
            let (r, a) = default_tolerance(dtype);
            (options.rtol.unwrap_or(r), options.atol.unwrap_or(a))
        }
    }
}

/// The inputs of a comparison: the given ones, or generated for `wrapper` (the same seed gives
/// the same tensors for every run).
fn inputs_for(
    options: &CompareOptions,
    model: &Path,
    wrapper: &dyn Wrapper,
) -> Result<NamedTensors> {
    match &options.inputs {
        CompareInputs::Given(t) => Ok(t.clone()),
        CompareInputs::Generated { shapes, seed } => {
            let (_, info) = rdeploy_core::onnx::inspect_file(model)?;
            let examples = info
                .inputs
                .iter()
                .map(|t| (t.name.clone(), t.concrete_shape(&Default::default())))
                .collect();
            random_inputs(wrapper.inputs(), shapes, &examples, *seed)
        }
    }
}

/// Where two runs of a graph first disagree ([`bisect`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Divergence {
    /// The first node (in graph order) with an output beyond tolerance.
    pub node: String,
    /// Its operator.
    pub op_type: String,
    /// Its inputs (value names; initializers included).
    pub inputs: Vec<String>,
    /// Its output that diverges, compared like a model output.
    pub diff: OutputDiff,
    /// Nodes compared before it (all within tolerance).
    pub nodes_checked: usize,
}

/// A copy of `model` with every node output whose element type is known exposed as a graph
/// output, so that a run returns the intermediate values too.
fn expose_intermediates(
    model: &rdeploy_core::onnx::proto::ModelProto,
) -> rdeploy_core::onnx::proto::ModelProto {
    let facts = rdeploy_onnx::rewrite::Facts::of(model);
    let mut m = model.clone();
    if let Some(g) = m.graph.as_mut() {
        let mut have: std::collections::HashSet<String> =
            g.output.iter().map(|o| o.name().to_string()).collect();
        let mut extra = Vec::new();
        for n in &g.node {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                if have.contains(o) {
                    continue;
                }
                let Some(&elem) = facts.elem_types.get(o) else {
                    continue;
                };
                have.insert(o.clone());
                extra.push(rdeploy_onnx::build::tensor_value_info(o, elem, None));
            }
        }
        g.output.extend(extra);
    }
    m
}

/// Finds the first node whose output differs between two runs: `model` on `backends[0]`
/// against `against` on `backends[0]` (a copy with changed weights, say), or, without
/// `against`, `model` on `backends[0]` against `model` on `backends[1]`. Every node output
/// becomes a model output on a copy of each graph; values are matched by name and compared in
/// graph order with the tolerances of `options` (per dtype by default). `None` when all agree.
///
/// # Errors
/// As for [`compare`]: a backend that cannot convert or run the instrumented copy.
pub fn bisect(
    registry: &Registry,
    model: &Path,
    options: &CompareOptions,
) -> Result<Option<Divergence>> {
    let scratch = tempfile::Builder::new()
        .prefix("rdeploy-bisect-")
        .tempdir()
        .map_err(|e| Error::io("cannot create a temporary dir", std::env::temp_dir(), e))?;
    let original = rdeploy_core::onnx::load(model)?;
    let write =
        |m: &rdeploy_core::onnx::proto::ModelProto, name: &str| -> Result<std::path::PathBuf> {
            let p = scratch.path().join(name);
            rdeploy_core::onnx::save(&expose_intermediates(m), &p)?;
            Ok(p)
        };
    let a = write(&original, "a.onnx")?;
    let (b, b_backend) = match &options.against {
        Some(other) => (
            write(&rdeploy_core::onnx::load(other)?, "b.onnx")?,
            &options.backends[0],
        ),
        None => (
            a.clone(),
            options.backends.get(1).ok_or_else(|| {
                Error::config_key(
                    "backends",
                    "bisect needs two backends, or another model to compare against",
                )
            })?,
        ),
    };
    let sub = |m: &Path, backend: &String| -> Result<NamedTensors> {
        let stem = m
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let work = scratch.path().join(format!("w-{stem}-{backend}"));
        let w = load_on(registry, m, backend, &work, &options.device)?;
        w.forward(inputs_for(options, model, w.as_ref())?)
    };
    let want = sub(&a, &options.backends[0])?;
    let got = sub(&b, b_backend)?;
    let Some(g) = &original.graph else {
        return Ok(None);
    };
    let mut checked = 0;
    for n in &g.node {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            let (Some((_, w)), Some((_, gv))) = (
                want.iter().find(|(k, _)| k == o),
                got.iter().find(|(k, _)| k == o),
            ) else {
                continue;
            };
            if !w.dtype().is_float() {
                continue; // shapes and indices: their consumers show any effect
            }
            let (rtol, atol) = tolerance_for(options, o, w.dtype());
            let d = OutputDiff::of(b_backend, o, gv, w, rtol, atol);
            if !d.pass {
                return Ok(Some(Divergence {
                    node: if n.name().is_empty() {
                        format!("{}#{checked}", n.op_type())
                    } else {
                        n.name().to_string()
                    },
                    op_type: n.op_type().to_string(),
                    inputs: n.input.clone(),
                    diff: d,
                    nodes_checked: checked,
                }));
            }
        }
        checked += 1;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_compare_equal_or_not() {
        let a = Tensor::from_strings(&[2], vec!["x".into(), "y".into()]).unwrap();
        let b = Tensor::from_strings(&[2], vec!["x".into(), "z".into()]).unwrap();
        assert!(OutputDiff::of("b", "o", &a, &a, 0.0, 0.0).pass);
        let d = OutputDiff::of("b", "o", &a, &b, 1.0, 1.0);
        assert!(!d.pass);
        let p = d.problem.unwrap();
        assert!(
            p.contains("1 of 2") && p.contains("[1]") && p.contains("\"z\""),
            "{p}"
        );
        let n = Tensor::zeros(rdeploy_core::DType::F32, &[2]);
        assert!(!OutputDiff::of("b", "o", &a, &n, 1.0, 1.0).pass);
        assert_eq!(default_tolerance(rdeploy_core::DType::BF16).0, 1e-2);
    }

    #[test]
    fn dtypes_that_differ_never_pass() {
        let a = Tensor::from_shape_vec(&[2], vec![1f32, 2.]).unwrap();
        let b = a
            .cast(rdeploy_core::DType::F64, rdeploy_core::Cast::Unchecked)
            .unwrap();
        let diff = |g: &Tensor, w: &Tensor, rtol: f64, atol: f64| {
            OutputDiff::of("b", "o", g, w, rtol, atol)
        };
        let d = diff(&a, &b, 1e-3, 1e-4);
        assert_eq!(d.max_abs_diff, 0.0);
        assert!(!d.pass);
        assert_eq!(d.problem.as_deref(), Some("dtype f32 vs f64"));
        let d = diff(&a, &a, 0.0, 0.0);
        assert!(d.pass && d.problem.is_none());
        let inf = Tensor::from_shape_vec(&[1], vec![f32::INFINITY]).unwrap();
        assert!(diff(&inf, &inf, 0.0, 0.0).pass, "equal infinities agree");
        let nan = Tensor::from_shape_vec(&[1], vec![f32::NAN]).unwrap();
        let d = diff(&nan, &inf, 1.0, 1.0);
        assert!(!d.pass);
        assert_eq!((d.nan_mismatches, d.inf_mismatches), (1, 0));
    }

    #[test]
    fn worst_element_cosine_and_top_k() {
        // Two rows of scores; row 1's arg-max moves from class 2 to class 0.
        let want = Tensor::from_shape_vec(&[2, 3], vec![0.1f32, 0.2, 0.7, 0.2, 0.3, 0.5]).unwrap();
        let got = Tensor::from_shape_vec(&[2, 3], vec![0.1f32, 0.2, 0.7, 0.9, 0.3, 0.5]).unwrap();
        let d = OutputDiff::of("b", "o", &got, &want, 1e-3, 1e-4);
        assert!(!d.pass);
        let w = d.worst.unwrap();
        assert_eq!(
            (w.index, w.got as f32, w.want as f32),
            (vec![1, 0], 0.9, 0.2)
        );
        assert_eq!((d.top1_agreement, d.top5_agreement), (Some(0.5), Some(1.0)));
        assert!(d.cosine.unwrap() < 1.0 && d.cosine.unwrap() > 0.8);
        assert!((d.mean_abs_diff - 0.7 / 6.0).abs() < 1e-6);
    }
}
