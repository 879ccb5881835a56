//! `rdeploy bench --report`: one self-contained HTML file (inline SVG charts drawn with
//! `plotters`, inline CSS, no script and no network at view time).

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use rdeploy::bench::BenchReport;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// One benchmarked backend: what deploying and loading it took.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BenchEntry {
    /// The backend's name.
    pub backend: String,
    /// The engine's version, from the work dir's manifest.
    pub version: String,
    /// Deploying the model (conversion included), in ms; `None` for a work dir given as is.
    pub deploy_ms: Option<f64>,
    /// Loading the deployed files, in ms.
    pub load_ms: f64,
    /// Resident memory the deploy and load added to the process, in MiB.
    pub load_rss_mb: Option<f64>,
}

/// The measurements of one setting (caller threads, batch) for every backend, in the
/// entries' order.
pub(crate) struct BenchRun {
    pub concurrency: usize,
    /// The batch size set with `--batch`, or `None` for the inputs as given.
    pub batch: Option<usize>,
    pub reports: Vec<BenchReport>,
}

impl BenchRun {
    fn label(&self) -> String {
        format!(
            "{} thread(s), batch {}",
            self.concurrency,
            self.batch.map_or_else(
                || {
                    self.reports
                        .first()
                        .map_or_else(|| "?".into(), |r| r.batch.to_string())
                },
                |b| b.to_string()
            )
        )
    }
}

/// One backend's per-operator profile (`bench --profile-ops`).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BackendProfile {
    pub backend: String,
    /// Profiled calls (after a warm-up call).
    pub runs: u64,
    /// Time per ONNX operator type, largest first.
    pub by_op_type: Vec<rdeploy::profile::OpTypeTime>,
    /// Every engine node with the ONNX operator it maps to.
    pub nodes: Vec<rdeploy::profile::MappedOp>,
    /// Why there is no profile (the backend has no profiler, or it failed).
    pub error: Option<String>,
}

/// Everything the report shows.
pub(crate) struct BenchPage<'a> {
    pub model: &'a Path,
    pub entries: &'a [BenchEntry],
    pub runs: &'a [BenchRun],
    pub failed: &'a [(String, String)],
    pub rounds: u32,
    pub warmup: usize,
    pub threads: Option<u32>,
    pub profiles: &'a [BackendProfile],
}

/// Writes the report to `path` (whole or not at all).
///
/// # Errors
/// Drawing a chart, or writing the file (named in the error).
pub(crate) fn write_bench_report(path: &Path, page: &BenchPage<'_>) -> Result<()> {
    let html = render(page)?;
    rdeploy::core::atomic::write_atomic(path, |w| w.write_all(html.as_bytes()))
        .map_err(|e| anyhow!("writing the report {}: {e}", path.display()))
}

fn chart_err(e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow!("drawing a chart of the report: {e:?}")
}

/// HTML-escapes text for element content and attribute values.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn color(i: usize) -> RGBColor {
    // Colour-blind-safe qualitative colours (Okabe & Ito, 2008).
    const C: [(u8, u8, u8); 8] = [
        (0, 114, 178),
        (230, 159, 0),
        (0, 158, 115),
        (204, 121, 167),
        (86, 180, 233),
        (213, 94, 0),
        (240, 228, 66),
        (0, 0, 0),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

const FONT: &str = "sans-serif";

/// Latency spans of each backend on a log scale (backends often differ 10-100x): a dot at
/// the p50, a line from the min to the p99, a tick at the p90.
fn latency_ranges(run: &BenchRun, entries: &[BenchEntry]) -> Result<String> {
    let n = run.reports.len();
    let (lo, hi) = span(
        run.reports
            .iter()
            .flat_map(|r| [r.latency_ms.min, r.latency_ms.p99]),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Latency by backend ({})", run.label()), (FONT, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), (lo..hi).log_scale())
            .map_err(chart_err)?;
        let names: Vec<String> = entries.iter().map(|e| e.backend.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.max(1))
            .x_label_formatter(&|x| index_label(&names, *x))
            .y_labels(8)
            .y_desc("ms per call (log scale)")
            .label_style((FONT, 13))
            .draw()
            .map_err(chart_err)?;
        for (i, r) in run.reports.iter().enumerate() {
            let (x, c, l) = (i as f64, color(i), &r.latency_ms);
            let line = |y0: f64, y1: f64, x0: f64, x1: f64| {
                PathElement::new(vec![(x0, y0), (x1, y1)], c.stroke_width(2))
            };
            chart
                .draw_series([
                    line(l.min, l.p99, x, x),
                    line(l.p90, l.p90, x - 0.12, x + 0.12),
                    line(l.p99, l.p99, x - 0.06, x + 0.06),
                    line(l.min, l.min, x - 0.06, x + 0.06),
                ])
                .map_err(chart_err)?;
            chart
                .draw_series(std::iter::once(Circle::new((x, l.p50), 6, c.filled())))
                .map_err(chart_err)?;
        }
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}

/// A log-scale range around positive `values`, a little wider than them.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi <= 0.0 {
        return (1e-3, 1.0);
    }
    (lo / 1.5, hi * 1.5)
}

