//! The HTTP/REST side of the Open Inference Protocol (axum), with Triton's binary tensor data,
//! statistics and model-configuration extensions, and `/metrics`.

use crate::error::ServeError;
use crate::model::{ModelVersion, StatDuration};
use crate::v2::{self, InferRequest, InferResponse, ResponseOutput};
use crate::{Inference, State};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State as St};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The header giving the JSON part's length when binary tensor data follows it.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

type Shared = Arc<State>;

/// The server's routes.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/v2/health/live", get(|| async { StatusCode::OK }))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route(
            "/v2/models/{name}",
            get(|s: St<Shared>, Path(n): Path<String>| metadata(s, n, None)),
        )
        .route(
            "/v2/models/{name}/versions/{version}",
            get(|s: St<Shared>, Path((n, v)): Path<(String, String)>| metadata(s, n, Some(v))),
        )
        .route(
            "/v2/models/{name}/ready",
            get(|s: St<Shared>, Path(n): Path<String>| model_ready(s, n, None)),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(|s: St<Shared>, Path((n, v)): Path<(String, String)>| model_ready(s, n, Some(v))),
        )
        .route(
            "/v2/models/{name}/config",
            get(|s: St<Shared>, Path(n): Path<String>| config(s, n, None)),
        )
        .route(
            "/v2/models/{name}/versions/{version}/config",
            get(|s: St<Shared>, Path((n, v)): Path<(String, String)>| config(s, n, Some(v))),
        )
        .route(
            "/v2/models/stats",
            get(|s: St<Shared>| stats(s, None, None)),
        )
        .route(
            "/v2/models/{name}/stats",
            get(|s: St<Shared>, Path(n): Path<String>| stats(s, Some(n), None)),
        )
        .route(
            "/v2/models/{name}/versions/{version}/stats",
            get(|s: St<Shared>, Path((n, v)): Path<(String, String)>| stats(s, Some(n), Some(v))),
        )
        .route("/v2/repository/index", post(index))
        .route(
            "/v2/models/{name}/infer",
            post(
                |s: St<Shared>, Path(n): Path<String>, h: HeaderMap, b: Body| {
                    infer(s, n, None, h, b)
                },
            ),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(
                |s: St<Shared>, Path((n, v)): Path<(String, String)>, h: HeaderMap, b: Body| {
                    infer(s, n, Some(v), h, b)
                },
            ),
        )
        .route("/metrics", get(metrics))
        .fallback(|| async {
            error(&ServeError::NotFound(
                "no such endpoint; see docs/serving.md for the routes".into(),
            ))
        })
        .method_not_allowed_fallback(|req: Request| async move {
            let msg = format!("{} is not allowed on {}", req.method(), req.uri().path());
            (
                StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(json!({ "error": msg })),
            )
                .into_response()
        })
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

/// A KServe v2 error response: `{"error": "..."}` with the error's status.
pub fn error(e: &ServeError) -> Response {
    (e.status(), axum::Json(json!({ "error": e.message() }))).into_response()
}

async fn auth(St(state): St<Shared>, req: Request, next: Next) -> Response {
    let open = req.uri().path().starts_with("/v2/health/");
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    if open || state.authorized(given) {
        next.run(req).await
    } else {
        error(&ServeError::Unauthorized(
            "missing or wrong bearer token (send 'Authorization: Bearer <token>')".into(),
        ))
    }
}

async fn ready(St(state): St<Shared>) -> StatusCode {
    if state.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn server_metadata() -> Response {
    axum::Json(json!({
        "name": "rdeploy",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data", "statistics", "model_configuration"],
    }))
    .into_response()
}

fn tensors_json(specs: &[rdeploy_serving::model_config::TensorSpec], batched: bool) -> Vec<Value> {
    specs
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "datatype": rdeploy_serving::datatype::v2_name(t.dtype),
                "shape": t.full_shape(batched),
            })
        })
        .collect()
}

async fn metadata(St(state): St<Shared>, name: String, version: Option<String>) -> Response {
    let m = match state.model(&name, version.as_deref()) {
        Ok(m) => m,
        Err(e) => return error(&e),
    };
    let versions: Vec<String> = state
        .versions(&name)
        .map(|vs| vs.iter().map(|v| v.version.to_string()).collect())
        .unwrap_or_default();
    let batched = m.settings.max_batch_size > 0;
    axum::Json(json!({
        "name": m.name,
        "versions": versions,
        "platform": format!("rdeploy_{}", m.backend),
        "inputs": tensors_json(&m.settings.inputs, batched),
        "outputs": tensors_json(&m.settings.outputs, batched),
    }))
    .into_response()
}

