//! Prometheus metrics of `/metrics` (text exposition format, via the Prometheus project's
//! `prometheus-client`): requests by outcome, end-to-end latency, queue time, engine time and
//! batch sizes, per model.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    version: String,
    protocol: &'static str,
    outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histograms<RequestLabels>,
    queue: Histograms<ModelLabel>,
    compute: Histograms<ModelLabel>,
    batch_size: Histograms<ModelLabel>,
    executions: Family<ModelLabel, Counter>,
    queue_depth: Family<ModelLabel, Gauge>,
}

fn seconds() -> Histogram {
    // 50 us .. ~26 s, doubling.
    Histogram::new(exponential_buckets(50e-6, 2.0, 20))
}

fn rows() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rdeploy");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Histograms<RequestLabels> = Family::new_with_constructor(seconds);
        let queue: Histograms<ModelLabel> = Family::new_with_constructor(seconds);
        let compute: Histograms<ModelLabel> = Family::new_with_constructor(seconds);
        let batch_size: Histograms<ModelLabel> = Family::new_with_constructor(rows);
        let executions = Family::<ModelLabel, Counter>::default();
        let queue_depth = Family::<ModelLabel, Gauge>::default();
        registry.register(
            "inference_requests",
            "Inference requests by model, protocol (http, grpc) and outcome (success or the error kind)",
            requests.clone(),
        );
        registry.register(
            "inference_request_duration_seconds",
            "Time from a request's arrival to its response",
            latency.clone(),
        );
        registry.register(
            "inference_queue_duration_seconds",
            "Time requests waited for a model instance",
            queue.clone(),
        );
        registry.register(
            "inference_compute_duration_seconds",
            "Time of each engine call (one batch)",
            compute.clone(),
        );
        registry.register(
            "inference_batch_size",
            "Rows per engine call (requests joined by dynamic batching)",
            batch_size.clone(),
        );
        registry.register("inference_executions", "Engine calls", executions.clone());
        registry.register(
            "inference_queue_depth",
            "Requests waiting for an instance (updated as requests are queued and taken)",
            queue_depth.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            queue,
            compute,
            batch_size,
            executions,
            queue_depth,
        }
    }
}

fn model(m: &str, v: u64) -> ModelLabel {
    ModelLabel {
        model: m.to_string(),
        version: v.to_string(),
    }
}

impl Metrics {
    /// One finished request.
    pub fn request(
        &self,
        model: &str,
        version: Option<u64>,
        protocol: &'static str,
        outcome: &'static str,
        took: Duration,
    ) {
        let l = RequestLabels {
            model: model.to_string(),
            version: version.map(|v| v.to_string()).unwrap_or_default(),
            protocol,
            outcome,
        };
        self.requests.get_or_create(&l).inc();
        self.latency.get_or_create(&l).observe(took.as_secs_f64());
    }

    /// One request's wait in the queue.
    pub fn queue_time(&self, m: &str, v: u64, d: Duration) {
        self.queue
            .get_or_create(&model(m, v))
            .observe(d.as_secs_f64());
    }

    /// One engine call of `rows` rows.
    pub fn execution(&self, m: &str, v: u64, rows: usize, d: Duration) {
        let l = model(m, v);
        self.compute.get_or_create(&l).observe(d.as_secs_f64());
        self.batch_size.get_or_create(&l).observe(rows as f64);
        self.executions.get_or_create(&l).inc();
    }

    /// The queue's length as seen now.
    pub fn queue_depth(&self, m: &str, v: u64, n: usize) {
        self.queue_depth
            .get_or_create(&model(m, v))
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The text exposition (`text/plain; version=0.0.4` with OpenMetrics' `# EOF`).
    pub fn encode(&self) -> String {
        let mut s = String::new();
        if prometheus_client::encoding::text::encode(&mut s, &self.registry).is_err() {
            s.clear();
        }
        s
    }
}
