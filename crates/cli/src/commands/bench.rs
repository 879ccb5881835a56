//! `rdeploy bench`: latency percentiles, throughput, execute vs forward.

use super::model_inputs;
use crate::args::BenchArgs;
use crate::out;
use anyhow::{Context, Result, bail};
use rdeploy::bench::{BenchOptions, Percentiles};
use rdeploy::{Registry, WorkDir};
use serde_json::json;

pub(crate) fn run(registry: &Registry, a: BenchArgs) -> Result<()> {
    if a.iters == 0 {
        bail!("--iters must be at least 1");
    }
    if a.work_dir.is_file() {
        return rank(registry, &a);
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
    report.set_flops(rdeploy::inspect::flops_at(
        &work.path.join(&work.manifest.ir_file.path),
        &report.input_shapes,
    ));
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
    // A backend in a worker process: the engine's own time, and what the worker adds.
    let engine = match &report.engine_ms {
        Some(g) => format!(
            "\n  engine (ms): {}  (inside the worker)\n  worker cost: {:.4} ms/call (execute - engine, mean; with --concurrency above the worker pool size it includes waiting for a free worker)",
            p(g),
            report.execute_ms.mean - g.mean
        ),
        None => String::new(),
    };
    let compute = match (report.flops_per_call, report.gflops_per_s) {
        (Some(f), Some(g)) => format!(
            "\n  compute: {:.3} GFLOPs per call, {g:.2} GFLOP/s at the p50 latency",
            f as f64 / 1e9
        ),
        _ => String::new(),
    };
    out(&format!(
        "{} {} on {}, {} iterations after {} warmup, {} thread(s){settings}\n  forward (ms): {}\n  execute (ms): {}{engine}\n  overhead outside execute: {:.4} ms/call\n  throughput: {:.1} calls/s{compute}\n",
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

/// `rdeploy bench MODEL.onnx --backends ...`: deploy for each backend, then rank them.
fn rank(registry: &Registry, a: &BenchArgs) -> Result<()> {
    let model = &a.work_dir;
    let names: Vec<String> = if a.backends.iter().any(|b| b == "all") {
        rdeploy::check_env(registry)
            .into_iter()
            .filter(|b| b.available)
            .map(|b| b.name)
            .collect()
    } else {
        a.backends.clone()
    };
    if names.is_empty() {
        bail!(
            "no backend to benchmark: --backends names none, or none is available (rdeploy check-env)"
        );
    }
    let base = match &a.config {
        Some(p) => rdeploy::Config::from_file(p)?.deploy_config().0,
        None => json!({}),
    };
    let tmp = tempfile::Builder::new()
        .prefix("rdeploy-bench-")
        .tempdir()
        .context("creating a temporary folder for the deploys")?;
    struct Entry {
        name: String,
        version: String,
        deploy_ms: f64,
        load_ms: f64,
        wrapper: std::sync::Arc<dyn rdeploy::Wrapper>,
        inputs: rdeploy::NamedTensors,
    }
    let mut ok: Vec<Entry> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for name in &names {
        let mut cfg = base.clone();
        let root = cfg
            .as_object_mut()
            .ok_or_else(|| anyhow::anyhow!("the config is not a dict"))?;
        let be = root.entry("backend_config").or_insert_with(|| json!({}));
        let Some(be) = be.as_object_mut() else {
            bail!("backend_config in the config is not a dict");
        };
        be.insert("type".into(), json!(name));
        if let Some(t) = a.threads {
            let key = match name.as_str() {
                "openvino" => Some(("", "inference_num_threads")),
                "onnxruntime" | "ort" => Some(("common_config", "intra_op_num_threads")),
                "tract" | "ncnn" => Some(("common_config", "num_threads")),
                "tvm" => Some(("", "num_threads")),
                _ => None,
            };
            match key {
                Some(("", k)) => {
                    be.insert(k.into(), json!(t));
                }
                Some((section, k)) => {
                    let cc = be.entry(section).or_insert_with(|| json!({}));
                    if let Some(cc) = cc.as_object_mut() {
                        cc.insert(k.into(), json!(t));
                    }
                }
                None => tracing::warn!(
                    "--threads: rdeploy does not know {name}'s thread setting; it runs with its own"
                ),
            }
        }
        let config = rdeploy::Config::from_json(
            &cfg,
            a.config
                .as_deref()
                .unwrap_or(std::path::Path::new("<bench>")),
        )?;
        let started = std::time::Instant::now();
        let step = rdeploy::deploy(
            registry,
            &config,
            model,
            &tmp.path().join(name),
            &rdeploy::Device::cpu(),
            &rdeploy::DeployOptions::default(),
        )
        .and_then(|wd| {
            let deploy_ms = started.elapsed().as_secs_f64() * 1e3;
            let t = std::time::Instant::now();
            let w = rdeploy::load(&wd, registry, None)?;
            Ok((wd, w, deploy_ms, t.elapsed().as_secs_f64() * 1e3))
        });
        match step {
            Ok((wd, w, deploy_ms, load_ms)) => {
                let inputs = model_inputs(&wd.manifest, w.as_ref(), &a.input)?;
                ok.push(Entry {
                    name: name.clone(),
                    version: wd.manifest.backend_version.clone(),
                    deploy_ms,
                    load_ms,
                    wrapper: w,
                    inputs,
                });
            }
            Err(e) => {
                tracing::warn!("{name}: {}", e.report());
                failed.push((name.clone(), e.report()));
            }
        }
    }
    if ok.is_empty() {
        bail!(
            "no backend could deploy {}: {}",
            model.display(),
            failed
                .iter()
                .map(|(n, e)| format!("{n}: {e}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let threads = a.concurrency as usize;
    let bar = indicatif::ProgressBar::new(((a.warmup * threads + a.iters) * ok.len()) as u64);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let tick = || bar.inc(1);
    let runs: Vec<(&dyn rdeploy::Wrapper, &rdeploy::NamedTensors)> =
        ok.iter().map(|e| (e.wrapper.as_ref(), &e.inputs)).collect();
    let reports = rdeploy::bench::bench_interleaved(
        &runs,
        &BenchOptions {
            warmup: a.warmup,
            iters: a.iters,
            concurrency: threads,
            tick: Some(&tick),
        },
        a.rounds as usize,
    );
    bar.finish_and_clear();
    let mut reports = reports?;
    // The same model and input shapes for all: counted once.
    let flops = reports
        .first()
        .and_then(|r| rdeploy::inspect::flops_at(model, &r.input_shapes));
    for (r, e) in reports.iter_mut().zip(&ok) {
        r.backend_version = e.version.clone();
        r.set_flops(flops);
    }
    let mut order: Vec<usize> = (0..ok.len()).collect();
    order.sort_by(|&i, &j| {
        reports[i]
            .latency_ms
            .p50
            .total_cmp(&reports[j].latency_ms.p50)
    });
    if a.json {
        let ranked: Vec<serde_json::Value> = order
            .iter()
            .enumerate()
            .map(|(rank, &i)| {
                json!({
                    "rank": rank + 1,
                    "backend": ok[i].name,
                    "deploy_ms": ok[i].deploy_ms,
                    "load_ms": ok[i].load_ms,
                    "report": reports[i],
                })
            })
            .collect();
        let failed: Vec<serde_json::Value> = failed
            .iter()
            .map(|(n, e)| json!({"backend": n, "error": e}))
            .collect();
        return out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "model": model,
                "rounds": a.rounds,
                "iters": a.iters,
                "warmup": a.warmup,
                "concurrency": threads,
                "threads": a.threads,
                "ranked": ranked,
                "failed": failed,
            }))?
        ));
    }
    let best = reports[order[0]].latency_ms.p50;
    let mut s = format!(
        "{}: {} backends, {} timed calls each in {} interleaved rounds after {} warmup, {} caller thread(s){}\n",
        model.display(),
        ok.len(),
        a.iters,
        a.rounds,
        a.warmup,
        threads,
        a.threads
            .map(|t| format!(", {t} engine threads"))
            .unwrap_or_default()
    );
    s.push_str(&format!(
        "{:<4} {:<12} {:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>10} {:>9}\n",
        "rank",
        "backend",
        "version",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "mean ms",
        "std ms",
        "calls/s",
        "vs best",
        "deploy ms",
        "GFLOP/s"
    ));
    for (rank, &i) in order.iter().enumerate() {
        let r = &reports[i];
        let version: String = ok[i].version.chars().take(10).collect();
        s.push_str(&format!(
            "{:<4} {:<12} {:<10} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.1} {:>7.2}x {:>10.0} {:>9}\n",
            rank + 1,
            ok[i].name,
            version,
            r.latency_ms.p50,
            r.latency_ms.p90,
            r.latency_ms.p99,
            r.latency_ms.mean,
            r.latency_ms.std,
            r.throughput_per_s,
            r.latency_ms.p50 / best,
            ok[i].deploy_ms,
            r.gflops_per_s
                .map_or_else(|| "-".to_string(), |g| format!("{g:.2}"))
        ));
    }
    for (n, e) in &failed {
        s.push_str(&format!("-    {n:<12} failed: {e}\n"));
    }
    out(&s)
}
