//! `rdeploy deploy`: config + ONNX model -> work dir.

use super::progress_spinner;
use crate::args::DeployArgs;
use crate::out;
use anyhow::Result;
use rdeploy::{Config, DeployOptions, Device, Registry};
use serde_json::json;
use std::time::Instant;

pub(crate) fn run(registry: &Registry, a: DeployArgs) -> Result<()> {
    let device: Device = a.device.parse()?;
    let config = Config::from_file(&a.deploy_cfg)?;
    let spinner = progress_spinner();
    let started = Instant::now();
    let set = |step: &str| spinner.set_message(step.to_string());
    let outcome = rdeploy::deploy(
        registry,
        &config,
        &a.model,
        &a.work_dir,
        &device,
        &DeployOptions {
            force: a.force,
            progress: Some(&set),
            ..Default::default()
        },
    );
    spinner.finish_and_clear();
    let outcome = outcome?;
    let m = &outcome.manifest;
    if a.json {
        return out(&format!(
            "{}\n",
            serde_json::to_string_pretty(
                &json!({"reused": outcome.reused, "work_dir": outcome.path, "manifest": m})
            )?
        ));
    }
    let verb = if outcome.reused {
        "up to date (reused)"
    } else {
        "deployed"
    };
    let mut s = format!(
        "{verb}: {} for {} {} on {} in {:.2}s\n",
        a.work_dir.display(),
        m.backend,
        m.backend_version,
        m.device,
        started.elapsed().as_secs_f64()
    );
    for (label, list) in [("input ", &m.inputs), ("output", &m.outputs)] {
        for t in list {
            s.push_str(&format!(
                "  {label} {}: {} {}\n",
                t.name,
                t.dtype,
                t.shape_string()
            ));
        }
    }
    for p in &m.passes {
        if p.outcome.changed {
            s.push_str(&format!("  pass   {} ({})\n", p.name, p.stage));
        }
    }
    for n in &m.notes {
        s.push_str(&format!("  note   {n}\n"));
    }
    for f in &m.backend_files {
        s.push_str(&format!("  file   {} ({} bytes)\n", f.path, f.bytes));
    }
    out(&s)
}
