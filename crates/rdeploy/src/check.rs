//! The deploy-time check: a deploy succeeds only when the backend can load the files it wrote,
//! exposes exactly the manifest's inputs and outputs, and runs them once; and, when a graph
//! pass changed the numbers (`fp16`), when the result still matches the float32 model.

use crate::compare::OutputDiff;
use crate::inputs::random_inputs;
use rdeploy_core::TensorInfo;
use rdeploy_core::{BackendManager, DeployConfig, Device, Dim, Error, NamedTensors, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Default tolerance of the fp16 check: |fp16 - fp32| <= atol + rtol * |fp32| (numpy's
/// allclose). float16 keeps 11 significant bits (relative step 4.9e-4); through a deep network
/// errors up to ~2e-2 on probabilities are usual (PP-OCRv4's recognizer: 0.0205 on one of
/// 265,000 outputs), while a wrongly clamped weight gives errors of order 1 (issue 10: a text
/// detector's pixels flipped).
pub const FP16_RTOL: f64 = 1e-2;
/// See [`FP16_RTOL`].
pub const FP16_ATOL: f64 = 5e-2;

/// Converts and runs the model with the named nodes kept float32 (automatic mixed precision's
/// probe): the outputs on the check's inputs.
pub type Probe<'a> = dyn Fn(&[String]) -> Result<NamedTensors> + 'a;

/// What the check did, for the manifest's notes.
pub struct CheckReport {
    /// One line per finding.
    pub notes: Vec<String>,
}

/// The shapes the check runs at: `model_inputs` opt shapes from the config where given, else
/// the model's fixed dims with symbolic batch dims (axis 0) at 1. `None` (with the reason) when
/// another dim has no size anywhere: such a model is loaded but not run.
fn check_shapes(
    inputs: &[TensorInfo],
    opt_shapes: &BTreeMap<String, Vec<u64>>,
) -> std::result::Result<BTreeMap<String, Vec<usize>>, String> {
    let mut out = BTreeMap::new();
    for t in inputs {
        if let Some(s) = opt_shapes.get(&t.name) {
            out.insert(t.name.clone(), s.iter().map(|&d| d as usize).collect());
            continue;
        }
        let Some(dims) = &t.shape else {
            return Err(format!("input '{}' has an unknown rank", t.name));
        };
        let mut shape = Vec::with_capacity(dims.len());
        for (axis, d) in dims.iter().enumerate() {
            match d {
                Dim::Fixed(n) => shape.push(*n as usize),
                Dim::Symbolic(_) if axis == 0 => shape.push(1),
                Dim::Symbolic(s) => {
                    return Err(format!(
                        "dim {axis} ('{}') of input '{}' has no size in the model or the config",
                        if s.is_empty() { "?" } else { s },
                        t.name
                    ));
                }
            }
        }
        out.insert(t.name.clone(), shape);
    }
    Ok(out)
}

/// Loads `files` with `backend` the way `load` will, checks the signature against the
/// manifest's, and runs once at [`check_shapes`] on generated inputs. Returns the wrapper's
/// outputs (for the fp16 check) when it ran. When the engine fails on the generated values,
/// the deploy stands with a note and a warning unless `must_run` (a pass changed the numbers
/// and the result must be compared).
///
/// # Errors
/// [`Error::Backend`] saying that the deployed files cannot be loaded, return outputs that
/// break the signature, or (with `must_run`) cannot run, with the engine's reason, or which
/// names differ.
#[allow(clippy::too_many_arguments, reason = "one internal call site")]
pub fn run_check(
    backend: &dyn BackendManager,
    files: &[PathBuf],
    inputs: &[TensorInfo],
    outputs: &[TensorInfo],
    opt_shapes: &BTreeMap<String, Vec<u64>>,
    device: &Device,
    cfg: &DeployConfig,
    must_run: bool,
    given: Option<&NamedTensors>,
    report: &mut CheckReport,
) -> Result<Option<(NamedTensors, NamedTensors)>> {
    let name = backend.name().to_string();
    let fail = |what: String, e: Error| {
        Error::engine(
            name.clone(),
            format!("deploy checks that {name} can use what it converted, and {what}"),
            e,
        )
    };
    let in_names: Vec<String> = inputs.iter().map(|t| t.name.clone()).collect();
    let out_names: Vec<String> = outputs.iter().map(|t| t.name.clone()).collect();
    let w = backend
        .build_wrapper(files, device, &in_names, &out_names, cfg)
        .map_err(|e| fail("it cannot load them".into(), e))?;
    let got: Vec<&str> = w.inputs().iter().map(|t| t.name.as_str()).collect();
    if got != in_names.iter().map(String::as_str).collect::<Vec<_>>() {
        return Err(Error::backend(
            &name,
            format!(
                "the converted model takes inputs {got:?} but the model has {in_names:?}: the engine renamed or dropped some; deploy fails here rather than at the first infer"
            ),
        ));
    }
    // The caller's inputs (real ones, such as a test case's) when they are the deployed
    // model's (a pass may have removed one), else generated ones.
    let given =
        given.filter(|g| g.len() == in_names.len() && g.iter().all(|(n, _)| in_names.contains(n)));
    let (named, shape_text) = match given {
        Some(g) => {
            let text = g
                .iter()
                .map(|(k, t)| format!("{k}: {:?}", t.shape()))
                .collect::<Vec<_>>()
                .join(", ");
            (g.clone(), format!("{text} (the given inputs)"))
        }
        None => match generated(w.as_ref(), inputs, opt_shapes, report)? {
            Some(x) => x,
            None => return Ok(None),
        },
    };
    // Real inputs are proof: the engine must run them.
    let must_run = must_run || given.is_some();
    run_on(
        w.as_ref(),
        &name,
        named,
        shape_text,
        must_run,
        report,
        &fail,
    )
}

/// Generated inputs at [`check_shapes`] and their description; `None` (with a note) when the
/// model leaves a dim without a size.
fn generated(
    w: &dyn rdeploy_core::Wrapper,
    inputs: &[TensorInfo],
    opt_shapes: &BTreeMap<String, Vec<u64>>,
    report: &mut CheckReport,
) -> Result<Option<(NamedTensors, String)>> {
    // Shapes from the manifest's signature (the ONNX model's), which engines may report less
    // precisely (OpenVINO gives a scalar an unknown rank).
    let shapes = match check_shapes(inputs, opt_shapes) {
        Ok(s) => s,
        Err(why) => {
            report.notes.push(format!(
                "deploy loaded the converted model but did not run it: {why} (give backend_config.model_inputs opt_shapes, or onnx_config.input_shape, to check it)"
            ));
            return Ok(None);
        }
    };
    let hints: Vec<crate::inputs::ShapeHint> = shapes
        .iter()
        .map(|(k, v)| crate::inputs::ShapeHint::Input(k.clone(), v.clone()))
        .collect();
    let named = random_inputs(w.inputs(), &hints, &shapes, 0)?;
    let shape_text = shapes
        .iter()
        .map(|(k, v)| format!("{k}: {v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Some((named, shape_text)))
}

/// Runs `named` once and checks the outputs against the signature.
fn run_on(
    w: &dyn rdeploy_core::Wrapper,
    name: &str,
    named: NamedTensors,
    shape_text: String,
    must_run: bool,
    report: &mut CheckReport,
    fail: &dyn Fn(String, Error) -> Error,
) -> Result<Option<(NamedTensors, NamedTensors)>> {
    // An engine failing on generated values (a model whose inputs are sizes or indices, such
    // as AffineGrid's `size`) is not proof that the deploy is wrong; outputs that break the
    // signature are (a wrapper's bug, [`WrongOutput`]).
    let outs = match w.forward(named.clone()) {
        Ok(o) => o,
        Err(e) if !must_run && !breaks_signature(&e) => {
            let why = e.report();
            tracing::warn!(
                "{name} loads the converted model, but a run on generated inputs at {shape_text} failed: {why}. If the model's inputs carry meaning (sizes, indices), check it with real ones: rdeploy infer WORK_DIR --input ..."
            );
            report.notes.push(format!(
                "deploy checked that {name} loads the converted model; a run on generated inputs at {shape_text} failed ({why}), so no run verified it"
            ));
            return Ok(None);
        }
        Err(e) => return Err(fail(format!("it cannot run them at {shape_text}"), e)),
    };
    report.notes.push(format!(
        "deploy checked that {name} loads and runs the converted model at {shape_text}"
    ));
    Ok(Some((named, outs)))
}

/// Whether `e` says that outputs broke the signature ([`validate_outputs`]'s
/// [`WrongOutput`] anywhere in its chain).
///
/// [`validate_outputs`]: rdeploy_core::validate_outputs
fn breaks_signature(e: &Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<rdeploy_core::WrongOutput>().is_some() {
            return true;
        }
        cur = c.source();
    }
    false
}

/// Compares the fp16 model's outputs with the float32 model's on the same inputs, converting
/// the IR `ir` without the backend's passes into `scratch`.
///
/// # Errors
/// [`Error::Backend`] naming the first output whose difference exceeds the tolerance, with the
/// figures and what to do.
#[allow(clippy::too_many_arguments, reason = "one internal call site")]
pub fn fp16_check(
    backend: &dyn BackendManager,
    ir: &Path,
    scratch: &Path,
    outputs: &[TensorInfo],
    device: &Device,
    cfg: &DeployConfig,
    run: &(NamedTensors, NamedTensors),
    report: &mut CheckReport,
    search: Option<(&[String], &Probe<'_>)>,
) -> Result<Vec<String>> {
    let key = "backend_config.fp16_check";
    let get = |k: &str| cfg.get(&format!("{key}.{k}"));
    if get("enabled").and_then(serde_json::Value::as_bool) == Some(false) {
        report
            .notes
            .push(format!("fp16 check skipped ({key}.enabled=False)"));
        return Ok(Vec::new());
    }
    let auto = get("auto_mixed_precision").and_then(serde_json::Value::as_bool) != Some(false);
    let tol = |k: &str, default: f64| -> Result<f64> {
        match get(k) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .ok_or_else(|| {
                    Error::config_key(
                        format!("{key}.{k}"),
                        format!("must be a number >= 0, not {v}"),
                    )
                }),
        }
    };
    let (rtol, atol) = (tol("rtol", FP16_RTOL)?, tol("atol", FP16_ATOL)?);
    let mut fp32 = cfg.clone();
    if let Some(be) = fp32
        .0
        .get_mut("backend_config")
        .and_then(|v| v.as_object_mut())
    {
        be.insert("precision".into(), "fp32".into());
    }
    std::fs::create_dir_all(scratch).map_err(|e| Error::io("cannot create", scratch, e))?;
    let files = backend.to_backend(&[ir.to_path_buf()], &fp32, scratch, device)?;
    let names: Vec<String> = outputs.iter().map(|t| t.name.clone()).collect();
    let reference = backend.build_wrapper(&files, device, &[], &names, &fp32)?;
    let (inputs, got) = run;
    // The fp16 model may take float16 inputs (keep_io_types=False): the same values, in the
    // float32 model's dtypes.
    let ref_inputs = inputs
        .iter()
        .zip(reference.inputs())
        .map(|((n, t), spec)| {
            Ok((
                n.clone(),
                t.cast(spec.dtype, rdeploy_core::Cast::Unchecked)?,
            ))
        })
        .collect::<Result<NamedTensors>>()?;
    let want = reference.forward(ref_inputs)?;
    // Every output against the float32 model's, as compare reports it.
    let diffs = |got: &NamedTensors| -> Result<Vec<OutputDiff>> {
        got.iter()
            .zip(&want)
            .map(|((name, g), (_, w))| {
                let g = g.cast(rdeploy_core::DType::F64, rdeploy_core::Cast::Unchecked)?;
                let w = w.cast(rdeploy_core::DType::F64, rdeploy_core::Cast::Unchecked)?;
                Ok(OutputDiff::of(backend.name(), name, &g, &w, rtol, atol))
            })
            .collect()
    };
    let checked = diffs(got)?;
    if let (true, true, Some((candidates, probe))) = (checked.iter().any(|d| !d.pass), auto, search)
    {
        // ONNX Runtime's auto mixed precision, on by default here: find the nodes whose float16
        // computation moves the outputs, and keep them float32. Blocking a prefix (in graph
        // order) is monotone enough for a binary search; then the last node of that prefix
        // alone is tried.
        let ok = |blocked: &[String]| -> Result<bool> {
            Ok(diffs(&probe(blocked)?)?.iter().all(|d| d.pass))
        };
        if !candidates.is_empty() && ok(candidates)? {
            let (mut lo, mut hi) = (1usize, candidates.len());
            while lo < hi {
                let mid = (lo + hi) / 2;
                if ok(&candidates[..mid])? {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            let last = std::slice::from_ref(&candidates[lo - 1]);
            let blocked = if ok(last)? {
                last.to_vec()
            } else {
                candidates[..lo].to_vec()
            };
            report.notes.push(format!(
                "fp16 check: outputs moved beyond rtol {rtol} / atol {atol}; kept {} node(s) in float32 to fix it ({}) - automatic mixed precision, off with {key}.auto_mixed_precision=False",
                blocked.len(),
                blocked.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ));
            return Ok(blocked);
        }
    }
    for d in &checked {
        let name = &d.output;
        let (abs, rel) = (d.max_abs_diff, d.max_rel_diff);
        if !d.pass {
            return Err(Error::backend(
                backend.name(),
                format!(
                    "the fp16 model's output '{name}' differs from the float32 model's beyond rtol {rtol} / atol {atol} (max abs diff {abs:.3e}, max rel diff {rel:.3e}{}) on generated inputs; deploy in fp32, keep the sensitive nodes float32 with backend_config.common_config.node_block_list/op_block_list, or loosen {key}.rtol/atol if this is acceptable",
                    d.problem
                        .as_ref()
                        .map(|p| format!(", {p}"))
                        .unwrap_or_default()
                ),
            ));
        }
        report.notes.push(format!(
            "fp16 check: output '{name}' within rtol {rtol} / atol {atol} of float32 (max abs diff {abs:.3e})"
        ));
    }
    Ok(Vec::new())
}
