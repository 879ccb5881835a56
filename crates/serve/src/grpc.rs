//! The gRPC side of the Open Inference Protocol: `inference.GRPCInferenceService` (tonic),
//! with the statistics and model-configuration calls Triton's clients use. Repository,
//! shared-memory, trace and log calls answer `UNIMPLEMENTED`.

use crate::error::ServeError;
use crate::model::{ModelVersion, StatDuration};
use crate::{Inference, State};
use rdeploy::core::{DType, Tensor};
use rdeploy_serving::proto as pb;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tonic::{Request, Response, Status};

#[allow(missing_docs, clippy::all, clippy::unwrap_used, clippy::expect_used)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/inference.rs"));
}

use generated::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};

/// The service over the shared state.
pub struct Service {
    state: Arc<State>,
}

/// Serves gRPC on `listener` until `shutdown` resolves.
///
/// # Errors
/// The transport's error.
pub async fn serve(
    state: Arc<State>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let limit = state.options.max_request_bytes;
    let svc = GrpcInferenceServiceServer::new(Service { state })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX);
    tonic::transport::Server::builder()
        .add_service(svc)
        .serve_with_incoming_shutdown(tokio_stream_of(listener), shutdown)
        .await
}

fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl tonic::codegen::tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    tonic::codegen::tokio_stream::wrappers::TcpListenerStream::new(listener)
}

impl Service {
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let given = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if self.state.authorized(given) {
            Ok(())
        } else {
            Err(ServeError::Unauthorized(
                "missing or wrong bearer token (send metadata 'authorization: Bearer <token>')"
                    .into(),
            )
            .grpc())
        }
    }
}

fn unimplemented(what: &str) -> Status {
    Status::unimplemented(format!("{what} is not implemented by rdeploy serve"))
}

fn tensor_meta(
    specs: &[rdeploy_serving::model_config::TensorSpec],
    batched: bool,
) -> Vec<pb::model_metadata_response::TensorMetadata> {
    specs
        .iter()
        .map(|t| pb::model_metadata_response::TensorMetadata {
            name: t.name.clone(),
            datatype: rdeploy_serving::datatype::v2_name(t.dtype).into(),
            shape: t.full_shape(batched),
        })
        .collect()
}

fn stat(d: &StatDuration) -> Option<pb::StatisticDuration> {
    let (count, ns) = d.get();
    Some(pb::StatisticDuration { count, ns })
}