async fn model_ready(St(state): St<Shared>, name: String, version: Option<String>) -> Response {
    match state.model(&name, version.as_deref()) {
        Ok(_) if state.ready() => StatusCode::OK.into_response(),
        Ok(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Err(e) => error(&e),
    }
}

async fn config(St(state): St<Shared>, name: String, version: Option<String>) -> Response {
    match state.model(&name, version.as_deref()) {
        Ok(m) => match rdeploy_serving::model_config::to_json(&m.config) {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => error(&ServeError::Internal(e.to_string())),
        },
        Err(e) => error(&e),
    }
}

fn duration(d: &StatDuration) -> Value {
    let (count, ns) = d.get();
    json!({ "count": count, "ns": ns })
}

/// Triton's statistics extension's JSON for one model version.
fn stats_json(m: &ModelVersion) -> Value {
    let s = &m.stats;
    let zero = json!({ "count": 0, "ns": 0 });
    let batches: Vec<Value> = s
        .batches
        .lock()
        .map(|b| {
            b.iter()
                .map(|(size, (count, ns))| {
                    json!({
                        "batch_size": size,
                        "compute_input": zero,
                        "compute_infer": { "count": count, "ns": ns },
                        "compute_output": zero,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "name": m.name,
        "version": m.version.to_string(),
        "last_inference": s.last_inference_ms.load(Ordering::Relaxed),
        "inference_count": s.inference_count.load(Ordering::Relaxed),
        "execution_count": s.execution_count.load(Ordering::Relaxed),
        "inference_stats": {
            "success": duration(&s.success),
            "fail": duration(&s.fail),
            "queue": duration(&s.queue),
            "compute_input": zero,
            "compute_infer": duration(&s.compute),
            "compute_output": zero,
        },
        "batch_stats": batches,
    })
}

async fn stats(St(state): St<Shared>, name: Option<String>, version: Option<String>) -> Response {
    let models: Vec<Arc<ModelVersion>> = match (&name, &version) {
        (None, _) => state.all().cloned().collect(),
        (Some(n), None) => match state.versions(n) {
            Ok(v) => v.to_vec(),
            Err(e) => return error(&e),
        },
        (Some(n), Some(v)) => match state.model(n, Some(v)) {
            Ok(m) => vec![m],
            Err(e) => return error(&e),
        },
    };
    axum::Json(json!({ "model_stats": models.iter().map(|m| stats_json(m)).collect::<Vec<_>>() }))
        .into_response()
}

async fn index(St(state): St<Shared>) -> Response {
    let rows: Vec<Value> = state
        .all()
        .map(|m| json!({ "name": m.name, "version": m.version.to_string(), "state": "READY" }))
        .collect();
    axum::Json(Value::Array(rows)).into_response()
}

async fn metrics(St(state): St<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Splits a body into its JSON part and the binary data after it.
fn split_body<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), ServeError> {
    match headers.get(HEADER_LENGTH) {
        None => Ok((body, &[])),
        Some(v) => {
            let n = v
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ServeError::BadRequest(format!("{HEADER_LENGTH} {v:?} is not a byte count"))
                })?;
            if n > body.len() {
                return Err(ServeError::BadRequest(format!(
                    "{HEADER_LENGTH} is {n} but the body has {} bytes",
                    body.len()
                )));
            }
            Ok(body.split_at(n))
        }
    }
}

/// The inputs of a parsed request, binary parts taken in order from `binary`.
fn inputs_of(
    m: &ModelVersion,
    req: &InferRequest,
    mut binary: &[u8],
) -> Result<Vec<(String, rdeploy::core::Tensor)>, ServeError> {
    let mut out = Vec::with_capacity(req.inputs.len());
    for i in &req.inputs {
        let dtype = v2::dtype_of(&i.name, &i.datatype)?;
        State::check_datatype(m, &i.name, dtype)?;
        let shape = v2::shape_of(&i.name, &i.shape, dtype)?;
        let t = match (v2::binary_size(i)?, &i.data) {
            (Some(_), Some(_)) => {
                return Err(ServeError::BadRequest(format!(
                    "input '{}' has both 'data' and a binary_data_size parameter; send one",
                    i.name
                )));
            }
            (Some(n), None) => {
                if n > binary.len() {
                    return Err(ServeError::BadRequest(format!(
                        "input '{}': binary_data_size {n} but only {} binary bytes remain",
                        i.name,
                        binary.len()
                    )));
                }
                let (bytes, rest) = binary.split_at(n);
                binary = rest;
                v2::tensor_from_raw(&i.name, dtype, &shape, bytes)?
            }
            (None, Some(data)) => v2::tensor_from_json(&i.name, dtype, &shape, data)?,
            (None, None) => {
                return Err(ServeError::BadRequest(format!(
                    "input '{}' has neither 'data' nor a binary_data_size parameter",
                    i.name
                )));
            }
        };
        out.push((i.name.clone(), t));
    }
    if !binary.is_empty() {
        return Err(ServeError::BadRequest(format!(
            "{} bytes of binary data after the last input's (check each input's binary_data_size)",
            binary.len()
        )));
    }
    Ok(out)
}

async fn infer(
    St(state): St<Shared>,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let model = state.model(&name, version.as_deref());
    let result = match &model {
        Ok(m) => infer_inner(&state, m, &headers, body).await,
        Err(e) => Err(e.clone()),
    };
    state.record(
        model.as_deref().ok(),
        "http",
        started,
        result.as_ref().map(|_| ()),
    );
    result.unwrap_or_else(|e| error(&e))
}

async fn infer_inner(
    state: &State,
    m: &ModelVersion,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ServeError> {
    let limit = state.options.max_request_bytes;
    let too_large = || {
        ServeError::TooLarge(format!(
            "request body larger than {limit} bytes (the server's --max-request-bytes)"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // A client that stops sending mid-body gets an answer too, not a connection held forever.
    let timeout = state.options.request_timeout;
    let body: Bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return Err(too_large()),
        Err(_) => {
            return Err(ServeError::Timeout(format!(
                "the request body did not arrive within {:.3} s (--request-timeout)",
                timeout.as_secs_f64()
            )));
        }
    };
    let (json_part, binary) = split_body(headers, &body)?;
    let req: InferRequest = serde_json::from_slice(json_part)
        .map_err(|e| ServeError::BadRequest(format!("malformed inference request JSON: {e}")))?;
    let inputs = inputs_of(m, &req, binary)?;
    let default_binary = v2::flag(req.parameters.as_ref(), "binary_data_output").unwrap_or(false);
    let wanted: Option<Vec<(String, bool)>> = req.outputs.as_ref().map(|outs| {
        outs.iter()
            .map(|o| {
                (
                    o.name.clone(),
                    v2::flag(o.parameters.as_ref(), "binary_data").unwrap_or(default_binary),
                )
            })
            .collect()
    });
    let outputs = state
        .infer(
            m,
            Inference {
                inputs,
                outputs: wanted
                    .as_ref()
                    .map(|w| w.iter().map(|(n, _)| n.clone()).collect()),
            },
        )
        .await?;
    let mut binary_out: Vec<u8> = Vec::new();
    let mut resp_outputs = Vec::with_capacity(outputs.len());
    for (i, (name, t)) in outputs.into_iter().enumerate() {
        let as_binary = wanted
            .as_ref()
            .map_or(default_binary, |w| w.get(i).is_some_and(|x| x.1));
        let mut o = ResponseOutput {
            name,
            datatype: rdeploy_serving::datatype::v2_name(t.dtype()),
            shape: t.shape().to_vec(),
            parameters: None,
            data: None,
        };
        if as_binary {
            let bytes = v2::raw_bytes(&o.name, &t)?;
            let mut p = Map::new();
            p.insert("binary_data_size".into(), json!(bytes.len()));
            o.parameters = Some(p);
            binary_out.extend_from_slice(&bytes);
        } else {
            rdeploy_serving::datatype::checked_v2_name(&format!("output '{}'", o.name), t.dtype())
                .map_err(ServeError::BadRequest)?;
            o.data = Some(v2::json_data(&t));
        }
        resp_outputs.push(o);
    }
    let resp = InferResponse {
        model_name: m.name.clone(),
        model_version: m.version.to_string(),
        id: req.id,
        outputs: resp_outputs,
    };
    let json_bytes = serde_json::to_vec(&resp).map_err(|e| ServeError::Internal(e.to_string()))?;
    if binary_out.is_empty() && !resp.outputs.iter().any(|o| o.parameters.is_some()) {
        return Ok(([(header::CONTENT_TYPE, "application/json")], json_bytes).into_response());
    }
    let n = json_bytes.len();
    let mut body = json_bytes;
    body.extend_from_slice(&binary_out);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    r.headers_mut().insert(HEADER_LENGTH, HeaderValue::from(n));
    Ok(r)
}
