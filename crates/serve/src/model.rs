//! One served model version: its instance pool (one engine wrapper per instance, each on its
//! own thread), the bounded queue in front of it, and dynamic batching.
//!
//! Batching follows Triton's dynamic batcher (`docs/user_guide/batcher.md` in
//! github.com/triton-inference-server/server): an idle instance takes the oldest request,
//! then adds queued requests whose non-batch dims match while the batch stays within
//! `max_batch_size` rows, waiting at most `max_queue_delay` (from the first request's arrival)
//! for more; a preferred batch size, once reached, is sent at once.

use crate::error::ServeError;
use crate::metrics::Metrics;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use rdeploy::core::{Signature, Tensor, Wrapper};
use rdeploy_serving::{ModelSettings, batch};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// A validated request waiting for an instance.
struct Job {
    inputs: Vec<Tensor>,
    rows: usize,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Vec<Tensor>, ServeError>>,
}

/// Count and total time of one statistic (Triton's `StatisticDuration`).
#[derive(Default, Debug)]
pub struct StatDuration {
    /// Events.
    pub count: AtomicU64,
    /// Their total time, in nanoseconds.
    pub ns: AtomicU64,
}

impl StatDuration {
    /// Adds one event of `d`.
    pub fn add_one(&self, d: Duration) {
        self.add(1, d);
    }

    fn add(&self, n: u64, d: Duration) {
        self.count.fetch_add(n, Ordering::Relaxed);
        self.ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// `(count, ns)`.
    pub fn get(&self) -> (u64, u64) {
        (
            self.count.load(Ordering::Relaxed),
            self.ns.load(Ordering::Relaxed),
        )
    }
}

/// Per-version statistics, as Triton's statistics extension reports them.
#[derive(Default, Debug)]
pub struct Stats {
    /// Successful requests and their end-to-end time.
    pub success: StatDuration,
    /// Failed requests and their time.
    pub fail: StatDuration,
    /// Time requests waited in the queue.
    pub queue: StatDuration,
    /// Time in the engine, per request.
    pub compute: StatDuration,
    /// Inferences: batch rows run (a request of batch 4 counts 4).
    pub inference_count: AtomicU64,
    /// Engine calls.
    pub execution_count: AtomicU64,
    /// Milliseconds since the epoch of the last inference.
    pub last_inference_ms: AtomicU64,
    /// Engine calls per batch size (rows): (count, ns).
    pub batches: Mutex<BTreeMap<usize, (u64, u64)>>,
}

/// One served version of one model.
pub struct ModelVersion {
    /// The model's name.
    pub name: String,
    /// The version.
    pub version: u64,
    /// The backend its work dir was deployed for.
    pub backend: String,
    /// Its serving settings (config.pbtxt).
    pub settings: ModelSettings,
    /// The full config, for the model-configuration endpoints.
    pub config: rdeploy_serving::proto::ModelConfig,
    /// The engine's signature (all instances share it).
    pub signature: Signature,
    /// Statistics.
    pub stats: Stats,
    queue: Sender<Job>,
    capacity: usize,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for ModelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} ({})", self.name, self.version, self.backend)
    }
}

/// How a model version's pool is set up.
pub struct PoolOptions {
    /// Requests that may wait at once when the config sets no
    /// `default_queue_policy.max_queue_size`; more get 503/UNAVAILABLE.
    pub queue_capacity: usize,
    /// Where the pool records its metrics.
    pub metrics: Arc<Metrics>,
}

/// What a model version is: its name, version, backend and config.
pub struct VersionSpec {
    /// The model's name.
    pub name: String,
    /// The version.
    pub version: u64,
    /// The backend its work dir was deployed for.
    pub backend: String,
    /// The full config.
    pub config: rdeploy_serving::proto::ModelConfig,
    /// Its checked serving settings.
    pub settings: ModelSettings,
}

impl ModelVersion {
    /// Starts one thread per wrapper, all fed by one bounded queue.
    pub fn start(
        spec: VersionSpec,
        wrappers: Vec<Arc<dyn Wrapper>>,
        opts: &PoolOptions,
    ) -> Arc<ModelVersion> {
        let VersionSpec {
            name,
            version,
            backend,
            config,
            settings,
        } = spec;
        let configured = settings
            .dynamic_batching
            .as_ref()
            .map_or(0, |d| d.max_queue_size);
        let capacity = if configured > 0 {
            configured
        } else {
            opts.queue_capacity
        }
        .max(1);
        let (tx, rx) = crossbeam_channel::bounded::<Job>(capacity);
        let signature = wrappers
            .first()
            .map(|w| w.signature().clone())
            .unwrap_or_else(|| Signature {
                inputs: Vec::new(),
                outputs: Vec::new(),
                device: rdeploy::core::Device::cpu(),
            });
        let mv = Arc::new(ModelVersion {
            name: name.clone(),
            version,
            backend,
            settings,
            config,
            signature,
            stats: Stats::default(),
            queue: tx,
            capacity,
            metrics: opts.metrics.clone(),
        });
        for (i, w) in wrappers.into_iter().enumerate() {
            let (rx, weak) = (rx.clone(), Arc::downgrade(&mv));
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{version}-{i}"))
                .spawn(move || instance_loop(&rx, w.as_ref(), &weak));
            if let Err(e) = spawned {
                tracing::error!("cannot start instance {i} of {name}: {e}");
            }
        }
        mv
    }

