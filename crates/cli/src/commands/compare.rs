//! `rdeploy compare`: one model through several backends (or against another model, or against
//! expected outputs), per-output differences.

use crate::args::CompareArgs;
use crate::out;
use anyhow::{Context, Result, bail};
use rdeploy::compare::{CompareInputs, CompareOptions};
use rdeploy::{Device, NamedTensors, Registry};
use std::path::Path;

/// Expected outputs (and, for an ONNX test data set folder, its inputs).
fn read_expected(path: &Path) -> Result<(NamedTensors, Option<NamedTensors>)> {
    if path.is_file() {
        let t = rdeploy::io::read_tensor_file(path)?;
        // Unnamed entries (a bare .npy) are matched by position.
        let named = t
            .into_iter()
            .enumerate()
            .map(|(i, (n, t))| (n.unwrap_or_else(|| format!("#{i}")), t))
            .collect();
        return Ok((named, None));
    }
    if !path.is_dir() {
        bail!(
            "--expected {}: no such file or folder; give a .npz, or a folder of output_N.pb/.npy",
            path.display()
        );
    }
    let numbered = |prefix: &str| -> Result<NamedTensors> {
        let mut v = Vec::new();
        for i in 0.. {
            let found = ["pb", "npy"]
                .iter()
                .map(|e| path.join(format!("{prefix}_{i}.{e}")))
                .find(|p| p.is_file());
            let Some(p) = found else { break };
            let mut t = rdeploy::io::read_tensor_file(&p)?;
            if t.is_empty() {
                bail!("{}: no tensor in the file", p.display());
            }
            let (name, tensor) = t.remove(0);
            v.push((name.unwrap_or_else(|| format!("#{i}")), tensor));
        }
        Ok(v)
    };
    let outputs = numbered("output")?;
    if outputs.is_empty() {
        bail!(
            "--expected {}: no output_0.pb or output_0.npy there (ONNX's test_data_set_N layout)",
            path.display()
        );
    }
    let inputs = numbered("input")?;
    Ok((outputs, (!inputs.is_empty()).then_some(inputs)))
}

