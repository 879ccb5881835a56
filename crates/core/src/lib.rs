//! The rdeploy backend contract: tensors, dtypes, devices, the backend and wrapper traits, the
//! registry, errors, timing, tensor files and ONNX inspection.
//!
//! Every inference engine plugs into rdeploy through two traits, mirroring MMDeploy's backend
//! system: a [`BackendManager`] (name, availability with a reason, `to_backend` conversion,
//! `build_wrapper`) and the [`Wrapper`] it builds (named tensors in, named tensors out, with
//! `execute` alone doing the engine call so that timings measure the engine). A [`Registry`]
//! holds backends by name; built-in and third-party backends register the same way.
//!
//! ```
//! use rdeploy_core::{Device, Registry, Tensor, DType};
//!
//! let registry = Registry::new(); // backends crates add themselves with `registry.install(..)`
//! assert!(registry.get("tract").is_err()); // names what is registered instead
//! let device: Device = "cuda:1".parse()?;
//! assert_eq!(device.device_id(), 1);
//! let t = Tensor::from_shape_vec(&[2, 2], vec![1f32, 2., 3., 4.])?;
//! assert_eq!(t.dtype(), DType::F32);
//! # Ok::<(), rdeploy_core::Error>(())
//! ```
//!
//! Implementations live in their own crates: `rdeploy-backend-tract` (pure Rust, always
//! available), and further engines behind cargo features of the CLI.
//!
//! Design: the contract passes configs as a JSON-like tree ([`DeployConfig`]) so that any
//! front-end format and any plugin ABI can carry them; errors are one `#[non_exhaustive]` enum
//! whose messages name the file, tensor or key at fault.

#![deny(unsafe_code)]

pub mod atomic;
mod backend;
mod config;
mod device;
mod dtype;
mod error;
pub mod files;
pub mod guard;
pub mod io;
pub mod locate;
pub mod minifloat;
pub mod onnx;
mod registry;
mod tensor;
pub mod timing;

pub use backend::{
    Availability, BackendManager, Dim, NamedTensors, OpTime, PassRequest, Signature, TensorInfo,
    Wrapper, WrongOutput, format_dims, resolve_backend_files, select_signature,
    signature_from_files, single_file, validate_inputs, validate_outputs,
};
pub use config::DeployConfig;
pub use device::Device;
pub use dtype::{DType, onnx_type_name};
pub use error::{BoxError, Error, Result, report};
pub use half::{bf16, f16};
pub use minifloat::{F4E2M1, F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, F8E8M0, I2, I4, U2, U4};
pub use registry::{BackendDescriptor, Registry};
pub use tensor::{Cast, Element, Num, Tensor};

/// rdeploy's version, recorded in manifests.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
