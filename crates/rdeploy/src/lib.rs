//! Deploy ONNX models to inference backends through one contract: the API that rdeploy's
//! command line, Python package and servers are built on.
//!
//! MMDeploy's backend pipeline, as functions: [`deploy`] applies a deploy config's
//! `onnx_config` to an ONNX model, runs the graph passes the backend asks for, converts with
//! the backend and writes a work dir with a manifest; [`WorkDir::open`] reads one back;
//! [`load`] builds the backend's wrapper (named tensors in, named tensors out);
//! [`compare::compare`] and [`bench::bench`] measure accuracy across backends and speed.
//!
//! ```
//! use rdeploy::{Config, Device, DeployOptions, Tensor, WorkDir};
//! # let dir = tempfile::tempdir()?;
//! # let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/small-cnn.onnx");
//! # let cfg_file = dir.path().join("cfg.py");
//! # std::fs::write(&cfg_file, "backend_config = dict(type='tract')\nonnx_config = dict(input_names=['input'], dynamic_axes={'input': {0: 'batch'}})\n")?;
//! let registry = rdeploy::builtin_registry();
//! let config = Config::from_file(&cfg_file)?;
//! let work = rdeploy::deploy(&registry, &config, &model, &dir.path().join("work"),
//!                            &Device::cpu(), &DeployOptions::default())?;
//! let work = WorkDir::open(&work.path)?; // later, or in another process
//! let wrapper = rdeploy::load(&work, &registry, None)?;
//! let x = Tensor::zeros(rdeploy::DType::F32, &[2, 3, 32, 32]);
//! let out = wrapper.forward(vec![("input".into(), x)])?;
//! assert_eq!(out[0].1.shape()[0], 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Backends built in (cargo features, all on by default): `tract` (pure Rust, always
//! available), `onnxruntime` and `openvino` (their libraries load at run time), and `plugins`
//! (backends in shared libraries). A third party adds its backend to the [`Registry`] with
//! `registry.install(&DESCRIPTOR)` before calling these functions.
//!
//! Design: the facade holds the pipeline and the harnesses so that every front end behaves the
//! same; it depends on core, config, the ONNX passes and the backends, and front ends depend on
//! it alone (`docs/architecture.md`, checked by `tests/architecture.rs`).

pub mod bench;
mod check;
pub mod compare;
pub mod conformance;
mod deploy;
pub mod inputs;
pub mod inspect;
mod load;
pub mod profile;
pub mod workdir;

pub use deploy::{DeployOptions, backend_of, backend_passes, deploy, rewrite_model, to_backend};
pub use load::load;
pub use rdeploy_onnx::{Rewrite, RewriteRegistry};
pub use workdir::{Manifest, WorkDir};

pub use rdeploy_config::{self as config, Config};
pub use rdeploy_core::{
    self as core, BackendDescriptor, BackendManager, Cast, DType, DeployConfig, Device, Dim, Error,
    NamedTensors, OpTime, Registry, Result, Signature, Tensor, TensorInfo, Wrapper, guard, io,
    onnx, timing,
};
pub use rdeploy_onnx::{self as passes, PassRecord, PassRegistry};

use serde::Serialize;

/// rdeploy's version.
pub const VERSION: &str = rdeploy_core::VERSION;

/// The registry of backends compiled into this build, in DESIGN order (tract, onnxruntime,
/// openvino).
pub fn builtin_registry() -> Registry {
    let mut r = Registry::new();
    let builtin: &[BackendDescriptor] = &[
        #[cfg(feature = "tract")]
        rdeploy_backend_tract::BACKEND,
        #[cfg(feature = "onnxruntime")]
        rdeploy_backend_ort::BACKEND,
        #[cfg(feature = "openvino")]
        rdeploy_backend_openvino::BACKEND,
    ];
    for d in builtin {
        if let Err(e) = r.install(d) {
            tracing::error!("{e}");
        }
    }
    r
}

/// Adds the backend plugins in `paths` (files or folders of shared libraries) and in
/// `RDEPLOY_PLUGIN_PATH` to `registry`. A plugin that cannot be loaded is registered as
/// unavailable with the reason; the others keep working.
#[cfg(feature = "plugins")]
pub fn install_plugins(registry: &mut Registry, paths: &[std::path::PathBuf]) {
    let mut all = rdeploy_plugin::host::paths_from_env();
    all.extend(paths.iter().cloned());
    rdeploy_plugin::host::install(registry, &all);
}

/// Backends written in Python: entry-point discovery and the worker-process host.
#[cfg(feature = "python")]
pub use rdeploy_backend_python as python_backends;

/// Adds the backends written in Python that the active Python environment's packages offer
/// (entry-point group `rdeploy.backends`), run in worker processes ([`python_backends`]).
/// Names already registered keep their backend. Costs one short Python start per process
/// (shared with the engine library lookup); nothing when there is no Python.
#[cfg(feature = "python")]
pub fn install_python_backends(registry: &mut Registry) {
    rdeploy_backend_python::install(registry);
}

/// One backend as `check-env` reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackendStatus {
    /// The registered name.
    pub name: String,
    /// Whether it can be used here.
    pub available: bool,
    /// The engine's version, when available.
    pub version: Option<String>,
    /// Why it is unavailable (what was looked for where, how to install it).
    pub reason: Option<String>,
    /// The device kinds it runs on.
    pub devices: Vec<String>,
    /// The human `check-env` line (`name:\tversion (details)` or `name:\tNone (reason)`).
    pub line: String,
    /// The MMDeploy/mmcv custom ops it runs with no external library (`domain::op_type`): its
    /// own kernels, ops its importer has, and ops a rewrite rule maps to a standard op for it.
    pub custom_ops: Vec<String>,
}

/// Every registered backend's availability: MMDeploy's `check_env`.
pub fn check_env(registry: &Registry) -> Vec<BackendStatus> {
    registry
        .iter()
        .map(|b| {
            let check = b.check();
            BackendStatus {
                name: b.name().to_string(),
                available: check.is_ok(),
                version: check.as_ref().ok().cloned(),
                reason: check.as_ref().err().cloned(),
                devices: b.device_kinds().iter().map(ToString::to_string).collect(),
                line: b.check_env_line(),
                custom_ops: custom_ops_of(b.as_ref()),
            }
        })
        .collect()
}

/// What [`BackendStatus::custom_ops`] lists: the backend's own, plus custom ops a built-in
/// rewrite rule maps to a standard op for it (in full or for some attribute values).
fn custom_ops_of(b: &dyn BackendManager) -> Vec<String> {
    let mut ops = b.custom_ops();
    for r in RewriteRegistry::builtin().rules() {
        let p = r.pattern();
        if !p.domain.is_empty() && (r.backends().is_empty() || r.backends().contains(&b.name())) {
            ops.push(format!("{}::{}", p.domain, p.op_type));
        }
    }
    ops.sort();
    ops.dedup();
    ops
}
