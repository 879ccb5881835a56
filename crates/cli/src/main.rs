//! The `rdeploy` binary; everything lives in the `rdeploy_cli` library.

fn main() {
    std::process::exit(rdeploy_cli::run(std::env::args_os()));
}
