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
    if a.max_request_bytes < 1024 {
        bail!(
            "--max-request-bytes must be at least 1024 (no request would fit), got {}",
            a.max_request_bytes
        );
    }
    if a.instances == 0 || a.instances > rdeploy_serving::model_config::MAX_INSTANCES {
        bail!(
            "--instances must be between 1 and {}, got {}",
            rdeploy_serving::model_config::MAX_INSTANCES,
            a.instances
        );
    }
    if !a.no_grpc && a.port == a.grpc_port && a.port != 0 {
        bail!(
            "--port and --grpc-port are both {}; HTTP and gRPC need different ports",
            a.port
        );
    }
    if a.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        bail!(
            "the token (--token or RDEPLOY_SERVE_TOKEN) is empty: give a non-empty token, or unset it to serve without one"
        );
    }
    let host = resolve(&a.host)?;
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
        http: SocketAddr::new(host, a.port),
        grpc: (!a.no_grpc).then(|| SocketAddr::new(host, a.grpc_port)),
        token: a.token,
        max_request_bytes: a.max_request_bytes,
        request_timeout: Duration::from_secs_f64(a.request_timeout),
        queue_size: a.queue_size,
        shutdown_grace: Duration::from_secs_f64(a.shutdown_grace.max(0.0)),
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

/// An address or a host name (`localhost`) as the IP to listen on.
fn resolve(host: &str) -> Result<std::net::IpAddr> {
    if let Ok(ip) = host.parse() {
        return Ok(ip);
    }
    use std::net::ToSocketAddrs;
    (host, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.ip())
        .with_context(|| format!("--host {host}: not an IP address or a name this machine resolves (e.g. 127.0.0.1, 0.0.0.0, localhost)"))
}
