//! Compiles Triton's `model_config.proto` and `grpc_service.proto` (vendored in `proto/`,
//! BSD-3-Clause, from github.com/triton-inference-server/common) into prost types, and keeps the
//! descriptor set for text-format (`config.pbtxt`) parsing.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/model_config.proto", "proto/grpc_service.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("inference.fds"),
        prost::Message::encode_to_vec(&fds),
    )?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
