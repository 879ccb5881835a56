//! One worker process: `python -m rdeploy._worker`, JSON lines over pipes, tensors in a mapped
//! shared-memory file (the protocol is described in `python/rdeploy/_worker.py`).

use memmap2::MmapMut;
use rdeploy_core::{DType, Error, Result, Tensor};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines of the worker's stderr kept for error messages.
const STDERR_TAIL: usize = 30;
/// Tensor offsets in the shared-memory file are multiples of this (as the worker aligns them).
const ALIGN: usize = 64;
/// The shared-memory file's first size; it grows to fit larger requests.
const INITIAL_SHM: u64 = 1 << 20;

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// How a call failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The Python code raised: the worker is fine and can take the next call.
    Raised { error: String, traceback: String },
    /// The worker died, hung or broke the protocol: it must be replaced.
    Broken(String),
}

impl CallError {
    pub(crate) fn into_error(self, backend: &str, doing: &str) -> Error {
        match self {
            CallError::Raised { error, traceback } => {
                if !traceback.is_empty() {
                    tracing::debug!(target: "rdeploy::python", "{backend}: {doing} raised:\n{traceback}");
                }
                Error::backend(
                    backend,
                    format!("the Python backend's {doing} raised {error}"),
                )
            }
            CallError::Broken(msg) => Error::backend(backend, msg),
        }
    }
}

/// A running worker process.
pub(crate) struct Worker {
    backend: String,
    python: PathBuf,
    child: Child,
    stdin: ChildStdin,
    /// The reply pipe, read in the calling thread (no hand-off between threads per call).
    replies: Replies,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_done: Receiver<()>,
    shm: Option<Shm>,
    broken: bool,
}

/// The mapped shared-memory file of a loaded worker.
struct Shm {
    file: File,
    map: MmapMut,
    /// The path until the worker has opened it, then `None` (unlinked).
    path: Option<tempfile::TempPath>,
}

