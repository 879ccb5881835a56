//! The command line's arguments (clap types); each command's code is in `commands/`.

use crate::inputs::InputArg;
use clap::{Args, Parser, Subcommand};
use rdeploy::inputs::ShapeHint;
use std::path::PathBuf;

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
pub struct Cli {
    /// Log level for messages on stderr: error, warn, info, debug or trace.
    #[arg(long, global = true, default_value = "info", env = "RDEPLOY_LOG")]
    pub log_level: String,

    /// Load a backend plugin (a shared library built against rdeploy_plugin.h); repeatable.
    /// RDEPLOY_PLUGIN_PATH (files or folders of *.so, `:`-separated) adds more. A plugin that
    /// cannot be loaded is listed by check-env with the reason; other backends still work.
    #[arg(long = "plugin", value_name = "FILE", global = true)]
    pub plugins: Vec<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
    Deploy(DeployArgs),
    /// Run a deployed model on inputs and write its outputs.
    Infer(InferArgs),
    /// Measure a deployed model: latency percentiles, throughput, and the time inside the
    /// engine call (execute) against the whole forward (validation and naming included).
    Bench(BenchArgs),
    /// Run one model on several backends with the same inputs and compare their outputs to
    /// the first backend's: max abs/rel difference per output, pass/fail by rtol/atol.
    /// Exit code 1 when any output differs beyond the tolerance.
    Compare(CompareArgs),
    /// Describe an ONNX model: inputs and outputs, opsets, operators, parameters, and the
    /// compute of one run (FLOPs per operator at concrete input shapes: symbolic dims from
    /// --shape, else 1). Conventions: one multiply-add = 2 FLOPs; multiply-adds of Conv,
    /// ConvTranspose, Gemm and MatMul are the figure model zoos publish.
    Inspect(InspectArgs),
    /// Deploy configs: print the merged result, or check it.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Run the graph passes a deploy would run for a backend (opset upgrade, rewrite rules,
    /// fp16) on a model alone and write the result, or list the passes and rules.
    ///
    /// The output is plain ONNX any tool can open. Rules are switched per deploy config with
    /// rewrite_config = dict(disable=[...], enable=[...]); see docs/rewrites.md.
    Rewrite(RewriteArgs),
    /// Serve a work dir, or a Triton-layout model repository of work dirs, over the Open
    /// Inference Protocol (KServe v2): HTTP and gRPC, as KServe and Triton clients speak it.
    ///
    /// HTTP: /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME[/versions/V][/ready|/config|/stats],
    /// POST /v2/models/NAME[/versions/V]/infer (JSON tensors or the binary data extension),
    /// /metrics (Prometheus). gRPC: inference.GRPCInferenceService. A repository's
    /// config.pbtxt sets each model's max_batch_size, dynamic_batching and instance_group.
    /// Listens on loopback unless --host says otherwise; SIGINT/SIGTERM stop accepting and
    /// finish requests in flight. See docs/serving.md.
    Serve(ServeArgs),
    /// Write a deployed work dir into a serving engine's model layout.
    #[command(subcommand)]
    Export(ExportCmd),
    /// Run the ONNX backend test suite through rdeploy on each backend (deploy, load, forward,
    /// compare with the expected outputs at each case's rtol/atol) and classify every case:
    /// pass, wrong, unsupported (refused at deploy or load), error (the call failed), timeout,
    /// crash. Cases run in worker processes with a time limit each: an engine that aborts or
    /// hangs loses one case, not the run.
    ///
    /// The cases come from scripts/prepare-conformance.py (the `onnx` wheel's node tests
    /// serialised once, with each case's tolerances). --markdown writes docs/conformance.md,
    /// --readme updates the README's summary table. Exit code 0 when the run completed,
    /// whatever the cases' results.
    Conformance(ConformanceArgs),
    /// (internal) The worker process of `rdeploy conformance`: runs the case folders named on
    /// stdin, one JSON line each on stdout.
    #[command(hide = true)]
    ConformanceWorker {
        /// The backend every case runs on.
        #[arg(long)]
        backend: String,
        /// A folder for the deploys, emptied after each case.
        #[arg(long)]
        scratch: PathBuf,
        /// The deploy config every case is deployed with.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Which cases `rdeploy conformance` runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// One operator per case (about 1,900 cases in onnx 1.23).
    Node,
    /// The small models the `onnx` wheel ships (PyTorch exports, simple graphs).
    Models,
    /// Both.
    All,
}

#[derive(Args, Debug)]
pub struct ConformanceArgs {
    /// Backends, comma separated, or `all` (every available one).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub backends: Vec<String>,
    /// The cases to run.
    #[arg(long, value_enum, default_value = "node")]
    pub suite: Suite,
    /// A deploy config every case is deployed with (its backend_config.type is replaced by
    /// each backend), e.g. to run the suite with an engine setting or precision.
    #[arg(long, value_name = "CFG")]
    pub config: Option<PathBuf>,
    /// Only cases whose name matches this regular expression (e.g. '^test_(conv|gemm)').
    #[arg(long, value_name = "REGEX")]
    pub filter: Option<String>,
    /// Only every Nth case (after --filter), for a quick sample of the whole suite.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,
    /// Worker processes at once (default: the number of CPUs).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: Option<u64>,
    /// Seconds one case may take (deploy, load and run) before its worker is killed.
    #[arg(long, default_value = "60", value_name = "SECONDS", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Where scripts/prepare-conformance.py wrote the cases (its --out).
    #[arg(long, default_value = "target/conformance", value_name = "DIR")]
    pub dir: PathBuf,
    /// Print every case's result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the report (summary, pass counts by operator, failing operators per backend).
    #[arg(long, value_name = "OUT.md")]
    pub markdown: Option<PathBuf>,
    /// Write the per-case results (case -> backend -> class) as JSON, the form
    /// docs/conformance.json is committed in.
    #[arg(long, value_name = "OUT.json")]
    pub results: Option<PathBuf>,
    /// Replace the summary table between `<!-- conformance:start -->` and
    /// `<!-- conformance:end -->` in this file (the README).
    #[arg(long, value_name = "README.md")]
    pub readme: Option<PathBuf>,
    /// The engine's own result on the same cases, from scripts/conformance-native.py --json:
    /// BACKEND=FILE.json (repeatable); the report puts the rates side by side and lists every
    /// case the engine passes natively but not through rdeploy.
    #[arg(long, value_name = "BACKEND=FILE.json")]
    pub native: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A work dir (holding deploy.json), or a model repository (<model>/config.pbtxt and
    /// <model>/<version>/ work dirs, as `rdeploy export triton` writes).
    pub path: PathBuf,
    /// Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// HTTP port.
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// gRPC port.
    #[arg(long, default_value_t = 8001)]
    pub grpc_port: u16,
    /// Serve HTTP only.
    #[arg(long)]
    pub no_grpc: bool,
    /// Require `Authorization: Bearer <TOKEN>` (gRPC metadata `authorization`) on every
    /// request but the health checks.
    #[arg(long, env = "RDEPLOY_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Largest request body (HTTP) or message (gRPC) in bytes; larger get 413 /
    /// OUT_OF_RANGE.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_request_bytes: usize,
    /// Seconds a request may wait for its answer (queue + engine); later get 504 /
    /// DEADLINE_EXCEEDED.
    #[arg(long, default_value_t = 60.0)]
    pub request_timeout: f64,
    /// Requests that may wait per model version (when its config sets no
    /// default_queue_policy.max_queue_size); more get 503 / UNAVAILABLE.
    #[arg(long, default_value_t = 256)]
    pub queue_size: usize,
    /// Seconds connections may take to finish after SIGINT/SIGTERM before the server exits
    /// anyway.
    #[arg(long, default_value_t = 30.0)]
    pub shutdown_grace: f64,
    /// For a single work dir: the model's name (default: the folder's name).
    #[arg(long)]
    pub name: Option<String>,
    /// For a single work dir: largest batch per engine call (0 = no batching).
    #[arg(long, default_value_t = 0)]
    pub max_batch_size: usize,
    /// For a single work dir: model instances (engine wrappers) running at once (1-64).
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// For a single work dir: join queued requests into batches (needs --max-batch-size).
    #[arg(long)]
    pub dynamic_batching: bool,
    /// For a single work dir: microseconds a batch waits to fill.
    #[arg(long, default_value_t = 100)]
    pub max_queue_delay_us: u64,
}

#[derive(Subcommand, Debug)]
pub enum ExportCmd {
    /// Write a Triton Inference Server model repository entry for a work dir:
    /// <REPO>/<NAME>/config.pbtxt and the version folder <REPO>/<NAME>/<VERSION>/.
    ///
    /// With --platform rdeploy (default) the entry uses rdeploy's Triton backend
    /// (libtriton_rdeploy.so, backend: "rdeploy") and the version folder is the work dir, served
    /// on its deployed engine. With --platform native it uses Triton's own backend:
    /// onnxruntime_onnx with model.onnx for onnxruntime work dirs, openvino with
    /// model.xml/model.bin for openvino ones. The version folder is assembled beside its place
    /// and renamed in, so a failed export leaves nothing half-written. See docs/serving.md.
    Triton(ExportTritonArgs),
}

#[derive(Args, Debug)]
pub struct ExportTritonArgs {
    /// The deployed work dir (holding deploy.json).
    pub work_dir: PathBuf,
    /// The model repository (created if missing).
    #[arg(long)]
    pub repo: PathBuf,
    /// The model's name in the repository (default: the work dir's folder name).
    #[arg(long)]
    pub name: Option<String>,
    /// The version folder, a positive integer.
    #[arg(long, default_value_t = 1)]
    pub version: u64,
    /// Largest batch Triton sends per execution; 0 = no batching. Above 0 the first dim of
    /// every input and output must be variable and is left out of the config's dims.
    #[arg(long, default_value_t = 0)]
    pub max_batch_size: usize,
    /// Model instances Triton runs at once (instance_group count, KIND_CPU).
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Turn on Triton's dynamic batcher (needs --max-batch-size > 0).
    #[arg(long)]
    pub dynamic_batching: bool,
    /// How long the dynamic batcher waits for a batch to fill, in microseconds.
    #[arg(long, default_value_t = 100)]
    pub max_queue_delay_us: u64,
    /// rdeploy (rdeploy's Triton backend) or native (Triton's onnxruntime/openvino backends).
    #[arg(long, default_value = "rdeploy", value_parser = ["rdeploy", "native"])]
    pub platform: String,
    /// Replace an existing version folder, and a config.pbtxt with other settings.
    #[arg(long)]
    pub force: bool,
    /// Print JSON (paths and the config) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RewriteArgs {
    /// The ONNX model (not needed with --list).
    #[arg(required_unless_present = "list")]
    pub model: Option<PathBuf>,
    /// The backend whose passes and rules run (tract, onnxruntime, openvino, a plugin's);
    /// the engine itself need not be installed.
    #[arg(long, required_unless_present = "list")]
    pub backend: Option<String>,
    /// Where to write the rewritten model (written atomically).
    #[arg(short = 'o', long = "output", required_unless_present = "list")]
    pub output: Option<PathBuf>,
    /// Run only these passes or rules, in this order (comma separated): opset_upgrade, fp16,
    /// or rule names from --list.
    #[arg(long, value_delimiter = ',')]
    pub passes: Option<Vec<String>>,
    /// Upgrade to this default-domain opset (any model below it), as
    /// rewrite_config.opset_upgrade.target does.
    #[arg(long, value_name = "OPSET")]
    pub target_opset: Option<i64>,
    /// A deploy config whose backend_config/rewrite_config the passes read (its
    /// backend_config.type is replaced by --backend).
    #[arg(long, value_name = "CFG")]
    pub config: Option<PathBuf>,
    /// List the passes and rewrite rules (for --backend only, when given) and exit.
    #[arg(long)]
    pub list: bool,
    /// Print JSON on stdout (the list, or the pass records).
    #[arg(long)]
    pub json: bool,
}

/// `rdeploy deploy`'s arguments.
#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The deploy config (.py as in MMDeploy, .toml or .json).
    pub deploy_cfg: PathBuf,
    /// The ONNX model.
    pub model: PathBuf,
    /// Where to write the backend files and manifest.
    #[arg(long)]
    pub work_dir: PathBuf,
    /// The device to convert for: cpu, cuda, cuda:1 ...
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Rebuild even if the work dir is up to date.
    #[arg(long)]
    pub force: bool,
    /// Print the manifest as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Where a command's model inputs come from: files, or generated from the signature. Shared by
/// `infer`, `bench` and `compare`.
#[derive(Args, Debug)]
pub struct InputSource {
    /// An input: NAME=FILE, or FILE alone when the model has one input or the file names its
    /// tensors (.npz entries, TensorProto names). FILE is .npy, .npz or ONNX TensorProto .pb.
    /// Repeat for several inputs. Without --input, inputs are generated from the signature.
    #[arg(long = "input", short = 'i', value_name = "NAME=FILE")]
    pub inputs: Vec<InputArg>,
    /// Shape for generated inputs with symbolic dims: INPUT:1x3x224x224, or DIM=N (batch=4).
    #[arg(long = "shape", value_name = "INPUT:DIMS|DIM=N")]
    pub shapes: Vec<ShapeHint>,
    /// Seed for generated inputs (floats uniform in [0,1), integers in [0,2)).
    #[arg(long, default_value_t = 0)]
    pub random_seed: u64,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The ONNX model.
    #[arg(value_name = "MODEL.onnx")]
    pub model: PathBuf,
    /// Sizes for symbolic input dims: INPUT:1x3x224x224, or DIM=N (batch=4); others are 1.
    #[arg(long = "shape", value_name = "INPUT:DIMS|DIM=N")]
    pub shapes: Vec<ShapeHint>,
    /// Also list this many nodes with the most FLOPs.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub top: usize,
    /// Print everything as JSON on stdout (every node's cost included).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InferArgs {
    /// A work dir written by `rdeploy deploy`.
    pub work_dir: PathBuf,
    #[command(flatten)]
    pub input: InputSource,
    /// Write each output as OUTPUT_DIR/<output_name>.npy.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A work dir written by `rdeploy deploy` (benchmarked on its backend), or an ONNX model:
    /// then it is deployed for each of --backends into a temporary folder and they are ranked
    /// on the same inputs, their timed calls interleaved (--rounds) so machine noise falls on
    /// all alike.
    #[arg(value_name = "WORK_DIR|MODEL.onnx")]
    pub work_dir: PathBuf,
    /// With a model: the backends to rank, comma separated, or `all` (every available one;
    /// the default).
    #[arg(long, value_delimiter = ',')]
    pub backends: Option<Vec<String>>,
    /// With a model: a deploy config for every backend (its backend_config.type is replaced).
    #[arg(long, value_name = "CFG")]
    pub config: Option<PathBuf>,
    /// With a model: engine threads for every backend (tract num_threads, ONNX Runtime
    /// intra_op_num_threads, OpenVINO inference_num_threads), for a fair comparison.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// The timed calls of each backend and setting are split into this many blocks, run in
    /// turn across backends (the order rotating every round).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,
    #[command(flatten)]
    pub input: InputSource,
    /// Untimed runs first, per thread (caches, lazy allocation, JIT).
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Timed runs per backend and setting (in total, over all threads).
    #[arg(long, default_value_t = 100)]
    pub iters: usize,
    /// Instead of --iters: run each backend and setting for this many seconds (split over
    /// the rounds), e.g. 10 or 2.5.
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration, conflicts_with = "iters")]
    pub duration: Option<std::time::Duration>,
    /// Threads calling forward at once on the one loaded model (like benchmark_app's infer
    /// requests); each does the warmup, then they share the timed runs. Throughput is timed
    /// runs over wall time. A list (1,2,4) benchmarks each.
    #[arg(long, value_delimiter = ',', default_value = "1",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: Vec<u32>,
    /// Batch sizes to benchmark, e.g. 1,8: each input's first dim is set to N (a batch-1 input
    /// repeated); the model needs a dynamic batch axis. Default: the inputs as they are.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub batch: Vec<u64>,
    /// Write a self-contained HTML report (latency distributions, the comparison chart,
    /// settings and versions; no network needed to view it).
    #[arg(long, value_name = "OUT.html")]
    pub report: Option<PathBuf>,
    /// Also time each operator with the engine's own profiler (ONNX Runtime's profiling JSON,
    /// OpenVINO's per-layer counters, tract's per-node timing) at the first setting, mapped
    /// back to the model's ONNX operators in one table.
    #[arg(long)]
    pub profile_ops: bool,
    /// With a model: try each backend with its main knobs (engine threads 1 and all cores;
    /// ONNX Runtime's graph_optimization_level and execution_mode; OpenVINO's
    /// performance_hint), all interleaved in one run, and write the fastest (p50 at the first
    /// setting) as a deploy config (--tune-out).
    #[arg(long, conflicts_with = "threads")]
    pub tune: bool,
    /// Where --tune writes the winning deploy config (MMDeploy's Python form).
    #[arg(long, value_name = "CFG.py", default_value = "tuned.py")]
    pub tune_out: PathBuf,
    /// Profiled calls per backend with --profile-ops (after one warm-up call).
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub profile_runs: u64,
    /// Print the measurements as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds (e.g. 10 or 2.5)"))?;
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero() && secs <= 86_400.0)
        .ok_or_else(|| format!("'{s}': give a duration above 0 and at most 86400 seconds"))
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The ONNX model (used as it is: no onnx_config), or a work dir: then its own deployed
    /// engine is the reference and its end2end.onnx is deployed for each of --backends.
    #[arg(value_name = "MODEL.onnx|WORK_DIR")]
    pub model: PathBuf,
    /// Backends to run, comma separated; the first is the reference (with a work dir,
    /// --expected or --against, one is enough).
    #[arg(long, value_delimiter = ',')]
    pub backends: Vec<String>,
    #[command(flatten)]
    pub input: InputSource,
    /// Another ONNX model (an fp16 or optimised copy, a re-export) to compare with MODEL: MODEL
    /// on the first backend (or the work dir) is the reference, OTHER runs on every backend; a
    /// work dir runs on its own deployed engine.
    #[arg(long, value_name = "OTHER.onnx|WORK_DIR", conflicts_with = "expected")]
    pub against: Option<PathBuf>,
    /// Expected outputs to compare every backend with: a .npz (by output name), or a folder of
    /// output_N.pb / .npy files (ONNX's test_data_set_N layout; its input_N.pb are the inputs
    /// unless --input is given).
    #[arg(long, value_name = "OUTPUTS.npz|DIR")]
    pub expected: Option<PathBuf>,
    /// Relative tolerance for every output: |a - b| <= atol + rtol * |b| (numpy's allclose).
    /// Default per output dtype: float32 1e-3, float16 1e-2, float64 1e-5, integers 0.
    #[arg(long)]
    pub rtol: Option<f64>,
    /// Absolute tolerance for every output. Default per dtype: float32 1e-4, float16 1e-3,
    /// float64 1e-8, integers 0.
    #[arg(long)]
    pub atol: Option<f64>,
    /// Tolerances of one output, over the others: NAME=RTOL,ATOL (repeatable).
    #[arg(long = "tol", value_name = "NAME=RTOL,ATOL", value_parser = parse_tol)]
    pub tol: Vec<(String, f64, f64)>,
    /// On a failure, find the first node whose output diverges: every intermediate value
    /// becomes an output of a copy of the model(s), compared in graph order (with --against:
    /// the two models on the first backend; else the first two backends).
    #[arg(long, conflicts_with = "expected")]
    pub bisect: bool,
    /// The device for every backend.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Print the comparison as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
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

/// `NAME=RTOL,ATOL` of `compare --tol`.
fn parse_tol(s: &str) -> Result<(String, f64, f64), String> {
    let (name, v) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("'{s}': use NAME=RTOL,ATOL, e.g. probs=1e-2,1e-3"))?;
    let (r, a) = v
        .split_once(',')
        .ok_or_else(|| format!("'{s}': use NAME=RTOL,ATOL, e.g. probs=1e-2,1e-3"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("'{s}': '{x}' is not a tolerance (a number >= 0)"))
    };
    Ok((name.to_string(), num(r)?, num(a)?))
}
