//! `rdeploy conformance`: the ONNX backend test suite through rdeploy on each backend, cases
//! in supervised worker processes (`rdeploy conformance-worker`), one time limit per case.

use crate::args::{ConformanceArgs, Suite};
use crate::out;
use anyhow::{Context, Result, anyhow, bail};
use rdeploy::Registry;
use rdeploy::conformance::{CaseMeta, Class, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The prefix of a worker's result lines (engines may print on stdout too).
const RESULT: &str = "@@rdeploy-case ";

/// One case's result on one backend.
#[derive(Clone, Debug, Serialize)]
struct CaseResult {
    backend: String,
    case: String,
    suite: String,
    op: String,
    #[serde(flatten)]
    outcome: Outcome,
}

/// `rdeploy conformance-worker`: runs each case folder read from stdin.
pub(crate) fn worker(
    registry: &Registry,
    backend: &str,
    scratch: &Path,
    config: Option<&Path>,
) -> Result<()> {
    let mut base = base_config(config)?;
    // OpenVINO reads the ONNX file itself (its ONNX frontend, the one `ovc` runs) unless the
    // config says otherwise: the suite measures the engine's operators, not 1,900 starts of
    // the `ovc` converter (~1 s each; --config with model_format='ir' runs that path).
    if backend == "openvino" && base.pointer("/backend_config/model_format").is_none() {
        if !base.is_object() {
            base = serde_json::json!({});
        }
        if !base["backend_config"].is_object() {
            base["backend_config"] = serde_json::json!({});
        }
        base["backend_config"]["model_format"] = serde_json::json!("onnx");
    }
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let case = PathBuf::from(line.context("reading a case from stdin")?);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rdeploy::conformance::run_case(registry, backend, &base, &case, scratch)
        }))
        .unwrap_or_else(|p| Outcome {
            class: Class::Crash,
            detail: format!(
                "rdeploy panicked: {}",
                p.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("?")
            ),
            max_abs_diff: None,
            ms: 0.0,
        });
        writeln!(stdout, "{RESULT}{}", serde_json::to_string(&outcome)?)?;
        stdout.flush()?;
    }
    Ok(())
}

/// The deploy config at `path` as JSON (`{}` without one).
fn base_config(path: Option<&Path>) -> Result<serde_json::Value> {
    Ok(match path {
        Some(p) => rdeploy::Config::from_file(p)?.deploy_config().0,
        None => serde_json::json!({}),
    })
}

/// A running worker for one backend.
struct Worker {
    backend: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: PathBuf,
}

impl Worker {
    fn spawn(backend: &str, config: Option<&Path>, scratch: &Path, log: &Path) -> Result<Worker> {
        let exe = std::env::current_exe().context("finding the rdeploy binary for workers")?;
        let stderr =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(exe);
        // Plugins given to this run are the workers' too.
        for a in plugin_args() {
            cmd.arg(a);
        }
        cmd.args([
            "--log-level",
            "error",
            "conformance-worker",
            "--backend",
            backend,
        ])
        .arg("--scratch")
        .arg(scratch);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            // Its own process group: a timeout kills it and anything it started.
            .process_group(0);
        let mut child = cmd.spawn().context("starting a conformance worker")?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("worker stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("worker stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(r) = line.strip_prefix(RESULT)
                    && tx.send(r.to_string()).is_err()
                {
                    break;
                }
            }
        });
        Ok(Worker {
            backend: backend.to_string(),
            child,
            stdin,
            lines: rx,
            stderr: log.to_path_buf(),
        })
    }

    /// Runs one case, or says how the worker failed on it (then the worker is gone).
    fn ask(&mut self, case: &Path, limit: Duration) -> std::result::Result<Outcome, Outcome> {
        let started = Instant::now();
        let gone = |class, detail: String| Outcome {
            class,
            detail,
            max_abs_diff: None,
            ms: started.elapsed().as_secs_f64() * 1e3,
        };
        if writeln!(self.stdin, "{}", case.display())
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            return Err(gone(Class::Crash, self.death()));
        }
        match self.lines.recv_timeout(limit) {
            Ok(line) => serde_json::from_str(&line)
                .map_err(|e| gone(Class::Crash, format!("unreadable worker answer: {e}"))),
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                Err(gone(
                    Class::Timeout,
                    format!("no result within {:.0} s", limit.as_secs_f64()),
                ))
            }
            Err(RecvTimeoutError::Disconnected) => Err(gone(Class::Crash, self.death())),
        }
    }

    /// How the worker ended, with the end of what it wrote on stderr.
    fn death(&mut self) -> String {
        let status = self.child.wait().map_or_else(
            |e| format!("worker lost: {e}"),
            |s| match std::os::unix::process::ExitStatusExt::signal(&s) {
                Some(sig) => format!("worker killed by signal {sig}"),
                None => format!("worker exited with {s}"),
            },
        );
        let tail = std::fs::read_to_string(&self.stderr)
            .map(|s| {
                let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
                lines[lines.len().saturating_sub(3)..].join(" | ")
            })
            .unwrap_or_default();
        if tail.is_empty() {
            status
        } else {
            format!("{status}: {tail}")
        }
    }

    fn kill(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on the worker's own process group (it was started with
        // process_group(0), so its pgid is its pid); no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `--plugin FILE` arguments of this process, for the workers.
fn plugin_args() -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--plugin" && i + 1 < args.len() {
            out.extend([args[i].clone(), args[i + 1].clone()]);
            i += 1;
        } else if args[i].starts_with("--plugin=") {
            out.push(args[i].clone());
        }
        i += 1;
    }
    out
}

