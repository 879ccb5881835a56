//! The `rdeploy` command line, as a library so that a third party's own binary can be rdeploy
//! plus its backends: build a [`Registry`] with [`builtin_registry`], register more, and call
//! [`run_with`].
//!
//! ```no_run
//! let mut registry = rdeploy_cli::builtin_registry();
//! // registry.install(&my_backend::BACKEND)?;
//! std::process::exit(rdeploy_cli::run_with(registry, std::env::args_os()));
//! ```

mod inputs;
mod ir;
pub mod workdir;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use inputs::{InputArg, ShapeArg};
use rdeploy_core::{Device, Registry, Tensor};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The registry of backends compiled into this build, in DESIGN order.
pub fn builtin_registry() -> Registry {
    let mut r = Registry::new();
    let builtin: &[rdeploy_core::BackendDescriptor] = &[
        #[cfg(feature = "tract")]
        rdeploy_backend_tract::BACKEND,
        #[cfg(feature = "onnxruntime")]
        rdeploy_backend_ort::BACKEND,
        #[cfg(feature = "openvino")]
        rdeploy_backend_openvino::BACKEND,
    ];
    for d in builtin {
        if let Err(e) = r.install(d) {
            tracing::error!("{e}");
        }
    }
    r
}

#[derive(Parser, Debug)]
#[command(
    name = "rdeploy",
    version,
    about = "Deploy ONNX models to inference backends through one contract",
    long_about = "Deploy ONNX models to inference backends through one contract.\n\n\
        rdeploy reads MMDeploy deploy configs unchanged, applies their onnx_config to an ONNX \
        model, converts it for a backend (tract is built in; others load at run time), and runs, \
        times and compares the result. Exit code 0 on success, 1 on error, 2 on bad usage."
)]
struct Cli {
    /// Log level for messages on stderr: error, warn, info, debug or trace.
    #[arg(long, global = true, default_value = "info", env = "RDEPLOY_LOG")]
    log_level: String,

