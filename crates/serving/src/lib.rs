//! What rdeploy's servers share, below the front ends (`rdeploy serve`, `libtriton_rdeploy.so`,
//! `rdeploy export triton`):
//!
//! - [`proto`]: Triton's `model_config.proto` and the Open Inference Protocol's (KServe v2)
//!   `grpc_service.proto` as Rust types, with text-format (`config.pbtxt`) parsing.
//! - [`datatype`]: rdeploy's [`DType`](rdeploy::core::DType) as KServe v2 datatypes (`FP32`) and
//!   Triton model-config types (`TYPE_FP32`).
//! - [`batch`]: requests joined along the batch dim and outputs split back.
//! - [`repository`]: Triton-layout model repositories: reading one, and writing an entry for a
//!   work dir (`rdeploy export triton`).

pub mod batch;
pub mod datatype;
pub mod model_config;
pub mod proto;
pub mod repository;

pub use model_config::ModelSettings;
pub use repository::{
    ExportOptions, Exported, Platform, Repository, RepositoryModel, export_triton,
};
