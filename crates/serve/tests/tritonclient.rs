//! `rdeploy serve` with the official client: small-cnn.onnx deployed on tract, onnxruntime,
//! openvino, and the Python backends ncnn and tvm (in worker processes), served in-process over real sockets, and NVIDIA's `tritonclient` (HTTP and gRPC,
//! the shared `tests/kserve_client.py`) checks every output against Python onnxruntime,
//! dynamic batching under 16 concurrent clients (executions < requests), and bad requests.
//! Then a graceful shutdown: a request in flight when shutdown begins still gets its answer.
//!
//! Skips (with a note) when tritonclient is not installed, unless `RDEPLOY_REQUIRE_BACKENDS`
//! is set (CI sets it), then fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test: a panic is a failure with its message"
)]

use rdeploy_serve::{ServeOptions, State};
use rdeploy_serving::{ExportOptions, Repository, export_triton};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv"))
        .join("bin/python")
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The built-in engines and the Python environment's backends (ncnn, tvm: worker processes).
fn registry() -> rdeploy::Registry {
    let mut r = rdeploy::builtin_registry();
    rdeploy::install_python_backends(&mut r);
    r
}

/// The engines to serve: the built-in three, and ncnn and tvm when available (a failure when
/// RDEPLOY_REQUIRE_BACKENDS names one that is not).
fn engines(registry: &rdeploy::Registry) -> Vec<&'static str> {
    let required = std::env::var("RDEPLOY_REQUIRE_BACKENDS").unwrap_or_default();
    let mut v = vec!["tract", "onnxruntime", "openvino"];
    for b in ["ncnn", "tvm"] {
        match registry.get(b).map(|m| m.check()) {
            Ok(Ok(_)) => v.push(b),
            other => {
                assert!(
                    !required.split(',').any(|r| r.trim() == b),
                    "{b} is required (RDEPLOY_REQUIRE_BACKENDS) but unavailable: {other:?}"
                );
                eprintln!("not serving {b}: unavailable");
            }
        }
    }
    v
}

fn deploy(backend: &str, work_dir: &Path) {
    let cfg = rdeploy::Config::from_json(
        &serde_json::json!({"backend_config": {"type": backend}}),
        Path::new("<test>"),
    )
    .unwrap();
    rdeploy::deploy(
        &registry(),
        &cfg,
        &workspace().join("tests/data/small-cnn.onnx"),
        work_dir,
        &rdeploy::Device::cpu(),
        &rdeploy::DeployOptions::default(),
    )
    .unwrap_or_else(|e| panic!("deploying for {backend}: {}", e.report()));
}