    /// Load a backend plugin (a shared library built against rdeploy_plugin.h); repeatable.
    /// RDEPLOY_PLUGIN_PATH (files or folders of *.so, `:`-separated) adds more. A plugin that
    /// cannot be loaded is listed by check-env with the reason; other backends still work.
    #[arg(long = "plugin", value_name = "FILE", global = true)]
    plugins: Vec<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every registered backend with its version, or why it is unavailable.
    CheckEnv {
        /// Print JSON instead of `name:<TAB>version` lines.
        #[arg(long)]
        json: bool,
    },
    /// Convert an ONNX model for the config's backend into a work dir.
    ///
    /// Applies onnx_config (input/output names, input_shape, dynamic_axes), writes
    /// <WORK_DIR>/end2end.onnx, the backend's files and the deploy.json manifest, atomically.
    /// Deploying again with the same model, merged config, backend version and device reuses
    /// the work dir (--force rebuilds).
    Deploy {
        /// The deploy config (.py as in MMDeploy, .toml or .json).
        deploy_cfg: PathBuf,
        /// The ONNX model.
        model: PathBuf,
        /// Where to write the backend files and manifest.
        #[arg(long)]
        work_dir: PathBuf,
        /// The device to convert for: cpu, cuda, cuda:1 ...
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Rebuild even if the work dir is up to date.
        #[arg(long)]
        force: bool,
        /// Print the manifest as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Run a deployed model on inputs and write its outputs.
    Infer(InferArgs),
    /// Measure a deployed model: latency percentiles, throughput, and the time inside the
    /// engine call (execute) against the whole forward (validation and naming included).
    Bench(BenchArgs),
    /// Run one model on several backends with the same inputs and compare their outputs to
    /// the first backend's: max abs/rel difference per output, pass/fail by rtol/atol.
    /// Exit code 1 when any output differs beyond the tolerance.
    Compare(CompareArgs),
    /// Deploy configs: print the merged result, or check it.
    #[command(subcommand)]
    Config(ConfigCmd),
}

/// Where a command's model inputs come from: files, or generated from the signature. Shared by
/// `infer`, `bench` and `compare`.
#[derive(Args, Debug)]
struct InputSource {
    /// An input: NAME=FILE, or FILE alone when the model has one input or the file names its
    /// tensors (.npz entries, TensorProto names). FILE is .npy, .npz or ONNX TensorProto .pb.
    /// Repeat for several inputs. Without --input, inputs are generated from the signature.
    #[arg(long = "input", short = 'i', value_name = "NAME=FILE")]
    inputs: Vec<InputArg>,
    /// Shape for generated inputs with symbolic dims: INPUT:1x3x224x224, or DIM=N (batch=4).
    #[arg(long = "shape", value_name = "INPUT:DIMS|DIM=N")]
    shapes: Vec<ShapeArg>,
    /// Seed for generated inputs (floats uniform in [0,1), integers in [0,2)).
    #[arg(long, default_value_t = 0)]
    random_seed: u64,
}

#[derive(Args, Debug)]
struct InferArgs {
    /// A work dir written by `rdeploy deploy`.
    work_dir: PathBuf,
    #[command(flatten)]
    input: InputSource,
    /// Write each output as OUTPUT_DIR/<output_name>.npy.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// A work dir written by `rdeploy deploy`.
    work_dir: PathBuf,
    #[command(flatten)]
    input: InputSource,
    /// Untimed runs first (caches, lazy allocation, JIT).
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Timed runs (in total, over all threads).
    #[arg(long, default_value_t = 100)]
    iters: usize,
    /// Threads calling forward at once on the one loaded model (like benchmark_app's infer
    /// requests); each does the warmup, then they share the timed runs. Throughput is timed runs
    /// over wall time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    concurrency: u32,
    /// Print the measurements as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// The ONNX model (used as it is: no onnx_config).
    model: PathBuf,
    /// Backends to run, comma separated; the first is the reference.
    #[arg(long, value_delimiter = ',', required = true)]
    backends: Vec<String>,
    #[command(flatten)]
    input: InputSource,
    /// Relative tolerance: |a - b| <= atol + rtol * |b| (numpy's allclose).
    #[arg(long, default_value_t = 1e-3)]
    rtol: f64,
    /// Absolute tolerance.
    #[arg(long, default_value_t = 1e-4)]
    atol: f64,
    /// The device for every backend.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the comparison as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Print the fully merged config (as Python, or JSON with --json).
    Print {
        /// The deploy config.
        config: PathBuf,
        /// Print JSON (what json.dumps(Config.fromfile(p).to_dict()) writes).
        #[arg(long)]
        json: bool,
    },
    /// Check a config: syntax, inheritance, and the keys rdeploy acts on; list problems.
    Check {
        /// The deploy config.
        config: PathBuf,
    },
}

/// Runs the CLI with the built-in backends; returns the process exit code.
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    run_with(builtin_registry(), args)
}

