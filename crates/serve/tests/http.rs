//! `rdeploy serve`'s HTTP side in-process (the router driven by tower, no sockets): outputs
//! equal the engine's own on the same inputs, JSON and binary tensors, every class of bad
//! request answered 4xx with a message naming what is wrong, the token, the size limit,
//! dynamic batching, queue overflow, and a property test over arbitrary request bodies.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test: a panic is a failure with its message"
)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use rdeploy::core::{Signature, Tensor, Wrapper};
use rdeploy_serve::metrics::Metrics;
use rdeploy_serve::model::{ModelVersion, PoolOptions, VersionSpec};
use rdeploy_serve::{ServeOptions, State, http};
use rdeploy_serving::{ExportOptions, Repository};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::ServiceExt;

/// small-cnn.onnx deployed on tract once per test binary: input image [batch,3,32,32] f32,
/// output probs [batch,10].
fn work_dir() -> &'static Path {
    static WD: OnceLock<tempfile::TempDir> = OnceLock::new();
    WD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = rdeploy::Config::from_json(
            &json!({"backend_config": {"type": "tract"}}),
            Path::new("<test>"),
        )
        .unwrap();
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/small-cnn.onnx");
        rdeploy::deploy(
            &rdeploy::builtin_registry(),
            &cfg,
            &model,
            &dir.path().join("cnn"),
            &rdeploy::Device::cpu(),
            &rdeploy::DeployOptions::default(),
        )
        .unwrap();
        dir
    })
    .path()
}

fn state(single: ExportOptions, options: ServeOptions) -> Arc<State> {
    let repo = Repository::open(&work_dir().join("cnn"), &single).unwrap();
    Arc::new(State::load(&repo, &rdeploy::builtin_registry(), options).unwrap())
}

fn batching() -> ExportOptions {
    ExportOptions {
        max_batch_size: 8,
        dynamic_batching: true,
        max_queue_delay_us: 20_000,
        ..Default::default()
    }
}

fn image(seed: u32, rows: usize) -> Vec<f32> {
    (0..rows * 3 * 32 * 32)
        .map(|i| {
            (((i as u32)
                .wrapping_mul(2654435761)
                .wrapping_add(seed * 7919))
                % 1000) as f32
                / 1000.0
        })
        .collect()
}

/// The engine's own answer, through the library (no server).
fn reference(data: &[f32], rows: usize) -> Vec<f32> {
    let wd = rdeploy::WorkDir::open(work_dir().join("cnn")).unwrap();
    let w = rdeploy::load(&wd, &rdeploy::builtin_registry(), None).unwrap();
    let t = Tensor::from_shape_vec(&[rows, 3, 32, 32], data.to_vec()).unwrap();
    let out = w.forward(vec![("image".into(), t)]).unwrap();
    out[0].1.as_slice::<f32>().unwrap().to_vec()
}

async fn call(
    state: &Arc<State>,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let r = http::router(state.clone()).oneshot(req).await.unwrap();
    let (parts, body) = r.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes().to_vec(),
    )
}

fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

fn infer_json(data: &[f32], rows: usize) -> String {
    json!({"id": "r1", "inputs": [{"name": "image", "datatype": "FP32", "shape": [rows, 3, 32, 32], "data": data}]}).to_string()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-6 + 1e-5 * y.abs(), "{x} vs {y}");
    }
}