fn stats_of(m: &ModelVersion) -> pb::ModelStatistics {
    let s = &m.stats;
    let zero = || Some(pb::StatisticDuration::default());
    pb::ModelStatistics {
        name: m.name.clone(),
        version: m.version.to_string(),
        last_inference: s.last_inference_ms.load(Ordering::Relaxed),
        inference_count: s.inference_count.load(Ordering::Relaxed),
        execution_count: s.execution_count.load(Ordering::Relaxed),
        inference_stats: Some(pb::InferStatistics {
            success: stat(&s.success),
            fail: stat(&s.fail),
            queue: stat(&s.queue),
            compute_input: zero(),
            compute_infer: stat(&s.compute),
            compute_output: zero(),
            ..Default::default()
        }),
        batch_stats: s
            .batches
            .lock()
            .map(|b| {
                b.iter()
                    .map(|(size, (count, ns))| pb::InferBatchStatistics {
                        batch_size: *size as u64,
                        compute_input: zero(),
                        compute_infer: Some(pb::StatisticDuration {
                            count: *count,
                            ns: *ns,
                        }),
                        compute_output: zero(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// A tensor from gRPC's typed contents.
fn from_contents(
    name: &str,
    dtype: DType,
    shape: &[usize],
    c: &pb::InferTensorContents,
) -> Result<Tensor, ServeError> {
    fn narrow<S: Copy, T: TryFrom<S> + rdeploy::core::Element>(
        name: &str,
        shape: &[usize],
        v: &[S],
    ) -> Result<Tensor, ServeError> {
        let data = v
            .iter()
            .map(|&x| T::try_from(x).ok())
            .collect::<Option<Vec<T>>>()
            .ok_or_else(|| {
                ServeError::BadRequest(format!(
                    "input '{name}': a value is out of range for {}",
                    T::DTYPE
                ))
            })?;
        Tensor::from_shape_vec(shape, data)
            .map_err(|e| ServeError::BadRequest(format!("input '{name}': {e}")))
    }
    match dtype {
        DType::Bool => narrow::<bool, bool>(name, shape, &c.bool_contents),
        DType::I8 => narrow::<i32, i8>(name, shape, &c.int_contents),
        DType::I16 => narrow::<i32, i16>(name, shape, &c.int_contents),
        DType::I32 => narrow::<i32, i32>(name, shape, &c.int_contents),
        DType::I64 => narrow::<i64, i64>(name, shape, &c.int64_contents),
        DType::U8 => narrow::<u32, u8>(name, shape, &c.uint_contents),
        DType::U16 => narrow::<u32, u16>(name, shape, &c.uint_contents),
        DType::U32 => narrow::<u32, u32>(name, shape, &c.uint_contents),
        DType::U64 => narrow::<u64, u64>(name, shape, &c.uint64_contents),
        DType::F32 => narrow::<f32, f32>(name, shape, &c.fp32_contents),
        DType::F64 => narrow::<f64, f64>(name, shape, &c.fp64_contents),
        DType::Str => {
            let strings = c
                .bytes_contents
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    String::from_utf8(b.clone()).map_err(|e| {
                        ServeError::BadRequest(format!(
                            "input '{name}': BYTES element {i} is not UTF-8 ({e})"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Tensor::from_strings(shape, strings)
                .map_err(|e| ServeError::BadRequest(format!("input '{name}': {e}")))
        }
        DType::F16 | DType::BF16 => Err(ServeError::BadRequest(format!(
            "input '{name}': {} has no typed contents field; send it in raw_input_contents",
            rdeploy_serving::datatype::v2_name(dtype)
        ))),
        other => Err(ServeError::BadRequest(
            rdeploy_serving::datatype::checked_v2_name(&format!("input '{name}'"), other)
                .err()
                .unwrap_or_else(|| format!("input '{name}': {other} has no typed contents")),
        )),
    }
}

fn inputs_of(
    m: &ModelVersion,
    req: &pb::ModelInferRequest,
) -> Result<Vec<(String, Tensor)>, ServeError> {
    let raw = !req.raw_input_contents.is_empty();
    if raw && let Some(t) = req.inputs.iter().find(|t| t.contents.is_some()) {
        return Err(ServeError::BadRequest(format!(
            "input '{}' has typed contents and the request has raw_input_contents; send one form",
            t.name
        )));
    }
    if raw && req.raw_input_contents.len() != req.inputs.len() {
        return Err(ServeError::BadRequest(format!(
            "{} raw_input_contents for {} inputs: give raw contents for every input or none",
            req.raw_input_contents.len(),
            req.inputs.len()
        )));
    }
    req.inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let dtype = crate::v2::dtype_of(&t.name, &t.datatype)?;
            State::check_datatype(m, &t.name, dtype)?;
            let shape = crate::v2::shape_of(&t.name, &t.shape, dtype)?;
            let tensor = if raw {
                crate::v2::tensor_from_raw(&t.name, dtype, &shape, &req.raw_input_contents[i])?
            } else {
                let c = t.contents.as_ref().ok_or_else(|| {
                    ServeError::BadRequest(format!(
                        "input '{}' has no contents and no raw_input_contents",
                        t.name
                    ))
                })?;
                from_contents(&t.name, dtype, &shape, c)?
            };
            Ok((t.name.clone(), tensor))
        })
        .collect()
}

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(
        &self,
        _: Request<pb::ServerLiveRequest>,
    ) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(pb::ServerReadyResponse {
            ready: self.state.ready(),
        }))
    }

    async fn model_ready(
        &self,
        req: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        self.check(&req)?;
        let r = req.get_ref();
        let ready = self.state.ready() && self.state.model(&r.name, Some(&r.version)).is_ok();
        Ok(Response::new(pb::ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        req: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        self.check(&req)?;
        Ok(Response::new(pb::ServerMetadataResponse {
            name: "rdeploy".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: ["binary_tensor_data", "statistics", "model_configuration"]
                .map(String::from)
                .to_vec(),
        }))
    }

    async fn model_metadata(
        &self,
        req: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        self.check(&req)?;
        let r = req.get_ref();
        let m = self
            .state
            .model(&r.name, Some(&r.version))
            .map_err(|e| e.grpc())?;
        let versions = self
            .state
            .versions(&r.name)
            .map(|v| v.iter().map(|m| m.version.to_string()).collect())
            .unwrap_or_default();
        let batched = m.settings.max_batch_size > 0;
        Ok(Response::new(pb::ModelMetadataResponse {
            name: m.name.clone(),
            versions,
            platform: format!("rdeploy_{}", m.backend),
            inputs: tensor_meta(&m.settings.inputs, batched),
            outputs: tensor_meta(&m.settings.outputs, batched),
        }))
    }

    async fn model_infer(
        &self,
        req: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        self.check(&req)?;
        let started = Instant::now();
        let r = req.into_inner();
        let model = self.state.model(&r.model_name, Some(&r.model_version));
        let result = match &model {
            Ok(m) => self.infer(m, &r).await,
            Err(e) => Err(e.clone()),
        };
        self.state.record(
            model.as_deref().ok(),
            "grpc",
            started,
            result.as_ref().map(|_| ()),
        );
        result.map(Response::new).map_err(|e| e.grpc())
    }

    type ModelStreamInferStream = std::pin::Pin<
        Box<
            dyn tonic::codegen::tokio_stream::Stream<
                    Item = Result<pb::ModelStreamInferResponse, Status>,
                > + Send,
        >,
    >;

    async fn model_stream_infer(
        &self,
        _: Request<tonic::Streaming<pb::ModelInferRequest>>,
    ) -> Result<Response<Self::ModelStreamInferStream>, Status> {
        Err(unimplemented(
            "ModelStreamInfer (decoupled/streaming models)",
        ))
    }

    async fn model_config(
        &self,
        req: Request<pb::ModelConfigRequest>,
    ) -> Result<Response<pb::ModelConfigResponse>, Status> {
        self.check(&req)?;
        let r = req.get_ref();
        let m = self
            .state
            .model(&r.name, Some(&r.version))
            .map_err(|e| e.grpc())?;
        Ok(Response::new(pb::ModelConfigResponse {
            config: Some(m.config.clone()),
        }))
    }

    async fn model_statistics(
        &self,
        req: Request<pb::ModelStatisticsRequest>,
    ) -> Result<Response<pb::ModelStatisticsResponse>, Status> {
        self.check(&req)?;
        let r = req.get_ref();
        let models: Vec<Arc<ModelVersion>> = if r.name.is_empty() {
            self.state.all().cloned().collect()
        } else if r.version.is_empty() {
            self.state.versions(&r.name).map_err(|e| e.grpc())?.to_vec()
        } else {
            vec![
                self.state
                    .model(&r.name, Some(&r.version))
                    .map_err(|e| e.grpc())?,
            ]
        };
        Ok(Response::new(pb::ModelStatisticsResponse {
            model_stats: models.iter().map(|m| stats_of(m)).collect(),
        }))
    }

    async fn repository_index(
        &self,
        req: Request<pb::RepositoryIndexRequest>,
    ) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        self.check(&req)?;
        Ok(Response::new(pb::RepositoryIndexResponse {
            models: self
                .state
                .all()
                .map(|m| pb::repository_index_response::ModelIndex {
                    name: m.name.clone(),
                    version: m.version.to_string(),
                    state: "READY".into(),
                    reason: String::new(),
                })
                .collect(),
        }))
    }

    async fn repository_model_load(
        &self,
        _: Request<pb::RepositoryModelLoadRequest>,
    ) -> Result<Response<pb::RepositoryModelLoadResponse>, Status> {
        Err(unimplemented("RepositoryModelLoad (models load at start)"))
    }

    async fn repository_model_unload(
        &self,
        _: Request<pb::RepositoryModelUnloadRequest>,
    ) -> Result<Response<pb::RepositoryModelUnloadResponse>, Status> {
        Err(unimplemented("RepositoryModelUnload"))
    }

    async fn system_shared_memory_status(
        &self,
        _: Request<pb::SystemSharedMemoryStatusRequest>,
    ) -> Result<Response<pb::SystemSharedMemoryStatusResponse>, Status> {
        Err(unimplemented("shared memory"))
    }

    async fn system_shared_memory_register(
        &self,
        _: Request<pb::SystemSharedMemoryRegisterRequest>,
    ) -> Result<Response<pb::SystemSharedMemoryRegisterResponse>, Status> {
        Err(unimplemented("shared memory"))
    }

    async fn system_shared_memory_unregister(
        &self,
        _: Request<pb::SystemSharedMemoryUnregisterRequest>,
    ) -> Result<Response<pb::SystemSharedMemoryUnregisterResponse>, Status> {
        Err(unimplemented("shared memory"))
    }

    async fn cuda_shared_memory_status(
        &self,
        _: Request<pb::CudaSharedMemoryStatusRequest>,
    ) -> Result<Response<pb::CudaSharedMemoryStatusResponse>, Status> {
        Err(unimplemented("CUDA shared memory"))
    }

    async fn cuda_shared_memory_register(
        &self,
        _: Request<pb::CudaSharedMemoryRegisterRequest>,
    ) -> Result<Response<pb::CudaSharedMemoryRegisterResponse>, Status> {
        Err(unimplemented("CUDA shared memory"))
    }

    async fn cuda_shared_memory_unregister(
        &self,
        _: Request<pb::CudaSharedMemoryUnregisterRequest>,
    ) -> Result<Response<pb::CudaSharedMemoryUnregisterResponse>, Status> {
        Err(unimplemented("CUDA shared memory"))
    }

    async fn trace_setting(
        &self,
        _: Request<pb::TraceSettingRequest>,
    ) -> Result<Response<pb::TraceSettingResponse>, Status> {
        Err(unimplemented("TraceSetting"))
    }

    async fn log_settings(
        &self,
        _: Request<pb::LogSettingsRequest>,
    ) -> Result<Response<pb::LogSettingsResponse>, Status> {
        Err(unimplemented("LogSettings"))
    }
}

impl Service {
    async fn infer(
        &self,
        m: &ModelVersion,
        r: &pb::ModelInferRequest,
    ) -> Result<pb::ModelInferResponse, ServeError> {
        let inputs = inputs_of(m, r)?;
        let outputs =
            (!r.outputs.is_empty()).then(|| r.outputs.iter().map(|o| o.name.clone()).collect());
        let outs = self.state.infer(m, Inference { inputs, outputs }).await?;
        let mut resp = pb::ModelInferResponse {
            model_name: m.name.clone(),
            model_version: m.version.to_string(),
            id: r.id.clone(),
            ..Default::default()
        };
        for (name, t) in outs {
            let raw = crate::v2::raw_bytes(&name, &t)?;
            resp.raw_output_contents.push(raw.into_owned());
            resp.outputs
                .push(pb::model_infer_response::InferOutputTensor {
                    name,
                    datatype: rdeploy_serving::datatype::v2_name(t.dtype()).into(),
                    shape: t.shape().iter().map(|&d| d as i64).collect(),
                    ..Default::default()
                });
        }
        Ok(resp)
    }
}