/// The label of category `x` (an integer position) on an axis of names.
fn index_label(names: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 1e-6 && i >= 0.0 {
        names.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// The share of calls at or below each latency, one line per backend.
fn latency_cdf(run: &BenchRun, entries: &[BenchEntry]) -> Result<String> {
    let (lo, hi) = span(
        run.reports
            .iter()
            .flat_map(|r| [r.latency_ms.min, r.latency_ms.max]),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Latency distribution ({})", run.label()),
                (FONT, 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((lo..hi).log_scale(), 0f64..1.0)
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .x_desc("ms per call (log scale)")
            .y_desc("share of calls at or below")
            .label_style((FONT, 13))
            .draw()
            .map_err(chart_err)?;
        for (i, (r, e)) in run.reports.iter().zip(entries).enumerate() {
            let mut v = r.latency_samples_ms.clone();
            v.sort_by(f64::total_cmp);
            let len = v.len().max(1) as f64;
            let pts: Vec<(f64, f64)> = v
                .iter()
                .enumerate()
                .map(|(k, &x)| (x, (k + 1) as f64 / len))
                .collect();
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(chart_err)?
                .label(e.backend.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()
            .map_err(chart_err)?;
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}

/// Samples per second at each setting, one line per backend (only with several settings).
fn throughput_lines(runs: &[BenchRun], entries: &[BenchEntry]) -> Result<String> {
    let n = runs.len();
    let ymax = runs
        .iter()
        .flat_map(|r| r.reports.iter().map(|x| x.samples_per_s))
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.15;
    let labels: Vec<String> = runs.iter().map(BenchRun::label).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Throughput by setting", (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.3f64..(n as f64 - 0.7), 0f64..ymax)
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| index_label(&labels, *x))
            .y_desc("samples per second")
            .label_style((FONT, 12))
            .draw()
            .map_err(chart_err)?;
        for (i, e) in entries.iter().enumerate() {
            let pts: Vec<(f64, f64)> = runs
                .iter()
                .enumerate()
                .map(|(k, r)| (k as f64, r.reports[i].samples_per_s))
                .collect();
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(chart_err)?
                .label(e.backend.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, c.filled())))
                .map_err(chart_err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()
            .map_err(chart_err)?;
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}

/// A `<figure>` holding an inline SVG chart.
fn figure(id: &str, svg: &str, caption: &str) -> String {
    // The SVG from plotters starts with an XML declaration-free <svg ...>; give it an id
    // and a role so it can be found and read out.
    let svg = svg.replacen(
        "<svg ",
        &format!(
            "<svg id=\"{id}\" class=\"chart\" role=\"img\" aria-label=\"{}\" ",
            esc(caption)
        ),
        1,
    );
    format!(
        "<figure>{svg}<figcaption>{}</figcaption></figure>\n",
        esc(caption)
    )
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.digits$}"))
}

fn machine() -> Vec<(&'static str, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    vec![
        ("rdeploy", env!("CARGO_PKG_VERSION").to_string()),
        (
            "date",
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        ),
        ("CPU", cpu),
        ("logical CPUs", cpus.to_string()),
        ("OS", os),
        ("command", std::env::args().collect::<Vec<_>>().join(" ")),
    ]
}

fn render(page: &BenchPage<'_>) -> Result<String> {
    let mut h = String::new();
    let title = format!("rdeploy bench: {}", page.model.display());
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style></head><body>\n<h1>{}</h1>",
        esc(&title),
        esc(&title)
    );
    let _ = writeln!(
        h,
        "<p class=\"lede\">{} backend(s); each setting's timed calls interleaved across backends in {} rounds after {} warmup calls per thread{}. Ranked by p50 latency of the whole <code>forward</code> call.</p>",
        page.entries.len(),
        page.rounds,
        page.warmup,
        page.threads
            .map(|t| format!("; {t} engine threads each"))
            .unwrap_or_default()
    );
    for (k, run) in page.runs.iter().enumerate() {
        let _ = writeln!(h, "<section class=\"run\"><h2>{}</h2>", esc(&run.label()));
        h.push_str(&results_table(run, page.entries));
        h.push_str(&figure(
            &format!("latency-ranges-{k}"),
            &latency_ranges(run, page.entries)?,
            &format!(
                "latency per backend, {}: dot p50, tick p90, line min to p99",
                run.label()
            ),
        ));
        h.push_str(&figure(
            &format!("latency-cdf-{k}"),
            &latency_cdf(run, page.entries)?,
            &format!("latency distribution, {}", run.label()),
        ));
        h.push_str("</section>\n");
    }
    if page.runs.len() > 1 {
        h.push_str("<section><h2>Across settings</h2>\n");
        h.push_str(&figure(
            "throughput",
            &throughput_lines(page.runs, page.entries)?,
            "samples per second at each setting",
        ));
        h.push_str("</section>\n");
    }
    if !page.profiles.is_empty() {
        h.push_str("<section><h2>Time per operator (each engine's profiler)</h2>\n<pre>");
        h.push_str(&esc(&crate::commands::profile_table(page.profiles)));
        h.push_str("</pre></section>\n");
    }
    h.push_str(&settings_table(page));
    if !page.failed.is_empty() {
        h.push_str(
            "<section><h2>Not benchmarked</h2><table><tr><th>backend</th><th>why</th></tr>\n",
        );
        for (n, e) in page.failed {
            let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(n), esc(e));
        }
        h.push_str("</table></section>\n");
    }
    h.push_str("<section><h2>Machine</h2><table>\n");
    for (k, v) in machine() {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    h.push_str("</table></section>\n");
    // The numbers behind the page, for scripts (the same fields as --json's reports).
    let data: Vec<serde_json::Value> = page
        .runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "concurrency": r.concurrency,
                "batch": r.batch,
                "reports": r.reports,
            })
        })
        .collect();
    let json = serde_json::to_string(&serde_json::json!({
        "model": page.model,
        "backends": page.entries,
        "runs": data,
    }))?
    .replace("</", "<\\/");
    let _ = writeln!(
        h,
        "<script type=\"application/json\" id=\"bench-data\">{json}</script>\n</body></html>"
    );
    Ok(h)
}

