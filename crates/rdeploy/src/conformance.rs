//! One ONNX backend-test case through deploy, load and forward on a backend, classified the
//! way ONNX's own runner (`onnx.backend.test.runner`) judges a backend: every output present,
//! same dtype and shape, values within the case's rtol/atol (NumPy's `assert_allclose`, NaNs
//! equal), integers and booleans included, as the runner compares them.
//!
//! A case is a folder `scripts/prepare-conformance.py` writes: `model.onnx`,
//! `test_data_set_N/{input_K.pb, output_K.pb}` and `case.json` (name, suite, rtol, atol, op,
//! op_types, inputs/outputs with their kind and element type).

use crate::{Config, DeployOptions, Device, Registry, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How a case ended on a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Every output matches the expected one.
    Pass,
    /// It ran, and an output differs (count, dtype, shape or values).
    Wrong,
    /// Refused before running: deploy or load failed (an operator, type or opset the engine
    /// does not take), or the case needs a value kind rdeploy's tensors do not hold.
    Unsupported,
    /// Loaded, then the call failed.
    Error,
    /// The case went past its time limit (its worker was killed).
    Timeout,
    /// The worker process died on the case (an engine abort or a signal).
    Crash,
}

impl Class {
    /// Every class, in report order.
    pub const ALL: [Class; 6] = [
        Class::Pass,
        Class::Wrong,
        Class::Unsupported,
        Class::Error,
        Class::Timeout,
        Class::Crash,
    ];

    /// The lowercase name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Class::Pass => "pass",
            Class::Wrong => "wrong",
            Class::Unsupported => "unsupported",
            Class::Error => "error",
            Class::Timeout => "timeout",
            Class::Crash => "crash",
        }
    }
}

/// A value of a case's signature, as `case.json` describes it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CaseValue {
    /// The graph input or output name.
    pub name: String,
    /// `tensor`, `sequence`, `optional` or `map`.
    pub kind: String,
    /// The ONNX element type name (`float`, `bfloat16`, `string`...), when known.
    #[serde(default)]
    pub elem_type: Option<String>,
}

/// `case.json`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CaseMeta {
    /// The case's name (`test_abs`).
    pub name: String,
    /// `node` or `models`.
    pub suite: String,
    /// Relative tolerance of the comparison.
    pub rtol: f64,
    /// Absolute tolerance of the comparison.
    pub atol: f64,
    /// The operator under test (the single node's op type, else the first node's).
    pub op: String,
    /// Every node's op type (domain-qualified outside the default domain).
    #[serde(default)]
    pub op_types: Vec<String>,
    /// The graph's inputs.
    #[serde(default)]
    pub inputs: Vec<CaseValue>,
    /// The graph's outputs.
    #[serde(default)]
    pub outputs: Vec<CaseValue>,
}