impl Shm {
    fn create(backend: &str) -> Result<Shm> {
        // /dev/shm is memory on Linux; elsewhere the temp dir serves (slower, same protocol).
        let dir = Path::new("/dev/shm");
        let dir = if dir.is_dir() {
            dir.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let named = tempfile::Builder::new()
            .prefix("rdeploy-worker-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io("cannot create a shared-memory file in", &dir, e))?;
        let (file, path) = named.into_parts();
        file.set_len(INITIAL_SHM)
            .map_err(|e| Error::io("cannot size", &*path, e))?;
        let map = map(&file, &path, backend)?;
        Ok(Shm {
            file,
            map,
            path: Some(path),
        })
    }

    /// Maps the file again when its size changed (rdeploy grew it, or the worker did).
    fn ensure_len(&mut self, len: u64, backend: &str) -> Result<()> {
        let cur = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        if cur < len {
            self.file.set_len(len).map_err(|e| {
                Error::backend(
                    backend,
                    format!("cannot grow the worker's shared memory to {len} bytes: {e}"),
                )
            })?;
        }
        let want = cur.max(len);
        if self.map.len() as u64 != want {
            self.map = map(&self.file, Path::new("shared memory"), backend)?;
        }
        Ok(())
    }
}

fn map(file: &File, path: &Path, backend: &str) -> Result<MmapMut> {
    // SAFETY: the file is private to this process and its one worker (created with a random
    // name, mode 0600, unlinked once the worker has opened it), and the two never touch it at
    // the same time: the worker reads and writes it only while rdeploy waits for its reply.
    unsafe { MmapMut::map_mut(file) }.map_err(|e| {
        Error::backend(
            backend,
            format!("cannot map {} for the worker: {e}", path.display()),
        )
    })
}

impl Worker {
    /// Starts `python -m rdeploy._worker`.
    pub(crate) fn spawn(backend: &str, python: &Path, env: &[(String, String)]) -> Result<Worker> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(python)
            .args(["-m", "rdeploy._worker"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            // Its own process group: stopping the worker stops what the backend started too,
            // and a Ctrl-C at rdeploy's terminal reaches rdeploy alone (it stops its workers).
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::backend(
                    backend,
                    format!(
                        "cannot start the Python worker ({} -m rdeploy._worker): {e}; set VIRTUAL_ENV to the environment with the backend's package, or RDEPLOY_PYTHON to its interpreter",
                        python.display()
                    ),
                )
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err(Error::backend(
                backend,
                "the worker's pipes were not created",
            ));
        };
        let replies = Replies::new(stdout);
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (done_tx, stderr_done) = channel();
        {
            let tail = tail.clone();
            let name = backend.to_string();
            std::thread::Builder::new()
                .name("rdeploy-py-stderr".into())
                .spawn(move || {
                    // Bytes, decoded lossily: a backend printing invalid UTF-8 must not stop the
                    // draining (the pipe would fill or close, and its prints fail).
                    let mut r = BufReader::new(stderr);
                    let mut raw = Vec::new();
                    loop {
                        raw.clear();
                        match r.read_until(b'\n', &mut raw) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                            Err(_) => break,
                        }
                        let line = String::from_utf8_lossy(&raw);
                        let line = line.trim_end_matches(['\n', '\r']).to_string();
                        log_line(&name, &line);
                        if let Ok(mut t) = tail.lock() {
                            if t.len() == STDERR_TAIL {
                                t.pop_front();
                            }
                            t.push_back(line);
                        }
                    }
                    let _ = done_tx.send(());
                })
                .map_err(|e| Error::backend(backend, format!("cannot start a thread: {e}")))?;
        }
        Ok(Worker {
            backend: backend.to_string(),
            python: python.to_path_buf(),
            child,
            stdin,
            replies,
            stderr: tail,
            stderr_done,
            shm: None,
            broken: false,
        })
    }

    /// Whether the worker must be replaced.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// Sends one request and waits up to `timeout` for its reply.
    pub(crate) fn call(
        &mut self,
        op: &str,
        mut req: Value,
        timeout: Duration,
    ) -> std::result::Result<Value, CallError> {
        if self.broken {
            return Err(CallError::Broken(format!(
                "the Python worker for backend '{}' was stopped earlier",
                self.backend
            )));
        }
        req["op"] = json!(op);
        let mut line = req.to_string();
        line.push('\n');
        if let Err(e) = self
            .stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
        {
            return Err(self.died(op, &format!("could not be sent the request ({e})")));
        }
        let start = Instant::now();
        let reply = loop {
            match self.replies.line(timeout.saturating_sub(start.elapsed())) {
                // Output that is not a reply (a sitecustomize printing before the worker took
                // stdout over): logged and skipped.
                Ok(Some(line)) if !line.trim_start().starts_with('{') => {
                    tracing::debug!(
                        target: "rdeploy::python",
                        "{}: stray output on the reply pipe: {}",
                        self.backend,
                        line.trim_end()
                    );
                }
                Ok(Some(line)) => break line,
                Err(e) => return Err(self.died(op, &format!("could not be read from ({e})"))),
                Ok(None) if self.replies.eof => return Err(self.died(op, "ended")),
                Ok(None) => {
                    self.stop();
                    let limit = match op {
                        "forward" => "backend_config.python_worker.call_timeout_s",
                        "check" => "RDEPLOY_PYTHON_CHECK_TIMEOUT_S, default 120 s",
                        _ => "backend_config.python_worker.convert_timeout_s",
                    };
                    return Err(CallError::Broken(format!(
                        "the Python worker for backend '{}' (pid {}) did not answer {op} within {} s, so it was stopped; the next call starts a new worker (the limit is {limit})",
                        self.backend,
                        self.child.id(),
                        seconds(start.elapsed()),
                    )));
                }
            }
        };
        let v: Value = match serde_json::from_str(&reply) {
            Ok(v) => v,
            Err(e) => {
                self.stop();
                return Err(CallError::Broken(format!(
                    "the Python worker for backend '{}' sent a reply rdeploy cannot read ({e}); the worker was stopped",
                    self.backend
                )));
            }
        };
        if v.get("ok") == Some(&Value::Bool(true)) {
            Ok(v)
        } else {
            Err(CallError::Raised {
                error: truncate(
                    v.get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("an unknown error"),
                    2000,
                ),
                traceback: v
                    .get("traceback")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            })
        }
    }

    /// The error for a worker that went away during `op`, with its exit status and last words.
    fn died(&mut self, op: &str, how: &str) -> CallError {
        self.broken = true;
        // The process has closed its pipes; give it a moment to be reaped and its stderr read.
        let deadline = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    self.stop();
                    break None;
                }
            }
        };
        // Whatever the backend started dies with it.
        self.kill_group();
        let _ = self.stderr_done.recv_timeout(Duration::from_millis(500));
        let status = match status {
            Some(s) => describe_status(s),
            None => "did not exit, so it was killed".into(),
        };
        let tail: Vec<String> = self
            .stderr
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        let tail = tail.join("\n");
        let hint = if tail.contains("No module named rdeploy")
            || tail.contains("No module named 'rdeploy'")
        {
            format!(
                "; the rdeploy Python package is not installed for {} (scripts/install-python.sh, or pip install the rdeploy wheel there)",
                self.python.display()
            )
        } else {
            String::new()
        };
        // The last words go to the log, not into the error: a server answers clients with the
        // error, and a traceback holds paths and data.
        let last = if tail.trim().is_empty() {
            String::new()
        } else {
            tracing::warn!(
                target: "rdeploy::python",
                "{}: the worker (pid {}) {how} during {op}; its last output:\n{}",
                self.backend,
                self.child.id(),
                tail.trim_end()
            );
            " (its last output is in rdeploy's log)".to_string()
        };
        CallError::Broken(format!(
            "the Python worker for backend '{}' (pid {}) {how} during {op}: {status}{hint}; the next call starts a new worker{last}",
            self.backend,
            self.child.id(),
        ))
    }

    /// Kills the process (it is also killed when the worker is dropped).
    pub(crate) fn stop(&mut self) {
        self.broken = true;
        self.kill_group();
        let _ = self.child.wait();
    }

    /// SIGKILL to the worker's process group: the worker and whatever its backend started.
    fn kill_group(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: killpg with the group the worker leads (process_group(0) at spawn).
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
    }

    /// `load`: builds the wrapper in the worker and maps the shared memory.
    pub(crate) fn load(
        &mut self,
        mut req: Value,
        timeout: Duration,
    ) -> std::result::Result<Value, CallError> {
        let shm = Shm::create(&self.backend).map_err(|e| CallError::Broken(e.to_string()))?;
        if let Some(p) = &shm.path {
            req["shm"] = json!(p.display().to_string());
        }
        let reply = self.call("load", req, timeout)?;
        let mut shm = shm;
        // Both ends hold the file open: the name is no longer needed.
        if let Some(p) = shm.path.take() {
            let _ = p.close();
        }
        self.shm = Some(shm);
        Ok(reply)
    }

    /// `forward`: inputs into shared memory, outputs back as tensors, with the engine's own
    /// time of the call in nanoseconds.
    pub(crate) fn forward(
        &mut self,
        names: &[String],
        inputs: &[Tensor],
        timeout: Duration,
    ) -> std::result::Result<(Vec<Tensor>, u64), CallError> {
        let backend = self.backend.clone();
        let broken = |e: Error| CallError::Broken(e.to_string());
        let Some(shm) = self.shm.as_mut() else {
            return Err(CallError::Broken(format!(
                "the Python worker for backend '{backend}' has no model loaded"
            )));
        };
        let mut offset = 0usize;
        let mut specs = Vec::with_capacity(inputs.len());
        for (name, t) in names.iter().zip(inputs) {
            if t.dtype() == DType::Str {
                return Err(CallError::Raised {
                    error: format!(
                        "TypeError: input '{name}' is a string tensor; rdeploy passes only \
                         numeric tensors to Python backends ('{backend}')"
                    ),
                    traceback: String::new(),
                });
            }
            specs.push(json!({
                "name": name,
                "dtype": t.dtype().numpy_name(),
                "shape": t.shape(),
                "offset": offset,
            }));
            offset += align(t.as_bytes().map_err(broken)?.len());
        }
        let inputs_end = offset;
        // Room for outputs too, so the worker rarely has to grow the file itself.
        shm.ensure_len((inputs_end as u64 * 2).max(INITIAL_SHM), &backend)
            .map_err(broken)?;
        let mut offset = 0usize;
        for t in inputs {
            let b = t.as_bytes().map_err(broken)?;
            shm.map[offset..offset + b.len()].copy_from_slice(b);
            offset += align(b.len());
        }
        let reply = self.call(
            "forward",
            json!({"inputs": specs, "inputs_end": inputs_end}),
            timeout,
        )?;
        let execute_ns = reply.get("execute_ns").and_then(Value::as_u64).unwrap_or(0);
        let size = reply.get("size").and_then(Value::as_u64).unwrap_or(0);
        let protocol = |what: String| {
            CallError::Broken(format!(
                "the Python worker for backend '{backend}' sent a bad forward reply: {what}"
            ))
        };
        let Some(shm) = self.shm.as_mut() else {
            return Err(protocol("no shared memory".into()));
        };
        shm.ensure_len(size, &backend).map_err(broken)?;
        let outs = reply
            .get("outputs")
            .and_then(Value::as_array)
            .ok_or_else(|| protocol("no outputs".into()))?;
        let mut tensors = Vec::with_capacity(outs.len());
        for o in outs {
            let name = o.get("name").and_then(Value::as_str).unwrap_or("?");
            let dtype_name = o.get("dtype").and_then(Value::as_str).unwrap_or("?");
            let dtype: DType = dtype_name.parse().ok().filter(|d| *d != DType::Str).ok_or_else(|| {
                CallError::Raised {
                    error: format!(
                        "TypeError: forward() returned output '{name}' as {dtype_name}, a dtype rdeploy does not hold"
                    ),
                    traceback: String::new(),
                }
            })?;
            let shape: Vec<usize> = o
                .get("shape")
                .and_then(|s| serde_json::from_value(s.clone()).ok())
                .ok_or_else(|| protocol(format!("output '{name}' has no shape")))?;
            let at = o
                .get("offset")
                .and_then(Value::as_u64)
                .ok_or_else(|| protocol(format!("output '{name}' has no offset")))?
                as usize;
            let n = shape
                .iter()
                .try_fold(dtype.size(), |a, &d| a.checked_mul(d))
                .ok_or_else(|| protocol(format!("output '{name}' is too large")))?;
            let bytes = shm.map.get(at..at.saturating_add(n)).ok_or_else(|| {
                protocol(format!("output '{name}' lies outside the shared memory"))
            })?;
            tensors.push(Tensor::from_le_bytes(dtype, &shape, bytes).map_err(broken)?);
        }
        Ok((tensors, execute_ns))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Kill rather than wait for the loop to end: the worker may be busy or stuck, and what
        // its backend started goes with it.
        self.kill_group();
        let _ = self.child.wait();
    }
}

