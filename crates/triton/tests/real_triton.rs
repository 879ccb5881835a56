//! The real Triton test: the `tritonserver` of the `nvidia-pytriton` wheel (installed into
//! `.venv` by `scripts/install-triton.sh`) loads `libtriton_rdeploy.so` from a backend directory
//! and serves small-cnn.onnx deployed on tract, onnxruntime, openvino, ncnn and tvm (the last two
//! Python backends, in worker processes the backend starts); NVIDIA's
//! `tritonclient` (HTTP and gRPC, the shared `tests/kserve_client.py`) checks outputs against Python
//! onnxruntime's, dynamic batching under concurrent clients, and bad requests.
//!
//! Skips (with a note) when Triton or its client is not installed, unless
//! `RDEPLOY_REQUIRE_BACKENDS` is set (CI sets it), then fails. The server is killed when the
//! test ends, also when it fails (and, through `PR_SET_PDEATHSIG`, if the test process dies).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test: a panic is a failure with its message"
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The project's Python environment (`VIRTUAL_ENV`, else the workspace's `.venv`).
fn venv() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv"))
}

/// Where Triton is installed: (tritonserver, its library folder); `Err` says what is missing.
fn find_triton(python: &Path) -> Result<(PathBuf, PathBuf), String> {
    let probe = "import importlib.util, pathlib\n\
                 import tritonclient.grpc, tritonclient.http\n\
                 spec = importlib.util.find_spec('pytriton')\n\
                 assert spec, 'the nvidia-pytriton package is not installed'\n\
                 print(pathlib.Path(spec.submodule_search_locations[0]).resolve())\n";
    let out = Command::new(python)
        .args(["-c", probe])
        .output()
        .map_err(|e| format!("running {}: {e}", python.display()))?;
    if !out.status.success() {
        // The exception's line (`ModuleNotFoundError: No module named 'tritonclient'`).
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.trim().lines().last().unwrap_or_default().to_string());
    }
    let root = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let server = root.join("tritonserver/bin/tritonserver");
    let libs = root.join("../nvidia_pytriton.libs");
    if !server.is_file() || !libs.is_dir() {
        return Err(format!(
            "{} or {} is missing",
            server.display(),
            libs.display()
        ));
    }
    Ok((server, libs))
}

