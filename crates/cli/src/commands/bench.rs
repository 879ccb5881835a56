//! `rdeploy bench`: latency percentiles, throughput, execute vs forward.

use super::model_inputs;
use crate::args::BenchArgs;
use crate::out;
use anyhow::{Result, bail};
use rdeploy::bench::{BenchOptions, Percentiles};
use rdeploy::{Registry, WorkDir};

pub(crate) fn run(registry: &Registry, a: BenchArgs) -> Result<()> {
    if a.iters == 0 {
        bail!("--iters must be at least 1");
    }
    let work = WorkDir::open(&a.work_dir)?;
    let wrapper = rdeploy::load(&work, registry, None)?;
    let named = model_inputs(&work.manifest, wrapper.as_ref(), &a.input)?;
    let threads = a.concurrency as usize;
    let bar = indicatif::ProgressBar::new((a.warmup * threads + a.iters) as u64);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let tick = || bar.inc(1);
    let report = rdeploy::bench::bench(
        wrapper.as_ref(),
        &named,
        &BenchOptions {
            warmup: a.warmup,
            iters: a.iters,
            concurrency: threads,
            tick: Some(&tick),
        },
    );
    bar.finish_and_clear();
    let mut report = report?;
    report.backend_version = work.manifest.backend_version.clone();
    if a.json {
        return out(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    }
    let p = |x: &Percentiles| {
        format!(
            "mean {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  min {:.3}  max {:.3}",
            x.mean, x.p50, x.p90, x.p99, x.min, x.max
        )
    };
    let settings = if report.settings.is_empty() {
        String::new()
    } else {
        let kv: Vec<String> = report
            .settings
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        format!("\n  settings: {}", kv.join(", "))
    };
    out(&format!(
        "{} {} on {}, {} iterations after {} warmup, {} thread(s){settings}\n  forward (ms): {}\n  execute (ms): {}\n  overhead outside execute: {:.4} ms/call\n  throughput: {:.1} calls/s\n",
        report.backend,
        report.backend_version,
        report.device,
        report.iters,
        report.warmup,
        report.concurrency,
        p(&report.latency_ms),
        p(&report.execute_ms),
        report.overhead_ms_mean,
        report.throughput_per_s
    ))
}
