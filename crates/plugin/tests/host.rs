//! Loading C plugins: a good one, and each kind of bad one (wrong ABI version, missing
//! function, not a plugin, engine unavailable, run failing). The fixture is tests/fixtures/echo.c,
//! compiled here with the system C compiler (`cc`, or `$CC`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_core::{BackendManager, DeployConfig, Device, Registry, Tensor};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles echo.c with `flags` into `dir/lib<name>.so`.
fn build(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = dir.join(format!("lib{name}.so"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
        ])
        .arg(format!("-I{}", root.join("include").display()))
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(root.join("tests/fixtures/echo.c"))
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run the C compiler '{cc}' (install gcc or set CC): {e}")
        });
    assert!(status.success(), "{cc} failed on echo.c with {flags:?}");
    out
}

fn refused(path: &Path) -> String {
    match rdeploy_plugin::host::load(path) {
        Ok(m) => panic!("{} loaded as '{}'", path.display(), m.name()),
        Err(r) => {
            assert_eq!(r.path, path);
            r.reason
        }
    }
}

fn any_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/echo.c")
}

fn run_echo(m: &dyn BackendManager, work: &Path) -> rdeploy_core::Result<Vec<f32>> {
    let cfg = DeployConfig::empty();
    let files = m.to_backend(&[any_file()], &cfg, work, &Device::cpu())?;
    let w = m.build_wrapper(&files, &Device::cpu(), &[], &[], &cfg)?;
    assert_eq!(w.inputs()[0].name, "x");
    assert_eq!(w.outputs()[0].shape_string(), "[?]");
    let x = Tensor::from_shape_vec(&[3], vec![1f32, 2., 3.5])?;
    let out = w.forward(vec![("x".into(), x)])?;
    assert_eq!(out[0].0, "y");
    Ok(out[0].1.as_slice::<f32>()?.to_vec())
}

#[test]
fn a_good_plugin_runs() {
    let dir = tempfile::tempdir().unwrap();
    let m = rdeploy_plugin::host::load(&build(dir.path(), "echo", &[])).unwrap();
    assert_eq!(m.name(), "echo");
    assert_eq!(m.check(), Ok("1.2.3".to_string()));
    assert!(
        m.check_env_line().starts_with("echo:\t1.2.3 (plugin "),
        "{}",
        m.check_env_line()
    );
    assert_eq!(run_echo(m.as_ref(), dir.path()).unwrap(), [2., 4., 7.]);
    // A device the plugin does not list is refused before the plugin is asked.
    let e = m
        .build_wrapper(
            &[any_file()],
            &"cuda:0".parse().unwrap(),
            &[],
            &[],
            &DeployConfig::empty(),
        )
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cuda:0") && e.contains("cpu"), "{e}");
}

#[test]
fn wrong_abi_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = refused(&build(dir.path(), "echo99", &["-DABI=99"]));
    assert!(
        r.contains("ABI version 99") && r.contains("speaks version 1") && r.contains("rebuild"),
        "{r}"
    );
}

#[test]
fn missing_function_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = refused(&build(dir.path(), "echo_norun", &["-DOMIT_RUN"]));
    assert!(r.contains("lacks rdeploy_plugin_session_run"), "{r}");
}

#[test]
fn not_a_plugin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = refused(&any_file());
    assert!(r.starts_with("cannot load it"), "{r}");
    let r = refused(&dir.path().join("libmissing.so"));
    assert!(r.starts_with("cannot load it"), "{r}");
}

#[test]
fn plugin_errors_reach_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let m = rdeploy_plugin::host::load(&build(dir.path(), "echo_fail", &["-DFAIL_RUN"])).unwrap();
    let e = run_echo(m.as_ref(), dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("echo") && e.contains("echo ran out of coffee"),
        "{e}"
    );
    let m = rdeploy_plugin::host::load(&build(dir.path(), "echo_na", &["-DUNAVAILABLE"])).unwrap();
    let reason = m.check().unwrap_err();
    assert!(reason.contains("set ECHO_HOME"), "{reason}");
    let e = run_echo(m.as_ref(), dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("not available") && e.contains("ECHO_HOME"),
        "{e}"
    );
}

#[test]
fn bad_plugins_do_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let good = build(dir.path(), "echo", &[]);
    let abi = build(dir.path(), "echo99", &["-DABI=99"]);
    let twin = build(dir.path(), "echo_twin", &[]); // also named "echo"
    let mut registry = Registry::new();
    registry.install(&rdeploy_backend_tract::BACKEND).unwrap();
    let refusals = rdeploy_plugin::host::install(
        &mut registry,
        &[abi.clone(), good, dir.path().join("libgone.so"), twin],
    );
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert_eq!(
        registry.names(),
        ["tract", "echo99", "echo", "gone", "echo_twin"]
    );
    let line = registry.get("echo99").unwrap().check_env_line();
    assert!(
        line.starts_with("echo99:\tNone (plugin ") && line.contains("ABI version 99"),
        "{line}"
    );
    let line = registry.get("echo_twin").unwrap().check_env_line();
    assert!(line.contains("already registered"), "{line}");
    assert!(registry.get("tract").unwrap().is_available());
    let echo = registry.get("echo").unwrap();
    assert_eq!(run_echo(echo.as_ref(), dir.path()).unwrap(), [2., 4., 7.]);
}

#[test]
fn plugin_path_lists_files_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    let a = build(dir.path(), "echo", &[]);
    std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
    let other = tempfile::tempdir().unwrap();
    let b = build(other.path(), "b", &["-DNAME=\"b\""]);
    let joined = std::env::join_paths([dir.path(), &b]).unwrap();
    // SAFETY: this test binary's only test touching the environment.
    unsafe { std::env::set_var(rdeploy_plugin::host::ENV_PLUGIN_PATH, &joined) };
    assert_eq!(rdeploy_plugin::host::paths_from_env(), [a, b]);
}
