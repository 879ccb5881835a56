//! `rdeploy bench`: latency percentiles, throughput, execute vs forward; with a model, every
//! backend deployed and ranked in one interleaved run, over a grid of concurrency and batch.

use super::model_inputs;
use crate::args::BenchArgs;
use crate::out;
use crate::report::{self, BackendProfile, BenchEntry, BenchRun};
use anyhow::{Context, Result, bail};
use rdeploy::bench::{BenchOptions, BenchReport, Percentiles, memory};
use rdeploy::{Registry, WorkDir};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Backends that could not be deployed: (name, why).
type Failed = Vec<(String, String)>;

/// One backend ready to run: deployed (or opened) and loaded.
struct Loaded {
    entry: BenchEntry,
    /// The deploy config it was deployed with (`None` for a work dir given as is).
    config: serde_json::Value,
    wrapper: Arc<dyn rdeploy::Wrapper>,
    inputs: rdeploy::NamedTensors,
    /// The ONNX file its FLOPs are counted on.
    onnx: PathBuf,
}

pub(crate) fn run(registry: &Registry, a: BenchArgs) -> Result<()> {
    if a.iters == 0 && a.duration.is_none() {
        bail!("--iters must be at least 1");
    }
    // Output files are checked before the run, which can take minutes.
    if let Some(p) = &a.report {
        writable(p, "--report")?;
    }
    if a.tune {
        writable(&a.tune_out, "--tune-out")?;
    }
    // A temporary folder for the deploys of a model, kept until the run ends.
    let tmp = super::scratch_dir("rdeploy-bench-")
        .context("creating a temporary folder for the deploys")?;
    let from_model = a.work_dir.is_file();
    let (loaded, failed) = if from_model {
        deploy_each(registry, &a, tmp.path())?
    } else {
        (vec![open_work_dir(registry, &a)?], Vec::new())
    };
    let batches: Vec<Option<usize>> = if a.batch.is_empty() {
        vec![None]
    } else {
        a.batch.iter().map(|&b| Some(b as usize)).collect()
    };
    let settings: Vec<(usize, Option<usize>)> = a
        .concurrency
        .iter()
        .flat_map(|&c| batches.iter().map(move |&b| (c as usize, b)))
        .collect();
    let runs = measure(&a, &loaded, &settings)?;
    let entries: Vec<BenchEntry> = loaded.iter().map(|l| l.entry.clone()).collect();
    if a.tune {
        write_tuned(&a, &loaded, &runs[0])?;
    }
    let profiles = if a.profile_ops {
        profile_each(&a, &loaded, settings[0].1)?
    } else {
        Vec::new()
    };
    if let Some(path) = &a.report {
        report::write_bench_report(
            path,
            &report::BenchPage {
                model: &a.work_dir,
                entries: &entries,
                runs: &runs,
                failed: &failed,
                rounds: a.rounds,
                warmup: a.warmup,
                threads: a.threads,
                profiles: &profiles,
            },
        )?;
        tracing::info!("wrote the report {}", path.display());
    }
    if !from_model && runs.len() == 1 {
        return print_one(&a, &runs[0].reports[0], &profiles);
    }
    print_ranking(&a, &entries, &runs, &failed, &profiles)
}

/// Each backend's per-operator profile at the first setting's inputs.
fn profile_each(
    a: &BenchArgs,
    loaded: &[Loaded],
    batch: Option<usize>,
) -> Result<Vec<BackendProfile>> {
    let pb = super::progress_spinner();
    let mut out = Vec::new();
    for l in loaded {
        pb.set_message(format!("profiling operators on {}", l.entry.backend));
        let inputs = match batch {
            Some(b) => rdeploy::inputs::with_batch(&l.inputs, l.wrapper.inputs(), b)?,
            None => l.inputs.clone(),
        };
        let ordered = rdeploy::core::validate_inputs(l.wrapper.inputs(), inputs)?;
        let result = l
            .wrapper
            .profile(ordered, a.profile_runs as usize)
            .map(|times| rdeploy::profile::map_to_onnx(&l.onnx, &times));
        out.push(match result {
            Ok(nodes) => BackendProfile {
                backend: l.entry.backend.clone(),
                runs: a.profile_runs,
                by_op_type: rdeploy::profile::by_op_type(&nodes),
                nodes,
                error: None,
            },
            Err(e) => BackendProfile {
                backend: l.entry.backend.clone(),
                runs: a.profile_runs,
                by_op_type: Vec::new(),
                nodes: Vec::new(),
                error: Some(e.report()),
            },
        });
    }
    pb.finish_and_clear();
    Ok(out)
}