/// Runs the CLI with `registry` (built-in backends plus any a third party added).
pub fn run_with(registry: Registry, args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    init_logging(&cli.log_level);
    rdeploy_core::guard::install_panic_hook();
    if let Err(e) = rdeploy_core::timing::enable_from_env() {
        eprintln!("error: {e}");
        return 2;
    }
    let mut registry = registry;
    let mut plugins = rdeploy_plugin::host::paths_from_env();
    plugins.extend(cli.plugins.iter().cloned());
    rdeploy_plugin::host::install(&mut registry, &plugins);
    match dispatch(&registry, cli.command) {
        Ok(()) => 0,
        Err(e) => {
            if is_broken_pipe(&e) {
                return 0;
            }
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            let mut msg = String::new();
            for part in chain {
                // Contexts often repeat their cause's text; print each piece once.
                if !msg.contains(&part) {
                    if !msg.is_empty() {
                        msg.push_str(": ");
                    }
                    msg.push_str(&part);
                }
            }
            eprintln!("error: {msg}");
            1
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn dispatch(registry: &Registry, cmd: Command) -> Result<()> {
    match cmd {
        Command::CheckEnv { json } => check_env(registry, json),
        Command::Deploy {
            deploy_cfg,
            model,
            work_dir,
            device,
            force,
            json,
        } => {
            let device: Device = device.parse()?;
            let spinner = progress_spinner();
            let req = workdir::DeployRequest {
                config_path: &deploy_cfg,
                model_path: &model,
                work_dir: &work_dir,
                device,
                force,
            };
            let started = Instant::now();
            let outcome = workdir::deploy(registry, &req, &|step| {
                spinner.set_message(step.to_string())
            });
            spinner.finish_and_clear();
            let outcome = outcome?;
            let m = &outcome.manifest;
            if json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(
                        &json!({"reused": outcome.reused, "work_dir": outcome.work_dir, "manifest": m})
                    )?
                ))?;
            } else {
                let verb = if outcome.reused {
                    "up to date (reused)"
                } else {
                    "deployed"
                };
                let mut s = format!(
                    "{verb}: {} for {} {} on {} in {:.2}s\n",
                    work_dir.display(),
                    m.backend,
                    m.backend_version,
                    m.device,
                    started.elapsed().as_secs_f64()
                );
                for t in &m.inputs {
                    s.push_str(&format!(
                        "  input  {}: {} {}\n",
                        t.name,
                        t.dtype,
                        t.shape_string()
                    ));
                }
                for t in &m.outputs {
                    s.push_str(&format!(
                        "  output {}: {} {}\n",
                        t.name,
                        t.dtype,
                        t.shape_string()
                    ));
                }
                for n in &m.notes {
                    s.push_str(&format!("  note   {n}\n"));
                }
                for f in &m.backend_files {
                    s.push_str(&format!("  file   {} ({} bytes)\n", f.path, f.bytes));
                }
                out(&s)?;
            }
            Ok(())
        }
        Command::Infer(a) => infer(registry, a),
        Command::Bench(a) => bench(registry, a),
        Command::Compare(a) => compare(registry, a),
        Command::Config(ConfigCmd::Print { config, json }) => {
            let cfg = rdeploy_config::Config::from_file(&config)?;
            if json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&cfg.to_json())?
                ))
            } else {
                out(&python_text(&cfg.tree))
            }
        }
        Command::Config(ConfigCmd::Check { config }) => config_check(registry, &config),
    }
}

fn progress_spinner() -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

fn check_env(registry: &Registry, json: bool) -> Result<()> {
    if json {
        let list: Vec<serde_json::Value> = registry
            .iter()
            .map(|b| {
                let check = b.check();
                json!({
                    "name": b.name(),
                    "available": check.is_ok(),
                    "version": check.as_ref().ok(),
                    "reason": check.as_ref().err(),
                    "devices": b.device_kinds(),
                })
            })
            .collect();
        let doc = json!({"rdeploy": rdeploy_core::VERSION, "backends": list});
        out(&format!("{}\n", serde_json::to_string_pretty(&doc)?))
    } else {
        let mut s = format!("rdeploy:\t{}\n", rdeploy_core::VERSION);
        for b in registry.iter() {
            s.push_str(&b.check_env_line());
            s.push('\n');
        }
        out(&s)
    }
}

fn infer(registry: &Registry, a: InferArgs) -> Result<()> {
    let (m, wrapper) = workdir::load_wrapper(registry, &a.work_dir)?;
    let named = model_inputs(&m, wrapper.as_ref(), &a.input)?;
    run_infer(&m, wrapper.as_ref(), named, &a)
}