#[tokio::test]
async fn json_and_binary_inference_match_the_engine() {
    let st = state(batching(), ServeOptions::default());
    let data = image(1, 2);
    let want = reference(&data, 2);
    let (s, _, body) = call(&st, post("/v2/models/cnn/infer", infer_json(&data, 2))).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["model_version"].as_str()),
        (Some("r1"), Some("1"))
    );
    assert_eq!(v["outputs"][0]["shape"], json!([2, 10]));
    let got: Vec<f32> = v["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    close(&got, &want);

    // Binary in and out (Triton's binary data extension).
    let header = json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [2, 3, 32, 32], "parameters": {"binary_data_size": data.len() * 4}}],
                        "outputs": [{"name": "probs", "parameters": {"binary_data": true}}]})
    .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(data.iter().flat_map(|x| x.to_le_bytes()));
    let req = Request::post("/v2/models/cnn/versions/1/infer")
        .header("inference-header-content-length", header.len())
        .body(Body::from(body))
        .unwrap();
    let (s, h, body) = call(&st, req).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let n: usize = h["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let v: Value = serde_json::from_slice(&body[..n]).unwrap();
    assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], json!(80));
    let got: Vec<f32> = body[n..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    close(&got, &want);

    // Metadata, readiness, stats and metrics describe the same model.
    let (s, _, body) = call(
        &st,
        Request::get("/v2/models/cnn").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["inputs"][0],
        json!({"name": "image", "datatype": "FP32", "shape": [-1, 3, 32, 32]})
    );
    let (s, _, _) = call(
        &st,
        Request::get("/v2/models/cnn/versions/1/ready")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, _, body) = call(
        &st,
        Request::get("/v2/models/cnn/stats")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["model_stats"][0]["inference_stats"]["success"]["count"],
        json!(2)
    );
    assert_eq!(v["model_stats"][0]["inference_count"], json!(4));
    let (_, _, body) = call(&st, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(
            r#"rdeploy_inference_requests_total{model="cnn",version="1",protocol="http",outcome="success"} 2"#
        ),
        "{text}"
    );
    let (_, _, body) = call(
        &st,
        Request::get("/v2/models/cnn/config")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["max_batch_size"], json!(8));
}

