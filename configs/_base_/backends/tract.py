# tract: rdeploy's embedded pure-Rust backend (always available, CPU only).
backend_config = dict(type='tract')