/// The per-operator table: ONNX operator types down, backends across, ms per call and the
/// share of the backend's time in operators.
pub(crate) fn profile_table(profiles: &[BackendProfile]) -> String {
    let Some(runs) = profiles.first().map(|p| p.runs) else {
        return String::new();
    };
    let mut s = format!(
        "\nper-operator time from each engine's profiler ({runs} calls after a warm-up; ms per call, share of its time in operators), by the model's ONNX operator ([engine-added nodes]):\n{:<22}",
        "operator"
    );
    for p in profiles {
        s.push_str(&format!(" {:>22}", p.backend));
    }
    s.push('\n');
    let mut ops: Vec<&str> = Vec::new();
    for p in profiles {
        for o in &p.by_op_type {
            if !ops.contains(&o.op_type.as_str()) {
                ops.push(&o.op_type);
            }
        }
    }
    let total = |p: &BackendProfile| p.by_op_type.iter().map(|o| o.ms).sum::<f64>();
    for op in ops {
        s.push_str(&format!("{op:<22}"));
        for p in profiles {
            let cell = p.by_op_type.iter().find(|o| o.op_type == op).map_or_else(
                || "-".to_string(),
                |o| format!("{:.3} ({:.0}%)", o.ms, 100.0 * o.ms / total(p).max(1e-12)),
            );
            s.push_str(&format!(" {cell:>22}"));
        }
        s.push('\n');
    }
    s.push_str(&format!("{:<22}", "in operators"));
    for p in profiles {
        let cell = if p.error.is_some() {
            "-".to_string()
        } else {
            format!("{:.3}", total(p))
        };
        s.push_str(&format!(" {cell:>22}"));
    }
    s.push('\n');
    for p in profiles {
        if let Some(e) = &p.error {
            // The error names the backend itself.
            s.push_str(&format!("no profile: {e}\n"));
        }
    }
    s
}

