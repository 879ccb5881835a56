//! `rdeploy serve`: the Open Inference Protocol (KServe v2) over HTTP (axum) and gRPC (tonic)
//! for rdeploy work dirs and Triton-layout model repositories.
//!
//! Each model version gets an instance pool (one engine wrapper per instance, from
//! `instance_group`), a bounded queue (503 / `UNAVAILABLE` when full) and, with
//! `dynamic_batching`, Triton's batching of queued requests along the batch dim. Requests are
//! checked against the model's signature before they queue; bodies and waits are bounded;
//! shutdown (SIGINT/SIGTERM) stops accepting and finishes what is in flight. See
//! `docs/serving.md`.

pub mod error;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod model;
pub mod v2;

use error::ServeError;
use metrics::Metrics;
use model::{ModelVersion, PoolOptions, VersionSpec};
use rdeploy::core::{Registry, Tensor};
use rdeploy_serving::Repository;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// HTTP address (loopback by default: expose on purpose with `--host 0.0.0.0`).
    pub http: SocketAddr,
    /// gRPC address; `None` turns gRPC off.
    pub grpc: Option<SocketAddr>,
    /// A bearer token every request but the health checks must carry
    /// (`Authorization: Bearer <token>`; gRPC metadata `authorization`).
    pub token: Option<String>,
    /// Largest request body (HTTP) or message (gRPC), in bytes.
    pub max_request_bytes: usize,
    /// Longest a request may wait for its answer (queue + engine).
    pub request_timeout: Duration,
    /// Requests that may wait per model version when the config sets no
    /// `default_queue_policy.max_queue_size`.
    pub queue_size: usize,
    /// After shutdown begins, how long connections may take to finish before the server
    /// returns anyway (a stalled client must not keep it alive).
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            http: SocketAddr::from(([127, 0, 0, 1], 8000)),
            grpc: Some(SocketAddr::from(([127, 0, 0, 1], 8001))),
            token: None,
            max_request_bytes: 64 << 20,
            request_timeout: Duration::from_secs(60),
            queue_size: 256,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What both protocols serve: the loaded models and the server's settings.
pub struct State {
    models: BTreeMap<String, Vec<Arc<ModelVersion>>>,
    /// The metrics of `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The options the server runs with.
    pub options: ServeOptions,
    stopping: AtomicBool,
}

/// One inference as both protocols hand it over: named inputs and the outputs wanted.
pub struct Inference {
    /// Inputs by name.
    pub inputs: Vec<(String, Tensor)>,
    /// Output names wanted, all when `None`.
    pub outputs: Option<Vec<String>>,
}

impl State {
    /// Loads every model version of `repo`: one wrapper per instance.
    ///
    /// # Errors
    /// The first model that cannot load (its backend missing, a corrupt work dir), or whose
    /// config disagrees with its work dir's signature, naming the model and version.
    pub fn load(
        repo: &Repository,
        registry: &Registry,
        options: ServeOptions,
    ) -> rdeploy::core::Result<State> {
        let metrics = Arc::new(Metrics::default());
        let mut models = BTreeMap::new();
        for m in &repo.models {
            let mut versions = Vec::new();
            for (v, dir) in &m.versions {
                let wd = rdeploy::WorkDir::open(dir)?;
                let mut wrappers = Vec::new();
                for _ in 0..m.settings.instances {
                    wrappers.push(rdeploy::load(&wd, registry, None)?);
                }
                tracing::info!(
                    "model '{}' version {v}: {} on {} instance(s), max_batch_size {}{}",
                    m.name,
                    wd.manifest.backend,
                    wrappers.len(),
                    m.settings.max_batch_size,
                    if m.settings.dynamic_batching.is_some() {
                        ", dynamic batching"
                    } else {
                        ""
                    }
                );
                versions.push(ModelVersion::start(
                    VersionSpec {
                        name: m.name.clone(),
                        version: *v,
                        backend: wd.manifest.backend.clone(),
                        config: m.config.clone(),
                        settings: m.settings.clone(),
                    },
                    wrappers,
                    &PoolOptions {
                        queue_capacity: options.queue_size,
                        metrics: metrics.clone(),
                    },
                ));
            }
            models.insert(m.name.clone(), versions);
        }
        Ok(State::new(
            models.into_values().flatten().collect(),
            metrics,
            options,
        ))
    }

