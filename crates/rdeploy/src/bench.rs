//! The bench harness: latency percentiles, throughput, and the engine call (`execute`) timed
//! inside the whole `forward`, with threads sharing one wrapper.

use rdeploy_core::{Error, NamedTensors, Result, Tensor, Wrapper, validate_inputs};
use serde::Serialize;
use std::time::{Duration, Instant};

/// The most threads [`bench`] starts (the command line's `--concurrency` range).
pub const MAX_CONCURRENCY: usize = 256;

/// Options of [`bench`].
#[derive(Clone, Copy)]
pub struct BenchOptions<'a> {
    /// Untimed calls per thread first (caches, lazy allocation, JIT).
    pub warmup: usize,
    /// Timed calls in total, over all threads (ignored when `duration` is set).
    pub iters: usize,
    /// Instead of a number of calls: call until this much wall time has passed (each thread
    /// finishes the call it is in). In [`bench_interleaved`], the time is split over the rounds.
    pub duration: Option<Duration>,
    /// Threads calling `forward` at once on the one wrapper (like `benchmark_app`'s infer
    /// requests); each warms up, then they share the timed calls.
    pub concurrency: usize,
    /// Called after every call (warmup included), for progress bars.
    pub tick: Option<&'a (dyn Fn() + Sync)>,
}

impl Default for BenchOptions<'_> {
    fn default() -> Self {
        BenchOptions {
            warmup: 10,
            iters: 100,
            duration: None,
            concurrency: 1,
            tick: None,
        }
    }
}