pub(crate) fn run(registry: &Registry, a: CompareArgs) -> Result<()> {
    let work = a.model.is_dir();
    if a.backends.len() + usize::from(work) < 2 && a.expected.is_none() && a.against.is_none() {
        bail!(
            "two runs to compare: name two backends (--backends tract,onnxruntime), or give a work dir and one backend, or --expected / --against with one backend or a work dir"
        );
    }
    let device: Device = a.device.parse()?;
    let (onnx, work_dir) = rdeploy::compare::resolve(&a.model)?;
    let (_, info) = rdeploy::onnx::inspect_file(&onnx)?;
    let (expected, set_inputs) = match &a.expected {
        Some(p) => {
            let (o, i) = read_expected(p).with_context(|| format!("reading {}", p.display()))?;
            (Some(o), i)
        }
        None => (None, None),
    };
    let inputs = if !a.input.inputs.is_empty() {
        if !a.input.shapes.is_empty() {
            bail!("--shape is for generated inputs; the --input files already have shapes");
        }
        CompareInputs::Given(crate::inputs::load_inputs(&a.input.inputs, &info.inputs)?)
    } else if let Some(set) = set_inputs {
        // The data set's inputs, in the model's input order (.pb files may carry no names).
        CompareInputs::Given(
            info.inputs
                .iter()
                .zip(set)
                .map(|(spec, (_, t))| (spec.name.clone(), t))
                .collect(),
        )
    } else if let Some(w) = &work_dir {
        // A work dir's model: the shapes it was deployed and checked at (its manifest's
        // example shapes) for dims --shape leaves open.
        CompareInputs::Given(rdeploy::inputs::random_inputs(
            &info.inputs,
            &a.input.shapes,
            &w.manifest.example_shapes,
            a.input.random_seed,
        )?)
    } else {
        CompareInputs::Generated {
            shapes: a.input.shapes.clone(),
            seed: a.input.random_seed,
        }
    };
    let options = CompareOptions {
        backends: a.backends.clone(),
        device,
        rtol: a.rtol,
        atol: a.atol,
        per_output: a.tol.clone(),
        inputs,
        against: a.against.clone(),
        expected,
    };
    let report = rdeploy::compare::compare(registry, &a.model, &options)?;
    let bisect = if a.bisect && !report.pass {
        let pb = super::progress_spinner();
        pb.set_message("bisecting: every intermediate value as an output");
        // A work dir's model: between its backend and the others, on its end2end.onnx.
        let mut options = options.clone();
        if let Some(w) = &work_dir
            && (options.against.is_none() || options.backends.is_empty())
        {
            options.backends.insert(0, w.manifest.backend.clone());
        }
        // Another work dir: its end2end.onnx.
        if let Some(other) = &options.against {
            options.against = Some(rdeploy::compare::resolve(other)?.0);
        }
        let found = rdeploy::compare::bisect(registry, &onnx, &options);
        pb.finish_and_clear();
        Some(found?)
    } else {
        None
    };
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(b) = &bisect {
            v["bisect"] = serde_json::to_value(b)?;
        }
        out(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
    } else {
        let mut s = format!("reference: {}\n", report.reference);
        for d in &report.outputs {
            let top = match (d.top1_agreement, d.top5_agreement) {
                (Some(t1), Some(t5)) => {
                    format!("  top-1 {:.0}% top-5 {:.0}%", 100.0 * t1, 100.0 * t5)
                }
                _ => String::new(),
            };
            let worst = d
                .worst
                .as_ref()
                .map(|w| format!("  worst {:?}: {:.6e} vs {:.6e}", w.index, w.got, w.want))
                .unwrap_or_default();
            let nonfinite = if d.nan_mismatches + d.inf_mismatches > 0 {
                format!(
                    "  NaN mismatches {} Inf mismatches {}",
                    d.nan_mismatches, d.inf_mismatches
                )
            } else {
                String::new()
            };
            s.push_str(&format!(
                "  {:<12} {:<20} max abs {:.3e}  max rel {:.3e}  mean abs {:.3e}  cos {}  (rtol {}, atol {})  {}{}\n{}{}{}",
                d.backend,
                d.output,
                d.max_abs_diff,
                d.max_rel_diff,
                d.mean_abs_diff,
                d.cosine.map_or_else(|| "-".to_string(), |c| format!("{c:.6}")),
                d.rtol,
                d.atol,
                if d.pass { "PASS" } else { "FAIL" },
                d.problem
                    .as_ref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default(),
                if worst.is_empty() && top.is_empty() && nonfinite.is_empty() {
                    ""
                } else {
                    "   "
                },
                [worst, top, nonfinite].concat(),
                if d.worst.is_some() || d.top1_agreement.is_some() || d.nan_mismatches + d.inf_mismatches > 0 {
                    "\n"
                } else {
                    ""
                }
            ));
        }
        match &bisect {
            Some(Some(d)) => s.push_str(&format!(
                "first divergence: node '{}' ({}) with inputs [{}], output '{}': max abs {:.3e}, max rel {:.3e} (after {} nodes that agree)\n",
                d.node,
                d.op_type,
                d.inputs.join(", "),
                d.diff.output,
                d.diff.max_abs_diff,
                d.diff.max_rel_diff,
                d.nodes_checked
            )),
            Some(None) => s.push_str(
                "bisect: every intermediate value agrees; the difference is in the outputs alone\n",
            ),
            None => {}
        }
        out(&s)?;
    }
    if !report.pass {
        let failed: Vec<String> = report
            .outputs
            .iter()
            .filter(|d| !d.pass)
            .map(|d| format!("'{}' of {}", d.output, d.backend))
            .collect();
        bail!(
            "outputs differ beyond their tolerances: {} (see the table above)",
            failed.join(", ")
        );
    }
    Ok(())
}
