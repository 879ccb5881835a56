//! The Rust helper: a Rust backend exported with `export_plugin!` and loaded back through the
//! C ABI in-process. Panics inside the backend become errors at the boundary, and the process
//! (and the plugin) keep working.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use rdeploy_core::{
    BackendDescriptor, BackendManager, DType, DeployConfig, Device, Dim, Result, Signature, Tensor,
    TensorInfo, Wrapper,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Triples its input; panics where `backend_config.panic_in` says.
struct Tripler;

fn panic_in(cfg: &DeployConfig) -> String {
    cfg.get_str("backend_config.panic_in")
        .unwrap_or_default()
        .to_string()
}

impl BackendManager for Tripler {
    fn name(&self) -> &str {
        "tripler"
    }
    fn check(&self) -> rdeploy_core::Availability {
        Ok("3.0".into())
    }
    fn to_backend(
        &self,
        ir: &[PathBuf],
        cfg: &DeployConfig,
        _: &Path,
        _: &Device,
    ) -> Result<Vec<PathBuf>> {
        assert!(panic_in(cfg) != "to_backend", "boom in to_backend");
        Ok(ir.to_vec())
    }
    fn build_wrapper(
        &self,
        _: &[PathBuf],
        device: &Device,
        _: &[String],
        _: &[String],
        cfg: &DeployConfig,
    ) -> Result<Box<dyn Wrapper>> {
        let sig = |n: &str| TensorInfo {
            name: n.into(),
            dtype: DType::F32,
            shape: Some(vec![Dim::Symbolic("n".into())]),
        };
        Ok(Box::new(TriplerWrapper {
            panic: panic_in(cfg) == "execute",
            sig: Signature {
                inputs: vec![sig("x")],
                outputs: vec![sig("y")],
                device: device.clone(),
            },
        }))
    }
}

struct TriplerWrapper {
    panic: bool,
    sig: Signature,
}

impl Wrapper for TriplerWrapper {
    fn backend(&self) -> &str {
        "tripler"
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn execute(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let x = inputs[0].as_slice::<f32>()?;
        assert!(!self.panic || x[0] < 0.0, "boom in execute");
        Tensor::from_shape_vec(inputs[0].shape(), x.iter().map(|v| v * 3.0).collect())
            .map(|t| vec![t])
    }
}

static TRIPLER: BackendDescriptor = BackendDescriptor {
    name: "tripler",
    aliases: &[],
    create: || Arc::new(Tripler),
};

rdeploy_plugin::export_plugin!(TRIPLER);

fn cfg(panic_in: &str) -> DeployConfig {
    DeployConfig(serde_json::json!({"backend_config": {"type": "tripler", "panic_in": panic_in}}))
}

fn loaded() -> Arc<dyn BackendManager> {
    // SAFETY: the functions come from this test's own export_plugin! and live as long as the
    // process.
    unsafe {
        rdeploy_plugin::host::from_functions(
            Path::new("(in-process)"),
            rdeploy_plugin_functions(),
            None,
        )
    }
    .unwrap()
}

fn forward(m: &dyn BackendManager, c: &DeployConfig, x: f32) -> Result<f32> {
    let w = m.build_wrapper(&[PathBuf::from("m.onnx")], &Device::cpu(), &[], &[], c)?;
    let t = Tensor::from_shape_vec(&[2], vec![x, 1.0])?;
    let out = w.forward(vec![("x".into(), t)])?;
    Ok(out[0].1.as_slice::<f32>()?[0])
}

#[test]
fn a_rust_backend_round_trips_through_the_c_abi() {
    let m = loaded();
    assert_eq!(m.name(), "tripler");
    assert_eq!(m.check(), Ok("3.0".into()));
    assert_eq!(m.device_kinds(), ["cpu"]);
    let work = tempfile::tempdir().unwrap();
    let files = m
        .to_backend(
            &[PathBuf::from("m.onnx")],
            &cfg(""),
            work.path(),
            &Device::cpu(),
        )
        .unwrap_err()
        .to_string();
    // The host checks that reported files exist: m.onnx does not.
    assert!(
        files.contains("m.onnx") && files.contains("did not write it"),
        "{files}"
    );
    assert_eq!(forward(m.as_ref(), &cfg(""), 2.0).unwrap(), 6.0);
}

#[test]
fn panics_become_errors_and_the_plugin_keeps_working() {
    let m = loaded();
    let e = forward(m.as_ref(), &cfg("execute"), 2.0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tripler") && e.contains("boom in execute"),
        "{e}"
    );
    let work = tempfile::tempdir().unwrap();
    let e = m
        .to_backend(
            &[PathBuf::from("m.onnx")],
            &cfg("to_backend"),
            work.path(),
            &Device::cpu(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("boom in to_backend"), "{e}");
    // The same session after a panic, and a new one: both still work.
    let w = m
        .build_wrapper(
            &[PathBuf::from("m.onnx")],
            &Device::cpu(),
            &[],
            &[],
            &cfg("execute"),
        )
        .unwrap();
    let run = |x: f32| {
        w.forward(vec![(
            "x".into(),
            Tensor::from_shape_vec(&[1], vec![x]).unwrap(),
        )])
    };
    assert!(run(1.0).is_err());
    assert_eq!(run(-1.0).unwrap()[0].1.as_slice::<f32>().unwrap(), [-3.0]);
    assert_eq!(forward(m.as_ref(), &cfg(""), 5.0).unwrap(), 15.0);
}