/// The case folders of `suite` under `dir`, by name.
fn cases(dir: &Path, suite: Suite) -> Result<Vec<PathBuf>> {
    let suites: &[&str] = match suite {
        Suite::Node => &["node"],
        Suite::Models => &["models"],
        Suite::All => &["node", "models"],
    };
    let mut out = Vec::new();
    for s in suites {
        let d = dir.join(s);
        let entries = std::fs::read_dir(&d).map_err(|e| {
            anyhow!(
                "{}: {e}; prepare the cases first: .venv/bin/python scripts/prepare-conformance.py --out {} --suite {s}",
                d.display(),
                dir.display()
            )
        })?;
        let mut v: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("case.json").is_file())
            .collect();
        v.sort();
        if v.is_empty() {
            bail!(
                "{} holds no cases (case.json folders); run scripts/prepare-conformance.py",
                d.display()
            );
        }
        out.extend(v);
    }
    Ok(out)
}

fn case_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn run(registry: &Registry, a: ConformanceArgs) -> Result<()> {
    // Output files are checked before the run: the README must have its markers.
    for (p, flag) in [
        (&a.markdown, "--markdown"),
        (&a.results, "--results"),
        (&a.readme, "--readme"),
    ] {
        if let Some(p) = p {
            super::bench::writable(p, flag)?;
        }
    }
    if let Some(p) = &a.readme {
        readme_with_table(p, "")?;
    }
    let mut all = cases(&a.dir, a.suite)?;
    if let Some(f) = &a.filter {
        let re = regex::Regex::new(f).map_err(|e| anyhow!("--filter '{f}': {e}"))?;
        all.retain(|p| re.is_match(&case_name(p)));
    }
    if let Some(n) = a.sample {
        all = all.into_iter().step_by(n as usize).collect();
    }
    if all.is_empty() {
        bail!("no case matches --filter");
    }
    let env = rdeploy::check_env(registry);
    let names: Vec<String> = if a.backends.iter().any(|b| b == "all") {
        env.iter()
            .filter(|b| b.available)
            .map(|b| b.name.clone())
            .collect()
    } else {
        a.backends.clone()
    };
    let mut versions = BTreeMap::new();
    for n in &names {
        match env.iter().find(|b| &b.name == n) {
            Some(b) if b.available => {
                versions.insert(n.clone(), b.version.clone().unwrap_or_default());
            }
            Some(b) => bail!(
                "backend '{n}' is not available: {}",
                b.reason.clone().unwrap_or_default()
            ),
            None => bail!("no backend named '{n}' (rdeploy check-env lists them)"),
        }
    }
    let natives = read_natives(&a.native)?;
    // Checked here, once, so that a bad config is one error and not one per case; workers
    // get an absolute path.
    base_config(a.config.as_deref())?;
    let config = a
        .config
        .as_ref()
        .map(std::path::absolute)
        .transpose()
        .context("--config")?;
    let metas: Vec<CaseMeta> = all
        .iter()
        .map(|p| CaseMeta::read(p).map_err(|e| anyhow!(e)))
        .collect::<Result<_>>()?;
    let jobs = a.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        |j| j as usize,
    );
    let scratch =
        super::scratch_dir("rdeploy-conformance-").context("creating a scratch folder")?;
    // A config a backend refuses (a key's value) is one error, not a refusal of every case:
    // each backend deploys the first case with it once.
    if let Some(path) = &a.config {
        let base = base_config(Some(path))?;
        for n in &names {
            let mut cfg = base.clone();
            if !cfg["backend_config"].is_object() {
                cfg["backend_config"] = serde_json::json!({});
            }
            cfg["backend_config"]["type"] = serde_json::json!(n);
            let config = rdeploy::Config::from_json(&cfg, path)?;
            let probe = rdeploy::deploy(
                registry,
                &config,
                &all[0].join("model.onnx"),
                &scratch.path().join(format!("probe-{n}")),
                &rdeploy::Device::cpu(),
                &rdeploy::DeployOptions::default(),
            );
            if let Err(e @ rdeploy::Error::Config { .. }) = probe {
                bail!(
                    "--config {}: backend '{n}' refuses it: {}",
                    path.display(),
                    e.report()
                );
            }
        }
    }
    // Backend by backend, so a worker keeps its backend (and its loaded engine) across cases.
    let queue: VecDeque<(usize, usize)> = (0..names.len())
        .flat_map(|b| (0..all.len()).map(move |c| (b, c)))
        .collect();
    let total = queue.len();
    let queue = Arc::new(Mutex::new(queue));
    let results: Arc<Mutex<Vec<Option<Outcome>>>> = Arc::new(Mutex::new(vec![None; total]));
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} cases {elapsed} (eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    std::thread::scope(|sc| -> Result<()> {
        let handles: Vec<_> = (0..jobs.min(total))
            .map(|j| {
                let (queue, results, bar) = (&queue, &results, &bar);
                let (names, all, limit) = (&names, &all, a.timeout);
                let config = config.as_deref();
                let dir = scratch.path().join(format!("job{j}"));
                sc.spawn(move || -> Result<()> {
                    let mut current: Option<Worker> = None;
                    loop {
                        let next = queue.lock().map_err(|_| anyhow!("queue"))?.pop_front();
                        let Some((b, c)) = next else { break };
                        let backend = &names[b];
                        if current.as_ref().is_none_or(|w| &w.backend != backend) {
                            current = Some(Worker::spawn(
                                backend,
                                config,
                                &dir.join("work"),
                                &dir.with_extension("stderr"),
                            )?);
                        }
                        let Some(w) = current.as_mut() else { break };
                        let outcome = match w.ask(&all[c], limit) {
                            Ok(o) => o,
                            Err(o) => {
                                // The worker is dead or killed: the next case gets a new one.
                                current = None;
                                o
                            }
                        };
                        bar.set_message(format!("{backend} {}", case_name(&all[c])));
                        results.lock().map_err(|_| anyhow!("results"))?[b * all.len() + c] =
                            Some(outcome);
                        bar.inc(1);
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow!("a conformance job panicked"))??;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let outcomes = std::mem::take(&mut *results.lock().map_err(|_| anyhow!("results"))?);
    let mut rows = Vec::with_capacity(total);
    for (k, o) in outcomes.into_iter().enumerate() {
        let (b, c) = (k / all.len(), k % all.len());
        let o =
            o.ok_or_else(|| anyhow!("case {} on {} did not run", case_name(&all[c]), names[b]))?;
        rows.push(CaseResult {
            backend: names[b].clone(),
            case: metas[c].name.clone(),
            suite: metas[c].suite.clone(),
            op: metas[c].op.clone(),
            outcome: o,
        });
    }
    let report = Report {
        names: &names,
        versions: &versions,
        rows: &rows,
        cases: metas.len(),
        natives: &natives,
        seconds,
        jobs,
        args: &a,
    };
    // Every output is rendered before any is written.
    let readme = match &a.readme {
        Some(p) => Some((p, readme_with_table(p, &report.summary_table())?)),
        None => None,
    };
    let results = format!(
        "{}\n",
        serde_json::to_string_pretty(&report.results_json())?
    );
    if let Some(p) = &a.markdown {
        write_file(p, &report.markdown())?;
    }
    if let Some(p) = &a.results {
        write_file(p, &results)?;
    }
    if let Some((p, text)) = readme {
        write_file(p, &text)?;
    }
    if a.json {
        return out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "seconds": seconds,
                "jobs": jobs,
                "backends": versions,
                "summary": report.counts_json(),
                "cases": rows,
            }))?
        ));
    }
    out(&format!(
        "{} cases x {} backend(s) in {seconds:.0} s with {jobs} worker(s)\n{}",
        metas.len(),
        names.len(),
        report.text_table()
    ))
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    rdeploy::core::atomic::write_atomic(path, |w| w.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// A native run (scripts/conformance-native.py --json): its engine version and each case's
/// status.
#[derive(Deserialize)]
struct NativeFile {
    summary: NativeSummary,
    cases: Vec<NativeCase>,
}

#[derive(Deserialize)]
struct NativeSummary {
    #[serde(default)]
    engine_version: String,
}

#[derive(Deserialize)]
struct NativeCase {
    name: String,
    status: String,
}

struct Native {
    version: String,
    status: BTreeMap<String, String>,
}

fn read_natives(args: &[String]) -> Result<BTreeMap<String, Native>> {
    let mut out = BTreeMap::new();
    for a in args {
        let (backend, file) = a
            .split_once('=')
            .ok_or_else(|| anyhow!("--native '{a}': write BACKEND=FILE.json"))?;
        let text = std::fs::read_to_string(file).with_context(|| format!("--native {file}"))?;
        // Python's json writes non-finite numbers as bare words JSON does not have.
        let text = text
            .replace(": -Infinity", ": null")
            .replace(": Infinity", ": null")
            .replace(": NaN", ": null");
        let f: NativeFile = serde_json::from_str(&text).with_context(|| {
            format!("--native {file}: not the JSON of scripts/conformance-native.py --json")
        })?;
        out.insert(
            backend.to_string(),
            Native {
                version: f.summary.engine_version,
                status: f.cases.into_iter().map(|c| (c.name, c.status)).collect(),
            },
        );
    }
    Ok(out)
}

/// The README at `path` with `table` between its markers.
///
/// # Errors
/// Reading it; markers missing or reversed.
fn readme_with_table(path: &Path, table: &str) -> Result<String> {
    const START: &str = "<!-- conformance:start -->";
    const END: &str = "<!-- conformance:end -->";
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (Some(s), Some(e)) = (text.find(START), text.find(END)) else {
        bail!(
            "{} has no '{START}' ... '{END}' block to fill; add the two lines where the table goes",
            path.display()
        );
    };
    if e < s {
        bail!("{}: '{END}' comes before '{START}'", path.display());
    }
    Ok(format!("{}{START}\n{table}{}", &text[..s], &text[e..]))
}

struct Report<'a> {
    names: &'a [String],
    versions: &'a BTreeMap<String, String>,
    rows: &'a [CaseResult],
    cases: usize,
    natives: &'a BTreeMap<String, Native>,
    seconds: f64,
    jobs: usize,
    args: &'a ConformanceArgs,
}

impl Report<'_> {
    fn of<'b>(&'b self, backend: &'b str) -> impl Iterator<Item = &'b CaseResult> + 'b {
        self.rows.iter().filter(move |r| r.backend == backend)
    }

    fn count(&self, backend: &str, class: Class) -> usize {
        self.of(backend)
            .filter(|r| r.outcome.class == class)
            .count()
    }

    /// Native passes among the cases run, when a native file covers the backend.
    fn native_pass(&self, backend: &str) -> Option<(usize, usize)> {
        let n = self.natives.get(backend)?;
        let run: BTreeSet<&str> = self.of(backend).map(|r| r.case.as_str()).collect();
        let pass = run
            .iter()
            .filter(|c| n.status.get(**c).is_some_and(|s| s == "pass"))
            .count();
        Some((pass, run.len()))
    }

    /// Cases the engine passes natively that fail through rdeploy.
    fn lost<'b>(&'b self, backend: &'b str) -> Vec<&'b CaseResult> {
        let Some(n) = self.natives.get(backend) else {
            return Vec::new();
        };
        self.of(backend)
            .filter(|r| {
                r.outcome.class != Class::Pass && n.status.get(&r.case).is_some_and(|s| s == "pass")
            })
            .collect()
    }

    fn counts_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for b in self.names {
            let mut c = serde_json::Map::new();
            for class in Class::ALL {
                c.insert(class.name().into(), self.count(b, class).into());
            }
            c.insert("total".into(), self.of(b).count().into());
            if let Some((p, _)) = self.native_pass(b) {
                c.insert("native_pass".into(), p.into());
            }
            m.insert(b.clone(), c.into());
        }
        m.into()
    }

    fn results_json(&self) -> serde_json::Value {
        let mut cases: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
        for r in self.rows {
            cases
                .entry(r.case.as_str())
                .or_default()
                .insert(r.backend.as_str(), r.outcome.class.name());
        }
        serde_json::json!({
            "generated_by": self.command(),
            "backends": self.versions,
            "summary": self.counts_json(),
            "cases": cases,
        })
    }

    fn command(&self) -> String {
        let mut c = format!("rdeploy conformance --backends {}", self.names.join(","));
        c.push_str(match self.args.suite {
            Suite::Node => " --suite node",
            Suite::Models => " --suite models",
            Suite::All => " --suite all",
        });
        if let Some(f) = &self.args.filter {
            c.push_str(&format!(" --filter '{f}'"));
        }
        if let Some(p) = &self.args.config {
            c.push_str(&format!(" --config {}", p.display()));
        }
        if let Some(n) = self.args.sample {
            c.push_str(&format!(" --sample {n}"));
        }
        c
    }

    fn text_table(&self) -> String {
        let mut s = format!(
            "{:<14} {:<12} {:>6} {:>6} {:>11} {:>6} {:>8} {:>6} {:>7} {:>7}\n",
            "backend",
            "version",
            "pass",
            "wrong",
            "unsupported",
            "error",
            "timeout",
            "crash",
            "total",
            "native"
        );
        for b in self.names {
            let v: String = self
                .versions
                .get(b)
                .map_or("", String::as_str)
                .chars()
                .take(12)
                .collect();
            s.push_str(&format!(
                "{:<14} {:<12} {:>6} {:>6} {:>11} {:>6} {:>8} {:>6} {:>7} {:>7}\n",
                b,
                v,
                self.count(b, Class::Pass),
                self.count(b, Class::Wrong),
                self.count(b, Class::Unsupported),
                self.count(b, Class::Error),
                self.count(b, Class::Timeout),
                self.count(b, Class::Crash),
                self.of(b).count(),
                self.native_pass(b)
                    .map_or_else(|| "-".to_string(), |(p, _)| p.to_string()),
            ));
        }
        for b in self.names {
            let lost = self.lost(b);
            if !lost.is_empty() {
                s.push_str(&format!(
                    "{b}: {} case(s) pass natively but not through rdeploy: {}\n",
                    lost.len(),
                    lost.iter()
                        .take(20)
                        .map(|r| r.case.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        s
    }

    /// The README's table: one row per backend.
    fn summary_table(&self) -> String {
        let mut s = String::from(
            "| backend | version | pass | wrong | unsupported | error | timeout/crash | native pass |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for b in self.names {
            let total = self.of(b).count();
            s.push_str(&format!(
                "| {b} | {} | {} of {total} | {} | {} | {} | {} | {} |\n",
                self.versions.get(b).map_or("", String::as_str),
                self.count(b, Class::Pass),
                self.count(b, Class::Wrong),
                self.count(b, Class::Unsupported),
                self.count(b, Class::Error),
                self.count(b, Class::Timeout) + self.count(b, Class::Crash),
                self.native_pass(b)
                    .map_or_else(|| "–".to_string(), |(p, _)| p.to_string()),
            ));
        }
        s
    }

    fn markdown(&self) -> String {
        let mut s = String::from("# ONNX conformance by backend\n\n");
        s.push_str(&format!(
            "Generated by `{}` (rdeploy {}, {} cases, {} worker processes, {:.0} s); do not edit by hand.\n\n",
            self.command(),
            env!("CARGO_PKG_VERSION"),
            self.cases,
            self.jobs,
            self.seconds
        ));
        s.push_str(
            "Each case of the ONNX backend test suite (the `onnx` wheel's node tests, serialised by \
             `scripts/prepare-conformance.py` with each case's rtol/atol) is deployed, loaded and run \
             through rdeploy on each backend, and its outputs compared with the case's expected \
             outputs as ONNX's runner does (same count, dtype and shape; `assert_allclose` at the \
             case's tolerances). **pass**: all outputs match; **wrong**: it ran and an output \
             differs; **unsupported**: refused at deploy or load (an operator, type or opset the \
             engine does not take, or a sequence/optional value); **error**: the call failed; \
             **timeout**/**crash**: the worker process was killed or died on the case (each case runs \
             in a worker with a time limit). **native pass**: the same cases run with the engine's \
             own Python API (`scripts/conformance-native.py`).\n\n",
        );
        s.push_str(&self.summary_table());
        if !self.natives.is_empty() {
            let v: Vec<String> = self
                .natives
                .iter()
                .map(|(b, n)| format!("{b} {}", n.version))
                .collect();
            s.push_str(&format!("\nNative runs: {}.\n", v.join(", ")));
        }
        // Lost cases: native passes that fail here, the measure of what rdeploy's layer costs.
        for b in self.names {
            let lost = self.lost(b);
            if self.natives.contains_key(b) {
                s.push_str(&format!(
                    "\n**{b}**: {} case(s) pass natively and not through rdeploy{}\n",
                    lost.len(),
                    if lost.is_empty() { "." } else { ":" }
                ));
                for r in lost {
                    s.push_str(&format!(
                        "- `{}` ({}): {}\n",
                        r.case,
                        r.outcome.class.name(),
                        one_line(&r.outcome.detail)
                    ));
                }
            }
        }
        // Pass counts by operator.
        let mut ops: BTreeMap<&str, BTreeMap<&str, (usize, usize)>> = BTreeMap::new();
        for r in self.rows {
            let e = ops
                .entry(r.op.as_str())
                .or_default()
                .entry(r.backend.as_str())
                .or_default();
            e.1 += 1;
            if r.outcome.class == Class::Pass {
                e.0 += 1;
            }
        }
        s.push_str("\n## Passing cases by operator\n\n| operator |");
        for b in self.names {
            s.push_str(&format!(" {b} |"));
        }
        s.push_str("\n|---|");
        for _ in self.names {
            s.push_str("---:|");
        }
        s.push('\n');
        for (op, by) in &ops {
            s.push_str(&format!("| {op} |"));
            for b in self.names {
                let (p, n) = by.get(b.as_str()).copied().unwrap_or_default();
                let mark = if p == n { "" } else { " ✗" };
                s.push_str(&format!(" {p}/{n}{mark} |"));
            }
            s.push('\n');
        }
        s.push_str("\n## Failing cases per backend\n");
        for b in self.names {
            let failing: Vec<&CaseResult> = self
                .of(b)
                .filter(|r| r.outcome.class != Class::Pass)
                .collect();
            s.push_str(&format!("\n### {b} ({} failing)\n\n", failing.len()));
            let mut by_op: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
            for r in failing {
                by_op.entry(r.op.as_str()).or_default().push(r);
            }
            for (op, rs) in by_op {
                let list: Vec<String> = rs
                    .iter()
                    .map(|r| format!("`{}` {}", r.case, r.outcome.class.name()))
                    .collect();
                let why = one_line(&rs[0].outcome.detail);
                s.push_str(&format!("- **{op}**: {} — e.g. {why}\n", list.join(", ")));
            }
        }
        s
    }
}

/// `s` on one line, at most 200 characters, safe inside a Markdown table or list.
fn one_line(s: &str) -> String {
    let flat: String = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|");
    if flat.chars().count() > 200 {
        format!("{}…", flat.chars().take(200).collect::<String>())
    } else {
        flat
    }
}
