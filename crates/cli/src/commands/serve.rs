//! `rdeploy serve`: the KServe v2 server over a work dir or a model repository.

use crate::args::ServeArgs;
use anyhow::{Context, Result, bail};
use rdeploy::Registry;
use rdeploy_serve::{ServeOptions, State};
use rdeploy_serving::{ExportOptions, Repository};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn run(registry: &Registry, a: ServeArgs) -> Result<()> {
    if !(a.request_timeout.is_finite() && a.request_timeout > 0.0) {
        bail!(
            "--request-timeout must be a positive number of seconds, got {}",
            a.request_timeout
        );
    }
    if a.queue_size == 0 {
        bail!("--queue-size must be at least 1");
    }
    let single = ExportOptions {
        name: a.name,
        max_batch_size: a.max_batch_size,
        instances: a.instances,
        dynamic_batching: a.dynamic_batching,
        max_queue_delay_us: a.max_queue_delay_us,
        ..Default::default()
    };
    let repo = Repository::open(&a.path, &single)?;
    let options = ServeOptions {
        http: SocketAddr::new(a.host, a.port),
        grpc: (!a.no_grpc).then(|| SocketAddr::new(a.host, a.grpc_port)),
        token: a.token.filter(|t| !t.is_empty()),
        max_request_bytes: a.max_request_bytes,
        request_timeout: Duration::from_secs_f64(a.request_timeout),
        queue_size: a.queue_size,
    };
    let state = Arc::new(State::load(&repo, registry, options)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    rt.block_on(rdeploy_serve::serve(
        state,
        rdeploy_serve::shutdown_signal(),
    ))
    .map_err(anyhow::Error::msg)
}
