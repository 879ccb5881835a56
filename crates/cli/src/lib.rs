//! The `rdeploy` command line, as a library so that a third party's own binary can be rdeploy
//! plus its backends: build a [`Registry`] with [`builtin_registry`], register more, and call
//! [`run_with`].
//!
//! ```no_run
//! let mut registry = rdeploy_cli::builtin_registry();
//! // registry.install(&my_backend::BACKEND)?;
//! std::process::exit(rdeploy_cli::run_with(registry, std::env::args_os()));
//! ```
//!
//! Front end only: arguments (`args.rs`) and presentation (`commands/`), over the `rdeploy`
//! facade crate, which holds the pipeline and harnesses.

mod args;
mod commands;
mod inputs;
mod report;

use anyhow::Result;
use args::Cli;
use clap::Parser;
pub use rdeploy::{Registry, builtin_registry};
use std::io::Write;

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
    rdeploy::guard::install_panic_hook();
    if let Err(e) = rdeploy::timing::enable_from_env() {
        eprintln!("error: {e}");
        return 2;
    }
    let mut registry = registry;
    rdeploy::install_plugins(&mut registry, &cli.plugins);
    rdeploy::install_python_backends(&mut registry);
    match commands::dispatch(&registry, cli.command) {
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
    // tract's importer warns about a model's opset range each time it parses one, also when
    // rdeploy only uses it to infer shapes for another backend; rdeploy upgrades such models
    // for tract itself. Its other messages keep the level asked for.
    let level = if level.contains('=') {
        level.to_string()
    } else {
        format!("{level},tract_onnx::model=error")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use inputs::InputArg;
    use rdeploy::inputs::ShapeHint;

    #[test]
    fn input_and_shape_args_parse() {
        use rdeploy::{DType, TensorInfo};
        let spec = |n: &str| TensorInfo {
            name: n.into(),
            dtype: DType::F32,
            shape: None,
        };
        let resolve = |arg: &str, names: &[&str]| {
            let specs: Vec<TensorInfo> = names.iter().map(|n| spec(n)).collect();
            arg.parse::<InputArg>().unwrap().resolve(&specs)
        };
        let named = |n: &str, f: &str| (Some(n.to_string()), std::path::PathBuf::from(f));
        assert_eq!(resolve("x=a.npy", &["x"]).unwrap(), named("x", "a.npy"));
        assert_eq!(resolve("a.npy", &["x"]).unwrap(), (None, "a.npy".into()));
        // Names as converters write them: '/', ':', '=', spaces, non-ASCII.
        for n in [
            "gpu_0/data_0",
            "input_1:0",
            "/model/Conv_output_0",
            "a=b",
            "my input",
            "入力",
        ] {
            assert_eq!(
                resolve(&format!("{n}=in.npy"), &[n, "other"]).unwrap(),
                named(n, "in.npy")
            );
        }
        let e = resolve("nope=a.npy", &["x", "y"]).unwrap_err().to_string();
        assert!(
            e.contains("no input named 'nope'") && e.contains("'x', 'y'"),
            "{e}"
        );
        let e = resolve("x=", &["x"]).unwrap_err().to_string();
        assert!(e.contains("file after '=' is missing"), "{e}");
        // 'a' with file 'b=c.npy', or 'a=b' with file 'c.npy': ambiguous unless one file exists.
        let e = resolve("a=b=c.npy", &["a", "a=b"]).unwrap_err().to_string();
        assert!(
            e.contains("ambiguous") && e.contains("input 'a=b' from file 'c.npy'"),
            "{e}"
        );
        assert!("".parse::<InputArg>().is_err());
        assert_eq!(
            "input:1x3x224x224".parse::<ShapeHint>().unwrap(),
            ShapeHint::Input("input".into(), vec![1, 3, 224, 224])
        );
        assert_eq!(
            "batch=4".parse::<ShapeHint>().unwrap(),
            ShapeHint::Dim("batch".into(), 4)
        );
        assert!("input:1xa".parse::<ShapeHint>().is_err());
        assert!("what".parse::<ShapeHint>().is_err());
        assert_eq!(inputs::output_file_name("out/0:1"), "out_0_1.npy");
        assert_eq!(inputs::output_file_name("../.."), "_...npy");
    }
}