/// Inputs from files (float32 converted where the model wants float16), or generated.
fn model_inputs(
    m: &workdir::Manifest,
    wrapper: &dyn rdeploy_core::Wrapper,
    source: &InputSource,
) -> Result<rdeploy_core::NamedTensors> {
    let (files, shapes, seed) = (&source.inputs, &source.shapes, source.random_seed);
    if files.is_empty() {
        return inputs::random_inputs(wrapper.inputs(), shapes, &m.example_shapes, seed);
    }
    if !shapes.is_empty() {
        bail!("--shape is for generated inputs; the --input files already have shapes");
    }
    let mut named = inputs::load_inputs(files, wrapper.inputs())?;
    // A float16 model (onnxruntime-fp16 with keep_io_types=False) takes the same float32
    // files as its float32 original: convert them, and say so.
    for (name, t) in named.iter_mut() {
        let want = wrapper
            .inputs()
            .iter()
            .find(|s| &s.name == name)
            .map(|s| s.dtype);
        if want == Some(rdeploy_core::DType::F16) && t.dtype() == rdeploy_core::DType::F32 {
            tracing::info!("input '{name}': converting float32 to the model's float16");
            *t = t.cast(rdeploy_core::DType::F16, rdeploy_core::Cast::Unchecked)?;
        }
    }
    Ok(named)
}