/// `libtriton_rdeploy.so` as cargo built it for this test (the package's own cdylib is built
/// with its tests); when absent, built with `cargo build -p rdeploy-triton --lib`.
fn backend_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let candidates = [
        deps.join("libtriton_rdeploy.so"),
        deps.join("../libtriton_rdeploy.so"),
    ];
    let newest = |c: &[PathBuf]| {
        c.iter()
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p.clone())))
            .max()
            .map(|(_, p)| p)
    };
    if let Some(p) = newest(&candidates) {
        return p;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "rdeploy-triton", "--lib"])
        .current_dir(workspace())
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p rdeploy-triton failed");
    newest(&candidates).unwrap_or_else(|| {
        panic!(
            "libtriton_rdeploy.so not found beside {} after building it",
            exe.display()
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running tritonserver, killed when dropped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('+')).collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Waits until `GET /v2/health/ready` answers 200 (every model loaded).
    fn wait_ready(&mut self, http_port: u16) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(180) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("tritonserver exited ({status}):\n{}", self.log_tail());
            }
            if http_status(http_port, "/v2/health/ready") == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("tritonserver not ready after 180 s:\n{}", self.log_tail());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of a plain HTTP/1.0 GET on loopback, if the server answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A hand-written `config.pbtxt` for small-cnn (input `image`, output `probs`), for what
/// `rdeploy export triton` does not write: open dims, and version folders without a work dir.
fn config_pbtxt(name: &str, max_batch_size: u32, extra: &str) -> String {
    let (input_dims, output_dims) = if max_batch_size > 0 {
        ("[ 3, 32, 32 ]", "[ 10 ]")
    } else {
        // Open dims: shapes reach the backend unchecked by Triton, so the backend checks them.
        ("[ -1, -1, -1, -1 ]", "[ -1, -1 ]")
    };
    let batching = if max_batch_size > 0 {
        "dynamic_batching { max_queue_delay_microseconds: 100000 }\n"
    } else {
        ""
    };
    format!(
        "name: \"{name}\"\nbackend: \"rdeploy\"\nmax_batch_size: {max_batch_size}\n\
         input [ {{ name: \"image\", data_type: TYPE_FP32, dims: {input_dims} }} ]\n\
         output [ {{ name: \"probs\", data_type: TYPE_FP32, dims: {output_dims} }} ]\n\
         {batching}instance_group [ {{ kind: KIND_CPU, count: 1 }} ]\n{extra}"
    )
}

/// The built-in engines and the Python environment's backends (ncnn, tvm).
fn registry() -> rdeploy::Registry {
    let mut r = rdeploy::builtin_registry();
    rdeploy::install_python_backends(&mut r);
    r
}

fn deploy(backend: &str, model: &Path, work_dir: &Path) {
    let registry = registry();
    let cfg = rdeploy::Config::from_json(
        &serde_json::json!({"backend_config": {"type": backend}}),
        Path::new("<test>"),
    )
    .unwrap();
    rdeploy::deploy(
        &registry,
        &cfg,
        model,
        work_dir,
        &rdeploy::Device::cpu(),
        &rdeploy::DeployOptions::default(),
    )
    .unwrap_or_else(|e| panic!("deploying for {backend}: {}", e.report()));
}

#[test]
fn triton_serves_rdeploy_models_on_every_engine() {
    let python = venv().join("bin/python");
    let (server_bin, server_libs) = match find_triton(&python) {
        Ok(found) => found,
        Err(why) => {
            let required = std::env::var("RDEPLOY_REQUIRE_BACKENDS").unwrap_or_default();
            assert!(
                required.trim().is_empty(),
                "Triton is required (RDEPLOY_REQUIRE_BACKENDS={required}) but not usable: \
                 {why}; run scripts/install-triton.sh"
            );
            eprintln!("skipping the real Triton test: {why} (run scripts/install-triton.sh)");
            return;
        }
    };
    let onnx = workspace().join("tests/data/small-cnn.onnx");
    let dir = tempfile::tempdir().unwrap();
    let backends = dir.path().join("backends/rdeploy");
    std::fs::create_dir_all(&backends).unwrap();
    std::os::unix::fs::symlink(backend_library(), backends.join("libtriton_rdeploy.so")).unwrap();

    // The repository: one batching model per engine, deployed by rdeploy and written by
    // `rdeploy export triton`'s library function; a non-batching one with open dims (so that
    // shapes reach the backend unchecked by Triton); and two version folders holding only
    // model.onnx, deployed at load with a built-in base config and with a config file.
    let repo = dir.path().join("models");
    // The Python backends run in worker processes started by the backend inside Triton.
    let required = std::env::var("RDEPLOY_REQUIRE_BACKENDS").unwrap_or_default();
    let registry = registry();
    let mut engines = vec!["tract", "onnxruntime", "openvino"];
    for b in ["ncnn", "tvm"] {
        match registry.get(b).map(|m| m.check()) {
            Ok(Ok(_)) => engines.push(b),
            other => assert!(
                !required.split(',').any(|r| r.trim() == b),
                "{b} is required (RDEPLOY_REQUIRE_BACKENDS) but unavailable: {other:?}"
            ),
        }
    }
    let mut batched = Vec::new();
    for backend in engines.iter().copied() {
        let name = format!("cnn_{backend}");
        let work = dir.path().join("work").join(backend);
        deploy(backend, &onnx, &work);
        let options = rdeploy_serving::ExportOptions {
            name: Some(name.clone()),
            max_batch_size: 8,
            dynamic_batching: true,
            // Long enough for the concurrent clients' requests to meet in the queue.
            max_queue_delay_us: 100_000,
            // Two instances (two wrappers run at once) on one engine, one on the others.
            instances: if backend == "onnxruntime" { 2 } else { 1 },
            ..Default::default()
        };
        rdeploy_serving::export_triton(&work, &repo, &options)
            .unwrap_or_else(|e| panic!("exporting {name}: {}", e.report()));
        batched.push(name);
    }
    deploy("tract", &onnx, &repo.join("cnn_plain/1"));
    std::fs::write(
        repo.join("cnn_plain/config.pbtxt"),
        config_pbtxt("cnn_plain", 0, ""),
    )
    .unwrap();
    let param = |cfg: &str| {
        format!("parameters {{ key: \"deploy_config\" value: {{ string_value: \"{cfg}\" }} }}\n")
    };
    let mut at_load = vec![
        ("cnn_at_load_base", "configs/_base_/backends/openvino.py"),
        ("cnn_at_load_file", "deploy/ort.py"),
    ];
    if engines.contains(&"ncnn") {
        // Converted with pnnx inside Triton's process tree, by a worker of the backend.
        at_load.push(("cnn_at_load_ncnn", "configs/_base_/backends/ncnn.py"));
    }
    for (name, cfg) in at_load.iter().copied() {
        std::fs::create_dir_all(repo.join(name).join("1")).unwrap();
        std::fs::copy(&onnx, repo.join(name).join("1/model.onnx")).unwrap();
        std::fs::write(
            repo.join(name).join("config.pbtxt"),
            config_pbtxt(name, 4, &param(cfg)),
        )
        .unwrap();
    }
    std::fs::create_dir_all(repo.join("cnn_at_load_file/deploy")).unwrap();
    std::fs::write(
        repo.join("cnn_at_load_file/deploy/ort.py"),
        "backend_config = dict(type='onnxruntime')\n",
    )
    .unwrap();

    let (http_port, grpc_port, metrics_port) = (free_port(), free_port(), free_port());
    let log = dir.path().join("tritonserver.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut ld_path = server_libs.into_os_string();
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        ld_path.push(":");
        ld_path.push(old);
    }
    let mut cmd = Command::new(&server_bin);
    cmd.arg(format!("--model-repository={}", repo.display()))
        .arg(format!(
            "--backend-directory={}",
            dir.path().join("backends").display()
        ))
        .arg(format!("--http-port={http_port}"))
        .arg(format!("--grpc-port={grpc_port}"))
        .arg(format!("--metrics-port={metrics_port}"))
        .env("LD_LIBRARY_PATH", ld_path)
        // The onnxruntime and openvino engines are found in the Python environment.
        .env("VIRTUAL_ENV", venv())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the server if this
    // test's thread dies, so that no server outlives a killed test run.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut server = Server {
        child: cmd.spawn().unwrap(),
        log,
    };
    server.wait_ready(http_port);

    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/kserve_client.py"))
        .arg(format!("--http=127.0.0.1:{http_port}"))
        .arg(format!("--grpc=127.0.0.1:{grpc_port}"))
        .arg(format!("--onnx={}", onnx.display()))
        .arg(format!("--batched={}", batched.join(",")))
        .arg("--plain=cnn_plain")
        .arg(format!(
            "--other={}",
            at_load
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(",")
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Triton client failed:\n{}{}\n--- server log ---\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr),
        server.log_tail()
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&summary).unwrap());
    for model in &batched {
        let b = &summary["batching"][model];
        let (inferences, executions) = (
            b["inference_count"].as_u64().unwrap(),
            b["execution_count"].as_u64().unwrap(),
        );
        assert!(
            executions < inferences,
            "{model}: {executions} executions for {inferences} requests"
        );
    }
    // Every batched model, the plain one and those deployed at load.
    assert_eq!(
        summary["checked"].as_array().unwrap().len(),
        batched.len() + 1 + at_load.len(),
        "{summary}"
    );
}