/// Fails unless `path` can be written: its folder exists and it is not a folder itself.
pub(crate) fn writable(path: &Path, flag: &str) -> Result<()> {
    if path.is_dir() {
        bail!(
            "{flag} {}: it is a folder; name a file to write",
            path.display()
        );
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!(
            "{flag} {}: the folder {} does not exist; create it first",
            path.display(),
            parent.display()
        );
    }
    let meta = std::fs::metadata(parent)
        .with_context(|| format!("{flag} {}: cannot read its folder", path.display()))?;
    if meta.permissions().readonly() {
        bail!(
            "{flag} {}: the folder {} is read-only",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

/// `bench WORK_DIR`: the work dir's backend, loaded.
fn open_work_dir(registry: &Registry, a: &BenchArgs) -> Result<Loaded> {
    let work = WorkDir::open(&a.work_dir)?;
    let backend = work.manifest.backend.clone();
    if let Some(b) = &a.backends
        && b.iter().any(|n| n != &backend)
    {
        bail!(
            "{} is deployed for {backend}; --backends {} needs the ONNX model (rdeploy bench MODEL.onnx --backends ...), which is deployed for each",
            a.work_dir.display(),
            b.join(",")
        );
    }
    if a.config.is_some() || a.threads.is_some() || a.tune {
        bail!(
            "--config, --threads and --tune apply when a model is deployed; {} is already deployed (its settings are in its deploy.json): give the ONNX model instead",
            a.work_dir.display()
        );
    }
    let rss0 = memory::rss_bytes();
    let t = std::time::Instant::now();
    let wrapper = rdeploy::load(&work, registry, None)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let inputs = model_inputs(&work.manifest, wrapper.as_ref(), &a.input)?;
    Ok(Loaded {
        config: work.manifest.config.clone(),
        entry: BenchEntry {
            backend,
            version: work.manifest.backend_version.clone(),
            deploy_ms: None,
            load_ms,
            load_rss_mb: rss_growth(rss0),
        },
        onnx: work.path.join(&work.manifest.ir_file.path),
        wrapper,
        inputs,
    })
}

/// Resident memory gained since `before`, in MiB.
fn rss_growth(before: Option<u64>) -> Option<f64> {
    let now = memory::rss_bytes()?;
    Some(now.saturating_sub(before?) as f64 / (1024.0 * 1024.0))
}

/// `bench MODEL.onnx`: deploy and load each backend; those that fail are listed with why.
fn deploy_each(registry: &Registry, a: &BenchArgs, tmp: &Path) -> Result<(Vec<Loaded>, Failed)> {
    let model = &a.work_dir;
    let wanted = a.backends.clone().unwrap_or_else(|| vec!["all".into()]);
    let names: Vec<String> = if wanted.iter().any(|b| b == "all") {
        rdeploy::check_env(registry)
            .into_iter()
            .filter(|b| b.available)
            .map(|b| b.name)
            .collect()
    } else {
        wanted
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
    // With --profile-ops, a copy whose unnamed nodes have names, so that every engine's
    // profile maps back to the same ONNX nodes (the graph is the same).
    let deployed = if a.profile_ops {
        rdeploy::profile::named_copy(model, &tmp.join("named.onnx"))?
            .unwrap_or_else(|| model.clone())
    } else {
        model.clone()
    };
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let candidates: Vec<(String, String, serde_json::Value)> = names
        .iter()
        .flat_map(|name| -> Vec<(String, String, serde_json::Value)> {
            if a.tune {
                tune_grid(name)
                    .into_iter()
                    .map(|(label, knobs)| (format!("{name}[{label}]"), name.clone(), knobs))
                    .collect()
            } else {
                vec![(name.clone(), name.clone(), json!({}))]
            }
        })
        .collect();
    for (label, name, knobs) in &candidates {
        let mut config_json = backend_config(&base, name, a)?.to_json();
        merge_backend_config(&mut config_json, knobs);
        let config = rdeploy::Config::from_json(
            &config_json,
            a.config.as_deref().unwrap_or(Path::new("<bench>")),
        )?;
        let rss0 = memory::rss_bytes();
        let started = std::time::Instant::now();
        let step = rdeploy::deploy(
            registry,
            &config,
            &deployed,
            &tmp.join(label.replace(['[', ']', ',', '='], "_")),
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
            Ok((wd, wrapper, deploy_ms, load_ms)) => {
                let inputs = model_inputs(&wd.manifest, wrapper.as_ref(), &a.input)?;
                ok.push(Loaded {
                    config: config_json,
                    entry: BenchEntry {
                        backend: label.clone(),
                        version: wd.manifest.backend_version.clone(),
                        deploy_ms: Some(deploy_ms),
                        load_ms,
                        load_rss_mb: rss_growth(rss0),
                    },
                    onnx: deployed.clone(),
                    wrapper,
                    inputs,
                });
            }
            Err(e) => {
                tracing::warn!("{label}: {}", e.report());
                failed.push((label.clone(), e.report()));
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
    Ok((ok, failed))
}

/// The deploy config for `name`: the base config with its backend type, and `--threads` in
/// the backend's own thread setting.
fn backend_config(base: &serde_json::Value, name: &str, a: &BenchArgs) -> Result<rdeploy::Config> {
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
        match thread_key(name) {
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
    Ok(rdeploy::Config::from_json(
        &cfg,
        a.config.as_deref().unwrap_or(Path::new("<bench>")),
    )?)
}

/// `--tune`'s candidates for a backend: (label, backend_config keys to merge). Threads: one and
/// every core this process may use; per engine its main execution knobs.
fn tune_grid(backend: &str) -> Vec<(String, serde_json::Value)> {
    let all = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut threads = vec![1];
    if all > 1 {
        threads.push(all);
    }
    let mut out = Vec::new();
    for &t in &threads {
        let with_threads = |mut v: serde_json::Value| {
            match thread_key(backend) {
                Some(("", k)) => v[k] = json!(t),
                Some((section, k)) => v[section][k] = json!(t),
                None => {}
            }
            v
        };
        match backend {
            "onnxruntime" => {
                for (level, mode) in [
                    ("all", "sequential"),
                    ("basic", "sequential"),
                    ("all", "parallel"),
                ] {
                    out.push((
                        format!("threads={t},opt={level},mode={mode}"),
                        with_threads(json!({"common_config": {
                            "graph_optimization_level": level,
                            "execution_mode": mode,
                        }})),
                    ));
                }
            }
            "openvino" => {
                for hint in ["LATENCY", "THROUGHPUT"] {
                    out.push((
                        format!("threads={t},hint={hint}"),
                        with_threads(json!({"performance_hint": hint})),
                    ));
                }
            }
            _ if thread_key(backend).is_some() => {
                out.push((format!("threads={t}"), with_threads(json!({}))));
            }
            _ => {}
        }
    }
    if out.is_empty() {
        out.push(("as configured".into(), json!({})));
    }
    out
}

/// Merges `knobs` into `cfg.backend_config`, one level of sections deep.
fn merge_backend_config(cfg: &mut serde_json::Value, knobs: &serde_json::Value) {
    let Some(knobs) = knobs.as_object() else {
        return;
    };
    if !cfg["backend_config"].is_object() {
        cfg["backend_config"] = json!({});
    }
    for (k, v) in knobs {
        match (v.as_object(), cfg["backend_config"][k].as_object_mut()) {
            (Some(section), Some(into)) => {
                for (sk, sv) in section {
                    into.insert(sk.clone(), sv.clone());
                }
            }
            _ => cfg["backend_config"][k] = v.clone(),
        }
    }
}

/// Writes the fastest candidate's deploy config (lowest p50 at the first setting) to
/// `--tune-out`, with a header saying what was measured.
fn write_tuned(a: &BenchArgs, loaded: &[Loaded], run: &BenchRun) -> Result<()> {
    let order = ranked(&run.reports);
    let Some(&best) = order.first() else {
        bail!("--tune: nothing was measured");
    };
    let winner = &loaded[best];
    let config = rdeploy::Config::from_json(&winner.config, Path::new("<tuned>"))?;
    let r = &run.reports[best];
    let mut text = format!(
        "# Written by `rdeploy bench --tune` for {}: the fastest of {} candidates\n# ({}: p50 {:.3} ms, p90 {:.3} ms, {} caller thread(s), inputs {:?}).\n",
        a.work_dir.display(),
        loaded.len(),
        winner.entry.backend,
        r.latency_ms.p50,
        r.latency_ms.p90,
        run.concurrency,
        r.input_shapes
    );
    text.push_str(&super::config::python_text(&config.tree));
    rdeploy::core::atomic::write_atomic(&a.tune_out, |w| w.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", a.tune_out.display()))?;
    tracing::info!(
        "--tune: {} is the fastest; its deploy config is in {}",
        winner.entry.backend,
        a.tune_out.display()
    );
    Ok(())
}

/// Where a backend's engine thread count goes in `backend_config`: (section, key), section ""
/// for the top level.
pub(crate) fn thread_key(backend: &str) -> Option<(&'static str, &'static str)> {
    match backend {
        "openvino" => Some(("", "inference_num_threads")),
        "onnxruntime" | "ort" => Some(("common_config", "intra_op_num_threads")),
        "tract" | "ncnn" => Some(("common_config", "num_threads")),
        "tvm" => Some(("", "num_threads")),
        _ => None,
    }
}

/// Every setting, every backend interleaved within it.
fn measure(
    a: &BenchArgs,
    loaded: &[Loaded],
    settings: &[(usize, Option<usize>)],
) -> Result<Vec<BenchRun>> {
    let per_setting_calls: usize = settings
        .iter()
        .map(|&(c, _)| (a.warmup * c + a.iters) * loaded.len())
        .sum();
    let bar = match a.duration {
        // Calls of unknown number: count them beside the elapsed time.
        Some(d) => {
            let pb = super::progress_spinner();
            pb.set_message(format!(
                "calls; about {:.0} s of timed calls planned",
                d.as_secs_f64() * (settings.len() * loaded.len()) as f64
            ));
            pb.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed} {pos} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            pb
        }
        None => {
            let pb = indicatif::ProgressBar::new(per_setting_calls as u64);
            pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            pb
        }
    };
    let tick = || bar.inc(1);
    let mut runs = Vec::new();
    for &(concurrency, batch) in settings {
        let inputs: Vec<rdeploy::NamedTensors> = loaded
            .iter()
            .map(|l| match batch {
                Some(b) => rdeploy::inputs::with_batch(&l.inputs, l.wrapper.inputs(), b)
                    .with_context(|| format!("--batch {b} on {}", l.entry.backend)),
                None => Ok(l.inputs.clone()),
            })
            .collect::<Result<_>>()?;
        let pairs: Vec<(&dyn rdeploy::Wrapper, &rdeploy::NamedTensors)> = loaded
            .iter()
            .zip(&inputs)
            .map(|(l, i)| (l.wrapper.as_ref(), i))
            .collect();
        let reports = rdeploy::bench::bench_interleaved(
            &pairs,
            &BenchOptions {
                warmup: a.warmup,
                iters: a.iters,
                duration: a.duration,
                concurrency,
                tick: Some(&tick),
            },
            a.rounds as usize,
        );
        let mut reports = match reports {
            Ok(r) => r,
            Err(e) => {
                bar.finish_and_clear();
                return Err(e.into());
            }
        };
        for (r, l) in reports.iter_mut().zip(loaded) {
            r.backend_version = l.entry.version.clone();
            r.set_flops(rdeploy::inspect::flops_at(&l.onnx, &r.input_shapes));
        }
        runs.push(BenchRun {
            concurrency,
            batch,
            reports,
        });
    }
    bar.finish_and_clear();
    Ok(runs)
}

/// One work dir, one setting: the detailed report.
fn print_one(a: &BenchArgs, report: &BenchReport, profiles: &[BackendProfile]) -> Result<()> {
    if a.json {
        let mut v = serde_json::to_value(report)?;
        if let Some(p) = profiles.first() {
            v["profile"] = serde_json::to_value(p)?;
        }
        return out(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let p = |x: &Percentiles| {
        format!(
            "mean {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  min {:.3}  max {:.3}  std {:.3}",
            x.mean, x.p50, x.p90, x.p99, x.min, x.max, x.std
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
    let memory = report
        .peak_rss_mb
        .map(|m| {
            format!("\n  peak resident memory: {m:.1} MiB (the process, during the timed calls)")
        })
        .unwrap_or_default();
    out(&format!(
        "{} {} on {}, {} iterations after {} warmup, {} thread(s), batch {}{settings}\n  forward (ms): {}\n  execute (ms): {}{engine}\n  overhead outside execute: {:.4} ms/call\n  throughput: {:.1} calls/s, {:.1} samples/s{compute}{memory}\n",
        report.backend,
        report.backend_version,
        report.device,
        report.iters,
        report.warmup,
        report.concurrency,
        report.batch,
        p(&report.latency_ms),
        p(&report.execute_ms),
        report.overhead_ms_mean,
        report.throughput_per_s,
        report.samples_per_s,
    ))?;
    out(&profile_table(profiles))
}

/// Indices of `reports` from the lowest p50 latency up.
pub(crate) fn ranked(reports: &[BenchReport]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..reports.len()).collect();
    order.sort_by(|&i, &j| {
        reports[i]
            .latency_ms
            .p50
            .total_cmp(&reports[j].latency_ms.p50)
    });
    order
}

fn print_ranking(
    a: &BenchArgs,
    entries: &[BenchEntry],
    runs: &[BenchRun],
    failed: &[(String, String)],
    profiles: &[BackendProfile],
) -> Result<()> {
    if a.json {
        let runs: Vec<serde_json::Value> = runs
            .iter()
            .map(|run| {
                let ranked: Vec<serde_json::Value> = ranked(&run.reports)
                    .iter()
                    .enumerate()
                    .map(|(rank, &i)| {
                        json!({
                            "rank": rank + 1,
                            "backend": entries[i].backend,
                            "deploy_ms": entries[i].deploy_ms,
                            "load_ms": entries[i].load_ms,
                            "load_rss_mb": entries[i].load_rss_mb,
                            "report": run.reports[i],
                        })
                    })
                    .collect();
                json!({"concurrency": run.concurrency, "batch": run.batch, "ranked": ranked})
            })
            .collect();
        let failed: Vec<serde_json::Value> = failed
            .iter()
            .map(|(n, e)| json!({"backend": n, "error": e}))
            .collect();
        return out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "model": a.work_dir,
                "rounds": a.rounds,
                "iters": a.iters,
                "duration_s": a.duration.map(|d| d.as_secs_f64()),
                "warmup": a.warmup,
                "threads": a.threads,
                "backends": entries,
                "runs": runs,
                "failed": failed,
                "profiles": profiles,
            }))?
        ));
    }
    let timed = match a.duration {
        Some(d) => format!("{:.1} s of timed calls each", d.as_secs_f64()),
        None => format!("{} timed calls each", a.iters),
    };
    let mut s = format!(
        "{}: {} {}, {timed} in {} interleaved rounds after {} warmup{}\n",
        a.work_dir.display(),
        entries.len(),
        if a.tune {
            "candidates (--tune)"
        } else {
            "backend(s)"
        },
        a.rounds,
        a.warmup,
        a.threads
            .map(|t| format!(", {t} engine threads"))
            .unwrap_or_default()
    );
    for run in runs {
        s.push_str(&format!(
            "\n{} caller thread(s), batch {}:\n",
            run.concurrency,
            run.batch
                .map_or_else(|| "as given".to_string(), |b| b.to_string())
        ));
        let bw = entries
            .iter()
            .map(|e| e.backend.chars().count())
            .max()
            .unwrap_or(0)
            .max(12);
        s.push_str(&format!(
            "{:<4} {:<bw$} {:<10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>10} {:>10} {:>8} {:>10} {:>9} {:>9}\n",
            "rank",
            "backend",
            "version",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "mean ms",
            "std ms",
            "calls/s",
            "samples/s",
            "vs best",
            "deploy ms",
            "peak MiB",
            "GFLOP/s"
        ));
        let order = ranked(&run.reports);
        let best = run.reports[order[0]].latency_ms.p50;
        for (rank, &i) in order.iter().enumerate() {
            let r = &run.reports[i];
            let e = &entries[i];
            let version: String = e.version.chars().take(10).collect();
            s.push_str(&format!(
                "{:<4} {:<bw$} {:<10} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8.3} {:>10.1} {:>10.1} {:>7.2}x {:>10} {:>9} {:>9}\n",
                rank + 1,
                e.backend,
                version,
                r.latency_ms.p50,
                r.latency_ms.p90,
                r.latency_ms.p99,
                r.latency_ms.mean,
                r.latency_ms.std,
                r.throughput_per_s,
                r.samples_per_s,
                r.latency_ms.p50 / best,
                e.deploy_ms
                    .map_or_else(|| "-".to_string(), |d| format!("{d:.0}")),
                r.peak_rss_mb
                    .map_or_else(|| "-".to_string(), |m| format!("{m:.0}")),
                r.gflops_per_s
                    .map_or_else(|| "-".to_string(), |g| format!("{g:.2}"))
            ));
        }
    }
    for (n, e) in failed {
        s.push_str(&format!("-    {n} failed: {e}\n"));
    }
    s.push_str(&profile_table(profiles));
    if let Some(p) = &a.report {
        s.push_str(&format!("report: {}\n", p.display()));
    }
    out(&s)
}