fn run_infer(
    m: &workdir::Manifest,
    wrapper: &dyn rdeploy_core::Wrapper,
    named: rdeploy_core::NamedTensors,
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
            let mut p = inputs::output_path(dir, name);
            let mut k = 1;
            while !used.insert(p.clone()) {
                p = dir.join(format!(
                    "{}_{k}.npy",
                    inputs::output_file_name(name).trim_end_matches(".npy")
                ));
                k += 1;
            }
            rdeploy_core::io::write_npy(&p, t)?;
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

/// One benchmark's measurements (milliseconds).
#[derive(serde::Serialize)]
struct BenchReport {
    backend: String,
    backend_version: String,
    device: String,
    warmup: usize,
    iters: usize,
    concurrency: u32,
    /// Engine settings in effect (precision, streams...), as the wrapper reports them.
    settings: serde_json::Map<String, serde_json::Value>,
    input_shapes: Vec<(String, Vec<usize>)>,
    latency_ms: Percentiles,
    execute_ms: Percentiles,
    /// Mean of (forward - execute): validation, ordering and naming.
    overhead_ms_mean: f64,
    throughput_per_s: f64,
}

#[derive(serde::Serialize)]
struct Percentiles {
    mean: f64,
    min: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn percentiles(mut v: Vec<f64>) -> Percentiles {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Percentiles {
        mean: v.iter().sum::<f64>() / v.len() as f64,
        min: v[0],
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: v[v.len() - 1],
    }
}

fn bench(registry: &Registry, a: BenchArgs) -> Result<()> {
    if a.iters == 0 {
        bail!("--iters must be at least 1");
    }
    let (m, wrapper) = workdir::load_wrapper(registry, &a.work_dir)?;
    let named = model_inputs(&m, wrapper.as_ref(), &a.input)?;
    let input_shapes = named
        .iter()
        .map(|(n, t)| (n.clone(), t.shape().to_vec()))
        .collect();
    let threads = a.concurrency as usize;
    let bar = indicatif::ProgressBar::new((a.warmup * threads + a.iters) as u64);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let barrier = std::sync::Barrier::new(threads);
    let w: &dyn rdeploy_core::Wrapper = wrapper.as_ref();
    // One timed call: forward, step by step, so that the engine call is timed inside the whole
    // call. Returns (forward ms, execute ms).
    let call = || -> Result<(f64, f64)> {
        let inputs = named.clone();
        let t0 = Instant::now();
        let ordered = rdeploy_core::validate_inputs(w.inputs(), inputs)?;
        let t1 = Instant::now();
        let outs = w.execute(ordered)?;
        let t2 = Instant::now();
        let named_out: Vec<(String, Tensor)> = w
            .outputs()
            .iter()
            .map(|o| o.name.clone())
            .zip(outs)
            .collect();
        let t3 = Instant::now();
        std::hint::black_box(named_out);
        Ok(((t3 - t0).as_secs_f64() * 1e3, (t2 - t1).as_secs_f64() * 1e3))
    };
    type Timed = (Vec<(f64, f64)>, Instant, Instant);
    let results: Vec<Result<Timed>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (bar, barrier, call) = (&bar, &barrier, &call);
                // Timed runs split evenly, the first threads taking the remainder.
                let n = a.iters / threads + usize::from(t < a.iters % threads);
                sc.spawn(move || -> Result<Timed> {
                    let mut warm = Ok(());
                    for _ in 0..a.warmup {
                        if let Err(e) = call() {
                            warm = Err(e);
                            break;
                        }
                        bar.inc(1);
                    }
                    // Every thread waits here even after an error, so none waits forever.
                    barrier.wait();
                    warm?;
                    let start = Instant::now();
                    let mut v = Vec::with_capacity(n);
                    for _ in 0..n {
                        v.push(call()?);
                        bar.inc(1);
                    }
                    Ok((v, start, Instant::now()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a benchmark thread panicked")))
            })
            .collect()
    });
    bar.finish_and_clear();
    let (mut latency, mut execute) = (Vec::with_capacity(a.iters), Vec::with_capacity(a.iters));
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    for r in results {
        let (v, start, end) = r?;
        for (l, e) in v {
            latency.push(l);
            execute.push(e);
        }
        first = Some(first.map_or(start, |f| f.min(start)));
        last = Some(last.map_or(end, |l| l.max(end)));
    }
    let timed_wall = match (first, last) {
        (Some(f), Some(l)) => (l - f).as_secs_f64(),
        _ => 0.0,
    };
    let overhead = latency
        .iter()
        .zip(&execute)
        .map(|(l, e)| l - e)
        .sum::<f64>()
        / latency.len() as f64;
    let report = BenchReport {
        backend: m.backend.clone(),
        backend_version: m.backend_version.clone(),
        device: wrapper.device().to_string(),
        warmup: a.warmup,
        iters: a.iters,
        concurrency: a.concurrency,
        settings: wrapper
            .settings()
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
        input_shapes,
        latency_ms: percentiles(latency),
        execute_ms: percentiles(execute),
        overhead_ms_mean: overhead,
        throughput_per_s: a.iters as f64 / timed_wall,
    };
    if a.json {
        out(&format!("{}\n", serde_json::to_string_pretty(&report)?))
    } else {
        let p = |x: &Percentiles| {
            format!(
                "mean {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  min {:.3}  max {:.3}",
                x.mean, x.p50, x.p90, x.p99, x.min, x.max
            )
        };
        out(&format!(
            "{} {} on {}, {} iterations after {} warmup, {} thread(s){}\n  forward (ms): {}\n  execute (ms): {}\n  overhead outside execute: {:.4} ms/call\n  throughput: {:.1} calls/s\n",
            report.backend,
            report.backend_version,
            report.device,
            report.iters,
            report.warmup,
            report.concurrency,
            if report.settings.is_empty() {
                String::new()
            } else {
                let kv: Vec<String> = report
                    .settings
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                format!("\n  settings: {}", kv.join(", "))
            },
            p(&report.latency_ms),
            p(&report.execute_ms),
            report.overhead_ms_mean,
            report.throughput_per_s
        ))
    }
}

/// One output of one backend against the reference backend.
#[derive(serde::Serialize)]
struct OutputDiff {
    backend: String,
    output: String,
    max_abs_diff: f64,
    max_rel_diff: f64,
    pass: bool,
    problem: Option<String>,
}

fn diff(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> (f64, f64, bool, Option<String>) {
    if got.shape() != want.shape() {
        return (
            f64::NAN,
            f64::NAN,
            false,
            Some(format!("shape {:?} vs {:?}", got.shape(), want.shape())),
        );
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let (mut abs, mut rel, mut pass) = (0f64, 0f64, true);
    for (a, b) in g.iter().zip(&w) {
        let d = (a - b).abs();
        if a.is_nan() != b.is_nan() || d > atol + rtol * b.abs() {
            pass = false;
        }
        if d.is_finite() {
            abs = abs.max(d);
            rel = rel.max(d / b.abs().max(f64::MIN_POSITIVE));
        }
    }
    let problem =
        (got.dtype() != want.dtype()).then(|| format!("dtype {} vs {}", got.dtype(), want.dtype()));
    (abs, rel, pass, problem)
}

fn compare(registry: &Registry, a: CompareArgs) -> Result<()> {
    if a.backends.len() < 2 {
        bail!(
            "--backends needs at least two backends to compare (e.g. --backends tract,onnxruntime)"
        );
    }
    let device: Device = a.device.parse()?;
    let scratch = std::env::temp_dir().join(format!("rdeploy-compare-{}", std::process::id()));
    let result = (|| -> Result<Vec<OutputDiff>> {
        let mut wrappers = Vec::new();
        for (i, name) in a.backends.iter().enumerate() {
            let be = registry.get(name)?;
            be.ensure_available()?;
            let work = scratch.join(format!("{i}-{name}"));
            std::fs::create_dir_all(&work)
                .with_context(|| format!("cannot create {}", work.display()))?;
            let cfg = rdeploy_core::DeployConfig(json!({"backend_config": {"type": be.name()}}));
            let files = be.to_backend(std::slice::from_ref(&a.model), &cfg, &work, &device)?;
            wrappers.push((
                be.name().to_string(),
                be.build_wrapper(&files, &device, &[], &[], &cfg)?,
            ));
        }
        let (_, info) = rdeploy_core::onnx::inspect_file(&a.model)?;
        let examples = info
            .inputs
            .iter()
            .map(|t| (t.name.clone(), t.concrete_shape(&Default::default())))
            .collect();
        let named = if a.input.inputs.is_empty() {
            inputs::random_inputs(
                wrappers[0].1.inputs(),
                &a.input.shapes,
                &examples,
                a.input.random_seed,
            )?
        } else {
            inputs::load_inputs(&a.input.inputs, wrappers[0].1.inputs())?
        };
        let mut results = Vec::new();
        for (name, w) in &wrappers {
            results.push((
                name.clone(),
                w.forward(named.clone())
                    .with_context(|| format!("running on {name}"))?,
            ));
        }
        let (_, reference) = &results[0];
        let mut diffs = Vec::new();
        for (name, outs) in &results[1..] {
            for ((oname, got), (_, want)) in outs.iter().zip(reference) {
                let (abs, rel, pass, problem) = diff(got, want, a.rtol, a.atol);
                diffs.push(OutputDiff {
                    backend: name.clone(),
                    output: oname.clone(),
                    max_abs_diff: abs,
                    max_rel_diff: rel,
                    pass,
                    problem,
                });
            }
        }
        Ok(diffs)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    let diffs = result?;
    let all_pass = diffs.iter().all(|d| d.pass);
    if a.json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(
                &json!({"reference": a.backends[0], "rtol": a.rtol, "atol": a.atol, "pass": all_pass, "outputs": diffs})
            )?
        ))?;
    } else {
        let mut s = format!(
            "reference: {} (rtol {}, atol {})\n",
            a.backends[0], a.rtol, a.atol
        );
        for d in &diffs {
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
    if !all_pass {
        bail!(
            "outputs differ beyond rtol {} / atol {} (see the table above)",
            a.rtol,
            a.atol
        );
    }
    Ok(())
}

fn stats(t: &Tensor) -> (f64, f64, f64) {
    let v = t.to_f64_vec();
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max, v.iter().sum::<f64>() / v.len() as f64)
}

fn config_check(registry: &Registry, path: &Path) -> Result<()> {
    let cfg = rdeploy_config::Config::from_file(path)?;
    let mut problems = Vec::new();
    match cfg.backend_type() {
        Ok(b) => {
            if let Err(e) = registry.get(&b) {
                problems.push(format!("backend_config.type: {e}"));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    if let Err(e) = cfg.onnx_config() {
        problems.push(e.to_string());
    }
    if problems.is_empty() {
        out(&format!("{}: ok\n", path.display()))
    } else {
        bail!(
            "{} has {} problem(s):\n  {}",
            path.display(),
            problems.len(),
            problems.join("\n  ")
        )
    }
}

/// The merged config written back as Python assignments (like mmengine's `pretty_text`).
fn python_text(tree: &rdeploy_config::Dict) -> String {
    use rdeploy_config::{Key, Value};
    fn lit(v: &Value, indent: usize, out: &mut String) {
        let pad = "    ".repeat(indent + 1);
        match v {
            Value::None => out.push_str("None"),
            Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&format!("{f:?}")),
            Value::Str(s) => out.push_str(&format!("{s:?}").replace('"', "'")),
            Value::List(items) | Value::Tuple(items) => {
                let (open, close) = if matches!(v, Value::List(_)) {
                    ('[', ']')
                } else {
                    ('(', ')')
                };
                out.push(open);
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    lit(x, indent, out);
                }
                if matches!(v, Value::Tuple(t) if t.len() == 1) {
                    out.push(',');
                }
                out.push(close);
            }
            Value::Dict(d) => {
                let identifiers = d.0.iter().all(|(k, _)| matches!(k, Key::Str(s) if !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_') && !s.starts_with(|c: char| c.is_ascii_digit())));
                out.push_str(if identifiers { "dict(" } else { "{" });
                for (i, (k, x)) in d.0.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    out.push_str(&pad);
                    match (identifiers, k) {
                        (true, Key::Str(s)) => out.push_str(&format!("{s}=")),
                        (_, Key::Str(s)) => {
                            out.push_str(&format!("{}: ", format!("{s:?}").replace('"', "'")))
                        }
                        (_, Key::Int(n)) => out.push_str(&format!("{n}: ")),
                    }
                    lit(x, indent + 1, out);
                }
                if !d.0.is_empty() {
                    out.push('\n');
                    out.push_str(&"    ".repeat(indent));
                }
                out.push(if identifiers { ')' } else { '}' });
            }
        }
    }
    let mut s = String::new();
    for (k, v) in &tree.0 {
        s.push_str(&format!("{} = ", k.to_json_key()));
        lit(v, 0, &mut s);
        s.push('\n');
    }
    s
}

pub(crate) fn opt_opset(model: &rdeploy_core::onnx::proto::ModelProto) -> Option<i64> {
    model
        .opset_import
        .iter()
        .find(|o| o.domain().is_empty() || o.domain() == "ai.onnx")
        .map(|o| o.version())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_and_shape_args_parse() {
        assert_eq!(
            "x=a.npy".parse::<InputArg>().unwrap(),
            InputArg {
                name: Some("x".into()),
                file: "a.npy".into()
            }
        );
        assert_eq!(
            "a.npy".parse::<InputArg>().unwrap(),
            InputArg {
                name: None,
                file: "a.npy".into()
            }
        );
        assert_eq!("d/a=b.npy".parse::<InputArg>().unwrap().name, None);
        assert!("x=".parse::<InputArg>().is_err());
        assert_eq!(
            "input:1x3x224x224".parse::<ShapeArg>().unwrap(),
            ShapeArg::Input("input".into(), vec![1, 3, 224, 224])
        );
        assert_eq!(
            "batch=4".parse::<ShapeArg>().unwrap(),
            ShapeArg::Dim("batch".into(), 4)
        );
        assert!("input:1xa".parse::<ShapeArg>().is_err());
        assert!("what".parse::<ShapeArg>().is_err());
        assert_eq!(inputs::output_file_name("out/0:1"), "out_0_1.npy");
        assert_eq!(inputs::output_file_name("../.."), "_...npy");
    }
}