/// Summary statistics of a set of timings, in milliseconds. Percentiles are nearest-rank on
/// the sorted samples.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    /// Arithmetic mean.
    pub mean: f64,
    /// Standard deviation (population).
    pub std: f64,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// The statistics of `v` (all zeros when empty).
    pub fn of(mut v: Vec<f64>) -> Percentiles {
        if v.is_empty() {
            return Percentiles {
                mean: 0.0,
                std: 0.0,
                min: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
            };
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64;
        Percentiles {
            mean,
            std: var.sqrt(),
            min: v[0],
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// One benchmark's measurements (milliseconds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    /// The backend's name.
    pub backend: String,
    /// The backend's version (filled by the caller, who knows the work dir).
    pub backend_version: String,
    /// The device run on.
    pub device: String,
    /// Untimed calls per thread.
    pub warmup: usize,
    /// Timed calls in total (as made: with a duration, the count reached).
    pub iters: usize,
    /// Threads.
    pub concurrency: usize,
    /// Samples per call: the first dimension of the inputs (1 when they have no dims).
    pub batch: usize,
    /// Engine settings in effect (precision, streams...), as the wrapper reports them.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// The input shapes benchmarked.
    pub input_shapes: Vec<(String, Vec<usize>)>,
    /// Whole `forward` per call: validation, the engine call, naming.
    pub latency_ms: Percentiles,
    /// The engine call alone (`execute`) per call.
    pub execute_ms: Percentiles,
    /// For a backend hosted in a worker process (Python backends), the engine's own time per
    /// call as the worker measured it; `execute_ms - engine_ms` is the worker's cost (transfer
    /// through shared memory, messages, scheduling). `None` for in-process engines.
    pub engine_ms: Option<Percentiles>,
    /// Mean of (forward - execute): validation, ordering and naming.
    pub overhead_ms_mean: f64,
    /// Timed calls over the wall time of the timed phase.
    pub throughput_per_s: f64,
    /// `throughput_per_s` times `batch`: samples per second.
    pub samples_per_s: f64,
    /// The process's peak resident memory (VmHWM, MiB) during this model's timed calls: the
    /// peak is reset before each block of calls ([`memory::reset_peak`]), so it is this run's,
    /// but it includes everything the process holds (other loaded models too). `None` off Linux.
    pub peak_rss_mb: Option<f64>,
    /// Whole-`forward` latency of every timed call in milliseconds, in the order each thread
    /// made them (threads one after another), for plots; not serialised.
    #[serde(skip)]
    pub latency_samples_ms: Vec<f64>,
    /// The model's FLOPs per call at these inputs (`rdeploy::inspect`), when counted.
    pub flops_per_call: Option<u64>,
    /// FLOPs per call over the p50 latency, in GFLOP/s, when counted.
    pub gflops_per_s: Option<f64>,
}

impl BenchReport {
    /// Records the model's FLOPs per call and the rate at the p50 latency.
    pub fn set_flops(&mut self, flops: Option<u64>) {
        self.flops_per_call = flops;
        self.gflops_per_s = flops
            .filter(|_| self.latency_ms.p50 > 0.0)
            .map(|f| f as f64 / (self.latency_ms.p50 * 1e-3) / 1e9);
    }
}

/// Benchmarks `wrapper` on `inputs`.
///
/// # Errors
/// [`Error::InputMismatch`] when `iters` or `concurrency` is 0 or the inputs do not fit; the
/// first error of any call.
pub fn bench(
    wrapper: &dyn Wrapper,
    inputs: &NamedTensors,
    options: &BenchOptions<'_>,
) -> Result<BenchReport> {
    if options.iters == 0 && options.duration.is_none() {
        return Err(Error::config_key("iters", "must be at least 1"));
    }
    if options.duration.is_some_and(|d| d.is_zero()) {
        return Err(Error::config_key("duration", "must be more than 0 seconds"));
    }
    let m = measure(wrapper, inputs, options)?;
    Ok(report(wrapper, inputs, options, m))
}

/// Warmup, then `options.iters` timed calls or calls for `options.duration` (iters 0 and no
/// duration: warmup only).
fn measure(
    wrapper: &dyn Wrapper,
    inputs: &NamedTensors,
    options: &BenchOptions<'_>,
) -> Result<Measured> {
    if options.concurrency == 0 {
        return Err(Error::config_key(
            if options.iters == 0 {
                "iters"
            } else {
                "concurrency"
            },
            "must be at least 1",
        ));
    }
    if options.concurrency > MAX_CONCURRENCY {
        return Err(Error::config_key(
            "concurrency",
            format!(
                "{} threads is more than the {MAX_CONCURRENCY} this harness runs; use fewer",
                options.concurrency
            ),
        ));
    }
    let threads = options.concurrency;
    let barrier = std::sync::Barrier::new(threads);
    let tick = || {
        if let Some(t) = options.tick {
            t();
        }
    };
    // One timed call: forward, step by step, so that the engine call is timed inside the whole
    // call. Returns (forward ms, execute ms, engine ms as the wrapper measured it).
    let call = || -> Result<(f64, f64, Option<f64>)> {
        let inputs = inputs.clone();
        let t0 = Instant::now();
        let ordered = validate_inputs(wrapper.inputs(), inputs)?;
        let t1 = Instant::now();
        // RDEPLOY_TIME_EXECUTE's TimeCounter lines cover bench runs too, as MMDeploy's
        // profiler shows them.
        let (outs, engine) =
            rdeploy_core::timing::time(wrapper.backend(), || wrapper.execute_timed(ordered))?;
        let t2 = Instant::now();
        let named_out: Vec<(String, Tensor)> = wrapper
            .outputs()
            .iter()
            .map(|o| o.name.clone())
            .zip(outs)
            .collect();
        let t3 = Instant::now();
        std::hint::black_box(named_out);
        Ok((
            (t3 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            engine.map(|d| d.as_secs_f64() * 1e3),
        ))
    };
    type Timed = (Vec<(f64, f64, Option<f64>)>, Instant, Instant);
    let timed = options.iters > 0 || options.duration.is_some();
    if timed {
        memory::reset_peak();
    }
    let results: Vec<Result<Timed>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, call, tick) = (&barrier, &call, &tick);
                // Timed runs split evenly, the first threads taking the remainder.
                let n = options.iters / threads + usize::from(t < options.iters % threads);
                let duration = options.duration;
                sc.spawn(move || -> Result<Timed> {
                    let mut warm = Ok(());
                    for _ in 0..options.warmup {
                        if let Err(e) = call() {
                            warm = Err(e);
                            break;
                        }
                        tick();
                    }
                    // Every thread waits here even after an error, so none waits forever.
                    barrier.wait();
                    warm?;
                    let start = Instant::now();
                    let mut v = Vec::with_capacity(n);
                    match duration {
                        // At least one call, then until the time is up.
                        Some(d) => loop {
                            v.push(call()?);
                            tick();
                            if start.elapsed() >= d {
                                break;
                            }
                        },
                        None => {
                            for _ in 0..n {
                                v.push(call()?);
                                tick();
                            }
                        }
                    }
                    Ok((v, start, Instant::now()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::backend(
                        wrapper.backend(),
                        "a benchmark thread panicked",
                    ))
                })
            })
            .collect()
    });
    let mut m = Measured::default();
    let (latency, execute, engine) = (&mut m.latency, &mut m.execute, &mut m.engine);
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    for r in results {
        let (v, start, end) = r?;
        for (l, e, g) in v {
            latency.push(l);
            execute.push(e);
            if let Some(g) = g {
                engine.push(g);
            }
        }
        first = Some(first.map_or(start, |f| f.min(start)));
        last = Some(last.map_or(end, |l| l.max(end)));
    }
    m.wall_s = match (first, last) {
        (Some(f), Some(l)) => (l - f).as_secs_f64(),
        _ => 0.0,
    };
    if timed {
        m.peak_rss = memory::peak_rss_bytes();
    }
    Ok(m)
}