    /// Queues validated inputs (in signature order) and waits for the outputs (in signature
    /// order).
    ///
    /// # Errors
    /// [`ServeError::Unavailable`] when the queue is full or the model is stopping;
    /// [`ServeError::Timeout`] past `timeout`; the engine's errors.
    pub async fn infer(
        &self,
        inputs: Vec<Tensor>,
        timeout: Duration,
    ) -> Result<Vec<Tensor>, ServeError> {
        let rows = if self.settings.max_batch_size > 0 {
            inputs
                .first()
                .and_then(|t| t.shape().first().copied())
                .unwrap_or(1)
        } else {
            1
        };
        let (reply, rx) = oneshot::channel();
        let job = Job {
            inputs,
            rows,
            enqueued: Instant::now(),
            reply,
        };
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(ServeError::Unavailable(format!(
                    "model '{}' version {}: its queue is full ({} requests waiting); retry later, or raise --queue-size / dynamic_batching.default_queue_policy.max_queue_size",
                    self.name, self.version, self.capacity
                )));
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(ServeError::Unavailable(format!(
                    "model '{}' version {} has no running instance",
                    self.name, self.version
                )));
            }
        }
        self.metrics
            .queue_depth(&self.name, self.version, self.queue.len());
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ServeError::Internal(format!(
                "model '{}' version {}: the instance stopped before answering",
                self.name, self.version
            ))),
            Err(_) => Err(ServeError::Timeout(format!(
                "model '{}' version {}: no answer within {:.3} s (--request-timeout)",
                self.name,
                self.version,
                timeout.as_secs_f64()
            ))),
        }
    }

    /// Requests waiting now.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// Whether `job` can join a batch led by `lead`: same dtypes and dims but the first.
fn joins(lead: &Job, job: &Job) -> bool {
    lead.inputs.len() == job.inputs.len()
        && lead
            .inputs
            .iter()
            .zip(&job.inputs)
            .all(|(a, b)| a.dtype() == b.dtype() && a.shape().get(1..) == b.shape().get(1..))
}

fn instance_loop(rx: &Receiver<Job>, w: &dyn Wrapper, mv: &std::sync::Weak<ModelVersion>) {
    let mut carry: Option<Job> = None;
    loop {
        let first = match carry.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        let Some(model) = mv.upgrade() else { return };
        if first.reply.is_closed() {
            continue; // the client gave up (timeout, disconnect)
        }
        let s = &model.settings;
        let mut batch = vec![first];
        let mut rows = batch[0].rows;
        if let (Some(d), true) = (&s.dynamic_batching, s.max_batch_size > 0) {
            let deadline = batch[0].enqueued + d.max_queue_delay;
            while rows < s.max_batch_size && !d.preferred_batch_sizes.contains(&rows) {
                let next = match rx.try_recv() {
                    Ok(j) => Ok(j),
                    Err(_) => rx.recv_deadline(deadline),
                };
                match next {
                    Ok(j) if j.reply.is_closed() => continue,
                    Ok(j) if joins(&batch[0], &j) && rows + j.rows <= s.max_batch_size => {
                        rows += j.rows;
                        batch.push(j);
                    }
                    Ok(j) => {
                        carry = Some(j);
                        break;
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        run_batch(&model, w, batch, rows);
    }
}

fn run_batch(model: &ModelVersion, w: &dyn Wrapper, mut batch: Vec<Job>, rows: usize) {
    let start = Instant::now();
    model
        .metrics
        .queue_depth(&model.name, model.version, model.queue.len());
    for j in &batch {
        model.stats.queue.add(1, start - j.enqueued);
        model
            .metrics
            .queue_time(&model.name, model.version, start - j.enqueued);
    }
    let sizes: Vec<usize> = batch.iter().map(|j| j.rows).collect();
    let result: Result<Vec<Vec<Tensor>>, ServeError> = if batch.len() == 1 {
        let inputs = std::mem::take(&mut batch[0].inputs);
        w.execute(inputs).map(|o| vec![o]).map_err(ServeError::from)
    } else {
        (|| -> Result<Vec<Vec<Tensor>>, ServeError> {
            let n_in = batch[0].inputs.len();
            let mut joined = Vec::with_capacity(n_in);
            for i in 0..n_in {
                let parts: Vec<Tensor> = batch
                    .iter_mut()
                    .map(|j| {
                        std::mem::replace(
                            &mut j.inputs[i],
                            Tensor::zeros(rdeploy::core::DType::U8, &[0]),
                        )
                    })
                    .collect();
                joined.push(batch::concat(&parts)?);
            }
            let outs = w.execute(joined)?;
            let mut per_job: Vec<Vec<Tensor>> = sizes
                .iter()
                .map(|_| Vec::with_capacity(outs.len()))
                .collect();
            for (o, spec) in outs.into_iter().zip(&model.signature.outputs) {
                let parts = batch::split(o, &sizes).map_err(|e| {
                    ServeError::Internal(format!(
                        "model '{}' output '{}': {e}; the model cannot be batched: serve it with max_batch_size 0",
                        model.name, spec.name
                    ))
                })?;
                for (slot, part) in per_job.iter_mut().zip(parts) {
                    slot.push(part);
                }
            }
            Ok(per_job)
        })()
    };
    let took = start.elapsed();
    model.stats.execution_count.fetch_add(1, Ordering::Relaxed);
    model
        .stats
        .inference_count
        .fetch_add(rows as u64, Ordering::Relaxed);
    model.stats.compute.add(batch.len() as u64, took);
    if let Ok(mut b) = model.stats.batches.lock() {
        let e = b.entry(rows).or_insert((0, 0));
        e.0 += 1;
        e.1 += u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    model
        .stats
        .last_inference_ms
        .store(now_ms, Ordering::Relaxed);
    model
        .metrics
        .execution(&model.name, model.version, rows, took);
    match result {
        Ok(outs) => {
            for (j, o) in batch.into_iter().zip(outs) {
                let _ = j.reply.send(Ok(o));
            }
        }
        Err(e) => {
            for j in batch {
                let _ = j.reply.send(Err(e.clone()));
            }
        }
    }
}
