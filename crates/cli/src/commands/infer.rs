//! `rdeploy infer`: run a work dir on inputs, write the outputs.

use super::model_inputs;
use crate::args::InferArgs;
use crate::out;
use anyhow::{Context, Result};
use rdeploy::{Manifest, Registry, Tensor, WorkDir};
use serde_json::json;
use std::time::Instant;

pub(crate) fn run(registry: &Registry, a: InferArgs) -> Result<()> {
    let work = WorkDir::open(&a.work_dir)?;
    let wrapper = rdeploy::load(&work, registry, None)?;
    let named = model_inputs(&work.manifest, wrapper.as_ref(), &a.input)?;
    run_infer(&work.manifest, wrapper.as_ref(), named, &a)
}

fn run_infer(
    m: &Manifest,
    wrapper: &dyn rdeploy::Wrapper,
    named: rdeploy::NamedTensors,
    a: &InferArgs,
) -> Result<()> {
    let started = Instant::now();
    let outputs = wrapper
        .forward(named)
        .with_context(|| format!("running {} on {}", a.work_dir.display(), m.backend))?;
    let forward_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut written = Vec::new();
    if let Some(dir) = &a.output_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output dir {}", dir.display()))?;
        let mut used = std::collections::HashSet::new();
        for (name, t) in &outputs {
            let mut p = crate::inputs::output_path(dir, name);
            let mut k = 1;
            while !used.insert(p.clone()) {
                p = dir.join(format!(
                    "{}_{k}.npy",
                    crate::inputs::output_file_name(name).trim_end_matches(".npy")
                ));
                k += 1;
            }
            rdeploy::io::write_npy(&p, t)?;
            written.push(p);
        }
    }
    if a.json {
        let outs: Vec<serde_json::Value> = outputs
            .iter()
            .enumerate()
            .map(|(i, (name, t))| {
                let (min, max, mean) = stats(t);
                json!({"name": name, "dtype": t.dtype(), "shape": t.shape(), "min": min, "max": max, "mean": mean, "file": written.get(i)})
            })
            .collect();
        let doc = json!({"backend": m.backend, "device": wrapper.device().to_string(), "forward_ms": forward_ms, "outputs": outs});
        out(&format!("{}\n", serde_json::to_string_pretty(&doc)?))
    } else {
        let mut s = format!(
            "{} on {}: forward {:.3} ms\n",
            m.backend,
            wrapper.device(),
            forward_ms
        );
        for (i, (name, t)) in outputs.iter().enumerate() {
            let (min, max, mean) = stats(t);
            s.push_str(&format!(
                "  {name}: {} {:?} min {min:.6} max {max:.6} mean {mean:.6}",
                t.dtype(),
                t.shape()
            ));
            if let Some(p) = written.get(i) {
                s.push_str(&format!(" -> {}", p.display()));
            }
            s.push('\n');
        }
        out(&s)
    }
}

pub(crate) fn stats(t: &Tensor) -> (f64, f64, f64) {
    let v = t.to_f64_vec();
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max, v.iter().sum::<f64>() / v.len() as f64)
}