#[tokio::test]
async fn bad_requests_get_4xx_naming_the_problem() {
    let st = state(
        batching(),
        ServeOptions {
            max_request_bytes: 1 << 20,
            ..Default::default()
        },
    );
    let ok = image(2, 1);
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        ("/v2/models/cnn/infer", "{not json".into(), StatusCode::BAD_REQUEST, "malformed"),
        ("/v2/models/cnn/infer", json!({"inputs": 3}).to_string(), StatusCode::BAD_REQUEST, "malformed"),
        ("/v2/models/nope/infer", infer_json(&ok, 1), StatusCode::NOT_FOUND, "unknown model 'nope'"),
        ("/v2/models/cnn/versions/7/infer", infer_json(&ok, 1), StatusCode::NOT_FOUND, "no version '7'"),
        ("/v2/models/cnn/versions/x/infer", infer_json(&ok, 1), StatusCode::NOT_FOUND, "no version 'x'"),
        (
            "/v2/models/cnn/infer",
            json!({"inputs": [{"name": "image", "datatype": "INT64", "shape": [1, 3, 32, 32], "data": vec![1; 3072]}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "expected datatype FP32, got INT64",
        ),
        (
            "/v2/models/cnn/infer",
            json!({"inputs": [{"name": "image", "datatype": "INT2", "shape": [1], "data": [1]}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "'INT2' is not supported",
        ),
        (
            "/v2/models/cnn/infer",
            json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 31], "data": vec![0.5; 2976]}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "input 'image'",
        ),
        (
            "/v2/models/cnn/infer",
            json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [1.0]}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "1 elements given",
        ),
        (
            "/v2/models/cnn/infer",
            json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": vec![json!("x"); 3072]}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "element 0",
        ),
        (
            "/v2/models/cnn/infer",
            json!({"inputs": [{"name": "img", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": ok}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "img",
        ),
        ("/v2/models/cnn/infer", json!({"inputs": []}).to_string(), StatusCode::BAD_REQUEST, "missing"),
        (
            "/v2/models/cnn/infer",
            json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [9, 3, 32, 32], "data": image(3, 9)}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "exceeds the model's max_batch_size 8",
        ),
        (
            "/v2/models/cnn/infer",
            json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": ok}], "outputs": [{"name": "logits"}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "unknown output 'logits'",
        ),
        (
            "/v2/models/cnn/infer",
            json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 3, 32, 32], "data": ok}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "negative",
        ),
        (
            "/v2/models/cnn/infer",
            json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], "parameters": {"binary_data_size": 12288}}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "binary_data_size 12288 but only 0",
        ),
        (
            "/v2/models/cnn/infer",
            json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [4611686018427387904i64, 4], "data": []}]}).to_string(),
            StatusCode::BAD_REQUEST,
            "input 'image'",
        ),
        ("/v2/models/cnn/infer", "x".repeat(2 << 20), StatusCode::PAYLOAD_TOO_LARGE, "larger than 1048576 bytes"),
    ];
    for (uri, body, status, want) in cases {
        let (s, _, got) = call(&st, post(uri, body.clone())).await;
        let text = String::from_utf8_lossy(&got);
        assert_eq!(s, status, "{uri} {}: {text}", &body[..body.len().min(120)]);
        let v: Value = serde_json::from_slice(&got)
            .unwrap_or_else(|_| panic!("not a JSON error body: {text}"));
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(want), "{msg:?} should contain {want:?}");
    }
    // A wrong header length and trailing binary data.
    let req = Request::post("/v2/models/cnn/infer")
        .header("inference-header-content-length", "999")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(call(&st, req).await.0, StatusCode::BAD_REQUEST);
    let header = infer_json(&ok, 1);
    let mut body = header.clone().into_bytes();
    body.extend([0u8; 4]);
    let req = Request::post("/v2/models/cnn/infer")
        .header("inference-header-content-length", header.len())
        .body(Body::from(body))
        .unwrap();
    let (s, _, got) = call(&st, req).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&got)
    );
    // Unknown routes and models are 404 with a JSON error.
    let (s, _, _) = call(
        &st,
        Request::get("/v2/models/nope/ready")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = call(&st, Request::get("/v3").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_token_guards_everything_but_health() {
    let st = state(
        ExportOptions::default(),
        ServeOptions {
            token: Some("s3cret".into()),
            ..Default::default()
        },
    );
    let data = image(4, 1);
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("s3cret"),
        Some("Bearer s3cre"),
    ] {
        let mut req = Request::post("/v2/models/cnn/infer");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let (s, _, body) = call(&st, req.body(Body::from(infer_json(&data, 1))).unwrap()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(String::from_utf8_lossy(&body).contains("bearer token"));
    }
    let req = Request::post("/v2/models/cnn/infer")
        .header("authorization", "Bearer s3cret")
        .body(Body::from(infer_json(&data, 1)))
        .unwrap();
    assert_eq!(call(&st, req).await.0, StatusCode::OK);
    let (s, _, _) = call(
        &st,
        Request::get("/v2/health/ready")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&st, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_are_batched_and_each_gets_its_own_rows() {
    let st = state(batching(), ServeOptions::default());
    let n = 16;
    let mut tasks = Vec::new();
    for i in 0..n {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            let data = image(100 + i, 1);
            let (s, _, body) = call(&st, post("/v2/models/cnn/infer", infer_json(&data, 1))).await;
            assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            let v: Value = serde_json::from_slice(&body).unwrap();
            let got: Vec<f32> = v["outputs"][0]["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            (data, got)
        }));
    }
    for t in tasks {
        let (data, got) = t.await.unwrap();
        close(&got, &reference(&data, 1));
    }
    let m = st.model("cnn", None).unwrap();
    let execs = m
        .stats
        .execution_count
        .load(std::sync::atomic::Ordering::Relaxed);
    let infers = m
        .stats
        .inference_count
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(infers, u64::from(n));
    assert!(
        execs < infers,
        "{execs} executions for {infers} inferences: no batching"
    );
}

/// A wrapper that takes 300 ms per call: a stand-in engine that keeps the one instance busy, so
/// the queue's bound is what is tested (the real engines are tested above).
struct Slow(Signature);

impl Wrapper for Slow {
    fn backend(&self) -> &str {
        "slow"
    }
    fn signature(&self) -> &Signature {
        &self.0
    }
    fn execute(&self, inputs: Vec<Tensor>) -> rdeploy::core::Result<Vec<Tensor>> {
        std::thread::sleep(Duration::from_millis(300));
        Ok(inputs)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_answers_503_and_the_rest_succeed() {
    let repo = Repository::open(&work_dir().join("cnn"), &ExportOptions::default()).unwrap();
    let m = &repo.models[0];
    let wd = rdeploy::WorkDir::open(work_dir().join("cnn")).unwrap();
    let sig = Signature {
        inputs: wd.manifest.inputs.clone(),
        outputs: wd.manifest.inputs.clone(),
        device: rdeploy::core::Device::cpu(),
    };
    let metrics = Arc::new(Metrics::default());
    let mv = ModelVersion::start(
        VersionSpec {
            name: "cnn".into(),
            version: 1,
            backend: "slow".into(),
            config: m.config.clone(),
            settings: m.settings.clone(),
        },
        vec![Arc::new(Slow(sig))],
        &PoolOptions {
            queue_capacity: 2,
            metrics: metrics.clone(),
        },
    );
    let st = Arc::new(State::new(vec![mv], metrics, ServeOptions::default()));
    let data = image(5, 1);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (st, body) = (st.clone(), infer_json(&data, 1));
        tasks.push(tokio::spawn(async move {
            call(&st, post("/v2/models/cnn/infer", body)).await
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        let (s, _, body) = t.await.unwrap();
        if s == StatusCode::SERVICE_UNAVAILABLE {
            assert!(String::from_utf8_lossy(&body).contains("queue is full"));
        }
        codes.push(s);
    }
    let ok = codes.iter().filter(|s| **s == StatusCode::OK).count();
    let full = codes
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert_eq!(ok + full, 8, "{codes:?}");
    assert!(ok >= 1 && full >= 1, "{codes:?}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

    /// Whatever the body, the answer is a 4xx or 200 with a JSON body, never a 5xx or a panic.
    #[test]
    fn arbitrary_bodies_never_crash_the_server(
        raw in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        shape in proptest::collection::vec(-2i64..40, 0..5),
        dtype in proptest::sample::select(vec!["FP32", "FP16", "INT8", "UINT64", "BOOL", "BYTES", "fp32", ""]),
        n in 0usize..50,
        header_len in proptest::option::of(0usize..400),
        as_json in proptest::bool::ANY,
    ) {
        let st = state(batching(), ServeOptions::default());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let body: Vec<u8> = if as_json {
            json!({"inputs": [{"name": "image", "datatype": dtype, "shape": shape, "data": vec![0.25; n]}]}).to_string().into_bytes()
        } else {
            raw
        };
        let mut req = Request::post("/v2/models/cnn/infer");
        if let Some(h) = header_len {
            req = req.header("inference-header-content-length", h);
        }
        let (s, _, got) = rt.block_on(call(&st, req.body(Body::from(body)).unwrap()));
        proptest::prop_assert!(s == StatusCode::OK || s.is_client_error(), "{s}: {}", String::from_utf8_lossy(&got));
        proptest::prop_assert!(serde_json::from_slice::<Value>(&got).is_ok());
    }
}

#[tokio::test]
async fn protocol_edges_get_clear_answers() {
    let st = state(
        batching(),
        ServeOptions {
            max_request_bytes: 1 << 20,
            token: Some("tok".into()),
            ..Default::default()
        },
    );
    let auth = "bearer tok"; // RFC 7235: the scheme is case-insensitive
    // A wrong method is a JSON error too.
    let (s, _, body) = call(
        &st,
        Request::delete("/v2/models/cnn/infer")
            .header("authorization", auth)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("DELETE")
    );
    // A declared body over the limit is refused from the header, before it is read.
    let req = Request::post("/v2/models/cnn/infer")
        .header("authorization", auth)
        .header("content-length", "99999999")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(call(&st, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Binary FP16 data for an FP32 input: the datatype is named, not the byte count.
    let header = json!({"inputs": [{"name": "image", "datatype": "FP16", "shape": [1, 3, 32, 32], "parameters": {"binary_data_size": 6144}}]}).to_string();
    let mut b = header.clone().into_bytes();
    b.extend([0u8; 6144]);
    let req = Request::post("/v2/models/cnn/infer")
        .header("authorization", auth)
        .header("inference-header-content-length", header.len())
        .body(Body::from(b))
        .unwrap();
    let (s, _, body) = call(&st, req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("expected datatype FP32, got FP16"));
    // Both JSON data and binary data for one input: refused.
    let header = json!({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": image(1, 1), "parameters": {"binary_data_size": 12288}}]}).to_string();
    let mut b = header.clone().into_bytes();
    b.extend([0u8; 12288]);
    let req = Request::post("/v2/models/cnn/infer")
        .header("authorization", auth)
        .header("inference-header-content-length", header.len())
        .body(Body::from(b))
        .unwrap();
    let (s, _, body) = call(&st, req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("both 'data' and a binary_data_size"));
}