    /// A state over model versions already started (by [`ModelVersion::start`]) with the
    /// same `metrics`.
    pub fn new(
        versions: Vec<Arc<ModelVersion>>,
        metrics: Arc<Metrics>,
        options: ServeOptions,
    ) -> State {
        let mut models: BTreeMap<String, Vec<Arc<ModelVersion>>> = BTreeMap::new();
        for v in versions {
            models.entry(v.name.clone()).or_default().push(v);
        }
        for vs in models.values_mut() {
            vs.sort_by_key(|v| v.version);
        }
        State {
            models,
            metrics,
            options,
            stopping: AtomicBool::new(false),
        }
    }

    /// Every served model version, by name then version.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ModelVersion>> {
        self.models.values().flatten()
    }

    /// Whether the server takes requests (false once shutdown began).
    pub fn ready(&self) -> bool {
        !self.stopping.load(Ordering::Relaxed)
    }

    /// Marks the server as stopping: readiness turns false, new inferences get 503.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The served versions of `name`.
    ///
    /// # Errors
    /// 404 naming the models served.
    pub fn versions(&self, name: &str) -> Result<&[Arc<ModelVersion>], ServeError> {
        self.models.get(name).map(Vec::as_slice).ok_or_else(|| {
            ServeError::NotFound(format!(
                "unknown model '{name}'; this server serves: {}",
                self.models.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// A model version: the given one, or the latest served.
    ///
    /// # Errors
    /// 404 for an unknown model or a version it does not serve, naming what is served.
    pub fn model(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<ModelVersion>, ServeError> {
        let versions = self.versions(name)?;
        let found = match version.filter(|v| !v.is_empty()) {
            None => versions.last(),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .and_then(|n| versions.iter().find(|m| m.version == n)),
        };
        found.cloned().ok_or_else(|| {
            ServeError::NotFound(format!(
                "model '{name}' has no version '{}' served (served: {})",
                version.unwrap_or_default(),
                versions
                    .iter()
                    .map(|m| m.version.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Checks a request tensor's datatype against the model's input before its data is read,
    /// so a mistyped input is named as such (not as a byte-count mismatch).
    ///
    /// # Errors
    /// 400 naming the input and both datatypes, or an input the model does not have (with the
    /// model's input names).
    pub fn check_datatype(
        model: &ModelVersion,
        input: &str,
        dtype: rdeploy::core::DType,
    ) -> Result<(), ServeError> {
        match model.signature.inputs.iter().find(|s| s.name == input) {
            Some(spec) if spec.dtype != dtype => Err(ServeError::BadRequest(format!(
                "input '{input}': expected datatype {}, got {}",
                rdeploy_serving::datatype::v2_name(spec.dtype),
                rdeploy_serving::datatype::v2_name(dtype)
            ))),
            Some(_) => Ok(()),
            None => Err(ServeError::BadRequest(format!(
                "unknown input '{input}'; the model's inputs are {}",
                model
                    .signature
                    .inputs
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Checks `inf` against the model and runs it: named outputs, in the order asked for (the
    /// model's order when all).
    ///
    /// # Errors
    /// 400 for inputs that do not fit the model (naming the input and what it expects), an
    /// unknown output, a batch over `max_batch_size`; 503 when stopping or the queue is full;
    /// 504 past the request timeout; 500 when the engine fails.
    pub async fn infer(
        &self,
        model: &ModelVersion,
        inf: Inference,
    ) -> Result<Vec<(String, Tensor)>, ServeError> {
        if !self.ready() {
            return Err(ServeError::Unavailable(
                "the server is shutting down".into(),
            ));
        }
        let sig = &model.signature;
        for (name, t) in &inf.inputs {
            State::check_datatype(model, name, t.dtype())?;
        }
        let max = model.settings.max_batch_size;
        if max > 0 {
            let mut rows = None;
            for (name, t) in &inf.inputs {
                let Some(&n) = t.shape().first() else {
                    return Err(ServeError::BadRequest(format!(
                        "input '{name}': a scalar has no batch dim (the model batches along dim 0)"
                    )));
                };
                if *rows.get_or_insert(n) != n {
                    return Err(ServeError::BadRequest(format!(
                        "input '{name}': batch dim {n} differs from the other inputs' {}",
                        rows.unwrap_or(0)
                    )));
                }
                if n > max {
                    return Err(ServeError::BadRequest(format!(
                        "input '{name}': batch of {n} exceeds the model's max_batch_size {max}"
                    )));
                }
            }
        }
        let wanted: Vec<usize> = match &inf.outputs {
            None => (0..sig.outputs.len()).collect(),
            Some(names) => names
                .iter()
                .map(|n| {
                    sig.outputs
                        .iter()
                        .position(|o| &o.name == n)
                        .ok_or_else(|| {
                            ServeError::BadRequest(format!(
                                "unknown output '{n}'; the model's outputs are {}",
                                sig.outputs
                                    .iter()
                                    .map(|o| o.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let ordered = rdeploy::core::validate_inputs(&sig.inputs, inf.inputs)?;
        let mut outs: Vec<Option<Tensor>> = model
            .infer(ordered, self.options.request_timeout)
            .await?
            .into_iter()
            .map(Some)
            .collect();
        Ok(wanted
            .into_iter()
            .filter_map(|i| Some((sig.outputs.get(i)?.name.clone(), outs.get_mut(i)?.take()?)))
            .collect())
    }

    /// Records a finished request in the model's statistics and the metrics.
    pub fn record(
        &self,
        model: Option<&ModelVersion>,
        protocol: &'static str,
        started: Instant,
        result: Result<(), &ServeError>,
    ) {
        let took = started.elapsed();
        let name = model.map_or("", |m| m.name.as_str());
        if let Some(m) = model {
            match result {
                Ok(()) => m.stats.success.add_one(took),
                Err(_) => m.stats.fail.add_one(took),
            }
        }
        self.metrics.request(
            name,
            model.map(|m| m.version),
            protocol,
            result.map_or_else(ServeError::kind, |()| "success"),
            took,
        );
    }

    /// Whether `header` (an `Authorization` value) carries the server's token; `true` when no
    /// token is set.
    pub fn authorized(&self, header: Option<&str>) -> bool {
        match &self.options.token {
            None => true,
            Some(t) => header
                .and_then(|h| h.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .is_some_and(|(_, given)| constant_time_eq(given.trim().as_bytes(), t.as_bytes())),
        }
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guessed
/// token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Serves `state` on HTTP (and gRPC when set) until `shutdown` resolves, then stops accepting,
/// finishes requests in flight and returns.
///
/// # Errors
/// When an address cannot be bound (in use, no permission), naming it.
pub async fn serve(
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow_like::Result<()> {
    let http_listener = tokio::net::TcpListener::bind(state.options.http)
        .await
        .map_err(|e| format!("cannot listen on {} (HTTP): {e}", state.options.http))?;
    let grpc_listener = match state.options.grpc {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| format!("cannot listen on {a} (gRPC): {e}"))?,
        ),
        None => None,
    };
    tracing::info!(
        "serving KServe v2 on http://{}{}",
        http_listener.local_addr().map_err(|e| e.to_string())?,
        grpc_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| format!(" and grpc://{a}"))
            .unwrap_or_default()
    );
    let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let signal = {
        let (tx, state) = (tx.clone(), state.clone());
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests in flight");
            state.begin_shutdown();
            let _ = tx.send(());
        })
    };
    let mut rx_http = tx.subscribe();
    let http = axum::serve(http_listener, http::router(state.clone())).with_graceful_shutdown(
        async move {
            let _ = rx_http.recv().await;
        },
    );
    let grpc = grpc_listener.map(|l| {
        let mut rx = tx.subscribe();
        grpc::serve(state.clone(), l, async move {
            let _ = rx.recv().await;
        })
    });
    let both = async move {
        match grpc {
            Some(g) => {
                let (h, g) = tokio::join!(http, g);
                h.map_err(|e| format!("HTTP server: {e}"))?;
                g.map_err(|e| format!("gRPC server: {e}"))
            }
            None => http.await.map_err(|e| format!("HTTP server: {e}")),
        }
    };
    let grace = state.options.shutdown_grace;
    let mut rx_deadline = tx.subscribe();
    let deadline = async move {
        let _ = rx_deadline.recv().await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        r = both => r,
        () = deadline => {
            tracing::warn!("connections still open {:.0} s after shutdown began; stopping anyway", grace.as_secs_f64());
            Ok(())
        }
    };
    signal.abort();
    result
}

/// Errors of [`serve`]: one readable line.
pub mod anyhow_like {
    /// A result whose error is a message.
    pub type Result<T> = std::result::Result<T, String>;
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what Kubernetes and `docker stop` send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
