//! `rdeploy compare`: one model through several backends, differences against the first.

use crate::args::CompareArgs;
use crate::out;
use anyhow::{Result, bail};
use rdeploy::compare::{CompareInputs, CompareOptions};
use rdeploy::{Device, Registry};

pub(crate) fn run(registry: &Registry, a: CompareArgs) -> Result<()> {
    if a.backends.len() < 2 {
        bail!(
            "--backends needs at least two backends to compare (e.g. --backends tract,onnxruntime)"
        );
    }
    let device: Device = a.device.parse()?;
    let inputs = if a.input.inputs.is_empty() {
        CompareInputs::Generated {
            shapes: a.input.shapes.clone(),
            seed: a.input.random_seed,
        }
    } else {
        if !a.input.shapes.is_empty() {
            bail!("--shape is for generated inputs; the --input files already have shapes");
        }
        let (_, info) = rdeploy::onnx::inspect_file(&a.model)?;
        CompareInputs::Given(crate::inputs::load_inputs(&a.input.inputs, &info.inputs)?)
    };
    let report = rdeploy::compare::compare(
        registry,
        &a.model,
        &CompareOptions {
            backends: a.backends.clone(),
            device,
            rtol: a.rtol,
            atol: a.atol,
            inputs,
        },
    )?;
    if a.json {
        out(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        let mut s = format!(
            "reference: {} (rtol {}, atol {})\n",
            report.reference, report.rtol, report.atol
        );
        for d in &report.outputs {
            s.push_str(&format!(
                "  {:<12} {:<20} max abs {:.3e}  max rel {:.3e}  {}{}\n",
                d.backend,
                d.output,
                d.max_abs_diff,
                d.max_rel_diff,
                if d.pass { "PASS" } else { "FAIL" },
                d.problem
                    .as_ref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            ));
        }
        out(&s)?;
    }
    if !report.pass {
        bail!(
            "outputs differ beyond rtol {} / atol {} (see the table above)",
            a.rtol,
            a.atol
        );
    }
    Ok(())
}