impl CaseMeta {
    /// Reads `DIR/case.json`.
    ///
    /// # Errors
    /// A message naming the file when it is missing or not a case description.
    pub fn read(dir: &Path) -> std::result::Result<CaseMeta, String> {
        let p = dir.join("case.json");
        let text = std::fs::read_to_string(&p).map_err(|e| {
            format!(
                "{}: {e} (prepare the cases with scripts/prepare-conformance.py)",
                p.display()
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a case description: {e}", p.display()))
    }
}

/// A case's result on one backend.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// How it ended.
    pub class: Class,
    /// Why, for anything but a pass (the error, or the first differing output).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The largest absolute difference over the outputs compared, when they were compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_abs_diff: Option<f64>,
    /// Wall time of deploy + load + every data set's call, in milliseconds.
    pub ms: f64,
}

/// Runs the case in `case_dir` on `backend`: deploys its `model.onnx` with `base` (a deploy
/// config as JSON, `{}` for none; its `backend_config.type` becomes `backend`) into `scratch`
/// (created, then emptied), loads it, runs every `test_data_set_*` and compares with the
/// expected outputs.
pub fn run_case(
    registry: &Registry,
    backend: &str,
    base: &serde_json::Value,
    case_dir: &Path,
    scratch: &Path,
) -> Outcome {
    let started = Instant::now();
    let (class, detail, max_abs_diff) = match evaluate(registry, backend, base, case_dir, scratch) {
        Ok(d) => d,
        Err((class, detail)) => (class, detail, None),
    };
    let _ = std::fs::remove_dir_all(scratch);
    Outcome {
        class,
        detail,
        max_abs_diff,
        ms: started.elapsed().as_secs_f64() * 1e3,
    }
}

type Judged = (Class, String, Option<f64>);

fn evaluate(
    registry: &Registry,
    backend: &str,
    base: &serde_json::Value,
    case_dir: &Path,
    scratch: &Path,
) -> std::result::Result<Judged, (Class, String)> {
    let meta = CaseMeta::read(case_dir).map_err(|e| (Class::Error, e))?;
    if let Some(v) = meta
        .inputs
        .iter()
        .chain(&meta.outputs)
        .find(|v| v.kind != "tensor")
    {
        return Err((
            Class::Unsupported,
            format!(
                "'{}' is a {} value; rdeploy passes tensors only",
                v.name, v.kind
            ),
        ));
    }
    let unsupported = |e: crate::Error| (Class::Unsupported, e.report());
    let mut cfg = base.clone();
    if !cfg.is_object() {
        cfg = serde_json::json!({});
    }
    let be = &mut cfg["backend_config"];
    if !be.is_object() {
        *be = serde_json::json!({});
    }
    be["type"] = serde_json::json!(backend);
    let config = Config::from_json(&cfg, Path::new("<conformance>")).map_err(unsupported)?;
    let _ = std::fs::remove_dir_all(scratch);
    // Deploy's check runs the case's own first inputs (generated values can be meaningless
    // for a node test: sizes, indices, pads).
    let model = case_dir.join("model.onnx");
    let first = case_dir.join("test_data_set_0");
    let check_inputs: Option<crate::NamedTensors> = match crate::onnx::inspect_file(&model) {
        Ok((_, info)) if first.is_dir() => {
            let given = numbered(&first, "input").map_err(|e| (Class::Error, e))?;
            (given.len() == info.inputs.len()).then(|| {
                info.inputs
                    .iter()
                    .map(|t| t.name.clone())
                    .zip(given)
                    .collect()
            })
        }
        _ => None,
    };
    let work = crate::deploy(
        registry,
        &config,
        &model,
        scratch,
        &Device::cpu(),
        &DeployOptions {
            check_inputs: check_inputs.as_ref(),
            ..DeployOptions::default()
        },
    )
    .map_err(|e| {
        let report = e.report();
        // Loaded, then failed on the case's inputs in deploy's check: a run error.
        let class = if report.contains("cannot run them") {
            Class::Error
        } else {
            Class::Unsupported
        };
        (class, report)
    })?;
    let wrapper = crate::load(&work, registry, None).map_err(unsupported)?;
    let mut sets: Vec<PathBuf> = std::fs::read_dir(case_dir)
        .map_err(|e| (Class::Error, format!("{}: {e}", case_dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("test_data_set_"))
        })
        .collect();
    sets.sort();
    let mut worst: Option<f64> = None;
    for set in &sets {
        let inputs = numbered(set, "input").map_err(|e| (Class::Error, e))?;
        let expected = numbered(set, "output").map_err(|e| (Class::Error, e))?;
        // Inputs by position: the graph's inputs in order (test data names them the same).
        let specs = wrapper.inputs();
        if inputs.len() > specs.len() {
            return Err((
                Class::Error,
                format!(
                    "{} input files for a model of {} inputs",
                    inputs.len(),
                    specs.len()
                ),
            ));
        }
        let named: Vec<(String, Tensor)> = specs
            .iter()
            .zip(inputs)
            .map(|(s, t)| (s.name.clone(), t))
            .collect();
        let got = wrapper
            .forward(named)
            .map_err(|e| (Class::Error, e.report()))?;
        if got.len() != expected.len() {
            return Ok((
                Class::Wrong,
                format!("{} outputs, {} expected", got.len(), expected.len()),
                worst,
            ));
        }
        for ((name, g), w) in got.iter().zip(&expected) {
            // As onnx's runner: bfloat16 outputs within two bfloat16 ULPs (rtol >= 2^-6).
            let rtol = if w.dtype() == crate::DType::BF16 {
                meta.rtol.max(2f64.powi(-6))
            } else {
                meta.rtol
            };
            let d = crate::compare::OutputDiff::of(backend, name, g, w, rtol, meta.atol);
            if d.max_abs_diff.is_finite() {
                worst = Some(worst.map_or(d.max_abs_diff, |x: f64| x.max(d.max_abs_diff)));
            }
            if g.dtype() != w.dtype() {
                return Ok((
                    Class::Wrong,
                    format!(
                        "output '{name}': {} where {} is expected",
                        g.dtype(),
                        w.dtype()
                    ),
                    worst,
                ));
            }
            if !d.pass {
                let why = d.problem.clone().unwrap_or_else(|| {
                    format!(
                        "max abs diff {:.3e} (rtol {}, atol {}){}",
                        d.max_abs_diff,
                        rtol,
                        meta.atol,
                        if d.nan_mismatches > 0 {
                            format!(", {} NaN mismatches", d.nan_mismatches)
                        } else {
                            String::new()
                        }
                    )
                });
                return Ok((Class::Wrong, format!("output '{name}': {why}"), worst));
            }
        }
    }
    Ok((Class::Pass, String::new(), worst))
}

/// `PREFIX_0.pb`, `PREFIX_1.pb`... in `dir`, in order.
fn numbered(dir: &Path, prefix: &str) -> std::result::Result<Vec<Tensor>, String> {
    let mut out = Vec::new();
    for k in 0.. {
        let p = dir.join(format!("{prefix}_{k}.pb"));
        if !p.exists() {
            break;
        }
        let mut t = crate::io::read_tensor_file(&p).map_err(|e| e.report())?;
        out.push(t.remove(0).1);
    }
    Ok(out)
}