/// A server running on its own runtime thread; `stop()` triggers the graceful shutdown and
/// waits for `serve` to return.
struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Running {
    fn start(state: Arc<State>) -> Running {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(rdeploy_serve::serve(state, async move {
                let _ = rx.await;
            }))
        });
        Running {
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    fn stop(&mut self) -> Result<(), String> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.thread.take().map_or(Ok(()), |t| t.join().unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn wait_ready(addr: SocketAddr) {
    for _ in 0..200 {
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = write!(
                s,
                "GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            let mut r = String::new();
            let _ = s.read_to_string(&mut r);
            if r.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("rdeploy serve on {addr} not ready");
}

/// Whether the Python modules `imports` load in the project's environment: `false` (skip,
/// with a note) when they do not, unless `RDEPLOY_REQUIRE_BACKENDS` is set (CI), then a failure
/// naming what is missing.
fn python_has(imports: &str) -> bool {
    let probe = Command::new(python())
        .args(["-c", &format!("import {imports}")])
        .output();
    if probe.as_ref().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let why = probe
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_else(|e| e.to_string());
    let required = std::env::var("RDEPLOY_REQUIRE_BACKENDS").unwrap_or_default();
    assert!(
        required.trim().is_empty(),
        "tritonclient is required (RDEPLOY_REQUIRE_BACKENDS={required}): {why}; run scripts/install-triton.sh"
    );
    eprintln!("skipping: {why} (run scripts/install-triton.sh)");
    false
}

#[test]
fn tritonclient_gets_onnxruntimes_outputs_from_rdeploy_serve() {
    if !python_has("tritonclient.grpc, tritonclient.http, onnxruntime") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("models");
    let mut batched = Vec::new();
    let registry = registry();
    for backend in engines(&registry) {
        let work = dir.path().join("work").join(backend);
        deploy(backend, &work);
        let name = format!("cnn_{backend}");
        let options = ExportOptions {
            name: Some(name.clone()),
            max_batch_size: 8,
            dynamic_batching: true,
            max_queue_delay_us: 100_000,
            instances: if backend == "onnxruntime" { 2 } else { 1 },
            ..Default::default()
        };
        export_triton(&work, &repo, &options)
            .unwrap_or_else(|e| panic!("exporting {name}: {}", e.report()));
        batched.push(name);
    }
    // No config.pbtxt: made from the work dir's manifest (max_batch_size 0).
    deploy("tract", &repo.join("cnn_plain/1"));

    let max_request_bytes = 1 << 20;
    let (http, grpc) = (free_addr(), free_addr());
    let options = ServeOptions {
        http,
        grpc: Some(grpc),
        max_request_bytes,
        shutdown_grace: Duration::from_secs(3),
        ..Default::default()
    };
    let r = Repository::open(&repo, &ExportOptions::default()).unwrap();
    let state = Arc::new(State::load(&r, &registry, options).unwrap());
    let mut server = Running::start(state.clone());
    wait_ready(http);

    let out = Command::new(python())
        .arg(workspace().join("tests/kserve_client.py"))
        .arg("--server=rdeploy")
        .arg(format!("--http={http}"))
        .arg(format!("--grpc={grpc}"))
        .arg(format!(
            "--onnx={}",
            workspace().join("tests/data/small-cnn.onnx").display()
        ))
        .arg(format!("--batched={}", batched.join(",")))
        .arg("--plain=cnn_plain")
        .arg(format!("--max-request-bytes={max_request_bytes}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kserve_client.py failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", stdout.lines().last().unwrap_or_default());

    // Graceful shutdown: a request waiting in the batcher (100 ms queue delay) when shutdown
    // begins still gets its 200; then the server returns and the port is closed.
    let body = serde_json::json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": vec![0.5; 3072]}]}).to_string();
    // A client stalled mid-headers must not keep the server alive past the shutdown grace.
    let mut stalled = TcpStream::connect(http).unwrap();
    write!(stalled, "GET /v2/hea").unwrap();
    let mut s = TcpStream::connect(http).unwrap();
    write!(s, "POST /v2/models/cnn_tract/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let stopping = std::thread::spawn(move || server.stop());
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "in-flight request during shutdown: {answer}"
    );
    let t0 = std::time::Instant::now();
    stopping.join().unwrap().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "shutdown waited {:?} for a stalled client",
        t0.elapsed()
    );
    drop(stalled);
    assert!(
        TcpStream::connect(http).is_err(),
        "still accepting after shutdown"
    );
    assert!(!state.ready());
}

/// The `native` entries parse with Triton's own compiled `model_config.proto`
/// (`tritonclient.grpc.model_config_pb2`) and describe the work dir's signature.
#[test]
fn native_configs_parse_with_tritons_model_config_proto() {
    if !python_has("tritonclient.grpc.model_config_pb2") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("models");
    for (backend, platform, file) in [
        ("onnxruntime", "onnxruntime_onnx", "model.onnx"),
        ("openvino", "openvino", "model.xml"),
    ] {
        let work = dir.path().join(backend);
        deploy(backend, &work);
        let name = format!("native_{backend}");
        let opts = ExportOptions {
            name: Some(name.clone()),
            platform: rdeploy_serving::Platform::Native,
            max_batch_size: 4,
            dynamic_batching: true,
            ..Default::default()
        };
        let e = export_triton(&work, &repo, &opts).unwrap();
        assert!(
            e.version_dir.join(file).is_file(),
            "{file} in {}",
            e.version_dir.display()
        );
        let manifest = rdeploy::WorkDir::open(&work).unwrap().manifest;
        let script = r#"
import json, sys
from google.protobuf import text_format
import tritonclient.grpc.model_config_pb2 as mc
c = text_format.Parse(open(sys.argv[1]).read(), mc.ModelConfig())
print(json.dumps({"platform": c.platform or c.backend, "max_batch_size": c.max_batch_size,
  "inputs": [[t.name, mc.DataType.Name(t.data_type), list(t.dims)] for t in c.input],
  "outputs": [[t.name, mc.DataType.Name(t.data_type), list(t.dims)] for t in c.output],
  "delay": c.dynamic_batching.max_queue_delay_microseconds}))
"#;
        let out = Command::new(python())
            .args(["-c", script])
            .arg(e.model_dir.join("config.pbtxt"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let sig = |ts: &[rdeploy::core::TensorInfo]| -> serde_json::Value {
            ts.iter()
                .map(|t| {
                    let dims: Vec<i64> = t.shape.as_ref().unwrap()[1..]
                        .iter()
                        .map(|d| d.fixed().map_or(-1, |n| n as i64))
                        .collect();
                    serde_json::json!([
                        t.name,
                        rdeploy_serving::datatype::triton_type(t.dtype),
                        dims
                    ])
                })
                .collect()
        };
        assert_eq!(got["platform"], platform);
        assert_eq!(got["max_batch_size"], 4);
        assert_eq!(got["inputs"], sig(&manifest.inputs));
        assert_eq!(got["outputs"], sig(&manifest.outputs));
        assert_eq!(got["delay"], 100);
    }
}

/// The bearer token with the official clients: without it, HTTP answers 401 and gRPC
/// `UNAUTHENTICATED`; with it (HTTP header / gRPC metadata `authorization`) inference works;
/// health stays open.
#[test]
fn the_token_with_tritonclient_over_http_and_grpc() {
    if !python_has("tritonclient.grpc, tritonclient.http") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("cnn");
    deploy("tract", &work);
    let (http, grpc) = (free_addr(), free_addr());
    let options = ServeOptions {
        http,
        grpc: Some(grpc),
        token: Some("s3cret".into()),
        ..Default::default()
    };
    let r = Repository::open(&work, &ExportOptions::default()).unwrap();
    let state = Arc::new(State::load(&r, &rdeploy::builtin_registry(), options).unwrap());
    let _server = Running::start(state);
    wait_ready(http);
    let script = r#"
import sys, numpy as np
import tritonclient.http as th, tritonclient.grpc as tg
from tritonclient.utils import InferenceServerException
http, grpc = sys.argv[1], sys.argv[2]
x = np.zeros((1, 3, 32, 32), np.float32)
for mod, url in ((th, http), (tg, grpc)):
    c = mod.InferenceServerClient(url)
    assert c.is_server_live(), "health is open"
    i = mod.InferInput("image", list(x.shape), "FP32"); i.set_data_from_numpy(x)
    for headers, ok in ((None, False), ({"authorization": "Bearer wrong"}, False), ({"authorization": "Bearer s3cret"}, True)):
        try:
            r = c.infer("cnn", [i], headers=headers)
            assert ok, f"{mod.__name__} {headers}: answered without the right token"
            assert r.as_numpy("probs").shape == (1, 10)
        except InferenceServerException as e:
            assert not ok, f"{mod.__name__} {headers}: {e}"
            assert ("401" in str(e.status()) or "UNAUTHENTICATED" in str(e.status())) and "bearer token" in str(e), str(e)
print("ok")
"#;
    let out = Command::new(python())
        .args(["-c", script])
        .arg(http.to_string())
        .arg(grpc.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