fn results_table(run: &BenchRun, entries: &[BenchEntry]) -> String {
    let order = crate::commands::ranked(&run.reports);
    let best = order
        .first()
        .map_or(1.0, |&i| run.reports[i].latency_ms.p50);
    let mut h = String::from(
        "<table class=\"results\"><tr><th>rank</th><th>backend</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>mean ms</th><th>std ms</th><th>min ms</th><th>max ms</th><th>execute p50 ms</th><th>calls/s</th><th>samples/s</th><th>vs best</th><th>peak MiB</th><th>GFLOP/s</th></tr>\n",
    );
    for (rank, &i) in order.iter().enumerate() {
        let r = &run.reports[i];
        let l = &r.latency_ms;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.1}</td><td>{:.1}</td><td>{:.2}x</td><td>{}</td><td>{}</td></tr>",
            rank + 1,
            {
                let RGBColor(cr, cg, cb) = color(i);
                format!("#{cr:02x}{cg:02x}{cb:02x}")
            },
            esc(&entries[i].backend),
            l.p50,
            l.p90,
            l.p99,
            l.mean,
            l.std,
            l.min,
            l.max,
            r.execute_ms.p50,
            r.throughput_per_s,
            r.samples_per_s,
            l.p50 / best,
            fmt_opt(r.peak_rss_mb, 0),
            fmt_opt(r.gflops_per_s, 2),
        );
    }
    h.push_str("</table>\n");
    h
}

fn settings_table(page: &BenchPage<'_>) -> String {
    let mut h = String::from(
        "<section><h2>Backends, versions and settings</h2><table class=\"settings\"><tr><th>backend</th><th>version</th><th>device</th><th>deploy ms</th><th>load ms</th><th>memory added at load, MiB</th><th>engine settings</th><th>inputs</th></tr>\n",
    );
    for (i, e) in page.entries.iter().enumerate() {
        let first = page.runs.first().and_then(|r| r.reports.get(i));
        let settings = first.map_or_else(String::new, |r| {
            r.settings
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let inputs = first.map_or_else(String::new, |r| {
            r.input_shapes
                .iter()
                .map(|(n, s)| format!("{n} {s:?}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.backend),
            esc(&e.version),
            esc(first.map_or("", |r| r.device.as_str())),
            fmt_opt(e.deploy_ms, 0),
            e.load_ms,
            fmt_opt(e.load_rss_mb, 1),
            esc(&settings),
            esc(&inputs),
        );
    }
    h.push_str("</table></section>\n");
    h
}

const CSS: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.4em;word-break:break-all}h2{font-size:1.15em;margin-top:1.6em}\
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}\
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}th{background:#f3f3f3}\
td:nth-child(2),th:first-child{text-align:left}.results td{white-space:nowrap}\
.settings td{text-align:left;word-break:break-word}\
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}\
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.4em;vertical-align:middle}\
.lede{color:#444}";
