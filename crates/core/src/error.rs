//! The one public error type of rdeploy's library crates.

use std::path::PathBuf;

/// An engine's or parser's own error, kept as the cause of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with rdeploy's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every way an rdeploy library call can fail.
///
/// Each variant carries what a user needs to act: the file, tensor, key or backend concerned,
/// and, where it helps, what to do. Backends keep their own precise errors and convert them into
/// one of these at the edge (usually [`Error::Backend`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot read", "cannot create directory", ...).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// An ONNX model file is missing, not ONNX, truncated or otherwise unusable.
    #[error("model {path}: {msg}{}", with_cause(source))]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong and what to do.
        msg: String,
        /// The parser's or engine's own error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// A tensor file (`.npy`, `.npz`, `.pb`) cannot be read or written.
    #[error("tensor file {path}: {msg}")]
    TensorFile {
        /// The tensor file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },

    /// Inputs given to a model do not match its signature.
    #[error("input '{name}': expected {expected}, got {got}")]
    InputMismatch {
        /// The input tensor's name.
        name: String,
        /// What the model expects.
        expected: String,
        /// What was given.
        got: String,
    },

    /// A tensor operation (dtype cast, reshape, typed view) was asked for something impossible.
    #[error("tensor: {0}")]
    Tensor(String),

    /// No backend of that name is registered.
    #[error(
        "unknown backend '{name}'; registered backends: {known} (backends written in Python, such as ncnn and tvm, come from the rdeploy.backends entry points of the active Python environment: activate it or set VIRTUAL_ENV or RDEPLOY_PYTHON; plugins load with --plugin or RDEPLOY_PLUGIN_PATH)"
    )]
    UnknownBackend {
        /// The name asked for.
        name: String,
        /// The registered names, comma separated.
        known: String,
    },

    /// The backend is registered but cannot be used here.
    #[error("backend '{backend}' is not available: {reason}")]
    BackendUnavailable {
        /// The backend's name.
        backend: String,
        /// Why, and how to install it.
        reason: String,
    },

    /// A device string is malformed or the backend cannot run on that device.
    #[error("device '{device}': {msg}")]
    Device {
        /// The device string as given.
        device: String,
        /// What is wrong and which devices work.
        msg: String,
    },

    /// A deploy config is malformed or has a wrong value.
    #[error("{}", config_location(file, *line, *col, key.as_deref(), msg))]
    Config {
        /// The config file, when the problem is in one.
        file: Option<PathBuf>,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        col: Option<usize>,
        /// The dotted key concerned, when known (`onnx_config.input_shape`).
        key: Option<String>,
        /// What is wrong and what to do.
        msg: String,
    },

    /// A work directory is missing its manifest, is corrupt, or does not match its files.
    #[error("work dir {path}: {msg}")]
    WorkDir {
        /// The work directory.
        path: PathBuf,
        /// What is wrong and what to do.
        msg: String,
    },

    /// The backend engine itself failed (conversion, compilation, or running).
    #[error("{backend}: {msg}{}", with_cause(source))]
    Backend {
        /// The backend's name.
        backend: String,
        /// What was being done, or the engine's message.
        msg: String,
        /// The engine's own error, when there is one (downcast it to branch on it).
        #[source]
        source: Option<BoxError>,
    },
}

/// The cause's text after the message: the one-paragraph form users read. The cause stays
/// reachable through `source()` for code; printers that walk the chain drop repeated text.
fn with_cause(source: &Option<BoxError>) -> String {
    source
        .as_ref()
        .map(|s| format!(": {}", report(s.as_ref())))
        .unwrap_or_default()
}

fn config_location(
    file: &Option<PathBuf>,
    line: Option<usize>,
    col: Option<usize>,
    key: Option<&str>,
    msg: &str,
) -> String {
    let mut s = String::from("config");
    if let Some(f) = file {
        s.push(' ');
        s.push_str(&f.display().to_string());
        if let Some(l) = line {
            s.push_str(&format!(":{l}"));
            if let Some(c) = col {
                s.push_str(&format!(":{c}"));
            }
        }
    }
    if let Some(k) = key {
        s.push_str(&format!(" (key '{k}')"));
    }
    s.push_str(": ");
    s.push_str(msg);
    s
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Model`] for `path`.
    pub fn model(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            msg: msg.into(),
            source: None,
        }
    }

    /// An [`Error::Model`] for `path` that keeps the parser's or engine's error as its cause.
    pub fn model_caused(
        path: impl Into<PathBuf>,
        msg: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Model {
            path: path.into(),
            msg: msg.into(),
            source: Some(source.into()),
        }
    }

    /// An [`Error::Backend`] from a message (no typed cause).
    pub fn backend(backend: impl Into<String>, msg: impl std::fmt::Display) -> Self {
        Error::Backend {
            backend: backend.into(),
            msg: msg.to_string(),
            source: None,
        }
    }

    /// An [`Error::Backend`]: what was being done, and the engine's own error as the cause.
    pub fn engine(
        backend: impl Into<String>,
        doing: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Backend {
            backend: backend.into(),
            msg: doing.into(),
            source: Some(source.into()),
        }
    }

    /// The message with every cause that is not already part of it, as one paragraph.
    pub fn report(&self) -> String {
        report(self)
    }

    /// An [`Error::Config`] about a key, with no file position.
    pub fn config_key(key: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Config {
            file: None,
            line: None,
            col: None,
            key: Some(key.into()),
            msg: msg.into(),
        }
    }
}

/// Any error with its chain of causes as one paragraph, each piece once (contexts often repeat
/// their cause's text).
pub fn report(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let part = c.to_string();
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        cur = c.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_kept_and_printed_once() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::engine("tract", "cannot load", io);
        assert_eq!(e.to_string(), "tract: cannot load: disk on fire");
        let cause = std::error::Error::source(&e).expect("kept");
        assert_eq!(cause.to_string(), "disk on fire");
        assert_eq!(e.report(), "tract: cannot load: disk on fire");
        let m = Error::model("m.onnx", "not ONNX");
        assert!(std::error::Error::source(&m).is_none());
        assert_eq!(m.report(), "model m.onnx: not ONNX");
    }
}
