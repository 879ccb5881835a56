//! `rdeploy-ndarray`: the whole rdeploy command line, plus the ndarray backend.

fn main() {
    let mut registry = rdeploy_cli::builtin_registry();
    if let Err(e) = registry.install(&rdeploy_ndarray_backend::BACKEND) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    std::process::exit(rdeploy_cli::run_with(registry, std::env::args_os()));
}
