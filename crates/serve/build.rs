//! Generates the server side of the Open Inference Protocol's `GRPCInferenceService` (the
//! `grpc_service.proto` vendored in `crates/serving/proto/`) over the message types
//! `rdeploy-serving` already generated.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = "../serving/proto";
    println!("cargo:rerun-if-changed={dir}/grpc_service.proto");
    let fds = protox::compile([format!("{dir}/grpc_service.proto")], [dir])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .extern_path(".inference", "::rdeploy_serving::proto")
        .compile_fds(fds)?;
    Ok(())
}
