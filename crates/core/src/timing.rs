//! Timing of `execute` calls, like MMDeploy's `TimeCounter`: off by default and free when off.
//!
//! Switch on with [`enable`] or the `RDEPLOY_TIME_EXECUTE` environment variable (read by
//! [`enable_from_env`]): `1` for the defaults, or `WARMUP,LOG_INTERVAL[,BATCH_SIZE]` such as
//! `10,100`. While on, each backend's `execute` calls after the warmup are accumulated and,
//! every `log_interval` calls, logged at info level in MMDeploy's `TimeCounter` format
//! (`mmdeploy/utils/timer.py`): `[onnxruntime]-110 times per count: 9.87 ms, 101.32 FPS`, where
//! the count includes the warmup calls and times are per batch item (`batch_size`, as
//! `TimeCounter.activate(batch_size=...)` takes it).

use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// How timing behaves when on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimingConfig {
    /// Calls not counted at the start (MMDeploy's default: 1).
    pub warmup: usize,
    /// Log the running mean every this many counted calls (MMDeploy's default: 1).
    pub log_interval: usize,
    /// Each call's time is divided by this (MMDeploy's `batch_size`, default 1).
    pub batch_size: usize,
}

impl Default for TimingConfig {
    fn default() -> Self {
        TimingConfig {
            warmup: 1,
            log_interval: 1,
            batch_size: 1,
        }
    }
}

/// What timing measured for one name.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TimingStats {
    /// The timed name (the backend).
    pub name: String,
    /// Calls counted (after the warmup).
    pub count: usize,
    /// Warmup calls seen and not counted.
    pub warmup_seen: usize,
    /// Mean time of a counted call, in milliseconds.
    pub mean_ms: f64,
    /// Sum of counted calls, in milliseconds.
    pub total_ms: f64,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<Option<(TimingConfig, HashMap<String, TimingStats>)>> = Mutex::new(None);

/// Switches timing on with `cfg`, clearing earlier measurements.
pub fn enable(cfg: TimingConfig) {
    if let Ok(mut s) = STATE.lock() {
        *s = Some((cfg, HashMap::new()));
    }
    ENABLED.store(true, Ordering::Release);
}

/// Switches timing off (measurements are kept until the next [`enable`]).
pub fn disable() {
    ENABLED.store(false, Ordering::Release);
}

/// Switches timing on if `RDEPLOY_TIME_EXECUTE` asks for it; returns whether it did.
///
/// # Errors
/// A message when the variable is set but malformed.
pub fn enable_from_env() -> Result<bool, String> {
    let Ok(v) = std::env::var("RDEPLOY_TIME_EXECUTE") else {
        return Ok(false);
    };
    let v = v.trim();
    if v.is_empty() || v == "0" {
        return Ok(false);
    }
    let cfg = if v == "1" {
        TimingConfig::default()
    } else {
        let parts: Option<Vec<usize>> = v.split(',').map(|s| s.trim().parse().ok()).collect();
        match parts.as_deref() {
            Some(&[warmup, log_interval]) if log_interval > 0 => TimingConfig {
                warmup,
                log_interval,
                batch_size: 1,
            },
            Some(&[warmup, log_interval, batch_size]) if log_interval > 0 && batch_size > 0 => {
                TimingConfig {
                    warmup,
                    log_interval,
                    batch_size,
                }
            }
            _ => {
                return Err(format!(
                    "RDEPLOY_TIME_EXECUTE='{v}': use 1, or WARMUP,LOG_INTERVAL[,BATCH_SIZE] such as 10,100"
                ));
            }
        }
    };
    enable(cfg);
    Ok(true)
}

/// Whether timing is on.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Runs `f`, timing it under `name` when timing is on; when off, only one atomic load is added.
pub fn time<T>(name: &str, f: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    let start = Instant::now();
    let out = f();
    record(name, start.elapsed().as_secs_f64() * 1e3);
    out
}

fn record(name: &str, ms: f64) {
    let Ok(mut guard) = STATE.lock() else { return };
    let Some((cfg, map)) = guard.as_mut() else {
        return;
    };
    let s = map.entry(name.to_string()).or_insert_with(|| TimingStats {
        name: name.to_string(),
        ..Default::default()
    });
    if s.warmup_seen < cfg.warmup {
        s.warmup_seen += 1;
        return;
    }
    s.count += 1;
    s.total_ms += ms / cfg.batch_size.max(1) as f64;
    s.mean_ms = s.total_ms / s.count as f64;
    if s.count % cfg.log_interval == 0 {
        tracing::info!("{}", log_line(name, s.warmup_seen + s.count, s.mean_ms));
    }
}

/// MMDeploy's `TimeCounter` line: `[name]-COUNT times per count: MEAN ms, FPS FPS`, COUNT
/// being every call so far (warmup included), MEAN the mean after the warmup.
pub fn log_line(name: &str, count: usize, mean_ms: f64) -> String {
    let fps = if mean_ms > 0.0 { 1000.0 / mean_ms } else { 0.0 };
    format!("[{name}]-{count} times per count: {mean_ms:.2} ms, {fps:.2} FPS")
}

/// The measurements so far, sorted by name.
pub fn report() -> Vec<TimingStats> {
    let Ok(guard) = STATE.lock() else {
        return Vec::new();
    };
    let mut v: Vec<TimingStats> = guard
        .as_ref()
        .map(|(_, m)| m.values().cloned().collect())
        .unwrap_or_default();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test touches the global state, so tests cannot race on it.
    #[test]
    fn counts_after_warmup_and_is_inert_when_off() {
        disable();
        assert_eq!(time("t", || 5), 5);
        assert_eq!(
            log_line("onnxruntime", 110, 9.87),
            "[onnxruntime]-110 times per count: 9.87 ms, 101.32 FPS"
        );
        enable(TimingConfig {
            warmup: 2,
            log_interval: 3,
            batch_size: 1,
        });
        for _ in 0..7 {
            time("t", || std::hint::black_box(1 + 1));
        }
        let r = report();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].count, r[0].warmup_seen), (5, 2));
        assert!(r[0].mean_ms >= 0.0 && (r[0].total_ms - r[0].mean_ms * 5.0).abs() < 1e-9);
        disable();
        time("t", || ());
        assert_eq!(report()[0].count, 5);
    }
}