/// Raw timings of one or more measured phases.
#[derive(Clone, Debug, Default)]
struct Measured {
    latency: Vec<f64>,
    execute: Vec<f64>,
    /// The engine's own time, for wrappers that measure it (one per call, or none).
    engine: Vec<f64>,
    /// Wall time of the timed phases, in seconds.
    wall_s: f64,
    /// The process's peak resident bytes over the timed phases.
    peak_rss: Option<u64>,
}

impl Measured {
    fn extend(&mut self, o: Measured) {
        self.latency.extend(o.latency);
        self.execute.extend(o.execute);
        self.engine.extend(o.engine);
        self.wall_s += o.wall_s;
        self.peak_rss = self.peak_rss.max(o.peak_rss);
    }
}

fn report(
    wrapper: &dyn Wrapper,
    inputs: &NamedTensors,
    options: &BenchOptions<'_>,
    m: Measured,
) -> BenchReport {
    let Measured {
        latency,
        execute,
        engine,
        wall_s: timed_wall,
        peak_rss,
    } = m;
    let iters = latency.len();
    let overhead = latency
        .iter()
        .zip(&execute)
        .map(|(l, e)| l - e)
        .sum::<f64>()
        / latency.len().max(1) as f64;
    let throughput = if timed_wall > 0.0 {
        iters as f64 / timed_wall
    } else {
        0.0
    };
    let batch = inputs
        .iter()
        .find_map(|(_, t)| t.shape().first().copied())
        .unwrap_or(1);
    BenchReport {
        backend: wrapper.backend().to_string(),
        backend_version: String::new(),
        device: wrapper.device().to_string(),
        warmup: options.warmup,
        iters,
        concurrency: options.concurrency,
        batch,
        settings: wrapper
            .settings()
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
        input_shapes: inputs
            .iter()
            .map(|(n, t)| (n.clone(), t.shape().to_vec()))
            .collect(),
        latency_ms: Percentiles::of(latency.clone()),
        latency_samples_ms: latency,
        execute_ms: Percentiles::of(execute),
        engine_ms: (!engine.is_empty()).then(|| Percentiles::of(engine)),
        overhead_ms_mean: overhead,
        throughput_per_s: throughput,
        samples_per_s: throughput * batch as f64,
        peak_rss_mb: peak_rss.map(|b| b as f64 / (1024.0 * 1024.0)),
        flops_per_call: None,
        gflops_per_s: None,
    }
}

/// Benchmarks several loaded models on the same inputs, interleaved: after each one's warmup,
/// `rounds` rounds each run every model for `iters / rounds` timed calls (or `duration /
/// rounds` of time), the order rotating every round, so machine noise (another process,
/// frequency changes) falls on all alike.
/// Returns one report per model, in the order given.
///
/// # Errors
/// As [`bench`], for the first model that fails.
pub fn bench_interleaved(
    runs: &[(&dyn Wrapper, &NamedTensors)],
    options: &BenchOptions<'_>,
    rounds: usize,
) -> Result<Vec<BenchReport>> {
    let rounds = match options.duration {
        Some(_) => rounds.max(1),
        None => rounds.clamp(1, options.iters.max(1)),
    };
    let mut measured: Vec<Measured> = vec![Measured::default(); runs.len()];
    for (w, inputs) in runs {
        measure(
            *w,
            inputs,
            &BenchOptions {
                iters: 0,
                duration: None,
                ..*options
            },
        )?;
    }
    for round in 0..rounds {
        let per = options.iters / rounds + usize::from(round < options.iters % rounds);
        let duration = options.duration.map(|d| d / rounds as u32);
        if per == 0 && duration.is_none() {
            continue;
        }
        for k in 0..runs.len() {
            let i = (k + round) % runs.len();
            let (w, inputs) = runs[i];
            let m = measure(
                w,
                inputs,
                &BenchOptions {
                    warmup: 0,
                    iters: per,
                    duration,
                    ..*options
                },
            )?;
            measured[i].extend(m);
        }
    }
    Ok(runs
        .iter()
        .zip(measured)
        .map(|((w, inputs), m)| report(*w, inputs, options, m))
        .collect())
}

/// The process's resident memory, from Linux's `/proc/self` (`None` elsewhere or when it
/// cannot be read).
pub mod memory {
    /// Resident bytes now (`VmRSS` in `/proc/self/status`).
    pub fn rss_bytes() -> Option<u64> {
        status_kb("VmRSS:")
    }

    /// The peak resident bytes since the process started or since the last
    /// [`reset_peak`] (`VmHWM` in `/proc/self/status`).
    pub fn peak_rss_bytes() -> Option<u64> {
        status_kb("VmHWM:")
    }

    /// Resets the peak to the current resident size: writing `5` to `/proc/self/clear_refs`
    /// (Linux 4.0+, `proc(5)`). Best effort: where it is refused the peak is the process's.
    pub fn reset_peak() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    fn status_kb(key: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with(key))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
}