fn describe_status(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = s.signal() {
        let name = match sig {
            6 => " (SIGABRT)",
            9 => " (SIGKILL)",
            11 => " (SIGSEGV)",
            15 => " (SIGTERM)",
            _ => "",
        };
        format!("killed by signal {sig}{name}")
    } else {
        match s.code() {
            Some(c) => format!("exited with status {c}"),
            None => "exited".into(),
        }
    }
}

/// The worker's reply pipe: whole lines, with a deadline, without a reader thread.
struct Replies {
    pipe: ChildStdout,
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
    /// The worker closed the pipe.
    eof: bool,
}

impl Replies {
    fn new(pipe: ChildStdout) -> Replies {
        Replies {
            pipe,
            buf: Vec::with_capacity(4096),
            scanned: 0,
            eof: false,
        }
    }

    /// The next line, `Ok(None)` at the deadline or at the end of the pipe (`eof` says which).
    fn line(&mut self, timeout: Duration) -> std::io::Result<Option<String>> {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(i) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let rest = self.buf.split_off(self.scanned + i + 1);
                let line = std::mem::replace(&mut self.buf, rest);
                self.scanned = 0;
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            self.scanned = self.buf.len();
            if self.eof {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut fds = libc::pollfd {
                fd: self.pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for a file descriptor this struct owns.
            let n = unsafe { libc::poll(&mut fds, 1, ms) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                continue; // the deadline check above ends the wait
            }
            // Readable, or hung up: a read returns data or 0 (end) without blocking.
            match self.pipe.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A line of the worker's stderr into rdeploy's log: Python log records (tagged by the worker
/// as `rdeploy-log LEVEL logger: message`) at their level, anything else at debug level.
fn log_line(backend: &str, line: &str) {
    let Some(rest) = line.strip_prefix("rdeploy-log ") else {
        tracing::debug!(target: "rdeploy::python", "{backend}: {line}");
        return;
    };
    let (level, msg) = rest.split_once(' ').unwrap_or(("INFO", rest));
    match level {
        "CRITICAL" | "ERROR" => tracing::error!(target: "rdeploy::python", "{backend}: {msg}"),
        "WARNING" => tracing::warn!(target: "rdeploy::python", "{backend}: {msg}"),
        "INFO" => tracing::info!(target: "rdeploy::python", "{backend}: {msg}"),
        _ => tracing::debug!(target: "rdeploy::python", "{backend}: {msg}"),
    }
}

/// Seconds for a message: whole when large, to the millisecond when small.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.3}")
    }
}

/// At most `max` characters of `s`, saying how much was cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((at, _)) => format!("{}... ({} more bytes)", &s[..at], s.len() - at),
    }
}
