//! One module per command; each prints its result (text, or JSON with `--json`) on stdout.

mod bench;
mod check_env;
mod compare;
mod config;
mod conformance;
mod deploy;
mod export;
mod infer;
mod inspect;
mod rewrite;
mod serve;

pub(crate) use bench::{profile_table, ranked};

use crate::args::{Command, ConfigCmd, ExportCmd, InputSource};
use anyhow::{Result, bail};
use rdeploy::inputs::random_inputs;
use rdeploy::{Manifest, Registry};
use std::path::Path;

/// Runs one parsed command.
pub(crate) fn dispatch(registry: &Registry, cmd: Command) -> Result<()> {
    match cmd {
        Command::CheckEnv { json } => check_env::run(registry, json),
        Command::Deploy(a) => deploy::run(registry, a),
        Command::Infer(a) => infer::run(registry, a),
        Command::Bench(a) => bench::run(registry, a),
        Command::Compare(a) => compare::run(registry, a),
        Command::Inspect(a) => inspect::run(a),
        Command::Config(ConfigCmd::Print { config, json }) => config::print(&config, json),
        Command::Config(ConfigCmd::Check { config }) => config::check(registry, &config),
        Command::Rewrite(a) => rewrite::run(registry, a),
        Command::Export(ExportCmd::Triton(a)) => export::triton(a),
        Command::Conformance(a) => conformance::run(registry, a),
        Command::ConformanceWorker {
            backend,
            scratch,
            config,
        } => conformance::worker(registry, &backend, &scratch, config.as_deref()),
        Command::Serve(a) => serve::run(registry, a),
    }
}

/// A temporary folder `<tmp>/<prefix><pid>-XXXX`, removed when dropped. Folders of the same
/// prefix left by an rdeploy that is gone (Ctrl-C, SIGTERM or SIGKILL end a process without
/// running drops) are removed first: their pid is no longer running (`/proc/<pid>`).
///
/// # Errors
/// Creating the folder.
pub(crate) fn scratch_dir(prefix: &str) -> Result<tempfile::TempDir> {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(prefix) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(tempfile::Builder::new()
        .prefix(&format!("{prefix}{}-", std::process::id()))
        .tempdir_in(&tmp)?)
}

/// A spinner on stderr for steps of unknown length.
pub(crate) fn progress_spinner() -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Inputs from files (float32 converted where the model wants float16), or generated.
pub(crate) fn model_inputs(
    m: &Manifest,
    wrapper: &dyn rdeploy::Wrapper,
    source: &InputSource,
) -> Result<rdeploy::NamedTensors> {
    let (files, shapes, seed) = (&source.inputs, &source.shapes, source.random_seed);
    if files.is_empty() {
        // The manifest's dims carry the model's names (`batch`); an engine may report its
        // dynamic dims unnamed (OpenVINO), and `--shape batch=4` must reach it too.
        let specs: Vec<rdeploy::TensorInfo> = wrapper
            .inputs()
            .iter()
            .map(|s| {
                m.inputs
                    .iter()
                    .find(|t| t.name == s.name && t.dtype == s.dtype && t.shape.is_some())
                    .cloned()
                    .unwrap_or_else(|| s.clone())
            })
            .collect();
        for h in shapes {
            if let rdeploy::inputs::ShapeHint::Dim(d, _) = h {
                let known: Vec<&str> = specs
                    .iter()
                    .flat_map(|t| t.shape.iter().flatten())
                    .filter_map(|x| match x {
                        rdeploy::Dim::Symbolic(n) if !n.is_empty() => Some(n.as_str()),
                        _ => None,
                    })
                    .collect();
                if !known.contains(&d.as_str()) {
                    bail!(
                        "--shape {d}=...: no input has a dim named '{d}' (named dims: {})",
                        if known.is_empty() {
                            "none; give a whole shape, INPUT:1x3x224x224".to_string()
                        } else {
                            known.join(", ")
                        }
                    );
                }
            }
        }
        return Ok(random_inputs(&specs, shapes, &m.example_shapes, seed)?);
    }
    if !shapes.is_empty() {
        bail!("--shape is for generated inputs; the --input files already have shapes");
    }
    let mut named = crate::inputs::load_inputs(files, wrapper.inputs())?;
    // A float16 model (onnxruntime-fp16 with keep_io_types=False) takes the same float32
    // files as its float32 original: convert them, and say so. The same for the narrower
    // floats (bfloat16, float8, float4), which NumPy cannot hold without ml_dtypes.
    for (name, t) in named.iter_mut() {
        let want = wrapper
            .inputs()
            .iter()
            .find(|s| &s.name == name)
            .map(|s| s.dtype);
        if let Some(want) = want
            && want.is_float()
            && want.size() < 4
            && t.dtype() == rdeploy::DType::F32
        {
            tracing::info!("input '{name}': converting float32 to the model's {want}");
            *t = t.cast(want, rdeploy::Cast::Unchecked)?;
        }
    }
    Ok(named)
}
