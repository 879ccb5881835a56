//! Loading a work dir into a runnable wrapper.

use crate::workdir::WorkDir;
use rdeploy_core::{DeployConfig, Device, Registry, Result, Wrapper};
use std::sync::Arc;

/// Loads a deployed work dir into a wrapper on `device` (the device deployed for when `None`):
/// MMDeploy's `build_wrapper(backend_files, device, input_names, output_names, deploy_cfg)`
/// with everything taken from the manifest.
///
/// # Errors
/// [`rdeploy_core::Error::UnknownBackend`] or [`rdeploy_core::Error::BackendUnavailable`]
/// when the work dir's backend cannot run here, [`rdeploy_core::Error::Device`] for a device
/// the backend does not run on, and the backend's own errors loading the files.
pub fn load(
    work_dir: &WorkDir,
    registry: &Registry,
    device: Option<&Device>,
) -> Result<Arc<dyn Wrapper>> {
    let m = &work_dir.manifest;
    let backend = registry.get(&m.backend)?;
    let version = backend.ensure_available()?;
    if version != m.backend_version {
        tracing::warn!(
            "{} was deployed with {} {} and is loaded with {version}",
            work_dir.path.display(),
            m.backend,
            m.backend_version
        );
    }
    let device = device.unwrap_or(&m.device);
    device.ensure_supported(backend.name(), backend.device_kinds())?;
    let inputs: Vec<String> = m.inputs.iter().map(|t| t.name.clone()).collect();
    let outputs: Vec<String> = m.outputs.iter().map(|t| t.name.clone()).collect();
    let w = backend.build_wrapper(
        &work_dir.backend_files(),
        device,
        &inputs,
        &outputs,
        &DeployConfig(m.config.clone()),
    )?;
    Ok(Arc::from(w))
}
